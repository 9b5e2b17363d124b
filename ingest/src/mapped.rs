//! What OTLP exports (`otlp.rs`) and Prometheus remote writes (`remote_write.rs`) share once
//! their request is mapped: the mapped points as an [`ObservationBatch`], each checked with
//! the metrics core's rules ([`to_batch`]), and the batch with its cumulative-stream updates
//! checked against the principal's namespaces and the series limits and queued for the log
//! ([`MetricsApi::queue_mapped`]), or refused with the streams' changes undone.

use std::sync::Arc;

use thermostat_auth::{Permission, Principal};
use thermostat_metrics::cumulative::{MappedData, MappedPoint, StreamUpdate, Streams};
use thermostat_metrics::validate;
use thermostat_metrics::{Distribution, ObservationBatch, Resolution, SeriesKey, Timestamp};
use tokio::sync::oneshot;

use crate::error::{Error, Overload};
use crate::reservation::Reservation;
use crate::service::MetricsApi;
use crate::streams::Undo;
use crate::wal::{Acknowledgement, Job, Refused};

/// The points as observations at standard resolution (1-minute windows, CloudWatch's default
/// for `PutMetricData`), each checked with the metrics core's rules; those that break one are
/// returned as `(index in points, rule)` and left out.
pub(crate) fn to_batch(points: &[MappedPoint]) -> (ObservationBatch, Vec<(usize, String)>) {
    let mut batch = ObservationBatch::with_capacity(points.len());
    let mut rejected = Vec::new();
    let mut counts: Vec<f64> = Vec::new();
    for (i, p) in points.iter().enumerate() {
        let timestamp = Timestamp::from_millis(p.timestamp_ms);
        let checked = match &p.data {
            MappedData::Value(v) => validate::value(*v)
                .map_err(|rule| validate::ValidationError::new("value", rule))
                .map(|()| {
                    batch.push_value(&p.series, timestamp, p.unit, Resolution::Standard, *v);
                    1.0
                }),
            MappedData::Distribution {
                count,
                sum,
                min,
                max,
                values,
                counts: c,
            } => {
                counts.clear();
                counts.extend(c.iter().map(|&n| n as f64));
                let d = Distribution {
                    count: *count as f64,
                    sum: *sum,
                    min: *min,
                    max: *max,
                    values,
                    counts: &counts,
                };
                validate::distribution(&d).map(|()| {
                    batch.push_distribution(&p.series, timestamp, p.unit, Resolution::Standard, &d);
                    d.count
                })
            }
        };
        match checked {
            Ok(samples) => batch.samples += samples,
            Err(e) => rejected.push((i, e.to_string())),
        }
    }
    (batch, rejected)
}

/// Applies `undo` to the live streams: the request's changes are gone.
fn undo_now(live: &mut Streams, undo: &[StreamUpdate]) {
    for update in undo {
        live.apply(update);
    }
}

impl MetricsApi {
    /// Checks a mapped request's batch against `principal`'s namespaces and the series limits
    /// and queues it for the log with the stream updates it `made` (their inverses `undo`),
    /// while the caller holds the live streams' lock (`live`), so that records carry each
    /// stream's updates in the order the live state saw them. Returns what to wait for before
    /// answering, or `None` when there is nothing to log.
    ///
    /// # Errors
    /// [`Error::Denied`] (a namespace outside the principal's), [`Error::SeriesLimit`],
    /// [`Error::Overloaded`] (the log's queue is full) or [`Error::ShuttingDown`]; the
    /// request's changes to `live` are undone first, so nothing of it remains.
    pub(crate) fn queue_mapped(
        &self,
        principal: &Principal,
        live: &mut Streams,
        batch: ObservationBatch,
        received: Timestamp,
        made: Vec<StreamUpdate>,
        undo: Vec<StreamUpdate>,
    ) -> Result<Option<oneshot::Receiver<Acknowledgement>>, Error> {
        let refuse = |live: &mut Streams, e: Error| {
            undo_now(live, &undo);
            Err(e)
        };
        let mut namespaces: Vec<&Arc<str>> = batch.series().map(|k| k.namespace_arc()).collect();
        namespaces.sort_unstable();
        namespaces.dedup();
        if principal.namespaces.is_some() {
            for ns in &namespaces {
                if let Err(d) =
                    self.access
                        .authorize_namespace(principal, Permission::PushMetrics, ns)
                {
                    return refuse(live, Error::Denied(d));
                }
            }
        }
        let mut reservations: Vec<Reservation> = Vec::new();
        for ns in &namespaces {
            let runs: Vec<&SeriesKey> = batch
                .series()
                .filter(|k| k.namespace_arc() == *ns)
                .collect();
            match self.reserve_series(ns, runs) {
                Ok(r) => reservations.extend(r),
                Err(e) => return refuse(live, e),
            }
        }
        if batch.is_empty() && made.is_empty() {
            return Ok(None);
        }
        let (ack, pending) = oneshot::channel();
        let undo = Undo {
            state: Arc::clone(&self.otlp_streams),
            made,
            undo,
        };
        let job = Job::with_streams(batch, received, ack, undo).holding_all(reservations);
        match self.wal.try_submit(job) {
            Ok(()) => Ok(Some(pending)),
            Err((why, job)) => {
                if let Some(undo) = job.into_undo() {
                    undo_now(live, &undo.undo);
                }
                Err(match why {
                    Refused::Full => Error::Overloaded(Overload::LogQueueFull),
                    Refused::Closed => Error::ShuttingDown,
                })
            }
        }
    }
}
