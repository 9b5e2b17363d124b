//! CloudWatch's API on the HTTP port (issue 21) driven by the real AWS CLI, Debian's `awscli`
//! (`/usr/bin/aws`, v2 on Python, which speaks AWS Query to CloudWatch), with nothing but
//! `--endpoint-url` and SigV4 keys: `put-metric-data` (single values, `--statistic-values`
//! and `Values`/`Counts` arrays; its `--dimensions` is the CLI's `Host=a` shorthand, not
//! `Name=Host,Value=a` as elsewhere), `get-metric-statistics` with the numbers checked,
//! `list-metrics`, and a wrong secret or an unknown key refused. What the CLI pushed is one
//! series with the native gRPC API's. The alarm operations too: `put-metric-alarm` (whose
//! `--dimensions` is `Name=Host,Value=a`), `describe-alarms`, `set-alarm-state`,
//! `describe-alarm-history` and `delete-alarms` (twice: `ResourceNotFound`). Without the CLI
//! the tests are skipped (they fail under `CI=true`); `scripts/setup-test-peers` installs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use thermostat_auth::Role;
use thermostat_auth::sigv4::{AccessKeyEntry, AccessKeySecret};

use crate::util::{TestServer, aligned_past, stats_request};

pub(crate) const KEY_ID: &str = "AKIDCLITHERMOSTAT";
pub(crate) const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYCLIKEY";
const NAMESPACE: &str = "Cli/Shop";

/// Debian's AWS CLI, or `None` (skipped) when it is missing; a missing CLI fails under `CI=true`.
pub(crate) fn debian_aws_cli(test: &str) -> Option<PathBuf> {
    let aws = PathBuf::from("/usr/bin/aws");
    if aws.exists() {
        return Some(aws);
    }
    let why = format!(
        "{test}: needs Debian's AWS CLI (/usr/bin/aws, package awscli); run scripts/setup-test-peers"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}");
    }
    eprintln!("SKIPPED {why}");
    None
}

