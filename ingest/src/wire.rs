//! A zero-copy reader of `PutMetricDataRequest`'s protobuf encoding.
//!
//! prost decodes a request into owned `String`s and `Vec`s: five allocations per datum
//! before anything is validated, then freed again. This reader walks the bytes instead and
//! lends out `&str` views of them. It follows prost's decoding rules exactly (fields in any
//! order, the last occurrence of a scalar wins, repeated embedded messages merge, packed and
//! unpacked repeated doubles, unknown fields skipped, strings must be UTF-8), and a property
//! test checks it against prost on arbitrary requests.
//!
//! A datum's strings are lent out as bytes: checking that they are UTF-8 (with [`text`]) is
//! left to the caller, who skips it for a series identity it has seen and checked before.
//!
//! A datum laid out as encoders write one (fields in number order, each once, one-byte keys)
//! is read in one straight pass that expects each field where it usually is; any other
//! layout, valid or not, is read by the general loop, which decides. A property test checks
//! that the straight pass takes every such datum and reads whatever it takes as the loop does.
//!
//! Hostile bytes get bounded work: the reader never recurses. Unknown groups (the deprecated
//! START_GROUP … END_GROUP wire types) are skipped with a loop over a fixed-size stack of open
//! groups, nested at most as deep as prost allows ([`RECURSION_LIMIT`], counting the embedded
//! messages around them as prost does); deeper nesting is refused. Every step consumes at least
//! one byte, so reading costs time linear in the bytes, and the lists a view collects are
//! capped ([`MAX_DATUMS`], [`MAX_DIMENSIONS`]) so that memory stays proportional to the
//! request however its fields repeat.

use thermostat_metrics::StatisticSet;
use thermostat_metrics::validate::{MAX_DATUMS_PER_REQUEST, MAX_DIMENSIONS as DIMENSIONS_ALLOWED};

/// How deeply fields may nest, embedded messages and groups together: prost's limit, so that
/// the reader refuses exactly what prost refuses.
pub(crate) const RECURSION_LIMIT: u32 = 100;
/// Datums a [`RequestView`] keeps: one more than a request may hold, so that an oversized
/// request is still reported with its count ([`RequestView::datum_count`]) but cannot make the
/// reader hold a slice per two bytes of it.
pub(crate) const MAX_DATUMS: usize = MAX_DATUMS_PER_REQUEST + 1;
/// Dimensions a [`DatumView`] keeps (one more than CloudWatch allows; the rest are counted in
/// [`DatumView::dimension_count`], not kept).
pub(crate) const MAX_DIMENSIONS: usize = DIMENSIONS_ALLOWED + 1;

/// Why bytes are not a valid request. Not exported: carried by [`crate::Error::Malformed`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the request is not a valid PutMetricDataRequest: {0}")]
pub struct WireError(pub String);

fn err<T>(what: impl Into<String>) -> Result<T, WireError> {
    Err(WireError(what.into()))
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// A cursor over protobuf bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Nesting levels left (prost's `DecodeContext::recurse_count`): [`RECURSION_LIMIT`] for a
    /// request, one less inside a datum, two less inside a dimension or statistic set.
    depth: u32,
}

impl<'a> Reader<'a> {
    /// A reader of a request's top level.
    fn new(buf: &'a [u8]) -> Self {
        Reader::nested(buf, 0)
    }

