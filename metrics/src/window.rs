//! One aggregation window: exact count/sum/min/max plus an HDR histogram for percentiles.
//!
//! Values are recorded in the histogram as integers in units of 10⁻⁵ ([`SCALE`]), with two
//! significant digits (a bucket is at most 1/128 of its value wide), and a percentile is
//! answered with the middle of its bucket, clamped to the window's exact minimum and maximum.
//! That keeps every percentile within 1% of the exact nearest-rank value for values in
//! [`PERCENTILE_ACCURATE_RANGE`]; values outside the range still count exactly in
//! count/sum/min/max.
//!
//! A window keeps its distribution in one of four forms, smallest first: nothing yet, a short
//! list of raw (value, count) pairs, a mutable histogram, or (once sealed) the histogram's
//! compact V2 serialization. Reading is the same for all of them.

use std::fmt;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use serde::{Deserialize, Serialize};

use crate::statistic::{Bounds, ExtendedKind, ExtendedStatistic, Statistic};

/// Values are stored in the histogram as `round(value * SCALE)`.
pub const SCALE: f64 = 1e5;

/// Largest scaled value the histogram tracks; larger values are clamped for percentiles only.
const MAX_SCALED: u64 = 1 << 60;

/// Significant decimal digits of the histogram: buckets at most 1/128 of their value wide.
const SIGFIG: u8 = 2;

/// Raw pairs kept before a window switches to a histogram.
const RAW_LIMIT: usize = 96;

/// Raw pairs that sealing keeps as they are.
const RAW_KEPT_WHEN_SEALED: usize = 3;

/// The range of values in which percentiles are within 1% of the exact value.
pub const PERCENTILE_ACCURATE_RANGE: (f64, f64) = (0.001, 1e13);

/// Why a window has no percentiles. CloudWatch computes percentiles only from raw values, and
/// never when a value in the period is negative; Thermostat follows that and leaves the
/// percentile out rather than inventing a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoPercentiles {
    /// A value in the period is negative.
    NegativeValue,
    /// A statistic set in the period summarises more than one distinct value.
    StatisticSet,
    /// A `counts` entry in the period is not a whole number, or is too large to track.
    FractionalCount,
    /// A distribution in the period (an OpenTelemetry summary without quantiles, say) gave
    /// its count, sum and bounds but no buckets, so nothing says where its observations lie.
    /// Appended last: snapshots name a reason by its position.
    NoBuckets,
}

impl fmt::Display for NoPercentiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NoPercentiles::NegativeValue => "a value in the period is negative",
            NoPercentiles::StatisticSet => {
                "a statistic set in the period summarises more than one value"
            }
            NoPercentiles::FractionalCount => "a count in the period is not a whole number",
            NoPercentiles::NoBuckets => "a distribution in the period has no buckets",
        })
    }
}

/// A CloudWatch `StatisticSet`: pre-aggregated observations.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatisticSet {
    /// Number of observations (> 0).
    pub sample_count: f64,
    /// Their sum.
    pub sum: f64,
    /// Their minimum.
    pub minimum: f64,
    /// Their maximum.
    pub maximum: f64,
}

impl StatisticSet {
    /// The single value this set stands for, with its count, when percentiles can use it:
    /// `SampleCount == 1` and `Min == Max == Sum`, or `Min == Max` and `Sum == Min * SampleCount`.
    fn as_repeated_value(&self) -> Option<f64> {
        let single = self.minimum == self.maximum;
        let consistent = if self.sample_count == 1.0 {
            self.sum == self.minimum
        } else {
            self.sum == self.minimum * self.sample_count
        };
        (single && consistent).then_some(self.minimum)
    }
}

