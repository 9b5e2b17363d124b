//! The state of one group ([`GroupState`]): sizes, instances with their launch, in-service
//! and warm times, and the cooldown; plus the simulated fleet's dynamics as a pure step
//! function of `now` ([`GroupState::reconcile`]).
//!
//! Dynamics (the simulated fleet, also used by `simulate` for every backend): when the
//! desired capacity rises, the missing instances are launched at once and come in service
//! `launch` later, then warm up for the warm-up of the policy that launched them. When it
//! falls, instances are terminated at once, the ones not yet in service first, then the
//! newest (EC2's default termination policy prefers the oldest launch template; we have
//! one template, so we take the newest, which keeps warm capacity).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use thermostat_metrics::Timestamp;

use crate::activity::{ActivityStatus, ScalingActivity, scheduled_cause};
use crate::model::{ScalingGroup, ScheduledAction};

/// Milliseconds in a duration, saturating.
pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// One instance of a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// `i-<group>-<n>` in the simulated fleet.
    pub id: String,
    /// When it was launched.
    pub launched_at: Timestamp,
    /// When it comes (came) in service.
    pub in_service_at: Timestamp,
    /// When its warm-up ends; until then it does not count as current capacity for
    /// step and target-tracking math (reference §5.6).
    pub warm_at: Timestamp,
}

/// The state of one group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    /// The group's name.
    pub group: String,
    /// `MinSize`.
    pub min_size: u32,
    /// `MaxSize`.
    pub max_size: u32,
    /// `DesiredCapacity`.
    pub desired: u32,
    /// Instances launched and not terminated, oldest first.
    pub instances: Vec<Instance>,
    /// Simple policies ignore their alarms before this time (reference §5.5).
    pub cooldown_until: Option<Timestamp>,
    /// Counter for instance ids.
    pub launched_total: u64,
}

impl GroupState {
    /// A group with the given sizes whose `desired` instances are in service and warm at
    /// `now` (as after start-up).
    pub fn new(group: &str, min_size: u32, max_size: u32, desired: u32, now: Timestamp) -> Self {
        let mut state = GroupState {
            group: group.to_owned(),
            min_size,
            max_size: max_size.max(min_size),
            desired: desired.clamp(min_size, max_size.max(min_size)),
            instances: Vec::new(),
            cooldown_until: None,
            launched_total: 0,
        };
        state.reconcile(now, Duration::ZERO, Duration::ZERO);
        for i in &mut state.instances {
            i.launched_at = now;
        }
        state
    }

    /// The start state of a configured group: its configured sizes, or, for an
    /// `aws_autoscaling` group that leaves them to the real group, `fallback`
    /// (`(min, max, desired)` as read from the service, or chosen by `simulate`).
    pub fn for_group(group: &ScalingGroup, fallback: (u32, u32, u32), now: Timestamp) -> Self {
        let min = group.min_size.unwrap_or(fallback.0);
        let max = group.max_size.unwrap_or(fallback.1.max(min));
        let desired = group
            .desired_capacity
            .unwrap_or(if group.min_size.is_some() {
                min
            } else {
                fallback.2
            });
        GroupState::new(&group.name, min, max, desired, now)
    }

    /// Instances in service at `now`.
    pub fn in_service(&self, now: Timestamp) -> u32 {
        count(self.instances.iter().filter(|i| i.in_service_at <= now))
    }

    /// Instances past their warm-up at `now`: the "current capacity" of step and
    /// target-tracking math.
    pub fn warm(&self, now: Timestamp) -> u32 {
        count(self.instances.iter().filter(|i| i.warm_at <= now))
    }

    /// Capacity still launching or warming up at `now` (desired capacity not yet warm).
    pub fn warming(&self, now: Timestamp) -> u32 {
        self.desired.saturating_sub(self.warm(now))
    }

    /// When the last warming instance finishes warming up, if any is warming at `now`.
    pub fn warm_up_until(&self, now: Timestamp) -> Option<Timestamp> {
        self.instances
            .iter()
            .map(|i| i.warm_at)
            .filter(|w| *w > now)
            .max()
    }

