//! Starting servers and building requests.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thermostat::app::{self, Running, Settings};
use thermostat_proto::v1::metrics_service_client::MetricsServiceClient;
use thermostat_proto::v1::{
    Dimension, GetMetricStatisticsRequest, MetricDatum, PutMetricDataRequest,
};
use tonic::transport::Channel;

/// A server on loopback port 0 with its data in `dir`.
pub(crate) async fn start_in(dir: &Path, tweak: impl FnOnce(&mut Settings)) -> Running {
    // Logs go to the test's captured output (shown when it fails), and log arguments are
    // evaluated as they are in production.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("info")
        .try_init();
    let mut settings = Settings {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_owned(),
        ..Settings::default()
    };
    tweak(&mut settings);
    app::start(settings).await.expect("server starts")
}

/// A running server with its own temporary data directory.
pub(crate) struct TestServer {
    pub(crate) running: Running,
    pub(crate) dir: tempfile::TempDir,
}

impl TestServer {
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(tweak: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let running = start_in(dir.path(), tweak).await;
        TestServer { running, dir }
    }

    pub(crate) async fn client(&self) -> MetricsServiceClient<Channel> {
        client(&self.running).await
    }

    pub(crate) fn http(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.running.http_addr, path_and_query)
    }
}

pub(crate) async fn client(running: &Running) -> MetricsServiceClient<Channel> {
    MetricsServiceClient::connect(format!("http://{}", running.grpc_addr))
        .await
        .expect("connects")
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A timestamp an hour ago, aligned to `align_ms`, so that test data fills whole periods.
pub(crate) fn aligned_past(align_ms: i64) -> i64 {
    let t = now_ms() - 3_600_000;
    t - t.rem_euclid(align_ms)
}

pub(crate) fn dims(pairs: &[(&str, &str)]) -> Vec<Dimension> {
    pairs
        .iter()
        .map(|(n, v)| Dimension {
            name: (*n).into(),
            value: (*v).into(),
        })
        .collect()
}

pub(crate) fn value_datum(name: &str, dimensions: &[(&str, &str)], ts: i64, v: f64) -> MetricDatum {
    MetricDatum {
        metric_name: name.into(),
        dimensions: dims(dimensions),
        timestamp_ms: ts,
        value: Some(v),
        unit: "Milliseconds".into(),
        ..Default::default()
    }
}

pub(crate) fn request(namespace: &str, data: Vec<MetricDatum>) -> PutMetricDataRequest {
    PutMetricDataRequest {
        namespace: namespace.into(),
        metric_data: data,
    }
}

pub(crate) fn stats_request(
    namespace: &str,
    name: &str,
    dimensions: &[(&str, &str)],
    start: i64,
    end: i64,
    period: i32,
    statistics: &[&str],
) -> GetMetricStatisticsRequest {
    GetMetricStatisticsRequest {
        namespace: namespace.into(),
        metric_name: name.into(),
        dimensions: dims(dimensions),
        start_time_ms: start,
        end_time_ms: end,
        period_seconds: period,
        statistics: statistics.iter().map(|s| (*s).into()).collect(),
        unit: String::new(),
    }
}

/// Exact nearest-rank percentile (CloudWatch's definition).
pub(crate) fn exact_percentile(values: &[f64], rank: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let idx = ((rank / 100.0) * v.len() as f64).ceil().max(1.0) as usize - 1;
    v[idx.min(v.len() - 1)]
}

pub(crate) fn assert_close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= want.abs() * 0.01,
        "{what}: got {got}, want {want} within 1%"
    );
}

/// Reads a counter or gauge from the Prometheus text at `/metrics`.
pub(crate) async fn scrape(server: &TestServer, series: &str) -> Option<f64> {
    let text = reqwest::get(server.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(|v| v.trim().parse().unwrap())
    })
}

/// `GET http://{http_addr}{path}`, which must answer 200, as JSON.
pub(crate) async fn get_json(http_addr: impl std::fmt::Display, path: &str) -> serde_json::Value {
    let r = reqwest::get(format!("http://{http_addr}{path}"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

/// Sets alarm `name` to `state` with `reason` (`PUT /api/v1/alarms/{name}/state`, the API's
/// SetAlarmState), which must answer 200.
pub(crate) async fn set_alarm_state(
    http_addr: impl std::fmt::Display,
    name: &str,
    state: &str,
    reason: &str,
) {
    let r = reqwest::Client::new()
        .put(format!("http://{http_addr}/api/v1/alarms/{name}/state"))
        .json(&serde_json::json!({"state_value": state, "state_reason": reason}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "PUT /api/v1/alarms/{name}/state");
}

/// A webhook receiver on 127.0.0.1:0 that forwards every body it gets (as JSON, or as a JSON
/// string when it is not JSON): its `/hook` URL and the bodies.
pub(crate) async fn receiver() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) {
    receiver_answering_after(Duration::ZERO).await
}

/// [`receiver`] that takes `delay` to answer each notification, after passing its body on
/// (a slow endpoint: the sender's delivery is in flight meanwhile).
pub(crate) async fn receiver_answering_after(
    delay: Duration,
) -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            async move {
                let _ =
                    tx.send(serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)));
                tokio::time::sleep(delay).await;
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}
