//! [`AuditLog`]: appends (one line, synced, under one lock), queries, and the copy a backup
//! takes.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use jiff::civil::Date;
use thermostat_auth::{AuditError, AuditEvent, AuditPage, AuditQuery, AuditTrail};

use crate::error::{Error, Result};
use crate::files::{
    AUDIT_DIR, create_dir, create_new, day_files, end_torn_line, file_name, open_for_append,
    sync_dir, utc_date,
};
use crate::query::{ScanBudget, scan};

/// The longest line the trail writes, its newline included; longer events are shortened
/// (see [`AuditLog::append`]) and longer lines in a file are skipped by queries.
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// The audit trail in `<data dir>/audit/`: one JSON line per event in the file of its UTC
/// day, `audit-YYYY-MM-DD.jsonl`, synced before [`AuditTrail::append`] returns. Files are
/// never deleted by Thermostat (operators archive them).
#[derive(Debug)]
pub struct AuditLog {
    dir: PathBuf,
    /// The day file appends go to, open between them; every append holds this lock, so lines
    /// never interleave.
    writer: Mutex<Option<DayFile>>,
    budget: ScanBudget,
}

/// An open day file.
#[derive(Debug)]
struct DayFile {
    date: Date,
    path: PathBuf,
    file: File,
}

// === impl AuditLog ===

impl AuditLog {
    /// Opens the trail of `data_dir`, creating `audit/` (0700 on unix) if missing, and ends
    /// with a newline any file whose last line a crash tore, so that the next append starts a
    /// line of its own and queries skip the torn one.
    ///
    /// # Errors
    /// The folder cannot be created or listed, a file cannot be read or repaired.
    pub fn open(data_dir: &Path) -> Result<AuditLog> {
        let dir = data_dir.join(AUDIT_DIR);
        create_dir(&dir)?;
        for (_, path) in day_files(&dir)? {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .append(true)
                .open(&path)
                .map_err(|source| Error::Write {
                    path: path.clone(),
                    source,
                })?;
            end_torn_line(&mut file, &path)?;
        }
        Ok(AuditLog {
            dir,
            writer: Mutex::new(None),
            budget: ScanBudget::default(),
        })
    }

    /// The same trail with another scan budget per query (tests use a tiny one).
    #[must_use]
    pub fn with_scan_budget(mut self, budget: ScanBudget) -> Self {
        self.budget = budget;
        self
    }

    /// The folder of the day files (`<data dir>/audit`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `event` as one line to its UTC day's file and syncs it. An event whose line
    /// would exceed [`MAX_LINE_BYTES`] is shortened rather than refused: `parameters` become
    /// `{"truncated": true}` and the strings (`error` first among the long ones) are cut.
    ///
    /// # Errors
    /// The file cannot be opened, written or synced: the change must not be made. What a
    /// failed write left is ended as a torn line before the next append.
    pub fn append_event(&self, event: &AuditEvent) -> Result<()> {
        let line = encode_line(event)?;
        let date = utc_date(event.time);
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut day = match writer.take() {
            Some(day) if day.date == date => day,
            _ => {
                let path = self.dir.join(file_name(date));
                let file = open_for_append(&self.dir, &path)?;
                DayFile { date, path, file }
            }
        };
        match day
            .file
            .write_all(&line)
            .and_then(|()| day.file.sync_data())
        {
            Ok(()) => {
                *writer = Some(day);
                Ok(())
            }
            // Not kept: the file is opened again (and a partial line ended) next time.
            Err(source) => Err(Error::Write {
                path: day.path,
                source,
            }),
        }
    }

