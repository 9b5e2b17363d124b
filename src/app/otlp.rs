//! The HTTP ingest protocols connected to ingest: the dashboards' [`OtlpApi`] port
//! (`POST /v1/metrics`) over [`thermostat_ingest::OtlpApi`], the same export OTLP/gRPC uses,
//! and its [`RemoteWriteApi`] port (`POST /api/v1/write`) over
//! [`thermostat_ingest::RemoteWriteApi`].

use std::sync::Arc;

use thermostat_auth::Principal;
use thermostat_dashboards::otlp::{OtlpApi, OtlpError, OtlpFuture};
use thermostat_dashboards::remote_write::{RemoteWriteApi, WriteError, WriteFuture};
use thermostat_otlp::proto::collector::metrics::v1::ExportMetricsServiceRequest;

/// The ingest side of `POST /v1/metrics`.
#[derive(Debug)]
pub struct OtlpExport(pub thermostat_ingest::OtlpApi);

impl OtlpApi for OtlpExport {
    fn export(
        &self,
        principal: Arc<Principal>,
        request: ExportMetricsServiceRequest,
    ) -> OtlpFuture {
        let api = self.0.clone();
        Box::pin(async move { api.export(&principal, request).await.map_err(http_error) })
    }
}

/// An ingest error as OTLP/HTTP answers it: through its gRPC status, so that both transports
/// classify every error the same way (`ingest/src/error.rs`).
fn http_error(e: thermostat_ingest::Error) -> OtlpError {
    let status = tonic::Status::from(e);
    let message = status.message().to_owned();
    match status.code() {
        tonic::Code::InvalidArgument | tonic::Code::OutOfRange => OtlpError::Invalid(message),
        tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => OtlpError::Denied(message),
        tonic::Code::ResourceExhausted => OtlpError::Overloaded(message),
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Aborted => {
            OtlpError::Unavailable(message)
        }
        _ => OtlpError::Internal(message),
    }
}

/// The ingest side of `POST /api/v1/write`.
#[derive(Debug)]
pub struct RemoteWrite(pub thermostat_ingest::RemoteWriteApi);

impl RemoteWriteApi for RemoteWrite {
    fn write(
        &self,
        principal: Arc<Principal>,
        request: thermostat_prometheus::Request,
    ) -> WriteFuture {
        let api = self.0.clone();
        Box::pin(async move {
            api.write(&principal, request).await.map_err(|e| match e {
                // Waiting does not lift a series limit: 400, which senders do not retry
                // (a 429 would be retried forever).
                e @ thermostat_ingest::Error::SeriesLimit { .. } => {
                    WriteError::Invalid(e.to_string())
                }
                e => remote_write_error(e),
            })
        })
    }
}

/// An ingest error as remote write answers it, classified as for OTLP/HTTP.
fn remote_write_error(e: thermostat_ingest::Error) -> WriteError {
    match http_error(e) {
        OtlpError::Invalid(m) | OtlpError::TooLarge(m) => WriteError::Invalid(m),
        OtlpError::Denied(m) => WriteError::Denied(m),
        OtlpError::Overloaded(m) => WriteError::Overloaded(m),
        OtlpError::Unavailable(m) => WriteError::Unavailable(m),
        OtlpError::Internal(m) => WriteError::Internal(m),
    }
}
