//! The offline commands: `check`, `test`, `backtest`, `simulate`, `backup`, `restore`,
//! `export-alarms`. Each returns its exit code; output goes to the writers given (stdout and
//! stderr in the binary, buffers in tests).

use std::io::Write;
use std::path::PathBuf;

use thermostat_alarms::backtest::{
    CsvLimits, CsvTime, LoadedData, TimeUnit, count, load_csv, replay_ticks,
};
use thermostat_alarms::{StateValue, backtest, render_json, render_text, run_tests, timefmt};
use thermostat_metrics::Timestamp;
use thermostat_metrics::time::TimeError;
use thermostat_metrics::validate::quote;

use crate::config;

mod backtest_server;

/// Output format of `backtest`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable.
    #[default]
    Text,
    /// One JSON document.
    Json,
}

/// `--time-unit`: the unit of the CSV's numeric timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TimeUnitArg {
    /// Unix seconds.
    S,
    /// Unix milliseconds.
    Ms,
}

impl From<TimeUnitArg> for TimeUnit {
    fn from(u: TimeUnitArg) -> Self {
        match u {
            TimeUnitArg::S => TimeUnit::Seconds,
            TimeUnitArg::Ms => TimeUnit::Milliseconds,
        }
    }
}

/// Arguments of `backtest`.
#[derive(Clone, Debug, clap::Args)]
pub struct BacktestArgs {
    /// Alarm YAML files or folders.
    #[arg(long, required = true)]
    pub config: Vec<PathBuf>,
    /// Recorded data: CSV with header `timestamp,namespace,metric_name,dimensions,value`;
    /// timestamps RFC 3339, Unix seconds or Unix milliseconds, from 2000 to a year from now
    /// (read a line at a time: at most 64 KiB a line, 2,000,000 rows and 10,000 series).
    #[arg(long, required_unless_present = "server", conflicts_with = "server")]
    pub data: Option<PathBuf>,
    /// Replay over the data a running server holds instead of a CSV file, read through its
    /// HTTP API (`GET /api/v1/export/series`, the `read_metrics` permission): the URL of its
    /// HTTP listener, such as http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Bearer token for --server (a token with the `read_metrics` permission; ignored with
    /// --data); prefer the THERMOSTAT_TOKEN environment variable, which other users of the
    /// machine cannot see in the process list.
    #[arg(long, env = "THERMOSTAT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Unit of the CSV's numeric timestamps [default: told apart by magnitude: below 10^11
    /// seconds, else milliseconds; a file mixing both is refused].
    #[arg(long, value_enum)]
    pub time_unit: Option<TimeUnitArg>,
    /// First evaluation time (RFC 3339 or Unix seconds) [default: the first data timestamp;
    /// with --server, 24 hours before --to].
    #[arg(long, allow_hyphen_values = true)]
    pub from: Option<String>,
    /// Last evaluation time, included, at most 400 days after --from [default: the last data
    /// timestamp; with --server, now].
    #[arg(long, allow_hyphen_values = true)]
    pub to: Option<String>,
    /// State every alarm starts in.
    #[arg(long, value_parser = ["OK", "ALARM", "INSUFFICIENT_DATA"], default_value = "INSUFFICIENT_DATA")]
    pub initial_state: String,
    /// Also replay these (old) alarm files or folders over the same data, and print how the
    /// --config rules behave differently: per alarm, the transitions and the notification and
    /// scaling actions only one set makes. Exit codes as diff(1): 0 when they behave the
    /// same (or, without --exit-code, when they differ), 1 when they differ with
    /// --exit-code, 2 on an error.
    #[arg(long, value_name = "OLD_CONFIG")]
    pub compare: Vec<PathBuf>,
    /// With --compare: exit 1 when the two rule sets behave differently.
    #[arg(long, requires = "compare")]
    pub exit_code: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `thermostat check [--strict] FILES...`: 0 when valid, 1 with every error. What the
/// configuration needs from this machine and does not find (environment variables, files,
/// AWS credentials; [`config::unmet`]) is reported as warnings, one a line as
/// `file:line:column: path: warning: message`; with `strict` they are errors (exit 1).
pub fn check(paths: &[PathBuf], strict: bool, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match config::load(paths) {
        Ok(config) => {
            let unmet = config::unmet(&config.requirements, &|k| std::env::var_os(k));
            let level = if strict { "error" } else { "warning" };
            for u in &unmet {
                let r = &u.requirement;
                let consequence = if u.fatal {
                    " (thermostat serve refuses to start without it)"
                } else {
                    ""
                };
                let _ = writeln!(
                    err,
                    "{}:{}:{}: {}: {level}: {}{consequence}",
                    r.file, r.pos.line, r.pos.column, r.path, u.problem
                );
            }
            if strict && !unmet.is_empty() {
                let _ = writeln!(
                    err,
                    "check --strict: this machine does not meet {} of the configuration",
                    count(unmet.len(), "requirement", "requirements"),
                );
                return 1;
            }
            let set = &config.alarms;
            let warnings = if unmet.is_empty() {
                String::new()
            } else {
                format!(" ({})", count(unmet.len(), "warning", "warnings"))
            };
            let _ = writeln!(
                out,
                "ok: {}, {}, {}, {}{warnings}",
                count(set.alarms.len(), "alarm", "alarms"),
                count(set.composites.len(), "composite alarm", "composite alarms"),
                count(set.tests.len(), "test", "tests"),
                count(
                    config.scaling.groups.len(),
                    "scaling group",
                    "scaling groups"
                ),
            );
            0
        }
        Err(e) => {
            for line in e.lines() {
                let _ = writeln!(err, "{line}");
            }
            1
        }
    }
}

/// `thermostat test FILES...`: runs the `tests:` sections; 1 on any failure.
pub fn test(paths: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let set = match config::load(paths) {
        Ok(config) => config.alarms,
        Err(e) => {
            for line in e.lines() {
                let _ = writeln!(err, "{line}");
            }
            return 1;
        }
    };
    let outcomes = run_tests(&set);
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    for o in &outcomes {
        let _ = writeln!(out, "{o}");
    }
    let _ = writeln!(
        out,
        "\nalarm tests: {} passed; {failed} failed",
        outcomes.len() - failed
    );
    u8::from(failed > 0)
}

/// Recorded data loaded for a replay: the configuration, the CSV rows (in a store, with
/// their count per series), and the evaluation range.
struct Replay {
    config: config::Config,
    data: LoadedData,
    from: Timestamp,
    to: Timestamp,
}

/// A `--from`/`--to` value: RFC 3339 or Unix seconds, from year 0000 to 9999.
fn flag_time(flag: &str, s: &str) -> Result<Timestamp, String> {
    timefmt::parse_time_checked(s, 1000).map_err(|e| match e {
        TimeError::OutOfRange => format!("--{flag}: {e} (got {})", quote(s)),
        _ => format!(
            "--{flag}: must be an RFC 3339 time or Unix seconds (got {})",
            quote(s)
        ),
    })
}

/// Checks a replay's range as `backtest` and `simulate` will ([`replay_ticks`]), naming the
/// flag at fault.
fn check_range(from: Timestamp, to: Timestamp) -> Result<(), String> {
    match replay_ticks(from, to, 1) {
        Ok(_) => Ok(()),
        Err(thermostat_alarms::Error::Range { field, message }) => {
            Err(format!("--{field}: {message}"))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Loads `--config`, the `--data` CSV (streamed, within [`CsvLimits`], timestamps in
/// `unit` or told apart by magnitude, from 2000 to a year from now) and the `--from`/`--to`
/// range (default: the data's first and last timestamps; at most
/// [`thermostat_alarms::backtest::MAX_REPLAY_DAYS`]).
fn load_replay(
    paths: &[PathBuf],
    data: &std::path::Path,
    unit: Option<TimeUnitArg>,
    from: &Option<String>,
    to: &Option<String>,
) -> Result<Replay, String> {
    let config = config::load(paths).map_err(|e| e.to_string())?;
    let (data, from, to) = load_csv_range(&config.alarms, data, unit, from, to)?;
    Ok(Replay {
        config,
        data,
        from,
        to,
    })
}

/// The `--data` CSV read for `set` (see [`load_replay`]) and the range to replay.
fn load_csv_range(
    set: &thermostat_alarms::model::AlarmSet,
    data: &std::path::Path,
    unit: Option<TimeUnitArg>,
    from: &Option<String>,
    to: &Option<String>,
) -> Result<(LoadedData, Timestamp, Timestamp), String> {
    use thermostat_metrics::Clock as _;
    let given_from = from.as_deref().map(|s| flag_time("from", s)).transpose()?;
    let given_to = to.as_deref().map(|s| flag_time("to", s)).transpose()?;
    // A range given whole is checked before the data is read.
    if let (Some(from), Some(to)) = (given_from, given_to) {
        check_range(from, to)?;
    }
    let file =
        std::fs::File::open(data).map_err(|e| format!("{}: cannot read: {e}", data.display()))?;
    let time = CsvTime::plausible(unit.map(Into::into), thermostat_metrics::SystemClock.now());
    let loaded = load_csv(
        set,
        std::io::BufReader::new(file),
        &CsvLimits::default(),
        &time,
    )
    .map_err(|errors| {
        errors
            .iter()
            .map(|e| format!("{}: {e}", data.display()))
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let or_data = |flag: &str, given: Option<Timestamp>, default: Option<Timestamp>| {
        given.or(default).ok_or_else(|| {
            format!("--{flag}: the data file has no rows, so --{flag} must be given")
        })
    };
    let from = or_data("from", given_from, loaded.first)?;
    let to = or_data("to", given_to, loaded.last)?;
    check_range(from, to).map_err(|e| {
        if given_from.is_none() || given_to.is_none() {
            format!("{e} (without --from and --to, the range is the data's first to last row)")
        } else {
            e
        }
    })?;
    Ok((loaded, from, to))
}

/// `thermostat backtest ...`: replays alarms over recorded data (a CSV file or a running
/// server's store), or two rule sets over the same data with `--compare`. Exit codes: 0, or
/// 1 on an error; with `--compare` those of diff(1) (0 the same or `--exit-code` not given,
/// 1 different with `--exit-code`, 2 an error).
pub fn backtest_cmd(args: &BacktestArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let comparing = !args.compare.is_empty();
    match run_backtest(args) {
        Ok(Outcome::One(rendered)) => {
            let _ = writeln!(out, "{}", rendered.trim_end());
            0
        }
        Ok(Outcome::Diff {
            rendered,
            identical,
        }) => {
            let _ = writeln!(out, "{}", rendered.trim_end());
            u8::from(args.exit_code && !identical)
        }
        Err(e) => {
            let _ = writeln!(err, "{e}");
            if comparing { 2 } else { 1 }
        }
    }
}

/// What `backtest` prints.
enum Outcome {
    /// One replay.
    One(String),
    /// Two compared.
    Diff { rendered: String, identical: bool },
}

fn run_backtest(args: &BacktestArgs) -> Result<Outcome, String> {
    use thermostat_alarms::backtest::{compare, render_diff_json, render_diff_text};
    let initial: StateValue = args
        .initial_state
        .parse()
        .map_err(|e| format!("--initial-state: {e}"))?;
    let new = config::load(&args.config)
        .map_err(|e| e.to_string())?
        .alarms;
    let old = if args.compare.is_empty() {
        None
    } else {
        Some(
            config::load(&args.compare)
                .map_err(|e| e.to_string())?
                .alarms,
        )
    };
    // The data both sets are replayed over: a CSV is read for every alarm of both (a row's
    // resolution and unit follow the alarms that watch its metric).
    let (store, rows, from, to) = match (&args.data, &args.server) {
        (Some(path), _) => {
            let mut both = new.clone();
            if let Some(old) = &old {
                both.alarms.extend(old.alarms.iter().cloned());
            }
            let (data, from, to) =
                load_csv_range(&both, path, args.time_unit, &args.from, &args.to)?;
            (data.store, Some(data.series_rows), from, to)
        }
        (None, Some(url)) => {
            let (from, to) = server_range(&args.from, &args.to)?;
            let sets: Vec<&thermostat_alarms::model::AlarmSet> =
                std::iter::once(&new).chain(old.as_ref()).collect();
            let server = backtest_server::Server {
                url,
                token: args.token.as_deref().filter(|t| !t.is_empty()),
            };
            let store = backtest_server::fetch(&server, &sets, from, to)?;
            (store, None, from, to)
        }
        (None, None) => return Err("give --data FILE or --server URL".to_owned()),
    };
    let replay = |set: &thermostat_alarms::model::AlarmSet| {
        let mut r = backtest(set, &store, from, to, Some(initial)).map_err(|e| e.to_string())?;
        if let Some(rows) = &rows {
            for a in &mut r.alarms {
                if let Some(key) = &a.series {
                    a.data_rows = Some(rows.get(key).copied().unwrap_or(0));
                }
            }
        }
        Ok::<_, String>(r)
    };
    let new_result = replay(&new)?;
    let Some(old) = old else {
        return Ok(Outcome::One(match args.format {
            Format::Json => render_json(&new_result),
            Format::Text => render_text(&new_result),
        }));
    };
    let diff = compare(&replay(&old)?, &new_result);
    Ok(Outcome::Diff {
        rendered: match args.format {
            Format::Json => render_diff_json(&diff),
            Format::Text => render_diff_text(&diff),
        },
        identical: diff.is_identical(),
    })
}

/// `--from`/`--to` of a back-test against a server: by default the 24 hours up to now.
fn server_range(
    from: &Option<String>,
    to: &Option<String>,
) -> Result<(Timestamp, Timestamp), String> {
    use thermostat_metrics::Clock as _;
    let to = match to {
        Some(s) => flag_time("to", s)?,
        None => thermostat_metrics::SystemClock.now(),
    };
    let from = match from {
        Some(s) => flag_time("from", s)?,
        None => to.sub_millis(thermostat_metrics::time::DAY_MS),
    };
    check_range(from, to)?;
    Ok((from, to))
}

/// Arguments of `simulate`.
#[derive(Clone, Debug, clap::Args)]
pub struct SimulateArgs {
    /// Alarm and scaling YAML files or folders.
    #[arg(long, required = true)]
    pub config: Vec<PathBuf>,
    /// Recorded data: CSV with header `timestamp,namespace,metric_name,dimensions,value`;
    /// timestamps RFC 3339, Unix seconds or Unix milliseconds, from 2000 to a year from now
    /// (read a line at a time: at most 64 KiB a line, 2,000,000 rows and 10,000 series).
    #[arg(long)]
    pub data: PathBuf,
    /// Unit of the CSV's numeric timestamps [default: told apart by magnitude: below 10^11
    /// seconds, else milliseconds; a file mixing both is refused].
    #[arg(long, value_enum)]
    pub time_unit: Option<TimeUnitArg>,
    /// First evaluation time (RFC 3339 or Unix seconds) [default: the first data timestamp].
    #[arg(long, allow_hyphen_values = true)]
    pub from: Option<String>,
    /// Last evaluation time, included, at most 400 days after --from [default: the last data
    /// timestamp].
    #[arg(long, allow_hyphen_values = true)]
    pub to: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `thermostat simulate ...`: replays recorded data through the alarms and the scaling groups
/// (every backend simulated, notifications recorded instead of sent).
pub fn simulate_cmd(args: &SimulateArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let r = match load_replay(
        &args.config,
        &args.data,
        args.time_unit,
        &args.from,
        &args.to,
    ) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "{e}");
            return 1;
        }
    };
    let simulated = thermostat_scaler::simulate(
        &r.config.alarms,
        &r.config.scaling,
        &r.data.store,
        r.from,
        r.to,
    );
    match simulated {
        Ok(mut result) => {
            r.data.count_rows(&mut result.alarms);
            let rendered = match args.format {
                Format::Json => thermostat_scaler::render_json(&result),
                Format::Text => thermostat_scaler::render_text(&result),
            };
            let _ = writeln!(out, "{}", rendered.trim_end());
            0
        }
        Err(e) => {
            let _ = writeln!(err, "{e}");
            1
        }
    }
}

/// `thermostat backup --data-dir D --to FILE`.
pub fn backup_cmd(
    data_dir: &std::path::Path,
    to: &std::path::Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let result = match thermostat_backup::running_server(data_dir) {
        Some(http) => backup_via_server(&http, to),
        None => backup_offline(data_dir, to)
            .map(|m| (m, "read from the data directory (no server running)")),
    };
    match result {
        Ok((manifest, how)) => {
            let _ = writeln!(
                out,
                "wrote {} ({} series; {how})",
                to.display(),
                manifest["series"]
            );
            0
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e:#}");
            1
        }
    }
}

/// Backs up a data directory no server is using: loads it like a start-up would (into a
/// store of the server's `STORE_SHARDS` shards), then writes the backup.
fn backup_offline(
    data_dir: &std::path::Path,
    to: &std::path::Path,
) -> anyhow::Result<serde_json::Value> {
    use thermostat_metrics::Clock as _;
    let parts = crate::app::backup::DataDirParts {
        store: std::sync::Arc::new(thermostat_ingest::read_data_dir(
            data_dir,
            thermostat_ingest::STORE_SHARDS,
        )?),
        db: std::sync::Arc::new(thermostat_statedb::StateDb::open(data_dir)?),
        outbox: thermostat_notify::Outbox::open(data_dir)?,
        audit: std::sync::Arc::new(thermostat_audit::AuditLog::open(data_dir)?),
    };
    let now = thermostat_metrics::SystemClock.now();
    let time = thermostat_backup::BackupTime {
        unix_millis: now.as_millis(),
        rfc3339: now.to_rfc3339(),
    };
    Ok(thermostat_backup::write_backup(&parts, to, &time)?.to_json())
}

fn backup_via_server(
    http: &str,
    to: &std::path::Path,
) -> anyhow::Result<(serde_json::Value, &'static str)> {
    use std::io::{Read as _, Write as _};
    // A plain HTTP/1.1 request to the loopback admin endpoint: the CLI needs no HTTP client.
    let mut s = std::net::TcpStream::connect(http)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(600)))?;
    write!(
        s,
        "POST /api/v1/admin/backup HTTP/1.1\r\nHost: {http}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    if !head.starts_with("HTTP/1.1 200") {
        anyhow::bail!("the server refused the backup: {}", body.trim());
    }
    let manifest: serde_json::Value = serde_json::from_str(body.trim())?;
    let made = manifest["path"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("the server named no backup file"))?;
    if std::fs::rename(made, to).is_err() {
        std::fs::copy(made, to)?;
        std::fs::remove_file(made)?;
    }
    Ok((manifest, "made by the running server"))
}

/// `thermostat export-alarms --data-dir D`: the API-created alarms as one alarm file on `out`.
pub fn export_alarms_cmd(
    data_dir: &std::path::Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    match crate::export_alarms::export(data_dir) {
        Ok(yaml) => u8::from(out.write_all(yaml.as_bytes()).is_err()),
        Err(e) => {
            let _ = writeln!(err, "error: {e:#}");
            1
        }
    }
}

/// `thermostat restore --from FILE --data-dir D`.
pub fn restore_cmd(
    from: &std::path::Path,
    data_dir: &std::path::Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let restored = thermostat_backup::restore(from, data_dir, |dir| {
        crate::app::backup::check_restored(dir, thermostat_ingest::STORE_SHARDS)
    });
    match restored {
        Ok(m) => {
            let _ = writeln!(
                out,
                "restored {} series taken at {} into {}",
                m["series"],
                m["created"].as_str().unwrap_or("?"),
                data_dir.display()
            );
            0
        }
        Err(e) => {
            let _ = writeln!(err, "error: {}", e.detail());
            1
        }
    }
}

/// `thermostat token new --role R [--name N]`: a new token on the first line, then the YAML
/// entry to add under `auth.tokens`.
pub fn token_new(role: thermostat_auth::Role, name: Option<&str>, out: &mut dyn Write) -> u8 {
    let token = thermostat_auth::new_token();
    let name = name.map_or_else(
        || format!("{role}-{}", &thermostat_auth::digest_hex(&token)[..8]),
        str::to_owned,
    );
    let entry = thermostat_auth::yaml_entry(&name, role, &token);
    let written = writeln!(
        out,
        "{token}\n\n# The token above is shown only now: give it to the client (as a Bearer token).\n\
         # Add this entry under `auth.tokens` in the --settings file, then reload (SIGHUP):\n{entry}"
    );
    u8::from(written.is_err())
}

/// The audit event of a reload by SIGHUP: principal `SIGHUP`, no role, the files' digests.
fn sighup_event(
    result: &Result<thermostat_dashboards::alarms::ReloadReport, crate::config::LoadError>,
) -> thermostat_auth::AuditEvent {
    let (parameters, outcome, error) = match result {
        Ok(report) => (
            serde_json::json!({ "files": report.files }),
            thermostat_auth::Outcome::Success,
            None,
        ),
        Err(e) => (
            serde_json::Value::Null,
            thermostat_auth::Outcome::Failure,
            Some(e.to_string()),
        ),
    };
    thermostat_auth::AuditEvent {
        time: jiff::Timestamp::now(),
        request_id: String::new(),
        principal: "SIGHUP".into(),
        role: None,
        source_ip: None,
        user_agent: None,
        action: "reload".into(),
        target: None,
        parameters,
        outcome,
        error,
    }
}

/// Runs `serve` until SIGINT/SIGTERM.
///
/// # Errors
/// As [`start`] and [`Running::wait`].
pub async fn serve(settings: crate::app::Settings) -> Result<(), crate::app::Error> {
    // Signals are caught from before the start, so one that arrives while starting stops the
    // server cleanly once it is up instead of killing it half-started.
    let stop_signal = crate::process::shutdown_signal();
    #[cfg(unix)]
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    let running = crate::app::start(settings).await?;
    let token = running.shutdown_token();
    #[cfg(unix)]
    {
        let reloader = std::sync::Arc::clone(&running.reloader);
        let audit = std::sync::Arc::clone(&running.audit);
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
                        let (reloader, audit) = (std::sync::Arc::clone(&reloader), std::sync::Arc::clone(&audit));
                        let reloaded = tokio::task::spawn_blocking(move || {
                            let result = reloader.reload_from_disk();
                            let event = sighup_event(&result);
                            if let Err(e) = audit.append_event(&event) {
                                tracing::error!(error = %e, "Cannot record the reload in the audit trail.");
                            }
                            result
                        });
                        match reloaded.await {
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
