//! The in-memory series store: per series and unit, windows at four granularities with
//! CloudWatch's retention (reference §2.4), sharded so that ingest never takes a global lock.
//!
//! Every observation lives in exactly one window at any time: high-resolution data in a
//! 1-second window, standard data in a 60-second window. [`Store::compact`] moves windows that
//! age past their tier's retention into the next coarser tier (1 s → 60 s after 3 hours,
//! 60 s → 300 s after 15 days, 300 s → 3600 s after 63 days) and drops hourly windows after
//! 455 days, so nothing is ever counted twice. A query for period `P` reads the windows of
//! every tier whose granularity divides `P` and that lie wholly inside a bucket.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::series::SeriesKey;
use crate::shard_order::ShardOrder;
use crate::statistic::Statistic;
use crate::time::{DAY_MS, HOUR_MS, MINUTE_MS, Period, SECOND_MS, Timestamp};
use crate::unit::Unit;
use crate::window::{Distribution, StatisticSet, Window, WindowExport};

/// Granularity of each tier, finest first.
const TIER_MS: [i64; 4] = [SECOND_MS, MINUTE_MS, 5 * MINUTE_MS, HOUR_MS];
/// How long each tier keeps a window before it rolls into the next (the last one expires).
const TIER_RETENTION_MS: [i64; 4] = [3 * HOUR_MS, 15 * DAY_MS, 63 * DAY_MS, 455 * DAY_MS];
/// A window is sealed (made compact) once its end is this far in the past.
pub const SEAL_AFTER_MS: i64 = 2 * MINUTE_MS;
/// Series with no data for this long are left out of [`Store::list`] (as in CloudWatch).
pub const LIST_RECENT_MS: i64 = 14 * DAY_MS;
/// Most series one page of a listing holds, and the default (CloudWatch's ListMetrics: 500).
pub const LIST_MAX_RECORDS: usize = 500;
/// Most key bytes ([`SeriesKey::weight`]) one page of a listing holds past its first series:
/// 1 MiB, so that a page of series with the largest dimensions stays well within a gRPC
/// client's default 4 MiB message limit.
pub const LIST_MAX_BYTES: usize = 1 << 20;
/// Most datapoints one query may span.
pub const MAX_DATAPOINTS: i64 = 1440;
/// Most statistics one query may ask for.
pub const MAX_STATISTICS: usize = 15;

/// Storage resolution of a datum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resolution {
    /// Kept at 1-second granularity for 3 hours.
    High,
    /// Kept at 60-second granularity.
    Standard,
}

impl Resolution {
    /// From CloudWatch's `StorageResolution` (1 = high; 60 or 0 = standard).
    pub fn from_storage_resolution(storage_resolution: i32) -> Self {
        if storage_resolution == 1 {
            Resolution::High
        } else {
            Resolution::Standard
        }
    }
}

/// What one datum carries.
#[derive(Clone, Copy, Debug)]
pub enum Sample<'a> {
    /// One observation.
    Value(f64),
    /// Many observations at one timestamp; `counts` empty means 1 each.
    Values {
        /// The values.
        values: &'a [f64],
        /// How often each value occurred.
        counts: &'a [f64],
    },
    /// Pre-aggregated observations.
    Set(StatisticSet),
    /// Observations summarised by their exact count, sum and bounds and by buckets (an
    /// OpenTelemetry histogram or summary); see [`Window::record_distribution`].
    Distribution(Distribution<'a>),
}

impl Sample<'_> {
    /// Samples this datum counts as: 1, the sum of counts (1 per value without counts), the
    /// set's sample count, or the distribution's count.
    pub fn sample_count(&self) -> f64 {
        match self {
            Sample::Value(_) => 1.0,
            Sample::Values { values, counts: [] } => values.len() as f64,
            Sample::Values { counts, .. } => counts.iter().sum(),
            Sample::Set(s) => s.sample_count,
            Sample::Distribution(d) => d.count,
        }
    }
}

/// One validated observation of a series.
#[derive(Clone, Copy, Debug)]
pub struct Observation<'a> {
    /// When it was observed.
    pub timestamp: Timestamp,
    /// Its unit.
    pub unit: Unit,
    /// Where it is stored.
    pub resolution: Resolution,
    /// The data.
    pub sample: Sample<'a>,
}

/// An aggregated period of a series, as answered by [`Store::query`].
#[derive(Clone, Debug, PartialEq)]
pub struct Datapoint {
    /// Start of the period.
    pub timestamp: Timestamp,
    /// Unit of the data aggregated.
    pub unit: Unit,
    /// Number of observations in the period.
    pub sample_count: f64,
    /// The requested statistics, in request order; `None` where the period has no such
    /// statistic (a percentile of a period with negative values, multi-valued statistic sets
    /// or distributions without buckets).
    pub values: Vec<Option<f64>>,
}

/// A statistics query for one series.
#[derive(Clone, Debug)]
pub struct Query {
    /// The series.
    pub key: SeriesKey,
    /// Only data of this unit; `None` = every unit (one datapoint per unit and period).
    pub unit: Option<Unit>,
    /// Start, inclusive (rounded down as in CloudWatch).
    pub start: Timestamp,
    /// End, exclusive.
    pub end: Timestamp,
    /// Period length.
    pub period: Period,
    /// Statistics wanted.
    pub statistics: Vec<Statistic>,
}

/// Why a query cannot be answered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct QueryError {
    /// The request field at fault.
    pub field: &'static str,
    /// The rule it broke.
    pub rule: String,
}

impl QueryError {
    /// The field of an error that is not the request's fault: in cluster mode, the node
    /// owning the series could not be read now (a retry may succeed).
    pub const UNAVAILABLE: &'static str = "cluster";

    /// Whether the query failed for a reason other than the request (retry it later).
    pub fn is_unavailable(&self) -> bool {
        self.field == Self::UNAVAILABLE
    }
}

fn query_error(field: &'static str, rule: impl Into<String>) -> QueryError {
    QueryError {
        field,
        rule: rule.into(),
    }
}

/// Checks a period as CloudWatch does: 1, 5, 10, 20, 30 or a multiple of 60 seconds.
///
/// # Errors
/// The rule broken.
pub fn check_period(period: Period) -> Result<(), String> {
    let seconds = period.as_secs();
    if matches!(seconds, 1 | 5 | 10 | 20 | 30) || seconds.is_multiple_of(60) {
        Ok(())
    } else {
        Err(format!(
            "must be 1, 5, 10, 20, 30 or a multiple of 60 seconds (got {seconds})"
        ))
    }
}

/// A query's checked bucket layout (see [`Query::plan`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryPlan {
    /// The first bucket's start: the query's start rounded down as CloudWatch does.
    pub start: Timestamp,
    /// The period in milliseconds.
    pub period_ms: i64,
    /// Buckets from `start` to the query's end (at most [`MAX_DATAPOINTS`]).
    pub buckets: i64,
    /// What the query costs: periods × statistics (× 1 series), the unit of
    /// [`QueryGate`]'s limit.
    pub cost: u64,
}

