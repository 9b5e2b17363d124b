//! `thermostat demo`: the whole loop in one command. It starts the server with the
//! configuration of `examples/demo.yaml` (embedded), a temporary data directory and a webhook
//! receiver of its own, then runs simulated agents that push CPU and latency for a fleet
//! whose load spikes every five minutes, over real gRPC, and prints what the server does:
//! alarm state changes, scaling activities, held policies and notification deliveries.
//!
//! # Layout
//! - [`model`]: the simulated fleet (load curve, CPU, latency), pure.
//! - [`driver`]: [`Demo`], the agents and the observer, stepped by any clock.
//! - [`summary`]: the events and their lines.
//! - [`receiver`]: the webhook receiver.
//! - this file: the real-time runner ([`run`]) and the configuration ([`write_config`]).

pub mod driver;
pub mod model;
pub mod receiver;
pub mod summary;

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use thermostat_metrics::{Clock as _, SystemClock};
use tokio_util::sync::CancellationToken;

pub use driver::Demo;
pub use summary::{Event, Style};

use crate::app::{self, LogFormat, Settings};

/// The demo's configuration, `examples/demo.yaml`.
pub const CONFIG: &str = include_str!("../../examples/demo.yaml");
/// The webhook URL written in `examples/demo.yaml`, replaced by the receiver's.
pub const WEBHOOK_PLACEHOLDER: &str = "http://127.0.0.1:9000/demo-notifications";
/// How often the real-time runner steps the agents.
const STEP_INTERVAL: Duration = Duration::from_secs(1);

/// `demo`'s flags.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct DemoArgs {
    /// gRPC listen address [default: 127.0.0.1:4317].
    #[arg(long)]
    pub grpc_addr: Option<SocketAddr>,
    /// HTTP listen address, where the dashboard is [default: 127.0.0.1:8080].
    #[arg(long)]
    pub http_addr: Option<SocketAddr>,
    /// Data directory to keep [default: a temporary one, removed on exit].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Send the notifications to this URL (CloudWatch's JSON, POSTed) instead of the demo's
    /// own receiver.
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// Log format; logs go to stderr, warnings only unless RUST_LOG says otherwise
    /// [default: text].
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
}

/// The demo's configuration with its webhook pointed at `webhook_url`.
pub fn config_text(webhook_url: &str) -> String {
    CONFIG.replace(WEBHOOK_PLACEHOLDER, webhook_url)
}

