//! The dispatcher: takes notifications from the engine without blocking, writes them to the
//! outbox, sends them at once, retries failures with exponential backoff (also across
//! restarts), and reports each final outcome as an alarm history item.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use thermostat_alarms::action::Action;
use thermostat_alarms::history::AlarmType;
use thermostat_alarms::message::{AlarmEvent, MessageSettings};
use thermostat_alarms::notifications::{
    self, Delivery, Notification, NotificationSettings, RetrySettings,
};
use thermostat_alarms::{ActionDue, ActionInvocation, AlarmSet, HistoryItem, StateValue};
use thermostat_metrics::{Clock, Timestamp};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::error::{Error, Result};
use crate::outbox::{Attempt, Next, Outbox, OutboxRecord, Outcome, Status};
use crate::shared::SharedOutbox;
use crate::telemetry::{NotificationStatus, NotificationTelemetry};
use crate::{Notifiers, Receipt};

/// Receives the Action history items (`Successfully executed action ...` /
/// `Failed to execute action ...`) of finished notifications, for the binary to persist.
pub type HistorySink = Arc<dyn Fn(HistoryItem) + Send + Sync>;

/// Default number of deliveries in flight at once.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;
/// Most notifications written to the outbox in one transaction.
const MAX_BATCH: usize = 256;

/// What the dispatcher renders and retries with; replaced as a whole on reload.
#[derive(Debug)]
struct Config {
    settings: NotificationSettings,
    messages: MessageSettings,
    notifiers: Arc<Notifiers>,
}

struct Runner {
    rx: mpsc::Receiver<Notification>,
    rx_open: bool,
    loaded: bool,
    /// Pending notifications not in flight: (due, id).
    schedule: BTreeSet<(Timestamp, u64)>,
    in_flight: JoinSet<(OutboxRecord, Timestamp, Result<Receipt>)>,
    /// The ids in flight (a resync leaves them out of the schedule).
    in_flight_ids: BTreeSet<u64>,
    /// Whether this dispatcher delivered at its last look ([`Dispatcher::with_shared`]).
    delivering: bool,
}

/// Whether this node delivers now (a shared outbox: only one node does).
pub type DeliveryGate = Arc<dyn Fn() -> bool + Send + Sync>;

/// How often a dispatcher that may not deliver looks again.
const GATE_POLL: Duration = Duration::from_millis(250);

/// Owns the outbox and the notifiers; see the crate documentation for the life cycle.
pub struct Dispatcher {
    outbox: Outbox,
    clock: Arc<dyn Clock>,
    capacity: usize,
    max_in_flight: usize,
    tx: mpsc::Sender<Notification>,
    accepting: AtomicBool,
    config: RwLock<Arc<Config>>,
    runner: tokio::sync::Mutex<Runner>,
    history: Option<HistorySink>,
    telemetry: NotificationTelemetry,
    /// Where the outbox's writes go: the outbox itself, or a shared outbox's port
    /// ([`Dispatcher::with_shared`]).
    writes: Arc<dyn SharedOutbox>,
    /// A shared outbox's delivery gate ([`Dispatcher::with_shared`]); `None`: always deliver.
    delivers: Option<DeliveryGate>,
    /// Set when the outbox took writes of other nodes: the schedule is read again.
    resync: AtomicBool,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("outbox", &self.outbox)
            .field("capacity", &self.capacity)
            .field("max_in_flight", &self.max_in_flight)
            .finish_non_exhaustive()
    }
}

