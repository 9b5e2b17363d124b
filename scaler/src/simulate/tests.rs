//! `simulate`: alarms and groups replayed together over recorded data.

use thermostat_alarms::backtest::{parse_csv, store_from};
use thermostat_metrics::Unit;

use super::*;

const CONFIG: &str = r#"
scaling_groups:
  - name: web
    min_size: 2
    max_size: 10
    simulated: {launch_seconds: 0}
    policies:
      - {name: scale-out, adjustment_type: ChangeInCapacity, scaling_adjustment: 2, cooldown_seconds: 120}
    scheduled_actions:
      - {name: night, start_time: "1970-01-01T00:09:30Z", max_size: 3}
  - name: tt
    min_size: 1
    max_size: 10
    desired_capacity: 2
    default_instance_warmup_seconds: 60
    simulated: {launch_seconds: 60}
    policies:
      - name: load
        policy_type: TargetTrackingScaling
        target_tracking:
          customized_metric: {namespace: App, metric_name: Load, statistic: Average}
          target_value: 50
alarms:
  - name: web-high-cpu
    namespace: AWS/EC2
    metric_name: CPUUtilization
    dimensions: {AutoScalingGroupName: web}
    statistic: Average
    period_seconds: 60
    evaluation_periods: 1
    threshold: 70
    comparison_operator: GreaterThanThreshold
    alarm_actions: ["policy:web/scale-out", "arn:aws:sns:eu-west-1:123456789012:ops"]
    ok_actions: ["mailto:ops@example.com"]
"#;

fn run(csv: &str, from_s: i64, to_s: i64) -> SimulationResult {
    let files = [("sim.yaml", CONFIG)];
    let alarms = thermostat_alarms::validate(&files).unwrap();
    let scaling = crate::validate(&files, &alarms).unwrap();
    let rows = parse_csv(csv).unwrap();
    let merged = merge_alarms(&alarms, &scaling);
    let store = store_from(
        &merged,
        rows.iter().map(|r| {
            (
                r.key.clone(),
                r.timestamp,
                Unit::None,
                std::slice::from_ref(&r.value),
            )
        }),
    );
    simulate(
        &alarms,
        &scaling,
        &store,
        Timestamp::from_secs(from_s),
        Timestamp::from_secs(to_s),
    )
    .unwrap()
}

fn csv() -> String {
    let mut csv = String::from("timestamp,namespace,metric_name,dimensions,value\n");
    for m in 0..12 {
        let cpu = if m < 5 { 90 } else { 20 };
        csv.push_str(&format!(
            "{},AWS/EC2,CPUUtilization,AutoScalingGroupName=web,{cpu}\n",
            m * 60_000 + 5_000
        ));
        csv.push_str(&format!("{},App,Load,,80\n", m * 60_000 + 5_000));
    }
    csv
}

#[test]
fn simple_policy_with_cooldown_and_notifications() {
    let r = run(&csv(), 0, 600);
    let web = &r.groups[0];
    let steps: Vec<(i64, u32, u32)> = web
        .activities
        .iter()
        .map(|a| (a.timestamp.as_millis() / 1000, a.old_desired, a.new_desired))
        .collect();
    // ALARM from the 60 s tick (minutes 0–4 at 90 %), re-invoked every minute; the
    // 120 s cooldown lets it scale at 60, 180 and 300 s; OK from 360 s. The scheduled
    // action at 09:30 caps the group at 3.
    assert_eq!(steps, [(60, 2, 4), (180, 4, 6), (300, 6, 8), (570, 8, 3)]);
    assert_eq!(web.final_desired_capacity, 3);
    assert_eq!(
        web.activities[0].cause,
        "At 1970-01-01T00:01:00Z a monitor alarm web-high-cpu in state ALARM triggered policy scale-out changing the desired capacity from 2 to 4."
    );
    assert_eq!(
        web.activities[3].cause,
        "At 1970-01-01T00:09:30Z a scheduled action update of AutoScalingGroup constraints to min: 2, max: 3, desired: 3 changing the desired capacity from 8 to 3."
    );
    let notes: Vec<(i64, String, StateValue)> = r
        .notifications
        .iter()
        .map(|n| {
            (
                n.timestamp.as_millis() / 1000,
                n.action.as_config_str(),
                n.new_state,
            )
        })
        .collect();
    assert_eq!(
        notes,
        [
            (
                60,
                "arn:aws:sns:eu-west-1:123456789012:ops".to_owned(),
                StateValue::Alarm
            ),
            (360, "mailto:ops@example.com".to_owned(), StateValue::Ok),
        ]
    );
}

