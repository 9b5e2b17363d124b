//! Prometheus remote write (issue 20): `POST /api/v1/write` with remote write 1.0 requests
//! built from the protocol's messages, read back through the native statistics API: the
//! mapping of labels, counters as increases, access control, the namespace label setting, and
//! refusals that store nothing. The real senders (Prometheus, vmagent) are in
//! `prometheus_clients.rs`.

use prost::Message as _;
use thermostat_auth::{digest_hex, new_token};
use thermostat_prometheus::proto::{Label, Sample, TimeSeries, WriteRequest};

use crate::util::{TestServer, now_ms, stats_request};

/// A series with `labels` (`__name__` first) and `samples` `(ms, value)`.
pub(crate) fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels
            .iter()
            .map(|(n, v)| Label {
                name: (*n).into(),
                value: (*v).into(),
            })
            .collect(),
        samples: samples
            .iter()
            .map(|&(timestamp, value)| Sample { value, timestamp })
            .collect(),
        ..Default::default()
    }
}

/// POSTs a 1.0 request; the status and the body.
pub(crate) async fn write(
    url: &str,
    token: Option<&str>,
    timeseries: Vec<TimeSeries>,
) -> (u16, String) {
    let body = WriteRequest {
        timeseries,
        ..Default::default()
    }
    .encode_to_vec();
    let body = snap::raw::Encoder::new().compress_vec(&body).unwrap();
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// `stat` of a series summed over the hour around now, at 1-minute periods; and the number of
/// datapoints.
async fn statistic(
    server: &TestServer,
    namespace: &str,
    metric: &str,
    dims: &[(&str, &str)],
    stat: &str,
) -> (f64, usize) {
    let now = now_ms();
    let start = now - now.rem_euclid(60_000) - 30 * 60_000;
    let r = server
        .client()
        .await
        .get_metric_statistics(stats_request(
            namespace,
            metric,
            dims,
            start,
            start + 3_600_000,
            60,
            &[stat],
        ))
        .await
        .unwrap()
        .into_inner();
    (
        r.datapoints.iter().map(|d| d.statistics[stat]).sum(),
        r.datapoints.len(),
    )
}

#[tokio::test]
async fn labels_become_namespace_and_dimensions_and_counters_become_increases() {
    let server = TestServer::start().await;
    let url = server.http("/api/v1/write");
    // Every sample in one minute: [t, t + 45 s].
    let now = now_ms();
    let t = now - now.rem_euclid(60_000) - 5 * 60_000 + 1_000;
    let counter = [
        ("__name__", "http_requests_total"),
        ("job", "shop"),
        ("instance", "web-1:9100"),
        ("path", "/cart"),
    ];
    let gauge = [("__name__", "queue_depth"), ("job", "shop")];
    let (status, body) = write(
        &url,
        None,
        vec![
            series(&counter, &[(t, 1000.0), (t + 15_000, 1010.0)]),
            series(&gauge, &[(t, 4.0), (t + 15_000, 6.0)]),
        ],
    )
    .await;
    assert_eq!(status, 204, "{body}");
    // A reset (the target restarted): 3 counted from zero, then 5 more.
    let (status, body) = write(
        &url,
        None,
        vec![series(
            &counter,
            &[(t + 30_000, 3.0), (t + 45_000, 8.0), (t + 45_000, 8.0)],
        )],
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let dims = [("instance", "web-1:9100"), ("path", "/cart")];
    let (sum, _) = statistic(&server, "shop", "http_requests_total", &dims, "Sum").await;
    assert_eq!(
        sum,
        10.0 + 3.0 + 5.0,
        "the first sample counts nothing; 10 more, a reset to 3, 5 more; the duplicate nothing"
    );
    let (max, n) = statistic(&server, "shop", "queue_depth", &[], "Maximum").await;
    assert_eq!((max, n), (6.0, 1), "both gauge samples in one minute");
    let (count, _) = statistic(&server, "shop", "queue_depth", &[], "SampleCount").await;
    assert_eq!(count, 2.0);
}

#[tokio::test]
async fn a_request_with_one_bad_series_is_refused_whole_with_its_name_and_rule() {
    let server = TestServer::start().await;
    let url = server.http("/api/v1/write");
    let t = now_ms() - 60_000;
    let good = series(&[("__name__", "fine"), ("job", "refused")], &[(t, 1.0)]);
    let mut labels: Vec<(String, String)> = (0..31)
        .map(|i| (format!("l{i:02}"), "v".to_owned()))
        .collect();
    labels.insert(0, ("__name__".into(), "wide".into()));
    let labels: Vec<(&str, &str)> = labels
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let cases = [
        (series(&labels, &[(t, 1.0)]), "at most 30"),
        (
            series(&[("__name__", "x"), ("bad-name", "v")], &[(t, 1.0)]),
            "bad-name",
        ),
        (
            series(&[("__name__", "x")], &[(t, f64::NAN)]),
            "staleness marker",
        ),
    ];
    for (bad, rule) in cases {
        let (status, body) = write(&url, None, vec![good.clone(), bad]).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains(rule), "{rule:?} in {body}");
        assert!(
            body.contains("nothing of this request was stored"),
            "{body}"
        );
    }
    let (_, n) = statistic(&server, "refused", "fine", &[], "SampleCount").await;
    assert_eq!(n, 0, "nothing of a refused request is stored");
    // Not snappy; snappy but not protobuf.
    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .body(vec![0xffu8; 100])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", "text/plain")
        .body("up 1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("application/x-protobuf")
    );
}

#[tokio::test]
async fn remote_write_needs_an_agent_token_in_scope() {
    let (agent, viewer) = (new_token(), new_token());
    let auth = format!(
        "tokens:\n  - {{name: prom, role: agent, namespaces: ['shop*'], token_sha256: {}}}\n  - {{name: dash, role: viewer, token_sha256: {}}}\n",
        digest_hex(&agent),
        digest_hex(&viewer)
    );
    let server = TestServer::start_with(|s| s.auth = serde_yaml_ng::from_str(&auth).unwrap()).await;
    let url = server.http("/api/v1/write");
    let t = now_ms() - 60_000;
    let one = |job: &str| vec![series(&[("__name__", "up"), ("job", job)], &[(t, 1.0)])];
    assert_eq!(write(&url, None, one("shop")).await.0, 401);
    assert_eq!(write(&url, Some(&viewer), one("shop")).await.0, 403);
    assert_eq!(
        write(&url, Some(&agent), one("billing")).await.0,
        403,
        "outside the token's namespaces"
    );
    assert_eq!(write(&url, Some(&agent), one("shop")).await.0, 204);
}

#[tokio::test]
async fn the_namespace_label_is_a_setting() {
    let server = TestServer::start_with(|s| s.prometheus_namespace_label = "team".into()).await;
    let url = server.http("/api/v1/write");
    let t = now_ms() - 60_000;
    let (status, body) = write(
        &url,
        None,
        vec![
            series(
                &[("__name__", "temp"), ("team", "green"), ("job", "node")],
                &[(t, 21.5)],
            ),
            series(&[("__name__", "temp"), ("job", "node")], &[(t, 19.0)]),
        ],
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (v, _) = statistic(&server, "green", "temp", &[("job", "node")], "Maximum").await;
    assert_eq!(v, 21.5, "team is the namespace, job a dimension");
    let (v, _) = statistic(&server, "Prometheus", "temp", &[("job", "node")], "Maximum").await;
    assert_eq!(v, 19.0, "without the label: the Prometheus namespace");
}

#[tokio::test]
async fn a_staleness_marker_ends_the_series_for_instant_queries() {
    let server = TestServer::start().await;
    let url = server.http("/api/v1/write");
    let t = now_ms() - 3 * 60_000;
    let labels = [("__name__", "door_open"), ("job", "stale")];
    let (status, body) = write(&url, None, vec![series(&labels, &[(t, 1.0)])]).await;
    assert_eq!(status, 204, "{body}");
    let instant = || async {
        let v: serde_json::Value = reqwest::get(server.http("/api/v1/query?query=door_open"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["status"], "success", "{v}");
        v["data"]["result"].as_array().unwrap().len()
    };
    assert_eq!(instant().await, 1, "within the 5-minute look-back");
    let stale = f64::from_bits(thermostat_prometheus::STALE_NAN_BITS);
    let (status, body) = write(&url, None, vec![series(&labels, &[(t + 1_000, stale)])]).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(instant().await, 0, "the marker ended the series");
}
