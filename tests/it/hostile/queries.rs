//! Hostile statistics queries (issue 15, findings 8 and 10, and the time items of 12) against
//! the real server in-process, over gRPC (`GetMetricStatistics`) and HTTP
//! (`GET /api/v1/statistics`): extreme and inverted times, extreme periods, the cost limit
//! per query (`--max-query-cost`), and the bounded query pool that keeps expensive queries
//! from starving pushes, shown by counts and the order of answers, not by a speed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use thermostat_proto::v1::{GetMetricStatisticsRequest, MetricDatum};
use tonic::Code;

use crate::util::{TestServer, dims, now_ms, request, stats_request, value_datum};

const NS: &str = "Hostile/Queries";
const YEAR_0: i64 = -62_167_219_200_000;
const YEAR_9999_END: i64 = 253_402_300_799_999;

/// Pushes one datum a minute ago and returns its timestamp.
async fn seed(server: &TestServer) -> i64 {
    let ts = now_ms() - 60_000;
    let mut c = server.client().await;
    c.put_metric_data(request(
        NS,
        vec![value_datum("Latency", &[("Host", "a")], ts, 7.0)],
    ))
    .await
    .unwrap();
    ts
}

fn query(start: i64, end: i64, period: i32) -> GetMetricStatisticsRequest {
    stats_request(
        NS,
        "Latency",
        &[("Host", "a")],
        start,
        end,
        period,
        &["Sum", "p99"],
    )
}

/// Finding 8: `GetMetricStatistics` with `start_time_ms` = i64::MIN overflowed in the store
/// and dropped the call. Every extreme is INVALID_ARGUMENT naming the field (or an empty
/// answer where the range is valid and holds no data), on one connection that keeps working.
#[tokio::test]
async fn grpc_extreme_times_and_periods_are_invalid_argument_naming_the_field() {
    let server = TestServer::start().await;
    let ts = seed(&server).await;
    let now = now_ms();
    let mut c = server.client().await;
    let day = 86_400_000;
    for (start, end, period, field) in [
        (i64::MIN, now, 60, "start_time_ms"),
        (i64::MIN, i64::MAX, 60, "start_time_ms"),
        (now - 3_600_000, i64::MAX, 60, "end_time_ms"),
        (i64::MAX, i64::MIN, 60, "start_time_ms"),
        (YEAR_0 - 1, now, 60, "start_time_ms"),
        (now, YEAR_9999_END + 1, 60, "end_time_ms"),
        // Inverted and empty ranges.
        (now, now - day, 60, "end_time_ms"),
        (now, now, 60, "end_time_ms"),
        // Periods: not positive, not allowed by CloudWatch, or too many of them.
        (now - day, now, 0, "period_seconds"),
        (now - day, now, -60, "period_seconds"),
        (now - day, now, i32::MIN, "period_seconds"),
        (now - day, now, i32::MAX, "period_seconds"),
        (now - day, now, 7, "period_seconds"),
        (YEAR_0, YEAR_9999_END, 60, "period_seconds"),
        (YEAR_0, YEAR_9999_END, 1, "period_seconds"),
    ] {
        let status = c.get_metric_statistics(query(start, end, period)).await;
        let status = status.expect_err(&format!("{start}..{end}/{period} must be refused"));
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{start}..{end}/{period}: {status:?}"
        );
        assert!(
            status.message().starts_with(field),
            "{start}..{end}/{period}: the message must name {field}: {}",
            status.message()
        );
    }
    // Valid ranges at both ends of what RFC 3339 can write: answered, empty.
    for (start, end) in [
        (YEAR_0, YEAR_0 + 3_600_000),
        (YEAR_9999_END - 3_600_000, YEAR_9999_END),
    ] {
        let r = c
            .get_metric_statistics(query(start, end, 60))
            .await
            .unwrap();
        assert!(r.into_inner().datapoints.is_empty());
    }
    // The largest period CloudWatch's rules allow spans all of time in 74 periods; the one
    // datum is in one of them.
    let all = query(YEAR_0, YEAR_9999_END, i32::MAX - i32::MAX % 60);
    let dps = c.get_metric_statistics(all).await.unwrap().into_inner();
    assert_eq!(dps.datapoints.len(), 1);
    assert_eq!(dps.datapoints[0].statistics["Sum"], 7.0);
    // The same connection still answers normally.
    let ok = c
        .get_metric_statistics(query(ts - 120_000, ts + 120_000, 60))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.datapoints.len(), 1);
    assert_eq!(ok.datapoints[0].statistics["Sum"], 7.0);
}

