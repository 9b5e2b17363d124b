//! The crate's error: every way a request is refused, with CloudWatch's code, HTTP status and
//! fault side, mapped once into each protocol's error shape by [`crate::response`].

use crate::limits::Limit;

/// Which side CloudWatch blames, as AWS Query's `<Type>` and `x-amzn-query-error` print it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The client's request is at fault (4xx).
    Sender,
    /// The service failed (5xx).
    Receiver,
}

impl Fault {
    /// `Sender` or `Receiver`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Fault::Sender => "Sender",
            Fault::Receiver => "Receiver",
        }
    }
}

/// A refused request. Messages are CloudWatch's where its wording is known and always name the
/// parameter by its AWS Query path (`MetricData.member.2.Value`), as CloudWatch does.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Error {
    /// The operation is not one of CloudWatch's, or not one Thermostat serves. Fix: check the
    /// `Action`, `X-Amz-Target` or path.
    #[error("{0}")]
    InvalidAction(String),
    /// An AWS Query request without `Action`.
    #[error("The request must contain the parameter Action.")]
    MissingAction,
    /// A required parameter is absent; it holds the parameter's path.
    #[error("The parameter {0} is required.")]
    MissingParameter(String),
    /// A parameter has the wrong type or value; it holds the whole message.
    #[error("{0}")]
    InvalidParameterValue(String),
    /// Parameters that exclude each other were given together; the whole message.
    #[error("{0}")]
    InvalidParameterCombination(String),
    /// A pagination token this server did not issue.
    #[error("{0}")]
    InvalidNextToken(String),
    /// The named resource does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    /// The resource an ARN names does not exist (the tagging operations' error, which
    /// CloudWatch models apart from [`Error::ResourceNotFound`]).
    #[error("{0}")]
    ResourceNotFoundException(String),
    /// A quota of the service was reached.
    #[error("{0}")]
    LimitExceeded(String),
    /// The server is overloaded for now: SDKs retry this code with back-off.
    #[error("{0}")]
    Throttling(String),
    /// The body could not be parsed in the protocol's syntax; it holds what was wrong.
    #[error("The request body could not be parsed: {0}")]
    Malformed(String),
    /// The body crossed a bound of [`crate::Limits`]. Fix: send smaller requests.
    #[error("The request exceeds the limit {limit} ({max}).")]
    TooLarge {
        /// The bound crossed.
        limit: Limit,
        /// Its value.
        max: usize,
    },
    /// The `Content-Type` is not the detected protocol's; it holds the one received.
    #[error("Unsupported Content-Type {0}.")]
    UnsupportedMediaType(String),
    /// A `Content-Encoding` other than gzip; it holds the one received.
    #[error("Unsupported Content-Encoding {0}.")]
    UnsupportedContentEncoding(String),
    /// The signature does not match (SigV4); the message.
    #[error("{0}")]
    SignatureDoesNotMatch(String),
    /// The access key is unknown; the message.
    #[error("{0}")]
    InvalidClientTokenId(String),
    /// The caller may not do this; the message.
    #[error("{0}")]
    AccessDenied(String),
    /// The server cannot take the request now (shutting down, or its disk refuses writes);
    /// retry later.
    #[error("{0}")]
    ServiceUnavailable(String),
    /// The service failed. The message shown to clients is generic: log the cause where it
    /// happened.
    #[error("An internal error occurred.")]
    InternalServiceError,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A [`Error::TooLarge`] for `limit`, whose value is `max`.
    pub const fn too_large(limit: Limit, max: usize) -> Self {
        Error::TooLarge { limit, max }
    }

    /// CloudWatch's error code (AWS Query `<Code>`, the first half of `x-amzn-query-error`).
    pub const fn code(&self) -> &'static str {
        match self {
            Error::InvalidAction(_) => "InvalidAction",
            Error::MissingAction => "MissingAction",
            Error::MissingParameter(_) => "MissingParameter",
            Error::InvalidParameterValue(_) => "InvalidParameterValue",
            Error::InvalidParameterCombination(_) => "InvalidParameterCombination",
            Error::InvalidNextToken(_) => "InvalidNextToken",
            Error::ResourceNotFound(_) => "ResourceNotFound",
            Error::ResourceNotFoundException(_) => "ResourceNotFoundException",
            Error::LimitExceeded(_) => "LimitExceeded",
            Error::Throttling(_) => "Throttling",
            Error::Malformed(_) => "SerializationException",
            Error::TooLarge {
                limit: Limit::BodyBytes,
                ..
            } => "RequestEntityTooLarge",
            Error::TooLarge { .. } => "InvalidParameterValue",
            Error::UnsupportedMediaType(_) | Error::UnsupportedContentEncoding(_) => {
                "UnsupportedMediaType"
            }
            Error::SignatureDoesNotMatch(_) => "SignatureDoesNotMatch",
            Error::InvalidClientTokenId(_) => "InvalidClientTokenId",
            Error::AccessDenied(_) => "AccessDenied",
            Error::ServiceUnavailable(_) => "ServiceUnavailable",
            Error::InternalServiceError => "InternalServiceError",
        }
    }

    /// The shape name of the service model (`__type` of JSON and CBOR errors, after
    /// `com.amazonaws.cloudwatch#`). Codes without a modelled shape use the code itself.
    pub const fn shape(&self) -> &'static str {
        match self {
            Error::MissingParameter(_) => "MissingRequiredParameterException",
            Error::InvalidParameterValue(_)
            | Error::TooLarge {
                limit: Limit::Depth,
                ..
            } => "InvalidParameterValueException",
            Error::TooLarge {
                limit: Limit::Elements | Limit::StringBytes | Limit::ListLen,
                ..
            } => "InvalidParameterValueException",
            Error::InvalidParameterCombination(_) => "InvalidParameterCombinationException",
            Error::LimitExceeded(_) => "LimitExceededFault",
            Error::InternalServiceError => "InternalServiceFault",
            other => other.code(),
        }
    }

    /// The HTTP status CloudWatch answers with.
    pub const fn status(&self) -> u16 {
        match self {
            Error::ResourceNotFound(_) | Error::ResourceNotFoundException(_) => 404,
            Error::TooLarge {
                limit: Limit::BodyBytes,
                ..
            } => 413,
            Error::UnsupportedMediaType(_) | Error::UnsupportedContentEncoding(_) => 415,
            Error::SignatureDoesNotMatch(_)
            | Error::InvalidClientTokenId(_)
            | Error::AccessDenied(_) => 403,
            Error::InternalServiceError => 500,
            Error::ServiceUnavailable(_) => 503,
            _ => 400,
        }
    }

    /// Who is at fault.
    pub const fn fault(&self) -> Fault {
        match self {
            Error::InternalServiceError | Error::ServiceUnavailable(_) => Fault::Receiver,
            _ => Fault::Sender,
        }
    }
}
