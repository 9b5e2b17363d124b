//! Evaluation: a checked [`Plan`] resolved against a [`Source`] over a [`Range`]
//! ([`prepare`], which also prices it), then evaluated ([`Prepared::evaluate`]) into a
//! [`Value`] per evaluation time. No IO but the source's, no wall clock.

use std::collections::BTreeMap;

use thermostat_metrics::time::{MINUTE_MS, SECOND_MS};
use thermostat_metrics::{Period, SeriesKey, Timestamp};

use crate::error::{Error, Result};
use crate::limits::{
    LOOKBACK_MS, MAX_POINTS_PER_SERIES, MAX_SAMPLES, MAX_SERIES_PER_QUERY, MAX_SERIES_PER_SELECTOR,
};
use crate::params::{gcd_period, round_period};
use crate::parse::{AggOp, BinOp, Grouping, Matching};
use crate::plan::{METRIC_NAME, NAMESPACE, Node, Plan, Reading, Selector};
use crate::source::{Source, describe};

/// A series' labels, sorted by name.
pub type Labels = Vec<(String, String)>;

/// The labels of a stored series: `__name__`, `namespace` and one per dimension (a dimension
/// named `__name__` or `namespace` is shadowed by them).
pub fn labels_of(key: &SeriesKey) -> Labels {
    let mut out = Vec::with_capacity(key.dimensions().len() + 2);
    out.push((METRIC_NAME.to_owned(), key.metric_name().to_owned()));
    out.push((NAMESPACE.to_owned(), key.namespace().to_owned()));
    out.extend(
        key.dimensions()
            .iter()
            .filter(|d| d.name != METRIC_NAME && d.name != NAMESPACE)
            .map(|d| (d.name.to_owned(), d.value.to_owned())),
    );
    out.sort();
    out
}

/// The evaluation times of a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// The first evaluation time.
    pub start: Timestamp,
    /// The last evaluation time is at or before it.
    pub end: Timestamp,
    /// Milliseconds between evaluation times (for an instant query, the period it reads).
    pub step_ms: i64,
    /// An instant query (one evaluation time).
    pub instant: bool,
}

impl Range {
    /// An instant query at `time`; it reads periods of one minute.
    pub fn instant(time: Timestamp) -> Self {
        Range {
            start: time,
            end: time,
            step_ms: MINUTE_MS,
            instant: true,
        }
    }

    /// A range query from `start` to `end` every `step_ms`.
    ///
    /// # Errors
    /// [`Error::Parse`] for an end before the start or a step that is not positive;
    /// [`Error::Limit`] for more than [`MAX_POINTS_PER_SERIES`] points.
    pub fn try_new(start: Timestamp, end: Timestamp, step_ms: i64) -> Result<Self> {
        if end < start {
            return Err(Error::Parse(
                "end timestamp must not be before start time".into(),
            ));
        }
        if step_ms <= 0 {
            return Err(Error::Parse(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        let points = (end.as_millis() - start.as_millis()) / step_ms + 1;
        if points > MAX_POINTS_PER_SERIES {
            return Err(Error::Limit(format!(
                "exceeded maximum resolution of {MAX_POINTS_PER_SERIES} points per timeseries (the query has {points}). Try decreasing the query resolution (?step=XX)"
            )));
        }
        Ok(Range {
            start,
            end,
            step_ms,
            instant: false,
        })
    }

    /// The evaluation times.
    pub fn times(&self) -> Vec<i64> {
        if self.instant {
            return vec![self.start.as_millis()];
        }
        let n = (self.end.as_millis() - self.start.as_millis()) / self.step_ms + 1;
        (0..n)
            .map(|k| self.start.as_millis() + k * self.step_ms)
            .collect()
    }

    /// The period instant selectors read: the step rounded up to a valid period.
    pub fn period(&self) -> Period {
        round_period(self.step_ms)
    }
}

/// One series of a result, with a value or none at each evaluation time.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Its labels.
    pub labels: Labels,
    /// One slot per evaluation time.
    pub points: Vec<Option<f64>>,
}

/// A query's value at every evaluation time.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A scalar, one per evaluation time.
    Scalar(Vec<f64>),
    /// An instant vector per evaluation time, as series.
    Vector(Vec<Series>),
}

/// A query's answer: the evaluation times (Unix milliseconds) and the value.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The evaluation times.
    pub times: Vec<i64>,
    /// The value.
    pub value: Value,
}

