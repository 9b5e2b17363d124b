//! Property tests: the mapping never panics and accounts for every point, replaying its
//! updates rebuilds the state, representatives lie inside their buckets, and the decoders never
//! panic on arbitrary bytes.

use proptest::prelude::*;
use thermostat_otlp::buckets::{
    explicit_bucket, explicit_representative, exponential_bucket, exponential_representative,
};
use thermostat_otlp::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use thermostat_otlp::proto::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value::Value,
};
use thermostat_otlp::proto::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
};
use thermostat_otlp::proto::resource::v1::Resource;
use thermostat_otlp::{MapOptions, MappedData, Streams, decode_json, decode_protobuf, map};

const NOW: i64 = 1_700_000_000_000;
const NOW_NS: u64 = 1_700_000_000_000_000_000;

fn any_value() -> impl Strategy<Value = AnyValue> {
    let leaf = prop_oneof![
        "[a-z.]{0,8}".prop_map(Value::StringValue),
        any::<bool>().prop_map(Value::BoolValue),
        any::<i64>().prop_map(Value::IntValue),
        any::<f64>().prop_map(Value::DoubleValue),
        prop::collection::vec(any::<u8>(), 0..4).prop_map(Value::BytesValue),
        any::<i32>().prop_map(Value::StringValueStrindex),
    ]
    .prop_map(|v| AnyValue { value: Some(v) });
    leaf.prop_recursive(12, 24, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3)
                .prop_map(|values| Value::ArrayValue(ArrayValue { values })),
            prop::collection::vec(("[a-z]{1,3}", inner), 0..3).prop_map(|kvs| {
                Value::KvlistValue(KeyValueList {
                    values: kvs
                        .into_iter()
                        .map(|(key, v)| KeyValue {
                            key,
                            value: Some(v),
                            key_strindex: 0,
                        })
                        .collect(),
                })
            }),
        ]
        .prop_map(|v| AnyValue { value: Some(v) })
    })
}

fn attributes(max: usize) -> impl Strategy<Value = Vec<KeyValue>> {
    prop::collection::vec(
        (
            prop_oneof![
                1 => Just("service.name".to_owned()),
                1 => Just("service.namespace".to_owned()),
                1 => Just("host.name".to_owned()),
                6 => "[a-c]{1,2}",
                1 => "[a-c]{0,2}",
            ],
            prop_oneof![
                6 => "[a-z]{1,4}".prop_map(|s| Some(AnyValue { value: Some(Value::StringValue(s)) })),
                1 => prop::option::of(any_value()),
            ],
        ),
        0..max,
    )
    .prop_map(|kvs| {
        kvs.into_iter()
            .map(|(key, value)| KeyValue { key, value, key_strindex: 0 })
            .collect()
    })
}

/// Times around now: mostly recent and ordered a little, sometimes 0 or anything.
fn time() -> impl Strategy<Value = u64> {
    prop_oneof![
        18 => (0u64..5).prop_map(|k| NOW_NS - k * 10_000_000_000),
        1 => Just(0u64),
        1 => any::<u64>(),
    ]
}

fn double() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => -1e6..1e6f64,
        1 => any::<f64>(),
        1 => Just(f64::NAN),
    ]
}

fn number_point() -> impl Strategy<Value = NumberDataPoint> {
    (
        attributes(3),
        time(),
        time(),
        0u32..3,
        prop::option::of(prop_oneof![
            double().prop_map(number_data_point::Value::AsDouble),
            any::<i64>().prop_map(number_data_point::Value::AsInt),
        ]),
    )
        .prop_map(|(attributes, start, time, flags, value)| NumberDataPoint {
            attributes,
            start_time_unix_nano: start,
            time_unix_nano: time,
            flags,
            value,
            ..Default::default()
        })
}

fn histogram_point() -> impl Strategy<Value = HistogramDataPoint> {
    (
        attributes(2),
        time(),
        time(),
        prop::collection::vec(-100.0..100.0f64, 0..5),
        prop::collection::vec(0u64..5, 0..6),
        prop::option::of(double()),
        prop::option::of(double()),
        prop::option::of(double()),
        any::<bool>(),
    )
        .prop_map(
            |(attributes, start, time, mut bounds, counts, sum, min, max, consistent)| {
                bounds.sort_by(f64::total_cmp);
                bounds.dedup();
                let mut counts = counts;
                if consistent {
                    counts.resize(bounds.len() + 1, 1);
                }
                HistogramDataPoint {
                    attributes,
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    count: if consistent { counts.iter().sum() } else { 3 },
                    sum,
                    bucket_counts: counts,
                    explicit_bounds: bounds,
                    min,
                    max,
                    ..Default::default()
                }
            },
        )
}

