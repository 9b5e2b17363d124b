//! AWS Signature Version 4 verification, for the CloudWatch-compatible API (service
//! `monitoring`).
//!
//! # What this module owns
//! - the `aws_api.access_keys` entries and the keys in force ([`AccessKeyEntry`],
//!   [`AccessKeys`], `sigv4/keys.rs`), secrets read by functions the caller passes;
//! - [`verify`]: a received request ([`SignedRequest`]) checked against them, in both of
//!   SigV4's forms: the `Authorization: AWS4-HMAC-SHA256 …` header and the presigned query
//!   string (`X-Amz-Algorithm`, `X-Amz-Credential`, …, `X-Amz-Signature`);
//! - the refusals, with the codes and HTTP statuses AWS answers ([`SigV4Error`]).
//!
//! # Why hand-written
//! No maintained crate *verifies* SigV4: `aws-sigv4` signs (and, as an `aws-*` crate, may not
//! be a normal dependency of a core: style.md §2 rule 1). So the verifier is written here on
//! the well-kept primitives `sha2` and `hmac` (RustCrypto), following AWS's specification of
//! the canonical request, the string to sign and the signing key. `aws-sigv4` is its test
//! oracle (a dev-dependency): requests signed by the real AWS signer must verify, tampered ones
//! must not; and a sample of AWS's SigV4 test suite (`get-vanilla`, …) is checked too.
//!
//! # The canonical request, as checked
//! - method as received;
//! - the path as received (percent-encoded), dot segments and empty segments removed as AWS's
//!   signers do, then every byte but the unreserved ones and `/` percent-encoded once more
//!   (non-S3 services encode twice: `%` becomes `%25`);
//! - the query: `&`-separated pairs, each percent-decoded (`+` as a space) and encoded again
//!   (RFC 3986 unreserved bytes kept), sorted, `X-Amz-Signature` left out;
//! - each signed header: lowercase name, the values of every header of that name, trimmed of
//!   spaces with runs of spaces collapsed, joined by `,`;
//! - the signed-header list; the payload hash: `x-amz-content-sha256` when sent (it must then
//!   be `UNSIGNED-PAYLOAD` or the SHA-256 of the body as received), else the SHA-256 of the
//!   body as received (compressed bodies are hashed compressed, as they were signed).
//!
//! # Time
//! - Header form: `X-Amz-Date` must be within 15 minutes of `now_ms`, either way; the scope's
//!   date must be its day. A stale date answers `SignatureDoesNotMatch` (HTTP 403, "Signature
//!   expired: … is now earlier than … (… - 15 min.)"). AWS's common-errors pages list
//!   `RequestExpired` (400) for this, but the AWS Query services (STS, SQS) are seen answering
//!   `SignatureDoesNotMatch` in clients' bug reports, and CloudWatch is a Query service; JSON
//!   services answer `InvalidSignatureException` instead.
//! - Presigned form: `X-Amz-Date` may be at most 15 minutes ahead of `now_ms`, and the request
//!   is valid until `X-Amz-Date + X-Amz-Expires` (at most 7 days); after that,
//!   `RequestExpired` (HTTP 400).
//! - Only `X-Amz-Date` dates a header-form request (AWS also reads `Date`; the SDKs and the
//!   CLI all send `X-Amz-Date`).
//!
//! # Invariants
//! - No secret is kept in text: each key holds the first HMAC of the signing-key chain, keyed
//!   with `"AWS4" + secret`; no `Debug`, `Display` or error message shows it.
//! - Signatures are compared in constant time (`subtle`).
//! - Every refusal's message is at most [`MAX_ERROR_MESSAGE_BYTES`] long; what it echoes of
//!   the request is checked or clipped first, and it never echoes an `Authorization` header
//!   that is not SigV4 (a bearer token, say).
//! - No IO, no wall clock: `now_ms` is a parameter (Unix milliseconds).
//! - `X-Amz-Security-Token` is accepted (Thermostat issues no session tokens, so it is not
//!   checked against anything); when signed, it is part of the canonical request like any
//!   signed header or query parameter.

mod keys;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;

use hmac::Mac as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

pub use keys::{
    AccessKeyEntry, AccessKeyError, AccessKeySecret, AccessKeys, MAX_ACCESS_KEY_ID_BYTES,
    MAX_ACCESS_KEYS, MAX_SECRET_BYTES,
};

