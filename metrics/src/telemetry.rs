//! Thermostat's own telemetry, rendered as Prometheus text: the ingest and store metrics, and
//! the registry the components' metrics join.
//!
//! The components that act on alarms own their metrics and label types
//! (`thermostat-alarms-runtime`'s `AlarmTelemetry`, `thermostat-notify`'s
//! `NotificationTelemetry`, `thermostat-scaler-runtime`'s `ScalingTelemetry`); the binary
//! registers them through [`Telemetry::with_components`], ahead of the ingest metrics, so that
//! one `GET /metrics` shows them all.

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

/// Outcome label of `thermostat_otlp_requests_total`: what became of an OTLP export request
/// (over gRPC or HTTP).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum OtlpOutcome {
    /// Answered, every point kept.
    accepted,
    /// Answered with a partial success: some points (or all) rejected, the others kept.
    partial,
    /// Refused whole, nothing of it stored (the request's reason is counted in
    /// `thermostat_ingest_rejected_total` where it has one).
    refused,
}

/// Reason label of `thermostat_otlp_points_rejected_total`: the kinds of `thermostat-otlp`'s
/// `RejectReason` (this core does not depend on that crate; the ingest adapter maps one onto
/// the other).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum OtlpRejectReason {
    /// The series identity breaks a naming rule (namespace, metric name, a dimension, more
    /// than 30 dimensions).
    identity,
    /// No timestamp, or one outside the window native pushes accept.
    timestamp,
    /// A value CloudWatch cannot hold (NaN, an infinity, out of range, too many samples or
    /// buckets).
    value,
    /// The point contradicts itself or OTLP's rules.
    malformed,
    /// The point would start a new cumulative stream beyond the streams' bound.
    stream_limit,
}

impl OtlpRejectReason {
    /// Every reason, in declaration order.
    pub const ALL: [OtlpRejectReason; 5] = [
        OtlpRejectReason::identity,
        OtlpRejectReason::timestamp,
        OtlpRejectReason::value,
        OtlpRejectReason::malformed,
        OtlpRejectReason::stream_limit,
    ];
}

/// Version label of `thermostat_remote_write_requests_total`: the remote-write protocol.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum RemoteWriteVersion {
    /// Remote write 1.0 (`prometheus.WriteRequest`).
    v1,
    /// Remote write 2.0 (`io.prometheus.write.v2.Request`).
    v2,
}

/// Outcome label of `thermostat_remote_write_requests_total`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum WriteOutcome {
    /// Stored (durable) and answered 2xx.
    accepted,
    /// Refused whole, nothing of it stored.
    refused,
}

