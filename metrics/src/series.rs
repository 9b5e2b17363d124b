//! Series identity: namespace + metric name + the set of dimensions.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// One dimension: a name/value pair.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dimension {
    /// Dimension name, e.g. `InstanceId`.
    pub name: String,
    /// Dimension value, e.g. `i-0abc`.
    pub value: String,
}

impl Dimension {
    /// A dimension from a name and a value.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Dimension {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// The identity of a series. Dimensions are kept sorted by name, so two keys built from
/// the same dimensions in a different order are equal.
///
/// A key is one shared allocation, plus one for its dimensions' text when that is longer
/// than 24 bytes (shorter text is kept in the key itself, so that comparing a key reads one
/// allocation, not two: a cache miss less per datum at a million series): cloning it is one
/// reference-count increment, and its [`stable_hash`](SeriesKey::stable_hash) is computed
/// once, when it is made, so that hashing it (to pick a shard, or in a map) never reads its
/// strings again. The dimensions are kept as one string (names and values concatenated, in
/// order) with the offsets where each ends, rather than two `String`s per dimension: at a
/// million series that is about 130 bytes a series less (issue 23).
#[derive(Clone)]
pub struct SeriesKey(Arc<KeyInner>);

struct KeyInner {
    namespace: Arc<str>,
    metric_name: Arc<str>,
    /// `name₀ value₀ name₁ value₁ …`, sorted by name, concatenated.
    text: CompactString,
    /// Where each name and value ends in `text` (two per dimension).
    ends: SmallVec<[u32; 4]>,
    /// Not part of the identity; derived from the fields above.
    hash: u64,
    /// Not part of the identity: where the store last found this key's series
    /// ([`SeriesKey::slot_hint`]).
    slot: AtomicU32,
}

impl PartialEq for KeyInner {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
            && self.namespace == other.namespace
            && self.metric_name == other.metric_name
            && self.text == other.text
            && self.ends == other.ends
    }
}

impl Eq for KeyInner {}

/// One dimension of a [`SeriesKey`], borrowed (serialized as a [`Dimension`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct DimensionRef<'a> {
    /// Dimension name.
    pub name: &'a str,
    /// Dimension value.
    pub value: &'a str,
}

impl DimensionRef<'_> {
    /// An owned copy.
    pub fn to_dimension(self) -> Dimension {
        Dimension::new(self.name, self.value)
    }
}

/// The dimensions of a [`SeriesKey`], sorted by name: an iterator of [`DimensionRef`]s
/// (three words, `Copy`).
#[derive(Clone, Copy, Debug)]
pub struct Dimensions<'a> {
    text: &'a str,
    ends: &'a [u32],
    /// Where the next name starts in `text`.
    at: usize,
}

impl<'a> Dimensions<'a> {
    /// The dimensions again, from the first.
    pub fn iter(&self) -> Dimensions<'a> {
        *self
    }

    /// Whether there is none left.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Owned copies of the dimensions left.
    pub fn to_vec(&self) -> Vec<Dimension> {
        (*self).map(DimensionRef::to_dimension).collect()
    }
}

impl<'a> Iterator for Dimensions<'a> {
    type Item = DimensionRef<'a>;

    fn next(&mut self) -> Option<DimensionRef<'a>> {
        let [name_end, value_end, rest @ ..] = self.ends else {
            return None;
        };
        let (n, v) = (*name_end as usize, *value_end as usize);
        let d = DimensionRef {
            name: &self.text[self.at..n],
            value: &self.text[n..v],
        };
        self.at = v;
        self.ends = rest;
        Some(d)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.ends.len() / 2;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Dimensions<'_> {}

impl Serialize for Dimensions<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(*self)
    }
}

impl PartialEq for Dimensions<'_> {
    fn eq(&self, other: &Self) -> bool {
        (*self).eq(*other)
    }
}

impl<T: AsRef<[Dimension]>> PartialEq<T> for Dimensions<'_> {
    fn eq(&self, other: &T) -> bool {
        let other = other.as_ref();
        self.len() == other.len()
            && (*self)
                .zip(other)
                .all(|(a, b)| a.name == b.name && a.value == b.value)
    }
}

