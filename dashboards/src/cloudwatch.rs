//! CloudWatch's API on the HTTP port (issue 21): `POST /` (AWS JSON 1.0 with `X-Amz-Target`,
//! and AWS Query form posts) and `POST /service/GraniteServiceVersion20100801/operation/{op}`
//! (Smithy RPC v2 CBOR), decoded and answered by `thermostat-cloudwatch`, over the
//! [`CloudWatchMetrics`] port that the ingest side implements (the binary connects them).
//!
//! These routes are outside bearer-token authentication: a request is authenticated by its
//! SigV4 signature ([`thermostat_auth::sigv4::verify`], the body hashed as received, before
//! gzip inflation), and its access key's role must grant the operation's permission
//! (`PutMetricData`: push, the reads: read). With [`Signatures::AcceptAny`]
//! (`aws_api.verify_signatures: false`, allowed on loopback only unless `--insecure-no-auth`)
//! any request is an anonymous admin.
//!
//! Served: `PutMetricData`, `GetMetricStatistics`, `ListMetrics` and `GetMetricData` (with
//! metric-math `Expression` queries, evaluated by
//! [`thermostat_alarms::math::metric_data`]) over [`CloudWatchMetrics`]; `PutMetricAlarm`,
//! `PutCompositeAlarm`, `DescribeAlarms`, `DescribeAlarmsForMetric`, `DeleteAlarms`, `SetAlarmState`, `EnableAlarmActions`,
//! `DisableAlarmActions` and `DescribeAlarmHistory` over [`CloudWatchAlarms`] (the alarm
//! runtime; alarm writes need `write_alarms`, states `set_alarm_state`, actions
//! `toggle_alarm_actions`, reads `read_alarms`), and the alarm tags (`ListTagsForResource`,
//! `TagResource`, `UntagResource`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use thermostat_alarms::math::metric_data as md;
use thermostat_auth::sigv4::{AccessKeys, SigV4Error, SigV4ErrorCode, SignedRequest, verify};
use thermostat_auth::{Outcome, Permission, Principal, Unauthenticated};
use thermostat_cloudwatch::output::{
    DescribeAlarmHistoryOutput, DescribeAlarmsOutput, DescribeAnomalyDetectorsOutput,
    GetMetricDataOutput, GetMetricStatisticsOutput, ListMetricsOutput, MessageData, MetricAlarm,
    MetricDataResult, StatusCode as ResultStatus,
};
use thermostat_cloudwatch::request::{
    AnomalyDetector, DescribeAlarmHistory, DescribeAlarms, DescribeAlarmsForMetric,
    DescribeAnomalyDetectors, GetMetricData, GetMetricStatistics, ListMetrics, PutCompositeAlarm,
    PutMetricAlarm, PutMetricData, QueryKind, ScanBy, SetAlarmState, Tag, TagResource,
    UntagResource,
};
use thermostat_cloudwatch::{
    Error, Limit, Limits, Node, Operation, Output, Protocol, Request as CwRequest, RequestHead,
    encode_error, encode_node, encode_output,
};
use thermostat_metrics::Statistic;

use crate::ApiState;
use crate::access::RequestMeta;

/// The answer of the ingest side.
pub type CloudWatchFuture<T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>;

/// What the ingest side offers CloudWatch's metric operations: the native API's push, statistics
/// query and listing, for a principal (whose namespaces they check).
pub trait CloudWatchMetrics: Send + Sync + std::fmt::Debug {
    /// Stores `request`'s data as the native push does; answers once they are durable.
    fn put_metric_data(
        &self,
        principal: Arc<Principal>,
        request: PutMetricData,
    ) -> CloudWatchFuture<()>;

    /// The statistics of one metric, as the native `GetMetricStatistics`.
    fn get_metric_statistics(
        &self,
        principal: Arc<Principal>,
        request: GetMetricStatistics,
    ) -> CloudWatchFuture<GetMetricStatisticsOutput>;

    /// A page of the metrics listing, as the native `ListMetrics`, with the dimension filters
    /// applied.
    fn list_metrics(
        &self,
        principal: Arc<Principal>,
        request: ListMetrics,
    ) -> CloudWatchFuture<ListMetricsOutput>;
}

/// What the alarm runtime offers CloudWatch's alarm operations (the binary implements it over
/// the running alarms: both sources, the configuration files' and the API's).
pub trait CloudWatchAlarms: Send + Sync + std::fmt::Debug {
    /// Creates or replaces an API alarm.
    ///
    /// # Errors
    /// The alarm breaks a rule, or a configuration file owns its name
    /// (`InvalidParameterValue` naming the file).
    fn put_metric_alarm(&self, request: PutMetricAlarm) -> Result<(), Error>;

