//! Data for the web dashboard's pages: one JSON answer per page and refresh, so that what a
//! page shows is consistent and a poll costs one request.
//!
//! - `GET /api/v1/dashboard/overview?notifications=`: alarms, groups and recent
//!   notifications; a part that is not enabled on the server is `null`.
//! - `GET /api/v1/dashboard/alarms/{name}?range_seconds=&end=&history_limit=`: the alarm, its
//!   metric's datapoints over the range (at the alarm's period, or a multiple of it for long
//!   ranges) with the breaching ones flagged, the threshold(s), the state timeline derived
//!   from the history's state changes, and the history itself.
//! - `GET /api/v1/dashboard/groups/{name}?range_seconds=&end=`: the group, its capacity
//!   series from the store (`AWS/AutoScaling`, see [`group_metrics::CAPACITY_METRICS`]) and
//!   its activities.
//!
//! A chart requested without `range_seconds` gets a range fitted to its data (the last 15
//! minutes to the last hour, [`fitted_range_seconds`]), so that a fresh series fills it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query as Params, State};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use thermostat_alarms::rule::alarm_name_of;
use thermostat_alarms::{Alarm, CompositeAlarm};
use thermostat_metrics::time::SECOND_MS;
use thermostat_metrics::{Dimension, Period, Query, SeriesKey, Statistic, Store, Timestamp, Unit};
use thermostat_scaler::group_metrics;

use crate::ApiState;
use crate::alarms::{AlarmView, HistoryPage, HistoryQuery, engine, item_time, view_json};
use crate::api::parse_time;
use crate::error::ApiError;

/// The capacity series are recorded every 10 seconds.
const CAPACITY_PERIOD_SECONDS: u32 = 10;

/// At most this many periods per chart (the store allows 1440 per query).
pub const MAX_POINTS: i64 = 720;
const MIN_RANGE_SECONDS: i64 = 60;
const MAX_RANGE_SECONDS: i64 = 15 * 86_400;
const DEFAULT_RANGE_SECONDS: i64 = 3600;
/// The ranges a chart requested without `range_seconds` is fitted to, shortest first (see
/// [`fitted_range_seconds`]).
pub const FITTED_RANGES_SECONDS: [i64; 3] = [900, 1800, DEFAULT_RANGE_SECONDS];
/// History items (state changes and the creation in the chart's range, newest first) read to
/// derive the state timeline at most.
pub const TIMELINE_MAX_ITEMS: usize = 1_000;
/// History items on the alarm page by default.
pub const DEFAULT_HISTORY_LIMIT: usize = 50;
/// History items on the alarm page at most.
pub const MAX_HISTORY_LIMIT: usize = 100;
/// Instances listed on a per-series alarm's page at most.
pub const MAX_INSTANCES: usize = 1_000;
/// Alarms in the overview at most (those in ALARM first, then INSUFFICIENT_DATA, then OK).
pub const MAX_OVERVIEW_ALARMS: usize = 500;
/// Notifications in the overview at most.
pub const MAX_OVERVIEW_NOTIFICATIONS: usize = 100;
/// Periods a chart may use, shortest first.
const NICE_PERIODS: [u32; 17] = [
    1, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400,
];
/// One-second data older than 3 hours is rolled up into minutes; ranges reaching back further
/// than this (with a margin) are drawn at whole minutes.
const SUB_MINUTE_HORIZON_SECONDS: i64 = 2 * 3600 + 30 * 60;

/// The period a chart uses: the smallest of [`NICE_PERIODS`] that is a multiple of `base`
/// (the alarm's period) and gives at most [`MAX_POINTS`] periods over `range_seconds`, in
/// whole minutes when the range reaches back further than 1-second data is kept
/// (`oldest_age_seconds`).
pub fn display_period(base: u32, range_seconds: i64, oldest_age_seconds: i64) -> u32 {
    let base = base.max(1);
    let step = if oldest_age_seconds > SUB_MINUTE_HORIZON_SECONDS {
        lcm(base, 60)
    } else {
        base
    };
    let fits =
        |p: u32| p.is_multiple_of(step) && div_ceil(range_seconds, i64::from(p)) <= MAX_POINTS;
    NICE_PERIODS
        .iter()
        .copied()
        .find(|&p| fits(p))
        .unwrap_or_else(|| {
            let per_point = div_ceil(range_seconds, MAX_POINTS).max(1);
            let steps = div_ceil(per_point, i64::from(step));
            u32::try_from(steps)
                .ok()
                .and_then(|s| s.checked_mul(step))
                .unwrap_or(u32::MAX - u32::MAX % step)
        })
}

