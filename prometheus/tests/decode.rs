//! The golden round trip and hostile bodies.

use prost::Message as _;
use thermostat_metrics::Dimension;
use thermostat_metrics::cumulative::{MappedData, Streams};
use thermostat_prometheus::limits::*;
use thermostat_prometheus::proto::histogram::Count;
use thermostat_prometheus::proto::{
    BucketSpan, Exemplar, Histogram, Label, MetricMetadata, MetricType, Sample, TimeSeries,
    WriteRequest,
};
use thermostat_prometheus::{
    DecodeError, MapOptions, Request, STALE_NAN_BITS, Version, decode, decode_protobuf, decode_v1,
    map,
};

const NOW: i64 = 1_700_000_030_000;

fn label(name: &str, value: &str) -> Label {
    Label {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

fn golden() -> WriteRequest {
    WriteRequest {
        timeseries: vec![
            TimeSeries {
                labels: vec![
                    label("__name__", "http_requests_total"),
                    label("code", "200"),
                    label("instance", "web-1:8080"),
                    label("job", "api"),
                ],
                samples: vec![
                    Sample {
                        value: 10.0,
                        timestamp: 1_700_000_000_000,
                    },
                    Sample {
                        value: 12.0,
                        timestamp: 1_700_000_015_000,
                    },
                ],
                exemplars: vec![Exemplar {
                    labels: vec![label("trace_id", "abc")],
                    value: 1.0,
                    timestamp: 1_700_000_000_000,
                }],
                histograms: vec![],
            },
            TimeSeries {
                labels: vec![label("__name__", "temperature_celsius")],
                samples: vec![
                    Sample {
                        value: 21.5,
                        timestamp: 1_700_000_000_000,
                    },
                    Sample {
                        value: f64::from_bits(STALE_NAN_BITS),
                        timestamp: 1_700_000_015_000,
                    },
                ],
                exemplars: vec![],
                histograms: vec![],
            },
        ],
        metadata: vec![MetricMetadata {
            r#type: MetricType::Counter as i32,
            metric_family_name: "http_requests_total".to_owned(),
            help: "Requests.".to_owned(),
            unit: String::new(),
        }],
    }
}

fn compress(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .expect("snappy compresses any input")
}

fn err(body: &[u8]) -> DecodeError {
    decode_v1(body).expect_err("the body is refused")
}

#[test]
fn golden_request_round_trips_and_maps() {
    let request = golden();
    let body = compress(&request.encode_to_vec());
    let decoded = decode_v1(&body).unwrap();
    // PartialEq on f64 fails for NaN, so compare the encodings.
    assert_eq!(decoded.encode_to_vec(), request.encode_to_vec());
    let mut streams = Streams::new();
    let m = map(
        &Request::V1(decoded),
        &mut streams,
        NOW,
        &MapOptions::default(),
    );
    assert!(m.rejected.is_empty(), "{:?}", m.rejected);
    // The counter's first sample is its baseline; the second its increase.
    assert_eq!(m.points.len(), 2);
    let a = &m.points[0];
    assert_eq!(a.series.namespace(), "api");
    assert_eq!(a.series.metric_name(), "http_requests_total");
    assert_eq!(
        a.series.dimensions(),
        &[
            Dimension::new("code", "200"),
            Dimension::new("instance", "web-1:8080")
        ]
    );
    assert_eq!(a.timestamp_ms, 1_700_000_015_000);
    assert_eq!(a.data, MappedData::Value(2.0));
    let b = &m.points[1];
    assert_eq!(b.series.namespace(), "Prometheus");
    assert_eq!(b.data, MappedData::Value(21.5));
    assert_eq!(m.stale.len(), 1);
    assert_eq!(m.stale[0].1, 1_700_000_015_000);
    assert_eq!(m.written.samples, 4);
    assert_eq!(m.written.exemplars, 0);
    assert_eq!(m.skipped, 1);
    assert_eq!(streams.len(), 1);
    // The same through the version-aware entry point.
    let body = compress(&golden().encode_to_vec());
    assert!(matches!(decode(Version::V1, &body), Ok(Request::V1(_))));
}

#[test]
fn not_snappy_is_refused() {
    let e = err(b"");
    assert_eq!(e.field, "snappy");
    let e = err(&[0xff; 12]);
    assert_eq!(e.field, "snappy", "{e}");
    // Plain protobuf sent without compression.
    let e = err(&golden().encode_to_vec());
    assert!(e.field == "snappy" || e.field == "protobuf", "{e}");
}

#[test]
fn huge_declared_length_is_refused_before_allocation() {
    // 4 GiB - 1: the largest snappy allows; our limit refuses it.
    let e = err(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]);
    assert_eq!(e.field, "snappy");
    assert!(e.rule.contains("declare at most 67108864 bytes"), "{e}");
    // 4 GiB: over snappy's own maximum.
    let e = err(&[0x80, 0x80, 0x80, 0x80, 0x10, 0x00]);
    assert_eq!(e.field, "snappy");
}

#[test]
fn compressed_body_over_limit_is_refused() {
    let e = err(&vec![0u8; MAX_COMPRESSED_BYTES + 1]);
    assert_eq!(e.field, "body");
}

#[test]
fn truncated_protobuf_is_refused() {
    let raw = golden().encode_to_vec();
    for cut in [1, 3, 10, raw.len() / 2] {
        let e = err(&compress(&raw[..raw.len() - cut]));
        assert!(e.rule.contains("protobuf"), "{cut}: {e}");
    }
}

#[test]
fn count_limits_name_the_field() {
    // Empty time series are two bytes each on the wire.
    let raw = [0x0a, 0x00].repeat(MAX_SERIES_PER_REQUEST + 1);
    let e = decode_protobuf(&raw).unwrap_err();
    assert_eq!(
        e.to_string(),
        "timeseries: at most 100000 series per request"
    );

    let series = TimeSeries {
        labels: (0..=MAX_LABELS_PER_SERIES)
            .map(|i| label(&format!("l{i}"), "v"))
            .collect(),
        ..TimeSeries::default()
    };
    let raw = WriteRequest {
        timeseries: vec![TimeSeries::default(), series],
        metadata: vec![],
    }
    .encode_to_vec();
    let e = decode_v1(&compress(&raw)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "timeseries[1].labels: at most 128 labels per series"
    );

    let series = TimeSeries {
        samples: vec![Sample::default(); MAX_SAMPLES_PER_REQUEST + 1],
        ..TimeSeries::default()
    };
    let raw = WriteRequest {
        timeseries: vec![series],
        metadata: vec![],
    }
    .encode_to_vec();
    let e = decode_protobuf(&raw).unwrap_err();
    assert_eq!(
        e.to_string(),
        "timeseries[0].samples: at most 1000000 samples per request"
    );
}

#[test]
fn label_size_limits_name_the_field() {
    let raw = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![
                label("__name__", "up"),
                label("a", &"x".repeat(MAX_LABEL_VALUE_BYTES + 1)),
            ],
            ..TimeSeries::default()
        }],
        metadata: vec![],
    }
    .encode_to_vec();
    let e = decode_protobuf(&raw).unwrap_err();
    assert_eq!(e.field, "timeseries[0].labels[1].value");
    assert_eq!(e.rule, "at most 16384 bytes (got 16385)");

    let raw = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![label(&"n".repeat(MAX_LABEL_NAME_BYTES + 1), "v")],
            ..TimeSeries::default()
        }],
        metadata: vec![],
    }
    .encode_to_vec();
    assert_eq!(
        decode_protobuf(&raw).unwrap_err().field,
        "timeseries[0].labels[0].name"
    );
}

