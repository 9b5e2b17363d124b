//! Cluster mode's log: the cluster's ingest stream in place of the local write-ahead log.
//!
//! The log writer takes a group of pushes as in single-node mode, splits each push's
//! observations by partition (a series' partition is its store shard: the stable series hash
//! modulo the partition count), encodes each part as a log record ([`crate::record`], the
//! same payload the local log writes) and hands every part of the group to the [`RemoteLog`]
//! at once. A push is acknowledged when each of its parts is stored, and applied to a store
//! only by the partition's owner, which reads the stream ([`RecordApplier`]).

use std::sync::{Arc, Mutex};

use thermostat_metrics::{Observation, ObservationBatch, SeriesKey, Store};

use thermostat_metrics::cumulative::CumulativePoint;

use crate::points::push_points;
use crate::record::{self, Decoder, Writer};
use crate::streams::StreamsState;

/// The cluster's ingest stream as seen by the log writer (a port: the binary connects the
/// NATS adapter to it).
pub trait RemoteLog: Send + Sync + std::fmt::Debug + 'static {
    /// Partitions series are hashed into (the store's shard count in cluster mode).
    fn partitions(&self) -> u32;
    /// The largest record the stream takes.
    fn max_record_bytes(&self) -> usize;
    /// Stores every `(partition, record)`, blocking the calling thread (the log writer's)
    /// until each is stored or refused; the answers are in the order of `parts`, each the
    /// stored record's sequence number or why it is not stored.
    fn store_blocking(&self, parts: Vec<(u32, Vec<u8>)>) -> Vec<Result<u64, String>>;
}

/// One record for the ingest stream: a partition's share of a group of pushes.
#[derive(Debug)]
pub(crate) struct Record {
    /// Its partition (subject).
    pub(crate) partition: u32,
    /// The log record ([`record::encode`]).
    pub(crate) payload: Vec<u8>,
    /// The pushes (indices into the group) whose observations it holds.
    pub(crate) pushes: Vec<usize>,
}

