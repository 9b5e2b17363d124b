//! Tokens with their positions.

use super::{MAX_EXPRESSION_CHARS, MathError, Pos};

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    Num(f64),
    Str(String),
    /// A bare word: an id, a function name or a keyword.
    Word(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Plus,
    Minus,
    Star,
    Slash,
    Caret,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Eof,
}

impl Tok {
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Num(n) => format!("number {n}"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Word(w) => format!("`{w}`"),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Plus => "`+`".into(),
            Tok::Minus => "`-`".into(),
            Tok::Star => "`*`".into(),
            Tok::Slash => "`/`".into(),
            Tok::Caret => "`^`".into(),
            Tok::Eq => "`==`".into(),
            Tok::Ne => "`!=`".into(),
            Tok::Lt => "`<`".into(),
            Tok::Le => "`<=`".into(),
            Tok::Gt => "`>`".into(),
            Tok::Ge => "`>=`".into(),
            Tok::And => "`AND`".into(),
            Tok::Or => "`OR`".into(),
            Tok::Eof => "the end of the expression".into(),
        }
    }
}

/// Splits `src` into tokens, the last one [`Tok::Eof`].
pub(super) fn lex(src: &str) -> Result<Vec<(Tok, Pos)>, MathError> {
    let start = Pos { line: 1, column: 1 };
    let count = src.chars().count();
    if count > MAX_EXPRESSION_CHARS {
        return Err(MathError::new(
            start,
            "limit",
            format!(
                "the expression has {count} characters; CloudWatch allows at most {MAX_EXPRESSION_CHARS}"
            ),
        ));
    }
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let mut pos = start;
    let advance = |i: &mut usize, pos: &mut Pos, n: usize| {
        for _ in 0..n {
            if chars.get(*i) == Some(&'\n') {
                pos.line += 1;
                pos.column = 1;
            } else {
                pos.column += 1;
            }
            *i += 1;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let at = pos;
        if c.is_whitespace() {
            advance(&mut i, &mut pos, 1);
            continue;
        }
        let next = chars.get(i + 1).copied();
        let (tok, len) = match c {
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            '[' => (Tok::LBracket, 1),
            ']' => (Tok::RBracket, 1),
            ',' => (Tok::Comma, 1),
            '+' => (Tok::Plus, 1),
            '-' => (Tok::Minus, 1),
            '*' => (Tok::Star, 1),
            '/' => (Tok::Slash, 1),
            '^' => (Tok::Caret, 1),
            '=' if next == Some('=') => (Tok::Eq, 2),
            '!' if next == Some('=') => (Tok::Ne, 2),
            '<' if next == Some('=') => (Tok::Le, 2),
            '>' if next == Some('=') => (Tok::Ge, 2),
            '<' => (Tok::Lt, 1),
            '>' => (Tok::Gt, 1),
            '&' if next == Some('&') => (Tok::And, 2),
            '|' if next == Some('|') => (Tok::Or, 2),
            '=' => {
                return Err(MathError::new(
                    at,
                    "syntax",
                    "`=` is not an operator; write `==` to compare",
                ));
            }
            '!' => {
                return Err(MathError::new(
                    at,
                    "syntax",
                    "`!` is not an operator (CloudWatch has no NOT); write `x == 0`, or `!=` to compare",
                ));
            }
            '"' | '\'' => {
                let quote = c;
                let mut text = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => {
                            return Err(MathError::new(
                                at,
                                "syntax",
                                format!("unterminated string: a closing `{quote}` is missing"),
                            ));
                        }
                        Some(q) if *q == quote => break,
                        Some('\\') => match chars.get(j + 1) {
                            Some(e @ ('"' | '\'' | '\\')) => {
                                text.push(*e);
                                j += 2;
                            }
                            _ => {
                                return Err(MathError::new(
                                    at,
                                    "syntax",
                                    "in this string, a `\\` escapes something other than a quote or `\\`",
                                ));
                            }
                        },
                        Some(ch) => {
                            text.push(*ch);
                            j += 1;
                        }
                    }
                }
                (Tok::Str(text), j + 1 - i)
            }
            c if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) => {
                let mut j = i;
                while chars.get(j).is_some_and(char::is_ascii_digit) {
                    j += 1;
                }
                if chars.get(j) == Some(&'.') {
                    j += 1;
                    while chars.get(j).is_some_and(char::is_ascii_digit) {
                        j += 1;
                    }
                }
                if matches!(chars.get(j), Some('e' | 'E')) {
                    let mut k = j + 1;
                    if matches!(chars.get(k), Some('+' | '-')) {
                        k += 1;
                    }
                    if chars.get(k).is_some_and(char::is_ascii_digit) {
                        while chars.get(k).is_some_and(char::is_ascii_digit) {
                            k += 1;
                        }
                        j = k;
                    }
                }
                let text: String = chars[i..j].iter().collect();
                let n: f64 = text.parse().map_err(|_| {
                    MathError::new(at, "syntax", format!("`{text}` is not a number"))
                })?;
                if !n.is_finite() {
                    return Err(MathError::new(
                        at,
                        "syntax",
                        format!("the number `{text}` is out of range"),
                    ));
                }
                if chars
                    .get(j)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_')
                {
                    return Err(MathError::new(
                        at,
                        "syntax",
                        format!(
                            "`{text}{}` is not a number, and an id must start with a lower-case letter",
                            chars[j]
                        ),
                    ));
                }
                (Tok::Num(n), j - i)
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut j = i;
                while chars
                    .get(j)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
                {
                    j += 1;
                }
                let word: String = chars[i..j].iter().collect();
                let tok = match word.as_str() {
                    "AND" => Tok::And,
                    "OR" => Tok::Or,
                    _ => Tok::Word(word),
                };
                (tok, j - i)
            }
            other => {
                return Err(MathError::new(
                    at,
                    "syntax",
                    format!("unexpected character {other:?}"),
                ));
            }
        };
        toks.push((tok, at));
        advance(&mut i, &mut pos, len);
    }
    toks.push((Tok::Eof, pos));
    Ok(toks)
}
