//! Notification settings: the `notifications:` section of the configuration files (SMTP,
//! named webhooks, mute rules, retries, the account and region shown in messages), its
//! validation with positions ([`validate_notifications`]), mute-rule evaluation
//! ([`muted_by`]), and the notifications to send for an alarm action
//! ([`build_notification`]), as values.
//!
//! ```yaml
//! notifications:
//!   account_id: "123456789012"          # default 123456789012
//!   region: eu-west-1                   # default: AWS_REGION, else us-east-1
//!   dashboard_url: http://thermostat.internal:8080
//!   smtp: {host: 127.0.0.1, port: 25, from: thermostat@example.com, starttls: none}
//!   webhooks:
//!     - {name: oncall-slack, url: "https://hooks.example/T000", format: slack, secret_env: SLACK_HOOK_SECRET}
//!   mute_rules:
//!     - {name: nightly-deploy, alarms: ["web-*"], schedule: "0 2 * * *", duration_seconds: 1800, time_zone: UTC}
//!   retry: {initial_backoff_seconds: 1, max_backoff_seconds: 30, give_up_after_seconds: 86400}
//! ```
//!
//! Pure: secrets are named by environment variable (`password_env`, `secret_env`,
//! `routing_key_env`) and looked up by the shell through the `env` function it passes in;
//! `now` is always a parameter; time zones come from the database compiled into `jiff`.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use croner::Cron;
use croner::errors::CronError;
use croner::parser::{CronParser, Seconds, Year};
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use marked_yaml::Node;
use serde::{Deserialize, Serialize};
use thermostat_metrics::Timestamp;

use crate::action::Action;
use crate::error::{ConfigError, ConfigErrors, Pos, Rule};
use crate::history::AlarmType;
use crate::message::{self, AlarmDefinition, AlarmEvent, MessageSettings};
use crate::model::{AlarmSet, StateValue};
use crate::raw::{pos_of, unknown_field_message};
use crate::state::ActionInvocation;
use crate::timefmt;

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
    /// The environment variable holding the password (with `username`).
    pub password_env: Option<String>,
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
    /// The environment variable holding the HMAC-SHA256 signing secret: requests then
    /// carry `X-Thermostat-Signature: sha256=<hex>`.
    pub secret_env: Option<String>,
    /// The environment variable holding the PagerDuty routing (integration) key; required
    /// for `format: pagerduty`.
    pub routing_key_env: Option<String>,
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

// === Mute rules ===

/// The first mute rule whose window is open at `now` for `alarm_name`.
pub fn muted_by<'a>(
    settings: &'a NotificationSettings,
    alarm_name: &str,
    now: Timestamp,
) -> Option<&'a MuteRule> {
    settings
        .mute_rules
        .iter()
        .find(|r| r.matches_alarm(alarm_name) && r.is_active(now))
}

impl MuteRule {
    /// Whether one of the patterns matches the alarm (or, for an instance
    /// `name[Dim=value]`, its alarm name).
    pub fn matches_alarm(&self, alarm_name: &str) -> bool {
        let base = alarm_name.split_once('[').map_or(alarm_name, |(b, _)| b);
        self.alarms
            .iter()
            .any(|p| glob_match(p, alarm_name) || glob_match(p, base))
    }

    /// Whether a window of this rule is open at `now`: within `[starts_at, ends_at)`, and,
    /// with a schedule, less than `duration` after a time the schedule fires.
    pub fn is_active(&self, now: Timestamp) -> bool {
        if self.starts_at.is_some_and(|s| now < s) || self.ends_at.is_some_and(|e| now >= e) {
            return false;
        }
        let Some(schedule) = &self.schedule else {
            return true;
        };
        let Ok(tz) = time_zone(&self.time_zone) else {
            return false;
        };
        let window_ms = i64::try_from(self.duration.as_millis()).unwrap_or(i64::MAX);
        schedule
            .last_fire(&tz, now, now.sub_millis(window_ms))
            .is_some()
    }
}

/// Looks up an IANA time zone (`UTC`, `Europe/Berlin`) in the compiled-in database.
///
/// # Errors
/// The zone is unknown.
pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    if name == "UTC" {
        return Ok(TimeZone::UTC);
    }
    TimeZone::get(name).map_err(|_| {
        format!("must be an IANA time zone such as UTC or Europe/Berlin (got {name:?})")
    })
}

/// Matches `text` against a pattern where `*` is any run of characters and `?` one.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A 5-field cron schedule (`minute hour day-of-month month day-of-week`), as in crontab:
/// `*`, lists `1,2`, ranges `1-5`, steps `*/15` and `10-50/10`, month and weekday names
/// (`JAN`, `MON-FRI`), Sunday as 0 or 7, `?` as `*`, and the macros `@hourly`, `@daily`,
/// `@weekly`, `@monthly`, `@yearly`. When both day fields are restricted, a day matches
/// either (Vixie cron).
///
/// Parsed and evaluated by `croner`, as the scaler's scheduled actions are
/// (`thermostat_scaler::schedule`); `croner` also accepts its extensions (`L`, `W`, `#`
/// and a leading `+` in the day fields, names in any field).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CronSchedule {
    text: String,
    cron: Cron,
    /// Whether the schedule fires at all (`0 0 31 2 *` never does): `croner` would search
    /// back to year 1 on every call to find that out.
    fires: bool,
}

