//! Phase two of loading: [`validate`] turns raw files into an [`AlarmSet`], collecting every
//! problem as a [`ConfigError`](crate::ConfigError) with its file, line, column and path.
//!
//! Rules (reference §3.1, §3.10, §7.5): CloudWatch's name and length limits, periods of 10,
//! 20, 30 or a multiple of 60 seconds, `datapoints_to_alarm ≤ evaluation_periods`,
//! `period × evaluation_periods` within one day (seven days for periods of an hour or
//! more), finite thresholds, at most five actions per list in the supported forms,
//! composite rules that parse and name existing alarms without cycles, and unique names
//! across every file.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};

use thermostat_metrics::statistic::Bounds;
use thermostat_metrics::{Dimension, Period, Statistic, Unit};
use thermostat_yaml::{ErrorList, FieldChecker, did_you_mean};

use crate::action::{self, Action, MAX_ACTIONS};
use crate::error::{ConfigErrors, Pos, Rule};
use crate::model::{
    ActionsSuppressor, Alarm, AlarmSet, ComparisonOperator, CompositeAlarm, LowSampleCount, Source,
    TreatMissingData,
};
use crate::raw::{self, Pairs, Spanned, Text, TextList, pos};
use crate::rule;
use crate::timefmt;

mod composites;
mod metrics;
mod requirements;
mod tests_section;

pub use requirements::{Need, Requirement, requirements, requirements_of};
pub use tests_section::MAX_HISTORY_DAYS;

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
    let mut errors = ErrorList::new();
    let raws = raw::read_files(files, &mut errors);
    let set = check(&raws, &mut errors);
    let names: Vec<&str> = files.iter().map(|(p, _)| p.as_ref()).collect();
    errors.finish(set, &names)
}

/// Validates the raw alarm files of a configuration ([`raw::read`]) as one set: unique
/// names across files, composite rules, suppressors and cycles, and the `tests:` entries
/// against the alarms. Every problem goes to `errors`; the set returned holds the entries
/// that passed, and is the configuration's only when no error was found.
pub fn check(raws: &[raw::AlarmFile], errors: &mut ErrorList) -> AlarmSet {
    let mut names: HashMap<String, (String, Pos)> = HashMap::new();
    let mut set = AlarmSet::default();
    let mut composite_rule_pos: Vec<(String, Pos, String)> = Vec::new();
    for f in raws {
        let mut check = AlarmChecker(FieldChecker::new(&f.file, errors));
        for e in &f.alarms {
            let unique = e
                .spec
                .name
                .as_ref()
                .is_none_or(|n| check.unique(&mut names, n, "alarms", e));
            if let Some(a) = check.alarm(e).filter(|_| unique) {
                set.alarms.push(a);
            }
        }
        for e in &f.composite_alarms {
            let unique = e
                .spec
                .name
                .as_ref()
                .is_none_or(|n| check.unique(&mut names, n, "composite_alarms", e));
            if let Some(c) = check.composite(e).filter(|_| unique) {
                let rule_pos = e.spec.alarm_rule.as_ref().map_or(e.pos, pos);
                composite_rule_pos.push((c.name.clone(), rule_pos, f.file.clone()));
                set.composites.push(c);
            }
        }
    }
    composites::check(&mut set, &composite_rule_pos, raws, &names, errors);
    for f in raws {
        let mut check = AlarmChecker(FieldChecker::new(&f.file, errors));
        let default_alarm = match (f.alarms.as_slice(), f.composite_alarms.as_slice()) {
            ([one], []) => one.spec.name.as_ref().map(|n| n.trim().to_owned()),
            ([], [one]) => one.spec.name.as_ref().map(|n| n.trim().to_owned()),
            _ => None,
        };
        for e in &f.tests {
            if let Some(t) = check.test(e, &set, default_alarm.as_deref()) {
                set.tests.push(t);
            }
        }
    }
    set
}

/// The field checks of one alarm file: `thermostat-yaml`'s, plus the alarms' own below.
struct AlarmChecker<'a>(FieldChecker<'a>);

impl<'a> Deref for AlarmChecker<'a> {
    type Target = FieldChecker<'a>;
    fn deref(&self) -> &FieldChecker<'a> {
        &self.0
    }
}

impl DerefMut for AlarmChecker<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// A dimensions map checked with CloudWatch's rules (at most 30, unique names, name and
/// value characters), sorted; with `star`, a value of `"*"` is allowed (per-series alarms).
/// The scaler's customized metrics are checked with it too.
pub fn check_dimensions(
    check: &mut FieldChecker<'_>,
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
        check.push(p, path, Rule::Name, m);
    }
    let mut out = Vec::new();
    for (k, v) in &d.0 {
        let p = format!("{path}.{}", k.as_str());
        if let Err(m) = thermostat_metrics::validate::dimension_name(k) {
            check.push(pos(k), p.clone(), Rule::Name, format!("name {m}"));
        }
        let checked = if star && v.as_str() == "*" {
            Ok(())
        } else {
            thermostat_metrics::validate::dimension_value(v)
        };
        if let Err(m) = checked {
            check.push(pos(v), p, Rule::Name, m);
        }
        out.push(Dimension::new(k.as_str(), v.as_str()));
    }
    out.sort();
    out
}