async fn get(server: &TestServer, query: &str) -> (u16, Value) {
    let r = reqwest::get(server.http(&format!(
        "/api/v1/statistics?namespace={NS}&metric_name=Latency&dimensions=Host=a&statistics=Sum&{query}"
    )))
    .await
    .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// Findings 8 and 12: `start=-1e300` overflowed; `9999-12-31T23:59:59Z` was refused. Every
/// time is checked: a 400 JSON error naming the parameter, and every RFC 3339 time from year
/// 0000 to 9999 accepted.
#[tokio::test]
async fn http_statistics_times_are_checked_and_name_the_parameter() {
    let server = TestServer::start().await;
    let ts = seed(&server).await;
    for (q, field, says) in [
        ("start=-1e300", "start", "must be between"),
        ("start=1e300", "start", "must be between"),
        ("start=NaN", "start", "finite"),
        ("start=inf", "start", "finite"),
        ("start=-inf&end=0", "start", "finite"),
        ("end=NaN", "end", "finite"),
        ("start=9223372036854775807", "start", "must be between"),
        ("start=-9223372036854775808", "start", "must be between"),
        ("start=10000-01-01T00:00:00Z", "start", "RFC 3339"),
        ("start=yesterday", "start", "RFC 3339"),
        (
            "start=9999-12-31T00:00:00Z&end=9999-12-31T23:59:59-01:00",
            "end",
            "must be between",
        ),
        (
            "start=2024-01-02T00:00:00Z&end=2024-01-01T00:00:00Z",
            "end",
            "after the start",
        ),
        (
            "start=0&end=1e10&period_seconds=60",
            "period_seconds",
            "1440",
        ),
        ("period_seconds=0", "period_seconds", "positive"),
        ("period_seconds=-60", "period_seconds", "positive"),
        (
            "period_seconds=99999999999999999999",
            "period_seconds",
            "whole number",
        ),
    ] {
        let (status, body) = get(&server, q).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert_eq!(body["error"]["field"], field, "{q}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{q}: {message}");
        assert!(message.len() < 512, "{q}: {message}");
    }
    // A long value is quoted only in part.
    let long = "9".repeat(4000);
    let (status, body) = get(&server, &format!("start=x{long}")).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"].as_str().unwrap().len() < 300,
        "{body}"
    );
    // The whole of year 9999 and year 0 are accepted.
    for q in [
        "start=9999-12-31T23:00:00Z&end=9999-12-31T23:59:59Z",
        "start=9999-12-31T23:00:00Z&end=9999-12-31T23:59:59.999Z",
        "start=0000-01-01T00:00:00Z&end=0000-01-01T01:00:00Z",
        "start=253402297200&end=253402300799.999",
    ] {
        let (status, body) = get(&server, q).await;
        assert_eq!(status, 200, "{q}: {body}");
        assert_eq!(body["datapoints"], serde_json::json!([]), "{q}");
    }
    // And an ordinary query still answers.
    let (status, body) = get(
        &server,
        &format!(
            "start={}&end={}",
            (ts - 120_000) / 1000,
            (ts + 120_000) / 1000
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["datapoints"][0]["Sum"], 7.0);
}

/// A query that costs more than `--max-query-cost` (periods × statistics × series) is refused
/// naming the limit and the cost, over both APIs; one within it is answered.
#[tokio::test]
async fn a_query_over_the_cost_limit_is_refused_naming_the_limit() {
    let server = TestServer::start_with(|s| s.max_query_cost = 2_000).await;
    seed(&server).await;
    let end = now_ms() - now_ms().rem_euclid(60_000);
    let (start, end) = (end - 86_400_000, end);
    // 1440 one-minute periods × 2 statistics = 2880.
    let mut c = server.client().await;
    let status = c
        .get_metric_statistics(query(start, end, 60))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("--max-query-cost") && status.message().contains("2880"),
        "{}",
        status.message()
    );
    let (s, e) = (start / 1000, end / 1000);
    let (code, body) = get(
        &server,
        &format!("start={s}&end={e}&statistics=Sum,p99&period_seconds=60"),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("--max-query-cost")
            && message.contains("2880")
            && message.contains("2000"),
        "{message}"
    );
    // 1440 × 1 and 720 × 2 are within the limit.
    let (code, body) = get(&server, &format!("start={s}&end={e}&period_seconds=60")).await;
    assert_eq!(code, 200, "{body}");
    let within = c
        .get_metric_statistics(query(start, end, 120))
        .await
        .unwrap();
    assert_eq!(within.into_inner().datapoints.len(), 1);
}

