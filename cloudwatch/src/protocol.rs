//! Which of CloudWatch's three protocols a request speaks, told from its method, path and
//! headers alone, and the checks each protocol makes of them.

use crate::error::{Error, Result};
use crate::operation::Operation;

/// The `X-Amz-Target` prefix and the CBOR path's service name.
pub const SERVICE: &str = "GraniteServiceVersion20100801";
/// The API version AWS Query requests name in `Version`.
pub const API_VERSION: &str = "2010-08-01";
/// The XML namespace of AWS Query responses.
pub const XML_NAMESPACE: &str = "http://monitoring.amazonaws.com/doc/2010-08-01/";
/// The Smithy namespace of the service's shapes, before `#` in `__type`.
pub const SHAPE_NAMESPACE: &str = "com.amazonaws.cloudwatch";

const CBOR_PATH_PREFIX: &str = "/service/";

/// A protocol of the CloudWatch service model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// AWS JSON 1.0: `POST /`, `X-Amz-Target: GraniteServiceVersion20100801.<Operation>`.
    AwsJson,
    /// Smithy RPC v2 CBOR: `POST /service/GraniteServiceVersion20100801/operation/<Operation>`.
    RpcV2Cbor,
    /// AWS Query: `Action=<Operation>&Version=2010-08-01&…` in a form body or a query string.
    AwsQuery,
}

/// What protocol detection reads of a request: plain values the HTTP adapter copies out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// The method, e.g. `POST`.
    pub method: &'a str,
    /// The path, without the query string.
    pub path: &'a str,
    /// The query string, without `?`, if any.
    pub query: Option<&'a str>,
    /// `Content-Type`.
    pub content_type: Option<&'a str>,
    /// `X-Amz-Target`.
    pub amz_target: Option<&'a str>,
    /// `smithy-protocol`.
    pub smithy_protocol: Option<&'a str>,
    /// `Content-Encoding` (`gzip` is inflated by [`crate::decode`]).
    pub content_encoding: Option<&'a str>,
}

impl Protocol {
    /// The protocol `head` speaks, which is also the one to answer in, even when the request
    /// then turns out malformed: a `/service/…` path is CBOR, an `X-Amz-Target` header is
    /// JSON, anything else is AWS Query (CloudWatch's oldest protocol).
    pub fn detect(head: &RequestHead<'_>) -> Protocol {
        if head.path.starts_with(CBOR_PATH_PREFIX) {
            Protocol::RpcV2Cbor
        } else if head.amz_target.is_some() {
            Protocol::AwsJson
        } else {
            Protocol::AwsQuery
        }
    }

    /// The protocol's name, as the Smithy protocol traits spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::AwsJson => "awsJson1_0",
            Protocol::RpcV2Cbor => "rpcv2Cbor",
            Protocol::AwsQuery => "awsQuery",
        }
    }

    /// The `Content-Type` of this protocol's responses.
    pub const fn response_content_type(self) -> &'static str {
        match self {
            Protocol::AwsJson => "application/x-amz-json-1.0",
            Protocol::RpcV2Cbor => "application/cbor",
            Protocol::AwsQuery => "text/xml",
        }
    }

    /// Whether the typed layer reads every leaf as text (AWS Query) rather than as typed
    /// scalars (JSON, CBOR).
    pub const fn is_textual(self) -> bool {
        matches!(self, Protocol::AwsQuery)
    }
}

/// The media type of a `Content-Type` value, lowercase, without parameters.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn operation_named(name: &str) -> Result<Operation> {
    Operation::from_name(name).ok_or_else(|| {
        Error::InvalidAction(format!(
            "Could not find operation {} for version {API_VERSION}.",
            thermostat_metrics::quote::quote(name)
        ))
    })
}

fn require_post(head: &RequestHead<'_>) -> Result<()> {
    if head.method.eq_ignore_ascii_case("POST") {
        Ok(())
    } else {
        Err(Error::InvalidAction(format!(
            "The {} protocol takes POST requests only.",
            Protocol::detect(head).name()
        )))
    }
}

