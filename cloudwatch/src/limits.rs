//! The bounds every request body is decoded within, each with a name that errors carry.

use std::fmt;

/// Bounds on one request body and the value tree decoded from it.
///
/// The defaults fit CloudWatch's own quotas (1,000 metric data per `PutMetricData`, 150
/// values per datum, 500 queries per `GetMetricData`, 30 dimensions) with room to spare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest body, in bytes, as sent and again after gzip inflation.
    pub max_body_bytes: usize,
    /// Deepest nesting of lists and maps (the top-level map is depth 1).
    pub max_depth: usize,
    /// Most values in the whole tree (every scalar, list and map counts one).
    pub max_elements: usize,
    /// Longest string (a map key or a value), in bytes.
    pub max_string_bytes: usize,
    /// Most items in one list or entries in one map (AWS Query's `member.N` index included).
    pub max_list_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            max_depth: 32,
            max_elements: 500_000,
            max_string_bytes: 64 * 1024,
            max_list_len: 1000,
        }
    }
}

/// Which bound of [`Limits`] a body crossed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// [`Limits::max_body_bytes`].
    BodyBytes,
    /// [`Limits::max_depth`].
    Depth,
    /// [`Limits::max_elements`].
    Elements,
    /// [`Limits::max_string_bytes`].
    StringBytes,
    /// [`Limits::max_list_len`].
    ListLen,
}

impl Limit {
    /// The field's name in [`Limits`], as errors print it.
    pub const fn name(self) -> &'static str {
        match self {
            Limit::BodyBytes => "max_body_bytes",
            Limit::Depth => "max_depth",
            Limit::Elements => "max_elements",
            Limit::StringBytes => "max_string_bytes",
            Limit::ListLen => "max_list_len",
        }
    }

    /// The bound's value in `limits`.
    pub const fn value(self, limits: &Limits) -> usize {
        match self {
            Limit::BodyBytes => limits.max_body_bytes,
            Limit::Depth => limits.max_depth,
            Limit::Elements => limits.max_elements,
            Limit::StringBytes => limits.max_string_bytes,
            Limit::ListLen => limits.max_list_len,
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
