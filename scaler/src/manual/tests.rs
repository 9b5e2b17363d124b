//! Scaling by hand: one row per rule of reference §5.2 (and §5.1, §5.5, §5.6 it relies on).

use std::time::Duration;

use thermostat_alarms::model::Source;

use super::*;
use crate::model::{
    AdjustmentType, Backend, MetricAggregationType, Policy, StepAdjustment, TrackedMetric,
};

const T0: Timestamp = Timestamp(1_800_000_000_000);

fn at_secs(s: i64) -> Timestamp {
    T0.add_millis(s * 1000)
}

fn simple(adj: i64, cooldown_secs: u64) -> Policy {
    Policy {
        name: "out".into(),
        enabled: true,
        kind: PolicyKind::SimpleScaling {
            adjustment_type: AdjustmentType::ChangeInCapacity,
            scaling_adjustment: adj,
            min_adjustment_magnitude: None,
            cooldown: Some(Duration::from_secs(cooldown_secs)),
        },
    }
}

fn step() -> Policy {
    let s = |lower, upper, a| StepAdjustment {
        lower,
        upper,
        scaling_adjustment: a,
    };
    Policy {
        name: "steps".into(),
        enabled: true,
        kind: PolicyKind::StepScaling {
            adjustment_type: AdjustmentType::ChangeInCapacity,
            min_adjustment_magnitude: None,
            metric_aggregation_type: MetricAggregationType::Average,
            estimated_instance_warmup: Some(Duration::from_secs(120)),
            // [0, 10) +1, [10, ∞) +3 and (−∞, −20] −2 around the threshold; nothing in
            // (−20, 0).
            steps: vec![
                s(None, Some(-20.0), -2),
                s(Some(0.0), Some(10.0), 1),
                s(Some(10.0), None, 3),
            ],
        },
    }
}

fn tracking() -> Policy {
    Policy {
        name: "track".into(),
        enabled: true,
        kind: PolicyKind::TargetTrackingScaling {
            metric: TrackedMetric {
                predefined: None,
                namespace: "App".into(),
                metric_name: "Load".into(),
                dimensions: Vec::new(),
                statistic: thermostat_metrics::Statistic::Average,
            },
            target_value: 50.0,
            disable_scale_in: false,
            estimated_instance_warmup: None,
        },
    }
}

fn group() -> ScalingGroup {
    ScalingGroup {
        name: "web".into(),
        backend: Backend::Simulated,
        min_size: Some(1),
        max_size: Some(8),
        desired_capacity: Some(2),
        default_cooldown: Duration::from_secs(300),
        default_instance_warmup: Some(Duration::ZERO),
        launch: Duration::ZERO,
        policies: vec![simple(2, 120), step(), tracking()],
        scheduled_actions: Vec::new(),
        source: Source::default(),
    }
}

fn state() -> GroupState {
    GroupState::new("web", 1, 8, 2, T0)
}

fn invalid_field(e: &ManualError) -> &'static str {
    match e {
        ManualError::Invalid { field, .. } => field,
        other => panic!("not a validation error: {other:?}"),
    }
}

#[test]
fn set_desired_capacity_rejects_values_outside_the_limits() {
    // Reference §5.1, §7.9 row 3: rejected with EC2's ValidationError, not clamped.
    let (g, s) = (group(), state());
    let e = set_desired_capacity(&g, &s, 9, false, T0).unwrap_err();
    assert_eq!(
        e,
        ManualError::Invalid {
            field: "desired_capacity",
            message:
                "New SetDesiredCapacity value 9 is above max value 8 for the AutoScalingGroup."
                    .into()
        }
    );
    let e = set_desired_capacity(&g, &s, 0, false, T0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "desired_capacity: New SetDesiredCapacity value 0 is below min value 1 for the AutoScalingGroup."
    );
    // The same value: nothing to do, no activity.
    assert_eq!(set_desired_capacity(&g, &s, 2, true, T0), Ok(None));
}

#[test]
fn set_desired_capacity_records_a_user_request_and_starts_no_cooldown() {
    // Reference §5.2, §5.11: the cause; §5.5: cooldowns follow simple policies.
    let g = group();
    let mut s = state();
    let a = set_desired_capacity(&g, &s, 5, false, T0).unwrap().unwrap();
    assert_eq!(
        (a.old_desired, a.new_desired, a.policy.as_deref()),
        (2, 5, None)
    );
    assert_eq!(a.status, ActivityStatus::InProgress);
    assert!(
        a.cause.ends_with(
            "a user request explicitly set group desired capacity changing the desired capacity from 2 to 5."
        ),
        "{}",
        a.cause
    );
    s.apply_activity(&g, &a, T0, Duration::ZERO);
    assert_eq!((s.desired, s.instances.len()), (5, 5));
    assert_eq!(s.cooldown_until, None);
}

