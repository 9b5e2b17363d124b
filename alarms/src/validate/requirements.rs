//! What a configuration needs from the machine it runs on ([`Requirement`]), and what the
//! alarm sections need: AWS credentials for every SNS topic action.

use thermostat_yaml::ErrorList;

use crate::action::{self, Action};
use crate::error::Pos;
use crate::raw::{self, pos};

/// What a configuration needs from the machine it runs on, beside its own files: an
/// environment variable holding a secret, a file, or AWS credentials. Validation cannot
/// check them (the cores read no environment and no files); it returns them with their
/// positions ([`requirements_of`], `thermostat_alarms::notifications::requirements_of_document`,
/// `thermostat_scaler::validate::requirements_of`) and the binary checks them: `thermostat
/// check` warns about each one missing, `thermostat serve` refuses to start.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Requirement {
    /// The file that names it.
    pub file: String,
    /// Where in the file.
    pub pos: Pos,
    /// The setting's path (`notifications.smtp.password_env`).
    pub path: String,
    /// What is needed.
    pub need: Need,
}

/// What a [`Requirement`] needs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Need {
    /// An environment variable that MUST be set (to a value that is not empty).
    EnvVar(String),
    /// A file that MUST exist and be readable.
    File(String),
    /// AWS credentials from the standard AWS environment (variables, shared files, an
    /// instance or container role). Only a real call can tell for sure.
    AwsCredentials,
}

impl std::fmt::Display for Need {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Need::EnvVar(v) => write!(f, "the environment variable {v}"),
            Need::File(p) => write!(f, "the file {p}"),
            Need::AwsCredentials => f.write_str("AWS credentials"),
        }
    }
}

impl std::fmt::Display for Requirement {
    /// `file:line:column: path: needs <what>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: needs {}",
            self.file, self.pos.line, self.pos.column, self.path, self.need
        )
    }
}

/// The requirements of the alarm sections of `files` (the files given to
/// [`validate`](super::validate)): AWS credentials for every SNS topic action, at the
/// action's position. Files that are not YAML are skipped (validation reports them).
pub fn requirements<P: AsRef<str>, T: AsRef<str>>(files: &[(P, T)]) -> Vec<Requirement> {
    requirements_of(&raw::read_files(files, &mut ErrorList::new()))
}

/// The requirements of raw alarm files ([`raw::read`]), as [`requirements`].
pub fn requirements_of(raws: &[raw::AlarmFile]) -> Vec<Requirement> {
    let mut out = Vec::new();
    for f in raws {
        let lists = f
            .alarms
            .iter()
            .map(|e| {
                (
                    "alarms",
                    e.index,
                    &e.spec.name,
                    [
                        ("alarm_actions", &e.spec.alarm_actions),
                        ("ok_actions", &e.spec.ok_actions),
                        (
                            "insufficient_data_actions",
                            &e.spec.insufficient_data_actions,
                        ),
                    ],
                )
            })
            .chain(f.composite_alarms.iter().map(|e| {
                (
                    "composite_alarms",
                    e.index,
                    &e.spec.name,
                    [
                        ("alarm_actions", &e.spec.alarm_actions),
                        ("ok_actions", &e.spec.ok_actions),
                        (
                            "insufficient_data_actions",
                            &e.spec.insufficient_data_actions,
                        ),
                    ],
                )
            }));
        for (section, index, name, kinds) in lists {
            let owner = name.as_ref().map_or_else(
                || format!("{section}[{index}]"),
                |n| format!("{section}.{}", n.as_str()),
            );
            for (key, list) in kinds {
                for (i, t) in list.iter().flat_map(|l| l.iter()).enumerate() {
                    if matches!(action::parse(t.as_str()), Ok(Action::SnsTopic { .. })) {
                        out.push(Requirement {
                            file: f.file.clone(),
                            pos: pos(t),
                            path: format!("{owner}.{key}[{i}]"),
                            need: Need::AwsCredentials,
                        });
                    }
                }
            }
        }
    }
    out
}
