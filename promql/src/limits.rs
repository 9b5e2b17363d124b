//! Every bound a query meets; each refusal names its limit (`docs/prometheus.md`).

/// Most bytes of query text.
pub const MAX_QUERY_BYTES: usize = 64 * 1024;
/// Most nodes (selectors, numbers, operators, calls, aggregations) of one query.
pub const MAX_NODES: usize = 1_000;
/// Deepest nesting of one query's expression tree (parentheses, calls, operators).
pub const MAX_DEPTH: usize = 100;
/// Most bytes of one regular expression of a label matcher.
pub const MAX_REGEX_BYTES: usize = 4 * 1024;
/// Most bytes one compiled regular expression (and each of its lazy DFAs) may take.
pub const MAX_REGEX_COMPILED_BYTES: usize = 1 << 20;
/// Most series one selector may match.
pub const MAX_SERIES_PER_SELECTOR: usize = 10_000;
/// Most series all the selectors of one query may match together.
pub const MAX_SERIES_PER_QUERY: usize = 20_000;
/// Most points per series of a range query (Prometheus' own limit).
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;
/// Most samples (series × evaluation steps) one query may hold at once.
pub const MAX_SAMPLES: u64 = 5_000_000;
/// How far back an instant selector looks for a value (Prometheus' default; a period longer
/// than it is the look-back instead).
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;
/// Most series one `/api/v1/series` answer lists, and most names or values one label answer
/// lists; more are cut with a warning.
pub const MAX_LISTED: usize = 10_000;
