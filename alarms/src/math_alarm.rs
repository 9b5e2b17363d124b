//! Metric-math and anomaly-detection alarms (reference §3.11, §3.12): what the engine
//! fetches for them, how their `metrics:` are evaluated into the alarm's datapoints, and
//! the series their anomaly models train on.
//!
//! At a tick, each `metric_stat` of the alarm is read from the store over the alarm's
//! evaluation range ([`crate::evaluator::plan`]) at the alarm's period; the query list is
//! evaluated ([`crate::math::evaluate_queries`]) and the returned series (the one query
//! with `return_data` that is not the band) becomes the alarm's datapoints, evaluated as any
//! alarm's (M of N, `treat_missing_data`). An anomaly-detection alarm also gets the band
//! `ANOMALY_DETECTION_BAND(m, k)` from the model of `(alarm or instance, m)` through
//! [`AnomalyModels`]; a model that has not seen enough data leaves the alarm
//! INSUFFICIENT_DATA with the model's reason.
//!
//! `"*"` dimensions: the instances of a per-series math alarm are the series matching its
//! first `metric_stat` with `"*"` dimensions; every `metric_stat`'s `"*"` values are the
//! instance's (validation makes them share the names).
//!
//! Models train on the banded query's series over the last 14 days at the alarm's period
//! (at least 60 s), computed like the alarm's own series ([`training_points`]).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use thermostat_metrics::{Datapoint, Dimension, Period, Query, SeriesKey, Store, Timestamp, Unit};

use crate::anomaly::{Model, TRAINING_WINDOW_MS};
use crate::error::{Error, Result};
use crate::evaluator;
use crate::math::{
    Bands, DEFAULT_MAX_COST, Func, NoBands, Node, Profile, QueryPlan, Series, Value,
    evaluate_queries, parse, plan_queries,
};
use crate::model::{Alarm, MetricStat};

/// The anomaly models an evaluation reads: the model of `(alarm or instance name, id of the
/// query the band is of)`, when one exists.
pub trait AnomalyModels {
    /// The model, if trained.
    fn model(&self, instance: &str, metric_id: &str) -> Option<&Model>;
}

/// No models (back-tests, or a runtime without anomaly-detection alarms).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoModels;

impl AnomalyModels for NoModels {
    fn model(&self, _: &str, _: &str) -> Option<&Model> {
        None
    }
}

impl AnomalyModels for BTreeMap<(String, String), Model> {
    fn model(&self, instance: &str, metric_id: &str) -> Option<&Model> {
        self.get(&(instance.to_owned(), metric_id.to_owned()))
    }
}

/// The ids whose series an anomaly alarm's `ANOMALY_DETECTION_BAND` expressions are of:
/// one model each per instance.
pub fn band_inputs(alarm: &Alarm) -> Vec<String> {
    let mut out = Vec::new();
    for m in &alarm.metrics {
        let Some(e) = m.expression.as_deref().and_then(|e| parse(e).ok()) else {
            continue;
        };
        if let Node::Call(Func::AnomalyDetectionBand, args) = &e.node
            && let Some(Node::Id(id)) = args.first().map(|a| &a.node)
            && !out.contains(id)
        {
            out.push(id.clone());
        }
    }
    out
}

/// The series a `metric_stat` reads for the instance `instance` (its `"*"` dimensions take
/// the instance's values).
pub fn metric_stat_key(ms: &MetricStat, instance: &SeriesKey) -> SeriesKey {
    let dims: Vec<Dimension> = ms
        .dimensions
        .iter()
        .map(|d| {
            if d.value == "*" {
                Dimension::new(d.name.as_str(), instance.dimension(&d.name).unwrap_or("*"))
            } else {
                d.clone()
            }
        })
        .collect();
    SeriesKey::new(ms.namespace.as_str(), ms.metric_name.as_str(), dims)
}

/// The key that stands for a math alarm (or per-series instance): its first `metric_stat`'s
/// series (with `"*"` kept for a per-series alarm, whose instances have a matching key).
pub fn alarm_key(alarm: &Alarm) -> SeriesKey {
    alarm.math_series_key()
}

/// The first `metric_stat` with `"*"` dimensions: its matching series are the instances.
fn wildcard_stat(alarm: &Alarm) -> Option<&MetricStat> {
    alarm.wildcard_stat()
}

/// The series matching a per-series math alarm (one instance each).
pub fn matching(alarm: &Alarm, store: &Store) -> Vec<SeriesKey> {
    match wildcard_stat(alarm) {
        Some(ms) => store.matching(&ms.namespace, &ms.metric_name, &ms.dimensions),
        None => Vec::new(),
    }
}

