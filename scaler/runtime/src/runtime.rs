//! [`ScalingRuntime`]: the scaling groups as one running component.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use serde_json::Value;
use thermostat_alarms::{ActionDue, AlarmSet};
use thermostat_metrics::{Clock, Timestamp};
use thermostat_scaler::{
    ActivityStatus, Backend, BackendKind, GroupState, ManualError, Outcome, PolicyExecution,
    ScalingActivity, ScalingDecision, ScalingGroup, ScalingSet,
};
use tokio_util::task::TaskTracker;

use crate::capacity::{CapacityMetricsSink, GroupCapacity, capacity_samples};
use crate::error::{Error, FleetError, Result};
use crate::fleet::{Fleet, FleetFactory, Fleets};
use crate::store::{GroupStore, GroupWrite};
use crate::telemetry::ScalingTelemetry;

/// Scaling decisions kept for [`ScalingRuntime::decisions_after`].
pub const DECISIONS_KEPT: usize = 256;

/// What the runtime reaches the outside through.
#[derive(Clone)]
pub struct Ports {
    /// Where group states and activities are kept.
    pub store: Arc<dyn GroupStore>,
    /// Builds the fleets of a configuration (at start-up and on every reload).
    pub fleets: Arc<dyn FleetFactory>,
    /// Where the groups' capacity metrics go.
    pub capacity_metrics: Arc<dyn CapacityMetricsSink>,
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports")
            .field("store", &self.store)
            .field("capacity_metrics", &self.capacity_metrics)
            .finish_non_exhaustive()
    }
}

/// One group as the runtime tracks it (for read-only views).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSnapshot {
    /// The group's name.
    pub name: String,
    /// Where its capacity lives.
    pub backend: BackendKind,
    /// Its state.
    pub state: GroupState,
}

/// Every group, in configuration order, at one time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// When it was taken (the runtime's clock).
    pub at: Timestamp,
    /// The groups that have a state.
    pub groups: Vec<GroupSnapshot>,
}

/// What a request to scale by hand did ([`ScalingRuntime::set_desired_capacity`],
/// [`ScalingRuntime::execute_policy`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManualScaling {
    /// The group's desired capacity after the request (as it was when the fleet refused).
    pub desired: u32,
    /// The activity recorded: none when the desired capacity stays as it is; `Successful`,
    /// or `Failed` with its `status_message` when the fleet refused the change.
    pub activity: Option<ScalingActivity>,
}

/// Everything behind the runtime's lock.
#[derive(Debug)]
struct Groups {
    set: ScalingSet,
    states: BTreeMap<String, GroupState>,
    fleets: Fleets,
    /// Scheduled actions were applied up to here.
    scheduled_until: Timestamp,
    /// The number of the newest decision.
    last_decision: u64,
    /// The newest decisions, numbered from 1, oldest first.
    decisions: VecDeque<(u64, ScalingDecision)>,
}

