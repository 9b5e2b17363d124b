//! The mapping's rules, one test (or a few) per rule of `docs/otlp.md`.

use opentelemetry_proto::tonic::common::v1::{ArrayValue, InstrumentationScope, KeyValueList};
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, Gauge, Histogram, ResourceMetrics, ScopeMetrics, Sum, Summary,
    exponential_histogram_data_point::Buckets, summary_data_point::ValueAtQuantile,
};
use opentelemetry_proto::tonic::resource::v1::Resource as OtlpResource;

use super::*;
use crate::partial_success;

const NOW: i64 = 1_700_000_000_000;
const START: i64 = NOW - 600_000;

fn ns(ms: i64) -> u64 {
    u64::try_from(ms).unwrap() * 1_000_000
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        key_strindex: 0,
    }
}

fn text(s: &str) -> Value {
    Value::StringValue(s.into())
}

fn service() -> Vec<KeyValue> {
    vec![
        kv("service.name", text("checkout")),
        kv("host.name", text("web-1")),
    ]
}

fn request_in(
    resource: Vec<KeyValue>,
    scope: &str,
    metrics: Vec<Metric>,
) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(OtlpResource {
                attributes: resource,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: scope.into(),
                    ..Default::default()
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    request_in(service(), "lib", metrics)
}

fn metric(name: &str, unit: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(data),
        ..Default::default()
    }
}

fn number(start_ms: i64, time_ms: i64, value: f64, attributes: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: if start_ms == 0 { 0 } else { ns(start_ms) },
        time_unix_nano: if time_ms == 0 { 0 } else { ns(time_ms) },
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    metric(
        name,
        "",
        Data::Gauge(Gauge {
            data_points: points,
        }),
    )
}

fn sum(
    name: &str,
    temporality: AggregationTemporality,
    monotonic: bool,
    points: Vec<NumberDataPoint>,
) -> Metric {
    metric(
        name,
        "1",
        Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality as i32,
            is_monotonic: monotonic,
        }),
    )
}

fn counter(points: Vec<NumberDataPoint>) -> Metric {
    sum("requests", AggregationTemporality::Cumulative, true, points)
}

fn options() -> MapOptions {
    MapOptions {
        resource_dimensions: Vec::new(),
        max_streams: 1_000,
        stream_idle_ms: 3_600_000,
    }
}

fn run(streams: &mut Streams, request: &ExportMetricsServiceRequest) -> Mapped {
    map(request, streams, NOW, &options())
}

fn values(mapped: &Mapped) -> Vec<f64> {
    mapped
        .points
        .iter()
        .map(|p| match &p.data {
            MappedData::Value(v) => *v,
            MappedData::Distribution { .. } => panic!("a distribution: {p:?}"),
        })
        .collect()
}

/// count, sum, min, max, values, counts.
type Parts<'a> = (u64, f64, Option<f64>, Option<f64>, &'a [f64], &'a [u64]);

fn distribution(point: &MappedPoint) -> Parts<'_> {
    match &point.data {
        MappedData::Distribution {
            count,
            sum,
            min,
            max,
            values,
            counts,
        } => (*count, *sum, *min, *max, values, counts),
        MappedData::Value(v) => panic!("a value: {v}"),
    }
}

// === identity ===

#[test]
fn namespace_is_service_namespace_then_service_name_then_otlp() {
    let point = || vec![gauge("g", vec![number(0, NOW, 1.0, vec![])])];
    let mut streams = Streams::new();
    let both = request_in(
        vec![
            kv("service.namespace", text("shop")),
            kv("service.name", text("checkout")),
        ],
        "lib",
        point(),
    );
    let m = run(&mut streams, &both);
    let series = &m.points[0].series;
    assert_eq!(series.namespace(), "shop");
    assert_eq!(
        series.dimension("service.name"),
        Some("checkout"),
        "service.name is always a dimension"
    );
    assert_eq!(
        series.dimension("service.namespace"),
        None,
        "it is the namespace"
    );

    let name_only = request_in(vec![kv("service.name", text("checkout"))], "lib", point());
    let m = run(&mut streams, &name_only);
    assert_eq!(m.points[0].series.namespace(), "checkout");
    assert_eq!(
        m.points[0].series.dimension("service.name"),
        Some("checkout")
    );

    let empty_namespace = request_in(
        vec![
            kv("service.namespace", text("")),
            kv("service.name", text("checkout")),
        ],
        "lib",
        point(),
    );
    let m = run(&mut streams, &empty_namespace);
    assert_eq!(
        m.points[0].series.namespace(),
        "checkout",
        "an empty string counts as absent"
    );

    let neither = request_in(vec![], "lib", point());
    let m = run(&mut streams, &neither);
    assert_eq!(m.points[0].series.namespace(), "OTLP");
    assert!(m.points[0].series.dimensions().is_empty());
    assert_eq!(m.points[0].series.metric_name(), "g");
}