/// A plan resolved against a source: the series each selector matches, and the cost.
#[derive(Clone, Debug)]
pub struct Prepared {
    plan: Plan,
    range: Range,
    series: Vec<Vec<SeriesKey>>,
    cost: u64,
}

/// Resolves each selector of `plan` to the series of `source` it matches, and prices the
/// query: the store periods it will read (the unit of the query gate's cost).
///
/// # Errors
/// [`Error::TooCostly`] for a selector over [`MAX_SERIES_PER_SELECTOR`] series, a query over
/// [`MAX_SERIES_PER_QUERY`] or over [`MAX_SAMPLES`] samples.
pub fn prepare(plan: Plan, source: &dyn Source, range: Range) -> Result<Prepared> {
    let times = range.times().len() as u64;
    let span = range.end.as_millis() - range.start.as_millis();
    let period = range.period().as_millis();
    let (mut total, mut cost, mut samples) = (0usize, 0u64, 0u64);
    let mut series = Vec::with_capacity(plan.selectors.len());
    for (sel, reading) in &plan.selectors {
        let mut keys: Vec<SeriesKey> = source
            .series(sel.namespace(), sel.metric_name())
            .into_iter()
            .filter(|k| sel.matches(k))
            .collect();
        if keys.len() > MAX_SERIES_PER_SELECTOR {
            return Err(Error::TooCostly(format!(
                "a selector matches {} series, more than the limit of {MAX_SERIES_PER_SELECTOR} per selector; narrow it with more matchers",
                keys.len()
            )));
        }
        total += keys.len();
        if total > MAX_SERIES_PER_QUERY {
            return Err(Error::TooCostly(format!(
                "the query's selectors match more than the limit of {MAX_SERIES_PER_QUERY} series together; narrow them with more matchers"
            )));
        }
        keys.sort_unstable();
        let per_series = match *reading {
            Reading::Instant => (span + LOOKBACK_MS.max(period)) / period + 1,
            Reading::Increase { range_ms, .. } => {
                let r = round_period(range_ms).as_millis();
                (span + r) / gcd_period(period, r) + 1
            }
            Reading::Quantile { .. } => times as i64,
        };
        cost = cost.saturating_add((keys.len() as u64).saturating_mul(per_series as u64));
        samples = samples.saturating_add(keys.len() as u64 * times);
        if samples > MAX_SAMPLES {
            return Err(Error::TooCostly(format!(
                "query processing would load too many samples into memory: more than the limit of {MAX_SAMPLES} (series × steps); use a coarser step, a shorter range or narrower selectors"
            )));
        }
        series.push(keys);
    }
    Ok(Prepared {
        plan,
        range,
        series,
        cost: cost.max(1),
    })
}

impl Prepared {
    /// What the query costs: store periods read over all series (the query gate's unit).
    pub fn cost(&self) -> u64 {
        self.cost
    }

    /// Evaluates the query.
    ///
    /// # Errors
    /// [`Error::Execution`] when the data cannot answer exactly (see [`Source::statistics`],
    /// distributions of several series merged, many-to-many matching); [`Error::TooCostly`]
    /// when a result would hold more than [`MAX_SAMPLES`] samples.
    pub fn evaluate(&self, source: &dyn Source) -> Result<Evaluation> {
        let times = self.range.times();
        let ctx = Ctx {
            source,
            prepared: self,
            times: &times,
            period: self.range.period().as_millis(),
        };
        let value = match ctx.eval(&self.plan.root)? {
            Val::Scalar(s) => Value::Scalar(s),
            Val::Vector(v) => Value::Vector(
                v.into_iter()
                    .filter(|s| s.points.iter().any(Option::is_some))
                    .collect(),
            ),
        };
        Ok(Evaluation { times, value })
    }
}

enum Val {
    Scalar(Vec<f64>),
    Vector(Vec<Series>),
}

struct Ctx<'a> {
    source: &'a dyn Source,
    prepared: &'a Prepared,
    times: &'a [i64],
    period: i64,
}

