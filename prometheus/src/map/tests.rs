use super::*;
use crate::proto::histogram::{Count, ZeroCount};
use crate::proto::{BucketSpan, Label, MetricMetadata, Sample, TimeSeries};
use thermostat_metrics::Window;

const NOW: i64 = 1_700_000_000_000;

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

fn request(series: Vec<TimeSeries>) -> Request {
    Request::V1(WriteRequest {
        timeseries: series,
        metadata: vec![],
    })
}

fn run(r: &Request) -> Mapped {
    map(r, &mut Streams::new(), NOW, &MapOptions::default())
}

fn one(labels: &[(&str, &str)]) -> Mapped {
    run(&request(vec![ts(labels, &[(NOW, 1.0)])]))
}

fn values(m: &Mapped) -> Vec<(i64, f64)> {
    m.points
        .iter()
        .map(|p| match p.data {
            MappedData::Value(v) => (p.timestamp_ms, v),
            MappedData::Distribution { .. } => panic!("a distribution: {p:?}"),
        })
        .collect()
}

fn stale() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

// === Series identity (as before the mapping grew streams) ===

#[test]
fn name_namespace_and_dimensions() {
    let m = one(&[("__name__", "up"), ("instance", "a:9100"), ("job", "node")]);
    assert!(m.rejected.is_empty(), "{:?}", m.rejected);
    let p = &m.points[0];
    assert_eq!(p.series.namespace(), "node");
    assert_eq!(p.series.metric_name(), "up");
    assert_eq!(
        p.series.dimensions(),
        &[Dimension::new("instance", "a:9100")]
    );
    assert_eq!(p.unit, Unit::None);
    assert_eq!(values(&m), vec![(NOW, 1.0)]);
    assert!(m.stale.is_empty());
    assert_eq!(
        m.written,
        Written {
            samples: 1,
            histograms: 0,
            exemplars: 0
        }
    );
}

#[test]
fn default_namespace_and_configured_label() {
    let m = one(&[("__name__", "up"), ("job", "node")]);
    assert_eq!(m.points[0].series.namespace(), "node");
    let m = one(&[("__name__", "up")]);
    assert_eq!(m.points[0].series.namespace(), DEFAULT_NAMESPACE);
    let options = MapOptions {
        namespace_label: "service".to_owned(),
        ..MapOptions::default()
    };
    let r = request(vec![ts(
        &[("__name__", "up"), ("job", "node"), ("service", "api")],
        &[(NOW, 1.0)],
    )]);
    let m = map(&r, &mut Streams::new(), NOW, &options);
    assert_eq!(m.points[0].series.namespace(), "api");
    assert_eq!(m.points[0].series.dimension("job"), Some("node"));
}

#[test]
fn empty_label_value_is_no_label() {
    let m = one(&[("__name__", "up"), ("env", ""), ("job", "")]);
    assert!(m.rejected.is_empty());
    assert!(m.points[0].series.dimensions().is_empty());
    assert_eq!(m.points[0].series.namespace(), DEFAULT_NAMESPACE);
}

#[test]
fn missing_name_is_rejected() {
    let m = one(&[("job", "node")]);
    assert!(m.points.is_empty());
    assert_eq!(
        m.rejected[0].rule,
        "timeseries[0].labels: must have a __name__ label (the metric name)"
    );
    assert_eq!(m.written.samples, 0);
}

