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
    assert!(matches!(w.dist, Distribution::Hist(_)));
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
        Distribution::Hist(h) => (**h).clone(),
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
