//! Dashboard sign-in: the sign-in page and the session endpoints (open routes: they need no
//! principal to be reached).
//!
//! - `GET /signin`: the sign-in page (`assets/signin.html`, `assets/signin.js`). With auth off
//!   it redirects to `/`; with a live session cookie, to its `next` page.
//! - `POST /api/v1/session` `{"token": "..."}`: signs in. The session's id goes into the
//!   `HttpOnly`, `SameSite=Strict` cookie [`SESSION_COOKIE`] (`Secure` over TLS); the answer
//!   holds the session's CSRF token, which the pages send in [`CSRF_HEADER`] on every request
//!   that changes state ([`access::authenticate`] checks it).
//! - `GET /api/v1/session`: who is signed in (the cookie's session, or a bearer token), what
//!   they may do, and the CSRF token.
//! - `DELETE /api/v1/session`: signs out (needs the cookie and its CSRF token).
//!
//! Signing in and out are audited (`sign_in`, `sign_out`); a token is never echoed, logged or
//! recorded. Both refuse cross-site requests ([`crate::cross_site`]): a login CSRF would sign
//! the victim's browser in as the attacker.
//!
//! With auth off (no `auth.tokens`) everyone is the anonymous admin: `GET` says so, and
//! `POST` and `DELETE` answer `404` (there is nothing to sign in to).

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest as _, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use thermostat_auth::{Credentials, Outcome, Permission, Principal, Session, Unauthenticated};

use crate::ApiState;
use crate::access::{self, CSRF_HEADER, RequestMeta, SESSION_COOKIE, SIGN_IN_PATH};
use crate::error::ApiError;

/// The session endpoint.
pub const SESSION_PATH: &str = "/api/v1/session";
/// A sign-in request's body at most, in bytes (a token is at most 4 KiB).
pub const SIGN_IN_BODY_BYTES: usize = 8 * 1024;
/// The message of a refused sign-in: the same whatever was wrong with the token.
pub const INVALID_TOKEN: &str = "the token is not valid";
/// A `next` page longer than this is not followed.
const MAX_NEXT_BYTES: usize = 2048;

/// The sign-in page and the session endpoints (open: no principal needed).
pub fn routes() -> Router<ApiState> {
    let changes = post(sign_in)
        .merge(delete(sign_out))
        .route_layer(middleware::from_fn(crate::cross_site::refuse_cross_site))
        .layer(DefaultBodyLimit::max(SIGN_IN_BODY_BYTES));
    Router::new()
        .route(SIGN_IN_PATH, get(sign_in_page))
        .route(SESSION_PATH, changes.merge(get(who_am_i)))
}

/// The page to go to after signing in: `next` if it is a path on this server (`/x`, not
/// `//host` nor `/\host`, which browsers read as another host), else `/`.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.len() <= MAX_NEXT_BYTES
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n
        }
        _ => "/",
    }
}

/// The `Set-Cookie` value of a new session lasting `max_age_secs`.
pub fn session_cookie(id: &str, max_age_secs: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        max_age_secs.max(0)
    )
}

/// The `Set-Cookie` value that makes the browser forget the session cookie.
pub fn cleared_cookie(secure: bool) -> String {
    session_cookie("", 0, secure)
}

fn meta_of(req_meta: Option<&RequestMeta>) -> RequestMeta {
    req_meta.cloned().unwrap_or_else(|| RequestMeta {
        request_id: String::new(),
        source_ip: None,
        user_agent: None,
        tls: false,
        client_subject: None,
    })
}

fn now_ms(state: &ApiState) -> i64 {
    state.clock.now().as_millis()
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(jiff::Timestamp::MAX)
        .to_string()
}

/// What the role may do of the dashboard's controls.
fn can(principal: &Principal) -> Value {
    let role = principal.role;
    json!({
        "reload": role.allows(Permission::Reload),
        "set_alarm_state": role.allows(Permission::SetAlarmState),
        "backup": role.allows(Permission::Backup),
    })
}