impl Query {
    /// Checks the query's fields and lays out its buckets, with overflow-checked
    /// arithmetic throughout: times outside what RFC 3339 can write
    /// ([`Timestamp::EARLIEST`]..=[`Timestamp::LATEST`]), an end not after the start, a period
    /// CloudWatch does not allow, more than [`MAX_DATAPOINTS`] buckets or a wrong number of
    /// statistics are each an error naming the field (`start_time`, `end_time`,
    /// `period_seconds`, `statistics`). Nothing is allocated by size of input.
    ///
    /// # Errors
    /// A [`QueryError`] naming the field at fault.
    pub fn plan(&self, now: Timestamp) -> Result<QueryPlan, QueryError> {
        if let Err(e) = Timestamp::try_from_millis(self.start.as_millis()) {
            return Err(query_error(
                "start_time",
                format!("{e} (got {} ms)", self.start.as_millis()),
            ));
        }
        if let Err(e) = Timestamp::try_from_millis(self.end.as_millis()) {
            return Err(query_error(
                "end_time",
                format!("{e} (got {} ms)", self.end.as_millis()),
            ));
        }
        check_period(self.period).map_err(|r| query_error("period_seconds", r))?;
        if self.statistics.is_empty() || self.statistics.len() > MAX_STATISTICS {
            return Err(query_error(
                "statistics",
                format!(
                    "must name 1 to {MAX_STATISTICS} statistics (got {})",
                    self.statistics.len()
                ),
            ));
        }
        if self.end <= self.start {
            return Err(query_error(
                "end_time",
                format!(
                    "must be after the start time (got start {}, end {})",
                    self.start, self.end
                ),
            ));
        }
        let p = self.period.as_millis();
        // Both times are representable here, so every difference below fits an i64 with
        // room to spare; checked arithmetic keeps that an error rather than an assumption.
        let overflow = |field| query_error(field, "is too far from the other time of the query");
        let age = now.as_millis().saturating_sub(self.start.as_millis());
        let align = if p < MINUTE_MS {
            p
        } else if age < 15 * DAY_MS {
            MINUTE_MS
        } else if age < 63 * DAY_MS {
            5 * MINUTE_MS
        } else {
            HOUR_MS
        };
        let start = self
            .start
            .checked_floor_to(align)
            .filter(|s| s.is_representable())
            .ok_or_else(|| overflow("start_time"))?;
        let buckets = self
            .end
            .as_millis()
            .checked_sub(start.as_millis())
            .and_then(|span| span.checked_add(p - 1))
            .map(|span| span / p)
            .ok_or_else(|| overflow("end_time"))?;
        if buckets > MAX_DATAPOINTS {
            return Err(query_error(
                "period_seconds",
                format!(
                    "the range holds {buckets} periods of {} s, more than the limit of {MAX_DATAPOINTS} datapoints per query; use a longer period or a shorter range",
                    self.period.as_secs()
                ),
            ));
        }
        // buckets <= MAX_DATAPOINTS and statistics <= MAX_STATISTICS: the product is small.
        let cost = buckets.unsigned_abs() * self.statistics.len() as u64;
        Ok(QueryPlan {
            start,
            period_ms: p,
            buckets,
            cost,
        })
    }
}

/// The window a stream is writing, kept outside its tier's map.
#[derive(Debug)]
struct Head {
    tier: usize,
    start: i64,
    window: Window,
}

/// One unit's windows of a series, per tier, by start.
///
/// Samples go to a series' newest window almost always, so that window (the *head*) is kept
/// in the stream itself rather than in its tier's map: writing to it reads no map node, which
/// for a request of many series is a cache miss or three per datum saved. Invariant: the head
/// starts after every window in its tier's map. Reads see the head in its place
/// ([`Stream::range`], [`Stream::windows`]); compaction seals it in place and moves it into
/// its map only when it leaves its tier ([`compact_stream`]).
///
/// Only the tiers that keep a window beside the head are allocated, each once it does: a
/// fresh series holds none, and one with a second window one (40 bytes), not four (issue 23:
/// at a million series that was 90 MB whenever the data crossed a minute).
#[derive(Debug, Default)]
struct Stream {
    unit: Unit,
    /// `(tier, its windows)` by tier, only tiers that hold windows beside the head.
    tiers: Option<Box<[(u8, TierWindows)]>>,
    head: Option<Head>,
}

/// The windows of a stream without tiers.
static NO_WINDOWS: TierWindows = TierWindows::Few(Vec::new());

impl Stream {
    fn is_empty(&self) -> bool {
        self.head.is_none()
            && self
                .tiers
                .as_ref()
                .is_none_or(|t| t.iter().all(|(_, w)| w.is_empty()))
    }

    /// The windows of `tier` (the head apart).
    fn tier(&self, tier: usize) -> &TierWindows {
        self.tiers
            .as_ref()
            .and_then(|t| t.iter().find(|(n, _)| usize::from(*n) == tier))
            .map_or(&NO_WINDOWS, |(_, w)| w)
    }

    /// The windows of `tier` (the head apart), if the tier is allocated.
    fn tier_if_any(&mut self, tier: usize) -> Option<&mut TierWindows> {
        self.tiers
            .as_mut()?
            .iter_mut()
            .find(|(n, _)| usize::from(*n) == tier)
            .map(|(_, w)| w)
    }

    /// The windows of `tier` (the head apart), the tier allocated if it was not.
    fn tier_mut(&mut self, tier: usize) -> &mut TierWindows {
        let id = u8::try_from(tier).expect("four tiers");
        let tiers = self.tiers.get_or_insert_with(Box::default);
        let at = match tiers.iter().position(|(n, _)| *n == id) {
            Some(at) => at,
            None => {
                let mut grown = std::mem::take(tiers).into_vec();
                grown.push((id, TierWindows::default()));
                grown.sort_unstable_by_key(|(n, _)| *n);
                *tiers = grown.into_boxed_slice();
                tiers
                    .iter()
                    .position(|(n, _)| *n == id)
                    .expect("the tier was just added")
            }
        };
        &mut tiers[at].1
    }

    /// Frees the tiers that hold nothing.
    fn release_empty_tiers(&mut self) {
        let Some(tiers) = self.tiers.as_mut() else {
            return;
        };
        if tiers.iter().any(|(_, w)| w.is_empty()) {
            let kept: Vec<(u8, TierWindows)> = std::mem::take(tiers)
                .into_vec()
                .into_iter()
                .filter(|(_, w)| !w.is_empty())
                .collect();
            self.tiers = (!kept.is_empty()).then(|| kept.into_boxed_slice());
        }
    }

    /// The window of `tier` starting at `start`, created empty if missing (then `true`).
    fn window_mut(&mut self, tier: usize, start: i64) -> (&mut Window, bool) {
        let hit = matches!(&self.head, Some(h) if h.tier == tier && h.start == start);
        let mut created = false;
        if !hit {
            let newest = match &self.head {
                Some(h) if h.tier == tier => start > h.start,
                _ => self
                    .tier(tier)
                    .last_start()
                    .is_none_or(|last| start >= last),
            };
            if !newest {
                // Late data: an older window of the tier, in the map.
                return self.tier_mut(tier).get_or_insert(start);
            }
            self.settle();
            let window = match self.tier_if_any(tier).and_then(|t| t.take_last_at(start)) {
                Some(w) => w,
                None => {
                    created = true;
                    Window::default()
                }
            };
            self.head = Some(Head {
                tier,
                start,
                window,
            });
        }
        match &mut self.head {
            Some(h) => (&mut h.window, created),
            None => unreachable!("the head was just set"),
        }
    }

    /// Bytes the stream holds, estimated (see [`Series::weigh`]).
    fn weigh(&self) -> usize {
        STREAM_BYTES
            + self
                .windows()
                .map(|(_, _, w)| WINDOW_BYTES + w.heap_bytes())
                .sum::<usize>()
    }

    /// Puts the head back into its tier's map.
    fn settle(&mut self) {
        if let Some(h) = self.head.take() {
            self.tier_mut(h.tier).insert(h.start, h.window);
        }
    }

    /// The windows of `tier` that start in `range`, in start order.
    fn range(
        &self,
        tier: usize,
        range: std::ops::Range<i64>,
    ) -> impl Iterator<Item = (i64, &Window)> {
        let head = self
            .head
            .as_ref()
            .filter(|h| h.tier == tier && range.contains(&h.start))
            .map(|h| (h.start, &h.window));
        self.tier(tier).range(range).chain(head)
    }

