//! Back-tests: replay an [`AlarmSet`] over recorded data, evaluating at every tick of a
//! range, plus the CSV input format and the text/JSON renderings of `thermostat backtest`.
//!
//! CSV: header `timestamp,namespace,metric_name,dimensions,value`; `timestamp` is RFC 3339
//! or Unix milliseconds; `dimensions` is `Name=Value;Name2=Value2` (may be empty); fields
//! may be double-quoted (`""` inside quotes is a quote).

use serde::Serialize;
use thermostat_metrics::{
    Dimension, Observation, Resolution, Sample, SeriesKey, Store, Timestamp, Unit,
};

use crate::engine::{EngineState, tick};
use crate::error::{Error, Result};
use crate::model::{AlarmSet, StateValue};
use crate::state::{ReasonData, Transition};
use crate::timefmt;

/// One CSV row.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvRow {
    /// 1-based line.
    pub line: usize,
    /// When.
    pub timestamp: Timestamp,
    /// The series.
    pub key: SeriesKey,
    /// The observation.
    pub value: f64,
}

/// The CSV header.
pub const CSV_HEADER: &str = "timestamp,namespace,metric_name,dimensions,value";

fn split_csv(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) if cur.is_empty() => quoted = true,
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    if quoted {
        return None;
    }
    out.push(cur);
    Some(out)
}

/// Parses back-test CSV text.
///
/// # Errors
/// Every malformed line, as [`Error::Csv`] with its line number.
pub fn parse_csv(text: &str) -> Result<Vec<CsvRow>, Vec<Error>> {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let err = |line: usize, field: &str, message: String| Error::Csv {
        line,
        field: field.to_owned(),
        message,
    };
    let mut header_seen = false;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim_end_matches('\r');
        if l.trim().is_empty() {
            continue;
        }
        if !header_seen {
            header_seen = true;
            let h: Vec<String> = split_csv(l)
                .unwrap_or_default()
                .iter()
                .map(|s| s.trim().to_owned())
                .collect();
            if h.join(",") != CSV_HEADER {
                errors.push(err(
                    line,
                    "header",
                    format!("must be {CSV_HEADER:?} (got {l:?})"),
                ));
                return Err(errors);
            }
            continue;
        }
        let Some(f) = split_csv(l) else {
            errors.push(err(line, "line", "has an unterminated quoted field".into()));
            continue;
        };
        if f.len() != 5 {
            errors.push(err(
                line,
                "line",
                format!("must have 5 fields (got {})", f.len()),
            ));
            continue;
        }
        let ts = timefmt::parse_time(&f[0], 1);
        if ts.is_none() {
            errors.push(err(
                line,
                "timestamp",
                format!("must be RFC 3339 or Unix milliseconds (got {:?})", f[0]),
            ));
        }
        if let Err(m) = thermostat_metrics::validate::namespace(&f[1]) {
            errors.push(err(line, "namespace", m));
        }
        if let Err(m) = thermostat_metrics::validate::metric_name(&f[2]) {
            errors.push(err(line, "metric_name", m));
        }
        let mut dims = Vec::new();
        for part in f[3].split(';').filter(|p| !p.trim().is_empty()) {
            match part.split_once('=') {
                Some((n, v)) if !n.trim().is_empty() => {
                    dims.push(Dimension::new(n.trim(), v.trim()))
                }
                _ => errors.push(err(
                    line,
                    "dimensions",
                    format!("must be Name=Value pairs separated by ';' (got {part:?})"),
                )),
            }
        }
        let value = match f[4].trim().parse::<f64>() {
            Ok(v) if thermostat_metrics::validate::value(v).is_ok() => Some(v),
            _ => {
                errors.push(err(
                    line,
                    "value",
                    format!("must be a finite number (got {:?})", f[4]),
                ));
                None
            }
        };
        if let (Some(timestamp), Some(value)) = (ts, value) {
            rows.push(CsvRow {
                line,
                timestamp,
                key: SeriesKey::new(f[1].as_str(), f[2].as_str(), dims),
                value,
            });
        }
    }
    if !header_seen {
        errors.push(err(
            1,
            "header",
            format!("must be {CSV_HEADER:?} (the file is empty)"),
        ));
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// Loads observations into a fresh store: at 1-second resolution for metrics that a
/// 10/20/30-second alarm watches, at 60-second resolution otherwise.
pub fn store_from<'a>(
    set: &AlarmSet,
    rows: impl IntoIterator<Item = (SeriesKey, Timestamp, Unit, &'a [f64])>,
) -> Store {
    let store = Store::new(4);
    let mut batch = Vec::new();
    for (key, ts, unit, values) in rows {
        let high = set.alarms.iter().any(|a| {
            a.period.as_secs() < 60
                && a.namespace == key.namespace()
                && a.metric_name == key.metric_name()
        });
        let resolution = if high {
            Resolution::High
        } else {
            Resolution::Standard
        };
        for v in values {
            batch.push((
                key.clone(),
                Observation {
                    timestamp: ts,
                    unit,
                    resolution,
                    sample: Sample::Value(*v),
                },
            ));
        }
    }
    store.record_batch(&batch);
    store
}

/// The outcome for one alarm (or instance).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlarmOutcome {
    /// Name.
    pub name: String,
    /// State after the last tick.
    pub final_state: StateValue,
    /// Reason of the final state.
    #[serde(skip)]
    pub final_reason: String,
    /// Every transition, oldest first.
    pub transitions: Vec<Transition>,
}