/// The stable hash of a key's canonical parts: xxh3 over each part, length-prefixed.
fn hash_parts<'a>(
    namespace: &str,
    metric_name: &str,
    dimensions: impl Iterator<Item = (&'a str, &'a str)>,
) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut part = |s: &str| {
        h.update(&(s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    part(namespace);
    part(metric_name);
    for (name, value) in dimensions {
        part(name);
        part(value);
    }
    h.digest()
}

/// Bytes an allocation costs beyond its contents (allocator header and rounding), estimated.
const ALLOCATION_OVERHEAD: usize = 16;

impl SeriesKey {
    /// A key; the dimensions are sorted by name here. Validation (lengths, duplicate
    /// names, characters) is [`crate::validate`]'s job.
    pub fn new(
        namespace: impl Into<Arc<str>>,
        metric_name: impl Into<Arc<str>>,
        mut dimensions: Vec<Dimension>,
    ) -> Self {
        dimensions.sort_unstable();
        let pairs: SmallVec<[(&str, &str); 4]> = dimensions
            .iter()
            .map(|d| (d.name.as_str(), d.value.as_str()))
            .collect();
        Self::sorted(namespace.into(), metric_name.into(), &pairs)
    }

    /// A key of borrowed dimensions (name, value), in any order: sorted here, nothing else
    /// allocated for them but the key's text.
    pub fn from_parts(
        namespace: impl Into<Arc<str>>,
        metric_name: impl Into<Arc<str>>,
        dimensions: &[(&str, &str)],
    ) -> Self {
        let mut pairs: SmallVec<[(&str, &str); 4]> = dimensions.iter().copied().collect();
        pairs.sort_unstable();
        Self::sorted(namespace.into(), metric_name.into(), &pairs)
    }

    fn sorted(namespace: Arc<str>, metric_name: Arc<str>, pairs: &[(&str, &str)]) -> Self {
        let hash = hash_parts(&namespace, &metric_name, pairs.iter().copied());
        let mut text =
            CompactString::with_capacity(pairs.iter().map(|(n, v)| n.len() + v.len()).sum());
        let mut ends = SmallVec::with_capacity(pairs.len() * 2);
        for (n, v) in pairs {
            text.push_str(n);
            ends.push(u32::try_from(text.len()).expect("a key's dimensions are under 4 GiB"));
            text.push_str(v);
            ends.push(u32::try_from(text.len()).expect("a key's dimensions are under 4 GiB"));
        }
        SeriesKey(Arc::new(KeyInner {
            namespace,
            metric_name,
            text,
            ends,
            hash,
            slot: AtomicU32::new(u32::MAX),
        }))
    }

    /// Where a store last found this key's series: a position in its shard's slab, or
    /// `u32::MAX` for none. Only a hint, shared by every clone of the key: the store checks
    /// that the slot holds this very key before it uses it, and corrects it when not.
    pub(crate) fn slot_hint(&self) -> u32 {
        self.0.slot.load(Ordering::Relaxed)
    }

    /// Sets [`SeriesKey::slot_hint`].
    pub(crate) fn set_slot_hint(&self, slot: u32) {
        self.0.slot.store(slot, Ordering::Relaxed);
    }

    /// Heap bytes the key holds, estimated: its shared allocation, the metric name and
    /// namespace (counted whole, although keys made by one request share them), and its
    /// dimensions' text.
    pub fn weight(&self) -> usize {
        let k = &self.0;
        let spilled = if k.ends.spilled() {
            k.ends.capacity() * 4 + ALLOCATION_OVERHEAD
        } else {
            0
        };
        std::mem::size_of::<KeyInner>()
            + 2 * std::mem::size_of::<usize>()
            + ALLOCATION_OVERHEAD
            + k.namespace.len()
            + k.metric_name.len()
            + 2 * (2 * std::mem::size_of::<usize>() + ALLOCATION_OVERHEAD)
            + if k.text.is_heap_allocated() {
                k.text.capacity() + ALLOCATION_OVERHEAD
            } else {
                0
            }
            + spilled
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.0.namespace
    }

    /// The namespace, shared.
    pub fn namespace_arc(&self) -> &Arc<str> {
        &self.0.namespace
    }

    /// The metric name.
    pub fn metric_name(&self) -> &str {
        &self.0.metric_name
    }

    /// The metric name, shared.
    pub fn metric_name_arc(&self) -> &Arc<str> {
        &self.0.metric_name
    }

    /// The dimensions, sorted by name.
    pub fn dimensions(&self) -> Dimensions<'_> {
        Dimensions {
            text: self.0.text.as_str(),
            ends: &self.0.ends,
            at: 0,
        }
    }

    /// The value of the dimension `name`, if the key has it.
    pub fn dimension(&self, name: &str) -> Option<&str> {
        self.dimensions().find(|d| d.name == name).map(|d| d.value)
    }

    /// Whether both are the same shared key (not merely equal keys): a test that reads no
    /// key data.
    pub fn same(this: &SeriesKey, other: &SeriesKey) -> bool {
        Arc::ptr_eq(&this.0, &other.0)
    }

    /// A hash of the key that is the same in every process and version (xxh3 of the
    /// length-prefixed namespace, metric name and sorted dimensions): it picks a series' shard,
    /// which snapshots record.
    pub fn stable_hash(&self) -> u64 {
        self.0.hash
    }
}

impl PartialEq for SeriesKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || (self.0.hash == other.0.hash && self.0 == other.0)
    }
}

impl Eq for SeriesKey {}

impl PartialOrd for SeriesKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SeriesKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.0.namespace, &self.0.metric_name)
            .cmp(&(&other.0.namespace, &other.0.metric_name))
            .then_with(|| self.dimensions().cmp(other.dimensions()))
    }
}

