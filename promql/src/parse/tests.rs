use proptest::prelude::*;

use super::*;
use crate::error::ErrorType;
use crate::plan::Plan;

fn unsupported_named(q: &str, construct: &str) {
    match Plan::try_new(q) {
        Err(e @ Error::Unsupported(_)) => {
            assert_eq!(e.error_type(), ErrorType::BadData);
            let m = e.to_string();
            assert!(m.contains(construct), "{q}: {m} should name {construct}");
        }
        other => panic!("{q}: expected unsupported {construct}, got {other:?}"),
    }
}

#[test]
fn parses_the_supported_subset() {
    for q in [
        "x",
        r#"x{namespace="App", Host=~"a|b", stat="p99"}"#,
        r#"{__name__="x", Host!="a", Az!~"b.*"}"#,
        r#"{"http.server.duration", "k8s.pod"="p"}"#,
        "rate(x[5m])",
        "increase(x[1h30m])",
        "sum by (Host) (rate(x[5m]))",
        "sum(rate(x[5m])) by (Host)",
        "avg without (Host) (x)",
        "min(x)",
        "max(x)",
        "count(x)",
        "histogram_quantile(0.9, rate(x_bucket[5m]))",
        "histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))",
        "histogram_quantile(0.99, rate(x[5m]))",
        "1 + 1",
        "-x * 2 ^ 3 % 4 / 5 - 6",
        "x > bool 3",
        "3 < x",
        "x == 1",
        "1 == bool 1",
        "x + on (Host) y",
        "x / ignoring (Az) y",
        "(x)",
        "x # a comment",
    ] {
        Plan::try_new(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    }
}

#[test]
fn precedence_follows_promql() {
    // `-2 ^ 2` is `-(2 ^ 2)`; `^` is right-associative; `*` binds tighter than `+`.
    let e = parse("-2 ^ 2").unwrap();
    assert!(matches!(e, Expr::Neg(_)), "{e:?}");
    let Expr::Binary { op, rhs, .. } = parse("2 ^ 3 ^ 2").unwrap() else {
        panic!()
    };
    assert_eq!(op, BinOp::Pow);
    assert!(matches!(*rhs, Expr::Binary { op: BinOp::Pow, .. }));
    let Expr::Binary { op, .. } = parse("1 + 2 * 3").unwrap() else {
        panic!()
    };
    assert_eq!(op, BinOp::Add);
    let Expr::Binary { op, lhs, .. } = parse("1 - 2 - 3").unwrap() else {
        panic!()
    };
    assert_eq!(op, BinOp::Sub);
    assert!(matches!(*lhs, Expr::Binary { op: BinOp::Sub, .. }));
}

/// Every construct the documentation lists as unsupported, refused by name.
#[test]
fn unsupported_constructs_are_refused_by_name() {
    for (q, construct) in [
        ("x offset 5m", "offset"),
        ("rate(x[5m] offset 1m)", "offset"),
        ("x @ 1609746000", "@"),
        ("x @ start()", "@"),
        ("rate(x[5m:1m])", "subquery"),
        ("max_over_time(rate(x[5m])[1h:])", "max_over_time"),
        ("sum(x)[5m:1m]", "subquery"),
        ("predict_linear(x[5m], 60)", "predict_linear"),
        ("irate(x[5m])", "irate"),
        ("delta(x[5m])", "delta"),
        ("abs(x)", "abs"),
        (
            "label_replace(x, \"a\", \"b\", \"c\", \"d\")",
            "label_replace",
        ),
        ("vector(1)", "vector"),
        ("scalar(x)", "scalar"),
        ("time()", "time"),
        ("sum_over_time(x[5m])", "sum_over_time"),
        ("topk(3, x)", "topk"),
        ("bottomk(3, x)", "bottomk"),
        ("quantile(0.5, x)", "quantile"),
        ("stddev(x)", "stddev"),
        ("stdvar(x)", "stdvar"),
        ("count_values(\"v\", x)", "count_values"),
        ("group(x)", "group"),
        ("x and y", "and"),
        ("x or y", "or"),
        ("x unless y", "unless"),
        ("x / on (a) group_left y", "group_left"),
        ("x * ignoring (a) group_right (b) y", "group_right"),
        ("x atan2 y", "atan2"),
        ("\"text\"", "string literal"),
        ("x[5m]", "range vector"),
        ("x[5m] + 1", "range vector"),
        (
            "histogram_quantile(0.9, x_bucket)",
            "histogram_quantile over anything",
        ),
        (
            "histogram_quantile(0.9, rate(x_bucket{le=\"1\"}[5m]))",
            "`le`",
        ),
        ("histogram_quantile(x, rate(x_bucket[5m]))", "φ"),
        (
            "histogram_quantile(0.9, rate(x{stat=\"p50\"}[5m]))",
            "`stat`",
        ),
        ("rate(x{stat=\"Average\"}[5m])", "`stat"),
        ("x{stat=~\"p.*\"}", "pseudo-label `stat`"),
        ("x{unit!=\"Bytes\"}", "pseudo-label `unit`"),
        ("rate(sum(x))", "rate over anything but a range vector"),
        ("5m", "duration"),
    ] {
        unsupported_named(q, construct);
    }
}

#[test]
fn syntax_and_type_errors_are_bad_data() {
    for q in [
        "",
        "x{",
        "x{a=}",
        "x{a=\"b\"",
        "sum(",
        "rate(x)",
        "rate(x[5m], 1)",
        "sum(1)",
        "1 > 2",
        "1 + on (a) x",
        "{a=\"\"}",
        "{}",
        "x{stat=\"p101\"}",
        "x{unit=\"Furlongs\"}",
        "x{a=~\"(\"}",
        "nosuchfunc(x)",
        "x +",
        "x $ y",
        "sum by (a) by (b) (x)",
        "x + bool 1",
    ] {
        let e = Plan::try_new(q).expect_err(q);
        assert_eq!(e.error_type(), ErrorType::BadData, "{q}: {e}");
    }
    let e = Plan::try_new("x + )").unwrap_err().to_string();
    assert!(e.contains("byte 4"), "{e}");
}

#[test]
fn bounds_are_refused_naming_the_limit() {
    let long = "x".repeat(MAX_QUERY_BYTES + 1);
    let e = Plan::try_new(&long).unwrap_err();
    assert!(
        matches!(e, Error::Limit(_)) && e.to_string().contains("65536"),
        "{e}"
    );
    let deep = format!("{}x{}", "(".repeat(10_000), ")".repeat(10_000));
    let e = Plan::try_new(&deep).unwrap_err();
    assert!(e.to_string().contains("nests deeper than 100"), "{e}");
    let minus = format!("{}x", "-".repeat(10_000));
    assert!(matches!(
        Plan::try_new(&minus).unwrap_err(),
        Error::Limit(_)
    ));
    let chain = vec!["x"; 5_000].join(" + ");
    let e = Plan::try_new(&chain).unwrap_err();
    assert!(matches!(e, Error::Limit(_)), "{e}");
    let many = vec!["sum(x)"; 1_100].join(" + ");
    assert!(matches!(Plan::try_new(&many).unwrap_err(), Error::Limit(_)));
    let huge_re = format!(
        "x{{a=~\"{}\"}}",
        "a".repeat(crate::limits::MAX_REGEX_BYTES + 1)
    );
    let e = Plan::try_new(&huge_re).unwrap_err();
    assert!(e.to_string().contains("4096 bytes"), "{e}");
    let blowup = "x{a=~\"((a{100}){100}){100}\"}";
    let e = Plan::try_new(blowup).unwrap_err();
    assert!(
        matches!(e, Error::Limit(_)) && e.to_string().contains("compiles"),
        "{e}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Random text never panics and always answers a bounded error or a plan.
    #[test]
    fn random_text_never_panics(s in "\\PC{0,200}") {
        let _ = Plan::try_new(&s);
    }

    /// Text made of PromQL's own tokens, shuffled.
    #[test]
    fn token_soup_never_panics(parts in proptest::collection::vec(prop_oneof![
        Just("x"), Just("("), Just(")"), Just("{"), Just("}"), Just("["), Just("]"),
        Just("5m"), Just(":"), Just(","), Just("="), Just("=~"), Just("\"a\""), Just("+"),
        Just("-"), Just("^"), Just("bool"), Just("by"), Just("on"), Just("sum"), Just("rate"),
        Just("histogram_quantile"), Just("0.5"), Just("offset"), Just("@"), Just(">"),
    ], 0..60)) {
        let q = parts.join(" ");
        if let Err(e) = Plan::try_new(&q) {
            prop_assert!(e.to_string().len() < 2_000);
        }
    }

    /// Deep nesting of any bracket, and long operator chains, are refused by a limit.
    #[test]
    fn deep_input_is_refused(depth in 101usize..20_000, open in prop_oneof![
        Just("("), Just("-"), Just("sum("), Just("rate("),
    ]) {
        let q = format!("{}x", open.repeat(depth));
        let e = Plan::try_new(&q).unwrap_err();
        prop_assert!(matches!(e, Error::Limit(_)), "{}", e);
    }
}

#[test]
fn a_megabyte_query_is_refused_quickly() {
    let q = format!("x{{a=\"{}\"}}", "b".repeat(1_000_000));
    assert!(matches!(Plan::try_new(&q).unwrap_err(), Error::Limit(_)));
}
