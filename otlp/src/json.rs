//! OTLP JSON, read over types of our own that mirror the metrics messages.
//!
//! `opentelemetry-proto`'s serde reads the OTLP JSON rules (lowerCamelCase, 64-bit integers
//! as strings, hex trace ids, base64 bytes) but flattens the `oneof`s of `Metric`,
//! `NumberDataPoint` and `Exemplar` into `Option`s, and serde turns any error inside a
//! flattened `Option` into `None`: a metric whose data holds one malformed field (a histogram
//! `"sum": "NaN"`, a `"count": "x"`) would vanish from the request without a word, and a
//! point whose `asDouble` is `"NaN"` would lose its value. The mirrors here read each `oneof`
//! member as a field of its own, so every malformed field refuses the request with its line
//! and column, and they also take what protobuf's JSON mapping allows and the crate does not:
//! `"NaN"`, `"Infinity"`, `"-Infinity"` and numbers as strings for doubles, `null` for any
//! field (its default), enum names for the temporality. Attribute values (`KeyValue`,
//! `AnyValue`) are the crate's: their serde is sound.

use std::fmt;
use std::marker::PhantomData;

use opentelemetry_proto::tonic::collector::metrics::v1 as collector;
use opentelemetry_proto::tonic::common::v1 as common;
use opentelemetry_proto::tonic::metrics::v1 as proto;
use opentelemetry_proto::tonic::resource::v1 as resource;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::error::{DecodeError, DecodeErrorKind, Result};

// === field readers ===

/// A field that may be `null`: its default then.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An integer given as a JSON number or a string of one (protobuf's JSON mapping allows both
/// for every integer type); `null` is 0.
struct Int<T>(T);

