//! `serve` settings: flags, an optional YAML settings file (`--settings`), defaults. Flags win
//! over the file, the file over the defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thermostat_ingest::FsyncMode;

/// Why the settings cannot be used: the message names the file or the key.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The settings file cannot be read (missing, too large, not text).
    #[error("cannot read the settings file: {0}")]
    Read(String),
    /// The settings file is not valid settings YAML (`path:line:column: message`).
    #[error("{path}:{message}")]
    Parse {
        /// The settings file.
        path: String,
        /// `line:column: message`.
        message: String,
    },
    /// A setting that must be positive is 0.
    #[error("{0}: must be at least 1, got 0")]
    Zero(&'static str),
    /// A setting whose value breaks its rule.
    #[error("{key}: {rule}")]
    Invalid {
        /// The setting.
        key: &'static str,
        /// The rule, with the value.
        rule: String,
    },
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `--fsync`'s values: the ingest crate's [`FsyncMode`]s by name, each with its description
/// in `--help`.
fn fsync_parser() -> impl clap::builder::TypedValueParser<Value = FsyncMode> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser as _};
    PossibleValuesParser::new(
        FsyncMode::ALL.map(|mode| PossibleValue::new(mode.name()).help(mode.description())),
    )
    .try_map(|name| FsyncMode::from_name(&name).ok_or("not a sync policy"))
}

/// The keys a settings file may hold (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsFile {
    /// gRPC listen address.
    pub grpc_addr: Option<SocketAddr>,
    /// HTTP listen address.
    pub http_addr: Option<SocketAddr>,
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// Alarm/scaling YAML files or folders.
    pub config: Option<Vec<PathBuf>>,
    /// Log format.
    pub log_format: Option<LogFormat>,
    /// Unary pushes processed at once.
    pub max_in_flight_requests: Option<usize>,
    /// Streams open at once.
    pub max_streams: Option<usize>,
    /// Series held at most.
    pub max_series: Option<usize>,
    /// Series held at most per namespace.
    pub max_series_per_namespace: Option<usize>,
    /// Pushes waiting for the write-ahead log at most.
    pub ingest_queue_capacity: Option<usize>,
    /// Sync policy of the write-ahead log.
    pub fsync: Option<FsyncMode>,
    /// Extra wait before a group commit, in milliseconds.
    pub fsync_interval_ms: Option<u64>,
    /// Seconds between checkpoints (snapshot + log truncation).
    pub checkpoint_interval_seconds: Option<u64>,
    /// HTTP/2 streams open at once on one connection (SETTINGS_MAX_CONCURRENT_STREAMS).
    pub max_concurrent_streams_per_connection: Option<u32>,
    /// Seconds a request (or one message of a stream) may take to arrive whole.
    pub request_body_timeout_seconds: Option<u64>,
    /// Bytes held for requests not yet received whole, all connections together.
    pub max_buffered_request_bytes: Option<usize>,
    /// Seconds a `StreamMetricData` stream may stay without a message.
    pub stream_idle_timeout_seconds: Option<u64>,
    /// Seconds a connection may send nothing before it is closed.
    pub idle_connection_timeout_seconds: Option<u64>,
    /// Memory of series keys and windows held at most, in bytes.
    pub max_series_bytes: Option<u64>,
    /// Cost (periods × statistics × series) of one statistics query at most.
    pub max_query_cost: Option<u64>,
    /// Days an alarm's history items are kept.
    pub history_retention_days: Option<u64>,
    /// History items kept per alarm at most (the oldest go first).
    pub history_max_items_per_alarm: Option<usize>,
    /// Backups kept in `<data dir>/backups/` (the oldest are deleted).
    pub backup_retention: Option<usize>,
    /// Accept a `--config` (or a reload) that yields no alarms at all.
    pub allow_empty_config: Option<bool>,
    /// Access control: tokens with roles (`docs/security.md`).
    pub auth: Option<thermostat_auth::AuthSettings>,
    /// TLS on both servers (`docs/security.md`).
    pub tls: Option<thermostat_transport::TlsSettings>,
    /// OpenTelemetry ingest (`docs/otlp.md`).
    pub otlp: Option<OtlpSettings>,
    /// Seconds a cumulative OTLP stream may send nothing before its state is forgotten.
    pub otlp_stream_idle_seconds: Option<u64>,
    /// Prometheus remote write (`docs/prometheus.md`).
    pub prometheus: Option<PrometheusSettings>,
    /// The CloudWatch-compatible API (issue 21).
    pub aws_api: Option<AwsApiSettings>,
    /// Cluster mode on NATS JetStream (docs/cluster.md).
    pub cluster: Option<ClusterSettings>,
}

