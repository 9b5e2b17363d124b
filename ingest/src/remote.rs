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

use crate::record::{self, Decoder};

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

/// A push's records, one or more per partition it touches, each at most `max_bytes` unless
/// a single observation is larger (then it goes alone and the stream refuses it).
pub(crate) fn split(
    batch: &ObservationBatch,
    partitions: u32,
    max_bytes: usize,
) -> Vec<(u32, Vec<u8>)> {
    let partitions = u64::from(partitions.max(1));
    let mut by_partition: Vec<(u32, Vec<(SeriesKey, Observation<'_>)>)> = Vec::new();
    let mut entries = batch.observations();
    entries.sort_by_key(|(key, _)| key.stable_hash() % partitions);
    for (key, obs) in entries {
        let p = (key.stable_hash() % partitions) as u32;
        match by_partition.last_mut() {
            Some((last, part)) if *last == p => part.push((key, obs)),
            _ => by_partition.push((p, vec![(key, obs)])),
        }
    }
    let mut out = Vec::new();
    for (p, entries) in by_partition {
        encode_within(p, &entries, max_bytes, &mut out);
    }
    out
}

/// Encodes `entries` as one record, or halves until each record fits `max_bytes`.
fn encode_within(
    partition: u32,
    entries: &[(SeriesKey, Observation<'_>)],
    max_bytes: usize,
    out: &mut Vec<(u32, Vec<u8>)>,
) {
    let mut payload = Vec::new();
    record::encode(&ObservationBatch::from_observations(entries), &mut payload);
    if payload.len() <= max_bytes || entries.len() <= 1 {
        out.push((partition, payload));
        return;
    }
    let (a, b) = entries.split_at(entries.len() / 2);
    encode_within(partition, a, max_bytes, out);
    encode_within(partition, b, max_bytes, out);
}

/// Applies the records of the ingest stream to a partitioned store ([`Store::partitioned`]),
/// each partition in its stream order.
#[derive(Debug)]
pub struct RecordApplier {
    store: Arc<Store>,
    /// One decoder per partition (a decoder remembers recent series keys).
    decoders: Vec<Mutex<Decoder>>,
}

impl RecordApplier {
    /// An applier into `store`, whose shards are the partitions.
    pub fn new(store: Arc<Store>) -> Self {
        let decoders = (0..store.shard_count())
            .map(|_| Mutex::new(Decoder::new()))
            .collect();
        RecordApplier { store, decoders }
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
        let mut updates = Vec::new();
        let batch = decoder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .decode_with_updates(payload, &mut updates)
            .map_err(|e| e.to_string())?;
        batch.record_into(&self.store, seq);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use thermostat_metrics::{Dimension, Resolution, Timestamp, Unit};

    use super::*;

    fn batch(series: usize, per: usize) -> ObservationBatch {
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
                    Timestamp(1_800_000_000_000 + i as i64 * 1000),
                    Unit::Milliseconds,
                    Resolution::Standard,
                    i as f64,
                );
            }
        }
        b
    }

    #[test]
    fn a_push_split_by_partition_and_applied_in_any_partition_order_is_the_push() {
        let pushed = batch(50, 20);
        let parts = split(&pushed, 8, 600);
        assert!(
            parts.len() > 8,
            "small records: more than one per partition"
        );
        assert!(
            parts.iter().all(|(p, r)| *p < 8 && r.len() <= 600),
            "{:?}",
            parts.iter().map(|(p, r)| (p, r.len())).collect::<Vec<_>>()
        );
        let whole = Arc::new(Store::partitioned(8));
        pushed.record_into(&whole, 1);
        let rebuilt = Arc::new(Store::partitioned(8));
        let applier = RecordApplier::new(Arc::clone(&rebuilt));
        // Partitions in reverse, each in its own sequence order.
        let mut seqs = [0u64; 8];
        let mut ordered: Vec<&(u32, Vec<u8>)> = parts.iter().collect();
        ordered.sort_by_key(|(p, _)| std::cmp::Reverse(*p));
        for (p, record) in ordered {
            seqs[*p as usize] += 1;
            applier.apply(*p, seqs[*p as usize], record).unwrap();
            // A redelivered record counts once.
            applier.apply(*p, seqs[*p as usize], record).unwrap();
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

    #[test]
    fn a_record_that_is_not_one_is_refused_by_name() {
        let applier = RecordApplier::new(Arc::new(Store::partitioned(2)));
        assert!(applier.apply(0, 1, &[0xff, 0x00, 0x13]).is_err());
        assert!(
            applier
                .apply(9, 1, &[])
                .unwrap_err()
                .contains("partition 9")
        );
    }
}
