//! Tests of the metric-math engine. Table rows cite the CloudWatch page they implement:
//! [MM] = "Using metric math" (using-metric-math.html), section "Metric math syntax and
//! functions", and `§2.6` / `§3.11` = `shared/reference/cloudwatch-semantics.md`. Expected
//! values are worked out by hand from the inputs in [`inputs`].

use proptest::prelude::*;
use thermostat_metrics::Timestamp;

use super::*;

const MIN: i64 = 60_000;

fn series(label: &str, points: &[(i64, f64)]) -> Series {
    Series::new(
        label,
        points
            .iter()
            .map(|&(m, v)| (Timestamp(m * MIN), v))
            .collect(),
    )
}

/// m1: 1, 2, 4 at minutes 0, 1, 2; m2: 10, 0, 5 at minutes 0, 2, 3; m3: 3, 3 at minutes 0, 1;
/// empty: no points; t: one point at 2024-03-15T13:45:00Z (a Friday).
fn inputs() -> Vec<(&'static str, Value)> {
    vec![
        (
            "m1",
            Value::Series(series("m1", &[(0, 1.0), (1, 2.0), (2, 4.0)])),
        ),
        (
            "m2",
            Value::Series(series("m2", &[(0, 10.0), (2, 0.0), (3, 5.0)])),
        ),
        ("m3", Value::Series(series("m3", &[(0, 3.0), (1, 3.0)]))),
        ("empty", Value::Series(series("empty", &[]))),
        (
            "t",
            Value::Series(Series::new("t", vec![(Timestamp(1_710_510_300_000), 1.0)])),
        ),
    ]
}

/// A band of `value ± k` around each point, so rows can be worked out by hand.
struct PlusMinusK;

impl Bands for PlusMinusK {
    fn band(&self, _: &str, s: &Series, k: f64) -> Result<(Series, Series), String> {
        let shift = |d: f64| Series::new("", s.points.iter().map(|&(t, v)| (t, v + d)).collect());
        Ok((shift(-k), shift(k)))
    }
}

fn run_with(src: &str, max_cost: u64) -> Result<Value, MathError> {
    let inputs = inputs();
    let e = parse(src)?;
    let kinds = |id: &str| inputs.iter().find(|(i, _)| *i == id).map(|(_, v)| v.kind());
    check(&e, &kinds)?;
    let get = |id: &str| {
        inputs
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, v)| v.clone())
    };
    let metrics: Vec<String> = ["m1", "m2", "m3"].map(String::from).to_vec();
    let ctx = Context {
        start: Timestamp(0),
        end: Timestamp(5 * MIN),
        period_ms: MIN,
        inputs: &get,
        metrics: &metrics,
        bands: &PlusMinusK,
        max_cost,
    };
    evaluate(&e, &ctx)
}

fn run(src: &str) -> Result<Value, MathError> {
    run_with(src, DEFAULT_MAX_COST)
}

/// Expected results: times in minutes.
#[derive(Debug)]
enum Want {
    Scalar(f64),
    Series(&'static [(i64, f64)]),
    Array(&'static [&'static [(i64, f64)]]),
}

fn minutes(s: &Series) -> Vec<(i64, f64)> {
    s.points
        .iter()
        .map(|(t, v)| (t.as_millis() / MIN, *v))
        .collect()
}

fn same(got: &[(i64, f64)], want: &[(i64, f64)]) -> bool {
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| g.0 == w.0 && (g.1 - w.1).abs() < 1e-9)
}

