//! Phase two of loading: [`validate`] turns the `scaling_groups:` sections of a set of
//! files into a [`ScalingSet`], collecting every problem as a `ConfigError` with its file,
//! line, column and path (`scaling_groups.web.policies.up.cooldown_seconds`).
//!
//! Rules (reference §5.1, §5.3, §5.6, §5.10): unique group names across files and unique
//! policy and scheduled-action names in a group; `min_size ≤ desired_capacity ≤ max_size`;
//! each policy field only on the policy types that have it, with its required fields;
//! `min_adjustment_magnitude` only with `PercentChangeInCapacity`; non-negative
//! adjustments with `ExactCapacity`; step intervals without gaps or overlaps, as EC2 Auto
//! Scaling checks them; cron recurrences, IANA time zones and RFC 3339 times that parse;
//! scheduled desired capacities inside the min/max in force. Cross-checks with the alarms:
//! every scaling action (`policy:<group>/<policy>` or a policy ARN) names an existing
//! policy, never a target-tracking one (its alarms are managed), and the managed alarms'
//! names are free.

use std::collections::{HashMap, HashSet};
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use thermostat_alarms::action::{self, Action};
use thermostat_alarms::model::Source;
use thermostat_alarms::notifications::resolve_path;
use thermostat_alarms::raw::{FileActions, read_file_actions};
use thermostat_alarms::validate::{Need, Requirement, check_dimensions};
use thermostat_alarms::{AlarmSet, timefmt};
use thermostat_metrics::{Dimension, Statistic};
use thermostat_yaml::{
    ConfigError, ConfigErrors, ErrorList, FieldChecker, Pos, Rule, Spanned, Text, did_you_mean,
    is_null, pos,
};

use crate::model::{
    AdjustmentType, Backend, BackendKind, DEFAULT_COOLDOWN, DEFAULT_LAUNCH, MAX_POLICIES,
    MAX_SCHEDULED_ACTIONS, MAX_STEPS, MetricAggregationType, Policy, PolicyKind, PolicyType,
    PredefinedMetric, ScalingGroup, ScalingSet, ScheduledAction, StepAdjustment, TrackedMetric,
};
use crate::raw::{self, GroupSpec, PolicySpec, ScheduledSpec, StepSpec};
use crate::recurrence::Recurrence;

/// Largest group size accepted.
pub const MAX_GROUP_SIZE: u32 = 100_000;
/// Longest cooldown or warm-up accepted (one day).
pub const MAX_SECONDS: u32 = 86_400;

/// Parses and validates the `scaling_groups:` sections of a set of files, given as
/// `(file name, text)` pairs, against the alarms validated from the same files.
///
/// # Errors
/// Every problem found, in file order then position order. A file that is not YAML is
/// left to `thermostat_alarms::validate`, which reports it.
pub fn validate<P: AsRef<str>, T: AsRef<str>>(
    files: &[(P, T)],
    alarms: &AlarmSet,
) -> Result<ScalingSet, ConfigErrors> {
    let mut errors = ErrorList::new();
    let raws = raw::read_files(files, &mut errors);
    let set = check(&raws, &read_file_actions(files), alarms, &mut errors);
    let names: Vec<&str> = files.iter().map(|(p, _)| p.as_ref()).collect();
    errors.finish(set, &names)
}

/// Validates the raw `scaling_groups:` sections of a configuration's files ([`raw::read`])
/// against `alarms`, the alarms validated from the same files (empty when they are invalid),
/// and checks the scaling actions written in the files' alarms (`actions`,
/// `thermostat_alarms::raw::file_actions`, in file order). Every problem goes to `errors`;
/// the set returned holds the groups that passed, and is the configuration's only when no
/// error was found.
pub fn check(
    raws: &[raw::ScalingFile],
    actions: &[FileActions],
    alarms: &AlarmSet,
    errors: &mut ErrorList,
) -> ScalingSet {
    let mut set = ScalingSet::default();
    let mut seen: HashMap<String, (String, Pos)> = HashMap::new();
    let mut policy_pos: HashMap<(String, String), (String, Pos)> = HashMap::new();
    for f in raws {
        let mut check = ScalingChecker(FieldChecker::new(&f.file, errors));
        for e in &f.groups {
            let name_pos = e.spec.name.as_ref().map_or(e.pos, pos);
            let unique = match check.present(&e.spec.name).map(|n| n.as_str()) {
                Some(n) => match seen.get(n) {
                    Some((file, first)) => {
                        check.push(
                            name_pos,
                            format!("scaling_groups.{n}.name"),
                            Rule::Duplicate,
                            format!(
                                "duplicate scaling group name {n:?} (first defined at {file}:{}:{}); names must be unique across all files",
                                first.line, first.column
                            ),
                        );
                        false
                    }
                    None => {
                        seen.insert(n.to_owned(), (f.file.clone(), name_pos));
                        true
                    }
                },
                None => true,
            };
            if let Some(g) = check.group(e).filter(|_| unique) {
                for (p, spec) in g.policies.iter().zip(policy_specs(&e.spec)) {
                    let at = spec.name.as_ref().map_or(pos(spec), pos);
                    policy_pos.insert((g.name.clone(), p.name.clone()), (f.file.clone(), at));
                }
                set.groups.push(g);
            }
        }
    }
    // Names of groups that failed validation still count as defined, so that one mistake
    // is not reported again at every alarm action.
    let defined: HashSet<&str> = seen.keys().map(String::as_str).collect();
    for file in actions {
        check_alarm_actions(
            &mut FieldChecker::new(&file.file, errors),
            file,
            &set,
            &defined,
        );
    }
    for m in set.managed_alarms() {
        if alarms.alarm(&m.name).is_some() || alarms.composite(&m.name).is_some() {
            let (group, policy) = managed_owner(&set, &m.name);
            let (file, p) = policy_pos
                .get(&(group.clone(), policy.clone()))
                .cloned()
                .unwrap_or_default();
            errors.push(ConfigError {
                file,
                pos: p,
                path: format!("scaling_groups.{group}.policies.{policy}"),
                rule: Rule::Duplicate,
                message: format!(
                    "creates the alarm {:?}, but an alarm of that name is defined; rename one of them",
                    m.name
                ),
            });
        }
    }
    set
}

