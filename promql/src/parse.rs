//! The PromQL parser: tokens to an expression tree, by recursive descent with precedence
//! climbing. Recursion is bounded by [`MAX_DEPTH`] and the tree by [`MAX_NODES`]; constructs
//! of PromQL that Thermostat does not evaluate are recognised here and refused by name.

use crate::error::{Error, Result};
use crate::lex::{Tok, Token, lex};
use crate::limits::{MAX_DEPTH, MAX_NODES, MAX_QUERY_BYTES};

/// A label matcher's operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

/// One label matcher as written.
#[derive(Clone, Debug, PartialEq)]
pub struct RawMatcher {
    /// The label.
    pub name: String,
    /// The operator.
    pub op: MatchOp,
    /// The value or regular expression.
    pub value: String,
}

/// A binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `<`
    Lt,
    /// `>=`
    Ge,
    /// `<=`
    Le,
}

impl BinOp {
    /// Whether it compares (`== != > < >= <=`).
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le
        )
    }

    fn precedence(self) -> u8 {
        match self {
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Mod => 5,
            BinOp::Pow => 6,
        }
    }

    /// `op(l, r)` for numbers: the arithmetic result, or for a comparison 1 or 0.
    pub fn apply(self, l: f64, r: f64) -> f64 {
        let b = |x: bool| if x { 1.0 } else { 0.0 };
        match self {
            BinOp::Add => l + r,
            BinOp::Sub => l - r,
            BinOp::Mul => l * r,
            BinOp::Div => l / r,
            BinOp::Mod => l % r,
            BinOp::Pow => l.powf(r),
            BinOp::Eq => b(l == r),
            BinOp::Ne => b(l != r),
            BinOp::Gt => b(l > r),
            BinOp::Lt => b(l < r),
            BinOp::Ge => b(l >= r),
            BinOp::Le => b(l <= r),
        }
    }
}

/// The aggregations Thermostat evaluates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggOp {
    /// `sum`
    Sum,
    /// `avg`
    Avg,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `count`
    Count,
}

/// `by (…)` or `without (…)` of an aggregation.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Grouping {
    /// Neither: everything in one group.
    #[default]
    All,
    /// `by (labels)`.
    By(Vec<String>),
    /// `without (labels)`.
    Without(Vec<String>),
}

/// `on (…)` or `ignoring (…)` of a binary operation between vectors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matching {
    /// `on (labels)`.
    On(Vec<String>),
    /// `ignoring (labels)`.
    Ignoring(Vec<String>),
}

/// A parsed PromQL expression of the supported subset.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A number.
    Number(f64),
    /// An instant vector selector.
    Selector(Vec<RawMatcher>),
    /// A range vector selector and its range in milliseconds.
    Range(Vec<RawMatcher>, i64),
    /// Unary minus.
    Neg(Box<Expr>),
    /// A binary operation.
    Binary {
        /// The operator.
        op: BinOp,
        /// `bool` was given (comparisons).
        bool_modifier: bool,
        /// `on`/`ignoring`, if given.
        matching: Option<Matching>,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// An aggregation.
    Aggregate {
        /// The operator.
        op: AggOp,
        /// Its grouping.
        grouping: Grouping,
        /// What it aggregates.
        expr: Box<Expr>,
    },
    /// A call of `rate`, `increase` or `histogram_quantile`.
    Call {
        /// The function's name.
        name: &'static str,
        /// Its arguments.
        args: Vec<Expr>,
    },
}

/// Functions of PromQL that Thermostat does not evaluate (refused by name).
const UNSUPPORTED_FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_avg",
    "histogram_count",
    "histogram_fraction",
    "histogram_stddev",
    "histogram_stdvar",
    "histogram_sum",
    "holt_winters",
    "hour",
    "idelta",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "mad_over_time",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_by_label",
    "sort_by_label_desc",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
    "double_exponential_smoothing",
    "info",
];