    /// Creates or replaces an API composite alarm.
    ///
    /// # Errors
    /// The alarm breaks a rule (its rule names an unknown alarm, or makes a cycle), or a
    /// configuration file owns its name.
    fn put_composite_alarm(&self, request: PutCompositeAlarm) -> Result<(), Error>;

    /// The alarms that `request` selects, with their states.
    ///
    /// # Errors
    /// A `NextToken` this server did not issue.
    fn describe_alarms(&self, request: DescribeAlarms) -> Result<DescribeAlarmsOutput, Error>;

    /// The metric alarms on one metric.
    ///
    /// # Errors
    /// None in practice; the port may fail internally.
    fn describe_alarms_for_metric(
        &self,
        request: DescribeAlarmsForMetric,
    ) -> Result<Vec<MetricAlarm>, Error>;

    /// Deletes API alarms.
    ///
    /// # Errors
    /// `ResourceNotFound` for an unknown name, `InvalidParameterValue` for a file's alarm.
    fn delete_alarms(&self, names: Vec<String>) -> Result<(), Error>;

    /// `SetAlarmState`, on an alarm of either source.
    ///
    /// # Errors
    /// `ResourceNotFound`, or a field that breaks a rule.
    fn set_alarm_state(&self, request: SetAlarmState) -> Result<(), Error>;

    /// `EnableAlarmActions` (`enabled`) / `DisableAlarmActions`, on alarms of either source.
    ///
    /// # Errors
    /// `ResourceNotFound` for an unknown name.
    fn set_actions_enabled(&self, names: Vec<String>, enabled: bool) -> Result<(), Error>;

    /// A page of alarm history.
    ///
    /// # Errors
    /// `ResourceNotFound`, or a `NextToken` this server did not issue.
    fn describe_alarm_history(
        &self,
        request: DescribeAlarmHistory,
    ) -> Result<DescribeAlarmHistoryOutput, Error>;

    /// The tags of the alarm an ARN names.
    ///
    /// # Errors
    /// `InvalidParameterValue` for an ARN that is not an alarm's of this server,
    /// `ResourceNotFoundException` for an unknown alarm.
    fn list_tags_for_resource(&self, resource_arn: String) -> Result<Vec<Tag>, Error>;

    /// `TagResource` on an alarm of either source.
    ///
    /// # Errors
    /// As [`list_tags_for_resource`](Self::list_tags_for_resource), and
    /// `InvalidParameterValue` when the alarm would have more than 50 tags.
    fn tag_resource(&self, request: TagResource) -> Result<(), Error>;

    /// `UntagResource` on an alarm of either source.
    ///
    /// # Errors
    /// As [`list_tags_for_resource`](Self::list_tags_for_resource).
    fn untag_resource(&self, request: UntagResource) -> Result<(), Error>;

    /// `PutAnomalyDetector`: the training configuration of one metric and statistic.
    ///
    /// # Errors
    /// `InvalidParameterValue` for a configuration that breaks a rule (an unknown time zone).
    fn put_anomaly_detector(&self, request: AnomalyDetector) -> Result<(), Error>;

    /// `DeleteAnomalyDetector`.
    ///
    /// # Errors
    /// `ResourceNotFoundException` when no detector was put for that metric and statistic.
    fn delete_anomaly_detector(&self, request: AnomalyDetector) -> Result<(), Error>;

    /// `DescribeAnomalyDetectors`: the detectors put, and those the anomaly alarms imply.
    ///
    /// # Errors
    /// `InvalidNextToken` for a token this server did not issue.
    fn describe_anomaly_detectors(
        &self,
        request: DescribeAnomalyDetectors,
    ) -> Result<DescribeAnomalyDetectorsOutput, Error>;
}

/// How requests are authenticated.
#[derive(Debug)]
pub enum Signatures {
    /// SigV4 verified against these keys (none: every request is refused).
    Verify(AccessKeys),
    /// Any signature, or none, is an anonymous admin (`aws_api.verify_signatures: false`).
    AcceptAny,
}

/// The signature check in force: replaced whole when the settings are reloaded (`SIGHUP`),
/// so that a rotated or revoked access key takes effect for the next request.
#[derive(Debug)]
pub struct SignatureCheck(std::sync::RwLock<Arc<Signatures>>);

impl SignatureCheck {
    /// The check `signatures`.
    pub fn new(signatures: Signatures) -> Self {
        SignatureCheck(std::sync::RwLock::new(Arc::new(signatures)))
    }

