//! The metric and alarm operations' requests, typed and checked against the service model's shapes
//! (required members, lengths, enums, list sizes) and CloudWatch's documented rules.

use std::collections::{BTreeMap, HashSet};

use thermostat_metrics::quote::quote;
use thermostat_metrics::{Statistic, Timestamp, Unit};

use crate::error::{Error, Result};
use crate::fields::{Fields, Item, invalid};
use crate::operation::Operation;
use crate::protocol::Protocol;
use crate::value::Value;

/// Most metric data in one `PutMetricData` (CloudWatch's quota).
pub const MAX_METRIC_DATA: usize = 1000;
/// Most `EntityMetricData` in one `PutMetricData` (CloudWatch's quota).
pub const MAX_ENTITY_METRIC_DATA: usize = 2;
/// Most values (and counts) in one datum's `Values` (CloudWatch's quota).
pub const MAX_DATUM_VALUES: usize = 150;
/// Most dimensions of a metric (the `Dimensions` shape's `max`).
pub const MAX_DIMENSIONS: usize = 30;
/// Most dimension filters of `ListMetrics` (the `DimensionFilters` shape's `max`).
pub const MAX_DIMENSION_FILTERS: usize = 10;
/// Most queries in one `GetMetricData` (CloudWatch's quota).
pub const MAX_METRIC_DATA_QUERIES: usize = 500;
/// The magnitude no value may exceed (2^360, CloudWatch's documented range).
pub const MAX_MAGNITUDE: f64 = 2.348_542_582_773_833_3e108;

/// A decoded request of an operation Thermostat serves.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// `PutMetricData`.
    PutMetricData(PutMetricData),
    /// `GetMetricStatistics`.
    GetMetricStatistics(GetMetricStatistics),
    /// `ListMetrics`.
    ListMetrics(ListMetrics),
    /// `GetMetricData`.
    GetMetricData(GetMetricData),
    /// `PutMetricAlarm`.
    PutMetricAlarm(PutMetricAlarm),
    /// `PutCompositeAlarm`.
    PutCompositeAlarm(PutCompositeAlarm),
    /// `DescribeAlarms`.
    DescribeAlarms(DescribeAlarms),
    /// `DescribeAlarmsForMetric`.
    DescribeAlarmsForMetric(DescribeAlarmsForMetric),
    /// `DeleteAlarms`: the names.
    DeleteAlarms(Vec<String>),
    /// `SetAlarmState`.
    SetAlarmState(SetAlarmState),
    /// `EnableAlarmActions`: the names.
    EnableAlarmActions(Vec<String>),
    /// `DisableAlarmActions`: the names.
    DisableAlarmActions(Vec<String>),
    /// `DescribeAlarmHistory`.
    DescribeAlarmHistory(DescribeAlarmHistory),
    /// `ListTagsForResource`: the `ResourceARN`.
    ListTagsForResource(String),
    /// `TagResource`.
    TagResource(TagResource),
    /// `UntagResource`.
    UntagResource(UntagResource),
    /// `PutAnomalyDetector`.
    PutAnomalyDetector(AnomalyDetector),
    /// `DeleteAnomalyDetector`: the detector's metric and statistic.
    DeleteAnomalyDetector(AnomalyDetector),
    /// `DescribeAnomalyDetectors`.
    DescribeAnomalyDetectors(DescribeAnomalyDetectors),
}

impl Request {
    /// The typed request of `operation` from its decoded body, read as `protocol` sends it
    /// (AWS Query's leaves are text).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAction`] for an operation Thermostat does not serve,
    /// [`Error::MissingParameter`] naming a required parameter that is absent,
    /// [`Error::InvalidParameterValue`] or [`Error::InvalidParameterCombination`] for values
    /// the service model or CloudWatch's rules refuse.
    pub fn from_value(operation: Operation, value: &Value, protocol: Protocol) -> Result<Self> {
        let fields = Fields::root(value, protocol.is_textual())?;
        Ok(match operation {
            Operation::PutMetricData => Request::PutMetricData(PutMetricData::read(fields)?),
            Operation::GetMetricStatistics => {
                Request::GetMetricStatistics(GetMetricStatistics::read(fields)?)
            }
            Operation::ListMetrics => Request::ListMetrics(ListMetrics::read(fields)?),
            Operation::GetMetricData => Request::GetMetricData(GetMetricData::read(fields)?),
            Operation::PutMetricAlarm => Request::PutMetricAlarm(PutMetricAlarm::read(fields)?),
            Operation::PutCompositeAlarm => {
                Request::PutCompositeAlarm(PutCompositeAlarm::read(fields)?)
            }
            Operation::DescribeAlarms => Request::DescribeAlarms(DescribeAlarms::read(fields)?),
            Operation::DescribeAlarmsForMetric => {
                Request::DescribeAlarmsForMetric(DescribeAlarmsForMetric::read(fields)?)
            }
            Operation::DeleteAlarms => Request::DeleteAlarms(alarm_names(&fields, true)?),
            Operation::SetAlarmState => Request::SetAlarmState(SetAlarmState::read(fields)?),
            Operation::EnableAlarmActions => {
                Request::EnableAlarmActions(alarm_names(&fields, true)?)
            }
            Operation::DisableAlarmActions => {
                Request::DisableAlarmActions(alarm_names(&fields, true)?)
            }
            Operation::DescribeAlarmHistory => {
                Request::DescribeAlarmHistory(DescribeAlarmHistory::read(fields)?)
            }
            Operation::ListTagsForResource => Request::ListTagsForResource(resource_arn(&fields)?),
            Operation::TagResource => Request::TagResource(TagResource {
                resource_arn: resource_arn(&fields)?,
                tags: tags(&fields, true)?,
            }),
            Operation::UntagResource => Request::UntagResource(UntagResource::read(&fields)?),
            Operation::PutAnomalyDetector => {
                Request::PutAnomalyDetector(AnomalyDetector::read(&fields, true)?)
            }
            Operation::DeleteAnomalyDetector => {
                Request::DeleteAnomalyDetector(AnomalyDetector::read(&fields, false)?)
            }
            Operation::DescribeAnomalyDetectors => {
                Request::DescribeAnomalyDetectors(DescribeAnomalyDetectors::read(&fields)?)
            }
            other => {
                return Err(Error::InvalidAction(format!(
                    "Thermostat does not support the operation {other} yet."
                )));
            }
        })
    }

    /// The request's operation.
    pub const fn operation(&self) -> Operation {
        match self {
            Request::PutMetricData(_) => Operation::PutMetricData,
            Request::GetMetricStatistics(_) => Operation::GetMetricStatistics,
            Request::ListMetrics(_) => Operation::ListMetrics,
            Request::GetMetricData(_) => Operation::GetMetricData,
            Request::PutMetricAlarm(_) => Operation::PutMetricAlarm,
            Request::PutCompositeAlarm(_) => Operation::PutCompositeAlarm,
            Request::DescribeAlarms(_) => Operation::DescribeAlarms,
            Request::DescribeAlarmsForMetric(_) => Operation::DescribeAlarmsForMetric,
            Request::DeleteAlarms(_) => Operation::DeleteAlarms,
            Request::SetAlarmState(_) => Operation::SetAlarmState,
            Request::EnableAlarmActions(_) => Operation::EnableAlarmActions,
            Request::DisableAlarmActions(_) => Operation::DisableAlarmActions,
            Request::DescribeAlarmHistory(_) => Operation::DescribeAlarmHistory,
            Request::ListTagsForResource(_) => Operation::ListTagsForResource,
            Request::TagResource(_) => Operation::TagResource,
            Request::UntagResource(_) => Operation::UntagResource,
            Request::PutAnomalyDetector(_) => Operation::PutAnomalyDetector,
            Request::DeleteAnomalyDetector(_) => Operation::DeleteAnomalyDetector,
            Request::DescribeAnomalyDetectors(_) => Operation::DescribeAnomalyDetectors,
        }
    }
}