/// `cluster:` in the settings file (docs/cluster.md); the `--cluster*` and `--node-id` flags
/// win over it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// NATS server URLs (`nats://HOST:4222`).
    #[serde(default)]
    pub servers: Vec<String>,
    /// This node's name, unique in the cluster.
    pub node_id: Option<String>,
    /// Replicas of the stream and buckets [default: the smaller of 3 and the NATS servers].
    pub replicas: Option<usize>,
    /// Partitions of a new cluster [default: 64]; an existing cluster keeps its own.
    pub partitions: Option<u32>,
    /// Seconds a partition lease lasts: a dead node's partitions move after at most this
    /// long [default: 9].
    pub lease_seconds: Option<u64>,
    /// Seconds between an owner's snapshots of its partitions into the object store, each
    /// followed by trimming the ingest stream below it [default: 300].
    pub snapshot_seconds: Option<u64>,
    /// TLS to NATS: the CA bundle to trust (PEM); setting it requires TLS.
    pub tls_ca_file: Option<PathBuf>,
    /// TLS to NATS: this node's client certificate (PEM), with `tls_key_file`.
    pub tls_cert_file: Option<PathBuf>,
    /// TLS to NATS: the client certificate's key (PEM).
    pub tls_key_file: Option<PathBuf>,
    /// A NATS credentials file (`.creds`: JWT and seed).
    pub credentials_file: Option<PathBuf>,
    /// The environment variable holding a NATS authentication token.
    pub token_env: Option<String>,
}

/// Cluster mode, resolved: `None` in [`Settings::cluster`] is single-node mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// NATS server URLs.
    pub servers: Vec<String>,
    /// This node's name.
    pub node_id: String,
    /// Replicas, or from the NATS cluster's size.
    pub replicas: Option<usize>,
    /// Partitions of a new cluster.
    pub partitions: u32,
    /// A lease's length.
    pub lease: Duration,
    /// Between partition snapshots.
    pub snapshot_interval: Duration,
    /// TLS: the CA bundle.
    pub tls_ca_file: Option<PathBuf>,
    /// TLS: a client certificate and key.
    pub tls_client: Option<(PathBuf, PathBuf)>,
    /// A NATS credentials file.
    pub credentials_file: Option<PathBuf>,
    /// The variable holding a NATS token (read at start, never kept in the settings).
    pub token_env: Option<String>,
}

/// The `aws_api` section of the settings file: the CloudWatch-compatible API on the HTTP port.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsApiSettings {
    /// The region of ARNs (default `us-east-1`).
    #[serde(default = "AwsApiSettings::default_region")]
    pub region: String,
    /// The account id of ARNs (default `000000000000`).
    #[serde(default = "AwsApiSettings::default_account_id")]
    pub account_id: String,
    /// Verify SigV4 signatures (default true); `false` accepts any signature as an anonymous
    /// admin, on loopback only unless `--insecure-no-auth`.
    #[serde(default = "AwsApiSettings::default_verify_signatures")]
    pub verify_signatures: bool,
    /// The access keys requests may be signed with.
    #[serde(default)]
    pub access_keys: Vec<thermostat_auth::sigv4::AccessKeyEntry>,
}

impl AwsApiSettings {
    fn default_region() -> String {
        "us-east-1".to_owned()
    }

    fn default_account_id() -> String {
        "000000000000".to_owned()
    }

    const fn default_verify_signatures() -> bool {
        true
    }
}

impl Default for AwsApiSettings {
    fn default() -> Self {
        AwsApiSettings {
            region: Self::default_region(),
            account_id: Self::default_account_id(),
            verify_signatures: Self::default_verify_signatures(),
            access_keys: Vec::new(),
        }
    }
}

/// The `prometheus` section of the settings file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSettings {
    /// The label whose value is a remote-written series' namespace (default `job`).
    #[serde(default)]
    pub namespace_label: Option<String>,
}

/// The `otlp` section of the settings file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpSettings {
    /// Resource attributes that become dimensions besides `service.name`,
    /// `service.namespace` and `host.name`.
    #[serde(default)]
    pub resource_dimensions: Vec<String>,
}

