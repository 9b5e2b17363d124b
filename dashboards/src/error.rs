//! The HTTP API's one error type, rendered as `{"error": {"code", "message", "field"}}`, and
//! the middleware that gives every error answer that shape: axum's own rejections (a bad
//! query string, body or path, an unknown method, a body over the limit) are plain text, and
//! a request head over the limits below is refused before it is routed.

use axum::Json;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A request target (path and query) longer than this is answered `414`.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Request headers larger than this together (each name and value, plus 4 bytes a line) are
/// answered `431`.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Messages are cut to this many characters, so that an error never echoes a large input.
pub const MAX_MESSAGE_CHARS: usize = 512;
/// How much of a plain-text error body is read to become the JSON error's message.
const MAX_REJECTION_BODY_BYTES: usize = 4096;

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
    #[error("the configuration is invalid ({})", count(.0.len(), "error"))]
    InvalidConfig(Vec<String>),
    /// 403: the request was refused (a cross-site request to a state-changing endpoint).
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such resource.
    #[error("{0}")]
    NotFound(String),
    /// 409: the operation is already running; `field` names what is busy.
    #[error("{message}")]
    Conflict {
        /// What is busy (e.g. `backup`).
        field: String,
        /// What runs, and what to do.
        message: String,
    },
    /// 429: the server is overloaded; retry later.
    #[error("{0}")]
    Overloaded(String),
    /// Any other status that the request caused (axum's rejections, limits of the request
    /// head), with the code [`code_for`] gives it.
    #[error("{message}")]
    Status {
        /// The status.
        status: StatusCode,
        /// What happened.
        message: String,
        /// The part of the request at fault, if known.
        field: Option<String>,
    },
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

/// The `code` of an error answer with `status`.
pub fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "invalid_argument",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        409 => "conflict",
        411 => "length_required",
        413 => "payload_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        429 => "resource_exhausted",
        431 => "request_header_fields_too_large",
        503 => "unavailable",
        400..=499 => "invalid_request",
        _ => "internal",
    }
}

/// `s` cut to [`MAX_MESSAGE_CHARS`] characters (with `…` when cut).
pub fn bounded(s: String) -> String {
    match s.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = |code: &str, message: String, field: Option<String>| json!({"code": code, "message": bounded(message), "field": field.map(bounded)});
        let (status, body) = match self {
            ApiError::BadRequest { field, message } => (
                StatusCode::BAD_REQUEST,
                error("invalid_argument", message, Some(field)),
            ),
            ApiError::InvalidConfig(errors) => {
                let message = format!(
                    "the new configuration is invalid; the running configuration stays ({})",
                    count(errors.len(), "error")
                );
                let mut body = error("invalid_config", message, None);
                body["errors"] = json!(errors);
                (StatusCode::BAD_REQUEST, body)
            }
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, error("forbidden", m, None)),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, error("not_found", m, None)),
            ApiError::Conflict { field, message } => (
                StatusCode::CONFLICT,
                error("conflict", message, Some(field)),
            ),
            ApiError::Overloaded(m) => (
                StatusCode::TOO_MANY_REQUESTS,
                error("resource_exhausted", m, None),
            ),
            ApiError::Status {
                status,
                message,
                field,
            } => (status, error(code_for(status), message, field)),
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

/// Probes answer plain text for their monitors, whatever their status.
fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

/// Middleware over the whole router: refuses a request target over [`MAX_URI_BYTES`] (`414`)
/// and headers over [`MAX_HEADER_BYTES`] (`431`) before routing, and turns every error answer
/// that is not JSON yet (axum's plain-text rejections, its empty `405`) into the JSON error
/// format, keeping the status and headers such as `Allow`.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return ApiError::Status {
            status: StatusCode::URI_TOO_LONG,
            message: format!(
                "the request target is {target} bytes; at most {MAX_URI_BYTES} are accepted"
            ),
            field: Some("uri".into()),
        }
        .into_response();
    }
    let head: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if head > MAX_HEADER_BYTES {
        return ApiError::Status {
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            message: format!(
                "the request headers are {head} bytes; at most {MAX_HEADER_BYTES} are accepted"
            ),
            field: Some("headers".into()),
        }
        .into_response();
    }
    let probe = is_probe(req.uri().path());
    let resp = next.run(req).await;
    let status = resp.status();
    // JSON errors are ours already; protobuf ones are OTLP/HTTP's `google.rpc.Status`, which
    // its clients decode (`otlp.rs`).
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v == "application/x-protobuf");
    if probe || is_json || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, MAX_REJECTION_BODY_BYTES)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("the request failed")
            .to_owned()
    } else {
        text
    };
    let field = rejection_field(&message).map(str::to_owned);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let json = ApiError::Status {
        status,
        message,
        field,
    }
    .into_response();
    let (_, json_body) = json.into_parts();
    Response::from_parts(parts, Body::new(json_body))
}

/// The part of the request an axum rejection message is about.
fn rejection_field(message: &str) -> Option<&'static str> {
    let m = message.to_ascii_lowercase();
    if m.contains("query string") {
        Some("query")
    } else if m.contains("body") || m.contains("content-type") {
        Some("body")
    } else if m.contains("path") || m.contains("url parameter") {
        Some("path")
    } else {
        None
    }
}

/// `"1 error"`, `"2 errors"`: `n` and the noun, plural unless `n` is 1.
pub(crate) fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_singular_for_one() {
        let one = ApiError::InvalidConfig(vec!["a.yaml:1:1: x: is required".into()]);
        assert_eq!(one.to_string(), "the configuration is invalid (1 error)");
        let two = ApiError::InvalidConfig(vec![String::new(), String::new()]);
        assert_eq!(two.to_string(), "the configuration is invalid (2 errors)");
        assert_eq!(count(1, "instance"), "1 instance");
        assert_eq!(count(0, "instance"), "0 instances");
    }

    #[test]
    fn messages_are_bounded_on_a_character_boundary() {
        assert_eq!(bounded("short".into()), "short");
        let long = "é".repeat(MAX_MESSAGE_CHARS + 10);
        let cut = bounded(long);
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn every_error_status_has_a_code() {
        assert_eq!(
            code_for(StatusCode::METHOD_NOT_ALLOWED),
            "method_not_allowed"
        );
        assert_eq!(code_for(StatusCode::PAYLOAD_TOO_LARGE), "payload_too_large");
        assert_eq!(code_for(StatusCode::IM_A_TEAPOT), "invalid_request");
        assert_eq!(code_for(StatusCode::BAD_GATEWAY), "internal");
    }
}
