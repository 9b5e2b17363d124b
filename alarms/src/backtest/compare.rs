//! Rule diffs: two back-tests of the same data (an old rule set and a new one) compared alarm
//! by alarm (`thermostat backtest --compare OLD_DIR`).
//!
//! A transition is identified by its tick and its two states (its reason names the threshold
//! and the datapoints, so it differs whenever a threshold does; it is shown, not compared). An
//! action invocation is identified by its tick, the action as written, the state whose list
//! it comes from and whether it is a re-invocation; invocations are compared as multisets,
//! so an action listed twice and run twice in one set but once in the other counts once.

use serde::Serialize;
use thermostat_metrics::Timestamp;

use super::{AlarmOutcome, BacktestResult};
use crate::model::StateValue;
use crate::state::{ActionInvocation, Transition};
use crate::timefmt;

/// Which rule set an alarm (or per-series instance) is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Both sets define it.
    Both,
    /// Only the old set (`--compare`).
    Old,
    /// Only the new set (`--config`).
    New,
}

/// How one alarm's replays differ.
#[derive(Clone, Debug, PartialEq)]
pub struct AlarmDiff {
    /// The alarm or instance name.
    pub name: String,
    /// Which set has it.
    pub presence: Presence,
    /// Its state after the old replay (`None` when only the new set has it).
    pub old_final_state: Option<StateValue>,
    /// Its state after the new replay.
    pub new_final_state: Option<StateValue>,
    /// Transitions only the old set makes, oldest first.
    pub only_old: Vec<Transition>,
    /// Transitions only the new set makes, oldest first.
    pub only_new: Vec<Transition>,
    /// Action invocations only the old set makes, with their ticks, oldest first.
    pub actions_only_old: Vec<(Timestamp, ActionInvocation)>,
    /// Action invocations only the new set makes.
    pub actions_only_new: Vec<(Timestamp, ActionInvocation)>,
}

impl AlarmDiff {
    fn is_empty(&self) -> bool {
        self.presence == Presence::Both
            && self.old_final_state == self.new_final_state
            && self.only_old.is_empty()
            && self.only_new.is_empty()
            && self.actions_only_old.is_empty()
            && self.actions_only_new.is_empty()
    }
}

/// Two back-tests compared: every alarm whose replays differ (in the new set's order, then
/// the alarms only the old set has, in its order).
#[derive(Clone, Debug, PartialEq)]
pub struct BacktestDiff {
    /// Ticks the old replay evaluated.
    pub old_evaluations: usize,
    /// Ticks the new replay evaluated.
    pub new_evaluations: usize,
    /// The alarms that differ; empty when the two sets behave the same on the data.
    pub alarms: Vec<AlarmDiff>,
}

impl BacktestDiff {
    /// Whether the two replays made the same transitions and actions and ended in the same
    /// states.
    pub fn is_identical(&self) -> bool {
        self.alarms.is_empty()
    }
}

/// What identifies a transition in a diff.
fn transition_id(t: &Transition) -> (Timestamp, String, String) {
    (
        t.timestamp,
        t.old_state.to_string(),
        t.new_state.to_string(),
    )
}

/// What identifies an action invocation in a diff.
fn action_id((t, a): &(Timestamp, ActionInvocation)) -> (Timestamp, String, String, bool) {
    (*t, a.action.as_config_str(), a.state.to_string(), a.repeat)
}

