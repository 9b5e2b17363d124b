//! `GetMetricData` (issue 22): CloudWatch's request shape (`MetricDataQueries` of `MetricStat`
//! and `Expression` queries, `StartTime`, `EndTime`, `ScanBy`, `MaxDatapoints`, `NextToken`)
//! answered with metric math, in CloudWatch's response shape. One implementation for the three
//! ports that serve it: the native gRPC `GetMetricData`, `POST /api/v1/metric-data` and
//! CloudWatch's own `GetMetricData`.
//!
//! The work is split so that the IO stays with the caller:
//! 1. [`prepare`] checks the request (every problem at once, each naming the query as
//!    CloudWatch does: `MetricDataQueries.member.2.Expression: 1:7: syntax: …`) and lists the
//!    statistic series to read ([`Prepared::fetches`]);
//! 2. the caller reads them, synchronously or not (over the store, [`StoreSource`], or over
//!    the native API);
//! 3. [`Prepared::answer`] evaluates the expressions ([`plan_queries`] with
//!    [`Profile::GetMetricData`], [`evaluate_queries`]) and cuts the page.
//!
//! [`get_metric_data`] does all three over a synchronous [`MetricSource`].
//!
//! # Rules
//! - 1 to 500 queries ([`MAX_REQUEST_QUERIES`]); ids and expressions as [`plan_queries`]
//!   checks them; `MaxDatapoints` 1 to 100,800 ([`MAX_DATAPOINTS`], also the default).
//! - Only `ReturnData` queries are returned. An expression giving an array returns one
//!   result per series, all with the query's id, labelled as [`evaluate_queries`] labels
//!   them. A `MetricStat` query without a `Label` is labelled with its metric name (as
//!   CloudWatch); an expression without one with its id.
//! - A scalar result (`AVG(m1)`) is returned as a series with that value at every period of
//!   `[StartTime, EndTime)` (as CloudWatch draws it), at most [`MAX_DATAPOINTS`] of them.
//! - Every query of a request with an expression shares one period (the `MetricStat`
//!   queries' `Period` and any expression's `Period` must agree; a deviation from
//!   CloudWatch, which resamples). A request without expressions may mix periods.
//! - `ANOMALY_DETECTION_BAND(mX, k)` of a `MetricStat` query `mX` is computed as CloudWatch
//!   does, from a model trained on demand on that metric's stored history: [`prepare`] adds
//!   **history fetches** ([`FetchPurpose::History`]) of the same metric and statistic at
//!   the query's period (at least 60 s) over the 14 days before `EndTime`
//!   ([`TRAINING_WINDOW_MS`]), in slices of at most 1,440 periods (the store's limit per
//!   query); [`Prepared::answer`] trains [`crate::anomaly::train`] with the default
//!   configuration at `EndTime` and evaluates the band at `mX`'s timestamps. The band is two
//!   results with the query's id, labelled `upper` and `lower` (after the query's label when
//!   it has one). A model that has not seen enough data (`PENDING_TRAINING`) gives both
//!   empty, `Complete`, with a message (`Code` [`PENDING_TRAINING_CODE`], `Value` the
//!   model's [`crate::anomaly::Model::insufficient_data_reason`]). At most
//!   [`MAX_BAND_MODELS`] distinct queries may be banded in one request. A band of an
//!   expression's id asks the [`Bands`] port passed to [`Prepared::answer`] instead (the
//!   ports pass [`super::NoBands`]: an error saying so).
//! - Paging: a page holds at most `MaxDatapoints` datapoints of the returned results
//!   concatenated in request order, each result's points in `ScanBy` order; a result that
//!   goes on past the page is `PartialData`, and `NextToken` leads on. A token is good only
//!   for the request that got it (same queries and times). Every page evaluates the whole
//!   request again: nothing is kept between calls.
//! - Work is bounded by the query count, the math cost budget ([`DEFAULT_MAX_COST`] unless
//!   given), the number of banded queries ([`MAX_BAND_MODELS`], each reading 14 days of
//!   history: 20,160 datapoints at 60 s) and the store's own limits on each statistic query
//!   (1,440 datapoints, the query gate's cost, counted for the histories too), which the
//!   callers apply.

use std::fmt;

use thermostat_metrics::{Dimension, Period, Query, SeriesKey, Statistic, Store, Timestamp, Unit};

use super::{
    Bands, DEFAULT_MAX_COST, Func, MAX_REQUEST_QUERIES, MetricQuery, Node, Pos, Profile,
    QueryError, QueryPlan, QuerySource, Series, Value, evaluate_queries, parse, plan_queries,
};
use crate::anomaly::{AnomalyConfig, Model, TRAINING_WINDOW_MS, train};

/// `(time, value)` points of one series.
pub type Points = Vec<(Timestamp, f64)>;

/// Most datapoints in one answer, and the default `MaxDatapoints` (CloudWatch's, §2.5).
pub const MAX_DATAPOINTS: u32 = 100_800;
/// Most dimensions of a metric (CloudWatch's).
pub const MAX_DIMENSIONS: usize = 30;
/// Most distinct queries one request may band with `ANOMALY_DETECTION_BAND`. Each model
/// reads 14 days of history (20,160 datapoints at 60 s), so five read 100,800: half the
/// default query cost limit (`--max-query-cost`, 200,000), leaving the rest for the
/// request's own queries.
pub const MAX_BAND_MODELS: usize = 5;
/// `Code` of the message on a band whose model has not seen enough data.
pub const PENDING_TRAINING_CODE: &str = "PendingTraining";
/// Shortest period a model trains at (the store keeps 1-minute data for 15 days).
const TRAINING_PERIOD_MIN_SECS: u32 = 60;
/// Most periods in one history fetch (the store's datapoints per query).
const HISTORY_SLICE_PERIODS: i64 = 1440;

/// A metric (`Metric`): namespace, name and dimensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metric {
    /// `Namespace`.
    pub namespace: String,
    /// `MetricName`.
    pub metric_name: String,
    /// `Dimensions`.
    pub dimensions: Vec<Dimension>,
}

/// `MetricStat`: a metric, period, statistic and unit.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricStat {
    /// `Metric`.
    pub metric: Metric,
    /// `Period`, in seconds.
    pub period_seconds: u32,
    /// `Stat`.
    pub stat: Statistic,
    /// `Unit`: only data stored with this unit.
    pub unit: Option<Unit>,
}

