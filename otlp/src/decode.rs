//! Bounded decoding: OTLP request bodies (protobuf or OTLP JSON, gzip or not) into the
//! generated `ExportMetricsServiceRequest`, refusing what breaks a limit of [`crate::limits`]
//! with the field and the rule.

use std::io::Read;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::metrics::v1::{Exemplar, metric::Data};
use prost::Message;

use crate::attributes::RenderError;
use crate::error::{DecodeError, DecodeErrorKind, Result};
use crate::limits::{
    MAX_ANY_VALUE_DEPTH, MAX_ATTRIBUTE_KEY_BYTES, MAX_ATTRIBUTE_VALUE_BYTES, MAX_ATTRIBUTES,
    MAX_BODY_BYTES, MAX_BUCKETS, MAX_METRICS, MAX_NAME_BYTES, MAX_POINTS, MAX_RESOURCE_METRICS,
    MAX_SCOPE_METRICS, MAX_UNIT_BYTES,
};

fn too_large(field: &str, max: usize, got: &str) -> DecodeError {
    DecodeError::new(
        DecodeErrorKind::TooLarge,
        field,
        format!("must be at most {max} bytes (got {got})"),
    )
}

fn check_body(bytes: &[u8]) -> Result<()> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(too_large("body", MAX_BODY_BYTES, &bytes.len().to_string()));
    }
    Ok(())
}

/// Decodes a protobuf `ExportMetricsServiceRequest` (the body of OTLP/gRPC and of OTLP/HTTP
/// with `Content-Type: application/x-protobuf`), then checks it with [`check_limits`].
///
/// # Errors
/// A body over [`MAX_BODY_BYTES`], bytes that are not the message (prost also refuses
/// messages nested more than 100 deep), or a broken limit.
pub fn decode_protobuf(bytes: &[u8]) -> Result<ExportMetricsServiceRequest> {
    check_body(bytes)?;
    let request = ExportMetricsServiceRequest::decode(bytes).map_err(|e| {
        DecodeError::new(
            DecodeErrorKind::Protobuf,
            "body",
            format!("must be a protobuf ExportMetricsServiceRequest ({e})"),
        )
    })?;
    check_limits(&request)?;
    Ok(request)
}

/// Decodes an OTLP JSON `ExportMetricsServiceRequest` (OTLP/HTTP with
/// `Content-Type: application/json`: lowerCamelCase keys, 64-bit integers as strings or
/// numbers, enums as integers, trace and span ids as hex, bytes as base64, unknown keys
/// ignored), then checks it with [`check_limits`]. It reads the metrics messages over
/// mirrors of its own (`json.rs` says why) and attribute values with `opentelemetry-proto`'s
/// serde.
///
/// # Errors
/// A body over [`MAX_BODY_BYTES`], text that is not the message (with its line and column;
/// serde_json also refuses JSON nested more than 128 deep), a `oneof` given twice, or a broken
/// limit.
pub fn decode_json(bytes: &[u8]) -> Result<ExportMetricsServiceRequest> {
    check_body(bytes)?;
    let json: crate::json::Request = serde_json::from_slice(bytes).map_err(|e| {
        DecodeError::new(
            DecodeErrorKind::Json,
            "body",
            format!("must be an OTLP JSON ExportMetricsServiceRequest ({e})"),
        )
    })?;
    let request = json.into_message()?;
    check_limits(&request)?;
    Ok(request)
}

/// Undoes gzip (`Content-Encoding: gzip`; concatenated members are read as one stream),
/// producing at most `max` bytes: a body that inflates further is refused as soon as it
/// passes `max`, never inflated whole (a gzip bomb costs at most `max + 1` bytes of memory).
///
/// # Errors
/// Not gzip, or more than `max` bytes once decompressed.
pub fn gunzip_bounded(bytes: &[u8], max: usize) -> Result<Vec<u8>> {
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| {
            DecodeError::new(DecodeErrorKind::Gzip, "body", format!("must be gzip ({e})"))
        })?;
    if out.len() > max {
        return Err(too_large(
            "body (decompressed)",
            max,
            &format!("more than {max}"),
        ));
    }
    Ok(out)
}

fn limit(field: String, rule: String) -> DecodeError {
    DecodeError::new(DecodeErrorKind::Limit, field, rule)
}

fn at_most(field: &dyn Fn() -> String, max: usize, got: usize, what: &str) -> Result<()> {
    if got > max {
        return Err(limit(
            field(),
            format!("must have at most {max} {what} (got {got})"),
        ));
    }
    Ok(())
}

fn bytes_at_most(field: &dyn Fn() -> String, max: usize, got: usize) -> Result<()> {
    if got > max {
        return Err(limit(
            field(),
            format!("must be at most {max} bytes (got {got})"),
        ));
    }
    Ok(())
}

