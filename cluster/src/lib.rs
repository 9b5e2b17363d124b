//! Cluster mode on NATS JetStream (an adapter): several Thermostat nodes form one system.
//!
//! - **Ingest stream** `THERMOSTAT_INGEST`: every acknowledged push is stored here first, one
//!   subject per partition (`thermostat.ingest.<partition>`); it takes the place of the local
//!   write-ahead log as the source of truth ([`Cluster::publish`]).
//! - **Partitions**: series are hashed into `P` partitions with the store's stable series
//!   hash ([`assign::partition_of`]); `P` is fixed when the cluster is created and kept in the
//!   `thermostat_cluster` bucket.
//! - **Leases** in the `thermostat_leases` bucket: one owner per partition at a time, by
//!   compare-and-swap on the entry's revision ([`lease`]); the owner applies its partitions'
//!   records to its store, resuming from the store's watermark ([`Applier`]). Partitions are
//!   spread evenly over the live nodes of the `thermostat_nodes` bucket ([`assign`]).
//!
//! - **Partition snapshots** in the object store `THERMOSTAT_SNAPSHOTS`: an owner writes each
//!   partition's now and then and trims the stream below it; a new owner loads it and reads
//!   the stream on from its sequence ([`snapshot`]).
//!
//! - **State journal** `THERMOSTAT_STATE`: every write of the alarm and scaling state, in
//!   order, each made on the sequence its writer had applied ([`Journal`]).
//!
//! The pure parts ([`assign`], [`lease`]) are functions of their inputs and `now`; the
//! [`Cluster`] handle does the IO. See `docs/cluster.md`.

pub mod assign;
mod error;
mod journal;
pub mod lease;
mod node;
mod snapshot;

pub use error::Error;
pub use journal::{AppendError, Journal, STATE_STREAM};
pub use node::{
    Applier, Cluster, ClusterOptions, ClusterStatus, DEFAULT_PARTITIONS, DEFAULT_SNAPSHOT_INTERVAL,
    INGEST_STREAM, LeaseStatus, Member, NodeStatus, RPC_TIMEOUT, ReplayStatus, RpcHandler, Secret,
    subject_of,
};
pub use snapshot::{MAX_SNAPSHOT_BYTES, SNAPSHOT_BUCKET};
