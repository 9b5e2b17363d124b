//! [`SimulatedFleet`]: `thermostat_scaler::GroupState`'s pure dynamics, driven by a clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use thermostat_metrics::Clock;
use thermostat_scaler::group_state::check_set_desired;
use thermostat_scaler::simulate::UNKNOWN_SIZES;
use thermostat_scaler::{GroupState, ScalingGroup};

use crate::error::{Error, Result};
use crate::fleet::{Capacity, Fleet, updated_limits};

#[derive(Debug)]
struct SimGroup {
    state: GroupState,
    launch: Duration,
    warmup: Duration,
}

/// A built-in fleet: instances come in service `simulated.launch_seconds` after launch
/// and then warm up; time comes from the clock given (a `ManualClock` in tests and demo
/// fast-forward).
#[derive(Debug)]
pub struct SimulatedFleet {
    clock: Arc<dyn Clock>,
    groups: Mutex<HashMap<String, SimGroup>>,
}

impl SimulatedFleet {
    /// An empty fleet reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        SimulatedFleet {
            clock,
            groups: Mutex::new(HashMap::new()),
        }
    }

    /// Adds (or resets) a group at its configured sizes, every instance in service and
    /// warm; sizes left to AWS start at `thermostat_scaler::simulate::UNKNOWN_SIZES`.
    pub fn add_group(&self, group: &ScalingGroup) {
        let now = self.clock.now();
        let state = GroupState::for_group(group, UNKNOWN_SIZES, now);
        self.lock().insert(
            group.name.clone(),
            SimGroup {
                state,
                launch: group.launch,
                warmup: group.warmup_for(None),
            },
        );
    }

    /// A copy of a group's state (instances with their times, cooldown).
    pub fn state(&self, group: &str) -> Option<GroupState> {
        self.lock().get(group).map(|g| g.state.clone())
    }

    /// Replaces a group's state, e.g. after `GroupState::apply` in the engine, so that the
    /// fleet and the scaler share one view of cooldowns and warming instances.
    pub fn set_state(&self, state: GroupState) {
        if let Some(g) = self.lock().get_mut(&state.group) {
            g.state = state;
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, SimGroup>> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn with<T>(&self, group: &str, f: impl FnOnce(&mut SimGroup) -> Result<T>) -> Result<T> {
        let mut groups = self.lock();
        let g = groups.get_mut(group).ok_or_else(|| Error::UnknownGroup {
            group: group.to_owned(),
        })?;
        f(g)
    }

    fn capacity(&self, g: &SimGroup) -> Capacity {
        let now = self.clock.now();
        Capacity {
            desired: g.state.desired,
            min: g.state.min_size,
            max: g.state.max_size,
            in_service: g.state.in_service(now),
        }
    }
}

impl Fleet for SimulatedFleet {
    async fn describe(&self, group: &str) -> Result<Capacity> {
        self.with(group, |g| Ok(self.capacity(g)))
    }

    async fn set_desired(
        &self,
        group: &str,
        desired: u32,
        honor_cooldown: bool,
        cause: &str,
    ) -> Result<Capacity> {
        let now = self.clock.now();
        self.with(group, |g| {
            check_set_desired(g.state.min_size, g.state.max_size, desired).map_err(|message| {
                Error::Validation {
                    group: group.to_owned(),
                    message,
                }
            })?;
            if let Some(until) = g
                .state
                .cooldown_until
                .filter(|u| honor_cooldown && *u > now)
            {
                return Err(Error::Cooldown {
                    group: group.to_owned(),
                    until,
                });
            }
            g.state.desired = desired;
            g.state.reconcile(now, g.launch, g.warmup);
            tracing::debug!(
                group,
                desired,
                cause,
                "Simulated fleet set the desired capacity."
            );
            Ok(self.capacity(g))
        })
    }

    async fn update_limits(
        &self,
        group: &str,
        min: Option<u32>,
        max: Option<u32>,
        desired: Option<u32>,
    ) -> Result<Capacity> {
        let now = self.clock.now();
        self.with(group, |g| {
            let s = &mut g.state;
            let (lo, hi, d) =
                updated_limits((s.min_size, s.max_size, s.desired), min, max, desired).map_err(
                    |message| Error::Validation {
                        group: group.to_owned(),
                        message,
                    },
                )?;
            s.min_size = lo;
            s.max_size = hi;
            s.desired = d;
            s.reconcile(now, g.launch, g.warmup);
            Ok(self.capacity(g))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thermostat_metrics::{ManualClock, Timestamp};

    fn group() -> ScalingGroup {
        let text = "scaling_groups:\n  - {name: web, min_size: 2, max_size: 5, simulated: {launch_seconds: 60}}\n";
        let files = [("g.yaml", text)];
        let alarms = thermostat_scaler::validate::validate(&files, &Default::default()).unwrap();
        alarms.groups[0].clone()
    }

    #[tokio::test]
    async fn instances_come_in_service_after_the_launch_time() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_000)));
        let fleet = SimulatedFleet::new(clock.clone());
        fleet.add_group(&group());
        let c = fleet.set_desired("web", 4, false, "test").await.unwrap();
        assert_eq!((c.desired, c.in_service), (4, 2));
        clock.advance_millis(60_000);
        assert_eq!(fleet.describe("web").await.unwrap().in_service, 4);
        // SetDesiredCapacity rejects instead of clamping (reference §7.9).
        let e = fleet
            .set_desired("web", 6, false, "test")
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "scaling group \"web\": New SetDesiredCapacity value 6 is above max value 5 for the AutoScalingGroup."
        );
        // UpdateAutoScalingGroup: a new max below the desired capacity lowers it.
        let c = fleet
            .update_limits("web", None, Some(3), None)
            .await
            .unwrap();
        assert_eq!((c.min, c.max, c.desired, c.in_service), (2, 3, 3, 3));
        assert!(matches!(
            fleet.describe("api").await,
            Err(Error::UnknownGroup { .. })
        ));
    }
}
