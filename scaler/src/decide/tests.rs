//! Policy math: one row per vector of reference §7.7–§7.12, plus property tests.

use std::time::Duration;

use proptest::prelude::*;
use thermostat_alarms::model::Source;

use super::*;
use crate::model::{
    AdjustmentType::{self, *},
    Backend, MetricAggregationType, Policy, StepAdjustment, TrackedMetric,
};

const T0: Timestamp = Timestamp(1_800_000_000_000);

fn at_min(m: i64) -> Timestamp {
    T0.add_millis(m * 60_000)
}

fn simple(name: &str, ty: AdjustmentType, adj: i64, cooldown: Option<u64>) -> Policy {
    Policy {
        name: name.into(),
        enabled: true,
        kind: PolicyKind::SimpleScaling {
            adjustment_type: ty,
            scaling_adjustment: adj,
            min_adjustment_magnitude: None,
            cooldown: cooldown.map(Duration::from_secs),
        },
    }
}

fn step(name: &str, steps: &[(Option<f64>, Option<f64>, i64)]) -> Policy {
    Policy {
        name: name.into(),
        enabled: true,
        kind: PolicyKind::StepScaling {
            adjustment_type: PercentChangeInCapacity,
            min_adjustment_magnitude: None,
            metric_aggregation_type: MetricAggregationType::Average,
            estimated_instance_warmup: None,
            steps: steps
                .iter()
                .map(|&(lower, upper, a)| StepAdjustment {
                    lower,
                    upper,
                    scaling_adjustment: a,
                })
                .collect(),
        },
    }
}

fn tracking(name: &str, target: f64) -> Policy {
    Policy {
        name: name.into(),
        enabled: true,
        kind: PolicyKind::TargetTrackingScaling {
            metric: TrackedMetric {
                predefined: None,
                namespace: "App".into(),
                metric_name: name.into(),
                dimensions: Vec::new(),
                statistic: thermostat_metrics::Statistic::Average,
            },
            target_value: target,
            disable_scale_in: false,
            estimated_instance_warmup: None,
        },
    }
}

fn group(min: u32, max: u32, policies: Vec<Policy>) -> ScalingGroup {
    ScalingGroup {
        name: "web".into(),
        backend: Backend::Simulated,
        min_size: Some(min),
        max_size: Some(max),
        desired_capacity: None,
        default_cooldown: Duration::from_secs(300),
        default_instance_warmup: Some(Duration::from_secs(300)),
        launch: Duration::ZERO,
        policies,
        scheduled_actions: Vec::new(),
        source: Source::default(),
    }
}

fn trig(policy: &str, metric: f64, threshold: f64) -> Trigger {
    Trigger {
        alarm: format!("{policy}-alarm"),
        group: "web".into(),
        policy: policy.into(),
        state: StateValue::Alarm,
        values: vec![metric],
        threshold,
        repeat: false,
    }
}

/// §7.7 steps: scale-out `[0,10) 0, [10,20) +10 %, [20,∞) +30 %`; scale-in `(−10,0] 0,
/// (−20,−10] −10 %, (−∞,−20] −30 %`.
fn steps_7_7() -> ScalingGroup {
    group(
        0,
        100,
        vec![
            step(
                "out",
                &[
                    (Some(0.0), Some(10.0), 0),
                    (Some(10.0), Some(20.0), 10),
                    (Some(20.0), None, 30),
                ],
            ),
            step(
                "in",
                &[
                    (Some(-10.0), Some(0.0), 0),
                    (Some(-20.0), Some(-10.0), -10),
                    (None, Some(-20.0), -30),
                ],
            ),
        ],
    )
}

fn decided(g: &ScalingGroup, st: &GroupState, triggers: &[Trigger], now: Timestamp) -> u32 {
    decide(g, st, triggers, now)
        .activity
        .map_or(st.desired, |a| a.new_desired)
}

