//! Scaling-group and notification endpoints, over ports: [`GroupApi`] (implemented here for
//! the scaling runtime), [`NotificationApi`] and [`AdminApi`] (implemented by the binary).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query as Params, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use thermostat_scaler::{ActivityStatus, ManualError};
use thermostat_scaler_runtime::{ManualScaling, ScalingRuntime};

use crate::ApiState;
use crate::access::{Caller, audited};
use crate::error::ApiError;

/// What a request to scale by hand answers: `{"desired_capacity", "activity"}` (the
/// activity as the activities endpoint shows it, `null` when nothing changed), or the API
/// error.
pub type ScalingFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, ApiError>> + Send + 'a>>;

/// `PUT /api/v1/groups/{name}/desired-capacity`: EC2 Auto Scaling's `SetDesiredCapacity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetDesiredCapacity {
    /// `DesiredCapacity`: within the group's `[min_size, max_size]`.
    pub desired_capacity: u32,
    /// `HonorCooldown` (default false): refuse while the group is in cooldown.
    #[serde(default)]
    pub honor_cooldown: bool,
}

/// `POST /api/v1/groups/{name}/policies/{policy}/execute`: EC2 Auto Scaling's
/// `ExecutePolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutePolicy {
    /// `HonorCooldown` (default false, as in EC2): a simple policy refuses while the group is
    /// in cooldown.
    #[serde(default)]
    pub honor_cooldown: bool,
    /// `MetricValue`: required for a step policy, refused otherwise.
    pub metric_value: Option<f64>,
    /// `BreachThreshold`: required for a step policy, refused otherwise.
    pub breach_threshold: Option<f64>,
}

/// What the scaling side offers the HTTP API: JSON views, and scaling by hand.
pub trait GroupApi: Send + Sync + std::fmt::Debug {
    /// Every scaling group: name, backend, min/desired/in-service/max, last activities.
    fn list(&self) -> Vec<Value>;
    /// The newest `limit` scaling activities of a group, newest first; `None` if no such group.
    fn activities(&self, group: &str, limit: usize) -> Option<Vec<Value>>;

    /// Sets a group's desired capacity (`SetDesiredCapacity`), answering as
    /// [`ScalingFuture`] says: `400` (field `desired_capacity`) outside the group's limits,
    /// `404` for an unknown group, `409` (field `honor_cooldown`) when the cooldown refuses,
    /// `502` when the group's fleet refuses the change. Not supported (`404`) by default.
    fn set_desired_capacity<'a>(
        &'a self,
        group: &'a str,
        request: SetDesiredCapacity,
    ) -> ScalingFuture<'a> {
        let _ = (group, request);
        Box::pin(async { Err(not_supported()) })
    }

    /// Runs a simple or step policy of a group (`ExecutePolicy`), answering as
    /// [`ScalingFuture`] says: `400` naming the field (`policy` for a target-tracking or
    /// disabled one, `metric_value`, `breach_threshold`), `404` for an unknown group or
    /// policy, `409` when the cooldown (`honor_cooldown`) or a warm-up (`policy`) holds it
    /// back, `502` when the fleet refuses. Not supported (`404`) by default.
    fn execute_policy<'a>(
        &'a self,
        group: &'a str,
        policy: &'a str,
        request: ExecutePolicy,
    ) -> ScalingFuture<'a> {
        let _ = (group, policy, request);
        Box::pin(async { Err(not_supported()) })
    }
}

fn not_supported() -> ApiError {
    ApiError::NotFound("scaling by hand is not enabled on this server".into())
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

    fn set_desired_capacity<'a>(
        &'a self,
        group: &'a str,
        request: SetDesiredCapacity,
    ) -> ScalingFuture<'a> {
        Box::pin(async move {
            let done = ScalingRuntime::set_desired_capacity(
                self,
                group,
                request.desired_capacity,
                request.honor_cooldown,
                self.now(),
            )
            .await;
            manual_answer(group, done)
        })
    }

    fn execute_policy<'a>(
        &'a self,
        group: &'a str,
        policy: &'a str,
        request: ExecutePolicy,
    ) -> ScalingFuture<'a> {
        Box::pin(async move {
            let done = ScalingRuntime::execute_policy(
                self,
                group,
                policy,
                request.honor_cooldown,
                request.metric_value,
                request.breach_threshold,
                self.now(),
            )
            .await;
            manual_answer(group, done)
        })
    }
}

