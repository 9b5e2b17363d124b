//! The daily files: their names and dates, listing them, creating them (0600) and the folder
//! (0700), and ending a torn last line.

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::error::{Error, Result};

/// The data directory's folder of the audit trail.
pub const AUDIT_DIR: &str = "audit";
const PREFIX: &str = "audit-";
const SUFFIX: &str = ".jsonl";

/// The UTC day of `time`: the day whose file holds an event of that time.
pub(crate) fn utc_date(time: Timestamp) -> Date {
    time.to_zoned(TimeZone::UTC).date()
}

/// The first instant of `date` in UTC (`None` out of jiff's range: every event is then
/// before it).
pub(crate) fn day_start(date: Date) -> Option<Timestamp> {
    date.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp())
}

/// `audit-YYYY-MM-DD.jsonl`.
pub(crate) fn file_name(date: Date) -> String {
    format!("{PREFIX}{date}{SUFFIX}")
}

/// The date a day file's name spells, in exactly the form [`file_name`] writes.
pub(crate) fn parse_file_name(name: &str) -> Option<Date> {
    let date: Date = name
        .strip_prefix(PREFIX)?
        .strip_suffix(SUFFIX)?
        .parse()
        .ok()?;
    (file_name(date) == name).then_some(date)
}

/// The day files in `dir`, oldest first; other entries are ignored.
pub(crate) fn day_files(dir: &Path) -> Result<Vec<(Date, PathBuf)>> {
    let dir_error = |source| Error::Dir {
        path: dir.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(dir_error)? {
        let entry = entry.map_err(dir_error)?;
        let Some(date) = entry.file_name().to_str().and_then(parse_file_name) else {
            continue;
        };
        if entry.file_type().map_err(dir_error)?.is_file() {
            files.push((date, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

/// Creates `dir` (0700 on unix) if missing, syncing its parent when it does.
pub(crate) fn create_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| Error::Dir {
        path: dir.to_owned(),
        source,
    })?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Syncs a folder, so that a file created in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| Error::Dir {
            path: dir.to_owned(),
            source,
        })?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// A new file (0600 on unix) that must not exist yet, for writing.
pub(crate) fn create_new(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Opens the day file at `path` for appending, creating it (0600, then syncing `dir`) when
/// missing, and ending a torn last line first.
pub(crate) fn open_for_append(dir: &Path, path: &Path) -> Result<File> {
    let write_error = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let mut options = OpenOptions::new();
    options.read(true).append(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(file) => {
            sync_dir(dir)?;
            Ok(file)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mut file = OpenOptions::new()
                .read(true)
                .append(true)
                .open(path)
                .map_err(write_error)?;
            end_torn_line(&mut file, path)?;
            Ok(file)
        }
        Err(e) => Err(write_error(e)),
    }
}

/// Appends `\n` to `file` (opened for reading and appending) unless it is empty or ends
/// with one, so that the torn line a crash left stays a line of its own (which queries skip)
/// and the next append starts a line. Returns whether it did.
pub(crate) fn end_torn_line(file: &mut File, path: &Path) -> Result<bool> {
    let read_error = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let len = file.metadata().map_err(read_error)?.len();
    if len == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::Start(len - 1)).map_err(read_error)?;
    let mut last = [0u8];
    file.read_exact(&mut last).map_err(read_error)?;
    if last[0] == b'\n' {
        return Ok(false);
    }
    file.write_all(b"\n")
        .and_then(|()| file.sync_data())
        .map_err(|source| Error::Write {
            path: path.to_owned(),
            source,
        })?;
    tracing::warn!(path = %path.display(), "Ended a torn last line of the audit trail; queries skip it.");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_spell_the_utc_day() {
        let t: Timestamp = "2024-03-09T23:59:59.999Z".parse().unwrap();
        assert_eq!(file_name(utc_date(t)), "audit-2024-03-09.jsonl");
        let t: Timestamp = "2024-03-10T00:30:00+01:00".parse().unwrap();
        assert_eq!(file_name(utc_date(t)), "audit-2024-03-09.jsonl");
        assert_eq!(
            parse_file_name("audit-2024-03-09.jsonl"),
            Some(jiff::civil::date(2024, 3, 9))
        );
        for other in [
            "audit-2024-3-9.jsonl",
            "audit-2024-03-09.json",
            "x-2024-03-09.jsonl",
            "audit-2024-02-30.jsonl",
        ] {
            assert_eq!(parse_file_name(other), None, "{other}");
        }
        assert_eq!(
            day_start(jiff::civil::date(2024, 3, 9)),
            Some("2024-03-09T00:00:00Z".parse().unwrap())
        );
    }
}
