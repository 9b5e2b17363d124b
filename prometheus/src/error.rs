//! The crate's one error.

use std::fmt;

/// Why a request body could not be decoded: the field (a path such as
/// `timeseries[3].labels[0].name`, or `body`) and the rule it broke. The whole request is
/// invalid; a sender must not retry it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Where: `body`, `snappy`, `protobuf` or a field path.
    pub field: String,
    /// The rule broken, as a sentence fragment.
    pub rule: String,
}

impl DecodeError {
    /// An error at `field` breaking `rule`.
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        DecodeError {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.rule)
    }
}

impl std::error::Error for DecodeError {}