impl TryFrom<String> for CronSchedule {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<CronSchedule> for String {
    fn from(c: CronSchedule) -> String {
        c.text
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The five fields, in order, with their numeric ranges, for error messages.
const CRON_FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

/// `croner`'s parser for mute-rule schedules. `sloppy_ranges` keeps `5/20` (from 5 to the
/// maximum, every 20). `dom_and_dow` is set when a day field starts with `*` or `?`: as in
/// crontab such a field (`*/2`) does not restrict the day, so a day must match both fields,
/// where `croner` counts only a bare `*` as unrestricted.
fn cron_parser(dom_and_dow: bool) -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .sloppy_ranges(true)
        .dom_and_dow(dom_and_dow)
        .build()
}

/// The message for a schedule `croner` refuses, naming the field and, when one item of it
/// is refused alone, the item: the first that is refused with every other field `*`.
fn cron_error(parser: &CronParser, fields: &[&str], error: &CronError, text: &str) -> String {
    let refused = |i: usize, item: &str| {
        let probe: Vec<&str> = (0..fields.len())
            .map(|j| if i == j { item } else { "*" })
            .collect();
        parser.parse(&probe.join(" ")).err()
    };
    let detail = |e: &CronError| match e {
        CronError::ComponentError(m)
        | CronError::InvalidPattern(m)
        | CronError::IllegalCharacters(m) => m.clone(),
        other => other.to_string(),
    };
    let Some((i, (name, min, max))) = (0..fields.len())
        .zip(CRON_FIELDS)
        .find(|(i, _)| refused(*i, fields[*i]).is_some())
    else {
        return format!(
            "must be a valid cron schedule: {} (got {text:?})",
            detail(error)
        );
    };
    let what = match fields[i]
        .split(',')
        .find_map(|item| refused(i, item).map(|e| (item, e)))
    {
        Some((item, _)) if item.parse::<u32>().is_ok() => {
            format!("{item:?} is not a value between {min} and {max}")
        }
        Some((item, e)) => format!("{item:?}: {}", detail(&e)),
        None => detail(error),
    };
    format!("must be a valid cron schedule: {name}: {what} (got {text:?})")
}

impl FromStr for CronSchedule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let text = s.trim();
        let expanded = match text {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        // `?` is `*` in every field (croner takes it in the day fields only).
        let expanded = expanded.replace('?', "*");
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [_, _, day_of_month, _, day_of_week] = fields.as_slice() else {
            return Err(format!(
                "must be a cron schedule with 5 fields: minute hour day-of-month month day-of-week (got {text:?})"
            ));
        };
        let starred = |f: &str| f.starts_with('*');
        let parser = cron_parser(starred(day_of_month) || starred(day_of_week));
        let cron = parser
            .parse(&expanded)
            .map_err(|e| cron_error(&parser, &fields, &e, text))?;
        let fires = cron
            .find_next_occurrence(&jiff::Timestamp::UNIX_EPOCH.to_zoned(TimeZone::UTC), false)
            .is_ok();
        Ok(CronSchedule {
            text: text.to_owned(),
            cron,
            fires,
        })
    }
}

impl CronSchedule {
    /// Whether the schedule fires at the (civil) minute of `dt`.
    pub fn matches(&self, dt: DateTime) -> bool {
        let Ok(minute) = DateTime::new(
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            0,
            0,
        )
        .and_then(|m| m.to_zoned(TimeZone::UTC)) else {
            return false;
        };
        self.cron.is_time_matching(&minute).unwrap_or(false)
    }

    /// The latest time at or before `now` and after `after` at which the schedule fires in
    /// `tz`. Daylight-saving changes are handled by `croner`, as for scheduled actions: a
    /// time in a gap fires at the first instant after the gap, a time in a repeated hour
    /// once (a fixed time) or on both passes (a step or wildcard in the minute or hour).
    pub fn last_fire(&self, tz: &TimeZone, now: Timestamp, after: Timestamp) -> Option<Timestamp> {
        if !self.fires {
            return None;
        }
        let now = jiff::Timestamp::from_millisecond(now.as_millis())
            .ok()?
            .to_zoned(tz.clone());
        let fire = self.cron.find_previous_occurrence(&now, true).ok()?;
        let at = Timestamp::from_millis(fire.timestamp().as_millisecond());
        (at > after).then_some(at)
    }
}

// === Notifications as values ===

/// How a notification is delivered, with its rendered payload. The payload is rendered
/// once, when the notification is built, and re-sent byte-identical on every attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Delivery {
    /// SNS `Publish` with `Subject` and `Message`.
    Sns {
        /// The topic.
        topic_arn: String,
        /// The topic's region (from the ARN).
        region: String,
        /// `Subject`.
        subject: String,
        /// `Message` (CloudWatch's JSON).
        message: String,
    },
    /// An e-mail over SMTP.
    Email {
        /// The recipient.
        to: String,
        /// The subject.
        subject: String,
        /// The plain-text body.
        body: String,
    },
    /// An HTTP POST of a JSON body.
    Webhook {
        /// The named webhook, for `webhook:<name>` actions (its secret signs the body).
        webhook: Option<String>,
        /// The URL.
        url: String,
        /// The body's format.
        format: WebhookFormat,
        /// The JSON body.
        body: String,
    },
}

impl Delivery {
    /// `sns`, `email` or `webhook`.
    pub fn kind(&self) -> &'static str {
        match self {
            Delivery::Sns { .. } => "sns",
            Delivery::Email { .. } => "email",
            Delivery::Webhook { .. } => "webhook",
        }
    }
}