/// Observations summarised with their exact count and sum, optional exact bounds, and
/// buckets: an OpenTelemetry histogram (explicit-bucket or exponential) or summary point.
///
/// Bucket `i` holds `counts[i]` observations, all represented by `values[i]`, a value the
/// caller chose inside the bucket (its middle, say, or a bound where the other one is
/// infinite); representatives should lie within `[min, max]` when those are given. `count` is
/// the exact total and equals the sum of `counts` when there are buckets
/// ([`crate::validate::distribution`] checks that and the rest). Without buckets (`values`
/// empty) the distribution is a count/sum/bounds-only point that feeds no percentiles (see
/// [`Window::record_distribution`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Distribution<'a> {
    /// Number of observations (≥ 0), exact.
    pub count: f64,
    /// Their sum, exact.
    pub sum: f64,
    /// Their minimum, when known.
    pub min: Option<f64>,
    /// Their maximum, when known.
    pub max: Option<f64>,
    /// A representative value of each bucket.
    pub values: &'a [f64],
    /// How many observations each bucket holds; as many entries as `values`.
    pub counts: &'a [f64],
}

impl Distribution<'_> {
    /// The bounds the distribution adds to a window, `(lower, upper)`: `min` and `max` when
    /// given; otherwise the smallest and largest representative of a bucket that holds
    /// observations; without those, the mean (`sum / count`), which lies between the true
    /// bounds. A derived bound never crosses a given one (a lower bound derived above a
    /// given maximum becomes that maximum, and the other way round), so `lower <= upper`.
    /// `None` for a side nothing bounds (no bound given, no buckets, no finite mean).
    fn bounds(&self) -> (Option<f64>, Option<f64>) {
        let mut occupied = self
            .values
            .iter()
            .zip(self.counts)
            .filter(|&(_, &n)| n > 0.0)
            .map(|(&v, _)| v);
        let first = occupied.next();
        let (lo_rep, hi_rep) = occupied.fold((first, first), |(lo, hi), v| {
            (lo.map(|l| l.min(v)), hi.map(|h| h.max(v)))
        });
        let mean = Some(self.sum / self.count).filter(|m| m.is_finite());
        let mut lo = self.min.or(lo_rep).or(mean);
        let mut hi = self.max.or(hi_rep).or(mean);
        if let (Some(l), Some(h)) = (lo, hi)
            && l > h
        {
            if self.max.is_some() && self.min.is_none() {
                lo = Some(h);
            } else {
                hi = Some(l);
            }
        }
        (lo, hi)
    }
}

/// A window's distribution of values, for percentiles.
#[derive(Clone, Debug, Default)]
enum Dist {
    #[default]
    Empty,
    /// Single observations whose scaled values fit 32 bits (the common case: a quarter of
    /// the memory of pairs).
    Small(Vec<u32>),
    Raw(Vec<(u64, u64)>),
    Hist(Box<Histogram<u64>>),
    Sealed(Box<[u8]>),
    Unavailable(NoPercentiles),
}

/// The aggregate of one window (or of several merged windows).
#[derive(Clone, Debug)]
pub struct Window {
    count: f64,
    sum: f64,
    min: f64,
    max: f64,
    dist: Dist,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            count: 0.0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            dist: Dist::Empty,
        }
    }
}

fn scaled(v: f64) -> u64 {
    // `v` is non-negative and finite here; `as` saturates.
    ((v * SCALE).round() as u64).min(MAX_SCALED)
}

fn new_histogram() -> Histogram<u64> {
    // Auto-resizing: memory follows the largest value actually recorded.
    Histogram::new(SIGFIG).unwrap_or_else(|_| unreachable!("2 significant digits is valid"))
}

/// Records into an auto-resizing histogram (`saturating_record_n` would clamp to the current
/// size instead of growing it).
fn record_into(h: &mut Histogram<u64>, s: u64, n: u64) {
    if h.record_n(s, n).is_err() {
        h.saturating_record_n(s, n);
    }
}

fn serialize(h: &Histogram<u64>) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    V2Serializer::new().serialize(h, &mut buf).ok()?;
    Some(buf)
}

fn whole_count(c: f64) -> Option<u64> {
    (c.fract() == 0.0 && (0.0..9.0e15).contains(&c)).then_some(c as u64)
}

impl Window {
    /// An empty window.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of observations (CloudWatch `SampleCount`).
    pub fn sample_count(&self) -> f64 {
        self.count
    }

    /// Sum of the observations.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Smallest observation (`+inf` when empty).
    pub fn minimum(&self) -> f64 {
        self.min
    }

    /// Largest observation (`-inf` when empty).
    pub fn maximum(&self) -> f64 {
        self.max
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.count == 0.0
    }

