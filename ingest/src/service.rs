//! The `thermostat.v1.MetricsService` gRPC service.

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures_util::{Stream, StreamExt as _};
use thermostat_auth::{Access, Credentials, Denied, Permission, Principal};
use thermostat_metrics::store::{LIST_MAX_BYTES, LIST_MAX_RECORDS, ListCursor, ListFilter};
use thermostat_metrics::store::{QueryGate, QueryRefused};
use thermostat_metrics::validate::ValidationError;
use thermostat_metrics::{
    Clock, Dimension, ObservationBatch, Period, Query, SeriesKey, Statistic, Store, Telemetry,
    Timestamp, Unit,
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

use thermostat_otlp::MapOptions;

use crate::convert::validate_request;
use crate::error::{Error, Overload, SeriesLimit};
use crate::intern::Interner;
use crate::reservation::{Reservation, Reserved};
use crate::streams::{OtlpOptions, StreamsState, map_options};
use crate::wal::{Acknowledgement, Job, Refused, Wal};

/// Requests of one stream waiting for the log at once.
const STREAM_PIPELINE: usize = 64;

type Pending = oneshot::Receiver<Acknowledgement>;

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
    /// Bytes of series (keys and windows, weighed by [`Store::series_bytes`]) held at most; a
    /// request that would create series beyond it is refused whole. The interner's cache of
    /// identities holds at most a quarter as much besides.
    pub max_series_bytes: usize,
    /// Cost (periods × statistics × series) of one `GetMetricStatistics` at most; the query
    /// gate made by [`crate::Ingest::metrics_api`] uses it (see [`MetricsApi::with_query_gate`]).
    pub max_query_cost: u64,
    /// A `StreamMetricData` stream that sends no message for this long is closed with
    /// DEADLINE_EXCEEDED, which frees its `max_streams` slot.
    pub stream_idle_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_in_flight: 1024,
            max_streams: 256,
            max_request_bytes: 16 << 20,
            max_series: 1_000_000,
            max_series_per_namespace: None,
            max_series_bytes: 4 << 30,
            max_query_cost: thermostat_metrics::store::DEFAULT_MAX_QUERY_COST,
            stream_idle_timeout: std::time::Duration::from_secs(60),
        }
    }
}

/// The service state shared by every connection.
#[derive(Debug, Clone)]
pub struct MetricsApi {
    pub(crate) store: Arc<Store>,
    pub(crate) wal: Arc<Wal>,
    pub(crate) telemetry: Arc<Telemetry>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) limits: Limits,
    pub(crate) in_flight: Arc<Semaphore>,
    pub(crate) streams: Arc<Semaphore>,
    pub(crate) stopping: CancellationToken,
    pub(crate) interner: Arc<Interner>,
    pub(crate) queries: Arc<QueryGate>,
    /// New series of requests admitted but not yet applied (see
    /// [`MetricsApi::check_series_limits`]).
    pub(crate) reserved: Arc<Mutex<Reserved>>,
    /// Who may push and read what.
    pub(crate) access: Arc<Access>,
    /// The OTLP cumulative streams ([`crate::OtlpApi`]).
    pub(crate) otlp_streams: Arc<StreamsState>,
    /// How OTLP requests are mapped.
    pub(crate) otlp_options: Arc<MapOptions>,
    /// How long an idle OTLP stream is kept.
    pub(crate) otlp_stream_idle: std::time::Duration,
    /// How Prometheus remote-write requests are mapped ([`crate::RemoteWriteApi`]).
    pub(crate) prometheus_options: Arc<thermostat_prometheus::MapOptions>,
    /// Whether query answers come from a memory that may be stale (cluster mode, cut off
    /// from NATS); they then carry the metadata [`STALE_METADATA`]`: true`.
    pub(crate) stale: StaleProbe,
}

/// The gRPC metadata a query answer carries (`true`) when it was answered from a node's own
/// memory while cut off from the cluster.
pub const STALE_METADATA: &str = "thermostat-stale";

/// Whether answers may be stale ([`MetricsApi::with_stale_probe`]); never, unless given.
#[derive(Clone, Default)]
pub(crate) struct StaleProbe(Option<Arc<dyn Fn() -> bool + Send + Sync>>);

