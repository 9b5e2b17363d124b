//! Several writers of one store (cluster mode): the [`EvaluationGate`] that says whether
//! this runtime evaluates a tick, and [`AlarmRuntime::adopt_stored`], which takes on what
//! other writers stored.

use std::collections::BTreeSet;
use std::sync::Arc;

use thermostat_alarms::engine::InstanceState;
use thermostat_alarms::{AlarmSet, EngineState};
use thermostat_metrics::{SeriesKey, Timestamp};

use super::actions_enabled::{retain_overrides, with_overrides};
use super::api_alarms::{merge, stored_definitions};
use super::{AlarmRuntime, definition_name};
use crate::error::Result;
use crate::persistence::StoredStates;

/// What an [`EvaluationGate`] says about one tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Evaluate it.
    Evaluate,
    /// Take on what the store holds first ([`AlarmRuntime::adopt_stored`]: another writer
    /// changed it since this runtime last wrote), then evaluate.
    AdoptThenEvaluate,
    /// Do not evaluate, for this reason (logged when it changes, shown by
    /// [`AlarmRuntime::evaluation_paused`]).
    Pause(String),
}

/// Whether this runtime evaluates a tick. Without one it always does (a single node); in
/// cluster mode only the node that leads does, and a node cut off from the cluster pauses.
pub trait EvaluationGate: Send + Sync + std::fmt::Debug {
    /// Asked before every tick at `t`, outside the runtime's lock.
    fn check(&self, t: Timestamp) -> Gate;

    /// Whether this node evaluates the alarm instances of series `key` (cluster mode: it owns
    /// the series' partition). Asked during a tick, under the runtime's lock: must be quick.
    fn owns(&self, key: &SeriesKey) -> bool {
        let _ = key;
        true
    }

    /// Whether this node evaluates what one node alone does: composite alarms, metric-math
    /// alarms and the alarms with a scaling action
    /// ([`Scope`](thermostat_alarms::Scope)), and what follows a tick (the after-tick hook,
    /// anomaly models, history pruning).
    fn leads(&self) -> bool {
        true
    }
}

impl AlarmRuntime {
    /// Asks the gate before evaluating tick `t` ([`with_evaluation_gate`](Self::with_evaluation_gate));
    /// whether to evaluate it.
    ///
    /// # Errors
    /// Adopting the stored states failed.
    pub(super) fn pass_gate(&self, t: Timestamp) -> Result<bool> {
        let Some(gate) = &self.gate else {
            return Ok(true);
        };
        let decision = gate.check(t);
        let reason = match &decision {
            Gate::Pause(r) => Some(r.clone()),
            Gate::Evaluate | Gate::AdoptThenEvaluate => None,
        };
        {
            let mut paused = self.paused.lock().unwrap_or_else(|p| p.into_inner());
            if *paused != reason {
                match &reason {
                    Some(r) => tracing::info!(reason = %r, "Alarm evaluation paused."),
                    None => tracing::info!("Alarm evaluation resumed."),
                }
                paused.clone_from(&reason);
            }
        }
        if decision == Gate::AdoptThenEvaluate {
            self.adopt_stored()?;
        }
        Ok(reason.is_none())
    }

    /// Sets the gate asked before every tick (cluster mode: only the leader evaluates).
    #[must_use]
    pub fn with_evaluation_gate(mut self, gate: Arc<dyn EvaluationGate>) -> Self {
        self.gate = Some(gate);
        *self.paused.get_mut().unwrap_or_else(|p| p.into_inner()) =
            Some("no tick has been evaluated yet".into());
        self
    }

    /// Why evaluation is paused, if it is ([`EvaluationGate`]).
    pub fn evaluation_paused(&self) -> Option<String> {
        self.paused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Takes on what the store holds, as another writer left it (cluster mode: another
    /// node's writes, applied to this node's replica): the definitions and tags of the alarms
    /// created through the API, the actions-enabled overrides, and the stored state of every
    /// alarm and instance of the set (one the store does not have keeps its state here).
    /// Nothing is written: what is adopted was written by its writer, history included.
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn adopt_stored(&self) -> Result<()> {
        let _one_at_a_time = self.swapping.lock().unwrap_or_else(|p| p.into_inner());
        let (api, api_composites, tags) = stored_definitions(&*self.persistence)?;
        let redefined = {
            let mut sources = self.sources();
            let changed = sources.api != api
                || sources.api_composites != api_composites
                || sources.tags != tags;
            sources.api = api;
            sources.api_composites = api_composites;
            sources.tags = tags;
            changed.then(|| merge(&sources))
        };
        if let Some(set) = redefined {
            self.swap_configured_as(set, |_| {}, false);
        }
        // Read under the lock: a state this runtime writes meanwhile (a SetAlarmState) is
        // in the store before the lock is released, so what is read is never older than
        // what is held.
        let mut evaluated = self.lock();
        let overrides = self
            .persistence
            .load_actions_enabled()?
            .into_iter()
            .collect();
        let stored = self.persistence.load_states()?;
        let (actions_enabled, _) = retain_overrides(&evaluated.configured, overrides);
        if actions_enabled != evaluated.actions_enabled {
            evaluated.set = with_overrides(&evaluated.configured, &actions_enabled);
            evaluated.actions_enabled = actions_enabled;
        }
        let configured = Arc::clone(&evaluated.configured);
        restore(&mut evaluated.state, &configured, stored);
        Ok(())
    }
}

/// Puts the stored states of the alarms `set` has into `state` (a metric alarm's always, a
/// per-series instance's only if its series still matches); returns the alarms (definition
/// names) that got one.
pub(super) fn restore(
    state: &mut EngineState,
    set: &AlarmSet,
    stored: StoredStates,
) -> BTreeSet<String> {
    let mut restored = BTreeSet::new();
    for (name, instance) in stored.metric {
        let Some(alarm) = set.alarm(&instance.alarm) else {
            continue;
        };
        if alarm.is_per_series() && alarm.instance_name(&instance.key) != name {
            continue;
        }
        let key = if alarm.is_per_series() {
            instance.key.clone()
        } else {
            thermostat_alarms::evaluator::series_key(alarm)
        };
        restored.insert(definition_name(&name).to_owned());
        state.metric.insert(name, InstanceState { key, ..instance });
    }
    for (name, composite) in stored.composites {
        if set.composite(&name).is_some() {
            restored.insert(name.clone());
            state.composites.insert(name, composite);
        }
    }
    restored
}