/// Whether `key` is the series of an instance of the per-series math alarm.
pub fn key_matches(alarm: &Alarm, key: &SeriesKey) -> bool {
    wildcard_stat(alarm).is_some_and(|ms| {
        key.namespace() == ms.namespace
            && key.metric_name() == ms.metric_name
            && key.dimensions().len() == ms.dimensions.len()
            && ms.dimensions.iter().all(|d| {
                key.dimension(&d.name)
                    .is_some_and(|v| d.value == "*" || v == d.value)
            })
    })
}

/// The alarm's query list, planned (validation has checked it; `None` if it no longer
/// plans, which cannot happen for a validated alarm).
pub fn query_plan(alarm: &Alarm) -> Option<QueryPlan> {
    let queries = alarm.metrics.iter().map(|m| m.query()).collect();
    plan_queries(
        queries,
        Profile::Alarm {
            threshold_metric_id: alarm.threshold_metric_id.as_deref(),
        },
    )
    .ok()
}

/// What a math alarm's evaluation at a tick gives the evaluator.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MathOutcome {
    /// The returned series as datapoints (one value each, unit `None`).
    pub datapoints: Vec<Datapoint>,
    /// `(period start, lower, upper)` of an anomaly alarm's band.
    pub bands: Vec<(Timestamp, f64, f64)>,
    /// Why there is nothing to evaluate (a model without enough data, a failed expression).
    pub insufficient: Option<String>,
    /// Whether any `metric_stat` had data in the range (a new per-series instance starts
    /// then).
    pub has_data: bool,
}

/// The series of every `metric_stat` of the alarm for `instance`, over `[start, end)` at
/// `period`.
fn fetch(
    alarm: &Alarm,
    name: &str,
    instance: &SeriesKey,
    store: &Store,
    range: (Timestamp, Timestamp),
    period: Period,
    now: Timestamp,
) -> Result<HashMap<String, Series>> {
    let mut out = HashMap::new();
    for (id, ms) in alarm.metric_stats() {
        let q = Query {
            key: metric_stat_key(ms, instance),
            unit: ms.unit,
            start: range.0,
            end: range.1,
            period,
            statistics: vec![ms.statistic.clone()],
        };
        let dps = store.query(&q, now).map_err(|e| Error::Query {
            alarm: name.to_owned(),
            message: e.to_string(),
        })?;
        let points = dps
            .iter()
            .filter_map(|d| Some((d.timestamp, d.values.first().copied().flatten()?)))
            .collect();
        out.insert(id.to_owned(), Series::new(id, points));
    }
    Ok(out)
}

/// The bands of one evaluation, remembering why one failed.
struct ModelBands<'a> {
    models: &'a dyn AnomalyModels,
    instance: &'a str,
    failure: RefCell<Option<String>>,
}

impl Bands for ModelBands<'_> {
    fn band(
        &self,
        id: &str,
        series: &Series,
        k: f64,
    ) -> std::result::Result<(Series, Series), String> {
        let fail = |m: String| {
            *self.failure.borrow_mut() = Some(m.clone());
            Err(m)
        };
        let Some(model) = self.models.model(self.instance, id) else {
            return fail(format!(
                "the anomaly model of {id} has not been trained yet"
            ));
        };
        if let Some(why) = model.insufficient_data_reason() {
            return fail(why);
        }
        let mut lower = Vec::with_capacity(series.points.len());
        let mut upper = Vec::with_capacity(series.points.len());
        for &(t, _) in &series.points {
            if let Some((lo, hi)) = model.band(t, k) {
                lower.push((t, lo));
                upper.push((t, hi));
            }
        }
        Ok((Series::new("", lower), Series::new("", upper)))
    }
}

