//! The store's input: a batch of observations grouped in runs of one series.
//!
//! An [`ObservationBatch`] is what one validated push (or one write-ahead-log record being
//! replayed, or one set of samples Thermostat makes itself) becomes before it is recorded:
//! each observation with its series, a series key held once per run of one series rather than
//! once per observation, and the values (and counts) of multi-valued observations and
//! distributions copied into one buffer per batch. The ingest adapter fills it (from a
//! request's bytes or a log record) and records it with [`ObservationBatch::record_into`]; the
//! log record format is written from its runs ([`ObservationBatch::runs`]).
//!
//! A batch is written by a request's handler and read, milliseconds later and usually on
//! another core, by the log's applier: it holds each observation in 24 bytes ([`Held`]: time,
//! value, unit, resolution), and only what a plain value has no room for (a statistic set, a
//! distribution's totals, where values are) on the side, so that a thousand plain values are
//! 24 KB to write and read again, not the 96 KB of as many [`Observation`]s.

use std::borrow::Cow;
use std::ops::Range;

use crate::series::SeriesKey;
use crate::store::{Observation, Resolution, Sample, Store};
use crate::time::Timestamp;
use crate::unit::Unit;
use crate::window::Distribution;

/// One observation as a batch holds it.
#[derive(Clone, Copy, Debug)]
struct Held {
    timestamp: Timestamp,
    /// The value of a plain observation.
    value: f64,
    /// For any other, its entry in [`ObservationBatch::others`]; [`PLAIN`] for a plain value.
    other: u32,
    unit: Unit,
    resolution: Resolution,
}

// Written and read once per datum by different cores: keep it at 24 bytes.
const _: () = assert!(std::mem::size_of::<Held>() == 24);

/// [`Held::other`] of a plain value.
const PLAIN: u32 = u32::MAX;

/// An observation that is not a plain value: its sample without its values and counts, and
/// where those are, `values[start..start + len]` followed by as many counts when `counted`
/// (always for a distribution, whose count, sum and bounds stay in `sample`).
#[derive(Clone, Copy, Debug)]
struct Other {
    sample: Sample<'static>,
    start: usize,
    len: usize,
    counted: bool,
}

/// Observations on their way into the [`Store`], grouped in runs of one series.
#[derive(Debug, Default)]
pub struct ObservationBatch {
    /// The series of the observations, one entry per run of one series: `(key, end)` says
    /// that `observations[previous end..end]` are of `key`. A key is held once per run, not
    /// once per observation: its reference count is shared with every thread that handles it.
    runs: Vec<(SeriesKey, usize)>,
    /// One per observation, in the order added.
    observations: Vec<Held>,
    /// Samples in the batch, by Thermostat's counting rule ([`Sample::sample_count`]); kept by
    /// whoever fills the batch, which often knows the count already.
    pub samples: f64,
    /// The observations that are not plain values ([`Held::other`]).
    others: Vec<Other>,
    /// Values and counts of multi-valued observations and distributions.
    values: Vec<f64>,
}

const NO_VALUES: Sample<'static> = Sample::Values {
    values: &[],
    counts: &[],
};

/// The observations of one run of a batch, in order (from [`ObservationBatch::runs`]).
#[derive(Clone, Debug)]
pub struct Run<'b> {
    batch: &'b ObservationBatch,
    at: Range<usize>,
}

impl<'b> Iterator for Run<'b> {
    type Item = Observation<'b>;

    #[inline]
    fn next(&mut self) -> Option<Observation<'b>> {
        let i = self.at.next()?;
        Some(self.batch.observation(i))
    }

    #[inline]
    fn nth(&mut self, n: usize) -> Option<Observation<'b>> {
        let i = self.at.nth(n)?;
        Some(self.batch.observation(i))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.at.size_hint()
    }
}

impl ExactSizeIterator for Run<'_> {}

