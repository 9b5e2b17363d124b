//! The validated alarm model: what [`crate::validate`] produces and the evaluator reads.
//!
//! Field names follow the YAML (snake_case); the CloudWatch name of each is in
//! `docs/alarms.md`.

use serde::{Deserialize, Serialize};
use thermostat_metrics::{Dimension, Period, Statistic, Timestamp, Unit};

use crate::action::Action;
use crate::rule::AlarmRule;
/// Defined with the alarm state ([`crate::state`]); re-exported here, where it always was.
pub use crate::state::StateValue;
use crate::words::words;

/// Where a definition came from, for messages (not part of the definition's identity).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// File name, as given to [`crate::validate`].
    pub file: String,
    /// 1-based line of the entry.
    pub line: u32,
}

words! {
    /// CloudWatch `ComparisonOperator`: four static-threshold operators, and three that
    /// compare with an anomaly-detection band (alarms with a `threshold_metric_id` only).
    ComparisonOperator {
        /// `v >= threshold`.
        GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
        /// `v > threshold`.
        GreaterThanThreshold => "GreaterThanThreshold",
        /// `v < threshold`.
        LessThanThreshold => "LessThanThreshold",
        /// `v <= threshold`.
        LessThanOrEqualToThreshold => "LessThanOrEqualToThreshold",
        /// `v < lower || v > upper` (anomaly band).
        LessThanLowerOrGreaterThanUpperThreshold => "LessThanLowerOrGreaterThanUpperThreshold",
        /// `v < lower` (anomaly band).
        LessThanLowerThreshold => "LessThanLowerThreshold",
        /// `v > upper` (anomaly band).
        GreaterThanUpperThreshold => "GreaterThanUpperThreshold",
    }
}

words! {
    /// CloudWatch `TreatMissingData`.
    TreatMissingData {
        /// Missing points count as breaching.
        Breaching => "breaching",
        /// Missing points count as within the threshold.
        NotBreaching => "notBreaching",
        /// Keep the current state when the real points do not decide.
        Ignore => "ignore",
        /// Missing points are not used (the default).
        Missing => "missing",
    }
}

words! {
    /// CloudWatch `EvaluateLowSampleCountPercentile`.
    LowSampleCount {
        /// Always evaluate (the default).
        Evaluate => "evaluate",
        /// Keep the state while a percentile's sample count is too low.
        Ignore => "ignore",
    }
}

impl ComparisonOperator {
    /// Whether `v` breaches `threshold` (the metric is the left operand). The band
    /// operators compare with a band ([`breaches_band`](Self::breaches_band)); given one
    /// threshold they treat it as both bounds.
    pub fn breaches(self, v: f64, threshold: f64) -> bool {
        match self {
            ComparisonOperator::GreaterThanOrEqualToThreshold => v >= threshold,
            ComparisonOperator::GreaterThanThreshold => v > threshold,
            ComparisonOperator::LessThanThreshold => v < threshold,
            ComparisonOperator::LessThanOrEqualToThreshold => v <= threshold,
            band => band.breaches_band(v, threshold, threshold),
        }
    }

    /// Whether `v` breaches the band `[lower, upper]` (reference §3.2); the static operators
    /// compare with `upper` for the upper ones and `lower` for the others.
    pub fn breaches_band(self, v: f64, lower: f64, upper: f64) -> bool {
        match self {
            ComparisonOperator::LessThanLowerOrGreaterThanUpperThreshold => v < lower || v > upper,
            ComparisonOperator::LessThanLowerThreshold => v < lower,
            ComparisonOperator::GreaterThanUpperThreshold => v > upper,
            op if op.is_upper() => op.breaches(v, upper),
            op => op.breaches(v, lower),
        }
    }

    /// Whether the operator compares with an anomaly-detection band.
    pub fn is_band(self) -> bool {
        matches!(
            self,
            ComparisonOperator::LessThanLowerOrGreaterThanUpperThreshold
                | ComparisonOperator::LessThanLowerThreshold
                | ComparisonOperator::GreaterThanUpperThreshold
        )
    }