impl Ctx<'_> {
    fn eval(&self, node: &Node) -> Result<Val> {
        Ok(match node {
            Node::Scalar(v) => Val::Scalar(vec![*v; self.times.len()]),
            Node::Select { index, grouping } => {
                Val::Vector(self.select(*index, grouping.as_ref())?)
            }
            Node::Neg(e) => match self.eval(e)? {
                Val::Scalar(s) => Val::Scalar(s.into_iter().map(|v| -v).collect()),
                Val::Vector(v) => Val::Vector(
                    v.into_iter()
                        .map(|s| Series {
                            labels: drop_name(s.labels),
                            points: s.points.into_iter().map(|p| p.map(|v| -v)).collect(),
                        })
                        .collect(),
                ),
            },
            Node::Binary {
                op,
                bool_modifier,
                matching,
                lhs,
                rhs,
            } => {
                let (l, r) = (self.eval(lhs)?, self.eval(rhs)?);
                binary(*op, *bool_modifier, matching.as_ref(), l, r)?
            }
            Node::Aggregate { op, grouping, expr } => match self.eval(expr)? {
                Val::Vector(v) => Val::Vector(aggregate(*op, grouping, v, self.times.len())),
                Val::Scalar(_) => {
                    return Err(Error::Parse(
                        "expected an instant vector in the aggregation".into(),
                    ));
                }
            },
        })
    }

    fn select(&self, index: usize, grouping: Option<&Grouping>) -> Result<Vec<Series>> {
        let (sel, reading) = &self.prepared.plan.selectors[index];
        let keys = &self.prepared.series[index];
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let points = match *reading {
                Reading::Instant => self.instant(sel, key)?,
                Reading::Increase {
                    range_ms,
                    per_second,
                } => self.increase(sel, key, range_ms, per_second)?,
                Reading::Quantile { range_ms, phi } => self.quantile(sel, key, range_ms, phi)?,
            };
            let labels = match reading {
                Reading::Instant => labels_of(key),
                _ => drop_name(labels_of(key)),
            };
            out.push(Series { labels, points });
        }
        if let (Some(g), Reading::Quantile { .. }) = (grouping, reading) {
            let mut groups: BTreeMap<Labels, Vec<usize>> = BTreeMap::new();
            for (i, s) in out.iter().enumerate() {
                groups
                    .entry(group_labels(g, &s.labels))
                    .or_default()
                    .push(i);
            }
            if let Some((labels, members)) = groups.iter().find(|(_, m)| m.len() > 1) {
                return Err(Error::Execution(format!(
                    "histogram_quantile over sum {} would merge the distributions of {} series ({} and {}) into group {}; Thermostat's store cannot merge distributions of different series exactly: group by labels that tell the series apart",
                    grouping_text(g),
                    members.len(),
                    describe(&keys[members[0]]),
                    describe(&keys[members[1]]),
                    labels_text(labels)
                )));
            }
            for s in &mut out {
                s.labels = group_labels(g, &s.labels);
            }
        }
        Ok(out)
    }

    /// The newest period ending at or before each time within the look-back.
    fn instant(&self, sel: &Selector, key: &SeriesKey) -> Result<Vec<Option<f64>>> {
        let (first, last) = (self.times[0], self.times[self.times.len() - 1]);
        let read = |p: i64| {
            let lookback = LOOKBACK_MS.max(p);
            let start = floor(first - lookback, p);
            let end = floor(last, p).max(start + p);
            self.read(sel, key, start, end, p).map(|b| (b, lookback))
        };
        let (mut buckets, mut lookback) = read(self.period)?;
        let mut p = self.period;
        if buckets.is_empty() && p < MINUTE_MS {
            // Standard-resolution data has no sub-minute periods: read whole minutes.
            (buckets, lookback) = read(MINUTE_MS)?;
            p = MINUTE_MS;
        }
        let ended = self.source.ended_at(key).map(Timestamp::as_millis);
        Ok(self
            .times
            .iter()
            .map(|&t| {
                // Buckets are sorted by start: the newest that ends at or before t.
                let n = buckets.partition_point(|(s, _)| s + p <= t);
                let (s, v) = *buckets[..n].last()?;
                let fresh = s + p > t - lookback;
                let alive = ended.is_none_or(|e| t < e || s >= e);
                (fresh && alive).then_some(v)
            })
            .collect())
    }

    /// The sum of the periods that end within (t − range, t], per time (per second for rate).
    fn increase(
        &self,
        sel: &Selector,
        key: &SeriesKey,
        range_ms: i64,
        per_second: bool,
    ) -> Result<Vec<Option<f64>>> {
        let r = round_period(range_ms).as_millis();
        let (first, last) = (self.times[0], self.times[self.times.len() - 1]);
        let read = |q: i64| {
            let start = floor(first - r, q);
            let end = floor(last, q).max(start + q);
            self.read(sel, key, start, end, q)
        };
        let mut q = gcd_period(self.period, r);
        let mut buckets = read(q)?;
        if buckets.is_empty() && q < MINUTE_MS {
            q = MINUTE_MS;
            buckets = read(q)?;
        }
        // Prefix sums over the buckets, by end.
        let ends: Vec<i64> = buckets.iter().map(|(s, _)| s + q).collect();
        let mut prefix = Vec::with_capacity(buckets.len() + 1);
        prefix.push(0.0);
        for (_, v) in &buckets {
            prefix.push(prefix[prefix.len() - 1] + v);
        }
        let seconds = r as f64 / SECOND_MS as f64;
        Ok(self
            .times
            .iter()
            .map(|&t| {
                let hi = ends.partition_point(|&e| e <= t);
                let lo = ends.partition_point(|&e| e <= t - r);
                if hi <= lo {
                    return None;
                }
                // Summed directly (not as a difference of prefixes) when few, for exactness.
                let sum = if hi - lo <= 64 {
                    buckets[lo..hi].iter().map(|(_, v)| v).sum::<f64>()
                } else {
                    prefix[hi] - prefix[lo]
                };
                Some(if per_second { sum / seconds } else { sum })
            })
            .collect())
    }

    /// The percentile of the range ending at the last period boundary at or before each time.
    fn quantile(
        &self,
        sel: &Selector,
        key: &SeriesKey,
        range_ms: i64,
        phi: f64,
    ) -> Result<Vec<Option<f64>>> {
        let mut r = round_period(range_ms).as_millis();
        let mut fallback = false;
        let mut out = Vec::with_capacity(self.times.len());
        let mut last: Option<(i64, Option<f64>)> = None;
        for &t in self.times {
            let align = r.min(MINUTE_MS);
            let end = floor(t, align);
            let v = match last {
                Some((e, v)) if e == end => v,
                _ => {
                    let mut b = self.read(sel, key, end - r, end, r)?;
                    if b.is_empty() && r < MINUTE_MS && !fallback && out.is_empty() {
                        // Standard-resolution data: read whole minutes from now on.
                        let e60 = floor(t, MINUTE_MS);
                        let b60 = self.read(sel, key, e60 - MINUTE_MS, e60, MINUTE_MS)?;
                        if !b60.is_empty() {
                            fallback = true;
                            r = MINUTE_MS;
                            b = b60;
                        }
                    }
                    let v = b.last().map(|(_, v)| *v);
                    last = Some((floor(t, r.min(MINUTE_MS)), v));
                    v
                }
            };
            out.push(v.map(|v| {
                if phi.is_nan() {
                    f64::NAN
                } else if phi < 0.0 {
                    f64::NEG_INFINITY
                } else if phi > 1.0 {
                    f64::INFINITY
                } else {
                    v
                }
            }));
        }
        Ok(out)
    }

    fn read(
        &self,
        sel: &Selector,
        key: &SeriesKey,
        start: i64,
        end: i64,
        period_ms: i64,
    ) -> Result<Vec<(i64, f64)>> {
        let period = Period::try_from_secs(period_ms / SECOND_MS)
            .map_err(|e| Error::Execution(format!("period: {e}")))?;
        Ok(self
            .source
            .statistics(
                key,
                sel.unit,
                &sel.stat,
                Timestamp(start),
                Timestamp(end),
                period,
            )?
            .into_iter()
            .map(|(t, v)| (t.as_millis(), v))
            .collect())
    }
}

