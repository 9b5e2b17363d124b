//! Cumulative points to increases: a point minus the previous point of its stream, or the
//! point itself where the data model says to count from zero (a stream's first point, a new
//! start time, a total that went down).
//!
//! A caller first places a point against its stream's previous state with [`order`], then
//! asks the function of its kind ([`sum`], [`summary`], [`histogram`], [`exponential`]) for
//! the [`Outcome`], and records the point's totals as the stream's new state.

use super::streams::{BucketRange, ExponentialTotals, HistogramTotals, StreamState};

/// Where a point stands against its stream's previous point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// The stream's first point: count from zero.
    First,
    /// The start time moved forward (the sender restarted): count from zero.
    Restarted,
    /// Same start, later time: subtract the previous point.
    Next,
    /// Not newer than the previous point (a retry, a duplicate, out of order, or from before
    /// a restart): nothing to record.
    Stale,
}

/// Compares a point's start and time (ns) with the stream's previous point: no previous point
/// is [`Order::First`]; a different start is [`Order::Restarted`], unless both starts are set
/// and the new one is earlier ([`Order::Stale`]); the same start is [`Order::Next`] when the
/// time is later, else [`Order::Stale`].
pub fn order(previous: Option<&StreamState>, start: u64, time: u64) -> Order {
    let Some(p) = previous else {
        return Order::First;
    };
    if start != p.start_time_unix_nano {
        if start != 0 && p.start_time_unix_nano != 0 && start < p.start_time_unix_nano {
            return Order::Stale;
        }
        return Order::Restarted;
    }
    if time <= p.time_unix_nano {
        return Order::Stale;
    }
    Order::Next
}

/// The increase a point stands for.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome<T> {
    /// Nothing to record; the state stays.
    Stale,
    /// The increase; `reset` when the stream counted from zero again (a new start time, or a
    /// total that went down without one).
    Increase {
        /// What to record.
        delta: T,
        /// Whether this was a reset.
        reset: bool,
    },
}

impl<T> Outcome<T> {
    fn from_zero(current: T, order: Order) -> Self {
        Outcome::Increase {
            delta: current,
            reset: order == Order::Restarted,
        }
    }
}

/// A monotonic Sum (a counter): the difference, or the value itself when it went down
/// (a reset) or the order says to count from zero.
pub fn sum(previous: Option<f64>, order: Order, current: f64) -> Outcome<f64> {
    match (order, previous) {
        (Order::Stale, _) => Outcome::Stale,
        (Order::Next, Some(p)) if current >= p => Outcome::Increase {
            delta: current - p,
            reset: false,
        },
        // A decrease without a new start time: the sender reset without saying so.
        (Order::Next, _) => Outcome::Increase {
            delta: current,
            reset: true,
        },
        (order, _) => Outcome::from_zero(current, order),
    }
}

/// A Summary's count and sum (a reset when the count goes down).
pub fn summary(
    previous: Option<(u64, f64)>,
    order: Order,
    current: (u64, f64),
) -> Outcome<(u64, f64)> {
    match (order, previous) {
        (Order::Stale, _) => Outcome::Stale,
        (Order::Next, Some((count, sum))) if current.0 >= count => Outcome::Increase {
            delta: (current.0 - count, current.1 - sum),
            reset: false,
        },
        (Order::Next, _) => Outcome::Increase {
            delta: current,
            reset: true,
        },
        (order, _) => Outcome::from_zero(current, order),
    }
}

/// The min (max) of the interval between two cumulative points: known only when the running
/// min went down (the max went up) in it.
fn interval_extreme(previous: Option<f64>, current: Option<f64>, lower: bool) -> Option<f64> {
    match (previous, current) {
        (Some(p), Some(c)) if (lower && c < p) || (!lower && c > p) => Some(c),
        _ => None,
    }
}

fn sum_delta(previous: Option<f64>, current: Option<f64>) -> Option<f64> {
    Some(current? - previous?)
}

/// An explicit-bucket histogram: per bucket, a reset when the layout changed or any count
/// went down.
pub fn histogram(
    previous: Option<&HistogramTotals>,
    order: Order,
    current: &HistogramTotals,
) -> Outcome<HistogramTotals> {
    let p = match (order, previous) {
        (Order::Stale, _) => return Outcome::Stale,
        (Order::Next, Some(p)) => p,
        (order, _) => return Outcome::from_zero(current.clone(), order),
    };
    let same_layout = p.bounds.len() == current.bounds.len()
        && p.bounds
            .iter()
            .zip(&current.bounds)
            .all(|(a, b)| a.to_bits() == b.to_bits())
        && p.counts.len() == current.counts.len();
    let went_down =
        current.count < p.count || p.counts.iter().zip(&current.counts).any(|(a, b)| b < a);
    if !same_layout || went_down {
        return Outcome::Increase {
            delta: current.clone(),
            reset: true,
        };
    }
    Outcome::Increase {
        delta: HistogramTotals {
            count: current.count - p.count,
            sum: sum_delta(p.sum, current.sum),
            min: interval_extreme(p.min, current.min, true),
            max: interval_extreme(p.max, current.max, false),
            bounds: current.bounds.clone(),
            counts: p
                .counts
                .iter()
                .zip(&current.counts)
                .map(|(a, b)| b - a)
                .collect(),
        },
        reset: false,
    }
}

