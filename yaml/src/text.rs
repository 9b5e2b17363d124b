//! The bounds a YAML text must keep before it is parsed ([`check_text`]): size, characters
//! and nesting depth.

use crate::error::Pos;

/// Largest configuration or settings file accepted, in bytes (16 MiB).
pub const MAX_FILE_BYTES: usize = 16 << 20;

/// Deepest nesting of maps and sequences accepted in a configuration or settings file.
pub const MAX_YAML_DEPTH: usize = 64;

/// A YAML text refused: where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextError {
    /// Where the problem is (1-based line and column, in characters).
    pub pos: Pos,
    /// What is wrong, naming the rule.
    pub message: String,
    /// Which kind of problem, for a caller that words one of them itself.
    pub kind: TextErrorKind,
}

/// The kinds of [`TextError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TextErrorKind {
    /// More than [`MAX_FILE_BYTES`].
    TooLarge,
    /// A character YAML does not allow.
    Character,
    /// Maps and lists nested more than [`MAX_YAML_DEPTH`] levels deep.
    TooDeep,
    /// Not YAML, or YAML of a kind refused (anchors, tags, duplicate keys, keys that are not
    /// scalars).
    Syntax,
    /// The document is not a map at the top level (a scalar or a list); its message is a
    /// generic one that the caller usually replaces with the keys it expects.
    TopLevelNotMap,
}

