//! The mapping: a decoded OTLP request to Thermostat observations (`docs/otlp.md` is its
//! specification), a pure function of the request, the stream state and `now`.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, DataPointFlags, ExponentialHistogramDataPoint, HistogramDataPoint,
    Metric, NumberDataPoint, SummaryDataPoint, exponential_histogram_data_point::Buckets,
    metric::Data, number_data_point,
};
use thermostat_metrics::validate::{self, MAX_DIMENSIONS, quote};
use thermostat_metrics::{Dimension, SeriesKey, Timestamp, Unit};

use crate::attributes::{self, RenderError};
use crate::limits::{MAX_BUCKETS, MAX_SCALE, MIN_SCALE};
use crate::rejection::{RejectReason, Rejection};
use crate::unit::cloudwatch_unit;
use thermostat_metrics::cumulative::streams::{
    BucketRange, ExponentialTotals, HistogramTotals, StreamKey, StreamKind, StreamUpdate, Streams,
    Totals,
};
use thermostat_metrics::cumulative::{
    CumulativePoint, MappedData, MappedPoint, StartRule, Step, buckets, explicit_distribution,
    exponential_distribution, increase_data, step,
};

/// The namespace of a resource with neither `service.namespace` nor `service.name`.
pub const DEFAULT_NAMESPACE: &str = "OTLP";

/// Longest dimension value: CloudWatch's 1,024 characters (ASCII, so bytes).
const MAX_DIMENSION_VALUE_BYTES: usize = 1024;

/// The settings the mapping follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapOptions {
    /// Resource attributes that become dimensions besides `service.name`,
    /// `service.namespace` (when it is not the namespace) and `host.name` (the setting
    /// `otlp.resource_dimensions`).
    pub resource_dimensions: Vec<String>,
    /// Most cumulative streams kept: a point that would start one more is rejected.
    pub max_streams: usize,
    /// A stream not seen for longer than this (ms) may be forgotten: [`map`] forgets idle
    /// streams when it needs room for a new one, [`Streams::expire`] whenever called.
    pub stream_idle_ms: i64,
}

/// Points that were neither kept nor rejected, by why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Points flagged `NO_RECORDED_VALUE` (a sender's staleness marker).
    pub no_recorded_value: usize,
    /// Cumulative points not newer than their stream's previous point (retries, duplicates,
    /// out of order): they hold nothing new.
    pub stale: usize,
    /// Histograms and summaries that counted nothing in their interval.
    pub empty: usize,
}

/// The result of mapping one request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mapped {
    /// The observations, in request order.
    pub points: Vec<MappedPoint>,
    /// The points refused, in request order.
    pub rejected: Vec<Rejection>,
    /// The points passed over.
    pub skipped: Skipped,
    /// Cumulative streams that counted from zero again: a new start time, or a total that went
    /// down without one.
    pub resets: usize,
    /// The changes made to the [`Streams`], in the order they were applied: log them.
    pub stream_updates: Vec<StreamUpdate>,
    /// The changes that undo `stream_updates`, in the order to apply them (the last change's
    /// inverse first): applied to the state after the call, they give the state before it.
    /// For a caller whose log refuses the request.
    pub undo: Vec<StreamUpdate>,
    /// The cumulative points that moved their stream on, in request order: what cluster mode
    /// sends to the owner of each one's partition, which turns them into increases itself
    /// (the points they gave here are marked [`MappedPoint::from_stream`]).
    pub cumulative: Vec<CumulativePoint>,
}

