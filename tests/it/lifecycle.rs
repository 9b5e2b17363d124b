//! Start, stop and restart: acknowledged data survives a clean restart.

use crate::process::ServerProcess;
use crate::util::*;

#[tokio::test]
async fn data_survives_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = aligned_past(60_000);
    let stats = ["SampleCount", "Sum", "Minimum", "Maximum", "p50", "p99"];
    let query = || {
        stats_request(
            "Test/Restart",
            "Latency",
            &[("Host", "a")],
            t0,
            t0 + 180_000,
            60,
            &stats,
        )
    };

    let first = start_in(dir.path(), |_| {}).await;
    let mut client = client(&first).await;
    let data = (0..1000)
        .map(|i| {
            value_datum(
                "Latency",
                &[("Host", "a")],
                t0 + i * 150,
                (i * 7 % 1000) as f64 / 4.0,
            )
        })
        .collect();
    client
        .put_metric_data(request("Test/Restart", data))
        .await
        .unwrap();
    let before = client
        .get_metric_statistics(query())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(before.datapoints.len(), 3);
    first.shutdown();
    first.wait().await.unwrap();

    let second = start_in(dir.path(), |_| {}).await;
    let mut client = client_for(&second).await;
    let after = client
        .get_metric_statistics(query())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(before, after);
    second.shutdown();
    second.wait().await.unwrap();
}

async fn client_for(
    r: &thermostat::app::Running,
) -> thermostat_proto::v1::metrics_service_client::MetricsServiceClient<tonic::transport::Channel> {
    client(r).await
}

#[tokio::test]
async fn pushes_during_shutdown_are_refused_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_in(dir.path(), |_| {}).await;
    let mut c = client(&server).await;
    let now = now_ms();
    c.put_metric_data(request("Test/Stop", vec![value_datum("M", &[], now, 1.0)]))
        .await
        .unwrap();
    server.shutdown();
    // Once shutdown has begun, a push either fails (refused or connection closed) or was stored.
    let late = c
        .put_metric_data(request("Test/Stop", vec![value_datum("M", &[], now, 2.0)]))
        .await;
    server.wait().await.unwrap();

    let again = start_in(dir.path(), |_| {}).await;
    let mut c = client(&again).await;
    let t = now - now.rem_euclid(60_000);
    let dp = c
        .get_metric_statistics(stats_request(
            "Test/Stop",
            "M",
            &[],
            t,
            t + 60_000,
            60,
            &["SampleCount"],
        ))
        .await
        .unwrap()
        .into_inner();
    let expected = if late.is_ok() { 2.0 } else { 1.0 };
    assert_eq!(
        dp.datapoints[0].statistics["SampleCount"], expected,
        "acknowledged = stored: {late:?}"
    );
    again.shutdown();
    again.wait().await.unwrap();
}

#[tokio::test]
async fn a_snapshot_of_an_unknown_format_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"THRMSNAP".to_vec();
    bytes.extend_from_slice(&99u32.to_le_bytes());
    std::fs::write(dir.path().join("series.snapshot"), bytes).unwrap();
    let settings = thermostat::app::Settings {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_owned(),
        ..Default::default()
    };
    let err = thermostat::app::start(settings).await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("format version 99 is not supported"), "{msg}");
}

