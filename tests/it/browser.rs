//! The web dashboard in a real browser: headless Chromium (Debian's `chromium`) driven by
//! `playwright-core` through `tests/browser/dashboard.mjs`, against a real server with alarms,
//! a simulated scaling group and data pushed over gRPC (`dashboard_api::Scenario`).
//!
//! A second server ([`FitScenario`]) holds series of known ages and a group with several
//! scaling activities close together: the first impression of each page (the default range
//! fitted to the data, activity labels that do not overlap, the explorer's first series and
//! statistics).
//!
//! A third server ([`AnomalyScenario`]) has an anomaly-detection alarm with a trained model:
//! its page shades the band and marks the datapoints outside it.
//!
//! A fourth server, the real binary with `auth.tokens` in its settings file
//! ([`the_dashboard_signs_in_in_a_real_browser`], `tests/browser/signin.mjs`), checks signing
//! in: the sign-in page, the session cookie's flags, the CSRF token, what viewers and operators
//! see and may do, signing out, and that no page breaks its Content-Security-Policy.
//!
//! Needs `node`, `chromium` and `tests/browser/node_modules` (`scripts/setup-browser`).
//! Without them the test is skipped with the reason, unless `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use thermostat_proto::v1::MetricDatum;

use crate::anomaly_band::{ANOMALY_ALARM, AnomalyScenario, SPIKE_MINUTES};
use crate::dashboard_api::{
    COMPOSITE, CPU_ALARM, GROUP, LATENCY_ALARM, NAMESPACE, SWITCH_ALARM, Scenario,
};
use crate::process::ServerProcess;
use crate::util::{TestServer, dims, now_ms, request, set_alarm_state};

const SCRIPT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");

/// Every check the script makes; each must have passed.
const CHECKS: [&str; 23] = [
    "overview lists every alarm with its state",
    "overview shows the group and notifications",
    "alarm page charts the metric with threshold, breaches and ALARM shading",
    "the range selector redraws without a reload",
    "a per-series instance charts its series",
    "a composite alarm shows its rule and timeline",
    "group page charts capacity with activity markers",
    "explorer draws the chosen series and statistics",
    "explorer charts a metric-math expression over the picked series",
    "SetAlarmState changes the overview without a reload",
    "SetAlarmState changes the alarm page without a reload",
    "a fresh series fills the alarm chart's default range of 15 minutes",
    "a series 40 minutes old gets the last hour",
    "the user's range wins over the fitted one",
    "the group chart's default range fits its capacity history",
    "activity labels do not overlap at the default viewport",
    "activity labels do not overlap at a narrow viewport",
    "the explorer opens on a latency series with fitting statistics and range",
    "a capacity gauge is charted without percentiles, as steps",
    "an anomaly alarm's page shades the model's band and marks the datapoints outside it",
    "the cluster page of a single server says it runs alone",
    "a cluster node's page lists the nodes, the leader and the partitions it applies",
    "no script errors and nothing loaded from elsewhere",
];

const SCREENSHOTS: [&str; 21] = [
    "overview",
    "alarm",
    "alarm-1h",
    "alarm-instance",
    "alarm-per-series",
    "alarm-composite",
    "group",
    "explore",
    "explore-math",
    "overview-toggled",
    "alarm-toggled",
    "fit-alarm-fresh",
    "fit-alarm-aged",
    "fit-alarm-chosen",
    "fit-group",
    "fit-group-narrow",
    "fit-explore-default",
    "fit-explore-cpu",
    "fit-explore-gauge",
    "alarm-anomaly",
    "cluster",
];

/// [`FitScenario`]'s namespace, alarms and group.
const FIT_NAMESPACE: &str = "Test/Fit";
const FRESH_ALARM: &str = "fresh-latency";
const AGED_ALARM: &str = "aged-cpu";
const BURST_SWITCH: &str = "burst-switch";
const BURST_GROUP: &str = "burst";
/// Ages of the oldest datapoints of the fresh and the aged series (seconds).
const FRESH_AGE_SECONDS: i64 = 5 * 60;
const AGED_AGE_SECONDS: i64 = 40 * 60;

const FIT_CONFIG: &str = r#"alarms:
  - name: fresh-latency
    namespace: Test/Fit
    metric_name: Latency
    dimensions: {Service: fresh}
    statistic: p99
    period_seconds: 10
    evaluation_periods: 1
    threshold: 1000
    comparison_operator: GreaterThanThreshold
  - name: aged-cpu
    namespace: Test/Fit
    metric_name: CPUUtilization
    dimensions: {Service: aged}
    statistic: Average
    period_seconds: 60
    evaluation_periods: 1
    threshold: 90
    comparison_operator: GreaterThanThreshold
  - name: burst-switch
    description: Toggled by the test to make scaling activities close together
    namespace: Test/Fit
    metric_name: Switch
    statistic: Maximum
    period_seconds: 60
    evaluation_periods: 1
    threshold: 0
    comparison_operator: GreaterThanThreshold
    treat_missing_data: ignore
    alarm_actions: ["policy:burst/up"]
    ok_actions: ["policy:burst/down"]
