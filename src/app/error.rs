//! Why a server could not start or stop cleanly: one enum for the wiring, each variant naming
//! the step, its cause carried as the source (printed as `step: cause` by the command line).

use std::net::SocketAddr;

use crate::config::LoadError;

/// Why [`start`](super::start) or [`Running::wait`](super::Running::wait) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration files are invalid (every error, one per line).
    #[error("the configuration is invalid:\n{0}")]
    InvalidConfig(LoadError),
    /// The configuration would run no alarm and that is not allowed.
    #[error("{0}")]
    EmptyConfig(LoadError),
    /// The data directory's series (snapshot, log) cannot be opened or closed.
    #[error(transparent)]
    Ingest(#[from] thermostat_ingest::Error),
    /// The state database cannot be opened.
    #[error(transparent)]
    StateDb(#[from] thermostat_statedb::StateDbError),
    /// Notifications or scaling cannot start.
    #[error("cannot start notifications and scaling")]
    Actions(#[source] super::actions::StartError),
    /// The alarm runtime cannot start (its stored states cannot be read).
    #[error("cannot start the alarm runtime")]
    Alarms(#[source] thermostat_alarms_runtime::Error),
    /// The alarm states cannot be written at shutdown.
    #[error("cannot write the alarm states")]
    PersistAlarms(#[source] thermostat_alarms_runtime::Error),
    /// A listening address cannot be bound.
    #[error("cannot listen for {protocol} on {addr}")]
    Listen {
        /// `gRPC` or `HTTP`.
        protocol: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server file (`server.json`) cannot be written.
    #[error(transparent)]
    ServerFile(#[from] thermostat_backup::Error),
    /// A blocking start-up or shutdown step panicked.
    #[error("{0} panicked")]
    Panicked(&'static str),
}
