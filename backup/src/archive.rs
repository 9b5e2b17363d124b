//! The archive: what a backup holds, writing one from its parts, restoring one.

use std::fs::{self, File};
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, PartError, Result};

/// The staging folders [`write_backup`] makes beside the backup.
pub(crate) const STAGING_PREFIX: &str = ".thermostat-backup";

/// The backup format this build writes and reads.
pub const BACKUP_FORMAT_VERSION: u64 = 1;
/// The manifest's name in the archive.
pub const MANIFEST_FILE: &str = "MANIFEST.json";
/// The series snapshot's name in the archive (and in a data directory).
pub const SERIES_FILE: &str = "series.snapshot";
/// The state database's name in the archive (and in a data directory).
pub const STATE_FILE: &str = "state.redb";
/// The notification outbox's name in the archive (and in a data directory).
pub const OUTBOX_FILE: &str = "outbox.redb";
/// The audit trail's folder in the archive (and in a data directory): its files, as
/// `thermostat-audit` wrote them. Backups made before it was added do not hold it.
pub const AUDIT_DIR: &str = "audit";
/// The parts after the manifest, in archive order; then [`AUDIT_DIR`] and its files, by name.
const PARTS: [&str; 3] = [SERIES_FILE, STATE_FILE, OUTBOX_FILE];

/// The parts of a data directory a backup holds, each written by its owner: a fresh snapshot
/// of the series, one-transaction copies of the two databases, and the audit trail's files.
pub trait BackupSource: Send + Sync + std::fmt::Debug {
    /// Writes a snapshot of the series (with its log watermarks) into `dir` as
    /// [`SERIES_FILE`]; returns the number of series in it.
    ///
    /// # Errors
    /// The snapshot cannot be written.
    fn write_series(&self, dir: &Path) -> Result<usize, PartError>;
    /// Writes a consistent copy of the state database (one read transaction) to the new file
    /// `to`.
    ///
    /// # Errors
    /// The copy cannot be written.
    fn write_state(&self, to: &Path) -> Result<(), PartError>;
    /// Writes a consistent copy of the notification outbox (one read transaction) to the new
    /// file `to`.
    ///
    /// # Errors
    /// The copy cannot be written.
    fn write_outbox(&self, to: &Path) -> Result<(), PartError>;
    /// Copies the audit trail's files into the empty folder `dir` (the archive's
    /// [`AUDIT_DIR`]), each up to its length between two appends (the files only grow, so
    /// that is a consistent prefix); returns how many files it copied.
    ///
    /// # Errors
    /// A file cannot be read or copied.
    fn write_audit(&self, dir: &Path) -> Result<usize, PartError>;
}

/// When a backup is made, as its manifest and the server's file names show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupTime {
    /// Unix milliseconds (a server's backup is named after them).
    pub unix_millis: i64,
    /// The same instant in RFC 3339 (the manifest's `created`).
    pub rfc3339: String,
}

/// `MANIFEST.json`. Its fields are in the order the JSON has always had them (sorted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// Files of the audit trail in [`AUDIT_DIR`] (missing in backups made before it was
    /// added; they restore without an audit trail).
    pub audit_files: usize,
    /// When the backup was made (RFC 3339).
    pub created: String,
    /// [`BACKUP_FORMAT_VERSION`].
    pub format_version: u64,
    /// Series in the snapshot.
    pub series: usize,
    /// The version of Thermostat that wrote it.
    pub thermostat_version: String,
}

impl Manifest {
    /// The manifest as JSON (as the HTTP API answers it).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "audit_files": self.audit_files,
            "created": self.created,
            "format_version": self.format_version,
            "series": self.series,
            "thermostat_version": self.thermostat_version,
        })
    }
}

