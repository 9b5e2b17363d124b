//! The evaluator: values of expressions over aligned time series, within a cost budget.

use std::fmt;

use thermostat_metrics::Timestamp;

use super::parser::{BinOp, Expr, Func, Node};
use super::{Bands, DEFAULT_MAX_COST, MathError, Pos, Series, Value};

/// What an evaluation reads: the request's time range and period, the inputs by id, the ids
/// `METRICS()` lists, the anomaly-detection port and the cost budget.
pub struct Context<'a> {
    /// Start of the request (inclusive).
    pub start: Timestamp,
    /// End of the request (exclusive).
    pub end: Timestamp,
    /// The period in milliseconds (> 0); the grid of `TIME_SERIES` and `FILL` is its
    /// multiples in `[start, end)`.
    pub period_ms: i64,
    /// The value of each id (`None` for an unknown id): metric data the caller fetched, or
    /// the results of other expressions.
    pub inputs: &'a dyn Fn(&str) -> Option<Value>,
    /// The ids `METRICS()` returns, in request order (the request's `metric_stat` queries);
    /// `METRICS("s")` keeps those whose id contains `s`.
    pub metrics: &'a [String],
    /// Where `ANOMALY_DETECTION_BAND` gets its band.
    pub bands: &'a dyn Bands,
    /// The evaluation budget in points produced, summed over every node.
    pub max_cost: u64,
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("start", &self.start)
            .field("end", &self.end)
            .field("period_ms", &self.period_ms)
            .field("metrics", &self.metrics)
            .field("max_cost", &self.max_cost)
            .finish_non_exhaustive()
    }
}

impl<'a> Context<'a> {
    /// A context with no `METRICS()`, no anomaly bands and the default budget.
    pub fn new(
        start: Timestamp,
        end: Timestamp,
        period_ms: i64,
        inputs: &'a dyn Fn(&str) -> Option<Value>,
    ) -> Self {
        Context {
            start,
            end,
            period_ms,
            inputs,
            metrics: &[],
            bands: &NoBands,
            max_cost: DEFAULT_MAX_COST,
        }
    }
}

/// A [`Bands`] port without a model: every band request fails.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoBands;

impl Bands for NoBands {
    fn band(&self, id: &str, _: &Series, _: f64) -> Result<(Series, Series), String> {
        Err(format!(
            "no anomaly-detection model is available for `{id}`"
        ))
    }
}

struct Budget {
    left: u64,
    max: u64,
}

impl Budget {
    fn charge(&mut self, n: usize, pos: Pos) -> Result<(), MathError> {
        let n = u64::try_from(n).unwrap_or(u64::MAX).saturating_add(1);
        if n > self.left {
            return Err(MathError::new(
                pos,
                "cost",
                format!(
                    "evaluation would exceed its budget of {} points; shorten the range or simplify the expression",
                    self.max
                ),
            ));
        }
        self.left -= n;
        Ok(())
    }
}

/// Evaluates a checked expression (see [`super::check`]).
///
/// # Errors
/// A [`MathError`] when the context is invalid (`input`: period not positive, end before
/// start), an id has no input or an input of the wrong kind, the anomaly port fails, the
/// budget is exhausted (`cost`), or the expression was not checked and breaks a kind rule.
pub fn evaluate(expr: &Expr, ctx: &Context<'_>) -> Result<Value, MathError> {
    evaluate_counting(expr, ctx).map(|(v, _)| v)
}

/// [`evaluate`], also returning the cost used (for a budget shared by several expressions).
pub(super) fn evaluate_counting(expr: &Expr, ctx: &Context<'_>) -> Result<(Value, u64), MathError> {
    if ctx.period_ms <= 0 {
        return Err(MathError::new(
            expr.pos,
            "input",
            "the period must be positive",
        ));
    }
    if ctx.end < ctx.start {
        return Err(MathError::new(
            expr.pos,
            "input",
            "the end of the range is before its start",
        ));
    }
    let mut budget = Budget {
        left: ctx.max_cost,
        max: ctx.max_cost,
    };
    let v = eval(expr, ctx, &mut budget)?;
    Ok((v, ctx.max_cost - budget.left))
}

