use proptest::prelude::*;

use super::*;
use crate::statistic::{Bounds, ExtendedKind, ExtendedStatistic, Statistic};

/// Exact nearest-rank percentile of `values` (CloudWatch's definition).
fn exact_percentile(values: &[f64], rank: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if rank <= 0.0 {
        return v[0];
    }
    let idx = ((rank / 100.0) * v.len() as f64).ceil().max(1.0) as usize - 1;
    v[idx.min(v.len() - 1)]
}

fn window_of(values: &[f64]) -> Window {
    let mut w = Window::new();
    for &v in values {
        w.record(v);
    }
    w
}

fn assert_within_1_percent(got: f64, want: f64) {
    let tolerance = want.abs() * 0.01;
    assert!(
        (got - want).abs() <= tolerance,
        "got {got}, want {want} ± 1%"
    );
}

#[test]
fn exact_statistics_for_values() {
    let w = window_of(&[1.0, 2.0, 3.0, 10.0]);
    assert_eq!(w.sample_count(), 4.0);
    assert_eq!(w.sum(), 16.0);
    assert_eq!(w.minimum(), 1.0);
    assert_eq!(w.maximum(), 10.0);
    assert_eq!(w.percentile(100.0), Some(10.0));
    assert_eq!(w.percentile(0.0), Some(1.0));
    assert_within_1_percent(w.percentile(50.0).unwrap(), 2.0);
}

#[test]
fn counts_weight_values() {
    let mut w = Window::new();
    w.record_n(5.0, 3.0);
    w.record_n(100.0, 1.0);
    w.record_n(7.0, 0.0);
    assert_eq!(w.sample_count(), 4.0);
    assert_eq!(w.sum(), 115.0);
    assert_eq!(w.minimum(), 5.0, "a value with count 0 did not occur");
    assert_within_1_percent(w.percentile(75.0).unwrap(), 5.0);
    assert_within_1_percent(w.percentile(76.0).unwrap(), 100.0);
}

#[test]
fn negative_value_removes_percentiles_but_not_exact_stats() {
    let w = window_of(&[3.0, -1.0, 5.0]);
    assert_eq!(w.sample_count(), 3.0);
    assert_eq!(w.sum(), 7.0);
    assert_eq!(w.minimum(), -1.0);
    assert_eq!(w.percentile(50.0), None);
    assert_eq!(w.no_percentiles(), Some(NoPercentiles::NegativeValue));
}

#[test]
fn statistic_sets_feed_percentiles_only_when_single_valued() {
    let mut single = Window::new();
    single.record_set(&StatisticSet {
        sample_count: 1.0,
        sum: 4.0,
        minimum: 4.0,
        maximum: 4.0,
    });
    single.record_set(&StatisticSet {
        sample_count: 3.0,
        sum: 9.0,
        minimum: 3.0,
        maximum: 3.0,
    });
    assert_eq!(single.sample_count(), 4.0);
    assert_within_1_percent(single.percentile(50.0).unwrap(), 3.0);

    let mut spread = Window::new();
    spread.record_set(&StatisticSet {
        sample_count: 3.0,
        sum: 9.0,
        minimum: 1.0,
        maximum: 5.0,
    });
    assert_eq!(spread.sample_count(), 3.0);
    assert_eq!(spread.sum(), 9.0);
    assert_eq!(spread.percentile(50.0), None);
    assert_eq!(spread.no_percentiles(), Some(NoPercentiles::StatisticSet));
}

#[test]
fn fractional_counts_remove_percentiles() {
    let mut w = Window::new();
    w.record_n(2.0, 2.5);
    assert_eq!(w.sample_count(), 2.5);
    assert_eq!(w.sum(), 5.0);
    assert_eq!(w.percentile(50.0), None);
}

#[test]
fn percentiles_cover_the_documented_range() {
    for v in [0.001, 0.0123, 1.0, 123.456, 1e6, 1e9, 1e12] {
        let w = window_of(&[v, v * 2.0, v * 3.0]);
        assert_within_1_percent(w.percentile(50.0).unwrap(), v * 2.0);
    }
}

#[test]
fn many_values_switch_to_histogram_and_seal() {
    let values: Vec<f64> = (1..=1000).map(|i| i as f64 * 0.37).collect();
    let mut w = window_of(&values);
    assert!(matches!(w.dist, Dist::Hist(_)));
    let before: Vec<_> = [50.0, 90.0, 99.0]
        .iter()
        .map(|&r| w.percentile(r))
        .collect();
    w.seal();
    assert!(w.is_sealed());
    let after: Vec<_> = [50.0, 90.0, 99.0]
        .iter()
        .map(|&r| w.percentile(r))
        .collect();
    assert_eq!(before, after);
    for (got, rank) in after.iter().zip([50.0, 90.0, 99.0]) {
        assert_within_1_percent(got.unwrap(), exact_percentile(&values, rank));
    }
    // A sealed window still takes late data.
    w.record(10_000.0);
    assert_eq!(w.maximum(), 10_000.0);
    assert_eq!(w.percentile(100.0), Some(10_000.0));
}

