//! The crate's one error type.

use std::path::PathBuf;

/// Why a state database operation failed. Every variant names what failed; the ones that
/// wrap another error keep it as their [`source`](std::error::Error::source), so a report of
/// the whole chain (`{:#}` of an `anyhow::Error`) reads as before.
#[derive(Debug, thiserror::Error)]
pub enum StateDbError {
    /// The data directory could not be created: check its parent's permissions.
    #[error("cannot create {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `state.redb` could not be opened (or created): another process may hold it, or it is
    /// not a redb file.
    #[error("cannot open {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: redb::DatabaseError,
    },
    /// `state.redb` was written by a build of another format: use the Thermostat version
    /// that wrote it, or move the data directory aside.
    #[error(
        "{}: state format version {found} is not supported by this build (it reads version {supported}); use the Thermostat version that wrote it, or move the data directory aside",
        path.display()
    )]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// The version it holds.
        found: u64,
        /// The version this build reads.
        supported: u64,
    },
    /// A stored state does not decode as its owner's type.
    #[error("corrupt state of alarm {key:?}")]
    CorruptState {
        /// The row's key (with its owner's prefix).
        key: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A stored history item has no readable `timestamp`.
    #[error("corrupt history item {seq} of {name:?}")]
    CorruptHistory {
        /// The alarm (or other owner) it belongs to.
        name: String,
        /// Its sequence number.
        seq: u64,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A value could not be encoded or decoded as JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A database file could not be created (a backup's copy).
    #[error(transparent)]
    Database(#[from] redb::DatabaseError),
    /// A transaction could not begin.
    #[error(transparent)]
    Transaction(#[from] redb::TransactionError),
    /// A table could not be opened.
    #[error(transparent)]
    Table(#[from] redb::TableError),
    /// A read or write of the file failed.
    #[error(transparent)]
    Storage(#[from] redb::StorageError),
    /// A transaction could not be committed (nothing of it is stored).
    #[error(transparent)]
    Commit(#[from] redb::CommitError),
}

/// The crate's result type.
pub type Result<T, E = StateDbError> = std::result::Result<T, E>;