    /// The phrase in reason strings: `greater than or equal to`, `less than`...
    pub fn phrase(self) -> &'static str {
        match self {
            ComparisonOperator::GreaterThanOrEqualToThreshold => "greater than or equal to",
            ComparisonOperator::GreaterThanThreshold => "greater than",
            ComparisonOperator::LessThanThreshold => "less than",
            ComparisonOperator::LessThanOrEqualToThreshold => "less than or equal to",
            ComparisonOperator::LessThanLowerOrGreaterThanUpperThreshold => {
                "less than the lower thresholds or greater than the upper thresholds"
            }
            ComparisonOperator::LessThanLowerThreshold => "less than the lower thresholds",
            ComparisonOperator::GreaterThanUpperThreshold => "greater than the upper thresholds",
        }
    }

    /// Whether the operator alarms on high values.
    pub fn is_upper(self) -> bool {
        matches!(
            self,
            ComparisonOperator::GreaterThanOrEqualToThreshold
                | ComparisonOperator::GreaterThanThreshold
                | ComparisonOperator::GreaterThanUpperThreshold
        )
    }
}

/// The `metric_stat` of a metric-math query (`MetricDataQuery.MetricStat`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricStat {
    /// The metric's namespace.
    pub namespace: String,
    /// The metric's name.
    pub metric_name: String,
    /// Dimensions, sorted by name; a value `*` makes one alarm instance per matching series.
    pub dimensions: Vec<Dimension>,
    /// The period (every `metric_stat` of an alarm has the same one: the alarm's).
    pub period: Period,
    /// The statistic of each period.
    pub statistic: Statistic,
    /// Only data of this unit is read.
    pub unit: Option<Unit>,
}

/// One entry of a math alarm's `metrics:` (`PutMetricAlarm.Metrics`, a `MetricDataQuery`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlarmMetric {
    /// The id expressions refer to it by.
    pub id: String,
    /// The metric read (exactly one of `metric_stat` and `expression`).
    pub metric_stat: Option<MetricStat>,
    /// The metric-math expression.
    pub expression: Option<String>,
    /// The label.
    pub label: Option<String>,
    /// Whether this is the evaluated series (or the band of an anomaly alarm).
    pub return_data: bool,
}

impl AlarmMetric {
    /// The query of [`crate::math::plan_queries`] for this entry.
    pub fn query(&self) -> crate::math::MetricQuery {
        crate::math::MetricQuery {
            id: self.id.clone(),
            source: match &self.expression {
                Some(e) => crate::math::QuerySource::Expression(e.clone()),
                None => crate::math::QuerySource::MetricStat,
            },
            label: self.label.clone(),
            return_data: self.return_data,
            period_seconds: self
                .metric_stat
                .as_ref()
                .map(|m| i64::from(m.period.as_secs())),
        }
    }
}

/// The three action lists and the switch, shared by metric and composite alarms.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Actions {
    /// `actions_enabled` (default true): when false, states change but nothing runs.
    pub enabled: bool,
    /// Run on a transition to ALARM.
    pub alarm: Vec<Action>,
    /// Run on a transition to OK.
    pub ok: Vec<Action>,
    /// Run on a transition to INSUFFICIENT_DATA.
    pub insufficient_data: Vec<Action>,
    /// `repeat_interval_seconds` (extension): while the alarm stays in ALARM, its notification
    /// actions run again at this interval.
    #[serde(default)]
    pub repeat_interval_seconds: Option<u32>,
}

impl Actions {
    /// The list for a state.
    pub fn for_state(&self, s: StateValue) -> &[Action] {
        match s {
            StateValue::Alarm => &self.alarm,
            StateValue::Ok => &self.ok,
            StateValue::InsufficientData => &self.insufficient_data,
        }
    }
}

