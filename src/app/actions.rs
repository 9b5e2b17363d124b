//! Wiring of what alarms do: their notifications go to the durable dispatcher
//! (`thermostat-notify`), their scaling actions to the scaling runtime
//! (`thermostat-scaler-runtime`), whose fleets (`thermostat-fleet`), state
//! (`thermostat-statedb`) and capacity metrics (the ingest log) are connected here.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;
use thermostat_alarms::{ActionDue, AlarmSet, HistoryItem};
use thermostat_alarms_runtime::{ActionSink, AlarmStore};
use thermostat_dashboards::actions::NotificationApi;
use thermostat_ingest::Ingest;
use thermostat_metrics::{Clock, Observation, SeriesKey, Timestamp};
use thermostat_notify::{Dispatcher, NotificationTelemetry, Notifiers};
use thermostat_scaler_runtime::{CapacityMetricsSink, GroupStore, Ports, ScalingTelemetry};
pub use thermostat_scaler_runtime::{GroupCapacity, ScalingRuntime};

use crate::config::Config;

/// How long a tick waits for its capacity metrics to be durable and applied.
const METRICS_LOG_TIMEOUT: Duration = Duration::from_secs(10);

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// Why notifications and scaling could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration cannot run here: every problem (missing secrets, notifiers that
    /// cannot be built, fleets that cannot be reached), one per line.
    #[error("{} (every one listed):\n  {}", thermostat_alarms::backtest::count(.0.len(), "problem", "problems"), .0.join("\n  "))]
    Unready(Vec<String>),
    /// The notification outbox cannot be opened.
    #[error(transparent)]
    Outbox(#[from] thermostat_notify::Error),
    /// The stored group states cannot be read.
    #[error(transparent)]
    Scaling(#[from] thermostat_scaler_runtime::Error),
}

/// Where the alarm and scaling state is kept: the state database, or in cluster mode the
/// replicated state (`cluster_state::Replicated`).
pub trait StateStore: AlarmStore + GroupStore {}

impl<S: AlarmStore + GroupStore> StateStore for S {}

/// A notification outbox several nodes share (cluster mode): this node's replica, the port
/// its writes go through, and whether this node delivers now.
pub struct SharedNotifications {
    /// The replica the dispatcher reads.
    pub outbox: thermostat_notify::outbox::Outbox,
    /// Where its writes go.
    pub writes: Arc<dyn thermostat_notify::SharedOutbox>,
    /// Whether this node delivers now.
    pub delivers: thermostat_notify::DeliveryGate,
}

impl std::fmt::Debug for SharedNotifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedNotifications")
            .field("writes", &self.writes)
            .finish_non_exhaustive()
    }
}

/// The notification dispatcher and the scaling runtime, as the alarm runtime's [`ActionSink`].
/// It dereferences to the [`ScalingRuntime`] (group capacity, decisions, the group views).
pub struct Actions {
    dispatcher: Arc<Dispatcher>,
    scaling: Arc<ScalingRuntime>,
    capacity_log: Arc<CapacityLog>,
    sdk: aws_config::SdkConfig,
    /// Whether this node runs the scaling step (cluster mode: only the leader); unset: always.
    scales_here: OnceLock<Arc<dyn Fn() -> bool + Send + Sync>>,
    /// Where the scaling actions go that come due on a node that does not scale (cluster
    /// mode: a `SetAlarmState` answered by a node that does not lead goes to the leader).
    forward_scaling: OnceLock<ForwardScaling>,
}

/// Hands scaling actions due at `now` to the node that scales.
pub type ForwardScaling = Arc<dyn Fn(Vec<ActionDue>, Timestamp) + Send + Sync>;

