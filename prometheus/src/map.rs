//! The pure mapping of a decoded remote write request (1.0 or 2.0) onto Thermostat's points:
//! series identity, counters to increases through the shared cumulative streams, classic and
//! native histograms to distributions, staleness markers to stream ends.

use std::collections::{BTreeMap, HashMap};

use thermostat_metrics::cumulative::{
    CumulativePoint, MappedData, MappedPoint, StartRule, Step, StreamKey, StreamKind, StreamUpdate,
    Streams, Totals, explicit_distribution, exponential_distribution, increase_data, step,
};
use thermostat_metrics::quote::quote;
use thermostat_metrics::validate::{self, MAX_DIMENSIONS};
use thermostat_metrics::{Dimension, SeriesKey, Timestamp, Unit};

use crate::classic;
use crate::decode::Request;
use crate::native::{self, NativeTotals};
use crate::proto::histogram::ResetHint;
use crate::proto::{Histogram, MetricType, WriteRequest};
use crate::v2;

/// The namespace of a series without the namespace label.
pub const DEFAULT_NAMESPACE: &str = "Prometheus";
/// The label whose value is the namespace, by default.
pub const DEFAULT_NAMESPACE_LABEL: &str = "job";
/// Prometheus' staleness marker: a NaN with this exact bit pattern ends a stream (in a
/// sample's value, or a native histogram's sum).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;
/// The `origin` of every Prometheus stream ([`StreamKey::origin`]): xxh3 of
/// `"prometheus remote write"`. OTLP's origins hash a resource and a scope, so the two never
/// share a stream (but with the odds of a 64-bit hash collision).
pub const ORIGIN: u64 = xxhash_rust::const_xxh3::xxh3_64(b"prometheus remote write");

/// How to map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapOptions {
    /// The label whose value is the namespace (`prometheus.namespace_label`).
    pub namespace_label: String,
    /// Most cumulative streams kept (counting every stream of the [`Streams`] passed, OTLP's
    /// too when the caller shares one): a sample that would start one more is rejected.
    /// Idle streams are forgotten by the caller ([`Streams::expire`]), not here.
    pub max_streams: usize,
}

impl Default for MapOptions {
    /// `job`, 100,000 streams.
    fn default() -> Self {
        MapOptions {
            namespace_label: DEFAULT_NAMESPACE_LABEL.to_owned(),
            max_streams: 100_000,
        }
    }
}

/// Whether a series is cumulative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Cumulative: metadata type counter (2.0: the series' own type counter, histogram, or
    /// summary for `_count`/`_sum`), else the suffix `_total`, `_count`, `_sum` or `_bucket`.
    Counter,
    /// An observation per sample.
    Gauge,
}

/// A series or sample that broke a rule; the others are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The series as Prometheus writes it, `name{label="value",…}`, values shortened.
    pub series: String,
    /// The field and the rule, e.g. `timeseries[3].samples[0].value: must be a number …`.
    pub rule: String,
}

/// What the request carried that was accepted, for remote write 2.0's
/// `X-Prometheus-Remote-Write-*-Written` headers.
///
/// A sample or histogram counts when it was not rejected: stored, or taken into its stream's
/// state without a point of its own (a counter's first sample, a retried duplicate, a
/// staleness marker, an unchanged histogram). Prometheus logs an error when 2xx comes with
/// fewer written than sent, so what was processed counts, not only what made a point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Float samples (classic histogram buckets among them).
    pub samples: u64,
    /// Native histograms.
    pub histograms: u64,
    /// Always 0: exemplars are decoded and bounded but not stored.
    pub exemplars: u64,
}

/// The outcome of [`map`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mapped {
    /// What to store (unit `None`; `point` is the sample's or histogram's index in its
    /// series; a classic histogram's, its `+Inf` bucket sample's).
    pub points: Vec<MappedPoint>,
    /// What was rejected.
    pub rejected: Vec<Rejection>,
    /// Staleness markers: the series and the marker's timestamp (ms).
    pub stale: Vec<(SeriesKey, i64)>,
    /// The changes made to the [`Streams`], in the order they were applied: log them.
    pub stream_updates: Vec<StreamUpdate>,
    /// The changes that undo `stream_updates`, in the order to apply them (the last change's
    /// inverse first), for a caller whose log refuses the request.
    pub undo: Vec<StreamUpdate>,
    /// What the request carried that was accepted.
    pub written: Written,
    /// Samples and histograms passed over, counted not rejected: a counter's first sample
    /// (without a created timestamp), samples not newer than their stream's last, histograms
    /// that counted nothing since the previous one.
    pub skipped: usize,
    /// The cumulative samples and histograms that moved their stream on, in request order:
    /// what cluster mode sends to the owner of each one's partition, which turns them into
    /// increases itself (the points they gave here are marked [`MappedPoint::from_stream`]).
    pub cumulative: Vec<CumulativePoint>,
}

