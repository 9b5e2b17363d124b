//! The anomaly-detection models of the anomaly alarms (reference §3.12): one per (alarm or
//! per-series instance, id of the query banded), trained from the metric store's last 14
//! days ([`thermostat_alarms::math_alarm::training_points`]), retrained when
//! [`Model::needs_retraining`] says so (hourly; every 10 minutes while pending) or when the
//! alarm's definition changed, persisted through [`AlarmStore::commit_anomaly_model`] so
//! that a restart does not retrain from nothing, and forgotten with their alarm.
//!
//! Training runs inline before each tick's evaluation, outside the runtime's lock, at most
//! [`MAX_TRAININGS_PER_TICK`] models per tick (the others wait for the next tick, 10 s
//! later): one training reads at most 14 × 1,440 datapoints per `metric_stat` and fits in
//! milliseconds, so the tick stays short even when many alarms are created at once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, MutexGuard};

use thermostat_alarms::anomaly::{AnomalyConfig, Model, train};
use thermostat_alarms::math_alarm::{AnomalyModels, band_inputs, training_points};
use thermostat_alarms::{Alarm, AlarmSet};
use thermostat_metrics::{SeriesKey, Timestamp};

use super::AlarmRuntime;
use crate::error::chain;
use crate::persistence::StoredModel;

/// Most models trained in one tick.
pub const MAX_TRAININGS_PER_TICK: usize = 4;

/// The models, by (alarm or instance name, metric id).
#[derive(Debug, Default)]
pub(crate) struct Models(BTreeMap<(String, String), StoredModel>);

impl Models {
    /// The models a store kept.
    pub(crate) fn restore(stored: Vec<StoredModel>) -> Self {
        Models(
            stored
                .into_iter()
                .map(|m| ((m.instance.clone(), m.metric_id.clone()), m))
                .collect(),
        )
    }
}

impl AnomalyModels for Models {
    fn model(&self, instance: &str, metric_id: &str) -> Option<&Model> {
        self.0
            .get(&(instance.to_owned(), metric_id.to_owned()))
            .map(|m| &m.model)
    }
}

/// What a model is trained for: the alarm's queries, period and training configuration.
pub(crate) fn fingerprint(a: &Alarm) -> String {
    serde_json::to_string(&(
        &a.metrics,
        &a.threshold_metric_id,
        &a.anomaly,
        a.period.as_secs(),
    ))
    .unwrap_or_default()
}

/// One model the set needs.
struct Wanted {
    alarm: usize,
    instance: String,
    key: SeriesKey,
    metric_id: String,
    fingerprint: String,
}

impl AlarmRuntime {
    pub(super) fn models(&self) -> MutexGuard<'_, Models> {
        self.models.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Trains the models the anomaly alarms need at `now` (new, stale, or of a changed
    /// alarm; at most [`MAX_TRAININGS_PER_TICK`]) and forgets those of alarms and instances
    /// that no longer exist. Store failures are logged; the evaluation goes on with the
    /// models at hand.
    pub(super) fn refresh_models(&self, now: Timestamp) {
        let (set, wanted) = {
            let evaluated = self.lock();
            let set: Arc<AlarmSet> = Arc::clone(&evaluated.set);
            let mut wanted = Vec::new();
            for (i, a) in set
                .alarms
                .iter()
                .enumerate()
                .filter(|(_, a)| a.is_anomaly())
            {
                let fp = fingerprint(a);
                let ids = band_inputs(a);
                for (instance, key) in
                    thermostat_alarms::engine::instances(a, &evaluated.state, &self.store)
                {
                    for id in &ids {
                        wanted.push(Wanted {
                            alarm: i,
                            instance: instance.clone(),
                            key: key.clone(),
                            metric_id: id.clone(),
                            fingerprint: fp.clone(),
                        });
                    }
                }
            }
            (set, wanted)
        };
        let keep: BTreeSet<(&str, &str)> = wanted
            .iter()
            .map(|w| (w.instance.as_str(), w.metric_id.as_str()))
            .collect();
        let stale: Vec<(String, String)> = self
            .models()
            .0
            .keys()
            .filter(|(n, id)| !keep.contains(&(n.as_str(), id.as_str())))
            .cloned()
            .collect();
        for (instance, id) in stale {
            self.models().0.remove(&(instance.clone(), id.clone()));
            if let Err(e) = self.persistence.commit_anomaly_model(&instance, &id, None) {
                tracing::warn!(alarm = %instance, error = %chain(&e), "Could not forget an anomaly model.");
            }
        }
        let due: Vec<&Wanted> = {
            let models = self.models();
            wanted
                .iter()
                .filter(|w| {
                    models
                        .0
                        .get(&(w.instance.clone(), w.metric_id.clone()))
                        .is_none_or(|m| {
                            m.fingerprint != w.fingerprint || m.model.needs_retraining(now)
                        })
                })
                .take(MAX_TRAININGS_PER_TICK)
                .collect()
        };
        for w in due {
            let a = &set.alarms[w.alarm];
            let points = match training_points(
                a,
                &w.instance,
                &w.key,
                &w.metric_id,
                &self.store,
                now,
            ) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(alarm = %w.instance, error = %e, "Could not read the history of an anomaly model.");
                    continue;
                }
            };
            let config = a.anomaly.clone().unwrap_or_else(AnomalyConfig::default);
            let model = train(&points, &config, now);
            tracing::debug!(
                alarm = %w.instance,
                metric = %w.metric_id,
                state = model.state().as_str(),
                points = model.points(),
                "Trained an anomaly model."
            );
            let stored = StoredModel {
                instance: w.instance.clone(),
                metric_id: w.metric_id.clone(),
                fingerprint: w.fingerprint.clone(),
                model,
            };
            if let Err(e) =
                self.persistence
                    .commit_anomaly_model(&w.instance, &w.metric_id, Some(&stored))
            {
                tracing::warn!(alarm = %w.instance, error = %chain(&e), "Could not store an anomaly model; it is retrained after a restart.");
            }
            self.models()
                .0
                .insert((w.instance.clone(), w.metric_id.clone()), stored);
        }
    }

    /// The anomaly models held, as `(alarm or instance, metric id, model)`.
    pub fn anomaly_models(&self) -> Vec<(String, String, Model)> {
        self.models()
            .0
            .values()
            .map(|m| (m.instance.clone(), m.metric_id.clone(), m.model.clone()))
            .collect()
    }
}
