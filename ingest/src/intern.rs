//! Series lookup by a datum's wire identity.
//!
//! Building a [`SeriesKey`] for each datum (sorting its dimensions, allocating its strings)
//! costs more than storing the sample. The interner maps the identity *as it arrives* —
//! namespace, metric name and dimensions in request order — to the key made the first time,
//! so that a datum of a known series costs one hash of its bytes, one probe and a
//! reference-count increment. The map is sharded so that handlers on different cores rarely
//! meet on a lock.
//!
//! A cached key may belong to a series that compaction has since removed; recording through
//! it simply creates the series again, as the key would. Each shard is cleared when it grows
//! past its bound, in entries or in bytes (an identity with large dimension values weighs
//! tens of KB, and the keys it holds may outlive their series), so that dimension orders or
//! series that come and go cannot grow it without end.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use hashbrown::HashTable;
use thermostat_metrics::SeriesKey;
use thermostat_metrics::shard_order::ShardOrder;

const SHARDS: usize = 32;

struct Entry {
    hash: u64,
    /// The identity, unless it is the key's own in [`push_part`] form (namespace, metric name,
    /// then the dimensions sorted by name, as senders usually order them): then `None`, and
    /// a probe compares with the key's parts. At a million series that is 60–100 bytes a
    /// series less.
    /// Boxed twice, so that the entry holds a thin pointer (8 bytes, not a slice's 16): an
    /// entry is 24 bytes, and most have no identity of their own.
    identity: Option<Box<Box<[u8]>>>,
    key: SeriesKey,
}

// The table holds entries inline: keep them at 24 bytes.
const _: () = assert!(std::mem::size_of::<Entry>() == 24);

impl Entry {
    /// Bytes the entry holds, estimated: itself, its identity bytes and its key (counted whole
    /// although the store usually shares it).
    fn weight(&self) -> usize {
        std::mem::size_of::<Entry>()
            + self
                .identity
                .as_ref()
                .map_or(0, |i| std::mem::size_of::<Box<[u8]>>() + i.len())
            + self.key.weight()
    }

    fn is(&self, hash: u64, identity: &[u8]) -> bool {
        self.hash == hash
            && match &self.identity {
                Some(i) => ***i == *identity,
                None => is_key_identity(&self.key, identity),
            }
    }
}

/// Whether `identity` is `key`'s parts in [`push_part`] form: namespace, metric name, then
/// each dimension's name and value in the key's (sorted) order, nothing after.
fn is_key_identity(key: &SeriesKey, identity: &[u8]) -> bool {
    let mut rest = identity;
    let mut next = |want: &str| -> bool {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return false;
        };
        let len = u32::from_le_bytes(*len) as usize;
        if tail.len() < len || tail[..len] != *want.as_bytes() {
            return false;
        }
        rest = &tail[len..];
        true
    };
    next(key.namespace())
        && next(key.metric_name())
        && key.dimensions().all(|d| next(d.name) && next(d.value))
        && rest.is_empty()
}

/// Bytes an interner holds at most by default, per identity it may hold.
const DEFAULT_BYTES_PER_ENTRY: usize = 512;

#[derive(Default)]
struct Shard {
    table: HashTable<Entry>,
    /// The sum of the entries' weights.
    bytes: usize,
}

/// The wire-identity → series-key cache.
pub struct Interner {
    shards: Box<[Mutex<Shard>]>,
    max_per_shard: usize,
    max_bytes_per_shard: usize,
    /// Namespaces and metric names shared by the keys made here, so that a million series of
    /// ten metrics hold ten metric-name strings, not a million (cleared when it reaches
    /// [`MAX_SHARED_NAMES`]; a name longer than [`MAX_SHARED_NAME_BYTES`] is not kept).
    names: Mutex<HashSet<Arc<str>>>,
}

/// Most names [`Interner::shared_name`] keeps.
const MAX_SHARED_NAMES: usize = 4096;
/// Longest name [`Interner::shared_name`] keeps (a metric name is at most 255 characters).
const MAX_SHARED_NAME_BYTES: usize = 256;

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interner")
            .field("max_per_shard", &self.max_per_shard)
            .field("max_bytes_per_shard", &self.max_bytes_per_shard)
            .finish_non_exhaustive()
    }
}

/// Appends a series' identity as it arrives (namespace, metric name, then each dimension's
/// name and value in request order), each part with [`push_part`]: what the interner is keyed
/// by.
pub(crate) fn push_identity(
    buf: &mut Vec<u8>,
    namespace: &str,
    metric_name: &[u8],
    dimensions: &WireDimensions<'_>,
) {
    push_part(buf, namespace.as_bytes());
    push_part(buf, metric_name);
    for (n, v) in dimensions {
        push_part(buf, n);
        push_part(buf, v);
    }
}

