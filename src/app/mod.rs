//! Wiring: builds the store, the gRPC and HTTP servers and the maintenance loop, and shuts
//! them down in order.

pub mod actions;
pub mod backup;
pub mod cloudwatch;
pub mod cloudwatch_alarms;
pub mod cluster;
pub mod cluster_state;
mod error;
pub mod otlp;
pub mod reload;

pub use error::Error;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use thermostat_alarms_runtime::{AlarmRuntime, AlarmTelemetry};
use thermostat_ingest::Ingest;
use thermostat_metrics::{Clock, Store, SystemClock, Telemetry};
use thermostat_notify::NotificationTelemetry;
use thermostat_scaler_runtime::ScalingTelemetry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::settings::{LogFormat, ServeArgs, Settings};

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
    /// The alarm runtime.
    pub engine: Arc<AlarmRuntime>,
    /// Reloads of the configuration (`POST /api/v1/reload`, SIGHUP).
    pub reloader: Arc<reload::Reloader>,
    /// Notifications and scaling.
    pub actions: Arc<actions::Actions>,
    /// Tokens and TLS.
    pub security: Arc<crate::security::Security>,
    /// The audit trail.
    pub audit: Arc<thermostat_audit::AuditLog>,
    ingest: Ingest,
    shutdown: CancellationToken,
    stopping_ingest: CancellationToken,
    tracker: TaskTracker,
    /// Cluster mode: the node's leases, partitions and snapshots, stopped only after the
    /// notifications in flight are finished (a leader that gave its lease up first would
    /// leave a delivery made but not recorded for the next leader to make again).
    cluster_node: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
    settings: Settings,
}

/// Starts Thermostat with the wall clock.
///
/// # Errors
/// An unreadable data directory or snapshot, or an address that cannot be bound.
pub async fn start(settings: Settings) -> Result<Running, Error> {
    start_with_clock(settings, Arc::new(SystemClock)).await
}

