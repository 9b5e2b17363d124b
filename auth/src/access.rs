//! [`Access`]: the tokens in force (swapped whole on reload), the dashboard's sessions, and
//! the decisions both servers ask for: who is this, and may they do that.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwapOption;

use crate::role::Permission;
use crate::session::Sessions;
use crate::telemetry::AuthTelemetry;
use crate::token::{Principal, Tokens};

/// Denials logged per second at most; the rest are counted and summed up in the next line.
pub const DENIALS_LOGGED_PER_SECOND: u32 = 10;

/// Why a request has no principal: HTTP 401 / gRPC UNAUTHENTICATED.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unauthenticated {
    /// No credentials at all.
    #[error("authentication required: send the header `authorization: Bearer <token>`")]
    Missing,
    /// An `authorization` header that is not `Bearer <token>`.
    #[error("the authorization header must be `Bearer <token>`")]
    Malformed,
    /// A token that is not in force.
    #[error("the token is not valid")]
    Unknown,
}

impl Unauthenticated {
    /// Its label in `thermostat_auth_unauthenticated_total{reason}`.
    pub fn label(self) -> &'static str {
        match self {
            Unauthenticated::Missing => "missing",
            Unauthenticated::Malformed => "malformed",
            Unauthenticated::Unknown => "unknown",
        }
    }
}

/// Why a known principal may not: HTTP 403 / gRPC PERMISSION_DENIED. The message names the
/// permission that is missing, never the token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The role does not grant the permission.
    #[error("role {role} may not {} (needs {})", permission.describe(), permission.needs())]
    Role {
        /// The principal's role.
        role: crate::Role,
        /// What was asked.
        permission: Permission,
    },
    /// The namespace is outside the token's scope.
    #[error("this token may not {} in namespace {namespace:?} (its namespaces: {allowed})", permission.describe())]
    Namespace {
        /// What was asked.
        permission: Permission,
        /// The namespace, shortened to 256 characters.
        namespace: String,
        /// The token's scope.
        allowed: String,
    },
}

impl Denied {
    /// The permission that was missing.
    pub fn permission(&self) -> Permission {
        match self {
            Denied::Role { permission, .. } | Denied::Namespace { permission, .. } => *permission,
        }
    }
}

/// The credentials a request carries.
#[derive(Clone, Copy, Debug, Default)]
pub struct Credentials<'a> {
    /// The `authorization` header's value, if any.
    pub authorization: Option<&'a str>,
    /// The Common Name of the connection's verified client certificate, if any.
    pub client_subject: Option<&'a str>,
}

#[derive(Debug, Default)]
struct DenialLog {
    second: i64,
    logged: u32,
    suppressed: u64,
}

/// Who may do what, now. Shared by the gRPC and HTTP servers; [`Access::replace`] swaps
/// the tokens on reload.
#[derive(Debug)]
pub struct Access {
    /// `None`: auth is off (every listener on loopback).
    tokens: ArcSwapOption<Tokens>,
    public_metrics: AtomicBool,
    secure_cookies: AtomicBool,
    sessions: Sessions,
    telemetry: AuthTelemetry,
    denials: Mutex<DenialLog>,
}

impl Access {
    /// Access with `tokens` in force (`None`: auth off, everyone is [`Principal::anonymous`]).
    pub fn new(
        tokens: Option<Tokens>,
        public_metrics: bool,
        session_ttl_ms: i64,
        telemetry: AuthTelemetry,
    ) -> Self {
        Access {
            tokens: ArcSwapOption::new(tokens.map(Arc::new)),
            public_metrics: AtomicBool::new(public_metrics),
            secure_cookies: AtomicBool::new(false),
            sessions: Sessions::new(session_ttl_ms),
            telemetry,
            denials: Mutex::default(),
        }
    }

    /// Auth off: everyone may do everything.
    pub fn open() -> Self {
        Access::new(
            None,
            false,
            crate::session::DEFAULT_SESSION_TTL_MS,
            AuthTelemetry::default(),
        )
    }

    /// Whether tokens are required.
    pub fn is_enforced(&self) -> bool {
        self.tokens.load().is_some()
    }

    /// Whether `/metrics` is served without a token.
    pub fn public_metrics(&self) -> bool {
        self.public_metrics.load(Ordering::Acquire)
    }

    /// Whether the session cookie is `Secure` even without TLS (`auth.secure_cookies`).
    pub fn secure_cookies(&self) -> bool {
        self.secure_cookies.load(Ordering::Acquire)
    }

    /// Sets [`Access::secure_cookies`] (at start and on reload).
    pub fn set_secure_cookies(&self, secure: bool) {
        self.secure_cookies.store(secure, Ordering::Release);
    }

