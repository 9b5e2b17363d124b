//! Validation rules (reference §3.1, §3.10, §7.5) and `check` output snapshots.

use super::*;

fn errors(text: &str) -> String {
    match validate(&[("alarms/cpu.yaml", text)]) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

const HEAD: &str = "alarms:\n  - name: web-high-cpu\n    namespace: AWS/EC2\n    metric_name: CPUUtilization\n    statistic: Average\n    comparison_operator: GreaterThanThreshold\n";

fn with(fields: &str) -> String {
    format!("{HEAD}{fields}")
}

#[test]
fn section_7_5_vectors() {
    // (fields, valid?) — one row per §7.5 vector.
    let rows: &[(&str, bool)] = &[
        (
            "    period_seconds: 60\n    evaluation_periods: 1440\n    threshold: 1\n",
            true,
        ), // §7.5 row 1
        (
            "    period_seconds: 60\n    evaluation_periods: 1441\n    threshold: 1\n",
            false,
        ), // §7.5 row 2
        (
            "    period_seconds: 3600\n    evaluation_periods: 168\n    threshold: 1\n",
            true,
        ), // §7.5 row 3
        (
            "    period_seconds: 3600\n    evaluation_periods: 169\n    threshold: 1\n",
            false,
        ), // §7.5 row 4
        (
            "    period_seconds: 1800\n    evaluation_periods: 49\n    threshold: 1\n",
            false,
        ), // §7.5 row 5
        (
            "    period_seconds: 45\n    evaluation_periods: 1\n    threshold: 1\n",
            false,
        ), // §7.5 row 6
        (
            "    period_seconds: 20\n    evaluation_periods: 1\n    threshold: 1\n",
            true,
        ), // §7.5 row 7
        (
            "    period_seconds: 60\n    evaluation_periods: 3\n    datapoints_to_alarm: 4\n    threshold: 1\n",
            false,
        ), // §7.5 row 8
        (
            "    period_seconds: 60\n    evaluation_periods: 1\n    threshold: 1\n    alarm_actions: [\"mailto:a@b\", \"mailto:a@b\", \"mailto:a@b\", \"mailto:a@b\", \"mailto:a@b\", \"mailto:a@b\"]\n",
            false,
        ), // §7.5 row 11
        (
            "    period_seconds: 60\n    evaluation_periods: 1\n    threshold: 1\n    treat_missing_data: maybe\n",
            false,
        ), // §7.5 row 12
        (
            "    period_seconds: 60\n    evaluation_periods: 1\n    threshold: .nan\n",
            false,
        ), // §3.1 Threshold is a double (finite)
        (
            "    period_seconds: 60\n    evaluation_periods: 1\n    threshold: 1\n    ok_threshold: 2\n",
            false,
        ), // extension: OK side
    ];
    for (fields, valid) in rows {
        let out = errors(&with(fields));
        assert_eq!(out.is_empty(), *valid, "{fields}\n{out}");
    }
    // §7.5 row 10: TM(5%:95%) is refused in alarms (percentage bounds 10–90).
    let t = HEAD.replace("Average", "TM(5%:95%)");
    assert!(
        !errors(&format!(
            "{t}    period_seconds: 60\n    evaluation_periods: 1\n    threshold: 1\n"
        ))
        .is_empty()
    );
}

#[test]
fn check_output_snapshot() {
    // Every error at once, each as file:line:column: path: message.
    let text = r#"alarms:
  - name: web-high-cpu
    namespace: AWS/EC2
    metric_name: CPUUtilization
    statistic: Avg
    period_seconds: 45
    evaluation_periods: 3
    datapoints_to_alarm: 4
    threshold: .nan
    comparison_operator: GreaterThan
    treat_missing_data: maybe
    thresold: 3
    alarm_actions: ["sns:ops", "policy:web"]
  - name: web-high-cpu
    namespace: AWS/EC2
    metric_name: CPUUtilization
    statistic: p99
    period_seconds: 60
    evaluation_periods: 1
    threshold: 1
    comparison_operator: GreaterThanThreshold
  - namespace: AWS/EC2
composite_alarms:
  - name: loop-a
    alarm_rule: ALARM("loop-b") OR ALARM("web-hihg-cpu")
  - name: loop-b
    alarm_rule: ALARM(loop-a) and OK(x)
  - name: loop-c
    alarm_rule: ALARM("loop-d")
    alarm_actions: ["policy:web/up"]
  - name: loop-d
    alarm_rule: NOT ALARM("loop-c")
    actions_suppressor: {alarm: nowhere, wait_period_seconds: 60, extension_period_seconds: 60}
unknown_section: 1
"#;
    insta::assert_snapshot!(errors(text));
}

#[test]
fn duplicates_across_files_name_the_first_definition() {
    let a = "alarms:\n  - {name: x, namespace: A, metric_name: M, statistic: Sum, period_seconds: 60, evaluation_periods: 1, threshold: 1, comparison_operator: GreaterThanThreshold}\n";
    let b = "composite_alarms:\n  - {name: x, alarm_rule: TRUE}\n";
    let e = validate(&[("a.yaml", a), ("b.yaml", b)]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "b.yaml:2:12: composite_alarms.x.name: duplicate alarm name \"x\" (first defined at a.yaml:2:12); names must be unique across all files"
    );
}

#[test]
fn examples_validate_and_their_tests_pass() {
    // The example files double as fixtures (house style §3.12).
    let files = [(
        "examples/web-alarms.yaml",
        include_str!("../../../examples/web-alarms.yaml"),
    )];
    let set = validate(&files).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.alarms.len(), 3);
    assert_eq!(set.composites.len(), 1);
    let cpu = set.alarm("web-high-cpu").unwrap();
    assert_eq!(cpu.evaluation_range, 5, "§3.5.2 default for N = 3");
    assert_eq!(cpu.ok_threshold, Some(60.0));
    let outcomes = crate::alarm_tests::run_tests(&set);
    assert_eq!(outcomes.len(), 2);
    for o in &outcomes {
        assert!(o.passed(), "{o}");
    }
}

