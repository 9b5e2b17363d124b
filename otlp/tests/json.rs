//! OTLP JSON: the golden request of the opentelemetry-proto repository
//! (`examples/metrics.json`, kept verbatim in `fixtures/metrics.json`) and a request of our
//! own that exercises each rule of the OTLP JSON encoding (`fixtures/otlp-json-rules.json`).

use prost::Message;
use thermostat_metrics::Unit;
use thermostat_otlp::proto::common::v1::any_value::Value;
use thermostat_otlp::proto::metrics::v1::{metric::Data, number_data_point};
use thermostat_otlp::{
    DecodeErrorKind, MapOptions, MappedData, Streams, decode_json, decode_protobuf, map,
};

const GOLDEN: &[u8] = include_bytes!("fixtures/metrics.json");
const RULES: &[u8] = include_bytes!("fixtures/otlp-json-rules.json");
/// The time of the golden points, 2018-12-13T14:51:00.300Z, in ms.
const GOLDEN_MS: i64 = 1_544_712_660_300;

fn options() -> MapOptions {
    MapOptions {
        resource_dimensions: vec![],
        max_streams: 100,
        stream_idle_ms: 3_600_000,
    }
}

#[test]
fn the_golden_request_decodes() {
    let request = decode_json(GOLDEN).unwrap();
    let rm = &request.resource_metrics[0];
    let resource = rm.resource.as_ref().unwrap();
    assert_eq!(resource.attributes[0].key, "service.name");
    assert_eq!(
        resource.attributes[0].value.as_ref().unwrap().value,
        Some(Value::StringValue("my.service".into()))
    );
    let scope = &rm.scope_metrics[0];
    assert_eq!(scope.scope.as_ref().unwrap().name, "my.library");
    assert_eq!(scope.scope.as_ref().unwrap().version, "1.0.0");
    let metrics = &scope.metrics;
    assert_eq!(metrics.len(), 3);
    let Some(Data::Sum(sum)) = &metrics[0].data else {
        panic!("{:?}", metrics[0])
    };
    assert_eq!((sum.aggregation_temporality, sum.is_monotonic), (1, true));
    let p = &sum.data_points[0];
    assert_eq!(p.value, Some(number_data_point::Value::AsDouble(5.0)));
    assert_eq!(
        p.time_unix_nano, 1_544_712_660_300_000_000,
        "a 64-bit integer given as a JSON number"
    );
    let Some(Data::Gauge(gauge)) = &metrics[1].data else {
        panic!("{:?}", metrics[1])
    };
    assert_eq!(
        gauge.data_points[0].value,
        Some(number_data_point::Value::AsDouble(10.0))
    );
    let Some(Data::Histogram(h)) = &metrics[2].data else {
        panic!("{:?}", metrics[2])
    };
    let p = &h.data_points[0];
    assert_eq!(
        (p.count, p.sum, p.min, p.max),
        (2, Some(2.0), Some(0.0), Some(2.0))
    );
    assert_eq!(
        (p.bucket_counts.as_slice(), p.explicit_bounds.as_slice()),
        (&[1, 1][..], &[1.0][..])
    );

    // The crate's own serde reads it alike (where nothing is malformed, they agree).
    let with_crate_serde: thermostat_otlp::proto::collector::metrics::v1::ExportMetricsServiceRequest =
        serde_json::from_slice(GOLDEN).unwrap();
    assert_eq!(with_crate_serde, request);
    let with_crate_serde: thermostat_otlp::proto::collector::metrics::v1::ExportMetricsServiceRequest =
        serde_json::from_slice(RULES).unwrap();
    assert_eq!(with_crate_serde, decode_json(RULES).unwrap());

    // The same request as protobuf decodes to the same message.
    let bytes = request.encode_to_vec();
    assert_eq!(decode_protobuf(&bytes).unwrap(), request);
}

