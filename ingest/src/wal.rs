//! The ingest write-ahead log: an acknowledged push is on disk before its answer is sent.
//!
//! # Format
//! `wal/<first sequence number, 20 digits>.wal` segments. Each starts with `MAGIC` and a
//! little-endian `u32` format version, then records:
//! `[u32 payload length][u32 crc32 of the rest][u64 sequence number][i64 receipt time ms][payload]`.
//! Sequence numbers increase by one from record to record across segments. In formats 2 and 3
//! (3 is what this build writes) the payload is the request's observations, resolved and
//! compact, and in format 3 also the OTLP stream updates the request made ([`crate::record`]);
//! in format 1 (still read) it was the protobuf encoding of the `PutMetricDataRequest` as
//! received. Recovery applies each record's stream updates to the streams of the snapshot
//! (those newer than it), which rebuilds the OTLP cumulative state (`streams.rs`).
//!
//! # Writing
//! One writer thread owns the open segment. Handlers validate a request, encode its record
//! payload and queue it ([`Wal::submit`]); a full queue is answered `RESOURCE_EXHAUSTED`, never
//! dropped. The writer takes everything queued, writes it, syncs once for the whole group
//! (`--fsync batch`, the default), once per request (`always`) or never (`never`, unsafe, for
//! benchmarks), and hands the group to the applier thread, which applies the records to the
//! store *in sequence order* and acknowledges them while the writer goes on with the next
//! group. A failed write is cut off the file again and answered with an error; nothing of it
//! is applied.
//!
//! # Recovery
//! [`recover`] replays every record newer than the snapshot's per-shard watermarks. A torn or
//! corrupt last record (a crash mid-write, a full disk) was never acknowledged: it is cut off
//! and reported. A corrupt record followed by more data is refused with its offset unless
//! `truncate_corrupt` is set (`--recover-truncate`), so that nothing is lost silently.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use thermostat_metrics::cumulative::CumulativePoint;
use thermostat_metrics::{ObservationBatch, Store, Timestamp};
use tokio::sync::oneshot;

use crate::convert::trusted_request;
pub(crate) use crate::error::{AppendError, WalError};
use crate::intern::Interner;
use crate::record;
use crate::remote::{self, RemoteLog};
use crate::reservation::Reservation;
use crate::streams::{Applied, Undo};
use thermostat_otlp::StreamUpdate;

const MAGIC: &[u8; 8] = b"THRMWAL\0";
/// The log format this build writes: 3 adds distributions (run kind 4) and OTLP stream
/// updates (item `0x03`) to format 2's payloads, so that a build that knows only format 2
/// refuses such a log with a version error instead of cutting it off as torn.
pub(crate) const FORMAT_VERSION: u32 = 3;
/// The oldest log format this build reads (its payloads are requests as received).
pub(crate) const OLDEST_FORMAT_VERSION: u32 = 1;
const HEADER: usize = 12;
const RECORD_HEADER: usize = 4 + 4 + 8 + 8;
/// Largest payload accepted when reading (a larger length field means corruption).
const MAX_PAYLOAD: usize = 256 << 20;
/// Requests taken into one group commit at most.
const MAX_GROUP: usize = 1024;

/// When the log is synced to disk (`--fsync`, `fsync:` in a settings file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    /// Before every acknowledgement, one sync per request.
    Always,
    /// Group commit: every request queued while the previous sync ran shares one sync; each is
    /// acknowledged after it.
    #[default]
    Batch,
    /// Never (the OS writes back when it likes): acknowledged data can be lost on a crash.
    Never,
}

impl FsyncMode {
    /// Every mode, in the order a command line lists them.
    pub const ALL: [FsyncMode; 3] = [FsyncMode::Always, FsyncMode::Batch, FsyncMode::Never];