    /// A reader of a message embedded `level` messages deep (a datum: 1; its dimensions and
    /// statistic set: 2).
    fn nested(buf: &'a [u8], level: u32) -> Self {
        Reader {
            buf,
            pos: 0,
            depth: RECURSION_LIMIT.saturating_sub(level),
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// A varint. Most are one byte (keys, lengths): those are read inline.
    #[inline]
    fn varint(&mut self) -> Result<u64, WireError> {
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            _ => self.varint_long(),
        }
    }

    fn varint_long(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return err("truncated varint");
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return err("varint overflows 64 bits");
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        err("varint overflows 64 bits")
    }

    /// Field number and wire type of the next field.
    #[inline(always)]
    fn key(&mut self) -> Result<(u32, u8), WireError> {
        let k = self.varint()?;
        if k > u64::from(u32::MAX) {
            return err(format!("invalid key value: {k}"));
        }
        let wire = (k & 7) as u8;
        let field = (k >> 3) as u32;
        if field == 0 {
            return err("invalid field number 0");
        }
        if wire > 5 {
            return err(format!("invalid wire type value: {wire}"));
        }
        Ok((field, wire))
    }

    fn fixed64(&mut self) -> Result<[u8; 8], WireError> {
        let Some(b) = self.buf.get(self.pos..self.pos + 8) else {
            return err("buffer underflow");
        };
        self.pos += 8;
        Ok(b.try_into().unwrap_or([0; 8]))
    }

    fn double(&mut self) -> Result<f64, WireError> {
        self.fixed64().map(f64::from_le_bytes)
    }

    #[inline(always)]
    fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.varint()?;
        let Ok(len) = usize::try_from(len) else {
            return err("buffer underflow");
        };
        let end = self.pos.checked_add(len).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return err("buffer underflow");
        };
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    /// Whether the next byte is `key` (a one-byte field key), consumed if so.
    #[inline(always)]
    fn tagged(&mut self, key: u8) -> bool {
        let hit = self.buf.get(self.pos) == Some(&key);
        self.pos += usize::from(hit);
        hit
    }

    /// The bytes of a length-delimited field whose one-byte key is `key`, when the next field
    /// is one and well formed.
    #[inline(always)]
    fn tagged_bytes(&mut self, key: u8) -> Option<&'a [u8]> {
        if self.tagged(key) {
            self.bytes().ok()
        } else {
            None
        }
    }

    fn string(&mut self, field: &str) -> Result<&'a str, WireError> {
        text(self.bytes()?, field)
    }

    /// Skips a field of `wire` type (whose key was read), as prost's `skip_field` does.
    fn skip(&mut self, field: u32, wire: u8) -> Result<(), WireError> {
        if self.depth == 0 {
            return too_deep();
        }
        match wire {
            START_GROUP => self.skip_group(field),
            w => self.skip_flat(w),
        }
    }

    /// Skips a field that is not a group.
    fn skip_flat(&mut self, wire: u8) -> Result<(), WireError> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.fixed64().map(drop),
            LEN => self.bytes().map(drop),
            FIXED32 => {
                if self.buf.len() - self.pos.min(self.buf.len()) < 4 {
                    return err("buffer underflow");
                }
                self.pos += 4;
                Ok(())
            }
            _ => err("unexpected end group tag"),
        }
    }

    /// Skips a group whose start key (of `field`) was read, up to its matching end key,
    /// without recursion: the field numbers of the groups open inside it are kept on a stack
    /// of fixed size. A field inside `n` open groups is skipped with `n` fewer levels left, as
    /// prost skips it, and none left is refused.
    #[cold]
    fn skip_group(&mut self, field: u32) -> Result<(), WireError> {
        let mut open = [0u32; RECURSION_LIMIT as usize];
        open[0] = field;
        let mut len = 1usize;
        // Levels left at the group's own key; at most RECURSION_LIMIT, so `open` never fills.
        let levels = self.depth as usize;
        loop {
            if self.at_end() {
                return err("truncated group: the buffer ends before its end group tag");
            }
            let (f, w) = self.key()?;
            if w == END_GROUP {
                if f != open[len - 1] {
                    return err("unexpected end group tag");
                }
                len -= 1;
                if len == 0 {
                    return Ok(());
                }
                continue;
            }
            // This field is skipped `len` levels below the group's key.
            if len >= levels {
                return too_deep();
            }
            if w == START_GROUP {
                open[len] = f;
                len += 1;
            } else {
                self.skip_flat(w)?;
            }
        }
    }

    /// Appends a repeated double field's values (packed or not).
    fn doubles(&mut self, wire: u8, out: &mut Vec<f64>) -> Result<(), WireError> {
        match wire {
            LEN => {
                let b = self.bytes()?;
                if b.len() % 8 != 0 {
                    return err("invalid packed length of a repeated double");
                }
                out.extend(
                    b.chunks_exact(8)
                        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))),
                );
                Ok(())
            }
            FIXED64 => {
                out.push(self.double()?);
                Ok(())
            }
            w => wrong_wire(w, FIXED64),
        }
    }
}

