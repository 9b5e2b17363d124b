//! CloudWatch metric math: a parser with `line:column` errors ([`parse`]), a type checker
//! ([`check`]), an evaluator over aligned time series ([`evaluate`]) and the rules of a
//! `Metrics` list of metric queries as `PutMetricAlarm` and `GetMetricData` take them
//! ([`plan_queries`], [`evaluate_queries`]).
//!
//! Everything here is a function of its inputs: no IO, no clock. Metric data arrive as
//! [`Series`] from the caller (who fetched the `metric_stat` queries), and anomaly-detection
//! bands come from the [`Bands`] port (the model lives elsewhere).
//!
//! # Language (reference: `shared/reference/cloudwatch-semantics.md` §2.6, §3.11)
//! - Numbers (`1`, `2.5`, `1e3`), strings in double or single quotes (`"errors"`; escapes
//!   `\"` `\'` `\\`),
//!   ids (a lower-case letter, then letters, digits, `_`), arrays `[m1, m2]`, parentheses,
//!   function calls with upper-case names (`SUM(m1)`), and the bare words a few functions take
//!   (`REPEAT`, `LINEAR`, `ASC`, `DESC`, and `SUM`/`AVG`/`MIN`/`MAX`/`STDDEV` in `SORT`).
//! - Operators, loosest first: `OR`/`||`; `AND`/`&&`; `== != < <= > >=`; `+ -`; `* /`;
//!   unary `-`; `^` (right-associative, so `-2^2` is `-4` and `2^3^2` is `512`).
//!   CloudWatch has no `NOT` (write `x == 0`); it is refused with that hint.
//! - `SEARCH`, `SERVICE_QUOTA`, `INSIGHT_RULE_METRIC`, `LAMBDA` and Metrics Insights
//!   (`SELECT …`) are out of scope and refused by name.
//!
//! # Kinds ([`Kind`])
//! A value is a scalar, one time series, or an array of time series. Arithmetic broadcasts a
//! scalar or a series over an array; two arrays cannot be combined. The aggregates `SUM AVG MIN
//! MAX STDDEV` reduce one series to a scalar and an array to one series (per timestamp). The
//! kind of every node is known before evaluation, so a one-element array still aggregates per
//! timestamp (as `SUM(METRICS())` does in CloudWatch).
//!
//! # Semantics
//! - Between two series, the result has the union of their timestamps and a value missing
//!   from one side counts as **0** (arithmetic, comparisons and `AND`/`OR` alike).
//! - A point that divides by zero is dropped; so is any point whose result is not finite
//!   (`LOG(0)`, `0 ^ -1`, overflow). A scalar with no value (`AVG` of an empty series, `1/0`)
//!   is NaN, and every point computed from it is dropped.
//! - Comparisons and logical operators give 1 or 0; any non-zero value is true.
//! - `RATE`, `DIFF` and `DIFF_TIME` look at each point and the point before it (the first point
//!   has none and gives nothing); `RATE` is per second.
//! - `TIME_SERIES` and `FILL` use the request's grid: the multiples of the period in
//!   `[start, end)`.
//! - Time functions (`MINUTE HOUR DAY DATE MONTH YEAR EPOCH`) read each point's timestamp in
//!   UTC; `DAY` is the ISO day of the week (1 = Monday … 7 = Sunday), `DATE` the day of the
//!   month, `EPOCH` Unix seconds.
//! - `IF(c, a[, b])` has the condition's timestamps: where `c` is non-zero it takes `a`, else
//!   `b`; a point is dropped when the branch taken has no value there (or there is no `b`).
//! - The aggregates of an empty series have no value (NaN); `DATAPOINT_COUNT` of it is 0.
//!   `FIRST`/`LAST` of an empty array are an empty series.
//! - `SLICE(array, start, end)` is 0-based with `end` exclusive, clamped to the array.
//!   `SORT(array, f, ASC|DESC[, limit])` is stable and puts series without a value last.
//! - `METRICS()` lists the request's `metric_stat` queries (not its expressions) in request
//!   order; `METRICS("s")` keeps those whose **id** contains `s`.
//! - Labels: a derived series keeps its input's label; between two series with different
//!   labels the result has none. [`evaluate_queries`] then labels a query's series with the
//!   query's label (or id), and an array's series as `"<query label> <series label>"`.
//! - Cost: every node charges the points and series it produces (plus one), array aggregates
//!   also the points they read, and `TIME_SERIES`/`FILL` the grid before building it. The
//!   expressions of one query list share one budget.
//!
//! # Deviations from CloudWatch (documented, deliberate)
//! - `PERIOD(m)` returns the request's period: every query shares one period here (as in an
//!   alarm, §3.11).
//! - `FILL(m, REPEAT)` leaves a gap before the first real point empty; `FILL(m, LINEAR)` leaves
//!   gaps at either edge empty (CloudWatch does not document the edges).
//! - `STDDEV` is the population standard deviation (CloudWatch does not say which).
//! - The array aggregates skip a series that has no point at a timestamp (they do not count it
//!   as 0): `AVG([m1, m2])` at a time only `m1` has is `m1`'s value.
//! - `ANOMALY_DETECTION_BAND` takes the id of a query, and the band comes from [`Bands`]; the
//!   result is the array `[upper, lower]` (so `LAST(band)` is the lower bound, as §2.6 says).
//! - Function names must be upper case; a lower-case name is refused with the upper-case
//!   spelling as a hint.
//! - `FILL`'s value is a scalar expression (not a series).
//!
//! # Query lists ([`plan_queries`], [`evaluate_queries`])
//! Ids are 1–255 letters, digits and `_` starting with a lower-case letter, unique; an
//! expression may read any other query's id (metric or expression) but not depend on itself
//! through any chain. An alarm ([`Profile::Alarm`]) has at most 10 queries, one period, and
//! exactly one `return_data` query that is one time series — plus, for an anomaly-detection
//! alarm, the `ANOMALY_DETECTION_BAND` query its `threshold_metric_id` names. Every problem
//! is reported, each with the query's index, id, field and (for expressions) position.
//!
//! # Limits (hostile input)
//! [`MAX_EXPRESSION_CHARS`], [`MAX_NESTING`], [`MAX_HEIGHT`], [`MAX_ARRAY_ITEMS`], and the
//! evaluation cost ([`Context::max_cost`], default [`DEFAULT_MAX_COST`]) counted in points
//! produced, summed over every node. Each error has a 1-based `line:column` and names the rule.
//!
//! # Layout
//! `lexer.rs` (tokens with positions) → `parser.rs` ([`Expr`], [`Func`]) → `check.rs`
//! ([`check`]) → `eval.rs` ([`evaluate`]); `queries.rs` (the `Metrics` list);
//! `tests.rs`.

