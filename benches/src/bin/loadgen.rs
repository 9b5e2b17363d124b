//! `loadgen`: pushes a synthetic workload to a running Thermostat over real gRPC sockets and
//! reports throughput and acknowledgement latency.
//!
//! Every request is generated and protobuf-encoded before the clock starts. Requests are handed
//! out from one shared counter to `--connections × --in-flight` senders: in unary mode each
//! sender makes one `PutMetricData` call at a time; in `--stream` mode each connection holds one
//! `StreamMetricData` stream with up to `--in-flight` requests awaiting their response.
//! RESOURCE_EXHAUSTED answers are retried with exponential backoff (counted as retries); any
//! other failure counts as an error, and the program exits non-zero with the first status.
//! UNIMPLEMENTED (a server without the called service) stops the run at once, naming the path.
//!
//! `--protocol otlp` sends the same samples as OTLP/gRPC `ExportMetricsServiceRequest`s
//! (`thermostat_benches::otlp`), unary `Export` calls only (OTLP has no streaming call); the
//! samples accepted are the points sent less `partial_success.rejected_data_points`.
//!
//! `--protocol remote-write` sends the same samples as Prometheus remote write 1.0 requests
//! (`thermostat_benches::remote_write`: snappy-compressed `prometheus.WriteRequest`s, also
//! encoded before the clock starts) to `--target`, an `http://host:port[/path]` URL (the path
//! defaults to `/api/v1/write`), over `--connections` keep-alive HTTP/1.1 connections, one
//! request at a time on each (HTTP/1.1 has no multiplexing, so `--in-flight` must be 1). Only
//! a 2xx answer acknowledges a request's samples. 429 and 5xx are retried with backoff (the
//! `Retry-After` header's seconds when given); any other status is an error quoting the
//! body, and 401, 403, 404, 405 and 415 (the endpoint, not the data, is at fault) stop the
//! run at once. A request that gets no answer (connection refused or reset, or nothing within
//! 120 s) is retried on a new connection, 3 attempts in all, then fails and stops the run.
//!
//! `--part I/N` sends only requests `k` with `k mod N = I − 1` of the same workload, so that
//! N loadgens (`--part 1/N` … `--part N/N`) send every request exactly once between them, e.g.
//! one to each node of a cluster (`compare --cluster`); the expected count is the part's.
//! `--start-on-stdin` holds the clock until a line arrives on stdin (after `loadgen: ready`
//! on stderr), so that such loadgens start together.
//!
//! # Open loop (`--rate`, issue 23)
//!
//! Without `--rate` the loop is closed: a sender sends its next request as soon as its last
//! one is acknowledged, so the load adapts to the server, and a slow answer delays the
//! requests behind it without their latency showing it (coordinated omission). With
//! `--rate R` the requests follow a fixed timetable instead ([`schedule_offsets`]): request
//! `k` is due `(samples of requests 0 … k−1) / R` seconds after the start, i.e. `k × batch / R`,
//! and its acknowledgement latency counts **from that due time**, not from when it actually
//! left. A request that cannot leave on time because every slot is busy leaves as soon as one
//! frees, and the wait counts in its latency: queueing in the client or the server is not
//! hidden.
//!
//! How the slots work (the same senders as the closed loop, pulling *due* requests): the
//! senders take requests in order from the shared counter; a sender holding a request that is
//! not yet due sleeps until it is, on a pacer thread's timer ([`thermostat_benches::pacer`]:
//! Tokio's timer has 1 ms resolution, which would add up to a millisecond of the client's own
//! lateness to every latency). How late requests actually left is reported as
//! `sent_late_p99_ms`, so that the client's share of a latency can be told apart. Unary (native and OTLP):
//! `--connections × --in-flight` senders, one call each at a time; `--stream`: one stream per
//! connection sending each request when it is due, with at most `--in-flight` awaiting their
//! response; remote write: `--connections` senders, one POST each at a time. Because requests
//! are taken in order, a request is late only when every slot is busy with an earlier one, so
//! the slots bound what is in flight, not when requests are due. An open loop needs many
//! slots, so `--in-flight` defaults to 64 with `--rate` (gRPC; remote write stays at 1 per
//! connection: raise `--connections`). The report adds `target_rate`; `samples_per_second` is
//! the achieved rate (samples over the time from the start to the last acknowledgement).

#![allow(
    clippy::print_stdout,
    reason = "printing the report is this binary's job"
)]

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1;
use hyper::{StatusCode, Uri, header};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use thermostat_benches::codec::{
    PreEncoded, otlp_export_path, put_metric_data_path, stream_metric_data_path,
};
use thermostat_benches::pacer::Pacer;
use thermostat_benches::procstat::ProcStat;
use thermostat_benches::remote_write;
use thermostat_benches::report::{MAX_LATENCY_US, latency_histogram};
use thermostat_benches::{Layout, Order, Report, Workload, WorkloadSpec};
use thermostat_metrics::{Clock as _, SystemClock};
use thermostat_proto::v1::PutMetricDataResponse;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

