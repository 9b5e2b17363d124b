//! The fleet adapters against real peers: moto's EC2 Auto Scaling through the SDK, and a
//! local HTTP receiver for webhooks.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_autoscaling::config::Credentials;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};
use thermostat_fleet::{AutoScalingFleet, Error, Fleet, WebhookFleet};
use thermostat_testkit::{Moto, require_peers};

async fn moto_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "static"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// `(desired, min, max, instances)` as moto reports the group through the SDK.
async fn read_back(client: &aws_sdk_autoscaling::Client, asg: &str) -> (i32, i32, i32, usize) {
    let out = client
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(asg)
        .send()
        .await
        .expect("DescribeAutoScalingGroups");
    let g = &out.auto_scaling_groups()[0];
    (
        g.desired_capacity().unwrap_or(-1),
        g.min_size().unwrap_or(-1),
        g.max_size().unwrap_or(-1),
        g.instances().len(),
    )
}

#[tokio::test]
async fn autoscaling_fleet_scales_a_real_group_out_and_in() {
    let Some(python) = require_peers(
        "autoscaling_fleet_scales_a_real_group_out_and_in",
        &["moto"],
    ) else {
        return;
    };
    let moto = Moto::start(&python);
    let sdk = moto_config(&moto.endpoint).await;
    let client = aws_sdk_autoscaling::Client::new(&sdk);
    client
        .create_launch_configuration()
        .launch_configuration_name("api-lc")
        .image_id("ami-12c6146b")
        .instance_type("t3.micro")
        .send()
        .await
        .expect("CreateLaunchConfiguration");
    client
        .create_auto_scaling_group()
        .auto_scaling_group_name("api-asg")
        .launch_configuration_name("api-lc")
        .min_size(1)
        .max_size(6)
        .desired_capacity(2)
        .availability_zones("us-east-1a")
        .send()
        .await
        .expect("CreateAutoScalingGroup");

    let fleet = AutoScalingFleet::new(&sdk).with_group("api", "api-asg");
    let c = fleet.describe("api").await.unwrap();
    assert_eq!((c.desired, c.min, c.max, c.in_service), (2, 1, 6, 2));

    // Scale out, then in, and check through the SDK what moto holds.
    let cause = "At 2026-11-26T10:00:00Z a monitor alarm api-high-cpu in state ALARM triggered policy cpu-target changing the desired capacity from 2 to 5.";
    let c = fleet.set_desired("api", 5, false, cause).await.unwrap();
    assert_eq!((c.desired, c.in_service), (5, 5));
    assert_eq!(read_back(&client, "api-asg").await, (5, 1, 6, 5));
    let c = fleet
        .set_desired("api", 3, false, "scale in")
        .await
        .unwrap();
    assert_eq!((c.desired, c.in_service), (3, 3));
    assert_eq!(read_back(&client, "api-asg").await, (3, 1, 6, 3));

    // UpdateAutoScalingGroup (the start-up sizes of an aws_autoscaling group).
    let c = fleet
        .update_limits("api", Some(2), Some(10), Some(4))
        .await
        .unwrap();
    assert_eq!((c.desired, c.min, c.max), (4, 2, 10));
    assert_eq!(read_back(&client, "api-asg").await, (4, 2, 10, 4));

    // Errors name the group and the operation.
    let missing = AutoScalingFleet::new(&sdk).with_group("ghost", "no-such-asg");
    let e = missing.describe("ghost").await.unwrap_err();
    assert!(
        e.to_string().starts_with(
            "scaling group \"ghost\": EC2 Auto Scaling DescribeAutoScalingGroups failed: no Auto Scaling group named \"no-such-asg\""
        ),
        "{e}"
    );
    assert!(matches!(
        fleet.describe("web").await,
        Err(Error::UnknownGroup { .. })
    ));
}

