//! OTLP/HTTP connected to ingest: the dashboards' [`OtlpApi`] port (`POST /v1/metrics`) over
//! [`thermostat_ingest::OtlpApi`], the same export OTLP/gRPC uses.

use std::sync::Arc;

use thermostat_auth::Principal;
use thermostat_dashboards::otlp::{OtlpApi, OtlpError, OtlpFuture};
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
