//! Hostile input: each refused with an error that names the field and the rule, without
//! recursing or allocating beyond the limits.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use prost::Message;
use thermostat_otlp::limits::{MAX_ANY_VALUE_DEPTH, MAX_ATTRIBUTES, MAX_BODY_BYTES, MAX_POINTS};
use thermostat_otlp::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use thermostat_otlp::proto::common::v1::{AnyValue, ArrayValue, KeyValue, any_value::Value};
use thermostat_otlp::proto::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric::Data,
};
use thermostat_otlp::proto::resource::v1::Resource;
use thermostat_otlp::{DecodeErrorKind, decode_json, decode_protobuf, gunzip_bounded};

fn nested(depth: usize) -> AnyValue {
    let mut value = AnyValue {
        value: Some(Value::IntValue(1)),
    };
    for _ in 1..depth {
        value = AnyValue {
            value: Some(Value::ArrayValue(ArrayValue {
                values: vec![value],
            })),
        };
    }
    value
}

fn with_resource_attribute(value: AnyValue) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "k".into(),
                    value: Some(value),
                    key_strindex: 0,
                }],
                ..Default::default()
            }),
            ..Default::default()
        }],
    }
}

fn nested_json(depth: usize) -> Vec<u8> {
    let value = format!(
        r#"{}{{"intValue":"1"}}{}"#,
        r#"{"arrayValue":{"values":["#.repeat(depth - 1),
        "]}}".repeat(depth - 1)
    );
    format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"k","value":{value}}}]}}}}]}}"#
    )
    .into_bytes()
}

#[test]
fn attribute_values_nested_too_deep_are_refused_by_thermostats_rule() {
    let ok = with_resource_attribute(nested(MAX_ANY_VALUE_DEPTH)).encode_to_vec();
    assert!(decode_protobuf(&ok).is_ok());
    assert!(decode_json(&nested_json(MAX_ANY_VALUE_DEPTH)).is_ok());

    let deep = with_resource_attribute(nested(MAX_ANY_VALUE_DEPTH + 1)).encode_to_vec();
    let path = format!(
        "resource_metrics[0].resource.attributes[0].value{}",
        ".array_value.values[0]".repeat(MAX_ANY_VALUE_DEPTH)
    );
    let rule = "must be nested at most 8 deep (array_value and kvlist_value inside each other)";
    for error in [
        decode_protobuf(&deep).unwrap_err(),
        decode_json(&nested_json(MAX_ANY_VALUE_DEPTH + 1)).unwrap_err(),
    ] {
        assert_eq!(error.kind, DecodeErrorKind::Limit);
        assert_eq!(error.field, path);
        assert_eq!(error.rule, rule);
    }
}

#[test]
fn nesting_beyond_the_decoders_own_limits_is_refused_by_them() {
    // prost: 100 nested messages; serde_json: 128 nested arrays and objects.
    let error = decode_protobuf(&with_resource_attribute(nested(60)).encode_to_vec()).unwrap_err();
    assert_eq!(error.kind, DecodeErrorKind::Protobuf);
    assert!(error.rule.contains("recursion limit reached"), "{error}");
    let error = decode_json(&nested_json(60)).unwrap_err();
    assert_eq!(error.kind, DecodeErrorKind::Json);
    assert!(error.rule.contains("recursion limit exceeded"), "{error}");
    // Far deeper still, nothing overflows the stack.
    assert!(decode_json(&nested_json(100_000)).is_err());
    let mut deep = Vec::new();
    for _ in 0..100_000 {
        // field 5 (array_value), length-delimited, claiming the rest of the buffer
        deep.extend_from_slice(&[0x2a, 0x80, 0x80, 0x04]);
    }
    assert!(decode_protobuf(&deep).is_err());
}

