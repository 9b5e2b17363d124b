//! Field checks ([`FieldChecker`]): each reads one field of one file, pushes a positioned
//! [`ConfigError`] when the field is wrong and goes on, so that one run reports every problem.
//!
//! A section is read in one of two ways, both here: deserialised into a struct of [`Text`]
//! scalars ([`FieldChecker::deserialize`], unknown keys reported and removed one by one), or
//! walked key by key ([`FieldChecker::map`] and the methods that take a [`FieldMap`]).

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::document::{MarkedMappingNode, MarkedScalarNode, Node, Text, is_null, pos, pos_of};
use crate::error::{ConfigError, ErrorList, Pos, Rule};

/// `unknown field "x", expected one of a, b, c` with a "did you mean" when one is close.
pub fn unknown_field_message(field: &str, expected: &[&str]) -> String {
    let mut msg = format!("unknown field {field:?}");
    if let Some(best) = closest(field, expected) {
        msg.push_str(&format!(" (did you mean {best:?}?)"));
    }
    msg.push_str(&format!("; expected one of: {}", expected.join(", ")));
    msg
}

/// ` (did you mean "x"?)` when one of `known` is close to `name`, else nothing: the tail of
/// a message about a name that is not defined.
///
/// Cut from [`unknown_field_message`] up to its first `;`, as it always was: a suggestion
/// whose name holds a `;` is cut there.
pub fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    let known: Vec<&str> = known.into_iter().collect();
    let msg = unknown_field_message(name, &known);
    match msg.split_once(" (did you mean ") {
        Some((_, rest)) => format!(
            " (did you mean {}",
            rest.split_once(';').map_or(rest, |(a, _)| a)
        ),
        None => String::new(),
    }
}