/// Kind label of `thermostat_remote_write_written_total`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum WrittenKind {
    /// Float samples.
    sample,
    /// Native histograms.
    histogram,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabels {
    version: RemoteWriteVersion,
    outcome: WriteOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WrittenLabels {
    kind: WrittenKind,
}

/// Result label of `thermostat_otlp_points_total`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum PointResult {
    accepted,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: Outcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: RejectReason,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OtlpOutcomeLabels {
    outcome: OtlpOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PointResultLabels {
    result: PointResult,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OtlpReasonLabels {
    reason: OtlpRejectReason,
}

/// The telemetry registry. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Telemetry {
    registry: Registry,
    samples: Counter<f64, AtomicU64>,
    requests: Family<OutcomeLabels, Counter>,
    rejected: Family<ReasonLabels, Counter>,
    series_active: Gauge,
    series_refused: Counter,
    otlp_requests: Family<OtlpOutcomeLabels, Counter>,
    otlp_points: Family<PointResultLabels, Counter>,
    otlp_rejected: Family<OtlpReasonLabels, Counter>,
    remote_write_requests: Family<WriteLabels, Counter>,
    remote_write_written: Family<WrittenLabels, Counter>,
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
    /// A registry with the ingest metrics only, registered at zero.
    pub fn new() -> Self {
        Self::with_components(|_| {})
    }

    /// A registry holding the metrics `components` registers (first, in the order it
    /// registers them), then the ingest metrics, all at zero.
    pub fn with_components(components: impl FnOnce(&mut Registry)) -> Self {
        let mut registry = Registry::default();
        components(&mut registry);
        let samples = Counter::<f64, AtomicU64>::default();
        let requests = Family::<OutcomeLabels, Counter>::default();
        let rejected = Family::<ReasonLabels, Counter>::default();
        let series_active = Gauge::default();
        let series_refused = Counter::default();
        let otlp_requests = Family::<OtlpOutcomeLabels, Counter>::default();
        let otlp_points = Family::<PointResultLabels, Counter>::default();
        let otlp_rejected = Family::<OtlpReasonLabels, Counter>::default();
        let remote_write_requests = Family::<WriteLabels, Counter>::default();
        let remote_write_written = Family::<WrittenLabels, Counter>::default();
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
        registry.register(
            "thermostat_otlp_requests",
            "OTLP export requests (gRPC and HTTP) by outcome: accepted (every point kept), partial (some points rejected), refused (the request refused whole)",
            otlp_requests.clone(),
        );
        registry.register(
            "thermostat_otlp_points",
            "OTLP data points by result: accepted (stored once durable)",
            otlp_points.clone(),
        );
        registry.register(
            "thermostat_otlp_points_rejected",
            "OTLP data points rejected in a partial success, by reason",
            otlp_rejected.clone(),
        );
        registry.register(
            "thermostat_remote_write_requests",
            "Prometheus remote-write requests by protocol version and outcome: accepted (stored and answered 2xx), refused (nothing of it stored)",
            remote_write_requests.clone(),
        );
        registry.register(
            "thermostat_remote_write_written",
            "Prometheus remote-write samples and native histograms stored, by kind",
            remote_write_written.clone(),
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
        for outcome in [
            OtlpOutcome::accepted,
            OtlpOutcome::partial,
            OtlpOutcome::refused,
        ] {
            drop(otlp_requests.get_or_create(&OtlpOutcomeLabels { outcome }));
        }
        drop(otlp_points.get_or_create(&PointResultLabels {
            result: PointResult::accepted,
        }));
        for reason in OtlpRejectReason::ALL {
            drop(otlp_rejected.get_or_create(&OtlpReasonLabels { reason }));
        }
        for version in [RemoteWriteVersion::v1, RemoteWriteVersion::v2] {
            for outcome in [WriteOutcome::accepted, WriteOutcome::refused] {
                drop(remote_write_requests.get_or_create(&WriteLabels { version, outcome }));
            }
        }
        for kind in [WrittenKind::sample, WrittenKind::histogram] {
            drop(remote_write_written.get_or_create(&WrittenLabels { kind }));
        }
        Telemetry {
            registry,
            samples,
            requests,
            rejected,
            series_active,
            series_refused,
            otlp_requests,
            otlp_points,
            otlp_rejected,
            remote_write_requests,
            remote_write_written,
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

    /// Counts an answered OTLP export: `accepted` points stored and one rejected point per
    /// item of `rejected`; the request is `partial` when any point was rejected.
    pub fn otlp_answered(
        &self,
        accepted: u64,
        rejected: impl IntoIterator<Item = OtlpRejectReason>,
    ) {
        let mut any_rejected = false;
        for reason in rejected {
            any_rejected = true;
            self.otlp_rejected
                .get_or_create(&OtlpReasonLabels { reason })
                .inc();
        }
        self.otlp_points
            .get_or_create(&PointResultLabels {
                result: PointResult::accepted,
            })
            .inc_by(accepted);
        let outcome = if any_rejected {
            OtlpOutcome::partial
        } else {
            OtlpOutcome::accepted
        };
        self.otlp_requests
            .get_or_create(&OtlpOutcomeLabels { outcome })
            .inc();
    }

    /// Counts an OTLP export refused whole.
    pub fn otlp_refused(&self) {
        self.otlp_requests
            .get_or_create(&OtlpOutcomeLabels {
                outcome: OtlpOutcome::refused,
            })
            .inc();
    }

    /// Counts a stored remote-write request and what it wrote.
    pub fn remote_write_accepted(
        &self,
        version: RemoteWriteVersion,
        samples: u64,
        histograms: u64,
    ) {
        self.remote_write_requests
            .get_or_create(&WriteLabels {
                version,
                outcome: WriteOutcome::accepted,
            })
            .inc();
        for (kind, n) in [
            (WrittenKind::sample, samples),
            (WrittenKind::histogram, histograms),
        ] {
            self.remote_write_written
                .get_or_create(&WrittenLabels { kind })
                .inc_by(n);
        }
    }

    /// Counts a remote-write request refused whole (after it was decoded).
    pub fn remote_write_refused(&self, version: RemoteWriteVersion) {
        self.remote_write_requests
            .get_or_create(&WriteLabels {
                version,
                outcome: WriteOutcome::refused,
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

    #[test]
    fn remote_writes_are_counted_by_version_and_outcome() {
        let t = Telemetry::new();
        let text = t.render();
        assert!(
            text.contains(
                "thermostat_remote_write_requests_total{version=\"v2\",outcome=\"refused\"} 0"
            ),
            "{text}"
        );
        t.remote_write_accepted(RemoteWriteVersion::v1, 5, 0);
        t.remote_write_accepted(RemoteWriteVersion::v2, 2, 3);
        t.remote_write_refused(RemoteWriteVersion::v2);
        let text = t.render();
        for line in [
            "thermostat_remote_write_requests_total{version=\"v1\",outcome=\"accepted\"} 1",
            "thermostat_remote_write_requests_total{version=\"v2\",outcome=\"accepted\"} 1",
            "thermostat_remote_write_requests_total{version=\"v2\",outcome=\"refused\"} 1",
            "thermostat_remote_write_written_total{kind=\"sample\"} 7",
            "thermostat_remote_write_written_total{kind=\"histogram\"} 3",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn otlp_requests_points_and_rejections_are_counted() {
        let t = Telemetry::new();
        let text = t.render();
        for zero in [
            "thermostat_otlp_requests_total{outcome=\"partial\"} 0",
            "thermostat_otlp_points_total{result=\"accepted\"} 0",
            "thermostat_otlp_points_rejected_total{reason=\"stream_limit\"} 0",
        ] {
            assert!(text.lines().any(|l| l == zero), "{zero}: {text}");
        }
        t.otlp_answered(3, []);
        t.otlp_answered(
            2,
            [
                OtlpRejectReason::value,
                OtlpRejectReason::timestamp,
                OtlpRejectReason::value,
            ],
        );
        t.otlp_refused();
        let text = t.render();
        for line in [
            "thermostat_otlp_requests_total{outcome=\"accepted\"} 1",
            "thermostat_otlp_requests_total{outcome=\"partial\"} 1",
            "thermostat_otlp_requests_total{outcome=\"refused\"} 1",
            "thermostat_otlp_points_total{result=\"accepted\"} 5",
            "thermostat_otlp_points_rejected_total{reason=\"value\"} 2",
            "thermostat_otlp_points_rejected_total{reason=\"timestamp\"} 1",
            "thermostat_otlp_points_rejected_total{reason=\"identity\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}: {text}");
        }
    }

    #[test]
    fn components_register_before_the_ingest_metrics() {
        let events = Counter::<u64>::default();
        let t = Telemetry::with_components(|registry| {
            registry.register("thermostat_component_events", "Events", events.clone());
        });
        events.inc();
        let text = t.render();
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        assert_eq!(
            names,
            [
                "thermostat_component_events",
                "thermostat_ingest_samples",
                "thermostat_ingest_requests",
                "thermostat_ingest_rejected",
                "thermostat_series_active",
                "thermostat_ingest_series_refused",
                "thermostat_otlp_requests",
                "thermostat_otlp_points",
                "thermostat_otlp_points_rejected",
                "thermostat_remote_write_requests",
                "thermostat_remote_write_written",
            ],
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l == "thermostat_component_events_total 1"),
            "{text}"
        );
        // Label values come in hash order: compare the lines as sets.
        let sorted = |text: String| {
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            lines.sort();
            lines
        };
        assert_eq!(
            sorted(Telemetry::new().render()),
            sorted(Telemetry::with_components(|_| {}).render())
        );
    }
}
