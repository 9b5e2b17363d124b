//! What the demo reports as it runs ([`Event`]) and how it is printed: one plain line per
//! event, in the order of cause and effect ([`order_by_cause`]); on a terminal the states are
//! coloured and long reasons cut at the terminal's width ([`Style`]), elsewhere (a file, a
//! pipe) every line is whole and plain.

use thermostat_metrics::Timestamp;

/// Why a triggered policy did not act.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// A simple policy waits for the group's cooldown.
    Cooldown,
    /// A scale-in waits for instances to finish warming up.
    WarmUp,
}

/// Something the demo saw happen.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// What the agents measured (every 20 s of the load curve).
    Status {
        /// When.
        at: Timestamp,
        /// Requests per second on the whole group.
        load_rps: f64,
        /// Instances in service.
        in_service: u32,
        /// Desired capacity.
        desired: u32,
        /// Average CPU, in percent.
        cpu_percent: f64,
        /// Median response time, in milliseconds.
        p50_ms: f64,
        /// 99th percentile response time, in milliseconds.
        p99_ms: f64,
    },
    /// An alarm changed state.
    AlarmChanged {
        /// When.
        at: Timestamp,
        /// The alarm.
        alarm: String,
        /// The state before.
        from: String,
        /// The state after.
        to: String,
        /// CloudWatch's reason.
        reason: String,
    },
    /// A scaling activity of a group was recorded.
    Activity {
        /// When it was decided.
        at: Timestamp,
        /// The group.
        group: String,
        /// Desired capacity before.
        old_desired: u32,
        /// Desired capacity after.
        new_desired: u32,
        /// The policy, for alarm-driven activities.
        policy: Option<String>,
        /// The alarm, for alarm-driven activities.
        alarm: Option<String>,
        /// `Successful`, `Failed`, ...
        status: String,
    },
    /// A triggered policy was held back.
    PolicyHeld {
        /// When.
        at: Timestamp,
        /// The group.
        group: String,
        /// The policy.
        policy: String,
        /// The alarm that invoked it.
        alarm: String,
        /// Why.
        hold: Hold,
        /// Until when.
        until: Timestamp,
    },
    /// A notification reached its final status.
    Notification {
        /// When its last attempt was made (else when the alarm changed state).
        at: Timestamp,
        /// The alarm.
        alarm: String,
        /// The action, as configured.
        action: String,
        /// The state the alarm entered.
        new_state: String,
        /// `delivered`, `failed` or `muted`.
        status: String,
    },
}

/// How the lines are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    /// ANSI colours.
    pub colour: bool,
    /// Cut alarm reasons so that each line fits this many columns (a terminal's width);
    /// `None` prints them whole.
    pub width: Option<usize>,
}

impl Style {
    /// Plain and whole: for a file or a pipe.
    pub const PLAIN: Style = Style {
        colour: false,
        width: None,
    };

    /// The style for an output that is a terminal (`is_terminal`) of `columns` columns (the
    /// `COLUMNS` variable or the terminal's own size; unknown: 80), with colours unless
    /// `no_color` (`NO_COLOR` is set). Any other output gets [`Style::PLAIN`].
    pub fn for_output(is_terminal: bool, no_color: bool, columns: Option<usize>) -> Style {
        if !is_terminal {
            return Style::PLAIN;
        }
        Style {
            colour: !no_color,
            width: Some(columns.filter(|c| *c > 0).unwrap_or(80)),
        }
    }
}

/// The fewest characters of a reason a cut line keeps, however narrow the terminal.
const MIN_REASON_CHARS: usize = 20;

/// `"1 instance"`, `"2 instances"`: `n` and the noun, plural unless `n` is 1.
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Puts one step's events in the order of cause and effect: by time to the second (what a
/// line shows), and within one second what was measured first, then alarm state changes,
/// then the policies they invoked (held ones, then activities), then notifications. The sort
/// is stable, so events of one kind keep the order they were found in.
pub fn order_by_cause(events: &mut [Event]) {
    events.sort_by_key(|e| (e.at().as_millis().div_euclid(1000), e.rank()));
}

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const CYAN: &str = "\x1b[36m";
const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// `HH:MM:SS` (UTC) of `t`.
pub fn clock_time(t: Timestamp) -> String {
    let s = t.to_rfc3339();
    s.get(11..19).map_or(s.clone(), str::to_owned)
}

fn paint(colour: bool, code: &str, text: &str) -> String {
    if colour {
        format!("{code}{text}{RESET}")
    } else {
        text.to_owned()
    }
}

fn state_colour(state: &str) -> &'static str {
    match state {
        "ALARM" => RED,
        "OK" => GREEN,
        _ => YELLOW,
    }
}

/// `text` cut to at most `max` characters, ending in "…" when cut; at a space when there is
/// one in the last third, so that words stay whole.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let keep = max.saturating_sub(1);
    let cut: String = text.chars().take(keep).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if cut[..i].chars().count() >= keep * 2 / 3 => cut[..i].trim_end(),
        _ => cut.as_str(),
    };
    format!("{cut}…")
}

