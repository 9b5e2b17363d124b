//! Alarm history: retention and pruning, paged reads, and the action items the notification
//! dispatcher records.

use std::ops::ControlFlow;

use thermostat_alarms::HistoryItem;
use thermostat_metrics::Timestamp;

use super::AlarmRuntime;
use crate::error::Result;
use crate::persistence::PruneBounds;

/// History is pruned after the ticks that fall on multiples of this many milliseconds.
pub const PRUNE_EVERY_MS: i64 = 60_000;
/// History items deleted in one pruning pass (one write transaction) at most.
const PRUNE_MAX_DELETES_PER_PASS: usize = 10_000;
/// Alarms visited in one pruning pass at most.
const PRUNE_MAX_ALARMS_PER_PASS: usize = 5_000;
/// Pruning passes after one tick at most; the next prune resumes where they stopped.
const PRUNE_MAX_PASSES: usize = 20;

/// How much alarm history is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryRetention {
    /// Items older than this many days are deleted.
    pub max_age_days: u64,
    /// Items per alarm (or instance) at most; the oldest beyond it are deleted.
    pub max_items_per_alarm: usize,
}

impl Default for HistoryRetention {
    fn default() -> Self {
        HistoryRetention {
            max_age_days: 14,
            max_items_per_alarm: 1_000,
        }
    }
}

/// What one pruning run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// History items deleted.
    pub deleted: usize,
    /// Passes (write transactions) run.
    pub passes: usize,
    /// Whether every alarm was visited (otherwise the next run resumes).
    pub complete: bool,
}

impl AlarmRuntime {
    /// Keeps history as `retention` says (the default is CloudWatch's two weeks and 1,000
    /// items per alarm).
    #[must_use]
    pub fn with_history_retention(mut self, retention: HistoryRetention) -> Self {
        self.retention = retention;
        self
    }

    /// Deletes history beyond the retention at `now`, off the runtime's lock, in passes of
    /// one bounded write transaction each (at most 20 of them; a run that stops there is
    /// resumed by the next). [`AlarmRuntime::tick`] calls it once a minute.
    ///
    /// # Errors
    /// A failed read or write; what earlier passes deleted stays deleted.
    pub fn prune_history(&self, now: Timestamp) -> Result<PruneReport> {
        let mut from = self.prune_from.lock().unwrap_or_else(|p| p.into_inner());
        let age_ms = i64::try_from(self.retention.max_age_days)
            .ok()
            .and_then(|d| d.checked_mul(86_400_000))
            .unwrap_or(i64::MAX);
        let bounds = PruneBounds {
            older_than: Timestamp(now.as_millis().saturating_sub(age_ms)),
            max_items_per_alarm: self.retention.max_items_per_alarm,
            max_deletes: PRUNE_MAX_DELETES_PER_PASS,
            max_alarms: PRUNE_MAX_ALARMS_PER_PASS,
        };
        let mut report = PruneReport::default();
        while report.passes < PRUNE_MAX_PASSES {
            let pass = self.persistence.prune_history(from.as_deref(), &bounds)?;
            report.passes += 1;
            report.deleted += pass.deleted;
            *from = pass.resume;
            if from.is_none() {
                report.complete = true;
                break;
            }
        }
        if report.deleted > 0 {
            tracing::debug!(
                deleted = report.deleted,
                passes = report.passes,
                complete = report.complete,
                "Pruned the alarm history."
            );
        }
        Ok(report)
    }

    /// Visits the history of `name` (an alarm, instance or composite) newest first, from
    /// just below sequence number `below`, as
    /// [`AlarmStore::scan_history`](crate::AlarmStore::scan_history) says; without the
    /// runtime's lock.
    ///
    /// # Errors
    /// A failed read.
    pub fn scan_history(
        &self,
        name: &str,
        below: Option<u64>,
        max_rows: usize,
        mut visit: impl FnMut(u64, &[u8]) -> ControlFlow<()>,
    ) -> Result<Option<u64>> {
        Ok(self
            .persistence
            .scan_history(name, below, max_rows, &mut visit)?)
    }

    /// Appends one history item (an `Action` item of the notification dispatcher) to its
    /// alarm's history, without the runtime's lock.
    ///
    /// # Errors
    /// A failed write.
    pub fn record_action(&self, item: &HistoryItem) -> Result<()> {
        self.persistence.commit(&[], std::slice::from_ref(item))?;
        Ok(())
    }
}