/// The answer to a request to scale by hand, or its error with the field it names.
fn manual_answer(
    group: &str,
    result: thermostat_scaler_runtime::Result<ManualScaling>,
) -> Result<Value, ApiError> {
    use thermostat_scaler_runtime::Error;
    let done = result.map_err(|e| match e {
        Error::UnknownGroup { .. } => {
            ApiError::NotFound(format!("no scaling group named {group:?}"))
        }
        Error::Manual(m @ ManualError::UnknownPolicy { .. }) => ApiError::NotFound(m.to_string()),
        Error::Manual(ManualError::Invalid { field, message }) => {
            ApiError::bad_request(field, message)
        }
        Error::Manual(ManualError::Refused { field, message, .. }) => ApiError::Conflict {
            field: field.into(),
            message,
        },
        other => ApiError::Internal(other.to_string()),
    })?;
    if let Some(a) = &done.activity
        && a.status == ActivityStatus::Failed
    {
        return Err(ApiError::Status {
            status: StatusCode::BAD_GATEWAY,
            message: format!(
                "the fleet of scaling group {group:?} refused the change: {}",
                a.status_message.as_deref().unwrap_or("no reason given")
            ),
            field: None,
        });
    }
    let activity =
        serde_json::to_value(&done.activity).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json!({ "desired_capacity": done.desired, "activity": activity }))
}

/// `PUT /api/v1/groups/{name}/desired-capacity` with `{"desired_capacity": n,
/// "honor_cooldown": false}` (EC2 Auto Scaling's `SetDesiredCapacity`): `200 {"ok": true,
/// "desired_capacity", "activity"}`; errors as [`GroupApi::set_desired_capacity`] says, and
/// `400` (field `body`) for a body that is not such an object. Audited as
/// `set_desired_capacity` on the group.
pub(crate) async fn set_desired_capacity(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Result<Json<SetDesiredCapacity>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let (parameters, result) = match body {
        Ok(Json(request)) => (
            json!({
                "desired_capacity": request.desired_capacity,
                "honor_cooldown": request.honor_cooldown,
            }),
            match groups(&state) {
                Ok(api) => api.set_desired_capacity(&name, request).await,
                Err(e) => Err(e),
            },
        ),
        Err(e) => (Value::Null, Err(rejected_body(&e))),
    };
    let answer = audited(
        &state,
        &caller,
        "set_desired_capacity",
        Some(&name),
        parameters,
        result,
    )
    .await?;
    Ok(Json(ok(answer)))
}

/// `POST /api/v1/groups/{name}/policies/{policy}/execute` with `{"honor_cooldown": false,
/// "metric_value": x, "breach_threshold": y}` (EC2 Auto Scaling's `ExecutePolicy`; an empty
/// body takes the defaults): `200 {"ok": true, "desired_capacity", "activity"}`; errors as
/// [`GroupApi::execute_policy`] says, and `400` (field `body`) for a body that is not such
/// an object. Audited as `execute_policy` on `group/policy`.
pub(crate) async fn execute_policy(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((name, policy)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let target = format!("{name}/{policy}");
    let (parameters, result) = match optional_json::<ExecutePolicy>(&headers, &body) {
        Ok(request) => (
            json!({
                "policy": policy,
                "honor_cooldown": request.honor_cooldown,
                "metric_value": request.metric_value,
                "breach_threshold": request.breach_threshold,
            }),
            match groups(&state) {
                Ok(api) => api.execute_policy(&name, &policy, request).await,
                Err(e) => Err(e),
            },
        ),
        Err(e) => (Value::Null, Err(e)),
    };
    let answer = audited(
        &state,
        &caller,
        "execute_policy",
        Some(&target),
        parameters,
        result,
    )
    .await?;
    Ok(Json(ok(answer)))
}

/// `{"ok": true}` and the fields of `answer`.
fn ok(answer: Value) -> Value {
    let mut out = json!({ "ok": true });
    if let (Some(out), Value::Object(fields)) = (out.as_object_mut(), answer) {
        out.extend(fields);
    }
    out
}

/// The error for a JSON body axum refused.
fn rejected_body(e: &JsonRejection) -> ApiError {
    match e.status() {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
            ApiError::bad_request("body", e.body_text())
        }
        status => ApiError::Status {
            status,
            message: e.body_text(),
            field: Some("body".into()),
        },
    }
}