/// Runs `aws cloudwatch <args> --endpoint-url <endpoint>` with only the given credentials:
/// empty config and credentials files, no instance metadata, no pager.
pub(crate) async fn aws(
    cli: &Path,
    home: &Path,
    endpoint: &str,
    key_id: &str,
    secret: &str,
    args: &[&str],
) -> Output {
    let config = home.join("config");
    let credentials = home.join("credentials");
    std::fs::write(&config, "").unwrap();
    std::fs::write(&credentials, "").unwrap();
    let mut cmd = Command::new(cli);
    cmd.arg("cloudwatch")
        .args(args)
        .args(["--endpoint-url", endpoint]);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("HOME", home)
        .env("AWS_ACCESS_KEY_ID", key_id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_PAGER", "");
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap()
}

pub(crate) fn ok_json(out: &Output, what: &str) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The protocol of the request botocore logged with `--debug`.
fn protocol_in_debug_log(stderr: &str) -> &'static str {
    if stderr.contains("x-www-form-urlencoded") && stderr.contains("'Action': 'ListMetrics'") {
        "query"
    } else if stderr.contains("GraniteServiceVersion20100801.ListMetrics") {
        "json"
    } else if stderr.contains("rpc-v2-cbor") {
        "smithy-rpc-v2-cbor"
    } else {
        "unknown"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_pushes_reads_lists_and_is_refused_a_wrong_secret() {
    let Some(cli) = debian_aws_cli("aws_cli_pushes_reads_lists_and_is_refused_a_wrong_secret")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("aws-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let server = TestServer::start_with(|s| {
        s.aws_api.access_keys = vec![AccessKeyEntry {
            access_key_id: KEY_ID.to_owned(),
            secret: AccessKeySecret::File(secret.clone()),
            role: Role::Admin,
        }];
    })
    .await;
    let endpoint = server.http("");
    let home = tmp.path();
    let run = |args: Vec<String>| {
        let (cli, endpoint) = (cli.clone(), endpoint.clone());
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            aws(&cli, home, &endpoint, KEY_ID, SECRET, &args).await
        }
    };
    let strings = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();

    let version = aws(&cli, home, &endpoint, KEY_ID, SECRET, &["--version"]).await;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();

    let t = aligned_past(60_000);
    let ts = jiff::Timestamp::from_millisecond(t).unwrap().to_string();
    let end = jiff::Timestamp::from_millisecond(t + 60_000)
        .unwrap()
        .to_string();
    // Three single values and a statistic set in one minute of one series.
    for value in ["10", "20", "30"] {
        let out = run(strings(&[
            "put-metric-data",
            "--namespace",
            NAMESPACE,
            "--metric-name",
            "Latency",
            "--value",
            value,
            "--unit",
            "Milliseconds",
            "--timestamp",
            &ts,
            // put-metric-data's own shorthand (Name=Value), unlike get-metric-statistics'.
            "--dimensions",
            "Host=a",
        ]))
        .await;
        ok_json(&out, "put-metric-data --value");
    }
    let out = run(strings(&[
        "put-metric-data",
        "--namespace",
        NAMESPACE,
        "--metric-name",
        "Latency",
        "--statistic-values",
        "SampleCount=2,Sum=100,Minimum=40,Maximum=60",
        "--unit",
        "Milliseconds",
        "--timestamp",
        &ts,
        "--dimensions",
        "Host=a",
    ]))
    .await;
    ok_json(&out, "put-metric-data --statistic-values");
    // Values with Counts, through --metric-data (Values.member.N and Counts.member.N in Query).
    let metric_data = serde_json::json!([{
        "MetricName": "Requests",
        "Dimensions": [{"Name": "Host", "Value": "a"}],
        "Timestamp": ts,
        "Values": [1.0, 2.0, 3.0],
        "Counts": [1.0, 1.0, 2.0],
        "Unit": "Count",
    }])
    .to_string();
    let out = run(strings(&[
        "put-metric-data",
        "--namespace",
        NAMESPACE,
        "--metric-data",
        &metric_data,
    ]))
    .await;
    ok_json(&out, "put-metric-data --metric-data");

    let stats = |metric: &str| {
        strings(&[
            "get-metric-statistics",
            "--namespace",
            NAMESPACE,
            "--metric-name",
            metric,
            "--dimensions",
            "Name=Host,Value=a",
            "--start-time",
            &ts,
            "--end-time",
            &end,
            "--period",
            "60",
            "--statistics",
            "Sum",
            "Average",
            "Maximum",
            "Minimum",
            "SampleCount",
            "--output",
            "json",
        ])
    };
    let latency = ok_json(&run(stats("Latency")).await, "get-metric-statistics");
    assert_eq!(latency["Label"], "Latency", "{latency}");
    let points = latency["Datapoints"].as_array().unwrap();
    assert_eq!(points.len(), 1, "{latency}");
    let p = &points[0];
    assert_eq!(p["Sum"], 160.0, "{latency}");
    assert_eq!(p["Average"], 32.0, "{latency}");
    assert_eq!(p["Maximum"], 60.0, "{latency}");
    assert_eq!(p["Minimum"], 10.0, "{latency}");
    assert_eq!(p["SampleCount"], 5.0, "{latency}");
    assert_eq!(p["Unit"], "Milliseconds", "{latency}");
    let stamp: jiff::Timestamp = p["Timestamp"].as_str().unwrap().parse().unwrap();
    assert_eq!(stamp.as_millisecond(), t, "{latency}");

    let requests = ok_json(&run(stats("Requests")).await, "get-metric-statistics");
    let p = &requests["Datapoints"][0];
    assert_eq!(p["Sum"], 9.0, "{requests}");
    assert_eq!(p["SampleCount"], 4.0, "{requests}");
    assert_eq!(p["Average"], 2.25, "{requests}");
    assert_eq!(p["Maximum"], 3.0, "{requests}");
    assert_eq!(p["Minimum"], 1.0, "{requests}");
    assert_eq!(p["Unit"], "Count", "{requests}");

    // list-metrics, with --debug to see which protocol the CLI speaks.
    let listed = run(strings(&[
        "list-metrics",
        "--namespace",
        NAMESPACE,
        "--output",
        "json",
        "--debug",
    ]))
    .await;
    let protocol = protocol_in_debug_log(&String::from_utf8_lossy(&listed.stderr));
    eprintln!("{version}: protocol {protocol}");
    let listed = ok_json(&listed, "list-metrics");
    let mut names: Vec<&str> = listed["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["Namespace"], NAMESPACE, "{listed}");
            assert_eq!(
                m["Dimensions"],
                serde_json::json!([{"Name": "Host", "Value": "a"}]),
                "{listed}"
            );
            m["MetricName"].as_str().unwrap()
        })
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["Latency", "Requests"], "{listed}");
    let other = ok_json(
        &run(strings(&[
            "list-metrics",
            "--namespace",
            "Cli/Other",
            "--output",
            "json",
        ]))
        .await,
        "list-metrics of another namespace",
    );
    assert_eq!(other["Metrics"], serde_json::json!([]), "{other}");
    // Debian bookworm's CLI (2.9) predates CloudWatch's JSON protocol in the CLI (2.32.14).
    if version.starts_with("aws-cli/2.9.") {
        assert_eq!(protocol, "query", "{version}");
    }

    // A wrong secret and an unknown key are refused, and nothing is stored.
    let wrong = aws(
        &cli,
        home,
        &endpoint,
        KEY_ID,
        "not-the-secret",
        &[
            "put-metric-data",
            "--namespace",
            NAMESPACE,
            "--metric-name",
            "Forged",
            "--value",
            "1",
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success(), "a wrong secret is accepted");
    assert!(stderr.contains("SignatureDoesNotMatch"), "{stderr}");
    let unknown = aws(
        &cli,
        home,
        &endpoint,
        "AKIDUNKNOWN",
        SECRET,
        &["list-metrics", "--namespace", NAMESPACE],
    )
    .await;
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(!unknown.status.success(), "an unknown key is accepted");
    assert!(stderr.contains("InvalidClientTokenId"), "{stderr}");

    // The native gRPC API reads the same series.
    let r = server
        .client()
        .await
        .get_metric_statistics(stats_request(
            NAMESPACE,
            "Latency",
            &[("Host", "a")],
            t,
            t + 60_000,
            60,
            &["Sum", "SampleCount", "Maximum"],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.datapoints.len(), 1, "{r:?}");
    assert_eq!(r.datapoints[0].timestamp_ms, t, "{r:?}");
    assert_eq!(r.datapoints[0].statistics["Sum"], 160.0, "{r:?}");
    assert_eq!(r.datapoints[0].statistics["SampleCount"], 5.0, "{r:?}");
    assert_eq!(r.datapoints[0].statistics["Maximum"], 60.0, "{r:?}");
    assert_eq!(r.datapoints[0].unit, "Milliseconds", "{r:?}");
    let forged = server
        .client()
        .await
        .get_metric_statistics(stats_request(
            NAMESPACE,
            "Forged",
            &[],
            t,
            crate::util::now_ms() + 60_000,
            60,
            &["SampleCount"],
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(forged.datapoints.is_empty(), "{forged:?}");
}

/// The alarm operations through the CLI (AWS Query), signed with an operator's key: an alarm
/// is created, described (ARN, state, threshold), set to ALARM, described again, has a
/// `StateUpdate` in its history, and is deleted; deleting it again is `ResourceNotFound`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_creates_describes_sets_and_deletes_an_alarm() {
    const ALARM: &str = "cli-latency-high";
    let Some(cli) = debian_aws_cli("aws_cli_creates_describes_sets_and_deletes_an_alarm") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("aws-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let server = TestServer::start_with(|s| {
        s.aws_api.access_keys = vec![AccessKeyEntry {
            access_key_id: KEY_ID.to_owned(),
            secret: AccessKeySecret::File(secret.clone()),
            role: Role::Operator,
        }];
    })
    .await;
    let endpoint = server.http("");
    let home = tmp.path();
    let run = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let (cli, endpoint) = (cli.clone(), endpoint.clone());
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            aws(&cli, home, &endpoint, KEY_ID, SECRET, &args).await
        }
    };

    let out = run(&put_metric_alarm_args(ALARM)).await;
    ok_json(&out, "put-metric-alarm");
    let describe = || {
        run(&[
            "describe-alarms",
            "--alarm-names",
            ALARM,
            "--output",
            "json",
        ])
    };
    let described = ok_json(&describe().await, "describe-alarms");
    let alarms = described["MetricAlarms"].as_array().unwrap();
    assert_eq!(alarms.len(), 1, "{described}");
    let a = &alarms[0];
    assert_eq!(a["AlarmName"], ALARM, "{described}");
    assert_eq!(
        a["AlarmArn"],
        format!("arn:aws:cloudwatch:us-east-1:000000000000:alarm:{ALARM}"),
        "{described}"
    );
    assert_eq!(a["StateValue"], "INSUFFICIENT_DATA", "{described}");
    assert_eq!(a["Threshold"], 50.0, "{described}");
    assert_eq!(a["Period"], 60, "{described}");
    assert_eq!(a["EvaluationPeriods"], 1, "{described}");
    assert_eq!(a["TreatMissingData"], "ignore", "{described}");
    assert_eq!(a["Statistic"], "Average", "{described}");
    assert_eq!(
        a["ComparisonOperator"], "GreaterThanThreshold",
        "{described}"
    );
    assert_eq!(a["Namespace"], NAMESPACE, "{described}");
    assert_eq!(a["MetricName"], "Latency", "{described}");
    assert_eq!(
        a["Dimensions"],
        serde_json::json!([{"Name": "Host", "Value": "a"}]),
        "{described}"
    );

    let out = run(&[
        "set-alarm-state",
        "--alarm-name",
        ALARM,
        "--state-value",
        "ALARM",
        "--state-reason",
        "test",
    ])
    .await;
    ok_json(&out, "set-alarm-state");
    let described = ok_json(&describe().await, "describe-alarms after set-alarm-state");
    let a = &described["MetricAlarms"][0];
    assert_eq!(a["StateValue"], "ALARM", "{described}");
    assert_eq!(a["StateReason"], "test", "{described}");

    let history = ok_json(
        &run(&[
            "describe-alarm-history",
            "--alarm-name",
            ALARM,
            "--output",
            "json",
        ])
        .await,
        "describe-alarm-history",
    );
    let items = history["AlarmHistoryItems"].as_array().unwrap();
    assert!(
        items.iter().any(|i| i["HistoryItemType"] == "StateUpdate"
            && i["AlarmName"] == ALARM
            && i["HistorySummary"] == "Alarm updated from INSUFFICIENT_DATA to ALARM"),
        "{history}"
    );

    let out = run(&["delete-alarms", "--alarm-names", ALARM]).await;
    ok_json(&out, "delete-alarms");
    let described = ok_json(&describe().await, "describe-alarms after delete-alarms");
    assert_eq!(
        described["MetricAlarms"],
        serde_json::json!([]),
        "{described}"
    );
    let again = run(&["delete-alarms", "--alarm-names", ALARM]).await;
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success(), "deleting a deleted alarm succeeds");
    assert!(stderr.contains("ResourceNotFound"), "{stderr}");
    assert!(
        stderr.contains(ALARM),
        "the error names the alarm: {stderr}"
    );
}

/// `put-metric-alarm`'s arguments for an alarm on `Cli/Shop` `Latency` `Host=a`: Average over
/// 60 s, one period, greater than 50, missing data ignored. Its `--dimensions` takes
/// `Name=…,Value=…`, unlike `put-metric-data`'s `Host=a`.
pub(crate) fn put_metric_alarm_args(name: &str) -> Vec<&str> {
    vec![
        "put-metric-alarm",
        "--alarm-name",
        name,
        "--metric-name",
        "Latency",
        "--namespace",
        NAMESPACE,
        "--statistic",
        "Average",
        "--period",
        "60",
        "--evaluation-periods",
        "1",
        "--threshold",
        "50",
        "--comparison-operator",
        "GreaterThanThreshold",
        "--dimensions",
        "Name=Host,Value=a",
        // No data is pushed: with the default (`missing`) a tick of the engine would take the
        // alarm to INSUFFICIENT_DATA again between `set-alarm-state` and the next describe.
        "--treat-missing-data",
        "ignore",
    ]
}
