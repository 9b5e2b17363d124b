//! The `metrics:` of a metric-math alarm (`PutMetricAlarm.Metrics`, reference §3.11),
//! `threshold_metric_id` and `anomaly_detection:` of an anomaly-detection alarm (§3.12).
//!
//! Rules: a math alarm has none of the single-metric fields (`namespace`, `metric_name`,
//! `dimensions`, `statistic`, `unit`, `period_seconds`); each entry has an `id` and exactly
//! one of `metric_stat` and `expression`; the list follows CloudWatch's rules
//! ([`crate::math::plan_queries`]: at most 10 entries, ids, exactly one `return_data`, one
//! period, no cycles, a returned time series, the band of an anomaly alarm); every
//! `metric_stat` with `"*"` dimensions has the same `"*"` dimension names; the band operators
//! go with `threshold_metric_id` and nothing else, and then `threshold` is not given; an
//! anomaly alarm has no Auto Scaling actions (§3.8).

use thermostat_metrics::{Period, Statistic, Unit};

use super::{AlarmChecker, check_dimensions};
use crate::anomaly::{AnomalyConfig, MAX_EXCLUDED_RANGES};
use crate::error::{Pos, Rule};
use crate::math::{MAX_ALARM_QUERIES, Profile, QueryError, plan_queries};
use crate::model::{Actions, AlarmMetric, ComparisonOperator, MetricStat};
use crate::raw::{self, pos};
use crate::timefmt;

/// What a valid `metrics:` gives the alarm.
pub(super) struct MathParts {
    /// The entries, in order.
    pub metrics: Vec<AlarmMetric>,
    /// The alarm's period (the `metric_stat`s' period).
    pub period: Period,
    /// The first `metric_stat`'s statistic (a placeholder for `Alarm::statistic`).
    pub statistic: Statistic,
}