#[test]
fn dimensions_are_point_attributes_and_chosen_resource_attributes() {
    let mut resource = service();
    resource.push(kv("deployment.environment", text("prod")));
    resource.push(kv("k8s.pod.name", text("pod-7")));
    let req = request_in(
        resource,
        "lib",
        vec![gauge(
            "g",
            vec![number(
                0,
                NOW,
                1.0,
                vec![kv("route", text("/pay")), kv("host.name", text("override"))],
            )],
        )],
    );
    let mut streams = Streams::new();
    let mut opts = options();
    opts.resource_dimensions = vec!["deployment.environment".into(), "missing.attr".into()];
    let m = map(&req, &mut streams, NOW, &opts);
    let dims: Vec<(&str, &str)> = m.points[0]
        .series
        .dimensions()
        .iter()
        .map(|d| (d.name, d.value))
        .collect();
    assert_eq!(
        dims,
        [
            ("deployment.environment", "prod"),
            ("host.name", "override"),
            ("route", "/pay"),
            ("service.name", "checkout"),
        ],
        "sorted; the point's attribute wins over the resource's; k8s.pod.name was not chosen"
    );
}

#[test]
fn non_string_attributes_are_their_json_text() {
    let attributes = vec![
        kv("int", Value::IntValue(42)),
        kv("bool", Value::BoolValue(true)),
        kv("double", Value::DoubleValue(0.5)),
        kv(
            "array",
            Value::ArrayValue(ArrayValue {
                values: vec![
                    AnyValue {
                        value: Some(text("a")),
                    },
                    AnyValue {
                        value: Some(Value::IntValue(2)),
                    },
                ],
            }),
        ),
        kv(
            "kvlist",
            Value::KvlistValue(KeyValueList {
                values: vec![kv("k", text("v"))],
            }),
        ),
    ];
    let m = run(
        &mut Streams::new(),
        &request(vec![gauge("g", vec![number(0, NOW, 1.0, attributes)])]),
    );
    let series = &m.points[0].series;
    assert_eq!(series.dimension("int"), Some("42"));
    assert_eq!(series.dimension("bool"), Some("true"));
    assert_eq!(series.dimension("double"), Some("0.5"));
    assert_eq!(series.dimension("array"), Some(r#"["a",2]"#));
    assert_eq!(series.dimension("kvlist"), Some(r#"{"k":"v"}"#));
}

#[test]
fn at_most_30_dimensions_and_more_is_a_rejected_point() {
    let attrs = |n: usize| {
        (0..n)
            .map(|i| kv(&format!("a{i}"), text("v")))
            .collect::<Vec<_>>()
    };
    // service.name and host.name come from the resource: 28 + 2 = 30.
    let req = request(vec![gauge(
        "g",
        vec![
            number(0, NOW, 1.0, attrs(28)),
            number(0, NOW, 2.0, attrs(29)),
        ],
    )]);
    let m = run(&mut Streams::new(), &req);
    assert_eq!(m.points.len(), 1);
    assert_eq!(m.points[0].series.dimensions().len(), 30);
    assert_eq!(m.rejected.len(), 1);
    let r = &m.rejected[0];
    assert_eq!(
        (r.metric.as_str(), r.point, r.reason),
        ("g", 1, RejectReason::Identity)
    );
    assert!(
        r.rule
            .contains("must be at most 30 (got 31: 29 point attributes and 2 from the resource)"),
        "{}",
        r.rule
    );
}

#[test]
fn names_and_values_follow_thermostats_dimension_rules() {
    let req = request(vec![gauge(
        "g",
        vec![
            number(0, NOW, 1.0, vec![kv("", text("v"))]),
            number(0, NOW, 1.0, vec![kv("k", text(""))]),
            number(0, NOW, 1.0, vec![kv("k", text("café"))]),
            number(0, NOW, 1.0, vec![kv("k", text(&"x".repeat(1025)))]),
            number(0, NOW, 1.0, vec![kv("k", text("a")), kv("k", text("b"))]),
            number(0, NOW, 1.0, vec![kv(":k", text("a"))]),
        ],
    )]);
    let m = run(&mut Streams::new(), &req);
    assert!(m.points.is_empty());
    let rules: Vec<&str> = m.rejected.iter().map(|r| r.rule.as_str()).collect();
    assert!(
        rules[0].starts_with("attributes[0].key (a dimension name): must be 1 to 255 characters"),
        "{}",
        rules[0]
    );
    assert!(
        rules[1].contains("must be 1 to 1024 characters (got 0)"),
        "{}",
        rules[1]
    );
    assert!(
        rules[2].contains("must contain only ASCII characters"),
        "{}",
        rules[2]
    );
    assert!(
        rules[3].contains("must be 1 to 1024 characters as JSON text"),
        "{}",
        rules[3]
    );
    assert!(rules[4].contains("must be unique"), "{}", rules[4]);
    assert!(rules[5].contains("must not start with ':'"), "{}", rules[5]);
    assert!(
        m.rejected
            .iter()
            .all(|r| r.reason == RejectReason::Identity)
    );
}

#[test]
fn a_bad_namespace_or_metric_name_rejects_every_point() {
    let resource = vec![kv("service.name", text("bad*name"))];
    let req = request_in(
        resource,
        "lib",
        vec![gauge("g", vec![number(0, NOW, 1.0, vec![]); 3])],
    );
    let m = run(&mut Streams::new(), &req);
    assert_eq!(m.rejected.len(), 3);
    assert!(
        m.rejected[0].rule.starts_with(
            "namespace (the resource attribute service.name \"bad*name\"): may contain only"
        ),
        "{}",
        m.rejected[0].rule
    );
    let req = request(vec![gauge(
        &"n".repeat(256),
        vec![number(0, NOW, 1.0, vec![]); 2],
    )]);
    let m = run(&mut Streams::new(), &req);
    assert_eq!(m.rejected.len(), 2);
    assert!(
        m.rejected[1]
            .rule
            .starts_with("name: must be 1 to 255 characters"),
        "{}",
        m.rejected[1].rule
    );
}

#[test]
fn units_are_mapped() {
    let mut g = gauge("latency", vec![number(0, NOW, 1.0, vec![])]);
    g.unit = "ms".into();
    let mut b = gauge("size", vec![number(0, NOW, 1.0, vec![])]);
    b.unit = "By".into();
    let mut r = gauge("ratio", vec![number(0, NOW, 1.0, vec![])]);
    r.unit = "1".into();
    let m = run(&mut Streams::new(), &request(vec![g, b, r]));
    let units: Vec<Unit> = m.points.iter().map(|p| p.unit).collect();
    assert_eq!(units, [Unit::Milliseconds, Unit::Bytes, Unit::None]);
}

// === timestamps and values ===

#[test]
fn timestamps_are_the_points_time_in_ms_and_must_be_set_and_recent() {
    let mut p = number(0, NOW, 1.0, vec![]);
    p.time_unix_nano += 999_999; // sub-millisecond part dropped
    let req = request(vec![gauge(
        "g",
        vec![
            p,
            number(0, 0, 1.0, vec![]),
            number(0, NOW - 15 * 86_400_000, 1.0, vec![]),
            number(0, NOW + 3 * 3_600_000, 1.0, vec![]),
        ],
    )]);
    let m = run(&mut Streams::new(), &req);
    assert_eq!(m.points.len(), 1);
    assert_eq!(m.points[0].timestamp_ms, NOW);
    let rules: Vec<(usize, &str)> = m
        .rejected
        .iter()
        .map(|r| (r.point, r.rule.as_str()))
        .collect();
    assert_eq!(rules[0], (1, "time_unix_nano: must be set (got 0)"));
    assert!(
        rules[1]
            .1
            .starts_with("time_unix_nano: must be within the past 14 days"),
        "{}",
        rules[1].1
    );
    assert!(
        rules[2]
            .1
            .starts_with("time_unix_nano: must be at most 2 hours in the future"),
        "{}",
        rules[2].1
    );
    assert!(
        m.rejected
            .iter()
            .all(|r| r.reason == RejectReason::Timestamp)
    );
}

#[test]
fn nan_and_infinities_are_rejected_and_the_other_points_kept() {
    let req = request(vec![gauge(
        "temperature",
        vec![
            number(0, NOW, 21.5, vec![]),
            number(0, NOW, f64::NAN, vec![]),
            number(0, NOW, f64::INFINITY, vec![]),
            number(0, NOW, 22.0, vec![]),
        ],
    )]);
    let m = run(&mut Streams::new(), &req);
    assert_eq!(values(&m), [21.5, 22.0]);
    assert_eq!(m.rejected.len(), 2);
    assert!(m.rejected.iter().all(|r| r.reason == RejectReason::Value));
    let partial = partial_success(&m.rejected).unwrap();
    assert_eq!(partial.rejected_data_points, 2);
    assert_eq!(
        partial.error_message,
        "2 data points were rejected: metric \"temperature\" point 1: as_double: must be a number (got NaN); \
         metric \"temperature\" point 2: as_double: must be finite (got inf)"
    );
}

#[test]
fn a_point_without_a_value_is_rejected_and_no_recorded_value_is_skipped() {
    let mut missing = number(0, NOW, 0.0, vec![]);
    missing.value = None;
    let mut stale_marker = number(START, NOW, 0.0, vec![]);
    stale_marker.value = None;
    stale_marker.flags = DataPointFlags::NoRecordedValueMask as u32;
    let mut streams = Streams::new();
    let m = run(
        &mut streams,
        &request(vec![gauge("g", vec![missing]), counter(vec![stale_marker])]),
    );
    assert!(m.points.is_empty());
    assert_eq!(m.rejected.len(), 1);
    assert_eq!(
        m.rejected[0].rule,
        "value: must be as_double or as_int (neither is set; in OTLP JSON, a JSON number)"
    );
    assert_eq!(m.skipped.no_recorded_value, 1);
    assert!(streams.is_empty(), "a skipped point changes no stream");
}

#[test]
fn integer_values_are_doubles() {
    let mut p = number(0, NOW, 0.0, vec![]);
    p.value = Some(number_data_point::Value::AsInt(-7));
    let m = run(&mut Streams::new(), &request(vec![gauge("g", vec![p])]));
    assert_eq!(values(&m), [-7.0]);
}

// === sums ===

#[test]
fn a_cumulative_counter_becomes_its_increase_across_calls() {
    let mut streams = Streams::new();
    let first = run(
        &mut streams,
        &request(vec![counter(vec![number(
            START,
            NOW - 20_000,
            5.0,
            vec![],
        )])]),
    );
    assert_eq!(values(&first), [5.0], "the first point counts from zero");
    assert_eq!(first.resets, 0);
    assert_eq!(first.stream_updates.len(), 1);
    let second = run(
        &mut streams,
        &request(vec![counter(vec![number(
            START,
            NOW - 10_000,
            8.0,
            vec![],
        )])]),
    );
    assert_eq!(values(&second), [3.0]);
    let third = run(
        &mut streams,
        &request(vec![counter(vec![number(START, NOW, 8.0, vec![])])]),
    );
    assert_eq!(values(&third), [0.0], "no increase is an observation of 0");
    assert_eq!(streams.len(), 1);
}

#[test]
fn a_new_start_time_is_a_reset_counted_from_zero() {
    let mut streams = Streams::new();
    run(
        &mut streams,
        &request(vec![counter(vec![number(
            START,
            NOW - 20_000,
            10.0,
            vec![],
        )])]),
    );
    let m = run(
        &mut streams,
        &request(vec![counter(vec![
            number(START, NOW - 10_000, 15.0, vec![]),
            number(NOW - 5_000, NOW, 4.0, vec![]),
        ])]),
    );
    assert_eq!(values(&m), [5.0, 4.0]);
    assert_eq!(m.resets, 1);
}

#[test]
fn a_decrease_without_a_new_start_is_a_reset_counted_from_zero() {
    let mut streams = Streams::new();
    run(
        &mut streams,
        &request(vec![counter(vec![number(
            START,
            NOW - 10_000,
            10.0,
            vec![],
        )])]),
    );
    let m = run(
        &mut streams,
        &request(vec![counter(vec![number(START, NOW, 3.0, vec![])])]),
    );
    assert_eq!(values(&m), [3.0]);
    assert_eq!(m.resets, 1);
}

#[test]
fn stale_cumulative_points_are_skipped() {
    let mut streams = Streams::new();
    run(
        &mut streams,
        &request(vec![counter(vec![number(START, NOW, 10.0, vec![])])]),
    );
    let before = streams.clone();
    let m = run(
        &mut streams,
        &request(vec![counter(vec![
            number(START, NOW, 10.0, vec![]),        // a retry of the same point
            number(START, NOW - 5_000, 9.0, vec![]), // out of order
            number(START - 1_000, NOW, 99.0, vec![]), // from before a restart
        ])]),
    );
    assert!(m.points.is_empty());
    assert_eq!(m.skipped.stale, 3);
    assert!(m.stream_updates.is_empty());
    assert_eq!(streams, before);
}

#[test]
fn delta_sums_are_taken_as_they_are() {
    let mut streams = Streams::new();
    let delta = |v| {
        sum(
            "requests",
            AggregationTemporality::Delta,
            true,
            vec![number(NOW - 10_000, NOW, v, vec![])],
        )
    };
    assert_eq!(
        values(&run(&mut streams, &request(vec![delta(5.0)]))),
        [5.0]
    );
    assert_eq!(
        values(&run(&mut streams, &request(vec![delta(5.0)]))),
        [5.0]
    );
    assert!(streams.is_empty(), "delta sums need no state");
}

#[test]
fn non_monotonic_sums_are_gauges_of_their_value() {
    let mut streams = Streams::new();
    for temporality in [
        AggregationTemporality::Cumulative,
        AggregationTemporality::Delta,
    ] {
        let m = run(
            &mut streams,
            &request(vec![sum(
                "queue",
                temporality,
                false,
                vec![
                    number(START, NOW - 1_000, 7.0, vec![]),
                    number(START, NOW, 4.0, vec![]),
                ],
            )]),
        );
        assert_eq!(values(&m), [7.0, 4.0]);
    }
    assert!(streams.is_empty());
}

#[test]
fn an_unspecified_temporality_is_rejected() {
    let m = run(
        &mut Streams::new(),
        &request(vec![sum(
            "requests",
            AggregationTemporality::Unspecified,
            true,
            vec![number(START, NOW, 1.0, vec![])],
        )]),
    );
    assert_eq!(
        m.rejected[0].rule,
        "aggregation_temporality: must be 1 (DELTA) or 2 (CUMULATIVE) (got 0)"
    );
    assert_eq!(m.rejected[0].reason, RejectReason::Malformed);
}

#[test]
fn senders_with_different_resources_are_separate_streams_of_one_series() {
    let mut streams = Streams::new();
    let from = |instance: &str, time: i64, v: f64| {
        let mut resource = service();
        resource.push(kv("service.instance.id", text(instance)));
        request_in(
            resource,
            "lib",
            vec![counter(vec![number(START, time, v, vec![])])],
        )
    };
    let mut total = 0.0;
    for (instance, time, v) in [
        ("a", NOW - 20_000, 100.0),
        ("b", NOW - 19_000, 50.0),
        ("a", NOW - 10_000, 110.0),
        ("b", NOW - 9_000, 55.0),
    ] {
        let m = run(&mut streams, &from(instance, time, v));
        assert_eq!(m.resets, 0, "{instance} at {time}");
        total += values(&m)[0];
    }
    assert_eq!(
        total, 165.0,
        "both senders' increases, none mistaken for a reset"
    );
    assert_eq!(streams.len(), 2);
    let series: Vec<&SeriesKey> = streams.iter().map(|(k, _)| &k.series).collect();
    assert_eq!(series[0], series[1]);
}

// === histograms ===

fn hpoint(
    start_ms: i64,
    time_ms: i64,
    bounds: &[f64],
    counts: &[u64],
    sum: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
) -> HistogramDataPoint {
    HistogramDataPoint {
        start_time_unix_nano: ns(start_ms),
        time_unix_nano: ns(time_ms),
        count: counts.iter().sum(),
        sum,
        bucket_counts: counts.to_vec(),
        explicit_bounds: bounds.to_vec(),
        min,
        max,
        ..Default::default()
    }
}

fn histogram(temporality: AggregationTemporality, points: Vec<HistogramDataPoint>) -> Metric {
    metric(
        "latency",
        "ms",
        Data::Histogram(Histogram {
            data_points: points,
            aggregation_temporality: temporality as i32,
        }),
    )
}

#[test]
fn explicit_histogram_representatives_lie_inside_their_buckets() {
    let bounds = [0.0, 5.0, 10.0];
    let p = hpoint(
        NOW - 10_000,
        NOW,
        &bounds,
        &[1, 2, 0, 3],
        Some(40.0),
        Some(-1.0),
        Some(20.0),
    );
    let m = run(
        &mut Streams::new(),
        &request(vec![histogram(AggregationTemporality::Delta, vec![p])]),
    );
    let (count, sum, min, max, values, counts) = distribution(&m.points[0]);
    assert_eq!((count, sum, min, max), (6, 40.0, Some(-1.0), Some(20.0)));
    assert_eq!(
        values,
        [-0.5, 2.5, 15.0],
        "midpoints, the open buckets narrowed by min and max"
    );
    assert_eq!(counts, [1, 2, 3]);
    assert_eq!(m.points[0].unit, Unit::Milliseconds);
    // Without min and max: the finite bound, and just above it for the last bucket.
    let p = hpoint(
        NOW - 10_000,
        NOW,
        &bounds,
        &[1, 0, 0, 1],
        Some(12.0),
        None,
        None,
    );
    let m = run(
        &mut Streams::new(),
        &request(vec![histogram(AggregationTemporality::Delta, vec![p])]),
    );
    let (_, _, _, _, values, _) = distribution(&m.points[0]);
    assert_eq!(values, [0.0, 10.0_f64.next_up()]);
}

#[test]
fn a_histogram_without_sum_gets_an_estimate_and_without_buckets_needs_one() {
    let p = hpoint(NOW - 10_000, NOW, &[10.0], &[2, 0], None, None, None);
    let m = run(
        &mut Streams::new(),
        &request(vec![histogram(AggregationTemporality::Delta, vec![p])]),
    );
    assert_eq!(distribution(&m.points[0]).1, 20.0);
    let mut bare = hpoint(NOW - 10_000, NOW, &[], &[], Some(9.0), None, None);
    bare.count = 3;
    let mut no_sum = bare.clone();
    no_sum.sum = None;
    let m = run(
        &mut Streams::new(),
        &request(vec![histogram(
            AggregationTemporality::Delta,
            vec![bare, no_sum],
        )]),
    );
    let (count, sum, _, _, values, _) = distribution(&m.points[0]);
    assert_eq!((count, sum, values.len()), (3, 9.0, 0));
    assert_eq!(
        m.rejected[0].rule,
        "sum: must be present when the histogram has no buckets"
    );
}

#[test]
fn malformed_histograms_are_rejected_with_the_rule() {
    let mut wrong_count = hpoint(NOW - 10_000, NOW, &[1.0], &[1, 1], Some(1.0), None, None);
    wrong_count.count = 3;
    let unsorted = hpoint(
        NOW - 10_000,
        NOW,
        &[2.0, 1.0],
        &[1, 1, 1],
        Some(1.0),
        None,
        None,
    );
    let short = hpoint(
        NOW - 10_000,
        NOW,
        &[1.0, 2.0],
        &[1, 1],
        Some(1.0),
        None,
        None,
    );
    let nan_bound = hpoint(
        NOW - 10_000,
        NOW,
        &[f64::NAN],
        &[1, 1],
        Some(1.0),
        None,
        None,
    );
    let min_above_max = hpoint(
        NOW - 10_000,
        NOW,
        &[1.0],
        &[1, 1],
        Some(1.0),
        Some(3.0),
        Some(2.0),
    );
    let m = run(
        &mut Streams::new(),
        &request(vec![histogram(
            AggregationTemporality::Delta,
            vec![wrong_count, unsorted, short, nan_bound, min_above_max],
        )]),
    );
    let rules: Vec<&str> = m.rejected.iter().map(|r| r.rule.as_str()).collect();
    assert_eq!(
        rules,
        [
            "bucket_counts: must add up to count (got 2, count 3)",
            "explicit_bounds[1]: must be greater than the bound before it (got 1 after 2)",
            "bucket_counts: must have one entry more than explicit_bounds (got 2 and 2)",
            "explicit_bounds[0]: must be a number (got NaN)",
            "min: must not exceed max (got min 3, max 2)",
        ]
    );
}

#[test]
fn cumulative_histograms_become_per_bucket_increases() {
    let mut streams = Streams::new();
    let bounds = [1.0, 10.0];
    let cumulative = |time, counts: &[u64], sum, min, max| {
        request(vec![histogram(
            AggregationTemporality::Cumulative,
            vec![hpoint(
                START,
                time,
                &bounds,
                counts,
                Some(sum),
                Some(min),
                Some(max),
            )],
        )])
    };
    let first = run(
        &mut streams,
        &cumulative(NOW - 20_000, &[1, 2, 0], 10.0, 0.5, 6.0),
    );
    assert_eq!(
        distribution(&first.points[0]).0,
        3,
        "the first point counts from zero"
    );
    let second = run(
        &mut streams,
        &cumulative(NOW - 10_000, &[1, 5, 2], 60.0, 0.5, 30.0),
    );
    let (count, sum, min, max, values, counts) = distribution(&second.points[0]);
    assert_eq!((count, sum), (5, 50.0));
    assert_eq!(
        min, None,
        "the running min did not move: the interval's is unknown"
    );
    assert_eq!(
        max,
        Some(30.0),
        "the running max rose: it was reached in this interval"
    );
    assert_eq!(counts, [3, 2]);
    assert_eq!(values, [5.5, 20.0]);
    // Nothing new: an empty interval is skipped, the state still moves on.
    let third = run(
        &mut streams,
        &cumulative(NOW - 5_000, &[1, 5, 2], 60.0, 0.5, 30.0),
    );
    assert!(third.points.is_empty());
    assert_eq!(third.skipped.empty, 1);
    assert_eq!(third.stream_updates.len(), 1);
    // A bucket layout change is a reset.
    let changed = request(vec![histogram(
        AggregationTemporality::Cumulative,
        vec![hpoint(
            START,
            NOW,
            &[1.0, 5.0, 10.0],
            &[1, 5, 1, 2],
            Some(70.0),
            Some(0.5),
            Some(30.0),
        )],
    )]);
    let fourth = run(&mut streams, &changed);
    assert_eq!(fourth.resets, 1);
    assert_eq!(distribution(&fourth.points[0]).0, 9);
}

fn exp_point(
    scale: i32,
    zero_count: u64,
    positive: (i32, &[u64]),
    negative: (i32, &[u64]),
) -> ExponentialHistogramDataPoint {
    let count = zero_count + positive.1.iter().sum::<u64>() + negative.1.iter().sum::<u64>();
    ExponentialHistogramDataPoint {
        start_time_unix_nano: ns(START),
        time_unix_nano: ns(NOW),
        count,
        sum: Some(1.0),
        scale,
        zero_count,
        positive: Some(Buckets {
            offset: positive.0,
            bucket_counts: positive.1.to_vec(),
        }),
        negative: Some(Buckets {
            offset: negative.0,
            bucket_counts: negative.1.to_vec(),
        }),
        ..Default::default()
    }
}

fn exponential(
    temporality: AggregationTemporality,
    points: Vec<ExponentialHistogramDataPoint>,
) -> Metric {
    metric(
        "size",
        "By",
        Data::ExponentialHistogram(ExponentialHistogram {
            data_points: points,
            aggregation_temporality: temporality as i32,
        }),
    )
}

#[test]
fn exponential_histograms_at_several_scales_with_zero_and_negative_buckets() {
    for scale in [-2, 0, 3, 20] {
        let p = exp_point(scale, 4, (-2, &[1, 0, 2, 3]), (1, &[5, 6]));
        let m = run(
            &mut Streams::new(),
            &request(vec![exponential(AggregationTemporality::Delta, vec![p])]),
        );
        assert!(m.rejected.is_empty(), "scale {scale}: {:?}", m.rejected);
        let (count, sum, _, _, values, counts) = distribution(&m.points[0]);
        assert_eq!((count, sum), (21, 1.0));
        assert_eq!(
            counts,
            [6, 5, 4, 1, 2, 3],
            "negative (largest magnitude first), zero, positive"
        );
        assert!(
            values.windows(2).all(|w| w[0] < w[1]),
            "ascending: {values:?}"
        );
        assert_eq!(values[2], 0.0, "the zero bucket is represented by 0");
        let inside = |v: f64, index: i64, negative: bool| {
            let (lower, upper) = buckets::exponential_bucket(scale, index);
            let m = if negative { -v } else { v };
            assert!(
                lower < m && m <= upper,
                "scale {scale} index {index}: {lower} < {m} <= {upper}"
            );
        };
        inside(values[0], 2, true);
        inside(values[1], 1, true);
        inside(values[3], -2, false);
        inside(values[4], 0, false);
        inside(values[5], 1, false);
    }
}

#[test]
fn exponential_scales_outside_the_specifications_range_are_rejected() {
    let m = run(
        &mut Streams::new(),
        &request(vec![exponential(
            AggregationTemporality::Delta,
            vec![
                exp_point(21, 0, (0, &[1]), (0, &[])),
                exp_point(-11, 0, (0, &[1]), (0, &[])),
            ],
        )]),
    );
    assert_eq!(m.rejected[0].rule, "scale: must be -10 to 20 (got 21)");
    assert_eq!(m.rejected[1].rule, "scale: must be -10 to 20 (got -11)");
    // A bucket beyond the doubles' range cannot have been counted.
    let m = run(
        &mut Streams::new(),
        &request(vec![exponential(
            AggregationTemporality::Delta,
            vec![exp_point(-10, 0, (1, &[1]), (0, &[]))],
        )]),
    );
    assert!(m.rejected[0].rule.starts_with("positive.bucket_counts[0]: must be 0, since bucket 1 at scale -10 holds no finite number"), "{}", m.rejected[0].rule);
    // The count must add up.
    let mut p = exp_point(0, 1, (0, &[1]), (0, &[1]));
    p.count = 2;
    let m = run(
        &mut Streams::new(),
        &request(vec![exponential(AggregationTemporality::Delta, vec![p])]),
    );
    assert!(
        m.rejected[0]
            .rule
            .starts_with("count: must equal zero_count plus"),
        "{}",
        m.rejected[0].rule
    );
}

#[test]
fn cumulative_exponential_histograms_follow_a_lowered_scale() {
    let mut streams = Streams::new();
    let mut first = exp_point(3, 1, (4, &[1, 1, 1, 1]), (0, &[]));
    first.time_unix_nano = ns(NOW - 10_000);
    run(
        &mut streams,
        &request(vec![exponential(
            AggregationTemporality::Cumulative,
            vec![first],
        )]),
    );
    // The SDK lowered the scale to 2: buckets 4..=7 at scale 3 are 2..=3 at scale 2.
    let mut second = exp_point(2, 3, (2, &[2, 5]), (0, &[]));
    second.sum = Some(4.0);
    let m = run(
        &mut streams,
        &request(vec![exponential(
            AggregationTemporality::Cumulative,
            vec![second],
        )]),
    );
    assert_eq!(m.resets, 0);
    let (count, sum, _, _, values, counts) = distribution(&m.points[0]);
    assert_eq!((count, sum), (5, 3.0));
    assert_eq!(counts, [2, 3], "zero bucket +2, bucket 3 at scale 2 +3");
    assert_eq!(values[0], 0.0);
    let (lower, upper) = buckets::exponential_bucket(2, 3);
    assert!(lower < values[1] && values[1] <= upper);
    // A higher scale again means a new histogram: a reset.
    let mut third = exp_point(3, 0, (4, &[1]), (0, &[]));
    third.time_unix_nano = ns(NOW + 1);
    let m = run(
        &mut streams,
        &request(vec![exponential(
            AggregationTemporality::Cumulative,
            vec![third],
        )]),
    );
    assert_eq!(m.resets, 1);
}

#[test]
fn summaries_are_count_and_sum_increases_without_percentiles() {
    let mut streams = Streams::new();
    let point = |time, count, sum| SummaryDataPoint {
        start_time_unix_nano: ns(START),
        time_unix_nano: ns(time),
        count,
        sum,
        quantile_values: vec![ValueAtQuantile {
            quantile: 0.99,
            value: 12.0,
        }],
        ..Default::default()
    };
    let summary = |p| {
        request(vec![metric(
            "rpc",
            "s",
            Data::Summary(Summary {
                data_points: vec![p],
            }),
        )])
    };
    let first = run(&mut streams, &summary(point(NOW - 10_000, 10, 4.0)));
    assert_eq!(
        distribution(&first.points[0]),
        (10, 4.0, None, None, &[][..], &[][..])
    );
    let second = run(&mut streams, &summary(point(NOW, 15, 6.5)));
    assert_eq!(
        distribution(&second.points[0]),
        (5, 2.5, None, None, &[][..], &[][..])
    );
}

// === streams ===

#[test]
fn a_new_stream_beyond_the_limit_is_rejected_and_existing_ones_keep_working() {
    let mut streams = Streams::new();
    let mut opts = options();
    opts.max_streams = 1;
    let point = |route: &str, time, v| {
        counter(vec![number(START, time, v, vec![kv("route", text(route))])])
    };
    let m = map(
        &request(vec![point("a", NOW - 10_000, 1.0)]),
        &mut streams,
        NOW,
        &opts,
    );
    assert_eq!(values(&m), [1.0]);
    let m = map(
        &request(vec![point("b", NOW - 10_000, 1.0), point("a", NOW, 3.0)]),
        &mut streams,
        NOW,
        &opts,
    );
    assert_eq!(values(&m), [2.0]);
    assert_eq!(m.rejected.len(), 1);
    assert_eq!(m.rejected[0].reason, RejectReason::StreamLimit);
    assert!(
        m.rejected[0]
            .rule
            .starts_with("stream: must be one of the at most 1 cumulative streams kept"),
        "{}",
        m.rejected[0].rule
    );
    // Gauges and delta sums need no stream: never limited here.
    let m = map(
        &request(vec![gauge("g", vec![number(0, NOW, 1.0, vec![])])]),
        &mut streams,
        NOW,
        &opts,
    );
    assert_eq!(m.points.len(), 1);
    // Once "a" has been idle for longer than the setting, the mapping forgets it to make room.
    let later = NOW + opts.stream_idle_ms + 1;
    let m = map(
        &request(vec![point("b", later, 1.0)]),
        &mut streams,
        later,
        &opts,
    );
    assert_eq!(values(&m), [1.0]);
    assert!(
        matches!(m.stream_updates[0], StreamUpdate::Remove { .. }),
        "{:?}",
        m.stream_updates
    );
    assert_eq!(streams.len(), 1);
}

#[test]
fn idle_streams_expire() {
    let mut streams = Streams::new();
    run(
        &mut streams,
        &request(vec![counter(vec![number(
            START,
            NOW,
            1.0,
            vec![kv("r", text("a"))],
        )])]),
    );
    map(
        &request(vec![counter(vec![number(
            START,
            NOW + 5_000,
            1.0,
            vec![kv("r", text("b"))],
        )])]),
        &mut streams,
        NOW + 5_000,
        &options(),
    );
    assert!(
        streams.expire(NOW + 10_000, 10_000).is_empty(),
        "idle for exactly the setting is kept"
    );
    let removed = streams.expire(NOW + 10_001, 10_000);
    assert_eq!(removed.len(), 1);
    assert_eq!(streams.len(), 1);
    let StreamUpdate::Remove { key } = &removed[0] else {
        panic!("{removed:?}")
    };
    assert_eq!(key.series.dimension("r"), Some("a"));
}

#[test]
fn replaying_the_logged_updates_on_the_snapshot_rebuilds_the_live_state() {
    let mut live = Streams::new();
    run(
        &mut live,
        &request(vec![counter(vec![number(
            START,
            NOW - 30_000,
            1.0,
            vec![],
        )])]),
    );
    // The snapshot, as the coordinator would store it (any serde format; postcard here).
    let snapshot = postcard::to_allocvec(&live).unwrap();
    let mut log: Vec<Vec<u8>> = Vec::new();
    let requests = [
        request(vec![counter(vec![number(
            START,
            NOW - 20_000,
            4.0,
            vec![],
        )])]),
        request(vec![
            histogram(
                AggregationTemporality::Cumulative,
                vec![hpoint(
                    START,
                    NOW - 20_000,
                    &[1.0],
                    &[1, 1],
                    Some(3.0),
                    None,
                    None,
                )],
            ),
            exponential(
                AggregationTemporality::Cumulative,
                vec![exp_point(2, 1, (3, &[1, 2]), (-1, &[4]))],
            ),
        ]),
        request(vec![counter(vec![number(
            NOW - 15_000,
            NOW - 10_000,
            2.0,
            vec![],
        )])]),
        request(vec![histogram(
            AggregationTemporality::Cumulative,
            vec![hpoint(START, NOW, &[1.0], &[2, 3], Some(9.0), None, None)],
        )]),
    ];
    for r in &requests {
        for update in run(&mut live, r).stream_updates {
            log.push(postcard::to_allocvec(&update).unwrap());
        }
    }
    for update in live.expire(NOW + 3_600_001, 3_600_000) {
        log.push(postcard::to_allocvec(&update).unwrap());
    }
    let mut restored: Streams = postcard::from_bytes(&snapshot).unwrap();
    for bytes in &log {
        restored.apply(&postcard::from_bytes(bytes).unwrap());
    }
    assert_eq!(restored, live);
    // And serialized alike.
    assert_eq!(
        postcard::to_allocvec(&restored).unwrap(),
        postcard::to_allocvec(&live).unwrap()
    );
}

#[test]
fn a_restart_between_two_cumulative_points_does_not_count_twice() {
    let mut live = Streams::new();
    run(
        &mut live,
        &request(vec![counter(vec![number(
            START,
            NOW - 10_000,
            100.0,
            vec![],
        )])]),
    );
    let mut restored: Streams =
        serde_json::from_str(&serde_json::to_string(&live).unwrap()).unwrap();
    let m = run(
        &mut restored,
        &request(vec![counter(vec![number(START, NOW, 130.0, vec![])])]),
    );
    assert_eq!(values(&m), [30.0]);
}

#[test]
fn scopes_are_separate_streams() {
    let mut streams = Streams::new();
    run(
        &mut streams,
        &request_in(
            service(),
            "one",
            vec![counter(vec![number(START, NOW - 10_000, 10.0, vec![])])],
        ),
    );
    let m = run(
        &mut streams,
        &request_in(
            service(),
            "two",
            vec![counter(vec![number(START, NOW, 3.0, vec![])])],
        ),
    );
    assert_eq!((values(&m).as_slice(), m.resets), (&[3.0][..], 0));
    assert_eq!(streams.len(), 2);
}

/// `Mapped::undo` applied to the state after a mapping gives the state before it, also when a
/// request touches one stream twice and forgets idle streams to make room.
#[test]
fn the_undo_restores_the_state_before_the_mapping() {
    let mut live = Streams::new();
    run(
        &mut live,
        &request(vec![counter(vec![number(
            START,
            NOW - 30_000,
            1.0,
            vec![],
        )])]),
    );
    let before = live.clone();
    let mapped = run(
        &mut live,
        &request(vec![
            counter(vec![
                number(START, NOW - 20_000, 4.0, vec![]),
                number(START, NOW - 10_000, 6.0, vec![]),
            ]),
            histogram(
                AggregationTemporality::Cumulative,
                vec![hpoint(START, NOW, &[1.0], &[2, 3], Some(9.0), None, None)],
            ),
        ]),
    );
    assert_eq!(mapped.stream_updates.len(), 3);
    assert_ne!(live, before);
    for update in &mapped.undo {
        live.apply(update);
    }
    assert_eq!(live, before);

    // Full: the mapping forgets the idle stream for the new one; the undo brings it back.
    let tight = MapOptions {
        max_streams: 1,
        stream_idle_ms: 1_000,
        ..options()
    };
    let before = live.clone();
    let mapped = map(
        &request(vec![histogram(
            AggregationTemporality::Cumulative,
            vec![hpoint(START, NOW, &[1.0], &[2, 3], Some(9.0), None, None)],
        )]),
        &mut live,
        NOW + 60_000,
        &tight,
    );
    assert!(mapped.rejected.is_empty(), "{:?}", mapped.rejected);
    assert!(
        mapped
            .stream_updates
            .iter()
            .any(|u| matches!(u, StreamUpdate::Remove { .. }))
    );
    for update in &mapped.undo {
        live.apply(update);
    }
    assert_eq!(live, before);
}