use crate::role::Role;
use keys::{HmacSha256, valid_access_key_id};

/// The only signing algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The service name a credential scope must name (CloudWatch's signing name).
pub const SERVICE: &str = "monitoring";
/// How far `X-Amz-Date` may be from now, either way (AWS's 15 minutes).
pub const MAX_CLOCK_SKEW_MS: i64 = 15 * 60 * 1000;
/// The longest `Authorization` header read.
pub const MAX_AUTHORIZATION_BYTES: usize = 4096;
/// The longest credential (`AKID/date/region/service/aws4_request`) read.
pub const MAX_CREDENTIAL_BYTES: usize = 256;
/// Signed headers at most.
pub const MAX_SIGNED_HEADERS: usize = 64;
/// The most bytes of values one signed header may have (all its occurrences together).
pub const MAX_SIGNED_HEADER_VALUE_BYTES: usize = 16 * 1024;
/// The longest validity of a presigned request, in seconds (AWS's 7 days).
pub const MAX_EXPIRES_SECONDS: i64 = 604_800;
/// The longest error message.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 512;

const REGION_MAX_BYTES: usize = 64;
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const TERMINATOR: &str = "aws4_request";

/// A received request, as the HTTP adapter passes it. Its `Debug` form shows header names and
/// the body's length, never a header value (an `Authorization` header may hold a token).
#[derive(Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The method (`POST`).
    pub method: &'a str,
    /// The path as received, still percent-encoded (`/`).
    pub path: &'a str,
    /// The raw query string, without the `?` (empty when there is none).
    pub query: &'a str,
    /// Every header as received: name (any case) and value bytes. Repeated names are listed
    /// once per occurrence, in order. `host` must be among them.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The body as received: before any decompression.
    pub body: &'a [u8],
}

impl std::fmt::Debug for SignedRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query_bytes", &self.query.len())
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            )
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// A request whose signature holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The access key id that signed it.
    pub access_key_id: String,
    /// That key's role.
    pub role: Role,
    /// The region of the credential scope (any: Thermostat has one).
    pub region: String,
    /// Whether the body is covered by the signature (`false` for
    /// `x-amz-content-sha256: UNSIGNED-PAYLOAD`).
    pub payload_signed: bool,
}

/// The AWS error codes of a refused signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SigV4ErrorCode {
    /// No SigV4 authentication at all. HTTP 403.
    MissingAuthenticationToken,
    /// A malformed or incomplete signature (missing parts, bad scope, bad date format). HTTP 400.
    IncompleteSignature,
    /// An access key id not in force. HTTP 403.
    InvalidClientTokenId,
    /// The signature does not match, or its scope or date is wrong: a stale `X-Amz-Date` is
    /// answered with this code ("Signature expired: …"), as AWS Query services do. HTTP 403.
    SignatureDoesNotMatch,
    /// A presigned request past its `X-Amz-Expires`. HTTP 400.
    RequestExpired,
}

impl SigV4ErrorCode {
    /// The code as AWS spells it (the error's `Code`/`__type`).
    pub fn as_str(self) -> &'static str {
        match self {
            SigV4ErrorCode::MissingAuthenticationToken => "MissingAuthenticationToken",
            SigV4ErrorCode::IncompleteSignature => "IncompleteSignature",
            SigV4ErrorCode::InvalidClientTokenId => "InvalidClientTokenId",
            SigV4ErrorCode::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            SigV4ErrorCode::RequestExpired => "RequestExpired",
        }
    }

    /// The HTTP status AWS answers it with.
    pub fn http_status(self) -> u16 {
        match self {
            SigV4ErrorCode::IncompleteSignature | SigV4ErrorCode::RequestExpired => 400,
            SigV4ErrorCode::MissingAuthenticationToken
            | SigV4ErrorCode::InvalidClientTokenId
            | SigV4ErrorCode::SignatureDoesNotMatch => 403,
        }
    }
}

impl std::fmt::Display for SigV4ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request's signature is refused: an AWS error code and a message (at most
/// [`MAX_ERROR_MESSAGE_BYTES`], never a secret), for the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SigV4Error {
    code: SigV4ErrorCode,
    message: String,
}

