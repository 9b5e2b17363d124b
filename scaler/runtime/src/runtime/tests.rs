//! The runtime with doubles behind its ports: a store in memory, fleets that record their
//! calls, a sink that keeps the capacity metrics.

use std::sync::Mutex;

use thermostat_alarms::history::AlarmType;
use thermostat_alarms::{ActionInvocation, RecentDatapoints, StateValue, Transition};
use thermostat_metrics::{ManualClock, Observation, Sample, SeriesKey};

use super::*;
use crate::capacity::CapacityMetricsSink;
use crate::error::{FleetError, StoreError};
use crate::fleet::{Capacity, FleetFuture};

const T0: i64 = 1_795_658_400_000;

#[derive(Debug, Default)]
struct MemoryStore {
    states: Mutex<BTreeMap<String, GroupState>>,
    activities: Mutex<BTreeMap<String, Vec<ScalingActivity>>>,
}

impl GroupStore for MemoryStore {
    fn load_group_states(&self) -> Result<Vec<(String, GroupState)>, StoreError> {
        let states = self.states.lock().unwrap();
        Ok(states.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    fn commit_groups(&self, writes: &[GroupWrite<'_>]) -> Result<(), StoreError> {
        for w in writes {
            let mut states = self.states.lock().unwrap();
            states.insert(w.group.to_owned(), w.state.clone());
            let mut activities = self.activities.lock().unwrap();
            let list = activities.entry(w.group.to_owned()).or_default();
            list.extend(w.activities.iter().cloned());
        }
        Ok(())
    }

    fn group_activities(&self, group: &str, limit: usize) -> Result<Vec<Value>, StoreError> {
        let activities = self.activities.lock().unwrap();
        let list = activities.get(group).cloned().unwrap_or_default();
        Ok(list
            .iter()
            .rev()
            .take(limit)
            .map(|a| serde_json::to_value(a).unwrap())
            .collect())
    }
}

/// A fleet that records its calls and answers with fixed sizes, or fails.
#[derive(Debug)]
struct RecordingFleet {
    calls: Mutex<Vec<String>>,
    capacity: Capacity,
    fail: Option<&'static str>,
}

impl RecordingFleet {
    fn new(min: u32, max: u32, desired: u32) -> Arc<Self> {
        Arc::new(RecordingFleet {
            calls: Mutex::new(Vec::new()),
            capacity: Capacity {
                desired,
                min,
                max,
                in_service: desired,
            },
            fail: None,
        })
    }

    fn failing(message: &'static str) -> Arc<Self> {
        Arc::new(RecordingFleet {
            calls: Mutex::new(Vec::new()),
            capacity: Capacity {
                desired: 0,
                min: 0,
                max: 0,
                in_service: 0,
            },
            fail: Some(message),
        })
    }

    fn answer(&self, call: String) -> FleetFuture<'_> {
        self.calls.lock().unwrap().push(call);
        let result = match self.fail {
            Some(m) => Err(FleetError::new(m)),
            None => Ok(self.capacity),
        };
        Box::pin(async move { result })
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl Fleet for RecordingFleet {
    fn describe<'a>(&'a self, group: &'a str) -> FleetFuture<'a> {
        self.answer(format!("describe {group}"))
    }

    fn set_desired<'a>(
        &'a self,
        group: &'a str,
        desired: u32,
        _honor_cooldown: bool,
        _cause: &'a str,
    ) -> FleetFuture<'a> {
        self.answer(format!("set_desired {group} {desired}"))
    }

    fn update_limits<'a>(
        &'a self,
        group: &'a str,
        min: Option<u32>,
        max: Option<u32>,
        desired: Option<u32>,
    ) -> FleetFuture<'a> {
        self.answer(format!("update_limits {group} {min:?} {max:?} {desired:?}"))
    }
}