/// A dimension of a metric (`Dimension`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dimension {
    /// `Name`, 1 to 255 characters.
    pub name: String,
    /// `Value`, 1 to 1024 characters.
    pub value: String,
}

/// A dimension filter of `ListMetrics` (`DimensionFilter`): a name, and a value or any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DimensionFilter {
    /// `Name`.
    pub name: String,
    /// `Value`; `None` matches any value.
    pub value: Option<String>,
}

/// A metric (`Metric`): namespace, name and dimensions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metric {
    /// `Namespace`.
    pub namespace: String,
    /// `MetricName`.
    pub metric_name: String,
    /// `Dimensions`, in the order sent.
    pub dimensions: Vec<Dimension>,
}

/// `StatisticSet`: a period's statistics sent instead of raw values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StatisticSet {
    /// `SampleCount`, positive.
    pub sample_count: f64,
    /// `Sum`.
    pub sum: f64,
    /// `Minimum`, at most `maximum`.
    pub minimum: f64,
    /// `Maximum`.
    pub maximum: f64,
}

/// What a datum carries: exactly one of `Value`, `Values` (with `Counts`) and
/// `StatisticValues`.
#[derive(Clone, Debug, PartialEq)]
pub enum DatumValue {
    /// `Value`.
    Single(f64),
    /// `Values` and `Counts` (each count 1 when `Counts` is absent), of equal length.
    Distribution {
        /// The distinct values.
        values: Vec<f64>,
        /// How many times each value occurred.
        counts: Vec<f64>,
    },
    /// `StatisticValues`.
    Statistics(StatisticSet),
}

/// `MetricDatum`.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricDatum {
    /// `MetricName`.
    pub metric_name: String,
    /// `Dimensions`.
    pub dimensions: Vec<Dimension>,
    /// `Timestamp`; `None` means the time of receipt (the caller's `now`).
    pub timestamp: Option<Timestamp>,
    /// `Value`, `Values`/`Counts` or `StatisticValues`.
    pub value: DatumValue,
    /// `Unit`; `None` when not sent.
    pub unit: Option<Unit>,
    /// `StorageResolution`: 1 (high resolution) or 60 (the default).
    pub storage_resolution_seconds: u32,
}

/// `Entity`: what the metrics of an [`EntityMetricData`] describe.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entity {
    /// `KeyAttributes`: 2 to 4 entries identifying the entity.
    pub key_attributes: BTreeMap<String, String>,
    /// `Attributes`: up to 10 more.
    pub attributes: BTreeMap<String, String>,
}

/// `EntityMetricData`: metric data with the entity they describe.
#[derive(Clone, Debug, PartialEq)]
pub struct EntityMetricData {
    /// `Entity`; `None` when absent, or when invalid and `StrictEntityValidation` is false
    /// (CloudWatch then keeps the data without the entity).
    pub entity: Option<Entity>,
    /// `MetricData`.
    pub metric_data: Vec<MetricDatum>,
}

/// `PutMetricData`.
#[derive(Clone, Debug, PartialEq)]
pub struct PutMetricData {
    /// `Namespace`.
    pub namespace: String,
    /// `MetricData`; with `entity_metric_data`, 1 to 1000 data in all.
    pub metric_data: Vec<MetricDatum>,
    /// `EntityMetricData`, at most 2.
    pub entity_metric_data: Vec<EntityMetricData>,
    /// `StrictEntityValidation`: an invalid entity fails the request rather than being
    /// dropped.
    pub strict_entity_validation: bool,
}

/// `GetMetricStatistics`.
#[derive(Clone, Debug, PartialEq)]
pub struct GetMetricStatistics {
    /// The metric (`Namespace`, `MetricName`, `Dimensions`).
    pub metric: Metric,
    /// `StartTime`, before `end_time`.
    pub start_time: Timestamp,
    /// `EndTime`.
    pub end_time: Timestamp,
    /// `Period`: 1, 5, 10, 20, 30 or a multiple of 60.
    pub period_seconds: u32,
    /// `Statistics` then `ExtendedStatistics` (percentiles), in the order sent; never empty.
    pub statistics: Vec<Statistic>,
    /// `Unit`.
    pub unit: Option<Unit>,
}

/// `ListMetrics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListMetrics {
    /// `Namespace`.
    pub namespace: Option<String>,
    /// `MetricName`.
    pub metric_name: Option<String>,
    /// `Dimensions`, at most 10 filters.
    pub dimensions: Vec<DimensionFilter>,
    /// `NextToken`, as sent.
    pub next_token: Option<String>,
    /// `RecentlyActive=PT3H`: only metrics with data in the past three hours.
    pub recently_active: bool,
    /// `IncludeLinkedAccounts`.
    pub include_linked_accounts: bool,
    /// `OwningAccount`.
    pub owning_account: Option<String>,
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

/// `MetricStat`: a metric, period, statistic and unit.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricStat {
    /// `Metric`.
    pub metric: Metric,
    /// `Period`.
    pub period_seconds: u32,
    /// `Stat`.
    pub stat: Statistic,
    /// `Unit`.
    pub unit: Option<Unit>,
}

/// What a query computes: exactly one of `MetricStat` and `Expression`.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryKind {
    /// `MetricStat`.
    MetricStat(MetricStat),
    /// `Expression`, as sent (metric math is evaluated elsewhere, once it exists).
    Expression(String),
}

/// `MetricDataQuery`.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricDataQuery {
    /// `Id`: starts with a lowercase letter; letters, digits and `_`; unique in the request.
    pub id: String,
    /// `MetricStat` or `Expression`.
    pub kind: QueryKind,
    /// `Label`.
    pub label: Option<String>,
    /// `ReturnData` (default true).
    pub return_data: bool,
    /// `Period` (of an expression's result).
    pub period_seconds: Option<u32>,
    /// `AccountId`.
    pub account_id: Option<String>,
}

/// `GetMetricData`.
#[derive(Clone, Debug, PartialEq)]
pub struct GetMetricData {
    /// `MetricDataQueries`, 1 to 500.
    pub metric_data_queries: Vec<MetricDataQuery>,
    /// `StartTime`, before `end_time`.
    pub start_time: Timestamp,
    /// `EndTime`.
    pub end_time: Timestamp,
    /// `NextToken`, as sent.
    pub next_token: Option<String>,
    /// `ScanBy`.
    pub scan_by: ScanBy,
    /// `MaxDatapoints`.
    pub max_datapoints: Option<u32>,
    /// `LabelOptions.Timezone` (`+HHMM` or `-HHMM`), as sent.
    pub label_timezone: Option<String>,
}

// === reading ===