    /// The mode's name on the command line and in a settings file.
    pub fn name(self) -> &'static str {
        match self {
            FsyncMode::Always => "always",
            FsyncMode::Batch => "batch",
            FsyncMode::Never => "never",
        }
    }

    /// One line on what the mode does, for `--help`.
    pub fn description(self) -> &'static str {
        match self {
            FsyncMode::Always => "One sync per push, before its acknowledgement",
            FsyncMode::Batch => {
                "Group commit: pushes that arrive together share one sync, each acknowledged after it"
            }
            FsyncMode::Never => {
                "Never sync (unsafe: acknowledged data can be lost on a crash; for benchmarks)"
            }
        }
    }

    /// The mode named `name` ([`FsyncMode::name`]), if any.
    pub fn from_name(name: &str) -> Option<FsyncMode> {
        FsyncMode::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// Log settings.
#[derive(Clone, Debug)]
pub(crate) struct WalOptions {
    /// The data directory (the log lives in `wal/` below it).
    pub(crate) data_dir: PathBuf,
    /// Sync policy.
    pub(crate) fsync: FsyncMode,
    /// In `Batch` mode, how long the writer waits for more requests before a group commit
    /// (0 = commit whatever is queued at once).
    pub(crate) batch_interval: Duration,
    /// Size after which a new segment starts.
    pub(crate) segment_bytes: u64,
    /// Requests waiting for the writer at most; more are refused.
    pub(crate) queue_capacity: usize,
    /// Where the queue, sync and apply times go.
    pub(crate) telemetry: LogTelemetry,
}

impl WalOptions {
    /// Defaults: group commit, 64 MiB segments, 1024 queued requests.
    pub(crate) fn new(data_dir: impl Into<PathBuf>) -> Self {
        WalOptions {
            data_dir: data_dir.into(),
            fsync: FsyncMode::Batch,
            batch_interval: Duration::ZERO,
            segment_bytes: 64 << 20,
            queue_capacity: 1024,
            telemetry: LogTelemetry::default(),
        }
    }
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The answer to a job: the record's sequence number once it is durable and applied, or why
/// it is not ([`AppendError::Write`], [`AppendError::NotApplied`]).
pub(crate) type Acknowledgement = Result<u64, AppendError>;

/// One request on its way to disk.
#[derive(Debug)]
pub(crate) struct Job {
    /// The record payload: `batch` encoded by [`record::encode`].
    payload: Vec<u8>,
    /// When it was received.
    received: Timestamp,
    /// Where its datums go.
    batch: ObservationBatch,
    /// The request's new series, reserved against the series limits until it is applied
    /// (released right after the batch is recorded, or with the job when it is not).
    reservations: Vec<Reservation>,
    /// The OTLP stream updates the request made (also in `payload`), applied with it.
    stream_updates: Vec<StreamUpdate>,
    /// Where they go when applied, and how to undo them in the live state if the write fails.
    streams: Option<Undo>,
    /// Cluster mode: the request's cumulative points, for their partitions' owners to turn
    /// into increases (its batch leaves those out).
    cumulative: Vec<CumulativePoint>,
    /// Answered once it is durable and applied.
    ack: Ack,
    /// When it was queued for the writer.
    queued: Instant,
}

/// Where a job's answer goes: to a task awaiting it, or to a thread blocked on it.
#[derive(Debug)]
enum Ack {
    Task(oneshot::Sender<Acknowledgement>),
    Thread(mpsc::SyncSender<Acknowledgement>),
}

impl Ack {
    fn send(self, answer: Acknowledgement) {
        // The asker may have gone away (a cancelled request); the record stands regardless.
        let _ = match self {
            Ack::Task(tx) => tx.send(answer).ok(),
            Ack::Thread(tx) => tx.send(answer).ok(),
        };
    }
}

impl Job {
    /// A request received at `received` for the log; `ack` is answered once it is durable and
    /// applied. Its record payload is encoded when it is queued ([`Wal::try_submit`], on the
    /// caller's thread, not the writer's), and only for the local log: in cluster mode the
    /// writer encodes one record per partition instead.
    pub(crate) fn new(
        batch: ObservationBatch,
        received: Timestamp,
        ack: oneshot::Sender<Acknowledgement>,
    ) -> Self {
        Self::with_ack(batch, received, Ack::Task(ack))
    }

    fn with_ack(batch: ObservationBatch, received: Timestamp, ack: Ack) -> Self {
        Job {
            payload: Vec::new(),
            received,
            batch,
            reservations: Vec::new(),
            stream_updates: Vec::new(),
            streams: None,
            cumulative: Vec::new(),
            ack,
            queued: Instant::now(),
        }
    }

    /// An OTLP request for the log: its observations and the stream updates its mapping made
    /// (`undo` says how to take them back from the live state, should the write fail); in
    /// cluster mode, its `cumulative` points, for their partitions' owners.
    pub(crate) fn with_streams(
        batch: ObservationBatch,
        received: Timestamp,
        ack: oneshot::Sender<Acknowledgement>,
        undo: Undo,
        cumulative: Vec<CumulativePoint>,
    ) -> Self {
        let mut job = Self::new(batch, received, ack);
        job.stream_updates.clone_from(&undo.made);
        job.streams = Some(undo);
        job.cumulative = cumulative;
        job
    }

    /// Encodes the record payload of the local log: the observations, then the stream
    /// updates.
    fn encode(&mut self) {
        self.payload.clear();
        record::encode(&self.batch, &mut self.payload);
        if !self.stream_updates.is_empty() {
            record::encode_stream_updates(&self.stream_updates, &mut self.payload);
        }
    }

    /// Holds `reservation` until the job is applied or dropped.
    pub(crate) fn holding(mut self, reservation: Option<Reservation>) -> Self {
        self.reservations.extend(reservation);
        self
    }

    /// Holds every one of `reservations` until the job is applied or dropped.
    pub(crate) fn holding_all(mut self, reservations: Vec<Reservation>) -> Self {
        self.reservations.extend(reservations);
        self
    }

    /// Gives back the undo of a job that was not queued (the caller still holds the live
    /// state's lock and undoes it there).
    pub(crate) fn into_undo(self) -> Option<Undo> {
        self.streams
    }

    /// Answers a job whose write failed, first undoing its stream updates in the live state.
    fn refuse(self, error: AppendError) {
        if let Some(undo) = self.streams {
            undo.revert();
        }
        self.ack.send(Err(error));
    }

    /// Acknowledges a job whose records the cluster's ingest stream stored (the newest as
    /// `seq`): the partitions' owners apply them, not this node's log (and their cumulative
    /// points to the streams this node's checkpoints hold).
    fn stored_remotely(self, seq: u64) {
        drop(self.reservations);
        self.ack.send(Ok(seq));
    }

    /// Records the job into `store` as record `seq`, releases its reservation of new series
    /// (the store counts them now) and acknowledges it.
    fn apply(self, store: &Store, seq: u64) {
        let Job {
            batch,
            reservations,
            stream_updates,
            streams,
            ack,
            ..
        } = self;
        if let Some(undo) = &streams {
            undo.state.applied().apply_record(seq, &stream_updates);
        }
        batch.record_into(store, seq);
        drop(reservations);
        // Answered before the batch is freed (a thousand keys' reference counts and the
        // request's buffers): the asker need not wait for that.
        ack.send(Ok(seq));
        drop(batch);
    }
}

/// What recovery found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RecoveryReport {
    /// Records replayed into the store.
    pub(crate) replayed: u64,
    /// Records already in the snapshot.
    pub(crate) skipped: u64,
    /// Bytes cut off a torn or (with `truncate_corrupt`) corrupt tail.
    pub(crate) truncated_bytes: u64,
    /// The sequence number the next record gets.
    pub(crate) next_seq: u64,
}

fn wal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("wal")
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.wal"))
}

