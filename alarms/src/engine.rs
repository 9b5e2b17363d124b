//! One evaluation tick over a whole [`AlarmSet`] ([`tick`]), the state it carries
//! ([`EngineState`]), and hot-reload carry-over ([`carry_over`]).
//!
//! The server calls [`tick`] at every multiple of 10 s with its store and clock time; each
//! metric alarm is evaluated on its own ticks (§3.3), per-series alarms (`"*"` dimensions)
//! get one instance per matching series once that series has data in the alarm's range,
//! then composites are evaluated in dependency order over the fresh states.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thermostat_metrics::{SeriesKey, Store, Timestamp};

use crate::action::Action;
use crate::anomaly::Model;
use crate::composite::{CompositeState, evaluate_composite};
use crate::error::{Error, Result};
use crate::evaluator::{Extra, evaluate, evaluate_with, is_tick, query, series_key};
use crate::history::{AlarmType, ConfigChange, HistoryItem};
use crate::math_alarm::{self, AnomalyModels, NoModels, evaluate_metrics};
use crate::model::{Alarm, AlarmSet, StateValue};
use crate::state::{ActionInvocation, AlarmState, Transition};

/// The state of one metric alarm instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceState {
    /// The alarm's name (without the `[...]` of per-series instances).
    pub alarm: String,
    /// The series evaluated.
    pub key: SeriesKey,
    /// Its state.
    pub state: AlarmState,
}

/// The state of every alarm of a set, keyed by alarm (or instance) name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    /// Metric alarm instances by name (`cpu`, `cpu[InstanceId=i-1]`).
    pub metric: BTreeMap<String, InstanceState>,
    /// Composite alarms by name.
    pub composites: BTreeMap<String, CompositeState>,
    /// The state new instances start in (INSUFFICIENT_DATA except in back-tests).
    pub initial: Option<StateValue>,
}

/// What one tick produced, in evaluation order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TickOutput {
    /// Alarm evaluations performed.
    pub evaluations: usize,
    /// `(alarm or instance name, transition)`.
    pub transitions: Vec<(String, Transition)>,
    /// `(alarm or instance name, action)` to run.
    pub actions: Vec<(String, ActionInvocation)>,
    /// History items for the transitions (and instance creation).
    pub history: Vec<HistoryItem>,
    /// Alarms (or instances) not evaluated at this tick because the store could not read
    /// their data now (cluster mode: another node did not answer); their state stays, and
    /// the next tick tries again. The other alarms of the tick are evaluated all the same.
    pub unavailable: Vec<String>,
}

fn initial_state(initial: Option<StateValue>, now: Timestamp) -> AlarmState {
    match initial {
        None | Some(StateValue::InsufficientData) => AlarmState::initial(now),
        Some(v) => AlarmState::with_value(v, "Initial state given to the back-test", now),
    }
}

impl EngineState {
    /// States for a freshly loaded set at `now`; `initial` overrides the creation state
    /// (back-tests' `--initial-state`).
    pub fn new(set: &AlarmSet, now: Timestamp, initial: Option<StateValue>) -> Self {
        let mut s = EngineState {
            initial,
            ..EngineState::default()
        };
        for a in set.alarms.iter().filter(|a| !a.is_per_series()) {
            s.metric.insert(
                a.name.clone(),
                InstanceState {
                    alarm: a.name.clone(),
                    key: series_key(a),
                    state: initial_state(initial, now),
                },
            );
        }
        for c in &set.composites {
            let mut cs = CompositeState::initial(now);
            cs.alarm = initial_state(initial, now);
            s.composites.insert(c.name.clone(), cs);
        }
        s
    }