#[test]
fn export_import_round_trips() {
    let w = window_of(&[1.5, 2.5, 99.0]);
    let back = Window::import(w.export());
    assert_eq!(back.sample_count(), w.sample_count());
    assert_eq!(back.sum(), w.sum());
    assert_eq!(back.percentile(50.0), w.percentile(50.0));
}

fn arb_values() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(
        prop_oneof![
            0.001f64..1.0,
            1.0f64..1000.0,
            1000.0f64..1e12,
            (0u32..5000).prop_map(|i| i as f64),
        ],
        1..400,
    )
}

proptest! {
    #[test]
    fn count_min_max_exact_and_sum_close(values in arb_values()) {
        let w = window_of(&values);
        prop_assert_eq!(w.sample_count(), values.len() as f64);
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        prop_assert_eq!(w.minimum(), min);
        prop_assert_eq!(w.maximum(), max);
        let sum: f64 = values.iter().sum();
        prop_assert!((w.sum() - sum).abs() <= sum.abs() * 1e-12);
    }

    #[test]
    fn integer_sums_are_exact(values in prop::collection::vec(0u32..1_000_000, 1..500)) {
        let floats: Vec<f64> = values.iter().map(|&v| v as f64).collect();
        let w = window_of(&floats);
        prop_assert_eq!(w.sum(), values.iter().map(|&v| v as u64).sum::<u64>() as f64);
    }

    #[test]
    fn percentiles_within_one_percent(values in arb_values(), rank in 0.0f64..=100.0) {
        let w = window_of(&values);
        let want = exact_percentile(&values, rank);
        let got = w.percentile(rank).unwrap();
        prop_assert!((got - want).abs() <= want * 0.01, "rank {} got {} want {}", rank, got, want);
    }

    #[test]
    fn merging_is_associative(a in arb_values(), b in arb_values(), c in arb_values()) {
        let (wa, wb, wc) = (window_of(&a), window_of(&b), window_of(&c));
        let mut left = wa.clone();
        left.merge(&wb);
        left.merge(&wc);
        let mut bc = wb.clone();
        bc.merge(&wc);
        let mut right = wa.clone();
        right.merge(&bc);
        prop_assert_eq!(left.sample_count(), right.sample_count());
        prop_assert_eq!(left.minimum(), right.minimum());
        prop_assert_eq!(left.maximum(), right.maximum());
        prop_assert!((left.sum() - right.sum()).abs() <= left.sum().abs() * 1e-12);
        for rank in [50.0, 90.0, 99.0, 99.9] {
            prop_assert_eq!(left.percentile(rank), right.percentile(rank));
        }
        // And merging equals recording everything into one window.
        let all: Vec<f64> = a.iter().chain(&b).chain(&c).copied().collect();
        let whole = window_of(&all);
        for rank in [50.0, 90.0, 99.0] {
            prop_assert_eq!(left.percentile(rank), whole.percentile(rank));
        }
    }

    #[test]
    fn sealing_changes_no_answer(values in arb_values()) {
        let w = window_of(&values);
        let mut s = w.clone();
        s.seal();
        for rank in [0.0, 25.0, 50.0, 99.0, 100.0] {
            prop_assert_eq!(w.percentile(rank), s.percentile(rank));
        }
    }
}

proptest! {
    /// The compact form for single small values, the pair form and the histogram answer
    /// alike: the same observations recorded with and without counts, small and large values
    /// mixed in any order, give the same statistics.
    #[test]
    fn value_forms_answer_alike(
        values in prop::collection::vec(prop_oneof![0.0f64..100.0, 40_000.0f64..1e9], 1..150),
        repeat_at in any::<prop::sample::Index>(),
    ) {
        // One window records each value singly; the other records the value at `repeat_at`
        // twice with a count of 2, forcing the pair form from that point on.
        let i = repeat_at.index(values.len());
        let mut singles = Window::new();
        let mut counted = Window::new();
        for (j, &v) in values.iter().enumerate() {
            singles.record(v);
            if j == i {
                singles.record(v);
                counted.record_n(v, 2.0);
            } else {
                counted.record(v);
            }
        }
        prop_assert_eq!(singles.sample_count(), counted.sample_count());
        for rank in [1.0, 50.0, 90.0, 99.0, 100.0] {
            prop_assert_eq!(singles.percentile(rank), counted.percentile(rank));
            let mut sealed = singles.clone();
            sealed.seal();
            prop_assert_eq!(sealed.percentile(rank), singles.percentile(rank));
        }
        let mut all = values.clone();
        all.push(values[i]);
        for rank in [50.0, 99.0] {
            assert_within_1_percent(singles.percentile(rank).unwrap(), exact_percentile(&all, rank));
        }
    }
}

