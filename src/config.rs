//! Reading the configuration from disk: files and folders (`*.yaml`, `*.yml`, recursively,
//! in name order), each parsed once and validated as one set by the cores' readers (alarms,
//! composites and `tests:`, scaling groups, notification settings), every error of all of
//! them reported at once. Part of the command-line layer: the domain rules are the cores';
//! this module reads files, hands the parsed trees to the readers and checks what the
//! configuration needs from the machine ([`unmet`]).
//!
//! Every input is bounded: folders are walked with `walkdir` (symbolic links followed, a loop
//! refused, at most [`MAX_FOLDER_DEPTH`] folders deep and [`MAX_FILES`] files and folders),
//! only regular files are read (a FIFO or a device would block or never end), each at most
//! [`MAX_FILE_BYTES`] and all together at most [`MAX_TOTAL_BYTES`], read with a bound rather
//! than trusted to their reported size. The text checks (characters, nesting depth) are the
//! configuration layer's, `thermostat_yaml::check_text`.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use thermostat_alarms::notifications::NotificationSettings;
use thermostat_alarms::validate::{Need, Requirement};
use thermostat_alarms::{AlarmSet, ConfigErrors};
use thermostat_scaler::ScalingSet;
use thermostat_yaml::{Document, ErrorList};

pub use thermostat_yaml::{MAX_FILE_BYTES, MAX_YAML_DEPTH};

/// Deepest folder level searched below a `--config` folder.
pub const MAX_FOLDER_DEPTH: usize = 16;
/// Most files and folders a `--config` search may visit (YAML files and the folders holding
/// them, all paths together).
pub const MAX_FILES: usize = 10_000;
/// Most bytes all configuration files may hold together (64 MiB).
pub const MAX_TOTAL_BYTES: usize = 64 << 20;

/// Everything the configuration files hold, validated together.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Alarms and composites, plus the alarms target-tracking policies create.
    pub alarms: AlarmSet,
    /// Scaling groups and their policies.
    pub scaling: ScalingSet,
    /// Notification settings (SMTP, webhooks, mute rules, ...).
    pub notifications: NotificationSettings,
    /// The files it was read from and their contents' hashes (empty when it was not read
    /// from disk): a reload that finds the same is a no-op.
    pub source: Fingerprint,
    /// What it needs from the machine (environment variables, files, AWS credentials), with
    /// positions, sorted by file and position; [`unmet`] tells which are missing.
    pub requirements: Vec<Requirement>,
}

impl Config {
    /// Whether it holds nothing at all: no alarm, no composite, no scaling group.
    pub fn is_empty(&self) -> bool {
        self.alarms.alarms.is_empty()
            && self.alarms.composites.is_empty()
            && self.scaling.groups.is_empty()
    }

    /// Whether it holds no alarm and no composite alarm.
    pub fn has_no_alarms(&self) -> bool {
        self.alarms.alarms.is_empty() && self.alarms.composites.is_empty()
    }
}

/// The files a configuration was read from, in order, each with the xxh3-128 hash of its
/// text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fingerprint(pub Vec<(String, u128)>);

impl Fingerprint {
    /// One hex digest of the files' names (without their folders, which differ between
    /// machines) and contents, in order: equal on every node that runs the same files
    /// (cluster mode compares it, docs/cluster.md).
    pub fn digest(&self) -> String {
        let mut all = Vec::new();
        for (path, hash) in &self.0 {
            let name = std::path::Path::new(path)
                .file_name()
                .map_or_else(|| path.clone(), |n| n.to_string_lossy().into_owned());
            all.extend_from_slice(name.as_bytes());
            all.push(0);
            all.extend_from_slice(&hash.to_le_bytes());
        }
        format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&all))
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// A file or folder could not be read, or a bound was reached.
    Io(Vec<String>),
    /// The files were read but are invalid; every error, `file:line:column: path: message`.
    Invalid(ConfigErrors),
    /// The configuration is valid but would delete every alarm (see [`refuse_empty`]).
    Empty(String),
    /// The settings file's `auth` or `tls` cannot be reloaded (see
    /// [`crate::security::Security::reload`]).
    Settings(String),
}

