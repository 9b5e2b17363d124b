//! Validates a `PutMetricDataRequest`, read straight from its protobuf bytes
//! ([`crate::wire`]), against CloudWatch's rules and says where each datum goes. A request
//! with any invalid datum is rejected whole.
//!
//! A validated request is an [`ObservationBatch`] (the store's input, defined in the core):
//! each datum's series key (from the [`Interner`]) and its data, the values of multi-valued
//! datums copied into one buffer per request. It is encoded as a log record
//! ([`crate::record`]), travels to the log writer and is applied from there.

use thermostat_metrics::shard_order::ShardOrder;
use thermostat_metrics::validate::{self, Shape, ValidationError};
use thermostat_metrics::{ObservationBatch, Resolution, Sample, SeriesKey, Timestamp, Unit};

use crate::error::Error;
use crate::intern::{Interner, Session, push_identity};
use crate::wire::{self, DatumView, RequestView, WireError, text};

/// Adds a datum's data to `batch`, if it has any.
#[inline]
fn place(
    batch: &mut ObservationBatch,
    key: &SeriesKey,
    d: &DatumView<'_>,
    unit: Unit,
    now: Timestamp,
) {
    if let Some(sample) = sample_of(d) {
        let resolution = Resolution::from_storage_resolution(d.storage_resolution);
        batch.push_sample(key, timestamp_of(d, now), unit, resolution, sample);
    }
}

/// What a datum carries (`None`: nothing), borrowing its value lists.
fn sample_of<'d>(d: &'d DatumView<'_>) -> Option<Sample<'d>> {
    if let Some(v) = d.value {
        Some(Sample::Value(v))
    } else if let Some(s) = d.statistic_values {
        Some(Sample::Set(s))
    } else if d.values.is_empty() {
        None
    } else {
        Some(Sample::Values {
            values: &d.values,
            counts: &d.counts,
        })
    }
}

/// Samples a datum counts as ([`Sample::sample_count`]).
fn sample_count(d: &DatumView<'_>) -> f64 {
    sample_of(d).map_or(0.0, |s| s.sample_count())
}

/// A datum's `timestamp_ms`, or `now` (the receipt time) when it has none.
fn timestamp_or(timestamp_ms: i64, now: Timestamp) -> Timestamp {
    if timestamp_ms == 0 {
        now
    } else {
        Timestamp::from_millis(timestamp_ms)
    }
}

fn timestamp_of(d: &DatumView<'_>, now: Timestamp) -> Timestamp {
    timestamp_or(d.timestamp_ms, now)
}

