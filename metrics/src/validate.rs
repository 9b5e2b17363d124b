//! CloudWatch's `PutMetricData` rules (reference §1), as pure functions.
//!
//! Each function checks one field and returns the rule it broke; the caller (an ingest
//! adapter) adds the path of the field, so that a message reads
//! `metric_data[3].dimensions[1].value: must be 1 to 1024 characters (got 1025)`.

use std::fmt;

use crate::time::{DAY_MS, HOUR_MS, Timestamp};
use crate::window::{Distribution, StatisticSet};

/// Most dimensions a datum may carry.
pub const MAX_DIMENSIONS: usize = 30;
/// Most entries in `values` (and `counts`).
pub const MAX_VALUES: usize = 150;
/// Most buckets a distribution ([`Distribution`]) may have. OpenTelemetry's exponential
/// histograms keep at most 160 buckets per side by default (321 with the zero bucket), and
/// explicit-bucket histograms rarely have more than a few dozen; a thousand leaves room for
/// SDKs configured larger while bounding the work and log bytes of one point.
pub const MAX_DISTRIBUTION_BUCKETS: usize = 1000;
/// Most datums in one request.
pub const MAX_DATUMS_PER_REQUEST: usize = 1000;
/// Largest magnitude of a value: 2^360.
pub const MAX_MAGNITUDE: f64 = 2.348_542_582_773_833_3e108;
/// How far in the past a timestamp may be.
pub const MAX_AGE_MS: i64 = 14 * DAY_MS;
/// How far in the future a timestamp may be.
pub const MAX_AHEAD_MS: i64 = 2 * HOUR_MS;
/// Most samples one datum may count (a statistic set's `sample_count`, or the sum of a
/// datum's `counts`): 2^53, the largest count a double holds exactly. A request of
/// [`MAX_DATUMS_PER_REQUEST`] datums then counts at most about 9.007e18 samples, which its
/// `accepted_samples` (a `uint64`) holds without saturating.
pub const MAX_SAMPLE_COUNT: f64 = 9_007_199_254_740_992.0;
pub use crate::quote::{QUOTE_CHARS, quote};

/// A broken rule for one field: `field` is a path such as `metric_data[2].value`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// Path of the offending field.
    pub field: String,
    /// The rule, phrased as what the field must be, with the value found.
    pub rule: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.rule)
    }
}

impl ValidationError {
    /// An error for `field`.
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            rule: rule.into(),
        }
    }

    /// Puts `prefix.` in front of the field path.
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_owned()
        } else if self.field.starts_with('[') {
            format!("{prefix}{}", self.field)
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

/// The result of checking one field: `Err(rule)`.
pub type Rule = Result<(), String>;

fn check_text(text: &str, max: usize) -> Rule {
    let n = text.chars().count();
    if n == 0 || n > max {
        return Err(format!("must be 1 to {max} characters (got {n})"));
    }
    if !text.is_ascii() {
        return Err("must contain only ASCII characters".into());
    }
    if text.bytes().any(|b| b.is_ascii_control()) {
        return Err("must not contain control characters".into());
    }
    if text.bytes().all(|b| b.is_ascii_whitespace()) {
        return Err("must contain at least one non-whitespace character".into());
    }
    Ok(())
}

/// A namespace: 1–255 characters of `0-9A-Za-z . - _ / # :` and spaces, not starting with `:`.
///
/// # Errors
/// The rule broken.
pub fn namespace(namespace: &str) -> Rule {
    check_text(namespace, 255)?;
    if namespace.starts_with(':') {
        return Err("must not start with ':'".into());
    }
    if let Some(c) = namespace.chars().find(|c| {
        !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '#' | ':' | ' '))
    }) {
        return Err(format!(
            "may contain only letters, digits, spaces and . - _ / # : (found {c:?})"
        ));
    }
    Ok(())
}

/// A metric name: 1–255 printable ASCII characters, at least one not whitespace.
///
/// # Errors
/// The rule broken.
pub fn metric_name(name: &str) -> Rule {
    check_text(name, 255)
}

