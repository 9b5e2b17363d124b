//! The workload as Prometheus remote write 1.0 requests (`loadgen --protocol remote-write`),
//! the shape Prometheus and vmagent send to `POST /api/v1/write`.
//!
//! Request `k` carries exactly the samples of the native requests `k × per_request` to
//! `(k + 1) × per_request − 1` ([`Workload::request`]; `per_request` = 1 unless asked for):
//! the same series, timestamps and values. It is one `prometheus.WriteRequest` with one
//! `TimeSeries` per series, in order of first appearance, holding that series' samples in
//! request order (oldest first: the workload never puts a series' samples out of time order).
//! A series' labels, sorted by name as the specification requires: `__name__` = the metric
//! name, `job` = the workload's namespace (Thermostat's default namespace label), and one label
//! per dimension. The protobuf is compressed with snappy's block format (not the framed one).
//! Headers: [`CONTENT_TYPE`], [`CONTENT_ENCODING`], [`VERSION_HEADER`] = [`VERSION`].

use std::collections::HashMap;

use bytes::Bytes;
use prost::Message as _;
use prost::encoding::{self, WireType};
use thermostat_prometheus::proto::{Label, Sample, TimeSeries, WriteRequest};

use crate::Workload;

/// The label that carries the metric name.
pub const NAME_LABEL: &str = "__name__";
/// The label that carries the namespace: Thermostat's default `prometheus.namespace_label`.
pub const NAMESPACE_LABEL: &str = "job";
/// Path of the remote-write endpoint, on Thermostat's HTTP port and on VictoriaMetrics.
pub const WRITE_PATH: &str = "/api/v1/write";
/// `Content-Type` of a remote write 1.0 body.
pub const CONTENT_TYPE: &str = "application/x-protobuf";
/// `Content-Encoding` of a remote write 1.0 body (snappy block format).
pub const CONTENT_ENCODING: &str = "snappy";
/// The header naming the remote write version.
pub const VERSION_HEADER: &str = "x-prometheus-remote-write-version";
/// Remote write 1.0's version header value.
pub const VERSION: &str = "0.1.0";

/// Remote-write requests ready to send: the compressed bodies and the samples each carries.
#[derive(Clone, Debug, Default)]
pub struct Encoded {
    /// Snappy-compressed `prometheus.WriteRequest`s, in order.
    pub bodies: Vec<Bytes>,
    /// Samples in each body.
    pub samples: Vec<u64>,
}

impl Encoded {
    /// Bytes on the wire (the bodies, compressed).
    pub fn compressed_bytes(&self) -> usize {
        self.bodies.iter().map(Bytes::len).sum()
    }
}

/// A series' labels: `__name__`, `job`, then the dimensions, sorted by name (byte order).
pub fn labels(namespace: &str, name: &str, dimensions: &[(String, String)]) -> Vec<Label> {
    let mut labels: Vec<Label> = [(NAME_LABEL, name), (NAMESPACE_LABEL, namespace)]
        .into_iter()
        .chain(dimensions.iter().map(|(n, v)| (n.as_str(), v.as_str())))
        .map(|(name, value)| Label {
            name: name.to_owned(),
            value: value.to_owned(),
        })
        .collect();
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    labels
}

