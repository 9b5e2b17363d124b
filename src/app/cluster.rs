//! Cluster mode connected: the NATS adapter ([`thermostat_cluster`]) as ingest's log
//! ([`thermostat_ingest::RemoteLog`]), the store as the adapter's [`Applier`], and the
//! adapter's status as the dashboards' [`ClusterApi`].

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thermostat_cluster::{Applier, Cluster, ClusterOptions, RPC_TIMEOUT, RpcHandler, Secret};
use thermostat_dashboards::cluster::ClusterApi;
use thermostat_ingest::{RecordApplier, RemoteLog};
use thermostat_metrics::store::{KeysRequest, RemoteShards, SeriesExport};
use thermostat_metrics::{SeriesKey, Store, Timestamp, Unit};

use crate::settings;

/// Joins the cluster the settings name.
///
/// # Errors
/// NATS cannot be reached or refuses the stream and buckets.
pub async fn connect(c: &settings::Cluster) -> Result<Cluster, thermostat_cluster::Error> {
    let token = match &c.token_env {
        Some(var) => Some(Secret(std::env::var(var).map_err(|_| {
            thermostat_cluster::Error::Settings(format!(
                "cluster.token_env: the environment variable {var} is not set"
            ))
        })?)),
        None => None,
    };
    let options = ClusterOptions {
        replicas: c.replicas,
        partitions: c.partitions,
        lease_ttl: c.lease,
        snapshot_interval: c.snapshot_interval,
        tls_ca_file: c.tls_ca_file.clone(),
        tls_client: c.tls_client.clone(),
        credentials_file: c.credentials_file.clone(),
        token,
        ..ClusterOptions::new(c.servers.clone(), c.node_id.clone())
    };
    Cluster::connect(options).await
}

/// The cluster's ingest stream as the log writer's [`RemoteLog`]: the writer's thread blocks
/// on the publishes, which run on the server's runtime.
#[derive(Debug)]
pub struct StreamLog {
    cluster: Cluster,
    runtime: tokio::runtime::Handle,
}

impl StreamLog {
    /// The stream of `cluster`, published from `runtime`.
    pub fn new(cluster: Cluster, runtime: tokio::runtime::Handle) -> Self {
        StreamLog { cluster, runtime }
    }
}

impl RemoteLog for StreamLog {
    fn partitions(&self) -> u32 {
        self.cluster.partitions()
    }

    fn max_record_bytes(&self) -> usize {
        // Room for the message's subject and headers.
        self.cluster.max_payload().saturating_sub(4096).max(1024)
    }

    fn store_blocking(&self, parts: Vec<(u32, Vec<u8>)>) -> Vec<Result<u64, String>> {
        self.runtime
            .block_on(self.cluster.publish(parts))
            .into_iter()
            .map(|r| r.map_err(|e| e.to_string()))
            .collect()
    }
}

/// The store, fed by the partitions this node owns.
#[derive(Debug)]
pub struct StoreApplier(pub RecordApplier);

impl Applier for StoreApplier {
    fn applied_seq(&self, partition: u32) -> u64 {
        self.0.applied_seq(partition)
    }

    fn apply(&self, partition: u32, seq: u64, payload: &[u8]) -> Result<(), String> {
        self.0.apply(partition, seq, payload)
    }

    fn snapshot(&self, partition: u32) -> (u64, Vec<u8>) {
        self.0.snapshot_partition(partition)
    }

    fn load(&self, partition: u32, snapshot: &[u8]) -> Result<u64, String> {
        self.0.load_partition(partition, snapshot)
    }
}

/// The cluster's status for `GET /api/v1/cluster` and `/readyz`, with whether this node
/// evaluates the alarms (only the leader does) and why not.
#[derive(Debug)]
pub struct ClusterView {
    cluster: Cluster,
    engine: Arc<thermostat_alarms_runtime::AlarmRuntime>,
}

impl ClusterApi for ClusterView {
    fn status(&self) -> serde_json::Value {
        let mut status = serde_json::to_value(self.cluster.status()).unwrap_or_default();
        if let Some(map) = status.as_object_mut() {
            let paused = self.engine.evaluation_paused();
            map.insert(
                "alarm_evaluation".into(),
                serde_json::json!({
                    "evaluating": paused.is_none(),
                    "paused": paused,
                    // The leader evaluates composites, metric math and the alarms that
                    // scale; every node the metric alarms of its partitions.
                    "leads": self.cluster.leads(),
                }),
            );
        }
        status
    }

    fn ready(&self) -> bool {
        self.cluster.status().ready
    }

    fn stale(&self) -> bool {
        !self.cluster.connected()
    }
}

/// The cluster's status as the dashboards' port.
pub fn view(
    cluster: &Cluster,
    engine: &Arc<thermostat_alarms_runtime::AlarmRuntime>,
) -> Arc<dyn ClusterApi> {
    Arc::new(ClusterView {
        cluster: cluster.clone(),
        engine: Arc::clone(engine),
    })
}

/// What one node asks another (JSON over NATS request/reply).
#[derive(Debug, Serialize, Deserialize)]
enum Rpc {
    /// A series' windows overlapping `from..=to`, after `after` ((unit, tier, start)), at
    /// most [`WINDOWS_PER_ANSWER`].
    Windows {
        key: SeriesKey,
        from: Timestamp,
        to: Timestamp,
        after: Option<(Unit, u8, i64)>,
    },
    /// Keys of the shards the asked node holds.
    Keys(KeysRequest),
}

/// Windows in one answer at most (an answer must fit one NATS message).
const WINDOWS_PER_ANSWER: usize = 256;

