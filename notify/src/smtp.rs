//! E-mail delivery over SMTP with lettre (tokio transport; STARTTLS none, opportunistic or
//! required).

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use sha2::{Digest as _, Sha256};
use thermostat_alarms::notifications::{Delivery, Notification, SmtpSettings, StartTls};

use crate::error::{Error, Result};
use crate::{Notifier, Receipt};

/// Sends `mailto:` notifications through one SMTP server.
#[derive(Debug, Clone)]
pub struct SmtpNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpNotifier {
    /// A notifier for `settings`, reading `password_env` through `env` (the binary passes
    /// `|k| std::env::var(k).ok()`). Connects lazily, on the first message.
    ///
    /// # Errors
    /// A bad `from` address, TLS parameters that cannot be built for the host, or a
    /// `password_env` that is not set.
    pub fn new(settings: &SmtpSettings, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| Error::Config(format!("notifications.smtp.from: {e}")))?;
        let tls = match settings.starttls {
            StartTls::None => Tls::None,
            mode => {
                let params = TlsParameters::new(settings.host.clone()).map_err(|e| {
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
        if let (Some(user), Some(var)) = (&settings.username, &settings.password_env) {
            let password = env(var).ok_or_else(|| Error::MissingSecret {
                setting: "notifications.smtp.password_env".into(),
                var: var.clone(),
            })?;
            builder = builder.credentials(Credentials::new(user.clone(), password));
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
