//! What happens when alarms act: notifications go to the durable dispatcher
//! (`thermostat-notify`), scaling triggers go through the pure policy math
//! (`thermostat-scaler`) to the groups' fleets (`thermostat-fleet`). Scaling activities and
//! group states are kept in the state database, beside the alarm history.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use thermostat_alarms::engine::{EngineState, TickOutput};
use thermostat_alarms::message::{AlarmDefinition, AlarmEvent};
use thermostat_alarms::{HistoryItem, Transition};
use thermostat_dashboards::actions::{GroupApi, NotificationApi};
use thermostat_fleet::{AnyFleet, AutoScalingFleet, Fleet as _, SimulatedFleet, WebhookFleet};
use thermostat_ingest::convert::Validated;
use thermostat_ingest::wal::{AppendError, Wal};
use thermostat_metrics::{
    Clock, Dimension, Observation, Resolution, Sample, SeriesKey, Store, Timestamp, Unit,
};
use thermostat_notify::{Dispatcher, Notifiers};
use thermostat_scaler::group_metrics;
use thermostat_scaler::{
    ActivityStatus, Backend, GroupState, ScalingActivity, ScalingDecision, ScalingSet,
};
use tokio_util::task::TaskTracker;

use super::config::Config;
use super::state_db::{AlarmWrite, StateDb};

const GROUP_PREFIX: &str = "group:";

/// Scaling decisions kept for [`Actions::decisions_after`].
const DECISIONS_KEPT: usize = 256;

/// A group's sizes at one time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupCapacity {
    /// `MinSize`.
    pub min_size: u32,
    /// `MaxSize`.
    pub max_size: u32,
    /// `DesiredCapacity`.
    pub desired: u32,
    /// Instances in service.
    pub in_service: u32,
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

#[derive(Debug)]
struct Groups {
    set: ScalingSet,
    states: BTreeMap<String, GroupState>,
    fleets: BTreeMap<String, Arc<AnyFleet>>,
    /// Scheduled actions were applied up to here.
    scheduled_until: Timestamp,
}

/// Routes alarm actions to notifications and scaling.
#[derive(Debug)]
pub struct Actions {
    /// Itself, for background fleet calls that must not keep it alive.
    me: std::sync::Weak<Actions>,
    db: Arc<StateDb>,
    clock: Arc<dyn Clock>,
    telemetry: Arc<thermostat_metrics::Telemetry>,
    dispatcher: Arc<Dispatcher>,
    sdk: aws_config::SdkConfig,
    groups: Mutex<Groups>,
    /// The newest scaling decisions, numbered from 1 (what each triggered policy asked for,
    /// including the ones held back by a cooldown or a warm-up).
    decisions: Mutex<(u64, VecDeque<(u64, ScalingDecision)>)>,
    tasks: TaskTracker,
    runtime: tokio::runtime::Handle,
    /// The write-ahead log the groups' capacity metrics go through (set once by the app;
    /// without it they are recorded into the store directly).
    metrics_log: std::sync::OnceLock<Arc<Wal>>,
}

/// How long a tick waits for its capacity metrics to be durable and applied.
const METRICS_LOG_TIMEOUT: Duration = Duration::from_secs(10);

