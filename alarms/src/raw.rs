//! The raw, unvalidated form of an alarm file, read from the file's parsed tree with
//! positions kept.
//!
//! Scalars are kept as [`Spanned`] strings: the raw layer checks only the *shape* of the
//! document (which keys exist, what is a list or a map) and [`crate::validate()`] turns the
//! text into typed values with messages of our own. Each entry of `alarms:`,
//! `composite_alarms:` and `tests:` is deserialised on its own, and unknown keys are reported
//! and removed before retrying, so that one mistake never hides the others. Parsing, the
//! text bounds and the field machinery are `thermostat-yaml`'s, re-exported here for the
//! readers that reach them through this module.

use serde::Deserialize;
use thermostat_yaml::{Document, EmptyList, ErrorList, FieldChecker, Node, TextErrorKind};

pub use thermostat_yaml::{
    Entry, MAX_FILE_BYTES, MAX_YAML_DEPTH, Pairs, Spanned, Text, TextError, TextList, check_text,
    parse_yaml, pos, pos_of, unknown_field_message,
};

use crate::error::{ConfigError, Pos, Rule};

/// One entry of `alarms:` (CloudWatch `PutMetricAlarm`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct AlarmSpec {
    pub name: Option<Text>,
    pub description: Option<Text>,
    pub namespace: Option<Text>,
    pub metric_name: Option<Text>,
    pub dimensions: Option<Spanned<Pairs>>,
    pub statistic: Option<Text>,
    pub period_seconds: Option<Text>,
    pub evaluation_periods: Option<Text>,
    pub datapoints_to_alarm: Option<Text>,
    pub evaluation_range: Option<Text>,
    pub threshold: Option<Text>,
    pub ok_threshold: Option<Text>,
    pub comparison_operator: Option<Text>,
    pub treat_missing_data: Option<Text>,
    pub evaluate_low_sample_count_percentile: Option<Text>,
    pub evaluation_delay_seconds: Option<Text>,
    pub repeat_interval_seconds: Option<Text>,
    pub unit: Option<Text>,
    pub actions_enabled: Option<Text>,
    pub alarm_actions: Option<TextList>,
    pub ok_actions: Option<TextList>,
    pub insufficient_data_actions: Option<TextList>,
    pub metrics: Option<Spanned<Vec<Spanned<MetricSpec>>>>,
    pub threshold_metric_id: Option<Text>,
    pub anomaly_detection: Option<Spanned<AnomalySpec>>,
}

/// `metric_stat:` of an entry of a math alarm's `metrics:` (`MetricDataQuery.MetricStat`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct MetricStatSpec {
    pub namespace: Option<Text>,
    pub metric_name: Option<Text>,
    pub dimensions: Option<Spanned<Pairs>>,
    pub period_seconds: Option<Text>,
    pub statistic: Option<Text>,
    pub unit: Option<Text>,
}

/// One entry of a math alarm's `metrics:` (`PutMetricAlarm.Metrics`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct MetricSpec {
    pub id: Option<Text>,
    pub metric_stat: Option<Spanned<MetricStatSpec>>,
    pub expression: Option<Text>,
    pub label: Option<Text>,
    pub return_data: Option<Text>,
    pub period_seconds: Option<Text>,
}

/// One excluded training range of `anomaly_detection:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct TimeRangeSpec {
    pub start: Option<Text>,
    pub end: Option<Text>,
}

/// `anomaly_detection:` of an anomaly-detection alarm (`PutAnomalyDetector`'s
/// `Configuration`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct AnomalySpec {
    pub excluded_time_ranges: Option<Spanned<Vec<Spanned<TimeRangeSpec>>>>,
    pub metric_timezone: Option<Text>,
}

/// `actions_suppressor:` of a composite alarm.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct SuppressorSpec {
    pub alarm: Option<Text>,
    pub wait_period_seconds: Option<Text>,
    pub extension_period_seconds: Option<Text>,
}

/// One entry of `composite_alarms:` (CloudWatch `PutCompositeAlarm`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct CompositeSpec {
    pub name: Option<Text>,
    pub description: Option<Text>,
    pub alarm_rule: Option<Text>,
    pub actions_enabled: Option<Text>,
    pub alarm_actions: Option<TextList>,
    pub ok_actions: Option<TextList>,
    pub insufficient_data_actions: Option<TextList>,
    pub actions_suppressor: Option<Spanned<SuppressorSpec>>,
}

