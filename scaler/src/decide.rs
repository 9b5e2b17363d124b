//! Policy math: what each triggered policy asks for ([`evaluate_policy`]) and the one
//! decision per group and evaluation tick ([`decide`]), applied with
//! [`GroupState::apply`].
//!
//! Semantics (reference §5.4–§5.8):
//! - Simple: `current` = desired capacity; ignored while the group's cooldown runs (it
//!   starts when the activity's instances are in service and lasts the policy's cooldown or
//!   the group's default); the boundary is inclusive (§7.11).
//! - Step: `breach = aggregate(recent datapoints) − threshold` picks the step; the
//!   adjustment applies to the warm capacity (warming instances excluded), and a scale-out
//!   result is `max(desired, warm + delta)`; scale-in waits while instances warm up. No
//!   cooldown.
//! - Target tracking: `ceil(warm × metric / target)` with the newest datapoint of the
//!   managed alarm, scale-out as `max(desired, …)`, scale-in only when no instance is
//!   warming, scale-in is enabled and every target-tracking policy of the group with
//!   scale-in enabled asks for less capacity in the same tick.
//! - Results are clamped to `[min, max]`; of all the policies triggered in one tick (all
//!   computed against the same state) the largest capacity wins, and one activity records
//!   it when it differs from the desired capacity.

use serde::{Deserialize, Serialize};
use thermostat_alarms::StateValue;
use thermostat_alarms::timefmt::java_double;
use thermostat_metrics::Timestamp;

use crate::activity::{ActivityStatus, ScalingActivity, alarm_cause};
use crate::adjustment::{adjusted, clamp, delta, find_step};
use crate::group_state::{GroupState, millis};
use crate::model::{AdjustmentType, Policy, PolicyKind, ScalingGroup};

/// What the alarm engine knows when it invokes a scaling policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// The alarm (or per-series instance) name.
    pub alarm: String,
    /// The group targeted.
    pub group: String,
    /// The policy targeted.
    pub policy: String,
    /// The alarm's state (the action list it comes from).
    pub state: StateValue,
    /// The alarm's most recent datapoints, oldest first (reason data `recentDatapoints`
    /// on a transition, the store's newest values on a once-a-minute re-invocation).
    pub values: Vec<f64>,
    /// The alarm's threshold (step bounds are relative to it).
    pub threshold: f64,
    /// `true` for the once-a-minute re-invocation while the alarm stays in the state.
    pub repeat: bool,
}

/// What one triggered policy asks for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The capacity the policy computes, clamped to `[min, max]`.
    Capacity {
        /// The capacity.
        desired: u32,
    },
    /// A simple policy ignored the alarm: the group is in cooldown.
    InCooldown {
        /// When the cooldown ends.
        until: Timestamp,
    },
    /// A scale-in waits for instances to finish warming up.
    WarmingUp {
        /// When the last one is warm.
        until: Timestamp,
    },
    /// No step contains the breach (EC2's "No step adjustment found" error).
    NoStep {
        /// The message, as EC2 Auto Scaling words it.
        message: String,
    },
    /// The alarm passed no datapoint (step and target tracking need one).
    NoData,
    /// A target-tracking policy with `disable_scale_in` does not remove capacity.
    ScaleInDisabled,
    /// A target-tracking scale-in waits until every target-tracking policy of the group
    /// asks for it.
    ScaleInNotAgreed,
    /// The policy is disabled.
    Disabled,
    /// The trigger names no policy of this group.
    UnknownPolicy,
}

/// One triggered policy and what it asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyEvaluation {
    /// The policy.
    pub policy: String,
    /// The alarm that triggered it.
    pub alarm: String,
    /// Its outcome.
    pub outcome: Outcome,
}

/// The decision for one group at one evaluation tick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScalingDecision {
    /// The group.
    pub group: String,
    /// The tick.
    pub timestamp: Timestamp,
    /// Every triggered policy, in trigger order.
    pub evaluations: Vec<PolicyEvaluation>,
    /// The change to make, when the winning capacity differs from the desired capacity
    /// (status [`ActivityStatus::InProgress`] until the backend answers).
    pub activity: Option<ScalingActivity>,
}

