//! Configuration errors with positions ([`ConfigError`]) and the one list they are collected
//! in ([`ErrorList`]), sorted and deduplicated in one place into [`ConfigErrors`].

use std::collections::HashMap;
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

/// The rule a configuration error breaks, for programs that group or count errors. It is not
/// part of the error's text.
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
    /// A name or text breaks a naming rule (characters, length).
    Name,
    /// The same name is defined twice.
    Duplicate,
    /// Two fields contradict each other, or a value does not fit the others.
    Consistency,
    /// A value that says what to do or where to send something (an action, a target, a URL)
    /// is malformed, not allowed here, or names something that is not defined.
    Reference,
    /// An expression (a rule written in a small language of its own) does not parse or names
    /// something that is not defined.
    Expression,
    /// Entries refer to each other in a cycle.
    Cycle,
    /// An entry of a `tests:` section (expected behaviour written beside the configuration)
    /// is malformed.
    Test,
}

/// One problem found in a configuration file, with where it is.
///
/// Displays as `file:line:column: path: message`, e.g.
/// `alarms/cpu.yaml:12:16: alarms.web-high-cpu.threshold: must be a finite number (got .nan)`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file, as given.
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

impl ConfigError {
    /// Whether both say the same thing at the same place (the rule aside): the second of two
    /// such errors adds nothing for the reader.
    fn repeats(&self, other: &ConfigError) -> bool {
        self.pos == other.pos
            && self.file == other.file
            && self.path == other.path
            && self.message == other.message
    }
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

/// Every problem found in a set of configuration files, sorted by file and position (made by
/// [`ErrorList::finish`]).
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

/// The errors of a set of files as the checks find them, in any order; [`ErrorList::finish`]
/// sorts them once. Every reader of the configuration (each section, each cross-check)
/// appends to the same list, so that one run reports every problem.
#[derive(Debug, Default)]
pub struct ErrorList(Vec<ConfigError>);

impl ErrorList {
    /// An empty list.
    pub fn new() -> Self {
        ErrorList::default()
    }

    /// Appends an error.
    pub fn push(&mut self, error: ConfigError) {
        self.0.push(error);
    }

    /// Number of errors so far (a checker compares it before and after a check to tell
    /// whether the check found something).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no error was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The errors so far, unsorted.
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }

    /// `value` when no error was found, else every error sorted: by file, in the order of
    /// `files` (errors of a file not listed come first), then by position; errors at the same
    /// place keep the order they were found in; an error that repeats the one before it (the
    /// same file, position, path and message) is dropped.
    ///
    /// # Errors
    /// The sorted errors, when there is any.
    pub fn finish<T, F: AsRef<str>>(self, value: T, files: &[F]) -> Result<T, ConfigErrors> {
        if self.0.is_empty() {
            return Ok(value);
        }
        // A name given twice takes its last place, as the files' order map always did.
        let rank: HashMap<&str, usize> = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.as_ref(), i))
            .collect();
        let mut errors = self.0;
        errors.sort_by_key(|e| (rank.get(e.file.as_str()).copied(), e.pos));
        errors.dedup_by(|later, earlier| later.repeats(earlier));
        Err(ConfigErrors(errors))
    }
}

impl IntoIterator for ErrorList {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    /// The errors as found, unsorted.
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl Extend<ConfigError> for ErrorList {
    fn extend<I: IntoIterator<Item = ConfigError>>(&mut self, errors: I) {
        self.0.extend(errors);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(file: &str, line: u32, column: u32, path: &str, message: &str) -> ConfigError {
        ConfigError {
            file: file.to_owned(),
            pos: Pos::new(line, column),
            path: path.to_owned(),
            rule: Rule::Syntax,
            message: message.to_owned(),
        }
    }

    #[test]
    fn errors_display_as_file_line_column_path_message() {
        let e = error(
            "a.yaml",
            12,
            16,
            "alarms.x.threshold",
            "must be a finite number",
        );
        assert_eq!(
            e.to_string(),
            "a.yaml:12:16: alarms.x.threshold: must be a finite number"
        );
        let all = ConfigErrors(vec![e.clone(), e]);
        assert_eq!(all.to_string().lines().count(), 2);
    }

    #[test]
    fn an_empty_list_finishes_with_the_value() {
        assert_eq!(ErrorList::new().finish(7, &["a.yaml"]), Ok(7));
    }

    #[test]
    fn errors_are_sorted_by_the_files_order_then_position_stably() {
        let mut list = ErrorList::new();
        list.push(error("b.yaml", 1, 1, "p", "first found in b"));
        list.push(error("a.yaml", 3, 1, "p", "a line 3"));
        list.push(error("b.yaml", 1, 1, "q", "second found in b, same place"));
        list.push(error("a.yaml", 2, 9, "p", "a line 2 column 9"));
        list.push(error("a.yaml", 2, 10, "p", "a line 2 column 10"));
        list.push(error("z.yaml", 1, 1, "p", "a file not listed"));
        // The order of `files` decides, not the names' alphabetical order.
        let e = list.finish((), &["b.yaml", "a.yaml"]).unwrap_err();
        let messages: Vec<&str> = e.0.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "a file not listed",
                "first found in b",
                "second found in b, same place",
                "a line 2 column 9",
                "a line 2 column 10",
                "a line 3",
            ]
        );
    }

    #[test]
    fn an_error_repeating_the_one_before_is_dropped_whatever_its_rule() {
        let mut list = ErrorList::new();
        let e = error("a.yaml", 1, 1, "p", "same");
        list.push(e.clone());
        list.push(ConfigError {
            rule: Rule::Enum,
            ..e.clone()
        });
        list.push(error("a.yaml", 1, 1, "p", "different"));
        list.push(e.clone());
        list.push(error("b.yaml", 1, 1, "p", "same"));
        let errors = list.finish((), &["a.yaml", "b.yaml"]).unwrap_err();
        // Only adjacent repeats go: the third `same` follows `different`.
        assert_eq!(
            errors.to_string(),
            "a.yaml:1:1: p: same\na.yaml:1:1: p: different\na.yaml:1:1: p: same\nb.yaml:1:1: p: same"
        );
    }

    #[test]
    fn a_file_named_twice_takes_its_last_place() {
        let mut list = ErrorList::new();
        list.push(error("b.yaml", 1, 1, "p", "b"));
        list.push(error("a.yaml", 1, 1, "p", "a"));
        let e = list
            .finish((), &["a.yaml", "b.yaml", "a.yaml"])
            .unwrap_err();
        assert_eq!(e.0[0].file, "b.yaml");
    }
}