/// `bytes` as a string.
///
/// # Errors
/// Bytes that are not UTF-8 (named after `field`).
#[inline]
pub(crate) fn text<'a>(bytes: &'a [u8], field: &str) -> Result<&'a str, WireError> {
    std::str::from_utf8(bytes).or_else(|_| {
        err(format!(
            "invalid string value: data is not UTF-8 encoded ({field})"
        ))
    })
}

fn too_deep<T>() -> Result<T, WireError> {
    err(format!(
        "fields nested more than {RECURSION_LIMIT} levels deep (groups and embedded messages \
         together; protobuf's recursion limit)"
    ))
}

fn wrong_wire<T>(got: u8, want: u8) -> Result<T, WireError> {
    err(format!(
        "invalid wire type: {} (expected {})",
        wire_name(got),
        wire_name(want)
    ))
}

fn wire_name(w: u8) -> &'static str {
    match w {
        VARINT => "Varint",
        FIXED64 => "SixtyFourBit",
        LEN => "LengthDelimited",
        START_GROUP => "StartGroup",
        END_GROUP => "EndGroup",
        _ => "ThirtyTwoBit",
    }
}

fn expect(wire: u8, want: u8) -> Result<(), WireError> {
    if wire == want {
        Ok(())
    } else {
        wrong_wire(wire, want)
    }
}

/// A request's namespace and the encoded datums, not yet read.
#[derive(Debug, Default)]
pub(crate) struct RequestView<'a> {
    /// `namespace`.
    pub(crate) namespace: &'a str,
    /// Each `metric_data` entry's bytes, in order: the first [`MAX_DATUMS`] of them.
    pub(crate) datums: Vec<&'a [u8]>,
    /// How many `metric_data` entries the request has (more than `datums` holds when it has
    /// more than [`MAX_DATUMS`]).
    pub(crate) datum_count: usize,
}

impl<'a> RequestView<'a> {
    /// Reads the top level of a request.
    ///
    /// # Errors
    /// Bytes that are not a valid request (at this level; datums are checked by
    /// [`DatumView::read`]).
    pub(crate) fn read(buf: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(buf);
        let mut view = RequestView::default();
        while !r.at_end() {
            let (field, wire) = r.key()?;
            match field {
                1 => {
                    expect(wire, LEN)?;
                    view.namespace = r.string("namespace")?;
                }
                2 => {
                    expect(wire, LEN)?;
                    let datum = r.bytes()?;
                    if view.datums.len() < MAX_DATUMS {
                        view.datums.push(datum);
                    }
                    view.datum_count += 1;
                }
                _ => r.skip(field, wire)?,
            }
        }
        Ok(view)
    }
}

/// One `MetricDatum`, borrowing the request's bytes. Read many datums into one view to reuse
/// its buffers. Its strings are not yet checked to be UTF-8 (see [`text`]).
#[derive(Debug, Default)]
pub(crate) struct DatumView<'a> {
    /// `metric_name`.
    pub(crate) metric_name: &'a [u8],
    /// `dimensions` as (name, value), in request order: the first [`MAX_DIMENSIONS`] of them.
    pub(crate) dimensions: Vec<(&'a [u8], &'a [u8])>,
    /// How many `dimensions` entries the datum has (more than `dimensions` holds when it has
    /// more than [`MAX_DIMENSIONS`]; each is read and checked all the same).
    pub(crate) dimension_count: usize,
    /// `timestamp_ms`.
    pub(crate) timestamp_ms: i64,
    /// `value`.
    pub(crate) value: Option<f64>,
    /// `statistic_values`.
    pub(crate) statistic_values: Option<StatisticSet>,
    /// `values`.
    pub(crate) values: Vec<f64>,
    /// `counts`.
    pub(crate) counts: Vec<f64>,
    /// `unit`.
    pub(crate) unit: &'a [u8],
    /// `storage_resolution`.
    pub(crate) storage_resolution: i32,
    /// When the datum's bytes begin with its identity fields (`metric_name` and `dimensions`,
    /// as prost and most encoders write them) and have none later: where they end. 0 otherwise.
    pub(crate) identity_end: usize,
}

impl<'a> DatumView<'a> {
    /// Reads a datum's bytes into this view, replacing what it held.
    ///
    /// # Errors
    /// Bytes that are not a valid `MetricDatum`.
    #[inline]
    pub(crate) fn read(&mut self, buf: &'a [u8]) -> Result<(), WireError> {
        if self.read_usual(buf) {
            return Ok(());
        }
        self.read_any(buf)
    }

