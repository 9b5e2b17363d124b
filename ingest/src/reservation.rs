//! Series reserved against the series limits from a request's admission (`service.rs`) until
//! the log has applied it (`wal.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// New series reserved by requests admitted and not yet applied.
#[derive(Debug, Default)]
pub(crate) struct Reserved {
    pub(crate) series: usize,
    pub(crate) bytes: usize,
    /// Only kept when `--max-series-per-namespace` is set.
    pub(crate) per_namespace: HashMap<Arc<str>, usize>,
}

/// One request's new series, reserved against the series limits from admission until the
/// request is applied to the store (or dropped unapplied): the applier drops it right after
/// recording.
#[derive(Debug)]
pub(crate) struct Reservation {
    pub(crate) reserved: Arc<Mutex<Reserved>>,
    pub(crate) namespace: Arc<str>,
    pub(crate) series: usize,
    pub(crate) bytes: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut r = self.reserved.lock().unwrap_or_else(|p| p.into_inner());
        r.series = r.series.saturating_sub(self.series);
        r.bytes = r.bytes.saturating_sub(self.bytes);
        if let Some(n) = r.per_namespace.get_mut(&self.namespace) {
            *n = n.saturating_sub(self.series);
            if *n == 0 {
                r.per_namespace.remove(&self.namespace);
            }
        }
    }
}
