//! Notification settings: the `notifications:` section of the configuration files (SMTP,
//! named webhooks, mute rules, retries, the account and region shown in messages): the
//! settings' model (here), their reading and validation with positions
//! ([`validate_notifications`], `reader.rs`), mute-rule evaluation ([`muted_by`],
//! `mute.rs`), and the notifications to send for an alarm action ([`build_notification`],
//! `delivery.rs`), as values.
//!
//! ```yaml
//! notifications:
//!   account_id: "123456789012"          # default 123456789012
//!   region: eu-west-1                   # default: AWS_REGION, else us-east-1
//!   dashboard_url: http://thermostat.internal:8080
//!   smtp: {host: 127.0.0.1, port: 25, from: thermostat@example.com, starttls: none}
//!   webhooks:
//!     - {name: oncall-slack, url: "https://hooks.example/T000", format: slack, secret_file: /run/secrets/slack-hook}
//!   mute_rules:
//!     - {name: nightly-deploy, alarms: ["web-*"], schedule: "0 2 * * *", duration_seconds: 1800, time_zone: UTC}
//!   retry: {initial_backoff_seconds: 1, max_backoff_seconds: 30, give_up_after_seconds: 86400}
//! ```
//!
//! Pure: secrets are named, by environment variable (`password_env`, `secret_env`,
//! `routing_key_env`) or by file (`password_file`, `secret_file`, `routing_key_file`), as a
//! [`SecretSource`]; the shell reads them (`thermostat-notify`) and holds the values as
//! [`Secret`]s, which never print. CA bundles (`ca_file`) are named here and read by the
//! shell too. `now` is always a parameter; time zones come from the database compiled into
//! `jiff`.

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thermostat_metrics::Timestamp;

use crate::message::{self, MessageSettings};

mod delivery;
mod mute;
mod reader;
mod secret;

pub use delivery::{
    Delivery, Notification, PAGERDUTY_BODY_PREFIX, build_notification, named_webhook,
    with_routing_key,
};
pub use mute::{CronSchedule, glob_match, muted_by, time_zone};
pub use reader::{
    NotificationsReader, requirements, requirements_of_document, validate_notifications,
};
pub use secret::{
    MAX_CA_FILE_BYTES, MAX_SECRET_FILE_BYTES, Secret, SecretSource, resolve_path, secret_from_file,
};

/// Default `queue_capacity`: notifications waiting to be written to the outbox.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;
/// Most alarm patterns per mute rule (CloudWatch: 100 alarms per rule).
pub const MAX_MUTE_RULE_ALARMS: usize = 100;
/// Longest mute window.
pub const MAX_MUTE_DURATION_SECONDS: u64 = 366 * 86_400;
/// The action prefix that names a webhook of the `webhooks:` list.
pub const NAMED_WEBHOOK_PREFIX: &str = "webhook:";

// === Model ===

/// `smtp.starttls`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartTls {
    /// Plain SMTP; never upgrade.
    None,
    /// Upgrade with STARTTLS when the server offers it (the default).
    #[default]
    Opportunistic,
    /// Refuse to send unless the connection is upgraded with STARTTLS.
    Required,
}

impl StartTls {
    /// The YAML spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            StartTls::None => "none",
            StartTls::Opportunistic => "opportunistic",
            StartTls::Required => "required",
        }
    }
}

impl FromStr for StartTls {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(StartTls::None),
            "opportunistic" => Ok(StartTls::Opportunistic),
            "required" => Ok(StartTls::Required),
            _ => Err(format!(
                "must be one of none, opportunistic, required (got {s:?})"
            )),
        }
    }
}

/// `notifications.smtp`: the mail server that `mailto:` actions send through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpSettings {
    /// Host name or address.
    pub host: String,
    /// Port (default 25).
    pub port: u16,
    /// The `From:` address.
    pub from: String,
    /// STARTTLS mode.
    pub starttls: StartTls,
    /// Login user, when the server needs authentication.
    pub username: Option<String>,
    /// Where the password comes from (with `username`): `password_env` or `password_file`.
    pub password: Option<SecretSource>,
    /// `ca_file`: a PEM bundle of certificates trusted, in addition to the built-in roots,
    /// to verify the server's certificate on STARTTLS (path resolved against the
    /// configuration file's folder).
    pub ca_file: Option<String>,
    /// Connection and command timeout (default 10 s).
    pub timeout: Duration,
}

/// `webhooks[].format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// CloudWatch's SNS message JSON (reference §4.1); the default.
    #[default]
    Cloudwatch,
    /// A Slack incoming-webhook message.
    Slack,
    /// A PagerDuty Events v2 event (trigger on ALARM / INSUFFICIENT_DATA, resolve on OK).
    Pagerduty,
}

impl WebhookFormat {
    /// The YAML spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Cloudwatch => "cloudwatch",
            WebhookFormat::Slack => "slack",
            WebhookFormat::Pagerduty => "pagerduty",
        }
    }
}

