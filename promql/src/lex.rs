//! The PromQL lexer: text to tokens with their byte offsets. It never recurses and does work
//! linear in the text; every error names the offset.

use crate::error::{Error, Result};

/// A token.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// An identifier or keyword (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
    Ident(String),
    /// A number (decimal, hexadecimal, `Inf`, `NaN`).
    Number(f64),
    /// A duration such as `5m` or `1h30m`, in milliseconds.
    Duration(i64),
    /// A string literal, unescaped.
    Str(String),
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Colon,
    At,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    /// `=` (matchers only).
    Assign,
    EqlEql,
    Neq,
    Lss,
    Lte,
    Gtr,
    Gte,
    EqlRegex,
    NeqRegex,
    Eof,
}

/// A token and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) at: usize,
}

fn err<T>(at: usize, what: impl std::fmt::Display) -> Result<T> {
    Err(Error::Parse(format!("parse error at byte {at}: {what}")))
}

/// Milliseconds per duration unit.
fn unit_ms(unit: &str) -> Option<i64> {
    Some(match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        "y" => 365 * 86_400_000,
        _ => return None,
    })
}

/// Parses a Prometheus duration made of units (`1h30m`, `5m`, `100ms`), units in decreasing
/// order, each at most once.
pub(crate) fn parse_unit_duration(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let (mut i, mut total, mut last_unit) = (0usize, 0i64, i64::MAX);
    if b.is_empty() {
        return None;
    }
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let n: i64 = text[start..i].parse().ok()?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = unit_ms(&text[ustart..i])?;
        if unit >= last_unit {
            return None;
        }
        last_unit = unit;
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    Some(total)
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

/// Splits `text` into tokens, ending with [`Tok::Eof`].
pub(crate) fn lex(text: &str) -> Result<Vec<Token>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let at = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            // A comment, to the end of the line.
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let two = b.get(i..i + 2);
        let tok = match (c, two) {
            (_, Some(b"==")) => Some((Tok::EqlEql, 2)),
            (_, Some(b"!=")) => Some((Tok::Neq, 2)),
            (_, Some(b"<=")) => Some((Tok::Lte, 2)),
            (_, Some(b">=")) => Some((Tok::Gte, 2)),
            (_, Some(b"=~")) => Some((Tok::EqlRegex, 2)),
            (_, Some(b"!~")) => Some((Tok::NeqRegex, 2)),
            (b'(', _) => Some((Tok::LParen, 1)),
            (b')', _) => Some((Tok::RParen, 1)),
            (b'{', _) => Some((Tok::LBrace, 1)),
            (b'}', _) => Some((Tok::RBrace, 1)),
            (b'[', _) => Some((Tok::LBracket, 1)),
            (b']', _) => Some((Tok::RBracket, 1)),
            (b',', _) => Some((Tok::Comma, 1)),
            (b'@', _) => Some((Tok::At, 1)),
            (b'+', _) => Some((Tok::Add, 1)),
            (b'-', _) => Some((Tok::Sub, 1)),
            (b'*', _) => Some((Tok::Mul, 1)),
            (b'/', _) => Some((Tok::Div, 1)),
            (b'%', _) => Some((Tok::Mod, 1)),
            (b'^', _) => Some((Tok::Pow, 1)),
            (b'=', _) => Some((Tok::Assign, 1)),
            (b'<', _) => Some((Tok::Lss, 1)),
            (b'>', _) => Some((Tok::Gtr, 1)),
            _ => None,
        };
        if let Some((tok, len)) = tok {
            out.push(Token { tok, at });
            i += len;
            continue;
        }
        if c == b'"' || c == b'\'' || c == b'`' {
            let (s, next) = lex_string(text, i)?;
            out.push(Token {
                tok: Tok::Str(s),
                at,
            });
            i = next;
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let (tok, next) = lex_number(text, i)?;
            out.push(Token { tok, at });
            i = next;
            continue;
        }
        if c == b':' && !b.get(i + 1).copied().is_some_and(is_ident_start) {
            out.push(Token {
                tok: Tok::Colon,
                at,
            });
            i += 1;
            continue;
        }
        if is_ident_start(c) {
            let start = i;
            while i < b.len() && is_ident_char(b[i]) {
                i += 1;
            }
            let word = &text[start..i];
            let tok = match word.to_ascii_lowercase().as_str() {
                "inf" => Tok::Number(f64::INFINITY),
                "nan" => Tok::Number(f64::NAN),
                _ => Tok::Ident(word.to_owned()),
            };
            out.push(Token { tok, at });
            continue;
        }
        let ch = text[i..].chars().next().unwrap_or('?');
        return err(at, format!("unexpected character {ch:?}"));
    }
    out.push(Token {
        tok: Tok::Eof,
        at: b.len(),
    });
    Ok(out)
}

