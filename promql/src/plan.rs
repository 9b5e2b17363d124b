//! A parsed query checked into a plan: types checked (instant vector or scalar), matchers
//! compiled (regexes with size limits), pseudo-labels (`stat`, `unit`) read, and every
//! selector given an index so that the series it matches can be resolved before evaluation.

use regex::{Regex, RegexBuilder};
use thermostat_metrics::statistic::Percentile;
use thermostat_metrics::{SeriesKey, Statistic, Unit};

use crate::error::{Error, Result};
use crate::limits::{MAX_REGEX_BYTES, MAX_REGEX_COMPILED_BYTES};
use crate::parse::{AggOp, BinOp, Expr, Grouping, MatchOp, Matching, RawMatcher, parse};

/// The label holding the metric name.
pub const METRIC_NAME: &str = "__name__";
/// The label holding the namespace.
pub const NAMESPACE: &str = "namespace";
/// The pseudo-label choosing the statistic.
pub const STAT: &str = "stat";
/// The pseudo-label choosing the unit.
pub const UNIT: &str = "unit";

/// One compiled label matcher.
#[derive(Clone, Debug)]
pub struct Matcher {
    /// The label.
    pub name: String,
    /// The operator.
    pub op: MatchOp,
    /// The value (or the regular expression as written).
    pub value: String,
    regex: Option<Regex>,
}

impl Matcher {
    /// Compiles `raw` (regexes anchored at both ends, as Prometheus does).
    ///
    /// # Errors
    /// [`Error::Limit`] for a regex over [`MAX_REGEX_BYTES`] or whose compiled form is over
    /// [`MAX_REGEX_COMPILED_BYTES`], [`Error::Parse`] for an invalid regex.
    pub fn try_new(raw: &RawMatcher) -> Result<Self> {
        let regex = match raw.op {
            MatchOp::Equal | MatchOp::NotEqual => None,
            MatchOp::Regex | MatchOp::NotRegex => {
                if raw.value.len() > MAX_REGEX_BYTES {
                    return Err(Error::Limit(format!(
                        "the regular expression for label {:?} is {} bytes, more than the limit of {MAX_REGEX_BYTES} bytes",
                        raw.name,
                        raw.value.len()
                    )));
                }
                let re = RegexBuilder::new(&format!("^(?:{})$", raw.value))
                    .size_limit(MAX_REGEX_COMPILED_BYTES)
                    .dfa_size_limit(MAX_REGEX_COMPILED_BYTES)
                    .nest_limit(64)
                    .build()
                    .map_err(|e| match e {
                        regex::Error::CompiledTooBig(_) => Error::Limit(format!(
                            "the regular expression for label {:?} compiles to more than the limit of {MAX_REGEX_COMPILED_BYTES} bytes",
                            raw.name
                        )),
                        other => Error::Parse(format!(
                            "invalid regular expression for label {:?}: {}",
                            raw.name,
                            bounded(&other.to_string())
                        )),
                    })?;
                Some(re)
            }
        };
        Ok(Matcher {
            name: raw.name.clone(),
            op: raw.op,
            value: raw.value.clone(),
            regex,
        })
    }

    /// Whether a label's value (`""` when the label is absent) matches.
    pub fn matches(&self, value: &str) -> bool {
        match (&self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

fn bounded(s: &str) -> String {
    match s.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The value of label `name` of a series: `__name__` the metric name, `namespace` the
/// namespace, any other a dimension (`""` when absent).
pub fn label_value<'k>(key: &'k SeriesKey, name: &str) -> &'k str {
    match name {
        METRIC_NAME => key.metric_name(),
        NAMESPACE => key.namespace(),
        _ => key.dimension(name).unwrap_or(""),
    }
}

/// A checked selector: its matchers over real labels, and the pseudo-labels.
#[derive(Clone, Debug)]
pub struct Selector {
    /// Matchers over `__name__`, `namespace` and the dimensions.
    pub matchers: Vec<Matcher>,
    /// The statistic (`Average` unless `stat` says otherwise).
    pub stat: Statistic,
    /// Whether `stat` was given.
    pub stat_given: bool,
    /// Only data of this unit (`unit` pseudo-label).
    pub unit: Option<Unit>,
}

impl Selector {
    /// The metric name, when an `=` matcher fixes it.
    pub fn metric_name(&self) -> Option<&str> {
        self.equal(METRIC_NAME)
    }

    /// The namespace, when an `=` matcher fixes it.
    pub fn namespace(&self) -> Option<&str> {
        self.equal(NAMESPACE)
    }

    fn equal(&self, label: &str) -> Option<&str> {
        self.matchers
            .iter()
            .find(|m| m.name == label && m.op == MatchOp::Equal)
            .map(|m| m.value.as_str())
    }

    /// Whether the series matches every matcher.
    pub fn matches(&self, key: &SeriesKey) -> bool {
        self.matchers
            .iter()
            .all(|m| m.matches(label_value(key, &m.name)))
    }
}

/// What a selector is read as.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reading {
    /// An instant vector: the statistic per period, the newest within the look-back.
    Instant,
    /// `rate` (`per_second`) or `increase` over a range (milliseconds): the `Sum` of the
    /// periods that end in it.
    Increase {
        /// The range as written, in milliseconds.
        range_ms: i64,
        /// `rate` (divided by the range's seconds) rather than `increase`.
        per_second: bool,
    },
    /// `histogram_quantile(φ, …)`: the percentile of the distribution over the range.
    Quantile {
        /// The range as written, in milliseconds.
        range_ms: i64,
        /// φ.
        phi: f64,
    },
}

/// A node of the checked plan.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    Scalar(f64),
    /// Selector `index` of [`Plan::selectors`]; for a quantile, its grouping.
    Select {
        index: usize,
        grouping: Option<Grouping>,
    },
    Neg(Box<Node>),
    Binary {
        op: BinOp,
        bool_modifier: bool,
        matching: Option<Matching>,
        lhs: Box<Node>,
        rhs: Box<Node>,
    },
    Aggregate {
        op: AggOp,
        grouping: Grouping,
        expr: Box<Node>,
    },
}