    /// Every window as `(tier, start, window)`, by tier, then start.
    fn windows(&self) -> impl Iterator<Item = (usize, i64, &Window)> {
        (0..TIER_MS.len()).flat_map(move |tier| {
            self.range(tier, i64::MIN..i64::MAX)
                .map(move |(start, w)| (tier, start, w))
        })
    }
}

/// Bytes a series costs beyond its key and streams, estimated: its index slot (a position and
/// half a hash, plus the hash table's control byte and spare capacity) and its slab slot (the
/// key and the [`Series`], see [`SeriesMap`]).
const SERIES_BYTES: usize =
    std::mem::size_of::<u64>() * 8 / 7 + 1 + std::mem::size_of::<Option<(SeriesKey, Series)>>();
/// Bytes a stream costs beyond its windows, estimated (its maps counted whether allocated
/// or not, so that the estimate does not depend on when compaction last ran).
const STREAM_BYTES: usize =
    std::mem::size_of::<Stream>() + 2 * std::mem::size_of::<(u8, TierWindows)>();
/// Bytes a window costs beyond its distribution's heap, estimated: its map entry and a share
/// of the B-tree node around it.
const WINDOW_BYTES: usize = std::mem::size_of::<(i64, Window)>() * 3 / 2;

#[derive(Debug, Default)]
struct Series {
    /// One stream per unit; nearly every series has one, kept in place (no allocation, no
    /// pointer to follow from the series map).
    streams: SmallVec<[Stream; 1]>,
    last_timestamp: Timestamp,
    /// Bytes the series holds, estimated ([`Series::weigh`]); kept up to date as windows are
    /// written, created, compacted and expired, and summed in [`Store::series_bytes`].
    bytes: usize,
}

impl Series {
    /// Bytes the series holds, estimated from scratch: its key's weight, its map slot, and per
    /// stream and window a fixed overhead plus the window's heap bytes.
    fn weigh(&self, key: &SeriesKey) -> usize {
        key.weight() + SERIES_BYTES + self.streams.iter().map(Stream::weigh).sum::<usize>()
    }

    /// The stream of `unit`, created if missing (then `true`).
    fn stream_mut(&mut self, unit: Unit) -> (&mut Stream, bool) {
        let (i, created) = match self.streams.iter().position(|s| s.unit == unit) {
            Some(i) => (i, false),
            None => {
                self.streams.push(Stream {
                    unit,
                    ..Stream::default()
                });
                (self.streams.len() - 1, true)
            }
        };
        (&mut self.streams[i], created)
    }

    /// Records a run of observations; consecutive ones that fall into the same window take
    /// one window lookup. Keeps [`Series::bytes`] up to date.
    fn record_run<'o>(&mut self, mut run: impl Iterator<Item = Observation<'o>> + Clone) {
        let Some(mut obs) = run.next() else { return };
        let mut grown = 0usize;
        let mut shrunk = 0usize;
        loop {
            let tier = match obs.resolution {
                Resolution::High => 0,
                Resolution::Standard => 1,
            };
            let start = obs.timestamp.floor_to(TIER_MS[tier]).as_millis();
            let (unit, resolution) = (obs.unit, obs.resolution);
            let in_window = |o: &Observation<'_>| {
                o.unit == unit
                    && o.resolution == resolution
                    && o.timestamp.floor_to(TIER_MS[tier]).as_millis() == start
            };
            let mut last = self.last_timestamp;
            let (stream, new_stream) = self.stream_mut(unit);
            let (w, new_window) = stream.window_mut(tier, start);
            let before = w.heap_bytes();
            grown +=
                usize::from(new_stream) * STREAM_BYTES + usize::from(new_window) * WINDOW_BYTES;
            record_into(w, &obs);
            last = last.max(obs.timestamp);
            // The rest of the run's observations in this window, room made for them at once.
            w.reserve(run.clone().take_while(in_window).count());
            let next = loop {
                match run.next() {
                    Some(o) if in_window(&o) => {
                        record_into(w, &o);
                        last = last.max(o.timestamp);
                    }
                    other => break other,
                }
            };
            let after = w.heap_bytes();
            // A distribution may also shrink (raw values turning into a histogram).
            grown += after.saturating_sub(before);
            shrunk += before.saturating_sub(after);
            self.last_timestamp = last;
            match next {
                Some(o) => obs = o,
                None => {
                    self.bytes = (self.bytes + grown).saturating_sub(shrunk);
                    return;
                }
            }
        }
    }
}

fn record_into(w: &mut Window, obs: &Observation<'_>) {
    match obs.sample {
        Sample::Value(v) => w.record(v),
        Sample::Values { values, counts: [] } => values.iter().for_each(|&v| w.record(v)),
        Sample::Values { values, counts } => values
            .iter()
            .zip(counts)
            .for_each(|(&v, &n)| w.record_n(v, n)),
        Sample::Set(s) => w.record_set(&s),
        Sample::Distribution(d) => w.record_distribution(&d),
    }
}

#[derive(Debug, Default)]
struct Shard {
    /// The series in a dense slab, found through an index of 8-byte entries and each key's
    /// hint of its position ([`SeriesMap`]). (A hash map is between 44 % and 88 % full, so
    /// the series are not kept in its slots: at a million series over 64 shards the empty
    /// slots cost more than the series, 100 MB in issue 23.)
    series: SeriesMap,
    /// Sequence number of the newest write-ahead-log record applied to this shard; records
    /// at or below it are already in the shard (see [`Store::record_runs_seq`]).
    applied_seq: u64,
}

/// What one [`Store::compact`] pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Windows made compact.
    pub sealed: usize,
    /// Windows merged into a coarser tier.
    pub rolled_up: usize,
    /// Windows dropped after the longest retention.
    pub expired: usize,
    /// Series removed because no data is left.
    pub series_removed: usize,
}

/// The sharded in-memory store of every series.
///
/// A series' shard is a stable function of its key (xxh3 of the key's canonical bytes), so
/// that the per-shard log watermarks saved in a snapshot stay meaningful across restarts and
/// versions.
#[derive(Debug)]
pub struct Store {
    shards: Box<[Mutex<Shard>]>,
    /// The newest log record applied completely (to every shard it touches).
    completed_seq: std::sync::atomic::AtomicU64,
    /// Whether each shard has a log of its own ([`Store::partitioned`]): then sequence numbers
    /// of different shards are unrelated and only the per-shard watermarks count.
    partitioned: bool,
    /// Series held, in all and per namespace (kept as series are created and removed).
    series_total: std::sync::atomic::AtomicUsize,
    per_namespace: Mutex<HashMap<String, usize>>,
    /// The sum of every series' estimated bytes ([`Store::series_bytes`]), changed under the
    /// lock of the shard whose series changed.
    series_bytes: std::sync::atomic::AtomicUsize,
    /// Where a series' stream was ended by its sender (a Prometheus staleness marker): the
    /// newest such time per series, for queries that look back (`ended_at`). Only series the
    /// store holds; forgotten with them. In memory only: after a restart a look-back reaches
    /// past a marker until the sender's next one.
    ended: Mutex<HashMap<SeriesKey, Timestamp>>,
    /// In cluster mode, the shards other nodes hold ([`Store::set_remote`]).
    remote: std::sync::OnceLock<std::sync::Arc<dyn RemoteShards>>,
}

/// The stable hash of a series key that picks its shard (see [`SeriesKey::stable_hash`]).
pub fn stable_hash(key: &SeriesKey) -> u64 {
    key.stable_hash()
}

