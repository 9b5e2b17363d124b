//! The one value tree that every protocol's body is decoded into before typed extraction.

use std::collections::BTreeMap;

use thermostat_metrics::Timestamp;

/// A decoded request body (or part of one), protocol-neutral.
///
/// JSON and CBOR give typed scalars; AWS Query gives only [`Value::String`] leaves, which the
/// typed layer parses (it knows which protocol it reads).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// JSON `null`, CBOR null or undefined.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// A floating-point number (also an integer outside `i64`).
    Float(f64),
    /// A string.
    String(String),
    /// A point in time (CBOR tag 1). JSON's epoch seconds stay numbers and Query's ISO 8601
    /// stays a string until the typed layer reads them as timestamps.
    Timestamp(Timestamp),
    /// A list.
    List(Vec<Value>),
    /// A map or structure, keys unique.
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// The kind of value, as error messages name it.
    pub const fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "number",
            Value::String(_) => "string",
            Value::Timestamp(_) => "timestamp",
            Value::List(_) => "list",
            Value::Map(_) => "structure",
        }
    }
}
