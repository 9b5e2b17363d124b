//! Leases: who owns a partition (or leadership) until when. Pure: what a node should do with
//! a lease key is a function of the entry it read, its own id and `now`.
//!
//! A lease is a KV entry `{owner, expires_ms}`. It changes only by compare-and-swap on the
//! entry's revision, so two nodes that race for one lease cannot both win; the winner's new
//! revision is its *fencing token*. An owner renews well before expiry
//! ([`Lease::renew_due`]) and stops acting for the partition as soon as it is past
//! [`Lease::act_until`] without a renewal, which is before any other node may take the lease
//! over at `expires_ms` (a margin for clock differences between nodes).

use serde::{Deserialize, Serialize};

/// A lease as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The node holding it.
    pub owner: String,
    /// Wall-clock milliseconds since the epoch after which another node may take it.
    pub expires_ms: i64,
}

/// How long a lease lasts and how much of it an owner uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTimes {
    /// A lease's length.
    pub ttl_ms: i64,
    /// Before expiry, the time an owner stops acting if it could not renew (clock margin).
    pub margin_ms: i64,
}

impl LeaseTimes {
    /// From a lease length: the margin is a third of it.
    pub fn new(ttl_ms: i64) -> Self {
        LeaseTimes {
            ttl_ms,
            margin_ms: ttl_ms / 3,
        }
    }
}

impl Lease {
    /// A lease for `owner` from `now_ms`.
    pub fn new(owner: &str, now_ms: i64, times: LeaseTimes) -> Self {
        Lease {
            owner: owner.to_owned(),
            expires_ms: now_ms + times.ttl_ms,
        }
    }

    /// Until when the owner may act on it without renewing.
    pub fn act_until(&self, times: LeaseTimes) -> i64 {
        self.expires_ms - times.margin_ms
    }

    /// Whether the owner should renew now: a third of the lease is gone, which leaves another
    /// third (several rounds) to renew before it must stop acting at [`Lease::act_until`].
    pub fn renew_due(&self, now_ms: i64, times: LeaseTimes) -> bool {
        now_ms >= self.expires_ms - times.ttl_ms * 2 / 3
    }

    /// Whether it has expired: anyone may take it.
    pub fn expired(&self, now_ms: i64) -> bool {
        now_ms >= self.expires_ms
    }
}

/// What a node should do with a lease key it read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing: it holds the lease and renewal is not due, or another node holds it.
    Keep,
    /// Write a fresh lease for itself, expecting this revision (`None`: the key is absent).
    Take {
        /// The revision the write must find.
        expect: Option<u64>,
    },
    /// Give the lease up (delete, expecting this revision).
    Release {
        /// The revision the delete must find.
        expect: u64,
    },
}

/// The current entry of a lease key: `None` when absent or deleted, else the lease (or an
/// undecodable value, which counts as absent-but-present: it may be overwritten) and its
/// revision.
pub type Current = Option<(Option<Lease>, u64)>;

/// What `me` should do with a lease key holding `current`, wanting it (`want`) or not.
pub fn step(current: &Current, me: &str, want: bool, now_ms: i64, times: LeaseTimes) -> Step {
    match current {
        None if want => Step::Take { expect: None },
        None => Step::Keep,
        Some((Some(lease), rev)) if lease.owner == me => {
            if !want {
                Step::Release { expect: *rev }
            } else if lease.renew_due(now_ms, times) {
                Step::Take { expect: Some(*rev) }
            } else {
                Step::Keep
            }
        }
        Some((Some(lease), rev)) => {
            if want && lease.expired(now_ms) {
                Step::Take { expect: Some(*rev) }
            } else {
                Step::Keep
            }
        }
        Some((None, rev)) if want => Step::Take { expect: Some(*rev) },
        Some((None, _)) => Step::Keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: LeaseTimes = LeaseTimes {
        ttl_ms: 9_000,
        margin_ms: 3_000,
    };

    fn held(owner: &str, expires_ms: i64, rev: u64) -> Current {
        Some((
            Some(Lease {
                owner: owner.into(),
                expires_ms,
            }),
            rev,
        ))
    }

    #[test]
    fn a_free_key_is_taken_only_when_wanted() {
        assert_eq!(step(&None, "a", true, 0, T), Step::Take { expect: None });
        assert_eq!(step(&None, "a", false, 0, T), Step::Keep);
    }

    #[test]
    fn another_nodes_lease_is_taken_only_after_it_expired() {
        let c = held("b", 10_000, 7);
        assert_eq!(step(&c, "a", true, 9_999, T), Step::Keep);
        assert_eq!(
            step(&c, "a", true, 10_000, T),
            Step::Take { expect: Some(7) }
        );
        assert_eq!(step(&c, "a", false, 20_000, T), Step::Keep);
    }

    #[test]
    fn an_owner_renews_after_a_third_and_releases_what_it_no_longer_wants() {
        let c = held("a", 10_000, 3);
        assert_eq!(step(&c, "a", true, 3_999, T), Step::Keep);
        assert_eq!(
            step(&c, "a", true, 4_000, T),
            Step::Take { expect: Some(3) }
        );
        // Renewal comes a third of the lease before the owner would have to stop acting.
        let lease = Lease::new("a", 0, T);
        assert!(lease.act_until(T) - T.ttl_ms / 3 >= T.ttl_ms / 3);
        assert_eq!(step(&c, "a", false, 1_000, T), Step::Release { expect: 3 });
    }

    #[test]
    fn an_owner_stops_acting_before_anyone_else_may_take_over() {
        let lease = Lease::new("a", 1_000, T);
        assert!(lease.act_until(T) < lease.expires_ms);
        assert!(!lease.expired(lease.act_until(T)));
    }

    #[test]
    fn an_undecodable_value_is_overwritten_when_wanted() {
        assert_eq!(
            step(&Some((None, 4)), "a", true, 0, T),
            Step::Take { expect: Some(4) }
        );
    }
}