impl Actions {
    /// Opens the notification outbox in `data_dir` (or takes the `shared` one) and starts
    /// the scaling runtime
    /// ([`ScalingRuntime::start`]) on `db` (the state database, or in cluster mode the
    /// replicated state), each counting into its telemetry.
    ///
    /// # Errors
    /// Every unmet requirement, incomplete notifier settings and unreachable fleet at once
    /// ([`StartError::Unready`]); an outbox or a state database that cannot be read.
    pub async fn start(
        config: &Config,
        data_dir: &std::path::Path,
        shared: Option<SharedNotifications>,
        db: Arc<dyn StateStore>,
        clock: Arc<dyn Clock>,
        notification_telemetry: NotificationTelemetry,
        scaling_telemetry: ScalingTelemetry,
    ) -> Result<Arc<Actions>, StartError> {
        // The region comes from the environment, else us-east-1, and never from the instance
        // metadata service, so nothing leaves the machine unless an AWS back-end is used
        // (credentials are resolved at the first AWS call).
        let region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION"));
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(
                region.unwrap_or_else(|| "us-east-1".into()),
            ))
            .load()
            .await;
        let unmet = crate::config::unmet(&config.requirements, &|k| std::env::var_os(k));
        for u in unmet.iter().filter(|u| !u.fatal) {
            tracing::warn!(requirement = %u, "A requirement of the configuration is not met.");
        }
        let mut problems: Vec<String> = unmet
            .iter()
            .filter(|u| u.fatal)
            .map(ToString::to_string)
            .collect();
        let notifiers = if problems.is_empty() {
            Notifiers::from_settings(&config.notifications, Some(&sdk), &env)
                .map_err(|e| problems.push(e.to_string()))
                .ok()
        } else {
            None
        };
        let capacity_log = Arc::new(CapacityLog::default());
        let ports = Ports {
            store: Arc::clone(&db) as Arc<dyn GroupStore>,
            fleets: Arc::new(thermostat_fleet::factory(sdk.clone(), Arc::clone(&clock))),
            capacity_metrics: Arc::clone(&capacity_log) as _,
        };
        let started = ScalingRuntime::start(
            &config.scaling,
            ports,
            Arc::clone(&clock),
            scaling_telemetry,
        );
        let scaling = match started.await {
            Ok(s) => Some(s),
            Err(thermostat_scaler_runtime::Error::Start(list)) => {
                problems.extend(list.iter().map(ToString::to_string));
                None
            }
            Err(e) => return Err(e.into()),
        };
        let (Some(notifiers), Some(scaling), true) = (notifiers, scaling, problems.is_empty())
        else {
            return Err(StartError::Unready(problems));
        };
        let messages = config
            .notifications
            .message_settings(env("AWS_REGION").as_deref());
        let dispatcher = match shared {
            Some(s) => Dispatcher::on(
                s.outbox,
                config.notifications.clone(),
                messages,
                notifiers,
                clock,
            )
            .with_shared(s.writes, s.delivers),
            None => Dispatcher::open(
                data_dir,
                config.notifications.clone(),
                messages,
                notifiers,
                clock,
                &env,
            )?,
        }
        .with_telemetry(notification_telemetry)
        .with_history_sink(Arc::new(move |item: HistoryItem| {
            if let Err(e) = AlarmStore::commit(&*db, &[], &[item]) {
                tracing::error!(error = %e, "Could not record an action in the alarm history.");
            }
        }));
        let dispatcher = Arc::new(dispatcher);
        Ok(Arc::new(Actions {
            dispatcher,
            scaling,
            capacity_log,
            sdk,
            scales_here: OnceLock::new(),
            forward_scaling: OnceLock::new(),
        }))
    }

    /// The notification dispatcher (its `run` loop is spawned by the caller).
    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }

    /// The scaling runtime.
    pub fn scaling(&self) -> &Arc<ScalingRuntime> {
        &self.scaling
    }

    /// Runs the scaling step only while `here` says so (cluster mode: on the leader, whose
    /// group states the others adopt); notifications are queued wherever alarms act.
    pub fn scale_only_while(&self, here: impl Fn() -> bool + Send + Sync + 'static) {
        let _ = self.scales_here.set(Arc::new(here));
    }

    /// Hands the scaling actions that come due while this node does not scale
    /// ([`scale_only_while`](Self::scale_only_while)) to `forward`.
    pub fn forward_scaling_to(&self, forward: ForwardScaling) {
        let _ = self.forward_scaling.set(forward);
    }

    /// Sends the groups' capacity metrics through `ingest`'s write-ahead log from now on, so
    /// that they survive a crash like pushed data (until then they are not recorded).
    pub fn log_metrics_to(&self, ingest: Ingest) {
        let _ = self.capacity_log.0.set(ingest);
    }

    /// Applies a reloaded configuration: new notification settings (incomplete ones leave the
    /// previous ones in place), then the scaling groups ([`ScalingRuntime::reload`]).
    pub fn on_reload(&self, config: &Config) {
        let messages = config
            .notifications
            .message_settings(env("AWS_REGION").as_deref());
        match Notifiers::from_settings(&config.notifications, Some(&self.sdk), &env) {
            Ok(n) => self
                .dispatcher
                .reconfigure(config.notifications.clone(), messages, n, &env),
            Err(e) => {
                tracing::error!(error = %e, "The new notification settings are incomplete; the previous ones stay.");
            }
        }
        self.scaling.reload(&config.scaling);
    }

    /// Waits for fleet calls in progress, then for notifications in flight (shutdown);
    /// returns how many notifications stay undelivered.
    pub async fn finish(&self, grace: Duration) -> usize {
        self.scaling.finish(grace).await;
        self.dispatcher.drain(grace).await
    }
}