impl SigV4Error {
    fn new(code: SigV4ErrorCode, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > MAX_ERROR_MESSAGE_BYTES {
            let mut end = MAX_ERROR_MESSAGE_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        SigV4Error { code, message }
    }

    fn incomplete(message: impl Into<String>) -> Self {
        Self::new(SigV4ErrorCode::IncompleteSignature, message)
    }

    fn mismatch(message: impl Into<String>) -> Self {
        Self::new(SigV4ErrorCode::SignatureDoesNotMatch, message)
    }

    /// The AWS error code.
    pub fn code(&self) -> SigV4ErrorCode {
        self.code
    }

    /// The message for the client.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status to answer with.
    pub fn http_status(&self) -> u16 {
        self.code.http_status()
    }
}

const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the \
     signature you provided. Check your AWS Secret Access Key and signing method. Consult the \
     service documentation for details.";

/// Checks a request's SigV4 signature (header or presigned query form) against the keys in
/// force, at `now_ms` (Unix milliseconds).
///
/// # Errors
/// - [`SigV4ErrorCode::MissingAuthenticationToken`]: neither form is present;
/// - [`SigV4ErrorCode::IncompleteSignature`]: a malformed `Authorization` header or query
///   parameters, both forms at once, a missing or malformed `X-Amz-Date`, `host` not signed,
///   a bound exceeded;
/// - [`SigV4ErrorCode::InvalidClientTokenId`]: an access key id not in force;
/// - [`SigV4ErrorCode::SignatureDoesNotMatch`]: a wrong signature, service or terminator in the
///   scope, a scope date that is not `X-Amz-Date`'s, a signed header missing, a body that does
///   not match `x-amz-content-sha256`, or `X-Amz-Date` more than 15 minutes from `now_ms`;
/// - [`SigV4ErrorCode::RequestExpired`]: a presigned request past `X-Amz-Date + X-Amz-Expires`.
pub fn verify(
    request: &SignedRequest<'_>,
    keys: &AccessKeys,
    now_ms: i64,
) -> Result<Verified, SigV4Error> {
    verify_for_service(request, keys, now_ms, SERVICE)
}

/// The parts of a signature, from either form.
struct Auth<'a> {
    access_key_id: &'a str,
    scope_date: &'a str,
    region: &'a str,
    service: &'a str,
    amz_date: String,
    signed_headers: Vec<String>,
    signature: String,
    /// `Some(seconds)` for the presigned form.
    expires_seconds: Option<i64>,
}

/// [`verify`] for any service name (AWS's test suite signs for `service`).
fn verify_for_service(
    request: &SignedRequest<'_>,
    keys: &AccessKeys,
    now_ms: i64,
    service: &str,
) -> Result<Verified, SigV4Error> {
    let mut authorization = request
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("authorization"));
    let header = authorization.next().map(|(_, v)| *v);
    if authorization.next().is_some() {
        return Err(SigV4Error::incomplete(
            "The request has more than one Authorization header.",
        ));
    }
    let query = parse_query(request.query);
    let presigned = query
        .iter()
        .any(|(k, _)| k.as_slice() == b"X-Amz-Algorithm" || k.as_slice() == b"X-Amz-Signature");
    let auth = match (header, presigned) {
        (Some(_), true) => {
            return Err(SigV4Error::incomplete(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or \
                 the Authorization header may be given.",
            ));
        }
        (Some(value), false) => {
            parse_authorization_header(value, single_header(request.headers, "x-amz-date")?)?
        }
        (None, true) => parse_query_auth(&query)?,
        (None, false) => {
            return Err(SigV4Error::new(
                SigV4ErrorCode::MissingAuthenticationToken,
                "Request is missing Authentication Token",
            ));
        }
    };

    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(SigV4Error::incomplete(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    // The scope (its form and terminator were checked as it was parsed), the key, the time.
    let date_ms = parse_amz_date(&auth.amz_date)?;
    if auth.scope_date != &auth.amz_date[..8] {
        return Err(SigV4Error::mismatch(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
             HTTP: '{}' != '{}', from '{}'.",
            auth.scope_date,
            &auth.amz_date[..8],
            auth.amz_date
        )));
    }
    if auth.service != service {
        return Err(SigV4Error::mismatch(format!(
            "Credential should be scoped to correct service: '{service}'."
        )));
    }
    let Some(key) = keys.get(auth.access_key_id) else {
        return Err(SigV4Error::new(
            SigV4ErrorCode::InvalidClientTokenId,
            "The security token included in the request is invalid.",
        ));
    };
    check_time(date_ms, &auth, now_ms)?;

    let (payload_hash, payload_signed) = payload_hash(request)?;
    let creq = canonical_request(request, &query, &auth, &payload_hash)?;
    let scope = format!("{}/{}/{service}/{TERMINATOR}", auth.scope_date, auth.region);
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{scope}\n{}",
        auth.amz_date,
        hex(&Sha256::digest(&creq))
    );
    let expected = signature(key.k_secret.clone(), &auth, service, &string_to_sign);
    let presented = parse_hex32(&auth.signature);
    let matches = presented.is_some_and(|p| bool::from(p.ct_eq(&expected)));
    if !matches {
        return Err(SigV4Error::mismatch(SIGNATURE_MISMATCH));
    }
    Ok(Verified {
        access_key_id: auth.access_key_id.to_string(),
        role: key.role,
        region: auth.region.to_string(),
        payload_signed,
    })
}

