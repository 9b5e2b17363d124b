//! End to end: `loadgen --protocol otlp` over real gRPC sockets, against
//! - a stub OTLP `MetricsService/Export` server in this test (prost decoding, a partial-success
//!   rule), so the counting (accepted = sent − `rejected_data_points`) is checked whatever state
//!   the real server is in;
//! - a gRPC server without the service: loadgen must stop at once with UNIMPLEMENTED and the
//!   path, not hang;
//! - the real `thermostat` binary: the samples loadgen counts equal the server's
//!   `thermostat_ingest_samples_total`, or, while the server does not serve OTLP yet, the clear
//!   UNIMPLEMENTED failure (printed as `SKIPPED …`).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::collections::HashSet;
use std::convert::Infallible;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use thermostat_benches::codec::OTLP_EXPORT;
use thermostat_benches::process::{log_text, start_thermostat};
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::{NamedService, UnaryService};
use tonic::service::Routes;
use tonic::transport::Server;

mod common;

const SERIES: u64 = 50;
const SAMPLES: u64 = 20;
const NAMESPACE: &str = "Thermostat/Loadgen";

/// What the stub saw, summed over requests.
#[derive(Debug, Default)]
struct Seen {
    requests: u64,
    points: u64,
    rejected: u64,
    /// (metric, attributes) of every point.
    series: HashSet<(String, Vec<(String, String)>)>,
    /// `service.name` of every request.
    service_names: HashSet<String>,
}

/// A stub `opentelemetry.proto.collector.metrics.v1.MetricsService` whose `Export` rejects
/// the gauge points whose value is below `reject_below` (a partial success) and keeps the rest.
#[derive(Clone, Debug)]
struct Stub {
    reject_below: f64,
    seen: Arc<Mutex<Seen>>,
}

impl Stub {
    fn export(&self, r: &ExportMetricsServiceRequest) -> ExportMetricsServiceResponse {
        let mut seen = self.seen.lock().unwrap();
        seen.requests += 1;
        let mut rejected = 0;
        for rm in &r.resource_metrics {
            for kv in &rm.resource.as_ref().unwrap().attributes {
                if let Some(any_value::Value::StringValue(s)) =
                    kv.value.as_ref().and_then(|v| v.value.as_ref())
                    && kv.key == "service.name"
                {
                    seen.service_names.insert(s.clone());
                }
            }
            for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
                let Some(metric::Data::Gauge(g)) = &m.data else {
                    panic!("not a gauge: {m:?}");
                };
                for p in &g.data_points {
                    seen.points += 1;
                    let attrs = p
                        .attributes
                        .iter()
                        .map(
                            |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                                Some(any_value::Value::StringValue(s)) => {
                                    (kv.key.clone(), s.clone())
                                }
                                other => panic!("not a string attribute: {other:?}"),
                            },
                        )
                        .collect();
                    seen.series.insert((m.name.clone(), attrs));
                    let Some(number_data_point::Value::AsDouble(v)) = p.value else {
                        panic!("not a double: {p:?}");
                    };
                    if v < self.reject_below {
                        rejected += 1;
                    }
                }
            }
        }
        seen.rejected += rejected;
        ExportMetricsServiceResponse {
            partial_success: (rejected > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: i64::try_from(rejected).unwrap(),
                error_message: format!("{rejected} point(s) below {}", self.reject_below),
            }),
        }
    }
}

impl UnaryService<ExportMetricsServiceRequest> for Stub {
    type Response = ExportMetricsServiceResponse;
    type Future = BoxFuture<tonic::Response<ExportMetricsServiceResponse>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<ExportMetricsServiceRequest>) -> Self::Future {
        let answer = self.export(request.get_ref());
        Box::pin(async move { Ok(tonic::Response::new(answer)) })
    }
}

impl NamedService for Stub {
    const NAME: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
}

impl Service<http::Request<tonic::body::Body>> for Stub {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        assert_eq!(req.uri().path(), OTLP_EXPORT, "the stub serves Export only");
        let method = self.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(method, req).await)
        })
    }
}

/// A gRPC server on a free loopback port, serving `routes` until the runtime is dropped.
fn serve(routes: Routes) -> (tokio::runtime::Runtime, String) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(
        Server::builder()
            .add_routes(routes)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (rt, format!("http://{addr}"))
}

