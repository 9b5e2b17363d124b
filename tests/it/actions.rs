//! Alarm actions through the server: a state change scales a simulated group through its
//! policy and POSTs the CloudWatch message to a webhook, with the activity, the delivery and
//! the Action history item visible over HTTP.

use std::time::{Duration, Instant};

use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::util::*;

const CONFIG: &str = r#"alarms:
  - name: web-hot
    description: CPU of the web group
    namespace: Test/Act
    metric_name: Cpu
    dimensions: {AutoScalingGroupName: web}
    statistic: Average
    period_seconds: 10
    evaluation_periods: 1
    threshold: 70
    comparison_operator: GreaterThanThreshold
    alarm_actions: ["policy:web/scale-out", "HOOK"]
    ok_actions: ["HOOK"]
scaling_groups:
  - name: web
    backend: simulated
    min_size: 2
    max_size: 10
    desired_capacity: 2
    simulated: {launch_seconds: 1}
    policies:
      - name: scale-out
        policy_type: SimpleScaling
        adjustment_type: ChangeInCapacity
        scaling_adjustment: 2
        cooldown_seconds: 60
"#;

use crate::util::receiver;

async fn get(server: &TestServer, path: &str) -> Value {
    reqwest::get(server.http(path))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls `f` until it returns `Some` (at most 20 s).
async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_scales_the_group_and_notifies_the_webhook() {
    let (hook, mut bodies) = receiver().await;
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(cfg.path().join("web.yaml"), CONFIG.replace("HOOK", &hook)).unwrap();
    let cfg_path = cfg.path().to_owned();
    let server = TestServer::start_with(move |s| s.config = vec![cfg_path]).await;

    let groups = get(&server, "/api/v1/groups").await;
    assert_eq!(groups["groups"][0]["name"], "web");
    assert_eq!(groups["groups"][0]["desired_capacity"], 2);

    let r = reqwest::Client::new()
        .put(server.http("/api/v1/alarms/web-hot/state"))
        .json(&json!({"state_value": "ALARM", "state_reason": "load test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The policy ran: one activity, 2 -> 4, with EC2 Auto Scaling's cause text.
    let group = get(&server, "/api/v1/groups/web").await;
    assert_eq!(group["desired_capacity"], 4, "{group}");
    let acts = get(&server, "/api/v1/groups/web/activities").await;
    assert_eq!(acts["activities"][0]["status"], "Successful", "{acts}");
    let cause = acts["activities"][0]["cause"].as_str().unwrap().to_owned();
    assert!(
        cause.contains("a monitor alarm web-hot in state ALARM triggered policy scale-out changing the desired capacity from 2 to 4."),
        "{cause}"
    );
    // The simulated instances come in service after their launch time.
    eventually("instances in service", async || {
        let g = get(&server, "/api/v1/groups/web").await;
        (g["in_service_capacity"] == 4).then_some(())
    })
    .await;

    // The webhook got CloudWatch's message.
    let body = tokio::time::timeout(Duration::from_secs(20), bodies.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body["AlarmName"], "web-hot");
    assert_eq!(body["NewStateValue"], "ALARM");
    assert_eq!(body["OldStateValue"], "INSUFFICIENT_DATA");
    assert_eq!(body["NewStateReason"], "load test");
    assert_eq!(body["Trigger"]["MetricName"], "Cpu");

    // The delivery is recorded, and the alarm history has the Action item.
    eventually("a delivered notification", async || {
        let n = get(&server, "/api/v1/notifications").await;
        let first = n["notifications"].get(0)?.clone();
        (first["status"] == "delivered").then_some(())
    })
    .await;
    let history = eventually("an Action history item", async || {
        let h = get(&server, "/api/v1/alarms/web-hot/history").await;
        let items = h["history"].as_array()?.clone();
        items
            .iter()
            .any(|i| i["item_type"] == "Action")
            .then_some(items)
    })
    .await;
    let action = history.iter().find(|i| i["item_type"] == "Action").unwrap();
    assert!(
        action["summary"].as_str().unwrap().contains(&hook),
        "{action}"
    );

    // Self-telemetry counts the transition, the activity and the delivery.
    assert_eq!(
        scrape(
            &server,
            "thermostat_alarm_transitions_total{state=\"ALARM\"}"
        )
        .await,
        Some(1.0)
    );
    assert_eq!(
        scrape(
            &server,
            "thermostat_scaling_activities_total{status=\"Successful\"}"
        )
        .await,
        Some(1.0)
    );
    assert_eq!(
        scrape(
            &server,
            "thermostat_notifications_total{status=\"delivered\"}"
        )
        .await,
        Some(1.0)
    );
}

#[test]
fn simulate_replays_recorded_data_through_alarms_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("web.yaml");
    // Minute-period alarm so that the replay needs no high-resolution data.
    let yaml = CONFIG
        .replace("period_seconds: 10", "period_seconds: 60")
        .replace("\"HOOK\"", "\"https://hooks.example.com/web\"");
    std::fs::write(&cfg, yaml).unwrap();
    // 2023-11-14T22:13:00Z onwards: 5 calm minutes, 5 hot ones, 5 calm ones.
    let base = 1_699_999_980i64;
    let mut csv = String::from("timestamp,namespace,metric_name,dimensions,value\n");
    for s in (0..900).step_by(20) {
        let v = if (300..600).contains(&s) { 95 } else { 20 };
        csv.push_str(&format!(
            "{},Test/Act,Cpu,AutoScalingGroupName=web,{v}\n",
            (base + s) * 1000
        ));
    }
    let data = dir.path().join("d.csv");
    std::fs::write(&data, csv).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_thermostat"))
        .args(["simulate", "--format", "json", "--config"])
        .arg(&cfg)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let group = &doc["groups"][0];
    assert_eq!(group["name"], "web");
    let acts = group["activities"].as_array().unwrap();
    assert!(!acts.is_empty(), "{doc}");
    assert_eq!(acts[0]["policy"], "scale-out");
    assert_eq!(acts[0]["alarm"], "web-hot");
    assert_eq!(
        (
            acts[0]["old_desired_capacity"].as_u64(),
            acts[0]["new_desired_capacity"].as_u64()
        ),
        (Some(2), Some(4))
    );
    // A 60-second cooldown and five hot minutes: more scale-outs follow, capped at max 10.
    assert!(
        group["final_desired_capacity"].as_u64().unwrap() > 4,
        "{doc}"
    );
    assert!(group["final_desired_capacity"].as_u64().unwrap() <= 10);
    let notes = doc["notifications"].as_array().unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n["new_state"] == "ALARM" && n["action"] == "https://hooks.example.com/web"),
        "{doc}"
    );
    assert!(doc["alarms"][0]["transitions"].as_array().unwrap().len() >= 2);
}

/// A webhook receiver that records the signature header with each body.
async fn signed_receiver() -> (String, mpsc::UnboundedReceiver<(String, String)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/signed",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let sig = headers
                    .get("x-thermostat-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send((sig, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/signed", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

/// E-mail over real SMTP (aiosmtpd) and a signed named webhook, from the running binary (the
/// secret comes from its environment).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_and_signed_webhook_from_the_server() {
    use thermostat_testkit::{SmtpSink, require_peers};
    let Some(python) = require_peers("email_and_signed_webhook_from_the_server", &["aiosmtpd"])
    else {
        return;
    };
    let mail = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(&python, &mail.path().join("maildir"));
    let (hook, mut bodies) = signed_receiver().await;
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg.path().join("a.yaml"),
        format!(
            r#"alarms:
  - name: db-slow
    namespace: Test/Mail
    metric_name: Latency
    statistic: p99
    period_seconds: 60
    evaluation_periods: 1
    threshold: 0.5
    comparison_operator: GreaterThanThreshold
    alarm_actions: ["mailto:oncall@example.com", "webhook:audit"]
notifications:
  dashboard_url: http://dashboard.example
  smtp: {{host: 127.0.0.1, port: {port}, from: thermostat@example.com, starttls: none}}
  webhooks:
    - {{name: audit, url: "{hook}", secret_env: THERMOSTAT_TEST_AUDIT_SECRET}}
"#,
            port = sink.port
        ),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let config = cfg.path().to_str().unwrap().to_owned();
    let server = crate::process::ServerProcess::start_with_env(
        data.path(),
        &["--config", &config],
        &[("THERMOSTAT_TEST_AUDIT_SECRET", "s3cret")],
    );
    crate::util::set_alarm_state(&server.http, "db-slow", "ALARM", "slow queries").await;

    let (sig, body) = tokio::time::timeout(Duration::from_secs(20), bodies.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        sig,
        thermostat_notify::webhook::signature(b"s3cret", body.as_bytes()),
        "HMAC-SHA256 of the body"
    );
    let msg: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(msg["AlarmName"], "db-slow");

    let deadline = Instant::now() + Duration::from_secs(20);
    let messages = loop {
        let m = sink.messages();
        if !m.is_empty() {
            break m;
        }
        assert!(Instant::now() < deadline, "no e-mail arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let m = &messages[0];
    assert!(m.contains("oncall@example.com"), "{m}");
    assert!(
        m.lines()
            .any(|l| l.starts_with("Subject:") && l.contains("db-slow")),
        "{m}"
    );
    assert!(m.contains("slow queries"), "the reason is in the body: {m}");
}

/// `secret_file`: a webhook's HMAC key in a file beside the configuration (a relative path,
/// resolved against the configuration file's folder), the signature checked by the receiver.
/// Without the file, `thermostat check` warns at the value's position and `serve` refuses to
/// start, as for a variable that is not set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhook_with_the_secret_in_a_file() {
    let (hook, mut bodies) = signed_receiver().await;
    let cfg = tempfile::tempdir().unwrap();
    let file = cfg.path().join("a.yaml");
    let text = format!(
        r#"alarms:
  - name: disk-full
    namespace: Test/Secrets
    metric_name: Used
    statistic: Maximum
    period_seconds: 60
    evaluation_periods: 1
    threshold: 90
    comparison_operator: GreaterThanThreshold
    alarm_actions: ["webhook:audit"]
notifications:
  webhooks:
    - {{name: audit, url: "{hook}", secret_file: audit-secret}}
"#
    );
    std::fs::write(&file, &text).unwrap();
    let secret = cfg.path().join("audit-secret");
    let column = text.lines().nth(12).unwrap().find("audit-secret}").unwrap() + 1;
    let bin = env!("CARGO_BIN_EXE_thermostat");

    // No file yet: a warning at the value's position, exit 0.
    let out = std::process::Command::new(bin)
        .arg("check")
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let expected = format!(
        "{}:13:{column}: notifications.webhooks.audit.secret_file: warning: cannot read the file {} (",
        file.display(),
        secret.display()
    );
    assert!(err.starts_with(&expected), "{expected}\n{err}");
    assert!(
        err.contains("(thermostat serve refuses to start without it)"),
        "{err}"
    );

    // `serve` refuses to start, naming the setting and the file.
    let data = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(bin)
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data.path().join("refused"))
        .arg("--config")
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("serve started without its secret file");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "notifications.webhooks.audit.secret_file: cannot read the file {}",
            secret.display()
        )),
        "{err}"
    );

    // With the file (one trailing newline is not part of the key), delivered and signed.
    std::fs::write(&secret, "s3cret-in-a-file\n").unwrap();
    let server = crate::process::ServerProcess::start(
        &data.path().join("served"),
        &["--config", file.to_str().unwrap()],
    );
    crate::util::set_alarm_state(&server.http, "disk-full", "ALARM", "disk nearly full").await;
    let (sig, body) = tokio::time::timeout(Duration::from_secs(20), bodies.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        sig,
        thermostat_notify::webhook::signature(b"s3cret-in-a-file", body.as_bytes()),
        "HMAC-SHA256 of the body, keyed with the file's contents"
    );
    // The key is nowhere in what the API shows.
    let notes = get_json(&server.http, "/api/v1/notifications?limit=10").await;
    assert!(!notes.to_string().contains("s3cret"), "{notes}");

    // Rotated on disk, the key takes effect at the next reload although no configuration
    // file changed.
    std::fs::write(
        &secret,
        "rotated-s3cret
",
    )
    .unwrap();
    server.signal("-HUP");
    server.wait_log("Reloaded the configuration");
    crate::util::set_alarm_state(&server.http, "disk-full", "OK", "cleaned up").await;
    crate::util::set_alarm_state(&server.http, "disk-full", "ALARM", "full again").await;
    let (sig, body) = tokio::time::timeout(Duration::from_secs(20), bodies.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        sig,
        thermostat_notify::webhook::signature(b"rotated-s3cret", body.as_bytes()),
        "signed with the rotated key"
    );
}
