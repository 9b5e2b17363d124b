//! HTTPS webhooks: the server's certificate is verified against the built-in roots plus the
//! webhook's `ca_file`; a certificate from a private CA is refused without it. The CA and the
//! server's certificate are made here (rcgen); the receiver is hyper over tokio-rustls.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use thermostat_alarms::Action;
use thermostat_alarms::message::MessageSettings;
use thermostat_alarms::notifications::{
    NotificationSettings, SmtpSettings, StartTls, WebhookFormat, WebhookSettings,
};
use thermostat_notify::{Error, Notifier as _, SmtpNotifier, WebhookNotifier};
use tokio::sync::mpsc;

/// A private CA (its certificate in PEM) and an HTTPS receiver on 127.0.0.1:0 whose
/// certificate it signed; returns the receiver's URL, the CA's PEM and the bodies received.
async fn private_https_receiver() -> (String, String, mpsc::UnboundedReceiver<String>) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Thermostat test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                // A client that does not trust the certificate aborts the handshake.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let tx = tx.clone();
                        async move {
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(String::new()))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (url, ca_pem, rx)
}

fn settings(url: &str, ca_file: Option<&Path>) -> NotificationSettings {
    NotificationSettings {
        webhooks: vec![WebhookSettings {
            name: "private".into(),
            url: url.into(),
            format: WebhookFormat::Cloudwatch,
            secret: None,
            routing_key: None,
            ca_file: ca_file.map(|p| p.display().to_string()),
            timeout: Duration::from_secs(5),
        }],
        ..NotificationSettings::default()
    }
}

fn named() -> Action {
    Action::Webhook {
        url: "webhook:private".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_file_makes_a_private_certificate_trusted_and_nothing_else_does() {
    let (url, ca_pem, mut bodies) = private_https_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("private-ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();

    // Without the bundle the certificate is not trusted: the handshake fails, nothing is
    // received, and the error says why (a retry may follow: the CA may be added by a reload).
    let s = settings(&url, None);
    let n = crate::notification(&s, &MessageSettings::default(), named());
    let e = WebhookNotifier::new(&s, |_| None)
        .unwrap()
        .deliver(&n)
        .await
        .unwrap_err();
    let Error::Http {
        status: None,
        message,
        ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert!(
        message.contains("certificate") || message.contains("UnknownIssuer"),
        "{message}"
    );

    // With it, delivered.
    let s = settings(&url, Some(&ca_file));
    let n = crate::notification(&s, &MessageSettings::default(), named());
    let notifier = WebhookNotifier::new(&s, |_| None).unwrap();
    let receipt = notifier.deliver(&n).await.unwrap();
    assert_eq!(receipt.detail, "HTTP 200");
    let body = tokio::time::timeout(Duration::from_secs(10), bodies.recv())
        .await
        .unwrap()
        .unwrap();
    let msg: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(msg["AlarmName"], "web-high-cpu");
    assert!(
        bodies.try_recv().is_err(),
        "the refused attempt sent nothing"
    );

    // The bundle is the webhook's own: a plain URL action to the same server still uses
    // the built-in roots only.
    let plain = crate::notification(
        &s,
        &MessageSettings::default(),
        Action::Webhook { url: url.clone() },
    );
    assert!(notifier.deliver(&plain).await.is_err());
}

#[test]
fn a_ca_file_that_cannot_be_used_is_an_error_naming_the_setting_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not-a-bundle.pem");
    std::fs::write(&not_pem, "just text\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let url = "https://127.0.0.1:9/hook";
    let e = WebhookNotifier::new(&settings(url, Some(&not_pem)), |_| None)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "notifications.webhooks.private.ca_file: the file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            not_pem.display()
        )
    );
    let e = WebhookNotifier::new(&settings(url, Some(&missing)), |_| None)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!(
            "notifications.webhooks.private.ca_file: the file {} cannot be read (",
            missing.display()
        )),
        "{e}"
    );
    // SMTP's ca_file is read the same way.
    let smtp = SmtpSettings {
        host: "mail.example".into(),
        port: 587,
        from: "thermostat@example.com".into(),
        starttls: StartTls::Required,
        username: None,
        password: None,
        ca_file: Some(not_pem.display().to_string()),
        timeout: Duration::from_secs(10),
    };
    let e = SmtpNotifier::new(&smtp, |_| None).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "notifications.smtp.ca_file: the file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            not_pem.display()
        )
    );
}