scaling_groups:
  - name: burst
    backend: simulated
    min_size: 2
    max_size: 10
    desired_capacity: 2
    simulated: {launch_seconds: 0}
    policies:
      - name: up
        policy_type: SimpleScaling
        adjustment_type: ChangeInCapacity
        scaling_adjustment: 1
        cooldown_seconds: 0
      - name: down
        policy_type: SimpleScaling
        adjustment_type: ChangeInCapacity
        scaling_adjustment: -1
        cooldown_seconds: 0
"#;

/// A server whose series have known ages — a latency series 5 minutes old (high resolution,
/// every 10 s) and a CPU series 40 minutes old (every minute) — and a group with six scaling
/// activities within about 20 seconds (in three bursts).
struct FitScenario {
    server: TestServer,
    _config: tempfile::TempDir,
}

impl FitScenario {
    async fn start() -> FitScenario {
        let config = tempfile::tempdir().unwrap();
        std::fs::write(config.path().join("fit.yaml"), FIT_CONFIG).unwrap();
        let path = config.path().to_owned();
        let server = TestServer::start_with(move |s| s.config = vec![path]).await;
        let mut client = server.client().await;
        let now = now_ms();
        let datum = |name: &str, service: &str, ts: i64, unit: &str, resolution: i32| MetricDatum {
            metric_name: name.into(),
            dimensions: dims(&[("Service", service)]),
            timestamp_ms: ts,
            unit: unit.into(),
            storage_resolution: resolution,
            ..Default::default()
        };
        let mut data = Vec::new();
        for ago in (0..=FRESH_AGE_SECONDS).step_by(10) {
            data.push(MetricDatum {
                values: vec![20.0, 35.0, 60.0 + (ago % 70) as f64],
                ..datum("Latency", "fresh", now - ago * 1000, "Milliseconds", 1)
            });
        }
        for ago in (0..=AGED_AGE_SECONDS).step_by(60) {
            data.push(MetricDatum {
                value: Some(30.0 + (ago % 600) as f64 / 20.0),
                ..datum("CPUUtilization", "aged", now - ago * 1000, "Percent", 60)
            });
        }
        client
            .put_metric_data(request(FIT_NAMESPACE, data))
            .await
            .unwrap();

        // Six activities in three bursts: 2→3→2→3, a pause, 3→2→3, a pause, 3→2.
        let addr = server.running.http_addr;
        let mut up = false;
        for pause_ms in [0, 1500, 1500, 10_000, 1500, 6000] {
            tokio::time::sleep(Duration::from_millis(pause_ms)).await;
            up = !up;
            let (state, reason) = if up {
                ("ALARM", "Browser test: burst up")
            } else {
                ("OK", "Browser test: burst down")
            };
            set_alarm_state(addr, BURST_SWITCH, state, reason).await;
        }
        let fit = FitScenario {
            server,
            _config: config,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let acts = reqwest::get(
                fit.server
                    .http(&format!("/api/v1/groups/{BURST_GROUP}/activities")),
            )
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap();
            let n = acts["activities"].as_array().map_or(0, Vec::len);
            if n >= 6 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "expected 6 scaling activities of {BURST_GROUP}: {acts}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        fit
    }
}

/// The browser's executable: `$THERMOSTAT_CHROMIUM`, else Debian's `/usr/bin/chromium`.
fn chromium() -> PathBuf {
    std::env::var_os("THERMOSTAT_CHROMIUM")
        .map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from)
}

