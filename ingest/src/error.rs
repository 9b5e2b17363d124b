//! The ingest adapter's one error type, mapped once to gRPC statuses.
//!
//! A variant either shows its source in its own message (`transparent`, or a message that
//! quotes it) or names the step that failed and carries the source as
//! [`std::error::Error::source`], never both: printed with its sources (`{:#}` through
//! `anyhow`), an error reads `cannot load the data directory: <file>: <what is wrong>`.
//!
//! [`Error`] is the crate's only exported error. The errors of its parts (`WalError`,
//! `AppendError` here, `PersistError` of the snapshots, `WireError` of the request reader)
//! are what its variants carry; they are `pub` only because a public variant holds them, and
//! the crate root does not export them: callers read them through [`Error`] (its message, its
//! source, and methods such as [`Error::append_timed_out`]).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use thermostat_metrics::store::QueryRefused;
use thermostat_metrics::telemetry::RejectReason;
use thermostat_metrics::validate::{ValidationError, quote};

use crate::persist::PersistError;
use crate::wire::WireError;

/// `Result` with the ingest adapter's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an ingest request, a query, an append, or opening, checkpointing or serving failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request broke a validation rule; nothing of it was stored. Fix the field named.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The request's bytes are not a `PutMetricDataRequest`; nothing of it was stored.
    #[error(transparent)]
    Malformed(#[from] WireError),
    /// An OTLP request that cannot be decoded or breaks a limit (`docs/otlp.md`); nothing of
    /// it was stored. Fix the field named.
    #[error("{0}; nothing of this request was stored")]
    Otlp(#[from] thermostat_otlp::DecodeError),
    /// A Prometheus remote-write request with a series or sample that breaks a rule (the
    /// message lists the first few: the series and the rule); nothing of it was stored. The
    /// remote-write specification says not to retry it.
    #[error("{0}; nothing of this request was stored")]
    RemoteWrite(String),
    /// The server has no capacity right now; nothing of the request was stored. Retry with
    /// backoff.
    #[error(
        "the server is overloaded: {0}; nothing of this request was stored, retry with backoff"
    )]
    Overloaded(Overload),
    /// The request would create series beyond a limit; nothing of it was stored. Send data for
    /// existing series only, or raise the limit.
    #[error(
        "the request would create {new_series} new series {limit}; existing series keep working: send data for existing series only, or raise the limit"
    )]
    SeriesLimit {
        /// New series the request would have created.
        new_series: usize,
        /// The limit it would break.
        limit: SeriesLimit,
    },
    /// The request could not be made durable (e.g. the disk is full); nothing of it was
    /// stored. Retry later.
    #[error("{0}; nothing of this request was stored, retry later")]
    Persist(AppendError),
    /// The server is shutting down; nothing of the request was stored.
    #[error("the server is shutting down; nothing of this request was stored")]
    ShuttingDown,
    /// In cluster mode, a read could not reach the node that owns the series now (a lease is
    /// moving, or the node does not answer): retry.
    #[error("{0}")]
    Unavailable(String),
    /// Samples Thermostat makes itself were not logged ([`crate::Ingest::append_observations_blocking`]).
    #[error(transparent)]
    Append(#[from] AppendError),
    /// A statistics query waited too long for its turn. Retry with backoff.
    #[error(transparent)]
    QueriesBusy(QueryRefused),
    /// A `StreamMetricData` stream sent no message for this long; it is closed and its slot
    /// freed. Open a new stream to send more.
    #[error(
        "the stream sent no message for {} s (--stream-idle-timeout-seconds): it is closed and its slot freed; open a new stream to send more",
        .0.as_secs()
    )]
    StreamIdle(Duration),
    /// A request of a stream after one that failed; it was not processed.
    #[error("not processed after an earlier failure")]
    AfterEarlierFailure,
    /// A snapshot could not be read or written (backups, restores).
    #[error(transparent)]
    Snapshot(#[from] PersistError),
    /// The write-ahead log could not be read (offline backups).
    #[error(transparent)]
    Log(#[from] WalError),
    /// Start-up could not load the snapshot. Fix or move the file named.
    #[error("cannot load the data directory")]
    LoadSnapshot(#[source] PersistError),
    /// Start-up could not replay the write-ahead log. Follow the advice in the source.
    #[error("cannot recover the write-ahead log")]
    RecoverLog(#[source] WalError),
    /// Start-up could not open the write-ahead log for writing.
    #[error("cannot open the write-ahead log")]
    OpenLog(#[source] WalError),
    /// A checkpoint could not write the snapshot; the log keeps everything.
    #[error("cannot write the snapshot")]
    WriteSnapshot(#[source] PersistError),
    /// A checkpoint could not delete the log segments its snapshot made unnecessary.
    #[error("cannot delete old log segments")]
    RemoveSegments(#[source] WalError),
    /// The gRPC server failed.
    #[error(transparent)]
    Serve(#[from] tonic::transport::Error),
    /// The reflection service's descriptors are broken (a build problem).
    #[error(transparent)]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The request carries no valid token (UNAUTHENTICATED).
    #[error(transparent)]
    Unauthenticated(#[from] thermostat_auth::Unauthenticated),
    /// The principal may not do this, or not in this namespace (PERMISSION_DENIED).
    #[error(transparent)]
    Denied(#[from] thermostat_auth::Denied),
    /// A task failed (a bug); `what` is all a client is told.
    #[error("{what}")]
    Internal {
        /// What failed, as shown to clients.
        what: &'static str,
        /// The panic.
        #[source]
        source: tokio::task::JoinError,
    },
}

/// What the server has no capacity for ([`Error::Overloaded`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overload {
    /// The write-ahead log's queue is full: the writer cannot keep up.
    LogQueueFull,
    /// `--max-in-flight-requests` unary pushes are being processed.
    RequestsInFlight,
    /// `--max-streams` streams are open.
    OpenStreams,
}

impl std::fmt::Display for Overload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Overload::LogQueueFull => "the write-ahead log queue is full",
            Overload::RequestsInFlight => "too many requests in flight",
            Overload::OpenStreams => "too many open streams",
        })
    }
}

/// The series limit a request would break ([`Error::SeriesLimit`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeriesLimit {
    /// `--max-series`.
    Total {
        /// The limit.
        max: usize,
    },
    /// `--max-series-per-namespace`.
    Namespace {
        /// The limit.
        max: usize,
        /// The request's namespace.
        namespace: Arc<str>,
    },
    /// `--max-series-bytes`.
    Bytes {
        /// The new series' estimated bytes.
        new_bytes: usize,
        /// The limit.
        max: usize,
        /// Bytes of series held (and reserved) before the request.
        held: usize,
    },
}

impl std::fmt::Display for SeriesLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SeriesLimit::Total { max } => {
                write!(f, "beyond the limit of {max} series (--max-series)")
            }
            SeriesLimit::Namespace { max, namespace } => write!(
                f,
                "beyond the limit of {max} series in namespace {} (--max-series-per-namespace)",
                quote(namespace)
            ),
            SeriesLimit::Bytes {
                new_bytes,
                max,
                held,
            } => write!(
                f,
                "of about {new_bytes} bytes beyond the limit of {max} bytes of series (--max-series-bytes; {held} bytes held)"
            ),
        }
    }
}

