//! OpenTelemetry metrics (OTLP) for Thermostat: bounded decoding, and the pure mapping of a
//! decoded request onto Thermostat's series (`docs/otlp.md` is its specification).
//!
//! # What this crate owns
//! - Decoding request bodies with limits ([`decode_protobuf`], [`decode_json`],
//!   [`gunzip_bounded`], [`check_limits`]; the limits are the constants of [`limits`]), and
//!   the crate's one error, [`DecodeError`].
//! - The mapping ([`map`]): namespace, metric name, unit ([`mod@unit`]) and dimensions from the
//!   resource and the point; gauges and sums as values, histograms, exponential histograms and
//!   summaries as distributions ([`MappedData`]) with one representative value per non-empty
//!   bucket, inside it ([`buckets`]); cumulative points turned into increases per stream.
//! - Its use of the per-stream cumulative state ([`Streams`]) and its changes
//!   ([`StreamUpdate`]), which the caller logs and snapshots. That machinery (the state, the
//!   increase rules, the bucket representatives, [`MappedPoint`] and [`MappedData`]) lives in
//!   `thermostat_metrics::cumulative`, shared with the Prometheus mapping, and is re-exported
//!   here under its former paths ([`streams`], [`buckets`]).
//! - Rejected points ([`Rejection`]) and OTLP's partial success ([`partial_success`]).
//!
//! It does not serve OTLP (no gRPC service, no HTTP route) and does not store anything: the
//! ingest adapter decodes with it, maps with it, and hands the points to the metrics core.
//!
//! # Invariants
//! - No IO, no async runtime, no wall clock: `now_ms` is a parameter.
//! - [`map`] never panics and never fails as a whole: a point that breaks a rule is rejected
//!   with the metric, the point and the rule; the others are kept.
//! - [`Streams::apply`] is the only way stream state changes, and [`map`] returns the updates
//!   it applied in order: applying them to a copy of the state taken before the call gives the
//!   state after it.
//! - A representative value lies inside its bucket; count and sum are the point's (sum
//!   estimated only when a histogram point has none).
//! - No input makes decoding or rendering recurse or allocate without bound: bodies, counts,
//!   sizes and nesting are limited, and gzip is inflated only up to its limit.
//!
//! # Layout
//! `limits.rs` (the bounds), `error.rs` ([`DecodeError`]), `decode.rs` (bodies to requests),
//! `json.rs` (OTLP JSON over mirrors of the messages), `attributes.rs` (values as text),
//! `unit.rs` (UCUM to CloudWatch), `rejection.rs` (rejections, partial success), `map.rs`
//! (the mapping; the streams, increases and representatives it uses are
//! `thermostat_metrics::cumulative`'s); its tests in
//! `map/tests.rs`, property tests and the golden JSON in `tests/`.

#![warn(missing_docs)]

mod attributes;
mod decode;
mod error;
mod json;
pub mod limits;
mod map;
mod rejection;
pub mod unit;

pub use decode::{check_limits, decode_json, decode_protobuf, gunzip_bounded};
pub use error::{DecodeError, DecodeErrorKind, Result};
pub use map::{DEFAULT_NAMESPACE, MapOptions, Mapped, Skipped, map};
pub use rejection::{RejectReason, Rejection, partial_success};
/// Bucket bounds and representatives (moved to `thermostat_metrics::cumulative::buckets`).
pub use thermostat_metrics::cumulative::buckets;
/// Cumulative stream state (moved to `thermostat_metrics::cumulative::streams`).
pub use thermostat_metrics::cumulative::streams;
pub use thermostat_metrics::cumulative::{
    MappedData, MappedPoint, StreamKey, StreamKind, StreamState, StreamUpdate, Streams,
};

/// The generated OTLP messages (`opentelemetry-proto`'s prost types, with its serde for OTLP
/// JSON), so that a caller needs no dependency of its own on that crate.
pub use opentelemetry_proto::tonic as proto;
