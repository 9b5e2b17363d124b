//! A shard's series: a slab of series and a hash index of slab positions, with a hint in each
//! key of its series' position.
//!
//! A time-ordered request holds a thousand different series, so each datum's apply used to
//! probe the shard's hash map: its control bytes and its bucket, two cache misses at a
//! million series before the series itself was read. The key now remembers where its series
//! was found ([`SeriesKey::slot_hint`]); the interner hands the store the same shared key
//! request after request, so a known series is read straight from its slot, checked by
//! pointer ([`SeriesKey::same`]): one miss, on the series, which the apply needs anyway. A
//! hint that does not match (the series was removed and its slot reused, another store, a
//! key made elsewhere) costs the probe it replaces and is then corrected.
//!
//! The index holds slab positions and the upper half of their keys' hashes, not keys: 8 bytes
//! a slot, where a map of keys to boxed series held 16, and the series no longer costs an
//! allocation of its own. The half hash lets a probe pass over other series without reading
//! them, and lets the index grow without reading every series again.

use hashbrown::HashTable;

use super::Series;
use crate::series::SeriesKey;

/// No position: the slab never holds this many series in a shard.
const NO_SLOT: u32 = u32::MAX;

#[derive(Debug, Default)]
pub(super) struct SeriesMap {
    /// The series held: [`entry`]s of their positions in `slots`, by [`index_hash`].
    index: HashTable<u64>,
    /// The series, each with its key; `None` where a series was removed (reused first).
    slots: Vec<Option<(SeriesKey, Series)>>,
    /// Positions of `None` slots.
    free: Vec<u32>,
}

/// An index entry: the upper half of the key's stable hash, then the slab position. (The
/// shard was picked by the hash's low bits, so its upper half still tells series apart.)
fn entry(key: &SeriesKey, position: u32) -> u64 {
    (key.stable_hash() & !u64::from(u32::MAX)) | u64::from(position)
}

fn position_of(entry: u64) -> u32 {
    entry as u32
}

/// The index's hash of an entry: its half hash spread over every bit again (the table picks
/// buckets with the low bits and tags with the top ones).
fn index_hash(entry: u64) -> u64 {
    (entry >> 32).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Whether index entry `e` is `key`'s series: the half hashes first, then the slot's key.
fn holds<'a>(
    slots: &'a [Option<(SeriesKey, Series)>],
    key: &'a SeriesKey,
) -> impl Fn(&u64) -> bool + 'a {
    let half = entry(key, 0);
    move |&e| {
        e & !u64::from(u32::MAX) == half
            && slots[position_of(e) as usize]
                .as_ref()
                .is_some_and(|(k, _)| k == key)
    }
}

impl SeriesMap {
    /// The position of `key`'s series, if held: its hint when that matches, else a probe.
    fn position(&self, key: &SeriesKey) -> Option<u32> {
        let hint = key.slot_hint();
        if let Some(Some((k, _))) = self.slots.get(hint as usize)
            && SeriesKey::same(k, key)
        {
            return Some(hint);
        }
        let found = position_of(
            *self
                .index
                .find(index_hash(entry(key, 0)), holds(&self.slots, key))?,
        );
        key.set_slot_hint(found);
        Some(found)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    pub(super) fn contains_key(&self, key: &SeriesKey) -> bool {
        self.position(key).is_some()
    }

    pub(super) fn get(&self, key: &SeriesKey) -> Option<&Series> {
        let i = self.position(key)?;
        self.slots[i as usize].as_ref().map(|(_, s)| s)
    }

    /// The series of `key`, and whether it was made now (empty, holding `key`).
    pub(super) fn get_or_insert(&mut self, key: &SeriesKey) -> (&mut Series, bool) {
        let (i, made) = match self.position(key) {
            Some(i) => (i, false),
            None => {
                let made = Some((key.clone(), Series::default()));
                let i = match self.free.pop() {
                    Some(i) => {
                        self.slots[i as usize] = made;
                        i
                    }
                    None => {
                        let i = u32::try_from(self.slots.len())
                            .ok()
                            .filter(|&i| i != NO_SLOT)
                            .expect("fewer than 4 billion series in a shard");
                        self.slots.push(made);
                        i
                    }
                };
                let e = entry(key, i);
                self.index
                    .insert_unique(index_hash(e), e, |&e| index_hash(e));
                key.set_slot_hint(i);
                (i, true)
            }
        };
        let Some((_, series)) = self.slots[i as usize].as_mut() else {
            unreachable!("a position found or made holds a series")
        };
        (series, made)
    }

    /// Every series with its key, in slab order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&SeriesKey, &Series)> {
        self.slots.iter().flatten().map(|(k, s)| (k, s))
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &SeriesKey> {
        self.iter().map(|(k, _)| k)
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Series> {
        self.iter().map(|(_, s)| s)
    }

    /// Keeps the series for which `keep` says so (it may change them), in slab order.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&SeriesKey, &mut Series) -> bool) {
        let mut removed = false;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if let Some((k, s)) = slot
                && !keep(k, s)
            {
                *slot = None;
                self.free.push(u32::try_from(i).unwrap_or(NO_SLOT));
                removed = true;
            }
        }
        if removed {
            let slots = &self.slots;
            self.index
                .retain(|&mut e| slots[position_of(e) as usize].is_some());
            self.shrink();
        }
    }