fn policy_specs(g: &GroupSpec) -> impl Iterator<Item = &Spanned<PolicySpec>> {
    g.policies.iter().flat_map(|l| l.iter())
}

fn managed_owner(set: &ScalingSet, alarm: &str) -> (String, String) {
    for g in &set.groups {
        for p in &g.policies {
            if crate::managed::alarm_names(g, p).iter().any(|n| n == alarm) {
                return (g.name.clone(), p.name.clone());
            }
        }
    }
    (String::new(), String::new())
}

/// What is wrong with the scaling action `act` (written as `text`) of an alarm, against the
/// groups of `set` (`defined`: the names of groups defined but maybe invalid, which are
/// reported where they are defined): an unknown group or policy, a target-tracking policy, or
/// a policy ARN without group and policy names. `None` for a good scaling action and for
/// every other action. Alarms created through the API are checked with this too.
pub fn action_problem(
    set: &ScalingSet,
    defined: &HashSet<&str>,
    act: &Action,
    text: &str,
) -> Option<String> {
    match act {
        Action::ScalingPolicy { group, policy }
        | Action::ScalingPolicyArn {
            group: Some(group),
            policy: Some(policy),
            ..
        } => match set.resolve(act) {
            Some((_, p)) if p.policy_type() == PolicyType::TargetTrackingScaling => Some(format!(
                "refers to the target-tracking policy {group}/{policy}, which only the alarms Thermostat creates for it may trigger"
            )),
            Some(_) => None,
            None => {
                let found = set.groups.iter().find(|g| {
                    g.name == *group
                        || matches!(&g.backend, Backend::AwsAutoscaling { auto_scaling_group_name } if auto_scaling_group_name == group)
                });
                match found {
                    Some(g) => Some(format!(
                        "refers to unknown policy {policy:?} of scaling group {:?}{}",
                        g.name,
                        did_you_mean(policy, g.policies.iter().map(|p| p.name.as_str()))
                    )),
                    // The group is defined but failed validation (reported there).
                    None if defined.contains(group.as_str()) => None,
                    None => {
                        let known: Vec<&str> = if defined.is_empty() {
                            set.groups.iter().map(|g| g.name.as_str()).collect()
                        } else {
                            defined.iter().copied().collect()
                        };
                        Some(format!(
                            "refers to unknown scaling group {group:?}{}",
                            did_you_mean(group, known.into_iter())
                        ))
                    }
                }
            }
        },
        Action::ScalingPolicyArn { .. } => Some(format!(
            "must name the group and policy (…:autoScalingGroupName/<group>:policyName/<policy>) so that Thermostat can find them (got {text:?})"
        )),
        _ => None,
    }
}

/// Checks every scaling action written in `alarms:` of one file.
fn check_alarm_actions(
    check: &mut FieldChecker<'_>,
    file: &FileActions,
    set: &ScalingSet,
    defined: &HashSet<&str>,
) {
    for written in file.actions.iter().filter(|a| a.list == "alarms") {
        let base = match &written.name {
            Some(n) => format!("alarms.{n}"),
            None => format!("alarms[{}]", written.index),
        };
        let Ok(act) = action::parse(&written.text) else {
            continue; // thermostat_alarms reports malformed actions.
        };
        let message = action_problem(set, defined, &act, &written.text);
        if let Some(m) = message {
            check.push(
                written.pos,
                format!("{base}.{}[{}]", written.key, written.position),
                Rule::Reference,
                m,
            );
        }
    }
}

/// The field checks of one file's scaling groups: `thermostat-yaml`'s, plus the scaling
/// ones below.
struct ScalingChecker<'a>(FieldChecker<'a>);

impl<'a> Deref for ScalingChecker<'a> {
    type Target = FieldChecker<'a>;
    fn deref(&self) -> &FieldChecker<'a> {
        &self.0
    }
}