impl SettingsFile {
    /// Reads and parses a settings file.
    ///
    /// # Errors
    /// The path and the problem, with line and column for YAML errors.
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        let text = crate::config::read_bounded(path, thermostat_alarms::raw::MAX_FILE_BYTES)
            .map_err(|e| SettingsError::Read(e.to_string()))?;
        Self::parse(&text).map_err(|e| SettingsError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Parses settings YAML; errors read `line:column: message`. The text is checked as
    /// configuration files are first (`thermostat_alarms::raw::check_text`: YAML's
    /// characters only, at most 16 MiB, nesting at most 64 deep), so that the YAML parser,
    /// whose cost grows with the square of the nesting depth, never sees a nesting bomb.
    ///
    /// # Errors
    /// The first YAML or schema error.
    pub fn parse(text: &str) -> Result<Self, String> {
        thermostat_alarms::raw::check_text(text)
            .map_err(|e| format!("{}:{}: {}", e.pos.line, e.pos.column, e.message))?;
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_yaml_ng::from_str(text).map_err(|e| match e.location() {
            Some(l) => format!("{}:{}: {e}", l.line(), l.column()),
            None => format!(" {e}"),
        })
    }
}

/// Resolved settings of a running server.
#[derive(Clone, Debug)]
pub struct Settings {
    /// gRPC listen address (port 0 picks a free port).
    pub grpc_addr: SocketAddr,
    /// HTTP listen address (port 0 picks a free port).
    pub http_addr: SocketAddr,
    /// Where snapshots are kept.
    pub data_dir: PathBuf,
    /// Alarm/scaling YAML files or folders.
    pub config: Vec<PathBuf>,
    /// Log format.
    pub log_format: LogFormat,
    /// Unary pushes processed at once before RESOURCE_EXHAUSTED.
    pub max_in_flight_requests: usize,
    /// `StreamMetricData` streams open at once before RESOURCE_EXHAUSTED.
    pub max_streams: usize,
    /// Series held at most.
    pub max_series: usize,
    /// Series held at most per namespace.
    pub max_series_per_namespace: Option<usize>,
    /// Pushes waiting for the write-ahead log at most; more get RESOURCE_EXHAUSTED.
    pub ingest_queue_capacity: usize,
    /// Sync policy of the write-ahead log.
    pub fsync: FsyncMode,
    /// Extra wait before a group commit (`batch` mode).
    pub fsync_interval_ms: u64,
    /// Seconds between checkpoints.
    pub checkpoint_interval_seconds: u64,
    /// Drop a corrupt log record in the middle of the log (and everything after it) instead of
    /// refusing to start.
    pub recover_truncate: bool,
    /// HTTP/2 streams open at once on one connection (gRPC and HTTP).
    pub max_concurrent_streams_per_connection: u32,
    /// Seconds a request body (or one message of a stream) may take to arrive whole; then the
    /// request is cancelled.
    pub request_body_timeout_seconds: u64,
    /// Bytes held for requests not yet received whole, all connections together; beyond it new
    /// requests get RESOURCE_EXHAUSTED / 503.
    pub max_buffered_request_bytes: usize,
    /// Seconds a `StreamMetricData` stream may stay without a message before it is closed.
    pub stream_idle_timeout_seconds: u64,
    /// Seconds a connection may send nothing (no preface, no complete request head, no frame)
    /// while it has no request open, before it is closed.
    pub idle_connection_timeout_seconds: u64,
    /// Memory of series keys and windows held at most, in bytes (weighed, besides the count of
    /// `max_series`).
    pub max_series_bytes: u64,
    /// Cost (periods × statistics × series) of one statistics query at most.
    pub max_query_cost: u64,
    /// Days an alarm's history items are kept.
    pub history_retention_days: u64,
    /// History items kept per alarm at most.
    pub history_max_items_per_alarm: usize,
    /// Backups kept in `<data dir>/backups/`.
    pub backup_retention: usize,
    /// Accept a configuration that yields no alarms at all (otherwise `--config` or a reload
    /// without alarms is refused, so that an emptied folder cannot delete every alarm).
    pub allow_empty_config: bool,
    /// Run the alarm engine's own tick loop (every 10 s of the clock). Turned off when the
    /// caller ticks [`crate::app::Running::engine`] itself, as on a simulated clock (tests, the
    /// demo's fast-forward); not a flag.
    pub alarm_tick_loop: bool,
    /// The settings file, re-read on reload for `auth` and `tls` (`None`: no file).
    pub settings_file: Option<PathBuf>,
    /// Access control (`auth` in the settings file).
    pub auth: thermostat_auth::AuthSettings,
    /// TLS on both servers (`tls` in the settings file).
    pub tls: Option<thermostat_transport::TlsSettings>,
    /// Serve beyond loopback without tokens (`--insecure-no-auth`).
    pub insecure_no_auth: bool,
    /// OTLP resource attributes that become dimensions (`otlp.resource_dimensions`).
    pub otlp_resource_dimensions: Vec<String>,
    /// Seconds a cumulative OTLP stream may send nothing before its state is forgotten.
    pub otlp_stream_idle_seconds: u64,
    /// The label whose value is a remote-written series' namespace
    /// (`prometheus.namespace_label`).
    pub prometheus_namespace_label: String,
    /// The CloudWatch-compatible API (`aws_api`).
    pub aws_api: AwsApiSettings,
    /// Cluster mode (`--cluster`, `cluster:`); `None`: single-node mode.
    pub cluster: Option<Cluster>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 4317)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./thermostat-data"),
            config: Vec::new(),
            log_format: LogFormat::Text,
            max_in_flight_requests: 1024,
            max_streams: 256,
            max_series: 1_000_000,
            max_series_per_namespace: None,
            ingest_queue_capacity: 1024,
            fsync: FsyncMode::Batch,
            fsync_interval_ms: 0,
            checkpoint_interval_seconds: 300,
            recover_truncate: false,
            max_concurrent_streams_per_connection: 64,
            request_body_timeout_seconds: 30,
            max_buffered_request_bytes: 256 << 20,
            stream_idle_timeout_seconds: 60,
            idle_connection_timeout_seconds: 30,
            max_series_bytes: 4 << 30,
            max_query_cost: 200_000,
            history_retention_days: 14,
            history_max_items_per_alarm: 1_000,
            backup_retention: 3,
            allow_empty_config: false,
            alarm_tick_loop: true,
            settings_file: None,
            auth: thermostat_auth::AuthSettings::default(),
            tls: None,
            insecure_no_auth: false,
            otlp_resource_dimensions: Vec::new(),
            otlp_stream_idle_seconds: 3600,
            prometheus_namespace_label: thermostat_prometheus::DEFAULT_NAMESPACE_LABEL.to_owned(),
            aws_api: AwsApiSettings::default(),
            cluster: None,
        }
    }
}