/// `⌈a / b⌉` for `a ≥ 0`, `b > 0` (`i64::div_ceil` is not stable).
fn div_ceil(a: i64, b: i64) -> i64 {
    (a + b - 1) / b
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn lcm(a: u32, b: u32) -> u32 {
    a / gcd(a, b) * b
}

/// The range of a chart requested without `range_seconds`, from the age of its oldest
/// datapoint in the last hour (`None`: no data there): the shortest of
/// [`FITTED_RANGES_SECONDS`] that holds it, so that a fresh series fills the chart instead of
/// its right edge; the last hour when there are no data.
pub fn fitted_range_seconds(oldest_age_seconds: Option<i64>) -> i64 {
    oldest_age_seconds
        .and_then(|age| FITTED_RANGES_SECONDS.into_iter().find(|&r| age <= r))
        .unwrap_or(DEFAULT_RANGE_SECONDS)
}

/// The fitted range (its length and the range) of a chart requested without `range_seconds`,
/// from its series as read over the default range `range` (the last hour).
///
/// # Errors
/// A 400 for an unreadable `end`.
fn fitted(
    range: &ChartRange,
    series: &[&[(Timestamp, f64)]],
    end: Option<&str>,
    now: Timestamp,
    base_seconds: u32,
) -> Result<(i64, ChartRange), ApiError> {
    let oldest = series
        .iter()
        .filter_map(|s| s.first())
        .map(|(t, _)| *t)
        .min();
    let age = oldest.map(|t| div_ceil((range.end.as_millis() - t.as_millis()).max(0), SECOND_MS));
    let secs = fitted_range_seconds(age);
    Ok((
        secs,
        ChartRange::try_new(Some(secs), end, now, base_seconds)?,
    ))
}

/// `range_seconds` and `end` of a chart request.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RangeParams {
    range_seconds: Option<i64>,
    end: Option<String>,
    history_limit: Option<usize>,
}

/// The time range of a chart: `[start, end)` in periods of `period`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChartRange {
    /// The first period's start (aligned to the period).
    pub start: Timestamp,
    /// The end (the request's, or now).
    pub end: Timestamp,
    /// The chart's period.
    pub period: Period,
}

impl ChartRange {
    /// The range of `range_seconds` ending at `end` (default `now`), in periods that are
    /// multiples of `base_seconds`.
    ///
    /// # Errors
    /// A 400 for `range_seconds` out of bounds or an unreadable `end`.
    pub fn try_new(
        range_seconds: Option<i64>,
        end: Option<&str>,
        now: Timestamp,
        base_seconds: u32,
    ) -> Result<ChartRange, ApiError> {
        let secs = range_seconds.unwrap_or(DEFAULT_RANGE_SECONDS);
        if !(MIN_RANGE_SECONDS..=MAX_RANGE_SECONDS).contains(&secs) {
            return Err(ApiError::bad_request(
                "range_seconds",
                format!("must be {MIN_RANGE_SECONDS} to {MAX_RANGE_SECONDS} seconds (got {secs})"),
            ));
        }
        let end = match end {
            Some(s) => parse_time("end", s)?,
            None => now,
        };
        let oldest_age = (now.as_millis() - end.as_millis()) / SECOND_MS + secs;
        let period = display_period(base_seconds, secs, oldest_age);
        let period = Period::try_from_secs(i64::from(period))
            .map_err(|r| ApiError::bad_request("range_seconds", r))?;
        let start = end
            .sub_millis(secs * SECOND_MS)
            .floor_to(period.as_millis());
        Ok(ChartRange { start, end, period })
    }

