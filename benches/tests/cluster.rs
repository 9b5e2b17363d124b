//! `compare --ci --cluster 3 --skip-victoriametrics` end to end (issue 24): the real
//! `thermostat` binary as a single node and then as three cluster nodes on one real
//! nats-server (JetStream), the real `loadgen` (one per node, `--part i/3`). Checks the exit
//! status and the JSON's cluster keys: three nodes, every sample counted once between them,
//! every series stored once between their stores, and positive rates and costs.
//!
//! nats-server (`.venv/bin/nats-server`, from `scripts/setup-test-peers`) missing: under
//! `CI=true` the test fails; otherwise it prints why and is skipped.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::process::Command;

mod common;
use common::thermostat_bin;

/// `--ci`: 10 hosts × 10 metrics × 50 samples.
const CI_SAMPLES: u64 = 5000;

#[test]
fn ci_cluster_of_three_counts_every_sample_once() {
    let Some(nats) =
        thermostat_testkit::require_nats_server("ci_cluster_of_three_counts_every_sample_once")
    else {
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_compare"))
        .args(["--ci", "--json", "--cluster", "3", "--skip-victoriametrics"])
        .arg("--thermostat-bin")
        .arg(thermostat_bin())
        .arg("--loadgen-bin")
        .arg(env!("CARGO_BIN_EXE_loadgen"))
        .arg("--nats-bin")
        .arg(&nats)
        .output()
        .unwrap();
    let j = common::compare_json(&out);
    let f = |k: &str| {
        j[k].as_f64()
            .unwrap_or_else(|| panic!("{k} is not a number in {j}"))
    };

    // The single-node run is still there, unchanged.
    assert_eq!(j["thermostat_samples_counted"], CI_SAMPLES, "{j}");
    assert_eq!(j["counts_match"], true, "{j}");

    assert_eq!(j["cluster_nodes"], 3, "{j}");
    assert_eq!(j["cluster_samples_counted"], CI_SAMPLES, "{j}");
    assert_eq!(j["cluster_series_stored"], 100, "{j}");
    for key in [
        "cluster_samples_per_second",
        "cluster_samples_per_second_per_node",
    ] {
        assert!(f(key) > 0.0 && f(key).is_finite(), "{key} in {j}");
    }
    // At CI size the load lasts a few CPU ticks of 10 ms: a cost may be 0 (then there is no
    // ratio), never negative or missing.
    for key in [
        "cluster_thermostat_cpu_seconds_per_million",
        "cluster_nats_cpu_seconds_per_million",
        "single_thermostat_cpu_seconds_per_million",
    ] {
        assert!(f(key) >= 0.0 && f(key).is_finite(), "{key} in {j}");
    }
    let single = f("single_thermostat_cpu_seconds_per_million");
    if single > 0.0 {
        let ratio = f("cluster_thermostat_cpu_seconds_per_million") / single;
        assert!((f("cluster_cpu_ratio") - ratio).abs() < 1e-9, "{j}");
    } else {
        assert!(j["cluster_cpu_ratio"].is_null(), "{j}");
    }

    let nodes = j["cluster_node_runs"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "{j}");
    let mut sent = 0;
    let mut partitions = 0;
    for (i, n) in nodes.iter().enumerate() {
        assert_eq!(n["node_id"], format!("n{}", i + 1), "{j}");
        // Each node got its share (5 requests of 1000 datums: 2, 2 and 1) and counted it.
        assert!(n["samples_sent"].as_u64().unwrap() > 0, "{j}");
        assert_eq!(n["samples_counted"], n["samples_sent"], "{j}");
        assert!(n["cpu_seconds"].as_f64().unwrap() >= 0.0, "{j}");
        assert!(n["peak_rss_bytes"].as_u64().unwrap() > 0, "{j}");
        sent += n["samples_sent"].as_u64().unwrap();
        partitions += n["partitions_owned"].as_u64().unwrap();
    }
    assert_eq!(sent, CI_SAMPLES, "{j}");
    assert_eq!(Some(partitions), j["cluster_partitions"].as_u64(), "{j}");
    assert!(
        j["cluster_nats_peak_rss_bytes"].as_u64().unwrap() > 0,
        "{j}"
    );
}
