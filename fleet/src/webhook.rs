//! [`WebhookFleet`]: a group whose capacity an HTTP endpoint manages.
//!
//! Every call is a `POST` of JSON to the group's `webhook_url` with `"group"` and
//! `"action"`:
//! - `set_desired_capacity`: `{"group", "action", "desired_capacity", "cause",
//!   "min_size", "max_size", "honor_cooldown"}`;
//! - `update_limits`: `{"group", "action", "min_size", "max_size", "desired_capacity"}`;
//! - `describe`: `{"group", "action"}`.
//!
//! The endpoint answers 2xx with `{"desired_capacity": n, "in_service_capacity": n}`. The
//! limits live in Thermostat (the endpoint need not know them), so `set_desired` checks
//! them before calling, as `SetDesiredCapacity` does.
//!
//! HTTPS servers are always verified, against the built-in (webpki) roots, plus, for a
//! group added with [`WebhookFleet::add_group_with_ca_file`] (a group with a
//! `webhook_ca_file`, in [`WebhookFleet::from_set`]), the certificates of its CA bundle (one
//! client per group that has one); nothing turns verification off.

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use thermostat_scaler::group_state::check_set_desired;
use thermostat_scaler::{Backend, ScalingSet};

use crate::error::{Error, Result};
use crate::fleet::updated_limits;
use crate::fleet::{Capacity, Fleet};

/// Default timeout of one webhook call.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest CA bundle read: 1 MiB (as `thermostat_alarms::notifications::MAX_CA_FILE_BYTES`).
pub const MAX_CA_FILE_BYTES: usize = 1024 * 1024;

#[derive(Debug)]
struct Hook {
    url: String,
    min: u32,
    max: u32,
    /// A client that also trusts the group's CA bundle (`None`: the shared client).
    client: Option<reqwest::Client>,
}

#[derive(Deserialize)]
struct Reply {
    desired_capacity: u32,
    in_service_capacity: u32,
}

/// Groups behind webhooks.
#[derive(Debug)]
pub struct WebhookFleet {
    client: reqwest::Client,
    timeout: Duration,
    hooks: Mutex<HashMap<String, Hook>>,
}

/// An HTTP client with `timeout` (connect and whole request) that verifies servers against
/// the built-in roots and `extra`.
fn http_client(
    timeout: Duration,
    extra: &[reqwest::Certificate],
) -> Result<reqwest::Client, reqwest::Error> {
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout);
    for c in extra {
        b = b.add_root_certificate(c.clone());
    }
    b.build()
}