/// Minutes of data the expensive query reads.
const HEAVY_MINUTES: i64 = 120;

/// One-minute windows over the last [`HEAVY_MINUTES`], each with 120 distinct values (so that
/// every window holds a histogram and every percentile costs a walk over it).
async fn seed_expensive(server: &TestServer) -> (i64, i64) {
    let mut c = server.client().await;
    let end = now_ms() - now_ms().rem_euclid(60_000);
    let start = end - HEAVY_MINUTES * 60_000;
    let data: Vec<MetricDatum> = (0..HEAVY_MINUTES)
        .map(|m| MetricDatum {
            metric_name: "Heavy".into(),
            dimensions: dims(&[("Host", "a")]),
            timestamp_ms: start + m * 60_000 + 1_000,
            values: (0..120).map(|i| f64::from(i) * 37.5 + m as f64).collect(),
            unit: "Milliseconds".into(),
            ..Default::default()
        })
        .collect();
    for chunk in data.chunks(400) {
        c.put_metric_data(request(NS, chunk.to_vec()))
            .await
            .unwrap();
    }
    (start, end)
}

const PERCENTILES: [&str; 15] = [
    "p1", "p5", "p10", "p20", "p25", "p30", "p40", "p50", "p60", "p70", "p75", "p80", "p90", "p99",
    "p99.9",
];

