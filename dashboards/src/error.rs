//! The HTTP API's one error type, rendered as `{"error": {"code", "message", "field"}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An API error with its HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a parameter broke a rule.
    #[error("{field}: {message}")]
    BadRequest {
        /// The parameter.
        field: String,
        /// The rule broken.
        message: String,
    },
    /// 404: no such resource.
    #[error("{0}")]
    NotFound(String),
    /// 429: the server is overloaded; retry later.
    #[error("{0}")]
    Overloaded(String),
    /// 500: an internal error; details are logged, not shown.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A 400 for `field`.
    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, field) = match self {
            ApiError::BadRequest { field, message } => (
                StatusCode::BAD_REQUEST,
                "invalid_argument",
                message,
                Some(field),
            ),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m, None),
            ApiError::Overloaded(m) => {
                (StatusCode::TOO_MANY_REQUESTS, "resource_exhausted", m, None)
            }
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "An HTTP request failed with an internal error.");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error".to_owned(),
                    None,
                )
            }
        };
        (
            status,
            Json(json!({"error": {"code": code, "message": message, "field": field}})),
        )
            .into_response()
    }
}