    /// Whether the distribution is in its compact, read-mostly form.
    pub fn is_sealed(&self) -> bool {
        match &self.dist {
            Dist::Sealed(_) | Dist::Empty | Dist::Unavailable(_) => true,
            Dist::Raw(p) => p.len() <= RAW_KEPT_WHEN_SEALED && p.len() == p.capacity(),
            Dist::Small(p) => p.len() <= RAW_KEPT_WHEN_SEALED && p.len() == p.capacity(),
            Dist::Hist(_) => false,
        }
    }

    fn add_exact(&mut self, v: f64, n: f64) {
        self.count += n;
        self.sum += v * n;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    fn mark_unavailable(&mut self, why: NoPercentiles) {
        if !matches!(self.dist, Dist::Unavailable(_)) {
            self.dist = Dist::Unavailable(why);
        }
    }

    fn add_to_distribution(&mut self, v: f64, n: f64) {
        if matches!(self.dist, Dist::Unavailable(_)) {
            return;
        }
        if v < 0.0 {
            return self.mark_unavailable(NoPercentiles::NegativeValue);
        }
        let Some(n) = whole_count(n) else {
            return self.mark_unavailable(NoPercentiles::FractionalCount);
        };
        let s = scaled(v);
        match &mut self.dist {
            Dist::Empty => {
                self.dist = match u32::try_from(s) {
                    Ok(small) if n == 1 => Dist::Small(vec![small]),
                    _ => Dist::Raw(vec![(s, n)]),
                }
            }
            Dist::Small(values) if values.len() < RAW_LIMIT => match u32::try_from(s) {
                Ok(small) if n == 1 => values.push(small),
                _ => {
                    let mut pairs: Vec<(u64, u64)> =
                        values.iter().map(|&v| (u64::from(v), 1)).collect();
                    pairs.push((s, n));
                    self.dist = Dist::Raw(pairs);
                }
            },
            Dist::Raw(pairs) if pairs.len() < RAW_LIMIT => pairs.push((s, n)),
            Dist::Small(_) | Dist::Raw(_) | Dist::Sealed(_) => {
                let mut h = self.histogram().unwrap_or_else(new_histogram);
                record_into(&mut h, s, n);
                self.dist = Dist::Hist(Box::new(h));
            }
            Dist::Hist(h) => record_into(h, s, n),
            Dist::Unavailable(_) => {}
        }
    }

    /// Records one observation. `value` must be finite (validation guarantees it).
    pub fn record(&mut self, value: f64) {
        self.record_n(value, 1.0);
    }

    /// A hint that about `additional` more single observations are coming: a window that
    /// keeps raw values makes room for them at once (one allocation instead of a growth every
    /// few values). Nothing else changes.
    pub fn reserve(&mut self, additional: usize) {
        if let Dist::Small(values) = &mut self.dist {
            values.reserve(additional.min(RAW_LIMIT.saturating_sub(values.len())));
        }
    }

    /// Records `count` observations of `value` (CloudWatch `Values`/`Counts`). Counts of zero record
    /// nothing.
    pub fn record_n(&mut self, value: f64, count: f64) {
        if count <= 0.0 {
            return;
        }
        self.add_exact(value, count);
        self.add_to_distribution(value, count);
    }

    /// Records a statistic set. It feeds percentiles only when it stands for one repeated value.
    pub fn record_set(&mut self, set: &StatisticSet) {
        if set.sample_count <= 0.0 {
            return;
        }
        self.count += set.sample_count;
        self.sum += set.sum;
        self.min = self.min.min(set.minimum);
        self.max = self.max.max(set.maximum);
        match set.as_repeated_value() {
            Some(v) => self.add_to_distribution(v, set.sample_count),
            None => self.mark_unavailable(NoPercentiles::StatisticSet),
        }
    }

    /// Records a distribution ([`Distribution`]); validation
    /// ([`crate::validate::distribution`]) has passed, and a distribution of `count <= 0`
    /// records nothing.
    ///
    /// - Count and sum are added exactly.
    /// - Minimum and maximum: the distribution's `min` and `max` when given. A bound not
    ///   given is the extreme representative of the buckets that hold observations (so
    ///   without `min` and `max` the window's Minimum and Maximum are the extreme bucket
    ///   representatives), or without buckets the mean `sum / count` (which the true bounds
    ///   enclose). A derived bound never crosses a given one. So the window's Minimum is at
    ///   most every representative the distribution adds and its Maximum at least every one,
    ///   and a window's percentiles, clamped to `[Minimum, Maximum]`, always lie within them.
    /// - Percentiles: each bucket feeds the window's histogram as `record_n(values[i],
    ///   counts[i])` would (a negative bound or representative leaves the window without
    ///   percentiles, [`NoPercentiles::NegativeValue`], as in CloudWatch; a fractional count
    ///   [`NoPercentiles::FractionalCount`]). A distribution without buckets that hold
    ///   observations says nothing about where its observations lie: the window then has no
    ///   percentiles ([`NoPercentiles::NoBuckets`]) rather than invented ones.
    pub fn record_distribution(&mut self, d: &Distribution<'_>) {
        if d.count <= 0.0 {
            return;
        }
        self.count += d.count;
        self.sum += d.sum;
        let (lo, hi) = d.bounds();
        if let Some(lo) = lo {
            self.min = self.min.min(lo);
        }
        if let Some(hi) = hi {
            self.max = self.max.max(hi);
        }
        let occupied = d.values.iter().zip(d.counts).filter(|&(_, &n)| n > 0.0);
        if occupied.clone().next().is_none() {
            return self.mark_unavailable(NoPercentiles::NoBuckets);
        }
        if lo.is_some_and(|lo| lo < 0.0) {
            return self.mark_unavailable(NoPercentiles::NegativeValue);
        }
        for (&v, &n) in occupied {
            self.add_to_distribution(v, n);
        }
    }

    /// Adds everything in `other` to this window.
    pub fn merge(&mut self, other: &Window) {
        if other.is_empty() {
            return;
        }
        let was_empty = self.is_empty();
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if let Dist::Unavailable(why) = other.dist {
            return self.mark_unavailable(why);
        }
        if was_empty {
            self.dist = other.dist.clone();
            return;
        }
        match (&mut self.dist, &other.dist) {
            (Dist::Unavailable(_), _) => {}
            (Dist::Raw(mine), Dist::Raw(theirs)) if mine.len() + theirs.len() <= RAW_LIMIT => {
                mine.extend_from_slice(theirs)
            }
            (Dist::Small(mine), Dist::Small(theirs)) if mine.len() + theirs.len() <= RAW_LIMIT => {
                mine.extend_from_slice(theirs)
            }
            _ => {
                // Into this window's own histogram when it has one (merging many windows into
                // one must not copy the sum at every step), from the other's without a copy
                // when it has one. Both auto-resize, so adding cannot fail for range reasons.
                if !matches!(self.dist, Dist::Hist(_)) {
                    let h = self.histogram().unwrap_or_else(new_histogram);
                    self.dist = Dist::Hist(Box::new(h));
                }
                let Dist::Hist(h) = &mut self.dist else {
                    unreachable!("the distribution was just made a histogram")
                };
                match &other.dist {
                    Dist::Hist(o) => {
                        let _ = h.add(&**o);
                    }
                    _ => {
                        if let Some(o) = other.histogram() {
                            let _ = h.add(&o);
                        }
                    }
                }
            }
        }
    }

    /// The distribution as a histogram of scaled values, or why there is none.
    fn histogram(&self) -> Option<Histogram<u64>> {
        match &self.dist {
            Dist::Empty | Dist::Unavailable(_) => None,
            Dist::Raw(pairs) => {
                let mut h = new_histogram();
                for &(s, n) in pairs {
                    record_into(&mut h, s, n);
                }
                Some(h)
            }
            Dist::Small(values) => {
                let mut h = new_histogram();
                for &s in values {
                    record_into(&mut h, u64::from(s), 1);
                }
                Some(h)
            }
            Dist::Hist(h) => Some((**h).clone()),
            Dist::Sealed(bytes) => {
                let mut d = Deserializer::new();
                let mut h: Histogram<u64> = d.deserialize(&mut &bytes[..]).ok()?;
                h.auto(true);
                Some(h)
            }
        }
    }

    /// Why this window has no percentiles, if it has none.
    pub fn no_percentiles(&self) -> Option<NoPercentiles> {
        match self.dist {
            Dist::Unavailable(why) => Some(why),
            _ => None,
        }
    }

    /// The nearest-rank percentile `rank` (0..=100): the smallest value such that at least
    /// `rank`% of the observations are at or below it. `None` when the window is empty or
    /// has no percentiles (see [`NoPercentiles`]).
    pub fn percentile(&self, rank: f64) -> Option<f64> {
        self.percentiles(&[rank]).pop().flatten()
    }

    /// Several percentiles at once (decoding the distribution once).
    pub fn percentiles(&self, ranks: &[f64]) -> Vec<Option<f64>> {
        let none = || vec![None; ranks.len()];
        let Some(h) = self.decoded() else {
            return none();
        };
        ranks
            .iter()
            .map(|&rank| self.percentile_of(&h, rank))
            .collect()
    }

    /// The distribution as a histogram to read, when there is one with observations.
    fn decoded(&self) -> Option<std::borrow::Cow<'_, Histogram<u64>>> {
        if self.is_empty() {
            return None;
        }
        let h = match &self.dist {
            Dist::Hist(h) => std::borrow::Cow::Borrowed(&**h),
            _ => std::borrow::Cow::Owned(self.histogram()?),
        };
        (!h.is_empty()).then_some(h)
    }

