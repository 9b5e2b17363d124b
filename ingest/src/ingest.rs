//! The ingest façade: one [`open`] of the data directory (snapshot, log recovery, the
//! write-ahead log) returning an [`Ingest`] handle with what the servers and Thermostat's own
//! producers need, and the checkpoint and compaction loops that keep it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use thermostat_metrics::{
    Clock, Observation, ObservationBatch, SeriesKey, Store, Telemetry, Timestamp,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::convert::STORE_SHARDS;
use crate::error::Error;
use crate::otlp::OtlpApi;
use crate::persist::{self, SnapshotInfo};
use crate::remote::RemoteLog;
use crate::service::{Limits, MetricsApi};
use crate::streams::{Applied, StreamsState};
use crate::wal::{self, FsyncMode, LogTelemetry, Wal, WalError, WalOptions};

/// How the data directory is opened and kept.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// The data directory: `series.snapshot` and the write-ahead log's `wal/`.
    pub data_dir: PathBuf,
    /// Shards of the store ([`STORE_SHARDS`] unless a test wants another size).
    pub store_shards: usize,
    /// At start, cut a corrupt log record and everything after it instead of refusing to start
    /// (`--recover-truncate`).
    pub recover_truncate: bool,
    /// When the log is synced (`--fsync`).
    pub fsync: FsyncMode,
    /// In [`FsyncMode::Batch`], how long to gather pushes before one sync (`--fsync-interval-ms`).
    pub fsync_interval: Duration,
    /// Pushes waiting for the log at most; more are refused (`--ingest-queue-capacity`).
    pub queue_capacity: usize,
    /// Size after which the log starts a new segment.
    pub segment_bytes: u64,
    /// Time between checkpoints (`--checkpoint-interval-seconds`).
    pub checkpoint_interval: Duration,
    /// Time between passes that seal, roll up and expire windows.
    pub compaction_interval: Duration,
    /// An OTLP cumulative stream not seen for this long is forgotten (its next point counts
    /// from zero again); the compaction pass forgets them (`--otlp-stream-idle-seconds`).
    pub otlp_stream_idle: Duration,
    /// Cluster mode: the cluster's ingest stream takes the place of the write-ahead log
    /// ([`RemoteLog`]), the store has one shard per partition and its snapshots go in
    /// `cluster/` below the data directory. `None`: single-node mode.
    pub remote: Option<Arc<dyn RemoteLog>>,
    /// Where the log's queue, sync and apply times go (the binary registers it for
    /// `/metrics`).
    pub log_telemetry: LogTelemetry,
}

impl IngestOptions {
    /// The defaults for `data_dir`: [`STORE_SHARDS`] shards, no truncation, group commit
    /// without extra wait, 1024 queued pushes, 64 MiB segments, a checkpoint every 5 minutes
    /// and a compaction pass every 10 seconds; OTLP streams idle for an hour are forgotten.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let log = WalOptions::new(data_dir);
        IngestOptions {
            data_dir: log.data_dir,
            store_shards: STORE_SHARDS,
            recover_truncate: false,
            fsync: log.fsync,
            fsync_interval: log.batch_interval,
            queue_capacity: log.queue_capacity,
            segment_bytes: log.segment_bytes,
            checkpoint_interval: Duration::from_secs(300),
            compaction_interval: Duration::from_secs(10),
            otlp_stream_idle: Duration::from_secs(3600),
            remote: None,
            log_telemetry: log.telemetry,
        }
    }

    fn log(&self) -> WalOptions {
        WalOptions {
            data_dir: self.data_dir.clone(),
            fsync: self.fsync,
            batch_interval: self.fsync_interval,
            segment_bytes: self.segment_bytes,
            queue_capacity: self.queue_capacity,
            telemetry: self.log_telemetry.clone(),
        }
    }
}

/// The opened data directory: the store with everything acknowledged before in it, and the
/// write-ahead log every push (and every sample Thermostat makes itself) goes through.
///
/// Cheap to clone: clones share the store and the log.
#[derive(Clone, Debug)]
pub struct Ingest {
    store: Arc<Store>,
    wal: Arc<Wal>,
    /// The OTLP cumulative streams (live and applied).
    streams: Arc<StreamsState>,
    options: Arc<IngestOptions>,
}

/// Opens the data directory: creates the store, loads the snapshot, replays the write-ahead
/// log newer than it (cutting a corrupt record only with `recover_truncate`), and opens the
/// log for writing. The file work runs on a blocking thread.
///
/// Logs "Loaded the snapshot." and "Recovered the write-ahead log." with what they found.
///
/// # Errors
/// [`Error::LoadSnapshot`] (a snapshot of an unknown format, or corrupt),
/// [`Error::RecoverLog`] (a corrupt record in the middle of the log, an unknown format),
/// [`Error::OpenLog`] (the log cannot be created), or [`Error::Internal`] if the work panicked.
pub async fn open(options: IngestOptions) -> Result<Ingest, Error> {
    tokio::task::spawn_blocking(move || open_blocking(options))
        .await
        .map_err(|source| Error::Internal {
            what: "opening the data directory panicked",
            source,
        })?
}

