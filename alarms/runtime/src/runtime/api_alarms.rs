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
use crate::persistence::{AlarmStore, AlarmTags};

/// The two sources of the configured set.
#[derive(Debug)]
pub(super) struct Sources {
    /// The configuration files' alarms (started with or reloaded).
    pub(super) yaml: Arc<AlarmSet>,
    /// The API's alarms, by name.
    pub(super) api: BTreeMap<String, Alarm>,
    /// The API's composite alarms, by name.
    pub(super) api_composites: BTreeMap<String, CompositeAlarm>,
    /// Every alarm's tags, by name (API and file alarms alike; an alarm without tags has no
    /// entry).
    pub(super) tags: BTreeMap<String, AlarmTags>,
}

impl Sources {
    /// Whether an alarm or composite alarm named `name` exists in either source.
    fn has(&self, name: &str) -> bool {
        owning_file(&self.yaml, name).is_some()
            || self.api.contains_key(name)
            || self.api_composites.contains_key(name)
    }
}

/// The API's alarm and composite definitions and every alarm's tags, by name.
type Definitions = (
    BTreeMap<String, Alarm>,
    BTreeMap<String, CompositeAlarm>,
    BTreeMap<String, AlarmTags>,
);

/// The [`Definitions`] `persistence` holds.
pub(super) fn stored_definitions(persistence: &dyn AlarmStore) -> Result<Definitions> {
    let api = persistence
        .load_api_alarms()?
        .into_iter()
        .map(|a| (a.name.clone(), a))
        .collect();
    let api_composites = persistence
        .load_api_composites()?
        .into_iter()
        .map(|c| (c.name.clone(), c))
        .collect();
    let tags = persistence.load_alarm_tags()?.into_iter().collect();
    Ok((api, api_composites, tags))
}

