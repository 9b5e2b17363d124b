//! The pure parts of the side-by-side ingest comparison with VictoriaMetrics (`compare`, run
//! through `benches/compare/run`): the workload's host × metric layout, reading counters from
//! Prometheus text, a minimal HTTP/1.1 response reader, and the result as a table or JSON.
//!
//! The driver (`src/bin/compare.rs`) starts the servers, sends the data and reads `/proc`;
//! everything here is a function of its inputs and is unit-tested.

use std::fmt::Write as _;
use std::io::{self, BufRead};

use serde_json::{Value, json};

use crate::workload::HOST_METRICS;

/// Metrics per host in the comparison's fleet layout (`CPUUtilization` … `ProcessCount`).
pub const METRICS_PER_HOST: usize = HOST_METRICS.len();

/// Hosts × metrics per host for `series` series: 10 metrics per host when `series` is a
/// multiple of 10, one host with `series` metrics below 10.
///
/// # Errors
/// A message when `series` is 0, or 10 or more and not a multiple of 10.
pub fn hosts_and_metrics(series: usize) -> Result<(usize, usize), String> {
    match series {
        0 => Err("--series must be at least 1".to_owned()),
        1..METRICS_PER_HOST => Ok((1, series)),
        _ if series.is_multiple_of(METRICS_PER_HOST) => {
            Ok((series / METRICS_PER_HOST, METRICS_PER_HOST))
        }
        _ => Err(format!(
            "--series {series} is not a whole number of hosts with {METRICS_PER_HOST} metrics \
             each: use a multiple of {METRICS_PER_HOST} (or fewer than {METRICS_PER_HOST})"
        )),
    }
}

/// The value of one sample of Prometheus text, `series` being exactly what precedes the
/// value on its line (`name` or `name{label="v"}`); `None` when no line has it.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?.strip_prefix(' ')?;
        rest.split_ascii_whitespace().next()?.parse().ok()
    })
}

/// An HTTP response: status code and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// Whether the server will close the connection after this response.
    pub close: bool,
}

impl HttpResponse {
    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads one HTTP/1.x response from `r`: the status line, the headers, and a body delimited
/// by `Content-Length`, chunked transfer encoding, or the end of the stream. A response to a
/// request that has no body (`HEAD`) is not supported; 1xx, 204 and 304 have none.
///
/// # Errors
/// A read error, or a response that is not HTTP/1.x.
pub fn read_response(r: &mut impl BufRead) -> io::Result<HttpResponse> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_ascii_whitespace();
    let version = parts.next().unwrap_or_default().to_owned();
    if !version.starts_with("HTTP/1.") {
        return Err(invalid(format!("not an HTTP/1 status line: {line:?}")));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("no status code in {line:?}")))?;
    let mut length = None;
    let mut chunked = false;
    let mut close = version == "HTTP/1.0";
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(invalid("the headers ended early"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(value.parse::<usize>().map_err(|_| invalid(header))?);
            }
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if (100..200).contains(&status) || status == 204 || status == 304 {
        // No body.
    } else if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size = line.trim().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    line.clear();
                    if r.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            line.clear();
            r.read_line(&mut line)?;
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else {
        r.read_to_end(&mut body)?;
        close = true;
    }
    Ok(HttpResponse {
        status,
        body,
        close,
    })
}

/// What one server did with the workload.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerRun {
    /// Wall time from the first request to the last acknowledgement, seconds.
    pub seconds: f64,
    /// Samples the server counted (its own counter).
    pub samples_counted: u64,
    /// Peak RSS of the server process (`VmHWM`), bytes.
    pub peak_rss_bytes: u64,
    /// CPU time of the server process (`utime + stime`) at the end, seconds.
    pub cpu_seconds: f64,
    /// CPU time of the sending side during the run, seconds.
    pub client_cpu_seconds: Option<f64>,
    /// The load average (1 minute) just before the server started.
    pub load_average_before: Option<f64>,
    /// Share of the machine's CPU time that was idle in the 2 s before the server started
    /// (0 to 1, from `/proc/stat`): how quiet the machine was.
    pub idle_before: Option<f64>,
}

impl ServerRun {
    /// Counted samples per second of wall time.
    pub fn samples_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.samples_counted as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Thermostat's side: the common figures plus loadgen's acknowledgement latencies.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ThermostatRun {
    /// The common figures.
    pub server: ServerRun,
    /// Median acknowledgement latency, ms.
    pub ack_latency_p50_ms: f64,
    /// 99th percentile acknowledgement latency, ms.
    pub ack_latency_p99_ms: f64,
    /// Largest acknowledgement latency, ms.
    pub ack_latency_max_ms: f64,
    /// RESOURCE_EXHAUSTED answers loadgen retried.
    pub retries: u64,
    /// Series the server holds afterwards (`thermostat_series_active`).
    pub series_active: Option<u64>,
    /// CPU time of the server process from just before loadgen started (the server idle)
    /// to after its counters were read: the load's cost without the start-up, seconds.
    pub load_cpu_seconds: Option<f64>,
}

/// VictoriaMetrics' side: the common figures plus the time `/internal/force_flush` took.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VictoriaMetricsRun {
    /// The common figures.
    pub server: ServerRun,
    /// Median and 99th percentile acknowledgement latency, ms, where loadgen sent the data
    /// (`--protocol remote-write`); `None` for the file import.
    pub ack_latency_ms: Option<(f64, f64)>,
    /// Seconds `/internal/force_flush` took after the last acknowledgement.
    pub flush_seconds: f64,
    /// Rows VictoriaMetrics reports added to its storage (`vm_rows_added_to_storage_total`).
    pub rows_added_to_storage: u64,
    /// Series VictoriaMetrics created (`vm_new_timeseries_created_total`).
    pub new_series: Option<u64>,
    /// Samples a query over the stored data counts after the flush
    /// (`sum(count_over_time({__name__!=""}[…]))`); `None` when the query was refused.
    pub samples_queried: Option<u64>,
}

/// The fractions of Thermostat's closed-loop rate at which `compare --latency-curve` measures
/// acknowledgement latency with an open-loop load (`loadgen --rate`).
pub const LATENCY_CURVE_FRACTIONS: [f64; 4] = [0.25, 0.5, 0.75, 0.9];

