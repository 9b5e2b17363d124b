//! Attribute values as Thermostat sees them: a string as it is, any other value as its JSON
//! text, rendered with a bound on depth and length so that no input makes it recurse or
//! allocate without limit.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};

use crate::limits::MAX_ANY_VALUE_DEPTH;

/// The value of the attribute `key` in `attributes`, if present (the first one, should a
/// sender repeat a key).
pub(crate) fn find<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a KeyValue> {
    attributes.iter().find(|kv| kv.key == key)
}

/// Why a value could not be rendered; [`RenderError::rule`] phrases it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RenderError {
    /// Nested deeper than [`MAX_ANY_VALUE_DEPTH`].
    TooDeep,
    /// Longer than the budget, in bytes.
    TooLong(usize),
    /// A `string_value_strindex`, which only profiles' dictionaries resolve.
    Strindex,
}

impl RenderError {
    /// The rule broken, as an error message's tail.
    pub(crate) fn rule(self) -> String {
        match self {
            RenderError::TooDeep => format!(
                "must be nested at most {MAX_ANY_VALUE_DEPTH} deep (array_value and kvlist_value inside each other)"
            ),
            RenderError::TooLong(max) => {
                format!("must be 1 to {max} characters as JSON text (got more than {max})")
            }
            RenderError::Strindex => {
                "must not be a string_value_strindex (only profiles have a string table)".into()
            }
        }
    }
}

/// The text of a value: a string as it is; any other value as its JSON text (`true`, `42`,
/// `1.5`, `[1,"a"]`, `{"k":"v"}`, bytes as a base64 JSON string, an empty value as `null`,
/// non-finite doubles as `NaN`, `Infinity`, `-Infinity`). At most `max_bytes` bytes.
///
/// # Errors
/// Deeper than [`MAX_ANY_VALUE_DEPTH`], longer than `max_bytes`, or a `string_value_strindex`.
pub(crate) fn render(value: Option<&AnyValue>, max_bytes: usize) -> Result<String, RenderError> {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => {
            if s.len() > max_bytes {
                return Err(RenderError::TooLong(max_bytes));
            }
            Ok(s.clone())
        }
        other => {
            let mut out = String::new();
            write_json(&mut out, other, 1, max_bytes)?;
            Ok(out)
        }
    }
}

fn push(out: &mut String, text: &str, max_bytes: usize) -> Result<(), RenderError> {
    if out.len() + text.len() > max_bytes {
        return Err(RenderError::TooLong(max_bytes));
    }
    out.push_str(text);
    Ok(())
}

fn write_json(
    out: &mut String,
    value: Option<&Value>,
    depth: usize,
    max_bytes: usize,
) -> Result<(), RenderError> {
    if depth > MAX_ANY_VALUE_DEPTH {
        return Err(RenderError::TooDeep);
    }
    match value {
        None => push(out, "null", max_bytes),
        Some(Value::StringValue(s)) => write_string(out, s, max_bytes),
        Some(Value::BoolValue(b)) => push(out, if *b { "true" } else { "false" }, max_bytes),
        Some(Value::IntValue(i)) => push(out, &i.to_string(), max_bytes),
        Some(Value::DoubleValue(d)) => push(out, &double_text(*d), max_bytes),
        Some(Value::BytesValue(b)) => {
            if b.len() / 3 * 4 > max_bytes {
                return Err(RenderError::TooLong(max_bytes));
            }
            push(out, &format!("\"{}\"", base64(b)), max_bytes)
        }
        Some(Value::StringValueStrindex(_)) => Err(RenderError::Strindex),
        Some(Value::ArrayValue(array)) => {
            push(out, "[", max_bytes)?;
            for (i, v) in array.values.iter().enumerate() {
                if i > 0 {
                    push(out, ",", max_bytes)?;
                }
                write_json(out, v.value.as_ref(), depth + 1, max_bytes)?;
            }
            push(out, "]", max_bytes)
        }
        Some(Value::KvlistValue(list)) => {
            push(out, "{", max_bytes)?;
            for (i, kv) in list.values.iter().enumerate() {
                if i > 0 {
                    push(out, ",", max_bytes)?;
                }
                write_string(out, &kv.key, max_bytes)?;
                push(out, ":", max_bytes)?;
                write_json(
                    out,
                    kv.value.as_ref().and_then(|v| v.value.as_ref()),
                    depth + 1,
                    max_bytes,
                )?;
            }
            push(out, "}", max_bytes)
        }
    }
}

