//! CloudWatch's alarm operations connected to the alarm runtime: the dashboards'
//! [`CloudWatchAlarms`] port over [`AlarmRuntime`] (both sources of alarms: the
//! configuration files' and those created through the API), with history pages through the
//! dashboards' [`AlarmApi`].
//!
//! `PutMetricAlarm` is validated by the alarms core exactly as an alarm file's entry: the
//! request is written as one `alarms:` entry of a file named `PutMetricAlarm` and read by
//! [`thermostat_alarms::validate`], so both sources obey the same rules, and the core's
//! messages come back as `InvalidParameterValue` (or `MissingParameter`) naming CloudWatch's
//! parameter.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use thermostat_alarms::history::AlarmType;
use thermostat_alarms::model::Alarm;
use thermostat_alarms::{AlarmState, StateValue};
use thermostat_alarms_runtime::{AlarmEntry, AlarmListing, AlarmRuntime, AlarmTags};
use thermostat_cloudwatch::Error;
use thermostat_cloudwatch::output::{
    AlarmHistoryItem, AnomalyDetectorOutput, CompositeAlarm, DescribeAlarmHistoryOutput,
    DescribeAlarmsOutput, DescribeAnomalyDetectorsOutput, MetricAlarm,
};
use thermostat_cloudwatch::request::{
    AnomalyDetector, DescribeAlarmHistory, DescribeAlarms, DescribeAlarmsForMetric,
    DescribeAnomalyDetectors, MetricDataQuery, MetricStat as CwMetricStat, PutCompositeAlarm,
    PutMetricAlarm, QueryKind, ScanBy, SetAlarmState, Tag, TagResource, UntagResource,
};
use thermostat_dashboards::alarms::{AlarmApi, AlarmApiError, HistoryQuery};
use thermostat_dashboards::cloudwatch::CloudWatchAlarms;
use thermostat_metrics::Timestamp;
use thermostat_scaler_runtime::ScalingRuntime;
use thermostat_statedb::{StateDb, StoredDetector};
use thermostat_yaml::Rule;

/// The file name API alarms are validated under (and their `source`).
const API_SOURCE: &str = "PutMetricAlarm";
/// The file name API composite alarms are validated under.
const API_COMPOSITE_SOURCE: &str = "PutCompositeAlarm";
/// `DescribeAlarms`' page size when `MaxRecords` is absent (CloudWatch's).
const DEFAULT_MAX_RECORDS: usize = 50;
/// The prefix of the `NextToken`s of `DescribeAlarms`.
const ALARMS_TOKEN_PREFIX: &str = "a1.";

/// The alarm runtime as CloudWatch's alarm operations see it.
#[derive(Debug)]
pub struct CloudWatchRuntimeAlarms {
    runtime: Arc<AlarmRuntime>,
    api: Arc<dyn AlarmApi>,
    /// The scaling groups, which an alarm's scaling actions must name.
    scaling: Arc<ScalingRuntime>,
    /// Where `PutAnomalyDetector`'s detectors are kept.
    db: Arc<dyn Detectors>,
    /// `arn:aws:cloudwatch:<region>:<account>:alarm:`.
    arn_prefix: String,
}

impl CloudWatchRuntimeAlarms {
    /// The port over `runtime`, history through `api`, scaling actions checked against the
    /// groups of `scaling`, ARNs in `region` and `account_id`.
    pub fn new(
        runtime: Arc<AlarmRuntime>,
        api: Arc<dyn AlarmApi>,
        scaling: Arc<ScalingRuntime>,
        db: Arc<dyn Detectors>,
        region: &str,
        account_id: &str,
    ) -> Self {
        CloudWatchRuntimeAlarms {
            runtime,
            api,
            scaling,
            db,
            arn_prefix: format!("arn:aws:cloudwatch:{region}:{account_id}:alarm:"),
        }
    }
}

/// A JSON string, which YAML reads as a double-quoted scalar.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// The request as one entry of an alarm file.
fn alarm_yaml(r: &PutMetricAlarm) -> String {
    let mut y = String::from("alarms:\n");
    y.push_str(&format!("  - name: {}\n", quoted(&r.alarm_name)));
    let mut field = |key: &str, value: String| y.push_str(&format!("    {key}: {value}\n"));
    if let Some(d) = &r.alarm_description {
        field("description", quoted(d));
    }
    if let Some(n) = &r.namespace {
        field("namespace", quoted(n));
    }
    if let Some(m) = &r.metric_name {
        field("metric_name", quoted(m));
    }
    if let Some(s) = &r.statistic {
        field("statistic", quoted(s));
    }
    if let Some(p) = r.period_seconds {
        field("period_seconds", p.to_string());
    }
    field("evaluation_periods", r.evaluation_periods.to_string());
    if let Some(m) = r.datapoints_to_alarm {
        field("datapoints_to_alarm", m.to_string());
    }
    if let Some(t) = r.threshold {
        field("threshold", t.to_string());
    }
    field("comparison_operator", quoted(&r.comparison_operator));
    if let Some(t) = &r.treat_missing_data {
        field("treat_missing_data", quoted(t));
    }
    if let Some(l) = &r.evaluate_low_sample_count_percentile {
        field("evaluate_low_sample_count_percentile", quoted(l));
    }
    if let Some(u) = r.unit {
        field("unit", quoted(u.as_str()));
    }
    if let Some(e) = r.actions_enabled {
        field("actions_enabled", e.to_string());
    }
    if !r.dimensions.is_empty() {
        y.push_str("    dimensions:\n");
        for d in &r.dimensions {
            y.push_str(&format!(
                "      {}: {}\n",
                quoted(&d.name),
                quoted(&d.value)
            ));
        }
    }
    for (key, list) in [
        ("alarm_actions", &r.alarm_actions),
        ("ok_actions", &r.ok_actions),
        ("insufficient_data_actions", &r.insufficient_data_actions),
    ] {
        if !list.is_empty() {
            y.push_str(&format!("    {key}:\n"));
            for a in list {
                y.push_str(&format!("      - {}\n", quoted(a)));
            }
        }
    }
    if let Some(t) = &r.threshold_metric_id {
        y.push_str(&format!("    threshold_metric_id: {}\n", quoted(t)));
    }
    if !r.metrics.is_empty() {
        y.push_str("    metrics:\n");
        for q in &r.metrics {
            metric_query_yaml(&mut y, q);
        }
    }
    y
}