fn add_ms(t: Timestamp, d: Duration) -> Timestamp {
    t.add_millis(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Dispatcher {
    /// Opens the outbox `dir/outbox.redb` and builds a dispatcher that renders with
    /// `settings` and `messages` and delivers with `notifiers`. Pending notifications of an
    /// earlier run are picked up when [`run`](Self::run) starts.
    ///
    /// `_env` is no longer read: every secret, the PagerDuty routing key included, is read
    /// by the notifiers ([`Notifiers::from_settings`]), so that none is stored with the
    /// notifications. It goes once the binary stops passing it.
    ///
    /// # Errors
    /// The outbox cannot be opened.
    pub fn open(
        dir: &Path,
        settings: NotificationSettings,
        messages: MessageSettings,
        notifiers: Notifiers,
        clock: Arc<dyn Clock>,
        _env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Dispatcher> {
        let outbox = Outbox::open(dir)?;
        Ok(Self::on(outbox, settings, messages, notifiers, clock))
    }

    /// [`open`](Self::open) on an outbox already open (a shared outbox's replica).
    pub fn on(
        outbox: Outbox,
        settings: NotificationSettings,
        messages: MessageSettings,
        notifiers: Notifiers,
        clock: Arc<dyn Clock>,
    ) -> Dispatcher {
        let capacity = settings.queue_capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        Dispatcher {
            outbox: outbox.clone(),
            clock,
            capacity,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            tx,
            accepting: AtomicBool::new(true),
            config: RwLock::new(Arc::new(Config {
                settings,
                messages,
                notifiers: Arc::new(notifiers),
            })),
            runner: tokio::sync::Mutex::new(Runner {
                rx,
                rx_open: true,
                loaded: false,
                schedule: BTreeSet::new(),
                in_flight: JoinSet::new(),
                in_flight_ids: BTreeSet::new(),
                delivering: true,
            }),
            history: None,
            telemetry: NotificationTelemetry::default(),
            writes: Arc::new(outbox.clone()),
            delivers: None,
            resync: AtomicBool::new(false),
        }
    }

    /// Shares the outbox with other nodes ([`SharedOutbox`]): every write goes through
    /// `writes`, and notifications are delivered only while `delivers` says so (one node
    /// at a time); when it starts to, the pending ones are read again from the outbox.
    #[must_use]
    pub fn with_shared(mut self, writes: Arc<dyn SharedOutbox>, delivers: DeliveryGate) -> Self {
        self.writes = writes;
        self.delivers = Some(delivers);
        self
    }

    /// Says the outbox took writes of another node: the pending notifications are read
    /// again before the next delivery.
    pub fn resync(&self) {
        self.resync.store(true, Ordering::Release);
    }

    /// Whether this node delivers now.
    fn delivers(&self) -> bool {
        self.delivers.as_ref().is_none_or(|gate| gate())
    }

    /// Sends the Action history item of every finished notification to `sink`.
    #[must_use]
    pub fn with_history_sink(mut self, sink: HistorySink) -> Self {
        self.history = Some(sink);
        self
    }

    /// Counts every notification that ends (delivered or failed, when its Action history
    /// item is reported) in `telemetry` (unregistered by default).
    #[must_use]
    pub fn with_telemetry(mut self, telemetry: NotificationTelemetry) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// Limits deliveries in flight at once (default [`DEFAULT_MAX_IN_FLIGHT`]).
    #[must_use]
    pub fn with_max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// Replaces the settings and notifiers after a configuration reload. Notifications
    /// already in the outbox keep their rendered payloads; new retry settings apply to the
    /// next failure, new secrets (the notifiers') to the next attempt. `_env` is no longer
    /// read, as in [`open`](Self::open).
    pub fn reconfigure(
        &self,
        settings: NotificationSettings,
        messages: MessageSettings,
        notifiers: Notifiers,
        _env: &dyn Fn(&str) -> Option<String>,
    ) {
        let cfg = Arc::new(Config {
            settings,
            messages,
            notifiers: Arc::new(notifiers),
        });
        *self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = cfg;
    }

    fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Queues a notification for the outbox without blocking.
    ///
    /// # Errors
    /// [`Error::QueueFull`] when `queue_capacity` notifications are already waiting (nothing
    /// is dropped silently: the caller records the failure), [`Error::ShuttingDown`] once
    /// [`drain`](Self::drain) has started.
    pub fn enqueue(&self, n: Notification) -> Result<()> {
        if !self.accepting.load(Ordering::Acquire) {
            return Err(Error::ShuttingDown);
        }
        self.tx.try_send(n).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::QueueFull {
                capacity: self.capacity,
            },
            mpsc::error::TrySendError::Closed(_) => Error::ShuttingDown,
        })
    }

    /// Builds the notification for one action of a transition (with the current settings,
    /// applying mute rules at `now`) and queues it. Returns `Ok(false)` for actions that are
    /// not notifications (Auto Scaling policies).
    ///
    /// # Errors
    /// [`Error::Undeliverable`] when the action cannot be rendered with the settings (the
    /// Action history item with the failure is also sent to the history sink), or the
    /// errors of [`enqueue`](Self::enqueue).
    pub fn notify(
        &self,
        event: &AlarmEvent<'_>,
        invocation: &ActionInvocation,
        now: Timestamp,
    ) -> Result<bool> {
        let cfg = self.config();
        match notifications::build_notification(
            &cfg.settings,
            &cfg.messages,
            event,
            invocation,
            now,
        ) {
            Ok(None) => Ok(false),
            Ok(Some(n)) => self.enqueue(n).map(|()| true),
            Err(message) => {
                let alarm_type = match event.definition {
                    thermostat_alarms::message::AlarmDefinition::Metric(_) => {
                        AlarmType::MetricAlarm
                    }
                    thermostat_alarms::message::AlarmDefinition::Composite(_) => {
                        AlarmType::CompositeAlarm
                    }
                };
                self.ended(
                    event.name,
                    alarm_type,
                    &invocation.action,
                    Some(&message),
                    now,
                );
                Err(Error::Undeliverable {
                    alarm: event.name.to_owned(),
                    action: invocation.action.as_config_str(),
                    message,
                })
            }
        }
    }

    /// Builds and queues the notification of one action an alarm invokes (`due`, from
    /// `thermostat_alarms::actions_due`), its definition looked up in `alarms`, as
    /// [`notify`](Self::notify) does. Returns `Ok(false)` for Auto Scaling actions (they go to
    /// the scaling runtime) and for an alarm that `alarms` does not define.
    ///
    /// # Errors
    /// As [`notify`](Self::notify).
    pub fn notify_due(&self, alarms: &AlarmSet, due: &ActionDue, now: Timestamp) -> Result<bool> {
        if due.invocation.action.is_scaling() {
            return Ok(false);
        }
        match due.event(alarms) {
            Some(event) => self.notify(&event, &due.invocation, now),
            None => Ok(false),
        }
    }

    /// The newest `limit` notifications with their status and attempts, newest first (for
    /// `GET /api/v1/notifications`).
    ///
    /// # Errors
    /// The outbox cannot be read.
    pub fn recent(&self, limit: usize) -> Result<Vec<NotificationView>> {
        Ok(self
            .outbox
            .recent(limit)?
            .iter()
            .map(NotificationView::from)
            .collect())
    }

    /// Delivers until `shutdown` completes: queued notifications are written to the outbox
    /// and sent at once, failures retried when due. Pending notifications of an earlier run
    /// are picked up first. Call [`drain`](Self::drain) afterwards.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let mut runner = self.runner.lock().await;
        self.pump(&mut runner, shutdown, None).await;
    }

    /// Stops accepting notifications, writes every queued one to the outbox, and keeps
    /// delivering (including retries that fall due) for at most `grace`. Whatever is not
    /// delivered by then stays pending in the outbox for the next start. Returns the number
    /// of notifications still pending.
    pub async fn drain(&self, grace: Duration) -> usize {
        self.accepting.store(false, Ordering::Release);
        let mut runner = self.runner.lock().await;
        runner.rx.close();
        // Everything queued goes to the outbox, whatever the grace period.
        loop {
            let mut batch = Vec::new();
            while batch.len() < MAX_BATCH {
                match runner.rx.try_recv() {
                    Ok(n) => batch.push(n),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                break;
            }
            self.persist(&mut runner, batch).await;
        }
        runner.rx_open = false;
        let deadline = add_ms(self.clock.now(), grace);
        self.pump(&mut runner, tokio::time::sleep(grace), Some(deadline))
            .await;
        // Deliveries still in flight are cancelled; their records stay pending.
        runner.in_flight.abort_all();
        while runner.in_flight.join_next().await.is_some() {}
        let left = self.outbox.pending().map_or(0, |p| p.len());
        if left > 0 {
            tracing::warn!(
                pending = left,
                "Notifications are still pending at shutdown; they will be sent after the next start."
            );
        }
        left
    }

    /// A notification ended, delivered when `error` is `None`: counts it and reports its
    /// Action history item to the history sink.
    fn ended(
        &self,
        alarm_name: &str,
        alarm_type: AlarmType,
        action: &Action,
        error: Option<&str>,
        now: Timestamp,
    ) {
        self.telemetry.ended(match error {
            None => NotificationStatus::Delivered,
            Some(_) => NotificationStatus::Failed,
        });
        if let Some(sink) = &self.history {
            sink(HistoryItem::action(
                alarm_name, alarm_type, action, error, now,
            ));
        }
    }

    /// Runs `f` on the outbox's writes ([`SharedOutbox`]) in a blocking thread.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn SharedOutbox) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let writes = Arc::clone(&self.writes);
        tokio::task::spawn_blocking(move || f(&*writes))
            .await
            .map_err(|e| Error::Outbox(format!("outbox task failed: {e}")))?
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Outbox) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let outbox = self.outbox.clone();
        tokio::task::spawn_blocking(move || f(&outbox))
            .await
            .map_err(|e| Error::Outbox(format!("outbox task failed: {e}")))?
    }

    async fn pump(
        &self,
        r: &mut Runner,
        stop: impl Future<Output = ()>,
        deadline: Option<Timestamp>,
    ) {
        let mut stop = std::pin::pin!(stop);
        if !r.loaded {
            match self.blocking(Outbox::pending).await {
                Ok(p) => {
                    if !p.is_empty() {
                        tracing::info!(
                            pending = p.len(),
                            "Resuming notifications pending from an earlier run."
                        );
                    }
                    r.schedule.extend(p.into_iter().map(|(id, due)| (due, id)));
                    r.loaded = true;
                }
                Err(e) => {
                    tracing::error!(error = %e, "Cannot read pending notifications from the outbox.");
                }
            }
        }
        loop {
            let now = self.clock.now();
            let delivers = self.delivers();
            if (delivers && !r.delivering) || self.resync.swap(false, Ordering::AcqRel) {
                self.reschedule(r).await;
            }
            r.delivering = delivers;
            while delivers && r.in_flight.len() < self.max_in_flight {
                let Some(&(due, id)) = r.schedule.first() else {
                    break;
                };
                if due > now {
                    break;
                }
                r.schedule.remove(&(due, id));
                self.start(r, id, now).await;
            }
            if let Some(deadline) = deadline
                && !r.rx_open
                && r.in_flight.is_empty()
                && (!delivers || r.schedule.first().is_none_or(|(due, _)| *due > deadline))
            {
                return;
            }
            let mut wake = r
                .schedule
                .first()
                .filter(|_| r.in_flight.len() < self.max_in_flight)
                .map(|(due, _)| {
                    Duration::from_millis(
                        u64::try_from(due.as_millis().saturating_sub(now.as_millis())).unwrap_or(0),
                    )
                });
            if self.delivers.is_some() {
                // Leadership and the other nodes' writes are looked at again this often.
                wake = Some(wake.map_or(GATE_POLL, |w| w.min(GATE_POLL)));
            }
            tokio::select! {
                biased;
                () = &mut stop => return,
                Some(joined) = r.in_flight.join_next(), if !r.in_flight.is_empty() => {
                    match joined {
                        Ok((rec, at, result)) => self.finish(r, rec, at, result).await,
                        Err(e) => tracing::error!(
                            error = %e,
                            "A notification delivery task failed; the notification stays pending."
                        ),
                    }
                }
                received = r.rx.recv(), if r.rx_open => match received {
                    Some(first) => {
                        let mut batch = vec![first];
                        while batch.len() < MAX_BATCH {
                            match r.rx.try_recv() {
                                Ok(n) => batch.push(n),
                                Err(_) => break,
                            }
                        }
                        self.persist(r, batch).await;
                    }
                    None => r.rx_open = false,
                },
                () = tokio::time::sleep(wake.unwrap_or(Duration::ZERO)), if wake.is_some() => {}
            }
        }
    }

    /// Reads the schedule again from the outbox (leaving out what is in flight).
    async fn reschedule(&self, r: &mut Runner) {
        match self.blocking(Outbox::pending).await {
            Ok(p) => {
                r.schedule = p
                    .into_iter()
                    .filter(|(id, _)| !r.in_flight_ids.contains(id))
                    .map(|(id, due)| (due, id))
                    .collect();
            }
            Err(e) => {
                tracing::error!(error = %e, "Cannot read pending notifications from the outbox.");
                self.resync();
            }
        }
    }

    async fn persist(&self, r: &mut Runner, batch: Vec<Notification>) {
        let now = self.clock.now();
        let count = batch.len();
        let keep = batch.clone();
        match self.write(move |w| w.insert(batch, now)).await {
            Ok(records) => {
                for rec in records {
                    match rec.status {
                        Status::Pending => {
                            r.schedule.insert((now, rec.id));
                        }
                        _ => tracing::info!(
                            alarm = %rec.notification.alarm_name,
                            action = %rec.notification.action,
                            mute_rule = rec.notification.muted_by.as_deref().unwrap_or(""),
                            "Notification muted."
                        ),
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, count, "Cannot write notifications to the outbox; they are not sent.");
                for n in keep {
                    self.ended(
                        &n.alarm_name,
                        n.alarm_type,
                        &n.action,
                        Some(&format!("not written to the outbox: {e}")),
                        now,
                    );
                }
            }
        }
    }

    async fn start(&self, r: &mut Runner, id: u64, now: Timestamp) {
        let rec = match self.blocking(move |o| o.get(id)).await {
            Ok(Some(rec)) if rec.status == Status::Pending => rec,
            Ok(_) => return,
            Err(e) => {
                tracing::error!(error = %e, id, "Cannot read a notification from the outbox; retrying later.");
                let cfg = self.config();
                r.schedule
                    .insert((add_ms(now, cfg.settings.retry.max_backoff), id));
                return;
            }
        };
        let notifiers = self.config().notifiers.clone();
        let clock = self.clock.clone();
        r.in_flight_ids.insert(id);
        r.in_flight.spawn(async move {
            let at = clock.now();
            let result = notifiers.deliver(&rec.notification).await;
            (rec, at, result)
        });
    }

    async fn finish(
        &self,
        r: &mut Runner,
        rec: OutboxRecord,
        at: Timestamp,
        result: Result<Receipt>,
    ) {
        let now = self.clock.now();
        let retry: RetrySettings = self.config().settings.retry.clone();
        let (attempt, next) = outcome(&rec, at, now, &retry, &result);
        let n = &rec.notification;
        match &result {
            Ok(_) => {
                tracing::debug!(alarm = %n.alarm_name, action = %n.action, id = rec.id, "Notification delivered.")
            }
            Err(e) => tracing::warn!(
                alarm = %n.alarm_name,
                action = %n.action,
                id = rec.id,
                attempt = rec.attempts.len() + 1,
                error = %e,
                "Notification delivery failed."
            ),
        }
        let id = rec.id;
        r.in_flight_ids.remove(&id);
        let written = self
            .write(move |w| w.record_attempt(id, attempt, next))
            .await;
        if let Err(e) = written {
            tracing::error!(error = %e, id, "Cannot record a delivery attempt; the notification stays pending and may be sent again.");
            if let Next::RetryAt(t) = next {
                r.schedule.insert((t, id));
            }
            return;
        }
        match next {
            Next::RetryAt(t) => {
                r.schedule.insert((t, id));
            }
            Next::Done(status) => {
                let error = match &result {
                    Err(e) => Some(e.to_string()),
                    Ok(_) => None,
                };
                if status == Status::Failed {
                    tracing::warn!(alarm = %n.alarm_name, action = %n.action, id, "Notification given up.");
                }
                self.ended(
                    &n.alarm_name,
                    n.alarm_type,
                    &n.action,
                    error.as_deref(),
                    now,
                );
            }
        }
    }
}