fn open_blocking(options: IngestOptions) -> Result<Ingest, Error> {
    if let Some(remote) = options.remote.clone() {
        return open_remote(options, remote);
    }
    let store = Arc::new(Store::new(options.store_shards));
    let dir = &options.data_dir;
    let mut streams = Applied::default();
    if let Some(info) = persist::load_snapshot(&store, dir).map_err(Error::LoadSnapshot)? {
        tracing::info!(
            series = info.series,
            otlp_streams = info.otlp_streams(),
            bytes = info.bytes,
            "Loaded the snapshot."
        );
        streams = info.streams;
    }
    let recovery = wal::recover(dir, &store, &mut streams, options.recover_truncate)
        .map_err(Error::RecoverLog)?;
    if recovery.replayed + recovery.truncated_bytes > 0 {
        tracing::info!(
            replayed = recovery.replayed,
            skipped = recovery.skipped,
            truncated_bytes = recovery.truncated_bytes,
            otlp_streams = streams.streams.len(),
            "Recovered the write-ahead log."
        );
    }
    let wal =
        Wal::open(options.log(), Arc::clone(&store), recovery.next_seq).map_err(Error::OpenLog)?;
    Ok(Ingest {
        store,
        wal: Arc::new(wal),
        streams: Arc::new(StreamsState::recovered(streams)),
        options: Arc::new(options),
    })
}

/// Cluster mode: a partitioned store loaded from this node's last snapshot (each partition
/// then resumes from its watermark in the stream), and the log writing to the stream.
fn open_remote(mut options: IngestOptions, remote: Arc<dyn RemoteLog>) -> Result<Ingest, Error> {
    options.data_dir = options.data_dir.join("cluster");
    std::fs::create_dir_all(&options.data_dir).map_err(|e| {
        Error::OpenLog(WalError::Io {
            path: options.data_dir.clone(),
            source: e,
        })
    })?;
    let store = Arc::new(Store::partitioned(remote.partitions() as usize));
    let mut streams = Applied::default();
    if let Some(info) =
        persist::load_snapshot(&store, &options.data_dir).map_err(Error::LoadSnapshot)?
    {
        tracing::info!(
            series = info.series,
            bytes = info.bytes,
            "Loaded this node's snapshot of the cluster's partitions."
        );
        streams = info.streams;
    }
    let wal = Wal::open_remote(options.log(), remote).map_err(Error::OpenLog)?;
    Ok(Ingest {
        store,
        wal: Arc::new(wal),
        streams: Arc::new(StreamsState::recovered(streams)),
        options: Arc::new(options),
    })
}

// === impl Ingest ===

impl Ingest {
    /// The store, for queries and read models.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The gRPC metrics service over this store and log. Once `stopping` is cancelled, new
    /// pushes get UNAVAILABLE and open streams end after the request in hand.
    pub fn metrics_api(
        &self,
        telemetry: Arc<Telemetry>,
        clock: Arc<dyn Clock>,
        limits: Limits,
        stopping: CancellationToken,
    ) -> MetricsApi {
        MetricsApi::new(
            Arc::clone(&self.store),
            Arc::clone(&self.wal),
            telemetry,
            clock,
            limits,
            stopping,
            Arc::clone(&self.streams),
        )
        .with_otlp_stream_idle(self.options.otlp_stream_idle)
    }

    /// The OTLP metrics service of `metrics` (a [`MetricsApi`] of this handle): the same as
    /// [`MetricsApi::otlp_api`]. Its [`OtlpApi::export`] is what the binary's HTTP
    /// `/v1/metrics` calls; [`crate::serve`] serves it on the gRPC port.
    pub fn otlp_api(&self, metrics: &MetricsApi) -> OtlpApi {
        metrics.otlp_api()
    }

