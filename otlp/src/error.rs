//! The crate's one error: a request that cannot be decoded, or breaks a structural limit.
//!
//! Points that break a rule are not errors: the mapping rejects them one by one
//! ([`crate::Rejection`]) and keeps the rest, as OTLP's partial success says.

use std::fmt;

/// What kind of problem refused a request: the edge maps it to a status once
/// (`TooLarge`: gRPC `RESOURCE_EXHAUSTED` / HTTP 413; the others `INVALID_ARGUMENT` / 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecodeErrorKind {
    /// The body, or its decompressed form, is larger than allowed.
    TooLarge,
    /// The body is not valid gzip.
    Gzip,
    /// The body is not a protobuf `ExportMetricsServiceRequest`.
    Protobuf,
    /// The body is not an OTLP JSON `ExportMetricsServiceRequest`.
    Json,
    /// The request decoded but breaks a limit of [`crate::limits`].
    Limit,
}

impl DecodeErrorKind {
    /// A short, stable name (for a telemetry label): `too_large`, `gzip`, `protobuf`,
    /// `json`, `limit`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DecodeErrorKind::TooLarge => "too_large",
            DecodeErrorKind::Gzip => "gzip",
            DecodeErrorKind::Protobuf => "protobuf",
            DecodeErrorKind::Json => "json",
            DecodeErrorKind::Limit => "limit",
        }
    }
}

/// A refused request: the field (a path such as
/// `resource_metrics[0].scope_metrics[2].metrics[1].gauge.data_points`, or `body`) and the
/// rule it broke, phrased as what it must be with what was found. Prints as `field: rule`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct DecodeError {
    /// What kind of problem it is.
    pub kind: DecodeErrorKind,
    /// Path of the offending field (`body` for the request as a whole).
    pub field: String,
    /// The rule broken.
    pub rule: String,
}

impl DecodeError {
    /// An error of `kind` for `field`.
    pub fn new(kind: DecodeErrorKind, field: impl Into<String>, rule: impl Into<String>) -> Self {
        DecodeError {
            kind,
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

/// `Result` with [`DecodeError`].
pub type Result<T, E = DecodeError> = std::result::Result<T, E>;