/// Node and Chromium when they and the script's packages are installed. Otherwise: under
/// `CI=true` this panics; else it prints why the test is skipped and returns `None` (the
/// rule of `thermostat_testkit::require_peers`).
fn require_browser(test: &str) -> Option<PathBuf> {
    let mut missing = Vec::new();
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node_ok {
        missing.push("node (apt-get install nodejs)".to_owned());
    }
    let browser = chromium();
    if !browser.exists() {
        missing.push(format!("{} (apt-get install chromium)", browser.display()));
    }
    let modules = Path::new(SCRIPT_DIR).join("node_modules/playwright-core/package.json");
    if !modules.exists() {
        missing.push("tests/browser/node_modules (npm ci in tests/browser)".to_owned());
    }
    if missing.is_empty() {
        return Some(browser);
    }
    let why = format!(
        "{test}: needs {}; run scripts/setup-browser",
        missing.join(", ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}");
    }
    eprintln!("SKIPPED {why}");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    let Some(browser) = require_browser("the_dashboard_works_in_a_real_browser") else {
        return;
    };
    let (scenario, fit, anomaly) = tokio::join!(
        Scenario::start(),
        FitScenario::start(),
        AnomalyScenario::start()
    );
    // Two cluster nodes on a real NATS server, for the cluster page.
    let Some(nats_bin) =
        thermostat_testkit::require_nats_server("the_dashboard_works_in_a_real_browser")
    else {
        return;
    };
    let cluster_dir = tempfile::tempdir().unwrap();
    let nats = thermostat_testkit::NatsServer::start(&nats_bin, &cluster_dir.path().join("nats"));
    let cluster_nodes: Vec<crate::process::ServerProcess> = ["a", "b"]
        .iter()
        .map(|id| {
            crate::process::ServerProcess::start(
                &cluster_dir.path().join(id),
                &[
                    "--cluster",
                    &nats.url,
                    "--node-id",
                    id,
                    "--cluster-partitions",
                    "8",
                ],
            )
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let status = crate::util::get_json(&cluster_nodes[0].http, "/api/v1/cluster").await;
        let owned: usize = status["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["partitions"].as_array().unwrap().len())
            .sum();
        if status["nodes"].as_array().unwrap().len() == 2 && owned == 8 && status["ready"] == true {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the cluster did not settle: {status:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let cluster_url = format!("http://{}", cluster_nodes[0].http);
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let started = SystemTime::now();

    let instance = format!("{LATENCY_ALARM}[Host=b]");
    let mut command = Command::new("node");
    command
        .current_dir(SCRIPT_DIR)
        .arg("dashboard.mjs")
        .args(["--url", &scenario.url("")])
        .arg("--screenshots")
        .arg(&screenshots)
        .arg("--chromium")
        .arg(&browser)
        .args(["--alarm", CPU_ALARM])
        .args(["--instance", &instance])
        .args(["--composite", COMPOSITE])
        .args(["--group", GROUP])
        .args(["--toggle", SWITCH_ALARM])
        .args(["--namespace", NAMESPACE])
        .args(["--metric", "CPUUtilization"])
        .args(["--fit-url", &fit.server.http("")])
        .args(["--fresh-alarm", FRESH_ALARM])
        .args(["--aged-alarm", AGED_ALARM])
        .args(["--burst-group", BURST_GROUP])
        .args(["--fit-namespace", FIT_NAMESPACE])
        .args(["--anomaly-url", &anomaly.server.http("")])
        .args(["--anomaly-alarm", ANOMALY_ALARM])
        .args(["--anomaly-outside", &SPIKE_MINUTES.to_string()])
        .args(["--cluster-url", &cluster_url])
        .args(["--cluster-nodes", "a,b"]);
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "dashboard.mjs failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    for check in CHECKS {
        assert!(
            stdout.lines().any(|l| l == format!("ok - {check}")),
            "check {check:?} did not pass:\n{stdout}"
        );
    }
    for name in SCREENSHOTS {
        let path = screenshots.join(format!("{name}.png"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{name}.png is not a PNG"
        );
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert!(
            modified >= started,
            "{name}.png was not written by this run"
        );
    }

    // What the browser did went through the server: the toggled alarm's history has both
    // SetAlarmState changes with the browser test's reasons.
    let h = scenario
        .get(&format!("/api/v1/alarms/{SWITCH_ALARM}/history"))
        .await;
    let reasons: Vec<&str> = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["data"]["newState"]["stateReason"].as_str())
        .collect();
    assert_eq!(
        &reasons[..2],
        [
            "Browser test: maintenance window closed",
            "Browser test: maintenance window opened"
        ]
    );
}

/// The sign-in test's alarm: nothing pushes its metric, so only a person changes its state.
const AUTH_ALARM: &str = "auth-switch";
const AUTH_CONFIG: &str = r#"alarms:
  - name: auth-switch
    description: Set by hand in the sign-in browser test
    namespace: Test/Auth
    metric_name: Switch
    statistic: Maximum
    period_seconds: 60
    evaluation_periods: 1
    threshold: 0
    comparison_operator: GreaterThanThreshold
    treat_missing_data: ignore
"#;

/// Every check `signin.mjs` makes; each must have passed.
const SIGN_IN_CHECKS: [&str; 12] = [
    "a page without a session goes to the sign-in page",
    "a wrong token shows an error",
    "the viewer signs in and sees the pages without operator controls",
    "the session cookie is HttpOnly and SameSite=Strict",
    "the server refuses a viewer's change",
    "signing out returns to the sign-in page and ends the session",
    "the operator signs in and sees the controls",
    "a change with the cookie but without the CSRF token is refused",
    "an operator sets the alarm state through the page",
    "an operator reloads the configuration from the top bar",
    "the sign-in page sends a signed-in browser only to pages of this server",
    "no CSP violations, script errors or requests elsewhere",
];

const SIGN_IN_SCREENSHOTS: [&str; 6] = [
    "signin",
    "signin-wrong",
    "overview-viewer",
    "alarm-operator",
    "alarm-set-state",
    "overview-operator-reloaded",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_signs_in_in_a_real_browser() {
    let Some(browser) = require_browser("the_dashboard_signs_in_in_a_real_browser") else {
        return;
    };
    let (viewer, operator, admin) = (
        thermostat_auth::new_token(),
        thermostat_auth::new_token(),
        thermostat_auth::new_token(),
    );
    let dir = tempfile::tempdir().unwrap();
    let (data, config) = (dir.path().join("data"), dir.path().join("config"));
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("auth.yaml"), AUTH_CONFIG).unwrap();
    // The operator's and the admin's tokens by digest, the viewer's from the environment.
    let settings = dir.path().join("settings.yaml");
    std::fs::write(
        &settings,
        format!(
            "auth:\n  tokens:\n    - name: ops\n      role: operator\n      token_sha256: {}\n    \
             - name: dash\n      role: viewer\n      token_env: VIEWER_TOKEN\n    \
             - name: root\n      role: admin\n      token_sha256: {}\n",
            thermostat_auth::digest_hex(&operator),
            thermostat_auth::digest_hex(&admin),
        ),
    )
    .unwrap();
    let server = ServerProcess::start_with_env(
        &data,
        &[
            "--settings",
            settings.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        &[("VIEWER_TOKEN", &viewer)],
    );
    let url = format!("http://{}", server.http);
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let started = SystemTime::now();

    let mut command = Command::new("node");
    command
        .current_dir(SCRIPT_DIR)
        .arg("signin.mjs")
        .args(["--url", &url])
        .args(["--alarm", AUTH_ALARM])
        .arg("--screenshots")
        .arg(&screenshots)
        .arg("--chromium")
        .arg(&browser)
        .env("VIEWER_TOKEN", &viewer)
        .env("OPERATOR_TOKEN", &operator);
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "signin.mjs failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    for check in SIGN_IN_CHECKS {
        assert!(
            stdout.lines().any(|l| l == format!("ok - {check}")),
            "check {check:?} did not pass:\n{stdout}"
        );
    }
    for name in SIGN_IN_SCREENSHOTS {
        let path = screenshots.join(format!("{name}.png"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{name}.png is not a PNG"
        );
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert!(
            modified >= started,
            "{name}.png was not written by this run"
        );
    }

    // What the browser did is in the audit trail, by principal, and no token is.
    let client = reqwest::Client::new();
    let audit: serde_json::Value = client
        .get(format!("{url}/api/v1/audit?limit=1000"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = audit.to_string();
    for token in [&viewer, &operator, &admin] {
        assert!(
            !text.contains(token.as_str()),
            "a token is in the audit trail"
        );
    }
    let events: Vec<String> = audit["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events: {audit}"))
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["action"].as_str().unwrap_or("?"),
                e["principal"].as_str().unwrap_or("?"),
                e["outcome"].as_str().unwrap_or("?")
            )
        })
        .collect();
    for want in [
        "sign_in unknown denied",
        "sign_in dash success",
        "sign_out dash success",
        "sign_in ops success",
        "set_alarm_state ops success",
        "reload ops success",
        "sign_out ops success",
    ] {
        assert!(
            events.iter().any(|e| e == want),
            "no audit event {want:?}: {events:?}"
        );
    }
    // The viewer's change was refused before the handler: audited as denied, never tried.
    let viewer_changes: Vec<&String> = events
        .iter()
        .filter(|e| e.starts_with("set_alarm_state dash"))
        .collect();
    assert!(
        viewer_changes
            .iter()
            .all(|e| e.as_str() == "set_alarm_state dash denied"),
        "the viewer's refused change reached the handler: {events:?}"
    );
    let alarm: serde_json::Value = client
        .get(format!("{url}/api/v1/alarms/{AUTH_ALARM}"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(alarm["state"], "ALARM", "{alarm}");
    assert_eq!(alarm["reason"], "Browser test: set by the operator");
    server.kill9();
}