/// Whether YAML 1.2 allows `c` in a stream (`c-printable`: tab, LF, CR, printable ASCII,
/// NEL and the rest of Unicode except the C1 controls, surrogates, U+FFFE and U+FFFF).
fn is_printable(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r' | '\u{20}'..='\u{7E}' | '\u{85}' | '\u{A0}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `U+0000 NUL`, `U+007F DEL`, `U+0085 ...`: a character's code point and name.
fn describe(c: char) -> String {
    const C0: [&str; 32] = [
        "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HT", "LF", "VT", "FF", "CR",
        "SO", "SI", "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB",
        "ESC", "FS", "GS", "RS", "US",
    ];
    let code = u32::from(c);
    let name = match usize::try_from(code) {
        Ok(n) if n < C0.len() => C0[n],
        _ if code == 0x7F => "DEL",
        _ if (0x80..=0x9F).contains(&code) => "(a C1 control character)",
        _ => "(a noncharacter)",
    };
    format!("U+{code:04X} {name}")
}

/// The 1-based line and column (in characters) of byte `at` of `text`, counting LF, CR LF
/// and a lone CR as line breaks, as the YAML parser does.
fn position(text: &str, at: usize) -> Pos {
    let before = &text.as_bytes()[..at];
    let mut line = 1u32;
    let mut line_start = 0;
    for (i, &b) in before.iter().enumerate() {
        let lone_cr = b == b'\r' && before.get(i + 1) != Some(&b'\n');
        if b == b'\n' || lone_cr {
            line = line.saturating_add(1);
            line_start = i + 1;
        }
    }
    let column = text[line_start..at].chars().count().saturating_add(1);
    Pos::new(line, u32::try_from(column).unwrap_or(u32::MAX))
}

/// Checks what the YAML parser does not, before it sees the text: at most
/// [`MAX_FILE_BYTES`], only characters YAML 1.2 allows (a NUL would otherwise end the file
/// silently where it stands, even in a comment), and maps and sequences nested at most
/// [`MAX_YAML_DEPTH`] deep (deeper block nesting would exhaust the parser's stack). The
/// depth is found by streaming the parser's events and stopping at the first one too deep,
/// so the cost is linear in the text before it. A syntax error found on the way is returned
/// as the parser words it.
///
/// # Errors
/// The first problem, with its position.
pub fn check_text(text: &str) -> Result<(), TextError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(TextError {
            pos: Pos::new(1, 1),
            message: format!(
                "the file is {} bytes; at most {MAX_FILE_BYTES} bytes (16 MiB) are allowed",
                text.len()
            ),
            kind: TextErrorKind::TooLarge,
        });
    }
    if let Some((at, c)) = text.char_indices().find(|&(_, c)| !is_printable(c)) {
        return Err(TextError {
            pos: position(text, at),
            message: format!(
                "{} is not allowed in YAML (only printable characters, tab, LF and CR are)",
                describe(c)
            ),
            kind: TextErrorKind::Character,
        });
    }
    use yaml_rust2::parser::{Event, Parser};
    let at = |m: &yaml_rust2::scanner::Marker| {
        Pos::new(
            u32::try_from(m.line()).unwrap_or(u32::MAX),
            u32::try_from(m.col().saturating_add(1)).unwrap_or(u32::MAX),
        )
    };
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    loop {
        match parser.next_token() {
            Ok((Event::SequenceStart(..) | Event::MappingStart(..), mark)) => {
                depth += 1;
                if depth > MAX_YAML_DEPTH {
                    return Err(TextError {
                        pos: at(&mark),
                        message: format!(
                            "maps and lists are nested more than {MAX_YAML_DEPTH} levels deep"
                        ),
                        kind: TextErrorKind::TooDeep,
                    });
                }
            }
            Ok((Event::SequenceEnd | Event::MappingEnd, _)) => depth = depth.saturating_sub(1),
            Ok((Event::StreamEnd, _)) => return Ok(()),
            Ok(_) => {}
            // The scanner looks ahead over flow collections and stops at 255 levels itself.
            Err(e) if e.info() == "recursion limit exceeded" => {
                return Err(TextError {
                    pos: at(e.marker()),
                    message: format!(
                        "maps and lists are nested more than {MAX_YAML_DEPTH} levels deep (255 \
                         levels of [ and {{ by here)"
                    ),
                    kind: TextErrorKind::TooDeep,
                });
            }
            Err(e) => {
                return Err(TextError {
                    pos: at(e.marker()),
                    message: format!("invalid YAML: {}", e.info()),
                    kind: TextErrorKind::Syntax,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yaml_printable_characters_are_allowed() {
        for (c, name) in [
            ('\u{1}', "U+0001 SOH"),
            ('\u{8}', "U+0008 BS"),
            ('\u{b}', "U+000B VT"),
            ('\u{1b}', "U+001B ESC"),
            ('\u{7f}', "U+007F DEL"),
            ('\u{80}', "U+0080 (a C1 control character)"),
            ('\u{9f}', "U+009F (a C1 control character)"),
            ('\u{fffe}', "U+FFFE (a noncharacter)"),
            ('\u{ffff}', "U+FFFF (a noncharacter)"),
        ] {
            let e = check_text(&format!("a: \"x{c}\"\n")).unwrap_err();
            assert_eq!(e.pos, Pos::new(1, 6), "{name}");
            assert!(e.message.starts_with(name), "{name}: {}", e.message);
        }
        // Tab, line breaks, NEL, non-ASCII text, a byte order mark and emoji are fine.
        for ok in [
            "a: \"x\ty\"\r\nb: 1\n",
            "a: \"x\u{85}y\"\n",
            "\u{feff}a: été ✓ 🌡\n",
            "",
        ] {
            check_text(ok).unwrap();
        }
        // Columns count characters; CR LF and a lone CR end lines.
        let e = check_text("a: 1\r\nb: 2\rc: \"é\u{7}\"\n").unwrap_err();
        assert_eq!(e.pos, Pos::new(3, 6), "{}", e.message);
    }

    #[test]
    fn a_file_beyond_the_size_limit_is_refused() {
        let text = format!("# {}\n", "x".repeat(MAX_FILE_BYTES));
        let e = check_text(&text).unwrap_err();
        assert_eq!(e.pos, Pos::new(1, 1));
        assert!(e.message.contains("16 MiB"), "{}", e.message);
        assert_eq!(e.kind, TextErrorKind::TooLarge);
        // Exactly at the limit is fine.
        let text = format!("#{}", " ".repeat(MAX_FILE_BYTES - 1));
        check_text(&text).unwrap();
    }

    #[test]
    fn nesting_is_counted_across_maps_and_lists() {
        // 64 levels: the root map and 63 lists.
        let ok = format!("a: {}{}\n", "[".repeat(63), "]".repeat(63));
        check_text(&ok).unwrap();
        let deep = format!("a: {}{}\n", "[".repeat(64), "]".repeat(64));
        let e = check_text(&deep).unwrap_err();
        assert_eq!(e.kind, TextErrorKind::TooDeep);
        assert_eq!(
            e.message,
            "maps and lists are nested more than 64 levels deep"
        );
        // Going back up frees levels: many shallow siblings are fine.
        let wide: String = (0..1_000).map(|i| format!("k{i}: [[1], [2]]\n")).collect();
        check_text(&wide).unwrap();
    }

    #[test]
    fn a_syntax_error_is_returned_as_the_parser_words_it() {
        let e = check_text("a: [1, 2\nb: 3\n").unwrap_err();
        assert_eq!(e.kind, TextErrorKind::Syntax);
        assert!(e.message.starts_with("invalid YAML: "), "{}", e.message);
        assert_eq!(e.pos.line, 2, "{e:?}");
    }
}