/// Maps a decoded request onto Thermostat observations, updating `streams` (through
/// [`Streams::apply`] only) and returning the updates in order. Never fails: a point that
/// breaks a rule is a [`Rejection`] and the others are kept. `now_ms` is the server's time
/// (for the timestamp rules and stream idleness).
pub fn map(
    request: &ExportMetricsServiceRequest,
    streams: &mut Streams,
    now_ms: i64,
    options: &MapOptions,
) -> Mapped {
    let mut mapper = Mapper {
        streams,
        now_ms,
        options,
        out: Mapped::default(),
        expired: false,
    };
    for resource_metrics in &request.resource_metrics {
        let attributes: &[KeyValue] = resource_metrics
            .resource
            .as_ref()
            .map_or(&[], |r| r.attributes.as_slice());
        let resource = Resource::new(attributes, options);
        let mut resource_hash = xxhash_rust::xxh3::Xxh3::new();
        attributes::hash_attributes(&mut resource_hash, attributes);
        for scope_metrics in &resource_metrics.scope_metrics {
            let mut hash = resource_hash.clone();
            if let Some(scope) = &scope_metrics.scope {
                for part in [scope.name.as_bytes(), scope.version.as_bytes()] {
                    hash.update(&(part.len() as u64).to_le_bytes());
                    hash.update(part);
                }
            }
            let origin = hash.digest();
            for metric in &scope_metrics.metrics {
                mapper.metric(&resource, origin, metric);
            }
        }
    }
    mapper.out.undo.reverse();
    mapper.out
}

/// What a resource gives each of its points: the namespace and the resource dimensions, or
/// the rule that rejects all its points.
struct Resource {
    identity: Result<(Arc<str>, Vec<Dimension>), String>,
}

/// The attribute `key`, unless absent or an empty string (which counts as absent).
fn present<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    let value = attributes::find(attributes, key)?.value.as_ref();
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) if s.is_empty() => None,
        _ => value,
    }
}

fn render_rule(field: &str, error: RenderError) -> String {
    format!("{field}: {}", error.rule())
}

impl Resource {
    fn new(attributes: &[KeyValue], options: &MapOptions) -> Self {
        Resource {
            identity: Self::identity(attributes, options),
        }
    }

    fn identity(
        attributes: &[KeyValue],
        options: &MapOptions,
    ) -> Result<(Arc<str>, Vec<Dimension>), String> {
        let render = |key: &str, value: &AnyValue| {
            attributes::render(Some(value), MAX_DIMENSION_VALUE_BYTES)
                .map_err(|e| render_rule(&format!("resource.attributes[{}]", quote(key)), e))
        };
        let (namespace, source) = match (
            present(attributes, "service.namespace"),
            present(attributes, "service.name"),
        ) {
            (Some(v), _) => (render("service.namespace", v)?, "service.namespace"),
            (None, Some(v)) => (render("service.name", v)?, "service.name"),
            (None, None) => (DEFAULT_NAMESPACE.to_owned(), ""),
        };
        validate::namespace(&namespace).map_err(|rule| {
            format!(
                "namespace (the resource attribute {source} {}): {rule}",
                quote(&namespace)
            )
        })?;
        let mut dimensions: Vec<Dimension> = Vec::new();
        let wanted = ["service.name", "service.namespace", "host.name"]
            .into_iter()
            .chain(options.resource_dimensions.iter().map(String::as_str));
        for key in wanted {
            if dimensions.iter().any(|d| d.name == key) {
                continue;
            }
            let Some(value) = present(attributes, key) else {
                continue;
            };
            let value = render(key, value)?;
            if key == "service.namespace" && value == namespace {
                continue;
            }
            let field = format!("resource.attributes[{}]", quote(key));
            validate::dimension_name(key)
                .map_err(|rule| format!("{field} (a dimension name): {rule}"))?;
            validate::dimension_value(&value)
                .map_err(|rule| format!("{field} (a dimension value): {rule}"))?;
            dimensions.push(Dimension::new(key, value));
        }
        Ok((Arc::from(namespace), dimensions))
    }
}

/// Who a point is, once its identity passed the rules.
struct Identity {
    series: SeriesKey,
    timestamp_ms: i64,
}

/// Common fields of OTLP's data points.
struct PointHead<'a> {
    index: usize,
    attributes: &'a [KeyValue],
    start: u64,
    time: u64,
    flags: u32,
}

struct Mapper<'a> {
    streams: &'a mut Streams,
    now_ms: i64,
    options: &'a MapOptions,
    out: Mapped,
    /// Whether idle streams were already forgotten in this call.
    expired: bool,
}

