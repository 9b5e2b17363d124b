//! Scaling requests waiting for a cluster's leader: actions a node that does not lead found
//! due (a `SetAlarmState` it answered), kept under `scale_request:<journal sequence>` until
//! the leader claims them, so that a request outlives the leader of its time (rows added to
//! format 1 without a version change, as the detector rows are).

use serde::{Deserialize, Serialize};
use thermostat_alarms::ActionDue;

use crate::db::{AlarmWrite, StateDb};
use crate::error::Result;

/// The key prefix of pending scaling requests.
pub const SCALE_REQUEST_PREFIX: &str = "scale_request:";

/// Scaling actions due at `now` (Unix milliseconds), for the leader to run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScaleRequest {
    /// The actions, as the alarm runtime found them due.
    pub due: Vec<ActionDue>,
    /// When they came due.
    pub now: i64,
}

/// Zero-padded so that the rows read back in sequence order.
fn key(seq: u64) -> String {
    format!("{SCALE_REQUEST_PREFIX}{seq:020}")
}

impl StateDb {
    /// Keeps `request` under `seq` (the journal entry that asked for it), durably.
    ///
    /// # Errors
    /// A write failure; nothing is stored then.
    pub fn put_scale_request(&self, seq: u64, request: &ScaleRequest) -> Result<()> {
        let key = key(seq);
        let write: AlarmWrite<'_, ScaleRequest, ()> = AlarmWrite {
            name: &key,
            state: Some(request),
            history: &[],
        };
        self.commit_and_forget(&[write], &[])
    }

    /// The pending requests, oldest first, with their sequence numbers (a row that does not
    /// decode is left out: it cannot be run).
    ///
    /// # Errors
    /// A read failure.
    pub fn scale_requests(&self) -> Result<Vec<(u64, ScaleRequest)>> {
        Ok(self
            .load_states_under::<serde_json::Value>(SCALE_REQUEST_PREFIX)?
            .into_iter()
            .filter_map(|(seq, v)| Some((seq.parse().ok()?, serde_json::from_value(v).ok()?)))
            .collect())
    }

    /// Removes the request of `seq` (claimed by a leader); none there is no error.
    ///
    /// # Errors
    /// A write failure.
    pub fn remove_scale_request(&self, seq: u64) -> Result<()> {
        self.forget_states(&[key(seq)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_come_back_in_sequence_order_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        let request = |now| ScaleRequest { due: vec![], now };
        db.put_scale_request(100, &request(1)).unwrap();
        db.put_scale_request(9, &request(2)).unwrap();
        db.put_scale_request(10, &request(3)).unwrap();
        let seqs = |db: &StateDb| -> Vec<(u64, i64)> {
            db.scale_requests()
                .unwrap()
                .into_iter()
                .map(|(s, r)| (s, r.now))
                .collect()
        };
        assert_eq!(seqs(&db), [(9, 2), (10, 3), (100, 1)]);
        db.remove_scale_request(10).unwrap();
        db.remove_scale_request(11).unwrap();
        assert_eq!(seqs(&db), [(9, 2), (100, 1)]);
        drop(db);
        let db = StateDb::open(dir.path()).unwrap();
        assert_eq!(seqs(&db), [(9, 2), (100, 1)], "durable");
    }
}
