//! Read access for views: the alarms with their states, one alarm's state, known names.

use std::sync::Arc;

use thermostat_alarms::history::AlarmType;
use thermostat_alarms::{AlarmSet, AlarmState, StateValue};

use super::AlarmRuntime;

/// One alarm, per-series instance or composite alarm, as the runtime holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct AlarmEntry {
    /// The name (`<alarm>[Dim=value]` for a per-series instance).
    pub name: String,
    /// The definition's name in [`AlarmListing::set`].
    pub alarm: String,
    /// Metric or composite.
    pub kind: AlarmType,
    /// Its state; `None` for a per-series alarm that no series matches yet (it has no
    /// instance).
    pub state: Option<AlarmState>,
    /// Whether its actions run: the definition's `actions_enabled`, or the override of
    /// [`AlarmRuntime::set_actions_enabled`] (the definitions in [`AlarmListing::set`] carry
    /// the same value).
    pub actions_enabled: bool,
}

/// Every alarm with its state at one moment.
#[derive(Clone, Debug)]
pub struct AlarmListing {
    /// The set the entries' definitions are in: as configured, with the actions-enabled
    /// overrides applied.
    pub set: Arc<AlarmSet>,
    /// Sorted by name: metric alarm instances, per-series alarms without instances and
    /// composite alarms.
    pub entries: Vec<AlarmEntry>,
}

impl AlarmRuntime {
    /// Every alarm with its state, sorted by name: each metric alarm instance, each
    /// per-series alarm that has no instance yet (without a state), and each composite.
    pub fn list(&self) -> AlarmListing {
        let evaluated = self.lock();
        let (set, state) = (&evaluated.set, &evaluated.state);
        let mut entries = Vec::new();
        for (name, instance) in &state.metric {
            let Some(a) = set.alarm(&instance.alarm) else {
                continue;
            };
            entries.push(AlarmEntry {
                name: name.clone(),
                alarm: instance.alarm.clone(),
                kind: AlarmType::MetricAlarm,
                state: Some(instance.state.clone()),
                actions_enabled: a.actions.enabled,
            });
        }
        for a in set.alarms.iter().filter(|a| a.is_per_series()) {
            if !state.metric.values().any(|i| i.alarm == a.name) {
                entries.push(AlarmEntry {
                    name: a.name.clone(),
                    alarm: a.name.clone(),
                    kind: AlarmType::MetricAlarm,
                    state: None,
                    actions_enabled: a.actions.enabled,
                });
            }
        }
        for c in &set.composites {
            let Some(s) = state.composites.get(&c.name) else {
                continue;
            };
            entries.push(AlarmEntry {
                name: c.name.clone(),
                alarm: c.name.clone(),
                kind: AlarmType::CompositeAlarm,
                state: Some(s.alarm.clone()),
                actions_enabled: c.actions.enabled,
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        AlarmListing {
            set: Arc::clone(set),
            entries,
        }
    }

    /// Whether `name` is listed by [`list`](Self::list), without building the list.
    pub fn knows(&self, name: &str) -> bool {
        let evaluated = self.lock();
        let (set, state) = (&evaluated.set, &evaluated.state);
        state
            .metric
            .get(name)
            .is_some_and(|i| set.alarm(&i.alarm).is_some())
            || (state.composites.contains_key(name) && set.composite(name).is_some())
            || set.alarm(name).is_some_and(|a| {
                a.is_per_series() && !state.metric.values().any(|i| i.alarm == a.name)
            })
    }

    /// The current state value of an alarm, instance or composite (whether its actions run:
    /// [`actions_enabled`](Self::actions_enabled)).
    pub fn state_of(&self, name: &str) -> Option<StateValue> {
        let evaluated = self.lock();
        let state = &evaluated.state;
        state
            .metric
            .get(name)
            .map(|i| i.state.value)
            .or_else(|| state.composites.get(name).map(|c| c.alarm.value))
    }
}
