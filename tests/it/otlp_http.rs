//! OTLP over HTTP (issue 19): `POST /v1/metrics` with the real OpenTelemetry Python SDK
//! (protobuf), the opentelemetry-proto repository's example request (OTLP JSON), gzip bodies,
//! and access control; everything is read back through the native API.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use prost::Message as _;
use thermostat_auth::{digest_hex, new_token};
use thermostat_otlp::proto::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use thermostat_otlp::proto::common::v1::{AnyValue, KeyValue, any_value::Value as Any};
use thermostat_otlp::proto::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric::Data, number_data_point,
};
use thermostat_otlp::proto::resource::v1::Resource;

use crate::util::{TestServer, now_ms, stats_request};

/// Sum (or another statistic) of a series over the last half hour and the next half hour.
async fn statistic(
    server: &TestServer,
    namespace: &str,
    metric: &str,
    dims: &[(&str, &str)],
    stat: &str,
) -> f64 {
    let now = now_ms();
    let start = now - now.rem_euclid(60_000) - 30 * 60_000;
    let r = server
        .client()
        .await
        .get_metric_statistics(stats_request(
            namespace,
            metric,
            dims,
            start,
            start + 3_600_000,
            3600,
            &[stat],
        ))
        .await
        .unwrap()
        .into_inner();
    r.datapoints.iter().map(|d| d.statistics[stat]).sum()
}