impl MetricStat {
    /// A `MetricStat` from the text of its fields (the native and JSON APIs), each checked
    /// and named as query `index`'s (0-based) field.
    ///
    /// # Errors
    /// An unknown statistic or unit, a period the store does not have, more than 30
    /// dimensions, an empty namespace or metric name.
    pub fn parse(
        index: usize,
        metric: Metric,
        period_seconds: i64,
        stat: &str,
        unit: &str,
    ) -> Result<Self, MetricDataError> {
        let error = |field, rule, message: String| MetricDataError {
            query: Some(index),
            field,
            rule,
            pos: None,
            message,
        };
        if metric.namespace.is_empty() {
            return Err(error(
                "MetricStat.Metric.Namespace",
                "required",
                "is required".into(),
            ));
        }
        if metric.metric_name.is_empty() {
            return Err(error(
                "MetricStat.Metric.MetricName",
                "required",
                "is required".into(),
            ));
        }
        if metric.dimensions.len() > MAX_DIMENSIONS {
            return Err(error(
                "MetricStat.Metric.Dimensions",
                "limit",
                format!(
                    "at most {MAX_DIMENSIONS} dimensions (got {})",
                    metric.dimensions.len()
                ),
            ));
        }
        let period = Period::try_from_secs(period_seconds).map_err(|rule| {
            error(
                "MetricStat.Period",
                "period",
                format!("{rule} (got {period_seconds})"),
            )
        })?;
        let stat = stat
            .parse::<Statistic>()
            .map_err(|e| error("MetricStat.Stat", "statistic", e.to_string()))?;
        let unit = match unit {
            "" => None,
            u => Some(
                u.parse::<Unit>()
                    .map_err(|e| error("MetricStat.Unit", "unit", e.to_string()))?,
            ),
        };
        Ok(MetricStat {
            metric,
            period_seconds: period.as_secs(),
            stat,
            unit,
        })
    }
}

/// What a query reads: exactly one of `MetricStat` and `Expression`.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSource {
    /// `MetricStat`: a statistic series the caller reads.
    MetricStat(MetricStat),
    /// `Expression`: metric math over the other queries.
    Expression(String),
}

/// `MetricDataQuery`.
#[derive(Clone, Debug, PartialEq)]
pub struct DataQuery {
    /// `Id`.
    pub id: String,
    /// `MetricStat` or `Expression`.
    pub source: DataSource,
    /// `Label`.
    pub label: Option<String>,
    /// `ReturnData` (CloudWatch's default: true).
    pub return_data: bool,
    /// `Period` of an expression, in seconds.
    pub period_seconds: Option<u32>,
}

/// `ScanBy`: the order of each result's datapoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ScanBy {
    /// `TimestampDescending`, the default: newest first.
    #[default]
    TimestampDescending,
    /// `TimestampAscending`: oldest first.
    TimestampAscending,
}

/// `GetMetricData`'s request.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricDataRequest {
    /// `MetricDataQueries`, 1 to 500.
    pub queries: Vec<DataQuery>,
    /// `StartTime`, inclusive.
    pub start: Timestamp,
    /// `EndTime`, exclusive.
    pub end: Timestamp,
    /// `ScanBy`.
    pub scan_by: ScanBy,
    /// `MaxDatapoints` (`None`: 100,800).
    pub max_datapoints: Option<u32>,
    /// `NextToken`, as sent.
    pub next_token: Option<String>,
}

/// `StatusCode` of a result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResultStatus {
    /// `Complete`.
    #[default]
    Complete,
    /// `PartialData`: more of this result's datapoints follow under `NextToken`.
    PartialData,
}

impl ResultStatus {
    /// CloudWatch's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Complete => "Complete",
            ResultStatus::PartialData => "PartialData",
        }
    }
}

/// A message (`MessageData`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// `Code`.
    pub code: String,
    /// `Value`.
    pub value: String,
}

/// One result (`MetricDataResult`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricDataResult {
    /// `Id`: the query's.
    pub id: String,
    /// `Label`.
    pub label: String,
    /// `Timestamps`, in `ScanBy` order.
    pub timestamps: Vec<Timestamp>,
    /// `Values`, one per timestamp.
    pub values: Vec<f64>,
    /// `StatusCode`.
    pub status: ResultStatus,
    /// `Messages`.
    pub messages: Vec<Message>,
}

/// `GetMetricData`'s answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricDataResponse {
    /// `MetricDataResults`.
    pub results: Vec<MetricDataResult>,
    /// `NextToken`, while more datapoints follow.
    pub next_token: Option<String>,
    /// `Messages`.
    pub messages: Vec<Message>,
}

/// A problem with a request: the query and field at fault, the rule, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct MetricDataError {
    /// The 0-based index of the query at fault; `None` for a request field.
    pub query: Option<usize>,
    /// CloudWatch's name of the field, under the query when there is one (`Expression`,
    /// `MetricStat.Period`) or of the request (`MaxDatapoints`, `NextToken`,
    /// `MetricDataQueries`).
    pub field: &'static str,
    /// The rule broken (as [`QueryError::rule`], plus `limit`, `next-token`, `statistic`,
    /// `unit`, `required`, `time`, and the store's `query`).
    pub rule: &'static str,
    /// Where in the expression, for an expression error.
    pub pos: Option<Pos>,
    /// What is wrong.
    pub message: String,
}

impl MetricDataError {
    fn request(field: &'static str, rule: &'static str, message: impl Into<String>) -> Self {
        MetricDataError {
            query: None,
            field,
            rule,
            pos: None,
            message: message.into(),
        }
    }

    /// The field as CloudWatch names it: `MetricDataQueries.member.3.Expression` (1-based).
    pub fn path(&self) -> String {
        match self.query {
            Some(i) => format!("MetricDataQueries.member.{}.{}", i + 1, self.field),
            None => self.field.to_owned(),
        }
    }

