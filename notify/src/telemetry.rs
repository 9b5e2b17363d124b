//! [`NotificationTelemetry`]: the dispatcher's own metrics (notifications that ended).

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// How a notification ended: the `status` label of `thermostat_notifications`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum NotificationStatus {
    /// Delivered (label `delivered`).
    Delivered,
    /// Given up: a permanent error, retries exhausted, not renderable or not written to the
    /// outbox (label `failed`).
    Failed,
}

impl NotificationStatus {
    /// Every status, in the order they are registered at zero.
    pub const ALL: [NotificationStatus; 2] =
        [NotificationStatus::Delivered, NotificationStatus::Failed];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            NotificationStatus::Delivered => "delivered",
            NotificationStatus::Failed => "failed",
        }
    }
}

impl EncodeLabelValue for NotificationStatus {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.as_str().encode(encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: NotificationStatus,
}

/// The dispatcher's metrics. Clones share the same metrics; [`register`](Self::register)
/// adds them to the registry that `GET /metrics` renders
/// (`thermostat_metrics::Telemetry::with_components`). Unregistered, it counts unseen.
#[derive(Clone, Debug)]
pub struct NotificationTelemetry {
    ended: Family<StatusLabels, Counter>,
}

impl Default for NotificationTelemetry {
    fn default() -> Self {
        let ended = Family::<StatusLabels, Counter>::default();
        // Every status starts at zero, so that its series exists before the first event.
        for status in NotificationStatus::ALL {
            drop(ended.get_or_create(&StatusLabels { status }));
        }
        NotificationTelemetry { ended }
    }
}

impl NotificationTelemetry {
    /// Registers `thermostat_notifications{status}` in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "thermostat_notifications",
            "Notification delivery attempts that ended, by status (delivered, failed)",
            self.ended.clone(),
        );
    }

    /// Counts a notification that ended with `status`.
    pub fn ended(&self, status: NotificationStatus) {
        self.ended.get_or_create(&StatusLabels { status }).inc();
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
    fn registers_every_status_at_zero_and_counts() {
        let telemetry = NotificationTelemetry::default();
        let mut registry = Registry::default();
        telemetry.register(&mut registry);
        let text = render(&registry);
        for line in [
            "# HELP thermostat_notifications Notification delivery attempts that ended, by status (delivered, failed).",
            "# TYPE thermostat_notifications counter",
            "thermostat_notifications_total{status=\"delivered\"} 0",
            "thermostat_notifications_total{status=\"failed\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
        }

        telemetry.ended(NotificationStatus::Failed);
        telemetry.clone().ended(NotificationStatus::Failed);
        let text = render(&registry);
        for line in [
            "thermostat_notifications_total{status=\"delivered\"} 0",
            "thermostat_notifications_total{status=\"failed\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
        }
    }
}
