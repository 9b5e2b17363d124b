//! [`AlarmTelemetry`]: the alarm runtime's own metrics (evaluations, tick time, transitions).

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use thermostat_alarms::StateValue;

/// The `state` label of `thermostat_alarm_transitions`: the state entered, spelled as
/// CloudWatch does (`OK`, `ALARM`, `INSUFFICIENT_DATA`).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct StateLabel(StateValue);

impl EncodeLabelValue for StateLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.0.as_str().encode(encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    state: StateLabel,
}

/// The alarm runtime's metrics. Clones share the same metrics; [`register`](Self::register)
/// adds them to the registry that `GET /metrics` renders
/// (`thermostat_metrics::Telemetry::with_components`). Unregistered, it counts unseen (tests).
#[derive(Clone, Debug)]
pub struct AlarmTelemetry {
    evaluations: Counter,
    tick_seconds: Histogram,
    transitions: Family<TransitionLabels, Counter>,
}

impl Default for AlarmTelemetry {
    fn default() -> Self {
        let transitions = Family::<TransitionLabels, Counter>::default();
        // Every state starts at zero, so that its series exists before the first transition.
        for &state in StateValue::ALL {
            drop(transitions.get_or_create(&TransitionLabels {
                state: StateLabel(state),
            }));
        }
        AlarmTelemetry {
            evaluations: Counter::default(),
            tick_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            transitions,
        }
    }
}

impl AlarmTelemetry {
    /// Registers `thermostat_alarm_evaluations`, `thermostat_alarm_tick_seconds` and
    /// `thermostat_alarm_transitions{state}` in `registry`, in that order.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "thermostat_alarm_evaluations",
            "Alarm evaluations",
            self.evaluations.clone(),
        );
        registry.register(
            "thermostat_alarm_tick_seconds",
            "Time to evaluate every alarm due at one tick",
            self.tick_seconds.clone(),
        );
        registry.register(
            "thermostat_alarm_transitions",
            "Alarm state changes by new state",
            self.transitions.clone(),
        );
    }

    /// Counts one evaluation tick: `evaluations` alarms evaluated in `seconds`.
    pub fn tick(&self, evaluations: usize, seconds: f64) {
        self.evaluations
            .inc_by(u64::try_from(evaluations).unwrap_or(u64::MAX));
        self.tick_seconds.observe(seconds);
    }

    /// Counts an alarm's change to `state`.
    pub fn transition(&self, state: StateValue) {
        self.transitions
            .get_or_create(&TransitionLabels {
                state: StateLabel(state),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(registry: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        text
    }

    #[test]
    fn registers_every_state_at_zero_and_counts() {
        let telemetry = AlarmTelemetry::default();
        let mut registry = Registry::default();
        telemetry.register(&mut registry);
        let text = render(&registry);
        for line in [
            "# HELP thermostat_alarm_evaluations Alarm evaluations.",
            "# TYPE thermostat_alarm_evaluations counter",
            "thermostat_alarm_evaluations_total 0",
            "# HELP thermostat_alarm_tick_seconds Time to evaluate every alarm due at one tick.",
            "# TYPE thermostat_alarm_tick_seconds histogram",
            "thermostat_alarm_tick_seconds_bucket{le=\"0.0005\"} 0",
            "thermostat_alarm_tick_seconds_bucket{le=\"16.384\"} 0",
            "# HELP thermostat_alarm_transitions Alarm state changes by new state.",
            "# TYPE thermostat_alarm_transitions counter",
            "thermostat_alarm_transitions_total{state=\"OK\"} 0",
            "thermostat_alarm_transitions_total{state=\"ALARM\"} 0",
            "thermostat_alarm_transitions_total{state=\"INSUFFICIENT_DATA\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
        }

        telemetry.tick(3, 0.001);
        telemetry.transition(StateValue::Alarm);
        telemetry.clone().transition(StateValue::Alarm);
        let text = render(&registry);
        for line in [
            "thermostat_alarm_evaluations_total 3",
            "thermostat_alarm_tick_seconds_count 1",
            "thermostat_alarm_tick_seconds_bucket{le=\"0.0005\"} 0",
            "thermostat_alarm_tick_seconds_bucket{le=\"0.001\"} 1",
            "thermostat_alarm_transitions_total{state=\"ALARM\"} 2",
            "thermostat_alarm_transitions_total{state=\"OK\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
        }
    }
}