/// Starts Thermostat with the given clock.
///
/// # Errors
/// As [`start`].
pub async fn start_with_clock(settings: Settings, clock: Arc<dyn Clock>) -> Result<Running, Error> {
    // The components own their metrics; `/metrics` shows them first, then the ingest ones.
    let alarm_telemetry = AlarmTelemetry::default();
    let notification_telemetry = NotificationTelemetry::default();
    let scaling_telemetry = ScalingTelemetry::default();
    let auth_telemetry = thermostat_auth::AuthTelemetry::default();
    let log_telemetry = thermostat_ingest::LogTelemetry::default();
    let telemetry = Arc::new(Telemetry::with_components(|registry| {
        alarm_telemetry.register(registry);
        notification_telemetry.register(registry);
        scaling_telemetry.register(registry);
        auth_telemetry.register(registry);
        log_telemetry.register(registry);
    }));
    // Tokens, TLS, and the refusal to serve beyond loopback without tokens: before anything
    // is created.
    let security = Arc::new(crate::security::Security::start(&settings, auth_telemetry)?);
    let aws_signatures = Arc::new(thermostat_dashboards::cloudwatch::SignatureCheck::new(
        cloudwatch::signatures(&settings)?,
    ));
    // A reload of the settings re-reads `aws_api` (keys rotated or revoked) too.
    security.reload_aws_signatures(Arc::clone(&aws_signatures));
    let ready = Arc::new(AtomicBool::new(false));

    // A start that is refused leaves no data directory behind: the configuration is read
    // and checked before the directory is touched, and a directory this start created is
    // removed if a later step fails (one that existed before is never removed).
    let created_dir = crate::process::CreatedDataDir::before_start(&settings.data_dir);
    let config = {
        let paths = settings.config.clone();
        let allow_empty = settings.allow_empty_config;
        tokio::task::spawn_blocking(move || {
            let config = crate::config::load(&paths).map_err(Error::InvalidConfig)?;
            crate::config::refuse_empty(&config, None, &paths, allow_empty)
                .map_err(Error::EmptyConfig)?;
            Ok::<_, Error>(config)
        })
        .await
        .map_err(|_| Error::Panicked("configuration loading"))??
    };

    let cluster = match &settings.cluster {
        Some(c) => Some(cluster::connect(c).await.map_err(Error::Cluster)?),
        None => None,
    };
    let ingest = thermostat_ingest::open(thermostat_ingest::IngestOptions {
        remote: cluster.as_ref().map(|c| {
            Arc::new(cluster::StreamLog::new(
                c.clone(),
                tokio::runtime::Handle::current(),
            )) as Arc<dyn thermostat_ingest::RemoteLog>
        }),
        log_telemetry,
        ..settings.ingest_options()
    })
    .await?;
    let store = Arc::clone(ingest.store());

    let db = {
        let dir = settings.data_dir.clone();
        tokio::task::spawn_blocking(move || thermostat_statedb::StateDb::open(&dir).map(Arc::new))
            .await
            .map_err(|_| Error::Panicked("opening the state database"))??
    };
    // Cluster mode: the alarm and scaling state is the cluster's, replicated through its
    // state journal (`cluster_state`); a single node keeps it in its state database.
    let replicated = match &cluster {
        Some(c) => Some(cluster_state::Replicated::open(c, &settings.data_dir).await?),
        None => None,
    };
    let adopters = Arc::new(cluster_state::Adopters::default());
    let state: Arc<dyn actions::StateStore> = match &replicated {
        Some(r) => Arc::clone(r) as _,
        None => Arc::clone(&db) as _,
    };
    let shared = replicated.as_ref().zip(cluster.as_ref()).map(|(r, c)| {
        let leader = c.clone();
        actions::SharedNotifications {
            outbox: r.outbox().clone(),
            writes: Arc::clone(r) as _,
            delivers: Arc::new(move || leader.leads()),
        }
    });
    let actions = actions::Actions::start(
        &config,
        &settings.data_dir,
        shared,
        Arc::clone(&state),
        Arc::clone(&clock),
        notification_telemetry,
        scaling_telemetry,
    )
    .await
    .map_err(Error::Actions)?;
    actions.log_metrics_to(ingest.clone());
    let audit = {
        let dir = settings.data_dir.clone();
        tokio::task::spawn_blocking(move || thermostat_audit::AuditLog::open(&dir).map(Arc::new))
            .await
            .map_err(|_| Error::Panicked("opening the audit trail"))??
    };
    let admin = thermostat_dashboards::admin::Admin::new(
        thermostat_backup::ServerBackups::new(
            Arc::new(backup::DataDirParts {
                store: Arc::clone(&store),
                // In cluster mode the alarm and scaling state is the replica's.
                db: replicated
                    .as_ref()
                    .map_or_else(|| Arc::clone(&db), |r| Arc::clone(r.replica())),
                outbox: actions.dispatcher().outbox().clone(),
                audit: Arc::clone(&audit),
            }),
            &settings.data_dir,
            settings.backup_retention,
        ),
        Arc::clone(&clock),
    );
    let engine = {
        let set = Arc::new(config.alarms.clone());
        let (store, clock, sink) = (Arc::clone(&store), Arc::clone(&clock), Arc::clone(&actions));
        let alarm_store = Arc::clone(&state) as Arc<dyn thermostat_alarms_runtime::AlarmStore>;
        // Every node of a cluster starts alike: what the start writes stays local.
        tokio::task::spawn_blocking(move || {
            cluster_state::local_writes(|| {
                AlarmRuntime::start(set, store, clock, alarm_store, sink, alarm_telemetry)
            })
        })
        .await
        .map_err(|_| Error::Panicked("alarm engine start-up"))?
        .map_err(Error::Alarms)?
    };
    let metrics_actions = Arc::clone(&actions);
    let mut engine = engine
        .with_history_retention(settings.history_retention())
        // After the tick's scaling, so that the group metrics show its outcome.
        .with_after_tick(move |t| metrics_actions.record_capacity_metrics(t));
    if let Some(r) = &replicated {
        let gate = Arc::new(cluster_state::ClusterGate::new(
            Arc::clone(r),
            Arc::clone(&adopters),
        ));
        engine = engine.with_evaluation_gate(Arc::clone(&gate) as _);
        actions.scale_only_while(move || gate.leads());
        let requests = Arc::clone(r);
        actions.forward_scaling_to(Arc::new(move |due, now| requests.request_scaling(due, now)));
    }
    let engine = Arc::new(engine);
    adopters.set(
        Arc::clone(&engine),
        Arc::clone(actions.scaling()),
        Arc::clone(actions.dispatcher()),
    );
    if let Some(c) = &cluster {
        c.set_config_digest(config.source.digest());
    }
    let reloader = Arc::new(reload::Reloader::new(
        settings.config.clone(),
        config,
        Arc::clone(&engine),
        Arc::clone(&actions),
        settings.allow_empty_config,
        Arc::clone(&security),
    ));

    // A server holds a descriptor per connection: use all the process may have.
    match thermostat_transport::raise_fd_limit() {
        Ok(limit) => tracing::debug!(?limit, "Open file descriptor limit."),
        Err(e) => tracing::warn!(error = %e, "Cannot raise the open file descriptor limit."),
    }
    let (grpc, grpc_addr) = listen("gRPC", settings.grpc_addr).await?;
    let (http, http_addr) = listen("HTTP", settings.http_addr).await?;

    #[cfg(unix)]
    crate::process::file_size_limit_is_an_error();
    let shutdown = CancellationToken::new();
    let stopping_ingest = shutdown.child_token();
    let tracker = TaskTracker::new();
    let limits = settings.ingest_limits();
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
        tls: security.tls.clone(),
        ..settings.transport_options()
    };

    let api = ingest
        .metrics_api(
            Arc::clone(&telemetry),
            Arc::clone(&clock),
            limits,
            stopping_ingest.clone(),
        )
        .with_query_gate(Arc::clone(&queries))
        .with_access(Arc::clone(&security.access))
        .with_otlp(&settings.otlp_options())
        .with_remote_write(&settings.remote_write_options());
    // Cut off from NATS, a cluster node answers queries from its own memory: said in the
    // answers' metadata (the HTTP API says `"stale": true`).
    let api = match &cluster {
        Some(c) => {
            let c = c.clone();
            api.with_stale_probe(move || !c.connected())
        }
        None => api,
    };
    let otlp_http = otlp::OtlpExport(api.otlp_api());
    let remote_write = otlp::RemoteWrite(api.remote_write_api());
    let alarm_api: Arc<dyn thermostat_dashboards::alarms::AlarmApi> =
        Arc::new(thermostat_dashboards::alarms::RuntimeAlarms::new(
            Arc::clone(&engine),
            Arc::clone(&reloader) as Arc<dyn thermostat_dashboards::alarms::ReloadApi>,
        ));
    let cloudwatch_api = thermostat_dashboards::cloudwatch::CloudWatch {
        metrics: Arc::new(cloudwatch::CloudWatchIngest(api.clone())),
        alarms: Some(Arc::new(cloudwatch_alarms::CloudWatchRuntimeAlarms::new(
            Arc::clone(&engine),
            Arc::clone(&alarm_api),
            Arc::clone(actions.scaling()),
            // In cluster mode, detectors are the cluster's.
            replicated.as_ref().map_or_else(
                || Arc::clone(&db) as Arc<dyn cloudwatch_alarms::Detectors>,
                |r| Arc::clone(r) as _,
            ),
            &settings.aws_api.region,
            &settings.aws_api.account_id,
        ))),
        signatures: Arc::clone(&aws_signatures),
    };
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
        alarms: Some(alarm_api),
        groups: Some(
            Arc::clone(actions.scaling()) as Arc<dyn thermostat_dashboards::actions::GroupApi>
        ),
        notifications: Some(
            Arc::clone(&actions) as Arc<dyn thermostat_dashboards::actions::NotificationApi>
        ),
        admin: Some(Arc::new(admin) as Arc<dyn thermostat_dashboards::actions::AdminApi>),
        queries,
        access: Arc::clone(&security.access),
        audit: Some(Arc::clone(&audit) as Arc<dyn thermostat_auth::AuditTrail>),
        otlp: Some(Arc::new(otlp_http) as Arc<dyn thermostat_dashboards::otlp::OtlpApi>),
        remote_write: Some(
            Arc::new(remote_write) as Arc<dyn thermostat_dashboards::remote_write::RemoteWriteApi>
        ),
        cloudwatch: Some(Arc::new(cloudwatch_api)),
        cluster: cluster.as_ref().map(|c| cluster::view(c, &engine)),
    });
    let stop = shutdown.clone();
    tracker.spawn(thermostat_transport::serve_http(
        http,
        router,
        transport,
        stop.cancelled_owned(),
    ));

    let mut cluster_node = None;
    if let Some(c) = &cluster {
        c.set_http_addr(http_addr.to_string());
        let announce = c.clone();
        reloader.on_swap(move |config| announce.set_config_digest(config.source.digest()));
        store.set_remote(Arc::new(cluster::ClusterReads::new(
            c.clone(),
            tokio::runtime::Handle::current(),
        )));
        let (serving, handler, stop) = (
            c.clone(),
            cluster::rpc_handler(Arc::clone(&store)),
            shutdown.clone(),
        );
        tracker.spawn(async move {
            if let Err(e) = serving.serve(handler, stop).await {
                tracing::error!(error = %e, "Cannot answer the other nodes of the cluster.");
            }
        });
        let applier = Arc::new(cluster::StoreApplier(ingest.record_applier()));
        let stop = CancellationToken::new();
        cluster_node = Some((stop.clone(), tokio::spawn(c.clone().run(applier, stop))));
    }

    // Compaction of the store and checkpoints (snapshot, then the log before it is deleted).
    ingest.spawn_maintenance(&tracker, Arc::clone(&clock), shutdown.clone());

    tracker.spawn(Arc::clone(&security).warn_while_insecure(shutdown.clone()));
    if let Some(r) = &replicated {
        let snapshot_every = settings
            .cluster
            .as_ref()
            .map_or(thermostat_cluster::DEFAULT_SNAPSHOT_INTERVAL, |c| {
                c.snapshot_interval
            });
        tracker.spawn(cluster_state::follow(
            Arc::clone(r),
            Arc::clone(&adopters),
            snapshot_every,
            shutdown.clone(),
        ));
    }
    // Every node ticks; in cluster mode the gate lets only the leader evaluate.
    if settings.alarm_tick_loop {
        tracker.spawn(Arc::clone(&engine).run(shutdown.clone()));
    }
    let (dispatcher, stop) = (Arc::clone(actions.dispatcher()), shutdown.clone());
    tracker.spawn(async move { dispatcher.run(stop.cancelled_owned()).await });

    thermostat_backup::ServerFile {
        grpc: grpc_addr.to_string(),
        http: http_addr.to_string(),
        pid: std::process::id(),
    }
    .write(&settings.data_dir)?;
    created_dir.keep();
    ready.store(true, Ordering::Release);
    tracing::info!(grpc = %grpc_addr, http = %http_addr, data_dir = %settings.data_dir.display(), "Thermostat is serving.");
    Ok(Running {
        grpc_addr,
        http_addr,
        ingest,
        store,
        telemetry,
        engine,
        reloader,
        actions,
        security,
        audit,
        shutdown,
        stopping_ingest,
        tracker,
        cluster_node,
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
    /// servers finish in-flight requests, finish the notifications in flight, leave the
    /// cluster (cluster mode), then write the snapshot.
    ///
    /// # Errors
    /// The snapshot could not be written.
    pub async fn wait(self) -> Result<(), Error> {
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
        // Only now does a cluster node snapshot its partitions and give its leases up.
        if let Some((stop, node)) = self.cluster_node {
            stop.cancel();
            if tokio::time::timeout(SHUTDOWN_GRACE * 3, node)
                .await
                .is_err()
            {
                tracing::warn!("This node did not leave the cluster in time; its leases expire.");
            }
        }
        let engine = Arc::clone(&self.engine);
        // Every node writes its states at shutdown: they stay local (in cluster mode the
        // journal has every change already).
        tokio::task::spawn_blocking(move || cluster_state::local_writes(|| engine.persist_all()))
            .await
            .map_err(|_| Error::Panicked("alarm state writing"))?
            .map_err(Error::PersistAlarms)?;
        // Everything queued for the log is written and applied before the last checkpoint.
        self.ingest.close().await?;
        thermostat_backup::ServerFile::remove(&self.settings.data_dir);
        tracing::info!("Stopped.");
        Ok(())
    }
}

/// Binds `addr`; the listener and the address it got (the port, when 0 was asked for).
async fn listen(
    protocol: &'static str,
    addr: SocketAddr,
) -> Result<(TcpListener, SocketAddr), Error> {
    let listen_error = |source| Error::Listen(protocol, addr, source);
    let listener = TcpListener::bind(addr).await.map_err(listen_error)?;
    let bound = listener.local_addr().map_err(listen_error)?;
    Ok((listener, bound))
}
