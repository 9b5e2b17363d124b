//! Smithy RPC v2 CBOR bodies into a [`Value`], within [`Limits`].
//!
//! `ciborium-ll` reads the item headers; this module drives the recursion itself so that
//! depth, list and map lengths (indefinite ones included), string lengths and the element
//! count are all checked before anything is allocated for them. Strings are read in 4 KiB
//! chunks, so a header claiming a huge length allocates nothing until its bytes arrive.

use std::collections::BTreeMap;

use ciborium_ll::{Decoder, Header};
use thermostat_metrics::Timestamp;

use crate::budget::Budget;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::value::Value;

/// The CBOR tag of an epoch-based date/time (RFC 8949 §3.4.2), Smithy's timestamp.
const TAG_EPOCH: u64 = 1;

/// Decodes a CBOR body. An empty body is an empty map.
///
/// # Errors
///
/// [`Error::TooLarge`] naming the bound crossed, [`Error::Malformed`] for invalid CBOR, byte
/// strings, tags other than 1, trailing bytes or non-string map keys.
pub fn decode(body: &[u8], limits: &Limits) -> Result<Value> {
    let mut budget = Budget::new(limits);
    budget.check_body(body.len())?;
    if body.is_empty() {
        return Ok(Value::Map(BTreeMap::new()));
    }
    let mut decoder = Decoder::from(body);
    let value = read(&mut decoder, &mut budget, 0)?;
    if decoder.offset() != body.len() {
        return Err(malformed(
            decoder.offset(),
            "trailing bytes after the value",
        ));
    }
    Ok(value)
}

fn malformed(offset: usize, what: &str) -> Error {
    Error::Malformed(format!("CBOR at byte {offset}: {what}"))
}

fn pull(decoder: &mut Decoder<&[u8]>) -> Result<Header> {
    let offset = decoder.offset();
    decoder
        .pull()
        .map_err(|_| malformed(offset, "invalid or truncated item header"))
}

/// Reads one item; `depth` is the depth of the list or map it is in (0 at the top).
fn read(decoder: &mut Decoder<&[u8]>, budget: &mut Budget<'_>, depth: usize) -> Result<Value> {
    budget.take_element()?;
    let offset = decoder.offset();
    let header = pull(decoder)?;
    Ok(match header {
        Header::Positive(n) => i64::try_from(n).map_or(Value::Float(n as f64), Value::Int),
        Header::Negative(n) => match i64::try_from(n) {
            Ok(n) => Value::Int(-1 - n),
            Err(_) => Value::Float(-1.0 - n as f64),
        },
        Header::Float(f) => Value::Float(f),
        Header::Simple(20) => Value::Bool(false),
        Header::Simple(21) => Value::Bool(true),
        Header::Simple(22 | 23) => Value::Null,
        Header::Simple(other) => return Err(malformed(offset, &format!("simple value {other}"))),
        Header::Tag(TAG_EPOCH) => Value::Timestamp(read_epoch(decoder)?),
        Header::Tag(other) => {
            return Err(malformed(offset, &format!("unsupported tag {other}")));
        }
        Header::Break => return Err(malformed(offset, "unexpected break")),
        Header::Bytes(_) => {
            return Err(malformed(
                offset,
                "byte strings are not used by CloudWatch's operations",
            ));
        }
        Header::Text(len) => Value::String(read_text(decoder, budget, len)?),
        Header::Array(len) => {
            budget.check_depth(depth + 1)?;
            let mut items = Vec::new();
            if let Some(len) = len {
                budget.check_len(len)?;
                for _ in 0..len {
                    items.push(read(decoder, budget, depth + 1)?);
                }
            } else {
                loop {
                    match pull(decoder)? {
                        Header::Break => break,
                        header => decoder.push(header),
                    }
                    budget.check_len(items.len() + 1)?;
                    items.push(read(decoder, budget, depth + 1)?);
                }
            }
            Value::List(items)
        }
        Header::Map(len) => {
            budget.check_depth(depth + 1)?;
            let mut entries = BTreeMap::new();
            let mut count = 0;
            loop {
                match len {
                    Some(len) if count == len => break,
                    Some(len) => budget.check_len(len)?,
                    None => match pull(decoder)? {
                        Header::Break => break,
                        header => {
                            decoder.push(header);
                            budget.check_len(count + 1)?;
                        }
                    },
                }
                count += 1;
                budget.take_element()?;
                let key_offset = decoder.offset();
                let key = match pull(decoder)? {
                    Header::Text(len) => read_text(decoder, budget, len)?,
                    _ => return Err(malformed(key_offset, "map keys must be text strings")),
                };
                let value = read(decoder, budget, depth + 1)?;
                if entries.insert(key, value).is_some() {
                    return Err(malformed(key_offset, "duplicate map key"));
                }
            }
            Value::Map(entries)
        }
    })
}

/// The number after tag 1: epoch seconds, integer or float.
fn read_epoch(decoder: &mut Decoder<&[u8]>) -> Result<Timestamp> {
    let offset = decoder.offset();
    let seconds = match pull(decoder)? {
        Header::Positive(n) => n as f64,
        Header::Negative(n) => -1.0 - n as f64,
        Header::Float(f) => f,
        _ => return Err(malformed(offset, "tag 1 must hold a number of seconds")),
    };
    epoch_seconds(seconds).ok_or_else(|| malformed(offset, "timestamp out of range"))
}

/// Epoch seconds as a [`Timestamp`] (rounded to the millisecond), if finite and within
/// RFC 3339's years 0000 to 9999.
pub(crate) fn epoch_seconds(seconds: f64) -> Option<Timestamp> {
    let millis = (seconds * 1000.0).round();
    let range = Timestamp::EARLIEST.as_millis() as f64..=Timestamp::LATEST.as_millis() as f64;
    range
        .contains(&millis)
        .then(|| Timestamp::from_millis(millis as i64))
}

/// A text string, definite or made of segments, at most `max_string_bytes` long.
fn read_text(
    decoder: &mut Decoder<&[u8]>,
    budget: &Budget<'_>,
    len: Option<usize>,
) -> Result<String> {
    let offset = decoder.offset();
    if let Some(len) = len {
        budget.check_string(len)?;
    }
    let bad = |_| malformed(offset, "invalid or truncated text string");
    let mut text = String::new();
    let mut buffer = [0u8; 4096];
    let mut segments = decoder.text(len);
    while let Some(mut segment) = segments.pull().map_err(bad)? {
        while let Some(chunk) = segment.pull(&mut buffer).map_err(bad)? {
            budget.check_string(text.len() + chunk.len())?;
            text.push_str(chunk);
        }
    }
    Ok(text)
}
