//! The store's input: a batch of observations grouped in runs of one series.
//!
//! An [`ObservationBatch`] is what one validated push (or one write-ahead-log record being
//! replayed, or one set of samples Thermostat makes itself) becomes before it is recorded:
//! each observation with its series, a series key held once per run of one series rather than
//! once per observation, and the values (and counts) of multi-valued observations and
//! distributions copied into one buffer per batch. The ingest adapter fills it (from a request's bytes or a log record) and records
//! it with [`ObservationBatch::record_into`]; the log record format is written from it
//! ([`ObservationBatch::with_runs`]).

use std::borrow::Cow;

use crate::series::SeriesKey;
use crate::store::{Observation, Resolution, Sample, Store};
use crate::time::Timestamp;
use crate::unit::Unit;
use crate::window::Distribution;

/// Where the values of a multi-valued observation or a distribution are kept: observation
/// `entry`'s values are `values[start..start + len]`, followed by as many counts when
/// `counted` (always for a distribution, whose count, sum and bounds stay in its entry).
#[derive(Clone, Copy, Debug)]
struct Multi {
    entry: usize,
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
    /// One per observation, in the order added, ready for the store. A multi-valued
    /// observation's sample is an empty list here, and a distribution's has no buckets, until
    /// [`ObservationBatch::observations`] or [`ObservationBatch::with_runs`] fills in its
    /// values and counts.
    observations: Vec<Observation<'static>>,
    /// Samples in the batch, by Thermostat's counting rule ([`Sample::sample_count`]); kept by
    /// whoever fills the batch, which often knows the count already.
    pub samples: f64,
    /// Values and counts of multi-valued observations and distributions.
    values: Vec<f64>,
    multi: Vec<Multi>,
}

const NO_VALUES: Sample<'static> = Sample::Values {
    values: &[],
    counts: &[],
};

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

    /// The observations with their series, multi-valued ones and distributions included.
    pub fn observations(&self) -> Vec<(SeriesKey, Observation<'_>)> {
        let mut out: Vec<(SeriesKey, Observation<'_>)> =
            Vec::with_capacity(self.observations.len());
        let mut start = 0;
        for (key, end) in &self.runs {
            out.extend(
                self.observations[start..*end]
                    .iter()
                    .map(|o| (key.clone(), *o)),
            );
            start = *end;
        }
        for m in &self.multi {
            out[m.entry].1.sample = self.filled(m, &self.observations[m.entry].sample);
        }
        out
    }

    /// The sample of a multi-valued observation or distribution, `held` (its entry in
    /// `observations`) with its values and counts filled in.
    fn filled(&self, m: &Multi, held: &Sample<'static>) -> Sample<'_> {
        let values = &self.values[m.start..m.start + m.len];
        let counts = if m.counted {
            &self.values[m.start + m.len..m.start + 2 * m.len]
        } else {
            &[]
        };
        match *held {
            Sample::Distribution(d) => Sample::Distribution(Distribution {
                values,
                counts,
                ..d
            }),
            _ => Sample::Values { values, counts },
        }
    }

    /// Makes room for `additional` more observations.
    #[inline]
    pub fn reserve(&mut self, additional: usize) {
        self.observations.reserve(additional);
    }

    /// Calls `f` with the runs (as in [`Store::record_runs_seq`]) and the observations,
    /// multi-valued ones and distributions included.
    #[inline]
    pub fn with_runs<R>(
        &self,
        f: impl FnOnce(&[(SeriesKey, usize)], &[Observation<'_>]) -> R,
    ) -> R {
        if self.multi.is_empty() {
            // The common case: the observations are what the store takes.
            return f(&self.runs, &self.observations);
        }
        let mut filled: Vec<Observation<'_>> = self.observations.clone();
        for m in &self.multi {
            filled[m.entry].sample = self.filled(m, &self.observations[m.entry].sample);
        }
        f(&self.runs, &filled)
    }

    /// Records the batch into `store` as write-ahead-log record `seq` (see
    /// [`Store::record_runs_seq`]).
    pub fn record_into(&self, store: &Store, seq: u64) {
        self.with_runs(|runs, observations| store.record_runs_seq(runs, observations, seq));
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
            Sample::Value(value),
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
        self.push(
            Cow::Owned(key),
            timestamp,
            unit,
            resolution,
            Sample::Value(value),
        );
    }

    #[inline]
    fn push(
        &mut self,
        key: Cow<'_, SeriesKey>,
        timestamp: Timestamp,
        unit: Unit,
        resolution: Resolution,
        sample: Sample<'static>,
    ) {
        self.observations.push(Observation {
            timestamp,
            unit,
            resolution,
            sample,
        });
        let end = self.observations.len();
        match self.runs.last_mut() {
            Some((last, last_end)) if SeriesKey::same(last, &key) => *last_end = end,
            _ => self.runs.push((key.into_owned(), end)),
        }
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
                Ok((timestamp, value)) => self.observations.push(Observation {
                    timestamp,
                    unit,
                    resolution,
                    sample: Sample::Value(value),
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
        self.multi.push(Multi {
            entry: self.observations.len(),
            start,
            len,
            counted: true,
        });
        let held = Distribution {
            values: &[],
            counts: &[],
            ..*distribution
        };
        self.push(
            Cow::Borrowed(key),
            timestamp,
            unit,
            resolution,
            Sample::Distribution(held),
        );
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
        let sample = match sample {
            Sample::Value(v) => Sample::Value(v),
            Sample::Set(s) => Sample::Set(s),
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
                self.multi.push(Multi {
                    entry: self.observations.len(),
                    start,
                    len: values.len(),
                    counted,
                });
                NO_VALUES
            }
        };
        self.push(Cow::Borrowed(key), timestamp, unit, resolution, sample);
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
        batch.with_runs(|runs, obs| {
            assert_eq!(runs.len(), 1);
            assert_eq!(distributions(obs), want);
        });

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
