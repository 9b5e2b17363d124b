//! Wiring: builds the store, the gRPC and HTTP servers and the maintenance loop, and shuts
//! them down in order.

pub mod actions;
pub mod backup;
pub mod config;
pub mod engine;
pub mod settings;
pub mod state_db;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use thermostat_ingest::{Limits, MetricsApi};
use thermostat_metrics::{Clock, Store, SystemClock, Telemetry};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use settings::{LogFormat, ServeArgs, Settings};

/// Shards of the series store (a snapshot records it; a store of another size cannot load it).
pub const STORE_SHARDS: usize = 64;

/// How often windows are sealed, rolled up and expired.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(10);
/// How long shutdown waits for in-flight work.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A started Thermostat: its addresses and the handles to stop it.
#[derive(Debug)]
pub struct Running {
    /// Where gRPC is served.
    pub grpc_addr: SocketAddr,
    /// Where HTTP is served.
    pub http_addr: SocketAddr,
    /// The store (for in-process inspection, e.g. tests).
    pub store: Arc<Store>,
    /// Self-telemetry.
    pub telemetry: Arc<Telemetry>,
    /// The alarm engine.
    pub engine: Arc<engine::AlarmEngine>,
    /// Notifications and scaling.
    pub actions: Arc<actions::Actions>,
    wal: Arc<thermostat_ingest::wal::Wal>,
    shutdown: CancellationToken,
    stopping_ingest: CancellationToken,
    tracker: TaskTracker,
    settings: Settings,
}

/// Starts Thermostat with the wall clock.
///
/// # Errors
/// An unreadable data directory or snapshot, or an address that cannot be bound.
pub async fn start(settings: Settings) -> anyhow::Result<Running> {
    start_with_clock(settings, Arc::new(SystemClock)).await
}