/// Reads and checks every datum and says where each goes.
///
/// # Errors
/// Bytes that are not a request ([`Error::Malformed`]), or the first broken rule, with the
/// field path (`metric_data[3].dimensions[1].value`, [`Error::Invalid`]).
pub fn validate_request(
    bytes: &[u8],
    now: Timestamp,
    interner: &Interner,
) -> Result<ObservationBatch, Error> {
    let req = RequestView::read(bytes)?;
    validate::namespace(req.namespace).map_err(|r| ValidationError::new("namespace", r))?;
    if req.datums.is_empty() {
        return Err(ValidationError::new("metric_data", "must contain at least one datum").into());
    }
    if req.datum_count > validate::MAX_DATUMS_PER_REQUEST {
        return Err(ValidationError::new(
            "metric_data",
            format!(
                "must contain at most {} datums (got {})",
                validate::MAX_DATUMS_PER_REQUEST,
                req.datum_count
            ),
        )
        .into());
    }
    if let Some(out) = many_series(&req, now, interner)? {
        return Ok(out);
    }
    let mut out = ObservationBatch::with_capacity(req.datums.len());
    let (mut d, mut keys, mut units) = (DatumView::default(), interner.session(), Units::default());
    let mut same: Option<(&[u8], SeriesKey)> = None;
    let mut same_tail: Option<(&[u8], Unit, Resolution)> = None;
    for (i, bytes) in req.datums.iter().enumerate() {
        let at = |e: WireError| WireError(format!("metric_data[{i}]: {}", e.0));
        // The common case, a run of one series' single values: the datum is the identity
        // bytes of the one before, its timestamp and value, and the same unit and resolution
        // bytes as the one before (`same_tail`, checked when first seen). Only the timestamp
        // and value are read and checked.
        if let (Some((prefix, key)), Some((tail, unit, resolution))) = (&same, &same_tail)
            && bytes.starts_with(prefix)
            && let Some((ts, value, end)) = wire::timestamp_and_value(bytes, prefix.len())
            && bytes[end..] == **tail
        {
            let timestamp = timestamp_or(ts, now);
            let at = |r: String, f: &str| ValidationError::new(format!("metric_data[{i}].{f}"), r);
            validate::timestamp(timestamp, now).map_err(|r| at(r, "timestamp_ms"))?;
            validate::value(value).map_err(|r| at(r, "value"))?;
            out.samples += 1.0;
            out.push_value(key, timestamp, *unit, *resolution, value);
            continue;
        }
        // A datum that starts with the same identity bytes as the one before is of the same
        // series: only the rest of it is read, and its identity is not checked again.
        let rest_only = match &same {
            Some((prefix, _)) if bytes.starts_with(prefix) => {
                d.read_rest(bytes, prefix.len()).map_err(at)?
            }
            _ => false,
        };
        // The key of a datum of a new series (`None`: the series of the datum before).
        let fresh = match &same {
            Some(_) if rest_only => None,
            _ => {
                d.read(bytes).map_err(at)?;
                too_many_dimensions(&d)
                    .map_err(|e| Error::Invalid(e.within(&format!("metric_data[{i}]"))))?;
                Some(datum_key(&mut keys, req.namespace, &d, i)?)
            }
        };
        let unit = units.parse(d.unit).map_err(|e| unit_error(e, i, at))?;
        out.samples +=
            validate_datum(&d, now).map_err(|e| e.within(&format!("metric_data[{i}]")))?;
        if let Some(key) = fresh {
            place(&mut out, &key, &d, unit, now);
            same = (d.identity_end > 0).then(|| (&bytes[..d.identity_end], key));
            same_tail = None;
            if d.identity_end > 0
                && let Some((_, _, end)) = wire::timestamp_and_value(bytes, d.identity_end)
                && wire::only_fields(&bytes[end..], &[8, 9])
            {
                // Valid: this datum passed with these unit and resolution bytes.
                let resolution = Resolution::from_storage_resolution(d.storage_resolution);
                same_tail = Some((&bytes[end..], unit, resolution));
            }
        } else if let Some((_, key)) = &same {
            place(&mut out, key, &d, unit, now);
        }
    }
    Ok(out)
}

/// The key of datum `i`, read into `d` ([`Session::key`]: an identity not known yet is
/// checked first).
fn datum_key(
    keys: &mut Session<'_>,
    namespace: &str,
    d: &DatumView<'_>,
    i: usize,
) -> Result<SeriesKey, Error> {
    let at = |e: WireError| WireError(format!("metric_data[{i}]: {}", e.0));
    keys.key(
        namespace,
        d.metric_name,
        &d.dimensions,
        |b, f| text(b, &f.to_string()).map_err(|e| Error::Malformed(at(e))),
        |metric, dims| {
            validate_identity(metric, dims)
                .map_err(|e| Error::Invalid(e.within(&format!("metric_data[{i}]"))))
        },
    )
}

/// One plain value datum read ahead by [`many_series`].
struct Plain {
    /// Where its identity ends in the identities' buffer.
    identity_end: usize,
    timestamp: Timestamp,
    unit: Unit,
    resolution: Resolution,
    value: f64,
}