/// One notification to deliver for one action of one alarm transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Identifies the transition and action: `<alarm>|<transition ms>|<state>|<action>`
    /// (plus `|repeat@<ms>` for re-notifications). Receivers may de-duplicate on it.
    pub key: String,
    /// The alarm (or instance) name.
    pub alarm_name: String,
    /// Metric or composite.
    pub alarm_type: AlarmType,
    /// The action.
    pub action: Action,
    /// The state the alarm entered.
    pub state: StateValue,
    /// When it entered it.
    pub transition_time: Timestamp,
    /// A re-notification while the alarm stays in the state.
    pub repeat: bool,
    /// The mute rule holding it back, if any: recorded, not sent.
    pub muted_by: Option<String>,
    /// What to send.
    pub delivery: Delivery,
}

/// The webhook name of a `webhook:<name>` action.
///
/// (Works on the action's configuration string, so it keeps working whatever variant
/// `action::parse` gives that form.)
pub fn named_webhook(action: &Action) -> Option<String> {
    action
        .as_config_str()
        .strip_prefix(NAMED_WEBHOOK_PREFIX)
        .map(str::to_owned)
}

/// The notification for one action of a transition, or `Ok(None)` for actions that are not
/// notifications (Auto Scaling policies). Mute rules are applied at `now`.
///
/// `env` looks up environment variables (the PagerDuty routing key); the shell passes
/// `|k| std::env::var(k).ok()`.
///
/// # Errors
/// The action cannot be delivered with these settings: a `mailto:` action without
/// `smtp`, an unknown `webhook:<name>`, or a PagerDuty routing key that is not set.
pub fn build_notification(
    settings: &NotificationSettings,
    messages: &MessageSettings,
    event: &AlarmEvent<'_>,
    invocation: &ActionInvocation,
    now: Timestamp,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Notification>, String> {
    let t = event.transition;
    let action = &invocation.action;
    let delivery = if let Some(name) = named_webhook(action) {
        let w = settings
            .webhook(&name)
            .ok_or_else(|| format!("no webhook named {name:?} in notifications.webhooks"))?;
        let body = match w.format {
            WebhookFormat::Cloudwatch => message::render_message(messages, event),
            WebhookFormat::Slack => message::render_slack(messages, event),
            WebhookFormat::Pagerduty => {
                let var = w.routing_key_env.as_deref().unwrap_or_default();
                let key = env(var).filter(|k| !k.is_empty()).ok_or_else(|| {
                    format!(
                        "webhook {name:?}: the routing key variable {var} is not set in the environment"
                    )
                })?;
                message::render_pagerduty(messages, event, &key)
            }
        };
        Delivery::Webhook {
            webhook: Some(name),
            url: w.url.clone(),
            format: w.format,
            body,
        }
    } else {
        match action {
            Action::ScalingPolicy { .. } | Action::ScalingPolicyArn { .. } => return Ok(None),
            Action::SnsTopic { arn, region, .. } => Delivery::Sns {
                topic_arn: arn.clone(),
                region: region.clone(),
                subject: message::render_subject(messages, event.name, t.new_state),
                message: message::render_message(messages, event),
            },
            Action::Email { address } => {
                if settings.smtp.is_none() {
                    return Err(format!(
                        "cannot send to {address}: mailto: actions need notifications.smtp"
                    ));
                }
                let e = message::render_email(messages, event);
                Delivery::Email {
                    to: address.clone(),
                    subject: e.subject,
                    body: e.body,
                }
            }
            Action::NamedWebhook { name } => {
                return Err(format!(
                    "no webhook named {name:?} in notifications.webhooks"
                ));
            }
            Action::Webhook { url } => Delivery::Webhook {
                webhook: None,
                url: url.clone(),
                format: WebhookFormat::Cloudwatch,
                body: message::render_message(messages, event),
            },
        }
    };
    let mut key = format!(
        "{}|{}|{}|{}",
        event.name,
        t.timestamp.as_millis(),
        t.new_state,
        action.as_config_str()
    );
    if invocation.repeat {
        key.push_str(&format!("|repeat@{}", now.as_millis()));
    }
    Ok(Some(Notification {
        key,
        alarm_name: event.name.to_owned(),
        alarm_type: match event.definition {
            AlarmDefinition::Metric(_) => AlarmType::MetricAlarm,
            AlarmDefinition::Composite(_) => AlarmType::CompositeAlarm,
        },
        action: action.clone(),
        state: t.new_state,
        transition_time: t.timestamp,
        repeat: invocation.repeat,
        muted_by: muted_by(settings, event.name, now).map(|r| r.name.clone()),
        delivery,
    }))
}

// === Validation ===

/// Checks an environment variable name (`[A-Za-z_][A-Za-z0-9_]*`).
fn check_env_name(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be an environment variable name such as SMTP_PASSWORD (got {s:?})"
        ))
    }
}

fn check_name(s: &str) -> Result<(), String> {
    if !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Ok(())
    } else {
        Err(format!(
            "must be 1 to 64 letters, digits, '-', '_' or '.' (got {s:?})"
        ))
    }
}

fn check_url(s: &str) -> Result<(), String> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(r)
            if !r.split(['/', '?', '#']).next().unwrap_or("").is_empty()
                && !s.chars().any(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "must be an http:// or https:// URL with a host (got {s:?})"
        )),
    }
}

struct Cx<'a> {
    file: &'a str,
    errors: &'a mut Vec<ConfigError>,
}