fn lex_number(text: &str, start: usize) -> Result<(Tok, usize)> {
    let b = text.as_bytes();
    let mut i = start;
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        i += 2;
        let digits = i;
        while i < b.len() && b[i].is_ascii_hexdigit() {
            i += 1;
        }
        return match u64::from_str_radix(&text[digits..i], 16) {
            Ok(n) => Ok((Tok::Number(n as f64), i)),
            Err(_) => err(start, "a hexadecimal number must have 1 to 16 digits"),
        };
    }
    // A duration: digits followed by a unit letter (`5m`, `1h30m`, `100ms`).
    let mut j = i;
    while j < b.len() && b[j].is_ascii_digit() {
        j += 1;
    }
    if j < b.len() && matches!(b[j], b's' | b'm' | b'h' | b'd' | b'w' | b'y') {
        let mut k = j;
        while k < b.len() && b[k].is_ascii_alphanumeric() {
            k += 1;
        }
        return match parse_unit_duration(&text[i..k]) {
            Some(ms) => Ok((Tok::Duration(ms), k)),
            None => err(start, format!("not a valid duration: {:?}", &text[i..k])),
        };
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
        i += 1;
    }
    if i < b.len() && matches!(b[i], b'e' | b'E') {
        let mut k = i + 1;
        if k < b.len() && matches!(b[k], b'+' | b'-') {
            k += 1;
        }
        if k < b.len() && b[k].is_ascii_digit() {
            i = k;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    match text[start..i].parse::<f64>() {
        Ok(v) => Ok((Tok::Number(v), i)),
        Err(_) => err(start, format!("not a valid number: {:?}", &text[start..i])),
    }
}

fn lex_string(text: &str, start: usize) -> Result<(String, usize)> {
    let b = text.as_bytes();
    let quote = b[start];
    let mut i = start + 1;
    let mut out = String::new();
    if quote == b'`' {
        return match text[i..].find('`') {
            Some(end) => Ok((text[i..i + end].to_owned(), i + end + 1)),
            None => err(start, "unterminated raw string"),
        };
    }
    loop {
        let Some(&c) = b.get(i) else {
            return err(start, "unterminated string");
        };
        if c == quote {
            return Ok((out, i + 1));
        }
        if c == b'\n' {
            return err(start, "unterminated string (a newline in it)");
        }
        if c != b'\\' {
            let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        let Some(&e) = b.get(i + 1) else {
            return err(i, "unterminated escape");
        };
        i += 2;
        let simple = match e {
            b'a' => Some('\u{7}'),
            b'b' => Some('\u{8}'),
            b'f' => Some('\u{c}'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            b'v' => Some('\u{b}'),
            b'\\' => Some('\\'),
            b'"' => Some('"'),
            b'\'' => Some('\''),
            _ => None,
        };
        if let Some(ch) = simple {
            out.push(ch);
            continue;
        }
        let digits = match e {
            b'x' => 2,
            b'u' => 4,
            b'U' => 8,
            _ => return err(i - 2, format!("unknown escape \\{}", e as char)),
        };
        let hex = text.get(i..i + digits).unwrap_or("");
        let ch = u32::from_str_radix(hex, 16)
            .ok()
            .filter(|_| hex.len() == digits)
            .and_then(char::from_u32);
        match ch {
            Some(ch) => out.push(ch),
            None => return err(i - 2, "invalid escape"),
        }
        i += digits;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn lexes_selectors_durations_and_strings() {
        assert_eq!(
            toks(r#"rate(x{a=~"b\n"}[1h30m])"#),
            vec![
                Tok::Ident("rate".into()),
                Tok::LParen,
                Tok::Ident("x".into()),
                Tok::LBrace,
                Tok::Ident("a".into()),
                Tok::EqlRegex,
                Tok::Str("b\n".into()),
                Tok::RBrace,
                Tok::LBracket,
                Tok::Duration(5_400_000),
                Tok::RBracket,
                Tok::RParen,
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("0x1f 1e3 .5"),
            vec![
                Tok::Number(31.0),
                Tok::Number(1000.0),
                Tok::Number(0.5),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("`a\\b` 'c'"),
            vec![Tok::Str("a\\b".into()), Tok::Str("c".into()), Tok::Eof]
        );
        assert_eq!(
            toks("job:rate5m:sum # c"),
            vec![Tok::Ident("job:rate5m:sum".into()), Tok::Eof]
        );
    }

    #[test]
    fn durations_follow_prometheus() {
        assert_eq!(parse_unit_duration("5m"), Some(300_000));
        assert_eq!(parse_unit_duration("1h30m"), Some(5_400_000));
        assert_eq!(parse_unit_duration("100ms"), Some(100));
        assert_eq!(parse_unit_duration("30m1h"), None);
        assert_eq!(parse_unit_duration("5x"), None);
        assert_eq!(parse_unit_duration(""), None);
        assert_eq!(parse_unit_duration("99999999999999999y"), None);
    }

    #[test]
    fn errors_name_the_offset() {
        let e = lex("a $").unwrap_err().to_string();
        assert!(e.contains("byte 2"), "{e}");
        assert!(lex("\"abc").is_err());
        assert!(lex("\"\\q\"").is_err());
    }
}