fn assert_row(src: &str, want: &Want) {
    let got = run(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let ok = match (&got, want) {
        (Value::Scalar(g), Want::Scalar(w)) => (g.is_nan() && w.is_nan()) || (g - w).abs() < 1e-9,
        (Value::Series(s), Want::Series(w)) => same(&minutes(s), w),
        (Value::Array(a), Want::Array(w)) => {
            a.len() == w.len() && a.iter().zip(w.iter()).all(|(s, w)| same(&minutes(s), w))
        }
        _ => false,
    };
    assert!(ok, "{src}: got {got:?}, want {want:?}");
}

#[test]
fn operators_follow_cloudwatch_missing_and_division_rules() {
    use Want::*;
    let rows: &[(&str, Want)] = &[
        // §2.6: a value missing from one series counts as 0 in arithmetic.
        (
            "m1 + m2",
            Series(&[(0, 11.0), (1, 2.0), (2, 4.0), (3, 5.0)]),
        ),
        (
            "m1 - m2",
            Series(&[(0, -9.0), (1, 2.0), (2, 4.0), (3, -5.0)]),
        ),
        // [MM] arithmetic with a scalar applies to every point.
        ("m1 * 2", Series(&[(0, 2.0), (1, 4.0), (2, 8.0)])),
        // §2.6: a point that divides by zero is dropped (minutes 1 and 2: m2 is 0 or missing).
        ("m1 / m2", Series(&[(0, 0.1), (3, 0.0)])),
        ("m1 / 0", Series(&[])),
        ("m1 ^ 2", Series(&[(0, 1.0), (1, 4.0), (2, 16.0)])),
        ("-m1", Series(&[(0, -1.0), (1, -2.0), (2, -4.0)])),
        (
            "AVG(m1) - m1",
            Series(&[(0, 4.0 / 3.0), (1, 1.0 / 3.0), (2, -5.0 / 3.0)]),
        ),
        // Precedence: `^` binds tighter than unary minus, and is right-associative.
        ("2 ^ 3 ^ 2", Scalar(512.0)),
        ("-2 ^ 2", Scalar(-4.0)),
        ("1 + 2 * 3", Scalar(7.0)),
        ("(1 + 2) * 3", Scalar(9.0)),
        ("1 / 0", Scalar(f64::NAN)),
        // §2.6: comparisons give 0/1; a value in only one series is compared against 0.
        ("m1 > 1", Series(&[(0, 0.0), (1, 1.0), (2, 1.0)])),
        (
            "m1 >= m2",
            Series(&[(0, 0.0), (1, 1.0), (2, 1.0), (3, 0.0)]),
        ),
        ("m1 != 2", Series(&[(0, 1.0), (1, 0.0), (2, 1.0)])),
        ("m1 == 2", Series(&[(0, 0.0), (1, 1.0), (2, 0.0)])),
        ("m1 <= 2", Series(&[(0, 1.0), (1, 1.0), (2, 0.0)])),
        // §2.6: logical AND/&& and OR/||.
        ("m1 < 2 OR m1 > 3", Series(&[(0, 1.0), (1, 0.0), (2, 1.0)])),
        ("m1 > 1 && m1 < 4", Series(&[(0, 0.0), (1, 1.0), (2, 0.0)])),
        (
            "m1 > 1 || m2 > 1",
            Series(&[(0, 1.0), (1, 1.0), (2, 1.0), (3, 1.0)]),
        ),
        (
            "m1 > 1 AND m2 > 1",
            Series(&[(0, 0.0), (1, 0.0), (2, 0.0), (3, 0.0)]),
        ),
        // [MM] operations between an array and a scalar apply to every series.
        (
            "[m1, m3] * 10",
            Array(&[&[(0, 10.0), (1, 20.0), (2, 40.0)], &[(0, 30.0), (1, 30.0)]]),
        ),
    ];
    for (src, want) in rows {
        assert_row(src, want);
    }
}

#[test]
fn every_function_matches_hand_worked_values() {
    use Want::*;
    let stddev = (14.0f64 / 9.0).sqrt();
    let rows: Vec<(&str, Want)> = vec![
        // [MM] ABS, CEIL, FLOOR, LOG (natural), LOG10: per point; non-finite results dropped.
        ("ABS(m1 - 3)", Series(&[(0, 2.0), (1, 1.0), (2, 1.0)])),
        ("CEIL(m1 / 3)", Series(&[(0, 1.0), (1, 1.0), (2, 2.0)])),
        ("FLOOR(m1 / 3)", Series(&[(0, 0.0), (1, 0.0), (2, 1.0)])),
        (
            "LOG(m1)",
            Series(&[
                (0, 0.0),
                (1, std::f64::consts::LN_2),
                (2, 2.0 * std::f64::consts::LN_2),
            ]),
        ),
        (
            "LOG10(m2)",
            Series(&[(0, 1.0), (3, 1.0 - std::f64::consts::LOG10_2)]),
        ),
        ("ABS(-3)", Scalar(3.0)),
        // [MM] AVG/SUM/MIN/MAX/STDDEV of one series are scalars.
        ("AVG(m1)", Scalar(7.0 / 3.0)),
        ("SUM(m1)", Scalar(7.0)),
        ("MIN(m1)", Scalar(1.0)),
        ("MAX(m1)", Scalar(4.0)),
        ("STDDEV(m1)", Scalar(stddev)),
        ("AVG(empty)", Scalar(f64::NAN)),
        // [MM] ... of an array, a series with the value per timestamp.
        (
            "SUM([m1, m2])",
            Series(&[(0, 11.0), (1, 2.0), (2, 4.0), (3, 5.0)]),
        ),
        (
            "AVG([m1, m2])",
            Series(&[(0, 5.5), (1, 2.0), (2, 2.0), (3, 5.0)]),
        ),
        (
            "MAX([m1, m2])",
            Series(&[(0, 10.0), (1, 2.0), (2, 4.0), (3, 5.0)]),
        ),
        (
            "MIN([m1, m2])",
            Series(&[(0, 1.0), (1, 2.0), (2, 0.0), (3, 5.0)]),
        ),
        ("STDDEV([m1, m3])", Series(&[(0, 1.0), (1, 0.5), (2, 0.0)])),
        // [MM] DATAPOINT_COUNT: the number of points.
        ("DATAPOINT_COUNT(m2)", Scalar(3.0)),
        // [MM] DIFF: each value minus the one before; DIFF_TIME: seconds since the one before;
        // RATE: DIFF per second.
        ("DIFF(m1)", Series(&[(1, 1.0), (2, 2.0)])),
        ("DIFF_TIME(m2)", Series(&[(2, 120.0), (3, 60.0)])),
        ("RATE(m1)", Series(&[(1, 1.0 / 60.0), (2, 2.0 / 60.0)])),
        ("RUNNING_SUM(m1)", Series(&[(0, 1.0), (1, 3.0), (2, 7.0)])),
        // [MM] FILL over the request's grid (minutes 0-4 here).
        (
            "FILL(m2, 7)",
            Series(&[(0, 10.0), (1, 7.0), (2, 0.0), (3, 5.0), (4, 7.0)]),
        ),
        (
            "FILL(m2, REPEAT)",
            Series(&[(0, 10.0), (1, 10.0), (2, 0.0), (3, 5.0), (4, 5.0)]),
        ),
        (
            "FILL(m2, LINEAR)",
            Series(&[(0, 10.0), (1, 5.0), (2, 0.0), (3, 5.0)]),
        ),
        (
            "FILL(m3, REPEAT)",
            Series(&[(0, 3.0), (1, 3.0), (2, 3.0), (3, 3.0), (4, 3.0)]),
        ),
        ("FILL(empty, REPEAT)", Series(&[])),
        (
            "FILL([m1, m3], 0)",
            Array(&[
                &[(0, 1.0), (1, 2.0), (2, 4.0), (3, 0.0), (4, 0.0)],
                &[(0, 3.0), (1, 3.0), (2, 0.0), (3, 0.0), (4, 0.0)],
            ]),
        ),
        // [MM] FIRST/LAST of an array.
        ("FIRST([m1, m2])", Series(&[(0, 1.0), (1, 2.0), (2, 4.0)])),
        ("LAST([m1, m2])", Series(&[(0, 10.0), (2, 0.0), (3, 5.0)])),
        // [MM] IF(condition, a): points where the condition is false are dropped;
        // IF(condition, a, b) takes b there.
        ("IF(m1 > 1, m1)", Series(&[(1, 2.0), (2, 4.0)])),
        ("IF(m1 > 1, m1, 0)", Series(&[(0, 0.0), (1, 2.0), (2, 4.0)])),
        ("IF(m1 > 1, m2, m1)", Series(&[(0, 1.0), (2, 0.0)])),
        // [MM] METRIC_COUNT and METRICS([filter]): the request's metric queries.
        ("METRIC_COUNT(METRICS())", Scalar(3.0)),
        ("METRIC_COUNT(METRICS(\"2\"))", Scalar(1.0)),
        (
            "SUM(METRICS())",
            Series(&[(0, 14.0), (1, 5.0), (2, 4.0), (3, 5.0)]),
        ),
        // [MM] time functions, in UTC: 2024-03-15T13:45:00Z is a Friday.
        ("MINUTE(t)", Series(&[(28_508_505, 45.0)])),
        ("HOUR(t)", Series(&[(28_508_505, 13.0)])),
        ("DAY(t)", Series(&[(28_508_505, 5.0)])),
        ("DATE(t)", Series(&[(28_508_505, 15.0)])),
        ("MONTH(t)", Series(&[(28_508_505, 3.0)])),
        ("YEAR(t)", Series(&[(28_508_505, 2024.0)])),
        ("EPOCH(t)", Series(&[(28_508_505, 1_710_510_300.0)])),
        // [MM] PERIOD in seconds.
        ("PERIOD(m1)", Scalar(60.0)),
        // [MM] REMOVE_EMPTY, SLICE, SORT.
        (
            "REMOVE_EMPTY([m1, empty])",
            Array(&[&[(0, 1.0), (1, 2.0), (2, 4.0)]]),
        ),
        ("METRIC_COUNT(SLICE([m1, m2, m3], 1, 3))", Scalar(2.0)),
        (
            "FIRST(SLICE([m1, m2, m3], 1, 3))",
            Series(&[(0, 10.0), (2, 0.0), (3, 5.0)]),
        ),
        // Sums: m1 7, m2 15, m3 6; maxima: m1 4, m2 10, m3 3.
        (
            "SORT([m1, m2, m3], SUM, DESC)",
            Array(&[
                &[(0, 10.0), (2, 0.0), (3, 5.0)],
                &[(0, 1.0), (1, 2.0), (2, 4.0)],
                &[(0, 3.0), (1, 3.0)],
            ]),
        ),
        (
            "SORT([m1, m2, m3], MAX, ASC, 2)",
            Array(&[&[(0, 3.0), (1, 3.0)], &[(0, 1.0), (1, 2.0), (2, 4.0)]]),
        ),
        // [MM] TIME_SERIES: a constant on the request's grid.
        (
            "TIME_SERIES(5)",
            Series(&[(0, 5.0), (1, 5.0), (2, 5.0), (3, 5.0), (4, 5.0)]),
        ),
        // §2.6/§3.12: the band, [upper, lower], default width 2; LAST is the lower bound.
        (
            "ANOMALY_DETECTION_BAND(m1)",
            Array(&[
                &[(0, 3.0), (1, 4.0), (2, 6.0)],
                &[(0, -1.0), (1, 0.0), (2, 2.0)],
            ]),
        ),
        (
            "LAST(ANOMALY_DETECTION_BAND(m1, 1))",
            Series(&[(0, 0.0), (1, 1.0), (2, 3.0)]),
        ),
    ];
    for (src, want) in &rows {
        assert_row(src, want);
    }
    // Every function has at least one row.
    for f in Func::ALL {
        assert!(
            rows.iter()
                .any(|(src, _)| src.contains(&format!("{}(", f.name()))),
            "no row for {}",
            f.name()
        );
    }
}

fn err(src: &str) -> MathError {
    match run(src) {
        Ok(v) => panic!("{src}: expected an error, got {v:?}"),
        Err(e) => e,
    }
}

#[test]
fn errors_name_the_rule_and_position() {
    let rows: &[(&str, &str, (u32, u32), &str)] = &[
        ("m1 +", "syntax", (1, 5), "the end of the expression"),
        (
            "SUM(m1, m2)",
            "arity",
            (1, 1),
            "SUM takes 1 argument, got 2",
        ),
        (
            "FOO(m1)",
            "unknown-function",
            (1, 1),
            "`FOO` is not a metric-math function",
        ),
        ("sum(m1)", "unknown-function", (1, 1), "write SUM"),
        ("m9 + 1", "unknown-id", (1, 1), "`m9`"),
        ("m1 +\n  FLOOR(m1, 2)", "arity", (2, 3), "FLOOR"),
        ("[m1, 1]", "kind", (1, 6), "not scalars"),
        ("[m1] + [m2]", "kind", (1, 6), "two arrays"),
        ("TIME_SERIES(m1)", "kind", (1, 13), "TIME_SERIES"),
        (
            "ANOMALY_DETECTION_BAND(m1 * 2)",
            "kind",
            (1, 27),
            "id of a query",
        ), // at the operator
        ("SORT(METRICS(), MEDIAN, ASC)", "syntax", (1, 17), "MEDIAN"),
        ("SORT(METRICS(), SUM, UP)", "syntax", (1, 22), "UP"),
        ("FILL(m1, ASC)", "kind", (1, 10), "FILL"),
        ("NOT m1", "syntax", (1, 1), "no NOT"),
        ("m1 = 2", "syntax", (1, 4), "=="),
        ("M1 + 1", "syntax", (1, 1), "lower-case"),
        ("\"x\"", "kind", (1, 1), "METRICS"),
        ("METRICS(m1)", "kind", (1, 9), "string"),
        ("IF(1, m1)", "kind", (1, 4), "condition"),
        (
            "DATAPOINT_COUNT(METRICS())",
            "kind",
            (1, 17),
            "one time series",
        ),
        (
            "SEARCH('{AWS/EC2,InstanceId} CPUUtilization', 'Average', 300)",
            "unsupported",
            (1, 1),
            "SEARCH",
        ),
        (
            "SUM(SERVICE_QUOTA(m1))",
            "unsupported",
            (1, 5),
            "SERVICE_QUOTA",
        ),
        (
            "INSIGHT_RULE_METRIC(\"r\", \"Sum\")",
            "unsupported",
            (1, 1),
            "INSIGHT_RULE_METRIC",
        ),
        ("LAMBDA(\"f\")", "unsupported", (1, 1), "LAMBDA"),
        (
            "  SELECT AVG(CPUUtilization) FROM SCHEMA(\"AWS/EC2\")",
            "unsupported",
            (1, 3),
            "Metrics Insights",
        ),
        ("", "syntax", (1, 1), "empty"),
        ("(m1", "syntax", (1, 4), "`)`"),
        ("\"abc", "syntax", (1, 1), "unterminated"),
        ("1e999", "syntax", (1, 1), "out of range"),
        ("m1 # 2", "syntax", (1, 4), "unexpected character"),
        ("+m1", "syntax", (1, 1), "unary `+`"),
        ("[]", "syntax", (1, 1), "at least one"),
    ];
    for (src, rule, (line, column), needle) in rows {
        let e = err(src);
        assert_eq!(
            (e.rule, e.pos.line, e.pos.column),
            (*rule, *line, *column),
            "{src}: {e}"
        );
        assert!(
            e.message.contains(needle),
            "{src}: {e} should mention {needle}"
        );
    }
    // The rendering is `line:column: rule: message`.
    assert_eq!(
        err("m1 +").to_string(),
        "1:5: syntax: expected a number, an id, a function call, `(` or `[`, found the end of the expression"
    );
}

#[test]
fn limits_reject_hostile_input_without_overflowing_the_stack() {
    let long = format!("m1{}", " ".repeat(MAX_EXPRESSION_CHARS));
    assert_eq!(err(&long).rule, "limit");
    // Exactly the limit is fine.
    assert!(parse(&format!("m1{}", " ".repeat(MAX_EXPRESSION_CHARS - 2))).is_ok());
    let deep =
        |open: &str, close: &str, n: usize| format!("{}1{}", open.repeat(n), close.repeat(n));
    assert!(parse(&deep("(", ")", MAX_NESTING)).is_ok());
    let e = parse(&deep("(", ")", MAX_NESTING + 1)).unwrap_err();
    assert_eq!((e.rule, e.pos.column), ("limit", MAX_NESTING as u32 + 1));
    assert_eq!(parse(&deep("(", ")", 1000)).unwrap_err().rule, "limit");
    assert_eq!(parse(&deep("[", "]", 1000)).unwrap_err().rule, "limit");
    assert_eq!(parse(&deep("ABS(", ")", 400)).unwrap_err().rule, "limit");
    assert_eq!(parse(&deep("-", "", 2000)).unwrap_err().rule, "limit");
    assert_eq!(parse(&deep("2^", "", 1000)).unwrap_err().rule, "limit");
    // A long flat chain is bounded by the tree height.
    let chain = vec!["1"; 1000].join("+");
    assert_eq!(parse(&chain).unwrap_err().rule, "limit");
    assert!(parse(&vec!["m1"; 100].join("+")).is_ok());
    // The deepest accepted trees also check and evaluate on a test thread's stack.
    for src in [
        vec!["m1"; MAX_HEIGHT].join("+"),
        format!(
            "{}m1{}",
            "ABS(".repeat(MAX_NESTING - 1),
            ")".repeat(MAX_NESTING - 1)
        ),
        format!("{}m1", "-".repeat(MAX_NESTING)),
    ] {
        assert!(run(&src).is_ok(), "{src}");
    }
    let items = format!("[{}]", vec!["m1"; MAX_ARRAY_ITEMS + 1].join(","));
    assert_eq!(parse(&items).unwrap_err().rule, "limit");
}

#[test]
fn evaluation_cost_is_bounded() {
    let big = Series::new(
        "big",
        (0..10_000).map(|i| (Timestamp(i * MIN), 1.0)).collect(),
    );
    let get = |id: &str| (id == "big").then(|| Value::Series(big.clone()));
    let mut ctx = Context::new(Timestamp(0), Timestamp(10_000 * MIN), MIN, &get);
    let e = parse(&vec!["big"; 20].join(" + ")).unwrap();
    assert!(evaluate(&e, &ctx).is_ok());
    ctx.max_cost = 50_000;
    let err = evaluate(&e, &ctx).unwrap_err();
    assert_eq!(err.rule, "cost");
    // A grid far larger than the budget is refused before it is built.
    let huge = Context::new(Timestamp(0), Timestamp(i64::MAX / 2), 1, &get);
    assert_eq!(
        evaluate(&parse("TIME_SERIES(1)").unwrap(), &huge)
            .unwrap_err()
            .rule,
        "cost"
    );
    assert_eq!(
        evaluate(&parse("FILL(big, 0)").unwrap(), &huge)
            .unwrap_err()
            .rule,
        "cost"
    );
}

#[test]
fn arrays_of_empty_series_are_not_free() {
    let many = Value::Array(vec![Series::default(); 1000]);
    let get = |id: &str| (id == "e").then(|| many.clone());
    let mut ctx = Context::new(Timestamp(0), Timestamp(MIN), MIN, &get);
    ctx.max_cost = 5_000;
    let e = parse(&format!("[{}]", vec!["e"; 100].join(","))).unwrap();
    assert_eq!(evaluate(&e, &ctx).unwrap_err().rule, "cost");
}

#[test]
fn query_lists_share_one_budget() {
    let big = series("", &(0..10_000).map(|i| (i, 1.0)).collect::<Vec<_>>());
    let data = |id: &str| (id == "big").then(|| big.clone());
    let queries = vec![
        metric("big"),
        expression("e1", "big + 1", false),
        expression("e2", "e1 + 1", true),
    ];
    let plan = plan_queries(
        queries,
        Profile::Alarm {
            threshold_metric_id: None,
        },
    )
    .unwrap();
    let run = |max_cost| {
        evaluate_queries(
            &plan,
            &data,
            &NoBands,
            Timestamp(0),
            Timestamp(MIN),
            MIN,
            max_cost,
        )
    };
    // Each expression costs about 20,000: its input and its result, 10,000 points each.
    assert!(run(70_000).is_ok());
    let err = run(40_000).unwrap_err();
    assert_eq!((err.id.as_str(), err.rule), ("e2", "cost"));
}

#[test]
fn context_is_validated() {
    let get = |_: &str| None;
    let e = parse("TIME_SERIES(1)").unwrap();
    assert_eq!(
        evaluate(&e, &Context::new(Timestamp(0), Timestamp(1), 0, &get))
            .unwrap_err()
            .rule,
        "input"
    );
    assert_eq!(
        evaluate(&e, &Context::new(Timestamp(5), Timestamp(1), 1, &get))
            .unwrap_err()
            .rule,
        "input"
    );
    // Without a model the band is an error at the call.
    let get = |_: &str| Some(Value::Series(Series::default()));
    let e = parse("ANOMALY_DETECTION_BAND(m1)").unwrap();
    let err = evaluate(&e, &Context::new(Timestamp(0), Timestamp(1), 1, &get)).unwrap_err();
    assert_eq!(
        (err.rule, err.message.contains("no anomaly-detection model")),
        ("input", true)
    );
}

// === queries ===

fn metric(id: &str) -> MetricQuery {
    MetricQuery {
        id: id.into(),
        source: QuerySource::MetricStat,
        label: None,
        return_data: false,
        period_seconds: Some(60),
    }
}

fn expression(id: &str, src: &str, return_data: bool) -> MetricQuery {
    MetricQuery {
        id: id.into(),
        source: QuerySource::Expression(src.into()),
        label: None,
        return_data,
        period_seconds: None,
    }
}

fn fetched(id: &str) -> Option<Series> {
    match id {
        "errors" => Some(series("", &[(0, 5.0), (1, 0.0), (2, 3.0)])),
        "requests" => Some(series("", &[(0, 100.0), (1, 50.0), (2, 0.0)])),
        _ => None,
    }
}

#[test]
fn alarm_queries_evaluate_in_dependency_order() {
    // §3.11: an error-rate alarm; the returned expression reads another expression.
    let queries = vec![
        expression("rate_pct", "ratio * 100", true),
        expression("ratio", "errors / requests", false),
        metric("errors"),
        metric("requests"),
    ];
    let plan = plan_queries(
        queries,
        Profile::Alarm {
            threshold_metric_id: None,
        },
    )
    .unwrap();
    let order: Vec<&str> = plan
        .order()
        .iter()
        .map(|&i| plan.queries()[i].id.as_str())
        .collect();
    assert_eq!(order, ["errors", "requests", "ratio", "rate_pct"]);
    let results = evaluate_queries(
        &plan,
        &fetched,
        &NoBands,
        Timestamp(0),
        Timestamp(3 * MIN),
        MIN,
        DEFAULT_MAX_COST,
    )
    .unwrap();
    assert_eq!(results[0].id, "rate_pct");
    let Value::Series(s) = &results[0].value else {
        panic!("{:?}", results[0])
    };
    // Minute 2 divides by zero and is dropped (§2.6).
    assert!(same(&minutes(s), &[(0, 5.0), (1, 0.0)]));
    assert_eq!(s.label, "rate_pct");
}

#[test]
fn array_results_are_labelled_like_cloudwatch() {
    // [MM] "Filled With 0:" applied to a metric labelled "Errors" shows as "Filled With 0: Errors".
    let mut m = metric("errors");
    m.label = Some("Errors".into());
    let mut e = expression("e1", "FILL(METRICS(), 0)", true);
    e.label = Some("Filled With 0:".into());
    let plan = plan_queries(vec![m, e], Profile::GetMetricData).unwrap();
    let results = evaluate_queries(
        &plan,
        &fetched,
        &NoBands,
        Timestamp(0),
        Timestamp(3 * MIN),
        MIN,
        DEFAULT_MAX_COST,
    )
    .unwrap();
    let Value::Array(a) = &results[1].value else {
        panic!()
    };
    assert_eq!(a.len(), 1, "METRICS() lists metric queries only");
    assert_eq!(a[0].label, "Filled With 0: Errors");
}

#[test]
fn query_rules_are_all_reported() {
    let rules = |qs: Vec<MetricQuery>, profile: Profile<'_>| -> Vec<(&'static str, String)> {
        plan_queries(qs, profile)
            .unwrap_err()
            .into_iter()
            .map(|e| (e.rule, e.id))
            .collect()
    };
    // §3.11: at most 10 metrics in an alarm.
    let mut eleven: Vec<MetricQuery> = (0..11).map(|i| metric(&format!("m{i}"))).collect();
    eleven[0].return_data = true;
    assert_eq!(
        rules(
            eleven.clone(),
            Profile::Alarm {
                threshold_metric_id: None
            }
        ),
        [("count", String::new())]
    );
    assert!(plan_queries(eleven, Profile::GetMetricData).is_ok());
    // §2.5: ids start with a lower-case letter and are unique; §3.11: exactly one return_data.
    let got = rules(
        vec![
            metric("M1"),
            metric("m2"),
            metric("m2"),
            expression("e1", "m2 * 2", true),
            expression("e2", "m2", true),
        ],
        Profile::Alarm {
            threshold_metric_id: None,
        },
    );
    assert!(got.contains(&("id", "M1".into())), "{got:?}");
    assert!(got.contains(&("duplicate-id", "m2".into())), "{got:?}");
    assert!(got.contains(&("return-data", "e2".into())), "{got:?}");
    // Cycles, self-references, unknown ids and parse errors, all at once.
    let got = rules(
        vec![
            expression("e1", "e2 + 1", true),
            expression("e2", "e1 * 2", false),
            expression("e3", "e3", false),
            expression("e4", "nope + 1", false),
            expression("e5", "1 +", false),
        ],
        Profile::Alarm {
            threshold_metric_id: None,
        },
    );
    assert_eq!(
        got.iter().filter(|(r, _)| *r == "cycle").count(),
        2,
        "{got:?}"
    );
    assert!(got.contains(&("unknown-id", "e4".into())), "{got:?}");
    assert!(got.contains(&("syntax", "e5".into())), "{got:?}");
    // §3.11: one period, and the alarm's returned query is one time series.
    let mut m2 = metric("m2");
    m2.period_seconds = Some(300);
    let got = rules(
        vec![metric("m1"), m2, expression("e1", "METRICS()", true)],
        Profile::Alarm {
            threshold_metric_id: None,
        },
    );
    assert_eq!(got, [("period", "m2".into()), ("kind", "e1".into())]);
    // Errors carry the expression position and render with it.
    let e = plan_queries(
        vec![metric("m1"), expression("e1", "m1 +\n FOO(m1)", true)],
        Profile::Alarm {
            threshold_metric_id: None,
        },
    )
    .unwrap_err();
    assert_eq!(
        e[0].to_string(),
        "metrics[1] (e1).expression: 2:2: unknown-function: `FOO` is not a metric-math function"
    );
}

