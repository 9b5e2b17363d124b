//! The raw, unvalidated form of an alarm file, deserialised straight from the YAML text
//! with positions kept.
//!
//! Scalars are kept as [`Spanned`] strings: the raw layer checks only the *shape* of the
//! document (which keys exist, what is a list or a map) and [`crate::validate`] turns the
//! text into typed values with messages of our own. Each entry of `alarms:`,
//! `composite_alarms:` and `tests:` is deserialised on its own, and unknown keys are reported
//! and removed before retrying, so that one mistake never hides the others.

use std::fmt;

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoaderOptions, Node};
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};

pub use marked_yaml::Spanned;

use crate::error::{ConfigError, Pos, Rule};

/// A scalar as written, with its position.
pub type Text = Spanned<String>;

/// A list of scalars (e.g. action ARNs).
pub type TextList = Spanned<Vec<Text>>;

/// An ordered YAML map of scalars (e.g. `dimensions`), keeping every key's position.
#[derive(Debug, Default)]
pub struct Pairs(pub Vec<(Text, Text)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Pairs, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<Text, Text>()? {
                    out.push((k, v));
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(V)
    }
}

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
    pub namespace: Option<Text>,
    pub metric_name: Option<Text>,
    pub dimensions: Option<Spanned<Pairs>>,
    pub unit: Option<Text>,
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
    pub expect: Option<Spanned<Vec<Spanned<TestExpectSpec>>>>,
    pub transitions: Option<Spanned<Vec<Spanned<TestTransitionSpec>>>>,
}

/// The top-level keys of an alarm file.
pub const FILE_KEYS: &[&str] = &["alarms", "composite_alarms", "tests"];

/// Top-level keys of the same files that other parts of Thermostat own and validate
/// (scaling groups: `thermostat-scaler`; notification settings: `notifications` module).
/// The alarm parser skips them.
pub const OTHER_FILE_KEYS: &[&str] = &["scaling_groups", "notifications"];

/// A parsed entry with the position of its first line.
#[derive(Debug)]
pub struct Entry<T> {
    /// 0-based index in its list.
    pub index: usize,
    /// Position of the entry.
    pub pos: Pos,
    /// The entry.
    pub spec: T,
}

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

/// The position of a span's start (0:0 when unknown).
pub fn pos_of(span: &marked_yaml::Span) -> Pos {
    span.start()
        .map(|m| {
            Pos::new(
                u32::try_from(m.line()).unwrap_or(u32::MAX),
                u32::try_from(m.column()).unwrap_or(u32::MAX),
            )
        })
        .unwrap_or_default()
}

/// The position of a spanned value.
pub fn pos<T>(s: &Spanned<T>) -> Pos {
    pos_of(s.span())
}

/// Largest configuration or settings file accepted, in bytes (16 MiB).
pub const MAX_FILE_BYTES: usize = 16 << 20;

/// Deepest nesting of maps and sequences accepted in a configuration or settings file.
pub const MAX_YAML_DEPTH: usize = 64;

/// A YAML text refused before it is parsed: where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextError {
    /// Where the problem is (1-based line and column, in characters).
    pub pos: Pos,
    /// What is wrong, naming the rule.
    pub message: String,
}