/// Writes a backup of `source`'s parts to `to`, made at `now`: the parts go to a staging
/// folder beside `to`, then into `<to>.partial`, which is renamed to `to` once synced.
///
/// # Errors
/// Any write failure, a part's included; nothing is left at `to` then.
pub fn write_backup(source: &dyn BackupSource, to: &Path, now: &BackupTime) -> Result<Manifest> {
    let parent = to
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|source| Error::CreateDir {
        path: parent.to_owned(),
        source,
    })?;
    let staging = tempfile::Builder::new()
        .prefix(STAGING_PREFIX)
        .tempdir_in(parent)?;
    let series = source.write_series(staging.path()).map_err(Error::Part)?;
    source
        .write_state(&staging.path().join(STATE_FILE))
        .map_err(Error::Part)?;
    source
        .write_outbox(&staging.path().join(OUTBOX_FILE))
        .map_err(Error::Part)?;
    let audit = staging.path().join(AUDIT_DIR);
    create_private_dir(&audit)?;
    let audit_files = source.write_audit(&audit).map_err(Error::Part)?;
    let manifest = Manifest {
        audit_files,
        created: now.rfc3339.clone(),
        format_version: BACKUP_FORMAT_VERSION,
        series,
        // The workspace's version, which every crate of Thermostat shares.
        thermostat_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    fs::write(
        staging.path().join(MANIFEST_FILE),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    let tmp = to.with_extension("partial");
    {
        let file = File::create(&tmp).map_err(|source| Error::Write {
            path: tmp.clone(),
            source,
        })?;
        let mut tar = tar::Builder::new(file);
        tar.append_path_with_name(staging.path().join(MANIFEST_FILE), MANIFEST_FILE)?;
        for part in PARTS {
            tar.append_path_with_name(staging.path().join(part), part)?;
        }
        tar.append_dir(AUDIT_DIR, &audit)?;
        let mut names = fs::read_dir(&audit)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<Vec<_>>>()?;
        names.sort();
        for name in names {
            tar.append_path_with_name(audit.join(&name), Path::new(AUDIT_DIR).join(&name))?;
        }
        tar.into_inner()?.sync_all()?;
    }
    fs::rename(&tmp, to).map_err(|source| Error::Write {
        path: to.to_owned(),
        source,
    })?;
    Ok(manifest)
}

/// Creates the folder `dir`, 0700 on unix (the audit trail's, in the archive as on disk).
fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| Error::CreateDir {
        path: dir.to_owned(),
        source,
    })
}

