//! The workload as OTLP/gRPC `ExportMetricsServiceRequest`s, the shape an OpenTelemetry
//! Collector sends.
//!
//! Request `k` carries exactly the samples of the native request `k` ([`Workload::request`]):
//! the same series, timestamps and values, in the same requests. It holds one
//! `ResourceMetrics` whose resource has the one attribute `service.name` = the workload's
//! namespace (the server takes the namespace from it), one `ScopeMetrics`, and one `Metric`
//! per metric name in the request (in order of first appearance, unit `%`), each a `Gauge`
//! whose data points are that name's datums in request order: the series' dimensions as string
//! attributes, `time_unix_nano` = the sample's timestamp, `as_double` = its value.

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;
use thermostat_proto::v1::PutMetricDataRequest;

use crate::Workload;

/// The resource attribute that carries the namespace.
pub const SERVICE_NAME: &str = "service.name";
/// OTLP unit of every metric: `%`, which the server maps to CloudWatch's `Percent` (the native
/// workload's unit).
pub const UNIT: &str = "%";
/// Name of the instrumentation scope of every request.
pub const SCOPE: &str = "thermostat-loadgen";

/// A string attribute.
fn string_attribute(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..KeyValue::default()
    }
}

/// Unix nanoseconds of a Unix-millisecond timestamp (0 for one before 1970, which the workload
/// never generates).
fn unix_nanos(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
}

/// The OTLP form of a native request: its datums (one sample each) as gauge points.
pub fn export_request(r: &PutMetricDataRequest) -> ExportMetricsServiceRequest {
    let mut metrics: Vec<Metric> = Vec::new();
    for d in &r.metric_data {
        let point = NumberDataPoint {
            attributes: d
                .dimensions
                .iter()
                .map(|dim| string_attribute(&dim.name, dim.value.clone()))
                .collect(),
            time_unix_nano: unix_nanos(d.timestamp_ms),
            value: Some(number_data_point::Value::AsDouble(
                d.value.unwrap_or_default(),
            )),
            ..NumberDataPoint::default()
        };
        // A request names at most a handful of metrics (10 in the fleet layout).
        let existing = metrics.iter_mut().find(|m| m.name == d.metric_name);
        let m = match existing {
            Some(m) => m,
            None => {
                metrics.push(Metric {
                    name: d.metric_name.clone(),
                    unit: UNIT.to_owned(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: Vec::new(),
                    })),
                    ..Metric::default()
                });
                let last = metrics.len() - 1;
                &mut metrics[last]
            }
        };
        if let Some(metric::Data::Gauge(g)) = &mut m.data {
            g.data_points.push(point);
        }
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![string_attribute(SERVICE_NAME, r.namespace.clone())],
                ..Resource::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: SCOPE.to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..InstrumentationScope::default()
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// Samples the server accepted of `sent`, by an OTLP response: OTLP answers only the rejected
/// points (`partial_success.rejected_data_points`; no partial success = all accepted).
pub fn accepted(r: &ExportMetricsServiceResponse, sent: u64) -> u64 {
    let rejected = r
        .partial_success
        .as_ref()
        .map_or(0, |p| u64::try_from(p.rejected_data_points).unwrap_or(0));
    sent.saturating_sub(rejected)
}

impl Workload {
    /// Request `k` as OTLP (see the module documentation).
    ///
    /// # Panics
    /// If `k` is out of range.
    pub fn otlp_request(&self, k: usize) -> ExportMetricsServiceRequest {
        export_request(&self.request(k))
    }