/// Aggregations of PromQL that Thermostat does not evaluate.
const UNSUPPORTED_AGGREGATIONS: &[&str] = &[
    "topk",
    "bottomk",
    "quantile",
    "stddev",
    "stdvar",
    "count_values",
    "group",
    "limitk",
    "limit_ratio",
];

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
    nodes: usize,
}

/// Parses `text` into an expression of the supported subset.
///
/// # Errors
/// [`Error::Parse`] for text that is not PromQL, [`Error::Unsupported`] naming a construct
/// Thermostat does not evaluate, [`Error::Limit`] for text over [`MAX_QUERY_BYTES`], nesting
/// over [`MAX_DEPTH`] or more than [`MAX_NODES`] nodes.
pub fn parse(text: &str) -> Result<Expr> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(Error::Limit(format!(
            "the query is {} bytes, more than the limit of {MAX_QUERY_BYTES} bytes",
            text.len()
        )));
    }
    if text.trim().is_empty() {
        return Err(Error::Parse("the query is empty".into()));
    }
    let mut p = Parser {
        toks: lex(text)?,
        pos: 0,
        depth: 0,
        nodes: 0,
    };
    let e = p.expr(0)?;
    match p.peek() {
        Tok::Eof => Ok(e),
        Tok::LBracket => Err(unsupported("a subquery (`expr[range:step]`)")),
        Tok::Ident(w) if w == "offset" => Err(unsupported("the `offset` modifier")),
        Tok::At => Err(unsupported("the `@` modifier")),
        Tok::Ident(w) if matches!(w.as_str(), "and" | "or" | "unless") => {
            Err(unsupported(&format!("the set operator `{w}`")))
        }
        Tok::Ident(w) if w == "atan2" => Err(unsupported("the `atan2` operator")),
        other => Err(p.error(format!("unexpected {}", describe(other)))),
    }
}

