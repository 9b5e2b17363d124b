//! The pure core of Thermostat's metrics.
//!
//! # What this crate owns
//! - Time as data: [`Timestamp`], [`Period`], and the [`Clock`] port with [`SystemClock`] (the
//!   only wall-clock read in the workspace) and [`ManualClock`].
//! - Series identity ([`SeriesKey`], [`Dimension`]), units ([`Unit`]) and statistics
//!   ([`Statistic`]).
//! - CloudWatch's ingest rules as pure functions ([`validate`]).
//! - The store's input: [`ObservationBatch`], observations grouped in runs of one series, as
//!   the ingest adapter produces them from a push or a log record.
//! - Aggregation: [`Window`] (exact count/sum/min/max plus an HDR histogram for percentiles;
//!   it takes single values, values with counts, statistic sets and [`Distribution`]s, the
//!   bucketed summaries OpenTelemetry histograms become) and the sharded [`Store`] with CloudWatch's roll-up and retention.
//! - The ingest and store metrics of Thermostat's self-telemetry, and the registry that
//!   renders them after those the components register ([`telemetry`]).
//! - One error type, [`Error`]. The values the fallible functions return
//!   ([`validate::ValidationError`], [`QueryError`], [`store::QueryRefused`],
//!   [`time::TimeError`]) are its variants' payloads: callers build and inspect them (the
//!   ingest validator builds a `ValidationError` only for a refused request), each converts
//!   into [`Error`] with `?`, and `error.rs` says why they are not folded away.
//!
//! # Invariants
//! - No IO, no async runtime, no wall clock: `now` is always a parameter.
//! - Every observation is held by exactly one window; roll-ups move, never copy.
//! - Count, sum, minimum and maximum are exact (but where a [`Distribution`] leaves out its
//!   minimum or maximum: then its bucket representatives or its mean bound the window, see
//!   [`Window::record_distribution`]); percentiles are within 1% in
//!   [`window::PERCENTILE_ACCURATE_RANGE`], always within the window's minimum and maximum,
//!   and absent (never invented) where CloudWatch has none or a distribution has no buckets.
//!
//! # Layout
//! `time.rs`, `series.rs`, `unit.rs`, `statistic.rs`, `validate.rs`, `window.rs`, `batch.rs`,
//! `store.rs`, `telemetry.rs`, `error.rs` (the crate's [`Error`]), `cumulative/` (cumulative
//! streams turned into increases and distributions, shared by the OTLP and Prometheus
//! mappings); tests of the larger modules in `window/tests.rs` and `store/tests.rs`.

#![warn(missing_docs)]

pub mod batch;
pub mod cumulative;
mod error;
pub mod quote;
pub mod series;
pub mod shard_order;
pub mod statistic;
pub mod store;
pub mod telemetry;
pub mod time;
pub mod unit;
pub mod validate;
pub mod window;

pub use batch::ObservationBatch;
pub use error::{Error, Result, chain};
pub use series::{Dimension, DimensionRef, Dimensions, SeriesKey};
pub use statistic::Statistic;
pub use store::{Datapoint, Observation, Query, QueryError, Resolution, Sample, Store};
pub use telemetry::Telemetry;
pub use time::{Clock, ManualClock, Period, SystemClock, Timestamp};
pub use unit::Unit;
pub use window::{Distribution, StatisticSet, Window};
