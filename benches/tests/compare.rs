//! The CI-sized comparison (`compare --ci`: 100 series × 50 samples) end to end: the real
//! `thermostat` binary, the real `loadgen` and, when installed, the real VictoriaMetrics.
//! Checks that the JSON has the eight keys and that both servers counted every sample;
//! and that `benches/compare/run` (the script CI calls) hands its flags to `compare`.
//!
//! VictoriaMetrics (`/usr/bin/victoria-metrics`, or `$VICTORIA_METRICS_BIN`) missing: under
//! `CI=true` the tests fail (CI installs it: `benches/compare/run --ci` does); otherwise they
//! print why and check Thermostat's side alone. The server binary is the one `cargo test` at
//! the workspace root builds next to `loadgen`; `THERMOSTAT_BIN` overrides it.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::thermostat_bin;

const KEYS: [&str; 8] = [
    "thermostat_samples_per_second",
    "victoriametrics_samples_per_second",
    "ratio",
    "thermostat_peak_rss_bytes",
    "victoriametrics_peak_rss_bytes",
    "ack_latency_p99_ms",
    "thermostat_cpu_seconds",
    "victoriametrics_cpu_seconds",
];
/// `--ci`: 10 hosts × 10 metrics × 50 samples.
const CI_SAMPLES: u64 = 5000;

/// The VictoriaMetrics binary, or `None` (with the reason printed) when it is missing and
/// `CI` is not `true`.
fn victoriametrics(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("VICTORIA_METRICS_BIN")
        .map_or_else(|| PathBuf::from("/usr/bin/victoria-metrics"), PathBuf::from);
    if path.is_file() {
        return Some(path);
    }
    let why = format!(
        "{test}: VictoriaMetrics ({}) is missing; install it with `apt-get install -y \
         victoria-metrics` (benches/compare/run does)",
        path.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}");
    }
    eprintln!("SKIPPED the VictoriaMetrics half of {why}; checking Thermostat alone");
    None
}

fn check(out: &Output, vm: bool) -> serde_json::Value {
    let j = common::compare_json(out);
    for key in KEYS {
        assert!(j.get(key).is_some(), "{key} missing from {j}");
        if vm || !key.starts_with("victoriametrics") && key != "ratio" {
            assert!(j[key].as_f64().unwrap() > 0.0, "{key} in {j}");
        }
    }
    assert_eq!(j["samples"], CI_SAMPLES, "{j}");
    assert_eq!(j["thermostat_samples_counted"], CI_SAMPLES, "{j}");
    assert_eq!(j["thermostat_series_active"], 100, "{j}");
    assert_eq!(j["counts_match"], true, "{j}");
    if vm {
        assert_eq!(j["victoriametrics_samples_counted"], CI_SAMPLES, "{j}");
        assert_eq!(
            j["victoriametrics_rows_added_to_storage"], CI_SAMPLES,
            "{j}"
        );
        // VictoriaMetrics sometimes counts series of its own in this counter (100, 101 and more
        // seen on the same build); every workload series must be there.
        let new_series = j["victoriametrics_new_series"].as_u64().unwrap();
        assert!(new_series >= 100, "{j}");
        assert_eq!(j["victoriametrics_samples_queried"], CI_SAMPLES, "{j}");
        let ratio = j["thermostat_samples_per_second"].as_f64().unwrap()
            / j["victoriametrics_samples_per_second"].as_f64().unwrap();
        assert!((j["ratio"].as_f64().unwrap() - ratio).abs() < 1e-9, "{j}");
    }
    j
}

#[test]
fn ci_comparison_counts_every_sample_on_both_servers() {
    let vm = victoriametrics("ci_comparison_counts_every_sample_on_both_servers");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_compare"));
    cmd.args(["--ci", "--json"])
        .arg("--thermostat-bin")
        .arg(thermostat_bin())
        .arg("--loadgen-bin")
        .arg(env!("CARGO_BIN_EXE_loadgen"));
    match &vm {
        Some(p) => cmd.arg("--vm-bin").arg(p),
        None => cmd.arg("--skip-victoriametrics"),
    };
    check(&cmd.output().unwrap(), vm.is_some());
}

#[test]
fn the_run_script_passes_its_flags_to_compare() {
    let vm = victoriametrics("the_run_script_passes_its_flags_to_compare");
    // `<target>/<profile>/compare`: the script finds the binaries of the same profile.
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_compare")).parent().unwrap();
    let profile = bin_dir.file_name().unwrap().to_str().unwrap();
    let target = bin_dir.parent().unwrap();
    if std::env::var_os("THERMOSTAT_BIN").is_some() || !["debug", "release"].contains(&profile) {
        eprintln!("SKIPPED: the script only knows target/debug and target/release");
        return;
    }
    thermostat_bin();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("compare/run");
    let mut cmd = Command::new(script);
    cmd.env("CARGO_TARGET_DIR", target)
        .args(["--no-build", "--ci", "--json"]);
    if profile == "debug" {
        cmd.arg("--debug");
    }
    if vm.is_none() {
        cmd.arg("--skip-victoriametrics");
    }
    check(&cmd.output().unwrap(), vm.is_some());

    // Bad sizes are refused before anything starts.
    let out = Command::new(env!("CARGO_BIN_EXE_compare"))
        .args(["--series", "15", "--skip-victoriametrics"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("multiple of 10"));
}

/// `--protocol remote-write`: loadgen sends the same workload as Prometheus remote write 1.0
/// to VictoriaMetrics' `/api/v1/write` and to Thermostat's `POST /api/v1/write`; both count
/// every sample.
#[test]
fn ci_remote_write_comparison_counts_every_sample_on_both_servers() {
    let vm = victoriametrics("ci_remote_write_comparison_counts_every_sample_on_both_servers");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_compare"));
    cmd.args(["--ci", "--json", "--protocol", "remote-write"])
        .args(["--rw-connections", "2"])
        .arg("--thermostat-bin")
        .arg(thermostat_bin())
        .arg("--loadgen-bin")
        .arg(env!("CARGO_BIN_EXE_loadgen"));
    match &vm {
        Some(p) => cmd.arg("--vm-bin").arg(p),
        None => cmd.arg("--skip-victoriametrics"),
    };
    let out = cmd.output().unwrap();
    let j = check(&out, vm.is_some());
    assert_eq!(j["protocol"], "remote-write", "{j}");
    assert_eq!(j["grpc_mode"], "http1", "{j}");
    if vm.is_some() {
        assert!(
            j["victoriametrics_ack_latency_p99_ms"].as_f64().unwrap() > 0.0,
            "{j}"
        );
    }
}