// === properties ===

fn position_within(src: &str, e: &MathError) -> bool {
    let lines: Vec<&str> = src.split('\n').collect();
    let line = e.pos.line as usize;
    line >= 1
        && line <= lines.len()
        && e.pos.column >= 1
        && e.pos.column as usize <= lines[line - 1].chars().count() + 1
}

const PIECES: &[&str] = &[
    "m1",
    "m2",
    "(",
    ")",
    "[",
    "]",
    ",",
    "+",
    "-",
    "*",
    "/",
    "^",
    "==",
    "<",
    ">=",
    "AND",
    "||",
    "SUM",
    "AVG",
    "FILL",
    "REPEAT",
    "LINEAR",
    "IF",
    "METRICS",
    "SORT",
    "DESC",
    "SLICE",
    "RATE",
    "TIME_SERIES",
    "FIRST",
    "1",
    "0",
    "2.5",
    "\"m\"",
    " ",
    "\n",
    "ANOMALY_DETECTION_BAND",
];

/// Well-formed expressions of any kind (some break the kind rules, which `check` reports).
fn expression_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("m1".to_string()),
        Just("m2".to_string()),
        Just("METRICS()".to_string()),
        Just("METRICS(\"1\")".to_string()),
        (-5i32..5).prop_map(|n| n.to_string()),
    ];
    leaf.prop_recursive(6, 64, 3, |inner| {
        let unary = prop::sample::select(
            &[
                "ABS",
                "AVG",
                "CEIL",
                "DATAPOINT_COUNT",
                "DIFF",
                "DIFF_TIME",
                "FIRST",
                "FLOOR",
                "LAST",
                "LOG",
                "LOG10",
                "MAX",
                "METRIC_COUNT",
                "MIN",
                "MINUTE",
                "HOUR",
                "DAY",
                "DATE",
                "MONTH",
                "YEAR",
                "EPOCH",
                "PERIOD",
                "RATE",
                "REMOVE_EMPTY",
                "RUNNING_SUM",
                "STDDEV",
                "SUM",
                "TIME_SERIES",
                "ANOMALY_DETECTION_BAND",
            ][..],
        );
        let op = prop::sample::select(
            &[
                "+", "-", "*", "/", "^", "==", "!=", "<", "<=", ">", ">=", "AND", "||",
            ][..],
        );
        prop_oneof![
            (unary, inner.clone()).prop_map(|(f, a)| format!("{f}({a})")),
            (inner.clone(), op, inner.clone()).prop_map(|(a, o, b)| format!("({a} {o} {b})")),
            inner.clone().prop_map(|a| format!("-{a}")),
            prop::collection::vec(inner.clone(), 1..4).prop_map(|v| format!("[{}]", v.join(", "))),
            (inner.clone(), inner.clone()).prop_map(|(c, a)| format!("IF({c}, {a})")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(c, a, b)| format!("IF({c}, {a}, {b})")),
            (
                inner.clone(),
                prop::sample::select(&["0", "REPEAT", "LINEAR"][..])
            )
                .prop_map(|(a, h)| format!("FILL({a}, {h})")),
            (
                inner.clone(),
                prop::sample::select(&["SUM", "AVG", "MIN", "MAX", "STDDEV"][..]),
                0usize..3
            )
                .prop_map(|(a, k, n)| format!("SORT({a}, {k}, DESC, {n})")),
            (inner, 0usize..3, 0usize..3).prop_map(|(a, x, y)| format!("SLICE({a}, {x}, {y})")),
        ]
    })
}