impl Default for Store {
    fn default() -> Self {
        Self::new(16)
    }
}

impl Store {
    /// A store with `shards` independently locked shards (at least 1).
    pub fn new(shards: usize) -> Self {
        Store {
            shards: (0..shards.max(1)).map(|_| Mutex::default()).collect(),
            completed_seq: std::sync::atomic::AtomicU64::new(0),
            partitioned: false,
            series_total: std::sync::atomic::AtomicUsize::new(0),
            per_namespace: Mutex::default(),
            series_bytes: std::sync::atomic::AtomicUsize::new(0),
            ended: Mutex::default(),
            remote: std::sync::OnceLock::new(),
        }
    }

    /// Cluster mode: reads of shards this node does not hold go to `remote`
    /// ([`RemoteShards`]); set once, at start.
    pub fn set_remote(&self, remote: std::sync::Arc<dyn RemoteShards>) {
        let _ = self.remote.set(remote);
    }

    /// Whether shard `i` is read here (always, outside cluster mode).
    fn holds(&self, i: usize) -> bool {
        self.remote.get().is_none_or(|r| r.is_local(i))
    }

    /// Keys from the other nodes for a listing (empty outside cluster mode).
    fn remote_keys(&self, request: &KeysRequest) -> Vec<SeriesKey> {
        let Some(remote) = self.remote.get() else {
            return Vec::new();
        };
        remote.keys(request)
    }

    /// The keys this node answers for `request` (its own shards only): what it sends another
    /// node of the cluster.
    pub fn local_keys(&self, request: &KeysRequest) -> Vec<SeriesKey> {
        match request {
            KeysRequest::List {
                namespace,
                metric_name,
                now,
            } => self.list_local(namespace.as_deref(), metric_name.as_deref(), *now),
            KeysRequest::Matching {
                namespace,
                metric_name,
                dimensions,
            } => self.matching_local(namespace, metric_name, dimensions),
            KeysRequest::Page {
                namespace,
                metric_name,
                active_since,
                now,
                after,
                max_records,
                max_bytes,
            } => {
                let after = match after.as_deref().map(ListCursor::from_token) {
                    Some(Ok(c)) => Some(c),
                    Some(Err(_)) => return Vec::new(),
                    None => None,
                };
                let filter = ListFilter {
                    namespace: namespace.as_deref(),
                    metric_name: metric_name.as_deref(),
                    active_since: *active_since,
                };
                // The request comes from another node: its page size is bounded here whatever
                // it says (a page asks for one more than the API's largest).
                let max_records = (*max_records).clamp(1, LIST_MAX_RECORDS + 1);
                self.list_page_local(filter, *now, after.as_ref(), max_records, *max_bytes)
                    .keys
            }
        }
    }

    /// A store whose shards are the partitions of a cluster: each shard is fed by its own
    /// log (a subject of the ingest stream) in that log's order, so a record's sequence number
    /// is compared only with its shard's watermark, never with other shards' records.
    pub fn partitioned(shards: usize) -> Self {
        Store {
            partitioned: true,
            ..Self::new(shards)
        }
    }

    /// Shard `shard`'s watermark: the newest log record applied to it (0 for a shard out of
    /// range).
    pub fn shard_watermark(&self, shard: usize) -> u64 {
        if shard >= self.shards.len() {
            return 0;
        }
        self.lock(shard).applied_seq.max(self.completed())
    }

    /// Notes that the sender ended `key`'s stream at `at` (a staleness marker), when the store
    /// holds the series; an earlier time than one already noted is ignored.
    pub fn mark_ended(&self, key: &SeriesKey, at: Timestamp) {
        if !self.contains(key) {
            return;
        }
        let mut ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        let t = ended.entry(key.clone()).or_insert(at);
        if at > *t {
            *t = at;
        }
    }

