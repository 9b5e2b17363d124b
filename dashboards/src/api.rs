//! JSON endpoints over the store: statistics and series.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query as Params, State};
use serde_json::{Map, Value, json};
use thermostat_metrics::time::HOUR_MS;
use thermostat_metrics::{Dimension, Period, Query, SeriesKey, Statistic, Timestamp, Unit};

use crate::ApiState;
use crate::error::ApiError;

/// Parses a time given as RFC 3339 or as Unix seconds (fractions allowed).
///
/// # Errors
/// A 400 naming `field`.
pub fn parse_time(field: &str, s: &str) -> Result<Timestamp, ApiError> {
    if let Ok(secs) = s.parse::<f64>()
        && secs.is_finite()
    {
        return Ok(Timestamp::from_millis((secs * 1000.0).round() as i64));
    }
    s.parse::<jiff::Timestamp>()
        .map(|t| Timestamp::from_millis(t.as_millisecond()))
        .map_err(|_| {
            ApiError::bad_request(
                field,
                format!("must be an RFC 3339 time or Unix seconds (got {s:?})"),
            )
        })
}

/// Parses `Name=Value,Name2=Value2`.
///
/// # Errors
/// A 400 for `dimensions`.
pub fn parse_dimensions(s: &str) -> Result<Vec<Dimension>, ApiError> {
    s.split(',')
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

fn required<'a>(p: &'a HashMap<String, String>, field: &str) -> Result<&'a str, ApiError> {
    p.get(field)
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request(field, "is required"))
}

/// `GET /api/v1/statistics`.
pub(crate) async fn statistics(
    State(state): State<ApiState>,
    Params(p): Params<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    let namespace = required(&p, "namespace")?;
    let metric_name = required(&p, "metric_name")?;
    let dimensions = parse_dimensions(p.get("dimensions").map_or("", String::as_str))?;
    let end = match p.get("end") {
        Some(s) => parse_time("end", s)?,
        None => now,
    };
    let start = match p.get("start") {
        Some(s) => parse_time("start", s)?,
        None => end.sub_millis(HOUR_MS),
    };
    let period_secs: i64 = p
        .get("period_seconds")
        .map_or(Ok(60), |s| s.parse())
        .map_err(|_| {
            ApiError::bad_request("period_seconds", "must be a whole number of seconds")
        })?;
    let period = Period::try_from_secs(period_secs)
        .map_err(|r| ApiError::bad_request("period_seconds", r))?;
    let statistics = p
        .get("statistics")
        .map_or("Average", String::as_str)
        .split(',')
        .map(|s| {
            s.parse::<Statistic>()
                .map_err(|e| ApiError::bad_request("statistics", e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let unit = match p.get("unit").map(String::as_str) {
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
    let points = state.store.query(&query, now).map_err(|e| {
        let field = if e.field == "end_time" {
            "end"
        } else {
            e.field
        };
        ApiError::bad_request(field, e.rule)
    })?;
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
    Ok(Json(json!({ "datapoints": datapoints })))
}

/// `GET /api/v1/metrics`.
pub(crate) async fn metrics(
    State(state): State<ApiState>,
    Params(p): Params<HashMap<String, String>>,
) -> Json<Value> {
    let pick = |k: &str| p.get(k).map(String::as_str).filter(|s| !s.is_empty());
    let list = state
        .store
        .list(pick("namespace"), pick("metric_name"), state.clock.now());
    let metrics: Vec<Value> = list
        .iter()
        .map(|k| {
            let dims: Map<String, Value> = k
                .dimensions()
                .iter()
                .map(|d| (d.name.clone(), json!(d.value)))
                .collect();
            json!({"namespace": k.namespace(), "metric_name": k.metric_name(), "dimensions": dims})
        })
        .collect();
    Json(json!({ "metrics": metrics }))
}
