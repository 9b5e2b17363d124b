//! The redb file `state.redb`: tables, keys and value encodings, and the generic operations
//! on them.

use std::ops::{Bound, ControlFlow};
use std::path::Path;

use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, StateDbError};

/// Format of `state.redb` written by this build.
pub const FORMAT_VERSION: u64 = 1;
/// The file's name in the data directory.
pub const FILE_NAME: &str = "state.redb";

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const ALARM_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("alarm_state");
/// Key: (alarm name, sequence number within the alarm).
const ALARM_HISTORY: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("alarm_history");

/// The state database.
#[derive(Debug)]
pub struct StateDb {
    db: Database,
}

/// What one pass of [`StateDb::prune_history`] deletes, and how much it may do.
#[derive(Clone, Copy, Debug)]
pub struct HistoryPrune {
    /// Items with a `timestamp` below this (Unix milliseconds) are deleted.
    pub older_than_ms: i64,
    /// Items kept per alarm at most (the oldest beyond it are deleted).
    pub max_items_per_alarm: usize,
    /// Items deleted in one pass at most.
    pub max_deletes: usize,
    /// Alarms visited in one pass at most.
    pub max_alarms: usize,
}

/// What one pass of [`StateDb::prune_history`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrunePass {
    /// Items deleted.
    pub deleted: usize,
    /// Alarms looked at.
    pub alarms_visited: usize,
    /// The alarm the next pass starts at, when this one stopped at a bound.
    pub resume: Option<String>,
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
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| StateDbError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        Self::open_file(&dir.join(FILE_NAME))
    }

    /// Opens (or creates) the state database file `path`.
    ///
    /// # Errors
    /// The file cannot be opened, or holds a format this build does not know.
    fn open_file(path: &Path) -> Result<Self> {
        let path = path.to_path_buf();
        let db = Database::create(&path).map_err(|source| StateDbError::Open {
            path: path.clone(),
            source,
        })?;
        let tx = db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let found = meta.get("format_version")?.map(|v| v.value());
            match found {
                None => {
                    meta.insert("format_version", FORMAT_VERSION)?;
                }
                Some(FORMAT_VERSION) => {}
                Some(found) => {
                    return Err(StateDbError::UnsupportedFormat {
                        path,
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
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
    pub fn backup_to(&self, path: &Path) -> Result<()> {
        let src = self.db.begin_read()?;
        let dst = Database::create(path)?;
        let tx = dst.begin_write()?;
        copy_tables(&src, &tx, false)?;
        tx.commit()?;
        Ok(())
    }

    /// Replaces everything this database holds with the copy at `path` (made by
    /// [`StateDb::backup_to`]), in one transaction: a reader sees all of the old or all of
    /// the new (a cluster node taking over the cluster's state snapshot).
    ///
    /// # Errors
    /// The copy cannot be opened or is of another format; nothing is changed then.
    pub fn replace_with(&self, path: &Path) -> Result<()> {
        let copy = StateDb::open_file(path)?;
        let src = copy.db.begin_read()?;
        let tx = self.db.begin_write()?;
        copy_tables(&src, &tx, true)?;
        tx.commit()?;
        Ok(())
    }

    /// Every stored alarm state, by name.
    ///
    /// # Errors
    /// A read or decode failure.
    pub fn load_states<S: DeserializeOwned>(&self) -> Result<Vec<(String, S)>> {
        self.load_states_under("")
    }

    /// The stored states whose names start with `prefix` (one owner's rows: the table holds
    /// the alarm engine's and the scaling groups'), by name without the prefix.
    ///
    /// # Errors
    /// A read failure, or a row of the prefix that does not decode as `S`.
    pub fn load_states_under<S: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<(String, S)>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(ALARM_STATE)?;
        let mut out = Vec::new();
        for row in table.range(prefix..)? {
            let (k, v) = row?;
            let Some(name) = k.value().strip_prefix(prefix) else {
                break;
            };
            let state =
                serde_json::from_slice(v.value()).map_err(|source| StateDbError::CorruptState {
                    key: k.value().to_owned(),
                    source,
                })?;
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
    ) -> Result<()> {
        self.commit_and_forget(writes, &[])
    }

    /// Writes states, appends history and removes the states stored under `forget`, in one
    /// durable transaction (a key both written and forgotten ends up removed).
    ///
    /// # Errors
    /// A write failure; nothing of the batch is stored then.
    pub fn commit_and_forget<S: Serialize, H: Serialize>(
        &self,
        writes: &[AlarmWrite<'_, S, H>],
        forget: &[String],
    ) -> Result<()> {
        if forget.is_empty()
            && writes
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
            for k in forget {
                states.remove(k.as_str())?;
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
    pub fn forget_states(&self, keys: &[String]) -> Result<()> {
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
    pub fn forget(&self, names: &[String]) -> Result<()> {
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

    /// Visits the history of `name` newest first, from just below sequence number `below`
    /// (from the newest when `None`), one read transaction: `visit(seq, json)` says whether the
    /// row is consumed ([`ControlFlow::Continue`]) or the scan stops before it
    /// ([`ControlFlow::Break`]). At most `max_rows` rows are consumed.
    ///
    /// Returns where a later scan resumes (its `below`: the sequence number just above the
    /// first row not consumed), or `None` when every row was consumed.
    ///
    /// # Errors
    /// A read failure, or the error `visit` returned.
    pub fn scan_history(
        &self,
        name: &str,
        below: Option<u64>,
        max_rows: usize,
        mut visit: impl FnMut(u64, &[u8]) -> Result<ControlFlow<()>>,
    ) -> Result<Option<u64>> {
        let Some(upper) = below.map_or(Some(u64::MAX), |b| b.checked_sub(1)) else {
            return Ok(None);
        };
        let tx = self.db.begin_read()?;
        let table = tx.open_table(ALARM_HISTORY)?;
        for (consumed, row) in table.range((name, 0)..=(name, upper))?.rev().enumerate() {
            let (k, v) = row?;
            let seq = k.value().1;
            if consumed >= max_rows || visit(seq, v.value())?.is_break() {
                return Ok(Some(seq + 1));
            }
        }
        Ok(None)
    }

    /// One bounded pass of history pruning, in one write transaction: for each alarm from
    /// `from` (its name, inclusive; the first alarm when `None`) on, deletes the oldest items
    /// beyond `max_items_per_alarm` and every item older than `older_than` (an item's
    /// `timestamp` field, Unix milliseconds). It stops after deleting `max_deletes` items or
    /// visiting `max_alarms` alarms, and returns where the next pass resumes (`None` when it
    /// reached the last alarm).
    ///
    /// History is appended in time order and deleted only from its oldest end, so an alarm's
    /// items are the contiguous sequence numbers from its oldest to its newest, and age
    /// pruning stops at the first item young enough.
    ///
    /// # Errors
    /// A read, decode or write failure; nothing of the pass is deleted then.
    pub fn prune_history(&self, from: Option<&str>, policy: &HistoryPrune) -> Result<PrunePass> {
        #[derive(serde::Deserialize)]
        struct Stamp {
            timestamp: i64,
        }
        let tx = self.db.begin_write()?;
        let mut pass = PrunePass::default();
        {
            let mut history = tx.open_table(ALARM_HISTORY)?;
            let mut next: Option<(String, u64)> = {
                let start = from.unwrap_or("");
                let first = history.range((start, 0)..)?.next().transpose()?;
                first.map(|(k, _)| (k.value().0.to_owned(), k.value().1))
            };
            while let Some((name, first)) = next.take() {
                if pass.alarms_visited >= policy.max_alarms {
                    pass.resume = Some(name);
                    break;
                }
                pass.alarms_visited += 1;
                let n = name.as_str();
                let last = history
                    .range((n, first)..=(n, u64::MAX))?
                    .next_back()
                    .transpose()?
                    .map_or(first, |(k, _)| k.value().1);
                let count = last - first + 1;
                let budget = (policy.max_deletes - pass.deleted) as u64;
                let over = count
                    .saturating_sub(policy.max_items_per_alarm as u64)
                    .min(budget);
                // The oldest items beyond the count, then those too old, up to the budget.
                let mut end = first + over;
                if end - first < budget {
                    for row in history.range((n, end)..=(n, last))? {
                        let (k, v) = row?;
                        let stamp: Stamp = serde_json::from_slice(v.value()).map_err(|source| {
                            StateDbError::CorruptHistory {
                                name: n.to_owned(),
                                seq: k.value().1,
                                source,
                            }
                        })?;
                        if stamp.timestamp >= policy.older_than_ms || end - first >= budget {
                            break;
                        }
                        end = k.value().1 + 1;
                    }
                }
                if end > first {
                    history.retain_in((n, first)..(n, end), |_, _| false)?;
                    pass.deleted += usize::try_from(end - first).unwrap_or(usize::MAX);
                }
                if pass.deleted >= policy.max_deletes {
                    // This alarm may have more to delete: the next pass starts with it.
                    pass.resume = Some(name);
                    break;
                }
                let after = (Bound::Excluded((n, u64::MAX)), Bound::Unbounded);
                next = history
                    .range::<(&str, u64)>(after)?
                    .next()
                    .transpose()?
                    .map(|(k, _)| (k.value().0.to_owned(), k.value().1));
            }
        }
        if pass.deleted > 0 {
            tx.commit()?;
        } else {
            tx.abort()?;
        }
        Ok(pass)
    }

    /// The newest `limit` history items of `name`, newest first.
    ///
    /// # Errors
    /// A read or decode failure.
    pub fn history<H: DeserializeOwned>(&self, name: &str, limit: usize) -> Result<Vec<H>> {
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

/// Copies every table of `from` into `to`, emptying `to`'s first when `replace`.
fn copy_tables(
    from: &redb::ReadTransaction,
    to: &redb::WriteTransaction,
    replace: bool,
) -> Result<()> {
    copy_rows(from, to, META, replace)?;
    copy_rows(from, to, ALARM_STATE, replace)?;
    copy_rows(from, to, ALARM_HISTORY, replace)
}

fn copy_rows<K: redb::Key + 'static, V: redb::Value + 'static>(
    from: &redb::ReadTransaction,
    to: &redb::WriteTransaction,
    table: TableDefinition<K, V>,
    replace: bool,
) -> Result<()> {
    let mut out = to.open_table(table)?;
    if replace {
        out.retain(|_, _| false)?;
    }
    for row in from.open_table(table)?.iter()? {
        let (k, v) = row?;
        out.insert(k.value(), v.value())?;
    }
    Ok(())
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

    fn item(ts: i64) -> serde_json::Value {
        serde_json::json!({ "timestamp": ts, "payload": "x".repeat(10) })
    }

    fn stamps(db: &StateDb, name: &str) -> Vec<i64> {
        db.history::<serde_json::Value>(name, usize::MAX)
            .unwrap()
            .iter()
            .map(|v| v["timestamp"].as_i64().unwrap())
            .collect()
    }

    #[test]
    fn pruning_keeps_the_newest_items_per_alarm_and_drops_old_ones_in_bounded_passes() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        for name in ["a", "b", "c"] {
            let items: Vec<serde_json::Value> = (0..10).map(item).collect();
            db.commit(&[AlarmWrite::<String, _> {
                name,
                state: None,
                history: &items,
            }])
            .unwrap();
        }
        // By count: at most 4 per alarm; 2 deletions per pass, so the passes resume.
        let policy = HistoryPrune {
            older_than_ms: i64::MIN,
            max_items_per_alarm: 4,
            max_deletes: 2,
            max_alarms: 100,
        };
        let mut from: Option<String> = None;
        let (mut passes, mut deleted) = (0, 0);
        loop {
            let pass = db.prune_history(from.as_deref(), &policy).unwrap();
            assert!(pass.deleted <= 2, "{pass:?}");
            passes += 1;
            deleted += pass.deleted;
            from = pass.resume;
            if from.is_none() {
                break;
            }
        }
        assert_eq!(deleted, 18);
        // 2 a pass; a pass that ends on its budget resumes there and finds nothing more.
        assert_eq!(passes, 10);
        for name in ["a", "b", "c"] {
            assert_eq!(stamps(&db, name), [9, 8, 7, 6], "{name}");
        }
        // New items keep their order after the pruned ones.
        db.commit(&[AlarmWrite::<String, _> {
            name: "b",
            state: None,
            history: &[item(10)],
        }])
        .unwrap();
        assert_eq!(stamps(&db, "b"), [10, 9, 8, 7, 6]);
        // By age: everything below 8 goes, whatever the count.
        let by_age = HistoryPrune {
            older_than_ms: 8,
            max_items_per_alarm: 100,
            max_deletes: 1000,
            max_alarms: 1,
        };
        let pass = db.prune_history(None, &by_age).unwrap();
        assert_eq!(pass.alarms_visited, 1);
        assert_eq!(pass.resume.as_deref(), Some("b"), "one alarm per pass");
        let pass = db.prune_history(pass.resume.as_deref(), &by_age).unwrap();
        assert_eq!(pass.resume.as_deref(), Some("c"));
        assert_eq!(pass.deleted, 2, "6 and 7 of b");
        assert_eq!(stamps(&db, "a"), [9, 8]);
        assert_eq!(stamps(&db, "b"), [10, 9, 8]);
        assert_eq!(stamps(&db, "c").len(), 4, "not visited yet");
        let pass = db.prune_history(Some("c"), &by_age).unwrap();
        assert_eq!(pass.resume, None);
        assert_eq!(stamps(&db, "c"), [9, 8]);
        let nothing = db.prune_history(None, &by_age).unwrap();
        assert_eq!(nothing.deleted, 0);
    }

    #[test]
    fn history_scans_resume_where_they_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        let items: Vec<serde_json::Value> = (0..7).map(item).collect();
        db.commit(&[AlarmWrite::<String, _> {
            name: "x",
            state: None,
            history: &items,
        }])
        .unwrap();
        let mut seen = Vec::new();
        let mut below = None;
        loop {
            let mut page = 0;
            below = db
                .scan_history("x", below, 3, |seq, _| {
                    seen.push(seq);
                    page += 1;
                    Ok(ControlFlow::Continue(()))
                })
                .unwrap();
            assert!(page <= 3);
            if below.is_none() {
                break;
            }
        }
        assert_eq!(seen, [6, 5, 4, 3, 2, 1, 0], "each row once, newest first");
        // A visitor that stops before a row leaves it for the next scan.
        let resume = db
            .scan_history("x", None, 100, |seq, _| {
                Ok(if seq == 4 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            })
            .unwrap();
        assert_eq!(resume, Some(5));
        assert_eq!(
            db.scan_history("x", Some(0), 100, |_, _| unreachable!())
                .unwrap(),
            None
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
