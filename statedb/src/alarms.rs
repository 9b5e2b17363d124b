//! The alarm runtime's persistence port ([`AlarmStore`]) on the state database: metric alarm
//! instances' states under `m:<name>`, composite alarms' under `c:<name>` (each the state's
//! JSON), actions-enabled overrides under `actions_enabled:<alarm>` (JSON `true` or `false`;
//! rows added without a format change: a file written before them simply has none, and a
//! build that does not know them never reads them), the definitions of alarms created
//! through the API under `api_alarm:<name>` and `api_composite:<name>` (the validated alarm's JSON; added the same way), alarms' tags under `alarm_tags:<name>`
//! (added the same way), anomaly-detection models under `anomaly:<metric id>:<alarm or
//! instance>` (added the same way), history items under the alarm (or instance) name itself.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use thermostat_alarms::engine::InstanceState;
use thermostat_alarms::{Alarm, CompositeAlarm, CompositeState, HistoryItem};
use thermostat_alarms_runtime::{
    AlarmStore, AlarmTags, PruneBounds, PrunePass, StateRef, StoreError, StoredModel, StoredStates,
};

use crate::db::{AlarmWrite, HistoryPrune, StateDb};

/// The key prefix of metric alarm instances' states.
pub const METRIC_PREFIX: &str = "m:";
/// The key prefix of composite alarms' states.
pub const COMPOSITE_PREFIX: &str = "c:";
/// The key prefix of alarms' actions-enabled overrides (`EnableAlarmActions` /
/// `DisableAlarmActions`), by configured alarm name.
pub const ACTIONS_ENABLED_PREFIX: &str = "actions_enabled:";
/// The key prefix of the definitions of alarms created through the API (`PutMetricAlarm`).
pub const API_ALARM_PREFIX: &str = "api_alarm:";
/// The key prefix of the definitions of composite alarms created through the API
/// (`PutCompositeAlarm`).
pub const API_COMPOSITE_PREFIX: &str = "api_composite:";
/// The key prefix of alarms' tags (`TagResource`), by alarm name: a JSON object of key to
/// value.
pub const ALARM_TAGS_PREFIX: &str = "alarm_tags:";
/// The key prefix of anomaly-detection models: `anomaly:<metric id>:<alarm or instance>`
/// (metric ids have no `:`), a [`StoredModel`]'s JSON.
pub const ANOMALY_MODEL_PREFIX: &str = "anomaly:";

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
        let by_alarm = history_by_alarm(history);
        writes.extend(history_writes(&by_alarm));
        StateDb::commit(self, &writes).map_err(StoreError::new)
    }

    fn load_actions_enabled(&self) -> Result<Vec<(String, bool)>, StoreError> {
        self.load_states_under::<bool>(ACTIONS_ENABLED_PREFIX)
            .map_err(StoreError::new)
    }

    fn commit_actions_enabled(
        &self,
        overrides: &[(&str, Option<bool>)],
        history: &[HistoryItem],
    ) -> Result<(), StoreError> {
        let keyed: Vec<(String, Option<bool>)> = overrides
            .iter()
            .map(|(name, enabled)| (format!("{ACTIONS_ENABLED_PREFIX}{name}"), *enabled))
            .collect();
        let mut writes: Vec<AlarmWrite<'_, bool, HistoryItem>> = keyed
            .iter()
            .filter_map(|(key, enabled)| {
                enabled.as_ref().map(|e| AlarmWrite {
                    name: key,
                    state: Some(e),
                    history: &[],
                })
            })
            .collect();
        let forget: Vec<String> = keyed
            .iter()
            .filter(|(_, enabled)| enabled.is_none())
            .map(|(key, _)| key.clone())
            .collect();
        let by_alarm = history_by_alarm(history);
        writes.extend(history_writes(&by_alarm));
        StateDb::commit_and_forget(self, &writes, &forget).map_err(StoreError::new)
    }

    fn load_api_alarms(&self) -> Result<Vec<Alarm>, StoreError> {
        Ok(self
            .load_states_under::<Alarm>(API_ALARM_PREFIX)
            .map_err(StoreError::new)?
            .into_iter()
            .map(|(_, alarm)| alarm)
            .collect())
    }

    fn commit_api_alarm(
        &self,
        name: &str,
        alarm: Option<&Alarm>,
        history: &[HistoryItem],
    ) -> Result<(), StoreError> {
        let key = format!("{API_ALARM_PREFIX}{name}");
        let mut writes: Vec<AlarmWrite<'_, Alarm, HistoryItem>> = alarm
            .map(|a| AlarmWrite {
                name: &key,
                state: Some(a),
                history: &[],
            })
            .into_iter()
            .collect();
        let forget: Vec<String> = if alarm.is_none() {
            vec![key.clone()]
        } else {
            Vec::new()
        };
        let by_alarm = history_by_alarm(history);
        writes.extend(history_writes(&by_alarm));
        StateDb::commit_and_forget(self, &writes, &forget).map_err(StoreError::new)
    }

    fn load_api_composites(&self) -> Result<Vec<CompositeAlarm>, StoreError> {
        Ok(self
            .load_states_under::<CompositeAlarm>(API_COMPOSITE_PREFIX)
            .map_err(StoreError::new)?
            .into_iter()
            .map(|(_, c)| c)
            .collect())
    }

    fn commit_api_composite(
        &self,
        name: &str,
        composite: Option<&CompositeAlarm>,
    ) -> Result<(), StoreError> {
        let key = format!("{API_COMPOSITE_PREFIX}{name}");
        let writes: Vec<AlarmWrite<'_, CompositeAlarm, HistoryItem>> = composite
            .map(|c| AlarmWrite {
                name: &key,
                state: Some(c),
                history: &[],
            })
            .into_iter()
            .collect();
        let forget: Vec<String> = if composite.is_none() {
            vec![key.clone()]
        } else {
            Vec::new()
        };
        StateDb::commit_and_forget(self, &writes, &forget).map_err(StoreError::new)
    }

    fn load_alarm_tags(&self) -> Result<Vec<(String, AlarmTags)>, StoreError> {
        self.load_states_under::<AlarmTags>(ALARM_TAGS_PREFIX)
            .map_err(StoreError::new)
    }

    fn commit_alarm_tags(&self, name: &str, tags: Option<&AlarmTags>) -> Result<(), StoreError> {
        let key = format!("{ALARM_TAGS_PREFIX}{name}");
        let writes: Vec<AlarmWrite<'_, AlarmTags, HistoryItem>> = tags
            .map(|t| AlarmWrite {
                name: &key,
                state: Some(t),
                history: &[],
            })
            .into_iter()
            .collect();
        let forget: Vec<String> = if tags.is_none() {
            vec![key.clone()]
        } else {
            Vec::new()
        };
        StateDb::commit_and_forget(self, &writes, &forget).map_err(StoreError::new)
    }

    fn load_anomaly_models(&self) -> Result<Vec<StoredModel>, StoreError> {
        Ok(self
            .load_states_under::<StoredModel>(ANOMALY_MODEL_PREFIX)
            .map_err(StoreError::new)?
            .into_iter()
            .map(|(_, m)| m)
            .collect())
    }

    fn commit_anomaly_model(
        &self,
        instance: &str,
        metric_id: &str,
        model: Option<&StoredModel>,
    ) -> Result<(), StoreError> {
        let key = format!("{ANOMALY_MODEL_PREFIX}{metric_id}:{instance}");
        let writes: Vec<AlarmWrite<'_, StoredModel, HistoryItem>> = model
            .map(|m| AlarmWrite {
                name: &key,
                state: Some(m),
                history: &[],
            })
            .into_iter()
            .collect();
        let forget: Vec<String> = if model.is_none() {
            vec![key.clone()]
        } else {
            Vec::new()
        };
        StateDb::commit_and_forget(self, &writes, &forget).map_err(StoreError::new)
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

/// `history` by alarm (or instance) name, each alarm's items in order.
fn history_by_alarm(history: &[HistoryItem]) -> BTreeMap<&str, Vec<HistoryItem>> {
    let mut by_alarm: BTreeMap<&str, Vec<HistoryItem>> = BTreeMap::new();
    for h in history {
        by_alarm
            .entry(h.alarm_name.as_str())
            .or_default()
            .push(h.clone());
    }
    by_alarm
}

/// The history-only writes of `by_alarm`.
fn history_writes<'a, S: 'a>(
    by_alarm: &'a BTreeMap<&'a str, Vec<HistoryItem>>,
) -> impl Iterator<Item = AlarmWrite<'a, S, HistoryItem>> {
    by_alarm.iter().map(|(name, items)| AlarmWrite {
        name,
        state: None,
        history: items,
    })
}