/// Appends `s` length-prefixed, so that concatenated parts cannot be confused.
#[inline]
fn push_part(buf: &mut Vec<u8>, s: &[u8]) {
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s);
}

impl Interner {
    /// An interner holding about `capacity` identities at most, and about 512 bytes per
    /// identity it may hold.
    pub fn new(capacity: usize) -> Self {
        Self::with_max_bytes(capacity, capacity.saturating_mul(DEFAULT_BYTES_PER_ENTRY))
    }

    /// An interner holding about `capacity` identities and `max_bytes` bytes at most (each
    /// shard at least 64 identities and 64 KiB).
    pub fn with_max_bytes(capacity: usize, max_bytes: usize) -> Self {
        Interner {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            max_per_shard: capacity.div_ceil(SHARDS).max(64),
            max_bytes_per_shard: max_bytes.div_ceil(SHARDS).max(64 << 10),
            names: Mutex::default(),
        }
    }

    /// `name` as a string shared with the other keys made here that have it.
    pub(crate) fn shared_name(&self, name: &str) -> Arc<str> {
        if name.len() > MAX_SHARED_NAME_BYTES {
            return Arc::from(name);
        }
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = names.get(name) {
            return Arc::clone(n);
        }
        if names.len() >= MAX_SHARED_NAMES {
            *names = HashSet::new();
        }
        let n: Arc<str> = Arc::from(name);
        names.insert(Arc::clone(&n));
        n
    }

    /// Bytes held, estimated (identities and keys).
    pub fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).bytes)
            .sum()
    }

    /// A lookup session for one request: it reuses its buffers, shares one namespace among
    /// the keys it makes, and answers a datum of the same series as the one before it without
    /// touching the shared map (agents send a series' samples together).
    pub(crate) fn session(&self) -> Session<'_> {
        Session {
            interner: self,
            scratch: Vec::with_capacity(128),
            previous: Vec::with_capacity(128),
            previous_key: None,
            namespace: None,
        }
    }

    /// The key of `identity` if it is known; otherwise `make` builds it (after checking it)
    /// and it is remembered.
    pub(crate) fn lookup<E>(
        &self,
        identity: &[u8],
        make: impl FnOnce() -> Result<SeriesKey, E>,
    ) -> Result<SeriesKey, E> {
        self.find_or_make(identity, make, false)
    }

    /// [`lookup`](Self::lookup) of an identity in [`push_part`] form; one that is the key's
    /// own (dimensions sorted by name) is not stored, only compared with the key.
    fn lookup_parts<E>(
        &self,
        identity: &[u8],
        make: impl FnOnce() -> Result<SeriesKey, E>,
    ) -> Result<SeriesKey, E> {
        self.find_or_make(identity, make, true)
    }

    fn find_or_make<E>(
        &self,
        identity: &[u8],
        make: impl FnOnce() -> Result<SeriesKey, E>,
        parts: bool,
    ) -> Result<SeriesKey, E> {
        let hash = xxhash_rust::xxh3::xxh3_64(identity);
        // The low bits pick the shard; the table uses the hash rotated so they don't also
        // pick the bucket.
        let shard = &self.shards[(hash as usize) % SHARDS];
        let table_hash = hash.rotate_right(16);
        {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = shard.table.find(table_hash, |e| e.is(hash, identity)) {
                return Ok(e.key.clone());
            }
        }
        let key = make()?;
        let own = parts && is_key_identity(&key, identity);
        let entry = Entry {
            hash,
            identity: (!own).then(|| Box::new(identity.into())),
            key: key.clone(),
        };
        let weight = entry.weight();
        let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
        if shard.table.len() >= self.max_per_shard
            || shard.bytes + weight > self.max_bytes_per_shard
        {
            // Cleared whole (and its memory given back), not grown.
            shard.table = HashTable::new();
            shard.bytes = 0;
        }
        if weight <= self.max_bytes_per_shard {
            shard.bytes += weight;
            shard
                .table
                .insert_unique(table_hash, entry, |e| e.hash.rotate_right(16));
        }
        Ok(key)
    }

    /// The keys of many identities at once, in [`push_part`] form (`None`: not known), each
    /// shard locked once for all of them: a request of many different series takes each lock
    /// once, not once a datum, and its probes run back to back.
    pub(crate) fn find_many(&self, identities: &[&[u8]]) -> Vec<Option<SeriesKey>> {
        let hashes: Vec<u64> = identities
            .iter()
            .map(|i| xxhash_rust::xxh3::xxh3_64(i))
            .collect();
        let shard_of: Vec<usize> = hashes.iter().map(|h| (*h as usize) % SHARDS).collect();
        let mut out = vec![None; identities.len()];
        for (s, group) in ShardOrder::new(SHARDS, &shard_of).groups() {
            let shard = self.shards[s].lock().unwrap_or_else(|p| p.into_inner());
            // Two passes, so that the probes' cache misses overlap: first every identity's
            // entry by hash alone (independent loads the processor runs ahead on), then each
            // candidate checked against the identity itself (again independent).
            let candidates: Vec<Option<&Entry>> = group
                .iter()
                .map(|&i| {
                    let hash = hashes[i];
                    shard.table.find(hash.rotate_right(16), |e| e.hash == hash)
                })
                .collect();
            // Then each candidate's key read once (again independent loads, in a loop short
            // enough for the processor to run far ahead), so that the checks below, whose
            // loads wait on one another, find the keys in the cache.
            let touched = candidates.iter().flatten().fold(0u64, |acc, e| {
                let text = e.key.dimensions().next().map_or(0, |d| d.name.len());
                acc ^ e.key.stable_hash() ^ e.key.namespace().len() as u64 ^ text as u64
            });
            std::hint::black_box(touched);
            for (&i, candidate) in group.iter().zip(candidates) {
                let hash = hashes[i];
                let entry = match candidate {
                    Some(e) if e.is(hash, identities[i]) => Some(e),
                    // Another identity of the same hash came first: the exact probe.
                    Some(_) => shard
                        .table
                        .find(hash.rotate_right(16), |e| e.is(hash, identities[i])),
                    None => None,
                };
                out[i] = entry.map(|e| e.key.clone());
            }
        }
        out
    }

    /// Identities held.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).table.len())
            .sum()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Lookups for one request (see [`Interner::session`]).
