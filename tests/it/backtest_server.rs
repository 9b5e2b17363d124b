//! `thermostat backtest --server`: the real binary replaying rule sets over the data a real
//! server holds, read through `GET /api/v1/export/series` with a token; `--compare` of two
//! rule sets; refusals (bad token, namespace out of scope, no server) as clear errors with a
//! non-zero exit code; the endpoint's bounds as 400s naming the field.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use thermostat::app::Settings;
use thermostat::settings::ServeArgs;
use thermostat_auth::{digest_hex, new_token};
use thermostat_proto::v1::metrics_service_client::MetricsServiceClient;

use crate::util::*;

const NAMESPACE: &str = "Test/Backtest";

/// A p90 alarm on the pushed latency, with a notification and a scaling action on ALARM.
fn rules(threshold: u32) -> String {
    format!(
        "alarms:
  - name: latency-p90
    namespace: {NAMESPACE}
    metric_name: Latency
    dimensions: {{Host: a}}
    statistic: p90
    period_seconds: 60
    evaluation_periods: 1
    threshold: {threshold}
    comparison_operator: GreaterThanThreshold
    alarm_actions: ['arn:aws:sns:us-east-1:123456789012:ops', 'policy:web/out']
scaling_groups:
  - name: web
    backend: simulated
    min_size: 1
    max_size: 10
    desired_capacity: 2
    policies:
      - {{name: out, policy_type: SimpleScaling, adjustment_type: ChangeInCapacity, scaling_adjustment: 1}}
"
    )
}

/// The server's own alarm file: the alarm without actions (it sends nothing).
const SERVER_RULES: &str = "alarms:
  - {name: latency-p90, namespace: Test/Backtest, metric_name: Latency, dimensions: {Host: a}, statistic: p90, period_seconds: 60, evaluation_periods: 1, threshold: 250, comparison_operator: GreaterThanThreshold}
";

/// A folder holding `yaml` as its one alarm file.
fn config_dir(root: &Path, name: &str, yaml: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("alarms.yaml"), yaml).unwrap();
    dir
}

