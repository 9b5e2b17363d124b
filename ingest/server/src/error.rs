//! The ingest adapter's errors, mapped once to gRPC statuses.

use thermostat_metrics::telemetry::RejectReason;
use thermostat_metrics::validate::ValidationError;

/// Why an ingest or query request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request broke a validation rule; nothing of it was stored.
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    /// The request's bytes are not a `PutMetricDataRequest`; nothing of it was stored.
    #[error("{0}")]
    Malformed(String),
    /// The server has no capacity right now; nothing of the request was stored. Retry with backoff.
    #[error(
        "the server is overloaded: {0}; nothing of this request was stored, retry with backoff"
    )]
    Overloaded(String),
    /// The request would create series beyond a limit; nothing of it was stored.
    #[error("{0}")]
    SeriesLimit(String),
    /// The request could not be made durable (e.g. the disk is full); nothing of it was stored.
    #[error("{0}; nothing of this request was stored, retry later")]
    Persist(String),
    /// The server is shutting down; nothing of the request was stored.
    #[error("the server is shutting down; nothing of this request was stored")]
    ShuttingDown,
}

impl Error {
    /// The reject reason counted in telemetry.
    pub fn reason(&self) -> RejectReason {
        match self {
            Error::Invalid(_) | Error::Malformed(_) => RejectReason::invalid_datum,
            Error::Overloaded(_) => RejectReason::overloaded,
            Error::ShuttingDown => RejectReason::shutting_down,
            Error::Persist(_) => RejectReason::persist_failed,
            Error::SeriesLimit(_) => RejectReason::series_limit,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        match &e {
            Error::Invalid(_) | Error::Malformed(_) => {
                tonic::Status::invalid_argument(e.to_string())
            }
            Error::Overloaded(_) | Error::SeriesLimit(_) => {
                tonic::Status::resource_exhausted(e.to_string())
            }
            Error::ShuttingDown | Error::Persist(_) => tonic::Status::unavailable(e.to_string()),
        }
    }
}
