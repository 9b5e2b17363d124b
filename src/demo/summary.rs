//! What the demo reports as it runs ([`Event`]) and how it is printed: one plain line per
//! event, coloured when the output is a terminal.

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

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
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

    /// One line (without newline), with ANSI colours when `colour`.
    pub fn render(&self, colour: bool) -> String {
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
                        "load {load_rps:.0} req/s on {in_service} instances{launching}, {per}: CPU {cpu_percent:.0}%, p50 {}, p99 {}",
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
            } => format!(
                "alarm {} {} -> {}  {}",
                paint(colour, BOLD, alarm),
                from,
                paint(colour, state_colour(to), to),
                shorten(reason, 160)
            ),
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
            e.render(false),
            "02:00:42  alarm demo-cpu-high OK -> ALARM  Threshold Crossed"
        );
        let coloured = e.render(true);
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
            e.render(false),
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
            held.render(false)
                .ends_with("waits for the group's cooldown until 00:01:30")
        );
    }

    #[test]
    fn long_reasons_are_shortened() {
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abc", 4), "abc");
        assert_eq!(millis_text(1842.0), "1.8 s");
        assert_eq!(millis_text(230.4), "230 ms");
    }
}
