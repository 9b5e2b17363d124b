//! Scaling by hand (reference §5.2): EC2 Auto Scaling's `SetDesiredCapacity`
//! ([`set_desired_capacity`]) and `ExecutePolicy` ([`execute_policy`]) as pure decisions.
//! Each returns the activity to carry out (none when the desired capacity stays as it is)
//! or why the request is refused; the runtime applies the activity with
//! [`GroupState::apply_activity`], as it does an alarm's.
//!
//! Semantics:
//! - `SetDesiredCapacity`: the value must lie within `[min, max]`; outside, EC2's
//!   `ValidationError` (not clamped, §5.1). By default the cooldown is ignored; with
//!   `honor_cooldown` a group in cooldown refuses (`ScalingActivityInProgress`). The change
//!   starts no cooldown: cooldowns follow simple policies' activities (§5.5).
//! - `ExecutePolicy`: simple and step policies; a target-tracking policy cannot be executed
//!   (`ValidationError`), nor a disabled one. `metric_value` and `breach_threshold` are
//!   required for a step policy (the breach `metric_value − breach_threshold` picks the
//!   step; none matching is an error) and refused for a simple one. `honor_cooldown`
//!   (default false, as in EC2) applies to simple policies only: step policies have no
//!   cooldown. A simple policy's execution starts its cooldown, as when an alarm runs it.
//!   Results are clamped to `[min, max]` as every policy's are, and a step scale-in waits
//!   for warm-up (refused while instances warm up).
//! - Activity causes are EC2's user-request sentences (§5.11).

use thermostat_metrics::Timestamp;

use crate::activity::{ActivityStatus, ScalingActivity, execute_policy_cause, user_request_cause};
use crate::decide::{Outcome, policy_outcome};
use crate::group_state::{GroupState, check_set_desired};
use crate::model::{PolicyKind, ScalingGroup};

/// Why a request to scale by hand is refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ManualError {
    /// A parameter breaks a rule (EC2's `ValidationError`); `field` names it.
    #[error("{field}: {message}")]
    Invalid {
        /// The parameter (`desired_capacity`, `policy`, `metric_value`, `breach_threshold`).
        field: &'static str,
        /// The rule broken, worded as EC2 Auto Scaling words it where it does.
        message: String,
    },
    /// The group has no policy of that name.
    #[error("scaling group {group:?} has no policy named {policy:?}")]
    UnknownPolicy {
        /// The group.
        group: String,
        /// The policy asked for.
        policy: String,
    },
    /// The group's state holds the request back until `until`: its cooldown
    /// (`honor_cooldown` was true; send false to scale anyway), or instances warming up
    /// (`policy`: a step scale-in waits for them).
    #[error("{message}")]
    Refused {
        /// What holds it back: `honor_cooldown` or `policy`.
        field: &'static str,
        /// Why, and until when.
        message: String,
        /// When the request could succeed.
        until: Timestamp,
    },
}

/// The parameters of `ExecutePolicy` besides the group and the policy.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PolicyExecution {
    /// `HonorCooldown` (default false): a simple policy refuses while the group is in
    /// cooldown. Ignored for step policies, which have no cooldown.
    pub honor_cooldown: bool,
    /// `MetricValue`: required for a step policy, refused otherwise.
    pub metric_value: Option<f64>,
    /// `BreachThreshold`: required for a step policy, refused otherwise.
    pub breach_threshold: Option<f64>,
}

/// `SetDesiredCapacity(desired, honor_cooldown)` for `group` in `state` at `now`: the
/// activity to carry out, or none when `desired` is the desired capacity already.
///
/// # Errors
/// [`ManualError::Invalid`] (`desired_capacity`) outside `[min, max]`;
/// [`ManualError::Refused`] (`honor_cooldown`) with `honor_cooldown` during the cooldown.
pub fn set_desired_capacity(
    group: &ScalingGroup,
    state: &GroupState,
    desired: u32,
    honor_cooldown: bool,
    now: Timestamp,
) -> Result<Option<ScalingActivity>, ManualError> {
    check_set_desired(state.min_size, state.max_size, desired).map_err(|message| {
        ManualError::Invalid {
            field: "desired_capacity",
            message,
        }
    })?;
    if honor_cooldown {
        in_cooldown(group, state, None, now)?;
    }
    Ok((desired != state.desired).then(|| ScalingActivity {
        group: group.name.clone(),
        timestamp: now,
        policy: None,
        alarm: None,
        scheduled_action: None,
        old_desired: state.desired,
        new_desired: desired,
        cause: user_request_cause(now, state.desired, desired),
        status: ActivityStatus::InProgress,
        status_message: None,
        leader_lease_revision: None,
    }))
}

