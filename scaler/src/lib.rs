//! The pure core of Thermostat's scaling: EC2 Auto Scaling groups and policies as code.
//!
//! # What this crate owns
//! - The `scaling_groups:` YAML section in two phases: [`raw`] (deserialised with
//!   positions kept) and [`model`] (validated), joined by [`validate()`], which reports every
//!   problem as `file:line:column: path: message` and cross-checks the alarms' scaling
//!   actions.
//! - The alarms target-tracking policies create ([`managed`], [`ScalingSet::managed_alarms`]).
//! - Policy math with EC2 Auto Scaling's semantics (reference §5): adjustment types and
//!   rounding ([`adjustment`]), simple/step/target-tracking policies, cooldowns, warm-up,
//!   clamping and "largest capacity wins" ([`decide()`]), and the group state they read
//!   ([`GroupState`]), including the simulated fleet's dynamics
//!   ([`GroupState::reconcile`]).
//! - Scaling by hand, `SetDesiredCapacity` and `ExecutePolicy` ([`manual`]).
//! - Scaling activities with Auto Scaling's cause texts ([`activity`]), scheduled actions
//!   ([`schedule`], their cron [`recurrence`]), triggers from the alarm engine's output
//!   ([`trigger`]), and `thermostat simulate` ([`simulate()`]).
//!
//! # Invariants
//! - No IO, no async runtime, no wall clock: files arrive as text, `now` is a parameter,
//!   decisions are returned as values ([`ScalingDecision`], [`ScalingActivity`]); the
//!   shell (`thermostat-fleet`, the binary) carries them out.
//! - A group's desired capacity always stays within its `[min_size, max_size]`.
//! - At most one activity per group per evaluation tick.
//! - Validation never stops at the first error.
//!
//! # Layout
//! `raw.rs` → `validate.rs` (+ `validate/tests.rs`) → `model.rs`; `managed.rs`;
//! `adjustment.rs`; `group_state.rs`; `group_metrics.rs` (metric names); `decide.rs` (+ `decide/tests.rs`); `manual.rs` (+ `manual/tests.rs`); `activity.rs`;
//! `recurrence.rs` → `schedule.rs`; `trigger.rs`; `simulate.rs` (+ `simulate/tests.rs`);
//! `error.rs`. The YAML reference and semantics are in `docs/scaling.md`.

#![warn(missing_docs)]

pub mod activity;
pub mod adjustment;
pub mod decide;
pub mod error;
pub mod group_metrics;
pub mod group_state;
pub mod managed;
pub mod manual;
pub mod model;
pub mod raw;
pub mod recurrence;
pub mod schedule;
pub mod simulate;
pub mod trigger;
pub mod validate;

pub use activity::{ActivityStatus, ScalingActivity};
pub use decide::{Outcome, PolicyEvaluation, ScalingDecision, Trigger, decide, evaluate_policy};
pub use error::{Error, Result};
pub use group_state::{GroupState, Instance};
pub use manual::{ManualError, PolicyExecution};
pub use model::{
    Backend, BackendKind, Policy, PolicyKind, ScalingGroup, ScalingSet, ScheduledAction,
};
pub use schedule::due;
pub use simulate::{SimulationResult, render_json, render_text, simulate};
pub use trigger::{merge_alarms, triggers};
pub use validate::{action_problem, validate};
