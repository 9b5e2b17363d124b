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

#[cfg(test)]
mod tests {
    use thermostat_metrics::{Dimension, SeriesKey, Unit};

    use super::*;

    fn point(series: usize, t: i64, v: f64) -> MappedPoint {
        MappedPoint {
            series: SeriesKey::new(
                "App",
                "m",
                vec![Dimension::new("host", format!("h{series}"))],
            ),
            unit: Unit::None,
            timestamp_ms: 1_800_000_000_000 + t,
            point: 0,
            data: MappedData::Value(v),
            from_stream: false,
        }
    }

    /// Points of many series are batched in their order, less those that break a rule;
    /// rejections name the points' own indices, in order. (Batching them in the store's shard
    /// order, as thermostat.v1's many-series requests are, cost remote write 2–3 % more CPU
    /// in two pairs: reading the points out of order costs more than it saves the applier.)
    #[test]
    fn many_series_are_batched_in_order_less_the_rejected() {
        let mut points: Vec<MappedPoint> = (0..2)
            .flat_map(|t| (0..200).map(move |s| point(s, t, (s * 10) as f64 + t as f64)))
            .collect();
        points[7].data = MappedData::Value(f64::NAN);
        points[3].data = MappedData::Value(f64::INFINITY);
        let (batch, rejected) = to_batch(&points, false);
        assert_eq!(rejected.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [3, 7]);
        assert_eq!(batch.samples, 398.0);
        let want: Vec<(SeriesKey, i64)> = points
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 3 && *i != 7)
            .map(|(_, p)| (p.series.clone(), p.timestamp_ms))
            .collect();
        let have: Vec<(SeriesKey, i64)> = batch
            .observations()
            .iter()
            .map(|(k, o)| (k.clone(), o.timestamp.as_millis()))
            .collect();
        assert_eq!(have, want);
    }
}