    /// A child's (value, last transition) as composites see it; a per-series alarm's base
    /// name is ALARM if any instance is, INSUFFICIENT_DATA if it has no instance or any
    /// instance is, else OK.
    pub fn child(&self, name: &str) -> Option<(StateValue, Timestamp)> {
        if let Some(i) = self.metric.get(name) {
            return Some((i.state.value, i.state.transitioned));
        }
        if let Some(c) = self.composites.get(name) {
            return Some((c.alarm.value, c.alarm.transitioned));
        }
        let instances: Vec<&InstanceState> =
            self.metric.values().filter(|i| i.alarm == name).collect();
        let latest = instances.iter().map(|i| i.state.transitioned).max()?;
        let value = if instances.iter().any(|i| i.state.value == StateValue::Alarm) {
            StateValue::Alarm
        } else if instances
            .iter()
            .any(|i| i.state.value == StateValue::InsufficientData)
        {
            StateValue::InsufficientData
        } else {
            StateValue::Ok
        };
        Some((value, latest))
    }
}

/// Evaluates every alarm whose tick `now` is, then every composite (at multiples of 10 s).
/// Anomaly-detection alarms have no model here (they stay INSUFFICIENT_DATA): see
/// [`tick_with_models`].
///
/// # Errors
/// [`Error::Query`] when the store refuses an alarm's query (a range above its limit).
pub fn tick(
    set: &AlarmSet,
    st: &mut EngineState,
    store: &Store,
    now: Timestamp,
) -> Result<TickOutput> {
    tick_with_models(set, st, store, &NoModels, now)
}

/// [`tick`] with the anomaly models of the anomaly-detection alarms (by alarm or instance
/// name and the id of the query banded, [`AnomalyModels`]). Metric-math alarms evaluate
/// their `metrics:` per instance ([`crate::math_alarm::evaluate_metrics`]).
///
/// # Errors
/// [`Error::Query`] when the store refuses an alarm's query (a range above its limit).
pub fn tick_with_models(
    set: &AlarmSet,
    st: &mut EngineState,
    store: &Store,
    models: &dyn AnomalyModels,
    now: Timestamp,
) -> Result<TickOutput> {
    tick_scoped(set, st, store, models, &Scope::All, now)
}

/// Which alarms a tick evaluates: all of them (one node), or one cluster node's share.
#[derive(Clone, Copy)]
pub enum Scope<'a> {
    /// Every alarm.
    All,
    /// A cluster node's share: the metric alarm instances whose series `owns` says the node
    /// owns (its partitions), and, when it `leads`, the composite alarms, the metric-math
    /// alarms (their metrics may span partitions) and the alarms with a scaling action
    /// (scaling decisions are the leader's).
    Share {
        /// Whether the node owns a series' partition.
        owns: &'a dyn Fn(&SeriesKey) -> bool,
        /// Whether the node leads the cluster.
        leads: bool,
    },
}

impl std::fmt::Debug for Scope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::All => f.write_str("All"),
            Scope::Share { leads, .. } => f
                .debug_struct("Share")
                .field("leads", leads)
                .finish_non_exhaustive(),
        }
    }
}

impl Scope<'_> {
    /// Whether the leader alone evaluates `a` (in a share).
    pub fn leader_alarm(a: &Alarm) -> bool {
        a.is_math()
            || [
                &a.actions.alarm,
                &a.actions.ok,
                &a.actions.insufficient_data,
            ]
            .iter()
            .any(|list| list.iter().any(Action::is_scaling))
    }

    /// Whether this scope evaluates the instance of `a` on series `key`.
    pub fn evaluates(&self, a: &Alarm, key: &SeriesKey) -> bool {
        match self {
            Scope::All => true,
            Scope::Share { owns, leads } => {
                if Self::leader_alarm(a) {
                    *leads
                } else {
                    owns(key)
                }
            }
        }
    }

    /// Whether this scope evaluates the composite alarms.
    pub fn composites(&self) -> bool {
        match self {
            Scope::All => true,
            Scope::Share { leads, .. } => *leads,
        }
    }
}