impl ObservationBatch {
    /// An empty batch with room for `observations` observations.
    #[inline]
    pub fn with_capacity(observations: usize) -> Self {
        ObservationBatch {
            observations: Vec::with_capacity(observations),
            ..ObservationBatch::default()
        }
    }

    /// A batch of the given observations (made by Thermostat itself, not read from a
    /// request), with their samples counted.
    pub fn from_observations(entries: &[(SeriesKey, Observation<'_>)]) -> Self {
        let mut out = ObservationBatch::default();
        for (key, o) in entries {
            out.samples += o.sample.sample_count();
            out.push_sample(key, o.timestamp, o.unit, o.resolution, o.sample);
        }
        out
    }

    /// Observations in the batch.
    #[inline]
    pub fn len(&self) -> usize {
        self.observations.len()
    }

    /// Whether the batch holds no observation.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.observations.is_empty()
    }

    /// The series of the observations, once per run of one series (a series may come again
    /// later).
    pub fn series(&self) -> impl Iterator<Item = &SeriesKey> {
        self.runs.iter().map(|(k, _)| k)
    }

    /// Each run of one series, with its observations (multi-valued ones and distributions
    /// included), in batch order.
    pub fn runs(&self) -> impl ExactSizeIterator<Item = (&SeriesKey, Run<'_>)> {
        let mut start = 0;
        self.runs.iter().map(move |(key, end)| {
            let run = Run {
                batch: self,
                at: start..*end,
            };
            start = *end;
            (key, run)
        })
    }

    /// The observations with their series, multi-valued ones and distributions included.
    pub fn observations(&self) -> Vec<(SeriesKey, Observation<'_>)> {
        let mut out = Vec::with_capacity(self.observations.len());
        for (key, run) in self.runs() {
            out.extend(run.map(|o| (key.clone(), o)));
        }
        out
    }

    /// Observation `i`, its values and counts filled in.
    #[inline]
    fn observation(&self, i: usize) -> Observation<'_> {
        let h = &self.observations[i];
        let sample = if h.other == PLAIN {
            Sample::Value(h.value)
        } else {
            self.filled(&self.others[h.other as usize])
        };
        Observation {
            timestamp: h.timestamp,
            unit: h.unit,
            resolution: h.resolution,
            sample,
        }
    }

