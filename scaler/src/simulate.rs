//! `thermostat simulate`: replay recorded data through the alarms **and** the scaling
//! groups, every backend replaced by the simulated fleet and notifications recorded
//! instead of sent ([`simulate`]), with the text and JSON renderings.
//!
//! The model is deliberately simple: the recorded data drive the alarms and capacity
//! changes do not feed back into them (a scale-out does not lower the recorded CPU). At
//! each tick (every 60 s, or 10 s with sub-minute alarms), in order: the scheduled actions
//! due since the previous tick run, the alarms are evaluated
//! (`thermostat_alarms::engine::tick`, the managed target-tracking alarms included), every
//! scaling action becomes a [`Trigger`] and each group takes one [`decide`] over all of its
//! triggers, and every other action is recorded as a [`RecordedNotification`]. Instances
//! come in service `simulated.launch_seconds` after launch and then warm up.

use serde::Serialize;
use thermostat_alarms::action::Action;
use thermostat_alarms::backtest::{
    BacktestResult, first_tick, outcomes, replay_ticks, tick_step_ms,
};
use thermostat_alarms::engine::{EngineState, tick};
use thermostat_alarms::state::Transition;
use thermostat_alarms::{AlarmSet, StateValue, actions_due, timefmt};
use thermostat_metrics::{Store, Timestamp};

use crate::activity::{ActivityStatus, ScalingActivity};
use crate::decide::{Trigger, decide};
use crate::error::Result;
use crate::group_state::GroupState;
use crate::model::ScalingSet;
use crate::schedule::due;
use crate::trigger::{merge_alarms, triggers};

/// `(min, max, desired)` of a simulated `aws_autoscaling` group that leaves its sizes to
/// the real group.
pub const UNKNOWN_SIZES: (u32, u32, u32) = (1, 10, 1);

/// A notification that would have been sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordedNotification {
    /// The tick.
    pub timestamp: Timestamp,
    /// The alarm (or instance).
    pub alarm: String,
    /// The action as configured (`arn:aws:sns:…`, `mailto:…`, URL).
    pub action: Action,
    /// The state the alarm went to.
    pub new_state: StateValue,
}

/// What happened to one group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupOutcome {
    /// The group.
    pub name: String,
    /// Desired capacity after the last tick.
    pub final_desired_capacity: u32,
    /// Instances in service at the last tick.
    pub final_in_service_capacity: u32,
    /// Every activity, oldest first.
    pub activities: Vec<ScalingActivity>,
    /// The group's final state.
    pub state: GroupState,
}

/// The result of a simulation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimulationResult {
    /// The alarms, as a back-test reports them (managed alarms included).
    pub alarms: BacktestResult,
    /// The groups, in definition order.
    pub groups: Vec<GroupOutcome>,
    /// Notifications that would have been sent, oldest first.
    pub notifications: Vec<RecordedNotification>,
}

/// Replays `alarms` and `scaling` over `store` at every tick in `from..=to` (see the
/// module documentation). Alarms start in INSUFFICIENT_DATA, groups at their configured
/// sizes ([`UNKNOWN_SIZES`] for sizes left to AWS) with every instance warm.
///
/// # Errors
/// When the range is refused (a time outside years 0000 to 9999, `to` before `from`, or
/// longer than [`thermostat_alarms::backtest::MAX_REPLAY_DAYS`]), or the store refuses an
/// alarm's query (its range holds too many periods).
pub fn simulate(
    alarms: &AlarmSet,
    scaling: &ScalingSet,
    store: &Store,
    from: Timestamp,
    to: Timestamp,
) -> Result<SimulationResult> {
    let set = merge_alarms(alarms, scaling);
    let step = tick_step_ms(&set);
    let ticks = replay_ticks(from, to, step)?;
    let first = first_tick(from, step).unwrap_or(from);
    let mut engine = EngineState::new(&set, first, None);
    let mut groups: Vec<(GroupState, Vec<ScalingActivity>)> = scaling
        .groups
        .iter()
        .map(|group| {
            (
                GroupState::for_group(group, UNKNOWN_SIZES, first),
                Vec::new(),
            )
        })
        .collect();
    let mut transitions: std::collections::BTreeMap<String, Vec<Transition>> = Default::default();
    let mut notifications = Vec::new();
    let mut evaluations = 0;
    let mut prev = from.sub_millis(1);
    let run_scheduled = |groups: &mut Vec<(GroupState, Vec<ScalingActivity>)>, after, until| {
        for (group, (state, activities)) in scaling.groups.iter().zip(groups.iter_mut()) {
            for (at, action) in due(group, after, until) {
                if let Some(activity) = state.apply_scheduled(group, action, at, group.launch) {
                    activities.push(activity);
                }
            }
        }
    };
    for now in ticks {
        run_scheduled(&mut groups, prev, now);
        let out = tick(&set, &mut engine, store, now)?;
        evaluations += 1;
        let due = actions_due(&set, &engine, &out, store, now);
        let triggered: Vec<Trigger> = triggers(&set, scaling, &due);
        for (group, (state, activities)) in scaling.groups.iter().zip(groups.iter_mut()) {
            if !triggered.iter().any(|trigger| trigger.group == group.name) {
                continue;
            }
            let decision = decide(group, state, &triggered, now);
            state.apply(group, &decision, now, group.launch);
            if let Some(mut activity) = decision.activity {
                activity.status = ActivityStatus::Successful;
                activities.push(activity);
            }
        }
        for (name, invocation) in &out.actions {
            if !invocation.action.is_scaling() {
                notifications.push(RecordedNotification {
                    timestamp: now,
                    alarm: name.clone(),
                    action: invocation.action.clone(),
                    new_state: invocation.state,
                });
            }
        }
        for (name, transition) in out.transitions {
            transitions.entry(name).or_default().push(transition);
        }
        prev = now;
    }
    if prev < to {
        run_scheduled(&mut groups, prev, to);
    }
    let outcomes = outcomes(&set, &engine, transitions);
    let last = if prev < first { first } else { prev };
    Ok(SimulationResult {
        alarms: BacktestResult {
            evaluations,
            alarms: outcomes,
        },
        groups: scaling
            .groups
            .iter()
            .zip(groups)
            .map(|(group, (state, activities))| GroupOutcome {
                name: group.name.clone(),
                final_desired_capacity: state.desired,
                final_in_service_capacity: state.in_service(last),
                activities,
                state,
            })
            .collect(),
        notifications,
    })
}

