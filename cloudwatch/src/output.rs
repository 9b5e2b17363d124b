//! The metric operations' results, typed, and the protocol-neutral [`Node`] tree they are
//! encoded from (structures keep the service model's member order, which AWS Query's XML
//! follows).

use std::collections::BTreeMap;

use thermostat_metrics::{Timestamp, Unit};

use crate::request::{Dimension, Metric};

/// An output value, as the encoders of [`crate::response`] read it.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// A structure: members in order; absent members are left out.
    Struct(Vec<(&'static str, Node)>),
    /// A list (`member` elements in XML).
    List(Vec<Node>),
    /// A map (`entry`/`key`/`value` elements in XML).
    Map(Vec<(String, Node)>),
    /// A string.
    String(String),
    /// An integer.
    Int(i64),
    /// A double.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A timestamp.
    Timestamp(Timestamp),
}

/// Builds a structure, leaving out `None` members.
fn structure(members: Vec<(&'static str, Option<Node>)>) -> Node {
    Node::Struct(
        members
            .into_iter()
            .filter_map(|(name, node)| node.map(|n| (name, n)))
            .collect(),
    )
}

fn string(s: &str) -> Node {
    Node::String(s.to_owned())
}

fn dimensions(dimensions: &[Dimension]) -> Node {
    Node::List(
        dimensions
            .iter()
            .map(|d| Node::Struct(vec![("Name", string(&d.name)), ("Value", string(&d.value))]))
            .collect(),
    )
}

fn metric(metric: &Metric) -> Node {
    Node::Struct(vec![
        ("Namespace", string(&metric.namespace)),
        ("MetricName", string(&metric.metric_name)),
        ("Dimensions", dimensions(&metric.dimensions)),
    ])
}

/// A datapoint of `GetMetricStatistics` (`Datapoint`): the statistics asked for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Datapoint {
    /// `Timestamp`: the period's start.
    pub timestamp: Timestamp,
    /// `SampleCount`.
    pub sample_count: Option<f64>,
    /// `Average`.
    pub average: Option<f64>,
    /// `Sum`.
    pub sum: Option<f64>,
    /// `Minimum`.
    pub minimum: Option<f64>,
    /// `Maximum`.
    pub maximum: Option<f64>,
    /// `Unit`.
    pub unit: Option<Unit>,
    /// `ExtendedStatistics`: percentile label to value.
    pub extended_statistics: BTreeMap<String, f64>,
}

/// The result of `GetMetricStatistics`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GetMetricStatisticsOutput {
    /// `Label`: the metric's name.
    pub label: String,
    /// `Datapoints`.
    pub datapoints: Vec<Datapoint>,
}

/// The result of `ListMetrics`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListMetricsOutput {
    /// `Metrics`.
    pub metrics: Vec<Metric>,
    /// `NextToken`, when more metrics follow.
    pub next_token: Option<String>,
}

/// `StatusCode` of a `MetricDataResult`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StatusCode {
    /// `Complete`.
    #[default]
    Complete,
    /// `PartialData`: more datapoints follow under `NextToken`.
    PartialData,
    /// `InternalError`.
    InternalError,
    /// `Forbidden`.
    Forbidden,
}

impl StatusCode {
    /// The service model's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            StatusCode::Complete => "Complete",
            StatusCode::PartialData => "PartialData",
            StatusCode::InternalError => "InternalError",
            StatusCode::Forbidden => "Forbidden",
        }
    }
}

/// A message of `GetMetricData` (`MessageData`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageData {
    /// `Code`.
    pub code: String,
    /// `Value`.
    pub value: String,
}

/// One query's result (`MetricDataResult`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricDataResult {
    /// `Id`.
    pub id: String,
    /// `Label`.
    pub label: String,
    /// `Timestamps`, in the request's `ScanBy` order.
    pub timestamps: Vec<Timestamp>,
    /// `Values`, one per timestamp.
    pub values: Vec<f64>,
    /// `StatusCode`.
    pub status_code: StatusCode,
    /// `Messages`.
    pub messages: Vec<MessageData>,
}