/// The result of a back-test.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BacktestResult {
    /// Ticks evaluated.
    pub evaluations: usize,
    /// Per alarm, in definition order (instances by name).
    pub alarms: Vec<AlarmOutcome>,
}

/// Tick spacing for a set: 10 s if any alarm has a period under a minute or there are
/// composites with such children, else 60 s.
pub fn tick_step_ms(set: &AlarmSet) -> i64 {
    if set.alarms.iter().any(|a| a.period.as_secs() < 60) {
        10_000
    } else {
        60_000
    }
}

/// Replays `set` over `store`, evaluating at every tick in `from..=to`, starting from
/// `initial` (INSUFFICIENT_DATA with the creation reason, as at creation, when `None`).
///
/// # Errors
/// [`Error::Query`] when an alarm's query is refused by the store.
pub fn backtest(
    set: &AlarmSet,
    store: &Store,
    from: Timestamp,
    to: Timestamp,
    initial: Option<StateValue>,
) -> Result<BacktestResult> {
    let step = tick_step_ms(set);
    let first = Timestamp(
        from.as_millis().div_euclid(step) * step
            + if from.as_millis().rem_euclid(step) == 0 {
                0
            } else {
                step
            },
    );
    let mut st = EngineState::new(set, first, initial);
    let mut transitions: std::collections::BTreeMap<String, Vec<Transition>> = Default::default();
    let mut evaluations = 0;
    let mut t = first;
    while t <= to {
        let out = tick(set, &mut st, store, t)?;
        evaluations += 1;
        for (name, tr) in out.transitions {
            transitions.entry(name).or_default().push(tr);
        }
        t = t.add_millis(step);
    }
    let alarms = outcomes(set, &st, transitions);
    Ok(BacktestResult {
        evaluations,
        alarms,
    })
}

/// Every alarm's (and per-series instance's) final state with its transitions, in
/// configuration order: the outcome of a replay.
pub fn outcomes(
    set: &AlarmSet,
    st: &EngineState,
    mut transitions: std::collections::BTreeMap<String, Vec<Transition>>,
) -> Vec<AlarmOutcome> {
    let mut alarms = Vec::new();
    for a in &set.alarms {
        for (name, i) in st.metric.iter().filter(|(_, i)| i.alarm == a.name) {
            alarms.push(AlarmOutcome {
                name: name.clone(),
                final_state: i.state.value,
                final_reason: i.state.reason.clone(),
                transitions: transitions.remove(name).unwrap_or_default(),
            });
        }
    }
    for c in &set.composites {
        if let Some(cs) = st.composites.get(&c.name) {
            alarms.push(AlarmOutcome {
                name: c.name.clone(),
                final_state: cs.alarm.value,
                final_reason: cs.alarm.reason.clone(),
                transitions: transitions.remove(&c.name).unwrap_or_default(),
            });
        }
    }
    alarms
}

#[derive(Serialize)]
struct JsonTransition<'a> {
    timestamp: String,
    old_state: StateValue,
    new_state: StateValue,
    reason: &'a str,
    reason_data: Option<&'a ReasonData>,
}

#[derive(Serialize)]
struct JsonAlarm<'a> {
    name: &'a str,
    final_state: StateValue,
    transitions: Vec<JsonTransition<'a>>,
}

#[derive(Serialize)]
struct JsonResult<'a> {
    evaluations: usize,
    alarms: Vec<JsonAlarm<'a>>,
}

