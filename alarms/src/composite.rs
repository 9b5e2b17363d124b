//! Composite alarm evaluation and actions suppressors (reference §3.10).
//!
//! The state is ALARM when the rule is true, else OK; INSUFFICIENT_DATA only before the
//! first evaluation. With an actions suppressor, actions are held back while the
//! suppressor is in ALARM, for `extension_period_seconds` after it leaves ALARM (then run if
//! the composite is still in the state), and, on entering ALARM, for up to
//! `wait_period_seconds` while waiting to see whether the suppressor goes to ALARM.

use serde::{Deserialize, Serialize};
use thermostat_metrics::Timestamp;

use crate::model::{CompositeAlarm, StateValue};
use crate::state::{
    ActionInvocation, AlarmState, CompositeReasonData, ReasonData, Transition, TriggeringAlarm,
    TriggeringState,
};
use crate::timefmt::{json_time, long_time};

/// Why actions are held back (CloudWatch `ActionsSuppressedBy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SuppressedBy {
    /// Waiting for the suppressor to go to ALARM.
    WaitPeriod,
    /// The suppressor left ALARM less than the extension period ago.
    ExtensionPeriod,
    /// The suppressor is in ALARM.
    Alarm,
}

/// Actions held back until `due`, run then if the composite is still in `state`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingActions {
    /// The state whose actions wait.
    pub state: StateValue,
    /// When to run them.
    pub due: Timestamp,
    /// Why they wait.
    pub by: SuppressedBy,
}

/// The state of a composite alarm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompositeState {
    /// Value, reason, timestamps.
    pub alarm: AlarmState,
    /// Actions waiting for a suppressor period to end.
    pub pending: Option<PendingActions>,
    /// The suppressor's state at the last evaluation.
    pub suppressor_last: Option<StateValue>,
    /// When the suppressor last left ALARM.
    pub suppressor_left_alarm: Option<Timestamp>,
    /// Why actions are suppressed now (`ActionsSuppressedBy`), if they are.
    pub suppressed_by: Option<SuppressedBy>,
}

impl CompositeState {
    /// A composite created at `now`.
    pub fn initial(now: Timestamp) -> Self {
        CompositeState {
            alarm: AlarmState::initial(now),
            pending: None,
            suppressor_last: None,
            suppressor_left_alarm: None,
            suppressed_by: None,
        }
    }
}

/// The result of evaluating a composite alarm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompositeEvaluation {
    /// The new state.
    pub state: CompositeState,
    /// Zero or one transition.
    pub transitions: Vec<Transition>,
    /// Actions to run now.
    pub actions: Vec<ActionInvocation>,
}

/// A child's state as seen by a composite: value and when it last transitioned.
pub type ChildLookup<'a> = &'a dyn Fn(&str) -> Option<(StateValue, Timestamp)>;