/// The percentile as it was computed before it used `value_at_quantile`: walk the recorded
/// buckets until the count reaches the nearest rank, answer the bucket's middle.
fn percentile_by_walking(w: &Window, rank: f64) -> Option<f64> {
    if rank <= 0.0 || rank >= 100.0 || w.is_empty() {
        return w.percentile(rank);
    }
    let h = match &w.dist {
        Dist::Hist(h) => (**h).clone(),
        _ => w.histogram()?,
    };
    let target = ((rank / 100.0) * h.len() as f64).ceil().max(1.0) as u64;
    let mut seen = 0u64;
    for v in h.iter_recorded() {
        seen += v.count_at_value();
        if seen >= target {
            let mid = h.median_equivalent(v.value_iterated_to());
            return Some((mid as f64 / SCALE).clamp(w.min, w.max));
        }
    }
    Some(w.max)
}

proptest! {
    /// The chunked scan finds the same bucket as walking the buckets one by one, for any
    /// values, counts and rank, in every form a window takes (raw, histogram, sealed).
    #[test]
    fn percentiles_are_those_of_the_bucket_walk(
        values in arb_values(),
        counts in prop::collection::vec(1u32..5, 1..400),
        ranks in prop::collection::vec(0.0f64..=100.0, 1..8),
    ) {
        let mut w = Window::new();
        for (v, n) in values.iter().zip(counts.iter().cycle()) {
            w.record_n(*v, f64::from(*n));
        }
        let mut sealed = w.clone();
        sealed.seal();
        for rank in ranks.iter().copied().chain([0.5, 50.0, 99.0, 99.9]) {
            let walked = percentile_by_walking(&w, rank);
            prop_assert_eq!(w.percentile(rank), walked, "rank {}", rank);
            prop_assert_eq!(sealed.percentile(rank), walked, "rank {} sealed", rank);
        }
    }
}

// === Distributions (OpenTelemetry histograms and summaries) ===

/// A distribution of `pairs` (value, count) with the given bounds, its count and sum those of
/// the pairs (the sum added in order, as `record_n` adds it).
fn distribution_of<'a>(
    values: &'a [f64],
    counts: &'a [f64],
    min: Option<f64>,
    max: Option<f64>,
) -> Distribution<'a> {
    Distribution {
        count: counts.iter().sum(),
        sum: values.iter().zip(counts).fold(0.0, |s, (v, n)| s + v * n),
        min,
        max,
        values,
        counts,
    }
}

#[test]
fn distributions_add_exact_count_sum_and_bounds() {
    let mut w = Window::new();
    w.record(3.0);
    w.record_distribution(&Distribution {
        count: 6.0,
        sum: 20.25,
        min: Some(0.25),
        max: Some(9.0),
        values: &[0.5, 3.0, 7.5],
        counts: &[1.0, 3.0, 2.0],
    });
    assert_eq!(w.sample_count(), 7.0);
    assert_eq!(
        w.sum(),
        23.25,
        "the given sum, not one of the representatives"
    );
    assert_eq!(w.minimum(), 0.25);
    assert_eq!(w.maximum(), 9.0);
    assert_eq!(w.no_percentiles(), None);
    assert_eq!(w.percentile(0.0), Some(0.25));
    assert_eq!(w.percentile(100.0), Some(9.0));
    assert_within_1_percent(w.percentile(50.0).unwrap(), 3.0);
    // A distribution of no observations records nothing.
    let before = w.clone();
    w.record_distribution(&Distribution {
        count: 0.0,
        sum: 0.0,
        min: None,
        max: None,
        values: &[1e6],
        counts: &[0.0],
    });
    assert_eq!(
        (w.sample_count(), w.sum(), w.maximum()),
        (before.sample_count(), before.sum(), before.maximum())
    );
}

#[test]
fn without_bounds_the_extreme_occupied_representatives_bound_the_window() {
    let mut w = Window::new();
    w.record_distribution(&Distribution {
        count: 4.0,
        sum: 30.0,
        min: None,
        max: None,
        values: &[0.1, 2.0, 8.0, 1000.0],
        counts: &[0.0, 3.0, 1.0, 0.0],
    });
    assert_eq!(
        (w.minimum(), w.maximum()),
        (2.0, 8.0),
        "empty buckets bound nothing"
    );
    // Only one bound given: the other comes from the representatives, and never crosses it.
    let mut above = Window::new();
    above.record_distribution(&Distribution {
        count: 2.0,
        sum: 12.0,
        min: Some(5.0),
        max: None,
        values: &[1.0, 2.0],
        counts: &[1.0, 1.0],
    });
    assert_eq!((above.minimum(), above.maximum()), (5.0, 5.0));
    assert_eq!(above.percentile(50.0), Some(5.0), "clamped to the bounds");
    let mut below = Window::new();
    below.record_distribution(&Distribution {
        count: 2.0,
        sum: 1.0,
        min: None,
        max: Some(0.5),
        values: &[1.0, 2.0],
        counts: &[1.0, 1.0],
    });
    assert_eq!((below.minimum(), below.maximum()), (0.5, 0.5));
    assert_eq!(below.percentile(99.0), Some(0.5));
}

