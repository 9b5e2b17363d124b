//! Thermostat's state database: one redb file, `state.redb`, in the data directory.
//!
//! # What this crate owns
//! - The file's format: its tables (`meta` with the format version, `alarm_state` with one
//!   JSON value per key, `alarm_history` with JSON items keyed by (owner, sequence number)),
//!   the check of the format version at open, and one-transaction backups ([`StateDb`]).
//! - The generic operations its owners share: commits of states and history
//!   ([`AlarmWrite`]), reads by key prefix, history pages and bounded pruning passes
//!   ([`HistoryPrune`], [`PrunePass`]). The alarm runtime's rows are under `m:` (metric alarm
//!   instances), `c:` (composite alarms) and `actions_enabled:` (its actions-enabled
//!   overrides: rows added to format 1 without a version change, so older files, which have
//!   none, open as they are), the scaling groups' under `group:`, anomaly detectors under
//!   `anomaly_detector:`, a cluster's scaling requests waiting for its leader under
//!   `scale_request:`; history is keyed by the alarm (or `group:<name>`) itself.
//! - The alarm runtime's persistence port, `thermostat_alarms_runtime::AlarmStore`, on those
//!   tables (`alarms.rs`): the runtime never sees keys or encodings.
//!
//! # Invariants
//! - Every commit is one durable redb transaction (fsync included): a crash loses at most the
//!   commit in progress, never part of one.
//! - Values are JSON so the file can be inspected and migrated; history is appended in time
//!   order and deleted only from its oldest end, so an owner's items have contiguous sequence
//!   numbers.
//!
//! # Layout
//! `db.rs` (the file and its operations), `alarms.rs` (the alarm runtime's port),
//! `groups.rs` (the scaling runtime's port), `detectors.rs` (anomaly detectors),
//! `requests.rs` (scaling requests), `error.rs` ([`StateDbError`]).

#![warn(missing_docs)]

mod alarms;
mod db;
mod detectors;
mod error;
mod groups;
mod requests;

pub use alarms::{
    ACTIONS_ENABLED_PREFIX, ALARM_TAGS_PREFIX, ANOMALY_MODEL_PREFIX, API_ALARM_PREFIX,
    API_COMPOSITE_PREFIX, COMPOSITE_PREFIX, METRIC_PREFIX,
};
pub use db::{AlarmWrite, FILE_NAME, FORMAT_VERSION, HistoryPrune, PrunePass, StateDb};
pub use detectors::{ANOMALY_DETECTOR_PREFIX, StoredDetector};
pub use error::{Result, StateDbError};
pub use groups::GROUP_PREFIX;
pub use requests::{SCALE_REQUEST_PREFIX, ScaleRequest};