/// Whether YAML 1.2 allows `c` in a stream (`c-printable`: tab, LF, CR, printable ASCII,
/// NEL and the rest of Unicode except the C1 controls, surrogates, U+FFFE and U+FFFF).
fn is_printable(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r' | '\u{20}'..='\u{7E}' | '\u{85}' | '\u{A0}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `U+0000 NUL`, `U+007F DEL`, `U+0085 ...`: a character's code point and name.
fn describe(c: char) -> String {
    const C0: [&str; 32] = [
        "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HT", "LF", "VT", "FF", "CR",
        "SO", "SI", "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB",
        "ESC", "FS", "GS", "RS", "US",
    ];
    let code = u32::from(c);
    let name = match usize::try_from(code) {
        Ok(n) if n < C0.len() => C0[n],
        _ if code == 0x7F => "DEL",
        _ if (0x80..=0x9F).contains(&code) => "(a C1 control character)",
        _ => "(a noncharacter)",
    };
    format!("U+{code:04X} {name}")
}

/// The 1-based line and column (in characters) of byte `at` of `text`, counting LF, CR LF
/// and a lone CR as line breaks, as the YAML parser does.
fn position(text: &str, at: usize) -> Pos {
    let before = &text.as_bytes()[..at];
    let mut line = 1u32;
    let mut line_start = 0;
    for (i, &b) in before.iter().enumerate() {
        let lone_cr = b == b'\r' && before.get(i + 1) != Some(&b'\n');
        if b == b'\n' || lone_cr {
            line = line.saturating_add(1);
            line_start = i + 1;
        }
    }
    let column = text[line_start..at].chars().count().saturating_add(1);
    Pos::new(line, u32::try_from(column).unwrap_or(u32::MAX))
}

/// Checks what the YAML parser does not, before it sees the text: at most
/// [`MAX_FILE_BYTES`], only characters YAML 1.2 allows (a NUL would otherwise end the file
/// silently where it stands, even in a comment), and maps and sequences nested at most
/// [`MAX_YAML_DEPTH`] deep (deeper block nesting would exhaust the parser's stack). The
/// depth is found by streaming the parser's events and stopping at the first one too deep,
/// so the cost is linear in the text before it. A syntax error found on the way is returned
/// as the parser words it.
///
/// # Errors
/// The first problem, with its position.
pub fn check_text(text: &str) -> Result<(), TextError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(TextError {
            pos: Pos::new(1, 1),
            message: format!(
                "the file is {} bytes; at most {MAX_FILE_BYTES} bytes (16 MiB) are allowed",
                text.len()
            ),
        });
    }
    if let Some((at, c)) = text.char_indices().find(|&(_, c)| !is_printable(c)) {
        return Err(TextError {
            pos: position(text, at),
            message: format!(
                "{} is not allowed in YAML (only printable characters, tab, LF and CR are)",
                describe(c)
            ),
        });
    }
    use yaml_rust2::parser::{Event, Parser};
    let at = |m: &yaml_rust2::scanner::Marker| {
        Pos::new(
            u32::try_from(m.line()).unwrap_or(u32::MAX),
            u32::try_from(m.col().saturating_add(1)).unwrap_or(u32::MAX),
        )
    };
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    loop {
        match parser.next_token() {
            Ok((Event::SequenceStart(..) | Event::MappingStart(..), mark)) => {
                depth += 1;
                if depth > MAX_YAML_DEPTH {
                    return Err(TextError {
                        pos: at(&mark),
                        message: format!(
                            "maps and lists are nested more than {MAX_YAML_DEPTH} levels deep"
                        ),
                    });
                }
            }
            Ok((Event::SequenceEnd | Event::MappingEnd, _)) => depth = depth.saturating_sub(1),
            Ok((Event::StreamEnd, _)) => return Ok(()),
            Ok(_) => {}
            // The scanner looks ahead over flow collections and stops at 255 levels itself.
            Err(e) if e.info() == "recursion limit exceeded" => {
                return Err(TextError {
                    pos: at(e.marker()),
                    message: format!(
                        "maps and lists are nested more than {MAX_YAML_DEPTH} levels deep (255 \
                         levels of [ and {{ by here)"
                    ),
                });
            }
            Err(e) => {
                return Err(TextError {
                    pos: at(e.marker()),
                    message: format!("invalid YAML: {}", e.info()),
                });
            }
        }
    }
}

/// Parses a configuration file's YAML into a node tree with positions, after
/// [`check_text`]; every part of the configuration (alarms, scaling groups, notifications)
/// reads the files through it.
///
/// # Errors
/// The first problem, with its position.
pub fn parse_yaml(text: &str) -> Result<Node, TextError> {
    check_text(text)?;
    let opts = LoaderOptions::default().error_on_duplicate_keys(true);
    marked_yaml::parse_yaml_with_options(0, text, opts).map_err(|e| {
        let (pos, message) = load_error(&e);
        TextError { pos, message }
    })
}

