//! [`ScalingTelemetry`]: the scaling runtime's own metrics (activities by status).

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use thermostat_scaler::ActivityStatus;

/// The `status` label of `thermostat_scaling_activities`: the activity's `StatusCode`, spelled
/// as EC2 Auto Scaling does (`Successful`, `Failed`, `InProgress`).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct StatusLabel(ActivityStatus);

impl EncodeLabelValue for StatusLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.0.as_str().encode(encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: StatusLabel,
}

/// The scaling runtime's metrics. Clones share the same metrics;
/// [`register`](Self::register) adds them to the registry that `GET /metrics` renders
/// (`thermostat_metrics::Telemetry::with_components`). Unregistered, it counts unseen (tests).
#[derive(Clone, Debug)]
pub struct ScalingTelemetry {
    activities: Family<StatusLabels, Counter>,
}

impl Default for ScalingTelemetry {
    fn default() -> Self {
        let activities = Family::<StatusLabels, Counter>::default();
        // The final statuses start at zero, so that their series exist before the first
        // activity. Activities are recorded once they have ended, so `InProgress` does not
        // appear.
        for status in [ActivityStatus::Successful, ActivityStatus::Failed] {
            drop(activities.get_or_create(&StatusLabels {
                status: StatusLabel(status),
            }));
        }
        ScalingTelemetry { activities }
    }
}

impl ScalingTelemetry {
    /// Registers `thermostat_scaling_activities{status}` in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "thermostat_scaling_activities",
            "Scaling activities by status",
            self.activities.clone(),
        );
    }

    /// Counts a recorded scaling activity with `status`.
    pub fn activity(&self, status: ActivityStatus) {
        self.activities
            .get_or_create(&StatusLabels {
                status: StatusLabel(status),
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
    fn registers_final_statuses_at_zero_and_counts() {
        let telemetry = ScalingTelemetry::default();
        let mut registry = Registry::default();
        telemetry.register(&mut registry);
        let text = render(&registry);
        for line in [
            "# HELP thermostat_scaling_activities Scaling activities by status.",
            "# TYPE thermostat_scaling_activities counter",
            "thermostat_scaling_activities_total{status=\"Successful\"} 0",
            "thermostat_scaling_activities_total{status=\"Failed\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
        }
        assert!(!text.contains("InProgress"), "{text}");

        telemetry.activity(ActivityStatus::Successful);
        telemetry.clone().activity(ActivityStatus::Failed);
        telemetry.activity(ActivityStatus::Failed);
        let text = render(&registry);
        for line in [
            "thermostat_scaling_activities_total{status=\"Successful\"} 1",
            "thermostat_scaling_activities_total{status=\"Failed\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
        }
    }
}
