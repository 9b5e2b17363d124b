//! Table-driven tests of reference §3.3–§3.8 and §7.3/§7.4/§7.14, plus properties.

use super::*;
use crate::model::{LowSampleCount, TreatMissingData as T};
use proptest::prelude::*;
use thermostat_metrics::{Observation, Resolution, Sample, Store};

/// An alarm from YAML fields (indented by four spaces inside one `alarms:` entry).
pub(crate) fn alarm(fields: &str) -> Alarm {
    let text = format!("alarms:\n  - name: t\n    namespace: App\n    metric_name: M\n{fields}");
    let set =
        crate::validate::validate(&[("t.yaml", text.as_str())]).unwrap_or_else(|e| panic!("{e}"));
    set.alarms[0].clone()
}

fn slots(s: &str) -> Vec<Option<bool>> {
    s.split_whitespace()
        .map(|c| match c {
            "X" => Some(true),
            "0" => Some(false),
            _ => None,
        })
        .collect()
}

use Decision::{Alarm as A, InsufficientData as I, Ok as O, Retain as R};

#[test]
fn missing_data_tables() {
    // (datapoints oldest→newest, N, M, [missing, ignore, breaching, notBreaching])
    let rows: &[(&str, usize, usize, [Decision; 4])] = &[
        // §3.5.3 Table 1 (N = 3, M = 3), row 1..5
        ("0 - X - X", 3, 3, [O, O, O, O]),
        ("0 - - - -", 3, 3, [O, O, O, O]),
        ("- - - - -", 3, 3, [I, R, A, O]),
        ("0 X X - X", 3, 3, [A, A, A, A]),
        ("- - X - -", 3, 3, [A, R, A, O]),
        // §3.5.3 Table 2 (N = 3, M = 2), row 1..5
        ("0 - X - X", 3, 2, [A, A, A, A]),
        ("0 0 X 0 X", 3, 2, [A, A, A, A]),
        ("0 - X - -", 3, 2, [O, O, A, O]),
        ("- - - - 0", 3, 2, [O, O, A, O]),
        ("- - - X -", 3, 2, [A, R, A, O]),
        // §7.3 minutes 1 and 2 (N = M = 3): too recent for the premature rule
        ("- - - - X", 3, 3, [I, R, A, O]),
        ("- - - X X", 3, 3, [I, R, A, O]),
        // §7.3 with M = 2: one recent breach is not enough, two are
        ("- - - - X", 3, 2, [I, R, A, O]),
        ("- - - X X", 3, 2, [A, A, A, A]),
        // §8 item 1: ≥ N real points → the N newest real points, no fill
        ("X - 0 - 0", 2, 1, [O, O, O, O]),
        ("X X - 0 -", 3, 3, [O, O, O, O]),
    ];
    let modes = [T::Missing, T::Ignore, T::Breaching, T::NotBreaching];
    for (pts, n, m, want) in rows {
        for (mode, want) in modes.iter().zip(want) {
            assert_eq!(
                decide(&slots(pts), *n, *m, *mode),
                *want,
                "{pts} N={n} M={m} {mode}"
            );
        }
    }
}

#[test]
fn selection_uses_newest_real_points_or_exact_fills() {
    // §3.5.2 rules 1–3 and §8 items 1–2.
    assert_eq!(
        select(&slots("X - 0 X 0"), 3),
        Selection {
            real: vec![2, 3, 4],
            fills: vec![]
        }
    );
    assert_eq!(
        select(&slots("X - 0 - 0"), 3),
        Selection {
            real: vec![0, 2, 4],
            fills: vec![]
        }
    );
    assert_eq!(
        select(&slots("0 - - - X"), 3),
        Selection {
            real: vec![0, 4],
            fills: vec![3]
        }
    );
}

