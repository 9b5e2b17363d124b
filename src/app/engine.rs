//! The alarm engine's shell: runs the pure `thermostat_alarms::tick` on every 10-second
//! boundary of the clock, persists states and history, hands actions to the action port,
//! reloads configuration atomically, and serves the HTTP alarm API.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use thermostat_alarms::engine::{InstanceState, TickOutput};
use thermostat_alarms::history::{AlarmType, ConfigChange};
use thermostat_alarms::{EngineState, HistoryItem, StateValue, Transition};
use thermostat_dashboards::alarms::{
    AlarmApi, AlarmApiError, AlarmView, HistoryPage, HistoryQuery, ReloadReport,
};
use thermostat_metrics::{Clock, Store, Timestamp};

use super::config::{self, Config};
use super::state_db::{AlarmWrite, HistoryPrune, StateDb};

/// Evaluation ticks fall on multiples of this many milliseconds.
pub const TICK_MS: i64 = 10_000;
/// History is pruned after the ticks that fall on multiples of this many milliseconds.
pub const PRUNE_EVERY_MS: i64 = 60_000;
/// `SetAlarmState`'s `StateReason` at most, in characters (CloudWatch's limit).
pub const MAX_STATE_REASON_CHARS: usize = 1023;
/// `SetAlarmState`'s `StateReasonData` at most, in characters of JSON (CloudWatch's limit).
pub const MAX_STATE_REASON_DATA_CHARS: usize = 4000;
/// History items deleted in one pruning pass (one write transaction) at most.
const PRUNE_MAX_DELETES_PER_PASS: usize = 10_000;
/// Alarms visited in one pruning pass at most.
const PRUNE_MAX_ALARMS_PER_PASS: usize = 5_000;
/// Pruning passes after one tick at most; the next prune resumes where they stopped.
const PRUNE_MAX_PASSES: usize = 20;
/// History rows one page request reads at most (whatever its filters skip).
const HISTORY_MAX_SCAN_ROWS: usize = 5_000;
const HISTORY_TOKEN_PREFIX: &str = "h1.";

/// How much alarm history is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryRetention {
    /// Items older than this many days are deleted.
    pub max_age_days: u64,
    /// Items per alarm (or instance) at most; the oldest beyond it are deleted.
    pub max_items_per_alarm: usize,
}

impl Default for HistoryRetention {
    fn default() -> Self {
        HistoryRetention {
            max_age_days: 14,
            max_items_per_alarm: 1_000,
        }
    }
}

