use std::collections::BTreeMap;

use super::*;
use crate::series::Dimension;

const NOW: Timestamp = Timestamp(1_800_000_000_000);

fn key(dims: &[(&str, &str)]) -> SeriesKey {
    SeriesKey::new(
        "App",
        "Latency",
        dims.iter().map(|(n, v)| Dimension::new(*n, *v)).collect(),
    )
}

/// A batch as runs of one series over a separate list of observations
/// ([`Store::record_runs_seq`]'s form).
fn as_runs<'o>(
    batch: &[(SeriesKey, Observation<'o>)],
) -> (Vec<(SeriesKey, usize)>, Vec<Observation<'o>>) {
    let mut runs: Vec<(SeriesKey, usize)> = Vec::new();
    for (i, (k, _)) in batch.iter().enumerate() {
        match runs.last_mut() {
            Some((last, end)) if SeriesKey::same(last, k) => *end = i + 1,
            _ => runs.push((k.clone(), i + 1)),
        }
    }
    (runs, batch.iter().map(|(_, o)| *o).collect())
}

fn obs(ts: Timestamp, v: f64) -> Observation<'static> {
    Observation {
        timestamp: ts,
        unit: Unit::Milliseconds,
        resolution: Resolution::Standard,
        sample: Sample::Value(v),
    }
}

fn stats(names: &[&str]) -> Vec<Statistic> {
    names.iter().map(|s| s.parse().unwrap()).collect()
}

fn query(
    store: &Store,
    start: Timestamp,
    end: Timestamp,
    period: u32,
    names: &[&str],
) -> Vec<Datapoint> {
    store
        .query(
            &Query {
                key: key(&[("Host", "a")]),
                unit: None,
                start,
                end,
                period: Period::try_from_secs(period.into()).unwrap(),
                statistics: stats(names),
            },
            NOW,
        )
        .unwrap()
}

#[test]
fn periods_aggregate_windows() {
    let store = Store::new(4);
    let t0 = NOW.sub_millis(HOUR_MS).floor_to(5 * MINUTE_MS);
    let batch: Vec<_> = (0..300)
        .map(|i| {
            (
                key(&[("Host", "a")]),
                obs(t0.add_millis(i * 1000), i as f64),
            )
        })
        .collect();
    store.record_batch(&batch);

    let per_minute = query(
        &store,
        t0,
        t0.add_millis(5 * MINUTE_MS),
        60,
        &["SampleCount", "Sum", "Minimum", "Maximum"],
    );
    assert_eq!(per_minute.len(), 5);
    for (m, dp) in per_minute.iter().enumerate() {
        let lo = (m * 60) as f64;
        assert_eq!(dp.timestamp, t0.add_millis(m as i64 * MINUTE_MS));
        assert_eq!(
            dp.values,
            vec![
                Some(60.0),
                Some((lo..lo + 60.0).step_by_sum()),
                Some(lo),
                Some(lo + 59.0)
            ]
        );
    }
    let five = query(
        &store,
        t0,
        t0.add_millis(5 * MINUTE_MS),
        300,
        &["SampleCount", "Average", "p100"],
    );
    assert_eq!(five.len(), 1);
    assert_eq!(five[0].values, vec![Some(300.0), Some(149.5), Some(299.0)]);
}

#[test]
fn queries_answer_extended_statistics_over_merged_windows() {
    // 1..=300 over five minutes: a 300 s period merges five minute windows; the extended
    // statistics come from the merged distribution, in the order asked, beside the others.
    let store = Store::new(4);
    let t0 = NOW.sub_millis(HOUR_MS).floor_to(5 * MINUTE_MS);
    let batch: Vec<_> = (1..=300)
        .map(|i| {
            (
                key(&[("Host", "a")]),
                obs(t0.add_millis((i - 1) * 1000), i as f64),
            )
        })
        .collect();
    store.record_batch(&batch);
    let names = [
        "TC(10%:90%)",
        "Sum",
        "PR(:60)",
        "TC(100:200)",
        "IQM",
        "tc50",
    ];
    let five = query(&store, t0, t0.add_millis(5 * MINUTE_MS), 300, &names);
    assert_eq!(five.len(), 1);
    let v = &five[0].values;
    // Ranks 31..=270; 1..=60 of 300; 101..=200; ranks 76..=225 average 150.5; ranks 1..=150.
    assert_eq!(
        v[..4],
        [Some(240.0), Some(45150.0), Some(20.0), Some(100.0)]
    );
    let iqm = v[4].unwrap();
    assert!((iqm - 150.5).abs() <= 1.505, "{iqm}");
    assert_eq!(v[5], Some(150.0));
    // Per minute, the first minute holds 1..=60.
    let first = &query(&store, t0, t0.add_millis(MINUTE_MS), 60, &names)[0].values;
    assert_eq!(first[0], Some(48.0));
    assert_eq!(first[2], Some(100.0));
}