    /// Logs observations Thermostat makes itself (e.g. the groups' capacity metrics), received
    /// at `received`, and waits until they are durable and in the store, like a push: they
    /// survive a crash. Returns the record's sequence number.
    ///
    /// Blocks the calling thread: call it from a blocking context, never from an async task.
    ///
    /// # Errors
    /// [`Error::Append`]: the log's queue is full or the log is closed (nothing was stored),
    /// the write failed (nothing was stored), or no answer came within `timeout`
    /// ([`Error::append_timed_out`]: the record may still be applied later).
    pub fn append_observations_blocking(
        &self,
        observations: &[(SeriesKey, Observation<'_>)],
        received: Timestamp,
        timeout: Duration,
    ) -> Result<u64, Error> {
        let batch = ObservationBatch::from_observations(observations);
        Ok(self.wal.append_blocking(batch, received, timeout)?)
    }

    /// Bytes in the write-ahead log's segments.
    pub fn log_bytes(&self) -> u64 {
        self.wal.disk_bytes()
    }

    /// Cluster mode: the applier of the ingest stream's records into this node's store, which
    /// turns their cumulative points into increases against the cumulative streams this
    /// node's checkpoints hold.
    pub fn record_applier(&self) -> crate::RecordApplier {
        crate::RecordApplier::new(Arc::clone(&self.store), Arc::clone(&self.streams))
    }

    /// Spawns the store's maintenance on `tracker`: a compaction pass (seal, roll up, expire)
    /// every `compaction_interval` at `clock`'s time, and a checkpoint every
    /// `checkpoint_interval`. Both stop when `stop` is cancelled.
    pub fn spawn_maintenance(
        &self,
        tracker: &TaskTracker,
        clock: Arc<dyn Clock>,
        stop: CancellationToken,
    ) {
        tracker.spawn(compaction_loop(
            Arc::clone(&self.store),
            Arc::clone(&self.streams),
            clock,
            self.options.compaction_interval,
            self.options.otlp_stream_idle,
            stop.clone(),
        ));
        tracker.spawn(self.clone().checkpoint_loop(stop));
    }

    async fn checkpoint_loop(self, stop: CancellationToken) {
        let every = self.options.checkpoint_interval;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {
                    let ingest = self.clone();
                    match tokio::task::spawn_blocking(move || ingest.checkpoint()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::error!(error = %thermostat_metrics::chain(&e), "A checkpoint failed; the log keeps everything until the next one."),
                        Err(e) => tracing::error!(error = %e, "A checkpoint panicked."),
                    }
                }
            }
        }
    }

    /// Writes a snapshot, then deletes the log segments it makes unnecessary.
    fn checkpoint(&self) -> Result<(), Error> {
        // The streams are read after the store's series, so that they hold every record up to
        // the shards' watermarks (the applier applies a record's stream updates first).
        let info = persist::save_snapshot_with(
            &self.store,
            || self.streams.applied().clone(),
            &self.options.data_dir,
        )
        .map_err(Error::WriteSnapshot)?;
        let floor = info.watermarks.iter().copied().min().unwrap_or(0);
        let freed = self
            .wal
            .remove_segments_up_to(floor)
            .map_err(Error::RemoveSegments)?;
        tracing::info!(
            series = info.series,
            otlp_streams = info.otlp_streams(),
            bytes = info.bytes,
            log_bytes_freed = freed,
            "Wrote a checkpoint."
        );
        Ok(())
    }

    /// Stops taking pushes and appends, lets the log write and apply everything queued, then
    /// writes the final checkpoint (on a blocking thread). Call it once the servers have
    /// stopped; every clone of the handle is closed with it.
    ///
    /// # Errors
    /// [`Error::WriteSnapshot`] or [`Error::RemoveSegments`]; [`Error::Internal`] if the work
    /// panicked.
    pub async fn close(&self) -> Result<(), Error> {
        let ingest = self.clone();
        tokio::task::spawn_blocking(move || {
            // Everything queued for the log is written and applied before the last checkpoint.
            ingest.wal.close();
            ingest.checkpoint()
        })
        .await
        .map_err(|source| Error::Internal {
            what: "the final checkpoint panicked",
            source,
        })?
    }
}

/// Seals, rolls up and expires windows, and forgets OTLP streams idle for longer than
/// `stream_idle`, every `every` until `stop` is cancelled (the first pass at once: it also
/// forgets the streams recovery brought back that had been forgotten before).
async fn compaction_loop(
    store: Arc<Store>,
    streams: Arc<StreamsState>,
    clock: Arc<dyn Clock>,
    every: Duration,
    stream_idle: Duration,
    stop: CancellationToken,
) {
    let idle_ms = i64::try_from(stream_idle.as_millis()).unwrap_or(i64::MAX);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {
                // Sealing serializes histograms: off the async workers that serve pushes.
                let (store, now) = (Arc::clone(&store), clock.now());
                let forgotten = streams.expire(now.as_millis(), idle_ms);
                if forgotten > 0 {
                    tracing::debug!(streams = forgotten, "Forgot idle OTLP streams.");
                }
                let Ok(r) = tokio::task::spawn_blocking(move || store.compact(now)).await else {
                    tracing::error!("A compaction pass panicked.");
                    continue;
                };
                if r != Default::default() {
                    tracing::debug!(sealed = r.sealed, rolled_up = r.rolled_up, expired = r.expired, series_removed = r.series_removed, "Compacted the store.");
                }
            }
        }
    }
}