    fn percentile_of(&self, h: &Histogram<u64>, rank: f64) -> Option<f64> {
        if rank <= 0.0 {
            return Some(self.min);
        }
        if rank >= 100.0 {
            return Some(self.max);
        }
        // Nearest rank: the bucket where the count first reaches ⌈rank/100 · total⌉
        // (hdrhistogram's scan, which sums the counts in vectorisable chunks), answered
        // with the middle of that bucket.
        let top = h.value_at_quantile(rank / 100.0);
        let mid = h.median_equivalent(top);
        Some((mid as f64 / SCALE).clamp(self.min, self.max))
    }

    /// Every statistic of `statistics`, in order, decoding the distribution at most once.
    /// SampleCount, Sum, Minimum, Maximum and Average are exact (`None` only when the window
    /// is empty); percentiles are as [`Window::percentile`]; the other extended statistics
    /// are as [`Window::extended`]. `None` where CloudWatch gives no value.
    pub fn statistics(&self, statistics: &[Statistic]) -> Vec<Option<f64>> {
        if self.is_empty() {
            return vec![None; statistics.len()];
        }
        let needs_distribution = statistics.iter().any(Statistic::is_percentile);
        let h = if needs_distribution {
            self.decoded()
        } else {
            None
        };
        let mut buckets = None;
        statistics
            .iter()
            .map(|s| match s {
                Statistic::SampleCount => Some(self.count),
                Statistic::Sum => Some(self.sum),
                Statistic::Minimum => Some(self.min),
                Statistic::Maximum => Some(self.max),
                Statistic::Average => Some(self.sum / self.count),
                Statistic::Percentile(p) => self.percentile_of(h.as_deref()?, p.rank),
                Statistic::Extended(e) => {
                    let b = buckets.get_or_insert_with(|| {
                        h.as_deref().map(|h| self.buckets(h)).unwrap_or_default()
                    });
                    extended_of(b, e)
                }
            })
            .collect()
    }

