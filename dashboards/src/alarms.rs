//! Alarm endpoints, over the [`AlarmApi`] port that the engine implements.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query as Params, State};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ApiState;
use crate::error::ApiError;

/// One alarm (or per-series alarm instance) as the API shows it.
#[derive(Clone, Debug)]
pub struct AlarmView {
    /// Name (`<alarm>[Dim=value]` for per-series instances).
    pub name: String,
    /// `metric` or `composite`.
    pub kind: &'static str,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    /// Why it is in that state.
    pub reason: String,
    /// Reason data (JSON), if any.
    pub reason_data: Option<Value>,
    /// When the state was last updated, RFC 3339.
    pub state_updated: String,
    /// The definition as configured.
    pub configuration: Value,
}

/// The result of a reload.
#[derive(Clone, Debug)]
pub struct ReloadReport {
    /// Metric alarms now configured.
    pub alarms: usize,
    /// Composite alarms now configured.
    pub composite_alarms: usize,
    /// Alarms whose definition changed or that are new (their state restarts).
    pub changed: Vec<String>,
    /// Alarms that were removed.
    pub removed: Vec<String>,
}

/// Why an alarm request failed.
#[derive(Debug)]
pub enum AlarmApiError {
    /// No alarm of that name.
    NotFound(String),
    /// A request field broke a rule.
    Invalid {
        /// The field.
        field: String,
        /// The rule.
        message: String,
    },
    /// The configuration on disk is invalid; the running configuration stays.
    Config(Vec<String>),
    /// Something failed inside.
    Internal(String),
}

/// What the engine offers the HTTP API.
pub trait AlarmApi: Send + Sync + std::fmt::Debug {
    /// Every alarm with its state, sorted by name.
    fn list(&self) -> Vec<AlarmView>;
    /// The newest `limit` history items of an alarm, newest first.
    ///
    /// # Errors
    /// `NotFound` or `Internal`.
    fn history(&self, name: &str, limit: usize) -> Result<Vec<Value>, AlarmApiError>;
    /// CloudWatch's `SetAlarmState`: sets the state until the next evaluation and runs the
    /// new state's actions if it changed.
    ///
    /// # Errors
    /// `NotFound`, `Invalid` or `Internal`.
    fn set_state(
        &self,
        name: &str,
        state: &str,
        reason: &str,
        reason_data: Option<Value>,
    ) -> Result<(), AlarmApiError>;
    /// Reloads the configuration from disk: all of it or nothing.
    ///
    /// # Errors
    /// `Config` with every error when the new configuration is invalid.
    fn reload(&self) -> Result<ReloadReport, AlarmApiError>;
}

impl From<AlarmApiError> for ApiError {
    fn from(e: AlarmApiError) -> Self {
        match e {
            AlarmApiError::NotFound(name) => ApiError::NotFound(format!("no alarm named {name:?}")),
            AlarmApiError::Invalid { field, message } => ApiError::bad_request(field, message),
            AlarmApiError::Config(errors) => ApiError::InvalidConfig(errors),
            AlarmApiError::Internal(detail) => ApiError::Internal(detail),
        }
    }
}

pub(crate) fn engine(state: &ApiState) -> Result<&Arc<dyn AlarmApi>, ApiError> {
    state
        .alarms
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("alarms are not enabled on this server".into()))
}

pub(crate) fn view_json(v: &AlarmView) -> Value {
    json!({
        "name": v.name,
        "type": v.kind,
        "state": v.state,
        "reason": v.reason,
        "reason_data": v.reason_data,
        "state_updated": v.state_updated,
        "configuration": v.configuration,
    })
}

/// `GET /api/v1/alarms`.
pub(crate) async fn list(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let alarms: Vec<Value> = engine(&state)?.list().iter().map(view_json).collect();
    Ok(Json(json!({ "alarms": alarms })))
}

/// `GET /api/v1/alarms/{name}`.
pub(crate) async fn one(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let list = engine(&state)?.list();
    let v = list
        .iter()
        .find(|v| v.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no alarm named {name:?}")))?;
    Ok(Json(view_json(v)))
}

#[derive(Deserialize)]
pub(crate) struct HistoryParams {
    limit: Option<usize>,
}

/// `GET /api/v1/alarms/{name}/history?limit=`.
pub(crate) async fn history(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Params(p): Params<HistoryParams>,
) -> Result<Json<Value>, ApiError> {
    let api = Arc::clone(engine(&state)?);
    let limit = p.limit.unwrap_or(100).min(10_000);
    let items = tokio::task::spawn_blocking(move || api.history(&name, limit))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(Json(json!({ "history": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetState {
    state_value: String,
    state_reason: String,
    state_reason_data: Option<Value>,
}

/// `PUT /api/v1/alarms/{name}/state` with `{"state_value", "state_reason", "state_reason_data"}`.
pub(crate) async fn set_state(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Result<Json<SetState>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::bad_request("body", e.body_text()))?;
    let api = Arc::clone(engine(&state)?);
    tokio::task::spawn_blocking(move || {
        api.set_state(
            &name,
            &body.state_value,
            &body.state_reason,
            body.state_reason_data,
        )
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(Json(json!({ "ok": true })))
}

/// `POST /api/v1/reload`.
pub(crate) async fn reload(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let api = Arc::clone(engine(&state)?);
    let report = tokio::task::spawn_blocking(move || api.reload())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(Json(json!({
        "alarms": report.alarms,
        "composite_alarms": report.composite_alarms,
        "changed": report.changed,
        "removed": report.removed,
    })))
}
