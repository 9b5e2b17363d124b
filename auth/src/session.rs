//! Dashboard sessions: made at sign-in with a token, kept on the server, expiring, and
//! revoked as soon as their token is no longer in force.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::token::{Principal, Tokens};

/// Sessions held at most; beyond it, signing in evicts the session that expires first.
pub const MAX_SESSIONS: usize = 10_000;
/// How long a session lasts unless `auth.session_ttl_seconds` says otherwise: 12 hours.
pub const DEFAULT_SESSION_TTL_MS: i64 = 12 * 3600 * 1000;

/// A session made at sign-in: what the browser gets.
#[derive(Clone)]
pub struct NewSession {
    /// The cookie's value.
    pub id: String,
    /// The token state-changing requests must send in `X-CSRF-Token`.
    pub csrf: String,
    /// When it expires, in Unix milliseconds.
    pub expires_ms: i64,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("expires_ms", &self.expires_ms)
            .finish_non_exhaustive()
    }
}

/// A live session: who it is, and its CSRF token.
#[derive(Clone)]
pub struct Session {
    /// The principal (as the token's entry is now).
    pub principal: Arc<Principal>,
    csrf: String,
    /// When it expires, in Unix milliseconds.
    pub expires_ms: i64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("principal", &self.principal.name)
            .field("expires_ms", &self.expires_ms)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Whether `presented` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        presented.len() == self.csrf.len()
            && bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes()))
    }

    /// The CSRF token, for the page that asks who is signed in.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }
}

struct Entry {
    token_digest: [u8; 32],
    csrf: String,
    expires_ms: i64,
}

/// The sessions of the dashboard, keyed by the digest of their id (the ids themselves are
/// kept nowhere on the server).
pub struct Sessions {
    ttl_ms: i64,
    map: Mutex<HashMap<[u8; 32], Entry>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("ttl_ms", &self.ttl_ms)
            .finish_non_exhaustive()
    }
}

fn random_hex() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Sessions lasting `ttl_ms`.
    pub fn new(ttl_ms: i64) -> Self {
        Sessions {
            ttl_ms: ttl_ms.max(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Signs in with `token`: a new session if the token is in force.
    pub fn sign_in(
        &self,
        tokens: &Tokens,
        token: &str,
        now_ms: i64,
    ) -> Option<(NewSession, Arc<Principal>)> {
        if token.is_empty() || token.len() > crate::token::MAX_TOKEN_BYTES {
            return None;
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let principal = tokens.by_digest(&digest)?;
        let (id, csrf) = (random_hex(), random_hex());
        let expires_ms = now_ms.saturating_add(self.ttl_ms);
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, e| e.expires_ms > now_ms);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.expires_ms)
                .map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(
            key(&id),
            Entry {
                token_digest: digest,
                csrf: csrf.clone(),
                expires_ms,
            },
        );
        Some((
            NewSession {
                id,
                csrf,
                expires_ms,
            },
            principal,
        ))
    }

    /// The live session `id`, with the principal its token stands for now; `None` when it
    /// is unknown, expired, or its token was removed or replaced (it is then forgotten).
    pub fn get(&self, tokens: &Tokens, id: &str, now_ms: i64) -> Option<Session> {
        if id.is_empty() || id.len() > 128 {
            return None;
        }
        let k = key(id);
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.get(&k)?;
        let principal = (entry.expires_ms > now_ms)
            .then(|| tokens.by_digest(&entry.token_digest))
            .flatten();
        match principal {
            Some(principal) => Some(Session {
                principal,
                csrf: entry.csrf.clone(),
                expires_ms: entry.expires_ms,
            }),
            None => {
                map.remove(&k);
                None
            }
        }
    }

    /// Signs out: forgets session `id`.
    pub fn sign_out(&self, id: &str) -> bool {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&key(id)).is_some()
    }

    /// Forgets the sessions whose token is no longer in `tokens` (after a reload).
    pub fn revoke_missing(&self, tokens: &Tokens) -> usize {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let before = map.len();
        map.retain(|_, e| tokens.by_digest(&e.token_digest).is_some());
        before - map.len()
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::Role;
    use crate::token::{TokenEntry, new_token, yaml_entry};

    fn tokens(list: &[(&str, Role, &str)]) -> Tokens {
        let yaml: String = list.iter().map(|(n, r, t)| yaml_entry(n, *r, t)).collect();
        let entries: Vec<TokenEntry> = serde_yaml_ng::from_str(&yaml).unwrap();
        Tokens::resolve(&entries, &|_| None, &|_| Err(String::new())).unwrap()
    }

    #[test]
    fn a_session_lives_until_it_expires() {
        let t = new_token();
        let tokens = tokens(&[("v", Role::Viewer, &t)]);
        let sessions = Sessions::new(1000);
        assert!(sessions.sign_in(&tokens, "wrong", 0).is_none());
        let (s, p) = sessions.sign_in(&tokens, &t, 0).unwrap();
        assert_eq!(p.name, "v");
        let live = sessions.get(&tokens, &s.id, 999).unwrap();
        assert!(live.csrf_matches(&s.csrf));
        assert!(!live.csrf_matches("x"));
        assert!(sessions.get(&tokens, &s.id, 1000).is_none());
        assert!(sessions.is_empty(), "an expired session is forgotten");
    }

    #[test]
    fn removing_or_rotating_the_token_revokes_its_sessions() {
        let (a, b) = (new_token(), new_token());
        let before = tokens(&[("v", Role::Viewer, &a)]);
        let sessions = Sessions::new(DEFAULT_SESSION_TTL_MS);
        let (s, _) = sessions.sign_in(&before, &a, 0).unwrap();
        let rotated = tokens(&[("v", Role::Viewer, &b)]);
        assert!(sessions.get(&before, &s.id, 1).is_some());
        assert_eq!(sessions.revoke_missing(&rotated), 1);
        assert!(sessions.get(&before, &s.id, 1).is_none());
    }

    #[test]
    fn sign_out_forgets_and_the_store_is_bounded() {
        let t = new_token();
        let tokens = tokens(&[("v", Role::Viewer, &t)]);
        let sessions = Sessions::new(DEFAULT_SESSION_TTL_MS);
        let (s, _) = sessions.sign_in(&tokens, &t, 0).unwrap();
        assert!(sessions.sign_out(&s.id));
        assert!(sessions.get(&tokens, &s.id, 1).is_none());
        for i in 0..MAX_SESSIONS + 5 {
            sessions.sign_in(&tokens, &t, i as i64).unwrap();
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
    }
}
