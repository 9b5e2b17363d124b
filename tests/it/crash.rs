//! Crash safety: concurrent clients push while the server is killed with SIGKILL at random
//! moments; after every restart each acknowledged request is there exactly once, and a request
//! that was not acknowledged is there entirely or not at all.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio::sync::watch;

use crate::process::ServerProcess;
use crate::util::*;

const CLIENTS: usize = 4;
const KILLS: usize = 5;
const DATUMS: i64 = 10;

#[derive(Default)]
struct Ledger {
    /// Request id → sum of its values, for acknowledged requests.
    acked: BTreeMap<String, f64>,
    /// Request ids sent but not acknowledged (the server died meanwhile).
    uncertain: BTreeMap<String, f64>,
}

async fn client(
    id: usize,
    t0: i64,
    mut target: watch::Receiver<Option<String>>,
    ledger: Arc<Mutex<Ledger>>,
) {
    let mut n = 0u64;
    loop {
        let current = target.borrow_and_update().clone();
        let Some(addr) = current else {
            if target.changed().await.is_err() {
                return;
            }
            continue;
        };
        let connected =
            thermostat_proto::v1::metrics_service_client::MetricsServiceClient::connect(format!(
                "http://{addr}"
            ))
            .await;
        if let Ok(mut c) = connected {
            loop {
                n += 1;
                let req_id = format!("c{id}-r{n}");
                let data: Vec<_> = (0..DATUMS)
                    .map(|j| {
                        value_datum(
                            "Req",
                            &[("Id", &req_id)],
                            t0 + j * 1000,
                            (n as f64) + j as f64,
                        )
                    })
                    .collect();
                let sum: f64 = (0..DATUMS).map(|j| n as f64 + j as f64).sum();
                let call = tokio::time::timeout(
                    Duration::from_secs(10),
                    c.put_metric_data(request("Test/Crash", data)),
                );
                match call.await {
                    Ok(Ok(_)) => {
                        ledger.lock().unwrap().acked.insert(req_id, sum);
                    }
                    _ => {
                        ledger.lock().unwrap().uncertain.insert(req_id, sum);
                        break;
                    }
                }
            }
        }
        // Wait for the next server (or the end of the test).
        if target.changed().await.is_err() {
            return;
        }
    }
}