    /// The field as the native API names it: `metric_data_queries[2].expression`
    /// (0-based, snake_case).
    pub fn snake_path(&self) -> String {
        let snake = |s: &str| {
            s.split('.')
                .map(|part| {
                    let mut out = String::new();
                    for (i, c) in part.chars().enumerate() {
                        if c.is_ascii_uppercase() {
                            if i > 0 {
                                out.push('_');
                            }
                            out.push(c.to_ascii_lowercase());
                        } else {
                            out.push(c);
                        }
                    }
                    out
                })
                .collect::<Vec<_>>()
                .join(".")
        };
        match self.query {
            Some(i) => format!("metric_data_queries[{i}].{}", snake(self.field)),
            None => snake(self.field),
        }
    }

    /// What is wrong without the field: `1:7: syntax: …`.
    pub fn detail(&self) -> String {
        match self.pos {
            Some(p) => format!("{}:{}: {}: {}", p.line, p.column, self.rule, self.message),
            None => format!("{}: {}", self.rule, self.message),
        }
    }

    fn of_query(e: QueryError, fields: &[&'static str]) -> Self {
        let field = match e.field {
            "expression" => "Expression",
            "id" => "Id",
            "return_data" => "ReturnData",
            "period_seconds" => fields.get(e.index).copied().unwrap_or("Period"),
            _ => "MetricDataQueries",
        };
        MetricDataError {
            query: (field != "MetricDataQueries").then_some(e.index),
            field,
            rule: e.rule,
            pos: e.pos,
            message: e.message,
        }
    }
}

impl fmt::Display for MetricDataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path(), self.detail())
    }
}

/// Why a series is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FetchPurpose {
    /// The query's data over the request's range.
    #[default]
    Data,
    /// A slice of the history an anomaly model of the query trains on.
    History,
}

/// A statistic series the caller reads: query `index`'s `MetricStat` over `[start, end)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Fetch {
    /// The 0-based index of the query.
    pub index: usize,
    /// The query's id.
    pub id: String,
    /// What to read (for a history, the query's `MetricStat` at the training period).
    pub stat: MetricStat,
    /// `StartTime` (or the slice's start).
    pub start: Timestamp,
    /// `EndTime` (or the slice's end).
    pub end: Timestamp,
    /// Whether this is the query's data or a slice of its training history.
    pub purpose: FetchPurpose,
}

impl Fetch {
    /// The store query of this fetch.
    ///
    /// # Errors
    /// A period the store does not have.
    pub fn store_query(&self) -> Result<Query, MetricDataError> {
        let m = &self.stat.metric;
        let period = Period::try_from_secs(self.stat.period_seconds.into()).map_err(|rule| {
            MetricDataError {
                query: Some(self.index),
                field: "MetricStat.Period",
                rule: "period",
                pos: None,
                message: format!("{rule} (got {})", self.stat.period_seconds),
            }
        })?;
        Ok(Query {
            key: SeriesKey::new(
                m.namespace.as_str(),
                m.metric_name.as_str(),
                m.dimensions.clone(),
            ),
            unit: self.stat.unit,
            start: self.start,
            end: self.end,
            period,
            statistics: vec![self.stat.stat.clone()],
        })
    }

    /// A store refusal of this fetch, named as the query's field.
    pub fn store_error(&self, e: &thermostat_metrics::QueryError) -> MetricDataError {
        let field = match e.field {
            "start_time" => {
                return MetricDataError::request("StartTime", "time", e.rule.clone());
            }
            "end_time" => return MetricDataError::request("EndTime", "time", e.rule.clone()),
            "statistics" => "MetricStat.Stat",
            "unit" => "MetricStat.Unit",
            _ => "MetricStat.Period",
        };
        MetricDataError {
            query: Some(self.index),
            field,
            rule: "query",
            pos: None,
            message: e.rule.clone(),
        }
    }
}

/// The port a synchronous caller reads statistic series through.
pub trait MetricSource {
    /// The `(time, value)` points of `fetch`, in any order.
    ///
    /// # Errors
    /// The source refuses the read (a store limit, a namespace outside the caller's).
    fn fetch(&self, fetch: &Fetch) -> Result<Vec<(Timestamp, f64)>, MetricDataError>;
}

/// [`MetricSource`] over the store at `now`.
#[derive(Debug)]
pub struct StoreSource<'a> {
    /// The store.
    pub store: &'a Store,
    /// The time the store's rounding and retention are relative to.
    pub now: Timestamp,
}

impl MetricSource for StoreSource<'_> {
    fn fetch(&self, fetch: &Fetch) -> Result<Vec<(Timestamp, f64)>, MetricDataError> {
        let points = self
            .store
            .query(&fetch.store_query()?, self.now)
            .map_err(|e| fetch.store_error(&e))?;
        Ok(points
            .into_iter()
            .filter_map(|d| {
                d.values
                    .first()
                    .copied()
                    .flatten()
                    .map(|v| (d.timestamp, v))
            })
            .collect())
    }
}

/// Where the next page starts: `offset` datapoints into the concatenated results of the
/// request whose fingerprint is `request`.
#[derive(Debug, PartialEq, Eq)]
struct Cursor {
    offset: usize,
    request: u64,
}

impl Cursor {
    const PREFIX: &'static str = "gmd1.";

    fn token(&self) -> String {
        format!("{}{}.{:016x}", Self::PREFIX, self.offset, self.request)
    }

    fn parse(token: &str) -> Option<Self> {
        let (offset, request) = token.strip_prefix(Self::PREFIX)?.split_once('.')?;
        Some(Cursor {
            offset: offset.parse().ok()?,
            request: u64::from_str_radix(request, 16).ok()?,
        })
    }
}

/// The fingerprint of a request without its paging fields.
fn fingerprint(request: &MetricDataRequest) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    // `DefaultHasher::new()` has fixed keys: the same request hashes the same across calls.
    let mut h = std::hash::DefaultHasher::new();
    format!(
        "{:?}|{:?}|{:?}|{:?}",
        request.queries, request.start, request.end, request.scan_by
    )
    .hash(&mut h);
    h.finish()
}

/// A checked request: its plan and the series to read.
#[derive(Debug)]
pub struct Prepared {
    plan: QueryPlan,
    fetches: Vec<Fetch>,
    start: Timestamp,
    end: Timestamp,
    period_ms: i64,
    scan_by: ScanBy,
    max_datapoints: usize,
    offset: usize,
    fingerprint: u64,
    max_cost: u64,
    /// For each query, the ids its `ANOMALY_DETECTION_BAND` calls band.
    band_args: Vec<Vec<String>>,
    /// When the on-demand models are trained: `EndTime`.
    training_now: Timestamp,
}