/// The attempt record and what follows it (pure; `now` is when the attempt ended).
fn outcome(
    rec: &OutboxRecord,
    at: Timestamp,
    now: Timestamp,
    retry: &RetrySettings,
    result: &Result<Receipt>,
) -> (Attempt, Next) {
    match result {
        Ok(receipt) => (
            Attempt {
                at,
                outcome: Outcome::Delivered,
                receipt: Some(receipt.detail.clone()),
                error: None,
            },
            Next::Done(Status::Delivered),
        ),
        Err(e) => {
            let failures = u32::try_from(rec.attempts.len() + 1).unwrap_or(u32::MAX);
            let expired = retry
                .give_up_after
                .is_some_and(|g| now >= add_ms(rec.created, g));
            let next = if e.is_permanent() || expired {
                Next::Done(Status::Failed)
            } else {
                Next::RetryAt(add_ms(now, retry.backoff(failures)))
            };
            (
                Attempt {
                    at,
                    outcome: Outcome::Failed,
                    receipt: None,
                    error: Some(e.to_string()),
                },
                next,
            )
        }
    }
}

/// One attempt, for the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttemptView {
    /// When it started (RFC 3339).
    pub at: String,
    /// `delivered` or `failed`.
    pub outcome: Outcome,
    /// The receiver's acknowledgement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// The error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A notification as `GET /api/v1/notifications` shows it (the payload left out).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NotificationView {
    /// Outbox id.
    pub id: u64,
    /// The notification's key (same on every attempt).
    pub key: String,
    /// The alarm (or instance).
    pub alarm_name: String,
    /// The action, as configured.
    pub action: String,
    /// `sns`, `email` or `webhook`.
    pub kind: &'static str,
    /// The state the alarm entered.
    pub new_state: StateValue,
    /// When it entered it (RFC 3339).
    pub transition_time: String,
    /// A re-notification.
    pub repeat: bool,
    /// When it was written to the outbox (RFC 3339).
    pub created: String,
    /// `pending`, `delivered`, `failed` or `muted`.
    pub status: Status,
    /// The mute rule that held it back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub muted_by: Option<String>,
    /// The subject (SNS and e-mail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptView>,
    /// When the next attempt is due (pending only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
}