fn namespace(fields: &Fields<'_>, required: bool) -> Result<Option<String>> {
    let found = if required {
        Some(fields.sized("Namespace", 1, 255)?)
    } else {
        fields.sized_opt("Namespace", 1, 255)?
    };
    if let Some(ns) = found
        && ns.starts_with(':')
    {
        return Err(invalid(ns, &fields.path("Namespace")));
    }
    Ok(found.map(str::to_owned))
}

fn unit(fields: &Fields<'_>) -> Result<Option<Unit>> {
    let Some(text) = fields.string_opt("Unit")? else {
        return Ok(None);
    };
    text.parse()
        .map(Some)
        .map_err(|_| invalid(text, &fields.path("Unit")))
}

fn dimensions(fields: &Fields<'_>, name: &str) -> Result<Vec<Dimension>> {
    let items = fields.list_opt(name, MAX_DIMENSIONS)?.unwrap_or_default();
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for Item { path, value } in &items {
        let dimension = fields.with(value, &format!("{path}."), |d| {
            Ok(Dimension {
                name: d.sized("Name", 1, 255)?.to_owned(),
                value: d.sized("Value", 1, 1024)?.to_owned(),
            })
        })?;
        if !seen.insert(dimension.name.clone()) {
            return Err(Error::InvalidParameterValue(format!(
                "The dimension name {} is given more than once in {}.",
                quote(&dimension.name),
                fields.path(name)
            )));
        }
        out.push(dimension);
    }
    Ok(out)
}

fn checked_value(value: f64, path: &str) -> Result<f64> {
    if value.is_finite() && value.abs() <= MAX_MAGNITUDE {
        Ok(value)
    } else {
        Err(invalid(&value.to_string(), path))
    }
}

fn period(fields: &Fields<'_>, name: &str, required: bool) -> Result<Option<u32>> {
    let found = fields.i64_opt(name)?;
    let Some(seconds) = found else {
        return if required {
            Err(Error::MissingParameter(fields.path(name)))
        } else {
            Ok(None)
        };
    };
    match u32::try_from(seconds) {
        Ok(s) if matches!(s, 1 | 5 | 10 | 20 | 30) || (s > 0 && s % 60 == 0) => Ok(Some(s)),
        _ => Err(Error::InvalidParameterValue(format!(
            "The parameter {} must be 1, 5, 10, 20, 30 or a multiple of 60, got {seconds}.",
            fields.path(name)
        ))),
    }
}

fn time_range(fields: &Fields<'_>) -> Result<(Timestamp, Timestamp)> {
    let start = fields.timestamp("StartTime")?;
    let end = fields.timestamp("EndTime")?;
    if start >= end {
        return Err(Error::InvalidParameterValue(
            "The parameter StartTime must be less than the parameter EndTime.".to_owned(),
        ));
    }
    Ok((start, end))
}

impl StatisticSet {
    fn read(fields: Fields<'_>) -> Result<Self> {
        let checked = |name: &str| checked_value(fields.f64(name)?, &fields.path(name));
        let set = StatisticSet {
            sample_count: checked("SampleCount")?,
            sum: checked("Sum")?,
            minimum: checked("Minimum")?,
            maximum: checked("Maximum")?,
        };
        if set.sample_count <= 0.0 {
            return Err(invalid(
                &set.sample_count.to_string(),
                &fields.path("SampleCount"),
            ));
        }
        if set.minimum > set.maximum {
            return Err(Error::InvalidParameterValue(format!(
                "The parameter {} must not be greater than {}.",
                fields.path("Minimum"),
                fields.path("Maximum")
            )));
        }
        Ok(set)
    }
}