impl DerefMut for ScalingChecker<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// Names of groups and policies appear in `policy:<group>/<policy>`: 1–255 characters,
/// no spaces, `/` or `:`.
fn name_problem(s: &str) -> Option<String> {
    let n = s.chars().count();
    if n == 0 || n > 255 {
        Some(format!("must be 1 to 255 characters (got {n})"))
    } else if s
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '/' || c == ':')
    {
        Some(format!(
            "must not contain spaces, '/' or ':', which alarm actions use as separators (got {s:?})"
        ))
    } else {
        None
    }
}

impl ScalingChecker<'_> {
    fn size(&mut self, t: &Option<Text>, path: &str) -> Option<u32> {
        let t = self.present(t)?;
        self.integer(t, path, 0, i64::from(MAX_GROUP_SIZE))
            .and_then(|n| u32::try_from(n).ok())
    }

    fn whole_seconds(&mut self, t: &Option<Text>, path: &str) -> Option<Duration> {
        let t = self.present(t)?;
        self.integer(t, path, 0, i64::from(MAX_SECONDS))
            .and_then(|n| u64::try_from(n).ok())
            .map(Duration::from_secs)
    }

    fn time(&mut self, t: &Option<Text>, path: &str) -> Option<thermostat_metrics::Timestamp> {
        let t = self.present(t)?;
        let ts = timefmt::parse_rfc3339(t);
        if ts.is_none() {
            self.push(
                pos(t),
                path,
                Rule::Number,
                format!(
                    "must be an RFC 3339 time such as 2026-01-05T08:00:00Z (got {})",
                    t.as_str()
                ),
            );
        }
        ts
    }

    /// Reports `field` when present on a policy type that does not have it.
    fn not_for(
        &mut self,
        present: Option<Pos>,
        path: &str,
        field: &str,
        owners: &str,
        t: PolicyType,
    ) {
        if let Some(p) = present {
            self.push(
                p,
                format!("{path}.{field}"),
                Rule::Consistency,
                format!("applies only to {owners} policies (this one is {t})"),
            );
        }
    }

    fn named(
        &mut self,
        name: &Option<Text>,
        list: &str,
        index: usize,
        entry: Pos,
    ) -> (String, Option<String>) {
        let fallback = format!("{list}[{index}]");
        match self.present(name) {
            None => {
                self.push(
                    entry,
                    format!("{fallback}.name"),
                    Rule::Required,
                    "is required",
                );
                (fallback, None)
            }
            Some(n) => match name_problem(n) {
                Some(m) => {
                    self.push(pos(n), format!("{fallback}.name"), Rule::Name, m);
                    (fallback, None)
                }
                None => (
                    format!("{list}.{}", n.as_str()),
                    Some(n.as_str().to_owned()),
                ),
            },
        }
    }

    fn group(&mut self, e: &raw::Entry<GroupSpec>) -> Option<ScalingGroup> {
        let s = &e.spec;
        let before = self.error_count();
        let (b, name) = self.named(&s.name, "scaling_groups", e.index, e.pos);
        let at = |f: &str| format!("{b}.{f}");
        let kind = match self.present(&s.backend) {
            Some(t) => self.word::<BackendKind>(t, &at("backend")),
            None => Some(BackendKind::Simulated),
        };
        let min = self.size(&s.min_size, &at("min_size"));
        let max = self.size(&s.max_size, &at("max_size"));
        let desired = self.size(&s.desired_capacity, &at("desired_capacity"));
        if kind.is_some_and(|k| k != BackendKind::AwsAutoscaling) {
            for (v, f) in [(&s.min_size, "min_size"), (&s.max_size, "max_size")] {
                if self.present(v).is_none() {
                    self.push(
                        e.pos,
                        at(f),
                        Rule::Required,
                        "is required (only aws_autoscaling groups may read it from the real group)",
                    );
                }
            }
        }
        if let (Some(lo), Some(hi), Some(t)) = (min, max, self.present(&s.max_size))
            && lo > hi
        {
            self.push(
                pos(t),
                at("max_size"),
                Rule::Consistency,
                format!("must be at least min_size ({lo}) (got {hi})"),
            );
        }
        if let (Some(d), Some(t)) = (desired, self.present(&s.desired_capacity)) {
            let problem = match (min, max) {
                (Some(lo), _) if d < lo => Some(format!("must be at least min_size ({lo}) (got {d})")),
                (_, Some(hi)) if d > hi => Some(format!("must be at most max_size ({hi}) (got {d})")),
                (None, _) | (_, None) => Some(
                    "needs min_size and max_size beside it (min_size ≤ desired_capacity ≤ max_size is checked here, not against the real group)".to_owned(),
                ),
                _ => None,
            };
            if let Some(m) = problem {
                self.push(pos(t), at("desired_capacity"), Rule::Consistency, m);
            }
        }
        let default_cooldown = self
            .whole_seconds(&s.default_cooldown_seconds, &at("default_cooldown_seconds"))
            .unwrap_or(DEFAULT_COOLDOWN);
        let default_instance_warmup = match self.present(&s.default_instance_warmup_seconds) {
            Some(t) => match self.integer(t, &at("default_instance_warmup_seconds"), -1, 3600) {
                Some(-1) | None => None,
                Some(n) => u64::try_from(n).ok().map(Duration::from_secs),
            },
            None => None,
        };
        let launch = match &s.simulated {
            Some(sim) => self
                .whole_seconds(
                    &sim.launch_seconds,
                    &format!("{b}.simulated.launch_seconds"),
                )
                .unwrap_or(DEFAULT_LAUNCH),
            None => DEFAULT_LAUNCH,
        };
        let backend = match kind {
            Some(BackendKind::Simulated) | None => {
                self.only_for(
                    &s.auto_scaling_group_name,
                    &at("auto_scaling_group_name"),
                    "aws_autoscaling",
                );
                self.only_for(&s.webhook_url, &at("webhook_url"), "webhook");
                self.only_for(&s.webhook_ca_file, &at("webhook_ca_file"), "webhook");
                Backend::Simulated
            }
            Some(BackendKind::AwsAutoscaling) => {
                self.only_for(&s.webhook_url, &at("webhook_url"), "webhook");
                self.only_for(&s.webhook_ca_file, &at("webhook_ca_file"), "webhook");
                let asg = match self.present(&s.auto_scaling_group_name) {
                    Some(t) => {
                        let n = t.chars().count();
                        if n == 0 || n > 255 {
                            self.push(
                                pos(t),
                                at("auto_scaling_group_name"),
                                Rule::Name,
                                format!("must be 1 to 255 characters (got {n})"),
                            );
                        }
                        t.as_str().to_owned()
                    }
                    None => name.clone().unwrap_or_default(),
                };
                Backend::AwsAutoscaling {
                    auto_scaling_group_name: asg,
                }
            }
            Some(BackendKind::Webhook) => {
                self.only_for(
                    &s.auto_scaling_group_name,
                    &at("auto_scaling_group_name"),
                    "aws_autoscaling",
                );
                let url = match self.required(&s.webhook_url, e.pos, &b, "webhook_url") {
                    Some(t) => {
                        let ok = ["https://", "http://"].iter().any(|scheme| {
                            t.strip_prefix(scheme)
                                .and_then(|r| r.split(['/', '?', '#']).next())
                                .is_some_and(|h| !h.is_empty())
                        }) && !t.chars().any(char::is_whitespace);
                        if !ok {
                            self.push(
                                pos(t),
                                at("webhook_url"),
                                Rule::Reference,
                                format!(
                                    "must be an http:// or https:// URL with a host (got {:?})",
                                    t.as_str()
                                ),
                            );
                        }
                        t.as_str().to_owned()
                    }
                    None => String::new(),
                };
                let ca_file =
                    self.webhook_ca_file(&s.webhook_ca_file, &url, &at("webhook_ca_file"));
                Backend::Webhook { url, ca_file }
            }
        };
        let mut group = ScalingGroup {
            name: name.clone().unwrap_or_default(),
            backend,
            min_size: min,
            max_size: max,
            desired_capacity: desired,
            default_cooldown,
            default_instance_warmup,
            launch,
            policies: Vec::new(),
            scheduled_actions: Vec::new(),
            source: Source {
                file: self.file().to_owned(),
                line: e.pos.line,
            },
        };
        if let Some(list) = &s.policies {
            if list.len() > MAX_POLICIES {
                self.push(
                    pos(list),
                    at("policies"),
                    Rule::Consistency,
                    format!(
                        "must have at most {MAX_POLICIES} policies (got {})",
                        list.len()
                    ),
                );
            }
            let mut names: HashSet<String> = HashSet::new();
            for (i, p) in list.iter().enumerate() {
                if let Some(pol) = self.policy(p, i, &b, &group) {
                    if !names.insert(pol.name.clone()) {
                        let at_name = p.name.as_ref().map_or(pos(p), pos);
                        self.push(
                            at_name,
                            format!("{b}.policies.{}.name", pol.name),
                            Rule::Duplicate,
                            format!(
                                "duplicate policy name {:?} in group {:?}",
                                pol.name, group.name
                            ),
                        );
                        continue;
                    }
                    group.policies.push(pol);
                }
            }
        }
        if let Some(list) = &s.scheduled_actions {
            if list.len() > MAX_SCHEDULED_ACTIONS {
                self.push(
                    pos(list),
                    at("scheduled_actions"),
                    Rule::Consistency,
                    format!(
                        "must have at most {MAX_SCHEDULED_ACTIONS} scheduled actions (got {})",
                        list.len()
                    ),
                );
            }
            let mut names: HashSet<String> = HashSet::new();
            for (i, a) in list.iter().enumerate() {
                if let Some(act) = self.scheduled(a, i, &b, &group) {
                    if !names.insert(act.name.clone()) {
                        let at_name = a.name.as_ref().map_or(pos(a), pos);
                        self.push(
                            at_name,
                            format!("{b}.scheduled_actions.{}.name", act.name),
                            Rule::Duplicate,
                            format!(
                                "duplicate scheduled action name {:?} in group {:?}",
                                act.name, group.name
                            ),
                        );
                        continue;
                    }
                    group.scheduled_actions.push(act);
                }
            }
        }
        (self.error_count() == before && name.is_some()).then_some(group)
    }

    /// `webhook_ca_file` of a webhook group whose URL is `url`: a file path, resolved against
    /// the folder of the file being read, only with an `https://` URL.
    fn webhook_ca_file(&mut self, t: &Option<Text>, url: &str, path: &str) -> Option<String> {
        let t = self.present(t)?;
        let v = t.as_str();
        if v.is_empty() || v.contains(['\0', '\n', '\r']) {
            self.push(
                pos(t),
                path,
                Rule::Syntax,
                format!("must be a file path (got {v:?})"),
            );
            return None;
        }
        if url.starts_with("http://") {
            self.push(
                pos(t),
                path,
                Rule::Consistency,
                "is only used with an https:// webhook_url (the webhook_url is http://)",
            );
            return None;
        }
        Some(resolve_path(self.file(), v))
    }

    fn only_for(&mut self, t: &Option<Text>, path: &str, backend: &str) {
        if let Some(t) = self.present(t) {
            self.push(
                pos(t),
                path,
                Rule::Consistency,
                format!("applies only to backend {backend}"),
            );
        }
    }

    fn policy(
        &mut self,
        p: &Spanned<PolicySpec>,
        index: usize,
        group_base: &str,
        group: &ScalingGroup,
    ) -> Option<Policy> {
        let entry = pos(p);
        let before = self.error_count();
        let (b, name) = self.named(&p.name, &format!("{group_base}.policies"), index, entry);
        let at = |f: &str| format!("{b}.{f}");
        let ptype = match self.present(&p.policy_type) {
            Some(t) => self.word::<PolicyType>(t, &at("policy_type"))?,
            None => PolicyType::SimpleScaling,
        };
        let enabled = self.boolean(&p.enabled, &at("enabled"), true);
        let here = |t: &Option<Text>| t.as_ref().filter(|t| !is_null(t)).map(pos);
        use PolicyType::*;
        if ptype == TargetTrackingScaling {
            self.not_for(
                here(&p.adjustment_type),
                &b,
                "adjustment_type",
                "SimpleScaling and StepScaling",
                ptype,
            );
            self.not_for(
                here(&p.min_adjustment_magnitude),
                &b,
                "min_adjustment_magnitude",
                "SimpleScaling and StepScaling",
                ptype,
            );
        }
        if ptype != SimpleScaling {
            self.not_for(
                here(&p.scaling_adjustment),
                &b,
                "scaling_adjustment",
                "SimpleScaling",
                ptype,
            );
            self.not_for(
                here(&p.cooldown_seconds),
                &b,
                "cooldown_seconds",
                "SimpleScaling",
                ptype,
            );
        }
        if ptype != StepScaling {
            self.not_for(
                here(&p.metric_aggregation_type),
                &b,
                "metric_aggregation_type",
                "StepScaling",
                ptype,
            );
            self.not_for(
                p.step_adjustments.as_ref().map(pos),
                &b,
                "step_adjustments",
                "StepScaling",
                ptype,
            );
        }
        if ptype == SimpleScaling {
            self.not_for(
                here(&p.estimated_instance_warmup_seconds),
                &b,
                "estimated_instance_warmup_seconds",
                "StepScaling and TargetTrackingScaling",
                ptype,
            );
        }
        if ptype != TargetTrackingScaling {
            self.not_for(
                p.target_tracking.as_ref().map(pos),
                &b,
                "target_tracking",
                "TargetTrackingScaling",
                ptype,
            );
        }
        let adjustment_type = if ptype == TargetTrackingScaling {
            None
        } else {
            self.required(&p.adjustment_type, entry, &b, "adjustment_type")
                .and_then(|t| self.word::<AdjustmentType>(t, &at("adjustment_type")))
        };
        let min_adjustment_magnitude = match self.present(&p.min_adjustment_magnitude) {
            Some(t) if ptype != TargetTrackingScaling => {
                let v = self
                    .integer(
                        t,
                        &at("min_adjustment_magnitude"),
                        1,
                        i64::from(MAX_GROUP_SIZE),
                    )
                    .and_then(|n| u32::try_from(n).ok());
                if adjustment_type.is_some_and(|a| a != AdjustmentType::PercentChangeInCapacity) {
                    self.push(
                        pos(t),
                        at("min_adjustment_magnitude"),
                        Rule::Consistency,
                        "applies only with adjustment_type PercentChangeInCapacity",
                    );
                }
                v
            }
            _ => None,
        };
        let warmup = self.whole_seconds(
            &p.estimated_instance_warmup_seconds,
            &at("estimated_instance_warmup_seconds"),
        );
        let kind = match ptype {
            SimpleScaling => {
                let adj = self
                    .required(&p.scaling_adjustment, entry, &b, "scaling_adjustment")
                    .and_then(|t| self.adjustment(t, &at("scaling_adjustment"), adjustment_type));
                let cooldown = self.whole_seconds(&p.cooldown_seconds, &at("cooldown_seconds"));
                PolicyKind::SimpleScaling {
                    adjustment_type: adjustment_type?,
                    scaling_adjustment: adj?,
                    min_adjustment_magnitude,
                    cooldown,
                }
            }
            StepScaling => {
                let agg = match self.present(&p.metric_aggregation_type) {
                    Some(t) => {
                        self.word::<MetricAggregationType>(t, &at("metric_aggregation_type"))
                    }
                    None => Some(MetricAggregationType::Average),
                };
                let steps = match &p.step_adjustments {
                    Some(list) => self.steps(list, &at("step_adjustments"), adjustment_type),
                    None => {
                        self.push(entry, at("step_adjustments"), Rule::Required, "is required");
                        None
                    }
                };
                PolicyKind::StepScaling {
                    adjustment_type: adjustment_type?,
                    min_adjustment_magnitude,
                    metric_aggregation_type: agg?,
                    estimated_instance_warmup: warmup,
                    steps: steps?,
                }
            }
            TargetTrackingScaling => {
                let Some(tt) = &p.target_tracking else {
                    self.push(entry, at("target_tracking"), Rule::Required, "is required");
                    return None;
                };
                let tb = at("target_tracking");
                let metric = self.tracked_metric(tt, &tb, group);
                let target = self
                    .required(&tt.target_value, pos(tt), &tb, "target_value")
                    .and_then(|t| {
                        let v = self.float(t, &format!("{tb}.target_value"))?;
                        if v <= 0.0 {
                            self.push(
                                pos(t),
                                format!("{tb}.target_value"),
                                Rule::Number,
                                format!("must be greater than 0 (got {})", t.as_str()),
                            );
                            return None;
                        }
                        Some(v)
                    });
                let disable_scale_in = self.boolean(
                    &tt.disable_scale_in,
                    &format!("{tb}.disable_scale_in"),
                    false,
                );
                PolicyKind::TargetTrackingScaling {
                    metric: metric?,
                    target_value: target?,
                    disable_scale_in,
                    estimated_instance_warmup: warmup,
                }
            }
        };
        if self.error_count() != before {
            return None;
        }
        Some(Policy {
            name: name?,
            enabled,
            kind,
        })
    }

    fn adjustment(&mut self, t: &Text, path: &str, ty: Option<AdjustmentType>) -> Option<i64> {
        let min = if ty == Some(AdjustmentType::ExactCapacity) {
            0
        } else {
            -i64::from(MAX_GROUP_SIZE) * 100
        };
        let v = self.integer(
            t,
            path,
            -i64::from(MAX_GROUP_SIZE) * 100,
            i64::from(MAX_GROUP_SIZE) * 100,
        )?;
        if v < min {
            self.push(
                pos(t),
                path,
                Rule::Number,
                format!("must be at least 0 with adjustment_type ExactCapacity (got {v})"),
            );
            return None;
        }
        Some(v)
    }

    fn steps(
        &mut self,
        list: &raw::List<StepSpec>,
        path: &str,
        ty: Option<AdjustmentType>,
    ) -> Option<Vec<StepAdjustment>> {
        let before = self.error_count();
        if list.is_empty() || list.len() > MAX_STEPS {
            self.push(
                pos(list),
                path,
                Rule::Consistency,
                format!("must have 1 to {MAX_STEPS} steps (got {})", list.len()),
            );
            return None;
        }
        let mut steps = Vec::new();
        for (i, s) in list.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let lower = self
                .present(&s.metric_interval_lower_bound)
                .and_then(|t| self.float(t, &format!("{p}.metric_interval_lower_bound")));
            let upper = self
                .present(&s.metric_interval_upper_bound)
                .and_then(|t| self.float(t, &format!("{p}.metric_interval_upper_bound")));
            let adj = self
                .required(&s.scaling_adjustment, pos(s), &p, "scaling_adjustment")
                .and_then(|t| self.adjustment(t, &format!("{p}.scaling_adjustment"), ty));
            match (lower, upper) {
                (None, None)
                    if self.present(&s.metric_interval_lower_bound).is_none()
                        && self.present(&s.metric_interval_upper_bound).is_none() =>
                {
                    self.push(pos(s), &p, Rule::Consistency, "must have metric_interval_lower_bound or metric_interval_upper_bound (a step with neither is invalid)");
                }
                (Some(lo), Some(hi)) if hi <= lo => {
                    self.push(
                        pos(s),
                        format!("{p}.metric_interval_upper_bound"),
                        Rule::Consistency,
                        format!(
                            "must be greater than metric_interval_lower_bound ({lo}) (got {hi})"
                        ),
                    );
                }
                _ => {}
            }
            if let Some(a) = adj {
                steps.push((
                    pos(s),
                    StepAdjustment {
                        lower,
                        upper,
                        scaling_adjustment: a,
                    },
                ));
            }
        }
        if self.error_count() != before {
            return None;
        }
        let mut sorted = steps.clone();
        sorted.sort_by(|a, b| {
            let k = |s: &StepAdjustment| s.lower.unwrap_or(f64::NEG_INFINITY);
            k(&a.1).total_cmp(&k(&b.1))
        });
        let null_lower = sorted.iter().filter(|s| s.1.lower.is_none()).count();
        let null_upper = sorted.iter().filter(|s| s.1.upper.is_none()).count();
        if null_lower > 1 || null_upper > 1 {
            self.push(pos(list), path, Rule::Consistency, "must have at most one step without metric_interval_lower_bound and one without metric_interval_upper_bound");
        }
        for w in sorted.windows(2) {
            let (a, b) = (&w[0].1, &w[1].1);
            match (a.upper, b.lower) {
                (Some(u), Some(l)) if u == l => {}
                (Some(u), Some(l)) => {
                    let what = if u < l { "leave a gap" } else { "overlap" };
                    self.push(w[1].0, path, Rule::Consistency, format!("step intervals must not {what}: one ends at {u} and the next starts at {l}"));
                }
                _ => {
                    self.push(w[1].0, path, Rule::Consistency, "step intervals must not overlap: only the first step may omit metric_interval_lower_bound and only the last metric_interval_upper_bound");
                }
            }
        }
        let any_neg_lower = sorted.iter().any(|s| s.1.lower.is_some_and(|l| l < 0.0));
        let any_pos_upper = sorted.iter().any(|s| s.1.upper.is_some_and(|u| u > 0.0));
        if any_neg_lower && null_lower == 0 {
            self.push(pos(list), path, Rule::Consistency, "has a negative metric_interval_lower_bound, so it needs a step without metric_interval_lower_bound (down to -infinity)");
        }
        if any_pos_upper && null_upper == 0 {
            self.push(pos(list), path, Rule::Consistency, "has a positive metric_interval_upper_bound, so it needs a step without metric_interval_upper_bound (up to +infinity)");
        }
        if self.error_count() != before {
            return None;
        }
        Some(sorted.into_iter().map(|s| s.1).collect())
    }

    fn tracked_metric(
        &mut self,
        tt: &Spanned<raw::TargetTrackingSpec>,
        base: &str,
        group: &ScalingGroup,
    ) -> Option<TrackedMetric> {
        match (self.present(&tt.predefined_metric), &tt.customized_metric) {
            (Some(t), None) => {
                let m = self.word::<PredefinedMetric>(t, &format!("{base}.predefined_metric"))?;
                let asg = match &group.backend {
                    Backend::AwsAutoscaling {
                        auto_scaling_group_name,
                    } => auto_scaling_group_name.clone(),
                    _ => group.name.clone(),
                };
                Some(TrackedMetric {
                    predefined: Some(m),
                    namespace: "AWS/EC2".into(),
                    metric_name: m.metric_name().into(),
                    dimensions: vec![Dimension::new(crate::group_metrics::GROUP_DIMENSION, asg)],
                    statistic: Statistic::Average,
                })
            }
            (None, Some(c)) => {
                let cb = format!("{base}.customized_metric");
                let before = self.error_count();
                let namespace = self
                    .required(&c.namespace, pos(c), &cb, "namespace")
                    .map(|t| {
                        if let Err(m) = thermostat_metrics::validate::namespace(t) {
                            self.push(pos(t), format!("{cb}.namespace"), Rule::Name, m);
                        }
                        t.as_str().to_owned()
                    });
                let metric_name = self
                    .required(&c.metric_name, pos(c), &cb, "metric_name")
                    .map(|t| {
                        if let Err(m) = thermostat_metrics::validate::metric_name(t) {
                            self.push(pos(t), format!("{cb}.metric_name"), Rule::Name, m);
                        }
                        t.as_str().to_owned()
                    });
                let dimensions = check_dimensions(
                    &mut self.0,
                    &c.dimensions,
                    &format!("{cb}.dimensions"),
                    false,
                );
                let statistic = self
                    .required(&c.statistic, pos(c), &cb, "statistic")
                    .and_then(|t| match t.as_str().parse::<Statistic>() {
                        Ok(s) => Some(s),
                        Err(e) => {
                            self.push(pos(t), format!("{cb}.statistic"), Rule::Enum, e.to_string());
                            None
                        }
                    });
                if self.error_count() != before {
                    return None;
                }
                Some(TrackedMetric {
                    predefined: None,
                    namespace: namespace?,
                    metric_name: metric_name?,
                    dimensions,
                    statistic: statistic?,
                })
            }
            _ => {
                self.push(
                    pos(tt),
                    base,
                    Rule::Consistency,
                    "must have exactly one of predefined_metric and customized_metric",
                );
                None
            }
        }
    }
    fn scheduled(
        &mut self,
        a: &Spanned<ScheduledSpec>,
        index: usize,
        group_base: &str,
        group: &ScalingGroup,
    ) -> Option<ScheduledAction> {
        let entry = pos(a);
        let before = self.error_count();
        let (b, name) = self.named(
            &a.name,
            &format!("{group_base}.scheduled_actions"),
            index,
            entry,
        );
        let at = |f: &str| format!("{b}.{f}");
        let zone = match self.present(&a.time_zone) {
            Some(t) => {
                if let Err(m) = crate::recurrence::parse_time_zone(t) {
                    self.push(pos(t), at("time_zone"), Rule::Enum, m);
                }
                if self.present(&a.recurrence).is_none() {
                    self.push(pos(t), at("time_zone"), Rule::Consistency, "applies only with recurrence (start_time and end_time carry their own offset)");
                }
                t.as_str().to_owned()
            }
            None => "UTC".to_owned(),
        };
        let recurrence =
            self.present(&a.recurrence)
                .and_then(|t| match crate::recurrence::parse_cron(t) {
                    Ok(_) => Recurrence::try_new(t, &zone).ok(),
                    Err(m) => {
                        self.push(pos(t), at("recurrence"), Rule::Consistency, m);
                        None
                    }
                });
        let start = self.time(&a.start_time, &at("start_time"));
        let end = self.time(&a.end_time, &at("end_time"));
        if self.present(&a.recurrence).is_none() && self.present(&a.start_time).is_none() {
            self.push(entry, at("start_time"), Rule::Required, "is required when there is no recurrence (a one-time action runs at its start_time)");
        }
        if let (Some(s), Some(e), Some(t)) = (start, end, self.present(&a.end_time))
            && e <= s
        {
            self.push(
                pos(t),
                at("end_time"),
                Rule::Consistency,
                "must be after start_time",
            );
        }
        let min = self.size(&a.min_size, &at("min_size"));
        let max = self.size(&a.max_size, &at("max_size"));
        let desired = self.size(&a.desired_capacity, &at("desired_capacity"));
        if [&a.min_size, &a.max_size, &a.desired_capacity]
            .iter()
            .all(|t| self.present(t).is_none())
        {
            self.push(
                entry,
                &b,
                Rule::Required,
                "must set at least one of min_size, max_size and desired_capacity",
            );
        }
        let eff_min = min.or(group.min_size);
        let eff_max = max.or(group.max_size);
        if let (Some(lo), Some(hi), true) = (eff_min, eff_max, min.is_some() || max.is_some())
            && lo > hi
        {
            let (t, f) = if min.is_some() {
                (&a.min_size, "min_size")
            } else {
                (&a.max_size, "max_size")
            };
            let p = self.present(t).map_or(entry, pos);
            self.push(
                p,
                at(f),
                Rule::Consistency,
                format!("leaves min_size ({lo}) above max_size ({hi})"),
            );
        }
        if let (Some(d), Some(t)) = (desired, self.present(&a.desired_capacity))
            && (eff_min.is_some_and(|lo| d < lo) || eff_max.is_some_and(|hi| d > hi))
        {
            self.push(
                    pos(t),
                    at("desired_capacity"),
                    Rule::Consistency,
                    format!(
                        "must be within the min_size ({}) and max_size ({}) in force; set min_size or max_size in the same action",
                        eff_min.map_or("-".into(), |v| v.to_string()),
                        eff_max.map_or("-".into(), |v| v.to_string())
                    ),
                );
        }
        if self.error_count() != before {
            return None;
        }
        Some(ScheduledAction {
            name: name?,
            recurrence,
            start_time: start,
            end_time: end,
            min_size: min,
            max_size: max,
            desired_capacity: desired,
        })
    }
}

