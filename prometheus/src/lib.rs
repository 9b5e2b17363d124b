//! Prometheus remote write for Thermostat: bounded decoding, and the pure mapping of a
//! decoded request onto Thermostat's series (issue 20, "Remote-write ingest").
//!
//! **Status: not yet served; issue 20.** No route uses this crate yet.
//!
//! # What this crate owns
//! - Decoding remote write 1.0 bodies with limits ([`decode_v1`]: snappy block format via
//!   [`decompress`], then [`check_limits`] over the wire format, then prost; the limits are
//!   the constants of [`limits`]), and the crate's one error, [`DecodeError`].
//! - The remote write 1.0 messages ([`proto`]), written by hand with prost's derive.
//! - The mapping ([`map_v1`]): metric name = `__name__`; namespace = the value of the
//!   namespace label ([`MapOptions`], default `job`), else [`DEFAULT_NAMESPACE`]; every other
//!   label a dimension (at most 30; an empty value is no label, as in Prometheus); counters
//!   and gauges told apart ([`Kind`]) by metadata or name suffix; staleness markers reported
//!   as stream ends ([`MappedSeries::stale_at`]); series and samples that break a rule
//!   rejected ([`Rejection`]).
//!
//! Not yet: turning counters into increases (per-stream state as in `thermostat-otlp`),
//! native histograms (decoded as opaque bytes, not mapped), classic histograms as
//! distributions, exemplars (decoded, not mapped), sample timestamps against `now`, remote
//! write 2.0.
//!
//! # Invariants
//! - No IO, no async runtime, no wall clock.
//! - No input makes decoding panic or allocate without bound: the compressed size and the
//!   declared decompressed size are checked before inflating, and every element count is
//!   checked on the wire before prost allocates per element.
//! - [`map_v1`] never panics and never fails as a whole: what breaks a rule is rejected with
//!   the field path and the rule; the rest is kept.
//!
//! # Layout
//! `limits.rs` (the bounds), `error.rs` ([`DecodeError`]), `proto.rs` (the messages),
//! `decode.rs` (bodies to requests), `map.rs` (the mapping) with its tests in `map/tests.rs`;
//! the golden round trip, hostile bodies and property tests in `tests/`.

#![warn(missing_docs)]

mod decode;
mod error;
pub mod limits;
mod map;
pub mod proto;

pub use decode::{check_limits, decode_protobuf, decode_v1, decompress};
pub use error::DecodeError;
pub use map::{
    DEFAULT_NAMESPACE, DEFAULT_NAMESPACE_LABEL, Kind, MapOptions, Mapped, MappedSeries, Rejection,
    STALE_NAN_BITS, is_label_name, map_v1,
};