fn floor(t: i64, step: i64) -> i64 {
    t.div_euclid(step) * step
}

fn drop_name(mut labels: Labels) -> Labels {
    labels.retain(|(n, _)| n != METRIC_NAME);
    labels
}

fn group_labels(g: &Grouping, labels: &Labels) -> Labels {
    match g {
        Grouping::All => Vec::new(),
        Grouping::By(keep) => labels
            .iter()
            .filter(|(n, _)| keep.contains(n) && n != "le")
            .cloned()
            .collect(),
        Grouping::Without(drop) => labels
            .iter()
            .filter(|(n, _)| !drop.contains(n) && n != METRIC_NAME)
            .cloned()
            .collect(),
    }
}

fn grouping_text(g: &Grouping) -> String {
    match g {
        Grouping::All => String::new(),
        Grouping::By(l) => format!("by ({})", l.join(", ")),
        Grouping::Without(l) => format!("without ({})", l.join(", ")),
    }
}

fn labels_text(labels: &Labels) -> String {
    let inner: Vec<String> = labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn aggregate(op: AggOp, grouping: &Grouping, input: Vec<Series>, n: usize) -> Vec<Series> {
    let mut groups: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
    for s in input {
        let acc = groups
            .entry(group_labels(grouping, &s.labels))
            .or_insert_with(|| vec![(f64::NAN, 0.0); n]);
        for (slot, p) in acc.iter_mut().zip(s.points) {
            let Some(v) = p else { continue };
            let (value, count) = slot;
            *value = if *count == 0.0 {
                match op {
                    AggOp::Count => 1.0,
                    _ => v,
                }
            } else {
                match op {
                    AggOp::Sum | AggOp::Avg => *value + v,
                    AggOp::Count => *value + 1.0,
                    AggOp::Min if *value > v || value.is_nan() => v,
                    AggOp::Max if *value < v || value.is_nan() => v,
                    AggOp::Min | AggOp::Max => *value,
                }
            };
            *count += 1.0;
        }
    }
    groups
        .into_iter()
        .map(|(labels, acc)| Series {
            labels,
            points: acc
                .into_iter()
                .map(|(v, c)| {
                    (c > 0.0).then_some(match op {
                        AggOp::Avg => v / c,
                        _ => v,
                    })
                })
                .collect(),
        })
        .collect()
}

fn binary(
    op: BinOp,
    bool_modifier: bool,
    matching: Option<&Matching>,
    l: Val,
    r: Val,
) -> Result<Val> {
    let compare = op.is_comparison();
    // The value a vector element gets from `vector op scalar` (`swap`: scalar op vector).
    let elem = |v: f64, s: f64, swap: bool| -> Option<f64> {
        let (a, b) = if swap { (s, v) } else { (v, s) };
        let x = op.apply(a, b);
        if !compare || bool_modifier {
            Some(x)
        } else {
            (x == 1.0).then_some(v)
        }
    };
    let keep_name = compare && !bool_modifier;
    Ok(match (l, r) {
        (Val::Scalar(a), Val::Scalar(b)) => {
            Val::Scalar(a.into_iter().zip(b).map(|(a, b)| op.apply(a, b)).collect())
        }
        (Val::Vector(v), Val::Scalar(s)) => Val::Vector(with_scalar(v, &s, false, keep_name, elem)),
        (Val::Scalar(s), Val::Vector(v)) => Val::Vector(with_scalar(v, &s, true, keep_name, elem)),
        (Val::Vector(l), Val::Vector(r)) => {
            Val::Vector(vector_vector(op, bool_modifier, matching, l, r)?)
        }
    })
}

fn with_scalar(
    v: Vec<Series>,
    s: &[f64],
    swap: bool,
    keep_name: bool,
    elem: impl Fn(f64, f64, bool) -> Option<f64>,
) -> Vec<Series> {
    v.into_iter()
        .map(|series| Series {
            labels: if keep_name {
                series.labels
            } else {
                drop_name(series.labels)
            },
            points: series
                .points
                .into_iter()
                .zip(s)
                .map(|(p, &s)| p.and_then(|v| elem(v, s, swap)))
                .collect(),
        })
        .collect()
}

fn signature(matching: Option<&Matching>, labels: &Labels) -> Labels {
    match matching {
        Some(Matching::On(on)) => labels
            .iter()
            .filter(|(n, _)| on.contains(n))
            .cloned()
            .collect(),
        Some(Matching::Ignoring(ign)) => labels
            .iter()
            .filter(|(n, _)| !ign.contains(n) && n != METRIC_NAME)
            .cloned()
            .collect(),
        None => labels
            .iter()
            .filter(|(n, _)| n != METRIC_NAME)
            .cloned()
            .collect(),
    }
}

/// One-to-one matching: each left series pairs with the right series of its signature.
fn vector_vector(
    op: BinOp,
    bool_modifier: bool,
    matching: Option<&Matching>,
    l: Vec<Series>,
    r: Vec<Series>,
) -> Result<Vec<Series>> {
    let compare = op.is_comparison();
    let mut right: BTreeMap<Labels, Vec<Series>> = BTreeMap::new();
    for s in r {
        right
            .entry(signature(matching, &s.labels))
            .or_default()
            .push(s);
    }
    let n = l.first().map_or(0, |s| s.points.len());
    let mut left: BTreeMap<Labels, Vec<Series>> = BTreeMap::new();
    for s in l {
        left.entry(signature(matching, &s.labels))
            .or_default()
            .push(s);
    }
    let mut out: BTreeMap<Labels, Series> = BTreeMap::new();
    for (sig, ls) in left {
        let Some(rs) = right.get(&sig) else { continue };
        for side in [&ls, rs] {
            if side.len() > 1 {
                for k in 0..n {
                    if side.iter().filter(|s| s.points[k].is_some()).count() > 1 {
                        return Err(Error::Execution(format!(
                            "found duplicate series for the match group {} on one side of the operation; many-to-many and many-to-one matching are not supported (use on/ignoring to make the match unique)",
                            labels_text(&sig)
                        )));
                    }
                }
            }
        }
        for k in 0..n {
            let Some(lv) = ls.iter().find_map(|s| s.points[k].map(|v| (v, s))) else {
                continue;
            };
            let Some(rv) = rs.iter().find_map(|s| s.points[k]) else {
                continue;
            };
            let (lv, lseries) = lv;
            let x = op.apply(lv, rv);
            let value = if !compare || bool_modifier {
                Some(x)
            } else {
                (x == 1.0).then_some(lv)
            };
            let Some(value) = value else { continue };
            let mut labels = if compare && !bool_modifier {
                lseries.labels.clone()
            } else {
                drop_name(lseries.labels.clone())
            };
            match matching {
                Some(Matching::On(on)) => labels.retain(|(n, _)| on.contains(n)),
                Some(Matching::Ignoring(ign)) => labels.retain(|(n, _)| !ign.contains(n)),
                None => {}
            }
            let entry = out.entry(labels.clone()).or_insert_with(|| Series {
                labels,
                points: vec![None; n],
            });
            if entry.points[k].is_some() {
                return Err(Error::Execution(format!(
                    "multiple matches for labels {}: the result would hold duplicate series",
                    labels_text(&entry.labels)
                )));
            }
            entry.points[k] = Some(value);
        }
    }
    Ok(out.into_values().collect())
}

/// Every series `source` has that matches all of `selectors` (any of them, when several),
/// sorted; at most `limit`, with whether more were cut.
pub fn matching_series(
    source: &dyn Source,
    selectors: &[Selector],
    limit: usize,
) -> (Vec<SeriesKey>, bool) {
    let mut out: Vec<SeriesKey> = if selectors.is_empty() {
        source.series(None, None)
    } else {
        let mut all = Vec::new();
        for sel in selectors {
            all.extend(
                source
                    .series(sel.namespace(), sel.metric_name())
                    .into_iter()
                    .filter(|k| sel.matches(k)),
            );
        }
        all
    };
    out.sort_unstable();
    out.dedup();
    let cut = out.len() > limit;
    out.truncate(limit);
    (out, cut)
}

/// The label names of `keys`, sorted and unique.
pub fn label_names(keys: &[SeriesKey]) -> Vec<String> {
    let mut names: Vec<String> = keys
        .iter()
        .flat_map(|k| labels_of(k).into_iter().map(|(n, _)| n))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The values label `name` takes in `keys` (absent is no value), sorted and unique.
pub fn label_values(keys: &[SeriesKey], name: &str) -> Vec<String> {
    let mut values: Vec<String> = keys
        .iter()
        .filter_map(|k| {
            labels_of(k)
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v)
        })
        .collect();
    values.sort_unstable();
    values.dedup();
    values
}

#[cfg(test)]
mod tests;
