//! Alarm history items (reference §3.9, CloudWatch `DescribeAlarmHistory`), as values the
//! server persists.

use serde::{Deserialize, Serialize};
use thermostat_metrics::Timestamp;

use crate::action::Action;
use crate::state::{AlarmState, ReasonData, Transition};

/// `HistoryItemType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HistoryItemType {
    /// The alarm was created, updated or deleted.
    ConfigurationUpdate,
    /// The state changed.
    StateUpdate,
    /// An action ran (or failed).
    Action,
}

/// `AlarmType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlarmType {
    /// A metric alarm.
    MetricAlarm,
    /// A composite alarm.
    CompositeAlarm,
}

/// What happened to a definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigChange {
    /// New alarm.
    Created,
    /// Changed definition.
    Updated,
    /// Removed.
    Deleted,
}

/// One side of a state update's `HistoryData`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryState {
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state_value: crate::state::StateValue,
    /// The reason.
    pub state_reason: String,
    /// The reason data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason_data: Option<ReasonData>,
}

/// `HistoryData` JSON, by item type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HistoryData {
    /// `{"version":"1.0","oldState":{...},"newState":{...}}`.
    StateUpdate {
        /// Always `1.0`.
        version: String,
        /// Before.
        #[serde(rename = "oldState")]
        old_state: Box<HistoryState>,
        /// After.
        #[serde(rename = "newState")]
        new_state: Box<HistoryState>,
    },
    /// `{"actionState":"Succeeded","notificationResource":"arn:..."}`.
    Action {
        /// `Succeeded` or `Failed`.
        #[serde(rename = "actionState")]
        action_state: String,
        /// The action.
        #[serde(rename = "notificationResource")]
        notification_resource: String,
        /// Error text of a failure.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// `{"type":"Create","version":"1.0"}`-like summary of a configuration change.
    Configuration {
        /// `created`, `updated` or `deleted`.
        change: ConfigChange,
    },
}

/// One history item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryItem {
    /// The alarm (or instance) name.
    pub alarm_name: String,
    /// Metric or composite.
    pub alarm_type: AlarmType,
    /// When.
    pub timestamp: Timestamp,
    /// The kind of item.
    pub item_type: HistoryItemType,
    /// `HistorySummary`, e.g. `Alarm updated from OK to ALARM`.
    pub summary: String,
    /// `HistoryData`.
    pub data: HistoryData,
}

impl HistoryItem {
    /// The item for a state transition; `old` is the state before it.
    pub fn state_update(
        alarm_name: &str,
        alarm_type: AlarmType,
        old: &AlarmState,
        t: &Transition,
    ) -> Self {
        HistoryItem {
            alarm_name: alarm_name.to_owned(),
            alarm_type,
            timestamp: t.timestamp,
            item_type: HistoryItemType::StateUpdate,
            summary: format!("Alarm updated from {} to {}", t.old_state, t.new_state),
            data: HistoryData::StateUpdate {
                version: "1.0".into(),
                old_state: Box::new(HistoryState {
                    state_value: old.value,
                    state_reason: old.reason.clone(),
                    state_reason_data: old.reason_data.clone(),
                }),
                new_state: Box::new(HistoryState {
                    state_value: t.new_state,
                    state_reason: t.reason.clone(),
                    state_reason_data: t.reason_data.clone(),
                }),
            },
        }
    }

    /// The item for a configuration change.
    pub fn configuration_update(
        alarm_name: &str,
        alarm_type: AlarmType,
        change: ConfigChange,
        now: Timestamp,
    ) -> Self {
        let verb = match change {
            ConfigChange::Created => "created",
            ConfigChange::Updated => "updated",
            ConfigChange::Deleted => "deleted",
        };
        HistoryItem {
            alarm_name: alarm_name.to_owned(),
            alarm_type,
            timestamp: now,
            item_type: HistoryItemType::ConfigurationUpdate,
            summary: format!("Alarm \"{alarm_name}\" {verb}"),
            data: HistoryData::Configuration { change },
        }
    }

    /// The item for an action run by the shell: `error` is `None` on success.
    pub fn action(
        alarm_name: &str,
        alarm_type: AlarmType,
        action: &Action,
        error: Option<&str>,
        now: Timestamp,
    ) -> Self {
        let target = action.as_config_str();
        HistoryItem {
            alarm_name: alarm_name.to_owned(),
            alarm_type,
            timestamp: now,
            item_type: HistoryItemType::Action,
            summary: match error {
                None => format!("Successfully executed action {target}"),
                Some(_) => format!("Failed to execute action {target}"),
            },
            data: HistoryData::Action {
                action_state: if error.is_none() {
                    "Succeeded"
                } else {
                    "Failed"
                }
                .into(),
                notification_resource: target,
                error: error.map(str::to_owned),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateValue;

    #[test]
    fn state_update_json_matches_cloudwatch() {
        // §3.9: summary text and HistoryData shape.
        let old = AlarmState::with_value(StateValue::Ok, "fine", Timestamp(0));
        let t = Transition {
            timestamp: Timestamp(60_000),
            old_state: StateValue::Ok,
            new_state: StateValue::Alarm,
            reason: "bad".into(),
            reason_data: None,
        };
        let h = HistoryItem::state_update("cpu", AlarmType::MetricAlarm, &old, &t);
        assert_eq!(h.summary, "Alarm updated from OK to ALARM");
        assert_eq!(
            serde_json::to_string(&h.data).unwrap(),
            r#"{"version":"1.0","oldState":{"stateValue":"OK","stateReason":"fine"},"newState":{"stateValue":"ALARM","stateReason":"bad"}}"#
        );
        let back: HistoryItem = serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
        assert_eq!(back, h);
        let a = crate::action::parse("arn:aws:sns:eu-west-1:1:ops").unwrap();
        let h = HistoryItem::action("cpu", AlarmType::MetricAlarm, &a, None, Timestamp(1));
        assert_eq!(
            h.summary,
            "Successfully executed action arn:aws:sns:eu-west-1:1:ops"
        );
    }
}
