//! The HTTP API: statistics and series as JSON, health, telemetry, errors.

use serde_json::Value;

use crate::util::*;

async fn get_json(url: &str) -> (u16, Value) {
    let resp = reqwest::get(url).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn statistics_over_http_match_grpc() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let t0 = aligned_past(300_000);
    let data = (0..600)
        .map(|i| {
            value_datum(
                "Latency",
                &[("Host", "a"), ("AZ", "1")],
                t0 + i * 500,
                (i % 100) as f64,
            )
        })
        .collect();
    client
        .put_metric_data(request("Test/Http", data))
        .await
        .unwrap();

    let start_rfc = jiff::Timestamp::from_millisecond(t0).unwrap().to_string();
    let end_secs = (t0 + 300_000) / 1000;
    let url = server.http(&format!(
        "/api/v1/statistics?namespace=Test/Http&metric_name=Latency&dimensions=AZ=1,Host=a&start={start_rfc}&end={end_secs}&period_seconds=60&statistics=SampleCount,Average,Maximum,p99"
    ));
    let (status, body) = get_json(&url).await;
    assert_eq!(status, 200, "{body}");
    let points = body["datapoints"].as_array().unwrap();
    assert_eq!(points.len(), 5);
    assert_eq!(points[0]["timestamp"], Value::String(start_rfc.clone()));
    assert_eq!(points[0]["SampleCount"], 120.0);
    assert_eq!(points[0]["Maximum"], 99.0);
    let grpc = client
        .get_metric_statistics(stats_request(
            "Test/Http",
            "Latency",
            &[("Host", "a"), ("AZ", "1")],
            t0,
            t0 + 300_000,
            60,
            &["Average", "p99"],
        ))
        .await
        .unwrap()
        .into_inner();
    for (h, g) in points.iter().zip(&grpc.datapoints) {
        assert_eq!(h["Average"].as_f64().unwrap(), g.statistics["Average"]);
        assert_eq!(h["p99"].as_f64().unwrap(), g.statistics["p99"]);
    }

    let (status, body) = get_json(&server.http("/api/v1/metrics?namespace=Test/Http")).await;
    assert_eq!(status, 200);
    assert_eq!(body["metrics"][0]["metric_name"], "Latency");
    assert_eq!(body["metrics"][0]["dimensions"]["Host"], "a");
    let (_, body) = get_json(&server.http("/api/v1/metrics?namespace=Nope")).await;
    assert_eq!(body["metrics"].as_array().unwrap().len(), 0);
}

/// The extended statistics (issue 22) through the public interface: 1..=100 in one minute,
/// read back over HTTP and gRPC with the values worked by hand.
#[tokio::test]
async fn extended_statistics_over_http_and_grpc() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let t0 = aligned_past(60_000);
    let data = (1..=100)
        .map(|i| value_datum("Latency", &[("Host", "a")], t0 + i * 500, i as f64))
        .collect();
    client
        .put_metric_data(request("Test/Extended", data))
        .await
        .unwrap();

    let start_rfc = jiff::Timestamp::from_millisecond(t0).unwrap().to_string();
    let end_secs = (t0 + 60_000) / 1000;
    // `%` travels as `%25` in a query string.
    let url = server.http(&format!(
        "/api/v1/statistics?namespace=Test/Extended&metric_name=Latency&dimensions=Host=a&start={start_rfc}&end={end_secs}&period_seconds=60&statistics=SampleCount,TM(10%25:90%25),IQM,PR(:50),TC(80:500),wm90"
    ));
    let (status, body) = get_json(&url).await;
    assert_eq!(status, 200, "{body}");
    let points = body["datapoints"].as_array().unwrap();
    assert_eq!(points.len(), 1, "{body}");
    let p = &points[0];
    assert_eq!(p["SampleCount"], 100.0);
    // Ranks 11..=90: mean 50.5 (within 1%, like percentiles).
    assert_close(p["TM(10%:90%)"].as_f64().unwrap(), 50.5, "TM(10%:90%)");
    // Ranks 26..=75.
    assert_close(p["IQM"].as_f64().unwrap(), 50.5, "IQM");
    // 1..=50 of 100, exactly.
    assert_eq!(p["PR(:50)"], 50.0);
    // 80 < v <= 500: 81..=100, exactly.
    assert_eq!(p["TC(80:500)"], 20.0);
    // 91..=100 count as p90 = 90: (4095 + 900) / 100.
    assert_close(p["wm90"].as_f64().unwrap(), 49.95, "wm90");

    let grpc = client
        .get_metric_statistics(stats_request(
            "Test/Extended",
            "Latency",
            &[("Host", "a")],
            t0,
            t0 + 60_000,
            60,
            &["TM(10%:90%)", "IQM", "PR(:50)"],
        ))
        .await
        .unwrap()
        .into_inner();
    let g = &grpc.datapoints[0].statistics;
    for name in ["TM(10%:90%)", "IQM", "PR(:50)"] {
        assert_eq!(p[name].as_f64().unwrap(), g[name], "{name}");
    }

    // Malformed forms are refused with the accepted forms listed.
    let url = server.http(
        "/api/v1/statistics?namespace=Test/Extended&metric_name=Latency&statistics=TM(90%25:10%25)",
    );
    let (status, body) = get_json(&url).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("TM, WM, TC or TS(a:b)"), "{body}");
}

