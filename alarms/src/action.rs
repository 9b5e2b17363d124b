//! Alarm actions: the string forms accepted in `alarm_actions`, `ok_actions` and
//! `insufficient_data_actions`, parsed into [`Action`].
//!
//! | Form | Example |
//! |---|---|
//! | SNS topic ARN | `arn:aws:sns:eu-west-1:123456789012:ops` |
//! | Auto Scaling policy ARN | `arn:aws:autoscaling:eu-west-1:123456789012:scalingPolicy:<id>:autoScalingGroupName/web:policyName/up` |
//! | Thermostat scaling policy | `policy:web/scale-out` |
//! | e-mail | `mailto:ops@example.com` |
//! | webhook | `https://hooks.example.com/x` or `http://...` |
//! | named webhook (from `notifications.webhooks`) | `webhook:oncall-slack` |

use std::fmt;

use serde::{Deserialize, Serialize};

/// Most actions per list (CloudWatch quota).
pub const MAX_ACTIONS: usize = 5;
/// Longest action string (CloudWatch's ARN limit).
pub const MAX_ACTION_CHARS: usize = 1024;

/// One action target.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Publish to an SNS topic.
    SnsTopic {
        /// The topic ARN.
        arn: String,
        /// Region from the ARN.
        region: String,
        /// Account from the ARN.
        account: String,
        /// Topic name.
        topic: String,
    },
    /// Execute an EC2 Auto Scaling policy given by ARN.
    ScalingPolicyArn {
        /// The policy ARN.
        arn: String,
        /// Group name from the ARN, when present.
        group: Option<String>,
        /// Policy name from the ARN, when present.
        policy: Option<String>,
    },
    /// Execute a Thermostat scaling policy.
    ScalingPolicy {
        /// The group.
        group: String,
        /// The policy.
        policy: String,
    },
    /// Send an e-mail.
    Email {
        /// The address.
        address: String,
    },
    /// POST the notification to a URL.
    Webhook {
        /// The URL.
        url: String,
    },
    /// A webhook defined by name in the `notifications.webhooks` settings (its format and
    /// secret come from there).
    NamedWebhook {
        /// The webhook's name.
        name: String,
    },
}

impl Action {
    /// Whether this is an Auto Scaling action (re-invoked once per minute while the alarm
    /// stays in the state, reference §3.8).
    pub fn is_scaling(&self) -> bool {
        matches!(
            self,
            Action::ScalingPolicyArn { .. } | Action::ScalingPolicy { .. }
        )
    }

    /// The action as written in the configuration.
    pub fn as_config_str(&self) -> String {
        match self {
            Action::SnsTopic { arn, .. } | Action::ScalingPolicyArn { arn, .. } => arn.clone(),
            Action::ScalingPolicy { group, policy } => format!("policy:{group}/{policy}"),
            Action::Email { address } => format!("mailto:{address}"),
            Action::Webhook { url } => url.clone(),
            Action::NamedWebhook { name } => format!("webhook:{name}"),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_config_str())
    }
}

const FORMS: &str = "an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>), a scaling policy ARN (arn:aws:autoscaling:...:scalingPolicy:...), policy:<group>/<policy>, mailto:<address>, an http(s):// webhook URL or webhook:<name>";