/// Push a synthetic metrics workload to a Thermostat server over gRPC.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version)]
struct Args {
    /// gRPC address of the server.
    #[arg(long, default_value = "http://127.0.0.1:4317")]
    target: String,
    /// Distinct series (`LoadgenValue` with `InstanceId` and `AvailabilityZone` dimensions).
    #[arg(long, default_value_t = 1000)]
    series: usize,
    /// Instead of --series: this many hosts with --metrics metrics each (`CPUUtilization`,
    /// `MemoryUtilization`, … with one dimension `Host=h0001`).
    #[arg(long, conflicts_with = "series", value_parser = clap::value_parser!(u32).range(1..))]
    hosts: Option<u32>,
    /// Metrics per host with --hosts (1 to 10).
    #[arg(long, requires = "hosts", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10))]
    metrics: u32,
    /// Samples per series, 1 s apart, the newest now.
    #[arg(long, default_value_t = 100)]
    samples_per_series: usize,
    /// Datums per request (at most 1000).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// HTTP/2 connections.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    connections: u16,
    /// Requests awaiting acknowledgement per connection [default: 1; with --rate: 64, except
    /// remote write: 1].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    in_flight: Option<u16>,
    /// Open loop: send on a fixed schedule of this many samples per second (request k due at
    /// k × batch / rate s after the start) and measure each acknowledgement from its request's
    /// scheduled send time; without it, send as fast as the in-flight limit allows.
    #[arg(long, value_name = "SAMPLES_PER_S", value_parser = parse_rate)]
    rate: Option<f64>,
    /// Namespace of every datum.
    #[arg(long, default_value = "Thermostat/Loadgen")]
    namespace: String,
    /// Use StreamMetricData (one stream per connection) instead of unary PutMetricData.
    #[arg(long)]
    stream: bool,
    /// Seed of the values.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Retries of one request answered RESOURCE_EXHAUSTED before it counts as an error.
    #[arg(long, default_value_t = 10)]
    max_retries: u32,
    /// Datum order: `time` (every series' sample of one timestamp, then the next) or `agent`
    /// (each request one host's flush; see `thermostat_benches::Order`).
    #[arg(long, default_value = "time", value_parser = ["time", "agent"])]
    order: String,
    /// Wire protocol: `native` (`thermostat.v1.MetricsService`), `otlp` (OTLP/gRPC
    /// `opentelemetry.proto.collector.metrics.v1.MetricsService/Export`, unary only: the same
    /// samples as gauge points, one resource with `service.name` = --namespace), or
    /// `remote-write` (Prometheus remote write 1.0 over HTTP/1.1 to --target, an
    /// `http://host:port[/path]` URL, path `/api/v1/write` by default; `job` = --namespace).
    #[arg(long, default_value = "native", value_parser = ["native", "otlp", "remote-write"])]
    protocol: String,
    /// `--protocol remote-write`: native batches (of --batch samples) per remote-write request.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    batches_per_write: u32,
    /// Send only part I of N of the workload: requests k with k mod N = I − 1 (I from 1 to
    /// N), so that N loadgens with `--part 1/N` … `--part N/N` send the whole workload once
    /// between them (`compare --cluster`, one per node). Counts and the report cover the
    /// part alone.
    #[arg(long, value_name = "I/N", value_parser = parse_part)]
    part: Option<Part>,
    /// Once encoded and connected, print `loadgen: ready` on stderr and start the clock only
    /// when a line (or the end of input) arrives on stdin: several loadgens start together.
    #[arg(long)]
    start_on_stdin: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// `--part I/N`: the 1-based part and the number of parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Part {
    index: usize,
    of: usize,
}

fn parse_part(s: &str) -> Result<Part, String> {
    let bad = || format!("{s:?} is not I/N with 1 <= I <= N (e.g. 2/3)");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let index: usize = i.trim().parse().map_err(|_| bad())?;
    let of: usize = n.trim().parse().map_err(|_| bad())?;
    if index == 0 || index > of {
        return Err(bad());
    }
    Ok(Part { index, of })
}

/// The items of `v` (requests, or their sample counts) that `part` sends: every `of`-th,
/// starting at `index − 1`; all of them without a part.
fn take_part<T>(v: Vec<T>, part: Option<Part>) -> Vec<T> {
    match part {
        None => v,
        Some(Part { index, of }) => v
            .into_iter()
            .enumerate()
            .filter(|(k, _)| k % of == index - 1)
            .map(|(_, x)| x)
            .collect(),
    }
}

/// `--start-on-stdin`: says it is ready, then waits for a line or the end of stdin.
async fn wait_for_start(args: &Args) -> anyhow::Result<()> {
    if !args.start_on_stdin {
        return Ok(());
    }
    eprintln!("loadgen: ready");
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| ())
    })
    .await
    .context("the stdin reader panicked")?
    .context("cannot read stdin")
}

/// `--in-flight` with `--rate` unless given (gRPC): an open loop needs many slots.
const OPEN_LOOP_IN_FLIGHT: u16 = 64;

fn parse_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of samples per second"))?;
    if rate.is_finite() && rate > 0.0 {
        Ok(rate)
    } else {
        Err(format!(
            "{s}: the rate must be a positive number of samples per second"
        ))
    }
}

/// When each request of an open-loop run at `rate` samples per second is due, after the
/// start: request `k` at (the samples of requests `0 … k−1`) / `rate`, which is
/// `k × batch / rate` when every request holds `batch` samples (a smaller last request does
/// not matter: nothing comes after it). Offsets beyond `Duration::MAX` saturate.
fn schedule_offsets(samples: &[u64], rate: f64) -> Vec<Duration> {
    let mut before = 0u64;
    samples
        .iter()
        .map(|&n| {
            let due = Duration::try_from_secs_f64(before as f64 / rate).unwrap_or(Duration::MAX);
            before += n;
            due
        })
        .collect()
}

/// The open loop's timetable.
#[derive(Debug)]
struct Schedule {
    /// When request 0 is due (the start of the measured run).
    start: Instant,
    /// Request `k` is due at `start + offsets[k]` ([`schedule_offsets`]).
    offsets: Vec<Duration>,
    /// Wakes senders at due times within tens of microseconds (Tokio's timer: 1 ms).
    pacer: Pacer,
}