/// [`tick_with_models`] for the alarms of `scope` only: the states of the others are left as
/// they are (another node evaluates them).
///
/// # Errors
/// As [`tick`].
pub fn tick_scoped(
    set: &AlarmSet,
    st: &mut EngineState,
    store: &Store,
    models: &dyn AnomalyModels,
    scope: &Scope<'_>,
    now: Timestamp,
) -> Result<TickOutput> {
    let mut out = TickOutput::default();
    for a in &set.alarms {
        if !is_tick(a, now) {
            continue;
        }
        if let Scope::Share { leads: false, .. } = scope
            && Scope::leader_alarm(a)
        {
            continue;
        }
        for (name, key) in instances(a, st, store) {
            if !scope.evaluates(a, &key) {
                continue;
            }
            let (dps, math) = if a.is_math() {
                let m = evaluate_metrics(a, &name, &key, store, models, now)?;
                (m.datapoints.clone(), Some(m))
            } else {
                let q = query(a, key.clone(), now);
                let dps = match store.query(&q, now) {
                    Ok(dps) => dps,
                    Err(e) if e.is_unavailable() => {
                        out.unavailable.push(name);
                        continue;
                    }
                    Err(e) => {
                        return Err(Error::Query {
                            alarm: name.clone(),
                            message: e.to_string(),
                        });
                    }
                };
                (dps, None)
            };
            if !st.metric.contains_key(&name) {
                // A new per-series instance once its series has data in the range.
                let has_data = if a.is_math() {
                    math.as_ref().is_some_and(|m| m.has_data)
                } else {
                    !dps.is_empty()
                };
                if !has_data {
                    continue;
                }
                st.metric.insert(
                    name.clone(),
                    InstanceState {
                        alarm: a.name.clone(),
                        key,
                        state: initial_state(st.initial, now),
                    },
                );
                out.history.push(HistoryItem::configuration_update(
                    &name,
                    AlarmType::MetricAlarm,
                    ConfigChange::Created,
                    now,
                ));
            }
            let Some(inst) = st.metric.get_mut(&name) else {
                continue;
            };
            let e = match &math {
                None => evaluate(a, &inst.state, &dps, now),
                Some(m) => evaluate_with(
                    a,
                    &inst.state,
                    &dps,
                    &Extra {
                        bands: &m.bands,
                        insufficient: m.insufficient.as_deref(),
                    },
                    now,
                ),
            };
            out.evaluations += 1;
            for t in &e.transitions {
                out.history.push(HistoryItem::state_update(
                    &name,
                    AlarmType::MetricAlarm,
                    &inst.state,
                    t,
                ));
                out.transitions.push((name.clone(), t.clone()));
            }
            out.actions
                .extend(e.actions.into_iter().map(|x| (name.clone(), x)));
            inst.state = e.state;
        }
    }
    if scope.composites() && now.as_millis().rem_euclid(10_000) == 0 {
        for c in &set.composites {
            let cur = st
                .composites
                .get(&c.name)
                .cloned()
                .unwrap_or_else(|| CompositeState::initial(now));
            let lookup = |n: &str| st.child(n);
            let e = evaluate_composite(c, &cur, &lookup, now);
            out.evaluations += 1;
            for t in &e.transitions {
                out.history.push(HistoryItem::state_update(
                    &c.name,
                    AlarmType::CompositeAlarm,
                    &cur.alarm,
                    t,
                ));
                out.transitions.push((c.name.clone(), t.clone()));
            }
            out.actions
                .extend(e.actions.into_iter().map(|x| (c.name.clone(), x)));
            st.composites.insert(c.name.clone(), e.state);
        }
    }
    Ok(out)
}

/// `(instance name, series)` pairs to evaluate for an alarm: existing instances plus, for
/// per-series alarms, every matching series in the store (for a math alarm, of its first
/// `metric_stat` with `"*"` dimensions).
pub fn instances(a: &Alarm, st: &EngineState, store: &Store) -> Vec<(String, SeriesKey)> {
    if !a.is_per_series() {
        return vec![(a.name.clone(), series_key(a))];
    }
    let mut out: BTreeMap<String, SeriesKey> = st
        .metric
        .iter()
        .filter(|(_, i)| i.alarm == a.name)
        .map(|(n, i)| (n.clone(), i.key.clone()))
        .collect();
    let matching = if a.is_math() {
        math_alarm::matching(a, store)
    } else {
        store.matching(&a.namespace, &a.metric_name, &a.dimensions)
    };
    for key in matching {
        out.entry(a.instance_name(&key)).or_insert(key);
    }
    out.into_iter().collect()
}