fn kind_error(pos: Pos, message: impl Into<String>) -> MathError {
    MathError::new(pos, "kind", message)
}

fn eval(e: &Expr, cx: &Context<'_>, b: &mut Budget) -> Result<Value, MathError> {
    let v = match &e.node {
        Node::Number(n) => Value::Scalar(*n),
        Node::Text(_) | Node::Keyword(_) => {
            return Err(kind_error(e.pos, "a string or keyword is not a value here"));
        }
        Node::Id(id) => input(id, e.pos, cx)?,
        Node::Neg(inner) => {
            let v = eval(inner, cx, b)?;
            map_value(v, |_, x| Some(-x))
        }
        Node::Binary(op, l, r) => {
            let (l, r) = (eval(l, cx, b)?, eval(r, cx, b)?);
            binary(*op, l, r, e.pos)?
        }
        Node::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                match eval(item, cx, b)? {
                    Value::Series(s) => out.push(s),
                    Value::Array(a) => out.extend(a),
                    Value::Scalar(_) => {
                        return Err(kind_error(
                            item.pos,
                            "an array holds time series, not scalars",
                        ));
                    }
                }
            }
            Value::Array(out)
        }
        Node::Call(func, args) => call(e, *func, args, cx, b)?,
    };
    b.charge(size(&v), e.pos)?;
    Ok(v)
}

/// A value's cost: its points plus its series (so arrays of empty series are not free).
fn size(v: &Value) -> usize {
    match v {
        Value::Scalar(_) => 0,
        Value::Series(s) => 1 + s.points.len(),
        Value::Array(a) => a.iter().map(|s| 1 + s.points.len()).sum(),
    }
}

fn input(id: &str, pos: Pos, cx: &Context<'_>) -> Result<Value, MathError> {
    let v = (cx.inputs)(id).ok_or_else(|| {
        MathError::new(
            pos,
            "unknown-id",
            format!("no data for `{id}`: it is not a query in this request"),
        )
    })?;
    Ok(match v {
        Value::Series(mut s) => {
            s.normalize();
            Value::Series(s)
        }
        Value::Array(mut a) => {
            a.iter_mut().for_each(Series::normalize);
            Value::Array(a)
        }
        s @ Value::Scalar(_) => s,
    })
}

// === per-point helpers ===

fn map_series(s: &Series, f: impl Fn(Timestamp, f64) -> Option<f64>) -> Series {
    Series {
        label: s.label.clone(),
        points: s
            .points
            .iter()
            .filter_map(|&(t, v)| f(t, v).filter(|r| r.is_finite()).map(|r| (t, r)))
            .collect(),
    }
}

/// Applies `f` to every point; a scalar has no timestamp (`t` = epoch) and NaN for no value.
fn map_value(v: Value, f: impl Fn(Timestamp, f64) -> Option<f64>) -> Value {
    match v {
        Value::Scalar(x) => Value::Scalar(
            Some(x)
                .filter(|x| !x.is_nan())
                .and_then(|x| f(Timestamp::EPOCH, x))
                .filter(|r| r.is_finite())
                .unwrap_or(f64::NAN),
        ),
        Value::Series(s) => Value::Series(map_series(&s, &f)),
        Value::Array(a) => Value::Array(a.iter().map(|s| map_series(s, &f)).collect()),
    }
}

fn apply(op: BinOp, x: f64, y: f64) -> Option<f64> {
    if x.is_nan() || y.is_nan() {
        return None;
    }
    let bool = |b: bool| if b { 1.0 } else { 0.0 };
    let r = match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div if y == 0.0 => return None,
        BinOp::Div => x / y,
        BinOp::Pow => x.powf(y),
        BinOp::Eq => bool(x == y),
        BinOp::Ne => bool(x != y),
        BinOp::Lt => bool(x < y),
        BinOp::Le => bool(x <= y),
        BinOp::Gt => bool(x > y),
        BinOp::Ge => bool(x >= y),
        BinOp::And => bool(x != 0.0 && y != 0.0),
        BinOp::Or => bool(x != 0.0 || y != 0.0),
    };
    r.is_finite().then_some(r)
}

