//! Remote write 2.0: a golden request built from the specification's messages, and hostile
//! bodies refused by the limits before anything is allocated for them.

use prost::Message as _;
use thermostat_metrics::cumulative::{MappedData, StreamKind, Streams};
use thermostat_prometheus::limits::*;
use thermostat_prometheus::proto::histogram::{Count, ResetHint, ZeroCount};
use thermostat_prometheus::v2::{
    BucketSpan, Exemplar, Histogram, Metadata, MetricType, Request, Sample, TimeSeries,
};
use thermostat_prometheus::{
    MapOptions, Version, decode, decode_v2, decode_v2_protobuf, map, negotiate,
};

const NOW: i64 = 1_700_000_030_000;
const T0: i64 = 1_700_000_000_000;

/// The specification's example, in spirit: a counter with a start timestamp and an exemplar,
/// a gauge, and a native histogram, sharing one symbol table.
fn golden() -> Request {
    let symbols = [
        "",
        "__name__",
        "http_requests_total",
        "job",
        "api",
        "instance",
        "web-1:8080",
        "trace_id",
        "abc123",
        "Requests served.",
        "memory_bytes",
        "http_request_duration_seconds",
        "seconds",
    ];
    Request {
        symbols: symbols.iter().map(|s| (*s).to_owned()).collect(),
        timeseries: vec![
            TimeSeries {
                labels_refs: vec![1, 2, 3, 4, 5, 6],
                samples: vec![Sample {
                    value: 42.0,
                    timestamp: T0,
                    start_timestamp: T0 - 60_000,
                }],
                exemplars: vec![Exemplar {
                    labels_refs: vec![7, 8],
                    value: 1.0,
                    timestamp: T0,
                }],
                metadata: Some(Metadata {
                    r#type: MetricType::Counter as i32,
                    help_ref: 9,
                    unit_ref: 0,
                }),
                ..TimeSeries::default()
            },
            TimeSeries {
                labels_refs: vec![1, 10, 3, 4],
                samples: vec![Sample {
                    value: 1.5e9,
                    timestamp: T0,
                    start_timestamp: 0,
                }],
                metadata: Some(Metadata {
                    r#type: MetricType::Gauge as i32,
                    help_ref: 0,
                    unit_ref: 0,
                }),
                ..TimeSeries::default()
            },
            TimeSeries {
                labels_refs: vec![1, 11, 3, 4],
                histograms: vec![Histogram {
                    count: Some(Count::CountInt(7)),
                    sum: 3.25,
                    schema: 1,
                    zero_threshold: 1e-9,
                    zero_count: Some(ZeroCount::ZeroCountInt(1)),
                    positive_spans: vec![
                        BucketSpan {
                            offset: -3,
                            length: 2,
                        },
                        BucketSpan {
                            offset: 1,
                            length: 1,
                        },
                    ],
                    positive_deltas: vec![2, -1, 1],
                    negative_spans: vec![BucketSpan {
                        offset: 0,
                        length: 1,
                    }],
                    negative_deltas: vec![1],
                    reset_hint: ResetHint::No as i32,
                    timestamp: T0,
                    start_timestamp: T0 - 60_000,
                    ..Histogram::default()
                }],
                metadata: Some(Metadata {
                    r#type: MetricType::Histogram as i32,
                    help_ref: 0,
                    unit_ref: 12,
                }),
                ..TimeSeries::default()
            },
        ],
    }
}

fn compress(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .expect("snappy compresses any input")
}

#[test]
fn golden_request_negotiates_decodes_and_maps() {
    let version = negotiate(
        Some("application/x-protobuf;proto=io.prometheus.write.v2.Request"),
        Some("snappy"),
    )
    .unwrap();
    assert_eq!(version, Version::V2);
    let request = golden();
    let body = compress(&request.encode_to_vec());
    let decoded = decode(version, &body).unwrap();
    assert_eq!(decoded, thermostat_prometheus::Request::V2(request));
    let mut streams = Streams::new();
    let m = map(&decoded, &mut streams, NOW, &MapOptions::default());
    assert!(m.rejected.is_empty(), "{:?}", m.rejected);
    assert_eq!(m.points.len(), 3);
    // The counter had a start timestamp: its first sample counts from zero.
    let counter = &m.points[0];
    assert_eq!(counter.series.metric_name(), "http_requests_total");
    assert_eq!(counter.series.namespace(), "api");
    assert_eq!(counter.series.dimension("instance"), Some("web-1:8080"));
    assert_eq!(counter.data, MappedData::Value(42.0));
    assert_eq!(m.points[1].data, MappedData::Value(1.5e9));
    // Buckets: zero 1; positive -3: 2, -2: 1, 0: 2; negative 0: 1.
    let MappedData::Distribution {
        count,
        sum,
        values,
        counts,
        ..
    } = &m.points[2].data
    else {
        panic!("{:?}", m.points[2]);
    };
    assert_eq!(
        (*count, *sum),
        (7, 3.25),
        "count 6 in the message? see below"
    );
    assert_eq!(counts, &vec![1, 1, 2, 1, 2]);
    assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
    assert_eq!(m.written.samples, 2);
    assert_eq!(m.written.histograms, 1);
    assert_eq!(m.written.exemplars, 0);
    let kinds: Vec<StreamKind> = streams.iter().map(|(k, _)| k.kind).collect();
    assert_eq!(kinds.len(), 2);
    assert!(kinds.contains(&StreamKind::Sum));
    assert!(kinds.contains(&StreamKind::ExponentialHistogram));
}

