//! The payload of a write-ahead-log record (log format 2): a validated request's observations,
//! resolved and compact.
//!
//! A request as received spends most of its bytes on every datum's identity and framing:
//! about 55 bytes for one sample of `CPUUtilization{Host=h0001}`. Writing those bytes to the
//! log was the largest single cost of ingest (the kernel's copy into the page cache and the
//! checksum over it). A record instead holds each run of one series' datums once: the
//! series' identity, then per datum its timestamp as the difference from the one before and
//! its data, about 10 bytes a sample for an agent's flush.
//!
//! # Format
//! A payload is a sequence of items; integers are protobuf varints (`v`), floats
//! little-endian IEEE 754 (`f`), strings a varint length and UTF-8 bytes (`s`):
//!
//! - `0x01 namespace:s` — the namespace of the runs that follow (the first item of a record);
//! - `0x02 key_len:v key unit:u8 resolution:u8 kind:u8 n:v obs×n` — a run of `n ≥ 1`
//!   observations of one series with one unit, resolution and kind of data, where
//!   - `key` = `metric_name:s dimension_count:v (name:s value:s)×dimension_count`, the
//!     dimensions sorted by name (as in [`SeriesKey`]);
//!   - `unit` is the index in [`Unit::ALL`] (append-only: an index never changes meaning);
//!   - `resolution` is 0 for high, 1 for standard;
//!   - `obs` = `Δt:v data`, `Δt` the zigzag-encoded difference in milliseconds from the
//!     previous observation's timestamp in the record (from 0 for the first), and `data` by
//!     `kind`: 0 a value `f`; 1 values `m:v f×m`; 2 values with counts `m:v f×m f×m`;
//!     3 a statistic set `f×4` (sample count, sum, minimum, maximum); 4 a distribution
//!     ([`Distribution`]) `count:f sum:f flags:u8 [min:f] [max:f] m:v f×m f×m`: `flags` bit 0
//!     says a minimum follows, bit 1 a maximum (other bits are 0), then `m` bucket
//!     representatives and their `m` counts.
//!
//! - `0x03 update_len:v update` — a change to the OTLP cumulative streams' state
//!   (`thermostat_otlp::StreamUpdate`, `update_len` bytes of postcard), made by the request
//!   whose observations the record holds: replay applies them, in order, with the record.
//!   Written after the runs (format 3).
//! - `0x04 point_len:v point` — a cumulative point (`thermostat_metrics::cumulative::
//!   CumulativePoint`, `point_len` bytes of postcard) for the owner of its partition to turn
//!   into an increase: cluster mode's records only, after the runs.
//!
//! Kinds are append-only like units: kind 4 came after logs of kinds 0–3 were written, which
//! still decode as they did. A build that predates kind 4 refuses a record of it as an
//! undecodable payload (`kind`).
//!
//! Decoding never trusts a length: a payload that does not parse is an error, never a panic
//! or an allocation larger than the payload.

use bytes::{Buf, BufMut};
use prost::encoding::{decode_varint, encode_varint, encoded_len_varint};
use thermostat_metrics::{
    Distribution, Observation, ObservationBatch, Resolution, Sample, SeriesKey, StatisticSet,
    Timestamp, Unit,
};

use thermostat_metrics::cumulative::CumulativePoint;
use thermostat_otlp::StreamUpdate;

use crate::intern::Interner;

const NAMESPACE: u8 = 1;
const RUN: u8 = 2;
const STREAM_UPDATE: u8 = 3;
const CUMULATIVE_POINT: u8 = 4;

const KIND_VALUE: u8 = 0;
const KIND_VALUES: u8 = 1;
const KIND_COUNTED: u8 = 2;
const KIND_SET: u8 = 3;
const KIND_DISTRIBUTION: u8 = 4;

/// Bits of a distribution's `flags`: a minimum follows, a maximum follows.
const HAS_MIN: u8 = 1;
const HAS_MAX: u8 = 2;

/// Bytes an observation takes at least (a one-byte `Δt` and the smallest data).
const MIN_OBS: usize = 1 + 1;

/// Keys the decoder remembers before it starts over (replay meets the same series again and
/// again; this bounds the memory that costs). A log written by a server at its default
/// `--max-series` (1,000,000) holds up to that many series, and a cache smaller than the
/// series of a time-ordered log misses on nearly every datum: with 65,536 keys, replaying
/// 10 M samples of 1 M series took 19 s. The cache's entries share their keys with the store
/// and hold the record's identity bytes besides (about 100 bytes a series, freed when replay
/// ends).
const KEY_CACHE: usize = 1 << 21;

