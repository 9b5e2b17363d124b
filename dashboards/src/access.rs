//! Who is calling, and whether they may: the HTTP side of `thermostat-auth`.
//!
//! - [`request_meta`] (on every route) gives each request a [`RequestMeta`]: its id (also
//!   sent back in `x-request-id`), the client's address and user agent, and whether the
//!   connection is TLS.
//! - [`authenticate`] (on every route but health, sign-in and assets) finds the principal:
//!   `Authorization: Bearer <token>`, else the dashboard's session cookie, else a verified
//!   client certificate. No principal: `401` with `WWW-Authenticate: Bearer` (an API path)
//!   or a redirect to the sign-in page (a page). A request authenticated by the cookie that
//!   changes state must carry the session's CSRF token in `X-CSRF-Token`.
//! - [`require`] (per route) checks the route's permission: `403` naming what is missing.
//! - [`record`] appends an audit event before a change is acknowledged.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use thermostat_auth::{AuditEvent, Credentials, Outcome, Permission, Principal, Session};

use crate::ApiState;
use crate::error::ApiError;

/// The dashboard's session cookie.
pub const SESSION_COOKIE: &str = "thermostat_session";
/// The header that carries a session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The response header with the request's id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The sign-in page.
pub const SIGN_IN_PATH: &str = "/signin";

/// What every request is known by, before authentication.
#[derive(Clone, Debug)]
pub struct RequestMeta {
    /// Its id, random.
    pub request_id: String,
    /// The client's address.
    pub source_ip: Option<String>,
    /// The client's `user-agent`, at most 256 characters.
    pub user_agent: Option<String>,
    /// Whether it came over TLS.
    pub tls: bool,
    /// The Common Name of the connection's verified client certificate.
    pub client_subject: Option<String>,
}

/// An authenticated request's principal.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Who.
    pub principal: Arc<Principal>,
    /// The session, when it was authenticated by the dashboard's cookie.
    pub session: Option<Session>,
    /// The request.
    pub meta: RequestMeta,
}

impl RequestMeta {
    /// An audit event of this request by `principal` (`None`: unknown, as a failed sign-in).
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per field of the audit line that the request does not give"
    )]
    pub fn event(
        &self,
        now: jiff::Timestamp,
        principal: Option<&Principal>,
        action: &str,
        target: Option<&str>,
        parameters: serde_json::Value,
        outcome: Outcome,
        error: Option<String>,
    ) -> AuditEvent {
        AuditEvent {
            time: now,
            request_id: self.request_id.clone(),
            principal: principal.map_or_else(|| "unknown".into(), |p| p.name.clone()),
            role: principal.map(|p| p.role),
            source_ip: self.source_ip.clone(),
            user_agent: self.user_agent.clone(),
            action: action.into(),
            target: target.map(str::to_owned),
            parameters,
            outcome,
            error,
        }
    }
}

impl Caller {
    /// An audit event of this request.
    pub fn event(
        &self,
        now: jiff::Timestamp,
        action: &str,
        target: Option<&str>,
        parameters: serde_json::Value,
        outcome: Outcome,
        error: Option<String>,
    ) -> AuditEvent {
        self.meta.event(
            now,
            Some(&self.principal),
            action,
            target,
            parameters,
            outcome,
            error,
        )
    }
}

fn random_id() -> String {
    let bytes: [u8; 16] = rand_bytes();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn rand_bytes() -> [u8; 16] {
    // The request id needs no secrecy, only uniqueness; a token from `thermostat-auth` has
    // 256 random bits, of which these are the first 128.
    let t = thermostat_auth::new_token();
    let hex = &t[thermostat_auth::TOKEN_PREFIX.len()..];
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    out
}

/// Middleware on every route: the request's [`RequestMeta`], and its id in `x-request-id`.
pub async fn request_meta(mut req: Request, next: Next) -> Response {
    let conn = req.extensions().get::<thermostat_transport::ConnInfo>();
    let meta = RequestMeta {
        request_id: random_id(),
        source_ip: conn.and_then(|c| c.remote_addr).map(|a| a.ip().to_string()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect()),
        tls: conn.is_some_and(|c| c.tls),
        client_subject: conn.and_then(|c| c.client_subject.clone()),
    };
    let id = HeaderValue::from_str(&meta.request_id).ok();
    req.extensions_mut().insert(meta);
    let mut resp = next.run(req).await;
    if let Some(id) = id {
        resp.headers_mut().insert(REQUEST_ID_HEADER, id);
    }
    resp
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim())
}

/// Whether `path` is a page of the dashboard (answered with a redirect to sign in).
fn is_page(path: &str) -> bool {
    !path.starts_with("/api/") && path != "/metrics"
}

fn now_ms(state: &ApiState) -> i64 {
    state.clock.now().as_millis()
}

