use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use thermostat_metrics::store::{Observation, Resolution, Sample};
use thermostat_metrics::{Dimension, ManualClock, SeriesKey, Store, Telemetry, Timestamp, Unit};
use tower::ServiceExt as _;

use super::*;
use crate::alarms::{AlarmApi, AlarmApiError, AlarmView, ReloadReport};
use crate::{ApiState, router};

// === display_period and ChartRange ===

#[test]
fn display_period_keeps_the_alarm_period_when_it_fits() {
    // (alarm period, range, oldest age) -> period
    let cases = [
        (10, 900, 900, 10),
        (10, 3600, 3600, 10),
        (60, 3600, 3600, 60),
        (60, 86_400, 86_400, 120),
        (10, 86_400, 86_400, 120),
        // 3 hours of 10-second data reach into the rolled-up minutes: whole minutes.
        (10, 10_800, 10_800, 60),
        // The same length of range ending now is drawn at the alarm's 10 seconds when recent.
        (10, 7200, 7200, 10),
        (30, 7200, 7200, 30),
        // A 2-hour range that ended 2 hours ago reaches back 4 hours.
        (10, 7200, 14_400, 60),
        (20, 900, 900, 20),
        (1, 60, 60, 1),
        (1, 3600, 3600, 5),
        // Not a multiple of any nice period: a multiple of the alarm's.
        (70, 3600, 3600, 70),
        // Long ranges: a multiple of both the alarm's period and a minute.
        (70, 86_400, 86_400, 420),
        (300, 15 * 86_400, 15 * 86_400, 1800),
    ];
    for (base, range, age, want) in cases {
        let got = display_period(base, range, age);
        assert_eq!(got, want, "display_period({base}, {range}, {age})");
        assert_eq!(got % base, 0);
        assert!(div_ceil(range, i64::from(got)) <= MAX_POINTS);
    }
}

#[test]
fn a_chart_range_is_aligned_to_its_period_and_bounded() {
    let now = Timestamp::from_millis(1_700_000_123_456);
    let r = ChartRange::try_new(Some(3600), None, now, 10).unwrap();
    assert_eq!(r.period.as_secs(), 10);
    assert_eq!(r.end, now);
    assert_eq!(r.start.as_millis() % 10_000, 0);
    assert!(now.as_millis() - r.start.as_millis() >= 3_600_000);
    assert!(now.as_millis() - r.start.as_millis() < 3_610_000);

    let end = "2023-11-14T22:00:00Z";
    let r = ChartRange::try_new(Some(900), Some(end), now, 60).unwrap();
    assert_eq!(r.end.to_rfc3339(), end);
    assert_eq!(r.start.to_rfc3339(), "2023-11-14T21:45:00Z");

    for bad in [0, 59, 15 * 86_400 + 1, -5] {
        let e = ChartRange::try_new(Some(bad), None, now, 10).unwrap_err();
        assert!(
            matches!(&e, ApiError::BadRequest { field, .. } if field == "range_seconds"),
            "{bad}: {e:?}"
        );
    }
    let e = ChartRange::try_new(None, Some("soon"), now, 10).unwrap_err();
    assert!(matches!(&e, ApiError::BadRequest { field, .. } if field == "end"));
}

#[test]
fn the_default_range_fits_the_age_of_the_oldest_datapoint() {
    // (age of the oldest datapoint in the last hour, seconds) -> range
    let cases = [
        (Some(0), 900),
        (Some(300), 900),
        (Some(900), 900),
        (Some(901), 1800),
        (Some(1800), 1800),
        (Some(2400), 3600),
        (Some(3600), 3600),
        (None, 3600),
    ];
    for (age, want) in cases {
        assert_eq!(fitted_range_seconds(age), want, "{age:?}");
    }
}

