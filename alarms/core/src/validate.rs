//! Phase two of loading: [`validate`] turns raw files into an [`AlarmSet`], collecting every
//! problem as a [`ConfigError`] with its file, line, column and path.
//!
//! Rules (reference §3.1, §3.10, §7.5): CloudWatch's name and length limits, periods of 10,
//! 20, 30 or a multiple of 60 seconds, `datapoints_to_alarm ≤ evaluation_periods`,
//! `period × evaluation_periods` within one day (seven days for periods of an hour or
//! more), finite thresholds, at most five actions per list in the supported forms,
//! composite rules that parse and name existing alarms without cycles, and unique names
//! across every file.

use std::collections::{BTreeMap, HashMap};

use thermostat_metrics::{Dimension, Period, Statistic, Timestamp, Unit};

use crate::action::{self, Action, MAX_ACTIONS};
use crate::error::{ConfigError, ConfigErrors, Pos, Rule};
use crate::model::{
    ActionsSuppressor, Alarm, AlarmSet, AlarmTest, ComparisonOperator, CompositeAlarm,
    LowSampleCount, Source, StateValue, TestDatapoint, TestExpectation, TestTransition,
    TreatMissingData,
};
use crate::raw::{self, Pairs, Spanned, Text, TextList, pos};
use crate::rule;
use crate::timefmt;

/// Most periods one evaluation may fetch (the metric store's per-query limit).
pub const MAX_EVALUATION_RANGE: u32 = 1440;
/// Longest evaluation delay.
pub const MAX_EVALUATION_DELAY_SECONDS: u32 = 86_400;
/// Longest suppressor wait or extension period.
pub const MAX_SUPPRESSOR_SECONDS: u32 = 86_400;

/// CloudWatch's default evaluation range for N evaluation periods, as localstack computes
/// it (`N + max(N / 3, 2)`, reference §3.5.2), capped at [`MAX_EVALUATION_RANGE`].
pub fn default_evaluation_range(n: u32) -> u32 {
    (n + (n / 3).max(2)).min(MAX_EVALUATION_RANGE).max(n)
}

/// Parses and validates a set of alarm files, given as `(file name, text)` pairs.
///
/// # Errors
/// Every problem found, in file order then position order.
pub fn validate<P: AsRef<str>, T: AsRef<str>>(files: &[(P, T)]) -> Result<AlarmSet, ConfigErrors> {
    let mut errors = Vec::new();
    let raws: Vec<raw::AlarmFile> = files
        .iter()
        .map(|(p, t)| raw::parse(p.as_ref(), t.as_ref(), &mut errors))
        .collect();
    let mut names: HashMap<String, (String, Pos)> = HashMap::new();
    let mut set = AlarmSet::default();
    let mut composite_rule_pos: Vec<(String, Pos, String)> = Vec::new();
    for f in &raws {
        let mut cx = Cx {
            file: &f.file,
            errors: &mut errors,
        };
        for e in &f.alarms {
            let unique = e
                .spec
                .name
                .as_ref()
                .is_none_or(|n| cx.unique(&mut names, n, "alarms", e));
            if let Some(a) = cx.alarm(e).filter(|_| unique) {
                set.alarms.push(a);
            }
        }
        for e in &f.composite_alarms {
            let unique = e
                .spec
                .name
                .as_ref()
                .is_none_or(|n| cx.unique(&mut names, n, "composite_alarms", e));
            if let Some(c) = cx.composite(e).filter(|_| unique) {
                let rule_pos = e.spec.alarm_rule.as_ref().map_or(e.pos, pos);
                composite_rule_pos.push((c.name.clone(), rule_pos, f.file.clone()));
                set.composites.push(c);
            }
        }
    }
    check_composites(&mut set, &composite_rule_pos, &raws, &names, &mut errors);
    for f in &raws {
        let mut cx = Cx {
            file: &f.file,
            errors: &mut errors,
        };
        let default_alarm = match (f.alarms.as_slice(), f.composite_alarms.as_slice()) {
            ([one], []) => one.spec.name.as_ref().map(|n| n.trim().to_owned()),
            ([], [one]) => one.spec.name.as_ref().map(|n| n.trim().to_owned()),
            _ => None,
        };
        for e in &f.tests {
            if let Some(t) = cx.test(e, &set, default_alarm.as_deref()) {
                set.tests.push(t);
            }
        }
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        let order: HashMap<&str, usize> = files
            .iter()
            .enumerate()
            .map(|(i, (p, _))| (p.as_ref(), i))
            .collect();
        errors.sort_by_key(|e| (order.get(e.file.as_str()).copied(), e.pos));
        errors.dedup();
        Err(ConfigErrors(errors))
    }
}

