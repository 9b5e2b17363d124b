//! The second source of alarms: metric and composite alarms created through the API
//! (CloudWatch's `PutMetricAlarm`, `PutCompositeAlarm`, `DeleteAlarms`), kept through the
//! [`AlarmStore`](crate::AlarmStore) port and evaluated with the configuration files' alarms
//! as one set.
//!
//! The configured set is the files' set with the API alarms after it (sorted by name, the
//! composites in dependency order); an API alarm whose name a file defines is shadowed by the
//! file's (the file owns the name), and an API composite that names a missing alarm is left
//! out until the alarm is back.
//! Creating, replacing or deleting an API alarm writes its definition first, then swaps the
//! new configured set in through the same diff and carry-over as a reload: a new alarm
//! starts in `INSUFFICIENT_DATA` with a `ConfigurationUpdate` history item, a replaced one
//! keeps its state value, a deleted one's state is forgotten.

use std::collections::BTreeMap;
use std::sync::Arc;

use thermostat_alarms::{Alarm, AlarmSet, CompositeAlarm};

use super::AlarmRuntime;
use crate::error::{Error, Result};

/// The two sources of the configured set.
#[derive(Debug)]
pub(super) struct Sources {
    /// The configuration files' alarms (started with or reloaded).
    pub(super) yaml: Arc<AlarmSet>,
    /// The API's alarms, by name.
    pub(super) api: BTreeMap<String, Alarm>,
    /// The API's composite alarms, by name.
    pub(super) api_composites: BTreeMap<String, CompositeAlarm>,
}

/// The configured set of `sources`: the files' set, then the API alarms it does not shadow,
/// then the API composites whose rule and suppressor name alarms of the set, each after the
/// composites it refers to (one that refers to an alarm no longer there, or is in a cycle, is
/// left out until its references are back).
pub(super) fn merge(sources: &Sources) -> Arc<AlarmSet> {
    if sources.api.is_empty() && sources.api_composites.is_empty() {
        return Arc::clone(&sources.yaml);
    }
    let yaml = &sources.yaml;
    let taken = |name: &str| yaml.alarm(name).is_some() || yaml.composite(name).is_some();
    let mut set = AlarmSet::clone(yaml);
    set.alarms
        .extend(sources.api.values().filter(|a| !taken(&a.name)).cloned());
    let mut pending: Vec<&CompositeAlarm> = sources
        .api_composites
        .values()
        .filter(|c| !taken(&c.name) && !sources.api.contains_key(&c.name))
        .collect();
    loop {
        let known = |set: &AlarmSet, n: &str| set.alarm(n).is_some() || set.composite(n).is_some();
        let (ready, waiting): (Vec<&CompositeAlarm>, Vec<&CompositeAlarm>) =
            pending.into_iter().partition(|c| {
                c.rule.references().iter().all(|r| known(&set, r))
                    && c.suppressor.as_ref().is_none_or(|s| known(&set, &s.alarm))
            });
        if ready.is_empty() {
            for c in &waiting {
                tracing::warn!(
                    alarm = %c.name,
                    "A composite alarm created through the API refers to an alarm that does not exist (or to itself through others): it is not evaluated until the alarm is back."
                );
            }
            break;
        }
        set.composites.extend(ready.into_iter().cloned());
        pending = waiting;
    }
    Arc::new(set)
}

/// Where an alarm of the configured set comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlarmOrigin {
    /// A configuration file, which owns it.
    File(String),
    /// The API (`PutMetricAlarm`).
    Api,
}

/// The file that defines `name` in `yaml`, if any.
fn owning_file(yaml: &AlarmSet, name: &str) -> Option<String> {
    yaml.alarm(name)
        .map(|a| a.source.file.clone())
        .or_else(|| yaml.composite(name).map(|c| c.source.file.clone()))
}

impl AlarmRuntime {
    /// Creates or replaces the metric alarm `alarm` (validated) as an API alarm: its
    /// definition is written, then it is evaluated with the others from the next tick on. A
    /// new alarm starts in `INSUFFICIENT_DATA`; a replaced one keeps its state value, as a
    /// changed alarm of a reload does. Returns whether it was new.
    ///
    /// # Errors
    /// [`Error::OwnedByFile`] when a configuration file defines an alarm of that name,
    /// [`Error::Invalid`] (field `name`) when an API composite alarm has it, or a failed write
    /// ([`Error::Store`]; nothing changes then).
    pub fn put_api_alarm(&self, alarm: Alarm) -> Result<bool> {
        let name = alarm.name.clone();
        self.put_api(&name, |sources| {
            if sources.api_composites.contains_key(&name) {
                return Err(taken_by("a composite alarm", &name));
            }
            self.persistence
                .commit_api_alarm(&name, Some(&alarm), &[])?;
            Ok(sources.api.insert(name.clone(), alarm).is_none())
        })
    }

