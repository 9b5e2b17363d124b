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
scaling_groups:
  - name: web
    backend: simulated
    min_size: 1
    max_size: 10
    desired_capacity: 2
    policies:
      - {name: out, policy_type: SimpleScaling, adjustment_type: ChangeInCapacity, scaling_adjustment: 1}
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
        (Method::GET, "/api/v1/tokens", None, Some(Admin)),
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

    // Who has access, without a secret.
    let (_, _, list) = call(
        &http,
        running.http_addr,
        &Method::GET,
        "/api/v1/tokens",
        None,
        Some(&tokens.admin),
        &mut bodies,
    )
    .await;
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let names: Vec<(&str, &str)> = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("ci-agent", "agent"),
            ("dash", "viewer"),
            ("oncall", "operator"),
            ("root", "admin")
        ]
    );
    for t in tokens.all() {
        assert!(
            !list.to_string().contains(&digest_hex(t)),
            "no digest is shown"
        );
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

#[tokio::test]
async fn namespace_scoped_tokens_push_and_read_only_their_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, reader, admin) = (new_token(), new_token(), new_token());
    let yaml = format!(
        "auth:\n  tokens:\n    - {{name: web-agent, role: agent, namespaces: ['App/*', Web], token_sha256: {}}}\n    - {{name: web-viewer, role: viewer, namespaces: ['App/*'], token_sha256: {}}}\n    - {{name: root, role: admin, token_sha256: {}}}\n",
        digest_hex(&agent),
        digest_hex(&reader),
        digest_hex(&admin)
    );
    let (settings_file, config) = files(dir.path(), &yaml);
    let running = thermostat::app::start(resolve(dir.path(), &settings_file, &config))
        .await
        .unwrap();
    let mut client = grpc(running.grpc_addr).await;
    for ns in ["App/checkout", "Web"] {
        client
            .put_metric_data(authed(push(ns), Some(&agent)))
            .await
            .unwrap_or_else(|e| panic!("push to {ns}: {e}"));
    }
    let e = client
        .put_metric_data(authed(push("Billing"), Some(&agent)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(
        e.message().contains("\"Billing\"") && e.message().contains("App/*, Web"),
        "{}",
        e.message()
    );
    // The admin sees everything; the scoped viewer only App/*.
    let listed = |token: &str| {
        let mut client = client.clone();
        let token = token.to_owned();
        async move {
            let mut names: Vec<String> = client
                .list_metrics(authed(ListMetricsRequest::default(), Some(&token)))
                .await
                .unwrap()
                .into_inner()
                .metrics
                .into_iter()
                .map(|m| m.namespace)
                .collect();
            names.sort();
            names
        }
    };
    assert_eq!(listed(&admin).await, ["App/checkout", "Web"]);
    assert_eq!(listed(&reader).await, ["App/checkout"]);
    let stats = |ns: &str| {
        stats_request(
            ns,
            "CPU",
            &[("Host", "a")],
            now_ms() - 120_000,
            now_ms(),
            60,
            &["Average"],
        )
    };
    assert!(
        client
            .get_metric_statistics(authed(stats("App/checkout"), Some(&reader)))
            .await
            .is_ok()
    );
    let e = client
        .get_metric_statistics(authed(stats("Web"), Some(&reader)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // GetMetricData (issue 22): every MetricStat's namespace must be in scope.
    let data = |namespaces: &[&str]| {
        use thermostat_proto::v1::{
            GetMetricDataRequest, Metric, MetricDataQuery, MetricStat, metric_data_query::Query,
        };
        let mut queries: Vec<MetricDataQuery> = namespaces
            .iter()
            .enumerate()
            .map(|(i, ns)| MetricDataQuery {
                id: format!("m{i}"),
                query: Some(Query::MetricStat(MetricStat {
                    metric: Some(Metric {
                        namespace: (*ns).into(),
                        metric_name: "CPU".into(),
                        dimensions: dims(&[("Host", "a")]),
                    }),
                    period_seconds: 60,
                    stat: "Average".into(),
                    unit: String::new(),
                })),
                ..MetricDataQuery::default()
            })
            .collect();
        queries.push(MetricDataQuery {
            id: "e".into(),
            query: Some(Query::Expression("SUM(METRICS())".into())),
            ..MetricDataQuery::default()
        });
        GetMetricDataRequest {
            metric_data_queries: queries,
            start_time_ms: now_ms() - 120_000,
            end_time_ms: now_ms(),
            ..GetMetricDataRequest::default()
        }
    };
    assert!(
        client
            .get_metric_data(authed(data(&["App/checkout"]), Some(&reader)))
            .await
            .is_ok()
    );
    let e = client
        .get_metric_data(authed(data(&["App/checkout", "Web"]), Some(&reader)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // HTTP reads are scoped the same way.
    let http = reqwest::Client::new();
    let get = |path: &str| {
        http.get(format!("http://{}{path}", running.http_addr))
            .bearer_auth(&reader)
            .send()
    };
    assert_eq!(
        get("/api/v1/statistics?namespace=Web&metric_name=CPU&dimensions=Host=a")
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        get("/api/v1/statistics?namespace=App/checkout&metric_name=CPU&dimensions=Host=a")
            .await
            .unwrap()
            .status(),
        200
    );
    let metric_data = serde_json::json!({
        "MetricDataQueries": [{"Id": "m1", "MetricStat": {"Metric": {"Namespace": "Web", "MetricName": "CPU"}, "Period": 60, "Stat": "Average"}}],
        "StartTime": (now_ms() - 120_000) / 1000,
        "EndTime": now_ms() / 1000,
    });
    let r = http
        .post(format!("http://{}/api/v1/metric-data", running.http_addr))
        .bearer_auth(&reader)
        .json(&metric_data)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let list: serde_json::Value = get("/api/v1/metrics").await.unwrap().json().await.unwrap();
    let namespaces: Vec<&str> = list["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces, ["App/checkout"]);
    running.shutdown();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn a_reload_rotates_tokens_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new, admin) = (new_token(), new_token(), new_token());
    let entries = |operator: &str| {
        format!(
            "auth:\n  tokens:\n    - {{name: oncall, role: operator, token_sha256: {}}}\n    - {{name: root, role: admin, token_sha256: {}}}\n",
            digest_hex(operator),
            digest_hex(&admin)
        )
    };
    let (settings_file, config) = files(dir.path(), &entries(&old));
    let running = thermostat::app::start(resolve(dir.path(), &settings_file, &config))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let alarms = |token: String| {
        let req = http
            .get(format!("http://{}/api/v1/alarms", running.http_addr))
            .bearer_auth(token);
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(alarms(old.clone()).await, 200);
    assert_eq!(alarms(new.clone()).await, 401);
    // A dashboard session signed in with the old token.
    let signed_in = http
        .post(format!("http://{}/api/v1/session", running.http_addr))
        .json(&serde_json::json!({"token": old}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let with_cookie = || {
        let req = http
            .get(format!("http://{}/api/v1/alarms", running.http_addr))
            .header("cookie", cookie.clone());
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(with_cookie().await, 200);
    std::fs::write(&settings_file, entries(&new)).unwrap();
    let reload = http
        .post(format!("http://{}/api/v1/reload", running.http_addr))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(reload.status(), 200, "{}", reload.text().await.unwrap());
    assert_eq!(alarms(old.clone()).await, 401, "the old token is gone");
    assert_eq!(
        alarms(new.clone()).await,
        200,
        "the new token works at once"
    );
    let mut client = grpc(running.grpc_addr).await;
    let e = client
        .list_metrics(authed(ListMetricsRequest::default(), Some(&old)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "gRPC rotates too");
    // A reload that would leave a bad settings file changes nothing.
    std::fs::write(
        &settings_file,
        "auth:\n  tokens:\n    - {name: x, role: agent, token: plain}\n",
    )
    .unwrap();
    let reload = http
        .post(format!("http://{}/api/v1/reload", running.http_addr))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(reload.status(), 400);
    let text = reload.text().await.unwrap();
    assert!(
        text.contains("plain text") && !text.contains("plain\""),
        "{text}"
    );
    assert_eq!(alarms(new.clone()).await, 200, "the tokens in force stay");
    running.shutdown();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn a_non_loopback_address_without_tokens_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let settings = Settings {
        grpc_addr: "0.0.0.0:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.clone(),
        allow_empty_config: true,
        ..Settings::default()
    };
    let e = thermostat::app::start(settings.clone()).await.unwrap_err();
    let text = format!("{e:#}");
    assert!(
        text.contains("0.0.0.0:0")
            && text.contains("auth.tokens")
            && text.contains("--insecure-no-auth"),
        "{text}"
    );
    assert!(!data.exists(), "a refused start leaves no data directory");
    // The flag lets the check pass (the server is not bound here: tests listen on loopback
    // only), and keeps warning.
    let insecure = Settings {
        insecure_no_auth: true,
        ..settings.clone()
    };
    let security =
        thermostat::security::Security::start(&insecure, thermostat_auth::AuthTelemetry::default())
            .unwrap();
    assert!(!security.access.is_enforced());
    // Tokens make the same address acceptable.
    let t = new_token();
    let mut with_tokens = settings;
    with_tokens.auth = serde_yaml_ng::from_str(&format!(
        "tokens: [{{name: a, role: admin, token_sha256: {}}}]",
        digest_hex(&t)
    ))
    .unwrap();
    let security = thermostat::security::Security::start(
        &with_tokens,
        thermostat_auth::AuthTelemetry::default(),
    )
    .unwrap();
    assert!(security.access.is_enforced());
}

/// The audit trail through a real process: reload, set state, backup and sign-ins are
/// recorded, survive `kill -9`, and can be searched; no token is ever in a log line or an
/// answer.
#[tokio::test]
async fn the_audit_trail_survives_kill_9_and_no_token_leaks() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = Tokens::new();
    let (settings_file, config) = files(
        dir.path(),
        &tokens.settings_yaml("token_env: THERMOSTAT_TEST_ADMIN_TOKEN"),
    );
    let data = dir.path().join("data");
    let args = [
        "--settings",
        settings_file.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ];
    let env = [("THERMOSTAT_TEST_ADMIN_TOKEN", tokens.admin.as_str())];
    let server = crate::process::ServerProcess::start_with_env(&data, &args, &env);
    let http = reqwest::Client::new();
    let mut bodies = Bodies::default();
    let addr: std::net::SocketAddr = server.http.parse().unwrap();
    let state = serde_json::json!({"state_value": "ALARM", "state_reason": "audit test"});
    let steps: [(Method, &str, Option<serde_json::Value>, &str, u16); 6] = [
        (Method::POST, "/api/v1/reload", None, &tokens.operator, 200),
        (
            Method::PUT,
            "/api/v1/alarms/cpu-high/state",
            Some(state),
            &tokens.operator,
            200,
        ),
        (
            Method::POST,
            "/api/v1/admin/backup",
            None,
            &tokens.admin,
            200,
        ),
        (
            Method::POST,
            "/api/v1/admin/backup",
            None,
            &tokens.viewer,
            403,
        ),
        (
            Method::POST,
            "/api/v1/session",
            Some(serde_json::json!({"token": tokens.viewer})),
            "",
            200,
        ),
        (
            Method::POST,
            "/api/v1/session",
            Some(serde_json::json!({"token": "tht_guess"})),
            "",
            401,
        ),
    ];
    for (method, path, body, token, want) in &steps {
        let token = Some(*token).filter(|t| !t.is_empty());
        let (status, _, text) =
            call(&http, addr, method, path, body.as_ref(), token, &mut bodies).await;
        assert_eq!(status.as_u16(), *want, "{method} {path}: {text}");
    }
    let day = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let file = data.join("audit").join(format!("audit-{day}.jsonl"));
    assert!(file.exists(), "{} exists", file.display());
    let mut lines = server.log_lines(std::time::Duration::from_millis(500));
    server.kill9();

    let server = crate::process::ServerProcess::start_with_env(&data, &args, &env);
    let addr: std::net::SocketAddr = server.http.parse().unwrap();
    let (status, _, text) = call(
        &http,
        addr,
        &Method::GET,
        "/api/v1/audit",
        None,
        Some(&tokens.admin),
        &mut bodies,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let page: serde_json::Value = serde_json::from_str(&text).unwrap();
    let events = page["events"].as_array().unwrap();
    let summary: Vec<(String, String, String)> = events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["principal"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want = [
        ("reload", "oncall", "success"),
        ("set_alarm_state", "oncall", "success"),
        ("backup", "root", "success"),
        ("backup", "dash", "denied"),
        ("sign_in", "dash", "success"),
        ("sign_in", "unknown", "denied"),
    ];
    assert_eq!(
        summary,
        want.map(|(a, p, o)| (a.to_owned(), p.to_owned(), o.to_owned())),
        "{text}"
    );
    let reload = &events[0];
    assert_eq!(reload["role"], "operator");
    assert_eq!(reload["source_ip"], "127.0.0.1");
    assert!(!reload["request_id"].as_str().unwrap().is_empty());
    assert_eq!(
        reload["parameters"]["files"][0]["sha256"],
        digest_hex(ALARMS),
        "{reload}"
    );
    assert_eq!(events[1]["target"], "cpu-high");
    assert_eq!(events[1]["parameters"]["state_value"], "ALARM");
    // Filters and pages.
    let get = |q: &str| format!("/api/v1/audit?{q}");
    let (_, _, by_principal) = call(
        &http,
        addr,
        &Method::GET,
        &get("principal=oncall"),
        None,
        Some(&tokens.admin),
        &mut bodies,
    )
    .await;
    let by_principal: serde_json::Value = serde_json::from_str(&by_principal).unwrap();
    assert_eq!(by_principal["events"].as_array().unwrap().len(), 2);
    let (_, _, by_action) = call(
        &http,
        addr,
        &Method::GET,
        &get("action=backup"),
        None,
        Some(&tokens.admin),
        &mut bodies,
    )
    .await;
    let by_action: serde_json::Value = serde_json::from_str(&by_action).unwrap();
    let backups = by_action["events"].as_array().unwrap();
    assert_eq!(backups.len(), 2, "the backup and the refused one");
    assert_eq!(
        backups[1]["error"],
        "role viewer may not take backups (needs admin)"
    );
    let mut seen = 0;
    let mut next: Option<String> = None;
    loop {
        let q = match &next {
            Some(t) => format!("limit=2&next_token={t}"),
            None => "limit=2".into(),
        };
        let (_, _, page) = call(
            &http,
            addr,
            &Method::GET,
            &get(&q),
            None,
            Some(&tokens.admin),
            &mut bodies,
        )
        .await;
        let page: serde_json::Value = serde_json::from_str(&page).unwrap();
        let n = page["events"].as_array().unwrap().len();
        assert!(n <= 2);
        seen += n;
        match page["next_token"].as_str() {
            Some(t) => next = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, want.len(), "pages walk every event once");
    let (status, _, _) = call(
        &http,
        addr,
        &Method::GET,
        "/api/v1/audit",
        None,
        Some(&tokens.operator),
        &mut bodies,
    )
    .await;
    assert_eq!(status, 403, "only admins read the audit trail");
    lines.extend(server.log_lines(std::time::Duration::from_millis(500)));
    drop(server);
    assert!(lines.len() > 5, "the server logged");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("readable by every user") && l.contains("settings.yaml")),
        "a world-readable settings file gets a warning"
    );
    for text in lines.iter().chain(&bodies.0) {
        for t in tokens.all() {
            assert!(!text.contains(t), "a token leaked: {text}");
            assert!(
                !text.contains("tht_guess"),
                "a presented token leaked: {text}"
            );
        }
    }
}

#[tokio::test]
async fn public_metrics_serves_the_servers_metrics_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let t = new_token();
    let yaml = format!(
        "auth:\n  public_metrics: true\n  tokens:\n    - {{name: a, role: agent, token_sha256: {}}}\n",
        digest_hex(&t)
    );
    let (settings_file, config) = files(dir.path(), &yaml);
    let running = thermostat::app::start(resolve(dir.path(), &settings_file, &config))
        .await
        .unwrap();
    let get = |path: &str| reqwest::get(format!("http://{}{path}", running.http_addr));
    let metrics = get("/metrics").await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("thermostat_auth_unauthenticated_total{reason=\"missing\"} 0"),
        "{text}"
    );
    assert_eq!(
        get("/api/v1/alarms").await.unwrap().status(),
        401,
        "only /metrics is public"
    );
    running.shutdown();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn secure_cookies_marks_the_session_cookie_secure_behind_a_tls_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let t = new_token();
    let yaml = format!(
        "auth:\n  secure_cookies: true\n  tokens:\n    - {{name: v, role: viewer, token_sha256: {}}}\n",
        digest_hex(&t)
    );
    let (settings_file, config) = files(dir.path(), &yaml);
    let running = thermostat::app::start(resolve(dir.path(), &settings_file, &config))
        .await
        .unwrap();
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/v1/session", running.http_addr))
        .json(&serde_json::json!({ "token": t }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let attributes: Vec<&str> = cookie.split("; ").collect();
    assert!(
        attributes.contains(&"Secure") && attributes.contains(&"HttpOnly"),
        "{cookie}"
    );
    running.shutdown();
    running.wait().await.unwrap();
}
