//! The alarm engine's shell: runs the pure `thermostat_alarms::tick` on every 10-second
//! boundary of the clock, persists states and history, hands actions to the action port,
//! reloads configuration atomically, and serves the HTTP alarm API.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use thermostat_alarms::engine::{InstanceState, TickOutput};
use thermostat_alarms::history::{AlarmType, ConfigChange};
use thermostat_alarms::{EngineState, HistoryItem, StateValue, Transition};
use thermostat_dashboards::alarms::{AlarmApi, AlarmApiError, AlarmView, ReloadReport};
use thermostat_metrics::{Clock, Store, Timestamp};

use super::config::{self, Config};
use super::state_db::{AlarmWrite, StateDb};

/// Evaluation ticks fall on multiples of this many milliseconds.
pub const TICK_MS: i64 = 10_000;

/// Where actions go once alarms change state: notifications and scaling.
pub trait ActionSink: Send + Sync + std::fmt::Debug {
    /// Called after every tick (and `SetAlarmState`) with what it produced, under the engine's
    /// lock: must queue work, not do it.
    fn on_tick(
        &self,
        config: &Config,
        state: &EngineState,
        out: &TickOutput,
        store: &Store,
        now: Timestamp,
    );
    /// Called after a reload was swapped in.
    fn on_reload(&self, config: &Config);
    /// Called once at the end of every evaluation tick (not after `SetAlarmState`): records
    /// whatever the sink measures at `now` into `store` (the groups' capacity metrics).
    fn record_metrics(&self, _store: &Store, _now: Timestamp) {}
}

/// An action sink that only logs (tests and tools without back-ends).
#[derive(Debug, Default)]
pub struct LogActions;

impl ActionSink for LogActions {
    fn on_tick(&self, _: &Config, _: &EngineState, out: &TickOutput, _: &Store, _: Timestamp) {
        for (alarm, action) in &out.actions {
            tracing::info!(alarm, action = %action.action.as_config_str(), state = %action.state, repeat = action.repeat, "Alarm action due.");
        }
    }

    fn on_reload(&self, _: &Config) {}
}

impl ActionSink for super::actions::Actions {
    fn on_tick(
        &self,
        config: &Config,
        state: &EngineState,
        out: &TickOutput,
        store: &Store,
        now: Timestamp,
    ) {
        super::actions::Actions::on_tick(self, config, state, out, store, now);
    }

    fn on_reload(&self, config: &Config) {
        super::actions::Actions::on_reload(self, config);
    }

    fn record_metrics(&self, store: &Store, now: Timestamp) {
        super::actions::Actions::record_group_metrics(self, store, now);
    }
}

#[derive(Debug)]
struct Inner {
    config: Config,
    state: EngineState,
}

/// The running alarm engine.
#[derive(Debug)]
pub struct AlarmEngine {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    db: Arc<StateDb>,
    telemetry: Arc<thermostat_metrics::Telemetry>,
    paths: Vec<PathBuf>,
    actions: Arc<dyn ActionSink>,
    inner: Mutex<Inner>,
}

const METRIC_PREFIX: &str = "m:";
const COMPOSITE_PREFIX: &str = "c:";

/// A row of the state table, as written (`m:` rows hold instances, `c:` rows composites).
#[derive(serde::Serialize)]
#[serde(untagged)]
enum StoredState {
    Metric(InstanceState),
    Composite(thermostat_alarms::CompositeState),
}

