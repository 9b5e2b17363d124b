//! Webhook delivery: an HTTP POST of the rendered JSON body, signed with HMAC-SHA256 when the
//! named webhook has a secret.

use std::collections::HashMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thermostat_alarms::message::url_encode;
use thermostat_alarms::notifications::{Delivery, Notification, NotificationSettings};

use crate::error::{Error, Result};
use crate::{Notifier, Receipt};

/// The signature header: `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Thermostat-Signature";
/// The header carrying the notification's key (percent-encoded), the same on every
/// attempt, so that receivers can drop duplicates.
pub const IDEMPOTENCY_HEADER: &str = "X-Thermostat-Idempotency-Key";

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`, as sent in
/// [`SIGNATURE_HEADER`].
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// POSTs webhook notifications with reqwest.
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    client: reqwest::Client,
    secrets: HashMap<String, Vec<u8>>,
    timeouts: HashMap<String, Duration>,
}

/// Timeout of requests to plain `http(s)://` actions.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl WebhookNotifier {
    /// A notifier for the named webhooks of `settings` (and plain URL actions), reading each
    /// `secret_env` through `env` (the binary passes `|k| std::env::var(k).ok()`).
    ///
    /// # Errors
    /// A `secret_env` that is not set, or an HTTP client that cannot be built.
    pub fn new(
        settings: &NotificationSettings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let mut secrets = HashMap::new();
        let mut timeouts = HashMap::new();
        for w in &settings.webhooks {
            if let Some(var) = &w.secret_env {
                let secret =
                    env(var)
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| Error::MissingSecret {
                            setting: format!("notifications.webhooks.{}.secret_env", w.name),
                            var: var.clone(),
                        })?;
                secrets.insert(w.name.clone(), secret.into_bytes());
            }
            timeouts.insert(w.name.clone(), w.timeout);
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("Thermostat/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(WebhookNotifier {
            client,
            secrets,
            timeouts,
        })
    }
}

impl Notifier for WebhookNotifier {
    async fn deliver(&self, n: &Notification) -> Result<Receipt> {
        let Delivery::Webhook {
            webhook, url, body, ..
        } = &n.delivery
        else {
            return Err(Error::NotConfigured {
                kind: n.delivery.kind(),
            });
        };
        let timeout = webhook
            .as_ref()
            .and_then(|w| self.timeouts.get(w))
            .copied()
            .unwrap_or(DEFAULT_TIMEOUT);
        let mut req = self
            .client
            .post(url)
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, url_encode(&n.key));
        if let Some(secret) = webhook.as_ref().and_then(|w| self.secrets.get(w)) {
            req = req.header(SIGNATURE_HEADER, signature(secret, body.as_bytes()));
        }
        let resp = req
            .body(body.clone())
            .send()
            .await
            .map_err(|e| Error::Http {
                url: url.clone(),
                status: None,
                message: thermostat_metrics::chain(&e),
                permanent: e.is_builder(),
            })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(Receipt {
                detail: format!("HTTP {}", status.as_u16()),
            });
        }
        let code = status.as_u16();
        let text = resp.text().await.unwrap_or_default();
        let text: String = text.chars().take(200).collect();
        Err(Error::Http {
            url: url.clone(),
            status: Some(code),
            message: format!("HTTP {code}: {text}"),
            permanent: status.is_client_error() && code != 408 && code != 429,
        })
    }
}
