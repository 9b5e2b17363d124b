//! OTLP over gRPC (issue 19): the real OpenTelemetry Python SDK and hand-built requests push
//! to `opentelemetry.proto.collector.metrics.v1.MetricsService/Export` on the gRPC port;
//! everything is read back with `GetMetricStatistics`.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use thermostat_otlp::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use thermostat_otlp::proto::common::v1::{AnyValue, KeyValue, any_value::Value as Any};
use thermostat_otlp::proto::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric::Data, number_data_point,
};
use thermostat_otlp::proto::resource::v1::Resource;
use thermostat_proto::otlp::metrics_service_client::MetricsServiceClient as OtlpClient;

use crate::util::{TestServer, client, now_ms, scrape, start_in, stats_request};

const PEERS: &[&str] = &[
    "opentelemetry.sdk",
    "opentelemetry.exporter.otlp.proto.grpc",
];

/// The SDK's default explicit bucket bounds.
const SDK_BOUNDS: &[f64] = &[
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

/// Runs `tests/peers/otlp_push.py` against `grpc_addr` and returns what it printed.
async fn push(python: &Path, grpc_addr: std::net::SocketAddr, args: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/otlp_push.py");
    let mut command = Command::new(python);
    command
        .arg(script)
        .args(["--protocol", "grpc", "--endpoint"])
        .arg(format!("http://{grpc_addr}"))
        .args(args);
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "otlp_push.py failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Statistics of one series over the last hour and the next few minutes, one datapoint per
/// hour-long period from an aligned start: (statistic, value) of the single datapoint, or the
/// sum over the datapoints for Sum and SampleCount.
async fn stats(
    server: &TestServer,
    namespace: &str,
    metric: &str,
    dimensions: &[(&str, &str)],
    statistics: &[&str],
) -> Vec<Vec<(String, f64)>> {
    let now = now_ms();
    let start = now - now.rem_euclid(60_000) - 30 * 60_000;
    let mut client = server.client().await;
    let r = client
        .get_metric_statistics(stats_request(
            namespace,
            metric,
            dimensions,
            start,
            start + 3_600_000,
            3600,
            statistics,
        ))
        .await
        .unwrap()
        .into_inner();
    r.datapoints
        .into_iter()
        .map(|d| {
            statistics
                .iter()
                .filter_map(|s| d.statistics.get(*s).map(|v| ((*s).to_owned(), *v)))
                .collect()
        })
        .collect()
}

/// The one datapoint's `statistic`.
fn single(points: &[Vec<(String, f64)>], statistic: &str) -> f64 {
    assert_eq!(points.len(), 1, "one datapoint expected: {points:?}");
    points[0]
        .iter()
        .find(|(s, _)| s == statistic)
        .unwrap_or_else(|| panic!("no {statistic} in {points:?}"))
        .1
}

fn total(points: &[Vec<(String, f64)>], statistic: &str) -> f64 {
    points
        .iter()
        .flat_map(|p| p.iter().filter(|(s, _)| s == statistic).map(|(_, v)| *v))
        .sum()
}

fn exact_percentile(values: &[f64], rank: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let idx = ((rank / 100.0) * v.len() as f64).ceil().max(1.0) as usize - 1;
    v[idx.min(v.len() - 1)]
}

/// The explicit bucket `(lo, hi]` that holds `v`.
fn bucket_of(v: f64) -> (f64, f64) {
    let i = SDK_BOUNDS.partition_point(|b| *b < v);
    let lo = if i == 0 { f64::MIN } else { SDK_BOUNDS[i - 1] };
    let hi = SDK_BOUNDS.get(i).copied().unwrap_or(f64::MAX);
    (lo, hi)
}

fn recorded(pushed: &Value) -> Vec<f64> {
    pushed["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn assert_relative(got: f64, want: f64, rel: f64, what: &str) {
    assert!(
        (got - want).abs() <= want.abs() * rel,
        "{what}: got {got}, want {want} within {rel}"
    );
}

/// Counter, histogram (explicit buckets) and gauge of one SDK run, read back.
async fn check_sdk_run(server: &TestServer, service: &str, pushed: &Value, exponential: bool) {
    let dims = [("route", "/checkout"), ("service.name", service)];
    let counter = stats(server, service, "requests", &dims, &["Sum"]).await;
    assert_eq!(
        total(&counter, "Sum"),
        pushed["counter_total"].as_f64().unwrap(),
        "the counter's Sum is what was added"
    );
    let values = recorded(pushed);
    let histogram = stats(
        server,
        service,
        "latency",
        &dims,
        &["SampleCount", "Sum", "p50", "p90", "p99"],
    )
    .await;
    assert_eq!(total(&histogram, "SampleCount"), values.len() as f64);
    assert_relative(
        total(&histogram, "Sum"),
        values.iter().sum(),
        1e-6,
        "the histogram's Sum",
    );
    for rank in [50.0, 90.0, 99.0] {
        let got = single(&histogram, &format!("p{rank}"));
        let exact = exact_percentile(&values, rank);
        if exponential {
            // Scale 3 or finer for 150 values within 1..900 (160 buckets): 4.3% at most,
            // plus the store's own histogram resolution.
            assert_relative(got, exact, 0.05, &format!("p{rank}"));
        } else {
            let (lo, hi) = bucket_of(exact);
            assert!(
                got >= lo - lo.abs() * 0.01 && got <= hi + hi.abs() * 0.01,
                "p{rank}: got {got}, the exact {exact} is in ({lo}, {hi}]"
            );
        }
    }
    let gauge = stats(
        server,
        service,
        "queue_depth",
        &[("queue", "jobs"), ("service.name", service)],
        &["SampleCount", "Minimum", "Maximum"],
    )
    .await;
    let last = pushed["gauge_last"].as_f64().unwrap();
    // One value per export, and one more from the final export at the SDK's shutdown.
    assert_eq!(
        total(&gauge, "SampleCount"),
        4.0,
        "one gauge value per export"
    );
    assert!(
        single(&gauge, "Minimum") <= last && last <= single(&gauge, "Maximum"),
        "the gauge's last value {last} is among those stored: {gauge:?}"
    );
}

/// (a) The SDK's cumulative export over gRPC, three intervals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_cumulative_over_grpc() {
    let Some(python) = thermostat_testkit::require_peers("sdk_cumulative_over_grpc", PEERS) else {
        return;
    };
    let server = TestServer::start().await;
    let pushed = push(
        &python,
        server.running.grpc_addr,
        &["--service", "shop", "--intervals", "3"],
    )
    .await;
    check_sdk_run(&server, "shop", &pushed, false).await;
}

/// (b) Delta temporality.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_delta_over_grpc() {
    let Some(python) = thermostat_testkit::require_peers("sdk_delta_over_grpc", PEERS) else {
        return;
    };
    let server = TestServer::start().await;
    let pushed = push(
        &python,
        server.running.grpc_addr,
        &[
            "--service",
            "deltas",
            "--temporality",
            "delta",
            "--seed",
            "2",
        ],
    )
    .await;
    check_sdk_run(&server, "deltas", &pushed, false).await;
}

/// (c) Exponential histograms: percentiles within the bucket layout's relative bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_exponential_histograms() {
    let Some(python) = thermostat_testkit::require_peers("sdk_exponential_histograms", PEERS)
    else {
        return;
    };
    let server = TestServer::start().await;
    let pushed = push(
        &python,
        server.running.grpc_addr,
        &["--service", "expo", "--exponential", "--seed", "3"],
    )
    .await;
    check_sdk_run(&server, "expo", &pushed, true).await;
}

