//! Prometheus' ecosystem against Thermostat (issue 20), with the real programs, started by the
//! tests on loopback: Prometheus in agent mode and vmagent scrape an exporter the test serves
//! (and Thermostat's own `/metrics`) and remote-write to `POST /api/v1/write`; remote write 2.0
//! and bad input by hand; promtool and vmalert read through the Prometheus query API. Every
//! value is checked against Thermostat's own statistics API.
//!
//! Peers: Debian's `prometheus` (prometheus, promtool) and `victoria-metrics` (vmagent,
//! vmalert), installed by `scripts/setup-prometheus` and `scripts/setup-victoriametrics`.
//! Without them a test is skipped with a printed reason, or fails under `CI=true`.

mod peers;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message as _;
use thermostat_auth::{digest_hex, new_token};
use thermostat_proto::v1::MetricDatum;

use crate::util::{TestServer, dims, now_ms, request, stats_request};
use peers::{Exporter, Exposition, Peer, eventually, require_binaries, wait_ready};
use wire::{V1_CONTENT_TYPE, V2_CONTENT_TYPE, snappy, v1, v2};

/// One period that holds the whole test: from 10 minutes before its start, an hour long, so
/// that every statistic (percentiles too) is one datapoint.
#[derive(Clone, Copy, Debug)]
struct Window {
    start: i64,
    end: i64,
}

impl Window {
    fn around_now() -> Window {
        let now = now_ms();
        let start = now - now.rem_euclid(60_000) - 10 * 60_000;
        Window {
            start,
            end: start + 3_600_000,
        }
    }
}

/// Reads through Thermostat's native APIs, with a token when access control is on.
#[derive(Clone, Copy)]
struct Reader<'a> {
    server: &'a TestServer,
    token: Option<&'a str>,
}

impl<'a> Reader<'a> {
    fn open(server: &'a TestServer) -> Self {
        Reader {
            server,
            token: None,
        }
    }

    fn grpc<T>(&self, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        if let Some(t) = self.token {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        r
    }
}

/// Statistics of one series over `w`, through the native gRPC API: `Err` when it has no
/// datapoint (or, unexpectedly, more than one).
async fn stats(
    reader: &Reader<'_>,
    w: Window,
    namespace: &str,
    metric: &str,
    dimensions: &[(&str, &str)],
    statistics: &[&str],
) -> Result<HashMap<String, f64>, String> {
    let r = reader
        .server
        .client()
        .await
        .get_metric_statistics(reader.grpc(stats_request(
            namespace, metric, dimensions, w.start, w.end, 3600, statistics,
        )))
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    match r.datapoints.as_slice() {
        [] => Err(format!("no data for {namespace}/{metric}{dimensions:?}")),
        [one] => Ok(one.statistics.clone()),
        many => Err(format!(
            "{} datapoints (units?) for {namespace}/{metric}{dimensions:?}: {many:?}",
            many.len()
        )),
    }
}

/// Statistics of one series for each `period`-second period in [start, end), oldest first.
async fn periods(
    server: &TestServer,
    namespace: &str,
    metric: &str,
    dimensions: &[(&str, &str)],
    (start, end, period): (i64, i64, i32),
    statistic: &str,
) -> BTreeMap<i64, f64> {
    let r = server
        .client()
        .await
        .get_metric_statistics(stats_request(
            namespace,
            metric,
            dimensions,
            start,
            end,
            period,
            &[statistic],
        ))
        .await
        .unwrap()
        .into_inner();
    r.datapoints
        .iter()
        .map(|d| (d.timestamp_ms, d.statistics[statistic]))
        .collect()
}

/// The series of `namespace` (`GET /api/v1/metrics`): metric name and dimensions.
async fn listed(reader: &Reader<'_>, namespace: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut req = reqwest::Client::new().get(
        reader
            .server
            .http(&format!("/api/v1/metrics?namespace={namespace}")),
    );
    if let Some(t) = reader.token {
        req = req.bearer_auth(t);
    }
    let body: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
    body["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let dims = m["dimensions"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            (m["metric_name"].as_str().unwrap().to_owned(), dims)
        })
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> BTreeMap<String, String> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `value` is within the bucket (lower, upper], give or take the 1% of Thermostat's
/// percentiles.
fn in_bucket(value: f64, lower: f64, upper: f64) -> bool {
    value > lower * 0.99 && value <= upper * 1.01
}

/// What the exporter serves at first: the counter at 10, the gauge at 21.5, three latencies.
fn first_exposition() -> Exposition {
    let mut e = Exposition {
        requests: 10.0,
        temperature: 21.5,
        latency_buckets: [0; 5],
        latency_sum: 0.0,
        visible: true,
        native: None,
    };
    e.observe(0.05, 1);
    e.observe(0.2, 1);
    e.observe(0.7, 1);
    e
}

