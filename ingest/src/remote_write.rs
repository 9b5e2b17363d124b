//! Prometheus remote write: the store side of the binary's HTTP `POST /api/v1/write`
//! ([`RemoteWriteApi::write`]), over the same store, log, limits, admission, series
//! reservations, access, cumulative streams and telemetry as the native API. `docs/prometheus.md`
//! is the contract of the mapping ([`thermostat_prometheus::map`]).
//!
//! # A request, step by step
//! 1. Admission: a permit of the in-flight semaphore shared with the native pushes (none
//!    free: [`Error::Overloaded`], which HTTP answers 429 with `Retry-After`); shutting down:
//!    [`Error::ShuttingDown`] (503).
//! 2. The `PushMetrics` permission.
//! 3. Under the lock of the live cumulative streams (shared with OTLP, `streams.rs`; the
//!    Prometheus streams have their own origin, so they never meet OTLP's): the mapping, which
//!    advances the streams. Remote write has no partial success: a request with any series
//!    or sample that breaks a rule is refused whole ([`Error::RemoteWrite`], 400, which the
//!    specification says senders must not retry), its stream changes undone, nothing of it
//!    stored. Then, as for OTLP ([`MetricsApi::queue_mapped`]): the namespaces against the
//!    token's scope, the series limits, and the record (observations and stream updates)
//!    queued for the log.
//! 4. The answer once the record is durable and applied: what was written, for the 2.0
//!    response headers. Telemetry: `thermostat_remote_write_requests_total{version,outcome}`
//!    and `thermostat_remote_write_written_total{kind}`, besides the ingest counters every
//!    protocol shares. Staleness markers are then noted in the store
//!    ([`thermostat_metrics::store::Store::mark_ended`]) so that the query API's look-back
//!    stops at them.

use thermostat_auth::{Permission, Principal};
use thermostat_metrics::telemetry::RemoteWriteVersion;
use thermostat_prometheus::{Request, Written};

use crate::error::{Error, Overload};
use crate::mapped::StreamChanges;
use crate::points::to_batch;
use crate::service::MetricsApi;
use crate::streams::{RemoteWriteOptions, prometheus_options};

/// Most rejections a refusal's message lists; it says how many more there were.
const MAX_LISTED: usize = 5;

/// Prometheus remote write over the same store and log as the [`MetricsApi`] it is made from
/// ([`MetricsApi::remote_write_api`]). Cheap to clone.
#[derive(Clone, Debug)]
pub struct RemoteWriteApi {
    api: MetricsApi,
}

impl RemoteWriteApi {
    /// Stores a decoded remote-write request for `principal` and answers once it is durable
    /// and applied, with what was written.
    ///
    /// # Errors
    /// The request is refused whole, nothing of it stored: [`Error::RemoteWrite`] (a series or
    /// sample broke a rule), [`Error::Denied`] (no `PushMetrics` permission, or a namespace
    /// outside the principal's), [`Error::SeriesLimit`] or [`Error::Overloaded`],
    /// [`Error::ShuttingDown`] or [`Error::Persist`].
    pub async fn write(&self, principal: &Principal, request: Request) -> Result<Written, Error> {
        let api = &self.api;
        let version = match request {
            Request::V1(_) => RemoteWriteVersion::v1,
            Request::V2(_) => RemoteWriteVersion::v2,
        };
        let Ok(_permit) = api.in_flight.try_acquire() else {
            return Err(self.refused(version, Error::Overloaded(Overload::RequestsInFlight)));
        };
        let admitted = self
            .admit(principal, &request)
            .map_err(|e| self.refused(version, e))?;
        drop(request);
        if let Some(pending) = admitted.pending {
            match pending.await {
                Ok(Ok(_seq)) => api.telemetry.ingest_accepted(admitted.samples),
                Ok(Err(e)) => return Err(self.refused(version, Error::Persist(e))),
                Err(_) => return Err(self.refused(version, Error::ShuttingDown)),
            }
        }
        api.telemetry.remote_write_accepted(
            version,
            admitted.written.samples,
            admitted.written.histograms,
        );
        for (key, at_ms) in &admitted.stale {
            api.store
                .mark_ended(key, thermostat_metrics::Timestamp::from_millis(*at_ms));
        }
        Ok(admitted.written)
    }

    /// Counts a refusal in telemetry.
    fn refused(&self, version: RemoteWriteVersion, e: Error) -> Error {
        if let Some(reason) = e.reason() {
            self.api.telemetry.ingest_rejected(reason);
        }
        self.api.telemetry.remote_write_refused(version);
        tracing::debug!(error = %e, "Refused a remote write.");
        e
    }

    /// Steps 2 and 3 of the module docs.
    fn admit(&self, principal: &Principal, request: &Request) -> Result<Admitted, Error> {
        let api = &self.api;
        if api.stopping.is_cancelled() {
            return Err(Error::ShuttingDown);
        }
        api.access
            .authorize(principal, Permission::PushMetrics)
            .map_err(Error::Denied)?;
        let received = api.clock.now();
        let mut live = api.otlp_streams.live();
        let mut mapped = thermostat_prometheus::map(
            request,
            &mut live,
            received.as_millis(),
            &api.prometheus_options,
        );
        let clustered = api.wal.is_remote();
        let (batch, checked) = to_batch(&mapped.points, clustered);
        let mut rejected: Vec<String> = mapped
            .rejected
            .iter()
            .map(|r| format!("{} (series {})", r.rule, r.series))
            .collect();
        rejected.extend(
            checked
                .into_iter()
                .map(|(i, rule)| format!("{rule} (series {})", mapped.points[i].series)),
        );
        if !rejected.is_empty() {
            for update in &mapped.undo {
                live.apply(update);
            }
            return Err(Error::RemoteWrite(refusal(&rejected)));
        }
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
            written: mapped.written,
            stale: mapped.stale,
        })
    }
}

/// A request admitted: what to wait for, and what to answer.
struct Admitted {
    pending: Option<tokio::sync::oneshot::Receiver<crate::wal::Acknowledgement>>,
    samples: f64,
    written: Written,
    stale: Vec<(thermostat_metrics::SeriesKey, i64)>,
}

/// The message of a refused request: how many rejections, the first few.
fn refusal(rejected: &[String]) -> String {
    let mut m = format!(
        "{} series or samples of this request break a rule: ",
        rejected.len()
    );
    m.push_str(&rejected[..rejected.len().min(MAX_LISTED)].join("; "));
    if rejected.len() > MAX_LISTED {
        m.push_str(&format!("; and {} more", rejected.len() - MAX_LISTED));
    }
    m
}

// === impl MetricsApi (remote write) ===

impl MetricsApi {
    /// Maps remote-write requests with `options`.
    pub fn with_remote_write(mut self, options: &RemoteWriteOptions) -> Self {
        self.prometheus_options =
            std::sync::Arc::new(prometheus_options(options, self.limits.max_series));
        self
    }

    /// Prometheus remote write over this service's store, log, limits, admission, series
    /// reservations, access, streams and telemetry (the binary's HTTP `/api/v1/write` calls
    /// its [`RemoteWriteApi::write`]).
    pub fn remote_write_api(&self) -> RemoteWriteApi {
        RemoteWriteApi { api: self.clone() }
    }
}