#[derive(Debug, Default)]
struct KeptMetrics(Mutex<Vec<(SeriesKey, Observation<'static>)>>);

impl CapacityMetricsSink for KeptMetrics {
    fn record(&self, samples: Vec<(SeriesKey, Observation<'static>)>, _now: Timestamp) {
        self.0.lock().unwrap().extend(samples);
    }
}

struct Setup {
    alarms: AlarmSet,
    set: ScalingSet,
    store: Arc<MemoryStore>,
    metrics: Arc<KeptMetrics>,
    clock: Arc<ManualClock>,
}

fn setup(yaml: &str) -> Setup {
    let files = [("test.yaml", yaml)];
    let alarms = thermostat_alarms::validate(&files).unwrap();
    let set = thermostat_scaler::validate(&files, &alarms).unwrap();
    Setup {
        alarms: thermostat_scaler::merge_alarms(&alarms, &set),
        set,
        store: Arc::new(MemoryStore::default()),
        metrics: Arc::new(KeptMetrics::default()),
        clock: Arc::new(ManualClock::new(Timestamp(T0))),
    }
}

impl Setup {
    /// Starts a runtime whose groups all get `fleet`.
    async fn start(&self, fleet: Arc<RecordingFleet>) -> Result<Arc<ScalingRuntime>> {
        let factory = move |set: &ScalingSet| -> Result<Fleets, FleetError> {
            Ok(set
                .groups
                .iter()
                .map(|g| (g.name.clone(), Arc::clone(&fleet) as Arc<dyn Fleet>))
                .collect())
        };
        let ports = Ports {
            store: self.store.clone(),
            fleets: Arc::new(factory),
            capacity_metrics: self.metrics.clone(),
        };
        ScalingRuntime::start(
            &self.set,
            ports,
            self.clock.clone(),
            ScalingTelemetry::default(),
        )
        .await
    }

    fn at(&self, minutes: i64) -> Timestamp {
        let t = Timestamp(T0 + minutes * 60_000);
        self.clock.set(t);
        t
    }

    /// The alarm `alarm` in ALARM invoking `action` with `values`.
    fn due(&self, alarm: &str, action: &str, repeat: bool, values: &[f64]) -> ActionDue {
        let definition = self.alarms.alarm(alarm).unwrap();
        ActionDue {
            name: alarm.to_owned(),
            alarm: alarm.to_owned(),
            kind: AlarmType::MetricAlarm,
            invocation: ActionInvocation {
                action: thermostat_alarms::action::parse(action).unwrap(),
                state: StateValue::Alarm,
                repeat,
            },
            transition: Transition {
                timestamp: self.clock.now(),
                old_state: StateValue::Ok,
                new_state: StateValue::Alarm,
                reason: "test".to_owned(),
                reason_data: None,
            },
            series: None,
            recent: Some(RecentDatapoints {
                values: values.to_vec(),
                threshold: definition.threshold,
            }),
        }
    }
}

const SIMULATED: &str = r#"alarms:
  - name: hot
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
      - {name: soon, start_time: "2026-11-26T02:03:00Z", min_size: 3, desired_capacity: 9}
"#;

#[tokio::test]
async fn a_group_starts_from_its_stored_state_else_from_its_configuration() {
    let s = setup(SIMULATED);
    let runtime = s.start(RecordingFleet::new(0, 0, 0)).await.unwrap();
    let c = runtime.group_capacity("web", Timestamp(T0)).unwrap();
    assert_eq!(
        (c.min_size, c.desired, c.max_size, c.in_service),
        (2, 2, 12, 2)
    );
    assert!(runtime.group_capacity("api", Timestamp(T0)).is_none());

    let stored = GroupState::new("web", 1, 5, 4, Timestamp(T0));
    s.store
        .states
        .lock()
        .unwrap()
        .insert("web".into(), stored.clone());
    let runtime = s.start(RecordingFleet::new(0, 0, 0)).await.unwrap();
    let snapshot = runtime.snapshot();
    assert_eq!(snapshot.at, Timestamp(T0));
    assert_eq!(
        snapshot.groups,
        [GroupSnapshot {
            name: "web".into(),
            backend: BackendKind::Simulated,
            state: stored,
        }]
    );
}

#[tokio::test]
async fn one_step_runs_scheduled_actions_then_policies_then_the_simulated_fleet() {
    let s = setup(SIMULATED);
    let runtime = s.start(RecordingFleet::new(0, 0, 0)).await.unwrap();

    // The alarm fires: +2, the new instances launch for 60 s.
    let now = s.at(1);
    runtime.scale(
        &s.alarms,
        &[s.due("hot", "policy:web/out", false, &[95.0])],
        now,
    );
    let c = runtime.group_capacity("web", now).unwrap();
    assert_eq!((c.desired, c.in_service), (4, 2));
    let decisions = runtime.decisions_after(0);
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0].0, 1);
    let activities = runtime.recent_activities("web", 10).unwrap().unwrap();
    assert_eq!(activities.len(), 1);
    assert_eq!(activities[0]["status"], "Successful");

    // A re-invocation during the cooldown is decided (and kept) but changes nothing.
    let now = s.at(2);
    runtime.scale(
        &s.alarms,
        &[s.due("hot", "policy:web/out", true, &[95.0])],
        now,
    );
    let c = runtime.group_capacity("web", now).unwrap();
    assert_eq!(
        (c.desired, c.in_service),
        (4, 4),
        "launched by the reconcile"
    );
    let decisions = runtime.decisions_after(1);
    assert_eq!(decisions.len(), 1);
    assert!(decisions[0].1.activity.is_none(), "{decisions:?}");
    assert!(matches!(
        decisions[0].1.evaluations[0].outcome,
        Outcome::InCooldown { .. }
    ));

    // Nothing due: the scheduled action at 02:03 still runs, before the policies.
    let now = s.at(3);
    runtime.scale(&s.alarms, &[], now);
    let c = runtime.group_capacity("web", now).unwrap();
    assert_eq!((c.min_size, c.desired), (3, 9));
    let activities = runtime.recent_activities("web", 10).unwrap().unwrap();
    assert_eq!(activities.len(), 2);
    assert!(
        activities[0]["cause"]
            .as_str()
            .unwrap()
            .contains("scheduled action"),
        "{activities:?}"
    );
    assert_eq!(runtime.decisions_after(2), []);
    assert_eq!(runtime.recent_activities("api", 10).unwrap(), None);
}

#[tokio::test]
async fn capacity_metrics_are_the_four_auto_scaling_metrics_of_each_group() {
    let s = setup(SIMULATED);
    let runtime = s.start(RecordingFleet::new(0, 0, 0)).await.unwrap();
    let now = s.at(1);
    runtime.scale(
        &s.alarms,
        &[s.due("hot", "policy:web/out", false, &[95.0])],
        now,
    );
    runtime.record_capacity_metrics(now);
    let kept = s.metrics.0.lock().unwrap();
    let got: Vec<(String, String, f64)> = kept
        .iter()
        .map(|(k, o)| {
            assert_eq!(o.timestamp, now);
            assert_eq!(k.namespace(), "AWS/AutoScaling");
            assert_eq!(k.dimensions().next().unwrap().value, "web");
            let Sample::Value(v) = o.sample else {
                panic!("{o:?}")
            };
            (
                k.metric_name().to_owned(),
                k.dimensions().next().unwrap().name.to_owned(),
                v,
            )
        })
        .collect();
    let dim = "AutoScalingGroupName".to_owned();
    assert_eq!(
        got,
        [
            ("GroupDesiredCapacity".into(), dim.clone(), 4.0),
            ("GroupInServiceInstances".into(), dim.clone(), 2.0),
            ("GroupMinSize".into(), dim.clone(), 2.0),
            ("GroupMaxSize".into(), dim, 12.0),
        ]
    );
}

const REAL: &str = r#"alarms:
  - name: hot
    namespace: AWS/EC2
    metric_name: CPUUtilization
    dimensions: {AutoScalingGroupName: api-asg}
    statistic: Average
    period_seconds: 60
    evaluation_periods: 1
    threshold: 70
    comparison_operator: GreaterThanThreshold
    alarm_actions: ["policy:api/out"]
scaling_groups:
  - name: api
    backend: aws_autoscaling
    auto_scaling_group_name: api-asg
    policies:
      - name: out
        policy_type: SimpleScaling
        adjustment_type: ChangeInCapacity
        scaling_adjustment: 3
        cooldown_seconds: 300
  - name: sized
    backend: aws_autoscaling
    min_size: 1
    max_size: 6
    desired_capacity: 2
"#;

#[tokio::test]
async fn real_groups_are_described_or_sized_and_every_failure_is_listed() {
    let s = setup(REAL);
    let fleet = RecordingFleet::new(1, 10, 3);
    let runtime = s.start(fleet.clone()).await.unwrap();
    assert_eq!(
        fleet.calls(),
        [
            "describe api",
            "update_limits sized Some(1) Some(6) Some(2)"
        ]
    );
    let c = runtime.group_capacity("api", Timestamp(T0)).unwrap();
    assert_eq!((c.min_size, c.desired, c.max_size), (1, 3, 10));

    let Err(Error::Start(problems)) = s.start(RecordingFleet::failing("unreachable")).await else {
        panic!("a start without its groups")
    };
    let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems, ["unreachable", "unreachable"], "one per group");
}

