//! The persistence port: where the runtime keeps alarm states and history ([`AlarmStore`]).
//! `thermostat-statedb` implements it on `state.redb`; the runtime never sees the format.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use thermostat_alarms::CompositeState;
use thermostat_alarms::HistoryItem;
use thermostat_alarms::engine::InstanceState;
use thermostat_alarms::model::{Alarm, CompositeAlarm};
use thermostat_metrics::Timestamp;

use crate::error::StoreError;

/// An alarm's tags: key to value (CloudWatch's `Tags`; at most 50).
pub type AlarmTags = BTreeMap<String, String>;

/// The states an [`AlarmStore`] holds, by alarm (or instance) name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoredStates {
    /// Metric alarm instances (`cpu`, `cpu[InstanceId=i-1]`).
    pub metric: Vec<(String, InstanceState)>,
    /// Composite alarms.
    pub composites: Vec<(String, CompositeState)>,
}

/// One anomaly-detection model the runtime keeps ([`AlarmStore::load_anomaly_models`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredModel {
    /// The alarm or per-series instance (`cpu`, `cpu[Host=a]`).
    pub instance: String,
    /// The id of the query the band is of (`m1`).
    pub metric_id: String,
    /// What the model was trained for (the alarm's `metrics:` and training configuration):
    /// a model whose alarm changed is retrained.
    pub fingerprint: String,
    /// The model.
    pub model: thermostat_alarms::anomaly::Model,
}

/// One state to write.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StateRef<'a> {
    /// A metric alarm instance's.
    Metric(&'a InstanceState),
    /// A composite alarm's.
    Composite(&'a CompositeState),
}

/// What one pruning pass deletes, and how much it may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PruneBounds {
    /// Items with a timestamp before this are deleted.
    pub older_than: Timestamp,
    /// Items kept per alarm (or instance) at most; the oldest beyond it are deleted.
    pub max_items_per_alarm: usize,
    /// Items deleted in one pass at most.
    pub max_deletes: usize,
    /// Alarms visited in one pass at most.
    pub max_alarms: usize,
}

/// What one pruning pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrunePass {
    /// Items deleted.
    pub deleted: usize,
    /// Alarms looked at.
    pub alarms_visited: usize,
    /// The alarm the next pass starts at, when this one stopped at a bound.
    pub resume: Option<String>,
}

/// Durable alarm states and history.
///
/// History is per alarm (or instance) name, appended in time order with increasing sequence
/// numbers, and deleted only from its oldest end. Every method is one transaction: it
/// happens whole or not at all.
pub trait AlarmStore: Send + Sync + std::fmt::Debug {
    /// Every stored state of metric alarm instances and composite alarms.
    ///
    /// # Errors
    /// A read failure, or a state that does not decode.
    fn load_states(&self) -> Result<StoredStates, StoreError>;

