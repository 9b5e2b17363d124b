//! Thermostat's own telemetry: every metric name in one place, rendered as Prometheus text.

use std::fmt;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Outcome label of `thermostat_ingest_requests_total`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types, missing_docs)]
pub enum Outcome {
    accepted,
    invalid,
    overloaded,
    unavailable,
}

/// Reason label of `thermostat_ingest_rejected_total`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types, missing_docs)]
pub enum RejectReason {
    /// A datum broke a validation rule.
    invalid_datum,
    /// The request as a whole was too large.
    too_large,
    /// The server had no capacity.
    overloaded,
    /// The server was shutting down.
    shutting_down,
    /// The write-ahead log could not persist the request (disk full, IO error).
    persist_failed,
    /// The request would have created series beyond `--max-series`,
    /// `--max-series-per-namespace` or `--max-series-bytes`.
    series_limit,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: Outcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: RejectReason,
}

/// The telemetry registry. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Telemetry {
    registry: Registry,
    samples: Counter<f64, AtomicU64>,
    requests: Family<OutcomeLabels, Counter>,
    rejected: Family<ReasonLabels, Counter>,
    series_active: Gauge,
    series_refused: Counter,
    evaluations: Counter,
    tick_seconds: prometheus_client::metrics::histogram::Histogram,
    transitions: Family<StateLabels, Counter>,
    notifications: Family<StatusLabels, Counter>,
    activities: Family<StatusLabels, Counter>,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// A registry with every Thermostat metric registered at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let samples = Counter::<f64, AtomicU64>::default();
        let requests = Family::<OutcomeLabels, Counter>::default();
        let rejected = Family::<ReasonLabels, Counter>::default();
        let series_active = Gauge::default();
        let series_refused = Counter::default();
        let evaluations = Counter::default();
        let tick_seconds = prometheus_client::metrics::histogram::Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 16),
        );
        let transitions = Family::<StateLabels, Counter>::default();
        let notifications = Family::<StatusLabels, Counter>::default();
        let activities = Family::<StatusLabels, Counter>::default();
        registry.register(
            "thermostat_alarm_evaluations",
            "Alarm evaluations",
            evaluations.clone(),
        );
        registry.register(
            "thermostat_alarm_tick_seconds",
            "Time to evaluate every alarm due at one tick",
            tick_seconds.clone(),
        );
        registry.register(
            "thermostat_alarm_transitions",
            "Alarm state changes by new state",
            transitions.clone(),
        );
        registry.register(
            "thermostat_notifications",
            "Notification delivery attempts that ended, by status (delivered, failed)",
            notifications.clone(),
        );
        registry.register(
            "thermostat_scaling_activities",
            "Scaling activities by status",
            activities.clone(),
        );
        registry.register(
            "thermostat_ingest_samples",
            "Observations accepted: 1 per value, the sum of counts per values list, the sample count per statistic set",
            samples.clone(),
        );
        registry.register(
            "thermostat_ingest_requests",
            "Ingest requests by outcome",
            requests.clone(),
        );
        registry.register(
            "thermostat_ingest_rejected",
            "Rejected ingest requests by reason",
            rejected.clone(),
        );
        registry.register(
            "thermostat_series_active",
            "Series held in memory",
            series_active.clone(),
        );
        registry.register(
            "thermostat_ingest_series_refused",
            "New series refused because a series limit was reached",
            series_refused.clone(),
        );
        // Every known label value starts at zero, so that a series exists (and `rate()`
        // works) before the first event of its kind.
        use Outcome as O;
        use RejectReason as R;
        for outcome in [O::accepted, O::invalid, O::overloaded, O::unavailable] {
            drop(requests.get_or_create(&OutcomeLabels { outcome }));
        }
        for reason in [
            R::invalid_datum,
            R::too_large,
            R::overloaded,
            R::shutting_down,
            R::persist_failed,
            R::series_limit,
        ] {
            drop(rejected.get_or_create(&ReasonLabels { reason }));
        }
        for state in ["OK", "ALARM", "INSUFFICIENT_DATA"] {
            drop(transitions.get_or_create(&StateLabels {
                state: state.to_owned(),
            }));
        }
        for status in ["delivered", "failed"] {
            drop(notifications.get_or_create(&StatusLabels {
                status: status.to_owned(),
            }));
        }
        for status in ["Successful", "Failed"] {
            drop(activities.get_or_create(&StatusLabels {
                status: status.to_owned(),
            }));
        }
        Telemetry {
            registry,
            samples,
            requests,
            rejected,
            series_active,
            series_refused,
            evaluations,
            tick_seconds,
            transitions,
            notifications,
            activities,
        }
    }

    /// Counts an accepted request of `samples` observations.
    pub fn ingest_accepted(&self, samples: f64) {
        self.samples.inc_by(samples);
        self.requests
            .get_or_create(&OutcomeLabels {
                outcome: Outcome::accepted,
            })
            .inc();
    }

    /// Counts a rejected request.
    pub fn ingest_rejected(&self, reason: RejectReason) {
        let outcome = match reason {
            RejectReason::invalid_datum | RejectReason::too_large => Outcome::invalid,
            RejectReason::overloaded | RejectReason::series_limit => Outcome::overloaded,
            RejectReason::shutting_down | RejectReason::persist_failed => Outcome::unavailable,
        };
        self.requests
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.rejected.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Counts one evaluation tick: `evaluations` alarms evaluated in `seconds`.
    pub fn alarm_tick(&self, evaluations: usize, seconds: f64) {
        self.evaluations.inc_by(evaluations as u64);
        self.tick_seconds.observe(seconds);
    }

    /// Counts an alarm state change to `state`.
    pub fn alarm_transition(&self, state: &str) {
        self.transitions
            .get_or_create(&StateLabels {
                state: state.to_owned(),
            })
            .inc();
    }

    /// Counts a notification attempt that ended with `status` (`delivered`, `failed`).
    pub fn notification(&self, status: &str) {
        self.notifications
            .get_or_create(&StatusLabels {
                status: status.to_owned(),
            })
            .inc();
    }

    /// Counts a scaling activity with `status` (`Successful`, `Failed`).
    pub fn scaling_activity(&self, status: &str) {
        self.activities
            .get_or_create(&StatusLabels {
                status: status.to_owned(),
            })
            .inc();
    }

    /// Counts `n` new series refused by a series limit.
    pub fn series_refused(&self, n: usize) {
        self.series_refused.inc_by(n as u64);
    }

    /// Total samples accepted so far.
    pub fn samples_total(&self) -> f64 {
        self.samples.get()
    }

    /// Sets `thermostat_series_active`.
    pub fn set_series_active(&self, n: usize) {
        self.series_active.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Prometheus/OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_by_label() {
        let t = Telemetry::new();
        t.ingest_accepted(3.0);
        t.ingest_accepted(2.5);
        t.ingest_rejected(RejectReason::invalid_datum);
        t.set_series_active(7);
        let text = t.render();
        assert!(
            text.contains("thermostat_ingest_samples_total 5.5"),
            "{text}"
        );
        assert!(
            text.contains("thermostat_ingest_requests_total{outcome=\"accepted\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("thermostat_ingest_requests_total{outcome=\"invalid\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("thermostat_ingest_rejected_total{reason=\"invalid_datum\"} 1"),
            "{text}"
        );
        assert!(text.contains("thermostat_series_active 7"), "{text}");
    }
}