/// The union of both series' timestamps, a missing value counting as 0.
fn zip(a: &Series, b: &Series, f: impl Fn(f64, f64) -> Option<f64>) -> Series {
    let (mut i, mut j) = (0, 0);
    let mut points = Vec::with_capacity(a.points.len().max(b.points.len()));
    while i < a.points.len() || j < b.points.len() {
        let (ta, tb) = (a.points.get(i).map(|p| p.0), b.points.get(j).map(|p| p.0));
        let (t, x, y) = match (ta, tb) {
            (Some(ta), Some(tb)) if ta == tb => {
                i += 1;
                j += 1;
                (ta, a.points[i - 1].1, b.points[j - 1].1)
            }
            (Some(ta), Some(tb)) if ta < tb => {
                i += 1;
                (ta, a.points[i - 1].1, 0.0)
            }
            (Some(ta), None) => {
                i += 1;
                (ta, a.points[i - 1].1, 0.0)
            }
            (_, Some(tb)) => {
                j += 1;
                (tb, 0.0, b.points[j - 1].1)
            }
            (None, None) => break,
        };
        if let Some(r) = f(x, y).filter(|r| r.is_finite()) {
            points.push((t, r));
        }
    }
    let label = if a.label == b.label {
        a.label.clone()
    } else {
        String::new()
    };
    Series { label, points }
}

fn binary(op: BinOp, l: Value, r: Value, pos: Pos) -> Result<Value, MathError> {
    let f = |x, y| apply(op, x, y);
    Ok(match (l, r) {
        (Value::Scalar(x), Value::Scalar(y)) => Value::Scalar(f(x, y).unwrap_or(f64::NAN)),
        (Value::Scalar(x), Value::Series(s)) => Value::Series(map_series(&s, |_, v| f(x, v))),
        (Value::Series(s), Value::Scalar(y)) => Value::Series(map_series(&s, |_, v| f(v, y))),
        (Value::Series(a), Value::Series(b)) => Value::Series(zip(&a, &b, f)),
        (Value::Array(_), Value::Array(_)) => {
            return Err(kind_error(
                pos,
                "an operator cannot combine two arrays of time series",
            ));
        }
        (Value::Array(a), other) => Value::Array(
            a.into_iter()
                .map(
                    |s| match binary(op, Value::Series(s), other.clone(), pos)? {
                        Value::Series(s) => Ok(s),
                        _ => Err(kind_error(
                            pos,
                            "internal: array item did not stay a series",
                        )),
                    },
                )
                .collect::<Result<_, _>>()?,
        ),
        (other, Value::Array(a)) => Value::Array(
            a.into_iter()
                .map(
                    |s| match binary(op, other.clone(), Value::Series(s), pos)? {
                        Value::Series(s) => Ok(s),
                        _ => Err(kind_error(
                            pos,
                            "internal: array item did not stay a series",
                        )),
                    },
                )
                .collect::<Result<_, _>>()?,
        ),
    })
}

// === aggregates ===

#[derive(Clone, Copy)]
enum Agg {
    Sum,
    Avg,
    Min,
    Max,
    Stddev,
}

fn reduce(agg: Agg, vals: &[f64]) -> f64 {
    if vals.is_empty() {
        return f64::NAN;
    }
    let n = vals.len() as f64;
    let sum: f64 = vals.iter().sum();
    match agg {
        Agg::Sum => sum,
        Agg::Avg => sum / n,
        Agg::Min => vals.iter().copied().fold(f64::INFINITY, f64::min),
        Agg::Max => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Agg::Stddev => {
            let mean = sum / n;
            (vals.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt()
        }
    }
}

fn series_values(s: &Series) -> Vec<f64> {
    s.points.iter().map(|p| p.1).collect()
}

/// Per timestamp over the series that have a point there.
fn reduce_array(agg: Agg, a: &[Series], b: &mut Budget, pos: Pos) -> Result<Series, MathError> {
    let mut all: Vec<(Timestamp, f64)> = Vec::new();
    for s in a {
        b.charge(s.points.len(), pos)?;
        all.extend_from_slice(&s.points);
    }
    all.sort_by_key(|p| p.0);
    let mut points = Vec::new();
    let mut i = 0;
    let mut vals = Vec::new();
    while i < all.len() {
        let t = all[i].0;
        vals.clear();
        while i < all.len() && all[i].0 == t {
            vals.push(all[i].1);
            i += 1;
        }
        let r = reduce(agg, &vals);
        if r.is_finite() {
            points.push((t, r));
        }
    }
    Ok(Series {
        label: String::new(),
        points,
    })
}

// === time ===

/// `(year, month, day of month, hour, minute, ISO weekday)` of a time in UTC.
fn civil(t: Timestamp) -> (i64, i64, i64, i64, i64, i64) {
    let secs = t.as_millis().div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let weekday = (days.rem_euclid(7) + 3) % 7 + 1;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, sod / 3600, (sod % 3600) / 60, weekday)
}

