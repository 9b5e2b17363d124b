//! The Prometheus-compatible query API (issue 20) through HTTP: data pushed with the native
//! gRPC API, read back with `/api/v1/query`, `query_range`, `series`, `labels`,
//! `label/__name__/values`, `metadata` and `status/buildinfo`, and compared with what the
//! native statistics API answers for the same series and periods.

use reqwest::StatusCode;
use serde_json::Value;
use thermostat_auth::{digest_hex, new_token};

use crate::util::*;

/// An hour-old 5-minute boundary, and 20 minutes of data from it: `Latency` (10 values a minute
/// on two hosts), `Requests` (a counter's increase, 5 a minute) in `App/web`, and `Other` in
/// namespace `Billing`.
async fn seeded(server: &TestServer) -> i64 {
    // Periods are aligned to multiples of their length: 5-minute periods here.
    let base = aligned_past(300_000);
    let mut client = server.client().await;
    for minute in 0..20 {
        let ts = base + minute * 60_000 + 1_000;
        let mut data = Vec::new();
        for v in 0..10 {
            data.push(value_datum(
                "Latency",
                &[("Host", "a")],
                ts,
                f64::from(v) + minute as f64,
            ));
            data.push(value_datum(
                "Latency",
                &[("Host", "b")],
                ts,
                100.0 + f64::from(v),
            ));
        }
        data.push(value_datum("Requests", &[("Host", "a")], ts, 5.0));
        client
            .put_metric_data(request("App/web", data))
            .await
            .unwrap();
        client
            .put_metric_data(request("Billing", vec![value_datum("Other", &[], ts, 1.0)]))
            .await
            .unwrap();
    }
    base
}

