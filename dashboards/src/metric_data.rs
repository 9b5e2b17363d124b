//! `POST /api/v1/metric-data` (issue 22): CloudWatch's `GetMetricData` as JSON — metric
//! statistics and metric-math expressions over them — answered by the shared implementation
//! ([`thermostat_alarms::math::metric_data`]) over the store.
//!
//! The body is CloudWatch's request shape (`MetricDataQueries`, `StartTime`, `EndTime`,
//! `ScanBy`, `MaxDatapoints`, `NextToken`), with times as RFC 3339 or Unix seconds; the answer
//! is CloudWatch's response shape (`MetricDataResults` with `Timestamps` in Unix seconds).
//! Needs `read_metrics`, and every `MetricStat`'s namespace in the caller's scope. A broken
//! rule is a 400 whose `field` is CloudWatch's path of the field at fault
//! (`MetricDataQueries.member.2.Expression`) and whose message starts with the position and
//! the rule (`1:7: syntax: …`), followed by any other problems.

use axum::body::Bytes;
use axum::extract::State;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use thermostat_alarms::math::NoBands;
use thermostat_alarms::math::metric_data::{
    self as md, DataQuery, DataSource, MetricDataError, MetricDataRequest, MetricSource as _,
    MetricStat, ScanBy, StoreSource,
};
use thermostat_auth::Permission;
use thermostat_metrics::{Dimension, Timestamp};

use crate::ApiState;
use crate::access::Caller;
use crate::api::{parse_time, run_queries};
use crate::error::ApiError;

/// Largest body accepted: 500 queries of the longest expressions, with room for their ids,
/// labels and metrics.
pub(crate) const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct Body {
    metric_data_queries: Vec<JsonQuery>,
    start_time: Value,
    end_time: Value,
    #[serde(default)]
    scan_by: Option<String>,
    #[serde(default)]
    max_datapoints: Option<i64>,
    #[serde(default)]
    next_token: Option<String>,
    #[serde(default)]
    label_options: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct JsonQuery {
    id: String,
    #[serde(default)]
    metric_stat: Option<JsonStat>,
    #[serde(default)]
    expression: Option<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    return_data: Option<bool>,
    #[serde(default)]
    period: Option<i64>,
    #[serde(default)]
    account_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct JsonStat {
    metric: JsonMetric,
    period: i64,
    stat: String,
    #[serde(default)]
    unit: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct JsonMetric {
    namespace: String,
    metric_name: String,
    #[serde(default)]
    dimensions: Vec<JsonDimension>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct JsonDimension {
    name: String,
    value: String,
}

/// The 400 of a request's problems: the first one's field, every problem in the message.
fn bad_request(errors: &[MetricDataError]) -> ApiError {
    let Some((first, rest)) = errors.split_first() else {
        return ApiError::bad_request("MetricDataQueries", "is invalid");
    };
    let mut message = first.detail();
    for e in rest {
        message.push_str(&format!("; {e}"));
    }
    ApiError::bad_request(first.path(), message)
}

fn time(field: &str, v: &Value) -> Result<Timestamp, ApiError> {
    match v {
        Value::String(s) => parse_time(field, s),
        Value::Number(n) => parse_time(field, &n.to_string()),
        _ => Err(ApiError::bad_request(
            field,
            "must be an RFC 3339 time or Unix seconds",
        )),
    }
}

fn request_of(body: Body) -> Result<MetricDataRequest, ApiError> {
    let count = body.metric_data_queries.len();
    if count == 0 || count > thermostat_alarms::math::MAX_REQUEST_QUERIES {
        return Err(ApiError::bad_request(
            "MetricDataQueries",
            format!(
                "count: must hold 1 to {} queries (got {count})",
                thermostat_alarms::math::MAX_REQUEST_QUERIES
            ),
        ));
    }
    let mut queries = Vec::with_capacity(count);
    for (i, q) in body.metric_data_queries.into_iter().enumerate() {
        let source = match (q.metric_stat, q.expression) {
            (Some(s), None) => DataSource::MetricStat(
                MetricStat::parse(
                    i,
                    md::Metric {
                        namespace: s.metric.namespace,
                        metric_name: s.metric.metric_name,
                        dimensions: s
                            .metric
                            .dimensions
                            .into_iter()
                            .map(|d| Dimension::new(d.name, d.value))
                            .collect(),
                    },
                    s.period,
                    &s.stat,
                    s.unit.as_deref().unwrap_or(""),
                )
                .map_err(|e| bad_request(&[e]))?,
            ),
            (None, Some(e)) => DataSource::Expression(e),
            _ => {
                return Err(ApiError::bad_request(
                    format!("MetricDataQueries.member.{}", i + 1),
                    "required: exactly one of MetricStat and Expression must be given",
                ));
            }
        };
        let period_seconds = match q.period {
            None => None,
            Some(p) => Some(u32::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
                ApiError::bad_request(
                    format!("MetricDataQueries.member.{}.Period", i + 1),
                    format!("period: must be a positive number of seconds (got {p})"),
                )
            })?),
        };
        let _ = q.account_id;
        queries.push(DataQuery {
            id: q.id,
            source,
            label: q.label,
            return_data: q.return_data.unwrap_or(true),
            period_seconds,
        });
    }
    let scan_by = match body.scan_by.as_deref() {
        None | Some("TimestampDescending") => ScanBy::TimestampDescending,
        Some("TimestampAscending") => ScanBy::TimestampAscending,
        Some(other) => {
            return Err(ApiError::bad_request(
                "ScanBy",
                format!(
                    "must be TimestampDescending or TimestampAscending (got {})",
                    thermostat_metrics::validate::quote(other)
                ),
            ));
        }
    };
    let max_datapoints = match body.max_datapoints {
        None => None,
        Some(n) => Some(
            u32::try_from(n)
                .ok()
                .filter(|n| (1..=md::MAX_DATAPOINTS).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "MaxDatapoints",
                        format!("limit: must be 1 to {} (got {n})", md::MAX_DATAPOINTS),
                    )
                })?,
        ),
    };
    let _ = body.label_options;
    Ok(MetricDataRequest {
        queries,
        start: time("StartTime", &body.start_time)?,
        end: time("EndTime", &body.end_time)?,
        scan_by,
        max_datapoints,
        next_token: body.next_token,
    })
}

