//! One cumulative point as received, and the one rule that turns it into its stream's next
//! state and the increase it records ([`step`]).
//!
//! The mappings apply the rule to the receiving node's streams as they map a request. In
//! cluster mode the point itself travels to the owner of its series' partition, which applies
//! the same rule to its own streams in the order of the partition's records, so that the
//! increases do not depend on which node received which point. The rule is idempotent for a
//! point applied again (a replay): a point not newer than its stream's state is
//! [`Step::Stale`] and changes nothing.
//!
//! Serialized into cluster mode's records: field order and variant order are part of that
//! format (new variants only at the end).

use serde::{Deserialize, Serialize};

use crate::Unit;

use super::data::{MappedData, explicit_distribution, exponential_distribution};
use super::delta::{self, Order, Outcome};
use super::streams::{StreamKey, StreamState, Totals};

/// Which data model's start rules a point follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartRule {
    /// OTLP: the point's start time is its stream's; a stream's first point counts from zero.
    Otlp,
    /// Prometheus: a created timestamp restarts the stream only when it is later than the
    /// stream's last sample; without one the stream keeps its start, and a stream's first
    /// sample without one records nothing (like `increase()`). `restart`: the sample says
    /// the counter was reset (a native histogram's reset hint).
    Prometheus {
        /// The sender says the counter was reset.
        restart: bool,
    },
}

/// A cumulative point: its stream, what it says, and how it is to be read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CumulativePoint {
    /// The stream (series, kind, origin).
    pub key: StreamKey,
    /// The unit its increases are recorded with.
    pub unit: Unit,
    /// Its time in ms since the Unix epoch (what the increase is recorded at).
    pub timestamp_ms: i64,
    /// Its start time in ns as the sender gave it (0: none).
    pub start: u64,
    /// Its time in ns.
    pub time: u64,
    /// Server time (ms) at which the receiving node mapped it.
    pub seen_ms: i64,
    /// The start rules it follows.
    pub rule: StartRule,
    /// Its totals since the start.
    pub totals: Totals,
}

/// What a point newer than its stream's last one does to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The stream's state after the point.
    pub state: StreamState,
    /// The increase since the previous point, of the point's kind (`None`: a Prometheus
    /// stream's first sample without a created timestamp, which counts nothing).
    pub increase: Option<Totals>,
    /// Whether the stream counted from zero again.
    pub reset: bool,
}

/// Applies `point` to its stream's `previous` state ([`delta::order`], then the increase of
/// its kind): the rule both the mappings and a partition's owner follow. `None` when the
/// point is not newer than the stream's last (a retry, a replay, out of order): nothing is
/// recorded and the state stays.
pub fn step(previous: Option<&StreamState>, point: &CumulativePoint) -> Option<Step> {
    let (start, stored_start) = match (point.rule, previous) {
        (StartRule::Otlp, _) | (StartRule::Prometheus { .. }, None) => (point.start, point.start),
        (StartRule::Prometheus { .. }, Some(p)) => {
            // A created timestamp is a restart only when later than the last sample;
            // without one, the stream keeps the start it had.
            let start = if point.start == 0 || point.start <= p.time_unix_nano {
                p.start_time_unix_nano
            } else {
                point.start
            };
            let stored = if point.start == 0 {
                p.start_time_unix_nano
            } else {
                point.start
            };
            (start, stored)
        }
    };
    let mut order = delta::order(previous, start, point.time);
    if point.rule == (StartRule::Prometheus { restart: true }) && order == Order::Next {
        order = Order::Restarted;
    }
    let before = previous.map(|p| &p.totals);
    let outcome = match &point.totals {
        Totals::Sum(v) => {
            let before = match before {
                Some(Totals::Sum(b)) => Some(*b),
                _ => None,
            };
            map(delta::sum(before, order, *v), Totals::Sum)
        }
        Totals::Histogram(t) => {
            let before = match before {
                Some(Totals::Histogram(b)) => Some(b),
                _ => None,
            };
            map(delta::histogram(before, order, t), Totals::Histogram)
        }
        Totals::Exponential(t) => {
            let before = match before {
                Some(Totals::Exponential(b)) => Some(b),
                _ => None,
            };
            map(delta::exponential(before, order, t), Totals::Exponential)
        }
        Totals::Summary { count, sum } => {
            let before = match before {
                Some(Totals::Summary { count, sum }) => Some((*count, *sum)),
                _ => None,
            };
            map(
                delta::summary(before, order, (*count, *sum)),
                |(count, sum)| Totals::Summary { count, sum },
            )
        }
    };
    let Outcome::Increase { delta, reset } = outcome else {
        return None;
    };
    let counts_nothing = matches!(point.rule, StartRule::Prometheus { .. })
        && order == Order::First
        && point.start == 0;
    Some(Step {
        state: StreamState {
            start_time_unix_nano: stored_start,
            time_unix_nano: point.time,
            seen_ms: point.seen_ms,
            totals: point.totals.clone(),
        },
        increase: (!counts_nothing).then_some(delta),
        reset,
    })
}