/// Finding 10: 20 queries of 1,440 periods × 15 percentiles on the async workers delayed an
/// unrelated push to 1.75 s. (Here the queries read 120 periods, so that the burst costs
/// seconds, not minutes, of a debug build's CPU.) Queries now run on a bounded pool shared by gRPC and HTTP: a
/// burst of them is answered partly RESOURCE_EXHAUSTED / 429 naming the pool's limits (so
/// they never take every thread), and a push sent while the pool is full is acknowledged
/// while admitted queries are still waiting for their turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expensive_queries_run_on_a_bounded_pool_and_do_not_starve_pushes() {
    let server = TestServer::start().await;
    let (start, end) = seed_expensive(&server).await;
    let heavy = GetMetricStatisticsRequest {
        metric_name: "Heavy".into(),
        statistics: PERCENTILES.iter().map(|s| (*s).into()).collect(),
        ..stats_request(NS, "Heavy", &[("Host", "a")], start, end, 60, &[])
    };
    // One query's answer: a datapoint of 15 percentiles a minute.
    let mut c = server.client().await;
    let one = c.get_metric_statistics(heavy.clone()).await.unwrap();
    assert_eq!(one.into_inner().datapoints.len() as i64, HEAVY_MINUTES);

    // 5 connections × 60 streams (under the 64 a connection allows) = 300 queries at once,
    // far more than the pool runs and queues.
    const CONNECTIONS: usize = 5;
    const PER_CONNECTION: usize = 60;
    let done = Arc::new(AtomicUsize::new(0));
    let (saturated_tx, saturated) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONNECTIONS {
        let client = server.client().await;
        for _ in 0..PER_CONNECTION {
            let (mut client, heavy, done) = (client.clone(), heavy.clone(), Arc::clone(&done));
            let saturated_tx = saturated_tx.clone();
            tasks.spawn(async move {
                let r = client.get_metric_statistics(heavy).await;
                match &r {
                    Ok(_) => {
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(s) if s.code() == Code::ResourceExhausted => {
                        let _ = saturated_tx.send(true);
                    }
                    Err(_) => {}
                }
                r.map(|r| r.into_inner().datapoints.len())
            });
        }
    }
    // Once a query has been refused, the pool is full: every turn taken and 64 waiting.
    let mut saturated = saturated.clone();
    saturated.wait_for(|s| *s).await.unwrap();
    let done_before_push = done.load(Ordering::SeqCst);

    // An HTTP query at that moment shares the full pool: 429, naming the limits.
    let (s, e) = (start / 1000, end / 1000);
    let stats = PERCENTILES.join(",");
    let r = reqwest::get(server.http(&format!(
        "/api/v1/statistics?namespace={NS}&metric_name=Heavy&dimensions=Host=a&statistics={stats}&start={s}&end={e}&period_seconds=60"
    )))
    .await
    .unwrap();
    let http_status = r.status().as_u16();
    let http_body: Value = r.json().await.unwrap();

    // A push on a connection of its own is acknowledged while queries are still queued.
    let mut pusher = server.client().await;
    let ack = pusher
        .put_metric_data(request(
            NS,
            vec![value_datum("Unrelated", &[], now_ms() - 1_000, 1.0)],
        ))
        .await
        .unwrap();
    assert_eq!(ack.into_inner().accepted_samples, 1);
    let done_at_push = done.load(Ordering::SeqCst);

    let (mut ok, mut exhausted, mut other) = (0, Vec::new(), Vec::new());
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(n) => {
                assert_eq!(n as i64, HEAVY_MINUTES);
                ok += 1;
            }
            Err(s) if s.code() == Code::ResourceExhausted => exhausted.push(s),
            Err(s) => other.push(s),
        }
    }
    assert!(other.is_empty(), "unexpected answers: {other:?}");
    assert!(!exhausted.is_empty(), "the burst must overflow the pool");
    for s in &exhausted {
        assert!(
            s.message().contains("at most 64 may wait"),
            "the refusal names the limit: {}",
            s.message()
        );
    }
    // Every refusal came once the pool was full: at least one running and 64 waiting were
    // admitted, and all of them were answered.
    assert!(ok >= 65, "{ok} queries answered");
    assert_eq!(ok + exhausted.len(), CONNECTIONS * PER_CONNECTION);
    // The push did not wait for the queue: when it was acknowledged, most admitted queries
    // had not finished.
    assert!(
        done_at_push < ok,
        "the push was acknowledged after every admitted query ({done_at_push} of {ok} done, {done_before_push} when the pool was full)"
    );
    assert_eq!(http_status, 429, "{http_body}");
    assert!(
        http_body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 64 may wait"),
        "{http_body}"
    );
}

/// The dashboard's chart endpoints query the store through the same gate: over
/// `--max-query-cost` they answer 400 naming `range_seconds` and the limit.
#[tokio::test]
async fn dashboard_charts_go_through_the_same_cost_limit() {
    let cfg = tempfile::tempdir().unwrap();
    let path = cfg.path().join("a.yaml");
    std::fs::write(
        &path,
        format!(
            "alarms:\n  - {{name: slow, namespace: {NS}, metric_name: Latency, dimensions: {{Host: a}}, statistic: Average, period_seconds: 60, evaluation_periods: 1, threshold: 5, comparison_operator: GreaterThanThreshold}}\n"
        ),
    )
    .unwrap();
    let server = TestServer::start_with(move |s| {
        s.config = vec![path];
        s.max_query_cost = 100;
    })
    .await;
    seed(&server).await;
    // 60 one-minute periods × 1 statistic: within the limit, the datum is drawn.
    let r = reqwest::get(server.http("/api/v1/dashboard/alarms/slow?range_seconds=3600"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["datapoints"][0]["value"], 7.0, "{body}");
    // 120 periods (121 where the range is not aligned to the minute): over it.
    let r = reqwest::get(server.http("/api/v1/dashboard/alarms/slow?range_seconds=7200"))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["field"], "range_seconds", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("--max-query-cost") && message.contains("more than the limit of 100"),
        "{message}"
    );
}

