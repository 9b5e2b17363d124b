//! Cluster mode connected: the NATS adapter ([`thermostat_cluster`]) as ingest's log
//! ([`thermostat_ingest::RemoteLog`]), the store as the adapter's [`Applier`], and the
//! adapter's status as the dashboards' [`ClusterApi`].

use std::sync::Arc;

use thermostat_cluster::{Applier, Cluster, ClusterOptions};
use thermostat_dashboards::cluster::ClusterApi;
use thermostat_ingest::{RecordApplier, RemoteLog};

use crate::settings;

/// Joins the cluster the settings name.
///
/// # Errors
/// NATS cannot be reached or refuses the stream and buckets.
pub async fn connect(c: &settings::Cluster) -> Result<Cluster, thermostat_cluster::Error> {
    let options = ClusterOptions {
        replicas: c.replicas,
        partitions: c.partitions,
        lease_ttl: c.lease,
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
}

/// The cluster's status for `GET /api/v1/cluster` and `/readyz`.
#[derive(Debug)]
pub struct ClusterView(pub Cluster);

impl ClusterApi for ClusterView {
    fn status(&self) -> serde_json::Value {
        serde_json::to_value(self.0.status()).unwrap_or_default()
    }

    fn ready(&self) -> bool {
        self.0.status().ready
    }
}

/// Shares one handle as every port.
pub fn view(cluster: &Cluster) -> Arc<dyn ClusterApi> {
    Arc::new(ClusterView(cluster.clone()))
}