#[test]
fn the_math_alarm_example_validates_and_its_tests_pass() {
    let files = [(
        "examples/math-alarms.yaml",
        include_str!("../../../examples/math-alarms.yaml"),
    )];
    let set = validate(&files).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.alarms.len(), 3);
    let outcomes = crate::alarm_tests::run_tests(&set);
    assert_eq!(outcomes.len(), 3);
    for o in &outcomes {
        assert!(o.passed(), "{o}");
    }
}

#[test]
fn failing_tests_print_a_readable_diff() {
    let text = "alarms:\n  - {name: x, namespace: A, metric_name: M, statistic: Sum, period_seconds: 60, evaluation_periods: 1, threshold: 1, comparison_operator: GreaterThanThreshold}\ntests:\n  - name: wrong\n    datapoints:\n      - {at: 0, value: 5}\n    expect:\n      - {at: 1m, state: OK}\n    transitions:\n      - {at: 2m, to: ALARM}\n";
    let set = validate(&[("t.yaml", text)]).unwrap_or_else(|e| panic!("{e}"));
    let o = crate::alarm_tests::run_test(&set, &set.tests[0]);
    insta::assert_snapshot!(o.to_string());
}

#[test]
fn composite_cycles_are_reported_and_composites_ordered() {
    // §3.10: cycles are rejected at load time; TRUE/FALSE break them.
    let text = "composite_alarms:\n  - {name: a, alarm_rule: ALARM(b)}\n  - {name: b, alarm_rule: NOT ALARM(a)}\n";
    let e = validate(&[("c.yaml", text)]).unwrap_err().to_string();
    assert!(e.contains("cycle: a -> b -> a"), "{e}");
    let text = "composite_alarms:\n  - {name: a, alarm_rule: ALARM(b)}\n  - {name: b, alarm_rule: FALSE}\n";
    let set = validate(&[("c.yaml", text)]).unwrap();
    let order: Vec<&str> = set.composites.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(order, vec!["b", "a"]);
}

#[test]
fn alarm_statistics_keep_percentage_bounds_between_10_and_90() {
    let fields = "    period_seconds: 60\n    evaluation_periods: 1\n    threshold: 1\n";
    let check = |stat: &str| {
        errors(&with(fields).replace("statistic: Average", &format!("statistic: {stat}")))
    };
    // §2.3 / §7.5: what PutMetricAlarm.ExtendedStatistic documents, plus absolute bounds.
    for ok in [
        "TM(10%:90%)",
        "WM(10%:)",
        "TC(:90%)",
        "TS(25%:75%)",
        "tm90",
        "tm99",
        "wm90",
        "tc90",
        "ts90",
        "IQM",
        "PR(100:2000)",
        "PR(:300)",
        "TM(100:200)",
        "TC(0.5:)",
        "p99.9",
    ] {
        assert_eq!(check(ok), "", "{ok}");
    }
    assert_eq!(
        check("TM(5%:95%)"),
        "alarms/cpu.yaml:5:16: alarms.web-high-cpu.statistic: alarm statistics with percentage bounds must keep each bound between 10% and 90% inclusive, as CloudWatch alarms require (TM(10%:90%), not \"TM(5%:95%)\"); use tmNN, IQM, PR(n:m) or absolute bounds for other ranges"
    );
    for bad in [
        "TM(9.9%:90%)",
        "WM(10%:90.5%)",
        "TC(:95%)",
        "TS(5%:)",
        "TM(0%:50%)",
    ] {
        let out = check(bad);
        assert!(out.starts_with("alarms/cpu.yaml:5:16: alarms.web-high-cpu.statistic: alarm statistics with percentage bounds"), "{bad}: {out}");
    }
    // Malformed statistics keep the general message.
    let out = check("TM(90%:10%)");
    assert!(out.contains("statistic: must be SampleCount"), "{out}");
}