impl AlarmEngine {
    /// Loads the configuration and the persisted states.
    ///
    /// # Errors
    /// An invalid configuration (every error), or an unreadable state database.
    pub fn start(
        paths: Vec<PathBuf>,
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        config: Config,
        db: Arc<StateDb>,
        actions: Arc<dyn ActionSink>,
        telemetry: Arc<thermostat_metrics::Telemetry>,
    ) -> anyhow::Result<Self> {
        let set = &config.alarms;
        let now = clock.now();
        let mut state = EngineState::new(set, now, None);
        let mut restored = BTreeSet::new();
        // The table also holds the scaling groups' states (`group:…`, the actions' own): the
        // engine reads only its own rows.
        for (n, i) in db.load_states_under::<InstanceState>(METRIC_PREFIX)? {
            if let Some(a) = set.alarm(&i.alarm) {
                let keeps_series = !a.is_per_series() || a.instance_name(&i.key) == n;
                if keeps_series {
                    let key = if a.is_per_series() {
                        i.key.clone()
                    } else {
                        thermostat_alarms::evaluator::series_key(a)
                    };
                    restored.insert(i_alarm_name(&n));
                    state.metric.insert(n, InstanceState { key, ..i });
                }
            }
        }
        for (n, c) in db.load_states_under::<thermostat_alarms::CompositeState>(COMPOSITE_PREFIX)? {
            if set.composite(&n).is_some() {
                restored.insert(n.clone());
                state.composites.insert(n, c);
            }
        }
        let created: Vec<HistoryItem> = set
            .alarms
            .iter()
            .filter(|a| !a.is_per_series() && !restored.contains(&a.name))
            .map(|a| {
                HistoryItem::configuration_update(
                    &a.name,
                    AlarmType::MetricAlarm,
                    ConfigChange::Created,
                    now,
                )
            })
            .chain(
                set.composites
                    .iter()
                    .filter(|c| !restored.contains(&c.name))
                    .map(|c| {
                        HistoryItem::configuration_update(
                            &c.name,
                            AlarmType::CompositeAlarm,
                            ConfigChange::Created,
                            now,
                        )
                    }),
            )
            .collect();
        let engine = AlarmEngine {
            store,
            clock,
            db,
            telemetry,
            paths,
            actions,
            inner: Mutex::new(Inner { config, state }),
        };
        {
            let inner = engine.lock();
            let names: Vec<String> = inner
                .state
                .metric
                .keys()
                .chain(inner.state.composites.keys())
                .cloned()
                .collect();
            engine.persist(&inner, &names, &created)?;
        }
        {
            let inner = engine.lock();
            tracing::info!(
                alarms = inner.config.alarms.alarms.len(),
                composite_alarms = inner.config.alarms.composites.len(),
                restored = restored.len(),
                "The alarm engine is ready."
            );
        }
        Ok(engine)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(
        &self,
        inner: &Inner,
        names: &[String],
        history: &[HistoryItem],
    ) -> anyhow::Result<()> {
        let mut stored: Vec<(String, StoredState)> = Vec::new();
        for n in names {
            if let Some(i) = inner.state.metric.get(n) {
                stored.push((
                    format!("{METRIC_PREFIX}{n}"),
                    StoredState::Metric(i.clone()),
                ));
            } else if let Some(c) = inner.state.composites.get(n) {
                stored.push((
                    format!("{COMPOSITE_PREFIX}{n}"),
                    StoredState::Composite(c.clone()),
                ));
            }
        }
        let mut writes: Vec<AlarmWrite<'_, StoredState, HistoryItem>> = stored
            .iter()
            .map(|(k, s)| AlarmWrite {
                name: k,
                state: Some(s),
                history: &[],
            })
            .collect();
        let mut by_alarm: std::collections::BTreeMap<&str, Vec<HistoryItem>> = Default::default();
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
        self.db.commit(&writes)
    }

    /// Evaluates every alarm due at tick `t`, persists what changed, and dispatches actions.
    ///
    /// # Errors
    /// A refused query or a failed state write (the in-memory state has moved on; the next
    /// tick's write carries the changed states again).
    pub fn tick(&self, t: Timestamp) -> anyhow::Result<usize> {
        let started = std::time::Instant::now();
        let mut inner = self.lock();
        let Inner { config, state } = &mut *inner;
        let out = thermostat_alarms::tick(&config.alarms, state, &self.store, t)?;
        self.telemetry
            .alarm_tick(out.evaluations, started.elapsed().as_secs_f64());
        let mut changed: Vec<String> = out.transitions.iter().map(|(n, _)| n.clone()).collect();
        changed.extend(
            out.history
                .iter()
                .filter(|h| {
                    matches!(
                        h.item_type,
                        thermostat_alarms::history::HistoryItemType::ConfigurationUpdate
                    )
                })
                .map(|h| h.alarm_name.clone()),
        );
        changed.sort();
        changed.dedup();
        self.persist(&inner, &changed, &out.history)?;
        for (n, tr) in &out.transitions {
            log_transition(n, tr);
            self.telemetry.alarm_transition(tr.new_state.as_str());
        }
        self.actions
            .on_tick(&inner.config, &inner.state, &out, &self.store, t);
        // After the tick's scaling, so that the group metrics show its outcome.
        self.actions.record_metrics(&self.store, t);
        Ok(out.evaluations)
    }

    /// Writes every state (on shutdown).
    ///
    /// # Errors
    /// A failed write.
    pub fn persist_all(&self) -> anyhow::Result<()> {
        let inner = self.lock();
        let names: Vec<String> = inner
            .state
            .metric
            .keys()
            .chain(inner.state.composites.keys())
            .cloned()
            .collect();
        self.persist(&inner, &names, &[])
    }

    /// Runs the tick loop until `stop` is cancelled: one tick at every multiple of
    /// [`TICK_MS`] of the clock, in a blocking thread.
    pub async fn run(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let mut last: Option<Timestamp> = None;
        loop {
            let now = self.clock.now();
            let mut next = Timestamp(now.as_millis().div_euclid(TICK_MS) * TICK_MS + TICK_MS);
            if let Some(l) = last
                && next <= l
            {
                next = l.add_millis(TICK_MS);
            }
            let wait = u64::try_from(next.as_millis() - now.as_millis()).unwrap_or(0);
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
            }
            if let Some(l) = last
                && next.as_millis() - l.as_millis() > TICK_MS
            {
                tracing::warn!(missed_from = %l.add_millis(TICK_MS), until = %next, "Alarm evaluation fell behind and skipped ticks.");
            }
            last = Some(next);
            let engine = Arc::clone(&self);
            match tokio::task::spawn_blocking(move || engine.tick(next)).await {
                Ok(Ok(n)) => tracing::trace!(tick = %next, evaluations = n, "Evaluated alarms."),
                Ok(Err(e)) => {
                    tracing::error!(tick = %next, error = %format!("{e:#}"), "An alarm evaluation tick failed.")
                }
                Err(e) => {
                    tracing::error!(tick = %next, error = %e, "An alarm evaluation tick panicked.")
                }
            }
        }
    }