impl Error {
    /// Whether this is an append that got no answer within its timeout
    /// ([`crate::Ingest::append_observations_blocking`]): unlike the other append failures,
    /// the record is queued and may still be applied.
    pub fn append_timed_out(&self) -> bool {
        matches!(self, Error::Append(AppendError::TimedOut(_)))
    }

    /// The reject reason counted in telemetry, for the errors that refuse a push.
    pub(crate) fn reason(&self) -> Option<RejectReason> {
        Some(match self {
            Error::Invalid(_) | Error::Malformed(_) => RejectReason::invalid_datum,
            Error::Otlp(e) if e.kind == thermostat_otlp::DecodeErrorKind::TooLarge => {
                RejectReason::too_large
            }
            Error::Otlp(_) | Error::RemoteWrite(_) => RejectReason::invalid_datum,
            Error::Overloaded(_) | Error::Append(AppendError::Full) => RejectReason::overloaded,
            Error::ShuttingDown | Error::Append(AppendError::Closed) => RejectReason::shutting_down,
            Error::Persist(_) | Error::Append(_) => RejectReason::persist_failed,
            Error::SeriesLimit { .. } => RejectReason::series_limit,
            _ => return None,
        })
    }
}

/// The one place an ingest error becomes a gRPC status: client mistakes are
/// `INVALID_ARGUMENT`, missing capacity `RESOURCE_EXHAUSTED`, a server that cannot store
/// `UNAVAILABLE`, and internal failures `INTERNAL` with a generic message.
impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        use tonic::Status;
        match &error {
            Error::Invalid(_) | Error::Malformed(_) => Status::invalid_argument(error.to_string()),
            Error::Otlp(e) if e.kind == thermostat_otlp::DecodeErrorKind::TooLarge => {
                Status::resource_exhausted(error.to_string())
            }
            Error::Otlp(_) | Error::RemoteWrite(_) => Status::invalid_argument(error.to_string()),
            // Overload passes: a RetryInfo says so (OTLP clients retry RESOURCE_EXHAUSTED only
            // with one). A series limit does not pass by waiting: no RetryInfo.
            Error::Overloaded(_) | Error::QueriesBusy(_) | Error::Append(AppendError::Full) => {
                retry_later(tonic::Code::ResourceExhausted, error.to_string())
            }
            Error::SeriesLimit { .. } => Status::resource_exhausted(error.to_string()),
            Error::StreamIdle(_) => Status::deadline_exceeded(error.to_string()),
            Error::AfterEarlierFailure => Status::aborted(error.to_string()),
            Error::Append(AppendError::TimedOut(_)) => Status::deadline_exceeded(error.to_string()),
            Error::ShuttingDown | Error::Persist(_) | Error::Append(_) | Error::Unavailable(_) => {
                retry_later(tonic::Code::Unavailable, error.to_string())
            }
            Error::Internal { what, .. } => Status::internal(*what),
            Error::Unauthenticated(_) => Status::unauthenticated(error.to_string()),
            Error::Denied(_) => Status::permission_denied(error.to_string()),
            Error::Snapshot(_)
            | Error::Log(_)
            | Error::LoadSnapshot(_)
            | Error::RecoverLog(_)
            | Error::OpenLog(_)
            | Error::WriteSnapshot(_)
            | Error::RemoveSegments(_)
            | Error::Serve(_)
            | Error::Reflection(_) => Status::internal("internal error"),
        }
    }
}

