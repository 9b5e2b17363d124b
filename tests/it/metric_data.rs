//! `GetMetricData` with metric math (issue 22) through the native gRPC API and
//! `POST /api/v1/metric-data`: data pushed over gRPC, expressions over it answered by both
//! ports from the one shared implementation (`thermostat_alarms::math::metric_data`).

use serde_json::{Value, json};
use thermostat_proto::v1::{
    GetMetricDataRequest, Metric, MetricDataQuery, MetricDataStatusCode, MetricStat, ScanBy,
    metric_data_query::Query,
};
use tonic::Code;

use crate::util::{TestServer, aligned_past, request, value_datum};

const NS: &str = "It/MetricData";

/// Pushes `errors` 1, 2, 3 and `requests` 10, 10, 20 at three whole minutes an hour ago;
/// returns the first minute.
async fn seed(server: &TestServer) -> i64 {
    let t = aligned_past(60_000);
    let mut data = Vec::new();
    for (i, (errors, requests)) in [(1.0, 10.0), (2.0, 10.0), (3.0, 20.0)]
        .into_iter()
        .enumerate()
    {
        let ts = t + 60_000 * i as i64;
        data.push(value_datum("errors", &[], ts, errors));
        data.push(value_datum("requests", &[], ts, requests));
    }
    let mut c = server.client().await;
    c.put_metric_data(request(NS, data)).await.unwrap();
    t
}

fn stat_query(id: &str, name: &str) -> MetricDataQuery {
    MetricDataQuery {
        id: id.into(),
        query: Some(Query::MetricStat(MetricStat {
            metric: Some(Metric {
                namespace: NS.into(),
                metric_name: name.into(),
                dimensions: Vec::new(),
            }),
            period_seconds: 60,
            stat: "Sum".into(),
            unit: String::new(),
        })),
        return_data: Some(false),
        ..MetricDataQuery::default()
    }
}

fn expression(id: &str, e: &str) -> MetricDataQuery {
    MetricDataQuery {
        id: id.into(),
        query: Some(Query::Expression(e.into())),
        ..MetricDataQuery::default()
    }
}