/// What `policy` (of `group`) asks for given `trigger`, against `state` at `now`, before
/// the cross-policy rules of [`decide`].
pub fn evaluate_policy(
    group: &ScalingGroup,
    state: &GroupState,
    trigger: &Trigger,
    now: Timestamp,
) -> Outcome {
    let Some(policy) = group.policy(&trigger.policy) else {
        return Outcome::UnknownPolicy;
    };
    if !policy.enabled {
        return Outcome::Disabled;
    }
    if let PolicyKind::SimpleScaling { .. } = policy.kind
        && let Some(until) = state.cooldown_until.filter(|u| *u > now)
    {
        return Outcome::InCooldown { until };
    }
    policy_outcome(policy, state, &trigger.values, trigger.threshold, now)
}

/// What `policy` asks for given the alarm's recent `values` and `threshold`, against
/// `state` at `now`, whatever the cooldown (the caller decides whether it holds a simple
/// policy back: alarms always, `ExecutePolicy` only with `HonorCooldown`).
pub(crate) fn policy_outcome(
    policy: &Policy,
    state: &GroupState,
    values: &[f64],
    threshold: f64,
    now: Timestamp,
) -> Outcome {
    let (min, max, desired) = (state.min_size, state.max_size, state.desired);
    let warm = state.warm(now);
    let warming = state.warm_up_until(now);
    match &policy.kind {
        PolicyKind::SimpleScaling {
            adjustment_type,
            scaling_adjustment,
            min_adjustment_magnitude,
            ..
        } => {
            let wanted = adjusted(
                *adjustment_type,
                *scaling_adjustment,
                desired,
                *min_adjustment_magnitude,
            );
            Outcome::Capacity {
                desired: clamp(wanted, min, max),
            }
        }
        PolicyKind::StepScaling {
            adjustment_type,
            min_adjustment_magnitude,
            metric_aggregation_type,
            steps,
            ..
        } => {
            let Some(metric) = metric_aggregation_type.aggregate(values) else {
                return Outcome::NoData;
            };
            let breach = metric - threshold;
            let Some(step) = find_step(steps, breach) else {
                let values: Vec<String> = values.iter().map(|v| java_double(*v)).collect();
                return Outcome::NoStep {
                    message: format!(
                        "No step adjustment found for metric value [{}] and breach threshold {}",
                        values.join(", "),
                        java_double(threshold)
                    ),
                };
            };
            let wanted = match adjustment_type {
                AdjustmentType::ExactCapacity => step.scaling_adjustment,
                t => {
                    i64::from(warm)
                        + delta(*t, step.scaling_adjustment, warm, *min_adjustment_magnitude)
                }
            };
            scale(wanted, desired, warming, min, max)
        }
        PolicyKind::TargetTrackingScaling {
            target_value,
            disable_scale_in,
            ..
        } => {
            let Some(metric) = values.last().copied() else {
                return Outcome::NoData;
            };
            let raw = f64::from(warm) * metric / target_value;
            // A hair of tolerance so that 10 × 50 / 50 stays 10 whatever the rounding.
            #[allow(clippy::cast_possible_truncation)]
            let wanted = (raw - 1e-9).ceil().max(0.0).min(f64::from(u32::MAX)) as i64;
            if wanted < i64::from(desired) && *disable_scale_in {
                return Outcome::ScaleInDisabled;
            }
            scale(wanted, desired, warming, min, max)
        }
    }
}

/// Scale-out keeps capacity already launched (`max(desired, wanted)`); scale-in waits for
/// warm-up.
fn scale(wanted: i64, desired: u32, warming: Option<Timestamp>, min: u32, max: u32) -> Outcome {
    if wanted < i64::from(desired) {
        if let Some(until) = warming {
            return Outcome::WarmingUp { until };
        }
        return Outcome::Capacity {
            desired: clamp(wanted, min, max),
        };
    }
    Outcome::Capacity {
        desired: clamp(wanted.max(i64::from(desired)), min, max),
    }
}

