//! Reading typed parameters out of a [`Value`] map, naming each by its AWS Query path
//! (`MetricData.member.1.Value`) in errors, as CloudWatch does in every protocol.

use std::collections::BTreeMap;

use jiff::civil::DateTime;
use thermostat_metrics::Timestamp;
use thermostat_metrics::quote::quote;

use crate::error::{Error, Result};
use crate::value::Value;

/// One structure of a request: its members and its path.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fields<'a> {
    map: &'a BTreeMap<String, Value>,
    /// The path of this structure followed by `.`, or empty at the top.
    prefix: &'a str,
    /// Whether leaves are text to parse (AWS Query).
    textual: bool,
}

/// The error for a value of the wrong type or out of range.
pub(crate) fn invalid(value: &str, path: &str) -> Error {
    Error::InvalidParameterValue(format!(
        "The value {} for parameter {path} is invalid.",
        quote(value)
    ))
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        other => format!("({})", other.kind()),
    }
}

/// An owned path plus the structure under it.
#[derive(Debug)]
pub(crate) struct Item<'a> {
    pub(crate) path: String,
    pub(crate) value: &'a Value,
}

impl<'a> Fields<'a> {
    /// The top-level structure.
    pub(crate) fn root(value: &'a Value, textual: bool) -> Result<Self> {
        match value {
            Value::Map(map) => Ok(Fields {
                map,
                prefix: "",
                textual,
            }),
            other => Err(Error::Malformed(format!(
                "the request must be a structure, not a {}",
                other.kind()
            ))),
        }
    }

