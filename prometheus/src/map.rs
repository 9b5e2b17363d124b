//! The pure mapping of a decoded remote write 1.0 request onto Thermostat series.

use std::collections::HashMap;

use thermostat_metrics::quote::quote;
use thermostat_metrics::validate::{self, MAX_DIMENSIONS};
use thermostat_metrics::{Dimension, SeriesKey};

use crate::proto::{MetricType, TimeSeries, WriteRequest};

/// The namespace of a series without the namespace label.
pub const DEFAULT_NAMESPACE: &str = "Prometheus";
/// The label whose value is the namespace, by default.
pub const DEFAULT_NAMESPACE_LABEL: &str = "job";
/// Prometheus' staleness marker: a NaN with this exact bit pattern ends a stream.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// How to map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapOptions {
    /// The label whose value is the namespace (`prometheus.namespace_label`).
    pub namespace_label: String,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions {
            namespace_label: DEFAULT_NAMESPACE_LABEL.to_owned(),
        }
    }
}

/// Whether a series is cumulative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Cumulative (`_total`, `_count`, `_sum`, `_bucket`, or metadata type counter).
    Counter,
    /// An observation per sample.
    Gauge,
}

/// One series of the request, mapped.
#[derive(Clone, Debug, PartialEq)]
pub struct MappedSeries {
    /// Namespace, metric name and dimensions.
    pub key: SeriesKey,
    /// Counter or gauge.
    pub kind: Kind,
    /// `(timestamp ms, value)`, as sent, without staleness markers and rejected samples.
    pub samples: Vec<(i64, f64)>,
    /// Timestamps (ms) of staleness markers: the stream ended there.
    pub stale_at: Vec<i64>,
}

/// A series or sample that broke a rule; the others are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The series as Prometheus writes it, `name{label="value",…}`, values shortened.
    pub series: String,
    /// The field and the rule, e.g. `timeseries[3].samples[0].value: must be a number …`.
    pub rule: String,
}

/// The outcome of [`map_v1`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mapped {
    /// Series with at least one sample or staleness marker, in request order.
    pub series: Vec<MappedSeries>,
    /// What was rejected, in request order.
    pub rejected: Vec<Rejection>,
}

