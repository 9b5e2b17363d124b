//! The band of an anomaly-detection alarm over HTTP (`GET /api/v1/alarms/{name}/band`, issue
//! 22): a server whose alarm's model trains on three days of a daily cycle pushed with past
//! timestamps (ingest accepts data up to 14 days old), with the last minutes far above it.
//! [`AnomalyScenario`] is also the browser test's third server (`tests/it/browser.rs`).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{TestServer, now_ms, request, value_datum};

/// The scenario's alarm and namespace.
pub(crate) const ANOMALY_ALARM: &str = "latency-anomaly";
const ANOMALY_NAMESPACE: &str = "Test/Anomaly";
/// Minutes of history pushed: three days.
const HISTORY_MINUTES: i64 = 3 * 1440;
/// The newest minutes, 300 above the usual value.
pub(crate) const SPIKE_MINUTES: i64 = 5;

const ANOMALY_CONFIG: &str = r#"alarms:
  - name: latency-anomaly
    description: Latency outside its usual daily cycle
    metrics:
      - id: m1
        metric_stat: {namespace: Test/Anomaly, metric_name: Latency, statistic: Average, period_seconds: 60}
        return_data: true
      - id: band
        expression: ANOMALY_DETECTION_BAND(m1, 3)
        return_data: true
    threshold_metric_id: band
    comparison_operator: LessThanLowerOrGreaterThanUpperThreshold
    evaluation_periods: 1
"#;

/// The usual latency at `t` (ms): `100 + 50·sin(2π·t/day)` plus a little fixed noise.
fn usual(t: i64) -> f64 {
    const DAY: i64 = 86_400_000;
    let phase = t.rem_euclid(DAY) as f64 / DAY as f64 * std::f64::consts::TAU;
    100.0 + 50.0 * phase.sin() + (t / 60_000).rem_euclid(5) as f64
}

/// A server with [`ANOMALY_ALARM`], three days of its metric and a trained model.
pub(crate) struct AnomalyScenario {
    pub(crate) server: TestServer,
    _config: tempfile::TempDir,
}

impl AnomalyScenario {
    pub(crate) async fn start() -> AnomalyScenario {
        let config = tempfile::tempdir().unwrap();
        std::fs::write(config.path().join("anomaly.yaml"), ANOMALY_CONFIG).unwrap();
        let path = config.path().to_owned();
        let server = TestServer::start_with(move |s| s.config = vec![path]).await;
        let now = now_ms();
        let end = now - now.rem_euclid(60_000);
        let data: Vec<_> = (0..HISTORY_MINUTES)
            .map(|i| {
                let t = end - 60_000 * i;
                let spike = if i < SPIKE_MINUTES { 300.0 } else { 0.0 };
                value_datum("Latency", &[], t, usual(t) + spike)
            })
            .collect();
        let mut c = server.client().await;
        for chunk in data.chunks(1000) {
            c.put_metric_data(request(ANOMALY_NAMESPACE, chunk.to_vec()))
                .await
                .unwrap();
        }
        let scenario = AnomalyScenario {
            server,
            _config: config,
        };
        // The runtime trains the model at its next tick.
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let band = scenario.band("").await;
            if band["model"]["state"] == "TRAINED" {
                break;
            }
            assert!(Instant::now() < deadline, "no trained model: {band}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        scenario
    }

    /// `GET /api/v1/alarms/latency-anomaly/band{query}`.
    pub(crate) async fn band(&self, query: &str) -> Value {
        reqwest::get(
            self.server
                .http(&format!("/api/v1/alarms/{ANOMALY_ALARM}/band{query}")),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anomaly_alarms_band_endpoint_gives_its_series_band_and_the_points_outside() {
    let scenario = AnomalyScenario::start().await;
    let now = now_ms() / 1000;
    let band = scenario
        .band(&format!("?from={}&to={}", now - 3600, now + 60))
        .await;
    assert_eq!(band["metric_id"], "m1", "{band}");
    assert_eq!(band["band_id"], "band", "{band}");
    assert_eq!(band["k"], 3.0, "{band}");
    assert_eq!(band["period_seconds"], 60, "{band}");
    assert_eq!(band["model"]["seasonality"], "daily", "{band}");
    let points = band["points"].as_array().unwrap();
    assert!((61..=62).contains(&points.len()), "{band}");
    let with_value: Vec<&Value> = points.iter().filter(|p| p["value"].is_number()).collect();
    assert!(with_value.len() >= 55, "{band}");
    for p in &with_value {
        let (v, lo, hi) = (
            p["value"].as_f64().unwrap(),
            p["lower"].as_f64().unwrap(),
            p["upper"].as_f64().unwrap(),
        );
        assert!(lo < hi, "{p}");
        assert_eq!(p["outside"], !(lo <= v && v <= hi), "{p}");
    }
    let outside = with_value.iter().filter(|p| p["outside"] == true).count();
    assert_eq!(outside as i64, SPIKE_MINUTES, "{band}");

    // A range ending now holds the current period (its datapoint is the newest spike), as
    // the alarm page asks for it.
    let until_now = scenario
        .band(&format!("?from={}&to={}", now - 3600, now_ms() / 1000))
        .await;
    let outside_now = until_now["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["outside"] == true)
        .count();
    assert_eq!(outside_now as i64, SPIKE_MINUTES, "{until_now}");

    // Not an anomaly alarm, a range too long, an unknown alarm.
    let long = scenario.band("?from=0&to=86460").await;
    assert!(long.to_string().contains("more than 1440"), "{long}");
    // Hostile times: a clear error naming the field, and the server goes on answering.
    for (query, field) in [
        ("?to=nope", "to"),
        ("?from=1e300", "from"),
        ("?from=NaN", "from"),
        (&format!("?from={now}&to={}", now - 3600)[..], "to"),
    ] {
        let r = reqwest::get(
            scenario
                .server
                .http(&format!("/api/v1/alarms/{ANOMALY_ALARM}/band{query}")),
        )
        .await
        .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{query}");
        let body: Value = r.json().await.unwrap();
        assert!(body.to_string().contains(field), "{query}: {body}");
    }
    assert_eq!(scenario.band("").await["model"]["state"], "TRAINED");
    let r = reqwest::get(scenario.server.http("/api/v1/alarms/nope/band"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}
