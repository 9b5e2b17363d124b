//! Statistics that can be asked of a period: CloudWatch's five, percentiles (`pNN.NN`) and
//! the other extended statistics (reference §2.3): trimmed mean `TM`, winsorized mean `WM`,
//! trimmed count `TC`, trimmed sum `TS`, percentile rank `PR` and `IQM`.
//!
//! Accepted spellings of the extended statistics, as CloudWatch writes them:
//!
//! - `tmNN`, `wmNN`, `tcNN`, `tsNN` (lower case, one number, decimals like `p99.9`):
//!   `tm90` is `TM(:90%)`;
//! - `TM(a:b)`, `WM(a:b)`, `TC(a:b)`, `TS(a:b)` (upper case): with `%` on both given sides
//!   the bounds are percentages of the observations (`TM(10%:90%)`), without `%` they are
//!   absolute values (`TC(80:500)`); either side may be empty (`TM(10%:)`, `TC(:0.5)`) but
//!   not both; the lower bound must not be above the upper one;
//! - `PR(a:b)`: absolute bounds only, the percentage of observations within them;
//! - `IQM`: `TM(25%:75%)`.
//!
//! Bounds keep observations `v` with `a < v <= b`: the lower bound is exclusive, the upper one
//! inclusive, as CloudWatch documents for absolute bounds and `PR`. Percentage bounds follow
//! the same rule over the observations' nearest ranks: with `n` observations sorted, `TM(a%:b%)`
//! keeps ranks `⌈a·n/100⌉ < k <= ⌈b·n/100⌉`, so the observation that is `pA` is dropped and the
//! one that is `pB` kept (UNCONFIRMED in CloudWatch, whose documentation does not say).

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
    /// Trimmed mean, winsorized mean, trimmed count, trimmed sum or percentile rank.
    /// Appended last: stored alarms name variants.
    Extended(ExtendedStatistic),
}

/// An extended statistic other than a percentile (`TM(10%:90%)`, `tc90`, `PR(:300)`, `IQM`),
/// with the spelling it was asked with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExtendedStatistic {
    /// What is computed over the observations within the bounds.
    pub kind: ExtendedKind,
    /// Which observations are within.
    pub bounds: Bounds,
    /// The spelling used as the statistic's key in answers.
    pub label: String,
}

/// What an [`ExtendedStatistic`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExtendedKind {
    /// `TM`: the mean of the observations within the bounds.
    TrimmedMean,
    /// `WM`: the mean of all observations, those outside the bounds counted as the bound's
    /// value (for percentage bounds, the percentile at the bound).
    WinsorizedMean,
    /// `TC`: how many observations are within the bounds.
    TrimmedCount,
    /// `TS`: the sum of the observations within the bounds (0 when none is).
    TrimmedSum,
    /// `PR`: the percentage (0..=100) of observations within the bounds.
    PercentileRank,
}

/// The bounds of an [`ExtendedStatistic`]: observations `v` with `lower < v <= upper` are
/// within; a side that is `None` does not bound.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Bounds {
    /// Percentages (0..=100) of the observations, by nearest rank.
    Percent {
        /// Lower bound, exclusive.
        lower: Option<f64>,
        /// Upper bound, inclusive.
        upper: Option<f64>,
    },
    /// Values.
    Absolute {
        /// Lower bound, exclusive.
        lower: Option<f64>,
        /// Upper bound, inclusive.
        upper: Option<f64>,
    },
}

impl ExtendedStatistic {
    /// Whether it was written with parentheses (`TM(10%:90%)`) rather than as one number
    /// (`tm90`) or `IQM`.
    pub fn has_parentheses(&self) -> bool {
        self.label.ends_with(')')
    }
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
    "must be SampleCount, Sum, Minimum, Maximum, Average, a percentile pNN[.NN] between p0 and p100 with at most 10 decimals, tmNN, wmNN, tcNN or tsNN (0 to 100), TM, WM, TC or TS(a:b) with percentage (10%:90%) or absolute (80:500) bounds, PR(a:b) with absolute bounds, or IQM; a side may be empty, lower <= upper, got {0}"
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
            Statistic::Extended(e) => &e.label,
        }
    }

    /// Whether this is an extended statistic (CloudWatch's `ExtendedStatistic(s)` rather
    /// than `Statistic(s)`): a percentile, or since issue 22 one of the trimmed, winsorized
    /// and rank statistics. All of them need the period's distribution. The name predates
    /// the other extended statistics; the evaluator's low-sample rule (reference §3.6) matches
    /// [`Statistic::Percentile`] itself and so still applies to percentiles only.
    pub fn is_percentile(&self) -> bool {
        matches!(self, Statistic::Percentile(_) | Statistic::Extended(_))
    }
}

/// A percentage as percentiles write it: 1 to 3 integer digits, at most 10 decimals, 0..=100.
fn percentage(text: &str) -> Option<f64> {
    let v = decimal(text, 3)?;
    (v <= 100.0).then_some(v)
}