/// Seconds from `a` to `b` (no overflow for any two times).
fn seconds_between(a: Timestamp, b: Timestamp) -> f64 {
    (i128::from(b.as_millis()) - i128::from(a.as_millis())) as f64 / 1000.0
}

/// The request's grid: the multiples of the period in `[start, end)`.
fn grid(cx: &Context<'_>, b: &mut Budget, pos: Pos) -> Result<Vec<Timestamp>, MathError> {
    let p = i128::from(cx.period_ms);
    let start = i128::from(cx.start.as_millis());
    let first = start.div_euclid(p) * p + if start.rem_euclid(p) != 0 { p } else { 0 };
    let end = i128::from(cx.end.as_millis());
    let n = if end > first {
        (end - first - 1) / p + 1
    } else {
        0
    };
    b.charge(usize::try_from(n).unwrap_or(usize::MAX), pos)?;
    // `n` fits the budget, and every time is below `end`, so each is an `i64`.
    Ok((0..n)
        .filter_map(|k| i64::try_from(first + k * p).ok().map(Timestamp))
        .collect())
}

enum FillWith {
    Value(f64),
    Repeat,
    Linear,
}

fn fill(s: &Series, how: &FillWith, grid: &[Timestamp]) -> Series {
    let mut points = Vec::with_capacity(s.points.len() + grid.len());
    let (mut i, mut g) = (0, 0);
    while i < s.points.len() || g < grid.len() {
        let next_real = s.points.get(i).map(|p| p.0);
        let next_grid = grid.get(g).copied();
        match (next_real, next_grid) {
            (Some(r), Some(gt)) if r <= gt => {
                points.push(s.points[i]);
                i += 1;
                if r == gt {
                    g += 1;
                }
            }
            (_, Some(gt)) => {
                g += 1;
                let prev = i.checked_sub(1).map(|k| s.points[k]);
                let next = s.points.get(i).copied();
                let v = match how {
                    FillWith::Value(v) => Some(*v),
                    FillWith::Repeat => prev.map(|p| p.1),
                    FillWith::Linear => match (prev, next) {
                        (Some((t0, v0)), Some((t1, v1))) => {
                            let f = seconds_between(t0, gt) / seconds_between(t0, t1);
                            Some(v0 + (v1 - v0) * f)
                        }
                        _ => None,
                    },
                };
                if let Some(v) = v.filter(|v| v.is_finite()) {
                    points.push((gt, v));
                }
            }
            (Some(_), None) => {
                points.push(s.points[i]);
                i += 1;
            }
            (None, None) => break,
        }
    }
    Series {
        label: s.label.clone(),
        points,
    }
}

// === calls ===

fn per_series(v: Value, pos: Pos, f: impl Fn(&Series) -> Series) -> Result<Value, MathError> {
    Ok(match v {
        Value::Series(s) => Value::Series(f(&s)),
        Value::Array(a) => Value::Array(a.iter().map(f).collect()),
        Value::Scalar(_) => {
            return Err(kind_error(
                pos,
                "expected a time series or an array, got a scalar",
            ));
        }
    })
}

fn pairwise(s: &Series, f: impl Fn((Timestamp, f64), (Timestamp, f64)) -> f64) -> Series {
    Series {
        label: s.label.clone(),
        points: s
            .points
            .windows(2)
            .map(|w| (w[1].0, f(w[0], w[1])))
            .filter(|p| p.1.is_finite())
            .collect(),
    }
}

