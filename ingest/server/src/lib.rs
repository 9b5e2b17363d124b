//! Thermostat's ingest adapter: the gRPC metrics API over the pure store.
//!
//! # What this crate owns
//! - The `thermostat.v1.MetricsService` implementation ([`service::MetricsApi`]): request
//!   validation ([`convert`]) mapped to `INVALID_ARGUMENT` with the field path, back-pressure
//!   (`RESOURCE_EXHAUSTED`), and shutdown (`UNAVAILABLE`).
//! - Serving it on a bound listener with gRPC reflection ([`serve`]).
//! - Store snapshots on disk ([`persist`]).
//!
//! # Invariants
//! - A request is validated whole before anything of it is stored; a response is sent only
//!   after its data is in the store.
//! - Every rejection is counted in telemetry by reason.
//!
//! # Layout
//! `convert.rs` (proto → observations), `service.rs` (tonic service), `persist.rs`
//! (snapshots), `error.rs` (the one error type and its `Status` mapping).

#![warn(missing_docs)]

pub mod convert;
pub mod error;
pub mod persist;
pub mod service;

use std::future::Future;

pub use error::Error;
pub use service::{Limits, MetricsApi};
use thermostat_proto::v1::metrics_service_server::MetricsServiceServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

/// Serves the metrics API (and gRPC reflection) on `listener` until `shutdown` completes, then
/// stops accepting and lets in-flight requests finish.
///
/// # Errors
/// A transport error from the gRPC server, or a broken reflection descriptor.
pub async fn serve(
    listener: TcpListener,
    api: MetricsApi,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(thermostat_proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let metrics = MetricsServiceServer::new(api)
        .max_decoding_message_size(limits.max_request_bytes)
        .max_encoding_message_size(64 << 20);
    let incoming = TcpListenerStream::new(listener);
    tonic::transport::Server::builder()
        .add_service(reflection)
        .add_service(metrics)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}