#[test]
fn low_sample_minimums() {
    // §7.4, one row each.
    for (stat, min) in [
        ("p99", 1000.0),
        ("p99.9", 10000.0),
        ("p95", 200.0),
        ("p90", 100.0),
        ("p50", 20.0),
        ("p25", 40.0),
        ("p10", 100.0),
    ] {
        let s: Statistic = stat.parse().unwrap();
        assert_eq!(min_samples(&s), Some(min), "{stat}");
    }
    assert_eq!(min_samples(&Statistic::Average), None);
    // The low-sample rule is CloudWatch's for percentiles only (§3.6): other extended
    // statistics have no minimum.
    for other in ["tm99", "IQM", "TM(10%:90%)", "PR(:300)", "tc90"] {
        assert_eq!(min_samples(&other.parse().unwrap()), None, "{other}");
    }
    assert_eq!(min_samples(&"p100".parse().unwrap()), None);
}

fn record(store: &Store, key: &SeriesKey, at_ms: i64, v: f64, res: Resolution) {
    store.record_batch(&[(
        key.clone(),
        Observation {
            timestamp: Timestamp(at_ms),
            unit: Unit::None,
            resolution: res,
            sample: Sample::Value(v),
        },
    )]);
}

/// Runs `alarm` over per-minute values (value k covers minute k, starting at minute 1),
/// evaluating at the end of each minute; returns the states.
fn run_minutes(a: &Alarm, values: &[Option<f64>]) -> Vec<StateValue> {
    let store = Store::new(1);
    let key = series_key(a);
    for (k, v) in values.iter().enumerate() {
        if let Some(v) = v {
            record(
                &store,
                &key,
                k as i64 * 60_000 + 30_000,
                *v,
                Resolution::Standard,
            );
        }
    }
    let mut st = AlarmState::initial(Timestamp(0));
    let mut out = Vec::new();
    for k in 1..=values.len() {
        let now = Timestamp(k as i64 * 60_000);
        let dps = store.query(&query(a, key.clone(), now), now).unwrap();
        st = evaluate(a, &st, &dps, now).state;
        out.push(st.value);
    }
    out
}

#[test]
fn m_of_n_over_time() {
    use StateValue::{Alarm as AL, InsufficientData as ID, Ok as OK};
    let values: Vec<Option<f64>> = [4., 4., 4., 4., 4., 2., 2., 2., 4., 2.]
        .iter()
        .map(|v| Some(*v))
        .collect();
    let base = "    statistic: Average\n    period_seconds: 60\n    threshold: 3\n    comparison_operator: GreaterThanThreshold\n    evaluation_periods: 3\n";
    // §7.3, N = M = 3: minutes 1..10.
    let a = alarm(base);
    assert_eq!(
        run_minutes(&a, &values),
        vec![ID, ID, AL, AL, AL, OK, OK, OK, OK, OK]
    );
    // §7.3, N = 3, M = 2.
    let a = alarm(&format!("{base}    datapoints_to_alarm: 2\n"));
    assert_eq!(
        run_minutes(&a, &values),
        vec![ID, AL, AL, AL, AL, AL, OK, OK, OK, OK]
    );
}

#[test]
fn evaluation_delay_shifts_the_window() {
    // Extension: evaluation_delay_seconds = 60 evaluates at T the periods ending at T − 60 s.
    let a = alarm(
        "    statistic: Maximum\n    period_seconds: 60\n    threshold: 3\n    comparison_operator: GreaterThanThreshold\n    evaluation_periods: 1\n    evaluation_delay_seconds: 60\n",
    );
    assert_eq!(window_end(&a, Timestamp(300_000)), Timestamp(240_000));
    let states = run_minutes(&a, &[Some(1.0), Some(9.0), Some(1.0)]);
    use StateValue::*;
    assert_eq!(states, vec![InsufficientData, Ok, Alarm]);
}

#[test]
fn high_resolution_ticks_and_windows() {
    // §3.3: 10/20/30-s periods are evaluated every 10 s; periods aligned to their length.
    let a = alarm(
        "    statistic: Sum\n    period_seconds: 20\n    threshold: 1\n    comparison_operator: GreaterThanThreshold\n    evaluation_periods: 1\n",
    );
    assert!(is_tick(&a, Timestamp(10_000)));
    assert!(!is_tick(&a, Timestamp(15_000)));
    assert_eq!(window_end(&a, Timestamp(50_000)), Timestamp(40_000));
    let b = alarm(
        "    statistic: Sum\n    period_seconds: 300\n    threshold: 1\n    comparison_operator: GreaterThanThreshold\n    evaluation_periods: 1\n",
    );
    // §3.3: a 300-s period slides with the minute (evaluated at 00:06 → [00:01, 00:06)).
    let p = plan(&b, Timestamp(360_000));
    assert_eq!(p.end, Timestamp(360_000));
    assert_eq!(p.start, Timestamp(360_000 - 3 * 300_000));
    assert!(!is_tick(&b, Timestamp(370_000)));
}

