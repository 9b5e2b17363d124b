//! What a mapping hands the store: [`MappedPoint`]s carrying [`MappedData`], and the functions
//! that turn histogram totals into a [`MappedData::Distribution`].

use crate::{SeriesKey, Unit};

use super::buckets::{explicit_representative, exponential_representative};
use super::streams::{BucketRange, ExponentialTotals, HistogramTotals};

/// What one point records.
#[derive(Clone, Debug, PartialEq)]
pub enum MappedData {
    /// One value (a gauge, a non-monotonic sum, the increase of a monotonic sum or counter).
    Value(f64),
    /// Many values at once: exact `count` and `sum`, `min`/`max` when known, and `values`
    /// with their `counts` (one representative value per non-empty bucket, inside it) for
    /// percentiles. A Summary has no `values`: its quantiles are not used.
    Distribution {
        /// Values counted.
        count: u64,
        /// Their sum (estimated from the representatives only when a histogram point carries
        /// no sum, as the SDKs do when negative values were recorded).
        sum: f64,
        /// The least value, when known.
        min: Option<f64>,
        /// The greatest value, when known.
        max: Option<f64>,
        /// One representative value per non-empty bucket, ascending.
        values: Vec<f64>,
        /// How many values each representative stands for (none is 0).
        counts: Vec<u64>,
    },
}

/// One observation for the store.
#[derive(Clone, Debug, PartialEq)]
pub struct MappedPoint {
    /// Namespace, metric name and dimensions.
    pub series: SeriesKey,
    /// The CloudWatch unit (`None` for Prometheus, which carries none per sample).
    pub unit: Unit,
    /// The point's time, in ms since the Unix epoch (OTLP's `time_unix_nano` / 10^6, a
    /// Prometheus sample's `timestamp`).
    pub timestamp_ms: i64,
    /// The point's index in its metric's `data_points` (OTLP) or the sample's or histogram's
    /// index in its series (Prometheus), for a rejection the caller makes.
    pub point: usize,
    /// What it records.
    pub data: MappedData,
    /// Whether it is a cumulative point's increase (the mapping's `cumulative` holds the
    /// point itself; cluster mode leaves these out and has the point's owner make them).
    pub from_stream: bool,
}

/// `Σ value × count`, for a point without a sum.
pub fn estimated_sum(values: &[f64], counts: &[u64]) -> f64 {
    values.iter().zip(counts).map(|(v, &c)| v * c as f64).sum()
}

/// The distribution an explicit-bucket histogram's totals (an increase, or a delta point)
/// record: one representative per non-empty bucket ([`explicit_representative`], narrowed
/// by `min`/`max` and, for a single bucket, the mean), the exact count, and the sum (estimated
/// from the representatives only when the totals carry none).
pub fn explicit_distribution(t: &HistogramTotals) -> MappedData {
    let mean = t.sum.filter(|_| t.count > 0).map(|s| s / t.count as f64);
    let (mut values, mut counts) = (Vec::new(), Vec::new());
    for (i, &c) in t.counts.iter().enumerate() {
        if c > 0 {
            values.push(explicit_representative(&t.bounds, i, t.min, t.max, mean));
            counts.push(c);
        }
    }
    MappedData::Distribution {
        count: t.count,
        sum: t.sum.unwrap_or_else(|| estimated_sum(&values, &counts)),
        min: t.min,
        max: t.max,
        values,
        counts,
    }
}

/// The distribution an exponential histogram's totals record: one representative per
/// non-empty bucket ([`exponential_representative`], negated for negative buckets), 0 for the
/// zero bucket, ascending; the exact count, and the sum (estimated when the totals carry
/// none). A bucket that holds no finite double is represented by 0 (the mappings reject
/// counts in such buckets before they get here).
pub fn exponential_distribution(t: &ExponentialTotals) -> MappedData {
    let (mut values, mut counts) = (Vec::new(), Vec::new());
    let representative = |range: &BucketRange, i: usize| {
        exponential_representative(t.scale, i64::from(range.offset) + i as i64).unwrap_or(0.0)
    };
    // Ascending: negative buckets from the largest magnitude down, zero, positive up.
    for (i, &c) in t.negative.counts.iter().enumerate().rev() {
        if c > 0 {
            values.push(-representative(&t.negative, i));
            counts.push(c);
        }
    }
    if t.zero_count > 0 {
        values.push(0.0);
        counts.push(t.zero_count);
    }
    for (i, &c) in t.positive.counts.iter().enumerate() {
        if c > 0 {
            values.push(representative(&t.positive, i));
            counts.push(c);
        }
    }
    MappedData::Distribution {
        count: t.count,
        sum: t.sum.unwrap_or_else(|| estimated_sum(&values, &counts)),
        min: t.min,
        max: t.max,
        values,
        counts,
    }
}
