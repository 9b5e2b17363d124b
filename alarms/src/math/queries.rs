//! A `Metrics` list of metric queries (`PutMetricAlarm`'s `Metrics`, `GetMetricData`'s
//! `MetricDataQueries`): the CloudWatch rules ([`plan_queries`]) and evaluation in dependency
//! order ([`evaluate_queries`]). `metric_stat` queries stay abstract: the caller fetches
//! their series and passes them in.

use std::collections::{HashMap, HashSet};
use std::fmt;

use thermostat_metrics::Timestamp;

use super::eval::{Context, evaluate_counting};
use super::parser::Expr;
use super::{Bands, Kind, MathError, Pos, Series, Value, check, parse};

/// Most queries in an alarm's `Metrics` (§3.11).
pub const MAX_ALARM_QUERIES: usize = 10;
/// Most queries in one `GetMetricData` request (§2.5).
pub const MAX_REQUEST_QUERIES: usize = 500;
/// Longest query id (§2.5).
pub const MAX_ID_CHARS: usize = 255;

/// One query of the list.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricQuery {
    /// The id (`Id`): a lower-case letter, then letters, digits and `_`; unique in the list.
    pub id: String,
    /// What the query reads.
    pub source: QuerySource,
    /// The label (`Label`); the id when absent.
    pub label: Option<String>,
    /// Whether the query's result is returned (`ReturnData`).
    pub return_data: bool,
    /// The period of a `metric_stat` query in seconds (`MetricStat.Period`).
    pub period_seconds: Option<i64>,
}

/// What a query reads.
#[derive(Clone, Debug, PartialEq)]
pub enum QuerySource {
    /// A metric and statistic the caller fetches (`MetricStat`).
    MetricStat,
    /// A metric-math expression (`Expression`).
    Expression(String),
}

/// Which API's rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile<'a> {
    /// `PutMetricAlarm`: at most 10 queries, one period, and exactly one `return_data`, a
    /// query that is one time series. With a `threshold_metric_id` (`ThresholdMetricId`, an
    /// anomaly-detection alarm), that query must be an `ANOMALY_DETECTION_BAND(…)` expression
    /// with `return_data`, and exactly one other query has `return_data`: the time series
    /// compared with the band.
    Alarm {
        /// The id of the band query (`ThresholdMetricId`).
        threshold_metric_id: Option<&'a str>,
    },
    /// `GetMetricData`: at most 500 queries.
    GetMetricData,
}

/// A problem with one query of the list.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct QueryError {
    /// The query's 0-based index in the list.
    pub index: usize,
    /// The query's id.
    pub id: String,
    /// The field at fault (`id`, `expression`, `return_data`, `period_seconds`, `metrics`,
    /// `threshold_metric_id`).
    pub field: &'static str,
    /// The rule broken (as [`MathError::rule`], plus `count`, `id`, `duplicate-id`,
    /// `return-data`, `period`, `cycle`, `band`).
    pub rule: &'static str,
    /// Where in the expression, for an expression error.
    pub pos: Option<Pos>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "metrics[{}] ({}).{}: ", self.index, self.id, self.field)?;
        if let Some(p) = self.pos {
            write!(f, "{}:{}: ", p.line, p.column)?;
        }
        write!(f, "{}: {}", self.rule, self.message)
    }
}

impl QueryError {
    fn new(
        index: usize,
        id: &str,
        field: &'static str,
        rule: &'static str,
        message: String,
    ) -> Self {
        QueryError {
            index,
            id: id.to_owned(),
            field,
            rule,
            pos: None,
            message,
        }
    }

    fn math(index: usize, id: &str, e: MathError) -> Self {
        QueryError {
            index,
            id: id.to_owned(),
            field: "expression",
            rule: e.rule,
            pos: Some(e.pos),
            message: e.message,
        }
    }
}

/// A validated list: parsed expressions, their kinds and an evaluation order.
#[derive(Clone, Debug)]
pub struct QueryPlan {
    queries: Vec<MetricQuery>,
    exprs: Vec<Option<Expr>>,
    kinds: Vec<Kind>,
    order: Vec<usize>,
}