    /// Reads a datum laid out as encoders write one (prost, the Go and Java runtimes: fields in
    /// number order, each once, keys in one byte): `metric_name`, then `dimensions` (each its
    /// `name` then its `value`), then any of `timestamp_ms`, `value`, `unit`,
    /// `storage_resolution`, nothing else. Such bytes mean what [`DatumView::read_any`] makes
    /// of them, with less work per field (a property test checks it); `false` for any other
    /// bytes, valid or not, and then the view holds nothing useful.
    fn read_usual(&mut self, buf: &'a [u8]) -> bool {
        self.dimensions.clear();
        self.dimension_count = 0;
        self.reset_data();
        let mut r = Reader::nested(buf, 1);
        let Some(name) = r.tagged_bytes((1 << 3) | LEN) else {
            return false;
        };
        self.metric_name = name;
        while r.tagged((2 << 3) | LEN) {
            let Ok(dimension) = r.bytes() else {
                return false;
            };
            let mut d = Reader::nested(dimension, 2);
            let (Some(n), Some(v)) = (
                d.tagged_bytes((1 << 3) | LEN),
                d.tagged_bytes((2 << 3) | LEN),
            ) else {
                return false;
            };
            if !d.at_end() {
                return false;
            }
            if self.dimensions.len() < MAX_DIMENSIONS {
                self.dimensions.push((n, v));
            }
            self.dimension_count += 1;
        }
        self.identity_end = r.pos;
        if r.tagged((3 << 3) | VARINT) {
            let Ok(t) = r.varint() else { return false };
            self.timestamp_ms = t as i64;
        }
        if r.tagged((4 << 3) | FIXED64) {
            let Ok(v) = r.double() else { return false };
            self.value = Some(v);
        }
        if r.tagged((8 << 3) | LEN) {
            let Ok(u) = r.bytes() else { return false };
            self.unit = u;
        }
        if r.tagged((9 << 3) | VARINT) {
            let Ok(s) = r.varint() else { return false };
            self.storage_resolution = s as i32;
        }
        r.at_end()
    }

    /// [`DatumView::read`] of bytes in any layout prost accepts.
    fn read_any(&mut self, buf: &'a [u8]) -> Result<(), WireError> {
        self.metric_name = b"";
        self.dimensions.clear();
        self.dimension_count = 0;
        self.reset_data();
        self.identity_end = 0;
        let (mut leading, mut interleaved) = (true, false);
        let mut r = Reader::nested(buf, 1);
        while !r.at_end() {
            let (field, wire) = r.key()?;
            self.field(&mut r, field, wire)?;
            if field <= 2 {
                if leading {
                    self.identity_end = r.pos;
                } else {
                    interleaved = true;
                }
            } else {
                leading = false;
            }
        }
        if interleaved {
            self.identity_end = 0;
        }
        Ok(())
    }

    /// Reads a datum whose first `identity_end` bytes are those of the datum read before,
    /// which ended its identity there: only the fields after them are read, and the identity
    /// stays. Returns `false` when an identity field comes later after all; then read the
    /// datum whole with [`DatumView::read`].
    ///
    /// # Errors
    /// Bytes that are not a valid `MetricDatum`.
    pub(crate) fn read_rest(
        &mut self,
        buf: &'a [u8],
        identity_end: usize,
    ) -> Result<bool, WireError> {
        self.reset_data();
        let mut r = Reader::nested(buf, 1);
        r.pos = identity_end;
        while !r.at_end() {
            let (field, wire) = r.key()?;
            if field <= 2 {
                return Ok(false);
            }
            self.field(&mut r, field, wire)?;
        }
        Ok(true)
    }

    fn reset_data(&mut self) {
        self.timestamp_ms = 0;
        self.value = None;
        self.statistic_values = None;
        self.values.clear();
        self.counts.clear();
        self.unit = b"";
        self.storage_resolution = 0;
    }