proptest! {
    #[test]
    fn well_formed_expressions_parse_check_and_evaluate(src in expression_text()) {
        let expr = match parse(&src) {
            Ok(e) => e,
            Err(e) => {
                // Only the size limits may refuse a well-formed expression.
                prop_assert_eq!(e.rule, "limit", "{}: {}", src, e);
                return Ok(());
            }
        };
        let kinds = |id: &str| matches!(id, "m1" | "m2").then_some(Kind::Series);
        let kind = match check(&expr, &kinds) {
            Ok(k) => k,
            Err(e) => {
                prop_assert!(matches!(e.rule, "kind" | "arity"), "{}: {}", src, e);
                prop_assert!(position_within(&src, &e), "{}: {}", src, e);
                return Ok(());
            }
        };
        let m1 = series("m1", &[(0, 1.0), (1, -2.0), (3, 0.0)]);
        let m2 = series("m2", &[(1, 4.0), (2, 0.5)]);
        let get = |id: &str| match id {
            "m1" => Some(Value::Series(m1.clone())),
            "m2" => Some(Value::Series(m2.clone())),
            _ => None,
        };
        let metrics = ["m1".to_string(), "m2".to_string()];
        let mut ctx = Context::new(Timestamp(0), Timestamp(4 * MIN), MIN, &get);
        ctx.metrics = &metrics;
        ctx.bands = &PlusMinusK;
        match evaluate(&expr, &ctx) {
            Ok(v) => prop_assert_eq!(v.kind(), kind, "{}", src),
            // Only IF over arrays of different lengths is a kind error found at run time.
            Err(e) => prop_assert!(e.rule == "kind" && e.message.contains("IF"), "{}: {}", src, e),
        }
    }
}