impl LoadError {
    /// Every problem as one line each.
    pub fn lines(&self) -> Vec<String> {
        match self {
            LoadError::Io(lines) => lines.clone(),
            LoadError::Invalid(errors) => errors.to_string().lines().map(str::to_owned).collect(),
            LoadError::Empty(line) | LoadError::Settings(line) => vec![line.clone()],
        }
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

fn is_yaml(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

/// The YAML files named by `paths` (folders are searched recursively, following symbolic
/// links), sorted, deduplicated. A path given explicitly is read whatever its extension.
///
/// # Errors
/// Every path that cannot be read, a symbolic-link loop (naming the link and the folder it
/// leads back to), a folder nested more than [`MAX_FOLDER_DEPTH`] levels below the path
/// given, more than [`MAX_FILES`] YAML files and folders, or a path that is not a regular
/// file or folder. The search stops at the first bound reached.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Vec<String>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let mut visited = 0usize;
    'paths: for root in paths {
        // Not sorted while walking (that would read a whole folder into memory at once):
        // the files are sorted at the end. A folder one level too deep is listed, not read.
        let walk = walkdir::WalkDir::new(root)
            .follow_links(true)
            .max_depth(MAX_FOLDER_DEPTH + 1);
        for entry in walk {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let path = e.path().unwrap_or(root).display().to_string();
                    match (e.loop_ancestor(), e.io_error()) {
                        (Some(ancestor), _) => errors.push(format!(
                            "{path}: a symbolic link loops back to {}; loops are not followed",
                            ancestor.display()
                        )),
                        (None, Some(io)) => errors.push(format!("{path}: cannot read: {io}")),
                        (None, None) => errors.push(format!("{path}: cannot read: {e}")),
                    }
                    continue;
                }
            };
            let kind = entry.file_type();
            if entry.depth() > 0 && !kind.is_dir() && !is_yaml(entry.path()) {
                continue;
            }
            visited += 1;
            if visited > MAX_FILES {
                errors.push(format!(
                    "{}: more than {MAX_FILES} YAML files and folders in the configuration (the \
                     limit); not searched further",
                    entry.path().display()
                ));
                break 'paths;
            }
            if kind.is_dir() {
                if entry.depth() > MAX_FOLDER_DEPTH {
                    errors.push(format!(
                        "{}: folders nested more than {MAX_FOLDER_DEPTH} levels below {} (the \
                         limit); not searched",
                        entry.path().display(),
                        root.display()
                    ));
                }
            } else if kind.is_file() {
                files.push(entry.into_path());
            } else {
                errors.push(format!(
                    "{}: not a regular file (a FIFO, socket or device); only files and folders \
                     are read",
                    entry.path().display()
                ));
            }
        }
    }
    files.sort();
    files.dedup();
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}

/// Why [`read_limited`] failed.
enum ReadError {
    /// More bytes than the limit.
    TooLarge,
    /// Anything else, as `path: problem`.
    Failed(String),
}

fn read_limited(path: &Path, limit: usize) -> Result<String, ReadError> {
    let file = std::fs::File::open(path)
        .map_err(|e| ReadError::Failed(format!("{}: cannot read: {e}", path.display())))?;
    let mut bytes = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    file.take(cap)
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::Failed(format!("{}: cannot read: {e}", path.display())))?;
    if bytes.len() > limit {
        return Err(ReadError::TooLarge);
    }
    String::from_utf8(bytes).map_err(|e| {
        let good = e.utf8_error().valid_up_to();
        let before = &e.as_bytes()[..good];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        ReadError::Failed(format!(
            "{}:{line}:{column}: the file is not UTF-8 text (byte 0x{:02X})",
            path.display(),
            e.as_bytes().get(good).copied().unwrap_or(0)
        ))
    })
}

/// Reads one file (a settings or configuration file) as UTF-8 text of at most `limit` bytes,
/// without trusting its reported size (a special file may report 0 and never end).
///
/// # Errors
/// `path: problem`, or `path:line:column: ...` for text that is not UTF-8.
pub fn read_bounded(path: &Path, limit: usize) -> Result<String, String> {
    read_limited(path, limit).map_err(|e| match e {
        ReadError::TooLarge => format!(
            "{}: the file is larger than {limit} bytes, the limit for one file",
            path.display()
        ),
        ReadError::Failed(message) => message,
    })
}