fn key_matches(a: &Alarm, key: &SeriesKey) -> bool {
    if a.is_math() {
        return math_alarm::key_matches(a, key);
    }
    key.namespace() == a.namespace
        && key.metric_name() == a.metric_name
        && key.dimensions().len() == a.dimensions.len()
        && a.dimensions.iter().all(|d| {
            key.dimension(&d.name)
                .is_some_and(|v| d.value == "*" || v == d.value)
        })
}

/// Hot reload: the state for `new` given the state of `old`. Alarms whose definition did not
/// change keep their state untouched; changed alarms keep their state value as in
/// CloudWatch (`PutMetricAlarm` on an existing alarm keeps the state and replaces the
/// configuration), minus per-series instances whose series no longer match; new alarms
/// start as at creation. Returns the ConfigurationUpdate history items.
///
/// The same as [`diff`] then [`carry_over_diff`] on a copy of `old_state`.
pub fn carry_over(
    old: &AlarmSet,
    old_state: &EngineState,
    new: &AlarmSet,
    now: Timestamp,
) -> (EngineState, Vec<HistoryItem>) {
    carry_over_diff(&diff(old, new), new, old_state.clone(), now)
}

/// What a reload changes, alarm by alarm, found from the two definitions alone (so without
/// the engine's state, and outside its lock): the costly part of a reload's carry-over.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConfigDiff {
    /// For each alarm of the new set, in order: `None` when its definition is unchanged.
    alarms: Vec<Option<ConfigChange>>,
    /// For each composite alarm of the new set, in order.
    composites: Vec<Option<ConfigChange>>,
    /// Alarms of the old set that the new one does not have, in order.
    deleted_alarms: Vec<String>,
    /// Composite alarms of the old set that the new one does not have, in order.
    deleted_composites: Vec<String>,
}

impl ConfigDiff {
    /// Whether nothing was created, updated or deleted.
    pub fn is_empty(&self) -> bool {
        self.alarms
            .iter()
            .chain(&self.composites)
            .all(Option::is_none)
            && self.deleted_alarms.is_empty()
            && self.deleted_composites.is_empty()
    }
}

/// Compares two sets by name (hashed, so linear in their size): which alarms of `new` are
/// created or updated, and which of `old` are deleted.
pub fn diff(old: &AlarmSet, new: &AlarmSet) -> ConfigDiff {
    use std::collections::{HashMap, HashSet};
    let old_alarms: HashMap<&str, &Alarm> =
        old.alarms.iter().map(|a| (a.name.as_str(), a)).collect();
    let old_composites: HashMap<&str, &crate::model::CompositeAlarm> = old
        .composites
        .iter()
        .map(|c| (c.name.as_str(), c))
        .collect();
    let alarms = new
        .alarms
        .iter()
        .map(|a| match old_alarms.get(a.name.as_str()) {
            None => Some(ConfigChange::Created),
            Some(b) if b.same_definition(a) => None,
            Some(_) => Some(ConfigChange::Updated),
        })
        .collect();
    let composites = new
        .composites
        .iter()
        .map(|c| match old_composites.get(c.name.as_str()) {
            None => Some(ConfigChange::Created),
            Some(b) if b.same_definition(c) => None,
            Some(_) => Some(ConfigChange::Updated),
        })
        .collect();
    let new_alarms: HashSet<&str> = new.alarms.iter().map(|a| a.name.as_str()).collect();
    let new_composites: HashSet<&str> = new.composites.iter().map(|c| c.name.as_str()).collect();
    ConfigDiff {
        alarms,
        composites,
        deleted_alarms: old
            .alarms
            .iter()
            .filter(|a| !new_alarms.contains(a.name.as_str()))
            .map(|a| a.name.clone())
            .collect(),
        deleted_composites: old
            .composites
            .iter()
            .filter(|c| !new_composites.contains(c.name.as_str()))
            .map(|c| c.name.clone())
            .collect(),
    }
}