    /// Re-reads the configuration; on success swaps it in atomically, carrying states over.
    ///
    /// # Errors
    /// Every configuration error; the running configuration stays.
    pub fn reload_from_disk(&self) -> Result<ReloadReport, config::LoadError> {
        let new_config = config::load(&self.paths)?;
        let new = new_config.alarms.clone();
        let now = self.clock.now();
        let mut inner = self.lock();
        let (state, history) =
            thermostat_alarms::carry_over(&inner.config.alarms, &inner.state, &new, now);
        let old_names: BTreeSet<String> = inner
            .state
            .metric
            .keys()
            .chain(inner.state.composites.keys())
            .cloned()
            .collect();
        let new_names: BTreeSet<String> = state
            .metric
            .keys()
            .chain(state.composites.keys())
            .cloned()
            .collect();
        let removed: Vec<String> = old_names.difference(&new_names).cloned().collect();
        let changed: Vec<String> = history.iter().map(|h| h.alarm_name.clone()).collect();
        inner.config = new_config;
        inner.state = state;
        let all: Vec<String> = new_names.iter().cloned().collect();
        if let Err(e) = self.persist(&inner, &all, &history).and_then(|_| {
            let keys: Vec<String> = removed
                .iter()
                .flat_map(|n| {
                    [
                        format!("{METRIC_PREFIX}{n}"),
                        format!("{COMPOSITE_PREFIX}{n}"),
                    ]
                })
                .collect();
            self.db.forget_states(&keys)
        }) {
            tracing::error!(error = %format!("{e:#}"), "Could not persist the reloaded alarm states.");
        }
        self.actions.on_reload(&inner.config);
        let report = ReloadReport {
            alarms: inner.config.alarms.alarms.len(),
            composite_alarms: inner.config.alarms.composites.len(),
            changed,
            removed,
        };
        tracing::info!(
            alarms = report.alarms,
            composite_alarms = report.composite_alarms,
            changed = report.changed.len(),
            removed = report.removed.len(),
            "Reloaded the configuration."
        );
        Ok(report)
    }

    /// The current state value of an alarm or instance (for tests and the demo).
    pub fn state_of(&self, name: &str) -> Option<StateValue> {
        let inner = self.lock();
        inner
            .state
            .metric
            .get(name)
            .map(|i| i.state.value)
            .or_else(|| inner.state.composites.get(name).map(|c| c.alarm.value))
    }
}

fn i_alarm_name(instance: &str) -> String {
    instance.split('[').next().unwrap_or(instance).to_owned()
}

fn log_transition(name: &str, t: &Transition) {
    tracing::info!(alarm = name, old = %t.old_state, new = %t.new_state, reason = %t.reason, "Alarm changed state.");
}