/// One `Metrics` entry as an entry of an alarm file's `metrics:`.
fn metric_query_yaml(y: &mut String, q: &MetricDataQuery) {
    y.push_str(&format!("      - id: {}\n", quoted(&q.id)));
    match &q.kind {
        QueryKind::MetricStat(stat) => {
            y.push_str("        metric_stat:\n");
            y.push_str(&format!(
                "          namespace: {}\n          metric_name: {}\n          period_seconds: {}\n          statistic: {}\n",
                quoted(&stat.metric.namespace),
                quoted(&stat.metric.metric_name),
                stat.period_seconds,
                quoted(stat.stat.name())
            ));
            if let Some(u) = stat.unit {
                y.push_str(&format!("          unit: {}\n", quoted(u.as_str())));
            }
            if !stat.metric.dimensions.is_empty() {
                y.push_str("          dimensions:\n");
                for d in &stat.metric.dimensions {
                    y.push_str(&format!(
                        "            {}: {}\n",
                        quoted(&d.name),
                        quoted(&d.value)
                    ));
                }
            }
        }
        QueryKind::Expression(e) => y.push_str(&format!("        expression: {}\n", quoted(e))),
    }
    if let Some(l) = &q.label {
        y.push_str(&format!("        label: {}\n", quoted(l)));
    }
    y.push_str(&format!("        return_data: {}\n", q.return_data));
    if let Some(p) = q.period_seconds {
        y.push_str(&format!("        period_seconds: {p}\n"));
    }
}

/// CloudWatch's path of a field inside `metrics:` (`metrics[0].metric_stat.period_seconds`
/// is `Metrics.member.1.MetricStat.Period`).
fn metrics_parameter(rest: &str) -> Option<String> {
    let rest = rest.strip_prefix("metrics")?;
    let (index, tail) = if let Some(r) = rest.strip_prefix('[') {
        let (i, t) = r.split_once(']')?;
        (i.parse::<usize>().ok()?, t)
    } else if let Some(r) = rest.strip_prefix('.') {
        let (i, t) = r.split_once('.').unwrap_or((r, ""));
        (i.parse::<usize>().ok()?, t)
    } else {
        return Some("Metrics".to_owned());
    };
    let mut out = format!("Metrics.member.{}", index + 1);
    for part in tail.split('.').filter(|p| !p.is_empty()) {
        let name = match part {
            "id" => "Id",
            "metric_stat" => "MetricStat",
            "namespace" => "Metric.Namespace",
            "metric_name" => "Metric.MetricName",
            "dimensions" => "Metric.Dimensions",
            "period_seconds" => "Period",
            "statistic" => "Stat",
            "unit" => "Unit",
            "expression" => "Expression",
            "label" => "Label",
            "return_data" => "ReturnData",
            _ => break,
        };
        out.push('.');
        out.push_str(name);
    }
    Some(out)
}

/// CloudWatch's name of an alarm file's field.
fn parameter(yaml_field: &str) -> &str {
    match yaml_field {
        "name" => "AlarmName",
        "description" => "AlarmDescription",
        "namespace" => "Namespace",
        "metric_name" => "MetricName",
        "dimensions" => "Dimensions",
        "statistic" => "Statistic",
        "period_seconds" => "Period",
        "evaluation_periods" => "EvaluationPeriods",
        "datapoints_to_alarm" => "DatapointsToAlarm",
        "threshold" => "Threshold",
        "comparison_operator" => "ComparisonOperator",
        "treat_missing_data" => "TreatMissingData",
        "evaluate_low_sample_count_percentile" => "EvaluateLowSampleCountPercentile",
        "unit" => "Unit",
        "actions_enabled" => "ActionsEnabled",
        "alarm_actions" => "AlarmActions",
        "ok_actions" => "OKActions",
        "insufficient_data_actions" => "InsufficientDataActions",
        "alarm_rule" => "AlarmRule",
        "actions_suppressor" => "ActionsSuppressor",
        "metrics" => "Metrics",
        "threshold_metric_id" => "ThresholdMetricId",
        other => other,
    }
}

/// The validated alarm of a `PutMetricAlarm`, by the alarms core's rules.
fn validated(r: &PutMetricAlarm) -> Result<Alarm, Error> {
    let in_metrics = r.metrics.iter().filter_map(|q| match &q.kind {
        QueryKind::MetricStat(s) => Some(&s.metric.dimensions),
        QueryKind::Expression(_) => None,
    });
    if let Some(d) = r
        .dimensions
        .iter()
        .chain(in_metrics.flatten())
        .find(|d| d.value == "*")
    {
        return Err(Error::InvalidParameterValue(format!(
            "The value \"*\" of dimension {} makes a per-series alarm, which Thermostat \
             accepts in alarm files only.",
            d.name
        )));
    }
    let text = alarm_yaml(r);
    match thermostat_alarms::validate(&[(API_SOURCE, text.as_str())]) {
        Ok(set) => set.alarms.into_iter().next().ok_or_else(|| {
            tracing::error!("A PutMetricAlarm validated into no alarm.");
            Error::InternalServiceError
        }),
        Err(errors) => Err(config_error(&errors, "alarms.", &r.alarm_name)),
    }
}

/// The first error of validating the entry `name` of `section` (`alarms.`,
/// `composite_alarms.`), in CloudWatch's codes.
fn config_error(errors: &thermostat_alarms::ConfigErrors, section: &str, name: &str) -> Error {
    let Some(first) = errors.errors().first() else {
        return Error::InternalServiceError;
    };
    // `<section><name>.<field>[...]`: the field after the alarm's name.
    let rest = first
        .path
        .strip_prefix(section)
        .and_then(|rest| rest.strip_prefix(name))
        .map(|rest| rest.trim_start_matches('.'));
    let field = rest
        .and_then(|rest| rest.split(['.', '[']).next())
        .filter(|f| !f.is_empty())
        .unwrap_or("name");
    let metrics_path = rest.and_then(metrics_parameter);
    let parameter = metrics_path.as_deref().unwrap_or_else(|| parameter(field));
    match first.rule {
        Rule::Required => Error::MissingParameter(parameter.to_owned()),
        _ => Error::InvalidParameterValue(format!(
            "The parameter {parameter} {}.",
            first.message.trim_end_matches('.')
        )),
    }
}