/// Reads every file of `paths`: `(file name, text)` pairs in order, and their fingerprint.
///
/// # Errors
/// As [`collect_files`] and [`read_bounded`], and more than [`MAX_TOTAL_BYTES`] in all.
pub fn read(paths: &[PathBuf]) -> Result<(Vec<(String, String)>, Fingerprint), LoadError> {
    let files = collect_files(paths).map_err(LoadError::Io)?;
    let mut texts = Vec::with_capacity(files.len());
    let mut errors = Vec::new();
    let mut total = 0usize;
    for f in &files {
        let left = MAX_TOTAL_BYTES.saturating_sub(total);
        match read_limited(f, MAX_FILE_BYTES.min(left)) {
            Ok(t) => {
                total += t.len();
                texts.push((f.display().to_string(), t));
            }
            Err(ReadError::TooLarge) if left < MAX_FILE_BYTES => {
                errors.push(format!(
                    "{}: the configuration files hold more than {MAX_TOTAL_BYTES} bytes together \
                     (the limit); not read further",
                    f.display()
                ));
                break;
            }
            Err(ReadError::TooLarge) => errors.push(format!(
                "{}: the file is larger than {MAX_FILE_BYTES} bytes (16 MiB), the limit for one \
                 file",
                f.display()
            )),
            Err(ReadError::Failed(message)) => errors.push(message),
        }
    }
    if !errors.is_empty() {
        return Err(LoadError::Io(errors));
    }
    let fingerprint = Fingerprint(
        texts
            .iter()
            .map(|(f, t)| (f.clone(), xxhash_rust::xxh3::xxh3_128(t.as_bytes())))
            .collect(),
    );
    Ok((texts, fingerprint))
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
    let (texts, fingerprint) = read(paths)?;
    let mut config = validate(&texts)?;
    config.source = fingerprint;
    Ok(config)
}

/// Refuses a configuration read from `paths` that would delete every alarm, unless `allow`
/// (the `allow_empty_config` setting): one that defines nothing at all (no alarm, composite
/// or scaling group; an emptied folder, a missing file's replacement), or, on a reload, one
/// without alarms replacing a `previous` configuration that had some. A configuration of
/// scaling groups only is accepted at start. Without `--config` (`paths` empty) nothing is
/// refused: the server runs with no alarms.
///
/// # Errors
/// [`LoadError::Empty`] naming the paths and the setting.
pub fn refuse_empty(
    config: &Config,
    previous: Option<&Config>,
    paths: &[PathBuf],
    allow: bool,
) -> Result<(), LoadError> {
    if allow || paths.is_empty() {
        return Ok(());
    }
    let lost_alarms = previous.is_some_and(|p| !p.has_no_alarms()) && config.has_no_alarms();
    if !config.is_empty() && !lost_alarms {
        return Ok(());
    }
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let what = if config.is_empty() {
        "defines no alarms and no scaling groups"
    } else {
        "defines no alarms"
    };
    Err(LoadError::Empty(format!(
        "the configuration at {} {what}; refusing to delete every alarm — set \
         allow_empty_config: true (or --allow-empty-config) to allow it",
        names.join(", ")
    )))
}