/// How long a client should wait before retrying an overloaded or unavailable server.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A status with `google.rpc.RetryInfo` of [`RETRY_AFTER`] in its details.
fn retry_later(code: tonic::Code, message: String) -> tonic::Status {
    use tonic_types::{ErrorDetails, StatusExt as _};
    tonic::Status::with_error_details(
        code,
        message,
        ErrorDetails::with_retry_info(Some(RETRY_AFTER)),
    )
}

/// Log errors. Not exported: carried by [`Error`] ([`Error::Log`], [`Error::RecoverLog`],
/// [`Error::OpenLog`], [`Error::RemoveSegments`]).
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// The file system failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A segment of an unknown format.
    #[error(
        "{path}: write-ahead log format version {found} is not supported by this build (it reads versions {oldest} to {newest}); use the Thermostat version that wrote it"
    )]
    UnknownVersion {
        /// The segment.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// The oldest version this build reads.
        oldest: u32,
        /// The newest version this build reads (and writes).
        newest: u32,
    },
    /// A corrupt record with data after it.
    #[error(
        "{path}: corrupt record at byte offset {offset} ({why}) with more data after it; refusing to start so that nothing is lost silently. Restart with --recover-truncate to drop it and everything after it"
    )]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// Offset of the bad record.
        offset: u64,
        /// What is wrong.
        why: String,
    },
    /// A thread of the log could not be started.
    #[error("the write-ahead log is not accepting writes: {0}")]
    Closed(io::Error),
}

/// Why the log did not log, or did not apply, a record: what a job is answered with, and what
/// [`crate::Ingest::append_observations_blocking`] fails with ([`crate::Error::Append`]). Not
/// exported: carried by [`Error::Append`] and [`Error::Persist`].
#[derive(Clone, Debug, thiserror::Error)]
pub enum AppendError {
    /// The queue is full: the writer cannot keep up. Nothing was stored.
    #[error("the write-ahead log queue is full")]
    Full,
    /// The log is closed (shutting down). Nothing was stored.
    #[error("the write-ahead log is closed")]
    Closed,
    /// The write failed (e.g. the disk is full). Nothing was stored.
    #[error("cannot persist the request: {0}")]
    Write(Arc<io::Error>),
    /// The record is durable but the store stopped taking records (its thread is gone): it is
    /// applied when the log is replayed at the next start.
    #[error("the store is not accepting writes")]
    NotApplied,
    /// No answer in time; the record may still be applied.
    #[error("the write-ahead log did not answer within {0:?}")]
    TimedOut(Duration),
    /// In cluster mode, the ingest stream did not acknowledge every part of the request: the
    /// reason says whether nothing was sent (NATS unreachable) or an acknowledgement did not
    /// come (then a part may be stored, as with a server that dies before answering).
    #[error("the cluster's ingest stream did not acknowledge the request: {0}")]
    Unstored(String),
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt as _;

    use super::*;

    #[test]
    fn overload_says_when_to_retry_and_a_series_limit_does_not() {
        let retry = |e: Error| {
            tonic::Status::from(e)
                .get_details_retry_info()
                .and_then(|r| r.retry_delay)
        };
        let overloaded = tonic::Status::from(Error::Overloaded(Overload::LogQueueFull));
        assert_eq!(overloaded.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            retry(Error::Overloaded(Overload::LogQueueFull)),
            Some(RETRY_AFTER)
        );
        assert_eq!(retry(Error::ShuttingDown), Some(RETRY_AFTER));
        let limit = Error::SeriesLimit {
            new_series: 1,
            limit: SeriesLimit::Total { max: 1 },
        };
        assert_eq!(
            tonic::Status::from(limit).code(),
            tonic::Code::ResourceExhausted
        );
        let limit = Error::SeriesLimit {
            new_series: 1,
            limit: SeriesLimit::Total { max: 1 },
        };
        assert_eq!(retry(limit), None, "waiting does not lift a series limit");
    }
}
