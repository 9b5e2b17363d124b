//! The metric and alarm operations' results, typed, and the protocol-neutral [`Node`] tree they are
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

/// A metric alarm as `DescribeAlarms` shows it (`MetricAlarm`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricAlarm {
    /// `AlarmName`.
    pub alarm_name: String,
    /// `AlarmArn`.
    pub alarm_arn: String,
    /// `AlarmDescription`.
    pub alarm_description: Option<String>,
    /// `AlarmConfigurationUpdatedTimestamp`.
    pub configuration_updated: Option<Timestamp>,
    /// `ActionsEnabled`.
    pub actions_enabled: bool,
    /// `OKActions`.
    pub ok_actions: Vec<String>,
    /// `AlarmActions`.
    pub alarm_actions: Vec<String>,
    /// `InsufficientDataActions`.
    pub insufficient_data_actions: Vec<String>,
    /// `StateValue`.
    pub state_value: String,
    /// `StateReason`.
    pub state_reason: String,
    /// `StateReasonData` (JSON text).
    pub state_reason_data: Option<String>,
    /// `StateUpdatedTimestamp`.
    pub state_updated: Option<Timestamp>,
    /// `MetricName`.
    pub metric_name: String,
    /// `Namespace`.
    pub namespace: String,
    /// `Statistic` (or, for a percentile, `ExtendedStatistic`), as named.
    pub statistic: String,
    /// Whether `statistic` is a percentile (`ExtendedStatistic`).
    pub extended: bool,
    /// `Dimensions`.
    pub dimensions: Vec<Dimension>,
    /// `Period`.
    pub period_seconds: u32,
    /// `Unit`.
    pub unit: Option<Unit>,
    /// `EvaluationPeriods`.
    pub evaluation_periods: u32,
    /// `DatapointsToAlarm`.
    pub datapoints_to_alarm: Option<u32>,
    /// `Threshold`.
    pub threshold: f64,
    /// `ComparisonOperator`.
    pub comparison_operator: String,
    /// `TreatMissingData`.
    pub treat_missing_data: String,
    /// `EvaluateLowSampleCountPercentile`, for percentiles.
    pub evaluate_low_sample_count_percentile: Option<String>,
    /// `Metrics` of a metric-math alarm (then the single-metric members are left out).
    pub metrics: Vec<crate::request::MetricDataQuery>,
    /// `ThresholdMetricId` of an anomaly alarm (then `Threshold` is left out).
    pub threshold_metric_id: Option<String>,
}

/// A composite alarm as `DescribeAlarms` shows it (`CompositeAlarm`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompositeAlarm {
    /// `AlarmName`.
    pub alarm_name: String,
    /// `AlarmArn`.
    pub alarm_arn: String,
    /// `AlarmDescription`.
    pub alarm_description: Option<String>,
    /// `AlarmRule`.
    pub alarm_rule: String,
    /// `ActionsEnabled`.
    pub actions_enabled: bool,
    /// `OKActions`.
    pub ok_actions: Vec<String>,
    /// `AlarmActions`.
    pub alarm_actions: Vec<String>,
    /// `InsufficientDataActions`.
    pub insufficient_data_actions: Vec<String>,
    /// `StateValue`.
    pub state_value: String,
    /// `StateReason`.
    pub state_reason: String,
    /// `StateReasonData` (JSON text).
    pub state_reason_data: Option<String>,
    /// `StateUpdatedTimestamp`.
    pub state_updated: Option<Timestamp>,
}

/// The result of `DescribeAlarms`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DescribeAlarmsOutput {
    /// `CompositeAlarms`.
    pub composite_alarms: Vec<CompositeAlarm>,
    /// `MetricAlarms`.
    pub metric_alarms: Vec<MetricAlarm>,
    /// `NextToken`.
    pub next_token: Option<String>,
}

/// An item of `DescribeAlarmHistory` (`AlarmHistoryItem`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlarmHistoryItem {
    /// `AlarmName`.
    pub alarm_name: String,
    /// `AlarmType`.
    pub alarm_type: String,
    /// `Timestamp`.
    pub timestamp: Timestamp,
    /// `HistoryItemType`.
    pub history_item_type: String,
    /// `HistorySummary`.
    pub history_summary: String,
    /// `HistoryData` (JSON text).
    pub history_data: String,
}