/// The value of a header that may appear at most once.
fn single_header<'a>(
    headers: &[(&str, &'a [u8])],
    name: &str,
) -> Result<Option<&'a [u8]>, SigV4Error> {
    let mut found = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v);
    let first = found.next();
    if found.next().is_some() {
        return Err(SigV4Error::incomplete(format!(
            "The request has more than one {name} header."
        )));
    }
    Ok(first)
}

/// `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
fn parse_authorization_header<'a>(
    value: &'a [u8],
    amz_date: Option<&[u8]>,
) -> Result<Auth<'a>, SigV4Error> {
    if value.len() > MAX_AUTHORIZATION_BYTES {
        return Err(SigV4Error::incomplete(format!(
            "The Authorization header is longer than {MAX_AUTHORIZATION_BYTES} bytes."
        )));
    }
    // Never echo the header: it may be another scheme's secret (a bearer token).
    let value = std::str::from_utf8(value)
        .map_err(|_| SigV4Error::incomplete("The Authorization header is not valid UTF-8."))?;
    let value = value.trim_matches(' ');
    let rest = match value.split_once(' ') {
        Some((ALGORITHM, rest)) => rest,
        _ => {
            return Err(SigV4Error::incomplete(format!(
                "Unsupported Authorization scheme: only '{ALGORITHM}' is accepted."
            )));
        }
    };
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim_matches(' ');
        if part.is_empty() {
            continue;
        }
        let Some((name, v)) = part.split_once('=') else {
            return Err(SigV4Error::incomplete(
                "Authorization header components must be name=value pairs separated by commas.",
            ));
        };
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => {
                return Err(SigV4Error::incomplete(
                    "Authorization header has a component other than Credential, SignedHeaders \
                     and Signature.",
                ));
            }
        };
        if slot.replace(v).is_some() {
            return Err(SigV4Error::incomplete(format!(
                "Authorization header has '{name}' more than once."
            )));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        let mut message = String::new();
        for (name, value) in [
            ("Credential", credential),
            ("Signature", signature),
            ("SignedHeaders", signed_headers),
        ] {
            if value.is_none() {
                let _ = write!(
                    message,
                    "Authorization header requires '{name}' parameter. "
                );
            }
        }
        message.push_str("Authorization=");
        message.push_str(ALGORITHM);
        return Err(SigV4Error::incomplete(message));
    };
    // AWS also accepts the `Date` header; every AWS SDK and the CLI send `X-Amz-Date`.
    let amz_date = amz_date.ok_or_else(|| {
        SigV4Error::incomplete("Authorization header requires existence of a 'X-Amz-Date' header.")
    })?;
    let amz_date = std::str::from_utf8(amz_date)
        .map_err(|_| SigV4Error::incomplete(AMZ_DATE_FORMAT))?
        .trim_matches(' ');
    let (access_key_id, scope_date, region, service) = parse_credential(credential)?;
    Ok(Auth {
        access_key_id,
        scope_date,
        region,
        service,
        amz_date: amz_date.to_string(),
        signed_headers: parse_signed_headers(signed_headers)?,
        signature: signature.to_string(),
        expires_seconds: None,
    })
}