    #[inline(always)]
    fn field(&mut self, r: &mut Reader<'a>, field: u32, wire: u8) -> Result<(), WireError> {
        match field {
            1 => {
                expect(wire, LEN)?;
                // prost checks every occurrence of a string field, the overwritten ones too.
                replace_checked(&mut self.metric_name, r.bytes()?, "metric_name")?;
            }
            2 => {
                expect(wire, LEN)?;
                let d = read_dimension(r.bytes()?)?;
                if self.dimensions.len() < MAX_DIMENSIONS {
                    self.dimensions.push(d);
                }
                self.dimension_count += 1;
            }
            3 => {
                expect(wire, VARINT)?;
                self.timestamp_ms = r.varint()? as i64;
            }
            4 => {
                expect(wire, FIXED64)?;
                self.value = Some(r.double()?);
            }
            5 => {
                expect(wire, LEN)?;
                let set = self.statistic_values.get_or_insert(StatisticSet {
                    sample_count: 0.0,
                    sum: 0.0,
                    minimum: 0.0,
                    maximum: 0.0,
                });
                merge_statistic_set(r.bytes()?, set)?;
            }
            6 => r.doubles(wire, &mut self.values)?,
            7 => r.doubles(wire, &mut self.counts)?,
            8 => {
                expect(wire, LEN)?;
                replace_checked(&mut self.unit, r.bytes()?, "unit")?;
            }
            9 => {
                expect(wire, VARINT)?;
                self.storage_resolution = r.varint()? as i32;
            }
            _ => r.skip(field, wire)?,
        }
        Ok(())
    }
}

/// The usual layout of a single-value datum after its identity: `timestamp_ms` then `value`,
/// each once. Returns them with the position after them, or `None` when `datum` (from `from`)
/// is laid out otherwise.
#[inline]
pub(crate) fn timestamp_and_value(datum: &[u8], from: usize) -> Option<(i64, f64, usize)> {
    let mut r = Reader::nested(datum, 1);
    r.pos = from;
    if datum.get(r.pos) != Some(&((3 << 3) | VARINT)) {
        return None;
    }
    r.pos += 1;
    let ts = r.varint().ok()? as i64;
    if datum.get(r.pos) != Some(&((4 << 3) | FIXED64)) {
        return None;
    }
    r.pos += 1;
    let v = r.double().ok()?;
    Some((ts, v, r.pos))
}

/// Whether `bytes` are well-formed fields with numbers in `allowed` only.
pub(crate) fn only_fields(bytes: &[u8], allowed: &[u32]) -> bool {
    // The tail of a datum: its fields are one message deep.
    let mut r = Reader::nested(bytes, 1);
    while !r.at_end() {
        let Ok((field, wire)) = r.key() else {
            return false;
        };
        if !allowed.contains(&field) || r.skip(field, wire).is_err() {
            return false;
        }
    }
    true
}

/// Sets a lazily checked string field to `new`. A value it replaces (the field occurred twice)
/// is checked now, as prost checks every occurrence: only the last one is left for the caller
/// to check.
#[inline]
fn replace_checked<'a>(slot: &mut &'a [u8], new: &'a [u8], field: &str) -> Result<(), WireError> {
    if !slot.is_empty() {
        text(slot, field)?;
    }
    *slot = new;
    Ok(())
}

#[inline(always)]
fn read_dimension(buf: &[u8]) -> Result<(&[u8], &[u8]), WireError> {
    let mut r = Reader::nested(buf, 2);
    let (mut name, mut value): (&[u8], &[u8]) = (b"", b"");
    while !r.at_end() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect(wire, LEN)?;
                replace_checked(&mut name, r.bytes()?, "name")?;
            }
            2 => {
                expect(wire, LEN)?;
                replace_checked(&mut value, r.bytes()?, "value")?;
            }
            _ => r.skip(field, wire)?,
        }
    }
    Ok((name, value))
}

fn merge_statistic_set(buf: &[u8], set: &mut StatisticSet) -> Result<(), WireError> {
    let mut r = Reader::nested(buf, 2);
    while !r.at_end() {
        let (field, wire) = r.key()?;
        let slot = match field {
            1 => &mut set.sample_count,
            2 => &mut set.sum,
            3 => &mut set.minimum,
            4 => &mut set.maximum,
            _ => {
                r.skip(field, wire)?;
                continue;
            }
        };
        expect(wire, FIXED64)?;
        *slot = r.double()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
