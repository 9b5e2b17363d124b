//! The actions a tick invokes, as owned values for their consumers ([`ActionDue`],
//! [`actions_due`]): notifications and scaling read these, never the engine's
//! [`EngineState`].

use thermostat_metrics::{SeriesKey, Store, Timestamp};

use crate::engine::{EngineState, TickOutput};
use crate::history::AlarmType;
use crate::message::{AlarmDefinition, AlarmEvent};
use crate::model::{Alarm, AlarmSet};
use crate::state::{ActionInvocation, AlarmState, ReasonData, Transition};

/// One action an alarm invokes at a tick (or a `SetAlarmState`), with everything its
/// consumer needs (serialisable: in cluster mode a node that does not lead hands its scaling
/// actions to the leader).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ActionDue {
    /// The alarm, or per-series instance (`cpu[InstanceId=i-1]`), that invokes the action.
    pub name: String,
    /// The definition's name (`cpu` for `cpu[InstanceId=i-1]`; a composite's own name).
    pub alarm: String,
    /// A metric alarm (or an instance of one) or a composite alarm.
    pub kind: AlarmType,
    /// The action, the state whose list it comes from, and whether it is a repeat.
    pub invocation: ActionInvocation,
    /// The transition to report: the alarm's last transition of the tick; without one (a
    /// repeat), its current state as a pseudo-transition at `now` (old and new state the
    /// current value, the current reason and reason data).
    pub transition: Transition,
    /// The series of a per-series instance; `None` for other alarms and composites.
    pub series: Option<SeriesKey>,
    /// For metric alarms, what a scaling policy receives; `None` for composites.
    pub recent: Option<RecentDatapoints>,
}

/// A metric alarm's most recent datapoints and its threshold, as a scaling policy receives
/// them.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecentDatapoints {
    /// Oldest first: the transition's reason data (`recentDatapoints`), unless the
    /// invocation is a repeat or that list is empty; then the store's newest values at `now`
    /// ([`recent_values`]).
    pub values: Vec<f64>,
    /// The alarm's threshold.
    pub threshold: f64,
}

impl ActionDue {
    /// The concrete dimensions of a per-series instance (`None`: the definition's).
    pub fn dimensions(&self) -> Option<thermostat_metrics::Dimensions<'_>> {
        self.series.as_ref().map(SeriesKey::dimensions)
    }

    /// The notification event of this action, its definition looked up in `alarms` (`None`
    /// when `alarms` has no definition of that name and kind).
    pub fn event<'a>(&'a self, alarms: &'a AlarmSet) -> Option<AlarmEvent<'a>> {
        let definition = match self.kind {
            AlarmType::MetricAlarm => AlarmDefinition::Metric(alarms.alarm(&self.alarm)?),
            AlarmType::CompositeAlarm => AlarmDefinition::Composite(alarms.composite(&self.alarm)?),
        };
        Some(AlarmEvent {
            name: &self.name,
            definition,
            transition: &self.transition,
            dimensions: self.dimensions(),
            configuration_updated: None,
        })
    }
}

/// The actions of `out` (one tick of `set` that left `state`, or one `SetAlarmState`), in
/// the order of `out.actions`. An action of a name that has no state in `state`, or whose
/// definition `set` does not have, is left out.
pub fn actions_due(
    set: &AlarmSet,
    state: &EngineState,
    out: &TickOutput,
    store: &Store,
    now: Timestamp,
) -> Vec<ActionDue> {
    let mut due = Vec::with_capacity(out.actions.len());
    for (name, invocation) in &out.actions {
        let last = last_transition(out, name);
        let (alarm, kind, current, series, recent) = if let Some(instance) = state.metric.get(name)
        {
            let Some(definition) = set.alarm(&instance.alarm) else {
                continue;
            };
            let from_transition = last.and_then(|t| match &t.reason_data {
                Some(ReasonData::Metric(d)) if !invocation.repeat => {
                    Some(d.recent_datapoints.clone())
                }
                _ => None,
            });
            let values = from_transition
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| recent_values(definition, instance.key.clone(), store, now));
            (
                definition.name.clone(),
                AlarmType::MetricAlarm,
                &instance.state,
                definition.is_per_series().then(|| instance.key.clone()),
                Some(RecentDatapoints {
                    values,
                    threshold: definition.threshold,
                }),
            )
        } else if let Some(composite) = state.composites.get(name) {
            if set.composite(name).is_none() {
                continue;
            }
            (
                name.clone(),
                AlarmType::CompositeAlarm,
                &composite.alarm,
                None,
                None,
            )
        } else {
            continue;
        };
        let transition = match last {
            Some(t) => t.clone(),
            None => pseudo_transition(current, now),
        };
        due.push(ActionDue {
            name: name.clone(),
            alarm,
            kind,
            invocation: invocation.clone(),
            transition,
            series,
            recent,
        });
    }
    due
}

/// The current state as a transition from itself, for a repeated action.
fn pseudo_transition(state: &AlarmState, now: Timestamp) -> Transition {
    Transition {
        timestamp: now,
        old_state: state.value,
        new_state: state.value,
        reason: state.reason.clone(),
        reason_data: state.reason_data.clone(),
    }
}