/// A JSON answer that no cache keeps (it holds a CSRF token).
fn private(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn auth_off() -> ApiError {
    ApiError::NotFound(
        "authentication is off on this server (no auth.tokens): there is nothing to sign in to or out of"
            .into(),
    )
}

#[derive(Deserialize)]
pub(crate) struct NextPage {
    next: Option<String>,
}

/// `GET /signin`: the sign-in page; `/` with auth off, the `next` page when the session
/// cookie is live already.
async fn sign_in_page(
    State(state): State<ApiState>,
    Query(q): Query<NextPage>,
    headers: HeaderMap,
) -> Response {
    let Some(tokens) = state.access.tokens() else {
        return Redirect::to("/").into_response();
    };
    let live = access::cookie(&headers, SESSION_COOKIE)
        .and_then(|id| state.access.sessions().get(&tokens, id, now_ms(&state)));
    if live.is_some() {
        return Redirect::to(safe_next(q.next.as_deref())).into_response();
    }
    crate::ui::sign_in_page(&headers)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignIn {
    token: String,
}

/// `POST /api/v1/session` `{"token"}`: `200 {principal, role, csrf_token, expires, can}` and
/// the session cookie; `401` for a token not in force; `403` for a role without the dashboard.
async fn sign_in(State(state): State<ApiState>, req: Request) -> Result<Response, ApiError> {
    let meta = meta_of(req.extensions().get::<RequestMeta>());
    let Some(tokens) = state.access.tokens() else {
        return Err(auth_off());
    };
    let body: Result<Json<SignIn>, JsonRejection> = Json::from_request(req, &state).await;
    let body = match body {
        Ok(Json(b)) => b,
        // serde's messages may quote the value: none is echoed.
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(ApiError::Status {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                message: format!("a sign-in request is at most {SIGN_IN_BODY_BYTES} bytes"),
                field: Some("body".into()),
            });
        }
        Err(_) => {
            return Err(ApiError::bad_request(
                "body",
                "send JSON {\"token\": \"<token>\"} with content-type application/json",
            ));
        }
    };
    let now = now_ms(&state);
    let parameters = json!({ "method": "token" });
    let Some((new, principal)) = state.access.sessions().sign_in(&tokens, &body.token, now) else {
        // Counted always; logged and audited at most a few times a second, so that anyone
        // who can reach the port cannot flood the log or the audit trail.
        state
            .access
            .count_unauthenticated(thermostat_auth::Unauthenticated::Unknown);
        if let Some(suppressed) = state.access.log_denial(now) {
            let event = meta.event(
                access::now(&state),
                None,
                "sign_in",
                None,
                parameters,
                Outcome::Denied,
                Some(INVALID_TOKEN.into()),
            );
            access::record(&state, event).await?;
            tracing::warn!(
                source_ip = meta.source_ip.as_deref().unwrap_or("-"),
                request_id = %meta.request_id,
                suppressed,
                "Refused a dashboard sign-in: {INVALID_TOKEN}."
            );
        }
        return Ok(access::unauthenticated(INVALID_TOKEN.into()));
    };
    if let Err(denied) = state
        .access
        .authorize(&principal, Permission::ViewDashboard)
    {
        state.access.sessions().sign_out(&new.id);
        let event = meta.event(
            access::now(&state),
            Some(&principal),
            "sign_in",
            None,
            parameters,
            Outcome::Denied,
            Some(denied.to_string()),
        );
        access::record(&state, event).await?;
        return Err(ApiError::Forbidden(denied.to_string()));
    }
    let event = meta.event(
        access::now(&state),
        Some(&principal),
        "sign_in",
        None,
        parameters,
        Outcome::Success,
        None,
    );
    if let Err(e) = access::record(&state, event).await {
        // Not recorded: not handed out.
        state.access.sessions().sign_out(&new.id);
        return Err(e);
    }
    let max_age = (new.expires_ms - now) / 1000;
    let cookie = HeaderValue::from_str(&session_cookie(
        &new.id,
        max_age,
        meta.tls || state.access.secure_cookies(),
    ))
    .map_err(|e| ApiError::Internal(format!("a session cookie: {e}")))?;
    let mut resp = private(
        StatusCode::OK,
        json!({
            "principal": principal.name,
            "role": principal.role,
            "csrf_token": new.csrf,
            "expires": rfc3339(new.expires_ms),
            "can": can(&principal),
        }),
    );
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(resp)
}

/// A principal, and its session when the cookie authenticated it.
type Signed = (Arc<Principal>, Option<Session>);

/// The request's principal as [`access::authenticate`] finds it: the bearer token, else the
/// session cookie, else the client certificate. `Ok(None)`: auth is off.
fn principal_of(
    state: &ApiState,
    headers: &HeaderMap,
    meta: &RequestMeta,
) -> Result<Option<Signed>, Unauthenticated> {
    let access = &state.access;
    let Some(tokens) = access.tokens() else {
        return Ok(None);
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    if authorization.is_none()
        && let Some(session) = access::cookie(headers, SESSION_COOKIE)
            .and_then(|id| access.sessions().get(&tokens, id, now_ms(state)))
    {
        return Ok(Some((Arc::clone(&session.principal), Some(session))));
    }
    access
        .authenticate(Credentials {
            authorization,
            client_subject: meta.client_subject.as_deref(),
        })
        .map(|p| Some((p, None)))
}

/// `GET /api/v1/session`: `{auth_enabled, principal, role, csrf_token, expires, can}`.
async fn who_am_i(State(state): State<ApiState>, req: Request) -> Response {
    let meta = meta_of(req.extensions().get::<RequestMeta>());
    match principal_of(&state, req.headers(), &meta) {
        Err(why) => access::unauthenticated(why.to_string()),
        Ok(None) => private(
            StatusCode::OK,
            json!({
                "auth_enabled": false,
                "principal": "anonymous",
                "role": "admin",
                "csrf_token": null,
                "expires": null,
                "can": can(&Principal::anonymous()),
            }),
        ),
        Ok(Some((principal, session))) => private(
            StatusCode::OK,
            json!({
                "auth_enabled": true,
                "principal": principal.name,
                "role": principal.role,
                "csrf_token": session.as_ref().map(Session::csrf),
                "expires": session.as_ref().map(|s| rfc3339(s.expires_ms)),
                "can": can(&principal),
            }),
        ),
    }
}

/// `DELETE /api/v1/session`: forgets the cookie's session (its CSRF token in
/// [`CSRF_HEADER`]) and clears the cookie; `{"signed_out": true}`.
async fn sign_out(State(state): State<ApiState>, req: Request) -> Result<Response, ApiError> {
    let meta = meta_of(req.extensions().get::<RequestMeta>());
    let Some(tokens) = state.access.tokens() else {
        return Err(auth_off());
    };
    let headers = req.headers();
    let clear = HeaderValue::from_str(&cleared_cookie(meta.tls || state.access.secure_cookies()))
        .map_err(|e| ApiError::Internal(format!("a session cookie: {e}")))?;
    let id = access::cookie(headers, SESSION_COOKIE).unwrap_or("");
    let Some(session) = state.access.sessions().get(&tokens, id, now_ms(&state)) else {
        let mut resp = access::unauthenticated(
            "not signed in: no live session cookie (it may have expired)".into(),
        );
        resp.headers_mut().insert(header::SET_COOKIE, clear);
        return Ok(resp);
    };
    let presented = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    if !presented.is_some_and(|p| session.csrf_matches(p)) {
        return Err(ApiError::Forbidden(format!(
            "signing out needs the session's CSRF token in {CSRF_HEADER}"
        )));
    }
    state.access.sessions().sign_out(id);
    let event = meta.event(
        access::now(&state),
        Some(&session.principal),
        "sign_out",
        None,
        Value::Null,
        Outcome::Success,
        None,
    );
    access::record(&state, event).await?;
    let mut resp = private(StatusCode::OK, json!({ "signed_out": true }));
    resp.headers_mut().insert(header::SET_COOKIE, clear);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicBool;

    use axum::body::Body;
    use axum::http::Method;
    use http_body_util::BodyExt as _;
    use thermostat_auth::{
        Access, AuditError, AuditEvent, AuditPage, AuditQuery, AuditTrail, AuthTelemetry, Role,
        SecretSource, TokenEntry, Tokens,
    };
    use thermostat_metrics::{ManualClock, Store, Telemetry, Timestamp};
    use tower::ServiceExt as _;

    use super::*;

    const VIEWER: &str = "tht_viewer_secret_0123456789";
    const OPERATOR: &str = "tht_operator_secret_0123456789";
    const AGENT: &str = "tht_agent_secret_0123456789";
    const TTL_MS: i64 = 3_600_000;
    const T0_MS: i64 = 1_700_000_000_000;

    #[derive(Debug, Default)]
    struct Trail(Mutex<Vec<AuditEvent>>);

    impl AuditTrail for Trail {
        fn append(&self, event: &AuditEvent) -> Result<(), AuditError> {
            self.0.lock().unwrap().push(event.clone());
            Ok(())
        }
        fn query(&self, _: &AuditQuery) -> Result<AuditPage, AuditError> {
            Ok(AuditPage::default())
        }
    }

    fn tokens() -> Tokens {
        let entry = |name: &str, role| TokenEntry {
            name: name.into(),
            role,
            namespaces: None,
            secret: Some(SecretSource::Env(name.into())),
            client_subject: None,
        };
        let entries = [
            entry("dash", Role::Viewer),
            entry("ops", Role::Operator),
            entry("ci", Role::Agent),
        ];
        let env = |name: &str| {
            Some(match name {
                "dash" => VIEWER.to_owned(),
                "ops" => OPERATOR.to_owned(),
                _ => AGENT.to_owned(),
            })
        };
        Tokens::resolve(&entries, &env, &|_| Err("no files".into())).unwrap()
    }

    struct Fixture {
        state: ApiState,
        trail: Arc<Trail>,
        clock: Arc<ManualClock>,
    }

    fn fixture(auth: bool) -> Fixture {
        let trail = Arc::new(Trail::default());
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(T0_MS)));
        let access = Access::new(auth.then(tokens), false, TTL_MS, AuthTelemetry::default());
        let state = ApiState {
            store: Arc::new(Store::new(1)),
            telemetry: Arc::new(Telemetry::new()),
            clock: Arc::clone(&clock) as _,
            ready: Arc::new(AtomicBool::new(true)),
            alarms: None,
            groups: None,
            notifications: None,
            admin: None,
            queries: Default::default(),
            access: Arc::new(access),
            audit: Some(Arc::clone(&trail) as Arc<dyn AuditTrail>),
            otlp: None,
            remote_write: None,
            cloudwatch: None,
            cluster: None,
        };
        Fixture {
            state,
            trail,
            clock,
        }
    }

    /// A request as the server would see it: `tls` is what the connection says.
    fn req(method: Method, uri: &str, headers: &[(&str, &str)], body: &str, tls: bool) -> Request {
        let mut r = Request::builder().method(method).uri(uri);
        for (n, v) in headers {
            r = r.header(*n, *v);
        }
        let mut r = r.body(Body::from(body.to_owned())).unwrap();
        r.extensions_mut().insert(RequestMeta {
            request_id: "req-1".into(),
            source_ip: Some("127.0.0.1".into()),
            user_agent: Some("test".into()),
            tls,
            client_subject: None,
        });
        r
    }

    /// Through the whole router (`request_meta` makes the request's [`RequestMeta`] from the
    /// connection: never TLS here).
    async fn send(f: &Fixture, r: Request) -> (StatusCode, HeaderMap, Value) {
        answer(crate::router(f.state.clone()).oneshot(r).await.unwrap()).await
    }

    /// Through the session routes alone, with the request's own [`RequestMeta`] (`tls`).
    async fn send_direct(f: &Fixture, r: Request) -> (StatusCode, HeaderMap, Value) {
        let app = routes().with_state(f.state.clone());
        answer(app.oneshot(r).await.unwrap()).await
    }

    async fn answer(resp: Response) -> (StatusCode, HeaderMap, Value) {
        let (status, headers) = (resp.status(), resp.headers().clone());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn json_post(token: &str) -> String {
        json!({ "token": token }).to_string()
    }

    const JSON: (&str, &str) = ("content-type", "application/json");

    /// Signs in with `token`: the cookie's `name=value` and the CSRF token.
    async fn sign_in(f: &Fixture, token: &str) -> (String, String) {
        let (status, headers, body) = send(
            f,
            req(
                Method::POST,
                SESSION_PATH,
                &[JSON],
                &json_post(token),
                false,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let set = headers[header::SET_COOKIE].to_str().unwrap();
        let pair = set.split(';').next().unwrap().to_owned();
        (pair, body["csrf_token"].as_str().unwrap().to_owned())
    }

    #[tokio::test]
    async fn signing_in_sets_a_strict_http_only_cookie_secure_under_tls() {
        let f = fixture(true);
        for tls in [false, true] {
            let (status, headers, body) = send_direct(
                &f,
                req(Method::POST, SESSION_PATH, &[JSON], &json_post(VIEWER), tls),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let cookie = headers[header::SET_COOKIE].to_str().unwrap();
            let attrs: Vec<&str> = cookie.split("; ").collect();
            assert!(attrs[0].starts_with("thermostat_session=") && attrs[0].len() > 40);
            for want in ["Path=/", "HttpOnly", "SameSite=Strict", "Max-Age=3600"] {
                assert!(attrs.contains(&want), "{cookie}: no {want}");
            }
            assert_eq!(attrs.contains(&"Secure"), tls, "{cookie}");
            assert_eq!(headers[header::CACHE_CONTROL], "no-store");
            assert_eq!(body["principal"], "dash");
            assert_eq!(body["role"], "viewer");
            assert_eq!(body["csrf_token"].as_str().unwrap().len(), 64);
            assert_eq!(body["expires"], "2023-11-14T23:13:20Z");
            assert_eq!(
                body["can"],
                json!({"reload": false, "set_alarm_state": false, "backup": false})
            );
            assert!(!body.to_string().contains(VIEWER));
        }
        let events = f.trail.0.lock().unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].action, "sign_in");
        assert_eq!(events[0].principal, "dash");
        assert_eq!(events[0].outcome, Outcome::Success);
    }

    #[tokio::test]
    async fn a_wrong_token_is_401_without_a_cookie_and_audited_without_the_token() {
        let f = fixture(true);
        let wrong = "tht_not_a_token_in_force";
        let (status, headers, body) = send(
            &f,
            req(
                Method::POST,
                SESSION_PATH,
                &[JSON],
                &json_post(wrong),
                false,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(headers.get(header::SET_COOKIE).is_none());
        assert!(headers.contains_key(header::WWW_AUTHENTICATE));
        assert_eq!(body["error"]["message"], INVALID_TOKEN);
        assert!(!body.to_string().contains(wrong));
        let events = f.trail.0.lock().unwrap().clone();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(
            (e.action.as_str(), e.principal.as_str(), e.outcome),
            ("sign_in", "unknown", Outcome::Denied)
        );
        assert!(!serde_json::to_string(e).unwrap().contains(wrong));

        // A body that is not the expected JSON: 400, and nothing of it echoed.
        for (ct, bad) in [
            ("application/json", r#"{"token": 12345678901}"#.to_owned()),
            (
                "application/json",
                r#"{"tok": "tht_secret_typo"}"#.to_owned(),
            ),
            ("application/json", "x".repeat(SIGN_IN_BODY_BYTES + 10)),
        ] {
            let (status, _, body) = send(
                &f,
                req(
                    Method::POST,
                    SESSION_PATH,
                    &[("content-type", ct)],
                    &bad,
                    false,
                ),
            )
            .await;
            assert!(status.is_client_error(), "{status}");
            assert!(!body.to_string().contains("12345678901"), "{body}");
            assert!(!body.to_string().contains("tht_secret_typo"), "{body}");
        }
        // A form post (what the sign-in page sends without JavaScript, or another site):
        // refused as cross-site before it is read.
        let (status, _, _) = send(
            &f,
            req(
                Method::POST,
                SESSION_PATH,
                &[("content-type", "application/x-www-form-urlencoded")],
                &format!("token={VIEWER}"),
                false,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _, _) = send(
            &f,
            req(
                Method::POST,
                SESSION_PATH,
                &[JSON, ("origin", "http://evil.example")],
                &json_post(VIEWER),
                false,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "login CSRF");
        // A role without the dashboard cannot sign in to it.
        let (status, headers, _) = send(
            &f,
            req(
                Method::POST,
                SESSION_PATH,
                &[JSON],
                &json_post(AGENT),
                false,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(headers.get(header::SET_COOKIE).is_none());
        assert!(f.state.access.sessions().is_empty());
    }

    #[tokio::test]
    async fn the_cookie_authenticates_pages_and_changes_need_its_csrf_token() {
        let f = fixture(true);
        // Not signed in: a page goes to the sign-in page.
        let (status, headers, _) = send(&f, req(Method::GET, "/explore?x=1", &[], "", false)).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers[header::LOCATION], "/signin?next=/explore%3Fx%3D1");

        let (cookie, csrf) = sign_in(&f, VIEWER).await;
        let c = ("cookie", cookie.as_str());
        let (status, headers, _) = send(&f, req(Method::GET, "/explore", &[c], "", false)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        // Who am I: the session's principal, its CSRF token and what it may do.
        let (status, _, me) = send(&f, req(Method::GET, SESSION_PATH, &[c], "", false)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(me["auth_enabled"], true);
        assert_eq!(me["principal"], "dash");
        assert_eq!(me["role"], "viewer");
        assert_eq!(me["csrf_token"], csrf.as_str());
        assert_eq!(me["can"]["set_alarm_state"], false);
        // A viewer may not change states, CSRF token or not.
        let put = |headers: &[(&str, &str)]| {
            req(
                Method::PUT,
                "/api/v1/alarms/a/state",
                headers,
                r#"{"state_value": "ALARM", "state_reason": "test"}"#,
                false,
            )
        };
        let (status, _, _) = send(&f, put(&[c, JSON, (CSRF_HEADER, &csrf)])).await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        // An operator: without the CSRF header (or with another) 403; with it, the request
        // passes authentication and permission (and finds no alarm engine here: 404).
        let (cookie, csrf) = sign_in(&f, OPERATOR).await;
        let c = ("cookie", cookie.as_str());
        for headers in [vec![c, JSON], vec![c, JSON, (CSRF_HEADER, "0123")]] {
            let (status, _, body) = send(&f, put(&headers)).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains(CSRF_HEADER)
            );
        }
        let (status, _, body) = send(&f, put(&[c, JSON, (CSRF_HEADER, &csrf)])).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let reload =
            |headers: &[(&str, &str)]| req(Method::POST, "/api/v1/reload", headers, "", false);
        let (status, _, _) = send(&f, reload(&[c])).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _, _) = send(&f, reload(&[c, (CSRF_HEADER, &csrf)])).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // A bearer token needs no CSRF token (no browser sends it by itself).
        let bearer = format!("Bearer {OPERATOR}");
        let (status, _, _) = send(&f, reload(&[("authorization", &bearer)])).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, me) = send(
            &f,
            req(
                Method::GET,
                SESSION_PATH,
                &[("authorization", &bearer)],
                "",
                false,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(me["principal"], "ops");
        assert_eq!(me["csrf_token"], Value::Null);
        assert_eq!(
            me["can"],
            json!({"reload": true, "set_alarm_state": true, "backup": false})
        );

        // The session expires.
        f.clock.advance_millis(TTL_MS);
        let (status, _, _) = send(&f, req(Method::GET, SESSION_PATH, &[c], "", false)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, _) = send(&f, req(Method::GET, "/", &[c], "", false)).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
    }

    #[tokio::test]
    async fn signing_out_needs_the_csrf_token_and_forgets_the_session() {
        let f = fixture(true);
        let (cookie, csrf) = sign_in(&f, VIEWER).await;
        let c = ("cookie", cookie.as_str());
        let (status, _, _) = send(&f, req(Method::DELETE, SESSION_PATH, &[c], "", false)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, headers, body) = send_direct(
            &f,
            req(
                Method::DELETE,
                SESSION_PATH,
                &[c, (CSRF_HEADER, &csrf)],
                "",
                true,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, json!({"signed_out": true}));
        assert_eq!(
            headers[header::SET_COOKIE],
            "thermostat_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure"
        );
        assert!(f.state.access.sessions().is_empty());
        let (status, _, _) = send(&f, req(Method::GET, "/", &[c], "", false)).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        let (status, _, _) = send(&f, req(Method::GET, SESSION_PATH, &[c], "", false)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let actions: Vec<String> = f
            .trail
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|e| format!("{} {} {:?}", e.action, e.principal, e.outcome))
            .collect();
        assert_eq!(actions, ["sign_in dash Success", "sign_out dash Success"]);
    }

    #[tokio::test]
    async fn the_sign_in_page_and_auth_off() {
        let f = fixture(true);
        let (status, headers, _) =
            send(&f, req(Method::GET, "/signin?next=/x", &[], "", false)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY));
        // Signed in already: straight to `next` (when it is a page of this server).
        let (cookie, _) = sign_in(&f, VIEWER).await;
        for (next, want) in [
            ("/alarms/x", "/alarms/x"),
            ("//evil.example", "/"),
            ("/%5Cevil.example", "/"),
            ("https://evil.example/", "/"),
        ] {
            let (status, headers, _) = send(
                &f,
                req(
                    Method::GET,
                    &format!("/signin?next={next}"),
                    &[("cookie", &cookie)],
                    "",
                    false,
                ),
            )
            .await;
            assert_eq!(status, StatusCode::SEE_OTHER, "{next}");
            assert_eq!(headers[header::LOCATION], want, "{next}");
        }

        let open = fixture(false);
        let (status, headers, _) = send(&open, req(Method::GET, "/signin", &[], "", false)).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers[header::LOCATION], "/");
        let (status, _, me) = send(&open, req(Method::GET, SESSION_PATH, &[], "", false)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            me,
            json!({
                "auth_enabled": false, "principal": "anonymous", "role": "admin",
                "csrf_token": null, "expires": null,
                "can": {"reload": true, "set_alarm_state": true, "backup": true},
            })
        );
        let (status, _, _) = send(
            &open,
            req(
                Method::POST,
                SESSION_PATH,
                &[JSON],
                &json_post(VIEWER),
                false,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = send(&open, req(Method::DELETE, SESSION_PATH, &[], "", false)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // Auth on, nobody signed in: who-am-I is a 401 an API client understands.
        let (status, headers, _) = send(&f, req(Method::GET, SESSION_PATH, &[], "", false)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(headers.contains_key(header::WWW_AUTHENTICATE));
    }

    #[test]
    fn only_local_paths_are_followed() {
        for (next, want) in [
            (Some("/alarms/a?range=1h"), "/alarms/a?range=1h"),
            (Some("/"), "/"),
            (None, "/"),
            (Some(""), "/"),
            (Some("//evil.example/x"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("http://evil.example"), "/"),
            (Some("javascript:alert(1)"), "/"),
            (Some("/a\nb"), "/"),
        ] {
            assert_eq!(safe_next(next), want, "{next:?}");
        }
    }
}