impl Node {
    pub(crate) fn is_scalar(&self) -> bool {
        match self {
            Node::Scalar(_) => true,
            Node::Select { .. } | Node::Aggregate { .. } => false,
            Node::Neg(e) => e.is_scalar(),
            Node::Binary { lhs, rhs, .. } => lhs.is_scalar() && rhs.is_scalar(),
        }
    }
}

/// A checked query, ready to be resolved against a source ([`crate::prepare`]).
#[derive(Clone, Debug)]
pub struct Plan {
    pub(crate) root: Node,
    /// Every selector, with how it is read.
    pub selectors: Vec<(Selector, Reading)>,
}

impl Plan {
    /// Parses and checks `query`.
    ///
    /// # Errors
    /// See [`crate::parse::parse`]; also [`Error::Parse`] for type errors (a scalar where a
    /// vector is needed, comparisons between scalars without `bool`) and
    /// [`Error::Unsupported`] for supported syntax used in a way Thermostat does not evaluate.
    pub fn try_new(query: &str) -> Result<Self> {
        let expr = parse(query)?;
        let mut plan = Plan {
            root: Node::Scalar(0.0),
            selectors: Vec::new(),
        };
        plan.root = plan.check(&expr)?;
        Ok(plan)
    }

    /// Whether the query's value is a scalar (else an instant vector).
    pub fn is_scalar(&self) -> bool {
        self.root.is_scalar()
    }

    fn check(&mut self, e: &Expr) -> Result<Node> {
        Ok(match e {
            Expr::Number(n) => Node::Scalar(*n),
            Expr::Selector(m) => {
                let sel = selector(m)?;
                self.push(sel, Reading::Instant, None)
            }
            Expr::Range(..) => {
                return Err(Error::Unsupported(
                    "a range vector selector outside rate, increase or histogram_quantile (for example as the query's result)".into(),
                ));
            }
            Expr::Neg(e) => Node::Neg(Box::new(self.check(e)?)),
            Expr::Binary {
                op,
                bool_modifier,
                matching,
                lhs,
                rhs,
            } => {
                let (l, r) = (self.check(lhs)?, self.check(rhs)?);
                if l.is_scalar() && r.is_scalar() && op.is_comparison() && !bool_modifier {
                    return Err(Error::Parse(
                        "comparisons between scalars must use the bool modifier".into(),
                    ));
                }
                if matching.is_some() && (l.is_scalar() || r.is_scalar()) {
                    return Err(Error::Parse(
                        "vector matching (on, ignoring) is only allowed between instant vectors"
                            .into(),
                    ));
                }
                Node::Binary {
                    op: *op,
                    bool_modifier: *bool_modifier,
                    matching: matching.clone(),
                    lhs: Box::new(l),
                    rhs: Box::new(r),
                }
            }
            Expr::Aggregate { op, grouping, expr } => {
                let inner = self.check(expr)?;
                if inner.is_scalar() {
                    return Err(Error::Parse(
                        "expected an instant vector in the aggregation, got a scalar".into(),
                    ));
                }
                Node::Aggregate {
                    op: *op,
                    grouping: grouping.clone(),
                    expr: Box::new(inner),
                }
            }
            Expr::Call { name, args } => self.call(name, args)?,
        })
    }

    fn push(&mut self, sel: Selector, reading: Reading, grouping: Option<Grouping>) -> Node {
        self.selectors.push((sel, reading));
        Node::Select {
            index: self.selectors.len() - 1,
            grouping,
        }
    }