/// A dimension name: 1–255 printable ASCII characters, not starting with `:`.
///
/// # Errors
/// The rule broken.
pub fn dimension_name(name: &str) -> Rule {
    check_text(name, 255)?;
    if name.starts_with(':') {
        return Err("must not start with ':'".into());
    }
    Ok(())
}

/// A dimension value: 1–1024 printable ASCII characters.
///
/// # Errors
/// The rule broken.
pub fn dimension_value(value: &str) -> Rule {
    check_text(value, 1024)
}

/// A set of dimensions: at most 30, names unique. Returns the index and rule of the first
/// problem, the index pointing into `names`.
///
/// # Errors
/// `(index, rule)`; `index` is `None` for a rule about the whole list.
pub fn dimension_set<'a>(
    names: impl ExactSizeIterator<Item = &'a str>,
) -> Result<(), (Option<usize>, String)> {
    if names.len() > MAX_DIMENSIONS {
        return Err((
            None,
            format!(
                "must have at most {MAX_DIMENSIONS} entries (got {})",
                names.len()
            ),
        ));
    }
    let names: Vec<&str> = names.collect();
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err((
                Some(i),
                format!(
                    "name {} appears more than once; dimension names must be unique",
                    quote(n)
                ),
            ));
        }
    }
    Ok(())
}

/// A value: finite and within ±2^360.
///
/// # Errors
/// The rule broken.
pub fn value(value: f64) -> Rule {
    if value.is_nan() {
        return Err("must be a number (got NaN)".into());
    }
    if value.is_infinite() {
        return Err(format!("must be finite (got {value})"));
    }
    if value.abs() > MAX_MAGNITUDE {
        return Err(format!("must be between -2^360 and 2^360 (got {value:e})"));
    }
    Ok(())
}

/// A count in `counts`: finite and not negative.
///
/// # Errors
/// The rule broken.
pub fn count(count: f64) -> Rule {
    value(count)?;
    if count < 0.0 {
        return Err(format!("must not be negative (got {count})"));
    }
    Ok(())
}

/// A timestamp: no more than 14 days before `now` nor more than 2 hours after it.
///
/// # Errors
/// The rule broken.
pub fn timestamp(timestamp: Timestamp, now: Timestamp) -> Rule {
    if timestamp < now.sub_millis(MAX_AGE_MS) {
        return Err(format!(
            "must be within the past 14 days (got {timestamp}, which is more than 14 days before {now})"
        ));
    }
    if timestamp > now.add_millis(MAX_AHEAD_MS) {
        return Err(format!(
            "must be at most 2 hours in the future (got {timestamp}, server time {now})"
        ));
    }
    Ok(())
}

/// A storage resolution: 1 or 60 (0 means 60).
///
/// # Errors
/// The rule broken.
pub fn storage_resolution(resolution: i32) -> Rule {
    match resolution {
        0 | 1 | 60 => Ok(()),
        _ => Err(format!(
            "must be 1 (high resolution) or 60 (got {resolution})"
        )),
    }
}

/// The samples one datum counts: at most [`MAX_SAMPLE_COUNT`].
///
/// # Errors
/// The rule broken.
pub fn sample_count(count: f64) -> Rule {
    if count > MAX_SAMPLE_COUNT {
        return Err(format!(
            "must count at most 2^53 ({MAX_SAMPLE_COUNT}) samples per datum (got {count:e})"
        ));
    }
    Ok(())
}

/// A statistic set: every field valid, `0 < sample_count <= 2^53`, `minimum <= maximum`.
///
/// # Errors
/// `(field, rule)` with the field's name inside the set.
pub fn statistic_set(set: &StatisticSet) -> Result<(), ValidationError> {
    for (field, v) in [
        ("sample_count", set.sample_count),
        ("sum", set.sum),
        ("minimum", set.minimum),
        ("maximum", set.maximum),
    ] {
        value(v).map_err(|rule| ValidationError::new(field, rule))?;
    }
    if set.sample_count <= 0.0 {
        return Err(ValidationError::new(
            "sample_count",
            format!("must be greater than 0 (got {})", set.sample_count),
        ));
    }
    sample_count(set.sample_count).map_err(|rule| ValidationError::new("sample_count", rule))?;
    if set.minimum > set.maximum {
        return Err(ValidationError::new(
            "minimum",
            format!(
                "must not be greater than maximum (got {} > {})",
                set.minimum, set.maximum
            ),
        ));
    }
    Ok(())
}

