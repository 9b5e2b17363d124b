//! Mute rules: when a rule's window is open for an alarm ([`muted_by`]), with its cron
//! schedule ([`CronSchedule`], parsed and evaluated by `croner`) and alarm name patterns
//! ([`glob_match`]).

use std::fmt;
use std::str::FromStr;

use croner::Cron;
use croner::errors::CronError;
use croner::parser::{CronParser, Seconds, Year};
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use thermostat_metrics::Timestamp;

use super::{MuteRule, NotificationSettings};

/// The first mute rule whose window is open at `now` for `alarm_name`.
pub fn muted_by<'a>(
    settings: &'a NotificationSettings,
    alarm_name: &str,
    now: Timestamp,
) -> Option<&'a MuteRule> {
    settings
        .mute_rules
        .iter()
        .find(|r| r.matches_alarm(alarm_name) && r.is_active(now))
}

impl MuteRule {
    /// Whether one of the patterns matches the alarm (or, for an instance
    /// `name[Dim=value]`, its alarm name).
    pub fn matches_alarm(&self, alarm_name: &str) -> bool {
        let base = alarm_name.split_once('[').map_or(alarm_name, |(b, _)| b);
        self.alarms
            .iter()
            .any(|p| glob_match(p, alarm_name) || glob_match(p, base))
    }

    /// Whether a window of this rule is open at `now`: within `[starts_at, ends_at)`, and,
    /// with a schedule, less than `duration` after a time the schedule fires.
    pub fn is_active(&self, now: Timestamp) -> bool {
        if self.starts_at.is_some_and(|s| now < s) || self.ends_at.is_some_and(|e| now >= e) {
            return false;
        }
        let Some(schedule) = &self.schedule else {
            return true;
        };
        let Ok(tz) = time_zone(&self.time_zone) else {
            return false;
        };
        let window_ms = i64::try_from(self.duration.as_millis()).unwrap_or(i64::MAX);
        schedule
            .last_fire(&tz, now, now.sub_millis(window_ms))
            .is_some()
    }
}

/// Looks up an IANA time zone (`UTC`, `Europe/Berlin`) in the compiled-in database.
///
/// # Errors
/// The zone is unknown.
pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    if name == "UTC" {
        return Ok(TimeZone::UTC);
    }
    TimeZone::get(name).map_err(|_| {
        format!("must be an IANA time zone such as UTC or Europe/Berlin (got {name:?})")
    })
}

/// Matches `text` against a pattern where `*` is any run of characters and `?` one.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A 5-field cron schedule (`minute hour day-of-month month day-of-week`), as in crontab:
/// `*`, lists `1,2`, ranges `1-5`, steps `*/15` and `10-50/10`, month and weekday names
/// (`JAN`, `MON-FRI`), Sunday as 0 or 7, `?` as `*`, and the macros `@hourly`, `@daily`,
/// `@weekly`, `@monthly`, `@yearly`. When both day fields are restricted, a day matches
/// either (Vixie cron).
///
/// Parsed and evaluated by `croner`, as the scaler's scheduled actions are
/// (`thermostat_scaler::schedule`); `croner` also accepts its extensions (`L`, `W`, `#`
/// and a leading `+` in the day fields, names in any field).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CronSchedule {
    text: String,
    cron: Cron,
    /// Whether the schedule fires at all (`0 0 31 2 *` never does): `croner` would search
    /// back to year 1 on every call to find that out.
    fires: bool,
}

