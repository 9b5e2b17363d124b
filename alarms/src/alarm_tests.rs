//! The `tests:` runner: replays each test's datapoints through a back-test and compares
//! the states and transitions with the expectations (used by `thermostat test` and by
//! `cargo test` over `examples/`).

use std::fmt;

use thermostat_metrics::SeriesKey;

use crate::backtest::{
    BacktestResult, backtest, first_tick, outcomes, replay_ticks, store_from, tick_step_ms,
};
use crate::engine::ModelCache;
use crate::engine::{EngineState, tick_with_models};
use crate::model::{AlarmSet, AlarmTest, StateValue};
use crate::state::INITIAL_REASON;
use crate::timefmt::rfc3339;

/// The outcome of one test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestOutcome {
    /// Test name.
    pub name: String,
    /// File and line of the test.
    pub source: String,
    /// Readable differences; empty when the test passed.
    pub failures: Vec<String>,
}

impl TestOutcome {
    /// Whether the test passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

impl fmt::Display for TestOutcome {
    /// `ok   name (file:line)` or `FAIL name (file:line)` followed by indented differences.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = if self.passed() { "ok  " } else { "FAIL" };
        write!(f, "{tag} {} ({})", self.name, self.source)?;
        for d in &self.failures {
            write!(f, "\n       {d}")?;
        }
        Ok(())
    }
}

fn state_at(
    r: &BacktestResult,
    alarm: &str,
    at: thermostat_metrics::Timestamp,
    initial: StateValue,
) -> Option<(StateValue, String)> {
    let a = r.alarms.iter().find(|a| a.name == alarm)?;
    Some(
        a.transitions
            .iter()
            .rev()
            .find(|t| t.timestamp <= at)
            .map(|t| (t.new_state, t.reason.clone()))
            .unwrap_or((initial, INITIAL_REASON.to_owned())),
    )
}

/// [`backtest`] for sets with anomaly-detection alarms: the models are trained from the
/// test's data (its `history:`) before each tick, as the runtime trains them
/// ([`ModelCache`]).
fn replay_with_models(
    set: &AlarmSet,
    store: &thermostat_metrics::Store,
    from: thermostat_metrics::Timestamp,
    to: thermostat_metrics::Timestamp,
    initial: StateValue,
) -> crate::Result<BacktestResult> {
    let step = tick_step_ms(set);
    let ticks = replay_ticks(from, to, step)?;
    let first = first_tick(from, step).unwrap_or(from);
    let mut st = EngineState::new(set, first, Some(initial));
    let mut models = ModelCache::default();
    let mut transitions: std::collections::BTreeMap<String, Vec<crate::Transition>> =
        Default::default();
    let mut evaluations = 0;
    for t in ticks {
        models.refresh(set, &st, store, t)?;
        let out = tick_with_models(set, &mut st, store, &models, t)?;
        evaluations += 1;
        for (name, tr) in out.transitions {
            transitions.entry(name).or_default().push(tr);
        }
    }
    Ok(BacktestResult {
        evaluations,
        alarms: outcomes(set, &st, transitions),
    })
}

/// Runs one test.
pub fn run_test(set: &AlarmSet, t: &AlarmTest) -> TestOutcome {
    let source = format!("{}:{}", t.source.file, t.source.line);
    let mut failures = Vec::new();
    let store = store_from(
        set,
        t.datapoints.iter().map(|d| {
            (
                SeriesKey::new(
                    d.namespace.as_str(),
                    d.metric_name.as_str(),
                    d.dimensions.clone(),
                ),
                d.timestamp,
                d.unit,
                d.values.as_slice(),
            )
        }),
    );
    let end = t
        .expect
        .iter()
        .map(|e| e.at)
        .chain(t.transitions.iter().flatten().map(|x| x.at))
        .chain(t.datapoints.iter().map(|d| d.timestamp))
        .max()
        .unwrap_or(t.start);
    let replay = if set.alarms.iter().any(|a| a.is_anomaly()) {
        replay_with_models(set, &store, t.start, end, t.initial_state)
    } else {
        backtest(set, &store, t.start, end, Some(t.initial_state))
    };
    let r = match replay {
        Ok(r) => r,
        Err(e) => {
            return TestOutcome {
                name: t.name.clone(),
                source,
                failures: vec![e.to_string()],
            };
        }
    };
    for e in &t.expect {
        match state_at(&r, &e.alarm, e.at, t.initial_state) {
            None => failures.push(format!(
                "line {}: at {}: {} has no state (no data reached it)",
                e.line,
                rfc3339(e.at),
                e.alarm
            )),
            Some((got, reason)) => {
                if got != e.state {
                    failures.push(format!(
                        "line {}: at {}: {}: expected {}, got {} ({reason})",
                        e.line,
                        rfc3339(e.at),
                        e.alarm,
                        e.state,
                        got
                    ));
                } else if let Some(want) =
                    e.reason_contains.as_deref().filter(|w| !reason.contains(w))
                {
                    failures.push(format!(
                        "line {}: at {}: {}: reason does not contain {want:?}: {reason:?}",
                        e.line,
                        rfc3339(e.at),
                        e.alarm
                    ));
                }
            }
        }
    }
    if let Some(expected) = &t.transitions {
        let mut names: Vec<&str> = expected.iter().map(|x| x.alarm.as_str()).collect();
        names.dedup();
        for name in names {
            let want: Vec<String> = expected
                .iter()
                .filter(|x| x.alarm == name)
                .map(|x| match x.from {
                    Some(f) => format!("{} {f} -> {}", rfc3339(x.at), x.to),
                    None => format!("{} -> {}", rfc3339(x.at), x.to),
                })
                .collect();
            let got_full: Vec<(String, String)> = r
                .alarms
                .iter()
                .filter(|a| a.name == name)
                .flat_map(|a| a.transitions.iter())
                .map(|tr| {
                    (
                        format!(
                            "{} {} -> {}",
                            rfc3339(tr.timestamp),
                            tr.old_state,
                            tr.new_state
                        ),
                        format!("{} -> {}", rfc3339(tr.timestamp), tr.new_state),
                    )
                })
                .collect();
            let got: Vec<String> = got_full
                .iter()
                .zip(
                    expected
                        .iter()
                        .filter(|x| x.alarm == name)
                        .map(Some)
                        .chain(std::iter::repeat(None)),
                )
                .map(|((full, short), x)| {
                    if x.is_some_and(|x| x.from.is_none()) {
                        short.clone()
                    } else {
                        full.clone()
                    }
                })
                .collect();
            if got != want {
                let mut d = format!("transitions of {name} differ:");
                for w in &want {
                    if !got.contains(w) {
                        d.push_str(&format!("\n         - {w}"));
                    }
                }
                for g in &got {
                    if !want.contains(g) {
                        d.push_str(&format!("\n         + {g}"));
                    }
                }
                if want.iter().all(|w| got.contains(w)) && got.iter().all(|g| want.contains(g)) {
                    d.push_str("\n         (same transitions in a different order)");
                }
                failures.push(d);
            }
        }
    }
    TestOutcome {
        name: t.name.clone(),
        source,
        failures,
    }
}

/// Runs every test of a set, in file order.
pub fn run_tests(set: &AlarmSet) -> Vec<TestOutcome> {
    set.tests.iter().map(|t| run_test(set, t)).collect()
}