/// The single-metric fields a math alarm must not have.
fn single_metric_fields(s: &raw::AlarmSpec) -> [(&'static str, Option<Pos>); 6] {
    [
        ("namespace", s.namespace.as_ref().map(pos)),
        ("metric_name", s.metric_name.as_ref().map(pos)),
        ("dimensions", s.dimensions.as_ref().map(pos)),
        ("statistic", s.statistic.as_ref().map(pos)),
        ("unit", s.unit.as_ref().map(pos)),
        ("period_seconds", s.period_seconds.as_ref().map(pos)),
    ]
}

impl AlarmChecker<'_> {
    /// Checks a math alarm's `metrics:` (present in `s`) and the fields it excludes.
    pub(super) fn math_metrics(&mut self, s: &raw::AlarmSpec, b: &str) -> Option<MathParts> {
        let list = s.metrics.as_ref()?;
        let before = self.error_count();
        for (field, p) in single_metric_fields(s) {
            if let Some(p) = p {
                self.push(
                    p,
                    format!("{b}.{field}"),
                    Rule::Consistency,
                    format!(
                        "a metric-math alarm (with metrics:) must not have {field}, as in CloudWatch; give it in the metric_stat of an entry of metrics"
                    ),
                );
            }
        }
        if list.is_empty() || list.len() > MAX_ALARM_QUERIES {
            self.push(
                pos(list),
                format!("{b}.metrics"),
                Rule::Consistency,
                format!(
                    "must hold 1 to {MAX_ALARM_QUERIES} entries (got {})",
                    list.len()
                ),
            );
            return None;
        }
        let mut metrics = Vec::new();
        let mut wildcards: Option<(Vec<String>, usize)> = None;
        for (i, m) in list.iter().enumerate() {
            let at = format!("{b}.metrics[{i}]");
            let entry = pos(m);
            let id = self
                .required(&m.id, entry, &at, "id")
                .map(|t| t.as_str().to_owned());
            let return_data = self.boolean(&m.return_data, &format!("{at}.return_data"), true);
            let label = self.present(&m.label).map(|t| t.as_str().to_owned());
            let expression = self.present(&m.expression).map(|t| t.as_str().to_owned());
            let entry_period = self
                .present(&m.period_seconds)
                .and_then(|t| self.period(t, &format!("{at}.period_seconds")));
            let metric_stat = match (&m.metric_stat, &expression) {
                (Some(ms), Some(_)) => {
                    self.push(
                        pos(ms),
                        format!("{at}.metric_stat"),
                        Rule::Consistency,
                        "give exactly one of metric_stat and expression (got both)",
                    );
                    None
                }
                (None, None) => {
                    self.push(
                        entry,
                        format!("{at}.expression"),
                        Rule::Required,
                        "is required: give exactly one of metric_stat and expression",
                    );
                    None
                }
                (Some(ms), None) => self.metric_stat(ms, &format!("{at}.metric_stat")),
                (None, Some(_)) => None,
            };
            if let (Some(ms), Some(p), Some(t)) = (&metric_stat, entry_period, &m.period_seconds)
                && ms.period != p
            {
                self.push(
                    pos(t),
                    format!("{at}.period_seconds"),
                    Rule::Consistency,
                    format!(
                        "must equal the metric_stat's period_seconds ({} s, got {} s)",
                        ms.period.as_secs(),
                        p.as_secs()
                    ),
                );
            }
            if let Some(ms) = &metric_stat {
                let mut names: Vec<String> = ms
                    .dimensions
                    .iter()
                    .filter(|d| d.value == "*")
                    .map(|d| d.name.clone())
                    .collect();
                names.sort();
                if !names.is_empty() {
                    match &wildcards {
                        None => wildcards = Some((names, i)),
                        Some((first, j)) if *first != names => {
                            let p = m
                                .metric_stat
                                .as_ref()
                                .and_then(|s| s.dimensions.as_ref())
                                .map_or(entry, pos);
                            self.push(
                                p,
                                format!("{at}.metric_stat.dimensions"),
                                Rule::Consistency,
                                format!(
                                    "every metric_stat with \"*\" dimensions must have the same \"*\" dimension names (metrics[{j}] has {}, this one {})",
                                    first.join(", "),
                                    names.join(", ")
                                ),
                            );
                        }
                        Some(_) => {}
                    }
                }
            }
            if let Some(id) = id {
                metrics.push(AlarmMetric {
                    id,
                    metric_stat,
                    expression,
                    label,
                    return_data,
                });
            }
        }
        if self.error_count() != before {
            return None;
        }
        let period = metrics
            .iter()
            .find_map(|m| m.metric_stat.as_ref().map(|s| s.period))
            .or_else(|| {
                list.iter().find_map(|m| {
                    m.period_seconds
                        .as_ref()
                        .and_then(|t| t.trim().parse::<i64>().ok())
                        .and_then(|p| Period::try_from_secs(p).ok())
                })
            });
        let Some(period) = period else {
            self.push(
                pos(list),
                format!("{b}.metrics"),
                Rule::Required,
                "a metric-math alarm needs a period: give a metric_stat, or period_seconds on an entry",
            );
            return None;
        };
        let statistic = metrics
            .iter()
            .find_map(|m| m.metric_stat.as_ref().map(|s| s.statistic.clone()))
            .unwrap_or(Statistic::Average);
        // CloudWatch's list rules, each error at the entry (or field) it is about.
        let threshold_metric_id = self
            .present(&s.threshold_metric_id)
            .map(|t| t.as_str().to_owned());
        let mut queries: Vec<_> = metrics.iter().map(AlarmMetric::query).collect();
        // An expression-only list takes its period from the entries.
        for (q, m) in queries.iter_mut().zip(list.iter()) {
            if q.period_seconds.is_none()
                && let Some(p) = m
                    .period_seconds
                    .as_ref()
                    .and_then(|t| t.trim().parse().ok())
            {
                q.period_seconds = Some(p);
            }
        }
        if let Err(errors) = plan_queries(
            queries,
            Profile::Alarm {
                threshold_metric_id: threshold_metric_id.as_deref(),
            },
        ) {
            for e in errors {
                self.query_error(&e, s, list, b);
            }
            return None;
        }
        Some(MathParts {
            metrics,
            period,
            statistic,
        })
    }

    fn query_error(
        &mut self,
        e: &QueryError,
        s: &raw::AlarmSpec,
        list: &raw::Spanned<Vec<raw::Spanned<raw::MetricSpec>>>,
        b: &str,
    ) {
        let entry = list.get(e.index);
        let at = format!("{b}.metrics[{}]", e.index);
        let entry_pos = entry.map_or(pos(list), pos);
        let (p, path) = match e.field {
            "metrics" => (pos(list), format!("{b}.metrics")),
            "threshold_metric_id" => (
                s.threshold_metric_id.as_ref().map_or(entry_pos, pos),
                format!("{b}.threshold_metric_id"),
            ),
            "id" => (
                entry.and_then(|m| m.id.as_ref()).map_or(entry_pos, pos),
                format!("{at}.id"),
            ),
            "return_data" => (
                entry
                    .and_then(|m| m.return_data.as_ref())
                    .map_or(entry_pos, pos),
                format!("{at}.return_data"),
            ),
            "period_seconds" => (
                entry
                    .and_then(|m| {
                        m.metric_stat
                            .as_ref()
                            .and_then(|ms| ms.period_seconds.as_ref())
                            .or(m.period_seconds.as_ref())
                    })
                    .map_or(entry_pos, pos),
                format!("{at}.period_seconds"),
            ),
            _ => (
                entry
                    .and_then(|m| m.expression.as_ref())
                    .map_or(entry_pos, pos),
                format!("{at}.expression"),
            ),
        };
        let rule = match e.rule {
            "duplicate-id" => Rule::Duplicate,
            "id" => Rule::Name,
            "cycle" => Rule::Cycle,
            "band" | "unknown-id" if e.field == "threshold_metric_id" => Rule::Reference,
            "count" | "return-data" | "period" | "kind" if e.pos.is_none() => Rule::Consistency,
            _ => Rule::Expression,
        };
        let message = match e.pos {
            Some(at) => format!(
                "{} (at {}:{} of the expression; rule {})",
                e.message, at.line, at.column, e.rule
            ),
            None if e.rule == "return-data" => format!(
                "{} (rule {}; return_data defaults to true, as in CloudWatch: set return_data: false on the others)",
                e.message, e.rule
            ),
            None => format!("{} (rule {})", e.message, e.rule),
        };
        self.push(p, path, rule, message);
    }

    fn period(&mut self, t: &raw::Text, path: &str) -> Option<Period> {
        let p = self.count(t, path, 1, 7 * 86_400)?;
        if matches!(p, 10 | 20 | 30) || p % 60 == 0 {
            Period::try_from_secs(i64::from(p)).ok()
        } else {
            self.push(
                pos(t),
                path,
                Rule::Number,
                format!("must be 10, 20, 30 or a multiple of 60 (got {p})"),
            );
            None
        }
    }

    fn metric_stat(
        &mut self,
        ms: &raw::Spanned<raw::MetricStatSpec>,
        at: &str,
    ) -> Option<MetricStat> {
        let p = pos(ms);
        let path = |f: &str| format!("{at}.{f}");
        let namespace = self.required(&ms.namespace, p, at, "namespace").map(|t| {
            if let Err(m) = thermostat_metrics::validate::namespace(t) {
                self.push(pos(t), path("namespace"), Rule::Name, m);
            }
            t.as_str().to_owned()
        });
        let metric_name = self
            .required(&ms.metric_name, p, at, "metric_name")
            .map(|t| {
                if let Err(m) = thermostat_metrics::validate::metric_name(t) {
                    self.push(pos(t), path("metric_name"), Rule::Name, m);
                }
                t.as_str().to_owned()
            });
        let dimensions = check_dimensions(&mut self.0, &ms.dimensions, &path("dimensions"), true);
        let period = self
            .required(&ms.period_seconds, p, at, "period_seconds")
            .and_then(|t| self.period(t, &path("period_seconds")));
        let statistic = self
            .required(&ms.statistic, p, at, "statistic")
            .and_then(|t| match t.as_str().parse::<Statistic>() {
                Ok(st) => match super::alarm_statistic_rule(&st) {
                    Ok(()) => Some(st),
                    Err(m) => {
                        self.push(pos(t), path("statistic"), Rule::Enum, m);
                        None
                    }
                },
                Err(err) => {
                    self.push(pos(t), path("statistic"), Rule::Enum, err.to_string());
                    None
                }
            });
        let unit = match self.present(&ms.unit) {
            Some(t) => match t.as_str().parse::<Unit>() {
                Ok(u) => Some(Some(u)),
                Err(err) => {
                    self.push(pos(t), path("unit"), Rule::Enum, err.to_string());
                    None
                }
            },
            None => Some(None),
        };
        Some(MetricStat {
            namespace: namespace?,
            metric_name: metric_name?,
            dimensions,
            period: period?,
            statistic: statistic?,
            unit: unit?,
        })
    }

    /// The rules between `threshold_metric_id`, the operator, `threshold` and the actions of
    /// an alarm; `is_math` whether it has `metrics:`.
    pub(super) fn band_rules(
        &mut self,
        s: &raw::AlarmSpec,
        entry: Pos,
        b: &str,
        op: Option<ComparisonOperator>,
        actions: &Actions,
    ) {
        let band_op = op.is_some_and(ComparisonOperator::is_band);
        if let Some(t) = self.present(&s.threshold_metric_id) {
            if s.metrics.is_none() {
                self.push(
                    pos(t),
                    format!("{b}.threshold_metric_id"),
                    Rule::Consistency,
                    "needs metrics: with the ANOMALY_DETECTION_BAND expression it names",
                );
            }
            if op.is_some() && !band_op {
                let p = s.comparison_operator.as_ref().map_or(entry, pos);
                self.push(
                    p,
                    format!("{b}.comparison_operator"),
                    Rule::Consistency,
                    "an anomaly-detection alarm (with threshold_metric_id) must use LessThanLowerOrGreaterThanUpperThreshold, LessThanLowerThreshold or GreaterThanUpperThreshold",
                );
            }
            for (field, t) in [
                ("threshold", &s.threshold),
                ("ok_threshold", &s.ok_threshold),
            ] {
                if let Some(t) = self.present(t) {
                    self.push(
                        pos(t),
                        format!("{b}.{field}"),
                        Rule::Consistency,
                        "is not used by an anomaly-detection alarm (with threshold_metric_id): the band is the threshold; remove it",
                    );
                }
            }
            for (key, list) in [
                ("alarm_actions", &actions.alarm),
                ("ok_actions", &actions.ok),
                ("insufficient_data_actions", &actions.insufficient_data),
            ] {
                if list.iter().any(|a| a.is_scaling()) {
                    let p = match key {
                        "alarm_actions" => s.alarm_actions.as_ref(),
                        "ok_actions" => s.ok_actions.as_ref(),
                        _ => s.insufficient_data_actions.as_ref(),
                    }
                    .map_or(entry, pos);
                    self.push(
                        p,
                        format!("{b}.{key}"),
                        Rule::Reference,
                        "anomaly-detection alarms cannot run Auto Scaling actions, as in CloudWatch",
                    );
                }
            }
        } else {
            if band_op && let Some(t) = &s.comparison_operator {
                self.push(
                    pos(t),
                    format!("{b}.comparison_operator"),
                    Rule::Consistency,
                    format!(
                        "{} compares with an anomaly-detection band: it needs threshold_metric_id naming an ANOMALY_DETECTION_BAND expression of metrics",
                        t.as_str()
                    ),
                );
            }
            if let Some(a) = &s.anomaly_detection {
                self.push(
                    pos(a),
                    format!("{b}.anomaly_detection"),
                    Rule::Consistency,
                    "is only for anomaly-detection alarms (with threshold_metric_id)",
                );
            }
        }
    }

    /// `anomaly_detection:` (`None` when absent; `Some(None)` after an error).
    pub(super) fn anomaly_config(
        &mut self,
        s: &raw::AlarmSpec,
        b: &str,
    ) -> Option<Option<AnomalyConfig>> {
        let Some(a) = &s.anomaly_detection else {
            return Some(None);
        };
        let at = format!("{b}.anomaly_detection");
        let before = self.error_count();
        let mut config = AnomalyConfig::default();
        if let Some(ranges) = &a.excluded_time_ranges {
            if ranges.len() > MAX_EXCLUDED_RANGES {
                self.push(
                    pos(ranges),
                    format!("{at}.excluded_time_ranges"),
                    Rule::Consistency,
                    format!(
                        "must hold at most {MAX_EXCLUDED_RANGES} ranges (got {}); merge neighbouring ranges",
                        ranges.len()
                    ),
                );
            }
            for (i, r) in ranges.iter().enumerate() {
                let rp = format!("{at}.excluded_time_ranges[{i}]");
                let time = |this: &mut Self, t: &Option<raw::Text>, f: &str| {
                    let t = this.required(t, pos(r), &rp, f)?;
                    let v = timefmt::parse_rfc3339(t.trim());
                    if v.is_none() {
                        this.push(
                            pos(t),
                            format!("{rp}.{f}"),
                            Rule::Number,
                            format!(
                                "must be an RFC 3339 time such as 2026-03-01T00:00:00Z (got {})",
                                t.as_str()
                            ),
                        );
                    }
                    v
                };
                let start = time(self, &r.start, "start");
                let end = time(self, &r.end, "end");
                if let (Some(start), Some(end)) = (start, end) {
                    if start >= end {
                        let p = r.end.as_ref().map_or(pos(r), pos);
                        self.push(
                            p,
                            format!("{rp}.end"),
                            Rule::Consistency,
                            "must be after start",
                        );
                    }
                    config.excluded.push((start, end));
                }
            }
        }
        if let Some(t) = self.present(&a.metric_timezone) {
            config.time_zone = Some(t.as_str().to_owned());
            let only_zone = AnomalyConfig {
                excluded: Vec::new(),
                time_zone: config.time_zone.clone(),
            };
            if only_zone.validate().is_err() {
                self.push(
                    pos(t),
                    format!("{at}.metric_timezone"),
                    Rule::Name,
                    format!(
                        "unknown IANA time zone {:?} (use a name such as \"Europe/Berlin\")",
                        t.as_str()
                    ),
                );
            }
        }
        if self.error_count() != before {
            return None;
        }
        Some(Some(config))
    }
}