/// The batch of a request of many series' plain values (a collector's flush, time order: its
/// first two datums of different series), read in one pass, its identities then looked up all
/// at once, shard by shard ([`Interner::find_many`]); new identities are checked and made by
/// the session as the datum loop does. `Ok(None)` when the request is not one of those or
/// breaks a rule: the datum loop of [`validate_request`] reads it and names the first broken
/// rule.
fn many_series(
    req: &RequestView<'_>,
    now: Timestamp,
    interner: &Interner,
) -> Result<Option<ObservationBatch>, Error> {
    const MIN_DATUMS: usize = 16;
    if req.datums.len() < MIN_DATUMS {
        return Ok(None);
    }
    let (mut d, mut units) = (DatumView::default(), Units::default());
    let mut buf: Vec<u8> = Vec::with_capacity(req.datums.len() * 64);
    let mut plain: Vec<Plain> = Vec::with_capacity(req.datums.len());
    for bytes in &req.datums {
        if d.read(bytes).is_err()
            || too_many_dimensions(&d).is_err()
            || d.value.is_none()
            || validate_datum(&d, now).is_err()
        {
            return Ok(None);
        }
        let Ok(unit) = units.parse(d.unit) else {
            return Ok(None);
        };
        let start = buf.len();
        push_identity(&mut buf, req.namespace, d.metric_name, &d.dimensions);
        // One series' run (an agent's flush): the datum loop's shortcuts do better.
        if plain.len() == 1 && buf[start..] == buf[..plain[0].identity_end] {
            return Ok(None);
        }
        plain.push(Plain {
            identity_end: buf.len(),
            timestamp: timestamp_of(&d, now),
            unit,
            resolution: Resolution::from_storage_resolution(d.storage_resolution),
            value: d.value.unwrap_or_default(),
        });
    }
    let mut start = 0;
    let identities: Vec<&[u8]> = plain
        .iter()
        .map(|p| {
            let i = &buf[start..p.identity_end];
            start = p.identity_end;
            i
        })
        .collect();
    let mut found = interner.find_many(&identities);
    let mut keys = interner.session();
    for (i, key) in found.iter_mut().enumerate() {
        if key.is_some() {
            continue;
        }
        let at = |e: WireError| WireError(format!("metric_data[{i}]: {}", e.0));
        d.read(req.datums[i]).map_err(|e| Error::Malformed(at(e)))?;
        *key = Some(datum_key(&mut keys, req.namespace, &d, i)?);
    }
    // The batch in the store's shard order (a series' datums keep their order): the store
    // applies a request shard by shard, and the log's applier reads the batch long after it
    // was made, from memory; read in order, its observations stream in instead of each
    // waiting for its cache lines.
    let shard_of: Vec<usize> = found
        .iter()
        .map(|k| k.as_ref().map_or(0, store_shard))
        .collect();
    let mut out = ObservationBatch::with_capacity(plain.len());
    out.reserve_runs(plain.len());
    for (_, group) in ShardOrder::new(STORE_SHARDS, &shard_of).groups() {
        for &i in group {
            if let Some(key) = found[i].take() {
                let p = &plain[i];
                out.push_value_owned(key, p.timestamp, p.unit, p.resolution, p.value);
            }
        }
    }
    out.samples = plain.len() as f64;
    Ok(Some(out))
}

/// Shards of the series store. A snapshot records it, and a store of another size cannot
/// load it: every store that reads a data directory has this many. Requests of many series
/// are batched in its shards' order ([`many_series`]).
pub const STORE_SHARDS: usize = 64;

/// The shard of the server's store that holds `key` ([`STORE_SHARDS`] shards).
fn store_shard(key: &SeriesKey) -> usize {
    (key.stable_hash() % STORE_SHARDS as u64) as usize
}

fn unit_error(
    e: Result<String, WireError>,
    i: usize,
    at: impl Fn(WireError) -> WireError,
) -> Error {
    match e {
        Ok(rule) => {
            Error::Invalid(ValidationError::new("unit", rule).within(&format!("metric_data[{i}]")))
        }
        Err(w) => Error::Malformed(at(w)),
    }
}

/// The last unit parsed, so that a request whose datums share a unit parses it once.
#[derive(Default)]
struct Units<'a> {
    last: Option<(&'a [u8], Unit)>,
}

impl<'a> Units<'a> {
    /// `Err(Ok(rule))` for an unknown unit, `Err(Err(_))` for bytes that are not UTF-8.
    fn parse(&mut self, b: &'a [u8]) -> Result<Unit, Result<String, WireError>> {
        if b.is_empty() {
            return Ok(Unit::None);
        }
        if let Some((lb, u)) = self.last
            && lb == b
        {
            return Ok(u);
        }
        let s = text(b, "unit").map_err(Err)?;
        // The unit is quoted in the error with a bounded prefix: a 100 KB unit must not make a
        // 100 KB status message.
        let u = s.parse::<Unit>().map_err(|_| {
            Ok(format!(
                "must be a CloudWatch StandardUnit (Seconds, Milliseconds, Bytes, Percent, Count, \
                 Count/Second, None, ...), got {}",
                validate::quote(s)
            ))
        })?;
        self.last = Some((b, u));
        Ok(u)
    }
}