    /// The check in force now.
    pub fn current(&self) -> Arc<Signatures> {
        Arc::clone(&self.0.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Puts `signatures` in force from the next request on.
    pub fn replace(&self, signatures: Signatures) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(signatures);
    }
}

/// The CloudWatch API's state: the ingest side and the keys.
#[derive(Debug)]
pub struct CloudWatch {
    /// The metric operations.
    pub metrics: Arc<dyn CloudWatchMetrics>,
    /// The alarm operations; `None` answers them `InvalidAction`.
    pub alarms: Option<Arc<dyn CloudWatchAlarms>>,
    /// How signatures are checked (shared with whoever reloads the settings).
    pub signatures: Arc<SignatureCheck>,
}

/// Largest body accepted, as sent (CloudWatch's `PutMetricData` limit, 1 MiB); gzip bodies are
/// inflated within the same bound by `thermostat-cloudwatch`.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

fn header_str<'a>(parts: &'a axum::http::request::Parts, name: &HeaderName) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

/// `POST /` with `X-Amz-Target` or an AWS Query form, and the CBOR operation path.
pub(crate) async fn serve(State(state): State<ApiState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let request_id = parts
        .extensions
        .get::<RequestMeta>()
        .map_or_else(String::new, |m| m.request_id.clone());
    let amz_target = HeaderName::from_static("x-amz-target");
    let smithy = HeaderName::from_static("smithy-protocol");
    let head = RequestHead {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        content_type: header_str(&parts, &header::CONTENT_TYPE),
        amz_target: header_str(&parts, &amz_target),
        smithy_protocol: header_str(&parts, &smithy),
        content_encoding: header_str(&parts, &header::CONTENT_ENCODING),
    };
    let protocol = Protocol::detect(&head);
    let refuse = |error: &Error| to_axum(encode_error(protocol, error, &request_id));
    let Some(cloudwatch) = state.cloudwatch.clone() else {
        return refuse(&Error::InvalidAction(
            "The CloudWatch API is not enabled on this server.".to_owned(),
        ));
    };
    let limits = Limits::default();
    let body: Bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return refuse(&Error::too_large(Limit::BodyBytes, MAX_BODY_BYTES)),
    };
    let signatures = cloudwatch.signatures.current();
    let principal = match signatures.as_ref() {
        Signatures::AcceptAny => Arc::new(Principal::anonymous()),
        Signatures::Verify(keys) => {
            let headers: Vec<(&str, &[u8])> = parts
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_bytes()))
                .collect();
            let host;
            let mut headers = headers;
            // HTTP/1.1 always carries `host`; an HTTP/2 request names it in `:authority`.
            if !parts.headers.contains_key(header::HOST)
                && let Some(authority) = parts.uri.authority()
            {
                host = authority.as_str().to_owned();
                headers.push(("host", host.as_bytes()));
            }
            let signed = SignedRequest {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query: parts.uri.query().unwrap_or(""),
                headers: &headers,
                body: &body,
            };
            match verify(&signed, keys, state.clock.now().as_millis()) {
                Ok(verified) => Arc::new(Principal {
                    name: format!("aws:{}", verified.access_key_id),
                    role: verified.role,
                    namespaces: None,
                }),
                Err(e) => {
                    tracing::debug!(error = %e, "Refused a CloudWatch API request's signature.");
                    state.access.count_unauthenticated(match e.code() {
                        SigV4ErrorCode::MissingAuthenticationToken => Unauthenticated::Missing,
                        SigV4ErrorCode::IncompleteSignature => Unauthenticated::Malformed,
                        _ => Unauthenticated::Unknown,
                    });
                    return sigv4_refusal(protocol, &e, &request_id);
                }
            }
        }
    };
    let call = match thermostat_cloudwatch::decode(&head, &body, &limits) {
        Ok(call) => call,
        Err(rejection) => return to_axum(rejection.to_response(&request_id)),
    };
    let permission = match call.request.operation() {
        Operation::PutMetricData => Permission::PushMetrics,
        Operation::PutMetricAlarm
        | Operation::PutCompositeAlarm
        | Operation::DeleteAlarms
        | Operation::TagResource
        | Operation::UntagResource
        | Operation::PutAnomalyDetector
        | Operation::DeleteAnomalyDetector => Permission::WriteAlarms,
        Operation::SetAlarmState => Permission::SetAlarmState,
        Operation::EnableAlarmActions | Operation::DisableAlarmActions => {
            Permission::ToggleAlarmActions
        }
        Operation::DescribeAlarms
        | Operation::DescribeAlarmsForMetric
        | Operation::DescribeAlarmHistory
        | Operation::ListTagsForResource
        | Operation::DescribeAnomalyDetectors => Permission::ReadAlarms,
        _ => Permission::ReadMetrics,
    };
    if let Err(denied) = state.access.authorize(&principal, permission) {
        return refuse(&Error::AccessDenied(denied.to_string()));
    }
    let request = call.request;
    let audit = audit_of(&request);
    let result = if is_alarm_operation(request.operation()) {
        match &cloudwatch.alarms {
            Some(alarms) => {
                let alarms = Arc::clone(alarms);
                // The alarm runtime writes durably before it answers: off the async workers.
                tokio::task::spawn_blocking(move || dispatch_alarms(alarms.as_ref(), request))
                    .await
                    .unwrap_or_else(|e| {
                        tracing::error!(error = %e, "A CloudWatch alarm request panicked.");
                        Err(Error::InternalServiceError)
                    })
            }
            None => Err(Error::InvalidAction(
                "The alarm operations are not enabled on this server.".to_owned(),
            )),
        }
    } else {
        dispatch(cloudwatch.metrics.as_ref(), Arc::clone(&principal), request).await
    };
    // A change to the alarms is acknowledged once its audit event is written.
    if let (Some((action, target, parameters)), Some(meta)) =
        (audit, parts.extensions.get::<RequestMeta>())
    {
        let (outcome, error) = match &result {
            Ok(_) => (Outcome::Success, None),
            Err(e) => (Outcome::Failure, Some(e.to_string())),
        };
        let event = meta.event(
            crate::access::now(&state),
            Some(&principal),
            action,
            Some(&target),
            parameters,
            outcome,
            error,
        );
        if let Err(e) = crate::access::record(&state, event).await {
            tracing::error!(error = %e, "Could not write a CloudWatch alarm change to the audit trail.");
            return refuse(&Error::InternalServiceError);
        }
    }
    match result {
        Ok(output) => to_axum(encode_output(call.protocol, &output, &request_id)),
        Err(error) => to_axum(encode_error(call.protocol, &error, &request_id)),
    }
}