impl QueryPlan {
    /// The queries, in request order.
    pub fn queries(&self) -> &[MetricQuery] {
        &self.queries
    }

    /// Query indices in an order where every expression comes after what it reads.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// The indices of the queries with `return_data`, in request order.
    pub fn returned(&self) -> Vec<usize> {
        (0..self.queries.len())
            .filter(|&i| self.queries[i].return_data)
            .collect()
    }

    /// The kind of query `index`'s result.
    pub fn kind(&self, index: usize) -> Option<Kind> {
        self.kinds.get(index).copied()
    }
}

/// One query's result.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    /// The query's id.
    pub id: String,
    /// Its label (the id when none was given).
    pub label: String,
    /// Its `return_data`.
    pub return_data: bool,
    /// Its value; series are labelled as CloudWatch labels them (an array's series as
    /// `"<expression label> <series label>"` when the expression has a label).
    pub value: Value,
}

fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && id.len() <= MAX_ID_CHARS
}

/// Validates a list of queries against CloudWatch's rules and orders it for evaluation.
///
/// # Errors
/// Every problem found: too many or no queries, a malformed or repeated id, not exactly one
/// `return_data` (alarms), missing or different periods (alarms), a parse or kind error in an
/// expression (with its position), a reference to an unknown id, a cycle between expressions,
/// an alarm whose returned query is not one time series.
pub fn plan_queries(
    queries: Vec<MetricQuery>,
    profile: Profile<'_>,
) -> Result<QueryPlan, Vec<QueryError>> {
    let mut errors = Vec::new();
    let max = match profile {
        Profile::Alarm { .. } => MAX_ALARM_QUERIES,
        Profile::GetMetricData => MAX_REQUEST_QUERIES,
    };
    if queries.is_empty() || queries.len() > max {
        errors.push(QueryError::new(
            0,
            "",
            "metrics",
            "count",
            format!("must hold 1 to {max} queries (got {})", queries.len()),
        ));
        if queries.len() > max {
            return Err(errors);
        }
    }
    let mut index_of: HashMap<&str, usize> = HashMap::new();
    for (i, q) in queries.iter().enumerate() {
        if !valid_id(&q.id) {
            errors.push(QueryError::new(
                i,
                &q.id,
                "id",
                "id",
                format!(
                    "must be 1 to {MAX_ID_CHARS} letters, digits or `_`, starting with a lower-case letter (got {:?})",
                    q.id
                ),
            ));
        }
        if let Some(&first) = index_of.get(q.id.as_str()) {
            errors.push(QueryError::new(
                i,
                &q.id,
                "id",
                "duplicate-id",
                format!("must be unique; metrics[{first}] has the same id"),
            ));
        } else {
            index_of.insert(&q.id, i);
        }
        match (&q.source, q.period_seconds) {
            (QuerySource::MetricStat, None) => errors.push(QueryError::new(
                i,
                &q.id,
                "period_seconds",
                "period",
                "a metric_stat query needs a period".into(),
            )),
            (_, Some(p)) if p <= 0 => errors.push(QueryError::new(
                i,
                &q.id,
                "period_seconds",
                "period",
                format!("must be positive (got {p})"),
            )),
            _ => {}
        }
    }
    let threshold = match profile {
        Profile::Alarm {
            threshold_metric_id,
        } => threshold_metric_id,
        Profile::GetMetricData => None,
    };
    let band_index = threshold.and_then(|id| index_of.get(id).copied());
    if let Profile::Alarm { .. } = profile {
        let returned: Vec<usize> = (0..queries.len())
            .filter(|&i| queries[i].return_data && Some(i) != band_index)
            .collect();
        if returned.len() != 1 && !queries.is_empty() {
            let what = if threshold.is_some() {
                "besides the band, exactly one"
            } else {
                "exactly one"
            };
            errors.push(QueryError::new(
                returned.get(1).copied().unwrap_or(0),
                returned.get(1).map_or("", |&i| queries[i].id.as_str()),
                "return_data",
                "return-data",
                format!(
                    "{what} query of an alarm must have return_data true (got {})",
                    returned.len()
                ),
            ));
        }
        if let Some(id) = threshold {
            match band_index {
                None => errors.push(QueryError::new(
                    0,
                    id,
                    "threshold_metric_id",
                    "unknown-id",
                    format!("names no query of the alarm (got {id:?})"),
                )),
                Some(i) => {
                    let is_band = match &queries[i].source {
                        QuerySource::Expression(src) => parse(src).is_ok_and(|e| {
                            matches!(
                                e.node,
                                super::parser::Node::Call(super::Func::AnomalyDetectionBand, _)
                            )
                        }),
                        QuerySource::MetricStat => false,
                    };
                    if !is_band || !queries[i].return_data {
                        errors.push(QueryError::new(
                            i,
                            id,
                            "threshold_metric_id",
                            "band",
                            "must name an ANOMALY_DETECTION_BAND(…) expression with return_data true"
                                .into(),
                        ));
                    }
                }
            }
        }
        let mut periods = queries
            .iter()
            .enumerate()
            .filter(|(_, q)| q.source == QuerySource::MetricStat)
            .filter_map(|(i, q)| q.period_seconds.map(|p| (i, p)));
        if let Some((_, first)) = periods.next() {
            for (i, p) in periods {
                if p != first {
                    errors.push(QueryError::new(
                        i,
                        &queries[i].id,
                        "period_seconds",
                        "period",
                        format!("all metrics of an alarm must have the same period ({first} s, got {p} s)"),
                    ));
                }
            }
        }
    }

    // Parse every expression.
    let mut exprs: Vec<Option<Expr>> = Vec::with_capacity(queries.len());
    let mut failed = vec![false; queries.len()];
    for (i, q) in queries.iter().enumerate() {
        exprs.push(match &q.source {
            QuerySource::MetricStat => None,
            QuerySource::Expression(src) => match parse(src) {
                Ok(e) => Some(e),
                Err(e) => {
                    errors.push(QueryError::math(i, &q.id, e));
                    failed[i] = true;
                    None
                }
            },
        });
    }

    // Dependencies and cycles (depth-first; 0 = new, 1 = on the path, 2 = done).
    let deps: Vec<Vec<usize>> = exprs
        .iter()
        .map(|e| {
            let mut d: Vec<usize> = e
                .as_ref()
                .map(|e| {
                    e.ids()
                        .into_iter()
                        .filter_map(|id| index_of.get(id).copied())
                        .collect()
                })
                .unwrap_or_default();
            d.dedup();
            d
        })
        .collect();
    let mut state = vec![0u8; queries.len()];
    let mut order = Vec::with_capacity(queries.len());
    let mut path = Vec::new();
    let mut in_cycle = HashSet::new();
    for i in 0..queries.len() {
        visit(
            i,
            &deps,
            &mut state,
            &mut order,
            &mut path,
            &mut |cycle: &[usize]| {
                let names: Vec<&str> = cycle.iter().map(|&k| queries[k].id.as_str()).collect();
                let first = cycle[0];
                let new = cycle.iter().any(|k| !in_cycle.contains(k));
                in_cycle.extend(cycle.iter().copied());
                if new {
                    errors.push(QueryError::new(
                        first,
                        &queries[first].id,
                        "expression",
                        "cycle",
                        format!(
                            "expressions must not depend on themselves: {}",
                            names.join(" → ")
                        ),
                    ));
                }
            },
        );
    }

    // Kinds, in dependency order.
    let mut kinds: Vec<Option<Kind>> = vec![None; queries.len()];
    for &i in &order {
        match &exprs[i] {
            None if !failed[i] => kinds[i] = Some(Kind::Series),
            None => {}
            Some(e) => {
                if in_cycle.contains(&i)
                    || deps[i].iter().any(|&d| failed[d] || in_cycle.contains(&d))
                {
                    failed[i] = true;
                    continue;
                }
                let lookup = |id: &str| index_of.get(id).and_then(|&k| kinds[k]);
                match check(e, &lookup) {
                    Ok(k) => kinds[i] = Some(k),
                    Err(err) => {
                        errors.push(QueryError::math(i, &queries[i].id, err));
                        failed[i] = true;
                    }
                }
            }
        }
    }
    if let Profile::Alarm { .. } = profile {
        for (i, q) in queries.iter().enumerate() {
            if q.return_data
                && Some(i) != band_index
                && let Some(k) = kinds[i]
                && k != Kind::Series
            {
                errors.push(QueryError::new(
                    i,
                    &q.id,
                    "expression",
                    "kind",
                    format!("an alarm's returned query must be one time series, not {k}"),
                ));
            }
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.index);
        return Err(errors);
    }
    Ok(QueryPlan {
        kinds: kinds
            .into_iter()
            .map(|k| k.unwrap_or(Kind::Series))
            .collect(),
        queries,
        exprs,
        order,
    })
}

