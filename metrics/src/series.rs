//! Series identity: namespace + metric name + the set of dimensions.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

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
/// A key is one shared allocation: cloning it is one reference-count increment, and its
/// [`stable_hash`](SeriesKey::stable_hash) is computed once, when it is made, so that hashing
/// it (to pick a shard, or in a map) never reads its strings again.
#[derive(Clone)]
pub struct SeriesKey(Arc<KeyInner>);

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct KeyInner {
    namespace: Arc<str>,
    metric_name: Arc<str>,
    dimensions: Box<[Dimension]>,
    /// Not part of the identity; derived from the fields above.
    hash: u64,
    /// Not part of the identity; derived from the fields above (see [`SeriesKey::weight`]).
    weight: usize,
}

/// The stable hash of a key's canonical parts: xxh3 over each part, length-prefixed.
fn hash_parts(namespace: &str, metric_name: &str, dimensions: &[Dimension]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut part = |s: &str| {
        h.update(&(s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    part(namespace);
    part(metric_name);
    for d in dimensions {
        part(&d.name);
        part(&d.value);
    }
    h.digest()
}

/// Bytes an allocation costs beyond its contents (allocator header and rounding), estimated.
const ALLOCATION_OVERHEAD: usize = 16;

/// See [`SeriesKey::weight`].
fn weigh(namespace: &str, metric_name: &str, dimensions: &[Dimension]) -> usize {
    let strings: usize = dimensions
        .iter()
        .map(|d| d.name.len() + d.value.len() + 2 * ALLOCATION_OVERHEAD)
        .sum();
    // Arc<KeyInner> with its two counts, the two Arc<str>s with theirs, the dimension slice.
    std::mem::size_of::<KeyInner>()
        + 2 * std::mem::size_of::<usize>()
        + ALLOCATION_OVERHEAD
        + namespace.len()
        + metric_name.len()
        + 2 * (2 * std::mem::size_of::<usize>() + ALLOCATION_OVERHEAD)
        + std::mem::size_of_val(dimensions)
        + ALLOCATION_OVERHEAD
        + strings
}

impl SeriesKey {
    /// A key; the dimensions are sorted by name here. Validation (lengths, duplicate
    /// names, characters) is [`crate::validate`]'s job.
    pub fn new(
        namespace: impl Into<Arc<str>>,
        metric_name: impl Into<Arc<str>>,
        mut dimensions: Vec<Dimension>,
    ) -> Self {
        dimensions.sort_unstable();
        let (namespace, metric_name) = (namespace.into(), metric_name.into());
        let hash = hash_parts(&namespace, &metric_name, &dimensions);
        let weight = weigh(&namespace, &metric_name, &dimensions);
        SeriesKey(Arc::new(KeyInner {
            namespace,
            metric_name,
            dimensions: dimensions.into_boxed_slice(),
            hash,
            weight,
        }))
    }

    /// Heap bytes the key holds, estimated: its shared allocation, the metric name and
    /// namespace (counted whole, although keys made by one request share the namespace), and
    /// each dimension's strings. Computed once, when the key is made.
    pub fn weight(&self) -> usize {
        self.0.weight
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

    /// The dimensions, sorted by name.
    pub fn dimensions(&self) -> &[Dimension] {
        &self.0.dimensions
    }

    /// The value of the dimension `name`, if the key has it.
    pub fn dimension(&self, name: &str) -> Option<&str> {
        self.0
            .dimensions
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.value.as_str())
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
        (&self.0.namespace, &self.0.metric_name, &self.0.dimensions).cmp(&(
            &other.0.namespace,
            &other.0.metric_name,
            &other.0.dimensions,
        ))
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
    dimensions: &'a [Dimension],
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
            dimensions: &self.0.dimensions,
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

/// A hasher for maps keyed by [`SeriesKey`], whose `Hash` writes its precomputed stable hash:
/// it passes that hash on instead of hashing it again. The halves are swapped so that the
/// bits that pick a shard (the low ones) do not also pick the bucket inside the shard.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0.rotate_right(32)
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached by keys other than SeriesKey; fold the bytes in so it stays a hash.
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0 ^ u64::from_le_bytes(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

/// A `BuildHasher` of [`KeyHasher`]s.
pub type KeyHasherBuilder = std::hash::BuildHasherDefault<KeyHasher>;

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
}