/// Explicit-bucket histograms as an OpenTelemetry SDK makes them: bounds
/// `0 < 1 < 2.5 < … < 250`, each bucket represented by its middle. The nearest-rank
/// percentile falls in the bucket whose cumulative count first reaches the rank.
#[test]
fn percentiles_fall_in_the_bucket_that_holds_the_rank() {
    let bounds = [0.0, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0];
    let counts = [3.0, 17.0, 40.0, 25.0, 9.0, 0.0, 5.0, 1.0];
    let values: Vec<f64> = bounds.windows(2).map(|b| (b[0] + b[1]) / 2.0).collect();
    let d = Distribution {
        min: Some(0.2),
        max: Some(240.0),
        ..distribution_of(&values, &counts, None, None)
    };
    let mut w = Window::new();
    w.record_distribution(&d);
    let total: f64 = counts.iter().sum();
    for rank in (1..100).map(f64::from).chain([0.1, 99.9]) {
        let target = (rank / 100.0 * total).ceil();
        let mut seen = 0.0;
        let bucket = counts
            .iter()
            .position(|&n| {
                seen += n;
                seen >= target
            })
            .unwrap();
        let p = w.percentile(rank).unwrap();
        assert!(
            bounds[bucket] < p && p <= bounds[bucket + 1],
            "p{rank} = {p}, not in bucket {bucket} ({}, {}]",
            bounds[bucket],
            bounds[bucket + 1]
        );
    }
}

#[test]
fn negative_distributions_have_no_percentiles() {
    let mut w = Window::new();
    w.record_distribution(&distribution_of(&[-2.0, 3.0], &[1.0, 1.0], None, None));
    assert_eq!((w.sample_count(), w.sum()), (2.0, 1.0));
    assert_eq!((w.minimum(), w.maximum()), (-2.0, 3.0));
    assert_eq!(w.percentile(50.0), None);
    assert_eq!(w.no_percentiles(), Some(NoPercentiles::NegativeValue));
    // A negative minimum is a negative value in the period, whatever the representatives.
    let mut w = Window::new();
    w.record_distribution(&distribution_of(&[0.0, 3.0], &[1.0, 1.0], Some(-1.0), None));
    assert_eq!(w.minimum(), -1.0);
    assert_eq!(w.no_percentiles(), Some(NoPercentiles::NegativeValue));
    // Fractional bucket counts are as fractional `counts`.
    let mut w = Window::new();
    w.record_distribution(&distribution_of(&[1.0, 3.0], &[0.5, 1.5], None, None));
    assert_eq!(w.sample_count(), 2.0);
    assert_eq!(w.no_percentiles(), Some(NoPercentiles::FractionalCount));
}

/// A distribution without buckets (an OpenTelemetry summary without quantiles) counts
/// exactly but has no percentiles, for a reason of its own; without bounds the mean bounds
/// the window.
#[test]
fn distributions_without_buckets_have_no_percentiles() {
    let summary = Distribution {
        count: 4.0,
        sum: 10.0,
        min: Some(1.0),
        max: Some(4.0),
        values: &[],
        counts: &[],
    };
    let mut w = Window::new();
    w.record_distribution(&summary);
    assert_eq!(
        (w.sample_count(), w.sum(), w.minimum(), w.maximum()),
        (4.0, 10.0, 1.0, 4.0)
    );
    assert_eq!(w.percentiles(&[0.0, 50.0, 100.0]), vec![None; 3]);
    assert_eq!(w.no_percentiles(), Some(NoPercentiles::NoBuckets));
    assert_eq!(
        NoPercentiles::NoBuckets.to_string(),
        "a distribution in the period has no buckets"
    );
    // Buckets that hold nothing are no buckets either.
    let mut w = Window::new();
    w.record_distribution(&Distribution {
        values: &[2.0],
        counts: &[0.0],
        ..summary
    });
    assert_eq!(w.no_percentiles(), Some(NoPercentiles::NoBuckets));
    // Without bounds, the mean (which the true bounds enclose) stands for both ...
    let mut w = Window::new();
    w.record_distribution(&Distribution {
        min: None,
        max: None,
        ..summary
    });
    assert_eq!((w.minimum(), w.maximum()), (2.5, 2.5));
    // ... and for the one missing, never crossing the one given.
    let mut w = Window::new();
    w.record_distribution(&Distribution {
        min: Some(3.0),
        max: None,
        ..summary
    });
    assert_eq!((w.minimum(), w.maximum()), (3.0, 3.0));
    let mut w = Window::new();
    w.record(100.0);
    w.record_distribution(&Distribution {
        max: None,
        ..summary
    });
    assert_eq!((w.minimum(), w.maximum()), (1.0, 100.0));
}