#[tokio::test]
async fn a_real_fleet_is_called_in_the_background_and_the_cooldown_starts_on_success() {
    let s = setup(REAL);
    let fleet = RecordingFleet::new(1, 10, 3);
    let runtime = s.start(fleet.clone()).await.unwrap();
    let now = s.at(1);
    runtime.scale(
        &s.alarms,
        &[s.due("hot", "policy:api/out", false, &[95.0])],
        now,
    );
    runtime.finish(Duration::from_secs(5)).await;
    assert_eq!(fleet.calls().last().unwrap(), "set_desired api 6");
    let c = runtime.group_capacity("api", now).unwrap();
    assert_eq!(c.desired, 6);
    let activities = runtime.recent_activities("api", 10).unwrap().unwrap();
    assert_eq!(activities[0]["status"], "Successful");

    // A failed call leaves the group as it was and says why.
    s.store.states.lock().unwrap().clear();
    let failing = RecordingFleet::failing("the endpoint refused");
    let fleets = Arc::clone(&failing);
    let ports = Ports {
        store: s.store.clone(),
        fleets: Arc::new(move |set: &ScalingSet| -> Result<Fleets, FleetError> {
            Ok(set
                .groups
                .iter()
                .map(|g| (g.name.clone(), Arc::clone(&fleets) as Arc<dyn Fleet>))
                .collect())
        }),
        capacity_metrics: s.metrics.clone(),
    };
    let mut set = s.set.clone();
    set.groups.retain(|g| g.name == "sized");
    set.groups[0].policies = s.set.groups[0].policies.clone();
    let runtime = ScalingRuntime::start(
        &ScalingSet::default(),
        ports,
        s.clock.clone(),
        ScalingTelemetry::default(),
    )
    .await
    .unwrap();
    runtime.reload(&set);
    runtime.scale(
        &s.alarms,
        &[s.due("hot", "policy:sized/out", false, &[95.0])],
        now,
    );
    runtime.finish(Duration::from_secs(5)).await;
    assert_eq!(failing.calls(), ["set_desired sized 5"]);
    let activities = runtime.recent_activities("sized", 10).unwrap().unwrap();
    assert_eq!(activities[0]["status"], "Failed");
    assert_eq!(activities[0]["status_message"], "the endpoint refused");
    assert_eq!(runtime.group_capacity("sized", now).unwrap().desired, 2);
}

