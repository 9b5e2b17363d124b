//! One tier's windows of a stream, by start: a sorted vector while there are few, a B-tree
//! beyond.
//!
//! Most streams hold a handful of windows per tier (a fresh series one or two, an hour of
//! standard-resolution data sixty), and a B-tree leaf has room for eleven windows whatever it
//! holds: about 800 bytes for a series' second window, which at a million series was most of
//! the server's memory (issue 23). A sorted vector grown a little at a time costs a window's
//! own 72 bytes. Past [`FEW_MAX`] windows the tier becomes a B-tree, so that a window created
//! out of order in a long history (late data) costs a tree insert, not a shift of the whole
//! history; compaction turns a tree that has shrunk back to [`FEW_MAX`] / 2 windows into a
//! vector again.

use std::collections::BTreeMap;
use std::collections::btree_map;

use crate::window::Window;

/// Most windows a tier keeps in a vector.
pub(super) const FEW_MAX: usize = 32;

/// A tier's windows by start (see the module documentation).
#[derive(Debug)]
pub(super) enum TierWindows {
    /// Sorted by start, at most [`FEW_MAX`].
    Few(Vec<(i64, Window)>),
    Many(BTreeMap<i64, Window>),
}

impl Default for TierWindows {
    fn default() -> Self {
        TierWindows::Few(Vec::new())
    }
}