/// The presigned form's query parameters.
fn parse_query_auth<'a>(query: &'a [(Vec<u8>, Vec<u8>)]) -> Result<Auth<'a>, SigV4Error> {
    const NAMES: [&str; 6] = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    ];
    let mut values: [Option<&'a [u8]>; 6] = [None; 6];
    for (k, v) in query {
        if let Some(i) = NAMES.iter().position(|n| n.as_bytes() == k.as_slice())
            && values[i].replace(v.as_slice()).is_some()
        {
            return Err(SigV4Error::incomplete(format!(
                "The query string has '{}' more than once.",
                NAMES[i]
            )));
        }
    }
    let [
        Some(algorithm),
        Some(credential),
        Some(date),
        Some(expires),
        Some(signed),
        Some(signature),
    ] = values
    else {
        return Err(SigV4Error::incomplete(
            "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', \
             'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders' and 'X-Amz-Signature'. \
             Re-examine the query-string parameters.",
        ));
    };
    if algorithm != ALGORITHM.as_bytes() {
        return Err(SigV4Error::incomplete(format!(
            "Unsupported X-Amz-Algorithm: only '{ALGORITHM}' is accepted."
        )));
    }
    let text = |v: &'a [u8], what: &str| {
        std::str::from_utf8(v)
            .map_err(|_| SigV4Error::incomplete(format!("{what} is not valid UTF-8.")))
    };
    let expires = text(expires, "X-Amz-Expires")?;
    let expires_seconds = expires
        .parse::<i64>()
        .ok()
        .filter(|s| {
            expires.bytes().all(|b| b.is_ascii_digit()) && (1..=MAX_EXPIRES_SECONDS).contains(s)
        })
        .ok_or_else(|| {
            SigV4Error::incomplete(format!(
                "X-Amz-Expires must be a whole number of seconds from 1 to {MAX_EXPIRES_SECONDS}."
            ))
        })?;
    let (access_key_id, scope_date, region, service) =
        parse_credential(text(credential, "X-Amz-Credential")?)?;
    Ok(Auth {
        access_key_id,
        scope_date,
        region,
        service,
        amz_date: text(date, "X-Amz-Date")?.to_string(),
        signed_headers: parse_signed_headers(text(signed, "X-Amz-SignedHeaders")?)?,
        signature: text(signature, "X-Amz-Signature")?.to_string(),
        expires_seconds: Some(expires_seconds),
    })
}

/// `AKID/YYYYMMDD/region/service/aws4_request` → (id, date, region, service).
fn parse_credential(credential: &str) -> Result<(&str, &str, &str, &str), SigV4Error> {
    if credential.len() > MAX_CREDENTIAL_BYTES {
        return Err(SigV4Error::incomplete(format!(
            "The Credential is longer than {MAX_CREDENTIAL_BYTES} bytes."
        )));
    }
    let parts: Vec<&str> = credential.split('/').collect();
    let [id, date, region, service, terminator] = parts.as_slice() else {
        return Err(SigV4Error::incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. \
             keyid/date/region/service/term, got '{}'.",
            clip(credential)
        )));
    };
    if !valid_access_key_id(id) {
        return Err(SigV4Error::new(
            SigV4ErrorCode::InvalidClientTokenId,
            "The security token included in the request is invalid.",
        ));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SigV4Error::incomplete(
            "The Credential's date must be YYYYMMDD.",
        ));
    }
    if region.is_empty()
        || region.len() > REGION_MAX_BYTES
        || !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(SigV4Error::incomplete(
            "Credential should be scoped to a valid region.",
        ));
    }
    if service.is_empty() {
        return Err(SigV4Error::mismatch(format!(
            "Credential should be scoped to correct service: '{SERVICE}'."
        )));
    }
    if *terminator != TERMINATOR {
        return Err(SigV4Error::mismatch(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'.",
            clip(terminator)
        )));
    }
    Ok((id, date, region, service))
}