impl<'de, T> Deserialize<'de> for Int<T>
where
    T: Default + TryFrom<i64> + TryFrom<u64> + std::str::FromStr,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<T> Visitor<'_> for V<T>
        where
            T: Default + TryFrom<i64> + TryFrom<u64> + std::str::FromStr,
        {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer, or a string holding one")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
                T::try_from(v).map_err(|_| E::custom(format!("integer {v} out of range")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
                T::try_from(v).map_err(|_| E::custom(format!("integer {v} out of range")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
                // 1e3 and 5.0 are integers in protobuf's JSON mapping.
                if v.fract() == 0.0 && v.abs() < 1.8e19 {
                    if v < 0.0 {
                        return self.visit_i64(v as i64);
                    }
                    return self.visit_u64(v as u64);
                }
                Err(E::custom(format!("{v} is not an integer")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
                v.parse()
                    .map_err(|_| E::custom(format!("{v:?} is not an integer in range")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<T, E> {
                Ok(T::default())
            }
        }
        d.deserialize_any(V(PhantomData)).map(Int)
    }
}

fn int<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + TryFrom<i64> + TryFrom<u64> + std::str::FromStr,
{
    Int::<T>::deserialize(d).map(|i| i.0)
}

fn ints<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Default + TryFrom<i64> + TryFrom<u64> + std::str::FromStr,
{
    let v: Option<Vec<Int<T>>> = Option::deserialize(d)?;
    Ok(v.unwrap_or_default().into_iter().map(|i| i.0).collect())
}

/// A double given as a JSON number, or a string: `"NaN"`, `"Infinity"`, `"-Infinity"` or a
/// number. `None` for `null`.
struct Double(Option<f64>);

impl<'de> Deserialize<'de> for Double {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Option<f64>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a number, or \"NaN\", \"Infinity\", \"-Infinity\" or a number as a string",
                )
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<f64>, E> {
                Ok(Some(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<f64>, E> {
                Ok(Some(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<f64>, E> {
                Ok(Some(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<f64>, E> {
                match v {
                    "NaN" => Ok(Some(f64::NAN)),
                    "Infinity" => Ok(Some(f64::INFINITY)),
                    "-Infinity" => Ok(Some(f64::NEG_INFINITY)),
                    _ => v
                        .parse()
                        .map(Some)
                        .map_err(|_| E::custom(format!("{v:?} is not a number"))),
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<Option<f64>, E> {
                Ok(None)
            }
        }
        d.deserialize_any(V).map(Double)
    }
}

fn double<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Double::deserialize(d)?.0.unwrap_or_default())
}

fn double_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(Double::deserialize(d)?.0)
}

fn doubles<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    let v: Option<Vec<Double>> = Option::deserialize(d)?;
    Ok(v.unwrap_or_default()
        .into_iter()
        .map(|x| x.0.unwrap_or_default())
        .collect())
}

/// A trace or span id: hex, as OTLP JSON writes them (not base64).
fn hex<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    let text = text.unwrap_or_default();
    if !text.len().is_multiple_of(2) {
        return Err(de::Error::custom(
            "a hex id must have an even number of digits",
        ));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| de::Error::custom(format!("{text:?} is not hex")))
        })
        .collect()
}

/// The aggregation temporality: its number (what OTLP JSON writes) or its name.
fn temporality<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Name(String),
        Number(Int<i32>),
    }
    match Option::<Either>::deserialize(d)? {
        None => Ok(0),
        Some(Either::Number(n)) => Ok(n.0),
        Some(Either::Name(name)) => proto::AggregationTemporality::from_str_name(&name)
            .map(|t| t as i32)
            .or_else(|| name.parse().ok())
            .ok_or_else(|| {
                de::Error::custom(format!("{name:?} is not an aggregation temporality"))
            }),
    }
}

// === the mirrors ===

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Request {
    #[serde(default, deserialize_with = "nullable")]
    resource_metrics: Vec<ResourceMetrics>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Resource {
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<common::KeyValue>,
    #[serde(default, deserialize_with = "int")]
    dropped_attributes_count: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Scope {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    version: String,
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<common::KeyValue>,
    #[serde(default, deserialize_with = "int")]
    dropped_attributes_count: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceMetrics {
    #[serde(default)]
    resource: Option<Resource>,
    #[serde(default, deserialize_with = "nullable")]
    scope_metrics: Vec<ScopeMetrics>,
    #[serde(default, deserialize_with = "nullable")]
    schema_url: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScopeMetrics {
    #[serde(default)]
    scope: Option<Scope>,
    #[serde(default, deserialize_with = "nullable")]
    metrics: Vec<Metric>,
    #[serde(default, deserialize_with = "nullable")]
    schema_url: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metric {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    description: String,
    #[serde(default, deserialize_with = "nullable")]
    unit: String,
    #[serde(default, deserialize_with = "nullable")]
    metadata: Vec<common::KeyValue>,
    #[serde(default)]
    gauge: Option<Gauge>,
    #[serde(default)]
    sum: Option<Sum>,
    #[serde(default)]
    histogram: Option<Histogram>,
    #[serde(default)]
    exponential_histogram: Option<ExponentialHistogram>,
    #[serde(default)]
    summary: Option<Summary>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Gauge {
    #[serde(default, deserialize_with = "nullable")]
    data_points: Vec<NumberDataPoint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sum {
    #[serde(default, deserialize_with = "nullable")]
    data_points: Vec<NumberDataPoint>,
    #[serde(default, deserialize_with = "temporality")]
    aggregation_temporality: i32,
    #[serde(default, deserialize_with = "nullable")]
    is_monotonic: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Histogram {
    #[serde(default, deserialize_with = "nullable")]
    data_points: Vec<HistogramDataPoint>,
    #[serde(default, deserialize_with = "temporality")]
    aggregation_temporality: i32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExponentialHistogram {
    #[serde(default, deserialize_with = "nullable")]
    data_points: Vec<ExponentialHistogramDataPoint>,
    #[serde(default, deserialize_with = "temporality")]
    aggregation_temporality: i32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    #[serde(default, deserialize_with = "nullable")]
    data_points: Vec<SummaryDataPoint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Exemplar {
    #[serde(default, deserialize_with = "nullable")]
    filtered_attributes: Vec<common::KeyValue>,
    #[serde(default, deserialize_with = "int")]
    time_unix_nano: u64,
    #[serde(default, deserialize_with = "hex")]
    span_id: Vec<u8>,
    #[serde(default, deserialize_with = "hex")]
    trace_id: Vec<u8>,
    #[serde(default, deserialize_with = "double_opt")]
    as_double: Option<f64>,
    #[serde(default, deserialize_with = "int_opt")]
    as_int: Option<i64>,
}

fn int_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(Option::<Int<i64>>::deserialize(d)?.map(|i| i.0))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NumberDataPoint {
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<common::KeyValue>,
    #[serde(default, deserialize_with = "int")]
    start_time_unix_nano: u64,
    #[serde(default, deserialize_with = "int")]
    time_unix_nano: u64,
    #[serde(default, deserialize_with = "nullable")]
    exemplars: Vec<Exemplar>,
    #[serde(default, deserialize_with = "int")]
    flags: u32,
    #[serde(default, deserialize_with = "double_opt")]
    as_double: Option<f64>,
    #[serde(default, deserialize_with = "int_opt")]
    as_int: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistogramDataPoint {
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<common::KeyValue>,
    #[serde(default, deserialize_with = "int")]
    start_time_unix_nano: u64,
    #[serde(default, deserialize_with = "int")]
    time_unix_nano: u64,
    #[serde(default, deserialize_with = "int")]
    count: u64,
    #[serde(default, deserialize_with = "double_opt")]
    sum: Option<f64>,
    #[serde(default, deserialize_with = "ints")]
    bucket_counts: Vec<u64>,
    #[serde(default, deserialize_with = "doubles")]
    explicit_bounds: Vec<f64>,
    #[serde(default, deserialize_with = "nullable")]
    exemplars: Vec<Exemplar>,
    #[serde(default, deserialize_with = "int")]
    flags: u32,
    #[serde(default, deserialize_with = "double_opt")]
    min: Option<f64>,
    #[serde(default, deserialize_with = "double_opt")]
    max: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Buckets {
    #[serde(default, deserialize_with = "int")]
    offset: i32,
    #[serde(default, deserialize_with = "ints")]
    bucket_counts: Vec<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExponentialHistogramDataPoint {
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<common::KeyValue>,
    #[serde(default, deserialize_with = "int")]
    start_time_unix_nano: u64,
    #[serde(default, deserialize_with = "int")]
    time_unix_nano: u64,
    #[serde(default, deserialize_with = "int")]
    count: u64,
    #[serde(default, deserialize_with = "double_opt")]
    sum: Option<f64>,
    #[serde(default, deserialize_with = "int")]
    scale: i32,
    #[serde(default, deserialize_with = "int")]
    zero_count: u64,
    #[serde(default)]
    positive: Option<Buckets>,
    #[serde(default)]
    negative: Option<Buckets>,
    #[serde(default, deserialize_with = "int")]
    flags: u32,
    #[serde(default, deserialize_with = "nullable")]
    exemplars: Vec<Exemplar>,
    #[serde(default, deserialize_with = "double_opt")]
    min: Option<f64>,
    #[serde(default, deserialize_with = "double_opt")]
    max: Option<f64>,
    #[serde(default, deserialize_with = "double")]
    zero_threshold: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ValueAtQuantile {
    #[serde(default, deserialize_with = "double")]
    quantile: f64,
    #[serde(default, deserialize_with = "double")]
    value: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SummaryDataPoint {
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<common::KeyValue>,
    #[serde(default, deserialize_with = "int")]
    start_time_unix_nano: u64,
    #[serde(default, deserialize_with = "int")]
    time_unix_nano: u64,
    #[serde(default, deserialize_with = "int")]
    count: u64,
    #[serde(default, deserialize_with = "double")]
    sum: f64,
    #[serde(default, deserialize_with = "nullable")]
    quantile_values: Vec<ValueAtQuantile>,
    #[serde(default, deserialize_with = "int")]
    flags: u32,
}

// === into the generated messages ===

fn oneof_error(field: String, rule: String) -> DecodeError {
    DecodeError::new(DecodeErrorKind::Json, field, rule)
}

fn number_value(
    field: &dyn Fn() -> String,
    as_double: Option<f64>,
    as_int: Option<i64>,
) -> Result<Option<proto::number_data_point::Value>> {
    use proto::number_data_point::Value;
    match (as_double, as_int) {
        (Some(_), Some(_)) => Err(oneof_error(
            field(),
            "must have one of asDouble and asInt, not both".into(),
        )),
        (Some(d), None) => Ok(Some(Value::AsDouble(d))),
        (None, Some(i)) => Ok(Some(Value::AsInt(i))),
        (None, None) => Ok(None),
    }
}

fn exemplars(field: &dyn Fn() -> String, list: Vec<Exemplar>) -> Result<Vec<proto::Exemplar>> {
    use proto::exemplar::Value;
    list.into_iter()
        .enumerate()
        .map(|(i, e)| {
            let value = match (e.as_double, e.as_int) {
                (Some(_), Some(_)) => {
                    return Err(oneof_error(
                        format!("{}[{i}]", field()),
                        "must have one of asDouble and asInt, not both".into(),
                    ));
                }
                (Some(d), None) => Some(Value::AsDouble(d)),
                (None, Some(n)) => Some(Value::AsInt(n)),
                (None, None) => None,
            };
            Ok(proto::Exemplar {
                filtered_attributes: e.filtered_attributes,
                time_unix_nano: e.time_unix_nano,
                span_id: e.span_id,
                trace_id: e.trace_id,
                value,
            })
        })
        .collect()
}

fn number_points(
    field: &dyn Fn() -> String,
    points: Vec<NumberDataPoint>,
) -> Result<Vec<proto::NumberDataPoint>> {
    points
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let at = || format!("{}.dataPoints[{i}]", field());
            Ok(proto::NumberDataPoint {
                attributes: p.attributes,
                start_time_unix_nano: p.start_time_unix_nano,
                time_unix_nano: p.time_unix_nano,
                exemplars: exemplars(&|| format!("{}.exemplars", at()), p.exemplars)?,
                flags: p.flags,
                value: number_value(&at, p.as_double, p.as_int)?,
            })
        })
        .collect()
}

fn buckets(b: Option<Buckets>) -> Option<proto::exponential_histogram_data_point::Buckets> {
    b.map(|b| proto::exponential_histogram_data_point::Buckets {
        offset: b.offset,
        bucket_counts: b.bucket_counts,
    })
}

fn metric(field: &dyn Fn() -> String, m: Metric) -> Result<proto::Metric> {
    use proto::metric::Data;
    let present = [
        m.gauge.is_some(),
        m.sum.is_some(),
        m.histogram.is_some(),
        m.exponential_histogram.is_some(),
        m.summary.is_some(),
    ]
    .into_iter()
    .filter(|&p| p)
    .count();
    if present > 1 {
        return Err(oneof_error(
            field(),
            format!(
                "must have at most one of gauge, sum, histogram, exponentialHistogram and summary (got {present})"
            ),
        ));
    }
    let data = if let Some(g) = m.gauge {
        Some(Data::Gauge(proto::Gauge {
            data_points: number_points(&|| format!("{}.gauge", field()), g.data_points)?,
        }))
    } else if let Some(s) = m.sum {
        Some(Data::Sum(proto::Sum {
            data_points: number_points(&|| format!("{}.sum", field()), s.data_points)?,
            aggregation_temporality: s.aggregation_temporality,
            is_monotonic: s.is_monotonic,
        }))
    } else if let Some(h) = m.histogram {
        let mut data_points = Vec::with_capacity(h.data_points.len());
        for (i, p) in h.data_points.into_iter().enumerate() {
            let at = || format!("{}.histogram.dataPoints[{i}].exemplars", field());
            data_points.push(proto::HistogramDataPoint {
                attributes: p.attributes,
                start_time_unix_nano: p.start_time_unix_nano,
                time_unix_nano: p.time_unix_nano,
                count: p.count,
                sum: p.sum,
                bucket_counts: p.bucket_counts,
                explicit_bounds: p.explicit_bounds,
                exemplars: exemplars(&at, p.exemplars)?,
                flags: p.flags,
                min: p.min,
                max: p.max,
            });
        }
        Some(Data::Histogram(proto::Histogram {
            data_points,
            aggregation_temporality: h.aggregation_temporality,
        }))
    } else if let Some(h) = m.exponential_histogram {
        let mut data_points = Vec::with_capacity(h.data_points.len());
        for (i, p) in h.data_points.into_iter().enumerate() {
            let at = || format!("{}.exponentialHistogram.dataPoints[{i}].exemplars", field());
            data_points.push(proto::ExponentialHistogramDataPoint {
                attributes: p.attributes,
                start_time_unix_nano: p.start_time_unix_nano,
                time_unix_nano: p.time_unix_nano,
                count: p.count,
                sum: p.sum,
                scale: p.scale,
                zero_count: p.zero_count,
                positive: buckets(p.positive),
                negative: buckets(p.negative),
                flags: p.flags,
                exemplars: exemplars(&at, p.exemplars)?,
                min: p.min,
                max: p.max,
                zero_threshold: p.zero_threshold,
            });
        }
        Some(Data::ExponentialHistogram(proto::ExponentialHistogram {
            data_points,
            aggregation_temporality: h.aggregation_temporality,
        }))
    } else {
        m.summary.map(|s| {
            Data::Summary(proto::Summary {
                data_points: s
                    .data_points
                    .into_iter()
                    .map(|p| proto::SummaryDataPoint {
                        attributes: p.attributes,
                        start_time_unix_nano: p.start_time_unix_nano,
                        time_unix_nano: p.time_unix_nano,
                        count: p.count,
                        sum: p.sum,
                        quantile_values: p
                            .quantile_values
                            .into_iter()
                            .map(|q| proto::summary_data_point::ValueAtQuantile {
                                quantile: q.quantile,
                                value: q.value,
                            })
                            .collect(),
                        flags: p.flags,
                    })
                    .collect(),
            })
        })
    };
    Ok(proto::Metric {
        name: m.name,
        description: m.description,
        unit: m.unit,
        metadata: m.metadata,
        data,
    })
}

impl Request {
    /// The generated message this JSON stands for.
    ///
    /// # Errors
    /// A `oneof` given twice (two data kinds in a metric, `asDouble` and `asInt` together).
    pub(crate) fn into_message(self) -> Result<collector::ExportMetricsServiceRequest> {
        let mut resource_metrics = Vec::with_capacity(self.resource_metrics.len());
        for (r, rm) in self.resource_metrics.into_iter().enumerate() {
            let mut scope_metrics = Vec::with_capacity(rm.scope_metrics.len());
            for (s, sm) in rm.scope_metrics.into_iter().enumerate() {
                let mut metrics = Vec::with_capacity(sm.metrics.len());
                for (m, metric_json) in sm.metrics.into_iter().enumerate() {
                    let field = || format!("resourceMetrics[{r}].scopeMetrics[{s}].metrics[{m}]");
                    metrics.push(metric(&field, metric_json)?);
                }
                scope_metrics.push(proto::ScopeMetrics {
                    scope: sm.scope.map(|s| common::InstrumentationScope {
                        name: s.name,
                        version: s.version,
                        attributes: s.attributes,
                        dropped_attributes_count: s.dropped_attributes_count,
                    }),
                    metrics,
                    schema_url: sm.schema_url,
                });
            }
            resource_metrics.push(proto::ResourceMetrics {
                resource: rm.resource.map(|r| resource::Resource {
                    attributes: r.attributes,
                    dropped_attributes_count: r.dropped_attributes_count,
                    entity_refs: Vec::new(),
                }),
                scope_metrics,
                schema_url: rm.schema_url,
            });
        }
        Ok(collector::ExportMetricsServiceRequest { resource_metrics })
    }
}
