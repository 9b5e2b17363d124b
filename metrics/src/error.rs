//! The metrics core's error: [`Error`].
//!
//! Each fallible function of the core returns the small value that says exactly what it
//! refused: [`ValidationError`] (a field and the rule it broke, built by the ingest adapter's
//! validator once per refused request, so the hot path allocates nothing for data that
//! passes), [`QueryError`] (a query field and its rule), [`QueryRefused`] (the query gate's
//! refusal) and [`TimeError`] (a time that cannot be read). Callers build and inspect these
//! values (they name the field in their own message, or choose a status by the variant), so
//! they stay as the functions' return types. [`Error`] is the crate's one error type: each of
//! them converts into it with `?`, and it shows their message unchanged.

use crate::store::{QueryError, QueryRefused};
use crate::time::TimeError;
use crate::validate::ValidationError;

/// `Result` with the metrics core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the metrics core refused something. Each variant carries, and shows unchanged, the
/// value the refusing function returns.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A datum or request field broke an ingest rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A statistics query cannot be answered.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A statistics query was not admitted (too costly, or every turn is taken).
    #[error(transparent)]
    QueryRefused(#[from] QueryRefused),
    /// A time cannot be read or is out of range.
    #[error(transparent)]
    Time(#[from] TimeError),
}

/// An error and its sources, `: `-separated (as `anyhow`'s `{:#}` prints a chain), for logs
/// and error bodies: the one printer of the crates that report an error with its causes.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        text.push_str(": ");
        text.push_str(&e.to_string());
        next = e.source();
    }
    text
}