/// Converts a request that was validated when it arrived (a write-ahead-log record) without
/// checking its rules again: acknowledged data must replay even if a later version tightens a
/// rule. `received` is the time the request arrived (the timestamp of datums without one).
///
/// # Errors
/// Bytes that are not a request (the log's checksum makes this a bug, not corruption).
pub(crate) fn trusted_request(
    bytes: &[u8],
    received: Timestamp,
    interner: &Interner,
) -> Result<ObservationBatch, WireError> {
    let req = RequestView::read(bytes)?;
    let mut out = ObservationBatch::with_capacity(req.datums.len());
    let (mut d, mut keys, mut units) = (DatumView::default(), interner.session(), Units::default());
    for bytes in &req.datums {
        d.read(bytes)?;
        if d.dimension_count > d.dimensions.len() {
            return Err(WireError(format!(
                "a logged datum has {} dimensions",
                d.dimension_count
            )));
        }
        let unit = units.parse(d.unit).unwrap_or_default();
        let key = keys.key(
            req.namespace,
            d.metric_name,
            &d.dimensions,
            |b, f| text(b, &f.to_string()),
            |_, _| Ok(()),
        )?;
        let before = out.len();
        place(&mut out, &key, &d, unit, received);
        if out.len() > before {
            out.samples += sample_count(&d);
        }
    }
    Ok(out)
}

/// Refuses a datum with more dimensions than CloudWatch allows, counted by the reader (which
/// keeps only the first [`wire::MAX_DIMENSIONS`]).
fn too_many_dimensions(d: &DatumView<'_>) -> Result<(), ValidationError> {
    if d.dimension_count > validate::MAX_DIMENSIONS {
        return Err(ValidationError::new(
            "dimensions",
            format!(
                "must have at most {} entries (got {})",
                validate::MAX_DIMENSIONS,
                d.dimension_count
            ),
        ));
    }
    Ok(())
}

fn field(name: &str) -> impl Fn(String) -> ValidationError + '_ {
    move |rule| ValidationError::new(name, rule)
}

/// Checks a series identity (when it is first seen).
fn validate_identity(
    metric_name: &str,
    dimensions: &[(&str, &str)],
) -> Result<(), ValidationError> {
    validate::metric_name(metric_name).map_err(field("metric_name"))?;
    validate::dimension_set(dimensions.iter().map(|x| x.0)).map_err(|(i, rule)| match i {
        Some(i) => ValidationError::new(format!("dimensions[{i}].name"), rule),
        None => ValidationError::new("dimensions", rule),
    })?;
    for (j, (name, value)) in dimensions.iter().enumerate() {
        validate::dimension_name(name)
            .map_err(|r| ValidationError::new(format!("dimensions[{j}].name"), r))?;
        validate::dimension_value(value)
            .map_err(|r| ValidationError::new(format!("dimensions[{j}].value"), r))?;
    }
    Ok(())
}