/// Middleware: finds the request's [`Caller`] or refuses it.
pub async fn authenticate(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    let meta = req
        .extensions()
        .get::<RequestMeta>()
        .cloned()
        .unwrap_or_else(|| RequestMeta {
            request_id: random_id(),
            source_ip: None,
            user_agent: None,
            tls: false,
            client_subject: None,
        });
    let access = &state.access;
    let path = req.uri().path().to_owned();
    if path == "/metrics" && access.public_metrics() {
        return next.run(req).await;
    }
    let headers = req.headers();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    let session = match (authorization, access.tokens()) {
        (None, Some(tokens)) => cookie(headers, SESSION_COOKIE)
            .and_then(|id| access.sessions().get(&tokens, id, now_ms(&state))),
        _ => None,
    };
    let principal = match &session {
        Some(s) => Ok(Arc::clone(&s.principal)),
        None => access.authenticate(Credentials {
            authorization,
            client_subject: meta.client_subject.as_deref(),
        }),
    };
    let principal = match principal {
        Ok(p) => p,
        Err(why) => {
            if is_page(&path) && req.method() == Method::GET {
                let next_page = req.uri().path_and_query().map_or("/", |p| p.as_str());
                let target = format!("{SIGN_IN_PATH}?next={}", percent_encode(next_page));
                return Redirect::to(&target).into_response();
            }
            return unauthenticated(why.to_string());
        }
    };
    if let Some(s) = &session
        && !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
    {
        let presented = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if !presented.is_some_and(|p| s.csrf_matches(p)) {
            deny_log(&state, &principal, &meta, "missing or wrong CSRF token");
            return ApiError::Forbidden(format!(
                "a request signed in by the dashboard's cookie must send the session's CSRF token in {CSRF_HEADER}"
            ))
            .into_response();
        }
    }
    req.extensions_mut().insert(Caller {
        principal,
        session,
        meta,
    });
    next.run(req).await
}

/// A `401` with `WWW-Authenticate: Bearer`.
pub fn unauthenticated(message: String) -> Response {
    let mut resp = ApiError::Status {
        status: StatusCode::UNAUTHORIZED,
        message,
        field: Some("authorization".into()),
    }
    .into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"thermostat\""),
    );
    resp
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes().take(2048) {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn deny_log(state: &ApiState, principal: &Principal, meta: &RequestMeta, why: &str) {
    if let Some(suppressed) = state.access.log_denial(now_ms(state)) {
        tracing::warn!(
            principal = %principal.name,
            role = %principal.role,
            source_ip = meta.source_ip.as_deref().unwrap_or("-"),
            request_id = %meta.request_id,
            suppressed,
            "Refused an HTTP request: {why}."
        );
    }
}

/// The caller of a request that went through [`authenticate`].
///
/// # Errors
/// A 500 if the route is not behind [`authenticate`] (a wiring mistake).
pub fn caller(req: &Request) -> Result<&Caller, ApiError> {
    req.extensions()
        .get::<Caller>()
        .ok_or_else(|| ApiError::Internal("a protected route without authentication".into()))
}

/// Checks `permission` for the caller (after [`authenticate`]); `403` naming it when missing.
pub async fn require(
    State((state, permission)): State<(ApiState, Permission)>,
    req: Request,
    next: Next,
) -> Response {
    let access = &state.access;
    if permission == Permission::ReadTelemetry && access.public_metrics() {
        return next.run(req).await;
    }
    let Some(c) = req.extensions().get::<Caller>() else {
        return ApiError::Internal("a protected route without authentication".into())
            .into_response();
    };
    if let Err(denied) = access.authorize(&c.principal, permission) {
        // Logged, and for a change also audited, at most a few times a second: a caller
        // that keeps trying cannot flood the log or the trail (every refusal is counted).
        if let Some(suppressed) = access.log_denial(now_ms(&state)) {
            tracing::warn!(
                principal = %c.principal.name,
                source_ip = c.meta.source_ip.as_deref().unwrap_or("-"),
                request_id = %c.meta.request_id,
                path = %req.uri().path(),
                suppressed,
                "Refused an HTTP request: {denied}."
            );
            if !matches!(*req.method(), Method::GET | Method::HEAD) {
                let event = c.event(
                    now(&state),
                    permission.label(),
                    Some(req.uri().path()),
                    serde_json::json!({ "method": req.method().as_str() }),
                    Outcome::Denied,
                    Some(denied.to_string()),
                );
                if let Err(e) = record(&state, event).await {
                    return e.into_response();
                }
            }
        }
        return ApiError::Forbidden(denied.to_string()).into_response();
    }
    next.run(req).await
}

/// Appends `event` to the audit trail (if the server keeps one) before the change it
/// records is acknowledged.
///
/// # Errors
/// A 500 when it cannot be written.
pub async fn record(state: &ApiState, event: AuditEvent) -> Result<(), ApiError> {
    let Some(trail) = state.audit.clone() else {
        return Ok(());
    };
    tokio::task::spawn_blocking(move || trail.append(&event))
        .await
        .map_err(|e| ApiError::Internal(format!("the audit trail failed: {e}")))?
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Now, for audit events.
pub fn now(state: &ApiState) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(now_ms(state)).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// Records the outcome of a change made by `caller` (`result`) in the audit trail, then
/// hands `result` back: a change is acknowledged only once its event is written.
///
/// # Errors
/// `result`'s error, or a 500 when the event cannot be written.
pub async fn audited<T>(
    state: &ApiState,
    caller: &Caller,
    action: &str,
    target: Option<&str>,
    parameters: serde_json::Value,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    let (outcome, error) = match &result {
        Ok(_) => (Outcome::Success, None),
        Err(e) => (Outcome::Failure, Some(e.to_string())),
    };
    let event = caller.event(now(state), action, target, parameters, outcome, error);
    record(state, event).await?;
    result
}
