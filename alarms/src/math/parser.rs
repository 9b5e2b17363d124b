//! The expression tree and the recursive-descent parser that builds it.

use super::lexer::{Tok, lex};
use super::{MAX_ARRAY_ITEMS, MAX_HEIGHT, MAX_NESTING, MathError, Pos};

/// A parsed expression: a node and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// Where the sub-expression starts (for an operator: where the operator is).
    pub pos: Pos,
    /// What it is.
    pub node: Node,
    height: usize,
}

impl Expr {
    fn new(pos: Pos, node: Node) -> Result<Self, MathError> {
        let children: Box<dyn Iterator<Item = &Expr>> = match &node {
            Node::Neg(e) => Box::new(std::iter::once(&**e)),
            Node::Binary(_, a, b) => Box::new([&**a, &**b].into_iter()),
            Node::Array(items) | Node::Call(_, items) => Box::new(items.iter()),
            _ => Box::new(std::iter::empty()),
        };
        let height = 1 + children.map(|c| c.height).max().unwrap_or(0);
        if height > MAX_HEIGHT {
            return Err(MathError::new(
                pos,
                "limit",
                format!("the expression is more than {MAX_HEIGHT} operations deep"),
            ));
        }
        Ok(Expr { pos, node, height })
    }

    /// The ids this expression reads (not counting `METRICS()`), in order of appearance.
    pub fn ids(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_ids(&mut out);
        out
    }

    fn collect_ids<'e>(&'e self, out: &mut Vec<&'e str>) {
        match &self.node {
            Node::Id(id) => out.push(id),
            Node::Neg(e) => e.collect_ids(out),
            Node::Binary(_, a, b) => {
                a.collect_ids(out);
                b.collect_ids(out);
            }
            Node::Array(items) | Node::Call(_, items) => {
                for i in items {
                    i.collect_ids(out);
                }
            }
            Node::Number(_) | Node::Text(_) | Node::Keyword(_) => {}
        }
    }

    /// Whether the expression calls `METRICS()` anywhere.
    pub fn uses_metrics(&self) -> bool {
        match &self.node {
            Node::Call(Func::Metrics, _) => true,
            Node::Neg(e) => e.uses_metrics(),
            Node::Binary(_, a, b) => a.uses_metrics() || b.uses_metrics(),
            Node::Array(items) | Node::Call(_, items) => items.iter().any(Expr::uses_metrics),
            _ => false,
        }
    }
}

/// The nodes of an expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// A number literal.
    Number(f64),
    /// A string literal (`METRICS("filter")`).
    Text(String),
    /// The id of another query.
    Id(String),
    /// An upper-case bare word a function takes (`REPEAT`, `LINEAR`, `ASC`, `DESC`, `SUM`…).
    Keyword(String),
    /// `[a, b, …]`.
    Array(Vec<Expr>),
    /// Unary minus.
    Neg(Box<Expr>),
    /// A binary operator.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// A function call.
    Call(Func, Vec<Expr>),
}

/// Binary operators.
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
    /// `^`
    Pow,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `AND` / `&&`
    And,
    /// `OR` / `||`
    Or,
}

