//! [`AlarmRuntime`]: the running alarms, behind one lock.

mod actions_enabled;
mod adopt;
mod anomaly_models;
mod api_alarms;
mod history;
mod listing;
mod set_state;
#[cfg(test)]
mod tests;
mod tick_loop;

use std::sync::{Arc, Mutex, MutexGuard};

use thermostat_alarms::engine::TickOutput;
use thermostat_alarms::history::{AlarmType, ConfigChange, HistoryItemType};
use thermostat_alarms::{AlarmSet, EngineState, HistoryItem, Transition, actions_due};
use thermostat_metrics::{Clock, Store, Timestamp};

use crate::actions::ActionSink;
use crate::error::{Result, chain};
use crate::persistence::{AlarmStore, StateRef};
use crate::telemetry::AlarmTelemetry;
use actions_enabled::{Overrides, retain_overrides, with_overrides};
use api_alarms::{Sources, merge};

pub use adopt::{EvaluationGate, Gate};
pub use anomaly_models::MAX_TRAININGS_PER_TICK;
pub use api_alarms::{AlarmOrigin, MAX_ALARM_TAGS};
pub use history::{HistoryRetention, PRUNE_EVERY_MS, PruneReport};
pub use listing::{AlarmEntry, AlarmListing};
pub use set_state::{MAX_STATE_REASON_CHARS, MAX_STATE_REASON_DATA_CHARS};
pub use tick_loop::TICK_MS;

/// A hook the runtime calls after each tick.
type AfterTick = Arc<dyn Fn(Timestamp) + Send + Sync>;

/// The set being evaluated and its states: what the lock guards.
#[derive(Debug)]
struct Evaluated {
    /// The set as configured (started with or swapped in). Shared with a swap in progress,
    /// which diffs it against the new set without the lock.
    configured: Arc<AlarmSet>,
    /// The set evaluated: `configured` with the actions-enabled overrides applied (the same
    /// set when there are none).
    set: Arc<AlarmSet>,
    state: EngineState,
    /// Actions-enabled overrides ([`AlarmRuntime::set_actions_enabled`]); they and
    /// `configured` change only under [`AlarmRuntime::swapping`].
    actions_enabled: Overrides,
}

/// What a [`AlarmRuntime::swap`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SwapReport {
    /// Metric alarms now configured.
    pub alarms: usize,
    /// Composite alarms now configured.
    pub composite_alarms: usize,
    /// Alarms whose definition changed, that are new, or that were deleted (each has a
    /// configuration-update history item).
    pub changed: Vec<String>,
    /// Alarms and instances whose state was removed.
    pub removed: Vec<String>,
}

/// The running alarms: evaluation ticks, `SetAlarmState`, reload swaps, persistence and
/// history, as one component with one lock.
pub struct AlarmRuntime {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    persistence: Arc<dyn AlarmStore>,
    telemetry: AlarmTelemetry,
    actions: Arc<dyn ActionSink>,
    evaluated: Mutex<Evaluated>,
    retention: HistoryRetention,
    /// Where the next pruning run resumes (it stopped at a bound), and that one runs at a time.
    prune_from: Mutex<Option<String>>,
    /// Held by a swap from start to end, so that swaps run one at a time, and by
    /// [`set_actions_enabled`](Self::set_actions_enabled); never taken by ticks or
    /// `SetAlarmState`, which only wait for `evaluated` during a swap's short lock.
    swapping: Mutex<()>,
    /// The two sources of the configured set: the configuration files' alarms and those
    /// created through the API; changed only under `swapping`.
    sources: Mutex<Sources>,
    after_tick: Option<AfterTick>,
    /// The anomaly-detection models of the anomaly alarms, by (alarm or instance, metric
    /// id); taken after `evaluated` when both are held.
    models: Mutex<anomaly_models::Models>,
    /// Asked before every tick whether to evaluate it (cluster mode); `None`: always.
    gate: Option<Arc<dyn EvaluationGate>>,
    /// Why the gate paused evaluation, while it does.
    paused: Mutex<Option<String>>,
}

impl std::fmt::Debug for AlarmRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlarmRuntime")
            .field("persistence", &self.persistence)
            .field("actions", &self.actions)
            .field("retention", &self.retention)
            .field("after_tick", &self.after_tick.is_some())
            .finish_non_exhaustive()
    }
}

