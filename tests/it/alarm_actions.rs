//! `POST /api/v1/alarms/{name}/actions/disable` and `.../enable` (CloudWatch's
//! `DisableAlarmActions` / `EnableAlarmActions`) through the server: a disabled alarm still
//! changes state and records it, but notifies no one; the switch shows in the alarm's JSON
//! and history, holds across a reload and a restart on the same data directory, and once
//! enabled again the next transition notifies.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use thermostat::app::{self, Running, Settings};
use thermostat_metrics::{ManualClock, Timestamp};

use crate::util::{client, receiver, request, value_datum};

const CONFIG: &str = r#"alarms:
  - name: api-slow
    namespace: Test/ActionsSwitch
    metric_name: Latency
    statistic: Maximum
    period_seconds: 60
    evaluation_periods: 1
    threshold: 100
    comparison_operator: GreaterThanThreshold
    alarm_actions: ["HOOK"]
    ok_actions: ["HOOK"]
"#;

/// 2026-11-26T10:00:00Z, a whole minute.
const T0: i64 = 1_795_687_200_000;

async fn start(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Running {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("info")
        .try_init();
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

async fn alarm(running: &Running) -> Value {
    crate::util::get_json(running.http_addr, "/api/v1/alarms/api-slow").await
}

/// `POST /api/v1/alarms/api-slow/actions/{verb}`, which must answer 200.
async fn switch(running: &Running, verb: &str) -> Value {
    let path = format!("/api/v1/alarms/api-slow/actions/{verb}");
    let r = reqwest::Client::new()
        .post(format!("http://{}{path}", running.http_addr))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "POST {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Pushes one latency value at `at` (ms), then sets the clock to `tick` and evaluates.
async fn push_and_tick(running: &Running, clock: &ManualClock, at: i64, value: f64, tick: i64) {
    let req = request(
        "Test/ActionsSwitch",
        vec![value_datum("Latency", &[], at, value)],
    );
    client(running).await.put_metric_data(req).await.unwrap();
    clock.set(Timestamp(tick));
    let engine = Arc::clone(&running.engine);
    tokio::task::spawn_blocking(move || engine.tick(Timestamp(tick)))
        .await
        .unwrap()
        .unwrap();
}

async fn notifications(running: &Running) -> Vec<Value> {
    let n = crate::util::get_json(running.http_addr, "/api/v1/notifications").await;
    n["notifications"].as_array().unwrap().clone()
}

async fn history_summaries(running: &Running) -> Vec<String> {
    let h = crate::util::get_json(running.http_addr, "/api/v1/alarms/api-slow/history").await;
    h["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["summary"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_actions_hold_across_a_restart_and_enabling_them_notifies_again() {
    let (hook, mut bodies) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("alarms.yaml"),
        CONFIG.replace("HOOK", &hook),
    )
    .unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(T0)));
    let running = start(dir.path(), &clock).await;
    assert_eq!(
        alarm(&running).await["actions_enabled"],
        true,
        "as configured"
    );

    let answer = switch(&running, "disable").await;
    assert_eq!(answer, json!({"ok": true, "actions_enabled": false}));
    let a = alarm(&running).await;
    assert_eq!(a["actions_enabled"], false, "{a}");
    assert_eq!(a["configuration"]["actions"]["enabled"], false, "{a}");
    let listed = crate::util::get_json(running.http_addr, "/api/v1/alarms").await;
    assert_eq!(listed["alarms"][0]["actions_enabled"], false, "{listed}");
    assert_eq!(
        switch(&running, "disable").await["actions_enabled"],
        false,
        "disabling twice is no error"
    );
    // A reload of the same files keeps the switch.
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/v1/reload", running.http_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(alarm(&running).await["actions_enabled"], false);

    // A breach: ALARM, recorded in the history, and nothing queued or delivered.
    push_and_tick(&running, &clock, T0 + 20_000, 500.0, T0 + 60_000).await;
    assert_eq!(alarm(&running).await["state"], "ALARM");
    let summaries = history_summaries(&running).await;
    assert_eq!(
        summaries[..2],
        [
            "Alarm updated from INSUFFICIENT_DATA to ALARM",
            "Alarm actions disabled"
        ],
        "newest first: {summaries:?}"
    );
    assert!(notifications(&running).await.is_empty(), "nothing queued");
    assert!(
        tokio::time::timeout(Duration::from_millis(500), bodies.recv())
            .await
            .is_err(),
        "the webhook got nothing"
    );

    // A restart on the same data directory keeps the alarm's actions disabled.
    running.shutdown();
    running.wait().await.unwrap();
    let running = start(dir.path(), &clock).await;
    let a = alarm(&running).await;
    assert_eq!(a["actions_enabled"], false, "{a}");
    assert_eq!(a["state"], "ALARM", "{a}");

    // Enabled again: the next transition notifies.
    assert_eq!(
        switch(&running, "enable").await,
        json!({"ok": true, "actions_enabled": true})
    );
    assert_eq!(alarm(&running).await["actions_enabled"], true);
    assert_eq!(
        history_summaries(&running).await[0],
        "Alarm actions enabled"
    );
    push_and_tick(&running, &clock, T0 + 80_000, 20.0, T0 + 120_000).await;
    assert_eq!(alarm(&running).await["state"], "OK");
    let body = tokio::time::timeout(Duration::from_secs(20), bodies.recv())
        .await
        .expect("the OK notification arrives")
        .unwrap();
    assert_eq!(body["AlarmName"], "api-slow");
    assert_eq!(body["OldStateValue"], "ALARM");
    assert_eq!(body["NewStateValue"], "OK");
    assert_eq!(notifications(&running).await.len(), 1);

    running.shutdown();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_alarm_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("alarms.yaml"),
        CONFIG.replace("HOOK", "https://example.com/hook"),
    )
    .unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(T0)));
    let running = start(dir.path(), &clock).await;
    for verb in ["enable", "disable"] {
        let r = reqwest::Client::new()
            .post(format!(
                "http://{}/api/v1/alarms/nobody/actions/{verb}",
                running.http_addr
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{verb}");
        let body: Value = r.json().await.unwrap();
        assert!(body.to_string().contains("nobody"), "{body}");
    }
    running.shutdown();
    running.wait().await.unwrap();
}