#[test]
fn hysteresis_with_ok_threshold() {
    // Extension: in ALARM a point must fall to ok_threshold (60) to count as recovered.
    let a = alarm(
        "    statistic: Average\n    period_seconds: 60\n    threshold: 70\n    ok_threshold: 60\n    comparison_operator: GreaterThanThreshold\n    evaluation_periods: 1\n",
    );
    let values = [Some(75.0), Some(65.0), Some(59.0), Some(65.0)];
    use StateValue::*;
    assert_eq!(run_minutes(&a, &values), vec![Alarm, Alarm, Ok, Ok]);
}

fn dp(ts_ms: i64, v: f64, n: f64) -> Datapoint {
    Datapoint {
        timestamp: Timestamp(ts_ms),
        unit: Unit::None,
        sample_count: n,
        values: vec![Some(v)],
    }
}

#[test]
fn low_sample_percentiles_keep_the_state_only_with_ignore() {
    // §3.6: p99 needs 1000 samples; with ignore the state does not change.
    let fields = "    statistic: p99\n    period_seconds: 60\n    threshold: 100\n    comparison_operator: GreaterThanThreshold\n    evaluation_periods: 1\n";
    let now = Timestamp(120_000);
    let st = AlarmState::initial(Timestamp(0));
    let ign = alarm(&format!(
        "{fields}    evaluate_low_sample_count_percentile: ignore\n"
    ));
    assert_eq!(
        ign.evaluate_low_sample_count_percentile,
        LowSampleCount::Ignore
    );
    let e = evaluate(&ign, &st, &[dp(60_000, 500.0, 999.0)], now);
    assert_eq!(e.state.value, StateValue::InsufficientData);
    let e = evaluate(&ign, &st, &[dp(60_000, 500.0, 1000.0)], now);
    assert_eq!(e.state.value, StateValue::Alarm);
    let ev = alarm(fields);
    let e = evaluate(&ev, &st, &[dp(60_000, 500.0, 10.0)], now);
    assert_eq!(e.state.value, StateValue::Alarm);
}