impl std::fmt::Debug for Actions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actions")
            .field("dispatcher", &self.dispatcher)
            .field("scaling", &self.scaling)
            .field("scales_here", &self.scales_here.get().is_some())
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for Actions {
    type Target = ScalingRuntime;

    fn deref(&self) -> &ScalingRuntime {
        &self.scaling
    }
}

impl ActionSink for Actions {
    /// Queues the notifications among `due`, then runs the scaling step (on every call, for
    /// the scheduled actions, even with nothing due).
    fn act(&self, alarms: &AlarmSet, due: &[ActionDue], now: Timestamp) {
        for d in due {
            if let Err(e) = self.dispatcher.notify_due(alarms, d, now) {
                tracing::error!(alarm = %d.name, action = %d.invocation.action, error = %e, "Could not queue a notification.");
            }
        }
        if self.scales_here.get().is_none_or(|here| here()) {
            self.scaling.scale(alarms, due, now);
        } else if let Some(forward) = self.forward_scaling.get() {
            let scaling: Vec<ActionDue> = due
                .iter()
                .filter(|d| d.invocation.action.is_scaling())
                .cloned()
                .collect();
            if !scaling.is_empty() {
                forward(scaling, now);
            }
        }
    }
}

impl NotificationApi for Actions {
    fn recent(&self, limit: usize) -> Vec<Value> {
        match self.dispatcher.recent(limit) {
            Ok(list) => list
                .iter()
                .filter_map(|n| serde_json::to_value(n).ok())
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "Could not read the notification outbox.");
                Vec::new()
            }
        }
    }
}

/// The groups' capacity metrics into the ingest log, like a push.
#[derive(Debug, Default)]
struct CapacityLog(OnceLock<Ingest>);

impl CapacityMetricsSink for CapacityLog {
    fn record(&self, samples: Vec<(SeriesKey, Observation<'static>)>, now: Timestamp) {
        let Some(ingest) = self.0.get() else { return };
        match ingest.append_observations_blocking(&samples, now, METRICS_LOG_TIMEOUT) {
            Ok(_) => {}
            Err(e) if e.append_timed_out() => {
                // Queued: it is applied when the log gets to it.
                tracing::warn!(error = %e, "The groups' capacity metrics of this tick are late.");
            }
            Err(e) => {
                // Nothing of it was stored: keep the samples, without the crash safety.
                tracing::warn!(error = %e, "Could not log the groups' capacity metrics; recorded them without the write-ahead log.");
                ingest.store().record_batch(&samples);
            }
        }
    }
}
