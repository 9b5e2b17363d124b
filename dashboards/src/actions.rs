//! Scaling-group and notification endpoints, over ports: [`GroupApi`] (implemented here for
//! the scaling runtime), [`NotificationApi`] and [`AdminApi`] (implemented by the binary).

use std::sync::Arc;

use axum::extract::{Path, Query as Params, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use thermostat_scaler_runtime::ScalingRuntime;

use crate::ApiState;
use crate::access::{Caller, audited};
use crate::error::ApiError;

/// What the scaling side offers the HTTP API: read-only JSON views.
pub trait GroupApi: Send + Sync + std::fmt::Debug {
    /// Every scaling group: name, backend, min/desired/in-service/max, last activities.
    fn list(&self) -> Vec<Value>;
    /// The newest `limit` scaling activities of a group, newest first; `None` if no such group.
    fn activities(&self, group: &str, limit: usize) -> Option<Vec<Value>>;
}

/// Activities shown with each group in [`GroupApi::list`].
const LAST_ACTIVITIES: usize = 5;

impl GroupApi for ScalingRuntime {
    fn list(&self) -> Vec<Value> {
        let snapshot = self.snapshot();
        let now = snapshot.at;
        snapshot
            .groups
            .iter()
            .map(|g| {
                let s = &g.state;
                let recent = self
                    .recent_activities(&g.name, LAST_ACTIVITIES)
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                json!({
                    "name": g.name,
                    "backend": g.backend.as_str(),
                    "min_size": s.min_size,
                    "max_size": s.max_size,
                    "desired_capacity": s.desired,
                    "in_service_capacity": s.in_service(now),
                    "warming_capacity": s.warming(now),
                    "cooldown_until": s.cooldown_until.map(|t| t.to_rfc3339()),
                    "last_activities": recent,
                })
            })
            .collect()
    }

    fn activities(&self, group: &str, limit: usize) -> Option<Vec<Value>> {
        // A store that cannot be read shows as a group without activities to list (404).
        self.recent_activities(group, limit).ok().flatten()
    }
}

/// Why a backup was not made.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Another backup is being written (one runs at a time).
    #[error("a backup is already being written to {running}; retry when it is done")]
    Busy {
        /// The file the running backup writes.
        running: String,
    },
    /// The backup could not be written (the detail is logged, not shown).
    #[error("the backup could not be written")]
    Failed(String),
}

/// Administrative operations of the running server.
pub trait AdminApi: Send + Sync + std::fmt::Debug {
    /// Writes a consistent backup into the data directory; returns its manifest with `path`.
    ///
    /// # Errors
    /// `Busy` while another backup runs, `Failed` when it could not be written.
    fn backup(&self) -> Result<Value, BackupError>;
}

/// `POST /api/v1/admin/backup`: `409` while another backup runs.
pub(crate) async fn backup(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    let result = match state.admin.clone() {
        None => Err(ApiError::NotFound(
            "backups are not enabled on this server".into(),
        )),
        Some(api) => tokio::task::spawn_blocking(move || api.backup())
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))
            .and_then(|r| {
                r.map_err(|e| match e {
                    BackupError::Busy { .. } => ApiError::Conflict {
                        field: "backup".into(),
                        message: e.to_string(),
                    },
                    BackupError::Failed(detail) => ApiError::Internal(detail),
                })
            }),
    };
    let parameters = match &result {
        Ok(manifest) => json!({ "path": manifest.get("path") }),
        Err(_) => Value::Null,
    };
    let manifest = audited(&state, &caller, "backup", None, parameters, result).await?;
    Ok(Json(manifest))
}

/// What the notification side offers the HTTP API.
pub trait NotificationApi: Send + Sync + std::fmt::Debug {
    /// The newest `limit` notifications with their delivery status and attempts, newest first.
    fn recent(&self, limit: usize) -> Vec<Value>;
}

#[derive(Deserialize)]
pub(crate) struct Limit {
    limit: Option<usize>,
}

/// `limit` of the activity and notification lists at most.
pub const MAX_LIST_LIMIT: usize = 1_000;

fn limit(p: &Limit) -> usize {
    p.limit.unwrap_or(100).clamp(1, MAX_LIST_LIMIT)
}

pub(crate) fn groups(state: &ApiState) -> Result<&Arc<dyn GroupApi>, ApiError> {
    state
        .groups
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("scaling is not enabled on this server".into()))
}

/// `GET /api/v1/groups`.
pub(crate) async fn list_groups(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "groups": groups(&state)?.list() })))
}

/// `GET /api/v1/groups/{name}`.
pub(crate) async fn one_group(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    groups(&state)?
        .list()
        .into_iter()
        .find(|g| g["name"] == name.as_str())
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no scaling group named {name:?}")))
}

/// `GET /api/v1/groups/{name}/activities?limit=`.
pub(crate) async fn activities(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Params(p): Params<Limit>,
) -> Result<Json<Value>, ApiError> {
    let items = groups(&state)?
        .activities(&name, limit(&p))
        .ok_or_else(|| ApiError::NotFound(format!("no scaling group named {name:?}")))?;
    Ok(Json(json!({ "activities": items })))
}

/// `GET /api/v1/notifications?limit=`.
pub(crate) async fn notifications(
    State(state): State<ApiState>,
    Params(p): Params<Limit>,
) -> Result<Json<Value>, ApiError> {
    let api = state
        .notifications
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("notifications are not enabled on this server".into()))?;
    Ok(Json(json!({ "notifications": api.recent(limit(&p)) })))
}