proptest! {
    #[test]
    fn parse_never_panics_and_positions_errors_within_the_input(src in any::<String>()) {
        if let Err(e) = parse(&src) {
            prop_assert!(position_within(&src, &e), "{:?} at {:?}", src, e);
        }
    }

    #[test]
    fn checked_expressions_evaluate_without_panics(
        pieces in prop::collection::vec(prop::sample::select(PIECES), 0..60)
    ) {
        let src = pieces.concat();
        match parse(&src) {
            Err(e) => prop_assert!(position_within(&src, &e), "{:?} at {:?}", src, e),
            Ok(expr) => {
                let kinds = |id: &str| matches!(id, "m1" | "m2").then_some(Kind::Series);
                if let Ok(kind) = check(&expr, &kinds) {
                    let m1 = series("m1", &[(0, 1.0), (1, -2.0), (3, 0.0)]);
                    let m2 = series("m2", &[(1, 4.0), (2, 0.5)]);
                    let get = |id: &str| match id {
                        "m1" => Some(Value::Series(m1.clone())),
                        "m2" => Some(Value::Series(m2.clone())),
                        _ => None,
                    };
                    let metrics = ["m1".to_string(), "m2".to_string()];
                    let mut ctx = Context::new(Timestamp(0), Timestamp(4 * MIN), MIN, &get);
                    ctx.metrics = &metrics;
                    ctx.bands = &PlusMinusK;
                    ctx.max_cost = 100_000;
                    match evaluate(&expr, &ctx) {
                        Ok(v) => {
                            prop_assert_eq!(v.kind(), kind, "{}", src);
                            let all = match &v {
                                Value::Scalar(_) => vec![],
                                Value::Series(s) => vec![s.clone()],
                                Value::Array(a) => a.clone(),
                            };
                            for s in all {
                                prop_assert!(s.points.windows(2).all(|w| w[0].0 < w[1].0), "{}", src);
                                prop_assert!(s.points.iter().all(|p| p.1.is_finite()), "{}", src);
                            }
                        }
                        Err(e) => prop_assert!(
                            matches!(e.rule, "cost" | "kind"),
                            "{}: {}", src, e
                        ),
                    }
                }
            }
        }
    }

    #[test]
    fn evaluation_is_deterministic(values in prop::collection::vec(-1e6f64..1e6, 0..30)) {
        let s = Series::new("m1", values.iter().enumerate().map(|(i, v)| (Timestamp(i as i64 * MIN), *v)).collect());
        let get = |id: &str| (id == "m1").then(|| Value::Series(s.clone()));
        let ctx = Context::new(Timestamp(0), Timestamp(30 * MIN), MIN, &get);
        let e = parse("RATE(FILL(m1, LINEAR)) + RUNNING_SUM(m1) / AVG(m1)").unwrap();
        prop_assert_eq!(evaluate(&e, &ctx), evaluate(&e, &ctx));
    }
}

