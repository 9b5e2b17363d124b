//! [`AnyFleet`], one value of any of the fleets, and the scaling runtime's fleet port and
//! factory on top of it.

use thermostat_scaler_runtime::{FleetError, FleetFuture};

use crate::error::Result;
use crate::fleet::{Capacity, Fleet};
use crate::{AutoScalingFleet, SimulatedFleet, WebhookFleet};

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

/// The scaling runtime's port: the same calls, boxed so that the runtime holds
/// `Arc<dyn thermostat_scaler_runtime::Fleet>`; errors keep this crate's [`Error`](crate::Error)
/// (and its message) inside.
impl thermostat_scaler_runtime::Fleet for AnyFleet {
    fn describe<'a>(&'a self, group: &'a str) -> FleetFuture<'a> {
        Box::pin(async move { Fleet::describe(self, group).await.map_err(FleetError::new) })
    }

    fn set_desired<'a>(
        &'a self,
        group: &'a str,
        desired: u32,
        honor_cooldown: bool,
        cause: &'a str,
    ) -> FleetFuture<'a> {
        Box::pin(async move {
            Fleet::set_desired(self, group, desired, honor_cooldown, cause)
                .await
                .map_err(FleetError::new)
        })
    }

    fn update_limits<'a>(
        &'a self,
        group: &'a str,
        min: Option<u32>,
        max: Option<u32>,
        desired: Option<u32>,
    ) -> FleetFuture<'a> {
        Box::pin(async move {
            Fleet::update_limits(self, group, min, max, desired)
                .await
                .map_err(FleetError::new)
        })
    }
}

/// The scaling runtime's fleet factory: for each group of a set, its fleet by back-end (the
/// simulated fleet on `clock`, EC2 Auto Scaling through `sdk`, or a webhook with
/// [`DEFAULT_WEBHOOK_TIMEOUT`](crate::DEFAULT_WEBHOOK_TIMEOUT), trusting the group's
/// `webhook_ca_file` beside the built-in roots). A CA bundle that cannot be used fails the
/// whole set (every such bundle named in the error): the server does not start, a reload
/// keeps the previous fleets.
pub fn factory(
    sdk: aws_config::SdkConfig,
    clock: std::sync::Arc<dyn thermostat_metrics::Clock>,
) -> impl Fn(
    &thermostat_scaler::ScalingSet,
) -> Result<thermostat_scaler_runtime::Fleets, thermostat_scaler_runtime::FleetError>
+ Send
+ Sync {
    use std::sync::Arc;
    use thermostat_scaler::Backend;
    use thermostat_scaler_runtime::{FleetError, Fleets};
    move |set| {
        let mut fleets = Fleets::new();
        // One webhook fleet for every webhook group of the set (each CA bundle read once).
        let webhooks: Option<Arc<dyn thermostat_scaler_runtime::Fleet>> = if set
            .groups
            .iter()
            .any(|g| matches!(g.backend, Backend::Webhook { .. }))
        {
            let fleet = crate::WebhookFleet::from_set(set, crate::DEFAULT_WEBHOOK_TIMEOUT)
                .map_err(|errors| {
                    let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
                    FleetError::new(all.join("; "))
                })?;
            Some(Arc::new(AnyFleet::Webhook(fleet)))
        } else {
            None
        };
        for group in &set.groups {
            let fleet: Arc<dyn thermostat_scaler_runtime::Fleet> = match &group.backend {
                Backend::Simulated => {
                    let simulated = crate::SimulatedFleet::new(Arc::clone(&clock));
                    simulated.add_group(group);
                    Arc::new(AnyFleet::Simulated(simulated))
                }
                Backend::AwsAutoscaling { .. } => Arc::new(AnyFleet::AutoScaling(
                    crate::AutoScalingFleet::from_set(&sdk, set),
                )),
                Backend::Webhook { .. } => match &webhooks {
                    Some(f) => Arc::clone(f),
                    None => continue,
                },
            };
            fleets.insert(group.name.clone(), fleet);
        }
        Ok(fleets)
    }
}
