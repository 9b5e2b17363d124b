//! CloudWatch-format notification messages (reference §4): the JSON message CloudWatch
//! publishes to SNS, its subject, an e-mail, a Slack incoming-webhook message and PagerDuty
//! Events v2 events, all rendered from one alarm transition ([`AlarmEvent`]).
//!
//! Pure: the account, region and dashboard address are [`MessageSettings`], the alarm and
//! its transition are parameters, and every function returns text.
//!
//! Key order and value shapes follow the observed CloudWatch payloads of §4.1: typed
//! structs serialise in declaration order, `Threshold` keeps its decimal point (`1.0`),
//! `Statistic` is upper-case, `Dimensions` entries are `{"value","name"}`.

use serde::{Deserialize, Serialize};
use thermostat_metrics::{Dimension, Dimensions, Statistic, Timestamp};

use crate::model::{Alarm, CompositeAlarm, StateValue};
use crate::state::{ReasonData, Transition};
use crate::timefmt;

/// The account used in ARNs when none is configured (the AWS documentation's example
/// account, also moto's default).
pub const DEFAULT_ACCOUNT_ID: &str = "123456789012";
/// The region used when none is configured and `AWS_REGION` is unset.
pub const DEFAULT_REGION: &str = "us-east-1";
/// SNS subjects must be shorter than 100 characters (reference §4.3).
pub const MAX_SUBJECT_CHARS: usize = 99;
/// Largest SNS message, in bytes (reference §4.3).
pub const MAX_MESSAGE_BYTES: usize = 262_144;
/// Longest PagerDuty `payload.summary`.
pub const MAX_PAGERDUTY_SUMMARY_CHARS: usize = 1024;

/// Display names of AWS regions as CloudWatch writes them in the `Region` field (reference
/// §4.1: `EU (Ireland)`, `US East (N. Virginia)`...).
pub const REGIONS: &[(&str, &str)] = &[
    ("us-east-1", "US East (N. Virginia)"),
    ("us-east-2", "US East (Ohio)"),
    ("us-west-1", "US West (N. California)"),
    ("us-west-2", "US West (Oregon)"),
    ("af-south-1", "Africa (Cape Town)"),
    ("ap-east-1", "Asia Pacific (Hong Kong)"),
    ("ap-east-2", "Asia Pacific (Taipei)"),
    ("ap-south-1", "Asia Pacific (Mumbai)"),
    ("ap-south-2", "Asia Pacific (Hyderabad)"),
    ("ap-southeast-1", "Asia Pacific (Singapore)"),
    ("ap-southeast-2", "Asia Pacific (Sydney)"),
    ("ap-southeast-3", "Asia Pacific (Jakarta)"),
    ("ap-southeast-4", "Asia Pacific (Melbourne)"),
    ("ap-southeast-5", "Asia Pacific (Malaysia)"),
    ("ap-southeast-7", "Asia Pacific (Thailand)"),
    ("ap-northeast-1", "Asia Pacific (Tokyo)"),
    ("ap-northeast-2", "Asia Pacific (Seoul)"),
    ("ap-northeast-3", "Asia Pacific (Osaka)"),
    ("ca-central-1", "Canada (Central)"),
    ("ca-west-1", "Canada West (Calgary)"),
    ("eu-central-1", "EU (Frankfurt)"),
    ("eu-central-2", "EU (Zurich)"),
    ("eu-west-1", "EU (Ireland)"),
    ("eu-west-2", "EU (London)"),
    ("eu-west-3", "EU (Paris)"),
    ("eu-south-1", "EU (Milan)"),
    ("eu-south-2", "EU (Spain)"),
    ("eu-north-1", "EU (Stockholm)"),
    ("il-central-1", "Israel (Tel Aviv)"),
    ("me-south-1", "Middle East (Bahrain)"),
    ("me-central-1", "Middle East (UAE)"),
    ("mx-central-1", "Mexico (Central)"),
    ("sa-east-1", "South America (Sao Paulo)"),
    ("cn-north-1", "China (Beijing)"),
    ("cn-northwest-1", "China (Ningxia)"),
    ("us-gov-east-1", "AWS GovCloud (US-East)"),
    ("us-gov-west-1", "AWS GovCloud (US-West)"),
];