/// The scrape jobs both senders use: `demo` (the exporter) and `thermostat` (its own
/// `/metrics`, with a viewer's token when access control is on), every second.
fn scrape_configs(exporter: &Exporter, server: &TestServer, viewer: Option<&str>) -> String {
    let auth = viewer.map_or(String::new(), |t| {
        format!("    authorization:\n      credentials: '{t}'\n")
    });
    format!(
        "scrape_configs:
  - job_name: demo
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ['{}']
  - job_name: thermostat
    scrape_interval: 1s
    scrape_timeout: 1s
{auth}    static_configs:
      - targets: ['{}']
",
        exporter.addr, server.running.http_addr
    )
}

/// The exporter's values change while `sender` scrapes them and remote-writes them to
/// `server`; at each step the series read back through the statistics API hold what was
/// served: the counter's Sum is its increase since the first scrape, the gauge's minimum and
/// maximum the values served, the classic histogram one distribution (`demo_latency_seconds`)
/// with the observations made since the first scrape. Then the series disappear for a while
/// (the sender writes staleness markers, which end the streams) and come back: the counter's
/// jump while it was away is not an increase, the markers are no values.
async fn scrape_scenario(reader: Reader<'_>, exporter: &Exporter, sender: &Peer) {
    let server = &reader;
    let w = Window::around_now();
    let instance = exporter.addr.to_string();
    let counter = [("instance", instance.as_str()), ("path", "/a")];
    let single = [("instance", instance.as_str())];

    // The first scrape: a baseline, which records nothing for the counter and the histogram.
    exporter.wait_scrapes(sender, 1).await;
    exporter
        .change(sender, |e| {
            e.requests += 5.0;
            e.temperature = 23.0;
            e.observe(0.2, 12);
            e.observe(0.8, 1);
        })
        .await;
    exporter
        .change(sender, |e| {
            e.requests += 7.0;
            e.temperature = 19.25;
            e.observe(0.2, 6);
            e.observe(0.8, 1);
        })
        .await;

    eventually("the counter's increase", &[sender], || async move {
        let s = stats(server, w, "demo", "demo_requests_total", &counter, &["Sum"]).await?;
        if s["Sum"] == 12.0 {
            Ok(())
        } else {
            Err(format!("Sum {} (want 5 + 7 = 12)", s["Sum"]))
        }
    })
    .await;
    eventually("the gauge's values", &[sender], || async move {
        let s = stats(
            server,
            w,
            "demo",
            "demo_temperature_celsius",
            &single,
            &["Minimum", "Maximum"],
        )
        .await?;
        if (s["Minimum"], s["Maximum"]) == (19.25, 23.0) {
            Ok(())
        } else {
            Err(format!("{s:?} (want Minimum 19.25, Maximum 23)"))
        }
    })
    .await;
    let latency = eventually("the histogram's distribution", &[sender], || async move {
        let s = stats(
            server,
            w,
            "demo",
            "demo_latency_seconds",
            &single,
            &["SampleCount", "Sum", "p50", "p95"],
        )
        .await?;
        if s["SampleCount"] == 20.0 {
            Ok(s)
        } else {
            Err(format!("{s:?} (want SampleCount 13 + 7 = 20)"))
        }
    })
    .await;
    let want_sum = 18.0 * 0.2 + 2.0 * 0.8;
    assert!(
        (latency["Sum"] - want_sum).abs() < 1e-9,
        "histogram Sum: {latency:?}, want {want_sum}"
    );
    // 18 observations in (0.1, 0.25], 2 in (0.5, 1]: the 10th and the 19th of 20.
    let p50 = latency.get("p50").copied().unwrap_or(f64::NAN);
    let p95 = latency.get("p95").copied().unwrap_or(f64::NAN);
    assert!(
        in_bucket(p50, 0.1, 0.25),
        "p50 {p50} not in (0.1, 0.25]: {latency:?}"
    );
    assert!(
        in_bucket(p95, 0.5, 1.0),
        "p95 {p95} not in (0.5, 1]: {latency:?}"
    );

    // The labels are the dimensions; the job is the namespace, not a dimension.
    let series = listed(server, "demo").await;
    for (name, want) in [
        ("demo_requests_total", pairs(&counter)),
        ("demo_temperature_celsius", pairs(&single)),
        ("demo_latency_seconds", pairs(&single)),
        ("up", pairs(&single)),
    ] {
        assert!(
            series.iter().any(|(n, d)| n == name && *d == want),
            "no series {name} {want:?} in namespace demo: {series:?}"
        );
    }
    for (name, d) in &series {
        assert!(
            !d.contains_key("job") && !d.contains_key("__name__"),
            "{name} {d:?}"
        );
    }
    // `up` is 1 for the scrapes that succeeded (a scrape that timed out on a starved machine
    // would be a 0, which is Prometheus' business, not Thermostat's).
    let up = stats(server, w, "demo", "up", &single, &["Maximum"])
        .await
        .unwrap();
    assert_eq!(up["Maximum"], 1.0, "up: {up:?}");

    // Thermostat's own /metrics, scraped as job `thermostat`.
    let own = reader.server.running.http_addr.to_string();
    let own = own.as_str();
    eventually("Thermostat's own series", &[sender], || async move {
        let s = stats(
            server,
            w,
            "thermostat",
            "thermostat_series_active",
            &[("instance", own)],
            &["Maximum"],
        )
        .await?;
        if s["Maximum"] >= 3.0 {
            Ok(())
        } else {
            Err(format!(
                "thermostat_series_active {s:?}, want at least the 3 demo series"
            ))
        }
    })
    .await;

    // The series disappear (the sender writes staleness markers: the streams end), then come
    // back with the counter 100 higher: a new stream, whose first sample records nothing.
    exporter.change(sender, |e| e.visible = false).await;
    let n = exporter.scrapes();
    exporter.wait_scrapes(sender, n + 1).await;
    exporter
        .change(sender, |e| {
            e.visible = true;
            e.requests += 100.0;
            e.temperature = 30.5;
            e.observe(0.2, 5);
        })
        .await;
    exporter
        .change(sender, |e| {
            e.requests += 4.0;
            e.temperature = 31.0;
            e.observe(0.8, 2);
        })
        .await;
    eventually(
        "the gauge's values after the gap",
        &[sender],
        || async move {
            let s = stats(
                server,
                w,
                "demo",
                "demo_temperature_celsius",
                &single,
                &["Minimum", "Maximum"],
            )
            .await?;
            if (s["Minimum"], s["Maximum"]) == (19.25, 31.0) {
                Ok(())
            } else {
                Err(format!(
                    "{s:?} (want Minimum 19.25 and Maximum 31: staleness markers are no values)"
                ))
            }
        },
    )
    .await;
    // The sender sends in order (one queue), so everything up to the gauge's 31 is stored.
    let s = stats(server, w, "demo", "demo_requests_total", &counter, &["Sum"])
        .await
        .unwrap();
    assert_eq!(
        s["Sum"], 16.0,
        "counter Sum after the gap: want 12 + 4 (the 100 it jumped while stale is no increase)"
    );
    let s = stats(
        server,
        w,
        "demo",
        "demo_latency_seconds",
        &single,
        &["SampleCount"],
    )
    .await
    .unwrap();
    assert_eq!(
        s["SampleCount"], 22.0,
        "histogram SampleCount after the gap: want 20 + 2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_agent_remote_writes_scraped_series() {
    let Some([prometheus]) = require_binaries(
        "prometheus_agent_remote_writes_scraped_series",
        ["prometheus"],
    ) else {
        return;
    };
    // Access control on, as in production: the agent's token may push to the two jobs'
    // namespaces only; the viewer's token scrapes /metrics and reads the statistics back.
    let (agent, viewer) = (new_token(), new_token());
    let auth = format!(
        "tokens:\n  - {{name: prometheus, role: agent, namespaces: [demo, thermostat], token_sha256: {}}}\n  - {{name: reader, role: viewer, token_sha256: {}}}\n",
        digest_hex(&agent),
        digest_hex(&viewer)
    );
    let server = TestServer::start_with(|s| s.auth = serde_yaml_ng::from_str(&auth).unwrap()).await;
    let exporter = Exporter::start(first_exposition()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "global:
  scrape_interval: 1s
  scrape_timeout: 1s
{}remote_write:
  - url: {}
    authorization:
      credentials: '{agent}'
    queue_config:
      batch_send_deadline: 1s
      max_shards: 1
      min_backoff: 100ms
      max_backoff: 1s
    metadata_config:
      send_interval: 1s
",
        scrape_configs(&exporter, &server, Some(&viewer)),
        server.http("/api/v1/write"),
    );
    let prometheus = spawn_prometheus(prometheus, dir.path(), &config, "agent").await;
    let reader = Reader {
        server: &server,
        token: Some(&viewer),
    };
    scrape_scenario(reader, &exporter, &prometheus).await;
}

/// Prometheus in agent mode with `config` and the `features`, in `dir`, ready.
async fn spawn_prometheus(binary: PathBuf, dir: &Path, config: &str, features: &str) -> Peer {
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let port = thermostat_testkit::free_port();
    let prometheus = Peer::spawn(
        "prometheus",
        dir,
        Command::new(binary).args([
            format!("--enable-feature={features}"),
            "--config.file=prometheus.yml".to_owned(),
            format!("--storage.agent.path={}", dir.join("agent").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ]),
    );
    wait_ready(&prometheus, &format!("http://127.0.0.1:{port}/-/ready")).await;
    prometheus
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_agent_remote_writes_native_histograms() {
    let Some([prometheus]) = require_binaries(
        "prometheus_agent_remote_writes_native_histograms",
        ["prometheus"],
    ) else {
        return;
    };
    let server = TestServer::start().await;
    let reader = Reader::open(&server);
    let w = Window::around_now();
    // Schema 0: bucket 1 is (1, 2], bucket 3 is (4, 8].
    let exporter = Exporter::start(Exposition {
        requests: 0.0,
        temperature: 0.0,
        latency_buckets: [0; 5],
        latency_sum: 0.0,
        visible: true,
        native: Some((vec![0, 2, 0, 1], 2.0 * 1.5 + 6.0)),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: native
    static_configs:
      - targets: ['{}']
remote_write:
  - url: {}
    send_native_histograms: true
    queue_config:
      batch_send_deadline: 1s
      max_shards: 1
      min_backoff: 100ms
      max_backoff: 1s
",
        exporter.addr,
        server.http("/api/v1/write"),
    );
    let prometheus =
        spawn_prometheus(prometheus, dir.path(), &config, "agent,native-histograms").await;
    let instance = exporter.addr.to_string();
    let dims = [("instance", instance.as_str()), ("route", "/b")];

    // The first scrape is the baseline; then 10 more in each of the two buckets.
    exporter.wait_scrapes(&prometheus, 1).await;
    exporter
        .change(&prometheus, |e| {
            e.native = Some((vec![0, 7, 0, 6], 7.0 * 1.5 + 6.0 * 6.0));
        })
        .await;
    exporter
        .change(&prometheus, |e| {
            e.native = Some((vec![0, 12, 0, 11], 12.0 * 1.5 + 11.0 * 6.0));
        })
        .await;
    let h = eventually(
        "the native histogram's distribution",
        &[&prometheus],
        || async move {
            let s = stats(
                &reader,
                w,
                "native",
                "demo_rpc_seconds",
                &dims,
                &["SampleCount", "Sum", "p50", "p90"],
            )
            .await?;
            if s["SampleCount"] == 20.0 {
                Ok(s)
            } else {
                Err(format!("{s:?} (want SampleCount 20)"))
            }
        },
    )
    .await;
    assert!((h["Sum"] - (10.0 * 1.5 + 10.0 * 6.0)).abs() < 1e-9, "{h:?}");
    let p50 = h.get("p50").copied().unwrap_or(f64::NAN);
    let p90 = h.get("p90").copied().unwrap_or(f64::NAN);
    assert!(in_bucket(p50, 1.0, 2.0), "p50 {p50} not in (1, 2]: {h:?}");
    assert!(in_bucket(p90, 4.0, 8.0), "p90 {p90} not in (4, 8]: {h:?}");
    let series = listed(&reader, "native").await;
    assert!(
        series
            .iter()
            .any(|(n, d)| n == "demo_rpc_seconds" && *d == pairs(&dims)),
        "{series:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vmagent_remote_writes_scraped_series() {
    let Some([vmagent]) = require_binaries("vmagent_remote_writes_scraped_series", ["vmagent"])
    else {
        return;
    };
    let server = TestServer::start().await;
    let exporter = Exporter::start(first_exposition()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("scrape.yml"),
        scrape_configs(&exporter, &server, None),
    )
    .unwrap();
    let port = thermostat_testkit::free_port();
    let agent = Peer::spawn(
        "vmagent",
        dir.path(),
        Command::new(vmagent).args([
            "-promscrape.config=scrape.yml".to_owned(),
            format!("-remoteWrite.url={}", server.http("/api/v1/write")),
            format!(
                "-remoteWrite.tmpDataPath={}",
                dir.path().join("vmagent-data").display()
            ),
            "-remoteWrite.flushInterval=1s".to_owned(),
            // One queue: the samples arrive in the order they were scraped.
            "-remoteWrite.queues=1".to_owned(),
            format!("-httpListenAddr=127.0.0.1:{port}"),
        ]),
    );
    wait_ready(&agent, &format!("http://127.0.0.1:{port}/health")).await;
    scrape_scenario(Reader::open(&server), &exporter, &agent).await;
}

/// A remote write 2.0 request: symbols, metadata types, a native histogram (two cumulative
/// samples: the second's increase is what is stored), an exemplar.
fn v2_request(t0: i64) -> v2::Request {
    let symbols: Vec<String> = [
        "",
        "__name__",
        "rpc_duration_seconds",
        "job",
        "payments",
        "route",
        "/pay",
        "queue_depth",
        "payments_processed",
        "trace_id",
        "abc123",
        "Seconds spent.",
    ]
    .map(String::from)
    .to_vec();
    let meta = |kind| {
        Some(v2::Metadata {
            r#type: kind,
            help_ref: 0,
            unit_ref: 0,
        })
    };
    let sample = |timestamp, value| v2::Sample { value, timestamp };
    v2::Request {
        symbols,
        timeseries: vec![
            // Schema 0: bucket 1 is (1, 2], bucket 3 is (4, 8]. Counts 2, 1 then 12, 11: the
            // increase is 10 in each.
            v2::TimeSeries {
                labels_refs: vec![1, 2, 3, 4, 5, 6],
                histograms: vec![
                    v2::schema0(t0, &[0, 2, 0, 1], 2.0 * 1.5 + 6.0),
                    v2::schema0(t0 + 15_000, &[0, 12, 0, 11], 12.0 * 1.5 + 11.0 * 6.0),
                ],
                metadata: Some(v2::Metadata {
                    r#type: v2::HISTOGRAM,
                    help_ref: 11,
                    unit_ref: 0,
                }),
                ..Default::default()
            },
            v2::TimeSeries {
                labels_refs: vec![1, 7, 3, 4, 5, 6],
                samples: vec![
                    sample(t0, 3.0),
                    sample(t0 + 15_000, 7.0),
                    sample(t0 + 30_000, 5.0),
                ],
                metadata: meta(v2::GAUGE),
                ..Default::default()
            },
            // A counter by its metadata type alone (no counter suffix).
            v2::TimeSeries {
                labels_refs: vec![1, 8, 3, 4, 5, 6],
                samples: vec![
                    sample(t0, 100.0),
                    sample(t0 + 15_000, 104.0),
                    sample(t0 + 30_000, 110.0),
                ],
                exemplars: vec![v2::Exemplar {
                    labels_refs: vec![9, 10],
                    value: 1.0,
                    timestamp: t0 + 30_000,
                }],
                metadata: meta(v2::COUNTER),
                ..Default::default()
            },
        ],
    }
}

#[tokio::test]
async fn remote_write_2_with_a_native_histogram() {
    let server = TestServer::start().await;
    let reader = Reader::open(&server);
    let w = Window::around_now();
    let t0 = now_ms() - 60_000;
    let body = snappy(&v2_request(t0).encode_to_vec());
    let (status, headers, text) =
        wire::post(&server.http("/api/v1/write"), V2_CONTENT_TYPE, body).await;
    assert!(
        status == 204 || status == 200,
        "remote write 2.0: {status} {text}"
    );
    let written = |h: &str| -> u64 {
        let name = format!("X-Prometheus-Remote-Write-{h}-Written");
        headers
            .get(&name)
            .unwrap_or_else(|| panic!("no {name} header: {headers:?}"))
            .to_str()
            .unwrap()
            .parse()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    assert_eq!(written("Samples"), 6, "{headers:?}");
    assert_eq!(written("Histograms"), 2, "{headers:?}");
    assert!(written("Exemplars") <= 1, "{headers:?}");

    let route = [("route", "/pay")];
    let h = stats(
        &reader,
        w,
        "payments",
        "rpc_duration_seconds",
        &route,
        &["SampleCount", "Sum", "p50", "p90"],
    )
    .await
    .unwrap();
    assert_eq!(h["SampleCount"], 20.0, "the histogram's increase: {h:?}");
    assert!((h["Sum"] - (10.0 * 1.5 + 10.0 * 6.0)).abs() < 1e-9, "{h:?}");
    let p50 = h.get("p50").copied().unwrap_or(f64::NAN);
    let p90 = h.get("p90").copied().unwrap_or(f64::NAN);
    assert!(in_bucket(p50, 1.0, 2.0), "p50 {p50} not in (1, 2]: {h:?}");
    assert!(in_bucket(p90, 4.0, 8.0), "p90 {p90} not in (4, 8]: {h:?}");

    let g = stats(
        &reader,
        w,
        "payments",
        "queue_depth",
        &route,
        &["SampleCount", "Minimum", "Maximum", "Sum"],
    )
    .await
    .unwrap();
    assert_eq!(
        (g["SampleCount"], g["Minimum"], g["Maximum"], g["Sum"]),
        (3.0, 3.0, 7.0, 15.0),
        "the gauge's samples: {g:?}"
    );
    let c = stats(
        &reader,
        w,
        "payments",
        "payments_processed",
        &route,
        &["Sum"],
    )
    .await
    .unwrap();
    assert_eq!(
        c["Sum"], 10.0,
        "a counter by metadata: increases 4 + 6: {c:?}"
    );

    // An unknown content type: 415, naming what is supported.
    let (status, _, text) = wire::post(
        &server.http("/api/v1/write"),
        "application/x-protobuf;proto=io.prometheus.write.v3.Request",
        snappy(&v2_request(t0).encode_to_vec()),
    )
    .await;
    assert_eq!(status, 415, "{text}");
    assert!(
        text.contains("application/x-protobuf") && text.contains("io.prometheus.write.v2.Request"),
        "415 names the supported types: {text}"
    );
    let r = reqwest::Client::new()
        .post(server.http("/api/v1/write"))
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
}

/// A valid series sent along with every bad one: nothing of a refused request is stored.
fn innocent(t: i64) -> v1::TimeSeries {
    v1::series(
        &[("__name__", "innocent_gauge"), ("job", "badinput")],
        &[(t, 1.0)],
    )
}

fn encode_v1(series: Vec<v1::TimeSeries>) -> Vec<u8> {
    v1::WriteRequest { timeseries: series }.encode_to_vec()
}

#[tokio::test]
async fn bad_remote_write_requests_are_refused_whole() {
    let server = TestServer::start().await;
    let reader = Reader::open(&server);
    let url = server.http("/api/v1/write");
    let t = now_ms() - 10_000;

    let mut wide = vec![("__name__", "wide_gauge"), ("job", "badinput")];
    let names: Vec<String> = (0..31).map(|i| format!("label_{i:02}")).collect();
    wide.extend(names.iter().map(|n| (n.as_str(), "x")));

    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "a body that is not snappy",
            encode_v1(vec![
                innocent(t),
                v1::series(
                    &[("__name__", "plain_gauge"), ("job", "badinput")],
                    &[(t, 1.0)],
                ),
            ]),
            vec!["snappy"],
        ),
        (
            "a truncated protobuf",
            {
                let whole = encode_v1(vec![
                    innocent(t),
                    v1::series(
                        &[("__name__", "truncated_gauge"), ("job", "badinput")],
                        &[(t, 1.0), (t + 1000, 2.0)],
                    ),
                ]);
                snappy(&whole[..whole.len() - 5])
            },
            vec!["protobuf"],
        ),
        (
            "31 labels besides __name__ and job",
            snappy(&encode_v1(vec![
                innocent(t),
                v1::series(&wide, &[(t, 1.0)]),
            ])),
            vec!["wide_gauge", "at most 30"],
        ),
        (
            "an invalid label name",
            snappy(&encode_v1(vec![
                innocent(t),
                v1::series(
                    &[
                        ("__name__", "oddly_labelled"),
                        ("job", "badinput"),
                        ("1st-label", "x"),
                    ],
                    &[(t, 1.0)],
                ),
            ])),
            vec!["oddly_labelled", "1st-label"],
        ),
        (
            "a NaN that is not the staleness marker",
            snappy(&encode_v1(vec![
                innocent(t),
                v1::series(
                    &[("__name__", "nan_gauge"), ("job", "badinput")],
                    &[(t, f64::NAN)],
                ),
            ])),
            vec!["nan_gauge", "NaN"],
        ),
    ];
    for (what, body, words) in cases {
        let (status, _, text) = wire::post(&url, V1_CONTENT_TYPE, body).await;
        eprintln!("{what}: {status} {text}");
        assert!(
            (400..500).contains(&status) && status != 404 && status != 415,
            "{what}: want a 4xx refusal, got {status} {text}"
        );
        assert!(
            !text.trim().is_empty(),
            "{what}: {status} without a message"
        );
        for word in words {
            assert!(
                text.to_lowercase().contains(&word.to_lowercase()),
                "{what}: the message should name {word:?}: {status} {text}"
            );
        }
    }
    // Nothing of any of them is stored: not even the valid series sent with each.
    let stored = listed(&reader, "badinput").await;
    assert!(
        stored.is_empty(),
        "stored from refused requests: {stored:?}"
    );
    let stored = listed(&reader, "Prometheus").await;
    assert!(
        stored.is_empty(),
        "stored from refused requests: {stored:?}"
    );

    // The same valid series alone is stored (the check above can see it).
    let (status, _, text) =
        wire::post(&url, V1_CONTENT_TYPE, snappy(&encode_v1(vec![innocent(t)]))).await;
    assert!(status == 204 || status == 200, "{status} {text}");
    let stored = listed(&reader, "badinput").await;
    assert_eq!(
        stored,
        vec![("innocent_gauge".to_owned(), BTreeMap::new())],
        "the valid series alone"
    );
}

/// Test data through the native API (standard resolution, no unit): two samples a minute for
/// ten minutes, `demo_temperature_celsius` in namespace `demo` for sensors 1 and 2.
/// Sensor 1's minute `i` holds 20 + i and 21 + i (Average 20.5 + i); sensor 2's 10 + i and
/// 11 + i. Returns the first minute.
async fn push_temperatures(server: &TestServer) -> i64 {
    let now = now_ms();
    let base = now - now.rem_euclid(60_000) - 10 * 60_000;
    let mut data = Vec::new();
    for i in 0..10 {
        for (sensor, low) in [("sensor-1", 20.0), ("sensor-2", 10.0)] {
            for (offset, add) in [(15_000, 0.0), (45_000, 1.0)] {
                data.push(MetricDatum {
                    metric_name: "demo_temperature_celsius".into(),
                    dimensions: dims(&[("instance", sensor)]),
                    timestamp_ms: base + i * 60_000 + offset,
                    value: Some(low + i as f64 + add),
                    ..Default::default()
                });
            }
        }
    }
    server
        .client()
        .await
        .put_metric_data(request("demo", data))
        .await
        .unwrap();
    base
}

/// Runs promtool with `args`: its exit status, stdout and stderr.
async fn promtool(promtool: &Path, args: Vec<String>) -> (bool, String, String) {
    let promtool = promtool.to_owned();
    let out = tokio::task::spawn_blocking(move || Command::new(promtool).args(args).output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

/// A sample's value as Prometheus' JSON gives it (`[time, "value"]`).
fn sample_value(s: &serde_json::Value) -> (f64, f64) {
    (
        s[0].as_f64().unwrap(),
        s[1].as_str().unwrap().parse().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_queries_match_the_statistics_api() {
    let Some([promtool_bin]) =
        require_binaries("promtool_queries_match_the_statistics_api", ["promtool"])
    else {
        return;
    };
    let server = TestServer::start().await;
    let reader = Reader::open(&server);
    let base = push_temperatures(&server).await;
    let url = format!("http://{}", server.running.http_addr);
    let sensor1 = [("instance", "sensor-1")];
    let minutes = |stat| {
        periods(
            &server,
            "demo",
            "demo_temperature_celsius",
            &sensor1,
            (base, base + 10 * 60_000, 60),
            stat,
        )
    };
    let averages = minutes("Average").await;
    let maxima = minutes("Maximum").await;
    assert_eq!(averages.len(), 10, "{averages:?}");

    // Instant at t: the newest period that ends at or before t (a period [b, b + 60 s) is a
    // sample stamped b + 60 s: at 9 min 50 s the minute 9 has not ended, minute 8 is read),
    // Average by default; `stat` picks another statistic.
    let at = base + 9 * 60_000 + 50_000;
    let at_s = (at / 1000).to_string();
    for (selector, want) in [
        (
            r#"demo_temperature_celsius{instance="sensor-1"}"#,
            averages[&(base + 8 * 60_000)],
        ),
        (
            r#"demo_temperature_celsius{instance="sensor-1",stat="Maximum"}"#,
            maxima[&(base + 8 * 60_000)],
        ),
    ] {
        let (ok, out, err) = promtool(
            &promtool_bin,
            args(&[
                "query", "instant", "-o", "json", "--time", &at_s, &url, selector,
            ]),
        )
        .await;
        assert!(ok, "promtool query instant {selector}: {err}");
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        let v = v.as_array().unwrap();
        assert_eq!(v.len(), 1, "{selector}: {out}");
        assert_eq!(
            v[0]["metric"]["__name__"], "demo_temperature_celsius",
            "{out}"
        );
        assert_eq!(v[0]["metric"]["namespace"], "demo", "{out}");
        assert_eq!(v[0]["metric"]["instance"], "sensor-1", "{out}");
        let (_, got) = sample_value(&v[0]["value"]);
        assert_eq!(got, want, "{selector} at {at_s}: {out}");
    }

    // Range, step 60 s: the value at t is the statistic of the minute that ends at t.
    let (start, end) = ((base + 60_000) / 1000, (base + 10 * 60_000) / 1000);
    let (ok, out, err) = promtool(
        &promtool_bin,
        args(&[
            "query",
            "range",
            "-o",
            "json",
            "--start",
            &start.to_string(),
            "--end",
            &end.to_string(),
            "--step",
            "60s",
            &url,
            r#"demo_temperature_celsius{instance="sensor-1"}"#,
        ]),
    )
    .await;
    assert!(ok, "promtool query range: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let v = v.as_array().unwrap();
    assert_eq!(v.len(), 1, "{out}");
    let got: Vec<(f64, f64)> = v[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(sample_value)
        .collect();
    let want: Vec<(f64, f64)> = (1..=10)
        .map(|k| {
            let t = base + k * 60_000;
            ((t / 1000) as f64, averages[&(t - 60_000)])
        })
        .collect();
    assert_eq!(
        got, want,
        "range query vs the statistics API's minutes: {out}"
    );

    // Series and label values: what the native listing holds.
    let (ok, out, err) = promtool(
        &promtool_bin,
        args(&[
            "query",
            "series",
            "--match",
            "demo_temperature_celsius",
            &url,
        ]),
    )
    .await;
    assert!(ok, "promtool query series: {err}");
    let mut got: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    got.sort_unstable();
    let mut want: Vec<String> = listed(&reader, "demo")
        .await
        .iter()
        .map(|(name, d)| {
            format!(
                r#"{{__name__="{name}", instance="{}", namespace="demo"}}"#,
                d["instance"]
            )
        })
        .collect();
    want.sort_unstable();
    assert_eq!(want.len(), 2, "the two sensors are listed");
    assert_eq!(got, want, "promtool query series: {out}");

    for (label, want) in [
        ("__name__", vec!["demo_temperature_celsius"]),
        ("instance", vec!["sensor-1", "sensor-2"]),
        ("namespace", vec!["demo"]),
    ] {
        let (ok, out, err) = promtool(&promtool_bin, args(&["query", "labels", &url, label])).await;
        assert!(ok, "promtool query labels {label}: {err}");
        let got: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(got, want, "promtool query labels {label}");
    }

    // An unsupported construct is bad_data, never a wrong answer.
    let (ok, out, err) = promtool(
        &promtool_bin,
        args(&[
            "query",
            "instant",
            &url,
            "predict_linear(demo_temperature_celsius[5m], 60)",
        ]),
    )
    .await;
    assert!(!ok, "predict_linear answered: {out}");
    assert!(
        err.contains("bad_data") && err.contains("predict_linear"),
        "want a bad_data error naming predict_linear: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vmalert_evaluates_rules_against_thermostat() {
    let Some([vmalert]) =
        require_binaries("vmalert_evaluates_rules_against_thermostat", ["vmalert"])
    else {
        return;
    };
    // Access control on: vmalert reads with a viewer's token and writes its recorded series
    // (no job label: namespace `Prometheus`) with an agent's.
    let (writer, viewer) = (new_token(), new_token());
    let auth = format!(
        "tokens:\n  - {{name: vmalert, role: agent, namespaces: [demo, Prometheus], token_sha256: {}}}\n  - {{name: reader, role: viewer, token_sha256: {}}}\n",
        digest_hex(&writer),
        digest_hex(&viewer)
    );
    let server = TestServer::start_with(|s| s.auth = serde_yaml_ng::from_str(&auth).unwrap()).await;
    let reader = Reader {
        server: &server,
        token: Some(&viewer),
    };
    let pusher = Reader {
        server: &server,
        token: Some(&writer),
    };
    let w = Window::around_now();
    // Constant temperatures over the last ten minutes: 25 for sensor 1, 15 for sensor 2, so
    // that whichever period vmalert's step selects holds the same value.
    let now = now_ms();
    let mut data = Vec::new();
    for i in 0..=20 {
        for (sensor, v) in [("sensor-1", 25.0), ("sensor-2", 15.0)] {
            data.push(MetricDatum {
                metric_name: "demo_temperature_celsius".into(),
                dimensions: dims(&[("instance", sensor)]),
                timestamp_ms: now - 600_000 + i * 30_000,
                value: Some(v),
                ..Default::default()
            });
        }
    }
    server
        .client()
        .await
        .put_metric_data(pusher.grpc(request("demo", data)))
        .await
        .unwrap();
    let sensor1 = stats(
        &reader,
        w,
        "demo",
        "demo_temperature_celsius",
        &[("instance", "sensor-1")],
        &["Average"],
    )
    .await
    .unwrap()["Average"];

    let (notifier, mut alerts) = alertmanager().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:
  - name: thermostat
    interval: 1s
    rules:
      - alert: HotSensor
        expr: demo_temperature_celsius > 20
        labels:
          severity: page
        annotations:
          summary: '{{ $labels.instance }} at {{ $value }}'
      - record: demo:temperature_celsius:max
        expr: max(demo_temperature_celsius)
",
    )
    .unwrap();
    let port = thermostat_testkit::free_port();
    let url = format!("http://{}", server.running.http_addr);
    let vmalert = Peer::spawn(
        "vmalert",
        dir.path(),
        Command::new(vmalert).args([
            "-rule=rules.yml".to_owned(),
            format!("-datasource.url={url}"),
            format!("-datasource.bearerToken={viewer}"),
            // Recorded series are written back to Thermostat by remote write.
            format!("-remoteWrite.url={url}"),
            format!("-remoteWrite.bearerToken={writer}"),
            "-remoteWrite.flushInterval=1s".to_owned(),
            format!("-notifier.url={notifier}"),
            "-evaluationInterval=1s".to_owned(),
            format!("-httpListenAddr=127.0.0.1:{port}"),
        ]),
    );
    let api = format!("http://127.0.0.1:{port}");
    let api = api.as_str();
    wait_ready(&vmalert, &format!("{api}/health")).await;

    // Both rules evaluated without error: the alert fires for sensor 1 alone, with its value.
    let rules = eventually("vmalert's rules evaluated", &[&vmalert], || async move {
        let body: serde_json::Value = reqwest::get(format!("{api}/api/v1/rules"))
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let rules = body["data"]["groups"][0]["rules"].clone();
        let done = rules.as_array().is_some_and(|r| {
            r.len() == 2
                && r.iter().all(|r| {
                    r["lastError"] != "" || r["lastSamples"].as_u64().is_some_and(|n| n > 0)
                })
        });
        if done {
            Ok(rules)
        } else {
            Err(body.to_string())
        }
    })
    .await;
    for r in rules.as_array().unwrap() {
        assert_eq!(r["lastError"], "", "rule {} failed: {r}", r["name"]);
        assert_eq!(r["health"], "ok", "{r}");
    }
    let body: serde_json::Value = reqwest::get(format!("{api}/api/v1/alerts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let firing = body["data"]["alerts"].as_array().unwrap();
    assert_eq!(firing.len(), 1, "one alert (sensor 1 only): {body}");
    assert_eq!(firing[0]["state"], "firing", "{body}");
    assert_eq!(firing[0]["labels"]["instance"], "sensor-1", "{body}");
    assert_eq!(firing[0]["labels"]["namespace"], "demo", "{body}");
    let value: f64 = firing[0]["value"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        value, sensor1,
        "the alert's value is the statistics API's: {body}"
    );

    // The notifier got it.
    let sent = tokio::time::timeout(peers::DEADLINE, alerts.recv())
        .await
        .unwrap_or_else(|_| panic!("no alert at the notifier\n{}", vmalert.log_tail()))
        .unwrap();
    assert_eq!(sent[0]["labels"]["alertname"], "HotSensor", "{sent}");
    assert_eq!(sent[0]["labels"]["instance"], "sensor-1", "{sent}");

    // The recorded series came back by remote write (no job label: namespace `Prometheus`)
    // with the maximum of the two sensors.
    eventually(
        "the recorded series in Thermostat",
        &[&vmalert],
        || async move {
            let s = stats(
                &reader,
                w,
                "Prometheus",
                "demo:temperature_celsius:max",
                &[],
                &["Minimum", "Maximum"],
            )
            .await?;
            if (s["Minimum"], s["Maximum"]) == (sensor1, sensor1) {
                Ok(())
            } else {
                Err(format!("{s:?}, want {sensor1}"))
            }
        },
    )
    .await;
}

/// An Alertmanager stand-in on 127.0.0.1:0 (`POST /api/v2/alerts`): its base URL and the
/// alert lists posted to it.
async fn alertmanager() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/api/v2/alerts",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            async move {
                if let Ok(v) = serde_json::from_str(&body) {
                    let _ = tx.send(v);
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}
