//! Thermostat's backups: a consistent copy of a data directory, taken while the server runs,
//! and its restore.
//!
//! A backup is a tar file holding `MANIFEST.json` ([`Manifest`]: the
//! [`BACKUP_FORMAT_VERSION`], when it was made, the series it holds), a fresh snapshot of the
//! series (`series.snapshot`, with its log watermarks), copies of `state.redb` (alarm
//! states and history, scaling groups and activities) and `outbox.redb` (notifications),
//! each taken in one read transaction, and the audit trail's daily files (`audit/`, each up
//! to its length between two appends; a backup made before the audit trail has no `audit/`
//! and restores without one). It holds everything acknowledged before it started;
//! the write-ahead log is not needed because the snapshot is taken at backup time. A running
//! server makes the backup itself (`POST /api/v1/admin/backup`, which the CLI finds through
//! `<data dir>/server.json`); without a server the CLI reads the data directory directly.
//!
//! # What this crate owns
//! - The archive format: the parts' names and order, the manifest, its version
//!   ([`write_backup`], [`restore`]).
//! - The server's backup folder ([`ServerBackups`]): one backup at a time (a second request
//!   gets [`Error::Busy`] naming the running one's file), names that sort in the order the
//!   backups were made, and the retention of the newest ones.
//! - `server.json` ([`SERVER_FILE`], [`ServerFile`], [`running_server`]).
//!
//! It is a library: it depends on no crate of ours. The parts are written by their owners
//! (the ingest's snapshot, the state database, the outbox, the audit trail) through [`BackupSource`], and a
//! restored directory is checked by a function the caller passes; the binary connects them.
//!
//! # Invariants
//! - A backup appears at its path complete or not at all: it is written to `<path>.partial`,
//!   synced, then renamed; a failed one leaves nothing (the retention deletes what an
//!   interrupted one left).
//! - A restore writes only into an empty or missing directory, and fails unless every part
//!   opens.
//! - Time is data: the backup's time ([`BackupTime`]) is a parameter.
//!
//! # Layout
//! `archive.rs` (format, writing, restoring), `server_backups.rs` (the server's folder, one
//! at a time, retention), `server_file.rs` (`server.json`), `error.rs` ([`Error`]).

#![warn(missing_docs)]

mod archive;
mod error;
mod server_backups;
mod server_file;

pub use archive::{
    AUDIT_DIR, BACKUP_FORMAT_VERSION, BackupSource, BackupTime, MANIFEST_FILE, Manifest,
    OUTBOX_FILE, SERIES_FILE, STATE_FILE, restore, write_backup,
};
pub use error::{Error, PartError, Result};
pub use server_backups::{BACKUPS_DIR, ServerBackups};
pub use server_file::{SERVER_FILE, ServerFile, running_server};