impl std::fmt::Debug for StaleProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "StaleProbe(set)"
        } else {
            "StaleProbe(none)"
        })
    }
}

impl MetricsApi {
    /// A service over `store`, pushing through `wal`. Once `stopping` is cancelled, new pushes
    /// get UNAVAILABLE and open streams end after the request in hand.
    pub(crate) fn new(
        store: Arc<Store>,
        wal: Arc<Wal>,
        telemetry: Arc<Telemetry>,
        clock: Arc<dyn Clock>,
        limits: Limits,
        stopping: CancellationToken,
        otlp_streams: Arc<StreamsState>,
    ) -> Self {
        let otlp_stream_idle = std::time::Duration::from_secs(3600);
        MetricsApi {
            otlp_options: Arc::new(map_options(
                &OtlpOptions::default(),
                limits.max_series,
                otlp_stream_idle,
            )),
            otlp_streams,
            otlp_stream_idle,
            prometheus_options: Arc::new(crate::streams::prometheus_options(
                &crate::streams::RemoteWriteOptions::default(),
                limits.max_series,
            )),
            store,
            wal,
            telemetry,
            clock,
            limits,
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
            streams: Arc::new(Semaphore::new(limits.max_streams)),
            stopping,
            interner: Arc::new(Interner::with_max_bytes(
                limits.max_series.saturating_mul(2),
                limits.max_series_bytes / 4,
            )),
            reserved: Arc::default(),
            stale: StaleProbe::default(),
            access: Arc::new(Access::open()),
            queries: Arc::new(QueryGate::new(
                limits.max_query_cost,
                1,
                thermostat_metrics::store::DEFAULT_MAX_WAITING_QUERIES,
            )),
        }
    }

    /// Forgets OTLP streams idle for longer than `idle` when the mapping needs room.
    pub(crate) fn with_otlp_stream_idle(mut self, idle: std::time::Duration) -> Self {
        self.otlp_stream_idle = idle;
        self.otlp_options = Arc::new(map_options(
            &OtlpOptions {
                resource_dimensions: self.otlp_options.resource_dimensions.clone(),
            },
            self.limits.max_series,
            idle,
        ));
        self
    }

    /// Marks query answers (statistics, metric data, listings) with the metadata
    /// [`STALE_METADATA`]`: true` while `stale` says they come from a memory that may be
    /// behind (cluster mode, cut off from NATS).
    #[must_use]
    pub fn with_stale_probe(mut self, stale: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.stale = StaleProbe(Some(Arc::new(stale)));
        self
    }

    /// A query's answer, marked stale when it may be ([`Self::with_stale_probe`]).
    fn answer<T>(&self, body: T) -> Response<T> {
        let mut response = Response::new(body);
        if self.stale.0.as_ref().is_some_and(|stale| stale()) {
            response.metadata_mut().insert(
                STALE_METADATA,
                tonic::metadata::MetadataValue::from_static("true"),
            );
        }
        response
    }

    /// Runs `GetMetricStatistics` through `gate` (shared with the HTTP API) instead of a gate
    /// of its own: one query at a time with the default queue, within
    /// `limits.max_query_cost`.
    pub fn with_query_gate(mut self, gate: Arc<QueryGate>) -> Self {
        self.queries = gate;
        self
    }

    /// Checks every RPC with `access` (auth off unless given one). [`crate::serve`]
    /// authenticates each request with the same access before the service sees it.
    pub fn with_access(mut self, access: Arc<Access>) -> Self {
        self.access = access;
        self
    }

    /// The access rules this service checks.
    pub fn access(&self) -> &Arc<Access> {
        &self.access
    }

    /// The principal of `request` (put there by [`crate::serve`]'s authentication, or found
    /// now from its metadata when the service is used without it), with `permission`.
    pub(crate) fn principal<T>(
        &self,
        request: &Request<T>,
        permission: Permission,
    ) -> Result<Arc<Principal>, Status> {
        let principal = match request.extensions().get::<Arc<Principal>>() {
            Some(p) => Arc::clone(p),
            None => {
                let authorization = request
                    .metadata()
                    .get("authorization")
                    .map(|v| v.to_str().unwrap_or(""));
                self.access
                    .authenticate(Credentials {
                        authorization,
                        client_subject: None,
                    })
                    .map_err(|e| Status::from(Error::from(e)))?
            }
        };
        self.access
            .authorize(&principal, permission)
            .map_err(|d| self.denied(&principal, d))?;
        Ok(principal)
    }