fn millis_text(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

impl Event {
    /// When it happened.
    pub fn at(&self) -> Timestamp {
        match self {
            Event::Status { at, .. }
            | Event::AlarmChanged { at, .. }
            | Event::Activity { at, .. }
            | Event::PolicyHeld { at, .. }
            | Event::Notification { at, .. } => *at,
        }
    }

    /// Its place among events of the same second: causes first.
    fn rank(&self) -> u8 {
        match self {
            Event::Status { .. } => 0,
            Event::AlarmChanged { .. } => 1,
            Event::PolicyHeld { .. } => 2,
            Event::Activity { .. } => 3,
            Event::Notification { .. } => 4,
        }
    }

    /// One line (without newline) in `style`.
    pub fn render(&self, style: Style) -> String {
        let colour = style.colour;
        let time = paint(colour, DIM, &clock_time(self.at()));
        let body = match self {
            Event::Status {
                load_rps,
                in_service,
                desired,
                cpu_percent,
                p50_ms,
                p99_ms,
                ..
            } => {
                let per = if *in_service == 0 {
                    String::from("no instance in service")
                } else {
                    format!(
                        "{:.0} req/s per instance",
                        load_rps / f64::from(*in_service)
                    )
                };
                let launching = if desired > in_service {
                    format!(" ({} launching)", desired - in_service)
                } else {
                    String::new()
                };
                paint(
                    colour,
                    DIM,
                    &format!(
                        "load {load_rps:.0} req/s on {}{launching}, {per}: CPU {cpu_percent:.0}%, p50 {}, p99 {}",
                        count(u64::from(*in_service), "instance"),
                        millis_text(*p50_ms),
                        millis_text(*p99_ms)
                    ),
                )
            }
            Event::AlarmChanged {
                alarm,
                from,
                to,
                reason,
                ..
            } => {
                let head = format!("alarm {alarm} {from} -> {to}  ");
                // One event, one line: a reason set by hand may hold line breaks or escapes.
                let reason: String = reason
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                let reason = match style.width {
                    // The time, two spaces and the head take this many columns.
                    Some(width) => shorten(
                        &reason,
                        width
                            .saturating_sub(10 + head.chars().count())
                            .max(MIN_REASON_CHARS),
                    ),
                    None => reason,
                };
                format!(
                    "alarm {} {} -> {}  {reason}",
                    paint(colour, BOLD, alarm),
                    from,
                    paint(colour, state_colour(to), to),
                )
            }
            Event::Activity {
                group,
                old_desired,
                new_desired,
                policy,
                alarm,
                status,
                ..
            } => {
                let direction = if new_desired > old_desired {
                    "scale out"
                } else {
                    "scale in"
                };
                let by = match (policy, alarm) {
                    (Some(p), Some(a)) => format!(" by policy {p} (alarm {a})"),
                    (Some(p), None) => format!(" by policy {p}"),
                    _ => String::new(),
                };
                format!(
                    "group {} {}: desired capacity {old_desired} -> {new_desired}{by}, {status}",
                    paint(colour, BOLD, group),
                    paint(colour, CYAN, direction),
                )
            }
            Event::PolicyHeld {
                group,
                policy,
                alarm,
                hold,
                until,
                ..
            } => {
                let why = match hold {
                    Hold::Cooldown => "waits for the group's cooldown",
                    Hold::WarmUp => "waits for instances to warm up",
                };
                format!(
                    "group {} policy {policy} (alarm {alarm}) {why} until {}",
                    paint(colour, BOLD, group),
                    clock_time(*until)
                )
            }
            Event::Notification {
                alarm,
                action,
                new_state,
                status,
                ..
            } => {
                let status_colour = if status == "delivered" { GREEN } else { RED };
                format!(
                    "notification {} {} to {action}: {}",
                    paint(colour, state_colour(new_state), new_state),
                    paint(colour, BOLD, alarm),
                    paint(colour, status_colour, status)
                )
            }
        };
        format!("{time}  {body}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_have_no_escape_codes_and_coloured_ones_do() {
        let e = Event::AlarmChanged {
            at: Timestamp(1_795_658_400_000 + 42_000),
            alarm: "demo-cpu-high".into(),
            from: "OK".into(),
            to: "ALARM".into(),
            reason: "Threshold Crossed".into(),
        };
        assert_eq!(
            e.render(Style::PLAIN),
            "02:00:42  alarm demo-cpu-high OK -> ALARM  Threshold Crossed"
        );
        let coloured = e.render(Style {
            colour: true,
            width: None,
        });
        assert!(coloured.contains("\x1b[31mALARM\x1b[0m"), "{coloured:?}");
    }

    #[test]
    fn activities_say_which_way_and_why() {
        let e = Event::Activity {
            at: Timestamp(0),
            group: "demo-web".into(),
            old_desired: 6,
            new_desired: 4,
            policy: Some("scale-in".into()),
            alarm: Some("demo-cpu-low".into()),
            status: "Successful".into(),
        };
        assert_eq!(
            e.render(Style::PLAIN),
            "00:00:00  group demo-web scale in: desired capacity 6 -> 4 by policy scale-in (alarm demo-cpu-low), Successful"
        );
        let held = Event::PolicyHeld {
            at: Timestamp(0),
            group: "demo-web".into(),
            policy: "scale-in".into(),
            alarm: "demo-cpu-low".into(),
            hold: Hold::Cooldown,
            until: Timestamp(90_000),
        };
        assert!(
            held.render(Style::PLAIN)
                .ends_with("waits for the group's cooldown until 00:01:30")
        );
    }

    fn alarm(at: i64, reason: &str) -> Event {
        Event::AlarmChanged {
            at: Timestamp(at),
            alarm: "demo-cpu-high".into(),
            from: "OK".into(),
            to: "ALARM".into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn long_reasons_are_shortened_at_a_word() {
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abc", 4), "abc");
        assert_eq!(shorten("one two three four", 12), "one two…");
        assert_eq!(millis_text(1842.0), "1.8 s");
        assert_eq!(millis_text(230.4), "230 ms");
    }

    #[test]
    fn reasons_are_whole_off_a_terminal_and_cut_to_its_width_on_one() {
        let reason = "Threshold Crossed: 3 datapoints [13.28 (26/11/26 12:19:10), 13.02 (26/11/26 12:19:00), 12.9 (26/11/26 12:18:50)] were less than the threshold (25.0). ".repeat(2);
        assert!(reason.chars().count() > 200);
        let e = alarm(0, &reason);
        let plain = Style::for_output(false, false, Some(80));
        assert_eq!(plain, Style::PLAIN);
        assert_eq!(
            e.render(plain),
            format!("00:00:00  alarm demo-cpu-high OK -> ALARM  {reason}")
        );
        let terminal = Style::for_output(true, true, Some(100));
        assert_eq!(
            terminal,
            Style {
                colour: false,
                width: Some(100)
            }
        );
        let line = e.render(terminal);
        assert!(line.chars().count() <= 100, "{line}");
        assert!(line.chars().count() >= 80, "{line}");
        // Cut between words.
        let shown = line
            .split_once("ALARM  ")
            .and_then(|(_, r)| r.strip_suffix('…'))
            .unwrap_or_else(|| panic!("{line}"));
        assert!(reason.starts_with(shown), "{line}");
        assert!(reason[shown.len()..].starts_with(' '), "{line}");
        // Unknown width: 80; a narrow terminal still shows the start of the reason.
        assert!(
            e.render(Style::for_output(true, false, None))
                .contains("\x1b[")
        );
        let narrow = e.render(Style::for_output(true, true, Some(30)));
        assert!(narrow.ends_with("  Threshold Crossed:…"), "{narrow}");
        // Line breaks and escapes in a reason set by hand stay on one line, harmless.
        assert_eq!(
            alarm(0, "by\nhand\x1b[2J").render(Style::PLAIN),
            "00:00:00  alarm demo-cpu-high OK -> ALARM  by hand [2J"
        );
    }

    #[test]
    fn causes_come_before_their_effects_within_a_second() {
        let activity = Event::Activity {
            at: Timestamp(50_000),
            group: "demo-web".into(),
            old_desired: 2,
            new_desired: 6,
            policy: Some("step-out".into()),
            alarm: Some("demo-cpu-high".into()),
            status: "Successful".into(),
        };
        let notification = Event::Notification {
            at: Timestamp(50_400),
            alarm: "demo-cpu-high".into(),
            action: "webhook:demo".into(),
            new_state: "ALARM".into(),
            status: "delivered".into(),
        };
        let earlier = alarm(40_000, "earlier");
        let mut events = vec![
            notification.clone(),
            activity.clone(),
            alarm(50_000, "cause"),
            earlier.clone(),
        ];
        order_by_cause(&mut events);
        assert_eq!(
            events,
            vec![earlier, alarm(50_000, "cause"), activity, notification]
        );
    }

    #[test]
    fn counts_are_singular_for_one() {
        assert_eq!(count(1, "instance"), "1 instance");
        assert_eq!(count(0, "instance"), "0 instances");
        assert_eq!(count(2, "composite alarm"), "2 composite alarms");
        let status = |n: u32| Event::Status {
            at: Timestamp(0),
            load_rps: 80.0,
            in_service: n,
            desired: n,
            cpu_percent: 40.0,
            p50_ms: 20.0,
            p99_ms: 150.0,
        };
        assert!(
            status(1)
                .render(Style::PLAIN)
                .contains("on 1 instance, 80 req/s per instance"),
            "{}",
            status(1).render(Style::PLAIN)
        );
        assert!(
            status(2)
                .render(Style::PLAIN)
                .contains("on 2 instances, 40 req/s")
        );
    }
}