    fn json(&self) -> Value {
        json!({
            "start": self.start.to_rfc3339(),
            "end": self.end.to_rfc3339(),
            "period_seconds": self.period.as_secs(),
        })
    }
}

/// One value per period of a series (the first unit's where a period holds several).
///
/// # Errors
/// A 400 when the store refuses the query.
pub fn series_values(
    store: &Store,
    key: SeriesKey,
    statistic: Statistic,
    unit: Option<Unit>,
    range: &ChartRange,
    now: Timestamp,
) -> Result<Vec<(Timestamp, f64)>, ApiError> {
    let query = Query {
        key,
        unit,
        start: range.start,
        end: range.end,
        period: range.period,
        statistics: vec![statistic],
    };
    let points = store
        .query(&query, now)
        .map_err(|e| ApiError::bad_request(e.field, e.rule))?;
    let mut out: Vec<(Timestamp, f64)> = Vec::with_capacity(points.len());
    for dp in points {
        if let Some(Some(v)) = dp.values.first()
            && out.last().is_none_or(|(t, _)| *t != dp.timestamp)
        {
            out.push((dp.timestamp, *v));
        }
    }
    Ok(out)
}

/// [`series_values`] on the shared query pool (`crate::api::run_queries`), off the async
/// workers and within `--max-query-cost`.
///
/// # Errors
/// A 400 when the store refuses the query or it costs too much, a 429 when the query pool
/// is full.
async fn pooled_series_values(
    state: &ApiState,
    key: SeriesKey,
    statistic: Statistic,
    unit: Option<Unit>,
    range: &ChartRange,
    now: Timestamp,
) -> Result<Vec<(Timestamp, f64)>, ApiError> {
    let range = *range;
    let plan = Query {
        key: key.clone(),
        unit,
        start: range.start,
        end: range.end,
        period: range.period,
        statistics: vec![statistic.clone()],
    }
    .plan(now)
    .map_err(|e| ApiError::bad_request(e.field, e.rule))?;
    crate::api::run_queries(state, "range_seconds", plan.cost, move |store| {
        series_values(store, key, statistic, unit, &range, now)
    })
    .await?
}

/// A state change read from an alarm's history.
#[derive(Clone, Debug, PartialEq)]
pub struct StateChange {
    /// When.
    pub at: Timestamp,
    /// From.
    pub old: String,
    /// To.
    pub new: String,
}

/// The `StateUpdate` items of a history (newest first, as the API answers it), oldest first.
pub fn state_changes(history: &[Value]) -> Vec<StateChange> {
    let mut out: Vec<StateChange> = history
        .iter()
        .filter(|i| i["item_type"] == "StateUpdate")
        .filter_map(|i| {
            Some(StateChange {
                at: item_time(&i["timestamp"])?,
                old: i["data"]["oldState"]["stateValue"].as_str()?.to_owned(),
                new: i["data"]["newState"]["stateValue"].as_str()?.to_owned(),
            })
        })
        .collect();
    out.sort_by_key(|c| c.at);
    out
}

/// When the alarm was created, if its history says so.
fn created_at(history: &[Value]) -> Option<Timestamp> {
    history
        .iter()
        .filter(|i| i["item_type"] == "ConfigurationUpdate" && i["data"]["change"] == "created")
        .filter_map(|i| item_time(&i["timestamp"]))
        .max()
}

/// A stretch of time in one state.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// Start (included).
    pub start: Timestamp,
    /// End (excluded).
    pub end: Timestamp,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
}