/// One item of a partition's share of a push, for a record that must be cut smaller.
enum Item<'a> {
    Observation(SeriesKey, Observation<'a>),
    Point(&'a CumulativePoint),
}

/// The records of a group of pushes (each its observations and, in cluster mode, its
/// cumulative points): per partition, every push's observations and points in it (in push
/// order, so each series' observations keep theirs), as one record or more, each at most
/// `max_bytes` unless a single item is larger (then it goes alone and the stream refuses it).
/// A group of many small pushes makes one message per partition, not one per push and
/// partition.
pub(crate) fn group_records(
    pushes: &[(&ObservationBatch, &[CumulativePoint])],
    partitions: u32,
    max_bytes: usize,
) -> Vec<Record> {
    let partitions = u64::from(partitions.max(1));
    let part_of = |key: &SeriesKey| (key.stable_hash() % partitions) as u32;
    // Each run of a series is written straight into its partition's payload (no copy of the
    // observations regrouped first).
    let mut parts: std::collections::BTreeMap<u32, (Writer, Vec<usize>, usize)> =
        std::collections::BTreeMap::new();
    for (push, (batch, points)) in pushes.iter().enumerate() {
        for (key, run) in batch.runs() {
            let (writer, in_it, count) = parts
                .entry(part_of(key))
                .or_insert_with(|| (Writer::new(Vec::new()), Vec::new(), 0));
            if in_it.last() != Some(&push) {
                in_it.push(push);
            }
            *count += run.len();
            writer.push_series(key, run);
        }
        for point in *points {
            let (writer, in_it, count) = parts
                .entry(part_of(&point.key.series))
                .or_insert_with(|| (Writer::new(Vec::new()), Vec::new(), 0));
            if in_it.last() != Some(&push) {
                in_it.push(push);
            }
            writer.push_cumulative(point);
            *count += 1;
        }
    }
    let mut out = Vec::new();
    for (partition, (writer, in_it, count)) in parts {
        let payload = writer.finish();
        if payload.len() <= max_bytes || count <= 1 {
            out.push(Record {
                partition,
                payload,
                pushes: in_it,
            });
            continue;
        }
        // Too large for one message (rare: a group's share of one partition over NATS'
        // payload): item by item, halving, each part naming its pushes.
        let mut entries: Vec<(Item<'_>, usize)> = Vec::new();
        for &push in &in_it {
            let (batch, points) = pushes[push];
            entries.extend(
                batch
                    .observations()
                    .into_iter()
                    .filter(|(key, _)| part_of(key) == partition)
                    .map(|(key, obs)| (Item::Observation(key, obs), push)),
            );
            entries.extend(
                points
                    .iter()
                    .filter(|p| part_of(&p.key.series) == partition)
                    .map(|p| (Item::Point(p), push)),
            );
        }
        encode_within(partition, &entries, max_bytes, &mut out);
    }
    out
}

/// Encodes one partition's `entries` as one record, or halves until each record fits
/// `max_bytes`.
fn encode_within(
    partition: u32,
    entries: &[(Item<'_>, usize)],
    max_bytes: usize,
    out: &mut Vec<Record>,
) {
    let observations: Vec<(SeriesKey, Observation<'_>)> = entries
        .iter()
        .filter_map(|(item, _)| match item {
            Item::Observation(k, o) => Some((k.clone(), *o)),
            Item::Point(_) => None,
        })
        .collect();
    let mut payload = Vec::new();
    record::encode(
        &ObservationBatch::from_observations(&observations),
        &mut payload,
    );
    let mut writer = Writer::new(payload);
    for (item, _) in entries {
        if let Item::Point(p) = item {
            writer.push_cumulative(p);
        }
    }
    let payload = writer.finish();
    if payload.len() <= max_bytes || entries.len() <= 1 {
        let mut pushes: Vec<usize> = entries.iter().map(|e| e.1).collect();
        pushes.dedup();
        out.push(Record {
            partition,
            payload,
            pushes,
        });
        return;
    }
    let (a, b) = entries.split_at(entries.len() / 2);
    encode_within(partition, a, max_bytes, out);
    encode_within(partition, b, max_bytes, out);
}

/// Applies the records of the ingest stream to a partitioned store ([`Store::partitioned`]),
/// each partition in its stream order, turning their cumulative points into increases
/// against the partition's cumulative streams.
#[derive(Debug)]
pub struct RecordApplier {
    store: Arc<Store>,
    /// One decoder per partition (a decoder remembers recent series keys).
    decoders: Vec<Mutex<Decoder>>,
    /// The cumulative streams (their applied copy: this node's checkpoints hold it).
    streams: Arc<StreamsState>,
}

impl RecordApplier {
    /// An applier into `store`, whose shards are the partitions, with the cumulative streams
    /// `streams` ([`crate::Ingest::record_applier`]).
    pub(crate) fn new(store: Arc<Store>, streams: Arc<StreamsState>) -> Self {
        let decoders = (0..store.shard_count())
            .map(|_| Mutex::new(Decoder::new()))
            .collect();
        RecordApplier {
            store,
            decoders,
            streams,
        }
    }

    fn partitions(&self) -> u32 {
        u32::try_from(self.store.shard_count()).unwrap_or(u32::MAX)
    }

    /// The stream sequence up to which `partition` is applied.
    pub fn applied_seq(&self, partition: u32) -> u64 {
        self.store.shard_watermark(partition as usize)
    }

    /// Applies record `seq` of `partition` (skipped when the partition already holds it).
    /// Observations of another partition in it are applied all the same (to their shard):
    /// a record is never split on the way in.
    ///
    /// # Errors
    /// A payload that is not a log record, or a partition this store does not have.
    pub fn apply(&self, partition: u32, seq: u64, payload: &[u8]) -> Result<(), String> {
        let decoder = self
            .decoders
            .get(partition as usize)
            .ok_or_else(|| format!("partition {partition} is beyond this store's shards"))?;
        let (mut updates, mut cumulative) = (Vec::new(), Vec::new());
        let mut batch = decoder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .decode_with_updates(payload, &mut updates, &mut cumulative)
            .map_err(|e| e.to_string())?;
        if !cumulative.is_empty() && seq > self.applied_seq(partition) {
            // Increases that break a rule are left out: the node that received the point
            // answered the sender so.
            let increases = self.streams.convert(&cumulative);
            push_points(&mut batch, &increases, false);
        }
        batch.record_into(&self.store, seq);
        Ok(())
    }

    /// A snapshot of `partition` as it stands here: the newest record it holds, and the bytes
    /// another node loads with [`RecordApplier::load_partition`].
    pub fn snapshot_partition(&self, partition: u32) -> (u64, Vec<u8>) {
        // The streams after the series: they hold at least the records up to the watermark
        // (a point of a later record, read again by a new owner, records nothing).
        crate::persist::encode_partition(&self.store, partition, || {
            self.streams.partition(partition, self.partitions())
        })
    }

    /// Replaces `partition` here with a snapshot made by [`RecordApplier::snapshot_partition`]
    /// (on any node); returns the newest record it holds, from which the stream is read on.
    ///
    /// # Errors
    /// Bytes that are not a snapshot of this partition (nothing is changed).
    pub fn load_partition(&self, partition: u32, snapshot: &[u8]) -> Result<u64, String> {
        let partitions = self.partitions();
        let (watermark, series, streams) =
            crate::persist::decode_partition(snapshot, partition, partitions)?;
        self.store
            .replace_shard(partition as usize, series, watermark)?;
        self.streams
            .replace_partition(partition, partitions, streams);
        Ok(watermark)
    }
}

#[cfg(test)]
mod tests {
    use thermostat_metrics::{Dimension, Resolution, Timestamp, Unit};

    use super::*;

    fn batch(series: usize, per: usize, from_second: usize) -> ObservationBatch {
        let mut b = ObservationBatch::default();
        for s in 0..series {
            let key = SeriesKey::new(
                "App",
                "Latency",
                vec![Dimension::new("Host", format!("h{s}"))],
            );
            for i in 0..per {
                b.push_value(
                    &key,
                    Timestamp(1_800_000_000_000 + (from_second + i) as i64 * 1000),
                    Unit::Milliseconds,
                    Resolution::Standard,
                    i as f64,
                );
            }
        }
        b
    }

    #[test]
    fn a_group_split_by_partition_and_applied_in_any_partition_order_is_the_group() {
        let first = batch(50, 20, 0);
        let second = batch(50, 20, 20);
        let group = [(&first, &[][..]), (&second, &[][..])];
        // Roomy records: one per partition for the whole group, each holding both pushes.
        let roomy = group_records(&group, 8, 1 << 20);
        assert!(roomy.len() <= 8, "{} records", roomy.len());
        assert!(roomy.iter().all(|r| r.pushes == [0, 1]), "{roomy:?}");
        // Small records: more than one per partition, each naming only the pushes in it.
        let records = group_records(&group, 8, 600);
        assert!(records.len() > 16, "{} records", records.len());
        assert!(
            records
                .iter()
                .all(|r| r.partition < 8 && r.payload.len() <= 600)
        );
        assert!(records.iter().any(|r| r.pushes == [0]) && records.iter().any(|r| r.pushes == [1]));
        let whole = Arc::new(Store::partitioned(8));
        first.record_into(&whole, 1);
        second.record_into(&whole, 2);
        let rebuilt = Arc::new(Store::partitioned(8));
        let applier = RecordApplier::new(Arc::clone(&rebuilt), Arc::default());
        // Partitions in reverse, each in its own sequence order.
        let mut seqs = [0u64; 8];
        let mut ordered: Vec<&Record> = records.iter().collect();
        ordered.sort_by_key(|r| std::cmp::Reverse(r.partition));
        for r in ordered {
            let p = r.partition as usize;
            seqs[p] += 1;
            applier.apply(r.partition, seqs[p], &r.payload).unwrap();
            // A redelivered record counts once.
            applier.apply(r.partition, seqs[p], &r.payload).unwrap();
        }
        assert_eq!(rebuilt.series_count(), 50);
        let export = |store: &Store| {
            let mut all = Vec::new();
            store.export_each(|s| all.push(s));
            all.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
            all
        };
        assert_eq!(export(&rebuilt), export(&whole));
        for p in 0..8 {
            assert_eq!(applier.applied_seq(p), seqs[p as usize]);
        }
    }

    fn exported(store: &Store) -> Vec<thermostat_metrics::store::SeriesExport> {
        let mut all = Vec::new();
        store.export_each(|s| all.push(s));
        all.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        all
    }

    /// Applies `b`'s share of every partition as record `seq` of that partition.
    fn apply_all(applier: &RecordApplier, b: &ObservationBatch, seq: u64) {
        for r in group_records(&[(b, &[][..])], 4, 1 << 20) {
            applier.apply(r.partition, seq, &r.payload).unwrap();
        }
    }

    #[test]
    fn a_partition_snapshot_replaces_what_another_node_held_of_it() {
        // The owner applied three records of every partition; another node, which owned the
        // partitions before, applied only the first, and holds a series since expired there.
        let owner = RecordApplier::new(Arc::new(Store::partitioned(4)), Arc::default());
        let stale = RecordApplier::new(Arc::new(Store::partitioned(4)), Arc::default());
        for seq in 1..=3 {
            apply_all(&owner, &batch(40, 5, seq as usize * 5), seq);
        }
        apply_all(&stale, &batch(40, 5, 5), 1);
        apply_all(&stale, &batch(45, 1, 90), 1);
        for p in 0..4 {
            let (seq, bytes) = owner.snapshot_partition(p);
            assert_eq!(seq, 3);
            assert_eq!(stale.load_partition(p, &bytes), Ok(3));
            assert_eq!(stale.applied_seq(p), 3);
        }
        assert_eq!(exported(&stale.store), exported(&owner.store));
        assert_eq!(stale.store.series_count(), 40);
        // What the stale series weighed is gone with them: the weight is the loaded series'.
        let fresh = Store::partitioned(4);
        exported(&owner.store)
            .into_iter()
            .for_each(|s| fresh.import(s));
        assert_eq!(stale.store.series_bytes(), fresh.series_bytes());
        // Read on from the snapshot: the next record counts once, a replayed one not at all.
        let next = batch(40, 5, 40);
        apply_all(&owner, &next, 4);
        apply_all(&stale, &next, 4);
        apply_all(&stale, &batch(40, 5, 10), 2);
        assert_eq!(exported(&stale.store), exported(&owner.store));
    }

    #[test]
    fn a_partition_snapshot_that_is_not_one_changes_nothing_and_says_why() {
        let owner = RecordApplier::new(Arc::new(Store::partitioned(4)), Arc::default());
        apply_all(&owner, &batch(40, 5, 0), 7);
        let (_, good) = owner.snapshot_partition(1);
        let here = RecordApplier::new(Arc::new(Store::partitioned(4)), Arc::default());
        apply_all(&here, &batch(10, 1, 0), 2);
        let before = exported(&here.store);
        let refused = |bytes: &[u8], partition: u32| {
            let why = here.load_partition(partition, bytes).unwrap_err();
            assert_eq!(exported(&here.store), before, "{why}");
            why
        };
        assert!(refused(b"hello", 1).contains("bad magic"));
        assert!(refused(&good, 2).contains("not 2 of 4"));
        let mut flipped = good.clone();
        flipped[30] ^= 0x55;
        assert!(refused(&flipped, 1).contains("byte offset 12"));
        assert!(refused(&good[..good.len() - 12], 1).contains("truncated"));
        // A length claiming 4 GiB allocates nothing and is refused.
        let mut huge = good[..12].to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 16]);
        assert!(refused(&huge, 1).contains("truncated"));
        // A series of partition 1 in a snapshot that says it is partition 3's.
        let other = RecordApplier::new(Arc::new(Store::partitioned(4)), Arc::default());
        apply_all(&other, &batch(40, 5, 0), 7);
        let (_, of_three) = other.snapshot_partition(3);
        let shard_end = {
            // The `Shard` record of partition 3's snapshot: the last record before the end.
            let mut at = 12;
            let mut last = 12;
            while at < of_three.len() - 4 {
                last = at;
                let len = u32::from_le_bytes(of_three[at..at + 4].try_into().unwrap()) as usize;
                at += 8 + len;
            }
            of_three[last..of_three.len() - 4].to_vec()
        };
        let mut forged = good[..12].to_vec();
        let mut at = 12;
        while at < good.len() - 4 {
            let len = u32::from_le_bytes(good[at..at + 4].try_into().unwrap()) as usize;
            if at + 8 + len < good.len() - 4 {
                forged.extend_from_slice(&good[at..at + 8 + len]);
            }
            at += 8 + len;
        }
        forged.extend_from_slice(&shard_end);
        forged.extend_from_slice(&0u32.to_le_bytes());
        assert!(refused(&forged, 3).contains("belongs to shard 1"));
    }

    #[test]
    fn a_record_that_is_not_one_is_refused_by_name() {
        let applier = RecordApplier::new(Arc::new(Store::partitioned(2)), Arc::default());
        assert!(applier.apply(0, 1, &[0xff, 0x00, 0x13]).is_err());
        assert!(
            applier
                .apply(9, 1, &[])
                .unwrap_err()
                .contains("partition 9")
        );
    }

    /// The total of series `key` in `store` over the test's hour.
    fn total(store: &Store, key: &SeriesKey) -> f64 {
        let now = Timestamp::from_secs(1_800_000_000);
        let q = thermostat_metrics::Query {
            key: key.clone(),
            unit: None,
            start: now.sub_millis(3_600_000),
            end: now.add_millis(3_600_000),
            period: thermostat_metrics::Period::try_from_secs(60).unwrap(),
            statistics: vec!["Sum".parse().unwrap()],
        };
        store
            .query(&q, now)
            .unwrap()
            .iter()
            .map(|d| d.values[0].unwrap_or(0.0))
            .sum()
    }

    fn counter(key: &SeriesKey, second: i64, value: f64) -> CumulativePoint {
        use thermostat_metrics::cumulative::{StartRule, StreamKey, StreamKind, Totals};
        let ms = 1_800_000_000_000 + second * 1000;
        CumulativePoint {
            key: StreamKey {
                series: key.clone(),
                kind: StreamKind::Sum,
                origin: 1,
            },
            unit: Unit::Count,
            timestamp_ms: ms,
            start: 1,
            time: ms as u64 * 1_000_000,
            seen_ms: ms,
            rule: StartRule::Otlp,
            totals: Totals::Sum(value),
        }
    }

    /// Cumulative points reach their partition's owner in the stream's order, whichever node
    /// received each: the owner counts the increases once, a record read again adds nothing,
    /// and a new owner taking the partition's snapshot goes on from the stream's state.
    #[test]
    fn owners_turn_cumulative_points_into_increases_once() {
        let key = SeriesKey::new("App", "Requests", vec![]);
        let empty = ObservationBatch::default();
        let owner = RecordApplier::new(Arc::new(Store::partitioned(4)), Arc::default());
        let mut seq = 0;
        let mut send = |applier: &RecordApplier, points: &[CumulativePoint]| {
            seq += 1;
            let records = group_records(&[(&empty, points)], 4, 1 << 20);
            assert_eq!(records.len(), 1, "one partition");
            let r = &records[0];
            applier.apply(r.partition, seq, &r.payload).unwrap();
            // Read again (a redelivery): nothing more.
            applier.apply(r.partition, seq, &r.payload).unwrap();
            r.partition
        };
        // 100, 150, 180: from zero, then by difference; an older point after them (a retry
        // another node received) records nothing.
        send(&owner, &[counter(&key, 0, 100.0)]);
        send(
            &owner,
            &[counter(&key, 10, 150.0), counter(&key, 20, 180.0)],
        );
        let partition = send(&owner, &[counter(&key, 10, 150.0)]);
        assert_eq!(total(&owner.store, &key), 180.0);

        let (_, snapshot) = owner.snapshot_partition(partition);
        let next = RecordApplier::new(Arc::new(Store::partitioned(4)), Arc::default());
        next.load_partition(partition, &snapshot).unwrap();
        send(&next, &[counter(&key, 30, 200.0)]);
        assert_eq!(
            total(&next.store, &key),
            200.0,
            "the snapshot's 180 and 20 more"
        );

        // A snapshot whose stream is of another partition is refused by name.
        let other = (partition + 1) % 4;
        let forged = crate::persist::encode_partition(&Store::partitioned(4), other, || {
            next.streams.partition(partition, 4)
        })
        .1;
        let e = next.load_partition(other, &forged).unwrap_err();
        assert!(
            e.contains("a cumulative stream of another partition"),
            "{e}"
        );
    }

    /// Cumulative point items that are not one (a forged or damaged record) are refused by
    /// name and leave the store as it was; a well-formed point with absurd totals (scales
    /// no mapping makes) is applied without harm.
    #[test]
    fn hostile_cumulative_points_are_refused_or_harmless() {
        use thermostat_metrics::cumulative::{BucketRange, ExponentialTotals, StreamKind, Totals};
        let applier = RecordApplier::new(Arc::new(Store::partitioned(4)), Arc::default());
        let mut huge = vec![0x04];
        prost::encoding::encode_varint(u64::MAX, &mut huge);
        let mut garbage = vec![0x04];
        prost::encoding::encode_varint(40, &mut garbage);
        garbage.extend(std::iter::repeat_n(0xff, 40));
        for (bytes, what) in [(&huge[..], "length"), (&garbage[..], "cumulative point")] {
            let e = applier.apply(0, 1, bytes).unwrap_err();
            assert!(e.contains(what), "{e}");
        }
        assert_eq!(applier.store.series_count(), 0);

        let key = SeriesKey::new("App", "Sizes", vec![]);
        let point = |second: i64, scale: i32| {
            let mut p = counter(&key, second, 0.0);
            p.key.kind = StreamKind::ExponentialHistogram;
            p.totals = Totals::Exponential(ExponentialTotals {
                count: 3,
                sum: Some(3.0),
                min: None,
                max: None,
                scale,
                zero_count: 0,
                zero_threshold: 0.0,
                positive: BucketRange {
                    offset: i32::MAX - 1,
                    counts: vec![1, 2],
                },
                negative: BucketRange::default(),
            });
            p
        };
        let empty = ObservationBatch::default();
        let points = [point(0, i32::MAX), point(10, i32::MIN)];
        let records = group_records(&[(&empty, &points[..])], 4, 1 << 20);
        for (seq, r) in (1..).zip(&records) {
            applier.apply(r.partition, seq, &r.payload).unwrap();
        }
        assert_eq!(applier.store.series_count(), 1);
    }
}
