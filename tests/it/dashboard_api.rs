//! The web dashboard's data endpoints and assets through a real server: alarms (a metric
//! alarm with a recovery threshold, a per-series percentile alarm, a manual switch and a
//! composite), a simulated scaling group, a webhook, and data pushed over gRPC — recorded
//! history plus a live agent, as the dashboard sees them in production.
//!
//! [`Scenario`] is shared with the browser test (`browser.rs`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use thermostat_proto::v1::MetricDatum;

use crate::util::*;

pub(crate) const NAMESPACE: &str = "Test/Dash";
pub(crate) const CPU_ALARM: &str = "web-cpu-high";
pub(crate) const LATENCY_ALARM: &str = "api-latency-p99";
pub(crate) const SWITCH_ALARM: &str = "maintenance-switch";
pub(crate) const COMPOSITE: &str = "web-degraded";
pub(crate) const GROUP: &str = "web";

const CONFIG: &str = r#"alarms:
  - name: web-cpu-high
    description: Average CPU of the web group above 70 %
    namespace: Test/Dash
    metric_name: CPUUtilization
    dimensions: {AutoScalingGroupName: web}
    statistic: Average
    unit: Percent
    period_seconds: 10
    evaluation_periods: 1
    threshold: 70
    ok_threshold: 60
    comparison_operator: GreaterThanThreshold
    alarm_actions: ["policy:web/scale-out", "HOOK"]
    ok_actions: ["HOOK"]
  - name: api-latency-p99
    description: p99 latency per host above 250 ms
    namespace: Test/Dash
    metric_name: Latency
    dimensions: {Host: "*"}
    statistic: p99
    period_seconds: 10
    evaluation_periods: 1
    threshold: 250
    comparison_operator: GreaterThanThreshold
  - name: maintenance-switch
    description: Set by operators with SetAlarmState; no data decides it
    namespace: Test/Dash
    metric_name: Maintenance
    statistic: Maximum
    period_seconds: 60
    evaluation_periods: 1
    threshold: 0
    comparison_operator: GreaterThanThreshold
    treat_missing_data: ignore
composite_alarms:
  - name: web-degraded
    description: Web CPU and API latency both alarming
    alarm_rule: ALARM(web-cpu-high) AND ALARM(api-latency-p99)
scaling_groups:
  - name: web
    backend: simulated
    min_size: 2
    max_size: 10
    desired_capacity: 2
    simulated: {launch_seconds: 1}
    policies:
      - name: scale-out
        policy_type: SimpleScaling
        adjustment_type: ChangeInCapacity
        scaling_adjustment: 2
        cooldown_seconds: 300
"#;

/// Seconds of recorded history pushed before the live agent starts.
pub(crate) const HISTORY_SECONDS: i64 = 14 * 60;

/// Recorded CPU at second `i` of the history: a calm curve with a spike above the threshold.
pub(crate) fn cpu(i: i64) -> f64 {
    if (300..480).contains(&i) {
        84.0 + (i % 7) as f64
    } else {
        40.0 + 12.0 * (i as f64 / 45.0).sin()
    }
}

/// Recorded latencies of a host at second `i`: 20 observations; host b is three times slower
/// during the CPU spike (p99 above the threshold of 250), otherwise 1.2 times.
pub(crate) fn latencies(host: &str, i: i64) -> Vec<f64> {
    let scale = match host {
        "b" if (300..480).contains(&i) => 3.0,
        "b" => 1.2,
        _ => 1.0,
    };
    (0..20)
        .map(|k| scale * (40.0 + ((i * 7 + k * 13) % 90) as f64))
        .collect()
}

/// Recorded desired capacity at second `i` (every 10 s), and in-service one minute behind.
pub(crate) fn desired(i: i64) -> f64 {
    match i {
        ..330 => 2.0,
        330..420 => 4.0,
        420..700 => 6.0,
        _ => 4.0,
    }
}

fn in_service(i: i64) -> f64 {
    desired((i - 60).max(0)).min(desired(i))
}

