//! What the bench crate's end-to-end tests share.

use std::path::PathBuf;

/// The server binary: the one `cargo test` at the workspace root builds next to `loadgen`
/// (`target/<profile>/thermostat`), or `$THERMOSTAT_BIN`.
pub(crate) fn thermostat_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("THERMOSTAT_BIN") {
        return p.into();
    }
    let path = PathBuf::from(env!("CARGO_BIN_EXE_loadgen")).with_file_name("thermostat");
    assert!(
        path.exists(),
        "the server binary {} is missing: run `cargo build` (or `cargo test`) at the workspace \
         root first, or set THERMOSTAT_BIN",
        path.display()
    );
    path
}

/// The JSON object a `compare --json` run printed, after checking that it exited 0 (a failure
/// shows both of its outputs).
#[allow(dead_code, reason = "not every test binary runs compare")]
pub(crate) fn compare_json(out: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "compare failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: not one JSON object: {stdout}\nstderr: {stderr}"))
}