/// Evaluates a math alarm's queries for the instance `name` (series `instance`) at `now`:
/// the datapoints (and band) the evaluator compares.
///
/// # Errors
/// [`Error::Query`] when the store refuses a `metric_stat`'s query.
pub fn evaluate_metrics(
    alarm: &Alarm,
    name: &str,
    instance: &SeriesKey,
    store: &Store,
    models: &dyn AnomalyModels,
    now: Timestamp,
) -> Result<MathOutcome> {
    let Some(plan) = query_plan(alarm) else {
        return Ok(MathOutcome {
            insufficient: Some("the alarm's metrics do not plan.".into()),
            ..MathOutcome::default()
        });
    };
    let range = evaluator::plan(alarm, now);
    let data = fetch(
        alarm,
        name,
        instance,
        store,
        (range.start, range.end),
        alarm.period,
        now,
    )?;
    let has_data = data.values().any(|s| !s.points.is_empty());
    let bands = ModelBands {
        models,
        instance: name,
        failure: RefCell::new(None),
    };
    let results = match evaluate_queries(
        &plan,
        &|id: &str| data.get(id).cloned(),
        &bands,
        range.start,
        range.end,
        alarm.period.as_millis(),
        DEFAULT_MAX_COST,
    ) {
        Ok(r) => r,
        Err(e) => {
            let why = bands
                .failure
                .into_inner()
                .unwrap_or_else(|| format!("the metric math failed: {e}"));
            return Ok(MathOutcome {
                insufficient: Some(why),
                has_data,
                ..MathOutcome::default()
            });
        }
    };
    let band_id = alarm.threshold_metric_id.as_deref();
    let mut out = MathOutcome {
        has_data,
        ..MathOutcome::default()
    };
    for r in results {
        match (&r.value, Some(r.id.as_str()) == band_id) {
            (Value::Array(a), true) => {
                if let [upper, lower] = a.as_slice() {
                    out.bands = upper
                        .points
                        .iter()
                        .filter_map(|&(t, hi)| Some((t, lower.at(t)?, hi)))
                        .collect();
                }
            }
            (Value::Series(s), false) if r.return_data => {
                out.datapoints = s
                    .points
                    .iter()
                    .map(|&(t, v)| Datapoint {
                        timestamp: t,
                        unit: Unit::None,
                        sample_count: 1.0,
                        values: vec![Some(v)],
                    })
                    .collect();
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The points the model of `(instance, metric_id)` trains on at `now`: the query
/// `metric_id`'s series over the last 14 days ([`TRAINING_WINDOW_MS`]) at the alarm's
/// period (at least 60 s), computed like the alarm's own ([`query_series`]).
///
/// # Errors
/// [`Error::Query`] when the store refuses a query.
pub fn training_points(
    alarm: &Alarm,
    name: &str,
    instance: &SeriesKey,
    metric_id: &str,
    store: &Store,
    now: Timestamp,
) -> Result<Vec<(Timestamp, f64)>> {
    let period = if alarm.period.as_secs() < 60 {
        Period::ONE_MINUTE
    } else {
        alarm.period
    };
    let end = now.floor_to(60_000);
    let start = end
        .sub_millis(TRAINING_WINDOW_MS)
        .floor_to(period.as_millis());
    query_series(
        alarm,
        name,
        instance,
        Some(metric_id),
        store,
        (start, end),
        period,
        now,
    )
}

/// The series of one query of a math alarm's `metrics:` (`None`: the returned one, the
/// alarm's datapoints) for the instance `instance` over `[start, end)` at `period`, without
/// the band queries (what a chart of the alarm or a model's training reads). Read in slices of
/// at most 1,440 periods (the store's datapoints per query), each evaluated on its own.
///
/// # Errors
/// [`Error::Query`] when the store refuses a query.
#[allow(
    clippy::too_many_arguments,
    reason = "the alarm, the instance, the query, the store and the range: each needed"
)]
pub fn query_series(
    alarm: &Alarm,
    name: &str,
    instance: &SeriesKey,
    metric_id: Option<&str>,
    store: &Store,
    (start, end): (Timestamp, Timestamp),
    period: Period,
    now: Timestamp,
) -> Result<Vec<(Timestamp, f64)>> {
    let p = period.as_millis();
    let band = alarm.threshold_metric_id.as_deref();
    let wanted = match metric_id {
        Some(id) => id.to_owned(),
        None => match alarm
            .metrics
            .iter()
            .find(|m| m.return_data && Some(m.id.as_str()) != band)
        {
            Some(m) => m.id.clone(),
            None => return Ok(Vec::new()),
        },
    };
    // The queries that do not read a band, all returned.
    let queries: Vec<_> = alarm
        .metrics
        .iter()
        .filter(|m| {
            m.expression
                .as_deref()
                .is_none_or(|e| !e.contains("ANOMALY_DETECTION_BAND"))
        })
        .map(|m| {
            let mut q = m.query();
            q.return_data = true;
            q
        })
        .collect();
    let Ok(plan) = plan_queries(queries, Profile::GetMetricData) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let slice = 1440 * p;
    let mut from = start;
    while from < end {
        let to = Timestamp(from.as_millis().saturating_add(slice).min(end.as_millis()));
        let data = fetch(alarm, name, instance, store, (from, to), period, now)?;
        if let Ok(results) = evaluate_queries(
            &plan,
            &|id: &str| data.get(id).cloned(),
            &NoBands,
            from,
            to,
            p,
            DEFAULT_MAX_COST,
        ) && let Some(Value::Series(s)) = results
            .into_iter()
            .find(|r| r.id == wanted)
            .map(|r| r.value)
        {
            out.extend(s.points);
        }
        from = to;
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
