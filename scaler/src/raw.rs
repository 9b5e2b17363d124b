//! The raw, unvalidated form of the `scaling_groups:` section of a file, read from the
//! file's parsed tree with positions kept (as `thermostat_alarms::raw` does for alarms:
//! scalars stay [`Text`], unknown keys are each reported and removed before retrying, so
//! that one mistake never hides the others).

use serde::Deserialize;
use thermostat_yaml::{
    ConfigError, Document, EmptyList, ErrorList, FieldChecker, Pairs, Spanned, Text, pos_of,
};

pub use thermostat_yaml::Entry;

/// A list of maps with positions.
pub type List<T> = Spanned<Vec<Spanned<T>>>;

/// The top-level key this crate owns.
pub const SECTION: &str = "scaling_groups";

/// `simulated:` of a group.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct SimulatedSpec {
    pub launch_seconds: Option<Text>,
}

/// One entry of `step_adjustments:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct StepSpec {
    pub metric_interval_lower_bound: Option<Text>,
    pub metric_interval_upper_bound: Option<Text>,
    pub scaling_adjustment: Option<Text>,
}

/// `customized_metric:` of a target-tracking policy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct CustomMetricSpec {
    pub namespace: Option<Text>,
    pub metric_name: Option<Text>,
    pub dimensions: Option<Spanned<Pairs>>,
    pub statistic: Option<Text>,
}

/// `target_tracking:` of a policy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct TargetTrackingSpec {
    pub predefined_metric: Option<Text>,
    pub customized_metric: Option<Spanned<CustomMetricSpec>>,
    pub target_value: Option<Text>,
    pub disable_scale_in: Option<Text>,
}

/// One entry of `policies:` (`PutScalingPolicy`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct PolicySpec {
    pub name: Option<Text>,
    pub policy_type: Option<Text>,
    pub enabled: Option<Text>,
    pub adjustment_type: Option<Text>,
    pub scaling_adjustment: Option<Text>,
    pub min_adjustment_magnitude: Option<Text>,
    pub cooldown_seconds: Option<Text>,
    pub metric_aggregation_type: Option<Text>,
    pub estimated_instance_warmup_seconds: Option<Text>,
    pub step_adjustments: Option<List<StepSpec>>,
    pub target_tracking: Option<Spanned<TargetTrackingSpec>>,
}

/// One entry of `scheduled_actions:` (`PutScheduledUpdateGroupAction`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct ScheduledSpec {
    pub name: Option<Text>,
    pub recurrence: Option<Text>,
    pub time_zone: Option<Text>,
    pub start_time: Option<Text>,
    pub end_time: Option<Text>,
    pub min_size: Option<Text>,
    pub max_size: Option<Text>,
    pub desired_capacity: Option<Text>,
}

/// One entry of `scaling_groups:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct GroupSpec {
    pub name: Option<Text>,
    pub backend: Option<Text>,
    pub min_size: Option<Text>,
    pub max_size: Option<Text>,
    pub desired_capacity: Option<Text>,
    pub default_cooldown_seconds: Option<Text>,
    pub default_instance_warmup_seconds: Option<Text>,
    pub simulated: Option<Spanned<SimulatedSpec>>,
    pub auto_scaling_group_name: Option<Text>,
    pub webhook_url: Option<Text>,
    pub webhook_ca_file: Option<Text>,
    pub policies: Option<List<PolicySpec>>,
    pub scheduled_actions: Option<List<ScheduledSpec>>,
}

/// The `scaling_groups:` entries of one file that have the right shape.
#[derive(Debug, Default)]
pub struct ScalingFile {
    /// The file name, as given.
    pub file: String,
    /// `scaling_groups:` entries.
    pub groups: Vec<Entry<GroupSpec>>,
}

/// Reads one parsed file's `scaling_groups:` section, appending every shape error to
/// `errors`. A file that could not be parsed has no section here: the alarms' reader
/// (`thermostat_alarms::raw::read`) reports its error.
pub fn read(doc: &Document, errors: &mut ErrorList) -> ScalingFile {
    let mut out = ScalingFile {
        file: doc.file().to_owned(),
        ..ScalingFile::default()
    };
    let Some(section) = doc.section(SECTION) else {
        return out;
    };
    let mut check = FieldChecker::new(doc.file(), errors);
    for (index, item) in check
        .list(section, SECTION, EmptyList::BlankOrTilde)
        .iter()
        .enumerate()
    {
        let path = format!("{SECTION}[{index}]");
        if let Some(spec) = check.deserialize::<GroupSpec>(item, &path) {
            out.groups.push(Entry {
                index,
                pos: pos_of(item.span()),
                spec,
            });
        }
    }
    out
}

/// Parses and reads every `(file name, text)` pair in order ([`Document::parse`], [`read`]),
/// one file at a time.
pub fn read_files<P: AsRef<str>, T: AsRef<str>>(
    files: &[(P, T)],
    errors: &mut ErrorList,
) -> Vec<ScalingFile> {
    files
        .iter()
        .map(|(p, t)| read(&Document::parse(p.as_ref(), t.as_ref()), errors))
        .collect()
}

/// Parses one file's text and reads it ([`read`]), appending every shape error to `errors`,
/// unsorted.
pub fn parse(file: &str, text: &str, errors: &mut Vec<ConfigError>) -> ScalingFile {
    let mut found = ErrorList::new();
    let out = read(&Document::parse(file, text), &mut found);
    errors.extend(found);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use thermostat_yaml::Pos;

    #[test]
    fn nested_unknown_keys_are_all_reported() {
        let text = "scaling_groups:\n  - name: web\n    min_sise: 1\n    policies:\n      - name: up\n        step_adjustments:\n          - {lower: 0, scaling_adjustment: 1}\n";
        let mut errors = Vec::new();
        let f = parse("s.yaml", text, &mut errors);
        assert_eq!(f.groups.len(), 1, "{errors:#?}");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "scaling_groups[0].min_sise",
                "scaling_groups[0].policies[0].step_adjustments[0].lower"
            ]
        );
        assert_eq!(errors[0].pos, Pos::new(3, 5));
        assert!(errors[0].message.contains("did you mean \"min_size\""));
    }
}