macro_rules! funcs {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// The metric-math functions this engine implements.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Func {
            $($(#[$doc])* $variant,)*
        }

        impl Func {
            /// Every function this engine implements.
            pub const ALL: &'static [Func] = &[$(Func::$variant,)*];

            /// The function's CloudWatch name.
            pub fn name(self) -> &'static str {
                match self {
                    $(Func::$variant => $name,)*
                }
            }

            /// The function called `name` (upper case, as CloudWatch spells it).
            pub fn from_name(name: &str) -> Option<Func> {
                match name {
                    $($name => Some(Func::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

funcs! {
    /// `ABS(x)`
    Abs = "ABS",
    /// `ANOMALY_DETECTION_BAND(m[, k])`
    AnomalyDetectionBand = "ANOMALY_DETECTION_BAND",
    /// `AVG(x)`
    Avg = "AVG",
    /// `CEIL(x)`
    Ceil = "CEIL",
    /// `DATAPOINT_COUNT(m)`
    DatapointCount = "DATAPOINT_COUNT",
    /// `DATE(m)`: day of the month.
    Date = "DATE",
    /// `DAY(m)`: ISO day of the week.
    Day = "DAY",
    /// `DIFF(m)`
    Diff = "DIFF",
    /// `DIFF_TIME(m)`
    DiffTime = "DIFF_TIME",
    /// `EPOCH(m)`
    Epoch = "EPOCH",
    /// `FILL(m, value|REPEAT|LINEAR)`
    Fill = "FILL",
    /// `FIRST(array)`
    First = "FIRST",
    /// `FLOOR(x)`
    Floor = "FLOOR",
    /// `HOUR(m)`
    Hour = "HOUR",
    /// `IF(cond, a[, b])`
    If = "IF",
    /// `LAST(array)`
    Last = "LAST",
    /// `LOG(x)`: natural logarithm.
    Log = "LOG",
    /// `LOG10(x)`
    Log10 = "LOG10",
    /// `MAX(x)`
    Max = "MAX",
    /// `METRIC_COUNT(array)`
    MetricCount = "METRIC_COUNT",
    /// `METRICS([filter])`
    Metrics = "METRICS",
    /// `MIN(x)`
    Min = "MIN",
    /// `MINUTE(m)`
    Minute = "MINUTE",
    /// `MONTH(m)`
    Month = "MONTH",
    /// `PERIOD(m)`
    Period = "PERIOD",
    /// `RATE(m)`
    Rate = "RATE",
    /// `REMOVE_EMPTY(array)`
    RemoveEmpty = "REMOVE_EMPTY",
    /// `RUNNING_SUM(m)`
    RunningSum = "RUNNING_SUM",
    /// `SLICE(array, start, end)`
    Slice = "SLICE",
    /// `SORT(array, SUM|AVG|MIN|MAX|STDDEV, ASC|DESC[, limit])`
    Sort = "SORT",
    /// `STDDEV(x)`
    Stddev = "STDDEV",
    /// `SUM(x)`
    Sum = "SUM",
    /// `TIME_SERIES(scalar)`
    TimeSeries = "TIME_SERIES",
    /// `YEAR(m)`
    Year = "YEAR",
}

/// CloudWatch functions this engine refuses by name.
const OUT_OF_SCOPE: &[&str] = &["SEARCH", "SERVICE_QUOTA", "INSIGHT_RULE_METRIC", "LAMBDA"];

/// The bare words a function may take as an argument.
pub(super) const KEYWORDS: &[&str] = &[
    "REPEAT", "LINEAR", "ASC", "DESC", "SUM", "AVG", "MIN", "MAX", "STDDEV",
];

/// Parses a metric-math expression.
///
/// # Errors
/// A [`MathError`] at the first problem: a syntax error, an unknown or out-of-scope function,
/// or a broken limit ([`super::MAX_EXPRESSION_CHARS`], [`MAX_NESTING`], [`MAX_HEIGHT`],
/// [`MAX_ARRAY_ITEMS`]).
pub fn parse(src: &str) -> Result<Expr, MathError> {
    let trimmed = src.trim_start();
    if trimmed.len() >= 6
        && trimmed.is_char_boundary(6)
        && trimmed[..6].eq_ignore_ascii_case("SELECT")
        && trimmed[6..].starts_with(char::is_whitespace)
        && src.chars().count() <= super::MAX_EXPRESSION_CHARS
    {
        let skipped = &src[..src.len() - trimmed.len()];
        let line = 1 + skipped.matches('\n').count();
        let column = 1 + skipped.rsplit('\n').next().map_or(0, |l| l.chars().count());
        let pos = Pos {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        };
        return Err(MathError::new(
            pos,
            "unsupported",
            "Metrics Insights queries (`SELECT …`) are not supported; write a metric-math expression",
        ));
    }
    let toks = lex(src)?;
    if toks.len() == 1 {
        return Err(MathError::new(
            toks[0].1,
            "syntax",
            "the expression is empty",
        ));
    }
    let mut p = Parser {
        toks,
        i: 0,
        depth: 0,
    };
    let e = p.expr()?;
    let (tok, pos) = p.peek();
    if *tok != Tok::Eof {
        return Err(MathError::new(
            pos,
            "syntax",
            format!(
                "expected an operator or the end of the expression, found {}",
                tok.describe()
            ),
        ));
    }
    Ok(e)
}

struct Parser {
    toks: Vec<(Tok, Pos)>,
    i: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> (&Tok, Pos) {
        let (t, p) = &self.toks[self.i.min(self.toks.len() - 1)];
        (t, *p)
    }

    fn bump(&mut self) -> (Tok, Pos) {
        let (t, p) = self.toks[self.i.min(self.toks.len() - 1)].clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        (t, p)
    }

    fn enter(&mut self, pos: Pos) -> Result<(), MathError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(MathError::new(
                pos,
                "limit",
                format!("the expression nests more than {MAX_NESTING} levels deep"),
            ));
        }
        Ok(())
    }

    fn expect(&mut self, want: &Tok, what: &str) -> Result<Pos, MathError> {
        let (tok, pos) = self.peek();
        if tok == want {
            self.bump();
            Ok(pos)
        } else {
            Err(MathError::new(
                pos,
                "syntax",
                format!("expected {what}, found {}", tok.describe()),
            ))
        }
    }

    fn expr(&mut self) -> Result<Expr, MathError> {
        self.binary(0)
    }

    /// Precedence climbing over the left-associative levels.
    fn binary(&mut self, level: usize) -> Result<Expr, MathError> {
        const LEVELS: usize = 5;
        if level == LEVELS {
            return self.unary();
        }
        let mut lhs = self.binary(level + 1)?;
        loop {
            let (tok, pos) = self.peek();
            let op = match (level, tok) {
                (0, Tok::Or) => BinOp::Or,
                (1, Tok::And) => BinOp::And,
                (2, Tok::Eq) => BinOp::Eq,
                (2, Tok::Ne) => BinOp::Ne,
                (2, Tok::Lt) => BinOp::Lt,
                (2, Tok::Le) => BinOp::Le,
                (2, Tok::Gt) => BinOp::Gt,
                (2, Tok::Ge) => BinOp::Ge,
                (3, Tok::Plus) => BinOp::Add,
                (3, Tok::Minus) => BinOp::Sub,
                (4, Tok::Star) => BinOp::Mul,
                (4, Tok::Slash) => BinOp::Div,
                _ => return Ok(lhs),
            };
            self.bump();
            let rhs = self.binary(level + 1)?;
            lhs = Expr::new(pos, Node::Binary(op, Box::new(lhs), Box::new(rhs)))?;
        }
    }

    fn unary(&mut self) -> Result<Expr, MathError> {
        let (tok, pos) = self.peek();
        match tok {
            Tok::Minus => {
                self.bump();
                self.enter(pos)?;
                let inner = self.unary()?;
                self.depth -= 1;
                Expr::new(pos, Node::Neg(Box::new(inner)))
            }
            Tok::Plus => Err(MathError::new(
                pos,
                "syntax",
                "unary `+` is not part of CloudWatch metric math; remove it",
            )),
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<Expr, MathError> {
        let base = self.primary()?;
        let (tok, pos) = self.peek();
        if *tok == Tok::Caret {
            self.bump();
            self.enter(pos)?;
            // Right-associative, and the exponent may be negated: `2 ^ -1`, `2 ^ 3 ^ 2`.
            let exp = self.unary()?;
            self.depth -= 1;
            return Expr::new(pos, Node::Binary(BinOp::Pow, Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<Expr, MathError> {
        let (tok, pos) = self.bump();
        match tok {
            Tok::Num(n) => Expr::new(pos, Node::Number(n)),
            Tok::Str(s) => Expr::new(pos, Node::Text(s)),
            Tok::LParen => {
                self.enter(pos)?;
                let e = self.expr()?;
                self.expect(&Tok::RParen, "`)` to close the `(`")?;
                self.depth -= 1;
                Ok(e)
            }
            Tok::LBracket => {
                self.enter(pos)?;
                let items = self.list(&Tok::RBracket, "`]`")?;
                self.depth -= 1;
                if items.is_empty() {
                    return Err(MathError::new(
                        pos,
                        "syntax",
                        "an array needs at least one item",
                    ));
                }
                Expr::new(pos, Node::Array(items))
            }
            Tok::Word(w) => self.word(w, pos),
            other => Err(MathError::new(
                pos,
                "syntax",
                format!(
                    "expected a number, an id, a function call, `(` or `[`, found {}",
                    other.describe()
                ),
            )),
        }
    }

    fn word(&mut self, w: String, pos: Pos) -> Result<Expr, MathError> {
        let call = *self.peek().0 == Tok::LParen;
        let upper = w.to_ascii_uppercase();
        if OUT_OF_SCOPE.contains(&upper.as_str()) {
            return Err(MathError::new(
                pos,
                "unsupported",
                format!("{upper} is not supported by Thermostat's metric math"),
            ));
        }
        if upper == "NOT" {
            return Err(MathError::new(
                pos,
                "syntax",
                "CloudWatch metric math has no NOT; write `x == 0`",
            ));
        }
        if upper == "SELECT" {
            return Err(MathError::new(
                pos,
                "unsupported",
                "Metrics Insights queries (`SELECT …`) are not supported",
            ));
        }
        if call {
            let Some(func) = Func::from_name(&w) else {
                let message = match Func::from_name(&upper) {
                    Some(f) => format!("function names are upper case: write {}", f.name()),
                    None => format!("`{w}` is not a metric-math function"),
                };
                return Err(MathError::new(pos, "unknown-function", message));
            };
            let open = self.bump().1;
            self.enter(open)?;
            let args = self.list(&Tok::RParen, "`)`")?;
            self.depth -= 1;
            return Expr::new(pos, Node::Call(func, args));
        }
        if w.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Expr::new(pos, Node::Id(w));
        }
        if KEYWORDS.contains(&w.as_str()) {
            return Expr::new(pos, Node::Keyword(w));
        }
        let message = if Func::from_name(&w).is_some() {
            format!("{w} is a function: call it as {w}(…)")
        } else {
            format!("`{w}` is not an id (ids start with a lower-case letter) nor a keyword")
        };
        Err(MathError::new(pos, "syntax", message))
    }

    /// Items separated by commas up to `close` (consumed).
    fn list(&mut self, close: &Tok, what: &str) -> Result<Vec<Expr>, MathError> {
        let mut items = Vec::new();
        if self.peek().0 == close {
            self.bump();
            return Ok(items);
        }
        loop {
            let (_, pos) = self.peek();
            if items.len() == MAX_ARRAY_ITEMS {
                return Err(MathError::new(
                    pos,
                    "limit",
                    format!("more than {MAX_ARRAY_ITEMS} items in one list"),
                ));
            }
            items.push(self.expr()?);
            let (tok, pos) = self.peek();
            match tok {
                Tok::Comma => {
                    self.bump();
                }
                t if t == close => {
                    self.bump();
                    return Ok(items);
                }
                t => {
                    return Err(MathError::new(
                        pos,
                        "syntax",
                        format!("expected `,` or {what}, found {}", t.describe()),
                    ));
                }
            }
        }
    }
}
