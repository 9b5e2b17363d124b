//! Thermostat's notification adapter: delivers the notifications that alarm actions
//! produce — SNS topics (aws-sdk-sns), e-mail (SMTP, lettre) and webhooks (reqwest) —
//! through a durable outbox, at least once.
//!
//! # What this crate owns
//! - The port [`Notifier`] and its implementations [`SnsNotifier`], [`SmtpNotifier`] and
//!   [`WebhookNotifier`] (with the `X-Thermostat-Signature` HMAC, [`webhook::signature`]).
//! - Reading the secrets and CA bundles the settings name ([`secrets`]): from environment
//!   variables or files, at start and at every reload.
//! - The durable [`Outbox`] (`outbox.redb`): every notification is written, with its
//!   rendered payload, before it is sent; every attempt is recorded.
//! - The [`Dispatcher`]: the notification of an action an alarm invokes
//!   ([`Dispatcher::notify_due`], from `thermostat_alarms::ActionDue`: what fired, rendered
//!   with the current settings and mute rules), a bounded, non-blocking
//!   [`Dispatcher::enqueue`], the delivery loop
//!   [`Dispatcher::run`] (send at once, retry with exponential backoff, resume after a
//!   restart), [`Dispatcher::drain`] for shutdown, [`Dispatcher::recent`] for the API, and
//!   Action history items reported through a [`HistorySink`].
//! - Its metrics ([`NotificationTelemetry`]: notifications that ended, by
//!   [`NotificationStatus`], counted where the dispatcher reports their Action history item;
//!   the binary registers them for `/metrics`).
//!
//! Rendering (CloudWatch's message JSON, subjects, e-mail, Slack, PagerDuty) and the
//! settings model are pure and live in `thermostat_alarms::{message, notifications}`.
//!
//! # Invariants
//! - A notification is in the outbox before its first attempt; its payload is never
//!   re-rendered, so every attempt sends the same bytes.
//! - A notification is sent again only while its record is pending: never after an
//!   attempt recorded as delivered. A crash between a successful send and the write of
//!   that attempt re-sends it after the restart (at least once, not exactly once).
//! - Muted notifications are recorded with status `muted` and never sent.
//! - `enqueue` never blocks and never drops silently: a full queue is an error.
//! - Secret values (SMTP password, HMAC keys, PagerDuty routing keys) are held as
//!   `Secret`s, which print as `[redacted]`; none is stored in the outbox (a PagerDuty body
//!   gets its routing key when it is sent), so none reaches `GET /api/v1/notifications`,
//!   a backup or a log line.
//! - TLS certificates are always verified (webhooks, SMTP STARTTLS, AWS): a `ca_file` adds
//!   roots, nothing removes verification.
//!
//! # Layout
//! `error.rs` (the [`Error`] enum), `outbox.rs`, `dispatcher.rs`, `telemetry.rs`,
//! `secrets.rs`, and one
//! file per notifier:
//! `sns.rs`, `smtp.rs`, `webhook.rs`. Integration tests against real peers (moto, aiosmtpd,
//! an axum receiver) are in `tests/it/`. The user documentation is `docs/notifications.md`.

use std::future::Future;

pub mod dispatcher;
pub mod error;
pub mod outbox;
pub mod secrets;
pub mod shared;
pub mod smtp;
pub mod sns;
pub mod telemetry;
pub mod webhook;

pub use dispatcher::{DeliveryGate, Dispatcher, HistorySink, NotificationView};
pub use error::{Error, Result};
pub use outbox::{Outbox, OutboxRecord, Status};
pub use shared::SharedOutbox;
pub use smtp::SmtpNotifier;
pub use sns::SnsNotifier;
pub use telemetry::{NotificationStatus, NotificationTelemetry};
pub use thermostat_alarms::notifications::Notification;
pub use webhook::WebhookNotifier;

/// What a receiver acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The SNS message id, the SMTP reply or the HTTP status.
    pub detail: String,
}

/// A way to deliver notifications.
pub trait Notifier: Send + Sync {
    /// Delivers one notification (one attempt; the dispatcher retries).
    ///
    /// # Errors
    /// The delivery failed; [`Error::is_permanent`] tells whether a retry can help.
    fn deliver(&self, n: &Notification) -> impl Future<Output = Result<Receipt>> + Send;
}

/// The notifiers a dispatcher delivers with; a kind left `None` fails its notifications
/// with [`Error::NotConfigured`].
#[derive(Debug, Default)]
pub struct Notifiers {
    /// For SNS topic actions.
    pub sns: Option<SnsNotifier>,
    /// For `mailto:` actions.
    pub smtp: Option<SmtpNotifier>,
    /// For `http(s)://` and `webhook:<name>` actions.
    pub webhook: Option<WebhookNotifier>,
}

impl Notifiers {
    /// Notifiers for `settings`: SNS when `aws` is given, SMTP when `settings.smtp` is set,
    /// and webhooks always. Secrets and CA bundles are read now, from their variables
    /// (through `env`; the binary passes `|k| std::env::var(k).ok()`) or files
    /// ([`secrets`]); the binary calls this at start and at every reload.
    ///
    /// # Errors
    /// A secret variable that is not set, a secret file or CA bundle that cannot be used,
    /// or bad SMTP settings.
    pub fn from_settings(
        settings: &thermostat_alarms::notifications::NotificationSettings,
        aws: Option<&aws_config::SdkConfig>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        Ok(Notifiers {
            sns: aws.map(SnsNotifier::new),
            smtp: settings
                .smtp
                .as_ref()
                .map(|s| SmtpNotifier::new(s, env))
                .transpose()?,
            webhook: Some(WebhookNotifier::new(settings, env)?),
        })
    }

    /// Delivers with the notifier for the notification's kind.
    ///
    /// # Errors
    /// [`Error::NotConfigured`] when that notifier is missing, else the notifier's error.
    pub async fn deliver(&self, n: &Notification) -> Result<Receipt> {
        use thermostat_alarms::notifications::Delivery;
        let kind = n.delivery.kind();
        match &n.delivery {
            Delivery::Sns { .. } => match &self.sns {
                Some(s) => s.deliver(n).await,
                None => Err(Error::NotConfigured { kind }),
            },
            Delivery::Email { .. } => match &self.smtp {
                Some(s) => s.deliver(n).await,
                None => Err(Error::NotConfigured { kind }),
            },
            Delivery::Webhook { .. } => match &self.webhook {
                Some(w) => w.deliver(n).await,
                None => Err(Error::NotConfigured { kind }),
            },
        }
    }
}