/// Validates file texts as one configuration. Each text is parsed once, and its tree is read
/// by every section's reader (alarms, composites and tests; scaling groups; notification
/// settings; the actions the cross-checks need) before the next text is parsed, so that
/// one tree at a time is held.
///
/// # Errors
/// Every validation error of the alarms, scaling groups and notification settings, sorted by
/// file name and position.
pub fn validate(texts: &[(String, String)]) -> Result<Config, LoadError> {
    use thermostat_alarms::notifications::{self, NotificationsReader};
    let (mut alarm_errors, mut scaling_errors, mut notification_errors) =
        (ErrorList::new(), ErrorList::new(), ErrorList::new());
    let mut alarm_files = Vec::with_capacity(texts.len());
    let mut scaling_files = Vec::with_capacity(texts.len());
    let mut actions = Vec::with_capacity(texts.len());
    let mut settings = NotificationsReader::default();
    let mut notification_needs = Vec::new();
    for (file, text) in texts {
        let doc = Document::parse(file, text);
        alarm_files.push(thermostat_alarms::raw::read(&doc, &mut alarm_errors));
        scaling_files.push(thermostat_scaler::raw::read(&doc, &mut scaling_errors));
        settings.read(&doc, &mut notification_errors);
        notification_needs.extend(notifications::requirements_of_document(&doc));
        actions.push(thermostat_alarms::raw::file_actions(&doc));
    }
    let alarms = thermostat_alarms::validate::check(&alarm_files, &mut alarm_errors);
    // Scaling and notifications cross-check alarm actions, so they need the alarms; when the
    // alarms are invalid they are still checked against an empty set for their own errors.
    let alarms = if alarm_errors.is_empty() {
        alarms
    } else {
        AlarmSet::default()
    };
    let scaling =
        thermostat_scaler::validate::check(&scaling_files, &actions, &alarms, &mut scaling_errors);
    let notifications = settings.finish(&actions, &alarms, &mut notification_errors);
    // One list, sorted by file name and position: at one place, the alarms' errors come
    // first, then the scaling groups', then the notification settings'.
    let mut errors = alarm_errors;
    errors.extend(scaling_errors);
    errors.extend(notification_errors);
    let mut names: Vec<&str> = texts.iter().map(|(f, _)| f.as_str()).collect();
    names.sort_unstable();
    errors.finish((), &names).map_err(LoadError::Invalid)?;
    let alarms = thermostat_scaler::merge_alarms(&alarms, &scaling);
    let mut requirements = thermostat_alarms::validate::requirements_of(&alarm_files);
    requirements.extend(notification_needs);
    requirements.extend(thermostat_scaler::validate::requirements_of(&scaling_files));
    let order: std::collections::HashMap<&str, usize> = texts
        .iter()
        .enumerate()
        .map(|(i, (f, _))| (f.as_str(), i))
        .collect();
    requirements.sort_by_key(|r| (order.get(r.file.as_str()).copied(), r.pos));
    Ok(Config {
        alarms,
        scaling,
        notifications,
        source: Fingerprint::default(),
        requirements,
    })
}

/// A [`Requirement`] the machine does not meet, and whether `serve` refuses to start for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unmet {
    /// The requirement.
    pub requirement: Requirement,
    /// What is wrong, e.g. `the environment variable SMTP_PASSWORD is not set`.
    pub problem: String,
    /// Whether `serve` refuses to start without it: a variable or a file. Missing AWS
    /// credentials only warn (an EC2 instance role may provide them; the first AWS call
    /// decides).
    pub fatal: bool,
}

impl std::fmt::Display for Unmet {
    /// `file:line:column: path: problem`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.requirement;
        write!(
            f,
            "{}:{}:{}: {}: {}",
            r.file, r.pos.line, r.pos.column, r.path, self.problem
        )
    }
}

/// The contents the configuration's files requirements hold now (secret files, CA bundles),
/// as a hash per file (`None`: unreadable): a reload whose configuration files are unchanged
/// still reloads when one of these changed, so that a rotated secret or bundle takes effect.
/// Each file is read up to 1 MiB, the largest any of them may be.
pub fn required_files(requirements: &[Requirement]) -> Vec<(String, Option<u64>)> {
    use std::hash::{Hash as _, Hasher as _};
    use std::io::Read as _;
    requirements
        .iter()
        .filter_map(|r| match &r.need {
            Need::File(path) => Some(path.clone()),
            _ => None,
        })
        .map(|path| {
            let mut bytes = Vec::new();
            let read = std::fs::File::open(&path)
                .and_then(|f| f.take(1 << 20).read_to_end(&mut bytes))
                .ok();
            let hash = read.map(|_| {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                bytes.hash(&mut h);
                h.finish()
            });
            (path, hash)
        })
        .collect()
}

/// The requirements of `requirements` that this machine does not meet: environment
/// variables not set (or empty), files that cannot be read, and AWS credentials that are
/// nowhere to be seen (no `AWS_ACCESS_KEY_ID` with `AWS_SECRET_ACCESS_KEY`, no
/// `AWS_PROFILE`, web identity or container credentials, no shared credentials or config
/// file). `env` reads a variable (the binary passes `std::env::var_os`).
pub fn unmet(
    requirements: &[Requirement],
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
) -> Vec<Unmet> {
    let set = |k: &str| env(k).is_some_and(|v| !v.is_empty());
    let mut out = Vec::new();
    let mut aws = None;
    for r in requirements {
        let (problem, fatal) = match &r.need {
            Need::EnvVar(var) if !set(var) => {
                (format!("the environment variable {var} is not set"), true)
            }
            Need::File(path) => match std::fs::File::open(path) {
                Ok(_) => continue,
                Err(e) => (format!("cannot read the file {path} ({e})"), true),
            },
            Need::AwsCredentials if !*aws.get_or_insert_with(|| aws_credentials_visible(&env)) => (
                "no AWS credentials found (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                 AWS_PROFILE, AWS_WEB_IDENTITY_TOKEN_FILE, container credentials, \
                 ~/.aws/credentials or ~/.aws/config); unless an EC2 instance role provides \
                 them, AWS calls fail"
                    .to_owned(),
                false,
            ),
            _ => continue,
        };
        out.push(Unmet {
            requirement: r.clone(),
            problem,
            fatal,
        });
    }
    out
}

