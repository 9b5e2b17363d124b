//! The synthetic ingest workload: `series × samples_per_series` single-value datums.
//!
//! Two layouts name the series: [`Layout::Instances`] (the default: one metric,
//! `InstanceId` and `AvailabilityZone` dimensions) and [`Layout::Hosts`] (a fleet: `hosts ×
//! metrics` series, metric `m` of [`HOST_METRICS`] with one dimension `Host=h0001`, as the
//! VictoriaMetrics comparison in `benches/compare/` uses).
//!
//! Datums are ordered timestamp-major, the way agents push: every series' oldest sample
//! first, then every series' next sample, and so on. The ordered list is cut into requests of
//! `batch` datums. Request `k` is a pure function of the spec, `now` and `k` (its values come
//! from an RNG seeded with the spec's seed and `k`), so requests can be generated one at a time,
//! in any order, without holding a million datum structs in memory.

use std::fmt;
use std::io::{self, Write};

use bytes::Bytes;
use prost::Message as _;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use thermostat_metrics::validate::{self, MAX_AGE_MS, MAX_DATUMS_PER_REQUEST};
use thermostat_metrics::{Dimension, SeriesKey};
use thermostat_proto::v1::{self as pb, MetricDatum, PutMetricDataRequest};

/// Most datums one request may carry (the server's limit).
pub const MAX_BATCH: usize = MAX_DATUMS_PER_REQUEST;
/// Metric name of every generated series.
pub const METRIC_NAME: &str = "LoadgenValue";
/// The dimension that makes each series distinct: `i-` and the series index in 8 hex digits.
pub const INSTANCE_DIMENSION: &str = "InstanceId";
/// A second, low-cardinality dimension (`zone-0` to `zone-2`), as real series usually have.
pub const ZONE_DIMENSION: &str = "AvailabilityZone";
/// Unit of every datum (the values are in `[0, 100)`).
pub const UNIT: &str = "Percent";
/// CloudWatch `StorageResolution` of every datum: standard (60-second) resolution.
pub const STORAGE_RESOLUTION: i32 = 60;
/// Distance between two samples of one series.
pub const SAMPLE_INTERVAL_MS: i64 = 1000;
/// Metric names of [`Layout::Hosts`], in order: a host's metric `m` is `HOST_METRICS[m]`.
pub const HOST_METRICS: [&str; 10] = [
    "CPUUtilization",
    "MemoryUtilization",
    "DiskUtilization",
    "DiskReadOps",
    "DiskWriteOps",
    "NetworkIn",
    "NetworkOut",
    "LoadAverage",
    "SwapUtilization",
    "ProcessCount",
];
/// The one dimension of [`Layout::Hosts`]: `h` and the 1-based host number in 4 or more digits.
pub const HOST_DIMENSION: &str = "Host";

/// How series are named.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// Series `s` is [`METRIC_NAME`] with `InstanceId=`[`instance_id`]`(s)` and
    /// `AvailabilityZone=`[`zone`]`(s)`.
    #[default]
    Instances,
    /// `series / metrics` hosts with `metrics` metrics each (1 to [`HOST_METRICS`]`.len()`):
    /// series `s` is metric `HOST_METRICS[s % metrics]` with `Host=`[`host_id`]`(s / metrics)`.
    Hosts {
        /// Metrics per host.
        metrics: usize,
    },
}

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadSpec {
    /// Namespace of every datum.
    pub namespace: String,
    /// Number of distinct series.
    pub series: usize,
    /// Samples per series, 1 s apart.
    pub samples_per_series: usize,
    /// Most datums per request (1 to [`MAX_BATCH`]).
    pub batch: usize,
    /// Seed of the values.
    pub seed: u64,
    /// How series are named.
    pub layout: Layout,
    /// How datums are ordered into requests.
    pub order: Order,
}

