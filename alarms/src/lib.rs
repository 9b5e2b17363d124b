//! The pure core of Thermostat's alarms: CloudWatch alarms as code.
//!
//! # What this crate owns
//! - The alarm YAML model in two phases: [`raw`] (read from the tree `thermostat-yaml`
//!   parses, positions kept) and [`model`] (validated), joined by [`validate()`], which reports every
//!   problem as `file:line:column: path: message` ([`ConfigError`]).
//! - CloudWatch-exact evaluation of metric alarms ([`evaluator`]: ticks, evaluation range,
//!   M of N, `TreatMissingData`, the premature-alarm rule, low-sample percentiles, reasons and
//!   reason data), composite alarms and actions suppressors ([`composite`], [`rule`]).
//! - Actions as values ([`action`], [`ActionInvocation`]), the actions a tick invokes with
//!   what their consumers need ([`due`], [`ActionDue`]), and alarm history items
//!   ([`history`]).
//! - Whole-set ticks, per-series instances and hot-reload carry-over ([`engine`]),
//!   back-tests with their CSV input and renderings ([`backtest`]), and the runner of the
//!   alarm tests written in the files' `tests:` sections ([`alarm_tests`]).
//!
//! # Invariants
//! - No IO, no async runtime, no wall clock: files arrive as text and `now` is always a
//!   parameter; decisions (transitions, actions, history) are returned as values.
//! - Evaluation is deterministic, and states change only on evaluation ticks (multiples
//!   of 60 s, or of 10 s for 10/20/30-second periods); transitions carry the tick.
//! - Validation never stops at the first error.
//!
//! # Layout
//! `error.rs` (errors), `raw.rs` → `validate.rs` (+ `validate/`: composites, the `tests:`
//! section, requirements) → `model.rs` (configuration, read with `thermostat-yaml`),
//! `notifications.rs` (+ `notifications/`: reader, mute rules, delivery), `action.rs`,
//! `rule.rs`, `timefmt.rs`, `state.rs` (`words.rs` holds the enum macro it shares with
//! `model.rs`), `evaluator.rs` (+ `evaluator/tests.rs`), `composite.rs`, `history.rs`,
//! `engine.rs`, `due.rs`, `backtest.rs`, `alarm_tests.rs`; snapshots in
//! `src/**/snapshots/`. The YAML reference is `docs/alarms.md`.

#![warn(missing_docs)]

pub mod action;
pub mod alarm_tests;
pub mod anomaly;
pub mod backtest;
pub mod composite;
pub mod due;
pub mod engine;
pub mod error;
pub mod evaluator;
pub mod history;
pub mod math;
pub mod math_alarm;
pub mod message;
pub mod model;
pub mod notifications;
pub mod raw;
pub mod rule;
pub mod state;
pub mod timefmt;
pub mod validate;
mod words;

pub use action::Action;
pub use alarm_tests::{TestOutcome, run_tests};
pub use backtest::{BacktestResult, backtest, parse_csv, render_json, render_text};
pub use composite::{CompositeState, evaluate_composite};
pub use due::{ActionDue, RecentDatapoints, actions_due};
pub use engine::{EngineState, Scope, TickOutput, carry_over, tick, tick_scoped, tick_with_models};
pub use error::{ConfigError, ConfigErrors, Error, Result};
pub use evaluator::{QueryPlan, evaluate, plan, query, set_state};
pub use history::HistoryItem;
pub use model::{Alarm, AlarmSet, CompositeAlarm};
pub use state::{ActionInvocation, AlarmState, Evaluation, StateValue, Transition};
pub use validate::validate;