#[test]
fn reason_strings() {
    let t = |s: &str| crate::timefmt::parse_rfc3339(s).unwrap().as_millis();
    // §7.14 row 1: N = 1, M unset, >=.
    let a = alarm(
        "    statistic: Maximum\n    period_seconds: 60\n    threshold: 3\n    comparison_operator: GreaterThanOrEqualToThreshold\n    evaluation_periods: 1\n",
    );
    let at = t("2026-03-03T01:35:00Z");
    let e = evaluate(
        &a,
        &AlarmState::initial(Timestamp(0)),
        &[dp(at, 6.0, 1.0)],
        Timestamp(at + 60_000),
    );
    assert_eq!(
        e.transitions[0].reason,
        "Threshold Crossed: 1 datapoint [6.0 (03/03/26 01:35:00)] was greater than or equal to the threshold (3.0)."
    );
    // §7.14 row 2: N = 1, M = 1 set.
    let a = alarm(
        "    statistic: Average\n    period_seconds: 60\n    threshold: 50\n    comparison_operator: GreaterThanThreshold\n    evaluation_periods: 1\n    datapoints_to_alarm: 1\n",
    );
    let at = t("2019-10-02T16:59:00Z");
    let e = evaluate(
        &a,
        &AlarmState::initial(Timestamp(0)),
        &[dp(at, 99.50160229693434, 1.0)],
        Timestamp(at + 60_000),
    );
    assert_eq!(
        e.transitions[0].reason,
        "Threshold Crossed: 1 out of the last 1 datapoints [99.50160229693434 (02/10/19 16:59:00)] was greater than the threshold (50.0) (minimum 1 datapoint for OK -> ALARM transition)."
    );
    // §7.14 row 3: N = 20, M = 1, one real point, 19 filled notBreaching.
    let a = alarm(
        "    statistic: Sum\n    period_seconds: 60\n    threshold: 1\n    comparison_operator: GreaterThanOrEqualToThreshold\n    evaluation_periods: 20\n    datapoints_to_alarm: 1\n    treat_missing_data: notBreaching\n",
    );
    let at = t("2024-03-16T12:15:00Z");
    let e = evaluate(
        &a,
        &AlarmState::initial(Timestamp(0)),
        &[dp(at, 613.0, 1.0)],
        Timestamp(at + 60_000),
    );
    assert_eq!(
        e.transitions[0].reason,
        "Threshold Crossed: 1 out of the last 20 datapoints [613.0 (16/03/24 12:15:00)] was greater than or equal to the threshold (1.0) and 19 missing datapoints were treated as [NonBreaching] (minimum 1 datapoint for OK -> ALARM transition)."
    );
    // §7.14 row 4: N = 2, all missing, breaching.
    let a = alarm(
        "    statistic: Sum\n    period_seconds: 60\n    threshold: 1\n    comparison_operator: GreaterThanThreshold\n    evaluation_periods: 2\n    treat_missing_data: breaching\n",
    );
    let e = evaluate(
        &a,
        &AlarmState::initial(Timestamp(0)),
        &[],
        Timestamp(600_000),
    );
    assert_eq!(
        e.transitions[0].reason,
        "Threshold Crossed: no datapoints were received for 2 periods and 2 missing datapoints were treated as [Breaching]."
    );
    // §3.7 INSUFFICIENT_DATA template.
    let a = alarm(
        "    statistic: Sum\n    period_seconds: 60\n    threshold: 1\n    comparison_operator: GreaterThanThreshold\n    evaluation_periods: 1\n",
    );
    let ok = AlarmState::with_value(StateValue::Ok, "x", Timestamp(0));
    let e = evaluate(&a, &ok, &[], Timestamp(600_000));
    assert_eq!(
        e.transitions[0].reason,
        "Insufficient Data: 1 datapoint was unknown."
    );
    // ALARM -> OK with M set names N − M + 1.
    let a = alarm(
        "    statistic: Sum\n    period_seconds: 60\n    threshold: 5\n    comparison_operator: GreaterThanThreshold\n    evaluation_periods: 3\n    datapoints_to_alarm: 3\n",
    );
    let al = AlarmState::with_value(StateValue::Alarm, "x", Timestamp(0));
    let e = evaluate(
        &a,
        &al,
        &[dp(0, 9.0, 1.0), dp(60_000, 9.0, 1.0), dp(120_000, 1.0, 1.0)],
        Timestamp(180_000),
    );
    assert_eq!(
        e.transitions[0].reason,
        "Threshold Crossed: 1 out of the last 3 datapoints [1.0 (01/01/70 00:02:00)] was not greater than the threshold (5.0) (minimum 1 datapoint for ALARM -> OK transition)."
    );
}

#[test]
fn reason_data_json() {
    // §3.7: keys in CloudWatch's order; recentDatapoints oldest first.
    let a = alarm(
        "    statistic: Average\n    period_seconds: 300\n    threshold: 90\n    comparison_operator: GreaterThanThreshold\n    evaluation_periods: 1\n",
    );
    let e = evaluate(
        &a,
        &AlarmState::initial(Timestamp(0)),
        &[dp(60_000, 1.0166666666666666, 1.0)],
        Timestamp(360_000),
    );
    let json = e.transitions[0]
        .reason_data
        .as_ref()
        .unwrap()
        .to_json_string();
    assert_eq!(
        json,
        r#"{"version":"1.0","queryDate":"1970-01-01T00:06:00.000+0000","startDate":"1970-01-01T00:01:00.000+0000","statistic":"Average","period":300,"recentDatapoints":[1.0166666666666666],"threshold":90.0,"evaluatedDatapoints":[{"timestamp":"1970-01-01T00:01:00.000+0000","sampleCount":1.0,"value":1.0166666666666666}]}"#
    );
}

