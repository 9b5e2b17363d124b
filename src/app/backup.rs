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
//! The server writes one backup at a time (a second request gets `409` naming the running
//! one's file) and keeps the newest `--backup-retention` in `<data dir>/backups/`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use serde_json::{Value, json};
use thermostat_dashboards::actions::BackupError;
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

/// Backs up a data directory no server is using (loads it like a start-up would, into a
/// store of `store_shards` shards: the server's, `app::STORE_SHARDS`).
///
/// # Errors
/// The data directory cannot be read, or the backup written.
pub fn backup_offline(
    data_dir: &Path,
    to: &Path,
    now: thermostat_metrics::Timestamp,
    store_shards: usize,
) -> anyhow::Result<Value> {
    let store = Store::new(store_shards);
    thermostat_ingest::persist::load_snapshot(&store, data_dir)?;
    thermostat_ingest::wal::recover(data_dir, &store, false)?;
    let db = StateDb::open(data_dir)?;
    let outbox = Outbox::open(data_dir)?;
    write_backup(&store, &db, &outbox, to, now)
}

/// Restores a backup into `data_dir`, which must be empty or missing, and checks that it
/// opens (the series into a store of `store_shards` shards: the server's,
/// `app::STORE_SHARDS`).
///
/// # Errors
/// A non-empty target, an unreadable or unknown backup.
pub fn restore(from: &Path, data_dir: &Path, store_shards: usize) -> anyhow::Result<Value> {
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
    thermostat_ingest::persist::load_snapshot(&Store::new(store_shards), data_dir)?;
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

/// Backups the server makes are named `backup-<Unix milliseconds>-<n>.tar` in
/// `<data dir>/backups/`.
const BACKUP_PREFIX: &str = "backup-";
const BACKUP_SUFFIX: &str = ".tar";

/// The admin side of the HTTP API: backups made by the running server, one at a time, into
/// `<data dir>/backups/`, keeping the newest `retention` there.
#[derive(Debug)]
pub struct Admin {
    store: Arc<Store>,
    db: Arc<StateDb>,
    outbox: Outbox,
    data_dir: PathBuf,
    clock: Arc<dyn Clock>,
    retention: usize,
    /// The file the running backup writes, while one runs.
    running: Mutex<Option<PathBuf>>,
}

/// Clears the running backup when it ends, however it ends.
struct BackupInProgress<'a>(&'a Mutex<Option<PathBuf>>);

impl Drop for BackupInProgress<'_> {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

impl Admin {
    /// The admin side over the given stores; backups go to `data_dir/backups/`, of which the
    /// newest `retention` (at least 1) are kept.
    pub fn new(
        store: Arc<Store>,
        db: Arc<StateDb>,
        outbox: Outbox,
        data_dir: PathBuf,
        clock: Arc<dyn Clock>,
        retention: usize,
    ) -> Self {
        Admin {
            store,
            db,
            outbox,
            data_dir,
            clock,
            retention: retention.max(1),
            running: Mutex::new(None),
        }
    }

    fn dir(&self) -> PathBuf {
        self.data_dir.join("backups")
    }

    /// The next backup's name: after every backup in the directory, so that names sort in
    /// the order backups were made (the retention keeps the last ones by name), even when the
    /// clock shows the same millisecond or goes back: `backup-<ms>-<n>.tar` with the clock's
    /// milliseconds and 0, or the newest's milliseconds and the next counter.
    fn fresh_path(&self, now: thermostat_metrics::Timestamp) -> PathBuf {
        let dir = self.dir();
        let newest = fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(|e| backup_order(e.ok()?.file_name().to_str()?))
            .max();
        let (ms, n) = match newest {
            Some((ms, n)) if ms >= now.as_millis() => (ms, n.saturating_add(1)),
            _ => (now.as_millis(), 0),
        };
        dir.join(format!("{BACKUP_PREFIX}{ms}-{n}{BACKUP_SUFFIX}"))
    }

    /// Deletes all but the newest `retention` backups, and what interrupted backups left
    /// (`.partial` files, staging directories). Runs while no backup is being written.
    fn prune(&self) -> anyhow::Result<usize> {
        let mut backups: Vec<((i64, u64), PathBuf)> = Vec::new();
        let mut removed = 0;
        for entry in fs::read_dir(self.dir())? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".partial") {
                fs::remove_file(entry.path())?;
                removed += 1;
            } else if name.starts_with(".thermostat-backup") && entry.path().is_dir() {
                fs::remove_dir_all(entry.path())?;
            } else if let Some(order) = backup_order(name) {
                backups.push((order, entry.path()));
            }
        }
        backups.sort();
        let excess = backups.len().saturating_sub(self.retention);
        for (_, path) in backups.into_iter().take(excess) {
            fs::remove_file(&path).with_context(|| format!("cannot delete {}", path.display()))?;
            removed += 1;
        }
        Ok(removed)
    }
}

/// `(milliseconds, n)` of a backup's file name `backup-<ms>-<n>.tar` (or `backup-<ms>.tar`,
/// as older builds named them).
fn backup_order(name: &str) -> Option<(i64, u64)> {
    let stem = name
        .strip_prefix(BACKUP_PREFIX)?
        .strip_suffix(BACKUP_SUFFIX)?;
    match stem.split_once('-') {
        Some((ms, n)) => Some((ms.parse().ok()?, n.parse().ok()?)),
        None => Some((stem.parse().ok()?, 0)),
    }
}

impl thermostat_dashboards::actions::AdminApi for Admin {
    fn backup(&self) -> Result<Value, BackupError> {
        let now = self.clock.now();
        let path = {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(path) = running.as_ref() {
                return Err(BackupError::Busy {
                    running: path.display().to_string(),
                });
            }
            let path = self.fresh_path(now);
            *running = Some(path.clone());
            path
        };
        let _running = BackupInProgress(&self.running);
        let mut manifest = write_backup(&self.store, &self.db, &self.outbox, &path, now)
            .map_err(|e| BackupError::Failed(format!("{e:#}")))?;
        match self.prune() {
            Ok(removed) if removed > 0 => {
                tracing::info!(removed, keep = self.retention, "Deleted old backups.");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "Could not delete old backups; the next backup tries again.");
            }
        }
        manifest["path"] = json!(path.display().to_string());
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backups_sort_by_time_then_counter() {
        assert_eq!(
            backup_order("backup-1700000000000-2.tar"),
            Some((1_700_000_000_000, 2))
        );
        assert_eq!(
            backup_order("backup-1700000000000.tar"),
            Some((1_700_000_000_000, 0))
        );
        for other in [
            "backup-x.tar",
            "notes.tar",
            "backup-1-2.tar.partial",
            "backup-1-x.tar",
        ] {
            assert_eq!(backup_order(other), None, "{other}");
        }
        let mut names = [
            "backup-10-1.tar",
            "backup-9-0.tar",
            "backup-10-0.tar",
            "backup-10-10.tar",
        ];
        names.sort_by_key(|n| backup_order(n));
        assert_eq!(
            names,
            [
                "backup-9-0.tar",
                "backup-10-0.tar",
                "backup-10-1.tar",
                "backup-10-10.tar"
            ]
        );
    }
}
