//! Prometheus' ecosystem against Thermostat (issue 20), with the real programs, started by the
//! tests on loopback: Prometheus in agent mode and vmagent scrape an exporter the test serves
//! (and Thermostat's own `/metrics`) and remote-write to `POST /api/v1/write`; remote write 2.0
//! and bad input by hand; promtool and vmalert read through the Prometheus query API. Every
//! value is checked against Thermostat's own statistics API.
//!
//! Peers: Debian's `prometheus` (prometheus, promtool) and `victoria-metrics` (vmagent,
//! vmalert), installed by `scripts/setup-prometheus` and `scripts/setup-victoriametrics`.
//! Without them a test is skipped with a printed reason, or fails under `CI=true`.
//!
//! Layout: this file holds the readers of Thermostat's native APIs the tests share;
//! `scrapers.rs` (Prometheus in agent mode, vmagent), `by_hand.rs` (remote write 2.0, bad
//! input), `queries.rs` (promtool, vmalert), `peers.rs` (starting the programs, the exporter)
//! and `wire.rs` (the protocols' messages, snappy) are in `prometheus_clients/`.

mod by_hand;
mod peers;
mod queries;
mod scrapers;
mod wire;

use std::collections::{BTreeMap, HashMap};

use crate::util::{TestServer, now_ms, stats_request};

/// One period that holds the whole test: from 10 minutes before its start, an hour long, so
/// that every statistic (percentiles too) is one datapoint.
#[derive(Clone, Copy, Debug)]
struct Window {
    start: i64,
    end: i64,
}

impl Window {
    fn around_now() -> Window {
        let now = now_ms();
        let start = now - now.rem_euclid(60_000) - 10 * 60_000;
        Window {
            start,
            end: start + 3_600_000,
        }
    }
}

/// Reads through Thermostat's native APIs, with a token when access control is on.
#[derive(Clone, Copy)]
struct Reader<'a> {
    server: &'a TestServer,
    token: Option<&'a str>,
}

impl<'a> Reader<'a> {
    fn open(server: &'a TestServer) -> Self {
        Reader {
            server,
            token: None,
        }
    }

    fn grpc<T>(&self, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        if let Some(t) = self.token {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        r
    }
}

/// Statistics of one series over `w`, through the native gRPC API: `Err` when it has no
/// datapoint (or, unexpectedly, more than one).
async fn stats(
    reader: &Reader<'_>,
    w: Window,
    namespace: &str,
    metric: &str,
    dimensions: &[(&str, &str)],
    statistics: &[&str],
) -> Result<HashMap<String, f64>, String> {
    let r = reader
        .server
        .client()
        .await
        .get_metric_statistics(reader.grpc(stats_request(
            namespace, metric, dimensions, w.start, w.end, 3600, statistics,
        )))
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    match r.datapoints.as_slice() {
        [] => Err(format!("no data for {namespace}/{metric}{dimensions:?}")),
        [one] => Ok(one.statistics.clone()),
        many => Err(format!(
            "{} datapoints (units?) for {namespace}/{metric}{dimensions:?}: {many:?}",
            many.len()
        )),
    }
}

/// Statistics of one series for each `period`-second period in [start, end), oldest first.
async fn periods(
    server: &TestServer,
    namespace: &str,
    metric: &str,
    dimensions: &[(&str, &str)],
    (start, end, period): (i64, i64, i32),
    statistic: &str,
) -> BTreeMap<i64, f64> {
    let r = server
        .client()
        .await
        .get_metric_statistics(stats_request(
            namespace,
            metric,
            dimensions,
            start,
            end,
            period,
            &[statistic],
        ))
        .await
        .unwrap()
        .into_inner();
    r.datapoints
        .iter()
        .map(|d| (d.timestamp_ms, d.statistics[statistic]))
        .collect()
}

/// The series of `namespace` (`GET /api/v1/metrics`): metric name and dimensions.
async fn listed(reader: &Reader<'_>, namespace: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut req = reqwest::Client::new().get(
        reader
            .server
            .http(&format!("/api/v1/metrics?namespace={namespace}")),
    );
    if let Some(t) = reader.token {
        req = req.bearer_auth(t);
    }
    let body: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
    body["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let dims = m["dimensions"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            (m["metric_name"].as_str().unwrap().to_owned(), dims)
        })
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> BTreeMap<String, String> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `value` is within the bucket (lower, upper], give or take the 1% of Thermostat's
/// percentiles.
fn in_bucket(value: f64, lower: f64, upper: f64) -> bool {
    value > lower * 0.99 && value <= upper * 1.01
}