#[tokio::test]
async fn http_errors_are_json_with_the_field() {
    let server = TestServer::start().await;
    let cases = [
        ("/api/v1/statistics?metric_name=M", 400, Some("namespace")),
        (
            "/api/v1/statistics?namespace=N&metric_name=M&period_seconds=7",
            400,
            Some("period_seconds"),
        ),
        (
            "/api/v1/statistics?namespace=N&metric_name=M&statistics=Median",
            400,
            Some("statistics"),
        ),
        (
            "/api/v1/statistics?namespace=N&metric_name=M&start=yesterday",
            400,
            Some("start"),
        ),
        (
            "/api/v1/statistics?namespace=N&metric_name=M&dimensions=Host",
            400,
            Some("dimensions"),
        ),
        (
            "/api/v1/statistics?namespace=N&metric_name=M&unit=Furlongs",
            400,
            Some("unit"),
        ),
        ("/api/v1/nothing-here", 404, None),
    ];
    for (path, code, field) in cases {
        let (status, body) = get_json(&server.http(path)).await;
        assert_eq!(status, code, "{path}: {body}");
        let err = &body["error"];
        assert!(
            err["code"].is_string() && err["message"].is_string(),
            "{path}: {body}"
        );
        match field {
            Some(f) => assert_eq!(err["field"], f, "{path}: {body}"),
            None => assert!(err["field"].is_null()),
        }
    }
}