#[test]
fn anomaly_alarms_return_the_metric_and_the_band() {
    // §3.12: the alarm compares m1 with the band ad1 named by ThresholdMetricId; both have
    // return_data.
    let mut m1 = metric("m1");
    m1.return_data = true;
    let band = expression("ad1", "ANOMALY_DETECTION_BAND(m1, 2)", true);
    let profile = Profile::Alarm {
        threshold_metric_id: Some("ad1"),
    };
    let plan = plan_queries(vec![m1.clone(), band.clone()], profile).unwrap();
    assert_eq!(plan.returned(), [0, 1]);
    assert_eq!(plan.kind(1), Some(Kind::Array));
    // Without ThresholdMetricId the same list has two returned queries, one an array.
    let errors = plan_queries(
        vec![m1.clone(), band],
        Profile::Alarm {
            threshold_metric_id: None,
        },
    )
    .unwrap_err();
    let rules: Vec<&str> = errors.iter().map(|e| e.rule).collect();
    assert_eq!(rules, ["return-data", "kind"]);
    // ThresholdMetricId must name a band expression.
    let other = expression("e1", "m1 * 2", true);
    let errors = plan_queries(
        vec![m1, other],
        Profile::Alarm {
            threshold_metric_id: Some("e1"),
        },
    )
    .unwrap_err();
    assert_eq!(errors[0].rule, "band");
}
