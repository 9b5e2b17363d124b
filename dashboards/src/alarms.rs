//! Alarm endpoints, over the [`AlarmApi`] port, and its implementation on the running
//! [`AlarmRuntime`] ([`RuntimeAlarms`]: the alarms' HTTP views, built from the runtime's read
//! methods; reloading reaches the binary through the [`ReloadApi`] port, since it reads
//! files).

use std::ops::ControlFlow;
use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query as Params, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use thermostat_alarms::StateValue;
use thermostat_alarms::anomaly::Model;
use thermostat_alarms::history::AlarmType;
use thermostat_alarms_runtime::{AlarmListing, AlarmRuntime};
use thermostat_metrics::Timestamp;

use crate::ApiState;
use crate::access::{Caller, audited};
use crate::api::parse_time;
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
    /// The definition as configured, with `actions.enabled` the effective value (an
    /// `EnableAlarmActions` / `DisableAlarmActions` override wins over the file).
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
    /// The configuration files read, each with the SHA-256 of its text (for the audit trail).
    pub files: Vec<FileDigest>,
}

/// A configuration file and the SHA-256 digest of its text.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FileDigest {
    /// The file.
    pub path: String,
    /// Its SHA-256, hexadecimal.
    pub sha256: String,
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

/// `max_records` of a history page at most (CloudWatch's `MaxRecords`: 1 to 100).
pub const MAX_HISTORY_RECORDS: usize = 100;
/// `max_records` of a history page when the request gives none (CloudWatch's default).
pub const DEFAULT_HISTORY_RECORDS: usize = 100;
/// The history item types (`HistoryItemType`) a query may filter on.
pub const HISTORY_ITEM_TYPES: [&str; 3] = ["ConfigurationUpdate", "StateUpdate", "Action"];

/// What a history page asks for (CloudWatch's `DescribeAlarmHistory`).
#[derive(Clone, Debug, Default)]
pub struct HistoryQuery {
    /// Items on the page at most.
    pub max_records: usize,
    /// Where to continue: a previous page's `next_token`.
    pub next_token: Option<String>,
    /// Only items at or after this time; items are kept in the order they were recorded, so
    /// the scan stops at the first older one.
    pub start: Option<Timestamp>,
    /// Only items before this time.
    pub end: Option<Timestamp>,
    /// Only items of these types (every type when empty).
    pub item_types: Vec<String>,
    /// Leave out the `stateReasonData` of state updates (the dashboard does not show it).
    pub without_reason_data: bool,
}

/// A page of an alarm's history, newest first.
#[derive(Clone, Debug, Default)]
pub struct HistoryPage {
    /// The items.
    pub items: Vec<Value>,
    /// Present when more items may follow: pass it as the next query's `next_token`.
    pub next_token: Option<String>,
}

/// Whether `item` (a history item as the API shows it) passes the query's filters.
fn matches(q: &HistoryQuery, item: &Value) -> bool {
    let t = item_time(&item["timestamp"]);
    (q.item_types.is_empty()
        || q.item_types
            .iter()
            .any(|ty| item["item_type"] == ty.as_str()))
        && q.start.is_none_or(|s| t.is_some_and(|t| t >= s))
        && q.end.is_none_or(|e| t.is_some_and(|t| t < e))
}

/// Removes `stateReasonData` from both sides of a state update.
pub fn strip_reason_data(item: &mut Value) {
    for side in ["oldState", "newState"] {
        if let Some(s) = item["data"].get_mut(side).and_then(Value::as_object_mut) {
            s.remove("stateReasonData");
        }
    }
}