    fn call(&mut self, name: &str, args: &[Expr]) -> Result<Node> {
        match name {
            "rate" | "increase" => {
                let (m, range_ms) = range_arg(name, args)?;
                let sel = selector(m)?;
                if sel.stat_given && sel.stat != Statistic::Sum {
                    return Err(Error::Unsupported(format!(
                        "`stat=\"{}\"` inside {name} (it reads the stored increases' Sum)",
                        sel.stat
                    )));
                }
                let reading = Reading::Increase {
                    range_ms,
                    per_second: name == "rate",
                };
                Ok(self.push(
                    Selector {
                        stat: Statistic::Sum,
                        ..sel
                    },
                    reading,
                    None,
                ))
            }
            "histogram_quantile" => {
                let [phi, inner] = args else {
                    return Err(Error::Parse(format!(
                        "histogram_quantile takes 2 arguments, got {}",
                        args.len()
                    )));
                };
                let phi = match phi {
                    Expr::Number(n) => *n,
                    Expr::Neg(n) if matches!(**n, Expr::Number(_)) => match **n {
                        Expr::Number(n) => -n,
                        _ => f64::NAN,
                    },
                    _ => {
                        return Err(Error::Unsupported(
                            "a histogram_quantile φ that is not a number".into(),
                        ));
                    }
                };
                let (call, grouping) = match inner {
                    Expr::Aggregate {
                        op: AggOp::Sum,
                        grouping,
                        expr,
                    } => (&**expr, Some(grouping.clone())),
                    other => (other, None),
                };
                let Expr::Call { name, args } = call else {
                    return Err(Error::Unsupported(
                        "histogram_quantile over anything but rate or increase of a selector (optionally summed by labels)".into(),
                    ));
                };
                if !matches!(*name, "rate" | "increase") {
                    return Err(Error::Unsupported(format!(
                        "histogram_quantile over {name}"
                    )));
                }
                let (m, range_ms) = range_arg(name, args)?;
                let mut raw: Vec<RawMatcher> = Vec::with_capacity(m.len());
                for r in m {
                    if r.name == "le" {
                        return Err(Error::Unsupported(
                            "a matcher on `le` inside histogram_quantile (a classic histogram's buckets are stored merged into one distribution)".into(),
                        ));
                    }
                    let mut r = r.clone();
                    if r.name == METRIC_NAME
                        && r.op == MatchOp::Equal
                        && let Some(family) = r.value.strip_suffix("_bucket")
                    {
                        r.value = family.to_owned();
                    }
                    raw.push(r);
                }
                let sel = selector(&raw)?;
                if sel.stat_given {
                    return Err(Error::Unsupported(
                        "a `stat` matcher inside histogram_quantile (φ chooses the percentile)"
                            .into(),
                    ));
                }
                let stat = percentile(phi);
                Ok(self.push(
                    Selector { stat, ..sel },
                    Reading::Quantile { range_ms, phi },
                    grouping,
                ))
            }
            other => Err(Error::Unsupported(format!("the function `{other}`"))),
        }
    }
}

/// The percentile statistic for φ (p50 for φ outside 0..=1, whose answer is ±Inf or NaN
/// where the distribution has data).
fn percentile(phi: f64) -> Statistic {
    let rank = if (0.0..=1.0).contains(&phi) {
        phi * 100.0
    } else {
        50.0
    };
    let mut label = format!("{rank:.10}");
    while label.ends_with('0') {
        label.pop();
    }
    if label.ends_with('.') {
        label.pop();
    }
    let rank = label.parse().unwrap_or(rank);
    Statistic::Percentile(Percentile {
        rank,
        label: format!("p{label}"),
    })
}

fn range_arg<'a>(name: &str, args: &'a [Expr]) -> Result<(&'a [RawMatcher], i64)> {
    match args {
        [Expr::Range(m, r)] => Ok((m, *r)),
        [Expr::Selector(_)] => Err(Error::Parse(format!(
            "{name} expects a range vector such as x[5m], got an instant vector"
        ))),
        [_] => Err(Error::Unsupported(format!(
            "{name} over anything but a range vector selector"
        ))),
        _ => Err(Error::Parse(format!(
            "{name} takes 1 argument, got {}",
            args.len()
        ))),
    }
}

fn selector(raw: &[RawMatcher]) -> Result<Selector> {
    let mut matchers = Vec::with_capacity(raw.len());
    let (mut stat, mut stat_given, mut unit) = (Statistic::Average, false, None);
    for r in raw {
        match r.name.as_str() {
            STAT | UNIT if r.op != MatchOp::Equal => {
                return Err(Error::Unsupported(format!(
                    "the pseudo-label `{}` with an operator other than `=`",
                    r.name
                )));
            }
            STAT => {
                if stat_given {
                    return Err(Error::Parse("`stat` is given twice".into()));
                }
                stat = r
                    .value
                    .parse()
                    .map_err(|e| Error::Parse(format!("stat: {e}")))?;
                stat_given = true;
            }
            UNIT => {
                if unit.is_some() {
                    return Err(Error::Parse("`unit` is given twice".into()));
                }
                unit = Some(
                    r.value
                        .parse::<Unit>()
                        .map_err(|e| Error::Parse(format!("unit: {e}")))?,
                );
            }
            _ => matchers.push(Matcher::try_new(r)?),
        }
    }
    if matchers.iter().all(|m| m.matches("")) {
        return Err(Error::Parse(
            "a vector selector must contain at least one matcher that does not match the empty string".into(),
        ));
    }
    Ok(Selector {
        matchers,
        stat,
        stat_given,
        unit,
    })
}
