//! Access keys: their entries in the settings file (`aws_api.access_keys`) and the keys in
//! force, looked up by access key id.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac as _};
use serde::Deserialize;
use sha2::Sha256;

use crate::role::Role;

/// Entries in `aws_api.access_keys` at most.
pub const MAX_ACCESS_KEYS: usize = 1000;
/// The longest access key id accepted (AWS allows 128 characters).
pub const MAX_ACCESS_KEY_ID_BYTES: usize = 128;
/// The longest secret access key accepted (AWS's are 40 characters).
pub const MAX_SECRET_BYTES: usize = 1024;

pub(super) type HmacSha256 = Hmac<Sha256>;

/// Where an access key's secret comes from: never the settings file in plain text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessKeySecret {
    /// An environment variable holding the secret access key.
    Env(String),
    /// A file holding the secret access key (one trailing newline is ignored).
    File(PathBuf),
}

/// One entry of `aws_api.access_keys`, checked as it is read (so that errors carry its
/// position). Its `Debug` form names the variable or file, never the secret.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawAccessKeyEntry")]
pub struct AccessKeyEntry {
    /// The access key id clients sign with (`AWS_ACCESS_KEY_ID`).
    pub access_key_id: String,
    /// Where its secret access key comes from.
    pub secret: AccessKeySecret,
    /// What requests signed with it may do.
    pub role: Role,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccessKeyEntry {
    access_key_id: String,
    role: Role,
    #[serde(default)]
    secret_env: Option<String>,
    #[serde(default)]
    secret_file: Option<PathBuf>,
    #[serde(default)]
    secret: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    secret_access_key: Option<serde::de::IgnoredAny>,
}

/// Whether `id` can be an access key id: 1 to 128 ASCII letters, digits or underscores (AWS's
/// `[\w]+`).
pub(super) fn valid_access_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ACCESS_KEY_ID_BYTES
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl TryFrom<RawAccessKeyEntry> for AccessKeyEntry {
    type Error = String;

    fn try_from(raw: RawAccessKeyEntry) -> Result<Self, String> {
        let id = raw.access_key_id;
        if !valid_access_key_id(&id) {
            return Err(format!(
                "aws_api.access_keys: access_key_id must be 1 to {MAX_ACCESS_KEY_ID_BYTES} ASCII \
                 letters, digits or underscores"
            ));
        }
        if raw.secret.is_some() || raw.secret_access_key.is_some() {
            return Err(format!(
                "aws_api.access_keys {id:?}: the secret in plain text is refused; give secret_env \
                 (an environment variable) or secret_file (a file) holding it"
            ));
        }
        let secret = match (raw.secret_env, raw.secret_file) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "aws_api.access_keys {id:?}: give one of secret_env and secret_file, not both"
                ));
            }
            (None, None) => {
                return Err(format!(
                    "aws_api.access_keys {id:?}: needs a secret: secret_env or secret_file"
                ));
            }
            (Some(var), None) => {
                if var.is_empty() || var.contains('=') || var.contains('\0') {
                    return Err(format!(
                        "aws_api.access_keys {id:?}: secret_env must name an environment variable"
                    ));
                }
                AccessKeySecret::Env(var)
            }
            (None, Some(path)) => AccessKeySecret::File(path),
        };
        Ok(AccessKeyEntry {
            access_key_id: id,
            secret,
            role: raw.role,
        })
    }
}

/// Why `aws_api.access_keys` cannot be used. Messages name the entry, never a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessKeyError {
    /// The list is empty.
    #[error(
        "aws_api.access_keys is empty: list at least one access key, or set \
         aws_api.verify_signatures: false for local use"
    )]
    NoAccessKeys,
    /// Too many entries.
    #[error("aws_api.access_keys has {count} entries, at most {max}")]
    TooMany {
        /// Entries given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Two entries share an access key id.
    #[error("aws_api.access_keys {access_key_id:?}: listed twice")]
    Duplicate {
        /// The id.
        access_key_id: String,
    },
    /// `secret_env` names an unset variable.
    #[error(
        "aws_api.access_keys {access_key_id:?}: secret_env: the environment variable {var} is not set"
    )]
    MissingEnv {
        /// The entry.
        access_key_id: String,
        /// The variable.
        var: String,
    },
    /// `secret_file` cannot be read.
    #[error("aws_api.access_keys {access_key_id:?}: secret_file {}: {message}", path.display())]
    SecretFile {
        /// The entry.
        access_key_id: String,
        /// The file.
        path: PathBuf,
        /// Why (as the caller's reader said).
        message: String,
    },
    /// The secret is empty.
    #[error("aws_api.access_keys {access_key_id:?}: the secret access key is empty")]
    EmptySecret {
        /// The entry.
        access_key_id: String,
    },
    /// The secret is longer than [`MAX_SECRET_BYTES`].
    #[error(
        "aws_api.access_keys {access_key_id:?}: the secret access key is longer than {max} bytes"
    )]
    LongSecret {
        /// The entry.
        access_key_id: String,
        /// The limit.
        max: usize,
    },
}