/// A distribution ([`Distribution`]): every number finite and within ±2^360;
/// `0 <= count <= 2^53`; `min <= max` when both are given; at most
/// [`MAX_DISTRIBUTION_BUCKETS`] buckets, as many counts as values; every count not negative
/// (fractional counts are allowed, as in `counts`, and leave a window without percentiles);
/// and, when there are buckets, their counts summing to `count`.
///
/// Whole counts (OpenTelemetry's are integers) are summed in integers and must equal
/// `count` exactly: an `f64` sum would round past 2^53 and could match a `count` it does not
/// equal. Fractional counts are summed in `f64`, which may round at each addition, so they
/// may differ from `count` by at most `count × buckets × ε` (ε = 2^-52). Without buckets
/// (`values` empty) nothing is summed. Whether the representatives lie within
/// `[min, max]` is not checked: a window clamps its percentiles to its bounds.
///
/// # Errors
/// The first broken rule, naming the field as OpenTelemetry points name them: `count`,
/// `sum`, `min`, `max`, `bucket_counts` (the list), `bucket_counts[i]`, or
/// `bucket_values[i]` (the representative the caller derived for bucket `i`; the OTLP
/// mapper names the fields it derived it from).
pub fn distribution(d: &Distribution<'_>) -> Result<(), ValidationError> {
    value(d.count).map_err(|rule| ValidationError::new("count", rule))?;
    if d.count < 0.0 {
        return Err(ValidationError::new(
            "count",
            format!("must not be negative (got {})", d.count),
        ));
    }
    sample_count(d.count).map_err(|rule| ValidationError::new("count", rule))?;
    value(d.sum).map_err(|rule| ValidationError::new("sum", rule))?;
    for (field, bound) in [("min", d.min), ("max", d.max)] {
        if let Some(v) = bound {
            value(v).map_err(|rule| ValidationError::new(field, rule))?;
        }
    }
    if let (Some(min), Some(max)) = (d.min, d.max)
        && min > max
    {
        return Err(ValidationError::new(
            "min",
            format!("must not be greater than max (got {min} > {max})"),
        ));
    }
    if d.values.len() > MAX_DISTRIBUTION_BUCKETS {
        return Err(ValidationError::new(
            "bucket_counts",
            format!(
                "must have at most {MAX_DISTRIBUTION_BUCKETS} entries (got {})",
                d.values.len()
            ),
        ));
    }
    if d.counts.len() != d.values.len() {
        return Err(ValidationError::new(
            "bucket_counts",
            format!(
                "must have one entry per bucket (got {} counts for {} buckets)",
                d.counts.len(),
                d.values.len()
            ),
        ));
    }
    // The sum of whole counts in integers (each at most 2^360 saturates to 2^128, and a
    // thousand of those saturate the sum: never a false match), of any counts in `f64`.
    let mut total = 0.0;
    let mut whole_total: Option<u128> = Some(0);
    for (i, (&v, &n)) in d.values.iter().zip(d.counts).enumerate() {
        value(v).map_err(|rule| ValidationError::new(format!("bucket_values[{i}]"), rule))?;
        count(n).map_err(|rule| ValidationError::new(format!("bucket_counts[{i}]"), rule))?;
        total += n;
        whole_total = whole_total
            .filter(|_| n.fract() == 0.0)
            .map(|t| t.saturating_add(n as u128));
    }
    if d.values.is_empty() {
        return Ok(());
    }
    let (matches, got) = match whole_total {
        Some(t) => (
            d.count.fract() == 0.0 && t == d.count as u128,
            t.to_string(),
        ),
        None => {
            let tolerance = d.count * d.values.len() as f64 * f64::EPSILON;
            ((total - d.count).abs() <= tolerance, total.to_string())
        }
    };
    if !matches {
        return Err(ValidationError::new(
            "count",
            format!(
                "must equal the sum of bucket_counts (got count {}, bucket counts summing to {got})",
                d.count
            ),
        ));
    }
    Ok(())
}

