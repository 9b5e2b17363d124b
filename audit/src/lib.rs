//! Thermostat's audit trail on disk (CloudTrail for Thermostat): one JSON line per
//! authenticated change, appended and synced to a daily file under the data directory before
//! the change is acknowledged, kept across restarts and included in backups.
//!
//! # What this crate owns
//! - [`AuditLog`], the adapter behind `thermostat-auth`'s port [`AuditTrail`](thermostat_auth::AuditTrail) (whose record,
//!   [`AuditEvent`](thermostat_auth::AuditEvent), and query types are `thermostat-auth`'s):
//!   the files of `<data dir>/audit/`, appending to them ([`AuditLog::append_event`]),
//!   reading them a page at a time ([`AuditLog::query_events`]), and the consistent copy a
//!   backup takes ([`AuditLog::backup_to`]; `thermostat-backup` puts it in the archive).
//! - The file format: `audit/audit-YYYY-MM-DD.jsonl`, one file per UTC day of the events'
//!   `time`; each line is one event as serde_json writes
//!   [`AuditEvent`](thermostat_auth::AuditEvent), ending in `\n`, of at most
//!   [`MAX_LINE_BYTES`].
//! - `next_token`: opaque to clients (hex of `<day>:<byte offset>`), it names the line after
//!   the page's last one.
//! - Retention: none. Thermostat never deletes an audit file; operators archive old days
//!   (auditors expect the whole trail, and a day's file is small).
//!
//! # Invariants
//! - An append returns only once its line is written and synced (`fsync`); a new file's
//!   folder is synced too. On error the change must not be made.
//! - Appends hold one lock, so lines never interleave, and one event is one line: serde_json
//!   escapes every control character in strings, and an event too long for a line is
//!   shortened (`parameters` become `{"truncated": true}`, strings cut), never refused and
//!   never written in part.
//! - A line torn by a crash (`kill -9` mid-append) is ended with `\n` when the file is next
//!   opened ([`AuditLog::open`], or the next append to its day), so it stays a line of its
//!   own; queries skip (and log) every line that is not an event, and do not read past a
//!   last line without its newline (one being appended).
//! - One query reads at most its [`ScanBudget`] (64 MiB or 200,000 lines by default) and
//!   holds at most one line of [`MAX_LINE_BYTES`] in memory: when the budget runs out it
//!   returns what it found and a `next_token` to go on. Paging by `next_token` yields every
//!   selected event once, in file order (time order but for appends racing across midnight).
//! - Files are 0600 and the folder 0700 on unix.
//!
//! # Layout
//! `log.rs` ([`AuditLog`]: open, append, query, backup copy, the port), `query.rs` (the day
//! files of a range, the bounded line reader, filters, [`ScanBudget`]), `token.rs`
//! (`next_token`), `files.rs` (names, dates, creating files and the folder, ending torn
//! lines), `error.rs` ([`Error`], mapped to [`AuditError`](thermostat_auth::AuditError)).

#![warn(missing_docs)]

mod error;
mod files;
mod log;
mod query;
mod token;

pub use error::{Error, Result};
pub use files::AUDIT_DIR;
pub use log::{AuditLog, MAX_LINE_BYTES};
pub use query::{DEFAULT_PAGE, ScanBudget};
