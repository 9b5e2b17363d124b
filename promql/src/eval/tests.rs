use std::sync::Arc;

use thermostat_metrics::store::Resolution;
use thermostat_metrics::{Dimension, Observation, Query, Sample, Statistic, Store, Unit};

use super::*;
use crate::source::StoreSource;

/// 2024-01-01T00:00:00Z.
const T0: i64 = 1_704_067_200_000;
const NOW: i64 = T0 + 3_600_000;

fn key(ns: &str, name: &str, host: &str) -> SeriesKey {
    SeriesKey::new(ns, name, vec![Dimension::new("Host", host)])
}

/// A store with `x` (two hosts, one value a minute in App, one in Other) and `c` (a counter's
/// increases, 1 a minute).
fn store() -> Arc<Store> {
    let store = Store::default();
    let mut batch = Vec::new();
    for minute in 0..60 {
        let ts = Timestamp(T0 + minute * 60_000 + 1_000);
        let obs = |v: f64| Observation {
            timestamp: ts,
            unit: Unit::None,
            resolution: Resolution::Standard,
            sample: Sample::Value(v),
        };
        batch.push((key("App", "x", "a"), obs(minute as f64)));
        batch.push((key("App", "x", "b"), obs(2.0 * minute as f64)));
        batch.push((key("Other", "x", "a"), obs(100.0)));
        batch.push((key("App", "c", "a"), obs(1.0)));
        for v in 0..10 {
            batch.push((key("App", "lat", "a"), obs(f64::from(v))));
        }
    }
    store.record_batch(&batch);
    Arc::new(store)
}

fn source(scope: impl Fn(&str) -> bool + Send + Sync + 'static) -> StoreSource {
    StoreSource::new(store(), Timestamp(NOW), Arc::new(scope))
}

fn run(src: &StoreSource, q: &str, range: Range) -> Result<Evaluation> {
    let plan = Plan::try_new(q)?;
    prepare(plan, src, range)?.evaluate(src)
}

fn instant(q: &str, t: i64) -> Vec<(Labels, f64)> {
    let src = source(|_| true);
    match run(&src, q, Range::instant(Timestamp(t))).unwrap().value {
        Value::Vector(v) => v
            .into_iter()
            .filter_map(|s| s.points[0].map(|p| (s.labels, p)))
            .collect(),
        Value::Scalar(s) => vec![(Vec::new(), s[0])],
    }
}

fn one(q: &str, t: i64) -> f64 {
    let r = instant(q, t);
    assert_eq!(r.len(), 1, "{q}: {r:?}");
    r[0].1
}

fn native(k: SeriesKey, stat: &str, start: i64, period: i64) -> f64 {
    let q = Query {
        key: k,
        unit: None,
        start: Timestamp(start),
        end: Timestamp(start + period),
        period: Period::try_from_secs(period / 1000).unwrap(),
        statistics: vec![stat.parse::<Statistic>().unwrap()],
    };
    store().query(&q, Timestamp(NOW)).unwrap()[0].values[0].unwrap()
}

