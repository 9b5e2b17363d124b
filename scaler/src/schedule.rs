//! Scheduled actions (reference §5.10): start and end times around a cron
//! [`Recurrence`] (defined in `recurrence.rs`, where the cron and time-zone rules are),
//! and [`due`], which lists the occurrences in a time range.

use thermostat_metrics::Timestamp;

use crate::model::{ScalingGroup, ScheduledAction};
pub use crate::recurrence::{MAX_OCCURRENCES_PER_CALL, Recurrence, parse_cron, parse_time_zone};

/// Occurrences of one action in `(from, to]`, oldest first.
pub fn occurrences(action: &ScheduledAction, from: Timestamp, to: Timestamp) -> Vec<Timestamp> {
    let mut out = Vec::new();
    if let Some(start) = action
        .start_time
        .filter(|start| *start > from && *start <= to)
    {
        out.push(start);
    }
    if let Some(recurrence) = &action.recurrence {
        let after = match action.start_time {
            // Occurrences at or before the start time do not count (the start itself was
            // pushed above).
            Some(start) if start > from => start,
            _ => from,
        };
        let until = action.end_time.map_or(to, |end| end.min(to));
        if until > after {
            out.extend(recurrence.occurrences(after, until));
        }
    }
    if let Some(end) = action.end_time {
        out.retain(|t| *t <= end);
    }
    out.sort();
    out.dedup();
    out
}

/// The scheduled actions of `group` due in `(from_exclusive, to_inclusive]`, as
/// `(occurrence, action)` in time order (ties in file order, as Auto Scaling orders the
/// actions of one group).
pub fn due(
    group: &ScalingGroup,
    from_exclusive: Timestamp,
    to_inclusive: Timestamp,
) -> Vec<(Timestamp, &ScheduledAction)> {
    let mut out: Vec<(Timestamp, usize, &ScheduledAction)> = Vec::new();
    for (i, action) in group.scheduled_actions.iter().enumerate() {
        for t in occurrences(action, from_exclusive, to_inclusive) {
            out.push((t, i, action));
        }
    }
    out.sort_by_key(|(t, i, _)| (*t, *i));
    out.into_iter().map(|(t, _, action)| (t, action)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        thermostat_alarms::timefmt::parse_rfc3339(s).unwrap()
    }

    fn action(
        rec: Option<(&str, &str)>,
        start: Option<&str>,
        end: Option<&str>,
    ) -> ScheduledAction {
        ScheduledAction {
            name: "a".into(),
            recurrence: rec.map(|(e, z)| Recurrence::try_new(e, z).unwrap()),
            start_time: start.map(ts),
            end_time: end.map(ts),
            min_size: None,
            max_size: None,
            desired_capacity: Some(3),
        }
    }

    #[test]
    fn weekday_mornings_in_berlin_follow_daylight_saving() {
        // Reference §5.10: TimeZone is DST-aware. 08:00 in Berlin is 07:00Z in winter
        // (CET) and 06:00Z in summer (CEST); DST starts on Sunday 2026-03-29.
        let a = action(Some(("0 8 * * MON-FRI", "Europe/Berlin")), None, None);
        let got = occurrences(&a, ts("2026-03-26T00:00:00Z"), ts("2026-03-31T00:00:00Z"));
        assert_eq!(
            got,
            vec![
                ts("2026-03-26T07:00:00Z"), // Thursday, CET
                ts("2026-03-27T07:00:00Z"), // Friday, CET
                ts("2026-03-30T06:00:00Z"), // Monday, CEST
            ]
        );
    }

    #[test]
    fn the_range_is_open_at_the_start_and_closed_at_the_end() {
        let a = action(Some(("*/15 * * * *", "UTC")), None, None);
        let got = occurrences(&a, ts("2026-01-01T00:00:00Z"), ts("2026-01-01T00:30:00Z"));
        assert_eq!(
            got,
            vec![ts("2026-01-01T00:15:00Z"), ts("2026-01-01T00:30:00Z")]
        );
    }

    #[test]
    fn start_and_end_times_bound_a_recurrence() {
        // Reference §5.10: with Recurrence + StartTime the action runs at StartTime and
        // then on the schedule; after EndTime it stops.
        let a = action(
            Some(("0 * * * *", "UTC")),
            Some("2026-01-01T01:30:00Z"),
            Some("2026-01-01T03:00:00Z"),
        );
        let got = occurrences(&a, ts("2026-01-01T00:00:00Z"), ts("2026-01-01T06:00:00Z"));
        assert_eq!(
            got,
            vec![
                ts("2026-01-01T01:30:00Z"),
                ts("2026-01-01T02:00:00Z"),
                ts("2026-01-01T03:00:00Z"),
            ]
        );
        // A one-time action runs once, at its start time.
        let once = action(None, Some("2026-01-01T01:30:00Z"), None);
        assert_eq!(
            occurrences(
                &once,
                ts("2026-01-01T00:00:00Z"),
                ts("2026-01-02T00:00:00Z")
            ),
            vec![ts("2026-01-01T01:30:00Z")]
        );
        assert!(
            occurrences(
                &once,
                ts("2026-01-01T01:30:00Z"),
                ts("2026-01-02T00:00:00Z")
            )
            .is_empty()
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_rejected() {
        assert!(parse_cron("0 8 * * MON-FRI").is_ok());
        assert!(
            parse_cron("0 0 8 * * MON-FRI").is_err(),
            "seconds are not allowed"
        );
        assert!(parse_cron("61 * * * *").is_err());
        assert!(parse_cron("every day").is_err());
        assert!(parse_time_zone("Europe/Berlin").is_ok());
        assert!(parse_time_zone("Mars/Olympus").is_err());
    }
}
