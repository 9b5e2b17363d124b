//! The metric alarm evaluator: a pure function of (alarm, previous state, datapoints,
//! now), implementing reference §3.3–§3.8 exactly.
//!
//! - **Ticks** (§3.3): every 60 s since the epoch, every 10 s for 10/20/30-second periods.
//!   The evaluation at tick `T` uses the periods ending at or before `T − delay`
//!   ([`window_end`]); periods of 60 s or more slide with the minute, shorter ones are
//!   aligned to their own length.
//! - **Evaluation range** (§3.5.2): `evaluation_range` periods are fetched; [`select`]
//!   picks the N newest real points, or every real point plus `N − real` fills.
//! - **Decision** (§3.4, §3.5.3): [`decide`] — M of N, each `TreatMissingData`, the
//!   premature-alarm rule, and when `ignore` keeps the state.
//! - **Low-sample percentiles** (§3.6): with `ignore`, an evaluated percentile datapoint
//!   with too few samples keeps the state.
//! - **Reasons** (§3.7): CloudWatch's templates and reason data.
//! - **Actions** (§3.8): on transitions only; Auto Scaling actions again once a minute
//!   while the state lasts.

use thermostat_metrics::{Datapoint, Query, SeriesKey, Statistic, Timestamp, Unit};

use crate::model::{Actions, Alarm, StateValue, TreatMissingData};
use crate::state::{
    ActionInvocation, AlarmState, EvaluatedDatapoint, Evaluation, MetricReasonData, ReasonData,
    Transition,
};
use crate::timefmt::{java_double, json_time, reason_time};

/// Tick spacing for an alarm: 10 s for periods under a minute, else 60 s.
pub fn tick_step_ms(alarm: &Alarm) -> i64 {
    if alarm.period.as_secs() < 60 {
        10_000
    } else {
        60_000
    }
}

/// Whether `t` is one of the alarm's evaluation ticks.
pub fn is_tick(alarm: &Alarm, t: Timestamp) -> bool {
    t.as_millis().rem_euclid(tick_step_ms(alarm)) == 0
}

/// The end (exclusive) of the newest period evaluated at tick `tick`.
pub fn window_end(alarm: &Alarm, tick: Timestamp) -> Timestamp {
    let t = tick.sub_millis(i64::from(alarm.evaluation_delay_seconds) * 1000);
    let p = alarm.period.as_millis();
    if p < 60_000 {
        t.floor_to(p)
    } else {
        t.floor_to(60_000)
    }
}

/// What to ask the metric store for before evaluating at a tick.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryPlan {
    /// Start of the oldest period of the evaluation range (inclusive).
    pub start: Timestamp,
    /// End of the newest period (exclusive).
    pub end: Timestamp,
    /// The statistic to ask for (the only one in the query).
    pub statistic: Statistic,
    /// Unit filter.
    pub unit: Option<Unit>,
}

/// The time range and statistic to query for `alarm` at `tick`.
pub fn plan(alarm: &Alarm, tick: Timestamp) -> QueryPlan {
    let end = window_end(alarm, tick);
    let start = end.sub_millis(i64::from(alarm.evaluation_range) * alarm.period.as_millis());
    QueryPlan {
        start,
        end,
        statistic: alarm.statistic.clone(),
        unit: alarm.unit,
    }
}

/// The series of a single-series alarm (its dimensions as written); for a math alarm, its
/// first `metric_stat`'s ([`Alarm::math_series_key`]).
pub fn series_key(alarm: &Alarm) -> SeriesKey {
    if alarm.is_math() {
        return alarm.math_series_key();
    }
    SeriesKey::new(
        alarm.namespace.as_str(),
        alarm.metric_name.as_str(),
        alarm.dimensions.clone(),
    )
}

