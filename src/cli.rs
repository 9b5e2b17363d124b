//! Command-line interface.

use clap::{Parser, Subcommand};

use crate::app::{LogFormat, ServeArgs};

/// Thermostat: metrics, alarms and autoscaling in one program.
#[derive(Debug, Parser)]
#[command(name = "thermostat", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: gRPC ingest and query API, HTTP API, alarm evaluation.
    Serve(Box<ServeArgs>),
    /// Run the server with a demo configuration and simulated agents whose load spikes every
    /// five minutes: alarms fire, the group scales out and in, notifications are sent. Prints
    /// the dashboard URL and what happens; runs until Ctrl-C.
    Demo(crate::demo::DemoArgs),
    /// Validate alarm files: exit 0 when valid, 1 with every error as `file:line:column: path: message`.
    /// Environment variables, files and AWS credentials the configuration needs and this
    /// machine lacks (what `serve` would refuse) are warnings, at their positions.
    Check {
        /// Alarm YAML files or folders.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Treat the warnings as errors: exit 1 when a requirement is not met.
        #[arg(long)]
        strict: bool,
    },
    /// Run the `tests:` sections of alarm files: exit 1 on any failure.
    Test {
        /// Alarm YAML files or folders.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// Replay alarms over recorded data (a CSV file, or a running server's data with
    /// --server) and print the transitions; with --compare, how two rule sets differ on it.
    Backtest(crate::commands::BacktestArgs),
    /// Write a consistent backup of a data directory (made by the running server if one uses it).
    Backup {
        /// The data directory.
        #[arg(long)]
        data_dir: std::path::PathBuf,
        /// The backup file to write.
        #[arg(long)]
        to: std::path::PathBuf,
    },
    /// Restore a backup into an empty data directory.
    Restore {
        /// The backup file.
        #[arg(long)]
        from: std::path::PathBuf,
        /// The data directory to create (must be empty or missing).
        #[arg(long)]
        data_dir: std::path::PathBuf,
    },
    /// Print the alarms created through the CloudWatch API (metric and composite) as one alarm
    /// YAML file (the format `check` and `--config` read), to move them into git. Reads the
    /// data directory's state database: stop the server using it first.
    ExportAlarms {
        /// The data directory.
        #[arg(long)]
        data_dir: std::path::PathBuf,
    },
    /// Replay recorded data (CSV) through the alarms and the scaling groups (all simulated,
    /// notifications recorded, not sent) and print what would have happened.
    Simulate(crate::commands::SimulateArgs),
    /// Access tokens (docs/security.md).
    #[command(subcommand)]
    Token(TokenCommand),
}

/// `thermostat token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new random token, then the `auth.tokens` entry (with its SHA-256 digest, not
    /// the token) to add to the --settings file. The token is shown only this once.
    New {
        /// What the token may do: agent, viewer, operator or admin.
        #[arg(long)]
        role: thermostat_auth::Role,
        /// The entry's name, shown in logs and the audit trail [default: <role>-<8 hex digits>].
        #[arg(long)]
        name: Option<String>,
    },
}

/// Initialises logging (`RUST_LOG` filters; default `info`).
pub fn init_tracing(format: LogFormat) {
    init_tracing_with(format, "info");
}

/// Initialises logging (`RUST_LOG` filters; default `default_filter`, e.g. `warn`).
pub fn init_tracing_with(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org): logs
    // redirected to a file or a collector carry no escape codes.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