/// A non-negative decimal: 1 to `int_digits` integer digits, optionally `.` and 1 to 10
/// decimals (no sign, exponent or bare `.`).
fn decimal(text: &str, int_digits: usize) -> Option<f64> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let well_formed = !int.is_empty()
        && int.len() <= int_digits
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.len() <= 10
        && frac.bytes().all(|b| b.is_ascii_digit())
        && (frac.is_empty() != text.contains('.'));
    if !well_formed {
        return None;
    }
    text.parse().ok()
}

/// Integer digits an absolute bound may have (values go up to 2^360, but bounds beyond
/// 10^15 would say nothing the histogram can tell apart).
const ABSOLUTE_INT_DIGITS: usize = 15;

/// `tmNN`, `TM(a:b)`, `PR(a:b)`, `IQM`...; `None` when `s` is none of them.
fn extended(s: &str) -> Option<ExtendedStatistic> {
    let kind_of = |prefix: &str| match prefix {
        "TM" | "tm" => Some(ExtendedKind::TrimmedMean),
        "WM" | "wm" => Some(ExtendedKind::WinsorizedMean),
        "TC" | "tc" => Some(ExtendedKind::TrimmedCount),
        "TS" | "ts" => Some(ExtendedKind::TrimmedSum),
        "PR" => Some(ExtendedKind::PercentileRank),
        _ => None,
    };
    let label = s.to_owned();
    if s == "IQM" {
        return Some(ExtendedStatistic {
            kind: ExtendedKind::TrimmedMean,
            bounds: Bounds::Percent {
                lower: Some(25.0),
                upper: Some(75.0),
            },
            label,
        });
    }
    let prefix = s.get(..2)?;
    let kind = kind_of(prefix)?;
    let rest = &s[2..];
    if prefix.bytes().all(|b| b.is_ascii_lowercase()) {
        let upper = percentage(rest)?;
        return Some(ExtendedStatistic {
            kind,
            bounds: Bounds::Percent {
                lower: None,
                upper: Some(upper),
            },
            label,
        });
    }
    let inner = rest.strip_prefix('(')?.strip_suffix(')')?;
    let (lo, hi) = inner.split_once(':')?;
    if lo.is_empty() && hi.is_empty() {
        return None;
    }
    let bounds = match (lo.strip_suffix('%'), hi.strip_suffix('%')) {
        (Some(lo), Some(hi)) if kind != ExtendedKind::PercentileRank => Bounds::Percent {
            lower: Some(percentage(lo)?),
            upper: Some(percentage(hi)?),
        },
        (Some(lo), None) if hi.is_empty() && kind != ExtendedKind::PercentileRank => {
            Bounds::Percent {
                lower: Some(percentage(lo)?),
                upper: None,
            }
        }
        (None, Some(hi)) if lo.is_empty() && kind != ExtendedKind::PercentileRank => {
            Bounds::Percent {
                lower: None,
                upper: Some(percentage(hi)?),
            }
        }
        (None, None) => {
            let side = |t: &str| -> Option<Option<f64>> {
                if t.is_empty() {
                    Some(None)
                } else {
                    decimal(t, ABSOLUTE_INT_DIGITS).map(Some)
                }
            };
            Bounds::Absolute {
                lower: side(lo)?,
                upper: side(hi)?,
            }
        }
        _ => return None,
    };
    let (Bounds::Percent { lower, upper } | Bounds::Absolute { lower, upper }) = bounds;
    if let (Some(l), Some(u)) = (lower, upper)
        && l > u
    {
        return None;
    }
    Some(ExtendedStatistic {
        kind,
        bounds,
        label,
    })
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
            _ if !s.starts_with('p') => Statistic::Extended(extended(s).ok_or_else(err)?),
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

    fn extended(s: &str) -> ExtendedStatistic {
        match s.parse::<Statistic>() {
            Ok(Statistic::Extended(e)) => {
                assert_eq!(e.label, s);
                e
            }
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn parses_extended_statistics() {
        use Bounds::{Absolute, Percent};
        use ExtendedKind::*;
        let rows: &[(&str, ExtendedKind, Bounds)] = &[
            (
                "tm90",
                TrimmedMean,
                Percent {
                    lower: None,
                    upper: Some(90.0),
                },
            ),
            (
                "wm99.9",
                WinsorizedMean,
                Percent {
                    lower: None,
                    upper: Some(99.9),
                },
            ),
            (
                "tc0",
                TrimmedCount,
                Percent {
                    lower: None,
                    upper: Some(0.0),
                },
            ),
            (
                "ts100",
                TrimmedSum,
                Percent {
                    lower: None,
                    upper: Some(100.0),
                },
            ),
            (
                "IQM",
                TrimmedMean,
                Percent {
                    lower: Some(25.0),
                    upper: Some(75.0),
                },
            ),
            (
                "TM(10%:90%)",
                TrimmedMean,
                Percent {
                    lower: Some(10.0),
                    upper: Some(90.0),
                },
            ),
            (
                "TM(10%:)",
                TrimmedMean,
                Percent {
                    lower: Some(10.0),
                    upper: None,
                },
            ),
            (
                "WM(:95.5%)",
                WinsorizedMean,
                Percent {
                    lower: None,
                    upper: Some(95.5),
                },
            ),
            (
                "TS(80%:)",
                TrimmedSum,
                Percent {
                    lower: Some(80.0),
                    upper: None,
                },
            ),
            (
                "TM(50%:50%)",
                TrimmedMean,
                Percent {
                    lower: Some(50.0),
                    upper: Some(50.0),
                },
            ),
            (
                "TC(80:500)",
                TrimmedCount,
                Absolute {
                    lower: Some(80.0),
                    upper: Some(500.0),
                },
            ),
            (
                "TC(:0.5)",
                TrimmedCount,
                Absolute {
                    lower: None,
                    upper: Some(0.5),
                },
            ),
            (
                "TC(0.005:0.030)",
                TrimmedCount,
                Absolute {
                    lower: Some(0.005),
                    upper: Some(0.03),
                },
            ),
            (
                "TM(150:1000)",
                TrimmedMean,
                Absolute {
                    lower: Some(150.0),
                    upper: Some(1000.0),
                },
            ),
            (
                "PR(:300)",
                PercentileRank,
                Absolute {
                    lower: None,
                    upper: Some(300.0),
                },
            ),
            (
                "PR(100:2000)",
                PercentileRank,
                Absolute {
                    lower: Some(100.0),
                    upper: Some(2000.0),
                },
            ),
            (
                "PR(5:)",
                PercentileRank,
                Absolute {
                    lower: Some(5.0),
                    upper: None,
                },
            ),
        ];
        for (s, kind, bounds) in rows {
            let e = extended(s);
            assert_eq!((e.kind, e.bounds), (*kind, *bounds), "{s}");
            assert_eq!(s.parse::<Statistic>().unwrap().name(), *s);
            assert!(
                s.parse::<Statistic>().unwrap().is_percentile(),
                "{s} is extended"
            );
        }
        assert!(!extended("tm90").has_parentheses());
        assert!(!extended("IQM").has_parentheses());
        assert!(extended("TM(10%:90%)").has_parentheses());
    }

    #[test]
    fn rejects_malformed_extended_statistics() {
        for s in [
            // Case: lower case only in the one-number form, upper case with parentheses.
            "TM90",
            "tm(10%:90%)",
            "Tm90",
            "iqm",
            "pr(:30)",
            "pr30",
            // Bounds.
            "TM(:)",
            "TM()",
            "TM(10%)",
            "TM(10%:90)",
            "TM(10:90%)",
            "TM(90%:10%)",
            "TC(500:80)",
            "TM(10%:101%)",
            "tm100.5",
            "tm101",
            "PR(10%:90%)",
            "PR(:30%)",
            // Numbers.
            "tm",
            "tm9.",
            "tm.9",
            "tm-1",
            "tm1e2",
            "TC(-1:5)",
            "TC(1e3:)",
            "TC(.5:)",
            "TC(5.:)",
            "TC(0x10:)",
            "TC( 1:2)",
            "TM(10%%:90%)",
            "tm95.01234567891",
            "TC(:0.01234567891)",
            "TC(:1234567890123456)",
            "TM(10%:90%",
            "TM10%:90%)",
            "TM(10%:50%:90%)",
            "TX(1:2)",
            "IQM ",
        ] {
            assert!(s.parse::<Statistic>().is_err(), "{s} should be rejected");
        }
        let msg = "TM(5%:95)".parse::<Statistic>().unwrap_err().to_string();
        assert!(msg.contains("TM, WM, TC or TS(a:b)"), "{msg}");
        assert!(msg.ends_with(r#"got "TM(5%:95)""#), "{msg}");
    }

    #[test]
    fn stored_statistics_keep_their_serialized_form() {
        // Alarms and scaling groups are stored as JSON (statedb) and name the variants:
        // forms written before the extended statistics still read back.
        for (json, want) in [
            (r#""Average""#, Statistic::Average),
            (r#""SampleCount""#, Statistic::SampleCount),
            (
                r#"{"Percentile":{"rank":99.0,"label":"p99"}}"#,
                "p99".parse().unwrap(),
            ),
        ] {
            assert_eq!(serde_json::from_str::<Statistic>(json).unwrap(), want);
            assert_eq!(serde_json::to_string(&want).unwrap(), json);
        }
        for s in ["IQM", "TC(80:500)", "wm99.9", "PR(:300)"] {
            let stat: Statistic = s.parse().unwrap();
            let json = serde_json::to_string(&stat).unwrap();
            assert_eq!(serde_json::from_str::<Statistic>(&json).unwrap(), stat);
        }
    }
}