async fn verify(server: &ServerProcess, t0: i64, ledger: &Ledger) -> (usize, usize) {
    let mut c = server.client().await;
    let listed = c
        .list_metrics(thermostat_proto::v1::ListMetricsRequest {
            namespace: "Test/Crash".into(),
            metric_name: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let stored: BTreeMap<String, ()> = listed
        .metrics
        .iter()
        .map(|m| (m.dimensions[0].value.clone(), ()))
        .collect();
    for (id, sum) in &ledger.acked {
        let dp = c
            .get_metric_statistics(stats_request(
                "Test/Crash",
                "Req",
                &[("Id", id)],
                t0,
                t0 + 60_000,
                60,
                &["SampleCount", "Sum"],
            ))
            .await
            .unwrap()
            .into_inner()
            .datapoints;
        assert_eq!(dp.len(), 1, "acknowledged request {id} is stored");
        assert_eq!(
            dp[0].statistics["SampleCount"], DATUMS as f64,
            "request {id} counted exactly once"
        );
        assert_eq!(dp[0].statistics["Sum"], *sum, "request {id}");
    }
    let mut recovered = 0;
    for (id, sum) in &ledger.uncertain {
        if !stored.contains_key(id) {
            continue;
        }
        recovered += 1;
        let dp = c
            .get_metric_statistics(stats_request(
                "Test/Crash",
                "Req",
                &[("Id", id)],
                t0,
                t0 + 60_000,
                60,
                &["SampleCount", "Sum"],
            ))
            .await
            .unwrap()
            .into_inner()
            .datapoints;
        assert_eq!(
            dp[0].statistics["SampleCount"], DATUMS as f64,
            "unacknowledged request {id}: all or nothing"
        );
        assert_eq!(dp[0].statistics["Sum"], *sum);
    }
    let unknown: Vec<&String> = stored
        .keys()
        .filter(|k| !ledger.acked.contains_key(*k) && !ledger.uncertain.contains_key(*k))
        .collect();
    assert!(
        unknown.is_empty(),
        "nothing is stored that no client sent: {unknown:?}"
    );
    (ledger.acked.len(), recovered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = aligned_past(60_000);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let (tx, rx) = watch::channel(None);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| tokio::spawn(client(i, t0, rx.clone(), Arc::clone(&ledger))))
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x7e57);
    for round in 0..KILLS {
        let server = ServerProcess::start(dir.path(), &[]);
        if round > 0 {
            let snapshot = std::mem::take(&mut *ledger.lock().unwrap());
            let (acked, recovered) = verify(&server, t0, &snapshot).await;
            assert!(acked > 0, "round {round}: clients made progress");
            println!(
                "round {round}: {acked} acknowledged requests verified, {recovered} unacknowledged ones recovered whole"
            );
            *ledger.lock().unwrap() = snapshot;
        }
        tx.send(Some(server.grpc.clone())).unwrap();
        tokio::time::sleep(Duration::from_millis(rng.random_range(150..600))).await;
        server.kill9();
    }
    let server = ServerProcess::start(dir.path(), &[]);
    let snapshot = std::mem::take(&mut *ledger.lock().unwrap());
    let (acked, _) = verify(&server, t0, &snapshot).await;
    assert!(acked >= KILLS, "{acked}");
    drop(tx);
    for c in clients {
        c.await.unwrap();
    }
}

/// Alarm states, alarm history and pending notifications survive SIGKILL: a notification
/// whose receiver keeps failing is retried after the restart and delivered exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarm_state_history_and_pending_notifications_survive_sigkill() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use axum::http::StatusCode;
    use serde_json::Value;

    let healthy = Arc::new(AtomicBool::new(false));
    let deliveries = Arc::new(AtomicUsize::new(0));
    let (h, d) = (Arc::clone(&healthy), Arc::clone(&deliveries));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let (h, d) = (Arc::clone(&h), Arc::clone(&d));
            async move {
                if h.load(Ordering::SeqCst) {
                    d.fetch_add(1, Ordering::SeqCst);
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg.path().join("a.yaml"),
        format!(
            "alarms:\n  - name: disk-full\n    namespace: Test/Kill\n    metric_name: Used\n    statistic: Maximum\n    period_seconds: 60\n    evaluation_periods: 1\n    threshold: 90\n    comparison_operator: GreaterThanThreshold\n    alarm_actions: [\"{hook}\"]\nnotifications:\n  retry: {{initial_backoff_seconds: 1, max_backoff_seconds: 1}}\n"
        ),
    )
    .unwrap();
    let config = cfg.path().to_str().unwrap().to_owned();
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();

    let server = ServerProcess::start(data.path(), &["--config", &config]);
    set_alarm_state(&server.http, "disk-full", "ALARM", "before the crash").await;
    // Wait until the notification has failed at least once (it is in the outbox, pending).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let n: Value = http
            .get(format!("http://{}/api/v1/notifications", server.http))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if n["notifications"][0]["attempts"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            assert_ne!(n["notifications"][0]["status"], "delivered");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no failed attempt recorded: {n}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.kill9();

    healthy.store(true, Ordering::SeqCst);
    let server = ServerProcess::start(data.path(), &["--config", &config]);
    let alarm: Value = http
        .get(format!("http://{}/api/v1/alarms/disk-full", server.http))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(alarm["state"], "ALARM", "{alarm}");
    assert_eq!(alarm["reason"], "before the crash");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while deliveries.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the pending notification was not retried after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give a duplicate the chance to show up, then check there was none.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        deliveries.load(Ordering::SeqCst),
        1,
        "delivered exactly once"
    );
    let history: Value = http
        .get(format!(
            "http://{}/api/v1/alarms/disk-full/history",
            server.http
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = history["history"].as_array().unwrap();
    assert!(
        items.iter().any(|i| i["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("from INSUFFICIENT_DATA to ALARM")),
        "{history}"
    );
    assert!(
        items.iter().any(|i| i["item_type"] == "Action"
            && i["summary"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Successfully")),
        "{history}"
    );
}

/// The groups' capacity metrics go through the write-ahead log like pushed data: the ticks'
/// samples recorded before a SIGKILL (no checkpoint in between) are there after the restart.
/// The restart also proves that a stored scaling-group state does not stop the alarm engine
/// from loading its own states (it once read every row as an alarm's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_capacity_metrics_survive_sigkill() {
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg.path().join("g.yaml"),
        "scaling_groups:\n  - name: kept\n    backend: simulated\n    min_size: 1\n    max_size: 5\n    desired_capacity: 3\n",
    )
    .unwrap();
    let config = cfg.path().to_str().unwrap().to_owned();
    let data = tempfile::tempdir().unwrap();
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 60;
    let datapoints = |server: &ServerProcess| {
        let path = format!(
            "/api/v1/statistics?namespace=AWS/AutoScaling&metric_name=GroupDesiredCapacity&dimensions=AutoScalingGroupName=kept&period_seconds=10&statistics=Maximum&start={since}&end={}",
            since + 3600
        );
        let http_addr = server.http.clone();
        async move {
            let doc = get_json(http_addr, &path).await;
            doc["datapoints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    (
                        d["timestamp"].as_str().unwrap().to_owned(),
                        d["Maximum"].as_f64().unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };

    let server = ServerProcess::start(data.path(), &["--config", &config]);
    // The engine ticks every 10 s on the wall clock: wait for the first tick's samples.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let before = loop {
        let points = datapoints(&server).await;
        if !points.is_empty() {
            break points;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no capacity metrics were recorded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(before.iter().all(|(_, v)| *v == 3.0), "{before:?}");
    server.kill9();

    let server = ServerProcess::start(data.path(), &["--config", &config]);
    let after = datapoints(&server).await;
    for point in &before {
        assert!(
            after.contains(point),
            "{point:?} was lost in the crash: {after:?}"
        );
    }
}

/// A full disk (here a file-size limit, `prlimit --fsize`): pushes that cannot be made durable
/// are refused with UNAVAILABLE, never acknowledged; everything acknowledged before is there
/// after a restart, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_pushes_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = aligned_past(60_000);
    let server =
        ServerProcess::start_wrapped(dir.path(), &[], &[], &["prlimit", "--fsize=1500000", "--"]);
    let mut c = server.client().await;
    let mut acked = 0u64;
    let mut refused = 0;
    for i in 0..100 {
        // A thousand series a request, so that each record names a thousand series (a
        // request's datums of one series are logged as one run) and the disk fills.
        let data = (0..1000)
            .map(|j| value_datum("M", &[("Part", &format!("p{j}"))], t0 + j, f64::from(i)))
            .collect();
        match c.put_metric_data(request("Test/Full", data)).await {
            Ok(r) => {
                assert_eq!(refused, 0, "nothing is acknowledged once the disk is full");
                acked += r.into_inner().accepted_samples;
            }
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
                assert!(
                    status.message().contains("cannot persist"),
                    "{}",
                    status.message()
                );
                refused += 1;
                if refused == 3 {
                    break;
                }
            }
        }
    }
    assert!(
        acked > 0 && refused == 3,
        "acked {acked}, refused {refused}"
    );
    server.kill9();

    let server = ServerProcess::start(dir.path(), &[]);
    let mut total = 0.0;
    for p in 0..1000 {
        total += server
            .sample_count("Test/Full", "M", &[("Part", &format!("p{p}"))], t0)
            .await;
    }
    assert_eq!(
        total, acked as f64,
        "every acknowledged sample, once; none of the refused ones"
    );
}

/// Overload: clients pushing faster than the log can take get RESOURCE_EXHAUSTED, never an
/// acknowledgement for data that is then lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_refused_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = aligned_past(60_000);
    let server = ServerProcess::start(
        dir.path(),
        &["--ingest-queue-capacity", "1", "--fsync", "always"],
    );
    let client = server.client().await;
    let calls: Vec<_> = (0..64)
        .map(|i| {
            let mut c = client.clone();
            tokio::spawn(async move {
                let data = (0..500)
                    .map(|j| value_datum("M", &[], t0 + j, f64::from(i)))
                    .collect();
                c.put_metric_data(request("Test/Overload", data)).await
            })
        })
        .collect();
    let (mut acked, mut exhausted) = (0u64, 0);
    for call in calls {
        match call.await.unwrap() {
            Ok(r) => acked += r.into_inner().accepted_samples,
            Err(s) => {
                assert_eq!(s.code(), tonic::Code::ResourceExhausted, "{s:?}");
                exhausted += 1;
            }
        }
    }
    assert!(
        exhausted > 0,
        "a queue of one request must refuse some of 64 concurrent pushes"
    );
    assert!(acked > 0);
    server.kill9();
    let server = ServerProcess::start(dir.path(), &[]);
    assert_eq!(
        server.sample_count("Test/Overload", "M", &[], t0).await,
        acked as f64
    );
}

/// A corrupt record in the middle of the log stops start-up with the segment and offset; with
/// `--recover-truncate` the server starts, keeping what came before it. A torn tail is cut
/// without being asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_logs_stop_start_up_unless_truncation_is_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = aligned_past(60_000);
    let server = ServerProcess::start(dir.path(), &[]);
    let mut c = server.client().await;
    for i in 0..4 {
        c.put_metric_data(request(
            "Test/Corrupt",
            vec![value_datum("M", &[], t0 + i, 1.0)],
        ))
        .await
        .unwrap();
    }
    server.kill9();
    let wal = dir.path().join("wal");
    let mut segments: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segments.sort();
    let seg = segments.last().unwrap().clone();
    let mut bytes = std::fs::read(&seg).unwrap();
    let record = (bytes.len() - 12) / 4;
    bytes[12 + record + 30] ^= 0xff; // inside record 2 of 4
    std::fs::write(&seg, &bytes).unwrap();

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_thermostat"))
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("corrupt record at byte offset {}", 12 + record)),
        "{err}"
    );
    assert!(err.contains("--recover-truncate"), "{err}");

    let server = ServerProcess::start(dir.path(), &["--recover-truncate"]);
    assert_eq!(
        server.sample_count("Test/Corrupt", "M", &[], t0).await,
        1.0,
        "the record before the corruption is kept"
    );
    // A later push (after truncation) is kept too, and the log is clean for the next start.
    server
        .client()
        .await
        .put_metric_data(request(
            "Test/Corrupt",
            vec![value_datum("M", &[], t0 + 9, 1.0)],
        ))
        .await
        .unwrap();
    server.kill9();

    // A torn tail: the last record cut short, as a crash in the middle of writing it leaves
    // it (only a record not yet acknowledged can be torn; cutting the last one stands in).
    let mut segments: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segments.sort();
    let last = segments.last().unwrap().clone();
    let len = std::fs::metadata(&last).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    assert_eq!(
        server.sample_count("Test/Corrupt", "M", &[], t0).await,
        1.0,
        "the torn record is cut, everything before it kept"
    );
}

/// OTLP cumulative streams survive SIGKILL (issue 19): a monotonic counter's total of 10,
/// acknowledged (so durable) before the kill, is what the next total of 25 (same start time)
/// is counted from after the restart. The Sum over the range is 25 (10, then the increase of
/// 15), never 35 (the increase lost, the total taken again) or 50; and the second point sent
/// once more after another kill (a sender's retry) adds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_cumulative_streams_survive_sigkill() {
    use thermostat_proto::otlp::metrics_service_client::MetricsServiceClient;

    use crate::otlp::{cumulative, export_request, point};

    async fn export(server: &ServerProcess, at_ms: i64, start_ms: i64, total: f64) {
        let mut otlp = MetricsServiceClient::connect(format!("http://{}", server.grpc))
            .await
            .unwrap();
        let answer = otlp
            .export(export_request(
                "crash-otlp",
                vec![cumulative("requests", vec![point(at_ms, start_ms, total)])],
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.partial_success, None, "every point kept");
    }

    /// The counter's Sum over every minute from an hour before `start` to an hour after.
    async fn sum(server: &ServerProcess, start: i64) -> f64 {
        let from = start - start.rem_euclid(60_000) - 3_600_000;
        let r = server
            .client()
            .await
            .get_metric_statistics(stats_request(
                "crash-otlp",
                "requests",
                &[("service.name", "crash-otlp")],
                from,
                from + 3 * 3_600_000,
                60,
                &["Sum"],
            ))
            .await
            .unwrap()
            .into_inner();
        r.datapoints.iter().map(|d| d.statistics["Sum"]).sum()
    }

    let dir = tempfile::tempdir().unwrap();
    let start = now_ms() - 120_000;
    let (t1, t2) = (start + 20_000, start + 40_000);

    let server = ServerProcess::start(dir.path(), &[]);
    export(&server, t1, start, 10.0).await;
    server.kill9();

    let server = ServerProcess::start(dir.path(), &[]);
    assert_eq!(sum(&server, start).await, 10.0, "the acknowledged point");
    export(&server, t2, start, 25.0).await;
    assert_eq!(
        sum(&server, start).await,
        25.0,
        "10, then the increase of 15: the stream's previous total survived the kill"
    );
    server.kill9();

    let server = ServerProcess::start(dir.path(), &[]);
    assert_eq!(sum(&server, start).await, 25.0, "after a second kill");
    export(&server, t2, start, 25.0).await;
    assert_eq!(
        sum(&server, start).await,
        25.0,
        "the same point again (a retry) holds nothing new"
    );
}

/// Remote write: an acknowledged counter sample survives `kill -9`, and so does its stream's
/// last total, so the next sample after the restart records only its increase.
#[tokio::test]
async fn remote_write_counters_survive_sigkill() {
    use crate::remote_write::{series, write};

    async fn send(server: &ServerProcess, at_ms: i64, total: f64) {
        let url = format!("http://{}/api/v1/write", server.http);
        let labels = [("__name__", "jobs_total"), ("job", "crash-prom")];
        let (status, body) = write(&url, None, vec![series(&labels, &[(at_ms, total)])]).await;
        assert_eq!(status, 204, "{body}");
    }

    async fn sum(server: &ServerProcess, start: i64) -> f64 {
        let from = start - start.rem_euclid(60_000) - 3_600_000;
        let r = server
            .client()
            .await
            .get_metric_statistics(stats_request(
                "crash-prom",
                "jobs_total",
                &[],
                from,
                from + 3 * 3_600_000,
                60,
                &["Sum"],
            ))
            .await
            .unwrap()
            .into_inner();
        r.datapoints.iter().map(|d| d.statistics["Sum"]).sum()
    }

    let dir = tempfile::tempdir().unwrap();
    let start = now_ms() - 120_000;
    let server = ServerProcess::start(dir.path(), &[]);
    send(&server, start, 100.0).await;
    send(&server, start + 15_000, 110.0).await;
    server.kill9();

    let server = ServerProcess::start(dir.path(), &[]);
    assert_eq!(sum(&server, start).await, 10.0, "the acknowledged increase");
    send(&server, start + 30_000, 125.0).await;
    assert_eq!(
        sum(&server, start).await,
        25.0,
        "15 more: the stream's last total (110) survived the kill"
    );
}

/// An alarm created through the CloudWatch API (the real AWS CLI, AWS Query, SigV4 with an
/// operator's key whose secret is in an environment variable) and set to ALARM survives
/// `kill -9`: after a restart on the same data directory `describe-alarms` gives the same
/// definition and the state ALARM, and its history still has the state change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_created_alarm_survives_sigkill() {
    use crate::cloudwatch_cli::{
        KEY_ID, SECRET, aws, debian_aws_cli, ok_json, put_metric_alarm_args,
    };

    const ALARM: &str = "cli-crash-alarm";
    const SECRET_ENV: &str = "THERMOSTAT_TEST_AWS_SECRET";
    let Some(cli) = debian_aws_cli("an_api_created_alarm_survives_sigkill") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("settings.yaml");
    std::fs::write(
        &settings,
        format!(
            "aws_api:\n  access_keys:\n    - access_key_id: {KEY_ID}\n      secret_env: {SECRET_ENV}\n      role: operator\n"
        ),
    )
    .unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let data = dir.path().join("data");
    let args = ["--settings", settings.to_str().unwrap()];
    let env = [(SECRET_ENV, SECRET)];
    let run = |server: &ServerProcess, args: Vec<&str>| {
        let endpoint = format!("http://{}", server.http);
        let (cli, home) = (cli.clone(), home.clone());
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            aws(&cli, &home, &endpoint, KEY_ID, SECRET, &args).await
        }
    };
    let describe = |server: &ServerProcess| {
        run(
            server,
            vec![
                "describe-alarms",
                "--alarm-names",
                ALARM,
                "--output",
                "json",
            ],
        )
    };

    let server = ServerProcess::start_with_env(&data, &args, &env);
    ok_json(
        &run(&server, put_metric_alarm_args(ALARM)).await,
        "put-metric-alarm",
    );
    ok_json(
        &run(
            &server,
            vec![
                "set-alarm-state",
                "--alarm-name",
                ALARM,
                "--state-value",
                "ALARM",
                "--state-reason",
                "before the crash",
            ],
        )
        .await,
        "set-alarm-state",
    );
    let before = ok_json(&describe(&server).await, "describe-alarms before the crash");
    assert_eq!(before["MetricAlarms"][0]["StateValue"], "ALARM", "{before}");
    server.kill9();

    let server = ServerProcess::start_with_env(&data, &args, &env);
    let after = ok_json(
        &describe(&server).await,
        "describe-alarms after the restart",
    );
    let alarms = after["MetricAlarms"].as_array().unwrap();
    assert_eq!(alarms.len(), 1, "{after}");
    let a = &alarms[0];
    assert_eq!(a["AlarmName"], ALARM, "{after}");
    assert_eq!(a["StateValue"], "ALARM", "{after}");
    assert_eq!(a["StateReason"], "before the crash", "{after}");
    assert_eq!(a["Threshold"], 50.0, "{after}");
    assert_eq!(a["Period"], 60, "{after}");
    assert_eq!(a["EvaluationPeriods"], 1, "{after}");
    assert_eq!(a["TreatMissingData"], "ignore", "{after}");
    assert_eq!(a["Statistic"], "Average", "{after}");
    assert_eq!(a["ComparisonOperator"], "GreaterThanThreshold", "{after}");
    assert_eq!(a["Namespace"], "Cli/Shop", "{after}");
    assert_eq!(a["MetricName"], "Latency", "{after}");
    assert_eq!(
        a["Dimensions"],
        serde_json::json!([{"Name": "Host", "Value": "a"}]),
        "{after}"
    );
    // Everything of the definition is as it was before the crash (state timestamps included).
    assert_eq!(
        a, &before["MetricAlarms"][0],
        "the alarm as described before and after the crash"
    );
    let history = ok_json(
        &run(
            &server,
            vec![
                "describe-alarm-history",
                "--alarm-name",
                ALARM,
                "--output",
                "json",
            ],
        )
        .await,
        "describe-alarm-history after the restart",
    );
    assert!(
        history["AlarmHistoryItems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["HistoryItemType"] == "StateUpdate"
                && i["HistorySummary"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("ALARM")),
        "{history}"
    );
}