/// The display name of a region code (`eu-west-1` → `EU (Ireland)`), if known.
pub fn region_display_name(code: &str) -> Option<&'static str> {
    REGIONS.iter().find(|(c, _)| *c == code).map(|(_, d)| *d)
}

/// Checks an AWS account id: exactly 12 digits.
///
/// # Errors
/// The rule broken, with the value.
pub fn check_account_id(s: &str) -> Result<(), String> {
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!("must be exactly 12 digits (got {s:?})"))
    }
}

/// Checks a region code: lower-case words and a number joined by `-` (`eu-west-1`).
/// Unknown but well-formed codes are accepted (their display name is the code).
///
/// # Errors
/// The rule broken, with the value.
pub fn check_region(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split('-').collect();
    let ok = parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be an AWS region code such as us-east-1 or eu-west-1 (got {s:?})"
        ))
    }
}

/// Where the messages say the alarm lives, and where the dashboard is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSettings {
    /// `AWSAccountId` and the account in `AlarmArn` (12 digits).
    pub account_id: String,
    /// Region code (`us-east-1`), used in `AlarmArn`; `Region` shows its display name.
    pub region: String,
    /// Base URL of the Thermostat HTTP API (`http://thermostat.internal:8080`); links in
    /// e-mail, Slack and PagerDuty messages point below it. `None` leaves links out.
    pub dashboard_url: Option<String>,
}

impl Default for MessageSettings {
    fn default() -> Self {
        MessageSettings {
            account_id: DEFAULT_ACCOUNT_ID.into(),
            region: DEFAULT_REGION.into(),
            dashboard_url: None,
        }
    }
}

impl MessageSettings {
    /// Settings from an account id, a region code and an optional dashboard URL.
    ///
    /// # Errors
    /// A malformed account id or region, or a dashboard URL that is not `http(s)://`.
    pub fn try_new(
        account_id: &str,
        region: &str,
        dashboard_url: Option<&str>,
    ) -> Result<Self, String> {
        check_account_id(account_id)?;
        check_region(region)?;
        if let Some(u) = dashboard_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(format!(
                "dashboard_url must be an http:// or https:// URL (got {u:?})"
            ));
        }
        Ok(MessageSettings {
            account_id: account_id.into(),
            region: region.into(),
            dashboard_url: dashboard_url.map(|u| u.trim_end_matches('/').to_owned()),
        })
    }

    /// `Region`: the display name, or the code for regions not in [`REGIONS`].
    pub fn region_display_name(&self) -> &str {
        region_display_name(&self.region).unwrap_or(&self.region)
    }

    /// `arn:aws:cloudwatch:<region>:<account_id>:alarm:<name>`.
    pub fn alarm_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:cloudwatch:{}:{}:alarm:{name}",
            self.region, self.account_id
        )
    }

    /// The alarm's page below the dashboard URL: `<dashboard_url>/alarms/<name>`
    /// (the web dashboard's alarm page: chart, state timeline, history), when a dashboard URL is set.
    pub fn alarm_link(&self, name: &str) -> Option<String> {
        self.dashboard_url
            .as_ref()
            .map(|base| format!("{base}/alarms/{}", url_encode(name)))
    }
}

/// The definition of the alarm a notification is about.
#[derive(Clone, Copy, Debug)]
pub enum AlarmDefinition<'a> {
    /// A metric alarm.
    Metric(&'a Alarm),
    /// A composite alarm.
    Composite(&'a CompositeAlarm),
}

impl AlarmDefinition<'_> {
    fn description(&self) -> &str {
        match self {
            AlarmDefinition::Metric(a) => &a.description,
            AlarmDefinition::Composite(c) => &c.description,
        }
    }

    fn actions(&self) -> &crate::model::Actions {
        match self {
            AlarmDefinition::Metric(a) => &a.actions,
            AlarmDefinition::Composite(c) => &c.actions,
        }
    }
}

/// One transition of one alarm: everything a notification is rendered from.
#[derive(Clone, Copy, Debug)]
pub struct AlarmEvent<'a> {
    /// The alarm name, or the instance name (`name[Dim=value]`) of a per-series alarm.
    pub name: &'a str,
    /// The alarm's definition.
    pub definition: AlarmDefinition<'a>,
    /// The transition.
    pub transition: &'a Transition,
    /// The concrete dimensions of a per-series instance (`None`: the definition's).
    pub dimensions: Option<Dimensions<'a>>,
    /// When the definition was last created or changed (`AlarmConfigurationUpdatedTimestamp`;
    /// `None` leaves the field out, as older CloudWatch payloads do).
    pub configuration_updated: Option<Timestamp>,
}

