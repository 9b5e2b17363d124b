//! A real `thermostat` server for the end-to-end tests that push to one (`loadgen.rs`,
//! `open_loop.rs`), included by path so the other tests do not carry it unused.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use thermostat_benches::process::{Killed, Log, log_text, start_thermostat};

/// How long a starting server may take to log its addresses (a deadline, not a sleep).
const SERVING_TIMEOUT: Duration = Duration::from_secs(60);

/// A running server (killed when dropped) and its data directory (removed after it).
pub(crate) struct Server {
    _process: Killed,
    pub(crate) grpc: String,
    pub(crate) http: String,
    log: Log,
    _data_dir: tempfile::TempDir,
}

impl Server {
    /// A server on port 0 with `extra` flags, once it serves.
    pub(crate) fn start(extra: &[&str]) -> Server {
        let data_dir = tempfile::tempdir().unwrap();
        let t = start_thermostat(
            &crate::common::thermostat_bin(),
            data_dir.path(),
            extra,
            SERVING_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
        Server {
            _process: t.process,
            grpc: t.grpc,
            http: t.http,
            log: t.log,
            _data_dir: data_dir,
        }
    }

    /// What the server has logged.
    pub(crate) fn log(&self) -> String {
        log_text(&self.log)
    }

    /// `GET /metrics` over a plain socket: the whole response.
    pub(crate) fn scrape(&self) -> String {
        let mut s = TcpStream::connect(&self.http).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.http
        )
        .unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        response
    }
}