/// The result of `DescribeAlarmHistory`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DescribeAlarmHistoryOutput {
    /// `AlarmHistoryItems`.
    pub items: Vec<AlarmHistoryItem>,
    /// `NextToken`.
    pub next_token: Option<String>,
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
    /// `PutMetricAlarm` (no output members).
    PutMetricAlarm,
    /// `PutCompositeAlarm` (no output members).
    PutCompositeAlarm,
    /// `DescribeAlarms`.
    DescribeAlarms(DescribeAlarmsOutput),
    /// `DescribeAlarmsForMetric`: `MetricAlarms`.
    DescribeAlarmsForMetric(Vec<MetricAlarm>),
    /// `DeleteAlarms` (no output members).
    DeleteAlarms,
    /// `SetAlarmState` (no output members).
    SetAlarmState,
    /// `EnableAlarmActions` (no output members).
    EnableAlarmActions,
    /// `DisableAlarmActions` (no output members).
    DisableAlarmActions,
    /// `DescribeAlarmHistory`.
    DescribeAlarmHistory(DescribeAlarmHistoryOutput),
    /// `ListTagsForResource`: `Tags`.
    ListTagsForResource(Vec<crate::request::Tag>),
    /// `TagResource` (no output members).
    TagResource,
    /// `UntagResource` (no output members).
    UntagResource,
    /// `PutAnomalyDetector` (no output members).
    PutAnomalyDetector,
    /// `DeleteAnomalyDetector` (no output members).
    DeleteAnomalyDetector,
    /// `DescribeAnomalyDetectors`.
    DescribeAnomalyDetectors(DescribeAnomalyDetectorsOutput),
}

/// An anomaly detector as `DescribeAnomalyDetectors` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnomalyDetectorOutput {
    /// The detector.
    pub detector: crate::request::AnomalyDetector,
    /// `StateValue`: `PENDING_TRAINING`, `TRAINED_INSUFFICIENT_DATA` or `TRAINED`.
    pub state_value: String,
}