// === CloudWatch JSON message (§4.1) ===

/// `Trigger.Dimensions[]`: lower-case keys, `value` first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriggerDimension {
    /// The value.
    pub value: String,
    /// The name.
    pub name: String,
}

/// `Trigger.Metrics[].MetricStat.Metric` of a metric-math alarm's message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TriggerMetricName {
    /// The dimensions (lower-case keys, as in `Trigger.Dimensions`).
    pub dimensions: Vec<TriggerDimension>,
    /// `MetricName`.
    pub metric_name: String,
    /// `Namespace`.
    pub namespace: String,
}

/// `Trigger.Metrics[].MetricStat` of a metric-math alarm's message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TriggerMetricStat {
    /// The metric.
    pub metric: TriggerMetricName,
    /// Period in seconds.
    pub period: u32,
    /// The statistic as written (`Sum`, `p99`).
    pub stat: String,
    /// The unit, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// `Trigger.Metrics[]` of a metric-math alarm's message (reference §4.1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TriggerMetric {
    /// `Id`.
    pub id: String,
    /// `Expression`, for an expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// `Label`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `MetricStat`, for a metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_stat: Option<TriggerMetricStat>,
    /// `ReturnData`.
    pub return_data: bool,
}

/// `Trigger` of a metric alarm's message. A metric-math alarm's has `Metrics` instead of
/// the metric fields (`MetricName`, `Namespace`, `StatisticType`, the statistic, `Unit`,
/// `Dimensions`), as CloudWatch's; an anomaly alarm's also `ThresholdMetricId`. Written by
/// the `Serialize` below (which fields appear depends on the alarm's kind); read leniently.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Trigger {
    /// `MetricName` (empty, and not written, for a math alarm).
    #[serde(default)]
    pub metric_name: String,
    /// `Namespace` (empty, and not written, for a math alarm).
    #[serde(default)]
    pub namespace: String,
    /// `Statistic` or `ExtendedStatistic` (empty, and not written, for a math alarm).
    #[serde(default)]
    pub statistic_type: String,
    /// Upper-case statistic (`SUM`, `AVERAGE`...) when `StatisticType` is `Statistic`.
    #[serde(default)]
    pub statistic: Option<String>,
    /// The percentile (`p99`) when `StatisticType` is `ExtendedStatistic`.
    #[serde(default)]
    pub extended_statistic: Option<String>,
    /// The unit, or `null`.
    pub unit: Option<String>,
    /// The dimensions (not written for a math alarm).
    #[serde(default)]
    pub dimensions: Vec<TriggerDimension>,
    /// Period in seconds.
    pub period: u32,
    /// N.
    pub evaluation_periods: u32,
    /// M, only when set.
    #[serde(default)]
    pub datapoints_to_alarm: Option<u32>,
    /// The comparison operator.
    pub comparison_operator: String,
    /// The threshold (always with a decimal point).
    pub threshold: f64,
    /// `breaching`, `notBreaching`, `ignore` or `missing`.
    pub treat_missing_data: String,
    /// `evaluate` or `ignore` for percentile alarms, `""` otherwise.
    pub evaluate_low_sample_count_percentile: String,
    /// `Metrics` of a metric-math alarm.
    #[serde(default)]
    pub metrics: Vec<TriggerMetric>,
    /// `ThresholdMetricId` of an anomaly-detection alarm.
    #[serde(default)]
    pub threshold_metric_id: Option<String>,
}

