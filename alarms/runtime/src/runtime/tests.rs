//! The runtime through an in-memory [`AlarmStore`] and a recording [`ActionSink`] (the redb
//! store is covered by the integration tests).

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};

use thermostat_alarms::engine::InstanceState;
use thermostat_alarms::history::HistoryItemType;
use thermostat_alarms::{ActionDue, AlarmSet, CompositeState, HistoryItem, StateValue};
use thermostat_metrics::{ManualClock, Store, Timestamp};

use super::*;
use crate::error::{Error, StoreError};
use crate::persistence::{PruneBounds, PrunePass, StoredStates};

const YAML: &str = "alarms:\n  - {name: cpu, namespace: App, metric_name: Cpu, statistic: Maximum, period_seconds: 60, evaluation_periods: 1, threshold: 50, comparison_operator: GreaterThanThreshold, alarm_actions: [\"https://example.com/hook\"]}\n  - {name: hot, namespace: App, metric_name: Cpu, dimensions: {Host: \"*\"}, statistic: Maximum, period_seconds: 60, evaluation_periods: 1, threshold: 50, comparison_operator: GreaterThanThreshold}\ncomposite_alarms:\n  - {name: any, alarm_rule: \"ALARM(cpu)\"}\n";

/// 1_800_000_000 s is a multiple of 60.
const T0: Timestamp = Timestamp(1_800_000_000_000);

#[derive(Debug, Default)]
struct Rows {
    metric: BTreeMap<String, InstanceState>,
    composites: BTreeMap<String, CompositeState>,
    history: BTreeMap<String, Vec<(u64, Vec<u8>)>>,
    actions_enabled: BTreeMap<String, bool>,
    api_alarms: BTreeMap<String, thermostat_alarms::Alarm>,
    api_composites: BTreeMap<String, thermostat_alarms::CompositeAlarm>,
    tags: BTreeMap<String, crate::AlarmTags>,
    models: BTreeMap<(String, String), crate::StoredModel>,
    fail_commits: bool,
}

impl Rows {
    fn append(&mut self, history: &[HistoryItem]) {
        for item in history {
            let items = self.history.entry(item.alarm_name.clone()).or_default();
            let seq = items.last().map_or(0, |(s, _)| s + 1);
            items.push((seq, serde_json::to_vec(item).unwrap()));
        }
    }
}

/// The persistence port in memory.
#[derive(Debug, Default)]
struct Memory(Mutex<Rows>);

#[derive(Debug, thiserror::Error)]
#[error("the test store refuses writes")]
struct Refused;