fn last_transition<'a>(out: &'a TickOutput, name: &str) -> Option<&'a Transition> {
    out.transitions
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t)
}

/// The newest `evaluation_periods` datapoint values of `alarm`'s series `key` in its
/// evaluation range at `now`, oldest first (what EC2 Auto Scaling receives from the alarm
/// on a re-invocation). Empty when the store refuses the query or has nothing.
pub fn recent_values(alarm: &Alarm, key: SeriesKey, store: &Store, now: Timestamp) -> Vec<f64> {
    let q = crate::evaluator::query(alarm, key, now);
    let Ok(mut datapoints) = store.query(&q, now) else {
        return Vec::new();
    };
    datapoints.sort_by_key(|d| d.timestamp);
    let values: Vec<f64> = datapoints
        .iter()
        .filter_map(|d| d.values.first().copied().flatten())
        .collect();
    let n = alarm.evaluation_periods as usize;
    values[values.len().saturating_sub(n)..].to_vec()
}

#[cfg(test)]
mod tests {
    use thermostat_metrics::{Dimension, Observation, Resolution, Sample, Unit};

    use super::*;
    use crate::engine::tick;
    use crate::model::StateValue;
    use crate::validate::validate;

    const YAML: &str = "alarms:\n  - {name: hot, namespace: App, metric_name: Cpu, dimensions: {Host: \"*\"}, statistic: Maximum, period_seconds: 60, evaluation_periods: 2, datapoints_to_alarm: 1, threshold: 50, comparison_operator: GreaterThanThreshold, alarm_actions: [\"policy:web/out\"], ok_actions: [\"https://example.com/ok\"]}\ncomposite_alarms:\n  - {name: any, alarm_rule: \"ALARM(hot)\", alarm_actions: [\"https://example.com/any\"]}\n";

    fn push(store: &Store, host: &str, at: Timestamp, v: f64) {
        let key = SeriesKey::new("App", "Cpu", vec![Dimension::new("Host", host)]);
        let obs = Observation {
            timestamp: at,
            unit: Unit::None,
            resolution: Resolution::Standard,
            sample: Sample::Value(v),
        };
        store.record_batch(&[(key, obs)]);
    }

    #[test]
    fn transitions_carry_their_reason_data_and_repeats_the_current_state() {
        let set = validate(&[("x.yaml", YAML)]).unwrap();
        let store = Store::new(2);
        let mut state = EngineState::new(&set, Timestamp(0), None);
        let t0 = Timestamp::from_secs(1_800_000_000);
        push(&store, "a", t0.add_millis(10_000), 90.0);
        let t1 = t0.add_millis(60_000);
        let out = tick(&set, &mut state, &store, t1).unwrap();
        let due = actions_due(&set, &state, &out, &store, t1);
        let instance = due.iter().find(|d| d.name == "hot[Host=a]").unwrap();
        assert_eq!(instance.alarm, "hot");
        assert_eq!(instance.kind, AlarmType::MetricAlarm);
        assert_eq!(instance.transition.new_state, StateValue::Alarm);
        assert_eq!(
            instance.dimensions().map(|d| d.to_vec()),
            Some(vec![Dimension::new("Host", "a")])
        );
        let recent = instance.recent.as_ref().unwrap();
        assert_eq!(recent.threshold, 50.0);
        assert_eq!(recent.values, [90.0], "from the reason data");
        assert!(instance.event(&set).is_some());

        // The composite transitions in the same tick.
        let any = due.iter().find(|d| d.name == "any").unwrap();
        assert_eq!(any.kind, AlarmType::CompositeAlarm);
        assert_eq!(any.recent, None);
        assert_eq!(any.series, None);

        // A minute later the scaling action repeats: the transition is the current state
        // and the values come from the store.
        push(&store, "a", t1.add_millis(10_000), 80.0);
        let t2 = t1.add_millis(60_000);
        let out = tick(&set, &mut state, &store, t2).unwrap();
        let due = actions_due(&set, &state, &out, &store, t2);
        let repeat = due
            .iter()
            .find(|d| d.name == "hot[Host=a]" && d.invocation.repeat)
            .unwrap();
        assert_eq!(repeat.transition.timestamp, t2);
        assert_eq!(repeat.transition.old_state, StateValue::Alarm);
        assert_eq!(repeat.transition.new_state, StateValue::Alarm);
        assert_eq!(
            repeat.transition.reason,
            state.metric["hot[Host=a]"].state.reason
        );
        assert_eq!(repeat.recent.as_ref().unwrap().values, [90.0, 80.0]);
    }

    #[test]
    fn actions_of_unknown_names_are_left_out() {
        let set = validate(&[("x.yaml", YAML)]).unwrap();
        let store = Store::new(2);
        let state = EngineState::new(&set, Timestamp(0), None);
        let out = TickOutput {
            actions: vec![(
                "nobody".into(),
                ActionInvocation {
                    action: crate::action::parse("https://example.com/x").unwrap(),
                    state: StateValue::Alarm,
                    repeat: false,
                },
            )],
            ..TickOutput::default()
        };
        assert!(actions_due(&set, &state, &out, &store, Timestamp(0)).is_empty());
    }
}
