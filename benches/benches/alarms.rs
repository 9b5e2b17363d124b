//! Alarm evaluation throughput: one `thermostat_alarms::tick` over 100,000 alarms and
//! 100,000 series in a `thermostat_metrics::Store`, on one core (issue 8's goal: every alarm
//! within one 10-second tick).
//!
//! The store holds 10,000 hosts × 10 metrics (the comparison's fleet layout), each series
//! with a sample every 10 s over the last 6 minutes (36 samples in six 60-second windows,
//! sealed as the server's maintenance loop would). Every alarm is a standard one: 60-second
//! period, 3 of 3 datapoints, so each evaluation queries 5 periods (the default evaluation
//! range). Three sets:
//!
//! - `100k_alarms_average`: one alarm per series, `Average > 90` (every alarm stays OK);
//! - `100k_alarms_p99`: the same with `p99`, which needs the windows' distributions;
//! - `10_per_series_alarms_100k_instances`: ten alarms with `Host: "*"`, one per metric, so
//!   100,000 instances found through `Store::matching`.
//!
//! - `10k_math_alarms_two_metrics` (issue 22): 10,000 metric-math alarms, one per host,
//!   `m1 / m2 * 100 > 90` over two of the host's metrics (`Average` each), so every
//!   evaluation queries two series and evaluates the expression over 5 periods.
//!
//! The measured tick is the steady state: a first, untimed tick creates the instances and
//! their INSUFFICIENT_DATA → OK transitions; every timed tick evaluates all 100,000 again
//! at the same `now` (a minute boundary, so every alarm is due). Criterion's throughput is
//! alarms evaluated per second.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use thermostat_alarms::{AlarmSet, EngineState};
use thermostat_benches::workload::HOST_METRICS;
use thermostat_benches::{Layout, Order, Workload, WorkloadSpec};
use thermostat_metrics::{Observation, Resolution, Sample, SeriesKey, Store, Timestamp, Unit};

const HOSTS: usize = 10_000;
const METRICS: usize = HOST_METRICS.len();
const SERIES: usize = HOSTS * METRICS;
/// A minute boundary: every 60-second alarm is due.
const NOW_MS: i64 = 1_700_000_040_000;
const NAMESPACE: &str = "Bench/Alarms";
/// Samples per series, 10 s apart, ending 1 s before now.
const SAMPLES: i64 = 36;

fn workload() -> Workload {
    workload_of(SERIES)
}

fn workload_of(series: usize) -> Workload {
    Workload::new(
        WorkloadSpec {
            namespace: NAMESPACE.to_owned(),
            series,
            samples_per_series: 1,
            batch: 1000,
            seed: 0,
            layout: Layout::Hosts { metrics: METRICS },
            order: Order::Time,
        },
        NOW_MS,
    )
    .unwrap_or_else(|e| panic!("the bench workload is valid: {e}"))
}