/// The scaling groups as one running component: their states, fleets, policies, cooldowns,
/// scheduled actions and activities behind one lock, driven by alarm actions
/// ([`scale`](Self::scale)) and a clock.
///
/// Group states are kept in memory and written through the [`GroupStore`] after every
/// [`scale`](Self::scale). Calls to real fleets run in the background (on the Tokio runtime
/// the runtime was started on); [`finish`](Self::finish) waits for them.
pub struct ScalingRuntime {
    /// Itself, for background fleet calls that must not keep it alive.
    me: Weak<ScalingRuntime>,
    ports: Ports,
    clock: Arc<dyn Clock>,
    telemetry: ScalingTelemetry,
    groups: Mutex<Groups>,
    tasks: TaskTracker,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for ScalingRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScalingRuntime")
            .field("ports", &self.ports)
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

// === impl ScalingRuntime ===

impl ScalingRuntime {
    /// Prepares the groups of `set`: a group's state is restored from the store, else taken
    /// from its configuration, or, for an `aws_autoscaling` group without a stored state,
    /// from the real group (which gets the configured sizes when there are any). Must be
    /// called within a Tokio runtime, which runs the fleet calls from then on.
    ///
    /// # Errors
    /// [`Error::Store`] when the stored states cannot be read; [`Error::Start`] listing every
    /// fleet that cannot be built and every real group that cannot be described or updated.
    pub async fn start(
        set: &ScalingSet,
        ports: Ports,
        clock: Arc<dyn Clock>,
        telemetry: ScalingTelemetry,
    ) -> Result<Arc<ScalingRuntime>> {
        let mut problems = Vec::new();
        let fleets = ports.fleets.fleets(set).unwrap_or_else(|e| {
            problems.push(Error::Fleet(e));
            Fleets::new()
        });
        let now = clock.now();
        let stored: BTreeMap<String, GroupState> =
            ports.store.load_group_states()?.into_iter().collect();
        let mut states = BTreeMap::new();
        for g in &set.groups {
            let state = match (stored.get(&g.name), &g.backend) {
                (Some(s), _) => s.clone(),
                (None, Backend::AwsAutoscaling { .. }) => {
                    let Some(fleet) = fleets.get(&g.name) else {
                        continue;
                    };
                    let capacity = match g.configured_sizes() {
                        Some((min, max, desired)) => fleet
                            .update_limits(&g.name, Some(min), Some(max), Some(desired))
                            .await
                            .inspect(|_| tracing::info!(group = %g.name, min, max, desired, "Applied the configured sizes to the Auto Scaling group.")),
                        None => fleet.describe(&g.name).await,
                    };
                    match capacity {
                        Ok(c) => GroupState::for_group(g, (c.min, c.max, c.desired), now),
                        Err(e) => {
                            problems.push(Error::Fleet(e));
                            continue;
                        }
                    }
                }
                (None, _) => GroupState::for_group(g, (0, 0, 0), now),
            };
            states.insert(g.name.clone(), state);
        }
        if !problems.is_empty() {
            return Err(Error::Start(problems));
        }
        Ok(Arc::new_cyclic(|me| ScalingRuntime {
            me: me.clone(),
            ports,
            clock,
            telemetry,
            groups: Mutex::new(Groups {
                set: set.clone(),
                states,
                fleets,
                scheduled_until: now,
                last_decision: 0,
                decisions: VecDeque::new(),
            }),
            tasks: TaskTracker::new(),
            runtime: tokio::runtime::Handle::current(),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Groups> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One step at `now`, after every alarm tick and every SetAlarmState (`alarms` is the
    /// set the alarms were evaluated with, `due` the actions they invoke, any kind): for each
    /// group, the scheduled actions due since the previous step, then the policies `due`
    /// triggers ([`thermostat_scaler::decide()`]), then the simulated fleet's reconcile; then
    /// every group's state and new activities are written. Calls to real fleets run in the
    /// background; everything else is quick, so it may be called under the caller's lock.
    pub fn scale(&self, alarms: &AlarmSet, due: &[ActionDue], now: Timestamp) {
        let mut groups = self.lock();
        let Groups {
            set,
            states,
            fleets,
            scheduled_until,
            last_decision,
            decisions,
        } = &mut *groups;
        let triggers = thermostat_scaler::triggers(alarms, set, due);
        let from = std::mem::replace(scheduled_until, now);
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
                    if !simulated && let Some(fleet) = fleets.get(&g.name) {
                        self.spawn_limits(fleet, &g.name, gs.min_size, gs.max_size, gs.desired);
                    }
                    activities.push(a);
                }
            }
            if triggers.iter().any(|t| t.group == g.name) {
                let decision = thermostat_scaler::decide(g, gs, &triggers, now);
                keep_decision(last_decision, decisions, &decision);
                if let Some(mut activity) = decision.activity.clone() {
                    if simulated {
                        // The simulated fleet always takes the change.
                        gs.apply(g, &decision, now, launch);
                        activity.status = ActivityStatus::Successful;
                        activities.push(activity);
                    } else if let Some(fleet) = fleets.get(&g.name) {
                        // The cooldown starts when the real call succeeds; the step does
                        // not wait for it.
                        drop(self.spawn_desired(
                            Arc::clone(fleet),
                            g.name.clone(),
                            activity,
                            false,
                        ));
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

    /// EC2 Auto Scaling's `SetDesiredCapacity` at `now`
    /// ([`thermostat_scaler::manual::set_desired_capacity`]): `desired` must lie within the
    /// group's `[min, max]`; by default the cooldown is ignored, with `honor_cooldown` a group
    /// in cooldown refuses; the change starts no cooldown. The activity (cause `At <time> a
    /// user request explicitly set group desired capacity changing the desired capacity from
    /// A to B.`) goes the way an alarm's does: the simulated fleet follows at once; a real
    /// fleet is called (with `honor_cooldown` passed on) in the background task an alarm's
    /// change would use, and this waits for it; then the state and the activity are
    /// written.
    ///
    /// # Errors
    /// [`Error::UnknownGroup`]; [`Error::Manual`] with [`ManualError::Invalid`]
    /// (`desired_capacity` outside the limits, EC2's `ValidationError` text) or
    /// [`ManualError::Refused`] (`honor_cooldown`); [`Error::Fleet`] when a real group has no
    /// fleet or its call did not finish (shutdown). A fleet that refuses the change is not an
    /// error: the activity is `Failed`.
    pub async fn set_desired_capacity(
        &self,
        group: &str,
        desired: u32,
        honor_cooldown: bool,
        now: Timestamp,
    ) -> Result<ManualScaling> {
        self.by_hand(group, honor_cooldown, now, |g, s| {
            thermostat_scaler::manual::set_desired_capacity(g, s, desired, honor_cooldown, now)
        })
        .await
    }

    /// EC2 Auto Scaling's `ExecutePolicy` at `now`
    /// ([`thermostat_scaler::manual::execute_policy`]): a simple or step policy of `group`
    /// runs as if its alarm had invoked it, with `metric_value` and `breach_threshold`
    /// (required for a step policy, refused for a simple one) in place of the alarm's
    /// datapoints and threshold. `honor_cooldown` (EC2's default is false) holds a simple
    /// policy back during the cooldown; step policies have none. A simple policy's change
    /// starts its cooldown as an alarm's does. Cause: `At <time> a user request executed
    /// policy P changing the desired capacity from A to B.`; the change goes the way of
    /// [`set_desired_capacity`](Self::set_desired_capacity)'s (the fleet is called without
    /// `honor_cooldown`, as for alarms: Thermostat runs the policy).
    ///
    /// # Errors
    /// [`Error::UnknownGroup`]; [`Error::Manual`] with [`ManualError::UnknownPolicy`],
    /// [`ManualError::Invalid`] (a target-tracking or disabled `policy`, a missing or refused
    /// `metric_value` / `breach_threshold`, no step for the breach) or
    /// [`ManualError::Refused`] (`honor_cooldown`, or `policy` for a scale-in waiting for
    /// warm-up); [`Error::Fleet`] as for `set_desired_capacity`.
    pub async fn execute_policy(
        &self,
        group: &str,
        policy: &str,
        honor_cooldown: bool,
        metric_value: Option<f64>,
        breach_threshold: Option<f64>,
        now: Timestamp,
    ) -> Result<ManualScaling> {
        let request = PolicyExecution {
            honor_cooldown,
            metric_value,
            breach_threshold,
        };
        self.by_hand(group, false, now, |g, s| {
            thermostat_scaler::manual::execute_policy(g, s, policy, request, now)
        })
        .await
    }

    /// The runtime's clock now (what the HTTP API passes to the requests above).
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Decides a request to scale by hand under the lock and carries its activity out as
    /// [`scale`](Self::scale) does; `honor_cooldown` is passed to a real fleet.
    async fn by_hand(
        &self,
        group: &str,
        honor_cooldown: bool,
        now: Timestamp,
        decide: impl FnOnce(
            &ScalingGroup,
            &GroupState,
        ) -> std::result::Result<Option<ScalingActivity>, ManualError>,
    ) -> Result<ManualScaling> {
        let (fleet, activity) = {
            let mut groups = self.lock();
            let Groups {
                set,
                states,
                fleets,
                ..
            } = &mut *groups;
            let (Some(g), Some(gs)) = (set.group(group), states.get_mut(group)) else {
                return Err(Error::UnknownGroup {
                    group: group.to_owned(),
                });
            };
            let Some(mut activity) = decide(g, gs)? else {
                return Ok(ManualScaling {
                    desired: gs.desired,
                    activity: None,
                });
            };
            if matches!(g.backend, Backend::Simulated) {
                // The simulated fleet always takes the change.
                gs.apply_activity(g, &activity, now, g.launch);
                activity.status = ActivityStatus::Successful;
                let desired = gs.desired;
                self.persist(states, &[(group.to_owned(), vec![activity.clone()])]);
                return Ok(ManualScaling {
                    desired,
                    activity: Some(activity),
                });
            }
            let Some(fleet) = fleets.get(group) else {
                return Err(Error::Fleet(FleetError::new(format!(
                    "scaling group {group:?} has no fleet (the fleets of the configuration could not be built)"
                ))));
            };
            (Arc::clone(fleet), activity)
        };
        let activity = self
            .spawn_desired(fleet, group.to_owned(), activity, honor_cooldown)
            .await
            .map_err(|e| {
                Error::Fleet(FleetError::new(format!(
                    "the scaling call for group {group:?} did not finish: {e}"
                )))
            })?;
        let desired = self
            .lock()
            .states
            .get(group)
            .map_or(activity.old_desired, |s| s.desired);
        Ok(ManualScaling {
            desired,
            activity: Some(activity),
        })
    }

    /// The scaling groups and policies running now.
    pub fn set(&self) -> ScalingSet {
        self.lock().set.clone()
    }

    /// Applies a reloaded configuration: the fleets are rebuilt (on failure the previous ones
    /// stay), new groups start from their configuration, removed groups are dropped, kept
    /// groups keep their state.
    pub fn reload(&self, set: &ScalingSet) {
        let now = self.clock.now();
        let mut groups = self.lock();
        match self.ports.fleets.fleets(set) {
            Ok(f) => groups.fleets = f,
            Err(e) => {
                tracing::error!(error = %e, "Could not build the fleets of the new configuration.");
            }
        }
        let mut states = std::mem::take(&mut groups.states);
        states.retain(|name, _| set.group(name).is_some());
        for g in &set.groups {
            states
                .entry(g.name.clone())
                .or_insert_with(|| GroupState::for_group(g, (0, 0, 0), now));
        }
        groups.states = states;
        groups.set = set.clone();
    }

    /// Takes on the group states the store holds, as another writer left them (cluster
    /// mode: the leader's writes, applied to this node's replica); a group the store has no
    /// state for keeps its own. Nothing is written.
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn adopt_stored(&self) -> Result<()> {
        // Read under the lock, as this runtime's own writes are made: what is read is never
        // older than what is held.
        let mut groups = self.lock();
        let stored = self.ports.store.load_group_states()?;
        for (name, state) in stored {
            if groups.set.group(&name).is_some() {
                groups.states.insert(name, state);
            }
        }
        Ok(())
    }

    /// Sends every group's capacity metrics at `now` ([`capacity_samples`]) to the
    /// [`CapacityMetricsSink`], outside the runtime's lock. Called once after every alarm
    /// evaluation tick, after its [`scale`](Self::scale), so that the metrics show its
    /// outcome.
    pub fn record_capacity_metrics(&self, now: Timestamp) {
        let samples: Vec<_> = {
            let groups = self.lock();
            groups
                .set
                .groups
                .iter()
                .filter_map(|g| Some((g, groups.states.get(&g.name)?)))
                .flat_map(|(g, s)| capacity_samples(&g.name, s, now))
                .collect()
        };
        if !samples.is_empty() {
            self.ports.capacity_metrics.record(samples, now);
        }
    }

    /// The scaling decisions numbered above `seq` that are still kept (the newest
    /// [`DECISIONS_KEPT`]), oldest first, with their numbers: every triggered policy's
    /// outcome, including the ones held back by a cooldown or a warm-up (which leave no
    /// activity).
    pub fn decisions_after(&self, seq: u64) -> Vec<(u64, ScalingDecision)> {
        let groups = self.lock();
        groups
            .decisions
            .iter()
            .filter(|(n, _)| *n > seq)
            .cloned()
            .collect()
    }

    /// A group's sizes and the instances in service at `at`, as Thermostat tracks them.
    pub fn group_capacity(&self, group: &str, at: Timestamp) -> Option<GroupCapacity> {
        let groups = self.lock();
        groups.states.get(group).map(|s| GroupCapacity::of(s, at))
    }

    /// Every group with a state, in configuration order, at the runtime clock's now.
    pub fn snapshot(&self) -> Snapshot {
        let at = self.clock.now();
        let groups = self.lock();
        let list = groups
            .set
            .groups
            .iter()
            .filter_map(|g| {
                Some(GroupSnapshot {
                    name: g.name.clone(),
                    backend: g.backend.kind(),
                    state: groups.states.get(&g.name)?.clone(),
                })
            })
            .collect();
        Snapshot { at, groups: list }
    }

    /// The newest `limit` activities of `group`, newest first, as stored; `None` when the
    /// configuration has no such group.
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn recent_activities(&self, group: &str, limit: usize) -> Result<Option<Vec<Value>>> {
        if self.lock().set.group(group).is_none() {
            return Ok(None);
        }
        Ok(Some(self.ports.store.group_activities(group, limit)?))
    }

    /// Waits (at most `grace`) for the fleet calls in progress, and takes no new ones
    /// (shutdown).
    pub async fn finish(&self, grace: Duration) {
        self.tasks.close();
        let _ = tokio::time::timeout(grace, self.tasks.wait()).await;
    }

    /// Writes every group's state and its new activities, then counts and logs the
    /// activities.
    fn persist(
        &self,
        states: &BTreeMap<String, GroupState>,
        writes: &[(String, Vec<ScalingActivity>)],
    ) {
        let batch: Vec<GroupWrite<'_>> = writes
            .iter()
            .filter_map(|(g, activities)| {
                Some(GroupWrite {
                    group: g,
                    state: states.get(g)?,
                    activities,
                })
            })
            .collect();
        if let Err(e) = self.ports.store.commit_groups(&batch) {
            tracing::error!(error = %e, "Could not record scaling state.");
        }
        for (_, activities) in writes {
            for a in activities {
                self.telemetry.activity(a.status);
                tracing::info!(group = %a.group, cause = %a.cause, "Scaling activity.");
            }
        }
    }

    fn spawn_limits(&self, fleet: &Arc<dyn Fleet>, group: &str, min: u32, max: u32, desired: u32) {
        let (fleet, group) = (Arc::clone(fleet), group.to_owned());
        self.tasks.spawn_on(
            async move {
                if let Err(e) = fleet
                    .update_limits(&group, Some(min), Some(max), Some(desired))
                    .await
                {
                    tracing::error!(%group, error = %e, "A scheduled action could not update the group.");
                }
            },
            &self.runtime,
        );
    }

    /// Calls `fleet` for `activity` in the background (tracked, so that it finishes even when
    /// the caller stops waiting); on success applies it (the cooldown of a simple policy
    /// starts then); writes the state and the activity with its final status, which the
    /// handle returns.
    fn spawn_desired(
        &self,
        fleet: Arc<dyn Fleet>,
        group: String,
        mut activity: ScalingActivity,
        honor_cooldown: bool,
    ) -> tokio::task::JoinHandle<ScalingActivity> {
        let clock = Arc::clone(&self.clock);
        let me = self.me.clone();
        self.tasks.spawn_on(
            async move {
                let result = fleet
                    .set_desired(
                        &group,
                        activity.new_desired,
                        honor_cooldown,
                        &activity.cause,
                    )
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
                let Some(me) = me.upgrade() else {
                    return activity;
                };
                let mut groups = me.lock();
                let Groups { set, states, .. } = &mut *groups;
                if let (Some(g), Some(gs)) = (set.group(&group), states.get_mut(&group))
                    && activity.status == ActivityStatus::Successful
                {
                    gs.apply_activity(g, &activity, now, Duration::ZERO);
                }
                me.persist(states, &[(group.clone(), vec![activity.clone()])]);
                activity
            },
            &self.runtime,
        )
    }
}

/// Numbers `decision` and keeps it among the newest [`DECISIONS_KEPT`]; logs the policies a
/// cooldown or a warm-up holds back.
fn keep_decision(
    last: &mut u64,
    kept: &mut VecDeque<(u64, ScalingDecision)>,
    decision: &ScalingDecision,
) {
    for e in &decision.evaluations {
        match &e.outcome {
            Outcome::InCooldown { until } => {
                tracing::info!(group = %decision.group, policy = %e.policy, alarm = %e.alarm, until = %until, "A simple scaling policy waits for the group's cooldown.");
            }
            Outcome::WarmingUp { until } => {
                tracing::info!(group = %decision.group, policy = %e.policy, alarm = %e.alarm, until = %until, "A scale-in waits for instances to warm up.");
            }
            _ => {}
        }
    }
    *last += 1;
    kept.push_back((*last, decision.clone()));
    while kept.len() > DECISIONS_KEPT {
        kept.pop_front();
    }
}

#[cfg(test)]
mod tests;
