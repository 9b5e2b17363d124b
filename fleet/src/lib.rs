//! Thermostat's fleet adapters: where a scaling group's capacity actually lives.
//!
//! # What this crate owns
//! - The [`Fleet`] trait: `describe`, `set_desired`, `update_limits`, statically dispatched;
//!   [`AnyFleet`] also implements the scaling runtime's port of the same calls
//!   (`thermostat_scaler_runtime::Fleet`, dyn-compatible), which is how the runtime reaches
//!   these adapters. [`Capacity`] is the runtime's.
//! - [`SimulatedFleet`]: the pure dynamics of `thermostat_scaler::GroupState` driven by a
//!   [`Clock`](thermostat_metrics::Clock) passed in.
//! - [`AutoScalingFleet`]: a real EC2 Auto Scaling group through aws-sdk-autoscaling
//!   (`DescribeAutoScalingGroups`, `SetDesiredCapacity`, `UpdateAutoScalingGroup`), built
//!   from the `aws_config::SdkConfig` the binary builds once.
//! - [`WebhookFleet`]: an HTTP endpoint that receives the desired capacity; `https://`
//!   servers verified against the built-in roots plus the group's `webhook_ca_file`.
//! - [`AnyFleet`], one value of any of them, for a map of groups to fleets.
//!
//! # Invariants
//! - The math lives in `thermostat-scaler`; adapters only carry its decisions out and
//!   report capacity. Errors name the group and the endpoint (URL, AWS operation).
//! - No adapter imports another adapter crate.
//!
//! # Layout
//! `error.rs`, `fleet.rs` (the trait and the shared limit rules), `any.rs` ([`AnyFleet`], its
//! port implementation and the runtime's fleet factory), `simulated.rs`,
//! `autoscaling.rs`, `webhook.rs`; tests with real peers in `tests/`.

mod any;
mod autoscaling;
mod error;
mod fleet;
mod simulated;
mod webhook;

pub use any::{AnyFleet, factory};
pub use autoscaling::AutoScalingFleet;
pub use error::{Error, Result};
pub use fleet::{Capacity, Fleet};
pub use simulated::SimulatedFleet;
pub use webhook::{DEFAULT_WEBHOOK_TIMEOUT, MAX_CA_FILE_BYTES, WebhookFleet};
