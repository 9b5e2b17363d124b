//! Native histograms to the totals the cumulative machinery keeps: spans and deltas (or
//! absolute float counts) decoded with their bounds checked, Prometheus' bucket indices moved
//! to OTLP's, custom buckets (schema -53) to an explicit-bucket histogram.
//!
//! Prometheus' exponential bucket `i` covers `(base^(i-1), base^i]`, OTLP's `(base^i,
//! base^(i+1)]` (both `base = 2^(2^-schema)`), so Prometheus' bucket `i` is OTLP's `i - 1`.

use thermostat_metrics::cumulative::buckets::exponential_representative;
use thermostat_metrics::cumulative::{BucketRange, ExponentialTotals, HistogramTotals};
use thermostat_metrics::validate;

use crate::limits::{MAX_BUCKET_INDEX_RANGE, MAX_BUCKETS_PER_HISTOGRAM};
use crate::proto::histogram::{Count, ZeroCount};
use crate::proto::{BucketSpan, Histogram};

/// Smallest exponential schema.
pub(crate) const MIN_SCHEMA: i32 = -4;
/// Largest exponential schema.
pub(crate) const MAX_SCHEMA: i32 = 8;
/// The schema of custom buckets.
pub(crate) const CUSTOM_SCHEMA: i32 = -53;

/// A native histogram's totals.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum NativeTotals {
    /// Schemas -4 to 8.
    Exponential(ExponentialTotals),
    /// Schema -53.
    Custom(HistogramTotals),
}

/// The totals of `h`, or the rule it breaks (`field: rule`).
pub(crate) fn totals(h: &Histogram) -> Result<NativeTotals, String> {
    let float = matches!(h.count, Some(Count::CountFloat(_)));
    let count = match h.count {
        Some(Count::CountFloat(c)) => whole("count_float", c)?,
        Some(Count::CountInt(c)) => c,
        None => 0,
    };
    let zero_count = match h.zero_count {
        Some(ZeroCount::ZeroCountFloat(c)) => whole("zero_count_float", c)?,
        Some(ZeroCount::ZeroCountInt(c)) => c,
        None => 0,
    };
    if float && matches!(h.zero_count, Some(ZeroCount::ZeroCountInt(_))) {
        return Err(
            "zero_count_int: a float histogram (count_float) must use zero_count_float".into(),
        );
    }
    if !float && matches!(h.zero_count, Some(ZeroCount::ZeroCountFloat(_))) {
        return Err(
            "zero_count_float: an integer histogram (count_int) must use zero_count_int".into(),
        );
    }
    let positive = side("positive", h, float, &h.positive_spans)?;
    let negative = side("negative", h, float, &h.negative_spans)?;
    let total = u128::from(zero_count) + positive.total + negative.total;
    // A NaN observation counts in `count` but in no bucket, and makes the sum NaN: such a
    // histogram is recorded with its buckets' count and a sum estimated from them.
    let (count, sum) = if h.sum.is_finite() {
        validate::value(h.sum).map_err(|rule| format!("sum: {rule}"))?;
        if u128::from(count) != total {
            return Err(format!(
                "count: must equal the zero bucket's count plus the buckets' counts (got {count}, they add up to {total})"
            ));
        }
        (count, Some(h.sum))
    } else {
        if u128::from(count) < total {
            return Err(format!(
                "count: must be at least the zero bucket's count plus the buckets' counts (got {count}, they add up to {total})"
            ));
        }
        (u64::try_from(total).unwrap_or(u64::MAX), None)
    };
    validate::sample_count(count as f64).map_err(|rule| format!("count: {rule}"))?;
    if h.schema == CUSTOM_SCHEMA {
        return custom(h, count, sum, zero_count, &positive, &negative);
    }
    if !(MIN_SCHEMA..=MAX_SCHEMA).contains(&h.schema) {
        return Err(format!(
            "schema: must be {MIN_SCHEMA} to {MAX_SCHEMA} (exponential buckets) or {CUSTOM_SCHEMA} (custom buckets) (got {})",
            h.schema
        ));
    }
    if !(h.zero_threshold.is_finite() && h.zero_threshold >= 0.0) {
        return Err(format!(
            "zero_threshold: must be finite and not negative (got {})",
            h.zero_threshold
        ));
    }
    let positive = exponential_range("positive", h.schema, &positive)?;
    let negative = exponential_range("negative", h.schema, &negative)?;
    Ok(NativeTotals::Exponential(ExponentialTotals {
        count,
        sum,
        min: None,
        max: None,
        scale: h.schema,
        zero_count,
        zero_threshold: h.zero_threshold,
        positive,
        negative,
    }))
}

