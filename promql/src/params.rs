//! Prometheus' parameter formats (times, durations), the period a step reads, and its
//! rendering of numbers.

use thermostat_metrics::time::{MINUTE_MS, SECOND_MS};
use thermostat_metrics::{Period, Timestamp};

use crate::error::{Error, Result};
use crate::lex::parse_unit_duration;

/// Parses a time as Prometheus does: Unix seconds with an optional fraction, or RFC 3339.
/// Times outside years 0000–9999 (such as the Go client's minimum and maximum times) are
/// clamped to that range.
///
/// # Errors
/// [`Error::Parse`] naming `field` for anything else.
pub fn parse_time(field: &str, text: &str) -> Result<Timestamp> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        if secs.is_nan() {
            return Err(Error::Parse(format!(
                "invalid parameter {field:?}: cannot parse {text:?} to a valid timestamp"
            )));
        }
        let ms = secs * 1000.0;
        return Ok(if ms <= Timestamp::EARLIEST.as_millis() as f64 {
            Timestamp::EARLIEST
        } else if ms >= Timestamp::LATEST.as_millis() as f64 {
            Timestamp::LATEST
        } else {
            Timestamp(ms.round() as i64)
        });
    }
    if let Ok(t) = Timestamp::parse_rfc3339(text) {
        return Ok(t);
    }
    // A year of five or more digits: before or after anything stored.
    let year_digits = text
        .trim_start_matches('-')
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    if year_digits > 4 && text.contains('T') {
        return Ok(if text.starts_with('-') {
            Timestamp::EARLIEST
        } else {
            Timestamp::LATEST
        });
    }
    Err(Error::Parse(format!(
        "invalid parameter {field:?}: cannot parse {:?} to a valid timestamp",
        bounded(text)
    )))
}

/// Parses a duration as Prometheus does: seconds with an optional fraction (`15`, `0.5`) or
/// units (`5m`, `1h30m`); in milliseconds, at least 1.
///
/// # Errors
/// [`Error::Parse`] naming `field`.
pub fn parse_duration(field: &str, text: &str) -> Result<i64> {
    let text = text.trim();
    let ms = match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s * 1000.0 < 1e15 => Some((s * 1000.0).round() as i64),
        Ok(_) => None,
        Err(_) => parse_unit_duration(text),
    };
    match ms {
        Some(ms) if ms > 0 => Ok(ms),
        _ => Err(Error::Parse(format!(
            "invalid parameter {field:?}: cannot parse {:?} to a valid duration",
            bounded(text)
        ))),
    }
}

fn bounded(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The period `step_ms` reads: the step rounded up to a period CloudWatch allows (1, 5, 10,
/// 20 or 30 seconds, or a multiple of 60), at most 2^31 seconds.
pub fn round_period(step_ms: i64) -> Period {
    let secs = match step_ms {
        ..=1_000 => 1,
        1_001..=5_000 => 5,
        5_001..=10_000 => 10,
        10_001..=20_000 => 20,
        20_001..=30_000 => 30,
        ms => {
            let minutes = (ms.min(i64::from(i32::MAX) * SECOND_MS) + MINUTE_MS - 1) / MINUTE_MS;
            minutes * 60
        }
    };
    Period::try_from_secs(secs).unwrap_or(Period::ONE_MINUTE)
}

/// The greatest common divisor of two valid periods in milliseconds (itself a valid period).
pub fn gcd_period(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a / SECOND_MS, b / SECOND_MS);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1) * SECOND_MS
}

/// A sample value as Prometheus writes it: the shortest decimal that reads back the same,
/// without an exponent, and `NaN`, `+Inf`, `-Inf`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_seconds_or_rfc3339() {
        assert_eq!(parse_time("time", "1.5").unwrap(), Timestamp(1500));
        assert_eq!(
            parse_time("time", "1970-01-01T00:01:00Z").unwrap(),
            Timestamp(60_000)
        );
        assert_eq!(
            parse_time("start", "-292273086-05-16T16:47:06Z").unwrap(),
            Timestamp::EARLIEST
        );
        assert_eq!(
            parse_time("end", "292277025-08-18T07:12:54.999999999Z").unwrap(),
            Timestamp::LATEST
        );
        assert_eq!(parse_time("end", "1e20").unwrap(), Timestamp::LATEST);
        let e = parse_time("time", "yesterday").unwrap_err().to_string();
        assert!(e.contains("\"time\"") && e.contains("yesterday"), "{e}");
        assert!(parse_time("time", "NaN").is_err());
    }

    #[test]
    fn durations_are_seconds_or_units() {
        assert_eq!(parse_duration("step", "15").unwrap(), 15_000);
        assert_eq!(parse_duration("step", "0.5").unwrap(), 500);
        assert_eq!(parse_duration("step", "1h30m").unwrap(), 5_400_000);
        for bad in ["0", "-1", "abc", "5x", "NaN", "Inf", "1e300"] {
            assert!(parse_duration("step", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn steps_round_up_to_valid_periods() {
        for (ms, secs) in [
            (1, 1),
            (1_000, 1),
            (1_001, 5),
            (15_000, 20),
            (30_000, 30),
            (30_001, 60),
            (60_000, 60),
            (61_000, 120),
            (3_600_000, 3600),
            (i64::MAX, 2_147_483_700),
        ] {
            assert_eq!(round_period(ms).as_secs(), secs, "{ms}");
            assert!(thermostat_metrics::store::check_period(round_period(ms)).is_ok());
        }
        assert_eq!(gcd_period(60_000, 300_000), 60_000);
        assert_eq!(gcd_period(20_000, 30_000), 10_000);
        assert_eq!(gcd_period(120_000, 300_000), 60_000);
    }

    #[test]
    fn values_are_written_as_prometheus_does() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.5), "0.5");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(1e-7), "0.0000001");
        assert_eq!(format_value(-2.25), "-2.25");
    }
}