fn temporality(value: i32) -> Result<bool, String> {
    match AggregationTemporality::try_from(value) {
        Ok(AggregationTemporality::Delta) => Ok(false),
        Ok(AggregationTemporality::Cumulative) => Ok(true),
        _ => Err(format!(
            "aggregation_temporality: must be 1 (DELTA) or 2 (CUMULATIVE) (got {value})"
        )),
    }
}

fn finite(field: &str, value: f64) -> Result<f64, (RejectReason, String)> {
    validate::value(value)
        .map(|()| value)
        .map_err(|rule| (RejectReason::Value, format!("{field}: {rule}")))
}

fn finite_opt(field: &str, value: Option<f64>) -> Result<Option<f64>, (RejectReason, String)> {
    value.map(|v| finite(field, v)).transpose()
}

fn malformed<T>(rule: String) -> Result<T, (RejectReason, String)> {
    Err((RejectReason::Malformed, rule))
}

fn check_count(count: u64) -> Result<(), (RejectReason, String)> {
    validate::sample_count(count as f64)
        .map_err(|rule| (RejectReason::Value, format!("count: {rule}")))
}

fn check_min_max(min: Option<f64>, max: Option<f64>) -> Result<(), (RejectReason, String)> {
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        return malformed(format!(
            "min: must not exceed max (got min {min}, max {max})"
        ));
    }
    Ok(())
}

/// The totals of an explicit-bucket histogram point, once its rules are checked.
fn histogram_totals(p: &HistogramDataPoint) -> Result<HistogramTotals, (RejectReason, String)> {
    check_count(p.count)?;
    let sum = finite_opt("sum", p.sum)?;
    let min = finite_opt("min", p.min)?;
    let max = finite_opt("max", p.max)?;
    check_min_max(min, max)?;
    if p.explicit_bounds.len() > MAX_BUCKETS || p.bucket_counts.len() > MAX_BUCKETS + 1 {
        return malformed(format!(
            "explicit_bounds: must have at most {MAX_BUCKETS} entries (got {})",
            p.explicit_bounds.len()
        ));
    }
    for (i, b) in p.explicit_bounds.iter().enumerate() {
        finite(&format!("explicit_bounds[{i}]"), *b)?;
        if i > 0 && *b <= p.explicit_bounds[i - 1] {
            return malformed(format!(
                "explicit_bounds[{i}]: must be greater than the bound before it (got {b} after {})",
                p.explicit_bounds[i - 1]
            ));
        }
    }
    if !p.bucket_counts.is_empty() || !p.explicit_bounds.is_empty() {
        if p.bucket_counts.len() != p.explicit_bounds.len() + 1 {
            return malformed(format!(
                "bucket_counts: must have one entry more than explicit_bounds (got {} and {})",
                p.bucket_counts.len(),
                p.explicit_bounds.len()
            ));
        }
        let total: u128 = p.bucket_counts.iter().map(|&c| u128::from(c)).sum();
        if total != u128::from(p.count) {
            return malformed(format!(
                "bucket_counts: must add up to count (got {total}, count {})",
                p.count
            ));
        }
    } else if sum.is_none() && p.count > 0 {
        return malformed("sum: must be present when the histogram has no buckets".into());
    }
    Ok(HistogramTotals {
        count: p.count,
        sum,
        min,
        max,
        bounds: p.explicit_bounds.clone(),
        counts: p.bucket_counts.clone(),
    })
}

fn bucket_range(
    field: &str,
    scale: i32,
    buckets: Option<&Buckets>,
) -> Result<(BucketRange, u128), (RejectReason, String)> {
    let Some(b) = buckets else {
        return Ok((BucketRange::default(), 0));
    };
    if b.bucket_counts.len() > MAX_BUCKETS {
        return malformed(format!(
            "{field}.bucket_counts: must have at most {MAX_BUCKETS} entries (got {})",
            b.bucket_counts.len()
        ));
    }
    for (i, &c) in b.bucket_counts.iter().enumerate() {
        let index = i64::from(b.offset) + i as i64;
        if c > 0 && buckets::exponential_representative(scale, index).is_none() {
            return Err((
                RejectReason::Value,
                format!(
                    "{field}.bucket_counts[{i}]: must be 0, since bucket {index} at scale {scale} holds no finite number (got {c})"
                ),
            ));
        }
    }
    Ok((
        BucketRange {
            offset: b.offset,
            counts: b.bucket_counts.clone(),
        },
        b.bucket_counts.iter().map(|&c| u128::from(c)).sum(),
    ))
}