    /// A page of the events `query` selects (see [`AuditTrail::query`]); lines that are not
    /// events (torn by a crash) are skipped and logged.
    ///
    /// # Errors
    /// A `next_token` not made by this trail ([`Error::BadToken`]), a file that cannot be
    /// read.
    pub fn query_events(&self, query: &AuditQuery) -> Result<AuditPage> {
        let (page, scanned) = scan(&self.dir, query, self.budget, MAX_LINE_BYTES)?;
        if scanned.unreadable > 0 {
            tracing::warn!(
                unreadable = scanned.unreadable,
                lines = scanned.lines,
                "Skipped audit trail lines that are not events (torn by a crash?)."
            );
        }
        Ok(page)
    }

    /// Copies the day files into the existing folder `to` (each 0600 on unix, synced), each
    /// up to its length between two appends: a consistent prefix, as the files only grow.
    /// Returns how many files it copied. For backups.
    ///
    /// # Errors
    /// A file cannot be read or written.
    pub fn backup_to(&self, to: &Path) -> Result<usize> {
        let files = {
            // No append is half-written while this lock is held.
            let _appends = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            day_files(&self.dir)?
                .into_iter()
                .map(|(date, path)| {
                    let len = std::fs::metadata(&path)
                        .map_err(|source| Error::Read {
                            path: path.clone(),
                            source,
                        })?
                        .len();
                    Ok((date, path, len))
                })
                .collect::<Result<Vec<_>>>()?
        };
        for (date, path, len) in &files {
            let target = to.join(file_name(*date));
            let write_error = |source| Error::Write {
                path: target.clone(),
                source,
            };
            let mut out = create_new(&target).map_err(write_error)?;
            let source = File::open(path).map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            let copied = std::io::copy(&mut std::io::Read::take(source, *len), &mut out)
                .map_err(write_error)?;
            if copied != *len {
                return Err(write_error(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("{} became shorter while it was copied", path.display()),
                )));
            }
            out.sync_all().map_err(write_error)?;
        }
        sync_dir(to)?;
        Ok(files.len())
    }
}

impl AuditTrail for AuditLog {
    fn append(&self, event: &AuditEvent) -> Result<(), AuditError> {
        self.append_event(event).map_err(|e| {
            tracing::error!(error = %e.detail(), "Could not append to the audit trail.");
            e.into()
        })
    }

    fn query(&self, query: &AuditQuery) -> Result<AuditPage, AuditError> {
        self.query_events(query).map_err(|e| {
            if !matches!(e, Error::BadToken { .. }) {
                tracing::error!(error = %e.detail(), "Could not read the audit trail.");
            }
            e.into()
        })
    }
}

/// `event` as one JSON line (serde_json escapes control characters, so the only newline is
/// the last byte), shortened to at most [`MAX_LINE_BYTES`].
fn encode_line(event: &AuditEvent) -> Result<Vec<u8>> {
    let mut line = serde_json::to_vec(event)?;
    if line.len() < MAX_LINE_BYTES {
        line.push(b'\n');
        return Ok(line);
    }
    let mut short = event.clone();
    short.parameters = serde_json::json!({ "truncated": true });
    line = serde_json::to_vec(&short)?;
    // Then cut the strings to `cap` bytes, halving it until the line fits; `error` is cut first
    // (to a quarter of the others' cap), as it is the free-form one.
    let mut cap = MAX_LINE_BYTES / 2;
    while line.len() >= MAX_LINE_BYTES && cap > 0 {
        if let Some(error) = short.error.as_mut() {
            cut(error, cap / 4);
        }
        for s in [
            &mut short.request_id,
            &mut short.principal,
            &mut short.action,
        ] {
            cut(s, cap);
        }
        for s in [
            &mut short.source_ip,
            &mut short.user_agent,
            &mut short.target,
        ]
        .into_iter()
        .flatten()
        {
            cut(s, cap);
        }
        line = serde_json::to_vec(&short)?;
        cap /= 2;
    }
    line.push(b'\n');
    Ok(line)
}

/// Cuts `s` to at most `cap` bytes, at a character boundary.
fn cut(s: &mut String, cap: usize) {
    if s.len() > cap {
        let mut end = cap;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}