#[test]
fn the_golden_request_maps() {
    let request = decode_json(GOLDEN).unwrap();
    let mut streams = Streams::new();
    let mapped = map(&request, &mut streams, GOLDEN_MS + 60_000, &options());
    assert!(mapped.rejected.is_empty(), "{:?}", mapped.rejected);
    assert_eq!(mapped.points.len(), 3);
    for p in &mapped.points {
        assert_eq!(p.series.namespace(), "my.service");
        assert_eq!(p.series.dimension("service.name"), Some("my.service"));
        assert_eq!(p.timestamp_ms, GOLDEN_MS);
        assert_eq!(p.unit, Unit::None, "UCUM 1 is dimensionless: None");
    }
    assert_eq!(mapped.points[0].series.metric_name(), "my.counter");
    assert_eq!(
        mapped.points[0].series.dimension("my.counter.attr"),
        Some("some value")
    );
    assert_eq!(
        mapped.points[0].data,
        MappedData::Value(5.0),
        "a delta sum, as it is"
    );
    assert_eq!(mapped.points[1].data, MappedData::Value(10.0));
    assert_eq!(
        mapped.points[2].data,
        MappedData::Distribution {
            count: 2,
            sum: 2.0,
            min: Some(0.0),
            max: Some(2.0),
            // (-inf, 1] narrowed by min 0 to [0, 1]; (1, +inf) narrowed by max 2 to (1, 2].
            values: vec![0.5, 1.5],
            counts: vec![1, 1],
        }
    );
    assert!(streams.is_empty(), "only delta data");
}

#[test]
fn the_otlp_json_rules() {
    let request = decode_json(RULES).unwrap();
    let rm = &request.resource_metrics[0];
    let attrs = &rm.resource.as_ref().unwrap().attributes;
    // int64 as a string, beyond 2^53: exact.
    assert_eq!(
        attrs[1].value.as_ref().unwrap().value,
        Some(Value::IntValue(9_007_199_254_740_993))
    );
    // bytes as base64.
    assert_eq!(
        attrs[2].value.as_ref().unwrap().value,
        Some(Value::BytesValue(vec![1, 2, 3]))
    );
    let metrics = &rm.scope_metrics[0].metrics;
    let Some(Data::Sum(sum)) = &metrics[0].data else {
        panic!()
    };
    assert_eq!(sum.aggregation_temporality, 2, "enums are integers");
    let p = &sum.data_points[0];
    assert_eq!(
        p.value,
        Some(number_data_point::Value::AsInt(9_007_199_254_740_993))
    );
    assert_eq!(
        p.start_time_unix_nano, 1_544_712_600_000_000_000,
        "fixed64 as a string"
    );
    // Trace and span ids are hex, not base64.
    assert_eq!(
        p.exemplars[0].trace_id,
        [
            0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f,
            0xc6, 0x0c
        ]
    );
    assert_eq!(
        p.exemplars[0].span_id,
        [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74]
    );
    let Some(Data::ExponentialHistogram(e)) = &metrics[1].data else {
        panic!()
    };
    let e = &e.data_points[0];
    assert_eq!((e.count, e.zero_count, e.scale), (6, 1, -2));
    assert_eq!(
        e.positive.as_ref().unwrap().bucket_counts,
        [3, 1],
        "uint64s as strings"
    );
    assert_eq!(
        e.negative.as_ref().unwrap().bucket_counts,
        [1],
        "or as numbers"
    );
    let Some(Data::Summary(s)) = &metrics[2].data else {
        panic!()
    };
    assert_eq!(
        s.data_points[0].quantile_values[1].value,
        f64::INFINITY,
        "\"Infinity\" where the crate allows it"
    );
    // An unknown key is ignored, as the OTLP specification requires.
    assert!(matches!(metrics[3].data, Some(Data::Gauge(_))));

    let mapped = map(
        &request,
        &mut Streams::new(),
        GOLDEN_MS + 60_000,
        &options(),
    );
    assert!(mapped.rejected.is_empty(), "{:?}", mapped.rejected);
    let counter = &mapped.points[0];
    assert_eq!(counter.unit, Unit::Count);
    assert_eq!(counter.series.dimension("http.status_code"), Some("200"));
    assert_eq!(counter.series.dimension("retried"), Some("false"));
    assert_eq!(
        counter.data,
        MappedData::Value(9_007_199_254_740_992.0),
        "as_int is a double"
    );
    let MappedData::Distribution {
        count,
        values,
        counts,
        ..
    } = &mapped.points[1].data
    else {
        panic!()
    };
    assert_eq!((*count, counts.as_slice()), (6, &[1, 1, 3, 1][..]));
    assert_eq!(values[1], 0.0);
    assert!(values[0] < -1.0 / 16.0 && values[0] >= -1.0, "{values:?}");
    assert!(values[2] > 16.0 && values[2] <= 256.0, "{values:?}");
    assert!(values[3] > 256.0 && values[3] <= 4096.0, "{values:?}");
    assert_eq!(mapped.points[1].unit, Unit::Bytes);
    assert_eq!(
        mapped.points[2].data,
        MappedData::Distribution {
            count: 4,
            sum: 2.5,
            min: None,
            max: None,
            values: vec![],
            counts: vec![]
        }
    );
    assert_eq!(mapped.points[3].series.namespace(), "checkout");
}