/// What the `scaling_groups:` sections of `files` need from the machine Thermostat runs on:
/// AWS credentials for every `aws_autoscaling` group, at its `backend:` (the server describes
/// or updates the real group at start-up and refuses to start when it cannot), and the CA
/// bundle named by every `webhook` group's `webhook_ca_file`, at its value (resolved against
/// the naming file's folder; the fleet reads it at start-up and on reload). Files that are
/// not YAML are skipped ([`validate`] reports them).
pub fn requirements<P: AsRef<str>, T: AsRef<str>>(files: &[(P, T)]) -> Vec<Requirement> {
    requirements_of(&raw::read_files(files, &mut ErrorList::new()))
}

/// The requirements of raw `scaling_groups:` sections ([`raw::read`]), as
/// [`requirements`].
pub fn requirements_of(raws: &[raw::ScalingFile]) -> Vec<Requirement> {
    let mut out = Vec::new();
    for f in raws {
        for e in &f.groups {
            let Some(backend) = e.spec.backend.as_ref() else {
                continue;
            };
            let group = e.spec.name.as_ref().map_or_else(
                || format!("scaling_groups[{}]", e.index),
                |n| format!("scaling_groups.{}", n.as_str().trim()),
            );
            match backend.as_str().trim() {
                "aws_autoscaling" => out.push(Requirement {
                    file: f.file.clone(),
                    pos: pos(backend),
                    path: format!("{group}.backend"),
                    need: Need::AwsCredentials,
                }),
                "webhook" => {
                    if let Some(ca) = e.spec.webhook_ca_file.as_ref() {
                        let value = ca.as_str().trim();
                        if !is_null(ca) && !value.is_empty() {
                            out.push(Requirement {
                                file: f.file.clone(),
                                pos: pos(ca),
                                path: format!("{group}.webhook_ca_file"),
                                need: Need::File(resolve_path(&f.file, value)),
                            });
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
