//! Issue 23, "Latency below saturation", end to end: `loadgen --rate` (open loop) against the
//! real `thermostat` binary on port 0, and `compare --ci --latency-curve`.
//!
//! What proves the loop is open is the achieved rate: sent as fast as the slots allow, this
//! workload goes several times faster than the target on a dev-profile server, while on the
//! schedule (request k due at k × batch / rate) it cannot beat the target by more than the
//! last request's share. No latency is compared with a wall-clock bound (the machine is
//! shared); only the percentiles' order is checked. The server binary is the one `cargo test`
//! at the workspace root builds next to `loadgen`; `THERMOSTAT_BIN` overrides it.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::process::Command;

use thermostat_benches::compare::metric_value;

mod common;
#[path = "common/server.rs"]
mod server;
use server::Server;

/// 100 series × 50 samples in requests of 100: 50 requests, one due every 5 ms.
const SAMPLES: u64 = 5000;
const RATE: f64 = 20_000.0;

/// `thermostat_ingest_samples_total` from `GET /metrics`.
fn samples_counted(server: &Server) -> f64 {
    let response = server.scrape();
    metric_value(&response, "thermostat_ingest_samples_total")
        .unwrap_or_else(|| panic!("no thermostat_ingest_samples_total in:\n{response}"))
}

fn run_loadgen(server: &Server, target: &str, extra: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--target", target])
        .args([
            "--series",
            "100",
            "--samples-per-series",
            "50",
            "--batch",
            "100",
        ])
        .args(["--connections", "2", "--rate", "20000", "--json"])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "loadgen failed ({}):\nstdout: {stdout}\nstderr: {stderr}\nserver log:\n{}",
        out.status,
        server.log()
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Latency percentiles in order: p50 ≤ p90 ≤ p99 ≤ p99.9 ≤ max, all positive.
fn assert_percentiles_ordered(j: &serde_json::Value) {
    let keys = [
        "ack_latency_p50_ms",
        "ack_latency_p90_ms",
        "ack_latency_p99_ms",
        "ack_latency_p999_ms",
        "ack_latency_max_ms",
    ];
    let values: Vec<f64> = keys
        .iter()
        .map(|k| {
            j[k].as_f64()
                .unwrap_or_else(|| panic!("{k} missing from {j}"))
        })
        .collect();
    assert!(values[0] > 0.0, "{j}");
    assert!(values.is_sorted(), "percentiles out of order: {j}");
}

/// Every sample acknowledged and counted by the server, the target echoed, the achieved rate
/// near it and never much above it.
fn assert_open_loop(server: &Server, report: &serde_json::Value) {
    assert_eq!(report["samples"], SAMPLES, "{report}");
    assert_eq!(report["expected_samples"], SAMPLES, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["target_rate"], RATE, "{report}");
    let achieved = report["samples_per_second"].as_f64().unwrap();
    // The last of the 50 requests is due after 245 ms, so at most 5000 / 0.245 = 20,408/s.
    assert!(
        achieved <= RATE * 1.2,
        "achieved {achieved} samples/s, more than 20 % over the target: not scheduled? {report}"
    );
    assert!(
        achieved >= RATE / 10.0,
        "achieved {achieved} samples/s, far below the target: {report}"
    );
    assert!(report["seconds"].as_f64().unwrap() >= 0.245, "{report}");
    assert_percentiles_ordered(report);
    // Every request left no earlier than its due time (the histogram's floor is 1 µs).
    let late = report["sent_late_p99_ms"].as_f64();
    assert!(late.is_some_and(|ms| ms >= 0.001), "{report}");
    let counted = samples_counted(server);
    assert_eq!(
        counted,
        SAMPLES as f64,
        "server counted {counted}, loadgen {report}; server log:\n{}",
        server.log()
    );
}

#[test]
fn unary_open_loop_sends_on_schedule_and_counts_every_sample() {
    let server = Server::start(&[]);
    let report = run_loadgen(&server, &format!("http://{}", server.grpc), &[]);
    assert_eq!(report["mode"], "unary");
    assert_eq!(report["requests"], 50, "{report}");
    assert_open_loop(&server, &report);
    assert!(
        report.get("ack_latency_p99_ms").is_some(),
        "existing keys are kept"
    );
}

#[test]
fn stream_open_loop_sends_on_schedule_and_counts_every_sample() {
    let server = Server::start(&[]);
    let report = run_loadgen(
        &server,
        &format!("http://{}", server.grpc),
        &["--stream", "--in-flight", "8"],
    );
    assert_eq!(report["mode"], "stream");
    assert_eq!(report["requests"], 50, "{report}");
    assert_open_loop(&server, &report);
}

#[test]
fn remote_write_open_loop_sends_on_schedule_and_counts_every_sample() {
    let server = Server::start(&[]);
    let report = run_loadgen(
        &server,
        &format!("http://{}/api/v1/write", server.http),
        &["--protocol", "remote-write"],
    );
    assert_eq!(report["mode"], "http1");
    assert_open_loop(&server, &report);
}

#[test]
fn without_rate_the_loop_stays_closed() {
    let server = Server::start(&[]);
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("--target")
        .arg(format!("http://{}", server.grpc))
        .args(["--series", "10", "--samples-per-series", "10", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(j["target_rate"].is_null(), "{j}");
    assert_eq!(j["samples"], 100, "{j}");
    assert_percentiles_ordered(&j);

    let bad = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--rate", "0"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("positive number"),
        "{bad:?}"
    );
}

/// `compare --ci --latency-curve`: the closed-loop run, then four fresh servers sent the
/// workload open loop at 25, 50, 75 and 90 % of its rate, each counting every sample.
#[test]
fn ci_latency_curve_has_four_levels_with_every_sample_counted() {
    let out = Command::new(env!("CARGO_BIN_EXE_compare"))
        .args([
            "--ci",
            "--json",
            "--latency-curve",
            "--skip-victoriametrics",
        ])
        .arg("--thermostat-bin")
        .arg(common::thermostat_bin())
        .arg("--loadgen-bin")
        .arg(env!("CARGO_BIN_EXE_loadgen"))
        .output()
        .unwrap();
    let j = common::compare_json(&out);
    // Today's keys are kept.
    assert_eq!(j["samples"], SAMPLES, "{j}");
    assert_eq!(j["thermostat_samples_counted"], SAMPLES, "{j}");
    assert_eq!(j["counts_match"], true, "{j}");
    assert!(j["ack_latency_p99_ms"].as_f64().unwrap() > 0.0, "{j}");
    let max_rate = j["thermostat_samples_per_second"].as_f64().unwrap();
    assert!(max_rate > 0.0, "{j}");

    let curve = j["latency_curve"].as_array().unwrap();
    assert_eq!(curve.len(), 4, "{j}");
    for (level, fraction) in curve.iter().zip([0.25, 0.5, 0.75, 0.9]) {
        assert_eq!(level["fraction"], fraction, "{j}");
        assert_eq!(level["samples_counted"], SAMPLES, "{j}");
        let target = level["target_rate"].as_f64().unwrap();
        assert!(
            (target - max_rate * fraction).abs() < 1e-6 * max_rate,
            "{j}"
        );
        assert!(level["achieved_rate"].as_f64().unwrap() > 0.0, "{j}");
        assert_percentiles_ordered(level);
    }
}