/// One level of the latency curve: a fresh Thermostat server sent the same workload by
/// `loadgen --rate` (open loop) at `fraction` of the closed-loop rate.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LatencyLevel {
    /// Share of the closed-loop rate (0.25 = 25 %).
    pub fraction: f64,
    /// The open loop's target, samples per second.
    pub target_rate: f64,
    /// Samples acknowledged per second from the start of the schedule to the last
    /// acknowledgement (loadgen's `samples_per_second`).
    pub achieved_rate: f64,
    /// Samples the server counted (`thermostat_ingest_samples_total`).
    pub samples_counted: u64,
    /// RESOURCE_EXHAUSTED answers loadgen retried.
    pub retries: u64,
    /// Acknowledgement latency percentiles from each request's scheduled send time, ms.
    pub ack_latency_p50_ms: f64,
    /// 90th percentile, ms.
    pub ack_latency_p90_ms: f64,
    /// 99th percentile, ms.
    pub ack_latency_p99_ms: f64,
    /// 99.9th percentile, ms.
    pub ack_latency_p999_ms: f64,
    /// Largest, ms.
    pub ack_latency_max_ms: f64,
    /// 99th percentile of how late loadgen's requests left after their due time, ms: the
    /// client's own share of the latencies.
    pub sent_late_p99_ms: f64,
}

impl LatencyLevel {
    /// The level as one JSON object (an element of `latency_curve`).
    pub fn to_json(&self) -> Value {
        json!({
            "fraction": self.fraction,
            "target_rate": self.target_rate,
            "achieved_rate": self.achieved_rate,
            "samples_counted": self.samples_counted,
            "retries": self.retries,
            "ack_latency_p50_ms": self.ack_latency_p50_ms,
            "ack_latency_p90_ms": self.ack_latency_p90_ms,
            "ack_latency_p99_ms": self.ack_latency_p99_ms,
            "ack_latency_p999_ms": self.ack_latency_p999_ms,
            "ack_latency_max_ms": self.ack_latency_max_ms,
            "sent_late_p99_ms": self.sent_late_p99_ms,
        })
    }
}

/// One Thermostat node of the `--cluster` run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterNodeRun {
    /// Its `--node-id` (`n1` … `nN`).
    pub node_id: String,
    /// Samples its loadgen sent it (its `--part` of the workload).
    pub samples_sent: u64,
    /// Samples it counted (`thermostat_ingest_samples_total`: the receiving node counts,
    /// once the cluster's stream has stored them).
    pub samples_counted: u64,
    /// Its loadgen's wall time, first request to last acknowledgement, seconds.
    pub seconds: f64,
    /// CPU time of the node's process (`utime + stime`) at the end, start-up and joining
    /// included, seconds.
    pub cpu_seconds: f64,
    /// CPU time of the node's process from just before the loadgens started (the cluster
    /// formed and idle) until every sample was counted and every series stored, seconds.
    pub load_cpu_seconds: f64,
    /// Peak RSS of the node's process (`VmHWM`), bytes.
    pub peak_rss_bytes: u64,
    /// Partitions it owned when the load started.
    pub partitions_owned: usize,
    /// Series in its store afterwards (`thermostat_series_active`): those of its partitions.
    pub series_active: Option<u64>,
    /// 99th percentile acknowledgement latency its loadgen saw, ms.
    pub ack_latency_p99_ms: f64,
    /// RESOURCE_EXHAUSTED answers its loadgen retried.
    pub retries: u64,
}

impl ClusterNodeRun {
    /// Samples it counted per second of its loadgen's wall time.
    pub fn samples_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.samples_counted as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// `--cluster N`: the same workload split over N Thermostat nodes sharing one nats-server
/// (JetStream), one loadgen per node sending every N-th request, all started together.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterRun {
    /// The nodes, `n1` first.
    pub nodes: Vec<ClusterNodeRun>,
    /// The cluster's partitions.
    pub partitions: u32,
    /// Wall time of the whole run: the slowest loadgen's, seconds (they start together).
    pub seconds: f64,
    /// CPU time of the nats-server process at the end, seconds.
    pub nats_cpu_seconds: f64,
    /// CPU time of the nats-server process over the load (as
    /// [`ClusterNodeRun::load_cpu_seconds`]), seconds.
    pub nats_load_cpu_seconds: f64,
    /// Peak RSS of the nats-server process, bytes.
    pub nats_peak_rss_bytes: u64,
    /// Messages in the ingest stream afterwards (nats-server's monitoring), when read.
    pub stream_messages: Option<u64>,
}

/// `x` seconds per million of `samples`; 0 without samples.
pub fn per_million(seconds: f64, samples: u64) -> f64 {
    if samples == 0 {
        0.0
    } else {
        seconds * 1e6 / samples as f64
    }
}

impl ClusterRun {
    /// Samples the nodes counted between them.
    pub fn samples_counted(&self) -> u64 {
        self.nodes.iter().map(|n| n.samples_counted).sum()
    }

    /// Samples the loadgens sent between them.
    pub fn samples_sent(&self) -> u64 {
        self.nodes.iter().map(|n| n.samples_sent).sum()
    }

    /// Series the nodes' stores hold between them, when every node said.
    pub fn series_stored(&self) -> Option<u64> {
        self.nodes.iter().map(|n| n.series_active).sum()
    }

    /// Counted samples per second of the run's wall time.
    pub fn samples_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.samples_counted() as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// The cluster's rate over its node count: what one node ingests in cluster mode.
    pub fn samples_per_second_per_node(&self) -> f64 {
        if self.nodes.is_empty() {
            0.0
        } else {
            self.samples_per_second() / self.nodes.len() as f64
        }
    }

    /// CPU time of every Thermostat node together over the load, seconds.
    pub fn thermostat_cpu_seconds(&self) -> f64 {
        self.nodes.iter().map(|n| n.load_cpu_seconds).sum()
    }

    /// CPU time of every Thermostat node's process together, start-up included, seconds.
    pub fn thermostat_process_cpu_seconds(&self) -> f64 {
        self.nodes.iter().map(|n| n.cpu_seconds).sum()
    }

    /// Thermostat's CPU seconds over the load (all nodes) per million samples counted.
    pub fn thermostat_cpu_seconds_per_million(&self) -> f64 {
        per_million(self.thermostat_cpu_seconds(), self.samples_counted())
    }

    /// nats-server's CPU seconds over the load per million samples counted.
    pub fn nats_cpu_seconds_per_million(&self) -> f64 {
        per_million(self.nats_load_cpu_seconds, self.samples_counted())
    }
}

/// `--protocol native`: Thermostat gets the native gRPC API, VictoriaMetrics the Prometheus
/// text import.
pub const NATIVE: &str = "native";
/// `--protocol remote-write`: both servers get Prometheus remote write 1.0 from loadgen.
pub const REMOTE_WRITE: &str = "remote-write";