impl Memory {
    fn rows(&self) -> std::sync::MutexGuard<'_, Rows> {
        self.0.lock().unwrap()
    }

    fn history(&self, name: &str) -> Vec<HistoryItem> {
        self.rows()
            .history
            .get(name)
            .map(|items| {
                items
                    .iter()
                    .map(|(_, json)| serde_json::from_slice(json).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl AlarmStore for Memory {
    fn load_states(&self) -> Result<StoredStates, StoreError> {
        let rows = self.rows();
        Ok(StoredStates {
            metric: rows.metric.clone().into_iter().collect(),
            composites: rows.composites.clone().into_iter().collect(),
        })
    }

    fn commit(
        &self,
        states: &[(&str, StateRef<'_>)],
        history: &[HistoryItem],
    ) -> Result<(), StoreError> {
        let mut rows = self.rows();
        if states.is_empty() && history.is_empty() {
            return Ok(());
        }
        if rows.fail_commits {
            return Err(StoreError::new(Refused));
        }
        for (name, state) in states {
            match state {
                StateRef::Metric(i) => {
                    rows.metric.insert((*name).to_owned(), (*i).clone());
                }
                StateRef::Composite(c) => {
                    rows.composites.insert((*name).to_owned(), (*c).clone());
                }
            }
        }
        rows.append(history);
        Ok(())
    }

    fn load_actions_enabled(&self) -> Result<Vec<(String, bool)>, StoreError> {
        Ok(self.rows().actions_enabled.clone().into_iter().collect())
    }

    fn commit_actions_enabled(
        &self,
        overrides: &[(&str, Option<bool>)],
        history: &[HistoryItem],
    ) -> Result<(), StoreError> {
        let mut rows = self.rows();
        if overrides.is_empty() && history.is_empty() {
            return Ok(());
        }
        if rows.fail_commits {
            return Err(StoreError::new(Refused));
        }
        for (name, enabled) in overrides {
            match enabled {
                Some(e) => rows.actions_enabled.insert((*name).to_owned(), *e),
                None => rows.actions_enabled.remove(*name),
            };
        }
        rows.append(history);
        Ok(())
    }

    fn load_api_alarms(&self) -> Result<Vec<thermostat_alarms::Alarm>, StoreError> {
        Ok(self.rows().api_alarms.values().cloned().collect())
    }

    fn commit_api_alarm(
        &self,
        name: &str,
        alarm: Option<&thermostat_alarms::Alarm>,
        history: &[HistoryItem],
    ) -> Result<(), StoreError> {
        let mut rows = self.rows();
        if rows.fail_commits {
            return Err(StoreError::new(Refused));
        }
        match alarm {
            Some(a) => rows.api_alarms.insert(name.to_owned(), a.clone()),
            None => rows.api_alarms.remove(name),
        };
        rows.append(history);
        Ok(())
    }

    fn load_api_composites(&self) -> Result<Vec<thermostat_alarms::CompositeAlarm>, StoreError> {
        Ok(self.rows().api_composites.values().cloned().collect())
    }

    fn commit_api_composite(
        &self,
        name: &str,
        composite: Option<&thermostat_alarms::CompositeAlarm>,
    ) -> Result<(), StoreError> {
        let mut rows = self.rows();
        if rows.fail_commits {
            return Err(StoreError::new(Refused));
        }
        match composite {
            Some(c) => rows.api_composites.insert(name.to_owned(), c.clone()),
            None => rows.api_composites.remove(name),
        };
        Ok(())
    }

    fn load_alarm_tags(&self) -> Result<Vec<(String, crate::AlarmTags)>, StoreError> {
        Ok(self.rows().tags.clone().into_iter().collect())
    }

    fn commit_alarm_tags(
        &self,
        name: &str,
        tags: Option<&crate::AlarmTags>,
    ) -> Result<(), StoreError> {
        let mut rows = self.rows();
        if rows.fail_commits {
            return Err(StoreError::new(Refused));
        }
        match tags {
            Some(t) => rows.tags.insert(name.to_owned(), t.clone()),
            None => rows.tags.remove(name),
        };
        Ok(())
    }

    fn load_anomaly_models(&self) -> Result<Vec<crate::StoredModel>, StoreError> {
        Ok(self.rows().models.values().cloned().collect())
    }

    fn commit_anomaly_model(
        &self,
        instance: &str,
        metric_id: &str,
        model: Option<&crate::StoredModel>,
    ) -> Result<(), StoreError> {
        let mut rows = self.rows();
        if rows.fail_commits {
            return Err(StoreError::new(Refused));
        }
        let key = (instance.to_owned(), metric_id.to_owned());
        match model {
            Some(m) => rows.models.insert(key, m.clone()),
            None => rows.models.remove(&key),
        };
        Ok(())
    }

    fn forget_states(&self, names: &[String]) -> Result<(), StoreError> {
        let mut rows = self.rows();
        for n in names {
            rows.metric.remove(n);
            rows.composites.remove(n);
        }
        Ok(())
    }

    fn scan_history(
        &self,
        name: &str,
        below: Option<u64>,
        max_rows: usize,
        visit: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>,
    ) -> Result<Option<u64>, StoreError> {
        let rows = self.rows();
        let items = rows.history.get(name).cloned().unwrap_or_default();
        let below = below.unwrap_or(u64::MAX);
        for (consumed, (seq, json)) in items.iter().rev().filter(|(s, _)| *s < below).enumerate() {
            if consumed >= max_rows || visit(*seq, json).is_break() {
                return Ok(Some(seq + 1));
            }
        }
        Ok(None)
    }

    fn prune_history(
        &self,
        _from: Option<&str>,
        bounds: &PruneBounds,
    ) -> Result<PrunePass, StoreError> {
        let mut rows = self.rows();
        let mut pass = PrunePass::default();
        for items in rows.history.values_mut() {
            pass.alarms_visited += 1;
            let before = items.len();
            let keep_from = items.len().saturating_sub(bounds.max_items_per_alarm);
            let mut index = 0;
            items.retain(|(_, json)| {
                let item: HistoryItem = serde_json::from_slice(json).unwrap();
                index += 1;
                index > keep_from && item.timestamp >= bounds.older_than
            });
            pass.deleted += before - items.len();
        }
        Ok(pass)
    }
}

/// The action port, recording every call.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<(Timestamp, Vec<ActionDue>)>>);

impl ActionSink for Recorder {
    fn act(&self, _: &AlarmSet, due: &[ActionDue], now: Timestamp) {
        self.0.lock().unwrap().push((now, due.to_vec()));
    }
}

struct Fixture {
    memory: Arc<Memory>,
    sink: Arc<Recorder>,
    store: Arc<Store>,
    clock: Arc<ManualClock>,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            memory: Arc::new(Memory::default()),
            sink: Arc::new(Recorder::default()),
            store: Arc::new(Store::new(2)),
            clock: Arc::new(ManualClock::new(T0)),
        }
    }

    fn start(&self, yaml: &str) -> AlarmRuntime {
        let set = thermostat_alarms::validate(&[("a.yaml", yaml)]).unwrap();
        AlarmRuntime::start(
            Arc::new(set),
            Arc::clone(&self.store),
            self.clock.clone(),
            self.memory.clone(),
            self.sink.clone(),
            crate::AlarmTelemetry::default(),
        )
        .unwrap()
    }

    fn calls(&self) -> Vec<(Timestamp, Vec<ActionDue>)> {
        self.sink.0.lock().unwrap().clone()
    }
}

fn types(items: &[HistoryItem]) -> Vec<HistoryItemType> {
    items.iter().map(|h| h.item_type).collect()
}

#[test]
fn a_start_creates_alarms_and_a_restart_restores_them() {
    let f = Fixture::new();
    let runtime = f.start(YAML);
    assert_eq!(runtime.state_of("cpu"), Some(StateValue::InsufficientData));
    assert_eq!(runtime.state_of("any"), Some(StateValue::InsufficientData));
    assert_eq!(
        runtime.state_of("hot"),
        None,
        "no instance before a series matches"
    );
    assert!(runtime.knows("hot"), "listed until it has an instance");
    assert_eq!(
        types(&f.memory.history("cpu")),
        [HistoryItemType::ConfigurationUpdate]
    );
    assert!(f.memory.rows().metric.contains_key("cpu"));
    assert!(f.memory.rows().composites.contains_key("any"));
    runtime.set_state("cpu", "ALARM", "by hand", None).unwrap();
    drop(runtime);

    let runtime = f.start(YAML);
    assert_eq!(runtime.state_of("cpu"), Some(StateValue::Alarm), "restored");
    assert_eq!(
        types(&f.memory.history("cpu")),
        [
            HistoryItemType::ConfigurationUpdate,
            HistoryItemType::StateUpdate
        ],
        "a restored alarm is not created again"
    );
    let listing = runtime.list();
    let names: Vec<&str> = listing.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["any", "cpu", "hot"]);
    assert_eq!(listing.entries[2].state, None);
}

#[test]
fn set_state_checks_its_fields_in_order() {
    let f = Fixture::new();
    let runtime = f.start(YAML);
    let field = |r: Result<()>| match r {
        Err(Error::Invalid { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        field(runtime.set_state("cpu", "HOT", "", None)),
        "state_value"
    );
    assert_eq!(
        field(runtime.set_state("cpu", "OK", "", None)),
        "state_reason"
    );
    let long = "é".repeat(MAX_STATE_REASON_CHARS + 1);
    assert_eq!(
        field(runtime.set_state("cpu", "OK", &long, None)),
        "state_reason"
    );
    let longest = "é".repeat(MAX_STATE_REASON_CHARS);
    runtime.set_state("cpu", "OK", &longest, None).unwrap();
    let not_json = Some(serde_json::Value::String("{".into()));
    match runtime.set_state("cpu", "OK", "r", not_json) {
        Err(Error::Invalid { field, message }) => {
            assert_eq!(field, "state_reason_data");
            assert!(message.contains("the text ends too early"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let big = Some(serde_json::json!({ "x": "y".repeat(MAX_STATE_REASON_DATA_CHARS) }));
    assert_eq!(
        field(runtime.set_state("cpu", "OK", "r", big)),
        "state_reason_data"
    );
    assert!(matches!(
        runtime.set_state("nobody", "OK", "r", None),
        Err(Error::NotFound(n)) if n == "nobody"
    ));
    let as_text = Some(serde_json::Value::String("{\"a\": 1}".into()));
    runtime.set_state("cpu", "OK", "r", as_text).unwrap();
    let listing = runtime.list();
    let cpu = listing.entries.iter().find(|e| e.name == "cpu").unwrap();
    let data = serde_json::to_value(&cpu.state.as_ref().unwrap().reason_data).unwrap();
    assert_eq!(data, serde_json::json!({ "a": 1 }), "stored parsed");
}

#[test]
fn set_state_persists_then_acts_through_the_same_path_as_the_tick() {
    let f = Fixture::new();
    let runtime = f.start(YAML);
    runtime.set_state("cpu", "ALARM", "by hand", None).unwrap();
    let calls = f.calls();
    assert_eq!(calls.len(), 1);
    let (at, due) = &calls[0];
    assert_eq!(*at, T0);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].name, "cpu");
    assert_eq!(due[0].transition.new_state, StateValue::Alarm);
    assert_eq!(due[0].transition.reason, "by hand");
    let history = f.memory.history("cpu");
    assert_eq!(
        history.last().unwrap().item_type,
        HistoryItemType::StateUpdate
    );
    assert_eq!(
        f.memory.rows().metric["cpu"].state.value,
        StateValue::Alarm,
        "written before acting"
    );

    // The same value again: the reason changes and is written, no action is due, and the
    // sink is still called.
    runtime.set_state("cpu", "ALARM", "again", None).unwrap();
    assert_eq!(f.memory.rows().metric["cpu"].state.reason, "again");
    let calls = f.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls[1].1.is_empty());

    // A failed write acts on nothing.
    f.memory.rows().fail_commits = true;
    let e = runtime.set_state("cpu", "OK", "r", None).unwrap_err();
    assert!(matches!(e, Error::Store(_)), "{e:?}");
    assert_eq!(chain(&e), "the test store refuses writes");
    assert_eq!(f.calls().len(), 2);
}

#[test]
fn every_tick_acts_and_then_calls_the_hook() {
    let f = Fixture::new();
    let ticks = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ticks);
    let runtime = f
        .start(YAML)
        .with_after_tick(move |t| seen.lock().unwrap().push(t));
    let t1 = T0.add_millis(10_000);
    runtime.tick(t1).unwrap();
    assert_eq!(*ticks.lock().unwrap(), [t1]);
    let calls = f.calls();
    assert_eq!(calls.len(), 1, "called with nothing due");
    assert!(calls[0].1.is_empty());

    // A tick whose write fails acts on nothing and does not call the hook.
    let key = thermostat_metrics::SeriesKey::new("App", "Cpu", Vec::new());
    let obs = thermostat_metrics::Observation {
        timestamp: T0.add_millis(20_000),
        unit: thermostat_metrics::Unit::None,
        resolution: thermostat_metrics::Resolution::Standard,
        sample: thermostat_metrics::Sample::Value(90.0),
    };
    f.store.record_batch(&[(key, obs)]);
    f.memory.rows().fail_commits = true;
    let t2 = T0.add_millis(60_000);
    assert!(
        runtime.tick(t2).is_err(),
        "cpu goes to ALARM: its write fails"
    );
    assert_eq!(
        runtime.state_of("cpu"),
        Some(StateValue::Alarm),
        "in memory"
    );
    assert_eq!(ticks.lock().unwrap().len(), 1);
    assert_eq!(f.calls().len(), 1);
    f.memory.rows().fail_commits = false;
    runtime.tick(T0.add_millis(70_000)).unwrap();
    assert_eq!(ticks.lock().unwrap().len(), 2);
}

#[test]
fn a_swap_carries_states_over_and_forgets_removed_alarms() {
    let f = Fixture::new();
    let runtime = f.start(YAML);
    runtime.set_state("cpu", "ALARM", "kept", None).unwrap();
    let without_composite = YAML.split("composite_alarms").next().unwrap().replace(
        "threshold: 50, comparison_operator: GreaterThanThreshold, alarm_actions",
        "threshold: 60, comparison_operator: GreaterThanThreshold, alarm_actions",
    );
    let set = thermostat_alarms::validate(&[("a.yaml", without_composite.as_str())]).unwrap();
    let mut saw = None;
    let report = runtime.swap(Arc::new(set), |s| saw = Some(s.composites.len()));
    assert_eq!(saw, Some(0), "called with the new set");
    assert_eq!(report.alarms, 2);
    assert_eq!(report.composite_alarms, 0);
    assert_eq!(report.changed, ["cpu", "any"]);
    assert_eq!(report.removed, ["any"]);
    assert_eq!(
        runtime.state_of("cpu"),
        Some(StateValue::Alarm),
        "an update keeps the value"
    );
    assert!(!f.memory.rows().composites.contains_key("any"), "forgotten");
    assert_eq!(
        types(&f.memory.history("any")),
        [
            HistoryItemType::ConfigurationUpdate,
            HistoryItemType::ConfigurationUpdate
        ],
        "created, then deleted: its history stays"
    );
    assert_eq!(runtime.alarms().composites.len(), 0);
}

#[test]
fn history_scans_and_action_items_go_through_the_store() {
    let f = Fixture::new();
    let runtime = f.start(YAML);
    let mut item = f.memory.history("cpu").remove(0);
    item.summary = "an action".into();
    runtime.record_action(&item).unwrap();
    let mut seen = Vec::new();
    let resume = runtime
        .scan_history("cpu", None, 1, |seq, _| {
            seen.push(seq);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(seen, [1]);
    assert_eq!(resume, Some(1));

    let report = runtime
        .with_history_retention(HistoryRetention {
            max_age_days: 1,
            max_items_per_alarm: 1,
        })
        .prune_history(T0)
        .unwrap();
    assert_eq!(report.deleted, 1, "cpu keeps its newest item");
    assert!(report.complete);
}

fn push(store: &Store, dimensions: Vec<thermostat_metrics::Dimension>, at: Timestamp, v: f64) {
    let key = thermostat_metrics::SeriesKey::new("App", "Cpu", dimensions);
    let obs = thermostat_metrics::Observation {
        timestamp: at,
        unit: thermostat_metrics::Unit::None,
        resolution: thermostat_metrics::Resolution::Standard,
        sample: thermostat_metrics::Sample::Value(v),
    };
    store.record_batch(&[(key, obs)]);
}

/// The actions due for `name` in every call to the sink so far.
fn due_for(f: &Fixture, name: &str) -> Vec<ActionDue> {
    f.calls()
        .into_iter()
        .flat_map(|(_, due)| due)
        .filter(|d| d.name == name)
        .collect()
}

fn summaries(items: &[HistoryItem]) -> Vec<&str> {
    items.iter().map(|h| h.summary.as_str()).collect()
}

/// Reference §3.8: `DisableAlarmActions` stops the actions, not the state changes or the
/// history; `EnableAlarmActions` turns them back on.
#[test]
fn disabled_actions_let_the_alarm_transition_without_acting_until_enabled_again() {
    let f = Fixture::new();
    let runtime = f.start(YAML);
    assert_eq!(runtime.actions_enabled("cpu"), Some(true), "as configured");
    assert!(runtime.set_actions_enabled("cpu", false, T0).unwrap());
    assert!(
        !runtime.set_actions_enabled("cpu", false, T0).unwrap(),
        "already disabled: nothing changes"
    );
    assert_eq!(runtime.actions_enabled("cpu"), Some(false));
    assert_eq!(runtime.actions_enabled("any"), Some(true), "only cpu");
    assert_eq!(runtime.actions_enabled("nobody"), None);
    let listing = runtime.list();
    let cpu = listing.entries.iter().find(|e| e.name == "cpu").unwrap();
    assert!(!cpu.actions_enabled);
    assert!(!listing.set.alarm("cpu").unwrap().actions.enabled);
    let history = f.memory.history("cpu");
    let last = history.last().unwrap();
    assert_eq!(last.item_type, HistoryItemType::ConfigurationUpdate);
    assert_eq!(last.summary, "Alarm actions disabled");
    assert_eq!(last.timestamp, T0);
    assert_eq!(history.len(), 2, "created, disabled (once)");
    assert!(!f.memory.rows().actions_enabled["cpu"], "written");

    // A breach: the state changes and is recorded, no action is due.
    push(&f.store, Vec::new(), T0.add_millis(20_000), 90.0);
    runtime.tick(T0.add_millis(60_000)).unwrap();
    assert_eq!(runtime.state_of("cpu"), Some(StateValue::Alarm));
    assert_eq!(
        f.memory.history("cpu").last().unwrap().item_type,
        HistoryItemType::StateUpdate
    );
    assert!(due_for(&f, "cpu").is_empty());
    // SetAlarmState too changes the state without acting.
    runtime.set_state("cpu", "OK", "by hand", None).unwrap();
    runtime.set_state("cpu", "ALARM", "by hand", None).unwrap();
    assert!(due_for(&f, "cpu").is_empty());

    // Enabled again: the next transition acts.
    assert!(runtime.set_actions_enabled("cpu", true, T0).unwrap());
    assert_eq!(
        summaries(&f.memory.history("cpu")).last().copied().unwrap(),
        "Alarm actions enabled"
    );
    assert!(
        f.memory.rows().actions_enabled.is_empty(),
        "back to the configured value: no override left"
    );
    runtime.set_state("cpu", "OK", "by hand", None).unwrap();
    push(&f.store, Vec::new(), T0.add_millis(80_000), 90.0);
    runtime.tick(T0.add_millis(120_000)).unwrap();
    let due = due_for(&f, "cpu");
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0].transition.new_state, StateValue::Alarm);
    assert_eq!(due[0].transition.timestamp, T0.add_millis(120_000));
}

#[test]
fn an_override_is_restored_on_restart_and_a_stale_one_dropped() {
    let f = Fixture::new();
    let runtime = f.start(YAML);
    runtime.set_actions_enabled("cpu", false, T0).unwrap();
    runtime.set_actions_enabled("any", false, T0).unwrap();
    drop(runtime);
    f.memory.rows().actions_enabled.insert("gone".into(), false);

    let runtime = f.start(YAML);
    assert_eq!(runtime.actions_enabled("cpu"), Some(false), "restored");
    assert_eq!(
        runtime.actions_enabled("any"),
        Some(false),
        "composites too"
    );
    assert!(!runtime.alarms().composite("any").unwrap().actions.enabled);
    assert_eq!(
        f.memory.rows().actions_enabled,
        BTreeMap::from([("any".to_owned(), false), ("cpu".to_owned(), false)]),
        "the override of an alarm that no longer exists is deleted"
    );
    runtime
        .set_state("cpu", "ALARM", "after the restart", None)
        .unwrap();
    assert!(due_for(&f, "cpu").is_empty(), "still disabled");
    assert_eq!(
        types(&f.memory.history("cpu"))
            .iter()
            .filter(|t| **t == HistoryItemType::ConfigurationUpdate)
            .count(),
        2,
        "created and disabled: a restart adds no item"
    );
}

#[test]
fn a_reload_keeps_the_overrides_of_the_alarms_it_keeps() {
    let f = Fixture::new();
    let runtime = f.start(YAML);
    runtime.set_actions_enabled("cpu", false, T0).unwrap();
    runtime.set_actions_enabled("any", false, T0).unwrap();

    // The same configuration: an override is no configuration change.
    let same = thermostat_alarms::validate(&[("a.yaml", YAML)]).unwrap();
    let report = runtime.swap(Arc::new(same), |s| {
        assert!(
            !s.alarm("cpu").unwrap().actions.enabled,
            "the set evaluated"
        );
    });
    assert!(report.changed.is_empty(), "{report:?}");
    assert_eq!(runtime.actions_enabled("cpu"), Some(false));

    // cpu changes, any is removed: cpu keeps its override, any's is dropped.
    let changed = YAML.split("composite_alarms").next().unwrap().replace(
        "threshold: 50, comparison_operator: GreaterThanThreshold, alarm_actions",
        "threshold: 60, comparison_operator: GreaterThanThreshold, alarm_actions",
    );
    let set = thermostat_alarms::validate(&[("a.yaml", changed.as_str())]).unwrap();
    let report = runtime.swap(Arc::new(set), |_| {});
    assert_eq!(report.removed, ["any"]);
    assert_eq!(runtime.actions_enabled("cpu"), Some(false), "kept");
    assert_eq!(runtime.actions_enabled("any"), None);
    assert_eq!(
        f.memory.rows().actions_enabled,
        BTreeMap::from([("cpu".to_owned(), false)])
    );
    runtime
        .set_state("cpu", "ALARM", "after the reload", None)
        .unwrap();
    assert!(due_for(&f, "cpu").is_empty());

    // The configuration comes to agree with the override: it is dropped, and the
    // configuration decides again.
    let agreeing = changed.replace(
        "alarm_actions: [",
        "actions_enabled: false, alarm_actions: [",
    );
    let set = thermostat_alarms::validate(&[("a.yaml", agreeing.as_str())]).unwrap();
    runtime.swap(Arc::new(set), |_| {});
    assert_eq!(runtime.actions_enabled("cpu"), Some(false));
    assert!(f.memory.rows().actions_enabled.is_empty());
    assert!(runtime.set_actions_enabled("cpu", true, T0).unwrap());
    assert_eq!(
        f.memory.rows().actions_enabled,
        BTreeMap::from([("cpu".to_owned(), true)]),
        "enabled against the configuration"
    );
    let set = thermostat_alarms::validate(&[("a.yaml", changed.as_str())]).unwrap();
    runtime.swap(Arc::new(set), |_| {});
    assert!(f.memory.rows().actions_enabled.is_empty());
    assert_eq!(runtime.actions_enabled("cpu"), Some(true));
}

#[test]
fn a_per_series_alarm_is_switched_by_its_name_for_all_its_instances() {
    let f = Fixture::new();
    let runtime = f.start(YAML);
    let host = |h: &str| vec![thermostat_metrics::Dimension::new("Host", h)];
    push(&f.store, host("a"), T0.add_millis(20_000), 10.0);
    runtime.tick(T0.add_millis(60_000)).unwrap();
    assert!(runtime.state_of("hot[Host=a]").is_some());

    assert!(matches!(
        runtime.set_actions_enabled("hot[Host=a]", false, T0),
        Err(Error::Invalid { field: "name", message }) if message.contains("use \"hot\"")
    ));
    assert!(matches!(
        runtime.set_actions_enabled("nobody", false, T0),
        Err(Error::NotFound(n)) if n == "nobody"
    ));
    assert!(matches!(
        runtime.set_actions_enabled("cpu[Host=a]", false, T0),
        Err(Error::NotFound(_))
    ));
    assert!(runtime.set_actions_enabled("hot", false, T0).unwrap());
    assert_eq!(runtime.actions_enabled("hot[Host=a]"), Some(false));
    for name in ["hot", "hot[Host=a]"] {
        assert_eq!(
            summaries(&f.memory.history(name)).last().copied(),
            Some("Alarm actions disabled"),
            "{name}"
        );
    }
    // A new instance starts disabled too.
    push(&f.store, host("b"), T0.add_millis(80_000), 10.0);
    runtime.tick(T0.add_millis(120_000)).unwrap();
    let listing = runtime.list();
    let instances: Vec<(&str, bool)> = listing
        .entries
        .iter()
        .filter(|e| e.alarm == "hot")
        .map(|e| (e.name.as_str(), e.actions_enabled))
        .collect();
    assert_eq!(instances, [("hot[Host=a]", false), ("hot[Host=b]", false)]);
}

#[test]
fn a_failed_override_write_changes_nothing() {
    let f = Fixture::new();
    let runtime = f.start(YAML);
    f.memory.rows().fail_commits = true;
    let e = runtime.set_actions_enabled("cpu", false, T0).unwrap_err();
    assert!(matches!(e, Error::Store(_)), "{e:?}");
    assert_eq!(runtime.actions_enabled("cpu"), Some(true));
    f.memory.rows().fail_commits = false;
    runtime.set_state("cpu", "ALARM", "acts", None).unwrap();
    assert_eq!(due_for(&f, "cpu").len(), 1);
}

/// An alarm as `PutMetricAlarm` makes it: validated like a file's entry.
fn api_alarm(name: &str, threshold: f64) -> thermostat_alarms::Alarm {
    let yaml = format!(
        "alarms:\n  - {{name: {name}, namespace: App, metric_name: Cpu, statistic: Maximum, period_seconds: 60, evaluation_periods: 1, threshold: {threshold}, comparison_operator: GreaterThanThreshold}}\n"
    );
    let set = thermostat_alarms::validate(&[("PutMetricAlarm", yaml.as_str())]).unwrap();
    set.alarms.into_iter().next().unwrap()
}

#[test]
fn api_alarms_are_a_second_source_kept_across_reloads_and_restarts() {
    let f = Fixture::new();
    let runtime = f.start(YAML);
    assert!(
        runtime.put_api_alarm(api_alarm("mem", 80.0)).unwrap(),
        "new"
    );
    assert_eq!(runtime.state_of("mem"), Some(StateValue::InsufficientData));
    assert_eq!(runtime.origin("mem"), Some(AlarmOrigin::Api));
    assert_eq!(
        runtime.origin("cpu"),
        Some(AlarmOrigin::File("a.yaml".into()))
    );
    assert_eq!(
        types(&f.memory.history("mem")),
        [HistoryItemType::ConfigurationUpdate]
    );
    assert!(f.memory.rows().api_alarms.contains_key("mem"), "written");

    // Evaluated on the same ticks as the file's alarms (the API alarm watches App/Cpu too).
    push(&f.store, Vec::new(), T0, 95.0);
    runtime.tick(Timestamp(T0.as_millis() + 60_000)).unwrap();
    assert_eq!(runtime.state_of("cpu"), Some(StateValue::Alarm));
    assert_eq!(runtime.state_of("mem"), Some(StateValue::Alarm));

    // A file's name is the file's.
    match runtime.put_api_alarm(api_alarm("cpu", 1.0)) {
        Err(Error::OwnedByFile { name, file }) => {
            assert_eq!((name.as_str(), file.as_str()), ("cpu", "a.yaml"))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        runtime.delete_api_alarm("cpu"),
        Err(Error::OwnedByFile { .. })
    ));

    // A reload of the files keeps the API alarms and their states.
    let set = thermostat_alarms::validate(&[("a.yaml", YAML)]).unwrap();
    let report = runtime.swap(Arc::new(set), |_| {});
    assert!(report.removed.is_empty(), "{report:?}");
    assert_eq!(runtime.state_of("mem"), Some(StateValue::Alarm));

    // Replacing keeps the state value; a restart loads the definition and state.
    assert!(
        !runtime.put_api_alarm(api_alarm("mem", 90.0)).unwrap(),
        "replaced"
    );
    assert_eq!(runtime.state_of("mem"), Some(StateValue::Alarm));
    drop(runtime);
    let runtime = f.start(YAML);
    assert_eq!(runtime.state_of("mem"), Some(StateValue::Alarm), "restored");
    assert_eq!(runtime.alarms().alarm("mem").unwrap().threshold, 90.0);
    assert_eq!(runtime.api_alarms().len(), 1);

    // Deleted: its state goes, its history stays; a second delete finds nothing.
    runtime.delete_api_alarm("mem").unwrap();
    assert_eq!(runtime.state_of("mem"), None);
    assert!(runtime.alarms().alarm("mem").is_none());
    assert!(!f.memory.rows().api_alarms.contains_key("mem"));
    assert!(!f.memory.rows().metric.contains_key("mem"));
    assert!(matches!(
        runtime.delete_api_alarm("mem"),
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        types(&f.memory.history("mem")).last(),
        Some(&HistoryItemType::ConfigurationUpdate)
    );
}

#[test]
fn a_failed_api_alarm_write_changes_nothing() {
    let f = Fixture::new();
    let runtime = f.start(YAML);
    f.memory.rows().fail_commits = true;
    assert!(matches!(
        runtime.put_api_alarm(api_alarm("mem", 1.0)),
        Err(Error::Store(_))
    ));
    assert!(runtime.alarms().alarm("mem").is_none());
    assert_eq!(runtime.origin("mem"), None);
}

/// A composite alarm as `PutCompositeAlarm` makes it, its references resolved by stand-ins.
fn api_composite(name: &str, rule: &str, refs: &[&str]) -> thermostat_alarms::CompositeAlarm {
    let mut yaml = String::from("alarms:\n");
    for r in refs {
        yaml.push_str(&format!("  - {{name: {r}, namespace: S, metric_name: S, statistic: Average, period_seconds: 60, evaluation_periods: 1, threshold: 0, comparison_operator: GreaterThanThreshold}}\n"));
    }
    yaml.push_str(&format!(
        "composite_alarms:\n  - {{name: {name}, alarm_rule: \"{rule}\"}}\n"
    ));
    let set = thermostat_alarms::validate(&[("PutCompositeAlarm", yaml.as_str())]).unwrap();
    set.composite(name).unwrap().clone()
}

#[test]
fn api_composites_follow_their_alarms_and_cycles_are_refused() {
    let f = Fixture::new();
    let runtime = f.start(YAML);
    runtime.put_api_alarm(api_alarm("mem", 80.0)).unwrap();
    assert!(
        runtime
            .put_api_composite(api_composite(
                "both",
                "ALARM(mem) AND ALARM(cpu)",
                &["mem", "cpu"]
            ))
            .unwrap()
    );
    assert_eq!(runtime.state_of("both"), Some(StateValue::InsufficientData));
    runtime.set_state("mem", "ALARM", "x", None).unwrap();
    runtime.set_state("cpu", "ALARM", "x", None).unwrap();
    runtime.tick(Timestamp(T0.as_millis() + 10_000)).unwrap();
    assert_eq!(runtime.state_of("both"), Some(StateValue::Alarm));

    // A composite on a composite is ordered after it; a cycle is refused and not written.
    runtime
        .put_api_composite(api_composite("outer", "ALARM(both)", &["both"]))
        .unwrap();
    let names: Vec<String> = runtime
        .alarms()
        .composites
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, ["any", "both", "outer"]);
    let cycle = api_composite("both", "ALARM(outer)", &["outer"]);
    assert!(matches!(
        runtime.put_api_composite(cycle),
        Err(Error::Invalid {
            field: "alarm_rule",
            ..
        })
    ));
    assert!(
        f.memory.rows().api_composites["both"]
            .rule_text
            .contains("mem")
    );
    // Names are unique across kinds; a restart loads the composites.
    assert!(matches!(
        runtime.put_api_alarm(api_alarm("both", 1.0)),
        Err(Error::Invalid { field: "name", .. })
    ));
    drop(runtime);
    let runtime = f.start(YAML);
    assert_eq!(
        runtime.state_of("outer"),
        Some(StateValue::InsufficientData)
    );
    assert_eq!(runtime.state_of("both"), Some(StateValue::Alarm));
    assert_eq!(runtime.origin("outer"), Some(AlarmOrigin::Api));

    // Deleting what a composite refers to leaves it out until the alarm is back.
    runtime.delete_api_alarm("mem").unwrap();
    assert!(runtime.alarms().composite("both").is_none());
    assert!(runtime.alarms().composite("outer").is_none());
    runtime.put_api_alarm(api_alarm("mem", 80.0)).unwrap();
    assert!(runtime.alarms().composite("outer").is_some());
    runtime.delete_api_alarm("outer").unwrap();
    assert!(!f.memory.rows().api_composites.contains_key("outer"));
}

fn tags(pairs: &[(&str, &str)]) -> crate::AlarmTags {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn tags_are_kept_for_alarms_of_both_sources_and_go_with_an_api_alarm() {
    let f = Fixture::new();
    let runtime = f.start(YAML);
    runtime
        .put_api_alarm_tagged(api_alarm("mem", 80.0), tags(&[("team", "web")]))
        .unwrap();
    assert_eq!(runtime.alarm_tags("mem").unwrap(), tags(&[("team", "web")]));
    // A replacement keeps the tags it had and ignores the ones it brings.
    runtime
        .put_api_alarm_tagged(api_alarm("mem", 90.0), tags(&[("other", "x")]))
        .unwrap();
    assert_eq!(runtime.alarm_tags("mem").unwrap(), tags(&[("team", "web")]));
    // A file's alarm takes tags too: they are not part of its definition.
    runtime.tag_alarm("cpu", tags(&[("tier", "1")])).unwrap();
    runtime
        .tag_alarm("cpu", tags(&[("tier", "2"), ("owner", "sre")]))
        .unwrap();
    runtime
        .untag_alarm("cpu", &["owner".to_owned(), "absent".to_owned()])
        .unwrap();
    assert_eq!(runtime.alarm_tags("cpu").unwrap(), tags(&[("tier", "2")]));
    assert!(matches!(
        runtime.alarm_tags("nope"),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        runtime.tag_alarm("nope", tags(&[("a", "b")])),
        Err(Error::NotFound(_))
    ));
    // At most 50 tags.
    let many: crate::AlarmTags = (0..50).map(|i| (format!("k{i}"), String::new())).collect();
    match runtime.tag_alarm("cpu", many) {
        Err(Error::Invalid {
            field: "tags",
            message,
        }) => {
            assert!(message.contains("51"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(runtime.alarm_tags("cpu").unwrap(), tags(&[("tier", "2")]));
    // Written through the port, and read back at start.
    assert_eq!(f.memory.rows().tags.len(), 2);
    let again = f.start(YAML);
    assert_eq!(again.alarm_tags("cpu").unwrap(), tags(&[("tier", "2")]));
    // Deleting an API alarm removes its tags; a new alarm of the name starts without them.
    runtime.delete_api_alarm("mem").unwrap();
    assert!(!f.memory.rows().tags.contains_key("mem"));
    runtime.put_api_alarm(api_alarm("mem", 80.0)).unwrap();
    assert!(runtime.alarm_tags("mem").unwrap().is_empty());
}

const ANOMALY: &str = "alarms:\n  - name: ad\n    metrics:\n      - {id: m1, return_data: true, metric_stat: {namespace: App, metric_name: Cpu, statistic: Average, period_seconds: 60}}\n      - {id: ad1, expression: \"ANOMALY_DETECTION_BAND(m1, 3)\", return_data: true}\n    threshold_metric_id: ad1\n    comparison_operator: GreaterThanUpperThreshold\n    evaluation_periods: 1\n";

/// Reference §3.12: the model of an anomaly alarm is trained from the store's history before
/// the evaluation, stored, restored after a restart (not retrained while fresh), retrained
/// an hour later, and forgotten with its alarm. Without enough history the alarm stays
/// INSUFFICIENT_DATA saying why.
#[test]
fn anomaly_models_are_trained_stored_restored_and_forgotten() {
    let f = Fixture::new();
    // Ten points only: the model is pending.
    for i in 1..=10 {
        push(&f.store, Vec::new(), T0.sub_millis(i * 60_000), 10.0);
    }
    let runtime = f.start(ANOMALY);
    runtime.tick(T0).unwrap();
    assert_eq!(runtime.state_of("ad"), Some(StateValue::InsufficientData));
    let reason = runtime.lock().state.metric["ad"].state.reason.clone();
    assert!(
        reason.starts_with(
            "Insufficient Data: the anomaly model has not seen enough data yet: 10 datapoints"
        ),
        "{reason}"
    );
    // Six hours of a steady metric: trained (retrained after 10 minutes while pending).
    for i in 11..=360 {
        push(
            &f.store,
            Vec::new(),
            T0.sub_millis(i * 60_000),
            10.0 + (i % 3) as f64,
        );
    }
    push(&f.store, Vec::new(), T0.add_millis(5_000), 11.0);
    let t1 = T0.add_millis(600_000);
    push(&f.store, Vec::new(), t1.sub_millis(30_000), 11.0);
    runtime.tick(t1).unwrap();
    assert_eq!(runtime.state_of("ad"), Some(StateValue::Ok));
    let stored = f.memory.rows().models.clone();
    assert_eq!(stored.len(), 1);
    let trained_at = stored[&("ad".to_owned(), "m1".to_owned())]
        .model
        .trained_at();
    assert_eq!(trained_at, t1);
    // A spike far above the band.
    let t2 = t1.add_millis(60_000);
    push(&f.store, Vec::new(), t2.sub_millis(30_000), 500.0);
    runtime.tick(t2).unwrap();
    assert_eq!(runtime.state_of("ad"), Some(StateValue::Alarm));
    let reason = runtime.lock().state.metric["ad"].state.reason.clone();
    assert!(
        reason.starts_with("Thresholds Crossed: 1 datapoint [500.0 (")
            && reason.contains("was greater than the upper thresholds ["),
        "{reason}"
    );
    drop(runtime);

    // A restart restores the model: no retraining within the hour.
    let runtime = f.start(ANOMALY);
    runtime.tick(t2.add_millis(60_000)).unwrap();
    assert_eq!(
        f.memory.rows().models[&("ad".to_owned(), "m1".to_owned())]
            .model
            .trained_at(),
        trained_at
    );
    runtime.tick(t1.add_millis(3_600_000)).unwrap();
    assert_eq!(
        f.memory.rows().models[&("ad".to_owned(), "m1".to_owned())]
            .model
            .trained_at(),
        t1.add_millis(3_600_000),
        "retrained after an hour"
    );
    // Removing the alarm forgets its model.
    let set = thermostat_alarms::validate(&[("a.yaml", YAML)]).unwrap();
    runtime.swap(Arc::new(set), |_| {});
    runtime.tick(t1.add_millis(3_660_000)).unwrap();
    assert!(f.memory.rows().models.is_empty());
    assert!(runtime.anomaly_models().is_empty());
}

/// A gate that answers what the test sets.
#[derive(Debug)]
struct FixedGate(Mutex<Gate>);

impl EvaluationGate for FixedGate {
    fn check(&self, _: Timestamp) -> Gate {
        self.0.lock().unwrap().clone()
    }
}

#[test]
fn a_paused_runtime_evaluates_nothing_and_adopts_what_another_writer_stored() {
    let f = Fixture::new();
    let leader = f.start(YAML);
    let gate = Arc::new(FixedGate(Mutex::new(Gate::Pause(
        "another node leads".into(),
    ))));
    let follower = f.start(YAML).with_evaluation_gate(gate.clone());
    assert_eq!(
        follower.evaluation_paused().as_deref(),
        Some("no tick has been evaluated yet")
    );
    let written = f.memory.history("cpu").len();

    // Paused: nothing evaluated, nothing acted on, nothing written; the reason shows.
    let t1 = T0.add_millis(60_000);
    assert_eq!(follower.tick(t1).unwrap(), 0);
    assert_eq!(
        follower.evaluation_paused().as_deref(),
        Some("another node leads")
    );
    assert!(f.calls().is_empty());
    assert_eq!(f.memory.history("cpu").len(), written);

    // The other writer changes a state and an override; the follower sees them once it
    // adopts, and adopting writes nothing.
    leader.set_state("cpu", "ALARM", "by hand", None).unwrap();
    leader.set_actions_enabled("cpu", false, T0).unwrap();
    assert_eq!(follower.state_of("cpu"), Some(StateValue::InsufficientData));
    let written = f.memory.history("cpu").len();
    follower.adopt_stored().unwrap();
    assert_eq!(follower.state_of("cpu"), Some(StateValue::Alarm));
    assert!(!follower.alarms().alarm("cpu").unwrap().actions.enabled);
    assert_eq!(
        f.memory.history("cpu").len(),
        written,
        "adopting writes nothing"
    );

    // Told to adopt first, the follower evaluates from the state the other writer left:
    // the transition it records starts from OK, which only the other writer set.
    leader.set_state("cpu", "OK", "cooled", None).unwrap();
    *gate.0.lock().unwrap() = Gate::AdoptThenEvaluate;
    let t2 = t1.add_millis(60_000);
    assert!(follower.tick(t2).unwrap() > 0);
    assert_eq!(follower.evaluation_paused(), None);
    let history = f.memory.history("cpu");
    let last = history.last().unwrap();
    assert_eq!(last.item_type, HistoryItemType::StateUpdate);
    assert!(
        last.summary.contains("from OK to INSUFFICIENT_DATA"),
        "{}",
        last.summary
    );
}