mod check;
mod eval;
mod lexer;
pub mod metric_data;
mod parser;
mod queries;
#[cfg(test)]
mod tests;

use std::fmt;

use thermostat_metrics::Timestamp;

pub use check::check;
pub use eval::{Context, NoBands, evaluate};
pub use parser::{BinOp, Expr, Func, Node, parse};
pub use queries::{
    MAX_ALARM_QUERIES, MAX_ID_CHARS, MAX_REQUEST_QUERIES, MetricQuery, Profile, QueryError,
    QueryPlan, QueryResult, QuerySource, evaluate_queries, plan_queries,
};

/// Longest expression in characters (CloudWatch's `Expression` limit, §2.5).
pub const MAX_EXPRESSION_CHARS: usize = 2048;
/// Deepest nesting of parentheses, calls, arrays and unary minus.
pub const MAX_NESTING: usize = 64;
/// Highest expression tree (a chain `a + b + …` adds one level per operator).
pub const MAX_HEIGHT: usize = 200;
/// Most items in one array literal or argument list.
pub const MAX_ARRAY_ITEMS: usize = 500;
/// Default evaluation budget, in points produced plus series produced, summed over every
/// node (about 16 bytes each at most in memory): 2,000,000, twenty times `GetMetricData`'s
/// 100,800 datapoints.
pub const DEFAULT_MAX_COST: u64 = 2_000_000;

