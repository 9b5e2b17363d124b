//! Mapped points (OTLP's and Prometheus remote write's, and the increases a cluster
//! partition's owner makes of cumulative points) as an [`ObservationBatch`], each checked with
//! the metrics core's rules.

use thermostat_metrics::cumulative::{MappedData, MappedPoint};
use thermostat_metrics::validate;
use thermostat_metrics::{Distribution, ObservationBatch, Resolution, Timestamp};

/// The points as observations at standard resolution (1-minute windows, CloudWatch's default
/// for `PutMetricData`), each checked with the metrics core's rules; those that break one are
/// returned as `(index in points, rule)` and left out. With `leave_out_increases` (cluster
/// mode), cumulative points' increases ([`MappedPoint::from_stream`]) are checked and counted
/// in the batch's `samples` but left out: the owner of each point's partition makes them
/// ([`crate::remote::RecordApplier`]).
pub(crate) fn to_batch(
    points: &[MappedPoint],
    leave_out_increases: bool,
) -> (ObservationBatch, Vec<(usize, String)>) {
    let mut batch = ObservationBatch::with_capacity(points.len());
    let rejected = push_points(&mut batch, points, leave_out_increases);
    (batch, rejected)
}

/// [`to_batch`] into `batch`.
pub(crate) fn push_points(
    batch: &mut ObservationBatch,
    points: &[MappedPoint],
    leave_out_increases: bool,
) -> Vec<(usize, String)> {
    let mut rejected = Vec::new();
    let mut scratch;
    let mut counts: Vec<f64> = Vec::new();
    let out = batch;
    for (i, p) in points.iter().enumerate() {
        let timestamp = Timestamp::from_millis(p.timestamp_ms);
        // Checked all the same: a rejection is answered by the node that received it.
        let batch = if leave_out_increases && p.from_stream {
            scratch = ObservationBatch::default();
            &mut scratch
        } else {
            &mut *out
        };
        let checked = match &p.data {
            MappedData::Value(v) => validate::value(*v)
                .map_err(|rule| validate::ValidationError::new("value", rule))
                .map(|()| {
                    batch.push_value(&p.series, timestamp, p.unit, Resolution::Standard, *v);
                    1.0
                }),
            MappedData::Distribution {
                count,
                sum,
                min,
                max,
                values,
                counts: c,
            } => {
                counts.clear();
                counts.extend(c.iter().map(|&n| n as f64));
                let d = Distribution {
                    count: *count as f64,
                    sum: *sum,
                    min: *min,
                    max: *max,
                    values,
                    counts: &counts,
                };
                validate::distribution(&d).map(|()| {
                    batch.push_distribution(&p.series, timestamp, p.unit, Resolution::Standard, &d);
                    d.count
                })
            }
        };
        match checked {
            Ok(samples) => out.samples += samples,
            Err(e) => rejected.push((i, e.to_string())),
        }
    }
    rejected
}