/// First backoff after RESOURCE_EXHAUSTED; doubled per retry up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// How long one HTTP request may take, from sending to the end of the answer's body.
const HTTP_TIMEOUT: Duration = Duration::from_secs(120);
/// Attempts of one request that got no HTTP answer (connection refused, reset or timed out)
/// before it fails and stops the run: a server that drops requests would drop them all.
const MAX_TRANSPORT_ATTEMPTS: u32 = 3;
/// Characters of an error answer's body quoted in the error.
const BODY_QUOTE_CHARS: usize = 500;

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = args.json;
    let report = match runtime.block_on(run(args)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if report.errors > 0 {
        eprintln!(
            "error: {} of {} request(s) failed; first failure: {}",
            report.errors,
            report.requests,
            report.first_error.as_deref().unwrap_or("unknown")
        );
        return ExitCode::FAILURE;
    }
    if report.samples != report.expected_samples {
        eprintln!(
            "error: the server acknowledged {} samples, but {} were sent",
            report.samples, report.expected_samples
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Everything the senders share.
#[derive(Debug)]
struct Plan {
    requests: Vec<Bytes>,
    /// Samples (= datums, = OTLP points) in each request.
    samples: Vec<u64>,
    /// The unary method's path.
    unary_path: PathAndQuery,
    next: AtomicUsize,
    /// Set when continuing is pointless (the server does not implement the method).
    stopped: AtomicBool,
    max_retries: u32,
    /// `--rate`: when each request is due; `None` for the closed loop.
    schedule: Option<Schedule>,
}

impl Plan {
    /// The next request nobody has taken yet.
    fn take(&self) -> Option<usize> {
        if self.stopped.load(Ordering::Relaxed) {
            return None;
        }
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        (k < self.requests.len()).then_some(k)
    }

    /// When request `k` is due: its scheduled time in the open loop, now in the closed loop.
    fn due(&self, k: usize) -> Instant {
        match &self.schedule {
            None => Instant::now(),
            Some(s) => s
                .start
                .checked_add(s.offsets[k])
                .unwrap_or_else(|| s.start + Duration::from_secs(365 * 86_400)),
        }
    }

    /// Waits until request `k` is due (not at all in the closed loop, or when it is late) and
    /// returns the time its latency counts from: the due time in the open loop, the time of
    /// the first attempt in the closed loop.
    async fn wait_until_due(&self, k: usize, tally: &mut Tally) -> Instant {
        let due = self.due(k);
        if let Some(s) = &self.schedule {
            s.pacer.sleep_until(due).await;
            tally.left(due);
        }
        due
    }

    /// Sleeps until `due` on the pacer (Tokio's timer in the closed loop, which has none).
    async fn sleep_until(&self, due: Instant) {
        match &self.schedule {
            Some(s) => s.pacer.sleep_until(due).await,
            None => tokio::time::sleep_until(due.into()).await,
        }
    }

    /// Counts a final failure of request `k` in `tally`; UNIMPLEMENTED also stops the run
    /// (every other request would get the same answer).
    fn failed(&self, tally: &mut Tally, k: usize, s: &Status, path: &PathAndQuery) {
        if s.code() == Code::Unimplemented {
            self.stopped.store(true, Ordering::Relaxed);
        }
        tally.failed(k, s, path);
    }

    /// Counts a final failure of request `k` described by `text`; `stop` also stops the run.
    fn failed_with(&self, tally: &mut Tally, text: String, stop: bool) {
        if stop {
            self.stopped.store(true, Ordering::Relaxed);
        }
        tally.fail(text);
    }
}

/// A response that says how many of the samples sent the server accepted.
trait Acknowledgement: prost::Message + Default + Send + 'static {
    fn accepted(&self, sent: u64) -> u64;
}

impl Acknowledgement for PutMetricDataResponse {
    fn accepted(&self, _sent: u64) -> u64 {
        self.accepted_samples
    }
}

impl Acknowledgement for ExportMetricsServiceResponse {
    fn accepted(&self, sent: u64) -> u64 {
        thermostat_benches::otlp::accepted(self, sent)
    }
}

/// What one sender saw.
#[derive(Debug)]
struct Tally {
    samples: u64,
    requests: u64,
    errors: u64,
    retries: u64,
    latency_us: Histogram<u64>,
    /// Open loop: how late each request left after its due time, µs.
    late_us: Histogram<u64>,
    first_error: Option<(Instant, String)>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            samples: 0,
            requests: 0,
            errors: 0,
            retries: 0,
            latency_us: latency_histogram(),
            late_us: latency_histogram(),
            first_error: None,
        }
    }

    fn acknowledged(&mut self, since: Instant, accepted: u64) {
        let us = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.latency_us
            .saturating_record(us.clamp(1, MAX_LATENCY_US));
        self.samples += accepted;
        self.requests += 1;
    }

    /// Open loop: a request due at `due` leaves now.
    fn left(&mut self, due: Instant) {
        let us = u64::try_from(due.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.late_us.saturating_record(us.clamp(1, MAX_LATENCY_US));
    }

    fn failed(&mut self, k: usize, s: &Status, path: &PathAndQuery) {
        let text = if s.code() == Code::Unimplemented {
            format!(
                "request {k}: Unimplemented: the server does not serve {path} \
                 (run stopped){}{}",
                if s.message().is_empty() { "" } else { ": " },
                s.message()
            )
        } else {
            format!("request {k} to {path}: {:?}: {}", s.code(), s.message())
        };
        self.fail(text);
    }

    /// Counts a failed request; `text` (which names the request) is kept if it is the first.
    fn fail(&mut self, text: String) {
        self.requests += 1;
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some((Instant::now(), text));
        }
    }

    /// Whether to retry after `s` on attempt `attempt` (0-based); sleeps the backoff if so.
    async fn backoff(&mut self, s: &Status, attempt: &mut u32, max_retries: u32) -> bool {
        if s.code() != Code::ResourceExhausted {
            return false;
        }
        self.retry(attempt, max_retries, None).await
    }

    /// Whether attempt `attempt` (0-based) may be retried; if so counts the retry and sleeps
    /// `wait` (the server's `Retry-After`) or else the exponential backoff.
    async fn retry(&mut self, attempt: &mut u32, max_retries: u32, wait: Option<Duration>) -> bool {
        if *attempt >= max_retries {
            return false;
        }
        self.retries += 1;
        let delay = wait.unwrap_or_else(|| {
            FIRST_BACKOFF
                .saturating_mul(1 << (*attempt).min(16))
                .min(MAX_BACKOFF)
        });
        *attempt += 1;
        tokio::time::sleep(delay).await;
        true
    }

    fn merge(&mut self, other: Tally) {
        self.samples += other.samples;
        self.requests += other.requests;
        self.errors += other.errors;
        self.retries += other.retries;
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
        let _ = self.late_us.add(&other.late_us);
        self.first_error = match (self.first_error.take(), other.first_error) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        };
    }
}

