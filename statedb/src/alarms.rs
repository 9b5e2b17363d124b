//! The alarm runtime's persistence port ([`AlarmStore`]) on the state database: metric alarm
//! instances' states under `m:<name>`, composite alarms' under `c:<name>` (each the state's
//! JSON), history items under the alarm (or instance) name itself.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use thermostat_alarms::engine::InstanceState;
use thermostat_alarms::{CompositeState, HistoryItem};
use thermostat_alarms_runtime::{
    AlarmStore, PruneBounds, PrunePass, StateRef, StoreError, StoredStates,
};

use crate::db::{AlarmWrite, HistoryPrune, StateDb};

/// The key prefix of metric alarm instances' states.
pub const METRIC_PREFIX: &str = "m:";
/// The key prefix of composite alarms' states.
pub const COMPOSITE_PREFIX: &str = "c:";

impl AlarmStore for StateDb {
    fn load_states(&self) -> Result<StoredStates, StoreError> {
        // The table also holds the scaling groups' states (`group:…`): only the alarm rows
        // are read.
        Ok(StoredStates {
            metric: self
                .load_states_under::<InstanceState>(METRIC_PREFIX)
                .map_err(StoreError::new)?,
            composites: self
                .load_states_under::<CompositeState>(COMPOSITE_PREFIX)
                .map_err(StoreError::new)?,
        })
    }

    fn commit(
        &self,
        states: &[(&str, StateRef<'_>)],
        history: &[HistoryItem],
    ) -> Result<(), StoreError> {
        let keys: Vec<(String, StoredState<'_>)> = states
            .iter()
            .map(|(name, state)| match state {
                StateRef::Metric(i) => (format!("{METRIC_PREFIX}{name}"), StoredState::Metric(i)),
                StateRef::Composite(c) => (
                    format!("{COMPOSITE_PREFIX}{name}"),
                    StoredState::Composite(c),
                ),
            })
            .collect();
        let mut writes: Vec<AlarmWrite<'_, StoredState<'_>, HistoryItem>> = keys
            .iter()
            .map(|(key, state)| AlarmWrite {
                name: key,
                state: Some(state),
                history: &[],
            })
            .collect();
        let mut by_alarm: BTreeMap<&str, Vec<HistoryItem>> = BTreeMap::new();
        for h in history {
            by_alarm
                .entry(h.alarm_name.as_str())
                .or_default()
                .push(h.clone());
        }
        for (name, items) in &by_alarm {
            writes.push(AlarmWrite {
                name,
                state: None,
                history: items,
            });
        }
        StateDb::commit(self, &writes).map_err(StoreError::new)
    }

    fn forget_states(&self, names: &[String]) -> Result<(), StoreError> {
        let keys: Vec<String> = names
            .iter()
            .flat_map(|n| {
                [
                    format!("{METRIC_PREFIX}{n}"),
                    format!("{COMPOSITE_PREFIX}{n}"),
                ]
            })
            .collect();
        StateDb::forget_states(self, &keys).map_err(StoreError::new)
    }

    fn scan_history(
        &self,
        name: &str,
        below: Option<u64>,
        max_rows: usize,
        visit: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>,
    ) -> Result<Option<u64>, StoreError> {
        StateDb::scan_history(self, name, below, max_rows, |seq, json| {
            Ok(visit(seq, json))
        })
        .map_err(StoreError::new)
    }

    fn prune_history(
        &self,
        from: Option<&str>,
        bounds: &PruneBounds,
    ) -> Result<PrunePass, StoreError> {
        let policy = HistoryPrune {
            older_than_ms: bounds.older_than.as_millis(),
            max_items_per_alarm: bounds.max_items_per_alarm,
            max_deletes: bounds.max_deletes,
            max_alarms: bounds.max_alarms,
        };
        let pass = StateDb::prune_history(self, from, &policy).map_err(StoreError::new)?;
        Ok(PrunePass {
            deleted: pass.deleted,
            alarms_visited: pass.alarms_visited,
            resume: pass.resume,
        })
    }
}

/// A row of the state table as written: the state's own JSON (`m:` rows hold instances, `c:`
/// rows composites).
#[derive(serde::Serialize)]
#[serde(untagged)]
enum StoredState<'a> {
    Metric(&'a InstanceState),
    Composite(&'a CompositeState),
}
