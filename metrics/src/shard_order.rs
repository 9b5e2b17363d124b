//! Items grouped by shard, for taking each shard's lock once per batch.

/// The indices of a batch's items grouped by shard, in batch order within each shard: a
/// counting sort, linear in the items and the shards (a time-ordered request's thousand
/// items, one series each, made a comparison sort a visible share of ingest's CPU).
#[derive(Clone, Debug)]
pub struct ShardOrder {
    /// `order[starts[s]..starts[s + 1]]` are shard `s`'s items.
    starts: Vec<usize>,
    order: Vec<usize>,
}

impl ShardOrder {
    /// Groups items whose shards (each below `shards`) are `shard_of`, in item order.
    ///
    /// # Panics
    /// If a shard is not below `shards`.
    pub fn new(shards: usize, shard_of: &[usize]) -> Self {
        let mut starts = vec![0usize; shards + 1];
        for &s in shard_of {
            starts[s + 1] += 1;
        }
        for s in 0..shards {
            starts[s + 1] += starts[s];
        }
        let mut next = starts.clone();
        let mut order = vec![0usize; shard_of.len()];
        for (i, &s) in shard_of.iter().enumerate() {
            order[next[s]] = i;
            next[s] += 1;
        }
        ShardOrder { starts, order }
    }

    /// Each shard that has items, with its items' indices in item order, by shard.
    pub fn groups(&self) -> impl Iterator<Item = (usize, &[usize])> {
        self.starts
            .windows(2)
            .enumerate()
            .filter(|(_, b)| b[0] < b[1])
            .map(|(s, b)| (s, &self.order[b[0]..b[1]]))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The groups are what sorting (shard, index) pairs and cutting them by shard gives.
        #[test]
        fn groups_as_a_sort_by_shard_then_index(
            shards in 1usize..70,
            picks in proptest::collection::vec(any::<usize>(), 0..300),
        ) {
            let shard_of: Vec<usize> = picks.iter().map(|p| p % shards).collect();
            let mut sorted: Vec<(usize, usize)> =
                shard_of.iter().copied().zip(0..).collect();
            sorted.sort_unstable();
            let want: Vec<(usize, Vec<usize>)> = sorted
                .chunk_by(|a, b| a.0 == b.0)
                .map(|c| (c[0].0, c.iter().map(|p| p.1).collect()))
                .collect();
            let got: Vec<(usize, Vec<usize>)> = ShardOrder::new(shards, &shard_of)
                .groups()
                .map(|(s, g)| (s, g.to_vec()))
                .collect();
            prop_assert_eq!(got, want);
        }
    }
}
