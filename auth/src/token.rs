//! Tokens: their entries in the settings file (`auth.tokens`), the principals they stand
//! for, and checking a presented token by its digest.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::error::Error;
use crate::namespace::Namespaces;
use crate::role::Role;

/// A presented token longer than this is refused unread (ours are 68 bytes).
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Token entries in `auth.tokens` at most.
pub const MAX_TOKENS: usize = 10_000;
/// The prefix of the tokens `thermostat token new` makes (so that secret scanners find them).
pub const TOKEN_PREFIX: &str = "tht_";

/// The `auth` section of the settings file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// The tokens; auth is on whenever this is set.
    #[serde(default)]
    pub tokens: Option<Vec<TokenEntry>>,
    /// Serve `/metrics` without a token.
    #[serde(default)]
    pub public_metrics: bool,
    /// Seconds a dashboard session lasts (default 12 hours).
    #[serde(default)]
    pub session_ttl_seconds: Option<u64>,
    /// Mark the session cookie `Secure` even on connections without TLS: for a server behind
    /// a proxy that terminates TLS (without it, the cookie is `Secure` exactly when the
    /// connection is TLS).
    #[serde(default)]
    pub secure_cookies: bool,
}

/// Where a token's secret comes from: never the settings file in plain text.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The SHA-256 digest of the token.
    Sha256([u8; 32]),
    /// A file holding the token (one trailing newline is ignored).
    File(PathBuf),
    /// An environment variable holding the token.
    Env(String),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Sha256(_) => f.write_str("Sha256(..)"),
            SecretSource::File(p) => f.debug_tuple("File").field(p).finish(),
            SecretSource::Env(v) => f.debug_tuple("Env").field(v).finish(),
        }
    }
}

/// One entry of `auth.tokens`, checked as it is read (so that errors carry its position).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawEntry")]
pub struct TokenEntry {
    /// The principal's name (in logs and the audit trail).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The namespaces its pushes and reads are limited to (`None`: all).
    pub namespaces: Option<Namespaces>,
    /// Where its secret comes from (`None`: only a client certificate).
    pub secret: Option<SecretSource>,
    /// The Common Name of a verified client certificate that stands for this entry (mTLS).
    pub client_subject: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: String,
    role: Role,
    #[serde(default)]
    namespaces: Option<Vec<String>>,
    #[serde(default)]
    token_sha256: Option<String>,
    #[serde(default)]
    token_file: Option<PathBuf>,
    #[serde(default)]
    token_env: Option<String>,
    #[serde(default)]
    token: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    client_subject: Option<String>,
}

impl TryFrom<RawEntry> for TokenEntry {
    type Error = String;

    fn try_from(raw: RawEntry) -> Result<Self, String> {
        let name = raw.name;
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
            return Err(
                "auth.tokens: name must be 1 to 128 characters, none a control character".into(),
            );
        }
        if raw.token.is_some() {
            return Err(format!(
                "auth.tokens {name:?}: `token` holds the secret in plain text, which is refused; give \
                 token_sha256 (its SHA-256 digest: `thermostat token new` prints one), token_file or token_env"
            ));
        }
        let mut sources = Vec::new();
        if let Some(hex) = raw.token_sha256 {
            sources
                .push(SecretSource::Sha256(parse_digest(&hex).map_err(|e| {
                    format!("auth.tokens {name:?}: token_sha256 {e}")
                })?));
        }
        if let Some(path) = raw.token_file {
            sources.push(SecretSource::File(path));
        }
        if let Some(var) = raw.token_env {
            if var.is_empty() || var.contains('=') || var.contains('\0') {
                return Err(format!(
                    "auth.tokens {name:?}: token_env must name an environment variable"
                ));
            }
            sources.push(SecretSource::Env(var));
        }
        if sources.len() > 1 {
            return Err(format!(
                "auth.tokens {name:?}: give one of token_sha256, token_file and token_env, not {}",
                sources.len()
            ));
        }
        let client_subject = raw.client_subject.filter(|s| !s.is_empty());
        if sources.is_empty() && client_subject.is_none() {
            return Err(format!(
                "auth.tokens {name:?}: needs a secret: token_sha256, token_file or token_env (or \
                 client_subject for a client certificate)"
            ));
        }
        let namespaces = raw
            .namespaces
            .map(|list| Namespaces::new(list).map_err(|e| format!("auth.tokens {name:?}: {e}")))
            .transpose()?;
        Ok(TokenEntry {
            name,
            role: raw.role,
            namespaces,
            secret: sources.pop(),
            client_subject,
        })
    }
}