/// A kill -9 right after pushes were acknowledged loses none of them (the write-ahead log),
/// and counts none twice after a second restart (snapshot watermarks). Multi-threaded, so
/// that the client's connection tasks run while the test waits for the child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_pushes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = aligned_past(60_000);
    let query = || {
        stats_request(
            "Test/Crash",
            "M",
            &[],
            t0,
            t0 + 60_000,
            60,
            &["SampleCount", "Sum"],
        )
    };

    let server = ServerProcess::start(dir.path(), &[]);
    let mut c = server.client().await;
    for i in 0..50 {
        let data = (0..20)
            .map(|j| value_datum("M", &[], t0 + j * 1000, f64::from(i)))
            .collect();
        c.put_metric_data(request("Test/Crash", data))
            .await
            .unwrap();
    }
    server.kill9(); // no shutdown, no snapshot

    for round in 0..2 {
        let mut server = ServerProcess::start(dir.path(), &[]);
        let dp = server
            .client()
            .await
            .get_metric_statistics(query())
            .await
            .unwrap()
            .into_inner()
            .datapoints;
        assert_eq!(dp[0].statistics["SampleCount"], 1000.0, "round {round}");
        assert_eq!(
            dp[0].statistics["Sum"],
            20.0 * (0..50).sum::<i32>() as f64,
            "round {round}"
        );
        if round == 0 {
            // A clean stop this time: the checkpoint holds everything and the log is cut.
            server.signal("-TERM");
            assert!(server.child.wait().unwrap().success());
        } else {
            server.kill9();
        }
    }
}

/// `thermostat backup` while the server runs, `thermostat restore` into a new data directory:
/// the restored server has the series and the alarm states.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_running_and_restore() {
    use serde_json::{Value, json};

    let run = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_thermostat"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg.path().join("a.yaml"),
        "alarms:\n  - name: busy\n    namespace: Test/Backup\n    metric_name: M\n    statistic: Sum\n    period_seconds: 60\n    evaluation_periods: 1\n    threshold: 1000\n    comparison_operator: GreaterThanThreshold\n",
    )
    .unwrap();
    let config = cfg.path().to_str().unwrap().to_owned();
    let (data, restored, files) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let t0 = aligned_past(60_000);
    let query = || {
        stats_request(
            "Test/Backup",
            "M",
            &[],
            t0,
            t0 + 60_000,
            60,
            &["SampleCount", "Sum"],
        )
    };

    let server = ServerProcess::start(data.path(), &["--config", &config]);
    let mut c = server.client().await;
    c.put_metric_data(request(
        "Test/Backup",
        (0..100)
            .map(|i| value_datum("M", &[], t0 + i, 2.0))
            .collect(),
    ))
    .await
    .unwrap();
    let before = c.get_metric_statistics(query()).await.unwrap().into_inner();
    reqwest::Client::new()
        .put(format!("http://{}/api/v1/alarms/busy/state", server.http))
        .json(&json!({"state_value": "ALARM", "state_reason": "kept in the backup"}))
        .send()
        .await
        .unwrap();

    let file = files.path().join("thermostat.backup");
    let (code, text) = run(&[
        "backup".as_ref(),
        "--data-dir".as_ref(),
        data.path().as_os_str(),
        "--to".as_ref(),
        file.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("made by the running server"), "{text}");
    server.kill9();

    let target = restored.path().join("data");
    let (code, text) = run(&[
        "restore".as_ref(),
        "--from".as_ref(),
        file.as_os_str(),
        "--data-dir".as_ref(),
        target.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run(&[
        "restore".as_ref(),
        "--from".as_ref(),
        file.as_os_str(),
        "--data-dir".as_ref(),
        data.path().as_os_str(),
    ]);
    assert_eq!(
        code,
        Some(1),
        "restoring over existing data is refused: {text}"
    );
    assert!(text.contains("not empty"), "{text}");

    let server = ServerProcess::start(&target, &["--config", &config]);
    let after = server
        .client()
        .await
        .get_metric_statistics(query())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(before, after);
    let alarm: Value = reqwest::get(format!("http://{}/api/v1/alarms/busy", server.http))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(alarm["state"], "ALARM");
    assert_eq!(alarm["reason"], "kept in the backup");
    server.signal("-TERM");
    let mut server = server;
    assert!(server.child.wait().unwrap().success());

    // Without a server, the CLI reads the data directory itself.
    let offline = files.path().join("offline.backup");
    let (code, text) = run(&[
        "backup".as_ref(),
        "--data-dir".as_ref(),
        target.as_os_str(),
        "--to".as_ref(),
        offline.as_os_str(),
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("no server running"), "{text}");
}
