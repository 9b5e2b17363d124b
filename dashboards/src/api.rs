//! JSON endpoints over the store: statistics and series.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query as Params, State};
use axum::{Extension, Json};
use serde_json::{Map, Value, json};
use thermostat_metrics::store::{MAX_STATISTICS, QueryRefused};
use thermostat_metrics::time::{HOUR_MS, TimeError};
use thermostat_metrics::validate::quote;
use thermostat_metrics::{Dimension, Period, Query, SeriesKey, Statistic, Store, Timestamp, Unit};

use crate::ApiState;
use crate::access::Caller;
use crate::error::ApiError;
use thermostat_auth::Permission;

/// Parses a time given as RFC 3339 (any time from `0000-01-01T00:00:00Z` to
/// `9999-12-31T23:59:59.999Z`) or as Unix seconds (fractions allowed) in that range.
///
/// # Errors
/// A 400 naming `field`: not a time, NaN or infinite seconds, or a time outside that range.
pub fn parse_time(field: &str, text: &str) -> Result<Timestamp, ApiError> {
    let parsed = match text.trim().parse::<f64>() {
        Ok(secs) => Timestamp::try_from_secs_f64(secs),
        Err(_) => Timestamp::parse_rfc3339(text),
    };
    parsed.map_err(|e| {
        let got = quote(text);
        let rule = match e {
            TimeError::NotRfc3339(_) => format!(
                "must be an RFC 3339 time such as 2024-01-01T00:00:00Z, or Unix seconds (got {got})"
            ),
            TimeError::NotFinite => format!("must be a finite number of Unix seconds (got {got})"),
            TimeError::OutOfRange => format!("{e} (got {got})"),
        };
        ApiError::bad_request(field, rule)
    })
}

/// Runs store queries that cost `cost` in all on the shared query pool (see
/// [`thermostat_metrics::store::QueryGate`]), off the async workers.
///
/// # Errors
/// A 400 naming `field` (the request parameter that sets the query's size) when the cost is
/// over `--max-query-cost`; a 429 when too many queries are running and waiting.
pub(crate) async fn run_queries<T: Send + 'static>(
    state: &ApiState,
    field: &str,
    cost: u64,
    f: impl FnOnce(&Store) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let admission = state.queries.admit(cost).map_err(|e| match e {
        QueryRefused::TooCostly { .. } => ApiError::bad_request(field, e.to_string()),
        QueryRefused::Busy { .. } => ApiError::Overloaded(e.to_string()),
    })?;
    let store = Arc::clone(&state.store);
    tokio::task::spawn_blocking(move || admission.run(|| f(&store)))
        .await
        .map_err(|e| ApiError::Internal(format!("a query failed: {e}")))
}

/// Parses `Name=Value,Name2=Value2`.
///
/// # Errors
/// A 400 for `dimensions`.
pub fn parse_dimensions(text: &str) -> Result<Vec<Dimension>, ApiError> {
    text.split(',')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map(|(n, v)| Dimension::new(n, v))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "dimensions",
                        format!("must be Name=Value pairs separated by commas (got {pair:?})"),
                    )
                })
        })
        .collect()
}

/// Refuses a read of `namespace` outside the caller's namespaces: 403.
fn in_scope(state: &ApiState, caller: &Caller, namespace: &str) -> Result<(), ApiError> {
    state
        .access
        .authorize_namespace(&caller.principal, Permission::ReadMetrics, namespace)
        .map_err(|denied| ApiError::Forbidden(denied.to_string()))
}

fn required<'a>(params: &'a HashMap<String, String>, field: &str) -> Result<&'a str, ApiError> {
    params
        .get(field)
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request(field, "is required"))
}