fn parse_digest(hex: &str) -> Result<[u8; 32], String> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "must be 64 hexadecimal digits (a SHA-256 digest), got {} characters",
            hex.len()
        ));
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// The SHA-256 digest of a token, as `token_sha256` spells it.
pub fn digest_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Who made a request: a token entry (or, with auth off, everyone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The entry's name (`anonymous` with auth off).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The namespaces it is limited to.
    pub namespaces: Option<Namespaces>,
}

impl Principal {
    /// Everyone, when auth is off: an admin named `anonymous`.
    pub fn anonymous() -> Self {
        Principal {
            name: "anonymous".into(),
            role: Role::Admin,
            namespaces: None,
        }
    }

    /// Whether it may use `namespace`.
    pub fn may_use_namespace(&self, namespace: &str) -> bool {
        self.namespaces.as_ref().is_none_or(|n| n.allows(namespace))
    }
}

/// The tokens in force: digests and the principals they stand for.
#[derive(Clone, Default)]
pub struct Tokens {
    /// Each digest's index into `principals`.
    digests: HashMap<[u8; 32], usize>,
    principals: Vec<Arc<Principal>>,
    subjects: Vec<(String, usize)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names and roles only: never a digest.
        f.debug_list()
            .entries(self.principals.iter().map(|p| (&p.name, p.role)))
            .finish()
    }
}

impl Tokens {
    /// Resolves the entries' secrets: `env` reads an environment variable, `read` a file
    /// (both supplied by the caller, so that this crate does no IO).
    ///
    /// # Errors
    /// An unset variable, an unreadable or empty file, two entries with the same name, the
    /// same token or the same client subject, or too many entries; named by the entry.
    pub fn resolve(
        entries: &[TokenEntry],
        env: &dyn Fn(&str) -> Option<String>,
        read: &dyn Fn(&std::path::Path) -> Result<String, String>,
    ) -> Result<Tokens, Error> {
        if entries.is_empty() {
            return Err(Error::NoTokens);
        }
        if entries.len() > MAX_TOKENS {
            return Err(Error::TooManyTokens {
                count: entries.len(),
                max: MAX_TOKENS,
            });
        }
        let mut tokens = Tokens::default();
        for entry in entries {
            if tokens.principals.iter().any(|p| p.name == entry.name) {
                return Err(Error::Duplicate {
                    name: entry.name.clone(),
                    what: "name",
                });
            }
            let index = tokens.principals.len();
            tokens.principals.push(Arc::new(Principal {
                name: entry.name.clone(),
                role: entry.role,
                namespaces: entry.namespaces.clone(),
            }));
            let digest = match &entry.secret {
                None => None,
                Some(SecretSource::Sha256(d)) => Some(*d),
                Some(SecretSource::Env(var)) => {
                    let value = env(var).ok_or_else(|| Error::MissingEnv {
                        name: entry.name.clone(),
                        var: var.clone(),
                    })?;
                    Some(secret_digest(&entry.name, &value)?)
                }
                Some(SecretSource::File(path)) => {
                    let text = read(path).map_err(|message| Error::TokenFile {
                        name: entry.name.clone(),
                        path: path.clone(),
                        message,
                    })?;
                    let text = text
                        .strip_suffix('\n')
                        .map(|t| t.strip_suffix('\r').unwrap_or(t))
                        .unwrap_or(&text);
                    Some(secret_digest(&entry.name, text)?)
                }
            };
            if let Some(digest) = digest {
                if tokens.digests.contains_key(&digest) {
                    return Err(Error::Duplicate {
                        name: entry.name.clone(),
                        what: "token",
                    });
                }
                tokens.digests.insert(digest, index);
            }
            if let Some(subject) = &entry.client_subject {
                if tokens.subjects.iter().any(|(s, _)| s == subject) {
                    return Err(Error::Duplicate {
                        name: entry.name.clone(),
                        what: "client_subject",
                    });
                }
                tokens.subjects.push((subject.clone(), index));
            }
        }
        Ok(tokens)
    }

