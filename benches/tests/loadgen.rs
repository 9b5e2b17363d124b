//! End to end: the real `thermostat` binary on port 0, the real `loadgen` binary against it,
//! and the samples loadgen had acknowledged compared with the server's own counter.
//!
//! The server binary is the one `cargo test` at the workspace root builds next to `loadgen`
//! (`target/<profile>/thermostat`); set `THERMOSTAT_BIN` to use another one.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a starting server may take to log its addresses (a deadline, not a sleep).
const SERVING_TIMEOUT: Duration = Duration::from_secs(60);

/// Log lines kept for failure messages.
type Log = Arc<Mutex<Vec<String>>>;

/// A running server, killed when dropped.
struct Server {
    child: Child,
    grpc: String,
    http: String,
    log: Log,
    _data_dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

fn server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("THERMOSTAT_BIN") {
        return p.into();
    }
    // `thermostat` is built into the same directory as `loadgen`.
    let path = PathBuf::from(env!("CARGO_BIN_EXE_loadgen")).with_file_name("thermostat");
    assert!(
        path.exists(),
        "the server binary {} is missing: run `cargo build` (or `cargo test`) at the workspace \
         root first, or set THERMOSTAT_BIN",
        path.display()
    );
    path
}

fn start_server(extra: &[&str]) -> Server {
    let data_dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(server_binary())
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data_dir.path())
        .args(["--log-format", "json"])
        .args(extra)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Every stderr line goes into the log (for failure messages) and to this thread, which
    // waits for the serving line: it carries the bound addresses. Reading continues after
    // that, so the server never blocks on a full pipe.
    let log: Log = Arc::default();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line.clone());
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + SERVING_TIMEOUT;
    let (grpc, http) = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let why = match e {
                    RecvTimeoutError::Timeout => "did not log \"Thermostat is serving.\" in time",
                    RecvTimeoutError::Disconnected => "exited before serving",
                };
                panic!(
                    "the server {why}; its log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let fields = &v["fields"];
        if fields["message"] == "Thermostat is serving." {
            let addr = |k: &str| fields[k].as_str().unwrap().to_owned();
            break (addr("grpc"), addr("http"));
        }
    };
    Server {
        child,
        grpc,
        http,
        log,
        _data_dir: data_dir,
    }
}

/// `GET /metrics` over a plain socket, returning the body.
fn scrape(http: &str) -> String {
    let mut s = TcpStream::connect(http).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

fn samples_total(metrics: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("thermostat_ingest_samples_total "))
        .unwrap_or_else(|| panic!("no thermostat_ingest_samples_total in:\n{metrics}"))
        .trim()
        .parse()
        .unwrap()
}

fn run_loadgen(server: &Server, args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("--target")
        .arg(format!("http://{}", server.grpc))
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "loadgen failed ({}):\nstdout: {stdout}\nstderr: {stderr}\nserver log:\n{}",
        out.status,
        server.log()
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

const SERIES: u64 = 50;
const SAMPLES: u64 = 20;

fn workload_args(connections: &'static str, extra: &[&'static str]) -> Vec<&'static str> {
    let mut args = vec![
        "--series",
        "50",
        "--samples-per-series",
        "20",
        "--batch",
        "100",
        "--connections",
        connections,
    ];
    args.extend_from_slice(extra);
    args
}

fn assert_counts_agree(server: &Server, report: &serde_json::Value) {
    let expected = SERIES * SAMPLES;
    assert_eq!(report["samples"], expected, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["requests"], expected / 100, "{report}");
    assert!(report["samples_per_second"].as_f64().unwrap() > 0.0);
    assert!(
        report["ack_latency_p99_ms"].as_f64().unwrap()
            >= report["ack_latency_p50_ms"].as_f64().unwrap()
    );
    let scraped = samples_total(&scrape(&server.http));
    assert_eq!(
        scraped,
        expected as f64,
        "server counted {scraped}, loadgen {report}; server log:\n{}",
        server.log()
    );
}

#[test]
fn unary_samples_acknowledged_equal_samples_counted_by_the_server() {
    let server = start_server(&[]);
    let report = run_loadgen(&server, &workload_args("2", &[]));
    assert_eq!(report["mode"], "unary");
    assert_counts_agree(&server, &report);
}

#[test]
fn stream_samples_acknowledged_equal_samples_counted_by_the_server() {
    let server = start_server(&[]);
    let report = run_loadgen(
        &server,
        &workload_args("2", &["--stream", "--in-flight", "4"]),
    );
    assert_eq!(report["mode"], "stream");
    assert_counts_agree(&server, &report);
}

/// With one stream allowed and three connections, streams are refused with
/// RESOURCE_EXHAUSTED whenever they overlap; loadgen must retry, never drop.
#[test]
fn refused_streams_are_retried_not_dropped() {
    let server = start_server(&["--max-streams", "1"]);
    let report = run_loadgen(
        &server,
        &workload_args("3", &["--stream", "--max-retries", "1000"]),
    );
    assert_counts_agree(&server, &report);
    let retries = report["retries"].as_u64().unwrap();
    let refused = scrape(&server.http)
        .lines()
        .find_map(|l| l.strip_prefix("thermostat_ingest_rejected_total{reason=\"overloaded\"} "))
        .map_or(0, |v| v.trim().parse::<u64>().unwrap());
    assert_eq!(retries, refused, "every refusal was retried once: {report}");
}