/// A stand-in metric alarm named `name`, so that a composite's references to alarms of the
/// running set resolve when the composite is validated alone.
fn stub(name: &str) -> String {
    format!(
        "  - {{name: {}, namespace: Stub, metric_name: Stub, statistic: Average, period_seconds: 60, evaluation_periods: 1, threshold: 0, comparison_operator: GreaterThanThreshold}}\n",
        quoted(name)
    )
}

/// The request as one entry of an alarm file's `composite_alarms:`, after stand-ins for the
/// alarms of `known` it refers to.
fn composite_yaml(r: &PutCompositeAlarm, known: &thermostat_alarms::AlarmSet) -> String {
    let mut referenced: Vec<String> = thermostat_alarms::rule::parse(&r.alarm_rule)
        .map(|rule| rule.references().iter().map(|n| (*n).to_owned()).collect())
        .unwrap_or_default();
    referenced.extend(r.actions_suppressor.iter().cloned());
    referenced.sort();
    referenced.dedup();
    let stubs: String = referenced
        .iter()
        .filter(|n| **n != r.alarm_name)
        .filter(|n| known.alarm(n).is_some() || known.composite(n).is_some())
        .map(|n| stub(n))
        .collect();
    let mut y = String::new();
    if !stubs.is_empty() {
        y.push_str("alarms:\n");
        y.push_str(&stubs);
    }
    y.push_str("composite_alarms:\n");
    y.push_str(&format!("  - name: {}\n", quoted(&r.alarm_name)));
    y.push_str(&format!("    alarm_rule: {}\n", quoted(&r.alarm_rule)));
    if let Some(d) = &r.alarm_description {
        y.push_str(&format!("    description: {}\n", quoted(d)));
    }
    if let Some(e) = r.actions_enabled {
        y.push_str(&format!("    actions_enabled: {e}\n"));
    }
    for (key, list) in [
        ("alarm_actions", &r.alarm_actions),
        ("ok_actions", &r.ok_actions),
        ("insufficient_data_actions", &r.insufficient_data_actions),
    ] {
        if !list.is_empty() {
            y.push_str(&format!("    {key}:\n"));
            for a in list {
                y.push_str(&format!("      - {}\n", quoted(a)));
            }
        }
    }
    if let Some(s) = &r.actions_suppressor {
        y.push_str("    actions_suppressor:\n");
        y.push_str(&format!("      alarm: {}\n", quoted(s)));
        if let Some(w) = r.actions_suppressor_wait_period {
            y.push_str(&format!("      wait_period_seconds: {w}\n"));
        }
        if let Some(e) = r.actions_suppressor_extension_period {
            y.push_str(&format!("      extension_period_seconds: {e}\n"));
        }
    }
    y
}

/// The validated composite alarm of a `PutCompositeAlarm`, by the alarms core's rules, its
/// references resolved against `known` (cycles through other API composites are the
/// runtime's to find).
fn validated_composite(
    r: &PutCompositeAlarm,
    known: &thermostat_alarms::AlarmSet,
) -> Result<thermostat_alarms::CompositeAlarm, Error> {
    let text = composite_yaml(r, known);
    match thermostat_alarms::validate(&[(API_COMPOSITE_SOURCE, text.as_str())]) {
        Ok(set) => set.composite(&r.alarm_name).cloned().ok_or_else(|| {
            tracing::error!("A PutCompositeAlarm validated into no composite alarm.");
            Error::InternalServiceError
        }),
        Err(errors) => Err(config_error(&errors, "composite_alarms.", &r.alarm_name)),
    }
}

/// A runtime error in CloudWatch's codes.
fn runtime_error(e: thermostat_alarms_runtime::Error) -> Error {
    use thermostat_alarms_runtime::Error as E;
    match e {
        E::NotFound(name) => Error::ResourceNotFound(format!("The alarm {name} does not exist.")),
        E::OwnedByFile { name, file } => Error::InvalidParameterValue(format!(
            "The alarm {name} is defined in the file {file}, which owns it: change it there \
             and reload."
        )),
        E::Invalid { field, message } => {
            let name = match field {
                "state_value" => "StateValue",
                "state_reason" => "StateReason",
                "state_reason_data" => "StateReasonData",
                "alarm_rule" => "AlarmRule",
                "name" => "AlarmName",
                other => other,
            };
            Error::InvalidParameterValue(format!("The parameter {name} {message}."))
        }
        e @ (E::Store(_) | E::Evaluation(_)) => {
            tracing::error!(error = %thermostat_alarms_runtime::chain(&e), "A CloudWatch alarm request failed.");
            Error::InternalServiceError
        }
    }
}

fn api_error(e: AlarmApiError) -> Error {
    match e {
        AlarmApiError::NotFound(name) => {
            Error::ResourceNotFound(format!("The alarm {name} does not exist."))
        }
        AlarmApiError::Invalid { field, message } if field == "next_token" => {
            Error::InvalidNextToken(format!("The NextToken {message}."))
        }
        AlarmApiError::Invalid { field, message } => {
            Error::InvalidParameterValue(format!("The parameter {field} {message}."))
        }
        AlarmApiError::Config(errors) => Error::InvalidParameterValue(errors.join("; ")),
        AlarmApiError::Internal(detail) => {
            tracing::error!(%detail, "A CloudWatch alarm history request failed.");
            Error::InternalServiceError
        }
    }
}

fn reason_data(state: &AlarmState) -> Option<String> {
    state
        .reason_data
        .as_ref()
        .and_then(|d| serde_json::to_string(d).ok())
}

/// A state, or the one of a per-series alarm without instances.
fn state_fields(state: Option<&AlarmState>) -> (String, String, Option<String>, Option<Timestamp>) {
    match state {
        Some(s) => (
            s.value.to_string(),
            s.reason.clone(),
            reason_data(s),
            Some(s.updated),
        ),
        None => (
            StateValue::InsufficientData.to_string(),
            "No series matches this per-series alarm yet.".to_owned(),
            None,
            None,
        ),
    }
}

fn action_strings<T: std::fmt::Display>(actions: &[T]) -> Vec<String> {
    actions.iter().map(ToString::to_string).collect()
}