/// The [`Query`] for `alarm` over `key` at `tick`, ready for `Store::query(&q, tick)`.
pub fn query(alarm: &Alarm, key: SeriesKey, tick: Timestamp) -> Query {
    let p = plan(alarm, tick);
    Query {
        key,
        unit: p.unit,
        start: p.start,
        end: p.end,
        period: alarm.period,
        statistics: vec![p.statistic],
    }
}

/// Fewest samples a percentile datapoint needs under `evaluate_low_sample_count_percentile:
/// ignore` (reference §3.6 / §7.4): `10 / (1 − p)` for p ≥ 0.5, `10 / p` below; `None` for
/// p0 and p100 and for other statistics.
pub fn min_samples(statistic: &Statistic) -> Option<f64> {
    let Statistic::Percentile(p) = statistic else {
        return None;
    };
    let rank = p.rank;
    if rank <= 0.0 || rank >= 100.0 {
        return None;
    }
    let raw = if rank >= 50.0 {
        1000.0 / (100.0 - rank)
    } else {
        1000.0 / rank
    };
    // Round away floating-point noise (99.9 → 10000, not 10000.000000000002).
    Some(((raw * 1e6).round() / 1e6).ceil())
}

/// The decision of one evaluation, before reasons are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Go to (or stay in) OK.
    Ok,
    /// Go to (or stay in) ALARM.
    Alarm,
    /// Go to (or stay in) INSUFFICIENT_DATA.
    InsufficientData,
    /// Keep the current state (`ignore`, or low-sample percentiles).
    Retain,
}

/// Which points of the range are evaluated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Indices (oldest first) of the real points evaluated.
    pub real: Vec<usize>,
    /// Indices of the missing slots that are filled, newest first.
    pub fills: Vec<usize>,
}

/// Chooses the evaluated points of a range (`slots` oldest first, `None` = missing), per
/// reference §3.5.2: with at least N real points, the N newest real points; otherwise every
/// real point plus `N − real` fills (the newest missing slots).
pub fn select(slots: &[Option<bool>], n: usize) -> Selection {
    let real: Vec<usize> = (0..slots.len()).filter(|&i| slots[i].is_some()).collect();
    if real.len() >= n {
        return Selection {
            real: real[real.len() - n..].to_vec(),
            fills: Vec::new(),
        };
    }
    let need = n - real.len();
    let fills = (0..slots.len())
        .rev()
        .filter(|&i| slots[i].is_none())
        .take(need)
        .collect();
    Selection { real, fills }
}

/// Decides the state from the breaching flags of a range (`slots` oldest first,
/// `Some(true)` = breaching, `None` = missing), per reference §3.4 and §3.5.3.
pub fn decide(slots: &[Option<bool>], n: usize, m: usize, tmd: TreatMissingData) -> Decision {
    let sel = select(slots, n);
    let breaching = sel.real.iter().filter(|&&i| slots[i] == Some(true)).count();
    let good = sel.real.len() - breaching;
    let fills = sel.fills.len();
    if fills == 0 {
        // Rule 1/2 of §3.5.2: N real points decide; TreatMissingData is not used.
        return if breaching >= m {
            Decision::Alarm
        } else {
            Decision::Ok
        };
    }
    match tmd {
        TreatMissingData::Breaching => {
            if breaching + fills >= m {
                Decision::Alarm
            } else {
                Decision::Ok
            }
        }
        TreatMissingData::NotBreaching => {
            if breaching >= m {
                Decision::Alarm
            } else {
                Decision::Ok
            }
        }
        TreatMissingData::Missing | TreatMissingData::Ignore => {
            if breaching >= m {
                return Decision::Alarm;
            }
            if good > 0 {
                return Decision::Ok;
            }
            let undecided = if tmd == TreatMissingData::Ignore {
                Decision::Retain
            } else {
                Decision::InsufficientData
            };
            if tmd == TreatMissingData::Ignore || sel.real.is_empty() {
                return undecided;
            }
            // Premature-alarm rule: every real point breaches, and the oldest is at least
            // M periods old (the newest slot being 1 period old).
            let oldest = sel.real[0];
            let age = slots.len() - oldest;
            if age >= m {
                Decision::Alarm
            } else {
                Decision::InsufficientData
            }
        }
    }
}