    /// Logs (at most a few a second) and answers a refusal.
    pub(crate) fn denied(&self, principal: &Principal, denied: Denied) -> Status {
        if let Some(suppressed) = self.access.log_denial(self.clock.now().as_millis()) {
            tracing::warn!(principal = %principal.name, suppressed, "Refused a gRPC request: {denied}.");
        }
        Status::from(Error::Denied(denied))
    }

    /// Refuses a read of `namespace` outside the principal's namespaces.
    fn in_scope(&self, principal: &Principal, namespace: &str) -> Result<(), Status> {
        self.access
            .authorize_namespace(principal, Permission::ReadMetrics, namespace)
            .map_err(|d| self.denied(principal, d))
    }

    /// The telemetry this service counts into.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// Validates a request and hands it to the write-ahead log. The returned receiver answers
    /// once the request is durable and applied; nothing of a request that fails here is stored.
    fn admit(
        &self,
        principal: &Principal,
        request: RawPutMetricDataRequest,
    ) -> Result<(Pending, f64), Error> {
        if self.stopping.is_cancelled() {
            return Err(Error::ShuttingDown);
        }
        let received = self.clock.now();
        let payload = request.0;
        let batch = validate_request(&payload, received, &self.interner)?;
        if principal.namespaces.is_some() {
            let mut checked: Option<&Arc<str>> = None;
            for key in batch.series() {
                let ns = key.namespace_arc();
                if checked.is_none_or(|c| !Arc::ptr_eq(c, ns) && c != ns) {
                    self.access
                        .authorize_namespace(principal, Permission::PushMetrics, ns)?;
                    checked = Some(ns);
                }
            }
        }
        let namespace = batch.series().next().map(|k| k.namespace_arc().clone());
        let reservation = match namespace {
            Some(ns) => self.check_series_limits(&ns, &batch)?,
            None => None,
        };
        let samples = batch.samples;
        let (ack, pending) = oneshot::channel();
        let job = Job::new(batch, received, ack).holding(reservation);
        match self.wal.submit(job) {
            Ok(()) => Ok((pending, samples)),
            Err(Refused::Full) => Err(Error::Overloaded(Overload::LogQueueFull)),
            Err(Refused::Closed) => Err(Error::ShuttingDown),
        }
    }

    /// Refuses a request that would create series beyond `--max-series`, the namespace's
    /// limit or `--max-series-bytes`, and otherwise reserves its new series against them until
    /// the request is applied (the reservation travels with the request's job to the applier,
    /// which drops it after recording).
    ///
    /// Check and reservation happen under one lock, against the series held plus those
    /// reserved by requests admitted before and not yet applied, so that requests admitted at
    /// the same time cannot overshoot a limit between them: the bound holds exactly. A series
    /// is counted twice for the moment between its request's apply and the release, and
    /// requests creating the same new series each reserve it, which can only refuse early.
    ///
    /// Far from every limit, a request reserves one series per run of one series (an upper
    /// bound needing no lookup); near one, its new series are counted exactly.
    fn check_series_limits(
        &self,
        namespace: &Arc<str>,
        batch: &ObservationBatch,
    ) -> Result<Option<Reservation>, Error> {
        self.reserve_series(namespace, batch.series().collect())
    }

