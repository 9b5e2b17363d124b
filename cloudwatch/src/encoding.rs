//! `Content-Encoding: gzip` request bodies inflated within [`Limits::max_body_bytes`] (SDKs
//! compress `PutMetricData` above 10 KB, the CloudWatch agent above 350 bytes).

use std::borrow::Cow;
use std::io::Read;

use crate::error::{Error, Result};
use crate::limits::{Limit, Limits};

/// `body` as sent under `content_encoding`: borrowed when it is not encoded, inflated when it
/// is gzip (one or more members). Inflation stops one byte past
/// [`Limits::max_body_bytes`], so a small body that inflates hugely costs no more than that.
///
/// # Errors
///
/// [`Error::TooLarge`] ([`Limit::BodyBytes`]) for a body that inflates past the bound,
/// [`Error::Malformed`] for invalid gzip, [`Error::UnsupportedContentEncoding`] for another
/// encoding.
pub fn inflate<'b>(
    content_encoding: Option<&str>,
    body: &'b [u8],
    limits: &Limits,
) -> Result<Cow<'b, [u8]>> {
    let encoding = content_encoding.unwrap_or("").trim();
    if encoding.is_empty() || encoding.eq_ignore_ascii_case("identity") {
        return Ok(Cow::Borrowed(body));
    }
    if !encoding.eq_ignore_ascii_case("gzip") {
        return Err(Error::UnsupportedContentEncoding(
            thermostat_metrics::quote::quote(encoding),
        ));
    }
    let max = limits.max_body_bytes;
    if body.len() > max {
        return Err(Error::too_large(Limit::BodyBytes, max));
    }
    let mut inflated = Vec::new();
    flate2::read::MultiGzDecoder::new(body)
        .take(max as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| Error::Malformed(format!("gzip: {e}")))?;
    if inflated.len() > max {
        return Err(Error::too_large(Limit::BodyBytes, max));
    }
    Ok(Cow::Owned(inflated))
}