async fn run(args: Args) -> anyhow::Result<Report> {
    let (series, layout) = match args.hosts {
        None => (args.series, Layout::Instances),
        Some(hosts) => {
            let metrics = args.metrics as usize;
            (hosts as usize * metrics, Layout::Hosts { metrics })
        }
    };
    let spec = WorkloadSpec {
        namespace: args.namespace.clone(),
        series,
        samples_per_series: args.samples_per_series,
        batch: args.batch,
        seed: args.seed,
        layout,
        order: if args.order == "agent" {
            Order::Agent
        } else {
            Order::Time
        },
    };
    let otlp = args.protocol == "otlp";
    if otlp && args.stream {
        anyhow::bail!(
            "--stream needs --protocol native: OTLP/gRPC has only the unary Export call \
             (use --in-flight for concurrency)"
        );
    }
    let workload = Workload::new(spec, SystemClock.now().as_millis())?;
    if args.protocol == "remote-write" {
        return run_remote_write(&args, &workload).await;
    }
    let samples: Vec<u64> = (0..workload.request_count())
        .map(|k| workload.request_samples(k))
        .collect();
    let requests = if otlp {
        workload.encode_otlp()
    } else {
        workload.encode()
    };
    let (samples, requests) = (
        take_part(samples, args.part),
        take_part(requests, args.part),
    );
    let expected_samples: u64 = samples.iter().sum();
    let offsets = args.rate.map(|rate| schedule_offsets(&samples, rate));

    let endpoint = Endpoint::from_shared(args.target.clone())
        .with_context(|| format!("invalid --target {:?}", args.target))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10));
    let mut channels = Vec::new();
    for _ in 0..args.connections {
        // Each `connect` opens its own HTTP/2 connection.
        channels.push(
            endpoint
                .connect()
                .await
                .with_context(|| format!("cannot connect to {}", args.target))?,
        );
    }

    let in_flight = usize::from(args.in_flight.unwrap_or(if args.rate.is_some() {
        OPEN_LOOP_IN_FLIGHT
    } else {
        1
    }));
    let pacer = Pacer::start().context("cannot start the pacer thread")?;
    wait_for_start(&args).await?;
    let cpu_before = ProcStat::read("self").ok();
    let start = Instant::now();
    let plan = Arc::new(Plan {
        requests,
        samples,
        unary_path: if otlp {
            otlp_export_path()
        } else {
            put_metric_data_path()
        },
        next: AtomicUsize::new(0),
        stopped: AtomicBool::new(false),
        max_retries: args.max_retries,
        schedule: offsets.map(|offsets| Schedule {
            start,
            offsets,
            pacer,
        }),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for channel in channels {
        if args.stream && args.rate.is_some() {
            tasks.spawn(open_stream_sender(channel, Arc::clone(&plan), in_flight));
        } else if args.stream {
            tasks.spawn(stream_sender(channel, Arc::clone(&plan), in_flight));
        } else {
            for _ in 0..in_flight {
                if otlp {
                    tasks.spawn(unary_sender::<ExportMetricsServiceResponse>(
                        channel.clone(),
                        Arc::clone(&plan),
                    ));
                } else {
                    tasks.spawn(unary_sender::<PutMetricDataResponse>(
                        channel.clone(),
                        Arc::clone(&plan),
                    ));
                }
            }
        }
    }
    let mut total = Tally::new();
    while let Some(t) = tasks.join_next().await {
        total.merge(t.context("a sender panicked")?);
    }
    let elapsed = start.elapsed();
    let client_cpu_seconds = cpu_before
        .zip(ProcStat::read("self").ok())
        .map(|(a, b)| b.cpu_seconds - a.cpu_seconds);

    Ok(Report {
        protocol: if otlp { "otlp" } else { "native" },
        mode: if args.stream { "stream" } else { "unary" },
        connections: usize::from(args.connections),
        samples: total.samples,
        expected_samples,
        requests: total.requests,
        errors: total.errors,
        retries: total.retries,
        elapsed,
        target_rate: args.rate,
        ack_latency_p50_ms: 0.0,
        ack_latency_p90_ms: 0.0,
        ack_latency_p99_ms: 0.0,
        ack_latency_p999_ms: 0.0,
        ack_latency_max_ms: 0.0,
        sent_late_p99_ms: None,
        first_error: total.first_error.map(|(_, e)| e),
        client_cpu_seconds,
    }
    .with_latencies(&total.latency_us)
    .with_lateness(&total.late_us))
}

fn not_ready(e: tonic::transport::Error) -> Status {
    Status::unavailable(format!("the connection is not ready: {e}"))
}

/// Unary calls (`PutMetricData` or OTLP `Export`, answered by `R`), one at a time. Latency runs
/// from the first attempt (open loop: from the request's due time, after waiting for it) to the
/// acknowledgement, so it includes any backoff.
async fn unary_sender<R: Acknowledgement>(channel: Channel, plan: Arc<Plan>) -> Tally {
    let mut grpc = tonic::client::Grpc::new(channel);
    let mut tally = Tally::new();
    while let Some(k) = plan.take() {
        let since = plan.wait_until_due(k, &mut tally).await;
        let mut attempt = 0;
        loop {
            let answer = match grpc.ready().await {
                Ok(()) => {
                    grpc.unary(
                        Request::new(plan.requests[k].clone()),
                        plan.unary_path.clone(),
                        PreEncoded::<R>::default(),
                    )
                    .await
                }
                Err(e) => Err(not_ready(e)),
            };
            match answer {
                Ok(r) => tally.acknowledged(since, r.get_ref().accepted(plan.samples[k])),
                Err(s) => {
                    if tally.backoff(&s, &mut attempt, plan.max_retries).await {
                        continue;
                    }
                    plan.failed(&mut tally, k, &s, &plan.unary_path);
                }
            }
            break;
        }
    }
    tally
}

/// One `StreamMetricData` stream with up to `window` requests awaiting their response.
///
/// Responses come in request order, and the server ends the stream at the first failed
/// request without processing the ones behind it. So on RESOURCE_EXHAUSTED the stream is
/// reopened after a backoff and every unacknowledged request is sent again, failed one first;
/// on any other failure the failed request is counted as an error and the rest are resent.
async fn stream_sender(channel: Channel, plan: Arc<Plan>, window: usize) -> Tally {
    let path = stream_metric_data_path();
    let mut grpc = tonic::client::Grpc::new(channel);
    let mut tally = Tally::new();
    // Sent but not acknowledged, oldest first, with the time of the first attempt.
    let mut pending: VecDeque<(usize, Instant)> = VecDeque::with_capacity(window);
    let mut attempt = 0;
    loop {
        let (tx, rx) = mpsc::channel::<Bytes>(window);
        // The channel holds `window` requests, so these sends never wait.
        for &(k, _) in &pending {
            let _ = tx.try_send(plan.requests[k].clone());
        }
        while pending.len() < window {
            let Some(k) = plan.take() else { break };
            let _ = tx.try_send(plan.requests[k].clone());
            pending.push_back((k, Instant::now()));
        }
        let Some(&(front, _)) = pending.front() else {
            return tally;
        };
        let mut tx = (pending.len() == window).then_some(tx);

        let mut responses = match open_stream(&mut grpc, rx, &path).await {
            Ok(r) => r,
            Err(s) => {
                stream_refused(
                    &mut tally,
                    &plan,
                    &mut pending,
                    front,
                    &mut attempt,
                    &path,
                    s,
                )
                .await;
                continue;
            }
        };

        loop {
            match responses.message().await {
                Ok(Some(r)) => {
                    let Some((_, since)) = pending.pop_front() else {
                        let s = Status::internal("more responses than requests");
                        plan.failed(&mut tally, front, &s, &path);
                        break;
                    };
                    tally.acknowledged(since, r.accepted_samples);
                    attempt = 0;
                    if let Some(sender) = &tx {
                        match plan.take() {
                            Some(k) => {
                                pending.push_back((k, Instant::now()));
                                if sender.send(plan.requests[k].clone()).await.is_err() {
                                    // The server has ended the stream (it refused a request):
                                    // this one is resent on the next stream, but the answers
                                    // to the ones before it are still coming and must be
                                    // read, or requests the server stored would be sent again.
                                    tx = None;
                                }
                            }
                            // Nothing left: end the request stream so the server ends its own.
                            None => tx = None,
                        }
                    }
                }
                Ok(None) if pending.is_empty() => break,
                Ok(None) => {
                    stream_cut(&mut tally, &plan, &mut pending, front, &path);
                    break;
                }
                Err(s) => {
                    stream_refused(
                        &mut tally,
                        &plan,
                        &mut pending,
                        front,
                        &mut attempt,
                        &path,
                        s,
                    )
                    .await;
                    break;
                }
            }
        }
    }
}

/// Opens a `StreamMetricData` stream sending what `rx` yields.
async fn open_stream(
    grpc: &mut tonic::client::Grpc<Channel>,
    rx: mpsc::Receiver<Bytes>,
    path: &PathAndQuery,
) -> Result<tonic::codec::Streaming<PutMetricDataResponse>, Status> {
    grpc.ready().await.map_err(not_ready)?;
    grpc.streaming(
        Request::new(ReceiverStream::new(rx)),
        path.clone(),
        PreEncoded::<PutMetricDataResponse>::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

/// A stream (or its opening) failed with `s` while `pending` awaited answers: after a
/// backoff if `s` is RESOURCE_EXHAUSTED and retries are left (every pending request is then
/// resent on the next stream), else the oldest pending request counts as failed.
async fn stream_refused(
    tally: &mut Tally,
    plan: &Plan,
    pending: &mut VecDeque<(usize, Instant)>,
    front: usize,
    attempt: &mut u32,
    path: &PathAndQuery,
    s: Status,
) {
    if !tally.backoff(&s, attempt, plan.max_retries).await {
        let k = pending.front().map_or(front, |p| p.0);
        plan.failed(tally, k, &s, path);
        pending.pop_front();
        *attempt = 0;
    }
}

/// A stream ended without a status while `pending` awaited answers: the oldest counts as
/// failed, the rest are resent on the next stream.
fn stream_cut(
    tally: &mut Tally,
    plan: &Plan,
    pending: &mut VecDeque<(usize, Instant)>,
    front: usize,
    path: &PathAndQuery,
) {
    let k = pending.front().map_or(front, |p| p.0);
    let s = Status::unavailable("the stream ended before the request was acknowledged");
    plan.failed(tally, k, &s, path);
    pending.pop_front();
}

/// `--stream --rate`: one `StreamMetricData` stream per connection, like [`stream_sender`],
/// but each request is sent when it is due rather than when a response frees a slot. The
/// connection takes the next request from the plan whenever fewer than `window` await their
/// response, waits for its due time while still reading responses, and sends it; so with every
/// slot of every connection busy the next request is late, and its latency (from the due time)
/// shows it. Failures are handled as in [`stream_sender`]: the stream is reopened and every
/// unacknowledged request resent, keeping its due time.
async fn open_stream_sender(channel: Channel, plan: Arc<Plan>, window: usize) -> Tally {
    let path = stream_metric_data_path();
    let mut grpc = tonic::client::Grpc::new(channel);
    let mut tally = Tally::new();
    // Sent but not acknowledged, oldest first, with the time each was due.
    let mut pending: VecDeque<(usize, Instant)> = VecDeque::with_capacity(window);
    // Taken from the plan, waiting for its due time (kept across a reopened stream).
    let mut next: Option<(usize, Instant)> = None;
    let mut attempt = 0;
    loop {
        if pending.is_empty() {
            // A stream is opened with a request in it (the server may wait for the first
            // one before it answers the call), so wait for the next one to be due.
            let Some((k, due)) = next
                .take()
                .or_else(|| plan.take().map(|k| (k, plan.due(k))))
            else {
                return tally;
            };
            plan.sleep_until(due).await;
            tally.left(due);
            pending.push_back((k, due));
        }
        let (tx, rx) = mpsc::channel::<Bytes>(window);
        // The channel holds `window` requests, so these sends never wait.
        for &(k, _) in &pending {
            let _ = tx.try_send(plan.requests[k].clone());
        }
        let Some(&(front, _)) = pending.front() else {
            unreachable!("a request was queued above")
        };
        let mut tx = Some(tx);

        let mut responses = match open_stream(&mut grpc, rx, &path).await {
            Ok(r) => r,
            Err(s) => {
                stream_refused(
                    &mut tally,
                    &plan,
                    &mut pending,
                    front,
                    &mut attempt,
                    &path,
                    s,
                )
                .await;
                continue;
            }
        };

        loop {
            if next.is_none() && tx.is_some() && pending.len() < window {
                next = plan.take().map(|k| (k, plan.due(k)));
                if next.is_none() {
                    // Nothing left: end the request stream so the server ends its own.
                    tx = None;
                }
            }
            let due = next.map(|(_, due)| due);
            tokio::select! {
                biased;
                message = responses.message() => match message {
                    Ok(Some(r)) => {
                        let Some((_, due)) = pending.pop_front() else {
                            let s = Status::internal("more responses than requests");
                            plan.failed(&mut tally, front, &s, &path);
                            break;
                        };
                        tally.acknowledged(due, r.accepted_samples);
                        attempt = 0;
                    }
                    Ok(None) if pending.is_empty() => break,
                    Ok(None) => {
                        stream_cut(&mut tally, &plan, &mut pending, front, &path);
                        break;
                    }
                    Err(s) => {
                        stream_refused(&mut tally, &plan, &mut pending, front, &mut attempt, &path, s)
                            .await;
                        break;
                    }
                },
                () = sleep_until_some(&plan, due) => {
                    let (Some((k, due)), Some(sender)) = (next.take(), &tx) else {
                        unreachable!("the timer runs only with a request waiting")
                    };
                    tally.left(due);
                    pending.push_back((k, due));
                    if sender.send(plan.requests[k].clone()).await.is_err() {
                        // The server has ended the stream: this request is resent on the next
                        // one; the answers to those before it are still read (see
                        // `stream_sender`).
                        tx = None;
                    }
                }
            }
        }
    }
}

/// Sleeps until `due`; never returns for `None`.
async fn sleep_until_some(plan: &Plan, due: Option<Instant>) {
    match due {
        Some(due) => plan.sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// Where remote-write requests go: `host:port` and the path.
#[derive(Clone, Debug)]
struct HttpTarget {
    authority: String,
    path: PathAndQuery,
}

impl HttpTarget {
    /// `http://host[:port][/path]`; the port defaults to 80, the path to `/api/v1/write`.
    fn parse(target: &str) -> anyhow::Result<HttpTarget> {
        let uri: Uri = target
            .parse()
            .with_context(|| format!("invalid --target {target:?}"))?;
        ensure!(
            uri.scheme_str() == Some("http"),
            "--target {target:?}: --protocol remote-write needs an http:// URL (the HTTP \
             port, e.g. http://127.0.0.1:8428; TLS is not supported)"
        );
        let authority = uri
            .authority()
            .with_context(|| format!("--target {target:?} has no host"))?;
        let authority = match authority.port_u16() {
            Some(_) => authority.to_string(),
            None => format!("{}:80", authority.host()),
        };
        let path = match uri.path_and_query() {
            Some(p) if p.path() != "/" => p.clone(),
            _ => PathAndQuery::from_static(remote_write::WRITE_PATH),
        };
        Ok(HttpTarget { authority, path })
    }

    fn url(&self) -> String {
        format!("http://{}{}", self.authority, self.path)
    }
}

type HttpConnection = http1::SendRequest<Full<Bytes>>;

/// Opens one keep-alive HTTP/1.1 connection (TCP_NODELAY), its driver on its own task.
async fn http_connect(target: &HttpTarget) -> Result<HttpConnection, String> {
    let addr = &target.authority;
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (send, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP/1.1 handshake with {addr} failed: {e}"))?;
    tokio::spawn(async move {
        // Ends when the connection closes; a failure shows on the next request.
        let _ = conn.await;
    });
    Ok(send)
}

/// Everything a remote-write sender shares besides the [`Plan`].
#[derive(Debug)]
struct HttpPlan {
    target: HttpTarget,
    user_agent: String,
}

/// `--protocol remote-write`: encodes, connects, then POSTs every request once acknowledged.
async fn run_remote_write(args: &Args, workload: &Workload) -> anyhow::Result<Report> {
    ensure!(
        !args.stream,
        "--stream needs --protocol native: remote write is one POST per request"
    );
    if let Some(in_flight) = args.in_flight {
        ensure!(
            in_flight == 1,
            "--in-flight {in_flight} with --protocol remote-write: HTTP/1.1 carries one \
             request at a time per connection; use --connections for concurrency",
        );
    }
    let target = HttpTarget::parse(&args.target)?;
    let encoded = workload.encode_remote_write(args.batches_per_write as usize);
    let bodies = take_part(encoded.bodies, args.part);
    let samples = take_part(encoded.samples, args.part);
    let expected_samples: u64 = samples.iter().sum();
    let offsets = args.rate.map(|rate| schedule_offsets(&samples, rate));
    let unary_path = target.path.clone();
    let http = Arc::new(HttpPlan {
        target,
        user_agent: format!("thermostat-loadgen/{}", env!("CARGO_PKG_VERSION")),
    });
    let mut connections = Vec::new();
    for _ in 0..args.connections {
        connections.push(
            http_connect(&http.target)
                .await
                .map_err(anyhow::Error::msg)?,
        );
    }

    let pacer = Pacer::start().context("cannot start the pacer thread")?;
    wait_for_start(args).await?;
    let cpu_before = ProcStat::read("self").ok();
    let start = Instant::now();
    let plan = Arc::new(Plan {
        requests: bodies,
        samples,
        unary_path,
        next: AtomicUsize::new(0),
        stopped: AtomicBool::new(false),
        max_retries: args.max_retries,
        schedule: offsets.map(|offsets| Schedule {
            start,
            offsets,
            pacer,
        }),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for conn in connections {
        tasks.spawn(http_sender(conn, Arc::clone(&plan), Arc::clone(&http)));
    }
    let mut total = Tally::new();
    while let Some(t) = tasks.join_next().await {
        total.merge(t.context("a sender panicked")?);
    }
    let elapsed = start.elapsed();
    let client_cpu_seconds = cpu_before
        .zip(ProcStat::read("self").ok())
        .map(|(a, b)| b.cpu_seconds - a.cpu_seconds);
    Ok(Report {
        protocol: "remote-write",
        mode: "http1",
        connections: usize::from(args.connections),
        samples: total.samples,
        expected_samples,
        requests: total.requests,
        errors: total.errors,
        retries: total.retries,
        elapsed,
        target_rate: args.rate,
        ack_latency_p50_ms: 0.0,
        ack_latency_p90_ms: 0.0,
        ack_latency_p99_ms: 0.0,
        ack_latency_p999_ms: 0.0,
        ack_latency_max_ms: 0.0,
        sent_late_p99_ms: None,
        first_error: total.first_error.map(|(_, e)| e),
        client_cpu_seconds,
    }
    .with_latencies(&total.latency_us)
    .with_lateness(&total.late_us))
}

/// How one POST ended.
enum Answer {
    /// The status, the `Retry-After` header's delay, and the body.
    Status(StatusCode, Option<Duration>, Bytes),
    /// No answer: the connection failed or timed out.
    Transport(String),
}

/// POSTs `body` on `conn` and reads the whole answer (so the connection can be reused).
async fn post(conn: &mut HttpConnection, http: &HttpPlan, body: Bytes) -> Answer {
    let request = hyper::Request::post(http.target.path.as_str())
        .header(header::HOST, http.target.authority.as_str())
        .header(header::CONTENT_TYPE, remote_write::CONTENT_TYPE)
        .header(header::CONTENT_ENCODING, remote_write::CONTENT_ENCODING)
        .header(remote_write::VERSION_HEADER, remote_write::VERSION)
        .header(header::USER_AGENT, http.user_agent.as_str())
        .body(Full::new(body));
    let request = match request {
        Ok(r) => r,
        Err(e) => return Answer::Transport(format!("cannot build the request: {e}")),
    };
    let exchange = async {
        conn.ready().await?;
        let response = conn.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok::<_, hyper::Error>((parts, body))
    };
    match tokio::time::timeout(HTTP_TIMEOUT, exchange).await {
        Err(_) => Answer::Transport(format!("no answer within {HTTP_TIMEOUT:?}")),
        Ok(Err(e)) => Answer::Transport(format!("{e}")),
        Ok(Ok((parts, body))) => {
            let retry_after = parts
                .headers
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
            Answer::Status(parts.status, retry_after, body)
        }
    }
}

/// The start of an error answer's body, for the error message.
fn quote_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    let mut quoted: String = text.chars().take(BODY_QUOTE_CHARS).collect();
    if quoted.len() < text.len() {
        quoted.push('…');
    }
    quoted
}

/// One keep-alive HTTP/1.1 connection POSTing requests one at a time. Latency runs from the
/// first attempt (open loop: from the request's due time, after waiting for it) to the 2xx
/// answer, so it includes any backoff. A connection the server closed
/// is reopened (a failure to reopen is retried like a failed request).
async fn http_sender(conn: HttpConnection, plan: Arc<Plan>, http: Arc<HttpPlan>) -> Tally {
    let mut conn = Some(conn);
    let mut tally = Tally::new();
    let url = http.target.url();
    while let Some(k) = plan.take() {
        let since = plan.wait_until_due(k, &mut tally).await;
        let mut attempt = 0;
        let mut transport_failures = 0;
        loop {
            if conn.as_ref().is_none_or(http1::SendRequest::is_closed) {
                conn = None;
                match http_connect(&http.target).await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        transport_failures += 1;
                        if transport_failures < MAX_TRANSPORT_ATTEMPTS
                            && tally.retry(&mut attempt, plan.max_retries, None).await
                        {
                            continue;
                        }
                        let text = format!("request {k} to {url}: {e} (run stopped)");
                        plan.failed_with(&mut tally, text, true);
                        break;
                    }
                }
            }
            let Some(c) = conn.as_mut() else {
                unreachable!("connected above")
            };
            match post(c, &http, plan.requests[k].clone()).await {
                Answer::Status(status, _, _) if status.is_success() => {
                    tally.acknowledged(since, plan.samples[k]);
                }
                Answer::Status(status, wait, body)
                    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() =>
                {
                    if tally.retry(&mut attempt, plan.max_retries, wait).await {
                        continue;
                    }
                    let text = format!(
                        "request {k}: POST {url} answered {status} {} times: {}",
                        attempt + 1,
                        quote_body(&body)
                    );
                    plan.failed_with(&mut tally, text, false);
                }
                Answer::Status(status, _, body) => {
                    // The endpoint, not this request's data, is at fault: every request would
                    // get the same answer.
                    let stop = matches!(
                        status,
                        StatusCode::UNAUTHORIZED
                            | StatusCode::FORBIDDEN
                            | StatusCode::NOT_FOUND
                            | StatusCode::METHOD_NOT_ALLOWED
                            | StatusCode::UNSUPPORTED_MEDIA_TYPE
                    );
                    let text = format!(
                        "request {k}: POST {url} answered {status}{}: {}",
                        if stop { " (run stopped)" } else { "" },
                        quote_body(&body)
                    );
                    plan.failed_with(&mut tally, text, stop);
                }
                Answer::Transport(e) => {
                    conn = None;
                    transport_failures += 1;
                    if transport_failures < MAX_TRANSPORT_ATTEMPTS
                        && tally.retry(&mut attempt, plan.max_retries, None).await
                    {
                        continue;
                    }
                    let text = format!(
                        "request {k}: POST {url} got no answer {transport_failures} times \
                         (run stopped): {e}"
                    );
                    plan.failed_with(&mut tally, text, true);
                }
            }
            break;
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    #[test]
    fn request_k_is_due_k_batches_over_the_rate_after_the_start() {
        // 100 series × 50 samples in requests of 100 at 20,000 samples/s: one every 5 ms.
        let offsets = schedule_offsets(&[100; 50], 20_000.0);
        assert_eq!(offsets.len(), 50);
        for (k, d) in offsets.iter().enumerate() {
            assert!((ms(*d) - k as f64 * 5.0).abs() < 1e-6, "request {k}: {d:?}");
        }
        assert_eq!(offsets[0], Duration::ZERO);
        assert_eq!(offsets[49], Duration::from_millis(245));
    }

    #[test]
    fn uneven_requests_are_due_by_the_samples_before_them() {
        // A short last request (1,050 samples in batches of 500) is due after the two full
        // ones; a short request in the middle moves the ones after it earlier.
        let offsets = schedule_offsets(&[500, 500, 50], 1000.0);
        assert_eq!(
            offsets,
            [
                Duration::ZERO,
                Duration::from_millis(500),
                Duration::from_secs(1)
            ]
        );
        let offsets = schedule_offsets(&[10, 5, 10], 10.0);
        assert_eq!(
            offsets,
            [
                Duration::ZERO,
                Duration::from_secs(1),
                Duration::from_millis(1500)
            ]
        );
        assert!(schedule_offsets(&[], 1.0).is_empty());
        // A rate far too low for a Duration saturates instead of panicking.
        assert_eq!(schedule_offsets(&[1, 1], 1e-300)[1], Duration::MAX);
    }

    #[test]
    fn the_rate_must_be_a_positive_number() {
        assert_eq!(parse_rate("20000"), Ok(20_000.0));
        assert_eq!(parse_rate("2.5e4"), Ok(25_000.0));
        for bad in ["0", "-5", "inf", "NaN", "fast"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parts_take_every_nth_request_and_cover_the_workload_once() {
        assert_eq!(parse_part("2/3"), Ok(Part { index: 2, of: 3 }));
        for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
            assert!(parse_part(bad).is_err(), "{bad}");
        }
        let all: Vec<u32> = (0..10).collect();
        assert_eq!(take_part(all.clone(), None), all);
        let parts: Vec<Vec<u32>> = (1..=3)
            .map(|index| take_part(all.clone(), Some(Part { index, of: 3 })))
            .collect();
        assert_eq!(parts[0], [0, 3, 6, 9]);
        assert_eq!(parts[1], [1, 4, 7]);
        assert_eq!(parts[2], [2, 5, 8]);
        assert_eq!(take_part(all.clone(), Some(Part { index: 1, of: 1 })), all);
    }
}