/// Reads a data directory no server is using into a new store of `store_shards` shards, as a
/// start would (the snapshot, then the log newer than it), without opening the log for
/// writing: for offline backups.
///
/// # Errors
/// [`Error::Snapshot`] or [`Error::Log`]: the snapshot or the log cannot be read.
pub fn read_data_dir(data_dir: &Path, store_shards: usize) -> Result<Store, Error> {
    let store = Store::new(store_shards);
    persist::load_snapshot(&store, data_dir)?;
    wal::recover(data_dir, &store, &mut Applied::default(), false)?;
    Ok(store)
}

/// Writes a snapshot of `store` into `dir` (created if missing), as a checkpoint does: for
/// backups.
///
/// # Errors
/// [`Error::Snapshot`]: any file-system error, with the path.
pub fn save_snapshot(store: &Store, dir: &Path) -> Result<SnapshotInfo, Error> {
    Ok(persist::save_snapshot(store, dir)?)
}

/// Loads the snapshot in `dir` into `store`; `Ok(None)` when there is none: for checking a
/// restored backup.
///
/// # Errors
/// [`Error::Snapshot`]: a file that is not a snapshot, of an unknown version, or corrupt.
pub fn load_snapshot(store: &Store, dir: &Path) -> Result<Option<SnapshotInfo>, Error> {
    Ok(persist::load_snapshot(store, dir)?)
}

#[cfg(test)]
mod tests {
    use thermostat_metrics::{Dimension, Period, Query, Resolution, Sample, Unit};

    use super::*;
    use crate::error::AppendError;

    const NOW: Timestamp = Timestamp(1_800_000_000_000);

    fn samples() -> Vec<(SeriesKey, Observation<'static>)> {
        let key = SeriesKey::new("Test", "Own", vec![Dimension::new("Host", "h0")]);
        [3.0, 4.0]
            .iter()
            .map(|&v| {
                let o = Observation {
                    timestamp: NOW.sub_millis(30_000),
                    unit: Unit::None,
                    resolution: Resolution::High,
                    sample: Sample::Value(v),
                };
                (key.clone(), o)
            })
            .collect()
    }

    fn sum(store: &Store) -> f64 {
        let q = Query {
            key: samples()[0].0.clone(),
            unit: None,
            start: NOW.sub_millis(3_600_000),
            end: NOW.add_millis(60_000),
            period: Period::ONE_HOUR,
            statistics: vec!["Sum".parse().unwrap()],
        };
        store
            .query(&q, NOW)
            .unwrap()
            .iter()
            .map(|p| p.values[0].unwrap())
            .sum()
    }

    /// Appended samples are in the store when the call returns; the final checkpoint holds
    /// them (the next open finds them in the snapshot); a closed handle refuses appends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_survive_close_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let ingest = open(IngestOptions::new(dir.path())).await.unwrap();
        let appender = ingest.clone();
        let seq = tokio::task::spawn_blocking(move || {
            appender.append_observations_blocking(&samples(), NOW, Duration::from_secs(10))
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(seq, 1);
        assert_eq!(sum(ingest.store()), 7.0);
        ingest.close().await.unwrap();
        assert!(dir.path().join("series.snapshot").exists());
        let refused = ingest.append_observations_blocking(&samples(), NOW, Duration::from_secs(1));
        assert!(
            matches!(refused, Err(Error::Append(AppendError::Closed))),
            "{refused:?}"
        );

        let again = open(IngestOptions::new(dir.path())).await.unwrap();
        assert_eq!(sum(again.store()), 7.0, "once, from the snapshot");
    }

    /// A start over a snapshot it cannot read says which step failed, then why.
    #[tokio::test]
    async fn open_errors_name_the_step_then_the_cause() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = b"THRMSNAP".to_vec();
        bytes.extend_from_slice(&99u32.to_le_bytes());
        std::fs::write(dir.path().join("series.snapshot"), bytes).unwrap();
        let e = open(IngestOptions::new(dir.path())).await.unwrap_err();
        assert!(matches!(e, Error::LoadSnapshot(_)), "{e:?}");
        let text = thermostat_metrics::chain(&e);
        assert!(
            text.starts_with("cannot load the data directory: ")
                && text.contains("format version 99 is not supported"),
            "{text}"
        );
    }

    #[test]
    fn fsync_modes_have_their_command_line_names() {
        for mode in FsyncMode::ALL {
            assert_eq!(FsyncMode::from_name(mode.name()), Some(mode));
        }
        assert_eq!(FsyncMode::default(), FsyncMode::Batch);
        assert_eq!(FsyncMode::from_name("sometimes"), None);
    }
}
