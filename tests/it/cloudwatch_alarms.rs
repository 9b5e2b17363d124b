//! CloudWatch's alarm operations (issue 21, "Two sources of alarms, one engine"), driven by
//! the real boto3 client signed with an operator's access key (AWS JSON 1.0 for the
//! lifecycle, RPC v2 CBOR to create and AWS Query to read back across the restart): an API alarm goes
//! INSUFFICIENT_DATA → OK → ALARM on pushed data on the server's own ticks, is described
//! (state, ARN), set, switched off and on, has history and is deleted (twice: the second time
//! `ResourceNotFound`); a YAML-owned alarm is refused by `PutMetricAlarm` naming its file, and
//! listed with the API's; an API alarm survives a restart with its definition, state and
//! tags (created with `Tags`, changed by `TagResource` / `UntagResource`).
//! Without boto3 in `.venv` the tests are skipped (they fail under `CI=true`).

use std::path::{Path, PathBuf};
use std::process::Command;

use thermostat::app::Settings;
use thermostat_alarms::StateValue;
use thermostat_auth::Role;
use thermostat_auth::sigv4::{AccessKeyEntry, AccessKeySecret};

use crate::util::start_in;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

const YAML: &str = "alarms:
  - name: yaml-owned
    namespace: Alarms/Yaml
    metric_name: Cpu
    statistic: Average
    period_seconds: 60
    evaluation_periods: 1
    threshold: 90
    comparison_operator: GreaterThanThreshold
";

