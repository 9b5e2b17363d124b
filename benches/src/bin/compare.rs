//! `compare`: Thermostat's ingest rate side by side with VictoriaMetrics' on the same machine,
//! one server at a time (issue 8). Normally started through `benches/compare/run`, which
//! installs VictoriaMetrics and builds the binaries first.
//!
//! 1. Generates one workload — hosts × 10 metrics, `--samples` samples per series 1 s apart
//!    ending now, values uniform in [0, 100) — and writes it as Prometheus text files
//!    (one import request each) into a fresh temporary directory.
//! 2. VictoriaMetrics alone (fresh data directory, a free loopback port): `--vm-clients`
//!    threads POST the files to `/api/v1/import/prometheus` over keep-alive connections
//!    (`sendfile` from the page cache, so the client costs next to nothing); the clock runs
//!    from the first request to the last response. Then `/internal/force_flush`, and its own
//!    counters must equal the samples sent.
//! 3. Thermostat alone (fresh data directory, port 0, default fsync mode): `loadgen` pushes the
//!    same workload (same seed, so the same values) over gRPC, encoded before its clock
//!    starts; `thermostat_ingest_samples_total` must equal the samples sent.
//! 4. Peak RSS (`VmHWM`) and CPU time (`utime + stime`) of each server process from `/proc`
//!    just before it is killed; one table, or one JSON object with `--json`.
//!
//! `--protocol remote-write` sends the same workload to both servers as Prometheus remote
//! write 1.0 (`loadgen --protocol remote-write`, encoded before loadgen's clock starts):
//! VictoriaMetrics' `/api/v1/write` (counted by `vm_rows_inserted_total{type="promremotewrite"}`)
//! and Thermostat's `POST /api/v1/write` on its HTTP port, over `--rw-connections` keep-alive
//! HTTP/1.1 connections each; no import files are written.
//!
//! `--latency-curve` (issue 23) then measures Thermostat's acknowledgement latency below
//! saturation: taking the closed-loop rate of step 3 as the maximum, it starts a fresh
//! Thermostat (new data directory) for each of 25 %, 50 %, 75 % and 90 % of it and runs
//! `loadgen --rate` (open loop, the same workload flags), whose latencies count from each
//! request's scheduled send time; each server's count must again equal the samples sent.
//! VictoriaMetrics plays no part in the curve (`--skip-victoriametrics` skips it as usual).
//!
//! `--cluster N` (issue 24) then runs cluster mode on this machine: one nats-server with
//! JetStream (a free loopback port, a fresh store) and N Thermostat nodes `n1` … `nN`
//! (`serve --cluster nats://… --node-id ni`, each its own fresh data directory, otherwise as
//! above). Once every node's `/readyz` is 200 and every node's `/api/v1/cluster` lists the N
//! nodes with every partition owned by exactly one of them within its quota (`ceil(P / N)`)
//! and the same view for a second, N loadgens
//! (the same flags as step 3, `--part i/N`: node i gets every N-th request) encode, wait, and
//! are released together; the wall time is the slowest one's. Checks: each node's
//! `thermostat_ingest_samples_total` (the receiving node counts a sample once the stream has
//! stored it) equals its part, so their sum is the workload; and, once the owners have applied
//! the stream (waited for up to 60 s), the nodes' `thermostat_series_active` (their stores
//! hold their own partitions' series) sum to the workload's series. Reported: the cluster's
//! rate, each process's peak RSS and CPU time, and CPU seconds per million samples of
//! Thermostat (all nodes) and of nats-server next to the single-node run's. Those count the
//! load alone: from just before the loadgens start (servers idle, loadgens still encoding)
//! until every sample is counted and every series stored; the single-node run's likewise
//! from just before its loadgen starts until its counters are read (the whole processes'
//! CPU, start-up included, is reported too).
//!
//! Exits 1 when a count does not match or anything fails, 2 on bad arguments.

#![allow(
    clippy::print_stdout,
    reason = "printing the comparison is this binary's job"
)]