async fn native(
    server: &TestServer,
    name: &str,
    host: &str,
    start: i64,
    period: i32,
    stat: &str,
) -> f64 {
    let r = server
        .client()
        .await
        .get_metric_statistics(stats_request(
            "App/web",
            name,
            &[("Host", host)],
            start,
            start + i64::from(period) * 1000,
            period,
            &[stat],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.datapoints.len(), 1, "{name} {stat} at {start}");
    r.datapoints[0].statistics[stat]
}

async fn call(
    server: &TestServer,
    token: Option<&str>,
    path: &str,
    form: Option<&[(&str, &str)]>,
) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let url = server.http(path);
    let mut req = match form {
        Some(f) => client.post(url).form(f),
        None => client.get(url),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let body = r.json().await.unwrap();
    (status, body)
}

fn value_of(v: &Value) -> f64 {
    v[1].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn prometheus_queries_answer_what_the_native_api_does() {
    let server = TestServer::start().await;
    let base = seeded(&server).await;
    let secs = |ms: i64| (ms / 1000).to_string();

    // An instant query at minute 10's end reads minute [9, 10).
    let t = base + 10 * 60_000;
    let q = r#"Latency{namespace="App/web", Host="a"}"#;
    let (status, body) = call(
        &server,
        None,
        &format!("/api/v1/query?query={}&time={}", urlencode(q), secs(t)),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["resultType"], "vector");
    let result = body["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{body}");
    assert_eq!(result[0]["metric"]["__name__"], "Latency");
    assert_eq!(result[0]["metric"]["namespace"], "App/web");
    assert_eq!(result[0]["metric"]["Host"], "a");
    assert_eq!(result[0]["value"][0], t / 1000);
    let want = native(&server, "Latency", "a", t - 60_000, 60, "Average").await;
    assert_eq!(value_of(&result[0]["value"]), want);

    // The same by POST with a form body, and with each statistic.
    for (stat, stat_label) in [("Maximum", "Maximum"), ("p90", "p90"), ("Sum", "Sum")] {
        let q = format!(r#"Latency{{namespace="App/web", Host="a", stat="{stat_label}"}}"#);
        let time = secs(t);
        let (status, body) = call(
            &server,
            None,
            "/api/v1/query",
            Some(&[("query", q.as_str()), ("time", time.as_str())]),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let want = native(&server, "Latency", "a", t - 60_000, 60, stat).await;
        assert_eq!(
            value_of(&body["data"]["result"][0]["value"]),
            want,
            "{stat}"
        );
    }

    // A range query with a 5-minute step reads 5-minute periods: the point at t is the
    // period ending at t.
    let (start, end) = (base + 5 * 60_000, base + 20 * 60_000);
    let q = r#"sum by (Host) (Latency{namespace="App/web"})"#;
    let (status, body) = call(
        &server,
        None,
        "/api/v1/query_range",
        Some(&[
            ("query", q),
            ("start", &secs(start)),
            ("end", &secs(end)),
            ("step", "5m"),
        ]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["resultType"], "matrix");
    let series = body["data"]["result"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{body}");
    assert_eq!(series[0]["metric"], serde_json::json!({"Host": "a"}));
    let values = series[0]["values"].as_array().unwrap();
    assert_eq!(values.len(), 4, "{body}");
    for v in values {
        let at = v[0].as_i64().unwrap() * 1000;
        let want = native(&server, "Latency", "a", at - 300_000, 300, "Average").await;
        assert_eq!(value_of(v), want, "at {at}");
    }

    // increase and rate over the counter: the Sum of the stored increases.
    let time = secs(base + 15 * 60_000);
    let (_, body) = call(
        &server,
        None,
        "/api/v1/query",
        Some(&[("query", "increase(Requests[5m])"), ("time", &time)]),
    )
    .await;
    let want = native(&server, "Requests", "a", base + 10 * 60_000, 300, "Sum").await;
    assert_eq!(value_of(&body["data"]["result"][0]["value"]), want);
    assert_eq!(want, 25.0);
    let (_, body) = call(
        &server,
        None,
        "/api/v1/query",
        Some(&[("query", "rate(Requests[5m]) * 60"), ("time", &time)]),
    )
    .await;
    assert_eq!(value_of(&body["data"]["result"][0]["value"]), 5.0);

    // histogram_quantile over the distribution: the percentile of the 5 minutes.
    let (_, body) = call(
        &server,
        None,
        "/api/v1/query",
        Some(&[
            (
                "query",
                r#"histogram_quantile(0.9, sum by (le) (rate(Latency_bucket{Host="b"}[5m])))"#,
            ),
            ("time", &time),
        ]),
    )
    .await;
    let want = native(&server, "Latency", "b", base + 10 * 60_000, 300, "p90").await;
    assert_eq!(
        value_of(&body["data"]["result"][0]["value"]),
        want,
        "{body}"
    );

    // Scalars, as Grafana's test query sends.
    let (_, body) = call(&server, None, "/api/v1/query?query=1%2B1", None).await;
    assert_eq!(body["data"]["resultType"], "scalar");
    assert_eq!(body["data"]["result"][1], "2");

    // Series, labels, label values, metadata, build information.
    let (status, body) = call(
        &server,
        None,
        &format!(
            "/api/v1/series?match[]={}",
            urlencode(r#"{namespace="App/web"}"#)
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 3, "{body}");
    let (_, body) = call(
        &server,
        None,
        "/api/v1/labels",
        Some(&[("match[]", "Latency")]),
    )
    .await;
    assert_eq!(
        body["data"],
        serde_json::json!(["Host", "__name__", "namespace"])
    );
    let (_, body) = call(&server, None, "/api/v1/label/__name__/values", None).await;
    assert_eq!(
        body["data"],
        serde_json::json!(["Latency", "Other", "Requests"])
    );
    let (_, body) = call(&server, None, "/api/v1/metadata", None).await;
    assert_eq!(body["data"]["Latency"][0]["type"], "unknown");
    let (status, body) = call(&server, None, "/api/v1/status/buildinfo", None).await;
    assert_eq!(status, 200);
    assert!(body["data"]["version"].as_str().unwrap().starts_with("2."));
    server.running.shutdown();
}

#[tokio::test]
async fn unsupported_promql_and_bad_parameters_are_bad_data() {
    let server = TestServer::start().await;
    for q in [
        "predict_linear(x[5m], 60)",
        "x offset 5m",
        "x @ 100",
        "rate(x[5m:1m])",
        "topk(3, x)",
        "x and y",
    ] {
        let (status, body) = call(&server, None, "/api/v1/query", Some(&[("query", q)])).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert_eq!(body["status"], "error");
        assert_eq!(body["errorType"], "bad_data", "{q}");
        assert!(
            body["error"].as_str().unwrap().contains("not supported"),
            "{q}: {body}"
        );
    }
    let (status, body) = call(&server, None, "/api/v1/query", Some(&[("query", "sum(")])).await;
    assert_eq!(
        (status, body["errorType"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_data"))
    );
    let (status, body) = call(
        &server,
        None,
        "/api/v1/query_range",
        Some(&[
            ("query", "x"),
            ("start", "0"),
            ("end", "100000"),
            ("step", "1"),
        ]),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("11000"), "{body}");
    let (status, _) = call(&server, None, "/api/v1/query?query=x&time=yesterday", None).await;
    assert_eq!(status, 400);
    let (status, body) = call(&server, None, "/api/v1/series", None).await;
    assert_eq!(status, 400, "{body}");
    server.running.shutdown();
}

#[tokio::test]
async fn a_scoped_token_sees_only_its_namespaces() {
    let (reader, admin) = (new_token(), new_token());
    let yaml = format!(
        "tokens:\n  - {{name: viewer, role: viewer, namespaces: ['App/*'], token_sha256: {}}}\n  - {{name: root, role: admin, token_sha256: {}}}\n",
        digest_hex(&reader),
        digest_hex(&admin)
    );
    let server = TestServer::start_with(|s| s.auth = serde_yaml_ng::from_str(&yaml).unwrap()).await;
    let base = aligned_past(60_000);
    let mut client = server.client().await;
    for ns in ["App/web", "Billing"] {
        let mut req = tonic::Request::new(request(
            ns,
            vec![value_datum("Cpu", &[("Host", "a")], base + 1_000, 1.0)],
        ));
        req.metadata_mut()
            .insert("authorization", format!("Bearer {admin}").parse().unwrap());
        client.put_metric_data(req).await.unwrap();
    }
    let time = ((base + 120_000) / 1000).to_string();
    let count = |token: String| {
        let (server, time) = (&server, time.clone());
        async move {
            let (status, body) = call(
                server,
                Some(&token),
                "/api/v1/query",
                Some(&[("query", "count(Cpu)"), ("time", &time)]),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            value_of(&body["data"]["result"][0]["value"])
        }
    };
    assert_eq!(count(admin.clone()).await, 2.0);
    assert_eq!(count(reader.clone()).await, 1.0);
    let (_, body) = call(
        &server,
        Some(&reader),
        "/api/v1/label/namespace/values",
        None,
    )
    .await;
    assert_eq!(body["data"], serde_json::json!(["App/web"]));
    let (_, body) = call(&server, Some(&reader), "/api/v1/series?match[]=Cpu", None).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    // Without a token: refused.
    let (status, _) = call(&server, None, "/api/v1/query?query=Cpu", None).await;
    assert_eq!(status, 401);
    server.running.shutdown();
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
