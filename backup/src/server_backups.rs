//! The backups a running server makes: one at a time, into `<data dir>/backups/`, named so
//! that they sort in the order they were made, of which the newest `retention` are kept.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::archive::{BackupSource, BackupTime, Manifest, STAGING_PREFIX, write_backup};
use crate::error::{Error, Result};

/// The folder of the data directory the server's backups go to.
pub const BACKUPS_DIR: &str = "backups";
/// Backups the server makes are named `backup-<Unix milliseconds>-<n>.tar`.
const BACKUP_PREFIX: &str = "backup-";
const BACKUP_SUFFIX: &str = ".tar";

/// The server's backups: written from `source` into `<data dir>/backups/`, one at a time,
/// keeping the newest `retention` there.
#[derive(Debug)]
pub struct ServerBackups {
    source: Arc<dyn BackupSource>,
    dir: PathBuf,
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

// === impl ServerBackups ===

impl ServerBackups {
    /// Backups of `source` into `data_dir/backups/`, of which the newest `retention` (at
    /// least 1) are kept.
    pub fn new(source: Arc<dyn BackupSource>, data_dir: &Path, retention: usize) -> Self {
        ServerBackups {
            source,
            dir: data_dir.join(BACKUPS_DIR),
            retention: retention.max(1),
            running: Mutex::new(None),
        }
    }

    /// Writes a backup made at `now` into the backups folder, then deletes the backups beyond
    /// the retention (a failure there is logged and retried after the next backup). Returns
    /// the new file and its manifest.
    ///
    /// # Errors
    /// [`Error::Busy`] while another backup runs; any error of [`write_backup`].
    pub fn backup(&self, now: &BackupTime) -> Result<(PathBuf, Manifest)> {
        let path = {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(path) = running.as_ref() {
                return Err(Error::Busy {
                    running: path.clone(),
                });
            }
            let path = self.fresh_path(now.unix_millis);
            *running = Some(path.clone());
            path
        };
        let _running = BackupInProgress(&self.running);
        let manifest = write_backup(self.source.as_ref(), &path, now)?;
        match self.prune() {
            Ok(removed) if removed > 0 => {
                tracing::info!(removed, keep = self.retention, "Deleted old backups.");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e.detail(), "Could not delete old backups; the next backup tries again.");
            }
        }
        Ok((path, manifest))
    }

    /// The next backup's name: after every backup in the directory, so that names sort in
    /// the order backups were made (the retention keeps the last ones by name), even when the
    /// clock shows the same millisecond or goes back: `backup-<ms>-<n>.tar` with the clock's
    /// milliseconds and 0, or the newest's milliseconds and the next counter.
    fn fresh_path(&self, now_millis: i64) -> PathBuf {
        let newest = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .filter_map(|e| backup_order(e.ok()?.file_name().to_str()?))
            .max();
        let (ms, n) = match newest {
            Some((ms, n)) if ms >= now_millis => (ms, n.saturating_add(1)),
            _ => (now_millis, 0),
        };
        self.dir
            .join(format!("{BACKUP_PREFIX}{ms}-{n}{BACKUP_SUFFIX}"))
    }

    /// Deletes all but the newest `retention` backups, and what interrupted backups left
    /// (`.partial` files, staging directories). Runs while no backup is being written.
    fn prune(&self) -> Result<usize> {
        let mut backups: Vec<((i64, u64), PathBuf)> = Vec::new();
        let mut removed = 0;
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".partial") {
                fs::remove_file(entry.path())?;
                removed += 1;
            } else if name.starts_with(STAGING_PREFIX) && entry.path().is_dir() {
                fs::remove_dir_all(entry.path())?;
            } else if let Some(order) = backup_order(name) {
                backups.push((order, entry.path()));
            }
        }
        backups.sort();
        let excess = backups.len().saturating_sub(self.retention);
        for (_, path) in backups.into_iter().take(excess) {
            fs::remove_file(&path).map_err(|source| Error::Delete {
                path: path.clone(),
                source,
            })?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::SERIES_FILE;
    use crate::error::PartError;

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

    /// Parts that wait on `gate` while the state copy is written, so that a second backup
    /// can be asked for while the first runs.
    #[derive(Debug, Default)]
    struct SlowParts {
        gate: Mutex<()>,
    }

    impl BackupSource for SlowParts {
        fn write_series(&self, dir: &Path) -> Result<usize, PartError> {
            fs::write(dir.join(SERIES_FILE), b"s")?;
            Ok(1)
        }
        fn write_state(&self, to: &Path) -> Result<(), PartError> {
            let _wait = self.gate.lock().unwrap_or_else(|p| p.into_inner());
            Ok(fs::write(to, b"s")?)
        }
        fn write_outbox(&self, to: &Path) -> Result<(), PartError> {
            Ok(fs::write(to, b"o")?)
        }
        fn write_audit(&self, _: &Path) -> Result<usize, PartError> {
            Ok(0)
        }
    }

    fn at(unix_millis: i64) -> BackupTime {
        BackupTime {
            unix_millis,
            rfc3339: String::new(),
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir.join(BACKUPS_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn names_never_go_back_and_only_the_newest_are_kept() {
        let data = tempfile::tempdir().unwrap();
        let backups = ServerBackups::new(Arc::new(SlowParts::default()), data.path(), 2);
        let dir = data.path().join(BACKUPS_DIR);
        fs::create_dir_all(dir.join(".thermostat-backup-left")).unwrap();
        fs::write(dir.join("backup-5-0.partial"), b"").unwrap();
        fs::write(dir.join("notes.txt"), b"").unwrap();

        let (first, _) = backups.backup(&at(10)).unwrap();
        assert_eq!(first, dir.join("backup-10-0.tar"));
        // The same millisecond, then a clock gone back: after the newest.
        backups.backup(&at(10)).unwrap();
        let (third, manifest) = backups.backup(&at(3)).unwrap();
        assert_eq!(third, dir.join("backup-10-2.tar"));
        assert_eq!(manifest.series, 1);
        assert_eq!(
            names(data.path()),
            ["backup-10-1.tar", "backup-10-2.tar", "notes.txt"]
        );
    }

    #[test]
    fn one_backup_runs_at_a_time() {
        let data = tempfile::tempdir().unwrap();
        let parts = Arc::new(SlowParts::default());
        let backups = Arc::new(ServerBackups::new(
            Arc::clone(&parts) as Arc<dyn BackupSource>,
            data.path(),
            5,
        ));
        let held = parts.gate.lock().unwrap();
        let first = {
            let backups = Arc::clone(&backups);
            std::thread::spawn(move || backups.backup(&at(1)))
        };
        // Wait until the first backup holds the running slot.
        while backups
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
        {
            std::thread::yield_now();
        }
        let err = backups.backup(&at(2)).unwrap_err();
        let running = data.path().join("backups/backup-1-0.tar");
        assert_eq!(
            err.to_string(),
            format!(
                "a backup is already being written to {}; retry when it is done",
                running.display()
            )
        );
        drop(held);
        assert_eq!(first.join().unwrap().unwrap().0, running);
        // The slot is free again.
        backups.backup(&at(2)).unwrap();
    }
}
