//! The Prometheus-compatible query API (`/api/v1/query`, `query_range`, `series`, `labels`,
//! `label/{name}/values`, `metadata`, `status/buildinfo`) over `thermostat-promql`: this
//! module parses the parameters (query string, or a form body for POST, as Grafana and
//! promtool send), admits the query at the shared query gate, runs it off the async workers
//! and renders Prometheus' envelope. Errors are mapped once, in [`PromError`].

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Map, Value, json};
use thermostat_metrics::Timestamp;
use thermostat_metrics::store::QueryRefused;
use thermostat_promql::limits::MAX_LISTED;
use thermostat_promql::params::{format_value, parse_duration, parse_time};
use thermostat_promql::{
    ErrorType, Evaluation, Labels, Plan, Range, Scope, Selector, Source, StoreSource,
    Value as PromValue, label_names, label_values, labels_of, matching_series, parse_selector,
    prepare,
};

use crate::ApiState;
use crate::access::Caller;
use crate::error::bounded;

/// The Prometheus version the build information claims, so that Grafana enables the
/// features of that version's API (the subset it calls is what Thermostat serves).
const PROMETHEUS_VERSION: &str = "2.42.0";

/// An error in Prometheus' envelope, with its status.
#[derive(Debug)]
pub(crate) enum PromError {
    /// 400 `bad_data`.
    BadData(String),
    /// 422 `execution`.
    Execution(String),
    /// 503 `unavailable`: too many queries at once.
    Unavailable(String),
    /// 500 `internal`; the detail is logged, not shown.
    Internal(String),
}

impl From<thermostat_promql::Error> for PromError {
    fn from(e: thermostat_promql::Error) -> Self {
        match e.error_type() {
            ErrorType::BadData => PromError::BadData(e.to_string()),
            ErrorType::Execution => PromError::Execution(e.to_string()),
        }
    }
}

impl IntoResponse for PromError {
    fn into_response(self) -> Response {
        let (status, kind, message) = match self {
            PromError::BadData(m) => (StatusCode::BAD_REQUEST, "bad_data", m),
            PromError::Execution(m) => (StatusCode::UNPROCESSABLE_ENTITY, "execution", m),
            PromError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m),
            PromError::Internal(detail) => {
                tracing::error!(%detail, "A Prometheus API query failed with an internal error.");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error".to_owned(),
                )
            }
        };
        let body = json!({"status": "error", "errorType": kind, "error": bounded(message)});
        (status, Json(body)).into_response()
    }
}

type Answer = Result<Json<Value>, PromError>;

fn success(data: Value, warnings: Vec<String>) -> Json<Value> {
    let mut body = json!({"status": "success", "data": data});
    if !warnings.is_empty() {
        body["warnings"] = json!(warnings);
    }
    Json(body)
}

/// A request's parameters: the query string's, then (POST) the form body's. As in
/// Prometheus, a POST body that is not a form (vmalert sends `Content-Type:
/// application/json` with an empty body and the parameters in the URL) is ignored.
struct Params(Vec<(String, String)>);

impl Params {
    fn gather(
        method: &Method,
        query: Vec<(String, String)>,
        form: Result<Form<Vec<(String, String)>>, FormRejection>,
    ) -> Result<Self, PromError> {
        let mut all = query;
        if method == Method::POST {
            match form {
                Ok(Form(body)) => all.extend(body),
                Err(FormRejection::InvalidFormContentType(_)) => {}
                Err(e) => return Err(PromError::BadData(e.body_text())),
            }
        }
        Ok(Params(all))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn time(&self, name: &str) -> Result<Option<Timestamp>, PromError> {
        self.get(name)
            .map(|t| parse_time(name, t))
            .transpose()
            .map_err(PromError::from)
    }
}

fn scope(caller: &Caller) -> Scope {
    let principal = Arc::clone(&caller.principal);
    Arc::new(move |ns: &str| principal.may_use_namespace(ns))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PromError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PromError::Internal(format!("a query failed: {e}")))
}

