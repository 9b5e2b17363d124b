//! Why a server could not start or stop cleanly: one enum for the wiring, each variant naming
//! the step, its cause carried as the source. `{}` prints the step, `{:#}` the step and every
//! cause (`step: cause: cause`), as the command line prints it.

use std::error::Error as _;
use std::fmt;
use std::net::SocketAddr;

use crate::config::LoadError;

/// Why [`start`](super::start) or [`Running::wait`](super::Running::wait) failed.
#[derive(Debug)]
pub enum Error {
    /// The configuration files are invalid (every error, one per line).
    InvalidConfig(LoadError),
    /// The configuration would run no alarm and that is not allowed.
    EmptyConfig(LoadError),
    /// The data directory's series (snapshot, log) cannot be opened or closed.
    Ingest(thermostat_ingest::Error),
    /// The state database cannot be opened.
    StateDb(thermostat_statedb::StateDbError),
    /// Notifications or scaling cannot start.
    Actions(super::actions::StartError),
    /// The alarm runtime cannot start (its stored states cannot be read).
    Alarms(thermostat_alarms_runtime::Error),
    /// The alarm states cannot be written at shutdown.
    PersistAlarms(thermostat_alarms_runtime::Error),
    /// A listening address (`gRPC` or `HTTP`) cannot be bound.
    Listen(&'static str, SocketAddr, std::io::Error),
    /// The server file (`server.json`) cannot be written.
    ServerFile(thermostat_backup::Error),
    /// Access control or TLS cannot start.
    Security(crate::security::SecurityError),
    /// The audit trail cannot be opened.
    Audit(thermostat_audit::Error),
    /// The cluster cannot be joined (NATS unreachable, JetStream refusing, settings).
    Cluster(thermostat_cluster::Error),
    /// A blocking start-up or shutdown step panicked.
    Panicked(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidConfig(e) => write!(f, "the configuration is invalid:\n{e}")?,
            Error::EmptyConfig(e) => write!(f, "{e}")?,
            Error::Ingest(e) => write!(f, "{e}")?,
            Error::StateDb(e) => write!(f, "{e}")?,
            Error::Actions(_) => f.write_str("cannot start notifications and scaling")?,
            Error::Alarms(_) => f.write_str("cannot start the alarm runtime")?,
            Error::PersistAlarms(_) => f.write_str("cannot write the alarm states")?,
            Error::Listen(protocol, addr, _) => {
                write!(f, "cannot listen for {protocol} on {addr}")?
            }
            Error::ServerFile(e) => write!(f, "{e}")?,
            Error::Security(e) => write!(f, "{e}")?,
            Error::Audit(_) => f.write_str("cannot open the audit trail")?,
            Error::Cluster(e) => write!(f, "cannot join the cluster: {e}")?,
            Error::Panicked(step) => write!(f, "{step} panicked")?,
        }
        let mut cause = self.source();
        while let (true, Some(e)) = (f.alternate(), cause) {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Ingest(e) => e.source(),
            Error::StateDb(e) => e.source(),
            Error::ServerFile(e) => e.source(),
            Error::Actions(e) => Some(e),
            Error::Alarms(e) | Error::PersistAlarms(e) => Some(e),
            Error::Listen(_, _, e) => Some(e),
            Error::Security(e) => e.source(),
            Error::Audit(e) => Some(e),
            Error::InvalidConfig(_)
            | Error::EmptyConfig(_)
            | Error::Cluster(_)
            | Error::Panicked(_) => None,
        }
    }
}

macro_rules! from {
    ($($variant:ident($source:ty)),*) => {
        $(impl From<$source> for Error {
            fn from(e: $source) -> Self {
                Error::$variant(e)
            }
        })*
    };
}
from!(
    Ingest(thermostat_ingest::Error),
    StateDb(thermostat_statedb::StateDbError),
    ServerFile(thermostat_backup::Error),
    Security(crate::security::SecurityError),
    Audit(thermostat_audit::Error)
);