fn gauge_request(service: &str, value: f64) -> ExportMetricsServiceRequest {
    let text = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Any::StringValue(v.into())),
        }),
        key_strindex: 0,
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![text("service.name", service)],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "queue_depth".into(),
                    data: Some(Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            attributes: vec![text("queue", "jobs")],
                            time_unix_nano: u64::try_from(now_ms()).unwrap() * 1_000_000,
                            value: Some(number_data_point::Value::AsDouble(value)),
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_pushes_over_http_protobuf() {
    let peers = [
        "opentelemetry.sdk",
        "opentelemetry.exporter.otlp.proto.http",
    ];
    let Some(python) =
        thermostat_testkit::require_peers("the_sdk_pushes_over_http_protobuf", &peers)
    else {
        return;
    };
    let server = TestServer::start().await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/otlp_push.py");
    let endpoint = server.http("/v1/metrics");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args([
                "--protocol",
                "http",
                "--endpoint",
                &endpoint,
                "--service",
                "web",
                "--intervals",
                "3",
            ])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pushed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let dims = [("route", "/checkout"), ("service.name", "web")];
    let sum = statistic(&server, "web", "requests", &dims, "Sum").await;
    assert_eq!(
        sum,
        pushed["counter_total"].as_f64().unwrap(),
        "the counter's increments, once each"
    );
    let recorded = pushed["histogram"].as_array().unwrap();
    let count = statistic(&server, "web", "latency", &dims, "SampleCount").await;
    assert_eq!(count, recorded.len() as f64);
    let want: f64 = recorded.iter().map(|v| v.as_f64().unwrap()).sum();
    let got = statistic(&server, "web", "latency", &dims, "Sum").await;
    assert!(
        (got - want).abs() <= want * 1e-9,
        "histogram sum {got} vs {want}"
    );
}

#[tokio::test]
async fn the_example_request_in_otlp_json_is_stored() {
    let server = TestServer::start().await;
    // The opentelemetry-proto repository's examples/metrics.json, moved to now (its own
    // timestamps, in 2018, are older than the 14 days a push may reach back).
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("otlp/tests/fixtures/metrics.json"),
    )
    .unwrap();
    let now_ns = (now_ms() * 1_000_000).to_string();
    let body = example.replace("1544712660300000000", &now_ns);
    let r = reqwest::Client::new()
        .post(server.http("/v1/metrics"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let answer: serde_json::Value = r.json().await.unwrap();
    assert!(answer.get("partialSuccess").is_none(), "{answer}");
    let counter = statistic(
        &server,
        "my.service",
        "my.counter",
        &[
            ("my.counter.attr", "some value"),
            ("service.name", "my.service"),
        ],
        "Sum",
    )
    .await;
    assert_eq!(counter, 5.0);
    let gauge = statistic(
        &server,
        "my.service",
        "my.gauge",
        &[
            ("my.gauge.attr", "some value"),
            ("service.name", "my.service"),
        ],
        "Maximum",
    )
    .await;
    assert_eq!(gauge, 10.0);
    let dims = [
        ("my.histogram.attr", "some value"),
        ("service.name", "my.service"),
    ];
    assert_eq!(
        statistic(&server, "my.service", "my.histogram", &dims, "SampleCount").await,
        2.0
    );
    assert_eq!(
        statistic(&server, "my.service", "my.histogram", &dims, "Sum").await,
        2.0
    );
}

#[tokio::test]
async fn gzip_protobuf_bodies_are_accepted_and_answered_in_protobuf() {
    let server = TestServer::start().await;
    let body = gzip(&gauge_request("gz", 42.0).encode_to_vec());
    let r = reqwest::Client::new()
        .post(server.http("/v1/metrics"))
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "gzip")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-protobuf");
    let answer = ExportMetricsServiceResponse::decode(r.bytes().await.unwrap()).unwrap();
    assert!(answer.partial_success.is_none());
    let dims = [("queue", "jobs"), ("service.name", "gz")];
    assert_eq!(
        statistic(&server, "gz", "queue_depth", &dims, "Maximum").await,
        42.0
    );
}

#[tokio::test]
async fn otlp_over_http_needs_an_agent_token_in_scope() {
    let (agent, viewer) = (new_token(), new_token());
    let auth = format!(
        "tokens:\n  - {{name: otel, role: agent, namespaces: ['shop*'], token_sha256: {}}}\n  - {{name: dash, role: viewer, token_sha256: {}}}\n",
        digest_hex(&agent),
        digest_hex(&viewer)
    );
    let server = TestServer::start_with(|s| s.auth = serde_yaml_ng::from_str(&auth).unwrap()).await;
    let send = |token: Option<String>, service: &'static str| {
        let mut req = reqwest::Client::new()
            .post(server.http("/v1/metrics"))
            .header("content-type", "application/x-protobuf")
            .body(gauge_request(service, 1.0).encode_to_vec());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(send(None, "shop").await, 401);
    assert_eq!(send(Some(viewer.clone()), "shop").await, 403);
    assert_eq!(
        send(Some(agent.clone()), "billing").await,
        403,
        "outside the token's namespaces"
    );
    assert_eq!(send(Some(agent.clone()), "shop").await, 200);
}

fn counter_request(
    service: &str,
    start_ns: u64,
    at_ns: u64,
    value: f64,
) -> ExportMetricsServiceRequest {
    use thermostat_otlp::proto::metrics::v1::{AggregationTemporality, Sum};
    let mut request = gauge_request(service, value);
    let metric = &mut request.resource_metrics[0].scope_metrics[0].metrics[0];
    metric.name = "jobs_done".into();
    let Some(Data::Gauge(gauge)) = metric.data.take() else {
        unreachable!("a gauge request")
    };
    let mut point = gauge.data_points[0].clone();
    point.start_time_unix_nano = start_ns;
    point.time_unix_nano = at_ns;
    metric.data = Some(Data::Sum(Sum {
        data_points: vec![point],
        aggregation_temporality: AggregationTemporality::Cumulative as i32,
        is_monotonic: true,
    }));
    request
}

async fn post_protobuf(server_http: &str, request: &ExportMetricsServiceRequest) -> u16 {
    reqwest::Client::new()
        .post(server_http)
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_counter_reset_counts_from_zero() {
    let server = TestServer::start().await;
    let url = server.http("/v1/metrics");
    let ns = |ms: i64| u64::try_from(ms).unwrap() * 1_000_000;
    let t = now_ms() - 60_000;
    // 10 since the process started; then the process restarts (a new start time) and counts 3.
    assert_eq!(
        post_protobuf(&url, &counter_request("resets", ns(t - 1_000), ns(t), 10.0)).await,
        200
    );
    assert_eq!(
        post_protobuf(
            &url,
            &counter_request("resets", ns(t - 1_000), ns(t + 10_000), 25.0)
        )
        .await,
        200
    );
    assert_eq!(
        post_protobuf(
            &url,
            &counter_request("resets", ns(t + 15_000), ns(t + 20_000), 3.0)
        )
        .await,
        200
    );
    let dims = [("queue", "jobs"), ("service.name", "resets")];
    // 10 (first point, from zero) + 15 (the increase) + 3 (after the reset, from zero).
    assert_eq!(
        statistic(&server, "resets", "jobs_done", &dims, "Sum").await,
        28.0
    );
}

/// An alarm defined on an OTLP series goes to ALARM when the data breaches.
#[tokio::test]
async fn an_alarm_on_an_otlp_series_fires() {
    use std::sync::Arc;
    use thermostat_metrics::{ManualClock, Timestamp};
    const T0: i64 = 1_795_687_200_000;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("alarms.yaml"),
        "alarms:\n  - name: queue-deep\n    namespace: workers\n    metric_name: queue_depth\n    dimensions: {queue: jobs, service.name: workers}\n    statistic: Maximum\n    period_seconds: 60\n    evaluation_periods: 1\n    threshold: 50\n    comparison_operator: GreaterThanThreshold\n",
    )
    .unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(T0)));
    let settings = thermostat::app::Settings {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        config: vec![dir.path().join("alarms.yaml")],
        alarm_tick_loop: false,
        ..thermostat::app::Settings::default()
    };
    let running = thermostat::app::start_with_clock(settings, clock.clone())
        .await
        .unwrap();
    let mut request = gauge_request("workers", 99.0);
    request.resource_metrics[0].scope_metrics[0].metrics[0].data =
        match request.resource_metrics[0].scope_metrics[0].metrics[0]
            .data
            .take()
        {
            Some(Data::Gauge(mut g)) => {
                g.data_points[0].time_unix_nano = u64::try_from(T0 + 10_000).unwrap() * 1_000_000;
                Some(Data::Gauge(g))
            }
            other => other,
        };
    let url = format!("http://{}/v1/metrics", running.http_addr);
    assert_eq!(post_protobuf(&url, &request).await, 200);
    clock.set(Timestamp(T0 + 60_000));
    let engine = Arc::clone(&running.engine);
    tokio::task::spawn_blocking(move || engine.tick(Timestamp(T0 + 60_000)))
        .await
        .unwrap()
        .unwrap();
    let alarm = crate::util::get_json(running.http_addr, "/api/v1/alarms/queue-deep").await;
    assert_eq!(alarm["state"], "ALARM", "{alarm}");
    running.shutdown();
    running.wait().await.unwrap();
}