/// The ids `ANOMALY_DETECTION_BAND` calls band in `e`, anywhere in it, each once.
fn band_ids(e: &super::Expr, out: &mut Vec<String>) {
    match &e.node {
        Node::Call(f, args) => {
            if *f == Func::AnomalyDetectionBand
                && let Some(Node::Id(id)) = args.first().map(|a| &a.node)
                && !out.contains(id)
            {
                out.push(id.clone());
            }
            for a in args {
                band_ids(a, out);
            }
        }
        Node::Array(items) => {
            for a in items {
                band_ids(a, out);
            }
        }
        Node::Neg(a) => band_ids(a, out),
        Node::Binary(_, a, b) => {
            band_ids(a, out);
            band_ids(b, out);
        }
        Node::Number(_) | Node::Text(_) | Node::Id(_) | Node::Keyword(_) => {}
    }
}

/// The slices of the history a model of `stat` trains on at `end`: the same metric and
/// statistic at the query's period (at least 60 s) over the 14 days before `end`, each at
/// most [`HISTORY_SLICE_PERIODS`] periods.
fn history_fetches(index: usize, id: &str, stat: &MetricStat, end: Timestamp) -> Vec<Fetch> {
    let period_seconds = stat.period_seconds.max(TRAINING_PERIOD_MIN_SECS);
    let p = i64::from(period_seconds) * 1000;
    let to = end.floor_to(60_000);
    let earliest = Timestamp::EARLIEST.add_millis(p - 1).floor_to(p);
    let from = to.sub_millis(TRAINING_WINDOW_MS).floor_to(p).max(earliest);
    let stat = MetricStat {
        period_seconds,
        ..stat.clone()
    };
    let mut out = Vec::new();
    let mut start = from;
    while start < to {
        let end = Timestamp::from_millis(
            start
                .as_millis()
                .saturating_add(HISTORY_SLICE_PERIODS * p)
                .min(to.as_millis()),
        );
        out.push(Fetch {
            index,
            id: id.to_owned(),
            stat: stat.clone(),
            start,
            end,
            purpose: FetchPurpose::History,
        });
        start = end;
    }
    out
}

/// Checks a request and lists the series it reads.
///
/// # Errors
/// Every problem found: the query count, ids, expressions (with positions), references,
/// cycles, periods, `MaxDatapoints`, the time range, a `NextToken` not issued for this
/// request.
pub fn prepare(request: MetricDataRequest) -> Result<Prepared, Vec<MetricDataError>> {
    let count = request.queries.len();
    if count == 0 || count > MAX_REQUEST_QUERIES {
        return Err(vec![MetricDataError::request(
            "MetricDataQueries",
            "count",
            format!("must hold 1 to {MAX_REQUEST_QUERIES} queries (got {count})"),
        )]);
    }
    let mut errors = Vec::new();
    let print = fingerprint(&request);
    let offset = match &request.next_token {
        None => 0,
        Some(t) => match Cursor::parse(t) {
            Some(c) if c.request == print => c.offset,
            _ => {
                errors.push(MetricDataError::request(
                    "NextToken",
                    "next-token",
                    "is not one this server issued for this request: send it with the same \
                     queries and times as the call that returned it",
                ));
                0
            }
        },
    };
    let max_datapoints = match request.max_datapoints {
        None => MAX_DATAPOINTS,
        Some(n) if (1..=MAX_DATAPOINTS).contains(&n) => n,
        Some(n) => {
            errors.push(MetricDataError::request(
                "MaxDatapoints",
                "limit",
                format!("must be 1 to {MAX_DATAPOINTS} (got {n})"),
            ));
            MAX_DATAPOINTS
        }
    };
    for (field, t) in [("StartTime", request.start), ("EndTime", request.end)] {
        if let Err(e) = Timestamp::try_from_millis(t.as_millis()) {
            errors.push(MetricDataError::request(
                field,
                "time",
                format!("{e} (got {} ms)", t.as_millis()),
            ));
        }
    }
    if request.end <= request.start {
        errors.push(MetricDataError::request(
            "EndTime",
            "time",
            "must be after StartTime",
        ));
    }
    let has_expression = request
        .queries
        .iter()
        .any(|q| matches!(q.source, DataSource::Expression(_)));
    // The shared period of a request with expressions.
    let mut period: Option<(usize, u32)> = None;
    if has_expression {
        for (i, q) in request.queries.iter().enumerate() {
            let (p, field) = match &q.source {
                DataSource::MetricStat(s) => (Some(s.period_seconds), "MetricStat.Period"),
                DataSource::Expression(_) => (q.period_seconds, "Period"),
            };
            let Some(p) = p else { continue };
            match period {
                None => period = Some((i, p)),
                Some((first, fp)) if fp != p => errors.push(MetricDataError {
                    query: Some(i),
                    field,
                    rule: "period",
                    pos: None,
                    message: format!(
                        "every query of a request with expressions must have the same period \
                         here (MetricDataQueries.member.{} has {fp} s, this one {p} s)",
                        first + 1
                    ),
                }),
                Some(_) => {}
            }
        }
    }
    let period_seconds = period.map_or_else(
        || {
            request
                .queries
                .iter()
                .find_map(|q| match &q.source {
                    DataSource::MetricStat(s) => Some(s.period_seconds),
                    DataSource::Expression(_) => None,
                })
                .unwrap_or(60)
        },
        |(_, p)| p,
    );
    let period_fields: Vec<&'static str> = request
        .queries
        .iter()
        .map(|q| match q.source {
            DataSource::MetricStat(_) => "MetricStat.Period",
            DataSource::Expression(_) => "Period",
        })
        .collect();
    let queries: Vec<MetricQuery> = request
        .queries
        .iter()
        .map(|q| match &q.source {
            DataSource::MetricStat(s) => MetricQuery {
                id: q.id.clone(),
                source: QuerySource::MetricStat,
                label: Some(
                    q.label
                        .clone()
                        .unwrap_or_else(|| s.metric.metric_name.clone()),
                ),
                return_data: q.return_data,
                period_seconds: Some(s.period_seconds.into()),
            },
            DataSource::Expression(e) => MetricQuery {
                id: q.id.clone(),
                source: QuerySource::Expression(e.clone()),
                label: q.label.clone(),
                return_data: q.return_data,
                period_seconds: q.period_seconds.map(i64::from),
            },
        })
        .collect();
    let plan = match plan_queries(queries, Profile::GetMetricData) {
        Ok(plan) => Some(plan),
        Err(es) => {
            errors.extend(
                es.into_iter()
                    .map(|e| MetricDataError::of_query(e, &period_fields)),
            );
            None
        }
    };
    // The queries banded by `ANOMALY_DETECTION_BAND`: each `MetricStat` one gets a model.
    let band_args: Vec<Vec<String>> = request
        .queries
        .iter()
        .map(|q| {
            let mut ids = Vec::new();
            if let DataSource::Expression(e) = &q.source
                && let Ok(e) = parse(e)
            {
                band_ids(&e, &mut ids);
            }
            ids
        })
        .collect();
    let mut banded: Vec<(usize, String)> = Vec::new();
    for (i, ids) in band_args.iter().enumerate() {
        for id in ids {
            let Some(target) = request.queries.iter().position(|q| &q.id == id) else {
                continue;
            };
            if !matches!(request.queries[target].source, DataSource::MetricStat(_))
                || banded.iter().any(|(t, _)| *t == target)
            {
                continue;
            }
            if banded.len() == MAX_BAND_MODELS {
                errors.push(MetricDataError {
                    query: Some(i),
                    field: "Expression",
                    rule: "limit",
                    pos: None,
                    message: format!(
                        "ANOMALY_DETECTION_BAND: at most {MAX_BAND_MODELS} queries may be \
                         banded in one request (each trains a model on 14 days of history); \
                         `{id}` would be the {}th",
                        MAX_BAND_MODELS + 1
                    ),
                });
                break;
            }
            banded.push((target, id.clone()));
        }
    }
    let Some(plan) = plan.filter(|_| errors.is_empty()) else {
        errors.sort_by_key(|e| e.query.map_or(0, |q| q + 1));
        return Err(errors);
    };
    let histories: Vec<Fetch> = banded
        .iter()
        .flat_map(|(target, id)| match &request.queries[*target].source {
            DataSource::MetricStat(stat) => history_fetches(*target, id, stat, request.end),
            DataSource::Expression(_) => Vec::new(),
        })
        .collect();
    // Without expressions only the returned series are read.
    let fetches = request
        .queries
        .into_iter()
        .enumerate()
        .filter(|(_, q)| has_expression || q.return_data)
        .filter_map(|(index, q)| match q.source {
            DataSource::MetricStat(stat) => Some(Fetch {
                index,
                id: q.id,
                stat,
                start: request.start,
                end: request.end,
                purpose: FetchPurpose::Data,
            }),
            DataSource::Expression(_) => None,
        })
        .chain(histories)
        .collect();
    let period_ms = i64::from(period_seconds) * 1000;
    Ok(Prepared {
        plan,
        fetches,
        start: request.start.floor_to(period_ms),
        end: request.end,
        period_ms,
        scan_by: request.scan_by,
        max_datapoints: max_datapoints as usize,
        offset,
        fingerprint: print,
        max_cost: DEFAULT_MAX_COST,
        band_args,
        training_now: request.end,
    })
}