    /// [`MetricsApi::check_series_limits`] for the series of `runs` (all in `namespace`).
    pub(crate) fn reserve_series(
        &self,
        namespace: &Arc<str>,
        runs: Vec<&SeriesKey>,
    ) -> Result<Option<Reservation>, Error> {
        let most_bytes: usize = runs.iter().map(|k| Store::new_series_bytes(k)).sum();
        let max_ns = self.limits.max_series_per_namespace;
        let mut reserved = self.reserved.lock().unwrap_or_else(|p| p.into_inner());
        let total = self.store.series_count() + reserved.series;
        let bytes = self.store.series_bytes() + reserved.bytes;
        let in_ns = max_ns.map(|_| {
            self.store.namespace_series_count(namespace)
                + reserved.per_namespace.get(namespace).copied().unwrap_or(0)
        });
        let fits = |series: usize, b: usize| {
            total + series <= self.limits.max_series
                && bytes + b <= self.limits.max_series_bytes
                && match (in_ns, max_ns) {
                    (Some(n), Some(max)) => n + series <= max,
                    _ => true,
                }
        };
        let (new, new_bytes) = if fits(runs.len(), most_bytes) {
            (runs.len(), most_bytes)
        } else {
            let mut new: Vec<&SeriesKey> = runs
                .into_iter()
                .filter(|k| !self.store.contains(k))
                .collect();
            new.sort_unstable();
            new.dedup();
            let b = new.iter().map(|k| Store::new_series_bytes(k)).sum();
            (new.len(), b)
        };
        if new == 0 {
            return Ok(None);
        }
        let refuse = |limit: SeriesLimit| {
            self.telemetry.series_refused(new);
            Err(Error::SeriesLimit {
                new_series: new,
                limit,
            })
        };
        if total + new > self.limits.max_series {
            return refuse(SeriesLimit::Total {
                max: self.limits.max_series,
            });
        }
        if let (Some(n), Some(max)) = (in_ns, max_ns)
            && n + new > max
        {
            return refuse(SeriesLimit::Namespace {
                max,
                namespace: Arc::clone(namespace),
            });
        }
        if bytes + new_bytes > self.limits.max_series_bytes {
            return refuse(SeriesLimit::Bytes {
                new_bytes,
                max: self.limits.max_series_bytes,
                held: bytes,
            });
        }
        reserved.series += new;
        reserved.bytes += new_bytes;
        if max_ns.is_some() {
            *reserved
                .per_namespace
                .entry(Arc::clone(namespace))
                .or_default() += new;
        }
        drop(reserved);
        Ok(Some(Reservation {
            reserved: Arc::clone(&self.reserved),
            namespace: Arc::clone(namespace),
            series: new,
            bytes: new_bytes,
        }))
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
            Ok(Err(e)) => Err(Error::Persist(e)),
            Err(_) => Err(Error::ShuttingDown),
        }
    }

    pub(crate) fn counted<T>(&self, r: Result<T, Error>) -> Result<T, Status> {
        r.map_err(|e| {
            if let Some(reason) = e.reason() {
                self.telemetry.ingest_rejected(reason);
            }
            tracing::debug!(error = %e, "Rejected an ingest request.");
            Status::from(e)
        })
    }
}

fn invalid(e: ValidationError) -> Status {
    Status::from(Error::Invalid(e))
}

/// `GetMetricData`'s refusals as one INVALID_ARGUMENT: the first problem's field, then
/// every problem (`metric_data_queries[1].expression: 1:7: syntax: …; …`).
fn invalid_metric_data(errors: &[thermostat_alarms::math::metric_data::MetricDataError]) -> Status {
    let Some((first, rest)) = errors.split_first() else {
        return invalid(ValidationError::new("metric_data_queries", "is invalid"));
    };
    let mut rule = first.detail();
    for e in rest {
        rule.push_str(&format!("; {}: {}", e.snake_path(), e.detail()));
    }
    invalid(ValidationError::new(first.snake_path(), rule))
}

/// The native `GetMetricData` request in the shared shape.
fn metric_data_request(
    r: pb::GetMetricDataRequest,
) -> Result<
    thermostat_alarms::math::metric_data::MetricDataRequest,
    thermostat_alarms::math::metric_data::MetricDataError,