impl std::hash::Hash for SeriesKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

/// The serialized form (field order as in earlier versions, so snapshots stay readable).
#[derive(Serialize)]
struct KeyRef<'a> {
    namespace: &'a str,
    metric_name: &'a str,
    dimensions: Dimensions<'a>,
}

#[derive(Deserialize)]
struct KeyOwned {
    namespace: String,
    metric_name: String,
    dimensions: Vec<Dimension>,
}

impl Serialize for SeriesKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        KeyRef {
            namespace: &self.0.namespace,
            metric_name: &self.0.metric_name,
            dimensions: self.dimensions(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SeriesKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let owned = KeyOwned::deserialize(deserializer)?;
        Ok(SeriesKey::new(
            owned.namespace,
            owned.metric_name,
            owned.dimensions,
        ))
    }
}

impl fmt::Debug for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace(), self.metric_name())?;
        if !self.dimensions().is_empty() {
            f.write_str("{")?;
            for (i, d) in self.dimensions().iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{}={}", d.name, d.value)?;
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimension_order_does_not_matter() {
        let a = SeriesKey::new(
            "App",
            "Latency",
            vec![Dimension::new("Host", "a"), Dimension::new("AZ", "1")],
        );
        let b = SeriesKey::new(
            "App",
            "Latency",
            vec![Dimension::new("AZ", "1"), Dimension::new("Host", "a")],
        );
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "App/Latency{AZ=1,Host=a}");
        assert_eq!(a.dimension("Host"), Some("a"));
        assert_eq!(a.dimension("Nope"), None);
    }

    #[test]
    fn a_key_weighs_its_strings() {
        let small = SeriesKey::new("App", "Latency", vec![Dimension::new("Host", "a")]);
        let large = SeriesKey::new(
            "App",
            "Latency",
            (0..30)
                .map(|i| Dimension::new(format!("d{i:0>253}"), "v".repeat(1024)))
                .collect(),
        );
        assert!(small.weight() < 512, "{}", small.weight());
        let strings = 30 * (255 + 1024);
        assert!(large.weight() > strings, "{}", large.weight());
        assert!(large.weight() < strings + 4096, "{}", large.weight());
    }

    /// The compact dimensions change nothing a user or a snapshot sees: the stable hash is
    /// the documented xxh3 of the length-prefixed parts (snapshots record shards by it), the
    /// serialized form is the one of `Vec<Dimension>`, and the order is that of
    /// `(namespace, metric_name, sorted Vec<Dimension>)`.
    #[test]
    fn compact_dimensions_keep_hash_form_and_order() {
        let dims = vec![Dimension::new("Host", "h-1"), Dimension::new("AZ", "eu-1a")];
        let key = SeriesKey::new("App", "Latency", dims.clone());
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for part in ["App", "Latency", "AZ", "eu-1a", "Host", "h-1"] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        assert_eq!(key.stable_hash(), h.digest());
        let parts = SeriesKey::from_parts("App", "Latency", &[("Host", "h-1"), ("AZ", "eu-1a")]);
        assert_eq!(parts, key);
        assert_eq!(parts.stable_hash(), key.stable_hash());
        let json = serde_json::to_value(&key).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"namespace": "App", "metric_name": "Latency", "dimensions": [
                {"name": "AZ", "value": "eu-1a"}, {"name": "Host", "value": "h-1"}]})
        );
        let back: SeriesKey = serde_json::from_value(json).unwrap();
        assert_eq!(back, key);
        assert_eq!(key.dimensions().len(), 2);
        assert_eq!(key.dimensions().to_vec(), {
            let mut d = dims;
            d.sort();
            d
        });
        let none = SeriesKey::new("App", "Latency", vec![]);
        assert!(none.dimensions().is_empty());
        assert_eq!(none.to_string(), "App/Latency");
    }

    proptest::proptest! {
        #[test]
        fn keys_order_as_their_parts(
            a in proptest::collection::vec(("[ab]{0,2}", "[ab]{0,2}"), 0..3),
            b in proptest::collection::vec(("[ab]{0,2}", "[ab]{0,2}"), 0..3),
            metric in proptest::bool::ANY,
        ) {
            let dims = |v: &[(String, String)]| {
                let mut d: Vec<Dimension> = v.iter().map(|(n, x)| Dimension::new(n, x)).collect();
                d.sort();
                d
            };
            let (da, db) = (dims(&a), dims(&b));
            let ka = SeriesKey::new("N", if metric { "m" } else { "n" }, da.clone());
            let kb = SeriesKey::new("N", "n", db.clone());
            let want = ("N", if metric { "m" } else { "n" }, &da).cmp(&("N", "n", &db));
            proptest::prop_assert_eq!(ka.cmp(&kb), want);
            proptest::prop_assert_eq!(ka == kb, want.is_eq());
            proptest::prop_assert_eq!(ka.dimensions().to_vec(), da);
        }
    }
}
