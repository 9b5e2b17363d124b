//! Cumulative streams turned into increases, shared by the OTLP and the Prometheus mappings:
//! the per-stream state ([`Streams`], changed only by [`StreamUpdate`]s, which callers log and
//! snapshot), the rules that turn a cumulative point into the increase since the previous
//! one ([`delta`]), the representative value of a histogram bucket ([`buckets`]), and what a
//! mapping hands the store ([`MappedPoint`], [`MappedData`]), with the functions that turn
//! histogram totals into a distribution ([`explicit_distribution`],
//! [`exponential_distribution`]); a point as received ([`CumulativePoint`]) and the rule that
//! applies it to its stream ([`step`]), which cluster mode's partition owners follow too.
//!
//! Pure like the rest of the crate: no IO, no clock (a mapping passes its `now`).

pub mod buckets;
mod data;
pub mod delta;
mod point;
pub mod streams;

pub use data::{
    MappedData, MappedPoint, estimated_sum, explicit_distribution, exponential_distribution,
};
pub use point::{CumulativePoint, StartRule, Step, increase_data, step};
pub use streams::{
    BucketRange, ExponentialTotals, HistogramTotals, StreamKey, StreamKind, StreamState,
    StreamUpdate, Streams, Totals,
};
