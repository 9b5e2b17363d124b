//! The validated scaling model: what [`crate::validate`] produces and the decision math
//! reads. Field names follow the YAML; the EC2 Auto Scaling name of each is in
//! `docs/scaling.md`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thermostat_alarms::model::Source;
use thermostat_metrics::{Dimension, Statistic};

use crate::recurrence::Recurrence;

/// EC2 Auto Scaling's `DefaultCooldown` default (reference §5.1).
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(300);
/// How long a simulated instance takes to come in service when `simulated.launch_seconds`
/// is not given.
pub const DEFAULT_LAUNCH: Duration = Duration::from_secs(60);
/// Most scaling policies per group (reference §5.1 quotas).
pub const MAX_POLICIES: usize = 50;
/// Most scheduled actions per group.
pub const MAX_SCHEDULED_ACTIONS: usize = 125;
/// Most step adjustments per policy.
pub const MAX_STEPS: usize = 20;

/// Declares an enum of Auto Scaling words with parsing that lists the valid ones.
macro_rules! words {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $word)] $variant,)+
        }

        impl $name {
            /// The spelling in the YAML (and in the Auto Scaling API where it exists).
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word,)+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($word => Ok($name::$variant),)+
                    _ => Err(format!(
                        "must be one of {} (got {s:?})",
                        [$($word,)+].join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

words! {
    /// Where a group's capacity lives.
    BackendKind {
        /// Thermostat's built-in simulated fleet (the default).
        Simulated => "simulated",
        /// A real EC2 Auto Scaling group, through aws-sdk-autoscaling.
        AwsAutoscaling => "aws_autoscaling",
        /// An HTTP endpoint that receives the desired capacity.
        Webhook => "webhook",
    }
}

words! {
    /// `PolicyType`.
    PolicyType {
        /// Simple scaling (the default): one adjustment, then a cooldown.
        SimpleScaling => "SimpleScaling",
        /// Step scaling: the adjustment depends on how far the metric is past the threshold.
        StepScaling => "StepScaling",
        /// Target tracking: keep a metric near a target with alarms Thermostat creates.
        TargetTrackingScaling => "TargetTrackingScaling",
    }
}

words! {
    /// `AdjustmentType`.
    AdjustmentType {
        /// `new = current + adjustment`.
        ChangeInCapacity => "ChangeInCapacity",
        /// `new = adjustment`.
        ExactCapacity => "ExactCapacity",
        /// `new = current + current × adjustment / 100`, rounded as in reference §5.4.
        PercentChangeInCapacity => "PercentChangeInCapacity",
    }
}

words! {
    /// `MetricAggregationType` of a step policy.
    MetricAggregationType {
        /// The smallest of the alarm's recent datapoints.
        Minimum => "Minimum",
        /// The largest.
        Maximum => "Maximum",
        /// Their mean (the default).
        Average => "Average",
    }
}

words! {
    /// `PredefinedMetricType` of a target-tracking policy (the ones EC2 groups publish).
    PredefinedMetric {
        /// `AWS/EC2 CPUUtilization` averaged over the group.
        AsgAverageCpuUtilization => "ASGAverageCPUUtilization",
        /// `AWS/EC2 NetworkIn` averaged over the group.
        AsgAverageNetworkIn => "ASGAverageNetworkIn",
        /// `AWS/EC2 NetworkOut` averaged over the group.
        AsgAverageNetworkOut => "ASGAverageNetworkOut",
    }
}

impl PredefinedMetric {
    /// The `AWS/EC2` metric name behind it.
    pub const fn metric_name(self) -> &'static str {
        match self {
            PredefinedMetric::AsgAverageCpuUtilization => "CPUUtilization",
            PredefinedMetric::AsgAverageNetworkIn => "NetworkIn",
            PredefinedMetric::AsgAverageNetworkOut => "NetworkOut",
        }
    }
}

impl MetricAggregationType {
    /// Aggregates `values` (none → `None`).
    pub fn aggregate(self, values: &[f64]) -> Option<f64> {
        let first = *values.first()?;
        Some(match self {
            MetricAggregationType::Minimum => values.iter().copied().fold(first, f64::min),
            MetricAggregationType::Maximum => values.iter().copied().fold(first, f64::max),
            MetricAggregationType::Average => values.iter().sum::<f64>() / values.len() as f64,
        })
    }
}

/// Where a group's capacity lives, with the backend's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Backend {
    /// The built-in simulated fleet.
    Simulated,
    /// A real EC2 Auto Scaling group.
    AwsAutoscaling {
        /// `AutoScalingGroupName` (defaults to the group's name).
        auto_scaling_group_name: String,
    },
    /// A webhook.
    Webhook {
        /// The URL that receives `POST {"group","desired_capacity","cause",...}`.
        url: String,
        /// `webhook_ca_file`: a PEM CA bundle trusted, for this group only, beside the
        /// built-in roots (only with an `https://` URL); the path as written, resolved against
        /// the folder of the file that names it. The fleet reads it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ca_file: Option<String>,
    },
}