/// `serve`'s flags; every one optional so that the settings file can fill it in.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// gRPC listen address [default: 127.0.0.1:4317].
    #[arg(long)]
    pub grpc_addr: Option<SocketAddr>,
    /// HTTP listen address [default: 127.0.0.1:8080].
    #[arg(long)]
    pub http_addr: Option<SocketAddr>,
    /// Data directory [default: ./thermostat-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Alarm and scaling YAML files or folders.
    #[arg(long)]
    pub config: Vec<PathBuf>,
    /// Log format [default: text].
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Unary pushes processed at once; more are answered RESOURCE_EXHAUSTED [default: 1024].
    #[arg(long)]
    pub max_in_flight_requests: Option<usize>,
    /// StreamMetricData streams open at once; more are answered RESOURCE_EXHAUSTED [default: 256].
    #[arg(long)]
    pub max_streams: Option<usize>,
    /// Series held at most; a push that would create more is refused whole with
    /// RESOURCE_EXHAUSTED (existing series keep working) [default: 1000000].
    #[arg(long)]
    pub max_series: Option<usize>,
    /// Series held at most in any one namespace [default: no per-namespace limit].
    #[arg(long)]
    pub max_series_per_namespace: Option<usize>,
    /// Pushes waiting for the write-ahead log at most; more are answered RESOURCE_EXHAUSTED
    /// (nothing of them stored) [default: 1024].
    #[arg(long)]
    pub ingest_queue_capacity: Option<usize>,
    /// When acknowledged pushes reach the disk: always (a sync per push), batch (group commit,
    /// the default) or never (unsafe, for benchmarks).
    #[arg(long, value_parser = fsync_parser())]
    pub fsync: Option<FsyncMode>,
    /// In batch mode, how long to gather pushes before one sync, in milliseconds [default: 0].
    #[arg(long)]
    pub fsync_interval_ms: Option<u64>,
    /// Seconds between checkpoints (snapshot, then the log before it is deleted) [default: 300].
    #[arg(long)]
    pub checkpoint_interval_seconds: Option<u64>,
    /// At start, drop a corrupt write-ahead-log record and everything after it instead of
    /// refusing to start (what is dropped is logged).
    #[arg(long)]
    pub recover_truncate: bool,
    /// HTTP/2 streams a client may open at once on one connection (gRPC and HTTP)
    /// [default: 64].
    #[arg(long)]
    pub max_concurrent_streams_per_connection: Option<u32>,
    /// Seconds a request (or one message of a stream) may take to arrive whole; a slower one
    /// is cancelled [default: 30].
    #[arg(long)]
    pub request_body_timeout_seconds: Option<u64>,
    /// Bytes held for requests not yet received whole, all connections together; beyond it
    /// new requests get RESOURCE_EXHAUSTED / 503 [default: 268435456 (256 MiB)].
    #[arg(long)]
    pub max_buffered_request_bytes: Option<usize>,
    /// Seconds a StreamMetricData stream may stay without a message before it is closed and
    /// its slot freed [default: 60].
    #[arg(long)]
    pub stream_idle_timeout_seconds: Option<u64>,
    /// Seconds a connection with no open request may send nothing before it is closed
    /// [default: 30].
    #[arg(long)]
    pub idle_connection_timeout_seconds: Option<u64>,
    /// Memory of series keys and windows held at most, in bytes; a push that would create
    /// series beyond it is refused with RESOURCE_EXHAUSTED [default: 4294967296 (4 GiB)].
    #[arg(long)]
    pub max_series_bytes: Option<u64>,
    /// Cost of one statistics query at most: periods × statistics × series; a costlier query is
    /// answered 400 / INVALID_ARGUMENT [default: 200000].
    #[arg(long)]
    pub max_query_cost: Option<u64>,
    /// Days an alarm's history items are kept [default: 14, as CloudWatch].
    #[arg(long)]
    pub history_retention_days: Option<u64>,
    /// History items kept per alarm at most, the oldest deleted first [default: 1000].
    #[arg(long)]
    pub history_max_items_per_alarm: Option<usize>,
    /// Backups kept in <data dir>/backups/, the oldest deleted first [default: 3].
    #[arg(long)]
    pub backup_retention: Option<usize>,
    /// Accept a configuration that yields no alarms at all (without it, such a --config or
    /// reload is refused, so that an emptied folder cannot delete every alarm).
    #[arg(long)]
    pub allow_empty_config: bool,
    /// Seconds a cumulative OTLP stream (a counter or histogram of one sender) may send nothing
    /// before its state is forgotten; its next point then counts from zero [default: 3600].
    #[arg(long)]
    pub otlp_stream_idle_seconds: Option<u64>,
    /// Serve on a non-loopback address without `auth.tokens`: anyone who reaches the ports
    /// may push, read, change alarm states, reload and take backups. Logs a warning every
    /// minute. Never use it on a shared network.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// Cluster mode: the NATS JetStream servers, comma-separated (nats://HOST:4222,...); every
    /// node of one cluster gets the same list and --config (docs/cluster.md).
    #[arg(long, value_name = "URLS")]
    pub cluster: Option<String>,
    /// This node's name in the cluster (letters, digits, '-' and '_'), unique and kept across
    /// restarts.
    #[arg(long)]
    pub node_id: Option<String>,
    /// Replicas of the cluster's stream and buckets [default: the smaller of 3 and the
    /// number of NATS servers].
    #[arg(long)]
    pub cluster_replicas: Option<usize>,
    /// Partitions of a new cluster; an existing cluster keeps its own [default: 64].
    #[arg(long)]
    pub cluster_partitions: Option<u32>,
    /// A YAML file with any of the keys above (grpc_addr, http_addr, data_dir, config,
    /// log_format, max_in_flight_requests, max_streams, and every limit above by its flag's
    /// name with underscores; docs/limits.md lists them); flags win over it.
    #[arg(long)]
    pub settings: Option<PathBuf>,
}