/// A validated metric alarm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    /// Unique name (CloudWatch `AlarmName`).
    pub name: String,
    /// Free text, at most 1024 characters.
    pub description: String,
    /// The metric's namespace (empty for a math alarm, see [`metrics`](Self::metrics)).
    pub namespace: String,
    /// The metric's name (empty for a math alarm).
    pub metric_name: String,
    /// Dimensions, sorted by name; a value `*` makes one instance per matching series
    /// (empty for a math alarm).
    pub dimensions: Vec<Dimension>,
    /// The statistic of each period. For a math alarm, which has none, the first
    /// `metric_stat`'s statistic (not shown: reason data of math alarms have no statistic).
    pub statistic: Statistic,
    /// Length of a period.
    pub period: Period,
    /// N.
    pub evaluation_periods: u32,
    /// M as configured; `None` means N (and changes the wording of reasons, as in
    /// CloudWatch).
    pub datapoints_to_alarm: Option<u32>,
    /// Periods fetched per evaluation (≥ N).
    pub evaluation_range: u32,
    /// The threshold.
    pub threshold: f64,
    /// Recovery threshold: while in ALARM, a point counts as breaching until it is on the
    /// OK side of this value (extension; `None` = `threshold`).
    pub ok_threshold: Option<f64>,
    /// How the statistic is compared with the threshold.
    pub comparison_operator: ComparisonOperator,
    /// Missing-data treatment.
    pub treat_missing_data: TreatMissingData,
    /// Low-sample percentile treatment.
    pub evaluate_low_sample_count_percentile: LowSampleCount,
    /// Seconds subtracted from each tick before choosing periods (extension).
    pub evaluation_delay_seconds: u32,
    /// Only data of this unit is evaluated.
    pub unit: Option<Unit>,
    /// Actions.
    pub actions: Actions,
    /// Where it was defined.
    pub source: Source,
    /// A metric-math alarm's queries (`Metrics`); empty for a single-metric alarm. The
    /// alarm evaluates the one query with `return_data` that is not the band.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<AlarmMetric>,
    /// The id of the `ANOMALY_DETECTION_BAND` query of an anomaly-detection alarm
    /// (`ThresholdMetricId`); the operator is then one of the band operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_metric_id: Option<String>,
    /// The training configuration of an anomaly-detection alarm's models
    /// (`PutAnomalyDetector`'s `Configuration`); `None` is the default configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<crate::anomaly::AnomalyConfig>,
}

impl Alarm {
    /// Whether this is a metric-math alarm (it has `metrics:`).
    pub fn is_math(&self) -> bool {
        !self.metrics.is_empty()
    }

    /// The series a math alarm's single instance is known by: its first `metric_stat` with
    /// `"*"` dimensions, else its first `metric_stat` (empty without one).
    pub fn math_series_key(&self) -> thermostat_metrics::SeriesKey {
        match self
            .wildcard_stat()
            .or_else(|| self.metric_stats().next().map(|(_, m)| m))
        {
            Some(ms) => thermostat_metrics::SeriesKey::new(
                ms.namespace.as_str(),
                ms.metric_name.as_str(),
                ms.dimensions.clone(),
            ),
            None => thermostat_metrics::SeriesKey::new("", "", Vec::new()),
        }
    }

    /// The first `metric_stat` with `"*"` dimensions: its matching series are the instances.
    pub fn wildcard_stat(&self) -> Option<&MetricStat> {
        self.metric_stats()
            .map(|(_, m)| m)
            .find(|m| m.dimensions.iter().any(|d| d.value == "*"))
    }

    /// Whether this alarm compares with an anomaly-detection band.
    pub fn is_anomaly(&self) -> bool {
        self.threshold_metric_id.is_some()
    }

    /// The `metric_stat` entries of a math alarm, with their ids.
    pub fn metric_stats(&self) -> impl Iterator<Item = (&str, &MetricStat)> {
        self.metrics
            .iter()
            .filter_map(|m| m.metric_stat.as_ref().map(|s| (m.id.as_str(), s)))
    }