/// One slot of the evaluation range.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Point {
    value: f64,
    sample_count: f64,
    /// `(lower, upper)` of an anomaly alarm's band at this point.
    band: Option<(f64, f64)>,
}

/// What a metric-math or anomaly-detection alarm adds to its datapoints (see
/// [`evaluate_with`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extra<'a> {
    /// The band `(start of period, lower, upper)` of an anomaly-detection alarm, sorted by
    /// time, compared with the datapoint of the same period; a datapoint without a band
    /// counts as missing.
    pub bands: &'a [(Timestamp, f64, f64)],
    /// Why the datapoints cannot be evaluated (the anomaly model has not seen enough data,
    /// the expression failed): the alarm goes to INSUFFICIENT_DATA with this reason.
    pub insufficient: Option<&'a str>,
}

/// Evaluates `alarm` at `now` given the datapoints of its query (see [`query`]).
///
/// When `now` is not one of the alarm's ticks the state is returned unchanged with
/// `evaluated: false`, so that states change only on ticks.
pub fn evaluate(
    alarm: &Alarm,
    state: &AlarmState,
    datapoints: &[Datapoint],
    now: Timestamp,
) -> Evaluation {
    evaluate_with(alarm, state, datapoints, &Extra::default(), now)
}

/// [`evaluate`] for every kind of metric alarm: a metric-math alarm's datapoints are its
/// returned series (their `sample_count` is not reported), and an anomaly-detection alarm
/// compares each with `extra.bands` (reasons as reference §3.7: `Thresholds Crossed: …
/// lower thresholds [...] … upper thresholds [...]`).
pub fn evaluate_with(
    alarm: &Alarm,
    state: &AlarmState,
    datapoints: &[Datapoint],
    extra: &Extra<'_>,
    now: Timestamp,
) -> Evaluation {
    if !is_tick(alarm, now) {
        return Evaluation {
            state: state.clone(),
            transitions: Vec::new(),
            actions: Vec::new(),
            evaluated: false,
        };
    }
    let plan = plan(alarm, now);
    let p = alarm.period.as_millis();
    let r = alarm.evaluation_range as usize;
    let mut points: Vec<Option<Point>> = vec![None; r];
    let mut units: Vec<Unit> = Vec::new();
    for dp in datapoints {
        let off = dp.timestamp.as_millis() - plan.start.as_millis();
        if dp.timestamp < plan.start || dp.timestamp >= plan.end || off % p != 0 {
            continue;
        }
        if !units.contains(&dp.unit) {
            units.push(dp.unit);
        }
        let i = (off / p) as usize;
        // `bands` is sorted by time (as a series is).
        let band = extra
            .bands
            .binary_search_by_key(&dp.timestamp, |&(t, _, _)| t)
            .ok()
            .map(|i| (extra.bands[i].1, extra.bands[i].2));
        if alarm.is_anomaly() && band.is_none() {
            continue;
        }
        if let Some(v) = dp.values.first().copied().flatten() {
            points[i] = Some(Point {
                value: v,
                sample_count: dp.sample_count,
                band,
            });
        }
    }
    let in_alarm = state.value == StateValue::Alarm;
    let threshold_now = match alarm.ok_threshold {
        Some(ok) if in_alarm => ok,
        _ => alarm.threshold,
    };
    let slots: Vec<Option<bool>> = points
        .iter()
        .map(|pt| {
            pt.map(|pt| match pt.band {
                Some((lo, hi)) => alarm.comparison_operator.breaches_band(pt.value, lo, hi),
                None => alarm.comparison_operator.breaches(pt.value, threshold_now),
            })
        })
        .collect();
    let n = alarm.evaluation_periods as usize;
    let m = alarm.m() as usize;
    let sel = select(&slots, n);
    let mut decision = decide(&slots, n, m, alarm.treat_missing_data);
    let mut special_reason = None;
    if let Some(why) = extra.insufficient {
        decision = Decision::InsufficientData;
        special_reason = Some(format!("Insufficient Data: {why}"));
    } else if alarm.unit.is_none() && units.len() > 1 {
        decision = Decision::InsufficientData;
        let names: Vec<&str> = units.iter().map(|u| u.as_str()).collect();
        special_reason = Some(format!(
            "Insufficient Data: the metric has data in several units ({}); set unit on the alarm.",
            names.join(", ")
        ));
    } else if let (crate::model::LowSampleCount::Ignore, Some(min), false) = (
        alarm.evaluate_low_sample_count_percentile,
        min_samples(&alarm.statistic),
        alarm.is_math(),
    ) {
        {
            let low = sel
                .real
                .iter()
                .any(|&i| points[i].is_some_and(|pt| pt.sample_count < min));
            if low {
                decision = Decision::Retain;
            }
        }
    }
    let mut next = state.clone();
    next.last_evaluated = Some(now);
    let new_value = match decision {
        Decision::Ok => StateValue::Ok,
        Decision::Alarm => StateValue::Alarm,
        Decision::InsufficientData => StateValue::InsufficientData,
        Decision::Retain => state.value,
    };
    let mut transitions = Vec::new();
    if new_value != state.value {
        let reason = special_reason.unwrap_or_else(|| {
            reason_text(
                alarm,
                new_value,
                &slots,
                &points,
                &sel,
                &plan,
                threshold_now,
            )
        });
        let data = reason_data(alarm, &points, &sel, &plan, now, threshold_now);
        next.value = new_value;
        next.reason = reason.clone();
        next.reason_data = Some(ReasonData::Metric(data.clone()));
        next.updated = now;
        next.transitioned = now;
        transitions.push(Transition {
            timestamp: now,
            old_state: state.value,
            new_state: new_value,
            reason,
            reason_data: Some(ReasonData::Metric(data)),
        });
    } else if let Some(reason) = special_reason.filter(|r| *r != state.reason) {
        // Still INSUFFICIENT_DATA, for a new reason (the model has seen more data): the
        // reason follows, without a transition.
        next.reason = reason;
        next.updated = now;
    }
    let actions = actions_for(&alarm.actions, &mut next, state.value, now);
    Evaluation {
        state: next,
        transitions,
        actions,
        evaluated: true,
    }
}