/// The buckets of one side, by Prometheus index.
struct Side {
    /// `(index, count)` of every bucket the spans list, ascending.
    buckets: Vec<(i64, u64)>,
    total: u128,
}

fn side(name: &str, h: &Histogram, float: bool, spans: &[BucketSpan]) -> Result<Side, String> {
    let (deltas, counts) = if name == "positive" {
        (&h.positive_deltas, &h.positive_counts)
    } else {
        (&h.negative_deltas, &h.negative_counts)
    };
    if float && !deltas.is_empty() {
        return Err(format!(
            "{name}_deltas: a float histogram (count_float) must carry {name}_counts"
        ));
    }
    if !float && !counts.is_empty() {
        return Err(format!(
            "{name}_counts: an integer histogram (count_int) must carry {name}_deltas"
        ));
    }
    let n = if float { counts.len() } else { deltas.len() };
    // The spans' lengths, summed without overflow before anything is allocated for them.
    let mut length: u64 = 0;
    let mut first: Option<i64> = None;
    let mut next: i64 = 0;
    let mut last: i64 = 0;
    for (i, span) in spans.iter().enumerate() {
        if i > 0 && span.offset < 0 {
            return Err(format!(
                "{name}_spans[{i}].offset: must not be negative after the first span (got {})",
                span.offset
            ));
        }
        let start = if i == 0 {
            i64::from(span.offset)
        } else {
            next + i64::from(span.offset)
        };
        length += u64::from(span.length);
        next = start + i64::from(span.length);
        if span.length > 0 {
            first.get_or_insert(start);
            last = next - 1;
        }
        if length > MAX_BUCKETS_PER_HISTOGRAM as u64
            || first.is_some_and(|f| last - f >= MAX_BUCKET_INDEX_RANGE)
        {
            return Err(format!(
                "{name}_spans: must cover at most {MAX_BUCKETS_PER_HISTOGRAM} buckets within {MAX_BUCKET_INDEX_RANGE} consecutive indices (span {i} reaches index {} after {length} buckets)",
                next - 1
            ));
        }
    }
    if length != n as u64 {
        return Err(format!(
            "{name}_spans: must cover as many buckets as there are {name}_{} (spans cover {length}, got {n})",
            if float { "counts" } else { "deltas" }
        ));
    }
    let mut buckets = Vec::with_capacity(n);
    let mut total: u128 = 0;
    let mut running: i64 = 0;
    let mut k = 0usize;
    let mut index: i64 = 0;
    for (i, span) in spans.iter().enumerate() {
        index = if i == 0 {
            i64::from(span.offset)
        } else {
            index + i64::from(span.offset)
        };
        for _ in 0..span.length {
            let count = if float {
                whole(&format!("{name}_counts[{k}]"), counts[k])?
            } else {
                running = running
                    .checked_add(deltas[k])
                    .ok_or_else(|| format!("{name}_deltas[{k}]: the running count overflows"))?;
                u64::try_from(running).map_err(|_| {
                    format!(
                        "{name}_deltas[{k}]: the bucket's count must not be negative (the deltas add up to {running})"
                    )
                })?
            };
            total += u128::from(count);
            buckets.push((index, count));
            index += 1;
            k += 1;
        }
    }
    Ok(Side { buckets, total })
}

