//! What OTLP exports (`otlp.rs`) and Prometheus remote writes (`remote_write.rs`) share once
//! their request is mapped and made a batch (`points.rs`): the batch with its cumulative-stream
//! updates checked against the principal's namespaces and the series limits and queued for the
//! log ([`MetricsApi::queue_mapped`]), or refused with the streams' changes undone.

use std::sync::Arc;

use thermostat_auth::{Permission, Principal};
use thermostat_metrics::cumulative::{CumulativePoint, StreamUpdate, Streams};
use thermostat_metrics::{ObservationBatch, SeriesKey, Timestamp};
use tokio::sync::oneshot;

use crate::error::{Error, Overload};
use crate::reservation::Reservation;
use crate::service::MetricsApi;
use crate::streams::Undo;
use crate::wal::{Acknowledgement, Job, Refused};

/// What mapping a request did to the cumulative streams.
pub(crate) struct StreamChanges {
    /// The updates it made to the live streams, in order (logged with the request).
    pub(crate) made: Vec<StreamUpdate>,
    /// Their inverses, in the order to apply them.
    pub(crate) undo: Vec<StreamUpdate>,
    /// Cluster mode: the cumulative points, whose increases the partitions' owners make
    /// (empty in single-node mode, where the batch holds the increases).
    pub(crate) cumulative: Vec<CumulativePoint>,
}

impl StreamChanges {
    /// Takes a mapping's updates, their inverses and, when `clustered`, its cumulative
    /// points.
    pub(crate) fn take(
        made: &mut Vec<StreamUpdate>,
        undo: &mut Vec<StreamUpdate>,
        cumulative: &mut Vec<CumulativePoint>,
        clustered: bool,
    ) -> Self {
        StreamChanges {
            made: std::mem::take(made),
            undo: std::mem::take(undo),
            cumulative: if clustered {
                std::mem::take(cumulative)
            } else {
                Vec::new()
            },
        }
    }
}

/// Applies `undo` to the live streams: the request's changes are gone.
fn undo_now(live: &mut Streams, undo: &[StreamUpdate]) {
    for update in undo {
        live.apply(update);
    }
}

impl MetricsApi {
    /// Checks a mapped request's batch (and, in cluster mode, its cumulative points, whose
    /// increases the partitions' owners make) against `principal`'s namespaces and the series
    /// limits and queues it for the log with the stream updates it made (`changes`), while the
    /// caller holds the live streams' lock (`live`), so that records carry each stream's
    /// updates in the order the live state saw them. Returns what to wait for before
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
        changes: StreamChanges,
    ) -> Result<Option<oneshot::Receiver<Acknowledgement>>, Error> {
        let StreamChanges {
            made,
            undo,
            cumulative,
        } = changes;
        let refuse = |live: &mut Streams, e: Error| {
            undo_now(live, &undo);
            Err(e)
        };
        let series = || {
            batch
                .series()
                .chain(cumulative.iter().map(|p| &p.key.series))
        };
        let mut namespaces: Vec<&Arc<str>> = series().map(|k| k.namespace_arc()).collect();
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
            let mut runs: Vec<&SeriesKey> = series().filter(|k| k.namespace_arc() == *ns).collect();
            runs.sort_unstable();
            runs.dedup();
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
        let job =
            Job::with_streams(batch, received, ack, undo, cumulative).holding_all(reservations);
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
