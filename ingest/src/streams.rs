//! The OTLP cumulative streams' state as the ingest adapter keeps it: the live state the
//! mapping reads and advances, and the state of the records applied so far, which the
//! snapshots hold.
//!
//! # Why two copies
//! [`thermostat_otlp::map`] advances the live state as it maps a request, before the request's
//! record is written; the next request of the same stream must see it. A snapshot, though,
//! must hold exactly the streams of the log records up to a sequence number, so that recovery
//! replays the updates of the newer ones and no other. The applier thread keeps that second
//! copy ([`Applied`]), applying each record's updates in sequence order with its
//! observations; a checkpoint writes it with its sequence number. Recovery rebuilds it (the
//! snapshot's, then the log's updates) and starts the live state as a clone of it.
//!
//! # Order, and undoing a refused request
//! A request is mapped *and* queued for the log under the live state's lock (`otlp.rs`), so
//! the records carrying a stream's updates are logged in the order the live state saw them.
//! When the request is refused before its record is queued (a namespace outside the token's
//! scope, a series limit, a full queue, shutting down) the mapping's inverse
//! ([`thermostat_otlp::Mapped::undo`]) is applied under the same lock: the live state is as
//! if the request had never come, and a retry of it counts again. When the write itself fails
//! later (the disk), the writer undoes each failed record's updates, newest first, for the
//! streams whose live state is still what the record left ([`Undo::revert`]): a stream a later
//! request has moved on keeps that request's state, which its own record carries (the failed
//! point's increase is then lost, as the error the sender got says; a retry of it is stale).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use thermostat_metrics::cumulative::{
    CumulativePoint, MappedData, MappedPoint, Step, increase_data, step,
};
use thermostat_otlp::{MapOptions, StreamKey, StreamState, StreamUpdate, Streams};

/// The OTLP settings of the service ([`crate::MetricsApi::with_otlp`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OtlpOptions {
    /// Resource attributes that become dimensions besides `service.name`,
    /// `service.namespace` (when it is not the namespace) and `host.name`
    /// (`otlp.resource_dimensions`).
    pub resource_dimensions: Vec<String>,
}

/// The mapping's options: `--max-series` bounds the streams.
pub(crate) fn map_options(
    options: &OtlpOptions,
    max_series: usize,
    stream_idle: std::time::Duration,
) -> MapOptions {
    MapOptions {
        resource_dimensions: options.resource_dimensions.clone(),
        max_streams: max_series,
        stream_idle_ms: i64::try_from(stream_idle.as_millis()).unwrap_or(i64::MAX),
    }
}

/// How remote-write series are mapped (`prometheus.*` settings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteWriteOptions {
    /// The label whose value is the namespace (`prometheus.namespace_label`, default `job`).
    pub namespace_label: String,
}

impl Default for RemoteWriteOptions {
    fn default() -> Self {
        RemoteWriteOptions {
            namespace_label: thermostat_prometheus::DEFAULT_NAMESPACE_LABEL.to_owned(),
        }
    }
}

/// The mapping's options: `--max-series` bounds the streams.
pub(crate) fn prometheus_options(
    options: &RemoteWriteOptions,
    max_series: usize,
) -> thermostat_prometheus::MapOptions {
    thermostat_prometheus::MapOptions {
        namespace_label: options.namespace_label.clone(),
        max_streams: max_series,
    }
}

/// The OTLP streams' state, shared by the OTLP service, the log's applier and the
/// checkpoints.
#[derive(Debug, Default)]
pub(crate) struct StreamsState {
    live: Mutex<Streams>,
    applied: Mutex<Applied>,
}

/// The streams after every record up to `seq` (the newest record with updates applied).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Applied {
    pub(crate) streams: Streams,
    pub(crate) seq: u64,
}

impl Applied {
    /// Applies the updates of record `seq` (replay, or the applier).
    pub(crate) fn apply_record(&mut self, seq: u64, updates: &[StreamUpdate]) {
        if updates.is_empty() || seq <= self.seq {
            return;
        }
        for update in updates {
            self.streams.apply(update);
        }
        self.seq = seq;
    }
}

impl StreamsState {
    /// The state recovered: `applied`, and a live state equal to it.
    pub(crate) fn recovered(applied: Applied) -> Self {
        StreamsState {
            live: Mutex::new(applied.streams.clone()),
            applied: Mutex::new(applied),
        }
    }

    /// The live state, locked.
    pub(crate) fn live(&self) -> MutexGuard<'_, Streams> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The applied state, locked.
    pub(crate) fn applied(&self) -> MutexGuard<'_, Applied> {
        self.applied.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cluster mode: applies cumulative points of a partition this node owns, in the order
    /// of the partition's records, to the applied streams (which this node's checkpoints and
    /// the partition's snapshots hold), and returns the increases they record. A point not
    /// newer than its stream's state (a record read again) records nothing; an interval that
    /// counted nothing is left out, as the mappings leave it out.
    pub(crate) fn convert(&self, points: &[CumulativePoint]) -> Vec<MappedPoint> {
        let mut applied = self.applied();
        let mut out = Vec::new();
        for p in points {
            let Some(Step {
                state, increase, ..
            }) = step(applied.streams.get(&p.key), p)
            else {
                continue;
            };
            applied.streams.apply(&StreamUpdate::Set {
                key: p.key.clone(),
                state,
            });
            let Some(increase) = increase else {
                continue;
            };
            let data = increase_data(&increase);
            if matches!(data, MappedData::Distribution { count: 0, .. }) {
                continue;
            }
            out.push(MappedPoint {
                series: p.key.series.clone(),
                unit: p.unit,
                timestamp_ms: p.timestamp_ms,
                point: 0,
                data,
                from_stream: true,
            });
        }
        out
    }

