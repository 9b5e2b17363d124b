//! The type checker: the kind of every node, unknown ids, arity and argument kinds.

use super::parser::{Expr, Func, Node};
use super::{Kind, MathError};

/// What a node may be before the kind rules apply: a value, a string or a bare keyword.
enum Arg<'e> {
    Value(Kind),
    Text,
    Keyword(&'e str),
}

/// The kind of `expr`'s value; `ids` gives the kind of each id the expression may read
/// (`None` for an unknown id).
///
/// # Errors
/// A [`MathError`] at the first node that breaks a rule: an unknown id (`unknown-id`), a
/// wrong number of arguments (`arity`), an argument or operand of the wrong kind (`kind`).
pub fn check(expr: &Expr, ids: &dyn Fn(&str) -> Option<Kind>) -> Result<Kind, MathError> {
    match arg(expr, ids)? {
        Arg::Value(k) => Ok(k),
        Arg::Text => Err(MathError::new(
            expr.pos,
            "kind",
            "a string is only allowed as the argument of METRICS",
        )),
        Arg::Keyword(w) => Err(MathError::new(
            expr.pos,
            "kind",
            format!("{w} is only allowed as an argument of FILL or SORT"),
        )),
    }
}

fn arg<'e>(expr: &'e Expr, ids: &dyn Fn(&str) -> Option<Kind>) -> Result<Arg<'e>, MathError> {
    let kind = match &expr.node {
        Node::Number(_) => Kind::Scalar,
        Node::Text(_) => return Ok(Arg::Text),
        Node::Keyword(w) => return Ok(Arg::Keyword(w)),
        Node::Id(id) => ids(id).ok_or_else(|| {
            MathError::new(
                expr.pos,
                "unknown-id",
                format!("`{id}` is not the id of a query in this request"),
            )
        })?,
        Node::Neg(e) => check(e, ids)?,
        Node::Binary(_, a, b) => {
            let (ka, kb) = (check(a, ids)?, check(b, ids)?);
            combine(ka, kb).ok_or_else(|| {
                MathError::new(
                    expr.pos,
                    "kind",
                    "an operator cannot combine two arrays of time series",
                )
            })?
        }
        Node::Array(items) => {
            for item in items {
                let k = check(item, ids)?;
                if k == Kind::Scalar {
                    return Err(MathError::new(
                        item.pos,
                        "kind",
                        "an array holds time series, not scalars (use TIME_SERIES(x))",
                    ));
                }
            }
            Kind::Array
        }
        Node::Call(func, args) => call(expr, *func, args, ids)?,
    };
    Ok(Arg::Value(kind))
}

/// The kind of `a op b`, or `None` for two arrays.
fn combine(a: Kind, b: Kind) -> Option<Kind> {
    use Kind::*;
    Some(match (a, b) {
        (Array, Array) => return None,
        (Array, _) | (_, Array) => Array,
        (Series, _) | (_, Series) => Series,
        (Scalar, Scalar) => Scalar,
    })
}