    /// Creates or replaces the composite alarm `composite` (validated) as an API alarm, as
    /// [`put_api_alarm`](Self::put_api_alarm) does a metric alarm's.
    ///
    /// # Errors
    /// [`Error::OwnedByFile`], [`Error::Invalid`] (field `alarm_rule`) when its rule or
    /// suppressor names an alarm that does not exist or makes a cycle, or a failed write.
    pub fn put_api_composite(&self, composite: CompositeAlarm) -> Result<bool> {
        let name = composite.name.clone();
        self.put_api(&name, |sources| {
            if sources.api.contains_key(&name) {
                return Err(taken_by("a metric alarm", &name));
            }
            let mut tentative = Sources {
                yaml: Arc::clone(&sources.yaml),
                api: sources.api.clone(),
                api_composites: sources.api_composites.clone(),
            };
            tentative
                .api_composites
                .insert(name.clone(), composite.clone());
            if merge(&tentative).composite(&name).is_none() {
                return Err(Error::Invalid {
                    field: "alarm_rule",
                    message: "must name existing alarms only, without a cycle through other \
                              composite alarms"
                        .to_owned(),
                });
            }
            self.persistence
                .commit_api_composite(&name, Some(&composite))?;
            Ok(sources
                .api_composites
                .insert(name.clone(), composite)
                .is_none())
        })
    }

    /// The body of the puts: `change` under `swapping` and the sources' lock (refused when a
    /// file owns `name`), then the swap of the new configured set.
    fn put_api(
        &self,
        name: &str,
        change: impl FnOnce(&mut Sources) -> Result<bool>,
    ) -> Result<bool> {
        let _one_at_a_time = self.swapping.lock().unwrap_or_else(|p| p.into_inner());
        let (merged, new) = {
            let mut sources = self.sources();
            if let Some(file) = owning_file(&sources.yaml, name) {
                return Err(Error::OwnedByFile {
                    name: name.to_owned(),
                    file,
                });
            }
            let new = change(&mut sources)?;
            (merge(&sources), new)
        };
        let report = self.swap_configured(merged, |_| {});
        tracing::info!(
            alarm = name,
            changed = report.changed.len(),
            new,
            "Stored an alarm created through the API."
        );
        Ok(new)
    }

    /// Deletes the API alarm or composite alarm `name`: its definition and state; its history
    /// stays, with a `ConfigurationUpdate` item.
    ///
    /// # Errors
    /// [`Error::OwnedByFile`] when a configuration file defines it, [`Error::NotFound`] when
    /// no API alarm has that name, or a failed write ([`Error::Store`]; nothing changes then).
    pub fn delete_api_alarm(&self, name: &str) -> Result<()> {
        let _one_at_a_time = self.swapping.lock().unwrap_or_else(|p| p.into_inner());
        let merged = {
            let mut sources = self.sources();
            if let Some(file) = owning_file(&sources.yaml, name) {
                return Err(Error::OwnedByFile {
                    name: name.to_owned(),
                    file,
                });
            }
            if sources.api.contains_key(name) {
                self.persistence.commit_api_alarm(name, None, &[])?;
                sources.api.remove(name);
            } else if sources.api_composites.contains_key(name) {
                self.persistence.commit_api_composite(name, None)?;
                sources.api_composites.remove(name);
            } else {
                return Err(Error::NotFound(name.to_owned()));
            }
            merge(&sources)
        };
        self.swap_configured(merged, |_| {});
        tracing::info!(alarm = name, "Deleted an alarm created through the API.");
        Ok(())
    }

    /// Where the alarm `name` (a metric or composite alarm's configured name) comes from;
    /// `None` for an unknown name.
    pub fn origin(&self, name: &str) -> Option<AlarmOrigin> {
        let sources = self.sources();
        owning_file(&sources.yaml, name)
            .map(AlarmOrigin::File)
            .or_else(|| {
                (sources.api.contains_key(name) || sources.api_composites.contains_key(name))
                    .then_some(AlarmOrigin::Api)
            })
    }

    /// The alarms created through the API, sorted by name (for `export-alarms`).
    pub fn api_alarms(&self) -> Vec<Alarm> {
        self.sources().api.values().cloned().collect()
    }
}

/// The error for a name an API alarm of the other kind has.
fn taken_by(kind: &str, name: &str) -> Error {
    Error::Invalid {
        field: "name",
        message: format!("{name:?} is the name of {kind} already: delete it first"),
    }
}