#[test]
fn thirty_dimensions_pass_thirty_one_are_rejected() {
    let names: Vec<String> = (0..31).map(|i| format!("l{i:02}")).collect();
    let mut labels: Vec<(&str, &str)> = vec![("__name__", "m"), ("job", "j")];
    labels.extend(names.iter().take(30).map(|n| (n.as_str(), "v")));
    let m = one(&labels);
    assert!(m.rejected.is_empty(), "{:?}", m.rejected);
    assert_eq!(m.points[0].series.dimensions().len(), 30);
    labels.push((names[30].as_str(), "v"));
    let m = one(&labels);
    assert!(m.points.is_empty());
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
        assert!(m.points.is_empty(), "{bad:?}");
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
fn other_nans_and_infinities_are_rejected_alone() {
    let r = request(vec![ts(
        &[("__name__", "up")],
        &[(NOW - 2, f64::NAN), (NOW - 1, 2.0), (NOW, f64::INFINITY)],
    )]);
    let m = run(&r);
    assert_eq!(values(&m), vec![(NOW - 1, 2.0)]);
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
    assert_eq!(m.written.samples, 1);
}

#[test]
fn timestamps_follow_the_same_rule_as_otlp() {
    let day = 86_400_000;
    let r = request(vec![ts(
        &[("__name__", "up")],
        &[
            (NOW - 15 * day, 1.0),
            (NOW - 13 * day, 2.0),
            (NOW + 3 * 3_600_000, 3.0),
        ],
    )]);
    let m = run(&r);
    assert_eq!(values(&m), vec![(NOW - 13 * day, 2.0)]);
    assert_eq!(m.rejected.len(), 2);
    assert!(
        m.rejected[0]
            .rule
            .starts_with("timeseries[0].samples[0].timestamp: must be within the past 14 days"),
        "{}",
        m.rejected[0].rule
    );
    assert!(
        m.rejected[1].rule.starts_with(
            "timeseries[0].samples[2].timestamp: must be at most 2 hours in the future"
        )
    );
}

#[test]
fn kinds_by_suffix_and_metadata() {
    let none = HashMap::new();
    let cases = [
        ("http_requests_total", Kind::Counter),
        ("rpc_duration_seconds_count", Kind::Counter),
        ("rpc_duration_seconds_sum", Kind::Counter),
        ("rpc_duration_seconds_bucket", Kind::Counter),
        ("temperature", Kind::Gauge),
        ("total", Kind::Gauge),
    ];
    for (name, k) in cases {
        assert_eq!(kind(name, None, &none), k, "{name}");
    }
    let families: HashMap<&str, MetricType> = [
        ("restarts", MetricType::Counter),
        ("odd_total", MetricType::Gauge),
        ("queue", MetricType::Gaugehistogram),
    ]
    .into_iter()
    .collect();
    assert_eq!(kind("restarts", None, &families), Kind::Counter);
    assert_eq!(kind("odd_total", None, &families), Kind::Gauge);
    assert_eq!(kind("queue_bucket", None, &families), Kind::Gauge);
    // 2.0: the series' own type wins over the suffix.
    assert_eq!(
        kind("odd_total", Some(MetricType::Gauge), &none),
        Kind::Gauge
    );
    assert_eq!(
        kind("restarts", Some(MetricType::Counter), &none),
        Kind::Counter
    );
    assert_eq!(
        kind("rpc_sum", Some(MetricType::Summary), &none),
        Kind::Counter
    );
    assert_eq!(kind("rpc", Some(MetricType::Summary), &none), Kind::Gauge);
    assert_eq!(
        kind("q_bucket", Some(MetricType::Gaugehistogram), &none),
        Kind::Gauge
    );
    assert_eq!(
        kind("x_total", Some(MetricType::Unknown), &none),
        Kind::Counter
    );
    // 1.0 metadata reaches the mapping.
    let mut r = WriteRequest {
        timeseries: vec![ts(
            &[("__name__", "restarts")],
            &[(NOW - 1, 1.0), (NOW, 3.0)],
        )],
        metadata: vec![MetricMetadata {
            r#type: MetricType::Counter as i32,
            metric_family_name: "restarts".to_owned(),
            help: String::new(),
            unit: String::new(),
        }],
    };
    assert_eq!(values(&run(&Request::V1(r.clone()))), vec![(NOW, 2.0)]);
    r.metadata.clear();
    assert_eq!(
        values(&run(&Request::V1(r))),
        vec![(NOW - 1, 1.0), (NOW, 3.0)]
    );
}

#[test]
fn one_bad_series_keeps_the_others() {
    let r = request(vec![
        ts(&[("job", "x")], &[(NOW, 1.0)]),
        ts(&[("__name__", "up")], &[(NOW, 1.0)]),
        ts(&[("__name__", "no_samples")], &[]),
    ]);
    let m = run(&r);
    assert_eq!(m.points.len(), 1);
    assert_eq!(m.rejected.len(), 1);
}

// === Counters ===

fn counter(samples: &[(i64, f64)]) -> Request {
    request(vec![ts(
        &[("__name__", "req_total"), ("job", "api")],
        samples,
    )])
}

fn key(name: &str, namespace: &str) -> SeriesKey {
    SeriesKey::new(namespace, name, vec![])
}

fn sum_stream() -> StreamKey {
    StreamKey {
        series: key("req_total", "api"),
        kind: StreamKind::Sum,
        origin: ORIGIN,
    }
}

#[test]
fn counter_first_sample_records_nothing_then_increases() {
    let mut streams = Streams::new();
    let o = MapOptions::default();
    let m = map(
        &counter(&[(NOW - 30_000, 1_000_000.0)]),
        &mut streams,
        NOW,
        &o,
    );
    assert!(m.points.is_empty(), "{:?}", m.points);
    assert_eq!(m.skipped, 1);
    assert_eq!(m.written.samples, 1, "a first sample is accepted");
    assert_eq!(m.stream_updates.len(), 1);
    let m = map(
        &counter(&[(NOW - 15_000, 1_000_010.0), (NOW, 1_000_015.0)]),
        &mut streams,
        NOW,
        &o,
    );
    assert_eq!(values(&m), vec![(NOW - 15_000, 10.0), (NOW, 5.0)]);
    assert_eq!(m.points[1].point, 1);
    assert_eq!(m.skipped, 0);
    let state = streams.get(&sum_stream()).unwrap();
    assert_eq!(state.totals, Totals::Sum(1_000_015.0));
    assert_eq!(state.time_unix_nano, NOW as u64 * 1_000_000);
}

#[test]
fn counter_reset_counts_from_zero() {
    let m = run(&counter(&[(NOW - 2, 10.0), (NOW - 1, 15.0), (NOW, 3.0)]));
    assert_eq!(values(&m), vec![(NOW - 1, 5.0), (NOW, 3.0)]);
}

#[test]
fn counter_stale_duplicates_are_skipped() {
    let mut streams = Streams::new();
    let o = MapOptions::default();
    let r = counter(&[(NOW - 1, 10.0), (NOW, 12.0)]);
    let first = map(&r, &mut streams, NOW, &o);
    assert_eq!(values(&first), vec![(NOW, 2.0)]);
    // The sender retries the same request: nothing new, nothing rejected.
    let again = map(&r, &mut streams, NOW, &o);
    assert!(again.points.is_empty());
    assert!(again.rejected.is_empty());
    assert_eq!(again.skipped, 2);
    assert_eq!(again.written.samples, 2);
    assert!(again.stream_updates.is_empty());
}

#[test]
fn created_timestamps() {
    let v2_counter = |samples: &[(i64, f64, i64)]| {
        let symbols = ["", "__name__", "req_total", "job", "api"];
        Request::V2(v2::Request {
            symbols: symbols.iter().map(|s| (*s).to_owned()).collect(),
            timeseries: vec![v2::TimeSeries {
                labels_refs: vec![1, 2, 3, 4],
                samples: samples
                    .iter()
                    .map(|&(timestamp, value, start_timestamp)| v2::Sample {
                        value,
                        timestamp,
                        start_timestamp,
                    })
                    .collect(),
                ..v2::TimeSeries::default()
            }],
        })
    };
    let mut streams = Streams::new();
    let o = MapOptions::default();
    // A first sample with a created timestamp counts from zero.
    let m = map(
        &v2_counter(&[(NOW - 100, 7.0, NOW - 1_000)]),
        &mut streams,
        NOW,
        &o,
    );
    assert_eq!(values(&m), vec![(NOW - 100, 7.0)]);
    // The same created timestamp: an ordinary increase.
    let m = map(
        &v2_counter(&[(NOW - 90, 9.0, NOW - 1_000)]),
        &mut streams,
        NOW,
        &o,
    );
    assert_eq!(values(&m), vec![(NOW - 90, 2.0)]);
    // A created timestamp later than the last sample: a restart, counted from zero even
    // though the value went up.
    let m = map(
        &v2_counter(&[(NOW - 50, 20.0, NOW - 60)]),
        &mut streams,
        NOW,
        &o,
    );
    assert_eq!(values(&m), vec![(NOW - 50, 20.0)]);
    // No created timestamp now: the stream keeps its start.
    let m = map(&v2_counter(&[(NOW - 40, 25.0, 0)]), &mut streams, NOW, &o);
    assert_eq!(values(&m), vec![(NOW - 40, 5.0)]);
    assert_eq!(
        streams.get(&sum_stream()).unwrap().start_time_unix_nano,
        (NOW - 60) as u64 * 1_000_000
    );
    // A created timestamp after the sample itself is ignored (and a first sample without a
    // usable one records nothing).
    let mut fresh = Streams::new();
    let m = map(&v2_counter(&[(NOW - 40, 25.0, NOW)]), &mut fresh, NOW, &o);
    assert!(m.points.is_empty());
}

#[test]
fn staleness_marker_ends_the_stream() {
    let mut streams = Streams::new();
    let o = MapOptions::default();
    let m = map(
        &counter(&[(NOW - 3, 5.0), (NOW - 2, 8.0), (NOW - 1, stale())]),
        &mut streams,
        NOW,
        &o,
    );
    assert_eq!(values(&m), vec![(NOW - 2, 3.0)]);
    assert_eq!(m.stale, vec![(key("req_total", "api"), NOW - 1)]);
    assert!(matches!(
        m.stream_updates.last(),
        Some(StreamUpdate::Remove { key }) if *key == sum_stream()
    ));
    assert!(streams.get(&sum_stream()).is_none());
    assert_eq!(m.written.samples, 3);
    // The restarted target: its next sample counts from there, without a spurious increase.
    let m = map(&counter(&[(NOW, 2.0)]), &mut streams, NOW, &o);
    assert!(m.points.is_empty());
    // A gauge's marker is reported too, and a marker alone.
    let r = request(vec![ts(&[("__name__", "up")], &[(NOW, stale())])]);
    let m = run(&r);
    assert_eq!(m.stale, vec![(key("up", DEFAULT_NAMESPACE), NOW)]);
    assert!(m.points.is_empty() && m.rejected.is_empty());
}

#[test]
fn undo_restores_the_state_exactly() {
    let mut streams = Streams::new();
    let o = MapOptions::default();
    map(&counter(&[(NOW - 10, 1.0)]), &mut streams, NOW, &o);
    let before = streams.clone();
    let r = request(vec![
        ts(
            &[("__name__", "req_total"), ("job", "api")],
            &[(NOW - 5, 4.0), (NOW - 4, stale()), (NOW, 1.0)],
        ),
        ts(
            &[("__name__", "other_total")],
            &[(NOW - 5, 4.0), (NOW, 6.0)],
        ),
    ]);
    let m = map(&r, &mut streams, NOW, &o);
    assert_ne!(streams, before);
    let mut replayed = before.clone();
    for u in &m.stream_updates {
        replayed.apply(u);
    }
    assert_eq!(replayed, streams);
    for u in &m.undo {
        streams.apply(u);
    }
    assert_eq!(streams, before);
}

#[test]
fn stream_limit_rejects_new_streams_only() {
    let o = MapOptions {
        max_streams: 1,
        ..MapOptions::default()
    };
    let mut streams = Streams::new();
    let r = request(vec![
        ts(&[("__name__", "a_total")], &[(NOW - 1, 1.0), (NOW, 2.0)]),
        ts(&[("__name__", "b_total")], &[(NOW, 1.0)]),
        ts(&[("__name__", "g")], &[(NOW, 1.0)]),
    ]);
    let m = map(&r, &mut streams, NOW, &o);
    assert_eq!(m.points.len(), 2, "a_total's increase and the gauge");
    assert_eq!(m.rejected.len(), 1);
    assert!(
        m.rejected[0].rule.contains("stream limit"),
        "{}",
        m.rejected[0].rule
    );
    assert_eq!(m.rejected[0].series, "b_total{}");
    assert_eq!(m.written.samples, 3, "the rejected sample is not written");
    // Forgetting idle streams (the caller's job) makes room.
    let later = NOW + 3_600_001;
    streams.expire(later, 3_600_000);
    let r = request(vec![ts(&[("__name__", "b_total")], &[(later, 1.0)])]);
    let m = map(&r, &mut streams, later, &o);
    assert!(m.rejected.is_empty(), "{:?}", m.rejected);
    assert_eq!(streams.len(), 1);
}

// === Classic histograms ===

fn bucket(le: &str, samples: &[(i64, f64)]) -> TimeSeries {
    ts(
        &[
            ("__name__", "rpc_seconds_bucket"),
            ("job", "api"),
            ("le", le),
            ("path", "/"),
        ],
        samples,
    )
}

fn classic(t0: &[f64; 4], t1: &[f64; 4], sum: Option<(f64, f64)>) -> Request {
    let mut series: Vec<TimeSeries> = ["0.1", "1", "10", "+Inf"]
        .iter()
        .enumerate()
        .map(|(i, le)| bucket(le, &[(NOW - 15_000, t0[i]), (NOW, t1[i])]))
        .collect();
    if let Some((s0, s1)) = sum {
        series.push(ts(
            &[
                ("__name__", "rpc_seconds_sum"),
                ("job", "api"),
                ("path", "/"),
            ],
            &[(NOW - 15_000, s0), (NOW, s1)],
        ));
    }
    request(series)
}

fn family() -> SeriesKey {
    SeriesKey::new("api", "rpc_seconds", vec![Dimension::new("path", "/")])
}

#[test]
fn classic_histogram_groups_into_a_distribution() {
    let r = classic(
        &[1.0, 2.0, 3.0, 3.0],
        &[11.0, 102.0, 103.0, 104.0],
        Some((1.0, 150.5)),
    );
    let m = run(&r);
    assert!(m.rejected.is_empty(), "{:?}", m.rejected);
    // The first timestamp sets the baseline; the second records the increase.
    let histograms: Vec<&MappedPoint> = m.points.iter().filter(|p| p.series == family()).collect();
    assert_eq!(histograms.len(), 1);
    let p = histograms[0];
    assert_eq!(p.timestamp_ms, NOW);
    assert_eq!(p.point, 1);
    let MappedData::Distribution {
        count,
        sum,
        values,
        counts,
        ..
    } = &p.data
    else {
        panic!("{p:?}");
    };
    // Increase: 10 in (-inf, 0.1], 90 in (0.1, 1], 0 in (1, 10], 1 above 10.
    assert_eq!(*count, 101);
    assert_eq!(*sum, 149.5);
    assert_eq!(counts, &vec![10, 90, 1]);
    assert_eq!(values[0], 0.1);
    assert!(values[1] > 0.1 && values[1] <= 1.0);
    assert!(values[2] > 10.0);
    // Percentiles land in the right bucket, as for OTLP.
    let mut w = Window::new();
    let counts: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
    w.record_distribution(&thermostat_metrics::Distribution {
        count: *count as f64,
        sum: *sum,
        min: None,
        max: None,
        values,
        counts: &counts,
    });
    let p50 = w.percentile(50.0).unwrap();
    assert!(p50 > 0.1 * 0.99 && p50 <= 1.0 * 1.01, "p50 {p50}");
    let p05 = w.percentile(5.0).unwrap();
    assert!(p05 <= 0.1 * 1.01, "p05 {p05}");
    let p999 = w.percentile(99.9).unwrap();
    assert!(p999 > 10.0, "p99.9 {p999}");
    // _sum stays a counter of its own; the buckets are not stored one by one.
    assert!(
        m.points
            .iter()
            .any(|p| p.series.metric_name() == "rpc_seconds_sum")
    );
    assert!(
        !m.points
            .iter()
            .any(|p| p.series.metric_name() == "rpc_seconds_bucket")
    );
    assert_eq!(m.written.samples, 10);
    assert!(m.stream_updates.iter().any(|u| matches!(
        u,
        StreamUpdate::Set { key, .. } if key.kind == StreamKind::Histogram && key.series == family()
    )));
}

#[test]
fn classic_histogram_without_sum_estimates_it() {
    let m = run(&classic(&[0.0, 0.0, 0.0, 0.0], &[0.0, 2.0, 2.0, 2.0], None));
    let MappedData::Distribution { sum, count, .. } = &m.points[0].data else {
        panic!();
    };
    assert_eq!(*count, 2);
    assert!(*sum > 0.2 && *sum <= 2.0, "{sum}");
}

#[test]
fn split_histogram_falls_back_to_counters() {
    // The +Inf bucket is in another request.
    let r = request(vec![
        bucket("0.1", &[(NOW - 1, 1.0), (NOW, 4.0)]),
        bucket("1", &[(NOW - 1, 2.0), (NOW, 6.0)]),
    ]);
    let m = run(&r);
    assert!(m.rejected.is_empty(), "{:?}", m.rejected);
    let got: Vec<(String, f64)> = m
        .points
        .iter()
        .map(|p| {
            let MappedData::Value(v) = p.data else {
                panic!()
            };
            (
                format!("{}{:?}", p.series.metric_name(), p.series.dimension("le")),
                v,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("rpc_seconds_bucket Some(\"0.1\")".replace(' ', ""), 3.0),
            ("rpc_seconds_bucket Some(\"1\")".replace(' ', ""), 4.0),
        ]
    );
}

#[test]
fn classic_histogram_rules() {
    // An le that is not a number rejects its series.
    let r = request(vec![
        bucket("fast", &[(NOW, 1.0)]),
        bucket("+Inf", &[(NOW, 1.0)]),
    ]);
    let m = run(&r);
    assert_eq!(m.rejected.len(), 1);
    assert_eq!(
        m.rejected[0].rule,
        "timeseries[0].labels[2].value: le must be a number or +Inf, the bucket's upper bound (got \"fast\")"
    );
    assert!(m.rejected[0].series.starts_with("rpc_seconds_bucket{"));
    // Counts that go down as le grows reject the group at that time.
    let m = run(&classic(&[1.0, 2.0, 3.0, 3.0], &[5.0, 4.0, 6.0, 6.0], None));
    assert_eq!(m.rejected.len(), 1, "{:?}", m.rejected);
    assert!(
        m.rejected[0].rule.contains("must not decrease"),
        "{}",
        m.rejected[0].rule
    );
    assert!(
        m.rejected[0]
            .rule
            .starts_with("timeseries[3].samples[1]: the classic histogram \"rpc_seconds\"")
    );
    assert_eq!(m.written.samples, 4);
}

#[test]
fn classic_staleness_forgets_the_histogram_stream() {
    let mut streams = Streams::new();
    let o = MapOptions::default();
    map(
        &classic(&[1.0, 2.0, 3.0, 3.0], &[2.0, 3.0, 4.0, 4.0], None),
        &mut streams,
        NOW,
        &o,
    );
    let hist = StreamKey {
        series: family(),
        kind: StreamKind::Histogram,
        origin: ORIGIN,
    };
    assert!(streams.get(&hist).is_some());
    let r = request(
        ["0.1", "1", "10", "+Inf"]
            .iter()
            .map(|le| bucket(le, &[(NOW + 1, stale())]))
            .collect(),
    );
    let m = map(&r, &mut streams, NOW + 1, &o);
    assert_eq!(m.stale, vec![(family(), NOW + 1)]);
    assert!(streams.get(&hist).is_none());
}

// === Native histograms ===

fn native_series(name: &str, histograms: Vec<Histogram>) -> TimeSeries {
    TimeSeries {
        histograms,
        ..ts(&[("__name__", name)], &[])
    }
}

fn int_histogram(timestamp: i64, count: u64, sum: f64, zero: u64, deltas: Vec<i64>) -> Histogram {
    Histogram {
        count: Some(Count::CountInt(count)),
        sum,
        schema: 0,
        zero_threshold: 1e-128,
        zero_count: Some(ZeroCount::ZeroCountInt(zero)),
        positive_spans: vec![BucketSpan {
            offset: 0,
            length: deltas.len() as u32,
        }],
        positive_deltas: deltas,
        timestamp,
        ..Histogram::default()
    }
}

fn distribution(p: &MappedPoint) -> (u64, f64, Vec<f64>, Vec<u64>) {
    match &p.data {
        MappedData::Distribution {
            count,
            sum,
            values,
            counts,
            ..
        } => (*count, *sum, values.clone(), counts.clone()),
        MappedData::Value(_) => panic!("{p:?}"),
    }
}

#[test]
fn native_integer_histogram_increases() {
    // Buckets 0, 1, 2 at schema 0: (0.5, 1], (1, 2], (2, 4].
    let h0 = int_histogram(NOW - 10, 3, 4.0, 0, vec![1, 0, 0]); // 1, 1, 1
    let h1 = int_histogram(NOW, 9, 16.0, 1, vec![2, 1, 1]); // 2, 3, 4 (+1 zero... but zero 1)
    let h1 = Histogram {
        count: Some(Count::CountInt(10)),
        ..h1
    };
    let m = run(&request(vec![native_series("latency", vec![h0, h1])]));
    assert!(m.rejected.is_empty(), "{:?}", m.rejected);
    assert_eq!(m.points.len(), 1);
    let (count, sum, values, counts) = distribution(&m.points[0]);
    assert_eq!(count, 7);
    assert_eq!(sum, 12.0);
    assert_eq!(counts, vec![1, 1, 2, 3]);
    assert_eq!(values[0], 0.0, "the zero bucket");
    assert!(values[1] > 0.5 && values[1] <= 1.0, "{values:?}");
    assert!(values[2] > 1.0 && values[2] <= 2.0);
    assert!(values[3] > 2.0 && values[3] <= 4.0);
    assert_eq!(m.written.histograms, 2);
    assert_eq!(m.skipped, 1);
    assert!(m.stream_updates.iter().all(|u| matches!(
        u,
        StreamUpdate::Set { key, .. } if key.kind == StreamKind::ExponentialHistogram
    )));
}

#[test]
fn native_float_negative_and_gauge_histograms() {
    // A gauge float histogram with negative buckets, recorded as it is.
    let h = Histogram {
        count: Some(Count::CountFloat(6.0)),
        sum: -3.0,
        schema: 1,
        zero_count: Some(ZeroCount::ZeroCountFloat(1.0)),
        zero_threshold: 0.001,
        negative_spans: vec![BucketSpan {
            offset: 1,
            length: 2,
        }],
        negative_counts: vec![2.0, 1.0],
        positive_spans: vec![
            BucketSpan {
                offset: -1,
                length: 1,
            },
            BucketSpan {
                offset: 1,
                length: 1,
            },
        ],
        positive_counts: vec![1.0, 1.0],
        reset_hint: ResetHint::Gauge as i32,
        timestamp: NOW,
        ..Histogram::default()
    };
    let m = run(&request(vec![native_series("temps", vec![h.clone()])]));
    assert!(m.rejected.is_empty(), "{:?}", m.rejected);
    assert!(
        m.stream_updates.is_empty(),
        "a gauge histogram has no stream"
    );
    let (count, sum, values, counts) = distribution(&m.points[0]);
    assert_eq!((count, sum), (6, -3.0));
    assert_eq!(counts, vec![1, 2, 1, 1, 1]);
    // Schema 1: base √2. Negative bucket 2 is [-2, -√2), bucket 1 [-√2, -1).
    assert!(values[0] < -2f64.sqrt() && values[0] >= -2.0, "{values:?}");
    assert!(values[1] < -1.0 && values[1] >= -(2f64.sqrt()));
    assert_eq!(values[2], 0.0);
    // Positive bucket -1 is (1/2, 1/√2], bucket 1 (1, √2].
    assert!(values[3] > 0.5 && values[3] <= 0.5f64.sqrt());
    assert!(values[4] > 1.0 && values[4] <= 2f64.sqrt());
    // Fractional counts are refused.
    let fractional = Histogram {
        positive_counts: vec![1.5, 0.5],
        ..h
    };
    let m = run(&request(vec![native_series("temps", vec![fractional])]));
    assert_eq!(m.rejected.len(), 1);
    assert!(
        m.rejected[0]
            .rule
            .starts_with("timeseries[0].histograms[0].positive_counts[0]: must be a whole number"),
        "{}",
        m.rejected[0].rule
    );
    assert_eq!(m.written.histograms, 0);
}

#[test]
fn native_custom_buckets_are_explicit() {
    let h = |timestamp, deltas: Vec<i64>, count| Histogram {
        count: Some(Count::CountInt(count)),
        sum: 10.0 * count as f64,
        schema: -53,
        custom_values: vec![1.0, 5.0, 25.0],
        positive_spans: vec![BucketSpan {
            offset: 1,
            length: 3,
        }],
        positive_deltas: deltas,
        start_timestamp: NOW - 100_000,
        timestamp,
        ..Histogram::default()
    };
    // Buckets 1..=3: (1, 5], (5, 25], (25, +Inf); with a start timestamp the first counts.
    let r = Request::V2(v2::Request {
        symbols: vec![String::new(), "__name__".into(), "size_bytes".into()],
        timeseries: vec![v2::TimeSeries {
            labels_refs: vec![1, 2],
            histograms: vec![h(NOW, vec![2, 1, -3], 5)],
            ..v2::TimeSeries::default()
        }],
    });
    let mut streams = Streams::new();
    let m = map(&r, &mut streams, NOW, &MapOptions::default());
    assert!(m.rejected.is_empty(), "{:?}", m.rejected);
    let (count, _, values, counts) = distribution(&m.points[0]);
    assert_eq!(count, 5);
    assert_eq!(counts, vec![2, 3]);
    assert_eq!(values[0], 3.0);
    assert_eq!(values[1], 15.0);
    let stream = streams.iter().next().unwrap().0.clone();
    assert_eq!(stream.kind, StreamKind::Histogram);
    // A bucket beyond the custom bounds is refused.
    let bad = Request::V2(v2::Request {
        symbols: vec![String::new(), "__name__".into(), "size_bytes".into()],
        timeseries: vec![v2::TimeSeries {
            labels_refs: vec![1, 2],
            histograms: vec![Histogram {
                positive_spans: vec![BucketSpan {
                    offset: 3,
                    length: 2,
                }],
                positive_deltas: vec![1, 0],
                count: Some(Count::CountInt(2)),
                ..h(NOW, vec![], 2)
            }],
            ..v2::TimeSeries::default()
        }],
    });
    let m = run(&bad);
    assert!(
        m.rejected[0]
            .rule
            .contains("is not one of the 4 custom buckets"),
        "{}",
        m.rejected[0].rule
    );
}

#[test]
fn native_staleness_and_reset_hint() {
    let mut streams = Streams::new();
    let o = MapOptions::default();
    let series = |hs| request(vec![native_series("latency", hs)]);
    map(
        &series(vec![int_histogram(NOW - 10, 2, 2.0, 0, vec![2])]),
        &mut streams,
        NOW,
        &o,
    );
    assert_eq!(streams.len(), 1);
    // Reset hint YES counts from zero although the count went up.
    let yes = Histogram {
        reset_hint: ResetHint::Yes as i32,
        ..int_histogram(NOW - 5, 3, 3.0, 0, vec![3])
    };
    let m = map(&series(vec![yes]), &mut streams, NOW, &o);
    assert_eq!(distribution(&m.points[0]).0, 3);
    let marker = Histogram {
        sum: stale(),
        timestamp: NOW,
        ..Histogram::default()
    };
    let m = map(&series(vec![marker]), &mut streams, NOW, &o);
    assert_eq!(m.stale, vec![(key("latency", DEFAULT_NAMESPACE), NOW)]);
    assert!(streams.is_empty());
    assert_eq!(m.written.histograms, 1);
}

// === Remote write 2.0 ===

#[test]
fn v2_symbols_metadata_and_bad_refs() {
    let symbols = ["", "__name__", "odd_total", "job", "api", "instance", "a:1"];
    let series = |labels_refs: Vec<u32>, t: v2::MetricType| v2::TimeSeries {
        labels_refs,
        samples: vec![
            v2::Sample {
                value: 5.0,
                timestamp: NOW - 1,
                start_timestamp: 0,
            },
            v2::Sample {
                value: 3.0,
                timestamp: NOW,
                start_timestamp: 0,
            },
        ],
        metadata: Some(v2::Metadata {
            r#type: t as i32,
            help_ref: 0,
            unit_ref: 0,
        }),
        ..v2::TimeSeries::default()
    };
    let r = Request::V2(v2::Request {
        symbols: symbols.iter().map(|s| (*s).to_owned()).collect(),
        timeseries: vec![
            // The series' own type (gauge) wins over the suffix.
            series(vec![1, 2, 3, 4, 5, 6], v2::MetricType::Gauge),
            series(vec![1, 2, 3], v2::MetricType::Unspecified),
            series(vec![1, 2, 3, 99], v2::MetricType::Unspecified),
        ],
    });
    let m = run(&r);
    assert_eq!(values(&m), vec![(NOW - 1, 5.0), (NOW, 3.0)]);
    let p = &m.points[0];
    assert_eq!(p.series.namespace(), "api");
    assert_eq!(p.series.dimension("instance"), Some("a:1"));
    assert_eq!(m.rejected.len(), 2);
    assert_eq!(
        m.rejected[0].rule,
        "timeseries[1].labels_refs: must hold pairs of references, a name's and a value's (got 3)"
    );
    assert_eq!(m.rejected[0].series, "odd_total{,…}");
    assert_eq!(
        m.rejected[1].rule,
        "timeseries[2].labels_refs[3]: must index the 7 symbols (got 99)"
    );
    assert_eq!(
        m.written,
        Written {
            samples: 2,
            histograms: 0,
            exemplars: 0
        }
    );
}