fn loadgen(target: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--target", target, "--protocol", "otlp"])
        .args([
            "--series",
            "50",
            "--samples-per-series",
            "20",
            "--batch",
            "100",
            "--connections",
            "2",
            "--in-flight",
            "2",
            "--json",
        ])
        .args(extra)
        .output()
        .unwrap()
}

fn report(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {stdout}\nstderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn otlp_samples_accepted_are_the_points_the_server_took() {
    let stub = Stub {
        reject_below: f64::NEG_INFINITY,
        seen: Arc::default(),
    };
    let (_rt, target) = serve(Routes::new(stub.clone()));
    let out = loadgen(&target, &["--order", "time"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&out);
    let seen = stub.seen.lock().unwrap();
    assert_eq!(r["protocol"], "otlp", "{r}");
    assert_eq!(r["mode"], "unary", "{r}");
    assert_eq!(r["samples"], SERIES * SAMPLES, "{r}");
    assert_eq!(r["expected_samples"], SERIES * SAMPLES, "{r}");
    assert_eq!(r["requests"], SERIES * SAMPLES / 100, "{r}");
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(seen.points, SERIES * SAMPLES);
    assert_eq!(seen.requests, SERIES * SAMPLES / 100);
    assert_eq!(seen.series.len() as u64, SERIES);
    assert_eq!(seen.service_names, HashSet::from([NAMESPACE.to_owned()]));
}

#[test]
fn otlp_rejected_points_are_not_counted_and_fail_the_run() {
    let stub = Stub {
        reject_below: 10.0,
        seen: Arc::default(),
    };
    let (_rt, target) = serve(Routes::new(stub.clone()));
    let out = loadgen(&target, &[]);
    let r = report(&out);
    let seen = stub.seen.lock().unwrap();
    assert_eq!(seen.points, SERIES * SAMPLES);
    assert!(seen.rejected > 0, "values are uniform in [0, 100)");
    assert_eq!(r["samples"], seen.points - seen.rejected, "{r}");
    assert_eq!(
        r["errors"], 0,
        "a partial success is not a failed request: {r}"
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "acknowledged {} samples, but {} were sent",
            seen.points - seen.rejected,
            seen.points
        )),
        "{stderr}"
    );
}

#[test]
fn otlp_stream_is_refused() {
    let out = loadgen("http://127.0.0.1:9", &["--stream"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--stream needs --protocol native"),
        "{stderr}"
    );
}

/// A gRPC server without the OTLP service answers UNIMPLEMENTED: loadgen stops at once and
/// names the path.
#[test]
fn otlp_against_a_server_without_export_stops_with_unimplemented_and_the_path() {
    let (_rt, target) = serve(Routes::default());
    let started = Instant::now();
    let out = loadgen(&target, &[]);
    assert!(started.elapsed() < Duration::from_secs(60), "no hang");
    assert!(!out.status.success());
    let r = report(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Unimplemented"), "{stderr}");
    assert!(
        stderr.contains(
            "does not serve /opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
        ),
        "{stderr}"
    );
    assert_eq!(r["samples"], 0, "{r}");
    // Stopped: at most one request per sender (2 connections × 2 in flight) was tried.
    assert!(r["requests"].as_u64().unwrap() <= 4, "{r}");
}

fn samples_total(http_addr: &str) -> f64 {
    let mut s = TcpStream::connect(http_addr).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {http_addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    response
        .lines()
        .find_map(|l| l.strip_prefix("thermostat_ingest_samples_total "))
        .unwrap_or_else(|| panic!("no thermostat_ingest_samples_total in:\n{response}"))
        .trim()
        .parse()
        .unwrap()
}

/// The real server serves OTLP/gRPC (issue 19): every sample loadgen sent is counted, by
/// loadgen and by the server's `/metrics`.
#[test]
fn otlp_against_the_real_server_counts_agree() {
    let data_dir = tempfile::tempdir().unwrap();
    let t = start_thermostat(
        &common::thermostat_bin(),
        data_dir.path(),
        &[] as &[&str],
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let out = loadgen(&format!("http://{}", t.grpc), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let r = report(&out);
    assert!(
        out.status.success(),
        "loadgen failed: {stderr}\nreport {r}\nserver log:\n{}",
        log_text(&t.log)
    );
    assert_eq!(r["samples"], SERIES * SAMPLES, "{r}");
    assert_eq!(samples_total(&t.http), (SERIES * SAMPLES) as f64);
}
