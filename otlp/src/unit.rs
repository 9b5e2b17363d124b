//! OTLP units (UCUM, case-sensitive, as the OpenTelemetry semantic conventions write them) to
//! CloudWatch `StandardUnit`s. Values are never converted: a unit maps only where CloudWatch
//! has the same unit, else the datum's unit is `None`.
//!
//! Decisions (also in `docs/otlp.md`):
//! - `1` (dimensionless: ratios such as `system.cpu.utilization`, 0 to 1) is `None`, not
//!   `Count` and not `Percent`; only `%` is `Percent`.
//! - An annotation alone (`{request}`, `{packet}`) is `Count`, and an annotation per second
//!   (`{request}/s`) or `1/s` is `Count/Second`; an annotation attached to a unit is ignored
//!   (`By{transmitted}` is `Bytes`), as UCUM says.
//! - CloudWatch's `Kilobytes`, `Megabytes`, … do not say whether they are decimal or binary,
//!   so both UCUM prefixes map to them (`kBy` and `KiBy` are `Kilobytes`); the values are
//!   passed on as the sender measured them.

use thermostat_metrics::Unit;

/// The units that map, UCUM spelling first.
const TABLE: &[(&str, Unit)] = &[
    ("s", Unit::Seconds),
    ("ms", Unit::Milliseconds),
    ("us", Unit::Microseconds),
    ("By", Unit::Bytes),
    ("kBy", Unit::Kilobytes),
    ("KiBy", Unit::Kilobytes),
    ("MBy", Unit::Megabytes),
    ("MiBy", Unit::Megabytes),
    ("GBy", Unit::Gigabytes),
    ("GiBy", Unit::Gigabytes),
    ("TBy", Unit::Terabytes),
    ("TiBy", Unit::Terabytes),
    ("bit", Unit::Bits),
    ("kbit", Unit::Kilobits),
    ("Kibit", Unit::Kilobits),
    ("Mbit", Unit::Megabits),
    ("Mibit", Unit::Megabits),
    ("Gbit", Unit::Gigabits),
    ("Gibit", Unit::Gigabits),
    ("Tbit", Unit::Terabits),
    ("Tibit", Unit::Terabits),
    ("%", Unit::Percent),
    ("By/s", Unit::BytesPerSecond),
    ("kBy/s", Unit::KilobytesPerSecond),
    ("KiBy/s", Unit::KilobytesPerSecond),
    ("MBy/s", Unit::MegabytesPerSecond),
    ("MiBy/s", Unit::MegabytesPerSecond),
    ("GBy/s", Unit::GigabytesPerSecond),
    ("GiBy/s", Unit::GigabytesPerSecond),
    ("TBy/s", Unit::TerabytesPerSecond),
    ("TiBy/s", Unit::TerabytesPerSecond),
    ("bit/s", Unit::BitsPerSecond),
    ("kbit/s", Unit::KilobitsPerSecond),
    ("Kibit/s", Unit::KilobitsPerSecond),
    ("Mbit/s", Unit::MegabitsPerSecond),
    ("Mibit/s", Unit::MegabitsPerSecond),
    ("Gbit/s", Unit::GigabitsPerSecond),
    ("Gibit/s", Unit::GigabitsPerSecond),
    ("Tbit/s", Unit::TerabitsPerSecond),
    ("Tibit/s", Unit::TerabitsPerSecond),
    ("1/s", Unit::CountPerSecond),
];

/// Every UCUM unit that maps to a CloudWatch unit other than `None`, with that unit (for the
/// documentation's table and its test).
pub fn table() -> &'static [(&'static str, Unit)] {
    TABLE
}

/// The CloudWatch unit for an OTLP unit: see the module documentation.
pub fn cloudwatch_unit(otlp_unit: &str) -> Unit {
    let (stripped, had_annotation) = strip_annotations(otlp_unit);
    if had_annotation {
        match stripped.as_str() {
            "" | "1" => return Unit::Count,
            "/s" | "1/s" => return Unit::CountPerSecond,
            _ => {}
        }
    }
    TABLE
        .iter()
        .find(|(ucum, _)| *ucum == stripped)
        .map_or(Unit::None, |(_, unit)| *unit)
}

/// The unit without its `{…}` annotations, and whether it had any. An unclosed `{` is kept.
fn strip_annotations(unit: &str) -> (String, bool) {
    let mut out = String::with_capacity(unit.len());
    let mut rest = unit;
    let mut found = false;
    while let Some(open) = rest.find('{') {
        match rest[open..].find('}') {
            Some(close) => {
                out.push_str(&rest[..open]);
                rest = &rest[open + close + 1..];
                found = true;
            }
            None => break,
        }
    }
    out.push_str(rest);
    (out, found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_units_table() {
        for (ucum, unit) in [
            ("ms", Unit::Milliseconds),
            ("s", Unit::Seconds),
            ("us", Unit::Microseconds),
            ("By", Unit::Bytes),
            ("KiBy", Unit::Kilobytes),
            ("kBy", Unit::Kilobytes),
            ("MiBy", Unit::Megabytes),
            ("GiBy", Unit::Gigabytes),
            ("By/s", Unit::BytesPerSecond),
            ("bit", Unit::Bits),
            ("Mbit/s", Unit::MegabitsPerSecond),
            ("%", Unit::Percent),
            ("1", Unit::None),
            ("", Unit::None),
            ("{requests}", Unit::Count),
            ("{request}/s", Unit::CountPerSecond),
            ("1/s", Unit::CountPerSecond),
            ("By{transmitted}", Unit::Bytes),
            ("{a}{b}", Unit::Count),
            ("ns", Unit::None),
            ("min", Unit::None),
            ("Cel", Unit::None),
            ("MS", Unit::None),
            ("{unclosed", Unit::None),
        ] {
            assert_eq!(cloudwatch_unit(ucum), unit, "{ucum:?}");
        }
    }

    #[test]
    fn every_mapped_unit_is_a_cloudwatch_name_the_metrics_core_parses() {
        for (ucum, unit) in table() {
            assert_eq!(cloudwatch_unit(ucum), *unit);
            assert_eq!(unit.as_str().parse::<Unit>(), Ok(*unit));
        }
    }
}
