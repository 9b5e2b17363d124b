//! Thermostat's scaling runtime: the scaling groups as one running component,
//! [`ScalingRuntime`], driven by the actions alarms invoke and by a clock.
//!
//! # What this crate owns
//! - The groups' states, their fleets, policies, cooldowns, scheduled actions and activities,
//!   and the ring of recent scaling decisions ([`ScalingRuntime::decisions_after`]), behind
//!   one lock.
//! - One step per alarm tick and per SetAlarmState ([`ScalingRuntime::scale`]): the scheduled
//!   actions due since the previous step, then the policies the alarms' actions trigger
//!   (`thermostat_scaler::triggers` and `decide`), then the simulated fleet's reconcile, in
//!   that order; then the states and new activities are written.
//! - Its metrics ([`ScalingTelemetry`]: activities by status; the binary registers them for
//!   `/metrics`).
//! - Scaling by hand ([`ScalingRuntime::set_desired_capacity`],
//!   [`ScalingRuntime::execute_policy`]: EC2's `SetDesiredCapacity` and `ExecutePolicy`,
//!   decided by `thermostat_scaler::manual`), carried out as an alarm's change is.
//! - Start-up (restoring group states, describing or updating real Auto Scaling groups) and
//!   reload (new, removed and kept groups).
//! - The groups' capacity metrics (`AWS/AutoScaling`, [`capacity_samples`]), sent after every
//!   alarm tick.
//! - The ports it reaches the outside through: [`Fleet`] and [`FleetFactory`] (implemented by
//!   `thermostat-fleet`, built by the binary), [`GroupStore`] (implemented by
//!   `thermostat-statedb`), [`CapacityMetricsSink`] (implemented by the binary on the ingest
//!   log).
//!
//! # Invariants
//! - The policy math is `thermostat-scaler`'s; this crate only keeps state, calls the ports
//!   and orders the steps. It depends on cores only, never on an adapter.
//! - Time comes from the [`Clock`](thermostat_metrics::Clock) given and the `now` of each
//!   call; the wall clock is never read.
//! - [`ScalingRuntime::scale`] never waits for a fleet: real fleet calls run in the
//!   background, tracked so that [`ScalingRuntime::finish`] waits for them at shutdown; a
//!   policy's cooldown starts when its fleet call succeeds.
//! - Capacity metrics leave outside the runtime's lock.
//!
//! # Layout
//! `error.rs` ([`Error`], and the ports' [`FleetError`] and [`StoreError`]), `fleet.rs`,
//! `store.rs`, `capacity.rs`, `telemetry.rs` ([`ScalingTelemetry`]), `runtime.rs`
//! ([`ScalingRuntime`], with its tests in `runtime/tests.rs`).

#![warn(missing_docs)]

mod capacity;
mod error;
mod fleet;
mod runtime;
mod store;
mod telemetry;

pub use capacity::{CapacityMetricsSink, GroupCapacity, capacity_samples};
pub use error::{BoxError, Error, FleetError, Result, StoreError};
pub use fleet::{Capacity, Fleet, FleetFactory, FleetFuture, Fleets};
pub use runtime::{DECISIONS_KEPT, GroupSnapshot, ManualScaling, Ports, ScalingRuntime, Snapshot};
pub use store::{GroupStore, GroupWrite};
pub use telemetry::ScalingTelemetry;
