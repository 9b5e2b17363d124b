//! Statistics that can be asked of a period: CloudWatch's five plus percentiles (`pNN.NN`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A statistic of a period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Statistic {
    /// Number of observations.
    SampleCount,
    /// Sum of the observations.
    Sum,
    /// Smallest observation.
    Minimum,
    /// Largest observation.
    Maximum,
    /// `Sum / SampleCount`.
    Average,
    /// Nearest-rank percentile, `p0`..=`p100`.
    Percentile(Percentile),
}

/// A percentile with the spelling it was asked with (`p99`, `p99.9`, `p95.0123456789`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Percentile {
    /// 0..=100.
    pub rank: f64,
    /// The spelling used as the statistic's key in answers.
    pub label: String,
}

/// The error for a statistic name that is not supported; it holds the name as quoted in the
/// message (at most 64 characters of it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "must be SampleCount, Sum, Minimum, Maximum, Average or a percentile pNN[.NN] between p0 and p100 with at most 10 decimals, got {0}"
)]
pub struct UnknownStatistic(pub String);

impl Statistic {
    /// The name used as the key in answers.
    pub fn name(&self) -> &str {
        match self {
            Statistic::SampleCount => "SampleCount",
            Statistic::Sum => "Sum",
            Statistic::Minimum => "Minimum",
            Statistic::Maximum => "Maximum",
            Statistic::Average => "Average",
            Statistic::Percentile(p) => &p.label,
        }
    }

    /// Whether this statistic needs the period's distribution (a percentile).
    pub fn is_percentile(&self) -> bool {
        matches!(self, Statistic::Percentile(_))
    }
}

impl FromStr for Statistic {
    type Err = UnknownStatistic;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || UnknownStatistic(crate::quote::quote(s));
        Ok(match s {
            "SampleCount" => Statistic::SampleCount,
            "Sum" => Statistic::Sum,
            "Minimum" => Statistic::Minimum,
            "Maximum" => Statistic::Maximum,
            "Average" => Statistic::Average,
            _ => {
                let digits = s.strip_prefix('p').ok_or_else(err)?;
                let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
                let well_formed = !int.is_empty()
                    && int.len() <= 3
                    && int.bytes().all(|b| b.is_ascii_digit())
                    && frac.len() <= 10
                    && frac.bytes().all(|b| b.is_ascii_digit())
                    && (frac.is_empty() != digits.contains('.'));
                if !well_formed {
                    return Err(err());
                }
                let rank: f64 = digits.parse().map_err(|_| err())?;
                if !(0.0..=100.0).contains(&rank) {
                    return Err(err());
                }
                Statistic::Percentile(Percentile {
                    rank,
                    label: s.to_owned(),
                })
            }
        })
    }
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cloudwatch_statistics_and_percentiles() {
        assert_eq!("Average".parse::<Statistic>(), Ok(Statistic::Average));
        for (s, rank) in [("p0", 0.0), ("p50", 50.0), ("p99.9", 99.9), ("p100", 100.0)] {
            match s.parse::<Statistic>() {
                Ok(Statistic::Percentile(p)) => {
                    assert_eq!(p.rank, rank);
                    assert_eq!(p.label, s);
                }
                other => panic!("{s}: {other:?}"),
            }
        }
        assert!("p95.0123456789".parse::<Statistic>().is_ok());
    }

    #[test]
    fn rejects_malformed_statistics() {
        for s in [
            "",
            "p",
            "p100.1",
            "p101",
            "p-1",
            "p99.",
            "p.5",
            "P99",
            "average",
            "p95.01234567891",
            "p1e2",
            "tm90",
        ] {
            assert!(s.parse::<Statistic>().is_err(), "{s} should be rejected");
        }
    }

    #[test]
    fn errors_quote_a_bounded_prefix() {
        let msg = "x"
            .repeat(100_000)
            .parse::<Statistic>()
            .unwrap_err()
            .to_string();
        assert!(msg.len() < 400, "{msg}");
        assert!(msg.ends_with("(100000 bytes)"), "{msg}");
        let msg = "p101".parse::<Statistic>().unwrap_err().to_string();
        assert!(msg.ends_with(r#"got "p101""#), "{msg}");
    }
}