/// Restores the backup `from` into `data_dir`, which must be empty or missing, then calls
/// `check` on it so that a bad backup fails here and not at start-up (the binary opens every
/// part there). Returns the manifest as read: a backup of this format may carry keys this
/// build does not know.
///
/// # Errors
/// A non-empty target ([`Error::NotEmpty`]), an unreadable backup ([`Error::Read`],
/// [`Error::NotABackup`], [`Error::NoManifest`]), one of another format
/// ([`Error::UnsupportedVersion`]), a part that `check` refuses ([`Error::Part`]).
pub fn restore(
    from: &Path,
    data_dir: &Path,
    check: impl FnOnce(&Path) -> Result<(), PartError>,
) -> Result<Value> {
    if data_dir.exists() && fs::read_dir(data_dir)?.next().is_some() {
        return Err(Error::NotEmpty {
            path: data_dir.to_owned(),
        });
    }
    fs::create_dir_all(data_dir)?;
    let file = File::open(from).map_err(|source| Error::Read {
        path: from.to_owned(),
        source,
    })?;
    tar::Archive::new(file)
        .unpack(data_dir)
        .map_err(|source| Error::NotABackup {
            path: from.to_owned(),
            source,
        })?;
    let manifest_path = data_dir.join(MANIFEST_FILE);
    let manifest: Value = serde_json::from_slice(
        &fs::read(&manifest_path).map_err(|source| Error::NoManifest { source })?,
    )?;
    if manifest["format_version"] != BACKUP_FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            path: from.to_owned(),
            found: manifest["format_version"].clone(),
            supported: BACKUP_FORMAT_VERSION,
        });
    }
    fs::remove_file(&manifest_path)?;
    check(data_dir).map_err(Error::Part)?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parts written as small files with known contents.
    #[derive(Debug, Default)]
    struct FakeParts {
        fail_state: bool,
        /// The audit files to copy: name and contents.
        audit: Vec<(&'static str, Vec<u8>)>,
    }

    impl BackupSource for FakeParts {
        fn write_series(&self, dir: &Path) -> Result<usize, PartError> {
            fs::write(dir.join(SERIES_FILE), b"series")?;
            Ok(7)
        }
        fn write_state(&self, to: &Path) -> Result<(), PartError> {
            if self.fail_state {
                return Err("the state database is locked".into());
            }
            Ok(fs::write(to, b"state")?)
        }
        fn write_outbox(&self, to: &Path) -> Result<(), PartError> {
            Ok(fs::write(to, b"outbox")?)
        }
        fn write_audit(&self, dir: &Path) -> Result<usize, PartError> {
            for (name, bytes) in &self.audit {
                let path = dir.join(name);
                fs::write(&path, bytes)?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt as _;
                    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
                }
            }
            Ok(self.audit.len())
        }
    }

    fn at(unix_millis: i64) -> BackupTime {
        BackupTime {
            unix_millis,
            rfc3339: "2023-11-14T22:13:20Z".into(),
        }
    }

    #[test]
    fn the_manifest_is_written_as_it_always_was() {
        let manifest = Manifest {
            audit_files: 2,
            created: "2023-11-14T22:13:20Z".into(),
            format_version: BACKUP_FORMAT_VERSION,
            series: 7,
            thermostat_version: "0.1.0".into(),
        };
        // `audit_files` came with the audit trail; it sorts first, as the JSON's keys do.
        let before = serde_json::json!({
            "audit_files": 2usize,
            "format_version": BACKUP_FORMAT_VERSION,
            "created": "2023-11-14T22:13:20Z",
            "thermostat_version": "0.1.0",
            "series": 7usize,
        });
        assert_eq!(
            serde_json::to_vec_pretty(&manifest).unwrap(),
            serde_json::to_vec_pretty(&before).unwrap()
        );
        assert_eq!(manifest.to_json(), before);
    }

    #[test]
    fn a_backup_restores_into_an_empty_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("out/b.tar");
        let manifest = write_backup(&FakeParts::default(), &file, &at(1)).unwrap();
        assert_eq!(manifest.series, 7);
        assert!(!file.with_extension("partial").exists());

        let target = tmp.path().join("data");
        let mut checked = None;
        let read = restore(&file, &target, |dir| {
            checked = Some(dir.to_owned());
            Ok(())
        })
        .unwrap();
        assert_eq!(read, manifest.to_json());
        assert_eq!(checked.as_deref(), Some(target.as_path()));
        assert!(!target.join(MANIFEST_FILE).exists());
        for (part, text) in [
            (SERIES_FILE, "series"),
            (STATE_FILE, "state"),
            (OUTBOX_FILE, "outbox"),
        ] {
            assert_eq!(fs::read_to_string(target.join(part)).unwrap(), text);
        }

        let err = restore(&file, &target, |_| Ok(())).unwrap_err();
        assert!(matches!(err, Error::NotEmpty { .. }), "{err}");
        assert!(err.to_string().ends_with("not empty"), "{err}");
        let err = restore(&file, &tmp.path().join("other"), |_| {
            Err("series.snapshot: corrupt".into())
        })
        .unwrap_err();
        assert_eq!(err.detail(), "series.snapshot: corrupt");
    }

    #[test]
    fn a_failed_part_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("b.tar");
        let err = write_backup(
            &FakeParts {
                fail_state: true,
                ..FakeParts::default()
            },
            &file,
            &at(1),
        )
        .unwrap_err();
        assert_eq!(err.detail(), "the state database is locked");
        let left: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn other_files_and_versions_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("missing.tar");
        let err = restore(&missing, &tmp.path().join("a"), |_| Ok(())).unwrap_err();
        assert!(
            err.detail()
                .starts_with(&format!("cannot read {}: ", missing.display())),
            "{}",
            err.detail()
        );

        let file = tmp.path().join("v99.tar");
        {
            let mut tar = tar::Builder::new(File::create(&file).unwrap());
            let manifest = br#"{"format_version": 99}"#;
            let mut header = tar::Header::new_gnu();
            header.set_size(manifest.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, MANIFEST_FILE, &manifest[..])
                .unwrap();
            tar.finish().unwrap();
        }
        let err = restore(&file, &tmp.path().join("b"), |_| Ok(())).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: backup format version 99 is not supported by this build (it reads version 1)",
                file.display()
            )
        );
    }

    #[test]
    fn audit_files_round_trip_byte_for_byte() {
        let tmp = tempfile::tempdir().unwrap();
        let parts = FakeParts {
            audit: vec![
                ("audit-2024-03-09.jsonl", b"{\"a\":1}\n{\"a\":2}\n".to_vec()),
                // A torn last line is copied as it is; the audit trail ends it on open.
                ("audit-2024-03-10.jsonl", b"{\"a\":3}\n{\"a\"".to_vec()),
            ],
            ..FakeParts::default()
        };
        let file = tmp.path().join("b.tar");
        let manifest = write_backup(&parts, &file, &at(1)).unwrap();
        assert_eq!(manifest.audit_files, 2);

        let names: Vec<String> = tar::Archive::new(File::open(&file).unwrap())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                MANIFEST_FILE,
                SERIES_FILE,
                STATE_FILE,
                OUTBOX_FILE,
                AUDIT_DIR,
                "audit/audit-2024-03-09.jsonl",
                "audit/audit-2024-03-10.jsonl",
            ]
        );

        let target = tmp.path().join("data");
        let read = restore(&file, &target, |dir| {
            assert!(dir.join(AUDIT_DIR).is_dir());
            Ok(())
        })
        .unwrap();
        assert_eq!(read["audit_files"], 2);
        for (name, bytes) in &parts.audit {
            assert_eq!(&fs::read(target.join(AUDIT_DIR).join(name)).unwrap(), bytes);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&target.join(AUDIT_DIR)), 0o700);
            assert_eq!(mode(&target.join(AUDIT_DIR).join(parts.audit[0].0)), 0o600);
        }
    }

    #[test]
    fn a_backup_without_an_audit_trail_restores() {
        // As the build before the audit trail wrote it: no `audit/`, no `audit_files`.
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("old.tar");
        {
            let mut tar = tar::Builder::new(File::create(&file).unwrap());
            let manifest = serde_json::to_vec_pretty(&serde_json::json!({
                "created": "2023-11-14T22:13:20Z",
                "format_version": 1,
                "series": 7,
                "thermostat_version": "0.1.0",
            }))
            .unwrap();
            for (name, bytes) in [
                (MANIFEST_FILE, &manifest[..]),
                (SERIES_FILE, b"series"),
                (STATE_FILE, b"state"),
                (OUTBOX_FILE, b"outbox"),
            ] {
                let mut header = tar::Header::new_gnu();
                header.set_size(bytes.len() as u64);
                header.set_mode(0o644);
                header.set_cksum();
                tar.append_data(&mut header, name, bytes).unwrap();
            }
            tar.finish().unwrap();
        }
        let target = tmp.path().join("data");
        let read = restore(&file, &target, |dir| {
            assert!(!dir.join(AUDIT_DIR).exists());
            Ok(())
        })
        .unwrap();
        assert_eq!(read["series"], 7);
        assert_eq!(read.get("audit_files"), None);
        assert_eq!(
            fs::read_to_string(target.join(STATE_FILE)).unwrap(),
            "state"
        );
    }

    #[test]
    fn a_failed_audit_copy_fails_the_backup() {
        #[derive(Debug)]
        struct NoAudit;
        impl BackupSource for NoAudit {
            fn write_series(&self, dir: &Path) -> Result<usize, PartError> {
                fs::write(dir.join(SERIES_FILE), b"s")?;
                Ok(0)
            }
            fn write_state(&self, to: &Path) -> Result<(), PartError> {
                Ok(fs::write(to, b"s")?)
            }
            fn write_outbox(&self, to: &Path) -> Result<(), PartError> {
                Ok(fs::write(to, b"o")?)
            }
            fn write_audit(&self, _: &Path) -> Result<usize, PartError> {
                Err("cannot read audit/audit-2024-03-09.jsonl".into())
            }
        }
        let tmp = tempfile::tempdir().unwrap();
        let err = write_backup(&NoAudit, &tmp.path().join("b.tar"), &at(1)).unwrap_err();
        assert_eq!(err.detail(), "cannot read audit/audit-2024-03-09.jsonl");
        let left: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