/// The totals of an exponential histogram point, once its rules are checked.
fn exponential_totals(
    p: &ExponentialHistogramDataPoint,
) -> Result<ExponentialTotals, (RejectReason, String)> {
    check_count(p.count)?;
    let sum = finite_opt("sum", p.sum)?;
    let min = finite_opt("min", p.min)?;
    let max = finite_opt("max", p.max)?;
    check_min_max(min, max)?;
    if !(MIN_SCALE..=MAX_SCALE).contains(&p.scale) {
        return malformed(format!(
            "scale: must be {MIN_SCALE} to {MAX_SCALE} (got {})",
            p.scale
        ));
    }
    if !(p.zero_threshold.is_finite() && p.zero_threshold >= 0.0) {
        return malformed(format!(
            "zero_threshold: must be finite and not negative (got {})",
            p.zero_threshold
        ));
    }
    let (positive, n_positive) = bucket_range("positive", p.scale, p.positive.as_ref())?;
    let (negative, n_negative) = bucket_range("negative", p.scale, p.negative.as_ref())?;
    let total = u128::from(p.zero_count) + n_positive + n_negative;
    if total != u128::from(p.count) {
        return malformed(format!(
            "count: must equal zero_count plus the positive and negative bucket counts (got {}, they add up to {total})",
            p.count
        ));
    }
    Ok(ExponentialTotals {
        count: p.count,
        sum,
        min,
        max,
        scale: p.scale,
        zero_count: p.zero_count,
        zero_threshold: p.zero_threshold,
        positive,
        negative,
    })
}

/// Checks what CloudWatch checks of the data a point records (an increase can overflow).
fn check_data(data: &MappedData) -> Result<(), (RejectReason, String)> {
    match data {
        MappedData::Value(v) => finite("value", *v).map(|_| ()),
        MappedData::Distribution { sum, .. } => finite("sum", *sum).map(|_| ()),
    }
}