/// `GET /api/v1/statistics`.
pub(crate) async fn statistics(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Params(params): Params<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    let namespace = required(&params, "namespace")?;
    in_scope(&state, &caller, namespace)?;
    let metric_name = required(&params, "metric_name")?;
    let dimensions = parse_dimensions(params.get("dimensions").map_or("", String::as_str))?;
    let end = match params.get("end") {
        Some(s) => parse_time("end", s)?,
        None => now,
    };
    let start = match params.get("start") {
        Some(s) => parse_time("start", s)?,
        None => end.sub_millis(HOUR_MS),
    };
    let period_secs: i64 = params
        .get("period_seconds")
        .map_or(Ok(60), |s| s.parse())
        .map_err(|_| {
            ApiError::bad_request("period_seconds", "must be a whole number of seconds")
        })?;
    let period = Period::try_from_secs(period_secs)
        .map_err(|r| ApiError::bad_request("period_seconds", r))?;
    let statistics = params.get("statistics").map_or("Average", String::as_str);
    let count = statistics.split(',').count();
    if count > MAX_STATISTICS {
        return Err(ApiError::bad_request(
            "statistics",
            format!("must name 1 to {MAX_STATISTICS} statistics (got {count})"),
        ));
    }
    let statistics = statistics
        .split(',')
        .map(|s| {
            s.parse::<Statistic>()
                .map_err(|e| ApiError::bad_request("statistics", e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let unit = match params.get("unit").map(String::as_str) {
        None | Some("") => None,
        Some(u) => Some(
            u.parse::<Unit>()
                .map_err(|e| ApiError::bad_request("unit", e.to_string()))?,
        ),
    };
    let query = Query {
        key: SeriesKey::new(namespace, metric_name, dimensions),
        unit,
        start,
        end,
        period,
        statistics,
    };
    let field_of = |e: thermostat_metrics::QueryError| {
        if e.is_unavailable() {
            return ApiError::Status {
                status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
                message: e.rule,
                field: Some(e.field.to_owned()),
            };
        }
        let field = match e.field {
            "start_time" => "start",
            "end_time" => "end",
            f => f,
        };
        ApiError::bad_request(field, e.rule)
    };
    let plan = query.plan(now).map_err(field_of)?;
    let (points, query) = run_queries(&state, "period_seconds", plan.cost, move |store| {
        (store.query(&query, now), query)
    })
    .await?;
    let points = points.map_err(field_of)?;
    let datapoints: Vec<Value> = points
        .into_iter()
        .map(|dp| {
            let mut m = Map::new();
            m.insert("timestamp".into(), json!(dp.timestamp.to_rfc3339()));
            m.insert("unit".into(), json!(dp.unit.as_str()));
            for (s, v) in query.statistics.iter().zip(dp.values) {
                if let Some(v) = v {
                    m.insert(s.name().to_owned(), json!(v));
                }
            }
            Value::Object(m)
        })
        .collect();
    let mut body = json!({ "datapoints": datapoints });
    crate::cluster::mark_stale(&state, &mut body);
    Ok(Json(body))
}

/// `GET /api/v1/metrics`: one page of the series with data in the past 14 days, optionally
/// filtered by `namespace` and `metric_name`. `max_records` (1 to 500, default 500) bounds the
/// page, as does about 1 MiB of series; `next_token` is in the answer while more remain and is
/// passed back for the next page.
pub(crate) async fn metrics(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Params(params): Params<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    use thermostat_metrics::store::{LIST_MAX_BYTES, LIST_MAX_RECORDS, ListCursor, ListFilter};
    let pick = |k: &str| params.get(k).filter(|s| !s.is_empty()).cloned();
    let max_records = match pick("max_records") {
        None => LIST_MAX_RECORDS,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=LIST_MAX_RECORDS).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "max_records",
                    format!(
                        "must be a whole number from 1 to {LIST_MAX_RECORDS} (got {})",
                        quote(&s)
                    ),
                )
            })?,
    };
    let after = pick("next_token")
        .map(|t| ListCursor::from_token(&t))
        .transpose()
        .map_err(|e| ApiError::bad_request("next_token", e.to_string()))?;
    let (namespace, metric_name) = (pick("namespace"), pick("metric_name"));
    if let Some(namespace) = &namespace {
        in_scope(&state, &caller, namespace)?;
    }
    let store = Arc::clone(&state.store);
    let now = state.clock.now();
    // A page reads every series: off the async workers.
    let page = tokio::task::spawn_blocking(move || {
        let filter = ListFilter {
            namespace: namespace.as_deref(),
            metric_name: metric_name.as_deref(),
            active_since: None,
        };
        store.list_page(filter, now, after.as_ref(), max_records, LIST_MAX_BYTES)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("listing the series failed: {e}")))?;
    // A token limited to some namespaces sees only their series (a page may then hold fewer
    // than `max_records`; `next_token` still leads on).
    let metrics: Vec<Value> = page
        .keys
        .iter()
        .filter(|k| caller.principal.may_use_namespace(k.namespace()))
        .map(|k| {
            let dims: Map<String, Value> = k
                .dimensions()
                .iter()
                .map(|d| (d.name.to_owned(), json!(d.value)))
                .collect();
            json!({"namespace": k.namespace(), "metric_name": k.metric_name(), "dimensions": dims})
        })
        .collect();
    let mut body = json!({ "metrics": metrics });
    if let Some(next) = page.next {
        body["next_token"] = json!(next.to_token());
    }
    crate::cluster::mark_stale(&state, &mut body);
    Ok(Json(body))
}