fn buckets() -> impl Strategy<Value = Option<Buckets>> {
    prop::option::of((-40i32..40, prop::collection::vec(0u64..4, 0..6)).prop_map(
        |(offset, bucket_counts)| Buckets {
            offset,
            bucket_counts,
        },
    ))
}

fn exponential_point() -> impl Strategy<Value = ExponentialHistogramDataPoint> {
    (
        attributes(2),
        time(),
        time(),
        -12i32..22,
        0u64..3,
        buckets(),
        buckets(),
        prop::option::of(double()),
        any::<bool>(),
    )
        .prop_map(
            |(attributes, start, time, scale, zero_count, positive, negative, sum, consistent)| {
                let n = |b: &Option<Buckets>| {
                    b.as_ref()
                        .map_or(0, |b| b.bucket_counts.iter().sum::<u64>())
                };
                ExponentialHistogramDataPoint {
                    attributes,
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    count: if consistent {
                        zero_count + n(&positive) + n(&negative)
                    } else {
                        1
                    },
                    sum,
                    scale,
                    zero_count,
                    positive,
                    negative,
                    ..Default::default()
                }
            },
        )
}

fn summary_point() -> impl Strategy<Value = SummaryDataPoint> {
    (attributes(2), time(), time(), 0u64..100, double()).prop_map(
        |(attributes, start, time, count, sum)| SummaryDataPoint {
            attributes,
            start_time_unix_nano: start,
            time_unix_nano: time,
            count,
            sum,
            ..Default::default()
        },
    )
}

fn data() -> impl Strategy<Value = Data> {
    prop_oneof![
        prop::collection::vec(number_point(), 0..3)
            .prop_map(|data_points| Data::Gauge(Gauge { data_points })),
        (
            prop::collection::vec(number_point(), 0..3),
            0i32..4,
            any::<bool>()
        )
            .prop_map(|(data_points, t, m)| {
                Data::Sum(Sum {
                    data_points,
                    aggregation_temporality: t,
                    is_monotonic: m,
                })
            }),
        (prop::collection::vec(histogram_point(), 0..3), 0i32..4).prop_map(|(data_points, t)| {
            Data::Histogram(Histogram {
                data_points,
                aggregation_temporality: t,
            })
        }),
        (prop::collection::vec(exponential_point(), 0..3), 0i32..4).prop_map(|(data_points, t)| {
            Data::ExponentialHistogram(ExponentialHistogram {
                data_points,
                aggregation_temporality: t,
            })
        }),
        prop::collection::vec(summary_point(), 0..3)
            .prop_map(|data_points| Data::Summary(Summary { data_points })),
    ]
}

fn request() -> impl Strategy<Value = ExportMetricsServiceRequest> {
    let metric = (
        prop_oneof![9 => "[a-c]{1,2}", 1 => "[a-c]{0,2}"],
        prop_oneof![Just(""), Just("ms"), Just("{x}"), Just("By")],
        prop::option::of(data()),
    )
        .prop_map(|(name, unit, data)| Metric {
            name,
            unit: unit.into(),
            data,
            ..Default::default()
        });
    let scope = ("[a-b]{0,1}", prop::collection::vec(metric, 0..4)).prop_map(|(name, metrics)| {
        ScopeMetrics {
            scope: Some(InstrumentationScope {
                name,
                ..Default::default()
            }),
            metrics,
            ..Default::default()
        }
    });
    let resource = (attributes(4), prop::collection::vec(scope, 0..3)).prop_map(
        |(attributes, scope_metrics)| ResourceMetrics {
            resource: Some(Resource {
                attributes,
                ..Default::default()
            }),
            scope_metrics,
            ..Default::default()
        },
    );
    prop::collection::vec(resource, 0..3)
        .prop_map(|resource_metrics| ExportMetricsServiceRequest { resource_metrics })
}

fn point_count(request: &ExportMetricsServiceRequest) -> usize {
    request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| match &m.data {
            None => 0,
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
        })
        .sum()
}