/// Maps a decoded request, updating `streams` (through [`Streams::apply`] only) and
/// returning the updates in order. Never fails as a whole and never panics: a series, sample
/// or histogram that breaks a rule is a [`Rejection`] and the rest is kept. `now_ms` is the
/// server's time (for the timestamp rules and stream idleness).
pub fn map(request: &Request, streams: &mut Streams, now_ms: i64, options: &MapOptions) -> Mapped {
    let (inputs, families) = match request {
        Request::V1(r) => (inputs_v1(r), families(r)),
        Request::V2(r) => (inputs_v2(r), HashMap::new()),
    };
    let mut mapper = Mapper {
        inputs: &inputs,
        families: &families,
        streams,
        now_ms,
        options,
        out: Mapped::default(),
        groups: Groups::default(),
        sums: HashMap::new(),
    };
    for i in 0..inputs.len() {
        mapper.series(i);
    }
    mapper.classic();
    mapper.out.undo.reverse();
    mapper.out
}

// === The request, whatever its version ===

/// One series of either version (its index in `inputs` is its index in the request).
struct Input<'a> {
    labels: Vec<(&'a str, &'a str)>,
    /// The rule the labels break before they can even be read (2.0's references).
    unreadable: Option<String>,
    samples: Vec<InSample>,
    histograms: &'a [Histogram],
    /// 2.0: the series' own metadata type.
    own_type: Option<MetricType>,
    /// 2.0 drafts: the series' created timestamp (ms; 0: none).
    created_ms: i64,
}

#[derive(Clone, Copy, Debug)]
struct InSample {
    value: f64,
    timestamp: i64,
    start: i64,
}

fn inputs_v1(r: &WriteRequest) -> Vec<Input<'_>> {
    r.timeseries
        .iter()
        .map(|ts| Input {
            labels: ts
                .labels
                .iter()
                .map(|l| (l.name.as_str(), l.value.as_str()))
                .collect(),
            unreadable: None,
            samples: ts
                .samples
                .iter()
                .map(|s| InSample {
                    value: s.value,
                    timestamp: s.timestamp,
                    start: 0,
                })
                .collect(),
            histograms: &ts.histograms,
            own_type: None,
            created_ms: 0,
        })
        .collect()
}

fn inputs_v2(r: &v2::Request) -> Vec<Input<'_>> {
    r.timeseries
        .iter()
        .map(|ts| {
            let (labels, unreadable) = resolve(&r.symbols, &ts.labels_refs);
            Input {
                labels,
                unreadable,
                samples: ts
                    .samples
                    .iter()
                    .map(|s| InSample {
                        value: s.value,
                        timestamp: s.timestamp,
                        start: s.start_timestamp,
                    })
                    .collect(),
                histograms: &ts.histograms,
                own_type: ts
                    .metadata
                    .and_then(|m| MetricType::try_from(m.r#type).ok())
                    .filter(|t| *t != MetricType::Unknown),
                created_ms: ts.created_timestamp,
            }
        })
        .collect()
}

/// 2.0's label references as labels: `(labels, None)`, or what could be read and the rule
/// broken (an odd count, a reference beyond the symbols).
fn resolve<'a>(symbols: &'a [String], refs: &[u32]) -> (Vec<(&'a str, &'a str)>, Option<String>) {
    let symbol = |r: u32| symbols.get(r as usize).map(String::as_str);
    let mut labels = Vec::with_capacity(refs.len() / 2);
    let mut rule = None;
    for (k, pair) in refs.chunks(2).enumerate() {
        let [name, value] = pair else {
            rule = Some(format!(
                "labels_refs: must hold pairs of references, a name's and a value's (got {})",
                refs.len()
            ));
            break;
        };
        match (symbol(*name), symbol(*value)) {
            (Some(n), Some(v)) => labels.push((n, v)),
            _ => {
                let (at, r) = if symbol(*name).is_none() {
                    (2 * k, name)
                } else {
                    (2 * k + 1, value)
                };
                rule = Some(format!(
                    "labels_refs[{at}]: must index the {} symbols (got {r})",
                    symbols.len()
                ));
                break;
            }
        }
    }
    (labels, rule)
}

