//! Cron recurrences in a time zone ([`Recurrence`]), the time of a scheduled action
//! (reference §5.10), with the times they occur in a range.
//!
//! Recurrences are 5-field Vixie cron (`minute hour day-of-month month day-of-week`, names
//! such as `MON-FRI` and `JAN`), parsed by `croner`; when both day fields are restricted a
//! day matching either runs, as in cron. Times are wall-clock times in `time_zone` (IANA
//! name, default UTC, from the database bundled into the binary): an occurrence in a
//! daylight-saving gap runs at the first instant after the gap, one in a repeated hour runs
//! once, at the first of the two.

use std::str::FromStr;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use thermostat_metrics::Timestamp;

/// Most occurrences [`Recurrence::occurrences`] (and so `schedule::due`) returns for one
/// action in one call (a guard against a every-minute schedule over a long range).
pub const MAX_OCCURRENCES_PER_CALL: usize = 100_000;

/// A cron recurrence in a time zone (`Recurrence` + `TimeZone`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recurrence {
    /// The cron expression as written.
    pub expression: String,
    /// The IANA time zone name (`UTC` when not given).
    pub time_zone: String,
}

fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
}

/// Parses a 5-field cron expression.
///
/// # Errors
/// The rule broken, naming the expression.
pub fn parse_cron(expression: &str) -> Result<Cron, String> {
    if expression.split_whitespace().count() != 5 {
        return Err(format!(
            "must be a 5-field cron expression \"minute hour day-of-month month day-of-week\" (got {expression:?})"
        ));
    }
    parser()
        .parse(expression)
        .map_err(|e| format!("must be a valid cron expression (got {expression:?}: {e})"))
}

/// Looks up an IANA time zone name in the bundled database.
///
/// # Errors
/// When the name is unknown.
pub fn parse_time_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|_| {
        format!("must be an IANA time zone name such as UTC or Europe/Berlin (got {name:?})")
    })
}

impl Recurrence {
    /// A recurrence, checked.
    ///
    /// # Errors
    /// The rule broken by the expression or the zone.
    pub fn try_new(expression: &str, time_zone: &str) -> Result<Self, String> {
        parse_cron(expression)?;
        parse_time_zone(time_zone)?;
        Ok(Recurrence {
            expression: expression.to_owned(),
            time_zone: time_zone.to_owned(),
        })
    }

    /// Occurrences in `(from, to]`, oldest first, at most [`MAX_OCCURRENCES_PER_CALL`].
    pub fn occurrences(&self, from: Timestamp, to: Timestamp) -> Vec<Timestamp> {
        let (Ok(cron), Ok(time_zone)) = (
            parse_cron(&self.expression),
            parse_time_zone(&self.time_zone),
        ) else {
            return Vec::new();
        };
        let Ok(start) = jiff::Timestamp::from_millisecond(from.as_millis()) else {
            return Vec::new();
        };
        let mut cursor = start.to_zoned(time_zone);
        let mut out = Vec::new();
        while out.len() < MAX_OCCURRENCES_PER_CALL {
            let Ok(next) = cron.find_next_occurrence(&cursor, false) else {
                break;
            };
            let t = Timestamp::from_millis(next.timestamp().as_millisecond());
            if t > to {
                break;
            }
            if t > from && out.last().is_none_or(|l| *l < t) {
                out.push(t);
            }
            cursor = next;
        }
        out
    }
}

impl FromStr for Recurrence {
    type Err = String;

    /// A recurrence in UTC.
    fn from_str(s: &str) -> Result<Self, String> {
        Recurrence::try_new(s, "UTC")
    }
}