fn map<T>(outcome: Outcome<T>, f: impl FnOnce(T) -> Totals) -> Outcome<Totals> {
    match outcome {
        Outcome::Stale => Outcome::Stale,
        Outcome::Increase { delta, reset } => Outcome::Increase {
            delta: f(delta),
            reset,
        },
    }
}

/// What an increase records: a Sum's value, a histogram's distribution
/// ([`explicit_distribution`], [`exponential_distribution`]), a Summary's count and sum.
pub fn increase_data(increase: &Totals) -> MappedData {
    match increase {
        Totals::Sum(v) => MappedData::Value(*v),
        Totals::Histogram(t) => explicit_distribution(t),
        Totals::Exponential(t) => exponential_distribution(t),
        Totals::Summary { count, sum } => MappedData::Distribution {
            count: *count,
            sum: *sum,
            min: None,
            max: None,
            values: Vec::new(),
            counts: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeriesKey;
    use crate::cumulative::streams::{StreamKind, Streams};

    fn point(rule: StartRule, start: u64, time: u64, value: f64) -> CumulativePoint {
        CumulativePoint {
            key: StreamKey {
                series: SeriesKey::new("N", "requests", vec![]),
                kind: StreamKind::Sum,
                origin: 7,
            },
            unit: Unit::Count,
            timestamp_ms: (time / 1_000_000) as i64,
            start,
            time,
            seen_ms: 0,
            rule,
            totals: Totals::Sum(value),
        }
    }

    /// Applies the points in order to one stream; the increases recorded.
    fn run(points: &[CumulativePoint]) -> Vec<f64> {
        let mut streams = Streams::new();
        let mut out = Vec::new();
        for p in points {
            if let Some(Step {
                state, increase, ..
            }) = step(streams.get(&p.key), p)
            {
                streams.apply(&crate::cumulative::StreamUpdate::Set {
                    key: p.key.clone(),
                    state,
                });
                if let Some(Totals::Sum(v)) = increase {
                    out.push(v);
                }
            }
        }
        out
    }

    #[test]
    fn otlp_points_count_from_zero_then_by_difference_and_replays_change_nothing() {
        let p = |time, v| point(StartRule::Otlp, 5, time, v);
        assert_eq!(
            run(&[p(10, 100.0), p(20, 150.0), p(30, 180.0)]),
            [100.0, 50.0, 30.0]
        );
        // Each point applied twice, and an older one after a newer: the same increases.
        let replayed = [
            p(10, 100.0),
            p(10, 100.0),
            p(20, 150.0),
            p(10, 100.0),
            p(30, 180.0),
            p(20, 150.0),
        ];
        assert_eq!(run(&replayed), [100.0, 50.0, 30.0]);
        // A new start counts from zero; a total that went down without one too.
        let restarted = [p(10, 100.0), point(StartRule::Otlp, 25, 30, 7.0)];
        assert_eq!(run(&restarted), [100.0, 7.0]);
        assert_eq!(run(&[p(10, 100.0), p(20, 40.0)]), [100.0, 40.0]);
    }

    #[test]
    fn prometheus_first_samples_without_created_count_nothing() {
        let p = |start, time, v| point(StartRule::Prometheus { restart: false }, start, time, v);
        assert_eq!(run(&[p(0, 10, 100.0), p(0, 20, 150.0)]), [50.0]);
        // With a created timestamp the first sample counts from it.
        assert_eq!(run(&[p(5, 10, 100.0), p(5, 20, 150.0)]), [100.0, 50.0]);
        // A created timestamp not later than the last sample keeps the stream's start.
        assert_eq!(run(&[p(0, 10, 100.0), p(8, 20, 150.0)]), [50.0]);
        // The reset hint restarts the stream.
        let reset = point(StartRule::Prometheus { restart: true }, 0, 30, 4.0);
        assert_eq!(run(&[p(0, 10, 100.0), p(0, 20, 150.0), reset]), [50.0, 4.0]);
    }

    #[test]
    fn increases_become_the_data_of_their_kind() {
        assert_eq!(increase_data(&Totals::Sum(3.0)), MappedData::Value(3.0));
        let summary = increase_data(&Totals::Summary {
            count: 4,
            sum: 10.0,
        });
        assert!(matches!(summary, MappedData::Distribution { count: 4, sum, .. } if sum == 10.0));
    }
}