fn kind_of(s: &Sample<'_>) -> u8 {
    match s {
        Sample::Value(_) => KIND_VALUE,
        Sample::Values { counts: [], .. } => KIND_VALUES,
        Sample::Values { .. } => KIND_COUNTED,
        Sample::Set(_) => KIND_SET,
        Sample::Distribution(_) => KIND_DISTRIBUTION,
    }
}

fn unit_code(u: Unit) -> u8 {
    // `Unit::ALL` has 27 entries.
    Unit::ALL.iter().position(|&x| x == u).unwrap_or(0) as u8
}

fn resolution_code(r: Resolution) -> u8 {
    match r {
        Resolution::High => 0,
        Resolution::Standard => 1,
    }
}

fn zigzag(d: i64) -> u64 {
    ((d << 1) ^ (d >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// A varint; one byte (most lengths and timestamp deltas) without a call.
#[inline(always)]
fn put_varint(v: u64, out: &mut Vec<u8>) {
    if v < 0x80 {
        out.push(v as u8);
    } else {
        encode_varint(v, out);
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(s.len() as u64, out);
    out.extend_from_slice(s.as_bytes());
}

/// The number of bytes [`put_key`] writes for `key`.
fn key_len(key: &SeriesKey) -> usize {
    let str_len = |s: &str| encoded_len_varint(s.len() as u64) + s.len();
    let dimensions = key.dimensions();
    str_len(key.metric_name())
        + encoded_len_varint(dimensions.len() as u64)
        + dimensions
            .map(|d| str_len(d.name) + str_len(d.value))
            .sum::<usize>()
}

fn put_key(out: &mut Vec<u8>, key: &SeriesKey) {
    put_str(out, key.metric_name());
    put_varint(key.dimensions().len() as u64, out);
    for d in key.dimensions() {
        put_str(out, d.name);
        put_str(out, d.value);
    }
}

/// The items of the OTLP stream `updates` a record's request made, appended to `out` (after
/// [`encode`]'s).
pub(crate) fn encode_stream_updates(updates: &[StreamUpdate], out: &mut Vec<u8>) {
    for update in updates {
        // Serializing plain data into a Vec cannot fail; an update that did would be a bug
        // (and is logged empty, which replay refuses loudly rather than silently).
        let bytes = postcard::to_stdvec(update).unwrap_or_else(|e| {
            tracing::error!(error = %e, "Could not encode a stream update for the log.");
            Vec::new()
        });
        out.push(STREAM_UPDATE);
        encode_varint(bytes.len() as u64, out);
        out.extend_from_slice(&bytes);
    }
}

/// Whether `b` (of the same series) continues the run that `a` is in.
fn same_run(a: &Observation<'_>, b: &Observation<'_>) -> bool {
    a.unit == b.unit && a.resolution == b.resolution && kind_of(&a.sample) == kind_of(&b.sample)
}

/// The payload of `batch`'s observations, appended to `out`.
pub(crate) fn encode(batch: &ObservationBatch, out: &mut Vec<u8>) {
    // About 11 bytes an observation, and a run's key each (the first run's key stands for all:
    // a request's series are usually alike), so that the payload is not regrown.
    let runs = batch.runs();
    let per_run = batch.series().next().map_or(0, |key| key_len(key) + 8);
    out.reserve(batch.len() * 11 + runs.len() * per_run + 64);
    let mut writer = Writer::new(std::mem::take(out));
    for (key, run) in runs {
        writer.push_series(key, run);
    }
    *out = writer.finish();
}

/// A payload written series by series (cluster mode writes one per partition while it splits
/// a group of pushes, straight from the pushes' runs): what [`encode`] writes for a batch of
/// the same series in the same order.
pub(crate) struct Writer {
    out: Vec<u8>,
    /// The namespace last written (a record names one only when it changes).
    namespace: Option<Box<str>>,
    /// The last timestamp written (timestamps are deltas).
    previous: i64,
}

impl Writer {
    /// A writer appending to `out`.
    pub(crate) fn new(out: Vec<u8>) -> Writer {
        Writer {
            out,
            namespace: None,
            previous: 0,
        }
    }

    /// Appends observations of series `key` (in their order).
    pub(crate) fn push_series<'o>(
        &mut self,
        key: &SeriesKey,
        mut observations: impl Iterator<Item = Observation<'o>> + Clone,
    ) {
        if observations.clone().next().is_none() {
            return;
        }
        let ns = key.namespace();
        if self.namespace.as_deref() != Some(ns) {
            self.out.push(NAMESPACE);
            put_str(&mut self.out, ns);
            self.namespace = Some(ns.into());
        }
        // The series' observations, cut where the unit, resolution or kind changes.
        while let Some(first) = observations.clone().next() {
            let n = if observations.size_hint() == (1, Some(1)) {
                // A series' only observation in the batch (time order): nothing to compare.
                1
            } else {
                observations
                    .clone()
                    .take_while(|o| same_run(&first, o))
                    .count()
            };
            let run = observations.clone().take(n);
            encode_run(key, &first, n, run, &mut self.previous, &mut self.out);
            // Past the run (`n` is at least 1: the first observation is in it).
            observations.nth(n - 1);
        }
    }

    /// Appends a cumulative point (after the runs).
    pub(crate) fn push_cumulative(&mut self, point: &CumulativePoint) {
        // As with stream updates: serializing plain data into a Vec cannot fail.
        let bytes = postcard::to_stdvec(point).unwrap_or_else(|e| {
            tracing::error!(error = %e, "Could not encode a cumulative point for the cluster.");
            Vec::new()
        });
        self.out.push(CUMULATIVE_POINT);
        encode_varint(bytes.len() as u64, &mut self.out);
        self.out.extend_from_slice(&bytes);
    }

    /// The payload.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// A run of `key`: `len` observations, `first` the first of them.
fn encode_run<'o>(
    key: &SeriesKey,
    first: &Observation<'_>,
    len: usize,
    run: impl Iterator<Item = Observation<'o>>,
    previous: &mut i64,
    out: &mut Vec<u8>,
) {
    out.push(RUN);
    // The key, length first: written after a byte for its length, which is all a key under
    // 128 bytes (the usual) needs, and made room for otherwise.
    let at = out.len();
    out.push(0);
    put_key(out, key);
    let key_len = out.len() - at - 1;
    if key_len < 0x80 {
        out[at] = key_len as u8;
    } else {
        let mut prefix = Vec::with_capacity(10);
        encode_varint(key_len as u64, &mut prefix);
        out.splice(at..=at, prefix);
    }
    out.push(unit_code(first.unit));
    out.push(resolution_code(first.resolution));
    out.push(kind_of(&first.sample));
    put_varint(len as u64, out);
    for o in run {
        let t = o.timestamp.as_millis();
        put_varint(zigzag(t.wrapping_sub(*previous)), out);
        *previous = t;
        match o.sample {
            Sample::Value(v) => out.put_f64_le(v),
            Sample::Values { values, counts } => {
                encode_varint(values.len() as u64, out);
                values.iter().for_each(|&v| out.put_f64_le(v));
                counts.iter().for_each(|&c| out.put_f64_le(c));
            }
            Sample::Set(s) => {
                for x in [s.sample_count, s.sum, s.minimum, s.maximum] {
                    out.put_f64_le(x);
                }
            }
            Sample::Distribution(d) => encode_distribution(&d, out),
        }
    }
}

fn encode_distribution(d: &Distribution<'_>, out: &mut Vec<u8>) {
    out.put_f64_le(d.count);
    out.put_f64_le(d.sum);
    let flags =
        if d.min.is_some() { HAS_MIN } else { 0 } | if d.max.is_some() { HAS_MAX } else { 0 };
    out.push(flags);
    d.min
        .into_iter()
        .chain(d.max)
        .for_each(|x| out.put_f64_le(x));
    let m = d.values.len();
    encode_varint(m as u64, out);
    d.values.iter().for_each(|&v| out.put_f64_le(v));
    // A batch holds as many counts as values; anything else is cut or padded with 0 (a
    // bucket without a count holds nothing), so that the record always parses.
    d.counts
        .iter()
        .copied()
        .chain(std::iter::repeat(0.0))
        .take(m)
        .for_each(|n| out.put_f64_le(n));
}

/// Why a payload could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("record payload byte {offset}: {what}")]
pub(crate) struct DecodeError {
    /// Where in the payload.
    pub(crate) offset: usize,
    /// What is wrong there.
    pub(crate) what: &'static str,
}

/// Decodes payloads, remembering the series keys it made (replay meets the same series in
/// record after record).
#[derive(Debug)]
pub(crate) struct Decoder {
    /// Keys by the record's identity bytes (namespace + `key`): an interner of its own, since
    /// these bytes are not a request's wire identity.
    keys: Interner,
    identity: Vec<u8>,
    scratch: Vec<f64>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            keys: Interner::new(KEY_CACHE),
            identity: Vec::new(),
            scratch: Vec::new(),
        }
    }
}

struct Cursor<'a> {
    all: &'a [u8],
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn error(&self, what: &'static str) -> DecodeError {
        DecodeError {
            offset: self.all.len() - self.rest.len(),
            what,
        }
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        if self.rest.is_empty() {
            return Err(self.error(what));
        }
        Ok(self.rest.get_u8())
    }

    fn varint(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let at = self.error(what);
        decode_varint(&mut self.rest).map_err(|_| at)
    }

    /// A length that the rest of the payload can hold, `unit` bytes per element.
    fn len(&mut self, unit: usize, what: &'static str) -> Result<usize, DecodeError> {
        let n = self.varint(what)?;
        match usize::try_from(n) {
            Ok(n) if n.checked_mul(unit).is_some_and(|b| b <= self.rest.len()) => Ok(n),
            _ => Err(self.error(what)),
        }
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (b, rest) = self.rest.split_at(n);
        self.rest = rest;
        b
    }

    fn str(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        let n = self.len(1, what)?;
        let at = self.error(what);
        std::str::from_utf8(self.bytes(n)).map_err(|_| at)
    }

    fn f64(&mut self, what: &'static str) -> Result<f64, DecodeError> {
        if self.rest.len() < 8 {
            return Err(self.error(what));
        }
        Ok(self.rest.get_f64_le())
    }
}

