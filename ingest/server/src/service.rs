//! The `thermostat.v1.MetricsService` gRPC service.

use std::pin::Pin;
use std::sync::Arc;

use futures_util::{Stream, StreamExt as _};
use thermostat_metrics::validate::ValidationError;
use thermostat_metrics::{
    Clock, Dimension, Period, Query, SeriesKey, Statistic, Store, Telemetry, Timestamp, Unit,
};
use thermostat_proto::codec::RawPutMetricDataRequest;
use thermostat_proto::server::metrics_service_server::MetricsService;
use thermostat_proto::v1::{
    self as pb, GetMetricStatisticsRequest, GetMetricStatisticsResponse, ListMetricsRequest,
    ListMetricsResponse, PutMetricDataResponse,
};
use tokio::sync::{Semaphore, oneshot};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::convert::{RequestError, Validated, validate_request};
use crate::error::Error;
use crate::intern::Interner;
use crate::wal::{Job, Refused, Wal};

/// Requests of one stream waiting for the log at once.
const STREAM_PIPELINE: usize = 64;

type Pending = oneshot::Receiver<Result<u64, String>>;

/// Limits that protect the server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Unary ingest requests processed at once; more get RESOURCE_EXHAUSTED.
    pub max_in_flight: usize,
    /// `StreamMetricData` streams open at once; more get RESOURCE_EXHAUSTED.
    pub max_streams: usize,
    /// Largest encoded request accepted, in bytes.
    pub max_request_bytes: usize,
    /// Series held at most; a request that would create more is refused whole.
    pub max_series: usize,
    /// Series held at most per namespace (`None` = only `max_series`).
    pub max_series_per_namespace: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_in_flight: 1024,
            max_streams: 256,
            max_request_bytes: 16 << 20,
            max_series: 1_000_000,
            max_series_per_namespace: None,
        }
    }
}

/// The service state shared by every connection.
#[derive(Debug, Clone)]
pub struct MetricsApi {
    store: Arc<Store>,
    wal: Arc<Wal>,
    telemetry: Arc<Telemetry>,
    clock: Arc<dyn Clock>,
    limits: Limits,
    in_flight: Arc<Semaphore>,
    streams: Arc<Semaphore>,
    stopping: CancellationToken,
    interner: Arc<Interner>,
}

impl MetricsApi {
    /// A service over `store`. Once `stopping` is cancelled, new pushes get UNAVAILABLE and
    /// open streams end after the request in hand.
    pub fn new(
        store: Arc<Store>,
        wal: Arc<Wal>,
        telemetry: Arc<Telemetry>,
        clock: Arc<dyn Clock>,
        limits: Limits,
        stopping: CancellationToken,
    ) -> Self {
        MetricsApi {
            store,
            wal,
            telemetry,
            clock,
            limits,
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
            streams: Arc::new(Semaphore::new(limits.max_streams)),
            stopping,
            interner: Arc::new(Interner::new(limits.max_series.saturating_mul(2))),
        }
    }

    /// The telemetry this service counts into.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// Validates a request and hands it to the write-ahead log. The returned receiver answers
    /// once the request is durable and applied; nothing of a request that fails here is stored.
    fn admit(&self, request: RawPutMetricDataRequest) -> Result<(Pending, f64), Error> {
        if self.stopping.is_cancelled() {
            return Err(Error::ShuttingDown);
        }
        let received = self.clock.now();
        let payload = request.0;
        let validated =
            validate_request(&payload, received, &self.interner).map_err(|e| match e {
                RequestError::Invalid(v) => Error::Invalid(v),
                RequestError::Wire(w) => Error::Malformed(w.to_string()),
            })?;
        let namespace = validated.series().next().map(|k| k.namespace_arc().clone());
        if let Some(ns) = namespace {
            self.check_series_limits(&ns, &validated)?;
        }
        let samples = validated.samples;
        let (ack, pending) = oneshot::channel();
        let job = Job::new(validated, received, ack);
        match self.wal.submit(job) {
            Ok(()) => Ok((pending, samples)),
            Err(Refused::Full) => Err(Error::Overloaded(
                "the write-ahead log queue is full".into(),
            )),
            Err(Refused::Closed) => Err(Error::ShuttingDown),
        }
    }