/// The `type` label of VictoriaMetrics' `vm_rows_inserted_total` for the data of `protocol`.
pub fn vm_rows_type(protocol: &str) -> &'static str {
    if protocol == REMOTE_WRITE {
        "promremotewrite"
    } else {
        "prometheus"
    }
}

/// How the comparison was run.
#[derive(Clone, Debug, PartialEq)]
pub struct Setup {
    /// [`NATIVE`] or [`REMOTE_WRITE`].
    pub protocol: &'static str,
    /// Hosts.
    pub hosts: usize,
    /// Metrics per host.
    pub metrics: usize,
    /// Samples per series.
    pub samples_per_series: usize,
    /// Datums per gRPC request (remote write: samples per request).
    pub batch: usize,
    /// gRPC connections (remote write: HTTP/1.1 connections, to each server).
    pub connections: usize,
    /// Requests in flight per connection (remote write: 1).
    pub in_flight: usize,
    /// `unary` or `stream` (remote write: `http1`).
    pub mode: &'static str,
    /// Datum order (`agent` or `time`, see [`crate::Order`]); both servers get the same.
    pub order: &'static str,
    /// Concurrent HTTP clients for VictoriaMetrics.
    pub vm_clients: usize,
    /// Lines per import request (one pre-generated file each).
    pub vm_lines_per_request: usize,
}

impl Setup {
    /// Series = hosts × metrics.
    pub fn series(&self) -> usize {
        self.hosts * self.metrics
    }

    /// Samples in the workload.
    pub fn samples(&self) -> u64 {
        self.series() as u64 * self.samples_per_series as u64
    }
}

/// The whole comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// How it was run.
    pub setup: Setup,
    /// Thermostat's figures.
    pub thermostat: ThermostatRun,
    /// VictoriaMetrics' figures (`None` when it was skipped).
    pub victoriametrics: Option<VictoriaMetricsRun>,
    /// `--latency-curve`: Thermostat's open-loop latency at [`LATENCY_CURVE_FRACTIONS`] of its
    /// closed-loop rate, one fresh server per level (`None` without the flag).
    pub latency_curve: Option<Vec<LatencyLevel>>,
    /// `--cluster N`: the same workload over N nodes on NATS JetStream (`None` without it).
    pub cluster: Option<ClusterRun>,
}

impl Comparison {
    /// Thermostat's rate over VictoriaMetrics' (the issue's goal is ≥ 3).
    pub fn ratio(&self) -> Option<f64> {
        let vm = self.victoriametrics.as_ref()?.server.samples_per_second();
        (vm > 0.0).then(|| self.thermostat.server.samples_per_second() / vm)
    }

    /// Thermostat's CPU seconds over the load in the single-node run (its whole process's
    /// when the load's was not measured).
    pub fn single_thermostat_cpu_seconds(&self) -> f64 {
        self.thermostat
            .load_cpu_seconds
            .unwrap_or(self.thermostat.server.cpu_seconds)
    }

    /// Thermostat's CPU seconds per million samples in the single-node run (over the load).
    pub fn single_thermostat_cpu_seconds_per_million(&self) -> f64 {
        per_million(
            self.single_thermostat_cpu_seconds(),
            self.thermostat.server.samples_counted,
        )
    }

    /// `--cluster`: Thermostat's CPU per sample in cluster mode (all nodes) over the
    /// single-node run's (issue 24's goal: at most 1.5).
    pub fn cluster_cpu_ratio(&self) -> Option<f64> {
        let single = self.single_thermostat_cpu_seconds_per_million();
        let cluster = self.cluster.as_ref()?.thermostat_cpu_seconds_per_million();
        (single > 0.0).then(|| cluster / single)
    }

    /// Every count mismatch, as sentences (empty when both servers counted every sample).
    pub fn mismatches(&self) -> Vec<String> {
        let expected = self.setup.samples();
        let mut out = Vec::new();
        let t = self.thermostat.server.samples_counted;
        if t != expected {
            out.push(format!(
                "Thermostat counted {t} samples (thermostat_ingest_samples_total), {expected} were sent"
            ));
        }
        for level in self.latency_curve.iter().flatten() {
            if level.samples_counted != expected {
                out.push(format!(
                    "at {:.0} % of the maximum rate (open loop) Thermostat counted {} samples \
                     (thermostat_ingest_samples_total), {expected} were sent",
                    level.fraction * 100.0,
                    level.samples_counted
                ));
            }
        }
        if let Some(c) = &self.cluster {
            let counted = c.samples_counted();
            if c.samples_sent() != expected {
                out.push(format!(
                    "the cluster's loadgens sent {} samples between them, the workload has \
                     {expected}",
                    c.samples_sent()
                ));
            }
            if counted != expected {
                out.push(format!(
                    "the {} cluster nodes counted {counted} samples between them \
                     (thermostat_ingest_samples_total), {expected} were sent",
                    c.nodes.len()
                ));
            }
            for n in &c.nodes {
                if n.samples_counted != n.samples_sent {
                    out.push(format!(
                        "cluster node {} counted {} samples (thermostat_ingest_samples_total), \
                         its loadgen sent it {}",
                        n.node_id, n.samples_counted, n.samples_sent
                    ));
                }
            }
            let series = self.setup.series() as u64;
            match c.series_stored() {
                Some(stored) if stored != series => out.push(format!(
                    "the cluster nodes' stores hold {stored} series between them \
                     (thermostat_series_active), the workload has {series}"
                )),
                Some(_) => {}
                None => out.push(
                    "a cluster node has no thermostat_series_active: cannot check that every \
                     series is stored"
                        .to_owned(),
                ),
            }
        }
        if let Some(vm) = &self.victoriametrics {
            let v = vm.server.samples_counted;
            if v != expected {
                out.push(format!(
                    "VictoriaMetrics counted {v} samples (vm_rows_inserted_total{{type=\"{}\"}}), {expected} were sent",
                    vm_rows_type(self.setup.protocol)
                ));
            }
            if vm.rows_added_to_storage != expected {
                out.push(format!(
                    "VictoriaMetrics added {} rows to storage (vm_rows_added_to_storage_total), {expected} were sent",
                    vm.rows_added_to_storage
                ));
            }
            if let Some(q) = vm.samples_queried
                && q != expected
            {
                out.push(format!(
                    "a query over VictoriaMetrics' storage counts {q} samples, {expected} were sent"
                ));
            }
        }
        out
    }