impl ServeArgs {
    /// Merges flags over the settings file over the defaults.
    ///
    /// # Errors
    /// An unreadable or invalid settings file.
    pub fn resolve(&self) -> Result<Settings, SettingsError> {
        let file = match &self.settings {
            Some(p) => SettingsFile::load(p)?,
            None => SettingsFile::default(),
        };
        let mut settings = merge(self, file);
        settings.settings_file.clone_from(&self.settings);
        settings.validate()?;
        Ok(settings)
    }
}

impl Settings {
    /// The ingest crate's options: the data directory and how the log syncs and checkpoints.
    pub fn ingest_options(&self) -> thermostat_ingest::IngestOptions {
        thermostat_ingest::IngestOptions {
            recover_truncate: self.recover_truncate,
            fsync: self.fsync,
            fsync_interval: Duration::from_millis(self.fsync_interval_ms),
            queue_capacity: self.ingest_queue_capacity,
            checkpoint_interval: Duration::from_secs(self.checkpoint_interval_seconds),
            otlp_stream_idle: Duration::from_secs(self.otlp_stream_idle_seconds),
            ..thermostat_ingest::IngestOptions::new(&self.data_dir)
        }
    }

    /// The OTLP mapping's options.
    pub fn otlp_options(&self) -> thermostat_ingest::OtlpOptions {
        thermostat_ingest::OtlpOptions {
            resource_dimensions: self.otlp_resource_dimensions.clone(),
        }
    }

    /// The remote-write mapping's options.
    pub fn remote_write_options(&self) -> thermostat_ingest::RemoteWriteOptions {
        thermostat_ingest::RemoteWriteOptions {
            namespace_label: self.prometheus_namespace_label.clone(),
        }
    }

    /// The ingest API's admission, series and query limits.
    pub fn ingest_limits(&self) -> thermostat_ingest::Limits {
        thermostat_ingest::Limits {
            max_in_flight: self.max_in_flight_requests,
            max_streams: self.max_streams,
            max_series: self.max_series,
            max_series_per_namespace: self.max_series_per_namespace,
            max_series_bytes: usize::try_from(self.max_series_bytes).unwrap_or(usize::MAX),
            stream_idle_timeout: Duration::from_secs(self.stream_idle_timeout_seconds),
            max_query_cost: self.max_query_cost,
            ..thermostat_ingest::Limits::default()
        }
    }

    /// The connection limits both servers share (one budget of buffered request bytes).
    pub fn transport_options(&self) -> thermostat_transport::Options {
        thermostat_transport::Options {
            max_concurrent_streams_per_connection: self.max_concurrent_streams_per_connection,
            request_body_timeout: Duration::from_secs(self.request_body_timeout_seconds),
            idle_connection_timeout: Duration::from_secs(self.idle_connection_timeout_seconds),
            budget: thermostat_transport::Budget::new(self.max_buffered_request_bytes),
            tls: None,
        }
    }

    /// How much alarm history is kept.
    pub fn history_retention(&self) -> thermostat_alarms_runtime::HistoryRetention {
        thermostat_alarms_runtime::HistoryRetention {
            max_age_days: self.history_retention_days,
            max_items_per_alarm: self.history_max_items_per_alarm,
        }
    }

