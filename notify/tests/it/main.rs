//! Delivery against real peers: an axum webhook receiver, moto (SNS + SQS) and an aiosmtpd
//! SMTP sink. One test binary.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a failure is the test failing"
)]

mod https;
mod shared;
mod smtp;
mod sns;
mod webhook;

use thermostat_alarms::message::{AlarmDefinition, AlarmEvent, MessageSettings};
use thermostat_alarms::notifications::{self, Notification, NotificationSettings};
use thermostat_alarms::{Action, ActionInvocation, AlarmSet, StateValue, Transition};
use thermostat_metrics::Timestamp;

pub(crate) const ALARMS: &str = r#"
alarms:
  - name: web-high-cpu
    description: CPU above 70% on the web group
    namespace: AWS/EC2
    metric_name: CPUUtilization
    dimensions: {AutoScalingGroupName: web}
    statistic: Average
    period_seconds: 60
    evaluation_periods: 3
    datapoints_to_alarm: 2
    threshold: 70
    comparison_operator: GreaterThanThreshold
    treat_missing_data: notBreaching
    alarm_actions: ["mailto:oncall@example.com"]
"#;

pub(crate) fn alarms() -> AlarmSet {
    thermostat_alarms::validate(&[("alarms.yaml", ALARMS)]).unwrap()
}

pub(crate) fn transition() -> Transition {
    Transition {
        timestamp: Timestamp::from_millis(1_710_591_405_770), // 2024-03-16T12:16:45.770Z
        old_state: StateValue::Ok,
        new_state: StateValue::Alarm,
        reason: "Threshold Crossed: 2 out of the last 3 datapoints [91.5 (16/03/24 12:15:00), 88.0 (16/03/24 12:14:00)] was greater than the threshold (70.0) (minimum 2 datapoints for OK -> ALARM transition).".into(),
        reason_data: None,
    }
}

/// The notification for `action` of the web-high-cpu transition.
pub(crate) fn notification(
    settings: &NotificationSettings,
    messages: &MessageSettings,
    action: Action,
) -> Notification {
    let set = alarms();
    let t = transition();
    let event = AlarmEvent {
        name: "web-high-cpu",
        definition: AlarmDefinition::Metric(&set.alarms[0]),
        transition: &t,
        dimensions: None,
        configuration_updated: None,
    };
    let inv = ActionInvocation {
        action,
        state: StateValue::Alarm,
        repeat: false,
    };
    notifications::build_notification(settings, messages, &event, &inv, t.timestamp)
        .unwrap()
        .unwrap()
}