    /// The figures as one JSON object: the issue's eight keys, then details.
    pub fn to_json(&self) -> Value {
        let t = &self.thermostat;
        let vm = self.victoriametrics.as_ref();
        let s = &self.setup;
        let mut j = json!({
            "thermostat_samples_per_second": t.server.samples_per_second(),
            "victoriametrics_samples_per_second": vm.map(|v| v.server.samples_per_second()),
            "ratio": self.ratio(),
            "thermostat_peak_rss_bytes": t.server.peak_rss_bytes,
            "victoriametrics_peak_rss_bytes": vm.map(|v| v.server.peak_rss_bytes),
            "ack_latency_p99_ms": t.ack_latency_p99_ms,
            "thermostat_cpu_seconds": t.server.cpu_seconds,
            "victoriametrics_cpu_seconds": vm.map(|v| v.server.cpu_seconds),
            "ack_latency_p50_ms": t.ack_latency_p50_ms,
            "ack_latency_max_ms": t.ack_latency_max_ms,
            "series": s.series(),
            "hosts": s.hosts,
            "metrics_per_host": s.metrics,
            "samples_per_series": s.samples_per_series,
            "samples": s.samples(),
            "thermostat_samples_counted": t.server.samples_counted,
            "victoriametrics_samples_counted": vm.map(|v| v.server.samples_counted),
            "victoriametrics_rows_added_to_storage": vm.map(|v| v.rows_added_to_storage),
            "victoriametrics_samples_queried": vm.and_then(|v| v.samples_queried),
            "counts_match": self.mismatches().is_empty(),
            "thermostat_seconds": t.server.seconds,
            "victoriametrics_seconds": vm.map(|v| v.server.seconds),
            "victoriametrics_flush_seconds": vm.map(|v| v.flush_seconds),
            "victoriametrics_samples_per_second_with_flush": vm.map(|v| {
                v.server.samples_counted as f64 / (v.server.seconds + v.flush_seconds)
            }),
            "thermostat_client_cpu_seconds": t.server.client_cpu_seconds,
            "victoriametrics_client_cpu_seconds": vm.and_then(|v| v.server.client_cpu_seconds),
            "thermostat_series_active": t.series_active,
            "victoriametrics_new_series": vm.and_then(|v| v.new_series),
            "thermostat_retries": t.retries,
            "thermostat_load_average_before": t.server.load_average_before,
            "victoriametrics_load_average_before": vm.and_then(|v| v.server.load_average_before),
            "thermostat_cpu_idle_before": t.server.idle_before,
            "victoriametrics_cpu_idle_before": vm.and_then(|v| v.server.idle_before),
            "grpc_mode": s.mode,
            "datum_order": s.order,
            "grpc_connections": s.connections,
            "grpc_in_flight_per_connection": s.in_flight,
            "grpc_datums_per_request": s.batch,
            "victoriametrics_clients": s.vm_clients,
            "victoriametrics_lines_per_request": s.vm_lines_per_request,
        });
        // Outside the macro, whose recursion limit the keys above reach.
        let vm_latency = vm.and_then(|v| v.ack_latency_ms);
        j["protocol"] = json!(s.protocol);
        j["victoriametrics_ack_latency_p50_ms"] = json!(vm_latency.map(|l| l.0));
        j["victoriametrics_ack_latency_p99_ms"] = json!(vm_latency.map(|l| l.1));
        j["latency_curve"] = self.latency_curve.as_ref().map_or(Value::Null, |levels| {
            Value::Array(levels.iter().map(LatencyLevel::to_json).collect())
        });
        j["single_thermostat_cpu_seconds_per_million"] =
            json!(self.single_thermostat_cpu_seconds_per_million());
        j["single_thermostat_cpu_seconds"] = json!(self.single_thermostat_cpu_seconds());
        let c = self.cluster.as_ref();
        j["cluster_nodes"] = json!(c.map(|c| c.nodes.len()));
        j["cluster_samples_per_second"] = json!(c.map(ClusterRun::samples_per_second));
        j["cluster_thermostat_cpu_seconds_per_million"] =
            json!(c.map(ClusterRun::thermostat_cpu_seconds_per_million));
        j["cluster_nats_cpu_seconds_per_million"] =
            json!(c.map(ClusterRun::nats_cpu_seconds_per_million));
        j["cluster_cpu_ratio"] = json!(self.cluster_cpu_ratio());
        j["cluster_samples_per_second_per_node"] =
            json!(c.map(ClusterRun::samples_per_second_per_node));
        j["cluster_seconds"] = json!(c.map(|c| c.seconds));
        j["cluster_partitions"] = json!(c.map(|c| c.partitions));
        j["cluster_samples_counted"] = json!(c.map(ClusterRun::samples_counted));
        j["cluster_series_stored"] = json!(c.and_then(ClusterRun::series_stored));
        j["cluster_stream_messages"] = json!(c.and_then(|c| c.stream_messages));
        j["cluster_thermostat_cpu_seconds"] = json!(c.map(ClusterRun::thermostat_cpu_seconds));
        j["cluster_thermostat_process_cpu_seconds"] =
            json!(c.map(ClusterRun::thermostat_process_cpu_seconds));
        j["cluster_nats_cpu_seconds"] = json!(c.map(|c| c.nats_load_cpu_seconds));
        j["cluster_nats_process_cpu_seconds"] = json!(c.map(|c| c.nats_cpu_seconds));
        j["cluster_nats_peak_rss_bytes"] = json!(c.map(|c| c.nats_peak_rss_bytes));
        j["cluster_node_runs"] = c.map_or(Value::Null, |c| {
            Value::Array(
                c.nodes
                    .iter()
                    .map(|n| {
                        json!({
                            "node_id": n.node_id,
                            "samples_sent": n.samples_sent,
                            "samples_counted": n.samples_counted,
                            "seconds": n.seconds,
                            "samples_per_second": n.samples_per_second(),
                            "cpu_seconds": n.load_cpu_seconds,
                            "process_cpu_seconds": n.cpu_seconds,
                            "peak_rss_bytes": n.peak_rss_bytes,
                            "partitions_owned": n.partitions_owned,
                            "series_active": n.series_active,
                            "ack_latency_p99_ms": n.ack_latency_p99_ms,
                            "retries": n.retries,
                        })
                    })
                    .collect(),
            )
        });
        j
    }