/// Checks the rest of one datum (its identity and unit are checked by then); returns its
/// sample count.
fn validate_datum(d: &DatumView<'_>, now: Timestamp) -> Result<f64, ValidationError> {
    validate::timestamp(timestamp_of(d, now), now).map_err(field("timestamp_ms"))?;
    validate::shape(Shape {
        value: d.value.is_some(),
        statistic_values: d.statistic_values.is_some(),
        values: !d.values.is_empty(),
        counts: !d.counts.is_empty(),
    })?;
    if let Some(v) = d.value {
        validate::value(v).map_err(field("value"))?;
    } else if let Some(set) = &d.statistic_values {
        validate::statistic_set(set).map_err(|e| e.within("statistic_values"))?;
    } else {
        validate::values_and_counts(d.values.len(), d.counts.len())?;
        for (k, &v) in d.values.iter().enumerate() {
            validate::value(v).map_err(|r| ValidationError::new(format!("values[{k}]"), r))?;
        }
        for (k, &c) in d.counts.iter().enumerate() {
            validate::count(c).map_err(|r| ValidationError::new(format!("counts[{k}]"), r))?;
        }
        validate::sample_count(d.counts.iter().sum()).map_err(field("counts"))?;
    }
    validate::storage_resolution(d.storage_resolution).map_err(field("storage_resolution"))?;
    Ok(sample_count(d))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use prost::Message as _;
    use thermostat_metrics::{Dimension, SeriesKey, Timestamp};
    use thermostat_proto::v1::{self as pb, MetricDatum, PutMetricDataRequest};

    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000_000);

    /// What a request means, worked out the slow way from prost's decoding: each datum's
    /// series key, timestamp, unit and value.
    fn reference(req: &PutMetricDataRequest) -> Vec<(SeriesKey, i64, Unit, u64)> {
        req.metric_data
            .iter()
            .map(|d| {
                let key = SeriesKey::new(
                    req.namespace.as_str(),
                    d.metric_name.as_str(),
                    d.dimensions
                        .iter()
                        .map(|x| Dimension::new(x.name.as_str(), x.value.as_str()))
                        .collect(),
                );
                let ts = if d.timestamp_ms == 0 {
                    NOW.as_millis()
                } else {
                    d.timestamp_ms
                };
                (key, ts, d.unit.parse().unwrap(), d.value.unwrap().to_bits())
            })
            .collect()
    }

    fn ours(v: &ObservationBatch) -> Vec<(SeriesKey, i64, Unit, u64)> {
        v.observations()
            .iter()
            .map(|(k, o)| {
                let Sample::Value(x) = o.sample else {
                    panic!("only single values are generated")
                };
                (k.clone(), o.timestamp.as_millis(), o.unit, x.to_bits())
            })
            .collect()
    }

    /// Datums grouped by series, each series' datums in their order: a batch keeps the order
    /// of a series' datums, not the order of different series' (the store applies a request
    /// shard by shard).
    fn by_series(mut v: Vec<(SeriesKey, i64, Unit, u64)>) -> Vec<(SeriesKey, i64, Unit, u64)> {
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn datum(
        metric: usize,
        dims: &[(usize, usize)],
        ts: i64,
        unit: &str,
        value: f64,
    ) -> MetricDatum {
        MetricDatum {
            metric_name: format!("m{metric}"),
            dimensions: dims
                .iter()
                .map(|&(n, v)| pb::Dimension {
                    name: format!("d{n}"),
                    value: format!("v{v}"),
                })
                .collect(),
            timestamp_ms: ts,
            value: Some(value),
            unit: unit.to_owned(),
            ..MetricDatum::default()
        }
    }

    fn requests() -> impl Strategy<Value = PutMetricDataRequest> {
        // Few distinct series, so that runs of one series, the same series again later and the
        // same dimensions in another order all occur.
        let one = (
            0usize..2,
            prop::sample::subsequence(vec![(0, 0), (1, 1), (2, 0)], 0..=3),
            any::<bool>(),
            0i64..600,
            prop::sample::select(vec!["", "Percent", "Milliseconds"]),
            0.0f64..100.0,
            1usize..4,
        );
        prop::collection::vec(one, 1..40).prop_map(|items| {
            let mut metric_data = Vec::new();
            for (metric, mut dims, reverse, back, unit, value, repeat) in items {
                if reverse {
                    dims.reverse();
                }
                for r in 0..repeat {
                    let ts = if back == 0 {
                        0
                    } else {
                        NOW.as_millis() - (back + r as i64) * 1000
                    };
                    metric_data.push(datum(metric, &dims, ts, unit, value + r as f64));
                }
            }
            PutMetricDataRequest {
                namespace: "App".into(),
                metric_data,
            }
        })
    }

    proptest! {
        /// Whatever shortcuts reading takes (a datum that starts like the one before it, an
        /// identity already known to the interner), each datum lands where the slow way says.
        #[test]
        fn validated_requests_mean_what_prost_says(req in requests()) {
            let interner = Interner::new(1000);
            let bytes = req.encode_to_vec();
            let first = validate_request(&bytes, NOW, &interner).unwrap();
            prop_assert_eq!(by_series(ours(&first)), by_series(reference(&req)));
            // Again with every identity known.
            let again = validate_request(&bytes, NOW, &interner).unwrap();
            prop_assert_eq!(by_series(ours(&again)), by_series(reference(&req)));
            let trusted = trusted_request(&bytes, NOW, &Interner::new(1000)).unwrap();
            prop_assert_eq!(ours(&trusted), reference(&req));
            prop_assert_eq!(first.samples, req.metric_data.len() as f64);
        }
    }

    /// A request of many series (a collector's flush) is batched in the order of the server
    /// store's shards, each series' datums in request order: the store applies it shard by
    /// shard, reading the batch in order.
    #[test]
    fn a_request_of_many_series_is_batched_by_store_shard() {
        let metric_data: Vec<MetricDatum> = (0..2)
            .flat_map(|t| {
                (0..300).map(move |i| {
                    datum(
                        i % 3,
                        &[(0, i)],
                        NOW.as_millis() - 1000 * (2 - t),
                        "",
                        t as f64,
                    )
                })
            })
            .collect();
        let req = PutMetricDataRequest {
            namespace: "App".into(),
            metric_data,
        };
        let batch = validate_request(&req.encode_to_vec(), NOW, &Interner::new(1000)).unwrap();
        let got = ours(&batch);
        let shards: Vec<usize> = got.iter().map(|(k, ..)| store_shard(k)).collect();
        assert!(shards.is_sorted(), "{shards:?}");
        assert!(shards.first() < shards.last(), "{shards:?}");
        assert_eq!(by_series(got), by_series(reference(&req)));
    }

    /// A datum that starts with the bytes of the one before but carries another dimension
    /// later is a different series: the shortcut must notice.
    #[test]
    fn identity_fields_after_the_data_are_not_missed() {
        let a = datum(0, &[(0, 0)], NOW.as_millis() - 1000, "", 1.0);
        // `b` is `a` with a second dimension appended after the value: the same leading
        // bytes, another identity.
        let mut b_bytes = a.encode_to_vec();
        let extra = pb::Dimension {
            name: "d9".into(),
            value: "v9".into(),
        }
        .encode_to_vec();
        b_bytes.push((2 << 3) | 2);
        prost::encoding::encode_varint(extra.len() as u64, &mut b_bytes);
        b_bytes.extend_from_slice(&extra);
        let b = MetricDatum::decode(b_bytes.as_slice()).unwrap();
        assert_eq!(b.dimensions.len(), 2);
        let req = PutMetricDataRequest {
            namespace: "App".into(),
            metric_data: vec![a.clone(), b],
        };
        // Built from the raw datum bytes (re-encoding would put the fields back in order).
        let mut raw = PutMetricDataRequest {
            namespace: "App".into(),
            metric_data: vec![],
        }
        .encode_to_vec();
        for d in [a.encode_to_vec(), b_bytes] {
            raw.push((2 << 3) | 2);
            prost::encoding::encode_varint(d.len() as u64, &mut raw);
            raw.extend_from_slice(&d);
        }
        let v = validate_request(&raw, NOW, &Interner::new(100)).unwrap();
        assert_eq!(ours(&v), reference(&req));
        let observations = v.observations();
        assert_ne!(observations[0].0, observations[1].0);
        assert_eq!(observations[1].0.dimension("d9"), Some("v9"));
    }

    /// A known identity is not checked again, but a bad one is never remembered as known.
    #[test]
    fn bad_identities_are_refused_every_time() {
        let interner = Interner::new(100);
        let bad = PutMetricDataRequest {
            namespace: "App".into(),
            metric_data: vec![datum(0, &[(0, 0)], 0, "", 1.0)],
        };
        let mut bad = bad;
        bad.metric_data[0].dimensions[0].name = ":reserved".into();
        let bytes = bad.encode_to_vec();
        for _ in 0..2 {
            let e = validate_request(&bytes, NOW, &interner).unwrap_err();
            assert!(
                e.to_string().contains("metric_data[0].dimensions[0].name"),
                "{e}"
            );
        }
        assert!(interner.is_empty());
    }

    /// A request of many series (read in one pass, looked up all at once) names the same
    /// first broken rule as the datum loop: a new identity's, in datum order, before a later
    /// datum's value; a value's alone when the identities are good.
    #[test]
    fn a_request_of_many_series_names_its_first_broken_rule() {
        let interner = Interner::new(1000);
        let many = |bad_name: Option<usize>, bad_value: Option<usize>| {
            let mut req = PutMetricDataRequest {
                namespace: "App".into(),
                metric_data: (0..20)
                    .map(|i| datum(i, &[(0, i)], NOW.as_millis(), "Count", 1.0))
                    .collect(),
            };
            if let Some(i) = bad_name {
                req.metric_data[i].dimensions[0].name = ":reserved".into();
            }
            if let Some(i) = bad_value {
                req.metric_data[i].value = Some(f64::NAN);
            }
            req.encode_to_vec()
        };
        for _ in 0..2 {
            let e = validate_request(&many(Some(7), Some(12)), NOW, &interner).unwrap_err();
            assert!(
                e.to_string().contains("metric_data[7].dimensions[0].name"),
                "{e}"
            );
            let e = validate_request(&many(Some(12), Some(7)), NOW, &interner).unwrap_err();
            assert!(e.to_string().contains("metric_data[7].value"), "{e}");
            let e = validate_request(&many(Some(9), None), NOW, &interner).unwrap_err();
            assert!(
                e.to_string().contains("metric_data[9].dimensions[0].name"),
                "{e}"
            );
        }
        // The good identities of the refused requests were not the problem: a good request
        // is taken, and another with every identity known.
        for _ in 0..2 {
            let ok = validate_request(&many(None, None), NOW, &interner).unwrap();
            assert_eq!(ok.samples, 20.0);
            assert_eq!(ok.series().count(), 20);
        }
        assert!(interner.len() >= 20);
    }
}