/// The states over `[start, end)` from the state changes (oldest first) and the current
/// state, beginning no earlier than `since` (the alarm's creation). Adjacent stretches have
/// different states.
pub fn timeline(
    changes: &[StateChange],
    current: &str,
    since: Option<Timestamp>,
    start: Timestamp,
    end: Timestamp,
) -> Vec<Segment> {
    let first = since.map_or(start, |s| s.max(start));
    if first >= end {
        return Vec::new();
    }
    let mut state = match changes.iter().rev().find(|c| c.at <= first) {
        Some(c) => c.new.clone(),
        None => changes
            .iter()
            .find(|c| c.at > first)
            .map_or_else(|| current.to_owned(), |c| c.old.clone()),
    };
    let mut out = Vec::new();
    let mut from = first;
    for c in changes.iter().filter(|c| c.at > first && c.at < end) {
        if c.new == state {
            continue;
        }
        if c.at > from {
            push(&mut out, from, c.at, std::mem::take(&mut state));
            from = c.at;
        }
        state.clone_from(&c.new);
    }
    push(&mut out, from, end, state);
    out
}

/// Appends a stretch, extending the last one when it is in the same state.
fn push(out: &mut Vec<Segment>, start: Timestamp, end: Timestamp, state: String) {
    match out.last_mut() {
        Some(last) if last.state == state && last.end == start => last.end = end,
        _ => out.push(Segment { start, end, state }),
    }
}

fn dimensions_json(dimensions: &[Dimension]) -> Value {
    Value::Object(
        dimensions
            .iter()
            .map(|d| (d.name.to_owned(), json!(d.value)))
            .collect::<Map<String, Value>>(),
    )
}

/// The series of a metric alarm or per-series instance: the alarm's own, or the matching
/// series whose instance name is `name`.
fn alarm_series(store: &Store, alarm: &Alarm, name: &str) -> Option<SeriesKey> {
    if !alarm.is_per_series() {
        return Some(SeriesKey::new(
            alarm.namespace.as_str(),
            alarm.metric_name.as_str(),
            alarm.dimensions.clone(),
        ));
    }
    store
        .matching(&alarm.namespace, &alarm.metric_name, &alarm.dimensions)
        .into_iter()
        .find(|k| alarm.instance_name(k) == name)
}

/// The view of a per-series alarm that has instances (the engine lists only the instances
/// then): its state as composites see it — ALARM if any instance is, else INSUFFICIENT_DATA
/// if any instance is, else OK — and the instances' configuration.
fn per_series_view(all: &[AlarmView], name: &str) -> Option<AlarmView> {
    let prefix = format!("{name}[");
    let instances: Vec<&AlarmView> = all
        .iter()
        .filter(|v| v.name.starts_with(&prefix) && v.configuration["name"] == name)
        .collect();
    let first = instances.first()?;
    let count = |s: &str| instances.iter().filter(|v| v.state == s).count();
    let state = if count("ALARM") > 0 {
        "ALARM"
    } else if count("INSUFFICIENT_DATA") > 0 {
        "INSUFFICIENT_DATA"
    } else {
        "OK"
    };
    Some(AlarmView {
        name: name.to_owned(),
        kind: "metric",
        state: state.to_owned(),
        reason: format!(
            "{}: {} in ALARM, {} OK, {} with insufficient data.",
            crate::error::count(instances.len(), "instance"),
            count("ALARM"),
            count("OK"),
            count("INSUFFICIENT_DATA")
        ),
        reason_data: None,
        state_updated: instances
            .iter()
            .filter_map(|v| item_time(&json!(v.state_updated)))
            .max()
            .map(Timestamp::to_rfc3339)
            .unwrap_or_default(),
        configuration: first.configuration.clone(),
    })
}

/// The overview's alarms: at most [`MAX_OVERVIEW_ALARMS`], those in ALARM first, then
/// INSUFFICIENT_DATA, then OK, listed by name, without their configuration and reason data
/// (the overview does not show them); and the count of each state over every alarm.
fn overview_alarms(mut all: Vec<AlarmView>) -> (Vec<Value>, Value) {
    let count = |s: &str| all.iter().filter(|v| v.state == s).count();
    let counts = json!({
        "total": all.len(),
        "ALARM": count("ALARM"),
        "OK": count("OK"),
        "INSUFFICIENT_DATA": count("INSUFFICIENT_DATA"),
    });
    let rank = |v: &AlarmView| match v.state.as_str() {
        "ALARM" => 0,
        "INSUFFICIENT_DATA" => 1,
        _ => 2,
    };
    if all.len() > MAX_OVERVIEW_ALARMS {
        all.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.name.cmp(&b.name)));
        all.truncate(MAX_OVERVIEW_ALARMS);
        all.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let alarms = all
        .iter()
        .map(|v| {
            let mut j = view_json(v);
            if let Some(o) = j.as_object_mut() {
                o.remove("configuration");
                o.remove("reason_data");
            }
            j
        })
        .collect();
    (alarms, counts)
}

