//! `next_token`: where a page ended, as the day file's date and the byte offset of the next
//! line to read (`YYYY-MM-DD:<offset>`), hex-encoded so that clients treat it as opaque.

use jiff::civil::Date;

use crate::error::{Error, Result};

/// A place in the trail: the next line to read is at `offset` in `date`'s file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Position {
    pub(crate) date: Date,
    pub(crate) offset: u64,
}

/// The longest token we make: a date (10 characters, 11 with a sign and 6 digits), `:`, and
/// a `u64`, each byte as two hex digits.
const MAX_TOKEN_CHARS: usize = 2 * (12 + 1 + 20);

impl Position {
    /// The token that resumes here.
    pub(crate) fn encode(self) -> String {
        format!("{}:{}", self.date, self.offset)
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The position a token made by [`Position::encode`] names.
    ///
    /// # Errors
    /// [`Error::BadToken`] when `token` is not one of ours.
    pub(crate) fn decode(token: &str) -> Result<Self> {
        let bad = |reason| Error::BadToken { reason };
        if token.is_empty() || token.len() > MAX_TOKEN_CHARS || !token.len().is_multiple_of(2) {
            return Err(bad("wrong length"));
        }
        let bytes = token
            .as_bytes()
            .chunks(2)
            .map(|pair| {
                let digits = std::str::from_utf8(pair).ok()?;
                if !digits
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return None;
                }
                u8::from_str_radix(digits, 16).ok()
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or(bad("not lowercase hex"))?;
        let text = String::from_utf8(bytes).map_err(|_| bad("not text"))?;
        let (date, offset) = text.split_once(':').ok_or(bad("no offset"))?;
        let date: Date = date.parse().map_err(|_| bad("no date"))?;
        if !offset.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("no offset"));
        }
        let offset: u64 = offset.parse().map_err(|_| bad("no offset"))?;
        let position = Position { date, offset };
        if position.encode() != token {
            return Err(bad("not in the form this trail writes"));
        }
        Ok(position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_others_are_refused() {
        let p = Position {
            date: jiff::civil::date(2024, 3, 9),
            offset: 1234,
        };
        let token = p.encode();
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
        assert_eq!(Position::decode(&token).unwrap(), p);
        let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
        for other in [
            String::new(),
            "zz".into(),
            "abc".into(),
            token.to_uppercase(),
            hex("2024-03-09"),
            hex("2024-03-09:"),
            hex("2024-02-30:1"),
            hex("2024-03-09:+1"),
            hex("2024-03-09:01"),
            hex("2024-03-09:99999999999999999999"),
            "a".repeat(1000),
        ] {
            let err = Position::decode(&other).unwrap_err();
            assert!(matches!(err, Error::BadToken { .. }), "{other}: {err}");
        }
    }
}