/// One input datapoint of a test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct TestDatapointSpec {
    pub at: Option<Text>,
    pub value: Option<Text>,
    pub values: Option<TextList>,
    pub metric: Option<Text>,
    pub namespace: Option<Text>,
    pub metric_name: Option<Text>,
    pub dimensions: Option<Spanned<Pairs>>,
    pub unit: Option<Text>,
}

/// One generated series of a test's `history:` (data before the test's start, e.g. to train
/// an anomaly model).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct TestHistorySpec {
    pub metric: Option<Text>,
    pub namespace: Option<Text>,
    pub metric_name: Option<Text>,
    pub dimensions: Option<Spanned<Pairs>>,
    pub unit: Option<Text>,
    pub days: Option<Text>,
    pub every: Option<Text>,
    pub value: Option<Text>,
    pub daily_amplitude: Option<Text>,
    pub noise: Option<Text>,
}

/// One expected state of a test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct TestExpectSpec {
    pub at: Option<Text>,
    pub alarm: Option<Text>,
    pub state: Option<Text>,
    pub reason_contains: Option<Text>,
}

/// One expected transition of a test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct TestTransitionSpec {
    pub at: Option<Text>,
    pub alarm: Option<Text>,
    pub from: Option<Text>,
    pub to: Option<Text>,
}

/// One entry of `tests:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct TestSpec {
    pub name: Option<Text>,
    pub alarm: Option<Text>,
    pub start: Option<Text>,
    pub initial_state: Option<Text>,
    pub datapoints: Option<Spanned<Vec<Spanned<TestDatapointSpec>>>>,
    pub history: Option<Spanned<Vec<Spanned<TestHistorySpec>>>>,
    pub expect: Option<Spanned<Vec<Spanned<TestExpectSpec>>>>,
    pub transitions: Option<Spanned<Vec<Spanned<TestTransitionSpec>>>>,
}

/// The top-level keys of an alarm file.
pub const FILE_KEYS: &[&str] = &["alarms", "composite_alarms", "tests"];

/// Top-level keys of the same files that other parts of Thermostat own and validate
/// (scaling groups: `thermostat-scaler`; notification settings: `notifications` module).
/// The alarm parser skips them.
pub const OTHER_FILE_KEYS: &[&str] = &["scaling_groups", "notifications"];

/// What a file must be at the top level, when it is not.
const FILE_SHAPE: &str = "must be a map with the keys alarms, composite_alarms and tests";

/// One alarm file in raw form: the entries that have the right shape.
#[derive(Debug, Default)]
pub struct AlarmFile {
    /// The file name, as given.
    pub file: String,
    /// `alarms:` entries.
    pub alarms: Vec<Entry<AlarmSpec>>,
    /// `composite_alarms:` entries.
    pub composite_alarms: Vec<Entry<CompositeSpec>>,
    /// `tests:` entries.
    pub tests: Vec<Entry<TestSpec>>,
}

/// Reads the alarm sections of one parsed file into their raw form, appending every shape
/// error (and the error of a text that could not be parsed) to `errors`.
pub fn read(doc: &Document, errors: &mut ErrorList) -> AlarmFile {
    let mut out = AlarmFile {
        file: doc.file().to_owned(),
        ..AlarmFile::default()
    };
    let mut check = FieldChecker::new(doc.file(), errors);
    if let Some(e) = doc.error() {
        let message = match e.kind {
            TextErrorKind::TopLevelNotMap => FILE_SHAPE.to_owned(),
            _ => e.message.clone(),
        };
        check.push(e.pos, "", Rule::Syntax, message);
        return out;
    }
    let Some(root) = doc.root() else {
        return out;
    };
    let Some(map) = root.as_mapping() else {
        check.push(pos_of(root.span()), "", Rule::Syntax, FILE_SHAPE);
        return out;
    };
    for (key, value) in map.iter() {
        let k = key.as_str();
        if OTHER_FILE_KEYS.contains(&k) {
            continue;
        }
        if !FILE_KEYS.contains(&k) {
            let known: Vec<&str> = FILE_KEYS.iter().chain(OTHER_FILE_KEYS).copied().collect();
            check.push(
                pos_of(key.span()),
                k,
                Rule::UnknownField,
                unknown_field_message(k, &known),
            );
            continue;
        }
        let items = check.list(value, k, EmptyList::BlankOrTilde);
        for (index, item) in items.iter().enumerate() {
            let path = format!("{k}[{index}]");
            let pos = pos_of(item.span());
            match k {
                "alarms" => {
                    if let Some(spec) = check.deserialize::<AlarmSpec>(item, &path) {
                        out.alarms.push(Entry { index, pos, spec });
                    }
                }
                "composite_alarms" => {
                    if let Some(spec) = check.deserialize::<CompositeSpec>(item, &path) {
                        out.composite_alarms.push(Entry { index, pos, spec });
                    }
                }
                _ => {
                    if let Some(spec) = check.deserialize::<TestSpec>(item, &path) {
                        out.tests.push(Entry { index, pos, spec });
                    }
                }
            }
        }
    }
    out
}