    /// Every request as OTLP, protobuf-encoded, in order.
    pub fn encode_otlp(&self) -> Vec<Bytes> {
        (0..self.request_count())
            .map(|k| Bytes::from(self.otlp_request(k).encode_to_vec()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsPartialSuccess;
    use thermostat_proto::v1::MetricDatum;

    use super::*;
    use crate::{Layout, Order, WorkloadSpec};

    const NOW: i64 = 1_700_000_000_123;

    /// One sample: namespace, metric name, dimensions in order, timestamp (ms), value bits.
    type Sample = (String, String, Vec<(String, String)>, i64, u64);

    fn workload(
        series: usize,
        samples: usize,
        batch: usize,
        layout: Layout,
        order: Order,
    ) -> Workload {
        Workload::new(
            WorkloadSpec {
                series,
                samples_per_series: samples,
                batch,
                seed: 11,
                layout,
                order,
                ..WorkloadSpec::default()
            },
            NOW,
        )
        .unwrap()
    }

    fn specs() -> Vec<Workload> {
        vec![
            workload(50, 20, 100, Layout::Instances, Order::Time),
            workload(7, 13, 10, Layout::Instances, Order::Time),
            workload(3, 5, 1000, Layout::Instances, Order::Agent),
            workload(40, 6, 25, Layout::Hosts { metrics: 10 }, Order::Time),
            workload(21, 10, 6, Layout::Hosts { metrics: 3 }, Order::Agent),
        ]
    }

    fn native_samples(r: &PutMetricDataRequest) -> Vec<Sample> {
        r.metric_data
            .iter()
            .map(|d: &MetricDatum| {
                (
                    r.namespace.clone(),
                    d.metric_name.clone(),
                    d.dimensions
                        .iter()
                        .map(|x| (x.name.clone(), x.value.clone()))
                        .collect(),
                    d.timestamp_ms,
                    d.value.unwrap().to_bits(),
                )
            })
            .collect()
    }

    fn string_value(kv: &KeyValue) -> String {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            other => panic!("attribute {} is not a string: {other:?}", kv.key),
        }
    }

    /// Decodes an encoded OTLP request, checks its shape (one resource with `service.name`,
    /// one scope, one gauge metric per name with unit `%`, string attributes, whole-millisecond
    /// timestamps, double values) and returns its samples in order, metric by metric.
    fn otlp_samples(bytes: &[u8]) -> Vec<Sample> {
        let r = ExportMetricsServiceRequest::decode(bytes).unwrap();
        assert_eq!(
            r.resource_metrics.len(),
            1,
            "one ResourceMetrics per request"
        );
        let rm = &r.resource_metrics[0];
        let attrs = &rm.resource.as_ref().unwrap().attributes;
        assert_eq!(attrs.len(), 1);
        assert_eq!(attrs[0].key, SERVICE_NAME);
        let namespace = string_value(&attrs[0]);
        assert_eq!(rm.scope_metrics.len(), 1);
        let metrics = &rm.scope_metrics[0].metrics;
        let names: HashSet<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names.len(), metrics.len(), "one Metric per metric name");
        let mut out = Vec::new();
        for m in metrics {
            assert_eq!(m.unit, UNIT);
            let Some(metric::Data::Gauge(g)) = &m.data else {
                panic!("{} is not a gauge: {:?}", m.name, m.data);
            };
            assert!(!g.data_points.is_empty());
            for p in &g.data_points {
                assert_eq!(p.time_unix_nano % 1_000_000, 0, "whole milliseconds");
                let Some(number_data_point::Value::AsDouble(v)) = p.value else {
                    panic!("not a double: {:?}", p.value);
                };
                out.push((
                    namespace.clone(),
                    m.name.clone(),
                    p.attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), string_value(kv)))
                        .collect(),
                    i64::try_from(p.time_unix_nano / 1_000_000).unwrap(),
                    v.to_bits(),
                ));
            }
        }
        out
    }

    #[test]
    fn otlp_requests_decode_to_exactly_the_workloads_samples_grouped_by_metric() {
        for w in specs() {
            let encoded = w.encode_otlp();
            assert_eq!(encoded.len(), w.request_count());
            for (k, bytes) in encoded.iter().enumerate() {
                let native = native_samples(&w.request(k));
                let otlp = otlp_samples(bytes);
                assert!(otlp.len() <= w.spec().batch);
                // Grouping by metric name keeps each name's datums in request order, so the
                // OTLP samples are the native ones stably sorted by first appearance of the name.
                let mut order: Vec<&str> = Vec::new();
                for s in &native {
                    if !order.contains(&s.1.as_str()) {
                        order.push(&s.1);
                    }
                }
                let mut grouped = native.clone();
                grouped.sort_by_key(|s| order.iter().position(|n| *n == s.1));
                assert_eq!(otlp, grouped, "request {k} of {:?}", w.spec());
            }
        }
    }

    #[test]
    fn native_and_otlp_carry_the_same_sample_set() {
        for w in specs() {
            let mut native: Vec<Sample> = w
                .encode()
                .iter()
                .flat_map(|b| native_samples(&PutMetricDataRequest::decode(&b[..]).unwrap()))
                .collect();
            let mut otlp: Vec<Sample> = w
                .encode_otlp()
                .iter()
                .flat_map(|b| otlp_samples(b))
                .collect();
            assert_eq!(otlp.len() as u64, w.samples());
            native.sort();
            otlp.sort();
            assert_eq!(native, otlp, "{:?}", w.spec());
            let distinct: HashSet<&Sample> = otlp.iter().collect();
            assert_eq!(distinct.len(), otlp.len(), "every sample once");
        }
    }

    /// The benchmark's shape: in time order, a 1,000-point request holds 1,000 different series.
    #[test]
    fn time_order_requests_hold_points_of_different_series() {
        let w = workload(2000, 2, 1000, Layout::Hosts { metrics: 10 }, Order::Time);
        for k in 0..w.request_count() {
            let samples = otlp_samples(&w.otlp_request(k).encode_to_vec());
            assert_eq!(samples.len(), 1000);
            let series: HashSet<(&str, &Vec<(String, String)>)> =
                samples.iter().map(|s| (s.1.as_str(), &s.2)).collect();
            assert_eq!(series.len(), 1000);
            assert_eq!(
                w.otlp_request(k).resource_metrics[0].scope_metrics[0]
                    .metrics
                    .len(),
                10
            );
        }
    }

    #[test]
    fn accepted_is_sent_minus_rejected() {
        let ok = ExportMetricsServiceResponse::default();
        assert_eq!(accepted(&ok, 1000), 1000);
        let partial = ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess {
                rejected_data_points: 3,
                error_message: "three bad points".into(),
            }),
        };
        assert_eq!(accepted(&partial, 1000), 997);
        let warning_only = ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess {
                rejected_data_points: 0,
                error_message: "a warning".into(),
            }),
        };
        assert_eq!(accepted(&warning_only, 10), 10);
        let nonsense = ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess {
                rejected_data_points: -5,
                error_message: String::new(),
            }),
        };
        assert_eq!(accepted(&nonsense, 10), 10);
    }
}