    /// The applied streams whose series hash into `partition` of `partitions`, by key.
    pub(crate) fn partition(
        &self,
        partition: u32,
        partitions: u32,
    ) -> Vec<(StreamKey, StreamState)> {
        let in_it = in_partition(partition, partitions);
        let mut out: Vec<(StreamKey, StreamState)> = self
            .applied()
            .streams
            .iter()
            .filter(|(k, _)| in_it(k))
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Replaces the applied streams of `partition` with `streams` (a partition snapshot
    /// taken over from another node).
    pub(crate) fn replace_partition(
        &self,
        partition: u32,
        partitions: u32,
        streams: Vec<(StreamKey, StreamState)>,
    ) {
        let in_it = in_partition(partition, partitions);
        let mut applied = self.applied();
        let gone: Vec<StreamKey> = applied
            .streams
            .iter()
            .filter(|(k, _)| in_it(k))
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            applied.streams.apply(&StreamUpdate::Remove { key });
        }
        for (key, state) in streams {
            applied.streams.apply(&StreamUpdate::Set { key, state });
        }
    }

    /// Forgets the streams idle for more than `idle_ms` at `now_ms`, in both copies. Not
    /// logged: recovery expires with the same rule ([`thermostat_otlp::Streams::expire`] reads
    /// only each stream's `seen_ms`, which the updates carry), so a stream forgotten here is
    /// forgotten after a restart too, unless a later point brought it back, which its record
    /// replays. Returns how many live streams were forgotten.
    pub(crate) fn expire(&self, now_ms: i64, idle_ms: i64) -> usize {
        let n = self.live().expire(now_ms, idle_ms).len();
        self.applied().streams.expire(now_ms, idle_ms);
        n
    }
}

/// Whether a stream's series hashes into `partition` of `partitions` (cluster mode).
pub(crate) fn in_partition(partition: u32, partitions: u32) -> impl Fn(&StreamKey) -> bool {
    let partitions = u64::from(partitions.max(1));
    move |key| key.series.stable_hash() % partitions == u64::from(partition)
}

/// How to undo one logged request's changes to the live state if its write fails.
#[derive(Debug)]
pub(crate) struct Undo {
    pub(crate) state: Arc<StreamsState>,
    /// The updates the request made, in order.
    pub(crate) made: Vec<StreamUpdate>,
    /// Their inverses, to apply in order ([`thermostat_otlp::Mapped::undo`]).
    pub(crate) undo: Vec<StreamUpdate>,
}

fn key_of(update: &StreamUpdate) -> &StreamKey {
    match update {
        StreamUpdate::Set { key, .. } | StreamUpdate::Remove { key } => key,
    }
}

impl Undo {
    /// Puts back, in the live state, each stream this request changed and nothing changed
    /// since (see the module docs).
    pub(crate) fn revert(self) {
        let mut left: HashMap<&StreamKey, Option<&StreamState>> = HashMap::new();
        for update in &self.made {
            let state = match update {
                StreamUpdate::Set { state, .. } => Some(state),
                StreamUpdate::Remove { .. } => None,
            };
            left.insert(key_of(update), state);
        }
        let mut live = self.state.live();
        let untouched: Vec<&StreamKey> = left
            .iter()
            .filter(|(key, state)| live.get(key) == **state)
            .map(|(key, _)| *key)
            .collect();
        for update in &self.undo {
            if untouched.contains(&key_of(update)) {
                live.apply(update);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use thermostat_metrics::SeriesKey;
    use thermostat_otlp::StreamKind;
    use thermostat_otlp::streams::Totals;

    use super::*;

    fn key(n: u64) -> StreamKey {
        StreamKey {
            series: SeriesKey::new("N", "m", vec![]),
            kind: StreamKind::Sum,
            origin: n,
        }
    }

    fn set(n: u64, v: f64) -> StreamUpdate {
        StreamUpdate::Set {
            key: key(n),
            state: StreamState {
                start_time_unix_nano: 1,
                time_unix_nano: v as u64,
                seen_ms: 0,
                totals: Totals::Sum(v),
            },
        }
    }

    /// Two failed requests of one stream, undone newest first, give the state before both; a
    /// stream moved on by a later request keeps its state.
    #[test]
    fn failed_writes_are_undone_newest_first_unless_moved_on() {
        let state = Arc::new(StreamsState::default());
        let mut jobs = Vec::new();
        for (n, v) in [(1, 1.0), (1, 2.0), (2, 5.0), (2, 6.0)] {
            let mut live = state.live();
            let update = set(n, v);
            let inverse = live.apply_undoable(&update);
            jobs.push(Undo {
                state: Arc::clone(&state),
                made: vec![update],
                undo: vec![inverse],
            });
        }
        let before_2 = state.live().get(&key(2)).cloned();
        // Jobs 0 and 1 failed (stream 1 back to nothing); job 2 failed but job 3 (stream 2)
        // went through.
        let mut jobs = jobs.into_iter();
        let (j0, j1, j2) = (
            jobs.next().unwrap(),
            jobs.next().unwrap(),
            jobs.next().unwrap(),
        );
        j1.revert();
        j0.revert();
        j2.revert();
        let live = state.live();
        assert_eq!(live.get(&key(1)), None);
        assert_eq!(live.get(&key(2)).cloned(), before_2);
    }
}
