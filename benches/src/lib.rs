//! Benchmarks of Thermostat's cores and the workload behind the `loadgen` gRPC load generator.
//!
//! # What this crate owns
//! - The synthetic ingest workload ([`workload`]): `series × samples_per_series` datums, one
//!   sample each, split into `PutMetricDataRequest`s of at most `batch` datums. The criterion
//!   benches (`benches/aggregation.rs`, `benches/decode.rs`) and `loadgen` share it, so the
//!   numbers they report describe the same data.
//! - The same workload as OTLP `ExportMetricsServiceRequest`s ([`otlp`]): request `k` holds
//!   native request `k`'s samples as gauge points, grouped by metric name, for `loadgen
//!   --protocol otlp`.
//! - The same workload as Prometheus remote write 1.0 requests ([`remote_write`]): snappy
//!   block-compressed `prometheus.WriteRequest`s, one `TimeSeries` per series with `__name__`,
//!   `job` = the namespace and the dimensions as labels, for `loadgen --protocol remote-write`
//!   (to Thermostat's and VictoriaMetrics' `POST /api/v1/write`).
//! - A gRPC codec for requests encoded ahead of time ([`codec::PreEncoded`]), so that `loadgen`
//!   measures the server rather than its own protobuf encoder.
//! - `loadgen`'s result ([`report::Report`]) and its text and JSON forms.
//! - CPU time and peak RSS of a process from `/proc` ([`procstat`]), for `loadgen` and the
//!   VictoriaMetrics comparison (`compare`, driven by `benches/compare/run`).
//!
//! # Invariants
//! - A workload is a pure function of its [`workload::WorkloadSpec`] and `now`: the same seed
//!   gives the same requests, byte for byte.
//! - It holds exactly `series × samples_per_series` samples, one per datum; every series key is
//!   distinct; a series' samples are 1 s apart, the newest at `now`; no request holds more than
//!   `batch` datums, and `batch` never exceeds the server's limit of
//!   [`workload::MAX_BATCH`] datums per request.
//! - Nothing here reads the clock: `now` is a parameter (`loadgen` reads it once, before the
//!   measured run).
//!
//! # Layout
//! `workload.rs` (generation and encoding), `otlp.rs` (its OTLP form), `remote_write.rs`
//! (its Prometheus remote-write form), `codec.rs`
//! (pass-through gRPC codec), `pacer.rs` (`loadgen --rate`'s precise timer), `report.rs` (latency histogram summary, text and JSON);
//! `bin/loadgen.rs` (CLI and the gRPC driver); `benches/` (criterion); `tests/loadgen.rs` (end
//! to end against the real server binary).

pub mod codec;
pub mod compare;
pub mod otlp;
pub mod pacer;
pub mod process;
pub mod procstat;
pub mod remote_write;
pub mod report;
pub mod workload;

pub use report::Report;
pub use workload::{Layout, Order, Workload, WorkloadError, WorkloadSpec};
