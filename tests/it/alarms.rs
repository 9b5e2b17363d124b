//! Alarms end to end: the CLI (`check`, `test`, `backtest`) through the real binary, and the
//! server evaluating alarms over data pushed by gRPC, with history, SetAlarmState and reload.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use thermostat_proto::v1::MetricDatum;

use crate::process::ServerProcess;
use crate::util::*;

fn thermostat(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_thermostat"))
        .args(args)
        .output()
        .expect("runs the binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn examples() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/examples").to_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn check_accepts_the_examples_and_reports_every_error_with_positions() {
    let (code, out, err) = thermostat(&["check", &examples()]);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.starts_with("ok: "), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.yaml",
        "alarms:\n  - name: a\n    namespace: App\n    metric_name: M\n    statistic: Avg\n    period_seconds: 45\n    evaluation_periods: 2\n    datapoints_to_alarm: 3\n    threshold: 1\n    comparison_operator: GreaterThanThreshold\n    colour: red\n",
    );
    let (code, out, err) = thermostat(&["check", &bad]);
    assert_eq!(code, 1, "{out}{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.len() >= 4, "every error is reported at once:\n{err}");
    for l in &lines {
        assert!(
            l.starts_with(&format!("{bad}:")),
            "file:line:column: path: message, got {l:?}"
        );
        let rest = &l[bad.len() + 1..];
        let mut parts = rest.splitn(3, ':');
        assert!(
            parts.next().unwrap().parse::<u32>().is_ok(),
            "line number in {l:?}"
        );
        assert!(
            parts.next().unwrap().parse::<u32>().is_ok(),
            "column number in {l:?}"
        );
    }
    assert!(err.contains(":5:16: alarms.a.statistic:"), "{err}");
    assert!(err.contains("alarms.a.period_seconds:"), "{err}");
    assert!(err.contains("alarms.a.datapoints_to_alarm:"), "{err}");
    assert!(err.contains("colour"), "unknown field named: {err}");
}

#[test]
fn test_command_runs_tests_sections_and_fails_on_a_wrong_expectation() {
    let (code, out, err) = thermostat(&["test", &examples()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("failed") && out.contains(" 0 failed"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "t.yaml",
        r#"alarms:
  - name: hot
    namespace: App
    metric_name: Temp
    statistic: Maximum
    period_seconds: 60
    evaluation_periods: 1
    threshold: 50
    comparison_operator: GreaterThanThreshold
tests:
  - name: wrong on purpose
    start: 2024-01-01T00:00:00Z
    datapoints:
      - {at: 30s, value: 90}
    expect:
      - {at: 1m, state: OK}
"#,
    );
    let (code, out, _) = thermostat(&["test", &f]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL"), "{out}");
    assert!(
        out.contains("ALARM"),
        "the diff shows the actual state: {out}"
    );
}

const BACKTEST_ALARM: &str = r#"alarms:
  - name: busy
    namespace: App
    metric_name: Load
    dimensions: {Host: a}
    statistic: Average
    period_seconds: 60
    evaluation_periods: 2
    threshold: 50
    comparison_operator: GreaterThanThreshold
"#;

/// 2023-11-14T22:13:00Z, a multiple of 60 s: minute 0 of the recorded data.
const BASE_SECONDS: i64 = 1_699_999_980;

fn backtest_csv() -> String {
    let mut csv = String::from("timestamp,namespace,metric_name,dimensions,value\n");
    // Minutes 0-4 low, 5-9 high, 10-14 low; one datapoint every 20 s.
    for s in (0..900).step_by(20) {
        let minute = s / 60;
        let v = if (5..10).contains(&minute) { 80 } else { 10 };
        csv.push_str(&format!(
            "{},App,Load,Host=a,{v}\n",
            BASE_SECONDS * 1000 + s * 1000
        ));
    }
    csv
}

#[test]
fn backtest_replays_and_prints_json() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "a.yaml", BACKTEST_ALARM);
    let data = write(dir.path(), "d.csv", &backtest_csv());
    let (from, to) = (BASE_SECONDS.to_string(), (BASE_SECONDS + 900).to_string());
    let (code, out, err) = thermostat(&[
        "backtest", "--config", &cfg, "--data", &data, "--from", &from, "--to", &to, "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        doc["evaluations"], 16,
        "ticks from 0 to 15 minutes, both included"
    );
    let alarm = &doc["alarms"][0];
    assert_eq!(alarm["name"], "busy");
    assert_eq!(alarm["final_state"], "OK");
    let tr = alarm["transitions"].as_array().unwrap();
    let states: Vec<(&str, &str)> = tr
        .iter()
        .map(|t| {
            (
                t["old_state"].as_str().unwrap(),
                t["new_state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("INSUFFICIENT_DATA", "OK"),
            ("OK", "ALARM"),
            ("ALARM", "OK")
        ]
    );
    // ALARM after two high minutes (5 and 6) are complete: at 00:07:00.
    assert_eq!(tr[1]["timestamp"], "2023-11-14T22:20:00Z");
    assert!(
        tr[1]["reason"]
            .as_str()
            .unwrap()
            .contains("Threshold Crossed"),
        "{}",
        tr[1]["reason"]
    );
    assert!(tr[1]["reason_data"].is_object());

    let at = (BASE_SECONDS + 420).to_string();
    let (code, out, _) = thermostat(&[
        "backtest",
        "--config",
        &cfg,
        "--data",
        &data,
        "--from",
        &at,
        "--to",
        &at,
        "--format",
        "json",
        "--initial-state",
        "OK",
    ]);
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        doc["evaluations"], 1,
        "--from T --to T on a tick is one evaluation"
    );
    assert_eq!(doc["alarms"][0]["final_state"], "ALARM");

    let (code, out, _) = thermostat(&["backtest", "--config", &cfg, "--data", &data]);
    assert_eq!(code, 0);
    assert!(out.contains("busy"), "{out}");

    let broken = write(
        dir.path(),
        "bad.csv",
        "timestamp,namespace,metric_name,dimensions,value\nnot-a-time,App,Load,,1\n",
    );
    let (code, _, err) = thermostat(&["backtest", "--config", &cfg, "--data", &broken]);
    assert_eq!(code, 1);
    assert!(err.contains("line 2"), "{err}");
}

const LIVE_ALARMS: &str = r#"alarms:
  - name: live-hot
    description: 10-second high-resolution alarm for the end-to-end test
    namespace: Test/Live
    metric_name: Temp
    dimensions: {Room: lab}
    statistic: Maximum
    period_seconds: 10
    evaluation_periods: 1
    threshold: 50
    comparison_operator: GreaterThanThreshold
    treat_missing_data: missing
"#;

async fn alarm(server: &TestServer, name: &str) -> Value {
    let body: Value = reqwest::get(server.http("/api/v1/alarms"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Pushes `value` once a second until the alarm reaches `want` (at most 40 s).
async fn drive_until(server: &TestServer, value: f64, want: &str) {
    let mut client = server.client().await;
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let d = MetricDatum {
            storage_resolution: 1,
            ..value_datum("Temp", &[("Room", "lab")], 0, value)
        };
        client
            .put_metric_data(request("Test/Live", vec![d]))
            .await
            .unwrap();
        if alarm(server, "live-hot").await["state"] == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "live-hot did not reach {want}: {}",
            alarm(server, "live-hot").await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_pushed_over_grpc_drives_an_alarm_through_every_state_with_history() {
    let cfg_dir = tempfile::tempdir().unwrap();
    write(cfg_dir.path(), "live.yaml", LIVE_ALARMS);
    let cfg = cfg_dir.path().to_owned();
    let server = TestServer::start_with(move |s| s.config = vec![cfg]).await;

    let first = alarm(&server, "live-hot").await;
    assert_eq!(first["state"], "INSUFFICIENT_DATA");
    assert_eq!(first["reason"], "Unchecked: Initial alarm creation");

    drive_until(&server, 10.0, "OK").await;
    drive_until(&server, 90.0, "ALARM").await;
    let a = alarm(&server, "live-hot").await;
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .starts_with("Threshold Crossed: 1 datapoint [90.0"),
        "{a}"
    );
    drive_until(&server, 10.0, "OK").await;

    let h: Value = reqwest::get(server.http("/api/v1/alarms/live-hot/history"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let updates: Vec<&Value> = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["item_type"] == "StateUpdate")
        .collect();
    let summaries: Vec<&str> = updates
        .iter()
        .map(|i| i["summary"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        updates.len(),
        3,
        "three transitions, newest first: {summaries:?}"
    );
    assert!(summaries[0].contains("from ALARM to OK"), "{summaries:?}");
    assert!(summaries[1].contains("from OK to ALARM"), "{summaries:?}");
    assert!(
        summaries[2].contains("from INSUFFICIENT_DATA to OK"),
        "{summaries:?}"
    );
    assert!(
        updates[0]["timestamp"].as_str().unwrap().ends_with('Z'),
        "RFC 3339 times: {}",
        updates[0]
    );

    // States and history survive a restart.
    let TestServer { running, dir } = server;
    running.shutdown();
    running.wait().await.unwrap();
    let again = start_in(dir.path(), |s| s.config = vec![cfg_dir.path().to_owned()]).await;
    let body: Value = reqwest::get(format!("http://{}/api/v1/alarms/live-hot", again.http_addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["state"], "OK", "{body}");
    let h: Value = reqwest::get(format!(
        "http://{}/api/v1/alarms/live-hot/history",
        again.http_addr
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(h["history"].as_array().unwrap().len() >= 3);
    again.shutdown();
    again.wait().await.unwrap();
}

#[tokio::test]
async fn set_alarm_state_and_reload() {
    let cfg_dir = tempfile::tempdir().unwrap();
    let file = write(cfg_dir.path(), "live.yaml", LIVE_ALARMS);
    let cfg = cfg_dir.path().to_owned();
    let server = TestServer::start_with(move |s| s.config = vec![cfg]).await;
    let http = reqwest::Client::new();

    let put = |body: Value| {
        http.put(server.http("/api/v1/alarms/live-hot/state"))
            .json(&body)
            .send()
    };
    let r = put(json!({"state_value": "ALARM", "state_reason": "testing the pager"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let a = alarm(&server, "live-hot").await;
    assert_eq!(a["state"], "ALARM");
    assert_eq!(a["reason"], "testing the pager");
    let r = put(json!({"state_value": "BROKEN", "state_reason": "x"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["field"], "state_value");
    let r = http
        .put(server.http("/api/v1/alarms/nope/state"))
        .json(&json!({"state_value": "OK", "state_reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // An invalid file is rejected whole; the running alarms stay, with their state.
    std::fs::write(
        &file,
        LIVE_ALARMS
            .replace("threshold: 50", "threshold: .nan")
            .replace("period_seconds: 10", "period_seconds: 7"),
    )
    .unwrap();
    let r = http
        .post(server.http("/api/v1/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    let errors = e["error"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{e}");
    assert!(
        errors
            .iter()
            .all(|l| l.as_str().unwrap().starts_with(&file)),
        "{e}"
    );
    assert_eq!(alarm(&server, "live-hot").await["state"], "ALARM");

    // A valid change adds an alarm; the unchanged one keeps its state.
    let mut added = LIVE_ALARMS.to_owned();
    added.push_str(
        &LIVE_ALARMS["alarms:\n".len()..]
            .replace("live-hot", "live-cold")
            .replace("GreaterThanThreshold", "LessThanThreshold"),
    );
    std::fs::write(&file, added).unwrap();
    let r = http
        .post(server.http("/api/v1/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(alarm(&server, "live-hot").await["state"], "ALARM");
    assert_eq!(
        alarm(&server, "live-cold").await["state"],
        "INSUFFICIENT_DATA"
    );

    let h: Value = reqwest::get(server.http("/api/v1/alarms/live-hot/history"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        h["history"].as_array().unwrap().iter().any(|i| i["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("from INSUFFICIENT_DATA to ALARM")),
        "{h}"
    );
}

#[tokio::test]
async fn sighup_reloads_and_sigterm_stops_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let file = write(cfg.path(), "live.yaml", LIVE_ALARMS);
    let config = cfg.path().to_str().unwrap().to_owned();
    let mut child = ServerProcess::start(data.path(), &["--config", &config]);
    let names = |body: &Value| -> Vec<String> {
        body["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let url = format!("http://{}/api/v1/alarms", child.http);
    let body: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(names(&body), ["live-hot"]);

    // An invalid file: SIGHUP is rejected, the running alarms stay.
    std::fs::write(
        &file,
        LIVE_ALARMS.replace("period_seconds: 10", "period_seconds: 7"),
    )
    .unwrap();
    child.signal("-HUP");
    let line = child.wait_log("Rejected the new configuration");
    assert!(line.contains("period_seconds"), "{line}");
    let body: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(names(&body), ["live-hot"]);

    // A valid file: SIGHUP swaps it in.
    std::fs::write(&file, LIVE_ALARMS.replace("live-hot", "live-renamed")).unwrap();
    child.signal("-HUP");
    child.wait_log("Reloaded the configuration.");
    let body: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(names(&body), ["live-renamed"]);

    child.signal("-TERM");
    let status = child.child.wait().unwrap();
    assert!(status.success(), "a clean exit on SIGTERM: {status:?}");
    assert!(
        data.path().join("series.snapshot").exists(),
        "the shutdown wrote the snapshot"
    );
}