/// A position in an expression: 1-based line and column (columns count characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
}

/// An error in an expression: where, which rule, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}:{}: {rule}: {message}", pos.line, pos.column)]
pub struct MathError {
    /// Where the problem is (the start of the token or sub-expression at fault).
    pub pos: Pos,
    /// The rule broken, a short kebab-case name (`syntax`, `unknown-function`, `unknown-id`,
    /// `arity`, `kind`, `limit`, `unsupported`, `cost`, `input`).
    pub rule: &'static str,
    /// What is wrong, naming the function or token.
    pub message: String,
}

impl MathError {
    pub(crate) fn new(pos: Pos, rule: &'static str, message: impl Into<String>) -> Self {
        MathError {
            pos,
            rule,
            message: message.into(),
        }
    }
}

/// The kind of a value, known before evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One number.
    Scalar,
    /// One time series.
    Series,
    /// An array of time series.
    Array,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Scalar => "a scalar",
            Kind::Series => "a time series",
            Kind::Array => "an array of time series",
        })
    }
}

/// One time series: points sorted by time, one per timestamp, all values finite.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Series {
    /// The label (the query's label or id; derived series keep their input's label).
    pub label: String,
    /// `(time, value)` pairs, strictly increasing in time.
    pub points: Vec<(Timestamp, f64)>,
}

impl Series {
    /// A series with a label and points (sorted, last value kept per timestamp, non-finite
    /// values dropped).
    pub fn new(label: impl Into<String>, points: Vec<(Timestamp, f64)>) -> Self {
        let mut s = Series {
            label: label.into(),
            points,
        };
        s.normalize();
        s
    }

    pub(crate) fn normalize(&mut self) {
        self.points.retain(|(_, v)| v.is_finite());
        if !self.points.windows(2).all(|w| w[0].0 < w[1].0) {
            self.points.sort_by_key(|(t, _)| *t);
            // Keep the last value given for a timestamp.
            let mut out: Vec<(Timestamp, f64)> = Vec::with_capacity(self.points.len());
            for p in self.points.drain(..) {
                match out.last_mut() {
                    Some(last) if last.0 == p.0 => *last = p,
                    _ => out.push(p),
                }
            }
            self.points = out;
        }
    }

    /// The value at `t`, if the series has a point there.
    pub fn at(&self, t: Timestamp) -> Option<f64> {
        self.points
            .binary_search_by_key(&t, |(pt, _)| *pt)
            .ok()
            .map(|i| self.points[i].1)
    }
}

/// The result of an expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// One number (NaN when it has no value, as `AVG` of an empty series).
    Scalar(f64),
    /// One time series.
    Series(Series),
    /// An array of time series.
    Array(Vec<Series>),
}

impl Value {
    /// This value's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Value::Scalar(_) => Kind::Scalar,
            Value::Series(_) => Kind::Series,
            Value::Array(_) => Kind::Array,
        }
    }
}

/// The anomaly-detection port: given the id of the query `ANOMALY_DETECTION_BAND` names, its
/// series and the width `k` in standard deviations, returns the band as `(lower, upper)`
/// series. The model (training, seasonality) lives outside this pure engine.
pub trait Bands {
    /// The band of `series` (the query `id`) at `k` standard deviations.
    ///
    /// # Errors
    /// A message saying why there is no band (no model, still training); the evaluator
    /// reports it at the call's position.
    fn band(&self, id: &str, series: &Series, k: f64) -> Result<(Series, Series), String>;
}