/// Appends a length-delimited field: key, length, bytes.
fn put_bytes(tag: u32, bytes: &[u8], out: &mut Vec<u8>) {
    encoding::encode_key(tag, WireType::LengthDelimited, out);
    encoding::encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// A `prometheus.Sample` message's bytes, as prost encodes it: proto3 leaves out a field that
/// holds its default (a value of ±0.0, a timestamp of 0).
fn encode_sample(timestamp: i64, value: f64, out: &mut Vec<u8>) {
    if value != 0.0 {
        encoding::encode_key(1, WireType::SixtyFourBit, out);
        out.extend_from_slice(&value.to_le_bytes());
    }
    if timestamp != 0 {
        encoding::encode_key(2, WireType::Varint, out);
        // int64 is the two's complement as a varint.
        encoding::encode_varint(timestamp as u64, out);
    }
}

/// A series' labels as `TimeSeries` field 1 entries, encoded as prost encodes them.
fn encoded_labels(labels: &[Label]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in labels {
        let message = l.encode_to_vec();
        put_bytes(1, &message, &mut out);
    }
    out
}

/// The samples of `ks` grouped by series: (series index, first and end positions in the
/// returned points), series in order of first appearance, each one's samples in request order.
type Groups = (Vec<(usize, usize, usize)>, Vec<(i64, f64)>);

impl Workload {
    /// Labels of series `s` (see [`labels`]).
    pub fn remote_write_labels(&self, s: usize) -> Vec<Label> {
        let (name, dims) = self.series(s);
        let dims: Vec<(String, String)> =
            dims.into_iter().map(|(n, v)| (n.to_owned(), v)).collect();
        labels(&self.spec().namespace, name, &dims)
    }

    fn remote_write_groups(&self, ks: std::ops::Range<usize>) -> Groups {
        // Series index → its group; then a counting sort of the points by group, which keeps
        // each series' points in request order.
        let mut group_of: HashMap<usize, usize> = HashMap::new();
        let mut series: Vec<usize> = Vec::new();
        let mut tagged: Vec<(usize, i64, f64)> = Vec::new();
        for k in ks {
            for (s, t, v) in self.request_points(k) {
                let g = *group_of.entry(s).or_insert_with(|| {
                    series.push(s);
                    series.len() - 1
                });
                tagged.push((g, t, v));
            }
        }
        let mut starts = vec![0usize; series.len() + 1];
        for &(g, _, _) in &tagged {
            starts[g + 1] += 1;
        }
        for g in 0..series.len() {
            starts[g + 1] += starts[g];
        }
        let ranges = series
            .iter()
            .enumerate()
            .map(|(g, &s)| (s, starts[g], starts[g + 1]))
            .collect();
        let mut next = starts;
        let mut points = vec![(0i64, 0.0f64); tagged.len()];
        for (g, t, v) in tagged {
            points[next[g]] = (t, v);
            next[g] += 1;
        }
        (ranges, points)
    }

    /// Native requests `ks` as one remote-write request (see the module documentation).
    ///
    /// # Panics
    /// If a request of `ks` is out of range.
    pub fn remote_write_request(&self, ks: std::ops::Range<usize>) -> WriteRequest {
        let (ranges, points) = self.remote_write_groups(ks);
        let timeseries = ranges
            .into_iter()
            .map(|(s, from, to)| TimeSeries {
                labels: self.remote_write_labels(s),
                samples: points[from..to]
                    .iter()
                    .map(|&(timestamp, value)| Sample { value, timestamp })
                    .collect(),
                ..TimeSeries::default()
            })
            .collect();
        WriteRequest {
            timeseries,
            metadata: Vec::new(),
        }
    }

    /// [`Workload::remote_write_request`] protobuf-encoded into `out` (cleared first), byte for
    /// byte as prost encodes it, without building the messages: a series' encoded labels come
    /// from `labels` (filled on first use).
    fn encode_remote_write_request(
        &self,
        ks: std::ops::Range<usize>,
        labels: &mut HashMap<usize, Vec<u8>>,
        out: &mut Vec<u8>,
    ) {
        out.clear();
        let (ranges, points) = self.remote_write_groups(ks);
        let mut sample = Vec::with_capacity(24);
        let mut series = Vec::new();
        for (s, from, to) in ranges {
            series.clear();
            let l = labels
                .entry(s)
                .or_insert_with(|| encoded_labels(&self.remote_write_labels(s)));
            series.extend_from_slice(l);
            for &(timestamp, value) in &points[from..to] {
                sample.clear();
                encode_sample(timestamp, value, &mut sample);
                put_bytes(2, &sample, &mut series);
            }
            put_bytes(1, &series, out);
        }
    }

    /// Every remote-write request, `per_request` native requests each (at least 1), encoded
    /// and snappy-compressed, in order, with the samples each carries. Encoded on every core:
    /// this runs before loadgen's clock starts, but 10 M samples take a while on one.
    pub fn encode_remote_write(&self, per_request: usize) -> Encoded {
        let per_request = per_request.max(1);
        let n = self.request_count();
        let count = n.div_ceil(per_request);
        let range = |r: usize| r * per_request..((r + 1) * per_request).min(n);
        let threads = std::thread::available_parallelism()
            .map_or(1, |t| t.get())
            .min(count.max(1));
        let per_thread = count.div_ceil(threads.max(1));
        let parts: Vec<Vec<(Bytes, u64)>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    scope.spawn(move || {
                        // Reused buffers; each body is copied out at its exact size (a
                        // compressor's output buffer is sized for the worst case).
                        let mut encoder = snap::raw::Encoder::new();
                        let mut labels = HashMap::new();
                        let mut raw = Vec::new();
                        let mut compressed = Vec::new();
                        (t * per_thread..((t + 1) * per_thread).min(count))
                            .map(|r| {
                                let ks = range(r);
                                let samples = ks.clone().map(|k| self.request_samples(k)).sum();
                                self.encode_remote_write_request(ks, &mut labels, &mut raw);
                                compressed.resize(snap::raw::max_compress_len(raw.len()), 0);
                                let n =
                                    encoder.compress(&raw, &mut compressed).unwrap_or_else(|e| {
                                        panic!("snappy refused a {}-byte body: {e}", raw.len())
                                    });
                                (Bytes::copy_from_slice(&compressed[..n]), samples)
                            })
                            .collect()
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        let (bodies, samples) = parts.into_iter().flatten().unzip();
        Encoded { bodies, samples }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use thermostat_proto::v1::PutMetricDataRequest;

    use super::*;
    use crate::{Layout, Order, WorkloadSpec};

    const NOW: i64 = 1_700_000_000_123;

    /// One sample: namespace, metric name, dimensions sorted by name, timestamp (ms), value bits.
    type Flat = (String, String, Vec<(String, String)>, i64, u64);

    fn workload(
        series: usize,
        samples: usize,
        batch: usize,
        layout: Layout,
        order: Order,
    ) -> Workload {
        Workload::new(
            WorkloadSpec {
                series,
                samples_per_series: samples,
                batch,
                seed: 5,
                layout,
                order,
                ..WorkloadSpec::default()
            },
            NOW,
        )
        .unwrap()
    }

    fn specs() -> Vec<Workload> {
        vec![
            workload(50, 20, 100, Layout::Instances, Order::Time),
            workload(7, 13, 10, Layout::Instances, Order::Time),
            workload(3, 5, 1000, Layout::Instances, Order::Agent),
            workload(40, 6, 25, Layout::Hosts { metrics: 10 }, Order::Time),
            workload(100, 50, 1000, Layout::Hosts { metrics: 10 }, Order::Time),
            workload(21, 10, 6, Layout::Hosts { metrics: 3 }, Order::Agent),
            workload(200, 100, 1000, Layout::Hosts { metrics: 10 }, Order::Agent),
        ]
    }

    fn native_samples(r: &PutMetricDataRequest) -> Vec<Flat> {
        r.metric_data
            .iter()
            .map(|d| {
                let mut dims: Vec<(String, String)> = d
                    .dimensions
                    .iter()
                    .map(|x| (x.name.clone(), x.value.clone()))
                    .collect();
                dims.sort();
                (
                    r.namespace.clone(),
                    d.metric_name.clone(),
                    dims,
                    d.timestamp_ms,
                    d.value.unwrap().to_bits(),
                )
            })
            .collect()
    }

    /// Decodes a body with the server-side decoder (`thermostat_prometheus::decode_v1`: snappy
    /// block format, limits, prost), checks its shape (labels sorted and unique, `__name__` and
    /// `job` present, each series once, its samples oldest first, no exemplars, histograms or
    /// metadata) and returns its samples in order, series by series.
    fn remote_write_samples(body: &[u8]) -> Vec<Flat> {
        let r = thermostat_prometheus::decode_v1(body).unwrap();
        assert!(r.metadata.is_empty());
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for ts in &r.timeseries {
            assert!(
                ts.labels.windows(2).all(|w| w[0].name < w[1].name),
                "labels sorted by name, each once: {:?}",
                ts.labels
            );
            let series: Vec<(&str, &str)> = ts
                .labels
                .iter()
                .map(|l| (l.name.as_str(), l.value.as_str()))
                .collect();
            assert!(seen.insert(series), "one TimeSeries per series");
            assert!(ts.exemplars.is_empty() && ts.histograms.is_empty());
            assert!(!ts.samples.is_empty());
            assert!(
                ts.samples
                    .windows(2)
                    .all(|w| w[0].timestamp < w[1].timestamp),
                "samples oldest first"
            );
            let value = |n: &str| {
                ts.labels
                    .iter()
                    .find(|l| l.name == n)
                    .unwrap_or_else(|| panic!("no {n} label in {:?}", ts.labels))
                    .value
                    .clone()
            };
            let dims: Vec<(String, String)> = ts
                .labels
                .iter()
                .filter(|l| l.name != NAME_LABEL && l.name != NAMESPACE_LABEL)
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            for s in &ts.samples {
                out.push((
                    value(NAMESPACE_LABEL),
                    value(NAME_LABEL),
                    dims.clone(),
                    s.timestamp,
                    s.value.to_bits(),
                ));
            }
        }
        out
    }

    /// The native samples grouped as the encoder groups them: by series in order of first
    /// appearance, each series' samples in request order.
    fn grouped(native: Vec<Flat>) -> Vec<Flat> {
        let mut order: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for s in &native {
            let series = (s.1.clone(), s.2.clone());
            if !order.contains(&series) {
                order.push(series);
            }
        }
        let mut out = native;
        out.sort_by_key(|s| order.iter().position(|o| o.0 == s.1 && o.1 == s.2));
        out
    }

    #[test]
    fn remote_write_requests_decode_to_exactly_the_workloads_samples() {
        for w in specs() {
            for per_request in [1, 3] {
                let encoded = w.encode_remote_write(per_request);
                let n = w.request_count();
                assert_eq!(encoded.bodies.len(), n.div_ceil(per_request));
                assert_eq!(encoded.samples.len(), encoded.bodies.len());
                assert_eq!(encoded.samples.iter().sum::<u64>(), w.samples());
                for (r, body) in encoded.bodies.iter().enumerate() {
                    let native: Vec<Flat> = (r * per_request..((r + 1) * per_request).min(n))
                        .flat_map(|k| native_samples(&w.request(k)))
                        .collect();
                    let decoded = remote_write_samples(body);
                    assert_eq!(decoded.len() as u64, encoded.samples[r]);
                    assert_eq!(
                        decoded,
                        grouped(native),
                        "request {r} of {:?}, {per_request} per request",
                        w.spec()
                    );
                }
            }
        }
    }

    #[test]
    fn native_and_remote_write_carry_the_same_sample_set() {
        for w in specs() {
            let mut native: Vec<Flat> = w.requests().flat_map(|r| native_samples(&r)).collect();
            let mut rw: Vec<Flat> = w
                .encode_remote_write(1)
                .bodies
                .iter()
                .flat_map(|b| remote_write_samples(b))
                .collect();
            assert_eq!(rw.len() as u64, w.samples());
            native.sort();
            rw.sort();
            assert_eq!(native, rw, "{:?}", w.spec());
            let distinct: HashSet<&Flat> = rw.iter().collect();
            assert_eq!(distinct.len(), rw.len(), "every sample once");
        }
    }

    #[test]
    fn labels_are_name_job_and_dimensions_sorted_by_name() {
        let w = workload(20, 2, 10, Layout::Hosts { metrics: 10 }, Order::Time);
        let r = w.remote_write_request(0..1);
        assert_eq!(r.timeseries.len(), 10);
        let names: Vec<&str> = r.timeseries[0]
            .labels
            .iter()
            .map(|l| l.name.as_str())
            .collect();
        // Byte order: upper-case letters sort before `_`, `_` before lower-case letters.
        assert_eq!(names, ["Host", "__name__", "job"]);
        let values: Vec<&str> = r.timeseries[0]
            .labels
            .iter()
            .map(|l| l.value.as_str())
            .collect();
        assert_eq!(values, ["h0001", "CPUUtilization", "Thermostat/Loadgen"]);
        let w = workload(3, 2, 10, Layout::Instances, Order::Time);
        let names: Vec<String> = w.remote_write_request(0..1).timeseries[0]
            .labels
            .iter()
            .map(|l| l.name.clone())
            .collect();
        assert_eq!(names, ["AvailabilityZone", "InstanceId", "__name__", "job"]);
    }

    /// The comparison's default shape: in agent order a 1,000-sample request is one host's
    /// flush, 10 series of 100 samples; in time order 1,000 series of one sample.
    #[test]
    fn agent_order_requests_are_few_long_series_time_order_many_short_ones() {
        let agent = workload(200, 100, 1000, Layout::Hosts { metrics: 10 }, Order::Agent);
        let r = agent.remote_write_request(0..1);
        assert_eq!(r.timeseries.len(), 10);
        assert!(r.timeseries.iter().all(|t| t.samples.len() == 100));
        let time = workload(2000, 2, 1000, Layout::Hosts { metrics: 10 }, Order::Time);
        let r = time.remote_write_request(0..1);
        assert_eq!(r.timeseries.len(), 1000);
        assert!(r.timeseries.iter().all(|t| t.samples.len() == 1));
    }

    #[test]
    fn bodies_are_snappy_blocks_of_exactly_prosts_encoding() {
        for w in specs() {
            let encoded = w.encode_remote_write(2);
            for (r, body) in encoded.bodies.iter().enumerate() {
                let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
                let ks = 2 * r..(2 * r + 2).min(w.request_count());
                assert_eq!(raw, w.remote_write_request(ks).encode_to_vec());
                // The framed format starts with its stream identifier chunk.
                assert!(!body.starts_with(b"\xff\x06\x00\x00sNaPpY"));
            }
        }
    }

    #[test]
    fn samples_are_encoded_as_prost_encodes_them_defaults_left_out() {
        for (timestamp, value) in [
            (0, 0.0),
            (0, -0.0),
            (1_700_000_000_123, 0.0),
            (0, 57.25),
            (-3, f64::NAN),
            (i64::MAX, f64::INFINITY),
            (1, f64::from_bits(0x7ff0_0000_0000_0002)), // Prometheus' staleness marker
        ] {
            let mut mine = Vec::new();
            encode_sample(timestamp, value, &mut mine);
            assert_eq!(
                mine,
                Sample { value, timestamp }.encode_to_vec(),
                "{timestamp} {value}"
            );
        }
    }
}