/// The actions to run after an evaluation or a `SetAlarmState` that left `next` (updated
/// in place for the re-invocation clock) coming from `old`.
pub fn actions_for(
    actions: &Actions,
    next: &mut AlarmState,
    old: StateValue,
    now: Timestamp,
) -> Vec<ActionInvocation> {
    if !actions.enabled {
        return Vec::new();
    }
    let list = actions.for_state(next.value);
    let out: Vec<ActionInvocation> = if next.value != old {
        list.iter()
            .map(|a| ActionInvocation {
                action: a.clone(),
                state: next.value,
                repeat: false,
            })
            .collect()
    } else {
        let due = next
            .last_scaling_invocation
            .is_none_or(|t| now.as_millis() - t.as_millis() >= 60_000);
        // Extension: notifications again every `repeat_interval_seconds` while in ALARM.
        let renotify = next.value == StateValue::Alarm
            && actions.repeat_interval_seconds.is_some_and(|every| {
                let since = next.last_notification.unwrap_or(next.transitioned);
                now.as_millis() - since.as_millis() >= i64::from(every) * 1000
            });
        list.iter()
            .filter(|a| if a.is_scaling() { due } else { renotify })
            .map(|a| ActionInvocation {
                action: a.clone(),
                state: next.value,
                repeat: true,
            })
            .collect()
    };
    if out.iter().any(|a| a.action.is_scaling()) {
        next.last_scaling_invocation = Some(now);
    }
    if out.iter().any(|a| !a.action.is_scaling()) {
        next.last_notification = Some(now);
    }
    out
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn reason_text(
    alarm: &Alarm,
    new_value: StateValue,
    slots: &[Option<bool>],
    points: &[Option<Point>],
    sel: &Selection,
    plan: &QueryPlan,
    threshold_now: f64,
) -> String {
    let n = alarm.evaluation_periods as usize;
    let fills = sel.fills.len();
    let p = alarm.period.as_millis();
    let slot_start = |i: usize| plan.start.add_millis(i as i64 * p);
    if new_value == StateValue::InsufficientData {
        let unknown = fills.max(1);
        return format!(
            "Insufficient Data: {} {} unknown.",
            plural(unknown, "datapoint", "datapoints"),
            if unknown == 1 { "was" } else { "were" }
        );
    }
    let alarming = new_value == StateValue::Alarm;
    let fill_label = match alarm.treat_missing_data {
        TreatMissingData::Breaching => Some("[Breaching]"),
        TreatMissingData::NotBreaching => Some("[NonBreaching]"),
        _ => None,
    };
    if let (true, Some(label)) = (sel.real.is_empty(), fill_label) {
        {
            return format!(
                "Threshold Crossed: no datapoints were received for {} and {} {} treated as {label}.",
                plural(fills, "period", "periods"),
                plural(fills, "missing datapoint", "missing datapoints"),
                if fills == 1 { "was" } else { "were" }
            );
        }
    }
    let listed: Vec<usize> = sel
        .real
        .iter()
        .rev()
        .copied()
        .filter(|&i| slots[i] == Some(alarming))
        .collect();
    let k = listed.len();
    let list: Vec<String> = listed
        .iter()
        .filter_map(|&i| {
            points[i]
                .map(|pt| format!("{} ({})", java_double(pt.value), reason_time(slot_start(i))))
        })
        .collect();
    let head = if alarm.datapoints_to_alarm.is_some() {
        format!("{k} out of the last {n} datapoints")
    } else {
        plural(k, "datapoint", "datapoints")
    };
    let recovering = !alarming && alarm.ok_threshold.is_some() && threshold_now != alarm.threshold;
    let mut s = if alarm.is_anomaly() {
        // Reference §3.7: `Thresholds Crossed: … was less than the lower thresholds [l] or
        // greater than the upper thresholds [u]`, the bounds of the listed datapoints.
        let bounds = |upper: bool| -> String {
            let v: Vec<String> = listed
                .iter()
                .filter_map(|&i| points[i].and_then(|pt| pt.band))
                .map(|(lo, hi)| java_double(if upper { hi } else { lo }))
                .collect();
            v.join(", ")
        };
        let lower = format!("less than the lower thresholds [{}]", bounds(false));
        let upper = format!("greater than the upper thresholds [{}]", bounds(true));
        let compared = match alarm.comparison_operator {
            crate::model::ComparisonOperator::LessThanLowerThreshold => lower,
            crate::model::ComparisonOperator::GreaterThanUpperThreshold => upper,
            _ => format!("{lower} or {upper}"),
        };
        format!(
            "Thresholds Crossed: {head} [{}] {} {}{compared}",
            list.join(", "),
            if k == 1 { "was" } else { "were" },
            if alarming { "" } else { "not " },
        )
    } else {
        format!(
            "Threshold Crossed: {head} [{}] {} {}{} the {}threshold ({})",
            list.join(", "),
            if k == 1 { "was" } else { "were" },
            if alarming { "" } else { "not " },
            alarm.comparison_operator.phrase(),
            if recovering { "OK " } else { "" },
            java_double(threshold_now)
        )
    };
    if let (Some(label), true) = (fill_label, fills > 0) {
        s.push_str(&format!(
            " and {} {} treated as {label}",
            plural(fills, "missing datapoint", "missing datapoints"),
            if fills == 1 { "was" } else { "were" }
        ));
    }
    if alarm.datapoints_to_alarm.is_some() {
        let m = alarm.m() as usize;
        let (min, dir) = if alarming {
            (m, "OK -> ALARM")
        } else {
            (n - m + 1, "ALARM -> OK")
        };
        s.push_str(&format!(
            " (minimum {} for {dir} transition)",
            plural(min, "datapoint", "datapoints")
        ));
    }
    s.push('.');
    s
}

fn reason_data(
    alarm: &Alarm,
    points: &[Option<Point>],
    sel: &Selection,
    plan: &QueryPlan,
    now: Timestamp,
    threshold_now: f64,
) -> MetricReasonData {
    let p = alarm.period.as_millis();
    let slot_start = |i: usize| plan.start.add_millis(i as i64 * p);
    let mut evaluated: Vec<usize> = sel.real.iter().chain(sel.fills.iter()).copied().collect();
    evaluated.sort_unstable();
    let start_date = if sel.real.is_empty() {
        None
    } else {
        evaluated.first().map(|&i| json_time(slot_start(i)))
    };
    let anomaly = alarm.is_anomaly();
    let bounds = |upper: bool| -> Vec<f64> {
        sel.real
            .iter()
            .filter_map(|&i| points[i].and_then(|pt| pt.band))
            .map(|(lo, hi)| if upper { hi } else { lo })
            .collect()
    };
    MetricReasonData {
        version: "1.0".into(),
        query_date: json_time(now),
        start_date,
        statistic: (!alarm.is_math()).then(|| alarm.statistic.name().to_owned()),
        unit: alarm.unit.map(|u| u.as_str().to_owned()),
        period: alarm.period.as_secs(),
        recent_datapoints: sel
            .real
            .iter()
            .filter_map(|&i| points[i].map(|pt| pt.value))
            .collect(),
        threshold: (!anomaly).then_some(alarm.threshold),
        recent_lower_thresholds: anomaly.then(|| bounds(false)),
        recent_upper_thresholds: anomaly.then(|| bounds(true)),
        ok_threshold: alarm
            .ok_threshold
            .filter(|_| threshold_now != alarm.threshold),
        evaluated_datapoints: evaluated
            .iter()
            .rev()
            .map(|&i| EvaluatedDatapoint {
                timestamp: json_time(slot_start(i)),
                sample_count: points[i]
                    .filter(|_| !alarm.is_math())
                    .map(|pt| pt.sample_count),
                value: points[i].map(|pt| pt.value),
                threshold: points[i].and_then(|pt| {
                    let (lo, hi) = pt.band?;
                    Some(crossed_bound(pt.value, lo, hi))
                }),
            })
            .collect(),
    }
}

/// The band bound a value is reported against: the one it crossed, else the nearer.
fn crossed_bound(v: f64, lo: f64, hi: f64) -> f64 {
    if v > hi || (v >= lo && hi - v <= v - lo) {
        hi
    } else {
        lo
    }
}

/// `SetAlarmState` (reference §3.8): sets the state until the next evaluation; runs the new
/// state's actions when the value changes.
pub fn set_state(
    actions: &Actions,
    state: &AlarmState,
    value: StateValue,
    reason: &str,
    reason_data: Option<serde_json::Value>,
    now: Timestamp,
) -> Evaluation {
    let mut next = state.clone();
    next.reason = reason.to_owned();
    next.reason_data = reason_data.clone().map(ReasonData::Other);
    next.updated = now;
    let mut transitions = Vec::new();
    if value != state.value {
        next.value = value;
        next.transitioned = now;
        transitions.push(Transition {
            timestamp: now,
            old_state: state.value,
            new_state: value,
            reason: reason.to_owned(),
            reason_data: reason_data.map(ReasonData::Other),
        });
    }
    let actions = if value != state.value {
        actions_for(actions, &mut next, state.value, now)
    } else {
        Vec::new()
    };
    Evaluation {
        state: next,
        transitions,
        actions,
        evaluated: false,
    }
}

#[cfg(test)]
mod tests;