/// Segments in `dir`, oldest first, with their first sequence numbers.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for e in entries {
        let path = e.map_err(io_err(dir))?.path();
        let first = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(first) = first {
            out.push((first, path));
        }
    }
    out.sort();
    Ok(out)
}

fn crc_of(seq: u64, received: i64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(&received.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// What reading the next record of a segment found.
enum RecordRead {
    Record {
        seq: u64,
        received: i64,
        payload: Vec<u8>,
        end: u64,
    },
    End,
    Bad(String),
}

fn read_record(r: &mut impl Read, offset: u64) -> io::Result<RecordRead> {
    let mut head = [0u8; RECORD_HEADER];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..])? {
            0 if got == 0 => return Ok(RecordRead::End),
            0 => return Ok(RecordRead::Bad("truncated record header".into())),
            n => got += n,
        }
    }
    let word = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let len = word(0) as usize;
    let crc = word(4);
    let seq = u64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
    let received = i64::from_le_bytes(head[16..24].try_into().unwrap_or_default());
    if len > MAX_PAYLOAD {
        return Ok(RecordRead::Bad(format!("length {len} is not plausible")));
    }
    let mut payload = vec![0u8; len];
    if let Err(e) = r.read_exact(&mut payload) {
        return match e.kind() {
            io::ErrorKind::UnexpectedEof => Ok(RecordRead::Bad("truncated payload".into())),
            _ => Err(e),
        };
    }
    if crc_of(seq, received, &payload) != crc {
        return Ok(RecordRead::Bad("checksum mismatch".into()));
    }
    Ok(RecordRead::Record {
        seq,
        received,
        payload,
        end: offset + (RECORD_HEADER + len) as u64,
    })
}