#[test]
fn native_histograms_are_decoded() {
    let mut request = golden();
    let h = Histogram {
        count: Some(Count::CountInt(3)),
        sum: 2.5,
        schema: 3,
        positive_spans: vec![BucketSpan {
            offset: -2,
            length: 2,
        }],
        positive_deltas: vec![1, 1],
        timestamp: 1_700_000_000_000,
        ..Histogram::default()
    };
    request.timeseries[0].histograms = vec![h.clone()];
    let decoded = decode_v1(&compress(&request.encode_to_vec())).unwrap();
    assert_eq!(decoded.timeseries[0].histograms, vec![h]);
}

#[test]
fn histogram_bucket_limits_are_checked_on_the_wire() {
    let mut request = golden();
    request.timeseries[0].histograms = vec![Histogram {
        positive_deltas: vec![1; MAX_BUCKETS_PER_HISTOGRAM + 1],
        ..Histogram::default()
    }];
    let e = decode_protobuf(&request.encode_to_vec()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "timeseries[0].histograms[0].buckets: at most 4096 bucket counts and custom bounds per histogram"
    );
    request.timeseries[0].histograms = vec![Histogram {
        negative_spans: vec![BucketSpan::default(); MAX_SPANS_PER_HISTOGRAM + 1],
        ..Histogram::default()
    }];
    let e = decode_protobuf(&request.encode_to_vec()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "timeseries[0].histograms[0].spans: at most 4096 spans per histogram"
    );
}
