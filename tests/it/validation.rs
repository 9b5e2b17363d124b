//! Every PutMetricData validation rule (reference §1, test vectors §7.6): the status code, the
//! field named in the message, and nothing of the rejected request stored.

use thermostat_proto::v1::{
    Dimension, ListMetricsRequest, MetricDatum, PutMetricDataRequest, StatisticSet,
};
use tonic::Code;

use crate::util::*;

const NS: &str = "Test/Validation";

fn good(ts: i64) -> MetricDatum {
    value_datum("Good", &[("Host", "a")], ts, 1.0)
}

type Case = (
    &'static str,
    Box<dyn Fn(&mut PutMetricDataRequest, i64)>,
    &'static str,
);

fn case(
    name: &'static str,
    f: impl Fn(&mut PutMetricDataRequest, i64) + 'static,
    field: &'static str,
) -> Case {
    (name, Box::new(f), field)
}

/// Mutates the second datum of a two-datum request.
fn second(f: impl Fn(&mut MetricDatum, i64) + 'static) -> impl Fn(&mut PutMetricDataRequest, i64) {
    move |r, now| f(&mut r.metric_data[1], now)
}

fn cases() -> Vec<Case> {
    const DAY: i64 = 86_400_000;
    vec![
        case(
            "empty namespace",
            |r, _| r.namespace.clear(),
            "namespace: must be 1 to 255 characters",
        ),
        case(
            "namespace starting with a colon",
            |r, _| r.namespace = ":x".into(),
            "namespace: must not start with ':'",
        ),
        case(
            "namespace with a bad character",
            |r, _| r.namespace = "bad!".into(),
            "namespace: may contain only",
        ),
        case(
            "namespace too long",
            |r, _| r.namespace = "n".repeat(256),
            "namespace: must be 1 to 255 characters (got 256)",
        ),
        case(
            "no datums",
            |r, _| r.metric_data.clear(),
            "metric_data: must contain at least one datum",
        ),
        case(
            "1001 datums",
            |r, now| r.metric_data = (0..1001).map(|_| good(now)).collect(),
            "metric_data: must contain at most 1000 datums (got 1001)",
        ),
        case(
            "empty metric name",
            second(|d, _| d.metric_name.clear()),
            "metric_data[1].metric_name: must be 1 to 255",
        ),
        case(
            "metric name with control chars",
            second(|d, _| d.metric_name = "a\nb".into()),
            "metric_data[1].metric_name: must not contain control",
        ),
        case(
            "31 dimensions",
            second(|d, _| {
                d.dimensions = (0..31)
                    .map(|i| Dimension {
                        name: format!("d{i}"),
                        value: "v".into(),
                    })
                    .collect()
            }),
            "metric_data[1].dimensions: must have at most 30 entries (got 31)",
        ),
        case(
            "duplicate dimension names",
            second(|d, _| d.dimensions = dims(&[("Host", "a"), ("Host", "b")])),
            "metric_data[1].dimensions[1].name: name \"Host\" appears more than once",
        ),
        case(
            "dimension name starting with colon",
            second(|d, _| d.dimensions = dims(&[(":az", "a")])),
            "metric_data[1].dimensions[0].name: must not start with ':'",
        ),
        case(
            "dimension value of 1025 chars",
            second(|d, _| {
                d.dimensions = vec![Dimension {
                    name: "Host".into(),
                    value: "v".repeat(1025),
                }]
            }),
            "metric_data[1].dimensions[0].value: must be 1 to 1024 characters (got 1025)",
        ),
        case(
            "empty dimension value",
            second(|d, _| d.dimensions = dims(&[("Host", "")])),
            "metric_data[1].dimensions[0].value: must be 1 to 1024",
        ),
        case(
            "whitespace dimension value",
            second(|d, _| d.dimensions = dims(&[("Host", "   ")])),
            "metric_data[1].dimensions[0].value: must contain at least one non-whitespace",
        ),
        case(
            "non-ASCII dimension value",
            second(|d, _| d.dimensions = dims(&[("Host", "caf\u{e9}")])),
            "metric_data[1].dimensions[0].value: must contain only ASCII",
        ),
        case(
            "NaN value",
            second(|d, _| d.value = Some(f64::NAN)),
            "metric_data[1].value: must be a number (got NaN)",
        ),
        case(
            "+Inf value",
            second(|d, _| d.value = Some(f64::INFINITY)),
            "metric_data[1].value: must be finite",
        ),
        case(
            "-Inf value",
            second(|d, _| d.value = Some(f64::NEG_INFINITY)),
            "metric_data[1].value: must be finite",
        ),
        case(
            "value above 2^360",
            second(|d, _| d.value = Some(1e109)),
            "metric_data[1].value: must be between -2^360 and 2^360",
        ),
        case(
            "timestamp older than 14 days",
            second(|d, now| d.timestamp_ms = now - 14 * DAY - 60_000),
            "metric_data[1].timestamp_ms: must be within the past 14 days",
        ),
        case(
            "timestamp more than 2 h ahead",
            second(|d, now| d.timestamp_ms = now + 2 * 3_600_000 + 60_000),
            "metric_data[1].timestamp_ms: must be at most 2 hours in the future",
        ),
        case(
            "no value at all",
            second(|d, _| d.value = None),
            "metric_data[1].value: exactly one of value, statistic_values or values must be set (got none)",
        ),
        case(
            "value and values",
            second(|d, _| d.values = vec![1.0]),
            "metric_data[1].values: exactly one of value, statistic_values or values must be set (got value and values)",
        ),
        case(
            "value and statistic_values",
            second(|d, _| {
                d.statistic_values = Some(StatisticSet {
                    sample_count: 1.0,
                    sum: 1.0,
                    minimum: 1.0,
                    maximum: 1.0,
                })
            }),
            "metric_data[1].statistic_values: exactly one of",
        ),
        case(
            "counts without values",
            second(|d, _| d.counts = vec![1.0]),
            "metric_data[1].counts: may be set only together with values",
        ),
        case(
            "151 values",
            second(|d, _| {
                d.value = None;
                d.values = vec![1.0; 151];
            }),
            "metric_data[1].values: must have at most 150 entries (got 151)",
        ),
        case(
            "counts length differs",
            second(|d, _| {
                d.value = None;
                d.values = vec![1.0, 2.0];
                d.counts = vec![1.0];
            }),
            "metric_data[1].counts: must have as many entries as values",
        ),
        case(
            "NaN inside values",
            second(|d, _| {
                d.value = None;
                d.values = vec![1.0, f64::NAN];
            }),
            "metric_data[1].values[1]: must be a number",
        ),
        case(
            "negative count",
            second(|d, _| {
                d.value = None;
                d.values = vec![1.0];
                d.counts = vec![-1.0];
            }),
            "metric_data[1].counts[0]: must not be negative",
        ),
        case(
            "statistic set with zero samples",
            second(|d, _| {
                d.value = None;
                d.statistic_values = Some(StatisticSet {
                    sample_count: 0.0,
                    sum: 0.0,
                    minimum: 0.0,
                    maximum: 0.0,
                });
            }),
            "metric_data[1].statistic_values.sample_count: must be greater than 0",
        ),
        case(
            "statistic set with min > max",
            second(|d, _| {
                d.value = None;
                d.statistic_values = Some(StatisticSet {
                    sample_count: 2.0,
                    sum: 3.0,
                    minimum: 2.0,
                    maximum: 1.0,
                });
            }),
            "metric_data[1].statistic_values.minimum: must not be greater than maximum",
        ),
        case(
            "statistic set with NaN sum",
            second(|d, _| {
                d.value = None;
                d.statistic_values = Some(StatisticSet {
                    sample_count: 2.0,
                    sum: f64::NAN,
                    minimum: 1.0,
                    maximum: 1.0,
                });
            }),
            "metric_data[1].statistic_values.sum: must be a number",
        ),
        case(
            "unknown unit",
            second(|d, _| d.unit = "Furlongs".into()),
            "metric_data[1].unit: must be a CloudWatch StandardUnit",
        ),
        case(
            "storage resolution 30",
            second(|d, _| d.storage_resolution = 30),
            "metric_data[1].storage_resolution: must be 1 (high resolution) or 60 (got 30)",
        ),
    ]
}