    /// The `--cluster` run as a text table.
    fn cluster_table(&self, c: &ClusterRun) -> String {
        let mut out = String::new();
        let n = c.nodes.len();
        let _ = writeln!(
            out,
            "\nCluster mode (issue 24): {n} Thermostat node(s) and one nats-server (JetStream, \
             {} partitions) on this machine; the same workload split over the nodes (node i of \
             {n} gets the requests k with k mod {n} = i - 1, from its own loadgen with the \
             flags above), all loadgens started together. CPU over the load: from just before the loadgens start (servers \
             idle) until every sample is counted and every series stored.",
            c.partitions
        );
        let row = |out: &mut String, name: &str, a: String, b: String| {
            let _ = writeln!(out, "| {name:<48} | {a:>14} | {b:>14} |");
        };
        let _ = writeln!(
            out,
            "| {:<48} | {:>14} | {:>14} |",
            "", "single node", "cluster"
        );
        let _ = writeln!(out, "|{:-<50}|{:->16}|{:->16}|", "", "", "");
        row(
            &mut out,
            "samples/s (wall clock)",
            group(self.thermostat.server.samples_per_second().round() as u64),
            group(c.samples_per_second().round() as u64),
        );
        row(
            &mut out,
            "samples/s per Thermostat node",
            group(self.thermostat.server.samples_per_second().round() as u64),
            group(c.samples_per_second_per_node().round() as u64),
        );
        row(
            &mut out,
            "wall time (s)",
            format!("{:.2}", self.thermostat.server.seconds),
            format!("{:.2}", c.seconds),
        );
        row(
            &mut out,
            "Thermostat CPU over the load, all nodes (s)",
            format!("{:.2}", self.single_thermostat_cpu_seconds()),
            format!("{:.2}", c.thermostat_cpu_seconds()),
        );
        row(
            &mut out,
            "Thermostat CPU, whole processes (s)",
            format!("{:.2}", self.thermostat.server.cpu_seconds),
            format!("{:.2}", c.thermostat_process_cpu_seconds()),
        );
        row(
            &mut out,
            "Thermostat CPU s per million samples",
            format!("{:.2}", self.single_thermostat_cpu_seconds_per_million()),
            format!("{:.2}", c.thermostat_cpu_seconds_per_million()),
        );
        row(
            &mut out,
            "ratio cluster / single (goal <= 1.5)",
            String::new(),
            self.cluster_cpu_ratio()
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}")),
        );
        row(
            &mut out,
            "nats-server CPU over the load (s)",
            String::new(),
            format!("{:.2}", c.nats_load_cpu_seconds),
        );
        row(
            &mut out,
            "nats-server CPU, whole process (s)",
            String::new(),
            format!("{:.2}", c.nats_cpu_seconds),
        );
        row(
            &mut out,
            "nats-server CPU s per million samples",
            String::new(),
            format!("{:.2}", c.nats_cpu_seconds_per_million()),
        );
        row(
            &mut out,
            "peak RSS, nats-server (MB)",
            String::new(),
            format!("{:.1}", c.nats_peak_rss_bytes as f64 / 1e6),
        );
        row(
            &mut out,
            "samples counted (all nodes)",
            group(self.thermostat.server.samples_counted),
            group(c.samples_counted()),
        );
        row(
            &mut out,
            "series stored (all nodes' stores)",
            self.thermostat
                .series_active
                .map_or_else(|| "-".to_owned(), group),
            c.series_stored().map_or_else(|| "-".to_owned(), group),
        );
        let _ = writeln!(
            out,
            "| {:<5} | {:>10} | {:>12} | {:>12} | {:>10} | {:>9} | {:>10} | {:>8} |",
            "node", "partitions", "sent", "counted", "samples/s", "CPU (s)", "peak MB", "p99 ms"
        );
        let _ = writeln!(
            out,
            "|{:-<7}|{:->12}|{:->14}|{:->14}|{:->12}|{:->11}|{:->12}|{:->10}|",
            "", "", "", "", "", "", "", ""
        );
        for node in &c.nodes {
            let _ = writeln!(
                out,
                "| {:<5} | {:>10} | {:>12} | {:>12} | {:>10} | {:>9.2} | {:>10.1} | {:>8.1} |",
                node.node_id,
                node.partitions_owned,
                group(node.samples_sent),
                group(node.samples_counted),
                group(node.samples_per_second().round() as u64),
                node.load_cpu_seconds,
                node.peak_rss_bytes as f64 / 1e6,
                node.ack_latency_p99_ms
            );
        }
        out
    }

    /// The figures as a text table.
    pub fn to_table(&self) -> String {
        let s = &self.setup;
        let t = &self.thermostat;
        let vm = self.victoriametrics.as_ref();
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = writeln!(
            out,
            "Workload: {} series ({} hosts x {} metrics) x {} samples = {} samples, 1 s apart, \
             standard resolution, values uniform in [0, 100), {} order",
            group(s.series() as u64),
            group(s.hosts as u64),
            s.metrics,
            group(s.samples_per_series as u64),
            group(s.samples()),
            s.order,
        );
        if s.protocol == REMOTE_WRITE {
            let _ = writeln!(
                out,
                "Both: Prometheus remote write 1.0 (snappy protobuf) to POST /api/v1/write from \
                 loadgen, {} HTTP/1.1 keep-alive connections x 1 in flight, {} samples/request. \
                 Thermostat: default fsync.",
                s.connections,
                group(s.vm_lines_per_request as u64)
            );
        } else {
            let _ = writeln!(
                out,
                "Thermostat: gRPC {}, {} connections x {} in flight, {} datums/request, default fsync. \
                 VictoriaMetrics: /api/v1/import/prometheus, {} clients, {} lines/request.",
                s.mode,
                s.connections,
                s.in_flight,
                s.batch,
                s.vm_clients,
                group(s.vm_lines_per_request as u64)
            );
        }
        let dash = || "-".to_owned();
        let row = |out: &mut String, name: &str, a: String, b: String| {
            let _ = writeln!(out, "| {name:<40} | {a:>16} | {b:>16} |");
        };
        let _ = writeln!(
            out,
            "| {:<40} | {:>16} | {:>16} |",
            "", "Thermostat", "VictoriaMetrics"
        );
        let _ = writeln!(out, "|{:-<42}|{:->18}|{:->18}|", "", "", "");
        row(
            &mut out,
            "samples/s",
            group(t.server.samples_per_second().round() as u64),
            vm.map_or_else(
                dash,
                |v| group(v.server.samples_per_second().round() as u64),
            ),
        );
        row(
            &mut out,
            "ratio Thermostat / VictoriaMetrics",
            self.ratio().map_or_else(dash, |r| format!("{r:.2}")),
            String::new(),
        );
        row(
            &mut out,
            "wall time, first request to last ack (s)",
            format!("{:.2}", t.server.seconds),
            vm.map_or_else(dash, |v| format!("{:.2}", v.server.seconds)),
        );
        row(
            &mut out,
            "VictoriaMetrics force_flush (s)",
            String::new(),
            vm.map_or_else(dash, |v| format!("{:.2}", v.flush_seconds)),
        );
        row(
            &mut out,
            "peak RSS of the server (MB)",
            format!("{:.1}", t.server.peak_rss_bytes as f64 / 1e6),
            vm.map_or_else(dash, |v| {
                format!("{:.1}", v.server.peak_rss_bytes as f64 / 1e6)
            }),
        );
        row(
            &mut out,
            "CPU of the server process (s)",
            format!("{:.2}", t.server.cpu_seconds),
            vm.map_or_else(dash, |v| format!("{:.2}", v.server.cpu_seconds)),
        );
        row(
            &mut out,
            "CPU of the client during the run (s)",
            t.server
                .client_cpu_seconds
                .map_or_else(dash, |c| format!("{c:.2}")),
            vm.and_then(|v| v.server.client_cpu_seconds)
                .map_or_else(dash, |c| format!("{c:.2}")),
        );
        row(
            &mut out,
            "ack latency p50 / p99 (ms)",
            format!("{:.1} / {:.1}", t.ack_latency_p50_ms, t.ack_latency_p99_ms),
            vm.and_then(|v| v.ack_latency_ms)
                .map_or_else(dash, |(p50, p99)| format!("{p50:.1} / {p99:.1}")),
        );
        row(
            &mut out,
            "samples counted by the server",
            group(t.server.samples_counted),
            vm.map_or_else(dash, |v| group(v.server.samples_counted)),
        );
        row(
            &mut out,
            "samples found by a query after the flush",
            String::new(),
            vm.and_then(|v| v.samples_queried).map_or_else(dash, group),
        );
        row(
            &mut out,
            "machine CPU idle in the 2 s before (%)",
            t.server
                .idle_before
                .map_or_else(dash, |i| format!("{:.0}", i * 100.0)),
            vm.and_then(|v| v.server.idle_before)
                .map_or_else(dash, |i| format!("{:.0}", i * 100.0)),
        );
        row(
            &mut out,
            "load average (1 min) before the run",
            t.server
                .load_average_before
                .map_or_else(dash, |l| format!("{l:.2}")),
            vm.and_then(|v| v.server.load_average_before)
                .map_or_else(dash, |l| format!("{l:.2}")),
        );
        let mismatches = self.mismatches();
        if mismatches.is_empty() {
            let _ = writeln!(
                out,
                "Counts match: both servers counted all {} samples.",
                group(s.samples())
            );
        }
        if let Some(levels) = &self.latency_curve {
            out.push_str(&self.latency_table(levels));
        }
        if let Some(c) = &self.cluster {
            out.push_str(&self.cluster_table(c));
        }
        for m in mismatches {
            let _ = writeln!(out, "COUNT MISMATCH: {m}.");
        }
        out
    }

    /// The `--latency-curve` levels as a text table.
    fn latency_table(&self, levels: &[LatencyLevel]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nLatency below saturation: Thermostat alone, a fresh server per level, the same \
             workload sent open loop (loadgen --rate: request k due at k x batch / rate); ack \
             latency counts from each request's scheduled send time (\"sent late\": how late \
             loadgen's requests left after it, p99). 100 % = the closed-loop rate above, {} \
             samples/s.",
            group(self.thermostat.server.samples_per_second().round() as u64)
        );
        let _ = writeln!(
            out,
            "| {:>5} | {:>12} | {:>12} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} | {:>12} | {:>12} |",
            "load",
            "target /s",
            "achieved /s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "counted",
            "sent late ms"
        );
        let _ = writeln!(
            out,
            "|{:->7}|{:->14}|{:->14}|{:->10}|{:->10}|{:->10}|{:->10}|{:->10}|{:->14}|{:->14}|",
            "", "", "", "", "", "", "", "", "", ""
        );
        for l in levels {
            let _ = writeln!(
                out,
                "| {:>4.0}% | {:>12} | {:>12} | {:>8.2} | {:>8.2} | {:>8.2} | {:>8.2} | {:>8.2} | \
                 {:>12} | {:>12.2} |",
                l.fraction * 100.0,
                group(l.target_rate.round() as u64),
                group(l.achieved_rate.round() as u64),
                l.ack_latency_p50_ms,
                l.ack_latency_p90_ms,
                l.ack_latency_p99_ms,
                l.ack_latency_p999_ms,
                l.ack_latency_max_ms,
                group(l.samples_counted),
                l.sent_late_p99_ms
            );
        }
        out
    }
}