impl Serialize for Trigger {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let math = !self.metrics.is_empty();
        let mut t = serializer.serialize_struct("Trigger", 16)?;
        let text = |t: &mut S::SerializeStruct, key: &'static str, v: &str| {
            if v.is_empty() {
                t.skip_field(key)
            } else {
                t.serialize_field(key, v)
            }
        };
        text(&mut t, "MetricName", &self.metric_name)?;
        text(&mut t, "Namespace", &self.namespace)?;
        text(&mut t, "StatisticType", &self.statistic_type)?;
        if let Some(s) = &self.statistic {
            t.serialize_field("Statistic", s)?;
        }
        if let Some(s) = &self.extended_statistic {
            t.serialize_field("ExtendedStatistic", s)?;
        }
        if !math {
            t.serialize_field("Unit", &self.unit)?;
            t.serialize_field("Dimensions", &self.dimensions)?;
        }
        t.serialize_field("Period", &self.period)?;
        t.serialize_field("EvaluationPeriods", &self.evaluation_periods)?;
        if let Some(m) = self.datapoints_to_alarm {
            t.serialize_field("DatapointsToAlarm", &m)?;
        }
        t.serialize_field("ComparisonOperator", &self.comparison_operator)?;
        t.serialize_field("Threshold", &self.threshold)?;
        t.serialize_field("TreatMissingData", &self.treat_missing_data)?;
        t.serialize_field(
            "EvaluateLowSampleCountPercentile",
            &self.evaluate_low_sample_count_percentile,
        )?;
        if math {
            t.serialize_field("Metrics", &self.metrics)?;
        }
        if let Some(id) = &self.threshold_metric_id {
            t.serialize_field("ThresholdMetricId", id)?;
        }
        t.end()
    }
}

/// `TriggeringChildren[].State` of a composite alarm's message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChildState {
    /// The child's state.
    pub value: StateValue,
    /// When it changed, `yyyy-MM-dd'T'HH:mm:ss.SSS+0000`.
    pub timestamp: String,
}

/// `TriggeringChildren[]` of a composite alarm's message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TriggeringChild {
    /// The child's alarm ARN.
    pub arn: String,
    /// The child's state.
    pub state: ChildState,
}

/// The JSON message CloudWatch publishes to SNS (reference §4.1), fields in CloudWatch's
/// order. Metric alarms carry `Trigger`; composite alarms `AlarmRule` and
/// `TriggeringChildren` instead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CloudWatchMessage {
    /// `AlarmName`.
    pub alarm_name: String,
    /// `AlarmDescription` (`null` when empty).
    pub alarm_description: Option<String>,
    /// `AWSAccountId`.
    #[serde(rename = "AWSAccountId")]
    pub aws_account_id: String,
    /// `AlarmConfigurationUpdatedTimestamp`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_configuration_updated_timestamp: Option<String>,
    /// `NewStateValue`.
    pub new_state_value: StateValue,
    /// `NewStateReason`.
    pub new_state_reason: String,
    /// `StateChangeTime`, `yyyy-MM-dd'T'HH:mm:ss.SSS+0000`.
    pub state_change_time: String,
    /// `Region` display name.
    pub region: String,
    /// `AlarmArn`.
    pub alarm_arn: String,
    /// `OldStateValue`.
    pub old_state_value: StateValue,
    /// `OKActions`.
    #[serde(rename = "OKActions")]
    pub ok_actions: Vec<String>,
    /// `AlarmActions`.
    pub alarm_actions: Vec<String>,
    /// `InsufficientDataActions`.
    pub insufficient_data_actions: Vec<String>,
    /// `Trigger` (metric alarms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// `AlarmRule` (composite alarms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_rule: Option<String>,
    /// `TriggeringChildren` (composite alarms; may be empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggering_children: Option<Vec<TriggeringChild>>,
}

/// CloudWatch's upper-case statistic in `Trigger.Statistic` (`Sum` → `SUM`).
pub fn trigger_statistic(s: &Statistic) -> Option<&'static str> {
    Some(match s {
        Statistic::SampleCount => "SAMPLE_COUNT",
        Statistic::Sum => "SUM",
        Statistic::Minimum => "MINIMUM",
        Statistic::Maximum => "MAXIMUM",
        Statistic::Average => "AVERAGE",
        Statistic::Percentile(_) | Statistic::Extended(_) => return None,
    })
}

/// A per-series instance's dimensions, or else the definition's, as (name, value).
fn pairs<'a>(
    instance: Option<Dimensions<'a>>,
    definition: &'a [Dimension],
) -> Vec<(&'a str, &'a str)> {
    match instance {
        Some(ds) => ds.map(|d| (d.name, d.value)).collect(),
        None => definition
            .iter()
            .map(|d| (d.name.as_str(), d.value.as_str()))
            .collect(),
    }
}

