//! The real query clients: promtool and vmalert read through Thermostat's Prometheus query
//! API, and get what its own statistics API gives for the same series and periods.

use std::path::Path;
use std::process::Command;

use thermostat_auth::{digest_hex, new_token};
use thermostat_proto::v1::MetricDatum;

use super::peers::{self, Peer, eventually, require_binaries, wait_ready};
use super::{Reader, Window, listed, periods, stats};
use crate::util::{TestServer, dims, now_ms, request};

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

/// Runs promtool with `args`: its exit status, stdout and stderr. Killed, failing the test,
/// when it has not finished within the peers' deadline.
async fn promtool(promtool: &Path, args: Vec<String>) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = Command::new(promtool)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + peers::DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "promtool {args:?} did not finish within {:?}",
                peers::DEADLINE
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    (
        status.success(),
        std::fs::read_to_string(out).unwrap(),
        std::fs::read_to_string(err).unwrap(),
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