/// The windows of a tier in a range of starts, in start order.
pub(super) enum Range<'a> {
    Few(std::slice::Iter<'a, (i64, Window)>),
    Many(btree_map::Range<'a, i64, Window>),
}

impl<'a> Iterator for Range<'a> {
    type Item = (i64, &'a Window);

    fn next(&mut self) -> Option<(i64, &'a Window)> {
        match self {
            Range::Few(it) => it.next().map(|(s, w)| (*s, w)),
            Range::Many(it) => it.next().map(|(s, w)| (*s, w)),
        }
    }
}

impl TierWindows {
    pub(super) fn is_empty(&self) -> bool {
        match self {
            TierWindows::Few(v) => v.is_empty(),
            TierWindows::Many(m) => m.is_empty(),
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        match self {
            TierWindows::Few(v) => v.len(),
            TierWindows::Many(m) => m.len(),
        }
    }

    /// The newest window's start.
    pub(super) fn last_start(&self) -> Option<i64> {
        match self {
            TierWindows::Few(v) => v.last().map(|(s, _)| *s),
            TierWindows::Many(m) => m.last_key_value().map(|(s, _)| *s),
        }
    }

    /// The window starting at `start`, created empty if missing (then `true`).
    pub(super) fn get_or_insert(&mut self, start: i64) -> (&mut Window, bool) {
        if let TierWindows::Few(v) = self
            && v.len() >= FEW_MAX
            && v.binary_search_by_key(&start, |(s, _)| *s).is_err()
        {
            *self = TierWindows::Many(std::mem::take(v).into_iter().collect());
        }
        match self {
            TierWindows::Few(v) => match v.binary_search_by_key(&start, |(s, _)| *s) {
                Ok(i) => (&mut v[i].1, false),
                Err(i) => {
                    grow(v);
                    v.insert(i, (start, Window::default()));
                    (&mut v[i].1, true)
                }
            },
            TierWindows::Many(m) => match m.entry(start) {
                btree_map::Entry::Occupied(e) => (e.into_mut(), false),
                btree_map::Entry::Vacant(e) => (e.insert(Window::default()), true),
            },
        }
    }

    /// Puts `window` at `start`, replacing any window there.
    pub(super) fn insert(&mut self, start: i64, window: Window) {
        *self.get_or_insert(start).0 = window;
    }

    /// Removes and returns the newest window if it starts at `start`.
    pub(super) fn take_last_at(&mut self, start: i64) -> Option<Window> {
        match self {
            TierWindows::Few(v) => match v.last() {
                Some((s, _)) if *s == start => v.pop().map(|(_, w)| w),
                _ => None,
            },
            TierWindows::Many(m) => match m.last_entry() {
                Some(e) if *e.key() == start => Some(e.remove()),
                _ => None,
            },
        }
    }

    /// The windows starting in `range`, in start order.
    pub(super) fn range(&self, range: std::ops::Range<i64>) -> Range<'_> {
        match self {
            TierWindows::Few(v) => {
                let lo = v.partition_point(|(s, _)| *s < range.start);
                let hi = v.partition_point(|(s, _)| *s < range.end).max(lo);
                Range::Few(v[lo..hi].iter())
            }
            // `BTreeMap::range` panics on a reversed range; it holds nothing.
            TierWindows::Many(_) if range.start > range.end => Range::Few([].iter()),
            TierWindows::Many(m) => Range::Many(m.range(range)),
        }
    }

    /// Removes the windows that start before `cutoff` and returns them in start order; a tree
    /// left with at most [`FEW_MAX`] / 2 windows becomes a vector.
    pub(super) fn split_before(&mut self, cutoff: i64) -> Vec<(i64, Window)> {
        let leaving = match self {
            TierWindows::Few(v) => {
                let n = v.partition_point(|(s, _)| *s < cutoff);
                if n == 0 {
                    return Vec::new();
                }
                let leaving = v.drain(..n).collect();
                v.shrink_to_fit();
                leaving
            }
            TierWindows::Many(m) => {
                let keep = m.split_off(&cutoff);
                std::mem::replace(m, keep).into_iter().collect()
            }
        };
        if let TierWindows::Many(m) = self
            && m.len() <= FEW_MAX / 2
        {
            *self = TierWindows::Few(std::mem::take(m).into_iter().collect());
        }
        leaving
    }

    /// Calls `f` on each window that starts before `before`, in start order.
    pub(super) fn for_each_before(&mut self, before: i64, mut f: impl FnMut(&mut Window)) {
        match self {
            TierWindows::Few(v) => {
                let n = v.partition_point(|(s, _)| *s < before);
                v[..n].iter_mut().for_each(|(_, w)| f(w));
            }
            TierWindows::Many(m) => m.range_mut(..before).for_each(|(_, w)| f(w)),
        }
    }
}

/// Room for one more window, grown by half (at least one) rather than doubled: a tier of a
/// few windows holds little spare room.
fn grow(v: &mut Vec<(i64, Window)>) {
    if v.len() == v.capacity() {
        v.reserve_exact((v.len() / 2).max(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(t: &TierWindows, range: std::ops::Range<i64>) -> Vec<(i64, f64)> {
        t.range(range).map(|(s, w)| (s, w.sum())).collect()
    }

    proptest::proptest! {
        /// Whatever the order of writes, splits and seals, a tier holds what a B-tree would,
        /// as a vector while it holds at most `FEW_MAX` windows.
        #[test]
        fn a_tier_is_a_map_by_start(
            ops in proptest::collection::vec((0u8..4, 0i64..100), 1..300)
        ) {
            let mut tier = TierWindows::default();
            let mut model: BTreeMap<i64, f64> = BTreeMap::new();
            for (op, start) in ops {
                match op {
                    0 | 1 => {
                        let (w, created) = tier.get_or_insert(start);
                        proptest::prop_assert_eq!(created, !model.contains_key(&start));
                        w.record(1.0 + start as f64);
                        *model.entry(start).or_default() += 1.0 + start as f64;
                    }
                    2 => {
                        let leaving = tier.split_before(start);
                        let keep = model.split_off(&start);
                        let gone: Vec<(i64, f64)> = std::mem::replace(&mut model, keep).into_iter().collect();
                        let got: Vec<(i64, f64)> = leaving.iter().map(|(s, w)| (*s, w.sum())).collect();
                        proptest::prop_assert_eq!(got, gone);
                    }
                    _ => {
                        let last = model.last_key_value().map(|(s, _)| *s);
                        let taken = tier.take_last_at(start);
                        if last == Some(start) {
                            proptest::prop_assert!(taken.is_some());
                            model.remove(&start);
                        } else {
                            proptest::prop_assert!(taken.is_none());
                        }
                    }
                }
                proptest::prop_assert_eq!(tier.len(), model.len());
                proptest::prop_assert_eq!(tier.last_start(), model.last_key_value().map(|(s, _)| *s));
                if tier.len() > FEW_MAX {
                    proptest::prop_assert!(matches!(tier, TierWindows::Many(_)));
                }
                for (lo, hi) in [(i64::MIN, i64::MAX), (10, 40), (50, 51), (70, 20)] {
                    let want: Vec<(i64, f64)> = if lo <= hi {
                        model.range(lo..hi).map(|(s, v)| (*s, *v)).collect()
                    } else {
                        Vec::new()
                    };
                    proptest::prop_assert_eq!(sums(&tier, lo..hi), want);
                }
            }
        }
    }

    #[test]
    fn a_tree_that_shrinks_becomes_a_vector_again() {
        let mut tier = TierWindows::default();
        for s in 0..(FEW_MAX as i64 + 10) {
            tier.get_or_insert(s).0.record(1.0);
        }
        assert!(matches!(tier, TierWindows::Many(_)));
        let mut sealed = 0;
        tier.for_each_before(5, |w| {
            w.seal();
            sealed += 1;
        });
        assert_eq!(sealed, 5);
        let leaving = tier.split_before(FEW_MAX as i64 + 10 - (FEW_MAX / 2) as i64);
        assert_eq!(leaving.len(), FEW_MAX + 10 - FEW_MAX / 2);
        assert!(leaving[..5].iter().all(|(_, w)| w.is_sealed()));
        assert!(matches!(tier, TierWindows::Few(_)));
        assert_eq!(tier.len(), FEW_MAX / 2);
    }
}
