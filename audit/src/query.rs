//! Queries: the day files that can hold the asked time range, read in date order from the
//! token's position, line by line with a bounded reader, under a scan budget.

use std::fs::File;
use std::io::{BufRead, BufReader, Read as _, Seek as _, SeekFrom};
use std::path::Path;

use thermostat_auth::audit::MAX_PAGE;
use thermostat_auth::{AuditEvent, AuditPage, AuditQuery};

use crate::error::{Error, Result};
use crate::files::{day_files, day_start, utc_date};
use crate::token::Position;

/// Events a page holds when the query asks for 0.
pub const DEFAULT_PAGE: usize = 100;

/// How much one query may read before it returns what it found with a `next_token`, so that
/// no query costs unbounded time: whichever runs out first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanBudget {
    /// Bytes read (lines whole, the newline included).
    pub bytes: u64,
    /// Lines read.
    pub lines: usize,
}

impl Default for ScanBudget {
    /// 64 MiB or 200,000 lines.
    fn default() -> Self {
        ScanBudget {
            bytes: 64 << 20,
            lines: 200_000,
        }
    }
}

/// What a query did besides its page: for logs and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scanned {
    /// Lines read.
    pub(crate) lines: usize,
    /// Complete lines that were not an event (torn by a crash, too long, not JSON): skipped.
    pub(crate) unreadable: usize,
}

/// A line read with a bound on its length.
enum Line {
    /// A whole line (its newline included) of this many bytes, in the buffer.
    Whole(u64),
    /// A line longer than the bound, skipped (not read into memory) up to and including its
    /// newline: this many bytes.
    TooLong(u64),
    /// The file ends in a line without its newline: one being appended, or torn.
    Unfinished,
    /// The file ends.
    End,
}

/// Reads the next line into `buf` (cleared first) if it has at most `max_line` bytes, its
/// newline included; skips it otherwise, holding at most the reader's buffer in memory.
fn read_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max_line: usize,
) -> std::io::Result<Line> {
    buf.clear();
    let n = reader
        .by_ref()
        .take(max_line as u64)
        .read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(Line::End);
    }
    if buf.last() == Some(&b'\n') {
        return Ok(Line::Whole(n as u64));
    }
    if n < max_line {
        return Ok(Line::Unfinished);
    }
    let mut skipped = n as u64;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(Line::Unfinished);
        }
        if let Some(i) = available.iter().position(|&b| b == b'\n') {
            reader.consume(i + 1);
            return Ok(Line::TooLong(skipped + i as u64 + 1));
        }
        let len = available.len();
        reader.consume(len);
        skipped += len as u64;
    }
}

/// The page of `query`'s events in the day files of `dir`.
///
/// # Errors
/// A bad `next_token` ([`Error::BadToken`]), a file that cannot be read.
pub(crate) fn scan(
    dir: &Path,
    query: &AuditQuery,
    budget: ScanBudget,
    max_line: usize,
) -> Result<(AuditPage, Scanned)> {
    let limit = match query.limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    };
    let start = query
        .next_token
        .as_deref()
        .map(Position::decode)
        .transpose()?;
    let first_date = query.since.map(utc_date);
    let mut files = day_files(dir)?;
    files.retain(|(date, _)| {
        first_date.is_none_or(|first| *date >= first)
            && start.is_none_or(|p| *date >= p.date)
            && query
                .until
                .is_none_or(|until| day_start(*date).is_none_or(|s| s < until))
    });
    let mut page = AuditPage::default();
    let mut scanned = Scanned::default();
    let mut bytes = 0u64;
    let mut buf = Vec::new();
    for (date, path) in files {
        let offset = match start {
            Some(p) if p.date == date => p.offset,
            _ => 0,
        };
        let read_error = |source| Error::Read {
            path: path.clone(),
            source,
        };
        let mut file = File::open(&path).map_err(read_error)?;
        check_line_start(&mut file, offset)?;
        let mut reader = BufReader::new(file);
        let mut here = Position { date, offset };
        loop {
            if scanned.lines >= budget.lines || bytes >= budget.bytes {
                page.next_token = Some(here.encode());
                return Ok((page, scanned));
            }
            let n = match read_line(&mut reader, &mut buf, max_line).map_err(read_error)? {
                Line::End | Line::Unfinished => break,
                Line::TooLong(n) => {
                    scanned.unreadable += 1;
                    n
                }
                Line::Whole(n) => {
                    match serde_json::from_slice::<AuditEvent>(&buf) {
                        Ok(event) if selects(query, &event) => page.events.push(event),
                        Ok(_) => {}
                        Err(_) => scanned.unreadable += 1,
                    }
                    n
                }
            };
            scanned.lines += 1;
            bytes += n;
            here.offset += n;
            if page.events.len() >= limit {
                page.next_token = Some(here.encode());
                return Ok((page, scanned));
            }
        }
    }
    Ok((page, scanned))
}

/// Refuses an offset past the end of the file or inside a line: no token of ours names one.
fn check_line_start(file: &mut File, offset: u64) -> Result<()> {
    if offset == 0 {
        return Ok(());
    }
    let bad = Error::BadToken {
        reason: "not the start of a line",
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if offset > len {
        return Err(bad);
    }
    let mut before = [0u8];
    let read = file
        .seek(SeekFrom::Start(offset - 1))
        .and_then(|_| file.read_exact(&mut before));
    if read.is_err() || before[0] != b'\n' {
        return Err(bad);
    }
    // The reader continues right after that newline, where the cursor is now.
    Ok(())
}

/// Whether `event` is one `query` asks for.
fn selects(query: &AuditQuery, event: &AuditEvent) -> bool {
    query.since.is_none_or(|since| event.time >= since)
        && query.until.is_none_or(|until| event.time < until)
        && query
            .principal
            .as_deref()
            .is_none_or(|p| event.principal == p)
        && query.action.as_deref().is_none_or(|a| event.action == a)
}