/// Distributions merge with every other kind of data; a window without buckets passes its
/// reason on through merging, sealing and snapshots.
#[test]
fn distributions_merge_with_other_kinds() {
    let (values, counts) = ([0.5, 5.0, 50.0], [2.0, 5.0, 1.0]);
    let d = distribution_of(&values, &counts, Some(0.3), Some(60.0));
    let mut dist = Window::new();
    dist.record_distribution(&d);
    let singles = window_of(&[1.0, 2.0, 70.0]);
    let mut set = Window::new();
    set.record_set(&StatisticSet {
        sample_count: 2.0,
        sum: 8.0,
        minimum: 4.0,
        maximum: 4.0,
    });
    let mut merged = singles.clone();
    merged.merge(&dist);
    merged.merge(&set);
    let mut whole = window_of(&[1.0, 2.0, 70.0]);
    whole.record_distribution(&d);
    whole.record_n(4.0, 2.0);
    assert_eq!(merged.sample_count(), 3.0 + 8.0 + 2.0);
    assert_eq!(merged.sum(), whole.sum());
    assert_eq!((merged.minimum(), merged.maximum()), (0.3, 70.0));
    for rank in [1.0, 25.0, 50.0, 75.0, 90.0, 99.0] {
        assert_eq!(merged.percentile(rank), whole.percentile(rank), "p{rank}");
    }

    let mut summary = Window::new();
    summary.record_distribution(&Distribution {
        values: &[],
        counts: &[],
        ..d
    });
    for (mut first, second) in [(merged.clone(), &summary), (summary.clone(), &merged)] {
        first.merge(second);
        assert_eq!(first.sample_count(), 13.0 + 8.0);
        assert_eq!(first.percentile(50.0), None);
        assert_eq!(first.no_percentiles(), Some(NoPercentiles::NoBuckets));
        first.seal();
        assert_eq!(first.no_percentiles(), Some(NoPercentiles::NoBuckets));
        let back = Window::import(first.export());
        assert_eq!(back.export(), first.export());
        assert_eq!(back.no_percentiles(), Some(NoPercentiles::NoBuckets));
        assert_eq!(
            (back.sample_count(), back.minimum(), back.maximum()),
            (21.0, 0.3, 70.0)
        );
    }
    // A sealed distribution window answers as before and still takes more data.
    let mut sealed = merged.clone();
    sealed.seal();
    assert!(sealed.is_sealed());
    let back = Window::import(sealed.export());
    for rank in [10.0, 50.0, 99.0] {
        assert_eq!(back.percentile(rank), merged.percentile(rank));
    }
}

/// `(value, count)` pairs as an OpenTelemetry histogram's buckets give them: representatives
/// anywhere in the accurate range, whole counts (zero included).
fn arb_buckets() -> impl Strategy<Value = Vec<(f64, f64)>> {
    prop::collection::vec(
        (
            prop_oneof![0.001f64..1.0, 1.0f64..1000.0, 1000.0f64..1e12],
            (0u32..50).prop_map(f64::from),
        ),
        1..200,
    )
}

proptest! {
    /// Recording a distribution is recording its buckets with `record_n`, when its count, sum
    /// and bounds are those of its buckets: the same count, sum, bounds and percentiles, also
    /// after other data, merging and sealing.
    #[test]
    fn a_distribution_records_as_its_buckets(
        buckets in arb_buckets(),
        before in arb_values(),
        bounds_given in any::<(bool, bool)>(),
    ) {
        let (values, counts): (Vec<f64>, Vec<f64>) = buckets.iter().copied().unzip();
        let occupied = || buckets.iter().filter(|b| b.1 > 0.0).map(|b| b.0);
        let lo = occupied().fold(f64::INFINITY, f64::min);
        let hi = occupied().fold(f64::NEG_INFINITY, f64::max);
        prop_assume!(lo.is_finite());
        let d = distribution_of(
            &values,
            &counts,
            bounds_given.0.then_some(lo),
            bounds_given.1.then_some(hi),
        );
        let mut by_pairs = window_of(&before);
        let mut by_dist = window_of(&before);
        let sum_before = by_pairs.sum();
        for (&v, &n) in values.iter().zip(&counts) {
            by_pairs.record_n(v, n);
        }
        by_dist.record_distribution(&d);
        let mut merged = window_of(&before);
        let mut alone = Window::new();
        alone.record_distribution(&d);
        merged.merge(&alone);
        let mut sealed = by_dist.clone();
        sealed.seal();
        for w in [&by_dist, &merged, &sealed] {
            prop_assert_eq!(w.sample_count(), by_pairs.sample_count());
            prop_assert_eq!(w.sum(), sum_before + d.sum);
            prop_assert_eq!(w.minimum(), by_pairs.minimum());
            prop_assert_eq!(w.maximum(), by_pairs.maximum());
            prop_assert_eq!(w.no_percentiles(), None);
            for rank in [0.0, 1.0, 25.0, 50.0, 90.0, 99.0, 99.9, 100.0] {
                prop_assert_eq!(w.percentile(rank), by_pairs.percentile(rank), "p{}", rank);
            }
        }
    }

    /// Whatever the bounds given (enclosing the representatives or not, or absent), the
    /// window's percentiles lie within its Minimum and Maximum, and Minimum <= Maximum.
    #[test]
    fn percentiles_stay_within_the_bounds(
        buckets in arb_buckets(),
        min in prop::option::of(0.0f64..1e6),
        span in prop::option::of(0.0f64..1e6),
        ranks in prop::collection::vec(0.0f64..=100.0, 1..8),
    ) {
        let (values, counts): (Vec<f64>, Vec<f64>) = buckets.iter().copied().unzip();
        let max = span.map(|s| min.unwrap_or(0.0) + s);
        let mut w = Window::new();
        w.record_distribution(&distribution_of(&values, &counts, min, max));
        prop_assume!(!w.is_empty());
        prop_assert!(w.minimum() <= w.maximum());
        if let Some(min) = min {
            prop_assert_eq!(w.minimum(), min);
        }
        if let Some(max) = max {
            prop_assert_eq!(w.maximum(), max);
        }
        for p in w.percentiles(&ranks).into_iter().flatten() {
            prop_assert!(w.minimum() <= p && p <= w.maximum(), "{} not in [{}, {}]", p, w.minimum(), w.maximum());
        }
    }
}