    /// One extended statistic other than a percentile (`TM`, `WM`, `TC`, `TS`, `PR`;
    /// see [`crate::statistic`] for the bounds), computed from the same histogram as the
    /// percentiles. `None` when the window is empty or has no percentiles
    /// ([`NoPercentiles`]: a negative value, a statistic set of several values...), and for
    /// a trimmed mean with no observation within the bounds.
    ///
    /// Each histogram bucket stands for its observations. Accuracy, for values and bounds
    /// in [`PERCENTILE_ACCURATE_RANGE`]:
    ///
    /// - Percentage bounds select by rank, which the bucket counts give exactly: `TC` is
    ///   exact; `TM`, `TS` and `WM` count each observation as the middle of its bucket
    ///   clamped to the window's exact minimum and maximum (the value a percentile answers,
    ///   and `WM`'s replacements are the percentiles at the bounds), so they are within 1%
    ///   of the exact value, like percentiles (within 1/256 plus 10⁻⁵ per observation).
    /// - Absolute bounds select by bucket: a bucket is within when its lowest value (clamped
    ///   to the window's minimum and maximum) is. An observation equal to a bound that is a
    ///   multiple of 10⁻⁵, or below a bound, is therefore on the right side; an observation
    ///   above a bound by less than the width of the bound's bucket (bound/128 + 10⁻⁵) may be
    ///   counted as if it equalled the bound. `TC` and `PR` are exact but for those
    ///   observations; `TM`, `TS` and `WM` are within 1% of the exact value over the
    ///   observations so selected (a kept observation counts as at most the upper bound).
    pub fn extended(&self, statistic: &ExtendedStatistic) -> Option<f64> {
        let h = self.decoded()?;
        extended_of(&self.buckets(&h), statistic)
    }

