//! From the alarm engine's output to [`Trigger`]s: [`triggers`] turns one
//! `thermostat_alarms::engine::tick` into the scaling triggers of that tick, and
//! [`merge_alarms`] adds the managed target-tracking alarms to an alarm set.

use thermostat_alarms::engine::{EngineState, TickOutput};
use thermostat_alarms::state::ReasonData;
use thermostat_alarms::{Alarm, AlarmSet};
use thermostat_metrics::{SeriesKey, Store, Timestamp};

use crate::decide::Trigger;
use crate::model::ScalingSet;

/// `alarms` plus the alarms `scaling` creates for target tracking (those whose names are
/// already in `alarms` are not added twice).
pub fn merge_alarms(alarms: &AlarmSet, scaling: &ScalingSet) -> AlarmSet {
    let mut out = alarms.clone();
    for m in scaling.managed_alarms() {
        if out.alarm(&m.name).is_none() {
            out.alarms.push(m);
        }
    }
    out
}

/// The newest `evaluation_periods` datapoint values of `alarm`'s series `key` in its
/// evaluation range at `now`, oldest first (what EC2 Auto Scaling receives from the alarm
/// on a re-invocation). Empty when the store refuses the query or has nothing.
pub fn recent_values(alarm: &Alarm, key: SeriesKey, store: &Store, now: Timestamp) -> Vec<f64> {
    let q = thermostat_alarms::query(alarm, key, now);
    let Ok(mut dps) = store.query(&q, now) else {
        return Vec::new();
    };
    dps.sort_by_key(|d| d.timestamp);
    let values: Vec<f64> = dps
        .iter()
        .filter_map(|d| d.values.first().copied().flatten())
        .collect();
    let n = alarm.evaluation_periods as usize;
    values[values.len().saturating_sub(n)..].to_vec()
}

/// The scaling triggers of one engine tick: one per scaling action in `out.actions` that
/// names a policy of `scaling` (`alarms` must be the set the engine evaluated, managed
/// alarms included). On a transition the values come from the transition's reason data
/// (`recentDatapoints`); on a re-invocation from the store at `now`.
pub fn triggers(
    alarms: &AlarmSet,
    scaling: &ScalingSet,
    engine: &EngineState,
    out: &TickOutput,
    store: &Store,
    now: Timestamp,
) -> Vec<Trigger> {
    let mut result = Vec::new();
    for (name, inv) in &out.actions {
        if !inv.action.is_scaling() {
            continue;
        }
        let Some((group, policy)) = scaling.resolve(&inv.action) else {
            continue;
        };
        let Some(inst) = engine.metric.get(name) else {
            continue; // composite alarms cannot run scaling actions
        };
        let Some(alarm) = alarms.alarm(&inst.alarm) else {
            continue;
        };
        let from_transition = out
            .transitions
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, t)| match &t.reason_data {
                Some(ReasonData::Metric(d)) if !inv.repeat => Some(d.recent_datapoints.clone()),
                _ => None,
            });
        let values = from_transition
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| recent_values(alarm, inst.key.clone(), store, now));
        result.push(Trigger {
            alarm: name.clone(),
            group: group.name.clone(),
            policy: policy.name.clone(),
            state: inv.state,
            values,
            threshold: alarm.threshold,
            repeat: inv.repeat,
        });
    }
    result
}