impl CloudWatchRuntimeAlarms {
    fn metric_alarm(&self, entry: &AlarmEntry, a: &Alarm) -> MetricAlarm {
        let (state_value, state_reason, state_reason_data, state_updated) =
            state_fields(entry.state.as_ref());
        MetricAlarm {
            alarm_name: entry.name.clone(),
            alarm_arn: format!("{}{}", self.arn_prefix, entry.name),
            alarm_description: Some(a.description.clone()).filter(|d| !d.is_empty()),
            configuration_updated: None,
            actions_enabled: entry.actions_enabled,
            ok_actions: action_strings(&a.actions.ok),
            alarm_actions: action_strings(&a.actions.alarm),
            insufficient_data_actions: action_strings(&a.actions.insufficient_data),
            state_value,
            state_reason,
            state_reason_data,
            state_updated,
            metric_name: a.metric_name.clone(),
            namespace: a.namespace.clone(),
            statistic: a.statistic.name().to_owned(),
            extended: a.statistic.is_percentile(),
            dimensions: a
                .dimensions
                .iter()
                .map(|d| thermostat_cloudwatch::request::Dimension {
                    name: d.name.to_string(),
                    value: d.value.to_string(),
                })
                .collect(),
            period_seconds: a.period.as_secs(),
            unit: a.unit,
            evaluation_periods: a.evaluation_periods,
            datapoints_to_alarm: a.datapoints_to_alarm,
            threshold: a.threshold,
            comparison_operator: a.comparison_operator.as_str().to_owned(),
            treat_missing_data: a.treat_missing_data.as_str().to_owned(),
            evaluate_low_sample_count_percentile: matches!(
                a.statistic,
                thermostat_metrics::Statistic::Percentile(_)
            )
            .then(|| a.evaluate_low_sample_count_percentile.as_str().to_owned()),
            metrics: a.metrics.iter().map(metric_data_query).collect(),
            threshold_metric_id: a.threshold_metric_id.clone(),
        }
    }

    fn composite_alarm(
        &self,
        entry: &AlarmEntry,
        c: &thermostat_alarms::CompositeAlarm,
    ) -> CompositeAlarm {
        let (state_value, state_reason, state_reason_data, state_updated) =
            state_fields(entry.state.as_ref());
        CompositeAlarm {
            alarm_name: entry.name.clone(),
            alarm_arn: format!("{}{}", self.arn_prefix, entry.name),
            alarm_description: Some(c.description.clone()).filter(|d| !d.is_empty()),
            alarm_rule: c.rule_text.clone(),
            actions_enabled: entry.actions_enabled,
            ok_actions: action_strings(&c.actions.ok),
            alarm_actions: action_strings(&c.actions.alarm),
            insufficient_data_actions: action_strings(&c.actions.insufficient_data),
            state_value,
            state_reason,
            state_reason_data,
            state_updated,
        }
    }
}

/// Whether any action of `entry`'s definition starts with `prefix`.
fn has_action_prefix(listing: &AlarmListing, entry: &AlarmEntry, prefix: &str) -> bool {
    let actions = match entry.kind {
        AlarmType::MetricAlarm => listing.set.alarm(&entry.alarm).map(|a| &a.actions),
        AlarmType::CompositeAlarm => listing.set.composite(&entry.alarm).map(|c| &c.actions),
    };
    actions.is_some_and(|a| {
        a.alarm
            .iter()
            .chain(&a.ok)
            .chain(&a.insufficient_data)
            .any(|x| x.to_string().starts_with(prefix))
    })
}

