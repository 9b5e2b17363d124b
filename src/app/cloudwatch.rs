//! CloudWatch's API connected to ingest: the dashboards' [`CloudWatchMetrics`] port over the
//! native gRPC service ([`thermostat_ingest::MetricsApi`]), called in process with the
//! principal the SigV4 check found, so that `PutMetricData` has the native push's validation,
//! limits, durability and acknowledgement, and the reads are the native queries: data pushed
//! through either API is one series. Also the `aws_api` settings resolved into
//! [`Signatures`].

use std::sync::Arc;
use tonic_types::StatusExt as _;

use thermostat_auth::Principal;
use thermostat_cloudwatch::Error;
use thermostat_cloudwatch::output::{Datapoint, GetMetricStatisticsOutput, ListMetricsOutput};
use thermostat_cloudwatch::request::{
    DatumValue, Dimension, GetMetricStatistics, ListMetrics, Metric, MetricDatum, PutMetricData,
};
use thermostat_dashboards::cloudwatch::{CloudWatchFuture, CloudWatchMetrics, Signatures};
use thermostat_metrics::{Statistic, Timestamp, Unit};
use thermostat_proto::codec::RawPutMetricDataRequest;
use thermostat_proto::server::metrics_service_server::MetricsService as _;
use thermostat_proto::v1 as pb;

use crate::security::SecurityError;
use crate::settings::Settings;

/// The ingest side of CloudWatch's metric operations.
#[derive(Debug)]
pub struct CloudWatchIngest(pub thermostat_ingest::MetricsApi);

fn pb_dimensions(dimensions: &[Dimension]) -> Vec<pb::Dimension> {
    dimensions
        .iter()
        .map(|d| pb::Dimension {
            name: d.name.clone(),
            value: d.value.clone(),
        })
        .collect()
}

fn pb_datum(d: &MetricDatum) -> pb::MetricDatum {
    let mut datum = pb::MetricDatum {
        metric_name: d.metric_name.clone(),
        dimensions: pb_dimensions(&d.dimensions),
        timestamp_ms: d.timestamp.map_or(0, Timestamp::as_millis),
        unit: d.unit.map(|u| u.as_str().to_owned()).unwrap_or_default(),
        storage_resolution: i32::try_from(d.storage_resolution_seconds).unwrap_or(60),
        ..pb::MetricDatum::default()
    };
    match &d.value {
        DatumValue::Single(v) => datum.value = Some(*v),
        DatumValue::Distribution { values, counts } => {
            datum.values.clone_from(values);
            datum.counts.clone_from(counts);
        }
        DatumValue::Statistics(s) => {
            datum.statistic_values = Some(pb::StatisticSet {
                sample_count: s.sample_count,
                sum: s.sum,
                minimum: s.minimum,
                maximum: s.maximum,
            });
        }
    }
    datum
}

/// The native request of a `PutMetricData`: its metric data, then those of its
/// `EntityMetricData` (entities are not kept).
fn pb_put(request: &PutMetricData) -> pb::PutMetricDataRequest {
    pb::PutMetricDataRequest {
        namespace: request.namespace.clone(),
        metric_data: request
            .metric_data
            .iter()
            .chain(
                request
                    .entity_metric_data
                    .iter()
                    .flat_map(|e| &e.metric_data),
            )
            .map(pb_datum)
            .collect(),
    }
}

/// A native API refusal in CloudWatch's codes.
fn cloudwatch_error(status: &tonic::Status) -> Error {
    let message = status.message().to_owned();
    match status.code() {
        tonic::Code::InvalidArgument | tonic::Code::OutOfRange => {
            Error::InvalidParameterValue(message)
        }
        tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => {
            Error::AccessDenied(message)
        }
        // Overload passes (the status carries a RetryInfo): `Throttling`, which every SDK
        // retries with back-off. A series limit does not pass by waiting: `LimitExceeded`.
        tonic::Code::ResourceExhausted if status.get_details_retry_info().is_some() => {
            Error::Throttling(message)
        }
        tonic::Code::ResourceExhausted => Error::LimitExceeded(message),
        tonic::Code::Unavailable => Error::ServiceUnavailable(message),
        _ => {
            tracing::error!(code = ?status.code(), %message, "A CloudWatch API request failed.");
            Error::InternalServiceError
        }
    }
}

fn request_for<T>(principal: Arc<Principal>, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.extensions_mut().insert(principal);
    request
}

impl CloudWatchMetrics for CloudWatchIngest {
    fn put_metric_data(
        &self,
        principal: Arc<Principal>,
        request: PutMetricData,
    ) -> CloudWatchFuture<()> {
        let api = self.0.clone();
        Box::pin(async move {
            let raw = RawPutMetricDataRequest::from_message(&pb_put(&request));
            api.put_metric_data(request_for(principal, raw))
                .await
                .map(|_| ())
                .map_err(|s| cloudwatch_error(&s))
        })
    }