type Field<'n> = (&'n Node, Pos);

impl Cx<'_> {
    fn push(&mut self, pos: Pos, path: &str, rule: Rule, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            pos,
            path: path.to_owned(),
            rule,
            message: message.into(),
        });
    }

    /// The fields of a map, reporting keys not in `allowed` (and a non-map).
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        allowed: &[&str],
    ) -> Option<HashMap<&'n str, Field<'n>>> {
        let Some(map) = node.as_mapping() else {
            self.push(
                pos_of(node.span()),
                path,
                Rule::Syntax,
                "must be a map of fields",
            );
            return None;
        };
        let mut out = HashMap::new();
        for (k, v) in map.iter() {
            let key = k.as_str();
            if allowed.contains(&key) {
                out.insert(key, (v, pos_of(k.span())));
            } else {
                self.push(
                    pos_of(k.span()),
                    &format!("{path}.{key}"),
                    Rule::UnknownField,
                    unknown_field_message(key, allowed),
                );
            }
        }
        Some(out)
    }

    fn scalar<'n>(&mut self, node: &'n Node, path: &str) -> Option<(&'n str, Pos)> {
        match node {
            Node::Scalar(s) => Some((s.as_str().trim(), pos_of(s.span()))),
            other => {
                self.push(
                    pos_of(other.span()),
                    path,
                    Rule::Syntax,
                    "must be a single value",
                );
                None
            }
        }
    }

    fn text(
        &mut self,
        f: &HashMap<&str, Field<'_>>,
        key: &str,
        path: &str,
    ) -> Option<(String, Pos)> {
        let (node, _) = f.get(key)?;
        let (s, pos) = self.scalar(node, &format!("{path}.{key}"))?;
        if matches!(s, "~" | "null" | "") {
            return None;
        }
        Some((s.to_owned(), pos))
    }

    fn required(
        &mut self,
        f: &HashMap<&str, Field<'_>>,
        key: &str,
        path: &str,
        entry: Pos,
    ) -> Option<(String, Pos)> {
        let v = self.text(f, key, path);
        if v.is_none() {
            self.push(
                entry,
                &format!("{path}.{key}"),
                Rule::Required,
                "is required",
            );
        }
        v
    }

    fn checked<T>(
        &mut self,
        v: Option<(String, Pos)>,
        path: &str,
        rule: Rule,
        check: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let (s, pos) = v?;
        match check(&s) {
            Ok(t) => Some(t),
            Err(e) => {
                self.push(pos, path, rule, e);
                None
            }
        }
    }

    fn seconds(
        &mut self,
        f: &HashMap<&str, Field<'_>>,
        key: &str,
        path: &str,
        min: f64,
        max: f64,
    ) -> Option<Duration> {
        let v = self.text(f, key, path);
        self.checked(v, &format!("{path}.{key}"), Rule::Number, |s| {
            match s.parse::<f64>() {
                Ok(x) if x.is_finite() && x >= min && x <= max => Ok(Duration::from_secs_f64(x)),
                _ => Err(format!(
                    "must be a number of seconds between {min} and {max} (got {s})"
                )),
            }
        })
    }

    fn list<'n>(&mut self, node: &'n Node, path: &str) -> &'n [Node] {
        match node {
            Node::Sequence(s) => s,
            Node::Scalar(s) if matches!(s.as_str(), "" | "~" | "null") => &[],
            other => {
                self.push(pos_of(other.span()), path, Rule::Syntax, "must be a list");
                &[]
            }
        }
    }
}

/// What one section's settings were set from, to report a second definition.
#[derive(Default)]
struct Seen {
    singles: HashMap<&'static str, (String, Pos)>,
    webhooks: HashMap<String, (String, Pos)>,
    mute_rules: HashMap<String, (String, Pos)>,
}

const SECTION_KEYS: &[&str] = &[
    "account_id",
    "region",
    "dashboard_url",
    "smtp",
    "webhooks",
    "mute_rules",
    "retry",
    "queue_capacity",
];
const SMTP_KEYS: &[&str] = &[
    "host",
    "port",
    "from",
    "starttls",
    "username",
    "password_env",
    "timeout_seconds",
];
const WEBHOOK_KEYS: &[&str] = &[
    "name",
    "url",
    "format",
    "secret_env",
    "routing_key_env",
    "timeout_seconds",
];
const MUTE_KEYS: &[&str] = &[
    "name",
    "alarms",
    "schedule",
    "duration_seconds",
    "time_zone",
    "starts_at",
    "ends_at",
];
const RETRY_KEYS: &[&str] = &[
    "initial_backoff_seconds",
    "max_backoff_seconds",
    "give_up_after_seconds",
];
const ACTION_KEYS: &[&str] = &["alarm_actions", "ok_actions", "insufficient_data_actions"];

