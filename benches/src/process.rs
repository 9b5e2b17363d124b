//! Servers the benchmark binaries run as child processes: killed and reaped when dropped, and
//! `thermostat serve` started on free loopback ports.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// A child process killed and reaped on drop.
#[derive(Debug)]
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Killed {
    /// The process id, as `/proc` spells it.
    pub fn pid(&self) -> String {
        self.0.id().to_string()
    }
}

/// The last lines a server wrote on stderr, for error messages.
pub type Log = Arc<Mutex<VecDeque<String>>>;

/// Lines kept in a [`Log`].
const LOG_LINES: usize = 200;

/// The lines of `log`, one per line.
pub fn log_text(log: &Log) -> String {
    log.lock()
        .map(|l| l.iter().cloned().collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

/// A running `thermostat serve`.
#[derive(Debug)]
pub struct Thermostat {
    /// The process.
    pub process: Killed,
    /// Its gRPC address (`127.0.0.1:port`).
    pub grpc: String,
    /// Its HTTP address.
    pub http: String,
    /// The end of its log.
    pub log: Log,
}

/// Starts `thermostat serve` with its data in `data` and `extra` flags, on free loopback
/// ports, and waits (at most `timeout`) for its "Thermostat is serving." line, which carries
/// the bound addresses.
///
/// # Errors
/// The server cannot be started, exits, or does not serve within `timeout`; the error holds
/// its log.
pub fn start_thermostat<S: AsRef<OsStr>>(
    bin: &Path,
    data: &Path,
    extra: impl IntoIterator<Item = S>,
    timeout: Duration,
) -> anyhow::Result<Thermostat> {
    let mut process = Killed(
        Command::new(bin)
            .args([
                "serve",
                "--grpc-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(data)
            .args(["--log-format", "json"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?,
    );
    let stderr = process
        .0
        .stderr
        .take()
        .context("the server's stderr is not piped")?;
    let log: Log = Arc::default();
    let (tx, rx) = mpsc::channel();
    let sink = Arc::clone(&log);
    // Keeps reading after the serving line, so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(mut l) = sink.lock() {
                if l.len() == LOG_LINES {
                    l.pop_front();
                }
                l.push_back(line.clone());
            }
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + timeout;
    loop {
        let line = match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => bail!(
                "Thermostat did not log \"Thermostat is serving.\" within {timeout:?}; its log:\n{}",
                log_text(&log)
            ),
            Err(RecvTimeoutError::Disconnected) => bail!(
                "Thermostat exited before serving; its log:\n{}",
                log_text(&log)
            ),
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let fields = &v["fields"];
        if fields["message"] == "Thermostat is serving." {
            let addr = |k: &str| fields[k].as_str().map(str::to_owned);
            let (Some(grpc), Some(http)) = (addr("grpc"), addr("http")) else {
                bail!("the serving line has no addresses: {line}");
            };
            return Ok(Thermostat {
                process,
                grpc,
                http,
                log,
            });
        }
    }
}
