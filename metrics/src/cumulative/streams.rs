//! Per-stream state for turning cumulative points (OTLP's cumulative temporality, Prometheus'
//! counters and histograms) into increases: what the last point of each cumulative stream
//! said, so that the next one can be subtracted from it.
//!
//! [`Streams::apply`] is the only way the state changes. The mappings (`thermostat_otlp::map`,
//! `thermostat_prometheus::map`) apply the [`StreamUpdate`]s they make as they go and return
//! them in order; logging them (after a snapshot of the [`Streams`], which serialize) and
//! applying them again after a crash rebuilds exactly the state the live process had.
//!
//! These types are serialized into the write-ahead log and snapshots: their field order and
//! names and the order of enum variants are part of that format (new variants only at the
//! end).

use std::collections::HashMap;

use crate::SeriesKey;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The kind of a cumulative stream: a metric that changes type is a new stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum StreamKind {
    /// A monotonic cumulative Sum.
    Sum,
    /// A cumulative explicit-bucket Histogram.
    Histogram,
    /// A cumulative ExponentialHistogram.
    ExponentialHistogram,
    /// A Summary (whose count and sum are cumulative).
    Summary,
}

/// The identity of a cumulative stream: the series the points go to, the kind, and the
/// origin. For OTLP the origin is a hash of the point's whole resource (every attribute, not
/// only those that became dimensions) and its instrumentation scope (name and version); for
/// Prometheus remote write it is one fixed value, distinct from OTLP's. Several senders whose points
/// go to one series (two processes of one service on one host, say) are separate streams,
/// each subtracted from its own previous point, and their increases add up in the series.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StreamKey {
    /// Namespace, metric name and sorted dimensions.
    pub series: SeriesKey,
    /// What the stream carries.
    pub kind: StreamKind,
    /// Who sends the stream: for OTLP, xxh3 of the resource's attributes (sorted) and the
    /// scope's name and version; for Prometheus, a constant of `thermostat-prometheus`.
    pub origin: u64,
}

/// A range of exponential histogram buckets: `counts[i]` counts bucket `offset + i`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRange {
    /// Index of the first bucket.
    pub offset: i32,
    /// The buckets' counts.
    pub counts: Vec<u64>,
}

/// The totals of a cumulative explicit-bucket histogram point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistogramTotals {
    /// Values counted since the start.
    pub count: u64,
    /// Their sum, when the point carries it.
    pub sum: Option<f64>,
    /// The least value since the start, when the point carries it.
    pub min: Option<f64>,
    /// The greatest value since the start, when the point carries it.
    pub max: Option<f64>,
    /// The buckets' upper bounds (the layout).
    pub bounds: Vec<f64>,
    /// The buckets' counts (`bounds.len() + 1` of them, or none).
    pub counts: Vec<u64>,
}

/// The totals of a cumulative exponential histogram point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExponentialTotals {
    /// Values counted since the start.
    pub count: u64,
    /// Their sum, when the point carries it.
    pub sum: Option<f64>,
    /// The least value since the start, when the point carries it.
    pub min: Option<f64>,
    /// The greatest value since the start, when the point carries it.
    pub max: Option<f64>,
    /// The resolution: `base = 2^(2^-scale)`.
    pub scale: i32,
    /// Values in the zero bucket.
    pub zero_count: u64,
    /// The zero bucket's half-width.
    pub zero_threshold: f64,
    /// Buckets of positive values.
    pub positive: BucketRange,
    /// Buckets of negative values (by their magnitude).
    pub negative: BucketRange,
}

/// What the last point of a cumulative stream said.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Totals {
    /// A monotonic Sum's value.
    Sum(f64),
    /// An explicit-bucket histogram's totals.
    Histogram(HistogramTotals),
    /// An exponential histogram's totals.
    Exponential(ExponentialTotals),
    /// A Summary's count and sum.
    Summary {
        /// Values counted since the start.
        count: u64,
        /// Their sum.
        sum: f64,
    },
}