#[test]
fn section_7_7_step_scaling() {
    let g = steps_7_7();
    // (capacity before, aggregated metric, capacity after) — reference §7.7 rows 1–6.
    let rows: &[(u32, f64, u32)] = &[
        (10, 55.0, 10), // row 1: +5 in [0,10) → 0
        (10, 60.0, 11), // row 2: +10 in [10,20) (lower inclusive) → +1
        (11, 70.0, 14), // row 3: +20 in [20,∞) → +3 (3.3 → 3), warm-up over
        (14, 40.0, 13), // row 4: −10 in (−20,−10] (upper inclusive) → −1 (−1.4 → −1)
        (13, 30.0, 10), // row 5: −20 in (−∞,−20] → −3 (−3.9 → −3)
        (10, 45.0, 10), // row 6: −5 in (−10,0] → 0
    ];
    for &(before, metric, after) in rows {
        let st = GroupState::new("web", 0, 100, before, T0);
        let policy = if metric >= 50.0 { "out" } else { "in" };
        let got = decided(&g, &st, &[trig(policy, metric, 50.0)], T0);
        assert_eq!(got, after, "capacity {before}, metric {metric}");
    }
    // §7.7: no matching step → EC2's error, no scaling.
    let g2 = group(0, 100, vec![step("in", &[(Some(0.0), None, -1)])]);
    let st = GroupState::new("web", 0, 100, 10, T0);
    let mut t = trig("in", 0.14282611394791225, 85.0);
    t.values.push(0.14367561052112202);
    let d = decide(&g2, &st, &[t], T0);
    assert!(d.activity.is_none());
    assert_eq!(
        d.evaluations[0].outcome,
        Outcome::NoStep {
            message: "No step adjustment found for metric value [0.14282611394791225, 0.14367561052112202] and breach threshold 85.0".into()
        }
    );
}

#[test]
fn step_aggregation_uses_the_metric_aggregation_type() {
    // Reference §5.6: the aggregate of the alarm's recent datapoints picks the step.
    let mut g = steps_7_7();
    if let PolicyKind::StepScaling {
        metric_aggregation_type,
        ..
    } = &mut g.policies[0].kind
    {
        *metric_aggregation_type = MetricAggregationType::Maximum;
    }
    let st = GroupState::new("web", 0, 100, 10, T0);
    let mut t = trig("out", 55.0, 50.0);
    t.values = vec![55.0, 72.0, 51.0]; // max 72 → +22 → +30 %
    assert_eq!(decided(&g, &st, &[t], T0), 13);
}

#[test]
fn section_7_9_clamping_and_several_policies() {
    // Row 1: max 3, current 2, +3 → 3.
    let g = group(0, 3, vec![simple("up", ChangeInCapacity, 3, None)]);
    let st = GroupState::new("web", 0, 3, 2, T0);
    assert_eq!(decided(&g, &st, &[trig("up", 90.0, 50.0)], T0), 3);
    // Row 2: min 2, current 3, −2 → 2.
    let g = group(2, 10, vec![simple("down", ChangeInCapacity, -2, None)]);
    let st = GroupState::new("web", 2, 10, 3, T0);
    assert_eq!(decided(&g, &st, &[trig("down", 10.0, 50.0)], T0), 2);
    // Row 3: SetDesiredCapacity outside the limits is rejected, not clamped.
    assert_eq!(
        crate::group_state::check_set_desired(0, 1, 2),
        Err("New SetDesiredCapacity value 2 is above max value 1 for the AutoScalingGroup.".into())
    );
    // Row 4: +1 and +2 fire together → +2, one activity naming the winner.
    let g = group(
        0,
        20,
        vec![
            simple("a", ChangeInCapacity, 1, None),
            simple("b", ChangeInCapacity, 2, None),
        ],
    );
    let st = GroupState::new("web", 0, 20, 4, T0);
    let d = decide(&g, &st, &[trig("a", 90.0, 50.0), trig("b", 90.0, 50.0)], T0);
    let a = d.activity.expect("one activity");
    assert_eq!((a.new_desired, a.policy.as_deref()), (6, Some("b")));
    // Row 5: at 8, "remove 3" vs "−25 %" (= 2) → remove 2 → 6.
    let g = group(
        0,
        20,
        vec![
            simple("minus3", ChangeInCapacity, -3, None),
            simple("quarter", PercentChangeInCapacity, -25, None),
        ],
    );
    let st = GroupState::new("web", 0, 20, 8, T0);
    let both = [trig("minus3", 10.0, 50.0), trig("quarter", 10.0, 50.0)];
    assert_eq!(decided(&g, &st, &both, T0), 6);
    // Row 6: at 10, "+3" vs "+200 %" → 30.
    let g = group(
        0,
        50,
        vec![
            simple("plus3", ChangeInCapacity, 3, None),
            simple("triple", PercentChangeInCapacity, 200, None),
        ],
    );
    let st = GroupState::new("web", 0, 50, 10, T0);
    let both = [trig("plus3", 90.0, 50.0), trig("triple", 90.0, 50.0)];
    assert_eq!(decided(&g, &st, &both, T0), 30);
    // Row 7: TT A wants scale-in, TT B is neutral (no alarm) → no scale-in.
    let g = group(0, 50, vec![tracking("a", 50.0), tracking("b", 50.0)]);
    let st = GroupState::new("web", 0, 50, 10, T0);
    let d = decide(&g, &st, &[trig("a", 20.0, 45.0)], T0);
    assert!(d.activity.is_none());
    assert_eq!(d.evaluations[0].outcome, Outcome::ScaleInNotAgreed);
    // ...and when both want scale-in, the larger of the two results wins.
    let both = [trig("a", 20.0, 45.0), trig("b", 40.0, 45.0)];
    assert_eq!(decided(&g, &st, &both, T0), 8);
    // Row 8: TT A wants 12, TT B wants 10 → 12 (scale out if any wants to).
    let both = [trig("a", 60.0, 50.0), trig("b", 50.0, 50.0)];
    assert_eq!(decided(&g, &st, &both, T0), 12);
    // Row 9 (predictive wants 8, TT wants 10 → 10): predictive scaling is not
    // implemented; the same "largest wins" rule is covered by rows 4–6 and 8.
}

