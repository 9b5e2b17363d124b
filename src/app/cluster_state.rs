//! Cluster mode's alarm and scaling state and notification outbox: every node keeps a
//! replica of them (a state database and an outbox under `<data dir>/cluster/state/`,
//! rebuilt at start from the leader's latest snapshot of it and the journal after that), and
//! every write goes through the cluster's state journal ([`Journal`]) first, so that all
//! nodes apply the same writes in the same order.
//!
//! - [`Replicated`] is the alarm runtime's [`AlarmStore`], the scaling runtime's
//!   [`GroupStore`] and the dispatcher's [`SharedOutbox`]: reads come from the replica; a
//!   write is routed to its journal part (a partition's alarm states, the leader's, or
//!   unfenced), appended on the part's sequence this node has applied (refused by JetStream
//!   when another node wrote the part meanwhile: a deposed owner cannot overwrite what it did
//!   not see), then applied to the replica.
//! - [`follow`] applies the other nodes' writes as they come and has the runtimes and the
//!   dispatcher adopt them.
//! - [`ClusterGate`]: every node evaluates the metric alarms of its partitions, the leader
//!   also composites, metric math and the alarms that scale; before each tick a node
//!   catches up with the journal, adopting what others wrote, and it pauses while cut off.
//! - Writes every node makes alike (the states and history a start or a reload writes) stay
//!   local ([`local_writes`]): written by every node they would be in the journal N times.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thermostat_alarms::engine::InstanceState;
use thermostat_alarms::notifications::Notification;
use thermostat_alarms::{ActionDue, Alarm, CompositeAlarm, CompositeState, HistoryItem};
use thermostat_alarms_runtime::{
    AlarmRuntime, AlarmStore, AlarmTags, EvaluationGate, Gate, PruneBounds, PrunePass, StateRef,
    StoreError, StoredModel, StoredStates,
};
use thermostat_cluster::{AppendError, Cluster, Journal};
use thermostat_metrics::store::stable_hash;
use thermostat_metrics::{SeriesKey, Timestamp};
use thermostat_notify::SharedOutbox;
use thermostat_notify::outbox::{Attempt, Next, Outbox, OutboxRecord};
use thermostat_scaler::{GroupState, ScalingActivity};
use thermostat_scaler_runtime::{GroupStore, GroupWrite, ScalingRuntime};
use thermostat_statedb::{ScaleRequest, StateDb, StoredDetector};
use tokio_util::sync::CancellationToken;

mod snapshot;
use snapshot::StateSnapshot;

/// How often a node looks for the other nodes' writes.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);
/// Up to this many new entries are read one by one; more through one consumer.
const ONE_BY_ONE: u64 = 16;
/// Entries read through one consumer at a time.
const CATCH_UP_BATCH: usize = 4096;

thread_local! {
    static LOCAL_ONLY: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the writes it makes through a [`Replicated`] store kept on this node only:
/// the writes every node makes alike (start, reload, the states written at shutdown).
pub fn local_writes<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            LOCAL_ONLY.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(LOCAL_ONLY.with(|c| c.replace(true)));
    f()
}

/// One write, as the journal holds it.
#[derive(Debug, Serialize, Deserialize)]
enum Entry {
    /// States written and history appended ([`AlarmStore::commit`]).
    Commit {
        metric: Vec<(String, InstanceState)>,
        composites: Vec<(String, CompositeState)>,
        history: Vec<HistoryItem>,
    },
    ActionsEnabled {
        overrides: Vec<(String, Option<bool>)>,
        history: Vec<HistoryItem>,
    },
    ApiAlarm {
        name: String,
        alarm: Option<Box<Alarm>>,
        history: Vec<HistoryItem>,
    },
    ApiComposite {
        name: String,
        composite: Option<Box<CompositeAlarm>>,
    },
    Tags {
        name: String,
        tags: Option<AlarmTags>,
    },
    Forget {
        names: Vec<String>,
    },
    /// One pruning pass: every replica deletes the same items from the same history.
    Prune {
        from: Option<String>,
        older_than: i64,
        max_items_per_alarm: usize,
        max_deletes: usize,
        max_alarms: usize,
    },
    /// Group states written and activities appended ([`GroupStore::commit_groups`]).
    Groups {
        writes: Vec<(String, GroupState, Vec<ScalingActivity>)>,
    },
    /// Notifications written to the outbox ([`SharedOutbox::insert`]).
    OutboxInsert {
        batch: Vec<Notification>,
        now: i64,
    },
    /// A delivery attempt recorded ([`SharedOutbox::record_attempt`]).
    OutboxAttempt {
        id: u64,
        attempt: Attempt,
        next: Next,
    },
    /// Scaling actions that came due on a node that does not lead (a `SetAlarmState` it
    /// answered), for the leader to run ([`Replicated::request_scaling`]): every replica
    /// keeps it as a pending request under the entry's sequence until a leader claims it.
    Scale {
        due: Vec<ActionDue>,
        now: i64,
    },
    /// A leader took the pending request of entry `seq` to run it (written on the leader's
    /// part, so a deposed leader that has not seen a newer leader's writes cannot claim).
    ScaleClaimed {
        seq: u64,
    },
    /// A `PutAnomalyDetector` (`Some`) or `DeleteAnomalyDetector` (`None`).
    Detector {
        key: String,
        detector: Option<Box<StoredDetector>>,
    },
}

