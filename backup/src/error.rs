//! The one error type of the crate.

use std::path::PathBuf;

/// An error a part's owner returns ([`BackupSource`](crate::BackupSource), the check of a
/// restored directory): carried as it is, with its causes.
pub type PartError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a backup, a restore or the server file failed. Its `Display` is the message alone; the
/// causes (the IO error, the part's own error) are its `source()` chain, as
/// [`Error::detail`] prints them.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The folder a backup goes to cannot be created: check the path and its permissions.
    #[error("cannot create {}", path.display())]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file cannot be written (the backup, its partial file, the server file): check the
    /// path, its permissions and the free space.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The backup file cannot be opened: check the path.
    #[error("cannot read {}", path.display())]
    Read {
        /// The backup file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An old backup cannot be deleted by the retention: check the folder's permissions.
    #[error("cannot delete {}", path.display())]
    Delete {
        /// The old backup.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a tar archive: pass a file `thermostat backup` wrote.
    #[error("{}: not a Thermostat backup", path.display())]
    NotABackup {
        /// The file.
        path: PathBuf,
        /// Why the archive could not be unpacked.
        source: std::io::Error,
    },
    /// The archive holds no `MANIFEST.json`: it is not a Thermostat backup.
    #[error("the backup has no MANIFEST.json")]
    NoManifest {
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The backup was written in a format this build does not read: restore it with the
    /// build that wrote it.
    #[error(
        "{}: backup format version {found} is not supported by this build (it reads version {supported})",
        path.display()
    )]
    UnsupportedVersion {
        /// The backup file.
        path: PathBuf,
        /// The manifest's `format_version`, as written (`null` when missing).
        found: serde_json::Value,
        /// The version this build reads.
        supported: u64,
    },
    /// A restore goes into an empty or missing data directory only: pass another one.
    #[error("{}: refusing to restore into a directory that is not empty", path.display())]
    NotEmpty {
        /// The data directory.
        path: PathBuf,
    },
    /// The server writes one backup at a time: retry when the running one is done.
    #[error("a backup is already being written to {}; retry when it is done", running.display())]
    Busy {
        /// The file the running backup writes.
        running: PathBuf,
    },
    /// A part of the backup could not be written, or a restored part does not open.
    #[error(transparent)]
    Part(PartError),
    /// The manifest cannot be written or read as JSON.
    #[error(transparent)]
    Manifest(#[from] serde_json::Error),
    /// Any other file-system error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The message with its causes, `: `-separated (as `anyhow` prints `{:#}`): for logs.
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