/// Starts Thermostat with the given clock.
///
/// # Errors
/// As [`start`].
pub async fn start_with_clock(
    settings: Settings,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Running> {
    let store = Arc::new(Store::new(STORE_SHARDS));
    let telemetry = Arc::new(Telemetry::new());
    let ready = Arc::new(AtomicBool::new(false));

    // A start that is refused leaves no data directory behind: the configuration is read
    // and checked before the directory is touched, and a directory this start created is
    // removed if a later step fails (one that existed before is never removed).
    let created_dir = CreatedDataDir::before_start(&settings.data_dir);
    let config = {
        let paths = settings.config.clone();
        let allow_empty = settings.allow_empty_config;
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let config = config::load(&paths)
                .map_err(|e| anyhow::anyhow!("the configuration is invalid:\n{e}"))?;
            config::refuse_empty(&config, None, &paths, allow_empty)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(config)
        })
        .await
        .context("configuration loading panicked")??
    };

    let dir = settings.data_dir.clone();
    let loaded = {
        let store = Arc::clone(&store);
        tokio::task::spawn_blocking(move || thermostat_ingest::persist::load_snapshot(&store, &dir))
            .await
            .context("snapshot loading panicked")?
            .context("cannot load the data directory")?
    };
    if let Some(info) = loaded {
        tracing::info!(
            series = info.series,
            bytes = info.bytes,
            "Loaded the snapshot."
        );
    }
    let (dir, truncate) = (settings.data_dir.clone(), settings.recover_truncate);
    let recovery = {
        let store = Arc::clone(&store);
        tokio::task::spawn_blocking(move || thermostat_ingest::wal::recover(&dir, &store, truncate))
            .await
            .context("log recovery panicked")?
            .context("cannot recover the write-ahead log")?
    };
    if recovery.replayed + recovery.truncated_bytes > 0 {
        tracing::info!(
            replayed = recovery.replayed,
            skipped = recovery.skipped,
            truncated_bytes = recovery.truncated_bytes,
            "Recovered the write-ahead log."
        );
    }
    let mut wal_options = thermostat_ingest::wal::WalOptions::new(&settings.data_dir);
    wal_options.fsync = match settings.fsync {
        settings::Fsync::Always => thermostat_ingest::wal::FsyncMode::Always,
        settings::Fsync::Batch => thermostat_ingest::wal::FsyncMode::Batch,
        settings::Fsync::Never => thermostat_ingest::wal::FsyncMode::Never,
    };
    wal_options.batch_interval = Duration::from_millis(settings.fsync_interval_ms);
    wal_options.queue_capacity = settings.ingest_queue_capacity;
    let wal = Arc::new(
        thermostat_ingest::wal::Wal::open(wal_options, Arc::clone(&store), recovery.next_seq)
            .context("cannot open the write-ahead log")?,
    );

    let db = {
        let dir = settings.data_dir.clone();
        tokio::task::spawn_blocking(move || state_db::StateDb::open(&dir).map(Arc::new))
            .await
            .context("opening the state database panicked")??
    };
    let actions = actions::Actions::start(
        &config,
        &settings.data_dir,
        Arc::clone(&db),
        Arc::clone(&clock),
        Arc::clone(&telemetry),
    )
    .await
    .context("cannot start notifications and scaling")?;
    actions.log_metrics_to(Arc::clone(&wal));
    let admin = backup::Admin::new(
        Arc::clone(&store),
        Arc::clone(&db),
        actions.dispatcher().outbox().clone(),
        settings.data_dir.clone(),
        Arc::clone(&clock),
        settings.backup_retention,
    );
    let engine = {
        let (paths, allow_empty) = (settings.config.clone(), settings.allow_empty_config);
        let (store, clock, sink) = (Arc::clone(&store), Arc::clone(&clock), Arc::clone(&actions));
        let telemetry = Arc::clone(&telemetry);
        tokio::task::spawn_blocking(move || {
            engine::AlarmEngine::start(paths, store, clock, config, db, sink, telemetry)
                .map(|e| e.allowing_empty_config(allow_empty))
        })
        .await
        .context("alarm engine start-up panicked")??
    };
    let engine = Arc::new(engine.with_history_retention(engine::HistoryRetention {
        max_age_days: settings.history_retention_days,
        max_items_per_alarm: settings.history_max_items_per_alarm,
    }));

    // A server holds a descriptor per connection: use all the process may have.
    match thermostat_transport::raise_fd_limit() {
        Ok(limit) => tracing::debug!(?limit, "Open file descriptor limit."),
        Err(e) => tracing::warn!(error = %e, "Cannot raise the open file descriptor limit."),
    }
    let grpc = TcpListener::bind(settings.grpc_addr)
        .await
        .with_context(|| format!("cannot listen for gRPC on {}", settings.grpc_addr))?;
    let http = TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", settings.http_addr))?;
    let grpc_addr = grpc.local_addr()?;
    let http_addr = http.local_addr()?;

    #[cfg(unix)]
    file_size_limit_is_an_error();
    let shutdown = CancellationToken::new();
    let stopping_ingest = shutdown.child_token();
    let tracker = TaskTracker::new();
    let limits = Limits {
        max_in_flight: settings.max_in_flight_requests,
        max_streams: settings.max_streams,
        max_series: settings.max_series,
        max_series_per_namespace: settings.max_series_per_namespace,
        max_series_bytes: usize::try_from(settings.max_series_bytes).unwrap_or(usize::MAX),
        stream_idle_timeout: Duration::from_secs(settings.stream_idle_timeout_seconds),
        max_query_cost: settings.max_query_cost,
        ..Limits::default()
    };
    // One query gate for gRPC and HTTP: at most half the cores run store queries, so that
    // pushes keep the other half (`docs/limits.md`, Queries).
    let query_threads = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1));
    let queries = Arc::new(thermostat_metrics::store::QueryGate::new(
        settings.max_query_cost,
        query_threads,
        thermostat_metrics::store::DEFAULT_MAX_WAITING_QUERIES,
    ));
    // One budget of buffered request bytes for both servers.
    let transport = thermostat_transport::Options {
        max_concurrent_streams_per_connection: settings.max_concurrent_streams_per_connection,
        request_body_timeout: Duration::from_secs(settings.request_body_timeout_seconds),
        idle_connection_timeout: Duration::from_secs(settings.idle_connection_timeout_seconds),
        budget: thermostat_transport::Budget::new(settings.max_buffered_request_bytes),
    };

    let api = MetricsApi::new(
        Arc::clone(&store),
        Arc::clone(&wal),
        Arc::clone(&telemetry),
        Arc::clone(&clock),
        limits,
        stopping_ingest.clone(),
    )
    .with_query_gate(Arc::clone(&queries));
    let (stop, grpc_transport) = (shutdown.clone(), transport.clone());
    tracker.spawn(async move {
        if let Err(e) =
            thermostat_ingest::serve(grpc, api, limits, grpc_transport, stop.cancelled_owned())
                .await
        {
            tracing::error!(error = %e, "The gRPC server failed.");
        }
    });

    let router = thermostat_dashboards::router(thermostat_dashboards::ApiState {
        store: Arc::clone(&store),
        telemetry: Arc::clone(&telemetry),
        clock: Arc::clone(&clock),
        ready: Arc::clone(&ready),
        alarms: Some(Arc::clone(&engine) as Arc<dyn thermostat_dashboards::alarms::AlarmApi>),
        groups: Some(Arc::clone(&actions) as Arc<dyn thermostat_dashboards::actions::GroupApi>),
        notifications: Some(
            Arc::clone(&actions) as Arc<dyn thermostat_dashboards::actions::NotificationApi>
        ),
        admin: Some(Arc::new(admin) as Arc<dyn thermostat_dashboards::actions::AdminApi>),
        queries,
    });
    let stop = shutdown.clone();
    tracker.spawn(thermostat_transport::serve_http(
        http,
        router,
        transport,
        stop.cancelled_owned(),
    ));

    let (maintenance_store, stop) = (Arc::clone(&store), shutdown.clone());
    let maintenance_clock = Arc::clone(&clock);
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {
                    // Sealing serializes histograms: off the async workers that serve pushes.
                    let (store, now) = (Arc::clone(&maintenance_store), maintenance_clock.now());
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
    });

    if settings.alarm_tick_loop {
        tracker.spawn(Arc::clone(&engine).run(shutdown.clone()));
    }
    let (dispatcher, stop) = (Arc::clone(actions.dispatcher()), shutdown.clone());
    tracker.spawn(async move { dispatcher.run(stop.cancelled_owned()).await });

    let (checkpoint_store, checkpoint_wal, stop) =
        (Arc::clone(&store), Arc::clone(&wal), shutdown.clone());
    let (checkpoint_dir, every) = (
        settings.data_dir.clone(),
        Duration::from_secs(settings.checkpoint_interval_seconds),
    );
    tracker.spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {
                    let (store, wal, dir) = (Arc::clone(&checkpoint_store), Arc::clone(&checkpoint_wal), checkpoint_dir.clone());
                    match tokio::task::spawn_blocking(move || checkpoint(&store, &wal, &dir)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"), "A checkpoint failed; the log keeps everything until the next one."),
                        Err(e) => tracing::error!(error = %e, "A checkpoint panicked."),
                    }
                }
            }
        }
    });

    let server_file = serde_json::json!({
        "pid": std::process::id(),
        "grpc": grpc_addr.to_string(),
        "http": http_addr.to_string(),
    });
    std::fs::write(
        settings.data_dir.join(backup::SERVER_FILE),
        server_file.to_string(),
    )
    .with_context(|| {
        format!(
            "cannot write {}",
            settings.data_dir.join(backup::SERVER_FILE).display()
        )
    })?;
    created_dir.keep();
    ready.store(true, Ordering::Release);
    tracing::info!(grpc = %grpc_addr, http = %http_addr, data_dir = %settings.data_dir.display(), "Thermostat is serving.");
    Ok(Running {
        grpc_addr,
        http_addr,
        wal,
        store,
        telemetry,
        engine,
        actions,
        shutdown,
        stopping_ingest,
        tracker,
        settings,
    })
}