/// What applying an entry gave.
enum Applied {
    Nothing,
    Pruned(PrunePass),
    Inserted(Vec<OutboxRecord>),
    Attempted(Box<OutboxRecord>),
}

/// The journal part of writes that only add (history, definitions, the outbox): appended
/// whatever came before.
const UNFENCED: &str = "any";
/// The journal part of the leader's state writes (composite alarms, groups).
const LEADER_PART: &str = "leader";

impl Entry {
    /// The writes of `self` by journal part: a commit's metric alarm states go with their
    /// series' partition (`p.<n>`, written by its owner), composite states with the
    /// leader's, history with its alarm's state (or unfenced when the commit has none).
    fn route(self, partitions: u32) -> Vec<Entry> {
        let Entry::Commit {
            metric,
            composites,
            history,
        } = self
        else {
            return vec![self];
        };
        type Part = (
            Vec<(String, InstanceState)>,
            Vec<(String, CompositeState)>,
            Vec<HistoryItem>,
        );
        let mut parts: BTreeMap<String, Part> = BTreeMap::new();
        let mut part_of: HashMap<String, String> = HashMap::new();
        for (name, state) in metric {
            let p = stable_hash(&state.key) % u64::from(partitions.max(1));
            let part = format!("p.{p}");
            part_of.insert(name.clone(), part.clone());
            parts.entry(part).or_default().0.push((name, state));
        }
        for (name, state) in composites {
            part_of.insert(name.clone(), LEADER_PART.to_owned());
            parts
                .entry(LEADER_PART.to_owned())
                .or_default()
                .1
                .push((name, state));
        }
        for item in history {
            let part = part_of
                .get(&item.alarm_name)
                .cloned()
                .unwrap_or_else(|| UNFENCED.to_owned());
            parts.entry(part).or_default().2.push(item);
        }
        parts
            .into_values()
            .map(|(metric, composites, history)| Entry::Commit {
                metric,
                composites,
                history,
            })
            .collect()
    }

    /// The journal part of a routed write ([`Entry::route`]).
    fn part(&self, partitions: u32) -> String {
        match self {
            Entry::Commit { metric, .. } if !metric.is_empty() => {
                let p = stable_hash(&metric[0].1.key) % u64::from(partitions.max(1));
                format!("p.{p}")
            }
            Entry::Commit { composites, .. } if !composites.is_empty() => LEADER_PART.to_owned(),
            Entry::Groups { .. } | Entry::ScaleClaimed { .. } => LEADER_PART.to_owned(),
            _ => UNFENCED.to_owned(),
        }
    }

    /// The write as two halves, for one too large for a NATS message (`None`: it cannot be
    /// split). The halves are two journal entries, each whole.
    fn split(self) -> Result<(Entry, Entry), Entry> {
        fn halve<T>(mut v: Vec<T>) -> (Vec<T>, Vec<T>) {
            let back = v.split_off(v.len() / 2);
            (v, back)
        }
        match self {
            Entry::Commit {
                metric,
                composites,
                history,
            } if metric.len() + composites.len() + history.len() > 1 => {
                let (m1, m2) = halve(metric);
                let (c1, c2) = halve(composites);
                let (h1, h2) = halve(history);
                Ok((
                    Entry::Commit {
                        metric: m1,
                        composites: c1,
                        history: h1,
                    },
                    Entry::Commit {
                        metric: m2,
                        composites: c2,
                        history: h2,
                    },
                ))
            }
            Entry::Groups { writes } if writes.len() > 1 => {
                let (w1, w2) = halve(writes);
                Ok((Entry::Groups { writes: w1 }, Entry::Groups { writes: w2 }))
            }
            other => Err(other),
        }
    }
}

/// A journal entry: who wrote it, under which leader lease, and the write.
#[derive(Debug, Serialize, Deserialize)]
struct Written {
    by: String,
    /// The writer's leader lease revision when it led (its ticks and scaling); `None` for a
    /// write another node made (an API call it answered).
    leader_revision: Option<u64>,
    entry: Entry,
}

/// The replicated state ([module docs](self)).
#[derive(Debug)]
pub struct Replicated {
    cluster: Cluster,
    journal: Journal,
    replica: Arc<StateDb>,
    /// The notification outbox's replica, beside the state's.
    outbox: Outbox,
    runtime: tokio::runtime::Handle,
    /// How far the replica has applied the journal; held while a write is appended and
    /// applied, so that the replica takes entries in journal order.
    applied: Mutex<Position>,
    /// Set when the replica took writes the runtimes have not adopted yet (another node's,
    /// or a refusal that says there are some).
    unadopted: AtomicBool,
    /// `<data dir>/cluster`: the replica's parent, where snapshots are made and taken.
    dir: std::path::PathBuf,
    /// The journal sequence of the newest state snapshot this node wrote or loaded.
    snapshot_seq: AtomicU64,
}