fn trigger(alarm: &Alarm, dimensions: Option<Dimensions<'_>>) -> Trigger {
    let (statistic_type, statistic, extended_statistic) = match trigger_statistic(&alarm.statistic)
    {
        Some(s) => ("Statistic", Some(s.to_owned()), None),
        None => (
            "ExtendedStatistic",
            None,
            Some(alarm.statistic.name().to_owned()),
        ),
    };
    // Percentiles only, like the evaluator's low-sample rule (not the other extended
    // statistics, which `is_percentile` also covers).
    let percentile = matches!(alarm.statistic, Statistic::Percentile(_));
    if alarm.is_math() {
        return math_trigger(alarm, dimensions);
    }
    Trigger {
        metric_name: alarm.metric_name.clone(),
        namespace: alarm.namespace.clone(),
        statistic_type: statistic_type.into(),
        statistic,
        extended_statistic,
        unit: alarm.unit.map(|u| u.as_str().to_owned()),
        dimensions: pairs(dimensions, &alarm.dimensions)
            .into_iter()
            .map(|(name, value)| TriggerDimension {
                value: value.to_owned(),
                name: name.to_owned(),
            })
            .collect(),
        period: alarm.period.as_secs(),
        evaluation_periods: alarm.evaluation_periods,
        datapoints_to_alarm: alarm.datapoints_to_alarm,
        comparison_operator: alarm.comparison_operator.as_str().into(),
        threshold: alarm.threshold,
        treat_missing_data: alarm.treat_missing_data.as_str().into(),
        evaluate_low_sample_count_percentile: if percentile {
            alarm.evaluate_low_sample_count_percentile.as_str().into()
        } else {
            String::new()
        },
        metrics: Vec::new(),
        threshold_metric_id: None,
    }
}

/// The `Trigger` of a metric-math alarm: `Metrics` (each `metric_stat` with the instance's
/// values for its `"*"` dimensions), no single-metric fields.
fn math_trigger(alarm: &Alarm, dimensions: Option<Dimensions<'_>>) -> Trigger {
    let instance_value = |name: &str| {
        dimensions
            .and_then(|mut ds| ds.find(|d| d.name == name))
            .map(|d| d.value.to_owned())
    };
    let metrics = alarm
        .metrics
        .iter()
        .map(|m| TriggerMetric {
            id: m.id.clone(),
            expression: m.expression.clone(),
            label: m.label.clone(),
            metric_stat: m.metric_stat.as_ref().map(|ms| TriggerMetricStat {
                metric: TriggerMetricName {
                    dimensions: ms
                        .dimensions
                        .iter()
                        .map(|d| TriggerDimension {
                            value: if d.value == "*" {
                                instance_value(&d.name).unwrap_or_else(|| d.value.clone())
                            } else {
                                d.value.clone()
                            },
                            name: d.name.clone(),
                        })
                        .collect(),
                    metric_name: ms.metric_name.clone(),
                    namespace: ms.namespace.clone(),
                },
                period: ms.period.as_secs(),
                stat: ms.statistic.name().to_owned(),
                unit: ms.unit.map(|u| u.as_str().to_owned()),
            }),
            return_data: m.return_data,
        })
        .collect();
    Trigger {
        metric_name: String::new(),
        namespace: String::new(),
        statistic_type: String::new(),
        statistic: None,
        extended_statistic: None,
        unit: None,
        dimensions: Vec::new(),
        period: alarm.period.as_secs(),
        evaluation_periods: alarm.evaluation_periods,
        datapoints_to_alarm: alarm.datapoints_to_alarm,
        comparison_operator: alarm.comparison_operator.as_str().into(),
        threshold: alarm.threshold,
        treat_missing_data: alarm.treat_missing_data.as_str().into(),
        evaluate_low_sample_count_percentile: String::new(),
        metrics,
        threshold_metric_id: alarm.threshold_metric_id.clone(),
    }
}

fn action_strings(list: &[crate::action::Action]) -> Vec<String> {
    list.iter()
        .map(crate::action::Action::as_config_str)
        .collect()
}

