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
    /// 400: a configuration on disk is invalid (every error, `file:line:column: path: message`).
    #[error("the configuration is invalid ({} errors)", .0.len())]
    InvalidConfig(Vec<String>),
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
        let error = |code: &str, message: String, field: Option<String>| json!({"code": code, "message": message, "field": field});
        let (status, body) = match self {
            ApiError::BadRequest { field, message } => (
                StatusCode::BAD_REQUEST,
                error("invalid_argument", message, Some(field)),
            ),
            ApiError::InvalidConfig(errors) => {
                let message = format!(
                    "the new configuration is invalid; the running configuration stays ({} errors)",
                    errors.len()
                );
                let mut body = error("invalid_config", message, None);
                body["errors"] = json!(errors);
                (StatusCode::BAD_REQUEST, body)
            }
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, error("not_found", m, None)),
            ApiError::Overloaded(m) => (
                StatusCode::TOO_MANY_REQUESTS,
                error("resource_exhausted", m, None),
            ),
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "An HTTP request failed with an internal error.");
                let m = "internal error".to_owned();
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    error("internal", m, None),
                )
            }
        };
        (status, Json(json!({ "error": body }))).into_response()
    }
}