/// The carry-over of [`carry_over`] given the [`diff`] of the two sets (`diff` must have been
/// computed against the set `old_state` belongs to): moves `old_state` into the state for
/// `new` without copying or comparing definitions, in time linear in the number of states.
pub fn carry_over_diff(
    diff: &ConfigDiff,
    new: &AlarmSet,
    old_state: EngineState,
    now: Timestamp,
) -> (EngineState, Vec<HistoryItem>) {
    use std::collections::HashMap;
    let EngineState {
        metric,
        composites,
        initial,
    } = old_state;
    let mut st = EngineState {
        initial,
        ..EngineState::default()
    };
    let mut history = Vec::new();
    let mut by_alarm: HashMap<String, Vec<(String, InstanceState)>> = HashMap::new();
    for (n, i) in metric {
        by_alarm.entry(i.alarm.clone()).or_default().push((n, i));
    }
    let mut old_composites = composites;
    for (a, change) in new.alarms.iter().zip(&diff.alarms) {
        if let Some(c) = change {
            history.push(HistoryItem::configuration_update(
                &a.name,
                AlarmType::MetricAlarm,
                *c,
                now,
            ));
        }
        let existed = *change != Some(ConfigChange::Created);
        let instances = if existed {
            by_alarm.remove(&a.name).unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut kept = false;
        for (n, mut i) in instances {
            if !a.is_per_series() {
                if change.is_some() {
                    i.key = series_key(a);
                }
                st.metric.insert(a.name.clone(), i);
                kept = true;
            } else if change.is_none() || key_matches(a, &i.key) {
                st.metric.insert(n, i);
            }
        }
        if !kept && !a.is_per_series() {
            st.metric.insert(
                a.name.clone(),
                InstanceState {
                    alarm: a.name.clone(),
                    key: series_key(a),
                    state: initial_state(initial, now),
                },
            );
        }
    }
    for (c, change) in new.composites.iter().zip(&diff.composites) {
        if let Some(ch) = change {
            history.push(HistoryItem::configuration_update(
                &c.name,
                AlarmType::CompositeAlarm,
                *ch,
                now,
            ));
        }
        let kept = if *change == Some(ConfigChange::Created) {
            None
        } else {
            old_composites.remove(&c.name)
        };
        let state = kept.unwrap_or_else(|| {
            let mut cs = CompositeState::initial(now);
            cs.alarm = initial_state(initial, now);
            cs
        });
        st.composites.insert(c.name.clone(), state);
    }
    for (names, kind) in [
        (&diff.deleted_alarms, AlarmType::MetricAlarm),
        (&diff.deleted_composites, AlarmType::CompositeAlarm),
    ] {
        for n in names {
            history.push(HistoryItem::configuration_update(
                n,
                kind,
                ConfigChange::Deleted,
                now,
            ));
        }
    }
    (st, history)
}

/// The anomaly models of a replay (back-tests, an alarm file's `tests:`), trained from the
/// replay's store as the runtime trains them: before a tick, every model an anomaly alarm
/// (or instance) needs that is missing or due for retraining
/// ([`Model::needs_retraining`]). Use with [`tick_with_models`].
#[derive(Clone, Debug, Default)]
pub struct ModelCache {
    models: BTreeMap<(String, String), Model>,
}

impl ModelCache {
    /// Trains what the anomaly alarms of `set` need at `now`.
    ///
    /// # Errors
    /// [`Error::Query`] when the store refuses a training query.
    pub fn refresh(
        &mut self,
        set: &crate::model::AlarmSet,
        st: &EngineState,
        store: &Store,
        now: Timestamp,
    ) -> Result<()> {
        for a in set.alarms.iter().filter(|a| a.is_anomaly()) {
            let ids = math_alarm::band_inputs(a);
            for (name, key) in instances(a, st, store) {
                for id in &ids {
                    let k = (name.clone(), id.clone());
                    if self.models.get(&k).is_none_or(|m| m.needs_retraining(now)) {
                        let points = math_alarm::training_points(a, &name, &key, id, store, now)?;
                        let config = a.anomaly.clone().unwrap_or_default();
                        self.models
                            .insert(k, crate::anomaly::train(&points, &config, now));
                    }
                }
            }
        }
        Ok(())
    }

    /// The models trained so far, by (alarm or instance, metric id).
    pub fn models(&self) -> &BTreeMap<(String, String), Model> {
        &self.models
    }
}

impl AnomalyModels for ModelCache {
    fn model(&self, instance: &str, metric_id: &str) -> Option<&Model> {
        self.models.model(instance, metric_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::validate;

    const BASE: &str = "alarms:\n  - {name: a, namespace: App, metric_name: M, statistic: Sum, period_seconds: 60, evaluation_periods: 1, threshold: 1, comparison_operator: GreaterThanThreshold}\n  - {name: b, namespace: App, metric_name: M, statistic: Sum, period_seconds: 60, evaluation_periods: 1, threshold: 1, comparison_operator: GreaterThanThreshold}\n";

    const PER_HOST: &str = "alarms:\n  - {name: hot, namespace: App, metric_name: Cpu, dimensions: {Group: web, Host: \"*\"}, statistic: Maximum, period_seconds: 60, evaluation_periods: 1, threshold: 50, comparison_operator: GreaterThanThreshold, treat_missing_data: breaching}\n";

    fn push(store: &Store, host: &str, at: Timestamp, v: f64) {
        use thermostat_metrics::{Dimension, Observation, Resolution, Sample, Unit};
        let key = SeriesKey::new(
            "App",
            "Cpu",
            vec![Dimension::new("Group", "web"), Dimension::new("Host", host)],
        );
        let obs = Observation {
            timestamp: at,
            unit: Unit::None,
            resolution: Resolution::Standard,
            sample: Sample::Value(v),
        };
        store.record_batch(&[(key, obs)]);
    }

    // Cluster mode: a node evaluates the instances of the series it owns; composites and the
    // alarms that scale only where it leads; the other states are left as they are.
    #[test]
    fn a_scoped_tick_evaluates_only_its_share() {
        const SHARE: &str = "alarms:\n  - {name: hot, namespace: App, metric_name: Cpu, dimensions: {Group: web, Host: \"*\"}, statistic: Maximum, period_seconds: 60, evaluation_periods: 1, threshold: 50, comparison_operator: GreaterThanThreshold}\n  - {name: scales, namespace: App, metric_name: Cpu, dimensions: {Group: web, Host: a}, statistic: Maximum, period_seconds: 60, evaluation_periods: 1, threshold: 50, comparison_operator: GreaterThanThreshold, alarm_actions: [\"policy:web/out\"]}\ncomposite_alarms:\n  - {name: any, alarm_rule: \"ALARM(hot)\"}\n";
        let set = validate(&[("x.yaml", SHARE)]).unwrap();
        let store = Store::new(2);
        let t0 = Timestamp::from_secs(1_800_000_000);
        push(&store, "a", t0.add_millis(10_000), 90.0);
        push(&store, "b", t0.add_millis(10_000), 90.0);
        let t1 = t0.add_millis(60_000);
        let owns_a = |k: &SeriesKey| k.dimension("Host") == Some("a");
        let follower = Scope::Share {
            owns: &owns_a,
            leads: false,
        };
        let mut st = EngineState::new(&set, Timestamp(0), None);
        tick_scoped(&set, &mut st, &store, &NoModels, &follower, t1).unwrap();
        let names: Vec<&String> = st.metric.keys().collect();
        assert_eq!(
            names,
            ["hot[Host=a]", "scales"],
            "only its own series' instance"
        );
        assert_eq!(st.metric["hot[Host=a]"].state.value, StateValue::Alarm);
        assert_eq!(
            st.metric["scales"].state.value,
            StateValue::InsufficientData,
            "an alarm that scales is the leader's"
        );
        assert_eq!(
            st.composites["any"].alarm.value,
            StateValue::InsufficientData,
            "composites are the leader's"
        );

        let nothing = |_: &SeriesKey| false;
        let leader = Scope::Share {
            owns: &nothing,
            leads: true,
        };
        tick_scoped(&set, &mut st, &store, &NoModels, &leader, t1).unwrap();
        assert_eq!(st.metric["scales"].state.value, StateValue::Alarm);
        assert_eq!(st.composites["any"].alarm.value, StateValue::Alarm);
        assert!(
            !st.metric.contains_key("hot[Host=b]"),
            "no node owns b here: nobody evaluates it"
        );
    }

    // Cluster mode: an alarm whose data another node does not answer now is left as it is
    // for this tick; the tick goes on with the others.
    #[test]
    fn an_alarm_whose_data_cannot_be_read_now_does_not_stop_the_tick() {
        use thermostat_metrics::store::{KeysRequest, RemoteShards, SeriesExport};
        #[derive(Debug)]
        struct Unreachable;
        impl RemoteShards for Unreachable {
            fn is_local(&self, shard: usize) -> bool {
                shard == 0
            }
            fn windows(
                &self,
                _: usize,
                _: &SeriesKey,
                _: Timestamp,
                _: Timestamp,
            ) -> std::result::Result<Option<SeriesExport>, String> {
                Err("n2 did not answer".into())
            }
            fn keys(&self, _: &KeysRequest) -> Vec<SeriesKey> {
                Vec::new()
            }
        }
        // Two alarms on two series, one per shard of a two-shard store; shard 1 is another
        // node's, which does not answer.
        let host_on = |shard: u64| {
            (0..)
                .map(|i| format!("h{i}"))
                .find(|h| {
                    let key = SeriesKey::new(
                        "App",
                        "Cpu",
                        vec![
                            thermostat_metrics::Dimension::new("Group", "web"),
                            thermostat_metrics::Dimension::new("Host", h.as_str()),
                        ],
                    );
                    key.stable_hash() % 2 == shard
                })
                .unwrap()
        };
        let (here, there) = (host_on(0), host_on(1));
        let yaml = format!(
            "alarms:\n  - {{name: here, namespace: App, metric_name: Cpu, dimensions: {{Group: web, Host: {here}}}, statistic: Maximum, period_seconds: 60, evaluation_periods: 1, threshold: 50, comparison_operator: GreaterThanThreshold}}\n  - {{name: there, namespace: App, metric_name: Cpu, dimensions: {{Group: web, Host: {there}}}, statistic: Maximum, period_seconds: 60, evaluation_periods: 1, threshold: 50, comparison_operator: GreaterThanThreshold}}\n"
        );
        let set = validate(&[("x.yaml", yaml.as_str())]).unwrap();
        let store = Store::partitioned(2);
        store.set_remote(std::sync::Arc::new(Unreachable));
        let t0 = Timestamp::from_secs(1_800_000_000);
        push(&store, &here, t0.add_millis(10_000), 90.0);
        let mut st = EngineState::new(&set, Timestamp(0), None);
        let out = tick(&set, &mut st, &store, t0.add_millis(60_000)).unwrap();
        assert_eq!(out.unavailable, ["there"]);
        assert_eq!(st.metric["here"].state.value, StateValue::Alarm);
        assert_eq!(
            st.metric["there"].state.value,
            StateValue::InsufficientData,
            "left as it was"
        );
    }

    // Extension (docs/alarms.md §5): a "*" dimension value evaluates one instance per
    // matching series, each with its own state; new series get an instance when they
    // appear; an instance whose series stops reporting follows treat_missing_data.
    #[test]
    fn per_series_alarms_have_one_instance_per_series() {
        let set = validate(&[("x.yaml", PER_HOST)]).unwrap();
        let store = Store::new(2);
        let mut st = EngineState::new(&set, Timestamp(0), None);
        assert!(
            st.metric.is_empty(),
            "no instance before any series matches"
        );
        // 1_800_000_000 s is a multiple of 60.
        let t0 = Timestamp::from_secs(1_800_000_000);
        push(&store, "a", t0.add_millis(10_000), 10.0);
        push(&store, "b", t0.add_millis(10_000), 90.0);
        // A series of another group does not match.
        let other = SeriesKey::new(
            "App",
            "Cpu",
            vec![
                thermostat_metrics::Dimension::new("Group", "db"),
                thermostat_metrics::Dimension::new("Host", "c"),
            ],
        );
        let obs = thermostat_metrics::Observation {
            timestamp: t0.add_millis(10_000),
            unit: thermostat_metrics::Unit::None,
            resolution: thermostat_metrics::Resolution::Standard,
            sample: thermostat_metrics::Sample::Value(99.0),
        };
        store.record_batch(&[(other, obs)]);

        let out = tick(&set, &mut st, &store, t0.add_millis(60_000)).unwrap();
        let names: Vec<&String> = st.metric.keys().collect();
        assert_eq!(names, ["hot[Host=a]", "hot[Host=b]"]);
        assert_eq!(st.metric["hot[Host=a]"].state.value, StateValue::Ok);
        assert_eq!(st.metric["hot[Host=b]"].state.value, StateValue::Alarm);
        let created = out
            .history
            .iter()
            .filter(|h| h.summary.contains("created"))
            .count();
        assert_eq!(created, 2, "each instance records its creation");

        // Host c of the web group appears later and gets its own instance.
        push(&store, "b", t0.add_millis(70_000), 10.0);
        push(&store, "c", t0.add_millis(70_000), 20.0);
        tick(&set, &mut st, &store, t0.add_millis(120_000)).unwrap();
        assert_eq!(st.metric["hot[Host=c]"].state.value, StateValue::Ok);
        // Host a stopped reporting: while its last datapoint is inside the evaluation range
        // (3 periods for N = 1, reference §3.5.2) it is still evaluated on it...
        assert_eq!(st.metric["hot[Host=a]"].state.value, StateValue::Ok);
        // ...and once the whole range is empty, treat_missing_data: breaching applies.
        push(&store, "b", t0.add_millis(190_000), 10.0);
        push(&store, "c", t0.add_millis(190_000), 20.0);
        tick(&set, &mut st, &store, t0.add_millis(240_000)).unwrap();
        assert_eq!(st.metric["hot[Host=a]"].state.value, StateValue::Alarm);
        assert!(
            st.metric["hot[Host=a]"]
                .state
                .reason
                .contains("no datapoints were received"),
            "{}",
            st.metric["hot[Host=a]"].state.reason
        );
        assert_eq!(st.metric["hot[Host=b]"].state.value, StateValue::Ok);
        assert_eq!(st.metric["hot[Host=c]"].state.value, StateValue::Ok);
        // The base name, as a composite sees it, is ALARM while any instance is.
        assert_eq!(st.child("hot").map(|c| c.0), Some(StateValue::Alarm));
    }

    #[test]
    fn unchanged_alarms_keep_their_state() {
        let old = validate(&[("x.yaml", BASE)]).unwrap();
        let mut st = EngineState::new(&old, Timestamp(0), None);
        for i in st.metric.values_mut() {
            i.state = AlarmState::with_value(StateValue::Alarm, "kept", Timestamp(5));
        }
        let changed = BASE.replace(
            "threshold: 1, comparison_operator: GreaterThanThreshold}\n  - {name: b",
            "threshold: 2, comparison_operator: GreaterThanThreshold}\n  - {name: b",
        );
        let changed = format!(
            "{changed}  - {{name: c, namespace: App, metric_name: M, statistic: Sum, period_seconds: 60, evaluation_periods: 1, threshold: 1, comparison_operator: GreaterThanThreshold}}\n"
        );
        // Moving a definition to another file does not count as a change.
        let new = validate(&[("y.yaml", changed.as_str())]).unwrap();
        let (st2, history) = carry_over(&old, &st, &new, Timestamp(100));
        assert_eq!(st2.metric["b"], st.metric["b"]);
        assert_eq!(st2.metric["a"].state.value, StateValue::Alarm);
        assert_eq!(st2.metric["c"].state, AlarmState::initial(Timestamp(100)));
        let summaries: Vec<&str> = history.iter().map(|h| h.summary.as_str()).collect();
        assert_eq!(
            summaries,
            vec!["Alarm \"a\" updated", "Alarm \"c\" created"]
        );
        let (_, history) = carry_over(&new, &st2, &old, Timestamp(200));
        assert!(history.iter().any(|h| h.summary == "Alarm \"c\" deleted"));
    }
}