/// `SignedHeaders=host;x-amz-date`: lowercase names, bounded in number.
fn parse_signed_headers(list: &str) -> Result<Vec<String>, SigV4Error> {
    if list.is_empty() {
        return Err(SigV4Error::incomplete("SignedHeaders must not be empty."));
    }
    let mut names: Vec<String> = Vec::new();
    for name in list.split(';') {
        if names.len() == MAX_SIGNED_HEADERS {
            return Err(SigV4Error::incomplete(format!(
                "SignedHeaders lists more than {MAX_SIGNED_HEADERS} headers."
            )));
        }
        let valid = !name.is_empty()
            && name.len() <= 128
            && name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"\"(),/:;<=>?@[\\]{}".contains(&b));
        if !valid {
            return Err(SigV4Error::incomplete(
                "SignedHeaders must be header names separated by ';'.",
            ));
        }
        let name = name.to_ascii_lowercase();
        if names.contains(&name) {
            return Err(SigV4Error::incomplete(format!(
                "SignedHeaders lists '{name}' more than once."
            )));
        }
        names.push(name);
    }
    Ok(names)
}

const AMZ_DATE_FORMAT: &str =
    "X-Amz-Date must be in the ISO 8601 basic format YYYYMMDD'T'HHMMSS'Z'.";

/// `20261207T093000Z` → Unix milliseconds.
fn parse_amz_date(text: &str) -> Result<i64, SigV4Error> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        b.get(r.clone())?.iter().try_fold(0i64, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    let parsed = (|| {
        if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
            return None;
        }
        let (year, month, day) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
        let (hour, minute, second) = (digits(9..11)?, digits(11..13)?, digits(13..15)?);
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let month_days = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        let valid = (1..=12).contains(&month)
            && day >= 1
            && day <= month_days[(month - 1) as usize]
            && hour < 24
            && minute < 60
            && second < 60;
        valid.then(|| {
            (days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second) * 1000
        })
    })();
    parsed.ok_or_else(|| SigV4Error::incomplete(AMZ_DATE_FORMAT))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix milliseconds → `20261207T093000Z` (for messages).
fn format_amz_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The date is within the clock skew of `now_ms` (header form), or the presigned request is
/// neither from the future nor past its expiry.
fn check_time(date_ms: i64, auth: &Auth<'_>, now_ms: i64) -> Result<(), SigV4Error> {
    let now = format_amz_date(now_ms);
    if date_ms > now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
        return Err(SigV4Error::mismatch(format!(
            "Signature not yet current: {} is still later than {} ({now} + 15 min.)",
            auth.amz_date,
            format_amz_date(now_ms.saturating_add(MAX_CLOCK_SKEW_MS))
        )));
    }
    match auth.expires_seconds {
        None if date_ms < now_ms.saturating_sub(MAX_CLOCK_SKEW_MS) => {
            Err(SigV4Error::mismatch(format!(
                "Signature expired: {} is now earlier than {} ({now} - 15 min.)",
                auth.amz_date,
                format_amz_date(now_ms.saturating_sub(MAX_CLOCK_SKEW_MS))
            )))
        }
        Some(expires) if now_ms > date_ms.saturating_add(expires * 1000) => Err(SigV4Error::new(
            SigV4ErrorCode::RequestExpired,
            format!(
                "Request has expired: signed at {} for {expires} seconds; now {now}.",
                auth.amz_date
            ),
        )),
        _ => Ok(()),
    }
}

/// The payload hash of the canonical request, and whether it covers the body.
fn payload_hash(request: &SignedRequest<'_>) -> Result<(String, bool), SigV4Error> {
    let computed = || hex(&Sha256::digest(request.body));
    match single_header(request.headers, "x-amz-content-sha256")? {
        None => Ok((computed(), true)),
        Some(v) if v == UNSIGNED_PAYLOAD.as_bytes() => Ok((UNSIGNED_PAYLOAD.to_string(), false)),
        Some(v) if v.len() == 64 && v.iter().all(u8::is_ascii_hexdigit) => {
            let body = computed();
            if v.eq_ignore_ascii_case(body.as_bytes()) {
                // Signed as sent (a client may have sent it in upper case).
                Ok((String::from_utf8_lossy(v).into_owned(), true))
            } else {
                Err(SigV4Error::mismatch(
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                ))
            }
        }
        Some(_) => Err(SigV4Error::incomplete(format!(
            "x-amz-content-sha256 must be '{UNSIGNED_PAYLOAD}' or the hex SHA-256 of the body."
        ))),
    }
}

