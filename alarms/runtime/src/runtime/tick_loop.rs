//! The tick loop: one tick at every multiple of [`TICK_MS`] of the clock.

use std::sync::Arc;

use thermostat_metrics::Timestamp;
use tokio_util::sync::CancellationToken;

use super::AlarmRuntime;
use crate::error::chain;

/// Evaluation ticks fall on multiples of this many milliseconds.
pub const TICK_MS: i64 = 10_000;

impl AlarmRuntime {
    /// Runs the tick loop until `stop` is cancelled: one [`tick`](Self::tick) at every
    /// multiple of [`TICK_MS`] of the clock, in a blocking thread. A tick that falls behind
    /// skips the ticks it missed (and says so).
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut last: Option<Timestamp> = None;
        loop {
            let now = self.clock.now();
            let mut next = Timestamp(now.as_millis().div_euclid(TICK_MS) * TICK_MS + TICK_MS);
            if let Some(l) = last
                && next <= l
            {
                next = l.add_millis(TICK_MS);
            }
            let wait = u64::try_from(next.as_millis() - now.as_millis()).unwrap_or(0);
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
            }
            if let Some(l) = last
                && next.as_millis() - l.as_millis() > TICK_MS
            {
                tracing::warn!(missed_from = %l.add_millis(TICK_MS), until = %next, "Alarm evaluation fell behind and skipped ticks.");
            }
            last = Some(next);
            let runtime = Arc::clone(&self);
            match tokio::task::spawn_blocking(move || runtime.tick(next)).await {
                Ok(Ok(n)) => tracing::trace!(tick = %next, evaluations = n, "Evaluated alarms."),
                Ok(Err(e)) => {
                    tracing::error!(tick = %next, error = %chain(&e), "An alarm evaluation tick failed.")
                }
                Err(e) => {
                    tracing::error!(tick = %next, error = %e, "An alarm evaluation tick panicked.")
                }
            }
        }
    }
}