trait StepSum {
    fn step_by_sum(self) -> f64;
}
impl StepSum for std::ops::Range<f64> {
    fn step_by_sum(self) -> f64 {
        let (a, b) = (self.start as i64, self.end as i64);
        (a..b).sum::<i64>() as f64
    }
}

#[test]
fn high_resolution_data_is_queryable_per_second_and_per_minute() {
    let store = Store::new(1);
    let t0 = NOW.sub_millis(10 * MINUTE_MS).floor_to(MINUTE_MS);
    let batch: Vec<_> = (0..60)
        .map(|i| {
            let mut o = obs(t0.add_millis(i * 1000), 1.0);
            o.resolution = Resolution::High;
            (key(&[("Host", "a")]), o)
        })
        .collect();
    store.record_batch(&batch);
    assert_eq!(
        query(&store, t0, t0.add_millis(MINUTE_MS), 1, &["SampleCount"]).len(),
        60
    );
    let tens = query(&store, t0, t0.add_millis(MINUTE_MS), 10, &["SampleCount"]);
    assert_eq!(tens.len(), 6);
    assert!(tens.iter().all(|d| d.values == vec![Some(10.0)]));
    let minute = query(&store, t0, t0.add_millis(MINUTE_MS), 60, &["Sum"]);
    assert_eq!(minute[0].values, vec![Some(60.0)]);
}

#[test]
fn units_are_aggregated_separately() {
    let store = Store::new(2);
    let t0 = NOW.sub_millis(HOUR_MS).floor_to(MINUTE_MS);
    let mut a = obs(t0, 10.0);
    a.unit = Unit::Percent;
    let mut b = obs(t0, 3.0);
    b.unit = Unit::Count;
    store.record_batch(&[(key(&[("Host", "a")]), a), (key(&[("Host", "a")]), b)]);
    let both = query(&store, t0, t0.add_millis(MINUTE_MS), 60, &["Sum"]);
    assert_eq!(both.len(), 2);
    let q = Query {
        key: key(&[("Host", "a")]),
        unit: Some(Unit::Count),
        start: t0,
        end: t0.add_millis(MINUTE_MS),
        period: Period::ONE_MINUTE,
        statistics: stats(&["Sum"]),
    };
    let counts = store.query(&q, NOW).unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[0].values, vec![Some(3.0)]);
    assert_eq!(counts[0].unit, Unit::Count);
}

#[test]
fn compaction_rolls_up_without_double_counting() {
    let store = Store::new(1);
    let t0 = NOW.sub_millis(20 * DAY_MS).floor_to(HOUR_MS);
    // Recorded while it was recent: 1-minute windows.
    let batch: Vec<_> = (0..120)
        .map(|i| (key(&[("Host", "a")]), obs(t0.add_millis(i * 30_000), 2.0)))
        .collect();
    store.record_batch(&batch);
    let before = query(
        &store,
        t0,
        t0.add_millis(HOUR_MS),
        3600,
        &["SampleCount", "Sum"],
    );
    let report = store.compact(NOW);
    assert_eq!(
        report.rolled_up, 60,
        "sixty 1-minute windows older than 15 days roll into 5-minute windows"
    );
    let after = query(
        &store,
        t0,
        t0.add_millis(HOUR_MS),
        3600,
        &["SampleCount", "Sum"],
    );
    assert_eq!(before, after);
    assert_eq!(after[0].values, vec![Some(120.0), Some(240.0)]);
    // 60-second periods are no longer available for 20-day-old data.
    assert!(query(&store, t0, t0.add_millis(HOUR_MS), 60, &["SampleCount"]).is_empty());
    // A second pass changes nothing.
    assert_eq!(store.compact(NOW).rolled_up, 0);
}

#[test]
fn old_data_expires_and_series_disappear() {
    let store = Store::new(1);
    store.record_batch(&[(key(&[("Host", "a")]), obs(NOW.sub_millis(DAY_MS), 1.0))]);
    assert_eq!(store.series_count(), 1);
    let far_future = NOW.add_millis(500 * DAY_MS);
    let r = store.compact(far_future);
    assert_eq!(r.series_removed, 1);
    assert_eq!(store.series_count(), 0);
}

#[test]
fn sealing_keeps_answers() {
    let store = Store::new(1);
    let t0 = NOW.sub_millis(HOUR_MS).floor_to(MINUTE_MS);
    let batch: Vec<_> = (0..600)
        .map(|i| {
            (
                key(&[("Host", "a")]),
                obs(t0.add_millis(i * 100), (i % 97) as f64),
            )
        })
        .collect();
    store.record_batch(&batch);
    let before = query(
        &store,
        t0,
        t0.add_millis(MINUTE_MS),
        60,
        &["p50", "p99", "Sum"],
    );
    assert!(store.compact(NOW).sealed >= 1);
    let after = query(
        &store,
        t0,
        t0.add_millis(MINUTE_MS),
        60,
        &["p50", "p99", "Sum"],
    );
    assert_eq!(before, after);
}

