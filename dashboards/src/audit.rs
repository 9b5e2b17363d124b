//! Administration: `GET /api/v1/audit` (the audit trail, filtered and paginated) and
//! `GET /api/v1/tokens` (who has access: names, roles, namespaces, never a secret).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query as Params, State};
use serde_json::{Value, json};
use thermostat_auth::{AuditError, AuditQuery, audit::MAX_PAGE};

use crate::ApiState;
use crate::api::parse_time;
use crate::error::ApiError;

/// Events a page holds unless `limit` says otherwise.
pub(crate) const DEFAULT_PAGE: usize = 100;

/// `GET /api/v1/audit?since=&until=&principal=&action=&limit=&next_token=`: events oldest
/// first; `next_token` is in the answer while more remain.
pub(crate) async fn audit(
    State(state): State<ApiState>,
    Params(params): Params<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let trail = state.audit.clone().ok_or_else(|| {
        ApiError::NotFound("the audit trail is not enabled on this server".into())
    })?;
    let pick = |k: &str| params.get(k).filter(|s| !s.is_empty()).cloned();
    let time = |k: &'static str| -> Result<Option<jiff::Timestamp>, ApiError> {
        pick(k)
            .map(|s| {
                let t = parse_time(k, &s)?;
                jiff::Timestamp::from_millisecond(t.as_millis())
                    .map_err(|e| ApiError::bad_request(k, e.to_string()))
            })
            .transpose()
    };
    let limit = match pick("limit") {
        None => DEFAULT_PAGE,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_PAGE}"),
                )
            })?,
    };
    let query = AuditQuery {
        since: time("since")?,
        until: time("until")?,
        principal: pick("principal"),
        action: pick("action"),
        limit,
        next_token: pick("next_token"),
    };
    let page = tokio::task::spawn_blocking(move || trail.query(&query))
        .await
        .map_err(|e| ApiError::Internal(format!("reading the audit trail failed: {e}")))?
        .map_err(|e| match e {
            AuditError::Invalid { field, message } => ApiError::bad_request(field, message),
            AuditError::Io(detail) => ApiError::Internal(detail),
        })?;
    Ok(Json(
        json!({ "events": page.events, "next_token": page.next_token }),
    ))
}

/// `GET /api/v1/tokens`: the token entries in force, `{"auth_enabled", "tokens": [{"name",
/// "role", "namespaces"}]}`. Digests and secrets are never shown; tokens are changed in the
/// settings file and a reload.
pub(crate) async fn tokens(State(state): State<ApiState>) -> Json<Value> {
    let tokens = state.access.tokens();
    let list: Vec<Value> = tokens
        .iter()
        .flat_map(|t| t.principals())
        .map(|p| {
            json!({
                "name": p.name,
                "role": p.role,
                "namespaces": p.namespaces.as_ref().map(thermostat_auth::Namespaces::patterns),
            })
        })
        .collect();
    Json(json!({ "auth_enabled": tokens.is_some(), "tokens": list }))
}
