//! The data a query reads ([`Source`]), and that port implemented over the store
//! ([`StoreSource`]).

use std::sync::Arc;

use thermostat_metrics::store::MAX_DATAPOINTS;
use thermostat_metrics::{Period, Query, SeriesKey, Statistic, Store, Timestamp, Unit};

use crate::error::{Error, Result};

/// One period of a series: its start and the statistic's value.
pub type Bucket = (Timestamp, f64);

/// What evaluation reads. Implementations restrict it to the caller's namespaces.
pub trait Source {
    /// The series that may be read (those of the caller's namespaces), narrowed to
    /// `namespace` and `metric_name` when given; in any order.
    fn series(&self, namespace: Option<&str>, metric_name: Option<&str>) -> Vec<SeriesKey>;

    /// The periods of `period` of series `key` from `start` (a multiple of the period, or
    /// of 60 s for periods of whole minutes) to `end` (exclusive) that have a value of
    /// `statistic`, oldest first; only data of `unit` when given.
    ///
    /// # Errors
    /// [`Error::Execution`] when the data cannot answer (several units in one period without
    /// `unit`), or a store refusal.
    fn statistics(
        &self,
        key: &SeriesKey,
        unit: Option<Unit>,
        statistic: &Statistic,
        start: Timestamp,
        end: Timestamp,
        period: Period,
    ) -> Result<Vec<Bucket>>;

    /// When the series ended (a staleness marker), if it has: an instant selector at a time
    /// at or after it sees no period that started before it.
    fn ended_at(&self, _key: &SeriesKey) -> Option<Timestamp> {
        None
    }
}

/// Which namespaces a caller may read.
pub type Scope = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// [`Source`] over the store at `now`, limited to the namespaces `scope` allows. Series are
/// those [`Store::list`] lists: with data in the 14 days before `now`.
#[derive(Clone)]
pub struct StoreSource {
    store: Arc<Store>,
    now: Timestamp,
    scope: Scope,
}

impl std::fmt::Debug for StoreSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSource")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl StoreSource {
    /// The store as seen at `now` by a caller limited to the namespaces `scope` allows.
    pub fn new(store: Arc<Store>, now: Timestamp, scope: Scope) -> Self {
        StoreSource { store, now, scope }
    }
}

impl Source for StoreSource {
    fn series(&self, namespace: Option<&str>, metric_name: Option<&str>) -> Vec<SeriesKey> {
        let mut keys = self.store.list(namespace, metric_name, self.now);
        keys.retain(|k| (self.scope)(k.namespace()));
        keys
    }

    fn ended_at(&self, key: &SeriesKey) -> Option<Timestamp> {
        self.store.ended_at(key)
    }

    fn statistics(
        &self,
        key: &SeriesKey,
        unit: Option<Unit>,
        statistic: &Statistic,
        start: Timestamp,
        end: Timestamp,
        period: Period,
    ) -> Result<Vec<Bucket>> {
        let p = period.as_millis();
        let mut out: Vec<(Timestamp, Unit, f64)> = Vec::new();
        let mut from = start.as_millis();
        // The store answers at most MAX_DATAPOINTS periods a query: longer spans in parts.
        while from < end.as_millis() {
            let to = from
                .saturating_add(p.saturating_mul(MAX_DATAPOINTS))
                .min(end.as_millis());
            let query = Query {
                key: key.clone(),
                unit,
                start: Timestamp(from),
                end: Timestamp(to),
                period,
                statistics: vec![statistic.clone()],
            };
            let points = self
                .store
                .query(&query, self.now)
                .map_err(|e| Error::Execution(format!("the store refused a read: {e}")))?;
            out.extend(points.into_iter().filter_map(|d| {
                d.values
                    .first()
                    .copied()
                    .flatten()
                    .map(|v| (d.timestamp, d.unit, v))
            }));
            from = to;
        }
        out.dedup_by(|b, a| a.0 == b.0 && a.1 == b.1);
        if let Some(w) = out.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::Execution(format!(
                "series {} has data in several units ({}, {}) in the period starting {}; choose one with the `unit` pseudo-label, e.g. {{unit=\"{}\"}}",
                describe(key),
                w[0].1,
                w[1].1,
                w[0].0,
                w[0].1
            )));
        }
        Ok(out.into_iter().map(|(t, _, v)| (t, v)).collect())
    }
}

/// A series as PromQL writes it, for messages.
pub(crate) fn describe(key: &SeriesKey) -> String {
    let mut s = format!("{}{{namespace={:?}", key.metric_name(), key.namespace());
    for d in key.dimensions() {
        s.push_str(&format!(", {}={:?}", d.name, d.value));
    }
    s.push('}');
    s
}
