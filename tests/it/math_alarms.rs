//! Metric-math and anomaly-detection alarms through the server (reference §3.11, §3.12):
//! data pushed over gRPC, the alarm engine ticked on a manual clock, states and reasons read
//! over HTTP.
//!
//! The anomaly test pushes two weeks of daily-seasonal data with past timestamps (the ingest
//! accepts data up to 14 days old, reference §1.6), then replays the last six hours tick by
//! tick: the model trains from the store's history through the runtime, as in production.

use std::sync::Arc;

use serde_json::Value;
use thermostat::app::{self, Running, Settings};
use thermostat_metrics::{ManualClock, Timestamp};

use crate::util::{client, request, value_datum};

/// 2026-11-26T10:00:00Z, a whole minute.
const T0: i64 = 1_795_687_200_000;
const MINUTE: i64 = 60_000;
const DAY: i64 = 1_440 * MINUTE;

async fn start(dir: &std::path::Path, config: &str, clock: &Arc<ManualClock>) -> Running {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("info")
        .try_init();
    std::fs::write(dir.join("alarms.yaml"), config).unwrap();
    let settings = Settings {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        config: vec![dir.join("alarms.yaml")],
        alarm_tick_loop: false,
        ..Settings::default()
    };
    app::start_with_clock(settings, clock.clone())
        .await
        .expect("server starts")
}

/// One datum: metric name, dimensions, timestamp (ms), value.
type Datum<'a> = (&'a str, Vec<(&'a str, &'a str)>, i64, f64);

