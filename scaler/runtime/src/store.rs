//! The persistence port: group states and scaling activities ([`GroupStore`]), implemented by
//! `thermostat-statedb` beside the alarm states and history.

use std::fmt;

use serde_json::Value;
use thermostat_scaler::{GroupState, ScalingActivity};

use crate::error::StoreError;

/// One group's writes in a commit: its state (always written) and the activities to append.
#[derive(Clone, Copy, Debug)]
pub struct GroupWrite<'a> {
    /// The group's name.
    pub group: &'a str,
    /// Its state.
    pub state: &'a GroupState,
    /// Activities to append to its history, oldest first.
    pub activities: &'a [ScalingActivity],
}

/// Where group states and activities are kept.
pub trait GroupStore: Send + Sync + fmt::Debug {
    /// Every stored group state, by group name (rows that do not read as a group state are
    /// left out).
    ///
    /// # Errors
    /// The store cannot be read.
    fn load_group_states(&self) -> Result<Vec<(String, GroupState)>, StoreError>;

    /// Writes the states and appends the activities of `writes` in one durable transaction.
    ///
    /// # Errors
    /// A write failure; nothing of the batch is stored then.
    fn commit_groups(&self, writes: &[GroupWrite<'_>]) -> Result<(), StoreError>;

    /// The newest `limit` activities of `group`, newest first, as they were stored (the
    /// HTTP API shows them unchanged).
    ///
    /// # Errors
    /// The store cannot be read.
    fn group_activities(&self, group: &str, limit: usize) -> Result<Vec<Value>, StoreError>;
}