/// Maps a remote write 1.0 request. Never fails as a whole and never panics: a series that
/// breaks a rule is rejected with the rule, a sample that does (a NaN other than the
/// staleness marker, an infinity) is rejected alone.
pub fn map_v1(request: &WriteRequest, options: &MapOptions) -> Mapped {
    let types: HashMap<&str, MetricType> = request
        .metadata
        .iter()
        .filter_map(|m| {
            MetricType::try_from(m.r#type)
                .ok()
                .map(|t| (m.metric_family_name.as_str(), t))
        })
        .collect();
    let mut out = Mapped::default();
    for (i, ts) in request.timeseries.iter().enumerate() {
        let at = format!("timeseries[{i}]");
        match series(ts, &at, options, &types) {
            Ok((key, kind)) => {
                let mut samples = Vec::with_capacity(ts.samples.len());
                let mut stale_at = Vec::new();
                for (j, s) in ts.samples.iter().enumerate() {
                    if s.value.to_bits() == STALE_NAN_BITS {
                        stale_at.push(s.timestamp);
                    } else if let Err(rule) = validate::value(s.value) {
                        let rule = if s.value.is_nan() {
                            format!("{rule}; the only NaN accepted is Prometheus' staleness marker")
                        } else {
                            rule
                        };
                        out.rejected.push(Rejection {
                            series: render(ts),
                            rule: format!("{at}.samples[{j}].value: {rule}"),
                        });
                    } else {
                        samples.push((s.timestamp, s.value));
                    }
                }
                if !samples.is_empty() || !stale_at.is_empty() {
                    out.series.push(MappedSeries {
                        key,
                        kind,
                        samples,
                        stale_at,
                    });
                }
            }
            Err(rule) => out.rejected.push(Rejection {
                series: render(ts),
                rule,
            }),
        }
    }
    out
}

fn series(
    ts: &TimeSeries,
    at: &str,
    options: &MapOptions,
    types: &HashMap<&str, MetricType>,
) -> Result<(SeriesKey, Kind), String> {
    let mut name = None;
    let mut namespace = None;
    let mut dimensions = Vec::new();
    for (j, l) in ts.labels.iter().enumerate() {
        let field = format!("{at}.labels[{j}]");
        if let Some(prev) = ts.labels[..j].iter().position(|p| p.name == l.name) {
            return Err(format!(
                "{field}.name: label {} appears more than once (also labels[{prev}])",
                quote(&l.name)
            ));
        }
        if !is_label_name(&l.name) {
            return Err(format!(
                "{field}.name: {} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                quote(&l.name)
            ));
        }
        if l.value.is_empty() {
            continue; // Prometheus: an empty value is the same as no label.
        }
        if l.name == "__name__" {
            validate::metric_name(&l.value)
                .map_err(|r| format!("{field}.value: metric name (__name__) {r}"))?;
            name = Some(l.value.as_str());
        } else if l.name == options.namespace_label {
            validate::namespace(&l.value)
                .map_err(|r| format!("{field}.value: namespace (label {}) {r}", quote(&l.name)))?;
            namespace = Some(l.value.as_str());
        } else {
            validate::dimension_name(&l.name)
                .map_err(|r| format!("{field}.name: dimension name {r}"))?;
            validate::dimension_value(&l.value)
                .map_err(|r| format!("{field}.value: dimension value {r}"))?;
            dimensions.push(Dimension::new(l.name.as_str(), l.value.as_str()));
        }
    }
    let Some(name) = name else {
        return Err(format!(
            "{at}.labels: must have a __name__ label (the metric name)"
        ));
    };
    if dimensions.len() > MAX_DIMENSIONS {
        return Err(format!(
            "{at}.labels: at most {MAX_DIMENSIONS} labels besides __name__ and the namespace label {} (got {})",
            quote(&options.namespace_label),
            dimensions.len()
        ));
    }
    let kind = kind(name, types);
    let key = SeriesKey::new(namespace.unwrap_or(DEFAULT_NAMESPACE), name, dimensions);
    Ok((key, kind))
}

/// Counter or gauge: the metadata for exactly this name if it says counter or gauge; else a
/// gauge histogram's `_bucket`/`_count`/`_sum` are gauges; else by suffix.
fn kind(name: &str, types: &HashMap<&str, MetricType>) -> Kind {
    match types.get(name) {
        Some(MetricType::Counter) => return Kind::Counter,
        Some(MetricType::Gauge) => return Kind::Gauge,
        _ => {}
    }
    for suffix in ["_bucket", "_count", "_sum"] {
        if let Some(family) = name.strip_suffix(suffix) {
            return if types.get(family) == Some(&MetricType::Gaugehistogram) {
                Kind::Gauge
            } else {
                Kind::Counter
            };
        }
    }
    if name.ends_with("_total") {
        Kind::Counter
    } else {
        Kind::Gauge
    }
}

/// Prometheus' label name rule, `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `name{label="value",…}` for messages; at most 32 labels shown, values shortened.
fn render(ts: &TimeSeries) -> String {
    let name = ts
        .labels
        .iter()
        .find(|l| l.name == "__name__")
        .map_or("", |l| l.value.as_str());
    let mut out = quote(name).trim_matches('"').to_owned();
    let others: Vec<String> = ts
        .labels
        .iter()
        .filter(|l| l.name != "__name__")
        .take(32)
        .map(|l| format!("{}={}", quote(&l.name).trim_matches('"'), quote(&l.value)))
        .collect();
    out.push('{');
    out.push_str(&others.join(","));
    if ts.labels.len() > others.len() + 1 {
        out.push_str(",…");
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests;