/// The items of `a` not matched one for one in `b` (multiset difference), in `a`'s order.
fn only_in<T: Clone, K: Ord>(a: &[T], b: &[T], id: impl Fn(&T) -> K) -> Vec<T> {
    let mut left: std::collections::BTreeMap<K, usize> = Default::default();
    for x in b {
        *left.entry(id(x)).or_default() += 1;
    }
    a.iter()
        .filter(|x| match left.get_mut(&id(x)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .cloned()
        .collect()
}

fn diff_one(name: &str, old: Option<&AlarmOutcome>, new: Option<&AlarmOutcome>) -> AlarmDiff {
    let none = AlarmOutcome {
        name: name.to_owned(),
        final_state: StateValue::InsufficientData,
        final_reason: String::new(),
        series: None,
        data_rows: None,
        transitions: Vec::new(),
        actions: Vec::new(),
    };
    let (o, n) = (old.unwrap_or(&none), new.unwrap_or(&none));
    AlarmDiff {
        name: name.to_owned(),
        presence: match (old, new) {
            (Some(_), None) => Presence::Old,
            (None, Some(_)) => Presence::New,
            _ => Presence::Both,
        },
        old_final_state: old.map(|a| a.final_state),
        new_final_state: new.map(|a| a.final_state),
        only_old: only_in(&o.transitions, &n.transitions, transition_id),
        only_new: only_in(&n.transitions, &o.transitions, transition_id),
        actions_only_old: only_in(&o.actions, &n.actions, action_id),
        actions_only_new: only_in(&n.actions, &o.actions, action_id),
    }
}

/// Compares the replays of an old and a new rule set over the same data: per alarm (or
/// per-series instance, by name), the transitions and action invocations only one of them
/// makes, and final states that differ. Alarms that behave the same are left out.
pub fn compare(old: &BacktestResult, new: &BacktestResult) -> BacktestDiff {
    let find = |r: &'_ BacktestResult, name: &str| -> Option<usize> {
        r.alarms.iter().position(|a| a.name == name)
    };
    let mut alarms = Vec::new();
    for n in &new.alarms {
        let o = find(old, &n.name).map(|i| &old.alarms[i]);
        alarms.push(diff_one(&n.name, o, Some(n)));
    }
    for o in old.alarms.iter().filter(|o| find(new, &o.name).is_none()) {
        alarms.push(diff_one(&o.name, Some(o), None));
    }
    alarms.retain(|d| !d.is_empty());
    BacktestDiff {
        old_evaluations: old.evaluations,
        new_evaluations: new.evaluations,
        alarms,
    }
}

/// `notification` or `scaling`.
fn kind(a: &ActionInvocation) -> &'static str {
    if a.action.is_scaling() {
        "scaling"
    } else {
        "notification"
    }
}

#[derive(Serialize)]
struct JsonTransition<'a> {
    timestamp: String,
    old_state: StateValue,
    new_state: StateValue,
    reason: &'a str,
}

#[derive(Serialize)]
struct JsonAction {
    timestamp: String,
    kind: &'static str,
    action: String,
    state: StateValue,
    repeat: bool,
}

#[derive(Serialize)]
struct JsonAlarmDiff<'a> {
    name: &'a str,
    #[serde(rename = "in")]
    presence: Presence,
    old_final_state: Option<StateValue>,
    new_final_state: Option<StateValue>,
    transitions_only_in_old: Vec<JsonTransition<'a>>,
    transitions_only_in_new: Vec<JsonTransition<'a>>,
    actions_only_in_old: Vec<JsonAction>,
    actions_only_in_new: Vec<JsonAction>,
}

#[derive(Serialize)]
struct JsonDiff<'a> {
    identical: bool,
    old_evaluations: usize,
    new_evaluations: usize,
    alarms: Vec<JsonAlarmDiff<'a>>,
}

fn json_transitions(ts: &[Transition]) -> Vec<JsonTransition<'_>> {
    ts.iter()
        .map(|t| JsonTransition {
            timestamp: timefmt::rfc3339(t.timestamp),
            old_state: t.old_state,
            new_state: t.new_state,
            reason: &t.reason,
        })
        .collect()
}

fn json_actions(acts: &[(Timestamp, ActionInvocation)]) -> Vec<JsonAction> {
    acts.iter()
        .map(|(t, a)| JsonAction {
            timestamp: timefmt::rfc3339(*t),
            kind: kind(a),
            action: a.action.as_config_str(),
            state: a.state,
            repeat: a.repeat,
        })
        .collect()
}