/// The message as a value (see [`render_message`] for the text).
pub fn cloudwatch_message(settings: &MessageSettings, event: &AlarmEvent<'_>) -> CloudWatchMessage {
    let t = event.transition;
    let d = event.definition;
    let description = d.description();
    let actions = d.actions();
    let (trigger, alarm_rule, triggering_children) = match d {
        AlarmDefinition::Metric(a) => (Some(trigger(a, event.dimensions)), None, None),
        AlarmDefinition::Composite(c) => {
            let children = match &t.reason_data {
                Some(ReasonData::Composite(r)) => r
                    .triggering_alarms
                    .iter()
                    .map(|ta| TriggeringChild {
                        arn: if ta.arn.starts_with("arn:") {
                            ta.arn.clone()
                        } else {
                            settings.alarm_arn(&ta.arn)
                        },
                        state: ChildState {
                            value: ta.state.value,
                            timestamp: ta.state.timestamp.clone(),
                        },
                    })
                    .collect(),
                _ => Vec::new(),
            };
            (None, Some(c.rule_text.clone()), Some(children))
        }
    };
    CloudWatchMessage {
        alarm_name: event.name.to_owned(),
        alarm_description: (!description.is_empty()).then(|| description.to_owned()),
        aws_account_id: settings.account_id.clone(),
        alarm_configuration_updated_timestamp: event.configuration_updated.map(timefmt::json_time),
        new_state_value: t.new_state,
        new_state_reason: t.reason.clone(),
        state_change_time: timefmt::json_time(t.timestamp),
        region: settings.region_display_name().to_owned(),
        alarm_arn: settings.alarm_arn(event.name),
        old_state_value: t.old_state,
        ok_actions: action_strings(&actions.ok),
        alarm_actions: action_strings(&actions.alarm),
        insufficient_data_actions: action_strings(&actions.insufficient_data),
        trigger,
        alarm_rule,
        triggering_children,
    }
}

/// The SNS `Message`: CloudWatch's JSON message for the transition (reference §4.1), also
/// the body of `cloudwatch`-format webhooks.
pub fn render_message(settings: &MessageSettings, event: &AlarmEvent<'_>) -> String {
    to_json(&cloudwatch_message(settings, event))
}

fn to_json<T: Serialize>(v: &T) -> String {
    // Serialising these plain structs cannot fail (string keys, finite numbers); a
    // non-finite threshold would render as null.
    serde_json::to_string(v).unwrap_or_else(|_| "{}".into())
}

/// The SNS `Subject`: `<NewStateValue>: "<AlarmName>" in <Region display name>`
/// (reference §4.2), shortened to fewer than 100 characters by cutting the name (the state
/// prefix and the region stay) and with control characters replaced by spaces.
pub fn render_subject(settings: &MessageSettings, name: &str, state: StateValue) -> String {
    let region = settings.region_display_name();
    let clean: String = name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let full = format!("{state}: \"{clean}\" in {region}");
    if full.chars().count() <= MAX_SUBJECT_CHARS {
        return full;
    }
    let fixed = format!("{state}: \"...\" in {region}").chars().count();
    let room = MAX_SUBJECT_CHARS.saturating_sub(fixed);
    let cut: String = clean.chars().take(room).collect();
    let s = format!("{state}: \"{cut}...\" in {region}");
    s.chars().take(MAX_SUBJECT_CHARS).collect()
}

// === E-mail ===

/// An e-mail: subject and plain-text body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailMessage {
    /// The subject (the SNS subject).
    pub subject: String,
    /// The plain-text body.
    pub body: String,
}

/// `Monday 05 August, 2019 17:04:03 UTC`, as in CloudWatch's e-mails.
pub fn email_time(ts: Timestamp) -> String {
    jiff::Timestamp::from_millisecond(ts.as_millis()).map_or_else(
        |_| ts.to_string(),
        |t| {
            t.to_zoned(jiff::tz::TimeZone::UTC)
                .strftime("%A %d %B, %Y %H:%M:%S UTC")
                .to_string()
        },
    )
}

fn list_or_blank(list: &[crate::action::Action]) -> String {
    if list.is_empty() {
        String::new()
    } else {
        format!(" [{}]", action_strings(list).join(", "))
    }
}

