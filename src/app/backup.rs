//! `thermostat backup` and `thermostat restore`: a consistent copy of a data directory, taken
//! while the server runs.
//!
//! A backup is a tar file holding `MANIFEST.json`, a fresh snapshot of the series
//! (`series.snapshot`, with its log watermarks), and copies of `state.redb` (alarm states and
//! history, scaling groups and activities) and `outbox.redb` (notifications), each taken in one
//! read transaction. It holds everything acknowledged before it started; the write-ahead log
//! is not needed because the snapshot is taken at backup time. A running server makes the
//! backup itself (`POST /api/v1/admin/backup`, which the CLI finds through
//! `<data dir>/server.json`); without a server the CLI reads the data directory directly.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use serde_json::{Value, json};
use thermostat_metrics::{Clock, Store};
use thermostat_notify::Outbox;

use super::state_db::StateDb;

/// The backup format this build writes and reads.
pub const BACKUP_FORMAT_VERSION: u64 = 1;
/// Written at start-up beside the data, removed at clean shutdown: how the CLI finds a running
/// server.
pub const SERVER_FILE: &str = "server.json";
const FILES: [&str; 3] = ["series.snapshot", "state.redb", "outbox.redb"];

/// Writes a backup of the given stores to `to`.
///
/// # Errors
/// Any write failure; nothing is left at `to` then.
pub fn write_backup(
    store: &Store,
    db: &StateDb,
    outbox: &Outbox,
    to: &Path,
    now: thermostat_metrics::Timestamp,
) -> anyhow::Result<Value> {
    let parent = to
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".thermostat-backup")
        .tempdir_in(parent)?;
    let info = thermostat_ingest::persist::save_snapshot(store, staging.path())?;
    db.backup_to(&staging.path().join("state.redb"))?;
    outbox.backup_to(&staging.path().join("outbox.redb"))?;
    let manifest = json!({
        "format_version": BACKUP_FORMAT_VERSION,
        "created": now.to_rfc3339(),
        "thermostat_version": env!("CARGO_PKG_VERSION"),
        "series": info.series,
    });
    fs::write(
        staging.path().join("MANIFEST.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    let tmp = to.with_extension("partial");
    {
        let mut tar = tar::Builder::new(
            File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?,
        );
        tar.append_path_with_name(staging.path().join("MANIFEST.json"), "MANIFEST.json")?;
        for f in FILES {
            tar.append_path_with_name(staging.path().join(f), f)?;
        }
        tar.into_inner()?.sync_all()?;
    }
    fs::rename(&tmp, to).with_context(|| format!("cannot write {}", to.display()))?;
    Ok(manifest)
}

/// Backs up a data directory no server is using (loads it like a start-up would).
///
/// # Errors
/// The data directory cannot be read, or the backup written.
pub fn backup_offline(
    data_dir: &Path,
    to: &Path,
    now: thermostat_metrics::Timestamp,
) -> anyhow::Result<Value> {
    let store = Store::new(super::STORE_SHARDS);
    thermostat_ingest::persist::load_snapshot(&store, data_dir)?;
    thermostat_ingest::wal::recover(data_dir, &store, false)?;
    let db = StateDb::open(data_dir)?;
    let outbox = Outbox::open(data_dir)?;
    write_backup(&store, &db, &outbox, to, now)
}

/// Restores a backup into `data_dir`, which must be empty or missing.
///
/// # Errors
/// A non-empty target, an unreadable or unknown backup.
pub fn restore(from: &Path, data_dir: &Path) -> anyhow::Result<Value> {
    if data_dir.exists() && fs::read_dir(data_dir)?.next().is_some() {
        anyhow::bail!(
            "{}: refusing to restore into a directory that is not empty",
            data_dir.display()
        );
    }
    fs::create_dir_all(data_dir)?;
    let file = File::open(from).with_context(|| format!("cannot read {}", from.display()))?;
    tar::Archive::new(file)
        .unpack(data_dir)
        .with_context(|| format!("{}: not a Thermostat backup", from.display()))?;
    let manifest: Value = serde_json::from_slice(
        &fs::read(data_dir.join("MANIFEST.json")).context("the backup has no MANIFEST.json")?,
    )?;
    if manifest["format_version"] != BACKUP_FORMAT_VERSION {
        anyhow::bail!(
            "{}: backup format version {} is not supported by this build (it reads version {BACKUP_FORMAT_VERSION})",
            from.display(),
            manifest["format_version"]
        );
    }
    fs::remove_file(data_dir.join("MANIFEST.json"))?;
    // Check that everything opens, so that a bad backup fails here and not at start-up.
    thermostat_ingest::persist::load_snapshot(&Store::new(super::STORE_SHARDS), data_dir)?;
    StateDb::open(data_dir)?;
    Outbox::open(data_dir)?;
    Ok(manifest)
}

/// The running server's addresses, if a server is using `data_dir` and answers.
pub fn running_server(data_dir: &Path) -> Option<String> {
    let text = fs::read_to_string(data_dir.join(SERVER_FILE)).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    let http = v["http"].as_str()?.to_owned();
    std::net::TcpStream::connect_timeout(&http.parse().ok()?, std::time::Duration::from_secs(2))
        .ok()?;
    Some(http)
}

/// The admin side of the HTTP API: backups made by the running server.
#[derive(Debug)]
pub struct Admin {
    /// The series store.
    pub store: Arc<Store>,
    /// The state database.
    pub db: Arc<StateDb>,
    /// The notification outbox.
    pub outbox: Outbox,
    /// The data directory (backups are staged in `backups/` below it).
    pub data_dir: PathBuf,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

impl thermostat_dashboards::actions::AdminApi for Admin {
    fn backup(&self) -> Result<Value, String> {
        let now = self.clock.now();
        let path = self
            .data_dir
            .join("backups")
            .join(format!("backup-{}.tar", now.as_millis()));
        let mut manifest = write_backup(&self.store, &self.db, &self.outbox, &path, now)
            .map_err(|e| format!("{e:#}"))?;
        manifest["path"] = json!(path.display().to_string());
        Ok(manifest)
    }
}