    /// The principal whose token this is: the token's SHA-256 digest, looked up among the
    /// digests in force. The lookup's time depends only on the presented token's digest, and a
    /// guess's digest says nothing of the digests in force (SHA-256 is preimage resistant), so
    /// timing leaks nothing about a token in force; the final equality is checked in constant
    /// time all the same. The cost does not grow with the number of tokens, so an
    /// unauthenticated caller cannot make a server with many tokens work harder.
    pub fn authenticate(&self, token: &str) -> Option<Arc<Principal>> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.by_digest(&presented)
    }

    /// The principal of a token digest (as [`Tokens::authenticate`]).
    pub fn by_digest(&self, digest: &[u8; 32]) -> Option<Arc<Principal>> {
        let (stored, &i) = self.digests.get_key_value(digest)?;
        bool::from(stored.ct_eq(digest)).then(|| Arc::clone(&self.principals[i]))
    }

    /// The principal a verified client certificate's Common Name stands for.
    pub fn by_client_subject(&self, subject: &str) -> Option<Arc<Principal>> {
        self.subjects
            .iter()
            .find(|(s, _)| s == subject)
            .map(|(_, i)| Arc::clone(&self.principals[*i]))
    }

    /// The principal named `name`.
    pub fn by_name(&self, name: &str) -> Option<Arc<Principal>> {
        self.principals.iter().find(|p| p.name == name).cloned()
    }

    /// The principals in force, in the settings file's order.
    pub fn principals(&self) -> impl Iterator<Item = &Arc<Principal>> {
        self.principals.iter()
    }

    /// The entries in force.
    pub fn len(&self) -> usize {
        self.principals.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.principals.is_empty()
    }
}

fn secret_digest(name: &str, value: &str) -> Result<[u8; 32], Error> {
    if value.is_empty() {
        return Err(Error::EmptyToken { name: name.into() });
    }
    if value.len() > MAX_TOKEN_BYTES {
        return Err(Error::LongToken {
            name: name.into(),
            max: MAX_TOKEN_BYTES,
        });
    }
    Ok(Sha256::digest(value.as_bytes()).into())
}

/// A new random token: [`TOKEN_PREFIX`] and 256 random bits in hexadecimal.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    let mut token = String::with_capacity(TOKEN_PREFIX.len() + 64);
    token.push_str(TOKEN_PREFIX);
    for b in bytes {
        token.push_str(&format!("{b:02x}"));
    }
    token
}

