//! The real `thermostat` binary as a child process, with its addresses read from its JSON log.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use serde_json::Value;

/// A running `thermostat serve`; killed (SIGKILL) when dropped.
pub(crate) struct ServerProcess {
    pub(crate) child: std::process::Child,
    pub(crate) grpc: String,
    pub(crate) http: String,
    log: Receiver<String>,
    /// Every log line read so far.
    seen: std::cell::RefCell<Vec<String>>,
}

impl ServerProcess {
    /// Starts `thermostat serve` on loopback port 0 with `data` as its data directory and
    /// `extra` flags, and waits (at most 60 s) for its "serving" log line.
    pub(crate) fn start(data: &Path, extra: &[&str]) -> ServerProcess {
        Self::start_with_env(data, extra, &[])
    }

    /// As [`ServerProcess::start`], with extra environment variables for the child only.
    pub(crate) fn start_with_env(
        data: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> ServerProcess {
        Self::start_wrapped(data, extra, env, &[])
    }

    /// As [`ServerProcess::start_with_env`], run through `wrapper` (e.g. `prlimit --fsize=N --`).
    pub(crate) fn start_wrapped(
        data: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        wrapper: &[&str],
    ) -> ServerProcess {
        use std::io::BufRead as _;
        let bin = env!("CARGO_BIN_EXE_thermostat");
        let mut command = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let mut child = command
            .envs(env.iter().copied())
            .args([
                "serve",
                "--grpc-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ])
            .arg("--data-dir")
            .arg(data)
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        // Owned at once, so that a failed start below still kills the process.
        let mut server = ServerProcess {
            child,
            grpc: String::new(),
            http: String::new(),
            log: rx,
            seen: std::cell::RefCell::default(),
        };
        loop {
            let line = server
                .log
                .recv_timeout(Duration::from_secs(60))
                .expect("the server logs that it is serving");
            server.seen.borrow_mut().push(line.clone());
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if v["fields"]["message"] == "Thermostat is serving." {
                server.grpc = v["fields"]["grpc"].as_str().unwrap().to_owned();
                server.http = v["fields"]["http"].as_str().unwrap().to_owned();
                return server;
            }
        }
    }

    /// Sends a signal (`-HUP`, `-TERM`, ...).
    pub(crate) fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }

    /// Every line the server has logged so far (waiting up to `settle` for more, and at most
    /// ten times `settle` in all: a server that logs without pause must not hold the caller
    /// here; callers that wait for a line retry).
    pub(crate) fn log_lines(&self, settle: Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + settle * 10;
        while std::time::Instant::now() < deadline {
            match self.log.recv_timeout(settle) {
                Ok(line) => self.seen.borrow_mut().push(line),
                Err(_) => break,
            }
        }
        self.seen.borrow().clone()
    }

    /// SIGKILL, and wait until the process is gone.
    pub(crate) fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Waits (at most 30 s per line) for a log line containing `needle`.
    pub(crate) fn wait_log(&self, needle: &str) -> String {
        loop {
            let line = self
                .log
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
            self.seen.borrow_mut().push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// `SampleCount` of one series over the minute starting at `t0` (which must be aligned).
    pub(crate) async fn sample_count(
        &self,
        namespace: &str,
        metric: &str,
        dims: &[(&str, &str)],
        t0: i64,
    ) -> f64 {
        let req = crate::util::stats_request(
            namespace,
            metric,
            dims,
            t0,
            t0 + 60_000,
            60,
            &["SampleCount"],
        );
        let dp = self
            .client()
            .await
            .get_metric_statistics(req)
            .await
            .unwrap()
            .into_inner()
            .datapoints;
        dp[0].statistics["SampleCount"]
    }

    /// A gRPC client for it.
    pub(crate) async fn client(
        &self,
    ) -> thermostat_proto::v1::metrics_service_client::MetricsServiceClient<tonic::transport::Channel>
    {
        thermostat_proto::v1::metrics_service_client::MetricsServiceClient::connect(format!(
            "http://{}",
            self.grpc
        ))
        .await
        .unwrap()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