/// Replays the log in `data_dir` into `store` (which holds the snapshot, with its watermarks).
///
/// # Errors
/// Unreadable segments, an unknown format, or a corrupt record in the middle of the log
/// (unless `truncate_corrupt`).
pub(crate) fn recover(
    data_dir: &Path,
    store: &Store,
    streams: &mut Applied,
    truncate_corrupt: bool,
) -> Result<RecoveryReport, WalError> {
    let mut updates = Vec::new();
    let dir = wal_dir(data_dir);
    let segs = segments(&dir)?;
    let marks = store.watermarks();
    let floor = marks.iter().copied().min().unwrap_or(0);
    let mut report = RecoveryReport::default();
    let mut last_seq: Option<u64> = None;
    let interner = Interner::new(1 << 16);
    let mut decoder = record::Decoder::new();
    for (idx, (_, path)) in segs.iter().enumerate() {
        let is_last = idx + 1 == segs.len();
        let file = File::open(path).map_err(io_err(path))?;
        let size = file.metadata().map_err(io_err(path))?.len();
        let mut r = BufReader::new(file);
        let mut header = [0u8; HEADER];
        if size < HEADER as u64 || r.read_exact(&mut header).is_err() || &header[..8] != MAGIC {
            if is_last {
                // A segment whose header never made it to disk holds nothing acknowledged.
                tracing::warn!(path = %path.display(), "Removed an empty write-ahead log segment with an incomplete header.");
                report.truncated_bytes += size;
                fs::remove_file(path).map_err(io_err(path))?;
                continue;
            }
            return Err(WalError::Corrupt {
                path: path.clone(),
                offset: 0,
                why: "bad segment header".into(),
            });
        }
        let found = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&found) {
            return Err(WalError::UnknownVersion {
                path: path.clone(),
                found,
                oldest: OLDEST_FORMAT_VERSION,
                newest: FORMAT_VERSION,
            });
        }
        let mut offset = HEADER as u64;
        loop {
            let rec = read_record(&mut r, offset).map_err(io_err(path))?;
            let bad = match rec {
                RecordRead::End => break,
                RecordRead::Record {
                    seq,
                    received,
                    payload,
                    end,
                } => {
                    if last_seq.is_some_and(|l| seq != l + 1) {
                        Some(format!(
                            "sequence number {seq} does not follow {}",
                            last_seq.unwrap_or(0)
                        ))
                    } else {
                        let decoded = if found == OLDEST_FORMAT_VERSION {
                            trusted_request(&payload, Timestamp::from_millis(received), &interner)
                                .map_err(|e| e.to_string())
                        } else {
                            updates.clear();
                            // The local log holds no cumulative points (cluster mode's records
                            // only); any found are not applied.
                            let mut cumulative = Vec::new();
                            decoder
                                .decode_with_updates(&payload, &mut updates, &mut cumulative)
                                .map_err(|e| e.to_string())
                        };
                        match decoded {
                            Ok(batch) => {
                                streams.apply_record(seq, &updates);
                                if seq > floor {
                                    batch.record_into(store, seq);
                                    report.replayed += 1;
                                } else {
                                    report.skipped += 1;
                                }
                                last_seq = Some(seq);
                                offset = end;
                                None
                            }
                            Err(e) => Some(format!("undecodable payload: {e}")),
                        }
                    }
                }
                RecordRead::Bad(why) => Some(why),
            };
            let Some(why) = bad else { continue };
            let torn_tail = is_last && !has_valid_record_after(path, offset)?;
            if !torn_tail && !truncate_corrupt {
                return Err(WalError::Corrupt {
                    path: path.clone(),
                    offset,
                    why,
                });
            }
            let cut = size - offset;
            tracing::warn!(
                path = %path.display(), offset, bytes = cut, why = %why,
                "Cut a {} record off the write-ahead log; it was never acknowledged.",
                if torn_tail { "torn" } else { "corrupt" }
            );
            report.truncated_bytes += cut;
            OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(offset).and_then(|_| f.sync_all()))
                .map_err(io_err(path))?;
            if !torn_tail {
                for (_, later) in &segs[idx + 1..] {
                    let bytes = fs::metadata(later).map(|m| m.len()).unwrap_or(0);
                    tracing::warn!(path = %later.display(), bytes, "Removed a write-ahead log segment after a corrupt record (--recover-truncate).");
                    report.truncated_bytes += bytes;
                    fs::remove_file(later).map_err(io_err(later))?;
                }
                report.next_seq = last_seq
                    .unwrap_or(0)
                    .max(marks.iter().copied().max().unwrap_or(0))
                    + 1;
                return Ok(report);
            }
            break;
        }
    }
    report.next_seq = last_seq
        .unwrap_or(0)
        .max(marks.iter().copied().max().unwrap_or(0))
        + 1;
    Ok(report)
}