/// Parses and reads every `(file name, text)` pair in order ([`Document::parse`], [`read`]),
/// one file at a time: a file's tree is dropped before the next is parsed.
pub fn read_files<P: AsRef<str>, T: AsRef<str>>(
    files: &[(P, T)],
    errors: &mut ErrorList,
) -> Vec<AlarmFile> {
    files
        .iter()
        .map(|(p, t)| read(&Document::parse(p.as_ref(), t.as_ref()), errors))
        .collect()
}

/// Parses one file's text and reads it ([`read`]), appending every shape error to `errors`,
/// unsorted.
pub fn parse(file: &str, text: &str, errors: &mut Vec<ConfigError>) -> AlarmFile {
    let mut found = ErrorList::new();
    let out = read(&Document::parse(file, text), &mut found);
    errors.extend(found);
    out
}

/// The action lists of alarm and composite alarm entries.
pub const ACTION_KEYS: [&str; 3] = ["alarm_actions", "ok_actions", "insufficient_data_actions"];

/// One action as written in an entry of `alarms:` or `composite_alarms:`, found by walking
/// the parsed tree: entries that could not be read whole are included, so that the
/// cross-checks of other sections (scaling policies, named webhooks) see every action.
#[derive(Clone, Debug)]
pub struct WrittenAction {
    /// `alarms` or `composite_alarms`.
    pub list: &'static str,
    /// The entry's index in its list.
    pub index: usize,
    /// The entry's `name` as written, when it is a scalar.
    pub name: Option<String>,
    /// One of [`ACTION_KEYS`].
    pub key: &'static str,
    /// The action's index in its list.
    pub position: usize,
    /// The action as written.
    pub text: String,
    /// Where it is.
    pub pos: Pos,
}

/// The actions written in one file's alarm and composite alarm entries ([`file_actions`]).
#[derive(Clone, Debug, Default)]
pub struct FileActions {
    /// The file name, as given.
    pub file: String,
    /// Every action of `alarms:` then of `composite_alarms:`, each in document order.
    pub actions: Vec<WrittenAction>,
}

/// Every action written in the `alarms:` and `composite_alarms:` entries of a parsed file.
/// Entries that are not maps, action lists that are not lists and actions that are not
/// scalars are skipped ([`read`] reports them).
pub fn file_actions(doc: &Document) -> FileActions {
    let mut out = FileActions {
        file: doc.file().to_owned(),
        actions: Vec::new(),
    };
    let Some(map) = doc.root().and_then(Node::as_mapping) else {
        return out;
    };
    for list in ["alarms", "composite_alarms"] {
        let Some(items) = map.get_sequence(list) else {
            continue;
        };
        for (index, item) in items.iter().enumerate() {
            let Some(entry) = item.as_mapping() else {
                continue;
            };
            let name = entry.get_scalar("name").map(|n| n.as_str());
            for key in ACTION_KEYS {
                let Some(actions) = entry.get_sequence(key) else {
                    continue;
                };
                for (position, action) in actions.iter().enumerate() {
                    if let Some(s) = action.as_scalar() {
                        out.actions.push(WrittenAction {
                            list,
                            index,
                            name: name.map(str::to_owned),
                            key,
                            position,
                            text: s.as_str().to_owned(),
                            pos: pos_of(s.span()),
                        });
                    }
                }
            }
        }
    }
    out
}

