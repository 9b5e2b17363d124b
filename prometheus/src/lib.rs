//! Prometheus remote write 1.0 and 2.0 for Thermostat: content negotiation, bounded decoding,
//! and the pure mapping of a decoded request onto Thermostat's points (issue 20,
//! "Remote-write ingest").
//!
//! Served by the binary's `POST /api/v1/write` (`thermostat-dashboards`' `remote_write.rs`
//! decodes with [`negotiate`] and [`decode`]; `thermostat-ingest`'s `remote_write.rs` maps with
//! [`map`] and stores); `docs/prometheus.md` is the user's contract.
//!
//! # What this crate owns
//! - Content negotiation ([`negotiate`]: `Content-Type` and `Content-Encoding` to a
//!   [`Version`], or [`Unsupported`] naming what is supported, for a 415).
//! - Decoding bodies with limits ([`decode`], [`decode_v1`], [`decode_v2`]: snappy block
//!   format via [`decompress`], then [`check_limits`] / [`check_limits_v2`] over the wire
//!   format, then prost; the limits are the constants of [`limits`]), and the crate's one
//!   error, [`DecodeError`].
//! - The messages, written by hand with prost's derive: 1.0's ([`proto`], with the native
//!   [`proto::Histogram`]) and 2.0's ([`v2`]).
//! - The mapping ([`map`]) onto [`MappedPoint`](thermostat_metrics::cumulative::MappedPoint)s,
//!   through the cumulative streams of `thermostat_metrics::cumulative` (shared with OTLP).
//!
//! # Mapping semantics
//! - Series: metric name = `__name__`; namespace = the value of the namespace label
//!   ([`MapOptions::namespace_label`], default `job`), else [`DEFAULT_NAMESPACE`]; every
//!   other label a dimension (at most 30; an empty value is no label, as in Prometheus; names
//!   follow Prometheus' rule [`is_label_name`]). 2.0 labels are symbol references in pairs: an
//!   odd count or a reference beyond the symbol table rejects the series; a symbol table
//!   whose first entry is not `""` refuses the request.
//! - Counter or gauge ([`Kind`]): 2.0's per-series metadata type decides when set; else
//!   1.0's metadata by family name; else the suffix `_total`, `_count`, `_sum`, `_bucket`.
//! - Gauges: one value per sample.
//! - Counters: per-sample increases through the shared [`Streams`]
//!   (`StreamKind::Sum`, origin [`ORIGIN`]): the value minus the stream's previous value; a
//!   value that went down is a reset and counts from zero (the increase is the value). The
//!   first sample of a stream records nothing, like Prometheus' `increase()`, which never
//!   counts what a counter held before its first sample; with a created timestamp (2.0's
//!   `start_timestamp`, or the drafts' series `created_timestamp`), it counts from zero (the
//!   increase is the whole value). A created timestamp later than the stream's last sample
//!   is a restart: the sample counts from zero. A sample not newer than its stream's last is
//!   passed over ([`Mapped::skipped`]), as is a first sample.
//! - Classic histograms: the `<family>_bucket{le}` samples (counters) of one family series
//!   (the same labels but `le`) at one timestamp, with the `+Inf` bucket among them, are one
//!   cumulative explicit-bucket histogram (bounds the finite `le`s, counts the differences,
//!   count the `+Inf` bucket's, sum the `<family>_sum` sample of the same labels and time
//!   when in the request, else estimated), advanced through the streams
//!   (`StreamKind::Histogram`) and recorded as a distribution on the series `<family>` with
//!   one representative value per non-empty bucket, exactly as OTLP histograms are.
//!   `_count` and `_sum` stay counters of their own. Without the `+Inf` bucket in the
//!   request (a histogram split over requests) the buckets are stored as counters of the
//!   series `<family>_bucket` with the dimension `le`. An `le` that is not a number, counts
//!   that are not whole or decrease as `le` grows, or a repeated `le` reject the series or
//!   the group. Classic gauge histograms (metadata) are gauges per bucket series.
//! - Native histograms (1.0 and 2.0): schemas -4 to 8 are exponential histograms
//!   (`StreamKind::ExponentialHistogram`; Prometheus' bucket `i`, `(base^(i-1), base^i]`, is
//!   OTLP's `i - 1`), schema -53 (custom buckets, `custom_values`) an explicit-bucket
//!   histogram; spans and deltas are decoded with their bounds checked (at most
//!   [`limits::MAX_BUCKETS_PER_HISTOGRAM`] buckets within
//!   [`limits::MAX_BUCKET_INDEX_RANGE`] indices, spans matching the counts, counts adding up
//!   to `count`, none negative). Float histograms are accepted when every count is a whole
//!   number; fractional counts reject the histogram. A sum that is NaN (a NaN was observed)
//!   records the buckets' count and an estimated sum. Reset hint `GAUGE` (or metadata
//!   gauge histogram) records each histogram as it is; `YES` counts from zero. Recorded as a
//!   distribution on the series named by `__name__`.
//! - Timestamps follow Thermostat's rule (`thermostat_metrics::validate::timestamp`: within
//!   the past 14 days, at most 2 hours ahead of `now`), as for OTLP; a sample breaking it is
//!   rejected. A NaN other than the staleness marker, or an infinity, is rejected.
//! - Staleness markers (NaN with bits [`STALE_NAN_BITS`]; for native histograms in the sum)
//!   are reported in [`Mapped::stale`] and, for a counter or histogram, forget the stream
//!   (`StreamUpdate::Remove`, logged), so a restarted target counts from its next sample.
//! - Exemplars are decoded and bounded, not stored ([`Written::exemplars`] is 0).
//! - At most [`MapOptions::max_streams`] streams (the caller forgets idle ones with
//!   `Streams::expire`): a sample that would start one more is rejected ("stream limit").
//!
//! # Invariants
//! - No IO, no async runtime, no wall clock: `now_ms` is a parameter.
//! - No input makes decoding panic or allocate without bound: the compressed size and the
//!   declared decompressed size are checked before inflating, and every element count
//!   (series, labels, samples, histograms, spans, buckets, exemplars, symbols and their
//!   bytes) is checked on the wire before prost allocates per element.
//! - [`map`] never panics and never fails as a whole: what breaks a rule is rejected with
//!   the field path and the rule; the rest is kept. It changes the streams only through
//!   `Streams::apply` and returns the updates in order and their inverses.
//!
//! # Layout
//! `limits.rs` (the bounds), `error.rs` ([`DecodeError`]), `negotiate.rs` (headers to a
//! version), `proto.rs` and `v2.rs` (the messages), `decode.rs` (bodies to requests),
//! `classic.rs` (bucket series to histogram totals), `native.rs` (native histograms to
//! totals; tests in `native/tests.rs`), `map.rs` (the mapping; tests in `map/tests.rs`); the
//! golden requests, hostile bodies and property tests in `tests/`.

#![warn(missing_docs)]

mod classic;
mod decode;
mod error;
pub mod limits;
mod map;
mod native;
mod negotiate;
pub mod proto;
pub mod v2;

pub use decode::{
    Request, check_limits, check_limits_v2, decode, decode_protobuf, decode_v1, decode_v2,
    decode_v2_protobuf, decompress,
};
pub use error::DecodeError;
pub use map::{
    DEFAULT_NAMESPACE, DEFAULT_NAMESPACE_LABEL, Kind, MapOptions, Mapped, ORIGIN, Rejection,
    STALE_NAN_BITS, Written, is_label_name, map,
};
pub use negotiate::{Unsupported, Version, negotiate};
pub use thermostat_metrics::cumulative::Streams;