/// Pushes `(metric, dimensions, timestamp, value)` datums of `namespace`, 1000 a request.
async fn push(running: &Running, namespace: &str, data: &[Datum<'_>]) {
    let mut c = client(running).await;
    for chunk in data.chunks(1000) {
        let datums = chunk
            .iter()
            .map(|(m, d, t, v)| value_datum(m, d, *t, *v))
            .collect();
        c.put_metric_data(request(namespace, datums)).await.unwrap();
    }
}

async fn tick(running: &Running, clock: &ManualClock, at: i64) {
    clock.set(Timestamp(at));
    let engine = Arc::clone(&running.engine);
    tokio::task::spawn_blocking(move || engine.tick(Timestamp(at)))
        .await
        .unwrap()
        .unwrap();
}

/// `GET /api/v1/alarms/{name}` (brackets of instance names escaped).
async fn alarm(running: &Running, name: &str) -> Value {
    let path = format!(
        "/api/v1/alarms/{}",
        name.replace('[', "%5B")
            .replace(']', "%5D")
            .replace('=', "%3D")
    );
    crate::util::get_json(running.http_addr, &path).await
}

fn reason(a: &Value) -> String {
    a["reason"].as_str().unwrap_or_default().to_owned()
}

/// `dd/MM/yy HH:mm:ss` in UTC, as reasons write times.
fn reason_time(ms: i64) -> String {
    thermostat_alarms::timefmt::reason_time(Timestamp(ms))
}

const ERROR_RATE: &str = r#"alarms:
  - name: error-rate
    metrics:
      - id: errors
        metric_stat: {namespace: Test/Math, metric_name: Errors, statistic: Sum, period_seconds: 60}
        return_data: false
      - id: requests
        metric_stat: {namespace: Test/Math, metric_name: Requests, statistic: Sum, period_seconds: 60}
        return_data: false
      - id: rate
        expression: errors / requests * 100
        label: Error rate
    evaluation_periods: 1
    threshold: 5
    comparison_operator: GreaterThanThreshold
  - name: host-error-rate
    metrics:
      - id: errors
        metric_stat: {namespace: Test/Math, metric_name: Errors, dimensions: {Host: "*"}, statistic: Sum, period_seconds: 60}
        return_data: false
      - id: requests
        metric_stat: {namespace: Test/Math, metric_name: Requests, dimensions: {Host: "*"}, statistic: Sum, period_seconds: 60}
        return_data: false
      - id: rate
        expression: errors / requests * 100
    evaluation_periods: 1
    threshold: 5
    comparison_operator: GreaterThanThreshold
"#;

/// `errors / requests * 100 > 5`: INSUFFICIENT_DATA before data, OK at 1 %, ALARM at 10 %,
/// with CloudWatch's reasons (the expression's value, no statistic in the reason data).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_rate_alarm_goes_from_insufficient_data_to_ok_to_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(T0)));
    let running = start(dir.path(), ERROR_RATE, &clock).await;

    tick(&running, &clock, T0).await;
    let a = alarm(&running, "error-rate").await;
    assert_eq!(a["state"], "INSUFFICIENT_DATA", "{a}");

    push(
        &running,
        "Test/Math",
        &[
            ("Requests", vec![], T0 + 10_000, 100.0),
            ("Errors", vec![], T0 + 20_000, 1.0),
        ],
    )
    .await;
    tick(&running, &clock, T0 + MINUTE).await;
    let a = alarm(&running, "error-rate").await;
    assert_eq!(a["state"], "OK", "{a}");
    assert_eq!(
        reason(&a),
        format!(
            "Threshold Crossed: 1 datapoint [1.0 ({})] was not greater than the threshold (5.0).",
            reason_time(T0)
        ),
        "{a}"
    );

    push(
        &running,
        "Test/Math",
        &[
            ("Requests", vec![], T0 + MINUTE + 10_000, 300.0),
            ("Errors", vec![], T0 + MINUTE + 20_000, 30.0),
        ],
    )
    .await;
    tick(&running, &clock, T0 + 2 * MINUTE).await;
    let a = alarm(&running, "error-rate").await;
    assert_eq!(a["state"], "ALARM", "{a}");
    assert_eq!(
        reason(&a),
        format!(
            "Threshold Crossed: 1 datapoint [10.0 ({})] was greater than the threshold (5.0).",
            reason_time(T0 + MINUTE)
        ),
        "{a}"
    );
    // The listing and the dashboard's alarm page serve a math alarm too.
    let list = crate::util::get_json(running.http_addr, "/api/v1/alarms").await;
    assert!(list.to_string().contains("\"error-rate\""), "{list}");
    let page =
        crate::util::get_json(running.http_addr, "/api/v1/dashboard/alarms/error-rate").await;
    assert_eq!(
        page["comparison_operator"], "GreaterThanThreshold",
        "{page}"
    );
    let data = &a["reason_data"];
    assert_eq!(data["recentDatapoints"], serde_json::json!([10.0]), "{a}");
    assert!(
        data.get("statistic").is_none(),
        "no statistic in a math alarm's reason data: {a}"
    );
    running.shutdown();
}

/// `"*"` in both metric_stats: one instance per host, the rate computed per host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_rate_per_host_alarms_only_on_the_bad_host() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(T0)));
    let running = start(dir.path(), ERROR_RATE, &clock).await;
    push(
        &running,
        "Test/Math",
        &[
            ("Requests", vec![("Host", "a")], T0 + 10_000, 200.0),
            ("Errors", vec![("Host", "a")], T0 + 10_000, 2.0),
            ("Requests", vec![("Host", "b")], T0 + 10_000, 200.0),
            ("Errors", vec![("Host", "b")], T0 + 10_000, 40.0),
        ],
    )
    .await;
    tick(&running, &clock, T0 + MINUTE).await;
    let page = crate::util::get_json(
        running.http_addr,
        "/api/v1/dashboard/alarms/host-error-rate",
    )
    .await;
    assert_eq!(page["instances_total"], 2, "{page}");
    let a = alarm(&running, "host-error-rate[Host=a]").await;
    assert_eq!(a["state"], "OK", "{a}");
    assert!(reason(&a).contains("[1.0 ("), "{a}");
    let b = alarm(&running, "host-error-rate[Host=b]").await;
    assert_eq!(b["state"], "ALARM", "{b}");
    assert_eq!(
        reason(&b),
        format!(
            "Threshold Crossed: 1 datapoint [20.0 ({})] was greater than the threshold (5.0).",
            reason_time(T0)
        ),
        "{b}"
    );
    running.shutdown();
}