fn fleets_for(
    set: &ScalingSet,
    sdk: &aws_config::SdkConfig,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<BTreeMap<String, Arc<AnyFleet>>> {
    let mut out = BTreeMap::new();
    for g in &set.groups {
        let fleet = match &g.backend {
            Backend::Simulated => {
                let f = SimulatedFleet::new(Arc::clone(clock));
                f.add_group(g);
                AnyFleet::Simulated(f)
            }
            Backend::AwsAutoscaling { .. } => {
                AnyFleet::AutoScaling(AutoScalingFleet::from_set(sdk, set))
            }
            Backend::Webhook { .. } => AnyFleet::Webhook(WebhookFleet::from_set(
                set,
                thermostat_fleet::DEFAULT_WEBHOOK_TIMEOUT,
            )?),
        };
        out.insert(g.name.clone(), Arc::new(fleet));
    }
    Ok(out)
}

impl Actions {
    /// Opens the notification outbox in `data_dir` and prepares the scaling groups: a group's
    /// state is restored from the database, else taken from its configuration (or, for
    /// `aws_autoscaling` groups without sizes, from the real group).
    ///
    /// # Errors
    /// The outbox cannot be opened, notifier settings are incomplete, or a real group cannot
    /// be described or updated.
    pub async fn start(
        config: &Config,
        data_dir: &std::path::Path,
        db: Arc<StateDb>,
        clock: Arc<dyn Clock>,
        telemetry: Arc<thermostat_metrics::Telemetry>,
    ) -> anyhow::Result<Arc<Actions>> {
        // The region comes from the environment, else us-east-1, and never from the instance
        // metadata service, so nothing leaves the machine unless an AWS back-end is used
        // (credentials are resolved at the first AWS call).
        let region = env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region))
            .load()
            .await;
        let region = env("AWS_REGION");
        let messages = config.notifications.message_settings(region.as_deref());
        // Every problem that keeps the configuration from starting is collected and reported
        // at once: missing secrets, notifiers that cannot be built, fleets that cannot be
        // reached.
        let unmet = super::config::unmet(&config.requirements, &|k| std::env::var_os(k));
        for u in unmet.iter().filter(|u| !u.fatal) {
            tracing::warn!(requirement = %u, "A requirement of the configuration is not met.");
        }
        let mut problems: Vec<String> = unmet
            .iter()
            .filter(|u| u.fatal)
            .map(ToString::to_string)
            .collect();
        let notifiers = if problems.is_empty() {
            Notifiers::from_settings(&config.notifications, Some(&sdk), &env)
                .map_err(|e| problems.push(e.to_string()))
                .ok()
        } else {
            None
        };
        let fleets = fleets_for(&config.scaling, &sdk, &clock).unwrap_or_else(|e| {
            problems.push(format!("{e:#}"));
            BTreeMap::new()
        });
        let now = clock.now();
        let stored: BTreeMap<String, GroupState> = db
            .load_states_under::<Value>(GROUP_PREFIX)?
            .into_iter()
            .filter_map(|(name, v)| Some((name, serde_json::from_value(v).ok()?)))
            .collect();
        let mut states = BTreeMap::new();
        for g in &config.scaling.groups {
            let state = match (stored.get(&g.name), &g.backend) {
                (Some(s), _) => s.clone(),
                (None, Backend::AwsAutoscaling { .. }) => {
                    let Some(fleet) = fleets.get(&g.name) else {
                        continue;
                    };
                    let cap = match g.configured_sizes() {
                        Some((min, max, desired)) => fleet
                            .update_limits(&g.name, Some(min), Some(max), Some(desired))
                            .await
                            .inspect(|_| tracing::info!(group = %g.name, min, max, desired, "Applied the configured sizes to the Auto Scaling group.")),
                        None => fleet.describe(&g.name).await,
                    };
                    match cap {
                        Ok(cap) => GroupState::for_group(g, (cap.min, cap.max, cap.desired), now),
                        Err(e) => {
                            problems.push(e.to_string());
                            continue;
                        }
                    }
                }
                (None, _) => GroupState::for_group(g, (0, 0, 0), now),
            };
            states.insert(g.name.clone(), state);
        }
        let notifiers = match notifiers {
            Some(n) if problems.is_empty() => n,
            _ => {
                let list: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
                anyhow::bail!(
                    "{} (every one listed):\n{}",
                    thermostat_alarms::backtest::count(problems.len(), "problem", "problems"),
                    list.join("\n")
                );
            }
        };
        let (history_db, counted) = (Arc::clone(&db), Arc::clone(&telemetry));
        let dispatcher = Dispatcher::open(data_dir, config.notifications.clone(), messages, notifiers, Arc::clone(&clock), &env)?
            .with_history_sink(Arc::new(move |item: HistoryItem| {
                if let thermostat_alarms::history::HistoryData::Action { action_state, .. } = &item.data {
                    counted.notification(if action_state == "Succeeded" { "delivered" } else { "failed" });
                }
                let items = [item];
                let write: AlarmWrite<'_, Value, HistoryItem> =
                    AlarmWrite { name: &items[0].alarm_name, state: None, history: &items };
                if let Err(e) = history_db.commit(&[write]) {
                    tracing::error!(error = %format!("{e:#}"), "Could not record an action in the alarm history.");
                }
            }));
        let actions = Arc::new_cyclic(|me| Actions {
            me: me.clone(),
            db,
            clock,
            telemetry,
            dispatcher: Arc::new(dispatcher),
            sdk,
            groups: Mutex::new(Groups {
                set: config.scaling.clone(),
                states,
                fleets,
                scheduled_until: now,
            }),
            decisions: Mutex::new((0, VecDeque::new())),
            tasks: TaskTracker::new(),
            runtime: tokio::runtime::Handle::current(),
            metrics_log: std::sync::OnceLock::new(),
        });
        Ok(actions)
    }

    /// The notification dispatcher (its `run` loop is spawned by the caller).
    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }

    fn lock(&self) -> MutexGuard<'_, Groups> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by the alarm engine after every tick (and SetAlarmState), under its lock: routes
    /// the tick's actions. Fleet calls run in the background; everything else is quick.
    pub fn on_tick(
        &self,
        config: &Config,
        state: &EngineState,
        out: &TickOutput,
        store: &Store,
        now: Timestamp,
    ) {
        self.notify(config, state, out, now);
        self.scale(config, state, out, store, now);
    }

    fn notify(&self, config: &Config, state: &EngineState, out: &TickOutput, now: Timestamp) {
        for (name, inv) in out.actions.iter().filter(|(_, i)| !i.action.is_scaling()) {
            // A repeat (`repeat_interval_seconds`) re-sends the current state as it stands.
            let current;
            let transition = match last_transition(out, name) {
                Some(t) => t,
                None => {
                    let Some(s) = state
                        .metric
                        .get(name)
                        .map(|i| &i.state)
                        .or_else(|| state.composites.get(name).map(|c| &c.alarm))
                    else {
                        continue;
                    };
                    current = Transition {
                        timestamp: now,
                        old_state: s.value,
                        new_state: s.value,
                        reason: s.reason.clone(),
                        reason_data: s.reason_data.clone(),
                    };
                    &current
                }
            };
            let (definition, dimensions) = match state.metric.get(name) {
                Some(inst) => match config.alarms.alarm(&inst.alarm) {
                    Some(a) => (
                        AlarmDefinition::Metric(a),
                        a.is_per_series().then(|| inst.key.dimensions()),
                    ),
                    None => continue,
                },
                None => match config.alarms.composite(name) {
                    Some(c) => (AlarmDefinition::Composite(c), None),
                    None => continue,
                },
            };
            let event = AlarmEvent {
                name,
                definition,
                transition,
                dimensions,
                configuration_updated: None,
            };
            if let Err(e) = self.dispatcher.notify(&event, inv, now) {
                tracing::error!(alarm = %name, action = %inv.action, error = %e, "Could not queue a notification.");
            }
        }
    }

    fn scale(
        &self,
        config: &Config,
        state: &EngineState,
        out: &TickOutput,
        store: &Store,
        now: Timestamp,
    ) {
        let triggers =
            thermostat_scaler::triggers(&config.alarms, &config.scaling, state, out, store, now);
        let mut groups = self.lock();
        let from = groups.scheduled_until;
        groups.scheduled_until = now;
        let Groups {
            set,
            states,
            fleets,
            ..
        } = &mut *groups;
        let mut writes: Vec<(String, Vec<ScalingActivity>)> = Vec::new();
        for g in &set.groups {
            let Some(gs) = states.get_mut(&g.name) else {
                continue;
            };
            let simulated = matches!(g.backend, Backend::Simulated);
            let launch = if simulated { g.launch } else { Duration::ZERO };
            let mut activities = Vec::new();
            for (at, action) in thermostat_scaler::due(g, from, now) {
                if let Some(a) = gs.apply_scheduled(g, action, at, launch) {
                    if !simulated {
                        self.spawn_limits(
                            &fleets[&g.name],
                            &g.name,
                            gs.min_size,
                            gs.max_size,
                            gs.desired,
                        );
                    }
                    activities.push(a);
                }
            }
            if triggers.iter().any(|t| t.group == g.name) {
                let decision = thermostat_scaler::decide(g, gs, &triggers, now);
                self.keep_decision(&decision);
                if let Some(mut activity) = decision.activity.clone() {
                    if simulated {
                        // The simulated fleet always takes the change.
                        gs.apply(g, &decision, now, launch);
                        activity.status = ActivityStatus::Successful;
                        activities.push(activity);
                    } else {
                        // The cooldown starts when the real call succeeds.
                        self.spawn_desired(Arc::clone(&fleets[&g.name]), g.name.clone(), decision);
                    }
                }
            }
            if simulated {
                gs.reconcile(now, g.launch, g.warmup_for(None));
            }
            writes.push((g.name.clone(), activities));
        }
        self.persist(states, &writes);
    }

    fn keep_decision(&self, decision: &ScalingDecision) {
        for e in &decision.evaluations {
            match &e.outcome {
                thermostat_scaler::Outcome::InCooldown { until } => {
                    tracing::info!(group = %decision.group, policy = %e.policy, alarm = %e.alarm, until = %until, "A simple scaling policy waits for the group's cooldown.");
                }
                thermostat_scaler::Outcome::WarmingUp { until } => {
                    tracing::info!(group = %decision.group, policy = %e.policy, alarm = %e.alarm, until = %until, "A scale-in waits for instances to warm up.");
                }
                _ => {}
            }
        }
        let mut guard = self.decisions.lock().unwrap_or_else(|p| p.into_inner());
        let (last, kept) = &mut *guard;
        *last += 1;
        kept.push_back((*last, decision.clone()));
        while kept.len() > DECISIONS_KEPT {
            kept.pop_front();
        }
    }

    /// The scaling decisions numbered above `seq` that are still kept (the newest 256), oldest
    /// first, with their numbers: every triggered policy's outcome, including the ones held
    /// back by a cooldown or a warm-up (which leave no activity).
    pub fn decisions_after(&self, seq: u64) -> Vec<(u64, ScalingDecision)> {
        let guard = self.decisions.lock().unwrap_or_else(|p| p.into_inner());
        guard.1.iter().filter(|(n, _)| *n > seq).cloned().collect()
    }

    /// A group's sizes and the instances in service at `at`, as Thermostat tracks them.
    pub fn group_capacity(&self, group: &str, at: Timestamp) -> Option<GroupCapacity> {
        let groups = self.lock();
        let s = groups.states.get(group)?;
        Some(GroupCapacity {
            min_size: s.min_size,
            max_size: s.max_size,
            desired: s.desired,
            in_service: s.in_service(at),
        })
    }

    /// Records every group's capacity metrics at `now` into `store`, as EC2 Auto Scaling's
    /// group metrics: namespace `AWS/AutoScaling`, dimension `AutoScalingGroupName=<group>`,
    /// `GroupDesiredCapacity`, `GroupInServiceInstances`, `GroupMinSize` and `GroupMaxSize`,
    /// unit `None`, high resolution (so 10-second periods can be queried). The alarm engine
    /// calls it at the end of every evaluation tick.
    pub fn record_group_metrics(&self, store: &Store, now: Timestamp) {
        let groups = self.lock();
        let mut batch =
            Vec::with_capacity(groups.states.len() * group_metrics::CAPACITY_METRICS.len());
        for g in &groups.set.groups {
            let Some(s) = groups.states.get(&g.name) else {
                continue;
            };
            let values = [s.desired, s.in_service(now), s.min_size, s.max_size];
            for (metric, value) in group_metrics::CAPACITY_METRICS.iter().zip(values) {
                let key = SeriesKey::new(
                    group_metrics::NAMESPACE,
                    *metric,
                    vec![Dimension::new(
                        group_metrics::GROUP_DIMENSION,
                        g.name.as_str(),
                    )],
                );
                let obs = Observation {
                    timestamp: now,
                    unit: Unit::None,
                    resolution: Resolution::High,
                    sample: Sample::Value(f64::from(value)),
                };
                batch.push((key, obs));
            }
        }
        drop(groups);
        if batch.is_empty() {
            return;
        }
        let Some(wal) = self.metrics_log.get() else {
            store.record_batch(&batch);
            return;
        };
        match wal.append_blocking(
            Validated::from_observations(&batch),
            now,
            METRICS_LOG_TIMEOUT,
        ) {
            Ok(_) => {}
            Err(e @ AppendError::TimedOut(_)) => {
                // Queued: it is applied when the log gets to it.
                tracing::warn!(error = %e, "The groups' capacity metrics of this tick are late.");
            }
            Err(e) => {
                // Nothing of it was stored: keep the samples, without the crash safety.
                tracing::warn!(error = %e, "Could not log the groups' capacity metrics; recorded them without the write-ahead log.");
                store.record_batch(&batch);
            }
        }
    }

    /// Sends the groups' capacity metrics through `wal` from now on, so that they survive a
    /// crash like pushed data. The call blocks the tick until they are durable and applied.
    pub fn log_metrics_to(&self, wal: Arc<Wal>) {
        let _ = self.metrics_log.set(wal);
    }

    fn persist(
        &self,
        states: &BTreeMap<String, GroupState>,
        writes: &[(String, Vec<ScalingActivity>)],
    ) {
        let keys: Vec<String> = writes
            .iter()
            .map(|(g, _)| format!("{GROUP_PREFIX}{g}"))
            .collect();
        let batch: Vec<AlarmWrite<'_, GroupState, ScalingActivity>> = writes
            .iter()
            .zip(&keys)
            .filter_map(|((g, acts), key)| {
                Some(AlarmWrite {
                    name: key,
                    state: Some(states.get(g)?),
                    history: acts,
                })
            })
            .collect();
        if let Err(e) = self.db.commit(&batch) {
            tracing::error!(error = %format!("{e:#}"), "Could not record scaling state.");
        }
        for (_, acts) in writes {
            for a in acts {
                self.telemetry.scaling_activity(&format!("{:?}", a.status));
                tracing::info!(group = %a.group, cause = %a.cause, "Scaling activity.");
            }
        }
    }

    fn spawn_limits(&self, fleet: &Arc<AnyFleet>, group: &str, min: u32, max: u32, desired: u32) {
        let (fleet, group) = (Arc::clone(fleet), group.to_owned());
        self.tasks.spawn_on(
            async move {
                if let Err(e) = fleet.update_limits(&group, Some(min), Some(max), Some(desired)).await {
                    tracing::error!(%group, error = %e, "A scheduled action could not update the group.");
                }
            },
            &self.runtime,
        );
    }

    fn spawn_desired(
        &self,
        fleet: Arc<AnyFleet>,
        group: String,
        decision: thermostat_scaler::ScalingDecision,
    ) {
        let Some(mut activity) = decision.activity.clone() else {
            return;
        };
        let clock = Arc::clone(&self.clock);
        let me = self.me.clone();
        self.tasks.spawn_on(
            async move {
                let result = fleet
                    .set_desired(&group, activity.new_desired, false, &activity.cause)
                    .await;
                let now = clock.now();
                match result {
                    Ok(_) => activity.status = ActivityStatus::Successful,
                    Err(e) => {
                        activity.status = ActivityStatus::Failed;
                        activity.status_message = Some(e.to_string());
                        tracing::error!(%group, error = %e, "A scaling call failed.");
                    }
                }
                let Some(me) = me.upgrade() else { return };
                let mut groups = me.lock();
                let Groups { set, states, .. } = &mut *groups;
                if let (Some(g), Some(gs)) = (set.group(&group), states.get_mut(&group))
                    && activity.status == ActivityStatus::Successful
                {
                    gs.apply(g, &decision, now, Duration::ZERO);
                }
                me.persist(states, &[(group.clone(), vec![activity])]);
            },
            &self.runtime,
        );
    }

    /// Applies a reloaded configuration: new notification settings, new groups (their state
    /// starts from the configuration), removed groups dropped, kept groups keep their state.
    pub fn on_reload(&self, config: &Config) {
        let messages = config
            .notifications
            .message_settings(env("AWS_REGION").as_deref());
        match Notifiers::from_settings(&config.notifications, Some(&self.sdk), &env) {
            Ok(n) => self
                .dispatcher
                .reconfigure(config.notifications.clone(), messages, n, &env),
            Err(e) => {
                tracing::error!(error = %e, "The new notification settings are incomplete; the previous ones stay.")
            }
        }
        let now = self.clock.now();
        let mut groups = self.lock();
        match fleets_for(&config.scaling, &self.sdk, &self.clock) {
            Ok(f) => groups.fleets = f,
            Err(e) => {
                tracing::error!(error = %e, "Could not build the fleets of the new configuration.")
            }
        }
        let mut states = std::mem::take(&mut groups.states);
        states.retain(|name, _| config.scaling.group(name).is_some());
        for g in &config.scaling.groups {
            states
                .entry(g.name.clone())
                .or_insert_with(|| GroupState::for_group(g, (0, 0, 0), now));
        }
        groups.states = states;
        groups.set = config.scaling.clone();
    }

    /// Waits for fleet calls in progress (shutdown).
    pub async fn finish(&self, grace: Duration) -> usize {
        self.tasks.close();
        let _ = tokio::time::timeout(grace, self.tasks.wait()).await;
        self.dispatcher.drain(grace).await
    }
}