/// Most tags of one alarm (CloudWatch's quota).
pub const MAX_ALARM_TAGS: usize = 50;

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
        self.put_api_alarm_tagged(alarm, AlarmTags::new())
    }

    /// [`put_api_alarm`](Self::put_api_alarm) with the tags a new alarm starts with; they
    /// are ignored when the alarm exists already (as CloudWatch's `PutMetricAlarm` ignores
    /// `Tags` then: [`tag_alarm`](Self::tag_alarm) changes them).
    ///
    /// # Errors
    /// As [`put_api_alarm`](Self::put_api_alarm), and [`Error::Invalid`] (field `tags`) for
    /// more than [`MAX_ALARM_TAGS`] tags.
    pub fn put_api_alarm_tagged(&self, alarm: Alarm, tags: AlarmTags) -> Result<bool> {
        let name = alarm.name.clone();
        self.put_api(&name, |sources| {
            if sources.api_composites.contains_key(&name) {
                return Err(taken_by("a composite alarm", &name));
            }
            let new = !sources.api.contains_key(&name);
            if new {
                self.start_tags(sources, &name, tags)?;
            }
            self.persistence
                .commit_api_alarm(&name, Some(&alarm), &[])?;
            sources.api.insert(name.clone(), alarm);
            Ok(new)
        })
    }

    /// Writes the tags a new alarm starts with (removing any left by an alarm of the same
    /// name that a crash kept from being removed).
    fn start_tags(&self, sources: &mut Sources, name: &str, tags: AlarmTags) -> Result<()> {
        check_tag_count(tags.len())?;
        self.persistence
            .commit_alarm_tags(name, Some(&tags).filter(|t| !t.is_empty()))?;
        if tags.is_empty() {
            sources.tags.remove(name);
        } else {
            sources.tags.insert(name.to_owned(), tags);
        }
        Ok(())
    }

    /// Creates or replaces the composite alarm `composite` (validated) as an API alarm, as
    /// [`put_api_alarm`](Self::put_api_alarm) does a metric alarm's.
    ///
    /// # Errors
    /// [`Error::OwnedByFile`], [`Error::Invalid`] (field `alarm_rule`) when its rule or
    /// suppressor names an alarm that does not exist or makes a cycle, or a failed write.
    pub fn put_api_composite(&self, composite: CompositeAlarm) -> Result<bool> {
        self.put_api_composite_tagged(composite, AlarmTags::new())
    }

    /// [`put_api_composite`](Self::put_api_composite) with the tags a new composite alarm
    /// starts with, as [`put_api_alarm_tagged`](Self::put_api_alarm_tagged).
    ///
    /// # Errors
    /// As [`put_api_composite`](Self::put_api_composite), and [`Error::Invalid`] (field
    /// `tags`) for more than [`MAX_ALARM_TAGS`] tags.
    pub fn put_api_composite_tagged(
        &self,
        composite: CompositeAlarm,
        tags: AlarmTags,
    ) -> Result<bool> {
        let name = composite.name.clone();
        self.put_api(&name, |sources| {
            if sources.api.contains_key(&name) {
                return Err(taken_by("a metric alarm", &name));
            }
            let mut tentative = Sources {
                yaml: Arc::clone(&sources.yaml),
                api: sources.api.clone(),
                api_composites: sources.api_composites.clone(),
                tags: BTreeMap::new(),
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
            if !sources.api_composites.contains_key(&name) {
                self.start_tags(sources, &name, tags)?;
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
            if sources.tags.contains_key(name) {
                // After the definition: tags left by a crash here belong to no alarm, and a
                // new alarm of the name replaces them.
                self.persistence.commit_alarm_tags(name, None)?;
                sources.tags.remove(name);
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

    /// The tags of the alarm or composite alarm `name` (of either source).
    ///
    /// # Errors
    /// [`Error::NotFound`] when no alarm has that name.
    pub fn alarm_tags(&self, name: &str) -> Result<AlarmTags> {
        let sources = self.sources();
        if !sources.has(name) {
            return Err(Error::NotFound(name.to_owned()));
        }
        Ok(sources.tags.get(name).cloned().unwrap_or_default())
    }

    /// Adds `tags` to the alarm `name` (a key it has already takes the new value). Alarms of
    /// both sources take tags: they are the server's, not part of the definition.
    ///
    /// # Errors
    /// [`Error::NotFound`] when no alarm has that name, [`Error::Invalid`] (field `tags`)
    /// when the alarm would have more than [`MAX_ALARM_TAGS`], or a failed write.
    pub fn tag_alarm(&self, name: &str, tags: AlarmTags) -> Result<()> {
        self.change_tags(name, |t| t.extend(tags))
    }

    /// Removes the tags with `keys` from the alarm `name` (keys it does not have are passed
    /// over).
    ///
    /// # Errors
    /// [`Error::NotFound`] when no alarm has that name, or a failed write.
    pub fn untag_alarm(&self, name: &str, keys: &[String]) -> Result<()> {
        self.change_tags(name, |t| keys.iter().for_each(|k| drop(t.remove(k))))
    }

    fn change_tags(&self, name: &str, change: impl FnOnce(&mut AlarmTags)) -> Result<()> {
        let mut sources = self.sources();
        if !sources.has(name) {
            return Err(Error::NotFound(name.to_owned()));
        }
        let mut tags = sources.tags.get(name).cloned().unwrap_or_default();
        change(&mut tags);
        check_tag_count(tags.len())?;
        self.persistence
            .commit_alarm_tags(name, Some(&tags).filter(|t| !t.is_empty()))?;
        if tags.is_empty() {
            sources.tags.remove(name);
        } else {
            sources.tags.insert(name.to_owned(), tags);
        }
        Ok(())
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

fn check_tag_count(n: usize) -> Result<()> {
    if n > MAX_ALARM_TAGS {
        return Err(Error::Invalid {
            field: "tags",
            message: format!("an alarm has at most {MAX_ALARM_TAGS} tags, this would make {n}"),
        });
    }
    Ok(())
}