impl AlarmChecker<'_> {
    fn source(&self, pos: Pos) -> Source {
        Source {
            file: self.file().to_owned(),
            line: pos.line,
        }
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
                Rule::Reference,
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
                    Rule::Reference,
                    format!(
                        "composite alarms cannot run Auto Scaling actions, as in CloudWatch (got {:?})",
                        t.as_str()
                    ),
                ),
                Ok(a) => out.push(a),
                Err(m) => self.push(pos(t), p, Rule::Reference, m),
            }
        }
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
        names.insert(name.to_owned(), (self.file().to_owned(), p));
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
        match self.present(name) {
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
        let before = self.error_count();
        let (b, name) = self.base_path("alarms", e.index, &s.name, e.pos);
        let at = |f: &str| format!("{b}.{f}");
        let description = self.bounded_text(&s.description, &at("description"), 1024);
        // A metric-math alarm (`metrics:`) has none of the single-metric fields.
        let math = s.metrics.as_ref().map(|_| self.math_metrics(s, &b));
        let single = math.is_none();
        let namespace = self
            .required_if(single, &s.namespace, e.pos, &b, "namespace")
            .map(|t| {
                if let Err(m) = thermostat_metrics::validate::namespace(t) {
                    self.push(pos(t), at("namespace"), Rule::Name, m);
                }
                t.as_str().to_owned()
            });
        let metric_name = self
            .required_if(single, &s.metric_name, e.pos, &b, "metric_name")
            .map(|t| {
                if let Err(m) = thermostat_metrics::validate::metric_name(t) {
                    self.push(pos(t), at("metric_name"), Rule::Name, m);
                }
                t.as_str().to_owned()
            });
        let dimensions = check_dimensions(&mut self.0, &s.dimensions, &at("dimensions"), true);
        let statistic = self
            .required_if(single, &s.statistic, e.pos, &b, "statistic")
            .and_then(|t| match t.as_str().parse::<Statistic>() {
                Ok(st) => match alarm_statistic_rule(&st) {
                    Ok(()) => Some(st),
                    Err(m) => {
                        self.push(pos(t), at("statistic"), Rule::Enum, m);
                        None
                    }
                },
                Err(err) => {
                    self.push(pos(t), at("statistic"), Rule::Enum, err.to_string());
                    None
                }
            });
        let period = self
            .required_if(single, &s.period_seconds, e.pos, &b, "period_seconds")
            .and_then(|t| {
                let p = self.count(t, &at("period_seconds"), 1, 7 * 86_400)?;
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
        let period = period.or_else(|| math.as_ref()?.as_ref().map(|m| m.period));
        let n_text = self.required(&s.evaluation_periods, e.pos, &b, "evaluation_periods");
        let n = n_text.and_then(|t| self.count(t, &at("evaluation_periods"), 1, u32::MAX));
        let m = self.present(&s.datapoints_to_alarm).and_then(|t| {
            let m = self.count(t, &at("datapoints_to_alarm"), 1, u32::MAX)?;
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
        let range = match self.present(&s.evaluation_range) {
            Some(t) => self.count(t, &at("evaluation_range"), 1, u32::MAX).and_then(|r| {
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
        let band = s.threshold_metric_id.is_some();
        let threshold = self
            .required_if(!band, &s.threshold, e.pos, &b, "threshold")
            .and_then(|t| self.float(t, &at("threshold")));
        let comparison_operator: Option<ComparisonOperator> = self
            .required(&s.comparison_operator, e.pos, &b, "comparison_operator")
            .and_then(|t| self.word(t, &at("comparison_operator")));
        let ok_threshold = self.present(&s.ok_threshold).and_then(|t| {
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
        let treat_missing_data = match self.present(&s.treat_missing_data) {
            Some(t) => self.word(t, &at("treat_missing_data")),
            None => Some(TreatMissingData::Missing),
        };
        let low = match self.present(&s.evaluate_low_sample_count_percentile) {
            Some(t) => self.word(t, &at("evaluate_low_sample_count_percentile")),
            None => Some(LowSampleCount::Evaluate),
        };
        let delay = match self.present(&s.evaluation_delay_seconds) {
            Some(t) => self.count(
                t,
                &at("evaluation_delay_seconds"),
                0,
                MAX_EVALUATION_DELAY_SECONDS,
            ),
            None => Some(0),
        };
        let unit = match self.present(&s.unit) {
            Some(t) => match t.as_str().parse::<Unit>() {
                Ok(u) => Some(Some(u)),
                Err(err) => {
                    self.push(pos(t), at("unit"), Rule::Enum, err.to_string());
                    None
                }
            },
            None => Some(None),
        };
        let repeat = match self.present(&s.repeat_interval_seconds) {
            Some(t) => self
                .count(t, &at("repeat_interval_seconds"), 60, 604_800)
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
        self.band_rules(s, e.pos, &b, comparison_operator, &actions);
        let anomaly = self.anomaly_config(s, &b);
        if self.error_count() != before {
            return None;
        }
        let (namespace, metric_name, statistic, period, metrics) = match math {
            Some(parts) => {
                let parts = parts?;
                (
                    String::new(),
                    String::new(),
                    parts.statistic,
                    parts.period,
                    parts.metrics,
                )
            }
            None => (namespace?, metric_name?, statistic?, period?, Vec::new()),
        };
        Some(Alarm {
            name: name?,
            description,
            namespace,
            metric_name,
            dimensions,
            statistic,
            period,
            evaluation_periods: n?,
            datapoints_to_alarm: m,
            evaluation_range: range?,
            // An anomaly-detection alarm has no threshold: the band is (0 is not used).
            threshold: if band { 0.0 } else { threshold? },
            ok_threshold,
            comparison_operator: comparison_operator?,
            treat_missing_data: treat_missing_data?,
            evaluate_low_sample_count_percentile: low?,
            evaluation_delay_seconds: delay?,
            unit: unit?,
            actions,
            source: self.source(e.pos),
            metrics,
            threshold_metric_id: s
                .threshold_metric_id
                .as_ref()
                .map(|t| t.as_str().to_owned()),
            anomaly: anomaly?,
        })
    }

    /// [`FieldChecker::required`] when `needed`, else [`FieldChecker::present`].
    fn required_if<'t>(
        &mut self,
        needed: bool,
        t: &'t Option<Text>,
        entry: Pos,
        base: &str,
        field: &str,
    ) -> Option<&'t Text> {
        if needed {
            self.required(t, entry, base, field)
        } else {
            self.present(t)
        }
    }

    fn composite(&mut self, e: &raw::Entry<raw::CompositeSpec>) -> Option<CompositeAlarm> {
        let s = &e.spec;
        let before = self.error_count();
        let (b, name) = self.base_path("composite_alarms", e.index, &s.name, e.pos);
        let at = |f: &str| format!("{b}.{f}");
        let description = self.bounded_text(&s.description, &at("description"), 1024);
        let rule = self
            .required(&s.alarm_rule, e.pos, &b, "alarm_rule")
            .and_then(|t| match rule::parse(t) {
                Ok(r) => Some((r, t.as_str().to_owned())),
                Err(err) => {
                    self.push(pos(t), at("alarm_rule"), Rule::Expression, err.to_string());
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
                        self.count(
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
                        self.count(
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
        if self.error_count() != before {
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

/// ` (did you mean "x"?)` naming the closest alarm or composite alarm, or nothing.
fn suggest(name: &str, set: &AlarmSet) -> String {
    let all = set
        .alarms
        .iter()
        .map(|a| a.name.as_str())
        .chain(set.composites.iter().map(|c| c.name.as_str()));
    did_you_mean(name, all)
}

/// Lowest and highest percentage an alarm's `TM`, `WM`, `TC` or `TS` bound may be
/// (`PutMetricAlarm.ExtendedStatistic`, reference §2.3 and §7.5).
const ALARM_PERCENT_BOUNDS: (f64, f64) = (10.0, 90.0);

/// The rule alarms add to the statistics a query accepts (reference §2.3, §7.5): in
/// `TM(a%:b%)`, `WM`, `TC` and `TS` with percentage bounds each given bound must be 10 to 90
/// inclusive. The one-number forms (`tm99`), `IQM`, `PR(n:m)` and percentiles are not
/// limited; absolute bounds (`TM(100:200)`) are accepted as an extension (CloudWatch
/// documents only `PR` with absolute bounds for alarms).
fn alarm_statistic_rule(st: &Statistic) -> Result<(), String> {
    let Statistic::Extended(e) = st else {
        return Ok(());
    };
    let Bounds::Percent { lower, upper } = e.bounds else {
        return Ok(());
    };
    let (lo, hi) = ALARM_PERCENT_BOUNDS;
    let outside = [lower, upper]
        .into_iter()
        .flatten()
        .any(|p| !(lo..=hi).contains(&p));
    if e.has_parentheses() && outside {
        return Err(format!(
            "alarm statistics with percentage bounds must keep each bound between 10% and 90% inclusive, as CloudWatch alarms require (TM(10%:90%), not {}); use tmNN, IQM, PR(n:m) or absolute bounds for other ranges",
            thermostat_metrics::quote::quote(&e.label)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