/// The audit action, target and parameters of a request that changes alarms.
fn audit_of(request: &CwRequest) -> Option<(&'static str, String, serde_json::Value)> {
    use serde_json::json;
    Some(match request {
        CwRequest::PutMetricAlarm(r) => (
            "put_metric_alarm",
            r.alarm_name.clone(),
            json!({
                "namespace": r.namespace,
                "metric_name": r.metric_name,
                "threshold": r.threshold,
                "comparison_operator": r.comparison_operator,
            }),
        ),
        CwRequest::PutCompositeAlarm(r) => (
            "put_composite_alarm",
            r.alarm_name.clone(),
            json!({ "alarm_rule": r.alarm_rule }),
        ),
        CwRequest::DeleteAlarms(names) => ("delete_alarms", names.join(","), json!({})),
        CwRequest::SetAlarmState(r) => (
            "set_alarm_state",
            r.alarm_name.clone(),
            json!({ "state_value": r.state_value, "state_reason": r.state_reason }),
        ),
        CwRequest::EnableAlarmActions(names) => {
            ("enable_alarm_actions", names.join(","), json!({}))
        }
        CwRequest::DisableAlarmActions(names) => {
            ("disable_alarm_actions", names.join(","), json!({}))
        }
        CwRequest::TagResource(r) => (
            "tag_resource",
            r.resource_arn.clone(),
            json!({ "tag_keys": r.tags.iter().map(|t| t.key.as_str()).collect::<Vec<_>>() }),
        ),
        CwRequest::UntagResource(r) => (
            "untag_resource",
            r.resource_arn.clone(),
            json!({ "tag_keys": r.tag_keys }),
        ),
        CwRequest::PutAnomalyDetector(r) | CwRequest::DeleteAnomalyDetector(r) => (
            if matches!(request, CwRequest::PutAnomalyDetector(_)) {
                "put_anomaly_detector"
            } else {
                "delete_anomaly_detector"
            },
            format!("{}/{}", r.metric.namespace, r.metric.metric_name),
            json!({ "stat": r.stat, "dimensions": r.metric.dimensions.len() }),
        ),
        _ => return None,
    })
}

/// Whether `operation` is served over [`CloudWatchAlarms`].
const fn is_alarm_operation(operation: Operation) -> bool {
    matches!(
        operation,
        Operation::PutMetricAlarm
            | Operation::PutCompositeAlarm
            | Operation::DescribeAlarms
            | Operation::DescribeAlarmsForMetric
            | Operation::DeleteAlarms
            | Operation::SetAlarmState
            | Operation::EnableAlarmActions
            | Operation::DisableAlarmActions
            | Operation::DescribeAlarmHistory
            | Operation::ListTagsForResource
            | Operation::TagResource
            | Operation::UntagResource
            | Operation::PutAnomalyDetector
            | Operation::DeleteAnomalyDetector
            | Operation::DescribeAnomalyDetectors
    )
}