/// `--compare --format json`: `{"identical", "old_evaluations", "new_evaluations",
/// "alarms": [{"name", "in": "both"|"old"|"new", "old_final_state", "new_final_state"
/// (`null` when the set lacks the alarm), "transitions_only_in_old",
/// "transitions_only_in_new": [{"timestamp", "old_state", "new_state", "reason"}],
/// "actions_only_in_old", "actions_only_in_new": [{"timestamp", "kind":
/// "notification"|"scaling", "action" (as written), "state", "repeat"}]}]}`.
pub fn render_diff_json(d: &BacktestDiff) -> String {
    let doc = JsonDiff {
        identical: d.is_identical(),
        old_evaluations: d.old_evaluations,
        new_evaluations: d.new_evaluations,
        alarms: d
            .alarms
            .iter()
            .map(|a| JsonAlarmDiff {
                name: &a.name,
                presence: a.presence,
                old_final_state: a.old_final_state,
                new_final_state: a.new_final_state,
                transitions_only_in_old: json_transitions(&a.only_old),
                transitions_only_in_new: json_transitions(&a.only_new),
                actions_only_in_old: json_actions(&a.actions_only_old),
                actions_only_in_new: json_actions(&a.actions_only_new),
            })
            .collect(),
    };
    serde_json::to_string(&doc).unwrap_or_default()
}

/// One line of the text diff.
enum Line<'a> {
    Transition(char, &'a Transition),
    Action(char, Timestamp, &'a ActionInvocation),
}

impl Line<'_> {
    /// By time, transitions before the actions they caused.
    fn order(&self) -> (Timestamp, u8) {
        match self {
            Line::Transition(_, t) => (t.timestamp, 0),
            Line::Action(_, t, _) => (*t, 1),
        }
    }
}

/// A run of re-invocations of one scaling action, printed as one line.
struct Run {
    sign: char,
    first: Timestamp,
    last: Timestamp,
    count: usize,
    invocation: String,
}