#[test]
fn several_units_without_a_unit_filter_are_insufficient() {
    let a = alarm(
        "    statistic: Sum\n    period_seconds: 60\n    threshold: 1\n    comparison_operator: GreaterThanThreshold\n    evaluation_periods: 1\n",
    );
    let mut d2 = dp(60_000, 3.0, 1.0);
    d2.unit = Unit::Count;
    let ok = AlarmState::with_value(StateValue::Ok, "x", Timestamp(0));
    let e = evaluate(&a, &ok, &[dp(60_000, 3.0, 1.0), d2], Timestamp(120_000));
    assert_eq!(e.state.value, StateValue::InsufficientData);
    assert!(e.state.reason.contains("several units"));
}

#[test]
fn actions_on_transitions_and_scaling_every_minute() {
    // §3.8: SNS on transitions only; Auto Scaling re-invoked once a minute; the first
    // healthy evaluation fires OK actions (INSUFFICIENT_DATA -> OK).
    let a = alarm(
        "    statistic: Maximum\n    period_seconds: 60\n    threshold: 3\n    comparison_operator: GreaterThanThreshold\n    evaluation_periods: 1\n    alarm_actions: [\"arn:aws:sns:eu-west-1:1:ops\", \"policy:web/up\"]\n    ok_actions: [\"mailto:ops@example.com\"]\n",
    );
    let mut st = AlarmState::initial(Timestamp(0));
    let mut fired = Vec::new();
    let values = [1.0, 5.0, 5.0, 5.0, 1.0];
    for (k, v) in values.iter().enumerate() {
        let now = Timestamp((k as i64 + 1) * 60_000);
        let e = evaluate(&a, &st, &[dp(k as i64 * 60_000, *v, 1.0)], now);
        fired.push(
            e.actions
                .iter()
                .map(|x| format!("{}{}", x.action, if x.repeat { "*" } else { "" }))
                .collect::<Vec<_>>()
                .join(" "),
        );
        st = e.state;
    }
    assert_eq!(
        fired,
        vec![
            "mailto:ops@example.com",
            "arn:aws:sns:eu-west-1:1:ops policy:web/up",
            "policy:web/up*",
            "policy:web/up*",
            "mailto:ops@example.com",
        ]
    );
    // actions_enabled: false → state changes, no actions.
    let mut b = a.clone();
    b.actions.enabled = false;
    let e = evaluate(
        &b,
        &AlarmState::initial(Timestamp(0)),
        &[dp(0, 5.0, 1.0)],
        Timestamp(60_000),
    );
    assert_eq!(e.state.value, StateValue::Alarm);
    assert!(e.actions.is_empty());
}

#[test]
fn repeat_interval_renotifies_while_in_alarm() {
    // Extension (docs/alarms.md): `repeat_interval_seconds` runs the notification actions
    // again while the alarm stays in ALARM; scaling keeps its once-a-minute rhythm.
    let a = alarm(
        "    statistic: Maximum\n    period_seconds: 60\n    threshold: 3\n    comparison_operator: GreaterThanThreshold\n    evaluation_periods: 1\n    repeat_interval_seconds: 120\n    alarm_actions: [\"arn:aws:sns:eu-west-1:1:ops\"]\n",
    );
    assert_eq!(a.actions.repeat_interval_seconds, Some(120));
    let mut st = AlarmState::initial(Timestamp(0));
    let mut fired = Vec::new();
    for k in 0..6i64 {
        let v = if k < 5 { 5.0 } else { 1.0 };
        let e = evaluate(
            &a,
            &st,
            &[dp(k * 60_000, v, 1.0)],
            Timestamp((k + 1) * 60_000),
        );
        fired.push(e.actions.iter().map(|x| x.repeat).collect::<Vec<_>>());
        st = e.state;
    }
    // ALARM at 1 min; again at 3 and 5 min; then OK (no OK actions configured).
    assert_eq!(
        fired,
        vec![vec![false], vec![], vec![true], vec![], vec![true], vec![]]
    );
}