impl AlarmRuntime {
    /// Starts the runtime on `set` (validated): restores the persisted states of the alarms
    /// that still exist (a metric alarm's state carries over, a per-series instance's only
    /// if its series still matches), creates the others (with a configuration-update history
    /// item each), and writes every state. The persisted actions-enabled overrides of the
    /// alarms that still exist apply again; the others are deleted.
    ///
    /// # Errors
    /// The persisted states or overrides cannot be read, or the states cannot be written.
    pub fn start(
        set: Arc<AlarmSet>,
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        persistence: Arc<dyn AlarmStore>,
        actions: Arc<dyn ActionSink>,
        telemetry: AlarmTelemetry,
    ) -> Result<Self> {
        let now = clock.now();
        let (api, api_composites, tags) = api_alarms::stored_definitions(&*persistence)?;
        let models = anomaly_models::Models::restore(persistence.load_anomaly_models()?);
        let sources = Sources {
            yaml: set,
            api,
            api_composites,
            tags,
        };
        let set = merge(&sources);
        let mut state = EngineState::new(&set, now, None);
        let restored = adopt::restore(&mut state, &set, persistence.load_states()?);
        let (actions_enabled, stale) = retain_overrides(
            &set,
            persistence.load_actions_enabled()?.into_iter().collect(),
        );
        let created: Vec<HistoryItem> = set
            .alarms
            .iter()
            .filter(|a| !a.is_per_series() && !restored.contains(&a.name))
            .map(|a| (&a.name, AlarmType::MetricAlarm))
            .chain(
                set.composites
                    .iter()
                    .filter(|c| !restored.contains(&c.name))
                    .map(|c| (&c.name, AlarmType::CompositeAlarm)),
            )
            .map(|(name, kind)| {
                HistoryItem::configuration_update(name, kind, ConfigChange::Created, now)
            })
            .collect();
        let runtime = AlarmRuntime {
            store,
            clock,
            persistence,
            telemetry,
            actions,
            evaluated: Mutex::new(Evaluated {
                set: with_overrides(&set, &actions_enabled),
                configured: set,
                state,
                actions_enabled,
            }),
            retention: HistoryRetention::default(),
            prune_from: Mutex::new(None),
            swapping: Mutex::new(()),
            sources: Mutex::new(sources),
            after_tick: None,
            models: Mutex::new(models),
            gate: None,
            paused: Mutex::new(None),
        };
        {
            let evaluated = runtime.lock();
            runtime.persist(&evaluated, &all_names(&evaluated.state), &created)?;
            let forget: Vec<(&str, Option<bool>)> =
                stale.iter().map(|n| (n.as_str(), None)).collect();
            runtime.persistence.commit_actions_enabled(&forget, &[])?;
            tracing::info!(
                alarms = evaluated.set.alarms.len(),
                composite_alarms = evaluated.set.composites.len(),
                restored = restored.len(),
                actions_disabled = evaluated.actions_enabled.values().filter(|e| !**e).count(),
                "The alarm engine is ready."
            );
        }
        Ok(runtime)
    }

    /// Calls `hook` with the tick time after every [`tick`](Self::tick) that succeeded,
    /// outside the runtime's lock (not after `SetAlarmState`). The binary records the
    /// scaling groups' capacity metrics there.
    #[must_use]
    pub fn with_after_tick(mut self, hook: impl Fn(Timestamp) + Send + Sync + 'static) -> Self {
        self.after_tick = Some(Arc::new(hook));
        self
    }