fn visit(
    i: usize,
    deps: &[Vec<usize>],
    state: &mut [u8],
    order: &mut Vec<usize>,
    path: &mut Vec<usize>,
    on_cycle: &mut dyn FnMut(&[usize]),
) {
    match state[i] {
        2 => return,
        1 => {
            if let Some(start) = path.iter().position(|&k| k == i) {
                let mut cycle = path[start..].to_vec();
                cycle.push(i);
                on_cycle(&cycle);
            }
            return;
        }
        _ => {}
    }
    state[i] = 1;
    path.push(i);
    for &d in &deps[i] {
        visit(d, deps, state, order, path, on_cycle);
    }
    path.pop();
    state[i] = 2;
    order.push(i);
}

/// Evaluates every query of a plan in dependency order, over `[start, end)` at `period_ms`;
/// `data` gives each `metric_stat` query's series by id (`None`: no data, an empty series).
/// Results come in request order. All expressions share one budget of `max_cost` (see
/// [`Context::max_cost`]).
///
/// # Errors
/// The first expression that fails to evaluate (see [`super::evaluate`]), including one
/// that exhausts what is left of the shared budget.
pub fn evaluate_queries(
    plan: &QueryPlan,
    data: &dyn Fn(&str) -> Option<Series>,
    bands: &dyn Bands,
    start: Timestamp,
    end: Timestamp,
    period_ms: i64,
    max_cost: u64,
) -> Result<Vec<QueryResult>, QueryError> {
    let metric_ids: Vec<String> = plan
        .queries
        .iter()
        .filter(|q| q.source == QuerySource::MetricStat)
        .map(|q| q.id.clone())
        .collect();
    let mut values: HashMap<String, Value> = HashMap::new();
    let mut left = max_cost;
    for &i in &plan.order {
        let q = &plan.queries[i];
        let label = q.label.clone().unwrap_or_else(|| q.id.clone());
        let value = match &plan.exprs[i] {
            None => {
                let mut s = data(&q.id).unwrap_or_default();
                s.label = label;
                s.normalize();
                Value::Series(s)
            }
            Some(e) => {
                let inputs = |id: &str| values.get(id).cloned();
                let ctx = Context {
                    start,
                    end,
                    period_ms,
                    inputs: &inputs,
                    metrics: &metric_ids,
                    bands,
                    max_cost: left,
                };
                let (value, used) =
                    evaluate_counting(e, &ctx).map_err(|err| QueryError::math(i, &q.id, err))?;
                left = left.saturating_sub(used);
                match value {
                    Value::Series(mut s) => {
                        s.label = label;
                        Value::Series(s)
                    }
                    Value::Array(mut a) => {
                        if let Some(l) = &q.label {
                            for s in &mut a {
                                s.label = if s.label.is_empty() {
                                    l.clone()
                                } else {
                                    format!("{l} {}", s.label)
                                };
                            }
                        }
                        Value::Array(a)
                    }
                    s @ Value::Scalar(_) => s,
                }
            }
        };
        values.insert(q.id.clone(), value);
    }
    Ok(plan
        .queries
        .iter()
        .map(|q| QueryResult {
            id: q.id.clone(),
            label: q.label.clone().unwrap_or_else(|| q.id.clone()),
            return_data: q.return_data,
            value: values.remove(&q.id).unwrap_or(Value::Array(Vec::new())),
        })
        .collect())
}