/// The candidate nearest to `name` within a few edits (ties: the first in sort order).
fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(name, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min()
        .map(|(_, c)| c)
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

/// YAML 1.2 floats, including `.nan` and `.inf`.
fn yaml_float(s: &str) -> Option<f64> {
    match s {
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E' | b'_'))
    {
        return None;
    }
    s.replace('_', "").parse().ok()
}

/// Which scalars a list may be written as to mean "no entries". The top-level sections of
/// alarms and scaling groups have always refused `null` where the notification settings'
/// lists take it; both stay as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmptyList {
    /// Nothing or `~` (`key:` or `key: ~`).
    BlankOrTilde,
    /// Nothing, `~` or `null`.
    BlankTildeOrNull,
}

/// The fields of a map read key by key ([`FieldChecker::map`]): each allowed key with its
/// value and the key's position.
#[derive(Debug)]
pub struct FieldMap<'n>(HashMap<&'n str, (&'n Node, Pos)>);

impl<'n> FieldMap<'n> {
    /// The value of `key` and the key's position.
    pub fn get(&self, key: &str) -> Option<(&'n Node, Pos)> {
        self.0.get(key).copied()
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// The position of `key`, when present.
    pub fn key_pos(&self, key: &str) -> Option<Pos> {
        self.0.get(key).map(|(_, p)| *p)
    }
}

/// The field checks of one file: every check pushes what it finds to the shared
/// [`ErrorList`] with the file's name, and returns the value when it is right.
#[derive(Debug)]
pub struct FieldChecker<'a> {
    file: &'a str,
    errors: &'a mut ErrorList,
}

impl<'a> FieldChecker<'a> {
    /// Checks for `file`, pushing to `errors`.
    pub fn new(file: &'a str, errors: &'a mut ErrorList) -> Self {
        FieldChecker { file, errors }
    }

    /// The file being checked.
    pub fn file(&self) -> &'a str {
        self.file
    }

    /// Number of errors in the list so far, every file's (compare before and after a check
    /// to tell whether it found something).
    pub fn error_count(&self) -> usize {
        self.errors.len()
    }

    /// Records an error in this file.
    pub fn push(
        &mut self,
        pos: Pos,
        path: impl Into<String>,
        rule: Rule,
        message: impl Into<String>,
    ) {
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            pos,
            path: path.into(),
            rule,
            message: message.into(),
        });
    }

    // === Scalars of deserialised structs ===

    /// A present, non-null scalar.
    pub fn present<'t>(&self, t: &'t Option<Text>) -> Option<&'t Text> {
        t.as_ref().filter(|t| !is_null(t))
    }

    /// A present, non-null scalar, or a `Required` error (`base.field: is required`) at the
    /// entry's position.
    pub fn required<'t>(
        &mut self,
        t: &'t Option<Text>,
        entry: Pos,
        base: &str,
        field: &str,
    ) -> Option<&'t Text> {
        let v = self.present(t);
        if v.is_none() {
            self.push(
                entry,
                format!("{base}.{field}"),
                Rule::Required,
                "is required",
            );
        }
        v
    }

    /// A whole number in `min..=max`; with `max` = `u32::MAX` the message names only `min`.
    pub fn count(&mut self, t: &Text, path: &str, min: u32, max: u32) -> Option<u32> {
        let n = self.whole_number(t, path)?;
        if n >= i64::from(min) && n <= i64::from(max) {
            return u32::try_from(n).ok();
        }
        let rule = if max == u32::MAX {
            format!("must be at least {min} (got {n})")
        } else {
            format!("must be between {min} and {max} (got {n})")
        };
        self.push(pos(t), path, Rule::Number, rule);
        None
    }

    /// A whole number in `min..=max`.
    pub fn integer(&mut self, t: &Text, path: &str, min: i64, max: i64) -> Option<i64> {
        let n = self.whole_number(t, path)?;
        if (min..=max).contains(&n) {
            return Some(n);
        }
        self.push(
            pos(t),
            path,
            Rule::Number,
            format!("must be between {min} and {max} (got {n})"),
        );
        None
    }

    fn whole_number(&mut self, t: &Text, path: &str) -> Option<i64> {
        let n = t.trim().parse::<i64>().ok();
        if n.is_none() {
            self.push(
                pos(t),
                path,
                Rule::Number,
                format!("must be a whole number (got {})", t.as_str()),
            );
        }
        n
    }

    /// A finite number (YAML 1.2 floats).
    pub fn float(&mut self, t: &Text, path: &str) -> Option<f64> {
        match yaml_float(t.trim()) {
            Some(v) if v.is_finite() => Some(v),
            _ => {
                self.push(
                    pos(t),
                    path,
                    Rule::Number,
                    format!("must be a finite number (got {})", t.as_str()),
                );
                None
            }
        }
    }

    /// `true` or `false` (`default` when absent or wrong).
    pub fn boolean(&mut self, t: &Option<Text>, path: &str, default: bool) -> bool {
        let Some(t) = self.present(t) else {
            return default;
        };
        match t.as_str() {
            "true" | "True" | "TRUE" => true,
            "false" | "False" | "FALSE" => false,
            other => {
                self.push(
                    pos(t),
                    path,
                    Rule::Enum,
                    format!("must be true or false (got {other})"),
                );
                default
            }
        }
    }

    /// One of an enum's words; the error (the type's own message) lists the valid ones.
    pub fn word<W: FromStr<Err = String>>(&mut self, t: &Text, path: &str) -> Option<W> {
        match t.as_str().parse::<W>() {
            Ok(w) => Some(w),
            Err(m) => {
                self.push(pos(t), path, Rule::Enum, m);
                None
            }
        }
    }

    /// A free text of at most `max` characters (empty when absent); a longer one is kept and
    /// reported.
    pub fn bounded_text(&mut self, t: &Option<Text>, path: &str, max: usize) -> String {
        let Some(t) = self.present(t) else {
            return String::new();
        };
        let n = t.chars().count();
        if n > max {
            self.push(
                pos(t),
                path,
                Rule::Name,
                format!("must be at most {max} characters (got {n})"),
            );
        }
        t.as_str().to_owned()
    }

    // === Nodes ===

    /// The entries of a list (none when `node` is one of the `empty` scalars); anything else
    /// is reported as `must be a list`.
    pub fn list<'n>(&mut self, node: &'n Node, path: &str, empty: EmptyList) -> &'n [Node] {
        match node {
            Node::Sequence(s) => s,
            Node::Scalar(s) if is_empty_scalar(s.as_str(), empty) => &[],
            other => {
                self.push(pos_of(other.span()), path, Rule::Syntax, "must be a list");
                &[]
            }
        }
    }

    /// Deserialises a map (`item`, at `path`) into `T`, reporting every unknown field with
    /// its position (each is removed to find the next) and at most one shape error; `None`
    /// when it could not be read.
    pub fn deserialize<T: for<'de> Deserialize<'de>>(
        &mut self,
        item: &Node,
        path: &str,
    ) -> Option<T> {
        if item.as_mapping().is_none() {
            self.push(
                pos_of(item.span()),
                path,
                Rule::Syntax,
                "must be a map of fields",
            );
            return None;
        }
        // Copied only when a key has to be removed: most entries read at the first try.
        let mut trimmed: Option<Node> = None;
        // Each round removes one unknown key; the bound only guards against a loop.
        for _ in 0..64 {
            let error = match marked_yaml::from_node::<T>(trimmed.as_ref().unwrap_or(item)) {
                Ok(v) => return Some(v),
                Err(e) => e,
            };
            let sub = error.path().map(str::to_owned);
            let err_pos = error.start_mark().map(|m| {
                Pos::new(
                    u32::try_from(m.line()).unwrap_or(u32::MAX),
                    u32::try_from(m.column()).unwrap_or(u32::MAX),
                )
            });
            let inner = error.into_inner();
            let full_path = match &sub {
                Some(s) => format!("{path}.{s}"),
                None => path.to_owned(),
            };
            if let marked_yaml::Error::UnknownFieldError(field, expected, _) = &inner {
                // The error path ends with the unknown key; find the map holding it.
                let segments: Vec<&str> = sub
                    .as_deref()
                    .map(|s| s.split('.').collect())
                    .unwrap_or_default();
                let parent = &segments[..segments.len().saturating_sub(1)];
                let node = trimmed.get_or_insert_with(|| item.clone());
                let key_pos = remove_key(node, parent, field);
                self.push(
                    key_pos.or(err_pos).unwrap_or_default(),
                    full_path,
                    Rule::UnknownField,
                    unknown_field_message(field, expected),
                );
                key_pos?;
                continue;
            }
            self.push(
                err_pos.unwrap_or_else(|| pos_of(item.span())),
                full_path,
                Rule::Syntax,
                shape_message(&inner),
            );
            return None;
        }
        None
    }

    /// The fields of a map, each allowed key with its value; every other key is reported as
    /// unknown, and a node that is not a map as `must be a map of fields`.
    pub fn map<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        allowed: &[&str],
    ) -> Option<FieldMap<'n>> {
        let Some(map) = node.as_mapping() else {
            self.push(
                pos_of(node.span()),
                path,
                Rule::Syntax,
                "must be a map of fields",
            );
            return None;
        };
        let mut out = HashMap::new();
        for (k, v) in map.iter() {
            let key = k.as_str();
            if allowed.contains(&key) {
                out.insert(key, (v, pos_of(k.span())));
            } else {
                self.push(
                    pos_of(k.span()),
                    format!("{path}.{key}"),
                    Rule::UnknownField,
                    unknown_field_message(key, allowed),
                );
            }
        }
        Some(FieldMap(out))
    }

    /// A scalar's text (trimmed) and position; anything else is reported as
    /// `must be a single value`.
    pub fn scalar<'n>(&mut self, node: &'n Node, path: &str) -> Option<(&'n str, Pos)> {
        match node {
            Node::Scalar(s) => Some((s.as_str().trim(), pos_of(s.span()))),
            other => {
                self.push(
                    pos_of(other.span()),
                    path,
                    Rule::Syntax,
                    "must be a single value",
                );
                None
            }
        }
    }

    /// The scalar value of `key` (at `path.key`) with its position; `None` when absent,
    /// empty or null (`~`, `null`), or not a scalar (reported).
    pub fn value(&mut self, fields: &FieldMap<'_>, key: &str, path: &str) -> Option<(String, Pos)> {
        let (node, _) = fields.get(key)?;
        let (s, pos) = self.scalar(node, &format!("{path}.{key}"))?;
        if matches!(s, "~" | "null" | "") {
            return None;
        }
        Some((s.to_owned(), pos))
    }

    /// As [`FieldChecker::value`], with a `Required` error at `entry` when absent.
    pub fn required_value(
        &mut self,
        fields: &FieldMap<'_>,
        key: &str,
        path: &str,
        entry: Pos,
    ) -> Option<(String, Pos)> {
        let v = self.value(fields, key, path);
        if v.is_none() {
            self.push(
                entry,
                format!("{path}.{key}"),
                Rule::Required,
                "is required",
            );
        }
        v
    }

    /// `check`'s result for a value, its message reported at the value's position under
    /// `rule` when it refuses the value.
    pub fn checked<T>(
        &mut self,
        value: Option<(String, Pos)>,
        path: &str,
        rule: Rule,
        check: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let (s, pos) = value?;
        match check(&s) {
            Ok(t) => Some(t),
            Err(e) => {
                self.push(pos, path, rule, e);
                None
            }
        }
    }

    /// A number of seconds (fractions allowed) between `min` and `max`, as a duration.
    pub fn seconds(
        &mut self,
        fields: &FieldMap<'_>,
        key: &str,
        path: &str,
        min: f64,
        max: f64,
    ) -> Option<Duration> {
        let v = self.value(fields, key, path);
        self.checked(v, &format!("{path}.{key}"), Rule::Number, |s| {
            match s.parse::<f64>() {
                Ok(x) if x.is_finite() && x >= min && x <= max => Ok(Duration::from_secs_f64(x)),
                _ => Err(format!(
                    "must be a number of seconds between {min} and {max} (got {s})"
                )),
            }
        })
    }
}

fn is_empty_scalar(s: &str, empty: EmptyList) -> bool {
    match empty {
        EmptyList::BlankOrTilde => matches!(s, "" | "~"),
        EmptyList::BlankTildeOrNull => matches!(s, "" | "~" | "null"),
    }
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
mod tests;