    /// Takes every series out.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = (SeriesKey, Series)> {
        self.index.clear();
        self.free.clear();
        std::mem::take(&mut self.slots).into_iter().flatten()
    }

    /// Gives memory back when most of the slab is free: the slab is cut after its last series
    /// (a shard whose series all went holds nothing).
    fn shrink(&mut self) {
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        let len = self.slots.len();
        self.free.retain(|&i| (i as usize) < len);
        if self.slots.capacity() > 2 * len.max(8) {
            self.slots.shrink_to_fit();
            self.free.shrink_to_fit();
        }
        self.index.shrink_to(0, |&e| index_hash(e));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn key(n: u8) -> SeriesKey {
        SeriesKey::new(
            "NS".to_owned(),
            format!("m{}", n % 7),
            vec![crate::Dimension::new("Host", format!("h{n}"))],
        )
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// Record into the series of key `n`, through a key made anew (equal, not shared) when
        /// the flag says so.
        Touch(u8, bool),
        /// Remove the series whose keys' numbers are divisible by `n + 2`.
        Remove(u8),
        Drain,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u8..40, any::<bool>()).prop_map(|(n, fresh)| Op::Touch(n, fresh)),
            1 => (0u8..5).prop_map(Op::Remove),
            1 => Just(Op::Drain),
        ]
    }

    proptest! {
        /// The map holds what a `HashMap` of the same operations holds, whether lookups go
        /// through a key's hint, a stale hint (its slot since reused) or a probe.
        #[test]
        fn behaves_as_a_hash_map(ops in proptest::collection::vec(op(), 0..200)) {
            let shared: Vec<SeriesKey> = (0..40).map(key).collect();
            let mut map = SeriesMap::default();
            let mut model: HashMap<SeriesKey, i64> = HashMap::new();
            for op in ops {
                match op {
                    Op::Touch(n, fresh) => {
                        let k = if fresh { key(n) } else { shared[usize::from(n)].clone() };
                        let (series, made) = map.get_or_insert(&k);
                        prop_assert_eq!(made, !model.contains_key(&k));
                        series.bytes += 1;
                        *model.entry(k).or_default() += 1;
                    }
                    Op::Remove(d) => {
                        let d = d + 2;
                        let gone = |k: &SeriesKey| {
                            k.dimension("Host").is_some_and(|h| {
                                h[1..].parse::<u8>().is_ok_and(|n| n % d == 0)
                            })
                        };
                        map.retain(|k, _| !gone(k));
                        model.retain(|k, _| !gone(k));
                    }
                    Op::Drain => {
                        let drained: Vec<SeriesKey> = map.drain().map(|(k, _)| k).collect();
                        prop_assert_eq!(drained.len(), model.len());
                        model.clear();
                    }
                }
                prop_assert_eq!(map.len(), model.len());
                for (n, k) in shared.iter().enumerate() {
                    prop_assert_eq!(map.contains_key(k), model.contains_key(k), "key {}", n);
                    prop_assert_eq!(map.contains_key(&key(n as u8)), model.contains_key(k));
                    prop_assert_eq!(
                        map.get(k).map(|s| s.bytes as i64),
                        model.get(k).copied()
                    );
                }
                let mut held: Vec<String> = map.iter().map(|(k, _)| k.to_string()).collect();
                let mut want: Vec<String> = model.keys().map(ToString::to_string).collect();
                held.sort();
                want.sort();
                prop_assert_eq!(held, want);
            }
        }
    }

    #[test]
    fn a_known_key_is_found_through_its_hint_and_a_reused_slot_is_not_mistaken_for_it() {
        let mut map = SeriesMap::default();
        let a = key(1);
        let b = key(2);
        map.get_or_insert(&a);
        assert_eq!(a.slot_hint(), 0, "the hint is set when the series is made");
        map.retain(|k, _| *k != a);
        // b takes a's slot: a's hint now points at b's series.
        map.get_or_insert(&b);
        assert_eq!(b.slot_hint(), 0);
        assert!(!map.contains_key(&a), "a's stale hint must not find b");
        let (_, made) = map.get_or_insert(&a);
        assert!(made);
        assert_eq!(a.slot_hint(), 1);
        assert_eq!(map.len(), 2);
    }
}
