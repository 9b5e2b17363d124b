//! Errors of this crate. Configuration errors reuse `thermostat_alarms`'
//! [`ConfigError`](thermostat_alarms::ConfigError) / [`ConfigErrors`](thermostat_alarms::ConfigErrors)
//! (same `file:line:column: path: message` format); [`Error`] covers the rest.

/// Errors of [`crate::simulate()`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The alarm engine failed (the metric store refused an alarm's query). Shorten the
    /// alarm's `evaluation_range` or use a longer period.
    #[error(transparent)]
    Alarms(#[from] thermostat_alarms::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