/// The e-mail for a transition, laid out as CloudWatch's (reference §4.2): a sentence with
/// the alarm, the new state, the reason and the time, a link to the alarm when a dashboard
/// URL is set, then the alarm's details, threshold, metric and actions.
pub fn render_email(settings: &MessageSettings, event: &AlarmEvent<'_>) -> EmailMessage {
    use std::fmt::Write as _;
    let t = event.transition;
    let region = settings.region_display_name();
    let when = email_time(t.timestamp);
    let mut b = String::new();
    let _ = writeln!(
        b,
        "You are receiving this email because your Thermostat alarm \"{}\" in the {region} region has entered the {} state, because \"{}\" at \"{when}\".",
        event.name, t.new_state, t.reason
    );
    if let Some(link) = settings.alarm_link(event.name) {
        let _ = write!(b, "\nView this alarm in Thermostat:\n{link}\n");
    }
    let description = event.definition.description();
    let _ = write!(
        b,
        "\nAlarm Details:\n\
         - Name:                       {}\n\
         - Description:                {}\n\
         - State Change:               {} -> {}\n\
         - Reason for State Change:    {}\n\
         - Timestamp:                  {when}\n\
         - AWS Account:                {}\n\
         - Alarm Arn:                  {}\n",
        event.name,
        description,
        t.old_state,
        t.new_state,
        t.reason,
        settings.account_id,
        settings.alarm_arn(event.name),
    );
    match event.definition {
        AlarmDefinition::Metric(a) => {
            let periods = if a.evaluation_periods == 1 {
                format!("for {} seconds", a.period.as_secs())
            } else {
                format!(
                    "for {} out of the last {} periods of {} seconds",
                    a.m(),
                    a.evaluation_periods,
                    a.period.as_secs()
                )
            };
            let dims: Vec<String> = pairs(event.dimensions, &a.dimensions)
                .into_iter()
                .map(|(name, value)| format!("{name} = {value}"))
                .collect();
            let _ = write!(
                b,
                "\nThreshold:\n\
                 - The alarm is in the ALARM state when the metric is {} {} {periods}.\n\
                 \nMonitored Metric:\n\
                 - MetricNamespace:                     {}\n\
                 - MetricName:                          {}\n\
                 - Dimensions:                          [{}]\n\
                 - Period:                              {} seconds\n\
                 - Statistic:                           {}\n\
                 - Unit:                                {}\n\
                 - TreatMissingData:                    {}\n",
                a.comparison_operator,
                timefmt::java_double(a.threshold),
                a.namespace,
                a.metric_name,
                dims.join(", "),
                a.period.as_secs(),
                a.statistic.name(),
                a.unit.map_or("not specified", |u| u.as_str()),
                a.treat_missing_data,
            );
        }
        AlarmDefinition::Composite(c) => {
            let _ = write!(b, "\nAlarm Rule:\n- {}\n", c.rule_text);
            if let Some(ReasonData::Composite(r)) = &t.reason_data {
                b.push_str("\nTriggering Children:\n");
                for ta in &r.triggering_alarms {
                    let _ = writeln!(
                        b,
                        "- {}: {} at {}",
                        ta.arn, ta.state.value, ta.state.timestamp
                    );
                }
            }
        }
    }
    let actions = event.definition.actions();
    let _ = write!(
        b,
        "\nState Change Actions:\n- OK:{}\n- ALARM:{}\n- INSUFFICIENT_DATA:{}\n",
        list_or_blank(&actions.ok),
        list_or_blank(&actions.alarm),
        list_or_blank(&actions.insufficient_data),
    );
    EmailMessage {
        subject: render_subject(settings, event.name, t.new_state),
        body: b,
    }
}

// === Slack ===

#[derive(Serialize)]
struct SlackField {
    title: &'static str,
    value: String,
    short: bool,
}

#[derive(Serialize)]
struct SlackAttachment {
    fallback: String,
    color: &'static str,
    title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    title_link: Option<String>,
    text: String,
    fields: Vec<SlackField>,
    footer: String,
    ts: i64,
}

#[derive(Serialize)]
struct SlackMessage {
    text: String,
    attachments: Vec<SlackAttachment>,
}

