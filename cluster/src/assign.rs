//! Which node should own which partition: a pure function of the partition count and the live
//! nodes, so that every node computes the same answer from the same membership.
//!
//! Balanced rendezvous hashing: each partition ranks the nodes by a hash of (partition, node)
//! and goes to the first node in its ranking that still has room under its quota (`ceil(P / N)`
//! for the first `P mod N` nodes in id order, `floor(P / N)` for the others). Every node gets
//! `floor(P / N)` or `ceil(P / N)` partitions, and a node
//! joining or leaving moves few partitions besides its own share (a partition's favourite node
//! stays its favourite whoever else comes and goes).

use std::collections::BTreeMap;

/// The partition a series belongs to, from its stable hash (the one the store shards by, so
/// that in cluster mode a store shard is a partition).
pub fn partition_of(series_hash: u64, partitions: u32) -> u32 {
    (series_hash % u64::from(partitions.max(1))) as u32
}

/// FNV-1a over the partition number and the node id: stable across builds and machines.
fn score(partition: u32, node: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in partition.to_le_bytes().iter().chain(node.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // A final mix, so that node ids differing in their last byte spread well.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// The owner each partition should have, indexed by partition: `None` only when there is no
/// live node. `nodes` may be in any order and hold duplicates.
pub fn assign(partitions: u32, nodes: &[String]) -> Vec<Option<String>> {
    let mut nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
    nodes.sort_unstable();
    nodes.dedup();
    if nodes.is_empty() {
        return vec![None; partitions as usize];
    }
    // Quotas that add up to exactly P: ⌈P/N⌉ for the first P mod N nodes in id order, ⌊P/N⌋
    // for the others.
    let (floor, extra) = (
        partitions as usize / nodes.len(),
        partitions as usize % nodes.len(),
    );
    let mut room: BTreeMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, floor + usize::from(i < extra)))
        .collect();
    (0..partitions)
        .map(|p| {
            let mut ranked = nodes.clone();
            ranked.sort_by_key(|n| std::cmp::Reverse((score(p, n), *n)));
            let chosen = ranked
                .into_iter()
                .find(|n| room[n] > 0)
                .expect("the quotas add up to the partitions");
            *room.get_mut(chosen).expect("a live node") -= 1;
            Some(chosen.to_owned())
        })
        .collect()
}

/// The partitions `node` should own.
pub fn owned_by(assignment: &[Option<String>], node: &str) -> Vec<u32> {
    assignment
        .iter()
        .enumerate()
        .filter(|(_, owner)| owner.as_deref() == Some(node))
        .map(|(p, _)| p as u32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("node-{i}")).collect()
    }

    #[test]
    fn no_live_node_owns_nothing() {
        assert_eq!(assign(4, &[]), vec![None; 4]);
    }

    #[test]
    fn the_order_of_the_membership_list_does_not_matter() {
        let a = assign(64, &names(3));
        let mut reversed = names(3);
        reversed.reverse();
        reversed.push("node-1".into());
        assert_eq!(a, assign(64, &reversed));
    }

    proptest! {
        #[test]
        fn every_partition_has_one_owner_and_loads_are_even(partitions in 1u32..300, n in 1usize..12) {
            let nodes = names(n);
            let a = assign(partitions, &nodes);
            prop_assert_eq!(a.len(), partitions as usize);
            let counts: Vec<usize> = nodes.iter().map(|node| owned_by(&a, node).len()).collect();
            prop_assert_eq!(counts.iter().sum::<usize>(), partitions as usize);
            let (floor, ceil) = (partitions as usize / n, (partitions as usize).div_ceil(n));
            prop_assert!(counts.iter().all(|&c| c == floor || c == ceil), "{counts:?}: not {floor} or {ceil}");
        }

        #[test]
        fn a_node_leaving_moves_little_besides_its_own(partitions in 16u32..256, n in 2usize..10, gone in 0usize..10) {
            let nodes = names(n);
            let gone = &nodes[gone % n];
            let before = assign(partitions, &nodes);
            let rest: Vec<String> = nodes.iter().filter(|x| *x != gone).cloned().collect();
            let after = assign(partitions, &rest);
            let moved_others = before
                .iter()
                .zip(&after)
                .filter(|(b, a)| b.as_deref() != Some(gone.as_str()) && b != a)
                .count();
            // The leaving node's share moves; of the others' partitions at most about as
            // many again move to keep the loads even.
            let own = owned_by(&before, gone).len();
            prop_assert!(moved_others <= own + n, "moved {moved_others} of others, own {own}");
        }
    }
}
