//! Shards held by other nodes (cluster mode): the port through which a store reads them.
//!
//! In cluster mode a store's shards are the cluster's partitions and each node holds (owns)
//! some of them. Reads of one series whose shard another node holds fetch the series'
//! windows from that node and answer from them here, with the same code as a local series
//! (so statistics, percentiles included, are computed once, the same way); listings combine
//! this node's shards with every other node's answer for theirs. The adapter that implements
//! this trait does the network calls; the store stays free of IO.

use serde::{Deserialize, Serialize};

use super::SeriesExport;
use crate::series::{Dimension, SeriesKey};
use crate::time::Timestamp;

/// Which keys a listing asks every node for (each answers for the shards it holds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeysRequest {
    /// [`super::Store::list`].
    List {
        /// Only this namespace.
        namespace: Option<String>,
        /// Only this metric name.
        metric_name: Option<String>,
        /// The listing's `now`.
        now: Timestamp,
    },
    /// [`super::Store::matching`].
    Matching {
        /// The namespace.
        namespace: String,
        /// The metric name.
        metric_name: String,
        /// The dimensions (`"*"` values match any).
        dimensions: Vec<Dimension>,
    },
    /// [`super::Store::list_page`]: one page of each node.
    Page {
        /// Only this namespace.
        namespace: Option<String>,
        /// Only this metric name.
        metric_name: Option<String>,
        /// Only series active since.
        active_since: Option<Timestamp>,
        /// The listing's `now`.
        now: Timestamp,
        /// The cursor's token ([`super::ListCursor::to_token`]).
        after: Option<String>,
        /// Keys at most.
        max_records: usize,
        /// Key bytes at most past the first.
        max_bytes: usize,
    },
}

/// The other nodes, as the store reads them.
pub trait RemoteShards: Send + Sync + std::fmt::Debug {
    /// Whether this node holds `shard` (then it is read here).
    fn is_local(&self, shard: usize) -> bool;
    /// The windows of `key` (in `shard`) that overlap `from..=to`, from the node holding the
    /// shard; `Ok(None)` when it has no such series.
    ///
    /// # Errors
    /// No node holds the shard or the holder did not answer.
    fn windows(
        &self,
        shard: usize,
        key: &SeriesKey,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Option<SeriesExport>, String>;
    /// Every other node's keys for `request`, from the shards each holds. A node that does not
    /// answer is left out (the listing is then incomplete; the adapter reports it).
    fn keys(&self, request: &KeysRequest) -> Vec<SeriesKey>;
}