/// Parses and validates the `notifications:` sections of a set of configuration files,
/// given as `(file name, text)` pairs (the same files given to [`crate::validate`], whose
/// result is `alarms`), merging them: `webhooks` and `mute_rules` are concatenated (names
/// unique across files), every other setting may be given in one file only.
///
/// Cross-checks: every `webhook:<name>` action names a webhook of `webhooks`, `mailto:`
/// actions need `smtp`, and a mute-rule pattern without wildcards names an existing alarm
/// (skipped when `alarms` is empty, as when the alarms themselves are invalid).
///
/// # Errors
/// Every problem found, as `file:line:column: path: message`, sorted by file and position.
pub fn validate_notifications<P: AsRef<str>, T: AsRef<str>>(
    files: &[(P, T)],
    alarms: &AlarmSet,
) -> Result<NotificationSettings, ConfigErrors> {
    let mut errors = Vec::new();
    let mut out = NotificationSettings::default();
    let mut seen = Seen::default();
    let mut roots = Vec::new();
    for (file, text) in files {
        let (file, text) = (file.as_ref(), text.as_ref());
        if text.trim().is_empty() {
            continue;
        }
        let Ok(root) = crate::raw::parse_yaml(text) else {
            // `crate::validate` reports syntax errors; nothing more to say here.
            continue;
        };
        let mut cx = Cx {
            file,
            errors: &mut errors,
        };
        if let Some(map) = root.as_mapping()
            && let Some(section) = map.get_node("notifications")
        {
            section_into(&mut cx, section, &mut out, &mut seen);
        }
        roots.push((file, root));
    }
    // Cross-checks against the actions, with their positions.
    for (file, root) in &roots {
        let mut cx = Cx {
            file,
            errors: &mut errors,
        };
        check_actions(&mut cx, root, &out);
    }
    for (file, rule_pos, rule) in seen.mute_rules.iter().filter_map(|(name, (file, pos))| {
        out.mute_rules
            .iter()
            .find(|r| &r.name == name)
            .map(|r| (file, *pos, r))
    }) {
        for (i, p) in rule.alarms.iter().enumerate() {
            // With no alarms at all (the caller passes an empty set when the alarms are
            // invalid) this check would only add noise.
            let no_alarms = alarms.alarms.is_empty() && alarms.composites.is_empty();
            let exact = !(no_alarms || p.contains(['*', '?']));
            if exact && alarms.alarm(p).is_none() && alarms.composite(p).is_none() {
                errors.push(ConfigError {
                    file: file.clone(),
                    pos: rule_pos,
                    path: format!("notifications.mute_rules.{}.alarms[{i}]", rule.name),
                    rule: Rule::Consistency,
                    message: format!(
                        "names no alarm (got {p:?}); use an alarm name or a pattern with * or ?"
                    ),
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        let order: HashMap<&str, usize> = files
            .iter()
            .enumerate()
            .map(|(i, (p, _))| (p.as_ref(), i))
            .collect();
        errors.sort_by_key(|e| (order.get(e.file.as_str()).copied(), e.pos));
        errors.dedup();
        Err(ConfigErrors(errors))
    }
}

fn once(cx: &mut Cx<'_>, seen: &mut Seen, key: &'static str, pos: Pos, path: &str) -> bool {
    if let Some((file, first)) = seen.singles.get(key) {
        cx.push(
            pos,
            path,
            Rule::Duplicate,
            format!(
                "is already set at {file}:{}:{}; give each setting in one file only",
                first.line, first.column
            ),
        );
        return false;
    }
    seen.singles.insert(key, (cx.file.to_owned(), pos));
    true
}

fn section_into(cx: &mut Cx<'_>, node: &Node, out: &mut NotificationSettings, seen: &mut Seen) {
    const P: &str = "notifications";
    if matches!(node, Node::Scalar(s) if matches!(s.as_str(), "" | "~" | "null")) {
        return;
    }
    let Some(f) = cx.fields(node, P, SECTION_KEYS) else {
        return;
    };
    for key in ["account_id", "region", "dashboard_url", "queue_capacity"] {
        let Some((_, kpos)) = f.get(key) else {
            continue;
        };
        if !once(cx, seen, key, *kpos, &format!("{P}.{key}")) {
            continue;
        }
        let v = cx.text(&f, key, P);
        let path = format!("{P}.{key}");
        match key {
            "account_id" => {
                out.account_id = cx.checked(v, &path, Rule::Name, |s| {
                    message::check_account_id(s).map(|()| s.to_owned())
                });
            }
            "region" => {
                out.region = cx.checked(v, &path, Rule::Name, |s| {
                    message::check_region(s).map(|()| s.to_owned())
                });
            }
            "dashboard_url" => {
                out.dashboard_url = cx.checked(v, &path, Rule::Syntax, |s| {
                    check_url(s).map(|()| s.trim_end_matches('/').to_owned())
                });
            }
            _ => {
                if let Some(n) = cx.checked(v, &path, Rule::Number, |s| match s.parse::<usize>() {
                    Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
                    _ => Err(format!("must be between 1 and 1000000 (got {s})")),
                }) {
                    out.queue_capacity = n;
                }
            }
        }
    }
    if let Some((node, kpos)) = f.get("smtp")
        && once(cx, seen, "smtp", *kpos, &format!("{P}.smtp"))
    {
        out.smtp = smtp(cx, node, *kpos);
    }
    if let Some((node, kpos)) = f.get("retry")
        && once(cx, seen, "retry", *kpos, &format!("{P}.retry"))
        && let Some(r) = retry(cx, node)
    {
        out.retry = r;
    }
    if let Some((node, _)) = f.get("webhooks") {
        for (i, item) in cx.list(node, &format!("{P}.webhooks")).iter().enumerate() {
            let pos = pos_of(item.span());
            if let Some(w) = webhook(cx, item, i) {
                let path = format!("{P}.webhooks.{}", w.name);
                if let Some((file, first)) = seen.webhooks.get(&w.name) {
                    cx.push(
                        pos,
                        &path,
                        Rule::Duplicate,
                        format!(
                            "webhook names must be unique; {:?} is already defined at {file}:{}:{}",
                            w.name, first.line, first.column
                        ),
                    );
                } else {
                    seen.webhooks
                        .insert(w.name.clone(), (cx.file.to_owned(), pos));
                    out.webhooks.push(w);
                }
            }
        }
    }
    if let Some((node, _)) = f.get("mute_rules") {
        for (i, item) in cx.list(node, &format!("{P}.mute_rules")).iter().enumerate() {
            let pos = pos_of(item.span());
            if let Some(r) = mute_rule(cx, item, i) {
                let path = format!("{P}.mute_rules.{}", r.name);
                if let Some((file, first)) = seen.mute_rules.get(&r.name) {
                    cx.push(
                        pos,
                        &path,
                        Rule::Duplicate,
                        format!(
                            "mute rule names must be unique; {:?} is already defined at {file}:{}:{}",
                            r.name, first.line, first.column
                        ),
                    );
                } else {
                    seen.mute_rules
                        .insert(r.name.clone(), (cx.file.to_owned(), pos));
                    out.mute_rules.push(r);
                }
            }
        }
    }
}

fn smtp(cx: &mut Cx<'_>, node: &Node, entry: Pos) -> Option<SmtpSettings> {
    const P: &str = "notifications.smtp";
    let entry = if node.as_mapping().is_some() {
        pos_of(node.span())
    } else {
        entry
    };
    let f = cx.fields(node, P, SMTP_KEYS)?;
    let host = cx.required(&f, "host", P, entry);
    let host = cx.checked(host, &format!("{P}.host"), Rule::Syntax, |s| {
        if s.chars().any(|c| c.is_whitespace() || c == '/') {
            Err(format!("must be a host name or address (got {s:?})"))
        } else {
            Ok(s.to_owned())
        }
    });
    let port = cx.text(&f, "port", P);
    let port = match port {
        None => Some(25),
        v => cx.checked(v, &format!("{P}.port"), Rule::Number, |s| {
            match s.parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => Err(format!("must be a port between 1 and 65535 (got {s})")),
            }
        }),
    };
    let from = cx.required(&f, "from", P, entry);
    let from = cx.checked(from, &format!("{P}.from"), Rule::Syntax, |s| {
        match s.rsplit_once('@') {
            Some((l, d)) if !l.is_empty() && !d.is_empty() && !s.contains(char::is_whitespace) => {
                Ok(s.to_owned())
            }
            _ => Err(format!(
                "must be an e-mail address such as thermostat@example.com (got {s:?})"
            )),
        }
    });
    let starttls = match cx.text(&f, "starttls", P) {
        None => Some(StartTls::default()),
        v => cx.checked(v, &format!("{P}.starttls"), Rule::Enum, str::parse),
    };
    let username = cx.text(&f, "username", P);
    let password_env = cx.text(&f, "password_env", P);
    let password_pos = password_env.as_ref().map(|(_, p)| *p);
    let password_env = cx.checked(
        password_env,
        &format!("{P}.password_env"),
        Rule::Name,
        |s| check_env_name(s).map(|()| s.to_owned()),
    );
    match (&username, password_pos) {
        (Some((_, p)), None) => cx.push(
            *p,
            &format!("{P}.password_env"),
            Rule::Required,
            "is required with username (the environment variable holding the password)",
        ),
        (None, Some(p)) => cx.push(
            p,
            &format!("{P}.username"),
            Rule::Required,
            "is required with password_env",
        ),
        _ => {}
    }
    let timeout = match f.get("timeout_seconds") {
        None => Some(Duration::from_secs(10)),
        Some(_) => cx.seconds(&f, "timeout_seconds", P, 0.001, 3600.0),
    };
    Some(SmtpSettings {
        host: host?,
        port: port?,
        from: from?,
        starttls: starttls?,
        username: username.map(|(u, _)| u),
        password_env,
        timeout: timeout?,
    })
}

fn retry(cx: &mut Cx<'_>, node: &Node) -> Option<RetrySettings> {
    const P: &str = "notifications.retry";
    let f = cx.fields(node, P, RETRY_KEYS)?;
    let d = RetrySettings::default();
    let initial = match f.get("initial_backoff_seconds") {
        None => Some(d.initial_backoff),
        Some(_) => cx.seconds(&f, "initial_backoff_seconds", P, 0.001, 86_400.0),
    };
    let max = match f.get("max_backoff_seconds") {
        None => Some(d.max_backoff),
        Some(_) => cx.seconds(&f, "max_backoff_seconds", P, 0.001, 86_400.0),
    };
    let give_up = match f.get("give_up_after_seconds") {
        None => Some(d.give_up_after),
        Some(_) => cx
            .seconds(&f, "give_up_after_seconds", P, 0.0, 366.0 * 86_400.0)
            .map(|g| (!g.is_zero()).then_some(g)),
    };
    let (initial, max, give_up) = (initial?, max?, give_up?);
    if max < initial {
        let pos = f
            .get("max_backoff_seconds")
            .map_or(Pos::default(), |(_, p)| *p);
        cx.push(
            pos,
            &format!("{P}.max_backoff_seconds"),
            Rule::Consistency,
            format!(
                "must be at least initial_backoff_seconds ({} s) (got {} s)",
                initial.as_secs_f64(),
                max.as_secs_f64()
            ),
        );
        return None;
    }
    Some(RetrySettings {
        initial_backoff: initial,
        max_backoff: max,
        give_up_after: give_up,
    })
}

fn webhook(cx: &mut Cx<'_>, node: &Node, i: usize) -> Option<WebhookSettings> {
    let entry = pos_of(node.span());
    let f = cx.fields(node, &format!("notifications.webhooks[{i}]"), WEBHOOK_KEYS)?;
    let name = cx.required(&f, "name", &format!("notifications.webhooks[{i}]"), entry);
    let name = cx.checked(
        name,
        &format!("notifications.webhooks[{i}].name"),
        Rule::Name,
        |s| check_name(s).map(|()| s.to_owned()),
    );
    let p = name.as_ref().map_or_else(
        || format!("notifications.webhooks[{i}]"),
        |n| format!("notifications.webhooks.{n}"),
    );
    let url = cx.required(&f, "url", &p, entry);
    let url = cx.checked(url, &format!("{p}.url"), Rule::Syntax, |s| {
        check_url(s).map(|()| s.to_owned())
    });
    let format = match cx.text(&f, "format", &p) {
        None => Some(WebhookFormat::default()),
        v => cx.checked(v, &format!("{p}.format"), Rule::Enum, str::parse),
    };
    let env = |cx: &mut Cx<'_>, key: &str| {
        let v = cx.text(&f, key, &p);
        cx.checked(v, &format!("{p}.{key}"), Rule::Name, |s| {
            check_env_name(s).map(|()| s.to_owned())
        })
    };
    let secret_env = env(cx, "secret_env");
    let routing_key_env = env(cx, "routing_key_env");
    match (format, f.get("routing_key_env")) {
        (Some(WebhookFormat::Pagerduty), None) => cx.push(
            entry,
            &format!("{p}.routing_key_env"),
            Rule::Required,
            "is required with format: pagerduty (the environment variable holding the integration key)",
        ),
        (Some(fmt), Some((_, kpos))) if fmt != WebhookFormat::Pagerduty => cx.push(
            *kpos,
            &format!("{p}.routing_key_env"),
            Rule::Consistency,
            format!("is only used with format: pagerduty (the format is {})", fmt.as_str()),
        ),
        _ => {}
    }
    let timeout = match f.get("timeout_seconds") {
        None => Some(Duration::from_secs(10)),
        Some(_) => cx.seconds(&f, "timeout_seconds", &p, 0.001, 3600.0),
    };
    Some(WebhookSettings {
        name: name?,
        url: url?,
        format: format?,
        secret_env,
        routing_key_env,
        timeout: timeout?,
    })
}

fn mute_rule(cx: &mut Cx<'_>, node: &Node, i: usize) -> Option<MuteRule> {
    let entry = pos_of(node.span());
    let f = cx.fields(node, &format!("notifications.mute_rules[{i}]"), MUTE_KEYS)?;
    let name = cx.required(&f, "name", &format!("notifications.mute_rules[{i}]"), entry);
    let name = cx.checked(
        name,
        &format!("notifications.mute_rules[{i}].name"),
        Rule::Name,
        |s| check_name(s).map(|()| s.to_owned()),
    );
    let p = name.as_ref().map_or_else(
        || format!("notifications.mute_rules[{i}]"),
        |n| format!("notifications.mute_rules.{n}"),
    );
    let mut alarms = Vec::new();
    let mut alarms_ok = true;
    match f.get("alarms") {
        None => {
            cx.push(entry, &format!("{p}.alarms"), Rule::Required, "is required");
            alarms_ok = false;
        }
        Some((node, kpos)) => {
            let items = cx.list(node, &format!("{p}.alarms"));
            if items.is_empty() || items.len() > MAX_MUTE_RULE_ALARMS {
                cx.push(
                    *kpos,
                    &format!("{p}.alarms"),
                    Rule::Consistency,
                    format!(
                        "must list 1 to {MAX_MUTE_RULE_ALARMS} alarm names or patterns (got {})",
                        items.len()
                    ),
                );
                alarms_ok = false;
            }
            for (j, item) in items.iter().enumerate() {
                let path = format!("{p}.alarms[{j}]");
                match cx.scalar(item, &path) {
                    Some((s, _)) if !s.is_empty() => alarms.push(s.to_owned()),
                    Some((_, pos)) => {
                        cx.push(pos, &path, Rule::Name, "must not be empty");
                        alarms_ok = false;
                    }
                    None => alarms_ok = false,
                }
            }
        }
    }
    let schedule_text = cx.text(&f, "schedule", &p);
    let has_schedule = schedule_text.is_some();
    let schedule = cx.checked(
        schedule_text,
        &format!("{p}.schedule"),
        Rule::Syntax,
        str::parse,
    );
    let time_zone = match cx.text(&f, "time_zone", &p) {
        None => Some("UTC".to_owned()),
        v => cx.checked(v, &format!("{p}.time_zone"), Rule::Enum, |s| {
            time_zone(s).map(|_| s.to_owned())
        }),
    };
    let time = |cx: &mut Cx<'_>, key: &str| {
        let v = cx.text(&f, key, &p);
        let pos = v.as_ref().map(|(_, p)| *p);
        let t = cx.checked(v, &format!("{p}.{key}"), Rule::Syntax, |s| {
            timefmt::parse_rfc3339(s).ok_or_else(|| {
                format!("must be an RFC 3339 time such as 2024-06-01T02:00:00Z (got {s:?})")
            })
        });
        (t, pos)
    };
    let (starts_at, _) = time(cx, "starts_at");
    let (ends_at, ends_pos) = time(cx, "ends_at");
    if let (Some(s), Some(e), Some(pos)) = (starts_at, ends_at, ends_pos)
        && e <= s
    {
        cx.push(
            pos,
            &format!("{p}.ends_at"),
            Rule::Consistency,
            "must be after starts_at",
        );
    }
    let duration = if has_schedule {
        if f.contains_key("duration_seconds") {
            cx.seconds(
                &f,
                "duration_seconds",
                &p,
                1.0,
                MAX_MUTE_DURATION_SECONDS as f64,
            )
        } else {
            cx.push(
                entry,
                &format!("{p}.duration_seconds"),
                Rule::Required,
                "is required with schedule (how long each window stays open)",
            );
            None
        }
    } else {
        if let Some((_, kpos)) = f.get("duration_seconds") {
            cx.push(
                *kpos,
                &format!("{p}.duration_seconds"),
                Rule::Consistency,
                "is only used with schedule; a one-time window runs from starts_at to ends_at",
            );
        }
        if !(f.contains_key("starts_at") && f.contains_key("ends_at")) {
            cx.push(
                entry,
                &format!("{p}.schedule"),
                Rule::Required,
                "is required unless starts_at and ends_at give a one-time window",
            );
        }
        Some(Duration::ZERO)
    };
    if !alarms_ok {
        return None;
    }
    Some(MuteRule {
        name: name?,
        alarms,
        schedule: if has_schedule { Some(schedule?) } else { None },
        duration: duration?,
        time_zone: time_zone?,
        starts_at,
        ends_at,
    })
}

/// Checks the `webhook:` and `mailto:` actions of every alarm against the settings.
fn check_actions(cx: &mut Cx<'_>, root: &Node, settings: &NotificationSettings) {
    let Some(map) = root.as_mapping() else {
        return;
    };
    for list_key in ["alarms", "composite_alarms"] {
        let Some(Node::Sequence(items)) = map.get_node(list_key) else {
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            let Some(entry) = item.as_mapping() else {
                continue;
            };
            let label = entry
                .get_scalar("name")
                .map_or_else(|| format!("[{i}]"), |n| n.as_str().trim().to_owned());
            for key in ACTION_KEYS {
                let Some(Node::Sequence(actions)) = entry.get_node(key) else {
                    continue;
                };
                for (j, a) in actions.iter().enumerate() {
                    let Node::Scalar(s) = a else { continue };
                    let text = s.as_str().trim();
                    let path = format!("{list_key}.{label}.{key}[{j}]");
                    let pos = pos_of(s.span());
                    if let Some(name) = text.strip_prefix(NAMED_WEBHOOK_PREFIX) {
                        if settings.webhook(name).is_none() {
                            let known: Vec<&str> =
                                settings.webhooks.iter().map(|w| w.name.as_str()).collect();
                            cx.push(
                                pos,
                                &path,
                                Rule::Action,
                                if known.is_empty() {
                                    format!(
                                        "names the webhook {name:?}, but notifications.webhooks defines none"
                                    )
                                } else {
                                    format!(
                                        "names the webhook {name:?}, which notifications.webhooks does not define (defined: {})",
                                        known.join(", ")
                                    )
                                },
                            );
                        }
                    } else if text.starts_with("mailto:") && settings.smtp.is_none() {
                        cx.push(
                            pos,
                            &path,
                            Rule::Action,
                            "e-mail actions need an SMTP server: add notifications.smtp",
                        );
                    }
                }
            }
        }
    }
}

/// The environment variables the `notifications:` sections of `files` name
/// (`smtp.password_env`, `webhooks[].secret_env`, `webhooks[].routing_key_env`), each at the
/// position of its value: the binary checks that they are set ([`crate::validate::Requirement`];
/// `serve` cannot send without them). Files that are not YAML are skipped.
pub fn requirements<P: AsRef<str>, T: AsRef<str>>(
    files: &[(P, T)],
) -> Vec<crate::validate::Requirement> {
    use crate::validate::{Need, Requirement};
    let mut out = Vec::new();
    for (file, text) in files {
        let Ok(root) = crate::raw::parse_yaml(text.as_ref()) else {
            continue;
        };
        let Some(section) = root
            .as_mapping()
            .and_then(|m| m.get_node("notifications"))
            .and_then(Node::as_mapping)
        else {
            continue;
        };
        let mut need = |node: &marked_yaml::types::MarkedMappingNode, key: &str, path: String| {
            if let Some(Node::Scalar(v)) = node.get_node(key) {
                let var = v.as_str().trim();
                if !matches!(var, "" | "~" | "null") {
                    out.push(Requirement {
                        file: file.as_ref().to_owned(),
                        pos: pos_of(v.span()),
                        path,
                        need: Need::EnvVar(var.to_owned()),
                    });
                }
            }
        };
        if let Some(smtp) = section.get_node("smtp").and_then(Node::as_mapping) {
            need(
                smtp,
                "password_env",
                "notifications.smtp.password_env".to_owned(),
            );
        }
        if let Some(Node::Sequence(hooks)) = section.get_node("webhooks") {
            for (i, hook) in hooks.iter().enumerate() {
                let Some(hook) = hook.as_mapping() else {
                    continue;
                };
                let label = hook
                    .get_scalar("name")
                    .map_or_else(|| format!("[{i}]"), |n| format!(".{}", n.as_str().trim()));
                for key in ["secret_env", "routing_key_env"] {
                    need(hook, key, format!("notifications.webhooks{label}.{key}"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