/// 1.0's metadata: family name to type.
fn families(r: &WriteRequest) -> HashMap<&str, MetricType> {
    r.metadata
        .iter()
        .filter_map(|m| {
            MetricType::try_from(m.r#type)
                .ok()
                .map(|t| (m.metric_family_name.as_str(), t))
        })
        .collect()
}

// === The mapper ===

/// Classic histogram buckets, grouped by family series, then by timestamp.
#[derive(Default)]
struct Groups {
    index: HashMap<SeriesKey, usize>,
    list: Vec<Group>,
}

struct Group {
    /// The family series: `<family>` with the bucket series' labels but `le`.
    key: SeriesKey,
    by_time: BTreeMap<i64, Vec<Bucket>>,
}

/// One `_bucket` sample.
struct Bucket {
    le: f64,
    sample: InSample,
    /// The sample's index in its series.
    index: usize,
    /// Its series: the input and its key (with `le`).
    input: usize,
    key: SeriesKey,
}

struct Mapper<'a> {
    inputs: &'a [Input<'a>],
    families: &'a HashMap<&'a str, MetricType>,
    streams: &'a mut Streams,
    now_ms: i64,
    options: &'a MapOptions,
    out: Mapped,
    groups: Groups,
    /// `<family>_sum` samples: (family series, timestamp) to value.
    sums: HashMap<(SeriesKey, i64), f64>,
}

impl<'a> Mapper<'a> {
    fn reject(&mut self, input: usize, rule: String) {
        let series = self
            .inputs
            .get(input)
            .map_or_else(String::new, |i| render(&i.labels, i.unreadable.is_some()));
        self.out.rejected.push(Rejection { series, rule });
    }

