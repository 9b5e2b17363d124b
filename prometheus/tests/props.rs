//! Property tests: no input makes decoding or mapping panic; valid requests round-trip.

use proptest::prelude::*;
use prost::Message as _;
use thermostat_prometheus::proto::{Label, Sample, TimeSeries, WriteRequest};
use thermostat_prometheus::{MapOptions, decode_protobuf, decode_v1, map_v1};

proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode_v1(&body);
        if let Ok(request) = decode_protobuf(&body) {
            let _ = map_v1(&request, &MapOptions::default());
        }
    }

    #[test]
    fn decoding_compressed_arbitrary_bytes_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        if let Ok(request) = decode_v1(&body) {
            let _ = map_v1(&request, &MapOptions::default());
        }
    }

    #[test]
    fn requests_round_trip_and_map_without_panicking(
        series in proptest::collection::vec(
            (
                proptest::collection::vec(("[a-z_]{0,6}", "\\PC{0,8}"), 0..6),
                proptest::collection::vec((any::<i64>(), any::<f64>()), 0..4),
            ),
            0..8,
        )
    ) {
        let request = WriteRequest {
            timeseries: series
                .into_iter()
                .map(|(labels, samples)| TimeSeries {
                    labels: labels.into_iter().map(|(name, value)| Label { name, value }).collect(),
                    samples: samples.into_iter().map(|(timestamp, value)| Sample { value, timestamp }).collect(),
                    ..TimeSeries::default()
                })
                .collect(),
            metadata: vec![],
        };
        let raw = request.encode_to_vec();
        let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        let decoded = decode_v1(&body).unwrap();
        prop_assert_eq!(decoded.encode_to_vec(), raw);
        let mapped = map_v1(&decoded, &MapOptions::default());
        let samples: usize = decoded.timeseries.iter().map(|t| t.samples.len()).sum();
        let kept: usize = mapped.series.iter().map(|s| s.samples.len() + s.stale_at.len()).sum();
        prop_assert!(kept <= samples);
    }
}
