//! The [`Fleet`] port and [`AnyFleet`].

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::{AutoScalingFleet, SimulatedFleet, WebhookFleet};

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

/// Where a group's capacity lives. Methods take the Thermostat group name.
pub trait Fleet: Send + Sync {
    /// The group's capacity now.
    fn describe(&self, group: &str) -> impl Future<Output = Result<Capacity>> + Send;

    /// Sets the desired capacity (`SetDesiredCapacity`): values outside `[min, max]` are
    /// rejected, not clamped; with `honor_cooldown` a group in cooldown refuses. `cause`
    /// is the activity's cause text (sent to webhooks, logged otherwise). Returns the
    /// capacity after the call.
    fn set_desired(
        &self,
        group: &str,
        desired: u32,
        honor_cooldown: bool,
        cause: &str,
    ) -> impl Future<Output = Result<Capacity>> + Send;

    /// Changes the limits and optionally the desired capacity (`UpdateAutoScalingGroup`);
    /// a new min above (max below) the desired capacity moves it. Returns the capacity
    /// after the call.
    fn update_limits(
        &self,
        group: &str,
        min: Option<u32>,
        max: Option<u32>,
        desired: Option<u32>,
    ) -> impl Future<Output = Result<Capacity>> + Send;
}

/// Any of the fleets, so that the binary can keep one map of groups to fleets.
#[derive(Debug)]
pub enum AnyFleet {
    /// The simulated fleet.
    Simulated(SimulatedFleet),
    /// EC2 Auto Scaling.
    AutoScaling(AutoScalingFleet),
    /// A webhook.
    Webhook(WebhookFleet),
}

impl Fleet for AnyFleet {
    async fn describe(&self, group: &str) -> Result<Capacity> {
        match self {
            AnyFleet::Simulated(f) => f.describe(group).await,
            AnyFleet::AutoScaling(f) => f.describe(group).await,
            AnyFleet::Webhook(f) => f.describe(group).await,
        }
    }

    async fn set_desired(
        &self,
        group: &str,
        desired: u32,
        honor_cooldown: bool,
        cause: &str,
    ) -> Result<Capacity> {
        match self {
            AnyFleet::Simulated(f) => f.set_desired(group, desired, honor_cooldown, cause).await,
            AnyFleet::AutoScaling(f) => f.set_desired(group, desired, honor_cooldown, cause).await,
            AnyFleet::Webhook(f) => f.set_desired(group, desired, honor_cooldown, cause).await,
        }
    }

    async fn update_limits(
        &self,
        group: &str,
        min: Option<u32>,
        max: Option<u32>,
        desired: Option<u32>,
    ) -> Result<Capacity> {
        match self {
            AnyFleet::Simulated(f) => f.update_limits(group, min, max, desired).await,
            AnyFleet::AutoScaling(f) => f.update_limits(group, min, max, desired).await,
            AnyFleet::Webhook(f) => f.update_limits(group, min, max, desired).await,
        }
    }
}