impl MetricDatum {
    fn read(fields: Fields<'_>) -> Result<Self> {
        let metric_name = fields.sized("MetricName", 1, 255)?.to_owned();
        let dimensions = dimensions(&fields, "Dimensions")?;
        let timestamp = fields.timestamp_opt("Timestamp")?;
        let single = fields.f64_opt("Value")?;
        let values = fields.numbers_opt("Values", MAX_DATUM_VALUES)?;
        let counts = fields.numbers_opt("Counts", MAX_DATUM_VALUES)?;
        let statistics = match fields.struct_opt("StatisticValues")? {
            Some((prefix, value)) => Some(fields.with(value, &prefix, StatisticSet::read)?),
            None => None,
        };
        let given: Vec<&str> = [
            single.map(|_| "Value"),
            values.as_ref().map(|_| "Values"),
            statistics.map(|_| "StatisticValues"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let [first, second, ..] = given[..] {
            return Err(Error::InvalidParameterCombination(format!(
                "The parameters {} and {} are mutually exclusive and you have specified both.",
                fields.path(first),
                fields.path(second)
            )));
        }
        if counts.is_some() && values.is_none() {
            return Err(Error::InvalidParameterCombination(format!(
                "The parameter {} requires {}.",
                fields.path("Counts"),
                fields.path("Values")
            )));
        }
        let value = if let Some(v) = single {
            DatumValue::Single(checked_value(v, &fields.path("Value"))?)
        } else if let Some(set) = statistics {
            DatumValue::Statistics(set)
        } else if let Some(values) = values {
            let counts = counts.unwrap_or_else(|| vec![1.0; values.len()]);
            if counts.len() != values.len() {
                return Err(Error::InvalidParameterValue(format!(
                    "The parameters {} and {} must be of the same size.",
                    fields.path("Values"),
                    fields.path("Counts")
                )));
            }
            for (i, v) in values.iter().enumerate() {
                checked_value(*v, &format!("{}.member.{}", fields.path("Values"), i + 1))?;
            }
            for (i, c) in counts.iter().enumerate() {
                if !(c.is_finite() && *c >= 0.0) {
                    return Err(invalid(
                        &c.to_string(),
                        &format!("{}.member.{}", fields.path("Counts"), i + 1),
                    ));
                }
            }
            DatumValue::Distribution { values, counts }
        } else {
            return Err(Error::InvalidParameterCombination(format!(
                "One of the parameters {}, {} and {} must be specified.",
                fields.path("Value"),
                fields.path("Values"),
                fields.path("StatisticValues")
            )));
        };
        let storage_resolution_seconds = match fields.i64_opt("StorageResolution")? {
            None | Some(60) => 60,
            Some(1) => 1,
            Some(other) => {
                return Err(Error::InvalidParameterValue(format!(
                    "The parameter {} must be 1 or 60, got {other}.",
                    fields.path("StorageResolution")
                )));
            }
        };
        Ok(MetricDatum {
            metric_name,
            dimensions,
            timestamp,
            value,
            unit: unit(&fields)?,
            storage_resolution_seconds,
        })
    }
}

impl Entity {
    fn read(fields: Fields<'_>) -> Result<Self> {
        let key_attributes = fields
            .string_map_opt("KeyAttributes", 4, 32, 2048)?
            .unwrap_or_default();
        if key_attributes.len() < 2 {
            return Err(Error::InvalidParameterValue(format!(
                "The map {} must have 2 to 4 entries.",
                fields.path("KeyAttributes")
            )));
        }
        Ok(Entity {
            key_attributes,
            attributes: fields
                .string_map_opt("Attributes", 10, 256, 2048)?
                .unwrap_or_default(),
        })
    }
}

impl PutMetricData {
    fn read(fields: Fields<'_>) -> Result<Self> {
        let namespace = namespace(&fields, true)?.unwrap_or_default();
        if namespace.starts_with("AWS/") {
            return Err(Error::InvalidParameterValue(format!(
                "The value {} for parameter Namespace is invalid: namespaces beginning with AWS/ are reserved.",
                quote(&namespace)
            )));
        }
        let strict_entity_validation = fields.bool_opt("StrictEntityValidation")?.unwrap_or(false);
        let read_data = |f: &Fields<'_>| -> Result<Vec<MetricDatum>> {
            let items = f
                .list_opt("MetricData", MAX_METRIC_DATA)?
                .unwrap_or_default();
            items
                .iter()
                .map(|item| f.with(item.value, &format!("{}.", item.path), MetricDatum::read))
                .collect()
        };
        let metric_data = read_data(&fields)?;
        let entity_items = fields
            .list_opt("EntityMetricData", MAX_ENTITY_METRIC_DATA)?
            .unwrap_or_default();
        let entity_metric_data = entity_items
            .iter()
            .map(|item| {
                fields.with(item.value, &format!("{}.", item.path), |e| {
                    let entity = match e.struct_opt("Entity")? {
                        None => None,
                        Some((prefix, value)) => match e.with(value, &prefix, Entity::read) {
                            Ok(entity) => Some(entity),
                            Err(error) if strict_entity_validation => return Err(error),
                            Err(_) => None,
                        },
                    };
                    Ok(EntityMetricData {
                        entity,
                        metric_data: read_data(&e)?,
                    })
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let total = metric_data.len()
            + entity_metric_data
                .iter()
                .map(|e| e.metric_data.len())
                .sum::<usize>();
        if total == 0 {
            return Err(Error::MissingParameter("MetricData".to_owned()));
        }
        if total > MAX_METRIC_DATA {
            return Err(Error::InvalidParameterValue(format!(
                "The collections MetricData and EntityMetricData must not hold more than {MAX_METRIC_DATA} metric data in all, got {total}."
            )));
        }
        Ok(PutMetricData {
            namespace,
            metric_data,
            entity_metric_data,
            strict_entity_validation,
        })
    }
}

fn statistic_list(fields: &Fields<'_>, name: &str, max: usize) -> Result<Vec<Statistic>> {
    let texts = fields.strings_opt(name, max)?.unwrap_or_default();
    let percentiles = name == "ExtendedStatistics";
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let path = format!("{}.member.{}", fields.path(name), i + 1);
            match text.parse::<Statistic>() {
                Ok(s) if s.is_percentile() == percentiles => Ok(s),
                _ => Err(invalid(text, &path)),
            }
        })
        .collect()
}

impl GetMetricStatistics {
    fn read(fields: Fields<'_>) -> Result<Self> {
        let namespace = namespace(&fields, true)?.unwrap_or_default();
        let metric_name = fields.sized("MetricName", 1, 255)?.to_owned();
        let dimensions = dimensions(&fields, "Dimensions")?;
        let (start_time, end_time) = time_range(&fields)?;
        let period_seconds = period(&fields, "Period", true)?.unwrap_or(60);
        let plain = statistic_list(&fields, "Statistics", 5)?;
        let extended = statistic_list(&fields, "ExtendedStatistics", 10)?;
        if plain.is_empty() == extended.is_empty() {
            return Err(Error::InvalidParameterCombination(
                "Must specify either Statistics or ExtendedStatistics, but not both.".to_owned(),
            ));
        }
        Ok(GetMetricStatistics {
            metric: Metric {
                namespace,
                metric_name,
                dimensions,
            },
            start_time,
            end_time,
            period_seconds,
            statistics: plain.into_iter().chain(extended).collect(),
            unit: unit(&fields)?,
        })
    }
}

impl ListMetrics {
    fn read(fields: Fields<'_>) -> Result<Self> {
        let items = fields
            .list_opt("Dimensions", MAX_DIMENSION_FILTERS)?
            .unwrap_or_default();
        let dimensions = items
            .iter()
            .map(|item| {
                fields.with(item.value, &format!("{}.", item.path), |d| {
                    Ok(DimensionFilter {
                        name: d.sized("Name", 1, 255)?.to_owned(),
                        value: d.sized_opt("Value", 1, 1024)?.map(str::to_owned),
                    })
                })
            })
            .collect::<Result<_>>()?;
        let recently_active = match fields.string_opt("RecentlyActive")? {
            None => false,
            Some("PT3H") => true,
            Some(other) => return Err(invalid(other, "RecentlyActive")),
        };
        Ok(ListMetrics {
            namespace: namespace(&fields, false)?,
            metric_name: fields.sized_opt("MetricName", 1, 255)?.map(str::to_owned),
            dimensions,
            next_token: fields.string_opt("NextToken")?.map(str::to_owned),
            recently_active,
            include_linked_accounts: fields.bool_opt("IncludeLinkedAccounts")?.unwrap_or(false),
            owning_account: fields.string_opt("OwningAccount")?.map(str::to_owned),
        })
    }
}

fn valid_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl MetricStat {
    fn read(fields: Fields<'_>) -> Result<Self> {
        let (prefix, value) = fields
            .struct_opt("Metric")?
            .ok_or_else(|| Error::MissingParameter(fields.path("Metric")))?;
        let metric = fields.with(value, &prefix, |m| {
            Ok(Metric {
                namespace: namespace(&m, true)?.unwrap_or_default(),
                metric_name: m.sized("MetricName", 1, 255)?.to_owned(),
                dimensions: dimensions(&m, "Dimensions")?,
            })
        })?;
        let period_seconds = period(&fields, "Period", true)?.unwrap_or(60);
        let stat_text = fields.string("Stat")?;
        let stat = stat_text
            .parse()
            .map_err(|_| invalid(stat_text, &fields.path("Stat")))?;
        Ok(MetricStat {
            metric,
            period_seconds,
            stat,
            unit: unit(&fields)?,
        })
    }
}

impl MetricDataQuery {
    fn read(fields: Fields<'_>) -> Result<Self> {
        let id = fields.sized("Id", 1, 255)?;
        if !valid_id(id) {
            return Err(Error::InvalidParameterValue(format!(
                "The value {} for parameter {} is invalid: an Id must start with a lowercase letter and contain only letters, numbers and underscores.",
                quote(id),
                fields.path("Id")
            )));
        }
        let stat = match fields.struct_opt("MetricStat")? {
            Some((prefix, value)) => Some(fields.with(value, &prefix, MetricStat::read)?),
            None => None,
        };
        let expression = fields.sized_opt("Expression", 1, 2048)?;
        let kind = match (stat, expression) {
            (Some(stat), None) => QueryKind::MetricStat(stat),
            (None, Some(expression)) => QueryKind::Expression(expression.to_owned()),
            _ => {
                return Err(Error::InvalidParameterValue(format!(
                    "Exactly one of {} and {} must be specified.",
                    fields.path("MetricStat"),
                    fields.path("Expression")
                )));
            }
        };
        Ok(MetricDataQuery {
            id: id.to_owned(),
            kind,
            label: fields.string_opt("Label")?.map(str::to_owned),
            return_data: fields.bool_opt("ReturnData")?.unwrap_or(true),
            period_seconds: period(&fields, "Period", false)?,
            account_id: fields.string_opt("AccountId")?.map(str::to_owned),
        })
    }
}

/// A list of `MetricDataQuery` (`GetMetricData`'s `MetricDataQueries`, `PutMetricAlarm`'s
/// `Metrics`): at most `max`, ids unique.
fn metric_queries(
    fields: &Fields<'_>,
    name: &str,
    max: usize,
    required: bool,
) -> Result<Vec<MetricDataQuery>> {
    let items = match fields.list_opt(name, max)? {
        Some(items) if !items.is_empty() => items,
        _ if required => return Err(Error::MissingParameter(fields.path(name))),
        _ => return Ok(Vec::new()),
    };
    let mut ids = HashSet::new();
    let mut queries = Vec::with_capacity(items.len());
    for item in &items {
        let query = fields.with(
            item.value,
            &format!("{}.", item.path),
            MetricDataQuery::read,
        )?;
        if !ids.insert(query.id.clone()) {
            return Err(Error::InvalidParameterValue(format!(
                "The Id {} is used by more than one query ({}.Id).",
                quote(&query.id),
                item.path
            )));
        }
        queries.push(query);
    }
    Ok(queries)
}

impl GetMetricData {
    fn read(fields: Fields<'_>) -> Result<Self> {
        let queries = metric_queries(&fields, "MetricDataQueries", MAX_METRIC_DATA_QUERIES, true)?;
        let (start_time, end_time) = time_range(&fields)?;
        let scan_by = match fields.string_opt("ScanBy")? {
            None | Some("TimestampDescending") => ScanBy::TimestampDescending,
            Some("TimestampAscending") => ScanBy::TimestampAscending,
            Some(other) => return Err(invalid(other, "ScanBy")),
        };
        let max_datapoints = match fields.i64_opt("MaxDatapoints")? {
            None => None,
            Some(n) => Some(
                u32::try_from(n)
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| invalid(&n.to_string(), "MaxDatapoints"))?,
            ),
        };
        let label_timezone = match fields.struct_opt("LabelOptions")? {
            Some((prefix, value)) => fields.with(value, &prefix, |l| {
                Ok(l.string_opt("Timezone")?.map(str::to_owned))
            })?,
            None => None,
        };
        Ok(GetMetricData {
            metric_data_queries: queries,
            start_time,
            end_time,
            next_token: fields.string_opt("NextToken")?.map(str::to_owned),
            scan_by,
            max_datapoints,
            label_timezone,
        })
    }
}

// === alarm operations ===

/// Most names in one `AlarmNames` list (the shape's `max`).
pub const MAX_ALARM_NAMES: usize = 100;
/// Most actions in one action list (CloudWatch's quota).
pub const MAX_ALARM_ACTIONS: usize = 5;

/// `PutMetricAlarm` of a metric alarm on one metric. The shapes are checked here; the alarm's
/// own rules (periods, M of N, thresholds, action forms) are the alarms core's, the same as
/// for an alarm file's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PutMetricAlarm {
    /// `AlarmName`, 1 to 255 characters.
    pub alarm_name: String,
    /// `AlarmDescription`, up to 1024 characters.
    pub alarm_description: Option<String>,
    /// `ActionsEnabled` (default true).
    pub actions_enabled: Option<bool>,
    /// `OKActions`.
    pub ok_actions: Vec<String>,
    /// `AlarmActions`.
    pub alarm_actions: Vec<String>,
    /// `InsufficientDataActions`.
    pub insufficient_data_actions: Vec<String>,
    /// `MetricName`.
    pub metric_name: Option<String>,
    /// `Namespace`.
    pub namespace: Option<String>,
    /// `Statistic` or `ExtendedStatistic` (at most one of them), as sent.
    pub statistic: Option<String>,
    /// `Dimensions`.
    pub dimensions: Vec<Dimension>,
    /// `Period`, as sent.
    pub period_seconds: Option<i64>,
    /// `Unit`.
    pub unit: Option<Unit>,
    /// `EvaluationPeriods`.
    pub evaluation_periods: i64,
    /// `DatapointsToAlarm`.
    pub datapoints_to_alarm: Option<i64>,
    /// `Threshold`.
    pub threshold: Option<f64>,
    /// `ComparisonOperator`, as sent.
    pub comparison_operator: String,
    /// `TreatMissingData`, as sent.
    pub treat_missing_data: Option<String>,
    /// `EvaluateLowSampleCountPercentile`, as sent.
    pub evaluate_low_sample_count_percentile: Option<String>,
    /// `Tags`: kept when the alarm is created, ignored when it is replaced (as CloudWatch;
    /// `TagResource` changes them then).
    pub tags: Vec<Tag>,
    /// `Metrics`: a metric-math alarm's queries (instead of `MetricName`, `Namespace`,
    /// `Statistic`, `Dimensions`, `Period`, `Unit`). Their rules (at most 10, one returned
    /// series, equal periods) are the alarms core's.
    pub metrics: Vec<MetricDataQuery>,
    /// `ThresholdMetricId`: the id of the `ANOMALY_DETECTION_BAND` query of an anomaly alarm.
    pub threshold_metric_id: Option<String>,
}

/// `DescribeAlarms`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DescribeAlarms {
    /// `AlarmNames`, at most 100.
    pub alarm_names: Vec<String>,
    /// `AlarmNamePrefix` (not with `AlarmNames`).
    pub alarm_name_prefix: Option<String>,
    /// `AlarmTypes`: `MetricAlarm`, `CompositeAlarm`; only metric alarms when empty.
    pub alarm_types: Vec<String>,
    /// `StateValue`.
    pub state_value: Option<String>,
    /// `ActionPrefix`.
    pub action_prefix: Option<String>,
    /// `MaxRecords`, 1 to 100.
    pub max_records: Option<u32>,
    /// `NextToken`, as sent.
    pub next_token: Option<String>,
    /// `ChildrenOfAlarmName`: only the alarms this composite alarm's rule names (of both
    /// types); with `MaxRecords` and `NextToken` only.
    pub children_of_alarm_name: Option<String>,
    /// `ParentsOfAlarmName`: only the composite alarms whose rules name this alarm; with
    /// `MaxRecords` and `NextToken` only.
    pub parents_of_alarm_name: Option<String>,
}