    /// The histogram's recorded buckets in ascending order.
    fn buckets(&self, h: &Histogram<u64>) -> Vec<Bucket> {
        let value = |scaled: u64| (scaled as f64 / SCALE).clamp(self.min, self.max);
        h.iter_recorded()
            .map(|v| {
                let top = v.value_iterated_to();
                Bucket {
                    key: value(h.lowest_equivalent(top)),
                    mid: value(h.median_equivalent(top)),
                    count: v.count_at_value(),
                }
            })
            .collect()
    }

    /// Converts the distribution to its compact form. Recording into a sealed window later
    /// is still correct (it is unsealed transparently), only slower.
    pub fn seal(&mut self) {
        match &mut self.dist {
            // A few raw values are smaller than a serialized histogram's 40-byte header.
            Dist::Raw(pairs) if pairs.len() <= RAW_KEPT_WHEN_SEALED => {
                pairs.shrink_to_fit();
                return;
            }
            Dist::Small(values) if values.len() <= RAW_KEPT_WHEN_SEALED => {
                values.shrink_to_fit();
                return;
            }
            _ => {}
        }
        let bytes = match &self.dist {
            Dist::Small(_) | Dist::Raw(_) | Dist::Hist(_) => {
                self.histogram().and_then(|h| serialize(&h))
            }
            _ => None,
        };
        if let Some(b) = bytes {
            self.dist = Dist::Sealed(b.into_boxed_slice());
        }
    }

    /// Approximate heap bytes used by this window beyond its inline size.
    pub fn heap_bytes(&self) -> usize {
        match &self.dist {
            Dist::Empty | Dist::Unavailable(_) => 0,
            Dist::Raw(p) => p.capacity() * std::mem::size_of::<(u64, u64)>(),
            Dist::Small(p) => p.capacity() * std::mem::size_of::<u32>(),
            Dist::Hist(h) => std::mem::size_of::<Histogram<u64>>() + h.distinct_values() * 8,
            Dist::Sealed(b) => b.len(),
        }
    }

    /// A serialisable copy, for snapshots.
    pub fn export(&self) -> WindowExport {
        let dist = match &self.dist {
            Dist::Empty => DistributionExport::Empty,
            Dist::Unavailable(why) => DistributionExport::Unavailable(*why),
            Dist::Sealed(b) => DistributionExport::Histogram(b.to_vec()),
            Dist::Small(_) | Dist::Raw(_) | Dist::Hist(_) => self
                .histogram()
                .and_then(|h| serialize(&h))
                .map_or(DistributionExport::Empty, DistributionExport::Histogram),
        };
        WindowExport {
            count: self.count,
            sum: self.sum,
            min: self.min,
            max: self.max,
            dist,
        }
    }

    /// Rebuilds a window from [`Window::export`]'s output.
    pub fn import(export: WindowExport) -> Self {
        let dist = match export.dist {
            DistributionExport::Empty => Dist::Empty,
            DistributionExport::Unavailable(why) => Dist::Unavailable(why),
            DistributionExport::Histogram(b) => Dist::Sealed(b.into_boxed_slice()),
        };
        Window {
            count: export.count,
            sum: export.sum,
            min: export.min,
            max: export.max,
            dist,
        }
    }
}

