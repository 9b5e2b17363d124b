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