impl Mapper<'_> {
    fn reject(&mut self, metric: &Metric, point: usize, reason: RejectReason, rule: String) {
        self.out.rejected.push(Rejection {
            metric: metric.name.clone(),
            point,
            rule,
            reason,
        });
    }

    fn metric(&mut self, resource: &Resource, origin: u64, metric: &Metric) {
        let points = match &metric.data {
            None => 0,
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
        };
        let identity = match &resource.identity {
            Ok(identity) => validate::metric_name(&metric.name)
                .map(|()| identity)
                .map_err(|rule| format!("name: {rule}")),
            Err(rule) => Err(rule.clone()),
        };
        let (namespace, resource_dimensions) = match identity {
            Ok(identity) => identity,
            Err(rule) => {
                for i in 0..points {
                    self.reject(metric, i, RejectReason::Identity, rule.clone());
                }
                return;
            }
        };
        let name: Arc<str> = Arc::from(metric.name.as_str());
        let context = MetricContext {
            metric,
            namespace,
            name: &name,
            resource_dimensions,
            unit: cloudwatch_unit(&metric.unit),
            origin,
        };
        match &metric.data {
            None => {}
            Some(Data::Gauge(g)) => {
                for (i, p) in g.data_points.iter().enumerate() {
                    self.number_point(&context, i, p, NumberKind::Gauge);
                }
            }
            Some(Data::Sum(s)) => {
                let kind = if !s.is_monotonic {
                    Ok(NumberKind::Gauge)
                } else {
                    temporality(s.aggregation_temporality).map(|cumulative| {
                        if cumulative {
                            NumberKind::CumulativeSum
                        } else {
                            NumberKind::DeltaSum
                        }
                    })
                };
                for (i, p) in s.data_points.iter().enumerate() {
                    match &kind {
                        Ok(kind) => self.number_point(&context, i, p, *kind),
                        Err(rule) => {
                            self.reject(metric, i, RejectReason::Malformed, rule.clone());
                        }
                    }
                }
            }
            Some(Data::Histogram(h)) => {
                let cumulative = temporality(h.aggregation_temporality);
                for (i, p) in h.data_points.iter().enumerate() {
                    match &cumulative {
                        Ok(cumulative) => self.histogram_point(&context, i, p, *cumulative),
                        Err(rule) => {
                            self.reject(metric, i, RejectReason::Malformed, rule.clone());
                        }
                    }
                }
            }
            Some(Data::ExponentialHistogram(h)) => {
                let cumulative = temporality(h.aggregation_temporality);
                for (i, p) in h.data_points.iter().enumerate() {
                    match &cumulative {
                        Ok(cumulative) => self.exponential_point(&context, i, p, *cumulative),
                        Err(rule) => {
                            self.reject(metric, i, RejectReason::Malformed, rule.clone());
                        }
                    }
                }
            }
            Some(Data::Summary(s)) => {
                for (i, p) in s.data_points.iter().enumerate() {
                    self.summary_point(&context, i, p);
                }
            }
        }
    }

    /// The checks every point meets: skipped when it records nothing, else its timestamp
    /// and series identity. `None` when the point was skipped or rejected.
    fn head(&mut self, context: &MetricContext<'_>, head: &PointHead<'_>) -> Option<Identity> {
        if head.flags & DataPointFlags::NoRecordedValueMask as u32 != 0 {
            self.out.skipped.no_recorded_value += 1;
            return None;
        }
        let reject = |this: &mut Self, reason, rule| {
            this.reject(context.metric, head.index, reason, rule);
            None
        };
        if head.time == 0 {
            return reject(
                self,
                RejectReason::Timestamp,
                "time_unix_nano: must be set (got 0)".into(),
            );
        }
        let timestamp_ms = i64::try_from(head.time / 1_000_000).unwrap_or(i64::MAX);
        if let Err(rule) = validate::timestamp(
            Timestamp::from_millis(timestamp_ms),
            Timestamp::from_millis(self.now_ms),
        ) {
            return reject(
                self,
                RejectReason::Timestamp,
                format!("time_unix_nano: {rule}"),
            );
        }
        match dimensions(head.attributes, context.resource_dimensions) {
            Ok(dimensions) => Some(Identity {
                series: SeriesKey::new(
                    Arc::clone(context.namespace),
                    Arc::clone(context.name),
                    dimensions,
                ),
                timestamp_ms,
            }),
            Err(rule) => reject(self, RejectReason::Identity, rule),
        }
    }

    fn emit(
        &mut self,
        context: &MetricContext<'_>,
        index: usize,
        identity: Identity,
        data: MappedData,
        from_stream: bool,
    ) {
        self.out.points.push(MappedPoint {
            series: identity.series,
            unit: context.unit,
            timestamp_ms: identity.timestamp_ms,
            point: index,
            data,
            from_stream,
        });
    }

    /// Whether a new stream may start: below `max_streams`, after forgetting idle streams once
    /// per call if needed.
    fn room_for_a_stream(&mut self) -> bool {
        if self.streams.len() < self.options.max_streams {
            return true;
        }
        if !self.expired {
            self.expired = true;
            for update in self.streams.idle(self.now_ms, self.options.stream_idle_ms) {
                self.apply(update);
            }
        }
        self.streams.len() < self.options.max_streams
    }

    /// The cumulative path shared by every kind: finds the stream, applies the point to it
    /// ([`step`]), records the new state and returns what the increase records (`None`:
    /// rejected or stale).
    fn cumulative(
        &mut self,
        context: &MetricContext<'_>,
        identity: &Identity,
        head: &PointHead<'_>,
        kind: StreamKind,
        totals: Totals,
    ) -> Option<MappedData> {
        let key = StreamKey {
            series: identity.series.clone(),
            kind,
            origin: context.origin,
        };
        if self.streams.get(&key).is_none() && !self.room_for_a_stream() {
            let max = self.options.max_streams;
            self.reject(
                context.metric,
                head.index,
                RejectReason::StreamLimit,
                format!(
                    "stream: must be one of the at most {max} cumulative streams kept (a new stream starts when idle ones are forgotten; delta temporality needs none)"
                ),
            );
            return None;
        }
        let point = CumulativePoint {
            key,
            unit: context.unit,
            timestamp_ms: identity.timestamp_ms,
            start: head.start,
            time: head.time,
            seen_ms: self.now_ms,
            rule: StartRule::Otlp,
            totals,
        };
        let Some(Step {
            state,
            increase,
            reset,
        }) = step(self.streams.get(&point.key), &point)
        else {
            self.out.skipped.stale += 1;
            return None;
        };
        if reset {
            self.out.resets += 1;
        }
        self.apply(StreamUpdate::Set {
            key: point.key.clone(),
            state,
        });
        self.out.cumulative.push(point);
        increase.as_ref().map(increase_data)
    }

    /// Applies `update`, records it and its inverse.
    fn apply(&mut self, update: StreamUpdate) {
        let inverse = self.streams.apply_undoable(&update);
        self.out.undo.push(inverse);
        self.out.stream_updates.push(update);
    }

    fn number_point(
        &mut self,
        context: &MetricContext<'_>,
        index: usize,
        p: &NumberDataPoint,
        kind: NumberKind,
    ) {
        let head = PointHead {
            index,
            attributes: &p.attributes,
            start: p.start_time_unix_nano,
            time: p.time_unix_nano,
            flags: p.flags,
        };
        let Some(identity) = self.head(context, &head) else {
            return;
        };
        let value = match p.value {
            Some(number_data_point::Value::AsDouble(d)) => finite("as_double", d),
            Some(number_data_point::Value::AsInt(i)) => finite("as_int", i as f64),
            None => malformed(
                "value: must be as_double or as_int (neither is set; in OTLP JSON, a JSON number)"
                    .into(),
            ),
        };
        let value = match value {
            Ok(v) => v,
            Err((reason, rule)) => return self.reject(context.metric, index, reason, rule),
        };
        let (data, from_stream) = match kind {
            NumberKind::Gauge | NumberKind::DeltaSum => (MappedData::Value(value), false),
            NumberKind::CumulativeSum => {
                let totals = Totals::Sum(value);
                match self.cumulative(context, &identity, &head, StreamKind::Sum, totals) {
                    Some(increase) => (increase, true),
                    None => return,
                }
            }
        };
        if let Err((reason, rule)) = check_data(&data) {
            return self.reject(context.metric, index, reason, rule);
        }
        self.emit(context, index, identity, data, from_stream);
    }

    /// Records a distribution (`from_stream`: a cumulative point's increase), or counts it as
    /// empty.
    fn distribution(
        &mut self,
        context: &MetricContext<'_>,
        index: usize,
        identity: Identity,
        data: MappedData,
        from_stream: bool,
    ) {
        if let MappedData::Distribution { count: 0, .. } = data {
            self.out.skipped.empty += 1;
            return;
        }
        if let Err((reason, rule)) = check_data(&data) {
            return self.reject(context.metric, index, reason, rule);
        }
        self.emit(context, index, identity, data, from_stream);
    }

    fn histogram_point(
        &mut self,
        context: &MetricContext<'_>,
        index: usize,
        p: &HistogramDataPoint,
        cumulative: bool,
    ) {
        let head = PointHead {
            index,
            attributes: &p.attributes,
            start: p.start_time_unix_nano,
            time: p.time_unix_nano,
            flags: p.flags,
        };
        let Some(identity) = self.head(context, &head) else {
            return;
        };
        let totals = match histogram_totals(p) {
            Ok(t) => t,
            Err((reason, rule)) => return self.reject(context.metric, index, reason, rule),
        };
        if !cumulative {
            let data = explicit_distribution(&totals);
            return self.distribution(context, index, identity, data, false);
        }
        let totals = Totals::Histogram(totals);
        let kind = StreamKind::Histogram;
        if let Some(data) = self.cumulative(context, &identity, &head, kind, totals) {
            self.distribution(context, index, identity, data, true);
        }
    }

    fn exponential_point(
        &mut self,
        context: &MetricContext<'_>,
        index: usize,
        p: &ExponentialHistogramDataPoint,
        cumulative: bool,
    ) {
        let head = PointHead {
            index,
            attributes: &p.attributes,
            start: p.start_time_unix_nano,
            time: p.time_unix_nano,
            flags: p.flags,
        };
        let Some(identity) = self.head(context, &head) else {
            return;
        };
        let totals = match exponential_totals(p) {
            Ok(t) => t,
            Err((reason, rule)) => return self.reject(context.metric, index, reason, rule),
        };
        if !cumulative {
            let data = exponential_distribution(&totals);
            return self.distribution(context, index, identity, data, false);
        }
        let totals = Totals::Exponential(totals);
        let kind = StreamKind::ExponentialHistogram;
        if let Some(data) = self.cumulative(context, &identity, &head, kind, totals) {
            self.distribution(context, index, identity, data, true);
        }
    }

    fn summary_point(&mut self, context: &MetricContext<'_>, index: usize, p: &SummaryDataPoint) {
        let head = PointHead {
            index,
            attributes: &p.attributes,
            start: p.start_time_unix_nano,
            time: p.time_unix_nano,
            flags: p.flags,
        };
        let Some(identity) = self.head(context, &head) else {
            return;
        };
        let checked = check_count(p.count).and_then(|()| finite("sum", p.sum));
        if let Err((reason, rule)) = checked {
            return self.reject(context.metric, index, reason, rule);
        }
        let totals = Totals::Summary {
            count: p.count,
            sum: p.sum,
        };
        if let Some(data) = self.cumulative(context, &identity, &head, StreamKind::Summary, totals)
        {
            self.distribution(context, index, identity, data, true);
        }
    }
}