use std::fs::File;
use std::io::{BufRead as _, BufReader, BufWriter, Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use clap::Parser;
use thermostat_benches::compare::{
    self, ClusterNodeRun, ClusterRun, Comparison, HttpResponse, LATENCY_CURVE_FRACTIONS,
    LatencyLevel, NATIVE, REMOTE_WRITE, ServerRun, Setup, ThermostatRun, VictoriaMetricsRun,
};
use thermostat_benches::process::{Killed, Thermostat, log_text, start_thermostat};
use thermostat_benches::procstat::ProcStat;
use thermostat_benches::remote_write;
use thermostat_benches::{Layout, Order, Workload, WorkloadSpec};
use thermostat_metrics::{Clock as _, SystemClock};

/// Compare Thermostat's ingest with VictoriaMetrics' on this machine.
#[derive(Debug, Parser)]
#[command(name = "compare", version)]
struct Args {
    /// Series: hosts × 10 metrics (a multiple of 10, or fewer than 10 on one host).
    #[arg(long, default_value_t = 10_000)]
    series: usize,
    /// Samples per series, 1 s apart, the newest now.
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// CI size: 100 series × 50 samples; checks the counts, not the speed.
    #[arg(long, conflicts_with_all = ["series", "samples"])]
    ci: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Datums per gRPC request.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// gRPC connections.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    connections: u16,
    /// gRPC requests awaiting acknowledgement per connection (64 × 1000 datums: fewer
    /// samples outstanding per connection than one VictoriaMetrics import request's lines).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    in_flight: u16,
    /// Push with StreamMetricData (`true`, one stream per connection, requests pipelined as
    /// VictoriaMetrics' clients stream their files) or unary PutMetricData (`false`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    stream: bool,
    /// Concurrent HTTP clients sending to VictoriaMetrics.
    #[arg(long, default_value_t = 4)]
    vm_clients: usize,
    /// Lines per VictoriaMetrics import request (one pre-generated file each); rounded down
    /// to whole gRPC requests, so both servers get the same data in the same order.
    #[arg(long, default_value_t = 100_000)]
    vm_lines_per_request: usize,
    /// The Thermostat server binary (default: `thermostat` next to this program).
    #[arg(long)]
    thermostat_bin: Option<PathBuf>,
    /// The loadgen binary (default: `loadgen` next to this program).
    #[arg(long)]
    loadgen_bin: Option<PathBuf>,
    /// The VictoriaMetrics binary.
    #[arg(long, default_value = "/usr/bin/victoria-metrics")]
    vm_bin: PathBuf,
    /// Run Thermostat only (its counts are still checked).
    #[arg(long)]
    skip_victoriametrics: bool,
    /// Seed of the values.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Datum order, the same for both servers: `agent` (each request one host's flush: its 10
    /// metrics, 100 samples each) or `time` (every series' sample of one second, then the
    /// next second's; consecutive datums are all different series).
    #[arg(long, default_value = "agent", value_parser = ["agent", "time"])]
    order: String,
    /// What both servers are sent: `native` (Thermostat: its gRPC API; VictoriaMetrics:
    /// Prometheus text to `/api/v1/import/prometheus`) or `remote-write` (both: Prometheus
    /// remote write 1.0 to `/api/v1/write`, from loadgen).
    #[arg(long, default_value = NATIVE, value_parser = [NATIVE, REMOTE_WRITE])]
    protocol: String,
    /// `--protocol remote-write`: keep-alive HTTP/1.1 connections to each server, one request
    /// in flight on each (replaces --connections, --in-flight, --stream and --vm-clients).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    rw_connections: u16,
    /// `--protocol remote-write`: --batch datums times this many per remote-write request.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    batches_per_write: u32,
    /// After the comparison, Thermostat's ack latency below saturation: a fresh server at
    /// 25, 50, 75 and 90 % of its closed-loop rate, sent the same workload open loop
    /// (`loadgen --rate`, latency from each request's scheduled send time).
    #[arg(long)]
    latency_curve: bool,
    /// After the comparison (alone with --skip-victoriametrics), cluster mode (issue 24): one
    /// nats-server with JetStream and this many Thermostat nodes (`serve --cluster`), the same
    /// workload split over them (one loadgen per node with `--part i/N`, started together).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=16))]
    cluster: Option<u16>,
    /// The nats-server binary for --cluster (default: `.venv/bin/nats-server` of the
    /// workspace this program was built in, which `scripts/setup-test-peers` installs, else
    /// `nats-server` on PATH).
    #[arg(long)]
    nats_bin: Option<PathBuf>,
}

/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Namespace of the Thermostat data.
const NAMESPACE: &str = "Thermostat/Compare";

fn main() -> ExitCode {
    let mut args = Args::parse();
    if args.ci {
        args.series = 100;
        args.samples = 50;
    }
    let json = args.json;
    match run(&args) {
        Ok(c) => {
            if json {
                println!("{}", c.to_json());
            } else {
                print!("{}", c.to_table());
            }
            let mismatches = c.mismatches();
            if mismatches.is_empty() {
                ExitCode::SUCCESS
            } else {
                for m in mismatches {
                    eprintln!("error: {m}");
                }
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn note(msg: &str) {
    eprintln!("compare: {msg}");
}

fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("cannot find this program's path")?;
    Ok(me.with_file_name(name))
}

fn require_file(path: &Path, what: &str, hint: &str) -> anyhow::Result<()> {
    ensure!(
        path.is_file(),
        "{what} {} is missing: {hint}",
        path.display()
    );
    Ok(())
}

fn load_average() -> Option<f64> {
    compare::load_average(&std::fs::read_to_string("/proc/loadavg").ok()?)
}

/// The share of CPU time the whole machine spent idle over the next 2 s.
fn idle_share() -> Option<f64> {
    let read = || compare::cpu_jiffies(&std::fs::read_to_string("/proc/stat").ok()?);
    let (i1, t1) = read()?;
    std::thread::sleep(Duration::from_secs(2));
    let (i2, t2) = read()?;
    (t2 > t1).then(|| (i2 - i1) as f64 / (t2 - t1) as f64)
}

/// A temporary directory removed on drop.
#[derive(Debug)]
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> anyhow::Result<WorkDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("thermostat-compare-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(WorkDir(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &Args) -> anyhow::Result<Comparison> {
    let (hosts, metrics) = compare::hosts_and_metrics(args.series).map_err(anyhow::Error::msg)?;
    ensure!(args.vm_clients >= 1, "--vm-clients must be at least 1");
    let thermostat_bin = match &args.thermostat_bin {
        Some(p) => p.clone(),
        None => sibling("thermostat")?,
    };
    let loadgen_bin = match &args.loadgen_bin {
        Some(p) => p.clone(),
        None => sibling("loadgen")?,
    };
    let build_hint = "build it with `cargo build --release --bin thermostat` and \
                      `cargo build --release -p thermostat-benches --bins` (benches/compare/run does)";
    require_file(&thermostat_bin, "the Thermostat binary", build_hint)?;
    require_file(&loadgen_bin, "the loadgen binary", build_hint)?;
    let nats_bin = match args.cluster {
        Some(_) => {
            let bin = nats_bin(args);
            require_file(
                &bin,
                "the nats-server binary",
                "run scripts/setup-test-peers (it installs .venv/bin/nats-server), or pass \
                 --nats-bin",
            )?;
            Some(bin)
        }
        None => None,
    };
    if !args.skip_victoriametrics {
        require_file(
            &args.vm_bin,
            "the VictoriaMetrics binary",
            "install it with `apt-get install -y victoria-metrics` (benches/compare/run does)",
        )?;
    }

    let spec = WorkloadSpec {
        namespace: NAMESPACE.to_owned(),
        series: hosts * metrics,
        samples_per_series: args.samples,
        batch: args.batch,
        seed: args.seed,
        layout: Layout::Hosts { metrics },
        order: if args.order == "agent" {
            Order::Agent
        } else {
            Order::Time
        },
    };
    let remote_write = args.protocol == REMOTE_WRITE;
    let requests_per_file = (args.vm_lines_per_request / args.batch).max(1);
    let setup = Setup {
        protocol: if remote_write { REMOTE_WRITE } else { NATIVE },
        hosts,
        metrics,
        samples_per_series: args.samples,
        batch: args.batch,
        connections: usize::from(args.connections),
        in_flight: usize::from(args.in_flight),
        mode: if args.stream { "stream" } else { "unary" },
        order: if args.order == "agent" {
            "agent"
        } else {
            "time"
        },
        vm_clients: args.vm_clients,
        vm_lines_per_request: requests_per_file * args.batch,
    };
    // Remote write: the same client, connections and requests for both servers.
    let setup = if remote_write {
        let connections = usize::from(args.rw_connections);
        Setup {
            connections,
            in_flight: 1,
            mode: "http1",
            vm_clients: connections,
            vm_lines_per_request: args.batch * args.batches_per_write as usize,
            ..setup
        }
    } else {
        setup
    };
    let work = WorkDir::create()?;

    let victoriametrics = if args.skip_victoriametrics {
        None
    } else if remote_write {
        // loadgen generates the same workload (same spec and seed) and encodes it itself;
        // checked here so that a bad spec fails before any server starts.
        Workload::new(spec.clone(), SystemClock.now().as_millis())?;
        Some(run_victoriametrics(
            args,
            &setup,
            VmSender::Loadgen(&loadgen_bin),
            &work.0,
        )?)
    } else {
        let workload = Workload::new(spec.clone(), SystemClock.now().as_millis())?;
        let files = write_import_files(&workload, requests_per_file, &work.0.join("import"))?;
        Some(run_victoriametrics(
            args,
            &setup,
            VmSender::Files(&files),
            &work.0,
        )?)
    };
    let thermostat = run_thermostat(args, &setup, &thermostat_bin, &loadgen_bin, &work.0)?;
    let latency_curve = if args.latency_curve {
        let max_rate = thermostat.server.samples_per_second();
        ensure!(
            max_rate > 0.0,
            "Thermostat's closed-loop rate is 0 samples/s: no latency curve to measure"
        );
        let mut levels = Vec::with_capacity(LATENCY_CURVE_FRACTIONS.len());
        for fraction in LATENCY_CURVE_FRACTIONS {
            levels.push(run_latency_level(
                args,
                &setup,
                &thermostat_bin,
                &loadgen_bin,
                &work.0,
                fraction,
                max_rate * fraction,
            )?);
        }
        Some(levels)
    } else {
        None
    };
    let cluster = match (args.cluster, &nats_bin) {
        (Some(nodes), Some(nats)) => Some(run_cluster(
            args,
            &setup,
            &ClusterBins {
                thermostat: &thermostat_bin,
                loadgen: &loadgen_bin,
                nats,
            },
            &work.0,
            usize::from(nodes),
        )?),
        _ => None,
    };
    Ok(Comparison {
        setup,
        thermostat,
        victoriametrics,
        latency_curve,
        cluster,
    })
}

/// Writes the workload as Prometheus text, `requests_per_file` gRPC requests' worth of lines
/// per file, on every core; returns the files in order.
fn write_import_files(
    workload: &Workload,
    requests_per_file: usize,
    dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let started = Instant::now();
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let requests = workload.request_count();
    let files: Vec<PathBuf> = (0..requests.div_ceil(requests_per_file))
        .map(|f| dir.join(format!("{f:06}.prom")))
        .collect();
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let f = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(f) else {
                            return Ok(());
                        };
                        let mut out = BufWriter::with_capacity(
                            1 << 20,
                            File::create(path)
                                .with_context(|| format!("cannot create {}", path.display()))?,
                        );
                        let first = f * requests_per_file;
                        for k in first..(first + requests_per_file).min(requests) {
                            workload.write_prometheus_text(k, &mut out)?;
                        }
                        out.flush()?;
                    }
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("a generator thread panicked"))??;
        }
        Ok(())
    })?;
    let bytes: u64 = files
        .iter()
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum();
    note(&format!(
        "wrote {} import files ({:.0} MB) in {:.1} s",
        files.len(),
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    ));
    Ok(files)
}

fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot bind a loopback port")?;
    Ok(l.local_addr()?.port())
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
fn http(addr: &str, method: &str, path: &str) -> anyhow::Result<HttpResponse> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    compare::read_response(&mut BufReader::new(s))
        .with_context(|| format!("{method} http://{addr}{path}"))
}

fn scrape(addr: &str) -> anyhow::Result<String> {
    let r = http(addr, "GET", "/metrics")?;
    ensure!(
        r.status == 200,
        "GET /metrics answered {}: {}",
        r.status,
        r.text()
    );
    Ok(r.text())
}

fn counter(text: &str, series: &str) -> anyhow::Result<u64> {
    let v = compare::metric_value(text, series)
        .with_context(|| format!("no {series} in the server's /metrics"))?;
    Ok(v as u64)
}

/// A keep-alive HTTP/1.1 connection that POSTs whole files.
struct Poster {
    addr: String,
    conn: Option<(TcpStream, BufReader<TcpStream>)>,
}

impl Poster {
    fn post_file(&mut self, path: &str, file: &Path) -> anyhow::Result<()> {
        let mut f = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        let len = f.metadata()?.len();
        if self.conn.is_none() {
            let s = TcpStream::connect(&self.addr)?;
            s.set_nodelay(true)?;
            let r = BufReader::new(s.try_clone()?);
            self.conn = Some((s, r));
        }
        let Some((s, r)) = self.conn.as_mut() else {
            unreachable!("connected above")
        };
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\nContent-Length: {len}\r\n\r\n",
            self.addr
        )?;
        // File to socket: `sendfile` from the page cache.
        let sent = std::io::copy(&mut f, s)?;
        ensure!(
            sent == len,
            "sent {sent} of {len} bytes of {}",
            file.display()
        );
        let resp = compare::read_response(r)?;
        if resp.close {
            self.conn = None;
        }
        ensure!(
            (200..300).contains(&resp.status),
            "POST {path} with {} answered {}: {}",
            file.display(),
            resp.status,
            resp.text()
        );
        Ok(())
    }
}