/// A float count as a whole number: finite, not negative, integral (within 1e-9 relative).
fn whole(field: &str, value: f64) -> Result<u64, String> {
    let rounded = value.round();
    if !value.is_finite()
        || value < 0.0
        || (value - rounded).abs() > 1e-9 * rounded.abs().max(1.0)
        || rounded > 2f64.powi(53)
    {
        return Err(format!(
            "{field}: must be a whole number from 0 to 2^53 (got {value}); float histograms with fractional counts are not accepted"
        ));
    }
    Ok(rounded as u64)
}

/// Prometheus' buckets as an OTLP range: index `i` becomes `i - 1`, gaps filled with zeros.
fn exponential_range(name: &str, schema: i32, side: &Side) -> Result<BucketRange, String> {
    let (Some(&(first, _)), Some(&(last, _))) = (side.buckets.first(), side.buckets.last()) else {
        return Ok(BucketRange::default());
    };
    let offset = i32::try_from(first - 1)
        .map_err(|_| format!("{name}_spans: bucket index {first} is out of range"))?;
    i32::try_from(last - 1)
        .map_err(|_| format!("{name}_spans: bucket index {last} is out of range"))?;
    let width = usize::try_from(last - first + 1).unwrap_or(0);
    let mut counts = vec![0u64; width];
    for (k, &(index, count)) in side.buckets.iter().enumerate() {
        if count > 0 && exponential_representative(schema, index - 1).is_none() {
            return Err(format!(
                "{name} bucket {index} (the {k}th listed): must be empty, since it holds no finite number at schema {schema} (got {count})"
            ));
        }
        if let Some(slot) = usize::try_from(index - first)
            .ok()
            .and_then(|at| counts.get_mut(at))
        {
            *slot = count;
        }
    }
    Ok(BucketRange { offset, counts })
}

/// Schema -53: `custom_values` are the bounds, positive buckets index them (the last index,
/// `custom_values.len()`, is the `+Inf` bucket).
fn custom(
    h: &Histogram,
    count: u64,
    sum: Option<f64>,
    zero_count: u64,
    positive: &Side,
    negative: &Side,
) -> Result<NativeTotals, String> {
    if !negative.buckets.is_empty() || zero_count > 0 {
        return Err(
            "negative_spans: custom buckets (schema -53) keep every value in the positive buckets; negative and zero buckets must be empty".into(),
        );
    }
    let bounds = &h.custom_values;
    if bounds.len() > MAX_BUCKETS_PER_HISTOGRAM {
        return Err(format!(
            "custom_values: must have at most {MAX_BUCKETS_PER_HISTOGRAM} entries (got {})",
            bounds.len()
        ));
    }
    for (i, b) in bounds.iter().enumerate() {
        validate::value(*b).map_err(|rule| format!("custom_values[{i}]: {rule}"))?;
        if i > 0 && *b <= bounds[i - 1] {
            return Err(format!(
                "custom_values[{i}]: must be greater than the bound before it (got {b} after {})",
                bounds[i - 1]
            ));
        }
    }
    let mut counts = vec![0u64; bounds.len() + 1];
    for &(index, c) in &positive.buckets {
        let slot = usize::try_from(index).ok().and_then(|i| counts.get_mut(i));
        let Some(slot) = slot else {
            return Err(format!(
                "positive_spans: bucket {index} is not one of the {} custom buckets (0 to {})",
                bounds.len() + 1,
                bounds.len()
            ));
        };
        *slot = c;
    }
    Ok(NativeTotals::Custom(HistogramTotals {
        count,
        sum,
        min: None,
        max: None,
        bounds: bounds.clone(),
        counts,
    }))
}

#[cfg(test)]
mod tests;
