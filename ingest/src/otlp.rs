//! The OTLP metrics service: `opentelemetry.proto.collector.metrics.v1.MetricsService/Export`
//! on the gRPC port ([`OtlpApi`], served by [`crate::serve`]), and the same export for the
//! HTTP `POST /v1/metrics` of the binary ([`OtlpApi::export`]). `docs/otlp.md` is the
//! contract of the mapping.
//!
//! # A request, step by step
//! 1. Admission: a permit of the in-flight semaphore shared with the native pushes (none free:
//!    `RESOURCE_EXHAUSTED`); shutting down: `UNAVAILABLE`.
//! 2. Limits ([`thermostat_otlp::check_limits`]) and the `PushMetrics` permission; a request
//!    that breaks them is refused whole (`INVALID_ARGUMENT`, `PERMISSION_DENIED`).
//! 3. Under the lock of the live OTLP streams (`streams.rs`): the mapping
//!    ([`thermostat_otlp::map`], which advances the streams), the points turned into an
//!    [`ObservationBatch`] (each checked with the metrics core's rules once more: a point that
//!    breaks one, such as a distribution of more than
//!    [`validate::MAX_DISTRIBUTION_BUCKETS`] buckets, is a rejected point), every namespace
//!    against the token's scope (one outside it refuses the request whole:
//!    `PERMISSION_DENIED`), the series limits as for native pushes (`RESOURCE_EXHAUSTED`, the
//!    request whole), and the record (observations and stream updates) queued for the log. A
//!    request refused at any of these steps has its stream changes undone before the lock is
//!    released, so nothing of it remains.
//! 4. The answer once the record is durable and applied, with `partial_success` when points
//!    were rejected.
//!
//! Telemetry (`GET /metrics`): every request, over gRPC or HTTP, is counted once in
//! `thermostat_otlp_requests_total{outcome}` when it is answered (`accepted`, `partial`) or
//! refused (`refused`); the points of an answered request in
//! `thermostat_otlp_points_total{result="accepted"}` and
//! `thermostat_otlp_points_rejected_total{reason}` (the [`RejectReason`] of each rejection,
//! including those of the metrics core's rules, which are `value`). Skipped points (no
//! recorded value, stale, empty) are in neither.
//!
//! A rejected cumulative point still moves its stream on (its update is logged): its
//! increase is lost, as the rejection says, not folded into the next point's.
//!
//! Points are stored at standard resolution (1-minute windows), CloudWatch's default for
//! `PutMetricData`.

use std::sync::Arc;

use thermostat_auth::{Permission, Principal};
use thermostat_metrics::telemetry::OtlpRejectReason;
use thermostat_otlp::proto::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use thermostat_otlp::{RejectReason, Rejection};
use thermostat_proto::otlp::metrics_service_server::MetricsService;
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use crate::error::{Error, Overload};
use crate::mapped::StreamChanges;
use crate::points::to_batch;
use crate::service::MetricsApi;
use crate::streams::{OtlpOptions, map_options};
use crate::wal::Acknowledgement;

/// The OTLP metrics service over the same store, log, limits, admission, series
/// reservations, access and telemetry as the native [`MetricsApi`] it is made from
/// ([`MetricsApi::otlp_api`], [`crate::Ingest::otlp_api`]). Cheap to clone.
#[derive(Clone, Debug)]
pub struct OtlpApi {
    api: MetricsApi,
}

/// A request admitted: what to wait for, and what to answer.
struct Admitted {
    pending: Option<oneshot::Receiver<Acknowledgement>>,
    samples: f64,
    /// Points stored.
    points: u64,
    rejected: Vec<Rejection>,
}

impl OtlpApi {
    pub(crate) fn new(api: MetricsApi) -> Self {
        OtlpApi { api }
    }