#[test]
fn target_tracking_through_its_managed_alarm_with_warm_up() {
    let r = run(&csv(), 0, 600);
    let tt = &r.groups[1];
    let steps: Vec<(i64, u32, u32)> = tt
        .activities
        .iter()
        .map(|a| (a.timestamp.as_millis() / 1000, a.old_desired, a.new_desired))
        .collect();
    // Load 80 against target 50. AlarmHigh needs 3 of 3 one-minute datapoints: ALARM at
    // 180 s → ceil(2 × 80 / 50) = 4. The two new instances are in service at 240 s and
    // warm at 300 s, so 240 s adds nothing; at 300 s ceil(4 × 1.6) = 7; at 420 s
    // ceil(7 × 1.6) = 12, clamped to 10.
    assert_eq!(steps, [(180, 2, 4), (300, 4, 7), (420, 7, 10)]);
    assert!(tt.activities[0].cause.contains(
        "a monitor alarm TargetTracking-tt-AlarmHigh-load in state ALARM triggered policy load"
    ));
    assert!(
        r.alarms
            .alarms
            .iter()
            .any(|a| a.name == "TargetTracking-tt-AlarmLow-load")
    );
}

#[test]
fn json_has_the_documented_shape() {
    let r = run(&csv(), 0, 600);
    let v: serde_json::Value = serde_json::from_str(&render_json(&r)).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["alarms", "groups", "notifications"]);
    assert_eq!(v["alarms"][0]["name"], "web-high-cpu");
    assert_eq!(v["alarms"][0]["transitions"][0]["new_state"], "ALARM");
    assert_eq!(
        v["groups"][0]["activities"][0],
        serde_json::json!({
            "timestamp": "1970-01-01T00:01:00Z",
            "policy": "scale-out",
            "alarm": "web-high-cpu",
            "old_desired_capacity": 2,
            "new_desired_capacity": 4,
            "cause": "At 1970-01-01T00:01:00Z a monitor alarm web-high-cpu in state ALARM triggered policy scale-out changing the desired capacity from 2 to 4."
        })
    );
    assert_eq!(
        v["groups"][0]["activities"][3]["policy"],
        serde_json::Value::Null
    );
    assert_eq!(v["groups"][0]["final_desired_capacity"], 3);
    assert_eq!(
        v["notifications"][0],
        serde_json::json!({
            "timestamp": "1970-01-01T00:01:00Z",
            "alarm": "web-high-cpu",
            "action": "arn:aws:sns:eu-west-1:123456789012:ops",
            "new_state": "ALARM"
        })
    );
    let text = render_text(&r);
    assert!(
        text.contains("group web: desired 3 (4 activities)"),
        "{text}"
    );
    assert!(
        text.contains("2 notifications recorded (not sent)"),
        "{text}"
    );
}

/// Issue 15, finding 11: a range at the ends of `i64` or longer than the replay limit is an
/// error naming the bound, never an endless loop or an overflow.
#[test]
fn regression_15_extreme_ranges_are_refused() {
    let files = [("sim.yaml", CONFIG)];
    let alarms = thermostat_alarms::validate(&files).unwrap();
    let scaling = crate::validate(&files, &alarms).unwrap();
    let store = Store::new(1);
    let max = thermostat_alarms::backtest::MAX_REPLAY_DAYS * 86_400_000;
    for (from, to, want) in [
        (0, i64::MAX, "to: must be between"),
        (i64::MIN, 0, "from: must be between"),
        (i64::MIN, i64::MAX, "from: must be between"),
        (0, max + 1, "longer than 400 days"),
        (60_000, 0, "to: must not be before from"),
    ] {
        let r = simulate(&alarms, &scaling, &store, Timestamp(from), Timestamp(to));
        let err = r.map(|r| r.alarms.evaluations).unwrap_err().to_string();
        assert!(err.contains(want), "{from}..{to}: {err}");
    }
    // The last representable minutes replay and end.
    let last = Timestamp::LATEST.as_millis();
    let r = simulate(
        &alarms,
        &scaling,
        &store,
        Timestamp(last - 180_000),
        Timestamp::LATEST,
    )
    .unwrap();
    assert_eq!(r.alarms.evaluations, 3);
}