fn last_transition<'a>(out: &'a TickOutput, name: &str) -> Option<&'a Transition> {
    out.transitions
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t)
}

impl GroupApi for Actions {
    fn list(&self) -> Vec<Value> {
        let now = self.clock.now();
        let groups = self.lock();
        groups
            .set
            .groups
            .iter()
            .filter_map(|g| {
                let s = groups.states.get(&g.name)?;
                let recent: Vec<Value> = self.db.history::<Value>(&format!("{GROUP_PREFIX}{}", g.name), 5).unwrap_or_default();
                Some(json!({
                    "name": g.name,
                    "backend": match &g.backend { Backend::Simulated => "simulated", Backend::AwsAutoscaling { .. } => "aws_autoscaling", Backend::Webhook { .. } => "webhook" },
                    "min_size": s.min_size,
                    "max_size": s.max_size,
                    "desired_capacity": s.desired,
                    "in_service_capacity": s.in_service(now),
                    "warming_capacity": s.warming(now),
                    "cooldown_until": s.cooldown_until.map(|t| t.to_rfc3339()),
                    "last_activities": recent,
                }))
            })
            .collect()
    }

    fn activities(&self, group: &str, limit: usize) -> Option<Vec<Value>> {
        self.lock().set.group(group)?;
        self.db
            .history::<Value>(&format!("{GROUP_PREFIX}{group}"), limit)
            .ok()
    }
}

impl NotificationApi for Actions {
    fn recent(&self, limit: usize) -> Vec<Value> {
        match self.dispatcher.recent(limit) {
            Ok(list) => list
                .iter()
                .filter_map(|n| serde_json::to_value(n).ok())
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "Could not read the notification outbox.");
                Vec::new()
            }
        }
    }
}
