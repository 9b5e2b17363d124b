use super::*;

fn span(offset: i32, length: u32) -> BucketSpan {
    BucketSpan { offset, length }
}

fn int(count: u64, spans: Vec<BucketSpan>, deltas: Vec<i64>) -> Histogram {
    Histogram {
        count: Some(Count::CountInt(count)),
        sum: 1.0,
        schema: 2,
        positive_spans: spans,
        positive_deltas: deltas,
        ..Histogram::default()
    }
}

fn exponential(h: &Histogram) -> ExponentialTotals {
    match totals(h) {
        Ok(NativeTotals::Exponential(t)) => t,
        other => panic!("{other:?}"),
    }
}

#[test]
fn spans_and_deltas_become_a_dense_range_one_index_lower() {
    // Buckets 3, 4, then a gap of 2, then 7: counts 2, 5, 1 (deltas 2, +3, -4).
    let t = exponential(&int(8, vec![span(3, 2), span(2, 1)], vec![2, 3, -4]));
    assert_eq!(
        t.positive,
        BucketRange {
            offset: 2,
            counts: vec![2, 5, 0, 0, 1]
        }
    );
    assert_eq!((t.count, t.scale, t.sum), (8, 2, Some(1.0)));
    // Empty spans are allowed, and an empty histogram has empty ranges.
    let t = exponential(&int(0, vec![span(0, 0)], vec![]));
    assert_eq!(t.positive, BucketRange::default());
}

#[test]
fn prometheus_bucket_i_is_otlp_bucket_i_minus_one() {
    use thermostat_metrics::cumulative::buckets::exponential_bucket;
    // Prometheus, schema 0: bucket 1 is (1, 2]; OTLP's bucket 0 is (1, 2].
    let t = exponential(&Histogram {
        schema: 0,
        ..int(1, vec![span(1, 1)], vec![1])
    });
    assert_eq!(t.positive.offset, 0);
    assert_eq!(exponential_bucket(0, 0), (1.0, 2.0));
}

#[test]
fn malformed_histograms_are_refused_with_the_rule() {
    let cases: Vec<(Histogram, &str)> = vec![
        (
            int(3, vec![span(0, 2)], vec![1]),
            "positive_spans: must cover as many buckets as there are positive_deltas (spans cover 2, got 1)",
        ),
        (
            int(3, vec![span(0, 2)], vec![2, -3]),
            "positive_deltas[1]: the bucket's count must not be negative",
        ),
        (
            int(5, vec![span(0, 2)], vec![1, 1]),
            "count: must equal the zero bucket's count plus the buckets' counts (got 5, they add up to 3)",
        ),
        (
            int(2, vec![span(0, 1), span(-3, 1)], vec![1, 0]),
            "positive_spans[1].offset: must not be negative after the first span",
        ),
        (
            int(2, vec![span(0, 1), span(100_000, 1)], vec![1, 0]),
            "positive_spans: must cover at most 4096 buckets within 8192 consecutive indices",
        ),
        (
            int(0, vec![span(0, u32::MAX), span(0, u32::MAX)], vec![]),
            "positive_spans: must cover at most 4096 buckets",
        ),
        (
            Histogram {
                schema: 9,
                ..int(1, vec![span(0, 1)], vec![1])
            },
            "schema: must be -4 to 8 (exponential buckets) or -53 (custom buckets) (got 9)",
        ),
        (
            Histogram {
                positive_counts: vec![1.0],
                ..int(1, vec![span(0, 1)], vec![])
            },
            "positive_counts: an integer histogram (count_int) must carry positive_deltas",
        ),
        (
            Histogram {
                zero_threshold: -1.0,
                ..int(1, vec![span(0, 1)], vec![1])
            },
            "zero_threshold: must be finite and not negative",
        ),
        (
            int(2, vec![span(0, 2)], vec![i64::MAX, i64::MAX]),
            "positive_deltas[1]: the running count overflows",
        ),
        (
            Histogram {
                schema: -4,
                ..int(1, vec![span(70, 1)], vec![1])
            },
            "must be empty, since it holds no finite number",
        ),
    ];
    for (h, rule) in cases {
        let e = totals(&h).unwrap_err();
        assert!(
            e.starts_with(rule) || e.contains(rule),
            "{e}\nwanted {rule}"
        );
    }
}

#[test]
fn a_nan_sum_counts_the_buckets() {
    // A NaN observation counts in `count` but in no bucket.
    let t = exponential(&Histogram {
        sum: f64::NAN,
        ..int(4, vec![span(0, 1)], vec![3])
    });
    assert_eq!((t.count, t.sum), (3, None));
    let e = totals(&Histogram {
        sum: f64::NAN,
        ..int(2, vec![span(0, 1)], vec![3])
    })
    .unwrap_err();
    assert!(e.starts_with("count: must be at least"), "{e}");
}

#[test]
fn float_histograms_need_whole_counts() {
    let h = Histogram {
        count: Some(Count::CountFloat(3.0)),
        zero_count: Some(ZeroCount::ZeroCountFloat(1.0)),
        positive_spans: vec![span(0, 1)],
        positive_counts: vec![2.0],
        sum: 2.0,
        ..Histogram::default()
    };
    let t = exponential(&h);
    assert_eq!((t.count, t.zero_count), (3, 1));
    for (field, h) in [
        (
            "count_float",
            Histogram {
                count: Some(Count::CountFloat(2.5)),
                ..h.clone()
            },
        ),
        (
            "positive_counts[0]",
            Histogram {
                positive_counts: vec![-2.0],
                ..h.clone()
            },
        ),
        (
            "zero_count_float",
            Histogram {
                zero_count: Some(ZeroCount::ZeroCountFloat(f64::NAN)),
                ..h.clone()
            },
        ),
    ] {
        let e = totals(&h).unwrap_err();
        assert!(
            e.starts_with(&format!("{field}: must be a whole number")),
            "{e}"
        );
    }
    let mixed = Histogram {
        zero_count: Some(ZeroCount::ZeroCountInt(1)),
        ..h
    };
    assert!(totals(&mixed).unwrap_err().starts_with("zero_count_int"));
}

#[test]
fn custom_buckets_need_increasing_finite_bounds_and_no_negative_side() {
    let h = Histogram {
        schema: CUSTOM_SCHEMA,
        custom_values: vec![1.0, 2.0],
        ..int(3, vec![span(0, 3)], vec![1, 0, 0])
    };
    match totals(&h) {
        Ok(NativeTotals::Custom(t)) => {
            assert_eq!(t.bounds, vec![1.0, 2.0]);
            assert_eq!(t.counts, vec![1, 1, 1]);
        }
        other => panic!("{other:?}"),
    }
    let e = totals(&Histogram {
        custom_values: vec![2.0, 1.0],
        ..h.clone()
    })
    .unwrap_err();
    assert!(e.starts_with("custom_values[1]: must be greater"), "{e}");
    let e = totals(&Histogram {
        custom_values: vec![1.0, f64::INFINITY],
        ..h.clone()
    })
    .unwrap_err();
    assert!(e.starts_with("custom_values[1]: must be finite"), "{e}");
    let e = totals(&Histogram {
        count: Some(Count::CountInt(4)),
        zero_count: Some(ZeroCount::ZeroCountInt(1)),
        ..h
    })
    .unwrap_err();
    assert!(e.contains("negative and zero buckets must be empty"), "{e}");
}