/// The `auth.tokens` entry for `token` (by its digest), as YAML to paste into the settings file.
pub fn yaml_entry(name: &str, role: Role, token: &str) -> String {
    let name = serde_json::to_string(name).unwrap_or_else(|_| "\"token\"".into());
    format!(
        "- name: {name}\n  role: {role}\n  token_sha256: {}\n",
        digest_hex(token)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(yaml: &str) -> Result<Vec<TokenEntry>, String> {
        serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn no_file(p: &std::path::Path) -> Result<String, String> {
        Err(format!("{} missing", p.display()))
    }

    #[test]
    fn a_token_authenticates_as_its_entry_only() {
        let t1 = new_token();
        let t2 = new_token();
        assert_ne!(t1, t2);
        assert!(t1.starts_with(TOKEN_PREFIX) && t1.len() == 68);
        let yaml = format!(
            "{}{}",
            yaml_entry("ci", Role::Agent, &t1),
            yaml_entry("ops", Role::Operator, &t2)
        );
        let tokens = Tokens::resolve(&entries(&yaml).unwrap(), &no_env, &no_file).unwrap();
        let p = tokens.authenticate(&t1).unwrap();
        assert_eq!((p.name.as_str(), p.role), ("ci", Role::Agent));
        assert_eq!(tokens.authenticate(&t2).unwrap().role, Role::Operator);
        assert!(tokens.authenticate("tht_00").is_none());
        assert!(tokens.authenticate("").is_none());
        assert!(
            tokens
                .authenticate(&"x".repeat(MAX_TOKEN_BYTES + 1))
                .is_none()
        );
    }

    #[test]
    fn secrets_come_from_env_and_files_with_one_newline_trimmed() {
        let yaml = "- {name: a, role: agent, token_env: AGENT_TOKEN}\n- {name: b, role: viewer, token_file: /run/b}\n";
        let env = |v: &str| (v == "AGENT_TOKEN").then(|| "secret-a".to_string());
        let read = |_: &std::path::Path| Ok("secret-b\n".to_string());
        let tokens = Tokens::resolve(&entries(yaml).unwrap(), &env, &read).unwrap();
        assert_eq!(tokens.authenticate("secret-a").unwrap().name, "a");
        assert_eq!(tokens.authenticate("secret-b").unwrap().name, "b");
        assert!(tokens.authenticate("secret-b\n").is_none());
        let e = Tokens::resolve(&entries(yaml).unwrap(), &no_env, &read).unwrap_err();
        assert!(e.to_string().contains("AGENT_TOKEN"), "{e}");
        let e = Tokens::resolve(&entries(yaml).unwrap(), &env, &no_file).unwrap_err();
        assert!(e.to_string().contains("/run/b"), "{e}");
    }

    #[test]
    fn plaintext_and_ambiguous_entries_are_refused_by_name() {
        let e = entries("- {name: a, role: agent, token: hunter2}\n").unwrap_err();
        assert!(
            e.contains("plain text") && e.contains(r#"auth.tokens "a""#),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        let e = entries("- {name: a, role: agent, token_env: X, token_file: /y}\n").unwrap_err();
        assert!(e.contains("give one of"), "{e}");
        let e = entries("- {name: a, role: agent}\n").unwrap_err();
        assert!(e.contains("needs a secret"), "{e}");
        let e = entries("- {name: a, role: root, token_env: X}\n").unwrap_err();
        assert!(e.contains("root"), "{e}");
        let e = entries("- {name: a, role: agent, token_sha256: abc}\n").unwrap_err();
        assert!(e.contains("64 hexadecimal"), "{e}");
        let e =
            entries("- {name: a, role: agent, token_env: X, namespaces: ['a*b']}\n").unwrap_err();
        assert!(e.contains("namespaces"), "{e}");
    }

    #[test]
    fn duplicates_and_empty_lists_are_refused() {
        let t = new_token();
        let yaml = format!(
            "{}{}",
            yaml_entry("a", Role::Agent, &t),
            yaml_entry("b", Role::Agent, &t)
        );
        let e = Tokens::resolve(&entries(&yaml).unwrap(), &no_env, &no_file).unwrap_err();
        assert!(e.to_string().contains("same token"), "{e}");
        let yaml = format!(
            "{}{}",
            yaml_entry("a", Role::Agent, &t),
            yaml_entry("a", Role::Agent, &new_token())
        );
        let e = Tokens::resolve(&entries(&yaml).unwrap(), &no_env, &no_file).unwrap_err();
        assert!(e.to_string().contains("same name"), "{e}");
        assert!(matches!(
            Tokens::resolve(&[], &no_env, &no_file),
            Err(Error::NoTokens)
        ));
    }

    #[test]
    fn client_subjects_map_to_entries() {
        let yaml = "- {name: edge, role: agent, client_subject: edge-agent-1}\n";
        let tokens = Tokens::resolve(&entries(yaml).unwrap(), &no_env, &no_file).unwrap();
        assert_eq!(
            tokens.by_client_subject("edge-agent-1").unwrap().name,
            "edge"
        );
        assert!(tokens.by_client_subject("edge-agent-2").is_none());
    }

    #[test]
    fn the_debug_form_shows_no_digest() {
        let t = new_token();
        let e = entries(&yaml_entry("a", Role::Agent, &t)).unwrap();
        let debug = format!("{e:?}");
        assert!(!debug.contains(&digest_hex(&t)), "{debug}");
    }
}