/// `--compare --format text`: `identical: …` or, per alarm that differs, its final states and
/// a line per transition or action only one side makes, `-` for the old set and `+` for the
/// new one (as in a unified diff); the once-a-minute re-invocations of a scaling action while
/// in a state are one line per run (`first to last … (N repeats)`).
pub fn render_diff_text(d: &BacktestDiff) -> String {
    if d.is_identical() {
        return format!(
            "identical: the old and the new rules make the same transitions and actions ({})\n",
            super::count(d.new_evaluations, "evaluation", "evaluations")
        );
    }
    let mut s = format!(
        "{} ({} old, {} new; - old rules, + new rules)\n",
        super::count(d.alarms.len(), "alarm differs", "alarms differ"),
        super::count(d.old_evaluations, "evaluation", "evaluations"),
        super::count(d.new_evaluations, "evaluation", "evaluations"),
    );
    for a in &d.alarms {
        let heading = match (a.old_final_state, a.new_final_state) {
            (Some(o), Some(n)) => format!("ends {o} with the old rules, {n} with the new"),
            (Some(o), None) => format!("only in the old rules (ends {o})"),
            (None, Some(n)) => format!("only in the new rules (ends {n})"),
            (None, None) => String::new(),
        };
        s.push_str(&format!("\n{}: {heading}\n", a.name));
        let mut lines: Vec<Line<'_>> = Vec::new();
        for (sign, ts) in [('-', &a.only_old), ('+', &a.only_new)] {
            lines.extend(ts.iter().map(|t| Line::Transition(sign, t)));
        }
        for (sign, acts) in [('-', &a.actions_only_old), ('+', &a.actions_only_new)] {
            lines.extend(acts.iter().map(|(t, inv)| Line::Action(sign, *t, inv)));
        }
        // Stable: at the same time and kind, the old side first.
        lines.sort_by_key(Line::order);
        // Printed lines, with the open runs of repeats by (sign, invocation).
        let mut out: Vec<Result<String, Run>> = Vec::new();
        let mut open: std::collections::HashMap<(char, String), usize> = Default::default();
        for line in lines {
            match line {
                Line::Transition(sign, t) => {
                    // A transition of a side ends its runs.
                    open.retain(|(s, _), _| *s != sign);
                    out.push(Ok(format!(
                        "{sign} {}  {} -> {}  {}",
                        timefmt::rfc3339(t.timestamp),
                        t.old_state,
                        t.new_state,
                        t.reason
                    )));
                }
                Line::Action(sign, t, inv) => {
                    let invocation =
                        format!("{} action on {}: {}", kind(inv), inv.state, inv.action);
                    if !inv.repeat {
                        out.push(Ok(format!("{sign} {}  {invocation}", timefmt::rfc3339(t))));
                        continue;
                    }
                    let key = (sign, invocation);
                    if let Some(Err(run)) = open.get(&key).and_then(|&i| out.get_mut(i)) {
                        run.last = t;
                        run.count += 1;
                        continue;
                    }
                    open.insert(key.clone(), out.len());
                    out.push(Err(Run {
                        sign,
                        first: t,
                        last: t,
                        count: 1,
                        invocation: key.1,
                    }));
                }
            }
        }
        for line in out {
            let text = match line {
                Ok(text) => text,
                Err(r) if r.count == 1 => format!(
                    "{} {}  {} (repeat)",
                    r.sign,
                    timefmt::rfc3339(r.first),
                    r.invocation
                ),
                Err(r) => format!(
                    "{} {} to {}  {} ({} repeats)",
                    r.sign,
                    timefmt::rfc3339(r.first),
                    timefmt::rfc3339(r.last),
                    r.invocation,
                    r.count
                ),
            };
            s.push_str("  ");
            s.push_str(&text);
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backtest::{backtest, store_from};
    use thermostat_metrics::{SeriesKey, Unit};

    fn set(threshold: f64, extra: &str) -> crate::model::AlarmSet {
        let yaml = format!(
            "alarms:\n  - {{name: cpu, namespace: App, metric_name: CPU, statistic: Maximum, period_seconds: 60, evaluation_periods: 1, threshold: {threshold}, comparison_operator: GreaterThanThreshold, alarm_actions: ['arn:aws:sns:us-east-1:123456789012:ops', 'policy:web/out']}}\n{extra}"
        );
        crate::validate::validate(&[("c.yaml", yaml.as_str())]).unwrap()
    }

    /// Minutes 0..5 at 50, 60, 80, 60, 50: over 70 at minute 2 only, over 55 at 1..3.
    fn replay(set: &crate::model::AlarmSet) -> BacktestResult {
        let key = SeriesKey::new("App", "CPU", vec![]);
        let values = [50.0, 60.0, 80.0, 60.0, 50.0];
        let store = store_from(
            set,
            values.iter().enumerate().map(|(m, v)| {
                (
                    key.clone(),
                    Timestamp(m as i64 * 60_000 + 5_000),
                    Unit::None,
                    std::slice::from_ref(v),
                )
            }),
        );
        backtest(set, &store, Timestamp(60_000), Timestamp(360_000), None).unwrap()
    }

    #[test]
    fn identical_sets_make_an_empty_diff() {
        let r = replay(&set(70.0, ""));
        let d = compare(&r, &r.clone());
        assert!(d.is_identical(), "{d:?}");
        assert_eq!(
            render_diff_text(&d),
            "identical: the old and the new rules make the same transitions and actions (6 evaluations)\n"
        );
        assert_eq!(
            render_diff_json(&d),
            r#"{"identical":true,"old_evaluations":6,"new_evaluations":6,"alarms":[]}"#
        );
    }

    #[test]
    fn a_lower_threshold_makes_an_extra_transition_and_its_actions() {
        let old = replay(&set(70.0, ""));
        let new = replay(&set(55.0, ""));
        let d = compare(&old, &new);
        assert_eq!(d.alarms.len(), 1, "{d:?}");
        let a = &d.alarms[0];
        assert_eq!(a.presence, Presence::Both);
        // Old: ALARM at 00:03 (minute 2's point), OK at 00:04. New: ALARM at 00:02 (minute
        // 1's 60 > 55), OK at 00:05. The OK→… transitions at 00:01 are the same.
        let ids = |ts: &[Transition]| {
            ts.iter()
                .map(|t| format!("{} {}", timefmt::rfc3339(t.timestamp), t.new_state))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(&a.only_old),
            ["1970-01-01T00:03:00Z ALARM", "1970-01-01T00:04:00Z OK"]
        );
        assert_eq!(
            ids(&a.only_new),
            ["1970-01-01T00:02:00Z ALARM", "1970-01-01T00:05:00Z OK"]
        );
        // Both actions on ALARM moved from 00:03 to 00:02; the scaling one is re-invoked every
        // minute while in ALARM (00:04 in the new set only: old leaves ALARM at 00:04).
        let acts = |v: &[(Timestamp, ActionInvocation)]| {
            v.iter()
                .map(|(t, a)| format!("{} {} {}", timefmt::rfc3339(*t), a.action, a.repeat))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            acts(&a.actions_only_old),
            [
                "1970-01-01T00:03:00Z arn:aws:sns:us-east-1:123456789012:ops false",
                "1970-01-01T00:03:00Z policy:web/out false",
            ]
        );
        assert_eq!(
            acts(&a.actions_only_new),
            [
                "1970-01-01T00:02:00Z arn:aws:sns:us-east-1:123456789012:ops false",
                "1970-01-01T00:02:00Z policy:web/out false",
                "1970-01-01T00:03:00Z policy:web/out true",
                "1970-01-01T00:04:00Z policy:web/out true",
            ]
        );
        let text = render_diff_text(&d);
        assert!(
            text.starts_with("1 alarm differs (6 evaluations old, 6 evaluations new; - old rules, + new rules)\n\ncpu: ends OK with the old rules, OK with the new\n  + 1970-01-01T00:02:00Z  OK -> ALARM  "),
            "{text}"
        );
        assert!(
            text.contains("\n  + 1970-01-01T00:02:00Z  scaling action on ALARM: policy:web/out\n"),
            "{text}"
        );
        assert!(
            text.contains("\n  - 1970-01-01T00:03:00Z  notification action on ALARM: arn:aws:sns:us-east-1:123456789012:ops\n"),
            "{text}"
        );
        // The re-invocations while in ALARM: one line for the run.
        assert!(
            text.contains("\n  + 1970-01-01T00:03:00Z to 1970-01-01T00:04:00Z  scaling action on ALARM: policy:web/out (2 repeats)\n"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&render_diff_json(&d)).unwrap();
        assert_eq!(json["identical"], false);
        assert_eq!(json["alarms"][0]["in"], "both");
        assert_eq!(
            json["alarms"][0]["transitions_only_in_new"][0]["new_state"],
            "ALARM"
        );
        assert_eq!(
            json["alarms"][0]["actions_only_in_new"][1],
            serde_json::json!({"timestamp": "1970-01-01T00:02:00Z", "kind": "scaling", "action": "policy:web/out", "state": "ALARM", "repeat": false})
        );
    }

    #[test]
    fn an_alarm_in_one_set_only_is_listed_with_its_side() {
        let extra = "  - {name: mem, namespace: App, metric_name: CPU, statistic: Average, period_seconds: 60, evaluation_periods: 1, threshold: 10, comparison_operator: GreaterThanThreshold}\n";
        let old = replay(&set(70.0, ""));
        let new = replay(&set(70.0, extra));
        let d = compare(&old, &new);
        assert_eq!(d.alarms.len(), 1, "{d:?}");
        let a = &d.alarms[0];
        assert_eq!((a.name.as_str(), a.presence), ("mem", Presence::New));
        assert_eq!(
            (a.old_final_state, a.new_final_state),
            (None, Some(StateValue::Alarm))
        );
        assert!(a.only_old.is_empty());
        assert_eq!(a.only_new.len(), 1);
        // The other way round: only in the old set.
        let d = compare(&new, &old);
        assert_eq!(d.alarms[0].presence, Presence::Old);
        assert_eq!(d.alarms[0].only_old.len(), 1);
        let text = render_diff_text(&d);
        assert!(
            text.contains("\nmem: only in the old rules (ends ALARM)\n  - 1970-01-01T00:01:00Z  INSUFFICIENT_DATA -> ALARM  "),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&render_diff_json(&d)).unwrap();
        assert_eq!(json["alarms"][0]["in"], "old");
        assert_eq!(
            json["alarms"][0]["new_final_state"],
            serde_json::Value::Null
        );
    }
}