/// The operation a JSON request names in `X-Amz-Target`, after checking its method, path
/// and `Content-Type`.
///
/// # Errors
///
/// [`Error::InvalidAction`] for another method or path or an unknown target,
/// [`Error::UnsupportedMediaType`] for a `Content-Type` other than
/// `application/x-amz-json-1.0`.
pub fn json_operation(head: &RequestHead<'_>) -> Result<Operation> {
    require_post(head)?;
    if head.path != "/" {
        return Err(Error::InvalidAction(format!(
            "AWS JSON requests are sent to /, not {}.",
            thermostat_metrics::quote::quote(head.path)
        )));
    }
    let content_type = head.content_type.unwrap_or("");
    if media_type(content_type) != "application/x-amz-json-1.0" {
        return Err(Error::UnsupportedMediaType(
            thermostat_metrics::quote::quote(content_type),
        ));
    }
    let target = head.amz_target.unwrap_or("");
    match target.split_once('.') {
        Some((SERVICE, name)) => operation_named(name),
        _ => Err(Error::InvalidAction(format!(
            "The X-Amz-Target {} does not name an operation of {SERVICE}.",
            thermostat_metrics::quote::quote(target)
        ))),
    }
}

/// The operation a CBOR request names in its path, after checking its method,
/// `smithy-protocol` and, when a body is sent, `Content-Type`.
///
/// # Errors
///
/// [`Error::InvalidAction`] for another method, path or `smithy-protocol`,
/// [`Error::UnsupportedMediaType`] for a body that is not `application/cbor`.
pub fn cbor_operation(head: &RequestHead<'_>, body_len: usize) -> Result<Operation> {
    require_post(head)?;
    if head.smithy_protocol != Some("rpc-v2-cbor") {
        return Err(Error::InvalidAction(
            "Smithy RPC v2 CBOR requests must send the header smithy-protocol: rpc-v2-cbor."
                .to_owned(),
        ));
    }
    if body_len > 0 || head.content_type.is_some() {
        let content_type = head.content_type.unwrap_or("");
        if media_type(content_type) != "application/cbor" {
            return Err(Error::UnsupportedMediaType(
                thermostat_metrics::quote::quote(content_type),
            ));
        }
    }
    let rest = head.path.strip_prefix(CBOR_PATH_PREFIX).unwrap_or("");
    match rest.split_once("/operation/") {
        Some((SERVICE, name)) if !name.contains('/') => operation_named(name),
        _ => Err(Error::InvalidAction(format!(
            "The path {} does not name an operation of {SERVICE}.",
            thermostat_metrics::quote::quote(head.path)
        ))),
    }
}

/// Where an AWS Query request's parameters are: the form body of a `POST`, or the query
/// string of a `GET`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuerySource {
    /// The body, `application/x-www-form-urlencoded`.
    Body,
    /// The query string.
    QueryString,
}

/// Where an AWS Query request carries its parameters, after checking method, path and
/// `Content-Type`.
///
/// # Errors
///
/// [`Error::InvalidAction`] for a path other than `/` or a method other than GET and POST,
/// [`Error::UnsupportedMediaType`] for a POST whose body is not a form.
pub fn query_source(head: &RequestHead<'_>) -> Result<QuerySource> {
    if head.path != "/" {
        return Err(Error::InvalidAction(format!(
            "AWS Query requests are sent to /, not {}.",
            thermostat_metrics::quote::quote(head.path)
        )));
    }
    if head.method.eq_ignore_ascii_case("GET") {
        return Ok(QuerySource::QueryString);
    }
    require_post(head)?;
    let content_type = head.content_type.unwrap_or("");
    if media_type(content_type) != "application/x-www-form-urlencoded" {
        return Err(Error::UnsupportedMediaType(
            thermostat_metrics::quote::quote(content_type),
        ));
    }
    Ok(QuerySource::Body)
}
