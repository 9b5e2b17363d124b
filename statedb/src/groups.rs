//! The scaling runtime's rows: [`GroupStore`] for [`StateDb`].
//!
//! A group's state is the JSON of `thermostat_scaler::GroupState` under the key
//! `group:<name>` in the state table, and its activities (the JSON of
//! `thermostat_scaler::ScalingActivity`) are the history of that same key.

use serde_json::Value;
use thermostat_scaler::GroupState;
use thermostat_scaler_runtime::{GroupStore, GroupWrite, StoreError};

use crate::db::{AlarmWrite, StateDb};

/// Prefix of the scaling groups' keys (state and history).
pub const GROUP_PREFIX: &str = "group:";

fn key(group: &str) -> String {
    format!("{GROUP_PREFIX}{group}")
}

impl GroupStore for StateDb {
    fn load_group_states(&self) -> Result<Vec<(String, GroupState)>, StoreError> {
        // Read as JSON first: a row that is JSON but not a group state (written by another
        // version) is left out, and the group starts from its configuration.
        let rows = self
            .load_states_under::<Value>(GROUP_PREFIX)
            .map_err(StoreError::new)?;
        Ok(rows
            .into_iter()
            .filter_map(|(name, v)| Some((name, serde_json::from_value(v).ok()?)))
            .collect())
    }

    fn commit_groups(&self, writes: &[GroupWrite<'_>]) -> Result<(), StoreError> {
        let keys: Vec<String> = writes.iter().map(|w| key(w.group)).collect();
        let batch: Vec<AlarmWrite<'_, GroupState, _>> = writes
            .iter()
            .zip(&keys)
            .map(|(w, key)| AlarmWrite {
                name: key,
                state: Some(w.state),
                history: w.activities,
            })
            .collect();
        self.commit(&batch).map_err(StoreError::new)
    }

    fn group_activities(&self, group: &str, limit: usize) -> Result<Vec<Value>, StoreError> {
        self.history::<Value>(&key(group), limit)
            .map_err(StoreError::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thermostat_metrics::Timestamp;
    use thermostat_scaler::{ActivityStatus, ScalingActivity};

    /// The stored JSON is the one earlier versions wrote: data directories keep loading.
    #[test]
    fn group_rows_keep_their_keys_and_json() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        let state = GroupState::new("web", 1, 4, 2, Timestamp(1_000));
        let activity = ScalingActivity {
            group: "web".into(),
            timestamp: Timestamp(2_000),
            policy: Some("out".into()),
            alarm: Some("hot".into()),
            scheduled_action: None,
            old_desired: 2,
            new_desired: 3,
            cause: "because".into(),
            status: ActivityStatus::Successful,
            status_message: None,
            leader_lease_revision: None,
        };
        db.commit_groups(&[GroupWrite {
            group: "web",
            state: &state,
            activities: std::slice::from_ref(&activity),
        }])
        .unwrap();
        let raw: Vec<(String, Value)> = db.load_states_under("group:").unwrap();
        assert_eq!(
            raw,
            vec![("web".into(), serde_json::to_value(&state).unwrap())]
        );
        let history: Vec<ScalingActivity> = db.history("group:web", 10).unwrap();
        assert_eq!(history, std::slice::from_ref(&activity));
        assert_eq!(
            db.group_activities("web", 10).unwrap(),
            [serde_json::to_value(&activity).unwrap()]
        );
        assert_eq!(db.load_group_states().unwrap(), [("web".into(), state)]);

        // A row of another shape under the prefix is skipped, not an error.
        db.commit(&[AlarmWrite::<String, String> {
            name: "group:odd",
            state: Some(&"not a group".to_owned()),
            history: &[],
        }])
        .unwrap();
        assert_eq!(db.load_group_states().unwrap().len(), 1);
    }
}
