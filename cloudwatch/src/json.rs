//! AWS JSON 1.0 bodies into a [`Value`], within [`Limits`], through serde_json with a seed that
//! counts depth, elements and lengths as it goes (so no unbounded tree is ever built).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::budget::Budget;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::value::Value;

/// Decodes a JSON body. An empty body is an empty map, as Smithy servers read it.
///
/// The depth bound is ours ([`Limits::max_depth`]) and must stay below serde_json's own
/// recursion limit (128), which would otherwise answer first as a parse error.
///
/// # Errors
///
/// [`Error::TooLarge`] naming the bound crossed, [`Error::Malformed`] for invalid JSON.
pub fn decode(body: &[u8], limits: &Limits) -> Result<Value> {
    let mut budget = Budget::new(limits);
    budget.check_body(body.len())?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Map(BTreeMap::new()));
    }
    let mut hit = None;
    let mut de = serde_json::Deserializer::from_slice(body);
    let seed = Seed {
        budget: &mut budget,
        hit: &mut hit,
        depth: 0,
    };
    let parsed = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match (parsed, hit) {
        (_, Some(error)) => Err(error),
        (Ok(value), None) => Ok(value),
        (Err(e), None) => Err(Error::Malformed(e.to_string())),
    }
}

/// Builds one value; `depth` is the depth of the list or map it is in (0 at the top).
struct Seed<'a, 'l> {
    budget: &'a mut Budget<'l>,
    /// The bound crossed, kept because serde's errors carry only text.
    hit: &'a mut Option<Error>,
    depth: usize,
}

impl Seed<'_, '_> {
    fn fail<E: de::Error>(&mut self, error: Error) -> E {
        let text = error.to_string();
        *self.hit = Some(error);
        E::custom(text)
    }

    fn check<E: de::Error>(&mut self, checked: Result<()>) -> Result<(), E> {
        checked.map_err(|e| self.fail(e))
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_, '_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(mut self, v: bool) -> Result<Value, E> {
        let taken = self.budget.take_element();
        self.check(taken)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(mut self, v: i64) -> Result<Value, E> {
        let taken = self.budget.take_element();
        self.check(taken)?;
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(mut self, v: u64) -> Result<Value, E> {
        let taken = self.budget.take_element();
        self.check(taken)?;
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }

    fn visit_f64<E: de::Error>(mut self, v: f64) -> Result<Value, E> {
        let taken = self.budget.take_element();
        self.check(taken)?;
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(mut self, v: &str) -> Result<Value, E> {
        let taken = self.budget.take_element();
        self.check(taken)?;
        let checked = self.budget.check_string(v.len());
        self.check(checked)?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_unit<E: de::Error>(mut self) -> Result<Value, E> {
        let taken = self.budget.take_element();
        self.check(taken)?;
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        let taken = self.budget.take_element();
        self.check(taken)?;
        let depth = self.depth + 1;
        let checked = self.budget.check_depth(depth);
        self.check(checked)?;
        let mut items = Vec::new();
        loop {
            let seed = Seed {
                budget: &mut *self.budget,
                hit: &mut *self.hit,
                depth,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => break,
            }
            let checked = self.budget.check_len(items.len());
            self.check(checked)?;
        }
        Ok(Value::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        let taken = self.budget.take_element();
        self.check(taken)?;
        let depth = self.depth + 1;
        let checked = self.budget.check_depth(depth);
        self.check(checked)?;
        let mut entries = BTreeMap::new();
        loop {
            let key_seed = KeySeed {
                max: self.budget.limits.max_string_bytes,
            };
            let Some(key) = map.next_key_seed(key_seed).inspect_err(|e| {
                if self.hit.is_none() && e.to_string().starts_with(KEY_TOO_LONG) {
                    *self.hit = Some(self.budget.exceeded(crate::limits::Limit::StringBytes));
                }
            })?
            else {
                break;
            };
            let seed = Seed {
                budget: &mut *self.budget,
                hit: &mut *self.hit,
                depth,
            };
            let value = map.next_value_seed(seed)?;
            if entries.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate key {}",
                    thermostat_metrics::quote::quote(&key)
                )));
            }
            entries.insert(key, value);
            let checked = self.budget.check_len(entries.len());
            self.check(checked)?;
        }
        Ok(Value::Map(entries))
    }
}

const KEY_TOO_LONG: &str = "map key longer than max_string_bytes";

/// A map key, refused when longer than `max` bytes.
struct KeySeed {
    max: usize,
}

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = String;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        if v.len() > self.max {
            return Err(E::custom(KEY_TOO_LONG));
        }
        Ok(v.to_owned())
    }
}
