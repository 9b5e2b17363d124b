//! Alarm state, transitions and reason data (reference §3.7), as serialisable values.

use serde::{Deserialize, Serialize};
use thermostat_metrics::Timestamp;

use crate::action::Action;
use crate::words::words;

words! {
    /// CloudWatch `StateValue`.
    StateValue {
        /// The metric is within the threshold.
        Ok => "OK",
        /// The metric breached the threshold.
        Alarm => "ALARM",
        /// Not enough data to decide (or just created).
        InsufficientData => "INSUFFICIENT_DATA",
    }
}

/// The reason of a newly created alarm (reference §3.7).
pub const INITIAL_REASON: &str = "Unchecked: Initial alarm creation";

/// The state of one alarm (or one instance of a per-series alarm).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlarmState {
    /// `StateValue`.
    pub value: StateValue,
    /// `StateReason`.
    pub reason: String,
    /// `StateReasonData`.
    pub reason_data: Option<ReasonData>,
    /// `StateUpdatedTimestamp`: last change of value or reason.
    pub updated: Timestamp,
    /// `StateTransitionedTimestamp`: last change of value.
    pub transitioned: Timestamp,
    /// The last evaluation tick, if any.
    pub last_evaluated: Option<Timestamp>,
    /// When Auto Scaling actions last ran (for the once-a-minute re-invocation).
    pub last_scaling_invocation: Option<Timestamp>,
    /// When notification actions last ran while the state lasted (for `repeat_interval_seconds`).
    #[serde(default)]
    pub last_notification: Option<Timestamp>,
}

impl AlarmState {
    /// The state of an alarm created at `now`: INSUFFICIENT_DATA,
    /// `Unchecked: Initial alarm creation`.
    pub fn initial(now: Timestamp) -> Self {
        AlarmState::with_value(StateValue::InsufficientData, INITIAL_REASON, now)
    }

    /// A state with the given value and reason, as of `now`.
    pub fn with_value(value: StateValue, reason: impl Into<String>, now: Timestamp) -> Self {
        AlarmState {
            value,
            reason: reason.into(),
            reason_data: None,
            updated: now,
            transitioned: now,
            last_evaluated: None,
            last_scaling_invocation: None,
            last_notification: None,
        }
    }
}

/// One change of state value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// The evaluation tick (or the time of a `SetAlarmState`).
    pub timestamp: Timestamp,
    /// State before.
    pub old_state: StateValue,
    /// State after.
    pub new_state: StateValue,
    /// `StateReason`.
    pub reason: String,
    /// `StateReasonData`.
    pub reason_data: Option<ReasonData>,
}

/// One action to run, decided by an evaluation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionInvocation {
    /// What to run.
    pub action: Action,
    /// The state whose list it comes from.
    pub state: StateValue,
    /// `true` for the once-a-minute re-invocation of an Auto Scaling action while the
    /// alarm stays in the state; `false` on a transition.
    pub repeat: bool,
}

/// What an evaluation decided: the state to keep and the effects to carry out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The new state (store it in place of the old one).
    pub state: AlarmState,
    /// Zero or one transition.
    pub transitions: Vec<Transition>,
    /// Actions to run, in list order.
    pub actions: Vec<ActionInvocation>,
    /// Whether an evaluation happened (`false` when `now` is not one of the alarm's ticks).
    pub evaluated: bool,
}

/// `StateReasonData`, kept typed so that its keys serialise in CloudWatch's order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per alarm state, mostly the metric variant; boxing it would change every reader for nothing measurable"
)]
pub enum ReasonData {
    /// A metric alarm's evaluation.
    Metric(MetricReasonData),
    /// A composite alarm's evaluation.
    Composite(CompositeReasonData),
    /// Anything else (e.g. given to `SetAlarmState`).
    Other(serde_json::Value),
}

impl ReasonData {
    /// The JSON text, as CloudWatch returns `StateReasonData`.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// Reason data of a metric alarm (reference §3.7; keys in CloudWatch's order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricReasonData {
    /// Always `1.0`.
    pub version: String,
    /// The evaluation tick, `yyyy-MM-ddTHH:mm:ss.SSS+0000`.
    pub query_date: String,
    /// Start of the oldest evaluated period; absent when no data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    /// The statistic (`Average`, `p99`...); absent for metric-math alarms (reference §3.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistic: Option<String>,
    /// The alarm's unit, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Period in seconds.
    pub period: u32,
    /// Values of the evaluated datapoints, oldest first.
    pub recent_datapoints: Vec<f64>,
    /// The threshold; absent for anomaly-detection alarms, which have the two lists below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The band's lower bound at each evaluated real datapoint, oldest first (anomaly
    /// alarms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_lower_thresholds: Option<Vec<f64>>,
    /// The band's upper bound at each evaluated real datapoint, oldest first (anomaly
    /// alarms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_upper_thresholds: Option<Vec<f64>>,
    /// The recovery threshold in force, when set (Thermostat extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok_threshold: Option<f64>,
    /// The evaluated datapoints, newest first; missing ones carry only a timestamp.
    pub evaluated_datapoints: Vec<EvaluatedDatapoint>,
}

/// One entry of `evaluatedDatapoints`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluatedDatapoint {
    /// Start of the period.
    pub timestamp: String,
    /// Samples in the period (absent for missing points).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_count: Option<f64>,
    /// The statistic's value (absent for missing points).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The band bound the point was compared with (anomaly alarms): the bound crossed, else
    /// the nearer one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
}

/// Reason data of a composite alarm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompositeReasonData {
    /// The children whose change triggered the evaluation.
    pub triggering_alarms: Vec<TriggeringAlarm>,
}

/// One entry of `triggeringAlarms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriggeringAlarm {
    /// The child's name (CloudWatch gives its ARN).
    pub arn: String,
    /// The child's state.
    pub state: TriggeringState,
}

/// The state of a triggering child.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriggeringState {
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub value: StateValue,
    /// When it transitioned, `yyyy-MM-ddTHH:mm:ss.SSS+0000`.
    pub timestamp: String,
}