/// A history item as the API stores it (JSON, the time as RFC 3339) in CloudWatch's shape.
fn history_item(item: &Value) -> AlarmHistoryItem {
    let text = |key: &str| item[key].as_str().unwrap_or_default().to_owned();
    let timestamp = item["timestamp"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map_or(Timestamp(0), |t| Timestamp::from_millis(t.as_millisecond()));
    AlarmHistoryItem {
        alarm_name: text("alarm_name"),
        alarm_type: text("alarm_type"),
        timestamp,
        history_item_type: text("item_type"),
        history_summary: text("summary"),
        history_data: item["data"].to_string(),
    }
}

/// Where a page of every alarm's history continues: after the item at `timestamp` of
/// `alarm`, the `skip`-th of that alarm's items at that millisecond. Pages are newest first,
/// ordered by time, then alarm name, then each alarm's own order.
#[derive(Debug, PartialEq, Eq)]
struct EveryHistoryCursor {
    timestamp: i64,
    alarm: String,
    skip: usize,
}

impl EveryHistoryCursor {
    const PREFIX: &'static str = "all1.";

    fn token(&self) -> String {
        let hex: String = self.alarm.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{}{}.{}.{hex}", Self::PREFIX, self.timestamp, self.skip)
    }

    fn parse(token: &str) -> Option<Self> {
        let mut parts = token.strip_prefix(Self::PREFIX)?.splitn(3, '.');
        let timestamp = parts.next()?.parse().ok()?;
        let skip = parts.next()?.parse().ok()?;
        let hex = parts.next()?;
        if hex.len() % 2 != 0 || hex.len() > 2 * 1024 {
            return None;
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(EveryHistoryCursor {
            timestamp,
            alarm: String::from_utf8(bytes).ok()?,
            skip,
        })
    }
}

impl CloudWatchRuntimeAlarms {
    /// `DescribeAlarmHistory` without `AlarmName`: every alarm's items merged newest first,
    /// paged with an [`EveryHistoryCursor`]. Each page reads at most a page (plus the
    /// cursor's skip) of each alarm's history.
    fn every_alarms_history(
        &self,
        r: &DescribeAlarmHistory,
        mut query: HistoryQuery,
    ) -> Result<DescribeAlarmHistoryOutput, Error> {
        let max = query.max_records;
        let cursor = match &r.next_token {
            None => None,
            Some(t) => Some(EveryHistoryCursor::parse(t).ok_or_else(|| {
                Error::InvalidNextToken("The NextToken is not one this server issued.".into())
            })?),
        };
        query.next_token = None;
        if let Some(c) = &cursor {
            let through = Timestamp::from_millis(c.timestamp.saturating_add(1));
            query.end = Some(query.end.map_or(through, |e| e.min(through)));
        }
        let mut all: Vec<AlarmHistoryItem> = Vec::new();
        for entry in self.runtime.list().entries {
            let mut q = query.clone();
            if let Some(c) = cursor.as_ref().filter(|c| c.alarm == entry.name) {
                q.max_records = max + c.skip;
            }
            let page = match self.api.history_page(&entry.name, &q) {
                Ok(page) => page,
                Err(AlarmApiError::NotFound(_)) => continue,
                Err(e) => return Err(api_error(e)),
            };
            let mut at_cursor = 0usize;
            for item in page.items.iter().map(history_item) {
                if let Some(c) = &cursor
                    && item.timestamp.as_millis() == c.timestamp
                {
                    // Items at the cursor's millisecond: those of alarms before the cursor's
                    // were on earlier pages, and the first `skip` of the cursor's own.
                    if item.alarm_name < c.alarm {
                        continue;
                    }
                    if item.alarm_name == c.alarm {
                        at_cursor += 1;
                        if at_cursor <= c.skip {
                            continue;
                        }
                    }
                }
                all.push(item);
            }
        }
        if !r.alarm_types.is_empty() {
            all.retain(|i| r.alarm_types.contains(&i.alarm_type));
        }
        // Stable: each alarm's items keep their own order.
        all.sort_by(|a, b| {
            b.timestamp
                .as_millis()
                .cmp(&a.timestamp.as_millis())
                .then_with(|| a.alarm_name.cmp(&b.alarm_name))
        });
        let more = all.len() > max;
        all.truncate(max);
        let next_token = match all.last() {
            Some(last) if more => {
                let same = |i: &&AlarmHistoryItem| {
                    i.timestamp == last.timestamp && i.alarm_name == last.alarm_name
                };
                let carried = cursor
                    .as_ref()
                    .filter(|c| {
                        c.timestamp == last.timestamp.as_millis() && c.alarm == last.alarm_name
                    })
                    .map_or(0, |c| c.skip);
                Some(
                    EveryHistoryCursor {
                        timestamp: last.timestamp.as_millis(),
                        alarm: last.alarm_name.clone(),
                        skip: carried + all.iter().filter(same).count(),
                    }
                    .token(),
                )
            }
            _ => None,
        };
        if r.scan_by == ScanBy::TimestampAscending {
            all.reverse();
        }
        Ok(DescribeAlarmHistoryOutput {
            items: all,
            next_token,
        })
    }
}

/// A math alarm's `metrics:` entry as CloudWatch's `MetricDataQuery`.
fn metric_data_query(m: &thermostat_alarms::model::AlarmMetric) -> MetricDataQuery {
    let kind = match (&m.metric_stat, &m.expression) {
        (Some(stat), _) => QueryKind::MetricStat(CwMetricStat {
            metric: thermostat_cloudwatch::request::Metric {
                namespace: stat.namespace.clone(),
                metric_name: stat.metric_name.clone(),
                dimensions: stat
                    .dimensions
                    .iter()
                    .map(|d| thermostat_cloudwatch::request::Dimension {
                        name: d.name.to_string(),
                        value: d.value.to_string(),
                    })
                    .collect(),
            },
            period_seconds: stat.period.as_secs(),
            stat: stat.statistic.clone(),
            unit: stat.unit,
        }),
        (None, expression) => QueryKind::Expression(expression.clone().unwrap_or_default()),
    };
    MetricDataQuery {
        id: m.id.clone(),
        kind,
        label: m.label.clone(),
        return_data: m.return_data,
        period_seconds: None,
        account_id: None,
    }
}

fn alarm_tags(tags: &[Tag]) -> AlarmTags {
    tags.iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect()
}

impl CloudWatchRuntimeAlarms {
    /// Refuses a scaling action that names no group or policy of the running configuration
    /// (an alarm file's would be refused by `thermostat check`), rather than keeping an
    /// action that could never run.
    fn check_scaling_actions(
        &self,
        actions: &thermostat_alarms::model::Actions,
    ) -> Result<(), Error> {
        let set = self.scaling.set();
        let lists = [
            ("AlarmActions", &actions.alarm),
            ("OKActions", &actions.ok),
            ("InsufficientDataActions", &actions.insufficient_data),
        ];
        for (list, entries) in lists {
            for (i, action) in entries.iter().enumerate() {
                let text = action.to_string();
                if let Some(problem) = thermostat_scaler::action_problem(
                    &set,
                    &std::collections::HashSet::new(),
                    action,
                    &text,
                ) {
                    return Err(Error::InvalidParameterValue(format!(
                        "The parameter {list}.member.{} {problem}.",
                        i + 1
                    )));
                }
            }
        }
        Ok(())
    }

    /// The alarm name an alarm ARN of this server names.
    fn arn_alarm<'a>(&self, arn: &'a str) -> Result<&'a str, Error> {
        if let Some(name) = arn.strip_prefix(&self.arn_prefix) {
            return Ok(name);
        }
        let prefix = self.arn_prefix.trim_end_matches("alarm:");
        let message = if arn.starts_with("arn:aws:cloudwatch:") && arn.contains(":alarm:") {
            format!(
                "The ResourceARN {} names an alarm of another region or account: this server's \
                 alarms are {prefix}alarm:<name>.",
                thermostat_metrics::quote::quote(arn)
            )
        } else {
            format!(
                "The ResourceARN {} is not an alarm's ARN ({prefix}alarm:<name>); Thermostat \
                 tags alarms only.",
                thermostat_metrics::quote::quote(arn)
            )
        };
        Err(Error::InvalidParameterValue(message))
    }
}

/// A tagging refusal: an unknown alarm is `ResourceNotFoundException` there.
fn tagging_error(e: thermostat_alarms_runtime::Error) -> Error {
    match e {
        thermostat_alarms_runtime::Error::NotFound(name) => {
            Error::ResourceNotFoundException(format!("The alarm {name} does not exist."))
        }
        thermostat_alarms_runtime::Error::Invalid {
            field: "tags",
            message,
        } => Error::InvalidParameterValue(format!("The parameter Tags is invalid: {message}.")),
        e => runtime_error(e),
    }
}