fn datum(name: &str, dims: &[(&str, &str)], ts: i64, unit: &str) -> MetricDatum {
    MetricDatum {
        metric_name: name.into(),
        dimensions: crate::util::dims(dims),
        timestamp_ms: ts,
        unit: unit.into(),
        storage_resolution: 1,
        ..Default::default()
    }
}

fn cpu_datum(ts: i64, v: f64) -> MetricDatum {
    MetricDatum {
        value: Some(v),
        ..datum(
            "CPUUtilization",
            &[("AutoScalingGroupName", GROUP)],
            ts,
            "Percent",
        )
    }
}

fn latency_datum(host: &str, ts: i64, values: Vec<f64>) -> MetricDatum {
    MetricDatum {
        values,
        ..datum("Latency", &[("Host", host)], ts, "Milliseconds")
    }
}

/// A server with [`CONFIG`], recorded history, and an agent pushing live data every second.
pub(crate) struct Scenario {
    pub(crate) server: TestServer,
    /// Start of the recorded history (aligned to the minute).
    pub(crate) base: i64,
    _hook_deliveries: tokio::sync::mpsc::UnboundedReceiver<Value>,
    agent: tokio::task::JoinHandle<()>,
    _config: tempfile::TempDir,
}

impl Drop for Scenario {
    fn drop(&mut self) {
        self.agent.abort();
    }
}

use crate::util::receiver;