/// `SetAlarmState`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetAlarmState {
    /// `AlarmName`.
    pub alarm_name: String,
    /// `StateValue`.
    pub state_value: String,
    /// `StateReason`.
    pub state_reason: String,
    /// `StateReasonData`: JSON text.
    pub state_reason_data: Option<String>,
}

/// `DescribeAlarmHistory`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DescribeAlarmHistory {
    /// `AlarmName`; every alarm's history when absent.
    pub alarm_name: Option<String>,
    /// `AlarmTypes`.
    pub alarm_types: Vec<String>,
    /// `HistoryItemType`: `ConfigurationUpdate`, `StateUpdate`, `Action`.
    pub history_item_type: Option<String>,
    /// `StartDate`.
    pub start_date: Option<Timestamp>,
    /// `EndDate`.
    pub end_date: Option<Timestamp>,
    /// `MaxRecords`, 1 to 100.
    pub max_records: Option<u32>,
    /// `NextToken`, as sent.
    pub next_token: Option<String>,
    /// `ScanBy` (newest first by default).
    pub scan_by: ScanBy,
}

/// `DescribeAlarmsForMetric`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribeAlarmsForMetric {
    /// The metric (`Namespace`, `MetricName`, `Dimensions`).
    pub metric: Metric,
    /// `Statistic` or `ExtendedStatistic`, as sent.
    pub statistic: Option<String>,
    /// `Period`.
    pub period_seconds: Option<u32>,
    /// `Unit`.
    pub unit: Option<Unit>,
}