    /// The names of the `*` dimensions (sorted): the alarm's, or those of a math alarm's
    /// `metric_stat`s (which all share them).
    pub fn wildcard_dimensions(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .dimensions
            .iter()
            .chain(self.metric_stats().flat_map(|(_, m)| m.dimensions.iter()))
            .filter(|d| d.value == "*")
            .map(|d| d.name.as_str())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// M: datapoints that must breach.
    pub fn m(&self) -> u32 {
        self.datapoints_to_alarm.unwrap_or(self.evaluation_periods)
    }

    /// Whether the alarm has a `*` dimension (one instance per matching series).
    pub fn is_per_series(&self) -> bool {
        self.dimensions.iter().any(|d| d.value == "*")
            || self
                .metric_stats()
                .any(|(_, m)| m.dimensions.iter().any(|d| d.value == "*"))
    }

    /// Whether two definitions are equal, ignoring where they were written.
    pub fn same_definition(&self, other: &Alarm) -> bool {
        let mut a = self.clone();
        a.source = other.source.clone();
        a == *other
    }

    /// The instance name for a series of a per-series alarm: `name[Dim=value,...]` over
    /// the `*` dimensions.
    pub fn instance_name(&self, key: &thermostat_metrics::SeriesKey) -> String {
        if !self.is_per_series() {
            return self.name.clone();
        }
        let parts: Vec<String> = self
            .wildcard_dimensions()
            .into_iter()
            .map(|d| format!("{d}={}", key.dimension(d).unwrap_or("")))
            .collect();
        format!("{}[{}]", self.name, parts.join(","))
    }
}

/// `actions_suppressor` of a composite alarm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionsSuppressor {
    /// The suppressor alarm's name.
    pub alarm: String,
    /// How long to wait for the suppressor to go to ALARM after the composite does.
    pub wait_period_seconds: u32,
    /// How long to keep suppressing after the suppressor leaves ALARM.
    pub extension_period_seconds: u32,
}

/// A validated composite alarm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompositeAlarm {
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// The rule, parsed.
    pub rule: AlarmRule,
    /// The rule as written.
    pub rule_text: String,
    /// Actions (no Auto Scaling actions, as in CloudWatch).
    pub actions: Actions,
    /// Optional suppressor.
    pub suppressor: Option<ActionsSuppressor>,
    /// Where it was defined.
    pub source: Source,
}

impl CompositeAlarm {
    /// Whether two definitions are equal, ignoring where they were written.
    pub fn same_definition(&self, other: &CompositeAlarm) -> bool {
        let mut a = self.clone();
        a.source = other.source.clone();
        a == *other
    }
}

/// One input datapoint of a test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestDatapoint {
    /// When it was observed.
    pub timestamp: Timestamp,
    /// The series.
    pub namespace: String,
    /// The series.
    pub metric_name: String,
    /// The series' dimensions.
    pub dimensions: Vec<Dimension>,
    /// The unit.
    pub unit: Unit,
    /// One or more observations at this time.
    pub values: Vec<f64>,
}

/// An expected state after the evaluation at a tick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestExpectation {
    /// The tick.
    pub at: Timestamp,
    /// The alarm (or instance) name.
    pub alarm: String,
    /// The expected state.
    pub state: StateValue,
    /// Text the reason must contain.
    pub reason_contains: Option<String>,
    /// 1-based line in the file.
    pub line: u32,
}

/// An expected transition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestTransition {
    /// The tick.
    pub at: Timestamp,
    /// The alarm (or instance) name.
    pub alarm: String,
    /// Old state (optional in the YAML).
    pub from: Option<StateValue>,
    /// New state.
    pub to: StateValue,
}

/// A validated `tests:` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlarmTest {
    /// Test name.
    pub name: String,
    /// The default alarm of the test.
    pub alarm: String,
    /// Time zero of the test (`at` values are offsets from it).
    pub start: Timestamp,
    /// State every alarm starts in.
    pub initial_state: StateValue,
    /// Input data.
    pub datapoints: Vec<TestDatapoint>,
    /// Expected states.
    pub expect: Vec<TestExpectation>,
    /// Expected transitions, per alarm named in them (`None` = not checked).
    pub transitions: Option<Vec<TestTransition>>,
    /// Where it was defined.
    pub source: Source,
}

/// A validated set of alarms from one or more files.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlarmSet {
    /// Metric alarms, in file order.
    pub alarms: Vec<Alarm>,
    /// Composite alarms, in an order where every composite comes after the composites its
    /// rule refers to.
    pub composites: Vec<CompositeAlarm>,
    /// Tests from every file.
    pub tests: Vec<AlarmTest>,
}

impl AlarmSet {
    /// The metric alarm named `name`.
    pub fn alarm(&self, name: &str) -> Option<&Alarm> {
        self.alarms.iter().find(|a| a.name == name)
    }

    /// The composite alarm named `name`.
    pub fn composite(&self, name: &str) -> Option<&CompositeAlarm> {
        self.composites.iter().find(|a| a.name == name)
    }
}
