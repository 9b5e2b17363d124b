//! One node of the cluster: its NATS connection, the ingest stream, the membership and lease
//! loop, and one consumer per owned partition that applies the stream to the local store.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, consumer, kv, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::assign::{assign, owned_by};
use crate::error::Error;
use crate::lease::{Current, Lease, LeaseTimes, Step, step};
use crate::snapshot::{Published, Snapshots};

/// The ingest stream: one subject per partition, `thermostat.ingest.<partition>`.
pub const INGEST_STREAM: &str = "THERMOSTAT_INGEST";
const INGEST_PREFIX: &str = "thermostat.ingest";
/// The cluster's fixed settings (`partitions`) and, later, the alarm set's digest.
const META_BUCKET: &str = "thermostat_cluster";
/// Node heartbeats, one key per node.
const NODES_BUCKET: &str = "thermostat_nodes";
/// Partition leases (`partition.<n>`) and the leader lease (`leader`).
const LEASES_BUCKET: &str = "thermostat_leases";
const LEADER_KEY: &str = "leader";
/// The leader's configuration digest, in the settings bucket.
const CONFIG_DIGEST_KEY: &str = "config_digest";

/// How often partitions are snapshotted unless told otherwise.
pub const DEFAULT_SNAPSHOT_INTERVAL: Duration = Duration::from_secs(300);

/// Partitions a new cluster gets unless told otherwise.
pub const DEFAULT_PARTITIONS: u32 = 64;

/// How a node joins the cluster (`--cluster`, `--node-id`, `cluster:` in the settings).
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// NATS server URLs (`nats://HOST:4222`), any of the NATS cluster's servers.
    pub servers: Vec<String>,
    /// This node's name, unique in the cluster.
    pub node_id: String,
    /// Stream and bucket replicas; `None`: the smaller of 3 and the number of NATS servers.
    pub replicas: Option<usize>,
    /// Partitions, used only when the cluster is created (then read from the cluster).
    pub partitions: u32,
    /// A lease's length: a dead node's partitions move after at most this long.
    pub lease_ttl: Duration,
    /// Where this node's HTTP API answers, as other nodes and operators reach it.
    pub http_addr: String,
    /// TLS to NATS: the CA bundle to trust (setting it requires TLS).
    pub tls_ca_file: Option<PathBuf>,
    /// TLS to NATS: this node's client certificate and key, for servers that verify clients.
    pub tls_client: Option<(PathBuf, PathBuf)>,
    /// A NATS credentials file (JWT and seed, `.creds`).
    pub credentials_file: Option<PathBuf>,
    /// A NATS authentication token.
    pub token: Option<Secret>,
    /// How often an owner writes a snapshot of each partition that changed into the object
    /// store and trims the ingest stream below it.
    pub snapshot_interval: Duration,
}

/// A secret (a NATS token): never printed, in `Debug` or anywhere.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

/// `servers` with any `user:password@` taken out, for messages.
fn redacted(servers: &[String]) -> String {
    servers
        .iter()
        .map(|s| match (s.find("://"), s.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}://…@{}", &s[..scheme], &s[at + 1..])
            }
            _ => s.clone(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl ClusterOptions {
    /// Defaults for a node: 64 partitions, 9 s leases, replicas from the NATS cluster.
    pub fn new(servers: Vec<String>, node_id: impl Into<String>) -> Self {
        ClusterOptions {
            servers,
            node_id: node_id.into(),
            replicas: None,
            partitions: DEFAULT_PARTITIONS,
            lease_ttl: Duration::from_secs(9),
            http_addr: String::new(),
            tls_ca_file: None,
            tls_client: None,
            credentials_file: None,
            token: None,
            snapshot_interval: DEFAULT_SNAPSHOT_INTERVAL,
        }
    }
}

/// Where a partition's records go once read from the stream: the local store.
pub trait Applier: Send + Sync + 'static {
    /// The stream sequence up to which `partition` is applied here (0: nothing).
    fn applied_seq(&self, partition: u32) -> u64;
    /// Applies record `seq` of `partition`. Records come in increasing `seq` order per
    /// partition; one already applied is skipped by the store.
    ///
    /// # Errors
    /// A payload that does not decode (reported and skipped: the stream is not ours to fix).
    fn apply(&self, partition: u32, seq: u64, payload: &[u8]) -> Result<(), String>;
    /// A snapshot of `partition` as applied here: the newest record it holds, and its bytes.
    fn snapshot(&self, partition: u32) -> (u64, Vec<u8>);
    /// Replaces `partition` here with a snapshot made by [`Applier::snapshot`] on any node;
    /// returns the newest record it holds.
    ///
    /// # Errors
    /// Bytes that are not a snapshot of `partition` (nothing is changed).
    fn load(&self, partition: u32, snapshot: &[u8]) -> Result<u64, String>;
}

/// A node in the membership bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The node's id.
    pub node_id: String,
    /// Its HTTP address.
    pub http_addr: String,
    /// Its last heartbeat, wall-clock milliseconds.
    pub heartbeat_ms: i64,
}