    /// The tokens in force (`None`: auth off).
    pub fn tokens(&self) -> Option<Arc<Tokens>> {
        self.tokens.load_full()
    }

    /// Puts `tokens` in force (a reload): requests from now on use them, and sessions whose
    /// token is gone are revoked. Returns the sessions revoked.
    pub fn replace(&self, tokens: Option<Tokens>, public_metrics: bool) -> usize {
        let revoked = tokens
            .as_ref()
            .map_or(0, |t| self.sessions.revoke_missing(t));
        self.tokens.store(tokens.map(Arc::new));
        self.public_metrics.store(public_metrics, Ordering::Release);
        revoked
    }

    /// The dashboard's sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// The counters of refusals.
    pub fn telemetry(&self) -> &AuthTelemetry {
        &self.telemetry
    }

    /// Who the credentials stand for: the bearer token's entry, else the client
    /// certificate's; with auth off, [`Principal::anonymous`]. A refusal is counted.
    ///
    /// # Errors
    /// No credentials, a malformed header, or a token not in force.
    pub fn authenticate(
        &self,
        credentials: Credentials<'_>,
    ) -> Result<Arc<Principal>, Unauthenticated> {
        let Some(tokens) = self.tokens.load_full() else {
            return Ok(Arc::new(Principal::anonymous()));
        };
        let result = match credentials.authorization {
            Some(header) => match bearer(header) {
                Some(token) => tokens.authenticate(token).ok_or(Unauthenticated::Unknown),
                None => Err(Unauthenticated::Malformed),
            },
            None => credentials
                .client_subject
                .and_then(|s| tokens.by_client_subject(s))
                .ok_or(Unauthenticated::Missing),
        };
        if let Err(why) = result {
            self.telemetry.unauthenticated(why.label());
        }
        result
    }

    /// Counts a refusal made elsewhere (a failed dashboard sign-in).
    pub fn count_unauthenticated(&self, why: Unauthenticated) {
        self.telemetry.unauthenticated(why.label());
    }

    /// Whether `principal` may do `permission`. A refusal is counted.
    ///
    /// # Errors
    /// Its role does not grant it.
    pub fn authorize(&self, principal: &Principal, permission: Permission) -> Result<(), Denied> {
        if principal.role.allows(permission) {
            return Ok(());
        }
        self.telemetry.denied(principal.role, permission);
        Err(Denied::Role {
            role: principal.role,
            permission,
        })
    }