const ANOMALY: &str = r#"alarms:
  - name: latency-anomaly
    metrics:
      - id: m1
        metric_stat: {namespace: Test/MathAnomaly, metric_name: Latency, statistic: Average, period_seconds: 300}
      - id: ad1
        expression: ANOMALY_DETECTION_BAND(m1, 3)
    threshold_metric_id: ad1
    comparison_operator: LessThanLowerOrGreaterThanUpperThreshold
    evaluation_periods: 1
"#;

/// The usual latency at `t`: 100 ms ± 50 ms over the UTC day (lowest at 18:00), plus a
/// small fixed noise.
fn usual(t: i64) -> f64 {
    let day = t.rem_euclid(DAY) as f64 / DAY as f64;
    let noise = ((t / (5 * MINUTE)) % 5) as f64 * 0.5;
    100.0 + 50.0 * (day * std::f64::consts::TAU).sin() + noise
}

/// Two weeks of daily-seasonal latencies: the anomaly alarm stays OK over six hours of usual
/// values, then a value that is usual at 06:00 but not at 18:00 takes it to ALARM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anomaly_alarm_stays_ok_on_seasonal_data_and_alarms_on_an_off_hours_spike() {
    let dir = tempfile::tempdir().unwrap();
    // 2026-11-26T18:00:00Z: the daily low.
    let low = T0 + 8 * 60 * MINUTE;
    let from = low - 6 * 60 * MINUTE;
    let before = from - 10 * MINUTE;
    let clock = Arc::new(ManualClock::new(Timestamp(before)));
    let running = start(dir.path(), ANOMALY, &clock).await;

    // Before any history: INSUFFICIENT_DATA, saying why (the pending model is retrained
    // 10 minutes later).
    tick(&running, &clock, before).await;
    let a = alarm(&running, "latency-anomaly").await;
    assert_eq!(a["state"], "INSUFFICIENT_DATA", "{a}");
    assert!(
        reason(&a).starts_with(
            "Insufficient Data: the anomaly model has not seen enough data yet: 0 datapoints"
        ),
        "{a}"
    );

    // Two weeks of history, up to `from`.
    clock.set(Timestamp(from));
    let history: Vec<Datum<'_>> = (1..14 * 288)
        .map(|i| {
            let t = from - i * 5 * MINUTE;
            ("Latency", vec![], t, usual(t))
        })
        .collect();
    push(&running, "Test/MathAnomaly", &history).await;

    // Six hours of usual values, one tick per period.
    let mut t = from;
    while t < low {
        push(
            &running,
            "Test/MathAnomaly",
            &[("Latency", vec![], t, usual(t))],
        )
        .await;
        t += 5 * MINUTE;
        tick(&running, &clock, t).await;
        let a = alarm(&running, "latency-anomaly").await;
        assert_eq!(a["state"], "OK", "at {}: {a}", reason_time(t));
    }
    let a = alarm(&running, "latency-anomaly").await;
    assert!(
        reason(&a).contains("was not less than the lower thresholds [")
            && reason(&a).contains("or greater than the upper thresholds ["),
        "{a}"
    );

    // 140 ms is usual at 06:00, not at 18:00.
    push(
        &running,
        "Test/MathAnomaly",
        &[("Latency", vec![], low, 140.0)],
    )
    .await;
    tick(&running, &clock, low + 5 * MINUTE).await;
    let a = alarm(&running, "latency-anomaly").await;
    assert_eq!(a["state"], "ALARM", "{a}");
    let r = reason(&a);
    assert!(
        r.starts_with(&format!(
            "Thresholds Crossed: 1 datapoint [140.0 ({})] was less than the lower thresholds [",
            reason_time(low)
        )) && r.contains("] or greater than the upper thresholds ["),
        "{r}"
    );
    // The upper bound of the band is far below 140 at this hour.
    let upper: f64 = r
        .rsplit("upper thresholds [")
        .next()
        .and_then(|s| s.split(']').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(upper < 70.0, "{r}");
    running.shutdown();
}