/// Field checks that every section of the configuration files shares (alarms here, scaling
/// groups in `thermostat-scaler`): each pushes a positioned [`ConfigError`] and goes on.
#[derive(Debug)]
pub struct Fields<'a> {
    /// The file being checked.
    pub file: &'a str,
    /// Where errors go.
    pub errors: &'a mut Vec<ConfigError>,
}

type Cx<'a> = Fields<'a>;

/// Whether a scalar is YAML's null (`~`, `null`), as written.
pub fn is_null(t: &Text) -> bool {
    matches!(t.as_str(), "~" | "null" | "Null" | "NULL") && t.span().start().is_some()
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

impl Fields<'_> {
    /// Records an error.
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

    fn source(&self, pos: Pos) -> Source {
        Source {
            file: self.file.to_owned(),
            line: pos.line,
        }
    }

    /// A present, non-null scalar.
    pub fn opt<'t>(&self, t: &'t Option<Text>) -> Option<&'t Text> {
        t.as_ref().filter(|t| !is_null(t))
    }

    /// A present, non-null scalar, or a `Required` error at the entry's position.
    pub fn required<'t>(
        &mut self,
        t: &'t Option<Text>,
        entry: Pos,
        base: &str,
        field: &str,
    ) -> Option<&'t Text> {
        let v = self.opt(t);
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

    fn int(&mut self, t: &Text, path: &str, min: u32, max: u32) -> Option<u32> {
        match t.trim().parse::<i64>() {
            Ok(n) if n >= i64::from(min) && n <= i64::from(max) => u32::try_from(n).ok(),
            Ok(n) => {
                let rule = if max == u32::MAX {
                    format!("must be at least {min} (got {n})")
                } else {
                    format!("must be between {min} and {max} (got {n})")
                };
                self.push(pos(t), path, Rule::Number, rule);
                None
            }
            Err(_) => {
                self.push(
                    pos(t),
                    path,
                    Rule::Number,
                    format!("must be a whole number (got {})", t.as_str()),
                );
                None
            }
        }
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

    /// `true` or `false` (default when absent).
    pub fn boolean(&mut self, t: &Option<Text>, path: &str, default: bool) -> bool {
        let Some(t) = self.opt(t) else {
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

    /// One of an enum's words; the error lists the valid ones.
    pub fn word<W: std::str::FromStr<Err = String>>(&mut self, t: &Text, path: &str) -> Option<W> {
        match t.as_str().parse::<W>() {
            Ok(w) => Some(w),
            Err(m) => {
                self.push(pos(t), path, Rule::Enum, m);
                None
            }
        }
    }

    fn text(&mut self, t: &Option<Text>, path: &str, max: usize) -> String {
        let Some(t) = self.opt(t) else {
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

    /// CloudWatch `AlarmName`: 1–255 characters, no ASCII control characters.
    fn alarm_name(&mut self, t: &Text, path: &str) -> Option<String> {
        let s = t.as_str();
        let n = s.chars().count();
        let problem = if n == 0 || n > 255 {
            Some(format!("must be 1 to 255 characters (got {n})"))
        } else if s.chars().any(|c| c.is_ascii_control()) {
            Some("must not contain control characters".into())
        } else if s.trim() != s {
            Some(format!("must not start or end with spaces (got {s:?})"))
        } else if s.contains('"') {
            Some(format!(
                "must not contain '\"', which composite alarm rules use as quotes (got {s:?})"
            ))
        } else {
            None
        };
        match problem {
            Some(p) => {
                self.push(pos(t), path, Rule::Name, p);
                None
            }
            None => Some(s.to_owned()),
        }
    }

    fn actions(&mut self, list: &Option<TextList>, path: &str, composite: bool) -> Vec<Action> {
        let Some(list) = list else {
            return Vec::new();
        };
        if list.len() > MAX_ACTIONS {
            self.push(
                pos(list),
                path,
                Rule::Action,
                format!(
                    "must have at most {MAX_ACTIONS} actions (got {})",
                    list.len()
                ),
            );
        }
        let mut out = Vec::new();
        for (i, t) in list.iter().enumerate() {
            let p = format!("{path}[{i}]");
            match action::parse(t.as_str()) {
                Ok(a) if composite && a.is_scaling() => self.push(
                    pos(t),
                    p,
                    Rule::Action,
                    format!(
                        "composite alarms cannot run Auto Scaling actions, as in CloudWatch (got {:?})",
                        t.as_str()
                    ),
                ),
                Ok(a) => out.push(a),
                Err(m) => self.push(pos(t), p, Rule::Action, m),
            }
        }
        out
    }

    /// A dimensions map checked with CloudWatch's rules (at most 30, unique names, name and
    /// value characters), sorted; with `star`, a value of `"*"` is allowed (per-series alarms).
    pub fn dimensions(
        &mut self,
        d: &Option<Spanned<Pairs>>,
        path: &str,
        star: bool,
    ) -> Vec<Dimension> {
        let Some(d) = d else {
            return Vec::new();
        };
        let names: Vec<&str> = d.0.iter().map(|(k, _)| k.as_str()).collect();
        if let Err((i, m)) = thermostat_metrics::validate::dimension_set(names.iter().copied()) {
            let p = i.map_or(pos(d), |i| pos(&d.0[i].0));
            self.push(p, path, Rule::Name, m);
        }
        let mut out = Vec::new();
        for (k, v) in &d.0 {
            let p = format!("{path}.{}", k.as_str());
            if let Err(m) = thermostat_metrics::validate::dimension_name(k) {
                self.push(pos(k), p.clone(), Rule::Name, format!("name {m}"));
            }
            let checked = if star && v.as_str() == "*" {
                Ok(())
            } else {
                thermostat_metrics::validate::dimension_value(v)
            };
            if let Err(m) = checked {
                self.push(pos(v), p, Rule::Name, m);
            }
            out.push(Dimension::new(k.as_str(), v.as_str()));
        }
        out.sort();
        out
    }

    fn unique(
        &mut self,
        names: &mut HashMap<String, (String, Pos)>,
        name: &str,
        list: &str,
        e: &raw::Entry<impl NameOf>,
    ) -> bool {
        let p = e.spec.name_text().map_or(e.pos, pos);
        if let Some((f, first)) = names.get(name) {
            self.push(
                p,
                format!("{list}.{name}.name"),
                Rule::Duplicate,
                format!(
                    "duplicate alarm name {name:?} (first defined at {f}:{}:{}); names must be unique across all files",
                    first.line, first.column
                ),
            );
            return false;
        }
        names.insert(name.to_owned(), (self.file.to_owned(), p));
        true
    }

    fn base_path(
        &mut self,
        list: &str,
        index: usize,
        name: &Option<Text>,
        entry: Pos,
    ) -> (String, Option<String>) {
        let fallback = format!("{list}[{index}]");
        match self.opt(name) {
            None => {
                self.push(
                    entry,
                    format!("{fallback}.name"),
                    Rule::Required,
                    "is required",
                );
                (fallback, None)
            }
            Some(n) => {
                let valid = self.alarm_name(n, &format!("{fallback}.name"));
                match valid {
                    Some(v) => (format!("{list}.{v}"), Some(v)),
                    None => (fallback, None),
                }
            }
        }
    }

    fn alarm(&mut self, e: &raw::Entry<raw::AlarmSpec>) -> Option<Alarm> {
        let s = &e.spec;
        let before = self.errors.len();
        let (b, name) = self.base_path("alarms", e.index, &s.name, e.pos);
        let at = |f: &str| format!("{b}.{f}");
        let description = self.text(&s.description, &at("description"), 1024);
        let namespace = self
            .required(&s.namespace, e.pos, &b, "namespace")
            .map(|t| {
                if let Err(m) = thermostat_metrics::validate::namespace(t) {
                    self.push(pos(t), at("namespace"), Rule::Name, m);
                }
                t.as_str().to_owned()
            });
        let metric_name = self
            .required(&s.metric_name, e.pos, &b, "metric_name")
            .map(|t| {
                if let Err(m) = thermostat_metrics::validate::metric_name(t) {
                    self.push(pos(t), at("metric_name"), Rule::Name, m);
                }
                t.as_str().to_owned()
            });
        let dimensions = self.dimensions(&s.dimensions, &at("dimensions"), true);
        let statistic = self
            .required(&s.statistic, e.pos, &b, "statistic")
            .and_then(|t| match t.as_str().parse::<Statistic>() {
                Ok(st) => Some(st),
                Err(err) => {
                    self.push(pos(t), at("statistic"), Rule::Enum, err.to_string());
                    None
                }
            });
        let period = self
            .required(&s.period_seconds, e.pos, &b, "period_seconds")
            .and_then(|t| {
                let p = self.int(t, &at("period_seconds"), 1, 7 * 86_400)?;
                if matches!(p, 10 | 20 | 30) || p % 60 == 0 {
                    Period::try_from_secs(i64::from(p)).ok()
                } else {
                    self.push(
                        pos(t),
                        at("period_seconds"),
                        Rule::Number,
                        format!("must be 10, 20, 30 or a multiple of 60 (got {p})"),
                    );
                    None
                }
            });
        let n_text = self.required(&s.evaluation_periods, e.pos, &b, "evaluation_periods");
        let n = n_text.and_then(|t| self.int(t, &at("evaluation_periods"), 1, u32::MAX));
        let m = self.opt(&s.datapoints_to_alarm).and_then(|t| {
            let m = self.int(t, &at("datapoints_to_alarm"), 1, u32::MAX)?;
            if let Some(n) = n.filter(|&n| m > n) {
                self.push(
                    pos(t),
                    at("datapoints_to_alarm"),
                    Rule::Consistency,
                    format!("must not be greater than evaluation_periods ({m} > {n})"),
                );
            }
            Some(m)
        });
        if let (Some(p), Some(n), Some(t)) = (period, n, n_text) {
            let total = u64::from(p.as_secs()) * u64::from(n);
            let limit: u64 = if p.as_secs() < 3600 { 86_400 } else { 604_800 };
            if total > limit {
                self.push(
                    pos(t),
                    at("evaluation_periods"),
                    Rule::Consistency,
                    format!(
                        "period_seconds × evaluation_periods must be at most {limit} seconds{} (got {} × {n} = {total})",
                        if limit == 86_400 { " when the period is under an hour" } else { "" },
                        p.as_secs()
                    ),
                );
            } else if n > MAX_EVALUATION_RANGE {
                self.push(
                    pos(t),
                    at("evaluation_periods"),
                    Rule::Consistency,
                    format!("must be at most {MAX_EVALUATION_RANGE}, the most periods one query may fetch (got {n})"),
                );
            }
        }
        let range = match self.opt(&s.evaluation_range) {
            Some(t) => self.int(t, &at("evaluation_range"), 1, u32::MAX).and_then(|r| {
                let n = n.unwrap_or(1);
                if r < n || r > MAX_EVALUATION_RANGE {
                    self.push(
                        pos(t),
                        at("evaluation_range"),
                        Rule::Consistency,
                        format!("must be between evaluation_periods ({n}) and {MAX_EVALUATION_RANGE} (got {r})"),
                    );
                    None
                } else {
                    Some(r)
                }
            }),
            None => n.map(default_evaluation_range),
        };
        let threshold = self
            .required(&s.threshold, e.pos, &b, "threshold")
            .and_then(|t| self.float(t, &at("threshold")));
        let comparison_operator: Option<ComparisonOperator> = self
            .required(&s.comparison_operator, e.pos, &b, "comparison_operator")
            .and_then(|t| self.word(t, &at("comparison_operator")));
        let ok_threshold = self.opt(&s.ok_threshold).and_then(|t| {
            let v = self.float(t, &at("ok_threshold"))?;
            if let (Some(th), Some(op)) = (threshold, comparison_operator) {
                let wrong_side = if op.is_upper() { v > th } else { v < th };
                if wrong_side {
                    self.push(
                        pos(t),
                        at("ok_threshold"),
                        Rule::Consistency,
                        format!(
                            "must be on the OK side of the threshold ({} {}) for {op} (got {})",
                            if op.is_upper() { "≤" } else { "≥" },
                            timefmt::java_double(th),
                            t.as_str()
                        ),
                    );
                }
            }
            Some(v)
        });
        let treat_missing_data = match self.opt(&s.treat_missing_data) {
            Some(t) => self.word(t, &at("treat_missing_data")),
            None => Some(TreatMissingData::Missing),
        };
        let low = match self.opt(&s.evaluate_low_sample_count_percentile) {
            Some(t) => self.word(t, &at("evaluate_low_sample_count_percentile")),
            None => Some(LowSampleCount::Evaluate),
        };
        let delay = match self.opt(&s.evaluation_delay_seconds) {
            Some(t) => self.int(
                t,
                &at("evaluation_delay_seconds"),
                0,
                MAX_EVALUATION_DELAY_SECONDS,
            ),
            None => Some(0),
        };
        let unit = match self.opt(&s.unit) {
            Some(t) => match t.as_str().parse::<Unit>() {
                Ok(u) => Some(Some(u)),
                Err(err) => {
                    self.push(pos(t), at("unit"), Rule::Enum, err.to_string());
                    None
                }
            },
            None => Some(None),
        };
        let repeat = match self.opt(&s.repeat_interval_seconds) {
            Some(t) => self
                .int(t, &at("repeat_interval_seconds"), 60, 604_800)
                .map(Some),
            None => Some(None),
        };
        let actions = crate::model::Actions {
            enabled: self.boolean(&s.actions_enabled, &at("actions_enabled"), true),
            alarm: self.actions(&s.alarm_actions, &at("alarm_actions"), false),
            ok: self.actions(&s.ok_actions, &at("ok_actions"), false),
            insufficient_data: self.actions(
                &s.insufficient_data_actions,
                &at("insufficient_data_actions"),
                false,
            ),
            repeat_interval_seconds: repeat.flatten(),
        };
        if self.errors.len() != before {
            return None;
        }
        Some(Alarm {
            name: name?,
            description,
            namespace: namespace?,
            metric_name: metric_name?,
            dimensions,
            statistic: statistic?,
            period: period?,
            evaluation_periods: n?,
            datapoints_to_alarm: m,
            evaluation_range: range?,
            threshold: threshold?,
            ok_threshold,
            comparison_operator: comparison_operator?,
            treat_missing_data: treat_missing_data?,
            evaluate_low_sample_count_percentile: low?,
            evaluation_delay_seconds: delay?,
            unit: unit?,
            actions,
            source: self.source(e.pos),
        })
    }

    fn composite(&mut self, e: &raw::Entry<raw::CompositeSpec>) -> Option<CompositeAlarm> {
        let s = &e.spec;
        let before = self.errors.len();
        let (b, name) = self.base_path("composite_alarms", e.index, &s.name, e.pos);
        let at = |f: &str| format!("{b}.{f}");
        let description = self.text(&s.description, &at("description"), 1024);
        let rule = self
            .required(&s.alarm_rule, e.pos, &b, "alarm_rule")
            .and_then(|t| match rule::parse(t) {
                Ok(r) => Some((r, t.as_str().to_owned())),
                Err(err) => {
                    self.push(pos(t), at("alarm_rule"), Rule::AlarmRule, err.to_string());
                    None
                }
            });
        let actions = crate::model::Actions {
            enabled: self.boolean(&s.actions_enabled, &at("actions_enabled"), true),
            alarm: self.actions(&s.alarm_actions, &at("alarm_actions"), true),
            ok: self.actions(&s.ok_actions, &at("ok_actions"), true),
            insufficient_data: self.actions(
                &s.insufficient_data_actions,
                &at("insufficient_data_actions"),
                true,
            ),
            repeat_interval_seconds: None,
        };
        let suppressor = match &s.actions_suppressor {
            None => Some(None),
            Some(sp) => {
                let sb = at("actions_suppressor");
                let p = pos(sp);
                let alarm = self
                    .required(&sp.alarm, p, &sb, "alarm")
                    .map(|t| t.as_str().to_owned());
                let wait = self
                    .required(&sp.wait_period_seconds, p, &sb, "wait_period_seconds")
                    .and_then(|t| {
                        self.int(
                            t,
                            &format!("{sb}.wait_period_seconds"),
                            0,
                            MAX_SUPPRESSOR_SECONDS,
                        )
                    });
                let ext = self
                    .required(
                        &sp.extension_period_seconds,
                        p,
                        &sb,
                        "extension_period_seconds",
                    )
                    .and_then(|t| {
                        self.int(
                            t,
                            &format!("{sb}.extension_period_seconds"),
                            0,
                            MAX_SUPPRESSOR_SECONDS,
                        )
                    });
                match (alarm, wait, ext) {
                    (Some(alarm), Some(w), Some(x)) => Some(Some(ActionsSuppressor {
                        alarm,
                        wait_period_seconds: w,
                        extension_period_seconds: x,
                    })),
                    _ => None,
                }
            }
        };
        if self.errors.len() != before {
            return None;
        }
        let (rule, rule_text) = rule?;
        Some(CompositeAlarm {
            name: name?,
            description,
            rule,
            rule_text,
            actions,
            suppressor: suppressor?,
            source: self.source(e.pos),
        })
    }

    fn offset(&mut self, t: &Text, path: &str) -> Option<i64> {
        match timefmt::parse_offset(t) {
            Some(ms) => Some(ms),
            None => {
                self.push(
                    pos(t),
                    path,
                    Rule::Test,
                    format!(
                        "must be an offset from the test's start such as 0, 90s, 5m or 1h30m (got {})",
                        t.as_str()
                    ),
                );
                None
            }
        }
    }

    fn known_alarm(&mut self, set: &AlarmSet, t: &Text, path: &str) -> Option<String> {
        let n = t.as_str();
        let base = n.split_once('[').map_or(n, |(b, _)| b);
        if set.alarm(base).is_some() || set.composite(n).is_some() {
            Some(n.to_owned())
        } else {
            self.push(
                pos(t),
                path,
                Rule::Test,
                format!("refers to unknown alarm {n:?}{}", suggest(n, set)),
            );
            None
        }
    }

    fn test(
        &mut self,
        e: &raw::Entry<raw::TestSpec>,
        set: &AlarmSet,
        default_alarm: Option<&str>,
    ) -> Option<AlarmTest> {
        let s = &e.spec;
        let before = self.errors.len();
        let name = self.opt(&s.name).map(|t| t.as_str().to_owned());
        let b = match &name {
            Some(n) => format!("tests.{n}"),
            None => {
                self.push(
                    e.pos,
                    format!("tests[{}].name", e.index),
                    Rule::Required,
                    "is required",
                );
                format!("tests[{}]", e.index)
            }
        };
        let at = |f: &str| format!("{b}.{f}");
        let alarm = match self.opt(&s.alarm) {
            Some(t) => self.known_alarm(set, t, &at("alarm")),
            None => match default_alarm {
                Some(d) if set.alarm(d).is_some() || set.composite(d).is_some() => {
                    Some(d.to_owned())
                }
                _ => {
                    self.push(
                        e.pos,
                        at("alarm"),
                        Rule::Required,
                        "is required when the file does not define exactly one alarm",
                    );
                    None
                }
            },
        };
        let target = alarm.as_deref().and_then(|a| set.alarm(a));
        let start = match self.opt(&s.start) {
            Some(t) => match timefmt::parse_time(t, 1000) {
                Some(ts) => Some(ts),
                None => {
                    self.push(
                        pos(t),
                        at("start"),
                        Rule::Test,
                        format!(
                            "must be an RFC 3339 time or Unix seconds (got {})",
                            t.as_str()
                        ),
                    );
                    None
                }
            },
            None => Some(Timestamp::EPOCH),
        };
        let initial_state = match self.opt(&s.initial_state) {
            Some(t) => self.word(t, &at("initial_state")),
            None => Some(StateValue::InsufficientData),
        };
        let mut datapoints = Vec::new();
        for (i, d) in s.datapoints.iter().flat_map(|l| l.iter()).enumerate() {
            let p = format!("{}[{i}]", at("datapoints"));
            let dp_at = self
                .required(&d.at, pos(d), &p, "at")
                .and_then(|t| self.offset(t, &format!("{p}.at")));
            let values: Option<Vec<f64>> = match (self.opt(&d.value), &d.values) {
                (Some(v), None) => self.float(v, &format!("{p}.value")).map(|v| vec![v]),
                (None, Some(vs)) if !vs.is_empty() => {
                    let parsed: Vec<Option<f64>> = vs
                        .iter()
                        .enumerate()
                        .map(|(j, v)| self.float(v, &format!("{p}.values[{j}]")))
                        .collect();
                    parsed.into_iter().collect()
                }
                _ => {
                    self.push(
                        pos(d),
                        &p,
                        Rule::Test,
                        "must have exactly one of value or values (a non-empty list)",
                    );
                    None
                }
            };
            let namespace = self
                .opt(&d.namespace)
                .map(|t| t.as_str().to_owned())
                .or_else(|| target.map(|a| a.namespace.clone()));
            let metric_name = self
                .opt(&d.metric_name)
                .map(|t| t.as_str().to_owned())
                .or_else(|| target.map(|a| a.metric_name.clone()));
            if namespace.is_none() || metric_name.is_none() {
                self.push(
                    pos(d),
                    &p,
                    Rule::Test,
                    "must name namespace and metric_name when the test's alarm is not a metric alarm",
                );
            }
            let given = self.dimensions(&d.dimensions, &format!("{p}.dimensions"), false);
            let mut dims: BTreeMap<String, String> = BTreeMap::new();
            let same_metric = target.is_some_and(|a| {
                Some(&a.namespace) == namespace.as_ref()
                    && Some(&a.metric_name) == metric_name.as_ref()
            });
            if let Some(a) = target.filter(|_| same_metric) {
                for dim in &a.dimensions {
                    dims.insert(dim.name.clone(), dim.value.clone());
                }
            }
            for dim in given {
                dims.insert(dim.name, dim.value);
            }
            if let Some((n, _)) = dims.iter().find(|(_, v)| v.as_str() == "*") {
                self.push(
                    pos(d),
                    format!("{p}.dimensions"),
                    Rule::Test,
                    format!("must give a value for the dimension {n:?}, which the alarm matches with \"*\""),
                );
            }
            let unit = match self.opt(&d.unit) {
                Some(t) => t
                    .as_str()
                    .parse::<Unit>()
                    .map_err(|err| {
                        self.push(pos(t), format!("{p}.unit"), Rule::Enum, err.to_string());
                    })
                    .ok(),
                None => Some(
                    target
                        .filter(|_| same_metric)
                        .and_then(|a| a.unit)
                        .unwrap_or_default(),
                ),
            };
            if let (Some(off), Some(values), Some(ns), Some(mn), Some(unit), Some(start)) =
                (dp_at, values, namespace, metric_name, unit, start)
            {
                datapoints.push(TestDatapoint {
                    timestamp: start.add_millis(off),
                    namespace: ns,
                    metric_name: mn,
                    dimensions: dims
                        .into_iter()
                        .map(|(k, v)| Dimension::new(k, v))
                        .collect(),
                    unit,
                    values,
                });
            }
        }
        let mut expect = Vec::new();
        for (i, x) in s.expect.iter().flat_map(|l| l.iter()).enumerate() {
            let p = format!("{}[{i}]", at("expect"));
            let t_at = self
                .required(&x.at, pos(x), &p, "at")
                .and_then(|t| self.offset(t, &format!("{p}.at")));
            let who = match self.opt(&x.alarm) {
                Some(t) => self.known_alarm(set, t, &format!("{p}.alarm")),
                None => alarm.clone(),
            };
            let state = self
                .required(&x.state, pos(x), &p, "state")
                .and_then(|t| self.word::<StateValue>(t, &format!("{p}.state")));
            if let (Some(off), Some(who), Some(state), Some(start)) = (t_at, who, state, start) {
                expect.push(TestExpectation {
                    at: start.add_millis(off),
                    alarm: who,
                    state,
                    reason_contains: self.opt(&x.reason_contains).map(|t| t.as_str().to_owned()),
                    line: pos(x).line,
                });
            }
        }
        let transitions = s.transitions.as_ref().map(|list| {
            let mut out = Vec::new();
            for (i, x) in list.iter().enumerate() {
                let p = format!("{}[{i}]", at("transitions"));
                let t_at = self
                    .required(&x.at, pos(x), &p, "at")
                    .and_then(|t| self.offset(t, &format!("{p}.at")));
                let who = match self.opt(&x.alarm) {
                    Some(t) => self.known_alarm(set, t, &format!("{p}.alarm")),
                    None => alarm.clone(),
                };
                let from = match self.opt(&x.from) {
                    Some(t) => self.word::<StateValue>(t, &format!("{p}.from")).map(Some),
                    None => Some(None),
                };
                let to = self
                    .required(&x.to, pos(x), &p, "to")
                    .and_then(|t| self.word::<StateValue>(t, &format!("{p}.to")));
                if let (Some(off), Some(who), Some(from), Some(to), Some(start)) =
                    (t_at, who, from, to, start)
                {
                    out.push(TestTransition {
                        at: start.add_millis(off),
                        alarm: who,
                        from,
                        to,
                    });
                }
            }
            out
        });
        if expect.is_empty() && transitions.is_none() && self.errors.len() == before {
            self.push(e.pos, &b, Rule::Test, "must have expect or transitions");
        }
        if self.errors.len() != before {
            return None;
        }
        Some(AlarmTest {
            name: name?,
            alarm: alarm?,
            start: start?,
            initial_state: initial_state?,
            datapoints,
            expect,
            transitions,
            source: self.source(e.pos),
        })
    }
}

/// Access to the `name` of a raw entry (for duplicate reports).
trait NameOf {
    fn name_text(&self) -> Option<&Text>;
}

impl NameOf for raw::AlarmSpec {
    fn name_text(&self) -> Option<&Text> {
        self.name.as_ref()
    }
}

impl NameOf for raw::CompositeSpec {
    fn name_text(&self) -> Option<&Text> {
        self.name.as_ref()
    }
}

fn suggest(name: &str, set: &AlarmSet) -> String {
    let all = set
        .alarms
        .iter()
        .map(|a| a.name.as_str())
        .chain(set.composites.iter().map(|c| c.name.as_str()));
    let msg = raw::unknown_field_message(name, &all.collect::<Vec<_>>());
    match msg.split_once(" (did you mean ") {
        Some((_, rest)) => format!(
            " (did you mean {}",
            rest.split_once(';').map_or(rest, |(a, _)| a)
        ),
        None => String::new(),
    }
}

/// Checks rule references, suppressors and cycles; orders composites so that each comes
/// after the composites it refers to.
fn check_composites(
    set: &mut AlarmSet,
    rule_pos: &[(String, Pos, String)],
    raws: &[raw::AlarmFile],
    defined: &HashMap<String, (String, Pos)>,
    errors: &mut Vec<ConfigError>,
) {
    let where_of = |name: &str| {
        rule_pos
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, p, f)| (f.clone(), *p))
            .unwrap_or_default()
    };
    // Names of entries that failed validation still count as defined, so that one
    // mistake is not reported again at every reference.
    let known = |n: &str| defined.contains_key(n);
    let mut bad = Vec::new();
    for c in &set.composites {
        let (file, p) = where_of(&c.name);
        for r in c.rule.references() {
            if !known(r) {
                errors.push(ConfigError {
                    file: file.clone(),
                    pos: p,
                    path: format!("composite_alarms.{}.alarm_rule", c.name),
                    rule: Rule::AlarmRule,
                    message: format!("refers to unknown alarm {r:?}{}", suggest(r, set)),
                });
                bad.push(c.name.clone());
            }
        }
        if let Some(s) = &c.suppressor {
            let sp = raws
                .iter()
                .flat_map(|f| f.composite_alarms.iter().map(move |e| (f, e)))
                .find(|(_, e)| e.spec.name.as_ref().is_some_and(|n| n.as_str() == c.name))
                .and_then(|(_, e)| e.spec.actions_suppressor.as_ref())
                .and_then(|sp| sp.alarm.as_ref().map(pos))
                .unwrap_or(p);
            let problem = if s.alarm == c.name {
                Some("must not be the composite alarm itself".to_owned())
            } else if !known(&s.alarm) {
                Some(format!(
                    "refers to unknown alarm {:?}{}",
                    s.alarm,
                    suggest(&s.alarm, set)
                ))
            } else {
                None
            };
            if let Some(m) = problem {
                errors.push(ConfigError {
                    file: file.clone(),
                    pos: sp,
                    path: format!("composite_alarms.{}.actions_suppressor.alarm", c.name),
                    rule: Rule::AlarmRule,
                    message: m,
                });
            }
        }
    }
    // Cycles: depth-first search over composite → composite references.
    let idx: HashMap<&str, usize> = set
        .composites
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    let edges: Vec<Vec<usize>> = set
        .composites
        .iter()
        .map(|c| {
            c.rule
                .references()
                .iter()
                .filter_map(|r| idx.get(r).copied())
                .collect()
        })
        .collect();
    let mut mark = vec![0u8; edges.len()]; // 0 new, 1 on stack, 2 done
    let mut order = Vec::new();
    let mut reported: Vec<Vec<usize>> = Vec::new();
    fn visit(
        i: usize,
        edges: &[Vec<usize>],
        mark: &mut [u8],
        stack: &mut Vec<usize>,
        order: &mut Vec<usize>,
        cycles: &mut Vec<Vec<usize>>,
    ) {
        mark[i] = 1;
        stack.push(i);
        for &j in &edges[i] {
            if mark[j] == 1 {
                let from = stack.iter().position(|&k| k == j).unwrap_or(0);
                cycles.push(stack[from..].to_vec());
            } else if mark[j] == 0 {
                visit(j, edges, mark, stack, order, cycles);
            }
        }
        stack.pop();
        mark[i] = 2;
        order.push(i);
    }
    for i in 0..edges.len() {
        if mark[i] == 0 {
            visit(
                i,
                &edges,
                &mut mark,
                &mut Vec::new(),
                &mut order,
                &mut reported,
            );
        }
    }
    for cycle in reported {
        let names: Vec<&str> = cycle
            .iter()
            .map(|&i| set.composites[i].name.as_str())
            .collect();
        let first = names[0];
        let (file, p) = where_of(first);
        errors.push(ConfigError {
            file,
            pos: p,
            path: format!("composite_alarms.{first}.alarm_rule"),
            rule: Rule::Cycle,
            message: format!(
                "composite alarms refer to each other in a cycle: {} -> {first}; break it (e.g. replace one reference with FALSE)",
                names.join(" -> ")
            ),
        });
    }
    let _ = bad;
    let mut sorted = Vec::with_capacity(order.len());
    for i in order {
        sorted.push(set.composites[i].clone());
    }
    set.composites = sorted;
}

#[cfg(test)]
mod tests;

// === Requirements ===

/// What a configuration needs from the machine it runs on, beside its own files: an
/// environment variable holding a secret, a file, or AWS credentials. Validation cannot
/// check them (the cores read no environment and no files); it returns them with their
/// positions ([`requirements`], `thermostat_alarms::notifications::requirements`,
/// `thermostat_scaler::validate::requirements`) and the binary checks them: `thermostat
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

/// The requirements of the alarm sections of `files` (the files given to [`validate`]):
/// AWS credentials for every SNS topic action, at the action's position. Files that are not
/// YAML are skipped ([`validate`] reports them).
pub fn requirements<P: AsRef<str>, T: AsRef<str>>(files: &[(P, T)]) -> Vec<Requirement> {
    let mut out = Vec::new();
    for (file, text) in files {
        let mut ignored = Vec::new();
        let f = raw::parse(file.as_ref(), text.as_ref(), &mut ignored);
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