#[tokio::test]
async fn grpc_get_metric_data_evaluates_a_ratio_and_a_sum_of_metrics() {
    let server = TestServer::start().await;
    let t = seed(&server).await;
    let mut c = server.client().await;
    let mut rate = expression("rate", "errors/requests*100");
    rate.label = "error rate".into();
    let answer = c
        .get_metric_data(GetMetricDataRequest {
            metric_data_queries: vec![
                stat_query("errors", "errors"),
                stat_query("requests", "requests"),
                rate,
                expression("total", "SUM(METRICS())"),
            ],
            start_time_ms: t,
            end_time_ms: t + 180_000,
            scan_by: ScanBy::TimestampAscending as i32,
            ..GetMetricDataRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let results = &answer.metric_data_results;
    assert_eq!(results.len(), 2, "only the expressions: {answer:?}");
    assert_eq!(
        (results[0].id.as_str(), results[0].label.as_str()),
        ("rate", "error rate")
    );
    assert_eq!(results[0].values, vec![10.0, 20.0, 15.0]);
    assert_eq!(results[0].timestamps_ms, vec![t, t + 60_000, t + 120_000]);
    assert_eq!(results[1].id, "total");
    assert_eq!(results[1].values, vec![11.0, 12.0, 23.0]);
    assert_eq!(
        results[1].status_code,
        MetricDataStatusCode::Complete as i32
    );
    assert!(answer.next_token.is_empty());

    // A broken expression names its query, position and rule.
    let status = c
        .get_metric_data(GetMetricDataRequest {
            metric_data_queries: vec![
                stat_query("errors", "errors"),
                expression("e", "errors +* 2"),
            ],
            start_time_ms: t,
            end_time_ms: t + 180_000,
            ..GetMetricDataRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .starts_with("metric_data_queries[1].expression: 1:9: syntax"),
        "{status:?}"
    );
}

async fn post(server: &TestServer, body: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(server.http("/api/v1/metric-data"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn json_stat(id: &str, name: &str) -> Value {
    json!({
        "Id": id,
        "MetricStat": {
            "Metric": {"Namespace": NS, "MetricName": name},
            "Period": 60,
            "Stat": "Sum"
        },
        "ReturnData": false
    })
}

#[tokio::test]
async fn http_metric_data_answers_cloudwatch_json_and_pages() {
    let server = TestServer::start().await;
    let t = seed(&server).await;
    let body = json!({
        "MetricDataQueries": [
            json_stat("m1", "errors"),
            json_stat("m2", "requests"),
            {"Id": "rate", "Expression": "m1/m2*100"},
            {"Id": "total", "Expression": "SUM(METRICS())", "Label": "all"}
        ],
        "StartTime": t / 1000,
        "EndTime": thermostat_metrics::Timestamp::from_millis(t + 180_000).to_rfc3339(),
    });
    let (status, json) = post(&server, &body).await;
    assert_eq!(status, 200, "{json}");
    let results = &json["MetricDataResults"];
    assert_eq!(results[0]["Id"], "rate");
    // Newest first, CloudWatch's default.
    assert_eq!(results[0]["Values"], json!([15.0, 20.0, 10.0]));
    assert_eq!(
        results[0]["Timestamps"],
        json!([t / 1000 + 120, t / 1000 + 60, t / 1000])
    );
    assert_eq!(results[1]["Label"], "all");
    assert_eq!(results[1]["Values"], json!([23.0, 12.0, 11.0]));
    assert_eq!(results[1]["StatusCode"], "Complete");

    // Four datapoints a page: the second result goes on under NextToken.
    let mut paged = body.clone();
    paged["MaxDatapoints"] = json!(4);
    let (status, first) = post(&server, &paged).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["MetricDataResults"][1]["Values"], json!([23.0]));
    assert_eq!(first["MetricDataResults"][1]["StatusCode"], "PartialData");
    paged["NextToken"] = first["NextToken"].clone();
    let (status, second) = post(&server, &paged).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        second["MetricDataResults"][1]["Values"],
        json!([12.0, 11.0])
    );
    assert!(second.get("NextToken").is_none(), "{second}");
}

/// Pushes `minutes` 1-minute values of `name` ending before `end`: a daily cycle
/// `100 + 50·sin(2π·t/day)` plus a little deterministic noise.
async fn seed_daily_cycle(server: &TestServer, name: &str, minutes: i64, end: i64) {
    const DAY: i64 = 86_400_000;
    let mut c = server.client().await;
    let all: Vec<_> = (1..=minutes)
        .map(|i| {
            let t = end - 60_000 * i;
            let phase = t.rem_euclid(DAY) as f64 / DAY as f64 * std::f64::consts::TAU;
            let noise = (t / 60_000).rem_euclid(7) as f64 - 3.0;
            value_datum(name, &[], t, 100.0 + 50.0 * phase.sin() + noise)
        })
        .collect();
    for chunk in all.chunks(1000) {
        c.put_metric_data(request(NS, chunk.to_vec()))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn anomaly_detection_bands_are_trained_on_demand_from_the_stored_history() {
    let server = TestServer::start().await;
    // Three days of history (ingest accepts timestamps up to 14 days old): a trained model.
    let now = crate::util::now_ms();
    let end = now - now.rem_euclid(60_000);
    seed_daily_cycle(&server, "latency", 3 * 1440, end).await;
    // Twenty minutes: too little for any model.
    seed_daily_cycle(&server, "fresh", 20, end).await;
    let start = end - 3_600_000;
    let stat = |id: &str, name: &str| {
        let mut q = stat_query(id, name);
        if let Some(Query::MetricStat(s)) = &mut q.query {
            s.stat = "Average".into();
        }
        q.return_data = Some(true);
        q
    };
    let mut c = server.client().await;
    let answer = c
        .get_metric_data(GetMetricDataRequest {
            metric_data_queries: vec![
                stat("m1", "latency"),
                expression("band", "ANOMALY_DETECTION_BAND(m1, 3)"),
            ],
            start_time_ms: start,
            end_time_ms: end,
            scan_by: ScanBy::TimestampAscending as i32,
            ..GetMetricDataRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let r = &answer.metric_data_results;
    let labels: Vec<(&str, &str)> = r
        .iter()
        .map(|r| (r.id.as_str(), r.label.as_str()))
        .collect();
    assert_eq!(
        labels,
        vec![("m1", "latency"), ("band", "upper"), ("band", "lower")],
        "{answer:?}"
    );
    let (m1, upper, lower) = (&r[0], &r[1], &r[2]);
    assert_eq!(m1.values.len(), 60);
    assert_eq!(upper.timestamps_ms, m1.timestamps_ms);
    assert_eq!(lower.timestamps_ms, m1.timestamps_ms);
    assert!(upper.messages.is_empty(), "{upper:?}");
    for i in 0..m1.values.len() {
        let v = m1.values[i];
        assert!(
            lower.values[i] <= v && v <= upper.values[i],
            "at {}: {} <= {v} <= {}",
            m1.timestamps_ms[i],
            lower.values[i],
            upper.values[i]
        );
        // A daily model follows the cycle: far narrower than its 100-wide swing.
        assert!(
            upper.values[i] - lower.values[i] < 60.0,
            "{upper:?} {lower:?}"
        );
    }

    // Too little history: the band is empty with the model's reason, over HTTP.
    let body = json!({
        "MetricDataQueries": [
            {
                "Id": "m1",
                "MetricStat": {
                    "Metric": {"Namespace": NS, "MetricName": "fresh"},
                    "Period": 60,
                    "Stat": "Average"
                }
            },
            {"Id": "band", "Expression": "ANOMALY_DETECTION_BAND(m1)", "Label": "Expected"}
        ],
        "StartTime": start / 1000,
        "EndTime": end / 1000,
    });
    let (status, json) = post(&server, &body).await;
    assert_eq!(status, 200, "{json}");
    let results = &json["MetricDataResults"];
    assert_eq!(results[0]["Values"].as_array().unwrap().len(), 20, "{json}");
    assert_eq!(results[1]["Label"], "Expected upper", "{json}");
    assert_eq!(results[1]["Values"], json!([]), "{json}");
    assert_eq!(results[1]["StatusCode"], "Complete", "{json}");
    assert_eq!(
        results[1]["Messages"][0]["Code"], "PendingTraining",
        "{json}"
    );
    let why = results[1]["Messages"][0]["Value"].as_str().unwrap();
    assert!(
        why.starts_with("the anomaly model has not seen enough data yet: 20 datapoints"),
        "{json}"
    );
}