/// What this node answers other nodes: reads of the shards it holds.
pub fn rpc_handler(store: Arc<Store>) -> RpcHandler {
    Arc::new(move |body| {
        let answer = match serde_json::from_slice::<Rpc>(body) {
            Ok(Rpc::Windows {
                key,
                from,
                to,
                after,
            }) => serde_json::to_vec(&Ok::<_, String>(store.export_range(
                &key,
                from,
                to,
                after,
                WINDOWS_PER_ANSWER,
            ))),
            Ok(Rpc::Keys(request)) => {
                serde_json::to_vec(&Ok::<_, String>(store.local_keys(&request)))
            }
            Err(e) => serde_json::to_vec(&Err::<(), _>(format!("not a request: {e}"))),
        };
        answer.unwrap_or_default()
    })
}

/// The other nodes' shards, read over NATS: the store's [`RemoteShards`].
#[derive(Debug)]
pub struct ClusterReads {
    cluster: Cluster,
    runtime: tokio::runtime::Handle,
}

impl ClusterReads {
    /// Reads through `cluster`, its requests run on `runtime`.
    pub fn new(cluster: Cluster, runtime: tokio::runtime::Handle) -> Self {
        ClusterReads { cluster, runtime }
    }

    /// Asks `node` and waits (this runs on a query's blocking thread).
    fn ask<T: serde::de::DeserializeOwned>(&self, node: &str, rpc: &Rpc) -> Result<T, String> {
        let body = serde_json::to_vec(rpc).map_err(|e| e.to_string())?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let (cluster, node_id) = (self.cluster.clone(), node.to_owned());
        self.runtime.spawn(async move {
            let _ = tx.send(cluster.request(&node_id, body).await);
        });
        let answer = rx
            .recv_timeout(RPC_TIMEOUT + Duration::from_secs(1))
            .map_err(|_| format!("{node} did not answer"))?
            .map_err(|e| e.to_string())?;
        serde_json::from_slice::<Result<T, String>>(&answer)
            .map_err(|e| format!("{node} answered something else: {e}"))?
    }
}

impl RemoteShards for ClusterReads {
    fn is_local(&self, shard: usize) -> bool {
        // Cut off from NATS, this node answers from its own memory (marked stale); a
        // partition whose lease is this node's is read here even while its consumer restarts.
        !self.cluster.connected()
            || u32::try_from(shard).is_ok_and(|p| {
                self.cluster.holds(p)
                    || self.cluster.owner_of(p).as_deref() == Some(self.cluster.node_id())
            })
    }

    fn windows(
        &self,
        shard: usize,
        key: &SeriesKey,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Option<SeriesExport>, String> {
        let partition = u32::try_from(shard).map_err(|e| e.to_string())?;
        let owner = self.cluster.owner_of(partition).ok_or_else(|| {
            format!("no node holds partition {partition} at the moment (it is moving); retry")
        })?;
        let mut whole: Option<SeriesExport> = None;
        let mut after = None;
        loop {
            let rpc = Rpc::Windows {
                key: key.clone(),
                from,
                to,
                after,
            };
            let Some(page) = self.ask::<Option<SeriesExport>>(&owner, &rpc)? else {
                return Ok(whole);
            };
            let count: usize = page.streams.iter().map(|s| s.windows.len()).sum();
            after = page.streams.last().and_then(|s| {
                s.windows
                    .last()
                    .map(|(tier, start, _)| (s.unit, *tier, *start))
            });
            match &mut whole {
                None => whole = Some(page),
                Some(w) => {
                    w.last_timestamp = w.last_timestamp.max(page.last_timestamp);
                    for stream in page.streams {
                        match w.streams.iter_mut().find(|s| s.unit == stream.unit) {
                            Some(s) => s.windows.extend(stream.windows),
                            None => w.streams.push(stream),
                        }
                    }
                }
            }
            if count < WINDOWS_PER_ANSWER || after.is_none() {
                return Ok(whole);
            }
        }
    }

    fn keys(&self, request: &KeysRequest) -> Vec<SeriesKey> {
        let rpc = Rpc::Keys(request.clone());
        let mut out = Vec::new();
        for peer in self.cluster.peers() {
            match self.ask::<Vec<SeriesKey>>(&peer, &rpc) {
                Ok(keys) => out.extend(keys),
                Err(e) => {
                    tracing::warn!(node = %peer, error = %e, "A listing is incomplete: a node of the cluster did not answer.");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(handler: &RpcHandler, body: &[u8]) -> serde_json::Value {
        serde_json::from_slice(&handler(body)).expect("every answer is JSON")
    }

    #[test]
    fn hostile_requests_from_another_node_get_an_error_answer_never_a_crash() {
        let handler = rpc_handler(Arc::new(Store::partitioned(4)));
        let deep = "[".repeat(100_000);
        let huge_string = format!("{{\"Keys\":\"{}\"}}", "x".repeat(1 << 20));
        for body in [
            &b""[..],
            b"\xff\xfe",
            b"{\"Windows\":{}}",
            b"{\"Nope\":1}",
            deep.as_bytes(),
            huge_string.as_bytes(),
        ] {
            let got = answer(&handler, body);
            let message = got["Err"].as_str().unwrap_or_else(|| panic!("{got}"));
            assert!(message.starts_with("not a request"), "{message}");
        }
        // A well-formed request for a series this node does not have.
        let request = Rpc::Windows {
            key: SeriesKey::new("A", "m", Vec::new()),
            from: Timestamp(0),
            to: Timestamp(60_000),
            after: None,
        };
        let got = answer(&handler, &serde_json::to_vec(&request).unwrap());
        assert_eq!(got, serde_json::json!({ "Ok": null }));
    }
}