    pub(crate) fn path(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(value) => Some(value),
        }
    }

    fn required<T>(&self, name: &str, found: Option<T>) -> Result<T> {
        found.ok_or_else(|| Error::MissingParameter(self.path(name)))
    }

    /// Whether the member `name` is present (and not null).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// A string member, if present.
    pub(crate) fn string_opt(&self, name: &str) -> Result<Option<&'a str>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(invalid(&shown(other), &self.path(name))),
        }
    }

    /// A required string member.
    pub(crate) fn string(&self, name: &str) -> Result<&'a str> {
        let found = self.string_opt(name)?;
        self.required(name, found)
    }

    /// A string member with a length within `min..=max` characters, if present.
    pub(crate) fn sized_opt(&self, name: &str, min: usize, max: usize) -> Result<Option<&'a str>> {
        let Some(s) = self.string_opt(name)? else {
            return Ok(None);
        };
        let chars = s.chars().count();
        if chars < min || chars > max {
            return Err(Error::InvalidParameterValue(format!(
                "The parameter {} must be between {min} and {max} characters long, got {chars}.",
                self.path(name)
            )));
        }
        Ok(Some(s))
    }

    /// A required string member with a length within `min..=max` characters.
    pub(crate) fn sized(&self, name: &str, min: usize, max: usize) -> Result<&'a str> {
        let found = self.sized_opt(name, min, max)?;
        self.required(name, found)
    }

    /// A number member (a `Double`), if present.
    pub(crate) fn f64_opt(&self, name: &str) -> Result<Option<f64>> {
        let path = self.path(name);
        match self.get(name) {
            None => Ok(None),
            Some(value) => number(value, self.textual, &path).map(Some),
        }
    }

    /// A required number member.
    pub(crate) fn f64(&self, name: &str) -> Result<f64> {
        let found = self.f64_opt(name)?;
        self.required(name, found)
    }

    /// An integer member, if present.
    pub(crate) fn i64_opt(&self, name: &str) -> Result<Option<i64>> {
        let path = self.path(name);
        match self.get(name) {
            None => Ok(None),
            Some(Value::Int(i)) => Ok(Some(*i)),
            // An integral double (some encoders write every number as one).
            Some(Value::Float(f)) if !self.textual && f.fract() == 0.0 && f.abs() < 9.0e15 => {
                Ok(Some(*f as i64))
            }
            Some(Value::String(s)) if self.textual => {
                s.parse().map(Some).map_err(|_| invalid(s, &path))
            }
            Some(other) => Err(invalid(&shown(other), &path)),
        }
    }

    /// A boolean member, if present.
    pub(crate) fn bool_opt(&self, name: &str) -> Result<Option<bool>> {
        let path = self.path(name);
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if self.textual => match s.as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(invalid(s, &path)),
            },
            Some(other) => Err(invalid(&shown(other), &path)),
        }
    }

    /// A timestamp member, if present: CBOR tag 1, JSON epoch seconds, Query ISO 8601.
    pub(crate) fn timestamp_opt(&self, name: &str) -> Result<Option<Timestamp>> {
        let path = self.path(name);
        match self.get(name) {
            None => Ok(None),
            Some(Value::Timestamp(t)) => Ok(Some(*t)),
            Some(value @ (Value::Int(_) | Value::Float(_))) if !self.textual => {
                let seconds = number(value, false, &path)?;
                crate::cbor::epoch_seconds(seconds)
                    .map(Some)
                    .ok_or_else(|| invalid(&shown(value), &path))
            }
            Some(Value::String(s)) if self.textual => {
                iso8601(s).map(Some).ok_or_else(|| invalid(s, &path))
            }
            Some(other) => Err(invalid(&shown(other), &path)),
        }
    }

    /// A required timestamp member.
    pub(crate) fn timestamp(&self, name: &str) -> Result<Timestamp> {
        let found = self.timestamp_opt(name)?;
        self.required(name, found)
    }

    /// A list member's items with their paths (`X.member.N`), if present; at most `max`.
    pub(crate) fn list_opt(&self, name: &str, max: usize) -> Result<Option<Vec<Item<'a>>>> {
        let path = self.path(name);
        let items: &'a [Value] = match self.get(name) {
            None => return Ok(None),
            Some(Value::List(items)) => items,
            // AWS Query sends an empty list as `X=`.
            Some(Value::String(s)) if self.textual && s.is_empty() => &[],
            Some(other) => {
                return Err(Error::InvalidParameterValue(format!(
                    "The parameter {path} must be a list, not a {}.",
                    other.kind()
                )));
            }
        };
        if items.len() > max {
            return Err(Error::InvalidParameterValue(format!(
                "The collection {path} must not have a size greater than {max}."
            )));
        }
        Ok(Some(
            items
                .iter()
                .enumerate()
                .map(|(i, value)| Item {
                    path: format!("{path}.member.{}", i + 1),
                    value,
                })
                .collect(),
        ))
    }

    /// A list member of strings, if present; at most `max`.
    pub(crate) fn strings_opt(&self, name: &str, max: usize) -> Result<Option<Vec<&'a str>>> {
        let Some(items) = self.list_opt(name, max)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|item| match item.value {
                Value::String(s) => Ok(s.as_str()),
                other => Err(invalid(&shown(other), &item.path)),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// A list member of numbers, if present; at most `max`.
    pub(crate) fn numbers_opt(&self, name: &str, max: usize) -> Result<Option<Vec<f64>>> {
        let Some(items) = self.list_opt(name, max)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|item| number(item.value, self.textual, &item.path))
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// A map member of strings, if present: at most `max` entries, keys of 1 to `key_max`
    /// characters, values of 1 to `value_max`.
    pub(crate) fn string_map_opt(
        &self,
        name: &str,
        max: usize,
        key_max: usize,
        value_max: usize,
    ) -> Result<Option<BTreeMap<String, String>>> {
        let path = self.path(name);
        let map = match self.get(name) {
            None => return Ok(None),
            Some(Value::Map(map)) => map,
            Some(Value::String(s)) if self.textual && s.is_empty() => {
                return Ok(Some(BTreeMap::new()));
            }
            Some(other) => {
                return Err(Error::InvalidParameterValue(format!(
                    "The parameter {path} must be a map, not a {}.",
                    other.kind()
                )));
            }
        };
        if map.len() > max {
            return Err(Error::InvalidParameterValue(format!(
                "The map {path} must not have more than {max} entries."
            )));
        }
        let mut out = BTreeMap::new();
        for (key, value) in map {
            let Value::String(value) = value else {
                return Err(invalid(&shown(value), &format!("{path}.{key}")));
            };
            let (key_chars, value_chars) = (key.chars().count(), value.chars().count());
            if !(1..=key_max).contains(&key_chars) || !(1..=value_max).contains(&value_chars) {
                return Err(Error::InvalidParameterValue(format!(
                    "The entry {} of {path} must have a key of 1 to {key_max} and a value of 1 to {value_max} characters.",
                    quote(key)
                )));
            }
            out.insert(key.clone(), value.clone());
        }
        Ok(Some(out))
    }

    /// A structure member, if present, with the path prefix its members take.
    pub(crate) fn struct_opt(&self, name: &str) -> Result<Option<(String, &'a Value)>> {
        match self.get(name) {
            None => Ok(None),
            Some(value @ Value::Map(_)) => Ok(Some((format!("{}.", self.path(name)), value))),
            Some(other) => Err(Error::InvalidParameterValue(format!(
                "The parameter {} must be a structure, not a {}.",
                self.path(name),
                other.kind()
            ))),
        }
    }

    /// Reads the structure `value` (from [`Fields::struct_opt`] or an [`Item`]) under
    /// `prefix` with `read`.
    pub(crate) fn with<T>(
        &self,
        value: &'a Value,
        prefix: &str,
        read: impl FnOnce(Fields<'_>) -> Result<T>,
    ) -> Result<T> {
        match value {
            Value::Map(map) => read(Fields {
                map,
                prefix,
                textual: self.textual,
            }),
            other => Err(Error::InvalidParameterValue(format!(
                "The parameter {} must be a structure, not a {}.",
                prefix.trim_end_matches('.'),
                other.kind()
            ))),
        }
    }
}

/// A number: JSON and CBOR numbers, AWS Query text.
fn number(value: &Value, textual: bool, path: &str) -> Result<f64> {
    match value {
        Value::Int(i) if !textual => Ok(*i as f64),
        Value::Float(f) if !textual => Ok(*f),
        Value::String(s) if textual => s.trim().parse().map_err(|_| invalid(s, path)),
        other => Err(invalid(&shown(other), path)),
    }
}

/// An ISO 8601 / RFC 3339 time; without an offset it is UTC, as CloudWatch reads it.
fn iso8601(text: &str) -> Option<Timestamp> {
    let timestamp = match text.parse::<jiff::Timestamp>() {
        Ok(t) => t,
        Err(_) => text
            .parse::<DateTime>()
            .ok()?
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()?
            .timestamp(),
    };
    let millis = timestamp.as_millisecond();
    (Timestamp::EARLIEST.as_millis()..=Timestamp::LATEST.as_millis())
        .contains(&millis)
        .then(|| Timestamp::from_millis(millis))
}