/// The canonical request's bytes.
fn canonical_request(
    request: &SignedRequest<'_>,
    query: &[(Vec<u8>, Vec<u8>)],
    auth: &Auth<'_>,
    payload_hash: &str,
) -> Result<Vec<u8>, SigV4Error> {
    let mut out = Vec::with_capacity(256 + request.path.len() + request.query.len());
    out.extend_from_slice(request.method.as_bytes());
    out.push(b'\n');
    encode_into(&mut out, normalize_path(request.path).as_bytes(), true);
    out.push(b'\n');
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = query
        .iter()
        .filter(|(k, _)| !(auth.expires_seconds.is_some() && k.as_slice() == b"X-Amz-Signature"))
        .map(|(k, v)| {
            let (mut ek, mut ev) = (Vec::new(), Vec::new());
            encode_into(&mut ek, k, false);
            encode_into(&mut ev, v, false);
            (ek, ev)
        })
        .collect();
    pairs.sort_unstable();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(k);
        out.push(b'=');
        out.extend_from_slice(v);
    }
    out.push(b'\n');
    for name in &auth.signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let start = out.len();
        let mut found = false;
        for (_, value) in request
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            if out.len() - start + value.len() > MAX_SIGNED_HEADER_VALUE_BYTES {
                return Err(SigV4Error::incomplete(format!(
                    "The signed header '{}' is longer than {MAX_SIGNED_HEADER_VALUE_BYTES} bytes.",
                    clip(name)
                )));
            }
            if found {
                out.push(b',');
            }
            found = true;
            push_trimmed(&mut out, value);
        }
        if !found {
            return Err(SigV4Error::mismatch(format!(
                "The signed header '{}' is not in the request.",
                clip(name)
            )));
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    for (i, name) in auth.signed_headers.iter().enumerate() {
        if i > 0 {
            out.push(b';');
        }
        out.extend_from_slice(name.as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    Ok(out)
}

/// A header value trimmed of spaces, runs of spaces collapsed to one.
fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let mut space = false;
    let mut any = false;
    for &b in value {
        if b == b' ' {
            space = true;
            continue;
        }
        if space && any {
            out.push(b' ');
        }
        space = false;
        any = true;
        out.push(b);
    }
}

/// Removes `.` and `..` segments and empty segments, as AWS's signers do for non-S3 services;
/// keeps a trailing slash.
fn normalize_path(path: &str) -> std::borrow::Cow<'_, str> {
    if path.is_empty() {
        return "/".into();
    }
    if path.starts_with('/') && !path.contains("//") && !path.contains('.') {
        return path.into();
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    let trailing = ["/", "/.", "/..", "/./", "/../"]
        .iter()
        .any(|t| path.ends_with(t));
    if out.is_empty() || (trailing && !out.ends_with('/')) {
        out.push('/');
    }
    out.into()
}

/// Percent-encodes every byte but RFC 3986's unreserved ones (and `/` in a path), upper-case hex.
fn encode_into(out: &mut Vec<u8>, bytes: &[u8], keep_slash: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

/// A raw query string → decoded (key, value) pairs (`+` as a space, as
/// `application/x-www-form-urlencoded` and AWS's signers read it); a pair without `=` has an
/// empty value; empty pairs are skipped.
fn parse_query(query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k.as_bytes()), decode(v.as_bytes()))
        })
        .collect()
}

fn decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// The signature: the HMAC chain date → region → service → `aws4_request`, then the string
/// to sign.
fn signature(
    k_secret: HmacSha256,
    auth: &Auth<'_>,
    service: &str,
    string_to_sign: &str,
) -> [u8; 32] {
    let step = |mut mac: HmacSha256, data: &[u8]| -> [u8; 32] {
        mac.update(data);
        mac.finalize().into_bytes().into()
    };
    let keyed = |key: &[u8; 32]| {
        // HMAC takes a key of any length, so this cannot fail.
        HmacSha256::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
    };
    let k_date = step(k_secret, auth.scope_date.as_bytes());
    let k_region = step(keyed(&k_date), auth.region.as_bytes());
    let k_service = step(keyed(&k_region), service.as_bytes());
    let k_signing = step(keyed(&k_service), TERMINATOR.as_bytes());
    step(keyed(&k_signing), string_to_sign.as_bytes())
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// 64 hex digits → 32 bytes.
fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    let b = text.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = std::str::from_utf8(&b[2 * i..2 * i + 2]).ok()?;
        if !pair.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// At most 64 characters of `text`, control characters replaced, for echoing in a message.
fn clip(text: &str) -> String {
    text.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