    /// The simulated fleet's step: launches or terminates instances so that there are
    /// `desired` of them; new ones come in service after `launch` and are warm `warmup`
    /// after that. Returns `(launched, terminated)`.
    pub fn reconcile(&mut self, now: Timestamp, launch: Duration, warmup: Duration) -> (u32, u32) {
        let want = self.desired as usize;
        let mut launched = 0;
        let mut terminated = 0;
        while self.instances.len() < want {
            self.launched_total += 1;
            let in_service_at = now.add_millis(millis(launch));
            self.instances.push(Instance {
                id: format!("i-{}-{}", self.group, self.launched_total),
                launched_at: now,
                in_service_at,
                warm_at: in_service_at.add_millis(millis(warmup)),
            });
            launched += 1;
        }
        while self.instances.len() > want {
            // Not yet in service first (newest of those), else the newest.
            let idx = self
                .instances
                .iter()
                .rposition(|i| i.in_service_at > now)
                .unwrap_or(self.instances.len() - 1);
            self.instances.remove(idx);
            terminated += 1;
        }
        (launched, terminated)
    }

    /// Runs a scheduled action at `at` (reference §5.10): sets whichever of min, max and
    /// desired it gives, keeping `min ≤ desired ≤ max` (a new min above the desired
    /// capacity raises it, a new max below lowers it), ignoring cooldowns. Returns the
    /// activity when the desired capacity changes; the simulated fleet follows with
    /// `launch` and the group's default warm-up.
    pub fn apply_scheduled(
        &mut self,
        group: &ScalingGroup,
        action: &ScheduledAction,
        at: Timestamp,
        launch: Duration,
    ) -> Option<ScalingActivity> {
        let min = action.min_size.unwrap_or(self.min_size);
        let max = action.max_size.unwrap_or(self.max_size).max(min);
        let old = self.desired;
        let new = action.desired_capacity.unwrap_or(old).clamp(min, max);
        self.min_size = min;
        self.max_size = max;
        self.desired = new;
        self.reconcile(at, launch, group.warmup_for(None));
        (new != old).then(|| ScalingActivity {
            group: group.name.clone(),
            timestamp: at,
            policy: None,
            alarm: None,
            scheduled_action: Some(action.name.clone()),
            old_desired: old,
            new_desired: new,
            cause: scheduled_cause(at, min, max, old, new),
            status: ActivityStatus::Successful,
            status_message: None,
            leader_lease_revision: None,
        })
    }
}

/// `SetDesiredCapacity` rejects values outside the limits instead of clamping them
/// (reference §5.1, §7.9).
///
/// # Errors
/// EC2's `ValidationError` message.
pub fn check_set_desired(min: u32, max: u32, desired: u32) -> Result<(), String> {
    if desired > max {
        return Err(format!(
            "New SetDesiredCapacity value {desired} is above max value {max} for the AutoScalingGroup."
        ));
    }
    if desired < min {
        return Err(format!(
            "New SetDesiredCapacity value {desired} is below min value {min} for the AutoScalingGroup."
        ));
    }
    Ok(())
}

fn count<'a>(instances: impl Iterator<Item = &'a Instance>) -> u32 {
    u32::try_from(instances.count()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_launch_then_warm_up_and_scale_in_drops_pending_ones_first() {
        let t0 = Timestamp::from_secs(1_000);
        let mut s = GroupState::new("web", 1, 10, 2, t0);
        assert_eq!((s.in_service(t0), s.warm(t0), s.warming(t0)), (2, 2, 0));
        s.desired = 4;
        assert_eq!(
            s.reconcile(t0, Duration::from_secs(60), Duration::from_secs(120)),
            (2, 0)
        );
        let at = |secs: i64| t0.add_millis(secs * 1000);
        assert_eq!((s.in_service(at(59)), s.warming(at(59))), (2, 2));
        assert_eq!((s.in_service(at(60)), s.warm(at(60))), (4, 2));
        assert_eq!(s.warm_up_until(at(60)), Some(at(180)));
        assert_eq!((s.warm(at(180)), s.warming(at(180))), (4, 0));
        // Scale in while one new instance is still pending: it goes first.
        s.desired = 3;
        s.reconcile(at(30), Duration::from_secs(60), Duration::ZERO);
        assert_eq!(s.instances.len(), 3);
        assert_eq!(s.in_service(at(30)), 2);
    }
}