/// One key in force: its role and the first HMAC of the signing-key chain, keyed with
/// `"AWS4" + secret` (so the secret's text itself is not kept).
#[derive(Clone)]
pub(super) struct Key {
    pub(super) role: Role,
    pub(super) k_secret: HmacSha256,
}

/// The access keys in force, by access key id. Its `Debug` form lists ids and roles only.
#[derive(Clone, Default)]
pub struct AccessKeys {
    keys: HashMap<String, Key>,
}

impl std::fmt::Debug for AccessKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<_> = self.keys.iter().map(|(id, k)| (id, k.role)).collect();
        ids.sort();
        f.debug_list().entries(ids).finish()
    }
}

impl AccessKeys {
    /// Resolves the entries' secrets: `env` reads an environment variable, `read` a file
    /// (both supplied by the caller, so that this crate does no IO).
    ///
    /// # Errors
    /// An empty list, too many entries, an id listed twice, an unset variable, an unreadable
    /// file, an empty or overlong secret; named by the entry's access key id, never the secret.
    pub fn resolve(
        entries: &[AccessKeyEntry],
        env: &dyn Fn(&str) -> Option<String>,
        read: &dyn Fn(&Path) -> Result<String, String>,
    ) -> Result<AccessKeys, AccessKeyError> {
        if entries.is_empty() {
            return Err(AccessKeyError::NoAccessKeys);
        }
        if entries.len() > MAX_ACCESS_KEYS {
            return Err(AccessKeyError::TooMany {
                count: entries.len(),
                max: MAX_ACCESS_KEYS,
            });
        }
        let mut keys = HashMap::with_capacity(entries.len());
        for entry in entries {
            let id = &entry.access_key_id;
            if keys.contains_key(id) {
                return Err(AccessKeyError::Duplicate {
                    access_key_id: id.clone(),
                });
            }
            let secret = match &entry.secret {
                AccessKeySecret::Env(var) => {
                    env(var).ok_or_else(|| AccessKeyError::MissingEnv {
                        access_key_id: id.clone(),
                        var: var.clone(),
                    })?
                }
                AccessKeySecret::File(path) => {
                    let mut text = read(path).map_err(|message| AccessKeyError::SecretFile {
                        access_key_id: id.clone(),
                        path: path.clone(),
                        message,
                    })?;
                    if text.ends_with('\n') {
                        text.pop();
                        if text.ends_with('\r') {
                            text.pop();
                        }
                    }
                    text
                }
            };
            keys.insert(id.clone(), Key::new(id, &secret, entry.role)?);
        }
        Ok(AccessKeys { keys })
    }

    pub(super) fn get(&self, access_key_id: &str) -> Option<&Key> {
        self.keys.get(access_key_id)
    }

    /// The role of an access key in force.
    pub fn role(&self, access_key_id: &str) -> Option<Role> {
        self.keys.get(access_key_id).map(|k| k.role)
    }

    /// The access key ids in force, sorted.
    pub fn ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }

    /// The keys in force.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl Key {
    fn new(id: &str, secret: &str, role: Role) -> Result<Key, AccessKeyError> {
        if secret.is_empty() {
            return Err(AccessKeyError::EmptySecret {
                access_key_id: id.into(),
            });
        }
        if secret.len() > MAX_SECRET_BYTES {
            return Err(AccessKeyError::LongSecret {
                access_key_id: id.into(),
                max: MAX_SECRET_BYTES,
            });
        }
        let mut key = Vec::with_capacity(4 + secret.len());
        key.extend_from_slice(b"AWS4");
        key.extend_from_slice(secret.as_bytes());
        let k_secret = HmacSha256::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        key.fill(0);
        Ok(Key { role, k_secret })
    }
}
