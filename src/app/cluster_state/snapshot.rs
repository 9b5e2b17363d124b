//! The cluster's state snapshot: a copy of a replica (its state database and outbox) and the
//! journal position it holds, written by the leader into the cluster's object store now and
//! then; the journal is then trimmed below it ([`thermostat_cluster::Journal::write_snapshot`]).
//! A node starting, or one that fell behind a snapshot, takes it in place of the entries the
//! journal no longer holds.
//!
//! The bytes: `MAGIC`, a little-endian `u32` format, a `u32` header length, the JSON header
//! (position and file sizes), then the two files as [`StateDb::backup_to`] and
//! [`Outbox::backup_to`] write them.

use std::path::Path;

use serde::{Deserialize, Serialize};
use thermostat_notify::outbox::Outbox;
use thermostat_statedb::StateDb;

const MAGIC: &[u8; 8] = b"THRMSTAT";
const FORMAT: u32 = 1;
/// The largest header read (a position has one entry per journal part).
const MAX_HEADER_BYTES: usize = 1 << 20;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    /// The last journal sequence the copy holds.
    seq: u64,
    /// Each journal part's last sequence at `seq`.
    parts: Vec<(String, u64)>,
    state_bytes: u64,
    outbox_bytes: u64,
}

/// A replica's copy at a journal position.
#[derive(Debug, PartialEq)]
pub(super) struct StateSnapshot {
    /// The last journal sequence it holds.
    pub(super) seq: u64,
    /// Each journal part's last sequence at `seq`.
    pub(super) parts: Vec<(String, u64)>,
    state: Vec<u8>,
    outbox: Vec<u8>,
}

impl StateSnapshot {
    /// Copies `db` and `outbox` (each in one read transaction; the caller holds them still),
    /// through files in `work` (created, then removed).
    pub(super) fn take(
        db: &StateDb,
        outbox: &Outbox,
        seq: u64,
        parts: Vec<(String, u64)>,
        work: &Path,
    ) -> Result<StateSnapshot, String> {
        let files = Files::new(work)?;
        db.backup_to(&files.state).map_err(|e| e.to_string())?;
        outbox.backup_to(&files.outbox).map_err(|e| e.to_string())?;
        let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        Ok(StateSnapshot {
            seq,
            parts,
            state: read(&files.state)?,
            outbox: read(&files.outbox)?,
        })
    }

    /// Replaces what `db` and `outbox` hold with this copy (each in one transaction), through
    /// files in `work`.
    pub(super) fn restore_into(
        &self,
        db: &StateDb,
        outbox: &Outbox,
        work: &Path,
    ) -> Result<(), String> {
        let files = Files::new(work)?;
        let write = |p: &Path, bytes: &[u8]| {
            std::fs::write(p, bytes).map_err(|e| format!("{}: {e}", p.display()))
        };
        write(&files.state, &self.state)?;
        write(&files.outbox, &self.outbox)?;
        // Both files are opened (and so checked) before either replaces anything.
        let state = StateDb::open(&files.dir).map_err(|e| format!("the state copy: {e}"))?;
        drop(state);
        let copy = Outbox::open(&files.dir).map_err(|e| format!("the outbox copy: {e}"))?;
        drop(copy);
        db.replace_with(&files.state)
            .map_err(|e| format!("the state copy: {e}"))?;
        outbox
            .replace_with(&files.outbox)
            .map_err(|e| format!("the outbox copy: {e}"))
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        let header = Header {
            seq: self.seq,
            parts: self.parts.clone(),
            state_bytes: self.state.len() as u64,
            outbox_bytes: self.outbox.len() as u64,
        };
        let header = serde_json::to_vec(&header).unwrap_or_default();
        let mut out = Vec::with_capacity(16 + header.len() + self.state.len() + self.outbox.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT.to_le_bytes());
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.state);
        out.extend_from_slice(&self.outbox);
        out
    }

    /// Reads [`StateSnapshot::encode`]'s bytes.
    ///
    /// # Errors
    /// Bytes that are not such a snapshot, of another format, or whose sizes do not add up.
    pub(super) fn decode(bytes: &[u8]) -> Result<StateSnapshot, String> {
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err("not a Thermostat state snapshot (bad magic bytes)".into());
        }
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let format = word(8);
        if format != FORMAT {
            return Err(format!(
                "state snapshot format {format} is not supported by this build (it reads {FORMAT})"
            ));
        }
        let header_len = word(12) as usize;
        if header_len > MAX_HEADER_BYTES || 16 + header_len > bytes.len() {
            return Err(format!(
                "the header is {header_len} bytes: more than {MAX_HEADER_BYTES} or than the snapshot holds"
            ));
        }
        let header: Header = serde_json::from_slice(&bytes[16..16 + header_len])
            .map_err(|e| format!("the header: {e}"))?;
        let rest = &bytes[16 + header_len..];
        let (state, outbox) = (header.state_bytes, header.outbox_bytes);
        if state.checked_add(outbox) != Some(rest.len() as u64) {
            return Err(format!(
                "the header says {state} + {outbox} bytes of files, {} follow",
                rest.len()
            ));
        }
        let (state, outbox) = rest.split_at(state as usize);
        if header.parts.iter().any(|(_, last)| *last > header.seq) {
            return Err(format!(
                "a part's last entry is after the snapshot's sequence {}",
                header.seq
            ));
        }
        Ok(StateSnapshot {
            seq: header.seq,
            parts: header.parts,
            state: state.to_vec(),
            outbox: outbox.to_vec(),
        })
    }
}