/// The result of `DescribeAnomalyDetectors`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DescribeAnomalyDetectorsOutput {
    /// `AnomalyDetectors`.
    pub anomaly_detectors: Vec<AnomalyDetectorOutput>,
    /// `NextToken`.
    pub next_token: Option<String>,
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
            Output::PutMetricAlarm => Operation::PutMetricAlarm,
            Output::PutCompositeAlarm => Operation::PutCompositeAlarm,
            Output::DescribeAlarms(_) => Operation::DescribeAlarms,
            Output::DescribeAlarmsForMetric(_) => Operation::DescribeAlarmsForMetric,
            Output::DeleteAlarms => Operation::DeleteAlarms,
            Output::SetAlarmState => Operation::SetAlarmState,
            Output::EnableAlarmActions => Operation::EnableAlarmActions,
            Output::DisableAlarmActions => Operation::DisableAlarmActions,
            Output::DescribeAlarmHistory(_) => Operation::DescribeAlarmHistory,
            Output::ListTagsForResource(_) => Operation::ListTagsForResource,
            Output::TagResource => Operation::TagResource,
            Output::UntagResource => Operation::UntagResource,
            Output::PutAnomalyDetector => Operation::PutAnomalyDetector,
            Output::DeleteAnomalyDetector => Operation::DeleteAnomalyDetector,
            Output::DescribeAnomalyDetectors(_) => Operation::DescribeAnomalyDetectors,
        }
    }

    /// The result as a tree, or `None` for an operation without output members (AWS Query
    /// then writes no `…Result` element).
    pub fn to_node(&self) -> Option<Node> {
        Some(match self {
            Output::PutMetricData
            | Output::PutMetricAlarm
            | Output::PutCompositeAlarm
            | Output::DeleteAlarms
            | Output::SetAlarmState
            | Output::EnableAlarmActions
            | Output::DisableAlarmActions => return None,
            // Modelled as empty output structures: AWS Query clients expect the (empty)
            // `<…Result>` element.
            Output::TagResource
            | Output::UntagResource
            | Output::PutAnomalyDetector
            | Output::DeleteAnomalyDetector => Node::Struct(Vec::new()),
            Output::DescribeAnomalyDetectors(out) => structure(vec![
                (
                    "AnomalyDetectors",
                    Some(Node::List(
                        out.anomaly_detectors.iter().map(anomaly_detector).collect(),
                    )),
                ),
                ("NextToken", out.next_token.as_deref().map(string)),
            ]),
            Output::ListTagsForResource(tags) => Node::Struct(vec![(
                "Tags",
                Node::List(
                    tags.iter()
                        .map(|t| {
                            Node::Struct(vec![("Key", string(&t.key)), ("Value", string(&t.value))])
                        })
                        .collect(),
                ),
            )]),
            Output::DescribeAlarms(out) => structure(vec![
                (
                    "CompositeAlarms",
                    Some(Node::List(
                        out.composite_alarms.iter().map(composite_alarm).collect(),
                    )),
                ),
                (
                    "MetricAlarms",
                    Some(Node::List(
                        out.metric_alarms.iter().map(metric_alarm).collect(),
                    )),
                ),
                ("NextToken", out.next_token.as_deref().map(string)),
            ]),
            Output::DescribeAlarmsForMetric(alarms) => Node::Struct(vec![(
                "MetricAlarms",
                Node::List(alarms.iter().map(metric_alarm).collect()),
            )]),
            Output::DescribeAlarmHistory(out) => structure(vec![
                (
                    "AlarmHistoryItems",
                    Some(Node::List(out.items.iter().map(history_item).collect())),
                ),
                ("NextToken", out.next_token.as_deref().map(string)),
            ]),
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

fn strings(list: &[String]) -> Node {
    Node::List(list.iter().map(|s| string(s)).collect())
}

fn metric_alarm(a: &MetricAlarm) -> Node {
    let math = !a.metrics.is_empty();
    let (statistic, extended) = if math {
        (None, None)
    } else if a.extended {
        (None, Some(string(&a.statistic)))
    } else {
        (Some(string(&a.statistic)), None)
    };
    let single = |node: Node| (!math).then_some(node);
    structure(vec![
        ("AlarmName", Some(string(&a.alarm_name))),
        ("AlarmArn", Some(string(&a.alarm_arn))),
        (
            "AlarmDescription",
            a.alarm_description.as_deref().map(string),
        ),
        (
            "AlarmConfigurationUpdatedTimestamp",
            a.configuration_updated.map(Node::Timestamp),
        ),
        ("ActionsEnabled", Some(Node::Bool(a.actions_enabled))),
        ("OKActions", Some(strings(&a.ok_actions))),
        ("AlarmActions", Some(strings(&a.alarm_actions))),
        (
            "InsufficientDataActions",
            Some(strings(&a.insufficient_data_actions)),
        ),
        ("StateValue", Some(string(&a.state_value))),
        ("StateReason", Some(string(&a.state_reason))),
        (
            "StateReasonData",
            a.state_reason_data.as_deref().map(string),
        ),
        (
            "StateUpdatedTimestamp",
            a.state_updated.map(Node::Timestamp),
        ),
        ("MetricName", single(string(&a.metric_name))),
        ("Namespace", single(string(&a.namespace))),
        ("Statistic", statistic),
        ("ExtendedStatistic", extended),
        ("Dimensions", single(dimensions(&a.dimensions))),
        ("Period", single(Node::Int(i64::from(a.period_seconds)))),
        ("Unit", a.unit.filter(|_| !math).map(|u| string(u.as_str()))),
        (
            "EvaluationPeriods",
            Some(Node::Int(i64::from(a.evaluation_periods))),
        ),
        (
            "DatapointsToAlarm",
            a.datapoints_to_alarm.map(|m| Node::Int(i64::from(m))),
        ),
        (
            "Threshold",
            a.threshold_metric_id
                .is_none()
                .then_some(Node::Float(a.threshold)),
        ),
        (
            "ThresholdMetricId",
            a.threshold_metric_id.as_deref().map(string),
        ),
        (
            "Metrics",
            math.then(|| Node::List(a.metrics.iter().map(metric_query).collect())),
        ),
        ("ComparisonOperator", Some(string(&a.comparison_operator))),
        ("TreatMissingData", Some(string(&a.treat_missing_data))),
        (
            "EvaluateLowSampleCountPercentile",
            a.evaluate_low_sample_count_percentile
                .as_deref()
                .map(string),
        ),
        (
            "StateTransitionedTimestamp",
            a.state_updated.map(Node::Timestamp),
        ),
    ])
}

fn anomaly_detector(d: &AnomalyDetectorOutput) -> Node {
    let m = &d.detector;
    let single = || {
        Node::Struct(vec![
            ("Namespace", string(&m.metric.namespace)),
            ("MetricName", string(&m.metric.metric_name)),
            ("Dimensions", dimensions(&m.metric.dimensions)),
            ("Stat", string(&m.stat)),
        ])
    };
    let ranges = Node::List(
        m.excluded_time_ranges
            .iter()
            .map(|(start, end)| {
                Node::Struct(vec![
                    ("StartTime", Node::Timestamp(*start)),
                    ("EndTime", Node::Timestamp(*end)),
                ])
            })
            .collect(),
    );
    structure(vec![
        ("Namespace", Some(string(&m.metric.namespace))),
        ("MetricName", Some(string(&m.metric.metric_name))),
        ("Dimensions", Some(dimensions(&m.metric.dimensions))),
        ("Stat", Some(string(&m.stat))),
        (
            "Configuration",
            Some(structure(vec![
                ("ExcludedTimeRanges", Some(ranges)),
                ("MetricTimezone", m.metric_timezone.as_deref().map(string)),
            ])),
        ),
        ("StateValue", Some(string(&d.state_value))),
        ("SingleMetricAnomalyDetector", Some(single())),
    ])
}

/// A `MetricDataQuery` as `DescribeAlarms` shows a math alarm's `Metrics`.
fn metric_query(q: &crate::request::MetricDataQuery) -> Node {
    use crate::request::QueryKind;
    let (stat, expression) = match &q.kind {
        QueryKind::MetricStat(s) => (
            Some(structure(vec![
                ("Metric", Some(metric(&s.metric))),
                ("Period", Some(Node::Int(i64::from(s.period_seconds)))),
                ("Stat", Some(string(s.stat.name()))),
                ("Unit", s.unit.map(|u| string(u.as_str()))),
            ])),
            None,
        ),
        QueryKind::Expression(e) => (None, Some(string(e))),
    };
    structure(vec![
        ("Id", Some(string(&q.id))),
        ("MetricStat", stat),
        ("Expression", expression),
        ("Label", q.label.as_deref().map(string)),
        ("ReturnData", Some(Node::Bool(q.return_data))),
        ("Period", q.period_seconds.map(|p| Node::Int(i64::from(p)))),
    ])
}

fn composite_alarm(a: &CompositeAlarm) -> Node {
    structure(vec![
        ("ActionsEnabled", Some(Node::Bool(a.actions_enabled))),
        ("AlarmActions", Some(strings(&a.alarm_actions))),
        ("AlarmArn", Some(string(&a.alarm_arn))),
        (
            "AlarmDescription",
            a.alarm_description.as_deref().map(string),
        ),
        ("AlarmName", Some(string(&a.alarm_name))),
        ("AlarmRule", Some(string(&a.alarm_rule))),
        (
            "InsufficientDataActions",
            Some(strings(&a.insufficient_data_actions)),
        ),
        ("OKActions", Some(strings(&a.ok_actions))),
        ("StateReason", Some(string(&a.state_reason))),
        (
            "StateReasonData",
            a.state_reason_data.as_deref().map(string),
        ),
        (
            "StateUpdatedTimestamp",
            a.state_updated.map(Node::Timestamp),
        ),
        ("StateValue", Some(string(&a.state_value))),
        (
            "StateTransitionedTimestamp",
            a.state_updated.map(Node::Timestamp),
        ),
    ])
}

fn history_item(h: &AlarmHistoryItem) -> Node {
    Node::Struct(vec![
        ("AlarmName", string(&h.alarm_name)),
        ("AlarmType", string(&h.alarm_type)),
        ("Timestamp", Node::Timestamp(h.timestamp)),
        ("HistoryItemType", string(&h.history_item_type)),
        ("HistorySummary", string(&h.history_summary)),
        ("HistoryData", string(&h.history_data)),
    ])
}
