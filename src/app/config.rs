//! Reading alarm/scaling configuration from disk: files and folders (`*.yaml`, `*.yml`,
//! recursively, in name order), validated as one set.

use std::path::{Path, PathBuf};

use thermostat_alarms::{AlarmSet, ConfigErrors};

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

/// Reads and validates every file of `paths` as one set.
///
/// # Errors
/// Unreadable paths, or every validation error.
pub fn load(paths: &[PathBuf]) -> Result<AlarmSet, LoadError> {
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
    thermostat_alarms::validate(&texts).map_err(LoadError::Invalid)
}