fn scalar_arg(e: &Expr, cx: &Context<'_>, b: &mut Budget) -> Result<f64, MathError> {
    match eval(e, cx, b)? {
        Value::Scalar(x) => Ok(x),
        other => Err(kind_error(
            e.pos,
            format!("expected a scalar, got {}", other.kind()),
        )),
    }
}

fn array_arg(e: &Expr, cx: &Context<'_>, b: &mut Budget) -> Result<Vec<Series>, MathError> {
    match eval(e, cx, b)? {
        Value::Array(a) => Ok(a),
        other => Err(kind_error(
            e.pos,
            format!("expected an array of time series, got {}", other.kind()),
        )),
    }
}

fn keyword(e: &Expr) -> Option<&str> {
    match &e.node {
        Node::Keyword(w) => Some(w),
        _ => None,
    }
}

fn agg_of(w: &str) -> Option<Agg> {
    Some(match w {
        "SUM" => Agg::Sum,
        "AVG" => Agg::Avg,
        "MIN" => Agg::Min,
        "MAX" => Agg::Max,
        "STDDEV" => Agg::Stddev,
        _ => return None,
    })
}

fn whole(x: f64) -> usize {
    if x.is_finite() && x > 0.0 {
        x.min(usize::MAX as f64) as usize
    } else {
        0
    }
}

