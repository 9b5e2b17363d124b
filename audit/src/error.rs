//! The one error type of the crate, mapped to the port's [`AuditError`] once.

use std::path::PathBuf;

use thermostat_auth::AuditError;

/// Why the audit trail could not be opened, written, read or copied. Its `Display` is the
/// message alone; the IO error is its `source()`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `audit/` folder cannot be created or listed: check the data directory's path and
    /// permissions.
    #[error("cannot create or list {}", path.display())]
    Dir {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A day's file cannot be opened, written or synced: check the permissions and the free
    /// space. The change the event records must not be made.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A day's file cannot be read: check its permissions.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The event cannot be encoded as JSON (it cannot happen with `serde_json::Value`
    /// parameters; reported rather than assumed).
    #[error("cannot encode the audit event")]
    Encode(#[from] serde_json::Error),
    /// A query's `next_token` was not made by this trail: pass the one the previous page gave.
    #[error("not a token of this audit trail ({reason})")]
    BadToken {
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The message with its causes, `: `-separated: for logs and [`AuditError::Io`].
    pub fn detail(&self) -> String {
        let mut out = self.to_string();
        let mut next = std::error::Error::source(self);
        while let Some(cause) = next {
            out.push_str(": ");
            out.push_str(&cause.to_string());
            next = cause.source();
        }
        out
    }
}

impl From<Error> for AuditError {
    fn from(e: Error) -> Self {
        match e {
            Error::BadToken { .. } => AuditError::Invalid {
                field: "next_token",
                message: e.to_string(),
            },
            e => AuditError::Io(e.detail()),
        }
    }
}