#[tokio::test]
async fn a_reload_keeps_kept_groups_drops_removed_ones_and_starts_new_ones() {
    let s = setup(SIMULATED);
    let runtime = s.start(RecordingFleet::new(0, 0, 0)).await.unwrap();
    let now = s.at(1);
    runtime.scale(
        &s.alarms,
        &[s.due("hot", "policy:web/out", false, &[95.0])],
        now,
    );
    assert_eq!(runtime.group_capacity("web", now).unwrap().desired, 4);

    let mut set = s.set.clone();
    let mut other = set.groups[0].clone();
    other.name = "other".into();
    set.groups.push(other);
    runtime.reload(&set);
    assert_eq!(
        runtime.group_capacity("web", now).unwrap().desired,
        4,
        "kept"
    );
    assert_eq!(
        runtime.group_capacity("other", now).unwrap().desired,
        2,
        "new"
    );

    set.groups.remove(0);
    runtime.reload(&set);
    assert!(runtime.group_capacity("web", now).is_none(), "removed");
    assert_eq!(runtime.recent_activities("web", 1).unwrap(), None);
}

const MANUAL: &str = r#"alarms:
  - name: hot
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
    min_size: 1
    max_size: 8
    desired_capacity: 2
    default_instance_warmup_seconds: 0
    simulated: {launch_seconds: 60}
    policies:
      - name: out
        policy_type: SimpleScaling
        adjustment_type: ChangeInCapacity
        scaling_adjustment: 2
        cooldown_seconds: 120
      - name: steps
        policy_type: StepScaling
        adjustment_type: ChangeInCapacity
        step_adjustments:
          - {metric_interval_lower_bound: 0, metric_interval_upper_bound: 10, scaling_adjustment: 1}
          - {metric_interval_lower_bound: 10, scaling_adjustment: 3}
      - name: track
        policy_type: TargetTrackingScaling
        target_tracking:
          predefined_metric: ASGAverageCPUUtilization
          target_value: 50
