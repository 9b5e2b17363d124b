//! Remote-write requests built by hand, from the specification's own protobufs
//! (prometheus/prometheus `prompb/types.proto`, `prompb/remote.proto` for 1.0 and
//! `prompb/io/prometheus/write/v2/types.proto` for 2.0), independent of Thermostat's decoder;
//! and a snappy block encoder.

/// Remote write 1.0 (`prometheus.WriteRequest`): only the fields these tests send.
pub(super) mod v1 {
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub(crate) timeseries: Vec<TimeSeries>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        pub(crate) labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub(crate) samples: Vec<Sample>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Label {
        #[prost(string, tag = "1")]
        pub(crate) name: String,
        #[prost(string, tag = "2")]
        pub(crate) value: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Sample {
        #[prost(double, tag = "1")]
        pub(crate) value: f64,
        #[prost(int64, tag = "2")]
        pub(crate) timestamp: i64,
    }

    /// A series from `(name, value)` pairs and `(timestamp ms, value)` samples.
    pub(crate) fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
        TimeSeries {
            labels: labels
                .iter()
                .map(|(n, v)| Label {
                    name: (*n).into(),
                    value: (*v).into(),
                })
                .collect(),
            samples: samples
                .iter()
                .map(|&(timestamp, value)| Sample { value, timestamp })
                .collect(),
        }
    }
}

