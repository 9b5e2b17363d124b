//! Thermostat's ingest adapter: the data directory's store and write-ahead log, and the gRPC
//! metrics API over them.
//!
//! # What this crate owns
//! - Opening the data directory ([`open`] → [`Ingest`]): the store, the snapshot, log
//!   recovery, the write-ahead log, the checkpoint and compaction loops
//!   ([`Ingest::spawn_maintenance`]), the final checkpoint ([`Ingest::close`]), and the one
//!   entry point for samples Thermostat makes itself ([`Ingest::append_observations_blocking`]).
//! - The `thermostat.v1.MetricsService` implementation ([`MetricsApi`], made by
//!   [`Ingest::metrics_api`]): request validation mapped to `INVALID_ARGUMENT` with the field
//!   path, back-pressure (`RESOURCE_EXHAUSTED`), and shutdown (`UNAVAILABLE`).
//! - The OTLP metrics service, `opentelemetry.proto.collector.metrics.v1.MetricsService/Export`
//!   ([`OtlpApi`], made by [`MetricsApi::otlp_api`] or [`Ingest::otlp_api`]; its
//!   [`OtlpApi::export`] also serves the binary's HTTP `/v1/metrics`), over the same store,
//!   log, limits and admission, with the OTLP cumulative streams' state logged with each
//!   record and kept in the snapshots.
//! - Prometheus remote write ([`RemoteWriteApi`], made by [`MetricsApi::remote_write_api`];
//!   its [`RemoteWriteApi::write`] serves the binary's HTTP `/api/v1/write`), over the same
//!   store, log, limits and admission, its counters' and histograms' cumulative state kept
//!   with OTLP's.
//! - Serving both gRPC services on a bound listener with gRPC reflection ([`serve`]; reflection lists the
//!   native service only).
//! - The on-disk formats: store snapshots and the write-ahead log (versioned; both read back
//!   by every later build).
//! - One error type, [`Error`], mapped to gRPC statuses in one place (`error.rs`). The
//!   errors of the log, the snapshots and the request reader are not exported: they are
//!   what [`Error`]'s variants carry (as payload or source) and read only through them.
//!
//! # Invariants
//! - A request is validated whole before anything of it is stored; a response is sent only
//!   after its data is in the log and in the store.
//! - Every rejection is counted in telemetry by reason.
//! - The modules are private: the binary uses what the crate root exports. Benches need the
//!   request reader and the interner, which nothing else should call; [`bench`] exposes
//!   exactly those, hidden from the documentation, so that the hot path can be measured
//!   without making it an API.
//!
//! # Layout
//! `ingest.rs` (the façade: [`open`], [`Ingest`], checkpoints), `wire.rs` (zero-copy protobuf
//! reader), `convert.rs` (request → the core's `ObservationBatch`), `intern.rs` (wire identity
//! → series key), `record.rs` (log record payloads), `wal.rs` (the write-ahead log and the
//! applier), `service.rs` (tonic service), `otlp.rs` (the OTLP service), `remote_write.rs`
//! (Prometheus remote write), `points.rs` (mapped points to a checked batch), `mapped.rs`
//! (what both share once mapped: checking, queueing),
//! `streams.rs` (the cumulative streams: live and applied, undo), `persist.rs` (snapshots), `error.rs` (the one error
//! type and its `Status` mapping).

#![warn(missing_docs)]

mod auth;
mod convert;
mod error;
mod ingest;
mod intern;
mod mapped;
mod otlp;
mod persist;
mod points;
mod record;
mod remote;
mod remote_write;
mod reservation;
mod service;
mod streams;
mod wal;
mod wire;

use std::future::Future;

pub use convert::STORE_SHARDS;
pub use error::{Error, Overload, Result, SeriesLimit};
pub use ingest::{Ingest, IngestOptions, load_snapshot, open, read_data_dir, save_snapshot};
pub use otlp::OtlpApi;
pub use persist::SnapshotInfo;
pub use remote::{RecordApplier, RemoteLog};
pub use remote_write::RemoteWriteApi;
pub use service::{Limits, MetricsApi, STALE_METADATA};
pub use streams::{OtlpOptions, RemoteWriteOptions};
use thermostat_proto::server::metrics_service_server::MetricsServiceServer;
use tokio::net::TcpListener;
use tonic::codegen::http;
pub use wal::{FsyncMode, LogTelemetry};