    /// The newest time at which `key`'s sender ended its stream ([`Store::mark_ended`]).
    pub fn ended_at(&self, key: &SeriesKey) -> Option<Timestamp> {
        let ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        ended.get(key).copied()
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    fn shard_of(&self, key: &SeriesKey) -> usize {
        (stable_hash(key) % self.shards.len() as u64) as usize
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, Shard> {
        // A panic while holding a shard cannot leave a window half-updated in a way that
        // breaks later readers (each update is a few field writes), so poisoning is ignored.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a batch of validated observations, taking each shard's lock once.
    pub fn record_batch(&self, batch: &[(SeriesKey, Observation<'_>)]) {
        // Agents send a series' samples together: the batch is cut into runs of one series
        // (found by pointer, reading no key), and each run takes one map lookup.
        let mut runs = Vec::new();
        let mut start = 0;
        while start < batch.len() {
            let key = &batch[start].0;
            let len = batch[start..]
                .iter()
                .position(|(k, _)| !SeriesKey::same(k, key))
                .unwrap_or(batch.len() - start);
            runs.push((key, batch[start..start + len].iter().map(|(_, o)| *o)));
            start += len;
        }
        self.record_cut(runs, None);
    }

    /// Records write-ahead-log record `seq`, given as runs of one series: `runs[i] = (key,
    /// end)` says that `observations[runs[i - 1].1..end]` are of `key` (from 0 for the first
    /// run); a key shared by a whole run costs one reference count, not one per observation.
    /// Entries of shards that already hold `seq` (their watermark is `>= seq`, as after
    /// loading a snapshot taken later) are skipped, and every shard written gets `seq` as its
    /// watermark. Records must be given in increasing `seq` order.
    ///
    /// # Panics
    /// If the ends do not increase within `observations.len()`.
    pub fn record_runs_seq(
        &self,
        runs: &[(SeriesKey, usize)],
        observations: &[Observation<'_>],
        seq: u64,
    ) {
        let mut start = 0;
        let cut = runs
            .iter()
            .map(|(key, end)| {
                let run = observations[start..*end].iter().copied();
                start = *end;
                (key, run)
            })
            .collect();
        self.record_cut(cut, Some(seq));
    }

    /// Applies runs of one series each. Runs are grouped by shard so that each shard's part of
    /// the batch is applied under one lock hold (a snapshot sees all of it or none), in batch
    /// order within a shard.
    pub(crate) fn record_cut<'o, I>(&self, runs: Vec<(&SeriesKey, I)>, seq: Option<u64>)
    where
        I: Iterator<Item = Observation<'o>> + Clone,
    {
        let shard_of: Vec<usize> = runs.iter().map(|(key, _)| self.shard_of(key)).collect();
        for (s, chunk) in ShardOrder::new(self.shards.len(), &shard_of).groups() {
            let mut shard = self.lock(s);
            if let Some(seq) = seq {
                let watermark = shard.applied_seq.max(self.completed());
                if watermark >= seq {
                    continue;
                }
                shard.applied_seq = seq;
            }
            for &i in chunk {
                let (key, run) = &runs[i];
                let (series, made) = shard.series.get_or_insert(key);
                let before = if made {
                    self.created(key);
                    series.bytes = key.weight() + SERIES_BYTES;
                    0
                } else {
                    series.bytes
                };
                series.record_run(run.clone());
                self.reweighed(before, series.bytes);
            }
        }
        if let Some(seq) = seq
            && !self.partitioned
        {
            self.completed_seq
                .fetch_max(seq, std::sync::atomic::Ordering::AcqRel);
        }
    }

    fn completed(&self) -> u64 {
        self.completed_seq
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Per shard, the log sequence number up to which every record touching the shard is
    /// applied: the newest record applied to it, or the newest record applied completely,
    /// whichever is later (see [`Store::record_runs_seq`]).
    pub fn watermarks(&self) -> Vec<u64> {
        (0..self.shards.len())
            .map(|i| {
                let shard = self.lock(i);
                shard.applied_seq.max(self.completed())
            })
            .collect()
    }

    /// Sets the per-shard watermarks (after loading a snapshot).
    ///
    /// # Errors
    /// When the number of watermarks is not the number of shards.
    pub fn set_watermarks(&self, marks: &[u64]) -> Result<(), String> {
        if marks.len() != self.shards.len() {
            return Err(format!(
                "the snapshot has {} shards, this store {}",
                marks.len(),
                self.shards.len()
            ));
        }
        for (i, &m) in marks.iter().enumerate() {
            self.lock(i).applied_seq = m;
        }
        if !self.partitioned {
            let floor = marks.iter().copied().min().unwrap_or(0);
            self.completed_seq
                .fetch_max(floor, std::sync::atomic::Ordering::AcqRel);
        }
        Ok(())
    }

    fn created(&self, key: &SeriesKey) {
        self.series_total
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut ns = self.per_namespace.lock().unwrap_or_else(|p| p.into_inner());
        // The namespace is copied only the first time it is seen, not for every new series.
        match ns.get_mut(key.namespace()) {
            Some(n) => *n += 1,
            None => {
                ns.insert(key.namespace().to_owned(), 1);
            }
        }
    }

    fn removed(&self, key: &SeriesKey) {
        self.series_total
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let mut ns = self.per_namespace.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = ns.get_mut(key.namespace()) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                ns.remove(key.namespace());
            }
        }
    }

    /// Adds a series' change of weight to [`Store::series_bytes`] (under its shard's lock).
    fn reweighed(&self, before: usize, after: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        if after > before {
            self.series_bytes.fetch_add(after - before, Relaxed);
        } else if before > after {
            self.series_bytes.fetch_sub(before - after, Relaxed);
        }
    }

    /// Bytes held by every series, estimated: each series' key weight
    /// ([`SeriesKey::weight`]) and map slot, plus per stream and window a fixed overhead and
    /// the window's heap bytes. Kept as windows are written, created, compacted and expired,
    /// and as series come and go; the admission limit `--max-series-bytes` reads it.
    pub fn series_bytes(&self) -> usize {
        self.series_bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// What a new series of `key` adds to [`Store::series_bytes`] with its first window,
    /// before that window's distribution grows: what admission reserves for it.
    pub fn new_series_bytes(key: &SeriesKey) -> usize {
        key.weight() + SERIES_BYTES + STREAM_BYTES + WINDOW_BYTES
    }

    /// Number of series held.
    pub fn series_count(&self) -> usize {
        self.series_total.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Number of series held in `namespace`.
    pub fn namespace_series_count(&self, namespace: &str) -> usize {
        let ns = self.per_namespace.lock().unwrap_or_else(|p| p.into_inner());
        ns.get(namespace).copied().unwrap_or(0)
    }

    /// Whether the series exists.
    pub fn contains(&self, key: &SeriesKey) -> bool {
        self.lock(self.shard_of(key)).series.contains_key(key)
    }

    /// Series with data in the 14 days before `now`, optionally filtered, sorted.
    pub fn list(
        &self,
        namespace: Option<&str>,
        metric_name: Option<&str>,
        now: Timestamp,
    ) -> Vec<SeriesKey> {
        let mut out = self.list_local(namespace, metric_name, now);
        if self.remote.get().is_some() {
            out.extend(self.remote_keys(&KeysRequest::List {
                namespace: namespace.map(str::to_owned),
                metric_name: metric_name.map(str::to_owned),
                now,
            }));
            out.sort_unstable();
            out.dedup();
        }
        out
    }

    fn list_local(
        &self,
        namespace: Option<&str>,
        metric_name: Option<&str>,
        now: Timestamp,
    ) -> Vec<SeriesKey> {
        let since = now.sub_millis(LIST_RECENT_MS);
        let mut out = Vec::new();
        for i in 0..self.shards.len() {
            if !self.holds(i) {
                continue;
            }
            let shard = self.lock(i);
            out.extend(
                shard
                    .series
                    .iter()
                    .filter(|(k, s)| {
                        s.last_timestamp >= since
                            && namespace.is_none_or(|n| k.namespace() == n)
                            && metric_name.is_none_or(|m| k.metric_name() == m)
                    })
                    .map(|(k, _)| k.clone()),
            );
        }
        out.sort_unstable();
        out
    }

    /// One page of [`Store::list`]'s series, in list order (namespace, metric name, then an
    /// order of dimension sets that is stable but not alphabetical: by the key's stable hash),
    /// starting after `after` (a cursor from the page before; `None` for the first page):
    /// at most `max_records` series and, past the first, at most `max_bytes` of key weight
    /// ([`SeriesKey::weight`], about the size of their encoding). `next` is set when more
    /// remain. Paging through a set of series that does not change meanwhile yields each
    /// exactly once; one that does change yields each series that stays exactly once.
    ///
    /// Each page reads every series once (under one shard lock at a time) and holds at most
    /// `max_records + 1` keys.
    pub fn list_page(
        &self,
        filter: ListFilter<'_>,
        now: Timestamp,
        after: Option<&ListCursor>,
        max_records: usize,
        max_bytes: usize,
    ) -> ListPage {
        if self.remote.get().is_none() {
            return self.list_page_local(filter, now, after, max_records, max_bytes);
        }
        // Each node's first `max_records + 1` keys after the cursor, merged: the page is the
        // first of them in list order, and more remain if any is left over.
        let max_records = max_records.max(1);
        let mut all = self
            .list_page_local(filter, now, after, max_records + 1, usize::MAX)
            .keys;
        all.extend(self.remote_keys(&KeysRequest::Page {
            namespace: filter.namespace.map(str::to_owned),
            metric_name: filter.metric_name.map(str::to_owned),
            active_since: filter.active_since,
            now,
            after: after.map(ListCursor::to_token),
            max_records: max_records + 1,
            max_bytes: usize::MAX,
        }));
        all.sort_unstable_by(list_order);
        all.dedup();
        ListPage::first_of(all, after, max_records, max_bytes)
    }

    fn list_page_local(
        &self,
        filter: ListFilter<'_>,
        now: Timestamp,
        after: Option<&ListCursor>,
        max_records: usize,
        max_bytes: usize,
    ) -> ListPage {
        let window = now.sub_millis(LIST_RECENT_MS);
        let since = filter.active_since.map_or(window, |t| t.max(window));
        let max_records = max_records.max(1);
        // The smallest `max_records + 1` keys after the cursor (the extra one says whether
        // more remain), in a max-heap by list order.
        let mut best: std::collections::BinaryHeap<Listed> =
            std::collections::BinaryHeap::with_capacity(max_records + 1);
        // Keys that share the cursor's (namespace, metric name, hash): a hash collision, rare
        // but possible; ordered by their dimensions and the first `skip` of them left out.
        let mut ties: Vec<SeriesKey> = Vec::new();
        for i in 0..self.shards.len() {
            if !self.holds(i) {
                continue;
            }
            let shard = self.lock(i);
            for (k, s) in shard.series.iter() {
                if s.last_timestamp < since
                    || filter.namespace.is_some_and(|n| k.namespace() != n)
                    || filter.metric_name.is_some_and(|m| k.metric_name() != m)
                {
                    continue;
                }
                if let Some(c) = after {
                    match c.position(k) {
                        std::cmp::Ordering::Less => {}
                        std::cmp::Ordering::Equal => {
                            ties.push(k.clone());
                            continue;
                        }
                        std::cmp::Ordering::Greater => continue,
                    }
                }
                offer(&mut best, k, max_records + 1);
            }
        }
        if let Some(c) = after {
            ties.sort_unstable_by(list_order);
            for k in ties.iter().skip(c.skip) {
                offer(&mut best, k, max_records + 1);
            }
        }
        let sorted: Vec<SeriesKey> = best.into_sorted_vec().into_iter().map(|l| l.0).collect();
        ListPage::first_of(sorted, after, max_records, max_bytes)
    }

    /// Series whose namespace and metric name match and that have every dimension of
    /// `dimensions` where the value is not `"*"` (a `"*"` value only requires the dimension
    /// to exist); sorted. Used by per-series alarms.
    pub fn matching(
        &self,
        namespace: &str,
        metric_name: &str,
        dimensions: &[crate::Dimension],
    ) -> Vec<SeriesKey> {
        let mut out = self.matching_local(namespace, metric_name, dimensions);
        if self.remote.get().is_some() {
            out.extend(self.remote_keys(&KeysRequest::Matching {
                namespace: namespace.to_owned(),
                metric_name: metric_name.to_owned(),
                dimensions: dimensions.to_vec(),
            }));
            out.sort_unstable();
            out.dedup();
        }
        out
    }

    fn matching_local(
        &self,
        namespace: &str,
        metric_name: &str,
        dimensions: &[crate::Dimension],
    ) -> Vec<SeriesKey> {
        let mut out = Vec::new();
        for i in 0..self.shards.len() {
            if !self.holds(i) {
                continue;
            }
            let shard = self.lock(i);
            out.extend(
                shard
                    .series
                    .keys()
                    .filter(|k| {
                        k.namespace() == namespace
                            && k.metric_name() == metric_name
                            && k.dimensions().len() == dimensions.len()
                            && dimensions.iter().all(|d| match k.dimension(&d.name) {
                                Some(v) => d.value == "*" || v == d.value,
                                None => false,
                            })
                    })
                    .cloned(),
            );
        }
        out.sort_unstable();
        out
    }

    /// Aggregated statistics for one series.
    ///
    /// Buckets are `[start', start' + period)`, `[start' + period, …)` up to `end`, where
    /// `start'` is `start` rounded down as CloudWatch does (to the period below 60 s; to the
    /// minute, 5 minutes or hour depending on its age otherwise). Only buckets with data are
    /// returned, oldest first; with no unit filter, a bucket with several units gives one
    /// datapoint per unit.
    ///
    /// # Errors
    /// A [`QueryError`] naming the field at fault.
    pub fn query(&self, query: &Query, now: Timestamp) -> Result<Vec<Datapoint>, QueryError> {
        let plan = query.plan(now)?;
        let (start, end, p) = (
            plan.start.as_millis(),
            query.end.as_millis(),
            plan.period_ms,
        );
        let buckets = plan.buckets;
        let shard_index = self.shard_of(&query.key);
        if let Some(remote) = self.remote.get()
            && !remote.is_local(shard_index)
        {
            // Another node holds the series: its windows in the range, answered from here.
            let windows = remote
                .windows(shard_index, &query.key, plan.start, query.end)
                .map_err(|e| query_error(QueryError::UNAVAILABLE, e))?;
            let Some(export) = windows else {
                return Ok(Vec::new());
            };
            let here = Store::new(1);
            here.import(export);
            return here.query(query, now);
        }
        let shard = self.lock(shard_index);
        let Some(series) = shard.series.get(&query.key) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for stream in series
            .streams
            .iter()
            .filter(|s| query.unit.is_none_or(|u| u == s.unit))
        {
            let mut per_bucket: Vec<Vec<&Window>> = vec![Vec::new(); buckets as usize];
            for (tier, &g) in TIER_MS.iter().enumerate() {
                if p % g != 0 {
                    continue;
                }
                for (ws, w) in stream.range(tier, start..end) {
                    let b = (ws - start) / p;
                    if ws + g <= start + (b + 1) * p {
                        per_bucket[b as usize].push(w);
                    }
                }
            }
            for (b, windows) in per_bucket.into_iter().enumerate() {
                let merged;
                let w = match windows.as_slice() {
                    [] => continue,
                    [one] => *one,
                    many => {
                        let mut m = Window::new();
                        many.iter().for_each(|w| m.merge(w));
                        merged = m;
                        &merged
                    }
                };
                if w.is_empty() {
                    continue;
                }
                let values = w.statistics(&query.statistics);
                out.push(Datapoint {
                    timestamp: Timestamp(start + b as i64 * p),
                    unit: stream.unit,
                    sample_count: w.sample_count(),
                    values,
                });
            }
        }
        out.sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then(a.unit.cmp(&b.unit)));
        Ok(out)
    }

    /// Seals windows that ended more than [`SEAL_AFTER_MS`] ago, rolls windows past their
    /// tier's retention into the next tier, expires the oldest, and removes empty series.
    pub fn compact(&self, now: Timestamp) -> CompactionReport {
        let mut report = CompactionReport::default();
        for i in 0..self.shards.len() {
            let mut shard = self.lock(i);
            shard.series.retain(|key, series| {
                for stream in &mut series.streams {
                    compact_stream(stream, now, &mut report);
                }
                series.streams.retain(|s| !s.is_empty());
                let keep = !series.streams.is_empty();
                // Weighed again from scratch: compaction visits the windows anyway, and this
                // corrects any drift of the running estimate.
                let before = series.bytes;
                series.bytes = if keep { series.weigh(key) } else { 0 };
                self.reweighed(before, series.bytes);
                if !keep {
                    report.series_removed += 1;
                    self.removed(key);
                    self.ended
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(key);
                }
                keep
            });
        }
        report
    }

    /// Calls `f` with a serialisable copy of every series, one shard locked at a time, and
    /// after each shard with its watermark: the shard's series just given are exactly its
    /// state at that watermark.
    pub fn export_shards(&self, mut f: impl FnMut(ExportItem)) {
        for i in 0..self.shards.len() {
            let shard = self.lock(i);
            let watermark = shard.applied_seq.max(self.completed());
            for (key, series) in shard.series.iter() {
                f(ExportItem::Series(export_series(key, series)));
            }
            drop(shard);
            f(ExportItem::ShardEnd {
                index: i,
                watermark,
            });
        }
    }

    /// Calls `f` with a serialisable copy of every series, one shard locked at a time.
    pub fn export_each(&self, mut f: impl FnMut(SeriesExport)) {
        self.export_shards(|item| {
            if let ExportItem::Series(s) = item {
                f(s);
            }
        });
    }

    /// A serialisable copy of the windows of series `key` that overlap `from..=to` (a window
    /// `[start, start + tier)` with `start <= to` and `start + tier > from`), in the order
    /// (unit, tier, start), after the window `after` (exclusive) when given, at most
    /// `max_windows` of them (at least one): a page of `GET /api/v1/export/series`. `None`
    /// when the series does not exist. [`Store::import`] merges such pages back into a store
    /// exactly (every statistic, percentiles included).
    pub fn export_range(
        &self,
        key: &SeriesKey,
        from: Timestamp,
        to: Timestamp,
        after: Option<(Unit, u8, i64)>,
        max_windows: usize,
    ) -> Option<SeriesExport> {
        let shard = self.lock(self.shard_of(key));
        let series = shard.series.get(key)?;
        let mut streams: Vec<&Stream> = series.streams.iter().collect();
        streams.sort_by_key(|s| s.unit);
        let mut left = max_windows.max(1);
        let mut out = Vec::new();
        for s in streams {
            if left == 0 {
                break;
            }
            let mut windows = Vec::new();
            for (tier, &tier_ms) in TIER_MS.iter().enumerate() {
                let lo = from.as_millis().saturating_sub(tier_ms).saturating_add(1);
                let hi = to.as_millis().saturating_add(1);
                for (start, w) in s.range(tier, lo..hi) {
                    let here = (s.unit, tier as u8, start);
                    if after.is_some_and(|a| here <= a) {
                        continue;
                    }
                    if left == 0 {
                        break;
                    }
                    windows.push((tier as u8, start, w.export()));
                    left -= 1;
                }
            }
            if !windows.is_empty() {
                out.push(StreamExport {
                    unit: s.unit,
                    windows,
                });
            }
        }
        Some(SeriesExport {
            key: key.clone(),
            last_timestamp: series.last_timestamp,
            streams: out,
        })
    }

    /// Calls `f` with a serialisable copy of every series of shard `shard` (one of a
    /// cluster's partitions), under its lock, and returns the shard's watermark: the series
    /// given are exactly its state at that watermark. Nothing for a shard out of range.
    pub fn export_shard(&self, shard: usize, mut f: impl FnMut(SeriesExport)) -> u64 {
        if shard >= self.shards.len() {
            return 0;
        }
        let held = self.lock(shard);
        for (key, series) in held.series.iter() {
            f(export_series(key, series));
        }
        held.applied_seq.max(self.completed())
    }

    /// Replaces what shard `shard` holds with `series` at `watermark` (a partition snapshot
    /// another node exported with [`Store::export_shard`]), under one lock: a reader sees the
    /// shard either before or after.
    ///
    /// # Errors
    /// A shard out of range, or a series that does not belong to it (nothing is changed).
    pub fn replace_shard(
        &self,
        shard: usize,
        series: Vec<SeriesExport>,
        watermark: u64,
    ) -> Result<(), String> {
        if shard >= self.shards.len() {
            return Err(format!(
                "shard {shard} is beyond this store's {}",
                self.shards.len()
            ));
        }
        if let Some(stray) = series.iter().find(|s| self.shard_of(&s.key) != shard) {
            return Err(format!(
                "series {} belongs to shard {}, not {shard}",
                stray.key,
                self.shard_of(&stray.key)
            ));
        }
        let mut held = self.lock(shard);
        for (key, s) in held.series.drain() {
            self.reweighed(s.bytes, 0);
            self.removed(&key);
        }
        for export in series {
            self.import_into(&mut held, export);
        }
        held.applied_seq = watermark;
        Ok(())
    }

    /// Adds a series exported by [`Store::export_shards`] (merging with any data already held).
    pub fn import(&self, export: SeriesExport) {
        let mut shard = self.lock(self.shard_of(&export.key));
        self.import_into(&mut shard, export);
    }

    /// [`Store::import`] into `shard`, the key's shard, locked by the caller.
    fn import_into(&self, shard: &mut Shard, export: SeriesExport) {
        if !shard.series.contains_key(&export.key) {
            self.created(&export.key);
        }
        let key = export.key.clone();
        let (series, _) = shard.series.get_or_insert(&export.key);
        series.last_timestamp = series.last_timestamp.max(export.last_timestamp);
        for s in export.streams {
            let (stream, _) = series.stream_mut(s.unit);
            for (tier, start, w) in s.windows {
                let tier = usize::from(tier).min(TIER_MS.len() - 1);
                stream.window_mut(tier, start).0.merge(&Window::import(w));
            }
        }
        let before = series.bytes;
        series.bytes = series.weigh(&key);
        self.reweighed(before, series.bytes);
    }

    /// Approximate heap bytes held by windows (for the memory-per-series figures).
    pub fn window_heap_bytes(&self) -> usize {
        let mut total = 0;
        for i in 0..self.shards.len() {
            let shard = self.lock(i);
            for series in shard.series.values() {
                for stream in &series.streams {
                    total += stream
                        .windows()
                        .map(|(_, _, w)| w.heap_bytes())
                        .sum::<usize>();
                }
            }
        }
        total
    }
}

fn export_series(key: &SeriesKey, series: &Series) -> SeriesExport {
    SeriesExport {
        key: key.clone(),
        last_timestamp: series.last_timestamp,
        streams: series
            .streams
            .iter()
            .map(|s| StreamExport {
                unit: s.unit,
                windows: s
                    .windows()
                    .map(|(t, st, w)| (t as u8, st, w.export()))
                    .collect(),
            })
            .collect(),
    }
}

fn compact_stream(stream: &mut Stream, now: Timestamp, report: &mut CompactionReport) {
    for tier in 0..TIER_MS.len() {
        let g = TIER_MS[tier];
        let cutoff = now.as_millis() - TIER_RETENTION_MS[tier];
        // The head stays where it is unless it leaves its tier.
        if stream
            .head
            .as_ref()
            .is_some_and(|h| h.tier == tier && h.start < cutoff)
        {
            stream.settle();
        }
        // Windows that start before the cutoff leave this tier.
        let leaving = match stream.tier_if_any(tier) {
            Some(windows) => windows.split_before(cutoff),
            None => Vec::new(),
        };
        if let Some(next) = TIER_MS.get(tier + 1) {
            for (start, w) in leaving {
                let coarse = start.div_euclid(*next) * next;
                // The head must stay after every window of its tier's map.
                if stream
                    .head
                    .as_ref()
                    .is_some_and(|h| h.tier == tier + 1 && coarse >= h.start)
                {
                    stream.settle();
                }
                stream.tier_mut(tier + 1).get_or_insert(coarse).0.merge(&w);
                report.rolled_up += 1;
            }
        } else {
            report.expired += leaving.len();
        }
        let seal_before = now.as_millis() - SEAL_AFTER_MS - g;
        if let Some(windows) = stream.tier_if_any(tier) {
            windows.for_each_before(seal_before, |w| {
                if !w.is_sealed() {
                    w.seal();
                    report.sealed += 1;
                }
            });
        }
        if let Some(h) = stream.head.as_mut()
            && h.tier == tier
            && h.start < seal_before
            && !h.window.is_sealed()
        {
            h.window.seal();
            report.sealed += 1;
        }
    }
    stream.release_empty_tiers();
}

/// Which series [`Store::list_page`] lists (`None`: any).
#[derive(Clone, Copy, Debug, Default)]
pub struct ListFilter<'a> {
    /// Only this namespace.
    pub namespace: Option<&'a str>,
    /// Only this metric name.
    pub metric_name: Option<&'a str>,
    /// Only series with data at or after this time (CloudWatch's `RecentlyActive`); the
    /// 14-day listing window applies in any case.
    pub active_since: Option<Timestamp>,
}

/// One page of series ([`Store::list_page`]).
#[derive(Clone, Debug)]
pub struct ListPage {
    /// The series, in list order.
    pub keys: Vec<SeriesKey>,
    /// Where the next page starts, when more remain.
    pub next: Option<ListCursor>,
}

impl ListPage {
    /// The page of the first of `sorted` (keys after `after`, in list order): at most
    /// `max_records` keys and, past the first, at most `max_bytes` of key weight, with a
    /// cursor when keys are left over.
    fn first_of(
        mut sorted: Vec<SeriesKey>,
        after: Option<&ListCursor>,
        max_records: usize,
        max_bytes: usize,
    ) -> ListPage {
        let mut bytes = 0usize;
        let mut take = 0;
        for k in sorted.iter().take(max_records) {
            if take > 0 && bytes + k.weight() > max_bytes {
                break;
            }
            bytes += k.weight();
            take += 1;
        }
        let more = sorted.len() > take;
        sorted.truncate(take);
        let next = if more {
            ListPage::cursor_after(&sorted, after, sorted.len())
        } else {
            None
        };
        ListPage { keys: sorted, next }
    }

    /// The cursor after the first `n` keys of `keys`, a page that [`Store::list_page`]
    /// listed after `after`: a page that stops early (`GET /api/v1/export/series` bounds
    /// its bytes) goes on from there. `after` itself when `n` is 0.
    pub fn cursor_after(
        keys: &[SeriesKey],
        after: Option<&ListCursor>,
        n: usize,
    ) -> Option<ListCursor> {
        let page = &keys[..n.min(keys.len())];
        let Some(last) = page.last() else {
            return after.cloned();
        };
        // Keys of the page that share the last one's (namespace, metric name, hash), plus
        // those the cursor had already passed.
        let same = |k: &SeriesKey| {
            k.stable_hash() == last.stable_hash()
                && k.metric_name() == last.metric_name()
                && k.namespace() == last.namespace()
        };
        let before = after
            .filter(|c| c.position(last) == std::cmp::Ordering::Equal)
            .map_or(0, |c| c.skip);
        Some(ListCursor {
            namespace: last.namespace().to_owned(),
            metric_name: last.metric_name().to_owned(),
            hash: last.stable_hash(),
            skip: before + page.iter().filter(|k| same(k)).count(),
        })
    }
}

/// Where a page of [`Store::list_page`] ends: after the series ordered before or at
/// (`namespace`, `metric_name`, `hash`), and after the first `skip` of those at it.
/// It travels to clients as an opaque token ([`ListCursor::to_token`]) of at most
/// [`ListCursor::MAX_TOKEN_LEN`] characters, whatever the size of the series' dimensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListCursor {
    namespace: String,
    metric_name: String,
    hash: u64,
    skip: usize,
}

/// List order: namespace, metric name, stable hash, then dimensions (hashes collide rarely).
fn list_order(a: &SeriesKey, b: &SeriesKey) -> std::cmp::Ordering {
    (a.namespace(), a.metric_name(), a.stable_hash())
        .cmp(&(b.namespace(), b.metric_name(), b.stable_hash()))
        .then_with(|| a.dimensions().cmp(b.dimensions()))
}

/// A key in [`Store::list_page`]'s heap, ordered by [`list_order`].
struct Listed(SeriesKey);

impl PartialEq for Listed {
    fn eq(&self, other: &Self) -> bool {
        list_order(&self.0, &other.0).is_eq()
    }
}
impl Eq for Listed {}
impl PartialOrd for Listed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Listed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        list_order(&self.0, &other.0)
    }
}

/// Keeps `k` among the `keep` smallest keys in `heap` (a max-heap).
fn offer(heap: &mut std::collections::BinaryHeap<Listed>, k: &SeriesKey, keep: usize) {
    if heap.len() < keep {
        heap.push(Listed(k.clone()));
    } else if heap.peek().is_some_and(|top| list_order(k, &top.0).is_lt()) {
        heap.pop();
        heap.push(Listed(k.clone()));
    }
}

/// Why a token is not a [`ListCursor`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("must be a next_token from an earlier answer of this server (got {0})")]
pub struct BadToken(String);

impl ListCursor {
    /// The longest token [`ListCursor::to_token`] makes: a version, a hash, a count and two
    /// names of at most 255 bytes, hex-encoded.
    pub const MAX_TOKEN_LEN: usize = 2 + 2 * (8 + 8 + 2 * (2 + MAX_NAME_BYTES));

    /// Where `k` is relative to the cursor: `Less` after it (still to list), `Equal` at its
    /// (namespace, metric name, hash), `Greater` before it (listed already).
    fn position(&self, k: &SeriesKey) -> std::cmp::Ordering {
        (
            self.namespace.as_str(),
            self.metric_name.as_str(),
            self.hash,
        )
            .cmp(&(k.namespace(), k.metric_name(), k.stable_hash()))
    }

    /// The cursor as an opaque, URL-safe token.
    pub fn to_token(&self) -> String {
        let mut b = Vec::with_capacity(20 + self.namespace.len() + self.metric_name.len());
        b.extend_from_slice(&self.hash.to_be_bytes());
        b.extend_from_slice(&(self.skip as u64).to_be_bytes());
        for s in [&self.namespace, &self.metric_name] {
            // Names are at most 255 bytes once validated; longer ones (never stored) are cut.
            let s = &s.as_bytes()[..s.len().min(MAX_NAME_BYTES)];
            b.extend_from_slice(&(s.len() as u16).to_be_bytes());
            b.extend_from_slice(s);
        }
        let mut out = String::with_capacity(2 + 2 * b.len());
        out.push_str("1.");
        for byte in b {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 15)]));
        }
        out
    }

    /// Reads a token made by [`ListCursor::to_token`].
    ///
    /// # Errors
    /// Anything else, quoting at most a bounded prefix of it.
    pub fn from_token(token: &str) -> Result<Self, BadToken> {
        let bad = || BadToken(crate::quote::quote(token));
        if token.len() > Self::MAX_TOKEN_LEN {
            return Err(bad());
        }
        let hex = token.strip_prefix("1.").ok_or_else(bad)?.as_bytes();
        if hex.len() % 2 != 0 {
            return Err(bad());
        }
        let nibble = |c: u8| HEX.iter().position(|&h| h == c).map(|n| n as u8);
        let bytes = hex
            .chunks_exact(2)
            .map(|p| Some((nibble(p[0])? << 4) | nibble(p[1])?))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(bad)?;
        let mut r = bytes.as_slice();
        let hash = take_word(&mut r, 8).ok_or_else(bad)?;
        let skip = take_word(&mut r, 8)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(bad)?;
        let mut name = || {
            let n = usize::try_from(take_word(&mut r, 2)?).ok()?;
            String::from_utf8(take_bytes(&mut r, n)?.to_vec()).ok()
        };
        let namespace = name().ok_or_else(bad)?;
        let metric_name = name().ok_or_else(bad)?;
        if !r.is_empty() {
            return Err(bad());
        }
        Ok(ListCursor {
            namespace,
            metric_name,
            hash,
            skip,
        })
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The first `n` bytes of `r`, which then starts after them.
fn take_bytes<'a>(r: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if r.len() < n {
        return None;
    }
    let (head, rest) = r.split_at(n);
    *r = rest;
    Some(head)
}