    /// Whether `principal` may do `permission` in `namespace`. A refusal is counted.
    ///
    /// # Errors
    /// Its role does not grant it, or the namespace is outside its scope.
    pub fn authorize_namespace(
        &self,
        principal: &Principal,
        permission: Permission,
        namespace: &str,
    ) -> Result<(), Denied> {
        self.authorize(principal, permission)?;
        match &principal.namespaces {
            Some(scope) if !scope.allows(namespace) => {
                self.telemetry.denied(principal.role, permission);
                Err(Denied::Namespace {
                    permission,
                    namespace: namespace.chars().take(256).collect(),
                    allowed: scope.to_string(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Whether a refusal at `now_ms` should be logged: at most
    /// [`DENIALS_LOGGED_PER_SECOND`] a second. `Some(n)`: log it, and say that `n` were not
    /// logged since the last one.
    pub fn log_denial(&self, now_ms: i64) -> Option<u64> {
        let mut log = self.denials.lock().unwrap_or_else(|p| p.into_inner());
        let second = now_ms.div_euclid(1000);
        if second != log.second {
            log.second = second;
            log.logged = 0;
        }
        if log.logged < DENIALS_LOGGED_PER_SECOND {
            log.logged += 1;
            Some(std::mem::take(&mut log.suppressed))
        } else {
            log.suppressed += 1;
            None
        }
    }
}

/// The token of an `authorization: Bearer <token>` value (the scheme in any case).
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
        .then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::Role;
    use crate::token::{TokenEntry, new_token, yaml_entry};

    fn access(yaml: &str) -> Access {
        let entries: Vec<TokenEntry> = serde_yaml_ng::from_str(yaml).unwrap();
        let tokens = Tokens::resolve(&entries, &|_| None, &|_| Err(String::new())).unwrap();
        Access::new(Some(tokens), false, 1000, AuthTelemetry::default())
    }

    #[test]
    fn open_access_is_an_anonymous_admin() {
        let a = Access::open();
        assert!(!a.is_enforced());
        let p = a.authenticate(Credentials::default()).unwrap();
        assert_eq!((p.name.as_str(), p.role), ("anonymous", Role::Admin));
    }

    #[test]
    fn bearer_tokens_are_checked_and_denials_name_the_permission() {
        let t = new_token();
        let a = access(&yaml_entry("dash", Role::Viewer, &t));
        let header = format!("Bearer {t}");
        let p = a
            .authenticate(Credentials {
                authorization: Some(&header),
                client_subject: None,
            })
            .unwrap();
        let e = a.authorize(&p, Permission::PushMetrics).unwrap_err();
        assert_eq!(
            e.to_string(),
            "role viewer may not push metrics (needs agent)"
        );
        assert!(a.authorize(&p, Permission::ReadAlarms).is_ok());
        let no = |h: Option<&str>| {
            a.authenticate(Credentials {
                authorization: h,
                client_subject: None,
            })
        };
        assert_eq!(no(None), Err(Unauthenticated::Missing));
        assert_eq!(no(Some("Basic abc")), Err(Unauthenticated::Malformed));
        assert_eq!(no(Some("Bearer nope")), Err(Unauthenticated::Unknown));
        assert!(no(Some(&format!("bearer  {t} "))).is_ok());
    }

    #[test]
    fn namespace_scopes_limit_pushes() {
        let t = new_token();
        let yaml = format!(
            "{}  namespaces: [Web, 'App/*']\n",
            yaml_entry("ci", Role::Agent, &t)
        );
        let a = access(&yaml);
        let p = a.tokens().unwrap().authenticate(&t).unwrap();
        assert!(
            a.authorize_namespace(&p, Permission::PushMetrics, "App/x")
                .is_ok()
        );
        let e = a
            .authorize_namespace(&p, Permission::PushMetrics, "Other")
            .unwrap_err();
        assert!(
            e.to_string().contains("\"Other\"") && e.to_string().contains("Web, App/*"),
            "{e}"
        );
        assert!(!e.to_string().contains(&t));
    }

    #[test]
    fn replacing_tokens_rotates_them() {
        let (old, new) = (new_token(), new_token());
        let a = access(&yaml_entry("ops", Role::Operator, &old));
        let entries: Vec<TokenEntry> =
            serde_yaml_ng::from_str(&yaml_entry("ops", Role::Operator, &new)).unwrap();
        a.replace(
            Some(Tokens::resolve(&entries, &|_| None, &|_| Err(String::new())).unwrap()),
            true,
        );
        let auth = |t: &str| {
            let h = format!("Bearer {t}");
            a.authenticate(Credentials {
                authorization: Some(&h),
                client_subject: None,
            })
            .is_ok()
        };
        assert!(!auth(&old));
        assert!(auth(&new));
        assert!(a.public_metrics());
    }

    #[test]
    fn denial_logs_are_rate_limited() {
        let a = Access::open();
        for _ in 0..DENIALS_LOGGED_PER_SECOND {
            assert_eq!(a.log_denial(5_000), Some(0));
        }
        assert_eq!(a.log_denial(5_999), None);
        assert_eq!(a.log_denial(5_999), None);
        assert_eq!(a.log_denial(6_000), Some(2));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::role::Role;
    use crate::token::{TokenEntry, new_token, yaml_entry};

    proptest! {
        /// Any header value, however long or odd, is a clean refusal or the one token in
        /// force: never a panic, never another principal.
        #[test]
        fn any_authorization_header_is_handled(header in ".{0,300}", long in 0usize..20_000) {
            let t = new_token();
            let entries: Vec<TokenEntry> = serde_yaml_ng::from_str(&yaml_entry("a", Role::Agent, &t)).unwrap();
            let tokens = Tokens::resolve(&entries, &|_| None, &|_| Err(String::new())).unwrap();
            let access = Access::new(Some(tokens), false, 1000, AuthTelemetry::default());
            let padded = format!("Bearer {}{}", header, "x".repeat(long));
            for h in [header.as_str(), padded.as_str()] {
                let got = access.authenticate(Credentials { authorization: Some(h), client_subject: Some(h) });
                prop_assert!(got.is_err() || bearer(h) == Some(t.as_str()));
            }
        }

        /// Namespace patterns never panic, and a pattern allows exactly its name or prefix.
        #[test]
        fn namespace_patterns_match_as_documented(pattern in "[A-Za-z/*]{1,12}", ns in "[A-Za-z/]{0,12}") {
            match crate::Namespaces::new(vec![pattern.clone()]) {
                Ok(scope) => {
                    let want = match pattern.strip_suffix('*') {
                        Some(prefix) => ns.starts_with(prefix),
                        None => ns == pattern,
                    };
                    prop_assert_eq!(scope.allows(&ns), want);
                }
                Err(e) => prop_assert!(pattern[..pattern.len() - 1].contains('*'), "{}", e),
            }
        }
    }
}
