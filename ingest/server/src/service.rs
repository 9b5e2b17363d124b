//! The `thermostat.v1.MetricsService` gRPC service.

use std::pin::Pin;
use std::sync::Arc;

use futures_util::{Stream, StreamExt as _};
use thermostat_metrics::validate::ValidationError;
use thermostat_metrics::{
    Clock, Dimension, Period, Query, SeriesKey, Statistic, Store, Telemetry, Timestamp, Unit,
};
use thermostat_proto::v1::metrics_service_server::MetricsService;
use thermostat_proto::v1::{
    self as pb, GetMetricStatisticsRequest, GetMetricStatisticsResponse, ListMetricsRequest,
    ListMetricsResponse, PutMetricDataRequest, PutMetricDataResponse,
};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::convert::validate_request;
use crate::error::Error;

/// Limits that protect the server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Unary ingest requests processed at once; more get RESOURCE_EXHAUSTED.
    pub max_in_flight: usize,
    /// `StreamMetricData` streams open at once; more get RESOURCE_EXHAUSTED.
    pub max_streams: usize,
    /// Largest encoded request accepted, in bytes.
    pub max_request_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_in_flight: 1024,
            max_streams: 256,
            max_request_bytes: 16 << 20,
        }
    }
}

/// The service state shared by every connection.
#[derive(Debug, Clone)]
pub struct MetricsApi {
    store: Arc<Store>,
    telemetry: Arc<Telemetry>,
    clock: Arc<dyn Clock>,
    in_flight: Arc<Semaphore>,
    streams: Arc<Semaphore>,
    stopping: CancellationToken,
}

impl MetricsApi {
    /// A service over `store`. Once `stopping` is cancelled, new pushes get UNAVAILABLE and
    /// open streams end after the request in hand.
    pub fn new(
        store: Arc<Store>,
        telemetry: Arc<Telemetry>,
        clock: Arc<dyn Clock>,
        limits: Limits,
        stopping: CancellationToken,
    ) -> Self {
        MetricsApi {
            store,
            telemetry,
            clock,
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
            streams: Arc::new(Semaphore::new(limits.max_streams)),
            stopping,
        }
    }

    /// The telemetry this service counts into.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// Validates and stores one request; the response is sent only after the data is stored.
    fn ingest(&self, req: &PutMetricDataRequest) -> Result<PutMetricDataResponse, Error> {
        if self.stopping.is_cancelled() {
            return Err(Error::ShuttingDown);
        }
        let validated = validate_request(req, self.clock.now())?;
        self.store.record_batch(&validated.batch);
        self.telemetry.ingest_accepted(validated.samples);
        Ok(PutMetricDataResponse {
            accepted_samples: validated.samples.round() as u64,
        })
    }

    fn counted<T>(&self, r: Result<T, Error>) -> Result<T, Status> {
        r.map_err(|e| {
            self.telemetry.ingest_rejected(e.reason());
            tracing::debug!(error = %e, "Rejected an ingest request.");
            Status::from(e)
        })
    }
}

fn invalid(e: ValidationError) -> Status {
    Status::invalid_argument(e.to_string())
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<PutMetricDataResponse, Status>> + Send>>;

#[tonic::async_trait]
impl MetricsService for MetricsApi {
    async fn put_metric_data(
        &self,
        request: Request<PutMetricDataRequest>,
    ) -> Result<Response<PutMetricDataResponse>, Status> {
        let Ok(_permit) = self.in_flight.try_acquire() else {
            return Err(self.counted(Err(Error::Overloaded("too many requests in flight".into())))?);
        };
        self.counted(self.ingest(request.get_ref()))
            .map(Response::new)
    }

    type StreamMetricDataStream = ResponseStream;

    async fn stream_metric_data(
        &self,
        request: Request<Streaming<PutMetricDataRequest>>,
    ) -> Result<Response<Self::StreamMetricDataStream>, Status> {
        let Ok(permit) = Arc::clone(&self.streams).try_acquire_owned() else {
            return Err(self.counted(Err(Error::Overloaded("too many open streams".into())))?);
        };
        let api = self.clone();
        let stopping = self.stopping.clone();
        let mut index = 0usize;
        let responses = request
            .into_inner()
            .take_until(stopping.cancelled_owned())
            .map(move |item| {
                let _hold = &permit;
                let i = index;
                index += 1;
                match item {
                    Ok(req) => api.counted(api.ingest(&req)).map_err(|s| {
                        Status::new(s.code(), format!("request {i} of the stream: {}", s.message()))
                    }),
                    Err(status) if status.code() == tonic::Code::OutOfRange => Err(Status::resource_exhausted(format!(
                        "request {i} of the stream is too large ({}): split it into smaller requests",
                        status.message()
                    ))),
                    Err(status) => Err(status),
                }
            });
        Ok(Response::new(Box::pin(responses)))
    }

    async fn get_metric_statistics(
        &self,
        request: Request<GetMetricStatisticsRequest>,
    ) -> Result<Response<GetMetricStatisticsResponse>, Status> {
        let r = request.into_inner();
        let statistics = r
            .statistics
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.parse::<Statistic>().map_err(|e| {
                    invalid(ValidationError::new(
                        format!("statistics[{i}]"),
                        e.to_string(),
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let period = Period::try_from_secs(r.period_seconds.into())
            .map_err(|rule| invalid(ValidationError::new("period_seconds", rule)))?;
        let unit = match r.unit.as_str() {
            "" => None,
            u => Some(
                u.parse::<Unit>()
                    .map_err(|e| invalid(ValidationError::new("unit", e.to_string())))?,
            ),
        };
        let key = SeriesKey::new(
            r.namespace.as_str(),
            r.metric_name.as_str(),
            r.dimensions
                .iter()
                .map(|d| Dimension::new(d.name.as_str(), d.value.as_str()))
                .collect(),
        );
        let query = Query {
            key,
            unit,
            start: Timestamp::from_millis(r.start_time_ms),
            end: Timestamp::from_millis(r.end_time_ms),
            period,
            statistics,
        };
        let points = self.store.query(&query, self.clock.now()).map_err(|e| {
            let field = match e.field {
                "end_time" => "end_time_ms",
                f => f,
            };
            invalid(ValidationError::new(field, e.rule))
        })?;
        let datapoints = points
            .into_iter()
            .map(|p| pb::Datapoint {
                timestamp_ms: p.timestamp.as_millis(),
                statistics: query
                    .statistics
                    .iter()
                    .zip(p.values)
                    .filter_map(|(s, v)| v.map(|v| (s.name().to_owned(), v)))
                    .collect(),
                unit: p.unit.as_str().to_owned(),
            })
            .collect();
        Ok(Response::new(GetMetricStatisticsResponse { datapoints }))
    }

    async fn list_metrics(
        &self,
        request: Request<ListMetricsRequest>,
    ) -> Result<Response<ListMetricsResponse>, Status> {
        let r = request.into_inner();
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let (ns, name) = (nonempty(&r.namespace), nonempty(&r.metric_name));
        let metrics = self
            .store
            .list(ns.as_deref(), name.as_deref(), self.clock.now())
            .into_iter()
            .map(|k| pb::Metric {
                namespace: k.namespace().to_owned(),
                metric_name: k.metric_name().to_owned(),
                dimensions: k
                    .dimensions()
                    .iter()
                    .map(|d| pb::Dimension {
                        name: d.name.clone(),
                        value: d.value.clone(),
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(ListMetricsResponse { metrics }))
    }
}