/// The cluster as one node sees it: what `GET /api/v1/cluster` answers.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClusterStatus {
    /// This node.
    pub node_id: String,
    /// Whether this node's NATS connection is up.
    pub connected: bool,
    /// Partitions in the cluster.
    pub partitions: u32,
    /// Replicas of the stream and buckets.
    pub replicas: usize,
    /// The leader (composites, scaling), if any holds the lease.
    pub leader: Option<String>,
    /// Whether this node has loaded every partition it owns and runs the cluster's
    /// configuration.
    pub ready: bool,
    /// The digest of this node's configuration files.
    pub config_digest: Option<String>,
    /// The leader's: the cluster's configuration.
    pub cluster_config_digest: Option<String>,
    /// Whether this node runs the cluster's configuration (true while there is none yet).
    pub config_matches: bool,
    /// Live nodes and the partitions each owns by lease.
    pub nodes: Vec<NodeStatus>,
    /// Every lease as last read.
    pub leases: Vec<LeaseStatus>,
    /// This node's partitions: how far each is applied.
    pub replay: Vec<ReplayStatus>,
}

/// One live node.
#[derive(Clone, Debug, Serialize)]
pub struct NodeStatus {
    /// Its id.
    pub node_id: String,
    /// Its HTTP address.
    pub http_addr: String,
    /// Its last heartbeat, RFC 3339 milliseconds since the epoch.
    pub heartbeat_ms: i64,
    /// The partitions it holds leases on.
    pub partitions: Vec<u32>,
}

/// One lease.
#[derive(Clone, Debug, Serialize)]
pub struct LeaseStatus {
    /// `partition.<n>` or `leader`.
    pub key: String,
    /// The holder.
    pub owner: String,
    /// The entry's revision: the holder's fencing token.
    pub revision: u64,
    /// When it expires, milliseconds since the epoch.
    pub expires_ms: i64,
}

/// How far one owned partition is applied.
#[derive(Clone, Debug, Serialize)]
pub struct ReplayStatus {
    /// The partition.
    pub partition: u32,
    /// The last stream sequence applied here.
    pub applied_seq: u64,
    /// The partition's last sequence when this node took it over.
    pub target_seq: u64,
    /// Whether it has caught up with `target_seq`.
    pub loaded: bool,
    /// The newest record of the partition's snapshot in the object store, as this node
    /// last loaded, wrote or saw it (the stream holds nothing of the partition below it).
    pub snapshot_seq: Option<u64>,
}

/// A lease this node holds.
#[derive(Clone, Debug)]
struct Held {
    lease: Lease,
    revision: u64,
    consumer: Option<CancellationToken>,
}

#[derive(Debug, Default)]
struct State {
    connected: bool,
    /// Whether a whole round (membership and every lease) has been done since the start.
    settled: bool,
    members: Vec<Member>,
    leases: BTreeMap<String, (Lease, u64)>,
    held: BTreeMap<u32, Held>,
    leader: Option<(Lease, u64)>,
    replay: BTreeMap<u32, (u64, u64)>,
    /// The configuration digest the leader published.
    cluster_digest: Option<String>,
    /// Per partition, the sequence of its snapshot in the object store as last known here.
    snapshots: BTreeMap<u32, u64>,
}