impl Prepared {
    /// The statistic series to read: the queries' data in request order, then the slices of
    /// the histories the anomaly models train on ([`FetchPurpose::History`]).
    pub fn fetches(&self) -> &[Fetch] {
        &self.fetches
    }

    /// The same request with another math budget (see [`super::Context::max_cost`]).
    #[must_use]
    pub fn with_max_cost(mut self, max_cost: u64) -> Self {
        self.max_cost = max_cost;
        self
    }

    /// Evaluates the request over the series read (`fetched[i]` for `fetches()[i]`) and cuts
    /// the page. The anomaly models of the banded `MetricStat` queries are trained here from
    /// their histories; `bands` serves the bands of any other id (an expression's).
    ///
    /// # Errors
    /// An expression that fails to evaluate (named with its query and position), a scalar
    /// result over more than [`MAX_DATAPOINTS`] periods, a `NextToken` past the end.
    pub fn answer(
        self,
        fetched: Vec<Vec<(Timestamp, f64)>>,
        bands: &dyn Bands,
    ) -> Result<MetricDataResponse, MetricDataError> {
        let mut by_id: std::collections::HashMap<&str, Vec<(Timestamp, f64)>> =
            std::collections::HashMap::new();
        let mut history: std::collections::BTreeMap<&str, Vec<(Timestamp, f64)>> =
            std::collections::BTreeMap::new();
        for (f, points) in self.fetches.iter().zip(fetched) {
            match f.purpose {
                FetchPurpose::Data => {
                    by_id.insert(f.id.as_str(), points);
                }
                FetchPurpose::History => history.entry(f.id.as_str()).or_default().extend(points),
            }
        }
        let config = AnomalyConfig::default();
        let trained = TrainedBands {
            models: history
                .into_iter()
                .map(|(id, points)| (id.to_owned(), train(&points, &config, self.training_now)))
                .collect(),
            fallback: bands,
        };
        let bands: &dyn Bands = &trained;
        let data = |id: &str| by_id.get(id).map(|p| Series::new(id, p.clone()));
        let period_fields: Vec<&'static str> = self
            .plan
            .queries()
            .iter()
            .map(|q| match q.source {
                QuerySource::MetricStat => "MetricStat.Period",
                QuerySource::Expression(_) => "Period",
            })
            .collect();
        let values = evaluate_queries(
            &self.plan,
            &data,
            bands,
            self.start,
            self.end,
            self.period_ms,
            self.max_cost,
        )
        .map_err(|e| MetricDataError::of_query(e, &period_fields))?;
        by_id.clear();
        // Each returned query's series, in request order.
        // (id, label, points, messages) of each series answered.
        let mut all: Vec<(String, String, Points, Vec<Message>)> = Vec::new();
        for (index, r) in values.into_iter().enumerate() {
            if !r.return_data {
                continue;
            }
            let notes = trained.messages(self.band_args.get(index).map_or(&[], Vec::as_slice));
            match r.value {
                Value::Series(s) => all.push((r.id, s.label, s.points, notes)),
                Value::Array(a) => {
                    for s in a {
                        all.push((r.id.clone(), s.label, s.points, notes.clone()));
                    }
                }
                Value::Scalar(v) => {
                    let span = self.end.as_millis().saturating_sub(self.start.as_millis());
                    let periods = span
                        .div_euclid(self.period_ms)
                        .saturating_add(i64::from(span.rem_euclid(self.period_ms) != 0));
                    if periods > i64::from(MAX_DATAPOINTS) {
                        return Err(MetricDataError {
                            query: Some(index),
                            field: "Expression",
                            rule: "limit",
                            pos: None,
                            message: format!(
                                "a scalar is returned as a value at every period, and the \
                                 range holds {periods} periods (at most {MAX_DATAPOINTS})"
                            ),
                        });
                    }
                    let points = if v.is_finite() {
                        (0..periods)
                            .map(|k| (self.start.add_millis(k * self.period_ms), v))
                            .collect()
                    } else {
                        Vec::new()
                    };
                    all.push((r.id, r.label, points, notes));
                }
            }
        }
        if self.scan_by == ScanBy::TimestampDescending {
            for (_, _, points, _) in &mut all {
                points.reverse();
            }
        }
        let total: usize = all.iter().map(|(_, _, p, _)| p.len()).sum();
        if self.offset > total {
            return Err(MetricDataError::request(
                "NextToken",
                "next-token",
                "points past the end of the results",
            ));
        }
        // The page is datapoints [offset, offset + max) of the concatenated results.
        let end = self.offset.saturating_add(self.max_datapoints).min(total);
        let mut start_of = 0usize;
        let mut results = Vec::with_capacity(all.len());
        for (id, label, points, messages) in all {
            let len = points.len();
            let from = self.offset.clamp(start_of, start_of + len) - start_of;
            let to = end.clamp(start_of, start_of + len) - start_of;
            start_of += len;
            let (timestamps, values) = points[from..to].iter().copied().unzip();
            results.push(MetricDataResult {
                id,
                label,
                timestamps,
                values,
                status: if to < len {
                    ResultStatus::PartialData
                } else {
                    ResultStatus::Complete
                },
                messages,
            });
        }
        Ok(MetricDataResponse {
            results,
            next_token: (end < total).then(|| {
                Cursor {
                    offset: end,
                    request: self.fingerprint,
                }
                .token()
            }),
            messages: Vec::new(),
        })
    }
}