#[tokio::test]
async fn a_chart_without_a_range_is_fitted_to_its_data() {
    // The fixture's CPU data are four minutes old: the last 15 minutes, every point kept.
    let (store, alarms) = fixture();
    let st = state(store, Some(alarms));
    let (status, body) = get(&st, "/api/v1/dashboard/alarms/hot").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["range_seconds"], 900);
    assert_eq!(body["range_fitted"], true);
    assert_eq!(body["datapoints"].as_array().unwrap().len(), 6);
    let time = |k: &str| {
        Timestamp::parse_rfc3339(body[k].as_str().unwrap())
            .unwrap()
            .as_millis()
    };
    let span = time("end") - time("start");
    assert!((900_000..910_000).contains(&span), "{span}");
    // A range asked for is kept.
    let (_, body) = get(&st, "/api/v1/dashboard/alarms/hot?range_seconds=3600").await;
    assert_eq!(body["range_seconds"], 3600);
    assert_eq!(body["range_fitted"], false);
}

// === timeline ===

fn ts(s: i64) -> Timestamp {
    Timestamp::from_secs(s)
}

fn change(at: i64, old: &str, new: &str) -> StateChange {
    StateChange {
        at: ts(at),
        old: old.into(),
        new: new.into(),
    }
}

fn seg(start: i64, end: i64, state: &str) -> Segment {
    Segment {
        start: ts(start),
        end: ts(end),
        state: state.into(),
    }
}

#[test]
fn the_timeline_follows_the_state_changes() {
    let changes = [
        change(100, "INSUFFICIENT_DATA", "OK"),
        change(200, "OK", "ALARM"),
        change(300, "ALARM", "OK"),
    ];
    // The whole story inside the range.
    assert_eq!(
        timeline(&changes, "OK", Some(ts(50)), ts(0), ts(400)),
        vec![
            seg(50, 100, "INSUFFICIENT_DATA"),
            seg(100, 200, "OK"),
            seg(200, 300, "ALARM"),
            seg(300, 400, "OK"),
        ]
    );
    // The range starts while the alarm was in ALARM.
    assert_eq!(
        timeline(&changes, "OK", Some(ts(50)), ts(250), ts(400)),
        vec![seg(250, 300, "ALARM"), seg(300, 400, "OK")]
    );
    // No change in the range: one stretch in the state at its start.
    assert_eq!(
        timeline(&changes, "OK", None, ts(310), ts(400)),
        vec![seg(310, 400, "OK")]
    );
    // Before any change: the first change's old state.
    assert_eq!(
        timeline(&changes, "OK", None, ts(0), ts(150)),
        vec![seg(0, 100, "INSUFFICIENT_DATA"), seg(100, 150, "OK")]
    );
    // No history at all: the current state.
    assert_eq!(
        timeline(&[], "ALARM", None, ts(0), ts(10)),
        vec![seg(0, 10, "ALARM")]
    );
    // Created after the range ended: nothing to show.
    assert_eq!(
        timeline(&changes, "OK", Some(ts(500)), ts(0), ts(400)),
        vec![]
    );
}

#[test]
fn the_timeline_merges_repeated_states() {
    // SetAlarmState to the state it is in still records an item; two changes at one
    // instant leave no empty stretch.
    let changes = [
        change(100, "OK", "ALARM"),
        change(150, "ALARM", "ALARM"),
        change(200, "ALARM", "OK"),
        change(200, "OK", "ALARM"),
    ];
    assert_eq!(
        timeline(&changes, "ALARM", None, ts(0), ts(300)),
        vec![seg(0, 100, "OK"), seg(100, 300, "ALARM")]
    );
}