    /// Refuses limits that would make the server useless or unbounded: a zero where at least
    /// one is needed.
    ///
    /// # Errors
    /// The first setting that is out of range, by its key.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let positive: [(&str, u64); 14] = [
            ("otlp_stream_idle_seconds", self.otlp_stream_idle_seconds),
            ("max_in_flight_requests", self.max_in_flight_requests as u64),
            ("max_streams", self.max_streams as u64),
            ("max_series", self.max_series as u64),
            (
                "max_concurrent_streams_per_connection",
                u64::from(self.max_concurrent_streams_per_connection),
            ),
            (
                "request_body_timeout_seconds",
                self.request_body_timeout_seconds,
            ),
            (
                "max_buffered_request_bytes",
                self.max_buffered_request_bytes as u64,
            ),
            (
                "stream_idle_timeout_seconds",
                self.stream_idle_timeout_seconds,
            ),
            (
                "idle_connection_timeout_seconds",
                self.idle_connection_timeout_seconds,
            ),
            ("max_series_bytes", self.max_series_bytes),
            ("max_query_cost", self.max_query_cost),
            ("history_retention_days", self.history_retention_days),
            (
                "history_max_items_per_alarm",
                self.history_max_items_per_alarm as u64,
            ),
            ("backup_retention", self.backup_retention as u64),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(SettingsError::Zero(key));
            }
        }
        if let Some(0) = self.max_series_per_namespace {
            return Err(SettingsError::Zero("max_series_per_namespace"));
        }
        if let Some(c) = &self.cluster {
            let invalid = |key, rule: &str| {
                Err(SettingsError::Invalid {
                    key,
                    rule: rule.to_owned(),
                })
            };
            if c.servers.is_empty() {
                return invalid(
                    "cluster.servers",
                    "cluster mode needs NATS servers (--cluster nats://HOST:4222[,...])",
                );
            }
            if c.node_id.is_empty()
                || c.node_id.len() > 64
                || !c
                    .node_id
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
            {
                return invalid(
                    "cluster.node_id",
                    "cluster mode needs --node-id: 1 to 64 letters, digits, '-' or '_', unique in the cluster",
                );
            }
            if c.partitions == 0 || c.partitions > 1024 {
                return invalid("cluster.partitions", "must be 1 to 1024");
            }
            if c.replicas.is_some_and(|r| r == 0 || r > 5) {
                return invalid("cluster.replicas", "must be 1 to 5 (JetStream's limit)");
            }
            if c.lease.as_secs() < 2 || c.lease.as_secs() > 300 {
                return invalid("cluster.lease_seconds", "must be 2 to 300");
            }
            if c.snapshot_interval.as_secs() < 1 || c.snapshot_interval.as_secs() > 86_400 {
                return invalid("cluster.snapshot_seconds", "must be 1 to 86400");
            }
            if c.tls_client.as_ref().is_some_and(|(cert, key)| {
                cert.as_os_str().is_empty() || key.as_os_str().is_empty()
            }) {
                return invalid(
                    "cluster.tls_cert_file",
                    "tls_cert_file and tls_key_file go together",
                );
            }
            if c.token_env.as_ref().is_some_and(|v| v.is_empty()) {
                return invalid("cluster.token_env", "must name an environment variable");
            }
        }
        let label = &self.prometheus_namespace_label;
        if !thermostat_prometheus::is_label_name(label) || label == "__name__" {
            return Err(SettingsError::Invalid {
                key: "prometheus.namespace_label",
                rule: format!(
                    "must be a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*) other than __name__, got {}",
                    thermostat_metrics::validate::quote(label)
                ),
            });
        }
        Ok(())
    }
}

fn merge(args: &ServeArgs, file: SettingsFile) -> Settings {
    let d = Settings::default();
    Settings {
        grpc_addr: args.grpc_addr.or(file.grpc_addr).unwrap_or(d.grpc_addr),
        http_addr: args.http_addr.or(file.http_addr).unwrap_or(d.http_addr),
        data_dir: args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or(d.data_dir),
        config: if args.config.is_empty() {
            file.config.unwrap_or_default()
        } else {
            args.config.clone()
        },
        log_format: args.log_format.or(file.log_format).unwrap_or(d.log_format),
        max_in_flight_requests: args
            .max_in_flight_requests
            .or(file.max_in_flight_requests)
            .unwrap_or(d.max_in_flight_requests),
        max_streams: args
            .max_streams
            .or(file.max_streams)
            .unwrap_or(d.max_streams),
        max_series: args.max_series.or(file.max_series).unwrap_or(d.max_series),
        max_series_per_namespace: args
            .max_series_per_namespace
            .or(file.max_series_per_namespace),
        ingest_queue_capacity: args
            .ingest_queue_capacity
            .or(file.ingest_queue_capacity)
            .unwrap_or(d.ingest_queue_capacity)
            .max(1),
        fsync: args.fsync.or(file.fsync).unwrap_or(d.fsync),
        fsync_interval_ms: args
            .fsync_interval_ms
            .or(file.fsync_interval_ms)
            .unwrap_or(d.fsync_interval_ms),
        checkpoint_interval_seconds: args
            .checkpoint_interval_seconds
            .or(file.checkpoint_interval_seconds)
            .unwrap_or(d.checkpoint_interval_seconds)
            .max(1),
        recover_truncate: args.recover_truncate,
        max_concurrent_streams_per_connection: args
            .max_concurrent_streams_per_connection
            .or(file.max_concurrent_streams_per_connection)
            .unwrap_or(d.max_concurrent_streams_per_connection),
        request_body_timeout_seconds: args
            .request_body_timeout_seconds
            .or(file.request_body_timeout_seconds)
            .unwrap_or(d.request_body_timeout_seconds),
        max_buffered_request_bytes: args
            .max_buffered_request_bytes
            .or(file.max_buffered_request_bytes)
            .unwrap_or(d.max_buffered_request_bytes),
        stream_idle_timeout_seconds: args
            .stream_idle_timeout_seconds
            .or(file.stream_idle_timeout_seconds)
            .unwrap_or(d.stream_idle_timeout_seconds),
        idle_connection_timeout_seconds: args
            .idle_connection_timeout_seconds
            .or(file.idle_connection_timeout_seconds)
            .unwrap_or(d.idle_connection_timeout_seconds),
        max_series_bytes: args
            .max_series_bytes
            .or(file.max_series_bytes)
            .unwrap_or(d.max_series_bytes),
        max_query_cost: args
            .max_query_cost
            .or(file.max_query_cost)
            .unwrap_or(d.max_query_cost),
        history_retention_days: args
            .history_retention_days
            .or(file.history_retention_days)
            .unwrap_or(d.history_retention_days),
        history_max_items_per_alarm: args
            .history_max_items_per_alarm
            .or(file.history_max_items_per_alarm)
            .unwrap_or(d.history_max_items_per_alarm),
        backup_retention: args
            .backup_retention
            .or(file.backup_retention)
            .unwrap_or(d.backup_retention),
        allow_empty_config: args.allow_empty_config
            || file.allow_empty_config.unwrap_or(d.allow_empty_config),
        alarm_tick_loop: d.alarm_tick_loop,
        settings_file: None,
        auth: file.auth.unwrap_or_default(),
        tls: file.tls,
        insecure_no_auth: args.insecure_no_auth,
        otlp_resource_dimensions: file.otlp.map(|o| o.resource_dimensions).unwrap_or_default(),
        otlp_stream_idle_seconds: args
            .otlp_stream_idle_seconds
            .or(file.otlp_stream_idle_seconds)
            .unwrap_or(d.otlp_stream_idle_seconds),
        prometheus_namespace_label: file
            .prometheus
            .and_then(|p| p.namespace_label)
            .unwrap_or(d.prometheus_namespace_label),
        aws_api: file.aws_api.unwrap_or_default(),
        cluster: cluster(args, file.cluster.unwrap_or_default()),
    }
}