/// How a workload's datums are ordered into requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// Timestamp-major: every series' oldest sample, then every series' next one, and so on,
    /// so that consecutive datums belong to different series (what a gateway that merges
    /// many sources into each request sends).
    #[default]
    Time,
    /// As per-host agents push: each request is one agent's flush — its series (a host's
    /// metrics in [`Layout::Hosts`], one series otherwise), each with its samples of the flush
    /// interval in time order — and the agents' flushes of one interval follow each other
    /// before the next interval starts. The flush interval is `batch / series per agent`
    /// samples (at most `samples_per_series`, and a divisor of it).
    Agent,
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        WorkloadSpec {
            namespace: "Thermostat/Loadgen".to_owned(),
            series: 1000,
            samples_per_series: 100,
            batch: 1000,
            seed: 0,
            layout: Layout::Instances,
            order: Order::Time,
        }
    }
}

/// Why a spec cannot be generated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkloadError {
    /// `series` or `samples_per_series` is zero: there would be nothing to send.
    Empty,
    /// `batch` is outside 1 to [`MAX_BATCH`]; the server rejects larger requests.
    BatchOutOfRange(usize),
    /// The oldest sample would be older than the server accepts (14 days); use fewer samples
    /// per series.
    TooOld(usize),
    /// The namespace breaks CloudWatch's rule (the message says which).
    Namespace(String),
    /// [`Layout::Hosts`] with metrics per host outside 1 to [`HOST_METRICS`]`.len()`, or a
    /// series count that is not a whole number of hosts: `(series, metrics)`.
    Hosts(usize, usize),
}

impl fmt::Display for WorkloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkloadError::Empty => f.write_str("series and samples per series must be at least 1"),
            WorkloadError::BatchOutOfRange(b) => {
                write!(f, "batch must be 1 to {MAX_BATCH} datums (got {b})")
            }
            WorkloadError::TooOld(n) => write!(
                f,
                "{n} samples 1 s apart reach further back than the server accepts ({} s)",
                MAX_AGE_MS / 1000
            ),
            WorkloadError::Namespace(rule) => write!(f, "namespace: {rule}"),
            WorkloadError::Hosts(series, metrics) => write!(
                f,
                "{series} series cannot be laid out as hosts × {metrics} metrics (metrics per host \
                 must be 1 to {}, and the series a multiple of it)",
                HOST_METRICS.len()
            ),
        }
    }
}

impl std::error::Error for WorkloadError {}

/// A validated spec anchored at `now`: the requests to send, generated on demand.
#[derive(Clone, Debug)]
pub struct Workload {
    spec: WorkloadSpec,
    now_ms: i64,
}

/// Hex digits of series index `s`, as used in the `InstanceId` dimension.
pub fn instance_id(s: usize) -> String {
    format!("i-{s:08x}")
}

/// Value of the `AvailabilityZone` dimension of series `s`.
pub fn zone(s: usize) -> String {
    format!("zone-{}", s % 3)
}

/// Value of the `Host` dimension of host `h` (0-based): `h0001` for the first.
pub fn host_id(h: usize) -> String {
    format!("h{:04}", h + 1)
}

impl Workload {
    /// Checks `spec` and anchors it at `now_ms` (Unix ms): the newest sample of every series
    /// is at `now_ms`.
    ///
    /// # Errors
    /// A [`WorkloadError`] naming the field at fault.
    pub fn new(spec: WorkloadSpec, now_ms: i64) -> Result<Self, WorkloadError> {
        if spec.series == 0 || spec.samples_per_series == 0 {
            return Err(WorkloadError::Empty);
        }
        if !(1..=MAX_BATCH).contains(&spec.batch) {
            return Err(WorkloadError::BatchOutOfRange(spec.batch));
        }
        // Keep a minute of slack so a slow start does not age the oldest sample out.
        let span_ms = i64::try_from(spec.samples_per_series)
            .ok()
            .and_then(|n| n.checked_mul(SAMPLE_INTERVAL_MS));
        if span_ms.is_none_or(|ms| ms > MAX_AGE_MS - 60_000) {
            return Err(WorkloadError::TooOld(spec.samples_per_series));
        }
        validate::namespace(&spec.namespace).map_err(WorkloadError::Namespace)?;
        if let Layout::Hosts { metrics } = spec.layout
            && (!(1..=HOST_METRICS.len()).contains(&metrics)
                || !spec.series.is_multiple_of(metrics))
        {
            return Err(WorkloadError::Hosts(spec.series, metrics));
        }
        Ok(Workload { spec, now_ms })
    }