#[test]
fn an_instant_selector_reads_the_newest_complete_period() {
    // At T0 + 10m30s, the newest minute that ended is [T0 + 9m, T0 + 10m): value 9.
    let t = T0 + 10 * 60_000 + 30_000;
    let r = instant(r#"x{namespace="App", Host="a"}"#, t);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].1, 9.0);
    assert_eq!(
        r[0].1,
        native(key("App", "x", "a"), "Average", T0 + 9 * 60_000, 60_000)
    );
    assert_eq!(
        r[0].0,
        vec![
            ("Host".to_owned(), "a".to_owned()),
            ("__name__".to_owned(), "x".to_owned()),
            ("namespace".to_owned(), "App".to_owned()),
        ]
    );
    // Statistics by the `stat` pseudo-label.
    assert_eq!(one(r#"x{namespace="App", Host="b", stat="Sum"}"#, t), 18.0);
    assert_eq!(
        one(r#"x{namespace="App", Host="b", stat="SampleCount"}"#, t),
        1.0
    );
    assert_eq!(
        one(r#"lat{stat="p50"}"#, t),
        native(key("App", "lat", "a"), "p50", T0 + 9 * 60_000, 60_000)
    );
    assert_eq!(one(r#"lat{stat="Maximum"}"#, t), 9.0);
    assert_eq!(one(r#"lat{unit="None", stat="Minimum"}"#, t), 0.0);
    assert!(instant(r#"lat{unit="Bytes"}"#, t).is_empty());
}

#[test]
fn the_look_back_is_five_minutes() {
    // The last period ends at T0 + 60m; it is seen until T0 + 65m (exclusive).
    assert_eq!(
        one(r#"x{namespace="App",Host="a"}"#, T0 + 64 * 60_000),
        59.0
    );
    assert!(instant(r#"x{namespace="App",Host="a"}"#, T0 + 65 * 60_000).is_empty());
    // Before the first period ends there is nothing.
    assert!(instant("x", T0 + 30_000).is_empty());
}

#[test]
fn matchers_select_series() {
    let t = T0 + 10 * 60_000;
    assert_eq!(instant("x", t).len(), 3);
    assert_eq!(instant(r#"x{Host=~"a|b", namespace!="Other"}"#, t).len(), 2);
    assert_eq!(instant(r#"x{Host!~"a"}"#, t).len(), 1);
    assert_eq!(instant(r#"{__name__=~"x|c", namespace="App"}"#, t).len(), 3);
    assert_eq!(instant(r#"x{Nope=""}"#, t).len(), 3);
    assert_eq!(instant(r#"x{Nope="1"}"#, t).len(), 0);
}

#[test]
fn rate_and_increase_sum_the_stored_increases() {
    let t = T0 + 30 * 60_000;
    // Five minutes end in (t − 5m, t]: 5 increases of 1.
    assert_eq!(one("increase(c[5m])", t), 5.0);
    assert_eq!(one("rate(c[5m])", t), 5.0 / 300.0);
    assert_eq!(one("increase(c{stat=\"Sum\"}[1h])", T0 + 60 * 60_000), 60.0);
    let r = instant("increase(c[5m])", t);
    assert!(r[0].0.iter().all(|(n, _)| n != "__name__"), "{r:?}");
}

#[test]
fn aggregations_group_by_and_without() {
    let t = T0 + 10 * 60_000 + 1;
    assert_eq!(one(r#"sum(x{namespace="App"})"#, t), 9.0 + 18.0);
    assert_eq!(one(r#"avg(x{namespace="App"})"#, t), 13.5);
    assert_eq!(one(r#"min(x{namespace="App"})"#, t), 9.0);
    assert_eq!(one(r#"max(x{namespace="App"})"#, t), 18.0);
    assert_eq!(one("count(x)", t), 3.0);
    let by = instant("sum by (namespace) (x)", t);
    assert_eq!(by.len(), 2);
    assert_eq!(by[0], (vec![("namespace".into(), "App".into())], 27.0));
    assert_eq!(by[1], (vec![("namespace".into(), "Other".into())], 100.0));
    let without = instant("max without (Host) (x)", t);
    assert_eq!(without.len(), 2);
    assert_eq!(without[0].1, 18.0);
}

#[test]
fn arithmetic_and_comparisons_with_scalars() {
    let t = T0 + 10 * 60_000;
    assert_eq!(one("1 + 2 * 3", t), 7.0);
    assert_eq!(one("2 ^ 3 ^ 2", t), 512.0);
    assert_eq!(one("-2 ^ 2", t), -4.0);
    assert_eq!(one("7 % 4", t), 3.0);
    assert_eq!(one("1 == bool 1", t), 1.0);
    assert!(one("0 / 0", t).is_nan());
    let sel = r#"x{namespace="App",Host="a"}"#;
    assert_eq!(one(&format!("{sel} * 2"), t), 18.0);
    assert_eq!(one(&format!("100 - {sel}"), t), 91.0);
    assert_eq!(one(&format!("-{sel}"), t), -9.0);
    // Comparisons filter, keeping the vector's value and name; `bool` answers 0 or 1.
    let kept = instant(&format!("{sel} > 5"), t);
    assert_eq!(kept[0].1, 9.0);
    assert!(kept[0].0.iter().any(|(n, _)| n == "__name__"));
    assert!(instant(&format!("{sel} > 50"), t).is_empty());
    assert_eq!(one(&format!("5 < {sel}"), t), 9.0);
    assert_eq!(one(&format!("{sel} > bool 50"), t), 0.0);
    assert_eq!(instant(&format!("{sel} * 2"), t)[0].0.len(), 2);
}

#[test]
fn vectors_match_one_to_one() {
    let t = T0 + 10 * 60_000;
    // x / x: every series with itself.
    let r = instant("x / x", t);
    assert_eq!(r.len(), 3);
    assert!(r.iter().all(|(_, v)| *v == 1.0));
    // c and x of App/a match on Host and namespace.
    assert_eq!(one(r#"x{namespace="App",Host="a"} + c"#, t), 10.0);
    assert_eq!(one(r#"x{Host="b"} - on (namespace) c"#, t), 17.0);
    // Two series of one side in a match group: refused.
    let src = source(|_| true);
    let e = run(&src, "x + on (Host) c", Range::instant(Timestamp(t))).unwrap_err();
    assert!(matches!(e, Error::Execution(_)), "{e}");
}

#[test]
fn histogram_quantile_reads_the_percentile_of_the_range() {
    let t = T0 + 30 * 60_000;
    let want = native(key("App", "lat", "a"), "p90", t - 300_000, 300_000);
    assert_eq!(
        one("histogram_quantile(0.9, rate(lat_bucket[5m]))", t),
        want
    );
    assert_eq!(one("histogram_quantile(0.9, rate(lat[5m]))", t), want);
    assert_eq!(
        one(
            "histogram_quantile(0.9, sum by (le) (rate(lat_bucket[5m])))",
            t
        ),
        want
    );
    assert_eq!(
        one("histogram_quantile(1.5, rate(lat[5m]))", t),
        f64::INFINITY
    );
    assert_eq!(
        one("histogram_quantile(-1, rate(lat[5m]))", t),
        f64::NEG_INFINITY
    );
    // Merging the distributions of two series: refused, naming both.
    let src = source(|_| true);
    let e = run(
        &src,
        "histogram_quantile(0.9, sum by (le) (rate(x[5m])))",
        Range::instant(Timestamp(t)),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Execution(_)) && e.to_string().contains("merge"),
        "{e}"
    );
    // By a label that tells them apart: fine.
    let r = instant(
        "histogram_quantile(0.5, sum by (le, Host, namespace) (rate(x[5m])))",
        t,
    );
    assert_eq!(r.len(), 3);
}

#[test]
fn range_queries_step_through_periods() {
    let src = source(|_| true);
    let range = Range::try_new(Timestamp(T0 + 600_000), Timestamp(T0 + 1_200_000), 60_000).unwrap();
    let e = run(&src, r#"x{namespace="App",Host="a"}"#, range).unwrap();
    assert_eq!(e.times.len(), 11);
    let Value::Vector(v) = e.value else { panic!() };
    // The point at t is the minute ending at t: minute (t − T0)/60s − 1.
    let got: Vec<f64> = v[0].points.iter().map(|p| p.unwrap()).collect();
    let want: Vec<f64> = (9..=19).map(f64::from).collect();
    assert_eq!(got, want);
    // A 2-minute step reads 2-minute periods.
    let range =
        Range::try_new(Timestamp(T0 + 600_000), Timestamp(T0 + 1_200_000), 120_000).unwrap();
    let e = run(&src, r#"x{namespace="App",Host="a", stat="Sum"}"#, range).unwrap();
    let Value::Vector(v) = e.value else { panic!() };
    assert_eq!(v[0].points[0], Some(8.0 + 9.0));
    let e = run(&src, "increase(c[10m])", range).unwrap();
    let Value::Vector(v) = e.value else { panic!() };
    assert!(v[0].points.iter().all(|p| *p == Some(10.0)), "{v:?}");
}

#[test]
fn a_scope_hides_other_namespaces() {
    let src = source(|ns| ns == "App");
    let e = run(&src, "count(x)", Range::instant(Timestamp(T0 + 600_000))).unwrap();
    let Value::Vector(v) = e.value else { panic!() };
    assert_eq!(v[0].points[0], Some(2.0));
    let (keys, cut) = matching_series(&src, &[], 100);
    assert!(!cut && keys.iter().all(|k| k.namespace() == "App"));
    assert_eq!(label_values(&keys, "namespace"), ["App"]);
    assert_eq!(label_names(&keys), ["Host", "__name__", "namespace"]);
    let (keys, cut) = matching_series(&src, &[], 1);
    assert!(cut && keys.len() == 1);
}

#[test]
fn ended_series_are_not_seen_past_their_end() {
    struct Ended(StoreSource);
    impl Source for Ended {
        fn series(&self, ns: Option<&str>, name: Option<&str>) -> Vec<SeriesKey> {
            self.0.series(ns, name)
        }
        fn statistics(
            &self,
            key: &SeriesKey,
            unit: Option<thermostat_metrics::Unit>,
            s: &Statistic,
            start: Timestamp,
            end: Timestamp,
            p: Period,
        ) -> Result<Vec<crate::source::Bucket>> {
            self.0.statistics(key, unit, s, start, end, p)
        }
        fn ended_at(&self, _: &SeriesKey) -> Option<Timestamp> {
            Some(Timestamp(T0 + 10 * 60_000 + 30_000))
        }
    }
    let src = Ended(source(|_| true));
    let q = r#"x{namespace="App",Host="a"}"#;
    let at = |t: i64| {
        let plan = Plan::try_new(q).unwrap();
        let e = prepare(plan, &src, Range::instant(Timestamp(t)))
            .unwrap()
            .evaluate(&src)
            .unwrap();
        match e.value {
            Value::Vector(v) => v.first().and_then(|s| s.points[0]),
            Value::Scalar(_) => None,
        }
    };
    assert_eq!(at(T0 + 10 * 60_000 + 20_000), Some(9.0));
    assert_eq!(at(T0 + 10 * 60_000 + 40_000), None);
    // A period that starts after the end is seen again.
    assert_eq!(at(T0 + 12 * 60_000), Some(11.0));
}

#[test]
fn costs_and_points_are_bounded() {
    let e = Range::try_new(Timestamp(0), Timestamp(11_000_000), 1_000).unwrap_err();
    assert!(
        matches!(e, Error::Limit(_)) && e.to_string().contains("11000"),
        "{e}"
    );
    assert!(Range::try_new(Timestamp(0), Timestamp(10_999_000), 1_000).is_ok());
    assert!(Range::try_new(Timestamp(10), Timestamp(0), 1_000).is_err());
    assert!(Range::try_new(Timestamp(0), Timestamp(10), 0).is_err());
    let src = source(|_| true);
    let plan = Plan::try_new("x").unwrap();
    let p = prepare(plan, &src, Range::instant(Timestamp(NOW))).unwrap();
    // 3 series × (5 minutes of look-back + 1) periods.
    assert_eq!(p.cost(), 3 * 6);
}