/// Unix seconds, whole when the time is.
fn seconds(t: Timestamp) -> Value {
    let ms = t.as_millis();
    if ms % 1000 == 0 {
        json!(ms / 1000)
    } else {
        #[allow(clippy::cast_precision_loss, reason = "times in years 0000-9999 fit")]
        let s = ms as f64 / 1000.0;
        json!(s)
    }
}

fn messages(m: &[md::Message]) -> Value {
    m.iter()
        .map(|m| json!({"Code": m.code, "Value": m.value}))
        .collect()
}

/// CloudWatch's JSON response shape.
pub(crate) fn response_json(answer: &md::MetricDataResponse) -> Value {
    let results: Vec<Value> = answer
        .results
        .iter()
        .map(|r| {
            json!({
                "Id": r.id,
                "Label": r.label,
                "Timestamps": r.timestamps.iter().copied().map(seconds).collect::<Vec<_>>(),
                "Values": r.values,
                "StatusCode": r.status.as_str(),
                "Messages": messages(&r.messages),
            })
        })
        .collect();
    let mut body = json!({
        "MetricDataResults": results,
        "Messages": messages(&answer.messages),
    });
    if let Some(t) = &answer.next_token {
        body["NextToken"] = json!(t);
    }
    body
}

/// `POST /api/v1/metric-data`.
pub(crate) async fn metric_data(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Body = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "body",
            format!("must be a GetMetricData request as JSON: {e}"),
        )
    })?;
    let request = request_of(body)?;
    let prepared = md::prepare(request).map_err(|e| bad_request(&e))?;
    for f in prepared.fetches() {
        state
            .access
            .authorize_namespace(
                &caller.principal,
                Permission::ReadMetrics,
                &f.stat.metric.namespace,
            )
            .map_err(|denied| ApiError::Forbidden(denied.to_string()))?;
    }
    // Every statistic query is checked and costed first; the request passes the query gate
    // once, for their summed cost, and runs with its math off the async workers.
    let now = state.clock.now();
    let mut cost = 0u64;
    for f in prepared.fetches() {
        let query = f.store_query().map_err(|e| bad_request(&[e]))?;
        let plan = query
            .plan(now)
            .map_err(|e| bad_request(&[f.store_error(&e)]))?;
        cost = cost.saturating_add(plan.cost);
    }
    let answer = run_queries(&state, "MetricDataQueries", cost, move |store| {
        let source = StoreSource { store, now };
        let fetched = prepared
            .fetches()
            .iter()
            .map(|f| source.fetch(f))
            .collect::<Result<Vec<_>, _>>()?;
        prepared.answer(fetched, &NoBands)
    })
    .await?
    .map_err(|e| bad_request(&[e]))?;
    Ok(Json(response_json(&answer)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt as _;
    use thermostat_metrics::store::{Observation, Resolution, Sample};
    use thermostat_metrics::{ManualClock, SeriesKey, Store, Telemetry, Unit};
    use tower::ServiceExt as _;

    use crate::ApiState;

    fn state() -> ApiState {
        let store = Store::new(1);
        let mut batch = Vec::new();
        for (minute, errors, requests) in [(0, 1.0, 10.0), (1, 2.0, 10.0), (2, 3.0, 20.0)] {
            for (name, value) in [("errors", errors), ("requests", requests)] {
                batch.push((
                    SeriesKey::new("App", name, vec![]),
                    Observation {
                        timestamp: thermostat_metrics::Timestamp::from_secs(60 * minute),
                        unit: Unit::Count,
                        resolution: Resolution::Standard,
                        sample: Sample::Value(value),
                    },
                ));
            }
        }
        store.record_batch(&batch);
        ApiState {
            store: Arc::new(store),
            telemetry: Arc::new(Telemetry::new()),
            clock: Arc::new(ManualClock::new(thermostat_metrics::Timestamp::from_secs(
                600,
            ))),
            ready: Arc::new(AtomicBool::new(true)),
            alarms: None,
            groups: None,
            notifications: None,
            admin: None,
            queries: Default::default(),
            access: Arc::new(thermostat_auth::Access::open()),
            audit: None,
            otlp: None,
            remote_write: None,
            cloudwatch: None,
            cluster: None,
        }
    }

    async fn post(body: String) -> (StatusCode, serde_json::Value) {
        let req = Request::post("/api/v1/metric-data")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let resp = crate::router(state()).oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    fn metric(id: &str, name: &str) -> String {
        format!(
            r#"{{"Id":"{id}","MetricStat":{{"Metric":{{"Namespace":"App","MetricName":"{name}"}},"Period":60,"Stat":"Sum"}},"ReturnData":false}}"#
        )
    }

    #[tokio::test]
    async fn an_expression_is_charted_from_json() {
        let body = format!(
            r#"{{"MetricDataQueries":[{},{},{{"Id":"e","Expression":"m1/m2*100","Label":"error rate"}}],"StartTime":"1970-01-01T00:00:00Z","EndTime":300,"ScanBy":"TimestampAscending"}}"#,
            metric("m1", "errors"),
            metric("m2", "requests")
        );
        let (status, json) = post(body).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        let r = &json["MetricDataResults"][0];
        assert_eq!(r["Id"], "e");
        assert_eq!(r["Label"], "error rate");
        assert_eq!(r["Timestamps"], json!([0, 60, 120]));
        assert_eq!(r["Values"], json!([10.0, 20.0, 15.0]));
        assert_eq!(r["StatusCode"], "Complete");
    }

    #[tokio::test]
    async fn a_broken_expression_is_a_400_naming_the_query_and_position() {
        let body = format!(
            r#"{{"MetricDataQueries":[{},{{"Id":"e","Expression":"m1 +* 2"}}],"StartTime":0,"EndTime":300}}"#,
            metric("m1", "errors")
        );
        let (status, json) = post(body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
        assert_eq!(
            json["error"]["field"],
            "MetricDataQueries.member.2.Expression"
        );
        assert!(
            json["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("1:5: syntax"),
            "{json}"
        );
    }

    use serde_json::json;
}