    fn series(&mut self, i: usize) {
        let inputs: &'a [Input<'a>] = self.inputs;
        let input = &inputs[i];
        if let Some(rule) = &input.unreadable {
            self.reject(i, format!("timeseries[{i}].{rule}"));
            return;
        }
        let (key, name) = match identity(&input.labels, i, self.options) {
            Ok(identity) => identity,
            Err(rule) => return self.reject(i, rule),
        };
        let kind = kind(name, input.own_type, self.families);
        let bucketed = kind == Kind::Counter && name.len() > "_bucket".len();
        if let (true, Some(family), Some(le)) =
            (bucketed, name.strip_suffix("_bucket"), key.dimension("le"))
        {
            match classic::parse_le(le) {
                Ok(le) => self.bucket_series(i, &key, family, le),
                Err(rule) => {
                    let j = input.labels.iter().position(|l| l.0 == "le").unwrap_or(0);
                    self.reject(i, format!("timeseries[{i}].labels[{j}].value: le {rule}"));
                    return;
                }
            }
        } else {
            if let Some(family) = name.strip_suffix("_sum") {
                let family_key = SeriesKey::new(
                    key.namespace_arc().clone(),
                    family,
                    key.dimensions().to_vec(),
                );
                for s in &input.samples {
                    if s.value.is_finite() {
                        self.sums.insert((family_key.clone(), s.timestamp), s.value);
                    }
                }
            }
            for (j, s) in input.samples.iter().enumerate() {
                self.sample(i, &key, kind, j, *s);
            }
        }
        let gauge_type = [input.own_type, self.families.get(name).copied()]
            .into_iter()
            .flatten()
            .next()
            .is_some_and(|t| matches!(t, MetricType::Gaugehistogram | MetricType::Gauge));
        for (j, h) in input.histograms.iter().enumerate() {
            self.histogram(i, &key, j, h, gauge_type);
        }
    }

    /// Holds a `_bucket` series' samples for grouping ([`Mapper::classic`]).
    fn bucket_series(&mut self, i: usize, key: &SeriesKey, family: &str, le: f64) {
        let family_key = SeriesKey::new(
            key.namespace_arc().clone(),
            family,
            key.dimensions()
                .iter()
                .filter(|d| d.name != "le")
                .map(|d| d.to_dimension())
                .collect(),
        );
        let g = match self.groups.index.get(&family_key) {
            Some(&g) => g,
            None => {
                self.groups.list.push(Group {
                    key: family_key.clone(),
                    by_time: BTreeMap::new(),
                });
                self.groups
                    .index
                    .insert(family_key, self.groups.list.len() - 1);
                self.groups.list.len() - 1
            }
        };
        let inputs: &'a [Input<'a>] = self.inputs;
        for (j, s) in inputs[i].samples.iter().enumerate() {
            self.groups.list[g]
                .by_time
                .entry(s.timestamp)
                .or_default()
                .push(Bucket {
                    le,
                    sample: *s,
                    index: j,
                    input: i,
                    key: key.clone(),
                });
        }
    }

    /// Rejects what `field` names: the rule follows its path (`suffix` starts with `.` or `:`).
    fn reject_at(&mut self, field: Field, suffix: String) {
        let path = field.path();
        self.reject(field.input, format!("{path}{suffix}"));
    }

    /// The timestamp rule, as a rejection of `field`.
    fn timestamp(&mut self, field: Field, timestamp: i64) -> bool {
        match validate::timestamp(
            Timestamp::from_millis(timestamp),
            Timestamp::from_millis(self.now_ms),
        ) {
            Ok(()) => true,
            Err(rule) => {
                self.reject_at(field, format!(".timestamp: {rule}"));
                false
            }
        }
    }

    /// A float sample of a plain series (or of a `_bucket` series stored as a counter).
    fn sample(&mut self, i: usize, key: &SeriesKey, kind: Kind, j: usize, s: InSample) {
        let field = Field::sample(i, j);
        if !self.timestamp(field, s.timestamp) {
            return;
        }
        if s.value.to_bits() == STALE_NAN_BITS {
            self.out.written.samples += 1;
            let kinds: &[StreamKind] = match kind {
                Kind::Counter => &[StreamKind::Sum],
                Kind::Gauge => &[],
            };
            return self.stale(key, s.timestamp, kinds);
        }
        if let Err(rule) = validate::value(s.value) {
            let rule = if s.value.is_nan() {
                format!("{rule}; the only NaN accepted is Prometheus' staleness marker")
            } else {
                rule
            };
            return self.reject_at(field, format!(".value: {rule}"));
        }
        let value = match kind {
            Kind::Gauge => s.value,
            Kind::Counter => {
                let current = s.value;
                let start = start_ns(s.start, self.inputs[i].created_ms, s.timestamp);
                let head = Head {
                    field,
                    start,
                    timestamp: s.timestamp,
                    restart: false,
                };
                match self.cumulative(&head, key, StreamKind::Sum, Totals::Sum(current)) {
                    Err(()) => return,
                    Ok(Some(MappedData::Value(increase))) => increase,
                    Ok(_) => {
                        self.out.written.samples += 1;
                        return;
                    }
                }
            }
        };
        if let Err(rule) = validate::value(value) {
            return self.reject_at(field, format!(".value: the increase {rule}"));
        }
        self.out.written.samples += 1;
        let from_stream = kind == Kind::Counter;
        self.emit(key, s.timestamp, j, MappedData::Value(value), from_stream);
    }

    /// A native histogram.
    fn histogram(&mut self, i: usize, key: &SeriesKey, j: usize, h: &Histogram, gauge_type: bool) {
        let field = Field {
            input: i,
            list: "histograms",
            index: j,
        };
        if !self.timestamp(field, h.timestamp) {
            return;
        }
        if h.sum.to_bits() == STALE_NAN_BITS {
            self.out.written.histograms += 1;
            let kinds = [StreamKind::ExponentialHistogram, StreamKind::Histogram];
            return self.stale(key, h.timestamp, &kinds);
        }
        let totals = match native::totals(h) {
            Ok(t) => t,
            Err(rule) => return self.reject_at(field, format!(".{rule}")),
        };
        let gauge = gauge_type || h.reset_hint == ResetHint::Gauge as i32;
        let head = Head {
            field,
            start: start_ns(h.start_timestamp, self.inputs[i].created_ms, h.timestamp),
            timestamp: h.timestamp,
            restart: h.reset_hint == ResetHint::Yes as i32,
        };
        let (kind, totals) = match totals {
            NativeTotals::Exponential(t) if gauge => {
                let data = exponential_distribution(&t);
                if self.distribution(field, key, h.timestamp, data, false) {
                    self.out.written.histograms += 1;
                }
                return;
            }
            NativeTotals::Custom(t) if gauge => {
                let data = explicit_distribution(&t);
                if self.distribution(field, key, h.timestamp, data, false) {
                    self.out.written.histograms += 1;
                }
                return;
            }
            NativeTotals::Exponential(t) => {
                (StreamKind::ExponentialHistogram, Totals::Exponential(t))
            }
            NativeTotals::Custom(t) => (StreamKind::Histogram, Totals::Histogram(t)),
        };
        let data = match self.cumulative(&head, key, kind, totals) {
            Err(()) => return,
            Ok(None) => {
                self.out.written.histograms += 1;
                return;
            }
            Ok(Some(data)) => data,
        };
        if self.distribution(field, key, h.timestamp, data, true) {
            self.out.written.histograms += 1;
        }
    }

    /// Records a distribution (`true`; `from_stream`: a cumulative histogram's increase), or
    /// counts an empty one as skipped (`true`), or rejects one whose sum is out of range
    /// (`false`).
    fn distribution(
        &mut self,
        field: Field,
        key: &SeriesKey,
        timestamp: i64,
        data: MappedData,
        from_stream: bool,
    ) -> bool {
        if let MappedData::Distribution { count, sum, .. } = &data {
            if *count == 0 {
                self.out.skipped += 1;
                return true;
            }
            if let Err(rule) = validate::value(*sum) {
                self.reject_at(field, format!(": the sum of the increase {rule}"));
                return false;
            }
        }
        self.emit(key, timestamp, field.index, data, from_stream);
        true
    }

    /// Every classic histogram group, once all the request's series are read.
    fn classic(&mut self) {
        let groups = std::mem::take(&mut self.groups.list);
        for group in groups {
            for (timestamp, buckets) in group.by_time {
                self.classic_group(&group.key, timestamp, buckets);
            }
        }
    }

    fn classic_group(&mut self, family: &SeriesKey, timestamp: i64, buckets: Vec<Bucket>) {
        let Some(inf) = buckets.iter().position(|b| b.le == f64::INFINITY) else {
            // A histogram split over requests: each bucket an ordinary counter series.
            for b in buckets {
                self.sample(b.input, &b.key, Kind::Counter, b.index, b.sample);
            }
            return;
        };
        let inf = &buckets[inf];
        let field = Field::sample(inf.input, inf.index);
        let mut valid = true;
        for b in &buckets {
            valid &= self.timestamp(Field::sample(b.input, b.index), timestamp);
        }
        if !valid {
            return;
        }
        if buckets
            .iter()
            .any(|b| b.sample.value.to_bits() == STALE_NAN_BITS)
        {
            self.out.written.samples += buckets.len() as u64;
            return self.stale(family, timestamp, &[StreamKind::Histogram]);
        }
        for b in &buckets {
            if let Err(rule) = validate::value(b.sample.value) {
                let rule = if b.sample.value.is_nan() {
                    format!("{rule}; the only NaN accepted is Prometheus' staleness marker")
                } else {
                    rule
                };
                valid = false;
                self.reject_at(Field::sample(b.input, b.index), format!(".value: {rule}"));
            }
        }
        if !valid {
            return;
        }
        let pairs: Vec<(f64, f64)> = buckets.iter().map(|b| (b.le, b.sample.value)).collect();
        let sum = self.sums.get(&(family.clone(), timestamp)).copied();
        let totals = match classic::totals(&pairs, sum) {
            Ok(t) => t,
            Err(rule) => {
                let name = quote(family.metric_name());
                return self.reject_at(
                    field,
                    format!(": the classic histogram {name} at this time: {rule}"),
                );
            }
        };
        self.out.written.samples += buckets.len() as u64;
        let head = Head {
            field,
            start: start_ns(
                inf.sample.start,
                self.inputs[inf.input].created_ms,
                timestamp,
            ),
            timestamp,
            restart: false,
        };
        let totals = Totals::Histogram(totals);
        let data = match self.cumulative(&head, family, StreamKind::Histogram, totals) {
            Err(()) => {
                self.out.written.samples -= buckets.len() as u64;
                return;
            }
            Ok(None) => return,
            Ok(Some(data)) => data,
        };
        if !self.distribution(field, family, timestamp, data, true) {
            self.out.written.samples -= buckets.len() as u64;
        }
    }

    fn emit(
        &mut self,
        key: &SeriesKey,
        timestamp: i64,
        point: usize,
        data: MappedData,
        from_stream: bool,
    ) {
        self.out.points.push(MappedPoint {
            series: key.clone(),
            unit: Unit::None,
            timestamp_ms: timestamp,
            point,
            data,
            from_stream,
        });
    }

    /// A staleness marker: reported, and the series' streams of `kinds` forgotten when the
    /// marker is newer than their last sample.
    fn stale(&mut self, key: &SeriesKey, timestamp: i64, kinds: &[StreamKind]) {
        self.out.stale.push((key.clone(), timestamp));
        for &kind in kinds {
            let stream = StreamKey {
                series: key.clone(),
                kind,
                origin: ORIGIN,
            };
            if self
                .streams
                .get(&stream)
                .is_some_and(|s| time_ns(timestamp) > s.time_unix_nano)
            {
                self.apply(StreamUpdate::Remove { key: stream });
            }
        }
    }

    /// The cumulative path: finds the stream, applies the sample to it ([`step`]), records
    /// the new state. `Ok(Some(data))`: what the increase records; `Ok(None)` when there is
    /// nothing to record (counted as skipped); `Err(())` when rejected (the stream limit).
    fn cumulative(
        &mut self,
        head: &Head,
        key: &SeriesKey,
        kind: StreamKind,
        totals: Totals,
    ) -> Result<Option<MappedData>, ()> {
        let stream = StreamKey {
            series: key.clone(),
            kind,
            origin: ORIGIN,
        };
        if self.streams.get(&stream).is_none() && self.streams.len() >= self.options.max_streams {
            let max = self.options.max_streams;
            self.reject_at(
                head.field,
                format!(
                    ": stream limit: must be one of the at most {max} cumulative streams kept (a new stream starts once idle ones are forgotten)"
                ),
            );
            return Err(());
        }
        let point = CumulativePoint {
            key: stream,
            unit: Unit::None,
            timestamp_ms: head.timestamp,
            start: head.start,
            time: time_ns(head.timestamp),
            seen_ms: self.now_ms,
            rule: StartRule::Prometheus {
                restart: head.restart,
            },
            totals,
        };
        let Some(Step {
            state, increase, ..
        }) = step(self.streams.get(&point.key), &point)
        else {
            self.out.skipped += 1;
            return Ok(None);
        };
        self.apply(StreamUpdate::Set {
            key: point.key.clone(),
            state,
        });
        self.out.cumulative.push(point);
        match increase {
            Some(increase) => Ok(Some(increase_data(&increase))),
            None => {
                // Like Prometheus' increase(), nothing before the first sample is counted.
                self.out.skipped += 1;
                Ok(None)
            }
        }
    }

    /// Applies `update`, records it and its inverse.
    fn apply(&mut self, update: StreamUpdate) {
        let inverse = self.streams.apply_undoable(&update);
        self.out.undo.push(inverse);
        self.out.stream_updates.push(update);
    }
}