#[test]
fn state_changes_are_read_from_state_updates_only() {
    let history = [
        json!({"item_type": "Action", "timestamp": "2023-11-14T22:13:30Z", "data": {}}),
        json!({"item_type": "StateUpdate", "timestamp": "2023-11-14T22:13:20Z",
               "data": {"oldState": {"stateValue": "OK"}, "newState": {"stateValue": "ALARM"}}}),
        json!({"item_type": "StateUpdate", "timestamp": 1_699_999_990_000_i64,
               "data": {"oldState": {"stateValue": "INSUFFICIENT_DATA"}, "newState": {"stateValue": "OK"}}}),
        json!({"item_type": "ConfigurationUpdate", "timestamp": "2023-11-14T22:13:00Z",
               "data": {"change": "created"}}),
    ];
    assert_eq!(
        state_changes(&history),
        vec![
            change(1_699_999_990, "INSUFFICIENT_DATA", "OK"),
            change(1_700_000_000, "OK", "ALARM"),
        ]
    );
    assert_eq!(created_at(&history), Some(ts(1_699_999_980)));
}

// === the endpoints, over the router ===

/// The alarm port over a fixed list and histories (the real engine is tested in `tests/it`).
#[derive(Debug, Default)]
struct FixedAlarms {
    views: Vec<AlarmView>,
    history: BTreeMap<String, Vec<Value>>,
}

impl AlarmApi for FixedAlarms {
    fn list(&self) -> Vec<AlarmView> {
        self.views.clone()
    }
    fn history(&self, name: &str, limit: usize) -> Result<Vec<Value>, AlarmApiError> {
        let h = self.history.get(name).cloned().unwrap_or_default();
        Ok(h.into_iter().take(limit).collect())
    }
    fn set_state(&self, _: &str, _: &str, _: &str, _: Option<Value>) -> Result<(), AlarmApiError> {
        Err(AlarmApiError::Internal("read-only".into()))
    }
    fn reload(&self) -> Result<ReloadReport, AlarmApiError> {
        Err(AlarmApiError::Internal("read-only".into()))
    }
}

const T0: i64 = 1_700_000_000_000;

const YAML: &str = r#"alarms:
  - name: hot
    namespace: App
    metric_name: Cpu
    dimensions: {Group: web}
    statistic: Maximum
    period_seconds: 10
    evaluation_periods: 1
    threshold: 70
    ok_threshold: 60
    comparison_operator: GreaterThanOrEqualToThreshold
  - name: slow
    namespace: App
    metric_name: Latency
    dimensions: {Host: "*"}
    statistic: p90
    period_seconds: 10
    evaluation_periods: 1
    threshold: 100
    comparison_operator: GreaterThanThreshold
composite_alarms:
  - name: both
    alarm_rule: ALARM(hot) OR ALARM(slow)
"#;

fn view(name: &str, kind: &'static str, state: &str, configuration: Value) -> AlarmView {
    AlarmView {
        name: name.into(),
        kind,
        state: state.into(),
        reason: format!("{name} is {state}"),
        reason_data: None,
        state_updated: Timestamp::from_millis(T0).to_rfc3339(),
        configuration,
    }
}

fn state(store: Arc<Store>, alarms: Option<FixedAlarms>) -> ApiState {
    ApiState {
        store,
        telemetry: Arc::new(Telemetry::new()),
        clock: Arc::new(ManualClock::new(Timestamp::from_millis(T0))),
        ready: Arc::new(AtomicBool::new(true)),
        alarms: alarms.map(|a| Arc::new(a) as Arc<dyn AlarmApi>),
        groups: None,
        notifications: None,
        admin: None,
        queries: Default::default(),
        access: Arc::new(thermostat_auth::Access::open()),
        audit: None,
        otlp: None,
        remote_write: None,
        cloudwatch: None,
        cluster: None,
    }
}

