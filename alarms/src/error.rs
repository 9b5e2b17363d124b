//! Errors of this crate: configuration errors with positions ([`ConfigError`],
//! [`ConfigErrors`], defined by `thermostat-yaml`, the configuration layer every section
//! shares) and the crate's [`Error`] enum for the other fallible operations.

pub use thermostat_yaml::{ConfigError, ConfigErrors, Pos, Rule};

/// Errors of the crate's fallible operations other than configuration loading (whose
/// [`ConfigErrors`] list every problem with its position).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A back-test CSV line is malformed. Fix the line named; the header must be
    /// `timestamp,namespace,metric_name,dimensions,value`.
    #[error("line {line}: {field}: {message}")]
    Csv {
        /// 1-based line number.
        line: usize,
        /// The column at fault.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A time given to a back-test or test is not RFC 3339 or Unix time.
    #[error("{field}: must be an RFC 3339 time or a Unix timestamp (got {value:?})")]
    Time {
        /// The argument or field at fault.
        field: String,
        /// The value given.
        value: String,
    },
    /// A replay's range is refused: a time outside years 0000 to 9999, `to` before `from`,
    /// or longer than [`crate::backtest::MAX_REPLAY_DAYS`].
    #[error("{field}: {message}")]
    Range {
        /// `from` or `to`.
        field: String,
        /// The rule broken, with the values.
        message: String,
    },
    /// A composite alarm's rule does not parse ([`crate::rule::parse`]): what and where.
    #[error("{message} (at character {offset} of the rule)")]
    Rule {
        /// 0-based offset in characters.
        offset: usize,
        /// What is wrong.
        message: String,
    },
    /// The metric store refused a query (the range holds too many periods). Shorten
    /// `evaluation_range` or use a longer period.
    #[error("alarm {alarm}: {message}")]
    Query {
        /// The alarm whose query failed.
        alarm: String,
        /// The store's message.
        message: String,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