// ---- Extended statistics (TM, WM, TC, TS, PR, IQM) ----

fn stat(text: &str) -> ExtendedStatistic {
    match text.parse::<Statistic>() {
        Ok(Statistic::Extended(e)) => e,
        other => panic!("{text}: {other:?}"),
    }
}

fn ext(w: &Window, text: &str) -> Option<f64> {
    w.extended(&stat(text))
}

/// `got` within 1% of `want` (or both 0).
fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= want.abs() * 0.01
}

#[test]
fn extended_statistics_of_1_to_100_worked_by_hand() {
    // 1..=100 is more than the raw forms hold: this reads the histogram.
    let values: Vec<f64> = (1..=100).map(f64::from).collect();
    let w = window_of(&values);
    // (statistic, exact value worked by hand, exact?) — exact: must match to the bit.
    let rows: &[(&str, Option<f64>, bool)] = &[
        // Ranks 11..=90 kept (rank 10 is p10, excluded; rank 90 is p90, kept).
        ("TM(10%:90%)", Some(50.5), false),
        ("TC(10%:90%)", Some(80.0), true),
        ("TS(10%:90%)", Some(4040.0), false),
        // 1..=9 and 10 count as p10 = 10, 91..=100 as p90 = 90: (100 + 4040 + 900) / 100.
        ("WM(10%:90%)", Some(50.4), false),
        // Ranks 26..=75.
        ("IQM", Some(50.5), false),
        ("TM(25%:75%)", Some(50.5), false),
        // tm90 = TM(:90%): 1..=90.
        ("tm90", Some(45.5), false),
        ("tc90", Some(90.0), true),
        ("ts90", Some(4095.0), false),
        // 91..=100 count as 90: (4095 + 900) / 100.
        ("wm90", Some(49.95), false),
        ("tc99.5", Some(100.0), true),
        ("TC(10%:)", Some(90.0), true),
        ("TM(50%:50%)", None, true),
        ("TC(50%:50%)", Some(0.0), true),
        // Absolute bounds, lower exclusive, upper inclusive: 80 < v <= 500 is 81..=100.
        ("TC(80:500)", Some(20.0), true),
        ("TM(80:500)", Some(90.5), false),
        ("TS(80:500)", Some(1810.0), false),
        ("TC(80.5:500)", Some(20.0), true),
        ("TC(:0.5)", Some(0.0), true),
        ("TS(:0.5)", Some(0.0), true),
        ("TM(:0.5)", None, true),
        ("TC(100:)", Some(0.0), true),
        ("TC(99:)", Some(1.0), true),
        // 1..=20 count as 20, 81..=100 as 80: (400 + 3030 + 1600) / 100.
        ("WM(20:80)", Some(50.3), false),
        ("PR(:30)", Some(30.0), true),
        ("PR(50:60)", Some(10.0), true),
        ("PR(:100)", Some(100.0), true),
        ("PR(100:)", Some(0.0), true),
        ("PR(:1)", Some(1.0), true),
        ("PR(0:)", Some(100.0), true),
    ];
    for &(text, want, exact) in rows {
        let got = ext(&w, text);
        match (got, want) {
            (Some(g), Some(v)) if exact => assert_eq!(g, v, "{text}"),
            (Some(g), Some(v)) => assert!(close(g, v), "{text}: got {g}, want {v} ± 1%"),
            (None, None) => {}
            _ => panic!("{text}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn extended_statistics_of_a_few_raw_values() {
    // A window that still keeps raw values answers from the same histogram.
    let w = window_of(&[3.0, 1.0, 2.0, 10.0]);
    assert_eq!(ext(&w, "TC(1:3)"), Some(2.0));
    assert_eq!(ext(&w, "PR(:2)"), Some(50.0));
    assert!(close(ext(&w, "tm75").unwrap(), 2.0));
    assert!(close(ext(&w, "TS(25%:)").unwrap(), 15.0));
    // WM(:50%): 3 and 10 count as p50 = 2.
    assert!(close(ext(&w, "WM(:50%)").unwrap(), 7.0 / 4.0));
}

#[test]
fn extended_statistics_are_absent_where_percentiles_are() {
    assert_eq!(ext(&Window::new(), "TC(:1)"), None);
    assert_eq!(ext(&window_of(&[3.0, -1.0, 5.0]), "TC(:10)"), None);
    let mut set = Window::new();
    set.record_set(&StatisticSet {
        sample_count: 2.0,
        sum: 3.0,
        minimum: 1.0,
        maximum: 2.0,
    });
    assert_eq!(ext(&set, "IQM"), None);
    assert_eq!(ext(&set, "PR(:5)"), None);
    // `statistics` answers the exact ones anyway.
    let stats: Vec<Statistic> = ["SampleCount", "IQM", "p50", "Sum"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(
        set.statistics(&stats),
        vec![Some(2.0), None, None, Some(3.0)]
    );
}

#[test]
fn statistics_answer_as_the_single_readers_do() {
    let values: Vec<f64> = (0..500).map(|i| f64::from(i % 37) * 1.5 + 0.25).collect();
    let mut w = window_of(&values);
    w.seal();
    let names = [
        "Average",
        "p90",
        "TM(10%:90%)",
        "Minimum",
        "PR(:20)",
        "p99.9",
        "wm95",
    ];
    let stats: Vec<Statistic> = names.iter().map(|s| s.parse().unwrap()).collect();
    let got = w.statistics(&stats);
    let want: Vec<Option<f64>> = stats
        .iter()
        .map(|s| match s {
            Statistic::Average => Some(w.sum() / w.sample_count()),
            Statistic::Minimum => Some(w.minimum()),
            Statistic::Percentile(p) => w.percentile(p.rank),
            Statistic::Extended(e) => w.extended(e),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn winsorized_replacements_are_the_percentiles_at_the_bounds() {
    // One large outlier among many equal values: WM(:90%) replaces it with p90.
    let mut values = vec![7.0; 99];
    values.push(1e6);
    let w = window_of(&values);
    assert_eq!(w.percentile(90.0), Some(7.0));
    assert_eq!(ext(&w, "WM(:90%)"), Some(7.0));
    assert_eq!(
        ext(&w, "TC(:7)"),
        Some(99.0),
        "equal to the bound is within"
    );
    assert_eq!(
        ext(&w, "TC(7:)"),
        Some(1.0),
        "equal to the lower bound is not"
    );
}

#[test]
fn absolute_bounds_may_misplace_only_values_just_above_a_bound() {
    // Around 100 the buckets are 2⁻⁷ · 2²³ · 10⁻⁵ ≈ 0.66 wide: 99.61..100.27 holds 100 and
    // 100.2, which may count as if they equalled a bound in that bucket.
    let w = window_of(&[50.0, 100.0, 100.2, 102.0, 200.0]);
    assert_eq!(ext(&w, "TC(:99)"), Some(1.0));
    assert_eq!(ext(&w, "TC(101:)"), Some(2.0));
    assert_eq!(ext(&w, "PR(:50)"), Some(20.0));
    let c = ext(&w, "TC(:100)").unwrap();
    assert!(c == 2.0 || c == 3.0, "{c}");
    // 100 and 100.2 share a bucket: both or neither count below 99.99.
    let c = ext(&w, "TC(:99.99)").unwrap();
    assert!(c == 1.0 || c == 3.0, "{c}");
}

/// The exact extended statistic over `values`, by the definitions in `crate::statistic`.
/// Percentage bounds are given in tenths of a percent so that the ranks are integer sums.
fn exact_extended(values: &[f64], kind: ExtendedKind, bounds: Bounds) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let (kept, winsorized): (Vec<f64>, Vec<f64>) = match bounds {
        Bounds::Percent { lower, upper } => {
            // ⌈p·n/100⌉ with p a whole number of tenths: (tenths·n + 999) / 1000.
            let rank = |p: f64| ((p * 10.0).round() as usize * n).div_ceil(1000);
            let lo = lower.map_or(0, rank);
            let hi = upper.map_or(n, rank).max(lo);
            let at = |r: usize| v[r.max(1) - 1];
            let w = (0..n)
                .map(|i| {
                    if i < lo {
                        at(lo)
                    } else if i >= hi {
                        at(hi)
                    } else {
                        v[i]
                    }
                })
                .collect();
            (v[lo..hi].to_vec(), w)
        }
        Bounds::Absolute { lower, upper } => {
            let l = lower.unwrap_or(f64::NEG_INFINITY);
            let u = upper.unwrap_or(f64::INFINITY);
            let kept = v.iter().copied().filter(|&x| l < x && x <= u).collect();
            let w = v
                .iter()
                .map(|&x| if x <= l { l } else { x.min(u) })
                .collect();
            (kept, w)
        }
    };
    let sum: f64 = kept.iter().sum();
    Some(match kind {
        ExtendedKind::TrimmedMean => {
            if kept.is_empty() {
                return None;
            }
            sum / kept.len() as f64
        }
        ExtendedKind::WinsorizedMean => winsorized.iter().sum::<f64>() / n as f64,
        ExtendedKind::TrimmedCount => kept.len() as f64,
        ExtendedKind::TrimmedSum => sum,
        ExtendedKind::PercentileRank => 100.0 * kept.len() as f64 / n as f64,
    })
}

fn arb_kind() -> impl Strategy<Value = ExtendedKind> {
    prop_oneof![
        Just(ExtendedKind::TrimmedMean),
        Just(ExtendedKind::WinsorizedMean),
        Just(ExtendedKind::TrimmedCount),
        Just(ExtendedKind::TrimmedSum),
    ]
}

fn check_extended(values: &[f64], kind: ExtendedKind, bounds: Bounds) -> Result<(), TestCaseError> {
    let w = window_of(values);
    let e = ExtendedStatistic {
        kind,
        bounds,
        label: String::new(),
    };
    let got = w.extended(&e);
    let want = exact_extended(values, kind, bounds);
    match (got, want) {
        (None, None) => {}
        (Some(g), Some(x)) => match kind {
            ExtendedKind::TrimmedCount | ExtendedKind::PercentileRank => {
                prop_assert_eq!(g, x, "{:?} {:?}", kind, bounds);
            }
            _ => prop_assert!(
                close(g, x),
                "{:?} {:?}: got {}, want {}",
                kind,
                bounds,
                g,
                x
            ),
        },
        _ => prop_assert!(
            false,
            "{:?} {:?}: got {:?}, want {:?}",
            kind,
            bounds,
            got,
            want
        ),
    }
    Ok(())
}

proptest! {
    /// Percentage bounds: counts exact, means and sums within 1%, against an exact
    /// computation over the sorted values.
    #[test]
    fn percentage_bounds_match_the_exact_statistics(
        values in arb_values(),
        kind in arb_kind(),
        a in 0u32..=1000,
        b in 0u32..=1000,
        sides in 0u8..3,
    ) {
        let (a, b) = (f64::from(a.min(b)) / 10.0, f64::from(a.max(b)) / 10.0);
        let bounds = match sides {
            0 => Bounds::Percent { lower: Some(a), upper: Some(b) },
            1 => Bounds::Percent { lower: None, upper: Some(b) },
            _ => Bounds::Percent { lower: Some(a), upper: None },
        };
        check_extended(&values, kind, bounds)?;
    }

    /// Absolute bounds: exact counts and percentile ranks, means and sums within 1%, for
    /// values that are not just above a bound (within its histogram bucket, where the
    /// documented bound lets an observation count as the bound).
    #[test]
    fn absolute_bounds_match_the_exact_statistics(
        values in arb_values(),
        kind in prop_oneof![arb_kind(), Just(ExtendedKind::PercentileRank)],
        a in prop_oneof![0.001f64..1e12, (0u32..5000).prop_map(f64::from)],
        b in prop_oneof![0.001f64..1e12, (0u32..5000).prop_map(f64::from)],
        sides in 0u8..3,
    ) {
        // Bounds that are multiples of 10⁻⁵, as the documented guarantee for values equal
        // to a bound needs.
        let grid = |x: f64| (x * SCALE).round() / SCALE;
        let (a, b) = (grid(a.min(b)), grid(a.max(b)));
        let (lower, upper) = match sides {
            0 => (Some(a), Some(b)),
            1 => (None, Some(b)),
            _ => (Some(a), None),
        };
        let just_above = |x: f64, bound: Option<f64>| {
            bound.is_some_and(|c| x > c && x <= c + c / 64.0 + 2e-5)
        };
        let values: Vec<f64> = values
            .into_iter()
            .filter(|&x| !just_above(x, lower) && !just_above(x, upper))
            .collect();
        prop_assume!(!values.is_empty());
        check_extended(&values, kind, Bounds::Absolute { lower, upper })?;
    }
}

#[test]
fn percentage_bounds_take_exact_ranks() {
    // 7% of 100 is rank 7 (in floating point 0.07 · 100 rounds above 7), 99.9% of 1000 is
    // rank 999, and 10 decimals count.
    assert_eq!(rank_of(7.0, 100), 7);
    assert_eq!(rank_of(99.9, 1000), 999);
    assert_eq!(rank_of(7.0000000001, 100), 8);
    assert_eq!(rank_of(0.0000000001, 3), 1);
    assert_eq!(rank_of(0.0, 3), 0);
    assert_eq!(rank_of(100.0, 3), 3);
    let w = window_of(&(1..=100).map(f64::from).collect::<Vec<_>>());
    assert_eq!(ext(&w, "tc7"), Some(7.0));
    assert_eq!(ext(&w, "TC(7%:56%)"), Some(49.0));
}