/// A work directory with the two files' paths, emptied first and removed when dropped.
struct Files {
    dir: std::path::PathBuf,
    state: std::path::PathBuf,
    outbox: std::path::PathBuf,
}

impl Files {
    fn new(dir: &Path) -> Result<Files, String> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Files {
            dir: dir.to_owned(),
            state: dir.join(thermostat_statedb::FILE_NAME),
            outbox: dir.join(thermostat_notify::outbox::FILE_NAME),
        })
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(db: &StateDb, name: &str, value: &str) {
        let state = serde_json::json!({ "value": value });
        let write = thermostat_statedb::AlarmWrite::<_, serde_json::Value> {
            name,
            state: Some(&state),
            history: &[],
        };
        db.commit(&[write]).unwrap();
    }

    #[test]
    fn a_snapshot_round_trips_and_bad_bytes_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("a")).unwrap();
        let outbox = Outbox::open(&dir.path().join("a")).unwrap();
        put(&db, "web-hot", "ALARM");
        let parts = vec![("leader".to_owned(), 7), ("p.1".to_owned(), 9)];
        let snap =
            StateSnapshot::take(&db, &outbox, 9, parts.clone(), &dir.path().join("w")).unwrap();
        let bytes = snap.encode();
        let back = StateSnapshot::decode(&bytes).unwrap();
        assert_eq!(back, snap);
        assert!(!dir.path().join("w").exists(), "the work files are removed");

        // Into another replica that held something else: it holds the copy's rows only.
        let other = StateDb::open(&dir.path().join("b")).unwrap();
        let other_outbox = Outbox::open(&dir.path().join("b")).unwrap();
        put(&other, "gone", "OK");
        back.restore_into(&other, &other_outbox, &dir.path().join("w"))
            .unwrap();
        let states: Vec<(String, serde_json::Value)> = other.load_states().unwrap();
        assert_eq!(states.len(), 1, "{states:?}");
        assert_eq!(states[0].0, "web-hot");

        let refused = |b: &[u8]| StateSnapshot::decode(b).unwrap_err();
        assert!(refused(b"short").contains("bad magic"));
        let mut v2 = bytes.clone();
        v2[8] = 2;
        assert!(refused(&v2).contains("format 2"));
        let mut long_header = bytes.clone();
        long_header[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(refused(&long_header).contains("header"));
        assert!(refused(&bytes[..bytes.len() - 1]).contains("follow"));
        // Files that are not databases: refused before the replica changes.
        let mut garbage = StateSnapshot::decode(&bytes).unwrap();
        garbage.state = vec![0x55; 4096];
        let e = garbage
            .restore_into(&other, &other_outbox, &dir.path().join("w"))
            .unwrap_err();
        assert!(e.contains("the state copy"), "{e}");
        let states: Vec<(String, serde_json::Value)> = other.load_states().unwrap();
        assert_eq!(states.len(), 1);
    }
}
