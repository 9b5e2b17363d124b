//! Secrets in the settings: where each one comes from ([`SecretSource`]: an environment
//! variable named by `<key>_env`, or a file named by `<key>_file`), a value once the shell
//! has read it ([`Secret`], which never prints), and the rules for a secret file's contents
//! ([`secret_from_file`]). Pure: the shell does the reading and hands the bytes over.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Largest secret file read (`password_file`, `secret_file`, `routing_key_file`): 64 KiB.
pub const MAX_SECRET_FILE_BYTES: usize = 64 * 1024;
/// Largest CA bundle read (`ca_file`): 1 MiB (the whole Mozilla bundle is about 220 KB).
pub const MAX_CA_FILE_BYTES: usize = 1024 * 1024;

/// Where a secret comes from: `<key>_env` or `<key>_file` (exactly one of the two).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    /// An environment variable, by name. It MUST be set and not empty.
    Env(String),
    /// A file, by path (a relative path in the configuration is resolved against the
    /// folder of the file that names it; [`resolve_path`]). Read at start and at every
    /// reload; one trailing newline is not part of the secret ([`secret_from_file`]).
    File(String),
}

impl SecretSource {
    /// The setting's key for `base`: `password_env` or `password_file` for `password`.
    pub fn key(&self, base: &str) -> String {
        match self {
            SecretSource::Env(_) => format!("{base}_env"),
            SecretSource::File(_) => format!("{base}_file"),
        }
    }

    /// The variable's name or the file's path.
    pub fn name(&self) -> &str {
        match self {
            SecretSource::Env(s) | SecretSource::File(s) => s,
        }
    }
}

impl std::fmt::Display for SecretSource {
    /// `the environment variable SMTP_PASSWORD` or `the file /run/secrets/smtp`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Env(v) => write!(f, "the environment variable {v}"),
            SecretSource::File(p) => write!(f, "the file {p}"),
        }
    }
}

/// A secret's value (a password, an HMAC key, a routing key). It prints as `[redacted]`
/// (`Debug` and `Display`) and cannot be serialised, so that it reaches no log, error
/// message or API response; [`Secret::expose`] hands the value to the code that sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The secret held by a file's `bytes`: UTF-8 text, at most [`MAX_SECRET_FILE_BYTES`]
/// bytes, without one trailing line ending (`\n` or `\r\n`; any other whitespace is part of
/// the secret), and not empty.
///
/// # Errors
/// A message to follow `the file <path>` (`is larger than 65536 bytes (the limit)`, `is not
/// UTF-8 text`, `is empty`); it never contains the contents.
pub fn secret_from_file(bytes: &[u8]) -> Result<Secret, String> {
    if bytes.len() > MAX_SECRET_FILE_BYTES {
        return Err(format!(
            "is larger than {MAX_SECRET_FILE_BYTES} bytes (the limit)"
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_owned())?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    if text.is_empty() {
        return Err("is empty".to_owned());
    }
    Ok(Secret::new(text))
}

/// `path` as written in `config_file`: an absolute path as it is, a relative one resolved
/// against the folder of `config_file` (as Prometheus does for its `*_file` settings), so
/// that a secret can sit beside the configuration whatever the working directory.
pub fn resolve_path(config_file: &str, path: &str) -> String {
    let p = Path::new(path);
    if p.is_absolute() {
        return path.to_owned();
    }
    match Path::new(config_file).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(p).display().to_string(),
        _ => path.to_owned(),
    }
}

/// Checks a file path written in the configuration: not empty, no NUL, no line break.
pub(crate) fn check_path(s: &str) -> Result<(), String> {
    if s.is_empty() || s.contains(['\0', '\n', '\r']) {
        Err(format!("must be a file path (got {s:?})"))
    } else {
        Ok(())
    }
}
