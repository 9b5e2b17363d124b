//! [`AutoScalingFleet`]: real EC2 Auto Scaling groups through aws-sdk-autoscaling.
//!
//! Thermostat does the policy math; this adapter only calls `DescribeAutoScalingGroups`,
//! `SetDesiredCapacity` and `UpdateAutoScalingGroup`. EC2 Auto Scaling itself validates
//! the values (a desired capacity outside the limits is its `ValidationError`).

use std::collections::HashMap;

use aws_sdk_autoscaling::Client;
use aws_sdk_autoscaling::error::DisplayErrorContext;
use aws_sdk_autoscaling::types::LifecycleState;
use thermostat_scaler::{Backend, ScalingSet};

use crate::error::{Error, Result};
use crate::fleet::{Capacity, Fleet};

/// EC2 Auto Scaling groups, by Thermostat group name.
#[derive(Debug, Clone)]
pub struct AutoScalingFleet {
    client: Client,
    /// Thermostat group → `AutoScalingGroupName`.
    names: HashMap<String, String>,
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn to_u32(n: Option<i32>) -> u32 {
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

impl AutoScalingFleet {
    /// A fleet with no groups, calling the service described by `sdk` (region,
    /// credentials, `endpoint_url`: the binary builds one `SdkConfig` for every AWS
    /// adapter).
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        AutoScalingFleet {
            client: Client::new(sdk),
            names: HashMap::new(),
        }
    }

    /// Every `aws_autoscaling` group of `set`.
    pub fn from_set(sdk: &aws_config::SdkConfig, set: &ScalingSet) -> Self {
        let mut f = AutoScalingFleet::new(sdk);
        for g in &set.groups {
            if let Backend::AwsAutoscaling {
                auto_scaling_group_name,
            } = &g.backend
            {
                f = f.with_group(&g.name, auto_scaling_group_name);
            }
        }
        f
    }

    /// Adds a group: Thermostat's `group` is the Auto Scaling group `asg_name`.
    #[must_use]
    pub fn with_group(mut self, group: &str, asg_name: &str) -> Self {
        self.names.insert(group.to_owned(), asg_name.to_owned());
        self
    }

    fn asg(&self, group: &str) -> Result<&str> {
        self.names
            .get(group)
            .map(String::as_str)
            .ok_or_else(|| Error::UnknownGroup {
                group: group.to_owned(),
            })
    }

    fn failed<E: std::error::Error>(group: &str, operation: &'static str, e: E) -> Error {
        Error::AutoScaling {
            group: group.to_owned(),
            operation,
            message: DisplayErrorContext(e).to_string(),
        }
    }
}

impl Fleet for AutoScalingFleet {
    async fn describe(&self, group: &str) -> Result<Capacity> {
        let asg = self.asg(group)?;
        let out = self
            .client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(asg)
            .send()
            .await
            .map_err(|e| Self::failed(group, "DescribeAutoScalingGroups", e))?;
        let g = out
            .auto_scaling_groups()
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(asg))
            .ok_or_else(|| Error::AutoScaling {
                group: group.to_owned(),
                operation: "DescribeAutoScalingGroups",
                message: format!("no Auto Scaling group named {asg:?}"),
            })?;
        let in_service = g
            .instances()
            .iter()
            .filter(|i| i.lifecycle_state() == Some(&LifecycleState::InService))
            .count();
        Ok(Capacity {
            desired: to_u32(g.desired_capacity()),
            min: to_u32(g.min_size()),
            max: to_u32(g.max_size()),
            in_service: u32::try_from(in_service).unwrap_or(u32::MAX),
        })
    }

    async fn set_desired(
        &self,
        group: &str,
        desired: u32,
        honor_cooldown: bool,
        cause: &str,
    ) -> Result<Capacity> {
        let asg = self.asg(group)?;
        self.client
            .set_desired_capacity()
            .auto_scaling_group_name(asg)
            .desired_capacity(to_i32(desired))
            .honor_cooldown(honor_cooldown)
            .send()
            .await
            .map_err(|e| Self::failed(group, "SetDesiredCapacity", e))?;
        tracing::info!(
            group,
            asg,
            desired,
            cause,
            "Set the desired capacity of an Auto Scaling group."
        );
        self.describe(group).await
    }

    async fn update_limits(
        &self,
        group: &str,
        min: Option<u32>,
        max: Option<u32>,
        desired: Option<u32>,
    ) -> Result<Capacity> {
        let asg = self.asg(group)?;
        self.client
            .update_auto_scaling_group()
            .auto_scaling_group_name(asg)
            .set_min_size(min.map(to_i32))
            .set_max_size(max.map(to_i32))
            .set_desired_capacity(desired.map(to_i32))
            .send()
            .await
            .map_err(|e| Self::failed(group, "UpdateAutoScalingGroup", e))?;
        tracing::info!(
            group,
            asg,
            ?min,
            ?max,
            ?desired,
            "Updated the limits of an Auto Scaling group."
        );
        self.describe(group).await
    }
}