/// Hostile `GetMetricData` (issue 22) over HTTP and gRPC: an expression over CloudWatch's
/// 2,048 characters, nesting 10,000 deep (over the length too) and 1,000 deep (within it,
/// over the nesting limit), and 501 queries are each a 400 / INVALID_ARGUMENT naming the
/// field and the limit, before any data are read.
#[tokio::test]
async fn metric_data_expressions_and_query_lists_over_their_limits_are_refused() {
    use thermostat_proto::v1::{GetMetricDataRequest, MetricDataQuery, metric_data_query};

    let server = TestServer::start().await;
    let ts = seed(&server).await;
    let metric = serde_json::json!({
        "Id": "m1",
        "MetricStat": {"Metric": {"Namespace": NS, "MetricName": "Latency"}, "Period": 60, "Stat": "Sum"},
        "ReturnData": false
    });
    let long = format!("m1{}0", "+1".repeat(1023));
    let deep_10k = format!("{}m1{}", "(".repeat(10_000), ")".repeat(10_000));
    let deep_1k = format!("{}m1{}", "(".repeat(1_000), ")".repeat(1_000));
    let http = reqwest::Client::new();
    let mut c = server.client().await;
    for (what, expression, needle) in [
        ("2049 characters", long.as_str(), "at most 2048"),
        ("10,000 deep", deep_10k.as_str(), "at most 2048"),
        ("1,000 deep", deep_1k.as_str(), "levels deep"),
    ] {
        let body = serde_json::json!({
            "MetricDataQueries": [metric, {"Id": "e", "Expression": expression}],
            "StartTime": (ts - 600_000) / 1000,
            "EndTime": (ts + 600_000) / 1000,
        });
        let r = http
            .post(server.http("/api/v1/metric-data"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{what}");
        let json: Value = r.json().await.unwrap();
        assert_eq!(
            json["error"]["field"], "MetricDataQueries.member.2.Expression",
            "{what}: {json}"
        );
        let message = json["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("limit") && message.contains(needle),
            "{what}: {message}"
        );

        let status = c
            .get_metric_data(GetMetricDataRequest {
                metric_data_queries: vec![MetricDataQuery {
                    id: "e".into(),
                    query: Some(metric_data_query::Query::Expression(expression.into())),
                    ..MetricDataQuery::default()
                }],
                start_time_ms: ts - 600_000,
                end_time_ms: ts + 600_000,
                ..GetMetricDataRequest::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{what}");
        assert!(
            status
                .message()
                .starts_with("metric_data_queries[0].expression: 1:"),
            "{what}: {status:?}"
        );
    }
    let many: Vec<Value> = (0..501)
        .map(|i| {
            let mut q = metric.clone();
            q["Id"] = serde_json::json!(format!("m{i}"));
            q
        })
        .collect();
    let body = serde_json::json!({"MetricDataQueries": many, "StartTime": 0, "EndTime": 60});
    let r = http
        .post(server.http("/api/v1/metric-data"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let json: Value = r.json().await.unwrap();
    assert_eq!(json["error"]["field"], "MetricDataQueries", "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 to 500 queries"),
        "{json}"
    );
    let status = c
        .get_metric_data(GetMetricDataRequest {
            metric_data_queries: vec![MetricDataQuery::default(); 501],
            start_time_ms: 0,
            end_time_ms: 60_000,
            ..GetMetricDataRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .starts_with("metric_data_queries: count: must hold 1 to 500"),
        "{status:?}"
    );
}
