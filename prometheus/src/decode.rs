//! Bodies to requests: snappy (block format) with bounded sizes, a scan of the protobuf wire
//! format that enforces the count limits before anything is allocated per element, then
//! prost, then the size limits prost's result is checked against.

use std::fmt;

use prost::Message as _;

use crate::error::DecodeError;
use crate::limits::*;
use crate::negotiate::Version;
use crate::proto::WriteRequest;
use crate::v2;

/// A decoded request of either version.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// Remote write 1.0.
    V1(WriteRequest),
    /// Remote write 2.0.
    V2(v2::Request),
}

/// Decodes a body of the negotiated version ([`crate::negotiate`]): snappy, then the
/// protobuf, with every limit of [`crate::limits`] checked before prost allocates.
///
/// # Errors
/// The first limit or format rule the body breaks, naming the field.
pub fn decode(version: Version, body: &[u8]) -> Result<Request, DecodeError> {
    match version {
        Version::V1 => decode_v1(body).map(Request::V1),
        Version::V2 => decode_v2(body).map(Request::V2),
    }
}

/// Decodes a remote write 2.0 body: snappy block-compressed `io.prometheus.write.v2.Request`.
///
/// # Errors
/// The first limit or format rule the body breaks, naming the field.
pub fn decode_v2(body: &[u8]) -> Result<v2::Request, DecodeError> {
    let raw = decompress(body)?;
    decode_v2_protobuf(&raw)
}

/// Decodes a remote write 1.0 body: snappy block-compressed `prometheus.WriteRequest`.
///
/// # Errors
/// The first limit or format rule the body breaks, naming the field.
pub fn decode_v1(body: &[u8]) -> Result<WriteRequest, DecodeError> {
    let raw = decompress(body)?;
    decode_protobuf(&raw)
}

/// Inflates a snappy block-format body, refusing (before allocating) a compressed body over
/// [`MAX_COMPRESSED_BYTES`] or a declared length over [`MAX_DECOMPRESSED_BYTES`].
///
/// # Errors
/// A size over its limit, or a body that is not snappy block format.
pub fn decompress(body: &[u8]) -> Result<Vec<u8>, DecodeError> {
    if body.len() > MAX_COMPRESSED_BYTES {
        return Err(DecodeError::new(
            "body",
            format!(
                "must be at most {MAX_COMPRESSED_BYTES} bytes compressed (got {})",
                body.len()
            ),
        ));
    }
    let declared = snap::raw::decompress_len(body)
        .map_err(|e| DecodeError::new("snappy", format!("not a snappy block-format body: {e}")))?;
    if declared > MAX_DECOMPRESSED_BYTES {
        return Err(DecodeError::new(
            "snappy",
            format!(
                "must declare at most {MAX_DECOMPRESSED_BYTES} bytes decompressed (declares {declared})"
            ),
        ));
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| DecodeError::new("snappy", format!("not a snappy block-format body: {e}")))
}

/// Decodes an uncompressed `prometheus.WriteRequest`, after [`check_limits`].
///
/// # Errors
/// A limit broken, or a body that is not the message.
pub fn decode_protobuf(raw: &[u8]) -> Result<WriteRequest, DecodeError> {
    check_limits(raw)?;
    let request = WriteRequest::decode(raw)
        .map_err(|e| DecodeError::new("protobuf", format!("not a prometheus.WriteRequest: {e}")))?;
    check_label_sizes(&request)?;
    Ok(request)
}

/// Decodes an uncompressed `io.prometheus.write.v2.Request`, after [`check_limits_v2`]; the
/// symbol table must start with the empty string, as the specification requires.
///
/// # Errors
/// A limit broken, a body that is not the message, or a first symbol that is not empty.
pub fn decode_v2_protobuf(raw: &[u8]) -> Result<v2::Request, DecodeError> {
    check_limits_v2(raw)?;
    let request = v2::Request::decode(raw).map_err(|e| {
        DecodeError::new(
            "protobuf",
            format!("not an io.prometheus.write.v2.Request: {e}"),
        )
    })?;
    if let Some(first) = request.symbols.first()
        && !first.is_empty()
    {
        return Err(DecodeError::new(
            "symbols[0]",
            format!("must be the empty string (got {} bytes)", first.len()),
        ));
    }
    Ok(request)
}

/// Counts a 1.0 request's elements on the wire and refuses it if any count is over its limit,
/// so that decoding allocates in proportion to the body only within those bounds.
///
/// # Errors
/// The first count over its limit, or malformed wire format.
pub fn check_limits(raw: &[u8]) -> Result<(), DecodeError> {
    let mut c = Counts::default();
    for_each_field(raw, "protobuf", |field, payload| {
        match field {
            1 => {
                let i = c.series;
                c.series += 1;
                over(
                    c.series,
                    MAX_SERIES_PER_REQUEST,
                    "timeseries",
                    "series per request",
                )?;
                if let Some(p) = payload {
                    series_v1(p, i, &mut c)?;
                }
            }
            3 => {
                c.metadata += 1;
                over(
                    c.metadata,
                    MAX_METADATA_PER_REQUEST,
                    "metadata",
                    "metadata entries per request",
                )?;
            }
            _ => {}
        }
        Ok(())
    })
}

