//! gRPC round trips: pushes of every datum shape, queries over several periods.

use rand::{Rng, SeedableRng};
use thermostat_proto::v1::{MetricDatum, PutMetricDataRequest, StatisticSet};
use tokio_stream::StreamExt as _;

use crate::util::*;

/// Values that are multiples of 1/1024, so every sum is exact in f64 whatever the order.
fn random_values(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| (rng.random_range(1..5_000_000) as f64) / 1024.0)
        .collect()
}

#[tokio::test]
async fn unary_values_round_trip_with_exact_stats_and_percentiles() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let t0 = aligned_past(300_000);
    let values = random_values(3000, 7);
    // 3000 samples over 300 s: 10 per second.
    for chunk in values.chunks(1000).enumerate() {
        let (c, vs) = chunk;
        let data: Vec<MetricDatum> = vs
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let n = (c * 1000 + i) as i64;
                value_datum("Latency", &[("Service", "api")], t0 + n * 100, *v)
            })
            .collect();
        let resp = client
            .put_metric_data(request("Test/App", data))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.accepted_samples, 1000);
    }

    let stats = [
        "SampleCount",
        "Sum",
        "Minimum",
        "Maximum",
        "Average",
        "p50",
        "p90",
        "p99",
    ];
    for period in [60, 300] {
        let req = stats_request(
            "Test/App",
            "Latency",
            &[("Service", "api")],
            t0,
            t0 + 300_000,
            period,
            &stats,
        );
        let resp = client
            .get_metric_statistics(req)
            .await
            .unwrap()
            .into_inner();
        let per = (period as usize) * 10;
        assert_eq!(
            resp.datapoints.len(),
            300 / period as usize,
            "period {period}"
        );
        for (i, dp) in resp.datapoints.iter().enumerate() {
            assert_eq!(
                dp.timestamp_ms,
                t0 + (i as i64) * (period as i64) * 1000,
                "oldest first, period start"
            );
            assert_eq!(dp.unit, "Milliseconds");
            let slice = &values[i * per..(i + 1) * per];
            let s = &dp.statistics;
            assert_eq!(s["SampleCount"], per as f64);
            assert_eq!(s["Sum"], slice.iter().sum::<f64>());
            assert_eq!(
                s["Minimum"],
                slice.iter().copied().fold(f64::INFINITY, f64::min)
            );
            assert_eq!(
                s["Maximum"],
                slice.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            );
            assert_eq!(s["Average"], slice.iter().sum::<f64>() / per as f64);
            for (name, rank) in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0)] {
                assert_close(
                    s[name],
                    exact_percentile(slice, rank),
                    &format!("{name} of period {period} #{i}"),
                );
            }
        }
    }
}

#[tokio::test]
async fn high_resolution_data_queries_at_one_and_ten_seconds() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let t0 = aligned_past(60_000);
    let data: Vec<MetricDatum> = (0..60)
        .map(|i| MetricDatum {
            storage_resolution: 1,
            ..value_datum("Cpu", &[], t0 + i * 1000, i as f64)
        })
        .collect();
    client
        .put_metric_data(request("Test/HiRes", data))
        .await
        .unwrap();

    let one = stats_request("Test/HiRes", "Cpu", &[], t0, t0 + 60_000, 1, &["Sum"]);
    let resp = client
        .get_metric_statistics(one)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.datapoints.len(), 60);
    assert_eq!(resp.datapoints[7].statistics["Sum"], 7.0);

    let ten = stats_request(
        "Test/HiRes",
        "Cpu",
        &[],
        t0,
        t0 + 60_000,
        10,
        &["SampleCount", "Maximum"],
    );
    let resp = client
        .get_metric_statistics(ten)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.datapoints.len(), 6);
    assert_eq!(resp.datapoints[2].statistics["SampleCount"], 10.0);
    assert_eq!(resp.datapoints[2].statistics["Maximum"], 29.0);
}

