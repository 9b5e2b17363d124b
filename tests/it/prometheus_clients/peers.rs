//! The real programs these tests run (Debian's `prometheus`, `promtool`, `vmagent`,
//! `vmalert`), started on loopback and killed when dropped, and a small exporter the tests
//! serve themselves.

use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a peer may take to do what a test waits for: generous, for a loaded 2-core CI
/// machine; a healthy run needs a few seconds.
pub(super) const DEADLINE: Duration = Duration::from_secs(120);

/// The paths of `names` (looked up in `/usr/bin`, then on `PATH`).
///
/// Without one of them: under `CI=true` this panics (CI installs them: `scripts/test` runs
/// `scripts/setup-prometheus` and `scripts/setup-victoriametrics`); otherwise it prints why the
/// test is skipped and returns `None`.
pub(super) fn require_binaries<const N: usize>(
    test: &str,
    names: [&str; N],
) -> Option<[PathBuf; N]> {
    let found = names.map(find_binary);
    let missing: Vec<String> = names
        .iter()
        .zip(&found)
        .filter(|(_, p)| p.is_none())
        .map(|(n, _)| {
            let script = if n.starts_with("vm") {
                "scripts/setup-victoriametrics"
            } else {
                "scripts/setup-prometheus"
            };
            format!("{n} (run {script})")
        })
        .collect();
    if missing.is_empty() {
        return Some(found.map(|p| p.unwrap()));
    }
    let why = format!(
        "{test}: needs {}; the README's test command (scripts/test) installs them",
        missing.join(", ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}");
    }
    eprintln!("SKIPPED {why}");
    None
}

