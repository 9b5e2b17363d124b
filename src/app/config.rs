//! Reading alarm/scaling configuration from disk: files and folders (`*.yaml`, `*.yml`,
//! recursively, in name order), validated as one set.

use std::path::{Path, PathBuf};

use thermostat_alarms::notifications::NotificationSettings;
use thermostat_alarms::{AlarmSet, ConfigErrors};
use thermostat_scaler::ScalingSet;

/// Everything the configuration files hold, validated together.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Alarms and composites, plus the alarms target-tracking policies create.
    pub alarms: AlarmSet,
    /// Scaling groups and their policies.
    pub scaling: ScalingSet,
    /// Notification settings (SMTP, webhooks, mute rules, ...).
    pub notifications: NotificationSettings,
}

/// Why a configuration could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// A file or folder could not be read.
    Io(Vec<String>),
    /// The files were read but are invalid; every error, `file:line:column: path: message`.
    Invalid(ConfigErrors),
}

impl LoadError {
    /// Every problem as one line each.
    pub fn lines(&self) -> Vec<String> {
        match self {
            LoadError::Io(lines) => lines.clone(),
            LoadError::Invalid(errors) => errors.to_string().lines().map(str::to_owned).collect(),
        }
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

/// The YAML files named by `paths` (folders are searched recursively), sorted, deduplicated.
///
/// # Errors
/// Every path that cannot be read.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Vec<String>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        walk(p, &mut files, &mut errors);
    }
    files.sort();
    files.dedup();
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}

fn walk(p: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<String>) {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => match std::fs::read_dir(p) {
            Ok(entries) => {
                let mut children: Vec<PathBuf> =
                    entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
                children.sort();
                for c in children {
                    let is_yaml = c.extension().is_some_and(|e| e == "yaml" || e == "yml");
                    if c.is_dir() || is_yaml {
                        walk(&c, files, errors);
                    }
                }
            }
            Err(e) => errors.push(format!("{}: cannot read the folder: {e}", p.display())),
        },
        Ok(_) => files.push(p.to_owned()),
        Err(e) => errors.push(format!("{}: cannot read: {e}", p.display())),
    }
}

/// Reads and validates every file of `paths` as one configuration: alarms, scaling groups
/// and notification settings, every error of all three reported at once.
///
/// # Errors
/// Unreadable paths, or every validation error.
pub fn load(paths: &[PathBuf]) -> Result<Config, LoadError> {
    if paths.is_empty() {
        return Ok(Config::default());
    }
    let files = collect_files(paths).map_err(LoadError::Io)?;
    let mut texts = Vec::with_capacity(files.len());
    let mut errors = Vec::new();
    for f in &files {
        match std::fs::read_to_string(f) {
            Ok(t) => texts.push((f.display().to_string(), t)),
            Err(e) => errors.push(format!("{}: cannot read: {e}", f.display())),
        }
    }
    if !errors.is_empty() {
        return Err(LoadError::Io(errors));
    }
    validate(&texts)
}

/// Validates file texts as one configuration.
///
/// # Errors
/// Every validation error of the alarms, scaling groups and notification settings, sorted by
/// file and position.
pub fn validate(texts: &[(String, String)]) -> Result<Config, LoadError> {
    let alarms = thermostat_alarms::validate(texts);
    // Scaling and notifications cross-check alarm actions, so they need the alarms; when the
    // alarms are invalid they are still checked against an empty set for their own errors.
    let empty = AlarmSet::default();
    let base = alarms.as_ref().unwrap_or(&empty);
    let scaling = thermostat_scaler::validate(texts, base);
    let notifications = thermostat_alarms::notifications::validate_notifications(texts, base);
    match (alarms, scaling, notifications) {
        (Ok(alarms), Ok(scaling), Ok(notifications)) => {
            let alarms = thermostat_scaler::merge_alarms(&alarms, &scaling);
            Ok(Config {
                alarms,
                scaling,
                notifications,
            })
        }
        (a, s, n) => {
            let mut all = Vec::new();
            for errors in [a.err(), s.err(), n.err()].into_iter().flatten() {
                all.extend(errors.0);
            }
            all.sort_by(|x, y| {
                (&x.file, x.pos.line, x.pos.column).cmp(&(&y.file, y.pos.line, y.pos.column))
            });
            all.dedup_by(|x, y| x.to_string() == y.to_string());
            Err(LoadError::Invalid(ConfigErrors(all)))
        }
    }
}
