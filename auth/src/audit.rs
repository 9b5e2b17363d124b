//! The audit trail's record ([`AuditEvent`]) and the port that keeps it ([`AuditTrail`]):
//! one JSON line per authenticated change, written before the change is acknowledged.

use serde::{Deserialize, Serialize};

/// Events a page of `GET /api/v1/audit` holds at most.
pub const MAX_PAGE: usize = 1000;

/// How an audited request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It was done.
    Success,
    /// It was tried and failed (`error` says why).
    Failure,
    /// It was refused before it was tried (a failed sign-in, a missing permission).
    Denied,
}

/// One line of the audit trail, as CloudTrail records an API call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When.
    pub time: jiff::Timestamp,
    /// The request's id (also in its response's `x-request-id`).
    pub request_id: String,
    /// The token entry's name (`anonymous` with auth off; for a failed sign-in, `unknown`).
    pub principal: String,
    /// Its role (`None` when unknown).
    pub role: Option<crate::Role>,
    /// The client's address.
    pub source_ip: Option<String>,
    /// The client's `user-agent`, shortened to 256 characters.
    pub user_agent: Option<String>,
    /// What was done (`reload`, `set_alarm_state`, `backup`, `sign_in`, ...).
    pub action: String,
    /// What it was done to (an alarm's name, a group), if anything.
    pub target: Option<String>,
    /// The request's parameters, without secrets.
    pub parameters: serde_json::Value,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it failed.
    pub error: Option<String>,
}

/// A search of the audit trail: events in `[since, until)` by principal and action, oldest
/// first, a page at a time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditQuery {
    /// From this time on.
    pub since: Option<jiff::Timestamp>,
    /// Before this time.
    pub until: Option<jiff::Timestamp>,
    /// Only this principal's.
    pub principal: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Events at most (1 to [`MAX_PAGE`]).
    pub limit: usize,
    /// Where the previous page ended (its `next_token`).
    pub next_token: Option<String>,
}

/// A page of events.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AuditPage {
    /// The events, oldest first.
    pub events: Vec<AuditEvent>,
    /// Pass it back for the next page; `None` at the end.
    pub next_token: Option<String>,
}

/// Why the audit trail failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The trail cannot be written or read: the change is not made.
    #[error("the audit trail failed: {0}")]
    Io(String),
    /// A query parameter is not valid (`next_token`).
    #[error("{field}: {message}")]
    Invalid {
        /// The parameter.
        field: &'static str,
        /// Why.
        message: String,
    },
}

/// Where audit events are kept (the data directory's `audit/`: `thermostat-audit`).
pub trait AuditTrail: Send + Sync + std::fmt::Debug {
    /// Appends `event` durably (written and synced) before returning.
    ///
    /// # Errors
    /// It could not be written; the caller must not make (or acknowledge) the change.
    fn append(&self, event: &AuditEvent) -> Result<(), AuditError>;

    /// A page of the events `query` selects.
    ///
    /// # Errors
    /// The trail cannot be read, or `next_token` is not one of ours.
    fn query(&self, query: &AuditQuery) -> Result<AuditPage, AuditError>;
}
