//! The crate's public API: golden requests of each protocol, responses and errors, limits,
//! and property tests. One binary (the house's one-test-binary pattern).

mod alarms;
mod cbor_writer;
mod limits;
mod properties;
mod protocols;
mod responses;