#[test]
fn set_state_fires_actions_when_the_value_changes() {
    let a = alarm(
        "    statistic: Maximum\n    period_seconds: 60\n    threshold: 3\n    comparison_operator: GreaterThanThreshold\n    evaluation_periods: 1\n    alarm_actions: [\"arn:aws:sns:eu-west-1:1:ops\"]\n",
    );
    let st = AlarmState::initial(Timestamp(0));
    let e = set_state(
        &a.actions,
        &st,
        StateValue::Alarm,
        "testing",
        None,
        Timestamp(5),
    );
    assert_eq!(e.transitions.len(), 1);
    assert_eq!(e.actions.len(), 1);
    let again = set_state(
        &a.actions,
        &e.state,
        StateValue::Alarm,
        "again",
        None,
        Timestamp(6),
    );
    assert!(again.transitions.is_empty() && again.actions.is_empty());
}

fn arb_dps() -> impl Strategy<Value = Vec<Datapoint>> {
    proptest::collection::vec(
        (0i64..12, proptest::option::of(-10.0f64..10.0), 1.0f64..5.0),
        0..12,
    )
    .prop_map(|v| {
        let mut seen = std::collections::BTreeMap::new();
        for (slot, val, n) in v {
            seen.insert(slot, (val, n));
        }
        seen.into_iter()
            .map(|(slot, (val, n))| Datapoint {
                timestamp: Timestamp(slot * 60_000),
                unit: Unit::None,
                sample_count: n,
                values: vec![val],
            })
            .collect()
    })
}

fn arb_alarm() -> impl Strategy<Value = Alarm> {
    (1u32..5, 0u32..5, 0usize..4, -5.0f64..5.0).prop_map(|(n, dm, tmd, th)| {
        let m = 1 + dm % n;
        let tmd = ["missing", "ignore", "breaching", "notBreaching"][tmd];
        alarm(&format!(
            "    statistic: Average\n    period_seconds: 60\n    threshold: {th}\n    comparison_operator: GreaterThanThreshold\n    evaluation_periods: {n}\n    datapoints_to_alarm: {m}\n    treat_missing_data: {tmd}\n"
        ))
    })
}

fn arb_state() -> impl Strategy<Value = AlarmState> {
    (0usize..3).prop_map(|i| AlarmState::with_value(StateValue::ALL[i], "before", Timestamp(0)))
}

proptest! {
    #[test]
    fn evaluation_is_deterministic(a in arb_alarm(), st in arb_state(), dps in arb_dps(), minute in 1i64..14) {
        let now = Timestamp(minute * 60_000);
        prop_assert_eq!(evaluate(&a, &st, &dps, now), evaluate(&a, &st, &dps, now));
    }

    #[test]
    fn state_changes_only_on_ticks(a in arb_alarm(), st in arb_state(), dps in arb_dps(), ms in 0i64..900_000) {
        let now = Timestamp(ms);
        let e = evaluate(&a, &st, &dps, now);
        if ms % 60_000 != 0 {
            prop_assert_eq!(&e.state, &st);
            prop_assert!(e.transitions.is_empty() && e.actions.is_empty() && !e.evaluated);
        } else {
            prop_assert!(e.evaluated);
            prop_assert_eq!(e.transitions.len(), usize::from(e.state.value != st.value));
            for t in &e.transitions {
                prop_assert_eq!(t.timestamp, now);
            }
        }
    }

    #[test]
    fn decision_matches_counting_when_no_fill_is_needed(flags in proptest::collection::vec(any::<bool>(), 5), n in 1usize..6, dm in 0usize..6) {
        // §3.4: with every point real, ALARM iff at least M of the N newest breach.
        let m = 1 + dm % n;
        let slots: Vec<Option<bool>> = flags.iter().map(|b| Some(*b)).collect();
        let b = flags[5 - n..].iter().filter(|x| **x).count();
        for mode in TreatMissingData::ALL {
            let want = if b >= m { Decision::Alarm } else { Decision::Ok };
            prop_assert_eq!(decide(&slots, n, m, *mode), want);
        }
    }
}