impl FromStr for WebhookFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cloudwatch" => Ok(WebhookFormat::Cloudwatch),
            "slack" => Ok(WebhookFormat::Slack),
            "pagerduty" => Ok(WebhookFormat::Pagerduty),
            _ => Err(format!(
                "must be one of cloudwatch, slack, pagerduty (got {s:?})"
            )),
        }
    }
}

/// One entry of `notifications.webhooks`, used by `webhook:<name>` actions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSettings {
    /// Unique name.
    pub name: String,
    /// `http://` or `https://` URL the payload is POSTed to.
    pub url: String,
    /// Payload format.
    pub format: WebhookFormat,
    /// Where the HMAC-SHA256 signing key comes from (`secret_env` or `secret_file`):
    /// requests then carry `X-Thermostat-Signature: sha256=<hex>`.
    pub secret: Option<SecretSource>,
    /// Where the PagerDuty routing (integration) key comes from (`routing_key_env` or
    /// `routing_key_file`); required for `format: pagerduty`.
    pub routing_key: Option<SecretSource>,
    /// `ca_file`: a PEM bundle of certificates trusted, in addition to the built-in roots,
    /// to verify an `https://` URL's certificate (path resolved against the configuration
    /// file's folder).
    pub ca_file: Option<String>,
    /// Request timeout (default 10 s).
    pub timeout: Duration,
}

/// One entry of `notifications.mute_rules` (CloudWatch alarm mute rules): while a window
/// is open, matching alarms keep evaluating and recording history, but their notification
/// actions are recorded as muted instead of being sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MuteRule {
    /// Unique name.
    pub name: String,
    /// Alarm name patterns (`*` any run of characters, `?` one character). An instance
    /// `name[Dim=value]` of a per-series alarm matches by its full or its alarm name.
    pub alarms: Vec<String>,
    /// When windows open (5-field cron); `None` for a one-time window from `starts_at` to
    /// `ends_at`.
    pub schedule: Option<CronSchedule>,
    /// How long each scheduled window stays open.
    pub duration: Duration,
    /// IANA time zone the schedule is read in (default `UTC`).
    pub time_zone: String,
    /// The rule applies from this time on.
    pub starts_at: Option<Timestamp>,
    /// The rule applies before this time.
    pub ends_at: Option<Timestamp>,
}

/// `notifications.retry`: exponential backoff between delivery attempts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrySettings {
    /// Wait after the first failure (default 1 s); doubled after each further failure.
    pub initial_backoff: Duration,
    /// Longest wait (default 30 s).
    pub max_backoff: Duration,
    /// Stop retrying a notification this long after it was queued and record it as failed
    /// (default one day); `None` retries for ever.
    pub give_up_after: Option<Duration>,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            give_up_after: Some(Duration::from_secs(86_400)),
        }
    }
}

impl RetrySettings {
    /// The wait after `failures` failed attempts (1 → `initial_backoff`, doubling, capped at
    /// `max_backoff`).
    pub fn backoff(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(31);
        self.initial_backoff
            .checked_mul(1u32 << shift)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

/// The validated `notifications:` section (merged over every file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotificationSettings {
    /// `account_id` (12 digits); `None` = [`message::DEFAULT_ACCOUNT_ID`].
    pub account_id: Option<String>,
    /// `region`; `None` = `AWS_REGION`, else [`message::DEFAULT_REGION`].
    pub region: Option<String>,
    /// Base URL of the Thermostat HTTP API, for links in messages.
    pub dashboard_url: Option<String>,
    /// The SMTP server for `mailto:` actions.
    pub smtp: Option<SmtpSettings>,
    /// Named webhooks for `webhook:<name>` actions.
    pub webhooks: Vec<WebhookSettings>,
    /// Mute rules.
    pub mute_rules: Vec<MuteRule>,
    /// Retry backoff.
    pub retry: RetrySettings,
    /// Notifications that may wait to be written to the outbox before `enqueue` refuses
    /// more (default 1024).
    pub queue_capacity: usize,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        NotificationSettings {
            account_id: None,
            region: None,
            dashboard_url: None,
            smtp: None,
            webhooks: Vec::new(),
            mute_rules: Vec::new(),
            retry: RetrySettings::default(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
        }
    }
}

impl NotificationSettings {
    /// The webhook named `name`.
    pub fn webhook(&self, name: &str) -> Option<&WebhookSettings> {
        self.webhooks.iter().find(|w| w.name == name)
    }

    /// The message settings: the configured account and region, else `aws_region` (the
    /// shell passes `AWS_REGION`), else the defaults.
    pub fn message_settings(&self, aws_region: Option<&str>) -> MessageSettings {
        let region = self
            .region
            .clone()
            .or_else(|| {
                aws_region
                    .filter(|r| message::check_region(r).is_ok())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| message::DEFAULT_REGION.into());
        MessageSettings {
            account_id: self
                .account_id
                .clone()
                .unwrap_or_else(|| message::DEFAULT_ACCOUNT_ID.into()),
            region,
            dashboard_url: self.dashboard_url.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