fn dispatch_alarms(alarms: &dyn CloudWatchAlarms, request: CwRequest) -> Result<Output, Error> {
    Ok(match request {
        CwRequest::PutMetricAlarm(r) => {
            alarms.put_metric_alarm(r)?;
            Output::PutMetricAlarm
        }
        CwRequest::PutCompositeAlarm(r) => {
            alarms.put_composite_alarm(r)?;
            Output::PutCompositeAlarm
        }
        CwRequest::DescribeAlarms(r) => Output::DescribeAlarms(alarms.describe_alarms(r)?),
        CwRequest::DescribeAlarmsForMetric(r) => {
            Output::DescribeAlarmsForMetric(alarms.describe_alarms_for_metric(r)?)
        }
        CwRequest::DeleteAlarms(names) => {
            alarms.delete_alarms(names)?;
            Output::DeleteAlarms
        }
        CwRequest::SetAlarmState(r) => {
            alarms.set_alarm_state(r)?;
            Output::SetAlarmState
        }
        CwRequest::EnableAlarmActions(names) => {
            alarms.set_actions_enabled(names, true)?;
            Output::EnableAlarmActions
        }
        CwRequest::DisableAlarmActions(names) => {
            alarms.set_actions_enabled(names, false)?;
            Output::DisableAlarmActions
        }
        CwRequest::DescribeAlarmHistory(r) => {
            Output::DescribeAlarmHistory(alarms.describe_alarm_history(r)?)
        }
        CwRequest::ListTagsForResource(arn) => {
            Output::ListTagsForResource(alarms.list_tags_for_resource(arn)?)
        }
        CwRequest::TagResource(r) => {
            alarms.tag_resource(r)?;
            Output::TagResource
        }
        CwRequest::UntagResource(r) => {
            alarms.untag_resource(r)?;
            Output::UntagResource
        }
        CwRequest::PutAnomalyDetector(r) => {
            alarms.put_anomaly_detector(r)?;
            Output::PutAnomalyDetector
        }
        CwRequest::DeleteAnomalyDetector(r) => {
            alarms.delete_anomaly_detector(r)?;
            Output::DeleteAnomalyDetector
        }
        CwRequest::DescribeAnomalyDetectors(r) => {
            Output::DescribeAnomalyDetectors(alarms.describe_anomaly_detectors(r)?)
        }
        other => {
            return Err(Error::InvalidAction(format!(
                "{} is not an alarm operation.",
                other.operation()
            )));
        }
    })
}

async fn dispatch(
    metrics: &dyn CloudWatchMetrics,
    principal: Arc<Principal>,
    request: CwRequest,
) -> Result<Output, Error> {
    Ok(match request {
        CwRequest::PutMetricData(r) => {
            metrics.put_metric_data(principal, r).await?;
            Output::PutMetricData
        }
        CwRequest::GetMetricStatistics(r) => {
            Output::GetMetricStatistics(metrics.get_metric_statistics(principal, r).await?)
        }
        CwRequest::ListMetrics(r) => Output::ListMetrics(metrics.list_metrics(principal, r).await?),
        CwRequest::GetMetricData(r) => {
            Output::GetMetricData(get_metric_data(metrics, principal, r).await?)
        }
        other => {
            return Err(Error::InvalidAction(format!(
                "{} is not a metric operation.",
                other.operation()
            )));
        }
    })
}

/// The value of `stat` in a datapoint.
fn stat_value(stat: &Statistic, d: &thermostat_cloudwatch::output::Datapoint) -> Option<f64> {
    match stat {
        Statistic::SampleCount => d.sample_count,
        Statistic::Sum => d.sum,
        Statistic::Minimum => d.minimum,
        Statistic::Maximum => d.maximum,
        Statistic::Average => d.average,
        Statistic::Percentile(_) | Statistic::Extended(_) => {
            d.extended_statistics.get(stat.name()).copied()
        }
    }
}