/// Evaluates a composite alarm at `now` over the current states of the other alarms.
pub fn evaluate_composite(
    c: &CompositeAlarm,
    st: &CompositeState,
    lookup: ChildLookup<'_>,
    now: Timestamp,
) -> CompositeEvaluation {
    let mut next = st.clone();
    let first = st.alarm.last_evaluated.is_none();
    next.alarm.last_evaluated = Some(now);
    let rule_true = c.rule.eval(&|n| lookup(n).map(|(v, _)| v));
    let value = if rule_true {
        StateValue::Alarm
    } else {
        StateValue::Ok
    };
    // Suppressor bookkeeping.
    let sup = c.suppressor.as_ref().map(|s| (s, lookup(&s.alarm)));
    let sup_value = sup.and_then(|(_, v)| v.map(|(v, _)| v));
    if let Some((_, Some((v, changed)))) = sup {
        if v != StateValue::Alarm && st.suppressor_last == Some(StateValue::Alarm) {
            next.suppressor_left_alarm =
                Some(changed.max(st.alarm.last_evaluated.unwrap_or(changed)));
        }
        next.suppressor_last = Some(v);
    }
    let extension_end = sup.and_then(|(s, _)| {
        next.suppressor_left_alarm
            .map(|t| t.add_millis(i64::from(s.extension_period_seconds) * 1000))
    });
    let in_extension = extension_end.is_some_and(|e| now < e);
    let sup_alarm = sup_value == Some(StateValue::Alarm);
    let mut transitions = Vec::new();
    let mut fire: Option<StateValue> = None;
    if value != st.alarm.value {
        let (reason, data) = reason(c, lookup, value, first);
        next.alarm.value = value;
        next.alarm.reason = reason.clone();
        next.alarm.reason_data = data.clone();
        next.alarm.updated = now;
        next.alarm.transitioned = now;
        transitions.push(Transition {
            timestamp: now,
            old_state: st.alarm.value,
            new_state: value,
            reason,
            reason_data: data,
        });
        next.pending = None;
        match c.suppressor.as_ref() {
            None => fire = Some(value),
            Some(s) => {
                if sup_alarm {
                    next.suppressed_by = Some(SuppressedBy::Alarm);
                } else if let (true, Some(end)) = (in_extension, extension_end) {
                    next.pending = Some(PendingActions {
                        state: value,
                        due: end,
                        by: SuppressedBy::ExtensionPeriod,
                    });
                } else if value == StateValue::Alarm && s.wait_period_seconds > 0 {
                    next.pending = Some(PendingActions {
                        state: value,
                        due: now.add_millis(i64::from(s.wait_period_seconds) * 1000),
                        by: SuppressedBy::WaitPeriod,
                    });
                } else {
                    fire = Some(value);
                }
            }
        }
    } else if let Some(p) = st.pending.clone() {
        if p.state != value || sup_alarm {
            next.pending = None;
            if sup_alarm {
                next.suppressed_by = Some(SuppressedBy::Alarm);
            }
        } else if now >= p.due {
            match (in_extension, extension_end) {
                (true, Some(end)) => {
                    next.pending = Some(PendingActions {
                        state: value,
                        due: end,
                        by: SuppressedBy::ExtensionPeriod,
                    })
                }
                _ => {
                    next.pending = None;
                    fire = Some(value);
                }
            }
        }
    }
    next.suppressed_by = match (&next.pending, sup_alarm) {
        (_, true) => Some(SuppressedBy::Alarm),
        (Some(p), false) => Some(p.by),
        (None, false) => None,
    };
    let actions = match fire {
        Some(v) if c.actions.enabled => c
            .actions
            .for_state(v)
            .iter()
            .map(|a| ActionInvocation {
                action: a.clone(),
                state: v,
                repeat: false,
            })
            .collect(),
        _ => Vec::new(),
    };
    CompositeEvaluation {
        state: next,
        transitions,
        actions,
    }
}