impl Backend {
    /// The kind.
    pub fn kind(&self) -> BackendKind {
        match self {
            Backend::Simulated => BackendKind::Simulated,
            Backend::AwsAutoscaling { .. } => BackendKind::AwsAutoscaling,
            Backend::Webhook { .. } => BackendKind::Webhook,
        }
    }
}

/// One step of a step policy; bounds are relative to the alarm threshold (reference §5.6).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepAdjustment {
    /// `MetricIntervalLowerBound`; `None` = −∞.
    pub lower: Option<f64>,
    /// `MetricIntervalUpperBound`; `None` = +∞.
    pub upper: Option<f64>,
    /// `ScalingAdjustment`.
    pub scaling_adjustment: i64,
}

/// The metric a target-tracking policy keeps near its target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackedMetric {
    /// The predefined metric it came from, if any.
    pub predefined: Option<PredefinedMetric>,
    /// Namespace.
    pub namespace: String,
    /// Metric name.
    pub metric_name: String,
    /// Dimensions, sorted by name.
    pub dimensions: Vec<Dimension>,
    /// Statistic.
    pub statistic: Statistic,
}

/// The kind-specific part of a policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "policy_type")]
pub enum PolicyKind {
    /// `SimpleScaling`.
    SimpleScaling {
        /// `AdjustmentType`.
        adjustment_type: AdjustmentType,
        /// `ScalingAdjustment`.
        scaling_adjustment: i64,
        /// `MinAdjustmentMagnitude` (percent adjustments only).
        min_adjustment_magnitude: Option<u32>,
        /// `Cooldown`; `None` = the group's default cooldown.
        cooldown: Option<Duration>,
    },
    /// `StepScaling`.
    StepScaling {
        /// `AdjustmentType`.
        adjustment_type: AdjustmentType,
        /// `MinAdjustmentMagnitude` (percent adjustments only).
        min_adjustment_magnitude: Option<u32>,
        /// `MetricAggregationType`.
        metric_aggregation_type: MetricAggregationType,
        /// `EstimatedInstanceWarmup`; `None` = the group's default.
        estimated_instance_warmup: Option<Duration>,
        /// `StepAdjustments`, sorted by lower bound.
        steps: Vec<StepAdjustment>,
    },
    /// `TargetTrackingScaling`.
    TargetTrackingScaling {
        /// The tracked metric.
        metric: TrackedMetric,
        /// `TargetValue`.
        target_value: f64,
        /// `DisableScaleIn`.
        disable_scale_in: bool,
        /// `EstimatedInstanceWarmup`; `None` = the group's default.
        estimated_instance_warmup: Option<Duration>,
    },
}

/// A validated scaling policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// `PolicyName`, unique in its group.
    pub name: String,
    /// `Enabled` (default true): a disabled policy ignores its alarms.
    pub enabled: bool,
    /// The type and its fields.
    pub kind: PolicyKind,
}

impl Policy {
    /// The `PolicyType`.
    pub fn policy_type(&self) -> PolicyType {
        match self.kind {
            PolicyKind::SimpleScaling { .. } => PolicyType::SimpleScaling,
            PolicyKind::StepScaling { .. } => PolicyType::StepScaling,
            PolicyKind::TargetTrackingScaling { .. } => PolicyType::TargetTrackingScaling,
        }
    }

    /// Whether this is a target-tracking policy that may scale in.
    pub fn tracks_with_scale_in(&self) -> bool {
        matches!(
            self.kind,
            PolicyKind::TargetTrackingScaling {
                disable_scale_in: false,
                ..
            }
        )
    }
}

