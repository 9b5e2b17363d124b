//! The crate's one error type.

use std::path::PathBuf;

/// Why the `auth` settings cannot be used. Messages name the entry, never a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `auth.tokens` is an empty list.
    #[error(
        "auth.tokens is empty: list at least one token (`thermostat token new --role admin` makes one), or leave auth out to run open on loopback"
    )]
    NoTokens,
    /// Too many entries.
    #[error("auth.tokens has {count} entries, at most {max}")]
    TooManyTokens {
        /// Entries given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Two entries share a name, a token or a client subject.
    #[error("auth.tokens {name:?}: another entry has the same {what}")]
    Duplicate {
        /// The later entry.
        name: String,
        /// What they share.
        what: &'static str,
    },
    /// `token_env` names an unset variable.
    #[error("auth.tokens {name:?}: token_env: the environment variable {var} is not set")]
    MissingEnv {
        /// The entry.
        name: String,
        /// The variable.
        var: String,
    },
    /// `token_file` cannot be read.
    #[error("auth.tokens {name:?}: token_file {}: {message}", path.display())]
    TokenFile {
        /// The entry.
        name: String,
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The secret is empty.
    #[error("auth.tokens {name:?}: the token is empty")]
    EmptyToken {
        /// The entry.
        name: String,
    },
    /// The secret is longer than a token may be.
    #[error("auth.tokens {name:?}: the token is longer than {max} bytes")]
    LongToken {
        /// The entry.
        name: String,
        /// The limit.
        max: usize,
    },
}