/// A sample or histogram of an input series, named in a rejection only (the path is made
/// when needed, not per sample).
#[derive(Clone, Copy, Debug)]
struct Field {
    input: usize,
    list: &'static str,
    index: usize,
}

impl Field {
    fn sample(input: usize, index: usize) -> Self {
        Field {
            input,
            list: "samples",
            index,
        }
    }

    fn path(self) -> String {
        format!("timeseries[{}].{}[{}]", self.input, self.list, self.index)
    }
}

/// What the cumulative path needs of a sample or histogram.
struct Head {
    field: Field,
    /// Created timestamp, ns (0: none).
    start: u64,
    timestamp: i64,
    /// A reset hint says the histogram counts from zero again.
    restart: bool,
}

/// The created timestamp in ns: the sample's, else the series' (2.0 drafts); 0 when neither
/// is set, or when it is later than the sample itself (which cannot be).
fn start_ns(start_ms: i64, created_ms: i64, timestamp: i64) -> u64 {
    let ms = if start_ms != 0 { start_ms } else { created_ms };
    if ms > 0 && ms <= timestamp {
        time_ns(ms)
    } else {
        0
    }
}

fn time_ns(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
}

// === Series identity ===

fn identity<'a>(
    labels: &[(&'a str, &'a str)],
    i: usize,
    options: &MapOptions,
) -> Result<(SeriesKey, &'a str), String> {
    let mut name = None;
    let mut namespace = None;
    let mut dimensions = Vec::new();
    for (j, &(label, value)) in labels.iter().enumerate() {
        let field = || format!("timeseries[{i}].labels[{j}]");
        if let Some(prev) = labels[..j].iter().position(|p| p.0 == label) {
            return Err(format!(
                "{}.name: label {} appears more than once (also labels[{prev}])",
                field(),
                quote(label)
            ));
        }
        if !is_label_name(label) {
            return Err(format!(
                "{}.name: {} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                field(),
                quote(label)
            ));
        }
        if value.is_empty() {
            continue; // Prometheus: an empty value is the same as no label.
        }
        if label == "__name__" {
            validate::metric_name(value)
                .map_err(|r| format!("{}.value: metric name (__name__) {r}", field()))?;
            name = Some(value);
        } else if label == options.namespace_label {
            validate::namespace(value).map_err(|r| {
                format!("{}.value: namespace (label {}) {r}", field(), quote(label))
            })?;
            namespace = Some(value);
        } else {
            validate::dimension_name(label)
                .map_err(|r| format!("{}.name: dimension name {r}", field()))?;
            validate::dimension_value(value)
                .map_err(|r| format!("{}.value: dimension value {r}", field()))?;
            dimensions.push(Dimension::new(label, value));
        }
    }
    let Some(name) = name else {
        return Err(format!(
            "timeseries[{i}].labels: must have a __name__ label (the metric name)"
        ));
    };
    if dimensions.len() > MAX_DIMENSIONS {
        return Err(format!(
            "timeseries[{i}].labels: at most {MAX_DIMENSIONS} labels besides __name__ and the namespace label {} (got {})",
            quote(&options.namespace_label),
            dimensions.len()
        ));
    }
    let key = SeriesKey::new(namespace.unwrap_or(DEFAULT_NAMESPACE), name, dimensions);
    Ok((key, name))
}

