//! Aggregation throughput of the metrics core: recording into a `Window` and into the sharded
//! `Store`, sealing a window, and percentile queries over a sealed window.

use std::hash::{BuildHasher as _, RandomState};
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use thermostat_benches::{Workload, WorkloadSpec};
use thermostat_metrics::{
    Observation, Resolution, Sample, SeriesKey, Store, Timestamp, Unit, Window,
};

/// Values recorded per window iteration.
const VALUES: usize = 10_000;
/// Series in the store benches, pushed in batches of [`BATCH`].
const SERIES: usize = 10_000;
const BATCH: usize = 1000;
const NOW_MS: i64 = 1_700_000_000_000;

fn values(n: usize) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(1);
    (0..n).map(|_| rng.random_range(0.0..100.0)).collect()
}

fn filled_window(n: usize) -> Window {
    let mut w = Window::new();
    values(n).into_iter().for_each(|v| w.record(v));
    w
}

fn window(c: &mut Criterion) {
    let vs = values(VALUES);
    let counts: Vec<f64> = (0..VALUES).map(|i| (i % 5 + 1) as f64).collect();
    let mut g = c.benchmark_group("window");
    g.measurement_time(Duration::from_secs(3)).sample_size(20);
    g.throughput(Throughput::Elements(VALUES as u64));
    g.bench_function("record_value", |b| {
        b.iter(|| {
            let mut w = Window::new();
            vs.iter().for_each(|&v| w.record(black_box(v)));
            w
        })
    });
    // Throughput counts (value, count) pairs, not the observations they stand for.
    g.bench_function("record_values_counts", |b| {
        b.iter(|| {
            let mut w = Window::new();
            vs.iter()
                .zip(&counts)
                .for_each(|(&v, &n)| w.record_n(black_box(v), n));
            w
        })
    });
    g.finish();
}

fn store(c: &mut Criterion) {
    let workload = Workload::new(
        WorkloadSpec {
            series: SERIES,
            samples_per_series: 1,
            batch: BATCH,
            ..WorkloadSpec::default()
        },
        NOW_MS,
    )
    .unwrap_or_else(|e| panic!("the bench workload is valid: {e}"));
    let keys: Vec<SeriesKey> = (0..SERIES).map(|s| workload.series_key(s)).collect();
    let vs = values(SERIES);
    let batches: Vec<Vec<(SeriesKey, Observation<'_>)>> = keys
        .chunks(BATCH)
        .zip(vs.chunks(BATCH))
        .map(|(ks, vs)| {
            ks.iter()
                .zip(vs)
                .map(|(k, &v)| {
                    let obs = Observation {
                        timestamp: Timestamp::from_millis(NOW_MS),
                        unit: Unit::Percent,
                        resolution: Resolution::Standard,
                        sample: Sample::Value(v),
                    };
                    (k.clone(), obs)
                })
                .collect()
        })
        .collect();
    let record_all = |store: &Store, batches: &[Vec<(SeriesKey, Observation<'_>)>]| {
        batches.iter().for_each(|b| store.record_batch(b))
    };
    // The same series one second later: same 60-second window, so nothing accumulates across
    // iterations beyond the second sample.
    let later: Vec<Vec<(SeriesKey, Observation<'_>)>> = batches
        .iter()
        .map(|b| {
            b.iter()
                .map(|(k, o)| {
                    let mut o = *o;
                    o.timestamp = o.timestamp.add_millis(1000);
                    (k.clone(), o)
                })
                .collect()
        })
        .collect();

    let mut g = c.benchmark_group("store_record_batch");
    g.measurement_time(Duration::from_secs(4)).sample_size(20);
    g.throughput(Throughput::Elements(SERIES as u64));
    // Every series is new: key clone, map insert and a fresh window per sample.
    g.bench_function("10k_new_series", |b| {
        b.iter_batched(
            || Store::new(64),
            |store| {
                record_all(&store, &batches);
                store
            },
            BatchSize::PerIteration,
        )
    });
    // Steady state: every series and its current window exist already (set up untimed).
    g.bench_function("10k_existing_series", |b| {
        b.iter_batched(
            || {
                let store = Store::new(64);
                record_all(&store, &batches);
                store
            },
            |store| {
                record_all(&store, &later);
                store
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();

    // What the store pays per sample just to find the series: SipHash of the whole key (the
    // store hashes each key twice: once for the shard, once in the shard's map).
    let hasher = RandomState::new();
    let mut g = c.benchmark_group("series_key");
    g.measurement_time(Duration::from_secs(3)).sample_size(20);
    g.throughput(Throughput::Elements(SERIES as u64));
    g.bench_function("hash_10k", |b| {
        b.iter(|| {
            keys.iter()
                .map(|k| hasher.hash_one(k))
                .fold(0, u64::wrapping_add)
        })
    });
    g.finish();
}

fn seal_and_query(c: &mut Criterion) {
    let mut g = c.benchmark_group("seal");
    g.measurement_time(Duration::from_secs(3)).sample_size(20);
    // A standard-resolution minute of a 1 Hz series: 60 raw values.
    let minute = filled_window(60);
    g.bench_function("raw_60_values", |b| {
        b.iter_batched_ref(|| minute.clone(), Window::seal, BatchSize::SmallInput)
    });
    let big = filled_window(VALUES);
    g.bench_function("histogram_10k_values", |b| {
        b.iter_batched_ref(|| big.clone(), Window::seal, BatchSize::SmallInput)
    });
    g.finish();

    let ranks = [50.0, 90.0, 99.0, 99.9];
    let mut sealed = big.clone();
    sealed.seal();
    let mut sealed_minute = minute.clone();
    sealed_minute.seal();
    let mut g = c.benchmark_group("percentiles");
    g.measurement_time(Duration::from_secs(3)).sample_size(20);
    g.bench_function("p50_p90_p99_p99.9_sealed_10k", |b| {
        b.iter(|| sealed.percentiles(black_box(&ranks)))
    });
    g.bench_function("p50_p90_p99_p99.9_sealed_60", |b| {
        b.iter(|| sealed_minute.percentiles(black_box(&ranks)))
    });
    g.bench_function("p50_p90_p99_p99.9_open_10k", |b| {
        b.iter(|| big.percentiles(black_box(&ranks)))
    });
    g.finish();
}

criterion_group!(benches, window, store, seal_and_query);
criterion_main!(benches);
