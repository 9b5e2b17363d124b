//! The groups' sizes: [`GroupCapacity`] for the demo and the API, and EC2 Auto Scaling's
//! group metrics ([`capacity_samples`]) with the port they leave through
//! ([`CapacityMetricsSink`]).

use std::fmt;

use thermostat_metrics::{Dimension, Observation, Resolution, Sample, SeriesKey, Timestamp, Unit};
use thermostat_scaler::{GroupState, group_metrics};

/// A group's sizes at one time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupCapacity {
    /// `MinSize`.
    pub min_size: u32,
    /// `MaxSize`.
    pub max_size: u32,
    /// `DesiredCapacity`.
    pub desired: u32,
    /// Instances in service.
    pub in_service: u32,
}

impl GroupCapacity {
    /// `state`'s sizes, and its instances in service at `at`.
    pub fn of(state: &GroupState, at: Timestamp) -> Self {
        GroupCapacity {
            min_size: state.min_size,
            max_size: state.max_size,
            desired: state.desired,
            in_service: state.in_service(at),
        }
    }
}

/// Where the groups' capacity metrics go: the binary sends them through the same ingest
/// entry point as any push (the write-ahead log first), so they survive a crash like pushed
/// data.
pub trait CapacityMetricsSink: Send + Sync + fmt::Debug {
    /// Records `samples`, all taken at `now` (never called with none).
    fn record(&self, samples: Vec<(SeriesKey, Observation<'static>)>, now: Timestamp);
}

/// One group's capacity metrics at `now`, as EC2 Auto Scaling's group metrics: namespace
/// `AWS/AutoScaling`, dimension `AutoScalingGroupName=<group>`, `GroupDesiredCapacity`,
/// `GroupInServiceInstances`, `GroupMinSize` and `GroupMaxSize` (in that order), unit
/// `None`, high resolution (so 10-second periods can be queried).
pub fn capacity_samples(
    group: &str,
    state: &GroupState,
    now: Timestamp,
) -> [(SeriesKey, Observation<'static>); 4] {
    let sample = |metric: &str, value: u32| {
        let key = SeriesKey::new(
            group_metrics::NAMESPACE,
            metric,
            vec![Dimension::new(group_metrics::GROUP_DIMENSION, group)],
        );
        let obs = Observation {
            timestamp: now,
            unit: Unit::None,
            resolution: Resolution::High,
            sample: Sample::Value(f64::from(value)),
        };
        (key, obs)
    };
    let [desired, in_service, min, max] = group_metrics::CAPACITY_METRICS;
    [
        sample(desired, state.desired),
        sample(in_service, state.in_service(now)),
        sample(min, state.min_size),
        sample(max, state.max_size),
    ]
}