#[test]
fn list_and_matching() {
    let store = Store::new(3);
    for host in ["a", "b"] {
        store.record_batch(&[(key(&[("Host", host), ("AZ", "1")]), obs(NOW, 1.0))]);
    }
    store.record_batch(&[(key(&[("Host", "c")]), obs(NOW, 1.0))]);
    assert_eq!(store.list(Some("App"), None, NOW).len(), 3);
    assert_eq!(store.list(Some("Other"), None, NOW).len(), 0);
    assert_eq!(store.list(None, None, NOW.add_millis(15 * DAY_MS)).len(), 0);
    let wild = store.matching(
        "App",
        "Latency",
        &[Dimension::new("AZ", "1"), Dimension::new("Host", "*")],
    );
    assert_eq!(
        wild,
        vec![
            key(&[("Host", "a"), ("AZ", "1")]),
            key(&[("Host", "b"), ("AZ", "1")])
        ]
    );
}

#[test]
fn query_validation() {
    let store = Store::new(1);
    let mut q = Query {
        key: key(&[]),
        unit: None,
        start: NOW.sub_millis(DAY_MS * 2),
        end: NOW,
        period: Period::try_from_secs(7).unwrap(),
        statistics: stats(&["Sum"]),
    };
    assert_eq!(store.query(&q, NOW).unwrap_err().field, "period_seconds");
    q.period = Period::ONE_MINUTE;
    let err = store.query(&q, NOW).unwrap_err();
    assert_eq!(err.field, "period_seconds");
    assert!(err.rule.contains("1440"), "{err}");
    q.start = NOW.sub_millis(DAY_MS);
    assert!(
        store.query(&q, NOW).is_ok(),
        "exactly 1440 one-minute periods are allowed"
    );
    q.statistics.clear();
    assert_eq!(store.query(&q, NOW).unwrap_err().field, "statistics");
    q.statistics = stats(&["Sum"]);
    q.end = q.start;
    assert_eq!(store.query(&q, NOW).unwrap_err().field, "end_time");
}

#[test]
fn export_import_round_trip() {
    let store = Store::new(2);
    let t0 = NOW.sub_millis(HOUR_MS).floor_to(MINUTE_MS);
    let batch: Vec<_> = (0..100)
        .map(|i| {
            (
                key(&[("Host", "a")]),
                obs(t0.add_millis(i * 1000), i as f64 * 1.5),
            )
        })
        .collect();
    store.record_batch(&batch);
    let copy = Store::new(5);
    store.export_each(|s| copy.import(s));
    let names = ["SampleCount", "Sum", "Minimum", "Maximum", "p90"];
    assert_eq!(
        query(&store, t0, t0.add_millis(2 * MINUTE_MS), 60, &names),
        query(&copy, t0, t0.add_millis(2 * MINUTE_MS), 60, &names)
    );
}

#[test]
fn sequenced_records_apply_once_per_shard() {
    let store = Store::new(8);
    let t0 = NOW.sub_millis(HOUR_MS).floor_to(MINUTE_MS);
    let batch: Vec<_> = (0..50)
        .map(|i| (key(&[("Host", &format!("h{i}"))]), obs(t0, 1.0)))
        .collect();
    let (runs, observations) = as_runs(&batch);
    store.record_runs_seq(&runs, &observations, 1);
    // Replaying the same record (as after a snapshot that already holds it) changes nothing.
    store.record_runs_seq(&runs, &observations, 1);
    let total: f64 = store
        .list(None, None, NOW)
        .iter()
        .map(|k| {
            let q = Query {
                key: k.clone(),
                unit: None,
                start: t0,
                end: t0.add_millis(MINUTE_MS),
                period: Period::ONE_MINUTE,
                statistics: stats(&["SampleCount"]),
            };
            store.query(&q, NOW).unwrap()[0].values[0].unwrap()
        })
        .sum();
    assert_eq!(total, 50.0);
    let marks = store.watermarks();
    assert!(marks.iter().all(|&m| m <= 1) && marks.contains(&1));
    // A shard whose watermark is ahead skips the record; the others take it.
    let copy = Store::new(8);
    let mut ahead = vec![0; 8];
    ahead[0] = 5;
    copy.set_watermarks(&ahead).unwrap();
    copy.record_runs_seq(&runs, &observations, 2);
    let in_shard_0 = batch
        .iter()
        .filter(|(k, _)| stable_hash(k).is_multiple_of(8))
        .count();
    assert_eq!(copy.series_count(), 50 - in_shard_0);
    assert!(copy.set_watermarks(&[1, 2]).is_err());
}