/// Whether a valid record starts anywhere after `offset` (so a bad record there is in the
/// middle of the log, not a torn tail).
fn has_valid_record_after(path: &Path, offset: u64) -> Result<bool, WalError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    for at in start..bytes.len().saturating_sub(RECORD_HEADER) {
        let len = word(at) as usize;
        let end = at + RECORD_HEADER + len;
        if end > bytes.len() {
            continue;
        }
        let seq = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap_or_default());
        let received = i64::from_le_bytes(bytes[at + 16..at + 24].try_into().unwrap_or_default());
        if crc_of(seq, received, &bytes[at + RECORD_HEADER..end]) == word(at + 4) {
            return Ok(true);
        }
    }
    Ok(false)
}

#[derive(Debug)]
struct Shared {
    /// Segments written by this process or found at start, oldest first.
    segments: Mutex<Vec<(u64, PathBuf)>>,
}

/// Why [`Wal::submit`] refused a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue is full: the writer cannot keep up.
    Full,
    /// The log is closed (shutting down).
    Closed,
}

/// The running log.
#[derive(Debug)]
pub(crate) struct Wal {
    /// Cluster mode ([`Wal::open_remote`]): jobs carry no local record payload.
    remote: bool,
    tx: Mutex<Option<SyncSender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    applier: Mutex<Option<JoinHandle<()>>>,
    shared: Arc<Shared>,
}

/// Groups written and synced, waiting to be applied.
const APPLY_QUEUE: usize = 16;

/// A group commit on its way from the writer to the applier.
struct Durable {
    first_seq: u64,
    jobs: Vec<Job>,
    /// When it was synced.
    durable: Instant,
}

/// Applies durable groups to the store in sequence order and acknowledges them. It runs on
/// its own thread so that the writer's next write and sync overlap with this group's apply.
fn apply_loop(store: &Store, rx: &Receiver<Durable>, telemetry: &LogTelemetry) {
    while let Ok(group) = rx.recv() {
        for (i, job) in group.jobs.into_iter().enumerate() {
            job.apply(store, group.first_seq + i as u64);
        }
        telemetry.applied(group.durable.elapsed());
    }
}

impl Wal {
    /// Opens the log for writing from `next_seq` (from [`recover`]) and starts the writer.
    ///
    /// # Errors
    /// The first segment cannot be created.
    pub(crate) fn open(
        options: WalOptions,
        store: Arc<Store>,
        next_seq: u64,
    ) -> Result<Wal, WalError> {
        let dir = wal_dir(&options.data_dir);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut known = segments(&dir)?;
        let writer = SegmentWriter::create(&dir, next_seq, options.fsync)?;
        known.push((next_seq, writer.path.clone()));
        known.dedup_by(|a, b| a.0 == b.0);
        let shared = Arc::new(Shared {
            segments: Mutex::new(known),
        });
        let (tx, rx) = mpsc::sync_channel(options.queue_capacity.max(1));
        let (apply_tx, apply_rx) = mpsc::sync_channel(APPLY_QUEUE);
        let telemetry = options.telemetry.clone();
        let applier = std::thread::Builder::new()
            .name("thermostat-apply".into())
            .spawn(move || apply_loop(&store, &apply_rx, &telemetry))
            .map_err(WalError::Closed)?;
        let state = WriterState {
            options,
            dir,
            writer,
            next_seq,
            shared: Arc::clone(&shared),
            apply: apply_tx,
        };
        let handle = std::thread::Builder::new()
            .name("thermostat-wal".into())
            .spawn(move || state.run(rx))
            .map_err(WalError::Closed)?;
        Ok(Wal {
            remote: false,
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
            applier: Mutex::new(Some(applier)),
            shared,
        })
    }