"#;

/// The field a refused manual request names.
fn manual_field(result: Result<ManualScaling>) -> (&'static str, String) {
    match result {
        Err(Error::Manual(
            ManualError::Invalid { field, message } | ManualError::Refused { field, message, .. },
        )) => (field, message),
        other => panic!("not a refused request: {other:?}"),
    }
}

#[tokio::test]
async fn set_desired_capacity_checks_the_limits_and_scales_the_simulated_group() {
    let s = setup(MANUAL);
    let runtime = s.start(RecordingFleet::new(0, 0, 0)).await.unwrap();
    let now = s.at(1);

    // Reference §5.1: outside [min, max] is EC2's ValidationError, nothing changes.
    let (field, message) = manual_field(runtime.set_desired_capacity("web", 9, false, now).await);
    assert_eq!(field, "desired_capacity");
    assert_eq!(
        message,
        "New SetDesiredCapacity value 9 is above max value 8 for the AutoScalingGroup."
    );
    let (field, _) = manual_field(runtime.set_desired_capacity("web", 0, false, now).await);
    assert_eq!(field, "desired_capacity");
    assert!(matches!(
        runtime.set_desired_capacity("api", 3, false, now).await,
        Err(Error::UnknownGroup { group }) if group == "api"
    ));
    assert!(
        runtime
            .recent_activities("web", 10)
            .unwrap()
            .unwrap()
            .is_empty()
    );

    // Within the limits: the simulated fleet launches at once, the activity has EC2's cause,
    // the state is written, and the capacity metrics show it.
    let done = runtime
        .set_desired_capacity("web", 5, false, now)
        .await
        .unwrap();
    assert_eq!(done.desired, 5);
    let activity = done.activity.unwrap();
    assert_eq!(activity.status, ActivityStatus::Successful);
    assert_eq!(
        activity.cause,
        "At 2026-11-26T02:01:00Z a user request explicitly set group desired capacity changing the desired capacity from 2 to 5."
    );
    let c = runtime.group_capacity("web", now).unwrap();
    assert_eq!((c.desired, c.in_service), (5, 2), "launching for 60 s");
    let c = runtime.group_capacity("web", s.at(2)).unwrap();
    assert_eq!(c.in_service, 5);
    let stored = runtime.recent_activities("web", 10).unwrap().unwrap();
    assert_eq!(stored, [serde_json::to_value(&activity).unwrap()]);
    assert_eq!(s.store.states.lock().unwrap()["web"].desired, 5);
    assert_eq!(
        runtime.snapshot().groups[0].state.cooldown_until,
        None,
        "SetDesiredCapacity starts no cooldown"
    );
    runtime.record_capacity_metrics(now);
    let (key, observation) = s.metrics.0.lock().unwrap()[0].clone();
    assert_eq!(key.metric_name(), "GroupDesiredCapacity");
    assert!(
        matches!(observation.sample, Sample::Value(v) if v == 5.0),
        "{observation:?}"
    );

    // The same value again: nothing to do, no activity.
    let same = runtime
        .set_desired_capacity("web", 5, true, now)
        .await
        .unwrap();
    assert_eq!(
        same,
        ManualScaling {
            desired: 5,
            activity: None
        }
    );
    assert_eq!(runtime.decisions_after(0), [], "no alarm decision");
}

