//! Thermostat's configuration layer: YAML read with positions, field checks, and one list of
//! errors printed as `file:line:column: path: message`, sorted and deduplicated in one place.
//! It knows nothing of alarms, scaling or notifications: the cores' readers of those sections
//! are built on it.
//!
//! # What this crate owns
//! - The bounds a text must keep before it is parsed ([`check_text`]: at most
//!   [`MAX_FILE_BYTES`], only the characters YAML allows, maps and lists at most
//!   [`MAX_YAML_DEPTH`] deep), and parsing into a tree with positions ([`Document`],
//!   [`parse_yaml`]): each file is parsed once and every reader reads the same tree.
//! - The positioned values read from it ([`Node`], [`Spanned`], [`Text`], [`Pairs`],
//!   [`pos`]).
//! - Field checks ([`FieldChecker`]): required fields, numbers, words, booleans, unknown
//!   keys with a "did you mean", lists and maps, each reported with its position; entries
//!   deserialised into structs of [`Text`] scalars ([`FieldChecker::deserialize`]).
//! - Errors ([`ConfigError`]) collected in one [`ErrorList`] and sorted by file and position
//!   into [`ConfigErrors`] by [`ErrorList::finish`].
//!
//! # Invariants
//! - No IO: texts arrive as strings; no wall clock.
//! - A check never stops at the first error: it reports and goes on.
//! - Error texts are part of Thermostat's contract (`thermostat check` prints them): a
//!   change here changes every section's messages.
//!
//! # Layout
//! `error.rs` (positions, errors, the error list), `text.rs` (text bounds), `document.rs`
//! (parsing, positioned values), `fields.rs` (+ `fields/tests.rs`; field checks).

#![warn(missing_docs)]

pub mod document;
pub mod error;
pub mod fields;
pub mod text;

pub use document::{
    Document, Entry, Node, Pairs, Spanned, Text, TextList, is_null, parse_yaml, pos, pos_of,
};
pub use error::{ConfigError, ConfigErrors, ErrorList, Pos, Rule};
pub use fields::{EmptyList, FieldChecker, FieldMap, did_you_mean, unknown_field_message};
pub use text::{MAX_FILE_BYTES, MAX_YAML_DEPTH, TextError, TextErrorKind, check_text};