/// What the benches measure of the hot path, and nothing else calls: reading and validating a
/// request ([`bench::validate_request`]) with the series interner ([`bench::Interner`]). Not
/// an API: it may change with the hot path.
#[doc(hidden)]
pub mod bench {
    pub use crate::convert::validate_request;
    pub use crate::intern::Interner;
}

/// The path of `StreamMetricData`, whose request-body timeout applies per message.
const STREAM_PATH: &str = "/thermostat.v1.MetricsService/StreamMetricData";

/// Serves the metrics API (and gRPC reflection) on `listener` until `shutdown` completes, then
/// stops accepting and lets in-flight requests finish.
///
/// Connections are accepted with back-off ([`thermostat_transport::Acceptor`]) and closed when
/// idle; requests are put under the transport limits
/// ([`thermostat_transport::GrpcLimitsLayer`]); HTTP/2 advertises
/// `--max-concurrent-streams-per-connection`.
///
/// # Errors
/// [`Error::Serve`] (a transport error from the gRPC server) or [`Error::Reflection`] (a
/// broken reflection descriptor).
pub async fn serve(
    listener: TcpListener,
    api: MetricsApi,
    limits: Limits,
    transport: thermostat_transport::Options,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    // Both versions of the reflection service: grpcurl and tonic's client speak `v1`; some
    // clients (Python's grpcio-reflection) speak only `v1alpha`. Each lists every service
    // on the port, both reflection services included.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(thermostat_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            )
            .include_reflection_service(false)
    };
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let reflection = reflection().build_v1()?;
    let telemetry = std::sync::Arc::clone(api.telemetry());
    let authenticate = auth::AuthLayer {
        access: std::sync::Arc::clone(api.access()),
    };
    let otlp =
        thermostat_proto::otlp::metrics_service_server::MetricsServiceServer::new(api.otlp_api())
            .max_decoding_message_size(limits.max_request_bytes)
            .max_encoding_message_size(64 << 20);
    let metrics = MetricsServiceServer::new(api)
        .max_decoding_message_size(limits.max_request_bytes)
        .max_encoding_message_size(64 << 20);
    let incoming = thermostat_transport::Acceptor::new(
        listener,
        "gRPC",
        Some(transport.idle_connection_timeout),
    )
    .with_tls(transport.tls.clone(), thermostat_transport::Alpn::H2)
    .into_stream();
    let limit = limits.max_request_bytes;
    let max_streams = transport.max_concurrent_streams_per_connection;
    let transport_limits = thermostat_transport::GrpcLimitsLayer::new(transport, &[STREAM_PATH]);
    tonic::transport::Server::builder()
        // Clients may send DATA frames of up to 1 MiB (HTTP/2's default is 16 KiB): a
        // 1,000-datum request then arrives in one frame instead of four, and both sides
        // handle a quarter of the frames.
        .max_frame_size(Some(1 << 20))
        .max_concurrent_streams(Some(max_streams))
        .layer(tower::util::MapResponseLayer::new(move |r| {
            too_large_is_resource_exhausted(r, limit, &telemetry)
        }))
        .layer(transport_limits)
        .layer(authenticate)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(metrics)
        .add_service(otlp)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

/// tonic answers a request over `max_decoding_message_size` with OUT_OF_RANGE; a request that
/// is too large is a RESOURCE_EXHAUSTED condition in gRPC's vocabulary (and in our contract),
/// so the status is rewritten with a message that says what to do.
fn too_large_is_resource_exhausted<B>(
    mut r: http::Response<B>,
    limit: usize,
    telemetry: &thermostat_metrics::Telemetry,
) -> http::Response<B> {
    let headers = r.headers_mut();
    let out_of_range = headers
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == b"11");
    let too_large = headers.get("grpc-message").is_some_and(|v| {
        v.as_bytes()
            .starts_with(b"Error,%20decoded%20message%20length%20too%20large")
    });
    if out_of_range && too_large {
        let message = format!(
            "the%20request%20is%20larger%20than%20the%20limit%20of%20{limit}%20bytes:%20split%20it%20into%20smaller%20requests"
        );
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
        telemetry.ingest_rejected(thermostat_metrics::telemetry::RejectReason::too_large);
        if let Ok(v) = http::HeaderValue::from_str(&message) {
            headers.insert("grpc-message", v);
        }
    }
    r
}
