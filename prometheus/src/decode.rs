//! Bodies to requests: snappy (block format) with bounded sizes, a scan of the protobuf wire
//! format that enforces the count limits before anything is allocated per element, then
//! prost, then the label size limits.

use prost::Message as _;

use crate::error::DecodeError;
use crate::limits::*;
use crate::proto::WriteRequest;

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

/// Counts the request's elements on the wire and refuses it if any count is over its limit,
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
                    series(p, i, &mut c)?;
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

#[derive(Default)]
struct Counts {
    series: usize,
    labels: usize,
    samples: usize,
    exemplars: usize,
    histograms: usize,
    metadata: usize,
}

fn series(raw: &[u8], index: usize, c: &mut Counts) -> Result<(), DecodeError> {
    let at = format!("timeseries[{index}]");
    let mut labels = 0;
    for_each_field(raw, &at, |field, payload| {
        match field {
            1 => {
                labels += 1;
                c.labels += 1;
                over(
                    labels,
                    MAX_LABELS_PER_SERIES,
                    &format!("{at}.labels"),
                    "labels per series",
                )?;
                over(
                    c.labels,
                    MAX_LABELS_PER_REQUEST,
                    &format!("{at}.labels"),
                    "labels per request",
                )?;
            }
            2 => {
                c.samples += 1;
                over(
                    c.samples,
                    MAX_SAMPLES_PER_REQUEST,
                    &format!("{at}.samples"),
                    "samples per request",
                )?;
            }
            3 => {
                c.exemplars += 1;
                let e = format!("{at}.exemplars");
                over(
                    c.exemplars,
                    MAX_EXEMPLARS_PER_REQUEST,
                    &e,
                    "exemplars per request",
                )?;
                if let Some(p) = payload {
                    for_each_field(p, &e, |f, _| {
                        if f == 1 {
                            c.labels += 1;
                            over(
                                c.labels,
                                MAX_LABELS_PER_REQUEST,
                                &format!("{e}.labels"),
                                "labels per request",
                            )?;
                        }
                        Ok(())
                    })?;
                }
            }
            4 => {
                c.histograms += 1;
                over(
                    c.histograms,
                    MAX_HISTOGRAMS_PER_REQUEST,
                    &format!("{at}.histograms"),
                    "histograms per request",
                )?;
            }
            _ => {}
        }
        Ok(())
    })
}

fn over(count: usize, limit: usize, field: &str, what: &str) -> Result<(), DecodeError> {
    if count > limit {
        Err(DecodeError::new(field, format!("at most {limit} {what}")))
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