fn call(
    e: &Expr,
    func: Func,
    args: &[Expr],
    cx: &Context<'_>,
    b: &mut Budget,
) -> Result<Value, MathError> {
    let pos = e.pos;
    let arity_error = || {
        MathError::new(
            pos,
            "arity",
            format!(
                "{}: wrong number of arguments (check the expression first)",
                func.name()
            ),
        )
    };
    let arg = |k: usize| args.get(k).ok_or_else(arity_error);
    Ok(match func {
        Func::Abs => map_value(eval(arg(0)?, cx, b)?, |_, x| Some(x.abs())),
        Func::Ceil => map_value(eval(arg(0)?, cx, b)?, |_, x| Some(x.ceil())),
        Func::Floor => map_value(eval(arg(0)?, cx, b)?, |_, x| Some(x.floor())),
        Func::Log => map_value(eval(arg(0)?, cx, b)?, |_, x| Some(x.ln())),
        Func::Log10 => map_value(eval(arg(0)?, cx, b)?, |_, x| Some(x.log10())),
        Func::Sum | Func::Avg | Func::Min | Func::Max | Func::Stddev => {
            let agg = match func {
                Func::Sum => Agg::Sum,
                Func::Avg => Agg::Avg,
                Func::Min => Agg::Min,
                Func::Max => Agg::Max,
                _ => Agg::Stddev,
            };
            match eval(arg(0)?, cx, b)? {
                Value::Scalar(x) if matches!(agg, Agg::Stddev) && !x.is_nan() => Value::Scalar(0.0),
                Value::Scalar(x) => Value::Scalar(x),
                Value::Series(s) => Value::Scalar(reduce(agg, &series_values(&s))),
                Value::Array(a) => Value::Series(reduce_array(agg, &a, b, pos)?),
            }
        }
        Func::DatapointCount => match eval(arg(0)?, cx, b)? {
            Value::Series(s) => Value::Scalar(s.points.len() as f64),
            other => {
                return Err(kind_error(
                    pos,
                    format!(
                        "DATAPOINT_COUNT takes one time series, not {}",
                        other.kind()
                    ),
                ));
            }
        },
        Func::Diff => per_series(eval(arg(0)?, cx, b)?, pos, |s| {
            pairwise(s, |p0, p1| p1.1 - p0.1)
        })?,
        Func::DiffTime => per_series(eval(arg(0)?, cx, b)?, pos, |s| {
            pairwise(s, |p0, p1| seconds_between(p0.0, p1.0))
        })?,
        Func::Rate => per_series(eval(arg(0)?, cx, b)?, pos, |s| {
            pairwise(s, |p0, p1| (p1.1 - p0.1) / seconds_between(p0.0, p1.0))
        })?,
        Func::RunningSum => per_series(eval(arg(0)?, cx, b)?, pos, |s| {
            let mut acc = 0.0;
            Series {
                label: s.label.clone(),
                points: s
                    .points
                    .iter()
                    .filter_map(|&(t, v)| {
                        acc += v;
                        acc.is_finite().then_some((t, acc))
                    })
                    .collect(),
            }
        })?,
        Func::Minute
        | Func::Hour
        | Func::Day
        | Func::Date
        | Func::Month
        | Func::Year
        | Func::Epoch => {
            let v = eval(arg(0)?, cx, b)?;
            per_series(v, pos, |s| {
                map_series(s, |t, _| {
                    let (y, mo, d, h, mi, wd) = civil(t);
                    Some(match func {
                        Func::Minute => mi as f64,
                        Func::Hour => h as f64,
                        Func::Day => wd as f64,
                        Func::Date => d as f64,
                        Func::Month => mo as f64,
                        Func::Year => y as f64,
                        _ => t.as_millis().div_euclid(1000) as f64,
                    })
                })
            })?
        }
        Func::Fill => {
            let v = eval(arg(0)?, cx, b)?;
            let how_arg = arg(1)?;
            let how = match keyword(how_arg) {
                Some("REPEAT") => FillWith::Repeat,
                Some("LINEAR") => FillWith::Linear,
                Some(w) => {
                    return Err(kind_error(
                        how_arg.pos,
                        format!("FILL: {w} is not REPEAT or LINEAR"),
                    ));
                }
                None => FillWith::Value(scalar_arg(how_arg, cx, b)?),
            };
            let g = grid(cx, b, pos)?;
            if let Value::Array(a) = &v {
                b.charge(g.len().saturating_mul(a.len()), pos)?;
            }
            per_series(v, pos, |s| fill(s, &how, &g))?
        }
        Func::First | Func::Last => {
            let a = array_arg(arg(0)?, cx, b)?;
            let s = if func == Func::First {
                a.into_iter().next()
            } else {
                a.into_iter().last()
            };
            Value::Series(s.unwrap_or_default())
        }
        Func::If => if_(e, args, cx, b)?,
        Func::MetricCount => Value::Scalar(array_arg(arg(0)?, cx, b)?.len() as f64),
        Func::Metrics => {
            let filter = match args.first().map(|a| &a.node) {
                None => "",
                Some(Node::Text(t)) => t.as_str(),
                Some(_) => return Err(kind_error(pos, "METRICS: the filter must be a string")),
            };
            let mut out = Vec::new();
            for id in cx.metrics.iter().filter(|id| id.contains(filter)) {
                match input(id, pos, cx)? {
                    Value::Series(s) => out.push(s),
                    Value::Array(a) => out.extend(a),
                    Value::Scalar(_) => {}
                }
            }
            Value::Array(out)
        }
        Func::Period => {
            eval(arg(0)?, cx, b)?;
            Value::Scalar(cx.period_ms as f64 / 1000.0)
        }
        Func::RemoveEmpty => {
            let mut a = array_arg(arg(0)?, cx, b)?;
            a.retain(|s| !s.points.is_empty());
            Value::Array(a)
        }
        Func::Slice => {
            let a = array_arg(arg(0)?, cx, b)?;
            let from = whole(scalar_arg(arg(1)?, cx, b)?).min(a.len());
            let to = whole(scalar_arg(arg(2)?, cx, b)?).clamp(from, a.len());
            Value::Array(a[from..to].to_vec())
        }
        Func::Sort => {
            let a = array_arg(arg(0)?, cx, b)?;
            let agg_arg = arg(1)?;
            let agg = keyword(agg_arg).and_then(agg_of).ok_or_else(|| {
                kind_error(
                    agg_arg.pos,
                    "SORT: the second argument must be SUM, AVG, MIN, MAX or STDDEV",
                )
            })?;
            let desc = match keyword(arg(2)?) {
                Some("ASC") => false,
                Some("DESC") => true,
                _ => {
                    return Err(kind_error(
                        args[2].pos,
                        "SORT: the third argument must be ASC or DESC",
                    ));
                }
            };
            let limit = match args.get(3) {
                Some(l) => whole(scalar_arg(l, cx, b)?),
                None => usize::MAX,
            };
            let mut keyed: Vec<(f64, Series)> = a
                .into_iter()
                .map(|s| (reduce(agg, &series_values(&s)), s))
                .collect();
            // Stable; series without a value go last in either order.
            keyed.sort_by(|(x, _), (y, _)| match (x.is_nan(), y.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ if desc => y.total_cmp(x),
                _ => x.total_cmp(y),
            });
            Value::Array(keyed.into_iter().map(|(_, s)| s).take(limit).collect())
        }
        Func::TimeSeries => {
            let x = scalar_arg(arg(0)?, cx, b)?;
            let g = grid(cx, b, pos)?;
            let points = if x.is_finite() {
                g.into_iter().map(|t| (t, x)).collect()
            } else {
                Vec::new()
            };
            Value::Series(Series {
                label: String::new(),
                points,
            })
        }
        Func::AnomalyDetectionBand => {
            let target = arg(0)?;
            let Node::Id(id) = &target.node else {
                return Err(kind_error(
                    target.pos,
                    "ANOMALY_DETECTION_BAND: the argument must be the id of a query",
                ));
            };
            let Value::Series(s) = eval(target, cx, b)? else {
                return Err(kind_error(
                    target.pos,
                    "ANOMALY_DETECTION_BAND: the argument must be one time series",
                ));
            };
            let k = match args.get(1) {
                Some(k) => scalar_arg(k, cx, b)?,
                None => 2.0,
            };
            if !(k.is_finite() && k >= 0.0) {
                return Err(kind_error(
                    pos,
                    "ANOMALY_DETECTION_BAND: the width must be a finite number ≥ 0",
                ));
            }
            let (mut lower, mut upper) = cx.bands.band(id, &s, k).map_err(|m| {
                MathError::new(pos, "input", format!("ANOMALY_DETECTION_BAND: {m}"))
            })?;
            lower.normalize();
            upper.normalize();
            Value::Array(vec![upper, lower])
        }
    })
}