/// The rule and sub-path of an attribute value that breaks a limit.
type ValueProblem = (String, String);

fn check_value(value: Option<&AnyValue>, depth: usize) -> std::result::Result<(), ValueProblem> {
    if depth > MAX_ANY_VALUE_DEPTH {
        return Err((String::new(), RenderError::TooDeep.rule()));
    }
    let bytes_rule =
        |n: usize| format!("must be at most {MAX_ATTRIBUTE_VALUE_BYTES} bytes (got {n})");
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) if s.len() > MAX_ATTRIBUTE_VALUE_BYTES => {
            Err((".string_value".into(), bytes_rule(s.len())))
        }
        Some(Value::BytesValue(b)) if b.len() > MAX_ATTRIBUTE_VALUE_BYTES => {
            Err((".bytes_value".into(), bytes_rule(b.len())))
        }
        Some(Value::ArrayValue(array)) => {
            if array.values.len() > MAX_ATTRIBUTES {
                return Err((
                    ".array_value.values".into(),
                    format!(
                        "must have at most {MAX_ATTRIBUTES} entries (got {})",
                        array.values.len()
                    ),
                ));
            }
            for (i, v) in array.values.iter().enumerate() {
                check_value(Some(v), depth + 1)
                    .map_err(|(path, rule)| (format!(".array_value.values[{i}]{path}"), rule))?;
            }
            Ok(())
        }
        Some(Value::KvlistValue(list)) => {
            if list.values.len() > MAX_ATTRIBUTES {
                return Err((
                    ".kvlist_value.values".into(),
                    format!(
                        "must have at most {MAX_ATTRIBUTES} entries (got {})",
                        list.values.len()
                    ),
                ));
            }
            for (i, kv) in list.values.iter().enumerate() {
                if kv.key.len() > MAX_ATTRIBUTE_KEY_BYTES {
                    return Err((
                        format!(".kvlist_value.values[{i}].key"),
                        format!(
                            "must be at most {MAX_ATTRIBUTE_KEY_BYTES} bytes (got {})",
                            kv.key.len()
                        ),
                    ));
                }
                check_value(kv.value.as_ref(), depth + 1).map_err(|(path, rule)| {
                    (format!(".kvlist_value.values[{i}].value{path}"), rule)
                })?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn check_attributes(field: &dyn Fn() -> String, attributes: &[KeyValue]) -> Result<()> {
    at_most(field, MAX_ATTRIBUTES, attributes.len(), "entries")?;
    for (i, kv) in attributes.iter().enumerate() {
        bytes_at_most(
            &|| format!("{}[{i}].key", field()),
            MAX_ATTRIBUTE_KEY_BYTES,
            kv.key.len(),
        )?;
        check_value(kv.value.as_ref(), 1)
            .map_err(|(path, rule)| limit(format!("{}[{i}].value{path}", field()), rule))?;
    }
    Ok(())
}

fn check_exemplars(field: &dyn Fn() -> String, exemplars: &[Exemplar]) -> Result<()> {
    at_most(field, MAX_BUCKETS, exemplars.len(), "entries")?;
    for (i, e) in exemplars.iter().enumerate() {
        check_attributes(
            &|| format!("{}[{i}].filtered_attributes", field()),
            &e.filtered_attributes,
        )?;
    }
    Ok(())
}

/// Running totals against the per-request limits.
#[derive(Default)]
struct Totals {
    scopes: usize,
    metrics: usize,
    points: usize,
}

impl Totals {
    fn add(
        running: &mut usize,
        n: usize,
        max: usize,
        field: &dyn Fn() -> String,
        what: &str,
    ) -> Result<()> {
        *running = running.saturating_add(n);
        if *running > max {
            return Err(limit(
                field(),
                format!("the request must have at most {max} {what} in all (got more)"),
            ));
        }
        Ok(())
    }
}

/// Checks a decoded request against the structural limits of [`crate::limits`]: counts of
/// resources, scopes, metrics, points, attributes and buckets, the sizes of names, units,
/// keys and attribute values, and the nesting depth of attribute values. The decoders call it;
/// it is public for a caller that decoded a request some other way.
///
/// # Errors
/// The first limit broken, with the path of the field.
pub fn check_limits(request: &ExportMetricsServiceRequest) -> Result<()> {
    at_most(
        &|| "resource_metrics".into(),
        MAX_RESOURCE_METRICS,
        request.resource_metrics.len(),
        "entries",
    )?;
    let mut totals = Totals::default();
    for (r, rm) in request.resource_metrics.iter().enumerate() {
        let resource_field = || format!("resource_metrics[{r}]");
        if let Some(resource) = &rm.resource {
            check_attributes(
                &|| format!("{}.resource.attributes", resource_field()),
                &resource.attributes,
            )?;
        }
        Totals::add(
            &mut totals.scopes,
            rm.scope_metrics.len(),
            MAX_SCOPE_METRICS,
            &|| format!("{}.scope_metrics", resource_field()),
            "scope_metrics",
        )?;
        for (s, sm) in rm.scope_metrics.iter().enumerate() {
            let scope_field = || format!("{}.scope_metrics[{s}]", resource_field());
            if let Some(scope) = &sm.scope {
                bytes_at_most(
                    &|| format!("{}.scope.name", scope_field()),
                    MAX_NAME_BYTES,
                    scope.name.len(),
                )?;
                bytes_at_most(
                    &|| format!("{}.scope.version", scope_field()),
                    MAX_NAME_BYTES,
                    scope.version.len(),
                )?;
                check_attributes(
                    &|| format!("{}.scope.attributes", scope_field()),
                    &scope.attributes,
                )?;
            }
            Totals::add(
                &mut totals.metrics,
                sm.metrics.len(),
                MAX_METRICS,
                &|| format!("{}.metrics", scope_field()),
                "metrics",
            )?;
            for (m, metric) in sm.metrics.iter().enumerate() {
                let metric_field = || format!("{}.metrics[{m}]", scope_field());
                bytes_at_most(
                    &|| format!("{}.name", metric_field()),
                    MAX_NAME_BYTES,
                    metric.name.len(),
                )?;
                bytes_at_most(
                    &|| format!("{}.unit", metric_field()),
                    MAX_UNIT_BYTES,
                    metric.unit.len(),
                )?;
                check_attributes(&|| format!("{}.metadata", metric_field()), &metric.metadata)?;
                check_data(&metric_field, metric.data.as_ref(), &mut totals)?;
            }
        }
    }
    Ok(())
}

fn check_data(
    metric_field: &dyn Fn() -> String,
    data: Option<&Data>,
    totals: &mut Totals,
) -> Result<()> {
    let Some(data) = data else {
        return Ok(());
    };
    let (kind, n) = match data {
        Data::Gauge(g) => ("gauge", g.data_points.len()),
        Data::Sum(s) => ("sum", s.data_points.len()),
        Data::Histogram(h) => ("histogram", h.data_points.len()),
        Data::ExponentialHistogram(h) => ("exponential_histogram", h.data_points.len()),
        Data::Summary(s) => ("summary", s.data_points.len()),
    };
    let points_field = || format!("{}.{kind}.data_points", metric_field());
    Totals::add(
        &mut totals.points,
        n,
        MAX_POINTS,
        &points_field,
        "data points",
    )?;
    let point = |i: usize| format!("{}[{i}]", points_field());
    let buckets = |i: usize, name: &str, len: usize, max: usize| {
        at_most(&|| format!("{}.{name}", point(i)), max, len, "entries")
    };
    let common = |i: usize, attributes: &[KeyValue], exemplars: &[Exemplar]| {
        check_attributes(&|| format!("{}.attributes", point(i)), attributes)?;
        check_exemplars(&|| format!("{}.exemplars", point(i)), exemplars)
    };
    match data {
        Data::Gauge(g) => {
            for (i, p) in g.data_points.iter().enumerate() {
                common(i, &p.attributes, &p.exemplars)?;
            }
        }
        Data::Sum(s) => {
            for (i, p) in s.data_points.iter().enumerate() {
                common(i, &p.attributes, &p.exemplars)?;
            }
        }
        Data::Histogram(h) => {
            for (i, p) in h.data_points.iter().enumerate() {
                common(i, &p.attributes, &p.exemplars)?;
                buckets(i, "explicit_bounds", p.explicit_bounds.len(), MAX_BUCKETS)?;
                buckets(i, "bucket_counts", p.bucket_counts.len(), MAX_BUCKETS + 1)?;
            }
        }
        Data::ExponentialHistogram(h) => {
            for (i, p) in h.data_points.iter().enumerate() {
                common(i, &p.attributes, &p.exemplars)?;
                for (name, range) in [("positive", &p.positive), ("negative", &p.negative)] {
                    let len = range.as_ref().map_or(0, |b| b.bucket_counts.len());
                    buckets(i, &format!("{name}.bucket_counts"), len, MAX_BUCKETS)?;
                }
            }
        }
        Data::Summary(s) => {
            for (i, p) in s.data_points.iter().enumerate() {
                check_attributes(&|| format!("{}.attributes", point(i)), &p.attributes)?;
                buckets(i, "quantile_values", p.quantile_values.len(), MAX_BUCKETS)?;
            }
        }
    }
    Ok(())
}