/// A double as JSON text: serde_json's shortest round-trip form (`1.0`, `1e21`), and the
/// names protobuf's JSON mapping uses for the values JSON has none for.
fn double_text(d: f64) -> String {
    if d.is_nan() {
        "NaN".into()
    } else if d.is_infinite() {
        if d > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        serde_json::Value::from(d).to_string()
    }
}

fn write_string(out: &mut String, s: &str, max_bytes: usize) -> Result<(), RenderError> {
    // The escaped form is at least as long as the string and two quotes.
    if out.len() + s.len() + 2 > max_bytes {
        return Err(RenderError::TooLong(max_bytes));
    }
    let quoted = serde_json::Value::from(s).to_string();
    push(out, &quoted, max_bytes)
}

/// Standard base64 with padding, as protobuf's JSON mapping writes bytes.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Feeds a canonical form of `attributes` (sorted by key, each value rendered without a
/// length bound but with the depth bound) to `hasher`: two attribute lists that differ only
/// in order hash alike.
pub(crate) fn hash_attributes(hasher: &mut xxhash_rust::xxh3::Xxh3, attributes: &[KeyValue]) {
    let mut sorted: Vec<&KeyValue> = attributes.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    for kv in sorted {
        let text = match render(kv.value.as_ref(), usize::MAX) {
            Ok(text) => text,
            Err(_) => "\u{0}unrenderable".to_owned(),
        };
        // Type-tagged, so that the string "1" and the integer 1 differ.
        let tag: u8 = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(_)) => 1,
            _ => 2,
        };
        for part in [kv.key.as_bytes(), text.as_bytes()] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        hasher.update(&[tag]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    fn v(value: Value) -> AnyValue {
        AnyValue { value: Some(value) }
    }

    #[test]
    fn strings_are_as_they_are_and_other_values_are_json_text() {
        let r = |value: Value| render(Some(&v(value)), 1024).unwrap();
        assert_eq!(r(Value::StringValue("a \"b\"".into())), "a \"b\"");
        assert_eq!(r(Value::BoolValue(true)), "true");
        assert_eq!(r(Value::IntValue(-42)), "-42");
        assert_eq!(r(Value::DoubleValue(1.5)), "1.5");
        assert_eq!(r(Value::DoubleValue(2.0)), "2.0");
        assert_eq!(r(Value::DoubleValue(f64::NAN)), "NaN");
        assert_eq!(r(Value::DoubleValue(f64::NEG_INFINITY)), "-Infinity");
        assert_eq!(r(Value::BytesValue(vec![1, 2, 3, 4])), "\"AQIDBA==\"");
        assert_eq!(
            r(Value::ArrayValue(ArrayValue {
                values: vec![v(Value::IntValue(1)), v(Value::StringValue("x\"y".into()))]
            })),
            r#"[1,"x\"y"]"#
        );
        assert_eq!(
            r(Value::KvlistValue(KeyValueList {
                values: vec![
                    KeyValue {
                        key: "b".into(),
                        value: Some(v(Value::BoolValue(false))),
                        key_strindex: 0,
                    },
                    KeyValue {
                        key: "a".into(),
                        value: None,
                        key_strindex: 0,
                    },
                ]
            })),
            r#"{"b":false,"a":null}"#,
            "the sender's order is kept"
        );
        assert_eq!(render(None, 10).unwrap(), "null");
        assert_eq!(render(Some(&AnyValue { value: None }), 10).unwrap(), "null");
    }

    #[test]
    fn base64_pads_like_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn depth_and_length_are_bounded() {
        let mut value = v(Value::IntValue(1));
        for _ in 0..MAX_ANY_VALUE_DEPTH - 1 {
            value = v(Value::ArrayValue(ArrayValue {
                values: vec![value],
            }));
        }
        assert!(render(Some(&value), 1024).is_ok());
        let deeper = v(Value::ArrayValue(ArrayValue {
            values: vec![value],
        }));
        assert_eq!(render(Some(&deeper), 1024), Err(RenderError::TooDeep));
        let long = v(Value::StringValue("x".repeat(2000)));
        assert_eq!(render(Some(&long), 1024), Err(RenderError::TooLong(1024)));
        let array = v(Value::ArrayValue(ArrayValue {
            values: vec![v(Value::IntValue(123_456_789)); 200],
        }));
        assert_eq!(render(Some(&array), 1024), Err(RenderError::TooLong(1024)));
        assert_eq!(
            render(Some(&v(Value::StringValueStrindex(3))), 1024),
            Err(RenderError::Strindex)
        );
    }
}
