use proptest::prelude::*;

use super::*;

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