/// The result of `GetMetricData`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GetMetricDataOutput {
    /// `MetricDataResults`.
    pub metric_data_results: Vec<MetricDataResult>,
    /// `NextToken`.
    pub next_token: Option<String>,
    /// `Messages`.
    pub messages: Vec<MessageData>,
}

/// A result of an operation Thermostat serves.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// `PutMetricData` (no output members).
    PutMetricData,
    /// `GetMetricStatistics`.
    GetMetricStatistics(GetMetricStatisticsOutput),
    /// `ListMetrics`.
    ListMetrics(ListMetricsOutput),
    /// `GetMetricData`.
    GetMetricData(GetMetricDataOutput),
}

fn messages(messages: &[MessageData]) -> Node {
    Node::List(
        messages
            .iter()
            .map(|m| Node::Struct(vec![("Code", string(&m.code)), ("Value", string(&m.value))]))
            .collect(),
    )
}

impl Output {
    /// The operation this result answers.
    pub const fn operation(&self) -> crate::operation::Operation {
        use crate::operation::Operation;
        match self {
            Output::PutMetricData => Operation::PutMetricData,
            Output::GetMetricStatistics(_) => Operation::GetMetricStatistics,
            Output::ListMetrics(_) => Operation::ListMetrics,
            Output::GetMetricData(_) => Operation::GetMetricData,
        }
    }

    /// The result as a tree, or `None` for an operation without output members (AWS Query
    /// then writes no `…Result` element).
    pub fn to_node(&self) -> Option<Node> {
        Some(match self {
            Output::PutMetricData => return None,
            Output::GetMetricStatistics(out) => Node::Struct(vec![
                ("Label", string(&out.label)),
                (
                    "Datapoints",
                    Node::List(out.datapoints.iter().map(datapoint).collect()),
                ),
            ]),
            Output::ListMetrics(out) => structure(vec![
                (
                    "Metrics",
                    Some(Node::List(out.metrics.iter().map(metric).collect())),
                ),
                ("NextToken", out.next_token.as_deref().map(string)),
            ]),
            Output::GetMetricData(out) => structure(vec![
                (
                    "MetricDataResults",
                    Some(Node::List(
                        out.metric_data_results.iter().map(result).collect(),
                    )),
                ),
                ("NextToken", out.next_token.as_deref().map(string)),
                ("Messages", Some(messages(&out.messages))),
            ]),
        })
    }
}

fn datapoint(d: &Datapoint) -> Node {
    let extended = (!d.extended_statistics.is_empty()).then(|| {
        Node::Map(
            d.extended_statistics
                .iter()
                .map(|(k, v)| (k.clone(), Node::Float(*v)))
                .collect(),
        )
    });
    structure(vec![
        ("Timestamp", Some(Node::Timestamp(d.timestamp))),
        ("SampleCount", d.sample_count.map(Node::Float)),
        ("Average", d.average.map(Node::Float)),
        ("Sum", d.sum.map(Node::Float)),
        ("Minimum", d.minimum.map(Node::Float)),
        ("Maximum", d.maximum.map(Node::Float)),
        ("Unit", d.unit.map(|u| string(u.as_str()))),
        ("ExtendedStatistics", extended),
    ])
}

fn result(r: &MetricDataResult) -> Node {
    Node::Struct(vec![
        ("Id", string(&r.id)),
        ("Label", string(&r.label)),
        (
            "Timestamps",
            Node::List(r.timestamps.iter().map(|t| Node::Timestamp(*t)).collect()),
        ),
        (
            "Values",
            Node::List(r.values.iter().map(|v| Node::Float(*v)).collect()),
        ),
        ("StatusCode", string(r.status_code.as_str())),
        ("Messages", messages(&r.messages)),
    ])
}
