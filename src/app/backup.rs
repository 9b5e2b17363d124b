//! The parts of a backup, connected to their owners for `thermostat-backup` (which owns the
//! format, the server's backup folder and `server.json`): the series snapshot
//! (`thermostat-ingest`), the state database (`thermostat-statedb`), the notification
//! outbox (`thermostat-notify`) and the audit trail's files (`thermostat-audit`).

use std::path::Path;
use std::sync::Arc;

use thermostat_audit::AuditLog;
use thermostat_backup::{BackupSource, PartError};
use thermostat_metrics::Store;
use thermostat_notify::Outbox;
use thermostat_statedb::StateDb;

/// A data directory's parts, open: the running server's, or read by `thermostat backup` when
/// no server runs.
#[derive(Debug)]
pub struct DataDirParts {
    /// The series.
    pub store: Arc<Store>,
    /// Alarm states and history, scaling groups and activities.
    pub db: Arc<StateDb>,
    /// Notifications.
    pub outbox: Outbox,
    /// The audit trail (the one the server appends to, so that a backup copies its files
    /// between two appends).
    pub audit: Arc<AuditLog>,
}

impl BackupSource for DataDirParts {
    fn write_series(&self, dir: &Path) -> Result<usize, PartError> {
        Ok(thermostat_ingest::save_snapshot(&self.store, dir)?.series)
    }

    fn write_state(&self, to: &Path) -> Result<(), PartError> {
        Ok(self.db.backup_to(to)?)
    }

    fn write_outbox(&self, to: &Path) -> Result<(), PartError> {
        Ok(self.outbox.backup_to(to)?)
    }

    fn write_audit(&self, dir: &Path) -> Result<usize, PartError> {
        Ok(self.audit.backup_to(dir)?)
    }
}

/// Opens every part of a restored data directory (the series into a store of `store_shards`
/// shards: the server's, [`thermostat_ingest::STORE_SHARDS`]), so that a bad backup fails at restore and
/// not at start-up.
///
/// # Errors
/// A part that does not open.
pub fn check_restored(data_dir: &Path, store_shards: usize) -> Result<(), PartError> {
    thermostat_ingest::load_snapshot(&Store::new(store_shards), data_dir)?;
    StateDb::open(data_dir)?;
    Outbox::open(data_dir)?;
    // Lists the day files and ends a torn last line (a backup copies the files as they
    // were); a backup made before the audit trail has none, and this creates `audit/`.
    AuditLog::open(data_dir)?;
    Ok(())
}