#[test]
fn section_7_10_warm_up() {
    // Non-warming 10, desired 11 (1 warming), steps as in §7.7.
    let g = steps_7_7();
    let mut st = GroupState::new("web", 0, 100, 10, T0);
    st.desired = 11;
    st.reconcile(T0, Duration::ZERO, Duration::from_secs(300));
    let now = at_min(1);
    assert_eq!((st.warm(now), st.warming(now)), (10, 1));
    // Row 1: metric 62 → +10 % of 10 = 1 → 11; max(11, 11) → no activity.
    let d = decide(&g, &st, &[trig("out", 62.0, 50.0)], now);
    assert!(d.activity.is_none(), "{d:?}");
    // Row 2: metric 70 → +30 % of 10 = 3 → 13 (adds 2).
    assert_eq!(decided(&g, &st, &[trig("out", 70.0, 50.0)], now), 13);
    // Row 3: a scale-in alarm during warm-up is blocked → 11.
    let d = decide(&g, &st, &[trig("in", 35.0, 50.0)], now);
    assert!(d.activity.is_none());
    assert_eq!(
        d.evaluations[0].outcome,
        Outcome::WarmingUp {
            until: T0.add_millis(300_000)
        }
    );
    // Once warm, the same scale-in runs (−15 → −10 % of 11 = −1).
    assert_eq!(decided(&g, &st, &[trig("in", 35.0, 50.0)], at_min(5)), 10);
}

#[test]
fn section_7_11_simple_scaling_with_cooldown() {
    // Simple +1, cooldown 300 s, instances launch instantly, alarm in ALARM for 12 min,
    // invoked every minute: scale at 0, 5 and 10 min (boundary inclusive) → +3.
    let g = group(0, 100, vec![simple("up", ChangeInCapacity, 1, Some(300))]);
    let mut st = GroupState::new("web", 0, 100, 2, T0);
    let mut scaled_at = Vec::new();
    for m in 0..12 {
        let now = at_min(m);
        let mut t = trig("up", 90.0, 50.0);
        t.repeat = m > 0;
        let d = decide(&g, &st, &[t], now);
        if d.activity.is_some() {
            scaled_at.push(m);
        } else {
            assert!(matches!(
                d.evaluations[0].outcome,
                Outcome::InCooldown { .. }
            ));
        }
        st.apply(&g, &d, now, Duration::ZERO);
    }
    assert_eq!(scaled_at, [0, 5, 10]);
    assert_eq!(st.desired, 5);
}

#[test]
fn cooldown_starts_when_launched_instances_are_in_service() {
    // Reference §5.5: the cooldown starts when the last instance finishes launching.
    let g = group(0, 100, vec![simple("up", ChangeInCapacity, 1, Some(300))]);
    let mut st = GroupState::new("web", 0, 100, 2, T0);
    let d = decide(&g, &st, &[trig("up", 90.0, 50.0)], T0);
    st.apply(&g, &d, T0, Duration::from_secs(60));
    assert_eq!(st.cooldown_until, Some(T0.add_millis(360_000)));
}