/// Cluster mode from the flags over `cluster:`: on when either names NATS servers.
fn cluster(args: &ServeArgs, file: ClusterSettings) -> Option<Cluster> {
    let servers: Vec<String> = match &args.cluster {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        None => file.servers,
    };
    if servers.is_empty() && args.node_id.is_none() && file.node_id.is_none() {
        return None;
    }
    Some(Cluster {
        servers,
        node_id: args.node_id.clone().or(file.node_id).unwrap_or_default(),
        replicas: args.cluster_replicas.or(file.replicas),
        partitions: args
            .cluster_partitions
            .or(file.partitions)
            .unwrap_or(thermostat_cluster::DEFAULT_PARTITIONS),
        lease: Duration::from_secs(file.lease_seconds.unwrap_or(9)),
        snapshot_interval: file.snapshot_seconds.map_or(
            thermostat_cluster::DEFAULT_SNAPSHOT_INTERVAL,
            Duration::from_secs,
        ),
        // One without the other stays visible as an empty path, refused by `validate`.
        tls_client: match (file.tls_cert_file.clone(), file.tls_key_file.clone()) {
            (None, None) => None,
            (cert, key) => Some((cert.unwrap_or_default(), key.unwrap_or_default())),
        },
        tls_ca_file: file.tls_ca_file,
        credentials_file: file.credentials_file,
        token_env: file.token_env,
    })
}