/// A running node's handle.
#[derive(Clone, Debug)]
pub struct Cluster {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    options: ClusterOptions,
    client: async_nats::Client,
    js: jetstream::Context,
    stream: stream::Stream,
    leases: kv::Store,
    nodes: kv::Store,
    /// The cluster's settings: the partition count, the leader's configuration digest.
    meta: kv::Store,
    partitions: u32,
    replicas: usize,
    times: LeaseTimes,
    /// The HTTP address announced in heartbeats (known once the server listens).
    http_addr: Mutex<String>,
    /// This node's configuration digest ([`Cluster::set_config_digest`]).
    config_digest: Mutex<Option<String>>,
    state: Mutex<State>,
    /// Held by a partition's consumer while it runs ([`Cluster::consume`]).
    consumers: Vec<tokio::sync::Mutex<()>>,
    /// Partition snapshots in the object store.
    snapshots: Snapshots,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What a node answers other nodes' requests with: request bytes in, answer bytes out.
pub type RpcHandler = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

/// How long a node waits for another's answer.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a partition's consumer may deliver nothing before the stream is asked whether
/// it is stuck.
const STALL_CHECK: Duration = Duration::from_secs(2);
/// Requests of other nodes answered at once.
const MAX_RPC_IN_FLIGHT: usize = 8;

fn rpc_subject(node: &str) -> String {
    format!("thermostat.rpc.{node}")
}

fn partition_key(p: u32) -> String {
    format!("partition.{p}")
}

/// The subject of a partition in the ingest stream.
pub fn subject_of(partition: u32) -> String {
    format!("{INGEST_PREFIX}.{partition}")
}

impl Cluster {
    /// Connects to NATS, creates the stream and buckets if this is the first node (or checks
    /// them), and reads the cluster's partition count.
    ///
    /// # Errors
    /// NATS cannot be reached, JetStream is not enabled, or the settings disagree.
    pub async fn connect(options: ClusterOptions) -> Result<Cluster, Error> {
        if options.node_id.is_empty()
            || !options
                .node_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::Settings(format!(
                "node id {:?}: use letters, digits, '-' and '_' (it is a NATS key)",
                options.node_id
            )));
        }
        // async-nats' TLS asks rustls for the process-wide provider; the build has several
        // possible ones, so it must be named (ring, as the servers' own TLS). A provider
        // installed before stays.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let servers = redacted(&options.servers);
        let mut connect = async_nats::ConnectOptions::new()
            .name(format!("thermostat {}", options.node_id))
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("Connected to NATS."),
                    async_nats::Event::ServerError(_) | async_nats::Event::ClientError(_) => {
                        tracing::warn!(%event, "NATS connection.");
                    }
                    _ => tracing::info!(%event, "NATS connection."),
                }
            });
        if let Some(ca) = &options.tls_ca_file {
            connect = connect.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let Some((cert, key)) = &options.tls_client {
            connect = connect.add_client_certificate(cert.clone(), key.clone());
        }
        if let Some(token) = &options.token {
            connect = connect.token(token.0.clone());
        }
        if let Some(creds) = &options.credentials_file {
            connect = connect.credentials_file(creds).await.map_err(|e| {
                Error::Settings(format!("cluster.credentials_file {}: {e}", creds.display()))
            })?;
        }
        let client = connect
            .connect(options.servers.as_slice())
            .await
            .map_err(|e| Error::Connect {
                servers: servers.clone(),
                reason: e.to_string(),
            })?;
        let info = client.server_info();
        let servers_seen = info.connect_urls.len().max(options.servers.len()).max(1);
        let replicas = options.replicas.unwrap_or(servers_seen.min(3)).max(1);
        // A NATS cluster that is starting has no JetStream leader yet: wait for it a while.
        let deadline = tokio::time::Instant::now() + SETUP_PATIENCE;
        let (js, partitions, stream, nodes, leases, meta, snapshots) = loop {
            match setup(&client, &options, replicas).await {
                Ok(parts) => break parts,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::info!(error = %e, "Waiting for NATS JetStream.");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let times = LeaseTimes::new(options.lease_ttl.as_millis() as i64);
        Ok(Cluster {
            inner: Arc::new(Inner {
                client,
                js,
                stream,
                leases,
                nodes,
                meta,
                partitions,
                replicas,
                times,
                http_addr: Mutex::new(options.http_addr.clone()),
                config_digest: Mutex::new(None),
                state: Mutex::new(State {
                    connected: true,
                    ..State::default()
                }),
                consumers: (0..partitions)
                    .map(|_| tokio::sync::Mutex::new(()))
                    .collect(),
                snapshots,
                options,
            }),
        })
    }

    /// The snapshots in the object store.
    pub(crate) fn snapshots(&self) -> &Snapshots {
        &self.inner.snapshots
    }

    /// Partitions in the cluster (the store's shard count in cluster mode).
    pub fn partitions(&self) -> u32 {
        self.inner.partitions
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.inner.options.node_id
    }

    /// Announces where this node's HTTP API answers (once it listens).
    pub fn set_http_addr(&self, addr: impl Into<String>) {
        *self
            .inner
            .http_addr
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = addr.into();
    }

    /// Announces the digest of this node's configuration files. The leader publishes its own
    /// as the cluster's; a node whose digest differs is not ready (`/readyz`) and says so in
    /// [`ClusterStatus::config_matches`].
    pub fn set_config_digest(&self, digest: impl Into<String>) {
        *self
            .inner
            .config_digest
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(digest.into());
    }

    /// The JetStream context (the state journal opens its stream with it).
    pub(crate) fn jetstream(&self) -> &jetstream::Context {
        &self.inner.js
    }

    /// Replicas of the stream and buckets.
    pub fn replicas(&self) -> usize {
        self.inner.replicas
    }

    /// Whether this node may act as the leader now (composites, alarms, scaling): it holds
    /// the leader lease and is within it (fencing, as [`Cluster::owns`]).
    pub fn leads(&self) -> bool {
        self.leader_revision().is_some()
    }

    /// The revision of the leader lease this node holds and may act on now, if any: the
    /// leader's fencing token, recorded with what it writes.
    pub fn leader_revision(&self) -> Option<u64> {
        let state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .leader
            .as_ref()
            .filter(|(l, _)| {
                l.owner == self.inner.options.node_id && now_ms() < l.act_until(self.inner.times)
            })
            .map(|(_, rev)| *rev)
    }

    /// The largest message NATS accepts.
    pub fn max_payload(&self) -> usize {
        self.inner.client.server_info().max_payload
    }

    /// Stores each `(partition, payload)` in the ingest stream, all at once, and waits until
    /// JetStream has acknowledged each: the answers are in the order of `parts`, each the
    /// stored record's stream sequence.
    ///
    /// While the connection is down nothing is published (the client would buffer it and send
    /// it after reconnecting, storing a push that was answered with an error): every part is
    /// refused with [`Error::Unreachable`] at once.
    pub async fn publish(&self, parts: Vec<(u32, Vec<u8>)>) -> Vec<Result<u64, Error>> {
        if self.inner.client.connection_state() != async_nats::connection::State::Connected {
            return parts.iter().map(|_| Err(Error::Unreachable)).collect();
        }
        let js = &self.inner.js;
        let sends = parts.into_iter().map(|(p, payload)| async move {
            let ack = js
                .publish(subject_of(p), Bytes::from(payload))
                .await
                .map_err(|e| Error::js("publishing to the ingest stream")(&e))?;
            let ack = ack
                .await
                .map_err(|e| Error::js("storing in the ingest stream")(&e))?;
            Ok(ack.sequence)
        });
        futures_util::future::join_all(sends).await
    }

    /// The node holding `partition`'s lease now (as last read), if any.
    pub fn owner_of(&self, partition: u32) -> Option<String> {
        let state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_ms();
        state
            .leases
            .get(&partition_key(partition))
            .filter(|(l, _)| !l.expired(now))
            .map(|(l, _)| l.owner.clone())
    }

    /// The other live nodes (as last read).
    pub fn peers(&self) -> Vec<String> {
        let state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_ms();
        state
            .members
            .iter()
            .filter(|m| m.heartbeat_ms + self.inner.times.ttl_ms > now)
            .filter(|m| m.node_id != self.inner.options.node_id)
            .map(|m| m.node_id.clone())
            .collect()
    }

    /// Asks node `node` (its [`Cluster::serve`] handler) and waits for the answer, at most
    /// [`RPC_TIMEOUT`].
    ///
    /// # Errors
    /// NATS is unreachable, the node does not answer in time, or nobody serves it.
    pub async fn request(&self, node: &str, body: Vec<u8>) -> Result<Vec<u8>, Error> {
        let ask = self
            .inner
            .client
            .request(rpc_subject(node), Bytes::from(body));
        match tokio::time::timeout(RPC_TIMEOUT, ask).await {
            Ok(Ok(answer)) => Ok(answer.payload.to_vec()),
            Ok(Err(e)) => Err(Error::js("asking another node")(&e)),
            Err(_) => Err(Error::JetStream {
                what: "asking another node",
                reason: format!("{node} did not answer within {RPC_TIMEOUT:?}"),
            }),
        }
    }

    /// Answers other nodes' requests with `handler` until `stop` (on blocking threads: the
    /// handler reads the store), [`MAX_RPC_IN_FLIGHT`] at a time.
    ///
    /// # Errors
    /// The subscription cannot be made.
    pub async fn serve(&self, handler: RpcHandler, stop: CancellationToken) -> Result<(), Error> {
        let mut requests = self
            .inner
            .client
            .subscribe(rpc_subject(&self.inner.options.node_id))
            .await
            .map_err(|e| Error::js("serving other nodes")(&e))?;
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_RPC_IN_FLIGHT));
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => return Ok(()),
                m = requests.next() => m,
            };
            let Some(message) = message else {
                return Ok(());
            };
            let Some(reply) = message.reply.clone() else {
                continue;
            };
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                return Ok(());
            };
            let (handler, client) = (Arc::clone(&handler), self.inner.client.clone());
            tokio::spawn(async move {
                let answer = tokio::task::spawn_blocking(move || handler(&message.payload))
                    .await
                    .unwrap_or_default();
                if let Err(e) = client.publish(reply, Bytes::from(answer)).await {
                    tracing::warn!(error = %e, "Could not answer another node.");
                }
                drop(slot);
            });
        }
    }

    /// The cluster as this node sees it.
    pub fn status(&self) -> ClusterStatus {
        let state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_ms();
        let live: Vec<&Member> = state
            .members
            .iter()
            .filter(|m| m.heartbeat_ms + self.inner.times.ttl_ms > now)
            .collect();
        let mut live = live;
        live.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        let nodes = live
            .iter()
            .map(|m| NodeStatus {
                node_id: m.node_id.clone(),
                http_addr: m.http_addr.clone(),
                heartbeat_ms: m.heartbeat_ms,
                partitions: state
                    .leases
                    .iter()
                    .filter(|(_, (l, _))| l.owner == m.node_id && !l.expired(now))
                    .filter_map(|(k, _)| k.strip_prefix("partition.")?.parse().ok())
                    .collect(),
            })
            .collect();
        let replay: Vec<ReplayStatus> = state
            .held
            .keys()
            .map(|p| {
                let (applied, target) = state.replay.get(p).copied().unwrap_or_default();
                ReplayStatus {
                    partition: *p,
                    applied_seq: applied,
                    target_seq: target,
                    loaded: applied >= target && state.replay.contains_key(p),
                    snapshot_seq: state.snapshots.get(p).copied(),
                }
            })
            .collect();
        let config_digest = self
            .inner
            .config_digest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let config_matches = state
            .cluster_digest
            .as_ref()
            .is_none_or(|c| config_digest.as_ref() == Some(c));
        ClusterStatus {
            config_digest,
            cluster_config_digest: state.cluster_digest.clone(),
            config_matches,
            node_id: self.inner.options.node_id.clone(),
            connected: state.connected
                && self.inner.client.connection_state() == async_nats::connection::State::Connected,
            partitions: self.inner.partitions,
            replicas: self.inner.replicas,
            leader: state
                .leader
                .as_ref()
                .filter(|(l, _)| !l.expired(now))
                .map(|(l, _)| l.owner.clone()),
            ready: state.connected
                && config_matches
                && state.settled
                && self.inner.client.connection_state() == async_nats::connection::State::Connected
                && replay.iter().all(|r| r.loaded),
            nodes,
            leases: state
                .leases
                .iter()
                .map(|(k, (l, rev))| LeaseStatus {
                    key: k.clone(),
                    owner: l.owner.clone(),
                    revision: *rev,
                    expires_ms: l.expires_ms,
                })
                .collect(),
            replay,
        }
    }

    /// Whether this node's connection to NATS is up.
    pub fn connected(&self) -> bool {
        self.inner.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Whether this node holds `partition` (its lease, and the partition's data): where reads
    /// of it are answered. Acting for it needs [`Cluster::owns`].
    pub fn holds(&self, partition: u32) -> bool {
        let state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        state.held.contains_key(&partition)
    }

    /// Whether this node may act for `partition` now: it holds the lease and is within it.
    pub fn owns(&self, partition: u32) -> bool {
        let state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .held
            .get(&partition)
            .is_some_and(|h| now_ms() < h.lease.act_until(self.inner.times))
    }

    /// Runs the membership and lease loop until `stop`, applying owned partitions through
    /// `applier`; on the way out it gives its leases up so that others take over at once.
    pub async fn run(self, applier: Arc<dyn Applier>, stop: CancellationToken) {
        let snapshots = tokio::spawn(
            self.clone()
                .snapshot_loop(Arc::clone(&applier), stop.clone()),
        );
        let period = Duration::from_millis((self.inner.times.ttl_ms / 6).max(100) as u64);
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let ok = self.round(&applier).await;
            self.inner
                .state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .connected = ok;
        }
        let _ = snapshots.await;
        // A clean stop leaves a fresh snapshot of every partition it held, so that their next
        // owners load it rather than read the stream since the last one.
        let last = tokio::time::timeout(FINAL_SNAPSHOTS, self.snapshot_round(&applier));
        if last.await.is_err() {
            tracing::warn!(
                "The final partition snapshots took too long; the next owners read more of the stream."
            );
        }
        self.release_all().await;
    }

    /// One round: heartbeat, read the members, take, renew and release leases. Returns
    /// whether NATS answered.
    async fn round(&self, applier: &Arc<dyn Applier>) -> bool {
        let me = self.inner.options.node_id.clone();
        let now = now_ms();
        let heartbeat = Member {
            node_id: me.clone(),
            http_addr: self
                .inner
                .http_addr
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            heartbeat_ms: now,
        };
        let body = serde_json::to_vec(&heartbeat).unwrap_or_default();
        if let Err(e) = self.inner.nodes.put(&me, body.into()).await {
            tracing::warn!(error = %e, "Cluster heartbeat failed; NATS may be unreachable.");
            self.fence(now);
            return false;
        }
        let members = match self.members().await {
            // A listing of the bucket can miss a key written while it runs (a heartbeat): the
            // members known before stay until their own heartbeat is too old.
            Ok(mut read) => {
                let known = self
                    .inner
                    .state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .members
                    .clone();
                for m in known {
                    match read.iter_mut().find(|r| r.node_id == m.node_id) {
                        Some(r) => r.heartbeat_ms = r.heartbeat_ms.max(m.heartbeat_ms),
                        None if m.heartbeat_ms + self.inner.times.ttl_ms > now => read.push(m),
                        None => {}
                    }
                }
                read
            }
            Err(e) => {
                tracing::warn!(error = %e, "Could not read the cluster's members.");
                self.fence(now);
                return false;
            }
        };
        let live: Vec<String> = members
            .iter()
            .filter(|m| m.heartbeat_ms + self.inner.times.ttl_ms > now)
            .map(|m| m.node_id.clone())
            .collect();
        let desired = assign(self.inner.partitions, &live);
        let wanted: Vec<u32> = owned_by(&desired, &me);
        // What is known of every lease: a key this round could not read keeps what the last
        // round saw (a failed read is not a free lease).
        let mut seen = self
            .inner
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .leases
            .clone();
        let mut ok = true;
        for p in 0..self.inner.partitions {
            let key = partition_key(p);
            let want = wanted.binary_search(&p).is_ok();
            match self.lease_step(&key, want, now).await {
                Ok((current, outcome)) => {
                    match current {
                        Some(c) => seen.insert(key, c),
                        None => seen.remove(&key),
                    };
                    self.settle(p, outcome, applier).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, partition = p, "Lease round failed.");
                    ok = false;
                }
            }
        }
        let leader = match self.lease_step(LEADER_KEY, true, now).await {
            Ok((current, _)) => current,
            Err(e) => {
                tracing::warn!(error = %e, "Leader lease round failed.");
                ok = false;
                seen.get(LEADER_KEY).cloned()
            }
        };
        match &leader {
            Some(l) => seen.insert(LEADER_KEY.to_owned(), l.clone()),
            None => seen.remove(LEADER_KEY),
        };
        let leading = leader.as_ref().is_some_and(|(l, _)| l.owner == me);
        let cluster_digest = match self.config_digest_round(leading).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "Could not read the cluster's configuration digest.");
                ok = false;
                None
            }
        };
        let mut state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        state.members = members;
        state.leases = seen;
        state.leader = leader;
        if cluster_digest.is_some() {
            state.cluster_digest = cluster_digest;
        }
        state.settled |= ok;
        drop(state);
        self.fence(now_ms());
        ok
    }

    /// The leader publishes its configuration digest as the cluster's; every node reads it.
    async fn config_digest_round(&self, leading: bool) -> Result<Option<String>, Error> {
        let mine = self
            .inner
            .config_digest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let stored = self
            .inner
            .meta
            .get(CONFIG_DIGEST_KEY)
            .await
            .map_err(|e| Error::js("reading the configuration digest")(&e))?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        match mine {
            Some(mine) if leading && stored.as_deref() != Some(mine.as_str()) => {
                self.inner
                    .meta
                    .put(CONFIG_DIGEST_KEY, Bytes::from(mine.clone()))
                    .await
                    .map_err(|e| Error::js("publishing the configuration digest")(&e))?;
                Ok(Some(mine))
            }
            _ => Ok(stored),
        }
    }

    /// Reads the live members.
    async fn members(&self) -> Result<Vec<Member>, Error> {
        let mut keys = self
            .inner
            .nodes
            .keys()
            .await
            .map_err(|e| Error::js("listing members")(&e))?;
        let mut out = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| Error::js("listing members")(&e))?;
            if let Some(v) = self
                .inner
                .nodes
                .get(&key)
                .await
                .map_err(|e| Error::js("reading a member")(&e))?
                && let Ok(m) = serde_json::from_slice::<Member>(&v)
            {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Reads a lease key and does what [`step`] says; returns the lease as it now stands and
    /// what happened to this node's hold on it.
    async fn lease_step(
        &self,
        key: &str,
        want: bool,
        now: i64,
    ) -> Result<(Option<(Lease, u64)>, Outcome), Error> {
        let kv = &self.inner.leases;
        let entry = kv
            .entry(key)
            .await
            .map_err(|e| Error::js("reading a lease")(&e))?;
        let current: Current = entry
            .filter(|e| e.operation == kv::Operation::Put)
            .map(|e| (serde_json::from_slice::<Lease>(&e.value).ok(), e.revision));
        let me = &self.inner.options.node_id;
        match step(&current, me, want, now, self.inner.times) {
            Step::Keep => {
                let held = current.clone().and_then(|(l, r)| Some((l?, r)));
                let outcome = match &held {
                    Some((l, r)) if &l.owner == me => Outcome::Held(l.clone(), *r),
                    _ => Outcome::NotHeld,
                };
                Ok((held, outcome))
            }
            Step::Take { expect } => {
                let lease = Lease::new(me, now, self.inner.times);
                let body: Bytes = serde_json::to_vec(&lease).unwrap_or_default().into();
                let written = match expect {
                    None => kv.create(key, body).await.map_err(|e| e.to_string()),
                    Some(rev) => kv.update(key, body, rev).await.map_err(|e| e.to_string()),
                };
                match written {
                    Ok(rev) => Ok((Some((lease.clone(), rev)), Outcome::Held(lease, rev))),
                    // Another node won the race: it holds the lease now.
                    Err(e) => {
                        tracing::debug!(key, error = %e, "Lost a lease race.");
                        Ok((None, Outcome::NotHeld))
                    }
                }
            }
            Step::Release { expect } => {
                kv.delete_expect_revision(key, Some(expect))
                    .await
                    .map_err(|e| Error::js("releasing a lease")(&e))?;
                Ok((None, Outcome::NotHeld))
            }
        }
    }

    /// Starts or stops partition `p`'s consumer after a lease step.
    async fn settle(&self, p: u32, outcome: Outcome, applier: &Arc<dyn Applier>) {
        match outcome {
            Outcome::Held(lease, revision) => {
                let start = {
                    let mut state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
                    match state.held.get_mut(&p) {
                        Some(h) => {
                            h.lease = lease;
                            h.revision = revision;
                            false
                        }
                        None => {
                            state.held.insert(
                                p,
                                Held {
                                    lease,
                                    revision,
                                    consumer: None,
                                },
                            );
                            true
                        }
                    }
                };
                if start {
                    tracing::info!(partition = p, revision, "Took over a partition.");
                    let token = CancellationToken::new();
                    let target = self.last_seq(p).await;
                    {
                        let mut state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
                        let applied = applier.applied_seq(p);
                        state.replay.insert(p, (applied, target));
                        if let Some(h) = state.held.get_mut(&p) {
                            h.consumer = Some(token.clone());
                        }
                    }
                    tokio::spawn(self.clone().consume(p, Arc::clone(applier), token));
                }
            }
            Outcome::NotHeld => self.drop_partition(p),
        }
    }

    /// Stops acting for `p`.
    fn drop_partition(&self, p: u32) {
        let mut state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = state.held.remove(&p) {
            tracing::info!(partition = p, "Gave up a partition.");
            if let Some(t) = h.consumer {
                t.cancel();
            }
        }
        state.replay.remove(&p);
    }

    /// Drops every partition whose lease could not be renewed in time (fencing).
    fn fence(&self, now: i64) {
        let stale: Vec<u32> = {
            let state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
            state
                .held
                .iter()
                .filter(|(_, h)| now >= h.lease.act_until(self.inner.times))
                .map(|(p, _)| *p)
                .collect()
        };
        for p in stale {
            tracing::warn!(
                partition = p,
                "Could not renew a partition lease in time; stopped acting for it."
            );
            self.drop_partition(p);
        }
    }

    /// The partition's last stream sequence (0 when it has none).
    async fn last_seq(&self, p: u32) -> u64 {
        self.inner
            .stream
            .get_last_raw_message_by_subject(&subject_of(p))
            .await
            .map(|m| m.sequence)
            .unwrap_or(0)
    }

    /// Applies partition `p` from the stream until `stop`: from the store's watermark on,
    /// in order, resuming after any interruption.
    async fn consume(self, p: u32, applier: Arc<dyn Applier>, stop: CancellationToken) {
        // One consumer per partition at a time: a consumer given up (fencing, a lease moving
        // and coming back) may still be applying a record, and one started meanwhile from the
        // watermark it read would then see its earlier records skipped as already applied.
        let Some(slot) = self.inner.consumers.get(p as usize) else {
            return;
        };
        let _only = slot.lock().await;
        if !self.load_snapshot(p, &applier, &stop).await {
            return;
        }
        while !stop.is_cancelled() {
            let from = applier.applied_seq(p) + 1;
            let consumer = self
                .inner
                .stream
                .create_consumer(consumer::pull::OrderedConfig {
                    filter_subject: subject_of(p),
                    deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                        start_sequence: from,
                    },
                    ..Default::default()
                })
                .await;
            let messages = match consumer {
                Ok(c) => c.messages().await,
                Err(e) => {
                    tracing::warn!(partition = p, error = %e, "Could not open a partition's consumer; retrying.");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            let mut messages = match messages {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(partition = p, error = %e, "Could not read a partition; retrying.");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            loop {
                let next = tokio::select! {
                    () = stop.cancelled() => return,
                    next = tokio::time::timeout(STALL_CHECK, messages.next()) => next,
                };
                let next = match next {
                    Ok(next) => next,
                    // Quiet for a while: fine if the partition has nothing newer, else the
                    // consumer is stuck (the server holding it died; the client notices only
                    // after missed heartbeats, tens of seconds): start a new one.
                    Err(_) => {
                        let last = self.last_seq(p).await;
                        if last > applier.applied_seq(p) {
                            tracing::warn!(
                                partition = p,
                                last,
                                applied = applier.applied_seq(p),
                                "A partition's consumer stalled; starting a new one."
                            );
                            break;
                        }
                        continue;
                    }
                };
                let Some(Ok(message)) = next else { break };
                let Ok(info) = message.info() else { continue };
                let seq = info.stream_sequence;
                if let Err(e) = applier.apply(p, seq, &message.payload) {
                    tracing::error!(partition = p, seq, error = %e, "Skipped a record of the ingest stream that does not decode.");
                }
                let mut state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(r) = state.replay.get_mut(&p) {
                    r.0 = r.0.max(seq);
                }
            }
        }
    }

    /// Writes a snapshot of every partition this node owns whose data changed since its last
    /// one, every [`ClusterOptions::snapshot_interval`], until `stop`.
    async fn snapshot_loop(self, applier: Arc<dyn Applier>, stop: CancellationToken) {
        let every = self
            .inner
            .options
            .snapshot_interval
            .max(Duration::from_millis(100));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.snapshot_round(&applier).await;
        }
    }

    /// Snapshots each owned partition that has records newer than its snapshot (see
    /// [`crate::snapshot`]).
    async fn snapshot_round(&self, applier: &Arc<dyn Applier>) {
        for p in 0..self.inner.partitions {
            let known = {
                let state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
                // Only a partition whose consumer has caught up: one still loading would
                // publish less than the stream's owner has.
                let loaded = state.replay.get(&p).is_some_and(|(a, t)| a >= t);
                if !loaded {
                    continue;
                }
                state.snapshots.get(&p).copied().unwrap_or(0)
            };
            if !self.owns(p) || applier.applied_seq(p) <= known {
                continue;
            }
            let copy = Arc::clone(applier);
            let Ok((seq, bytes)) = tokio::task::spawn_blocking(move || copy.snapshot(p)).await
            else {
                continue;
            };
            if seq <= known || !self.owns(p) {
                continue;
            }
            let size = bytes.len();
            match self
                .inner
                .snapshots
                .publish(p, seq, bytes, &self.inner.options.node_id)
                .await
            {
                Ok(Published::Current) => {
                    tracing::info!(
                        partition = p,
                        seq,
                        bytes = size,
                        "Wrote a partition snapshot; the ingest stream keeps the partition from it on."
                    );
                    self.note_snapshot(p, seq);
                }
                Ok(Published::Superseded) => {
                    tracing::info!(
                        partition = p,
                        seq,
                        "A newer snapshot of the partition exists; this one was dropped."
                    );
                }
                Err(e) => {
                    tracing::warn!(partition = p, error = %e, "Could not write a partition snapshot; the stream keeps everything until the next one.");
                }
            }
        }
    }

    fn note_snapshot(&self, p: u32, seq: u64) {
        let mut state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        let known = state.snapshots.entry(p).or_insert(seq);
        *known = (*known).max(seq);
    }

    /// Before reading partition `p`'s stream: loads its snapshot from the object store if it
    /// is newer than what this node holds (the stream may no longer have the records between).
    /// Returns false when `stop` came first.
    async fn load_snapshot(
        &self,
        p: u32,
        applier: &Arc<dyn Applier>,
        stop: &CancellationToken,
    ) -> bool {
        let mut wait = Duration::from_millis(250);
        loop {
            let attempt = async {
                let Some((pointer, _)) = self.inner.snapshots.latest(p).await? else {
                    return Ok(None);
                };
                self.note_snapshot(p, pointer.seq);
                if pointer.seq <= applier.applied_seq(p) {
                    return Ok(None);
                }
                let bytes = self.inner.snapshots.fetch(&pointer).await?;
                Ok::<_, Error>(Some((pointer, bytes)))
            };
            let outcome = tokio::select! {
                () = stop.cancelled() => return false,
                outcome = attempt => outcome,
            };
            let (pointer, bytes) = match outcome {
                Ok(None) => return true,
                Ok(Some(found)) => found,
                Err(e) => {
                    // Reading on from the local data would skip what the stream lost to
                    // trimming: retry until the snapshot can be read.
                    tracing::warn!(partition = p, error = %e, "Could not read a partition's snapshot; retrying.");
                    tokio::select! {
                        () = stop.cancelled() => return false,
                        () = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            let copy = Arc::clone(applier);
            let loaded = tokio::task::spawn_blocking(move || copy.load(p, &bytes)).await;
            match loaded {
                Ok(Ok(seq)) => {
                    tracing::info!(
                        partition = p,
                        seq,
                        object = pointer.object,
                        "Loaded a partition snapshot."
                    );
                    let mut state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(r) = state.replay.get_mut(&p) {
                        r.0 = r.0.max(seq);
                    }
                    return true;
                }
                Ok(Err(why)) => {
                    // Not ours to fix (anyone who can write the bucket wrote it): said loudly,
                    // and the stream is read from what this node holds.
                    tracing::error!(
                        partition = p,
                        object = pointer.object,
                        error = why,
                        "A partition snapshot does not load; reading the stream from this node's own data (what the stream no longer holds is missing)."
                    );
                    return true;
                }
                Err(e) => {
                    tracing::error!(partition = p, error = %e, "Loading a partition snapshot panicked.");
                    return true;
                }
            }
        }
    }

    /// Gives every held lease up (a clean stop), so that other nodes take over at once.
    async fn release_all(&self) {
        let held: Vec<(u32, u64)> = {
            let state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
            state.held.iter().map(|(p, h)| (*p, h.revision)).collect()
        };
        for (p, rev) in held {
            let _ = self
                .inner
                .leases
                .delete_expect_revision(partition_key(p), Some(rev))
                .await;
            self.drop_partition(p);
        }
        let leader = self
            .inner
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .leader
            .clone();
        if let Some((l, rev)) = leader
            && l.owner == self.inner.options.node_id
        {
            let _ = self
                .inner
                .leases
                .delete_expect_revision(LEADER_KEY, Some(rev))
                .await;
        }
        let _ = self.inner.nodes.delete(&self.inner.options.node_id).await;
    }
}

/// How long a clean stop may spend writing its partitions' snapshots.
const FINAL_SNAPSHOTS: Duration = Duration::from_secs(10);

/// How long a node waits at start for JetStream to take its stream and buckets.
const SETUP_PATIENCE: Duration = Duration::from_secs(60);

/// What [`setup`] makes: the JetStream context, the partition count, the ingest stream, the
/// membership and lease buckets, and the cluster's settings bucket.
type Setup = (
    jetstream::Context,
    u32,
    stream::Stream,
    kv::Store,
    kv::Store,
    kv::Store,
    Snapshots,
);

/// The stream and buckets, created by the first node (or checked), and the partition count.
async fn setup(
    client: &async_nats::Client,
    options: &ClusterOptions,
    replicas: usize,
) -> Result<Setup, Error> {
    let js = jetstream::new(client.clone());
    let meta = js
        .create_key_value(kv::Config {
            bucket: META_BUCKET.into(),
            history: 1,
            num_replicas: replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| Error::js("creating the settings bucket")(&e))?;
    let partitions = match meta
        .create("partitions", Bytes::from(options.partitions.to_string()))
        .await
    {
        Ok(_) => options.partitions,
        Err(_) => {
            let stored = meta
                .get("partitions")
                .await
                .map_err(|e| Error::js("reading the partition count")(&e))?
                .ok_or_else(|| Error::Settings("the partition count is missing".into()))?;
            std::str::from_utf8(&stored)
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
                .filter(|p| *p > 0)
                .ok_or_else(|| {
                    Error::Settings("the stored partition count is not a number".into())
                })?
        }
    };
    let stream = js
        .get_or_create_stream(stream::Config {
            name: INGEST_STREAM.into(),
            subjects: vec![format!("{INGEST_PREFIX}.*")],
            num_replicas: replicas,
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .map_err(|e| Error::js("creating the ingest stream")(&e))?;
    let bucket = |name: &str, ttl: Option<Duration>| kv::Config {
        bucket: name.into(),
        history: 1,
        num_replicas: replicas,
        max_age: ttl.unwrap_or_default(),
        ..Default::default()
    };
    let nodes = js
        .create_key_value(bucket(NODES_BUCKET, Some(options.lease_ttl * 4)))
        .await
        .map_err(|e| Error::js("creating the membership bucket")(&e))?;
    let leases = js
        .create_key_value(bucket(LEASES_BUCKET, None))
        .await
        .map_err(|e| Error::js("creating the lease bucket")(&e))?;
    let snapshots =
        Snapshots::open(&js, meta.clone(), stream.clone(), replicas, subject_of).await?;
    Ok((js, partitions, stream, nodes, leases, meta, snapshots))
}

/// This node's hold on a lease after a step.
enum Outcome {
    Held(Lease, u64),
    NotHeld,
}