/// `GetMetricData` in the shared shape ([`thermostat_alarms::math::metric_data`]).
fn metric_data_request(request: GetMetricData) -> md::MetricDataRequest {
    md::MetricDataRequest {
        queries: request
            .metric_data_queries
            .into_iter()
            .map(|q| md::DataQuery {
                id: q.id,
                source: match q.kind {
                    QueryKind::MetricStat(s) => md::DataSource::MetricStat(md::MetricStat {
                        metric: md::Metric {
                            namespace: s.metric.namespace,
                            metric_name: s.metric.metric_name,
                            dimensions: s
                                .metric
                                .dimensions
                                .into_iter()
                                .map(|d| thermostat_metrics::Dimension::new(d.name, d.value))
                                .collect(),
                        },
                        period_seconds: s.period_seconds,
                        stat: s.stat,
                        unit: s.unit,
                    }),
                    QueryKind::Expression(e) => md::DataSource::Expression(e),
                },
                label: q.label,
                return_data: q.return_data,
                period_seconds: q.period_seconds,
            })
            .collect(),
        start: request.start_time,
        end: request.end_time,
        scan_by: match request.scan_by {
            ScanBy::TimestampDescending => md::ScanBy::TimestampDescending,
            ScanBy::TimestampAscending => md::ScanBy::TimestampAscending,
        },
        max_datapoints: request.max_datapoints,
        next_token: request.next_token,
    }
}

/// A problem of a `GetMetricData` in CloudWatch's codes: `InvalidNextToken` for the token,
/// else `InvalidParameterValue` naming the field (`MetricDataQueries.member.2.Expression:
/// 1:7: syntax: …`), with any further problems after it.
fn metric_data_error(errors: &[md::MetricDataError]) -> Error {
    let text = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    match errors.first() {
        Some(e) if e.field == "NextToken" => Error::InvalidNextToken(text),
        _ => Error::InvalidParameterValue(text),
    }
}

/// `GetMetricData`: `MetricStat` queries read through [`CloudWatchMetrics::get_metric_statistics`]
/// (so both APIs read one series) and `Expression` queries evaluated over them by the shared
/// implementation, which also cuts the page (`MaxDatapoints`, `NextToken`).
async fn get_metric_data(
    metrics: &dyn CloudWatchMetrics,
    principal: Arc<Principal>,
    request: GetMetricData,
) -> Result<GetMetricDataOutput, Error> {
    let prepared = md::prepare(metric_data_request(request)).map_err(|e| metric_data_error(&e))?;
    let mut fetched = Vec::with_capacity(prepared.fetches().len());
    for f in prepared.fetches() {
        let m = &f.stat.metric;
        let out = metrics
            .get_metric_statistics(
                Arc::clone(&principal),
                GetMetricStatistics {
                    metric: thermostat_cloudwatch::request::Metric {
                        namespace: m.namespace.clone(),
                        metric_name: m.metric_name.clone(),
                        dimensions: m
                            .dimensions
                            .iter()
                            .map(|d| thermostat_cloudwatch::request::Dimension {
                                name: d.name.clone(),
                                value: d.value.clone(),
                            })
                            .collect(),
                    },
                    start_time: f.start,
                    end_time: f.end,
                    period_seconds: f.stat.period_seconds,
                    statistics: vec![f.stat.stat.clone()],
                    unit: f.stat.unit,
                },
            )
            .await?;
        fetched.push(
            out.datapoints
                .iter()
                .filter_map(|d| stat_value(&f.stat.stat, d).map(|v| (d.timestamp, v)))
                .collect(),
        );
    }
    let answer = prepared
        .answer(fetched, &thermostat_alarms::math::NoBands)
        .map_err(|e| metric_data_error(&[e]))?;
    let messages = |m: Vec<md::Message>| {
        m.into_iter()
            .map(|m| MessageData {
                code: m.code,
                value: m.value,
            })
            .collect()
    };
    Ok(GetMetricDataOutput {
        metric_data_results: answer
            .results
            .into_iter()
            .map(|r| MetricDataResult {
                id: r.id,
                label: r.label,
                timestamps: r.timestamps,
                values: r.values,
                status_code: match r.status {
                    md::ResultStatus::Complete => ResultStatus::Complete,
                    md::ResultStatus::PartialData => ResultStatus::PartialData,
                },
                messages: messages(r.messages),
            })
            .collect(),
        next_token: answer.next_token,
        messages: messages(answer.messages),
    })
}

/// A SigV4 refusal in the request's protocol, with AWS's code and status.
fn sigv4_refusal(protocol: Protocol, e: &SigV4Error, request_id: &str) -> Response {
    let message = e.message().to_owned();
    match e.code() {
        SigV4ErrorCode::SignatureDoesNotMatch => to_axum(encode_error(
            protocol,
            &Error::SignatureDoesNotMatch(message),
            request_id,
        )),
        SigV4ErrorCode::InvalidClientTokenId => to_axum(encode_error(
            protocol,
            &Error::InvalidClientTokenId(message),
            request_id,
        )),
        code => coded_error(
            protocol,
            code.as_str(),
            e.http_status(),
            &message,
            request_id,
        ),
    }
}

