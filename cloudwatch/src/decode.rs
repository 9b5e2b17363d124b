//! A whole request decoded: protocol detected, head checked, body decoded within
//! [`Limits`] and read into a typed [`Request`].

use crate::encoding::inflate;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::operation::Operation;
use crate::protocol::{
    API_VERSION, Protocol, QuerySource, RequestHead, cbor_operation, json_operation, query_source,
};
use crate::request::Request;
use crate::value::Value;
use crate::{cbor, json, query};

/// A request decoded: the protocol to answer in and what is asked.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// The protocol the request spoke, and the response must.
    pub protocol: Protocol,
    /// The typed request.
    pub request: Request,
}

/// A request refused, with the protocol to answer in (known even when the request is
/// malformed: see [`Protocol::detect`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    /// The protocol to answer in.
    pub protocol: Protocol,
    /// The operation, when it was made out before the error.
    pub operation: Option<Operation>,
    /// Why.
    pub error: Error,
}

impl Rejection {
    /// The error response, in the protocol the request spoke.
    pub fn to_response(&self, request_id: &str) -> crate::response::Response {
        crate::response::encode_error(self.protocol, &self.error, request_id)
    }
}

/// The operation and body tree of a request, in whatever protocol it speaks; for the
/// operations that have no typed request yet, and the first half of [`decode`].
///
/// # Errors
///
/// A [`Rejection`] in the detected protocol: a head that protocol refuses, an unknown
/// operation ([`Error::InvalidAction`]), a body over [`Limits`] ([`Error::TooLarge`]) or
/// malformed ([`Error::Malformed`]), an AWS Query request without `Action`
/// ([`Error::MissingAction`]) or with a `Version` other than 2010-08-01.
pub fn decode_input(
    head: &RequestHead<'_>,
    body: &[u8],
    limits: &Limits,
) -> Result<(Protocol, Operation, Value), Rejection> {
    let protocol = Protocol::detect(head);
    let reject = |operation, error| Rejection {
        protocol,
        operation,
        error,
    };
    let body = inflate(head.content_encoding, body, limits).map_err(|e| reject(None, e))?;
    let body = &body[..];
    let (operation, value) = match protocol {
        Protocol::AwsJson => {
            let operation = json_operation(head).map_err(|e| reject(None, e))?;
            let value = json::decode(body, limits).map_err(|e| reject(Some(operation), e))?;
            (operation, value)
        }
        Protocol::RpcV2Cbor => {
            let operation = cbor_operation(head, body.len()).map_err(|e| reject(None, e))?;
            let value = cbor::decode(body, limits).map_err(|e| reject(Some(operation), e))?;
            (operation, value)
        }
        Protocol::AwsQuery => {
            let input = match query_source(head).map_err(|e| reject(None, e))? {
                QuerySource::Body => body,
                QuerySource::QueryString => head.query.unwrap_or("").as_bytes(),
            };
            let mut value = query::decode(input, limits).map_err(|e| reject(None, e))?;
            let operation = query_action(&mut value).map_err(|e| reject(None, e))?;
            (operation, value)
        }
    };
    if !matches!(value, Value::Map(_)) {
        return Err(reject(
            Some(operation),
            Error::Malformed(format!(
                "the body must be a structure, not a {}",
                value.kind()
            )),
        ));
    }
    Ok((protocol, operation, value))
}

/// Takes `Action` and `Version` out of an AWS Query tree.
fn query_action(value: &mut Value) -> Result<Operation> {
    let Value::Map(map) = value else {
        return Err(Error::MissingAction);
    };
    let action = match map.remove("Action") {
        None => return Err(Error::MissingAction),
        Some(Value::String(action)) => action,
        Some(_) => {
            return Err(Error::InvalidAction(
                "The parameter Action must be an operation name.".to_owned(),
            ));
        }
    };
    match map.remove("Version") {
        Some(Value::String(v)) if v == API_VERSION => {}
        None => return Err(Error::MissingParameter("Version".to_owned())),
        Some(Value::String(v)) => {
            return Err(Error::InvalidParameterValue(format!(
                "The value {} for parameter Version is invalid: CloudWatch's API version is {API_VERSION}.",
                thermostat_metrics::quote::quote(&v)
            )));
        }
        Some(_) => {
            return Err(Error::InvalidParameterValue(
                "The parameter Version must be a string.".to_owned(),
            ));
        }
    }
    Operation::from_name(&action).ok_or_else(|| {
        Error::InvalidAction(format!(
            "Could not find operation {} for version {API_VERSION}.",
            thermostat_metrics::quote::quote(&action)
        ))
    })
}

/// Decodes a request of the operations Thermostat serves, in any of the three protocols.
///
/// # Errors
///
/// As [`decode_input`], then as [`Request::from_value`].
pub fn decode(head: &RequestHead<'_>, body: &[u8], limits: &Limits) -> Result<Call, Rejection> {
    let (protocol, operation, value) = decode_input(head, body, limits)?;
    let request = Request::from_value(operation, &value, protocol).map_err(|error| Rejection {
        protocol,
        operation: Some(operation),
        error,
    })?;
    Ok(Call { protocol, request })
}
