//! The groups' capacity metrics (EC2 Auto Scaling's group metrics): recorded at every alarm
//! engine tick in `AWS/AutoScaling` with `AutoScalingGroupName=<group>`, at high resolution,
//! and read back through the public HTTP API. The dashboards draw desired vs in-service
//! capacity from them, so this is a contract.

use std::sync::Arc;

use serde_json::{Value, json};
use thermostat::app::{self, Running, Settings};
use thermostat_metrics::{ManualClock, Timestamp};

const CONFIG: &str = r#"alarms:
  - name: web-hot
    namespace: Test/Groups
    metric_name: Cpu
    dimensions: {AutoScalingGroupName: web}
    statistic: Average
    period_seconds: 10
    evaluation_periods: 1
    threshold: 70
    comparison_operator: GreaterThanThreshold
    alarm_actions: ["policy:web/scale-out"]
scaling_groups:
  - name: web
    backend: simulated
    min_size: 2
    max_size: 8
    desired_capacity: 2
    simulated: {launch_seconds: 20}
    policies:
      - name: scale-out
        policy_type: SimpleScaling
        adjustment_type: ChangeInCapacity
        scaling_adjustment: 2
        cooldown_seconds: 60
"#;

/// 2026-11-26T10:00:00Z.
const T0: i64 = 1_795_687_200_000;

async fn get(running: &Running, path: &str) -> Value {
    crate::util::get_json(running.http_addr, path).await
}

/// Maximum per 10-second period of one group metric of `web`, from T0 for 40 s.
async fn series(running: &Running, metric: &str) -> Vec<(String, f64, f64, String)> {
    let path = format!(
        "/api/v1/statistics?namespace=AWS/AutoScaling&metric_name={metric}&dimensions=AutoScalingGroupName=web&period_seconds=10&statistics=Maximum,SampleCount&start={}&end={}",
        T0 / 1000,
        T0 / 1000 + 40
    );
    let doc = get(running, &path).await;
    doc["datapoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["timestamp"].as_str().unwrap().to_owned(),
                d["Maximum"].as_f64().unwrap(),
                d["SampleCount"].as_f64().unwrap(),
                d["unit"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tick_records_desired_in_service_min_and_max_of_each_group() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("web.yaml"), CONFIG).unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(T0)));
    let settings = Settings {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        config: vec![dir.path().join("web.yaml")],
        alarm_tick_loop: false,
        ..Settings::default()
    };
    let running = app::start_with_clock(settings, clock.clone())
        .await
        .unwrap();
    let tick = |t: i64| {
        clock.set(Timestamp(t));
        running.engine.tick(Timestamp(t)).unwrap();
    };

    // T0: 2 desired and in service. Then the alarm is set to ALARM (SetAlarmState at T0):
    // the policy adds 2, which take 20 s to come in service.
    tick(T0);
    crate::util::set_alarm_state(running.http_addr, "web-hot", "ALARM", "test").await;
    tick(T0 + 10_000);
    tick(T0 + 20_000);

    let at = |s: i64| Timestamp(T0 + s * 1000).to_rfc3339();
    let values = |points: &[(String, f64, f64, String)]| -> Vec<(String, f64)> {
        points.iter().map(|(t, v, _, _)| (t.clone(), *v)).collect()
    };
    let desired = series(&running, "GroupDesiredCapacity").await;
    assert_eq!(
        values(&desired),
        vec![(at(0), 2.0), (at(10), 4.0), (at(20), 4.0)],
        "one value per tick, in 10-second periods (high resolution)"
    );
    for (_, _, count, unit) in &desired {
        assert_eq!(
            *count, 1.0,
            "one sample per tick (SetAlarmState records none)"
        );
        assert_eq!(unit, "None", "CloudWatch's unit for group metrics");
    }
    assert_eq!(
        values(&series(&running, "GroupInServiceInstances").await),
        vec![(at(0), 2.0), (at(10), 2.0), (at(20), 4.0)],
        "new instances count once in service"
    );
    assert_eq!(
        values(&series(&running, "GroupMinSize").await),
        vec![(at(0), 2.0), (at(10), 2.0), (at(20), 2.0)]
    );
    assert_eq!(
        values(&series(&running, "GroupMaxSize").await),
        vec![(at(0), 8.0), (at(10), 8.0), (at(20), 8.0)]
    );

    // The four series are listed under the group's dimension, and nothing else in the
    // namespace.
    let listed = get(&running, "/api/v1/metrics?namespace=AWS/AutoScaling").await;
    let mut names: Vec<String> = listed["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(
                m["dimensions"],
                json!({"AutoScalingGroupName": "web"}),
                "{m}"
            );
            m["metric_name"].as_str().unwrap().to_owned()
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "GroupDesiredCapacity",
            "GroupInServiceInstances",
            "GroupMaxSize",
            "GroupMinSize"
        ]
    );

    running.shutdown();
    running.wait().await.unwrap();
}