impl Running {
    /// Asks the server to stop (as SIGINT/SIGTERM do).
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// A token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until shutdown is requested, then stops in order: refuse new pushes, let the
    /// servers finish in-flight requests, then write the snapshot.
    ///
    /// # Errors
    /// The snapshot could not be written.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.shutdown.cancelled().await;
        self.stopping_ingest.cancel();
        tracing::info!("Shutting down: no new pushes are accepted.");
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_seconds = SHUTDOWN_GRACE.as_secs(),
                "Some tasks did not stop within the grace period."
            );
        }
        let undelivered = self.actions.finish(SHUTDOWN_GRACE).await;
        if undelivered > 0 {
            tracing::warn!(
                undelivered,
                "Notifications still pending at shutdown stay in the outbox and are sent after the restart."
            );
        }
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || engine.persist_all())
            .await
            .context("alarm state writing panicked")?
            .context("cannot write the alarm states")?;
        let (store, wal, dir) = (
            Arc::clone(&self.store),
            Arc::clone(&self.wal),
            self.settings.data_dir.clone(),
        );
        tokio::task::spawn_blocking(move || {
            // Everything queued for the log is written and applied before the last checkpoint.
            wal.close();
            checkpoint(&store, &wal, &dir)
        })
        .await
        .context("the final checkpoint panicked")??;
        let _ = std::fs::remove_file(self.settings.data_dir.join(backup::SERVER_FILE));
        tracing::info!("Stopped.");
        Ok(())
    }
}

