//! Validates a `PutMetricDataRequest` against CloudWatch's rules and turns it into
//! observations for the store. A request with any invalid datum is rejected whole.

use std::sync::Arc;

use thermostat_metrics::validate::{self, Shape, ValidationError};
use thermostat_metrics::{
    Dimension, Observation, Resolution, Sample, SeriesKey, StatisticSet, Timestamp, Unit,
};
use thermostat_proto::v1::{MetricDatum, PutMetricDataRequest};

/// A validated request: observations that borrow the request's value lists.
#[derive(Debug)]
pub struct Validated<'a> {
    /// One entry per datum that carries at least one sample.
    pub batch: Vec<(SeriesKey, Observation<'a>)>,
    /// Samples in the request, by Thermostat's counting rule.
    pub samples: f64,
}

/// Checks every datum and converts the request.
///
/// # Errors
/// The first broken rule, with the field path (`metric_data[3].dimensions[1].value`).
pub fn validate_request(
    req: &PutMetricDataRequest,
    now: Timestamp,
) -> Result<Validated<'_>, ValidationError> {
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
    let mut batch = Vec::with_capacity(req.metric_data.len());
    let mut samples = 0.0;
    for (i, d) in req.metric_data.iter().enumerate() {
        let (key, obs) = validate_datum(&namespace, d, now)
            .map_err(|e| e.within(&format!("metric_data[{i}]")))?;
        samples += obs.sample.sample_count();
        batch.push((key, obs));
    }
    Ok(Validated { batch, samples })
}

fn field(name: &str) -> impl Fn(String) -> ValidationError + '_ {
    move |rule| ValidationError::new(name, rule)
}

fn validate_datum<'a>(
    namespace: &Arc<str>,
    d: &'a MetricDatum,
    now: Timestamp,
) -> Result<(SeriesKey, Observation<'a>), ValidationError> {
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
    let timestamp = if d.timestamp_ms == 0 {
        now
    } else {
        Timestamp::from_millis(d.timestamp_ms)
    };
    validate::timestamp(timestamp, now).map_err(field("timestamp_ms"))?;
    validate::shape(Shape {
        value: d.value.is_some(),
        statistic_values: d.statistic_values.is_some(),
        values: !d.values.is_empty(),
        counts: !d.counts.is_empty(),
    })?;
    let sample = if let Some(v) = d.value {
        validate::value(v).map_err(field("value"))?;
        Sample::Value(v)
    } else if let Some(s) = &d.statistic_values {
        let set = StatisticSet {
            sample_count: s.sample_count,
            sum: s.sum,
            minimum: s.minimum,
            maximum: s.maximum,
        };
        validate::statistic_set(&set).map_err(|e| e.within("statistic_values"))?;
        Sample::Set(set)
    } else {
        validate::values_and_counts(d.values.len(), d.counts.len())?;
        for (k, &v) in d.values.iter().enumerate() {
            validate::value(v).map_err(|r| ValidationError::new(format!("values[{k}]"), r))?;
        }
        for (k, &c) in d.counts.iter().enumerate() {
            validate::count(c).map_err(|r| ValidationError::new(format!("counts[{k}]"), r))?;
        }
        Sample::Values {
            values: &d.values,
            counts: &d.counts,
        }
    };
    let unit: Unit = d
        .unit
        .parse()
        .map_err(|e: thermostat_metrics::unit::UnknownUnit| {
            ValidationError::new("unit", e.to_string())
        })?;
    validate::storage_resolution(d.storage_resolution).map_err(field("storage_resolution"))?;
    let key = SeriesKey::new(
        Arc::clone(namespace),
        d.metric_name.as_str(),
        d.dimensions
            .iter()
            .map(|x| Dimension::new(x.name.as_str(), x.value.as_str()))
            .collect(),
    );
    Ok((
        key,
        Observation {
            timestamp,
            unit,
            resolution: Resolution::from_storage_resolution(d.storage_resolution),
            sample,
        },
    ))
}