impl Scenario {
    /// Starts the server, pushes the history, starts the agent, and waits until the CPU alarm
    /// and host b's latency instance are in ALARM, the group has scaled out and the
    /// notification was delivered.
    pub(crate) async fn start() -> Scenario {
        let (hook, hook_deliveries) = receiver().await;
        let config = tempfile::tempdir().unwrap();
        std::fs::write(
            config.path().join("dash.yaml"),
            CONFIG.replace("HOOK", &hook),
        )
        .unwrap();
        let path = config.path().to_owned();
        let server = TestServer::start_with(move |s| s.config = vec![path]).await;

        let now = now_ms();
        let base = now - now.rem_euclid(60_000) - HISTORY_SECONDS * 1000 - 60_000;
        let mut client = server.client().await;
        let mut data = Vec::new();
        for i in 0..HISTORY_SECONDS {
            let ts = base + i * 1000;
            data.push(cpu_datum(ts, cpu(i)));
            for host in ["a", "b"] {
                data.push(latency_datum(host, ts, latencies(host, i)));
            }
        }
        let dims = [("AutoScalingGroupName", GROUP)];
        let mut capacity = Vec::new();
        for i in (0..HISTORY_SECONDS).step_by(10) {
            let ts = base + i * 1000;
            for (name, v) in [
                ("GroupDesiredCapacity", desired(i)),
                ("GroupInServiceInstances", in_service(i)),
                ("GroupMinSize", 2.0),
                ("GroupMaxSize", 10.0),
            ] {
                capacity.push(MetricDatum {
                    value: Some(v),
                    ..datum(name, &dims, ts, "")
                });
            }
        }
        client
            .put_metric_data(request("AWS/AutoScaling", capacity))
            .await
            .unwrap();
        for chunk in data.chunks(500) {
            client
                .put_metric_data(request(NAMESPACE, chunk.to_vec()))
                .await
                .unwrap();
        }

        // The live agent: hot CPU, host b slow, every second.
        let agent = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let ts = now_ms();
                let data = vec![
                    cpu_datum(ts, 92.0),
                    latency_datum("a", ts, vec![60.0, 80.0, 120.0]),
                    latency_datum("b", ts, vec![300.0, 420.0, 510.0]),
                ];
                if client
                    .put_metric_data(request(NAMESPACE, data))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });

        let scenario = Scenario {
            server,
            base,
            _hook_deliveries: hook_deliveries,
            agent,
            _config: config,
        };
        scenario
            .eventually("the CPU alarm and host b's instance in ALARM", async |s| {
                let o = s.get("/api/v1/dashboard/overview").await;
                let states: BTreeMap<String, String> = o["alarms"]
                    .as_array()?
                    .iter()
                    .map(|a| {
                        (
                            a["name"].as_str().unwrap().to_owned(),
                            a["state"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect();
                let b = format!("{LATENCY_ALARM}[Host=b]");
                (states.get(CPU_ALARM)? == "ALARM" && states.get(&b)? == "ALARM").then_some(())
            })
            .await;
        scenario
            .eventually("a scale-out and a delivered notification", async |s| {
                let o = s.get("/api/v1/dashboard/overview").await;
                let acts = o["groups"][0]["last_activities"].as_array()?;
                let delivered = o["notifications"]
                    .as_array()?
                    .iter()
                    .any(|n| n["status"] == "delivered");
                (!acts.is_empty() && delivered).then_some(())
            })
            .await;
        scenario
    }

    pub(crate) fn url(&self, path: &str) -> String {
        self.server.http(path)
    }

    pub(crate) async fn get(&self, path: &str) -> Value {
        let (status, body) = self.get_status(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub(crate) async fn get_status(&self, path: &str) -> (u16, Value) {
        let resp = reqwest::get(self.url(path)).await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    /// Polls `f` until it returns `Some` (at most 60 s: alarms tick every 10 s).
    pub(crate) async fn eventually<T>(
        &self,
        what: &str,
        mut f: impl AsyncFnMut(&Scenario) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(v) = f(self).await {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// An alarm's state as the composite's page shows it.
async fn c_state(s: &Scenario, name: &str) -> String {
    let c = s
        .get(&format!("/api/v1/dashboard/alarms/{COMPOSITE}"))
        .await;
    let child = c["rule"]["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap()
        .clone();
    child["state"].as_str().unwrap().to_owned()
}

fn ms(v: &Value) -> i64 {
    v.as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond()
}

/// `{timestamp ms: item}` of datapoints inside the recorded history.
fn recorded(points: &Value, base: i64) -> BTreeMap<i64, Value> {
    points
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (ms(&p["timestamp"]), p.clone()))
        .filter(|(t, _)| (base..base + HISTORY_SECONDS * 1000).contains(t))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_has_its_data() {
    let s = Scenario::start().await;
    let base = s.base;

    // Overview: every alarm with state, reason and time; the group; the notification.
    let o = s.get("/api/v1/dashboard/overview").await;
    let names: Vec<&str> = o["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    for want in [
        CPU_ALARM,
        "api-latency-p99[Host=a]",
        "api-latency-p99[Host=b]",
        SWITCH_ALARM,
        COMPOSITE,
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let cpu_alarm = o["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == CPU_ALARM)
        .unwrap();
    assert!(
        cpu_alarm["reason"]
            .as_str()
            .unwrap()
            .starts_with("Threshold Crossed"),
        "{cpu_alarm}"
    );
    assert!(ms(&cpu_alarm["state_updated"]) <= ms(&o["now"]));
    let group = &o["groups"][0];
    assert_eq!(group["name"], GROUP);
    assert!(group["desired_capacity"].as_u64().unwrap() >= 4, "{group}");
    for key in ["min_size", "max_size", "in_service_capacity"] {
        assert!(group[key].is_u64(), "{key}: {group}");
    }
    let note = o["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["status"] == "delivered")
        .unwrap();
    assert_eq!(note["alarm_name"], CPU_ALARM);
    assert_eq!(note["new_state"], "ALARM");
    let (_, limited) = s
        .get_status("/api/v1/dashboard/overview?notifications=1")
        .await;
    assert!(limited["notifications"].as_array().unwrap().len() <= 1);

    // Alarm page: Average per 10-second period of what was pushed, breaching above 70.
    let a = s
        .get(&format!(
            "/api/v1/dashboard/alarms/{CPU_ALARM}?range_seconds=3600"
        ))
        .await;
    assert_eq!(a["kind"], "metric");
    assert_eq!(a["alarm"]["state"], "ALARM");
    assert_eq!(a["period_seconds"], 10);
    assert_eq!(a["threshold"], 70.0);
    assert_eq!(a["ok_threshold"], 60.0);
    assert_eq!(a["metric"]["statistic"], "Average");
    assert_eq!(a["metric"]["unit"], "Percent");
    let points = recorded(&a["datapoints"], base);
    assert_eq!(points.len() as i64, HISTORY_SECONDS / 10, "{a}");
    let mut breaching = 0;
    for (k, (t, p)) in points.iter().enumerate() {
        let k = k as i64;
        assert_eq!(*t, base + k * 10_000);
        let want = (k * 10..k * 10 + 10).map(cpu).sum::<f64>() / 10.0;
        let got = p["value"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-9, "period {k}: {got} != {want}");
        assert_eq!(p["breaching"], want > 70.0, "period {k}");
        breaching += usize::from(want > 70.0);
    }
    assert_eq!(breaching, 18, "the recorded spike is 18 periods long");
    // The live periods are breaching too (the agent pushes 92).
    let last = a["datapoints"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["breaching"], true, "{last}");
    // The timeline ends in ALARM, at the chart's end, and began when the alarm was created.
    let timeline = a["timeline"].as_array().unwrap();
    let end = timeline.last().unwrap();
    assert_eq!(end["state"], "ALARM");
    assert_eq!(end["end"], a["end"]);
    assert_eq!(timeline[0]["state"], "INSUFFICIENT_DATA");
    assert!(ms(&timeline[0]["start"]) > ms(&a["start"]), "{timeline:?}");
    for pair in timeline.windows(2) {
        assert_eq!(pair[0]["end"], pair[1]["start"]);
        assert_ne!(pair[0]["state"], pair[1]["state"]);
    }
    let history = a["history"].as_array().unwrap();
    let to_alarm = history
        .iter()
        .find(|i| i["item_type"] == "StateUpdate" && i["data"]["newState"]["stateValue"] == "ALARM")
        .unwrap();
    assert_eq!(ms(&to_alarm["timestamp"]), ms(&end["start"]));
    // The webhook delivery is recorded as an Action item.
    s.eventually("an Action history item", async |s| {
        let h = s
            .get(&format!("/api/v1/dashboard/alarms/{CPU_ALARM}"))
            .await;
        h["history"]
            .as_array()?
            .iter()
            .any(|i| i["item_type"] == "Action")
            .then_some(())
    })
    .await;

    // A longer range is drawn at whole minutes, still with the alarm's threshold.
    let day = s
        .get(&format!(
            "/api/v1/dashboard/alarms/{CPU_ALARM}?range_seconds=86400"
        ))
        .await;
    assert_eq!(day["period_seconds"], 120);
    assert!(!day["datapoints"].as_array().unwrap().is_empty());

    // A per-series instance: host b's p99 per period, within the store's 1%.
    let b = s
        .get("/api/v1/dashboard/alarms/api-latency-p99%5BHost%3Db%5D?range_seconds=3600")
        .await;
    assert_eq!(b["metric"]["dimensions"]["Host"], "b");
    assert_eq!(b["alarm"]["state"], "ALARM");
    let points = recorded(&b["datapoints"], base);
    assert_eq!(points.len() as i64, HISTORY_SECONDS / 10);
    let mut breaching_b = 0;
    for (k, p) in points.values().enumerate() {
        let k = k as i64;
        let values: Vec<f64> = (k * 10..k * 10 + 10)
            .flat_map(|i| latencies("b", i))
            .collect();
        let want = exact_percentile(&values, 99.0);
        assert_close(p["value"].as_f64().unwrap(), want, "host b p99");
        assert_eq!(p["breaching"], want > 250.0, "period {k}");
        breaching_b += usize::from(want > 250.0);
    }
    assert_eq!(breaching_b, 18, "host b is slow during the spike");
    // The per-series alarm itself (listed by the engine only while it has no instances) is
    // in ALARM as composites see it, and lists its instances.
    let base_alarm = s
        .get(&format!("/api/v1/dashboard/alarms/{LATENCY_ALARM}"))
        .await;
    assert_eq!(base_alarm["alarm"]["state"], "ALARM");
    assert_eq!(c_state(&s, LATENCY_ALARM).await, "ALARM");
    let instances: Vec<&str> = base_alarm["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        instances,
        ["api-latency-p99[Host=a]", "api-latency-p99[Host=b]"]
    );

    // A composite: its rule and the states it reads, no metric.
    let c = s
        .get(&format!("/api/v1/dashboard/alarms/{COMPOSITE}"))
        .await;
    assert_eq!(c["kind"], "composite");
    assert_eq!(c["metric"], Value::Null);
    assert_eq!(
        c["rule"]["text"],
        "ALARM(web-cpu-high) AND ALARM(api-latency-p99)"
    );
    assert_eq!(c["rule"]["alarms"][0]["name"], CPU_ALARM);
    assert_eq!(c["rule"]["alarms"][0]["state"], "ALARM");
    assert!(!c["timeline"].as_array().unwrap().is_empty());

    // Group page: the recorded capacity series and the activity with its cause.
    let g = s
        .get(&format!(
            "/api/v1/dashboard/groups/{GROUP}?range_seconds=3600"
        ))
        .await;
    assert_eq!(g["group"]["name"], GROUP);
    assert_eq!(g["period_seconds"], 10);
    let desired_points = recorded(&g["capacity"]["GroupDesiredCapacity"], base);
    assert_eq!(desired_points.len() as i64, HISTORY_SECONDS / 10);
    for (t, p) in &desired_points {
        let i = (t - base) / 1000;
        assert_eq!(p["value"].as_f64().unwrap(), desired(i), "second {i}");
    }
    let in_service_points = recorded(&g["capacity"]["GroupInServiceInstances"], base);
    assert_eq!(in_service_points.len(), desired_points.len());
    for metric in ["GroupMinSize", "GroupMaxSize"] {
        assert!(
            !recorded(&g["capacity"][metric], base).is_empty(),
            "{metric}"
        );
    }
    let act = &g["activities"][0];
    assert_eq!(act["alarm"], CPU_ALARM);
    assert!(
        act["cause"]
            .as_str()
            .unwrap()
            .contains("a monitor alarm web-cpu-high in state ALARM triggered policy scale-out"),
        "{act}"
    );
    assert!(ms(&act["time"]) >= base, "{act}");
    assert!(ms(&act["time"]) <= ms(&g["end"]), "{act}");

    // Explorer: the series list and a multi-statistic query as the page sends it.
    let m = s
        .get(&format!("/api/v1/metrics?namespace={NAMESPACE}"))
        .await;
    let listed: Vec<(String, Value)> = m["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["metric_name"].as_str().unwrap().to_owned(),
                x["dimensions"].clone(),
            )
        })
        .collect();
    assert!(listed.contains(&("Latency".into(), serde_json::json!({"Host": "a"}))));
    assert!(listed.contains(&(
        "CPUUtilization".into(),
        serde_json::json!({"AutoScalingGroupName": "web"})
    )));
    let start = jiff::Timestamp::from_millisecond(base).unwrap();
    let end = jiff::Timestamp::from_millisecond(base + 600_000).unwrap();
    let stats = s
        .get(&format!(
            "/api/v1/statistics?namespace={NAMESPACE}&metric_name=Latency&dimensions=Host=a&statistics=Average,p50,p99,SampleCount&period_seconds=60&start={start}&end={end}"
        ))
        .await;
    let dp = stats["datapoints"].as_array().unwrap();
    assert_eq!(dp.len(), 10);
    for (k, p) in dp.iter().enumerate() {
        let k = k as i64;
        let values: Vec<f64> = (k * 60..k * 60 + 60)
            .flat_map(|i| latencies("a", i))
            .collect();
        assert_eq!(p["SampleCount"], 1200.0);
        assert_close(
            p["p50"].as_f64().unwrap(),
            exact_percentile(&values, 50.0),
            "p50",
        );
        assert_close(
            p["p99"].as_f64().unwrap(),
            exact_percentile(&values, 99.0),
            "p99",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_errors_are_json() {
    let server = TestServer::start().await;
    let cases: [(&str, u16, Option<&str>); 4] = [
        ("/api/v1/dashboard/alarms/nope", 404, None),
        ("/api/v1/dashboard/groups/nope", 404, None),
        ("/api/v1/dashboard/groups/nope?range_seconds=10", 404, None),
        ("/assets/nope.js", 404, None),
    ];
    for (path, code, field) in cases {
        let resp = reqwest::get(server.http(path)).await.unwrap();
        assert_eq!(resp.status().as_u16(), code, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert!(body["error"]["message"].is_string(), "{path}: {body}");
        assert_eq!(
            body["error"]["field"],
            field.map_or(Value::Null, Value::from)
        );
    }
    // No alarms or groups configured: the overview has empty lists, not errors.
    let o: Value = reqwest::get(server.http("/api/v1/dashboard/overview"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(o["alarms"], serde_json::json!([]));
    assert_eq!(o["groups"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_range_names_the_field() {
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg.path().join("a.yaml"),
        CONFIG.replace("HOOK", "https://hooks.example.com/x"),
    )
    .unwrap();
    let path = cfg.path().to_owned();
    let server = TestServer::start_with(move |s| s.config = vec![path]).await;
    for path in [
        format!("/api/v1/dashboard/alarms/{CPU_ALARM}?range_seconds=5"),
        format!("/api/v1/dashboard/groups/{GROUP}?range_seconds=99999999"),
        format!("/api/v1/dashboard/alarms/{CPU_ALARM}?end=tomorrow"),
    ] {
        let resp = reqwest::get(server.http(&path)).await.unwrap();
        assert_eq!(resp.status(), 400, "{path}");
        let body: Value = resp.json().await.unwrap();
        let field = body["error"]["field"].as_str().unwrap();
        assert!(["range_seconds", "end"].contains(&field), "{path}: {body}");
    }
    // Before any data, the pages' views answer with empty series.
    let g: Value = reqwest::get(server.http(&format!("/api/v1/dashboard/groups/{GROUP}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(g["capacity"]["GroupDesiredCapacity"], serde_json::json!([]));
    let a: Value = reqwest::get(server.http(&format!("/api/v1/dashboard/alarms/{CPU_ALARM}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(a["datapoints"], serde_json::json!([]));
    assert_eq!(a["timeline"][0]["state"], "INSUFFICIENT_DATA");
}

#[tokio::test]
async fn pages_and_assets_are_served_with_their_types() {
    let server = TestServer::start().await;
    let cases = [
        ("/", "text/html; charset=utf-8"),
        ("/alarms/web-cpu-high", "text/html; charset=utf-8"),
        ("/groups/web", "text/html; charset=utf-8"),
        ("/explore", "text/html; charset=utf-8"),
        ("/assets/app.js", "text/javascript; charset=utf-8"),
        ("/assets/alarm.js", "text/javascript; charset=utf-8"),
        ("/assets/style.css", "text/css; charset=utf-8"),
        (
            "/assets/vendor/uPlot.iife.min.js",
            "text/javascript; charset=utf-8",
        ),
        ("/assets/vendor/uPlot.min.css", "text/css; charset=utf-8"),
        ("/assets/favicon.svg", "image/svg+xml"),
    ];
    let client = reqwest::Client::new();
    let html = reqwest::get(server.http("/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (path, content_type) in cases {
        let resp = client.get(server.http(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let headers = resp.headers().clone();
        assert_eq!(headers["content-type"], content_type, "{path}");
        assert!(headers.contains_key("cache-control"), "{path}");
        let etag = headers["etag"].to_str().unwrap().to_owned();
        let body = resp.bytes().await.unwrap();
        assert!(!body.is_empty(), "{path}");
        if path.starts_with("/assets/") {
            let again = client
                .get(server.http(path))
                .header("if-none-match", &etag)
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), 304, "{path}");
            // The shell refers to it with the asset version: cacheable for a year.
            let versioned = html
                .split('"')
                .find(|s| s.starts_with(path) && s.contains("?v="));
            if let Some(url) = versioned {
                let r = client.get(server.http(url)).send().await.unwrap();
                assert!(
                    r.headers()["cache-control"]
                        .to_str()
                        .unwrap()
                        .contains("immutable"),
                    "{url}"
                );
            }
        }
    }
    assert!(html.contains("/assets/vendor/uPlot.iife.min.js?v="));
    assert!(html.contains("/assets/app.js?v="));
}