fn reason(
    c: &CompositeAlarm,
    lookup: ChildLookup<'_>,
    value: StateValue,
    first: bool,
) -> (String, Option<ReasonData>) {
    let latest = c
        .rule
        .references()
        .into_iter()
        .filter_map(|n| lookup(n).map(|(v, t)| (t, n, v)))
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)));
    match latest {
        Some((t, n, v)) if !first => (
            format!("{n} transitioned to {v} at {}", long_time(t)),
            Some(ReasonData::Composite(CompositeReasonData {
                triggering_alarms: vec![TriggeringAlarm {
                    arn: n.to_owned(),
                    state: TriggeringState {
                        value: v,
                        timestamp: json_time(t),
                    },
                }],
            })),
        ),
        _ => (
            format!(
                "{} was created and its alarm rule evaluates to {value}",
                c.name
            ),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn set() -> crate::model::AlarmSet {
        let text = r#"
alarms:
  - {name: cpu, namespace: App, metric_name: Cpu, statistic: Average, period_seconds: 60, evaluation_periods: 1, threshold: 1, comparison_operator: GreaterThanThreshold}
  - {name: maint, namespace: App, metric_name: Maint, statistic: Maximum, period_seconds: 60, evaluation_periods: 1, threshold: 0, comparison_operator: GreaterThanThreshold}
composite_alarms:
  - name: web
    alarm_rule: ALARM("cpu")
    alarm_actions: ["arn:aws:sns:eu-west-1:1:ops"]
    ok_actions: ["arn:aws:sns:eu-west-1:1:ok"]
    actions_suppressor: {alarm: maint, wait_period_seconds: 120, extension_period_seconds: 60}
"#;
        crate::validate::validate(&[("c.yaml", text)]).unwrap()
    }

    /// Steps the composite once a minute over (cpu, maint) states; returns per-minute
    /// (state, actions fired).
    fn run(states: &[(StateValue, StateValue)]) -> Vec<(StateValue, Vec<String>)> {
        let s = set();
        let c = &s.composites[0];
        let mut st = CompositeState::initial(Timestamp(0));
        let mut since: HashMap<&str, (StateValue, Timestamp)> = HashMap::new();
        let mut out = Vec::new();
        for (k, (cpu, maint)) in states.iter().enumerate() {
            let now = Timestamp((k as i64 + 1) * 60_000);
            for (n, v) in [("cpu", *cpu), ("maint", *maint)] {
                let e = since.entry(n).or_insert((v, now));
                if e.0 != v {
                    *e = (v, now);
                }
            }
            let lookup = |n: &str| since.get(n).copied();
            let e = evaluate_composite(c, &st, &lookup, now);
            out.push((
                e.state.alarm.value,
                e.actions.iter().map(|a| a.action.to_string()).collect(),
            ));
            st = e.state;
        }
        out
    }

    use StateValue::{Alarm as A, Ok as O};

    #[test]
    fn no_suppression_fires_after_the_wait_period() {
        // §3.10: WaitPeriod 120 s — the composite's ALARM actions wait 2 minutes for the
        // suppressor, then run.
        let r = run(&[(O, O), (A, O), (A, O), (A, O), (A, O)]);
        let fired: Vec<usize> = r
            .iter()
            .enumerate()
            .filter(|(_, x)| !x.1.is_empty())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(
            r[0].1,
            vec!["arn:aws:sns:eu-west-1:1:ok".to_owned()],
            "created healthy → OK actions"
        );
        assert_eq!(fired, vec![0, 3]);
        assert_eq!(r[3].1, vec!["arn:aws:sns:eu-west-1:1:ops".to_owned()]);
    }

    #[test]
    fn suppressor_in_alarm_suppresses_and_extension_defers() {
        // §3.10: suppressor reaches ALARM within the wait period → suppressed.
        let r = run(&[(O, O), (A, O), (A, A), (A, A), (A, A)]);
        assert!(r[1..].iter().all(|x| x.1.is_empty()), "{r:?}");
        // Created while the suppressor is in ALARM: the OK actions are suppressed. The
        // suppressor leaves ALARM at 00:03 as the composite enters ALARM: the actions wait
        // for the 60-s extension and run at 00:04.
        let r = run(&[(O, A), (O, A), (A, O), (A, O), (A, O)]);
        let fired: Vec<usize> = r
            .iter()
            .enumerate()
            .filter(|(_, x)| !x.1.is_empty())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(fired, vec![3], "{r:?}");
    }

    #[test]
    fn reasons() {
        let s = set();
        let c = &s.composites[0];
        let lookup =
            |n: &str| (n == "cpu").then_some((StateValue::Alarm, Timestamp(1_658_505_465_000)));
        let e = evaluate_composite(
            c,
            &CompositeState::initial(Timestamp(0)),
            &lookup,
            Timestamp(60_000),
        );
        assert_eq!(
            e.transitions[0].reason,
            "web was created and its alarm rule evaluates to ALARM"
        );
        let mut st = e.state;
        st.alarm.value = StateValue::Ok;
        let e = evaluate_composite(c, &st, &lookup, Timestamp(120_000));
        assert_eq!(
            e.transitions[0].reason,
            "cpu transitioned to ALARM at Friday 22 July, 2022 15:57:45 UTC"
        );
    }
}
