//! Property tests: no input makes decoding or mapping panic; valid requests round-trip; the
//! stream updates a mapping returns replay to its state and its undo restores the one before.

use proptest::prelude::*;
use prost::Message as _;
use thermostat_metrics::cumulative::Streams;
use thermostat_prometheus::proto::histogram::Count;
use thermostat_prometheus::proto::{
    BucketSpan, Histogram, Label, Sample, TimeSeries, WriteRequest,
};
use thermostat_prometheus::{
    MapOptions, Request, decode_protobuf, decode_v1, decode_v2, decode_v2_protobuf, map, v2,
};

const NOW: i64 = 1_700_000_000_000;

fn map_checked(request: Request) {
    let mut streams = Streams::new();
    let before = streams.clone();
    let options = MapOptions {
        max_streams: 4,
        ..MapOptions::default()
    };
    let m = map(&request, &mut streams, NOW, &options);
    let mut replayed = before.clone();
    for u in &m.stream_updates {
        replayed.apply(u);
    }
    assert_eq!(replayed, streams);
    for u in &m.undo {
        streams.apply(u);
    }
    assert_eq!(streams, before);
}

fn histogram() -> impl Strategy<Value = Histogram> {
    (
        any::<u64>(),
        any::<f64>(),
        prop_oneof![Just(-53), -6i32..10],
        proptest::collection::vec((any::<i32>(), 0u32..64), 0..4),
        proptest::collection::vec(-5i64..20, 0..16),
        proptest::collection::vec(-3f64..5.0, 0..4),
        0i32..4,
        NOW - 100..NOW + 100,
    )
        .prop_map(
            |(count, sum, schema, spans, deltas, custom_values, reset_hint, timestamp)| Histogram {
                count: Some(Count::CountInt(count % 64)),
                sum,
                schema,
                positive_spans: spans
                    .into_iter()
                    .map(|(offset, length)| BucketSpan { offset, length })
                    .collect(),
                positive_deltas: deltas,
                custom_values,
                reset_hint,
                timestamp,
                ..Histogram::default()
            },
        )
}

proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode_v1(&body);
        let _ = decode_v2(&body);
        if let Ok(request) = decode_protobuf(&body) {
            map_checked(Request::V1(request));
        }
        if let Ok(request) = decode_v2_protobuf(&body) {
            map_checked(Request::V2(request));
        }
    }

    #[test]
    fn decoding_compressed_arbitrary_bytes_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        if let Ok(request) = decode_v1(&body) {
            map_checked(Request::V1(request));
        }
        if let Ok(request) = decode_v2(&body) {
            map_checked(Request::V2(request));
        }
    }

    #[test]
    fn v1_requests_round_trip_and_map_without_panicking(
        series in proptest::collection::vec(
            (
                proptest::collection::vec((prop_oneof!["[a-z_]{0,6}", Just("__name__".to_owned()), Just("le".to_owned())], "\\PC{0,8}"), 0..6),
                proptest::collection::vec((prop_oneof![any::<i64>(), NOW - 100..NOW + 100], any::<f64>()), 0..4),
                proptest::collection::vec(histogram(), 0..2),
            ),
            0..8,
        )
    ) {
        let request = WriteRequest {
            timeseries: series
                .into_iter()
                .map(|(labels, samples, histograms)| TimeSeries {
                    labels: labels.into_iter().map(|(name, value)| Label { name, value }).collect(),
                    samples: samples.into_iter().map(|(timestamp, value)| Sample { value, timestamp }).collect(),
                    histograms,
                    ..TimeSeries::default()
                })
                .collect(),
            metadata: vec![],
        };
        let raw = request.encode_to_vec();
        let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        let decoded = decode_v1(&body).unwrap();
        prop_assert_eq!(decoded.encode_to_vec(), raw);
        let samples: usize = decoded.timeseries.iter().map(|t| t.samples.len()).sum();
        let mapped = map(&Request::V1(decoded.clone()), &mut Streams::new(), NOW, &MapOptions::default());
        prop_assert!(mapped.written.samples as usize <= samples);
        map_checked(Request::V1(decoded));
    }

    #[test]
    fn v2_requests_round_trip_and_map_without_panicking(
        symbols in proptest::collection::vec(prop_oneof!["[a-z_]{0,6}", Just("__name__".to_owned()), Just("x_total".to_owned()), Just("le".to_owned()), Just("+Inf".to_owned())], 0..8),
        series in proptest::collection::vec(
            (
                proptest::collection::vec(0u32..10, 0..7),
                proptest::collection::vec((NOW - 100..NOW + 100, any::<f64>(), any::<i64>()), 0..4),
                proptest::collection::vec(histogram(), 0..2),
                0i32..9,
            ),
            0..8,
        )
    ) {
        let mut all = vec![String::new()];
        all.extend(symbols);
        let request = v2::Request {
            symbols: all,
            timeseries: series
                .into_iter()
                .map(|(labels_refs, samples, histograms, t)| v2::TimeSeries {
                    labels_refs,
                    samples: samples
                        .into_iter()
                        .map(|(timestamp, value, start_timestamp)| v2::Sample { value, timestamp, start_timestamp })
                        .collect(),
                    histograms,
                    metadata: Some(v2::Metadata { r#type: t, help_ref: 0, unit_ref: 0 }),
                    ..v2::TimeSeries::default()
                })
                .collect(),
        };
        let raw = request.encode_to_vec();
        let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        let decoded = decode_v2(&body).unwrap();
        prop_assert_eq!(decoded.encode_to_vec(), raw);
        map_checked(Request::V2(decoded));
    }
}