    /// Refuses a request that would create series beyond `--max-series` (or the namespace's
    /// limit). Counting the new series of a request takes a lookup per datum, so it is done
    /// only near a limit. Requests admitted at the same time may overshoot a limit by the
    /// series they create between them.
    fn check_series_limits(&self, namespace: &str, v: &Validated) -> Result<(), Error> {
        let total = self.store.series_count();
        let in_ns = self
            .limits
            .max_series_per_namespace
            .map(|_| self.store.namespace_series_count(namespace));
        // At most one new series per run of one series.
        let most_new = v.series().count();
        let near_total = total + most_new > self.limits.max_series;
        let near_ns = matches!((in_ns, self.limits.max_series_per_namespace), (Some(n), Some(max)) if n + most_new > max);
        if !near_total && !near_ns {
            return Ok(());
        }
        let mut new: Vec<&SeriesKey> = v.series().filter(|k| !self.store.contains(k)).collect();
        new.sort_unstable();
        new.dedup();
        let refuse = |limit: usize, what: &str| {
            self.telemetry.series_refused(new.len());
            Err(Error::SeriesLimit(format!(
                "the request would create {} new series beyond the limit of {limit} series {what}; existing series keep working: send data for existing series only, or raise the limit",
                new.len()
            )))
        };
        if !new.is_empty() && total + new.len() > self.limits.max_series {
            return refuse(self.limits.max_series, "(--max-series)");
        }
        if let (Some(n), Some(max)) = (in_ns, self.limits.max_series_per_namespace)
            && !new.is_empty()
            && n + new.len() > max
        {
            return refuse(
                max,
                &format!("in namespace {namespace:?} (--max-series-per-namespace)"),
            );
        }
        Ok(())
    }

    /// Waits until an admitted request is durable; the response is sent only then.
    async fn settle(&self, pending: Pending, samples: f64) -> Result<PutMetricDataResponse, Error> {
        match pending.await {
            Ok(Ok(_seq)) => {
                self.telemetry.ingest_accepted(samples);
                Ok(PutMetricDataResponse {
                    accepted_samples: samples.round() as u64,
                })
            }
            Ok(Err(msg)) => Err(Error::Persist(msg)),
            Err(_) => Err(Error::ShuttingDown),
        }
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
        request: Request<RawPutMetricDataRequest>,
    ) -> Result<Response<PutMetricDataResponse>, Status> {
        let Ok(_permit) = self.in_flight.try_acquire() else {
            return Err(self.counted(Err(Error::Overloaded("too many requests in flight".into())))?);
        };
        let (pending, samples) = self.counted(self.admit(request.into_inner()))?;
        self.counted(self.settle(pending, samples).await)
            .map(Response::new)
    }

    type StreamMetricDataStream = ResponseStream;

    async fn stream_metric_data(
        &self,
        request: Request<Streaming<RawPutMetricDataRequest>>,
    ) -> Result<Response<Self::StreamMetricDataStream>, Status> {
        let Ok(permit) = Arc::clone(&self.streams).try_acquire_owned() else {
            return Err(self.counted(Err(Error::Overloaded("too many open streams".into())))?);
        };
        let api = self.clone();
        let stopping = self.stopping.clone();
        let mut index = 0usize;
        let mut failed = false;
        // Requests are admitted (validated and queued for the log) one after another as they
        // arrive, and answered in order once durable, with up to STREAM_PIPELINE in flight.
        // Once one fails, nothing after it is admitted: the stream ends with that status, and
        // a request the client did not get an answer for was not stored.
        let admitted = request.into_inner().take_until(stopping.cancelled_owned()).map(move |item| {
            let _hold = &permit;
            let i = index;
            index += 1;
            let tag = |s: Status| Status::new(s.code(), format!("request {i} of the stream: {}", s.message()));
            let result = match item {
                _ if failed => Err(Status::aborted(format!("request {i} of the stream: not processed after an earlier failure"))),
                Ok(req) => api.counted(api.admit(req)).map_err(tag),
                Err(status) if status.code() == tonic::Code::OutOfRange => Err(Status::resource_exhausted(format!(
                    "request {i} of the stream is too large ({}): split it into smaller requests",
                    status.message()
                ))),
                Err(status) => Err(status),
            };
            failed |= result.is_err();
            (i, result)
        });
        let api = self.clone();
        let responses = admitted
            .map(move |(i, admitted)| {
                let api = api.clone();
                async move {
                    let (pending, samples) = admitted?;
                    api.counted(api.settle(pending, samples).await)
                        .map_err(|s| {
                            Status::new(
                                s.code(),
                                format!("request {i} of the stream: {}", s.message()),
                            )
                        })
                }
            })
            .buffered(STREAM_PIPELINE);
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