/// Remote write 2.0 (`io.prometheus.write.v2.Request`).
pub(super) mod v2 {
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Request {
        #[prost(string, repeated, tag = "4")]
        pub(crate) symbols: Vec<String>,
        #[prost(message, repeated, tag = "5")]
        pub(crate) timeseries: Vec<TimeSeries>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct TimeSeries {
        #[prost(uint32, repeated, tag = "1")]
        pub(crate) labels_refs: Vec<u32>,
        #[prost(message, repeated, tag = "2")]
        pub(crate) samples: Vec<Sample>,
        #[prost(message, repeated, tag = "3")]
        pub(crate) histograms: Vec<Histogram>,
        #[prost(message, repeated, tag = "4")]
        pub(crate) exemplars: Vec<Exemplar>,
        #[prost(message, optional, tag = "5")]
        pub(crate) metadata: Option<Metadata>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Exemplar {
        #[prost(uint32, repeated, tag = "1")]
        pub(crate) labels_refs: Vec<u32>,
        #[prost(double, tag = "2")]
        pub(crate) value: f64,
        #[prost(int64, tag = "3")]
        pub(crate) timestamp: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Sample {
        #[prost(double, tag = "1")]
        pub(crate) value: f64,
        #[prost(int64, tag = "2")]
        pub(crate) timestamp: i64,
    }

    /// `Metadata.MetricType`.
    pub(crate) const COUNTER: i32 = 1;
    pub(crate) const GAUGE: i32 = 2;
    pub(crate) const HISTOGRAM: i32 = 3;

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Metadata {
        #[prost(int32, tag = "1")]
        pub(crate) r#type: i32,
        #[prost(uint32, tag = "3")]
        pub(crate) help_ref: u32,
        #[prost(uint32, tag = "4")]
        pub(crate) unit_ref: u32,
    }

    /// A native (exponential) histogram with integer counts: `count_int`, `zero_count_int`,
    /// and positive buckets as deltas.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Histogram {
        #[prost(uint64, tag = "1")]
        pub(crate) count_int: u64,
        #[prost(double, tag = "3")]
        pub(crate) sum: f64,
        #[prost(sint32, tag = "4")]
        pub(crate) schema: i32,
        #[prost(double, tag = "5")]
        pub(crate) zero_threshold: f64,
        #[prost(uint64, tag = "6")]
        pub(crate) zero_count_int: u64,
        #[prost(message, repeated, tag = "11")]
        pub(crate) positive_spans: Vec<BucketSpan>,
        #[prost(sint64, repeated, tag = "12")]
        pub(crate) positive_deltas: Vec<i64>,
        #[prost(int32, tag = "14")]
        pub(crate) reset_hint: i32,
        #[prost(int64, tag = "15")]
        pub(crate) timestamp: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct BucketSpan {
        #[prost(sint32, tag = "1")]
        pub(crate) offset: i32,
        #[prost(uint32, tag = "2")]
        pub(crate) length: u32,
    }

    /// A histogram of schema 0 (bucket `i` holds (2^(i-1), 2^i]) with the given per-bucket
    /// counts from bucket 0 on, as one span of deltas.
    pub(crate) fn schema0(timestamp: i64, buckets: &[u64], sum: f64) -> Histogram {
        let mut prev = 0i64;
        let deltas = buckets
            .iter()
            .map(|&c| {
                let c = i64::try_from(c).unwrap();
                let d = c - prev;
                prev = c;
                d
            })
            .collect();
        Histogram {
            count_int: buckets.iter().sum(),
            sum,
            schema: 0,
            zero_threshold: 1e-128,
            zero_count_int: 0,
            positive_spans: vec![BucketSpan {
                offset: 0,
                length: u32::try_from(buckets.len()).unwrap(),
            }],
            positive_deltas: deltas,
            reset_hint: 0,
            timestamp,
        }
    }
}

/// `data` in the snappy block format (what remote write's `Content-Encoding: snappy` means),
/// as literals only: a valid block that any decoder reads, without compressing.
pub(super) fn snappy(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 65_536 * 3 + 16);
    let mut n = data.len() as u64;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    for chunk in data.chunks(65_536) {
        let len = chunk.len() - 1;
        if len < 60 {
            out.push((len as u8) << 2);
        } else if len < 256 {
            out.push(60 << 2);
            out.push(len as u8);
        } else {
            out.push(61 << 2);
            out.extend_from_slice(&u16::try_from(len).unwrap().to_le_bytes());
        }
        out.extend_from_slice(chunk);
    }
    out
}

/// The media types and headers of the two protocol versions.
pub(super) const V1_CONTENT_TYPE: &str = "application/x-protobuf";
pub(super) const V2_CONTENT_TYPE: &str =
    "application/x-protobuf;proto=io.prometheus.write.v2.Request";

/// Posts `body` (already encoded and compressed) to `url` as a remote-write request of the
/// given content type: the status, the response headers and the body text.
pub(super) async fn post(
    url: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let version = if content_type.contains("write.v2") {
        "2.0.0"
    } else {
        "0.1.0"
    };
    let r = reqwest::Client::new()
        .post(url)
        .header("Content-Type", content_type)
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", version)
        .header("User-Agent", "thermostat-tests/1")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

/// The Prometheus exposition format in protobuf (`io.prometheus.client.MetricFamily`,
/// prometheus/client_model `metrics.proto`), length-delimited: the only format in which an
/// exporter serves native histograms to Prometheus 2.x. Only what a native histogram needs.
pub(super) mod exposition {
    /// `MetricType.HISTOGRAM`.
    pub(crate) const HISTOGRAM: i32 = 4;
    /// The media type Prometheus asks for with `--enable-feature=native-histograms`.
    pub(crate) const CONTENT_TYPE: &str = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct MetricFamily {
        #[prost(string, tag = "1")]
        pub(crate) name: String,
        #[prost(string, tag = "2")]
        pub(crate) help: String,
        #[prost(int32, tag = "3")]
        pub(crate) r#type: i32,
        #[prost(message, repeated, tag = "4")]
        pub(crate) metric: Vec<Metric>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Metric {
        #[prost(message, repeated, tag = "1")]
        pub(crate) label: Vec<LabelPair>,
        #[prost(message, optional, tag = "7")]
        pub(crate) histogram: Option<Histogram>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct LabelPair {
        #[prost(string, tag = "1")]
        pub(crate) name: String,
        #[prost(string, tag = "2")]
        pub(crate) value: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Histogram {
        #[prost(uint64, tag = "1")]
        pub(crate) sample_count: u64,
        #[prost(double, tag = "2")]
        pub(crate) sample_sum: f64,
        #[prost(sint32, tag = "5")]
        pub(crate) schema: i32,
        #[prost(double, tag = "6")]
        pub(crate) zero_threshold: f64,
        #[prost(uint64, tag = "7")]
        pub(crate) zero_count: u64,
        #[prost(message, repeated, tag = "12")]
        pub(crate) positive_span: Vec<super::v2::BucketSpan>,
        #[prost(sint64, repeated, tag = "13")]
        pub(crate) positive_delta: Vec<i64>,
    }

    /// One family `name` with one native histogram of schema 0 (bucket `i` holds
    /// (2^(i-1), 2^i]) with the given per-bucket counts from bucket 0 on.
    pub(crate) fn native_histogram(name: &str, buckets: &[u64], sum: f64) -> Vec<u8> {
        use prost::Message as _;
        let h = super::v2::schema0(0, buckets, sum);
        MetricFamily {
            name: name.into(),
            help: "A native histogram.".into(),
            r#type: HISTOGRAM,
            metric: vec![Metric {
                label: vec![LabelPair {
                    name: "route".into(),
                    value: "/b".into(),
                }],
                histogram: Some(Histogram {
                    sample_count: h.count_int,
                    sample_sum: h.sum,
                    schema: 0,
                    zero_threshold: h.zero_threshold,
                    zero_count: 0,
                    positive_span: h.positive_spans,
                    positive_delta: h.positive_deltas,
                }),
            }],
        }
        .encode_length_delimited_to_vec()
    }
}