/// An error whose code `thermostat_cloudwatch::Error` has no variant for, in each protocol's
/// shape (as `encode_error` writes them).
fn coded_error(
    protocol: Protocol,
    code: &str,
    status: u16,
    message: &str,
    request_id: &str,
) -> Response {
    let mut response = match protocol {
        Protocol::AwsJson | Protocol::RpcV2Cbor => {
            let node = Node::Struct(vec![
                ("__type", Node::String(code.to_owned())),
                ("message", Node::String(message.to_owned())),
            ]);
            let mut r = encode_node(protocol, Operation::PutMetricData, Some(&node), request_id);
            r.headers
                .push(("x-amzn-query-error", format!("{code};Sender")));
            r
        }
        Protocol::AwsQuery => {
            // `encode_error` with a stand-in error gives the XML shape; the code is replaced.
            let mut r = encode_error(
                protocol,
                &Error::AccessDenied(message.to_owned()),
                request_id,
            );
            let xml = String::from_utf8_lossy(&r.body).replacen(
                "<Code>AccessDenied</Code>",
                &format!("<Code>{code}</Code>"),
                1,
            );
            r.body = xml.into_bytes();
            r
        }
    };
    response.status = status;
    to_axum(response)
}

/// A `thermostat-cloudwatch` response as axum's.
fn to_axum(response: thermostat_cloudwatch::Response) -> Response {
    let mut out = (
        StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Body::from(response.body),
    )
        .into_response();
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            out.headers_mut().insert(name, value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use axum::http::Request as HttpRequest;
    use http_body_util::BodyExt as _;
    use thermostat_cloudwatch::output::Datapoint;
    use thermostat_metrics::{ManualClock, Store, Telemetry, Timestamp};
    use tower::ServiceExt as _;

    use super::*;

    /// Two datapoints of every statistic query; pushes and listings are not asked for here.
    #[derive(Debug)]
    struct Fake;

    impl CloudWatchMetrics for Fake {
        fn put_metric_data(&self, _: Arc<Principal>, _: PutMetricData) -> CloudWatchFuture<()> {
            Box::pin(async { Ok(()) })
        }

        fn get_metric_statistics(
            &self,
            _: Arc<Principal>,
            request: GetMetricStatistics,
        ) -> CloudWatchFuture<GetMetricStatisticsOutput> {
            let point = |secs, sum| Datapoint {
                timestamp: Timestamp::from_secs(secs),
                sum: Some(sum),
                ..Datapoint::default()
            };
            Box::pin(async move {
                Ok(GetMetricStatisticsOutput {
                    label: request.metric.metric_name,
                    datapoints: vec![point(60, 1.0), point(120, 2.0)],
                })
            })
        }

        fn list_metrics(
            &self,
            _: Arc<Principal>,
            _: ListMetrics,
        ) -> CloudWatchFuture<ListMetricsOutput> {
            Box::pin(async { Ok(ListMetricsOutput::default()) })
        }
    }

    fn state(signatures: Signatures) -> ApiState {
        ApiState {
            store: Arc::new(Store::new(1)),
            telemetry: Arc::new(Telemetry::new()),
            clock: Arc::new(ManualClock::new(Timestamp::from_secs(1_000))),
            ready: Arc::new(AtomicBool::new(true)),
            alarms: None,
            groups: None,
            notifications: None,
            admin: None,
            queries: Default::default(),
            access: Arc::new(thermostat_auth::Access::open()),
            audit: None,
            otlp: None,
            remote_write: None,
            cluster: None,
            cloudwatch: Some(Arc::new(CloudWatch {
                metrics: Arc::new(Fake),
                alarms: None,
                signatures: Arc::new(SignatureCheck::new(signatures)),
            })),
        }
    }

    async fn json_call(
        signatures: Signatures,
        operation: &str,
        body: impl Into<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let req = HttpRequest::post("/")
            .header(
                "x-amz-target",
                format!("GraniteServiceVersion20100801.{operation}"),
            )
            .header("content-type", "application/x-amz-json-1.0")
            .body(body.into())
            .unwrap();
        let resp = crate::router(state(signatures)).oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (parts.status, parts.headers, json)
    }

    const QUERY: &str = r#"{"Id":"a","MetricStat":{"Metric":{"Namespace":"N","MetricName":"M"},"Period":60,"Stat":"Sum"}}"#;

    #[tokio::test]
    async fn get_metric_data_answers_metric_stat_queries_newest_first() {
        let body = format!(r#"{{"MetricDataQueries":[{QUERY}],"StartTime":0,"EndTime":600}}"#);
        let (status, headers, json) = json_call(Signatures::AcceptAny, "GetMetricData", body).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert!(headers.contains_key("x-amzn-requestid"));
        let result = &json["MetricDataResults"][0];
        assert_eq!(result["Id"], "a");
        assert_eq!(result["Label"], "M");
        assert_eq!(result["Timestamps"], serde_json::json!([120, 60]));
        assert_eq!(result["Values"], serde_json::json!([2.0, 1.0]));
        assert_eq!(result["StatusCode"], "Complete");
    }

    #[tokio::test]
    async fn get_metric_data_evaluates_expressions_and_names_a_broken_one() {
        let hidden = QUERY.replace(r#""Stat":"Sum"}"#, r#""Stat":"Sum"},"ReturnData":false"#);
        let body = |expression: &str| {
            format!(
                r#"{{"MetricDataQueries":[{hidden},{{"Id":"e","Expression":"{expression}"}}],"StartTime":0,"EndTime":600}}"#
            )
        };
        let (status, _, json) =
            json_call(Signatures::AcceptAny, "GetMetricData", body("a * 10")).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        let results = json["MetricDataResults"].as_array().unwrap();
        assert_eq!(results.len(), 1, "only ReturnData queries: {json}");
        assert_eq!(results[0]["Id"], "e");
        assert_eq!(results[0]["Label"], "e");
        assert_eq!(results[0]["Timestamps"], serde_json::json!([120, 60]));
        assert_eq!(results[0]["Values"], serde_json::json!([20.0, 10.0]));

        let (status, headers, json) =
            json_call(Signatures::AcceptAny, "GetMetricData", body("a +* 2")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            headers["x-amzn-query-error"],
            "InvalidParameterValue;Sender"
        );
        let message = json["message"].as_str().unwrap();
        assert!(
            message.starts_with("MetricDataQueries.member.2.Expression: 1:4: syntax"),
            "{json}"
        );
    }

    #[tokio::test]
    async fn get_metric_data_pages_by_max_datapoints_with_a_token_for_that_request() {
        // Two queries of two datapoints each, three datapoints a page.
        let queries = format!(
            r#"[{QUERY},{}]"#,
            QUERY.replace(r#""Id":"a""#, r#""Id":"b""#)
        );
        let body = |token: &str| {
            format!(
                r#"{{"MetricDataQueries":{queries},"StartTime":0,"EndTime":600,"MaxDatapoints":3,"ScanBy":"TimestampAscending"{token}}}"#
            )
        };
        let (status, _, first) = json_call(Signatures::AcceptAny, "GetMetricData", body("")).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        let results = &first["MetricDataResults"];
        assert_eq!(results[0]["Values"], serde_json::json!([1.0, 2.0]));
        assert_eq!(results[0]["StatusCode"], "Complete");
        assert_eq!(results[1]["Values"], serde_json::json!([1.0]));
        assert_eq!(results[1]["StatusCode"], "PartialData");
        let token = first["NextToken"].as_str().expect("a next page").to_owned();

        let (status, _, second) = json_call(
            Signatures::AcceptAny,
            "GetMetricData",
            body(&format!(r#","NextToken":"{token}""#)),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{second}");
        let results = &second["MetricDataResults"];
        assert_eq!(results[0]["Values"], serde_json::json!([]));
        assert_eq!(results[1]["Values"], serde_json::json!([2.0]));
        assert_eq!(results[1]["Timestamps"], serde_json::json!([120]));
        assert_eq!(results[1]["StatusCode"], "Complete");
        assert!(second.get("NextToken").is_none(), "{second}");

        // The token is for that request only.
        let other = format!(
            r#"{{"MetricDataQueries":[{QUERY}],"StartTime":0,"EndTime":600,"NextToken":"{token}"}}"#
        );
        let (status, headers, _) = json_call(Signatures::AcceptAny, "GetMetricData", other).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(headers["x-amzn-query-error"], "InvalidNextToken;Sender");
    }

    #[tokio::test]
    async fn bodies_over_a_mebibyte_are_refused_and_unsigned_requests_too() {
        let (status, headers, _) = json_call(
            Signatures::AcceptAny,
            "PutMetricData",
            vec![b' '; MAX_BODY_BYTES + 1],
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            headers["x-amzn-query-error"],
            "RequestEntityTooLarge;Sender"
        );

        let (status, headers, json) = json_call(
            Signatures::Verify(AccessKeys::default()),
            "ListMetrics",
            "{}",
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            headers["x-amzn-query-error"],
            "MissingAuthenticationToken;Sender"
        );
        assert_eq!(json["__type"], "MissingAuthenticationToken");
    }

    #[tokio::test]
    async fn get_slash_stays_the_dashboard() {
        let req = HttpRequest::get("/").body(Body::empty()).unwrap();
        let resp = crate::router(state(Signatures::AcceptAny))
            .oneshot(req)
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(
            resp.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
}