/// Writes the demo's configuration, its webhook pointed at `webhook_url`, as
/// `<dir>/demo.yaml` and returns its path (for [`Settings::config`]).
///
/// # Errors
/// The file cannot be written.
pub fn write_config(dir: &Path, webhook_url: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("demo.yaml");
    std::fs::write(&path, config_text(webhook_url))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Writes lines to stdout; a closed stdout (a pipe whose reader went away) is ignored.
#[derive(Debug)]
struct Out {
    terminal: bool,
    no_color: bool,
}

impl Out {
    fn stdout() -> Out {
        Out {
            terminal: std::io::stdout().is_terminal(),
            no_color: std::env::var_os("NO_COLOR").is_some(),
        }
    }

    /// The style of the next line: on a terminal, its width now (it may have been resized).
    fn style(&self) -> Style {
        let columns = self.terminal.then(terminal_columns).flatten();
        Style::for_output(self.terminal, self.no_color, columns)
    }

    fn line(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
}

/// The width of the terminal on stdout: `COLUMNS` when set, else the terminal's own.
fn terminal_columns() -> Option<usize> {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse().ok())
        .or_else(|| {
            rustix::termios::tcgetwinsize(std::io::stdout())
                .ok()
                .map(|w| usize::from(w.ws_col))
        })
        .filter(|c| *c > 0)
}

/// Runs the demo in real time until SIGINT or SIGTERM, then stops the server in order and
/// removes the temporary directory.
///
/// # Errors
/// The server cannot start (an address in use, an unusable data directory), or the final
/// snapshot cannot be written.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    // Ctrl-C is caught from the first moment: one pressed while the demo starts stops it
    // cleanly once it is up (its temporary directory removed) instead of killing it
    // half-started.
    let stop_signal = crate::process::shutdown_signal();
    let out = Out::stdout();
    let scratch = tempfile::Builder::new()
        .prefix("thermostat-demo-")
        .tempdir()
        .context("cannot create the demo's temporary directory")?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| scratch.path().join("data"));
    let stop_receiver = CancellationToken::new();
    let (receiver, hook) = match &args.webhook_url {
        Some(url) => (None, url.clone()),
        None => {
            let r = receiver::Receiver::start(stop_receiver.clone()).await?;
            let url = r.url.clone();
            (Some(r), url)
        }
    };
    let defaults = Settings::default();
    let settings = Settings {
        grpc_addr: args.grpc_addr.unwrap_or(defaults.grpc_addr),
        http_addr: args.http_addr.unwrap_or(defaults.http_addr),
        data_dir: data_dir.clone(),
        config: vec![write_config(scratch.path(), &hook)?],
        log_format: args.log_format.unwrap_or_default(),
        ..defaults
    };
    let running = app::start(settings).await?;
    let token = running.shutdown_token();
    {
        let token = token.clone();
        tokio::spawn(async move {
            stop_signal.await;
            token.cancel();
        });
    }
    let http = running.http_addr;
    out.line(
        "Thermostat demo: a simulated web fleet, its alarms and its scaling group, in real time.",
    );
    out.line(&format!("  Dashboard:      http://{http}/"));
    out.line(&format!(
        "  HTTP API:       http://{http}/api/v1/alarms, /api/v1/groups/{}, /api/v1/notifications",
        driver::GROUP
    ));
    out.line(&format!("  gRPC ingest:    {}", running.grpc_addr));
    out.line(&format!(
        "  Data directory: {}{}",
        data_dir.display(),
        if args.data_dir.is_some() {
            ""
        } else {
            " (temporary, removed on exit)"
        }
    ));
    out.line(&format!(
        "  Notifications:  webhook to {hook}{}",
        if receiver.is_some() {
            " (the demo's own receiver)"
        } else {
            ""
        }
    ));
    out.line("The load spikes 10 s from now and every 5 minutes after: within a minute CPU and latency alarm and the group scales out, the alarms recover, and from about two minutes on the group scales in, back to its minimum after about four. Ctrl-C stops.");

    let clock = SystemClock;
    match Demo::connect(&running, clock.now()).await {
        Ok(mut demo) => {
            let mut tick = tokio::time::interval(STEP_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tick.tick() => match demo.step(clock.now()).await {
                        Ok(events) => {
                            let style = out.style();
                            for e in events {
                                out.line(&e.render(style));
                            }
                        }
                        Err(e) => tracing::warn!(error = %format!("{e:#}"), "The demo's agents could not push."),
                    }
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "The demo's agents could not connect.");
            token.cancel();
        }
    }
    out.line("Stopping...");
    let result = running.wait().await;
    stop_receiver.cancel();
    if let Some(r) = receiver {
        r.stopped().await;
    }
    let scratch_path = scratch.path().to_owned();
    match scratch.close() {
        Ok(()) if args.data_dir.is_none() => out.line(&format!(
            "Stopped; removed the temporary data directory {}.",
            scratch_path.display()
        )),
        Ok(()) => out.line(&format!(
            "Stopped; the data stay in {}.",
            data_dir.display()
        )),
        Err(e) => out.line(&format!(
            "Stopped, but could not remove {}: {e}",
            scratch_path.display()
        )),
    }
    Ok(result?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_configuration_is_valid_and_its_webhook_can_be_pointed_anywhere() {
        assert_eq!(CONFIG.matches(WEBHOOK_PLACEHOLDER).count(), 1);
        let text = config_text("http://127.0.0.1:1/hook");
        assert!(!text.contains(WEBHOOK_PLACEHOLDER));
        let config = crate::config::validate(&[("demo.yaml".to_owned(), text)]).unwrap();
        let group = config.scaling.group(driver::GROUP).unwrap();
        assert!(matches!(
            group.backend,
            thermostat_scaler::Backend::Simulated
        ));
        for name in [
            "demo-cpu-high",
            "demo-cpu-low",
            "demo-latency-p99",
            "demo-latency-p50",
        ] {
            let alarm = config.alarms.alarm(name).unwrap();
            assert_eq!(alarm.period.as_secs(), 10, "{name} is a 10-second alarm");
        }
    }
}
