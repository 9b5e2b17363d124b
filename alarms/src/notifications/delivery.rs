//! Notifications as values: what to send for one action of one alarm transition
//! ([`build_notification`]), rendered once.

use serde::{Deserialize, Serialize};
use thermostat_metrics::Timestamp;

use super::{NAMED_WEBHOOK_PREFIX, NotificationSettings, WebhookFormat, muted_by};
use crate::action::Action;
use crate::history::AlarmType;
use crate::message::{self, AlarmDefinition, AlarmEvent, MessageSettings};
use crate::model::StateValue;
use crate::state::ActionInvocation;

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

/// How a PagerDuty body begins as rendered here: with an empty `routing_key`. The key is a
/// secret, so it is not part of the stored notification (the outbox, backups); the notifier
/// fills it in when it sends ([`with_routing_key`]).
pub const PAGERDUTY_BODY_PREFIX: &str = r#"{"routing_key":"","#;

/// A PagerDuty `body` as rendered by [`build_notification`], with `routing_key` filled in:
/// the same bytes apart from the key. `None` when `body` does not begin with
/// [`PAGERDUTY_BODY_PREFIX`].
pub fn with_routing_key(body: &str, routing_key: &str) -> Option<String> {
    let rest = body.strip_prefix(PAGERDUTY_BODY_PREFIX)?;
    let key = serde_json::to_string(routing_key).ok()?;
    Some(format!(r#"{{"routing_key":{key},{rest}"#))
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
/// notifications (Auto Scaling policies). Mute rules are applied at `now`. No secret is
/// needed: a PagerDuty body is rendered without its routing key
/// ([`PAGERDUTY_BODY_PREFIX`]), which the notifier adds when it sends.
///
/// # Errors
/// The action cannot be delivered with these settings: a `mailto:` action without
/// `smtp`, or an unknown `webhook:<name>`.
pub fn build_notification(
    settings: &NotificationSettings,
    messages: &MessageSettings,
    event: &AlarmEvent<'_>,
    invocation: &ActionInvocation,
    now: Timestamp,
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
            WebhookFormat::Pagerduty => message::render_pagerduty(messages, event, ""),
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