#[derive(Clone, Default)]
struct Receiver {
    bodies: Arc<Mutex<Vec<Value>>>,
    desired: Arc<Mutex<u32>>,
}

async fn hook(State(r): State<Receiver>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    r.bodies.lock().unwrap().push(body.clone());
    let mut d = r.desired.lock().unwrap();
    if let Some(n) = body.get("desired_capacity").and_then(Value::as_u64) {
        *d = u32::try_from(n).unwrap();
    }
    // One instance is still booting after each change.
    (
        StatusCode::OK,
        Json(json!({"desired_capacity": *d, "in_service_capacity": d.saturating_sub(1)})),
    )
}

async fn broken() -> (StatusCode, &'static str) {
    (StatusCode::INTERNAL_SERVER_ERROR, "scaler is down")
}

async fn slow() -> Json<Value> {
    tokio::time::sleep(Duration::from_secs(5)).await;
    Json(json!({"desired_capacity": 1, "in_service_capacity": 1}))
}

#[tokio::test]
async fn webhook_fleet_posts_the_desired_capacity() {
    let receiver = Receiver::default();
    *receiver.desired.lock().unwrap() = 2;
    let app = axum::Router::new()
        .route("/batch", post(hook))
        .route("/broken", post(broken))
        .route("/slow", post(slow))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let fleet = WebhookFleet::new(Duration::from_millis(500)).unwrap();
    fleet.add_group("batch", &format!("{base}/batch"), 0, 50);
    fleet.add_group("broken", &format!("{base}/broken"), 0, 50);
    fleet.add_group("slow", &format!("{base}/slow"), 0, 50);

    let c = fleet.describe("batch").await.unwrap();
    assert_eq!((c.desired, c.in_service, c.min, c.max), (2, 1, 0, 50));
    let cause = "At 2026-11-26T10:00:00Z a monitor alarm batch-backlog in state ALARM triggered policy queue-target changing the desired capacity from 2 to 7.";
    let c = fleet.set_desired("batch", 7, false, cause).await.unwrap();
    assert_eq!((c.desired, c.in_service), (7, 6));
    let bodies = receiver.bodies.lock().unwrap().clone();
    assert_eq!(bodies[0], json!({"group": "batch", "action": "describe"}));
    assert_eq!(
        bodies[1],
        json!({
            "group": "batch",
            "action": "set_desired_capacity",
            "desired_capacity": 7,
            "cause": cause,
            "min_size": 0,
            "max_size": 50,
            "honor_cooldown": false
        })
    );
    // The limits are checked before calling, as SetDesiredCapacity does.
    let e = fleet
        .set_desired("batch", 51, false, "x")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("is above max value 50"), "{e}");
    assert_eq!(receiver.bodies.lock().unwrap().len(), 2);
    let c = fleet
        .update_limits("batch", Some(1), Some(5), None)
        .await
        .unwrap();
    assert_eq!((c.desired, c.min, c.max), (5, 1, 5));

    // Errors name the URL and the status.
    let e = fleet
        .set_desired("broken", 1, false, "x")
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "scaling group \"broken\": webhook {base}/broken answered HTTP 500: reply: \"scaler is down\""
        )
    );
    let e = fleet.describe("slow").await.unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "scaling group \"slow\": webhook {base}/slow failed: timed out"
        )),
        "{msg}"
    );
    server.abort();
}

/// A private CA's PEM and an HTTPS webhook on 127.0.0.1:0 whose certificate it signed,
/// answering every call with 3 desired and 3 in service; returns its URL and the CA.
async fn private_https_webhook() -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
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
    let url = format!("https://{}/fleet", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        r#"{"desired_capacity": 3, "in_service_capacity": 3}"#.to_owned(),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (url, ca_pem)
}