fn if_(e: &Expr, args: &[Expr], cx: &Context<'_>, b: &mut Budget) -> Result<Value, MathError> {
    let pos = e.pos;
    let (Some(c), Some(a)) = (args.first(), args.get(1)) else {
        return Err(MathError::new(pos, "arity", "IF takes 2 to 3 arguments"));
    };
    let cond = eval(c, cx, b)?;
    let then = eval(a, cx, b)?;
    let otherwise = match args.get(2) {
        Some(x) => Some(eval(x, cx, b)?),
        None => None,
    };
    let branch_at = |v: &Value, i: usize, t: Timestamp| -> Option<f64> {
        match v {
            Value::Scalar(x) => Some(*x).filter(|x| !x.is_nan()),
            Value::Series(s) => s.at(t),
            Value::Array(arr) => arr.get(i).and_then(|s| s.at(t)),
        }
    };
    let one = |cs: &Series, i: usize| -> Series {
        Series {
            label: cs.label.clone(),
            points: cs
                .points
                .iter()
                .filter_map(|&(t, c)| {
                    let v = if c != 0.0 {
                        branch_at(&then, i, t)
                    } else {
                        otherwise.as_ref().and_then(|o| branch_at(o, i, t))
                    };
                    v.filter(|v| v.is_finite()).map(|v| (t, v))
                })
                .collect(),
        }
    };
    // An array branch decides the shape when the condition is one series.
    let width = [Some(&then), otherwise.as_ref()]
        .into_iter()
        .flatten()
        .find_map(|v| match v {
            Value::Array(a) => Some(a.len()),
            _ => None,
        });
    Ok(match (&cond, width) {
        (Value::Series(cs), None) => Value::Series(one(cs, 0)),
        (Value::Series(cs), Some(n)) => Value::Array((0..n).map(|i| one(cs, i)).collect()),
        (Value::Array(ca), w) => {
            if w.is_some_and(|n| n != ca.len()) {
                return Err(kind_error(
                    pos,
                    "IF: the condition and the branches are arrays of different lengths",
                ));
            }
            Value::Array(ca.iter().enumerate().map(|(i, cs)| one(cs, i)).collect())
        }
        (Value::Scalar(_), _) => {
            return Err(kind_error(
                c.pos,
                "IF: the condition must be a time series or an array",
            ));
        }
    })
}