/// How far a replica has applied the journal.
#[derive(Debug, Default)]
struct Position {
    /// The last sequence applied.
    seq: u64,
    /// Each part's last sequence applied: what a write to the part is made on.
    parts: HashMap<String, u64>,
}

/// Why a write to the replicated state failed.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error("the cluster's state journal: {0}")]
    Journal(#[from] AppendError),
    #[error("the cluster's state journal: {0}")]
    Read(#[from] thermostat_cluster::Error),
    #[error("a state journal entry: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("the state write is {0} bytes, more than a NATS message takes")]
    TooLarge(usize),
    #[error("the server is stopping")]
    Stopping,
    #[error("a snapshot of the state: {0}")]
    Snapshot(String),
}

impl Replicated {
    /// Opens the state journal and this node's replica under `<data_dir>/cluster/state/`
    /// (removed first: it is rebuilt from the cluster's state snapshot and the journal after
    /// it, which are the source of truth), and applies them to it.
    ///
    /// # Errors
    /// The replica cannot be created or the journal read.
    pub async fn open(
        cluster: &Cluster,
        data_dir: &std::path::Path,
    ) -> Result<Arc<Replicated>, crate::app::Error> {
        let journal = Journal::open(cluster)
            .await
            .map_err(crate::app::Error::Cluster)?;
        let dir = data_dir.join("cluster").join("state");
        let cluster_dir = data_dir.join("cluster");
        let replica = tokio::task::spawn_blocking(move || {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(crate::app::Error::StateDb(
                        thermostat_statedb::StateDbError::CreateDir { path: dir, source },
                    ));
                }
            }
            let db = StateDb::open(&dir).map(Arc::new)?;
            let outbox = Outbox::open(&dir).map_err(|e| {
                crate::app::Error::Actions(crate::app::actions::StartError::Outbox(e))
            })?;
            Ok::<_, crate::app::Error>((db, outbox))
        })
        .await
        .map_err(|_| crate::app::Error::Panicked("opening the cluster's state replica"))??;
        let (replica, outbox) = replica;
        let replicated = Arc::new(Replicated {
            cluster: cluster.clone(),
            journal,
            replica,
            outbox,
            runtime: tokio::runtime::Handle::current(),
            applied: Mutex::new(Position::default()),
            unadopted: AtomicBool::new(false),
            dir: cluster_dir,
            snapshot_seq: AtomicU64::new(0),
        });
        let catching_up = Arc::clone(&replicated);
        let applied = tokio::task::spawn_blocking(move || catching_up.catch_up())
            .await
            .map_err(|_| crate::app::Error::Panicked("reading the cluster's state journal"))?
            .map_err(|e| {
                crate::app::Error::Cluster(thermostat_cluster::Error::JetStream {
                    what: "reading the state journal",
                    reason: e.to_string(),
                })
            })?;
        tracing::info!(
            entries = applied,
            "Loaded the cluster's alarm and scaling state."
        );
        Ok(replicated)
    }

    /// The state database's replica (what a backup of this node holds in cluster mode).
    pub fn replica(&self) -> &Arc<StateDb> {
        &self.replica
    }

    /// The notification outbox's replica (the dispatcher reads it; its writes go through
    /// [`SharedOutbox`]).
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    fn applied(&self) -> MutexGuard<'_, Position> {
        self.applied.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the server's runtime and waits for it (from a blocking thread).
    fn block<T: Send + 'static>(
        &self,
        f: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, WriteError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(f.await);
        });
        // Called from a blocking thread mostly (ticks, API handlers); a notification's
        // history item is written from a worker of the runtime, which must not just block.
        let on_worker = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if on_worker {
            tokio::task::block_in_place(|| rx.recv())
        } else {
            rx.recv()
        }
        .map_err(|_| WriteError::Stopping)
    }

    /// Applies the journal up to its end; returns how many entries were applied.
    ///
    /// # Errors
    /// The journal cannot be read.
    fn catch_up(&self) -> Result<u64, WriteError> {
        let journal = self.journal.clone();
        let last = self.block(async move { journal.last_seq().await })??;
        let mut applied = self.applied();
        let before = applied.seq;
        self.catch_up_locked(&mut applied, last)?;
        Ok(applied.seq - before)
    }

    /// Applies entries after `applied` up to `upto`, in order: many at once through one
    /// consumer when there are many (a start), one by one otherwise.
    ///
    /// Entries read are applied only once the cluster's state snapshot is known not to be
    /// newer than this replica (the leader moves it before trimming the journal, so a read
    /// that missed trimmed entries is followed by a check that sees the snapshot): when it is,
    /// the replica takes the snapshot instead and reads on from it.
    fn catch_up_locked(&self, applied: &mut Position, upto: u64) -> Result<(), WriteError> {
        if applied.seq == 0 {
            self.restore_if_behind(applied)?;
        }
        while upto.saturating_sub(applied.seq) > ONE_BY_ONE {
            let (journal, after) = (self.journal.clone(), applied.seq);
            let batch =
                self.block(async move { journal.read_range(after, upto, CATCH_UP_BATCH).await })??;
            if batch.is_empty() {
                break;
            }
            if self.restore_if_behind(applied)? {
                continue;
            }
            for (seq, part, bytes) in batch {
                self.apply_read(seq, &bytes);
                applied.parts.insert(part, seq);
                applied.seq = seq;
            }
        }
        let mut read = Vec::new();
        for seq in applied.seq + 1..=upto {
            let journal = self.journal.clone();
            read.push((seq, self.block(async move { journal.read(seq).await })??));
        }
        if !read.is_empty() && self.restore_if_behind(applied)? {
            return self.catch_up_locked(applied, upto);
        }
        for (seq, entry) in read {
            if let Some((part, bytes)) = entry {
                self.apply_read(seq, &bytes);
                applied.parts.insert(part, seq);
            }
            applied.seq = seq;
        }
        Ok(())
    }

    /// When the cluster's state snapshot holds more of the journal than this replica, the
    /// replica takes it (the journal may no longer hold the entries between). Returns whether
    /// it did. A snapshot that does not load is logged and left; the journal is read on.
    fn restore_if_behind(&self, applied: &mut Position) -> Result<bool, WriteError> {
        let journal = self.journal.clone();
        let newest = self.block(async move { journal.snapshot_seq().await })??;
        if newest <= applied.seq {
            return Ok(false);
        }
        let journal = self.journal.clone();
        let Some((seq, bytes)) = self.block(async move { journal.snapshot().await })?? else {
            return Ok(false);
        };
        if seq <= applied.seq {
            return Ok(false);
        }
        let taken = StateSnapshot::decode(&bytes).and_then(|snapshot| {
            if snapshot.seq != seq {
                return Err(format!(
                    "it says it holds the journal up to {}, its pointer {seq}",
                    snapshot.seq
                ));
            }
            snapshot.restore_into(&self.replica, &self.outbox, &self.dir.join("snapshot-in"))?;
            Ok(snapshot)
        });
        match taken {
            Ok(snapshot) => {
                tracing::info!(
                    seq,
                    from = applied.seq,
                    bytes = bytes.len(),
                    "Loaded the cluster's state snapshot."
                );
                applied.seq = snapshot.seq;
                applied.parts = snapshot.parts.into_iter().collect();
                self.snapshot_seq.fetch_max(seq, Ordering::AcqRel);
                self.unadopted.store(true, Ordering::Release);
                Ok(true)
            }
            Err(why) => {
                tracing::error!(
                    seq,
                    error = why,
                    "The cluster's state snapshot does not load; reading the journal on from this node's replica (what the journal no longer holds is missing)."
                );
                Ok(false)
            }
        }
    }

    /// Writes a snapshot of the replica into the cluster's object store and trims the journal
    /// below it, when the replica holds entries newer than the last snapshot (the leader does,
    /// every `cluster.snapshot_seconds`).
    fn write_snapshot(&self) -> Result<(), WriteError> {
        let snapshot = {
            let applied = self.applied();
            if applied.seq <= self.snapshot_seq.load(Ordering::Acquire) {
                return Ok(());
            }
            let mut parts: Vec<(String, u64)> =
                applied.parts.iter().map(|(p, s)| (p.clone(), *s)).collect();
            parts.sort();
            StateSnapshot::take(
                &self.replica,
                &self.outbox,
                applied.seq,
                parts,
                &self.dir.join("snapshot-out"),
            )
            .map_err(WriteError::Snapshot)?
        };
        let (seq, parts, bytes) = (snapshot.seq, snapshot.parts.clone(), snapshot.encode());
        let size = bytes.len();
        let journal = self.journal.clone();
        let current =
            self.block(async move { journal.write_snapshot(seq, &parts, bytes).await })??;
        self.snapshot_seq.fetch_max(seq, Ordering::AcqRel);
        if current {
            tracing::info!(
                seq,
                bytes = size,
                "Wrote the cluster's state snapshot; the state journal keeps the entries after it."
            );
        }
        Ok(())
    }

    /// Applies entry `seq` as read from the journal (one that does not decode is logged and
    /// skipped).
    fn apply_read(&self, seq: u64, bytes: &[u8]) {
        match serde_json::from_slice::<Written>(bytes) {
            Ok(w) => {
                if let Err(e) = self.apply(seq, &w.entry) {
                    tracing::error!(seq, error = %e, "Could not apply a state journal entry to this node's replica.");
                }
            }
            Err(e) => {
                tracing::error!(seq, error = %e, "Skipped a state journal entry that does not decode.");
            }
        }
        self.unadopted.store(true, Ordering::Release);
    }

    /// Asks the leader to run scaling actions that came due here at `now` (this node does
    /// not lead): a journal entry every replica keeps as a pending request until a leader
    /// claims it ([`Replicated::claim_scaling_requests`]), the leader of now or the next one.
    pub fn request_scaling(&self, due: Vec<ActionDue>, now: Timestamp) {
        let count = due.len();
        match self.write(Entry::Scale {
            due,
            now: now.as_millis(),
        }) {
            Ok(_) => tracing::info!(actions = count, "Handed scaling actions to the leader."),
            Err(e) => {
                tracing::error!(error = %e, actions = count, "Could not hand scaling actions to the leader; they are not run.");
            }
        }
    }

    /// The pending scaling requests this node claimed to run now (it leads): each claimed by
    /// an entry on the leader's part before it is run, so that a request is run at most once
    /// whoever leads when (a leader that dies between the claim and the run loses it, as a
    /// deposed leader's call in flight would be).
    fn claim_scaling_requests(&self) -> Vec<(Vec<ActionDue>, Timestamp)> {
        if !self.cluster.leads() {
            return Vec::new();
        }
        let pending = match self.replica.scale_requests() {
            Ok(pending) => pending,
            Err(e) => {
                tracing::error!(error = %e, "Could not read the scaling requests waiting for the leader.");
                return Vec::new();
            }
        };
        let mut claimed = Vec::new();
        for (seq, request) in pending {
            if let Err(e) = self.write(Entry::ScaleClaimed { seq }) {
                tracing::warn!(error = %e, seq, "Could not claim a scaling request; it stays for the leader.");
                break;
            }
            tracing::info!(
                seq,
                actions = request.due.len(),
                "Claimed a scaling request of another node."
            );
            claimed.push((request.due, Timestamp(request.now)));
        }
        claimed
    }

    /// Takes the flag that says the runtimes have writes to adopt.
    fn take_unadopted(&self) -> bool {
        self.unadopted.swap(false, Ordering::AcqRel)
    }

    /// Applies write `seq` of the journal to the replica; says what it gave.
    fn apply(&self, seq: u64, entry: &Entry) -> Result<Applied, StoreError> {
        let db = &*self.replica;
        match entry {
            Entry::Commit {
                metric,
                composites,
                history,
            } => {
                let states: Vec<(&str, StateRef<'_>)> = metric
                    .iter()
                    .map(|(n, s)| (n.as_str(), StateRef::Metric(s)))
                    .chain(
                        composites
                            .iter()
                            .map(|(n, s)| (n.as_str(), StateRef::Composite(s))),
                    )
                    .collect();
                AlarmStore::commit(db, &states, history)?;
            }
            Entry::ActionsEnabled { overrides, history } => {
                let overrides: Vec<(&str, Option<bool>)> =
                    overrides.iter().map(|(n, e)| (n.as_str(), *e)).collect();
                AlarmStore::commit_actions_enabled(db, &overrides, history)?;
            }
            Entry::ApiAlarm {
                name,
                alarm,
                history,
            } => AlarmStore::commit_api_alarm(db, name, alarm.as_deref(), history)?,
            Entry::ApiComposite { name, composite } => {
                AlarmStore::commit_api_composite(db, name, composite.as_deref())?;
            }
            Entry::Tags { name, tags } => AlarmStore::commit_alarm_tags(db, name, tags.as_ref())?,
            Entry::Forget { names } => AlarmStore::forget_states(db, names)?,
            Entry::Prune {
                from,
                older_than,
                max_items_per_alarm,
                max_deletes,
                max_alarms,
            } => {
                let bounds = PruneBounds {
                    older_than: Timestamp(*older_than),
                    max_items_per_alarm: *max_items_per_alarm,
                    max_deletes: *max_deletes,
                    max_alarms: *max_alarms,
                };
                return Ok(Applied::Pruned(AlarmStore::prune_history(
                    db,
                    from.as_deref(),
                    &bounds,
                )?));
            }
            Entry::Groups { writes } => {
                let writes: Vec<GroupWrite<'_>> = writes
                    .iter()
                    .map(|(group, state, activities)| GroupWrite {
                        group,
                        state,
                        activities,
                    })
                    .collect();
                GroupStore::commit_groups(db, &writes)
                    .map_err(|e| StoreError::new(std::io::Error::other(e.to_string())))?;
            }
            Entry::OutboxInsert { batch, now } => {
                return self
                    .outbox
                    .insert(batch.clone(), Timestamp(*now))
                    .map(Applied::Inserted)
                    .map_err(StoreError::new);
            }
            Entry::Scale { due, now } => {
                let request = ScaleRequest {
                    due: due.clone(),
                    now: *now,
                };
                db.put_scale_request(seq, &request)
                    .map_err(StoreError::new)?;
            }
            Entry::ScaleClaimed { seq } => {
                db.remove_scale_request(*seq).map_err(StoreError::new)?
            }
            Entry::Detector { key, detector } => {
                let done = match detector {
                    Some(d) => db.put_anomaly_detector(d),
                    None => db.delete_anomaly_detector(key).map(drop),
                };
                done.map_err(StoreError::new)?;
            }
            Entry::OutboxAttempt { id, attempt, next } => {
                return self
                    .outbox
                    .record_attempt(*id, attempt.clone(), *next)
                    .map(|r| Applied::Attempted(Box::new(r)))
                    .map_err(StoreError::new);
            }
        }
        Ok(Applied::Nothing)
    }

    /// Appends `entry` to the journal (a state write on the sequence this node applied) and
    /// applies it to the replica; within [`local_writes`], only applies it.
    fn write(&self, entry: Entry) -> Result<Applied, StoreError> {
        if LOCAL_ONLY.with(Cell::get) {
            return self.apply(0, &entry);
        }
        let mut out = Applied::Nothing;
        for part in entry.route(self.cluster.partitions()) {
            out = self.write_part(part)?;
        }
        Ok(out)
    }

    /// [`write`](Self::write) of one part's entry.
    fn write_part(&self, entry: Entry) -> Result<Applied, StoreError> {
        let written = Written {
            by: self.cluster.node_id().to_owned(),
            leader_revision: self.cluster.leader_revision(),
            entry,
        };
        let bytes = serde_json::to_vec(&written).map_err(StoreError::new)?;
        if bytes.len() > self.journal.max_entry_bytes() {
            return match written.entry.split() {
                Ok((a, b)) => {
                    self.write_part(a)?;
                    self.write_part(b)
                }
                Err(_) => Err(StoreError::new(WriteError::TooLarge(bytes.len()))),
            };
        }
        let part = written.entry.part(self.cluster.partitions());
        let mut applied = self.applied();
        let expected = (part != UNFENCED).then(|| applied.parts.get(&part).copied().unwrap_or(0));
        let journal = self.journal.clone();
        let to = part.clone();
        let seq = match self.block(async move { journal.append(&to, bytes, expected).await }) {
            Ok(Ok(seq)) => seq,
            Ok(Err(e)) => {
                if matches!(e, AppendError::Behind { .. }) {
                    // Catch up at the next chance, and have the runtimes adopt it.
                    self.unadopted.store(true, Ordering::Release);
                }
                return Err(StoreError::new(WriteError::Journal(e)));
            }
            Err(e) => return Err(StoreError::new(e)),
        };
        // Another node's entries landed before this one (an unfenced write): apply them
        // first, in journal order.
        self.catch_up_locked(&mut applied, seq - 1)
            .map_err(StoreError::new)?;
        let out = self.apply(seq, &written.entry);
        applied.seq = seq;
        applied.parts.insert(part, seq);
        out
    }
}

