//! A webhook fleet behind HTTPS with a certificate from a private CA (issue 18: outgoing
//! connections verify certificates, with a per-destination CA bundle): a scaling group's
//! `webhook_ca_file` makes the receiver trusted, so a manual
//! `PUT /api/v1/groups/{name}/desired-capacity` reaches it; the same group without the key
//! is refused (the fleet's activity fails: `502`); a bundle that cannot be used, or is
//! missing, keeps the server from starting, naming the key and the file. The CA and the
//! receiver's certificate are made here (rcgen); the receiver is axum over tokio-rustls.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use reqwest::StatusCode;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use thermostat::app::Settings;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::util::*;

/// A listener whose connections are TLS ones: a handshake that fails (a client that does
/// not trust the certificate aborts it) or stalls is dropped, and the next one accepted.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            let handshake = self.acceptor.accept(tcp);
            if let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(5), handshake).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A private CA (its certificate in PEM) and an HTTPS fleet webhook on 127.0.0.1:0 whose
/// certificate it signed, answering every call with the capacity asked (or 1); returns the
/// webhook's URL, the CA's PEM and the bodies received.
async fn private_https_fleet() -> (String, String, mpsc::UnboundedReceiver<Value>) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Thermostat fleet test CA");
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
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/fleet", tcp.local_addr().unwrap());
    let listener = TlsListener {
        tcp,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/fleet",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let n = body["desired_capacity"].as_u64().unwrap_or(1);
                let _ = tx.send(body);
                axum::Json(json!({"desired_capacity": n, "in_service_capacity": n}))
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, ca_pem, rx)
}

/// A webhook group `name` at `url`, with `ca_file` as its `webhook_ca_file` when given.
fn group(name: &str, url: &str, ca_file: Option<&str>) -> String {
    let ca = ca_file.map_or_else(String::new, |f| format!("    webhook_ca_file: {f}\n"));
    format!(
        "  - name: {name}\n    backend: webhook\n    min_size: 0\n    max_size: 10\n    desired_capacity: 1\n    webhook_url: {url}\n{ca}"
    )
}

/// Settings of a server on loopback port 0 with its data in `data` and its configuration
/// in `cfg`.
fn settings(data: &Path, cfg: &Path) -> Settings {
    Settings {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.to_owned(),
        config: vec![cfg.to_owned()],
        ..Settings::default()
    }
}

async fn set_desired(server: &TestServer, group: &str, desired: u32) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .put(server.http(&format!("/api/v1/groups/{group}/desired-capacity")))
        .json(&json!({ "desired_capacity": desired }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_groups_ca_bundle_makes_its_private_https_webhook_trusted() {
    let (url, ca_pem, mut calls) = private_https_fleet().await;
    let cfg = tempfile::tempdir().unwrap();
    // A relative path: resolved against the folder of the file that names it.
    std::fs::write(cfg.path().join("fleet-ca.pem"), &ca_pem).unwrap();
    let config = format!(
        "scaling_groups:\n{}{}",
        group("trusting", &url, Some("fleet-ca.pem")),
        group("plain", &url, None)
    );
    std::fs::write(cfg.path().join("fleet.yaml"), config).unwrap();
    let cfg_path = cfg.path().to_owned();
    let server = TestServer::start_with(move |s| s.config = vec![cfg_path]).await;

    // With its bundle, the group's webhook is reached over verified TLS.
    let (status, answer) = set_desired(&server, "trusting", 3).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["desired_capacity"], 3, "{answer}");
    assert_eq!(answer["activity"]["status"], "Successful", "{answer}");
    let call = loop {
        let c = tokio::time::timeout(Duration::from_secs(5), calls.recv())
            .await
            .expect("the webhook is called")
            .unwrap();
        if c["action"] == "set_desired_capacity" {
            break c;
        }
    };
    assert_eq!(
        (&call["group"], &call["desired_capacity"]),
        (&json!("trusting"), &json!(3)),
        "{call}"
    );

    // Without it, the private certificate is refused: the change fails, the group keeps its
    // capacity, and the receiver never gets the call.
    let (status, answer) = set_desired(&server, "plain", 4).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("the fleet of scaling group \"plain\" refused the change"),
        "{message}"
    );
    let group = get_json(server.running.http_addr, "/api/v1/groups/plain").await;
    assert_eq!(group["desired_capacity"], 1, "{group}");
    assert_eq!(group["last_activities"][0]["status"], "Failed", "{group}");
    while let Ok(c) = calls.try_recv() {
        assert_ne!(c["group"], "plain", "{c}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_bundle_that_cannot_be_used_stops_the_start() {
    let url = "https://127.0.0.1:9/fleet";
    let data = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg.path().join("fleet.yaml"),
        format!("scaling_groups:\n{}", group("batch", url, Some("ca.pem"))),
    )
    .unwrap();
    let ca = cfg.path().join("ca.pem").display().to_string();

    // Missing: the requirement is not met.
    let Err(error) = thermostat::app::start(settings(data.path(), cfg.path())).await else {
        panic!("the server started without its webhook_ca_file");
    };
    let text = format!("{error:#}");
    assert!(
        text.contains("scaling_groups.batch.webhook_ca_file") && text.contains(&ca),
        "{text}"
    );

    // Not PEM: the fleet cannot be built.
    std::fs::write(cfg.path().join("ca.pem"), "no certificate here\n").unwrap();
    let Err(error) = thermostat::app::start(settings(data.path(), cfg.path())).await else {
        panic!("the server started with a CA bundle that holds no certificate");
    };
    let text = format!("{error:#}");
    assert!(
        text.contains(&format!(
            "scaling_groups.batch.webhook_ca_file: the CA bundle {ca} holds no PEM certificate"
        )),
        "{text}"
    );
}