impl From<&OutboxRecord> for NotificationView {
    fn from(r: &OutboxRecord) -> Self {
        let n = &r.notification;
        NotificationView {
            id: r.id,
            key: n.key.clone(),
            alarm_name: n.alarm_name.clone(),
            action: n.action.as_config_str(),
            kind: n.delivery.kind(),
            new_state: n.state,
            transition_time: n.transition_time.to_rfc3339(),
            repeat: n.repeat,
            created: r.created.to_rfc3339(),
            status: r.status,
            muted_by: n.muted_by.clone(),
            subject: match &n.delivery {
                Delivery::Sns { subject, .. } | Delivery::Email { subject, .. } => {
                    Some(subject.clone())
                }
                Delivery::Webhook { .. } => None,
            },
            attempts: r
                .attempts
                .iter()
                .map(|a| AttemptView {
                    at: a.at.to_rfc3339(),
                    outcome: a.outcome,
                    receipt: a.receipt.clone(),
                    error: a.error.clone(),
                })
                .collect(),
            next_attempt_at: r.next_attempt_at.map(Timestamp::to_rfc3339),
        }
    }
}

#[cfg(test)]
mod tests {
    use thermostat_alarms::history::AlarmType;
    use thermostat_alarms::{ActionInvocation, Transition};
    use thermostat_metrics::ManualClock;

