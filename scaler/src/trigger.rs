//! From the actions an alarm tick invokes to [`Trigger`]s: [`triggers`] turns the
//! [`ActionDue`]s of one tick (`thermostat_alarms::actions_due`) into the scaling triggers of
//! that tick, and [`merge_alarms`] adds the managed target-tracking alarms to an alarm set.

use thermostat_alarms::history::AlarmType;
use thermostat_alarms::{ActionDue, AlarmSet};

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

/// The scaling triggers of one tick: one per scaling action in `due` that names a policy of
/// `scaling` (`alarms` must be the set the engine evaluated, managed alarms included; an
/// action of a composite alarm, or of an alarm `alarms` does not have, triggers nothing).
/// The values and threshold are the action's [`recent`](ActionDue::recent) datapoints: on a
/// transition its reason data (`recentDatapoints`), on a re-invocation the store's newest.
pub fn triggers(alarms: &AlarmSet, scaling: &ScalingSet, due: &[ActionDue]) -> Vec<Trigger> {
    let mut result = Vec::new();
    for d in due {
        let inv = &d.invocation;
        if !inv.action.is_scaling() {
            continue;
        }
        let Some((group, policy)) = scaling.resolve(&inv.action) else {
            continue;
        };
        if d.kind != AlarmType::MetricAlarm || alarms.alarm(&d.alarm).is_none() {
            continue; // composite alarms cannot run scaling actions
        }
        let Some(recent) = &d.recent else {
            continue;
        };
        result.push(Trigger {
            alarm: d.name.clone(),
            group: group.name.clone(),
            policy: policy.name.clone(),
            state: inv.state,
            values: recent.values.clone(),
            threshold: recent.threshold,
            repeat: inv.repeat,
        });
    }
    result
}