pub(crate) struct Session<'i> {
    interner: &'i Interner,
    scratch: Vec<u8>,
    previous: Vec<u8>,
    previous_key: Option<SeriesKey>,
    namespace: Option<Arc<str>>,
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("previous_key", &self.previous_key)
            .finish_non_exhaustive()
    }
}

/// A series identity as read off the wire: strings not yet checked to be UTF-8.
pub(crate) type WireDimensions<'a> = [(&'a [u8], &'a [u8])];

impl Session<'_> {
    /// The key of the series `namespace`/`metric_name`/`dimensions` (in request order).
    ///
    /// An identity seen before (in this request or any earlier one) was checked then and is
    /// not checked again. A new one is turned into strings (`utf8` says how a byte string
    /// that is not UTF-8 is refused) and passed to `check` before a key is made of it.
    ///
    /// # Errors
    /// What `utf8` or `check` returned.
    pub(crate) fn key<E>(
        &mut self,
        namespace: &str,
        metric_name: &[u8],
        dimensions: &WireDimensions<'_>,
        utf8: impl Fn(&[u8], Field) -> Result<&str, E>,
        check: impl FnOnce(&str, &[(&str, &str)]) -> Result<(), E>,
    ) -> Result<SeriesKey, E> {
        self.scratch.clear();
        push_identity(&mut self.scratch, namespace, metric_name, dimensions);
        if let Some(k) = &self.previous_key
            && self.scratch == self.previous
        {
            return Ok(k.clone());
        }
        let ns_slot = &mut self.namespace;
        let interner = self.interner;
        let key = interner.lookup_parts(&self.scratch, || {
            let metric = utf8(metric_name, Field::MetricName)?;
            let mut dims = Vec::with_capacity(dimensions.len());
            for (j, (n, v)) in dimensions.iter().enumerate() {
                dims.push((
                    utf8(n, Field::DimensionName(j))?,
                    utf8(v, Field::DimensionValue(j))?,
                ));
            }
            check(metric, &dims)?;
            let ns = match ns_slot {
                Some(n) if **n == *namespace => Arc::clone(n),
                _ => Arc::clone(ns_slot.insert(interner.shared_name(namespace))),
            };
            Ok(SeriesKey::from_parts(
                ns,
                interner.shared_name(metric),
                &dims,
            ))
        })?;
        std::mem::swap(&mut self.scratch, &mut self.previous);
        self.previous_key = Some(key.clone());
        Ok(key)
    }
}