/// Which value fields a datum set.
#[derive(Clone, Copy, Debug, Default)]
pub struct Shape {
    /// `value` is set.
    pub value: bool,
    /// `statistic_values` is set.
    pub statistic_values: bool,
    /// `values` is non-empty.
    pub values: bool,
    /// `counts` is non-empty.
    pub counts: bool,
}

/// Exactly one of `value`, `statistic_values`, `values` must be set; `counts` only with
/// `values`.
///
/// # Errors
/// `(field, rule)`.
pub fn shape(shape: Shape) -> Result<(), ValidationError> {
    let set = [shape.value, shape.statistic_values, shape.values]
        .iter()
        .filter(|b| **b)
        .count();
    if set == 0 {
        return Err(ValidationError::new(
            "value",
            "exactly one of value, statistic_values or values must be set (got none)",
        ));
    }
    if set > 1 {
        let names: Vec<&str> = [
            ("value", shape.value),
            ("statistic_values", shape.statistic_values),
            ("values", shape.values),
        ]
        .iter()
        .filter(|(_, b)| *b)
        .map(|(n, _)| *n)
        .collect();
        return Err(ValidationError::new(
            names[1],
            format!(
                "exactly one of value, statistic_values or values must be set (got {})",
                names.join(" and ")
            ),
        ));
    }
    if shape.counts && !shape.values {
        return Err(ValidationError::new(
            "counts",
            "may be set only together with values",
        ));
    }
    Ok(())
}