> {
    use thermostat_alarms::math::metric_data::{
        self as md, DataQuery, DataSource, MetricDataError, MetricStat,
    };
    if r.metric_data_queries.len() > thermostat_alarms::math::MAX_REQUEST_QUERIES {
        return Err(MetricDataError {
            query: None,
            field: "MetricDataQueries",
            rule: "count",
            pos: None,
            message: format!(
                "must hold 1 to {} queries (got {})",
                thermostat_alarms::math::MAX_REQUEST_QUERIES,
                r.metric_data_queries.len()
            ),
        });
    }
    let queries = r
        .metric_data_queries
        .into_iter()
        .enumerate()
        .map(|(i, q)| {
            let source = match q.query {
                Some(pb::metric_data_query::Query::Expression(e)) => DataSource::Expression(e),
                Some(pb::metric_data_query::Query::MetricStat(s)) => {
                    let m = s.metric.unwrap_or_default();
                    DataSource::MetricStat(MetricStat::parse(
                        i,
                        md::Metric {
                            namespace: m.namespace,
                            metric_name: m.metric_name,
                            dimensions: m
                                .dimensions
                                .into_iter()
                                .map(|d| Dimension::new(d.name, d.value))
                                .collect(),
                        },
                        s.period_seconds.into(),
                        &s.stat,
                        &s.unit,
                    )?)
                }
                None => {
                    return Err(MetricDataError {
                        query: Some(i),
                        field: "MetricStat",
                        rule: "required",
                        pos: None,
                        message: "exactly one of metric_stat and expression must be set".into(),
                    });
                }
            };
            let period_seconds = match q.period_seconds {
                0 => None,
                p => Some(u32::try_from(p).map_err(|_| MetricDataError {
                    query: Some(i),
                    field: "Period",
                    rule: "period",
                    pos: None,
                    message: format!("must be positive, or 0 for the metrics' period (got {p})"),
                })?),
            };
            Ok(DataQuery {
                id: q.id,
                source,
                label: Some(q.label).filter(|l| !l.is_empty()),
                return_data: q.return_data.unwrap_or(true),
                period_seconds,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let max_datapoints = match r.max_datapoints {
        0 => None,
        n => Some(u32::try_from(n).map_err(|_| MetricDataError {
            query: None,
            field: "MaxDatapoints",
            rule: "limit",
            pos: None,
            message: format!(
                "must be 1 to {}, or 0 for the most (got {n})",
                md::MAX_DATAPOINTS
            ),
        })?),
    };
    Ok(md::MetricDataRequest {
        queries,
        start: Timestamp::from_millis(r.start_time_ms),
        end: Timestamp::from_millis(r.end_time_ms),
        scan_by: if r.scan_by == pb::ScanBy::TimestampAscending as i32 {
            md::ScanBy::TimestampAscending
        } else {
            md::ScanBy::TimestampDescending
        },
        max_datapoints,
        next_token: Some(r.next_token).filter(|t| !t.is_empty()),
    })
}

/// The shared answer as the native response.
fn metric_data_response(
    answer: thermostat_alarms::math::metric_data::MetricDataResponse,
) -> pb::GetMetricDataResponse {
    use thermostat_alarms::math::metric_data::ResultStatus;
    let messages = |m: Vec<thermostat_alarms::math::metric_data::Message>| {
        m.into_iter()
            .map(|m| pb::MessageData {
                code: m.code,
                value: m.value,
            })
            .collect()
    };
    pb::GetMetricDataResponse {
        metric_data_results: answer
            .results
            .into_iter()
            .map(|r| pb::MetricDataResult {
                id: r.id,
                label: r.label,
                timestamps_ms: r.timestamps.iter().map(|t| t.as_millis()).collect(),
                values: r.values,
                status_code: match r.status {
                    ResultStatus::Complete => pb::MetricDataStatusCode::Complete,
                    ResultStatus::PartialData => pb::MetricDataStatusCode::PartialData,
                } as i32,
                messages: messages(r.messages),
            })
            .collect(),
        next_token: answer.next_token.unwrap_or_default(),
        messages: messages(answer.messages),
    }
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<PutMetricDataResponse, Status>> + Send>>;

/// The requests of a stream, ended with DEADLINE_EXCEEDED once the client has sent no message
/// for `timeout` while the server was waiting for one (time spent waiting for the log does not
/// count), so that an idle stream gives its `--max-streams` slot back.
struct IdleTimeout<S> {
    inner: S,
    timeout: std::time::Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    waiting: bool,
    done: bool,
}

impl<S> IdleTimeout<S> {
    fn new(inner: S, timeout: std::time::Duration) -> Self {
        IdleTimeout {
            inner,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            waiting: false,
            done: false,
        }
    }
}

impl<S, T> Stream for IdleTimeout<S>
where
    S: Stream<Item = Result<T, Status>> + Unpin,
{
    type Item = Result<T, Status>;

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(item) => {
                this.waiting = false;
                this.done = item.is_none();
                Poll::Ready(item)
            }
            Poll::Pending => {
                if !this.waiting {
                    this.waiting = true;
                    let deadline = tokio::time::Instant::now() + this.timeout;
                    this.sleep.as_mut().reset(deadline);
                }
                match this.sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.done = true;
                        Poll::Ready(Some(Err(Error::StreamIdle(this.timeout).into())))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

#[tonic::async_trait]
impl MetricsService for MetricsApi {
    async fn put_metric_data(
        &self,
        request: Request<RawPutMetricDataRequest>,
    ) -> Result<Response<PutMetricDataResponse>, Status> {
        let principal = self.principal(&request, Permission::PushMetrics)?;
        let Ok(_permit) = self.in_flight.try_acquire() else {
            return Err(self.counted(Err(Error::Overloaded(Overload::RequestsInFlight)))?);
        };
        let (pending, samples) = self.counted(self.admit(&principal, request.into_inner()))?;
        self.counted(self.settle(pending, samples).await)
            .map(Response::new)
    }

    type StreamMetricDataStream = ResponseStream;

    async fn stream_metric_data(
        &self,
        request: Request<Streaming<RawPutMetricDataRequest>>,
    ) -> Result<Response<Self::StreamMetricDataStream>, Status> {
        let principal = self.principal(&request, Permission::PushMetrics)?;
        let Ok(permit) = Arc::clone(&self.streams).try_acquire_owned() else {
            return Err(self.counted(Err(Error::Overloaded(Overload::OpenStreams)))?);
        };
        let api = self.clone();
        let stopping = self.stopping.clone();
        let mut index = 0usize;
        let mut failed = false;
        // Requests are admitted (validated and queued for the log) one after another as they
        // arrive, and answered in order once durable, with up to STREAM_PIPELINE in flight.
        // Once one fails, nothing after it is admitted: the stream ends with that status, and
        // a request the client did not get an answer for was not stored.
        let requests = IdleTimeout::new(request.into_inner(), self.limits.stream_idle_timeout);
        let admitted = requests.take_until(stopping.cancelled_owned()).map(move |item| {
            let _hold = &permit;
            let i = index;
            index += 1;
            let tag = |s: Status| Status::new(s.code(), format!("request {i} of the stream: {}", s.message()));
            let result = match item {
                _ if failed => Err(tag(Error::AfterEarlierFailure.into())),
                Ok(req) => api.counted(api.admit(&principal, req)).map_err(tag),
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
        let principal = self.principal(&request, Permission::ReadMetrics)?;
        let r = request.into_inner();
        self.in_scope(&principal, &r.namespace)?;
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
        let field_of = |e: thermostat_metrics::QueryError| {
            if e.is_unavailable() {
                return Error::Unavailable(e.rule).into();
            }
            let field = match e.field {
                "start_time" => "start_time_ms",
                "end_time" => "end_time_ms",
                f => f,
            };
            invalid(ValidationError::new(field, e.rule))
        };
        let now = self.clock.now();
        let plan = query.plan(now).map_err(field_of)?;
        // The query runs on a blocking thread once the shared gate gives it a turn, so that
        // no query holds an async worker that pushes need.
        let admission = self.queries.admit(plan.cost).map_err(|e| match e {
            QueryRefused::TooCostly { .. } => {
                invalid(ValidationError::new("period_seconds", e.to_string()))
            }
            QueryRefused::Busy { .. } => Error::QueriesBusy(e).into(),
        })?;
        let store = Arc::clone(&self.store);
        let (points, query) = tokio::task::spawn_blocking(move || {
            admission.run(|| (store.query(&query, now), query))
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "A statistics query failed.");
            Error::Internal {
                what: "internal error",
                source: e,
            }
        })?;
        let points = points.map_err(field_of)?;
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
        Ok(self.answer(GetMetricStatisticsResponse { datapoints }))
    }

    async fn get_metric_data(
        &self,
        request: Request<pb::GetMetricDataRequest>,
    ) -> Result<Response<pb::GetMetricDataResponse>, Status> {
        use thermostat_alarms::math::metric_data::{self as md, MetricSource as _};
        let principal = self.principal(&request, Permission::ReadMetrics)?;
        let request =
            metric_data_request(request.into_inner()).map_err(|e| invalid_metric_data(&[e]))?;
        let prepared = md::prepare(request).map_err(|e| invalid_metric_data(&e))?;
        for f in prepared.fetches() {
            self.in_scope(&principal, &f.stat.metric.namespace)?;
        }
        // Every statistic query is planned (checked, costed) before any runs; the request
        // passes the shared gate once, for their summed cost, and runs with its math on a
        // blocking thread.
        let now = self.clock.now();
        let mut cost = 0u64;
        for f in prepared.fetches() {
            let query = f.store_query().map_err(|e| invalid_metric_data(&[e]))?;
            let plan = query
                .plan(now)
                .map_err(|e| invalid_metric_data(&[f.store_error(&e)]))?;
            cost = cost.saturating_add(plan.cost);
        }
        let admission = self.queries.admit(cost).map_err(|e| match e {
            QueryRefused::TooCostly { .. } => {
                invalid(ValidationError::new("metric_data_queries", e.to_string()))
            }
            QueryRefused::Busy { .. } => Error::QueriesBusy(e).into(),
        })?;
        let store = Arc::clone(&self.store);
        let answer = tokio::task::spawn_blocking(move || {
            admission.run(|| {
                let source = md::StoreSource { store: &store, now };
                let fetched = prepared
                    .fetches()
                    .iter()
                    .map(|f| source.fetch(f))
                    .collect::<Result<Vec<_>, _>>()?;
                prepared.answer(fetched, &thermostat_alarms::math::NoBands)
            })
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "A metric data query failed.");
            Error::Internal {
                what: "internal error",
                source: e,
            }
        })?
        .map_err(|e| invalid_metric_data(&[e]))?;
        Ok(self.answer(metric_data_response(answer)))
    }

    async fn list_metrics(
        &self,
        request: Request<ListMetricsRequest>,
    ) -> Result<Response<ListMetricsResponse>, Status> {
        let principal = self.principal(&request, Permission::ReadMetrics)?;
        let r = request.into_inner();
        if !r.namespace.is_empty() {
            self.in_scope(&principal, &r.namespace)?;
        }
        let max_records = match usize::try_from(r.max_records) {
            Ok(0) => LIST_MAX_RECORDS,
            Ok(n @ 1..=LIST_MAX_RECORDS) => n,
            _ => {
                let n = r.max_records;
                return Err(invalid(ValidationError::new(
                    "max_records",
                    format!(
                        "must be 1 to {LIST_MAX_RECORDS}, or 0 for {LIST_MAX_RECORDS} (got {n})"
                    ),
                )));
            }
        };
        let after = match r.next_token.as_str() {
            "" => None,
            t => Some(
                ListCursor::from_token(t)
                    .map_err(|e| invalid(ValidationError::new("next_token", e.to_string())))?,
            ),
        };
        let store = Arc::clone(&self.store);
        let now = self.clock.now();
        // A page reads every series: off the async workers.
        let active_since = match r.active_within_seconds {
            0 => None,
            s if s > 0 => Some(now.sub_millis(s.saturating_mul(1000))),
            _ => {
                return Err(invalid(ValidationError::new(
                    "active_within_seconds",
                    "must be 0 (no filter) or a positive number of seconds".to_owned(),
                )));
            }
        };
        let (namespace, metric_name) = (r.namespace, r.metric_name);
        let page = tokio::task::spawn_blocking(move || {
            let filter = ListFilter {
                namespace: Some(namespace.as_str()).filter(|s| !s.is_empty()),
                metric_name: Some(metric_name.as_str()).filter(|s| !s.is_empty()),
                active_since,
            };
            store.list_page(filter, now, after.as_ref(), max_records, LIST_MAX_BYTES)
        });
        let page = page.await.map_err(|e| Error::Internal {
            what: "listing the series failed",
            source: e,
        })?;
        // A token limited to some namespaces sees only their series (a page may then hold
        // fewer than `max_records`; `next_token` still leads on).
        let metrics = page
            .keys
            .into_iter()
            .filter(|k| principal.may_use_namespace(k.namespace()))
            .map(|k| pb::Metric {
                namespace: k.namespace().to_owned(),
                metric_name: k.metric_name().to_owned(),
                dimensions: k
                    .dimensions()
                    .iter()
                    .map(|d| pb::Dimension {
                        name: d.name.to_owned(),
                        value: d.value.to_owned(),
                    })
                    .collect(),
            })
            .collect();
        Ok(self.answer(ListMetricsResponse {
            metrics,
            next_token: page.next.map(|c| c.to_token()).unwrap_or_default(),
        }))
    }
}