fn wait_until_healthy(addr: &str, child: &mut Killed, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(r) = http(addr, "GET", "/health")
            && r.status == 200
        {
            return Ok(());
        }
        if let Some(status) = child.0.try_wait()? {
            bail!(
                "VictoriaMetrics exited ({status}) before serving; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        ensure!(
            Instant::now() < deadline,
            "VictoriaMetrics did not answer /health on {addr} within {START_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How the workload reaches VictoriaMetrics.
#[derive(Clone, Copy, Debug)]
enum VmSender<'a> {
    /// Prometheus text files POSTed to `/api/v1/import/prometheus` by `--vm-clients` threads.
    Files(&'a [PathBuf]),
    /// `loadgen --protocol remote-write` (this binary) to `/api/v1/write`.
    Loadgen(&'a Path),
}

fn run_victoriametrics(
    args: &Args,
    setup: &Setup,
    sender: VmSender<'_>,
    work: &Path,
) -> anyhow::Result<VictoriaMetricsRun> {
    let expected = setup.samples();
    // The CI size checks counts, not speed: no need to sample how busy the machine is.
    let idle_before = if args.ci { None } else { idle_share() };
    let load_average_before = load_average();
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let data = work.join("vm-data");
    let log = work.join("victoria-metrics.log");
    note(&format!("starting VictoriaMetrics on {addr}"));
    let mut vm = Killed(
        Command::new(&args.vm_bin)
            .arg(format!("-storageDataPath={}", data.display()))
            .arg(format!("-httpListenAddr={addr}"))
            .arg("-loggerLevel=WARN")
            .stdin(Stdio::null())
            .stdout(File::create(&log)?)
            .stderr(File::create(&log)?)
            .spawn()
            .with_context(|| format!("cannot start {}", args.vm_bin.display()))?,
    );
    wait_until_healthy(&addr, &mut vm, &log)?;

    let (seconds, client_cpu_seconds, ack_latency_ms) = match sender {
        VmSender::Files(files) => {
            let (seconds, cpu) = post_import_files(args, &addr, files)?;
            (seconds, cpu, None)
        }
        VmSender::Loadgen(loadgen) => {
            let url = format!("http://{addr}{}", remote_write::WRITE_PATH);
            note(&format!(
                "loadgen encodes, then sends remote write to {url}"
            ));
            let report = run_loadgen(args, setup, loadgen, &url, None).map_err(|e| {
                anyhow::anyhow!(
                    "VictoriaMetrics: {e:#}\nVictoriaMetrics' log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })?;
            (
                report.seconds,
                report.client_cpu_seconds,
                Some((report.ack_latency_p50_ms, report.ack_latency_p99_ms)),
            )
        }
    };

    let flush_started = Instant::now();
    let r = http(&addr, "GET", "/internal/force_flush")?;
    ensure!(
        r.status == 200,
        "/internal/force_flush answered {}: {}",
        r.status,
        r.text()
    );
    let flush_seconds = flush_started.elapsed().as_secs_f64();
    let metrics = scrape(&addr)?;
    let rows_type = compare::vm_rows_type(setup.protocol);
    let samples_counted = counter(
        &metrics,
        &format!("vm_rows_inserted_total{{type=\"{rows_type}\"}}"),
    )?;
    let rows_added_to_storage = counter(&metrics, "vm_rows_added_to_storage_total")?;
    let invalid = counter(
        &metrics,
        &format!("vm_rows_invalid_total{{type=\"{rows_type}\"}}"),
    )
    .unwrap_or(0);
    ensure!(
        invalid == 0,
        "VictoriaMetrics refused {invalid} rows as invalid; its log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let new_series = counter(&metrics, "vm_new_timeseries_created_total").ok();
    // Before the query below, which would add its own memory to the peak.
    let stat = ProcStat::read(&vm.pid()).context("cannot read VictoriaMetrics' /proc")?;
    let samples_queried = count_stored_samples(&addr, setup.samples_per_series);
    drop(vm);
    let run = VictoriaMetricsRun {
        server: ServerRun {
            seconds,
            samples_counted,
            peak_rss_bytes: stat.peak_rss_bytes,
            cpu_seconds: stat.cpu_seconds,
            client_cpu_seconds,
            load_average_before,
            idle_before,
        },
        ack_latency_ms,
        flush_seconds,
        rows_added_to_storage,
        new_series,
        samples_queried,
    };
    // In full, so that its figures survive a failure of Thermostat's side.
    note(&format!(
        "VictoriaMetrics: {} of {expected} samples in {seconds:.2} s = {:.0} samples/s (flush \
         {flush_seconds:.2} s), peak RSS {:.1} MB, CPU {:.2} s, ack p50 / p99 {}, samples found \
         by a query {}",
        run.server.samples_counted,
        run.server.samples_per_second(),
        run.server.peak_rss_bytes as f64 / 1e6,
        run.server.cpu_seconds,
        run.ack_latency_ms
            .map_or_else(|| "-".to_owned(), |(a, b)| format!("{a:.1} / {b:.1} ms")),
        run.samples_queried
            .map_or_else(|| "-".to_owned(), |q| q.to_string()),
    ));
    Ok(run)
}

/// POSTs the import files to VictoriaMetrics at `addr` from `--vm-clients` threads; returns
/// the seconds from the first request to the last answer and the client's CPU seconds.
fn post_import_files(
    args: &Args,
    addr: &str,
    files: &[PathBuf],
) -> anyhow::Result<(f64, Option<f64>)> {
    let next = AtomicUsize::new(0);
    let barrier = Barrier::new(args.vm_clients + 1);
    let cpu_before = ProcStat::read("self").ok();
    std::thread::scope(|scope| -> anyhow::Result<_> {
        let clients: Vec<_> = (0..args.vm_clients)
            .map(|_| {
                let mut poster = Poster {
                    addr: addr.to_owned(),
                    conn: None,
                };
                let (next, barrier) = (&next, &barrier);
                scope.spawn(move || -> anyhow::Result<()> {
                    barrier.wait();
                    while let Some(f) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                        poster.post_file("/api/v1/import/prometheus", f)?;
                    }
                    Ok(())
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for c in clients {
            c.join()
                .map_err(|_| anyhow::anyhow!("an HTTP client panicked"))??;
        }
        let seconds = start.elapsed().as_secs_f64();
        let cpu = cpu_before
            .zip(ProcStat::read("self").ok())
            .map(|(a, b)| b.cpu_seconds - a.cpu_seconds);
        Ok((seconds, cpu))
    })
}

/// Counts the samples stored in VictoriaMetrics with a query (after `force_flush`): an
/// independent check of its counters. `None` (with a note) when the query fails, e.g. over
/// its series limit at large sizes.
fn count_stored_samples(addr: &str, samples_per_series: usize) -> Option<u64> {
    // Every sample is at most `samples_per_series` s old; VictoriaMetrics hides the last 30 s
    // from queries at "now", so the query is for a minute from now.
    let seconds = samples_per_series as u64 + 300;
    let at = SystemClock.now().as_millis() / 1000 + 60;
    let path = format!(
        "/api/v1/query?query={}&time={at}",
        compare::url_encode(&compare::count_samples_query(seconds))
    );
    let answer = http(addr, "GET", &path)
        .ok()
        .filter(|r| r.status == 200)
        .and_then(|r| serde_json::from_slice(&r.body).ok())
        .and_then(|v| compare::instant_query_count(&v));
    if answer.is_none() {
        note("VictoriaMetrics refused the sample-count query; its counters alone are checked");
    }
    answer
}

fn run_thermostat(
    args: &Args,
    setup: &Setup,
    bin: &Path,
    loadgen: &Path,
    work: &Path,
) -> anyhow::Result<ThermostatRun> {
    let expected = setup.samples();
    // The CI size checks counts, not speed: no need to sample how busy the machine is.
    let idle_before = if args.ci { None } else { idle_share() };
    let load_average_before = load_average();
    let data = work.join("thermostat-data");
    let Thermostat {
        process: server,
        grpc,
        http: http_addr,
        log,
    } = start_thermostat(bin, &data, std::iter::empty::<&str>(), START_TIMEOUT)?;
    let target = loadgen_target(setup, &grpc, &http_addr);
    note(&format!(
        "Thermostat serving on grpc={grpc} http={http_addr}; loadgen encodes, then pushes to \
         {target}"
    ));
    let before = ProcStat::read(&server.pid()).ok();
    let report = run_loadgen(args, setup, loadgen, &target, None)
        .map_err(|e| anyhow::anyhow!("Thermostat: {e:#}\nThermostat's log:\n{}", log_text(&log)))?;

    let metrics = scrape(&http_addr)?;
    let samples_counted = counter(&metrics, "thermostat_ingest_samples_total")?;
    let series_active = counter(&metrics, "thermostat_series_active").ok();
    let stat = ProcStat::read(&server.pid()).context("cannot read Thermostat's /proc")?;
    let load_cpu_seconds = before.map(|b| stat.cpu_seconds - b.cpu_seconds);
    drop(server);
    // The data is not needed any more; a --latency-curve run starts fresh servers next.
    let _ = std::fs::remove_dir_all(&data);
    let run = ThermostatRun {
        server: ServerRun {
            seconds: report.seconds,
            samples_counted,
            peak_rss_bytes: stat.peak_rss_bytes,
            cpu_seconds: stat.cpu_seconds,
            client_cpu_seconds: report.client_cpu_seconds,
            load_average_before,
            idle_before,
        },
        ack_latency_p50_ms: report.ack_latency_p50_ms,
        ack_latency_p99_ms: report.ack_latency_p99_ms,
        ack_latency_max_ms: report.ack_latency_max_ms,
        retries: report.retries,
        series_active,
        load_cpu_seconds,
    };
    note(&format!(
        "Thermostat: {} of {expected} samples in {:.2} s = {:.0} samples/s",
        run.server.samples_counted,
        run.server.seconds,
        run.server.samples_per_second()
    ));
    Ok(run)
}

/// Where loadgen sends to a Thermostat serving gRPC on `grpc` and HTTP on `http_addr`.
fn loadgen_target(setup: &Setup, grpc: &str, http_addr: &str) -> String {
    if setup.protocol == REMOTE_WRITE {
        format!("http://{http_addr}{}", remote_write::WRITE_PATH)
    } else {
        format!("http://{grpc}")
    }
}

/// One level of `--latency-curve`: a fresh Thermostat (its own data directory, removed
/// afterwards) sent the workload by `loadgen --rate rate`; its count is checked by the caller
/// ([`Comparison::mismatches`]).
fn run_latency_level(
    args: &Args,
    setup: &Setup,
    bin: &Path,
    loadgen: &Path,
    work: &Path,
    fraction: f64,
    rate: f64,
) -> anyhow::Result<LatencyLevel> {
    let percent = fraction * 100.0;
    let data = work.join(format!("thermostat-data-{percent:.0}"));
    let Thermostat {
        process: server,
        grpc,
        http: http_addr,
        log,
    } = start_thermostat(bin, &data, std::iter::empty::<&str>(), START_TIMEOUT)?;
    let target = loadgen_target(setup, &grpc, &http_addr);
    note(&format!(
        "latency curve, {percent:.0} %: fresh Thermostat on grpc={grpc} http={http_addr}; \
         loadgen --rate {rate:.0} to {target}"
    ));
    let report = run_loadgen(args, setup, loadgen, &target, Some(rate)).map_err(|e| {
        anyhow::anyhow!(
            "Thermostat at {percent:.0} % of its rate: {e:#}\nThermostat's log:\n{}",
            log_text(&log)
        )
    })?;
    let samples_counted = counter(&scrape(&http_addr)?, "thermostat_ingest_samples_total")?;
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    let level = LatencyLevel {
        fraction,
        target_rate: rate,
        achieved_rate: report.samples_per_second,
        samples_counted,
        retries: report.retries,
        ack_latency_p50_ms: report.ack_latency_p50_ms,
        ack_latency_p90_ms: report.ack_latency_p90_ms,
        ack_latency_p99_ms: report.ack_latency_p99_ms,
        ack_latency_p999_ms: report.ack_latency_p999_ms,
        ack_latency_max_ms: report.ack_latency_max_ms,
        sent_late_p99_ms: report.sent_late_p99_ms,
    };
    note(&format!(
        "latency curve, {percent:.0} %: target {rate:.0}, achieved {:.0} samples/s; ack p50 / \
         p90 / p99 / p99.9 / max {:.2} / {:.2} / {:.2} / {:.2} / {:.2} ms; sent late p99 {:.2} ms",
        level.achieved_rate,
        level.ack_latency_p50_ms,
        level.ack_latency_p90_ms,
        level.ack_latency_p99_ms,
        level.ack_latency_p999_ms,
        level.ack_latency_max_ms,
        level.sent_late_p99_ms
    ));
    Ok(level)
}

/// What `loadgen --json` reported.
#[derive(Debug)]
struct LoadgenReport {
    seconds: f64,
    samples_per_second: f64,
    client_cpu_seconds: Option<f64>,
    ack_latency_p50_ms: f64,
    ack_latency_p90_ms: f64,
    ack_latency_p99_ms: f64,
    ack_latency_p999_ms: f64,
    ack_latency_max_ms: f64,
    /// Open loop: how late loadgen's requests left after their due time, p99, ms.
    sent_late_p99_ms: f64,
    retries: u64,
    /// Samples acknowledged.
    samples: u64,
    /// Samples it sent (its `--part` of the workload).
    expected_samples: u64,
}

/// Runs loadgen with the setup's workload (the same spec and seed for every server) against
/// `target`: the native gRPC API, or remote write with `--protocol remote-write`; open loop
/// at `rate` samples per second when given (`--rate`), closed loop otherwise.
///
/// # Errors
/// loadgen cannot run, fails (its output is in the error, e.g. the server's answer to the
/// first failed request), or prints no JSON.
fn run_loadgen(
    args: &Args,
    setup: &Setup,
    loadgen: &Path,
    target: &str,
    rate: Option<f64>,
) -> anyhow::Result<LoadgenReport> {
    let mut cmd = loadgen_command(args, setup, loadgen, target, rate);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", loadgen.display()))?;
    loadgen_report(target, out.status, &out.stdout, &out.stderr)
}

/// The loadgen command line for the setup's workload against `target` (see [`run_loadgen`]).
fn loadgen_command(
    args: &Args,
    setup: &Setup,
    loadgen: &Path,
    target: &str,
    rate: Option<f64>,
) -> Command {
    let mut cmd = Command::new(loadgen);
    cmd.args(["--target", target])
        .args(["--namespace", NAMESPACE])
        .arg("--hosts")
        .arg(setup.hosts.to_string())
        .arg("--metrics")
        .arg(setup.metrics.to_string())
        .arg("--samples-per-series")
        .arg(setup.samples_per_series.to_string())
        .arg("--batch")
        .arg(setup.batch.to_string())
        .arg("--connections")
        .arg(setup.connections.to_string())
        .arg("--in-flight")
        .arg(setup.in_flight.to_string())
        .arg("--seed")
        .arg(args.seed.to_string())
        .args(["--max-retries", "100"])
        .args(["--order", setup.order])
        .arg("--json");
    if setup.protocol == REMOTE_WRITE {
        cmd.args(["--protocol", REMOTE_WRITE])
            .arg("--batches-per-write")
            .arg(args.batches_per_write.to_string());
    } else if args.stream {
        cmd.arg("--stream");
    }
    if let Some(rate) = rate {
        cmd.arg("--rate").arg(rate.to_string());
    }
    cmd
}

/// loadgen's report from its exit status and output.
///
/// # Errors
/// loadgen failed (its output is in the error) or printed no JSON.
fn loadgen_report(
    target: &str,
    status: std::process::ExitStatus,
    stdout: &[u8],
    stderr: &[u8],
) -> anyhow::Result<LoadgenReport> {
    let stdout = String::from_utf8_lossy(stdout);
    ensure!(
        status.success(),
        "loadgen --target {target} failed ({status}):\nstderr: {}\nstdout: {stdout}",
        String::from_utf8_lossy(stderr).trim_end(),
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim())
        .with_context(|| format!("loadgen printed no JSON: {stdout}"))?;
    let f = |k: &str| report[k].as_f64().unwrap_or_default();
    Ok(LoadgenReport {
        seconds: f("seconds"),
        samples_per_second: f("samples_per_second"),
        client_cpu_seconds: report["client_cpu_seconds"].as_f64(),
        ack_latency_p50_ms: f("ack_latency_p50_ms"),
        ack_latency_p90_ms: f("ack_latency_p90_ms"),
        ack_latency_p99_ms: f("ack_latency_p99_ms"),
        ack_latency_p999_ms: f("ack_latency_p999_ms"),
        ack_latency_max_ms: f("ack_latency_max_ms"),
        sent_late_p99_ms: f("sent_late_p99_ms"),
        retries: report["retries"].as_u64().unwrap_or_default(),
        samples: report["samples"].as_u64().unwrap_or_default(),
        expected_samples: report["expected_samples"].as_u64().unwrap_or_default(),
    })
}

/// `--nats-bin`, or `.venv/bin/nats-server` in the workspace this program was built in (or
/// above the program itself), or `nats-server` on PATH.
fn nats_bin(args: &Args) -> PathBuf {
    if let Some(p) = &args.nats_bin {
        return p.clone();
    }
    let venv = |root: &Path| root.join(".venv/bin/nats-server");
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(venv);
    let above_me = std::env::current_exe()
        .ok()
        .and_then(|me| me.ancestors().skip(1).map(venv).find(|p| p.is_file()));
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("nats-server"))
            .find(|p| p.is_file())
    });
    [built_in.clone(), above_me, on_path]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .or(built_in)
        .unwrap_or_else(|| PathBuf::from("nats-server"))
}

/// The programs `--cluster` runs.
#[derive(Clone, Copy, Debug)]
struct ClusterBins<'a> {
    thermostat: &'a Path,
    loadgen: &'a Path,
    nats: &'a Path,
}

/// How long the cluster may take to form (every node ready, partitions balanced).
const CLUSTER_FORM_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the loadgens may take to encode their parts before the start.
const ENCODE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the owners may take to apply the stream after the last acknowledgement.
const APPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// The cluster's ingest stream (nats-server's monitoring names it).
const INGEST_STREAM: &str = "THERMOSTAT_INGEST";

/// Starts nats-server with JetStream on free loopback ports (clients and monitoring), its
/// store in `store`, and waits until JetStream answers healthy; returns it, its client URL
/// and its monitoring address.
fn start_nats(bin: &Path, store: &Path, log: &Path) -> anyhow::Result<(Killed, String, String)> {
    let port = free_port()?;
    let monitor = format!("127.0.0.1:{}", free_port()?);
    let mut nats = Killed(
        Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store)
            .args(["-m", &monitor[monitor.rfind(':').map_or(0, |i| i + 1)..]])
            .stdin(Stdio::null())
            .stdout(File::create(log)?)
            .stderr(File::create(log)?)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?,
    );
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(r) = http(&monitor, "GET", "/healthz?js-enabled-only=true")
            && r.status == 200
            && TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
        {
            return Ok((nats, format!("nats://127.0.0.1:{port}"), monitor));
        }
        if let Some(status) = nats.0.try_wait()? {
            bail!(
                "nats-server exited ({status}) before serving; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        ensure!(
            Instant::now() < deadline,
            "nats-server did not answer healthy on {monitor} within {START_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Messages in the ingest stream, from nats-server's monitoring (`/jsz?streams=true`).
fn stream_messages(monitor: &str) -> Option<u64> {
    let r = http(monitor, "GET", "/jsz?streams=true").ok()?;
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    v["account_details"]
        .as_array()?
        .iter()
        .filter_map(|a| a["stream_detail"].as_array())
        .flatten()
        .find(|s| s["name"] == INGEST_STREAM)
        .and_then(|s| s["state"]["messages"].as_u64())
}

/// The cluster's partition count and the partitions each node owns (by node id, sorted).
type Formed = (u32, Vec<(String, usize)>);

/// Waits until every node answers `/readyz` with 200 and its `/api/v1/cluster` lists all
/// `nodes` with every partition owned by exactly one of them, none holding more than its
/// quota (`ceil(P / N)`, what the balanced assignment gives), and that view has not changed
/// for a second (partitions move while nodes join); returns the partition count and the
/// partitions each node owns (by node id).
fn wait_for_cluster(servers: &[(String, Thermostat)]) -> anyhow::Result<Formed> {
    let deadline = Instant::now() + CLUSTER_FORM_TIMEOUT;
    let mut last = String::new();
    let mut stable: Option<(Formed, Instant)> = None;
    loop {
        match cluster_formed(servers) {
            Ok(Some(formed)) => match &stable {
                Some((seen, since)) if *seen == formed => {
                    if since.elapsed() >= Duration::from_secs(1) {
                        return Ok(formed);
                    }
                }
                _ => stable = Some((formed, Instant::now())),
            },
            Ok(None) => stable = None,
            Err(e) => {
                last = format!("{e:#}");
                stable = None;
            }
        }
        ensure!(
            Instant::now() < deadline,
            "the cluster did not form within {CLUSTER_FORM_TIMEOUT:?} (last: {last}); node \
             1's log:\n{}",
            servers
                .first()
                .map_or_else(String::new, |(_, t)| log_text(&t.log))
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One look at [`wait_for_cluster`]'s condition: `Some` when it holds.
fn cluster_formed(servers: &[(String, Thermostat)]) -> anyhow::Result<Option<Formed>> {
    let n = servers.len();
    let mut formed = None;
    for (id, t) in servers {
        if http(&t.http, "GET", "/readyz")?.status != 200 {
            bail!("{id} is not ready");
        }
        let r = http(&t.http, "GET", "/api/v1/cluster")?;
        let v: serde_json::Value =
            serde_json::from_slice(&r.body).context("/api/v1/cluster is not JSON")?;
        let partitions = v["partitions"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .context("/api/v1/cluster has no partitions")?;
        let listed = v["nodes"].as_array().map_or(&[][..], Vec::as_slice);
        if listed.len() != n {
            bail!("{id} sees {} node(s) of {n}", listed.len());
        }
        let mut owner = vec![0_usize; partitions as usize];
        let mut owned = Vec::with_capacity(n);
        for node in listed {
            let ps = node["partitions"].as_array().map_or(&[][..], Vec::as_slice);
            for p in ps {
                if let Some(o) = p.as_u64().and_then(|p| owner.get_mut(p as usize)) {
                    *o += 1;
                }
            }
            owned.push((
                node["node_id"].as_str().unwrap_or_default().to_owned(),
                ps.len(),
            ));
        }
        if owner.iter().any(|&o| o != 1) {
            bail!("{id} sees partitions without exactly one owner");
        }
        let quota = (partitions as usize).div_ceil(n);
        if owned.iter().any(|(_, k)| *k > quota) {
            bail!("{id} sees shares over the quota of {quota}: {owned:?}");
        }
        owned.sort();
        // Every node must see the same owners.
        if formed.as_ref().is_some_and(|f: &Formed| f.1 != owned) {
            bail!("the nodes do not agree on the owners yet");
        }
        formed = Some((partitions, owned));
    }
    Ok(formed)
}

/// A loadgen started with `--start-on-stdin`: its stdin, and threads reading its stdout and
/// stderr to the end.
struct GatedLoadgen {
    process: Killed,
    stdin: Option<std::process::ChildStdin>,
    stdout: std::thread::JoinHandle<Vec<u8>>,
    stderr: std::thread::JoinHandle<Vec<u8>>,
    target: String,
}

/// Runs one loadgen per target, target `i` sending `--part i/N`, all released together once
/// every one has encoded its part and connected; returns their reports in target order.
fn run_loadgens_together(
    args: &Args,
    setup: &Setup,
    loadgen: &Path,
    targets: &[String],
) -> anyhow::Result<Vec<LoadgenReport>> {
    let n = targets.len();
    let (ready_tx, ready_rx) = mpsc::channel::<usize>();
    let mut gated = Vec::with_capacity(n);
    for (i, target) in targets.iter().enumerate() {
        let mut cmd = loadgen_command(args, setup, loadgen, target, None);
        let mut process = Killed(
            cmd.arg("--part")
                .arg(format!("{}/{n}", i + 1))
                .arg("--start-on-stdin")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("cannot run {}", loadgen.display()))?,
        );
        let stdin = process.0.stdin.take();
        let mut out = process.0.stdout.take().context("loadgen's stdout")?;
        let err = process.0.stderr.take().context("loadgen's stderr")?;
        let stdout = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = out.read_to_end(&mut buf);
            buf
        });
        let tx = ready_tx.clone();
        let stderr = std::thread::spawn(move || {
            let mut buf = Vec::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if line == "loadgen: ready" {
                    let _ = tx.send(i);
                } else {
                    buf.extend_from_slice(line.as_bytes());
                    buf.push(b'\n');
                }
            }
            buf
        });
        gated.push(GatedLoadgen {
            process,
            stdin,
            stdout,
            stderr,
            target: target.clone(),
        });
    }
    drop(ready_tx);
    let deadline = Instant::now() + ENCODE_TIMEOUT;
    for _ in 0..n {
        match ready_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => {
                bail!("the cluster's loadgens were not ready within {ENCODE_TIMEOUT:?}")
            }
            // Every stderr ended: a loadgen exited before it was ready; its report says why.
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    note(&format!(
        "{n} loadgens encoded and connected; starting them together"
    ));
    for g in &mut gated {
        if let Some(mut stdin) = g.stdin.take() {
            // A loadgen that exited already has its failure in its report below.
            let _ = stdin.write_all(b"go\n");
        }
    }
    let mut reports = Vec::with_capacity(n);
    for mut g in gated {
        let status = g.process.0.wait()?;
        let stdout = g
            .stdout
            .join()
            .map_err(|_| anyhow::anyhow!("a reader thread panicked"))?;
        let stderr = g
            .stderr
            .join()
            .map_err(|_| anyhow::anyhow!("a reader thread panicked"))?;
        reports.push(loadgen_report(&g.target, status, &stdout, &stderr)?);
    }
    Ok(reports)
}

/// `--cluster N`: nats-server and N Thermostat nodes, the workload split over them; see the
/// module's documentation.
fn run_cluster(
    args: &Args,
    setup: &Setup,
    bins: &ClusterBins<'_>,
    work: &Path,
    n: usize,
) -> anyhow::Result<ClusterRun> {
    let expected = setup.samples();
    let (nats, url, monitor) = start_nats(
        bins.nats,
        &work.join("nats-store"),
        &work.join("nats-server.log"),
    )?;
    note(&format!(
        "cluster: nats-server (JetStream) on {url}; starting {n} Thermostat node(s)"
    ));
    let mut servers = Vec::with_capacity(n);
    for i in 1..=n {
        let id = format!("n{i}");
        let data = work.join(format!("cluster-data-{id}"));
        let t = start_thermostat(
            bins.thermostat,
            &data,
            ["--cluster", url.as_str(), "--node-id", id.as_str()],
            START_TIMEOUT,
        )
        .with_context(|| format!("cluster node {id}"))?;
        servers.push((id, t));
    }
    let (partitions, owned) = wait_for_cluster(&servers)?;
    note(&format!(
        "cluster formed: {partitions} partitions owned {}",
        owned
            .iter()
            .map(|(id, k)| format!("{id}: {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let targets: Vec<String> = servers
        .iter()
        .map(|(_, t)| loadgen_target(setup, &t.grpc, &t.http))
        .collect();
    // The load's CPU counts from here: the cluster formed and idle.
    let read = |pid: &str, what: &str| {
        ProcStat::read(pid).with_context(|| format!("cannot read {what}'s /proc"))
    };
    let mut before = Vec::with_capacity(n);
    for (id, t) in &servers {
        before.push(read(&t.process.pid(), id)?.cpu_seconds);
    }
    let nats_before = read(&nats.pid(), "nats-server")?.cpu_seconds;
    let reports = run_loadgens_together(args, setup, bins.loadgen, &targets).map_err(|e| {
        anyhow::anyhow!(
            "cluster: {e:#}\nnode n1's log:\n{}",
            servers
                .first()
                .map_or_else(String::new, |(_, t)| log_text(&t.log))
        )
    })?;
    let seconds = reports.iter().map(|r| r.seconds).fold(0.0, f64::max);

    let mut counted = Vec::with_capacity(n);
    for (_, t) in &servers {
        counted.push(counter(
            &scrape(&t.http)?,
            "thermostat_ingest_samples_total",
        )?);
    }
    // The owners apply the stream behind the acknowledgements: wait until their stores hold
    // every series (or the deadline; the check then reports the shortfall).
    let series = setup.series() as u64;
    let deadline = Instant::now() + APPLY_TIMEOUT;
    let series_active = loop {
        let mut active = Vec::with_capacity(n);
        for (_, t) in &servers {
            active.push(counter(&scrape(&t.http)?, "thermostat_series_active").ok());
        }
        let sum: Option<u64> = active.iter().copied().sum();
        if sum == Some(series) || Instant::now() >= deadline {
            break active;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stream_messages = stream_messages(&monitor);
    let mut nodes = Vec::with_capacity(n);
    for (i, ((id, t), report)) in servers.iter().zip(&reports).enumerate() {
        let stat = read(&t.process.pid(), id)?;
        nodes.push(ClusterNodeRun {
            node_id: id.clone(),
            samples_sent: report.expected_samples,
            samples_counted: counted[i],
            seconds: report.seconds,
            cpu_seconds: stat.cpu_seconds,
            load_cpu_seconds: stat.cpu_seconds - before[i],
            peak_rss_bytes: stat.peak_rss_bytes,
            partitions_owned: owned.iter().find(|(o, _)| o == id).map_or(0, |(_, k)| *k),
            series_active: series_active[i],
            ack_latency_p99_ms: report.ack_latency_p99_ms,
            retries: report.retries,
        });
    }
    let nats_stat = read(&nats.pid(), "nats-server")?;
    drop(servers);
    drop(nats);
    let run = ClusterRun {
        nodes,
        partitions,
        seconds,
        nats_cpu_seconds: nats_stat.cpu_seconds,
        nats_load_cpu_seconds: nats_stat.cpu_seconds - nats_before,
        nats_peak_rss_bytes: nats_stat.peak_rss_bytes,
        stream_messages,
    };
    let acknowledged: u64 = reports.iter().map(|r| r.samples).sum();
    note(&format!(
        "cluster of {n}: {} of {expected} samples counted ({acknowledged} acknowledged) in \
         {seconds:.2} s = {:.0} samples/s; Thermostat CPU {:.2} s ({:.2} s per million), \
         nats-server CPU {:.2} s ({:.2} s per million); series stored {}",
        run.samples_counted(),
        run.samples_per_second(),
        run.thermostat_cpu_seconds(),
        run.thermostat_cpu_seconds_per_million(),
        run.nats_cpu_seconds,
        run.nats_cpu_seconds_per_million(),
        run.series_stored()
            .map_or_else(|| "-".to_owned(), |s| s.to_string())
    ));
    Ok(run)
}