impl AlarmApi for AlarmEngine {
    fn list(&self) -> Vec<AlarmView> {
        let inner = self.lock();
        let mut out = Vec::new();
        for (name, i) in &inner.state.metric {
            let Some(a) = inner.config.alarms.alarm(&i.alarm) else {
                continue;
            };
            out.push(AlarmView {
                name: name.clone(),
                kind: "metric",
                state: i.state.value.to_string(),
                reason: i.state.reason.clone(),
                reason_data: i
                    .state
                    .reason_data
                    .as_ref()
                    .and_then(|d| serde_json::to_value(d).ok()),
                state_updated: i.state.updated.to_rfc3339(),
                configuration: serde_json::to_value(a).unwrap_or(Value::Null),
            });
        }
        for a in inner
            .config
            .alarms
            .alarms
            .iter()
            .filter(|a| a.is_per_series())
        {
            if !inner.state.metric.values().any(|i| i.alarm == a.name) {
                out.push(AlarmView {
                    name: a.name.clone(),
                    kind: "metric",
                    state: StateValue::InsufficientData.to_string(),
                    reason: "No series matches this per-series alarm yet.".into(),
                    reason_data: None,
                    state_updated: String::new(),
                    configuration: serde_json::to_value(a).unwrap_or(Value::Null),
                });
            }
        }
        for c in &inner.config.alarms.composites {
            let Some(s) = inner.state.composites.get(&c.name) else {
                continue;
            };
            out.push(AlarmView {
                name: c.name.clone(),
                kind: "composite",
                state: s.alarm.value.to_string(),
                reason: s.alarm.reason.clone(),
                reason_data: s
                    .alarm
                    .reason_data
                    .as_ref()
                    .and_then(|d| serde_json::to_value(d).ok()),
                state_updated: s.alarm.updated.to_rfc3339(),
                configuration: serde_json::to_value(c).unwrap_or(Value::Null),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    fn history(&self, name: &str, limit: usize) -> Result<Vec<Value>, AlarmApiError> {
        if !self.list().iter().any(|v| v.name == name) {
            return Err(AlarmApiError::NotFound(name.to_owned()));
        }
        let mut items = self
            .db
            .history::<Value>(name, limit)
            .map_err(|e| AlarmApiError::Internal(format!("{e:#}")))?;
        for item in &mut items {
            if let Some(ms) = item.get("timestamp").and_then(Value::as_i64) {
                item["timestamp"] = Value::String(Timestamp(ms).to_rfc3339());
            }
        }
        Ok(items)
    }

    fn set_state(
        &self,
        name: &str,
        value: &str,
        reason: &str,
        reason_data: Option<Value>,
    ) -> Result<(), AlarmApiError> {
        let value: StateValue = value.parse().map_err(|m| AlarmApiError::Invalid {
            field: "state_value".into(),
            message: m,
        })?;
        if reason.is_empty() || reason.len() > 1023 {
            return Err(AlarmApiError::Invalid {
                field: "state_reason".into(),
                message: format!("must be 1 to 1023 characters (got {})", reason.len()),
            });
        }
        let now = self.clock.now();
        let mut inner = self.lock();
        let Inner { config, state } = &mut *inner;
        let set = &config.alarms;
        let (evaluation, kind, old) = if let Some(i) = state.metric.get_mut(name) {
            let a = set
                .alarm(&i.alarm)
                .ok_or_else(|| AlarmApiError::NotFound(name.to_owned()))?;
            let e =
                thermostat_alarms::set_state(&a.actions, &i.state, value, reason, reason_data, now);
            let old = i.state.clone();
            i.state = e.state.clone();
            (e, AlarmType::MetricAlarm, old)
        } else if let Some(c) = state.composites.get_mut(name) {
            let def = set
                .composite(name)
                .ok_or_else(|| AlarmApiError::NotFound(name.to_owned()))?;
            let e = thermostat_alarms::set_state(
                &def.actions,
                &c.alarm,
                value,
                reason,
                reason_data,
                now,
            );
            let old = c.alarm.clone();
            c.alarm = e.state.clone();
            (e, AlarmType::CompositeAlarm, old)
        } else {
            return Err(AlarmApiError::NotFound(name.to_owned()));
        };
        let history: Vec<HistoryItem> = evaluation
            .transitions
            .iter()
            .map(|t| HistoryItem::state_update(name, kind, &old, t))
            .collect();
        self.persist(&inner, &[name.to_owned()], &history)
            .map_err(|e| AlarmApiError::Internal(format!("{e:#}")))?;
        for t in &evaluation.transitions {
            log_transition(name, t);
            self.telemetry.alarm_transition(t.new_state.as_str());
        }
        let out = TickOutput {
            evaluations: 0,
            transitions: evaluation
                .transitions
                .iter()
                .map(|t| (name.to_owned(), t.clone()))
                .collect(),
            actions: evaluation
                .actions
                .iter()
                .map(|a| (name.to_owned(), a.clone()))
                .collect(),
            history,
        };
        self.actions
            .on_tick(&inner.config, &inner.state, &out, &self.store, now);
        Ok(())
    }

    fn reload(&self) -> Result<ReloadReport, AlarmApiError> {
        self.reload_from_disk().map_err(|e| {
            tracing::warn!(errors = %e, "Rejected a configuration reload; the running configuration stays.");
            AlarmApiError::Config(e.lines())
        })
    }
}