/// Escapes `&`, `<` and `>` as Slack's message formatting requires.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A Slack incoming-webhook message: the subject as `text`, and one attachment coloured by
/// the new state (`danger` ALARM, `good` OK, `warning` INSUFFICIENT_DATA) with the reason,
/// the state change, the time and a link to the alarm.
pub fn render_slack(settings: &MessageSettings, event: &AlarmEvent<'_>) -> String {
    let t = event.transition;
    let subject = render_subject(settings, event.name, t.new_state);
    let mut fields = vec![
        SlackField {
            title: "State change",
            value: format!("{} -> {}", t.old_state, t.new_state),
            short: true,
        },
        SlackField {
            title: "Time",
            value: email_time(t.timestamp),
            short: true,
        },
    ];
    let description = event.definition.description();
    if !description.is_empty() {
        fields.push(SlackField {
            title: "Description",
            value: slack_escape(description),
            short: false,
        });
    }
    match event.definition {
        AlarmDefinition::Metric(a) => fields.push(SlackField {
            title: "Metric",
            value: slack_escape(&format!(
                "{} {} ({}, {} s) {} {}",
                a.namespace,
                a.metric_name,
                a.statistic.name(),
                a.period.as_secs(),
                a.comparison_operator,
                timefmt::java_double(a.threshold)
            )),
            short: false,
        }),
        AlarmDefinition::Composite(c) => fields.push(SlackField {
            title: "Alarm rule",
            value: slack_escape(&c.rule_text),
            short: false,
        }),
    }
    let msg = SlackMessage {
        text: slack_escape(&subject),
        attachments: vec![SlackAttachment {
            fallback: slack_escape(&format!("{subject}: {}", t.reason)),
            color: match t.new_state {
                StateValue::Alarm => "danger",
                StateValue::Ok => "good",
                StateValue::InsufficientData => "warning",
            },
            title: slack_escape(event.name),
            title_link: settings.alarm_link(event.name),
            text: slack_escape(&t.reason),
            fields,
            footer: format!("Thermostat · {}", settings.alarm_arn(event.name)),
            ts: t.timestamp.as_millis().div_euclid(1000),
        }],
    };
    to_json(&msg)
}

// === PagerDuty Events v2 ===

#[derive(Serialize)]
struct PagerDutyLink {
    href: String,
    text: &'static str,
}

#[derive(Serialize)]
struct PagerDutyPayload {
    summary: String,
    source: String,
    severity: &'static str,
    timestamp: String,
    component: String,
    group: String,
    class: &'static str,
    custom_details: CloudWatchMessage,
}

#[derive(Serialize)]
struct PagerDutyTrigger<'a> {
    routing_key: &'a str,
    event_action: &'static str,
    dedup_key: String,
    payload: PagerDutyPayload,
    client: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_url: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    links: Vec<PagerDutyLink>,
}

#[derive(Serialize)]
struct PagerDutyResolve<'a> {
    routing_key: &'a str,
    event_action: &'static str,
    dedup_key: String,
}

/// The PagerDuty deduplication key of an alarm: its ARN, so that one alarm maps to one
/// incident that ALARM opens and OK resolves.
pub fn pagerduty_dedup_key(settings: &MessageSettings, name: &str) -> String {
    settings.alarm_arn(name)
}

/// A PagerDuty Events v2 event: `trigger` for ALARM (severity `critical`) and
/// INSUFFICIENT_DATA (severity `warning`), `resolve` for OK; the dedup key is the alarm ARN
/// ([`pagerduty_dedup_key`]), and the CloudWatch message is the trigger's `custom_details`.
pub fn render_pagerduty(
    settings: &MessageSettings,
    event: &AlarmEvent<'_>,
    routing_key: &str,
) -> String {
    let t = event.transition;
    let dedup_key = pagerduty_dedup_key(settings, event.name);
    if t.new_state == StateValue::Ok {
        return to_json(&PagerDutyResolve {
            routing_key,
            event_action: "resolve",
            dedup_key,
        });
    }
    let subject = render_subject(settings, event.name, t.new_state);
    let summary: String = format!("{subject}: {}", t.reason)
        .chars()
        .take(MAX_PAGERDUTY_SUMMARY_CHARS)
        .collect();
    let (component, group) = match event.definition {
        AlarmDefinition::Metric(a) => (a.metric_name.clone(), a.namespace.clone()),
        AlarmDefinition::Composite(_) => (event.name.to_owned(), "composite".to_owned()),
    };
    let link = settings.alarm_link(event.name);
    to_json(&PagerDutyTrigger {
        routing_key,
        event_action: "trigger",
        dedup_key,
        payload: PagerDutyPayload {
            summary,
            source: settings.alarm_arn(event.name),
            severity: if t.new_state == StateValue::Alarm {
                "critical"
            } else {
                "warning"
            },
            timestamp: t.timestamp.to_rfc3339(),
            component,
            group,
            class: "CloudWatch alarm",
            custom_details: cloudwatch_message(settings, event),
        },
        client: "Thermostat",
        client_url: settings.dashboard_url.clone(),
        links: link
            .map(|href| {
                vec![PagerDutyLink {
                    href,
                    text: "View the alarm in Thermostat",
                }]
            })
            .unwrap_or_default(),
    })
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