/// (f) Two processes of one service (one series, two streams) add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_senders_merge_into_one_series() {
    let Some(python) =
        thermostat_testkit::require_peers("sdk_senders_merge_into_one_series", PEERS)
    else {
        return;
    };
    let server = TestServer::start().await;
    let addr = server.running.grpc_addr;
    let (a, b) = tokio::join!(
        push(&python, addr, &["--service", "fleet", "--seed", "11"]),
        push(&python, addr, &["--service", "fleet", "--seed", "12"]),
    );
    let dims = [("route", "/checkout"), ("service.name", "fleet")];
    let counter = stats(&server, "fleet", "requests", &dims, &["Sum"]).await;
    assert_eq!(
        total(&counter, "Sum"),
        a["counter_total"].as_f64().unwrap() + b["counter_total"].as_f64().unwrap()
    );
    let histogram = stats(&server, "fleet", "latency", &dims, &["SampleCount"]).await;
    assert_eq!(
        total(&histogram, "SampleCount"),
        (recorded(&a).len() + recorded(&b).len()) as f64
    );
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue {
                value: Some(Any::StringValue(service.into())),
            }),
            key_strindex: 0,
        }],
        ..Default::default()
    })
}

/// A request of `metrics` from one resource whose `service.name` is `service`.
pub(crate) fn export_request(service: &str, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(service),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A double point at `at_ms`, its stream started at `start_ms`.
pub(crate) fn point(at_ms: i64, start_ms: i64, value: f64) -> NumberDataPoint {
    NumberDataPoint {
        start_time_unix_nano: u64::try_from(start_ms).unwrap() * 1_000_000,
        time_unix_nano: u64::try_from(at_ms).unwrap() * 1_000_000,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

/// A monotonic cumulative Sum (a counter) of `points`.
pub(crate) fn cumulative(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        data: Some(Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

async fn otlp_client(addr: std::net::SocketAddr) -> OtlpClient<tonic::transport::Channel> {
    OtlpClient::connect(format!("http://{addr}")).await.unwrap()
}

/// (d) A restart between two cumulative exports (same data directory) counts the increase
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_between_cumulative_exports_does_not_double_count() {
    let dir = tempfile::tempdir().unwrap();
    let start = now_ms() - 120_000;
    let first = start_in(dir.path(), |_| {}).await;
    let mut otlp = otlp_client(first.grpc_addr).await;
    otlp.export(export_request(
        "restart",
        vec![cumulative(
            "requests",
            vec![point(start + 20_000, start, 10.0)],
        )],
    ))
    .await
    .unwrap();
    first.shutdown();
    first.wait().await.unwrap();

    let second = start_in(dir.path(), |_| {}).await;
    let mut otlp = otlp_client(second.grpc_addr).await;
    otlp.export(export_request(
        "restart",
        vec![cumulative(
            "requests",
            vec![point(start + 40_000, start, 25.0)],
        )],
    ))
    .await
    .unwrap();
    let mut native = client(&second).await;
    let r = native
        .get_metric_statistics(stats_request(
            "restart",
            "requests",
            &[("service.name", "restart")],
            start - start.rem_euclid(60_000) - 3_600_000,
            start + 3_600_000,
            60,
            &["Sum"],
        ))
        .await
        .unwrap()
        .into_inner();
    let sum: f64 = r.datapoints.iter().map(|d| d.statistics["Sum"]).sum();
    assert_eq!(sum, 25.0, "10, then the increase of 15: {r:?}");
    second.shutdown();
    second.wait().await.unwrap();
}

/// (e) Invalid points are rejected with a partial success naming metric, point and rule; the
/// valid ones are stored. `GET /metrics` counts the requests by outcome and the points
/// accepted and rejected by reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_points_are_a_partial_success() {
    let server = TestServer::start().await;
    let now = now_ms() - 60_000;
    let gauge = Metric {
        name: "temperature".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![
                point(now, 0, 21.5),
                point(now, 0, f64::NAN),
                point(now - 30 * 86_400_000, 0, 3.0),
            ],
        })),
        ..Default::default()
    };
    let mut otlp = otlp_client(server.running.grpc_addr).await;
    let r = otlp
        .export(export_request("partial", vec![gauge]))
        .await
        .unwrap()
        .into_inner();
    let partial = r.partial_success.expect("a partial success");
    assert_eq!(partial.rejected_data_points, 2, "{partial:?}");
    assert!(
        partial
            .error_message
            .contains("metric \"temperature\" point 1")
            && partial.error_message.contains("NaN")
            && partial.error_message.contains("point 2"),
        "{}",
        partial.error_message
    );
    let points = stats(
        &server,
        "partial",
        "temperature",
        &[("service.name", "partial")],
        &["SampleCount", "Maximum"],
    )
    .await;
    assert_eq!(total(&points, "SampleCount"), 1.0);
    assert_eq!(single(&points, "Maximum"), 21.5);

    // A request of valid points only, and one refused whole (a metric name beyond the
    // decoder's bound).
    let valid = Metric {
        name: "humidity".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![point(now, 0, 40.0), point(now + 1_000, 0, 41.0)],
        })),
        ..Default::default()
    };
    assert_eq!(
        otlp.export(export_request("partial", vec![valid]))
            .await
            .unwrap()
            .into_inner()
            .partial_success,
        None
    );
    let too_long = Metric {
        name: "x".repeat(2_000),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![point(now, 0, 1.0)],
        })),
        ..Default::default()
    };
    let refused = otlp
        .export(export_request("partial", vec![too_long]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    for (series, want) in [
        (r#"requests_total{outcome="accepted"}"#, 1.0),
        (r#"requests_total{outcome="partial"}"#, 1.0),
        (r#"requests_total{outcome="refused"}"#, 1.0),
        (r#"points_total{result="accepted"}"#, 3.0),
        (r#"points_rejected_total{reason="value"}"#, 1.0),
        (r#"points_rejected_total{reason="timestamp"}"#, 1.0),
        (r#"points_rejected_total{reason="identity"}"#, 0.0),
        (r#"points_rejected_total{reason="malformed"}"#, 0.0),
        (r#"points_rejected_total{reason="stream_limit"}"#, 0.0),
    ] {
        let series = format!("thermostat_otlp_{series}");
        assert_eq!(scrape(&server, &series).await, Some(want), "{series}");
    }
}
