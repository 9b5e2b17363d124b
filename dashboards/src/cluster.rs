//! `GET /api/v1/cluster`: the cluster as this node sees it (cluster mode, docs/cluster.md).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::ApiState;

/// The cluster's view, from the binary's cluster adapter (a port: this crate knows nothing of
/// NATS).
pub trait ClusterApi: Send + Sync + std::fmt::Debug {
    /// The nodes, partitions and their owners, leases, the leader and this node's replay
    /// progress, as JSON.
    fn status(&self) -> serde_json::Value;
    /// Whether this node has loaded every partition it owns (part of `/readyz`).
    fn ready(&self) -> bool;
    /// Whether reads are answered from this node's memory alone because NATS is unreachable
    /// (answers then say `"stale": true`).
    fn stale(&self) -> bool;
}

/// Marks an answer `"stale": true` when the cluster's reads are from memory alone.
pub(crate) fn mark_stale(state: &ApiState, body: &mut serde_json::Value) {
    if state.cluster.as_ref().is_some_and(|c| c.stale())
        && let Some(map) = body.as_object_mut()
    {
        map.insert("stale".into(), true.into());
    }
}

/// `GET /api/v1/cluster`: `{"mode":"cluster", …}` in cluster mode, `{"mode":"single"}`
/// otherwise.
pub(crate) async fn status(State(state): State<ApiState>) -> Response {
    match &state.cluster {
        Some(cluster) => {
            let mut status = cluster.status();
            if let Some(map) = status.as_object_mut() {
                map.insert("mode".into(), "cluster".into());
            }
            Json(status).into_response()
        }
        None => Json(serde_json::json!({ "mode": "single" })).into_response(),
    }
}