/// `range` at a scale `shift` lower: bucket `i` becomes bucket `i >> shift` (floor), as the
/// OpenTelemetry SDKs merge buckets when they lower a histogram's scale.
fn downscale(range: &BucketRange, shift: u32) -> BucketRange {
    if shift == 0 || range.counts.is_empty() {
        return range.clone();
    }
    let offset = i64::from(range.offset);
    let first = offset >> shift;
    let mut counts: Vec<u64> = Vec::new();
    for (i, &c) in range.counts.iter().enumerate() {
        let index = ((offset + i as i64) >> shift) - first;
        let index = usize::try_from(index).unwrap_or(0);
        if counts.len() <= index {
            counts.resize(index + 1, 0);
        }
        counts[index] = counts[index].saturating_add(c);
    }
    BucketRange {
        offset: i32::try_from(first).unwrap_or(range.offset),
        counts,
    }
}

/// `current - previous` over `current`'s range, or `None` when some bucket went down
/// (including a bucket of `previous` that `current` no longer has).
fn subtract(previous: &BucketRange, current: &BucketRange) -> Option<BucketRange> {
    let start = i64::from(current.offset);
    let mut counts = current.counts.clone();
    for (i, &c) in previous.counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let at = i64::from(previous.offset) + i as i64 - start;
        let slot = usize::try_from(at).ok().and_then(|at| counts.get_mut(at))?;
        *slot = slot.checked_sub(c)?;
    }
    Some(BucketRange {
        offset: current.offset,
        counts,
    })
}

/// An exponential histogram. The SDKs lower the scale of a cumulative histogram as its range
/// grows, so the previous point is first brought to the current scale (a scale that went up,
/// or a changed zero threshold, is a reset); a count that went down is a reset.
pub fn exponential(
    previous: Option<&ExponentialTotals>,
    order: Order,
    current: &ExponentialTotals,
) -> Outcome<ExponentialTotals> {
    let p = match (order, previous) {
        (Order::Stale, _) => return Outcome::Stale,
        (Order::Next, Some(p)) => p,
        (order, _) => return Outcome::from_zero(current.clone(), order),
    };
    let reset = Outcome::Increase {
        delta: current.clone(),
        reset: true,
    };
    if current.scale > p.scale
        || p.zero_threshold.to_bits() != current.zero_threshold.to_bits()
        || current.count < p.count
        || current.zero_count < p.zero_count
    {
        return reset;
    }
    // Scales lie in -10..=20 (OTLP) or -4..=8 (Prometheus) as mapped; a point that says
    // otherwise (a forged record in cluster mode) counts from zero rather than shift by more
    // than an index has bits.
    let shift = (i64::from(p.scale) - i64::from(current.scale)).unsigned_abs();
    let Ok(shift) = u32::try_from(shift) else {
        return reset;
    };
    if shift >= 32 {
        return reset;
    }
    let positive = subtract(&downscale(&p.positive, shift), &current.positive);
    let negative = subtract(&downscale(&p.negative, shift), &current.negative);
    let (Some(positive), Some(negative)) = (positive, negative) else {
        return reset;
    };
    Outcome::Increase {
        delta: ExponentialTotals {
            count: current.count - p.count,
            sum: sum_delta(p.sum, current.sum),
            min: interval_extreme(p.min, current.min, true),
            max: interval_extreme(p.max, current.max, false),
            scale: current.scale,
            zero_count: current.zero_count - p.zero_count,
            zero_threshold: current.zero_threshold,
            positive,
            negative,
        },
        reset: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downscaling_merges_pairs_of_buckets() {
        let range = BucketRange {
            offset: -3,
            counts: vec![1, 2, 3, 4, 5],
        };
        // Indices -3..=1 at one scale lower: -3→-2, -2→-1, -1→-1, 0→0, 1→0.
        assert_eq!(
            downscale(&range, 1),
            BucketRange {
                offset: -2,
                counts: vec![1, 5, 9]
            }
        );
        assert_eq!(
            downscale(&range, 2),
            BucketRange {
                offset: -1,
                counts: vec![6, 9]
            }
        );
    }

    #[test]
    fn subtracting_needs_every_previous_bucket() {
        let current = BucketRange {
            offset: 2,
            counts: vec![5, 5],
        };
        let previous = BucketRange {
            offset: 3,
            counts: vec![4],
        };
        assert_eq!(
            subtract(&previous, &current),
            Some(BucketRange {
                offset: 2,
                counts: vec![5, 1]
            })
        );
        let gone = BucketRange {
            offset: 1,
            counts: vec![1],
        };
        assert_eq!(subtract(&gone, &current), None);
        let bigger = BucketRange {
            offset: 2,
            counts: vec![6],
        };
        assert_eq!(subtract(&bigger, &current), None);
    }

    /// Scales far outside any mapping's range (a forged record) count from zero, without
    /// overflowing or shifting past an index's bits.
    #[test]
    fn extreme_scales_count_from_zero() {
        let totals = |scale| ExponentialTotals {
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
        };
        for (before, now) in [(i32::MAX, i32::MIN), (40, 0), (20, -10)] {
            let outcome = exponential(Some(&totals(before)), Order::Next, &totals(now));
            let Outcome::Increase { delta, reset } = outcome else {
                panic!("stale");
            };
            assert!(
                reset || i64::from(before) - i64::from(now) < 32,
                "{before} -> {now}"
            );
            assert_eq!(delta.count, if reset { 3 } else { 0 });
        }
    }
}