fn alarm_name(fields: &Fields<'_>, name: &str) -> Result<String> {
    Ok(fields.sized(name, 1, 255)?.to_owned())
}

fn alarm_names(fields: &Fields<'_>, required: bool) -> Result<Vec<String>> {
    let names = fields.strings_opt("AlarmNames", MAX_ALARM_NAMES)?;
    let names = match names {
        Some(n) => n,
        None if required => return Err(Error::MissingParameter("AlarmNames".to_owned())),
        None => Vec::new(),
    };
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let chars = n.chars().count();
            if (1..=255).contains(&chars) {
                Ok((*n).to_owned())
            } else {
                Err(Error::InvalidParameterValue(format!(
                    "The parameter AlarmNames.member.{} must be between 1 and 255 characters long, got {chars}.",
                    i + 1
                )))
            }
        })
        .collect()
}

fn actions(fields: &Fields<'_>, name: &str) -> Result<Vec<String>> {
    let list = fields
        .strings_opt(name, MAX_ALARM_ACTIONS)?
        .unwrap_or_default();
    for (i, a) in list.iter().enumerate() {
        let chars = a.chars().count();
        if !(1..=1024).contains(&chars) {
            return Err(Error::InvalidParameterValue(format!(
                "The parameter {}.member.{} must be between 1 and 1024 characters long, got {chars}.",
                fields.path(name),
                i + 1
            )));
        }
    }
    Ok(list.into_iter().map(str::to_owned).collect())
}

fn one_of(fields: &Fields<'_>, name: &str, allowed: &[&str]) -> Result<Option<String>> {
    match fields.string_opt(name)? {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v.to_owned())),
        Some(v) => Err(Error::InvalidParameterValue(format!(
            "The value {} for parameter {} is invalid: it must be one of {}.",
            quote(v),
            fields.path(name),
            allowed.join(", ")
        ))),
    }
}

fn max_records(fields: &Fields<'_>) -> Result<Option<u32>> {
    match fields.i64_opt("MaxRecords")? {
        None => Ok(None),
        Some(n @ 1..=100) => Ok(u32::try_from(n).ok()),
        Some(n) => Err(Error::InvalidParameterValue(format!(
            "The parameter MaxRecords must be between 1 and 100, got {n}."
        ))),
    }
}

/// The state values of an alarm.
pub const STATE_VALUES: &[&str] = &["OK", "ALARM", "INSUFFICIENT_DATA"];
/// The alarm types.
pub const ALARM_TYPES: &[&str] = &["CompositeAlarm", "MetricAlarm"];

fn alarm_types(fields: &Fields<'_>) -> Result<Vec<String>> {
    let types = fields.strings_opt("AlarmTypes", 2)?.unwrap_or_default();
    types
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if ALARM_TYPES.contains(t) {
                Ok((*t).to_owned())
            } else {
                Err(invalid(t, &format!("AlarmTypes.member.{}", i + 1)))
            }
        })
        .collect()
}

/// `Statistic` or `ExtendedStatistic`, at most one.
fn alarm_statistic(fields: &Fields<'_>) -> Result<Option<String>> {
    let plain = one_of(
        fields,
        "Statistic",
        &["SampleCount", "Average", "Sum", "Minimum", "Maximum"],
    )?;
    let extended = fields.string_opt("ExtendedStatistic")?;
    match (plain, extended) {
        (Some(_), Some(_)) => Err(Error::InvalidParameterCombination(
            "The parameters Statistic and ExtendedStatistic are mutually exclusive and you have specified both.".to_owned(),
        )),
        (Some(s), None) => Ok(Some(s)),
        (None, Some(e)) => Ok(Some(e.to_owned())),
        (None, None) => Ok(None),
    }
}

impl PutMetricAlarm {
    fn read(fields: Fields<'_>) -> Result<Self> {
        let metrics = metric_queries(&fields, "Metrics", MAX_METRIC_DATA_QUERIES, false)?;
        if !metrics.is_empty() {
            for single in [
                "MetricName",
                "Namespace",
                "Statistic",
                "ExtendedStatistic",
                "Dimensions",
                "Period",
                "Unit",
            ] {
                if fields.has(single) {
                    return Err(Error::InvalidParameterCombination(format!(
                        "Metrics and {single} are mutually exclusive: a metric math alarm \
                         names its metrics in Metrics only."
                    )));
                }
            }
        }
        let alarm_name = alarm_name(&fields, "AlarmName")?;
        let comparison_operator = fields.string("ComparisonOperator")?.to_owned();
        let evaluation_periods = fields
            .i64_opt("EvaluationPeriods")?
            .ok_or_else(|| Error::MissingParameter("EvaluationPeriods".to_owned()))?;
        let threshold = fields.f64_opt("Threshold")?;
        if let Some(t) = threshold {
            checked_value(t, "Threshold")?;
        }
        Ok(PutMetricAlarm {
            alarm_name,
            alarm_description: fields
                .sized_opt("AlarmDescription", 0, 1024)?
                .map(str::to_owned),
            actions_enabled: fields.bool_opt("ActionsEnabled")?,
            ok_actions: actions(&fields, "OKActions")?,
            alarm_actions: actions(&fields, "AlarmActions")?,
            insufficient_data_actions: actions(&fields, "InsufficientDataActions")?,
            metric_name: fields.sized_opt("MetricName", 1, 255)?.map(str::to_owned),
            namespace: namespace(&fields, false)?,
            statistic: alarm_statistic(&fields)?,
            dimensions: dimensions(&fields, "Dimensions")?,
            period_seconds: fields.i64_opt("Period")?,
            unit: unit(&fields)?,
            evaluation_periods,
            datapoints_to_alarm: fields.i64_opt("DatapointsToAlarm")?,
            threshold,
            comparison_operator,
            treat_missing_data: fields
                .sized_opt("TreatMissingData", 1, 255)?
                .map(str::to_owned),
            evaluate_low_sample_count_percentile: fields
                .sized_opt("EvaluateLowSampleCountPercentile", 1, 255)?
                .map(str::to_owned),
            tags: tags(&fields, false)?,
            metrics,
            threshold_metric_id: fields
                .sized_opt("ThresholdMetricId", 1, 255)?
                .map(str::to_owned),
        })
    }
}