impl WebhookFleet {
    /// A fleet whose calls time out after `timeout` (connect and whole request).
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS backend).
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(WebhookFleet {
            client: http_client(timeout, &[])?,
            timeout,
            hooks: Mutex::new(HashMap::new()),
        })
    }

    /// Adds a group at `url` with its limits (`min_size`, `max_size`, which webhook groups
    /// must configure).
    pub fn add_group(&self, group: &str, url: &str, min: u32, max: u32) {
        self.insert(group, url, min, max, None);
    }

    /// Adds a group as [`add_group`](Self::add_group) does, whose HTTPS server is verified
    /// against the built-in roots plus the certificates of the PEM bundle `ca_file` (read
    /// now, at most [`MAX_CA_FILE_BYTES`]).
    ///
    /// # Errors
    /// [`Error::CaFile`] when the bundle cannot be read, is too large or holds no
    /// certificate, or a client trusting it cannot be built.
    pub fn add_group_with_ca_file(
        &self,
        group: &str,
        url: &str,
        min: u32,
        max: u32,
        ca_file: &str,
    ) -> Result<()> {
        let err = |message: String| Error::CaFile {
            group: group.to_owned(),
            path: ca_file.to_owned(),
            message,
        };
        let cannot = |e: std::io::Error| err(format!("cannot be read ({e})"));
        let mut pem = Vec::new();
        std::fs::File::open(ca_file)
            .map_err(cannot)?
            .take(u64::try_from(MAX_CA_FILE_BYTES).unwrap_or(u64::MAX) + 1)
            .read_to_end(&mut pem)
            .map_err(cannot)?;
        if pem.len() > MAX_CA_FILE_BYTES {
            return Err(err(format!(
                "is larger than {MAX_CA_FILE_BYTES} bytes (the limit)"
            )));
        }
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| err(format!("is not a PEM certificate bundle ({e})")))?;
        if certs.is_empty() {
            return Err(err(
                "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned(),
            ));
        }
        let client =
            http_client(self.timeout, &certs).map_err(|e| err(format!("cannot be used ({e})")))?;
        self.insert(group, url, min, max, Some(client));
        Ok(())
    }

    fn insert(&self, group: &str, url: &str, min: u32, max: u32, client: Option<reqwest::Client>) {
        self.lock().insert(
            group.to_owned(),
            Hook {
                url: url.to_owned(),
                min,
                max,
                client,
            },
        );
    }

    /// Every `webhook` group of `set`, those with a `webhook_ca_file` through
    /// [`add_group_with_ca_file`](Self::add_group_with_ca_file).
    ///
    /// # Errors
    /// Every problem found: [`Error::HttpClient`] when the HTTP client cannot be built, else
    /// one [`Error::CaFile`] per group whose CA bundle cannot be used.
    pub fn from_set(set: &ScalingSet, timeout: Duration) -> Result<Self, Vec<Error>> {
        let f = WebhookFleet::new(timeout).map_err(|e| {
            vec![Error::HttpClient {
                message: e.to_string(),
            }]
        })?;
        let mut errors = Vec::new();
        for g in &set.groups {
            if let Backend::Webhook { url, ca_file } = &g.backend {
                let (min, max) = (g.min_size.unwrap_or(0), g.max_size.unwrap_or(u32::MAX));
                match ca_file {
                    None => f.add_group(&g.name, url, min, max),
                    Some(path) => {
                        if let Err(e) = f.add_group_with_ca_file(&g.name, url, min, max, path) {
                            errors.push(e);
                        }
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(f)
        } else {
            Err(errors)
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Hook>> {
        self.hooks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn hook(&self, group: &str) -> Result<(String, u32, u32)> {
        self.lock()
            .get(group)
            .map(|h| (h.url.clone(), h.min, h.max))
            .ok_or_else(|| Error::UnknownGroup {
                group: group.to_owned(),
            })
    }

    /// The client for `group`: its own when it has a CA bundle, else the shared one.
    fn client(&self, group: &str) -> reqwest::Client {
        self.lock()
            .get(group)
            .and_then(|h| h.client.clone())
            .unwrap_or_else(|| self.client.clone())
    }

    async fn call(&self, group: &str, url: &str, body: Value) -> Result<Reply> {
        let err = |status: Option<u16>, message: String| Error::Webhook {
            group: group.to_owned(),
            url: url.to_owned(),
            status,
            message,
        };
        let resp = self
            .client(group)
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                let what = if e.is_timeout() {
                    "timed out"
                } else {
                    "request failed"
                };
                err(None, format!("{what}: {e}"))
            })?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| err(Some(status.as_u16()), format!("reading the reply: {e}")))?;
        if !status.is_success() {
            let snippet: String = text.chars().take(200).collect();
            return Err(err(Some(status.as_u16()), format!("reply: {snippet:?}")));
        }
        serde_json::from_str::<Reply>(&text).map_err(|e| {
            err(
                Some(status.as_u16()),
                format!(
                    "reply must be {{\"desired_capacity\": n, \"in_service_capacity\": n}} ({e})"
                ),
            )
        })
    }
}

impl Fleet for WebhookFleet {
    async fn describe(&self, group: &str) -> Result<Capacity> {
        let (url, min, max) = self.hook(group)?;
        let r = self
            .call(group, &url, json!({"group": group, "action": "describe"}))
            .await?;
        Ok(Capacity {
            desired: r.desired_capacity,
            min,
            max,
            in_service: r.in_service_capacity,
        })
    }

    async fn set_desired(
        &self,
        group: &str,
        desired: u32,
        honor_cooldown: bool,
        cause: &str,
    ) -> Result<Capacity> {
        let (url, min, max) = self.hook(group)?;
        check_set_desired(min, max, desired).map_err(|message| Error::Validation {
            group: group.to_owned(),
            message,
        })?;
        let body = json!({
            "group": group,
            "action": "set_desired_capacity",
            "desired_capacity": desired,
            "cause": cause,
            "min_size": min,
            "max_size": max,
            "honor_cooldown": honor_cooldown,
        });
        let r = self.call(group, &url, body).await?;
        Ok(Capacity {
            desired: r.desired_capacity,
            min,
            max,
            in_service: r.in_service_capacity,
        })
    }

    async fn update_limits(
        &self,
        group: &str,
        min: Option<u32>,
        max: Option<u32>,
        desired: Option<u32>,
    ) -> Result<Capacity> {
        let (url, lo, hi) = self.hook(group)?;
        let current = self.describe(group).await?;
        let (lo, hi, d) =
            updated_limits((lo, hi, current.desired), min, max, desired).map_err(|message| {
                Error::Validation {
                    group: group.to_owned(),
                    message,
                }
            })?;
        let body = json!({
            "group": group,
            "action": "update_limits",
            "min_size": lo,
            "max_size": hi,
            "desired_capacity": d,
        });
        let r = self.call(group, &url, body).await?;
        if let Some(h) = self.lock().get_mut(group) {
            h.min = lo;
            h.max = hi;
        }
        Ok(Capacity {
            desired: r.desired_capacity,
            min: lo,
            max: hi,
            in_service: r.in_service_capacity,
        })
    }
}
