//! [`AnomalyConfig`]: what CloudWatch's `PutAnomalyDetector` configures — excluded training
//! ranges and the metric's time zone — with validation that reports every problem.

use std::fmt;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use thermostat_metrics::Timestamp;

/// At most this many excluded ranges, as `Configuration.ExcludedTimeRanges`.
pub const MAX_EXCLUDED_RANGES: usize = 10;

/// The training configuration of one anomaly model.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyConfig {
    /// Time ranges `[start, end)` left out of training (incidents, load tests), at most
    /// [`MAX_EXCLUDED_RANGES`]; `ExcludedTimeRanges`.
    #[serde(default)]
    pub excluded: Vec<(Timestamp, Timestamp)>,
    /// The IANA time zone of daily and weekly seasonality (`MetricTimezone`), so that a
    /// daily peak stays at the same local time across daylight-saving changes; UTC when
    /// absent.
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// One problem of an [`AnomalyConfig`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnomalyConfigError {
    /// More than [`MAX_EXCLUDED_RANGES`] excluded ranges. Merge neighbouring ranges.
    #[error("excluded: at most {max} ranges are allowed (got {count})")]
    TooManyExcludedRanges {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An excluded range does not end after it starts. Swap or fix the bounds.
    #[error("excluded[{index}]: start must be before end (got {start} to {end})")]
    EmptyRange {
        /// 0-based position of the range.
        index: usize,
        /// The range's start.
        start: Timestamp,
        /// The range's end.
        end: Timestamp,
    },
    /// The time zone is not in the IANA database. Use a name such as `Europe/Berlin`.
    #[error("time_zone: unknown IANA time zone {name:?} (use a name such as \"Europe/Berlin\")")]
    UnknownTimeZone {
        /// The name given.
        name: String,
    },
}

/// Every problem of an [`AnomalyConfig`], in field order; never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnomalyConfigErrors(pub Vec<AnomalyConfigError>);

impl fmt::Display for AnomalyConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for AnomalyConfigErrors {}

// === impl AnomalyConfig ===

impl AnomalyConfig {
    /// Checks the configuration, reporting every problem at once.
    ///
    /// # Errors
    /// More than [`MAX_EXCLUDED_RANGES`] ranges, a range whose start is not before its end,
    /// or a time zone that is not an IANA name.
    pub fn validate(&self) -> Result<(), AnomalyConfigErrors> {
        let mut errors = Vec::new();
        if self.excluded.len() > MAX_EXCLUDED_RANGES {
            errors.push(AnomalyConfigError::TooManyExcludedRanges {
                count: self.excluded.len(),
                max: MAX_EXCLUDED_RANGES,
            });
        }
        for (index, &(start, end)) in self.excluded.iter().enumerate() {
            if start >= end {
                errors.push(AnomalyConfigError::EmptyRange { index, start, end });
            }
        }
        if let Some(name) = &self.time_zone
            && TimeZone::get(name).is_err()
        {
            errors.push(AnomalyConfigError::UnknownTimeZone { name: name.clone() });
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(AnomalyConfigErrors(errors))
        }
    }

    /// Whether `t` lies in an excluded range.
    pub fn is_excluded(&self, t: Timestamp) -> bool {
        self.excluded
            .iter()
            .any(|&(start, end)| start <= t && t < end)
    }
}

/// The time zone named, UTC when absent or unknown (configurations are validated first).
pub(super) fn resolve_time_zone(name: Option<&str>) -> TimeZone {
    name.and_then(|n| TimeZone::get(n).ok())
        .unwrap_or(TimeZone::UTC)
}