/// Which string of an identity [`Session::key`] is converting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    /// `metric_name`.
    MetricName,
    /// `dimensions[i].name`.
    DimensionName(usize),
    /// `dimensions[i].value`.
    DimensionValue(usize),
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Field::MetricName => f.write_str("metric_name"),
            Field::DimensionName(i) => write!(f, "dimensions[{i}].name"),
            Field::DimensionValue(i) => write!(f, "dimensions[{i}].value"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &mut Session<'_>, ns: &str, metric: &str, dims: &[(&str, &str)]) -> SeriesKey {
        let dims: Vec<(&[u8], &[u8])> = dims
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        s.key::<String>(
            ns,
            metric.as_bytes(),
            &dims,
            |b, f| std::str::from_utf8(b).map_err(|_| format!("{f}")),
            |_, _| Ok(()),
        )
        .unwrap()
    }

    #[test]
    fn same_identity_same_key_and_dimension_order_does_not_matter() {
        let i = Interner::new(1000);
        let mut s = i.session();
        let a = key(&mut s, "App", "Latency", &[("Host", "a"), ("AZ", "1")]);
        let b = key(&mut s, "App", "Latency", &[("Host", "a"), ("AZ", "1")]);
        let c = key(&mut s, "App", "Latency", &[("AZ", "1"), ("Host", "a")]);
        let d = key(
            &mut i.session(),
            "App",
            "Latency",
            &[("Host", "a"), ("AZ", "1")],
        );
        assert_eq!(a, b);
        assert_eq!(a, d, "another session finds the same key");
        assert_eq!(
            a, c,
            "another order is another identity but the same series"
        );
        assert_eq!(i.len(), 2);
        assert_eq!(a.to_string(), "App/Latency{AZ=1,Host=a}");
    }

    #[test]
    fn an_identity_in_sorted_order_is_not_stored_and_still_matches_exactly() {
        let i = Interner::new(1000);
        let mut s = i.session();
        let sorted = key(&mut s, "App", "Latency", &[("AZ", "1"), ("Host", "a")]);
        let own = i.bytes();
        assert_eq!(own, std::mem::size_of::<Entry>() + sorted.weight());
        // Another order is stored with its bytes.
        let mut s = i.session();
        let other = key(&mut s, "App", "Latency", &[("Host", "a"), ("AZ", "1")]);
        assert_eq!(other, sorted);
        assert!(i.bytes() > own + std::mem::size_of::<Entry>() + other.weight());
        // Near misses of the sorted one are other series (a session per request, and so per
        // namespace).
        for (ns, metric, dims) in [
            ("App", "Latency", &[("AZ", "1"), ("Host", "ab")][..]),
            ("App", "Latency", &[("AZ", "1")][..]),
            (
                "App",
                "Latency",
                &[("AZ", "1"), ("Host", "a"), ("Z", "")][..],
            ),
            ("Ap", "Latency", &[("AZ", "1"), ("Host", "a")][..]),
            ("App", "Latenc", &[("AZ", "1"), ("Host", "a")][..]),
        ] {
            let mut s = i.session();
            assert_ne!(
                key(&mut s, ns, metric, dims),
                sorted,
                "{ns} {metric} {dims:?}"
            );
        }
        let mut s = i.session();
        assert!(SeriesKey::same(
            &key(&mut s, "App", "Latency", &[("AZ", "1"), ("Host", "a")]),
            &sorted
        ));
    }

    #[test]
    fn parts_cannot_run_into_each_other() {
        let i = Interner::new(1000);
        let mut s = i.session();
        let a = key(&mut s, "App", "ab", &[("c", "")]);
        let b = key(&mut s, "App", "a", &[("bc", "")]);
        assert_ne!(a, b);
    }

    #[test]
    fn a_full_shard_is_cleared_not_grown() {
        let i = Interner::new(64);
        for n in 0..10_000 {
            let host = format!("h{n}");
            let k = key(&mut i.session(), "App", "Cpu", &[("Host", &host)]);
            assert_eq!(k.dimension("Host"), Some(host.as_str()));
        }
        assert!(i.len() <= SHARDS * 64, "{}", i.len());
    }

    /// Identities with large dimension values fill the byte budget before the entry count:
    /// the interner stays within its bytes whatever it is fed.
    #[test]
    fn a_shard_is_bounded_in_bytes() {
        let budget = SHARDS * (64 << 10);
        let i = Interner::with_max_bytes(1_000_000, budget);
        let value = "v".repeat(1024);
        for n in 0..5_000 {
            let dims: Vec<(String, &str)> = (0..30)
                .map(|d| (format!("d{d}-{n}"), value.as_str()))
                .collect();
            let dims: Vec<(&str, &str)> = dims.iter().map(|(a, b)| (a.as_str(), *b)).collect();
            key(&mut i.session(), "App", "Cpu", &dims);
            assert!(i.bytes() <= budget, "{} > {budget}", i.bytes());
        }
        assert!(!i.is_empty());
    }
}