/// Counts a 2.0 request's elements on the wire (symbols and their bytes, series, label
/// references, samples, histograms with their spans and buckets, exemplars) and refuses it if
/// any count is over its limit, before prost allocates.
///
/// # Errors
/// The first count over its limit, or malformed wire format.
pub fn check_limits_v2(raw: &[u8]) -> Result<(), DecodeError> {
    let mut c = Counts::default();
    for_each_field(raw, "protobuf", |field, payload| {
        match field {
            4 => {
                let i = c.symbols;
                c.symbols += 1;
                over(
                    c.symbols,
                    MAX_SYMBOLS_PER_REQUEST,
                    "symbols",
                    "symbols per request",
                )?;
                let len = payload.map_or(0, <[u8]>::len);
                if len > MAX_SYMBOL_BYTES {
                    return Err(DecodeError::new(
                        format!("symbols[{i}]"),
                        format!("at most {MAX_SYMBOL_BYTES} bytes (got {len})"),
                    ));
                }
                c.symbol_bytes += len;
                over(
                    c.symbol_bytes,
                    MAX_SYMBOLS_BYTES_PER_REQUEST,
                    "symbols",
                    "bytes of symbols per request",
                )?;
            }
            5 => {
                let i = c.series;
                c.series += 1;
                over(
                    c.series,
                    MAX_SERIES_PER_REQUEST,
                    "timeseries",
                    "series per request",
                )?;
                if let Some(p) = payload {
                    series_v2(p, i, &mut c)?;
                }
            }
            _ => {}
        }
        Ok(())
    })
}

#[derive(Default)]
struct Counts {
    series: usize,
    labels: usize,
    samples: usize,
    exemplars: usize,
    histograms: usize,
    buckets: usize,
    metadata: usize,
    symbols: usize,
    symbol_bytes: usize,
}

impl Counts {
    fn labels(&mut self, n: usize, field: impl fmt::Display) -> Result<(), DecodeError> {
        self.labels += n;
        over(
            self.labels,
            MAX_LABELS_PER_REQUEST,
            field,
            "labels per request",
        )
    }

    fn sample(&mut self, field: impl fmt::Display) -> Result<(), DecodeError> {
        self.samples += 1;
        over(
            self.samples,
            MAX_SAMPLES_PER_REQUEST,
            field,
            "samples per request",
        )
    }

    fn exemplar(&mut self, field: impl fmt::Display) -> Result<(), DecodeError> {
        self.exemplars += 1;
        over(
            self.exemplars,
            MAX_EXEMPLARS_PER_REQUEST,
            field,
            "exemplars per request",
        )
    }

    fn histogram(&mut self, field: impl fmt::Display) -> Result<(), DecodeError> {
        self.histograms += 1;
        over(
            self.histograms,
            MAX_HISTOGRAMS_PER_REQUEST,
            field,
            "histograms per request",
        )
    }
}

fn series_v1(raw: &[u8], index: usize, c: &mut Counts) -> Result<(), DecodeError> {
    let at = format!("timeseries[{index}]");
    let mut labels = 0;
    let mut histograms = 0;
    for_each_field(raw, &at, |field, payload| {
        match field {
            1 => {
                labels += 1;
                over(
                    labels,
                    MAX_LABELS_PER_SERIES,
                    format_args!("{at}.labels"),
                    "labels per series",
                )?;
                c.labels(1, format_args!("{at}.labels"))?;
            }
            2 => c.sample(format_args!("{at}.samples"))?,
            3 => {
                let e = format!("{at}.exemplars");
                c.exemplar(&*e)?;
                if let Some(p) = payload {
                    for_each_field(p, &e, |f, _| {
                        if f == 1 {
                            c.labels(1, format_args!("{e}.labels"))?;
                        }
                        Ok(())
                    })?;
                }
            }
            4 => {
                c.histogram(format_args!("{at}.histograms"))?;
                if let Some(p) = payload {
                    histogram(p, &format!("{at}.histograms[{histograms}]"), c)?;
                }
                histograms += 1;
            }
            _ => {}
        }
        Ok(())
    })
}

