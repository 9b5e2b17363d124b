//! The `tests:` section of alarm files (alarm tests written in YAML, run by
//! [`crate::alarm_tests`]): each entry read against the validated alarms.

use std::collections::BTreeMap;

use thermostat_metrics::{Dimension, Timestamp, Unit};

use super::{AlarmChecker, check_dimensions, suggest};
use crate::error::Rule;
use crate::model::{
    AlarmSet, AlarmTest, StateValue, TestDatapoint, TestExpectation, TestTransition,
};
use crate::raw::{self, Text, pos};
use crate::timefmt;

/// The series fields of a test datapoint or history entry.
struct SeriesFields<'a> {
    metric: &'a Option<Text>,
    namespace: &'a Option<Text>,
    metric_name: &'a Option<Text>,
    dimensions: &'a Option<raw::Spanned<raw::Pairs>>,
    unit: &'a Option<Text>,
}

/// A checked `history:` entry.
struct History {
    namespace: String,
    metric_name: String,
    dimensions: Vec<Dimension>,
    unit: Unit,
    days: u32,
    every_ms: i64,
    value: f64,
    daily_amplitude: f64,
    noise: f64,
}

/// Most days a `history:` entry generates (the anomaly models' training window).
pub const MAX_HISTORY_DAYS: u32 = 14;

impl History {
    /// The points from `start − days` (included) to `start` (excluded), every `every_ms`:
    /// `value + daily_amplitude · sin(2π · UTC time of day / 24 h) + noise`, where the noise
    /// is a fixed pseudo-random sequence in `[−noise, noise]` (the same at every run).
    fn into_datapoints(self, start: Timestamp) -> impl Iterator<Item = TestDatapoint> {
        let from = start.sub_millis(i64::from(self.days) * 86_400_000);
        let count = (start.as_millis() - from.as_millis()) / self.every_ms;
        (0..count).map(move |i| {
            let t = from.add_millis(i * self.every_ms);
            let day = t.as_millis().rem_euclid(86_400_000) as f64 / 86_400_000.0;
            // A fixed sequence: splitmix64 of the point's index.
            let mut z = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let unit_noise = (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
            let v = self.value
                + self.daily_amplitude * (day * std::f64::consts::TAU).sin()
                + self.noise * unit_noise;
            TestDatapoint {
                timestamp: t,
                namespace: self.namespace.clone(),
                metric_name: self.metric_name.clone(),
                dimensions: self.dimensions.clone(),
                unit: self.unit,
                values: vec![v],
            }
        })
    }
}

impl AlarmChecker<'_> {
    /// The series a datapoint or history entry is of: `metric:` (the id of a
    /// `metric_stat` of the test's math alarm), else `namespace`/`metric_name` (the test's
    /// alarm's by default), with the alarm's (or metric_stat's) dimensions and unit as
    /// defaults when it is the same metric.
    fn series_of(
        &mut self,
        d: SeriesFields<'_>,
        target: Option<&crate::model::Alarm>,
        entry: crate::error::Pos,
        p: &str,
    ) -> Option<(String, String, BTreeMap<String, String>, Unit)> {
        let before = self.error_count();
        // The metric the defaults come from.
        let source: Option<(String, String, Vec<Dimension>, Option<Unit>)> = match self
            .present(d.metric)
        {
            Some(t) => {
                let found = target.and_then(|a| {
                    a.metric_stats()
                        .find(|(id, _)| *id == t.as_str())
                        .map(|(_, m)| {
                            (
                                m.namespace.clone(),
                                m.metric_name.clone(),
                                m.dimensions.clone(),
                                m.unit,
                            )
                        })
                });
                if found.is_none() {
                    self.push(
                            pos(t),
                            format!("{p}.metric"),
                            Rule::Test,
                            format!(
                                "must be the id of a metric_stat in the metrics of the test's alarm (got {:?})",
                                t.as_str()
                            ),
                        );
                }
                found
            }
            None => target.filter(|a| !a.is_math()).map(|a| {
                (
                    a.namespace.clone(),
                    a.metric_name.clone(),
                    a.dimensions.clone(),
                    a.unit,
                )
            }),
        };
        let namespace = self
            .present(d.namespace)
            .map(|t| t.as_str().to_owned())
            .or_else(|| source.as_ref().map(|s| s.0.clone()));
        let metric_name = self
            .present(d.metric_name)
            .map(|t| t.as_str().to_owned())
            .or_else(|| source.as_ref().map(|s| s.1.clone()));
        if (namespace.is_none() || metric_name.is_none()) && self.error_count() == before {
            self.push(
                entry,
                p,
                Rule::Test,
                "must name namespace and metric_name (or metric: the id of a metric_stat of a math alarm) when the test's alarm is not a single-metric alarm",
            );
        }
        let given = check_dimensions(&mut self.0, d.dimensions, &format!("{p}.dimensions"), false);
        let mut dims: BTreeMap<String, String> = BTreeMap::new();
        let same = source
            .as_ref()
            .filter(|s| Some(&s.0) == namespace.as_ref() && Some(&s.1) == metric_name.as_ref());
        if let Some(s) = same {
            for dim in &s.2 {
                dims.insert(dim.name.clone(), dim.value.clone());
            }
        }
        for dim in given {
            dims.insert(dim.name, dim.value);
        }
        if let Some((n, _)) = dims.iter().find(|(_, v)| v.as_str() == "*") {
            self.push(
                entry,
                format!("{p}.dimensions"),
                Rule::Test,
                format!(
                    "must give a value for the dimension {n:?}, which the alarm matches with \"*\""
                ),
            );
        }
        let unit = match self.present(d.unit) {
            Some(t) => t
                .as_str()
                .parse::<Unit>()
                .map_err(|err| {
                    self.push(pos(t), format!("{p}.unit"), Rule::Enum, err.to_string());
                })
                .ok(),
            None => Some(same.and_then(|s| s.3).unwrap_or_default()),
        };
        if self.error_count() != before {
            return None;
        }
        Some((namespace?, metric_name?, dims, unit?))
    }