impl TryFrom<String> for CronSchedule {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<CronSchedule> for String {
    fn from(c: CronSchedule) -> String {
        c.text
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The five fields, in order, with their numeric ranges, for error messages.
const CRON_FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

/// `croner`'s parser for mute-rule schedules. `sloppy_ranges` keeps `5/20` (from 5 to the
/// maximum, every 20). `dom_and_dow` is set when a day field starts with `*` or `?`: as in
/// crontab such a field (`*/2`) does not restrict the day, so a day must match both fields,
/// where `croner` counts only a bare `*` as unrestricted.
fn cron_parser(dom_and_dow: bool) -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .sloppy_ranges(true)
        .dom_and_dow(dom_and_dow)
        .build()
}

/// The message for a schedule `croner` refuses, naming the field and, when one item of it
/// is refused alone, the item: the first that is refused with every other field `*`.
fn cron_error(parser: &CronParser, fields: &[&str], error: &CronError, text: &str) -> String {
    let refused = |i: usize, item: &str| {
        let probe: Vec<&str> = (0..fields.len())
            .map(|j| if i == j { item } else { "*" })
            .collect();
        parser.parse(&probe.join(" ")).err()
    };
    let detail = |e: &CronError| match e {
        CronError::ComponentError(m)
        | CronError::InvalidPattern(m)
        | CronError::IllegalCharacters(m) => m.clone(),
        other => other.to_string(),
    };
    let Some((i, (name, min, max))) = (0..fields.len())
        .zip(CRON_FIELDS)
        .find(|(i, _)| refused(*i, fields[*i]).is_some())
    else {
        return format!(
            "must be a valid cron schedule: {} (got {text:?})",
            detail(error)
        );
    };
    let what = match fields[i]
        .split(',')
        .find_map(|item| refused(i, item).map(|e| (item, e)))
    {
        Some((item, _)) if item.parse::<u32>().is_ok() => {
            format!("{item:?} is not a value between {min} and {max}")
        }
        Some((item, e)) => format!("{item:?}: {}", detail(&e)),
        None => detail(error),
    };
    format!("must be a valid cron schedule: {name}: {what} (got {text:?})")
}

impl FromStr for CronSchedule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let text = s.trim();
        let expanded = match text {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        // `?` is `*` in every field (croner takes it in the day fields only).
        let expanded = expanded.replace('?', "*");
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [_, _, day_of_month, _, day_of_week] = fields.as_slice() else {
            return Err(format!(
                "must be a cron schedule with 5 fields: minute hour day-of-month month day-of-week (got {text:?})"
            ));
        };
        let starred = |f: &str| f.starts_with('*');
        let parser = cron_parser(starred(day_of_month) || starred(day_of_week));
        let cron = parser
            .parse(&expanded)
            .map_err(|e| cron_error(&parser, &fields, &e, text))?;
        let fires = cron
            .find_next_occurrence(&jiff::Timestamp::UNIX_EPOCH.to_zoned(TimeZone::UTC), false)
            .is_ok();
        Ok(CronSchedule {
            text: text.to_owned(),
            cron,
            fires,
        })
    }
}

impl CronSchedule {
    /// Whether the schedule fires at the (civil) minute of `dt`.
    pub fn matches(&self, dt: DateTime) -> bool {
        let Ok(minute) = DateTime::new(
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            0,
            0,
        )
        .and_then(|m| m.to_zoned(TimeZone::UTC)) else {
            return false;
        };
        self.cron.is_time_matching(&minute).unwrap_or(false)
    }

    /// The latest time at or before `now` and after `after` at which the schedule fires in
    /// `tz`. Daylight-saving changes are handled by `croner`, as for scheduled actions: a
    /// time in a gap fires at the first instant after the gap, a time in a repeated hour
    /// once (a fixed time) or on both passes (a step or wildcard in the minute or hour).
    pub fn last_fire(&self, tz: &TimeZone, now: Timestamp, after: Timestamp) -> Option<Timestamp> {
        if !self.fires {
            return None;
        }
        let now = jiff::Timestamp::from_millisecond(now.as_millis())
            .ok()?
            .to_zoned(tz.clone());
        let fire = self.cron.find_previous_occurrence(&now, true).ok()?;
        let at = Timestamp::from_millis(fire.timestamp().as_millisecond());
        (at > after).then_some(at)
    }
}
