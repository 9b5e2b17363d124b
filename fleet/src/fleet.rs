//! The [`Fleet`] trait every fleet implements, the [`Capacity`] it reports, and the limit
//! rules of `UpdateAutoScalingGroup` the fleets share.

use std::future::Future;

pub use thermostat_scaler_runtime::Capacity;

use crate::error::Result;

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

/// `UpdateAutoScalingGroup`'s rules: `min ≤ max`, a given desired capacity within them,
/// otherwise the desired capacity moved inside. Returns `(min, max, desired)`.
pub(crate) fn updated_limits(
    cur: (u32, u32, u32),
    min: Option<u32>,
    max: Option<u32>,
    desired: Option<u32>,
) -> std::result::Result<(u32, u32, u32), String> {
    let lo = min.unwrap_or(cur.0);
    let hi = max.unwrap_or(cur.1);
    if lo > hi {
        return Err(format!(
            "Max bound, {hi}, must be greater than or equal to min bound, {lo}"
        ));
    }
    let d = match desired {
        Some(d) if d < lo || d > hi => {
            return Err(format!(
                "Desired capacity:{d} must be between the specified min size:{lo} and max size:{hi}"
            ));
        }
        Some(d) => d,
        None => cur.2.clamp(lo, hi),
    };
    Ok((lo, hi, d))
}