#[tokio::test]
async fn every_rule_is_enforced_and_nothing_of_a_bad_request_is_stored() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let all = cases();
    for (name, mutate, want) in &all {
        let now = now_ms();
        let mut req = request(NS, vec![good(now), good(now)]);
        mutate(&mut req, now);
        let err = client.put_metric_data(req).await.expect_err(name);
        assert_eq!(
            err.code(),
            Code::InvalidArgument,
            "{name}: {}",
            err.message()
        );
        assert!(
            err.message().contains(want),
            "{name}: message {:?} should contain {want:?}",
            err.message()
        );
    }
    let listed = client
        .list_metrics(ListMetricsRequest {
            namespace: String::new(),
            metric_name: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.metrics.is_empty(),
        "the valid datums of rejected requests were not stored: {listed:?}"
    );
    assert_eq!(
        scrape(&server, "thermostat_ingest_samples_total").await,
        Some(0.0)
    );
    assert_eq!(
        scrape(
            &server,
            "thermostat_ingest_rejected_total{reason=\"invalid_datum\"}"
        )
        .await,
        Some(all.len() as f64)
    );
    assert_eq!(
        scrape(
            &server,
            "thermostat_ingest_requests_total{outcome=\"invalid\"}"
        )
        .await,
        Some(all.len() as f64)
    );
}

#[tokio::test]
async fn boundary_values_are_accepted() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let now = now_ms();
    let data = vec![
        value_datum("Edge", &[], now, 0.0),
        value_datum("Edge", &[], now, 2f64.powi(360)),
        value_datum("Edge", &[], now - 14 * 86_400_000 + 60_000, 1.0),
        value_datum("Edge", &[], now + 3_600_000, 1.0),
        MetricDatum {
            timestamp_ms: 0,
            ..value_datum("Edge", &[], 0, 1.0)
        },
    ];
    let resp = client
        .put_metric_data(request(NS, data))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.accepted_samples, 5);
}

