//! The scaling shell on a manual clock ("paused time"): the real alarm engine and action
//! router, ticked at chosen times, show cooldowns, launch and warm-up of the simulated fleet,
//! and scheduled actions taking effect when they are due.

use std::sync::Arc;

use serde_json::Value;
use thermostat::app::actions::Actions;
use thermostat::app::engine::AlarmEngine;
use thermostat::app::{config, state_db::StateDb};
use thermostat_dashboards::actions::GroupApi;
use thermostat_metrics::{
    Dimension, ManualClock, Observation, Resolution, Sample, SeriesKey, Store, Timestamp, Unit,
};

const YAML: &str = r#"alarms:
  - name: web-cpu
    namespace: AWS/EC2
    metric_name: CPUUtilization
    dimensions: {AutoScalingGroupName: web}
    statistic: Average
    period_seconds: 60
    evaluation_periods: 1
    threshold: 70
    comparison_operator: GreaterThanThreshold
    alarm_actions: ["policy:web/out"]
scaling_groups:
  - name: web
    backend: simulated
    min_size: 2
    max_size: 12
    desired_capacity: 2
    default_instance_warmup_seconds: 0
    simulated: {launch_seconds: 60}
    policies:
      - name: out
        policy_type: SimpleScaling
        adjustment_type: ChangeInCapacity
        scaling_adjustment: 2
        cooldown_seconds: 120
    scheduled_actions:
      - {name: nightly, recurrence: "0 3 * * *", time_zone: UTC, min_size: 3, max_size: 12, desired_capacity: 10}
"#;

/// 2026-11-26T02:00:00Z: one hour before the scheduled action.
const T0: i64 = 1_795_658_400_000;

fn push_cpu(store: &Store, at: i64, v: f64) {
    let key = SeriesKey::new(
        "AWS/EC2",
        "CPUUtilization",
        vec![Dimension::new("AutoScalingGroupName", "web")],
    );
    let obs = Observation {
        timestamp: Timestamp(at),
        unit: Unit::Percent,
        resolution: Resolution::Standard,
        sample: Sample::Value(v),
    };
    store.record_batch(&[(key, obs)]);
}

fn group(actions: &Actions) -> Value {
    actions
        .list()
        .into_iter()
        .find(|g| g["name"] == "web")
        .unwrap()
}

#[tokio::test]
async fn cooldown_launch_and_scheduled_actions_follow_the_clock() {
    assert_eq!(
        jiff::Timestamp::from_millisecond(T0).unwrap().to_string(),
        "2026-11-26T02:00:00Z"
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = config::validate(&[("web.yaml".to_owned(), YAML.to_owned())]).unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(T0)));
    let store = Arc::new(Store::new(4));
    let db = Arc::new(StateDb::open(dir.path()).unwrap());
    let actions = Actions::start(&cfg, dir.path(), Arc::clone(&db), clock.clone())
        .await
        .unwrap();
    let engine = AlarmEngine::start(
        Vec::new(),
        Arc::clone(&store),
        clock.clone(),
        cfg,
        db,
        actions.clone(),
    )
    .unwrap();
    let tick = |minutes: i64| {
        let t = Timestamp(T0 + minutes * 60_000);
        clock.set(t);
        engine.tick(t).unwrap();
    };

    // Minute 0 is hot: at 00:01 the alarm fires and the policy adds 2.
    push_cpu(&store, T0 + 10_000, 95.0);
    tick(1);
    let g = group(&actions);
    assert_eq!(g["desired_capacity"], 4, "{g}");
    assert_eq!(
        g["in_service_capacity"], 2,
        "new instances take 60 s to launch"
    );

    // Still hot: the alarm re-invokes the policy every minute, but the 120 s cooldown (from
    // when the instances are in service) holds it.
    for m in 1..3 {
        push_cpu(&store, T0 + m * 60_000 + 10_000, 95.0);
    }
    tick(2);
    let g = group(&actions);
    assert_eq!(
        (
            g["desired_capacity"].as_u64(),
            g["in_service_capacity"].as_u64()
        ),
        (Some(4), Some(4)),
        "{g}"
    );
    tick(3);
    assert_eq!(
        group(&actions)["desired_capacity"],
        4,
        "cooldown until 00:04"
    );
    for m in 3..5 {
        push_cpu(&store, T0 + m * 60_000 + 10_000, 95.0);
    }
    tick(4);
    tick(5);
    let g = group(&actions);
    assert_eq!(
        g["desired_capacity"], 6,
        "cooldown over: the next re-invocation scales again: {g}"
    );

    // The scheduled action is due at 03:00 UTC: nothing before, min/desired after.
    tick(59);
    assert_eq!(group(&actions)["min_size"], 2);
    tick(60);
    let g = group(&actions);
    assert_eq!(
        (g["min_size"].as_u64(), g["desired_capacity"].as_u64()),
        (Some(3), Some(10)),
        "{g}"
    );
    let acts = actions.activities("web", 10).unwrap();
    assert!(
        acts[0]["cause"]
            .as_str()
            .unwrap()
            .contains("scheduled action"),
        "{acts:?}"
    );
    assert_eq!(
        acts.len(),
        3,
        "two policy activities and one scheduled: {acts:?}"
    );
}
