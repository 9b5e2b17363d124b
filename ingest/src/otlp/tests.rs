//! The OTLP service over a real data directory: cumulative streams across restarts, partial
//! success, and refusals that leave no trace in the streams.

use std::sync::Arc;

use thermostat_auth::Principal;
use thermostat_metrics::{
    Dimension, ManualClock, Observation, Period, Query, Resolution, Sample, SeriesKey, Store,
    Telemetry, Timestamp, Unit,
};
use thermostat_otlp::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use thermostat_otlp::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
use thermostat_otlp::proto::metrics::v1::{
    AggregationTemporality, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric::Data, number_data_point,
};
use thermostat_otlp::proto::resource::v1::Resource;
use tokio_util::sync::CancellationToken;

use crate::{Error, Ingest, IngestOptions, Limits, OtlpApi, open};

const NOW: Timestamp = Timestamp(1_800_000_000_000);
const START_NS: u64 = 1_799_999_000_000_000_000;

fn nanos(t: Timestamp) -> u64 {
    u64::try_from(t.as_millis()).unwrap() * 1_000_000
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        key_strindex: 0,
    }
}

fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![text("service.name", "checkout")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn counter_metric(total: f64, at: Timestamp, attributes: Vec<KeyValue>) -> Metric {
    Metric {
        name: "requests".into(),
        data: Some(Data::Sum(Sum {
            data_points: vec![NumberDataPoint {
                start_time_unix_nano: START_NS,
                time_unix_nano: nanos(at),
                value: Some(number_data_point::Value::AsDouble(total)),
                attributes,
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

fn counter(total: f64, at: Timestamp) -> ExportMetricsServiceRequest {
    request(vec![counter_metric(total, at, vec![])])
}

fn key(metric: &str) -> SeriesKey {
    SeriesKey::new(
        "checkout",
        metric,
        vec![Dimension::new("service.name", "checkout")],
    )
}

fn statistic(store: &Store, metric: &str, statistic: &str) -> Option<f64> {
    let q = Query {
        key: key(metric),
        unit: None,
        start: NOW.sub_millis(3_600_000),
        end: NOW.add_millis(60_000),
        period: Period::ONE_HOUR,
        statistics: vec![statistic.parse().unwrap()],
    };
    let points = store.query(&q, NOW).unwrap();
    let values: Vec<f64> = points.iter().filter_map(|p| p.values[0]).collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

fn service(ingest: &Ingest, limits: Limits) -> OtlpApi {
    let api = ingest.metrics_api(
        Arc::new(Telemetry::new()),
        Arc::new(ManualClock::new(NOW)),
        limits,
        CancellationToken::new(),
    );
    ingest.otlp_api(&api)
}

/// The value of `series` (a whole series, labels included) on `GET /metrics`.
fn scraped(otlp: &OtlpApi, series: &str) -> f64 {
    let text = otlp.api.telemetry.render();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in {text}"))
        .parse()
        .unwrap()
}

fn anyone() -> Principal {
    Principal::anonymous()
}

/// A restart between two cumulative points, with (close: a checkpoint) and without (the log
/// replayed) a snapshot, counts each increase once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_between_cumulative_points_counts_once() {
    for checkpoint in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let ingest = open(IngestOptions::new(dir.path())).await.unwrap();
        let otlp = service(&ingest, Limits::default());
        let r = otlp
            .export(&anyone(), counter(10.0, NOW.sub_millis(40_000)))
            .await
            .unwrap();
        assert_eq!(r.partial_success, None);
        otlp.export(&anyone(), counter(15.0, NOW.sub_millis(30_000)))
            .await
            .unwrap();
        assert_eq!(statistic(ingest.store(), "requests", "Sum"), Some(15.0));
        if checkpoint {
            ingest.close().await.unwrap();
        }
        drop((otlp, ingest));

        let ingest = open(IngestOptions::new(dir.path())).await.unwrap();
        assert_eq!(
            statistic(ingest.store(), "requests", "Sum"),
            Some(15.0),
            "checkpoint {checkpoint}"
        );
        let otlp = service(&ingest, Limits::default());
        otlp.export(&anyone(), counter(22.0, NOW.sub_millis(20_000)))
            .await
            .unwrap();
        assert_eq!(
            statistic(ingest.store(), "requests", "Sum"),
            Some(22.0),
            "checkpoint {checkpoint}: the increase since the last point, not the total again"
        );
        ingest.close().await.unwrap();
    }
}

/// A histogram of more buckets than a distribution may hold is a rejected point, named in
/// the partial success; the other points of the request are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_the_store_cannot_hold_is_a_partial_success() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = open(IngestOptions::new(dir.path())).await.unwrap();
    let otlp = service(&ingest, Limits::default());
    let bounds: Vec<f64> = (0..1010).map(f64::from).collect();
    let point = |counts: Vec<u64>, bounds: Vec<f64>| HistogramDataPoint {
        time_unix_nano: nanos(NOW.sub_millis(10_000)),
        count: counts.iter().sum(),
        sum: Some(counts.iter().sum::<u64>() as f64),
        bucket_counts: counts,
        explicit_bounds: bounds,
        ..Default::default()
    };
    let r = otlp
        .export(
            &anyone(),
            request(vec![Metric {
                name: "latency".into(),
                data: Some(Data::Histogram(Histogram {
                    data_points: vec![point(vec![1; 1011], bounds), point(vec![1, 2], vec![5.0])],
                    aggregation_temporality: AggregationTemporality::Delta as i32,
                })),
                ..Default::default()
            }]),
        )
        .await
        .unwrap();
    let partial = r.partial_success.expect("a partial success");
    assert_eq!(partial.rejected_data_points, 1);
    assert!(
        partial
            .error_message
            .contains("metric \"latency\" point 0: bucket_counts: must have at most 1000"),
        "{}",
        partial.error_message
    );
    assert_eq!(
        statistic(ingest.store(), "latency", "SampleCount"),
        Some(3.0)
    );
    // The metrics core's rule is a `value` rejection in telemetry.
    for (series, want) in [
        ("thermostat_otlp_requests_total{outcome=\"partial\"}", 1.0),
        ("thermostat_otlp_requests_total{outcome=\"accepted\"}", 0.0),
        ("thermostat_otlp_points_total{result=\"accepted\"}", 1.0),
        (
            "thermostat_otlp_points_rejected_total{reason=\"value\"}",
            1.0,
        ),
    ] {
        assert_eq!(scraped(&otlp, series), want, "{series}");
    }
    ingest.close().await.unwrap();
}

/// A request refused whole (here by `--max-series`) leaves the streams as they were: its
/// retry, once there is room, counts from the same previous point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_leaves_no_stream_behind() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = open(IngestOptions::new(dir.path())).await.unwrap();
    let limits = Limits {
        max_series: 3,
        ..Limits::default()
    };
    let otlp = service(&ingest, limits);
    otlp.export(&anyone(), counter(10.0, NOW.sub_millis(40_000)))
        .await
        .unwrap();
    // Another series takes the second place.
    let other = SeriesKey::new("Native", "x", vec![]);
    let obs = Observation {
        timestamp: NOW.sub_millis(1_000),
        unit: Unit::None,
        resolution: Resolution::High,
        sample: Sample::Value(1.0),
    };
    let appender = ingest.clone();
    tokio::task::spawn_blocking(move || {
        appender.append_observations_blocking(
            &[(other, obs)],
            NOW,
            std::time::Duration::from_secs(10),
        )
    })
    .await
    .unwrap()
    .unwrap();
    // The counter's next point with two new series: one too many.
    let both = request(vec![
        counter_metric(15.0, NOW.sub_millis(30_000), vec![]),
        counter_metric(5.0, NOW.sub_millis(30_000), vec![text("route", "/pay")]),
        counter_metric(5.0, NOW.sub_millis(30_000), vec![text("route", "/cart")]),
    ]);
    let e = otlp.export(&anyone(), both).await.unwrap_err();
    assert!(matches!(e, Error::SeriesLimit { .. }), "{e:?}");
    assert_eq!(
        tonic::Status::from(e).code(),
        tonic::Code::ResourceExhausted
    );
    assert_eq!(
        scraped(&otlp, "thermostat_otlp_requests_total{outcome=\"refused\"}"),
        1.0
    );
    assert_eq!(
        scraped(
            &otlp,
            "thermostat_otlp_requests_total{outcome=\"accepted\"}"
        ),
        1.0
    );
    assert_eq!(
        scraped(&otlp, "thermostat_otlp_points_total{result=\"accepted\"}"),
        1.0,
        "the refused request's points are not counted"
    );
    assert_eq!(statistic(ingest.store(), "requests", "Sum"), Some(10.0));

    // The counter alone, retried: 5 since the stored point (not 0: the refused request did
    // not move the stream on).
    otlp.export(&anyone(), counter(15.0, NOW.sub_millis(30_000)))
        .await
        .unwrap();
    assert_eq!(statistic(ingest.store(), "requests", "Sum"), Some(15.0));
    ingest.close().await.unwrap();
}
