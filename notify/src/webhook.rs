//! Webhook delivery: an HTTP POST of the rendered JSON body, signed with HMAC-SHA256 when the
//! named webhook has a secret, with the PagerDuty routing key filled in when it sends (it
//! is not stored with the notification), over HTTPS verified against the built-in roots
//! plus the webhook's `ca_file`, if any.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thermostat_alarms::message::url_encode;
use thermostat_alarms::notifications::{
    Delivery, Notification, NotificationSettings, PAGERDUTY_BODY_PREFIX, Secret, WebhookFormat,
    with_routing_key,
};

use crate::error::{Error, Result};
use crate::secrets::{read_ca_bundle, read_secret};
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
    /// The client of plain URL actions and of named webhooks without a `ca_file`.
    client: reqwest::Client,
    /// The named webhooks, by name.
    hooks: HashMap<String, Hook>,
}

/// What a named webhook sends with; its secrets never print.
#[derive(Debug, Clone)]
struct Hook {
    /// The HMAC-SHA256 signing key.
    secret: Option<Secret>,
    /// The PagerDuty routing key.
    routing_key: Option<Secret>,
    timeout: Duration,
    /// A client that also trusts the webhook's `ca_file` (`None`: the shared client).
    client: Option<reqwest::Client>,
}

/// Timeout of requests to plain `http(s)://` actions.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP client verifying servers against the built-in (webpki) roots and `extra`.
/// Certificate verification is always on: there is no setting to turn it off.
fn http_client(extra: &[reqwest::Certificate]) -> reqwest::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("Thermostat/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10));
    for c in extra {
        b = b.add_root_certificate(c.clone());
    }
    b.build()
}

impl WebhookNotifier {
    /// A notifier for the named webhooks of `settings` (and plain URL actions): reads each
    /// webhook's secrets (`secret_env` / `secret_file`, `routing_key_env` /
    /// `routing_key_file`; variables through `env`, the binary passes
    /// `|k| std::env::var(k).ok()`) and `ca_file`, building one HTTP client per CA bundle.
    ///
    /// # Errors
    /// A secret that cannot be read ([`Error::MissingSecret`], [`Error::File`]), a `ca_file`
    /// that cannot be read or holds no certificate ([`Error::File`]), or an HTTP client that
    /// cannot be built.
    pub fn new(
        settings: &NotificationSettings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let mut hooks = HashMap::new();
        // One client per CA bundle, shared by the webhooks that name the same file.
        let mut clients: HashMap<&str, reqwest::Client> = HashMap::new();
        for w in &settings.webhooks {
            let p = format!("notifications.webhooks.{}", w.name);
            let secret = w
                .secret
                .as_ref()
                .map(|s| read_secret(s, &format!("{p}.secret"), &env))
                .transpose()?;
            let routing_key = w
                .routing_key
                .as_ref()
                .map(|s| read_secret(s, &format!("{p}.routing_key"), &env))
                .transpose()?;
            let client = match &w.ca_file {
                None => None,
                Some(path) => Some(match clients.get(path.as_str()) {
                    Some(c) => c.clone(),
                    None => {
                        let setting = format!("{p}.ca_file");
                        let (_, certs) = read_ca_bundle(path, &setting)?;
                        let c = http_client(&certs).map_err(|e| Error::File {
                            setting,
                            path: path.clone(),
                            message: format!("cannot be used ({})", thermostat_metrics::chain(&e)),
                        })?;
                        clients.insert(path, c.clone());
                        c
                    }
                }),
            };
            hooks.insert(
                w.name.clone(),
                Hook {
                    secret,
                    routing_key,
                    timeout: w.timeout,
                    client,
                },
            );
        }
        let client = http_client(&[])
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(WebhookNotifier { client, hooks })
    }
}

impl Notifier for WebhookNotifier {
    async fn deliver(&self, n: &Notification) -> Result<Receipt> {
        let Delivery::Webhook {
            webhook,
            url,
            body,
            format,
        } = &n.delivery
        else {
            return Err(Error::NotConfigured {
                kind: n.delivery.kind(),
            });
        };
        let hook = webhook.as_ref().and_then(|w| self.hooks.get(w));
        let timeout = hook.map_or(DEFAULT_TIMEOUT, |h| h.timeout);
        let client = hook.and_then(|h| h.client.as_ref()).unwrap_or(&self.client);
        // The PagerDuty routing key is added now: the stored body has an empty one. (A body
        // stored with its key, by an earlier version, is sent as it is.)
        let body: Cow<'_, str> = match (format, hook.and_then(|h| h.routing_key.as_ref())) {
            (WebhookFormat::Pagerduty, Some(key)) => {
                with_routing_key(body, key.expose()).map_or(Cow::Borrowed(body), Cow::Owned)
            }
            (WebhookFormat::Pagerduty, None) if body.starts_with(PAGERDUTY_BODY_PREFIX) => {
                return Err(Error::Http {
                    url: url.clone(),
                    status: None,
                    message: format!(
                        "no routing key: the webhook {:?} is no longer configured with one",
                        webhook.as_deref().unwrap_or_default()
                    ),
                    permanent: true,
                });
            }
            _ => Cow::Borrowed(body),
        };
        let mut req = client
            .post(url)
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, url_encode(&n.key));
        if let Some(secret) = hook.and_then(|h| h.secret.as_ref()) {
            req = req.header(
                SIGNATURE_HEADER,
                signature(secret.expose().as_bytes(), body.as_bytes()),
            );
        }
        let resp = req
            .body(body.into_owned())
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
