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