#[tokio::test]
async fn query_errors_name_the_field() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let now = now_ms();
    let cases = [
        (
            stats_request(NS, "M", &[], now - 3_600_000, now, 7, &["Sum"]),
            "period_seconds: must be 1, 5, 10, 20, 30 or a multiple of 60",
        ),
        (
            stats_request(NS, "M", &[], now - 3_600_000, now, 0, &["Sum"]),
            "period_seconds: must be a positive number",
        ),
        (
            stats_request(NS, "M", &[], now - 3_600_000, now, 60, &["Median"]),
            "statistics[0]: must be SampleCount",
        ),
        (
            stats_request(NS, "M", &[], now - 3_600_000, now, 60, &["p101"]),
            "statistics[0]: must be SampleCount",
        ),
        (
            stats_request(NS, "M", &[], now - 3_600_000, now, 60, &[]),
            "statistics: must name 1 to 15",
        ),
        (
            stats_request(NS, "M", &[], now, now - 3_600_000, 60, &["Sum"]),
            "end_time_ms: must be after the start time",
        ),
        (
            stats_request(NS, "M", &[], now - 3 * 86_400_000, now, 60, &["Sum"]),
            "more than the limit of 1440 datapoints",
        ),
    ];
    for (req, want) in cases {
        let err = client.get_metric_statistics(req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(
            err.message().contains(want),
            "{:?} should contain {want:?}",
            err.message()
        );
    }
}

#[tokio::test]
async fn oversized_requests_are_refused() {
    let server = TestServer::start().await;
    let mut client = server.client().await.max_encoding_message_size(64 << 20);
    let now = now_ms();
    let big = MetricDatum {
        metric_name: "x".repeat(255),
        dimensions: (0..30)
            .map(|i| Dimension {
                name: format!("{i:0>200}"),
                value: "v".repeat(1024),
            })
            .collect(),
        ..value_datum("M", &[], now, 1.0)
    };
    let req = request(NS, vec![big; 1000]);
    let err = client.put_metric_data(req).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message()
            .contains("larger than the limit of 16777216 bytes"),
        "{}",
        err.message()
    );
    // The connection stays usable and nothing was stored.
    let listed = client
        .list_metrics(ListMetricsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.metrics.is_empty());
}

#[tokio::test]
async fn overload_answers_resource_exhausted_and_counts_it() {
    let server = TestServer::start_with(|s| {
        s.max_streams = 0;
        s.max_in_flight_requests = 0;
    })
    .await;
    let mut client = server.client().await;
    let now = now_ms();
    let err = client
        .put_metric_data(request(NS, vec![good(now)]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains("nothing of this request was stored"),
        "{}",
        err.message()
    );
    let err = client
        .stream_metric_data(tokio_stream::iter(vec![request(NS, vec![good(now)])]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert_eq!(
        scrape(
            &server,
            "thermostat_ingest_rejected_total{reason=\"overloaded\"}"
        )
        .await,
        Some(2.0)
    );
    assert_eq!(
        scrape(&server, "thermostat_ingest_samples_total").await,
        Some(0.0)
    );
}

#[tokio::test]
async fn series_limits_refuse_new_series_and_keep_existing_ones_working() {
    let server = TestServer::start_with(|s| {
        s.max_series = 3;
        s.max_series_per_namespace = Some(2);
    })
    .await;
    let mut client = server.client().await;
    let now = now_ms();
    let d = |host: &str| value_datum("Cpu", &[("Host", host)], now, 1.0);
    client
        .put_metric_data(request("Ns/A", vec![d("a"), d("b")]))
        .await
        .unwrap();
    // A third series in Ns/A breaks the per-namespace limit; the request is refused whole.
    let err = client
        .put_metric_data(request("Ns/A", vec![d("a"), d("c")]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message()
            .contains("1 new series beyond the limit of 2 series in namespace \"Ns/A\""),
        "{}",
        err.message()
    );
    // Existing series keep working.
    client
        .put_metric_data(request("Ns/A", vec![d("a"), d("b")]))
        .await
        .unwrap();
    // Another namespace may add one more series, then the global limit of 3 is reached.
    client
        .put_metric_data(request("Ns/B", vec![d("x")]))
        .await
        .unwrap();
    let err = client
        .put_metric_data(request("Ns/B", vec![d("y"), d("z")]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message()
            .contains("2 new series beyond the limit of 3 series (--max-series)"),
        "{}",
        err.message()
    );
    assert_eq!(
        scrape(&server, "thermostat_ingest_series_refused_total").await,
        Some(3.0)
    );
    assert_eq!(
        scrape(
            &server,
            "thermostat_ingest_rejected_total{reason=\"series_limit\"}"
        )
        .await,
        Some(2.0)
    );
    assert_eq!(scrape(&server, "thermostat_series_active").await, Some(3.0));
    assert_eq!(
        scrape(&server, "thermostat_ingest_samples_total").await,
        Some(5.0)
    );
}
