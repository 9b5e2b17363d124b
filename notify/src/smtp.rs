//! E-mail delivery over SMTP with lettre (tokio transport; STARTTLS none, opportunistic or
//! required, verified against the built-in roots plus `ca_file`, if any).

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use sha2::{Digest as _, Sha256};
use thermostat_alarms::notifications::{Delivery, Notification, SmtpSettings, StartTls};

use crate::error::{Error, Result};
use crate::secrets::{read_ca_bundle, read_secret};
use crate::{Notifier, Receipt};

/// Sends `mailto:` notifications through one SMTP server.
#[derive(Debug, Clone)]
pub struct SmtpNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpNotifier {
    /// A notifier for `settings`, reading the password (`password_env` through `env`, the
    /// binary passes `|k| std::env::var(k).ok()`, or `password_file`) and the `ca_file`
    /// now. Connects lazily, on the first message. The server's certificate is always
    /// verified when TLS is used (against the built-in roots plus `ca_file`).
    ///
    /// # Errors
    /// A bad `from` address, TLS parameters that cannot be built for the host, a password
    /// that cannot be read ([`Error::MissingSecret`], [`Error::File`]), or a `ca_file` that
    /// cannot be read or holds no certificate ([`Error::File`]).
    pub fn new(settings: &SmtpSettings, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| Error::Config(format!("notifications.smtp.from: {e}")))?;
        let tls = match settings.starttls {
            StartTls::None => Tls::None,
            mode => {
                let mut builder = TlsParameters::builder(settings.host.clone());
                if let Some(path) = &settings.ca_file {
                    let setting = "notifications.smtp.ca_file";
                    let (pem, _) = read_ca_bundle(path, setting)?;
                    let cert = Certificate::from_pem(&pem).map_err(|e| Error::File {
                        setting: setting.to_owned(),
                        path: path.clone(),
                        message: format!("is not a PEM certificate bundle ({e})"),
                    })?;
                    builder = builder.add_root_certificate(cert);
                }
                let params = builder.build().map_err(|e| {
                    Error::Config(format!("notifications.smtp: TLS parameters: {e}"))
                })?;
                if mode == StartTls::Required {
                    Tls::Required(params)
                } else {
                    Tls::Opportunistic(params)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .tls(tls)
            .timeout(Some(settings.timeout));
        if let (Some(user), Some(source)) = (&settings.username, &settings.password) {
            let password = read_secret(source, "notifications.smtp.password", &env)?;
            // lettre's `Credentials` leave the password out of their `Debug` output.
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(SmtpNotifier {
            transport: builder.build(),
            from,
        })
    }
}

/// `<hex>@thermostat`: the same Message-ID on every attempt of one notification.
fn message_id(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("<{}@thermostat>", hex::encode(&digest[..16]))
}

impl Notifier for SmtpNotifier {
    async fn deliver(&self, n: &Notification) -> Result<Receipt> {
        let Delivery::Email { to, subject, body } = &n.delivery else {
            return Err(Error::NotConfigured {
                kind: n.delivery.kind(),
            });
        };
        let fail = |message: String, permanent: bool| Error::Smtp {
            to: to.clone(),
            message,
            permanent,
        };
        let to_box: Mailbox = to
            .parse()
            .map_err(|e| fail(format!("invalid address: {e}"), true))?;
        let msg = Message::builder()
            .from(self.from.clone())
            .to(to_box)
            .subject(subject.clone())
            .message_id(Some(message_id(&n.key)))
            .header(ContentType::TEXT_PLAIN)
            .body(body.clone())
            .map_err(|e| fail(format!("cannot build the message: {e}"), true))?;
        let resp = self
            .transport
            .send(msg)
            .await
            .map_err(|e| fail(e.to_string(), e.is_permanent()))?;
        Ok(Receipt {
            detail: format!(
                "{} {}",
                resp.code(),
                resp.message().collect::<Vec<_>>().join(" ")
            ),
        })
    }
}
