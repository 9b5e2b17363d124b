//! Thermostat's access rules, in the spirit of IAM: who may do what.
//!
//! # What this crate owns
//! - [`Role`]s and the [`Permission`]s they grant (`role.rs`);
//! - token entries of the settings file (`auth.tokens`), resolving their secrets through
//!   functions the caller supplies, and checking a presented token by its digest
//!   (`token.rs`); namespace scopes (`namespace.rs`);
//! - [`Access`]: the tokens in force, swapped whole on reload, and the decisions both servers
//!   ask for (`access.rs`), with the refusal counters (`telemetry.rs`);
//! - the dashboard's server-side [`Sessions`] (`session.rs`);
//! - the audit trail's record and port ([`AuditEvent`], [`AuditTrail`], `audit.rs`); the
//!   files are `thermostat-audit`'s;
//! - AWS Signature Version 4 verification for the CloudWatch-compatible API (`sigv4.rs`:
//!   access key entries of the settings file, resolved like token entries, and
//!   [`sigv4::verify`], called by the CloudWatch-compatible API's routes).
//!
//! # Invariants
//! - No token is kept: tokens are held as SHA-256 digests, session ids as digests too; no
//!   `Debug` or `Display` here prints a digest, a token or a CSRF token. An AWS access key's
//!   secret is kept only as the first step of SigV4's key derivation (an HMAC keyed with
//!   it), which verification needs and no `Debug` prints.
//! - A presented token is checked by its SHA-256 digest: a lookup whose time says nothing of
//!   the tokens in force, whose cost does not grow with their number, and whose final
//!   equality is compared in constant time.
//! - No IO and no wall clock: environment variables and files are read by functions the
//!   caller passes, and time is a parameter (Unix milliseconds). Random numbers (tokens,
//!   session ids) come from the operating system through `rand`.
//!
//! # Layout
//! `role.rs`, `namespace.rs`, `token.rs`, `session.rs`, `access.rs`, `telemetry.rs`,
//! `audit.rs`, `error.rs`, `sigv4.rs` (with `sigv4/keys.rs` and `sigv4/tests.rs`).

#![warn(missing_docs)]

mod access;
pub mod audit;
mod error;
mod namespace;
mod role;
mod session;
pub mod sigv4;
mod telemetry;
mod token;

pub use access::{Access, Credentials, DENIALS_LOGGED_PER_SECOND, Denied, Unauthenticated, bearer};
pub use audit::{AuditError, AuditEvent, AuditPage, AuditQuery, AuditTrail, Outcome};
pub use error::Error;
pub use namespace::{MAX_PATTERNS, Namespaces};
pub use role::{Permission, Role};
pub use session::{DEFAULT_SESSION_TTL_MS, MAX_SESSIONS, NewSession, Session, Sessions};
pub use sigv4::{
    AccessKeyEntry, AccessKeyError, AccessKeySecret, AccessKeys, SigV4Error, SigV4ErrorCode,
    SignedRequest, Verified,
};
pub use telemetry::AuthTelemetry;
pub use token::{
    AuthSettings, MAX_TOKEN_BYTES, MAX_TOKENS, Principal, SecretSource, TOKEN_PREFIX, TokenEntry,
    Tokens, digest_hex, new_token, yaml_entry,
};