/// Runs the real binary off the async workers (the server runs in this process), with
/// `token` as THERMOSTAT_TOKEN when given; `(exit code, stdout, stderr)`.
async fn thermostat(args: Vec<String>, token: Option<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_thermostat"));
        cmd.args(&args).env_remove("THERMOSTAT_TOKEN");
        if let Some(t) = token {
            cmd.env("THERMOSTAT_TOKEN", t);
        }
        let out = cmd.output().expect("runs the binary");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// Tokens of the server: an agent to push, a viewer to read, a viewer of another namespace.
struct Tokens {
    agent: String,
    viewer: String,
    elsewhere: String,
}

/// A server with those tokens, its alarm file `config`.
async fn start(dir: &Path, tokens: &Tokens, config: &Path) -> thermostat::app::Running {
    let settings = dir.join("settings.yaml");
    std::fs::write(
        &settings,
        format!(
            "auth:\n  tokens:\n    - {{name: agent, role: agent, token_sha256: {}}}\n    - {{name: viewer, role: viewer, token_sha256: {}}}\n    - {{name: other, role: viewer, namespaces: [Other], token_sha256: {}}}\n",
            digest_hex(&tokens.agent),
            digest_hex(&tokens.viewer),
            digest_hex(&tokens.elsewhere),
        ),
    )
    .unwrap();
    let mut s: Settings = ServeArgs {
        settings: Some(settings),
        ..ServeArgs::default()
    }
    .resolve()
    .unwrap();
    s.grpc_addr = "127.0.0.1:0".parse().unwrap();
    s.http_addr = "127.0.0.1:0".parse().unwrap();
    s.data_dir = dir.join("data");
    s.config = vec![config.to_owned()];
    thermostat::app::start(s).await.unwrap()
}

/// Ten minutes from `t0`: ten samples a minute, 10..100 (p90 = 90) in minutes 0-4 and 8-9,
/// 210..300 (p90 = 290) in minutes 5-7.
async fn push(grpc: std::net::SocketAddr, agent: &str, t0: i64) {
    let mut client = MetricsServiceClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    let mut data = Vec::new();
    for m in 0..10 {
        let base = if (5..8).contains(&m) { 200.0 } else { 0.0 };
        for i in 1..=10 {
            let ts = t0 + m * 60_000 + i * 1000;
            data.push(value_datum(
                "Latency",
                &[("Host", "a")],
                ts,
                base + f64::from(i as i32) * 10.0,
            ));
        }
    }
    let mut req = tonic::Request::new(request(NAMESPACE, data));
    req.metadata_mut()
        .insert("authorization", format!("Bearer {agent}").parse().unwrap());
    client.put_metric_data(req).await.expect("pushes");
}

/// `GET {server}{path}` with `token`, which must answer 200, as JSON.
async fn get_json_authed(server: &str, path: &str, token: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{server}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

fn rfc3339(ms: i64) -> String {
    thermostat_alarms::timefmt::rfc3339(thermostat_metrics::Timestamp(ms))
}

/// `(timestamp, old_state, new_state)` of a JSON list of transitions.
fn transitions(v: &Value) -> Vec<(String, String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["timestamp"].as_str().unwrap().to_owned(),
                t["old_state"].as_str().unwrap().to_owned(),
                t["new_state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backtest_against_a_server_replays_its_data_and_compares_rule_sets() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = Tokens {
        agent: new_token(),
        viewer: new_token(),
        elsewhere: new_token(),
    };
    let new_rules = config_dir(dir.path(), "new", &rules(250));
    let old_rules = config_dir(dir.path(), "old", &rules(350));
    let server_rules = config_dir(dir.path(), "server", SERVER_RULES);
    let running = start(dir.path(), &tokens, &server_rules.join("alarms.yaml")).await;
    let t0 = aligned_past(60_000);
    push(running.grpc_addr, &tokens.agent, t0).await;
    let server = format!("http://{}", running.http_addr);
    let base = |config: &Path| -> Vec<String> {
        [
            "backtest",
            "--server",
            &server,
            "--config",
            &config.display().to_string(),
            "--from",
            &rfc3339(t0),
            "--to",
            &rfc3339(t0 + 10 * 60_000),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    };
    let json = |mut args: Vec<String>| {
        args.extend(["--format".to_owned(), "json".to_owned()]);
        args
    };

    // The replay: p90 over 250 in minutes 5-7 (ticks 6 to 8), exactly as the server's own
    // percentiles would say.
    let (code, out, err) = thermostat(json(base(&new_rules)), Some(tokens.viewer.clone())).await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["evaluations"], 11, "{doc}");
    let alarm = &doc["alarms"][0];
    assert_eq!(alarm["name"], "latency-p90");
    let got = transitions(&alarm["transitions"]);
    assert_eq!(
        got,
        [
            (
                rfc3339(t0 + 60_000),
                "INSUFFICIENT_DATA".into(),
                "OK".into()
            ),
            (rfc3339(t0 + 6 * 60_000), "OK".into(), "ALARM".into()),
            (rfc3339(t0 + 9 * 60_000), "ALARM".into(), "OK".into()),
        ],
        "{doc}"
    );
    // Exactly the p90 the server itself gives for minute 5 (its histogram's value).
    let stats = get_json_authed(
        &server,
        &format!(
            "/api/v1/statistics?namespace={NAMESPACE}&metric_name=Latency&dimensions=Host=a&period_seconds=60&statistics=p90&start={}&end={}",
            t0 / 1000 + 300,
            t0 / 1000 + 360
        ),
        &tokens.viewer,
    )
    .await;
    let p90 = stats["datapoints"][0]["p90"].as_f64().unwrap();
    assert!((p90 - 290.0).abs() < 1.0, "{stats}");
    let reason = alarm["transitions"][1]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("[{p90} (")),
        "{reason}\nserver: {stats}"
    );
    // The same data as a CSV gives the same replay: --server is --data without the file.
    let mut csv = String::from("timestamp,namespace,metric_name,dimensions,value\n");
    for m in 0..10i64 {
        let base = if (5..8).contains(&m) { 200 } else { 0 };
        for i in 1..=10i64 {
            csv.push_str(&format!(
                "{},{NAMESPACE},Latency,Host=a,{}\n",
                t0 + m * 60_000 + i * 1000,
                base + i * 10
            ));
        }
    }
    std::fs::write(dir.path().join("data.csv"), csv).unwrap();
    let mut args = json(base(&new_rules));
    let at = args.iter().position(|a| a == "--server").unwrap();
    args.splice(
        at..at + 2,
        [
            "--data".to_owned(),
            dir.path().join("data.csv").display().to_string(),
        ],
    );
    let (code, csv_out, err) = thermostat(args, None).await;
    assert_eq!(code, 0, "{err}");
    let csv_doc: Value = serde_json::from_str(&csv_out).unwrap();
    assert_eq!(
        csv_doc["alarms"][0]["transitions"], alarm["transitions"],
        "CSV: {csv_doc}\nserver: {doc}"
    );

    // --compare: the old rules (threshold 350) never alarm; the new ones make two
    // transitions and their actions that the old do not.
    let mut args = json(base(&new_rules));
    args.extend(["--compare".to_owned(), old_rules.display().to_string()]);
    let (code, out, err) = thermostat(args.clone(), Some(tokens.viewer.clone())).await;
    assert_eq!(
        code, 0,
        "differences exit 0 without --exit-code: {out}{err}"
    );
    let diff: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(diff["identical"], false, "{diff}");
    let a = &diff["alarms"][0];
    assert_eq!(
        (a["name"].as_str(), a["in"].as_str()),
        (Some("latency-p90"), Some("both"))
    );
    assert_eq!(
        a["transitions_only_in_old"],
        serde_json::json!([]),
        "{diff}"
    );
    assert_eq!(
        transitions(&a["transitions_only_in_new"]),
        [
            (rfc3339(t0 + 6 * 60_000), "OK".into(), "ALARM".into()),
            (rfc3339(t0 + 9 * 60_000), "ALARM".into(), "OK".into()),
        ],
        "{diff}"
    );
    let actions: Vec<(String, String, bool)> = a["actions_only_in_new"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["timestamp"].as_str().unwrap().to_owned(),
                x["kind"].as_str().unwrap().to_owned(),
                x["repeat"].as_bool().unwrap(),
            )
        })
        .collect();
    let at6 = rfc3339(t0 + 6 * 60_000);
    assert!(
        actions.contains(&(at6.clone(), "notification".into(), false))
            && actions.contains(&(at6, "scaling".into(), false)),
        "{diff}"
    );
    args.push("--exit-code".into());
    let (code, _, _) = thermostat(args, Some(tokens.viewer.clone())).await;
    assert_eq!(code, 1, "--exit-code: 1 when the rule sets differ");
    // Text, and the same rules compared with themselves.
    let mut args = base(&new_rules);
    args.extend(["--compare".to_owned(), old_rules.display().to_string()]);
    let (code, out, _) = thermostat(args, Some(tokens.viewer.clone())).await;
    assert_eq!(code, 0);
    assert!(out.starts_with("1 alarm differs ("), "{out}");
    assert!(
        out.contains(&format!("  + {}  OK -> ALARM  ", rfc3339(t0 + 6 * 60_000))),
        "{out}"
    );
    let mut args = base(&new_rules);
    args.extend([
        "--compare".to_owned(),
        new_rules.display().to_string(),
        "--exit-code".to_owned(),
    ]);
    let (code, out, err) = thermostat(args, Some(tokens.viewer.clone())).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("identical: "), "{out}");

    // Refusals: clear messages, non-zero exits, and the token never printed.
    let wrong = new_token();
    let (code, out, err) = thermostat(base(&new_rules), Some(wrong.clone())).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("refused the token (401 Unauthorized"), "{err}");
    assert!(!err.contains(&wrong) && !out.contains(&wrong));
    let (code, _, err) = thermostat(base(&new_rules), None).await;
    assert_eq!(code, 1);
    assert!(err.contains("needs a token (401 Unauthorized"), "{err}");
    let (code, _, err) = thermostat(base(&new_rules), Some(tokens.elsewhere.clone())).await;
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "refused to export {NAMESPACE}/Latency (403 Forbidden"
        )),
        "{err}"
    );
    // --token works as the variable does (and is not echoed either).
    let mut args = base(&new_rules);
    args.extend(["--token".to_owned(), tokens.viewer.clone()]);
    let (code, out, err) = thermostat(args, None).await;
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(&tokens.viewer) && !err.contains(&tokens.viewer));

    // The endpoint's bounds: 400s naming the field.
    let http = reqwest::Client::new();
    for (query, field) in [
        (
            format!("namespace={NAMESPACE}&metric_name=Latency&from=0&to=100000000"),
            "to",
        ),
        (
            format!(
                "namespace={NAMESPACE}&metric_name=Latency&from=0&to=60&next_token=e1.nonsense"
            ),
            "next_token",
        ),
        ("metric_name=Latency&from=0&to=60".to_owned(), "namespace"),
    ] {
        let r = http
            .get(format!("{server}/api/v1/export/series?{query}"))
            .bearer_auth(&tokens.viewer)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{query}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
    running.shutdown();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn backtest_against_no_server_is_a_clear_error() {
    // A port nothing listens on: bound, then closed.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config_dir(dir.path(), "rules", &rules(250));
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "backtest",
            "--server",
            &format!("http://{addr}"),
            "--config",
            &config.display().to_string(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        v.extend(extra.iter().map(|s| (*s).to_owned()));
        v
    };
    let (code, out, err) = thermostat(args(&[]), None).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.starts_with(&format!("cannot reach the server at http://{addr}: ")),
        "{err}"
    );
    // With --compare, errors exit 2 (diff(1)'s trouble).
    let (code, _, err) =
        thermostat(args(&["--compare", &config.display().to_string()]), None).await;
    assert_eq!(code, 2, "{err}");
    // Not a URL.
    let (code, _, err) = thermostat(
        vec![
            "backtest".into(),
            "--server".into(),
            addr.to_string(),
            "--config".into(),
            config.display().to_string(),
        ],
        None,
    )
    .await;
    assert_eq!(code, 1);
    assert!(
        err.starts_with("--server: must be an http:// or https:// URL"),
        "{err}"
    );
}

