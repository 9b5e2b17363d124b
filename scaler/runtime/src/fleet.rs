//! The fleet port: where a group's capacity actually lives ([`Fleet`]), and how the fleets
//! of a configuration are built ([`FleetFactory`]). `thermostat-fleet` implements both
//! sides' adapters (EC2 Auto Scaling, webhooks, the simulated fleet); the binary builds them.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thermostat_scaler::ScalingSet;

use crate::error::FleetError;

/// A group's capacity as its backend reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// `DesiredCapacity`.
    pub desired: u32,
    /// `MinSize`.
    pub min: u32,
    /// `MaxSize`.
    pub max: u32,
    /// Instances in service.
    pub in_service: u32,
}

/// What a fleet call returns: boxed, so that [`Fleet`] can be used as `dyn Fleet`.
pub type FleetFuture<'a> = Pin<Box<dyn Future<Output = Result<Capacity, FleetError>> + Send + 'a>>;

/// Where a group's capacity lives. Methods take the Thermostat group name.
pub trait Fleet: Send + Sync + fmt::Debug {
    /// The group's capacity now (`DescribeAutoScalingGroups`).
    fn describe<'a>(&'a self, group: &'a str) -> FleetFuture<'a>;

    /// Sets the desired capacity (`SetDesiredCapacity`): values outside `[min, max]` are
    /// rejected, not clamped; with `honor_cooldown` a group in cooldown refuses. `cause` is
    /// the activity's cause text. Returns the capacity after the call.
    fn set_desired<'a>(
        &'a self,
        group: &'a str,
        desired: u32,
        honor_cooldown: bool,
        cause: &'a str,
    ) -> FleetFuture<'a>;

    /// Changes the limits and optionally the desired capacity (`UpdateAutoScalingGroup`).
    /// Returns the capacity after the call.
    fn update_limits<'a>(
        &'a self,
        group: &'a str,
        min: Option<u32>,
        max: Option<u32>,
        desired: Option<u32>,
    ) -> FleetFuture<'a>;
}

/// The fleet of every group of a configuration, by group name.
pub type Fleets = BTreeMap<String, Arc<dyn Fleet>>;

/// Builds the fleets of a configuration (at start-up and on every reload): the wiring that
/// knows the SDK configuration and the webhook timeouts. Any
/// `Fn(&ScalingSet) -> Result<Fleets, FleetError>` is one.
pub trait FleetFactory: Send + Sync {
    /// One fleet per group of `set`.
    ///
    /// # Errors
    /// A fleet cannot be built (e.g. no HTTP client for webhooks).
    fn fleets(&self, set: &ScalingSet) -> Result<Fleets, FleetError>;
}

impl<F> FleetFactory for F
where
    F: Fn(&ScalingSet) -> Result<Fleets, FleetError> + Send + Sync,
{
    fn fleets(&self, set: &ScalingSet) -> Result<Fleets, FleetError> {
        self(set)
    }
}
