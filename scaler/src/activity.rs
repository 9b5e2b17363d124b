//! Scaling activities (reference §5.11): what changed a group's desired capacity, with
//! EC2 Auto Scaling's cause text.

use std::fmt;

use serde::{Deserialize, Serialize};
use thermostat_alarms::StateValue;
use thermostat_metrics::Timestamp;

/// `StatusCode` of an activity (the subset Thermostat produces).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ActivityStatus {
    /// Decided; the backend call has not returned yet.
    InProgress,
    /// The backend accepted the change (the simulated fleet always does).
    Successful,
    /// The backend call failed; `status_message` says why.
    Failed,
}

impl ActivityStatus {
    /// The Auto Scaling spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ActivityStatus::InProgress => "InProgress",
            ActivityStatus::Successful => "Successful",
            ActivityStatus::Failed => "Failed",
        }
    }
}

impl fmt::Display for ActivityStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One change of a group's desired capacity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingActivity {
    /// The group.
    pub group: String,
    /// When it was decided (the evaluation tick or the scheduled occurrence).
    pub timestamp: Timestamp,
    /// The policy that won, for alarm-driven activities.
    pub policy: Option<String>,
    /// The alarm (or alarm instance) that triggered it, for alarm-driven activities.
    pub alarm: Option<String>,
    /// The scheduled action, for scheduled activities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_action: Option<String>,
    /// Desired capacity before.
    pub old_desired: u32,
    /// Desired capacity after.
    pub new_desired: u32,
    /// `Cause`, as EC2 Auto Scaling writes it.
    pub cause: String,
    /// `StatusCode`.
    pub status: ActivityStatus,
    /// `StatusMessage` (why a backend call failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// In cluster mode, the revision of the leader lease under which it was recorded: the
    /// leader's fencing token (`None` on a single node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_lease_revision: Option<u64>,
}

/// `yyyy-MM-ddTHH:mm:ssZ`, the time format of cause texts.
pub fn cause_time(ts: Timestamp) -> String {
    match jiff::Timestamp::from_millisecond(ts.as_millis()) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => ts.to_string(),
    }
}

/// `At <ts> a monitor alarm <alarm> in state <state> triggered policy <policy> changing
/// the desired capacity from <old> to <new>.`
pub fn alarm_cause(
    at: Timestamp,
    alarm: &str,
    state: StateValue,
    policy: &str,
    old: u32,
    new: u32,
) -> String {
    format!(
        "At {} a monitor alarm {alarm} in state {state} triggered policy {policy} changing the desired capacity from {old} to {new}.",
        cause_time(at)
    )
}

/// `At <ts> a scheduled action update of AutoScalingGroup constraints to min: <min>, max:
/// <max>, desired: <desired> changing the desired capacity from <old> to <new>.` (wording
/// UNCONFIRMED, by analogy with the user-request form, reference §5.10).
pub fn scheduled_cause(at: Timestamp, min: u32, max: u32, old: u32, new: u32) -> String {
    format!(
        "At {} a scheduled action update of AutoScalingGroup constraints to min: {min}, max: {max}, desired: {new} changing the desired capacity from {old} to {new}.",
        cause_time(at)
    )
}

/// `At <ts> a user request explicitly set group desired capacity changing the desired
/// capacity from <old> to <new>.`
pub fn user_request_cause(at: Timestamp, old: u32, new: u32) -> String {
    format!(
        "At {} a user request explicitly set group desired capacity changing the desired capacity from {old} to {new}.",
        cause_time(at)
    )
}

/// `At <ts> a user request executed policy <policy> changing the desired capacity from
/// <old> to <new>.` (`ExecutePolicy`, reference §5.2, §5.11).
pub fn execute_policy_cause(at: Timestamp, policy: &str, old: u32, new: u32) -> String {
    format!(
        "At {} a user request executed policy {policy} changing the desired capacity from {old} to {new}.",
        cause_time(at)
    )
}

/// `At <ts> a user request update of AutoScalingGroup constraints to min: <min>, max:
/// <max>, desired: <desired> changing the desired capacity from <old> to <new>.`
pub fn update_group_cause(at: Timestamp, min: u32, max: u32, old: u32, new: u32) -> String {
    format!(
        "At {} a user request update of AutoScalingGroup constraints to min: {min}, max: {max}, desired: {new} changing the desired capacity from {old} to {new}.",
        cause_time(at)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cause_texts_match_auto_scaling() {
        // Reference §5.11 (and the example).
        let at = thermostat_alarms::timefmt::parse_rfc3339("2026-11-26T10:00:00.250Z").unwrap();
        assert_eq!(
            alarm_cause(at, "web-high-cpu", StateValue::Alarm, "scale-out", 2, 4),
            "At 2026-11-26T10:00:00Z a monitor alarm web-high-cpu in state ALARM triggered policy scale-out changing the desired capacity from 2 to 4."
        );
        assert_eq!(
            user_request_cause(at, 1, 2),
            "At 2026-11-26T10:00:00Z a user request explicitly set group desired capacity changing the desired capacity from 1 to 2."
        );
        assert_eq!(
            execute_policy_cause(at, "scale-out", 7, 8),
            "At 2026-11-26T10:00:00Z a user request executed policy scale-out changing the desired capacity from 7 to 8."
        );
        assert_eq!(
            update_group_cause(at, 1, 5, 2, 3),
            "At 2026-11-26T10:00:00Z a user request update of AutoScalingGroup constraints to min: 1, max: 5, desired: 3 changing the desired capacity from 2 to 3."
        );
        assert_eq!(
            scheduled_cause(at, 1, 10, 2, 5),
            "At 2026-11-26T10:00:00Z a scheduled action update of AutoScalingGroup constraints to min: 1, max: 10, desired: 5 changing the desired capacity from 2 to 5."
        );
    }
}
