//! Composite alarm rules (`AlarmRule`): parsing and evaluation.
//!
//! Grammar (reference §3.10), with NOT binding tighter than AND, and AND tighter than OR;
//! keywords are upper-case only:
//!
//! ```text
//! rule      := or_expr
//! or_expr   := and_expr { "OR" and_expr }
//! and_expr  := unary { "AND" unary }
//! unary     := "NOT" unary | primary
//! primary   := "(" rule ")" | "TRUE" | "FALSE"
//!            | ("ALARM" | "OK" | "INSUFFICIENT_DATA") "(" alarm_ref ")"
//! alarm_ref := name or ARN, optionally in double quotes
//! ```
//!
//! An ARN reference (`arn:aws:cloudwatch:<region>:<account>:alarm:<name>`) refers to the
//! alarm `<name>`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::state::StateValue;

/// Longest rule (CloudWatch limit).
pub const MAX_RULE_CHARS: usize = 10_240;
/// Most alarm references in one rule.
pub const MAX_CHILDREN: usize = 100;
/// Most elements (references, TRUE/FALSE, parentheses) in one rule.
pub const MAX_ELEMENTS: usize = 500;

/// A parsed rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlarmRule {
    /// `TRUE` or `FALSE`.
    Const(bool),
    /// `ALARM("x")`, `OK("x")` or `INSUFFICIENT_DATA("x")`.
    State(StateValue, String),
    /// `NOT r`.
    Not(Box<AlarmRule>),
    /// `a AND b AND ...`.
    And(Vec<AlarmRule>),
    /// `a OR b OR ...`.
    Or(Vec<AlarmRule>),
}

impl AlarmRule {
    /// Evaluates the rule given each referenced alarm's state (`None` = unknown, which
    /// makes every state function false).
    pub fn eval(&self, state_of: &dyn Fn(&str) -> Option<StateValue>) -> bool {
        match self {
            AlarmRule::Const(b) => *b,
            AlarmRule::State(s, name) => state_of(name) == Some(*s),
            AlarmRule::Not(r) => !r.eval(state_of),
            AlarmRule::And(rs) => rs.iter().all(|r| r.eval(state_of)),
            AlarmRule::Or(rs) => rs.iter().any(|r| r.eval(state_of)),
        }
    }

    /// Every alarm referenced, in order of appearance, without repeats.
    pub fn references(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            AlarmRule::Const(_) => {}
            AlarmRule::State(_, n) => {
                if !out.contains(&n.as_str()) {
                    out.push(n);
                }
            }
            AlarmRule::Not(r) => r.collect(out),
            AlarmRule::And(rs) | AlarmRule::Or(rs) => rs.iter().for_each(|r| r.collect(out)),
        }
    }
}

impl fmt::Display for AlarmRule {
    /// Canonical text, fully parenthesised where operators mix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlarmRule::Const(true) => f.write_str("TRUE"),
            AlarmRule::Const(false) => f.write_str("FALSE"),
            AlarmRule::State(s, n) => write!(f, "{s}(\"{n}\")"),
            AlarmRule::Not(r) => match **r {
                AlarmRule::And(_) | AlarmRule::Or(_) => write!(f, "NOT ({r})"),
                _ => write!(f, "NOT {r}"),
            },
            AlarmRule::And(rs) | AlarmRule::Or(rs) => {
                let op = if matches!(self, AlarmRule::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                for (i, r) in rs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(op)?;
                    }
                    match r {
                        AlarmRule::And(_) | AlarmRule::Or(_) => write!(f, "({r})")?,
                        _ => write!(f, "{r}")?,
                    }
                }
                Ok(())
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Open,
    Close,
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    end: usize,
    children: usize,
    elements: usize,
}

