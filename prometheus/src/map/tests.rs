use super::*;
use crate::proto::{Label, MetricMetadata, Sample};

fn ts(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels
            .iter()
            .map(|(n, v)| Label {
                name: (*n).to_owned(),
                value: (*v).to_owned(),
            })
            .collect(),
        samples: samples
            .iter()
            .map(|&(timestamp, value)| Sample { value, timestamp })
            .collect(),
        exemplars: vec![],
        histograms: vec![],
    }
}

fn request(series: Vec<TimeSeries>) -> WriteRequest {
    WriteRequest {
        timeseries: series,
        metadata: vec![],
    }
}

fn one(labels: &[(&str, &str)]) -> Mapped {
    map_v1(
        &request(vec![ts(labels, &[(1000, 1.0)])]),
        &MapOptions::default(),
    )
}

#[test]
fn name_namespace_and_dimensions() {
    let m = one(&[("__name__", "up"), ("instance", "a:9100"), ("job", "node")]);
    assert!(m.rejected.is_empty(), "{:?}", m.rejected);
    let s = &m.series[0];
    assert_eq!(s.key.namespace(), "node");
    assert_eq!(s.key.metric_name(), "up");
    assert_eq!(s.key.dimensions(), &[Dimension::new("instance", "a:9100")]);
    assert_eq!(s.kind, Kind::Gauge);
    assert_eq!(s.samples, vec![(1000, 1.0)]);
    assert!(s.stale_at.is_empty());
}

#[test]
fn default_namespace_and_configured_label() {
    let m = one(&[("__name__", "up"), ("job", "node")]);
    assert_eq!(m.series[0].key.namespace(), "node");
    let m = one(&[("__name__", "up")]);
    assert_eq!(m.series[0].key.namespace(), DEFAULT_NAMESPACE);
    let options = MapOptions {
        namespace_label: "service".to_owned(),
    };
    let r = request(vec![ts(
        &[("__name__", "up"), ("job", "node"), ("service", "api")],
        &[(1, 1.0)],
    )]);
    let m = map_v1(&r, &options);
    assert_eq!(m.series[0].key.namespace(), "api");
    assert_eq!(m.series[0].key.dimension("job"), Some("node"));
}

#[test]
fn empty_label_value_is_no_label() {
    let m = one(&[("__name__", "up"), ("env", ""), ("job", "")]);
    assert!(m.rejected.is_empty());
    assert!(m.series[0].key.dimensions().is_empty());
    assert_eq!(m.series[0].key.namespace(), DEFAULT_NAMESPACE);
}

#[test]
fn missing_name_is_rejected() {
    let m = one(&[("job", "node")]);
    assert!(m.series.is_empty());
    assert_eq!(
        m.rejected[0].rule,
        "timeseries[0].labels: must have a __name__ label (the metric name)"
    );
}

#[test]
fn thirty_dimensions_pass_thirty_one_are_rejected() {
    let names: Vec<String> = (0..31).map(|i| format!("l{i:02}")).collect();
    let mut labels: Vec<(&str, &str)> = vec![("__name__", "m"), ("job", "j")];
    labels.extend(names.iter().take(30).map(|n| (n.as_str(), "v")));
    let m = one(&labels);
    assert!(m.rejected.is_empty(), "{:?}", m.rejected);
    assert_eq!(m.series[0].key.dimensions().len(), 30);
    labels.push((names[30].as_str(), "v"));
    let m = one(&labels);
    assert!(m.series.is_empty());
    assert_eq!(
        m.rejected[0].rule,
        "timeseries[0].labels: at most 30 labels besides __name__ and the namespace label \"job\" (got 31)"
    );
    assert!(m.rejected[0].series.starts_with("m{job=\"j\",l00=\"v\""));
}

#[test]
fn invalid_label_names_are_rejected() {
    for bad in ["0abc", "a-b", "é", "a b", ""] {
        let m = one(&[("__name__", "up"), (bad, "v")]);
        assert!(m.series.is_empty(), "{bad:?}");
        assert!(
            m.rejected[0]
                .rule
                .starts_with("timeseries[0].labels[1].name: "),
            "{}",
            m.rejected[0].rule
        );
        assert!(m.rejected[0].rule.contains("not a Prometheus label name"));
    }
    for good in ["_a", "A_9", "__meta"] {
        assert!(is_label_name(good), "{good}");
    }
}