    fn lock(&self) -> MutexGuard<'_, Evaluated> {
        self.evaluated.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the states of `names` (those that have one) and appends `history`.
    fn persist(
        &self,
        evaluated: &Evaluated,
        names: &[String],
        history: &[HistoryItem],
    ) -> Result<()> {
        let state = &evaluated.state;
        let states: Vec<(&str, StateRef<'_>)> = names
            .iter()
            .filter_map(|n| {
                let s = match state.metric.get(n) {
                    Some(i) => StateRef::Metric(i),
                    None => StateRef::Composite(state.composites.get(n)?),
                };
                Some((n.as_str(), s))
            })
            .collect();
        self.persistence.commit(&states, history)?;
        Ok(())
    }

    /// The one path from an evaluation's output to its effects, shared by the tick and
    /// `SetAlarmState`: persists the states of `changed` and `out.history`, logs and counts
    /// the transitions, then hands the actions due to the action sink (under the lock, even
    /// when there are none). Nothing is acted on when the write fails.
    fn persist_and_act(
        &self,
        evaluated: &Evaluated,
        out: &TickOutput,
        changed: &[String],
        now: Timestamp,
    ) -> Result<()> {
        self.persist(evaluated, changed, &out.history)?;
        for (name, t) in &out.transitions {
            log_transition(name, t);
            self.telemetry.transition(t.new_state);
        }
        let due = actions_due(&evaluated.set, &evaluated.state, out, &self.store, now);
        self.actions.act(&evaluated.set, &due, now);
        Ok(())
    }

    /// Evaluates every alarm due at tick `t`, persists what changed, and hands the actions
    /// to the action sink; then calls the after-tick hook
    /// ([`with_after_tick`](Self::with_after_tick)), and, on ticks that fall on a whole
    /// minute, prunes the history ([`prune_history`](Self::prune_history)), both without the
    /// lock. Returns the number of evaluations.
    ///
    /// # Errors
    /// A refused query or a failed state write (the in-memory state has moved on; the next
    /// tick's write carries the changed states again).
    pub fn tick(&self, t: Timestamp) -> Result<usize> {
        if !self.pass_gate(t)? {
            return Ok(0);
        }
        // With a gate, one node (the one that leads) does what follows a tick for everyone.
        let leads = self.gate.as_ref().is_none_or(|g| g.leads());
        if leads {
            self.refresh_models(t);
        }
        let evaluations = self.evaluate(t)?;
        if !leads {
            return Ok(evaluations);
        }
        if let Some(hook) = &self.after_tick {
            hook(t);
        }
        if t.as_millis().rem_euclid(PRUNE_EVERY_MS) == 0
            && let Err(e) = self.prune_history(t)
        {
            tracing::warn!(error = %chain(&e), "Could not prune the alarm history; the next minute tries again.");
        }
        Ok(evaluations)
    }

    fn evaluate(&self, t: Timestamp) -> Result<usize> {
        let started = std::time::Instant::now();
        let mut guard = self.lock();
        let Evaluated { set, state, .. } = &mut *guard;
        let out = {
            let models = self.models();
            let owns = |key: &thermostat_metrics::SeriesKey| {
                self.gate.as_ref().is_none_or(|g| g.owns(key))
            };
            let scope = match &self.gate {
                None => thermostat_alarms::Scope::All,
                Some(g) => thermostat_alarms::Scope::Share {
                    owns: &owns,
                    leads: g.leads(),
                },
            };
            thermostat_alarms::tick_scoped(set, state, &self.store, &*models, &scope, t)?
        };
        self.telemetry
            .tick(out.evaluations, started.elapsed().as_secs_f64());
        if !out.unavailable.is_empty() {
            tracing::warn!(
                tick = %t,
                alarms = out.unavailable.len(),
                first = %out.unavailable[0],
                "Some alarms were not evaluated: their data could not be read now (another node did not answer); the next tick tries again."
            );
        }
        let mut changed: Vec<String> = out.transitions.iter().map(|(n, _)| n.clone()).collect();
        changed.extend(
            out.history
                .iter()
                .filter(|h| matches!(h.item_type, HistoryItemType::ConfigurationUpdate))
                .map(|h| h.alarm_name.clone()),
        );
        changed.sort();
        changed.dedup();
        self.persist_and_act(&guard, &out, &changed, t)?;
        Ok(out.evaluations)
    }

    /// Writes every state (on shutdown).
    ///
    /// # Errors
    /// A failed write.
    pub fn persist_all(&self) -> Result<()> {
        let evaluated = self.lock();
        self.persist(&evaluated, &all_names(&evaluated.state), &[])
    }

    /// Swaps in `set` (already validated), carrying states over: unchanged alarms keep
    /// theirs untouched, changed alarms keep their state value (per-series instances whose
    /// series no longer match are dropped), new alarms start as at creation. The states and
    /// history of the alarms that changed are written and the states of removed alarms
    /// forgotten (a failed write is logged; the swap stands). Actions-enabled overrides stay
    /// on the alarms that still exist, unless the new configuration agrees with them (see
    /// [`set_actions_enabled`](Self::set_actions_enabled)). `while_locked` runs under the
    /// lock right after the swap (with the set evaluated), so no tick or `SetAlarmState` runs
    /// between the two.
    ///
    /// Comparing the two sets happens before the lock is taken (ticks and `SetAlarmState`
    /// go on meanwhile); under it, states only move, in time linear in their number. Swaps
    /// run one at a time.
    ///
    /// `set` is the configuration files' set: the alarms created through the API stay (an
    /// API alarm whose name the new files define is shadowed by the file's).
    pub fn swap(&self, set: Arc<AlarmSet>, while_locked: impl FnOnce(&AlarmSet)) -> SwapReport {
        let _one_at_a_time = self.swapping.lock().unwrap_or_else(|p| p.into_inner());
        let merged = {
            let mut sources = self.sources();
            sources.yaml = set;
            merge(&sources)
        };
        let report = self.swap_configured(merged, while_locked);
        tracing::info!(
            alarms = report.alarms,
            composite_alarms = report.composite_alarms,
            changed = report.changed.len(),
            removed = report.removed.len(),
            "Reloaded the configuration."
        );
        report
    }

    fn sources(&self) -> MutexGuard<'_, Sources> {
        self.sources.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The body of [`swap`](Self::swap) for a whole configured set, with `swapping` held.
    fn swap_configured(
        &self,
        set: Arc<AlarmSet>,
        while_locked: impl FnOnce(&AlarmSet),
    ) -> SwapReport {
        self.swap_configured_as(set, while_locked, true)
    }

    /// [`swap_configured`](Self::swap_configured); with `write` false nothing is written
    /// (the set was adopted from another writer, who wrote what it changed).
    fn swap_configured_as(
        &self,
        set: Arc<AlarmSet>,
        while_locked: impl FnOnce(&AlarmSet),
        write: bool,
    ) -> SwapReport {
        // Only a swap replaces the configured set and only a swap or an override changes the
        // overrides (both hold `swapping`), so these stay current until the swap below.
        let (old, overrides) = {
            let evaluated = self.lock();
            (
                Arc::clone(&evaluated.configured),
                evaluated.actions_enabled.clone(),
            )
        };
        let diff = thermostat_alarms::engine::diff(&old, &set);
        drop(old);
        let (actions_enabled, dropped) = retain_overrides(&set, overrides);
        let evaluated_set = with_overrides(&set, &actions_enabled);
        let now = self.clock.now();
        let mut evaluated = self.lock();
        let old_state = std::mem::take(&mut evaluated.state);
        let old_names = all_names(&old_state);
        let (state, history) =
            thermostat_alarms::engine::carry_over_diff(&diff, &set, old_state, now);
        let removed: Vec<String> = old_names
            .into_iter()
            .filter(|n| !state.metric.contains_key(n) && !state.composites.contains_key(n))
            .collect();
        let changed: Vec<String> = history.iter().map(|h| h.alarm_name.clone()).collect();
        evaluated.configured = set;
        evaluated.set = evaluated_set;
        evaluated.state = state;
        evaluated.actions_enabled = actions_enabled;
        let forget: Vec<(&str, Option<bool>)> =
            dropped.iter().map(|n| (n.as_str(), None)).collect();
        // Unchanged alarms' states are already stored; the changed and new ones are written
        // (a name without a state, a deleted alarm, only gets its history item).
        let written = || {
            self.persist(&evaluated, &changed, &history)?;
            self.persistence.forget_states(&removed)?;
            self.persistence.commit_actions_enabled(&forget, &[])?;
            Ok::<(), crate::Error>(())
        };
        if write && let Err(e) = written() {
            tracing::error!(error = %chain(&e), "Could not persist the reloaded alarm states.");
        }
        while_locked(&evaluated.set);
        let report = SwapReport {
            alarms: evaluated.set.alarms.len(),
            composite_alarms: evaluated.set.composites.len(),
            changed,
            removed,
        };
        drop(evaluated);
        report
    }

    /// The set being evaluated: as configured, with the actions-enabled overrides applied
    /// ([`set_actions_enabled`](Self::set_actions_enabled)).
    pub fn alarms(&self) -> Arc<AlarmSet> {
        Arc::clone(&self.lock().set)
    }

    /// The time on the runtime's clock (what `SetAlarmState` and swaps stamp history with).
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

/// Every alarm and instance name that has a state.
fn all_names(state: &EngineState) -> Vec<String> {
    state
        .metric
        .keys()
        .chain(state.composites.keys())
        .cloned()
        .collect()
}

/// The alarm an instance belongs to: its name without the `[...]` of a per-series instance.
fn definition_name(instance: &str) -> &str {
    instance.split('[').next().unwrap_or(instance)
}

fn log_transition(name: &str, t: &Transition) {
    tracing::info!(alarm = name, old = %t.old_state, new = %t.new_state, reason = %t.reason, "Alarm changed state.");
}
