//! Thermostat's alarm runtime: the running alarms as one component.
//!
//! # What this crate owns
//! [`AlarmRuntime`], behind one lock: restore and carry-over at start, the evaluation tick
//! (the pure [`thermostat_alarms::tick`], then persist, then act) and its loop
//! ([`AlarmRuntime::run`], aligned 10-second ticks), CloudWatch's `SetAlarmState` with its
//! limits, CloudWatch's `EnableAlarmActions` / `DisableAlarmActions` (a persisted override of
//! an alarm's `actions_enabled`, [`AlarmRuntime::set_actions_enabled`]), the swap of a
//! reloaded (already validated) alarm set, a second source of alarms (created through
//! CloudWatch's API: [`AlarmRuntime::put_api_alarm`], [`AlarmRuntime::put_api_composite`],
//! [`AlarmRuntime::delete_api_alarm`], kept through the store and evaluated with the files'
//! alarms as one set), history
//! retention, paging and action items, and read access for views. The tick and `SetAlarmState` share one persist-and-act path, which
//! also counts the runtime's metrics ([`AlarmTelemetry`]: evaluations, tick time, transitions
//! by state; the binary registers them for `/metrics`). It reaches the outside through two
//! ports it defines:
//! - [`AlarmStore`]: durable states, actions-enabled overrides, API alarm definitions and
//!   history (implemented on `state.redb` by the `thermostat-statedb` adapter, which depends on this crate, not the
//!   reverse);
//! - [`ActionSink`]: where the actions due go ([`thermostat_alarms::ActionDue`]: notifications
//!   and scaling; the binary wires it).
//!
//! # Invariants
//! - Evaluation stays pure: the runtime only calls the core with its store and a tick time.
//! - States change under the lock only; a tick's or `SetAlarmState`'s writes are one
//!   durable commit, made before its actions are handed on (a failed write acts on nothing).
//! - The set evaluated is the configured one with the actions-enabled overrides applied; an
//!   override is written before it takes effect, and a swap diffs configured sets only (an
//!   override is no configuration change).
//! - The configured set is the files' set plus the API alarms whose names no file defines; an
//!   API alarm's definition is written before it takes effect, and a name a file defines is
//!   the file's (`PutMetricAlarm` and `DeleteAlarms` on it are refused).
//! - The action sink is called after every tick and every `SetAlarmState`, under the lock,
//!   even with no action due; it only queues work.
//! - Reading configuration files and validating them is the caller's: a swap takes a set
//!   already validated, and compares it with the running one before taking the lock.
//! - Depends on cores, `thermostat-metrics`, tokio, tracing and prometheus-client (its
//!   metrics) only: never on an adapter.
//!
//! # Layout
//! `runtime.rs` ([`AlarmRuntime`]: start, tick, swap, the persist-and-act path) with
//! `runtime/set_state.rs`, `runtime/actions_enabled.rs`, `runtime/history.rs`,
//! `runtime/listing.rs`, `runtime/api_alarms.rs`,
//! `runtime/tick_loop.rs` and `runtime/tests.rs` (through an in-memory [`AlarmStore`]);
//! `persistence.rs` ([`AlarmStore`]), `actions.rs` ([`ActionSink`], [`LogActions`]),
//! `error.rs` ([`Error`], [`StoreError`]), `telemetry.rs` ([`AlarmTelemetry`]).

#![warn(missing_docs)]

mod actions;
mod error;
mod persistence;
mod runtime;
mod telemetry;

pub use actions::{ActionSink, LogActions};
pub use error::{Error, Result, StoreError, chain};
pub use persistence::{
    AlarmStore, AlarmTags, PruneBounds, PrunePass, StateRef, StoredModel, StoredStates,
};
pub use runtime::{
    AlarmEntry, AlarmListing, AlarmOrigin, AlarmRuntime, EvaluationGate, Gate, HistoryRetention,
    MAX_ALARM_TAGS, MAX_STATE_REASON_CHARS, MAX_STATE_REASON_DATA_CHARS, MAX_TRAININGS_PER_TICK,
    PRUNE_EVERY_MS, PruneReport, SwapReport, TICK_MS,
};
pub use telemetry::AlarmTelemetry;