fn unsupported(what: &str) -> Error {
    Error::Unsupported(what.to_owned())
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(w) => format!("identifier {w:?}"),
        Tok::Number(n) => format!("number {n}"),
        Tok::Duration(_) => "duration".into(),
        Tok::Str(_) => "string".into(),
        Tok::Eof => "end of the query".into(),
        other => format!("{other:?}"),
    }
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].tok
    }

    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn error(&self, what: impl std::fmt::Display) -> Error {
        let at = self.toks[self.pos.min(self.toks.len() - 1)].at;
        Error::Parse(format!("parse error at byte {at}: {what}"))
    }

    /// An error at the token just consumed.
    fn error_prev(&self, what: impl std::fmt::Display) -> Error {
        let at = self.toks[self.pos.saturating_sub(1).min(self.toks.len() - 1)].at;
        Error::Parse(format!("parse error at byte {at}: {what}"))
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<()> {
        if *self.peek() == want {
            self.next();
            Ok(())
        } else {
            Err(self.error(format!("expected {what}, got {}", describe(self.peek()))))
        }
    }

    fn node(&mut self) -> Result<()> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(Error::Limit(format!(
                "the query has more than {MAX_NODES} nodes (selectors, numbers, operators, calls), the limit"
            )));
        }
        Ok(())
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::Limit(format!(
                "the query nests deeper than {MAX_DEPTH} levels, the limit"
            )));
        }
        Ok(())
    }

    fn binop(&self) -> Option<BinOp> {
        Some(match self.peek() {
            Tok::Add => BinOp::Add,
            Tok::Sub => BinOp::Sub,
            Tok::Mul => BinOp::Mul,
            Tok::Div => BinOp::Div,
            Tok::Mod => BinOp::Mod,
            Tok::Pow => BinOp::Pow,
            Tok::EqlEql => BinOp::Eq,
            Tok::Neq => BinOp::Ne,
            Tok::Gtr => BinOp::Gt,
            Tok::Lss => BinOp::Lt,
            Tok::Gte => BinOp::Ge,
            Tok::Lte => BinOp::Le,
            _ => return None,
        })
    }

    /// An expression whose binary operators bind at least as tightly as `min`.
    fn expr(&mut self, min: u8) -> Result<Expr> {
        self.enter()?;
        let mut lhs = self.unary()?;
        // The tree's depth grows with each operator of a chain (`1+1+1…`): counted too.
        let mut chain = 0usize;
        loop {
            if let Tok::Ident(w) = self.peek() {
                match w.as_str() {
                    "and" | "or" | "unless" => {
                        return Err(unsupported(&format!("the set operator `{w}`")));
                    }
                    "atan2" => return Err(unsupported("the `atan2` operator")),
                    _ => {}
                }
            }
            let Some(op) = self.binop() else { break };
            let prec = op.precedence();
            if prec < min {
                break;
            }
            self.next();
            let (bool_modifier, matching) = self.modifiers(op)?;
            // `^` is right-associative; the others left-associative.
            let next_min = if op == BinOp::Pow { prec } else { prec + 1 };
            let rhs = self.expr(next_min)?;
            self.node()?;
            chain += 1;
            if self.depth + chain > MAX_DEPTH {
                return Err(Error::Limit(format!(
                    "the query nests deeper than {MAX_DEPTH} levels, the limit (a chain of operators counts one level each)"
                )));
            }
            lhs = Expr::Binary {
                op,
                bool_modifier,
                matching,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
        self.depth -= 1;
        Ok(lhs)
    }

    fn modifiers(&mut self, op: BinOp) -> Result<(bool, Option<Matching>)> {
        let mut bool_modifier = false;
        if matches!(self.peek(), Tok::Ident(w) if w == "bool") {
            if !op.is_comparison() {
                return Err(self.error("bool modifier can only be used on comparison operators"));
            }
            self.next();
            bool_modifier = true;
        }
        let matching = match self.peek() {
            Tok::Ident(w) if w == "on" => {
                self.next();
                Some(Matching::On(self.label_list()?))
            }
            Tok::Ident(w) if w == "ignoring" => {
                self.next();
                Some(Matching::Ignoring(self.label_list()?))
            }
            _ => None,
        };
        if let Tok::Ident(w) = self.peek()
            && (w == "group_left" || w == "group_right")
        {
            return Err(unsupported(&format!("many-to-one matching (`{w}`)")));
        }
        Ok((bool_modifier, matching))
    }

    fn label_list(&mut self) -> Result<Vec<String>> {
        self.expect(Tok::LParen, "`(`")?;
        let mut out = Vec::new();
        loop {
            match self.next() {
                Tok::RParen => return Ok(out),
                Tok::Ident(w) | Tok::Str(w) => out.push(w),
                other => {
                    return Err(
                        self.error_prev(format!("expected a label name, got {}", describe(&other)))
                    );
                }
            }
            match self.next() {
                Tok::Comma => {}
                Tok::RParen => return Ok(out),
                other => {
                    return Err(self.error_prev(format!(
                        "expected `,` or `)` in the label list, got {}",
                        describe(&other)
                    )));
                }
            }
        }
    }

    fn unary(&mut self) -> Result<Expr> {
        match self.peek() {
            Tok::Sub => {
                self.next();
                self.enter()?;
                self.node()?;
                // `-a ^ b` is `-(a ^ b)`.
                let e = self.expr(BinOp::Pow.precedence())?;
                self.depth -= 1;
                Ok(Expr::Neg(Box::new(e)))
            }
            Tok::Add => {
                self.next();
                self.enter()?;
                let e = self.expr(BinOp::Pow.precedence())?;
                self.depth -= 1;
                Ok(e)
            }
            _ => {
                let e = self.primary()?;
                self.postfix(e)
            }
        }
    }

    fn postfix(&mut self, e: Expr) -> Result<Expr> {
        match self.peek() {
            Tok::Ident(w) if w == "offset" => Err(unsupported("the `offset` modifier")),
            Tok::At => Err(unsupported("the `@` modifier")),
            Tok::LBracket => match e {
                Expr::Selector(m) => {
                    self.next();
                    let range = match self.next() {
                        Tok::Duration(ms) => ms,
                        Tok::Number(s) if s.is_finite() && s > 0.0 && s < 1e12 => {
                            (s * 1000.0).round() as i64
                        }
                        other => {
                            return Err(self.error_prev(format!(
                                "expected a duration in the range selector, got {}",
                                describe(&other)
                            )));
                        }
                    };
                    match self.peek() {
                        Tok::Colon => return Err(unsupported("a subquery (`expr[range:step]`)")),
                        Tok::Ident(w) if w.starts_with(':') => {
                            return Err(unsupported("a subquery (`expr[range:step]`)"));
                        }
                        _ => {}
                    }
                    self.expect(Tok::RBracket, "`]`")?;
                    if range <= 0 {
                        return Err(self.error("a range must be positive"));
                    }
                    let r = Expr::Range(m, range);
                    match self.peek() {
                        Tok::Ident(w) if w == "offset" => Err(unsupported("the `offset` modifier")),
                        Tok::At => Err(unsupported("the `@` modifier")),
                        _ => Ok(r),
                    }
                }
                _ => Err(unsupported("a subquery (`expr[range:step]`)")),
            },
            _ => Ok(e),
        }
    }

    fn primary(&mut self) -> Result<Expr> {
        self.node()?;
        match self.next() {
            Tok::Number(n) => Ok(Expr::Number(n)),
            Tok::Duration(_) => Err(unsupported("a duration used as a number")),
            Tok::Str(_) => Err(unsupported("a string literal as an expression")),
            Tok::LParen => {
                self.enter()?;
                let e = self.expr(0)?;
                self.depth -= 1;
                self.expect(Tok::RParen, "`)`")?;
                Ok(e)
            }
            Tok::LBrace => Ok(Expr::Selector(self.matchers(None)?)),
            Tok::Ident(word) => self.identifier(word),
            other => Err(self.error_prev(format!("unexpected {}", describe(&other)))),
        }
    }

    fn identifier(&mut self, word: String) -> Result<Expr> {
        let agg = match word.as_str() {
            "sum" => Some(AggOp::Sum),
            "avg" => Some(AggOp::Avg),
            "min" => Some(AggOp::Min),
            "max" => Some(AggOp::Max),
            "count" => Some(AggOp::Count),
            _ => None,
        };
        let opens = matches!(self.peek(), Tok::LParen)
            || matches!(self.peek(), Tok::Ident(w) if w == "by" || w == "without");
        if opens && UNSUPPORTED_AGGREGATIONS.contains(&word.as_str()) {
            return Err(unsupported(&format!("the aggregation `{word}`")));
        }
        if let (Some(op), true) = (agg, opens) {
            return self.aggregation(op);
        }
        if matches!(self.peek(), Tok::LParen) {
            let name: &'static str = match word.as_str() {
                "rate" => "rate",
                "increase" => "increase",
                "histogram_quantile" => "histogram_quantile",
                w if UNSUPPORTED_FUNCTIONS.contains(&w) => {
                    return Err(unsupported(&format!("the function `{w}`")));
                }
                w => return Err(self.error(format!("unknown function {w:?}"))),
            };
            self.next();
            self.enter()?;
            let mut args = Vec::new();
            if !matches!(self.peek(), Tok::RParen) {
                loop {
                    args.push(self.expr(0)?);
                    if matches!(self.peek(), Tok::Comma) {
                        self.next();
                    } else {
                        break;
                    }
                }
            }
            self.depth -= 1;
            self.expect(Tok::RParen, "`)` after the function's arguments")?;
            return Ok(Expr::Call { name, args });
        }
        if matches!(
            word.as_str(),
            "by" | "without" | "on" | "ignoring" | "group_left" | "group_right" | "bool"
        ) {
            return Err(self.error(format!("unexpected keyword {word:?}")));
        }
        if matches!(word.as_str(), "and" | "or" | "unless") {
            return Err(unsupported(&format!("the set operator `{word}`")));
        }
        let m = if matches!(self.peek(), Tok::LBrace) {
            self.next();
            self.matchers(Some(word))?
        } else {
            vec![name_matcher(word)]
        };
        Ok(Expr::Selector(m))
    }

    fn aggregation(&mut self, op: AggOp) -> Result<Expr> {
        let mut grouping = self.grouping()?;
        self.expect(Tok::LParen, "`(` after the aggregation")?;
        self.enter()?;
        let e = self.expr(0)?;
        self.depth -= 1;
        if matches!(self.peek(), Tok::Comma) {
            return Err(self.error("this aggregation takes one argument"));
        }
        self.expect(Tok::RParen, "`)`")?;
        if grouping == Grouping::All {
            grouping = self.grouping()?;
        } else if matches!(self.peek(), Tok::Ident(w) if w == "by" || w == "without") {
            return Err(self.error("an aggregation may have only one `by` or `without`"));
        }
        Ok(Expr::Aggregate {
            op,
            grouping,
            expr: Box::new(e),
        })
    }

    fn grouping(&mut self) -> Result<Grouping> {
        match self.peek() {
            Tok::Ident(w) if w == "by" => {
                self.next();
                Ok(Grouping::By(self.label_list()?))
            }
            Tok::Ident(w) if w == "without" => {
                self.next();
                Ok(Grouping::Without(self.label_list()?))
            }
            _ => Ok(Grouping::All),
        }
    }

    /// The matchers after `{` (consumed) up to `}`; `name` is the metric name written before.
    fn matchers(&mut self, name: Option<String>) -> Result<Vec<RawMatcher>> {
        let mut out: Vec<RawMatcher> = name.into_iter().map(name_matcher).collect();
        loop {
            let label = match self.next() {
                Tok::RBrace => break,
                Tok::Ident(w) => w,
                Tok::Str(s) => {
                    // `{"metric.name"}` (UTF-8 names) or `{"label"="value"}`.
                    if matches!(self.peek(), Tok::Comma | Tok::RBrace) {
                        out.push(name_matcher(s));
                        if matches!(self.peek(), Tok::Comma) {
                            self.next();
                        }
                        continue;
                    }
                    s
                }
                other => {
                    return Err(self.error_prev(format!(
                        "expected a label matcher, got {}",
                        describe(&other)
                    )));
                }
            };
            let op = match self.next() {
                Tok::Assign => MatchOp::Equal,
                Tok::Neq => MatchOp::NotEqual,
                Tok::EqlRegex => MatchOp::Regex,
                Tok::NeqRegex => MatchOp::NotRegex,
                other => {
                    return Err(self.error_prev(format!(
                        "expected one of = != =~ !~ after the label {label:?}, got {}",
                        describe(&other)
                    )));
                }
            };
            let value = match self.next() {
                Tok::Str(s) => s,
                other => {
                    return Err(self.error_prev(format!(
                        "expected a string after {label:?}, got {}",
                        describe(&other)
                    )));
                }
            };
            out.push(RawMatcher {
                name: label,
                op,
                value,
            });
            match self.next() {
                Tok::Comma => {}
                Tok::RBrace => break,
                other => {
                    return Err(self.error_prev(format!(
                        "expected `,` or `}}` after a matcher, got {}",
                        describe(&other)
                    )));
                }
            }
        }
        Ok(out)
    }
}

fn name_matcher(name: String) -> RawMatcher {
    RawMatcher {
        name: "__name__".into(),
        op: MatchOp::Equal,
        value: name,
    }
}

#[cfg(test)]
mod tests;
