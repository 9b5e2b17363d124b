//! CloudWatch's API, as its clients speak it: the three protocols of the CloudWatch service
//! model (`monitoring`, API version 2010-08-01) decoded with bounds into typed requests, and
//! results and errors encoded in each protocol's shape.
//!
//! Served on the HTTP port by `thermostat-dashboards`' `cloudwatch.rs` (routes, SigV4 through
//! `thermostat_auth::sigv4`) for the metric operations (PutMetricData, GetMetricStatistics,
//! ListMetrics, GetMetricData with `MetricStat`) and the alarm operations (PutMetricAlarm,
//! PutCompositeAlarm, DescribeAlarms, DescribeAlarmsForMetric, DeleteAlarms, SetAlarmState,
//! Enable/DisableAlarmActions, DescribeAlarmHistory); alarm tags are issue 21's next part.
//!
//! # What this crate owns
//!
//! - Protocol detection from a request's method, path and headers
//!   ([`Protocol::detect`], [`RequestHead`]): AWS JSON 1.0 (`X-Amz-Target`), Smithy RPC v2
//!   CBOR (`/service/GraniteServiceVersion20100801/operation/<Operation>`) and AWS Query
//!   (`Action=…&Version=2010-08-01`, form body or GET query string).
//! - Bounded inflation of gzip bodies ([`encoding::inflate`]) and bounded decoding of each
//!   protocol's body into one protocol-neutral [`Value`] tree, within
//!   [`Limits`] (body bytes, depth, element count, string bytes, list length); every bound
//!   crossed is named in [`Error::TooLarge`].
//! - Typed requests of the metric operations ([`Request`]: `PutMetricData`,
//!   `GetMetricStatistics`, `ListMetrics`, `GetMetricData`) and of the alarm operations
//!   (their shapes only: an alarm's own rules are the alarms core's), checked against the service
//!   model's shapes and CloudWatch's rules, with CloudWatch's error codes and messages that
//!   name parameters by their AWS Query path (`MetricData.member.2.Value`).
//! - Encoding of results ([`Output`], or any [`Node`] tree) and errors ([`Error`]) as JSON,
//!   CBOR or XML, with CloudWatch's statuses and headers, into a [`Response`] the HTTP adapter
//!   copies.
//!
//! # Invariants
//!
//! - No IO and no wall clock: bytes in, values out. A datum without `Timestamp` stays `None`;
//!   the caller fills in its `now`. Request ids are the caller's too.
//! - Nothing is allocated for a length a request claims beyond [`Limits`]: CBOR strings are
//!   read in chunks as their bytes arrive, lists grow as items arrive, AWS Query indexes are
//!   checked against [`Limits::max_list_len`] before use, gzip inflation stops one byte past
//!   [`Limits::max_body_bytes`].
//! - Every decoding failure is an [`Error`]; no input panics (property-tested).
//! - A refused request is answered in the protocol it spoke ([`Rejection::protocol`]).
//!
//! # Layout
//!
//! - `protocol.rs`: [`Protocol`], [`RequestHead`], the checks of each protocol's head.
//! - `operation.rs`: [`Operation`], every operation of the service model.
//! - `limits.rs`, `budget.rs`: [`Limits`] and the running count that enforces them.
//! - `value.rs`: the [`Value`] tree.
//! - `json.rs`, `cbor.rs`, `query.rs`: one bounded decoder per protocol.
//! - `fields.rs`: typed reads from the tree, with parameter paths for errors.
//! - `request.rs`: the typed metric and alarm requests.
//! - `encoding.rs`: gzip request bodies inflated within [`Limits`].
//! - `decode.rs`: [`decode`] and [`decode_input`], the whole request in one call.
//! - `output.rs`: the typed metric and alarm results and the [`Node`] tree.
//! - `response.rs`: [`Response`], [`encode_output`], [`encode_node`], [`encode_error`].
//! - `error.rs`: [`Error`] with CloudWatch's codes, statuses and fault sides.

#![warn(missing_docs)]

mod budget;
pub mod cbor;
mod decode;
pub mod encoding;
pub mod error;
mod fields;
pub mod json;
pub mod limits;
pub mod operation;
pub mod output;
pub mod protocol;
pub mod query;
pub mod request;
pub mod response;
pub mod value;

pub use decode::{Call, Rejection, decode, decode_input};
pub use error::{Error, Fault, Result};
pub use limits::{Limit, Limits};
pub use operation::Operation;
pub use output::{Node, Output};
pub use protocol::{Protocol, RequestHead};
pub use request::Request;
pub use response::{Response, encode_error, encode_node, encode_output};
pub use value::Value;