impl AlarmStore for Replicated {
    fn load_states(&self) -> Result<StoredStates, StoreError> {
        AlarmStore::load_states(&*self.replica)
    }

    fn commit(
        &self,
        states: &[(&str, StateRef<'_>)],
        history: &[HistoryItem],
    ) -> Result<(), StoreError> {
        if states.is_empty() && history.is_empty() {
            return Ok(());
        }
        let mut metric = Vec::new();
        let mut composites = Vec::new();
        for (name, state) in states {
            match state {
                StateRef::Metric(s) => metric.push(((*name).to_owned(), (*s).clone())),
                StateRef::Composite(s) => composites.push(((*name).to_owned(), (*s).clone())),
            }
        }
        self.write(Entry::Commit {
            metric,
            composites,
            history: history.to_vec(),
        })
        .map(drop)
    }

    fn load_actions_enabled(&self) -> Result<Vec<(String, bool)>, StoreError> {
        AlarmStore::load_actions_enabled(&*self.replica)
    }

    fn commit_actions_enabled(
        &self,
        overrides: &[(&str, Option<bool>)],
        history: &[HistoryItem],
    ) -> Result<(), StoreError> {
        if overrides.is_empty() && history.is_empty() {
            return Ok(());
        }
        self.write(Entry::ActionsEnabled {
            overrides: overrides
                .iter()
                .map(|(n, e)| ((*n).to_owned(), *e))
                .collect(),
            history: history.to_vec(),
        })
        .map(drop)
    }

    fn load_api_alarms(&self) -> Result<Vec<Alarm>, StoreError> {
        AlarmStore::load_api_alarms(&*self.replica)
    }

    fn commit_api_alarm(
        &self,
        name: &str,
        alarm: Option<&Alarm>,
        history: &[HistoryItem],
    ) -> Result<(), StoreError> {
        self.write(Entry::ApiAlarm {
            name: name.to_owned(),
            alarm: alarm.cloned().map(Box::new),
            history: history.to_vec(),
        })
        .map(drop)
    }

    fn load_api_composites(&self) -> Result<Vec<CompositeAlarm>, StoreError> {
        AlarmStore::load_api_composites(&*self.replica)
    }

    fn commit_api_composite(
        &self,
        name: &str,
        composite: Option<&CompositeAlarm>,
    ) -> Result<(), StoreError> {
        self.write(Entry::ApiComposite {
            name: name.to_owned(),
            composite: composite.cloned().map(Box::new),
        })
        .map(drop)
    }

    fn load_alarm_tags(&self) -> Result<Vec<(String, AlarmTags)>, StoreError> {
        AlarmStore::load_alarm_tags(&*self.replica)
    }

    fn commit_alarm_tags(&self, name: &str, tags: Option<&AlarmTags>) -> Result<(), StoreError> {
        self.write(Entry::Tags {
            name: name.to_owned(),
            tags: tags.cloned(),
        })
        .map(drop)
    }

    // Anomaly models stay on each node (a cache the leader retrains from the metric store):
    // they would be the largest entries and no other node needs them.
    fn load_anomaly_models(&self) -> Result<Vec<StoredModel>, StoreError> {
        AlarmStore::load_anomaly_models(&*self.replica)
    }

    fn commit_anomaly_model(
        &self,
        instance: &str,
        metric_id: &str,
        model: Option<&StoredModel>,
    ) -> Result<(), StoreError> {
        AlarmStore::commit_anomaly_model(&*self.replica, instance, metric_id, model)
    }

    fn forget_states(&self, names: &[String]) -> Result<(), StoreError> {
        if names.is_empty() {
            return Ok(());
        }
        self.write(Entry::Forget {
            names: names.to_vec(),
        })
        .map(drop)
    }

    fn scan_history(
        &self,
        name: &str,
        below: Option<u64>,
        max_rows: usize,
        visit: &mut dyn FnMut(u64, &[u8]) -> std::ops::ControlFlow<()>,
    ) -> Result<Option<u64>, StoreError> {
        AlarmStore::scan_history(&*self.replica, name, below, max_rows, visit)
    }

    fn prune_history(
        &self,
        from: Option<&str>,
        bounds: &PruneBounds,
    ) -> Result<PrunePass, StoreError> {
        self.write(Entry::Prune {
            from: from.map(str::to_owned),
            older_than: bounds.older_than.as_millis(),
            max_items_per_alarm: bounds.max_items_per_alarm,
            max_deletes: bounds.max_deletes,
            max_alarms: bounds.max_alarms,
        })
        .map(|applied| match applied {
            Applied::Pruned(pass) => pass,
            _ => PrunePass::default(),
        })
    }
}

impl GroupStore for Replicated {
    fn load_group_states(
        &self,
    ) -> Result<Vec<(String, GroupState)>, thermostat_scaler_runtime::StoreError> {
        GroupStore::load_group_states(&*self.replica)
    }

    fn commit_groups(
        &self,
        writes: &[GroupWrite<'_>],
    ) -> Result<(), thermostat_scaler_runtime::StoreError> {
        // The scaling step writes every group after every tick; only what changed goes to
        // the journal (which every node replays at start).
        let stored: HashMap<String, GroupState> = GroupStore::load_group_states(&*self.replica)?
            .into_iter()
            .collect();
        let changed: Vec<&GroupWrite<'_>> = writes
            .iter()
            .filter(|w| !w.activities.is_empty() || stored.get(w.group) != Some(w.state))
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        // Each activity records the leader lease it was decided under (its fencing token).
        let revision = self.cluster.leader_revision();
        self.write(Entry::Groups {
            writes: changed
                .into_iter()
                .map(|w| {
                    let activities = w
                        .activities
                        .iter()
                        .map(|a| ScalingActivity {
                            leader_lease_revision: revision,
                            ..a.clone()
                        })
                        .collect();
                    (w.group.to_owned(), w.state.clone(), activities)
                })
                .collect(),
        })
        .map(drop)
        .map_err(|e| thermostat_scaler_runtime::StoreError::new(e.to_string()))
    }

    fn group_activities(
        &self,
        group: &str,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>, thermostat_scaler_runtime::StoreError> {
        GroupStore::group_activities(&*self.replica, group, limit)
    }
}

impl SharedOutbox for Replicated {
    fn insert(
        &self,
        batch: Vec<Notification>,
        now: Timestamp,
    ) -> thermostat_notify::Result<Vec<OutboxRecord>> {
        match self.write(Entry::OutboxInsert {
            batch,
            now: now.as_millis(),
        }) {
            Ok(Applied::Inserted(records)) => Ok(records),
            Ok(_) => Ok(Vec::new()),
            Err(e) => Err(thermostat_notify::Error::Outbox(e.to_string())),
        }
    }

    fn record_attempt(
        &self,
        id: u64,
        attempt: Attempt,
        next: Next,
    ) -> thermostat_notify::Result<OutboxRecord> {
        match self.write(Entry::OutboxAttempt { id, attempt, next }) {
            Ok(Applied::Attempted(record)) => Ok(*record),
            Ok(_) => Err(thermostat_notify::Error::Outbox(format!(
                "notification {id} is not in the outbox"
            ))),
            Err(e) => Err(thermostat_notify::Error::Outbox(e.to_string())),
        }
    }
}

impl crate::app::cloudwatch_alarms::Detectors for Replicated {
    fn anomaly_detectors(&self) -> Result<Vec<StoredDetector>, String> {
        self.replica.anomaly_detectors().map_err(|e| e.to_string())
    }

    fn put_anomaly_detector(&self, detector: &StoredDetector) -> Result<(), String> {
        self.write(Entry::Detector {
            key: detector.key(),
            detector: Some(Box::new(detector.clone())),
        })
        .map(drop)
        .map_err(|e| e.to_string())
    }

    fn delete_anomaly_detector(&self, key: &str) -> Result<bool, String> {
        let there = self
            .replica
            .anomaly_detectors()
            .map_err(|e| e.to_string())?
            .iter()
            .any(|d| d.key() == key);
        if there {
            self.write(Entry::Detector {
                key: key.to_owned(),
                detector: None,
            })
            .map_err(|e| e.to_string())?;
        }
        Ok(there)
    }
}

/// The runtimes that adopt the other nodes' writes (known once they are started).
#[derive(Debug, Default)]
pub struct Adopters {
    alarms: OnceLock<Arc<AlarmRuntime>>,
    scaling: OnceLock<Arc<ScalingRuntime>>,
    dispatcher: OnceLock<Arc<thermostat_notify::Dispatcher>>,
}

impl Adopters {
    /// Connects the runtimes and the notification dispatcher.
    pub fn set(
        &self,
        alarms: Arc<AlarmRuntime>,
        scaling: Arc<ScalingRuntime>,
        dispatcher: Arc<thermostat_notify::Dispatcher>,
    ) {
        let _ = self.alarms.set(alarms);
        let _ = self.scaling.set(scaling);
        let _ = self.dispatcher.set(dispatcher);
    }

    /// Has the scaling runtime adopt the replica's group states (the alarm runtime adopts
    /// through its gate, or [`Adopters::adopt_all`]).
    fn adopt_scaling(&self) {
        if let Some(s) = self.scaling.get()
            && let Err(e) = s.adopt_stored()
        {
            tracing::error!(error = %e, "Could not adopt the cluster's group states.");
        }
    }

    /// Runs scaling actions another node handed over (this node leads).
    fn scale(&self, due: &[ActionDue], now: Timestamp) {
        if let (Some(alarms), Some(scaling)) = (self.alarms.get(), self.scaling.get()) {
            scaling.scale(&alarms.alarms(), due, now);
        }
    }

    fn adopt_all(&self) {
        if let Some(d) = self.dispatcher.get() {
            d.resync();
        }
        if let Some(a) = self.alarms.get()
            && let Err(e) = a.adopt_stored()
        {
            tracing::error!(error = %e, "Could not adopt the cluster's alarm states.");
        }
        self.adopt_scaling();
    }
}

/// Applies the other nodes' writes as they come, until `stop`, and has the runtimes adopt
/// them (a node that does not lead shows the cluster's alarm states and groups).
pub async fn follow(
    state: Arc<Replicated>,
    adopters: Arc<Adopters>,
    snapshot_every: Duration,
    stop: CancellationToken,
) {
    let mut last_snapshot = tokio::time::Instant::now();
    let mut every = tokio::time::interval(FOLLOW_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        if !state.cluster.connected() {
            continue;
        }
        let (following, adopters) = (Arc::clone(&state), Arc::clone(&adopters));
        let done = tokio::task::spawn_blocking(move || {
            let state = following;
            if let Err(e) = state.catch_up() {
                tracing::warn!(error = %e, "Could not read the cluster's state journal.");
            }
            if state.take_unadopted() {
                adopters.adopt_all();
            }
            for (due, now) in state.claim_scaling_requests() {
                adopters.scale(&due, now);
            }
        })
        .await;
        // The leader snapshots the state now and then, so that the journal can be trimmed.
        if state.cluster.leads() && last_snapshot.elapsed() >= snapshot_every {
            last_snapshot = tokio::time::Instant::now();
            let writer = Arc::clone(&state);
            match tokio::task::spawn_blocking(move || writer.write_snapshot()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "Could not write the cluster's state snapshot; the journal keeps everything until the next one.");
                }
                Err(_) => tracing::error!("Writing the cluster's state snapshot panicked."),
            }
        }
        if done.is_err() {
            tracing::error!("Following the cluster's state journal panicked.");
        }
    }
}

/// Every node evaluates the metric alarms of the partitions it owns; the leader also the
/// composites, the metric-math alarms and the alarms that scale ([`thermostat_alarms::Scope`]),
/// each with the cluster's configuration and only once it has applied the journal.
#[derive(Debug)]
pub struct ClusterGate {
    state: Arc<Replicated>,
    adopters: Arc<Adopters>,
    /// Whether this node evaluated the previous tick (one that resumes adopts first).
    evaluating: AtomicBool,
}

impl ClusterGate {
    /// The gate over `state`'s cluster.
    pub fn new(state: Arc<Replicated>, adopters: Arc<Adopters>) -> Self {
        ClusterGate {
            state,
            adopters,
            evaluating: AtomicBool::new(false),
        }
    }

    /// Whether this node leads now: scaling runs only there.
    pub fn leads(&self) -> bool {
        self.state.cluster.leads()
    }
}

impl EvaluationGate for ClusterGate {
    fn check(&self, _: Timestamp) -> Gate {
        let cluster = &self.state.cluster;
        let pause = |reason: &str| {
            self.evaluating.store(false, Ordering::Release);
            Gate::Pause(reason.to_owned())
        };
        if !cluster.connected() {
            return pause("NATS is unreachable");
        }
        if !cluster.status().config_matches {
            return pause("this node's configuration differs from the cluster's");
        }
        if let Err(e) = self.state.catch_up() {
            tracing::warn!(error = %e, "Could not read the cluster's state journal before a tick.");
            return pause("the cluster's state journal cannot be read");
        }
        let was_evaluating = self.evaluating.swap(true, Ordering::AcqRel);
        if self.state.take_unadopted() || !was_evaluating {
            self.adopters.adopt_scaling();
            Gate::AdoptThenEvaluate
        } else {
            Gate::Evaluate
        }
    }

    fn owns(&self, key: &SeriesKey) -> bool {
        let cluster = &self.state.cluster;
        let partition = stable_hash(key) % u64::from(cluster.partitions().max(1));
        u32::try_from(partition).is_ok_and(|p| cluster.owns(p))
    }

    fn leads(&self) -> bool {
        ClusterGate::leads(self)
    }
}
