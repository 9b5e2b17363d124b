//! CloudWatch's `EnableAlarmActions` / `DisableAlarmActions`: a run-time override of an
//! alarm's configured `actions_enabled`, persisted through the [`AlarmStore`] port and kept
//! across restarts and reloads for as long as the alarm exists.
//!
//! An override is kept only while it differs from the configured value: setting an alarm
//! back to its configured value removes it, and so does a reload whose configuration agrees
//! with it (from then on the configuration decides again) or that removes the alarm. The
//! runtime evaluates the configured set with the overrides applied, so a disabled alarm's
//! evaluations, transitions and history go on while the core invokes none of its actions.
//!
//! [`AlarmStore`]: crate::AlarmStore

use std::collections::BTreeMap;
use std::sync::Arc;

use thermostat_alarms::history::{AlarmType, ConfigChange, HistoryData, HistoryItemType};
use thermostat_alarms::{AlarmSet, HistoryItem};
use thermostat_metrics::Timestamp;

use super::{AlarmRuntime, definition_name};
use crate::error::{Error, Result};

/// Actions-enabled overrides by alarm name, each different from the alarm's configured
/// value.
pub(super) type Overrides = BTreeMap<String, bool>;

/// The history summary of an override (CloudWatch's text for these items is undocumented).
pub(super) fn summary(enabled: bool) -> &'static str {
    if enabled {
        "Alarm actions enabled"
    } else {
        "Alarm actions disabled"
    }
}

impl AlarmRuntime {
    /// CloudWatch's `EnableAlarmActions` (`enabled`) and `DisableAlarmActions`: overrides the
    /// configured `actions_enabled` of the metric or composite alarm `name` (its configured
    /// name; for a per-series alarm it applies to all its instances, present and future).
    ///
    /// From the next tick (and `SetAlarmState`) on, a disabled alarm invokes no action, while
    /// its evaluations, transitions and history go on. The override is written through the
    /// [`AlarmStore`](crate::AlarmStore) before this returns, with a `ConfigurationUpdate`
    /// history item (`Alarm actions disabled` / `Alarm actions enabled`, at `now`) for the
    /// alarm and for each of its per-series instances; it holds across restarts and reloads
    /// until it is set back, the configuration comes to agree with it, or the alarm is
    /// removed. Returns whether the effective value changed (nothing is written when it did
    /// not).
    ///
    /// # Errors
    /// [`Error::NotFound`] when no metric or composite alarm has that name,
    /// [`Error::Invalid`] (field `name`) for a per-series instance's name (actions are
    /// enabled per alarm), or a failed write ([`Error::Store`]; nothing changes then).
    pub fn set_actions_enabled(&self, name: &str, enabled: bool, now: Timestamp) -> Result<bool> {
        // The configured set and the overrides change only under `swapping`: holding it, the
        // new evaluated set is built off the evaluation lock.
        let _one_at_a_time = self.swapping.lock().unwrap_or_else(|p| p.into_inner());
        let (configured, mut overrides) = {
            let evaluated = self.lock();
            (
                Arc::clone(&evaluated.configured),
                evaluated.actions_enabled.clone(),
            )
        };
        let Some((configured_value, kind)) = configured_actions_enabled(&configured, name) else {
            return Err(not_an_alarm(&configured, name));
        };
        if overrides.get(name).copied().unwrap_or(configured_value) == enabled {
            return Ok(false);
        }
        let change = if enabled == configured_value {
            overrides.remove(name);
            None
        } else {
            overrides.insert(name.to_owned(), enabled);
            Some(enabled)
        };
        let set = with_overrides(&configured, &overrides);
        let mut evaluated = self.lock();
        let instances = evaluated
            .state
            .metric
            .iter()
            .filter(|(n, i)| i.alarm == name && n.as_str() != name)
            .map(|(n, _)| n.as_str());
        let history: Vec<HistoryItem> = std::iter::once(name)
            .chain(instances)
            .map(|n| history_item(n, kind, enabled, now))
            .collect();
        self.persistence
            .commit_actions_enabled(&[(name, change)], &history)?;
        evaluated.set = set;
        evaluated.actions_enabled = overrides;
        drop(evaluated);
        tracing::info!(
            alarm = name,
            actions_enabled = enabled,
            "{}.",
            summary(enabled)
        );
        Ok(true)
    }

    /// Whether the actions of `name` (an alarm, per-series instance or composite) are
    /// enabled now: its configured `actions_enabled`, or the override of
    /// [`set_actions_enabled`](Self::set_actions_enabled). `None` for an unknown name.
    pub fn actions_enabled(&self, name: &str) -> Option<bool> {
        let evaluated = self.lock();
        let definition = evaluated
            .state
            .metric
            .get(name)
            .map_or(name, |i| i.alarm.as_str());
        configured_actions_enabled(&evaluated.set, definition).map(|(enabled, _)| enabled)
    }
}

/// The `actions_enabled` of the metric or composite alarm named `name` in `set`, and its
/// kind.
pub(super) fn configured_actions_enabled(set: &AlarmSet, name: &str) -> Option<(bool, AlarmType)> {
    set.alarm(name)
        .map(|a| (a.actions.enabled, AlarmType::MetricAlarm))
        .or_else(|| {
            set.composite(name)
                .map(|c| (c.actions.enabled, AlarmType::CompositeAlarm))
        })
}

/// `configured` with `overrides` applied (the same set when there are none).
pub(super) fn with_overrides(configured: &Arc<AlarmSet>, overrides: &Overrides) -> Arc<AlarmSet> {
    if overrides.is_empty() {
        return Arc::clone(configured);
    }
    let mut set = AlarmSet::clone(configured);
    for a in &mut set.alarms {
        if let Some(&enabled) = overrides.get(&a.name) {
            a.actions.enabled = enabled;
        }
    }
    for c in &mut set.composites {
        if let Some(&enabled) = overrides.get(&c.name) {
            c.actions.enabled = enabled;
        }
    }
    Arc::new(set)
}

/// Splits `overrides` against `set`: those to keep (the alarm exists and its configured
/// value differs), and the names of the others.
pub(super) fn retain_overrides(set: &AlarmSet, overrides: Overrides) -> (Overrides, Vec<String>) {
    let mut dropped = Vec::new();
    let kept = overrides
        .into_iter()
        .filter(|(name, enabled)| {
            let keep = configured_actions_enabled(set, name).is_some_and(|(c, _)| c != *enabled);
            if !keep {
                dropped.push(name.clone());
            }
            keep
        })
        .collect();
    (kept, dropped)
}

/// The error for a name that is no configured alarm.
fn not_an_alarm(set: &AlarmSet, name: &str) -> Error {
    let definition = definition_name(name);
    if definition != name && set.alarm(definition).is_some_and(|a| a.is_per_series()) {
        return Error::Invalid {
            field: "name",
            message: format!(
                "actions are enabled and disabled per alarm, not per instance: use {definition:?} \
                 (it applies to all its instances)"
            ),
        };
    }
    Error::NotFound(name.to_owned())
}

/// The `ConfigurationUpdate` history item of an override.
fn history_item(name: &str, kind: AlarmType, enabled: bool, now: Timestamp) -> HistoryItem {
    HistoryItem {
        alarm_name: name.to_owned(),
        alarm_type: kind,
        timestamp: now,
        item_type: HistoryItemType::ConfigurationUpdate,
        summary: summary(enabled).to_owned(),
        data: HistoryData::Configuration {
            change: ConfigChange::Updated,
        },
    }
}
