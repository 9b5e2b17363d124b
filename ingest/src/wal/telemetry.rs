//! [`LogTelemetry`]: where a push's time goes between its handler and its acknowledgement.

use std::time::Duration;

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The write-ahead log's histograms for `/metrics`. Clones share them.
#[derive(Clone, Debug)]
pub struct LogTelemetry {
    queue: Histogram,
    sync: Histogram,
    apply: Histogram,
}

/// 50 µs to about 1.6 s, doubling.
fn buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

impl Default for LogTelemetry {
    fn default() -> Self {
        LogTelemetry {
            queue: buckets(),
            sync: buckets(),
            apply: buckets(),
        }
    }
}

impl LogTelemetry {
    /// Registers `thermostat_wal_queue_seconds`, `thermostat_wal_sync_seconds` and
    /// `thermostat_wal_apply_seconds` in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "thermostat_wal_queue_seconds",
            "Time a push waited for the log writer, from being queued to the start of its group commit",
            self.queue.clone(),
        );
        registry.register(
            "thermostat_wal_sync_seconds",
            "Time to write and sync one group commit (cluster mode: to store it in the ingest stream)",
            self.sync.clone(),
        );
        registry.register(
            "thermostat_wal_apply_seconds",
            "Time from a group commit being durable to its last push applied and acknowledged",
            self.apply.clone(),
        );
    }

    pub(crate) fn queued(&self, waited: Duration) {
        self.queue.observe(waited.as_secs_f64());
    }

    pub(crate) fn synced(&self, took: Duration) {
        self.sync.observe(took.as_secs_f64());
    }

    pub(crate) fn applied(&self, took: Duration) {
        self.apply.observe(took.as_secs_f64());
    }
}