fn series_v2(raw: &[u8], index: usize, c: &mut Counts) -> Result<(), DecodeError> {
    let at = format!("timeseries[{index}]");
    let mut refs = 0;
    let mut histograms = 0;
    for_each_field(raw, &at, |field, payload| {
        match field {
            1 => {
                let n = payload.map_or(1, varints);
                refs += n;
                over(
                    refs,
                    2 * MAX_LABELS_PER_SERIES,
                    format_args!("{at}.labels_refs"),
                    "label references per series (two a label)",
                )?;
                c.labels(n.div_ceil(2), format_args!("{at}.labels_refs"))?;
            }
            2 => c.sample(format_args!("{at}.samples"))?,
            3 => {
                c.histogram(format_args!("{at}.histograms"))?;
                if let Some(p) = payload {
                    histogram(p, &format!("{at}.histograms[{histograms}]"), c)?;
                }
                histograms += 1;
            }
            4 => {
                let e = format!("{at}.exemplars");
                c.exemplar(&*e)?;
                if let Some(p) = payload {
                    for_each_field(p, &e, |f, payload| {
                        if f == 1 {
                            let n = payload.map_or(1, varints);
                            c.labels(n.div_ceil(2), format_args!("{e}.labels_refs"))?;
                        }
                        Ok(())
                    })?;
                }
            }
            _ => {}
        }
        Ok(())
    })
}

/// Spans, bucket counts and custom bounds of one native histogram.
fn histogram(raw: &[u8], at: &str, c: &mut Counts) -> Result<(), DecodeError> {
    let mut spans = 0;
    let mut buckets = 0;
    for_each_field(raw, at, |field, payload| {
        let n = match (field, payload) {
            (8 | 11, _) => {
                spans += 1;
                over(
                    spans,
                    MAX_SPANS_PER_HISTOGRAM,
                    format_args!("{at}.spans"),
                    "spans per histogram",
                )?;
                return Ok(());
            }
            // Packed sint64 deltas: one varint each.
            (9 | 12, Some(p)) => varints(p),
            // Packed doubles: eight bytes each.
            (10 | 13 | 16, Some(p)) => p.len().div_ceil(8),
            // Unpacked: one element per field.
            (9 | 10 | 12 | 13 | 16, None) => 1,
            _ => return Ok(()),
        };
        buckets += n;
        over(
            buckets,
            MAX_BUCKETS_PER_HISTOGRAM,
            format_args!("{at}.buckets"),
            "bucket counts and custom bounds per histogram",
        )?;
        c.buckets += n;
        over(
            c.buckets,
            MAX_BUCKETS_PER_REQUEST,
            format_args!("{at}.buckets"),
            "bucket counts and custom bounds per request",
        )
    })
}

/// How many varints a packed field holds: the bytes that end one (the high bit clear).
fn varints(payload: &[u8]) -> usize {
    payload.iter().filter(|&&b| b < 0x80).count()
}

/// Refuses a count over its limit. `field` is formatted only then (callers pass
/// `format_args!`): this runs for every element of every request.
fn over(
    count: usize,
    limit: usize,
    field: impl fmt::Display,
    what: &str,
) -> Result<(), DecodeError> {
    if count > limit {
        Err(DecodeError::new(
            field.to_string(),
            format!("at most {limit} {what}"),
        ))
    } else {
        Ok(())
    }
}

/// Calls `f(field number, payload of a length-delimited field)` for each field of one
/// message; `None` for the other wire types.
fn for_each_field(
    mut buf: &[u8],
    at: &str,
    mut f: impl FnMut(u64, Option<&[u8]>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let truncated = || DecodeError::new(at, "truncated or malformed protobuf");
    while !buf.is_empty() {
        let key = varint(&mut buf).ok_or_else(truncated)?;
        let (field, wire) = (key >> 3, key & 7);
        if field == 0 {
            return Err(DecodeError::new(at, "malformed protobuf (field number 0)"));
        }
        let payload = match wire {
            0 => {
                varint(&mut buf).ok_or_else(truncated)?;
                None
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                buf = buf.get(n..).ok_or_else(truncated)?;
                None
            }
            2 => {
                let len = usize::try_from(varint(&mut buf).ok_or_else(truncated)?)
                    .map_err(|_| truncated())?;
                let p = buf.get(..len).ok_or_else(truncated)?;
                buf = &buf[len..];
                Some(p)
            }
            _ => {
                return Err(DecodeError::new(
                    at,
                    format!("malformed protobuf (wire type {wire} is not used by remote write)"),
                ));
            }
        };
        f(field, payload)?;
    }
    Ok(())
}

fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some(value);
        }
    }
    None
}

fn check_label_sizes(request: &WriteRequest) -> Result<(), DecodeError> {
    for (i, ts) in request.timeseries.iter().enumerate() {
        for (j, l) in ts.labels.iter().enumerate() {
            if l.name.len() > MAX_LABEL_NAME_BYTES {
                return Err(DecodeError::new(
                    format!("timeseries[{i}].labels[{j}].name"),
                    format!(
                        "at most {MAX_LABEL_NAME_BYTES} bytes (got {})",
                        l.name.len()
                    ),
                ));
            }
            if l.value.len() > MAX_LABEL_VALUE_BYTES {
                return Err(DecodeError::new(
                    format!("timeseries[{i}].labels[{j}].value"),
                    format!(
                        "at most {MAX_LABEL_VALUE_BYTES} bytes (got {})",
                        l.value.len()
                    ),
                ));
            }
        }
    }
    Ok(())
}