/// More series than one export page holds (100): the CLI follows `next_token` and every
/// instance of a per-series alarm is replayed, each exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backtest_against_a_server_reads_every_page() {
    let server = TestServer::start().await;
    let t0 = aligned_past(60_000);
    let mut client = server.client().await;
    const HOSTS: usize = 150;
    for chunk in (0..HOSTS).collect::<Vec<_>>().chunks(50) {
        let mut data = Vec::new();
        for &h in chunk {
            let host = format!("h{h:03}");
            for m in 0..4i64 {
                // Minutes 2 and 3 over the threshold on every host.
                let v = if m >= 2 { 500.0 } else { 5.0 };
                data.push(value_datum(
                    "Latency",
                    &[("Host", &host)],
                    t0 + m * 60_000 + 1000,
                    v,
                ));
            }
        }
        client
            .put_metric_data(request(NAMESPACE, data))
            .await
            .expect("pushes");
    }
    let dir = tempfile::tempdir().unwrap();
    let rules = config_dir(
        dir.path(),
        "rules",
        &format!(
            "alarms:\n  - {{name: host-latency, namespace: {NAMESPACE}, metric_name: Latency, dimensions: {{Host: '*'}}, statistic: Maximum, period_seconds: 60, evaluation_periods: 1, threshold: 100, comparison_operator: GreaterThanThreshold}}\n"
        ),
    );
    let args: Vec<String> = [
        "backtest",
        "--server",
        &format!("http://{}", server.running.http_addr),
        "--config",
        &rules.display().to_string(),
        "--from",
        &rfc3339(t0 + 60_000),
        "--to",
        &rfc3339(t0 + 4 * 60_000),
        "--format",
        "json",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let (code, out, err) = thermostat(args, None).await;
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let alarms = doc["alarms"].as_array().unwrap();
    assert_eq!(alarms.len(), HOSTS, "one instance per host: {out}");
    for a in alarms {
        assert_eq!(
            transitions(&a["transitions"]),
            [
                (
                    rfc3339(t0 + 60_000),
                    "INSUFFICIENT_DATA".into(),
                    "OK".into()
                ),
                (rfc3339(t0 + 3 * 60_000), "OK".into(), "ALARM".into()),
            ],
            "{a}"
        );
        // Each window once: the maximum is the pushed value, and the instance saw one sample.
        let dp = &a["transitions"][1]["reason_data"]["evaluatedDatapoints"][0];
        assert_eq!(
            (dp["value"].as_f64(), dp["sampleCount"].as_f64()),
            (Some(500.0), Some(1.0)),
            "{a}"
        );
    }
    server.running.shutdown();
    server.running.wait().await.unwrap();
}