/// `ExecutePolicy(policy, request)` for `group` in `state` at `now`: the activity to carry
/// out, or none when the policy leaves the desired capacity as it is.
///
/// # Errors
/// [`ManualError::UnknownPolicy`]; [`ManualError::Invalid`] for a target-tracking or
/// disabled policy (`policy`), a missing or refused `metric_value` / `breach_threshold`, or
/// a breach no step contains (`metric_value`); [`ManualError::Refused`] for a simple policy
/// with `honor_cooldown` during the cooldown (`honor_cooldown`), or a step scale-in while
/// instances warm up (`policy`).
pub fn execute_policy(
    group: &ScalingGroup,
    state: &GroupState,
    policy: &str,
    request: PolicyExecution,
    now: Timestamp,
) -> Result<Option<ScalingActivity>, ManualError> {
    let invalid = |field, message: String| ManualError::Invalid { field, message };
    let Some(p) = group.policy(policy) else {
        return Err(ManualError::UnknownPolicy {
            group: group.name.clone(),
            policy: policy.to_owned(),
        });
    };
    let outcome = match &p.kind {
        PolicyKind::TargetTrackingScaling { .. } => {
            return Err(invalid(
                "policy",
                format!(
                    "policy {policy} is a TargetTrackingScaling policy, which cannot be executed; only SimpleScaling and StepScaling policies can"
                ),
            ));
        }
        _ if !p.enabled => {
            return Err(invalid("policy", format!("policy {policy} is disabled")));
        }
        PolicyKind::SimpleScaling { .. } => {
            for (field, value) in [
                ("metric_value", request.metric_value),
                ("breach_threshold", request.breach_threshold),
            ] {
                if value.is_some() {
                    return Err(invalid(
                        field,
                        "is accepted only for StepScaling policies".to_owned(),
                    ));
                }
            }
            if request.honor_cooldown {
                in_cooldown(group, state, Some(policy), now)?;
            }
            policy_outcome(p, state, &[], 0.0, now)
        }
        PolicyKind::StepScaling { .. } => {
            let required = |field, value: Option<f64>| match value {
                None => Err(invalid(
                    field,
                    "is required to execute a StepScaling policy".to_owned(),
                )),
                Some(v) if !v.is_finite() => {
                    Err(invalid(field, format!("must be a finite number (got {v})")))
                }
                Some(v) => Ok(v),
            };
            let metric = required("metric_value", request.metric_value)?;
            let threshold = required("breach_threshold", request.breach_threshold)?;
            policy_outcome(p, state, &[metric], threshold, now)
        }
    };
    match outcome {
        Outcome::Capacity { desired } => Ok((desired != state.desired).then(|| ScalingActivity {
            group: group.name.clone(),
            timestamp: now,
            policy: Some(policy.to_owned()),
            alarm: None,
            scheduled_action: None,
            old_desired: state.desired,
            new_desired: desired,
            cause: execute_policy_cause(now, policy, state.desired, desired),
            status: ActivityStatus::InProgress,
            status_message: None,
            leader_lease_revision: None,
        })),
        Outcome::WarmingUp { until } => Err(ManualError::Refused {
            field: "policy",
            message: format!(
                "policy {policy} would scale in, and scale-in waits until the instances warming up are warm at {}",
                until.to_rfc3339()
            ),
            until,
        }),
        Outcome::NoStep { message } => Err(invalid("metric_value", message)),
        other => Err(invalid(
            "policy",
            format!("policy {policy} cannot be executed ({other:?})"),
        )),
    }
}

/// `ScalingActivityInProgress` when the group is in cooldown at `now`.
fn in_cooldown(
    group: &ScalingGroup,
    state: &GroupState,
    policy: Option<&str>,
    now: Timestamp,
) -> Result<(), ManualError> {
    let Some(until) = state.cooldown_until.filter(|u| *u > now) else {
        return Ok(());
    };
    let what = policy.map_or_else(String::new, |p| format!(" (policy {p})"));
    Err(ManualError::Refused {
        field: "honor_cooldown",
        message: format!(
            "Scaling activity is in progress and blocks this action{what}: group {} is in cooldown until {}; send honor_cooldown false to scale anyway",
            group.name,
            until.to_rfc3339()
        ),
        until,
    })
}

#[cfg(test)]
mod tests;
