//! Access control through the public interfaces: every role against every API (gRPC and
//! HTTP), namespace-scoped tokens, rotation by reload, the refusal to serve beyond loopback
//! without tokens, the audit trail, and no token ever echoed in logs or answers.

use std::path::{Path, PathBuf};

use reqwest::{Method, StatusCode};
use thermostat::app::Settings;
use thermostat::settings::ServeArgs;
use thermostat_auth::{Role, digest_hex, new_token};
use thermostat_proto::v1::metrics_service_client::MetricsServiceClient;
use thermostat_proto::v1::{ListMetricsRequest, PutMetricDataRequest};
use tonic::Code;
use tonic::transport::Channel;

use crate::util::*;

const ALARMS: &str = "alarms:
  - name: cpu-high
    namespace: Test/Auth
    metric_name: CPU
    statistic: Average
    period_seconds: 60
    evaluation_periods: 1
    threshold: 50
    comparison_operator: GreaterThanThreshold
";

/// One token of each role, by role.
struct Tokens {
    agent: String,
    viewer: String,
    operator: String,
    admin: String,
}

impl Tokens {
    fn new() -> Self {
        Tokens {
            agent: new_token(),
            viewer: new_token(),
            operator: new_token(),
            admin: new_token(),
        }
    }

    fn of(&self, role: Role) -> &str {
        match role {
            Role::Agent => &self.agent,
            Role::Viewer => &self.viewer,
            Role::Operator => &self.operator,
            Role::Admin => &self.admin,
        }
    }

    fn all(&self) -> [&str; 4] {
        [&self.agent, &self.viewer, &self.operator, &self.admin]
    }

    /// The settings file's `auth` section: the admin's token from `admin_source` (e.g.
    /// `token_env: VAR` or `token_file: PATH`), the others by digest.
    fn settings_yaml(&self, admin_source: &str) -> String {
        format!(
            "auth:\n  tokens:\n    - {{name: ci-agent, role: agent, token_sha256: {}}}\n    - {{name: dash, role: viewer, token_sha256: {}}}\n    - {{name: oncall, role: operator, token_sha256: {}}}\n    - {{name: root, role: admin, {admin_source}}}\n",
            digest_hex(&self.agent),
            digest_hex(&self.viewer),
            digest_hex(&self.operator),
        )
    }
}

/// A settings file in `dir` with `yaml`, and the config file with one alarm.
fn files(dir: &Path, yaml: &str) -> (PathBuf, PathBuf) {
    let settings = dir.join("settings.yaml");
    std::fs::write(&settings, yaml).unwrap();
    let config = dir.join("alarms.yaml");
    std::fs::write(&config, ALARMS).unwrap();
    (settings, config)
}

/// Settings as `thermostat serve --settings FILE` resolves them, on loopback port 0.
fn resolve(dir: &Path, settings_file: &Path, config: &Path) -> Settings {
    let mut s = ServeArgs {
        settings: Some(settings_file.to_owned()),
        ..ServeArgs::default()
    }
    .resolve()
    .unwrap();
    s.grpc_addr = "127.0.0.1:0".parse().unwrap();
    s.http_addr = "127.0.0.1:0".parse().unwrap();
    s.data_dir = dir.join("data");
    s.config = vec![config.to_owned()];
    s
}

fn authed<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    if let Some(t) = token {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    r
}