impl Decoder {
    /// A decoder with nothing remembered.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The observations of a payload written by [`encode`].
    ///
    /// # Errors
    /// Bytes that are not such a payload (a checksummed record makes this a bug, not
    /// corruption).
    #[cfg(test)]
    pub(crate) fn decode(&mut self, payload: &[u8]) -> Result<ObservationBatch, DecodeError> {
        let (mut updates, mut cumulative) = (Vec::new(), Vec::new());
        self.decode_with_updates(payload, &mut updates, &mut cumulative)
    }

    /// The observations of a payload, its OTLP stream updates appended to `updates` and its
    /// cumulative points to `cumulative`.
    ///
    /// # Errors
    /// As [`Decoder::decode`]; also an update or a point that does not decode.
    pub(crate) fn decode_with_updates(
        &mut self,
        payload: &[u8],
        updates: &mut Vec<StreamUpdate>,
        cumulative: &mut Vec<CumulativePoint>,
    ) -> Result<ObservationBatch, DecodeError> {
        let mut out = ObservationBatch::default();
        let mut c = Cursor {
            all: payload,
            rest: payload,
        };
        let mut namespace: Option<&str> = None;
        let mut previous = 0i64;
        while !c.rest.is_empty() {
            let tag_at = c.error("item tag");
            match c.byte("item tag")? {
                NAMESPACE => namespace = Some(c.str("namespace")?),
                RUN => {
                    let Some(ns) = namespace else {
                        return Err(DecodeError {
                            what: "a run before any namespace",
                            ..tag_at
                        });
                    };
                    let key_len = c.len(1, "key length")?;
                    let key_at = c.error("key");
                    let key = self.key(ns, c.bytes(key_len)).map_err(|e| DecodeError {
                        offset: key_at.offset + e.offset,
                        what: e.what,
                    })?;
                    let unit = *Unit::ALL
                        .get(usize::from(c.byte("unit")?))
                        .ok_or_else(|| c.error("unit"))?;
                    let resolution = match c.byte("resolution")? {
                        0 => Resolution::High,
                        1 => Resolution::Standard,
                        _ => return Err(c.error("resolution")),
                    };
                    let kind = c.byte("kind")?;
                    if kind > KIND_DISTRIBUTION {
                        return Err(c.error("kind"));
                    }
                    let n = c.len(MIN_OBS, "observation count")?;
                    if kind == KIND_VALUE {
                        // Most runs: timestamps and plain values, added as one run.
                        out.extend_values(&key, unit, resolution, n, || {
                            let t = previous.wrapping_add(unzigzag(c.varint("timestamp")?));
                            previous = t;
                            Ok::<_, DecodeError>((Timestamp::from_millis(t), c.f64("value")?))
                        })?;
                        continue;
                    }
                    out.reserve(n);
                    for _ in 0..n {
                        let t = previous.wrapping_add(unzigzag(c.varint("timestamp")?));
                        previous = t;
                        let sample = self.sample(&mut c, kind)?;
                        out.samples += sample.sample_count();
                        out.push_sample(&key, Timestamp::from_millis(t), unit, resolution, sample);
                    }
                }
                STREAM_UPDATE => {
                    let n = c.len(1, "stream update length")?;
                    let at = c.error("stream update");
                    let update = postcard::from_bytes(c.bytes(n)).map_err(|_| at)?;
                    updates.push(update);
                }
                CUMULATIVE_POINT => {
                    let n = c.len(1, "cumulative point length")?;
                    let at = c.error("cumulative point");
                    let point = postcard::from_bytes(c.bytes(n)).map_err(|_| at)?;
                    cumulative.push(point);
                }
                _ => return Err(tag_at),
            }
        }
        Ok(out)
    }