/// What one pruning run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// History items deleted.
    pub deleted: usize,
    /// Passes (write transactions) run.
    pub passes: usize,
    /// Whether every alarm was visited (otherwise the next run resumes).
    pub complete: bool,
}

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
    /// Shared with a reload in progress, which diffs it against the new set without the lock.
    config: Arc<Config>,
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
    retention: HistoryRetention,
    /// Where the next pruning run resumes (it stopped at a bound), and that one runs at a time.
    prune_from: Mutex<Option<String>>,
    /// Held by a reload from start to end, so that reloads run one at a time; never taken by
    /// ticks or the API, which only wait for `inner` during a reload's short swap.
    reloading: Mutex<()>,
    /// Accept a reload that yields no alarms (`allow_empty_config`).
    allow_empty_config: bool,
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
            inner: Mutex::new(Inner {
                config: Arc::new(config),
                state,
            }),
            retention: HistoryRetention::default(),
            prune_from: Mutex::new(None),
            reloading: Mutex::new(()),
            allow_empty_config: false,
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

    /// Keeps history as `retention` says (the default is CloudWatch's two weeks and 1,000
    /// items per alarm).
    #[must_use]
    pub fn with_history_retention(mut self, retention: HistoryRetention) -> Self {
        self.retention = retention;
        self
    }

    /// Deletes history beyond the retention at `now`, off the engine's lock, in passes of
    /// one bounded write transaction each (at most [`PRUNE_MAX_PASSES`] of them; a run that
    /// stops there is resumed by the next). [`AlarmEngine::tick`] calls it once a minute.
    ///
    /// # Errors
    /// A failed read or write; what earlier passes deleted stays deleted.
    pub fn prune_history(&self, now: Timestamp) -> anyhow::Result<PruneReport> {
        let mut from = self.prune_from.lock().unwrap_or_else(|p| p.into_inner());
        let age_ms = i64::try_from(self.retention.max_age_days)
            .ok()
            .and_then(|d| d.checked_mul(86_400_000))
            .unwrap_or(i64::MAX);
        let policy = HistoryPrune {
            older_than_ms: now.as_millis().saturating_sub(age_ms),
            max_items_per_alarm: self.retention.max_items_per_alarm,
            max_deletes: PRUNE_MAX_DELETES_PER_PASS,
            max_alarms: PRUNE_MAX_ALARMS_PER_PASS,
        };
        let mut report = PruneReport::default();
        while report.passes < PRUNE_MAX_PASSES {
            let pass = self.db.prune_history(from.as_deref(), &policy)?;
            report.passes += 1;
            report.deleted += pass.deleted;
            *from = pass.resume;
            if from.is_none() {
                report.complete = true;
                break;
            }
        }
        if report.deleted > 0 {
            tracing::debug!(
                deleted = report.deleted,
                passes = report.passes,
                complete = report.complete,
                "Pruned the alarm history."
            );
        }
        Ok(report)
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

    /// Evaluates every alarm due at tick `t`, persists what changed, and dispatches actions;
    /// on ticks that fall on a whole minute, then prunes the history
    /// ([`AlarmEngine::prune_history`]) without the engine's lock.
    ///
    /// # Errors
    /// A refused query or a failed state write (the in-memory state has moved on; the next
    /// tick's write carries the changed states again).
    pub fn tick(&self, t: Timestamp) -> anyhow::Result<usize> {
        let evaluations = self.evaluate(t)?;
        if t.as_millis().rem_euclid(PRUNE_EVERY_MS) == 0
            && let Err(e) = self.prune_history(t)
        {
            tracing::warn!(error = %format!("{e:#}"), "Could not prune the alarm history; the next minute tries again.");
        }
        Ok(evaluations)
    }

    fn evaluate(&self, t: Timestamp) -> anyhow::Result<usize> {
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

    /// Accepts reloads that yield no alarms (the `allow_empty_config` setting); without it
    /// such a reload is refused (see [`config::refuse_empty`]).
    #[must_use]
    pub fn allowing_empty_config(mut self, allow: bool) -> Self {
        self.allow_empty_config = allow;
        self
    }

    /// Re-reads the configuration; on success swaps it in atomically, carrying states over.
    ///
    /// Everything costly happens without the engine's lock, so ticks and `SetAlarmState` go
    /// on meanwhile: reading the files, and, unless every file is unchanged (same paths, same
    /// content hashes: then there is nothing to do), validating the new set and comparing it
    /// with the running one definition by definition. Only the swap takes the lock: the
    /// states move over (unchanged alarms' untouched, in time linear in their number), and
    /// the states and history of the alarms that changed are written.
    ///
    /// # Errors
    /// Every configuration error, or a configuration that would delete every alarm; the
    /// running configuration stays.
    pub fn reload_from_disk(&self) -> Result<ReloadReport, config::LoadError> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        // Only a reload replaces the configuration, so this stays the running one until the
        // swap below.
        let old = Arc::clone(&self.lock().config);
        tracing::info!(
            paths = ?self.paths,
            "Reading the configuration to reload it."
        );
        let (texts, fingerprint) = config::read(&self.paths)?;
        if fingerprint == old.source && !self.paths.is_empty() {
            let report = ReloadReport {
                alarms: old.alarms.alarms.len(),
                composite_alarms: old.alarms.composites.len(),
                changed: Vec::new(),
                removed: Vec::new(),
            };
            tracing::info!(
                alarms = report.alarms,
                composite_alarms = report.composite_alarms,
                changed = 0,
                removed = 0,
                "Reloaded the configuration: no file changed."
            );
            return Ok(report);
        }
        let mut new_config = config::validate(&texts)?;
        new_config.source = fingerprint;
        config::refuse_empty(
            &new_config,
            Some(&old),
            &self.paths,
            self.allow_empty_config,
        )?;
        let diff = thermostat_alarms::engine::diff(&old.alarms, &new_config.alarms);
        let new_config = Arc::new(new_config);
        drop(old);
        let now = self.clock.now();
        let mut inner = self.lock();
        let old_state = std::mem::take(&mut inner.state);
        let old_names: Vec<String> = old_state
            .metric
            .keys()
            .chain(old_state.composites.keys())
            .cloned()
            .collect();
        let (state, history) =
            thermostat_alarms::engine::carry_over_diff(&diff, &new_config.alarms, old_state, now);
        let removed: Vec<String> = old_names
            .into_iter()
            .filter(|n| !state.metric.contains_key(n) && !state.composites.contains_key(n))
            .collect();
        let changed: Vec<String> = history.iter().map(|h| h.alarm_name.clone()).collect();
        inner.config = new_config;
        inner.state = state;
        // Unchanged alarms' states are already stored; the changed and new ones are written
        // (a name without a state, a deleted alarm, only gets its history item).
        if let Err(e) = self.persist(&inner, &changed, &history).and_then(|_| {
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
        drop(inner);
        tracing::info!(
            alarms = report.alarms,
            composite_alarms = report.composite_alarms,
            changed = report.changed.len(),
            removed = report.removed.len(),
            "Reloaded the configuration."
        );
        Ok(report)
    }

    /// Whether the API knows `name`: an alarm, instance or composite as [`AlarmApi::list`]
    /// lists it, without building the list.
    fn knows(&self, name: &str) -> bool {
        let inner = self.lock();
        let set = &inner.config.alarms;
        inner
            .state
            .metric
            .get(name)
            .is_some_and(|i| set.alarm(&i.alarm).is_some())
            || (inner.state.composites.contains_key(name) && set.composite(name).is_some())
            || set.alarm(name).is_some_and(|a| {
                a.is_per_series() && !inner.state.metric.values().any(|i| i.alarm == a.name)
            })
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

/// The resume point in a history token.
fn parse_token(token: &str) -> Result<u64, AlarmApiError> {
    token
        .strip_prefix(HISTORY_TOKEN_PREFIX)
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| AlarmApiError::Invalid {
            field: "next_token".into(),
            message: "is not a token this server issued (pass a previous answer's next_token)"
                .into(),
        })
}

/// `SetAlarmState`'s `StateReasonData`: JSON of at most [`MAX_STATE_REASON_DATA_CHARS`]
/// characters. CloudWatch takes it as a string holding JSON; the HTTP API also takes the JSON
/// value itself. A string must hold JSON (CloudWatch's `InvalidFormat`), and the value is
/// stored parsed.
fn check_reason_data(data: Value) -> Result<Value, AlarmApiError> {
    let invalid = |message: String| AlarmApiError::Invalid {
        field: "state_reason_data".into(),
        message,
    };
    let (chars, value) = match data {
        Value::String(text) => {
            let chars = text.chars().count();
            if chars > MAX_STATE_REASON_DATA_CHARS {
                (chars, Value::Null)
            } else {
                let value = serde_json::from_str(&text).map_err(|e| {
                    invalid(format!(
                        "must be JSON, as CloudWatch requires (line {}, column {}: {})",
                        e.line(),
                        e.column(),
                        match e.classify() {
                            serde_json::error::Category::Eof => "the text ends too early",
                            _ => "not JSON there",
                        }
                    ))
                })?;
                (chars, value)
            }
        }
        value => (value.to_string().chars().count(), value),
    };
    if chars > MAX_STATE_REASON_DATA_CHARS {
        return Err(invalid(format!(
            "must be at most {MAX_STATE_REASON_DATA_CHARS} characters of JSON (got {chars})"
        )));
    }
    Ok(value)
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
        let query = HistoryQuery {
            max_records: limit,
            ..HistoryQuery::default()
        };
        Ok(self.history_page(name, &query)?.items)
    }

    fn history_page(&self, name: &str, q: &HistoryQuery) -> Result<HistoryPage, AlarmApiError> {
        #[derive(serde::Deserialize)]
        struct Head {
            timestamp: i64,
            item_type: String,
        }
        if !self.knows(name) {
            return Err(AlarmApiError::NotFound(name.to_owned()));
        }
        let below = q.next_token.as_deref().map(parse_token).transpose()?;
        let max = q.max_records.max(1);
        let mut items: Vec<Value> = Vec::new();
        let mut reached_start = false;
        let resume = self
            .db
            .scan_history(name, below, HISTORY_MAX_SCAN_ROWS, |_, bytes| {
                let head: Head = serde_json::from_slice(bytes)?;
                if q.start.is_some_and(|s| head.timestamp < s.as_millis()) {
                    reached_start = true;
                    return Ok(ControlFlow::Break(()));
                }
                let wanted = q.end.is_none_or(|e| head.timestamp < e.as_millis())
                    && (q.item_types.is_empty() || q.item_types.contains(&head.item_type));
                if !wanted {
                    return Ok(ControlFlow::Continue(()));
                }
                if items.len() >= max {
                    return Ok(ControlFlow::Break(()));
                }
                let mut item: Value = serde_json::from_slice(bytes)?;
                item["timestamp"] = Value::String(Timestamp(head.timestamp).to_rfc3339());
                if q.without_reason_data {
                    thermostat_dashboards::alarms::strip_reason_data(&mut item);
                }
                items.push(item);
                Ok(ControlFlow::Continue(()))
            })
            .map_err(|e| AlarmApiError::Internal(format!("{e:#}")))?;
        let next_token = resume
            .filter(|_| !reached_start)
            .map(|r| format!("{HISTORY_TOKEN_PREFIX}{r}"));
        Ok(HistoryPage { items, next_token })
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
        let reason_chars = reason.chars().count();
        if reason.is_empty() || reason_chars > MAX_STATE_REASON_CHARS {
            return Err(AlarmApiError::Invalid {
                field: "state_reason".into(),
                message: format!(
                    "must be 1 to {MAX_STATE_REASON_CHARS} characters (got {reason_chars})"
                ),
            });
        }
        let reason_data = reason_data.map(check_reason_data).transpose()?;
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
