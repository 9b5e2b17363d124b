//! The raw, unvalidated form of the `scaling_groups:` section of a file, deserialised
//! straight from the YAML text with positions kept (as `thermostat_alarms::raw` does for
//! alarms: scalars stay [`Text`], unknown keys are each reported and removed before
//! retrying, so that one mistake never hides the others).

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoaderOptions, Node};
use serde::Deserialize;
use thermostat_alarms::error::{ConfigError, Pos, Rule};
use thermostat_alarms::raw::{Pairs, Spanned, Text, pos_of, unknown_field_message};

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
    pub policies: Option<List<PolicySpec>>,
    pub scheduled_actions: Option<List<ScheduledSpec>>,
}

/// A parsed entry with the position of its first line.
#[derive(Debug)]
pub struct Entry<T> {
    /// 0-based index in its list.
    pub index: usize,
    /// Position of the entry.
    pub pos: Pos,
    /// The entry.
    pub spec: T,
}

/// The `scaling_groups:` entries of one file that have the right shape.
#[derive(Debug, Default)]
pub struct ScalingFile {
    /// The file name, as given.
    pub file: String,
    /// `scaling_groups:` entries.
    pub groups: Vec<Entry<GroupSpec>>,
    /// The whole document (for finding alarm actions' positions), when it parsed.
    pub root: Option<Node>,
}

/// Parses one file's `scaling_groups:` section, appending every shape error to `errors`.
/// YAML syntax errors are reported as the alarm parser reports them (same file, position
/// and message), so a caller merging both lists can drop duplicates.
pub fn parse(file: &str, text: &str, errors: &mut Vec<ConfigError>) -> ScalingFile {
    let mut out = ScalingFile {
        file: file.to_owned(),
        ..ScalingFile::default()
    };
    if text.trim().is_empty() {
        return out;
    }
    let opts = LoaderOptions::default().error_on_duplicate_keys(true);
    let root = match marked_yaml::parse_yaml_with_options(0, text, opts) {
        Ok(n) => n,
        Err(_) => {
            // thermostat_alarms::validate reports the syntax error with its position.
            return out;
        }
    };
    if let Some(section) = root.as_mapping().and_then(|m| m.get_node(SECTION)) {
        let items: &[Node] = match section {
            Node::Sequence(s) => s,
            Node::Scalar(s) if s.as_str().is_empty() || s.as_str() == "~" => &[],
            other => {
                errors.push(ConfigError {
                    file: file.to_owned(),
                    pos: pos_of(other.span()),
                    path: SECTION.into(),
                    rule: Rule::Syntax,
                    message: "must be a list".into(),
                });
                &[]
            }
        };
        for (index, item) in items.iter().enumerate() {
            let path = format!("{SECTION}[{index}]");
            if let Some(spec) = entry::<GroupSpec>(file, item, &path, errors) {
                out.groups.push(Entry {
                    index,
                    pos: pos_of(item.span()),
                    spec,
                });
            }
        }
    }
    out.root = Some(root);
    out
}

fn mark_pos(m: marked_yaml::Marker) -> Pos {
    Pos::new(
        u32::try_from(m.line()).unwrap_or(u32::MAX),
        u32::try_from(m.column()).unwrap_or(u32::MAX),
    )
}

/// Deserialises one list entry, reporting every unknown key (and removing it to find the
/// next problem) and at most one shape error.
fn entry<T: for<'de> Deserialize<'de>>(
    file: &str,
    item: &Node,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let err = |pos: Pos, path: String, rule: Rule, message: String| ConfigError {
        file: file.to_owned(),
        pos,
        path,
        rule,
        message,
    };
    if item.as_mapping().is_none() {
        errors.push(err(
            pos_of(item.span()),
            path.to_owned(),
            Rule::Syntax,
            "must be a map of fields".into(),
        ));
        return None;
    }
    let mut node = item.clone();
    // Each round removes one unknown key; the bound only guards against a loop.
    for _ in 0..64 {
        match marked_yaml::from_node::<T>(&node) {
            Ok(v) => return Some(v),
            Err(e) => {
                let sub = e.path().map(str::to_owned);
                let err_pos = e.start_mark().map(mark_pos);
                let inner = e.into_inner();
                let full_path = match &sub {
                    Some(s) => format!("{path}.{s}"),
                    None => path.to_owned(),
                };
                if let marked_yaml::Error::UnknownFieldError(field, expected, _) = &inner {
                    let segments: Vec<&str> = sub
                        .as_deref()
                        .map(|s| s.split('.').collect())
                        .unwrap_or_default();
                    let parent = &segments[..segments.len().saturating_sub(1)];
                    let key_pos = remove_key(&mut node, parent, field);
                    errors.push(err(
                        key_pos.or(err_pos).unwrap_or_default(),
                        full_path,
                        Rule::UnknownField,
                        unknown_field_message(field, expected),
                    ));
                    key_pos?;
                    continue;
                }
                errors.push(err(
                    err_pos.unwrap_or_else(|| pos_of(item.span())),
                    full_path,
                    Rule::Syntax,
                    shape_message(&inner),
                ));
                return None;
            }
        }
    }
    None
}

fn shape_message(e: &marked_yaml::Error) -> String {
    let s = e.to_string();
    match s.strip_prefix("invalid type: ") {
        Some(rest) => match rest.split_once(", expected ") {
            Some((got, want)) => format!("must be {want} (got a {got})"),
            None => s,
        },
        None => s,
    }
}

/// Removes `field` from the map at `parent_path` (segments such as `policies[2]`) below
/// `node`, returning the key's position.
fn remove_key(node: &mut Node, parent_path: &[&str], field: &str) -> Option<Pos> {
    let mut cur = node;
    for seg in parent_path {
        let (key, indices) = split_indices(seg);
        if !key.is_empty() {
            let map = cur.as_mapping_mut()?;
            cur = map.get_mut(key)?;
        }
        for i in indices {
            let seq = cur.as_sequence_mut()?;
            cur = seq.get_mut(i)?;
        }
    }
    let map: &mut MarkedMappingNode = cur.as_mapping_mut()?;
    let key: MarkedScalarNode = map.keys().find(|k| k.as_str() == field)?.clone();
    let pos = pos_of(key.span());
    map.remove(&key);
    Some(pos)
}

fn split_indices(seg: &str) -> (&str, Vec<usize>) {
    let (key, rest) = seg.split_once('[').unwrap_or((seg, ""));
    let indices = rest
        .split(['[', ']'])
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    (key, indices)
}

#[cfg(test)]
mod tests {
    use super::*;

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