/// The data directory (and the folders above it) that a start is about to create, removed
/// when dropped unless [`keep`](Self::keep) was called: a failed start leaves nothing behind.
/// Nothing that existed before the start (even a dangling symbolic link) is ever removed.
struct CreatedDataDir(Option<std::path::PathBuf>);

impl CreatedDataDir {
    /// The topmost missing folder of `dir`, `None` when `dir` exists.
    fn before_start(dir: &std::path::Path) -> Self {
        let mut top = None;
        let mut next = Some(dir);
        while let Some(d) = next {
            if d.as_os_str().is_empty() || std::fs::symlink_metadata(d).is_ok() {
                break;
            }
            top = Some(d.to_path_buf());
            next = d.parent();
        }
        CreatedDataDir(top)
    }

    /// The start succeeded: keep the directory.
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for CreatedDataDir {
    fn drop(&mut self) {
        let Some(dir) = self.0.take() else { return };
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {
                tracing::debug!(dir = %dir.display(), "Removed the data directory this failed start created.")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "Could not remove the data directory this failed start created.")
            }
        }
    }
}

/// Writes a snapshot, then deletes the log segments it makes unnecessary.
fn checkpoint(
    store: &Store,
    wal: &thermostat_ingest::wal::Wal,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let info = thermostat_ingest::persist::save_snapshot(store, dir)
        .context("cannot write the snapshot")?;
    let floor = info.watermarks.iter().copied().min().unwrap_or(0);
    let freed = wal
        .remove_segments_up_to(floor)
        .context("cannot delete old log segments")?;
    tracing::info!(
        series = info.series,
        bytes = info.bytes,
        log_bytes_freed = freed,
        "Wrote a checkpoint."
    );
    Ok(())
}

/// With a file-size limit (`ulimit -f`), a write beyond it raises SIGXFSZ, whose default action
/// kills the process. Handling the signal turns it into a write error (EFBIG) instead, which
/// the write-ahead log reports to the client like a full disk: the push is refused, nothing
/// acknowledged is lost, and the server keeps serving.
#[cfg(unix)]
fn file_size_limit_is_an_error() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        const SIGXFSZ: i32 = 25;
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(SIGXFSZ)) {
            Ok(mut s) => {
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        tracing::warn!("A write went beyond the file-size limit (SIGXFSZ); it fails like a full disk.");
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "Cannot handle SIGXFSZ; a file-size limit would stop the process."),
        }
    });
}

/// Listens for SIGINT and SIGTERM from the moment it is called, and completes on the first.
///
/// The handlers are installed at the call, not when the future is first polled: a process
/// that calls this before it starts serving never dies from a signal that arrives while it
/// starts (it stops cleanly as soon as it has started instead). Must be called within a Tokio
/// runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            let one = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
                match s {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = one(interrupt) => {},
                _ = one(terminate) => {},
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `serve` until SIGINT/SIGTERM.
///
/// # Errors
/// As [`start`] and [`Running::wait`].
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    // Signals are caught from before the start, so one that arrives while starting stops the
    // server cleanly once it is up instead of killing it half-started.
    let stop_signal = shutdown_signal();
    #[cfg(unix)]
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    let running = start(settings).await?;
    let token = running.shutdown_token();
    #[cfg(unix)]
    {
        let engine = Arc::clone(&running.engine);
        let stop = token.clone();
        tokio::spawn(async move {
            let Ok(mut hup) = hangup else {
                return;
            };
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = hup.recv() => {
                        tracing::info!("Received SIGHUP: reloading the configuration.");
                        let engine = Arc::clone(&engine);
                        match tokio::task::spawn_blocking(move || engine.reload_from_disk()).await {
                            Ok(Ok(_)) => {}
                            Ok(Err(e)) => tracing::warn!(errors = %e, "Rejected the new configuration; the running one stays."),
                            Err(e) => tracing::error!(error = %e, "The reload panicked."),
                        }
                    }
                }
            }
        });
    }
    tokio::spawn(async move {
        stop_signal.await;
        tracing::info!("Received a shutdown signal.");
        token.cancel();
    });
    running.wait().await
}