    /// Opens cluster mode's log: the writer hands each group of requests to `remote` (the
    /// cluster's ingest stream, [`crate::remote`]) instead of writing segments, and answers
    /// each request once all of its records are stored there. Nothing is applied here: the
    /// partitions' owners apply what they read from the stream.
    ///
    /// # Errors
    /// The writer thread cannot be started.
    pub(crate) fn open_remote(
        options: WalOptions,
        remote: Arc<dyn RemoteLog>,
    ) -> Result<Wal, WalError> {
        let (tx, rx) = mpsc::sync_channel(options.queue_capacity.max(1));
        let handle = std::thread::Builder::new()
            .name("thermostat-wal".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let group = take_group(&rx, first, &options);
                    let start = group_started(&options.telemetry, &group);
                    commit_remote(&*remote, group);
                    options.telemetry.synced(start.elapsed());
                }
            })
            .map_err(WalError::Closed)?;
        Ok(Wal {
            remote: true,
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
            applier: Mutex::new(None),
            shared: Arc::new(Shared {
                segments: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Queues a request for the writer. A refused job is dropped: nothing of it is stored.
    ///
    /// # Errors
    /// [`Refused::Full`] when the queue is full (answer RESOURCE_EXHAUSTED), [`Refused::Closed`]
    /// when the log is closed (answer UNAVAILABLE).
    pub(crate) fn submit(&self, job: Job) -> Result<(), Refused> {
        self.try_submit(job).map_err(|(why, _)| why)
    }

    /// Whether this is cluster mode's log (the cluster's ingest stream).
    pub(crate) fn is_remote(&self) -> bool {
        self.remote
    }

    /// Queues a request for the writer, giving a refused job back.
    ///
    /// # Errors
    /// As [`Wal::submit`], with the job.
    pub(crate) fn try_submit(&self, mut job: Job) -> Result<(), (Refused, Box<Job>)> {
        if !self.remote {
            job.encode();
        }
        job.queued = Instant::now();
        let guard = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = guard.as_ref() else {
            return Err((Refused::Closed, Box::new(job)));
        };
        match tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job)) => Err((Refused::Full, Box::new(job))),
            Err(TrySendError::Disconnected(job)) => Err((Refused::Closed, Box::new(job))),
        }
    }

    /// Logs `batch` (received at `received`) and waits until it is durable and applied,
    /// blocking the calling thread: for samples Thermostat makes itself (the groups' capacity
    /// metrics), from a blocking context, never from an async task.
    ///
    /// # Errors
    /// The queue is full or the log is closed (nothing of it is stored), the write failed, or
    /// no answer came within `timeout` (the record may still be applied later).
    pub(crate) fn append_blocking(
        &self,
        batch: ObservationBatch,
        received: Timestamp,
        timeout: Duration,
    ) -> Result<u64, AppendError> {
        let (tx, rx) = mpsc::sync_channel(1);
        match self.submit(Job::with_ack(batch, received, Ack::Thread(tx))) {
            Ok(()) => {}
            Err(Refused::Full) => return Err(AppendError::Full),
            Err(Refused::Closed) => return Err(AppendError::Closed),
        }
        match rx.recv_timeout(timeout) {
            Ok(answer) => answer,
            Err(RecvTimeoutError::Timeout) => Err(AppendError::TimedOut(timeout)),
            Err(RecvTimeoutError::Disconnected) => Err(AppendError::Closed),
        }
    }

    /// Stops taking requests, lets the writer and the applier finish what is queued, and
    /// waits for them: afterwards everything acknowledged is in the store.
    pub(crate) fn close(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = h.join();
        }
        if let Some(h) = self
            .applier
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = h.join();
        }
    }

    /// Deletes segments whose records are all at or below `watermark` (every shard's
    /// watermark in a snapshot just written). The segment being written is never deleted.
    /// Returns the bytes freed.
    ///
    /// # Errors
    /// A segment could not be deleted.
    pub(crate) fn remove_segments_up_to(&self, watermark: u64) -> Result<u64, WalError> {
        let mut segs = self
            .shared
            .segments
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut freed = 0;
        while segs.len() >= 2 && segs[1].0.saturating_sub(1) <= watermark {
            let (_, path) = segs.remove(0);
            freed += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
        Ok(freed)
    }

    /// Bytes in the log's segments.
    pub(crate) fn disk_bytes(&self) -> u64 {
        let segs = self
            .shared
            .segments
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        segs.iter()
            .map(|(_, p)| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum()
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.close();
    }
}

#[derive(Debug)]
struct SegmentWriter {
    file: File,
    path: PathBuf,
    len: u64,
}

impl SegmentWriter {
    fn create(dir: &Path, first_seq: u64, fsync: FsyncMode) -> Result<Self, WalError> {
        let path = segment_path(dir, first_seq);
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(io_err(&path))?;
        file.write_all(MAGIC).map_err(io_err(&path))?;
        file.write_all(&FORMAT_VERSION.to_le_bytes())
            .map_err(io_err(&path))?;
        if fsync != FsyncMode::Never {
            file.sync_all().map_err(io_err(&path))?;
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(SegmentWriter {
            file,
            path,
            len: HEADER as u64,
        })
    }
}

struct WriterState {
    options: WalOptions,
    dir: PathBuf,
    writer: SegmentWriter,
    next_seq: u64,
    shared: Arc<Shared>,
    apply: SyncSender<Durable>,
}

impl WriterState {
    fn run(mut self, rx: Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let group = take_group(&rx, first, &self.options);
            if self.options.fsync == FsyncMode::Always {
                for job in group {
                    self.commit(vec![job]);
                }
            } else {
                self.commit(group);
            }
        }
        // All senders are gone: the queue is drained.
        if self.options.fsync != FsyncMode::Never {
            let _ = self.writer.file.sync_all();
        }
    }

    /// Writes and syncs a group and hands it to the applier; on a write error nothing of the
    /// group stays in the file, and each request is answered with the error.
    fn commit(&mut self, group: Vec<Job>) {
        let started = group_started(&self.options.telemetry, &group);
        let start_len = self.writer.len;
        let first_seq = self.next_seq;
        // Headers go into one buffer; the payloads are written from where they are (one
        // vectored write), not copied next to them.
        let mut headers = Vec::with_capacity(group.len() * RECORD_HEADER);
        for (i, job) in group.iter().enumerate() {
            let seq = first_seq + i as u64;
            let received = job.received.as_millis();
            headers.extend_from_slice(
                &u32::try_from(job.payload.len())
                    .unwrap_or(u32::MAX)
                    .to_le_bytes(),
            );
            headers.extend_from_slice(&crc_of(seq, received, &job.payload).to_le_bytes());
            headers.extend_from_slice(&seq.to_le_bytes());
            headers.extend_from_slice(&received.to_le_bytes());
        }
        let mut slices: Vec<io::IoSlice<'_>> = Vec::with_capacity(group.len() * 2);
        for (h, job) in headers.chunks(RECORD_HEADER).zip(&group) {
            slices.push(io::IoSlice::new(h));
            slices.push(io::IoSlice::new(&job.payload));
        }
        let total: u64 = slices.iter().map(|s| s.len() as u64).sum();
        let written = write_all_vectored(&mut self.writer.file, &mut slices).and_then(|()| {
            match self.options.fsync {
                FsyncMode::Never => Ok(()),
                _ => self.writer.file.sync_data(),
            }
        });
        if let Err(e) = written {
            tracing::error!(path = %self.writer.path.display(), error = %e, requests = group.len(), "Could not write to the write-ahead log; the requests are refused.");
            let restored = self.writer.file.set_len(start_len).and_then(|_| {
                self.writer
                    .file
                    .seek(SeekFrom::Start(start_len))
                    .map(|_| ())
            });
            if let Err(e2) = restored {
                tracing::error!(error = %e2, "Could not cut the failed write off the write-ahead log.");
            }
            let error = AppendError::Write(Arc::new(e));
            // Newest first, so that stream updates are undone in the reverse of their order.
            for job in group.into_iter().rev() {
                job.refuse(error.clone());
            }
            return;
        }
        let durable = Instant::now();
        self.options
            .telemetry
            .synced(durable.duration_since(started));
        self.writer.len += total;
        self.next_seq += group.len() as u64;
        // Rotate before the group is acknowledged, so that an acknowledged push always finds
        // the log in the state its write left it.
        if self.writer.len >= self.options.segment_bytes {
            match SegmentWriter::create(&self.dir, self.next_seq, self.options.fsync) {
                Ok(w) => {
                    self.shared
                        .segments
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((self.next_seq, w.path.clone()));
                    self.writer = w;
                }
                Err(e) => {
                    tracing::error!(error = %e, "Could not start a new write-ahead log segment; writing on in the current one.")
                }
            }
        }
        if let Err(mpsc::SendError(lost)) = self.apply.send(Durable {
            first_seq,
            jobs: group,
            durable,
        }) {
            // Only if the applier panicked: the records are durable and replay at the next start.
            for job in lost.jobs {
                job.ack.send(Err(AppendError::NotApplied));
            }
        }
    }
}

/// Now, as the start of `group`'s commit: each of its requests' wait in the queue is counted.
fn group_started(telemetry: &LogTelemetry, group: &[Job]) -> Instant {
    let now = Instant::now();
    for job in group {
        telemetry.queued(now.duration_since(job.queued));
    }
    now
}

/// A group commit: `first` and whatever else is queued (waiting up to the batch interval in
/// [`FsyncMode::Batch`]), at most [`MAX_GROUP`] requests.
fn take_group(rx: &Receiver<Job>, first: Job, options: &WalOptions) -> Vec<Job> {
    let mut group = vec![first];
    if options.fsync == FsyncMode::Batch && !options.batch_interval.is_zero() {
        let deadline = Instant::now() + options.batch_interval;
        while group.len() < MAX_GROUP {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(j) => group.push(j),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
    }
    while group.len() < MAX_GROUP {
        match rx.try_recv() {
            Ok(j) => group.push(j),
            Err(_) => break,
        }
    }
    group
}

/// Stores a group's records in the cluster's ingest stream (one or more per partition for the
/// whole group), all at once, and answers each request: acknowledged when every record
/// holding some of it is stored, refused otherwise.
fn commit_remote(remote: &dyn RemoteLog, group: Vec<Job>) {
    let pushes: Vec<(&ObservationBatch, &[CumulativePoint])> = group
        .iter()
        .map(|job| (&job.batch, job.cumulative.as_slice()))
        .collect();
    let records = remote::group_records(&pushes, remote.partitions(), remote.max_record_bytes());
    let mut owners = Vec::with_capacity(records.len());
    let mut parts = Vec::with_capacity(records.len());
    for r in records {
        owners.push(r.pushes);
        parts.push((r.partition, r.payload));
    }
    let mut answers: Vec<Result<u64, String>> = vec![Ok(0); group.len()];
    for (pushes, stored) in owners.into_iter().zip(remote.store_blocking(parts)) {
        for j in pushes {
            match (&stored, &mut answers[j]) {
                (Ok(seq), Ok(newest)) => *newest = (*newest).max(*seq),
                (Err(e), answer @ Ok(_)) => *answer = Err(e.clone()),
                (_, Err(_)) => {}
            }
        }
    }
    // Newest first, so that refused requests' stream updates are undone in reverse order.
    for (job, answer) in group.into_iter().zip(answers).rev() {
        match answer {
            Ok(seq) => job.stored_remotely(seq),
            Err(e) => {
                tracing::warn!(error = %e, "The cluster's ingest stream did not store a request; it is refused.");
                job.refuse(AppendError::Unstored(e));
            }
        }
    }
}

/// Writes every slice (`Write::write_all_vectored` is not stable yet).
fn write_all_vectored(w: &mut impl Write, mut slices: &mut [io::IoSlice<'_>]) -> io::Result<()> {
    // Skip empty slices so that a zero-length write means "no progress".
    io::IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match w.write_vectored(slices) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "failed to write whole buffer",
                ));
            }
            Ok(n) => io::IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

mod telemetry;
#[cfg(test)]
mod tests;

pub use telemetry::LogTelemetry;