/// The actions of [`file_actions`] for every `(file name, text)` pair, in order.
pub fn read_file_actions<P: AsRef<str>, T: AsRef<str>>(files: &[(P, T)]) -> Vec<FileActions> {
    files
        .iter()
        .map(|(p, t)| file_actions(&Document::parse(p.as_ref(), t.as_ref())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_all_reported_and_the_rest_still_parses() {
        let text = "alarms:\n  - name: a\n    thresold: 1\n    colour: red\n    threshold: 2\n";
        let mut errors = Vec::new();
        let f = parse("a.yaml", text, &mut errors);
        assert_eq!(f.alarms.len(), 1);
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert_eq!(errors[0].pos, Pos::new(3, 5));
        assert!(errors[0].message.contains("did you mean \"threshold\""));
        assert_eq!(errors[1].path, "alarms[0].colour");
        assert_eq!(
            f.alarms[0].spec.threshold.as_ref().map(|t| t.as_str()),
            Some("2")
        );
    }

    #[test]
    fn nested_unknown_keys_are_found() {
        let text = "composite_alarms:\n  - name: c\n    actions_suppressor: {alarm: m, wait: 1}\n";
        let mut errors = Vec::new();
        let f = parse("c.yaml", text, &mut errors);
        assert_eq!(f.composite_alarms.len(), 1, "{errors:#?}");
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].path,
            "composite_alarms[0].actions_suppressor.wait"
        );
    }

    const ALARM: &str = "  - {name: a, namespace: App, metric_name: M, statistic: Sum, period_seconds: 60, evaluation_periods: 1, threshold: 1, comparison_operator: GreaterThanThreshold}\n";

    #[test]
    fn a_nul_in_a_comment_is_an_error_at_its_position_not_the_end_of_the_file() {
        let text = format!(
            "alarms:\n{ALARM}# ends \0 here\n{}",
            ALARM.replace("a,", "b,")
        );
        let mut errors = Vec::new();
        let f = parse("n.yaml", &text, &mut errors);
        assert!(f.alarms.is_empty());
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(errors[0].pos, Pos::new(3, 8));
        assert_eq!(errors[0].rule, Rule::Syntax);
        assert!(
            errors[0]
                .message
                .starts_with("U+0000 NUL is not allowed in YAML"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn nesting_beyond_the_limit_is_refused_with_its_position() {
        let flow = |n: usize| format!("a: {}{}\n", "[".repeat(n), "]".repeat(n));
        // On one line the scanner reads ahead and stops at 255 levels: the same rule.
        let e = check_text(&flow(100_000)).unwrap_err();
        assert_eq!(e.pos, Pos::new(1, 259), "{}", e.message);
        assert!(e.message.contains("more than 64 levels"), "{}", e.message);
        // Split over lines too: the scanner looks ahead over a whole flow collection.
        let lines = format!("a:\n{}", " [\n".repeat(1_000));
        let e = check_text(&lines).unwrap_err();
        assert_eq!(e.pos, Pos::new(257, 2), "{}", e.message);
        check_text(&flow(MAX_YAML_DEPTH - 1)).unwrap();
        let e = check_text(&flow(MAX_YAML_DEPTH)).unwrap_err();
        // The root map is level 1, so the 64th `[` (column 67) is the 65th level.
        assert_eq!(
            e.pos,
            Pos::new(1, 3 + MAX_YAML_DEPTH as u32),
            "{}",
            e.message
        );
        assert!(e.message.contains("more than 64 levels"), "{}", e.message);
        // Block style, which the parser itself does not bound: refused at the 65th level,
        // however deep the rest goes.
        let block: String = (0..5_000)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        let e = check_text(&block).unwrap_err();
        assert_eq!(e.pos.line, 65, "{}", e.message);
        let dashes = format!("a:\n  {}x\n", "- ".repeat(10_000));
        let e = check_text(&dashes).unwrap_err();
        assert_eq!(e.pos.line, 2, "{}", e.message);
        let mut errors = Vec::new();
        parse("d.yaml", &dashes, &mut errors);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("nested"), "{errors:?}");
    }
}