/// The bands of one answer: the models trained on demand, by banded query id, and the
/// caller's port for any other id.
struct TrainedBands<'a> {
    models: std::collections::BTreeMap<String, Model>,
    fallback: &'a dyn Bands,
}

impl TrainedBands<'_> {
    /// The messages of a result whose expression bands `ids`: one per model still pending.
    fn messages(&self, ids: &[String]) -> Vec<Message> {
        ids.iter()
            .filter_map(|id| self.models.get(id)?.insufficient_data_reason())
            .map(|why| Message {
                code: PENDING_TRAINING_CODE.to_owned(),
                value: why,
            })
            .collect()
    }
}

impl Bands for TrainedBands<'_> {
    fn band(&self, id: &str, series: &Series, k: f64) -> Result<(Series, Series), String> {
        let Some(model) = self.models.get(id) else {
            return self.fallback.band(id, series, k).map_err(|e| {
                format!("{e} (GetMetricData trains models for MetricStat queries only)")
            });
        };
        let (lower, upper): (Points, Points) = series
            .points
            .iter()
            .filter_map(|&(t, _)| model.band(t, k).map(|(lo, hi)| ((t, lo), (t, hi))))
            .unzip();
        Ok((Series::new("lower", lower), Series::new("upper", upper)))
    }
}