#[test]
fn huge_attribute_values_are_refused() {
    let huge = AnyValue {
        value: Some(Value::StringValue("x".repeat(100 * 1024))),
    };
    let error = decode_protobuf(&with_resource_attribute(huge).encode_to_vec()).unwrap_err();
    assert_eq!(error.kind, DecodeErrorKind::Limit);
    assert_eq!(
        error.to_string(),
        "resource_metrics[0].resource.attributes[0].value.string_value: must be at most 16384 bytes (got 102400)"
    );
    let many: Vec<AnyValue> = (0..=MAX_ATTRIBUTES as i64)
        .map(|i| AnyValue {
            value: Some(Value::IntValue(i)),
        })
        .collect();
    let wide = AnyValue {
        value: Some(Value::ArrayValue(ArrayValue { values: many })),
    };
    let error = decode_protobuf(&with_resource_attribute(wide).encode_to_vec()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "resource_metrics[0].resource.attributes[0].value.array_value.values: must have at most 256 entries (got 257)"
    );
}

#[test]
fn too_many_points_are_refused() {
    let point = NumberDataPoint {
        time_unix_nano: 1,
        ..Default::default()
    };
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "g".into(),
                    data: Some(Data::Gauge(Gauge {
                        data_points: vec![point; MAX_POINTS + 1],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let error = decode_protobuf(&request.encode_to_vec()).unwrap_err();
    assert_eq!(error.kind, DecodeErrorKind::Limit);
    assert_eq!(
        error.to_string(),
        "resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points: the request must have at most 65536 data points in all (got more)"
    );
}

#[test]
fn bodies_over_the_limit_and_garbage_are_refused() {
    let error = decode_protobuf(&vec![0; MAX_BODY_BYTES + 1]).unwrap_err();
    assert_eq!(error.kind, DecodeErrorKind::TooLarge);
    assert_eq!(
        error.to_string(),
        "body: must be at most 16777216 bytes (got 16777217)"
    );
    assert_eq!(
        decode_json(&vec![b' '; MAX_BODY_BYTES + 1])
            .unwrap_err()
            .kind,
        DecodeErrorKind::TooLarge
    );
    let error = decode_protobuf(&[0xff, 0xff, 0xff]).unwrap_err();
    assert_eq!(error.kind, DecodeErrorKind::Protobuf);
    assert!(
        error
            .to_string()
            .starts_with("body: must be a protobuf ExportMetricsServiceRequest ("),
        "{error}"
    );
    let error = decode_json(b"{\"resourceMetrics\": [").unwrap_err();
    assert!(error.rule.contains("line 1 column"), "{error}");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).expect("writes to a Vec");
    encoder.finish().expect("writes to a Vec")
}

#[test]
fn a_gzip_bomb_is_refused_not_inflated() {
    // 17 MiB of zeros compress to a few KiB.
    let bomb = gzip(&vec![0; MAX_BODY_BYTES + 1024 * 1024]);
    assert!(bomb.len() < 100 * 1024, "{}", bomb.len());
    let error = gunzip_bounded(&bomb, MAX_BODY_BYTES).unwrap_err();
    assert_eq!(error.kind, DecodeErrorKind::TooLarge);
    assert_eq!(
        error.to_string(),
        "body (decompressed): must be at most 16777216 bytes (got more than 16777216)"
    );
    // Two members that are small alone but too large together.
    let half = gzip(&vec![0; 1000]);
    let two = [half.clone(), half].concat();
    assert_eq!(gunzip_bounded(&two, 2000).unwrap().len(), 2000);
    assert_eq!(
        gunzip_bounded(&two, 1999).unwrap_err().kind,
        DecodeErrorKind::TooLarge
    );
    // Not gzip.
    let error = gunzip_bounded(b"plain text, not gzip", MAX_BODY_BYTES).unwrap_err();
    assert_eq!(error.kind, DecodeErrorKind::Gzip);
    assert!(
        error.to_string().starts_with("body: must be gzip ("),
        "{error}"
    );
    // A truncated member.
    let whole = gzip(b"hello world");
    assert_eq!(
        gunzip_bounded(&whole[..whole.len() - 4], 100)
            .unwrap_err()
            .kind,
        DecodeErrorKind::Gzip
    );
    assert_eq!(gunzip_bounded(&whole, 100).unwrap(), b"hello world");
}