/// Parses a rule.
///
/// # Errors
/// The first problem, with its character offset ([`Error::Rule`]).
pub fn parse(text: &str) -> Result<AlarmRule, Error> {
    let n = text.chars().count();
    if text.trim().is_empty() || n > MAX_RULE_CHARS {
        return Err(Error::Rule {
            offset: 0,
            message: format!("must be 1 to {MAX_RULE_CHARS} characters (got {n})"),
        });
    }
    let mut p = Parser {
        toks: tokenize(text)?,
        pos: 0,
        end: n,
        children: 0,
        elements: 0,
    };
    let rule = p.or_expr()?;
    if let Some((off, t)) = p.toks.get(p.pos) {
        return Err(Error::Rule {
            offset: *off,
            message: format!(
                "unexpected {} after a complete rule{}",
                describe(t),
                keyword_hint(t)
            ),
        });
    }
    if p.children > MAX_CHILDREN {
        return Err(Error::Rule {
            offset: 0,
            message: format!(
                "must refer to at most {MAX_CHILDREN} alarms (got {})",
                p.children
            ),
        });
    }
    if p.elements > MAX_ELEMENTS {
        return Err(Error::Rule {
            offset: 0,
            message: format!(
                "must have at most {MAX_ELEMENTS} elements (got {})",
                p.elements
            ),
        });
    }
    Ok(rule)
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Word(w) => format!("{w:?}"),
        Tok::Quoted(q) => format!("\"{q}\""),
        Tok::Open => "\"(\"".into(),
        Tok::Close => "\")\"".into(),
    }
}

fn tokenize(text: &str) -> Result<Vec<(usize, Tok)>, Error> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push((i, Tok::Open));
            i += 1;
        } else if c == ')' {
            out.push((i, Tok::Close));
            i += 1;
        } else if c == '"' {
            let start = i;
            i += 1;
            let s = i;
            while i < chars.len() && chars[i] != '"' {
                i += 1;
            }
            if i == chars.len() {
                return Err(Error::Rule {
                    offset: start,
                    message: "unterminated quoted alarm name".into(),
                });
            }
            out.push((start, Tok::Quoted(chars[s..i].iter().collect())));
            i += 1;
        } else {
            let s = i;
            while i < chars.len() && !chars[i].is_whitespace() && !matches!(chars[i], '(' | ')') {
                i += 1;
            }
            out.push((s, Tok::Word(chars[s..i].iter().collect())));
        }
    }
    Ok(out)
}