#[test]
fn first_symbol_must_be_empty() {
    let mut request = golden();
    request.symbols[0] = "x".into();
    let e = decode_v2(&compress(&request.encode_to_vec())).unwrap_err();
    assert_eq!(
        e.to_string(),
        "symbols[0]: must be the empty string (got 1 bytes)"
    );
}

#[test]
fn a_million_symbols_are_refused_before_allocation() {
    // Each empty symbol is two bytes on the wire: 2 MB of body for 1e6 strings.
    let raw = [0x22, 0x00].repeat(1_000_000);
    let e = decode_v2_protobuf(&raw).unwrap_err();
    assert_eq!(e.to_string(), "symbols: at most 500000 symbols per request");
    // One huge symbol.
    let request = Request {
        symbols: vec![String::new(), "x".repeat(MAX_SYMBOL_BYTES + 1)],
        timeseries: vec![],
    };
    let e = decode_v2_protobuf(&request.encode_to_vec()).unwrap_err();
    assert_eq!(e.field, "symbols[1]");
}

#[test]
fn huge_declared_counts_are_refused() {
    // A series whose labels_refs field declares 4 GiB: truncated, not allocated.
    let raw = [0x2a, 0x08, 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00];
    let e = decode_v2_protobuf(&raw).unwrap_err();
    assert!(e.rule.contains("truncated or malformed"), "{e}");
    // Too many label references in one series.
    let request = Request {
        symbols: vec![String::new()],
        timeseries: vec![TimeSeries {
            labels_refs: vec![0; 2 * MAX_LABELS_PER_SERIES + 2],
            ..TimeSeries::default()
        }],
    };
    let e = decode_v2_protobuf(&request.encode_to_vec()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "timeseries[0].labels_refs: at most 256 label references per series (two a label)"
    );
    // Too many samples over the request.
    let request = Request {
        symbols: vec![],
        timeseries: vec![TimeSeries {
            samples: vec![Sample::default(); MAX_SAMPLES_PER_REQUEST + 1],
            ..TimeSeries::default()
        }],
    };
    let e = decode_v2_protobuf(&request.encode_to_vec()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "timeseries[0].samples: at most 1000000 samples per request"
    );
}

#[test]
fn deep_and_long_spans_are_bounded() {
    // Too many spans: refused by decoding.
    let mut request = golden();
    request.timeseries[2].histograms[0].positive_spans = vec![
        BucketSpan {
            offset: 1,
            length: 0
        };
        MAX_SPANS_PER_HISTOGRAM + 1
    ];
    let e = decode_v2_protobuf(&request.encode_to_vec()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "timeseries[2].histograms[0].spans: at most 4096 spans per histogram"
    );
    // Spans declaring billions of buckets, or buckets far apart: a rejected histogram,
    // nothing allocated for the declared lengths.
    for spans in [
        vec![BucketSpan {
            offset: 0,
            length: u32::MAX,
        }],
        vec![
            BucketSpan {
                offset: i32::MIN,
                length: 1,
            },
            BucketSpan {
                offset: i32::MAX,
                length: 1,
            },
        ],
    ] {
        let mut request = golden();
        request.timeseries[2].histograms[0].positive_spans = spans;
        let decoded = decode_v2_protobuf(&request.encode_to_vec()).unwrap();
        let m = map(
            &thermostat_prometheus::Request::V2(decoded),
            &mut Streams::new(),
            NOW,
            &MapOptions::default(),
        );
        assert_eq!(m.rejected.len(), 1, "{:?}", m.rejected);
        assert!(
            m.rejected[0]
                .rule
                .starts_with("timeseries[2].histograms[0].positive_spans: must cover at most"),
            "{}",
            m.rejected[0].rule
        );
        assert_eq!(m.written.histograms, 0);
    }
}
