//! The crate's one error type: why a request body was failed, or why the TLS files cannot be
//! used.

use std::path::PathBuf;

/// A boxed error from the underlying body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why reading a request body failed, or why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body (or, on a gRPC stream, one message) did not arrive whole in time. Fix: send
    /// requests at once, or raise `--request-body-timeout-seconds`.
    #[error(
        "the request {what} was not received whole within {seconds} s (--request-body-timeout-seconds)"
    )]
    BodyTimeout {
        /// "body", or "message" on a stream.
        what: &'static str,
        /// The limit.
        seconds: u64,
    },
    /// The server already holds its limit of bytes of requests not yet received whole. Fix:
    /// retry later; the operator may raise `--max-buffered-request-bytes`.
    #[error(
        "the server holds its limit of {limit} bytes of requests not yet received whole (--max-buffered-request-bytes): retry later"
    )]
    Buffered {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body itself failed (the client reset the stream, the connection broke).
    #[error("cannot read the request body: {0}")]
    Body(#[source] BoxError),
    /// A TLS file named in the settings cannot be used (at start, or on a reload, which then
    /// keeps the certificate in force). Fix: point the key at a readable PEM file of the right
    /// kind, with a private key that matches the certificate.
    #[error("{key} {}: {message}", file.display())]
    Tls {
        /// The settings key: `tls.cert_file`, `tls.key_file` or `tls.client_ca_file`.
        key: &'static str,
        /// The file.
        file: PathBuf,
        /// The problem (never quotes the file's contents).
        message: String,
    },
}

impl Error {
    /// The settings key of the limit that failed the request, if one did (or of the TLS file
    /// that cannot be used).
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Error::BodyTimeout { .. } => Some("request_body_timeout_seconds"),
            Error::Buffered { .. } => Some("max_buffered_request_bytes"),
            Error::Body(_) => None,
            Error::Tls { key, .. } => Some(key),
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        match e {
            Error::BodyTimeout { .. } => tonic::Status::deadline_exceeded(e.to_string()),
            Error::Buffered { .. } => tonic::Status::resource_exhausted(e.to_string()),
            Error::Body(inner) => tonic::Status::from_error(inner),
            // Not a request's error: never reaches a client.
            Error::Tls { .. } => tonic::Status::internal("internal error"),
        }
    }
}