/// One recorded histogram bucket, for the extended statistics.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Its lowest value (clamped to the window's bounds): compared with absolute bounds.
    key: f64,
    /// Its middle (clamped): the value its observations count as.
    mid: f64,
    /// How many observations it holds.
    count: u64,
}

/// The nearest rank (1-based, 0 for none) of percentage `p` among `n` observations,
/// `⌈p·n/100⌉`, in integers: `p` has at most 10 decimals (as the parser accepts; more are
/// rounded off), so `p·10¹⁰` is whole and the rank is exact. (Floating point would not be:
/// `0.07 · 100` is `7.000000000000001`, whose ceiling is 8.)
fn rank_of(p: f64, n: u64) -> u64 {
    let tenths_of_billionths = (p.clamp(0.0, 100.0) * 1e10).round() as u128;
    let r = (tenths_of_billionths * u128::from(n)).div_ceil(1_000_000_000_000);
    u64::try_from(r).unwrap_or(n).min(n)
}

/// An extended statistic over `buckets` (ascending, see [`Window::extended`]).
fn extended_of(buckets: &[Bucket], e: &ExtendedStatistic) -> Option<f64> {
    let n: u64 = buckets.iter().map(|b| b.count).sum();
    if n == 0 {
        return None;
    }
    let nf = n as f64;
    // Kept observations: their count, their sum, and for `WM` the sum of all observations
    // with those outside counted as the value at the bound.
    let (kept, sum, winsorized) = match e.bounds {
        Bounds::Percent { lower, upper } => {
            let lo = lower.map_or(0, |p| rank_of(p, n));
            let hi = upper.map_or(n, |p| rank_of(p, n)).max(lo);
            // The value at 1-based rank `r` (rank 0 reads as 1, as nearest-rank p0 does).
            let at = |r: u64| {
                let mut seen = 0;
                buckets
                    .iter()
                    .find(|b| {
                        seen += b.count;
                        seen >= r.max(1)
                    })
                    .map_or(0.0, |b| b.mid)
            };
            let (mut kept, mut sum, mut seen) = (0u64, 0.0, 0u64);
            for b in buckets {
                let (first, last) = (seen, seen + b.count);
                seen = last;
                let k = last.min(hi).saturating_sub(first.max(lo));
                kept += k;
                sum += k as f64 * b.mid;
            }
            let below = if lo > 0 { lo as f64 * at(lo) } else { 0.0 };
            let above = if hi < n {
                (n - hi) as f64 * at(hi)
            } else {
                0.0
            };
            (kept, sum, sum + below + above)
        }
        Bounds::Absolute { lower, upper } => {
            let (mut kept, mut sum, mut winsorized) = (0u64, 0.0, 0.0);
            for b in buckets {
                let c = b.count as f64;
                match (lower, upper) {
                    (Some(l), _) if b.key <= l => winsorized += c * l,
                    (_, Some(u)) if b.key > u => winsorized += c * u,
                    _ => {
                        let v = upper.map_or(b.mid, |u| b.mid.min(u));
                        kept += b.count;
                        sum += c * v;
                        winsorized += c * v;
                    }
                }
            }
            (kept, sum, winsorized)
        }
    };
    Some(match e.kind {
        ExtendedKind::TrimmedMean => {
            if kept == 0 {
                return None;
            }
            sum / kept as f64
        }
        ExtendedKind::WinsorizedMean => winsorized / nf,
        ExtendedKind::TrimmedCount => kept as f64,
        ExtendedKind::TrimmedSum => sum,
        ExtendedKind::PercentileRank => 100.0 * kept as f64 / nf,
    })
}

/// The serialisable form of a [`Window`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowExport {
    count: f64,
    sum: f64,
    min: f64,
    max: f64,
    dist: DistributionExport,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum DistributionExport {
    Empty,
    Unavailable(NoPercentiles),
    /// hdrhistogram V2 serialization of the scaled values.
    Histogram(Vec<u8>),
}

#[cfg(test)]
mod tests;