/// A JSON body whose fields are all optional: none (an empty body) gives the defaults; a
/// body needs `Content-Type: application/json`.
fn optional_json<T: Default + serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("application/json")
                || (v.starts_with("application/") && v.ends_with("+json"))
        });
    if !json {
        return Err(ApiError::Status {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "Expected request with `Content-Type: application/json`".into(),
            field: Some("body".into()),
        });
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request("body", e.to_string()))
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicBool;

    use axum::Router;
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::{get, post, put};
    use http_body_util::BodyExt as _;
    use thermostat_auth::{AuditError, AuditEvent, AuditPage, AuditQuery, AuditTrail, Principal};
    use thermostat_metrics::{ManualClock, Observation, SeriesKey, Store, Telemetry, Timestamp};
    use thermostat_scaler::{GroupState, ScalingActivity};
    use thermostat_scaler_runtime::{
        CapacityMetricsSink, Error, FleetError, Fleets, GroupStore, GroupWrite, Ports,
        ScalingTelemetry, StoreError,
    };
    use tower::ServiceExt as _;

    use super::*;
    use crate::access::RequestMeta;

    #[derive(Debug, Default)]
    struct Memory(Mutex<BTreeMap<String, Vec<Value>>>);

    impl GroupStore for Memory {
        fn load_group_states(&self) -> Result<Vec<(String, GroupState)>, StoreError> {
            Ok(Vec::new())
        }
        fn commit_groups(&self, writes: &[GroupWrite<'_>]) -> Result<(), StoreError> {
            let mut all = self.0.lock().unwrap();
            for w in writes {
                let list = all.entry(w.group.to_owned()).or_default();
                list.extend(
                    w.activities
                        .iter()
                        .map(|a| serde_json::to_value(a).unwrap()),
                );
            }
            Ok(())
        }
        fn group_activities(&self, group: &str, limit: usize) -> Result<Vec<Value>, StoreError> {
            let all = self.0.lock().unwrap();
            let list = all.get(group).cloned().unwrap_or_default();
            Ok(list.into_iter().rev().take(limit).collect())
        }
    }

    #[derive(Debug)]
    struct NoMetrics;

    impl CapacityMetricsSink for NoMetrics {
        fn record(&self, _: Vec<(SeriesKey, Observation<'static>)>, _: Timestamp) {}
    }

    #[derive(Debug, Default)]
    struct Trail(Mutex<Vec<AuditEvent>>);

    impl AuditTrail for Trail {
        fn append(&self, event: &AuditEvent) -> Result<(), AuditError> {
            self.0.lock().unwrap().push(event.clone());
            Ok(())
        }
        fn query(&self, _: &AuditQuery) -> Result<AuditPage, AuditError> {
            Ok(AuditPage::default())
        }
    }

    const GROUPS: &str = r#"scaling_groups:
  - name: web
    backend: simulated
    min_size: 1
    max_size: 6
    desired_capacity: 2
    policies:
      - name: out
        policy_type: SimpleScaling
        adjustment_type: ChangeInCapacity
        scaling_adjustment: 2
"#;

    /// My two routes (the coordinator's `lib.rs` adds them with their permission) over a
    /// scaling runtime with one simulated group, as an authenticated caller.
    async fn app() -> (Router, Arc<Trail>) {
        let files = [("groups.yaml", GROUPS)];
        let alarms = thermostat_alarms::validate(&files).unwrap();
        let set = thermostat_scaler::validate(&files, &alarms).unwrap();
        let clock = Arc::new(ManualClock::new(Timestamp(1_795_658_400_000)));
        let ports = Ports {
            store: Arc::new(Memory::default()),
            fleets: Arc::new(
                |_: &thermostat_scaler::ScalingSet| -> Result<Fleets, FleetError> {
                    Ok(Fleets::new())
                },
            ),
            capacity_metrics: Arc::new(NoMetrics),
        };
        let runtime =
            ScalingRuntime::start(&set, ports, clock.clone(), ScalingTelemetry::default())
                .await
                .unwrap();
        let trail = Arc::new(Trail::default());
        let state = ApiState {
            store: Arc::new(Store::new(1)),
            telemetry: Arc::new(Telemetry::new()),
            clock,
            ready: Arc::new(AtomicBool::new(true)),
            alarms: None,
            groups: Some(runtime as Arc<dyn GroupApi>),
            notifications: None,
            admin: None,
            queries: Default::default(),
            access: Arc::new(thermostat_auth::Access::open()),
            audit: Some(Arc::clone(&trail) as Arc<dyn AuditTrail>),
            otlp: None,
            remote_write: None,
            cloudwatch: None,
            cluster: None,
        };
        let caller = Caller {
            principal: Arc::new(Principal::anonymous()),
            session: None,
            meta: RequestMeta {
                request_id: "req-1".into(),
                source_ip: Some("127.0.0.1".into()),
                user_agent: None,
                tls: false,
                client_subject: None,
            },
        };
        let router = Router::new()
            .route("/api/v1/groups/{name}", get(one_group))
            .route(
                "/api/v1/groups/{name}/desired-capacity",
                put(set_desired_capacity),
            )
            .route(
                "/api/v1/groups/{name}/policies/{policy}/execute",
                post(execute_policy),
            )
            .layer(Extension(caller))
            .with_state(state);
        (router, trail)
    }

    async fn call(
        app: &Router,
        method: &str,
        uri: &str,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Body::from(body.unwrap_or_default().to_owned()))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn the_handlers_scale_the_group_and_audit_every_request() {
        let (app, trail) = app().await;
        let put = |body: &'static str| {
            let app = app.clone();
            async move {
                call(
                    &app,
                    "PUT",
                    "/api/v1/groups/web/desired-capacity",
                    Some(body),
                )
                .await
            }
        };
        let (status, answer) = put(r#"{"desired_capacity": 4}"#).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["ok"], true);
        assert_eq!(answer["desired_capacity"], 4);
        assert_eq!(
            answer["activity"]["cause"],
            "At 2026-11-26T02:00:00Z a user request explicitly set group desired capacity changing the desired capacity from 2 to 4."
        );
        let (_, group) = call(&app, "GET", "/api/v1/groups/web", None).await;
        assert_eq!(group["desired_capacity"], 4);
        assert_eq!(group["last_activities"][0], answer["activity"]);

        let (status, answer) = put(r#"{"desired_capacity": 7}"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error"]["field"], "desired_capacity");
        let (status, answer) = put(r#"{"desired": 3}"#).await;
        assert_eq!(
            (status, &answer["error"]["field"]),
            (StatusCode::BAD_REQUEST, &json!("body"))
        );
        let (status, _) = call(
            &app,
            "PUT",
            "/api/v1/groups/api/desired-capacity",
            Some(r#"{"desired_capacity": 3}"#),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let execute = "/api/v1/groups/web/policies/out/execute";
        let (status, answer) = call(&app, "POST", execute, None).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["desired_capacity"], 6);
        let (status, answer) =
            call(&app, "POST", execute, Some(r#"{"honor_cooldown": true}"#)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{answer}");
        assert_eq!(answer["error"]["field"], "honor_cooldown");
        let (status, answer) = call(
            &app,
            "POST",
            "/api/v1/groups/web/policies/nope/execute",
            Some("{}"),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");

        let events = trail.0.lock().unwrap();
        let got: Vec<(String, Option<String>, bool)> = events
            .iter()
            .map(|e| (e.action.clone(), e.target.clone(), e.error.is_none()))
            .collect();
        let want = [
            ("set_desired_capacity", "web", true),
            ("set_desired_capacity", "web", false),
            ("set_desired_capacity", "web", false),
            ("set_desired_capacity", "api", false),
            ("execute_policy", "web/out", true),
            ("execute_policy", "web/out", false),
            ("execute_policy", "web/nope", false),
        ]
        .map(|(a, t, ok)| (a.to_owned(), Some(t.to_owned()), ok));
        assert_eq!(got, want);
        assert_eq!(
            events[0].parameters,
            json!({"desired_capacity": 4, "honor_cooldown": false})
        );
        assert_eq!(
            events[4].parameters,
            json!({"policy": "out", "honor_cooldown": false, "metric_value": null, "breach_threshold": null})
        );
    }

    fn status_and_field(e: &ApiError) -> (StatusCode, Option<String>) {
        match e {
            ApiError::BadRequest { field, .. } => (StatusCode::BAD_REQUEST, Some(field.clone())),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, None),
            ApiError::Conflict { field, .. } => (StatusCode::CONFLICT, Some(field.clone())),
            ApiError::Status { status, field, .. } => (*status, field.clone()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn manual_scaling_errors_name_their_field_and_status() {
        let cases = [
            (
                Error::UnknownGroup { group: "api".into() },
                (StatusCode::NOT_FOUND, None),
            ),
            (
                Error::Manual(ManualError::UnknownPolicy {
                    group: "web".into(),
                    policy: "nope".into(),
                }),
                (StatusCode::NOT_FOUND, None),
            ),
            (
                Error::Manual(ManualError::Invalid {
                    field: "desired_capacity",
                    message: "New SetDesiredCapacity value 9 is above max value 6 for the AutoScalingGroup.".into(),
                }),
                (StatusCode::BAD_REQUEST, Some("desired_capacity".into())),
            ),
            (
                Error::Manual(ManualError::Refused {
                    field: "honor_cooldown",
                    message: "in cooldown".into(),
                    until: thermostat_metrics::Timestamp(0),
                }),
                (StatusCode::CONFLICT, Some("honor_cooldown".into())),
            ),
        ];
        for (error, want) in cases {
            let got = manual_answer("web", Err(error)).unwrap_err();
            assert_eq!(status_and_field(&got), want, "{got:?}");
        }
        let failed = ScalingActivity {
            group: "web".into(),
            timestamp: thermostat_metrics::Timestamp(0),
            policy: None,
            alarm: None,
            scheduled_action: None,
            old_desired: 2,
            new_desired: 3,
            cause: "At ...".into(),
            status: ActivityStatus::Failed,
            status_message: Some("the endpoint refused".into()),
            leader_lease_revision: None,
        };
        let got = manual_answer(
            "web",
            Ok(ManualScaling {
                desired: 2,
                activity: Some(failed.clone()),
            }),
        )
        .unwrap_err();
        assert_eq!(status_and_field(&got).0, StatusCode::BAD_GATEWAY);
        assert!(got.to_string().contains("the endpoint refused"), "{got}");
        let done = ManualScaling {
            desired: 3,
            activity: Some(ScalingActivity {
                status: ActivityStatus::Successful,
                status_message: None,
                leader_lease_revision: None,
                ..failed
            }),
        };
        let answer = ok(manual_answer("web", Ok(done.clone())).unwrap());
        assert_eq!(answer["ok"], true);
        assert_eq!(answer["desired_capacity"], 3);
        assert_eq!(
            answer["activity"],
            serde_json::to_value(done.activity).unwrap()
        );
    }

    #[test]
    fn an_empty_execute_body_takes_the_defaults_and_others_must_be_json() {
        let mut headers = HeaderMap::new();
        let got: ExecutePolicy = optional_json(&headers, b" \n").unwrap();
        assert_eq!(got, ExecutePolicy::default());
        let refused = optional_json::<ExecutePolicy>(&headers, b"{}").unwrap_err();
        assert_eq!(
            status_and_field(&refused),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("body".into()))
        );
        headers.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        let got: ExecutePolicy =
            optional_json(&headers, br#"{"metric_value": 59, "breach_threshold": 50}"#).unwrap();
        assert_eq!(
            (got.metric_value, got.breach_threshold, got.honor_cooldown),
            (Some(59.0), Some(50.0), false)
        );
        let refused = optional_json::<ExecutePolicy>(&headers, br#"{"metric": 1}"#).unwrap_err();
        assert_eq!(
            status_and_field(&refused),
            (StatusCode::BAD_REQUEST, Some("body".into()))
        );
    }
}