/// Operator and agent keys (one secret, in a file of `dir`) and the alarm file `dir/alarms`.
fn keys_and_config(dir: &Path) -> impl Fn(&mut Settings) + Clone {
    let secret = dir.join("aws-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let config = dir.join("alarms");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("owned.yaml"), YAML).unwrap();
    move |s: &mut Settings| {
        let key = |id: &str, role| AccessKeyEntry {
            access_key_id: id.to_owned(),
            secret: AccessKeySecret::File(secret.clone()),
            role,
        };
        s.aws_api.access_keys = vec![
            key("AKIDOPERATOR", Role::Operator),
            key("AKIDAGENT", Role::Agent),
        ];
        s.config = vec![config.clone()];
    }
}

async fn boto3(python: &Path, endpoint: String, args: &[&str]) -> serde_json::Value {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/cloudwatch_alarms_boto3.py");
    let (python, args): (PathBuf, Vec<String>) = (
        python.to_owned(),
        args.iter().map(|a| (*a).to_owned()).collect(),
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args(&args)
            .args([
                "--endpoint",
                &endpoint,
                "--key-id",
                "AKIDOPERATOR",
                "--agent-key-id",
                "AKIDAGENT",
                "--secret",
                SECRET,
            ])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        out.status.success(),
        "boto3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_creates_an_alarm_that_transitions_and_deletes_it() {
    let Some(python) = thermostat_testkit::require_peers(
        "boto3_creates_an_alarm_that_transitions_and_deletes_it",
        &["boto3"],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let running = start_in(&dir.path().join("data"), keys_and_config(dir.path())).await;
    let endpoint = format!("http://{}", running.http_addr);
    let out = boto3(
        &python,
        endpoint,
        &[
            "lifecycle",
            "--alarm",
            "api-latency-high",
            "--yaml-alarm",
            "yaml-owned",
            "--yaml-file",
            "owned.yaml",
            "--protocol",
            "json",
        ],
    )
    .await;
    assert_eq!(out["protocol"], "json", "AWS JSON 1.0, as the issue asks");
    assert_eq!(out["deleted_again"], "ResourceNotFound", "{out}");
    assert_eq!(out["composite"], "ALARM", "{out}");
    assert!(
        out["yaml_owned"].as_str().unwrap().contains("owned.yaml"),
        "{out}"
    );
    // The engine agrees: the API alarm is gone, the file's is there in the state set.
    assert!(running.engine.origin("api-latency-high").is_none());
    assert_eq!(
        running.engine.state_of("yaml-owned"),
        Some(StateValue::Alarm)
    );
    // Every change is in the audit trail, with the access key that made it.
    let mut trail = String::new();
    for file in std::fs::read_dir(dir.path().join("data/audit")).unwrap() {
        trail.push_str(&std::fs::read_to_string(file.unwrap().path()).unwrap());
    }
    for action in [
        "\"put_metric_alarm\"",
        "\"set_alarm_state\"",
        "\"disable_alarm_actions\"",
        "\"delete_alarms\"",
        "aws:AKIDOPERATOR",
    ] {
        assert!(trail.contains(action), "{action} in {trail}");
    }
    running.shutdown();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_alarm_survives_a_restart_with_its_definition_and_state() {
    let Some(python) = thermostat_testkit::require_peers(
        "an_api_alarm_survives_a_restart_with_its_definition_and_state",
        &["boto3"],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tweak = keys_and_config(dir.path());
    let first = start_in(&data, tweak.clone()).await;
    let before = boto3(
        &python,
        format!("http://{}", first.http_addr),
        &[
            "create",
            "--alarm",
            "durable",
            "--protocol",
            "smithy-rpc-v2-cbor",
        ],
    )
    .await;
    assert_eq!(before["StateValue"], "ALARM", "{before}");
    assert_eq!(before["protocol"], "smithy-rpc-v2-cbor", "RPC v2 CBOR");
    first.shutdown();
    first.wait().await.unwrap();

    let second = start_in(&data, tweak).await;
    let after = boto3(
        &python,
        format!("http://{}", second.http_addr),
        &["check", "--alarm", "durable", "--protocol", "query"],
    )
    .await;
    for key in [
        "AlarmArn",
        "StateValue",
        "StateReason",
        "Threshold",
        "Period",
        "TreatMissingData",
        "Dimensions",
        "AlarmActions",
        "StateUpdatedTimestamp",
    ] {
        assert_eq!(before[key], after[key], "{key}: {before} / {after}");
    }
    assert_eq!(after["protocol"], "query");
    assert_eq!(after["Threshold"], 75.5);
    assert_eq!(after["StateReason"], "Before the restart");
    // Its tags too, as TagResource and UntagResource left them.
    assert_eq!(
        after["Tags"],
        serde_json::json!({"tier": "2", "owner": "sre"})
    );
    second.shutdown();
    second.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_creates_a_metric_math_alarm_that_the_engine_evaluates() {
    let Some(python) = thermostat_testkit::require_peers(
        "boto3_creates_a_metric_math_alarm_that_the_engine_evaluates",
        &["boto3"],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let running = start_in(&dir.path().join("data"), keys_and_config(dir.path())).await;
    let out = boto3(
        &python,
        format!("http://{}", running.http_addr),
        &["math", "--alarm", "error-rate", "--protocol", "json"],
    )
    .await;
    assert!(
        out["alarm_reason"]
            .as_str()
            .unwrap()
            .contains("greater than the threshold (5.0)"),
        "{out}"
    );
    // CloudWatch's reason data of a math alarm has no statistic.
    let data: serde_json::Value =
        serde_json::from_str(out["StateReasonData"].as_str().unwrap()).unwrap();
    assert!(data.get("statistic").is_none(), "{data}");
    assert_eq!(data["threshold"], 5.0, "{data}");
    // The engine holds it as a math alarm, and the export writes it back as one.
    let alarm = running
        .engine
        .alarms()
        .alarm("error-rate")
        .cloned()
        .unwrap();
    assert!(alarm.is_math(), "{alarm:?}");
    running.shutdown();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_puts_an_anomaly_detector_and_an_anomaly_alarm_that_trains_with_it() {
    let Some(python) = thermostat_testkit::require_peers(
        "boto3_puts_an_anomaly_detector_and_an_anomaly_alarm_that_trains_with_it",
        &["boto3"],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let running = start_in(&dir.path().join("data"), keys_and_config(dir.path())).await;
    let out = boto3(
        &python,
        format!("http://{}", running.http_addr),
        &[
            "anomaly",
            "--alarm",
            "orders-unusual",
            "--protocol",
            "query",
        ],
    )
    .await;
    assert_eq!(out["StateValue"], "INSUFFICIENT_DATA", "{out}");
    // The alarm took the detector's configuration.
    let alarm = running
        .engine
        .alarms()
        .alarm("orders-unusual")
        .cloned()
        .unwrap();
    let config = alarm.anomaly.expect("the detector's configuration");
    assert_eq!(config.time_zone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(config.excluded.len(), 1);
    running.shutdown();
    running.wait().await.unwrap();
}
