//! Validates a `PutMetricDataRequest` against CloudWatch's rules and says where each datum
//! goes. A request with any invalid datum is rejected whole.
//!
//! The values stay in the request: a [`Validated`] request holds each datum's series and
//! placement, and [`Validated::observations`] borrows the values when the request is applied,
//! so a validated request travels to the log writer without copying them.

use std::sync::Arc;

use thermostat_metrics::validate::{self, Shape, ValidationError};
use thermostat_metrics::{
    Dimension, Observation, Resolution, Sample, SeriesKey, StatisticSet, Timestamp, Unit,
};
use thermostat_proto::v1::{MetricDatum, PutMetricDataRequest};

/// Where one datum goes.
#[derive(Clone, Copy, Debug)]
pub struct Placement {
    /// Index of the datum in `metric_data`.
    pub datum: usize,
    /// Its timestamp (receipt time when the datum had none).
    pub timestamp: Timestamp,
    /// Its unit.
    pub unit: Unit,
    /// Its storage resolution.
    pub resolution: Resolution,
}

/// A validated (or, when replaying the log, trusted) request.
#[derive(Debug, Default)]
pub struct Validated {
    /// One entry per datum that carries data.
    pub entries: Vec<(SeriesKey, Placement)>,
    /// Samples in the request, by Thermostat's counting rule.
    pub samples: f64,
}

impl Validated {
    /// The observations to record, borrowing `req`'s value lists (`req` must be the request
    /// this was made from).
    pub fn observations(self, req: &PutMetricDataRequest) -> Vec<(SeriesKey, Observation<'_>)> {
        self.entries
            .into_iter()
            .filter_map(|(key, p)| {
                let sample = sample_of(req.metric_data.get(p.datum)?)?;
                let obs = Observation {
                    timestamp: p.timestamp,
                    unit: p.unit,
                    resolution: p.resolution,
                    sample,
                };
                Some((key, obs))
            })
            .collect()
    }
}

fn sample_of(d: &MetricDatum) -> Option<Sample<'_>> {
    if let Some(v) = d.value {
        Some(Sample::Value(v))
    } else if let Some(s) = &d.statistic_values {
        Some(Sample::Set(StatisticSet {
            sample_count: s.sample_count,
            sum: s.sum,
            minimum: s.minimum,
            maximum: s.maximum,
        }))
    } else if d.values.is_empty() {
        None
    } else {
        Some(Sample::Values {
            values: &d.values,
            counts: &d.counts,
        })
    }
}

fn key_of(namespace: &Arc<str>, d: &MetricDatum) -> SeriesKey {
    SeriesKey::new(
        Arc::clone(namespace),
        d.metric_name.as_str(),
        d.dimensions
            .iter()
            .map(|x| Dimension::new(x.name.as_str(), x.value.as_str()))
            .collect(),
    )
}

fn timestamp_of(d: &MetricDatum, now: Timestamp) -> Timestamp {
    if d.timestamp_ms == 0 {
        now
    } else {
        Timestamp::from_millis(d.timestamp_ms)
    }
}

fn placement(datum: usize, d: &MetricDatum, now: Timestamp) -> Placement {
    Placement {
        datum,
        timestamp: timestamp_of(d, now),
        unit: d.unit.parse().unwrap_or_default(),
        resolution: Resolution::from_storage_resolution(d.storage_resolution),
    }
}

/// Checks every datum and says where each goes.
///
/// # Errors
/// The first broken rule, with the field path (`metric_data[3].dimensions[1].value`).
pub fn validate_request(
    req: &PutMetricDataRequest,
    now: Timestamp,
) -> Result<Validated, ValidationError> {
    validate::namespace(&req.namespace).map_err(|r| ValidationError::new("namespace", r))?;
    if req.metric_data.is_empty() {
        return Err(ValidationError::new(
            "metric_data",
            "must contain at least one datum",
        ));
    }
    if req.metric_data.len() > validate::MAX_DATUMS_PER_REQUEST {
        return Err(ValidationError::new(
            "metric_data",
            format!(
                "must contain at most {} datums (got {})",
                validate::MAX_DATUMS_PER_REQUEST,
                req.metric_data.len()
            ),
        ));
    }
    let namespace: Arc<str> = Arc::from(req.namespace.as_str());
    let mut out = Validated {
        entries: Vec::with_capacity(req.metric_data.len()),
        samples: 0.0,
    };
    for (i, d) in req.metric_data.iter().enumerate() {
        out.samples +=
            validate_datum(d, now).map_err(|e| e.within(&format!("metric_data[{i}]")))?;
        out.entries
            .push((key_of(&namespace, d), placement(i, d, now)));
    }
    Ok(out)
}

/// Converts a request that was validated when it arrived (a write-ahead-log record) without
/// checking it again: acknowledged data must replay even if a later version tightens a rule.
/// `received` is the time the request arrived (the timestamp of datums without one).
pub fn trusted_request(req: &PutMetricDataRequest, received: Timestamp) -> Validated {
    let namespace: Arc<str> = Arc::from(req.namespace.as_str());
    let mut out = Validated {
        entries: Vec::with_capacity(req.metric_data.len()),
        samples: 0.0,
    };
    for (i, d) in req.metric_data.iter().enumerate() {
        let Some(sample) = sample_of(d) else { continue };
        out.samples += sample.sample_count();
        out.entries
            .push((key_of(&namespace, d), placement(i, d, received)));
    }
    out
}

fn field(name: &str) -> impl Fn(String) -> ValidationError + '_ {
    move |rule| ValidationError::new(name, rule)
}

/// Checks one datum; returns its sample count.
fn validate_datum(d: &MetricDatum, now: Timestamp) -> Result<f64, ValidationError> {
    validate::metric_name(&d.metric_name).map_err(field("metric_name"))?;
    validate::dimension_set(d.dimensions.iter().map(|x| x.name.as_str())).map_err(
        |(i, rule)| match i {
            Some(i) => ValidationError::new(format!("dimensions[{i}].name"), rule),
            None => ValidationError::new("dimensions", rule),
        },
    )?;
    for (j, dim) in d.dimensions.iter().enumerate() {
        validate::dimension_name(&dim.name)
            .map_err(|r| ValidationError::new(format!("dimensions[{j}].name"), r))?;
        validate::dimension_value(&dim.value)
            .map_err(|r| ValidationError::new(format!("dimensions[{j}].value"), r))?;
    }
    validate::timestamp(timestamp_of(d, now), now).map_err(field("timestamp_ms"))?;
    validate::shape(Shape {
        value: d.value.is_some(),
        statistic_values: d.statistic_values.is_some(),
        values: !d.values.is_empty(),
        counts: !d.counts.is_empty(),
    })?;
    if let Some(v) = d.value {
        validate::value(v).map_err(field("value"))?;
    } else if let Some(Sample::Set(set)) = sample_of(d) {
        validate::statistic_set(&set).map_err(|e| e.within("statistic_values"))?;
    } else {
        validate::values_and_counts(d.values.len(), d.counts.len())?;
        for (k, &v) in d.values.iter().enumerate() {
            validate::value(v).map_err(|r| ValidationError::new(format!("values[{k}]"), r))?;
        }
        for (k, &c) in d.counts.iter().enumerate() {
            validate::count(c).map_err(|r| ValidationError::new(format!("counts[{k}]"), r))?;
        }
    }
    d.unit
        .parse::<Unit>()
        .map_err(|e| ValidationError::new("unit", e.to_string()))?;
    validate::storage_resolution(d.storage_resolution).map_err(field("storage_resolution"))?;
    Ok(sample_of(d).map_or(0.0, |s| s.sample_count()))
}