/// A history item's or activity's time: RFC 3339, or Unix milliseconds.
pub(crate) fn item_time(v: &Value) -> Option<Timestamp> {
    match v {
        Value::String(s) => s
            .parse::<jiff::Timestamp>()
            .ok()
            .map(|t| Timestamp::from_millis(t.as_millisecond())),
        Value::Number(n) => n.as_i64().map(Timestamp::from_millis),
        _ => None,
    }
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
    /// A page of an alarm's history, newest first, filtered as `query` says. The default
    /// filters the newest [`MAX_HISTORY_RECORDS`]` × 10` items of [`AlarmApi::history`] and
    /// has no next page; an engine that keeps more history pages through it.
    ///
    /// # Errors
    /// `NotFound`, `Invalid` (a `next_token` it did not issue) or `Internal`.
    fn history_page(&self, name: &str, query: &HistoryQuery) -> Result<HistoryPage, AlarmApiError> {
        let mut items: Vec<Value> = self
            .history(name, MAX_HISTORY_RECORDS * 10)?
            .into_iter()
            .filter(|i| matches(query, i))
            .take(query.max_records)
            .collect();
        if query.without_reason_data {
            items.iter_mut().for_each(strip_reason_data);
        }
        Ok(HistoryPage {
            items,
            next_token: None,
        })
    }
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
    /// CloudWatch's `EnableAlarmActions` (`enabled`) / `DisableAlarmActions`: whether the
    /// actions of the alarm `name` (a metric alarm, per-series alarm or composite alarm, by
    /// its configured name) run, from the next evaluation on; persisted, and kept across
    /// restarts and reloads while the alarm exists. The default refuses: an engine that
    /// cannot switch actions.
    ///
    /// # Errors
    /// `NotFound`, `Invalid` (a per-series instance's name; the default's answer) or
    /// `Internal`.
    fn set_actions_enabled(&self, name: &str, enabled: bool) -> Result<(), AlarmApiError> {
        let _ = (name, enabled);
        Err(AlarmApiError::Invalid {
            field: "name".into(),
            message: "this alarm engine cannot enable or disable alarm actions".into(),
        })
    }
    /// The anomaly-detection models of the alarm or per-series instance `name`, as `(id of
    /// the query banded, model)`: none for an alarm that is not an anomaly-detection alarm or
    /// whose models are not trained yet. The default has none.
    fn anomaly_models(&self, name: &str) -> Vec<(String, Model)> {
        let _ = name;
        Vec::new()
    }
}

/// Reloading the configuration from disk, all of it or nothing: the binary implements it
/// (it reads and validates the files, then swaps the runtime's set).
pub trait ReloadApi: Send + Sync + std::fmt::Debug {
    /// Reloads the configuration.
    ///
    /// # Errors
    /// `Config` with every error when the new configuration is invalid.
    fn reload(&self) -> Result<ReloadReport, AlarmApiError>;
}

/// History rows one page request reads at most (whatever its filters skip).
const HISTORY_MAX_SCAN_ROWS: usize = 5_000;
const HISTORY_TOKEN_PREFIX: &str = "h1.";

/// The [`AlarmApi`] of a running [`AlarmRuntime`], with reloads through `reload`.
#[derive(Debug)]
pub struct RuntimeAlarms {
    runtime: Arc<AlarmRuntime>,
    reload: Arc<dyn ReloadApi>,
}

impl RuntimeAlarms {
    /// The API over `runtime`; reloads go to `reload`.
    pub fn new(runtime: Arc<AlarmRuntime>, reload: Arc<dyn ReloadApi>) -> Self {
        RuntimeAlarms { runtime, reload }
    }
}

/// The views of a listing, in its order: a per-series alarm without instances shows as
/// `INSUFFICIENT_DATA` with no update time.
pub fn alarm_views(listing: &AlarmListing) -> Vec<AlarmView> {
    let set = &listing.set;
    listing
        .entries
        .iter()
        .map(|e| {
            let (kind, configuration) = match e.kind {
                AlarmType::MetricAlarm => ("metric", set.alarm(&e.alarm).map(serde_json::to_value)),
                AlarmType::CompositeAlarm => (
                    "composite",
                    set.composite(&e.alarm).map(serde_json::to_value),
                ),
            };
            let configuration = configuration.and_then(Result::ok).unwrap_or(Value::Null);
            match &e.state {
                Some(s) => AlarmView {
                    name: e.name.clone(),
                    kind,
                    state: s.value.to_string(),
                    reason: s.reason.clone(),
                    reason_data: s
                        .reason_data
                        .as_ref()
                        .and_then(|d| serde_json::to_value(d).ok()),
                    state_updated: s.updated.to_rfc3339(),
                    configuration,
                },
                None => AlarmView {
                    name: e.name.clone(),
                    kind,
                    state: StateValue::InsufficientData.to_string(),
                    reason: "No series matches this per-series alarm yet.".into(),
                    reason_data: None,
                    state_updated: String::new(),
                    configuration,
                },
            }
        })
        .collect()
}