    /// The sample of an observation that is not a plain value, its values and counts filled
    /// in.
    fn filled(&self, o: &Other) -> Sample<'_> {
        let values = &self.values[o.start..o.start + o.len];
        let counts = if o.counted {
            &self.values[o.start + o.len..o.start + 2 * o.len]
        } else {
            &[]
        };
        match o.sample {
            Sample::Distribution(d) => Sample::Distribution(Distribution {
                values,
                counts,
                ..d
            }),
            Sample::Values { .. } => Sample::Values { values, counts },
            held => held,
        }
    }

    /// Makes room for `additional` more observations.
    #[inline]
    pub fn reserve(&mut self, additional: usize) {
        self.observations.reserve(additional);
    }

    /// Makes room for `additional` more runs (a request of many series has a run a datum).
    #[inline]
    pub fn reserve_runs(&mut self, additional: usize) {
        self.runs.reserve(additional);
    }

    /// Records the batch into `store` as write-ahead-log record `seq` (see
    /// [`Store::record_runs_seq`]).
    pub fn record_into(&self, store: &Store, seq: u64) {
        store.record_cut(self.runs().collect(), Some(seq));
    }

    /// Adds one single-valued observation of `key`.
    #[inline]
    pub fn push_value(
        &mut self,
        key: &SeriesKey,
        timestamp: Timestamp,
        unit: Unit,
        resolution: Resolution,
        value: f64,
    ) {
        self.push(
            Cow::Borrowed(key),
            timestamp,
            unit,
            resolution,
            value,
            PLAIN,
        );
    }

    /// [`push_value`](Self::push_value) of a key the caller gives away: a new run takes it
    /// instead of a clone (a reference count is an atomic that other threads touch too).
    #[inline]
    pub fn push_value_owned(
        &mut self,
        key: SeriesKey,
        timestamp: Timestamp,
        unit: Unit,
        resolution: Resolution,
        value: f64,
    ) {
        self.push(Cow::Owned(key), timestamp, unit, resolution, value, PLAIN);
    }

    #[inline]
    fn push(
        &mut self,
        key: Cow<'_, SeriesKey>,
        timestamp: Timestamp,
        unit: Unit,
        resolution: Resolution,
        value: f64,
        other: u32,
    ) {
        self.observations.push(Held {
            timestamp,
            value,
            other,
            unit,
            resolution,
        });
        let end = self.observations.len();
        match self.runs.last_mut() {
            Some((last, last_end)) if SeriesKey::same(last, &key) => *last_end = end,
            _ => self.runs.push((key.into_owned(), end)),
        }
    }

    /// Adds an observation that is not a plain value.
    fn push_other(
        &mut self,
        key: &SeriesKey,
        timestamp: Timestamp,
        unit: Unit,
        resolution: Resolution,
        other: Other,
    ) {
        // Four billion of them would not fit in a request, nor in a log record.
        let at = u32::try_from(self.others.len()).unwrap_or(PLAIN - 1);
        self.others.push(other);
        self.push(Cow::Borrowed(key), timestamp, unit, resolution, 0.0, at);
    }

    /// Adds `n` single-valued observations of `key`, each a timestamp and value `next`
    /// gives, as one run (a log record's run read back: the run is found once, not per
    /// observation). When `next` fails, the observations added so far are taken back and its
    /// error returned.
    ///
    /// # Errors
    /// The first error of `next`.
    pub fn extend_values<E>(
        &mut self,
        key: &SeriesKey,
        unit: Unit,
        resolution: Resolution,
        n: usize,
        mut next: impl FnMut() -> Result<(Timestamp, f64), E>,
    ) -> Result<(), E> {
        let before = self.observations.len();
        self.observations.reserve(n);
        for _ in 0..n {
            match next() {
                Ok((timestamp, value)) => self.observations.push(Held {
                    timestamp,
                    value,
                    other: PLAIN,
                    unit,
                    resolution,
                }),
                Err(e) => {
                    self.observations.truncate(before);
                    return Err(e);
                }
            }
        }
        let end = self.observations.len();
        if end == before {
            return Ok(());
        }
        self.samples += n as f64;
        match self.runs.last_mut() {
            Some((last, last_end)) if SeriesKey::same(last, key) => *last_end = end,
            _ => self.runs.push((key.clone(), end)),
        }
        Ok(())
    }

    /// Adds a distribution of `key`, copying its values and counts (the counts cut or padded
    /// with 0 to the number of values: a bucket without a count holds nothing).
    pub fn push_distribution(
        &mut self,
        key: &SeriesKey,
        timestamp: Timestamp,
        unit: Unit,
        resolution: Resolution,
        distribution: &Distribution<'_>,
    ) {
        let start = self.values.len();
        let len = distribution.values.len();
        self.values.extend_from_slice(distribution.values);
        self.values.extend(
            distribution
                .counts
                .iter()
                .copied()
                .chain(std::iter::repeat(0.0))
                .take(len),
        );
        let held = Distribution {
            values: &[],
            counts: &[],
            ..*distribution
        };
        let other = Other {
            sample: Sample::Distribution(held),
            start,
            len,
            counted: true,
        };
        self.push_other(key, timestamp, unit, resolution, other);
    }

    /// Adds an observation of `key`, copying the values of a multi-valued one (its counts are
    /// cut or padded with 1 to the number of values) or of a distribution (as
    /// [`ObservationBatch::push_distribution`]).
    #[inline]
    pub fn push_sample(
        &mut self,
        key: &SeriesKey,
        timestamp: Timestamp,
        unit: Unit,
        resolution: Resolution,
        sample: Sample<'_>,
    ) {
        let other = match sample {
            Sample::Value(v) => {
                return self.push_value(key, timestamp, unit, resolution, v);
            }
            Sample::Set(s) => Other {
                sample: Sample::Set(s),
                start: 0,
                len: 0,
                counted: false,
            },
            Sample::Distribution(d) => {
                return self.push_distribution(key, timestamp, unit, resolution, &d);
            }
            Sample::Values { values, counts } => {
                let start = self.values.len();
                let counted = !counts.is_empty();
                self.values.extend_from_slice(values);
                if counted {
                    // Validation makes the lengths equal; a trusted record is cut to match.
                    self.values.extend(
                        counts
                            .iter()
                            .copied()
                            .chain(std::iter::repeat(1.0))
                            .take(values.len()),
                    );
                }
                Other {
                    sample: NO_VALUES,
                    start,
                    len: values.len(),
                    counted,
                }
            }
        };
        self.push_other(key, timestamp, unit, resolution, other);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dimension, Period, Query};

    fn observation(t: i64, sample: Sample<'_>) -> Observation<'_> {
        Observation {
            timestamp: Timestamp::from_millis(t),
            unit: Unit::Count,
            resolution: Resolution::Standard,
            sample,
        }
    }

    /// Regrouping two batches by part keeps every observation once, in each batch's order,
    /// multi-valued ones with their values, and says which batches each part holds.
    #[test]
    fn batches_keep_runs_values_and_counts() {
        let a = SeriesKey::new("App", "A", vec![Dimension::new("Host", "h0")]);
        let b = SeriesKey::new("App", "B", vec![]);
        let t = 1_800_000_000_000;
        let (values, counts) = ([1.0, 2.0, 3.0], [2.0, 1.0]);
        let entries = vec![
            (a.clone(), observation(t, Sample::Value(5.0))),
            (
                a.clone(),
                observation(
                    t + 1,
                    Sample::Values {
                        values: &values,
                        counts: &counts,
                    },
                ),
            ),
            (b.clone(), observation(t + 2, Sample::Value(7.0))),
            (a.clone(), observation(t + 3, Sample::Value(9.0))),
        ];
        let batch = ObservationBatch::from_observations(&entries);
        assert_eq!(batch.len(), 4);
        assert_eq!(batch.series().count(), 3, "three runs: a, b, a");
        // Samples are counted as given (the counts sum to 3) ...
        assert_eq!(batch.samples, 1.0 + 3.0 + 1.0 + 1.0);
        let back = batch.observations();
        let Sample::Values { values, counts } = back[1].1.sample else {
            panic!("the multi-valued observation keeps its values")
        };
        // ... and stored with the counts padded with 1 to the number of values.
        assert_eq!(
            (values, counts),
            (&[1.0, 2.0, 3.0][..], &[2.0, 1.0, 1.0][..])
        );

        let store = Store::new(4);
        batch.record_into(&store, 1);
        let count = |key: &SeriesKey| {
            let q = Query {
                key: key.clone(),
                unit: None,
                start: Timestamp::from_millis(t - 60_000),
                end: Timestamp::from_millis(t + 60_000),
                period: Period::ONE_HOUR,
                statistics: vec!["SampleCount".parse().unwrap()],
            };
            store
                .query(&q, Timestamp::from_millis(t))
                .unwrap()
                .iter()
                .map(|p| p.values[0].unwrap())
                .sum::<f64>()
        };
        assert_eq!(count(&a), 1.0 + 4.0 + 1.0);
        assert_eq!(count(&b), 1.0);
    }

    /// Distributions keep their count, sum and bounds in their entry and their buckets in the
    /// shared buffer, come back whole from `observations` and `with_runs`, and record into
    /// the store as into a window.
    #[test]
    fn batches_keep_distributions() {
        let a = SeriesKey::new("App", "Latency", vec![]);
        let t = 1_800_000_000_000;
        let (values, counts) = ([0.5, 5.0, 50.0], [2.0, 5.0, 1.0]);
        let bucketed = Distribution {
            count: 8.0,
            sum: 76.0,
            min: Some(0.25),
            max: None,
            values: &values,
            counts: &counts,
        };
        let summary = Distribution {
            count: 3.0,
            sum: 9.0,
            min: None,
            max: Some(4.0),
            values: &[],
            counts: &[],
        };
        let (more, fewer) = ([1.0, 2.0], [1.0]);
        let short = Distribution {
            count: 1.0,
            sum: 1.0,
            min: None,
            max: None,
            values: &more,
            counts: &fewer,
        };
        let mut batch = ObservationBatch::default();
        batch.push_value(
            &a,
            Timestamp::from_millis(t),
            Unit::Count,
            Resolution::Standard,
            3.0,
        );
        batch.push_distribution(
            &a,
            Timestamp::from_millis(t + 1),
            Unit::Count,
            Resolution::Standard,
            &bucketed,
        );
        batch.push_sample(
            &a,
            Timestamp::from_millis(t + 2),
            Unit::Count,
            Resolution::Standard,
            Sample::Distribution(summary),
        );
        batch.push_sample(
            &a,
            Timestamp::from_millis(t + 3),
            Unit::Count,
            Resolution::Standard,
            Sample::Values {
                values: &[7.0],
                counts: &[],
            },
        );
        batch.push_distribution(
            &a,
            Timestamp::from_millis(t + 4),
            Unit::Count,
            Resolution::High,
            &short,
        );
        assert_eq!(batch.series().count(), 1);
        let padded = Distribution {
            counts: &[1.0, 0.0],
            ..short
        };
        let want = [
            None,
            Some(bucketed),
            Some(summary),
            None,
            Some(padded), // counts padded with 0 to the number of values
        ];
        fn distributions<'o>(obs: &[Observation<'o>]) -> Vec<Option<Distribution<'o>>> {
            obs.iter()
                .map(|o| match o.sample {
                    Sample::Distribution(d) => Some(d),
                    _ => None,
                })
                .collect()
        }
        let back: Vec<Observation<'_>> = batch.observations().into_iter().map(|(_, o)| o).collect();
        assert_eq!(distributions(&back), want);
        assert!(matches!(
            back[3].sample,
            Sample::Values {
                values: [7.0],
                counts: []
            }
        ));
        let runs: Vec<Vec<Observation<'_>>> = batch.runs().map(|(_, run)| run.collect()).collect();
        assert_eq!(runs.len(), 1);
        assert_eq!(distributions(&runs[0]), want);

        let store = Store::new(4);
        batch.record_into(&store, 1);
        let q = Query {
            key: a.clone(),
            unit: None,
            start: Timestamp::from_millis(t - 60_000),
            end: Timestamp::from_millis(t + 60_000),
            period: Period::ONE_HOUR,
            statistics: ["SampleCount", "Sum", "Minimum", "Maximum", "p50"]
                .iter()
                .map(|s| s.parse().unwrap())
                .collect(),
        };
        let got = store.query(&q, Timestamp::from_millis(t)).unwrap();
        let mut w = crate::Window::new();
        w.record(3.0);
        w.record_distribution(&bucketed);
        w.record_distribution(&summary);
        w.record(7.0);
        w.record_distribution(&padded);
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].values,
            [
                Some(w.sample_count()),
                Some(w.sum()),
                Some(w.minimum()),
                Some(w.maximum()),
                None
            ],
            "a distribution without buckets leaves the period without percentiles"
        );
        assert_eq!(
            got[0].values[..4],
            [Some(14.0), Some(96.0), Some(0.25), Some(50.0)]
        );
    }
}
