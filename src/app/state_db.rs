//! Durable engine state (alarm states and alarm history) in an embedded ACID store (redb).
//!
//! One redb file, `state.redb`, in the data directory. Every evaluation tick that changes
//! anything commits once (fsync included), so a crash loses at most the tick in progress.
//! Values are JSON so that the file can be inspected and migrated; the `meta` table holds a
//! format version that start-up checks before anything else.

use std::path::Path;

use anyhow::Context as _;
use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Format of `state.redb` written by this build.
pub const FORMAT_VERSION: u64 = 1;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const ALARM_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("alarm_state");
/// Key: (alarm name, sequence number within the alarm).
const ALARM_HISTORY: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("alarm_history");

/// The state database.
#[derive(Debug)]
pub struct StateDb {
    db: Database,
}

/// One alarm's writes in a commit.
#[derive(Debug)]
pub struct AlarmWrite<'a, S, H> {
    /// The alarm (or alarm instance) name.
    pub name: &'a str,
    /// Its new state, if it changed.
    pub state: Option<&'a S>,
    /// History items to append.
    pub history: &'a [H],
}

impl StateDb {
    /// Opens (or creates) `dir/state.redb`.
    ///
    /// # Errors
    /// The file cannot be opened, or holds a format this build does not know.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join("state.redb");
        let db =
            Database::create(&path).with_context(|| format!("cannot open {}", path.display()))?;
        let tx = db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let found = meta.get("format_version")?.map(|v| v.value());
            match found {
                None => {
                    meta.insert("format_version", FORMAT_VERSION)?;
                }
                Some(FORMAT_VERSION) => {}
                Some(v) => anyhow::bail!(
                    "{}: state format version {v} is not supported by this build (it reads version {FORMAT_VERSION}); use the Thermostat version that wrote it, or move the data directory aside",
                    path.display()
                ),
            }
            tx.open_table(ALARM_STATE)?;
            tx.open_table(ALARM_HISTORY)?;
        }
        tx.commit()?;
        Ok(StateDb { db })
    }

    /// Writes a consistent copy (one read transaction) to a new file at `path`.
    ///
    /// # Errors
    /// The copy cannot be written.
    pub fn backup_to(&self, path: &Path) -> anyhow::Result<()> {
        let src = self.db.begin_read()?;
        let dst = Database::create(path)?;
        let tx = dst.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            for row in src.open_table(META)?.iter()? {
                let (k, v) = row?;
                meta.insert(k.value(), v.value())?;
            }
            let mut states = tx.open_table(ALARM_STATE)?;
            for row in src.open_table(ALARM_STATE)?.iter()? {
                let (k, v) = row?;
                states.insert(k.value(), v.value())?;
            }
            let mut history = tx.open_table(ALARM_HISTORY)?;
            for row in src.open_table(ALARM_HISTORY)?.iter()? {
                let (k, v) = row?;
                history.insert(k.value(), v.value())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every stored alarm state, by name.
    ///
    /// # Errors
    /// A read or decode failure.
    pub fn load_states<S: DeserializeOwned>(&self) -> anyhow::Result<Vec<(String, S)>> {
        self.load_states_under("")
    }

    /// The stored states whose names start with `prefix` (one owner's rows: the table holds
    /// the alarm engine's and the scaling groups'), by name without the prefix.
    ///
    /// # Errors
    /// A read failure, or a row of the prefix that does not decode as `S`.
    pub fn load_states_under<S: DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> anyhow::Result<Vec<(String, S)>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(ALARM_STATE)?;
        let mut out = Vec::new();
        for row in table.range(prefix..)? {
            let (k, v) = row?;
            let Some(name) = k.value().strip_prefix(prefix) else {
                break;
            };
            let state = serde_json::from_slice(v.value())
                .with_context(|| format!("corrupt state of alarm {:?}", k.value()))?;
            out.push((name.to_owned(), state));
        }
        Ok(out)
    }

    /// Writes states and appends history in one durable transaction.
    ///
    /// # Errors
    /// A write failure; nothing of the batch is stored then.
    pub fn commit<S: Serialize, H: Serialize>(
        &self,
        writes: &[AlarmWrite<'_, S, H>],
    ) -> anyhow::Result<()> {
        if writes
            .iter()
            .all(|w| w.state.is_none() && w.history.is_empty())
        {
            return Ok(());
        }
        let tx = self.db.begin_write()?;
        {
            let mut states = tx.open_table(ALARM_STATE)?;
            let mut history = tx.open_table(ALARM_HISTORY)?;
            for w in writes {
                if let Some(s) = w.state {
                    states.insert(w.name, serde_json::to_vec(s)?.as_slice())?;
                }
                if w.history.is_empty() {
                    continue;
                }
                let first = history
                    .range((w.name, 0)..=(w.name, u64::MAX))?
                    .next_back()
                    .transpose()?
                    .map_or(0, |(k, _)| k.value().1 + 1);
                for (seq, h) in (first..).zip(w.history) {
                    history.insert((w.name, seq), serde_json::to_vec(h)?.as_slice())?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes the states stored under `keys` (alarms that no longer exist); their history
    /// stays.
    ///
    /// # Errors
    /// A write failure.
    pub fn forget_states(&self, keys: &[String]) -> anyhow::Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write()?;
        {
            let mut states = tx.open_table(ALARM_STATE)?;
            for k in keys {
                states.remove(k.as_str())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes alarms entirely (their state and history).
    ///
    /// # Errors
    /// A write failure.
    pub fn forget(&self, names: &[String]) -> anyhow::Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write()?;
        {
            let mut states = tx.open_table(ALARM_STATE)?;
            let mut history = tx.open_table(ALARM_HISTORY)?;
            for n in names {
                states.remove(n.as_str())?;
                history.retain_in((n.as_str(), 0)..=(n.as_str(), u64::MAX), |_, _| false)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The newest `limit` history items of `name`, newest first.
    ///
    /// # Errors
    /// A read or decode failure.
    pub fn history<H: DeserializeOwned>(&self, name: &str, limit: usize) -> anyhow::Result<Vec<H>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(ALARM_HISTORY)?;
        let mut out = Vec::new();
        for row in table.range((name, 0)..=(name, u64::MAX))?.rev().take(limit) {
            let (_, v) = row?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_history_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = StateDb::open(dir.path()).unwrap();
            let s1 = "OK".to_owned();
            let h = ["a".to_owned(), "b".to_owned()];
            db.commit(&[AlarmWrite {
                name: "x",
                state: Some(&s1),
                history: &h,
            }])
            .unwrap();
            let h2 = ["c".to_owned()];
            db.commit(&[AlarmWrite::<String, String> {
                name: "x",
                state: None,
                history: &h2,
            }])
            .unwrap();
            db.commit(&[AlarmWrite::<String, String> {
                name: "y",
                state: Some(&"ALARM".to_owned()),
                history: &[],
            }])
            .unwrap();
        }
        let db = StateDb::open(dir.path()).unwrap();
        let states: Vec<(String, String)> = db.load_states().unwrap();
        assert_eq!(
            states,
            vec![("x".into(), "OK".into()), ("y".into(), "ALARM".into())]
        );
        let h: Vec<String> = db.history("x", 10).unwrap();
        assert_eq!(h, ["c", "b", "a"], "newest first");
        let h: Vec<String> = db.history("x", 2).unwrap();
        assert_eq!(h, ["c", "b"]);
        db.forget(&["x".to_owned()]).unwrap();
        assert!(db.history::<String>("x", 10).unwrap().is_empty());
        assert_eq!(db.load_states::<String>().unwrap().len(), 1);
    }

    /// Each owner of the state table reads its own rows, whatever the others store there.
    #[test]
    fn states_are_read_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        for (name, state) in [("m:a", "1"), ("c:b", "2"), ("group:web", "3"), ("m:c", "4")] {
            db.commit(&[AlarmWrite::<u32, String> {
                name,
                state: Some(&state.parse().unwrap()),
                history: &[],
            }])
            .unwrap();
        }
        db.commit(&[AlarmWrite::<String, String> {
            name: "n:other",
            state: Some(&"not a number".to_owned()),
            history: &[],
        }])
        .unwrap();
        let metric: Vec<(String, u32)> = db.load_states_under("m:").unwrap();
        assert_eq!(metric, vec![("a".into(), 1), ("c".into(), 4)]);
        let groups: Vec<(String, u32)> = db.load_states_under("group:").unwrap();
        assert_eq!(groups, vec![("web".into(), 3)]);
        assert!(
            db.load_states::<u32>().is_err(),
            "a row of another shape fails a read of every row"
        );
    }

    #[test]
    fn unknown_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = StateDb::open(dir.path()).unwrap();
            let tx = db.db.begin_write().unwrap();
            tx.open_table(META)
                .unwrap()
                .insert("format_version", 7)
                .unwrap();
            tx.commit().unwrap();
        }
        let e = StateDb::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("state format version 7 is not supported"), "{e}");
    }
}