/// What a metric gives each of its points.
struct MetricContext<'a> {
    metric: &'a Metric,
    namespace: &'a Arc<str>,
    name: &'a Arc<str>,
    resource_dimensions: &'a [Dimension],
    unit: Unit,
    origin: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NumberKind {
    Gauge,
    DeltaSum,
    CumulativeSum,
}

/// A point's dimensions: its attributes, then the resource's dimensions whose names the
/// attributes do not already use (a point's attribute wins over the resource's).
fn dimensions(attributes: &[KeyValue], resource: &[Dimension]) -> Result<Vec<Dimension>, String> {
    if attributes.len() > MAX_DIMENSIONS {
        return Err(format!(
            "dimensions: must be at most {MAX_DIMENSIONS} (got {} point attributes); none is dropped",
            attributes.len()
        ));
    }
    let mut dimensions: Vec<Dimension> = Vec::with_capacity(attributes.len() + resource.len());
    for (i, kv) in attributes.iter().enumerate() {
        let field = format!("attributes[{i}]");
        validate::dimension_name(&kv.key)
            .map_err(|rule| format!("{field}.key (a dimension name): {rule}"))?;
        if dimensions.iter().any(|d| d.name == kv.key) {
            return Err(format!(
                "{field}.key: must be unique (the key {} appears more than once)",
                quote(&kv.key)
            ));
        }
        let value = attributes::render(kv.value.as_ref(), MAX_DIMENSION_VALUE_BYTES)
            .map_err(|e| render_rule(&format!("{field}.value (key {})", quote(&kv.key)), e))?;
        validate::dimension_value(&value).map_err(|rule| {
            format!(
                "{field}.value (key {}, a dimension value): {rule}",
                quote(&kv.key)
            )
        })?;
        dimensions.push(Dimension::new(kv.key.clone(), value));
    }
    let from_point = dimensions.len();
    for d in resource {
        if !dimensions[..from_point].iter().any(|p| p.name == d.name) {
            dimensions.push(d.clone());
        }
    }
    if dimensions.len() > MAX_DIMENSIONS {
        return Err(format!(
            "dimensions: must be at most {MAX_DIMENSIONS} (got {}: {from_point} point attributes and {} from the resource); none is dropped",
            dimensions.len(),
            dimensions.len() - from_point
        ));
    }
    Ok(dimensions)
}

#[cfg(test)]
mod tests;