proptest! {
    /// Never panics; every point is kept, rejected or skipped, exactly once; what is kept is
    /// finite; replaying the updates on the state from before rebuilds the state after.
    #[test]
    fn map_accounts_for_every_point_and_replays(
        requests in prop::collection::vec(request(), 1..4),
        max_streams in 0usize..6,
    ) {
        let options = MapOptions { resource_dimensions: vec!["a".into()], max_streams, stream_idle_ms: 5_000 };
        let mut live = Streams::new();
        for (i, request) in requests.iter().enumerate() {
            let before = live.clone();
            let now = NOW + i as i64 * 3_000;
            let mapped = map(request, &mut live, now, &options);
            let skipped = mapped.skipped.no_recorded_value + mapped.skipped.stale + mapped.skipped.empty;
            prop_assert_eq!(mapped.points.len() + mapped.rejected.len() + skipped, point_count(request));
            prop_assert!(live.len() <= max_streams);
            for p in &mapped.points {
                prop_assert!(p.series.dimensions().len() <= 30);
                match &p.data {
                    MappedData::Value(v) => prop_assert!(v.is_finite()),
                    MappedData::Distribution { count, sum, values, counts, .. } => {
                        prop_assert!(sum.is_finite());
                        prop_assert!(*count > 0);
                        prop_assert_eq!(values.len(), counts.len());
                        prop_assert!(values.iter().all(|v| v.is_finite()));
                        prop_assert!(counts.iter().all(|&c| c > 0));
                        prop_assert!(values.windows(2).all(|w| w[0] <= w[1]), "{:?}", values);
                        if !values.is_empty() {
                            prop_assert_eq!(counts.iter().sum::<u64>(), *count);
                        }
                    }
                }
            }
            for r in &mapped.rejected {
                prop_assert!(!r.rule.is_empty());
            }
            let mut replayed = before;
            for update in &mapped.stream_updates {
                replayed.apply(update);
            }
            prop_assert_eq!(&replayed, &live);
        }
    }

    /// An explicit bucket's representative is finite and inside it.
    #[test]
    fn explicit_representatives_are_inside(
        mut bounds in prop::collection::vec(-1e12..1e12f64, 0..8),
        index in 0usize..9,
        min in prop::option::of(-2e12..2e12f64),
        max in prop::option::of(-2e12..2e12f64),
        mean in prop::option::of(any::<f64>()),
    ) {
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        let index = index.min(bounds.len());
        let r = explicit_representative(&bounds, index, min, max, mean);
        let (lower, upper) = explicit_bucket(&bounds, index);
        prop_assert!(r.is_finite());
        prop_assert!(lower < r && r <= upper, "{} < {} <= {}", lower, r, upper);
    }

    /// An exponential bucket's representative is inside it, within (base-1)/(base+1) of every
    /// value of it, at every scale the mapping accepts.
    #[test]
    fn exponential_representatives_are_inside_and_within_the_bound(
        scale in -10i32..=20,
        index in -(1i64 << 30)..(1i64 << 30),
        at in 0.0..=1.0f64,
    ) {
        let width = (-f64::from(scale)).exp2();
        // An index whose bucket holds doubles at this scale.
        let index = index.rem_euclid(((2100.0 / width).ceil() as i64).max(1)) - (1074.0 / width).ceil() as i64;
        let (lower, upper) = exponential_bucket(scale, index);
        match exponential_representative(scale, index) {
            None => prop_assert!(lower.is_infinite() || lower.next_up() > upper, "scale {} index {}: {} {}", scale, index, lower, upper),
            Some(r) => {
                prop_assert!(lower < r && r <= upper, "scale {} index {}: {} < {} <= {}", scale, index, lower, r, upper);
                if lower >= f64::MIN_POSITIVE && upper.is_finite() {
                    let base = upper / lower;
                    let bound = (base - 1.0) / (base + 1.0);
                    // A value of the bucket, spread over it in log space.
                    let v = (lower.log2() + at * (upper.log2() - lower.log2())).exp2().clamp(lower.next_up(), upper);
                    prop_assert!((r - v).abs() / v <= bound * (1.0 + 1e-6) + 1e-12, "scale {} index {} v {} r {}", scale, index, v, r);
                }
            }
        }
    }

    /// The decoders refuse garbage; they never panic.
    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_protobuf(&bytes);
        let _ = decode_json(&bytes);
    }
}
