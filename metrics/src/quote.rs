//! Quoting an offending value for an error message, bounded: every validator (names, units,
//! statistics, times, tokens) quotes what it refuses the same way.

/// Characters of an offending value an error message quotes at most.
pub const QUOTE_CHARS: usize = 64;

/// `text` quoted for an error message: whole when it is at most [`QUOTE_CHARS`] characters,
/// else its first [`QUOTE_CHARS`] characters followed by `…(N bytes)`, so that a message
/// stays small (a gRPC status travels in a header) however large the value.
pub fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        None => format!("{text:?}"),
        Some((end, _)) => format!("{:?}…({} bytes)", &text[..end], text.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_quoted_whole_and_long_text_is_cut() {
        assert_eq!(quote("Furlongs"), "\"Furlongs\"");
        let long = "é".repeat(100_000);
        let quoted = quote(&long);
        assert!(quoted.len() < 4 * QUOTE_CHARS, "{quoted}");
        assert!(quoted.ends_with("…(200000 bytes)"), "{quoted}");
    }
}
