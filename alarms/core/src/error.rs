//! Errors of this crate: configuration errors with positions ([`ConfigError`],
//! [`ConfigErrors`]) and the crate's [`Error`] enum for the other fallible operations.

use std::fmt;

/// A position in a source file: 1-based line and column (0 when unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// Line, starting at 1.
    pub line: u32,
    /// Column, starting at 1 (in characters).
    pub column: u32,
}

impl Pos {
    /// A position from 1-based line and column numbers.
    pub const fn new(line: u32, column: u32) -> Self {
        Pos { line, column }
    }
}

/// The rule a configuration error breaks, for programs that group or count errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The text is not YAML, or not of the expected shape (a list where a map belongs...).
    Syntax,
    /// A field that the schema does not have.
    UnknownField,
    /// A required field is absent.
    Required,
    /// A value is not one of the allowed words.
    Enum,
    /// A number is malformed or out of range.
    Number,
    /// A name or text breaks CloudWatch's naming rules.
    Name,
    /// The same alarm name is defined twice.
    Duplicate,
    /// Two fields contradict each other (M > N, period × N too long...).
    Consistency,
    /// An action string is not one of the supported forms.
    Action,
    /// A composite alarm rule does not parse or names an unknown alarm.
    AlarmRule,
    /// Composite alarms refer to each other in a cycle.
    Cycle,
    /// A `tests:` entry is malformed.
    Test,
}

/// One problem found while loading an alarm file, with where it is.
///
/// Displays as `file:line:column: path: message`, e.g.
/// `alarms/cpu.yaml:12:16: alarms.web-high-cpu.threshold: must be a finite number (got .nan)`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file, as given to [`crate::validate`].
    pub file: String,
    /// Where in the file.
    pub pos: Pos,
    /// The path of the offending field, e.g. `alarms.web-high-cpu.threshold`.
    pub path: String,
    /// The rule broken.
    pub rule: Rule,
    /// What is wrong, phrased as what the field must be, with the value found.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.pos.line, self.pos.column, self.path, self.message
        )
    }
}

/// Every problem found in a set of alarm files, sorted by file and position.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The errors.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }

    /// Number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    /// One error per line, as `thermostat check` prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Errors of the crate's fallible operations other than configuration loading.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A back-test CSV line is malformed. Fix the line named; the header must be
    /// `timestamp,namespace,metric_name,dimensions,value`.
    #[error("line {line}: {field}: {message}")]
    Csv {
        /// 1-based line number.
        line: usize,
        /// The column at fault.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A time given to a back-test or test is not RFC 3339 or Unix time.
    #[error("{field}: must be an RFC 3339 time or a Unix timestamp (got {value:?})")]
    Time {
        /// The argument or field at fault.
        field: String,
        /// The value given.
        value: String,
    },
    /// A replay's range is refused: a time outside years 0000 to 9999, `to` before `from`,
    /// or longer than [`crate::backtest::MAX_REPLAY_DAYS`].
    #[error("{field}: {message}")]
    Range {
        /// `from` or `to`.
        field: String,
        /// The rule broken, with the values.
        message: String,
    },
    /// The metric store refused a query (the range holds too many periods). Shorten
    /// `evaluation_range` or use a longer period.
    #[error("alarm {alarm}: {message}")]
    Query {
        /// The alarm whose query failed.
        alarm: String,
        /// The store's message.
        message: String,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