/// A validated scheduled action (`PutScheduledUpdateGroupAction`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduledAction {
    /// `ScheduledActionName`, unique in its group.
    pub name: String,
    /// `Recurrence` with `TimeZone`; `None` for a one-time action at `start_time`.
    pub recurrence: Option<Recurrence>,
    /// `StartTime`: a one-time action runs then; a recurring one runs then and on its
    /// schedule from then on.
    pub start_time: Option<thermostat_metrics::Timestamp>,
    /// `EndTime`: no occurrence after it.
    pub end_time: Option<thermostat_metrics::Timestamp>,
    /// `MinSize` to set.
    pub min_size: Option<u32>,
    /// `MaxSize` to set.
    pub max_size: Option<u32>,
    /// `DesiredCapacity` to set.
    pub desired_capacity: Option<u32>,
}

/// A validated scaling group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScalingGroup {
    /// Unique name across all files (the `<group>` of `policy:<group>/<policy>`).
    pub name: String,
    /// Where its capacity lives.
    pub backend: Backend,
    /// `MinSize` (`None` only for `aws_autoscaling`: read from the real group).
    pub min_size: Option<u32>,
    /// `MaxSize` (`None` only for `aws_autoscaling`).
    pub max_size: Option<u32>,
    /// `DesiredCapacity` at start (`None` = `min_size`, or the real group's).
    pub desired_capacity: Option<u32>,
    /// `DefaultCooldown` (300 s by default).
    pub default_cooldown: Duration,
    /// `DefaultInstanceWarmup`; `None` = not set (warm-up falls back to the cooldown).
    pub default_instance_warmup: Option<Duration>,
    /// How long a simulated instance takes to come in service.
    pub launch: Duration,
    /// Policies, in file order.
    pub policies: Vec<Policy>,
    /// Scheduled actions, in file order.
    pub scheduled_actions: Vec<ScheduledAction>,
    /// Where it was defined.
    pub source: Source,
}

impl ScalingGroup {
    /// The policy named `name`.
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name == name)
    }

    /// The warm-up of instances launched by `policy` (reference §5.3:
    /// `EstimatedInstanceWarmup`, else `DefaultInstanceWarmup`, else `DefaultCooldown`).
    pub fn warmup_for(&self, policy: Option<&Policy>) -> Duration {
        let own = policy.and_then(|p| match &p.kind {
            PolicyKind::StepScaling {
                estimated_instance_warmup,
                ..
            }
            | PolicyKind::TargetTrackingScaling {
                estimated_instance_warmup,
                ..
            } => *estimated_instance_warmup,
            PolicyKind::SimpleScaling { .. } => None,
        });
        own.or(self.default_instance_warmup)
            .unwrap_or(self.default_cooldown)
    }

    /// `(min, max, desired)` as configured, with desired defaulting to min; `None` when
    /// min or max is left to the real group.
    pub fn configured_sizes(&self) -> Option<(u32, u32, u32)> {
        let (min, max) = (self.min_size?, self.max_size?);
        Some((
            min,
            max,
            self.desired_capacity.unwrap_or(min).clamp(min, max),
        ))
    }
}

/// Every scaling group of a set of files.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScalingSet {
    /// Groups, in file order.
    pub groups: Vec<ScalingGroup>,
}

impl ScalingSet {
    /// The group named `name`.
    pub fn group(&self, name: &str) -> Option<&ScalingGroup> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The `(group, policy)` an alarm action targets: `policy:<group>/<policy>`, or a
    /// policy ARN whose `autoScalingGroupName/` names a group (or its
    /// `auto_scaling_group_name`) and whose `policyName/` names one of its policies.
    pub fn resolve(&self, action: &thermostat_alarms::Action) -> Option<(&ScalingGroup, &Policy)> {
        use thermostat_alarms::Action;
        let (group_name, policy_name) = match action {
            Action::ScalingPolicy { group, policy } => (group.as_str(), policy.as_str()),
            Action::ScalingPolicyArn {
                group: Some(group),
                policy: Some(policy),
                ..
            } => (group.as_str(), policy.as_str()),
            _ => return None,
        };
        let group = self.groups.iter().find(|x| x.name == group_name).or_else(|| {
            self.groups.iter().find(|x| {
                matches!(&x.backend, Backend::AwsAutoscaling { auto_scaling_group_name } if auto_scaling_group_name == group_name)
            })
        })?;
        Some((group, group.policy(policy_name)?))
    }
}