    /// Writes `states` and appends `history` (each item to its `alarm_name`'s, in order), in
    /// one durable transaction; nothing is written when both are empty.
    ///
    /// # Errors
    /// A write failure; nothing of the batch is stored then.
    fn commit(
        &self,
        states: &[(&str, StateRef<'_>)],
        history: &[HistoryItem],
    ) -> Result<(), StoreError>;

    /// Every stored actions-enabled override
    /// ([`AlarmRuntime::set_actions_enabled`](crate::AlarmRuntime::set_actions_enabled)), by
    /// alarm name (a metric or composite alarm's configured name, never an instance's). A
    /// store written before overrides existed has none.
    ///
    /// # Errors
    /// A read failure, or an override that does not decode.
    fn load_actions_enabled(&self) -> Result<Vec<(String, bool)>, StoreError>;

    /// Sets (`Some`) or removes (`None`) the actions-enabled override of each alarm of
    /// `overrides` and appends `history` (each item to its `alarm_name`'s, in order), in one
    /// durable transaction; nothing is written when both are empty.
    ///
    /// # Errors
    /// A write failure; nothing of the batch is stored then.
    fn commit_actions_enabled(
        &self,
        overrides: &[(&str, Option<bool>)],
        history: &[HistoryItem],
    ) -> Result<(), StoreError>;

    /// Every alarm definition created through the API (`PutMetricAlarm`), by name. The
    /// default has none: a store that keeps no API alarms.
    ///
    /// # Errors
    /// A read failure, or a definition that does not decode.
    fn load_api_alarms(&self) -> Result<Vec<Alarm>, StoreError> {
        Ok(Vec::new())
    }

    /// Writes (`Some`) or removes (`None`) the API alarm definition `name` and appends
    /// `history`, in one durable transaction. The default refuses: a store that keeps no
    /// API alarms.
    ///
    /// # Errors
    /// A write failure; nothing of the batch is stored then.
    fn commit_api_alarm(
        &self,
        name: &str,
        alarm: Option<&Alarm>,
        history: &[HistoryItem],
    ) -> Result<(), StoreError> {
        let _ = (name, alarm, history);
        Err(StoreError::new(std::io::Error::other(
            "this alarm store keeps no alarms created through the API",
        )))
    }

    /// Every composite alarm definition created through the API (`PutCompositeAlarm`). The
    /// default has none.
    ///
    /// # Errors
    /// A read failure, or a definition that does not decode.
    fn load_api_composites(&self) -> Result<Vec<CompositeAlarm>, StoreError> {
        Ok(Vec::new())
    }

    /// Writes (`Some`) or removes (`None`) the API composite alarm definition `name`, in one
    /// durable transaction. The default refuses.
    ///
    /// # Errors
    /// A write failure; nothing is stored then.
    fn commit_api_composite(
        &self,
        name: &str,
        composite: Option<&CompositeAlarm>,
    ) -> Result<(), StoreError> {
        let _ = (name, composite);
        Err(StoreError::new(std::io::Error::other(
            "this alarm store keeps no alarms created through the API",
        )))
    }

    /// Every alarm's tags (`TagResource`), by alarm name. The default has none.
    ///
    /// # Errors
    /// A read failure, or tags that do not decode.
    fn load_alarm_tags(&self) -> Result<Vec<(String, AlarmTags)>, StoreError> {
        Ok(Vec::new())
    }

    /// Writes (`Some`) or removes (`None`) the tags of the alarm `name`, in one durable
    /// transaction. The default refuses: a store that keeps no tags.
    ///
    /// # Errors
    /// A write failure; nothing is stored then.
    fn commit_alarm_tags(&self, name: &str, tags: Option<&AlarmTags>) -> Result<(), StoreError> {
        let _ = (name, tags);
        Err(StoreError::new(std::io::Error::other(
            "this alarm store keeps no alarm tags",
        )))
    }

    /// Every stored anomaly-detection model. The default has none: a store that keeps no
    /// models (they are retrained from the metric store after a restart).
    ///
    /// # Errors
    /// A read failure, or a model that does not decode.
    fn load_anomaly_models(&self) -> Result<Vec<StoredModel>, StoreError> {
        Ok(Vec::new())
    }

    /// Writes (`Some`) or removes (`None`) the model of `(instance, metric_id)`, in one
    /// durable transaction. The default keeps nothing and succeeds (models are a cache of
    /// what the metric store can retrain).
    ///
    /// # Errors
    /// A write failure; nothing is stored then.
    fn commit_anomaly_model(
        &self,
        instance: &str,
        metric_id: &str,
        model: Option<&StoredModel>,
    ) -> Result<(), StoreError> {
        let _ = (instance, metric_id, model);
        Ok(())
    }

    /// Removes the states of `names` (alarms that no longer exist); their history stays.
    ///
    /// # Errors
    /// A write failure.
    fn forget_states(&self, names: &[String]) -> Result<(), StoreError>;

    /// Visits the history of `name` newest first, from just below sequence number `below`
    /// (from the newest when `None`): `visit(seq, item)` gets each item as JSON (a
    /// [`HistoryItem`]'s serde form) and says whether it is consumed
    /// ([`ControlFlow::Continue`]) or the scan stops before it ([`ControlFlow::Break`]). At
    /// most `max_rows` items are consumed. Returns where a later scan resumes (the sequence
    /// number just above the first item not consumed), `None` when every item was consumed.
    ///
    /// # Errors
    /// A read failure.
    fn scan_history(
        &self,
        name: &str,
        below: Option<u64>,
        max_rows: usize,
        visit: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>,
    ) -> Result<Option<u64>, StoreError>;

    /// One bounded pass of history pruning: for each alarm from `from` (inclusive; the first
    /// when `None`) on, deletes the oldest items beyond the per-alarm count and every item
    /// older than the bound, until a bound of the pass is reached.
    ///
    /// # Errors
    /// A read, decode or write failure; nothing of the pass is deleted then.
    fn prune_history(
        &self,
        from: Option<&str>,
        bounds: &PruneBounds,
    ) -> Result<PrunePass, StoreError>;
}