/// A row of the state table as written: the state's own JSON (`m:` rows hold instances, `c:`
/// rows composites).
#[derive(serde::Serialize)]
#[serde(untagged)]
enum StoredState<'a> {
    Metric(&'a InstanceState),
    Composite(&'a CompositeState),
}

#[cfg(test)]
mod tests {
    use thermostat_alarms::engine::EngineState;
    use thermostat_alarms::history::{AlarmType, ConfigChange};
    use thermostat_metrics::Timestamp;

    use super::*;

    const YAML: &str = "alarms:\n  - {name: cpu, namespace: App, metric_name: Cpu, statistic: Maximum, period_seconds: 60, evaluation_periods: 1, threshold: 50, comparison_operator: GreaterThanThreshold}\ncomposite_alarms:\n  - {name: any, alarm_rule: \"ALARM(cpu)\"}\n";

    fn item(name: &str) -> HistoryItem {
        let mut h = HistoryItem::configuration_update(
            name,
            AlarmType::MetricAlarm,
            ConfigChange::Updated,
            Timestamp(1),
        );
        h.summary = "Alarm actions disabled".into();
        h
    }

    #[test]
    fn actions_enabled_overrides_round_trip_beside_the_states() {
        let dir = tempfile::tempdir().unwrap();
        let set = thermostat_alarms::validate(&[("a.yaml", YAML)]).unwrap();
        let state = EngineState::new(&set, Timestamp(0), None);
        {
            // A file as a build without overrides wrote it: states and history only.
            let db = StateDb::open(dir.path()).unwrap();
            AlarmStore::commit(
                &db,
                &[
                    ("cpu", StateRef::Metric(&state.metric["cpu"])),
                    ("any", StateRef::Composite(&state.composites["any"])),
                ],
                &[],
            )
            .unwrap();
        }
        let db = StateDb::open(dir.path()).unwrap();
        assert!(db.load_actions_enabled().unwrap().is_empty(), "none yet");
        db.commit_actions_enabled(&[("cpu", Some(false)), ("any", Some(true))], &[item("cpu")])
            .unwrap();
        drop(db);

        let db = StateDb::open(dir.path()).unwrap();
        assert_eq!(
            db.load_actions_enabled().unwrap(),
            [("any".to_owned(), true), ("cpu".to_owned(), false)]
        );
        let states = AlarmStore::load_states(&db).unwrap();
        assert_eq!(states.metric.len(), 1, "the override rows are not states");
        assert_eq!(states.composites.len(), 1);
        let history: Vec<HistoryItem> = db.history("cpu", 10).unwrap();
        assert_eq!(history, [item("cpu")], "in the same transaction");

        // A backup carries them.
        let copy = dir.path().join("copy");
        std::fs::create_dir(&copy).unwrap();
        db.backup_to(&copy.join(crate::FILE_NAME)).unwrap();
        let restored = StateDb::open(&copy).unwrap();
        assert_eq!(restored.load_actions_enabled().unwrap().len(), 2);

        // Removed with `None`; nothing else is touched.
        db.commit_actions_enabled(&[("cpu", None)], &[]).unwrap();
        assert_eq!(
            db.load_actions_enabled().unwrap(),
            [("any".to_owned(), true)]
        );
        assert_eq!(AlarmStore::load_states(&db).unwrap().metric.len(), 1);
        db.commit_actions_enabled(&[], &[]).unwrap();
    }

    #[test]
    fn api_alarm_definitions_round_trip_beside_the_states() {
        let dir = tempfile::tempdir().unwrap();
        let set = thermostat_alarms::validate(&[("PutMetricAlarm", YAML)]).unwrap();
        let alarm = set.alarm("cpu").unwrap().clone();
        {
            let db = StateDb::open(dir.path()).unwrap();
            assert!(db.load_api_alarms().unwrap().is_empty());
            db.commit_api_alarm("cpu", Some(&alarm), &[item("cpu")])
                .unwrap();
            assert_eq!(
                AlarmStore::load_states(&db).unwrap(),
                StoredStates::default(),
                "no state row is read as a definition or the reverse"
            );
        }
        let db = StateDb::open(dir.path()).unwrap();
        assert_eq!(db.load_api_alarms().unwrap(), [alarm]);
        assert_eq!(db.history::<HistoryItem>("cpu", 10).unwrap().len(), 1);
        db.commit_api_alarm("cpu", None, &[]).unwrap();
        assert!(db.load_api_alarms().unwrap().is_empty());
    }

    #[test]
    fn anomaly_models_round_trip_and_are_forgotten() {
        use thermostat_alarms::anomaly::{AnomalyConfig, train};
        use thermostat_metrics::Timestamp;
        let dir = tempfile::tempdir().unwrap();
        let now = Timestamp::from_secs(1_800_000_000);
        let points: Vec<(Timestamp, f64)> = (0..600)
            .map(|i| (now.sub_millis(i * 60_000), 10.0 + (i % 7) as f64))
            .collect();
        let stored = StoredModel {
            instance: "err[Host=a]".into(),
            metric_id: "m1".into(),
            fingerprint: "f".into(),
            model: train(&points, &AnomalyConfig::default(), now),
        };
        {
            let db = StateDb::open(dir.path()).unwrap();
            assert!(db.load_anomaly_models().unwrap().is_empty());
            db.commit_anomaly_model("err[Host=a]", "m1", Some(&stored))
                .unwrap();
            assert_eq!(
                AlarmStore::load_states(&db).unwrap(),
                StoredStates::default(),
                "a model is not read as a state"
            );
        }
        let db = StateDb::open(dir.path()).unwrap();
        assert_eq!(db.load_anomaly_models().unwrap(), [stored]);
        db.commit_anomaly_model("err[Host=a]", "m1", None).unwrap();
        assert!(db.load_anomaly_models().unwrap().is_empty());
    }
}
