//! The alarms target-tracking policies create for themselves (reference §5.7).
//!
//! For each `TargetTrackingScaling` policy, Thermostat creates, as EC2 Auto Scaling does:
//! - `TargetTracking-<group>-AlarmHigh-<policy>`: `GreaterThanThreshold` the target, period
//!   60 s, 3 of 3 datapoints, `treat_missing_data: missing`;
//! - `TargetTracking-<group>-AlarmLow-<policy>`: `LessThanThreshold` 90 % of the target
//!   (UNCONFIRMED in the reference; AWS's observed EC2 shape), period 60 s, 15 of 15
//!   datapoints; not created when `disable_scale_in` is true.
//!
//! AWS ends the names with a UUID; Thermostat ends them with the policy name so that they
//! are deterministic across restarts and reloads. Both alarms' `alarm_actions` point at
//! the policy (`policy:<group>/<policy>`), so the engine's once-a-minute re-invocation of
//! scaling actions drives the policy while an alarm stays in ALARM.

use thermostat_alarms::Action;
use thermostat_alarms::model::{
    Actions, Alarm, ComparisonOperator, LowSampleCount, TreatMissingData,
};
use thermostat_alarms::validate::default_evaluation_range;
use thermostat_metrics::Period;

use crate::model::{Policy, PolicyKind, ScalingGroup, ScalingSet};

/// Datapoints (of one minute) above the target before the high alarm fires.
pub const HIGH_DATAPOINTS: u32 = 3;
/// Datapoints (of one minute) below the low threshold before the low alarm fires.
pub const LOW_DATAPOINTS: u32 = 15;
/// The low alarm's threshold as a fraction of the target.
pub const LOW_THRESHOLD_RATIO: f64 = 0.9;

/// The names of the alarms `policy` of `group` creates (none for other policy types).
pub fn alarm_names(group: &ScalingGroup, policy: &Policy) -> Vec<String> {
    alarms_for(group, policy)
        .into_iter()
        .map(|a| a.name)
        .collect()
}

/// `TargetTracking-<group>-AlarmHigh-<policy>`.
pub fn high_alarm_name(group: &str, policy: &str) -> String {
    format!("TargetTracking-{group}-AlarmHigh-{policy}")
}

/// `TargetTracking-<group>-AlarmLow-<policy>`.
pub fn low_alarm_name(group: &str, policy: &str) -> String {
    format!("TargetTracking-{group}-AlarmLow-{policy}")
}

/// The alarms `policy` of `group` creates.
pub fn alarms_for(group: &ScalingGroup, policy: &Policy) -> Vec<Alarm> {
    let PolicyKind::TargetTrackingScaling {
        metric,
        target_value,
        disable_scale_in,
        ..
    } = &policy.kind
    else {
        return Vec::new();
    };
    let action = Action::ScalingPolicy {
        group: group.name.clone(),
        policy: policy.name.clone(),
    };
    let alarm = |name: String, op, threshold: f64, n: u32| Alarm {
        name,
        description: format!(
            "DO NOT EDIT OR DELETE. For TargetTrackingScaling policy policy:{}/{}.",
            group.name, policy.name
        ),
        namespace: metric.namespace.clone(),
        metric_name: metric.metric_name.clone(),
        dimensions: metric.dimensions.clone(),
        statistic: metric.statistic.clone(),
        period: Period::ONE_MINUTE,
        evaluation_periods: n,
        datapoints_to_alarm: Some(n),
        evaluation_range: default_evaluation_range(n),
        threshold,
        ok_threshold: None,
        comparison_operator: op,
        treat_missing_data: TreatMissingData::Missing,
        evaluate_low_sample_count_percentile: LowSampleCount::Evaluate,
        evaluation_delay_seconds: 0,
        unit: None,
        actions: Actions {
            enabled: policy.enabled,
            alarm: vec![action.clone()],
            ok: Vec::new(),
            insufficient_data: Vec::new(),
            repeat_interval_seconds: None,
        },
        source: group.source.clone(),
        metrics: Vec::new(),
        threshold_metric_id: None,
        anomaly: None,
    };
    let mut out = vec![alarm(
        high_alarm_name(&group.name, &policy.name),
        ComparisonOperator::GreaterThanThreshold,
        *target_value,
        HIGH_DATAPOINTS,
    )];
    if !disable_scale_in {
        out.push(alarm(
            low_alarm_name(&group.name, &policy.name),
            ComparisonOperator::LessThanThreshold,
            target_value * LOW_THRESHOLD_RATIO,
            LOW_DATAPOINTS,
        ));
    }
    out
}

impl ScalingSet {
    /// Every alarm the set's target-tracking policies create, in group and policy order;
    /// merge them into the alarm set the engine evaluates (see [`crate::merge_alarms`]).
    pub fn managed_alarms(&self) -> Vec<Alarm> {
        self.groups
            .iter()
            .flat_map(|g| g.policies.iter().flat_map(move |p| alarms_for(g, p)))
            .collect()
    }
}