/// Answers a request over a synchronous source: [`prepare`], read every series,
/// [`Prepared::answer`] (bands of `MetricStat` queries only).
///
/// # Errors
/// As [`prepare`], the source's refusals and [`Prepared::answer`]'s errors.
pub fn get_metric_data(
    request: MetricDataRequest,
    source: &dyn MetricSource,
) -> Result<MetricDataResponse, Vec<MetricDataError>> {
    let prepared = prepare(request)?;
    let fetched = prepared
        .fetches()
        .iter()
        .map(|f| source.fetch(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| vec![e])?;
    prepared
        .answer(fetched, &super::NoBands)
        .map_err(|e| vec![e])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(id: &str, name: &str) -> DataQuery {
        DataQuery {
            id: id.into(),
            source: DataSource::MetricStat(MetricStat {
                metric: Metric {
                    namespace: "App".into(),
                    metric_name: name.into(),
                    dimensions: Vec::new(),
                },
                period_seconds: 60,
                stat: Statistic::Sum,
                unit: None,
            }),
            label: None,
            return_data: false,
            period_seconds: None,
        }
    }

    fn expr(id: &str, e: &str) -> DataQuery {
        DataQuery {
            id: id.into(),
            source: DataSource::Expression(e.into()),
            label: None,
            return_data: true,
            period_seconds: None,
        }
    }

    fn request(queries: Vec<DataQuery>) -> MetricDataRequest {
        MetricDataRequest {
            queries,
            start: Timestamp::from_secs(0),
            end: Timestamp::from_secs(240),
            scan_by: ScanBy::TimestampAscending,
            max_datapoints: None,
            next_token: None,
        }
    }

    /// `errors` 1, 2, 3 and `requests` 10, 10, 20 at minutes 0, 1, 2.
    struct Fixed;

    impl MetricSource for Fixed {
        fn fetch(&self, fetch: &Fetch) -> Result<Vec<(Timestamp, f64)>, MetricDataError> {
            let values: &[f64] = match fetch.stat.metric.metric_name.as_str() {
                "errors" => &[1.0, 2.0, 3.0],
                "requests" => &[10.0, 10.0, 20.0],
                _ => &[],
            };
            Ok(values
                .iter()
                .enumerate()
                .map(|(i, v)| (Timestamp::from_secs(60 * i as i64), *v))
                .collect())
        }
    }

    fn run(r: MetricDataRequest) -> Result<MetricDataResponse, Vec<MetricDataError>> {
        get_metric_data(r, &Fixed)
    }

    #[test]
    fn an_expression_over_two_metrics_is_evaluated_and_only_returned_queries_come_back() {
        let answer = run(request(vec![
            stat("errors", "errors"),
            stat("requests", "requests"),
            expr("rate", "errors/requests*100"),
        ]))
        .unwrap();
        assert_eq!(answer.results.len(), 1);
        let r = &answer.results[0];
        assert_eq!((r.id.as_str(), r.label.as_str()), ("rate", "rate"));
        assert_eq!(r.values, vec![10.0, 20.0, 15.0]);
        assert_eq!(
            r.timestamps,
            vec![
                Timestamp::from_secs(0),
                Timestamp::from_secs(60),
                Timestamp::from_secs(120)
            ]
        );
        assert_eq!(r.status, ResultStatus::Complete);
        assert_eq!(answer.next_token, None);
    }

    #[test]
    fn sum_of_metrics_aggregates_per_timestamp_and_descending_is_the_default() {
        let mut r = request(vec![
            stat("m1", "errors"),
            stat("m2", "requests"),
            expr("total", "SUM(METRICS())"),
        ]);
        r.scan_by = ScanBy::default();
        let answer = run(r).unwrap();
        assert_eq!(answer.results[0].values, vec![23.0, 12.0, 11.0]);
    }

    #[test]
    fn an_array_gives_one_result_per_series_labelled_and_metric_stats_take_the_metric_name() {
        let mut m1 = stat("m1", "errors");
        m1.return_data = true;
        let mut e = expr("e", "METRICS()");
        e.label = Some("all".into());
        let answer = run(request(vec![m1, stat("m2", "requests"), e])).unwrap();
        let labels: Vec<(&str, &str)> = answer
            .results
            .iter()
            .map(|r| (r.id.as_str(), r.label.as_str()))
            .collect();
        assert_eq!(
            labels,
            vec![("m1", "errors"), ("e", "all errors"), ("e", "all requests")]
        );
        assert_eq!(answer.results[2].values, vec![10.0, 10.0, 20.0]);
    }

    #[test]
    fn pages_run_across_expression_results_with_a_token_for_that_request_only() {
        let queries = vec![
            stat("m1", "errors"),
            stat("m2", "requests"),
            expr("e", "METRICS()"),
        ];
        let mut r = request(queries.clone());
        r.max_datapoints = Some(4);
        let first = run(r.clone()).unwrap();
        assert_eq!(first.results[0].values, vec![1.0, 2.0, 3.0]);
        assert_eq!(first.results[0].status, ResultStatus::Complete);
        assert_eq!(first.results[1].values, vec![10.0]);
        assert_eq!(first.results[1].status, ResultStatus::PartialData);
        let token = first.next_token.clone().expect("a second page");

        r.next_token = Some(token.clone());
        let second = run(r.clone()).unwrap();
        assert!(second.results[0].values.is_empty());
        assert_eq!(second.results[1].values, vec![10.0, 20.0]);
        assert_eq!(second.results[1].status, ResultStatus::Complete);
        assert_eq!(second.next_token, None);

        let mut other = request(vec![stat("m1", "errors"), expr("e", "m1 * 2")]);
        other.next_token = Some(token);
        let errors = run(other).unwrap_err();
        assert_eq!(errors[0].path(), "NextToken");
        assert_eq!(errors[0].rule, "next-token");
    }

    #[test]
    fn errors_name_the_query_the_position_and_the_rule() {
        let errors = run(request(vec![
            stat("m1", "errors"),
            expr("e", "m1 + (2"),
            expr("f", "m9 * 2"),
        ]))
        .unwrap_err();
        let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            texts[0].starts_with("MetricDataQueries.member.2.Expression: 1:"),
            "{texts:?}"
        );
        assert!(texts[0].contains("syntax"), "{texts:?}");
        assert!(
            texts[1].starts_with("MetricDataQueries.member.3.Expression: 1:1: unknown-id"),
            "{texts:?}"
        );
        assert_eq!(errors[1].snake_path(), "metric_data_queries[2].expression");
    }

    #[test]
    fn hostile_requests_are_refused_with_the_limit_broken() {
        let many: Vec<DataQuery> = (0..501).map(|i| stat(&format!("m{i}"), "errors")).collect();
        let errors = run(request(many)).unwrap_err();
        assert_eq!(
            (errors[0].path().as_str(), errors[0].rule),
            ("MetricDataQueries", "count")
        );

        let long = format!("m1{}", " + 1".repeat(600));
        let errors = run(request(vec![stat("m1", "errors"), expr("e", &long)])).unwrap_err();
        assert_eq!(errors[0].path(), "MetricDataQueries.member.2.Expression");
        assert_eq!(errors[0].rule, "limit", "{errors:?}");

        let deep = format!("{}m1{}", "(".repeat(10_000), ")".repeat(10_000));
        let errors = run(request(vec![stat("m1", "errors"), expr("e", &deep)])).unwrap_err();
        assert_eq!(errors[0].rule, "limit", "{errors:?}");

        let mut r = request(vec![stat("m1", "errors")]);
        r.max_datapoints = Some(MAX_DATAPOINTS + 1);
        let errors = run(r).unwrap_err();
        assert_eq!(
            (errors[0].path().as_str(), errors[0].rule),
            ("MaxDatapoints", "limit")
        );
    }

    #[test]
    fn expressions_need_one_period_and_a_scalar_fills_the_range() {
        let mut m2 = stat("m2", "requests");
        if let DataSource::MetricStat(s) = &mut m2.source {
            s.period_seconds = 300;
        }
        let errors = run(request(vec![stat("m1", "errors"), m2, expr("e", "m1")])).unwrap_err();
        assert_eq!(
            errors[0].path(),
            "MetricDataQueries.member.2.MetricStat.Period"
        );
        assert_eq!(errors[0].rule, "period");

        let answer = run(request(vec![stat("m1", "errors"), expr("avg", "AVG(m1)")])).unwrap();
        assert_eq!(answer.results[0].values, vec![2.0; 4]);
        assert_eq!(answer.results[0].timestamps[3], Timestamp::from_secs(180));
    }

    /// A daily cycle, `100 + 50·sin(2πt/day)` with a little deterministic noise, at every
    /// period of any range; plus a spike of +400 at [`SPIKE`].
    struct Seasonal;

    const DAY: i64 = 86_400_000;
    /// The end of the requests over [`Seasonal`]: 20 days after the epoch.
    const END: i64 = 20 * DAY;
    /// A minute of the last hour with an anomaly.
    const SPIKE: i64 = END - 10 * 60_000;

    impl MetricSource for Seasonal {
        fn fetch(&self, fetch: &Fetch) -> Result<Vec<(Timestamp, f64)>, MetricDataError> {
            let p = i64::from(fetch.stat.period_seconds) * 1000;
            let mut out = Vec::new();
            let mut t = fetch.start.as_millis();
            while t < fetch.end.as_millis() {
                let phase = (t % DAY) as f64 / DAY as f64 * std::f64::consts::TAU;
                let noise = ((t / 60_000) % 7) as f64 - 3.0;
                let spike = if t == SPIKE { 400.0 } else { 0.0 };
                out.push((Timestamp(t), 100.0 + 50.0 * phase.sin() + noise + spike));
                t += p;
            }
            Ok(out)
        }
    }

    fn band_request(queries: Vec<DataQuery>) -> MetricDataRequest {
        MetricDataRequest {
            queries,
            start: Timestamp(END - 3_600_000),
            end: Timestamp(END),
            scan_by: ScanBy::TimestampAscending,
            max_datapoints: None,
            next_token: None,
        }
    }

    #[test]
    fn a_seasonal_history_trains_a_band_that_holds_normal_points_and_not_the_spike() {
        let mut m1 = stat("m1", "cpu");
        m1.return_data = true;
        let request = band_request(vec![m1, expr("band", "ANOMALY_DETECTION_BAND(m1, 3)")]);
        let prepared = prepare(request.clone()).unwrap();
        let histories: Vec<&Fetch> = prepared
            .fetches()
            .iter()
            .filter(|f| f.purpose == FetchPurpose::History)
            .collect();
        // 14 days at 60 s in slices of 1,440 minutes, ending at EndTime.
        assert_eq!(histories.len(), 14);
        assert_eq!(histories[0].start, Timestamp(END - 14 * DAY));
        assert_eq!(histories[13].end, Timestamp(END));
        assert!(
            histories
                .iter()
                .all(|f| f.stat.period_seconds == 60 && f.id == "m1")
        );

        let answer = get_metric_data(request, &Seasonal).unwrap();
        let labels: Vec<(&str, &str)> = answer
            .results
            .iter()
            .map(|r| (r.id.as_str(), r.label.as_str()))
            .collect();
        assert_eq!(
            labels,
            vec![("m1", "cpu"), ("band", "upper"), ("band", "lower")]
        );
        let (m1, upper, lower) = (&answer.results[0], &answer.results[1], &answer.results[2]);
        assert_eq!(m1.values.len(), 60);
        assert_eq!(upper.timestamps, m1.timestamps);
        assert_eq!(lower.timestamps, m1.timestamps);
        assert!(upper.messages.is_empty() && lower.messages.is_empty());
        for i in 0..m1.values.len() {
            let (t, v) = (m1.timestamps[i], m1.values[i]);
            let inside = lower.values[i] <= v && v <= upper.values[i];
            assert_eq!(
                inside,
                t.as_millis() != SPIKE,
                "at {t}: {} <= {v} <= {}",
                lower.values[i],
                upper.values[i]
            );
            // The band follows the cycle: not wider than the cycle's swing.
            assert!(upper.values[i] - lower.values[i] < 60.0, "at {t}");
        }
    }

    #[test]
    fn too_little_history_gives_an_empty_band_with_the_models_reason() {
        let mut m1 = stat("m1", "errors");
        m1.return_data = true;
        let answer = run(request(vec![
            m1,
            expr("band", "ANOMALY_DETECTION_BAND(m1)"),
        ]))
        .unwrap();
        assert_eq!(answer.results.len(), 3);
        assert_eq!(answer.results[0].values, vec![1.0, 2.0, 3.0]);
        assert!(answer.results[0].messages.is_empty());
        for band in &answer.results[1..] {
            assert!(band.values.is_empty() && band.timestamps.is_empty());
            assert_eq!(band.status, ResultStatus::Complete);
            assert_eq!(band.messages.len(), 1, "{band:?}");
            assert_eq!(band.messages[0].code, PENDING_TRAINING_CODE);
            assert!(
                band.messages[0]
                    .value
                    .starts_with("the anomaly model has not seen enough data yet: "),
                "{band:?}"
            );
        }
    }

    #[test]
    fn bands_are_bounded_per_request_and_an_expression_has_no_model() {
        let mut queries: Vec<DataQuery> = (0..=MAX_BAND_MODELS)
            .map(|i| stat(&format!("m{i}"), "errors"))
            .collect();
        queries.extend(
            (0..=MAX_BAND_MODELS)
                .map(|i| expr(&format!("b{i}"), &format!("ANOMALY_DETECTION_BAND(m{i})"))),
        );
        let errors = run(request(queries)).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0].path(),
            format!(
                "MetricDataQueries.member.{}.Expression",
                2 * MAX_BAND_MODELS + 2
            )
        );
        assert_eq!(errors[0].rule, "limit");

        // One metric banded twice (two widths) trains one model.
        let prepared = prepare(request(vec![
            stat("m1", "errors"),
            expr("narrow", "ANOMALY_DETECTION_BAND(m1, 1)"),
            expr("wide", "LAST(ANOMALY_DETECTION_BAND(m1, 4)) * 2"),
        ]))
        .unwrap();
        assert_eq!(
            prepared
                .fetches()
                .iter()
                .filter(|f| f.purpose == FetchPurpose::History)
                .count(),
            14
        );

        let errors = run(request(vec![
            stat("m1", "errors"),
            expr("e", "m1 * 2"),
            expr("band", "ANOMALY_DETECTION_BAND(e)"),
        ]))
        .unwrap_err();
        assert_eq!(errors[0].path(), "MetricDataQueries.member.3.Expression");
        assert!(
            errors[0].message.contains("no anomaly-detection model")
                && errors[0].message.contains("MetricStat queries only"),
            "{errors:?}"
        );
    }
}