/// The detector key of the metric an anomaly alarm's band is over (its first
/// `ANOMALY_DETECTION_BAND` argument that is a `metric_stat`).
fn band_detector(alarm: &Alarm) -> Option<String> {
    let ids = thermostat_alarms::math_alarm::band_inputs(alarm);
    let (_, stat) = alarm
        .metric_stats()
        .find(|(id, _)| ids.iter().any(|i| i == id))?;
    Some(detector_of_stat(stat).key())
}

fn detector_of_stat(stat: &thermostat_alarms::model::MetricStat) -> StoredDetector {
    StoredDetector {
        namespace: stat.namespace.clone(),
        metric_name: stat.metric_name.clone(),
        dimensions: stat
            .dimensions
            .iter()
            .map(|d| (d.name.to_string(), d.value.to_string()))
            .collect(),
        stat: stat.statistic.name().to_owned(),
        config: thermostat_alarms::anomaly::AnomalyConfig::default(),
    }
}

fn stored_detector(r: &AnomalyDetector) -> StoredDetector {
    let mut dimensions: Vec<(String, String)> = r
        .metric
        .dimensions
        .iter()
        .map(|d| (d.name.clone(), d.value.clone()))
        .collect();
    dimensions.sort();
    StoredDetector {
        namespace: r.metric.namespace.clone(),
        metric_name: r.metric.metric_name.clone(),
        dimensions,
        stat: r.stat.clone(),
        config: thermostat_alarms::anomaly::AnomalyConfig {
            excluded: r.excluded_time_ranges.clone(),
            time_zone: r.metric_timezone.clone(),
        },
    }
}

fn detector_output(d: &StoredDetector, state_value: &str) -> AnomalyDetectorOutput {
    AnomalyDetectorOutput {
        detector: AnomalyDetector {
            metric: thermostat_cloudwatch::request::Metric {
                namespace: d.namespace.clone(),
                metric_name: d.metric_name.clone(),
                dimensions: d
                    .dimensions
                    .iter()
                    .map(|(name, value)| thermostat_cloudwatch::request::Dimension {
                        name: name.clone(),
                        value: value.clone(),
                    })
                    .collect(),
            },
            stat: d.stat.clone(),
            excluded_time_ranges: d.config.excluded.clone(),
            metric_timezone: d.config.time_zone.clone(),
        },
        state_value: state_value.to_owned(),
    }
}

/// Where `PutAnomalyDetector`'s detectors are kept: the state database, or in cluster mode
/// the cluster's state (`cluster_state::Replicated`), so that every node has them.
pub trait Detectors: Send + Sync + std::fmt::Debug {
    /// Every detector put.
    ///
    /// # Errors
    /// The store cannot be read.
    fn anomaly_detectors(&self) -> Result<Vec<StoredDetector>, String>;

    /// Puts (creates or replaces) `detector`.
    ///
    /// # Errors
    /// The store cannot be written.
    fn put_anomaly_detector(&self, detector: &StoredDetector) -> Result<(), String>;

    /// Deletes the detector `key`; whether there was one.
    ///
    /// # Errors
    /// The store cannot be read or written.
    fn delete_anomaly_detector(&self, key: &str) -> Result<bool, String>;
}

impl Detectors for StateDb {
    fn anomaly_detectors(&self) -> Result<Vec<StoredDetector>, String> {
        StateDb::anomaly_detectors(self).map_err(|e| e.to_string())
    }

    fn put_anomaly_detector(&self, detector: &StoredDetector) -> Result<(), String> {
        StateDb::put_anomaly_detector(self, detector).map_err(|e| e.to_string())
    }

    fn delete_anomaly_detector(&self, key: &str) -> Result<bool, String> {
        StateDb::delete_anomaly_detector(self, key).map_err(|e| e.to_string())
    }
}

fn store_error(e: String) -> Error {
    tracing::error!(error = %e, "The state database failed a CloudWatch anomaly detector request.");
    Error::InternalServiceError
}

/// `DescribeAnomalyDetectors`' page token prefix (then the number of detectors before).
const DETECTORS_TOKEN_PREFIX: &str = "ad1.";

impl CloudWatchAlarms for CloudWatchRuntimeAlarms {
    fn put_anomaly_detector(&self, request: AnomalyDetector) -> Result<(), Error> {
        let detector = stored_detector(&request);
        detector.config.validate().map_err(|e| {
            Error::InvalidParameterValue(format!("The parameter Configuration is invalid: {e}."))
        })?;
        self.db
            .put_anomaly_detector(&detector)
            .map_err(store_error)?;
        // The API's anomaly alarms on that metric train with it from now on; a file's alarm
        // takes its configuration from its file (`anomaly_detection:`).
        let key = detector.key();
        for mut alarm in self.runtime.api_alarms() {
            if alarm.is_anomaly()
                && band_detector(&alarm).as_deref() == Some(key.as_str())
                && alarm.anomaly.as_ref() != Some(&detector.config)
            {
                alarm.anomaly = Some(detector.config.clone());
                self.runtime.put_api_alarm(alarm).map_err(runtime_error)?;
            }
        }
        Ok(())
    }

    fn delete_anomaly_detector(&self, request: AnomalyDetector) -> Result<(), Error> {
        let key = stored_detector(&request).key();
        if self.db.delete_anomaly_detector(&key).map_err(store_error)? {
            Ok(())
        } else {
            Err(Error::ResourceNotFoundException(format!(
                "No anomaly detector was put for {}/{} with the statistic {}.",
                request.metric.namespace, request.metric.metric_name, request.stat
            )))
        }
    }

