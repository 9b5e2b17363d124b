//! Classic histograms: the `<family>_bucket{le="…"}` samples of one family series at one
//! timestamp, as the totals of a cumulative explicit-bucket histogram.

use thermostat_metrics::cumulative::HistogramTotals;
use thermostat_metrics::validate;

/// The upper bound an `le` label gives: a number, or `+Inf` (any spelling Rust's float parser
/// takes: `+Inf`, `Inf`, `inf`).
pub(crate) fn parse_le(le: &str) -> Result<f64, String> {
    match le.trim().parse::<f64>() {
        Ok(v) if !v.is_nan() && v != f64::NEG_INFINITY => Ok(v),
        _ => Err(format!(
            "must be a number or +Inf, the bucket's upper bound (got {})",
            thermostat_metrics::quote::quote(le)
        )),
    }
}

/// The totals of one group: `buckets` are `(le, cumulative count)` in any order, `+Inf`
/// among them; `sum` is the family's `_sum` sample at the same time, when sent.
///
/// Bounds are the finite `le`s ascending, counts the differences between consecutive
/// cumulative counts, count the `+Inf` bucket's.
pub(crate) fn totals(buckets: &[(f64, f64)], sum: Option<f64>) -> Result<HistogramTotals, String> {
    let mut sorted: Vec<(f64, f64)> = buckets.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut bounds = Vec::with_capacity(sorted.len().saturating_sub(1));
    let mut counts = Vec::with_capacity(sorted.len());
    let mut previous: (f64, u64) = (f64::NEG_INFINITY, 0);
    for &(le, value) in &sorted {
        if le == previous.0 {
            return Err(format!("le: {le} appears more than once"));
        }
        let cumulative = whole(value).ok_or_else(|| {
            format!("le {le}: a bucket's count must be a whole number from 0 to 2^53 (got {value})")
        })?;
        if cumulative < previous.1 {
            return Err(format!(
                "le {le}: bucket counts must not decrease as le grows (got {cumulative} after {} at le {})",
                previous.1, previous.0
            ));
        }
        counts.push(cumulative - previous.1);
        if le.is_finite() {
            bounds.push(le);
        }
        previous = (le, cumulative);
    }
    if previous.0 != f64::INFINITY {
        return Err("le: the +Inf bucket is missing".into());
    }
    let sum = sum.filter(|s| validate::value(*s).is_ok());
    Ok(HistogramTotals {
        count: previous.1,
        sum,
        min: None,
        max: None,
        bounds,
        counts,
    })
}

fn whole(value: f64) -> Option<u64> {
    let rounded = value.round();
    (value.is_finite()
        && value >= 0.0
        && (value - rounded).abs() <= 1e-9 * rounded.abs().max(1.0)
        && rounded <= 2f64.powi(53))
    .then_some(rounded as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_values() {
        assert_eq!(parse_le("0.25"), Ok(0.25));
        assert_eq!(parse_le("1e+06"), Ok(1e6));
        assert_eq!(parse_le("+Inf"), Ok(f64::INFINITY));
        assert_eq!(parse_le("-5"), Ok(-5.0));
        for bad in ["", "fast", "NaN", "-Inf", "1,5"] {
            assert!(parse_le(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn buckets_become_differences() {
        let t = totals(&[(f64::INFINITY, 10.0), (0.1, 2.0), (1.0, 7.0)], Some(3.5)).unwrap();
        assert_eq!(t.bounds, vec![0.1, 1.0]);
        assert_eq!(t.counts, vec![2, 5, 3]);
        assert_eq!(t.count, 10);
        assert_eq!(t.sum, Some(3.5));
    }

    #[test]
    fn bad_groups_are_refused() {
        assert!(totals(&[(1.0, 2.0)], None).unwrap_err().contains("+Inf"));
        assert!(
            totals(&[(1.0, 5.0), (f64::INFINITY, 4.0)], None)
                .unwrap_err()
                .contains("must not decrease")
        );
        assert!(
            totals(&[(1.0, 1.0), (1.0, 1.0), (f64::INFINITY, 4.0)], None)
                .unwrap_err()
                .contains("more than once")
        );
        assert!(
            totals(&[(1.0, 0.5), (f64::INFINITY, 4.0)], None)
                .unwrap_err()
                .contains("whole number")
        );
    }
}
