//! The durable outbox: every notification is written here, with its rendered payload,
//! before it is sent; every attempt is recorded; pending notifications survive restarts.
//!
//! One redb file, `outbox.redb`, in the directory the binary gives. Tables:
//! `notifications` (id → JSON [`OutboxRecord`]) and `pending` (id → next attempt, Unix ms).
//! Ids increase; a record leaves `pending` exactly when it reaches a final status
//! (delivered, failed or muted), in the same transaction that records the final attempt.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};
use serde::{Deserialize, Serialize};
use thermostat_alarms::notifications::Notification;
use thermostat_metrics::Timestamp;

use crate::error::Result;

const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("notifications");
const PENDING: TableDefinition<u64, i64> = TableDefinition::new("pending");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The outbox format this build writes and reads.
pub const FORMAT_VERSION: u64 = 1;

/// The outbox file's name.
pub const FILE_NAME: &str = "outbox.redb";

/// Where a notification stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for its first or next attempt.
    Pending,
    /// Delivered; never sent again.
    Delivered,
    /// Given up: a permanent error, or retried for longer than `give_up_after_seconds`.
    Failed,
    /// Held back by a mute rule; never sent.
    Muted,
}

/// How one attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The receiver accepted it.
    Delivered,
    /// It failed; see `error`.
    Failed,
}

/// One delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// When it started.
    pub at: Timestamp,
    /// How it ended.
    pub outcome: Outcome,
    /// The receiver's acknowledgement (SNS message id, SMTP reply, HTTP status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// The error of a failed attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A notification in the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRecord {
    /// Outbox id (increasing).
    pub id: u64,
    /// When it was written.
    pub created: Timestamp,
    /// The notification with its rendered payload.
    pub notification: Notification,
    /// Where it stands.
    pub status: Status,
    /// Every attempt, oldest first.
    pub attempts: Vec<Attempt>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<Timestamp>,
}

/// What to do after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Next {
    /// Try again at this time.
    RetryAt(Timestamp),
    /// Final status ([`Status::Delivered`] or [`Status::Failed`]).
    Done(Status),
}

/// The durable outbox (cheap to clone; clones share the file).
#[derive(Clone)]
pub struct Outbox {
    db: Arc<Database>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

impl Outbox {
    /// Writes a consistent copy of the outbox (one read transaction) to a new file at `path`.
    ///
    /// # Errors
    /// The copy cannot be written.
    pub fn backup_to(&self, path: &Path) -> Result<()> {
        let src = self.db.begin_read()?;
        let dst = Database::create(path)?;
        let tx = dst.begin_write()?;
        tx.open_table(META)?
            .insert("format_version", FORMAT_VERSION)?;
        copy_rows(&src, &tx, RECORDS, false)?;
        copy_rows(&src, &tx, PENDING, false)?;
        tx.commit()?;
        Ok(())
    }

    /// Replaces every notification this outbox holds with the copy at `path` (made by
    /// [`Outbox::backup_to`]), in one transaction (a cluster node taking over the cluster's
    /// state snapshot).
    ///
    /// # Errors
    /// The copy cannot be opened or is of another format; nothing is changed then.
    pub fn replace_with(&self, path: &Path) -> Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        if path.file_name() != Some(std::ffi::OsStr::new(FILE_NAME)) {
            return Err(crate::Error::Outbox(format!(
                "{}: an outbox copy is named {FILE_NAME}",
                path.display()
            )));
        }
        let copy = Outbox::open(dir)?;
        let src = copy.db.begin_read()?;
        let tx = self.db.begin_write()?;
        copy_rows(&src, &tx, RECORDS, true)?;
        copy_rows(&src, &tx, PENDING, true)?;
        tx.commit()?;
        Ok(())
    }