    fn describe_anomaly_detectors(
        &self,
        r: DescribeAnomalyDetectors,
    ) -> Result<DescribeAnomalyDetectorsOutput, Error> {
        let skip = match &r.next_token {
            None => 0,
            Some(t) => t
                .strip_prefix(DETECTORS_TOKEN_PREFIX)
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| {
                    Error::InvalidNextToken("The NextToken is not one this server issued.".into())
                })?,
        };
        // The detectors put, then those the anomaly alarms imply (with their alarms'
        // configuration), one per metric and statistic; the state is the best of the models
        // trained for it.
        let mut detectors: BTreeMap<String, (StoredDetector, &'static str)> = self
            .db
            .anomaly_detectors()
            .map_err(store_error)?
            .into_iter()
            .map(|d| (d.key(), (d, "PENDING_TRAINING")))
            .collect();
        let set = self.runtime.alarms();
        let models = self.runtime.anomaly_models();
        let rank = |s: &str| match s {
            "TRAINED" => 2,
            "TRAINED_INSUFFICIENT_DATA" => 1,
            _ => 0,
        };
        for alarm in set.alarms.iter().filter(|a| a.is_anomaly()) {
            let ids = thermostat_alarms::math_alarm::band_inputs(alarm);
            for (id, stat) in alarm
                .metric_stats()
                .filter(|(id, _)| ids.iter().any(|i| i == id))
            {
                let mut implied = detector_of_stat(stat);
                implied.config = alarm.anomaly.clone().unwrap_or_default();
                let entry = detectors
                    .entry(implied.key())
                    .or_insert((implied, "PENDING_TRAINING"));
                for (instance, metric_id, model) in &models {
                    let of_alarm = instance == &alarm.name
                        || instance.starts_with(&format!("{}[", alarm.name));
                    let state = model.state().as_str();
                    if of_alarm && metric_id == id && rank(state) > rank(entry.1) {
                        entry.1 = state;
                    }
                }
            }
        }
        let wanted = |d: &StoredDetector| {
            r.namespace.as_ref().is_none_or(|n| *n == d.namespace)
                && r.metric_name.as_ref().is_none_or(|m| *m == d.metric_name)
                && (r.dimensions.is_empty()
                    || r.dimensions.len() == d.dimensions.len()
                        && r.dimensions.iter().all(|f| {
                            d.dimensions
                                .iter()
                                .any(|(n, v)| *n == f.name && *v == f.value)
                        }))
        };
        let max = r.max_results.map_or(100, |m| m as usize);
        let selected: Vec<&(StoredDetector, &'static str)> =
            detectors.values().filter(|(d, _)| wanted(d)).collect();
        let page: Vec<AnomalyDetectorOutput> = selected
            .iter()
            .skip(skip)
            .take(max)
            .map(|(d, state)| detector_output(d, state))
            .collect();
        let next = skip + page.len();
        Ok(DescribeAnomalyDetectorsOutput {
            anomaly_detectors: page,
            next_token: (next < selected.len()).then(|| format!("{DETECTORS_TOKEN_PREFIX}{next}")),
        })
    }

    fn list_tags_for_resource(&self, resource_arn: String) -> Result<Vec<Tag>, Error> {
        let name = self.arn_alarm(&resource_arn)?;
        let tags = self.runtime.alarm_tags(name).map_err(tagging_error)?;
        Ok(tags
            .into_iter()
            .map(|(key, value)| Tag { key, value })
            .collect())
    }

    fn tag_resource(&self, request: TagResource) -> Result<(), Error> {
        let name = self.arn_alarm(&request.resource_arn)?;
        self.runtime
            .tag_alarm(name, alarm_tags(&request.tags))
            .map_err(tagging_error)
    }

    fn untag_resource(&self, request: UntagResource) -> Result<(), Error> {
        let name = self.arn_alarm(&request.resource_arn)?;
        self.runtime
            .untag_alarm(name, &request.tag_keys)
            .map_err(tagging_error)
    }

    fn put_metric_alarm(&self, request: PutMetricAlarm) -> Result<(), Error> {
        let mut alarm = validated(&request)?;
        // An anomaly alarm trains with the configuration of the detector put for its metric.
        if alarm.is_anomaly() && alarm.anomaly.is_none() {
            let detectors = self.db.anomaly_detectors().map_err(store_error)?;
            alarm.anomaly = band_detector(&alarm)
                .and_then(|key| detectors.into_iter().find(|d| d.key() == key))
                .map(|d| d.config);
        }
        self.check_scaling_actions(&alarm.actions)?;
        self.runtime
            .put_api_alarm_tagged(alarm, alarm_tags(&request.tags))
            .map(|_new| ())
            .map_err(runtime_error)
    }

    fn put_composite_alarm(&self, request: PutCompositeAlarm) -> Result<(), Error> {
        let composite = validated_composite(&request, &self.runtime.alarms())?;
        self.check_scaling_actions(&composite.actions)?;
        self.runtime
            .put_api_composite_tagged(composite, alarm_tags(&request.tags))
            .map(|_new| ())
            .map_err(runtime_error)
    }

    fn describe_alarms(&self, r: DescribeAlarms) -> Result<DescribeAlarmsOutput, Error> {
        let after = match &r.next_token {
            None => None,
            Some(t) => Some(t.strip_prefix(ALARMS_TOKEN_PREFIX).ok_or_else(|| {
                Error::InvalidNextToken("The NextToken is not one this server issued.".into())
            })?),
        };
        let listing = self.runtime.list();
        // `ChildrenOfAlarmName` / `ParentsOfAlarmName`: the alarms related to one, of both
        // types.
        let related: Option<std::collections::BTreeSet<&str>> =
            match (&r.children_of_alarm_name, &r.parents_of_alarm_name) {
                (Some(parent), _) => Some(
                    listing
                        .set
                        .composite(parent)
                        .map(|c| c.rule.references().into_iter().collect())
                        .unwrap_or_default(),
                ),
                (None, Some(child)) => Some(
                    listing
                        .set
                        .composites
                        .iter()
                        .filter(|c| c.rule.references().contains(&child.as_str()))
                        .map(|c| c.name.as_str())
                        .collect(),
                ),
                (None, None) => None,
            };
        let want = |t: &str| {
            if related.is_some() {
                true
            } else if r.alarm_types.is_empty() {
                t == "MetricAlarm"
            } else {
                r.alarm_types.iter().any(|x| x == t)
            }
        };
        let max = r.max_records.map_or(DEFAULT_MAX_RECORDS, |m| m as usize);
        let mut out = DescribeAlarmsOutput::default();
        let mut taken = 0;
        for entry in &listing.entries {
            if after.is_some_and(|a| entry.name.as_str() <= a) {
                continue;
            }
            let kind = match entry.kind {
                AlarmType::MetricAlarm => "MetricAlarm",
                AlarmType::CompositeAlarm => "CompositeAlarm",
            };
            let state = entry
                .state
                .as_ref()
                .map_or(StateValue::InsufficientData, |s| s.value);
            let selected = want(kind)
                && related
                    .as_ref()
                    .is_none_or(|names| names.contains(entry.name.as_str()))
                && (r.alarm_names.is_empty() || r.alarm_names.contains(&entry.name))
                && r.alarm_name_prefix
                    .as_ref()
                    .is_none_or(|p| entry.name.starts_with(p.as_str()))
                && r.state_value
                    .as_ref()
                    .is_none_or(|v| state.to_string() == *v)
                && r.action_prefix
                    .as_ref()
                    .is_none_or(|p| has_action_prefix(&listing, entry, p));
            if !selected {
                continue;
            }
            if taken == max {
                let last = out
                    .metric_alarms
                    .iter()
                    .map(|a| &a.alarm_name)
                    .chain(out.composite_alarms.iter().map(|c| &c.alarm_name))
                    .max()
                    .cloned()
                    .unwrap_or_default();
                out.next_token = Some(format!("{ALARMS_TOKEN_PREFIX}{last}"));
                break;
            }
            match entry.kind {
                AlarmType::MetricAlarm => {
                    if let Some(a) = listing.set.alarm(&entry.alarm) {
                        out.metric_alarms.push(self.metric_alarm(entry, a));
                    }
                }
                AlarmType::CompositeAlarm => {
                    if let Some(c) = listing.set.composite(&entry.alarm) {
                        out.composite_alarms.push(self.composite_alarm(entry, c));
                    }
                }
            }
            taken += 1;
        }
        Ok(out)
    }

    fn describe_alarms_for_metric(
        &self,
        r: DescribeAlarmsForMetric,
    ) -> Result<Vec<MetricAlarm>, Error> {
        let listing = self.runtime.list();
        let mut wanted: Vec<(String, String)> = r
            .metric
            .dimensions
            .iter()
            .map(|d| (d.name.clone(), d.value.clone()))
            .collect();
        wanted.sort();
        Ok(listing
            .entries
            .iter()
            .filter(|e| e.kind == AlarmType::MetricAlarm)
            .filter_map(|e| listing.set.alarm(&e.alarm).map(|a| (e, a)))
            .filter(|(_, a)| {
                let mut dims: Vec<(String, String)> = a
                    .dimensions
                    .iter()
                    .map(|d| (d.name.to_string(), d.value.to_string()))
                    .collect();
                dims.sort();
                a.namespace == r.metric.namespace
                    && a.metric_name == r.metric.metric_name
                    && dims == wanted
                    && r.statistic.as_ref().is_none_or(|s| a.statistic.name() == s)
                    && r.period_seconds.is_none_or(|p| a.period.as_secs() == p)
                    && r.unit.is_none_or(|u| a.unit == Some(u))
            })
            .map(|(e, a)| self.metric_alarm(e, a))
            .collect())
    }

    fn delete_alarms(&self, names: Vec<String>) -> Result<(), Error> {
        for name in &names {
            self.runtime.delete_api_alarm(name).map_err(runtime_error)?;
        }
        Ok(())
    }

    fn set_alarm_state(&self, r: SetAlarmState) -> Result<(), Error> {
        let data = r.state_reason_data.map(Value::String);
        self.runtime
            .set_state(&r.alarm_name, &r.state_value, &r.state_reason, data)
            .map_err(runtime_error)
    }

    fn set_actions_enabled(&self, names: Vec<String>, enabled: bool) -> Result<(), Error> {
        for name in &names {
            self.runtime
                .set_actions_enabled(name, enabled, self.runtime.now())
                .map_err(runtime_error)?;
        }
        Ok(())
    }

    fn describe_alarm_history(
        &self,
        r: DescribeAlarmHistory,
    ) -> Result<DescribeAlarmHistoryOutput, Error> {
        let max = r.max_records.map_or(100, |m| m as usize);
        let query = HistoryQuery {
            max_records: max,
            next_token: r.next_token.clone(),
            start: r.start_date,
            end: r.end_date,
            item_types: r.history_item_type.iter().cloned().collect(),
            without_reason_data: false,
        };
        let Some(name) = &r.alarm_name else {
            return self.every_alarms_history(&r, query);
        };
        let page = self.api.history_page(name, &query).map_err(api_error)?;
        let mut items: Vec<AlarmHistoryItem> = page.items.iter().map(history_item).collect();
        if !r.alarm_types.is_empty() {
            items.retain(|i| r.alarm_types.contains(&i.alarm_type));
        }
        if r.scan_by == ScanBy::TimestampAscending {
            items.reverse();
        }
        let next_token = page.next_token;
        Ok(DescribeAlarmHistoryOutput { items, next_token })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> PutMetricAlarm {
        PutMetricAlarm {
            alarm_name: "cpu: high # é".into(),
            namespace: Some("App".into()),
            metric_name: Some("Cpu".into()),
            statistic: Some("Average".into()),
            period_seconds: Some(60),
            evaluation_periods: 2,
            threshold: Some(80.0),
            comparison_operator: "GreaterThanThreshold".into(),
            alarm_actions: vec!["arn:aws:sns:us-east-1:000000000000:ops".into()],
            ..PutMetricAlarm::default()
        }
    }

    #[test]
    fn a_put_metric_alarm_is_validated_as_an_alarm_file_entry() {
        let alarm = validated(&request()).unwrap();
        assert_eq!(
            alarm.name, "cpu: high # é",
            "YAML's special characters are quoted"
        );
        assert_eq!(alarm.evaluation_periods, 2);
        assert_eq!(alarm.source.file, API_SOURCE);
    }

    #[test]
    fn the_cores_rules_come_back_in_cloudwatch_codes() {
        let mut r = request();
        r.datapoints_to_alarm = Some(3);
        let e = validated(&r).unwrap_err();
        assert_eq!(e.code(), "InvalidParameterValue", "{e}");
        assert!(e.to_string().contains("DatapointsToAlarm"), "{e}");

        let mut r = request();
        r.period_seconds = Some(7);
        let e = validated(&r).unwrap_err();
        assert!(e.to_string().contains("Period"), "{e}");

        let mut r = request();
        r.alarm_name = "cpu \"high\"".into();
        let e = validated(&r).unwrap_err();
        assert!(e.to_string().starts_with("The parameter AlarmName "), "{e}");

        let mut r = request();
        r.namespace = None;
        let e = validated(&r).unwrap_err();
        assert_eq!(e.code(), "MissingParameter", "{e}");
        assert_eq!(e.to_string(), "The parameter Namespace is required.");
    }
}
