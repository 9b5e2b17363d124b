//! The real senders: Prometheus in agent mode and vmagent scrape an exporter the test serves
//! (and Thermostat's own `/metrics`) and remote-write what they scraped to Thermostat.

use std::path::{Path, PathBuf};
use std::process::Command;

use thermostat_auth::{digest_hex, new_token};

use super::peers::{Exporter, Exposition, Peer, eventually, require_binaries, wait_ready};
use super::{Reader, Window, in_bucket, listed, pairs, stats};
use crate::util::TestServer;

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