    fn get_metric_statistics(
        &self,
        principal: Arc<Principal>,
        request: GetMetricStatistics,
    ) -> CloudWatchFuture<GetMetricStatisticsOutput> {
        let api = self.0.clone();
        Box::pin(async move {
            let native = pb::GetMetricStatisticsRequest {
                namespace: request.metric.namespace.clone(),
                metric_name: request.metric.metric_name.clone(),
                dimensions: pb_dimensions(&request.metric.dimensions),
                start_time_ms: request.start_time.as_millis(),
                end_time_ms: request.end_time.as_millis(),
                period_seconds: i32::try_from(request.period_seconds).unwrap_or(i32::MAX),
                statistics: request
                    .statistics
                    .iter()
                    .map(|s| s.name().to_owned())
                    .collect(),
                unit: request
                    .unit
                    .map(|u| u.as_str().to_owned())
                    .unwrap_or_default(),
            };
            let response = api
                .get_metric_statistics(request_for(principal, native))
                .await
                .map_err(|s| cloudwatch_error(&s))?
                .into_inner();
            let datapoints = response
                .datapoints
                .into_iter()
                .map(|p| {
                    let mut d = Datapoint {
                        timestamp: Timestamp::from_millis(p.timestamp_ms),
                        unit: p.unit.parse::<Unit>().ok(),
                        ..Datapoint::default()
                    };
                    for stat in &request.statistics {
                        let Some(&v) = p.statistics.get(stat.name()) else {
                            continue;
                        };
                        match stat {
                            Statistic::SampleCount => d.sample_count = Some(v),
                            Statistic::Sum => d.sum = Some(v),
                            Statistic::Minimum => d.minimum = Some(v),
                            Statistic::Maximum => d.maximum = Some(v),
                            Statistic::Average => d.average = Some(v),
                            Statistic::Percentile(_) | Statistic::Extended(_) => {
                                d.extended_statistics.insert(stat.name().to_owned(), v);
                            }
                        }
                    }
                    d
                })
                .collect();
            Ok(GetMetricStatisticsOutput {
                label: request.metric.metric_name,
                datapoints,
            })
        })
    }

    fn list_metrics(
        &self,
        principal: Arc<Principal>,
        request: ListMetrics,
    ) -> CloudWatchFuture<ListMetricsOutput> {
        let api = self.0.clone();
        Box::pin(async move {
            let native = pb::ListMetricsRequest {
                namespace: request.namespace.clone().unwrap_or_default(),
                metric_name: request.metric_name.clone().unwrap_or_default(),
                next_token: request.next_token.clone().unwrap_or_default(),
                max_records: 0,
                // `RecentlyActive=PT3H`, CloudWatch's only value.
                active_within_seconds: if request.recently_active { 3 * 3600 } else { 0 },
            };
            let response = api
                .list_metrics(request_for(principal, native))
                .await
                .map_err(|s| match cloudwatch_error(&s) {
                    Error::InvalidParameterValue(m) if m.starts_with("next_token") => {
                        Error::InvalidNextToken(m)
                    }
                    e => e,
                })?
                .into_inner();
            // A dimension filter matches a metric with a dimension of that name (and value,
            // when given); a page may hold fewer metrics than the store's, `NextToken` leads
            // on.
            let metrics = response
                .metrics
                .into_iter()
                .filter(|m| {
                    request.dimensions.iter().all(|f| {
                        m.dimensions.iter().any(|d| {
                            d.name == f.name && f.value.as_ref().is_none_or(|v| *v == d.value)
                        })
                    })
                })
                .map(|m| Metric {
                    namespace: m.namespace,
                    metric_name: m.metric_name,
                    dimensions: m
                        .dimensions
                        .into_iter()
                        .map(|d| Dimension {
                            name: d.name,
                            value: d.value,
                        })
                        .collect(),
                })
                .collect();
            Ok(ListMetricsOutput {
                metrics,
                next_token: Some(response.next_token).filter(|t| !t.is_empty()),
            })
        })
    }
}

/// How the CloudWatch API authenticates, from `aws_api`: the access keys resolved (secrets
/// from their variables or files), or any signature accepted when `verify_signatures` is
/// false, which the loopback rule of access control allows only on loopback or with
/// `--insecure-no-auth`.
///
/// # Errors
/// An access key whose secret cannot be read, or `verify_signatures: false` beyond loopback.
pub fn signatures(settings: &Settings) -> Result<Signatures, SecurityError> {
    signatures_of(
        &settings.aws_api,
        settings.http_addr,
        settings.insecure_no_auth,
    )
}

pub use crate::security::signatures_of;

#[cfg(test)]
mod tests {
    use thermostat_auth::Role;
    use thermostat_auth::sigv4::{AccessKeyEntry, AccessKeySecret};

    use super::*;

    fn settings(http_addr: &str, verify: bool, insecure: bool) -> Settings {
        let mut s = Settings {
            http_addr: http_addr.parse().unwrap(),
            insecure_no_auth: insecure,
            ..Settings::default()
        };
        s.aws_api.verify_signatures = verify;
        s
    }

    #[test]
    fn accepting_any_signature_needs_loopback_or_insecure_no_auth() {
        let on = |addr, insecure| signatures(&settings(addr, false, insecure));
        assert!(matches!(
            on("127.0.0.1:0", false),
            Ok(Signatures::AcceptAny)
        ));
        assert!(matches!(on("[::1]:0", false), Ok(Signatures::AcceptAny)));
        assert!(matches!(on("0.0.0.0:0", true), Ok(Signatures::AcceptAny)));
        let e = on("0.0.0.0:0", false).unwrap_err().to_string();
        assert!(
            e.contains("verify_signatures") && e.contains("0.0.0.0"),
            "{e}"
        );
    }

    #[test]
    fn keys_are_resolved_and_a_missing_secret_is_refused() {
        let mut s = settings("127.0.0.1:0", true, false);
        assert!(matches!(signatures(&s), Ok(Signatures::Verify(_))));
        s.aws_api.access_keys = vec![AccessKeyEntry {
            access_key_id: "AKID1".into(),
            secret: AccessKeySecret::Env("THERMOSTAT_TEST_SURELY_UNSET_SECRET".into()),
            role: Role::Agent,
        }];
        let e = signatures(&s).unwrap_err().to_string();
        assert!(
            e.contains("AKID1") && e.contains("THERMOSTAT_TEST_SURELY_UNSET_SECRET"),
            "{e}"
        );
    }
}