/// Parses one file's text into its raw form, appending every shape error to `errors`.
pub fn parse(file: &str, text: &str, errors: &mut Vec<ConfigError>) -> AlarmFile {
    let mut out = AlarmFile {
        file: file.to_owned(),
        ..AlarmFile::default()
    };
    let err = |pos: Pos, path: &str, rule: Rule, message: String| ConfigError {
        file: file.to_owned(),
        pos,
        path: path.to_owned(),
        rule,
        message,
    };
    if text.trim().is_empty() {
        return out;
    }
    let root = match parse_yaml(text) {
        Ok(n) => n,
        Err(e) => {
            errors.push(err(e.pos, "", Rule::Syntax, e.message));
            return out;
        }
    };
    let Some(map) = root.as_mapping() else {
        errors.push(err(
            pos_of(root.span()),
            "",
            Rule::Syntax,
            "must be a map with the keys alarms, composite_alarms and tests".into(),
        ));
        return out;
    };
    for (key, value) in map.iter() {
        let k = key.as_str();
        if OTHER_FILE_KEYS.contains(&k) {
            continue;
        }
        if !FILE_KEYS.contains(&k) {
            let known: Vec<&str> = FILE_KEYS.iter().chain(OTHER_FILE_KEYS).copied().collect();
            errors.push(err(
                pos_of(key.span()),
                k,
                Rule::UnknownField,
                unknown_field_message(k, &known),
            ));
            continue;
        }
        let items: &[Node] = match value {
            Node::Sequence(s) => s,
            Node::Scalar(s) if s.as_str().is_empty() || s.as_str() == "~" => &[],
            other => {
                errors.push(err(
                    pos_of(other.span()),
                    k,
                    Rule::Syntax,
                    "must be a list".into(),
                ));
                continue;
            }
        };
        for (index, item) in items.iter().enumerate() {
            let path = format!("{k}[{index}]");
            let pos = pos_of(item.span());
            match k {
                "alarms" => {
                    if let Some(spec) = entry::<AlarmSpec>(file, item, &path, errors) {
                        out.alarms.push(Entry { index, pos, spec });
                    }
                }
                "composite_alarms" => {
                    if let Some(spec) = entry::<CompositeSpec>(file, item, &path, errors) {
                        out.composite_alarms.push(Entry { index, pos, spec });
                    }
                }
                _ => {
                    if let Some(spec) = entry::<TestSpec>(file, item, &path, errors) {
                        out.tests.push(Entry { index, pos, spec });
                    }
                }
            }
        }
    }
    out
}

fn load_error(e: &marked_yaml::LoadError) -> (Pos, String) {
    use marked_yaml::LoadError as L;
    let at = |m: &marked_yaml::Marker| {
        Pos::new(
            u32::try_from(m.line()).unwrap_or(u32::MAX),
            u32::try_from(m.column()).unwrap_or(u32::MAX),
        )
    };
    match e {
        L::TopLevelMustBeMapping(m) | L::TopLevelMustBeSequence(m) => (
            at(m),
            "must be a map with the keys alarms, composite_alarms and tests".into(),
        ),
        L::UnexpectedAnchor(m) => (at(m), "YAML anchors and aliases are not supported".into()),
        L::MappingKeyMustBeScalar(m) => (at(m), "map keys must be plain scalars".into()),
        L::UnexpectedTag(m) => (at(m), "YAML tags (!!type) are not supported".into()),
        L::ScanError(m, s) => (at(m), format!("invalid YAML: {}", s.info())),
        L::DuplicateKey(d) => (
            pos_of(d.key.span()),
            format!(
                "duplicate key {:?} (first at line {})",
                d.key.as_str(),
                pos_of(d.prev_key.span()).line
            ),
        ),
    }
}

