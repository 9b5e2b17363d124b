//! Query latency: the p99 of one series over the last 24 hours, from a `Store` holding a day of
//! that series at one sample per second (86,400 samples, values uniform in [0, 100)).
//!
//! Windows are compacted as the server's maintenance loop leaves them at `now`: standard
//! resolution gives 1,440 sealed 60-second windows (the newest two still open); high
//! resolution keeps the last 3 hours in 1-second windows (10,800) and rolls the older 21
//! hours into 60-second ones. Four queries, all through `Store::query` as both
//! `GET /api/v1/statistics` and `GetMetricStatistics` do:
//!
//! - `p99_24h_one_period`: one datapoint, period 86,400 s (merges every window of the day);
//! - `p99_24h_1440_periods`: period 60 s, 1,440 datapoints (the most one query may return);
//! - the same two over the high-resolution series.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use thermostat_metrics::{
    Dimension, Observation, Period, Query, Resolution, Sample, SeriesKey, Statistic, Store,
    Timestamp, Unit,
};

/// A day boundary, so the 24-hour period is one aligned bucket.
const NOW_MS: i64 = 1_700_006_400_000;
const DAY_S: i64 = 86_400;

fn key(resolution: &str) -> SeriesKey {
    SeriesKey::new(
        "Bench/Query",
        "Latency",
        vec![Dimension::new("Resolution", resolution)],
    )
}

fn day_of_data(store: &Store, key: &SeriesKey, resolution: Resolution) {
    let mut rng = StdRng::seed_from_u64(5);
    let samples: Vec<(SeriesKey, Observation<'_>)> = (0..DAY_S)
        .map(|s| {
            let obs = Observation {
                timestamp: Timestamp(NOW_MS - (DAY_S - s) * 1000),
                unit: Unit::Milliseconds,
                resolution,
                sample: Sample::Value(rng.random_range(0.0..100.0)),
            };
            (key.clone(), obs)
        })
        .collect();
    for chunk in samples.chunks(1000) {
        store.record_batch(chunk);
    }
}

fn p99_query(key: &SeriesKey, period_s: i64) -> Query {
    Query {
        key: key.clone(),
        unit: None,
        start: Timestamp(NOW_MS - DAY_S * 1000),
        end: Timestamp(NOW_MS),
        period: Period::try_from_secs(period_s)
            .unwrap_or_else(|e| panic!("{period_s} s is a period: {e}")),
        statistics: vec![
            "p99"
                .parse::<Statistic>()
                .unwrap_or_else(|e| panic!("p99 is a statistic: {e}")),
        ],
    }
}

fn query(c: &mut Criterion) {
    let store = Store::default();
    let (standard, high) = (key("standard"), key("high"));
    day_of_data(&store, &standard, Resolution::Standard);
    day_of_data(&store, &high, Resolution::High);
    let now = Timestamp(NOW_MS);
    store.compact(now);

    let mut g = c.benchmark_group("query");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for (label, k) in [("", &standard), ("_high_resolution", &high)] {
        for (name, period_s, points) in [
            ("p99_24h_one_period", DAY_S, 1),
            ("p99_24h_1440_periods", 60, 1440),
        ] {
            let q = p99_query(k, period_s);
            let dps = store
                .query(&q, now)
                .unwrap_or_else(|e| panic!("the query is valid: {e}"));
            assert_eq!(dps.len(), points, "{name}{label}");
            let total: f64 = dps.iter().map(|d| d.sample_count).sum();
            assert_eq!(total, DAY_S as f64, "{name}{label}: every sample counted");
            assert!(dps.iter().all(|d| d.values[0].is_some()));
            g.bench_function(format!("{name}{label}"), |b| {
                b.iter(|| store.query(black_box(&q), now))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, query);
criterion_main!(benches);
