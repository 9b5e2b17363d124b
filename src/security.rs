//! Access control at start-up and on reload: the tokens of `auth.tokens` (their secrets read
//! from files and environment variables here), the refusal to serve beyond loopback without
//! them, TLS certificates, and reloading both from the settings file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use thermostat_auth::sigv4::AccessKeys;
use thermostat_auth::{Access, AuthSettings, AuthTelemetry, Tokens};
use thermostat_dashboards::cloudwatch::{SignatureCheck, Signatures};
use thermostat_transport::Tls;

use crate::settings::{Settings, SettingsError, SettingsFile};

/// A token file larger than this is refused.
pub const MAX_SECRET_FILE_BYTES: usize = 64 << 10;
/// How often `--insecure-no-auth` reminds the log.
pub const INSECURE_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Why access control cannot start or reload.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// `auth.tokens` cannot be used.
    #[error(transparent)]
    Tokens(#[from] thermostat_auth::Error),
    /// A listener beyond loopback without tokens.
    #[error(
        "refusing to serve {addrs} without authentication: anyone who reaches it could push data, \
         change alarm states and trigger scaling. Add tokens under `auth.tokens` in the --settings \
         file (`thermostat token new --role admin` prints one; see docs/security.md), listen on \
         127.0.0.1, or pass --insecure-no-auth to accept the risk"
    )]
    Exposed {
        /// The non-loopback addresses.
        addrs: String,
    },
    /// The TLS files cannot be used.
    #[error(transparent)]
    Tls(#[from] thermostat_transport::Error),
    /// The settings file cannot be read again.
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    /// TLS cannot be turned on or off by a reload.
    #[error(
        "tls: turning TLS on or off, or changing its files, needs a restart; a reload re-reads the same files"
    )]
    TlsChanged,
}

/// Access control of a running server.
#[derive(Debug)]
pub struct Security {
    /// Who may do what, shared by both servers.
    pub access: Arc<Access>,
    /// TLS, when configured.
    pub tls: Option<Arc<Tls>>,
    tls_settings: Option<thermostat_transport::TlsSettings>,
    settings_file: Option<PathBuf>,
    exposed: Vec<SocketAddr>,
    insecure_no_auth: bool,
    /// The HTTP listener, on which the CloudWatch API's loopback rule depends.
    http_addr: SocketAddr,
    /// The CloudWatch API's signature check, re-read from `aws_api` on reload.
    aws_signatures: std::sync::Mutex<Option<Arc<SignatureCheck>>>,
}

/// The addresses of `settings` that are not loopback.
fn exposed(settings: &Settings) -> Vec<SocketAddr> {
    [settings.grpc_addr, settings.http_addr]
        .into_iter()
        .filter(|a| !a.ip().is_loopback())
        .collect()
}