/// Counter or gauge. 2.0: the series' own metadata type when it has one (counter; histogram
/// and summary `_count`/`_sum`, and histogram `_bucket`, are counters; gauge, gauge
/// histogram, info, stateset and a summary's quantiles are gauges). 1.0: the metadata for
/// exactly this name if it says counter or gauge; else a gauge histogram's
/// `_bucket`/`_count`/`_sum` are gauges; else by suffix.
fn kind(name: &str, own: Option<MetricType>, families: &HashMap<&str, MetricType>) -> Kind {
    match own {
        Some(MetricType::Counter | MetricType::Histogram) => return Kind::Counter,
        Some(MetricType::Summary) => {
            return if name.ends_with("_count") || name.ends_with("_sum") {
                Kind::Counter
            } else {
                Kind::Gauge
            };
        }
        Some(
            MetricType::Gauge
            | MetricType::Gaugehistogram
            | MetricType::Info
            | MetricType::Stateset,
        ) => return Kind::Gauge,
        Some(MetricType::Unknown) | None => {}
    }
    match families.get(name) {
        Some(MetricType::Counter) => return Kind::Counter,
        Some(MetricType::Gauge) => return Kind::Gauge,
        _ => {}
    }
    for suffix in ["_bucket", "_count", "_sum"] {
        if let Some(family) = name.strip_suffix(suffix) {
            return if families.get(family) == Some(&MetricType::Gaugehistogram) {
                Kind::Gauge
            } else {
                Kind::Counter
            };
        }
    }
    if name.ends_with("_total") {
        Kind::Counter
    } else {
        Kind::Gauge
    }
}

/// Prometheus' label name rule, `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `name{label="value",…}` for messages; at most 32 labels shown, values shortened;
/// `truncated` when the labels could not all be read.
fn render(labels: &[(&str, &str)], truncated: bool) -> String {
    let name = labels
        .iter()
        .find(|l| l.0 == "__name__")
        .map_or("", |l| l.1);
    let mut out = quote(name).trim_matches('"').to_owned();
    let others: Vec<String> = labels
        .iter()
        .filter(|l| l.0 != "__name__")
        .take(32)
        .map(|l| format!("{}={}", quote(l.0).trim_matches('"'), quote(l.1)))
        .collect();
    out.push('{');
    out.push_str(&others.join(","));
    let names = labels.iter().filter(|l| l.0 == "__name__").count();
    if truncated || labels.len() > others.len() + names {
        out.push_str(",…");
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests;