/// Warns when the settings file (which may name secrets' files and variables, and holds
/// token digests) can be read by users other than its owner and group.
pub fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o004 != 0
        {
            tracing::warn!(
                file = %path.display(),
                mode = format_args!("{:o}", meta.permissions().mode() & 0o777),
                "The settings file is readable by every user of this machine; restrict it (chmod 600 or 640)."
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_over_defaults() {
        let file = SettingsFile::parse(
            "grpc_addr: 127.0.0.1:9000\nhttp_addr: 127.0.0.1:9001\nlog_format: json\n",
        )
        .unwrap();
        let args = ServeArgs {
            http_addr: Some("127.0.0.1:7000".parse().unwrap()),
            ..ServeArgs::default()
        };
        let s = merge(&args, file);
        assert_eq!(s.grpc_addr.port(), 9000);
        assert_eq!(s.http_addr.port(), 7000);
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.data_dir, PathBuf::from("./thermostat-data"));
    }

    #[test]
    fn aws_api_has_defaults_and_reads_access_keys() {
        let s = merge(&ServeArgs::default(), SettingsFile::default());
        assert_eq!(s.aws_api.region, "us-east-1");
        assert_eq!(s.aws_api.account_id, "000000000000");
        assert!(s.aws_api.verify_signatures);
        assert!(s.aws_api.access_keys.is_empty());
        let file = SettingsFile::parse(
            "aws_api:\n  region: eu-west-1\n  access_keys:\n    - access_key_id: AKID1\n      secret_env: AWS_SECRET\n      role: agent\n",
        )
        .unwrap();
        let s = merge(&ServeArgs::default(), file);
        assert_eq!(s.aws_api.region, "eu-west-1");
        assert!(s.aws_api.verify_signatures);
        assert_eq!(s.aws_api.access_keys[0].access_key_id, "AKID1");
        assert_eq!(s.aws_api.access_keys[0].role, thermostat_auth::Role::Agent);
        let e = SettingsFile::parse("aws_api:\n  verify_signature: false\n").unwrap_err();
        assert!(e.contains("verify_signature"), "{e}");
    }

    #[test]
    fn cluster_mode_comes_from_flags_over_the_file_and_is_checked() {
        let none = merge(&ServeArgs::default(), SettingsFile::default());
        assert_eq!(none.cluster, None);
        let file = SettingsFile::parse(
            "cluster:\n  servers: [nats://a:4222]\n  node_id: from-file\n  replicas: 3\n  lease_seconds: 5\n  snapshot_seconds: 30\n",
        )
        .unwrap();
        let args = ServeArgs {
            cluster: Some("nats://x:4222, nats://y:4222".into()),
            node_id: Some("n1".into()),
            ..ServeArgs::default()
        };
        let s = merge(&args, file);
        s.validate().unwrap();
        let c = s.cluster.unwrap();
        assert_eq!(c.servers, ["nats://x:4222", "nats://y:4222"]);
        assert_eq!(
            (
                c.node_id.as_str(),
                c.replicas,
                c.partitions,
                c.lease.as_secs(),
                c.snapshot_interval.as_secs()
            ),
            ("n1", Some(3), 64, 5, 30)
        );
        for (args, key) in [
            (
                ServeArgs {
                    cluster: Some("nats://x:4222".into()),
                    ..ServeArgs::default()
                },
                "cluster.node_id",
            ),
            (
                ServeArgs {
                    node_id: Some("n1".into()),
                    ..ServeArgs::default()
                },
                "cluster.servers",
            ),
            (
                ServeArgs {
                    cluster: Some("nats://x:4222".into()),
                    node_id: Some("a.b".into()),
                    ..ServeArgs::default()
                },
                "cluster.node_id",
            ),
            (
                ServeArgs {
                    cluster: Some("nats://x:4222".into()),
                    node_id: Some("n1".into()),
                    cluster_partitions: Some(0),
                    ..ServeArgs::default()
                },
                "cluster.partitions",
            ),
        ] {
            let e = merge(&args, SettingsFile::default())
                .validate()
                .unwrap_err();
            assert!(e.to_string().starts_with(key), "{e}");
        }
        let file = SettingsFile::parse(
            "cluster:\n  servers: [tls://a:4222]\n  node_id: n1\n  tls_cert_file: c.pem\n",
        )
        .unwrap();
        let e = merge(&ServeArgs::default(), file).validate().unwrap_err();
        assert!(e.to_string().contains("tls_key_file"), "{e}");
        let file = SettingsFile::parse(
            "cluster:\n  servers: [nats://a:4222]\n  node_id: n1\n  snapshot_seconds: 0\n",
        )
        .unwrap();
        let e = merge(&ServeArgs::default(), file).validate().unwrap_err();
        assert!(e.to_string().starts_with("cluster.snapshot_seconds"), "{e}");
        let e = SettingsFile::parse("cluster:\n  node: x\n").unwrap_err();
        assert!(e.contains("node"), "{e}");
    }

    #[test]
    fn a_zero_limit_is_refused_by_its_key() {
        let file = SettingsFile::parse("max_streams: 0\n").unwrap();
        let e = merge(&ServeArgs::default(), file).validate().unwrap_err();
        assert!(e.to_string().contains("max_streams"), "{e}");
        let args = ServeArgs {
            stream_idle_timeout_seconds: Some(0),
            ..ServeArgs::default()
        };
        let e = merge(&args, SettingsFile::default())
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("stream_idle_timeout_seconds"), "{e}");
        merge(&ServeArgs::default(), SettingsFile::default())
            .validate()
            .unwrap();
    }

    #[test]
    fn hardening_keys_are_read_from_the_file() {
        let file = SettingsFile::parse(
            "max_buffered_request_bytes: 1000\nallow_empty_config: true\nbackup_retention: 5\n",
        )
        .unwrap();
        let s = merge(&ServeArgs::default(), file);
        assert_eq!(s.max_buffered_request_bytes, 1000);
        assert!(s.allow_empty_config);
        assert_eq!(s.backup_retention, 5);
        assert_eq!(s.stream_idle_timeout_seconds, 60);
    }

    #[test]
    fn settings_files_get_the_configuration_files_text_checks() {
        let e =
            SettingsFile::parse("max_streams: 10\n# a \0 comment\nmax_series: 0\n").unwrap_err();
        assert!(e.starts_with("2:5: U+0000 NUL is not allowed"), "{e}");
        let e = SettingsFile::parse("log_format: \u{1b}[31mjson\n").unwrap_err();
        assert!(e.starts_with("1:13: U+001B ESC"), "{e}");
        // A nesting bomb, flow and block style, is refused with its position.
        let flow = format!("config: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let e = SettingsFile::parse(&flow).unwrap_err();
        assert!(
            e.starts_with("1:264: maps and lists are nested more than 64"),
            "{e}"
        );
        let block = format!("config:\n  {}x\n", "- ".repeat(100_000));
        let e = SettingsFile::parse(&block).unwrap_err();
        assert!(e.starts_with("2:"), "{e}");
        assert!(e.contains("nested more than 64"), "{e}");
    }

    #[test]
    fn settings_file_errors_have_positions() {
        let e = SettingsFile::parse("grpc_addr: 127.0.0.1:9000\nlog_fromat: json\n").unwrap_err();
        assert!(e.starts_with("2:1:"), "{e}");
        assert!(e.contains("log_fromat"), "{e}");
        let e = SettingsFile::parse("log_format: xml\n").unwrap_err();
        assert!(e.contains("text") && e.contains("json"), "{e}");
    }
}