#[test]
fn duplicate_label_is_rejected() {
    let m = one(&[("__name__", "up"), ("a", "1"), ("a", "2")]);
    assert!(m.rejected[0].rule.contains("appears more than once"));
}

#[test]
fn invalid_values_are_rejected_with_thermostat_rules() {
    let m = one(&[("__name__", "up"), ("a", "tab\there")]);
    assert!(
        m.rejected[0]
            .rule
            .starts_with("timeseries[0].labels[1].value: dimension value"),
        "{}",
        m.rejected[0].rule
    );
    let long = "x".repeat(1025);
    let m = one(&[("__name__", "up"), ("a", &long)]);
    assert!(m.rejected[0].rule.contains("dimension value"));
    let m = one(&[("__name__", "up"), ("job", "no!")]);
    assert!(m.rejected[0].rule.contains("namespace (label \"job\")"));
    let m = one(&[("__name__", "\u{7}")]);
    assert!(m.rejected[0].rule.contains("metric name (__name__)"));
}

#[test]
fn staleness_marker_ends_the_stream() {
    let stale = f64::from_bits(STALE_NAN_BITS);
    let r = request(vec![ts(&[("__name__", "up")], &[(1, 1.0), (2, stale)])]);
    let m = map_v1(&r, &MapOptions::default());
    assert!(m.rejected.is_empty());
    assert_eq!(m.series[0].samples, vec![(1, 1.0)]);
    assert_eq!(m.series[0].stale_at, vec![2]);
    // A marker alone still reports the end.
    let r = request(vec![ts(&[("__name__", "up")], &[(5, stale)])]);
    let m = map_v1(&r, &MapOptions::default());
    assert_eq!(m.series[0].stale_at, vec![5]);
}

#[test]
fn other_nans_and_infinities_are_rejected_alone() {
    let r = request(vec![ts(
        &[("__name__", "up")],
        &[(1, f64::NAN), (2, 2.0), (3, f64::INFINITY)],
    )]);
    let m = map_v1(&r, &MapOptions::default());
    assert_eq!(m.series[0].samples, vec![(2, 2.0)]);
    assert_eq!(m.rejected.len(), 2);
    assert_eq!(
        m.rejected[0].rule,
        "timeseries[0].samples[0].value: must be a number (got NaN); the only NaN accepted is Prometheus' staleness marker"
    );
    assert_eq!(m.rejected[0].series, "up{}");
    assert!(
        m.rejected[1]
            .rule
            .starts_with("timeseries[0].samples[2].value: must be finite")
    );
}

#[test]
fn kinds_by_suffix_and_metadata() {
    let cases = [
        ("http_requests_total", Kind::Counter),
        ("rpc_duration_seconds_count", Kind::Counter),
        ("rpc_duration_seconds_sum", Kind::Counter),
        ("rpc_duration_seconds_bucket", Kind::Counter),
        ("temperature", Kind::Gauge),
        ("total", Kind::Gauge),
    ];
    for (name, kind) in cases {
        assert_eq!(one(&[("__name__", name)]).series[0].kind, kind, "{name}");
    }
    let meta = |name: &str, t: MetricType| MetricMetadata {
        r#type: t as i32,
        metric_family_name: name.to_owned(),
        help: String::new(),
        unit: String::new(),
    };
    let mut r = request(vec![
        ts(&[("__name__", "restarts")], &[(1, 1.0)]),
        ts(&[("__name__", "odd_total")], &[(1, 1.0)]),
        ts(&[("__name__", "queue_bucket")], &[(1, 1.0)]),
    ]);
    r.metadata = vec![
        meta("restarts", MetricType::Counter),
        meta("odd_total", MetricType::Gauge),
        meta("queue", MetricType::Gaugehistogram),
    ];
    let kinds: Vec<Kind> = map_v1(&r, &MapOptions::default())
        .series
        .iter()
        .map(|s| s.kind)
        .collect();
    assert_eq!(kinds, vec![Kind::Counter, Kind::Gauge, Kind::Gauge]);
}

#[test]
fn one_bad_series_keeps_the_others() {
    let r = request(vec![
        ts(&[("job", "x")], &[(1, 1.0)]),
        ts(&[("__name__", "up")], &[(1, 1.0)]),
        ts(&[("__name__", "no_samples")], &[]),
    ]);
    let m = map_v1(&r, &MapOptions::default());
    assert_eq!(m.series.len(), 1);
    assert_eq!(m.rejected.len(), 1);
}
