//! The web dashboard in a real browser: headless Chromium (Debian's `chromium`) driven by
//! `playwright-core` through `tests/browser/dashboard.mjs`, against a real server with alarms,
//! a simulated scaling group and data pushed over gRPC (`dashboard_api::Scenario`).
//!
//! Needs `node`, `chromium` and `tests/browser/node_modules` (`scripts/setup-browser`).
//! Without them the test is skipped with the reason, unless `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::dashboard_api::{
    COMPOSITE, CPU_ALARM, GROUP, LATENCY_ALARM, NAMESPACE, SWITCH_ALARM, Scenario,
};

const SCRIPT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");

/// Every check the script makes; each must have passed.
const CHECKS: [&str; 11] = [
    "overview lists every alarm with its state",
    "overview shows the group and notifications",
    "alarm page charts the metric with threshold, breaches and ALARM shading",
    "the range selector redraws without a reload",
    "a per-series instance charts its series",
    "a composite alarm shows its rule and timeline",
    "group page charts capacity with activity markers",
    "explorer draws the chosen series and statistics",
    "SetAlarmState changes the overview without a reload",
    "SetAlarmState changes the alarm page without a reload",
    "no script errors and nothing loaded from elsewhere",
];

const SCREENSHOTS: [&str; 10] = [
    "overview",
    "alarm",
    "alarm-1h",
    "alarm-instance",
    "alarm-per-series",
    "alarm-composite",
    "group",
    "explore",
    "overview-toggled",
    "alarm-toggled",
];

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
    let scenario = Scenario::start().await;
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
        .args(["--metric", "CPUUtilization"]);
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