impl DescribeAlarms {
    fn read(fields: Fields<'_>) -> Result<Self> {
        let alarm_names = alarm_names(&fields, false)?;
        let alarm_name_prefix = fields
            .sized_opt("AlarmNamePrefix", 1, 255)?
            .map(str::to_owned);
        if !alarm_names.is_empty() && alarm_name_prefix.is_some() {
            return Err(Error::InvalidParameterCombination(
                "The parameters AlarmNames and AlarmNamePrefix are mutually exclusive and you have specified both.".to_owned(),
            ));
        }
        let children_of_alarm_name = fields
            .sized_opt("ChildrenOfAlarmName", 1, 255)?
            .map(str::to_owned);
        let parents_of_alarm_name = fields
            .sized_opt("ParentsOfAlarmName", 1, 255)?
            .map(str::to_owned);
        if let Some(relation) = [
            ("ChildrenOfAlarmName", children_of_alarm_name.is_some()),
            ("ParentsOfAlarmName", parents_of_alarm_name.is_some()),
        ]
        .into_iter()
        .find_map(|(name, given)| given.then_some(name))
        {
            let others = [
                "AlarmNames",
                "AlarmNamePrefix",
                "AlarmTypes",
                "StateValue",
                "ActionPrefix",
                "ChildrenOfAlarmName",
                "ParentsOfAlarmName",
            ];
            if let Some(other) = others.into_iter().find(|o| *o != relation && fields.has(o)) {
                return Err(Error::InvalidParameterCombination(format!(
                    "With {relation}, no other parameter may be given but MaxRecords and \
                     NextToken; {other} was."
                )));
            }
        }
        Ok(DescribeAlarms {
            children_of_alarm_name,
            parents_of_alarm_name,
            alarm_names,
            alarm_name_prefix,
            alarm_types: alarm_types(&fields)?,
            state_value: one_of(&fields, "StateValue", STATE_VALUES)?,
            action_prefix: fields
                .sized_opt("ActionPrefix", 1, 1024)?
                .map(str::to_owned),
            max_records: max_records(&fields)?,
            next_token: fields.string_opt("NextToken")?.map(str::to_owned),
        })
    }
}

impl SetAlarmState {
    fn read(fields: Fields<'_>) -> Result<Self> {
        let alarm_name = alarm_name(&fields, "AlarmName")?;
        let state_value = one_of(&fields, "StateValue", STATE_VALUES)?
            .ok_or_else(|| Error::MissingParameter("StateValue".to_owned()))?;
        Ok(SetAlarmState {
            alarm_name,
            state_value,
            state_reason: fields.sized("StateReason", 0, 1023)?.to_owned(),
            state_reason_data: fields
                .sized_opt("StateReasonData", 0, 4000)?
                .map(str::to_owned),
        })
    }
}

impl DescribeAlarmHistory {
    fn read(fields: Fields<'_>) -> Result<Self> {
        let scan_by = match fields.string_opt("ScanBy")? {
            None | Some("TimestampDescending") => ScanBy::TimestampDescending,
            Some("TimestampAscending") => ScanBy::TimestampAscending,
            Some(other) => return Err(invalid(other, "ScanBy")),
        };
        Ok(DescribeAlarmHistory {
            alarm_name: fields.sized_opt("AlarmName", 1, 255)?.map(str::to_owned),
            alarm_types: alarm_types(&fields)?,
            history_item_type: one_of(
                &fields,
                "HistoryItemType",
                &[
                    "ConfigurationUpdate",
                    "StateUpdate",
                    "Action",
                    "AlarmContributorStateUpdate",
                    "AlarmContributorAction",
                ],
            )?,
            start_date: fields.timestamp_opt("StartDate")?,
            end_date: fields.timestamp_opt("EndDate")?,
            max_records: max_records(&fields)?,
            next_token: fields.string_opt("NextToken")?.map(str::to_owned),
            scan_by,
        })
    }
}

impl DescribeAlarmsForMetric {
    fn read(fields: Fields<'_>) -> Result<Self> {
        Ok(DescribeAlarmsForMetric {
            metric: Metric {
                namespace: namespace(&fields, true)?.unwrap_or_default(),
                metric_name: fields.sized("MetricName", 1, 255)?.to_owned(),
                dimensions: dimensions(&fields, "Dimensions")?,
            },
            statistic: alarm_statistic(&fields)?,
            period_seconds: period(&fields, "Period", false)?,
            unit: unit(&fields)?,
        })
    }
}

/// `PutCompositeAlarm`. As for `PutMetricAlarm`, the rule's syntax and references and the
/// suppressor are the alarms core's to check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutCompositeAlarm {
    /// `AlarmName`.
    pub alarm_name: String,
    /// `AlarmRule`, 1 to 10240 characters.
    pub alarm_rule: String,
    /// `AlarmDescription`.
    pub alarm_description: Option<String>,
    /// `ActionsEnabled`.
    pub actions_enabled: Option<bool>,
    /// `OKActions`.
    pub ok_actions: Vec<String>,
    /// `AlarmActions`.
    pub alarm_actions: Vec<String>,
    /// `InsufficientDataActions`.
    pub insufficient_data_actions: Vec<String>,
    /// `ActionsSuppressor`.
    pub actions_suppressor: Option<String>,
    /// `ActionsSuppressorWaitPeriod`.
    pub actions_suppressor_wait_period: Option<i64>,
    /// `ActionsSuppressorExtensionPeriod`.
    pub actions_suppressor_extension_period: Option<i64>,
    /// `Tags`, as for [`PutMetricAlarm::tags`].
    pub tags: Vec<Tag>,
}

impl PutCompositeAlarm {
    fn read(fields: Fields<'_>) -> Result<Self> {
        let r = PutCompositeAlarm {
            alarm_name: alarm_name(&fields, "AlarmName")?,
            alarm_rule: fields.sized("AlarmRule", 1, 10240)?.to_owned(),
            alarm_description: fields
                .sized_opt("AlarmDescription", 0, 1024)?
                .map(str::to_owned),
            actions_enabled: fields.bool_opt("ActionsEnabled")?,
            ok_actions: actions(&fields, "OKActions")?,
            alarm_actions: actions(&fields, "AlarmActions")?,
            insufficient_data_actions: actions(&fields, "InsufficientDataActions")?,
            actions_suppressor: fields
                .sized_opt("ActionsSuppressor", 1, 1600)?
                .map(str::to_owned),
            actions_suppressor_wait_period: fields.i64_opt("ActionsSuppressorWaitPeriod")?,
            actions_suppressor_extension_period: fields
                .i64_opt("ActionsSuppressorExtensionPeriod")?,
            tags: tags(&fields, false)?,
        };
        let periods = r.actions_suppressor_wait_period.is_some()
            || r.actions_suppressor_extension_period.is_some();
        if periods && r.actions_suppressor.is_none() {
            return Err(Error::InvalidParameterCombination(
                "ActionsSuppressorWaitPeriod and ActionsSuppressorExtensionPeriod require ActionsSuppressor.".to_owned(),
            ));
        }
        Ok(r)
    }
}

/// Most tags of one alarm (CloudWatch's quota, and the `TagList` shape's).
pub const MAX_TAGS: usize = 50;

/// A tag of an alarm (`Tag`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tag {
    /// `Key`, 1 to 128 characters, not starting with `aws:`.
    pub key: String,
    /// `Value`, 0 to 256 characters.
    pub value: String,
}

/// `TagResource`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagResource {
    /// `ResourceARN`, as sent.
    pub resource_arn: String,
    /// `Tags`: added, or replacing the value of a key already there.
    pub tags: Vec<Tag>,
}

/// `UntagResource`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UntagResource {
    /// `ResourceARN`, as sent.
    pub resource_arn: String,
    /// `TagKeys` to remove (keys not there are passed over).
    pub tag_keys: Vec<String>,
}

