//! The offline commands: `check`, `test`, `backtest`. Each returns its exit code; output goes
//! to the writers given (stdout and stderr in the binary, buffers in tests).

use std::io::Write;
use std::path::PathBuf;

use thermostat_alarms::backtest::{CsvLimits, load_csv, replay_ticks};
use thermostat_alarms::{StateValue, backtest, render_json, render_text, run_tests, timefmt};
use thermostat_metrics::Timestamp;
use thermostat_metrics::time::TimeError;
use thermostat_metrics::validate::quote;

use crate::app::config;

/// Output format of `backtest`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable.
    #[default]
    Text,
    /// One JSON document.
    Json,
}

/// Arguments of `backtest`.
#[derive(Clone, Debug, clap::Args)]
pub struct BacktestArgs {
    /// Alarm YAML files or folders.
    #[arg(long, required = true)]
    pub config: Vec<PathBuf>,
    /// Recorded data: CSV with header `timestamp,namespace,metric_name,dimensions,value`
    /// (read a line at a time: at most 64 KiB a line, 2,000,000 rows and 10,000 series).
    #[arg(long)]
    pub data: PathBuf,
    /// First evaluation time (RFC 3339 or Unix seconds) [default: the first data timestamp].
    #[arg(long, allow_hyphen_values = true)]
    pub from: Option<String>,
    /// Last evaluation time, included, at most 400 days after --from [default: the last data
    /// timestamp].
    #[arg(long, allow_hyphen_values = true)]
    pub to: Option<String>,
    /// State every alarm starts in.
    #[arg(long, value_parser = ["OK", "ALARM", "INSUFFICIENT_DATA"], default_value = "INSUFFICIENT_DATA")]
    pub initial_state: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `thermostat check FILES...`: 0 when valid, 1 with every error.
pub fn check(paths: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match config::load(paths) {
        Ok(config) => {
            let set = &config.alarms;
            let _ = writeln!(
                out,
                "ok: {} alarms, {} composite alarms, {} tests, {} scaling groups",
                set.alarms.len(),
                set.composites.len(),
                set.tests.len(),
                config.scaling.groups.len()
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

/// Recorded data loaded for a replay: the configuration, a store holding the CSV rows, and
/// the evaluation range.
struct Replay {
    config: config::Config,
    store: thermostat_metrics::Store,
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

/// Loads `--config`, the `--data` CSV (streamed, within [`CsvLimits`]) and the
/// `--from`/`--to` range (default: the data's first and last timestamps; at most
/// [`thermostat_alarms::backtest::MAX_REPLAY_DAYS`]).
fn load_replay(
    paths: &[PathBuf],
    data: &std::path::Path,
    from: &Option<String>,
    to: &Option<String>,
) -> Result<Replay, String> {
    let config = config::load(paths).map_err(|e| e.to_string())?;
    let given_from = from.as_deref().map(|s| flag_time("from", s)).transpose()?;
    let given_to = to.as_deref().map(|s| flag_time("to", s)).transpose()?;
    // A range given whole is checked before the data is read.
    if let (Some(from), Some(to)) = (given_from, given_to) {
        check_range(from, to)?;
    }
    let file =
        std::fs::File::open(data).map_err(|e| format!("{}: cannot read: {e}", data.display()))?;
    let loaded = load_csv(
        &config.alarms,
        std::io::BufReader::new(file),
        &CsvLimits::default(),
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
    Ok(Replay {
        config,
        store: loaded.store,
        from,
        to,
    })
}

/// `thermostat backtest ...`: replays alarms over recorded data.
pub fn backtest_cmd(args: &BacktestArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let mut fail = |msg: String| {
        let _ = writeln!(err, "{msg}");
        1
    };
    let initial: StateValue = match args.initial_state.parse() {
        Ok(s) => s,
        Err(e) => return fail(format!("--initial-state: {e}")),
    };
    let r = match load_replay(&args.config, &args.data, &args.from, &args.to) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let result = match backtest(&r.config.alarms, &r.store, r.from, r.to, Some(initial)) {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    let rendered = match args.format {
        Format::Json => render_json(&result),
        Format::Text => render_text(&result),
    };
    let _ = writeln!(out, "{}", rendered.trim_end());
    0
}

/// Arguments of `simulate`.
#[derive(Clone, Debug, clap::Args)]
pub struct SimulateArgs {
    /// Alarm and scaling YAML files or folders.
    #[arg(long, required = true)]
    pub config: Vec<PathBuf>,
    /// Recorded data: CSV with header `timestamp,namespace,metric_name,dimensions,value`
    /// (read a line at a time: at most 64 KiB a line, 2,000,000 rows and 10,000 series).
    #[arg(long)]
    pub data: PathBuf,
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
    let r = match load_replay(&args.config, &args.data, &args.from, &args.to) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "{e}");
            return 1;
        }
    };
    match thermostat_scaler::simulate(&r.config.alarms, &r.config.scaling, &r.store, r.from, r.to) {
        Ok(result) => {
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
    use thermostat_metrics::Clock as _;
    let result = match crate::app::backup::running_server(data_dir) {
        Some(http) => backup_via_server(&http, to),
        None => {
            crate::app::backup::backup_offline(data_dir, to, thermostat_metrics::SystemClock.now())
                .map(|m| (m, "read from the data directory (no server running)"))
        }
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

/// `thermostat restore --from FILE --data-dir D`.
pub fn restore_cmd(
    from: &std::path::Path,
    data_dir: &std::path::Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    match crate::app::backup::restore(from, data_dir) {
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
            let _ = writeln!(err, "error: {e:#}");
            1
        }
    }
}