fn call(
    expr: &Expr,
    func: Func,
    args: &[Expr],
    ids: &dyn Fn(&str) -> Option<Kind>,
) -> Result<Kind, MathError> {
    let name = func.name();
    let arity = |min: usize, max: usize| -> Result<(), MathError> {
        if args.len() < min || args.len() > max {
            let want = match (min, max) {
                (a, b) if a == b => format!("{a}"),
                (a, b) => format!("{a} to {b}"),
            };
            let s = if max == 1 { "" } else { "s" };
            return Err(MathError::new(
                expr.pos,
                "arity",
                format!("{name} takes {want} argument{s}, got {}", args.len()),
            ));
        }
        Ok(())
    };
    let bad = |at: &Expr, want: &str| -> MathError {
        MathError::new(
            at.pos,
            "kind",
            format!("{name}: the argument must be {want}"),
        )
    };
    let value = |at: &Expr, allowed: &[Kind], want: &str| -> Result<Kind, MathError> {
        let k = check(at, ids).map_err(|e| {
            if e.rule == "kind" && matches!(at.node, Node::Text(_) | Node::Keyword(_)) {
                bad(at, want)
            } else {
                e
            }
        })?;
        if allowed.contains(&k) {
            Ok(k)
        } else {
            Err(MathError::new(
                at.pos,
                "kind",
                format!("{name}: the argument must be {want}, not {k}"),
            ))
        }
    };
    use Kind::*;
    const ANY: &[Kind] = &[Scalar, Series, Array];
    const SERIES_OR_ARRAY: &[Kind] = &[Series, Array];
    Ok(match func {
        Func::Abs | Func::Ceil | Func::Floor | Func::Log | Func::Log10 => {
            arity(1, 1)?;
            value(&args[0], ANY, "a scalar, a time series or an array")?
        }
        Func::Avg | Func::Max | Func::Min | Func::Sum | Func::Stddev => {
            arity(1, 1)?;
            match value(&args[0], ANY, "a time series or an array")? {
                Array => Series,
                Series | Scalar => Scalar,
            }
        }
        Func::DatapointCount => {
            arity(1, 1)?;
            value(&args[0], &[Series], "one time series")?;
            Scalar
        }
        Func::Diff
        | Func::DiffTime
        | Func::Rate
        | Func::RunningSum
        | Func::Minute
        | Func::Hour
        | Func::Day
        | Func::Date
        | Func::Month
        | Func::Year
        | Func::Epoch
        | Func::RemoveEmpty => {
            arity(1, 1)?;
            if func == Func::RemoveEmpty {
                value(&args[0], &[Array], "an array of time series")?
            } else {
                value(&args[0], SERIES_OR_ARRAY, "a time series or an array")?
            }
        }
        Func::Fill => {
            arity(2, 2)?;
            let k = value(&args[0], SERIES_OR_ARRAY, "a time series or an array")?;
            match &args[1].node {
                Node::Keyword(w) if w == "REPEAT" || w == "LINEAR" => {}
                _ => {
                    value(&args[1], &[Scalar], "a scalar, REPEAT or LINEAR")?;
                }
            }
            k
        }
        Func::First | Func::Last => {
            arity(1, 1)?;
            value(&args[0], &[Array], "an array of time series")?;
            Series
        }
        Func::If => {
            arity(2, 3)?;
            let cond = value(
                &args[0],
                SERIES_OR_ARRAY,
                "a time series or an array (the condition)",
            )?;
            let mut k = cond;
            for a in &args[1..] {
                let ka = value(a, ANY, "a scalar, a time series or an array")?;
                k = match (k, ka) {
                    (Array, _) | (_, Array) => Array,
                    _ => Series,
                };
            }
            k
        }
        Func::MetricCount => {
            arity(1, 1)?;
            value(&args[0], &[Array], "an array of time series")?;
            Scalar
        }
        Func::Metrics => {
            arity(0, 1)?;
            if let Some(a) = args.first()
                && !matches!(a.node, Node::Text(_))
            {
                return Err(bad(a, "a string (the filter)"));
            }
            Array
        }
        Func::Period => {
            arity(1, 1)?;
            value(&args[0], SERIES_OR_ARRAY, "a time series or an array")?;
            Scalar
        }
        Func::Slice => {
            arity(3, 3)?;
            value(&args[0], &[Array], "an array of time series")?;
            for a in &args[1..] {
                index(a, name)?;
            }
            Array
        }
        Func::Sort => {
            arity(3, 4)?;
            value(&args[0], &[Array], "an array of time series")?;
            match &args[1].node {
                Node::Keyword(w)
                    if matches!(w.as_str(), "SUM" | "AVG" | "MIN" | "MAX" | "STDDEV") => {}
                _ => {
                    return Err(MathError::new(
                        args[1].pos,
                        "kind",
                        "SORT: the second argument must be SUM, AVG, MIN, MAX or STDDEV",
                    ));
                }
            }
            match &args[2].node {
                Node::Keyword(w) if w == "ASC" || w == "DESC" => {}
                _ => {
                    return Err(MathError::new(
                        args[2].pos,
                        "kind",
                        "SORT: the third argument must be ASC or DESC",
                    ));
                }
            }
            if let Some(limit) = args.get(3) {
                index(limit, name)?;
            }
            Array
        }
        Func::TimeSeries => {
            arity(1, 1)?;
            value(&args[0], &[Scalar], "a scalar")?;
            Series
        }
        Func::AnomalyDetectionBand => {
            arity(1, 2)?;
            if !matches!(args[0].node, Node::Id(_)) {
                return Err(bad(&args[0], "the id of a query"));
            }
            value(&args[0], &[Series], "one time series")?;
            if let Some(k) = args.get(1) {
                value(
                    k,
                    &[Scalar],
                    "a scalar (the band width in standard deviations)",
                )?;
            }
            Array
        }
    })
}

/// A non-negative integer literal (a SLICE bound or a SORT limit).
fn index(at: &Expr, name: &str) -> Result<(), MathError> {
    match at.node {
        Node::Number(n) if n >= 0.0 && n.fract() == 0.0 => Ok(()),
        _ => Err(MathError::new(
            at.pos,
            "kind",
            format!("{name}: this argument must be a whole number ≥ 0"),
        )),
    }
}
