//! The PromQL subset of Thermostat's Prometheus-compatible query API (issue 20): parsing
//! into a checked plan, bounds, and evaluation over the store's statistics.
//!
//! # What this crate owns
//! - The query language: a lexer and a recursive-descent parser ([`parse::parse`]) for the
//!   PromQL Thermostat evaluates, which also recognises the rest of PromQL to refuse it by
//!   name ([`Error::Unsupported`]); a checker that turns the tree into a [`Plan`] (types,
//!   compiled matchers, the `stat` and `unit` pseudo-labels).
//! - The data model: a series (namespace, metric name, dimensions) has the labels
//!   `__name__`, `namespace` and one per dimension ([`labels_of`]); `stat` chooses the
//!   statistic (`Average` by default) and the step, rounded up to a period CloudWatch allows
//!   ([`params::round_period`]), the period.
//! - Evaluation ([`prepare`], [`Prepared::evaluate`]) as a function of the plan, a [`Source`]
//!   (the port to the data; [`StoreSource`] over the store) and a [`Range`]: no IO but the
//!   source's, no wall clock (`now` is the source's parameter).
//! - Prometheus' parameter formats and number rendering ([`params`]), and every bound a
//!   query meets ([`limits`]).
//!
//! # Why a parser of our own
//! `promql-parser` (GreptimeDB's, 0.11) was the candidate and parses all of PromQL, but:
//! its `parse` drops the LR parser's error details and answers every syntax error with
//! "invalid promql query"; it compiles regex matchers itself with `Regex::new` (no size
//! limit of ours, before we could bound them); its tree is recursive `Box`es with no depth
//! bound (a 10,000-deep `((…))` is dropped recursively on a 2 MiB worker stack); and it pulls
//! in about 60 crates (an LR parser generator at build time, chrono, lazy_static) for a
//! subset that needs about 600 lines. The parser here bounds length, nesting and node count
//! before building anything deep, names the byte offset of each syntax error, and names each
//! unsupported construct.
//!
//! # Semantics that differ from Prometheus
//! - Counters are stored as per-interval increases: `increase(x[r])` at `t` is the `Sum` of
//!   the stored periods that end in `(t − r, t]` and `rate` that divided by `r` in seconds,
//!   with no extrapolation and no reset handling (the increases are already reset-free).
//!   `r` is rounded up to a period CloudWatch allows.
//! - A period `[b, b + P)` is a sample stamped `b + P` (when it is complete): an instant
//!   selector at `t` reads the newest period ending at or before `t` within the look-back of
//!   5 minutes (or `P`, when longer).
//! - `histogram_quantile(φ, rate(x_bucket[r]))` reads the percentile `p(100φ)` of series
//!   `x`'s distribution over the `r` ending at the last minute boundary at or before `t`.
//!
//! # Invariants
//! - No input panics the parser or the evaluator, and none makes it recurse deeper than
//!   [`limits::MAX_DEPTH`] or allocate beyond the bounds in [`limits`].
//! - A query is answered exactly or refused: what the store cannot answer exactly (merged
//!   distributions of several series, several units in one period) is an error.
//!
//! # Layout
//! `lex.rs` (tokens), `parse.rs` (syntax tree; tests in `parse/tests.rs`), `plan.rs`
//! (checked plan, matchers), `eval.rs` (resolution, pricing, evaluation; tests in
//! `eval/tests.rs`), `source.rs` (the [`Source`] port and [`StoreSource`]), `params.rs`,
//! `limits.rs`, `error.rs`.

#![warn(missing_docs)]

mod error;
mod eval;
mod lex;
pub mod limits;
pub mod params;
pub mod parse;
mod plan;
mod source;

pub use error::{Error, ErrorType, Result};
pub use eval::{
    Evaluation, Labels, Prepared, Range, Series, Value, label_names, label_values, labels_of,
    matching_series, prepare,
};
pub use plan::{METRIC_NAME, Matcher, NAMESPACE, Plan, Reading, STAT, Selector, UNIT, label_value};
pub use source::{Bucket, Scope, Source, StoreSource};

/// Parses a `match[]` series selector (`x{a="b"}` or `{namespace="N"}`) for the metadata
/// endpoints.
///
/// # Errors
/// As [`Plan::try_new`]; anything but a vector selector is [`Error::Parse`].
pub fn parse_selector(text: &str) -> Result<Selector> {
    let plan = Plan::try_new(text)?;
    match (&plan.root, plan.selectors.as_slice()) {
        (plan::Node::Select { grouping: None, .. }, [(sel, Reading::Instant)]) => Ok(sel.clone()),
        _ => Err(Error::Parse(format!(
            "invalid parameter \"match[]\": {:?} is not a series selector",
            text.chars().take(64).collect::<String>()
        ))),
    }
}