/// Whether AWS credentials can be found without asking the network: variables of the
/// standard AWS environment, or a shared credentials or config file.
fn aws_credentials_visible(env: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    let set = |k: &str| env(k).is_some_and(|v| !v.is_empty());
    let vars = (set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY"))
        || [
            "AWS_PROFILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ]
        .iter()
        .any(|k| set(k));
    if vars {
        return true;
    }
    let home = env("HOME").map(PathBuf::from);
    let file = |var: &str, name: &str| {
        env(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
            .is_some_and(|p| p.is_file())
    };
    file("AWS_SHARED_CREDENTIALS_FILE", "credentials") || file("AWS_CONFIG_FILE", "config")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_reports_into_one_list_sorted_by_file_name_then_position() {
        // Read in path order (`a/b.yaml` before `a-b.yaml`), listed by name.
        let texts = [
            (
                "conf/a/b.yaml",
                "scaling_groups:\n  - {name: g, min_size: 3, max_size: 1}\nnotifications:\n  retry: {max_backoff_seconds: 0}\n  colour: red\n",
            ),
            (
                "conf/a-b.yaml",
                "alarms:\n  - {name: x, namespace: A, metric_name: M, statistic: Sum, period_seconds: 61, evaluation_periods: 1, threshold: 1, comparison_operator: GreaterThanThreshold, alarm_actions: [\"webhook:nope\", \"policy:g/up\"]}\n",
            ),
        ]
        .map(|(f, t)| (f.to_owned(), t.to_owned()));
        let e = validate(&texts).unwrap_err();
        assert_eq!(
            e.lines(),
            [
                "conf/a-b.yaml:2:77: alarms.x.period_seconds: must be 10, 20, 30 or a multiple of 60 (got 61)",
                "conf/a-b.yaml:2:177: alarms.x.alarm_actions[0]: names the webhook \"nope\", but notifications.webhooks defines none",
                "conf/a/b.yaml:2:38: scaling_groups.g.max_size: must be at least min_size (3) (got 1)",
                "conf/a/b.yaml:4:32: notifications.retry.max_backoff_seconds: must be a number of seconds between 0.001 and 86400 (got 0)",
                "conf/a/b.yaml:5:3: notifications.colour: unknown field \"colour\"; expected one of: account_id, region, dashboard_url, smtp, webhooks, mute_rules, retry, queue_capacity",
            ]
        );
    }

    #[test]
    fn requirements_of_every_section_are_listed_by_file_then_position() {
        let texts = [
            (
                "b.yaml",
                "notifications:\n  smtp: {host: h, from: a@b.c, username: u, password_env: SMTP_PASSWORD}\n",
            ),
            (
                "a.yaml",
                "scaling_groups:\n  - {name: g, backend: aws_autoscaling}\nalarms:\n  - {name: x, namespace: A, metric_name: M, statistic: Sum, period_seconds: 60, evaluation_periods: 1, threshold: 1, comparison_operator: GreaterThanThreshold, alarm_actions: [\"arn:aws:sns:eu-west-1:123456789012:ops\"]}\n",
            ),
        ]
        .map(|(f, t)| (f.to_owned(), t.to_owned()));
        let config = validate(&texts).unwrap_or_else(|e| panic!("{e}"));
        let needs: Vec<String> = config
            .requirements
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            needs,
            [
                "b.yaml:2:59: notifications.smtp.password_env: needs the environment variable SMTP_PASSWORD",
                "a.yaml:2:24: scaling_groups.g.backend: needs AWS credentials",
                "a.yaml:4:177: alarms.x.alarm_actions[0]: needs AWS credentials",
            ]
        );
    }
}