    /// A `history:` entry.
    fn history(
        &mut self,
        h: &raw::Spanned<raw::TestHistorySpec>,
        target: Option<&crate::model::Alarm>,
        p: &str,
    ) -> Option<History> {
        let before = self.error_count();
        let series = self.series_of(
            SeriesFields {
                metric: &h.metric,
                namespace: &h.namespace,
                metric_name: &h.metric_name,
                dimensions: &h.dimensions,
                unit: &h.unit,
            },
            target,
            pos(h),
            p,
        );
        let days = self
            .required(&h.days, pos(h), p, "days")
            .and_then(|t| self.count(t, &format!("{p}.days"), 1, MAX_HISTORY_DAYS));
        let every_ms = match self.present(&h.every) {
            Some(t) => self.offset(t, &format!("{p}.every")).and_then(|ms| {
                if ms >= 1000 {
                    Some(ms)
                } else {
                    self.push(
                        pos(t),
                        format!("{p}.every"),
                        Rule::Test,
                        format!("must be at least 1s (got {})", t.as_str()),
                    );
                    None
                }
            }),
            None => Some(60_000),
        };
        let value = self
            .required(&h.value, pos(h), p, "value")
            .and_then(|t| self.float(t, &format!("{p}.value")));
        let optional = |this: &mut Self, t: &Option<Text>, f: &str| match this.present(t) {
            Some(t) => this.float(t, &format!("{p}.{f}")),
            None => Some(0.0),
        };
        let daily_amplitude = optional(self, &h.daily_amplitude, "daily_amplitude");
        let noise = optional(self, &h.noise, "noise");
        if self.error_count() != before {
            return None;
        }
        let (namespace, metric_name, dims, unit) = series?;
        Some(History {
            namespace,
            metric_name,
            dimensions: dims
                .into_iter()
                .map(|(k, v)| Dimension::new(k, v))
                .collect(),
            unit,
            days: days?,
            every_ms: every_ms?,
            value: value?,
            daily_amplitude: daily_amplitude?,
            noise: noise?,
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

    pub(super) fn test(
        &mut self,
        e: &raw::Entry<raw::TestSpec>,
        set: &AlarmSet,
        default_alarm: Option<&str>,
    ) -> Option<AlarmTest> {
        let s = &e.spec;
        let before = self.error_count();
        let name = self.present(&s.name).map(|t| t.as_str().to_owned());
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
        let alarm = match self.present(&s.alarm) {
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
        let start = match self.present(&s.start) {
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
        let initial_state = match self.present(&s.initial_state) {
            Some(t) => self.word(t, &at("initial_state")),
            None => Some(StateValue::InsufficientData),
        };
        let mut datapoints = Vec::new();
        for (i, d) in s.datapoints.iter().flat_map(|l| l.iter()).enumerate() {
            let p = format!("{}[{i}]", at("datapoints"));
            let dp_at = self
                .required(&d.at, pos(d), &p, "at")
                .and_then(|t| self.offset(t, &format!("{p}.at")));
            let values: Option<Vec<f64>> = match (self.present(&d.value), &d.values) {
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
            let series = self.series_of(
                SeriesFields {
                    metric: &d.metric,
                    namespace: &d.namespace,
                    metric_name: &d.metric_name,
                    dimensions: &d.dimensions,
                    unit: &d.unit,
                },
                target,
                pos(d),
                &p,
            );
            let (namespace, metric_name, dims, unit) = match series {
                Some((n, m, d, u)) => (Some(n), Some(m), d, Some(u)),
                None => (None, None, BTreeMap::new(), None),
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
        for (i, h) in s.history.iter().flat_map(|l| l.iter()).enumerate() {
            let p = format!("{}[{i}]", at("history"));
            if let (Some(generated), Some(start)) = (self.history(h, target, &p), start) {
                datapoints.extend(generated.into_datapoints(start));
            }
        }
        let mut expect = Vec::new();
        for (i, x) in s.expect.iter().flat_map(|l| l.iter()).enumerate() {
            let p = format!("{}[{i}]", at("expect"));
            let t_at = self
                .required(&x.at, pos(x), &p, "at")
                .and_then(|t| self.offset(t, &format!("{p}.at")));
            let who = match self.present(&x.alarm) {
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
                    reason_contains: self
                        .present(&x.reason_contains)
                        .map(|t| t.as_str().to_owned()),
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
                let who = match self.present(&x.alarm) {
                    Some(t) => self.known_alarm(set, t, &format!("{p}.alarm")),
                    None => alarm.clone(),
                };
                let from = match self.present(&x.from) {
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
        if expect.is_empty() && transitions.is_none() && self.error_count() == before {
            self.push(e.pos, &b, Rule::Test, "must have expect or transitions");
        }
        if self.error_count() != before {
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