/// `values` and `counts` lengths: at most 150 values, and as many counts as values when
/// counts are given.
///
/// # Errors
/// `(field, rule)`.
pub fn values_and_counts(values: usize, counts: usize) -> Result<(), ValidationError> {
    if values > MAX_VALUES {
        return Err(ValidationError::new(
            "values",
            format!("must have at most {MAX_VALUES} entries (got {values})"),
        ));
    }
    if counts != 0 && counts != values {
        return Err(ValidationError::new(
            "counts",
            format!(
                "must have as many entries as values, or none (got {counts} counts for {values} values)"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Rows from reference §7.6 (PutMetricData validation).
    #[test]
    fn values_reference_7_6() {
        assert!(value(f64::NAN).is_err());
        assert!(value(f64::INFINITY).is_err());
        assert!(value(f64::NEG_INFINITY).is_err());
        assert!(value(1e109).is_err());
        assert!(value(-1e109).is_err());
        assert!(value(0.0).is_ok());
        assert!(
            value(MAX_MAGNITUDE).is_ok(),
            "2^360 exactly is inside the inclusive range"
        );
        assert_eq!(MAX_MAGNITUDE, 2f64.powi(360));
    }

    #[test]
    fn timestamps_reference_7_6() {
        let now = Timestamp::from_secs(1_800_000_000);
        assert!(timestamp(now.sub_millis(MAX_AGE_MS + 1000), now).is_err());
        assert!(timestamp(now.sub_millis(MAX_AGE_MS), now).is_ok());
        assert!(timestamp(now.add_millis(MAX_AHEAD_MS + 1000), now).is_err());
        assert!(timestamp(now.add_millis(HOUR_MS), now).is_ok());
    }

    #[test]
    fn names_reference_7_6() {
        assert!(namespace(":x").is_err());
        assert!(namespace("AWS/EC2").is_ok());
        assert!(namespace("My App#1:prod").is_ok());
        assert!(namespace("bad!").is_err());
        assert!(namespace("").is_err());
        assert!(namespace(&"n".repeat(256)).is_err());
        assert!(dimension_name(":az").is_err());
        assert!(dimension_value(&"v".repeat(1025)).is_err());
        assert!(dimension_value(&"v".repeat(1024)).is_ok());
        assert!(dimension_value("").is_err());
        assert!(dimension_value("   ").is_err());
        assert!(dimension_value("caf\u{e9}").is_err());
        assert!(metric_name("tab\there").is_err());
    }

    #[test]
    fn dimension_sets() {
        let many: Vec<String> = (0..31).map(|i| format!("d{i}")).collect();
        assert!(dimension_set(many.iter().map(String::as_str)).is_err());
        assert!(dimension_set(many[..30].iter().map(String::as_str)).is_ok());
        assert_eq!(
            dimension_set(["a", "b", "a"].into_iter()).unwrap_err().0,
            Some(2)
        );
    }

    #[test]
    fn shapes_reference_7_6() {
        let only = |value, statistic_values, values| Shape {
            value,
            statistic_values,
            values,
            counts: false,
        };
        assert!(shape(only(true, false, false)).is_ok());
        assert!(shape(only(false, true, false)).is_ok());
        assert!(shape(only(false, false, true)).is_ok());
        assert!(shape(only(false, false, false)).is_err());
        assert_eq!(shape(only(true, false, true)).unwrap_err().field, "values");
        assert_eq!(
            shape(only(true, true, false)).unwrap_err().field,
            "statistic_values"
        );
        assert_eq!(
            shape(Shape {
                counts: true,
                ..only(true, false, false)
            })
            .unwrap_err()
            .field,
            "counts"
        );
        assert!(values_and_counts(151, 0).is_err());
        assert!(values_and_counts(150, 150).is_ok());
        assert_eq!(values_and_counts(3, 2).unwrap_err().field, "counts");
        assert!(storage_resolution(30).is_err());
        assert!(storage_resolution(1).is_ok());
    }

    #[test]
    fn statistic_sets() {
        let ok = StatisticSet {
            sample_count: 2.0,
            sum: 3.0,
            minimum: 1.0,
            maximum: 2.0,
        };
        assert!(statistic_set(&ok).is_ok());
        let e = statistic_set(&StatisticSet {
            sample_count: 0.0,
            ..ok
        })
        .unwrap_err();
        assert_eq!(e.field, "sample_count");
        let e = statistic_set(&StatisticSet {
            sample_count: 2f64.powi(360),
            ..ok
        })
        .unwrap_err();
        assert_eq!(e.field, "sample_count");
        assert!(e.rule.contains("2^53"), "{e}");
        assert!(
            statistic_set(&StatisticSet {
                sample_count: MAX_SAMPLE_COUNT,
                ..ok
            })
            .is_ok()
        );
        let e = statistic_set(&StatisticSet { minimum: 5.0, ..ok }).unwrap_err();
        assert_eq!(e.field, "minimum");
        let e = statistic_set(&StatisticSet {
            sum: f64::NAN,
            ..ok
        })
        .unwrap_err();
        assert_eq!(e.field, "sum");
    }

    /// Each rule of a distribution names the field OpenTelemetry points name.
    #[test]
    fn distributions_name_the_field() {
        let (values, counts) = ([0.5, 5.0, 50.0], [1.0, 3.0, 0.0]);
        let ok = Distribution {
            count: 4.0,
            sum: 15.5,
            min: Some(0.2),
            max: Some(9.0),
            values: &values,
            counts: &counts,
        };
        assert_eq!(distribution(&ok), Ok(()));
        // Bounds are optional, and a point without buckets (a summary) is valid.
        assert!(
            distribution(&Distribution {
                min: None,
                max: None,
                ..ok
            })
            .is_ok()
        );
        assert!(
            distribution(&Distribution {
                values: &[],
                counts: &[],
                ..ok
            })
            .is_ok()
        );
        assert!(
            distribution(&Distribution {
                count: 0.0,
                sum: 0.0,
                values: &[],
                counts: &[],
                ..ok
            })
            .is_ok(),
            "an empty point is valid and records nothing"
        );
        let field = |d: Distribution<'_>| distribution(&d).unwrap_err().field;
        assert_eq!(field(Distribution { count: -1.0, ..ok }), "count");
        assert_eq!(
            field(Distribution {
                count: f64::NAN,
                ..ok
            }),
            "count"
        );
        assert_eq!(
            field(Distribution {
                count: 2f64.powi(54),
                ..ok
            }),
            "count"
        );
        assert_eq!(
            field(Distribution {
                sum: f64::INFINITY,
                ..ok
            }),
            "sum"
        );
        assert_eq!(
            field(Distribution {
                min: Some(f64::NAN),
                ..ok
            }),
            "min"
        );
        assert_eq!(
            field(Distribution {
                max: Some(1e300),
                ..ok
            }),
            "max"
        );
        let e = distribution(&Distribution {
            min: Some(10.0),
            ..ok
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "min: must not be greater than max (got 10 > 9)"
        );
        let e = distribution(&Distribution { count: 5.0, ..ok }).unwrap_err();
        assert_eq!(
            e.to_string(),
            "count: must equal the sum of bucket_counts (got count 5, bucket counts summing to 4)"
        );
        assert_eq!(
            field(Distribution {
                counts: &[1.0, -3.0, 0.0],
                ..ok
            }),
            "bucket_counts[1]"
        );
        assert_eq!(
            field(Distribution {
                counts: &[1.0, 3.0, f64::NAN],
                ..ok
            }),
            "bucket_counts[2]"
        );
        assert_eq!(
            field(Distribution {
                values: &[0.5, f64::INFINITY, 50.0],
                ..ok
            }),
            "bucket_values[1]"
        );
        assert_eq!(
            field(Distribution {
                counts: &[4.0],
                ..ok
            }),
            "bucket_counts"
        );
        let many = vec![1.0; MAX_DISTRIBUTION_BUCKETS + 1];
        let e = distribution(&Distribution {
            count: many.len() as f64,
            values: &many,
            counts: &many,
            ..ok
        })
        .unwrap_err();
        assert_eq!(e.field, "bucket_counts");
        assert!(e.rule.contains("at most 1000"), "{e}");
        assert!(
            distribution(&Distribution {
                count: MAX_DISTRIBUTION_BUCKETS as f64,
                values: &many[1..],
                counts: &many[1..],
                ..ok
            })
            .is_ok()
        );
        // Fractional counts may round when summed; whole ones must match exactly.
        let tenths = [0.1; 10];
        let fractional = Distribution {
            count: 1.0,
            values: &[1.0; 10],
            counts: &tenths,
            ..ok
        };
        assert_ne!(tenths.iter().sum::<f64>(), 1.0, "the sum rounds");
        assert!(distribution(&fractional).is_ok());
        assert_eq!(
            field(Distribution {
                count: 1.0 + 1e-9,
                ..fractional
            }),
            "count"
        );
        assert_eq!(
            field(Distribution {
                count: 2f64.powi(53),
                values: &[1.0, 2.0],
                counts: &[2f64.powi(53) - 1.0, 2.0],
                ..ok
            }),
            "count",
            "whole counts summing past the count"
        );
    }

    #[test]
    fn quotes_are_bounded() {
        assert_eq!(quote("Furlongs"), "\"Furlongs\"");
        let long = "é".repeat(100_000);
        let q = quote(&long);
        assert!(q.len() < 4 * QUOTE_CHARS, "{q}");
        assert!(q.ends_with("…(200000 bytes)"), "{q}");
        let e = dimension_set(["a".repeat(100_000).as_str(), &"a".repeat(100_000)].into_iter())
            .unwrap_err();
        assert!(e.1.len() < 300, "{}", e.1);
    }

    #[test]
    fn error_paths_compose() {
        let e = ValidationError::new("value", "bad").within("metric_data[3]");
        assert_eq!(e.to_string(), "metric_data[3].value: bad");
    }
}