    /// Stores the points of an OTLP export for `principal` and answers once they are durable
    /// and applied: `partial_success` names the points rejected (the others are kept), and is
    /// unset when none was.
    ///
    /// # Errors
    /// The request is refused whole, nothing of it stored: [`Error::Otlp`] (a limit broken:
    /// `INVALID_ARGUMENT`), [`Error::Denied`] (no `PushMetrics` permission, or a namespace
    /// outside the principal's: `PERMISSION_DENIED`), [`Error::SeriesLimit`] or
    /// [`Error::Overloaded`] (`RESOURCE_EXHAUSTED`), [`Error::ShuttingDown`] or
    /// [`Error::Persist`] (`UNAVAILABLE`). `tonic::Status::from` maps each.
    pub async fn export(
        &self,
        principal: &Principal,
        request: ExportMetricsServiceRequest,
    ) -> Result<ExportMetricsServiceResponse, Error> {
        let api = &self.api;
        let Ok(_permit) = api.in_flight.try_acquire() else {
            return Err(self.refused(Error::Overloaded(Overload::RequestsInFlight)));
        };
        let admitted = self
            .admit(principal, &request)
            .map_err(|e| self.refused(e))?;
        drop(request);
        if let Some(pending) = admitted.pending {
            match pending.await {
                Ok(Ok(_seq)) => api.telemetry.ingest_accepted(admitted.samples),
                Ok(Err(e)) => return Err(self.refused(Error::Persist(e))),
                Err(_) => return Err(self.refused(Error::ShuttingDown)),
            }
        }
        api.telemetry.otlp_answered(
            admitted.points,
            admitted.rejected.iter().map(|r| telemetry_reason(r.reason)),
        );
        Ok(ExportMetricsServiceResponse {
            partial_success: thermostat_otlp::partial_success(&admitted.rejected),
        })
    }

    /// Counts a refusal in telemetry.
    fn refused(&self, e: Error) -> Error {
        if let Some(reason) = e.reason() {
            self.api.telemetry.ingest_rejected(reason);
        }
        self.api.telemetry.otlp_refused();
        tracing::debug!(error = %e, "Rejected an OTLP export.");
        e
    }

    /// Steps 1 to 3 of the module docs: the request mapped, checked and queued for the log.
    fn admit(
        &self,
        principal: &Principal,
        request: &ExportMetricsServiceRequest,
    ) -> Result<Admitted, Error> {
        let api = &self.api;
        if api.stopping.is_cancelled() {
            return Err(Error::ShuttingDown);
        }
        thermostat_otlp::check_limits(request)?;
        api.access
            .authorize(principal, Permission::PushMetrics)
            .map_err(Error::Denied)?;
        let received = api.clock.now();
        let mut live = api.otlp_streams.live();
        let mut mapped =
            thermostat_otlp::map(request, &mut live, received.as_millis(), &api.otlp_options);
        let clustered = api.wal.is_remote();
        let (batch, checked) = to_batch(&mapped.points, clustered);
        let points = (mapped.points.len() - checked.len()) as u64;
        let mut rejected = std::mem::take(&mut mapped.rejected);
        rejected.extend(checked.into_iter().map(|(i, rule)| Rejection {
            metric: mapped.points[i].series.metric_name().to_owned(),
            point: mapped.points[i].point,
            rule,
            reason: RejectReason::Value,
        }));
        let samples = batch.samples;
        let pending = api.queue_mapped(
            principal,
            &mut live,
            batch,
            received,
            StreamChanges::take(
                &mut mapped.stream_updates,
                &mut mapped.undo,
                &mut mapped.cumulative,
                clustered,
            ),
        )?;
        Ok(Admitted {
            pending,
            samples,
            points,
            rejected,
        })
    }
}

/// The telemetry label of a rejection's reason.
fn telemetry_reason(reason: RejectReason) -> OtlpRejectReason {
    match reason {
        RejectReason::Identity => OtlpRejectReason::identity,
        RejectReason::Timestamp => OtlpRejectReason::timestamp,
        RejectReason::Value => OtlpRejectReason::value,
        RejectReason::Malformed => OtlpRejectReason::malformed,
        RejectReason::StreamLimit => OtlpRejectReason::stream_limit,
    }
}

// === impl MetricsApi (OTLP) ===

impl MetricsApi {
    /// Maps OTLP requests with `options` (by default, no further resource attributes become
    /// dimensions).
    pub fn with_otlp(mut self, options: &OtlpOptions) -> Self {
        self.otlp_options = Arc::new(map_options(
            options,
            self.limits.max_series,
            self.otlp_stream_idle,
        ));
        self
    }

    /// The OTLP metrics service over this service's store, log, limits, admission, series
    /// reservations, access and telemetry ([`crate::serve`] serves it beside this one; the
    /// binary's HTTP `/v1/metrics` calls its [`OtlpApi::export`]).
    pub fn otlp_api(&self) -> OtlpApi {
        OtlpApi::new(self.clone())
    }
}

#[tonic::async_trait]
impl MetricsService for OtlpApi {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let principal = self.api.principal(&request, Permission::PushMetrics)?;
        OtlpApi::export(self, &principal, request.into_inner())
            .await
            .map(Response::new)
            .map_err(Status::from)
    }
}

#[cfg(test)]
mod tests;