/// The state of one cumulative stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamState {
    /// `start_time_unix_nano` of the last point (0: the sender did not say); for Prometheus,
    /// the created (start) timestamp in ns.
    pub start_time_unix_nano: u64,
    /// `time_unix_nano` of the last point.
    pub time_unix_nano: u64,
    /// Server time (ms) at which the last point was mapped: what idleness is measured from.
    pub seen_ms: i64,
    /// The last point's totals.
    pub totals: Totals,
}

/// One change to [`Streams`]: what is logged so that replay rebuilds the state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StreamUpdate {
    /// The stream's state is now `state` (a new stream, or its next point).
    Set {
        /// The stream.
        key: StreamKey,
        /// Its new state.
        state: StreamState,
    },
    /// The stream is forgotten (idle for too long, or ended by a staleness marker).
    Remove {
        /// The stream.
        key: StreamKey,
    },
}

/// The state of every cumulative stream. Bounded by the caller's `max_streams` (the mappings'
/// `MapOptions`): a mapping makes no new stream beyond it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Streams {
    streams: HashMap<StreamKey, StreamState>,
}

impl Streams {
    /// No streams.
    pub fn new() -> Self {
        Streams::default()
    }

    /// How many streams there are.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// The state of `key`'s stream.
    pub fn get(&self, key: &StreamKey) -> Option<&StreamState> {
        self.streams.get(key)
    }

    /// Every stream, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&StreamKey, &StreamState)> {
        self.streams.iter()
    }

    /// Applies one update: the only way the state changes.
    pub fn apply(&mut self, update: &StreamUpdate) {
        match update {
            StreamUpdate::Set { key, state } => {
                self.streams.insert(key.clone(), state.clone());
            }
            StreamUpdate::Remove { key } => {
                self.streams.remove(key);
            }
        }
    }

    /// Applies one update like [`Streams::apply`] and returns its inverse: the update that
    /// puts the stream back as it was (a `Set` of its previous state, or a `Remove` when it
    /// had none), so that a caller whose log refuses the change can undo it.
    pub fn apply_undoable(&mut self, update: &StreamUpdate) -> StreamUpdate {
        let (key, previous) = match update {
            StreamUpdate::Set { key, state } => {
                (key, self.streams.insert(key.clone(), state.clone()))
            }
            StreamUpdate::Remove { key } => (key, self.streams.remove(key)),
        };
        match previous {
            Some(state) => StreamUpdate::Set {
                key: key.clone(),
                state,
            },
            None => StreamUpdate::Remove { key: key.clone() },
        }
    }

    /// The updates that forget every stream not seen for more than `idle_ms` before `now_ms`,
    /// in key order (not applied).
    pub fn idle(&self, now_ms: i64, idle_ms: i64) -> Vec<StreamUpdate> {
        let mut idle: Vec<&StreamKey> = self
            .streams
            .iter()
            .filter(|(_, state)| now_ms.saturating_sub(state.seen_ms) > idle_ms)
            .map(|(key, _)| key)
            .collect();
        idle.sort_unstable();
        idle.into_iter()
            .map(|key| StreamUpdate::Remove { key: key.clone() })
            .collect()
    }

    /// Forgets every stream not seen for more than `idle_ms` before `now_ms`, and returns the
    /// updates that did so (to be logged like those of a mapping), in key order.
    pub fn expire(&mut self, now_ms: i64, idle_ms: i64) -> Vec<StreamUpdate> {
        let updates = self.idle(now_ms, idle_ms);
        for update in &updates {
            self.apply(update);
        }
        updates
    }
}

/// Serialized as a sequence of `(key, state)` pairs sorted by key, so that equal states
/// serialize alike whatever format the caller uses (map keys need not be strings).
impl Serialize for Streams {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entries: Vec<(&StreamKey, &StreamState)> = self.streams.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        serializer.collect_seq(entries)
    }
}

impl<'de> Deserialize<'de> for Streams {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = Vec::<(StreamKey, StreamState)>::deserialize(deserializer)?;
        Ok(Streams {
            streams: entries.into_iter().collect(),
        })
    }
}