    /// The spec.
    pub fn spec(&self) -> &WorkloadSpec {
        &self.spec
    }

    /// Samples (= datums) in the whole workload.
    pub fn samples(&self) -> u64 {
        (self.spec.series as u64) * (self.spec.samples_per_series as u64)
    }

    /// Number of requests.
    pub fn request_count(&self) -> usize {
        (self.spec.series * self.spec.samples_per_series).div_ceil(self.spec.batch)
    }

    /// Samples (= datums) in request `k`: `batch`, less in the last request; 0 out of range.
    pub fn request_samples(&self, k: usize) -> u64 {
        let total = self.spec.series * self.spec.samples_per_series;
        let first = k.saturating_mul(self.spec.batch).min(total);
        ((first + self.spec.batch).min(total) - first) as u64
    }

    /// Timestamp (Unix ms) of sample `j` (0 = oldest) of every series.
    pub fn timestamp_ms(&self, j: usize) -> i64 {
        let back = (self.spec.samples_per_series - 1 - j) as i64;
        self.now_ms - back * SAMPLE_INTERVAL_MS
    }

    /// Metric name and dimensions (name, value) of series `s`.
    pub fn series(&self, s: usize) -> (&'static str, Vec<(&'static str, String)>) {
        match self.spec.layout {
            Layout::Instances => (
                METRIC_NAME,
                vec![
                    (INSTANCE_DIMENSION, instance_id(s)),
                    (ZONE_DIMENSION, zone(s)),
                ],
            ),
            Layout::Hosts { metrics } => (
                HOST_METRICS[s % metrics],
                vec![(HOST_DIMENSION, host_id(s / metrics))],
            ),
        }
    }

    /// The series key the server derives for series `s`.
    pub fn series_key(&self, s: usize) -> SeriesKey {
        let (name, dims) = self.series(s);
        SeriesKey::new(
            self.spec.namespace.as_str(),
            name,
            dims.into_iter()
                .map(|(n, v)| Dimension::new(n, v))
                .collect(),
        )
    }

    /// Sample `j` of series `s` is datum `d` of the workload (see [`Order`]).
    fn position(&self, d: usize) -> (usize, usize) {
        let (series, samples) = (self.spec.series, self.spec.samples_per_series);
        match self.spec.order {
            Order::Time => (d / series, d % series),
            Order::Agent => {
                let per_agent = match self.spec.layout {
                    Layout::Hosts { metrics } => metrics,
                    Layout::Instances => 1,
                };
                let mut flush = (self.spec.batch / per_agent).clamp(1, samples);
                while !samples.is_multiple_of(flush) {
                    flush -= 1;
                }
                let (round, rest) = (d / (series * flush), d % (series * flush));
                let (agent, within) = (rest / (per_agent * flush), rest % (per_agent * flush));
                let (member, sample) = (within / flush, within % flush);
                (round * flush + sample, agent * per_agent + member)
            }
        }
    }

    /// Request `k`'s samples, in request order, as (series index, timestamp in Unix ms, value):
    /// what [`Workload::request`] holds, without building its datums (for other encodings).
    ///
    /// # Panics
    /// If `k` is out of range.
    pub fn request_points(&self, k: usize) -> impl Iterator<Item = (usize, i64, f64)> + '_ {
        assert!(k < self.request_count(), "request {k} is out of range");
        let total = self.spec.series * self.spec.samples_per_series;
        let first = k * self.spec.batch;
        let last = (first + self.spec.batch).min(total);
        let mut rng =
            StdRng::seed_from_u64(self.spec.seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        (first..last).map(move |d| {
            let (j, s) = self.position(d);
            (s, self.timestamp_ms(j), rng.random_range(0.0..100.0))
        })
    }

    /// Request `k` (0-based, below [`Workload::request_count`]).
    ///
    /// # Panics
    /// If `k` is out of range.
    pub fn request(&self, k: usize) -> PutMetricDataRequest {
        let metric_data = self
            .request_points(k)
            .map(|(s, timestamp_ms, value)| {
                let (name, dims) = self.series(s);
                MetricDatum {
                    metric_name: name.to_owned(),
                    dimensions: dims
                        .into_iter()
                        .map(|(name, value)| pb::Dimension {
                            name: name.to_owned(),
                            value,
                        })
                        .collect(),
                    timestamp_ms,
                    value: Some(value),
                    unit: UNIT.to_owned(),
                    storage_resolution: STORAGE_RESOLUTION,
                    ..MetricDatum::default()
                }
            })
            .collect();
        PutMetricDataRequest {
            namespace: self.spec.namespace.clone(),
            metric_data,
        }
    }

    /// Every request, in order.
    pub fn requests(&self) -> impl ExactSizeIterator<Item = PutMetricDataRequest> + '_ {
        (0..self.request_count()).map(|k| self.request(k))
    }

    /// Every request, protobuf-encoded, in order (what goes on the wire, minus gRPC framing).
    pub fn encode(&self) -> Vec<Bytes> {
        self.requests()
            .map(|r| Bytes::from(r.encode_to_vec()))
            .collect()
    }

    /// Writes request `k`'s datums as Prometheus text exposition lines with timestamps (the
    /// input of VictoriaMetrics' `/api/v1/import/prometheus`): one line per datum,
    /// `MetricName{Dim="value",...} value timestamp_ms`, in the request's order. Values are
    /// printed in Rust's shortest round-trip form, so both servers get the same numbers.
    ///
    /// # Errors
    /// A failed write.
    ///
    /// # Panics
    /// If `k` is out of range.
    pub fn write_prometheus_text(&self, k: usize, out: &mut impl Write) -> io::Result<()> {
        let r = self.request(k);
        for d in &r.metric_data {
            out.write_all(d.metric_name.as_bytes())?;
            for (i, dim) in d.dimensions.iter().enumerate() {
                let sep = if i == 0 { '{' } else { ',' };
                // Generated dimension values never need escaping (no `"`, `\\` or newline).
                write!(out, "{sep}{}=\"{}\"", dim.name, dim.value)?;
            }
            if !d.dimensions.is_empty() {
                out.write_all(b"}")?;
            }
            writeln!(out, " {} {}", d.value.unwrap_or_default(), d.timestamp_ms)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use super::*;

    const NOW: i64 = 1_700_000_000_123;

    fn spec(series: usize, samples: usize, batch: usize) -> WorkloadSpec {
        WorkloadSpec {
            series,
            samples_per_series: samples,
            batch,
            seed: 7,
            ..WorkloadSpec::default()
        }
    }

    fn key(d: &MetricDatum) -> Vec<(String, String)> {
        d.dimensions
            .iter()
            .map(|x| (x.name.clone(), x.value.clone()))
            .collect()
    }

    #[test]
    fn workload_has_every_sample_once_in_batches_of_at_most_batch() {
        // Batch sizes that divide the total, that do not, and that exceed one timestamp row.
        for (series, samples, batch) in [(50, 20, 100), (7, 13, 10), (3, 5, 1000), (1000, 3, 1000)]
        {
            let w = Workload::new(spec(series, samples, batch), NOW).unwrap();
            let requests: Vec<_> = w.requests().collect();
            assert_eq!(requests.len(), w.request_count());
            for (k, r) in requests.iter().enumerate() {
                assert_eq!(w.request_samples(k), r.metric_data.len() as u64);
            }
            assert_eq!(w.request_samples(requests.len()), 0);
            assert!(requests.iter().all(|r| r.metric_data.len() <= batch));
            assert!(requests.iter().all(|r| !r.metric_data.is_empty()));

            let datums: Vec<&MetricDatum> = requests.iter().flat_map(|r| &r.metric_data).collect();
            assert_eq!(datums.len(), series * samples);
            assert_eq!(w.samples(), (series * samples) as u64);
            // One sample per datum.
            assert!(
                datums
                    .iter()
                    .all(|d| d.value.is_some() && d.values.is_empty())
            );
            assert!(datums.iter().all(|d| d.statistic_values.is_none()));

            let mut per_series: BTreeMap<Vec<(String, String)>, Vec<i64>> = BTreeMap::new();
            for d in &datums {
                per_series.entry(key(d)).or_default().push(d.timestamp_ms);
            }
            assert_eq!(per_series.len(), series, "series keys are distinct");
            let oldest_allowed = NOW - samples as i64 * 1000;
            for ts in per_series.values_mut() {
                assert_eq!(ts.len(), samples);
                ts.sort_unstable();
                assert_eq!(*ts.last().unwrap(), NOW, "the newest sample is at now");
                assert!(ts[0] > oldest_allowed, "within the last {samples} s");
                assert!(ts.windows(2).all(|p| p[1] - p[0] == 1000), "1 s apart");
            }
        }
    }

    #[test]
    fn values_are_uniform_in_0_to_100_and_seeded() {
        let w = Workload::new(spec(100, 10, 1000), NOW).unwrap();
        let values: Vec<f64> = w
            .requests()
            .flat_map(|r| r.metric_data)
            .filter_map(|d| d.value)
            .collect();
        assert!(values.iter().all(|v| (0.0..100.0).contains(v)));
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!((40.0..60.0).contains(&mean), "mean {mean}");
        assert_eq!(
            w.encode(),
            Workload::new(spec(100, 10, 1000), NOW).unwrap().encode()
        );
        let mut other = spec(100, 10, 1000);
        other.seed = 8;
        assert_ne!(w.encode(), Workload::new(other, NOW).unwrap().encode());
    }

    #[test]
    fn series_keys_match_the_datums() {
        let w = Workload::new(spec(5, 1, 1000), NOW).unwrap();
        let keys: HashSet<SeriesKey> = (0..5).map(|s| w.series_key(s)).collect();
        assert_eq!(keys.len(), 5);
        let r = w.request(0);
        for (s, d) in r.metric_data.iter().enumerate() {
            let k = SeriesKey::new(
                r.namespace.as_str(),
                d.metric_name.as_str(),
                d.dimensions
                    .iter()
                    .map(|x| Dimension::new(x.name.as_str(), x.value.as_str()))
                    .collect(),
            );
            assert_eq!(k, w.series_key(s));
        }
    }

    /// In agent order every sample is sent exactly once, each request is one host's flush
    /// (its metrics, each with consecutive samples in time order), and a flush interval's
    /// requests come before the next interval's.
    #[test]
    fn agent_order_sends_each_hosts_flush_as_one_request() {
        // (hosts, metrics, samples, batch, whether a request is exactly one flush)
        for (hosts, metrics, samples, batch, exact) in [
            (30, 10, 300, 1000, true),
            (7, 3, 10, 6, true),
            (5, 10, 7, 1000, false),
        ] {
            let mut sp = spec(hosts * metrics, samples, batch);
            sp.layout = Layout::Hosts { metrics };
            sp.order = Order::Agent;
            let w = Workload::new(sp, NOW).unwrap();
            let mut seen: HashSet<(String, String, i64)> = HashSet::new();
            let mut newest_per_request = Vec::new();
            for r in w.requests() {
                let hosts_in: HashSet<&str> = r
                    .metric_data
                    .iter()
                    .map(|d| d.dimensions[0].value.as_str())
                    .collect();
                if exact {
                    assert_eq!(hosts_in.len(), 1, "one host per request");
                }
                for pair in r.metric_data.windows(2) {
                    if pair[0].metric_name == pair[1].metric_name {
                        assert_eq!(pair[1].timestamp_ms, pair[0].timestamp_ms + 1000);
                    }
                }
                for d in &r.metric_data {
                    let new = seen.insert((
                        d.metric_name.clone(),
                        d.dimensions[0].value.clone(),
                        d.timestamp_ms,
                    ));
                    assert!(new, "a sample sent twice");
                }
                newest_per_request
                    .push(r.metric_data.iter().map(|d| d.timestamp_ms).max().unwrap());
            }
            assert_eq!(seen.len(), hosts * metrics * samples);
            assert!(
                newest_per_request.is_sorted(),
                "intervals follow each other"
            );
        }
    }

    #[test]
    fn hosts_layout_names_hosts_times_metrics_series() {
        let mut sp = spec(1000 * 10, 2, 1000);
        sp.layout = Layout::Hosts { metrics: 10 };
        let w = Workload::new(sp, NOW).unwrap();
        let keys: HashSet<SeriesKey> = (0..10_000).map(|s| w.series_key(s)).collect();
        assert_eq!(keys.len(), 10_000);
        assert_eq!(
            w.series_key(0),
            SeriesKey::new(
                "Thermostat/Loadgen",
                "CPUUtilization",
                vec![Dimension::new("Host", "h0001")]
            )
        );
        assert_eq!(
            w.series_key(9_999),
            SeriesKey::new(
                "Thermostat/Loadgen",
                "ProcessCount",
                vec![Dimension::new("Host", "h1000")]
            )
        );
        let hosts: HashSet<String> = (0..10_000)
            .map(|s| w.series_key(s).dimension("Host").unwrap().to_owned())
            .collect();
        assert_eq!(hosts.len(), 1000);
        // The datums carry the same keys, every series once per timestamp row.
        let r = w.request(0);
        assert_eq!(r.metric_data.len(), 1000);
        for (s, d) in r.metric_data.iter().enumerate() {
            assert_eq!(d.metric_name, HOST_METRICS[s % 10]);
            assert_eq!(d.dimensions.len(), 1);
            assert_eq!(d.dimensions[0].value, host_id(s / 10));
            assert_eq!(d.storage_resolution, 60);
            assert!((0.0..100.0).contains(&d.value.unwrap()));
        }

        for (series, metrics) in [(15, 10), (10, 0), (11, 11)] {
            let mut sp = spec(series, 1, 10);
            sp.layout = Layout::Hosts { metrics };
            assert_eq!(
                Workload::new(sp, NOW).unwrap_err(),
                WorkloadError::Hosts(series, metrics)
            );
        }
    }

    #[test]
    fn prometheus_text_has_one_line_per_datum_with_the_same_values() {
        let mut sp = spec(20, 3, 7);
        sp.layout = Layout::Hosts { metrics: 10 };
        let w = Workload::new(sp, NOW).unwrap();
        let mut text = Vec::new();
        for k in 0..w.request_count() {
            w.write_prometheus_text(k, &mut text).unwrap();
        }
        let text = String::from_utf8(text).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 60);
        assert_eq!(
            lines[0],
            format!(
                "CPUUtilization{{Host=\"h0001\"}} {} {}",
                w.request(0).metric_data[0].value.unwrap(),
                NOW - 2000
            )
        );
        let datums: Vec<MetricDatum> = w.requests().flat_map(|r| r.metric_data).collect();
        for (line, d) in lines.iter().zip(&datums) {
            let mut parts = line.split(' ');
            let (series, value, ts) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            assert_eq!(
                series,
                format!("{}{{Host=\"{}\"}}", d.metric_name, d.dimensions[0].value)
            );
            assert_eq!(value.parse::<f64>().unwrap(), d.value.unwrap(), "exact");
            assert_eq!(ts.parse::<i64>().unwrap(), d.timestamp_ms);
        }
        // The default layout prints both dimensions.
        let w = Workload::new(spec(1, 1, 1), NOW).unwrap();
        let mut text = Vec::new();
        w.write_prometheus_text(0, &mut text).unwrap();
        assert!(
            String::from_utf8(text).unwrap().starts_with(
                "LoadgenValue{InstanceId=\"i-00000000\",AvailabilityZone=\"zone-0\"} "
            )
        );
    }

    #[test]
    fn bad_specs_are_refused() {
        assert_eq!(
            Workload::new(spec(0, 1, 1), NOW).unwrap_err(),
            WorkloadError::Empty
        );
        assert_eq!(
            Workload::new(spec(1, 1, 1001), NOW).unwrap_err(),
            WorkloadError::BatchOutOfRange(1001)
        );
        assert_eq!(
            Workload::new(spec(1, 1, 0), NOW).unwrap_err(),
            WorkloadError::BatchOutOfRange(0)
        );
        assert!(matches!(
            Workload::new(spec(1, 2_000_000, 10), NOW),
            Err(WorkloadError::TooOld(_))
        ));
        let mut s = spec(1, 1, 1);
        s.namespace = "bad!".into();
        assert!(matches!(
            Workload::new(s, NOW),
            Err(WorkloadError::Namespace(_))
        ));
    }
}