/// A big-endian number of `n <= 8` bytes taken from `r`.
fn take_word(r: &mut &[u8], n: usize) -> Option<u64> {
    let mut buf = [0u8; 8];
    buf[8 - n..].copy_from_slice(take_bytes(r, n)?);
    Some(u64::from_be_bytes(buf))
}
/// Longest namespace or metric name (CloudWatch's 255 characters, ASCII).
const MAX_NAME_BYTES: usize = 255;

/// What [`Store::export_shards`] gives, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum ExportItem {
    /// One series of the current shard.
    Series(SeriesExport),
    /// The end of a shard, with its write-ahead-log watermark.
    ShardEnd {
        /// Shard index.
        index: usize,
        /// Newest log record the shard's exported state holds.
        watermark: u64,
    },
}

/// Serialisable form of one series, for snapshots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesExport {
    /// The series.
    pub key: SeriesKey,
    /// Newest timestamp seen.
    pub last_timestamp: Timestamp,
    /// One entry per unit.
    pub streams: Vec<StreamExport>,
}

/// Serialisable form of one unit's windows: `(tier, window start ms, window)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamExport {
    /// The unit.
    pub unit: Unit,
    /// `(tier index, window start, window)`.
    pub windows: Vec<(u8, i64, WindowExport)>,
}

mod query_gate;
mod remote;
mod series_map;
mod tier;
pub use query_gate::{
    Admission, DEFAULT_MAX_QUERY_COST, DEFAULT_MAX_WAITING_QUERIES, QueryGate, QueryRefused,
};
pub use remote::{KeysRequest, RemoteShards};
use series_map::SeriesMap;
use tier::TierWindows;

#[cfg(test)]
mod tests;