    use super::*;

    const ALARM: &str = "alarms:\n  - name: hot\n    namespace: App\n    metric_name: Cpu\n    statistic: Average\n    period_seconds: 60\n    evaluation_periods: 1\n    threshold: 70\n    comparison_operator: GreaterThanThreshold\n    alarm_actions: [\"https://hooks.example/cpu\", \"policy:web/out\"]\n";

    fn due(alarm: &str, action: &str) -> ActionDue {
        ActionDue {
            name: alarm.to_owned(),
            alarm: alarm.to_owned(),
            kind: AlarmType::MetricAlarm,
            invocation: ActionInvocation {
                action: thermostat_alarms::action::parse(action).unwrap(),
                state: StateValue::Alarm,
                repeat: false,
            },
            transition: Transition {
                timestamp: Timestamp(60_000),
                old_state: StateValue::Ok,
                new_state: StateValue::Alarm,
                reason: "Threshold Crossed".to_owned(),
                reason_data: None,
            },
            series: None,
            recent: None,
        }
    }

    #[test]
    fn notify_due_queues_notifications_only() {
        let dir = tempfile::tempdir().unwrap();
        let alarms = thermostat_alarms::validate(&[("a.yaml", ALARM)]).unwrap();
        let d = Dispatcher::open(
            dir.path(),
            NotificationSettings::default(),
            MessageSettings::default(),
            Notifiers::default(),
            Arc::new(ManualClock::new(Timestamp(60_000))),
            &|_| None,
        )
        .unwrap();
        let now = Timestamp(60_000);
        let webhook = due("hot", "https://hooks.example/cpu");
        assert!(d.notify_due(&alarms, &webhook, now).unwrap());
        let scaling = due("hot", "policy:web/out");
        assert!(!d.notify_due(&alarms, &scaling, now).unwrap(), "scaling");
        let gone = due("removed", "https://hooks.example/cpu");
        assert!(!d.notify_due(&alarms, &gone, now).unwrap(), "no definition");
    }
}