#[tokio::test]
async fn statistic_sets_and_values_with_counts() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let t0 = aligned_past(60_000);
    let set = MetricDatum {
        metric_name: "Requests".into(),
        timestamp_ms: t0 + 1000,
        statistic_values: Some(StatisticSet {
            sample_count: 4.0,
            sum: 10.0,
            minimum: 1.0,
            maximum: 4.0,
        }),
        ..Default::default()
    };
    let counted = MetricDatum {
        metric_name: "Requests".into(),
        timestamp_ms: t0 + 2000,
        values: vec![2.0, 8.0, 100.0],
        counts: vec![3.0, 2.0, 1.0],
        ..Default::default()
    };
    let uncounted = MetricDatum {
        metric_name: "Requests".into(),
        timestamp_ms: t0 + 3000,
        values: vec![5.0, 6.0],
        ..Default::default()
    };
    let resp = client
        .put_metric_data(request("Test/Shapes", vec![set, counted, uncounted]))
        .await
        .unwrap();
    assert_eq!(
        resp.into_inner().accepted_samples,
        4 + 6 + 2,
        "a set counts its sample_count, values their counts"
    );

    let req = stats_request(
        "Test/Shapes",
        "Requests",
        &[],
        t0,
        t0 + 60_000,
        60,
        &["SampleCount", "Sum", "Minimum", "Maximum", "p50"],
    );
    let dp = &client
        .get_metric_statistics(req)
        .await
        .unwrap()
        .into_inner()
        .datapoints[0];
    assert_eq!(dp.statistics["SampleCount"], 12.0);
    assert_eq!(dp.statistics["Sum"], 10.0 + (6.0 + 16.0 + 100.0) + 11.0);
    assert_eq!(dp.statistics["Minimum"], 1.0);
    assert_eq!(dp.statistics["Maximum"], 100.0);
    assert!(
        !dp.statistics.contains_key("p50"),
        "a statistic set spanning several values leaves the period without percentiles"
    );

    // Without the multi-valued set, values/counts give percentiles.
    let counted_only = MetricDatum {
        metric_name: "Sizes".into(),
        timestamp_ms: t0 + 2000,
        values: vec![2.0, 8.0, 100.0],
        counts: vec![3.0, 2.0, 1.0],
        ..Default::default()
    };
    client
        .put_metric_data(request("Test/Shapes", vec![counted_only]))
        .await
        .unwrap();
    let req = stats_request(
        "Test/Shapes",
        "Sizes",
        &[],
        t0,
        t0 + 60_000,
        60,
        &["p50", "p90", "p100"],
    );
    let dp = &client
        .get_metric_statistics(req)
        .await
        .unwrap()
        .into_inner()
        .datapoints[0];
    let expanded = [2.0, 2.0, 2.0, 8.0, 8.0, 100.0];
    assert_close(
        dp.statistics["p50"],
        exact_percentile(&expanded, 50.0),
        "p50",
    );
    assert_close(
        dp.statistics["p90"],
        exact_percentile(&expanded, 90.0),
        "p90",
    );
    assert_eq!(dp.statistics["p100"], 100.0);
}

#[tokio::test]
async fn negative_values_leave_percentiles_out() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let t0 = aligned_past(60_000);
    let data = vec![
        value_datum("Delta", &[], t0, -5.0),
        value_datum("Delta", &[], t0 + 1, 5.0),
    ];
    client
        .put_metric_data(request("Test/Neg", data))
        .await
        .unwrap();
    let req = stats_request(
        "Test/Neg",
        "Delta",
        &[],
        t0,
        t0 + 60_000,
        60,
        &["Sum", "p99"],
    );
    let dp = &client
        .get_metric_statistics(req)
        .await
        .unwrap()
        .into_inner()
        .datapoints[0];
    assert_eq!(dp.statistics["Sum"], 0.0);
    assert!(!dp.statistics.contains_key("p99"));
}