#[test]
fn a_partitioned_store_compares_sequences_only_within_a_shard() {
    let t0 = NOW.sub_millis(HOUR_MS).floor_to(MINUTE_MS);
    let mut by_shard: Vec<Vec<(SeriesKey, Observation<'static>)>> = vec![Vec::new(); 2];
    for i in 0..40 {
        let k = key(&[("Host", &format!("h{i}"))]);
        by_shard[(stable_hash(&k) % 2) as usize].push((k, obs(t0, 1.0)));
    }
    let (high, high_obs) = as_runs(&by_shard[0]);
    let (low, low_obs) = as_runs(&by_shard[1]);
    for (store, wanted) in [
        (Store::partitioned(2), by_shard[0].len() + by_shard[1].len()),
        // A store with one log: a record older than one applied completely is taken as
        // already held.
        (Store::new(2), by_shard[0].len()),
    ] {
        // Shard 0's log is at 10 while shard 1's is still at 3.
        store.record_runs_seq(&high, &high_obs, 10);
        store.record_runs_seq(&low, &low_obs, 3);
        assert_eq!(store.series_count(), wanted);
    }
    let store = Store::partitioned(2);
    store.set_watermarks(&[10, 2]).unwrap();
    store.record_runs_seq(&low, &low_obs, 3);
    store.record_runs_seq(&high, &high_obs, 10);
    assert_eq!(store.series_count(), by_shard[1].len());
    assert_eq!(
        (store.shard_watermark(0), store.shard_watermark(1)),
        (10, 3)
    );
}

#[test]
fn shard_choice_is_stable() {
    // The shard of a key must not change between builds: snapshots store per-shard watermarks.
    assert_eq!(
        stable_hash(&key(&[("Host", "a")])),
        stable_hash(&key(&[("Host", "a")]))
    );
    let golden = stable_hash(&SeriesKey::new(
        "App",
        "Latency",
        vec![Dimension::new("Host", "a")],
    ));
    assert_eq!(
        golden, 0xab52_ed4b_7105_b599,
        "xxh3 of the canonical key bytes; changing it breaks snapshots"
    );
}

#[test]
fn series_counts_follow_creation_and_removal() {
    let store = Store::new(4);
    store.record_batch(&[
        (key(&[("Host", "a")]), obs(NOW, 1.0)),
        (key(&[("Host", "b")]), obs(NOW, 1.0)),
    ]);
    store.record_batch(&[(key(&[("Host", "a")]), obs(NOW, 2.0))]);
    let other = SeriesKey::new("Other", "M", vec![]);
    store.record_batch(&[(other, obs(NOW, 1.0))]);
    assert_eq!(store.series_count(), 3);
    assert_eq!(store.namespace_series_count("App"), 2);
    assert_eq!(store.namespace_series_count("Other"), 1);
    store.compact(NOW.add_millis(500 * DAY_MS));
    assert_eq!(store.series_count(), 0);
    assert_eq!(store.namespace_series_count("App"), 0);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// Recording a batch at once (runs of one series, runs of one window), as pairs or as runs,
    /// stores exactly what recording each observation on its own does, however series, units,
    /// resolutions and windows interleave.
    #[test]
    fn batches_store_what_single_observations_store(
        items in proptest::collection::vec(
            (0usize..3, 0i64..400, proptest::bool::ANY, proptest::bool::ANY, 0.0f64..1000.0),
            1..200,
        )
    ) {
        let keys: Vec<SeriesKey> = ["a", "b", "c"].iter().map(|h| key(&[("Host", h)])).collect();
        let batch: Vec<(SeriesKey, Observation<'static>)> = items
            .iter()
            .map(|&(s, secs, ms, high, v)| {
                let o = Observation {
                    timestamp: NOW.sub_millis(secs * 1000),
                    unit: if ms { Unit::Milliseconds } else { Unit::Seconds },
                    resolution: if high { Resolution::High } else { Resolution::Standard },
                    sample: Sample::Value(v),
                };
                (keys[s].clone(), o)
            })
            .collect();
        let (whole, single, by_runs) = (Store::new(4), Store::new(4), Store::new(4));
        whole.record_batch(&batch);
        for item in &batch {
            single.record_batch(std::slice::from_ref(item));
        }
        let (runs, observations) = as_runs(&batch);
        by_runs.record_runs_seq(&runs, &observations, 1);
        for k in &keys {
            for period in [1, 60] {
                let q = Query {
                    key: k.clone(),
                    unit: None,
                    start: NOW.sub_millis(500_000),
                    end: NOW.add_millis(1000),
                    period: Period::try_from_secs(period).unwrap(),
                    statistics: stats(&["SampleCount", "Sum", "Maximum", "p50"]),
                };
                proptest::prop_assert_eq!(whole.query(&q, NOW).unwrap(), single.query(&q, NOW).unwrap());
                proptest::prop_assert_eq!(by_runs.query(&q, NOW).unwrap(), single.query(&q, NOW).unwrap());
            }
        }
    }
}

proptest::proptest! {
    /// A stream's head window (its newest, kept outside the tier's map) is invisible from
    /// outside: whatever order windows are written in (newest, late, another tier, with
    /// compaction putting the head back in between), reads see exactly what one map per tier
    /// would hold, and the head always starts after every window of its tier's map.
    #[test]
    fn the_head_window_is_where_reads_expect_it(
        ops in proptest::collection::vec((0usize..4, 0i64..20, proptest::bool::ANY), 1..120)
    ) {
        let mut stream = Stream::default();
        let mut model: [BTreeMap<i64, f64>; 4] = Default::default();
        for (tier, start, settle) in ops {
            if settle {
                stream.settle();
            }
            let v = 1.0 + start as f64;
            stream.window_mut(tier, start).0.record(v);
            *model[tier].entry(start).or_default() += v;
            if let Some(h) = &stream.head {
                proptest::prop_assert!(stream.tier(h.tier).range(i64::MIN..i64::MAX).all(|(k, _)| k < h.start));
            }
        }
        for (tier, want) in model.iter().enumerate() {
            for (lo, hi) in [(i64::MIN, i64::MAX), (5, 12), (19, 20)] {
                let got: Vec<(i64, f64)> =
                    stream.range(tier, lo..hi).map(|(s, w)| (s, w.sum())).collect();
                let expected: Vec<(i64, f64)> =
                    want.range(lo..hi).map(|(&s, &v)| (s, v)).collect();
                proptest::prop_assert_eq!(got, expected);
            }
        }
        let all: Vec<(usize, i64)> = stream.windows().map(|(t, s, _)| (t, s)).collect();
        let expected: Vec<(usize, i64)> = model
            .iter()
            .enumerate()
            .flat_map(|(t, m)| m.keys().map(move |&s| (t, s)))
            .collect();
        proptest::prop_assert_eq!(all, expected);
        stream.settle();
        proptest::prop_assert!(stream.head.is_none());
        for (tier, want) in model.iter().enumerate() {
            let keys: Vec<i64> = stream.tier(tier).range(i64::MIN..i64::MAX).map(|(k, _)| k).collect();
            proptest::prop_assert_eq!(keys, want.keys().copied().collect::<Vec<_>>());
        }
    }
}

proptest::proptest! {
    /// Compaction leaves the head in place (sealing it there) unless it leaves its tier; the
    /// windows it keeps are those of compacting with the head put back into its map first
    /// (what it did before), after any writes and compactions, and a stream whose maps are
    /// empty holds none.
    #[test]
    fn compaction_with_the_head_in_place_keeps_the_same_windows(
        ops in proptest::collection::vec(
            (0usize..2, 0i64..(4 * DAY_MS / MINUTE_MS), 0i64..(2 * DAY_MS / MINUTE_MS), proptest::bool::ANY),
            1..80,
        )
    ) {
        let base = DAY_MS * 20_000;
        let (mut kept, mut settled) = (Stream::default(), Stream::default());
        let mut now = base;
        for (tier, minute, advance, compact) in ops {
            let start = (base + minute * MINUTE_MS).div_euclid(TIER_MS[tier]) * TIER_MS[tier];
            let v = 1.0 + minute as f64;
            kept.window_mut(tier, start).0.record(v);
            settled.window_mut(tier, start).0.record(v);
            if compact {
                now += advance * MINUTE_MS;
                let (mut a, mut b) = (CompactionReport::default(), CompactionReport::default());
                compact_stream(&mut kept, Timestamp(now), &mut a);
                settled.settle();
                compact_stream(&mut settled, Timestamp(now), &mut b);
                proptest::prop_assert_eq!(a, b);
            }
            if let Some(h) = &kept.head {
                proptest::prop_assert!(kept.tier(h.tier).range(i64::MIN..i64::MAX).all(|(k, _)| k < h.start));
            }
            let windows = |s: &Stream| -> Vec<(usize, i64, u64, u64, bool)> {
                s.windows()
                    .map(|(t, st, w)| (t, st, w.sum().to_bits(), w.sample_count().to_bits(), w.is_sealed()))
                    .collect()
            };
            proptest::prop_assert_eq!(windows(&kept), windows(&settled));
            if kept.tiers.is_some() {
                proptest::prop_assert!(kept.tiers.as_ref().unwrap().iter().any(|(_, m)| !m.is_empty()) || !compact);
            }
        }
    }
}

/// Issue 15, finding 8: extreme times, periods and ranges are errors naming the field, never
/// a panic or an allocation sized by the input, and the plan's cost is periods × statistics.
#[test]
fn regression_15_extreme_query_times_are_errors_naming_the_field() {
    let store = Store::new(1);
    store.record_batch(&[(key(&[]), obs(NOW.sub_millis(MINUTE_MS), 1.0))]);
    let q = |start: i64, end: i64, period: u32| Query {
        key: key(&[]),
        unit: None,
        start: Timestamp(start),
        end: Timestamp(end),
        period: Period::try_from_secs(period.into()).unwrap(),
        statistics: stats(&["Sum", "p99"]),
    };
    let now = NOW.as_millis();
    let max_period = u32::MAX - u32::MAX % 60;
    for (start, end, period, field) in [
        (i64::MIN, now, 60, "start_time"),
        (i64::MIN + 1, i64::MIN + 2, 60, "start_time"),
        (now - 3_600_000, i64::MAX, 60, "end_time"),
        (i64::MIN, i64::MAX, max_period, "start_time"),
        (Timestamp::EARLIEST.as_millis() - 1, now, 60, "start_time"),
        (now, Timestamp::LATEST.as_millis() + 1, 60, "end_time"),
        // Inverted and empty ranges.
        (now, now - 1, 60, "end_time"),
        (i64::MAX, i64::MIN, 60, "start_time"),
        (now, now, 60, "end_time"),
        // The whole representable range: far too many periods of any allowed length but
        // the longest.
        (
            Timestamp::EARLIEST.as_millis(),
            Timestamp::LATEST.as_millis(),
            60,
            "period_seconds",
        ),
        (
            Timestamp::EARLIEST.as_millis(),
            Timestamp::LATEST.as_millis(),
            1,
            "period_seconds",
        ),
    ] {
        let err = store.query(&q(start, end, period), NOW).unwrap_err();
        assert_eq!(err.field, field, "{start}..{end} / {period}: {err}");
    }
    // The longest period CloudWatch's rules allow covers the whole range in 74 buckets.
    let whole = q(
        Timestamp::EARLIEST.as_millis(),
        Timestamp::LATEST.as_millis(),
        max_period,
    );
    let plan = whole.plan(NOW).unwrap();
    assert_eq!(plan.buckets, 74);
    assert_eq!(plan.cost, 74 * 2);
    let dps = store.query(&whole, NOW).unwrap();
    assert_eq!(dps.len(), 1);
    assert_eq!(dps[0].sample_count, 1.0);
    // A query at either end of the range is answered (empty: there is no data there).
    for (start, end) in [
        (
            Timestamp::EARLIEST.as_millis(),
            Timestamp::EARLIEST.as_millis() + 60_000,
        ),
        (
            Timestamp::LATEST.as_millis() - 60_000,
            Timestamp::LATEST.as_millis(),
        ),
    ] {
        assert_eq!(store.query(&q(start, end, 60), NOW), Ok(Vec::new()));
    }
    // Clocks at the extremes do not overflow the age used for alignment.
    for now in [Timestamp(i64::MIN), Timestamp(i64::MAX)] {
        assert!(store.query(&q(0, 60_000, 60), now).is_ok());
    }
    assert_eq!(q(0, 86_400_000, 60).plan(NOW).unwrap().cost, 1440 * 2);
}

// === series weight and paged listing (issue 15, finding 7) ===

/// The running weight of every series equals what weighing them from scratch says, through
/// writes (new series, new windows, growing distributions), compaction and expiry.
#[test]
fn series_bytes_follow_writes_compaction_and_expiry() {
    let store = Store::new(4);
    assert_eq!(store.series_bytes(), 0);
    let from_scratch = |store: &Store| -> usize {
        (0..store.shards.len())
            .map(|i| {
                let shard = store.lock(i);
                shard.series.iter().map(|(k, s)| s.weigh(k)).sum::<usize>()
            })
            .sum()
    };
    let big = SeriesKey::new(
        "App",
        "Latency",
        vec![Dimension::new("Host", "h".repeat(1024))],
    );
    let mut batch = Vec::new();
    for i in 0..500 {
        let ts = NOW.sub_millis(3 * HOUR_MS).add_millis(i * 20_000);
        batch.push((key(&[("Host", "a")]), obs(ts, i as f64 * 1.7)));
        batch.push((big.clone(), obs(ts, (i * i) as f64)));
    }
    store.record_batch(&batch);
    assert_eq!(store.series_bytes(), from_scratch(&store));
    assert!(
        store.series_bytes() >= big.weight() + key(&[("Host", "a")]).weight() + 1024,
        "{}",
        store.series_bytes()
    );
    assert!(store.series_bytes() >= store.window_heap_bytes());
    let before = store.series_bytes();
    store.compact(NOW);
    assert_eq!(store.series_bytes(), from_scratch(&store));
    assert!(store.series_bytes() <= before, "sealing does not grow");
    // Everything expires: nothing is left, and nothing is counted.
    store.compact(NOW.add_millis(500 * DAY_MS));
    assert_eq!(store.series_count(), 0);
    assert_eq!(store.series_bytes(), 0);
}

/// A series with the largest dimensions CloudWatch allows weighs what it holds, so that a
/// byte limit sees it.
#[test]
fn new_series_bytes_weigh_the_key() {
    let small = key(&[("Host", "a")]);
    let large = SeriesKey::new(
        "App",
        "Latency",
        (0..30)
            .map(|i| Dimension::new(format!("d{i}"), "v".repeat(1024)))
            .collect(),
    );
    assert!(Store::new_series_bytes(&large) > 30 * 1024);
    assert!(Store::new_series_bytes(&small) < 2048);
    let store = Store::new(2);
    store.record_batch(&[(large.clone(), obs(NOW, 1.0))]);
    assert!(store.series_bytes() >= large.weight());
}

fn listed_keys(n: usize) -> (Store, Vec<SeriesKey>) {
    let store = Store::new(8);
    let mut keys = Vec::new();
    for i in 0..n {
        let ns = if i % 3 == 0 { "B" } else { "A" };
        let k = SeriesKey::new(
            ns,
            format!("m{}", i % 5),
            vec![Dimension::new("Host", format!("h{i}"))],
        );
        keys.push(k.clone());
        store.record_batch(&[(k, obs(NOW, 1.0))]);
    }
    (store, keys)
}

fn page_all(
    store: &Store,
    filter: ListFilter<'_>,
    per_page: usize,
    max_bytes: usize,
) -> Vec<Vec<SeriesKey>> {
    let mut pages = Vec::new();
    let mut cursor: Option<ListCursor> = None;
    loop {
        let page = store.list_page(filter, NOW, cursor.as_ref(), per_page, max_bytes);
        assert!(page.keys.len() <= per_page);
        pages.push(page.keys);
        match page.next {
            // Through the token, as a client sees it.
            Some(c) => cursor = Some(ListCursor::from_token(&c.to_token()).unwrap()),
            None => return pages,
        }
        assert!(pages.len() < 10_000, "paging does not end");
    }
}

#[test]
fn paging_lists_each_series_exactly_once_in_a_stable_order() {
    let (store, mut keys) = listed_keys(1234);
    let pages = page_all(&store, ListFilter::default(), 100, usize::MAX);
    assert_eq!(pages.len(), 13);
    let flat: Vec<SeriesKey> = pages.concat();
    assert_eq!(flat.len(), keys.len());
    let mut sorted = flat.clone();
    sorted.sort_unstable_by(list_order);
    assert_eq!(flat, sorted, "pages come in list order");
    sorted.sort();
    keys.sort();
    assert_eq!(sorted, keys, "each series exactly once");
    // A filter pages through its own series only.
    let a = page_all(
        &store,
        ListFilter {
            namespace: Some("A"),
            metric_name: Some("m1"),
            active_since: None,
        },
        7,
        usize::MAX,
    )
    .concat();
    let want = keys
        .iter()
        .filter(|k| k.namespace() == "A" && k.metric_name() == "m1")
        .count();
    assert_eq!(a.len(), want);
    assert!(
        a.iter()
            .all(|k| k.namespace() == "A" && k.metric_name() == "m1")
    );
    // A byte budget cuts pages shorter, never to nothing.
    let small = page_all(&store, ListFilter::default(), 500, 1).concat();
    assert_eq!(small.len(), keys.len());
}

/// Keys whose (namespace, metric name, hash) collide are still each listed once: the cursor
/// counts those it has passed. (A collision is forced here by paging one key at a time
/// through keys that tie on everything the cursor's position compares but the hash, which
/// the test makes equal by comparing positions directly.)
#[test]
fn cursors_skip_exactly_the_ties_they_passed() {
    let (store, _) = listed_keys(50);
    let first = store.list_page(ListFilter::default(), NOW, None, 3, usize::MAX);
    let next = first.next.unwrap();
    assert_eq!(next.skip, 1, "{next:?}");
    let last = first.keys.last().unwrap();
    assert_eq!(next.position(last), std::cmp::Ordering::Equal);
    // A cursor claiming two keys at that position were passed skips one more.
    let more = ListCursor {
        skip: 2,
        ..next.clone()
    };
    let a = store.list_page(ListFilter::default(), NOW, Some(&next), 1, usize::MAX);
    let b = store.list_page(ListFilter::default(), NOW, Some(&more), 1, usize::MAX);
    assert_eq!(a.keys, b.keys, "no second key at that position to skip");
}

#[test]
fn bad_tokens_are_refused_with_a_bounded_quote() {
    for token in ["", "1.", "1.zz", "2.00", "1.0", &"1.".repeat(100_000)] {
        let e = ListCursor::from_token(token).unwrap_err().to_string();
        assert!(e.contains("next_token"), "{e}");
        assert!(e.len() < 300, "{}", e.len());
    }
    let c = ListCursor {
        namespace: "n".repeat(255),
        metric_name: "m".repeat(255),
        hash: u64::MAX,
        skip: 3,
    };
    let t = c.to_token();
    assert!(t.len() <= ListCursor::MAX_TOKEN_LEN);
    assert_eq!(ListCursor::from_token(&t).unwrap(), c);
}

#[test]
fn a_stream_end_is_noted_for_held_series_only_and_keeps_the_newest() {
    let store = Store::new(2);
    let held = key(&[("host", "a")]);
    let absent = key(&[("host", "b")]);
    store.record_batch(&[(held.clone(), obs(NOW, 1.0))]);
    store.mark_ended(&absent, NOW);
    assert_eq!(store.ended_at(&absent), None, "no series, nothing to end");
    store.mark_ended(&held, NOW.add_millis(5_000));
    store.mark_ended(&held, NOW.add_millis(1_000));
    assert_eq!(store.ended_at(&held), Some(NOW.add_millis(5_000)));
    // Forgotten with the series: compaction long after the last window.
    store.compact(NOW.add_millis(500 * DAY_MS));
    assert!(!store.contains(&held));
    assert_eq!(store.ended_at(&held), None);
}

/// The other node, in-process, as a store holding the shards `ours` sees it (the port's
/// contract with the network left out; tests/it/cluster.rs runs the real one over NATS).
#[derive(Debug)]
struct OtherNode {
    store: std::sync::Arc<Store>,
    ours: Vec<usize>,
}

impl RemoteShards for OtherNode {
    fn is_local(&self, shard: usize) -> bool {
        self.ours.contains(&shard)
    }

    fn windows(
        &self,
        _shard: usize,
        key: &SeriesKey,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Option<SeriesExport>, String> {
        Ok(self.store.export_range(key, from, to, None, usize::MAX))
    }

    fn keys(&self, request: &KeysRequest) -> Vec<SeriesKey> {
        self.store.local_keys(request)
    }
}

#[test]
fn a_store_holding_some_shards_reads_the_others_through_the_port_as_if_it_held_them() {
    let (whole, keys) = listed_keys(60);
    let t0 = NOW.sub_millis(HOUR_MS).floor_to(MINUTE_MS);
    // Two nodes: each has every series' data (as after an ownership move) but answers only
    // for the shards it holds; a third copy holds everything.
    let mine = std::sync::Arc::new(Store::partitioned(8));
    let theirs = std::sync::Arc::new(Store::partitioned(8));
    for (i, k) in keys.iter().enumerate() {
        for store in [&*mine, &*theirs, &whole] {
            store.record_batch(&[(k.clone(), obs(t0, i as f64)), (k.clone(), obs(t0, 1.0))]);
        }
    }
    // Stale data in a shard this node does not hold must not show.
    let stale = SeriesKey::new("A", "m0", vec![Dimension::new("Host", "gone")]);
    let stale_shard = (stable_hash(&stale) % 8) as usize;
    mine.record_batch(&[(stale.clone(), obs(NOW, 1.0))]);
    let held: Vec<usize> = (0..8).filter(|s| s % 3 == 0 && *s != stale_shard).collect();
    let other: Vec<usize> = (0..8).filter(|s| !held.contains(s)).collect();
    theirs.set_remote(std::sync::Arc::new(OtherNode {
        store: std::sync::Arc::clone(&mine),
        ours: other,
    }));
    mine.set_remote(std::sync::Arc::new(OtherNode {
        store: std::sync::Arc::clone(&theirs),
        ours: held,
    }));
    assert_eq!(mine.list(None, None, NOW), whole.list(None, None, NOW));
    assert!(!mine.list(None, None, NOW).contains(&stale));
    let dims = [Dimension::new("Host", "*")];
    assert_eq!(
        mine.matching("A", "m1", &dims),
        whole.matching("A", "m1", &dims)
    );
    for per_page in [1, 7, 100] {
        assert_eq!(
            page_all(&mine, ListFilter::default(), per_page, usize::MAX),
            page_all(&whole, ListFilter::default(), per_page, usize::MAX),
            "{per_page} per page"
        );
    }
    for k in &keys {
        let q = Query {
            key: k.clone(),
            unit: None,
            start: t0,
            end: t0.add_millis(MINUTE_MS),
            period: Period::ONE_MINUTE,
            statistics: stats(&["SampleCount", "Sum", "p50"]),
        };
        assert_eq!(mine.query(&q, NOW).unwrap(), whole.query(&q, NOW).unwrap());
    }
}

#[test]
fn another_nodes_listing_request_cannot_ask_for_an_unbounded_page() {
    let (store, keys) = listed_keys(700);
    for max_records in [0, 1, usize::MAX] {
        let got = store.local_keys(&KeysRequest::Page {
            namespace: None,
            metric_name: None,
            active_since: None,
            now: NOW,
            after: Some("not a token".into()),
            max_records,
            max_bytes: usize::MAX,
        });
        assert!(got.is_empty(), "a bad cursor lists nothing");
        let got = store.local_keys(&KeysRequest::Page {
            namespace: None,
            metric_name: None,
            active_since: None,
            now: NOW,
            after: None,
            max_records,
            max_bytes: usize::MAX,
        });
        assert_eq!(
            got.len(),
            max_records.clamp(1, LIST_MAX_RECORDS + 1).min(keys.len())
        );
    }
}