#[tokio::test]
async fn health_readiness_and_telemetry() {
    let server = TestServer::start().await;
    assert_eq!(
        reqwest::get(server.http("/healthz"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        reqwest::get(server.http("/readyz")).await.unwrap().status(),
        200
    );
    let mut client = server.client().await;
    let now = now_ms();
    let data = vec![
        value_datum("A", &[("Host", "1")], now, 1.0),
        value_datum("A", &[("Host", "2")], now, 1.0),
        thermostat_proto::v1::MetricDatum {
            values: vec![1.0, 2.0],
            counts: vec![10.0, 5.0],
            value: None,
            ..value_datum("B", &[], now, 0.0)
        },
    ];
    let accepted = client
        .put_metric_data(request("Test/Tel", data))
        .await
        .unwrap()
        .into_inner()
        .accepted_samples;
    assert_eq!(accepted, 17);
    assert_eq!(
        scrape(&server, "thermostat_ingest_samples_total").await,
        Some(17.0)
    );
    assert_eq!(
        scrape(
            &server,
            "thermostat_ingest_requests_total{outcome=\"accepted\"}"
        )
        .await,
        Some(1.0)
    );
    assert_eq!(scrape(&server, "thermostat_series_active").await, Some(3.0));
    // The push went through the log: queued, synced in a group commit, applied.
    for histogram in [
        "thermostat_wal_queue_seconds",
        "thermostat_wal_sync_seconds",
        "thermostat_wal_apply_seconds",
    ] {
        let count = scrape(&server, &format!("{histogram}_count")).await;
        assert!(count.is_some_and(|n| n >= 1.0), "{histogram}: {count:?}");
        let sum = scrape(&server, &format!("{histogram}_sum")).await;
        assert!(sum.is_some_and(|s| s >= 0.0), "{histogram}: {sum:?}");
    }
}

/// Every metric of `GET /metrics`, in order, with its HELP text, type and label values (those
/// registered at zero): the components' metrics (alarms, notifications, scaling), then the
/// ingest ones, then the OTLP ones. Values are left out and label values sorted (a family lists
/// them in hash order).
#[tokio::test]
async fn metrics_names_help_types_and_zero_labels_stay() {
    const SHAPE: &str = r#"# HELP thermostat_alarm_evaluations Alarm evaluations.
# TYPE thermostat_alarm_evaluations counter
thermostat_alarm_evaluations_total
# HELP thermostat_alarm_tick_seconds Time to evaluate every alarm due at one tick.
# TYPE thermostat_alarm_tick_seconds histogram
thermostat_alarm_tick_seconds_bucket{le="+Inf"}
thermostat_alarm_tick_seconds_bucket{le="0.0005"}
thermostat_alarm_tick_seconds_bucket{le="0.001"}
thermostat_alarm_tick_seconds_bucket{le="0.002"}
thermostat_alarm_tick_seconds_bucket{le="0.004"}
thermostat_alarm_tick_seconds_bucket{le="0.008"}
thermostat_alarm_tick_seconds_bucket{le="0.016"}
thermostat_alarm_tick_seconds_bucket{le="0.032"}
thermostat_alarm_tick_seconds_bucket{le="0.064"}
thermostat_alarm_tick_seconds_bucket{le="0.128"}
thermostat_alarm_tick_seconds_bucket{le="0.256"}
thermostat_alarm_tick_seconds_bucket{le="0.512"}
thermostat_alarm_tick_seconds_bucket{le="1.024"}
thermostat_alarm_tick_seconds_bucket{le="16.384"}
thermostat_alarm_tick_seconds_bucket{le="2.048"}
thermostat_alarm_tick_seconds_bucket{le="4.096"}
thermostat_alarm_tick_seconds_bucket{le="8.192"}
thermostat_alarm_tick_seconds_count
thermostat_alarm_tick_seconds_sum
# HELP thermostat_alarm_transitions Alarm state changes by new state.
# TYPE thermostat_alarm_transitions counter
thermostat_alarm_transitions_total{state="ALARM"}
thermostat_alarm_transitions_total{state="INSUFFICIENT_DATA"}
thermostat_alarm_transitions_total{state="OK"}
# HELP thermostat_notifications Notification delivery attempts that ended, by status (delivered, failed).
# TYPE thermostat_notifications counter
thermostat_notifications_total{status="delivered"}
thermostat_notifications_total{status="failed"}
# HELP thermostat_scaling_activities Scaling activities by status.
# TYPE thermostat_scaling_activities counter
thermostat_scaling_activities_total{status="Failed"}
thermostat_scaling_activities_total{status="Successful"}
# HELP thermostat_auth_unauthenticated Requests refused (401 / UNAUTHENTICATED): no token, a malformed header, or a token not in force.
# TYPE thermostat_auth_unauthenticated counter
thermostat_auth_unauthenticated_total{reason="malformed"}
thermostat_auth_unauthenticated_total{reason="missing"}
thermostat_auth_unauthenticated_total{reason="unknown"}
# HELP thermostat_wal_queue_seconds Time a push waited for the log writer, from being queued to the start of its group commit.
# TYPE thermostat_wal_queue_seconds histogram
thermostat_wal_queue_seconds_bucket{le="+Inf"}
thermostat_wal_queue_seconds_bucket{le="0.00005"}
thermostat_wal_queue_seconds_bucket{le="0.0001"}
thermostat_wal_queue_seconds_bucket{le="0.0002"}
thermostat_wal_queue_seconds_bucket{le="0.0004"}
thermostat_wal_queue_seconds_bucket{le="0.0008"}
thermostat_wal_queue_seconds_bucket{le="0.0016"}
thermostat_wal_queue_seconds_bucket{le="0.0032"}
thermostat_wal_queue_seconds_bucket{le="0.0064"}
thermostat_wal_queue_seconds_bucket{le="0.0128"}
thermostat_wal_queue_seconds_bucket{le="0.0256"}
thermostat_wal_queue_seconds_bucket{le="0.0512"}
thermostat_wal_queue_seconds_bucket{le="0.1024"}
thermostat_wal_queue_seconds_bucket{le="0.2048"}
thermostat_wal_queue_seconds_bucket{le="0.4096"}
thermostat_wal_queue_seconds_bucket{le="0.8192"}
thermostat_wal_queue_seconds_bucket{le="1.6384"}
thermostat_wal_queue_seconds_count
thermostat_wal_queue_seconds_sum
# HELP thermostat_wal_sync_seconds Time to write and sync one group commit (cluster mode: to store it in the ingest stream).
# TYPE thermostat_wal_sync_seconds histogram
thermostat_wal_sync_seconds_bucket{le="+Inf"}
thermostat_wal_sync_seconds_bucket{le="0.00005"}
thermostat_wal_sync_seconds_bucket{le="0.0001"}
thermostat_wal_sync_seconds_bucket{le="0.0002"}
thermostat_wal_sync_seconds_bucket{le="0.0004"}
thermostat_wal_sync_seconds_bucket{le="0.0008"}
thermostat_wal_sync_seconds_bucket{le="0.0016"}
thermostat_wal_sync_seconds_bucket{le="0.0032"}
thermostat_wal_sync_seconds_bucket{le="0.0064"}
thermostat_wal_sync_seconds_bucket{le="0.0128"}
thermostat_wal_sync_seconds_bucket{le="0.0256"}
thermostat_wal_sync_seconds_bucket{le="0.0512"}
thermostat_wal_sync_seconds_bucket{le="0.1024"}
thermostat_wal_sync_seconds_bucket{le="0.2048"}
thermostat_wal_sync_seconds_bucket{le="0.4096"}
thermostat_wal_sync_seconds_bucket{le="0.8192"}
thermostat_wal_sync_seconds_bucket{le="1.6384"}
thermostat_wal_sync_seconds_count
thermostat_wal_sync_seconds_sum
# HELP thermostat_wal_apply_seconds Time from a group commit being durable to its last push applied and acknowledged.
# TYPE thermostat_wal_apply_seconds histogram
thermostat_wal_apply_seconds_bucket{le="+Inf"}
thermostat_wal_apply_seconds_bucket{le="0.00005"}
thermostat_wal_apply_seconds_bucket{le="0.0001"}
thermostat_wal_apply_seconds_bucket{le="0.0002"}
thermostat_wal_apply_seconds_bucket{le="0.0004"}
thermostat_wal_apply_seconds_bucket{le="0.0008"}
thermostat_wal_apply_seconds_bucket{le="0.0016"}
thermostat_wal_apply_seconds_bucket{le="0.0032"}
thermostat_wal_apply_seconds_bucket{le="0.0064"}
thermostat_wal_apply_seconds_bucket{le="0.0128"}
thermostat_wal_apply_seconds_bucket{le="0.0256"}
thermostat_wal_apply_seconds_bucket{le="0.0512"}
thermostat_wal_apply_seconds_bucket{le="0.1024"}
thermostat_wal_apply_seconds_bucket{le="0.2048"}
thermostat_wal_apply_seconds_bucket{le="0.4096"}
thermostat_wal_apply_seconds_bucket{le="0.8192"}
thermostat_wal_apply_seconds_bucket{le="1.6384"}
thermostat_wal_apply_seconds_count
thermostat_wal_apply_seconds_sum
# HELP thermostat_ingest_samples Observations accepted: 1 per value, the sum of counts per values list, the sample count per statistic set.
# TYPE thermostat_ingest_samples counter
thermostat_ingest_samples_total
# HELP thermostat_ingest_requests Ingest requests by outcome.
# TYPE thermostat_ingest_requests counter
thermostat_ingest_requests_total{outcome="accepted"}
thermostat_ingest_requests_total{outcome="invalid"}
thermostat_ingest_requests_total{outcome="overloaded"}
thermostat_ingest_requests_total{outcome="unavailable"}
# HELP thermostat_ingest_rejected Rejected ingest requests by reason.
# TYPE thermostat_ingest_rejected counter
thermostat_ingest_rejected_total{reason="invalid_datum"}
thermostat_ingest_rejected_total{reason="overloaded"}
thermostat_ingest_rejected_total{reason="persist_failed"}
thermostat_ingest_rejected_total{reason="series_limit"}
thermostat_ingest_rejected_total{reason="shutting_down"}
thermostat_ingest_rejected_total{reason="too_large"}
# HELP thermostat_series_active Series held in memory.
# TYPE thermostat_series_active gauge
thermostat_series_active
# HELP thermostat_ingest_series_refused New series refused because a series limit was reached.
# TYPE thermostat_ingest_series_refused counter
thermostat_ingest_series_refused_total
# HELP thermostat_otlp_requests OTLP export requests (gRPC and HTTP) by outcome: accepted (every point kept), partial (some points rejected), refused (the request refused whole).
# TYPE thermostat_otlp_requests counter
thermostat_otlp_requests_total{outcome="accepted"}
thermostat_otlp_requests_total{outcome="partial"}
thermostat_otlp_requests_total{outcome="refused"}
# HELP thermostat_otlp_points OTLP data points by result: accepted (stored once durable).
# TYPE thermostat_otlp_points counter
thermostat_otlp_points_total{result="accepted"}
# HELP thermostat_otlp_points_rejected OTLP data points rejected in a partial success, by reason.
# TYPE thermostat_otlp_points_rejected counter
thermostat_otlp_points_rejected_total{reason="identity"}
thermostat_otlp_points_rejected_total{reason="malformed"}
thermostat_otlp_points_rejected_total{reason="stream_limit"}
thermostat_otlp_points_rejected_total{reason="timestamp"}
thermostat_otlp_points_rejected_total{reason="value"}
# HELP thermostat_remote_write_requests Prometheus remote-write requests by protocol version and outcome: accepted (stored and answered 2xx), refused (nothing of it stored).
# TYPE thermostat_remote_write_requests counter
thermostat_remote_write_requests_total{version="v1",outcome="accepted"}
thermostat_remote_write_requests_total{version="v1",outcome="refused"}
thermostat_remote_write_requests_total{version="v2",outcome="accepted"}
thermostat_remote_write_requests_total{version="v2",outcome="refused"}
# HELP thermostat_remote_write_written Prometheus remote-write samples and native histograms stored, by kind.
# TYPE thermostat_remote_write_written counter
thermostat_remote_write_written_total{kind="histogram"}
thermostat_remote_write_written_total{kind="sample"}
# EOF
"#;
    let server = TestServer::start().await;
    let text = reqwest::get(server.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut shape = String::new();
    let mut samples: Vec<&str> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            samples.sort_unstable();
            for s in samples.drain(..) {
                shape.push_str(s);
                shape.push('\n');
            }
            shape.push_str(line);
            shape.push('\n');
        } else {
            samples.push(line.rsplit_once(' ').map_or(line, |(series, _)| series));
        }
    }
    assert_eq!(shape, SHAPE, "{text}");
}

/// `dashboards/grafana/thermostat.json`: every panel is described, and every metric a panel
/// queries is one a running server really exports on `/metrics`.
#[tokio::test]
async fn grafana_dashboard_queries_only_exported_metrics() {
    let server = TestServer::start().await;
    let exported = reqwest::get(server.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let names: std::collections::BTreeSet<&str> = exported
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .collect();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dashboards/grafana/thermostat.json"
    ))
    .unwrap();
    let dash: Value = serde_json::from_str(&text).unwrap();
    let panels = dash["panels"].as_array().unwrap();
    assert!(panels.len() >= 6);
    let mut used = 0;
    for p in panels {
        assert!(
            !p["description"].as_str().unwrap_or_default().is_empty(),
            "panel {} has no description",
            p["title"]
        );
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            let metrics: Vec<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("thermostat_"))
                .collect();
            assert!(!metrics.is_empty(), "{expr}");
            for m in metrics {
                assert!(
                    names.contains(m),
                    "panel {}: {m} is not exported; exported: {names:?}",
                    p["title"]
                );
                used += 1;
            }
        }
    }
    assert!(used >= 10);
}