/// The resume point in a history token.
fn parse_history_token(token: &str) -> Result<u64, AlarmApiError> {
    token
        .strip_prefix(HISTORY_TOKEN_PREFIX)
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| AlarmApiError::Invalid {
            field: "next_token".into(),
            message: "is not a token this server issued (pass a previous answer's next_token)"
                .into(),
        })
}

impl AlarmApi for RuntimeAlarms {
    fn list(&self) -> Vec<AlarmView> {
        alarm_views(&self.runtime.list())
    }

    fn history(&self, name: &str, limit: usize) -> Result<Vec<Value>, AlarmApiError> {
        let query = HistoryQuery {
            max_records: limit,
            ..HistoryQuery::default()
        };
        Ok(self.history_page(name, &query)?.items)
    }

    fn history_page(&self, name: &str, q: &HistoryQuery) -> Result<HistoryPage, AlarmApiError> {
        #[derive(serde::Deserialize)]
        struct Head {
            timestamp: i64,
            item_type: String,
        }
        if !self.runtime.knows(name) {
            return Err(AlarmApiError::NotFound(name.to_owned()));
        }
        let below = q
            .next_token
            .as_deref()
            .map(parse_history_token)
            .transpose()?;
        let max = q.max_records.max(1);
        let mut items: Vec<Value> = Vec::new();
        let mut reached_start = false;
        let mut corrupt: Option<serde_json::Error> = None;
        let mut visit = |bytes: &[u8]| -> Result<ControlFlow<()>, serde_json::Error> {
            let head: Head = serde_json::from_slice(bytes)?;
            if q.start.is_some_and(|s| head.timestamp < s.as_millis()) {
                reached_start = true;
                return Ok(ControlFlow::Break(()));
            }
            let wanted = q.end.is_none_or(|e| head.timestamp < e.as_millis())
                && (q.item_types.is_empty() || q.item_types.contains(&head.item_type));
            if !wanted {
                return Ok(ControlFlow::Continue(()));
            }
            if items.len() >= max {
                return Ok(ControlFlow::Break(()));
            }
            let mut item: Value = serde_json::from_slice(bytes)?;
            item["timestamp"] = Value::String(Timestamp(head.timestamp).to_rfc3339());
            if q.without_reason_data {
                strip_reason_data(&mut item);
            }
            items.push(item);
            Ok(ControlFlow::Continue(()))
        };
        let resume = self
            .runtime
            .scan_history(name, below, HISTORY_MAX_SCAN_ROWS, |_, bytes| {
                visit(bytes).unwrap_or_else(|e| {
                    corrupt = Some(e);
                    ControlFlow::Break(())
                })
            })
            .map_err(|e| AlarmApiError::Internal(thermostat_alarms_runtime::chain(&e)))?;
        if let Some(e) = corrupt {
            return Err(AlarmApiError::Internal(e.to_string()));
        }
        let next_token = resume
            .filter(|_| !reached_start)
            .map(|r| format!("{HISTORY_TOKEN_PREFIX}{r}"));
        Ok(HistoryPage { items, next_token })
    }

    fn set_state(
        &self,
        name: &str,
        value: &str,
        reason: &str,
        reason_data: Option<Value>,
    ) -> Result<(), AlarmApiError> {
        self.runtime
            .set_state(name, value, reason, reason_data)
            .map_err(runtime_error)
    }

    fn reload(&self) -> Result<ReloadReport, AlarmApiError> {
        self.reload.reload()
    }

    fn set_actions_enabled(&self, name: &str, enabled: bool) -> Result<(), AlarmApiError> {
        self.runtime
            .set_actions_enabled(name, enabled, self.runtime.now())
            .map(|_changed| ())
            .map_err(runtime_error)
    }

    fn anomaly_models(&self, name: &str) -> Vec<(String, Model)> {
        self.runtime
            .anomaly_models()
            .into_iter()
            .filter(|(instance, _, _)| instance == name)
            .map(|(_, id, model)| (id, model))
            .collect()
    }
}

