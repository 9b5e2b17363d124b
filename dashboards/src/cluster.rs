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