#[derive(Serialize)]
struct JsonActivity<'a> {
    timestamp: String,
    policy: Option<&'a str>,
    alarm: Option<&'a str>,
    old_desired_capacity: u32,
    new_desired_capacity: u32,
    cause: &'a str,
}

#[derive(Serialize)]
struct JsonGroup<'a> {
    name: &'a str,
    final_desired_capacity: u32,
    activities: Vec<JsonActivity<'a>>,
}

#[derive(Serialize)]
struct JsonNotification<'a> {
    timestamp: String,
    alarm: &'a str,
    action: String,
    new_state: StateValue,
}

#[derive(Serialize)]
struct JsonResult<'a> {
    alarms: serde_json::Value,
    groups: Vec<JsonGroup<'a>>,
    notifications: Vec<JsonNotification<'a>>,
}

/// `--format json`: `{"alarms": [...as backtest...], "groups": [{"name",
/// "final_desired_capacity", "activities": [{"timestamp", "policy", "alarm",
/// "old_desired_capacity", "new_desired_capacity", "cause"}]}], "notifications":
/// [{"timestamp", "alarm", "action", "new_state"}]}`; times are RFC 3339; `policy` and
/// `alarm` are `null` for scheduled activities.
pub fn render_json(result: &SimulationResult) -> String {
    let backtest: serde_json::Value =
        serde_json::from_str(&thermostat_alarms::render_json(&result.alarms)).unwrap_or_default();
    let doc = JsonResult {
        alarms: backtest
            .get("alarms")
            .cloned()
            .unwrap_or(serde_json::Value::Array(Vec::new())),
        groups: result
            .groups
            .iter()
            .map(|g| JsonGroup {
                name: &g.name,
                final_desired_capacity: g.final_desired_capacity,
                activities: g
                    .activities
                    .iter()
                    .map(|a| JsonActivity {
                        timestamp: timefmt::rfc3339(a.timestamp),
                        policy: a.policy.as_deref(),
                        alarm: a.alarm.as_deref(),
                        old_desired_capacity: a.old_desired,
                        new_desired_capacity: a.new_desired,
                        cause: &a.cause,
                    })
                    .collect(),
            })
            .collect(),
        notifications: result
            .notifications
            .iter()
            .map(|n| JsonNotification {
                timestamp: timefmt::rfc3339(n.timestamp),
                alarm: &n.alarm,
                action: n.action.as_config_str(),
                new_state: n.new_state,
            })
            .collect(),
    };
    serde_json::to_string(&doc).unwrap_or_default()
}

/// `--format text`: the back-test's text, then one block per group (one line per
/// activity, its cause) and one line per recorded notification.
pub fn render_text(result: &SimulationResult) -> String {
    use thermostat_alarms::backtest::count;
    let mut text = thermostat_alarms::render_text(&result.alarms);
    for group in &result.groups {
        text.push_str(&format!(
            "\ngroup {}: desired {} ({})\n",
            group.name,
            group.final_desired_capacity,
            count(group.activities.len(), "activity", "activities")
        ));
        for activity in &group.activities {
            text.push_str(&format!(
                "  {}  {} -> {}  {}\n",
                timefmt::rfc3339(activity.timestamp),
                activity.old_desired,
                activity.new_desired,
                activity.cause
            ));
        }
    }
    text.push_str(&format!(
        "\n{} recorded (not sent)\n",
        count(result.notifications.len(), "notification", "notifications")
    ));
    for notification in &result.notifications {
        text.push_str(&format!(
            "  {}  {} {}  {}\n",
            timefmt::rfc3339(notification.timestamp),
            notification.alarm,
            notification.new_state,
            notification.action
        ));
    }
    text
}

#[cfg(test)]
mod tests;
