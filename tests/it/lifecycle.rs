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
