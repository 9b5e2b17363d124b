//! The names of EC2 Auto Scaling's group metrics, as Thermostat records them for every
//! group at every evaluation tick (`docs/scaling.md`) and the dashboard reads them back:
//! defined here once, for the binary, the dashboards and the managed alarms.

/// Namespace of the groups' capacity metrics.
pub const NAMESPACE: &str = "AWS/AutoScaling";
/// The dimension that names the group (in [`NAMESPACE`], and in the `AWS/EC2` metrics
/// target-tracking alarms watch).
pub const GROUP_DIMENSION: &str = "AutoScalingGroupName";
/// `GroupDesiredCapacity`.
pub const GROUP_DESIRED_CAPACITY: &str = "GroupDesiredCapacity";
/// `GroupInServiceInstances`.
pub const GROUP_IN_SERVICE_INSTANCES: &str = "GroupInServiceInstances";
/// `GroupMinSize`.
pub const GROUP_MIN_SIZE: &str = "GroupMinSize";
/// `GroupMaxSize`.
pub const GROUP_MAX_SIZE: &str = "GroupMaxSize";
/// The capacity metrics recorded for every group, in this order.
pub const CAPACITY_METRICS: [&str; 4] = [
    GROUP_DESIRED_CAPACITY,
    GROUP_IN_SERVICE_INSTANCES,
    GROUP_MIN_SIZE,
    GROUP_MAX_SIZE,
];