#[test]
fn section_7_12_target_tracking() {
    // (current, metric, min, desired) with target 50 — reference §7.12 rows 1–6.
    let rows: &[(u32, f64, u32, u32)] = &[
        (2, 75.0, 0, 3),
        (3, 75.0, 0, 5),
        (5, 35.0, 0, 4),
        (4, 30.0, 0, 3),
        (10, 50.0, 0, 10),
        (2, 5.0, 2, 2),
    ];
    for &(current, metric, min, want) in rows {
        let g = group(min, 100, vec![tracking("cpu", 50.0)]);
        let st = GroupState::new("web", min, 100, current, T0);
        let got = decided(&g, &st, &[trig("cpu", metric, 50.0)], T0);
        assert_eq!(got, want, "current {current}, metric {metric}");
    }
    // DisableScaleIn: never removes capacity.
    let mut g = group(0, 100, vec![tracking("cpu", 50.0)]);
    if let PolicyKind::TargetTrackingScaling {
        disable_scale_in, ..
    } = &mut g.policies[0].kind
    {
        *disable_scale_in = true;
    }
    let st = GroupState::new("web", 0, 100, 5, T0);
    let d = decide(&g, &st, &[trig("cpu", 35.0, 45.0)], T0);
    assert_eq!(d.evaluations[0].outcome, Outcome::ScaleInDisabled);
}

#[test]
fn cause_names_the_winning_alarm_and_policy() {
    let g = group(0, 20, vec![simple("scale-out", ChangeInCapacity, 2, None)]);
    let st = GroupState::new("web", 0, 20, 2, T0);
    let mut t = trig("scale-out", 90.0, 70.0);
    t.alarm = "web-high-cpu".into();
    let a = decide(&g, &st, &[t], T0).activity.unwrap();
    assert_eq!(
        a.cause,
        "At 2027-01-15T08:00:00Z a monitor alarm web-high-cpu in state ALARM triggered policy scale-out changing the desired capacity from 2 to 4."
    );
    assert_eq!(a.status, ActivityStatus::InProgress);
}

fn any_policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        (-5i64..6, 0u64..600).prop_map(|(a, c)| simple("p", ChangeInCapacity, a, Some(c))),
        (-80i64..200).prop_map(|a| simple("p", PercentChangeInCapacity, a, None)),
        (0i64..30).prop_map(|a| simple("p", ExactCapacity, a, None)),
        Just(steps_7_7().policies[0].clone()),
        Just(steps_7_7().policies[1].clone()),
        (1.0f64..100.0).prop_map(|t| tracking("p", t)),
    ]
}

proptest! {
    /// The desired capacity stays within [min, max] whatever fires when.
    #[test]
    fn capacity_always_within_min_and_max(
        min in 0u32..5,
        span in 0u32..20,
        start in 0u32..30,
        policies in proptest::collection::vec(any_policy(), 1..4),
        events in proptest::collection::vec((0usize..4, 0.0f64..150.0, 0i64..3), 1..40),
    ) {
        let max = min + span;
        let policies: Vec<Policy> = policies
            .into_iter()
            .enumerate()
            .map(|(i, mut p)| { p.name = format!("p{i}"); p })
            .collect();
        let n = policies.len();
        let g = group(min, max, policies);
        let mut st = GroupState::new("web", min, max, start, T0);
        let mut now = T0;
        for (which, metric, gap) in events {
            now = now.add_millis(gap * 60_000);
            let t = trig(&format!("p{}", which % n), metric, 50.0);
            let d = decide(&g, &st, &[t], now);
            st.apply(&g, &d, now, Duration::from_secs(60));
            prop_assert!(st.desired >= min && st.desired <= max, "{} not in [{min}, {max}]", st.desired);
            prop_assert_eq!(st.instances.len() as u32, st.desired);
        }
    }

    /// A simple policy never starts an activity while the cooldown of the previous one
    /// runs.
    #[test]
    fn cooldown_is_respected(
        cooldown in 0u64..900,
        gaps in proptest::collection::vec(0i64..400, 1..40),
        launch in 0u64..120,
    ) {
        let g = group(0, 1000, vec![simple("up", ChangeInCapacity, 1, Some(cooldown))]);
        let mut st = GroupState::new("web", 0, 1000, 1, T0);
        let mut now = T0;
        let mut last: Option<Timestamp> = None;
        for gap in gaps {
            now = now.add_millis(gap * 1000);
            let d = decide(&g, &st, &[trig("up", 90.0, 50.0)], now);
            if d.activity.is_some() {
                if let Some(l) = last {
                    let earliest = l.add_millis(((launch + cooldown) * 1000) as i64);
                    prop_assert!(now >= earliest, "scaled at {now} before {earliest}");
                }
                last = Some(now);
            }
            st.apply(&g, &d, now, Duration::from_secs(launch));
        }
    }
}