fn read_secret_file(path: &Path) -> Result<String, String> {
    crate::settings::warn_if_readable_by_others(path);
    crate::config::read_bounded(path, MAX_SECRET_FILE_BYTES)
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The tokens of `auth` (`None`: auth off).
///
/// # Errors
/// As [`Tokens::resolve`].
pub fn tokens(auth: &AuthSettings) -> Result<Option<Tokens>, SecurityError> {
    auth.tokens
        .as_ref()
        .map(|entries| Tokens::resolve(entries, &env_var, &read_secret_file))
        .transpose()
        .map_err(SecurityError::from)
}

impl Security {
    /// Resolves the tokens and loads TLS; refuses to serve beyond loopback without tokens
    /// unless `--insecure-no-auth`.
    ///
    /// # Errors
    /// Unusable tokens or TLS files, or an exposed listener without tokens.
    pub fn start(settings: &Settings, telemetry: AuthTelemetry) -> Result<Security, SecurityError> {
        if let Some(path) = &settings.settings_file {
            crate::settings::warn_if_readable_by_others(path);
        }
        let tokens = tokens(&settings.auth)?;
        let exposed = exposed(settings);
        let enforced = tokens.is_some();
        if !enforced && !exposed.is_empty() && !settings.insecure_no_auth {
            return Err(SecurityError::Exposed {
                addrs: list(&exposed),
            });
        }
        let tls = settings.tls.as_ref().map(Tls::load).transpose()?;
        let ttl_ms = settings
            .auth
            .session_ttl_seconds
            .map_or(thermostat_auth::DEFAULT_SESSION_TTL_MS, |s| {
                i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)
            });
        match (&tokens, exposed.is_empty()) {
            (Some(t), _) => tracing::info!(
                tokens = t.len(),
                tls = tls.is_some(),
                "Access control is on: every request needs a token."
            ),
            (None, true) => tracing::info!(
                "Access control is off: no auth.tokens, and every listener is on loopback (docs/security.md)."
            ),
            (None, false) => {
                tracing::warn!(addrs = %list(&exposed), "Access control is OFF on addresses beyond loopback (--insecure-no-auth): anyone who reaches them may do anything.")
            }
        }
        let access = Access::new(tokens, settings.auth.public_metrics, ttl_ms, telemetry);
        access.set_secure_cookies(settings.auth.secure_cookies);
        Ok(Security {
            access: Arc::new(access),
            tls,
            tls_settings: settings.tls.clone(),
            settings_file: settings.settings_file.clone(),
            exposed,
            insecure_no_auth: settings.insecure_no_auth,
            http_addr: settings.http_addr,
            aws_signatures: std::sync::Mutex::new(None),
        })
    }

    /// Re-reads the settings file's `auth` and the TLS files: new tokens take effect for the
    /// next request, sessions of removed tokens end, new TLS handshakes use the new
    /// certificate. Nothing changes when anything fails.
    ///
    /// # Errors
    /// The settings file, a token or a TLS file cannot be used; or the reload would leave an
    /// exposed listener without tokens.
    pub fn reload(&self) -> Result<(), SecurityError> {
        let Some(path) = &self.settings_file else {
            return Ok(());
        };
        crate::settings::warn_if_readable_by_others(path);
        let file = SettingsFile::load(path)?;
        let tls_now = file
            .tls
            .as_ref()
            .map(|t| (&t.cert_file, &t.key_file, &t.client_ca_file));
        let tls_before = self
            .tls_settings
            .as_ref()
            .map(|t| (&t.cert_file, &t.key_file, &t.client_ca_file));
        if tls_now != tls_before {
            return Err(SecurityError::TlsChanged);
        }
        let auth = file.auth.unwrap_or_default();
        let tokens = tokens(&auth)?;
        if tokens.is_none() && !self.exposed.is_empty() && !self.insecure_no_auth {
            return Err(SecurityError::Exposed {
                addrs: list(&self.exposed),
            });
        }
        // The CloudWatch API's keys: resolved before anything changes, put in force with the
        // rest.
        let aws_check = self
            .aws_signatures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let aws = match &aws_check {
            Some(_) => Some(signatures_of(
                &file.aws_api.clone().unwrap_or_default(),
                self.http_addr,
                self.insecure_no_auth,
            )?),
            None => None,
        };
        if let Some(tls) = &self.tls {
            tls.reload()?;
        }
        if let (Some(check), Some(signatures)) = (aws_check, aws) {
            check.replace(signatures);
            tracing::info!("Reloaded the CloudWatch API's access keys.");
        }
        let count = tokens.as_ref().map_or(0, Tokens::len);
        let revoked = self.access.replace(tokens, auth.public_metrics);
        self.access.set_secure_cookies(auth.secure_cookies);
        tracing::info!(
            tokens = count,
            sessions_revoked = revoked,
            "Reloaded access control."
        );
        Ok(())
    }

    /// Re-reads `aws_api` into `check` on every [`reload`](Self::reload).
    pub fn reload_aws_signatures(&self, check: Arc<SignatureCheck>) {
        *self
            .aws_signatures
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(check);
    }

    /// With `--insecure-no-auth` on an exposed server, a warning every minute until `stop`.
    pub async fn warn_while_insecure(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        if self.exposed.is_empty() || !self.insecure_no_auth {
            return;
        }
        let mut every = tokio::time::interval(INSECURE_WARNING_INTERVAL);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = every.tick() => {
                    if !self.access.is_enforced() {
                        tracing::warn!(addrs = %list(&self.exposed), "Serving without authentication beyond loopback (--insecure-no-auth).");
                    }
                }
            }
        }
    }
}

fn list(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The CloudWatch API's signature check (`crate::app::cloudwatch::signatures`) of an `aws_api` section, for a server listening on `http_addr`.
///
/// # Errors
/// An access key whose secret cannot be read, or `verify_signatures: false` beyond loopback.
pub fn signatures_of(
    aws: &crate::settings::AwsApiSettings,
    http_addr: std::net::SocketAddr,
    insecure_no_auth: bool,
) -> Result<Signatures, SecurityError> {
    let invalid = |rule: String| {
        SecurityError::Settings(SettingsError::Invalid {
            key: "aws_api",
            rule,
        })
    };
    if !aws.verify_signatures {
        if !http_addr.ip().is_loopback() && !insecure_no_auth {
            return Err(invalid(format!(
                "verify_signatures: false accepts any signature as an admin; refused on {}, \
                 which is not loopback (listen on 127.0.0.1, or pass --insecure-no-auth to \
                 accept the risk)",
                http_addr
            )));
        }
        tracing::warn!(
            "aws_api.verify_signatures is false: the CloudWatch API accepts any signature, as an anonymous admin."
        );
        return Ok(Signatures::AcceptAny);
    }
    if aws.access_keys.is_empty() {
        tracing::info!(
            "aws_api.access_keys is empty: the CloudWatch API refuses every request (InvalidClientTokenId)."
        );
        return Ok(Signatures::Verify(AccessKeys::default()));
    }
    AccessKeys::resolve(&aws.access_keys, &|var| std::env::var(var).ok(), &|path| {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    })
    .map(Signatures::Verify)
    .map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn insecure_no_auth_warns_every_minute() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let settings = Settings {
            http_addr: "0.0.0.0:8080".parse().expect("address"),
            insecure_no_auth: true,
            ..Settings::default()
        };
        let security =
            Arc::new(Security::start(&settings, AuthTelemetry::default()).expect("starts"));
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(Arc::clone(&security).warn_while_insecure(stop.clone()));
        // The first warning at once, then one a minute: 4 within 3.5 minutes.
        tokio::time::sleep(Duration::from_secs(210)).await;
        stop.cancel();
        task.await.expect("the warning task ends");
        let text = String::from_utf8(captured.0.lock().expect("log").clone()).expect("utf-8");
        let warnings = text
            .matches("Serving without authentication beyond loopback")
            .count();
        assert_eq!(warnings, 4, "{text}");
        assert!(text.contains("0.0.0.0:8080"), "{text}");
    }
}