async fn grpc(addr: std::net::SocketAddr) -> MetricsServiceClient<Channel> {
    MetricsServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

fn push(namespace: &str) -> PutMetricDataRequest {
    request(
        namespace,
        vec![value_datum("CPU", &[("Host", "a")], now_ms() - 1000, 10.0)],
    )
}

/// The gRPC code of each call, for `token`.
async fn grpc_codes(
    client: &mut MetricsServiceClient<Channel>,
    token: Option<&str>,
) -> [(&'static str, Code); 4] {
    let code = |r: Result<Code, tonic::Status>| r.unwrap_or_else(|s| s.code());
    let put = client
        .put_metric_data(authed(push("Test/Auth"), token))
        .await
        .map(|_| Code::Ok);
    let stream = client
        .stream_metric_data(authed(tokio_stream::iter(vec![push("Test/Auth")]), token))
        .await;
    let stream = match stream {
        Ok(r) => {
            let mut s = r.into_inner();
            match tokio_stream::StreamExt::next(&mut s).await {
                Some(Ok(_)) => Ok(Code::Ok),
                Some(Err(e)) => Err(e),
                None => Ok(Code::Unknown),
            }
        }
        Err(e) => Err(e),
    };
    let stats = client
        .get_metric_statistics(authed(
            stats_request(
                "Test/Auth",
                "CPU",
                &[("Host", "a")],
                now_ms() - 120_000,
                now_ms(),
                60,
                &["Average"],
            ),
            token,
        ))
        .await
        .map(|_| Code::Ok);
    let list = client
        .list_metrics(authed(ListMetricsRequest::default(), token))
        .await
        .map(|_| Code::Ok);
    [
        ("PutMetricData", code(put)),
        ("StreamMetricData", code(stream)),
        ("GetMetricStatistics", code(stats)),
        ("ListMetrics", code(list)),
    ]
}

/// `(method, path, JSON body, least role)`; `None`: open to all.
fn http_table() -> Vec<(
    Method,
    &'static str,
    Option<serde_json::Value>,
    Option<Role>,
)> {
    use Role::*;
    let state = serde_json::json!({"state_value": "OK", "state_reason": "auth test"});
    vec![
        (Method::GET, "/healthz", None, None),
        (Method::GET, "/readyz", None, None),
        (Method::GET, "/metrics", None, Some(Viewer)),
        (
            Method::GET,
            "/api/v1/statistics?namespace=Test/Auth&metric_name=CPU&dimensions=Host=a",
            None,
            Some(Viewer),
        ),
        (Method::GET, "/api/v1/metrics", None, Some(Viewer)),
        (Method::GET, "/api/v1/alarms", None, Some(Viewer)),
        (Method::GET, "/api/v1/alarms/cpu-high", None, Some(Viewer)),
        (
            Method::GET,
            "/api/v1/alarms/cpu-high/history",
            None,
            Some(Viewer),
        ),
        (Method::GET, "/api/v1/groups", None, Some(Viewer)),
        (Method::GET, "/api/v1/notifications", None, Some(Viewer)),
        (
            Method::GET,
            "/api/v1/dashboard/overview",
            None,
            Some(Viewer),
        ),
        (
            Method::GET,
            "/api/v1/dashboard/alarms/cpu-high",
            None,
            Some(Viewer),
        ),
        (Method::GET, "/", None, Some(Viewer)),
        (Method::GET, "/explore", None, Some(Viewer)),
        (Method::GET, "/alarms/cpu-high", None, Some(Viewer)),
        (
            Method::PUT,
            "/api/v1/alarms/cpu-high/state",
            Some(state),
            Some(Operator),
        ),
        (Method::POST, "/api/v1/reload", None, Some(Operator)),
        (Method::POST, "/api/v1/admin/backup", None, Some(Admin)),
        (Method::GET, "/api/v1/audit", None, Some(Admin)),
    ]
}

fn allowed(role: Role, least: Role) -> bool {
    match least {
        Role::Agent => matches!(role, Role::Agent | Role::Admin),
        least => role >= least,
    }
}

/// Every HTTP answer's body, kept to search them for tokens.
#[derive(Default)]
struct Bodies(Vec<String>);

async fn call(
    http: &reqwest::Client,
    addr: std::net::SocketAddr,
    method: &Method,
    path: &str,
    body: Option<&serde_json::Value>,
    token: Option<&str>,
    bodies: &mut Bodies,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut req = http.request(method.clone(), format!("http://{addr}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let text = resp.text().await.unwrap();
    bodies.0.push(text.clone());
    (status, headers, text)
}

#[tokio::test]
async fn every_role_against_every_api() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = Tokens::new();
    // The admin's token from a file (one trailing newline is not part of it).
    let admin_file = dir.path().join("admin.token");
    std::fs::write(&admin_file, format!("{}\n", tokens.admin)).unwrap();
    let source = format!("token_file: {}", admin_file.display());
    let (settings_file, config) = files(dir.path(), &tokens.settings_yaml(&source));
    let running = thermostat::app::start(resolve(dir.path(), &settings_file, &config))
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut bodies = Bodies::default();

    // gRPC: agents (and admins) push, viewers and up read.
    let mut client = grpc(running.grpc_addr).await;
    for role in Role::ALL {
        for (rpc, code) in grpc_codes(&mut client, Some(tokens.of(role))).await {
            let least = if rpc.contains("MetricData") && !rpc.starts_with("Get") {
                Role::Agent
            } else {
                Role::Viewer
            };
            let want = if allowed(role, least) {
                Code::Ok
            } else {
                Code::PermissionDenied
            };
            assert_eq!(code, want, "{rpc} as {role}");
        }
    }
    for token in [None, Some("tht_not-a-token")] {
        for (rpc, code) in grpc_codes(&mut client, token).await {
            assert_eq!(code, Code::Unauthenticated, "{rpc} with {token:?}");
        }
    }
    let denied = client
        .put_metric_data(authed(push("Test/Auth"), Some(&tokens.viewer)))
        .await
        .unwrap_err();
    assert_eq!(
        denied.message(),
        "role viewer may not push metrics (needs agent)"
    );
    // Reflection needs a token too.
    let channel = Channel::from_shared(format!("http://{}", running.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(channel);
    let list = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let open = reflection
        .server_reflection_info(tokio_stream::iter(vec![list.clone()]))
        .await;
    assert_eq!(open.unwrap_err().code(), Code::Unauthenticated);
    let ok = reflection
        .server_reflection_info(authed(tokio_stream::iter(vec![list]), Some(&tokens.agent)))
        .await;
    assert!(ok.is_ok(), "an agent may list the services");

    // HTTP: each endpoint with each role, and without a token.
    for (method, path, body, least) in http_table() {
        for role in Role::ALL {
            let (status, _, text) = call(
                &http,
                running.http_addr,
                &method,
                path,
                body.as_ref(),
                Some(tokens.of(role)),
                &mut bodies,
            )
            .await;
            let ok = least.is_none_or(|least| allowed(role, least));
            if ok {
                assert!(
                    status.is_success(),
                    "{method} {path} as {role}: {status} {text}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{method} {path} as {role}: {text}"
                );
                let needs = least.unwrap();
                assert!(
                    text.contains(&format!("role {role} may not"))
                        && text.contains(&format!("(needs {needs})")),
                    "{text}"
                );
            }
        }
        let (status, headers, text) = call(
            &http,
            running.http_addr,
            &method,
            path,
            body.as_ref(),
            None,
            &mut bodies,
        )
        .await;
        match least {
            None => assert!(status.is_success(), "{method} {path} open: {status}"),
            Some(_)
                if method == Method::GET && !path.starts_with("/api/") && path != "/metrics" =>
            {
                assert_eq!(
                    status,
                    StatusCode::SEE_OTHER,
                    "{path} without a token: {text}"
                );
                assert!(
                    headers["location"]
                        .to_str()
                        .unwrap()
                        .starts_with("/signin?next=")
                );
            }
            Some(_) => {
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} without a token: {text}"
                );
                assert!(
                    headers["www-authenticate"]
                        .to_str()
                        .unwrap()
                        .starts_with("Bearer")
                );
            }
        }
        let (status, _, _) = call(
            &http,
            running.http_addr,
            &method,
            path,
            body.as_ref(),
            Some("tht_wrong"),
            &mut bodies,
        )
        .await;
        if least.is_some()
            && !(method == Method::GET && !path.starts_with("/api/") && path != "/metrics")
        {
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with a wrong token"
            );
        }
    }

    // Refusals are counted by role and permission.
    let (_, _, metrics) = call(
        &http,
        running.http_addr,
        &Method::GET,
        "/metrics",
        None,
        Some(&tokens.admin),
        &mut bodies,
    )
    .await;
    assert!(
        metrics.lines().any(|l| l.starts_with(
            "thermostat_auth_denied_total{role=\"viewer\",permission=\"push_metrics\"}"
        ) && !l.ends_with(" 0")),
        "{metrics}"
    );

    for body in &bodies.0 {
        for t in tokens.all() {
            assert!(!body.contains(t), "a token in an answer: {body}");
        }
    }
    running.shutdown();
    running.wait().await.unwrap();
}