    fn sample<'s>(&'s mut self, c: &mut Cursor<'_>, kind: u8) -> Result<Sample<'s>, DecodeError> {
        Ok(match kind {
            KIND_VALUE => Sample::Value(c.f64("value")?),
            KIND_SET => Sample::Set(StatisticSet {
                sample_count: c.f64("statistic set")?,
                sum: c.f64("statistic set")?,
                minimum: c.f64("statistic set")?,
                maximum: c.f64("statistic set")?,
            }),
            KIND_DISTRIBUTION => {
                let count = c.f64("distribution count")?;
                let sum = c.f64("distribution sum")?;
                let flags = c.byte("distribution flags")?;
                if flags & !(HAS_MIN | HAS_MAX) != 0 {
                    return Err(c.error("distribution flags"));
                }
                let min = if flags & HAS_MIN != 0 {
                    Some(c.f64("distribution minimum")?)
                } else {
                    None
                };
                let max = if flags & HAS_MAX != 0 {
                    Some(c.f64("distribution maximum")?)
                } else {
                    None
                };
                let m = c.len(16, "bucket count")?;
                self.scratch.clear();
                for _ in 0..2 * m {
                    self.scratch.push(c.f64("buckets")?);
                }
                let (values, counts) = self.scratch.split_at(m);
                Sample::Distribution(Distribution {
                    count,
                    sum,
                    min,
                    max,
                    values,
                    counts,
                })
            }
            _ => {
                let counted = kind == KIND_COUNTED;
                let m = c.len(if counted { 16 } else { 8 }, "value count")?;
                self.scratch.clear();
                for _ in 0..if counted { 2 * m } else { m } {
                    self.scratch.push(c.f64("values")?);
                }
                let (values, counts) = self.scratch.split_at(m);
                Sample::Values { values, counts }
            }
        })
    }

    /// The key of `bytes` (a `key` of the format) in namespace `ns`.
    fn key(&mut self, ns: &str, bytes: &[u8]) -> Result<SeriesKey, DecodeError> {
        self.identity.clear();
        put_str(&mut self.identity, ns);
        self.identity.extend_from_slice(bytes);
        let keys = &self.keys;
        keys.lookup(&self.identity, || key_of(keys, ns, bytes))
    }
}

/// Builds the key of `bytes` (a `key` of the format) in namespace `ns`, its names shared
/// through `keys`.
fn key_of(keys: &Interner, ns: &str, bytes: &[u8]) -> Result<SeriesKey, DecodeError> {
    let mut c = Cursor {
        all: bytes,
        rest: bytes,
    };
    let metric = c.str("metric name")?;
    let count = c.len(2, "dimension count")?;
    let mut dims = Vec::with_capacity(count);
    for _ in 0..count {
        dims.push((c.str("dimension name")?, c.str("dimension value")?));
    }
    if !c.rest.is_empty() {
        return Err(c.error("bytes after the key"));
    }
    Ok(SeriesKey::from_parts(
        keys.shared_name(ns),
        keys.shared_name(metric),
        &dims,
    ))
}

#[cfg(test)]
mod tests;