impl Parser {
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.toks.get(self.pos), Some((_, Tok::Word(x))) if x == w)
    }

    fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(o, _)| *o)
    }

    fn or_expr(&mut self) -> Result<AlarmRule, Error> {
        let mut items = vec![self.and_expr()?];
        while self.peek_word("OR") {
            self.pos += 1;
            items.push(self.and_expr()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            AlarmRule::Or(items)
        })
    }

    fn and_expr(&mut self) -> Result<AlarmRule, Error> {
        let mut items = vec![self.unary()?];
        while self.peek_word("AND") {
            self.pos += 1;
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            AlarmRule::And(items)
        })
    }

    fn unary(&mut self) -> Result<AlarmRule, Error> {
        if self.peek_word("NOT") {
            self.pos += 1;
            return Ok(AlarmRule::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn expect_close(&mut self, opened_at: usize) -> Result<(), Error> {
        match self.toks.get(self.pos) {
            Some((_, Tok::Close)) => {
                self.pos += 1;
                Ok(())
            }
            Some((o, t)) => Err(Error::Rule {
                offset: *o,
                message: format!(
                    "expected \")\" to close the \"(\" at character {opened_at}, found {}",
                    describe(t)
                ),
            }),
            None => Err(Error::Rule {
                offset: self.end,
                message: format!("missing \")\" for the \"(\" at character {opened_at}"),
            }),
        }
    }

    fn primary(&mut self) -> Result<AlarmRule, Error> {
        let off = self.offset();
        let Some((_, tok)) = self.toks.get(self.pos).cloned() else {
            return Err(Error::Rule {
                offset: off,
                message: "expected ALARM(...), OK(...), INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or \"(\" but the rule ended".into(),
            });
        };
        self.pos += 1;
        match tok {
            Tok::Open => {
                self.elements += 2;
                let r = self.or_expr()?;
                self.expect_close(off)?;
                Ok(r)
            }
            Tok::Word(w) if w == "TRUE" || w == "FALSE" => {
                self.elements += 1;
                Ok(AlarmRule::Const(w == "TRUE"))
            }
            Tok::Word(w) if matches!(w.as_str(), "ALARM" | "OK" | "INSUFFICIENT_DATA") => {
                let state: StateValue = w.parse().map_err(|m| Error::Rule {
                    offset: off,
                    message: m,
                })?;
                let open = self.offset();
                if !matches!(self.toks.get(self.pos), Some((_, Tok::Open))) {
                    return Err(Error::Rule {
                        offset: open,
                        message: format!("expected \"(\" after {w}"),
                    });
                }
                self.pos += 1;
                let name_off = self.offset();
                let name = match self.toks.get(self.pos).cloned() {
                    Some((_, Tok::Quoted(q))) | Some((_, Tok::Word(q))) => q,
                    _ => {
                        return Err(Error::Rule {
                            offset: name_off,
                            message: format!("expected an alarm name inside {w}(...)"),
                        });
                    }
                };
                self.pos += 1;
                let name = alarm_name_of(&name).to_owned();
                if name.is_empty() {
                    return Err(Error::Rule {
                        offset: name_off,
                        message: "alarm name must not be empty".into(),
                    });
                }
                self.expect_close(open)?;
                self.children += 1;
                self.elements += 1;
                Ok(AlarmRule::State(state, name))
            }
            Tok::Word(ref w) => {
                let hint = keyword_hint(&tok);
                Err(Error::Rule {
                    offset: off,
                    message: format!(
                        "expected ALARM(...), OK(...), INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or \"(\", found {w:?}{hint}"
                    ),
                })
            }
            other => Err(Error::Rule {
                offset: off,
                message: format!(
                    "expected ALARM(...), OK(...), INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or \"(\", found {}",
                    describe(&other)
                ),
            }),
        }
    }
}

fn keyword_hint(t: &Tok) -> String {
    let Tok::Word(w) = t else {
        return String::new();
    };
    let upper = w.to_ascii_uppercase();
    if [
        "AND",
        "OR",
        "NOT",
        "TRUE",
        "FALSE",
        "ALARM",
        "OK",
        "INSUFFICIENT_DATA",
    ]
    .contains(&upper.as_str())
    {
        format!(" (keywords are upper-case: {upper})")
    } else {
        String::new()
    }
}

/// The alarm name of a reference: the part after `:alarm:` in an ARN, else the reference.
pub fn alarm_name_of(reference: &str) -> &str {
    match reference.split_once(":alarm:") {
        Some((_, name)) if reference.starts_with("arn:") => name,
        _ => reference,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(name: &str) -> Option<StateValue> {
        match name {
            "a" => Some(StateValue::Alarm),
            "o" => Some(StateValue::Ok),
            "i" => Some(StateValue::InsufficientData),
            _ => None,
        }
    }

    #[test]
    fn rules_parse_and_evaluate() {
        // Reference §3.10: functions, constants, NOT > AND > OR, nesting, quoted and ARN refs.
        let cases = [
            ("ALARM(\"a\")", true),
            ("ALARM(a)", true),
            ("OK(\"a\")", false),
            ("INSUFFICIENT_DATA(i)", true),
            ("TRUE", true),
            ("FALSE", false),
            ("NOT ALARM(a)", false),
            ("ALARM(a) AND NOT OK(o)", false),
            ("ALARM(a) OR OK(o) AND FALSE", true),
            ("(ALARM(a) OR OK(o)) AND FALSE", false),
            ("NOT NOT (OK(o) AND (ALARM(a) OR FALSE))", true),
            ("ALARM(\"arn:aws:cloudwatch:eu-west-1:123:alarm:a\")", true),
            ("ALARM(missing)", false),
        ];
        for (text, want) in cases {
            let r = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(r.eval(&st), want, "{text} parsed as {r}");
            // The canonical rendering parses to the same rule.
            assert_eq!(parse(&r.to_string()), Ok(r.clone()), "{text}");
        }
    }

    #[test]
    fn bad_rules_say_where() {
        let cases = [
            ("", 0),
            ("ALARM(a", 7),
            ("ALARM(a) and OK(b)", 9),
            ("ALARM a", 6),
            ("ALARM()", 6),
            ("ALARM(\"a) OR OK(b)", 6),
            ("ALARM(a) OK(b)", 9),
            ("(ALARM(a)", 9),
            ("NOT", 3),
        ];
        for (text, offset) in cases {
            match parse(text) {
                Err(e @ Error::Rule { offset: at, .. }) => assert_eq!(at, offset, "{text}: {e}"),
                Err(e) => panic!("{text}: not a rule error: {e}"),
                Ok(r) => panic!("{text} parsed as {r}"),
            }
        }
        let Err(Error::Rule { message, .. }) = parse("ALARM(a) and OK(b)") else {
            panic!("not a rule error")
        };
        assert!(message.contains("upper-case"));
    }

    #[test]
    fn references_are_listed_once() {
        let r = parse("ALARM(a) OR (OK(b) AND NOT ALARM(a))").unwrap();
        assert_eq!(r.references(), vec!["a", "b"]);
    }
}
