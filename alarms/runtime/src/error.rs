//! The crate's one error type, and the persistence port's error.

use std::fmt;

/// Why a runtime operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing the persisted states or history failed (see the source; the
    /// in-memory state has moved on, and the next tick's write carries the changed states
    /// again).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An alarm's evaluation failed: the store refused its query (a range above its limit).
    #[error(transparent)]
    Evaluation(#[from] thermostat_alarms::Error),
    /// `SetAlarmState` names no alarm, per-series instance or composite alarm that has a
    /// state, or `set_actions_enabled` no configured alarm: list the alarms to find its name.
    #[error("no alarm named {0:?}")]
    NotFound(String),
    /// `PutMetricAlarm` or `DeleteAlarms` names an alarm defined in a configuration file,
    /// which owns it: change the file instead (git stays the source of truth).
    #[error("the alarm {name:?} is defined in {file}: change it there")]
    OwnedByFile {
        /// The alarm.
        name: String,
        /// The file that defines it.
        file: String,
    },
    /// A request field breaks one of CloudWatch's rules: fix the field.
    #[error("{field}: {message}")]
    Invalid {
        /// The request field (`SetAlarmState`'s `state_value`, `state_reason`,
        /// `state_reason_data`; `set_actions_enabled`'s `name`).
        field: &'static str,
        /// The rule it breaks.
        message: String,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An [`AlarmStore`](crate::AlarmStore) implementation's error, whatever its type.
///
/// The port is a trait object, so the runtime cannot name the adapter's error type: the
/// error is boxed here, once, at the port. It is transparent: its message and source are
/// the adapter error's own, so a report of the chain reads as the adapter wrote it.
#[derive(Debug)]
pub struct StoreError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl StoreError {
    /// Wraps an adapter's error.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError(Box::new(error))
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

pub use thermostat_metrics::chain;
