//! [`AdminApi`] over the server's backups (`thermostat-backup`'s [`ServerBackups`]): the
//! backup is made at the clock's time, and its errors become the port's.

use std::sync::Arc;

use serde_json::{Value, json};
use thermostat_backup::{BackupTime, ServerBackups};
use thermostat_metrics::Clock;

use crate::actions::{AdminApi, BackupError};

/// The server's administrative operations: backups into the data directory.
#[derive(Debug)]
pub struct Admin {
    backups: ServerBackups,
    clock: Arc<dyn Clock>,
}

impl Admin {
    /// Backups made with `backups`, at `clock`'s time.
    pub fn new(backups: ServerBackups, clock: Arc<dyn Clock>) -> Self {
        Admin { backups, clock }
    }
}

impl AdminApi for Admin {
    fn backup(&self) -> Result<Value, BackupError> {
        let now = self.clock.now();
        let time = BackupTime {
            unix_millis: now.as_millis(),
            rfc3339: now.to_rfc3339(),
        };
        match self.backups.backup(&time) {
            Ok((path, manifest)) => {
                let mut answer = manifest.to_json();
                answer["path"] = json!(path.display().to_string());
                Ok(answer)
            }
            Err(thermostat_backup::Error::Busy { running }) => Err(BackupError::Busy {
                running: running.display().to_string(),
            }),
            Err(e) => Err(BackupError::Failed(e.detail())),
        }
    }
}
