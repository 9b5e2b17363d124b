//! Metric-math and anomaly-detection alarms through validation and the engine's tick.

use std::collections::BTreeMap;

use thermostat_metrics::{
    Dimension, Observation, Resolution, Sample, SeriesKey, Store, Timestamp, Unit,
};

use super::*;
use crate::anomaly::{AnomalyConfig, train};
use crate::engine::{EngineState, tick_with_models};
use crate::model::StateValue;
use crate::state::ReasonData;
use crate::timefmt::reason_time;
use crate::validate::validate;

/// 1_800_000_000 s is a multiple of 60.
const T0: Timestamp = Timestamp(1_800_000_000_000);

const ERROR_RATE: &str = "alarms:
  - name: error-rate
    metrics:
      - id: errors
        metric_stat: {namespace: App, metric_name: Errors, statistic: Sum, period_seconds: 60}
        return_data: false
      - id: requests
        metric_stat: {namespace: App, metric_name: Requests, statistic: Sum, period_seconds: 60}
        return_data: false
      - id: rate
        expression: errors / requests * 100
        label: Error rate (%)
    evaluation_periods: 1
    threshold: 5
    comparison_operator: GreaterThanThreshold
";

const PER_HOST: &str = "alarms:
  - name: host-errors
    metrics:
      - id: errors
        metric_stat: {namespace: App, metric_name: Errors, dimensions: {Host: \"*\"}, statistic: Sum, period_seconds: 60}
        return_data: false
      - id: requests
        metric_stat: {namespace: App, metric_name: Requests, dimensions: {Host: \"*\"}, statistic: Sum, period_seconds: 60}
        return_data: false
      - id: rate
        expression: errors / requests * 100
    evaluation_periods: 1
    threshold: 5
    comparison_operator: GreaterThanThreshold
";

const ANOMALY: &str = "alarms:
  - name: ad
    metrics:
      - id: m1
        metric_stat: {namespace: App, metric_name: Latency, statistic: Average, period_seconds: 60}
      - id: ad1
        expression: ANOMALY_DETECTION_BAND(m1, 2)
    threshold_metric_id: ad1
    comparison_operator: LessThanLowerOrGreaterThanUpperThreshold
    evaluation_periods: 2
    datapoints_to_alarm: 1
";

fn push(store: &Store, metric: &str, host: Option<&str>, at: Timestamp, v: f64) {
    let dims = host
        .map(|h| vec![Dimension::new("Host", h)])
        .unwrap_or_default();
    let obs = Observation {
        timestamp: at,
        unit: Unit::None,
        resolution: Resolution::Standard,
        sample: Sample::Value(v),
    };
    store.record_batch(&[(SeriesKey::new("App", metric, dims), obs)]);
}

fn errors(yaml: &str) -> String {
    validate(&[("m.yaml", yaml)]).unwrap_err().to_string()
}

#[test]
fn a_math_alarm_validates_with_the_period_of_its_metric_stats() {
    let set = validate(&[("m.yaml", ERROR_RATE)]).unwrap();
    let a = &set.alarms[0];
    assert!(a.is_math() && !a.is_anomaly() && !a.is_per_series());
    assert_eq!(a.period.as_secs(), 60);
    assert_eq!(a.namespace, "");
    assert_eq!(a.metrics.len(), 3);
    assert_eq!(a.metrics[2].label.as_deref(), Some("Error rate (%)"));
    // A stored definition written before math alarms still reads.
    let mut json = serde_json::to_value(a).unwrap();
    json.as_object_mut().unwrap().remove("metrics");
    let back: crate::Alarm = serde_json::from_value(json).unwrap();
    assert!(back.metrics.is_empty() && back.threshold_metric_id.is_none());

    let set = validate(&[("m.yaml", PER_HOST)]).unwrap();
    assert!(set.alarms[0].is_per_series());
    assert_eq!(set.alarms[0].wildcard_dimensions(), ["Host"]);
    let set = validate(&[("m.yaml", ANOMALY)]).unwrap();
    assert!(set.alarms[0].is_anomaly());
    assert_eq!(band_inputs(&set.alarms[0]), ["m1"]);
}

#[test]
fn math_alarm_rules_are_reported_at_their_positions() {
    // Mixing the single-metric fields with metrics.
    let e = errors(&ERROR_RATE.replace(
        "    evaluation_periods: 1",
        "    namespace: App\n    statistic: Sum\n    evaluation_periods: 1",
    ));
    assert!(
        e.contains("m.yaml:13:16: alarms.error-rate.namespace: a metric-math alarm (with metrics:) must not have namespace"),
        "{e}"
    );
    assert!(
        e.contains("m.yaml:14:16: alarms.error-rate.statistic:"),
        "{e}"
    );
    // return_data defaults to true: two returned queries.
    let e = errors(&ERROR_RATE.replacen("        return_data: false\n", "", 1));
    assert!(
        e.contains("m.yaml:9:11: alarms.error-rate.metrics[2].return_data: exactly one query of an alarm must have return_data true (got 2)"),
        "{e}"
    );
    // Both metric_stat and expression.
    let e = errors(&ERROR_RATE.replace(
        "        label: Error rate (%)",
        "        metric_stat: {namespace: App, metric_name: X, statistic: Sum, period_seconds: 60}",
    ));
    assert!(
        e.contains("m.yaml:12:22: alarms.error-rate.metrics[2].metric_stat: give exactly one of metric_stat and expression (got both)"),
        "{e}"
    );
    // An expression error names the rule and its place in the expression.
    let e = errors(&ERROR_RATE.replace("errors / requests * 100", "errors / requets * 100"));
    assert!(
        e.contains("m.yaml:11:21: alarms.error-rate.metrics[2].expression:")
            && e.contains("requets")
            && e.contains("(at 1:10 of the expression; rule unknown-id)"),
        "{e}"
    );
    // Different periods.
    let e = errors(&ERROR_RATE.replacen("period_seconds: 60}", "period_seconds: 300}", 1));
    assert!(
        e.contains("alarms.error-rate.metrics[1].period_seconds: all metrics of an alarm must have the same period (300 s, got 60 s)"),
        "{e}"
    );
    // "*" dimensions with different names.
    let e = errors(&PER_HOST.replacen("{Host: \"*\"}", "{Zone: \"*\"}", 1));
    assert!(
        e.contains("alarms.host-errors.metrics[1].metric_stat.dimensions: every metric_stat with \"*\" dimensions must have the same \"*\" dimension names"),
        "{e}"
    );
}

#[test]
fn anomaly_alarm_rules_are_reported() {
    // A band operator without threshold_metric_id.
    let e = errors(&ERROR_RATE.replace("GreaterThanThreshold", "GreaterThanUpperThreshold"));
    assert!(
        e.contains("alarms.error-rate.comparison_operator: GreaterThanUpperThreshold compares with an anomaly-detection band"),
        "{e}"
    );
    // A threshold with a band; a static operator with a band; scaling actions.
    let e = errors(&ANOMALY.replace(
        "    evaluation_periods: 2",
        "    threshold: 3\n    alarm_actions: [\"policy:web/out\"]\n    evaluation_periods: 2",
    ));
    assert!(
        e.contains("alarms.ad.threshold: is not used by an anomaly-detection alarm"),
        "{e}"
    );
    assert!(
        e.contains(
            "alarms.ad.alarm_actions: anomaly-detection alarms cannot run Auto Scaling actions"
        ),
        "{e}"
    );
    let e = errors(&ANOMALY.replace(
        "LessThanLowerOrGreaterThanUpperThreshold",
        "GreaterThanThreshold",
    ));
    assert!(
        e.contains("alarms.ad.comparison_operator: an anomaly-detection alarm (with threshold_metric_id) must use"),
        "{e}"
    );
    // threshold_metric_id must name the band.
    let e = errors(&ANOMALY.replace("threshold_metric_id: ad1", "threshold_metric_id: m1"));
    assert!(
        e.contains("alarms.ad.threshold_metric_id: must name an ANOMALY_DETECTION_BAND"),
        "{e}"
    );
    // The training configuration.
    let e = errors(&format!(
        "{ANOMALY}    anomaly_detection:\n      metric_timezone: Mars/Olympus\n      excluded_time_ranges:\n        - {{start: 2026-03-02T00:00:00Z, end: 2026-03-01T00:00:00Z}}\n"
    ));
    assert!(
        e.contains("alarms.ad.anomaly_detection.excluded_time_ranges[0].end: must be after start"),
        "{e}"
    );
    assert!(
        e.contains(
            "alarms.ad.anomaly_detection.metric_timezone: unknown IANA time zone \"Mars/Olympus\""
        ),
        "{e}"
    );
    let set = validate(&[(
        "m.yaml",
        format!(
            "{ANOMALY}    anomaly_detection:\n      metric_timezone: Europe/Berlin\n      excluded_time_ranges:\n        - {{start: 2026-03-01T00:00:00Z, end: 2026-03-02T00:00:00Z}}\n"
        ),
    )])
    .unwrap();
    let config = set.alarms[0].anomaly.clone().unwrap();
    assert_eq!(config.time_zone.as_deref(), Some("Europe/Berlin"));
    assert_eq!(config.excluded.len(), 1);
}

/// Reference §3.11 / §3.7: the returned expression is the alarm's datapoint; reasons as for
/// any alarm, reason data without `statistic`.
#[test]
fn an_error_rate_alarm_goes_from_insufficient_data_to_ok_to_alarm() {
    let set = validate(&[("m.yaml", ERROR_RATE)]).unwrap();
    let store = Store::new(2);
    let mut st = EngineState::new(&set, T0, None);
    let out = tick_with_models(&set, &mut st, &store, &NoModels, T0).unwrap();
    assert_eq!(out.evaluations, 1);
    assert!(out.transitions.is_empty());
    assert_eq!(
        st.metric["error-rate"].state.value,
        StateValue::InsufficientData
    );

    push(&store, "Requests", None, T0.add_millis(10_000), 100.0);
    push(&store, "Errors", None, T0.add_millis(20_000), 1.0);
    let t1 = T0.add_millis(60_000);
    let out = tick_with_models(&set, &mut st, &store, &NoModels, t1).unwrap();
    let s = &st.metric["error-rate"].state;
    assert_eq!(s.value, StateValue::Ok);
    assert_eq!(
        s.reason,
        format!(
            "Threshold Crossed: 1 datapoint [1.0 ({})] was not greater than the threshold (5.0).",
            reason_time(T0)
        )
    );
    let Some(ReasonData::Metric(data)) = &s.reason_data else {
        panic!("{:?}", s.reason_data)
    };
    assert_eq!(data.statistic, None);
    let json = out.transitions[0]
        .1
        .reason_data
        .as_ref()
        .unwrap()
        .to_json_string();
    assert!(
        !json.contains("statistic") && !json.contains("sampleCount"),
        "{json}"
    );
    assert!(json.contains("\"threshold\":5.0"), "{json}");

    push(&store, "Requests", None, t1.add_millis(10_000), 200.0);
    push(&store, "Errors", None, t1.add_millis(20_000), 20.0);
    let t2 = t1.add_millis(60_000);
    tick_with_models(&set, &mut st, &store, &NoModels, t2).unwrap();
    let s = &st.metric["error-rate"].state;
    assert_eq!(s.value, StateValue::Alarm);
    assert_eq!(
        s.reason,
        format!(
            "Threshold Crossed: 1 datapoint [10.0 ({})] was greater than the threshold (5.0).",
            reason_time(t1)
        )
    );
}

/// A `"*"` dimension in the metric_stats: one instance per host, the expression evaluated
/// per host.
#[test]
fn an_error_rate_per_host_has_one_instance_per_host() {
    let set = validate(&[("m.yaml", PER_HOST)]).unwrap();
    let store = Store::new(2);
    let mut st = EngineState::new(&set, T0, None);
    assert!(st.metric.is_empty());
    for (host, errors) in [("a", 1.0), ("b", 30.0)] {
        push(&store, "Requests", Some(host), T0.add_millis(10_000), 100.0);
        push(&store, "Errors", Some(host), T0.add_millis(10_000), errors);
    }
    let t1 = T0.add_millis(60_000);
    let out = tick_with_models(&set, &mut st, &store, &NoModels, t1).unwrap();
    let names: Vec<&String> = st.metric.keys().collect();
    assert_eq!(names, ["host-errors[Host=a]", "host-errors[Host=b]"]);
    assert_eq!(st.metric["host-errors[Host=a]"].state.value, StateValue::Ok);
    assert_eq!(
        st.metric["host-errors[Host=b]"].state.value,
        StateValue::Alarm
    );
    assert!(
        st.metric["host-errors[Host=b]"]
            .state
            .reason
            .contains("[30.0 ("),
        "{}",
        st.metric["host-errors[Host=b]"].state.reason
    );
    assert_eq!(
        out.history
            .iter()
            .filter(|h| h.summary.contains("created"))
            .count(),
        2
    );
    // Reloading the same definition keeps the instances (their keys still match).
    let (kept, _) = crate::engine::carry_over(&set, &st, &set, t1);
    assert_eq!(kept.metric.len(), 2);
}

/// A daily-seasonal model: `base + amplitude·sin(2π·minute/1440)`, every minute for `days`.
fn seasonal(end: Timestamp, days: i64) -> Vec<(Timestamp, f64)> {
    (1..=days * 1440)
        .map(|i| {
            let t = end.sub_millis(i * 60_000);
            let minute = (t.as_millis() / 60_000).rem_euclid(1440) as f64;
            let v = 100.0 + 50.0 * (minute / 1440.0 * std::f64::consts::TAU).sin();
            (t, v + ((i * 7919) % 11) as f64 / 10.0)
        })
        .collect()
}

fn seasonal_value(t: Timestamp) -> f64 {
    let minute = (t.as_millis() / 60_000).rem_euclid(1440) as f64;
    100.0 + 50.0 * (minute / 1440.0 * std::f64::consts::TAU).sin() + 0.5
}

/// Reference §3.12 / §3.7: an anomaly alarm compares each datapoint with the band of its
/// model; reasons name the lower and upper thresholds; reason data carries
/// `recentLowerThresholds` / `recentUpperThresholds` instead of `threshold`.
#[test]
fn an_anomaly_alarm_compares_with_its_band() {
    let set = validate(&[("m.yaml", ANOMALY)]).unwrap();
    let store = Store::new(2);
    let mut st = EngineState::new(&set, T0, None);
    let mut models: BTreeMap<(String, String), crate::anomaly::Model> = BTreeMap::new();

    // No model yet: INSUFFICIENT_DATA saying so.
    push(
        &store,
        "Latency",
        None,
        T0.sub_millis(30_000),
        seasonal_value(T0),
    );
    tick_with_models(&set, &mut st, &store, &models, T0).unwrap();
    assert_eq!(st.metric["ad"].state.value, StateValue::InsufficientData);
    assert_eq!(
        st.metric["ad"].state.reason,
        "Insufficient Data: the anomaly model of m1 has not been trained yet"
    );
    // A model still pending: its own reason.
    let pending = train(&seasonal(T0, 1)[..5], &AnomalyConfig::default(), T0);
    models.insert(("ad".into(), "m1".into()), pending);
    tick_with_models(&set, &mut st, &store, &models, T0).unwrap();
    assert!(
        st.metric["ad"].state.reason.starts_with(
            "Insufficient Data: the anomaly model has not seen enough data yet: 5 datapoints"
        ),
        "{}",
        st.metric["ad"].state.reason
    );

    // Trained on three days: the usual value is inside the band.
    models.insert(
        ("ad".into(), "m1".into()),
        train(&seasonal(T0, 3), &AnomalyConfig::default(), T0),
    );
    let t1 = T0.add_millis(60_000);
    push(
        &store,
        "Latency",
        None,
        T0.add_millis(30_000),
        seasonal_value(T0),
    );
    let out = tick_with_models(&set, &mut st, &store, &models, t1).unwrap();
    let s = &st.metric["ad"].state;
    assert_eq!(s.value, StateValue::Ok, "{}", s.reason);
    assert!(
        s.reason
            .starts_with("Thresholds Crossed: 2 out of the last 2 datapoints [")
            && s.reason
                .contains("were not less than the lower thresholds [")
            && s.reason.contains("or greater than the upper thresholds [")
            && s.reason
                .ends_with("(minimum 2 datapoints for ALARM -> OK transition)."),
        "{}",
        s.reason
    );
    let json = out.transitions[0]
        .1
        .reason_data
        .as_ref()
        .unwrap()
        .to_json_string();
    assert!(
        json.contains("\"recentLowerThresholds\":[")
            && json.contains("\"recentUpperThresholds\":["),
        "{json}"
    );
    assert!(!json.contains("\"threshold\":0"), "{json}");
    let Some(ReasonData::Metric(data)) = &out.transitions[0].1.reason_data else {
        panic!("{json}")
    };
    assert_eq!(data.threshold, None);
    let upper = data.recent_upper_thresholds.clone().unwrap();
    assert_eq!(upper.len(), 2);
    // Each evaluated point carries the bound it was compared with (here the nearer, upper).
    assert_eq!(data.evaluated_datapoints[0].threshold, Some(upper[1]));

    // The band operators, one-sided and two-sided.
    use crate::model::ComparisonOperator as Op;
    assert!(Op::GreaterThanUpperThreshold.breaches_band(11.0, 5.0, 10.0));
    assert!(!Op::GreaterThanUpperThreshold.breaches_band(1.0, 5.0, 10.0));
    assert!(Op::LessThanLowerThreshold.breaches_band(1.0, 5.0, 10.0));
    assert!(!Op::LessThanLowerThreshold.breaches_band(11.0, 5.0, 10.0));
    assert!(Op::LessThanLowerOrGreaterThanUpperThreshold.breaches_band(1.0, 5.0, 10.0));
    assert!(Op::LessThanLowerOrGreaterThanUpperThreshold.breaches_band(11.0, 5.0, 10.0));
    assert!(!Op::LessThanLowerOrGreaterThanUpperThreshold.breaches_band(5.0, 5.0, 10.0));

    // A spike: ALARM, the reason listing the bounds of the point.
    let t2 = t1.add_millis(60_000);
    push(&store, "Latency", None, t1.add_millis(30_000), 1000.0);
    tick_with_models(&set, &mut st, &store, &models, t2).unwrap();
    let s = &st.metric["ad"].state;
    assert_eq!(s.value, StateValue::Alarm);
    let (lo, hi) = models[&("ad".to_owned(), "m1".to_owned())]
        .band(t1, 2.0)
        .unwrap();
    assert_eq!(
        s.reason,
        format!(
            "Thresholds Crossed: 1 out of the last 2 datapoints [1000.0 ({})] was less than the lower thresholds [{}] or greater than the upper thresholds [{}] (minimum 1 datapoint for OK -> ALARM transition).",
            reason_time(t1),
            crate::timefmt::java_double(lo),
            crate::timefmt::java_double(hi)
        )
    );
}

#[test]
fn training_points_follow_the_alarm_series_over_fourteen_days() {
    let set = validate(&[("m.yaml", ERROR_RATE)]).unwrap();
    let a = &set.alarms[0];
    let store = Store::new(2);
    for d in [1, 5, 13, 15] {
        let t = T0.sub_millis(d * 86_400_000);
        push(&store, "Requests", None, t, 50.0);
        push(&store, "Errors", None, t, 5.0);
    }
    let points = training_points(a, "error-rate", &alarm_key(a), "rate", &store, T0).unwrap();
    assert_eq!(
        points,
        [13, 5, 1].map(|d| (T0.sub_millis(d * 86_400_000), 10.0)),
        "the expression's series, 15 days ago left out"
    );
    // The returned series over a range, as a chart of the alarm reads it.
    let chart = query_series(
        a,
        "error-rate",
        &alarm_key(a),
        None,
        &store,
        (T0.sub_millis(2 * 86_400_000), T0),
        a.period,
        T0,
    )
    .unwrap();
    assert_eq!(chart, [(T0.sub_millis(86_400_000), 10.0)]);
}

/// Reference §4.1: a math alarm's `Trigger` has `Metrics` instead of the metric fields, with
/// a per-series instance's values for the `"*"` dimensions.
#[test]
fn the_notification_trigger_of_a_math_alarm_lists_its_metrics() {
    use crate::message::{AlarmDefinition, AlarmEvent, MessageSettings, cloudwatch_message};
    let set = validate(&[("m.yaml", PER_HOST)]).unwrap();
    let t = crate::state::Transition {
        timestamp: T0,
        old_state: StateValue::Ok,
        new_state: StateValue::Alarm,
        reason: "r".into(),
        reason_data: None,
    };
    let dims = [Dimension::new("Host", "web-2")];
    let dims_key = thermostat_metrics::SeriesKey::new("T", "m", dims.to_vec());
    let m = cloudwatch_message(
        &MessageSettings::try_new("123456789012", "eu-west-1", None).unwrap(),
        &AlarmEvent {
            name: "host-errors[Host=web-2]",
            definition: AlarmDefinition::Metric(&set.alarms[0]),
            transition: &t,
            dimensions: Some(dims_key.dimensions()),
            configuration_updated: None,
        },
    );
    let json = serde_json::to_value(&m).unwrap();
    let trigger = &json["Trigger"];
    assert!(trigger.get("MetricName").is_none(), "{trigger}");
    assert!(trigger.get("StatisticType").is_none(), "{trigger}");
    assert!(
        trigger.get("Unit").is_none() && trigger.get("Dimensions").is_none(),
        "{trigger}"
    );
    assert_eq!(
        trigger["Metrics"][0],
        serde_json::json!({"Id": "errors", "MetricStat": {"Metric": {"Dimensions": [{"value": "web-2", "name": "Host"}], "MetricName": "Errors", "Namespace": "App"}, "Period": 60, "Stat": "Sum"}, "ReturnData": false})
    );
    assert_eq!(
        trigger["Metrics"][2],
        serde_json::json!({"Id": "rate", "Expression": "errors / requests * 100", "ReturnData": true})
    );
}

/// `tests:` of math and anomaly alarms: `metric:` names a metric_stat, `history:` generates
/// the data before the start.
#[test]
fn tests_sections_name_metric_stats_and_generate_history() {
    let test = "tests:\n  - name: t\n    start: 2024-03-15T18:00:00Z\n    history:\n      - {metric: m1, days: 2, every: 1h, value: 10, daily_amplitude: 5, noise: 1}\n    datapoints:\n      - {at: 1m, metric: m1, value: 12}\n    expect:\n      - {at: 5m, state: OK}\n";
    let set = validate(&[("m.yaml", format!("{ANOMALY}{test}"))]).unwrap();
    let t = &set.tests[0];
    assert_eq!(
        t.datapoints.len(),
        49,
        "48 hourly points, then the datapoint"
    );
    assert_eq!(t.datapoints[1].metric_name, "Latency");
    assert_eq!(
        t.datapoints[1].timestamp,
        t.start.sub_millis(2 * 86_400_000)
    );
    assert!(
        t.datapoints
            .iter()
            .all(|d| d.timestamp < t.start || d.values == [12.0])
    );
    let e = errors(&format!(
        "{ANOMALY}{}",
        test.replace("metric: m1, days: 2", "metric: m2, days: 20")
    ));
    assert!(
        e.contains("tests.t.history[0].metric: must be the id of a metric_stat in the metrics of the test's alarm (got \"m2\")"),
        "{e}"
    );
    assert!(
        e.contains("tests.t.history[0].days: must be between 1 and 14 (got 20)"),
        "{e}"
    );
    let e = errors(&format!(
        "{ANOMALY}{}",
        test.replace("metric: m1, value: 12", "value: 12")
    ));
    assert!(
        e.contains("tests.t.datapoints[0]: must name namespace and metric_name (or metric: the id of a metric_stat of a math alarm)"),
        "{e}"
    );
}
