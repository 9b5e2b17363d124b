//! The scaling shell on a manual clock ("paused time"): the real alarm engine and action
//! router, ticked at chosen times, show cooldowns, launch and warm-up of the simulated fleet,
//! and scheduled actions taking effect when they are due.

use std::sync::Arc;

use serde_json::Value;
use thermostat::app::actions::Actions;
use thermostat::config;
use thermostat_alarms_runtime::AlarmRuntime;
use thermostat_dashboards::actions::GroupApi;
use thermostat_metrics::{
    Dimension, ManualClock, Observation, Resolution, Sample, SeriesKey, Store, Timestamp, Unit,
};
use thermostat_statedb::StateDb;

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
    let actions = Actions::start(
        &cfg,
        dir.path(),
        None,
        Arc::clone(&db) as _,
        clock.clone(),
        Default::default(),
        Default::default(),
    )
    .await
    .unwrap();
    let engine = AlarmRuntime::start(
        Arc::new(cfg.alarms),
        Arc::clone(&store),
        clock.clone(),
        db,
        actions.clone(),
        Default::default(),
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

/// `repeat_interval_seconds` through the real engine and dispatcher: while the alarm stays in
/// ALARM the webhook gets the notification again every interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeat_interval_renotifies_through_the_dispatcher() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    let hits = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&hits);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let h = Arc::clone(&h);
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let yaml = format!(
        "alarms:\n  - name: hot\n    namespace: AWS/EC2\n    metric_name: CPUUtilization\n    dimensions: {{AutoScalingGroupName: web}}\n    statistic: Maximum\n    period_seconds: 60\n    evaluation_periods: 1\n    threshold: 70\n    comparison_operator: GreaterThanThreshold\n    repeat_interval_seconds: 120\n    alarm_actions: [\"{hook}\"]\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = config::validate(&[("a.yaml".to_owned(), yaml)]).unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(T0)));
    let store = Arc::new(Store::new(4));
    let db = Arc::new(StateDb::open(dir.path()).unwrap());
    let actions = Actions::start(
        &cfg,
        dir.path(),
        None,
        Arc::clone(&db) as _,
        clock.clone(),
        Default::default(),
        Default::default(),
    )
    .await
    .unwrap();
    let dispatcher = Arc::clone(actions.dispatcher());
    let stop = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn({
        let stop = stop.clone();
        async move { dispatcher.run(stop.cancelled_owned()).await }
    });
    let engine = AlarmRuntime::start(
        Arc::new(cfg.alarms),
        Arc::clone(&store),
        clock.clone(),
        db,
        actions.clone(),
        Default::default(),
    )
    .unwrap();
    for m in 0..6 {
        push_cpu(&store, T0 + m * 60_000 + 10_000, 95.0);
        let t = Timestamp(T0 + (m + 1) * 60_000);
        clock.set(t);
        engine.tick(t).unwrap();
    }
    // ALARM at minute 1, repeats at 3 and 5.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while hits.load(Ordering::SeqCst) < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "got {} notifications",
            hits.load(Ordering::SeqCst)
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    stop.cancel();
    run.await.unwrap();
}