/// The PromQL query that counts every sample stored in the last `seconds` before its time.
pub fn count_samples_query(seconds: u64) -> String {
    format!("sum(count_over_time({{__name__!=\"\"}}[{seconds}s]))")
}

/// `s` percent-encoded for a URL query string (everything but RFC 3986's unreserved
/// characters).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The single value of an instant-query answer (`data.result[0].value[1]`), as a count;
/// `None` for an error or an empty result.
pub fn instant_query_count(answer: &Value) -> Option<u64> {
    let v = answer["data"]["result"][0]["value"][1].as_str()?;
    let n: f64 = v.parse().ok()?;
    (n >= 0.0 && n.fract() == 0.0).then_some(n as u64)
}

/// `1234567` as `1,234,567`.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `(idle, total)` jiffies of all CPUs from the text of `/proc/stat` (idle includes iowait).
pub fn cpu_jiffies(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .map_while(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total = v.iter().take(8).sum();
    Some((v.get(3)? + v.get(4).unwrap_or(&0), total))
}

/// The 1-minute load average from the text of `/proc/loadavg`.
pub fn load_average(loadavg: &str) -> Option<f64> {
    loadavg.split_ascii_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::io::BufReader;

    use super::*;

    #[test]
    fn series_map_onto_hosts_of_ten_metrics() {
        assert_eq!(hosts_and_metrics(10_000), Ok((1000, 10)));
        assert_eq!(hosts_and_metrics(100), Ok((10, 10)));
        assert_eq!(hosts_and_metrics(10), Ok((1, 10)));
        assert_eq!(hosts_and_metrics(3), Ok((1, 3)));
        assert!(hosts_and_metrics(0).is_err());
        assert!(
            hosts_and_metrics(15)
                .unwrap_err()
                .contains("multiple of 10")
        );
    }

    #[test]
    fn counters_are_read_by_exact_series() {
        let text = "# HELP x\nvm_rows_inserted_total{type=\"promscrape\"} 3\n\
                    vm_rows_inserted_total{type=\"prometheus\"} 10000000\n\
                    thermostat_ingest_samples_total 5.5\nthermostat_ingest_samples_total_x 1\n";
        assert_eq!(
            metric_value(text, "vm_rows_inserted_total{type=\"prometheus\"}"),
            Some(1e7)
        );
        assert_eq!(
            metric_value(text, "thermostat_ingest_samples_total"),
            Some(5.5)
        );
        assert_eq!(metric_value(text, "vm_rows_added_to_storage_total"), None);
    }

    #[test]
    fn responses_are_read_by_length_chunks_or_end_of_stream() {
        let read = |raw: &str| read_response(&mut BufReader::new(raw.as_bytes())).unwrap();
        let r = read("HTTP/1.1 204 No Content\r\nDate: x\r\n\r\nHTTP/1.1 200");
        assert_eq!((r.status, r.body.len(), r.close), (204, 0, false));
        let r = read("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello, and more");
        assert_eq!((r.status, r.text().as_str()), (200, "hello"));
        let r = read(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
             5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n",
        );
        assert_eq!((r.text().as_str(), r.close), ("hello, world", true));
        let r = read("HTTP/1.0 400 Bad Request\r\n\r\ncannot parse line 3");
        assert_eq!(
            (r.status, r.text().as_str(), r.close),
            (400, "cannot parse line 3", true)
        );
        assert!(read_response(&mut BufReader::new("SSH-2.0\r\n".as_bytes())).is_err());
    }

    fn comparison(t_counted: u64, vm_counted: u64) -> Comparison {
        Comparison {
            setup: Setup {
                protocol: NATIVE,
                hosts: 10,
                metrics: 10,
                samples_per_series: 50,
                batch: 1000,
                connections: 4,
                in_flight: 8,
                mode: "unary",
                order: "agent",
                vm_clients: 4,
                vm_lines_per_request: 100_000,
            },
            thermostat: ThermostatRun {
                server: ServerRun {
                    seconds: 0.5,
                    samples_counted: t_counted,
                    peak_rss_bytes: 50_000_000,
                    cpu_seconds: 1.5,
                    client_cpu_seconds: Some(0.2),
                    load_average_before: Some(0.1),
                    idle_before: Some(0.97),
                },
                ack_latency_p50_ms: 1.0,
                ack_latency_p99_ms: 2.5,
                ack_latency_max_ms: 3.0,
                retries: 0,
                series_active: Some(100),
                load_cpu_seconds: Some(1.5),
            },
            victoriametrics: Some(VictoriaMetricsRun {
                server: ServerRun {
                    seconds: 0.25,
                    samples_counted: vm_counted,
                    peak_rss_bytes: 100_000_000,
                    cpu_seconds: 0.5,
                    client_cpu_seconds: Some(0.01),
                    load_average_before: None,
                    idle_before: None,
                },
                ack_latency_ms: None,
                flush_seconds: 0.05,
                rows_added_to_storage: vm_counted,
                new_series: Some(100),
                samples_queried: Some(vm_counted),
            }),
            latency_curve: None,
            cluster: None,
        }
    }

    #[test]
    fn json_has_the_issue_keys_and_the_ratio() {
        let c = comparison(5000, 5000);
        let j = c.to_json();
        for key in [
            "thermostat_samples_per_second",
            "victoriametrics_samples_per_second",
            "ratio",
            "thermostat_peak_rss_bytes",
            "victoriametrics_peak_rss_bytes",
            "ack_latency_p99_ms",
            "thermostat_cpu_seconds",
            "victoriametrics_cpu_seconds",
        ] {
            assert!(j[key].is_number(), "{key} in {j}");
        }
        assert_eq!(j["thermostat_samples_per_second"], 10_000.0);
        assert_eq!(j["victoriametrics_samples_per_second"], 20_000.0);
        assert_eq!(j["ratio"], 0.5);
        assert_eq!(j["ack_latency_p99_ms"], 2.5);
        assert_eq!(j["counts_match"], true);
        let table = c.to_table();
        assert!(table.contains("10,000"), "{table}");
        assert!(table.contains("0.50"), "{table}");
        assert!(table.contains("Counts match"), "{table}");
    }

    #[test]
    fn mismatched_counts_are_named() {
        let c = comparison(4999, 5000);
        assert_eq!(c.mismatches().len(), 1);
        assert!(c.mismatches()[0].contains("Thermostat counted 4999"));
        assert_eq!(c.to_json()["counts_match"], false);
        // VictoriaMetrics' three counts (rows inserted, rows added to storage, samples a query
        // finds) all fall short.
        let c = comparison(5000, 4000);
        assert_eq!(c.mismatches().len(), 3, "{:?}", c.mismatches());
        assert!(c.mismatches()[0].contains("type=\"prometheus\""));
        assert!(c.to_table().contains("COUNT MISMATCH"));
    }

    #[test]
    fn remote_write_names_its_counter_and_both_latencies() {
        let mut c = comparison(5000, 4000);
        c.setup.protocol = REMOTE_WRITE;
        c.setup.mode = "http1";
        if let Some(vm) = c.victoriametrics.as_mut() {
            vm.ack_latency_ms = Some((12.5, 40.31));
        }
        assert!(
            c.mismatches()[0].contains("vm_rows_inserted_total{type=\"promremotewrite\"}"),
            "{:?}",
            c.mismatches()
        );
        let j = c.to_json();
        assert_eq!(j["protocol"], "remote-write");
        assert_eq!(j["victoriametrics_ack_latency_p99_ms"], 40.31);
        let table = c.to_table();
        assert!(table.contains("remote write 1.0"), "{table}");
        assert!(table.contains("12.5 / 40.3"), "{table}");
        assert_eq!(vm_rows_type(NATIVE), "prometheus");
    }

    fn level(fraction: f64, counted: u64) -> LatencyLevel {
        LatencyLevel {
            fraction,
            target_rate: 10_000.0 * fraction,
            achieved_rate: 10_000.0 * fraction * 0.99,
            samples_counted: counted,
            retries: 0,
            ack_latency_p50_ms: 1.0,
            ack_latency_p90_ms: 2.0,
            ack_latency_p99_ms: 3.0,
            ack_latency_p999_ms: 4.0,
            ack_latency_max_ms: 5.0,
            sent_late_p99_ms: 0.25,
        }
    }

    #[test]
    fn the_latency_curve_is_a_json_array_and_a_table() {
        let mut c = comparison(5000, 5000);
        assert!(c.to_json()["latency_curve"].is_null());
        assert!(!c.to_table().contains("Latency below saturation"));
        c.latency_curve = Some(
            LATENCY_CURVE_FRACTIONS
                .iter()
                .map(|&f| level(f, 5000))
                .collect(),
        );
        let j = c.to_json();
        let curve = j["latency_curve"].as_array().unwrap();
        assert_eq!(curve.len(), 4);
        assert_eq!(curve[0]["fraction"], 0.25);
        assert_eq!(curve[3]["target_rate"], 9000.0);
        for key in [
            "achieved_rate",
            "samples_counted",
            "ack_latency_p50_ms",
            "ack_latency_p90_ms",
            "ack_latency_p99_ms",
            "ack_latency_p999_ms",
            "ack_latency_max_ms",
            "sent_late_p99_ms",
        ] {
            assert!(curve[1][key].is_number(), "{key} in {j}");
        }
        // Today's keys are still there.
        assert_eq!(j["ack_latency_p99_ms"], 2.5);
        assert_eq!(j["counts_match"], true);
        let table = c.to_table();
        assert!(table.contains("Latency below saturation"), "{table}");
        assert!(
            table.contains("|   90% |        9,000 |        8,910 |")
                && table.contains("|         0.25 |"),
            "{table}"
        );

        c.latency_curve = Some(vec![level(0.5, 4999)]);
        assert_eq!(c.mismatches().len(), 1);
        assert!(c.mismatches()[0].contains("at 50 % of the maximum rate"));
        assert_eq!(c.to_json()["counts_match"], false);
    }

    fn cluster_node(i: usize, sent: u64, counted: u64, series: u64) -> ClusterNodeRun {
        ClusterNodeRun {
            node_id: format!("n{i}"),
            samples_sent: sent,
            samples_counted: counted,
            seconds: 0.5,
            cpu_seconds: 1.2,
            load_cpu_seconds: 0.9,
            peak_rss_bytes: 40_000_000,
            partitions_owned: 32,
            series_active: Some(series),
            ack_latency_p99_ms: 4.0,
            retries: 0,
        }
    }

    #[test]
    fn the_cluster_run_has_its_keys_ratio_and_checks() {
        let mut c = comparison(5000, 5000);
        let j = c.to_json();
        assert!(j["cluster_nodes"].is_null());
        assert!(j["cluster_cpu_ratio"].is_null());
        // 1.5 CPU s for 5000 samples.
        assert_eq!(j["single_thermostat_cpu_seconds_per_million"], 300.0);
        c.cluster = Some(ClusterRun {
            nodes: vec![
                cluster_node(1, 2500, 2500, 60),
                cluster_node(2, 2500, 2500, 40),
            ],
            partitions: 64,
            seconds: 1.0,
            nats_cpu_seconds: 0.7,
            nats_load_cpu_seconds: 0.5,
            nats_peak_rss_bytes: 30_000_000,
            stream_messages: Some(5),
        });
        assert!(c.mismatches().is_empty(), "{:?}", c.mismatches());
        let j = c.to_json();
        assert_eq!(j["cluster_nodes"], 2);
        assert_eq!(j["cluster_samples_per_second"], 5000.0);
        assert_eq!(j["cluster_samples_per_second_per_node"], 2500.0);
        // 1.8 CPU s for 5000 samples, and 0.5.
        let per_million = j["cluster_thermostat_cpu_seconds_per_million"]
            .as_f64()
            .unwrap();
        assert!((per_million - 360.0).abs() < 1e-9, "{j}");
        assert_eq!(j["cluster_nats_cpu_seconds_per_million"], 100.0);
        assert!(
            (j["cluster_cpu_ratio"].as_f64().unwrap() - 1.2).abs() < 1e-9,
            "{j}"
        );
        assert_eq!(j["cluster_node_runs"][1]["node_id"], "n2");
        assert_eq!(j["cluster_node_runs"][1]["process_cpu_seconds"], 1.2);
        assert_eq!(j["cluster_nats_process_cpu_seconds"], 0.7);
        assert_eq!(j["cluster_series_stored"], 100);
        assert_eq!(j["ratio"], 0.5);
        let table = c.to_table();
        assert!(table.contains("Cluster mode (issue 24)"), "{table}");
        assert!(table.contains("ratio cluster / single"), "{table}");
        assert!(table.contains("| n2    |"), "{table}");

        // A node short of its part, and a series missing from the stores.
        c.cluster = Some(ClusterRun {
            nodes: vec![
                cluster_node(1, 2500, 2499, 60),
                cluster_node(2, 2500, 2500, 39),
            ],
            ..ClusterRun::default()
        });
        let m = c.mismatches();
        assert_eq!(m.len(), 3, "{m:?}");
        assert!(m[0].contains("counted 4999 samples between them"), "{m:?}");
        assert!(m[1].contains("node n1 counted 2499"), "{m:?}");
        assert!(m[2].contains("hold 99 series"), "{m:?}");
        assert_eq!(c.to_json()["counts_match"], false);
    }

    #[test]
    fn the_count_query_is_encoded_and_its_answer_read() {
        assert_eq!(
            count_samples_query(1120),
            "sum(count_over_time({__name__!=\"\"}[1120s]))"
        );
        assert_eq!(
            url_encode("a b{x!=\"\"}[1s]"),
            "a%20b%7Bx%21%3D%22%22%7D%5B1s%5D"
        );
        let answer: Value = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1795696188,"500"]}]}}"#,
        )
        .unwrap();
        assert_eq!(instant_query_count(&answer), Some(500));
        let empty: Value =
            serde_json::from_str(r#"{"status":"success","data":{"result":[]}}"#).unwrap();
        assert_eq!(instant_query_count(&empty), None);
    }

    #[test]
    fn numbers_are_grouped_and_load_is_read() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(10_000_000), "10,000,000");
        assert_eq!(load_average("0.52 1.04 1.36 2/345 6789\n"), Some(0.52));
        assert_eq!(
            cpu_jiffies("cpu  100 5 50 800 20 1 2 3 0 0\ncpu0 1 2 3 4\n"),
            Some((820, 981))
        );
        assert_eq!(cpu_jiffies("intr 1 2"), None);
    }
}