fn record(store: &Store, key: &SeriesKey, at_ms: i64, values: &[f64]) {
    let batch: Vec<(SeriesKey, Observation<'_>)> = values
        .iter()
        .map(|v| {
            (
                key.clone(),
                Observation {
                    timestamp: Timestamp::from_millis(at_ms),
                    unit: Unit::None,
                    resolution: Resolution::High,
                    sample: Sample::Value(*v),
                },
            )
        })
        .collect();
    store.record_batch(&batch);
}

async fn get(state: &ApiState, uri: &str) -> (StatusCode, Value) {
    let resp = router(state.clone())
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "application/json",
        "{uri}"
    );
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn fixture() -> (Arc<Store>, FixedAlarms) {
    let set = thermostat_alarms::validate(&[("t.yaml", YAML)]).unwrap();
    let hot = serde_json::to_value(&set.alarms[0]).unwrap();
    let slow = serde_json::to_value(&set.alarms[1]).unwrap();
    let both = serde_json::to_value(&set.composites[0]).unwrap();
    let alarms = FixedAlarms {
        views: vec![
            view("both", "composite", "OK", both),
            view("hot", "metric", "ALARM", hot),
            view("slow[Host=a]", "metric", "OK", slow.clone()),
            view("slow[Host=b]", "metric", "ALARM", slow),
        ],
        history: BTreeMap::from([(
            "hot".to_owned(),
            vec![
                json!({"item_type": "StateUpdate", "timestamp": Timestamp::from_millis(T0 - 30_000).to_rfc3339(),
                       "summary": "Alarm updated from OK to ALARM",
                       "data": {"oldState": {"stateValue": "OK"}, "newState": {"stateValue": "ALARM"}}}),
                json!({"item_type": "StateUpdate", "timestamp": Timestamp::from_millis(T0 - 300_000).to_rfc3339(),
                       "summary": "Alarm updated from INSUFFICIENT_DATA to OK",
                       "data": {"oldState": {"stateValue": "INSUFFICIENT_DATA"}, "newState": {"stateValue": "OK"}}}),
            ],
        )]),
    };
    let store = Arc::new(Store::new(4));
    let cpu = SeriesKey::new("App", "Cpu", vec![Dimension::new("Group", "web")]);
    // Six 10-second periods, the last four minutes ago: maxima 50, 65, 70, 90, 40, 75.
    for (i, max) in [50.0, 65.0, 70.0, 90.0, 40.0, 75.0].iter().enumerate() {
        let at = T0 - 240_000 + i as i64 * 10_000;
        record(&store, &cpu, at, &[max - 20.0, *max, max - 5.0]);
    }
    for (host, v) in [("a", 10.0), ("b", 500.0)] {
        let key = SeriesKey::new("App", "Latency", vec![Dimension::new("Host", host)]);
        record(&store, &key, T0 - 60_000, &[v; 10]);
    }
    (store, alarms)
}

#[tokio::test]
async fn the_alarm_view_flags_breaching_points_and_derives_the_timeline() {
    let (store, alarms) = fixture();
    let st = state(store, Some(alarms));
    let (status, body) = get(&st, "/api/v1/dashboard/alarms/hot?range_seconds=900").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["kind"], "metric");
    assert_eq!(body["alarm"]["state"], "ALARM");
    assert_eq!(body["period_seconds"], 10);
    assert_eq!(body["threshold"], 70.0);
    assert_eq!(body["ok_threshold"], 60.0);
    assert_eq!(body["comparison_operator"], "GreaterThanOrEqualToThreshold");
    assert_eq!(body["metric"]["statistic"], "Maximum");
    assert_eq!(body["metric"]["dimensions"], json!({"Group": "web"}));
    let points: Vec<(f64, bool)> = body["datapoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["value"].as_f64().unwrap(),
                p["breaching"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        points,
        vec![
            (50.0, false),
            (65.0, false),
            (70.0, true),
            (90.0, true),
            (40.0, false),
            (75.0, true)
        ]
    );
    let timeline: Vec<(String, String)> = body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["state"].as_str().unwrap().to_owned(),
                s["start"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let start = body["start"].as_str().unwrap().to_owned();
    assert_eq!(
        timeline,
        vec![
            ("INSUFFICIENT_DATA".to_owned(), start),
            (
                "OK".to_owned(),
                Timestamp::from_millis(T0 - 300_000).to_rfc3339()
            ),
            (
                "ALARM".to_owned(),
                Timestamp::from_millis(T0 - 30_000).to_rfc3339()
            ),
        ]
    );
    assert_eq!(body["history"].as_array().unwrap().len(), 2);
    let (_, limited) = get(&st, "/api/v1/dashboard/alarms/hot?history_limit=1").await;
    assert_eq!(limited["history"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_per_series_instance_charts_its_own_series() {
    let (store, alarms) = fixture();
    let st = state(store, Some(alarms));
    for (host, value, breaching) in [("a", 10.0, false), ("b", 500.0, true)] {
        let uri = format!("/api/v1/dashboard/alarms/slow%5BHost%3D{host}%5D");
        let (status, body) = get(&st, &uri).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["metric"]["dimensions"], json!({"Host": host}));
        assert_eq!(body["metric"]["statistic"], "p90");
        let dp = body["datapoints"].as_array().unwrap();
        assert_eq!(dp.len(), 1, "{body}");
        assert!((dp[0]["value"].as_f64().unwrap() - value).abs() <= value * 0.01);
        assert_eq!(dp[0]["breaching"], breaching);
    }
    // The alarm itself (which the engine no longer lists once it has instances) lists its
    // instances, is in ALARM as composites see it, and has no series or history of its own.
    let (status, body) = get(&st, "/api/v1/dashboard/alarms/slow").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["alarm"]["state"], "ALARM");
    assert_eq!(body["timeline"], json!([]));
    assert_eq!(body["history"], json!([]));
    assert_eq!(body["datapoints"], json!([]));
    assert_eq!(body["metric"]["dimensions"], json!({"Host": "*"}));
    assert_eq!(
        body["instances"],
        json!([{"name": "slow[Host=a]", "state": "OK"}, {"name": "slow[Host=b]", "state": "ALARM"}])
    );
}

#[tokio::test]
async fn a_composite_alarm_shows_its_rule_and_the_states_it_reads() {
    let (store, alarms) = fixture();
    let st = state(store, Some(alarms));
    let (status, body) = get(&st, "/api/v1/dashboard/alarms/both").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["kind"], "composite");
    assert_eq!(body["metric"], Value::Null);
    assert_eq!(body["rule"]["text"], "ALARM(hot) OR ALARM(slow)");
    assert_eq!(
        body["rule"]["alarms"],
        json!([{"name": "hot", "state": "ALARM"}, {"name": "slow", "state": "ALARM"}])
    );
    assert_eq!(body["timeline"][0]["state"], "OK");
}

#[tokio::test]
async fn disabled_parts_are_null_in_the_overview_and_404_in_their_views() {
    let st = state(Arc::new(Store::new(4)), None);
    let (status, body) = get(&st, "/api/v1/dashboard/overview").await;
    assert_eq!(status, 200);
    assert_eq!(body["alarms"], Value::Null);
    assert_eq!(body["groups"], Value::Null);
    assert_eq!(body["notifications"], Value::Null);
    assert_eq!(body["now"], Timestamp::from_millis(T0).to_rfc3339());
    for uri in [
        "/api/v1/dashboard/alarms/hot",
        "/api/v1/dashboard/groups/web",
    ] {
        let (status, body) = get(&st, uri).await;
        assert_eq!(status, 404, "{uri}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }

    let (store, alarms) = fixture();
    let st = state(store, Some(alarms));
    let (_, body) = get(&st, "/api/v1/dashboard/overview").await;
    assert_eq!(body["alarms"].as_array().unwrap().len(), 4);
    assert_eq!(body["alarms"][1]["name"], "hot");
    for missing in ["nope", "slo", "slow%5B"] {
        let (status, body) = get(&st, &format!("/api/v1/dashboard/alarms/{missing}")).await;
        assert_eq!(status, 404, "{missing}: {body}");
    }
    let (status, body) = get(&st, "/api/v1/dashboard/alarms/hot?range_seconds=5").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "range_seconds");
}
