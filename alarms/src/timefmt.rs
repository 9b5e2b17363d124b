//! Time parsing and CloudWatch's time renderings.

use jiff::tz::TimeZone;
use thermostat_metrics::Timestamp;
use thermostat_metrics::time::TimeError;

fn zoned(ts: Timestamp) -> Option<jiff::Zoned> {
    jiff::Timestamp::from_millisecond(ts.as_millis())
        .ok()
        .map(|t| t.to_zoned(TimeZone::UTC))
}

/// `dd/MM/yy HH:mm:ss` in UTC, as in reason strings (`03/03/26 01:35:00`).
pub fn reason_time(ts: Timestamp) -> String {
    zoned(ts).map_or_else(
        || ts.to_string(),
        |z| z.strftime("%d/%m/%y %H:%M:%S").to_string(),
    )
}

/// `yyyy-MM-dd'T'HH:mm:ss.SSS+0000`, as in reason data JSON.
pub fn json_time(ts: Timestamp) -> String {
    zoned(ts).map_or_else(
        || ts.to_string(),
        |z| z.strftime("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
    )
}

/// `Friday 22 July, 2022 15:57:45 UTC`, as in composite alarm reasons.
pub fn long_time(ts: Timestamp) -> String {
    zoned(ts).map_or_else(
        || ts.to_string(),
        |z| z.strftime("%A %-d %B, %Y %H:%M:%S UTC").to_string(),
    )
}

/// RFC 3339 (`2024-01-01T00:00:00Z`), as in back-test output.
pub fn rfc3339(ts: Timestamp) -> String {
    ts.to_rfc3339()
}

/// Parses an RFC 3339 time, any from `0000-01-01T00:00:00Z` to `9999-12-31T23:59:59.999Z`
/// ([`Timestamp::parse_rfc3339`]).
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    Timestamp::parse_rfc3339(s).ok()
}

/// Parses an RFC 3339 time or an integer scaled by `unit_ms` (1 for Unix milliseconds,
/// 1000 for Unix seconds); `None` for anything else and for times outside years 0000 to
/// 9999 ([`parse_time_checked`] says which).
pub fn parse_time(s: &str, unit_ms: i64) -> Option<Timestamp> {
    parse_time_checked(s, unit_ms).ok()
}

/// [`parse_time`] with the reason of a refusal.
///
/// # Errors
/// [`TimeError::NotRfc3339`] for text that is neither form (its message names RFC 3339 only:
/// callers that accept numbers say so), [`TimeError::OutOfRange`] for a time outside years
/// 0000 to 9999, an integer beyond `i64` included.
pub fn parse_time_checked(s: &str, unit_ms: i64) -> Result<Timestamp, TimeError> {
    let t = s.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        // Only digits: a number too large for an i64 is a time out of range, not a typo.
        let ms = t
            .parse::<i64>()
            .ok()
            .and_then(|n| n.checked_mul(unit_ms))
            .ok_or(TimeError::OutOfRange)?;
        return Timestamp::try_from_millis(ms);
    }
    Timestamp::parse_rfc3339(t)
}

/// Parses an offset such as `0`, `90` (seconds), `90s`, `5m`, `1h30m`, `2d`, into
/// milliseconds.
pub fn parse_offset(s: &str) -> Option<i64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<i64>().ok()?.checked_mul(1000);
    }
    let mut total: i64 = 0;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return None,
        };
        let n: i64 = num.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        num.clear();
    }
    if !num.is_empty() {
        return None;
    }
    Some(total)
}

/// A double as Java prints it (`70.0`, `0.0666851903306472`, `1.0E7`), which is how
/// CloudWatch writes numbers in reasons.
pub fn java_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let a = v.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        let s = format!("{v}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let s = format!("{v:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mant = if mant.contains('.') {
            mant.to_owned()
        } else {
            format!("{mant}.0")
        };
        format!("{mant}E{exp}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renderings() {
        // Reference §3.7 / §7.14: reason and JSON time formats, Java doubles.
        let ts = parse_rfc3339("2026-03-03T01:35:00Z").unwrap();
        assert_eq!(reason_time(ts), "03/03/26 01:35:00");
        assert_eq!(json_time(ts), "2026-03-03T01:35:00.000+0000");
        let ts = parse_rfc3339("2022-07-22T15:57:45Z").unwrap();
        assert_eq!(long_time(ts), "Friday 22 July, 2022 15:57:45 UTC");
        for (v, s) in [
            (6.0, "6.0"),
            (99.50160229693434, "99.50160229693434"),
            (0.0666851903306472, "0.0666851903306472"),
            (0.0, "0.0"),
            (-3.0, "-3.0"),
            (1e7, "1.0E7"),
            (1.5e-5, "1.5E-5"),
        ] {
            assert_eq!(java_double(v), s);
        }
    }

    #[test]
    fn parsing() {
        assert_eq!(parse_time("1000", 1), Some(Timestamp(1000)));
        assert_eq!(parse_time("60", 1000), Some(Timestamp(60_000)));
        assert_eq!(
            parse_time("1970-01-01T00:01:00+01:00", 1),
            Some(Timestamp(-3_540_000))
        );
        assert_eq!(parse_time("yesterday", 1), None);
        assert_eq!(parse_time("-1000", 1), Some(Timestamp(-1000)));
        // Issue 15: every RFC 3339 year up to 9999 is read; beyond what RFC 3339 can write,
        // or beyond i64, is out of range, never an overflow.
        assert_eq!(
            parse_rfc3339("9999-12-31T23:59:59Z"),
            Some(Timestamp(253_402_300_799_000))
        );
        for (s, unit) in [
            ("9223372036854775807", 1),
            ("-9223372036854775808", 1),
            ("9223372036854775807", 1000),
            ("99999999999999999999999", 1),
            ("253402300800000", 1),
        ] {
            assert_eq!(
                parse_time_checked(s, unit),
                Err(TimeError::OutOfRange),
                "{s}"
            );
        }
        assert_eq!(
            parse_time_checked("253402300799999", 1),
            Ok(Timestamp::LATEST)
        );
        assert!(matches!(
            parse_time_checked("-", 1),
            Err(TimeError::NotRfc3339(_))
        ));
        assert_eq!(parse_offset("90"), Some(90_000));
        assert_eq!(parse_offset("1h30m"), Some(5_400_000));
        assert_eq!(parse_offset("10s"), Some(10_000));
        assert_eq!(parse_offset("5x"), None);
        assert_eq!(parse_offset("5m3"), None);
    }
}