#[test]
fn honor_cooldown_refuses_during_the_cooldown_and_is_ignored_by_default() {
    // Reference §5.2, §5.5: manual changes ignore the cooldown unless HonorCooldown.
    let g = group();
    let mut s = state();
    let out = execute_policy(&g, &s, "out", PolicyExecution::default(), T0)
        .unwrap()
        .unwrap();
    s.apply_activity(&g, &out, T0, Duration::ZERO);
    assert_eq!(
        s.cooldown_until,
        Some(at_secs(120)),
        "the policy's cooldown"
    );

    let e = set_desired_capacity(&g, &s, 3, true, at_secs(60)).unwrap_err();
    let ManualError::Refused { field, until, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!((*field, *until), ("honor_cooldown", at_secs(120)));
    assert!(e.to_string().contains("in cooldown until"), "{e}");
    let honor = PolicyExecution {
        honor_cooldown: true,
        ..PolicyExecution::default()
    };
    assert!(matches!(
        execute_policy(&g, &s, "out", honor, at_secs(60)),
        Err(ManualError::Refused {
            field: "honor_cooldown",
            ..
        })
    ));
    // Without honor_cooldown both go ahead; at the end of the cooldown (inclusive,
    // §7.11) so does the honouring one.
    let a = set_desired_capacity(&g, &s, 3, false, at_secs(60)).unwrap();
    assert_eq!(a.map(|a| a.new_desired), Some(3));
    let a = execute_policy(&g, &s, "out", PolicyExecution::default(), at_secs(60)).unwrap();
    assert_eq!(a.map(|a| a.new_desired), Some(6));
    let a = execute_policy(&g, &s, "out", honor, at_secs(120)).unwrap();
    assert_eq!(a.map(|a| a.new_desired), Some(6));
}

#[test]
fn execute_policy_causes_and_clamping() {
    // Reference §5.2, §5.11: the cause; §5.1: policies clamp.
    let g = group();
    let mut s = GroupState::new("web", 1, 8, 7, T0);
    let a = execute_policy(&g, &s, "out", PolicyExecution::default(), T0)
        .unwrap()
        .unwrap();
    assert_eq!((a.new_desired, a.policy.as_deref()), (8, Some("out")));
    assert!(
        a.cause.ends_with(
            "a user request executed policy out changing the desired capacity from 7 to 8."
        ),
        "{}",
        a.cause
    );
    // At the maximum already: no change, no activity.
    s.desired = 8;
    assert_eq!(
        execute_policy(&g, &s, "out", PolicyExecution::default(), T0),
        Ok(None)
    );
}

#[test]
fn a_step_policy_needs_the_metric_value_and_the_breach_threshold() {
    // Reference §5.2, §7.7: required for StepScaling, refused otherwise; the breach picks
    // the step; none matching is an error.
    let (g, s) = (group(), state());
    let with = |m: Option<f64>, b: Option<f64>| PolicyExecution {
        honor_cooldown: false,
        metric_value: m,
        breach_threshold: b,
    };
    let e = execute_policy(&g, &s, "steps", with(None, Some(50.0)), T0).unwrap_err();
    assert_eq!(invalid_field(&e), "metric_value");
    assert!(e.to_string().contains("is required"), "{e}");
    let e = execute_policy(&g, &s, "steps", with(Some(59.0), None), T0).unwrap_err();
    assert_eq!(invalid_field(&e), "breach_threshold");
    let e = execute_policy(&g, &s, "steps", with(Some(f64::NAN), Some(50.0)), T0).unwrap_err();
    assert_eq!(invalid_field(&e), "metric_value");

    // Threshold 50, value 59: [0, 10) → +1; value 75: [10, ∞) → +3.
    let a = execute_policy(&g, &s, "steps", with(Some(59.0), Some(50.0)), T0).unwrap();
    assert_eq!(a.map(|a| a.new_desired), Some(3));
    let a = execute_policy(&g, &s, "steps", with(Some(75.0), Some(50.0)), T0).unwrap();
    assert_eq!(a.map(|a| a.new_desired), Some(5));
    // No step for a breach of −5.
    let e = execute_policy(&g, &s, "steps", with(Some(45.0), Some(50.0)), T0).unwrap_err();
    assert_eq!(invalid_field(&e), "metric_value");
    assert!(e.to_string().contains("No step adjustment found"), "{e}");

    // A simple policy refuses them.
    for (m, b, field) in [
        (Some(1.0), None, "metric_value"),
        (None, Some(1.0), "breach_threshold"),
    ] {
        let e = execute_policy(&g, &s, "out", with(m, b), T0).unwrap_err();
        assert_eq!(invalid_field(&e), field);
    }
}

#[test]
fn a_step_scale_in_waits_for_warm_up() {
    // Reference §5.6: scale-in waits while instances warm up.
    let g = group();
    let mut s = state();
    let up = PolicyExecution {
        honor_cooldown: false,
        metric_value: Some(75.0),
        breach_threshold: Some(50.0),
    };
    let a = execute_policy(&g, &s, "steps", up, T0).unwrap().unwrap();
    s.apply_activity(&g, &a, T0, Duration::ZERO);
    assert_eq!(s.cooldown_until, None, "step policies have no cooldown");
    let down = PolicyExecution {
        metric_value: Some(20.0),
        ..up
    };
    let e = execute_policy(&g, &s, "steps", down, at_secs(60)).unwrap_err();
    assert!(
        matches!(e, ManualError::Refused { field: "policy", until, .. } if until == at_secs(120)),
        "{e:?}"
    );
    let a = execute_policy(&g, &s, "steps", down, at_secs(120)).unwrap();
    assert_eq!(a.map(|a| a.new_desired), Some(3));
}

#[test]
fn target_tracking_disabled_and_unknown_policies_cannot_be_executed() {
    // Reference §5.2: ExecutePolicy takes simple and step policies.
    let mut g = group();
    let s = state();
    let e = execute_policy(&g, &s, "track", PolicyExecution::default(), T0).unwrap_err();
    assert_eq!(invalid_field(&e), "policy");
    assert!(e.to_string().contains("TargetTrackingScaling"), "{e}");
    assert_eq!(
        execute_policy(&g, &s, "nope", PolicyExecution::default(), T0),
        Err(ManualError::UnknownPolicy {
            group: "web".into(),
            policy: "nope".into()
        })
    );
    g.policies[0].enabled = false;
    let e = execute_policy(&g, &s, "out", PolicyExecution::default(), T0).unwrap_err();
    assert_eq!(invalid_field(&e), "policy");
}