/// Parses one action string.
///
/// # Errors
/// The rule broken, listing the accepted forms.
pub fn parse(s: &str) -> Result<Action, String> {
    let n = s.chars().count();
    if n == 0 || n > MAX_ACTION_CHARS {
        return Err(format!(
            "must be 1 to {MAX_ACTION_CHARS} characters (got {n})"
        ));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(format!("must not contain spaces (got {s:?})"));
    }
    if let Some(rest) = s.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        return match parts.as_slice() {
            [_, "sns", region, account, topic]
                if !region.is_empty() && !account.is_empty() && valid_topic(topic) =>
            {
                Ok(Action::SnsTopic {
                    arn: s.to_owned(),
                    region: (*region).to_owned(),
                    account: (*account).to_owned(),
                    topic: (*topic).to_owned(),
                })
            }
            [_, "sns", ..] => Err(format!(
                "must be an SNS topic ARN arn:aws:sns:<region>:<account>:<topic> (got {s:?})"
            )),
            [_, "autoscaling", _, _, resource] if resource.starts_with("scalingPolicy:") => {
                let find = |prefix: &str| {
                    resource
                        .split(':')
                        .find_map(|p| p.strip_prefix(prefix))
                        .map(str::to_owned)
                };
                Ok(Action::ScalingPolicyArn {
                    arn: s.to_owned(),
                    group: find("autoScalingGroupName/"),
                    policy: find("policyName/"),
                })
            }
            [_, "autoscaling", ..] => Err(format!(
                "must be a scaling policy ARN arn:aws:autoscaling:<region>:<account>:scalingPolicy:<id>:autoScalingGroupName/<group>:policyName/<policy> (got {s:?})"
            )),
            _ => Err(format!("must be {FORMS} (got {s:?})")),
        };
    }
    if let Some(rest) = s.strip_prefix("policy:") {
        return match rest.split_once('/') {
            Some((g, p)) if !g.is_empty() && !p.is_empty() && !p.contains('/') => {
                Ok(Action::ScalingPolicy {
                    group: g.to_owned(),
                    policy: p.to_owned(),
                })
            }
            _ => Err(format!("must be policy:<group>/<policy> (got {s:?})")),
        };
    }
    if let Some(addr) = s.strip_prefix("mailto:") {
        return match addr.split_once('@') {
            Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
            {
                Ok(Action::Email {
                    address: addr.to_owned(),
                })
            }
            _ => Err(format!("must be mailto:<user>@<domain> (got {s:?})")),
        };
    }
    if let Some(name) = s.strip_prefix("webhook:") {
        let ok = (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        return if ok {
            Ok(Action::NamedWebhook {
                name: name.to_owned(),
            })
        } else {
            Err(format!(
                "must be webhook:<name> with 1 to 64 letters, digits, _ . or - (got {s:?})"
            ))
        };
    }
    for scheme in ["https://", "http://"] {
        if let Some(rest) = s.strip_prefix(scheme) {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            return if host.is_empty() {
                Err(format!("must be a URL with a host (got {s:?})"))
            } else {
                Ok(Action::Webhook { url: s.to_owned() })
            };
        }
    }
    Err(format!("must be {FORMS} (got {s:?})"))
}

fn valid_topic(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 256
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses() {
        // Reference §3.1: SNS and Auto Scaling policy ARNs; the rest are Thermostat forms.
        let cases = [
            ("arn:aws:sns:eu-west-1:123456789012:ops", false),
            (
                "arn:aws:autoscaling:eu-west-1:123456789012:scalingPolicy:1a2b:autoScalingGroupName/web:policyName/up",
                true,
            ),
            ("policy:web/scale-out", true),
            ("mailto:ops@example.com", false),
            ("https://hooks.example.com/x", false),
            ("webhook:oncall-slack", false),
            ("http://127.0.0.1:9000/hook", false),
        ];
        for (s, scaling) in cases {
            let a = parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(a.is_scaling(), scaling, "{s}");
            assert_eq!(a.as_config_str(), s);
        }
        match parse(cases[1].0) {
            Ok(Action::ScalingPolicyArn { group, policy, .. }) => {
                assert_eq!(group.as_deref(), Some("web"));
                assert_eq!(policy.as_deref(), Some("up"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_forms_are_rejected() {
        for s in [
            "",
            "arn:aws:sns:eu-west-1",
            "arn:aws:sqs:eu-west-1:1:q",
            "arn:aws:autoscaling:eu-west-1:1:group",
            "policy:web",
            "policy:/up",
            "mailto:nobody",
            "https://",
            "ftp://x",
            "ops@example.com",
            "mailto:a b@c",
        ] {
            assert!(parse(s).is_err(), "{s:?} should be rejected");
        }
    }
}