#[derive(Deserialize)]
pub(crate) struct OverviewParams {
    notifications: Option<usize>,
}

/// `GET /api/v1/dashboard/overview?notifications=`.
pub(crate) async fn overview(
    State(state): State<ApiState>,
    Params(params): Params<OverviewParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = params
        .notifications
        .unwrap_or(20)
        .clamp(1, MAX_OVERVIEW_NOTIFICATIONS);
    // The groups' activities and the notifications are read from their databases.
    tokio::task::spawn_blocking(move || {
        let listed = state.alarms.as_ref().map(|a| overview_alarms(a.list()));
        let groups = state.groups.as_ref().map(|g| g.list());
        let notifications = state.notifications.as_ref().map(|n| n.recent(limit));
        let (alarms, counts) = listed.unzip();
        Json(json!({
            "now": state.clock.now().to_rfc3339(),
            "alarms": alarms,
            "alarm_counts": counts,
            "groups": groups,
            "notifications": notifications,
        }))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))
}

/// `GET /api/v1/dashboard/alarms/{name}?range_seconds=&end=&history_limit=`.
pub(crate) async fn alarm(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Params(params): Params<RangeParams>,
) -> Result<Json<Value>, ApiError> {
    let api = Arc::clone(engine(&state)?);
    let now = state.clock.now();
    let all = api.list();
    let base;
    let view = match all.iter().find(|v| v.name == name) {
        Some(v) => v,
        None => {
            base = per_series_view(&all, &name)
                .ok_or_else(|| ApiError::NotFound(format!("no alarm named {name:?}")))?;
            &base
        }
    };
    // A per-series alarm with instances has no history of its own: its instances do.
    let own = all.iter().any(|v| v.name == name);
    let (range, mut body) = match view.kind {
        "composite" => composite_view(view, &all, &params, now)?,
        _ => metric_view(&state, view, &all, &params, now).await?,
    };
    let limit = match params.history_limit {
        None => DEFAULT_HISTORY_LIMIT,
        Some(n) if (1..=MAX_HISTORY_LIMIT).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::bad_request(
                "history_limit",
                format!("must be from 1 to {MAX_HISTORY_LIMIT} (got {n})"),
            ));
        }
    };
    // Two bounded reads: the newest items for the table, and the state changes in the range
    // (with the creation, if it is in the range) for the timeline.
    let (history, changes_read) = if own {
        let (api, name) = (Arc::clone(&api), name.clone());
        let newest = HistoryQuery {
            max_records: limit,
            without_reason_data: true,
            ..HistoryQuery::default()
        };
        let in_range = HistoryQuery {
            max_records: TIMELINE_MAX_ITEMS,
            start: Some(range.start),
            end: Some(range.end),
            item_types: vec!["StateUpdate".into(), "ConfigurationUpdate".into()],
            without_reason_data: true,
            ..HistoryQuery::default()
        };
        tokio::task::spawn_blocking(move || {
            Ok::<_, ApiError>((
                api.history_page(&name, &newest)?,
                api.history_page(&name, &in_range)?,
            ))
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??
    } else {
        (HistoryPage::default(), HistoryPage::default())
    };
    let changes = state_changes(&changes_read.items);
    let segments = if own {
        timeline(
            &changes,
            &view.state,
            created_at(&changes_read.items),
            range.start,
            range.end,
        )
    } else {
        Vec::new()
    };
    body["timeline"] = segments
        .iter()
        .map(
            |s| json!({"start": s.start.to_rfc3339(), "end": s.end.to_rfc3339(), "state": s.state}),
        )
        .collect();
    body["timeline_complete"] = json!(changes_read.next_token.is_none());
    body["history_more"] = json!(history.next_token.is_some());
    body["history"] = Value::Array(history.items);
    body["now"] = json!(now.to_rfc3339());
    body["alarm"] = view_json(view);
    body["kind"] = json!(view.kind);
    Ok(Json(body))
}

async fn metric_view(
    state: &ApiState,
    view: &AlarmView,
    all: &[AlarmView],
    params: &RangeParams,
    now: Timestamp,
) -> Result<(ChartRange, Value), ApiError> {
    let alarm: Alarm = serde_json::from_value(view.configuration.clone())
        .map_err(|e| ApiError::Internal(format!("alarm {:?}: {e}", view.name)))?;
    let mut range = ChartRange::try_new(
        params.range_seconds,
        params.end.as_deref(),
        now,
        alarm.period.as_secs(),
    )?;
    let key = alarm_series(&state.store, &alarm, &view.name);
    let read = async |range: &ChartRange| match &key {
        Some(k) => {
            pooled_series_values(
                state,
                k.clone(),
                alarm.statistic.clone(),
                alarm.unit,
                range,
                now,
            )
            .await
        }
        None => Ok(Vec::new()),
    };
    let mut points = read(&range).await?;
    let mut range_seconds = params.range_seconds.unwrap_or(DEFAULT_RANGE_SECONDS);
    if params.range_seconds.is_none() {
        let (secs, fit) = fitted(
            &range,
            &[&points],
            params.end.as_deref(),
            now,
            alarm.period.as_secs(),
        )?;
        if fit.period == range.period {
            points.retain(|(t, _)| *t >= fit.start);
        } else {
            points = read(&fit).await?;
        }
        (range, range_seconds) = (fit, secs);
    }
    let datapoints: Vec<Value> = points
        .iter()
        .map(|(t, v)| {
            json!({
                "timestamp": t.to_rfc3339(),
                "value": v,
                "breaching": alarm.comparison_operator.breaches(*v, alarm.threshold),
            })
        })
        .collect();
    let dimensions = key
        .as_ref()
        .map_or_else(|| alarm.dimensions.clone(), |k| k.dimensions().to_vec());
    let instance_prefix = format!("{}[", alarm.name);
    let mut instances_total = 0usize;
    let instances: Vec<Value> = if alarm.is_per_series() && view.name == alarm.name {
        all.iter()
            .filter(|v| v.name.starts_with(&instance_prefix))
            .inspect(|_| instances_total += 1)
            .take(MAX_INSTANCES)
            .map(|v| json!({"name": v.name, "state": v.state}))
            .collect()
    } else {
        Vec::new()
    };
    let mut body = range.json();
    body["metric"] = json!({
        "namespace": alarm.namespace,
        "metric_name": alarm.metric_name,
        "dimensions": dimensions_json(&dimensions),
        "statistic": alarm.statistic.name(),
        "unit": alarm.unit.map(|u| u.as_str()),
        "period_seconds": alarm.period.as_secs(),
    });
    body["threshold"] = json!(alarm.threshold);
    body["ok_threshold"] = json!(alarm.ok_threshold);
    body["comparison_operator"] = json!(alarm.comparison_operator.as_str());
    body["datapoints"] = Value::Array(datapoints);
    body["instances"] = Value::Array(instances);
    body["instances_total"] = json!(instances_total);
    body["rule"] = Value::Null;
    body["range_seconds"] = json!(range_seconds);
    body["range_fitted"] = json!(params.range_seconds.is_none());
    Ok((range, body))
}

fn composite_view(
    view: &AlarmView,
    all: &[AlarmView],
    params: &RangeParams,
    now: Timestamp,
) -> Result<(ChartRange, Value), ApiError> {
    let composite: CompositeAlarm = serde_json::from_value(view.configuration.clone())
        .map_err(|e| ApiError::Internal(format!("alarm {:?}: {e}", view.name)))?;
    let range = ChartRange::try_new(params.range_seconds, params.end.as_deref(), now, 1)?;
    let children: Vec<Value> = composite
        .rule
        .references()
        .into_iter()
        .map(|r| {
            let name = alarm_name_of(r);
            let state = all
                .iter()
                .find(|v| v.name == name)
                .map(|v| v.state.clone())
                .or_else(|| per_series_view(all, name).map(|v| v.state));
            json!({"name": name, "state": state})
        })
        .collect();
    let mut body = range.json();
    body["metric"] = Value::Null;
    body["datapoints"] = json!([]);
    body["instances"] = json!([]);
    body["rule"] = json!({"text": composite.rule_text, "alarms": children});
    body["range_seconds"] = json!(params.range_seconds.unwrap_or(DEFAULT_RANGE_SECONDS));
    body["range_fitted"] = json!(false);
    Ok((range, body))
}

/// `GET /api/v1/dashboard/groups/{name}?range_seconds=&end=`.
pub(crate) async fn group(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Params(params): Params<RangeParams>,
) -> Result<Json<Value>, ApiError> {
    let api = Arc::clone(crate::actions::groups(&state)?);
    let now = state.clock.now();
    // The group's activities are read from its database.
    let (group, mut activities) = {
        let name = name.clone();
        tokio::task::spawn_blocking(move || {
            let group = api.list().into_iter().find(|g| g["name"] == name.as_str());
            (group, api.activities(&name, 200).unwrap_or_default())
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
    };
    let group =
        group.ok_or_else(|| ApiError::NotFound(format!("no scaling group named {name:?}")))?;
    let mut range = ChartRange::try_new(
        params.range_seconds,
        params.end.as_deref(),
        now,
        CAPACITY_PERIOD_SECONDS,
    )?;
    let dimensions = vec![Dimension::new(
        group_metrics::GROUP_DIMENSION,
        name.as_str(),
    )];
    let read = async |range: &ChartRange| {
        let mut all = Vec::with_capacity(group_metrics::CAPACITY_METRICS.len());
        for metric in group_metrics::CAPACITY_METRICS {
            let key = SeriesKey::new(group_metrics::NAMESPACE, metric, dimensions.clone());
            all.push(
                pooled_series_values(&state, key, Statistic::Maximum, None, range, now).await?,
            );
        }
        Ok::<_, ApiError>(all)
    };
    let mut series = read(&range).await?;
    let mut range_seconds = params.range_seconds.unwrap_or(DEFAULT_RANGE_SECONDS);
    if params.range_seconds.is_none() {
        let slices: Vec<&[(Timestamp, f64)]> = series.iter().map(Vec::as_slice).collect();
        let (secs, fit) = fitted(
            &range,
            &slices,
            params.end.as_deref(),
            now,
            CAPACITY_PERIOD_SECONDS,
        )?;
        if fit.period == range.period {
            for points in &mut series {
                points.retain(|(t, _)| *t >= fit.start);
            }
        } else {
            series = read(&fit).await?;
        }
        (range, range_seconds) = (fit, secs);
    }
    let mut capacity = Map::new();
    for (metric, points) in group_metrics::CAPACITY_METRICS.into_iter().zip(&series) {
        let points: Vec<Value> = points
            .iter()
            .map(|(t, v)| json!({"timestamp": t.to_rfc3339(), "value": v}))
            .collect();
        capacity.insert(metric.to_owned(), Value::Array(points));
    }
    for a in &mut activities {
        if let Some(t) = item_time(&a["timestamp"]) {
            a["time"] = json!(t.to_rfc3339());
        }
    }
    let mut body = range.json();
    body["now"] = json!(now.to_rfc3339());
    body["group"] = group;
    body["metric"] = json!({
        "namespace": group_metrics::NAMESPACE,
        "dimensions": dimensions_json(&dimensions),
        "statistic": "Maximum",
    });
    body["capacity"] = Value::Object(capacity);
    body["activities"] = Value::Array(activities);
    body["range_seconds"] = json!(range_seconds);
    body["range_fitted"] = json!(params.range_seconds.is_none());
    Ok(Json(body))
}

#[cfg(test)]
mod tests;