fn find_binary(name: &str) -> Option<PathBuf> {
    let usr = Path::new("/usr/bin").join(name);
    if usr.is_file() {
        return Some(usr);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A program running on loopback; its stdout and stderr go to `<dir>/<name>.log`. Dropping it
/// kills it (and only it: by its own process id).
pub(super) struct Peer {
    name: String,
    child: Mutex<Child>,
    log: PathBuf,
}

impl Peer {
    pub(super) fn spawn(name: &str, dir: &Path, command: &mut Command) -> Peer {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = command
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Peer {
            name: name.to_owned(),
            child: Mutex::new(child),
            log,
        }
    }

    /// The end of its log (for failure messages).
    pub(super) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("--- last lines of {} ---\n{tail}", self.log.display())
    }

    /// Panics with its log when it has exited.
    pub(super) fn assert_running(&self) {
        let status = self.child.lock().unwrap().try_wait().unwrap();
        if let Some(status) = status {
            panic!("{} exited ({status})\n{}", self.name, self.log_tail());
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Runs `check` every 250 ms until it returns `Ok`, while every peer keeps running; panics with
/// the last `Err` and the peers' logs after [`DEADLINE`].
pub(super) async fn eventually<T, F, Fut>(what: &str, peers: &[&Peer], mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        for p in peers {
            p.assert_running();
        }
        let last = match check().await {
            Ok(v) => return v,
            Err(e) => e,
        };
        if Instant::now() > deadline {
            let logs: Vec<String> = peers.iter().map(|p| p.log_tail()).collect();
            panic!(
                "{what}: not within {DEADLINE:?}; last: {last}\n{}",
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until `url` answers 200 (a peer's health or readiness page).
pub(super) async fn wait_ready(peer: &Peer, url: &str) {
    let http = reqwest::Client::new();
    let http = &http;
    eventually(&format!("{url} ready"), &[peer], || async move {
        match http.get(url).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("status {}", r.status())),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
}

/// The bucket bounds of the exporter's classic histogram (besides `+Inf`).
pub(super) const BOUNDS: [f64; 4] = [0.1, 0.25, 0.5, 1.0];

/// What the exporter serves.
#[derive(Clone, Debug)]
pub(super) struct Exposition {
    /// `demo_requests_total{path="/a"}`.
    pub(super) requests: f64,
    /// `demo_temperature_celsius`.
    pub(super) temperature: f64,
    /// `demo_latency_seconds`: per-bucket (not cumulative) counts, the last one `+Inf`.
    pub(super) latency_buckets: [u64; 5],
    pub(super) latency_sum: f64,
    /// Serve the series at all (when false the page is empty: the senders then write staleness
    /// markers for them).
    pub(super) visible: bool,
    /// Instead of all the above, a native histogram `demo_rpc_seconds{route="/b"}` of schema 0
    /// (per-bucket counts from bucket 0 on, and the sum), served in the protobuf format.
    pub(super) native: Option<(Vec<u64>, f64)>,
}

impl Exposition {
    pub(super) fn observe(&mut self, value: f64, times: u64) {
        let i = BOUNDS
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(BOUNDS.len());
        self.latency_buckets[i] += times;
        self.latency_sum += value * times as f64;
    }

    /// The media type and the body.
    fn render(&self) -> (&'static str, Vec<u8>) {
        match &self.native {
            Some((buckets, sum)) => (
                super::wire::exposition::CONTENT_TYPE,
                super::wire::exposition::native_histogram("demo_rpc_seconds", buckets, *sum),
            ),
            None => (
                "text/plain; version=0.0.4; charset=utf-8",
                self.text().into_bytes(),
            ),
        }
    }

    /// The Prometheus text format (0.0.4).
    fn text(&self) -> String {
        if !self.visible {
            return String::new();
        }
        let mut s = String::new();
        writeln!(s, "# HELP demo_requests_total Requests served.").unwrap();
        writeln!(s, "# TYPE demo_requests_total counter").unwrap();
        writeln!(s, "demo_requests_total{{path=\"/a\"}} {}", self.requests).unwrap();
        writeln!(s, "# HELP demo_temperature_celsius Temperature.").unwrap();
        writeln!(s, "# TYPE demo_temperature_celsius gauge").unwrap();
        writeln!(s, "demo_temperature_celsius {}", self.temperature).unwrap();
        writeln!(s, "# HELP demo_latency_seconds Latency.").unwrap();
        writeln!(s, "# TYPE demo_latency_seconds histogram").unwrap();
        let mut cumulative = 0;
        for (i, n) in self.latency_buckets.iter().enumerate() {
            cumulative += n;
            let le = BOUNDS.get(i).map_or("+Inf".to_owned(), f64::to_string);
            writeln!(s, "demo_latency_seconds_bucket{{le=\"{le}\"}} {cumulative}").unwrap();
        }
        writeln!(s, "demo_latency_seconds_sum {}", self.latency_sum).unwrap();
        writeln!(s, "demo_latency_seconds_count {cumulative}").unwrap();
        s
    }
}

struct ExporterState {
    now: Exposition,
    scrapes: u64,
}

/// A Prometheus exporter on 127.0.0.1:0 (`GET /metrics`) whose values the test sets.
pub(super) struct Exporter {
    pub(super) addr: SocketAddr,
    state: Arc<Mutex<ExporterState>>,
    server: tokio::task::JoinHandle<()>,
}

impl Exporter {
    pub(super) async fn start(initial: Exposition) -> Exporter {
        let state = Arc::new(Mutex::new(ExporterState {
            now: initial,
            scrapes: 0,
        }));
        let shared = state.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let shared = shared.clone();
                async move {
                    let (content_type, body) = {
                        let mut s = shared.lock().unwrap();
                        s.scrapes += 1;
                        s.now.render()
                    };
                    ([(axum::http::header::CONTENT_TYPE, content_type)], body)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Exporter {
            addr,
            state,
            server,
        }
    }

    /// Scrapes answered so far.
    pub(super) fn scrapes(&self) -> u64 {
        self.state.lock().unwrap().scrapes
    }

    /// Changes what is served, then waits until a scrape has served the change.
    pub(super) async fn change(&self, sender: &Peer, f: impl FnOnce(&mut Exposition)) {
        let before = {
            let mut s = self.state.lock().unwrap();
            f(&mut s.now);
            s.scrapes
        };
        self.wait_scrapes(sender, before + 1).await;
    }

    /// Waits until `n` scrapes have been answered.
    pub(super) async fn wait_scrapes(&self, sender: &Peer, n: u64) {
        eventually(
            &format!("scrape {n} of the exporter"),
            &[sender],
            || async move {
                let got = self.scrapes();
                if got >= n {
                    Ok(())
                } else {
                    Err(format!("{got} scrapes"))
                }
            },
        )
        .await;
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.server.abort();
    }
}