#[tokio::test]
async fn dimension_order_does_not_split_series() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let t0 = aligned_past(60_000);
    let data = vec![
        value_datum("Cpu", &[("Host", "a"), ("AZ", "1")], t0, 10.0),
        value_datum("Cpu", &[("AZ", "1"), ("Host", "a")], t0 + 1000, 20.0),
    ];
    client
        .put_metric_data(request("Test/Dims", data))
        .await
        .unwrap();
    let req = stats_request(
        "Test/Dims",
        "Cpu",
        &[("Host", "a"), ("AZ", "1")],
        t0,
        t0 + 60_000,
        60,
        &["SampleCount", "Sum"],
    );
    let dp = &client
        .get_metric_statistics(req)
        .await
        .unwrap()
        .into_inner()
        .datapoints[0];
    assert_eq!(dp.statistics["SampleCount"], 2.0);
    assert_eq!(dp.statistics["Sum"], 30.0);
    let listed = client
        .list_metrics(thermostat_proto::v1::ListMetricsRequest {
            namespace: "Test/Dims".into(),
            metric_name: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.metrics.len(), 1);
    let names: Vec<&str> = listed.metrics[0]
        .dimensions
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["AZ", "Host"],
        "dimensions are listed sorted by name"
    );
}

#[tokio::test]
async fn streaming_pushes_answer_in_order() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let t0 = aligned_past(60_000);
    let requests: Vec<PutMetricDataRequest> = (1..=20)
        .map(|n| {
            let data = (0..n)
                .map(|i| value_datum("Stream", &[], t0 + i * 100, 1.0))
                .collect();
            request("Test/Stream", data)
        })
        .collect();
    let responses: Vec<u64> = client
        .stream_metric_data(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner()
        .map(|r| r.unwrap().accepted_samples)
        .collect()
        .await;
    assert_eq!(
        responses,
        (1..=20).collect::<Vec<u64>>(),
        "one response per request, in order"
    );
    let req = stats_request(
        "Test/Stream",
        "Stream",
        &[],
        t0,
        t0 + 60_000,
        60,
        &["SampleCount"],
    );
    let dp = &client
        .get_metric_statistics(req)
        .await
        .unwrap()
        .into_inner()
        .datapoints[0];
    assert_eq!(dp.statistics["SampleCount"], (1..=20).sum::<i32>() as f64);
    assert_eq!(
        scrape(&server, "thermostat_ingest_samples_total").await,
        Some(210.0)
    );
}

#[tokio::test]
async fn an_invalid_request_in_a_stream_ends_it_naming_the_request() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let t0 = aligned_past(60_000);
    let good = request("Test/Stream", vec![value_datum("S", &[], t0, 1.0)]);
    let bad = request("Test/Stream", vec![value_datum("S", &[], t0, f64::NAN)]);
    let mut out = client
        .stream_metric_data(tokio_stream::iter(vec![good.clone(), bad, good]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(out.next().await.unwrap().unwrap().accepted_samples, 1);
    let err = out.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("request 1 of the stream"),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("metric_data[0].value"),
        "{}",
        err.message()
    );
    assert!(
        out.next().await.is_none(),
        "the stream ends at the first invalid request"
    );
}

#[tokio::test]
async fn units_are_separate_streams() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let t0 = aligned_past(60_000);
    let mut a = value_datum("Mixed", &[], t0, 50.0);
    a.unit = "Percent".into();
    let mut b = value_datum("Mixed", &[], t0, 3.0);
    b.unit = "Count".into();
    client
        .put_metric_data(request("Test/Units", vec![a, b]))
        .await
        .unwrap();
    let mut req = stats_request("Test/Units", "Mixed", &[], t0, t0 + 60_000, 60, &["Sum"]);
    let all = client
        .get_metric_statistics(req.clone())
        .await
        .unwrap()
        .into_inner()
        .datapoints;
    let mut units: Vec<&str> = all.iter().map(|d| d.unit.as_str()).collect();
    units.sort();
    assert_eq!(units, ["Count", "Percent"]);
    req.unit = "Count".into();
    let only = client
        .get_metric_statistics(req)
        .await
        .unwrap()
        .into_inner()
        .datapoints;
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].statistics["Sum"], 3.0);
}

#[tokio::test]
async fn reflection_lists_the_metrics_service() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let server = TestServer::start().await;
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", server.running.grpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut resp = client
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let msg = resp.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = msg.message_response else {
        panic!("{msg:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"thermostat.v1.MetricsService".to_owned()),
        "{names:?}"
    );
}