/// `--format json`: `{"evaluations": N, "alarms": [{"name", "final_state", "transitions":
/// [{"timestamp" (RFC 3339), "old_state", "new_state", "reason", "reason_data"}]}]}`;
/// `reason_data` is `{}` when there is none.
pub fn render_json(r: &BacktestResult) -> String {
    let empty = ReasonData::Other(serde_json::Value::Object(serde_json::Map::new()));
    let doc = JsonResult {
        evaluations: r.evaluations,
        alarms: r
            .alarms
            .iter()
            .map(|a| JsonAlarm {
                name: &a.name,
                final_state: a.final_state,
                transitions: a
                    .transitions
                    .iter()
                    .map(|t| JsonTransition {
                        timestamp: timefmt::rfc3339(t.timestamp),
                        old_state: t.old_state,
                        new_state: t.new_state,
                        reason: &t.reason,
                        reason_data: Some(t.reason_data.as_ref().unwrap_or(&empty)),
                    })
                    .collect(),
            })
            .collect(),
    };
    serde_json::to_string(&doc).unwrap_or_default()
}

/// `--format text`: one block per alarm, one line per transition.
pub fn render_text(r: &BacktestResult) -> String {
    let mut s = format!("{} evaluations\n", r.evaluations);
    for a in &r.alarms {
        s.push_str(&format!(
            "\n{}: {} ({} transitions)\n",
            a.name,
            a.final_state,
            a.transitions.len()
        ));
        for t in &a.transitions {
            s.push_str(&format!(
                "  {}  {} -> {}  {}\n",
                timefmt::rfc3339(t.timestamp),
                t.old_state,
                t.new_state,
                t.reason
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: &str = "alarms:\n  - {name: cpu, namespace: AWS/EC2, metric_name: CPUUtilization, dimensions: {AutoScalingGroupName: web}, statistic: Average, period_seconds: 60, evaluation_periods: 2, threshold: 70, comparison_operator: GreaterThanThreshold}\n";

    #[test]
    fn csv_errors_are_line_numbered() {
        let text = "timestamp,namespace,metric_name,dimensions,value\n1000,App,M,,1\nyesterday,App,M,A=b,2\n1000,App,M,oops,x\n";
        let errs = parse_csv(text).unwrap_err();
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            msgs,
            vec![
                "line 3: timestamp: must be RFC 3339 or Unix milliseconds (got \"yesterday\")",
                "line 4: dimensions: must be Name=Value pairs separated by ';' (got \"oops\")",
                "line 4: value: must be a finite number (got \"x\")",
            ]
        );
        let rows = parse_csv("timestamp,namespace,metric_name,dimensions,value\n\"1970-01-01T00:00:01Z\",App,M,\"A=1;B=x,y\",2.5\n").unwrap();
        assert_eq!(rows[0].timestamp, Timestamp(1000));
        assert_eq!(rows[0].key.dimension("B"), Some("x,y"));
    }

    #[test]
    fn backtest_replays_and_renders() {
        let set = crate::validate::validate(&[("c.yaml", SET)]).unwrap();
        let mut csv = String::from("timestamp,namespace,metric_name,dimensions,value\n");
        for (m, v) in [(0, 50), (1, 80), (2, 90), (3, 40), (4, 30)] {
            csv.push_str(&format!(
                "{},AWS/EC2,CPUUtilization,AutoScalingGroupName=web,{v}\n",
                m * 60_000 + 5_000
            ));
        }
        let rows = parse_csv(&csv).unwrap();
        let store = store_from(
            &set,
            rows.iter().map(|r| {
                (
                    r.key.clone(),
                    r.timestamp,
                    Unit::None,
                    std::slice::from_ref(&r.value),
                )
            }),
        );
        let r = backtest(&set, &store, Timestamp(60_000), Timestamp(300_000), None).unwrap();
        assert_eq!(r.evaluations, 5);
        let states: Vec<(String, StateValue)> = r.alarms[0]
            .transitions
            .iter()
            .map(|t| (timefmt::rfc3339(t.timestamp), t.new_state))
            .collect();
        assert_eq!(
            states,
            vec![
                // §3.5.3: one good real point decides OK even under `missing`.
                ("1970-01-01T00:01:00Z".to_owned(), StateValue::Ok),
                ("1970-01-01T00:03:00Z".to_owned(), StateValue::Alarm),
                ("1970-01-01T00:04:00Z".to_owned(), StateValue::Ok),
            ]
        );
        // --from T --to T on a tick is exactly one evaluation.
        let one = backtest(
            &set,
            &store,
            Timestamp(180_000),
            Timestamp(180_000),
            Some(StateValue::Ok),
        )
        .unwrap();
        assert_eq!(one.evaluations, 1);
        let json = render_json(&r);
        assert!(json.starts_with(r#"{"evaluations":5,"alarms":[{"name":"cpu","final_state":"OK","transitions":[{"timestamp":"1970-01-01T00:01:00Z","old_state":"INSUFFICIENT_DATA","new_state":"OK","reason":"Threshold Crossed: 1 datapoint [50.0 (01/01/70 00:00:00)] was not greater than the threshold (70.0).","reason_data":{"version":"1.0""#), "{json}");
        insta::assert_snapshot!(render_text(&r));
    }
}