fn resource_arn(fields: &Fields<'_>) -> Result<String> {
    Ok(fields.sized("ResourceARN", 1, 1024)?.to_owned())
}

fn tag_key(key: &str, path: &str) -> Result<()> {
    let chars = key.chars().count();
    if !(1..=128).contains(&chars) {
        return Err(Error::InvalidParameterValue(format!(
            "The parameter {path} must be between 1 and 128 characters long, got {chars}."
        )));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(Error::InvalidParameterValue(format!(
            "The parameter {path} must not start with aws: (reserved for AWS), got {}.",
            quote(key)
        )));
    }
    Ok(())
}

/// `Tags`: at most [`MAX_TAGS`], each key once.
fn tags(fields: &Fields<'_>, required: bool) -> Result<Vec<Tag>> {
    let items = match fields.list_opt("Tags", MAX_TAGS)? {
        Some(items) => items,
        None if required => return Err(Error::MissingParameter(fields.path("Tags"))),
        None => return Ok(Vec::new()),
    };
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for Item { path, value } in &items {
        let tag = fields.with(value, &format!("{path}."), |t| {
            let key = t.string("Key")?;
            tag_key(key, &t.path("Key"))?;
            Ok(Tag {
                key: key.to_owned(),
                value: t.sized("Value", 0, 256)?.to_owned(),
            })
        })?;
        if !seen.insert(tag.key.clone()) {
            return Err(Error::InvalidParameterValue(format!(
                "The tag key {} is given more than once in {}.",
                quote(&tag.key),
                fields.path("Tags")
            )));
        }
        out.push(tag);
    }
    Ok(out)
}

impl UntagResource {
    fn read(fields: &Fields<'_>) -> Result<Self> {
        let resource_arn = resource_arn(fields)?;
        let keys = fields
            .strings_opt("TagKeys", MAX_TAGS)?
            .ok_or_else(|| Error::MissingParameter(fields.path("TagKeys")))?;
        for (i, k) in keys.iter().enumerate() {
            tag_key(k, &format!("{}.member.{}", fields.path("TagKeys"), i + 1))?;
        }
        Ok(UntagResource {
            resource_arn,
            tag_keys: keys.into_iter().map(str::to_owned).collect(),
        })
    }
}

/// Most `ExcludedTimeRanges` of an anomaly detector (CloudWatch's).
pub const MAX_EXCLUDED_TIME_RANGES: usize = 10;

/// An anomaly detector on one metric and statistic (`SingleMetricAnomalyDetector`, or the
/// deprecated top-level `Namespace`/`MetricName`/`Dimensions`/`Stat`), with its
/// `Configuration`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnomalyDetector {
    /// The metric.
    pub metric: Metric,
    /// `Stat`, as sent (checked as a statistic).
    pub stat: String,
    /// `Configuration.ExcludedTimeRanges`: `[start, end)` pairs.
    pub excluded_time_ranges: Vec<(Timestamp, Timestamp)>,
    /// `Configuration.MetricTimezone`.
    pub metric_timezone: Option<String>,
}

impl AnomalyDetector {
    /// The detector of a request: `SingleMetricAnomalyDetector` or the top-level members;
    /// `MetricMathAnomalyDetector` is refused (models of expressions are trained for math
    /// alarms, not through this operation).
    fn read(fields: &Fields<'_>, with_configuration: bool) -> Result<Self> {
        if fields.has("MetricMathAnomalyDetector") {
            return Err(Error::InvalidParameterValue(
                "Thermostat does not take MetricMathAnomalyDetector: an anomaly alarm on an \
                 expression trains its own model (ANOMALY_DETECTION_BAND over the expression's \
                 id in PutMetricAlarm's Metrics); give SingleMetricAnomalyDetector."
                    .to_owned(),
            ));
        }
        let (metric, stat) = match fields.struct_opt("SingleMetricAnomalyDetector")? {
            Some((prefix, value)) => fields.with(value, &prefix, Self::metric_and_stat)?,
            None => Self::metric_and_stat(*fields)?,
        };
        let mut out = AnomalyDetector {
            metric,
            stat,
            ..AnomalyDetector::default()
        };
        if let Some((prefix, value)) = fields.struct_opt("Configuration")? {
            if !with_configuration {
                return Ok(out);
            }
            fields.with(value, &prefix, |c| {
                let ranges = c
                    .list_opt("ExcludedTimeRanges", MAX_EXCLUDED_TIME_RANGES)?
                    .unwrap_or_default();
                for Item { path, value } in &ranges {
                    let range = c.with(value, &format!("{path}."), |r| {
                        Ok((r.timestamp("StartTime")?, r.timestamp("EndTime")?))
                    })?;
                    if range.0 >= range.1 {
                        return Err(Error::InvalidParameterValue(format!(
                            "The parameter {path}.StartTime must be before its EndTime."
                        )));
                    }
                    out.excluded_time_ranges.push(range);
                }
                out.metric_timezone = c.sized_opt("MetricTimezone", 1, 50)?.map(str::to_owned);
                Ok(())
            })?;
        }
        Ok(out)
    }

    fn metric_and_stat(f: Fields<'_>) -> Result<(Metric, String)> {
        let metric = Metric {
            namespace: namespace(&f, true)?.unwrap_or_default(),
            metric_name: f.sized("MetricName", 1, 255)?.to_owned(),
            dimensions: dimensions(&f, "Dimensions")?,
        };
        let stat = f.sized("Stat", 1, 50)?;
        stat.parse::<Statistic>().map_err(|e| {
            Error::InvalidParameterValue(format!("The parameter {} {e}.", f.path("Stat")))
        })?;
        Ok((metric, stat.to_owned()))
    }
}

/// `DescribeAnomalyDetectors`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DescribeAnomalyDetectors {
    /// `Namespace` filter.
    pub namespace: Option<String>,
    /// `MetricName` filter.
    pub metric_name: Option<String>,
    /// `Dimensions` filter: detectors with exactly these dimensions.
    pub dimensions: Vec<Dimension>,
    /// `MaxResults`, 1 to 100.
    pub max_results: Option<u32>,
    /// `NextToken`, as sent.
    pub next_token: Option<String>,
}

impl DescribeAnomalyDetectors {
    fn read(fields: &Fields<'_>) -> Result<Self> {
        if let Some(types) = fields.strings_opt("AnomalyDetectorTypes", 2)?
            && let Some(t) = types
                .iter()
                .find(|t| !["SINGLE_METRIC", "METRIC_MATH"].contains(t))
        {
            return Err(invalid(t, "AnomalyDetectorTypes"));
        }
        let max_results = match fields.i64_opt("MaxResults")? {
            None => None,
            Some(n @ 1..=100) => u32::try_from(n).ok(),
            Some(n) => {
                return Err(Error::InvalidParameterValue(format!(
                    "The parameter MaxResults must be between 1 and 100, got {n}."
                )));
            }
        };
        Ok(DescribeAnomalyDetectors {
            namespace: namespace(fields, false)?,
            metric_name: fields.sized_opt("MetricName", 1, 255)?.map(str::to_owned),
            dimensions: dimensions(fields, "Dimensions")?,
            max_results,
            next_token: fields.string_opt("NextToken")?.map(str::to_owned),
        })
    }
}