#[tokio::test]
async fn honor_cooldown_refuses_during_a_simple_policys_cooldown() {
    let s = setup(MANUAL);
    let runtime = s.start(RecordingFleet::new(0, 0, 0)).await.unwrap();
    // The alarm's simple policy: 2 → 4, cooldown until 60 s launch + 120 s.
    let now = s.at(1);
    runtime.scale(
        &s.alarms,
        &[s.due("hot", "policy:web/out", false, &[95.0])],
        now,
    );
    let until = now.add_millis(180_000);
    assert_eq!(
        runtime.snapshot().groups[0].state.cooldown_until,
        Some(until)
    );

    // Reference §5.2, §5.5: with honor_cooldown refused, by default not.
    let now = s.at(2);
    let refused = runtime.set_desired_capacity("web", 3, true, now).await;
    assert!(
        matches!(&refused, Err(Error::Manual(ManualError::Refused { field: "honor_cooldown", until: u, .. })) if *u == until),
        "{refused:?}"
    );
    let (_, message) = manual_field(
        runtime
            .execute_policy("web", "out", true, None, None, now)
            .await,
    );
    assert!(message.contains("in cooldown until"), "{message}");
    assert_eq!(runtime.group_capacity("web", now).unwrap().desired, 4);

    let done = runtime
        .set_desired_capacity("web", 3, false, now)
        .await
        .unwrap();
    assert_eq!(done.desired, 3);
    // Executing the simple policy without honor_cooldown: 3 → 5, and its cooldown starts
    // again, as when its alarm runs it.
    let done = runtime
        .execute_policy("web", "out", false, None, None, now)
        .await
        .unwrap();
    assert_eq!(done.desired, 5);
    assert_eq!(
        done.activity.unwrap().cause,
        "At 2026-11-26T02:02:00Z a user request executed policy out changing the desired capacity from 3 to 5."
    );
    assert_eq!(
        runtime.snapshot().groups[0].state.cooldown_until,
        Some(now.add_millis(180_000))
    );
    let causes: Vec<String> = runtime
        .recent_activities("web", 10)
        .unwrap()
        .unwrap()
        .iter()
        .map(|a| a["cause"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(causes.len(), 3, "{causes:?}");
    assert!(causes[0].contains("executed policy out"));
    assert!(causes[1].contains("explicitly set group desired capacity"));
    assert!(causes[2].contains("a monitor alarm hot"));
}

#[tokio::test]
async fn execute_policy_takes_simple_and_step_policies_with_their_parameters() {
    let s = setup(MANUAL);
    let runtime = s.start(RecordingFleet::new(0, 0, 0)).await.unwrap();
    let now = s.at(1);

    // Reference §5.2: a step policy needs metric_value and breach_threshold.
    let (field, message) = manual_field(
        runtime
            .execute_policy("web", "steps", false, None, Some(50.0), now)
            .await,
    );
    assert_eq!(field, "metric_value");
    assert!(message.contains("required"), "{message}");
    let (field, _) = manual_field(
        runtime
            .execute_policy("web", "steps", false, Some(59.0), None, now)
            .await,
    );
    assert_eq!(field, "breach_threshold");
    let (field, _) = manual_field(
        runtime
            .execute_policy("web", "out", false, Some(59.0), None, now)
            .await,
    );
    assert_eq!(field, "metric_value", "refused for a simple policy");
    // Threshold 50, value 59: the step [0, 10) adds 1.
    let done = runtime
        .execute_policy("web", "steps", false, Some(59.0), Some(50.0), now)
        .await
        .unwrap();
    assert_eq!(done.desired, 3);
    // No step for a breach below the threshold.
    let (field, message) = manual_field(
        runtime
            .execute_policy("web", "steps", false, Some(40.0), Some(50.0), now)
            .await,
    );
    assert_eq!(field, "metric_value");
    assert!(message.contains("No step adjustment found"), "{message}");

    // Target tracking cannot be executed; unknown names are named.
    let (field, message) = manual_field(
        runtime
            .execute_policy("web", "track", false, None, None, now)
            .await,
    );
    assert_eq!(field, "policy");
    assert!(message.contains("TargetTrackingScaling"), "{message}");
    let unknown = runtime
        .execute_policy("web", "nope", false, None, None, now)
        .await;
    assert!(
        matches!(&unknown, Err(Error::Manual(ManualError::UnknownPolicy { group, policy })) if group == "web" && policy == "nope"),
        "{unknown:?}"
    );
    assert!(matches!(
        runtime
            .execute_policy("api", "out", false, None, None, now)
            .await,
        Err(Error::UnknownGroup { .. })
    ));
    assert_eq!(runtime.group_capacity("web", now).unwrap().desired, 3);
}

#[tokio::test]
async fn a_real_fleet_receives_the_manual_change_and_its_answer_is_recorded() {
    let s = setup(REAL);
    let fleet = RecordingFleet::new(1, 10, 3);
    let runtime = s.start(fleet.clone()).await.unwrap();
    let now = s.at(1);
    let done = runtime
        .set_desired_capacity("api", 7, false, now)
        .await
        .unwrap();
    assert_eq!(fleet.calls().last().unwrap(), "set_desired api 7");
    assert_eq!(done.desired, 7);
    assert_eq!(done.activity.unwrap().status, ActivityStatus::Successful);
    assert_eq!(runtime.group_capacity("api", now).unwrap().desired, 7);
    let done = runtime
        .execute_policy("api", "out", false, None, None, now)
        .await
        .unwrap();
    assert_eq!(fleet.calls().last().unwrap(), "set_desired api 10");
    assert_eq!(done.desired, 10);
    // The policy's cooldown started when the call succeeded.
    let state = &runtime.snapshot().groups[0].state;
    assert_eq!(state.cooldown_until, Some(now.add_millis(300_000)));

    // A fleet that refuses: the activity says why, the group stays as it was.
    let s = setup(REAL);
    let failing = RecordingFleet::failing("the endpoint refused");
    let runtime = s.start(RecordingFleet::new(1, 10, 3)).await.unwrap();
    let fleets = Arc::clone(&failing);
    s.store.states.lock().unwrap().clear();
    let ports = Ports {
        store: s.store.clone(),
        fleets: Arc::new(move |set: &ScalingSet| -> Result<Fleets, FleetError> {
            Ok(set
                .groups
                .iter()
                .map(|g| (g.name.clone(), Arc::clone(&fleets) as Arc<dyn Fleet>))
                .collect())
        }),
        capacity_metrics: s.metrics.clone(),
    };
    drop(runtime);
    let mut set = s.set.clone();
    set.groups.retain(|g| g.name == "sized");
    let runtime = ScalingRuntime::start(
        &ScalingSet::default(),
        ports,
        s.clock.clone(),
        ScalingTelemetry::default(),
    )
    .await
    .unwrap();
    runtime.reload(&set);
    let done = runtime
        .set_desired_capacity("sized", 4, false, now)
        .await
        .unwrap();
    assert_eq!(failing.calls(), ["set_desired sized 4"]);
    assert_eq!(done.desired, 2);
    let activity = done.activity.unwrap();
    assert_eq!(activity.status, ActivityStatus::Failed);
    assert_eq!(
        activity.status_message.as_deref(),
        Some("the endpoint refused")
    );
    let stored = runtime.recent_activities("sized", 10).unwrap().unwrap();
    assert_eq!(stored[0]["status"], "Failed");
}
