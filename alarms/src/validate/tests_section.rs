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

impl AlarmChecker<'_> {
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
            let namespace = self
                .present(&d.namespace)
                .map(|t| t.as_str().to_owned())
                .or_else(|| target.map(|a| a.namespace.clone()));
            let metric_name = self
                .present(&d.metric_name)
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
            let given = check_dimensions(
                &mut self.0,
                &d.dimensions,
                &format!("{p}.dimensions"),
                false,
            );
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
            let unit = match self.present(&d.unit) {
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