/// `unknown field "x", expected one of a, b, c` with a "did you mean" when one is close.
pub fn unknown_field_message(field: &str, expected: &[&str]) -> String {
    let mut msg = format!("unknown field {field:?}");
    if let Some(best) = expected
        .iter()
        .map(|e| (edit_distance(field, e), *e))
        .filter(|(d, e)| *d <= 2.max(e.len() / 4))
        .min()
    {
        msg.push_str(&format!(" (did you mean {:?}?)", best.1));
    }
    msg.push_str(&format!("; expected one of: {}", expected.join(", ")));
    msg
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Deserialises one list entry, reporting every unknown key (and removing it to find the
/// next problem) and at most one shape error.
/// Deserialises one list entry (`item`, at `path`) into `T`, reporting every unknown field
/// with its position and shape errors with theirs; `None` when it could not be read. Other
/// parts of the configuration (scaling groups) use it for their sections of the same files.
pub fn entry<T: for<'de> Deserialize<'de>>(
    file: &str,
    item: &Node,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    if item.as_mapping().is_none() {
        errors.push(ConfigError {
            file: file.to_owned(),
            pos: pos_of(item.span()),
            path: path.to_owned(),
            rule: Rule::Syntax,
            message: "must be a map of fields".into(),
        });
        return None;
    }
    let mut node = item.clone();
    // Each round removes one unknown key; the bound only guards against a loop.
    for _ in 0..64 {
        match marked_yaml::from_node::<T>(&node) {
            Ok(v) => return Some(v),
            Err(e) => {
                let sub = e.path().map(str::to_owned);
                let err_pos = e.start_mark().map(|m| {
                    Pos::new(
                        u32::try_from(m.line()).unwrap_or(u32::MAX),
                        u32::try_from(m.column()).unwrap_or(u32::MAX),
                    )
                });
                let inner = e.into_inner();
                let full_path = match &sub {
                    Some(s) => format!("{path}.{s}"),
                    None => path.to_owned(),
                };
                if let marked_yaml::Error::UnknownFieldError(field, expected, _) = &inner {
                    // The error path ends with the unknown key; find the map holding it.
                    let parent_path: Vec<&str> = sub
                        .as_deref()
                        .map(|s| s.split('.').collect::<Vec<_>>())
                        .unwrap_or_default();
                    let parent_path = &parent_path[..parent_path.len().saturating_sub(1)];
                    let key_pos = remove_key(&mut node, parent_path, field);
                    errors.push(ConfigError {
                        file: file.to_owned(),
                        pos: key_pos.or(err_pos).unwrap_or_default(),
                        path: full_path,
                        rule: Rule::UnknownField,
                        message: unknown_field_message(field, expected),
                    });
                    key_pos?;
                    continue;
                }
                errors.push(ConfigError {
                    file: file.to_owned(),
                    pos: err_pos.unwrap_or_else(|| pos_of(item.span())),
                    path: full_path,
                    rule: Rule::Syntax,
                    message: shape_message(&inner),
                });
                return None;
            }
        }
    }
    None
}

fn shape_message(e: &marked_yaml::Error) -> String {
    let s = e.to_string();
    // serde's "invalid type: sequence, expected a string" reads better as a rule.
    match s.strip_prefix("invalid type: ") {
        Some(rest) => match rest.split_once(", expected ") {
            Some((got, want)) => format!("must be {want} (got a {got})"),
            None => s,
        },
        None => s,
    }
}

/// Removes `field` from the map at `parent_path` (segments such as `datapoints[2]`) below
/// `node`, returning the key's position.
fn remove_key(node: &mut Node, parent_path: &[&str], field: &str) -> Option<Pos> {
    let mut cur = node;
    for seg in parent_path {
        let (key, indices) = split_indices(seg);
        if !key.is_empty() {
            let map = cur.as_mapping_mut()?;
            cur = map.get_mut(key)?;
        }
        for i in indices {
            let seq = cur.as_sequence_mut()?;
            cur = seq.get_mut(i)?;
        }
    }
    let map: &mut MarkedMappingNode = cur.as_mapping_mut()?;
    let key: MarkedScalarNode = map.keys().find(|k| k.as_str() == field)?.clone();
    let pos = pos_of(key.span());
    map.remove(&key);
    Some(pos)
}

fn split_indices(seg: &str) -> (&str, Vec<usize>) {
    let (key, rest) = seg.split_once('[').map_or((seg, ""), |(k, r)| (k, r));
    let indices = rest
        .split(['[', ']'])
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    (key, indices)
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
    fn only_yaml_printable_characters_are_allowed() {
        for (c, name) in [
            ('\u{1}', "U+0001 SOH"),
            ('\u{8}', "U+0008 BS"),
            ('\u{b}', "U+000B VT"),
            ('\u{1b}', "U+001B ESC"),
            ('\u{7f}', "U+007F DEL"),
            ('\u{80}', "U+0080 (a C1 control character)"),
            ('\u{9f}', "U+009F (a C1 control character)"),
            ('\u{fffe}', "U+FFFE (a noncharacter)"),
            ('\u{ffff}', "U+FFFF (a noncharacter)"),
        ] {
            let e = check_text(&format!("a: \"x{c}\"\n")).unwrap_err();
            assert_eq!(e.pos, Pos::new(1, 6), "{name}");
            assert!(e.message.starts_with(name), "{name}: {}", e.message);
        }
        // Tab, line breaks, NEL, non-ASCII text, a byte order mark and emoji are fine.
        for ok in [
            "a: \"x\ty\"\r\nb: 1\n",
            "a: \"x\u{85}y\"\n",
            "\u{feff}a: été ✓ 🌡\n",
            "",
        ] {
            check_text(ok).unwrap();
        }
        // Columns count characters; CR LF and a lone CR end lines.
        let e = check_text("a: 1\r\nb: 2\rc: \"é\u{7}\"\n").unwrap_err();
        assert_eq!(e.pos, Pos::new(3, 6), "{}", e.message);
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

    #[test]
    fn a_file_beyond_the_size_limit_is_refused() {
        let text = format!("# {}\n", "x".repeat(MAX_FILE_BYTES));
        let e = check_text(&text).unwrap_err();
        assert_eq!(e.pos, Pos::new(1, 1));
        assert!(e.message.contains("16 MiB"), "{}", e.message);
    }
}
