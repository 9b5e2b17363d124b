//! The bounds an OTLP request meets, as named constants (also listed in `docs/otlp.md`).
//!
//! The decoders ([`crate::decode_protobuf`], [`crate::decode_json`]) check the structural ones
//! once, right after decoding, so that the mapping walks a request of bounded shape; the
//! mapping checks the rest per point.
//! Two further bounds come from the decoders themselves and lie above Thermostat's own:
//! prost refuses messages nested more than 100 deep (a point's attribute value nested 48 deep
//! in `array_value`s) and `serde_json` refuses JSON nested more than 128 deep (the same value
//! nested 40 deep), so a sender meets [`MAX_ANY_VALUE_DEPTH`] first.

/// Largest request body, in bytes, after gzip is undone: 16 MiB, as for native pushes.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Most `resource_metrics` in one request.
pub const MAX_RESOURCE_METRICS: usize = 1_000;
/// Most `scope_metrics` in one request, over all its resources.
pub const MAX_SCOPE_METRICS: usize = 10_000;
/// Most metrics in one request, over all its scopes.
pub const MAX_METRICS: usize = 65_536;
/// Most data points in one request, over all its metrics (a Collector's batch is 8,192 by
/// default).
pub const MAX_POINTS: usize = 65_536;
/// Most entries in one attribute list (resource, scope, point or metric metadata) and in one
/// `array_value` or `kvlist_value`.
pub const MAX_ATTRIBUTES: usize = 256;
/// Longest attribute key, in bytes.
pub const MAX_ATTRIBUTE_KEY_BYTES: usize = 1_024;
/// Longest string or bytes inside an attribute value, in bytes. A dimension value is further
/// limited to 1,024 characters (CloudWatch's rule), which the mapping checks per point.
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 16 * 1024;
/// Deepest nesting of attribute values: a scalar is 1 deep, an `array_value` or
/// `kvlist_value` holding scalars is 2 deep.
pub const MAX_ANY_VALUE_DEPTH: usize = 8;
/// Most entries in one `bucket_counts` (explicit histogram, or one range of an exponential
/// one) and in one `explicit_bounds` or `quantile_values`. The SDKs default to at most 160
/// exponential buckets a range.
pub const MAX_BUCKETS: usize = 1_024;
/// Longest metric name, in bytes, checked at decode time; CloudWatch's 255-character rule is
/// the mapping's (a rejected point).
pub const MAX_NAME_BYTES: usize = 1_024;
/// Longest unit, in bytes.
pub const MAX_UNIT_BYTES: usize = 1_024;
/// Smallest exponential histogram scale accepted: at -10 one bucket already spans every
/// finite double (base 2^1024).
pub const MIN_SCALE: i32 = -10;
/// Largest exponential histogram scale accepted: 20, the largest the OpenTelemetry SDKs use
/// (base 2^(2^-20), buckets about 6.6e-7 wide relatively).
pub const MAX_SCALE: i32 = 20;
/// Longest `partial_success.error_message`, in bytes.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 2_048;