/// The one decision for `group` at the tick `now`, given every trigger of that tick (the
/// triggers of other groups are ignored).
pub fn decide(
    group: &ScalingGroup,
    state: &GroupState,
    triggers: &[Trigger],
    now: Timestamp,
) -> ScalingDecision {
    let mine: Vec<&Trigger> = triggers.iter().filter(|t| t.group == group.name).collect();
    let mut evaluations: Vec<PolicyEvaluation> = mine
        .iter()
        .map(|t| PolicyEvaluation {
            policy: t.policy.clone(),
            alarm: t.alarm.clone(),
            outcome: evaluate_policy(group, state, t, now),
        })
        .collect();
    // Target tracking scales in only when every target-tracking policy with scale-in
    // enabled asks for less (reference §5.7, §7.9).
    let wants_in = |e: &PolicyEvaluation| matches!(e.outcome, Outcome::Capacity { desired } if desired < state.desired);
    let tracking: Vec<&str> = group
        .policies
        .iter()
        .filter(|p| p.enabled && p.tracks_with_scale_in())
        .map(|p| p.name.as_str())
        .collect();
    let all_agree = tracking
        .iter()
        .all(|name| evaluations.iter().any(|e| e.policy == *name && wants_in(e)));
    for e in &mut evaluations {
        if tracking.contains(&e.policy.as_str()) && wants_in(e) && !all_agree {
            e.outcome = Outcome::ScaleInNotAgreed;
        }
    }
    let winner = evaluations
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e.outcome {
            Outcome::Capacity { desired } => Some((desired, i)),
            _ => None,
        })
        // Largest capacity; the first trigger on ties.
        .max_by_key(|(d, i)| (*d, std::cmp::Reverse(*i)));
    let activity = winner.filter(|(d, _)| *d != state.desired).map(|(d, i)| {
        let t = mine[i];
        ScalingActivity {
            group: group.name.clone(),
            timestamp: now,
            policy: Some(t.policy.clone()),
            alarm: Some(t.alarm.clone()),
            scheduled_action: None,
            old_desired: state.desired,
            new_desired: d,
            cause: alarm_cause(now, &t.alarm, t.state, &t.policy, state.desired, d),
            status: ActivityStatus::InProgress,
            status_message: None,
            leader_lease_revision: None,
        }
    });
    ScalingDecision {
        group: group.name.clone(),
        timestamp: now,
        evaluations,
        activity,
    }
}

impl GroupState {
    /// Applies a decision's activity at `now`: sets the desired capacity, starts the
    /// cooldown when a simple policy won (once its instances are in service: `launch`
    /// later for a scale-out), and lets the simulated fleet follow (`launch`, and the
    /// winning policy's warm-up). Real backends pass `launch = 0`: their cooldown starts
    /// when the scaling call succeeds.
    pub fn apply(
        &mut self,
        group: &ScalingGroup,
        decision: &ScalingDecision,
        now: Timestamp,
        launch: std::time::Duration,
    ) {
        if let Some(activity) = &decision.activity {
            self.apply_activity(group, activity, now, launch);
        }
    }

    /// Applies one activity at `now` (a decision's, or a user request's from
    /// [`crate::manual`]): sets the desired capacity, starts the cooldown when the
    /// activity's policy is a simple policy (once its instances are in service: `launch`
    /// later for a scale-out), and lets the simulated fleet follow with `launch` and the
    /// policy's warm-up (the group's default without a policy). Real backends pass
    /// `launch = 0`.
    pub fn apply_activity(
        &mut self,
        group: &ScalingGroup,
        activity: &ScalingActivity,
        now: Timestamp,
        launch: std::time::Duration,
    ) {
        let policy = activity.policy.as_deref().and_then(|p| group.policy(p));
        if let Some(PolicyKind::SimpleScaling { cooldown, .. }) = policy.map(|p| &p.kind) {
            let done = if activity.new_desired > activity.old_desired {
                now.add_millis(millis(launch))
            } else {
                now
            };
            let cooldown = cooldown.unwrap_or(group.default_cooldown);
            self.cooldown_until = Some(done.add_millis(millis(cooldown)));
        }
        self.desired = activity.new_desired;
        self.reconcile(now, launch, group.warmup_for(policy));
    }
}

#[cfg(test)]
mod tests;
