//! The crate's one error type, and the Prometheus error type each variant answers as.

/// Prometheus' `errorType` of an answer (the HTTP layer picks the status from it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    /// `bad_data` (400): the query or a parameter is invalid, unsupported or over a limit of
    /// its shape.
    BadData,
    /// `execution` (422): the query is valid but costs more than the server allows, or the
    /// data cannot answer it exactly.
    Execution,
}

impl ErrorType {
    /// The name Prometheus gives it in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
        }
    }
}

/// Why a query or a request parameter is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text is not PromQL (or not a valid parameter): fix the syntax at the position given.
    #[error("{0}")]
    Parse(String),
    /// Valid PromQL that Thermostat does not evaluate; the message names the construct.
    /// `docs/prometheus.md` lists what is supported.
    #[error("unsupported PromQL: {0} is not supported by Thermostat's query API")]
    Unsupported(String),
    /// The query breaks a bound of its shape (length, nesting, regex size, points per
    /// series); the message names the limit.
    #[error("{0}")]
    Limit(String),
    /// The query would cost more than allowed (series, samples): narrow the selectors, use a
    /// shorter range or a coarser step.
    #[error("{0}")]
    TooCostly(String),
    /// The stored data cannot answer the query exactly (several units in one series, several
    /// distributions merged).
    #[error("{0}")]
    Execution(String),
}

impl Error {
    /// The Prometheus error type this error answers as.
    pub fn error_type(&self) -> ErrorType {
        match self {
            Error::Parse(_) | Error::Unsupported(_) | Error::Limit(_) => ErrorType::BadData,
            Error::TooCostly(_) | Error::Execution(_) => ErrorType::Execution,
        }
    }
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