#[tokio::test]
async fn a_webhook_groups_ca_bundle_makes_its_private_certificate_trusted() {
    let (url, ca_pem) = private_https_webhook().await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("fleet-ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let fleet = WebhookFleet::new(Duration::from_secs(5)).unwrap();
    fleet.add_group("plain", &url, 0, 10);
    fleet
        .add_group_with_ca_file("trusting", &url, 0, 10, &ca_file.display().to_string())
        .unwrap();
    // Verification is on: without the bundle, the private certificate is refused.
    let e = fleet.describe("plain").await.unwrap_err();
    assert!(matches!(&e, Error::Webhook { status: None, .. }), "{e}");
    let c = fleet.describe("trusting").await.unwrap();
    assert_eq!((c.desired, c.in_service), (3, 3));

    // A bundle that cannot be used is an error naming the group and the file.
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "no certificate here\n").unwrap();
    let path = not_pem.display().to_string();
    let e = fleet
        .add_group_with_ca_file("bad", &url, 0, 10, &path)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "scaling_groups.bad.webhook_ca_file: the CA bundle {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )
    );
    assert!(matches!(
        fleet.describe("bad").await,
        Err(Error::UnknownGroup { .. })
    ));
}

/// A set of webhook groups `(name, url, webhook_ca_file)`, as validation makes them.
fn webhook_set(groups: &[(&str, &str, Option<&str>)]) -> thermostat_scaler::ScalingSet {
    let groups: Vec<Value> = groups
        .iter()
        .map(|(name, url, ca_file)| {
            json!({
                "name": name,
                "backend": {"kind": "webhook", "url": url, "ca_file": ca_file},
                "min_size": 0,
                "max_size": 10,
                "desired_capacity": null,
                "default_cooldown": {"secs": 300, "nanos": 0},
                "default_instance_warmup": null,
                "launch": {"secs": 0, "nanos": 0},
                "policies": [],
                "scheduled_actions": [],
                "source": {"file": "scaling.yaml", "line": 1},
            })
        })
        .collect();
    serde_json::from_value(json!({ "groups": groups })).unwrap()
}

#[tokio::test]
async fn from_set_trusts_each_groups_webhook_ca_file_and_names_every_unusable_one() {
    let (url, ca_pem) = private_https_webhook().await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("fleet-ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let ca = ca_file.display().to_string();
    let set = webhook_set(&[("trusting", &url, Some(&ca)), ("plain", &url, None)]);
    let fleet = WebhookFleet::from_set(&set, Duration::from_secs(5)).unwrap();
    let c = fleet.describe("trusting").await.unwrap();
    assert_eq!((c.desired, c.in_service), (3, 3));
    let e = fleet.describe("plain").await.unwrap_err();
    assert!(matches!(&e, Error::Webhook { status: None, .. }), "{e}");

    // Every bundle that cannot be used is reported, naming the group's key and the file.
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let big = dir.path().join("big.pem");
    std::fs::write(&big, vec![b'#'; thermostat_fleet::MAX_CA_FILE_BYTES + 1]).unwrap();
    let missing = dir.path().join("missing.pem");
    let (empty, big, missing) = (
        empty.display().to_string(),
        big.display().to_string(),
        missing.display().to_string(),
    );
    let set = webhook_set(&[
        ("a", &url, Some(&empty)),
        ("ok", &url, Some(&ca)),
        ("b", &url, Some(&big)),
        ("c", &url, Some(&missing)),
    ]);
    let errors: Vec<String> = WebhookFleet::from_set(&set, Duration::from_secs(5))
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert_eq!(
        errors[0],
        format!(
            "scaling_groups.a.webhook_ca_file: the CA bundle {empty} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )
    );
    assert_eq!(
        errors[1],
        format!(
            "scaling_groups.b.webhook_ca_file: the CA bundle {big} is larger than 1048576 bytes (the limit)"
        )
    );
    assert!(
        errors[2].starts_with(&format!(
            "scaling_groups.c.webhook_ca_file: the CA bundle {missing} cannot be read ("
        )),
        "{}",
        errors[2]
    );
}