/// Resolves, admits (at the store's query gate, priced in store periods) and evaluates.
async fn evaluate(
    state: &ApiState,
    caller: &Caller,
    query: &str,
    range: Range,
) -> Result<Evaluation, PromError> {
    let plan = Plan::try_new(query)?;
    let source = StoreSource::new(Arc::clone(&state.store), state.clock.now(), scope(caller));
    let resolver = source.clone();
    let prepared = blocking(move || prepare(plan, &resolver, range)).await??;
    let admission = state.queries.admit(prepared.cost()).map_err(|e| match e {
        QueryRefused::TooCostly { .. } => PromError::Execution(e.to_string()),
        QueryRefused::Busy { .. } => PromError::Unavailable(e.to_string()),
    })?;
    Ok(blocking(move || admission.run(|| prepared.evaluate(&source))).await??)
}

fn point(t: i64, v: f64) -> Value {
    let secs = if t % 1000 == 0 {
        json!(t / 1000)
    } else {
        json!(t as f64 / 1000.0)
    };
    json!([secs, format_value(v)])
}

fn metric(labels: &[(String, String)]) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(n, v)| (n.clone(), json!(v)))
            .collect::<Map<String, Value>>(),
    )
}

/// `GET|POST /api/v1/query`: `query`, `time` (default now); `timeout`, `step` and the like
/// are accepted and ignored.
pub(crate) async fn query(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    method: Method,
    Query(q): Query<Vec<(String, String)>>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Answer {
    let params = Params::gather(&method, q, form)?;
    let query = params
        .get("query")
        .ok_or_else(|| PromError::BadData("invalid parameter \"query\": is required".into()))?;
    let time = params.time("time")?.unwrap_or_else(|| state.clock.now());
    let eval = evaluate(&state, &caller, query, Range::instant(time)).await?;
    let t = eval.times[0];
    let data = match eval.value {
        PromValue::Scalar(s) => json!({"resultType": "scalar", "result": point(t, s[0])}),
        PromValue::Vector(v) => {
            let result: Vec<Value> = v
                .iter()
                .filter_map(|s| {
                    s.points[0].map(|p| json!({"metric": metric(&s.labels), "value": point(t, p)}))
                })
                .collect();
            json!({"resultType": "vector", "result": result})
        }
    };
    Ok(success(data, Vec::new()))
}

/// `GET|POST /api/v1/query_range`: `query`, `start`, `end`, `step` (all required).
pub(crate) async fn query_range(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    method: Method,
    Query(q): Query<Vec<(String, String)>>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Answer {
    let params = Params::gather(&method, q, form)?;
    let required = |name: &str| {
        params
            .get(name)
            .ok_or_else(|| PromError::BadData(format!("invalid parameter {name:?}: is required")))
    };
    let query = required("query")?;
    let start = parse_time("start", required("start")?)?;
    let end = parse_time("end", required("end")?)?;
    let step = parse_duration("step", required("step")?)?;
    let range = Range::try_new(start, end, step)?;
    let eval = evaluate(&state, &caller, query, range).await?;
    let series: Vec<(Labels, Vec<Option<f64>>)> = match eval.value {
        PromValue::Scalar(s) => vec![(Vec::new(), s.into_iter().map(Some).collect())],
        PromValue::Vector(v) => v.into_iter().map(|s| (s.labels, s.points)).collect(),
    };
    let result: Vec<Value> = series
        .iter()
        .map(|(labels, points)| {
            let values: Vec<Value> = eval
                .times
                .iter()
                .zip(points)
                .filter_map(|(&t, p)| p.map(|v| point(t, v)))
                .collect();
            json!({"metric": metric(labels), "values": values})
        })
        .collect();
    Ok(success(
        json!({"resultType": "matrix", "result": result}),
        Vec::new(),
    ))
}

/// The `match[]` selectors, the `limit` (at most [`MAX_LISTED`]) and the caller's source.
fn listing(
    state: &ApiState,
    caller: &Caller,
    params: &Params,
    required: bool,
) -> Result<(Vec<Selector>, usize, StoreSource), PromError> {
    let matches = params.all("match[]");
    if required && matches.is_empty() {
        return Err(PromError::BadData("no match[] parameter provided".into()));
    }
    let selectors = matches
        .into_iter()
        .map(parse_selector)
        .collect::<Result<Vec<_>, _>>()?;
    // `start` and `end` are checked, but every series listed has data in the past 14 days.
    params.time("start")?;
    params.time("end")?;
    let limit = match params.get("limit") {
        None => MAX_LISTED,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .map(|l| {
                if l == 0 {
                    MAX_LISTED
                } else {
                    l.min(MAX_LISTED)
                }
            })
            .ok_or_else(|| {
                PromError::BadData(format!(
                    "invalid parameter \"limit\": {l:?} is not a number"
                ))
            })?,
    };
    let source = StoreSource::new(Arc::clone(&state.store), state.clock.now(), scope(caller));
    Ok((selectors, limit, source))
}

fn truncated(cut: bool, limit: usize) -> Vec<String> {
    if cut {
        vec![format!("results truncated due to limit ({limit})")]
    } else {
        Vec::new()
    }
}

/// `GET|POST /api/v1/series`: the label sets of the series matching any `match[]`.
pub(crate) async fn series(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    method: Method,
    Query(q): Query<Vec<(String, String)>>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Answer {
    let params = Params::gather(&method, q, form)?;
    let (selectors, limit, source) = listing(&state, &caller, &params, true)?;
    let (keys, cut) = blocking(move || matching_series(&source, &selectors, limit)).await?;
    let data: Vec<Value> = keys.iter().map(|k| metric(&labels_of(k))).collect();
    Ok(success(json!(data), truncated(cut, limit)))
}

/// `GET|POST /api/v1/labels`: the label names of the series matching `match[]` (or all).
pub(crate) async fn labels(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    method: Method,
    Query(q): Query<Vec<(String, String)>>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Answer {
    let params = Params::gather(&method, q, form)?;
    let (selectors, limit, source) = listing(&state, &caller, &params, false)?;
    let mut names = blocking(move || {
        let (keys, _) = matching_series(&source, &selectors, usize::MAX);
        label_names(&keys)
    })
    .await?;
    let cut = names.len() > limit;
    names.truncate(limit);
    Ok(success(json!(names), truncated(cut, limit)))
}

/// `GET /api/v1/label/{name}/values`: the values of label `name` in the series matching
/// `match[]` (or all).
pub(crate) async fn label_values_of(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> Answer {
    let params = Params(q);
    let (selectors, limit, source) = listing(&state, &caller, &params, false)?;
    let mut values = blocking(move || {
        let (keys, _) = matching_series(&source, &selectors, usize::MAX);
        label_values(&keys, &name)
    })
    .await?;
    let cut = values.len() > limit;
    values.truncate(limit);
    Ok(success(json!(values), truncated(cut, limit)))
}

/// `GET|POST /api/v1/metadata`: one entry of type `unknown` per metric name (Thermostat keeps
/// no metric types or help texts); `metric` narrows it to one name, `limit` bounds it.
pub(crate) async fn metadata(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    method: Method,
    Query(q): Query<Vec<(String, String)>>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Answer {
    let params = Params::gather(&method, q, form)?;
    let (_, limit, source) = listing(&state, &caller, &params, false)?;
    let only = params.get("metric").map(str::to_owned);
    let names = blocking(move || {
        let keys = source.series(None, only.as_deref());
        label_values(&keys, thermostat_promql::METRIC_NAME)
    })
    .await?;
    let entry = json!([{"type": "unknown", "help": "", "unit": ""}]);
    let data: Map<String, Value> = names
        .into_iter()
        .take(limit)
        .map(|n| (n, entry.clone()))
        .collect();
    Ok(success(Value::Object(data), Vec::new()))
}

/// `GET /api/v1/status/buildinfo`.
pub(crate) async fn buildinfo() -> Json<Value> {
    success(
        json!({
            "version": PROMETHEUS_VERSION,
            "revision": format!("thermostat-{}", env!("CARGO_PKG_VERSION")),
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
        }),
        Vec::new(),
    )
}