    /// Opens (or creates) `dir/outbox.redb`, creating `dir` if needed.
    ///
    /// # Errors
    /// The directory or file cannot be created or opened (for example when another
    /// process holds it).
    pub fn open(dir: &Path) -> Result<Outbox> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(FILE_NAME);
        let db = Database::create(&path)?;
        let tx = db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let found = meta.get("format_version")?.map(|v| v.value());
            match found {
                None => {
                    meta.insert("format_version", FORMAT_VERSION)?;
                }
                Some(FORMAT_VERSION) => {}
                Some(v) => {
                    return Err(crate::Error::Outbox(format!(
                        "{}: outbox format version {v} is not supported by this build (it reads version {FORMAT_VERSION}); use the Thermostat version that wrote it",
                        path.display()
                    )));
                }
            }
            tx.open_table(RECORDS)?;
            tx.open_table(PENDING)?;
        }
        tx.commit()?;
        Ok(Outbox { db: Arc::new(db) })
    }

    /// Writes notifications (one transaction, made durable before returning): muted ones
    /// as [`Status::Muted`], the others pending and due at `now`.
    ///
    /// # Errors
    /// A failed write; nothing is written then.
    pub fn insert(
        &self,
        notifications: Vec<Notification>,
        now: Timestamp,
    ) -> Result<Vec<OutboxRecord>> {
        let tx = self.db.begin_write()?;
        let mut out = Vec::with_capacity(notifications.len());
        {
            let mut records = tx.open_table(RECORDS)?;
            let mut pending = tx.open_table(PENDING)?;
            let first_id = records.last()?.map_or(1, |(k, _)| k.value() + 1);
            for (id, n) in (first_id..).zip(notifications) {
                let muted = n.muted_by.is_some();
                let rec = OutboxRecord {
                    id,
                    created: now,
                    notification: n,
                    status: if muted {
                        Status::Muted
                    } else {
                        Status::Pending
                    },
                    attempts: Vec::new(),
                    next_attempt_at: (!muted).then_some(now),
                };
                records.insert(rec.id, serde_json::to_vec(&rec)?.as_slice())?;
                if !muted {
                    pending.insert(rec.id, now.as_millis())?;
                }
                out.push(rec);
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// The record with this id.
    ///
    /// # Errors
    /// A failed read.
    pub fn get(&self, id: u64) -> Result<Option<OutboxRecord>> {
        let tx = self.db.begin_read()?;
        let records = tx.open_table(RECORDS)?;
        let rec = match records.get(id)? {
            Some(v) => Some(serde_json::from_slice(v.value())?),
            None => None,
        };
        Ok(rec)
    }

    /// Every pending notification's id and next attempt time.
    ///
    /// # Errors
    /// A failed read.
    pub fn pending(&self) -> Result<Vec<(u64, Timestamp)>> {
        let tx = self.db.begin_read()?;
        let pending = tx.open_table(PENDING)?;
        let mut out = Vec::new();
        for row in pending.iter()? {
            let (k, v) = row?;
            out.push((k.value(), Timestamp::from_millis(v.value())));
        }
        Ok(out)
    }

    /// Records an attempt and what follows it, in one durable transaction.
    ///
    /// # Errors
    /// A failed write, or an unknown id.
    pub fn record_attempt(&self, id: u64, attempt: Attempt, next: Next) -> Result<OutboxRecord> {
        let tx = self.db.begin_write()?;
        let rec = {
            let mut records = tx.open_table(RECORDS)?;
            let mut pending = tx.open_table(PENDING)?;
            let mut rec: OutboxRecord = match records.get(id)? {
                Some(v) => serde_json::from_slice(v.value())?,
                None => {
                    return Err(crate::Error::Outbox(format!(
                        "no notification with id {id}"
                    )));
                }
            };
            rec.attempts.push(attempt);
            match next {
                Next::RetryAt(at) => {
                    rec.status = Status::Pending;
                    rec.next_attempt_at = Some(at);
                    pending.insert(id, at.as_millis())?;
                }
                Next::Done(status) => {
                    rec.status = status;
                    rec.next_attempt_at = None;
                    pending.remove(id)?;
                }
            }
            records.insert(id, serde_json::to_vec(&rec)?.as_slice())?;
            rec
        };
        tx.commit()?;
        Ok(rec)
    }

    /// The newest `limit` records, newest first.
    ///
    /// # Errors
    /// A failed read.
    pub fn recent(&self, limit: usize) -> Result<Vec<OutboxRecord>> {
        let tx = self.db.begin_read()?;
        let records = tx.open_table(RECORDS)?;
        let mut out = Vec::new();
        for row in records.iter()?.rev().take(limit) {
            let (_, v) = row?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }

    /// Removes finished (delivered, failed, muted) records written before `before`;
    /// pending ones are kept whatever their age. Returns how many were removed.
    ///
    /// # Errors
    /// A failed write.
    pub fn prune(&self, before: Timestamp) -> Result<usize> {
        let tx = self.db.begin_write()?;
        let mut removed = 0;
        {
            let mut records = tx.open_table(RECORDS)?;
            let pending = tx.open_table(PENDING)?;
            // The newest record stays, so that ids keep increasing.
            let newest = records.last()?.map(|(k, _)| k.value());
            let mut old = Vec::new();
            for row in records.iter()? {
                let (k, v) = row?;
                let rec: OutboxRecord = serde_json::from_slice(v.value())?;
                if rec.created >= before || Some(k.value()) == newest {
                    break;
                }
                if pending.get(k.value())?.is_none() {
                    old.push(k.value());
                }
            }
            for id in old {
                records.remove(id)?;
                removed += 1;
            }
        }
        tx.commit()?;
        Ok(removed)
    }
}

/// Copies `table` of `from` into `to`, emptying `to`'s first when `replace`.
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
    use thermostat_alarms::Action;
    use thermostat_alarms::StateValue;
    use thermostat_alarms::history::AlarmType;
    use thermostat_alarms::notifications::{Delivery, WebhookFormat};

    use super::*;

    #[test]
    fn an_unknown_format_is_refused_and_backups_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(dir.path()).unwrap();
        let copy = dir.path().join("copy");
        std::fs::create_dir_all(&copy).unwrap();
        ob.backup_to(&copy.join(FILE_NAME)).unwrap();
        assert!(
            Outbox::open(&copy).is_ok(),
            "a backup opens like the original"
        );
        drop(ob);
        {
            let db = Database::create(dir.path().join(FILE_NAME)).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(META)
                .unwrap()
                .insert("format_version", 9)
                .unwrap();
            tx.commit().unwrap();
        }
        let e = Outbox::open(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("outbox format version 9 is not supported"),
            "{e}"
        );
    }

    fn n(muted: bool) -> Notification {
        Notification {
            key: "k".into(),
            alarm_name: "a".into(),
            alarm_type: AlarmType::MetricAlarm,
            action: Action::Webhook {
                url: "http://h/x".into(),
            },
            state: StateValue::Alarm,
            transition_time: Timestamp(0),
            repeat: false,
            muted_by: muted.then(|| "m".into()),
            delivery: Delivery::Webhook {
                webhook: None,
                url: "http://h/x".into(),
                format: WebhookFormat::Cloudwatch,
                body: "{}".into(),
            },
        }
    }

    #[test]
    fn records_attempts_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::open(dir.path()).unwrap();
        let recs = o.insert(vec![n(false), n(true)], Timestamp(10)).unwrap();
        assert_eq!(recs[0].id, 1);
        assert_eq!(recs[1].status, Status::Muted);
        assert_eq!(o.pending().unwrap(), [(1, Timestamp(10))]);
        let fail = Attempt {
            at: Timestamp(11),
            outcome: Outcome::Failed,
            receipt: None,
            error: Some("HTTP 500".into()),
        };
        o.record_attempt(1, fail, Next::RetryAt(Timestamp(1011)))
            .unwrap();
        drop(o);
        let o = Outbox::open(dir.path()).unwrap();
        assert_eq!(o.pending().unwrap(), [(1, Timestamp(1011))]);
        let ok = Attempt {
            at: Timestamp(1011),
            outcome: Outcome::Delivered,
            receipt: Some("HTTP 200".into()),
            error: None,
        };
        let rec = o
            .record_attempt(1, ok, Next::Done(Status::Delivered))
            .unwrap();
        assert_eq!(rec.attempts.len(), 2);
        assert!(o.pending().unwrap().is_empty());
        // Pruning keeps the newest record, so ids keep increasing.
        assert_eq!(o.prune(Timestamp(100)).unwrap(), 1);
        assert_eq!(o.insert(vec![n(false)], Timestamp(200)).unwrap()[0].id, 3);
        assert_eq!(
            o.recent(10)
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>(),
            [3, 2]
        );
    }
}