/// A runtime error as the API reports it.
fn runtime_error(e: thermostat_alarms_runtime::Error) -> AlarmApiError {
    use thermostat_alarms_runtime::Error;
    match e {
        Error::NotFound(name) => AlarmApiError::NotFound(name),
        Error::Invalid { field, message } => AlarmApiError::Invalid {
            field: field.into(),
            message,
        },
        e @ Error::OwnedByFile { .. } => AlarmApiError::Invalid {
            field: "name".into(),
            message: e.to_string(),
        },
        e @ (Error::Store(_) | Error::Evaluation(_)) => {
            AlarmApiError::Internal(thermostat_alarms_runtime::chain(&e))
        }
    }
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
        "actions_enabled": actions_enabled(&v.configuration),
        "configuration": v.configuration,
    })
}

/// Whether an alarm's actions run: its configuration's `actions.enabled` (the effective
/// value, see [`AlarmView::configuration`]; true when the configuration does not say, as in
/// CloudWatch).
fn actions_enabled(configuration: &Value) -> bool {
    configuration
        .get("actions")
        .and_then(|a| a.get("enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

/// `max_records` of `GET /api/v1/alarms` at most (CloudWatch's `DescribeAlarms`: 1 to 100).
pub const MAX_LIST_RECORDS: usize = 100;
const LIST_TOKEN_PREFIX: &str = "a1.";

#[derive(Deserialize)]
pub(crate) struct ListParams {
    max_records: Option<String>,
    next_token: Option<String>,
}

/// A list token: the last name listed, in hex (so that it needs no escaping in a URL).
fn list_token(name: &str) -> String {
    let mut t = String::with_capacity(LIST_TOKEN_PREFIX.len() + name.len() * 2);
    t.push_str(LIST_TOKEN_PREFIX);
    for b in name.bytes() {
        t.push_str(&format!("{b:02x}"));
    }
    t
}

fn list_token_name(token: &str) -> Option<String> {
    let hex = token.strip_prefix(LIST_TOKEN_PREFIX)?.as_bytes();
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = hex
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// `GET /api/v1/alarms?max_records=&next_token=`: alarms by name, a page at a time.
pub(crate) async fn list(
    State(state): State<ApiState>,
    Params(p): Params<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let max = match p.max_records.as_deref() {
        None => MAX_LIST_RECORDS,
        Some(m) => match count("max_records", m)? {
            n @ 1..=MAX_LIST_RECORDS => n,
            n => {
                return Err(ApiError::bad_request(
                    "max_records",
                    format!("must be from 1 to {MAX_LIST_RECORDS} (got {n})"),
                ));
            }
        },
    };
    let after = match p.next_token.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(list_token_name(t).ok_or_else(|| {
            ApiError::bad_request(
                "next_token",
                "is not a token this server issued (pass a previous answer's next_token)",
            )
        })?),
    };
    let all = engine(&state)?.list();
    let mut rest = all
        .iter()
        .filter(|v| after.as_ref().is_none_or(|a| v.name.as_str() > a.as_str()));
    let page: Vec<&AlarmView> = rest.by_ref().take(max).collect();
    let next_token = match (page.last(), rest.next()) {
        (Some(last), Some(_)) => Some(list_token(&last.name)),
        _ => None,
    };
    let alarms: Vec<Value> = page.into_iter().map(view_json).collect();
    Ok(Json(json!({ "alarms": alarms, "next_token": next_token })))
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
    max_records: Option<String>,
    /// The older name of `max_records`; larger values are capped at the maximum.
    limit: Option<String>,
    next_token: Option<String>,
    start: Option<String>,
    end: Option<String>,
    item_type: Option<String>,
}

fn count(field: &str, s: &str) -> Result<usize, ApiError> {
    s.parse::<usize>()
        .map_err(|_| ApiError::bad_request(field, "must be a whole number from 1 to 100"))
}

impl HistoryParams {
    fn query(&self) -> Result<HistoryQuery, ApiError> {
        let max_records = match (&self.max_records, &self.limit) {
            (Some(m), _) => {
                let n = count("max_records", m)?;
                if !(1..=MAX_HISTORY_RECORDS).contains(&n) {
                    return Err(ApiError::bad_request(
                        "max_records",
                        format!("must be from 1 to {MAX_HISTORY_RECORDS} (got {n})"),
                    ));
                }
                n
            }
            (None, Some(l)) => count("limit", l)?.clamp(1, MAX_HISTORY_RECORDS),
            (None, None) => DEFAULT_HISTORY_RECORDS,
        };
        let item_types = match &self.item_type {
            None => Vec::new(),
            Some(t) if HISTORY_ITEM_TYPES.contains(&t.as_str()) => vec![t.clone()],
            Some(_) => {
                return Err(ApiError::bad_request(
                    "item_type",
                    format!("must be one of {}", HISTORY_ITEM_TYPES.join(", ")),
                ));
            }
        };
        Ok(HistoryQuery {
            max_records,
            next_token: self.next_token.clone().filter(|t| !t.is_empty()),
            start: self
                .start
                .as_deref()
                .map(|s| parse_time("start", s))
                .transpose()?,
            end: self
                .end
                .as_deref()
                .map(|s| parse_time("end", s))
                .transpose()?,
            item_types,
            without_reason_data: false,
        })
    }
}

/// `GET /api/v1/alarms/{name}/history?max_records=&next_token=&start=&end=&item_type=`:
/// CloudWatch's `DescribeAlarmHistory`, newest first.
pub(crate) async fn history(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Params(p): Params<HistoryParams>,
) -> Result<Json<Value>, ApiError> {
    let api = Arc::clone(engine(&state)?);
    let query = p.query()?;
    let page = tokio::task::spawn_blocking(move || api.history_page(&name, &query))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(Json(
        json!({ "history": page.items, "next_token": page.next_token }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetState {
    state_value: String,
    state_reason: String,
    state_reason_data: Option<Value>,
}

/// `PUT /api/v1/alarms/{name}/state` with `{"state_value", "state_reason", "state_reason_data"}`
/// (CloudWatch's `SetAlarmState`: the reason 1 to 1,023 characters, the reason data JSON of
/// at most 4,000 characters, given as a JSON value or as a string holding JSON; the engine
/// checks both, see [`AlarmApi::set_state`]).
pub(crate) async fn set_state(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Result<Json<SetState>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let (parameters, result) = match body {
        Ok(Json(body)) => (
            json!({
                "state_value": body.state_value,
                "state_reason": body.state_reason,
            }),
            change_state(&state, &name, body).await,
        ),
        Err(e) => (
            Value::Null,
            Err(match e.status() {
                StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
                    ApiError::bad_request("body", e.body_text())
                }
                status => ApiError::Status {
                    status,
                    message: e.body_text(),
                    field: Some("body".into()),
                },
            }),
        ),
    };
    audited(
        &state,
        &caller,
        "set_alarm_state",
        Some(&name),
        parameters,
        result,
    )
    .await?;
    Ok(Json(json!({ "ok": true })))
}

async fn change_state(state: &ApiState, name: &str, body: SetState) -> Result<(), ApiError> {
    let api = Arc::clone(engine(state)?);
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || {
        api.set_state(
            &name,
            &body.state_value,
            &body.state_reason,
            body.state_reason_data,
        )
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(ApiError::from)
}

/// `POST /api/v1/alarms/{name}/actions/enable`: CloudWatch's `EnableAlarmActions` for one
/// alarm (see [`AlarmApi::set_actions_enabled`]); answers `{"ok": true, "actions_enabled":
/// true}`. Audited as `enable_alarm_actions`.
pub(crate) async fn enable_actions(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    switch_actions(&state, &caller, name, true).await
}

/// `POST /api/v1/alarms/{name}/actions/disable`: CloudWatch's `DisableAlarmActions` for one
/// alarm (its state changes and history go on, its actions do not run); answers
/// `{"ok": true, "actions_enabled": false}`. Audited as `disable_alarm_actions`.
pub(crate) async fn disable_actions(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    switch_actions(&state, &caller, name, false).await
}

async fn switch_actions(
    state: &ApiState,
    caller: &Caller,
    name: String,
    enabled: bool,
) -> Result<Json<Value>, ApiError> {
    let result = match engine(state) {
        Ok(api) => {
            let (api, alarm) = (Arc::clone(api), name.clone());
            tokio::task::spawn_blocking(move || api.set_actions_enabled(&alarm, enabled))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))
                .and_then(|r| r.map_err(ApiError::from))
        }
        Err(e) => Err(e),
    };
    let action = if enabled {
        "enable_alarm_actions"
    } else {
        "disable_alarm_actions"
    };
    audited(state, caller, action, Some(&name), json!({}), result).await?;
    Ok(Json(json!({ "ok": true, "actions_enabled": enabled })))
}

/// `POST /api/v1/reload`.
pub(crate) async fn reload(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    let result = match engine(&state) {
        Ok(api) => {
            let api = Arc::clone(api);
            tokio::task::spawn_blocking(move || api.reload())
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))
                .and_then(|r| r.map_err(ApiError::from))
        }
        Err(e) => Err(e),
    };
    let parameters = match &result {
        Ok(report) => json!({ "files": report.files }),
        Err(_) => Value::Null,
    };
    let report = audited(&state, &caller, "reload", None, parameters, result).await?;
    Ok(Json(json!({
        "alarms": report.alarms,
        "composite_alarms": report.composite_alarms,
        "changed": report.changed,
        "removed": report.removed,
    })))
}

/// Most periods `GET /api/v1/alarms/{name}/band` answers (the store's datapoints per query).
pub const MAX_BAND_PERIODS: i64 = 1440;
/// The range of a band request without `from`: the last 3 hours.
const DEFAULT_BAND_RANGE_MS: i64 = 3 * 3_600_000;

#[derive(Deserialize)]
pub(crate) struct BandParams {
    from: Option<String>,
    to: Option<String>,
}

/// The band an anomaly-detection alarm compares with: the id of the query banded and the
/// width `k` of its `ANOMALY_DETECTION_BAND(id, k)` (the alarm's `threshold_metric_id`).
fn band_of(alarm: &thermostat_alarms::Alarm) -> Option<(String, f64)> {
    use thermostat_alarms::math::{Func, Node, parse};
    let band = alarm.threshold_metric_id.as_deref()?;
    let e = alarm
        .metrics
        .iter()
        .find(|m| m.id == band)?
        .expression
        .as_deref()?;
    let Node::Call(Func::AnomalyDetectionBand, args) = parse(e).ok()?.node else {
        return None;
    };
    let Node::Id(id) = &args.first()?.node else {
        return None;
    };
    let k = match args.get(1).map(|a| &a.node) {
        None => 2.0,
        Some(Node::Number(k)) => *k,
        Some(_) => return None,
    };
    Some((id.clone(), k))
}

/// `GET /api/v1/alarms/{name}/band?from=&to=`: an anomaly-detection alarm's (or per-series
/// instance's) series over its period grid from the period holding `from` to the one holding
/// `to` (default: the last 3 hours up to now, the current period included; at
/// most [`MAX_BAND_PERIODS`] periods), each period with the band of the alarm's model and
/// whether the value is outside it as the alarm's operator compares:
/// `{"points": [{"t", "value", "lower", "upper", "outside"}], "model": {…} | null, …}`.
/// `value` is `null` where the series has no datapoint, `lower`/`upper` where the model has
/// no band (not trained yet: `model` says why).
pub(crate) async fn band(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Params(params): Params<BandParams>,
) -> Result<Json<Value>, ApiError> {
    let api = Arc::clone(engine(&state)?);
    let now = state.clock.now();
    let view = api
        .list()
        .into_iter()
        .find(|v| v.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no alarm named {name:?}")))?;
    let alarm: thermostat_alarms::Alarm = serde_json::from_value(view.configuration.clone())
        .map_err(|_| {
            ApiError::bad_request(
                "name",
                format!("{name:?} is not an anomaly-detection alarm"),
            )
        })?;
    let Some((metric_id, k)) = band_of(&alarm) else {
        return Err(ApiError::bad_request(
            "name",
            format!(
                "{name:?} is not an anomaly-detection alarm (it has no threshold_metric_id \
                 naming an ANOMALY_DETECTION_BAND query)"
            ),
        ));
    };
    let p = alarm.period.as_millis();
    // The period holding `to` is in the range (rounded up), so that a range ending now shows
    // the current period's datapoint, as the alarm's chart does.
    let to = match params.to.as_deref() {
        Some(t) => parse_time("to", t)?,
        None => now,
    }
    .add_millis(p - 1)
    .floor_to(p);
    let from = match params.from.as_deref() {
        Some(t) => parse_time("from", t)?,
        None => to.sub_millis(DEFAULT_BAND_RANGE_MS),
    }
    .floor_to(p);
    if to <= from {
        return Err(ApiError::bad_request(
            "to",
            "must be at least one period after from",
        ));
    }
    let periods = (to.as_millis() - from.as_millis()) / p;
    if periods > MAX_BAND_PERIODS {
        return Err(ApiError::bad_request(
            "from",
            format!(
                "the range holds {periods} periods of {} s, more than {MAX_BAND_PERIODS}; \
                 ask for a shorter range",
                alarm.period.as_secs()
            ),
        ));
    }
    let model = api
        .anomaly_models(&name)
        .into_iter()
        .find(|(id, _)| *id == metric_id)
        .map(|(_, m)| m);
    let store = Arc::clone(&state.store);
    let (alarm, instance) = (alarm, name.clone());
    let (alarm, series) = tokio::task::spawn_blocking(move || {
        let key = thermostat_alarms::engine::instances(
            &alarm,
            &thermostat_alarms::EngineState::default(),
            &store,
        )
        .into_iter()
        .find(|(n, _)| *n == instance)
        .map_or_else(|| alarm.math_series_key(), |(_, k)| k);
        let series = thermostat_alarms::math_alarm::query_series(
            &alarm,
            &instance,
            &key,
            None,
            &store,
            (from, to),
            alarm.period,
            now,
        );
        (alarm, series)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let series = series.map_err(|e| ApiError::Internal(e.to_string()))?;
    let values: std::collections::BTreeMap<i64, f64> = series
        .into_iter()
        .map(|(t, v)| (t.as_millis(), v))
        .collect();
    let points: Vec<Value> = (0..periods)
        .map(|i| {
            let t = from.add_millis(i * p);
            let value = values.get(&t.as_millis()).copied();
            let band = model.as_ref().and_then(|m| m.band(t, k));
            let outside = match (value, band) {
                (Some(v), Some((lo, hi))) => alarm.comparison_operator.breaches_band(v, lo, hi),
                _ => false,
            };
            json!({
                "t": t.to_rfc3339(),
                "value": value,
                "lower": band.map(|b| b.0),
                "upper": band.map(|b| b.1),
                "outside": outside,
            })
        })
        .collect();
    Ok(Json(json!({
        "name": name,
        "metric_id": metric_id,
        "band_id": alarm.threshold_metric_id,
        "k": k,
        "comparison_operator": alarm.comparison_operator.as_str(),
        "period_seconds": alarm.period.as_secs(),
        "from": from.to_rfc3339(),
        "to": to.to_rfc3339(),
        "model": model.as_ref().map(|m| json!({
            "state": m.state().as_str(),
            "seasonality": m.seasonality().as_str(),
            "trend_per_hour": m.trend_per_hour(),
            "trained_at": m.trained_at().to_rfc3339(),
            "points": m.points(),
            "insufficient_data_reason": m.insufficient_data_reason(),
        })),
        "points": points,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_shows_the_actions_enabled_in_force() {
        let view = |configuration: Value| AlarmView {
            name: "cpu".into(),
            kind: "metric",
            state: "OK".into(),
            reason: String::new(),
            reason_data: None,
            state_updated: String::new(),
            configuration,
        };
        let off = view(json!({"actions": {"enabled": false, "alarm": []}}));
        assert_eq!(view_json(&off)["actions_enabled"], false);
        let on = view(json!({"actions": {"enabled": true}}));
        assert_eq!(view_json(&on)["actions_enabled"], true);
        assert_eq!(
            view_json(&view(Value::Null))["actions_enabled"],
            true,
            "CloudWatch's default"
        );
    }

    #[test]
    fn list_tokens_round_trip_any_name() {
        for name in ["a", "cpu[Host=é b/?&#]", ""] {
            let t = list_token(name);
            assert!(
                t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'),
                "{t}"
            );
            assert_eq!(list_token_name(&t).as_deref(), Some(name));
        }
        for bad in ["x", "a1.0", "a1.zz", "a1.ff"] {
            assert_eq!(list_token_name(bad), None, "{bad}");
        }
    }
}