fn one_metric(metric: &str) -> Vec<u8> {
    format!(r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{metric}]}}]}}]}}"#).into_bytes()
}

/// `opentelemetry-proto`'s serde flattens the oneofs into `Option`s and serde turns an error
/// inside one into `None`: with it, the first request below decoded as a metric without data
/// (the histogram vanished without a word). The mirrors of `src/json.rs` refuse it instead.
#[test]
fn a_malformed_field_refuses_the_request_instead_of_vanishing() {
    let bad_count = one_metric(
        r#"{"name":"h","histogram":{"aggregationTemporality":1,"dataPoints":[{"count":"many","timeUnixNano":"1"}]}}"#,
    );
    let error = decode_json(&bad_count).unwrap_err();
    assert_eq!(error.kind, DecodeErrorKind::Json);
    assert!(error.to_string().starts_with("body: must be an OTLP JSON ExportMetricsServiceRequest (\"many\" is not an integer in range at line 1 column"), "{error}");
    let with_crate_serde: thermostat_otlp::proto::collector::metrics::v1::ExportMetricsServiceRequest =
        serde_json::from_slice(&bad_count).unwrap();
    assert_eq!(
        with_crate_serde.resource_metrics[0].scope_metrics[0].metrics[0].data, None,
        "the crate's serde drops it"
    );

    let two_kinds = one_metric(r#"{"name":"x","gauge":{"dataPoints":[]},"sum":{"dataPoints":[]}}"#);
    assert_eq!(
        decode_json(&two_kinds).unwrap_err().to_string(),
        "resourceMetrics[0].scopeMetrics[0].metrics[0]: must have at most one of gauge, sum, histogram, exponentialHistogram and summary (got 2)"
    );
    let two_values = one_metric(
        r#"{"name":"g","gauge":{"dataPoints":[{"asDouble":1,"asInt":"1","timeUnixNano":"1"}]}}"#,
    );
    assert_eq!(
        decode_json(&two_values).unwrap_err().to_string(),
        "resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0]: must have one of asDouble and asInt, not both"
    );
}

/// What protobuf's JSON mapping allows beyond what OTLP JSON writers emit: special doubles as
/// strings, null for a default, enum names.
#[test]
fn protobufs_json_mapping_is_read_whole() {
    let request = one_metric(
        r#"{"name":"g","gauge":{"dataPoints":[
            {"asDouble":"NaN","timeUnixNano":"1544712660300000000"},
            {"asDouble":"1.5","timeUnixNano":"1544712660300000000","attributes":null,"exemplars":null},
            {"asDouble":"-Infinity","timeUnixNano":1544712660300000000}]}},
           {"name":"s","sum":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_CUMULATIVE","isMonotonic":true,"dataPoints":[
            {"asInt":7,"startTimeUnixNano":"1544712600000000000","timeUnixNano":"1544712660300000000"}]}},
           {"name":"h","histogram":{"aggregationTemporality":1,"dataPoints":[
            {"count":"1","sum":"NaN","bucketCounts":null,"explicitBounds":null,"timeUnixNano":"1544712660300000000"}]}}"#,
    );
    let request = decode_json(&request).unwrap();
    let mapped = map(&request, &mut Streams::new(), GOLDEN_MS, &options());
    let kept: Vec<&MappedData> = mapped.points.iter().map(|p| &p.data).collect();
    assert_eq!(kept, [&MappedData::Value(1.5), &MappedData::Value(7.0)]);
    let rules: Vec<(&str, usize, &str)> = mapped
        .rejected
        .iter()
        .map(|r| (r.metric.as_str(), r.point, r.rule.as_str()))
        .collect();
    assert_eq!(
        rules,
        [
            ("g", 0, "as_double: must be a number (got NaN)"),
            ("g", 2, "as_double: must be finite (got -inf)"),
            ("h", 0, "sum: must be a number (got NaN)"),
        ]
    );
    // Enum numbers are what OTLP JSON writes; a name outside the enum is refused.
    let unknown = one_metric(r#"{"name":"s","sum":{"aggregationTemporality":"SOMETIMES"}}"#);
    assert_eq!(
        decode_json(&unknown).unwrap_err().kind,
        DecodeErrorKind::Json
    );
    // snake_case keys are unknown keys in OTLP JSON: ignored, so this request is empty.
    let snake = br#"{"resource_metrics":[{"scope_metrics":[]}]}"#;
    assert!(decode_json(snake).unwrap().resource_metrics.is_empty());
    assert!(
        decode_json(br#"{"resourceMetrics":null}"#)
            .unwrap()
            .resource_metrics
            .is_empty()
    );
}
