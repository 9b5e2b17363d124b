//! `thermostat export-alarms` (issue 21): an alarm created through the CloudWatch API with
//! the real boto3 client is printed, once the server has stopped, as an alarm file that
//! `thermostat check` accepts and that names the same alarm; the file's own alarm is not
//! exported; while the server runs the command refuses, naming it.
//! Without boto3 in `.venv` the test is skipped (it fails under `CI=true`).

use std::path::Path;
use std::process::Command;

use thermostat::app::Settings;
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

fn thermostat(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_thermostat"))
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_api_alarms_pass_check_and_name_the_same_alarm() {
    let Some(python) = thermostat_testkit::require_peers(
        "exported_api_alarms_pass_check_and_name_the_same_alarm",
        &["boto3"],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let secret = dir.path().join("aws-secret");
    std::fs::write(&secret, SECRET).unwrap();
    let config = dir.path().join("alarms");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("owned.yaml"), YAML).unwrap();
    let running = start_in(&data, |s: &mut Settings| {
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
    })
    .await;
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/cloudwatch_alarms_boto3.py");
    let endpoint = format!("http://{}", running.http_addr);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args(["create", "--alarm", "moved-to-git", "--protocol", "json"])
            .args(["--endpoint", &endpoint, "--key-id", "AKIDOPERATOR"])
            .args(["--agent-key-id", "AKIDAGENT", "--secret", SECRET])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "boto3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // While the server uses the data directory, the command says so.
    let busy = thermostat(&[
        "export-alarms".as_ref(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ]);
    assert!(!busy.status.success());
    let stderr = String::from_utf8_lossy(&busy.stderr);
    assert!(stderr.contains("stop it first"), "{stderr}");

    running.shutdown();
    running.wait().await.unwrap();

    let export = thermostat(&[
        "export-alarms".as_ref(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ]);
    let yaml = String::from_utf8(export.stdout).unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    assert!(yaml.contains("name: \"moved-to-git\""), "{yaml}");
    assert!(yaml.contains("threshold: 75.5"), "{yaml}");
    assert!(
        !yaml.contains("yaml-owned"),
        "the file's alarm is not exported: {yaml}"
    );
    let file = dir.path().join("exported.yaml");
    std::fs::write(&file, &yaml).unwrap();

    let check = thermostat(&["check".as_ref(), file.as_os_str()]);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{stdout}{}\n{yaml}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        stdout.starts_with("ok: 1 alarm, 0 composite alarms"),
        "{stdout}"
    );
    // The same alarm, as the engine reads it: validated from the export, it is the stored
    // definition.
    let exported = thermostat_alarms::validate(&[("exported.yaml", yaml.as_str())]).unwrap();
    let db = thermostat_statedb::StateDb::open(&data).unwrap();
    let stored = thermostat_alarms_runtime::AlarmStore::load_api_alarms(&db).unwrap();
    assert_eq!(stored.len(), 1);
    assert!(
        exported
            .alarm("moved-to-git")
            .unwrap()
            .same_definition(&stored[0]),
        "{yaml}"
    );
    // Beside the files it came from, too (no name defined twice).
    let both = thermostat(&["check".as_ref(), config.as_os_str(), file.as_os_str()]);
    assert!(
        String::from_utf8_lossy(&both.stdout).starts_with("ok: 2 alarms"),
        "{}",
        String::from_utf8_lossy(&both.stderr)
    );
}
