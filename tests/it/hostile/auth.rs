//! Hostile input against access control (issue 18): credentials in bulk and oversized ones.
//! Nothing an unauthenticated or unprivileged caller sends leaves state behind (sessions,
//! audit lines, log lines) beyond fixed bounds, and the server keeps serving.
//!
//! The server runs in-process on a manual clock, so "at most 10 a second" is a count within
//! one frozen second, never a measured duration.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;
use thermostat::app::{self, Running, Settings};
use thermostat_auth::{digest_hex, new_token};
use thermostat_metrics::{ManualClock, Timestamp};
use thermostat_proto::v1::ListMetricsRequest;
use thermostat_proto::v1::metrics_service_client::MetricsServiceClient;

const T0: i64 = 1_795_687_200_000;

struct Server {
    running: Running,
    viewer: String,
    admin: String,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (viewer, admin) = (new_token(), new_token());
    let auth = format!(
        "tokens:\n  - {{name: dash, role: viewer, token_sha256: {}}}\n  - {{name: root, role: admin, token_sha256: {}}}\n",
        digest_hex(&viewer),
        digest_hex(&admin)
    );
    let settings = Settings {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        allow_empty_config: true,
        alarm_tick_loop: false,
        auth: serde_yaml_ng::from_str(&auth).unwrap(),
        ..Settings::default()
    };
    let clock = Arc::new(ManualClock::new(Timestamp(T0)));
    let running = app::start_with_clock(settings, clock).await.unwrap();
    Server {
        running,
        viewer,
        admin,
        _dir: dir,
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.http_addr)
    }

    async fn audit_events(&self) -> Vec<serde_json::Value> {
        let page: serde_json::Value = reqwest::Client::new()
            .get(self.url("/api/v1/audit?limit=1000"))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["events"].as_array().unwrap().clone()
    }
}

#[tokio::test]
async fn bogus_credentials_in_bulk_leave_no_state_and_flood_nothing() {
    let server = start().await;
    let http = reqwest::Client::new();
    let rounds = 300;
    for i in 0..rounds {
        // An unknown token, a forged session cookie, a failed sign-in and a refused change.
        let r = http
            .get(server.url("/api/v1/alarms"))
            .bearer_auth(new_token())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = http
            .get(server.url("/api/v1/alarms"))
            .header("cookie", format!("thermostat_session={}", new_token()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = http
            .post(server.url("/api/v1/session"))
            .json(&json!({"token": format!("tht_guess_{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = http
            .post(server.url("/api/v1/reload"))
            .bearer_auth(&server.viewer)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(
        server.running.security.access.sessions().len(),
        0,
        "no session was made"
    );
    // Within one (frozen) second, refusals reach the audit trail at most 10 times per kind.
    let events = server.audit_events().await;
    assert!(!events.is_empty(), "refusals are audited");
    assert!(
        events.len() <= 20,
        "{} audit lines for {rounds} rounds of refusals",
        events.len()
    );
    // Every refusal is counted.
    let metrics = http
        .get(server.url("/metrics"))
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |prefix: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    assert!(
        count("thermostat_auth_unauthenticated_total{reason=\"unknown\"}") >= f64::from(rounds),
        "{metrics}"
    );
    assert!(
        count("thermostat_auth_denied_total{role=\"viewer\",permission=\"reload\"}")
            >= f64::from(rounds),
        "{metrics}"
    );
    // And the server still serves.
    let r = http
        .get(server.url("/api/v1/alarms"))
        .bearer_auth(&server.viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn oversized_credentials_are_refused_cleanly() {
    let server = start().await;
    let http = reqwest::Client::new();
    // HTTP: a 100 KB bearer token is over the header limit (431, JSON); a 5,000-byte one is
    // simply unknown (401).
    let huge = format!("tht_{}", "a".repeat(100_000));
    let r = http
        .get(server.url("/api/v1/alarms"))
        .bearer_auth(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let long = format!("tht_{}", "a".repeat(5_000));
    let r = http
        .get(server.url("/api/v1/alarms"))
        .bearer_auth(&long)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A sign-in with a 1 MiB token is refused, and nothing of it is kept.
    let r = http
        .post(server.url("/api/v1/session"))
        .json(&json!({"token": "t".repeat(1 << 20)}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let events = server.audit_events().await;
    let text = serde_json::to_string(&events).unwrap();
    assert!(
        text.len() < 64 << 10,
        "the audit trail holds no megabyte token ({} bytes)",
        text.len()
    );
    // gRPC: 64 KB of metadata is refused (by HTTP/2's header list limit or as unknown), and
    // the connection's next call works.
    let mut client = MetricsServiceClient::connect(format!("http://{}", server.running.grpc_addr))
        .await
        .unwrap();
    let mut req = tonic::Request::new(ListMetricsRequest::default());
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", "a".repeat(64 << 10)).parse().unwrap(),
    );
    assert!(client.list_metrics(req).await.is_err());
    let mut req = tonic::Request::new(ListMetricsRequest::default());
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", server.viewer).parse().unwrap(),
    );
    let mut client = MetricsServiceClient::connect(format!("http://{}", server.running.grpc_addr))
        .await
        .unwrap();
    assert!(
        client.list_metrics(req).await.is_ok(),
        "the server keeps serving"
    );
}