fn store(keys: &[SeriesKey]) -> Store {
    let store = Store::default();
    let mut rng = StdRng::seed_from_u64(3);
    for j in 0..SAMPLES {
        let ts = Timestamp(NOW_MS - 1000 - (SAMPLES - 1 - j) * 10_000);
        for chunk in keys.chunks(10_000) {
            let batch: Vec<(SeriesKey, Observation<'_>)> = chunk
                .iter()
                .map(|k| {
                    let obs = Observation {
                        timestamp: ts,
                        unit: Unit::Percent,
                        resolution: Resolution::Standard,
                        sample: Sample::Value(rng.random_range(0.0..100.0)),
                    };
                    (k.clone(), obs)
                })
                .collect();
            store.record_batch(&batch);
        }
    }
    // Seal what the maintenance loop would have sealed by now.
    store.compact(Timestamp(NOW_MS));
    store
}

fn alarm_yaml(name: &str, metric: &str, host: &str, statistic: &str) -> String {
    format!(
        "  - {{name: {name}, namespace: {NAMESPACE}, metric_name: {metric}, \
         dimensions: {{Host: \"{host}\"}}, statistic: {statistic}, period_seconds: 60, \
         evaluation_periods: 3, threshold: 90, comparison_operator: GreaterThanThreshold}}\n"
    )
}

fn one_per_series(keys: &[SeriesKey], statistic: &str) -> AlarmSet {
    let mut yaml = String::from("alarms:\n");
    for (s, k) in keys.iter().enumerate() {
        let host = k.dimension("Host").unwrap_or_default();
        yaml.push_str(&alarm_yaml(
            &format!("alarm-{s:06}"),
            k.metric_name(),
            host,
            statistic,
        ));
    }
    validated(yaml)
}

fn per_series() -> AlarmSet {
    let mut yaml = String::from("alarms:\n");
    for m in HOST_METRICS {
        yaml.push_str(&alarm_yaml(&format!("high-{m}"), m, "*", "Average"));
    }
    validated(yaml)
}

/// One math alarm per host over its first two metrics.
fn math_alarms(keys: &[SeriesKey]) -> AlarmSet {
    let mut yaml = String::from("alarms:\n");
    let (m1, m2) = (HOST_METRICS[0], HOST_METRICS[1]);
    for (h, k) in keys.iter().step_by(METRICS).enumerate() {
        let host = k.dimension("Host").unwrap_or_default();
        let stat = |m: &str| {
            format!(
                "{{namespace: {NAMESPACE}, metric_name: {m}, dimensions: {{Host: \"{host}\"}}, \
                 period_seconds: 60, statistic: Average}}"
            )
        };
        yaml.push_str(&format!(
            "  - name: ratio-{h:05}\n    evaluation_periods: 3\n    threshold: 90\n    \
             comparison_operator: GreaterThanThreshold\n    metrics:\n      \
             - {{id: m1, metric_stat: {}, return_data: false}}\n      \
             - {{id: m2, metric_stat: {}, return_data: false}}\n      \
             - {{id: e1, expression: \"m1 / m2 * 100\", return_data: true}}\n",
            stat(m1),
            stat(m2)
        ));
    }
    validated(yaml)
}

/// Validates `yaml` (`alarms:` and its items) as files of at most [`ALARMS_PER_FILE`] alarms
/// each, as an operator splits a large set: one file may hold at most 16 MiB.
fn validated(yaml: String) -> AlarmSet {
    let body = yaml.strip_prefix("alarms:\n").expect("an alarm list");
    let items: Vec<&str> = body
        .split_inclusive('\n')
        .fold(Vec::<(usize, usize)>::new(), |mut spans, line| {
            let start = spans.last().map_or(0, |&(_, end)| end);
            match spans.last_mut() {
                Some(last) if !line.starts_with("  - ") => last.1 += line.len(),
                _ => spans.push((start, start + line.len())),
            }
            spans
        })
        .into_iter()
        .map(|(a, b)| &body[a..b])
        .collect();
    let files: Vec<(String, String)> = items
        .chunks(ALARMS_PER_FILE)
        .enumerate()
        .map(|(i, chunk)| {
            (
                format!("bench-{i:03}.yaml"),
                format!("alarms:\n{}", chunk.concat()),
            )
        })
        .collect();
    thermostat_alarms::validate(&files)
        .unwrap_or_else(|e| panic!("the bench alarms are valid: {e}"))
}

/// Alarms per generated file (about 2 MiB of YAML).
const ALARMS_PER_FILE: usize = 10_000;

fn tick(c: &mut Criterion) {
    let w = workload();
    let keys: Vec<SeriesKey> = (0..SERIES).map(|s| w.series_key(s)).collect();
    let store = store(&keys);
    let now = Timestamp(NOW_MS);
    let sets = [
        ("100k_alarms_average", one_per_series(&keys, "Average")),
        ("100k_alarms_p99", one_per_series(&keys, "p99")),
        ("10_per_series_alarms_100k_instances", per_series()),
    ];

    let mut g = c.benchmark_group("alarm_tick");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15));
    g.throughput(Throughput::Elements(SERIES as u64));
    for (name, set) in &sets {
        let mut state = EngineState::new(set, now, None);
        let first = thermostat_alarms::tick(set, &mut state, &store, now)
            .unwrap_or_else(|e| panic!("{name}: the first tick fails: {e}"));
        assert_eq!(
            first.evaluations, SERIES,
            "{name}: every alarm is evaluated"
        );
        g.bench_function(*name, |b| {
            b.iter(|| {
                let out = thermostat_alarms::tick(set, &mut state, &store, black_box(now))
                    .unwrap_or_else(|e| panic!("{name}: a tick fails: {e}"));
                assert_eq!(out.evaluations, SERIES);
                out
            })
        });
    }
    g.finish();

    let math = math_alarms(&keys);
    let alarms = math.alarms.len();
    let mut g = c.benchmark_group("math_alarm_tick");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(alarms as u64));
    let mut state = EngineState::new(&math, now, None);
    let first = thermostat_alarms::tick(&math, &mut state, &store, now)
        .unwrap_or_else(|e| panic!("math alarms: the first tick fails: {e}"));
    assert_eq!(first.evaluations, alarms, "every math alarm is evaluated");
    g.bench_function("10k_math_alarms_two_metrics", |b| {
        b.iter(|| {
            let out = thermostat_alarms::tick(&math, &mut state, &store, black_box(now))
                .unwrap_or_else(|e| panic!("math alarms: a tick fails: {e}"));
            assert_eq!(out.evaluations, alarms);
            out
        })
    });
    g.finish();
}

/// With `THERMOSTAT_BENCH_1M_ALARMS=1` (issue 23's growth figure; several GB and minutes,
/// so not by default): one tick of 1,000,000 `Average` alarms, one per series of 100,000
/// hosts × 10 metrics, laid out as above.
fn tick_1m(c: &mut Criterion) {
    if std::env::var_os("THERMOSTAT_BENCH_1M_ALARMS").is_none() {
        return;
    }
    let series = 10 * SERIES;
    let w = workload_of(series);
    let keys: Vec<SeriesKey> = (0..series).map(|s| w.series_key(s)).collect();
    let store = store(&keys);
    let now = Timestamp(NOW_MS);
    let set = one_per_series(&keys, "Average");
    let mut g = c.benchmark_group("alarm_tick_1m");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(60));
    g.throughput(Throughput::Elements(series as u64));
    let mut state = EngineState::new(&set, now, None);
    let first = thermostat_alarms::tick(&set, &mut state, &store, now)
        .unwrap_or_else(|e| panic!("1m alarms: the first tick fails: {e}"));
    assert_eq!(first.evaluations, series, "every alarm is evaluated");
    g.bench_function("1m_alarms_average", |b| {
        b.iter(|| {
            let out = thermostat_alarms::tick(&set, &mut state, &store, black_box(now))
                .unwrap_or_else(|e| panic!("1m alarms: a tick fails: {e}"));
            assert_eq!(out.evaluations, series);
            out
        })
    });
    g.finish();
}

criterion_group!(benches, tick, tick_1m);
criterion_main!(benches);
