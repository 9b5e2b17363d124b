//! Validation rules (reference §5.1, §5.3, §5.6, §5.10) and the example files.

use super::*;
use crate::managed::{HIGH_DATAPOINTS, LOW_DATAPOINTS};
use thermostat_alarms::model::ComparisonOperator;

const WEB_ALARMS: &str = include_str!("../../../examples/web-alarms.yaml");
const SCALING_WEB: &str = include_str!("../../../examples/scaling-web.yaml");
const SCALING_FLEET: &str = include_str!("../../../production-examples/scaling-fleet.yaml");

fn load(files: &[(&str, &str)]) -> Result<ScalingSet, String> {
    let alarms = thermostat_alarms::validate(files).map_err(|e| e.to_string())?;
    validate(files, &alarms).map_err(|e| e.to_string())
}

fn errors(text: &str) -> String {
    match load(&[("scaling.yaml", text)]) {
        Ok(_) => String::new(),
        Err(e) => e,
    }
}

#[test]
fn examples_validate() {
    let files = [
        ("examples/web-alarms.yaml", WEB_ALARMS),
        ("examples/scaling-web.yaml", SCALING_WEB),
        ("production-examples/scaling-fleet.yaml", SCALING_FLEET),
    ];
    let set = load(&files).unwrap_or_else(|e| panic!("{e}"));
    // The AWS group needs credentials; the simulated and webhook groups need nothing.
    let needs: Vec<String> = requirements(&files).iter().map(|r| r.to_string()).collect();
    assert_eq!(
        needs,
        [
            "production-examples/scaling-fleet.yaml:9:14: scaling_groups.api.backend: needs AWS credentials"
        ]
    );
    let names: Vec<&str> = set.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["web", "api", "batch"]);

    let web = set.group("web").unwrap();
    assert_eq!(web.configured_sizes(), Some((2, 20, 2)));
    assert_eq!(web.launch, Duration::from_secs(60));
    assert_eq!(web.default_instance_warmup, Some(Duration::from_secs(120)));
    assert_eq!(
        web.policy("scale-out").unwrap().kind,
        PolicyKind::SimpleScaling {
            adjustment_type: AdjustmentType::ChangeInCapacity,
            scaling_adjustment: 2,
            min_adjustment_magnitude: None,
            cooldown: Some(Duration::from_secs(120)),
        }
    );
    match &web.policy("step-in").unwrap().kind {
        PolicyKind::StepScaling { steps, .. } => {
            // Sorted by lower bound, the open-ended step first.
            assert_eq!(steps[0].lower, None);
            assert_eq!(steps[0].scaling_adjustment, -2);
        }
        other => panic!("{other:?}"),
    }
    let biz = &web.scheduled_actions[0];
    assert_eq!(biz.recurrence.as_ref().unwrap().time_zone, "Europe/Berlin");
    assert_eq!((biz.min_size, biz.desired_capacity), (Some(4), Some(6)));

    let api = set.group("api").unwrap();
    assert_eq!(
        api.backend,
        Backend::AwsAutoscaling {
            auto_scaling_group_name: "api-asg".into()
        }
    );
    assert_eq!(api.configured_sizes(), None);
    let batch = set.group("batch").unwrap();
    assert_eq!(
        batch.backend,
        Backend::Webhook {
            url: "https://scaler.internal/batch".into(),
            ca_file: None,
        }
    );

    // Target tracking creates its alarms (reference §5.7), named deterministically.
    let managed = set.managed_alarms();
    let names: Vec<&str> = managed.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "TargetTracking-api-AlarmHigh-cpu-target",
            "TargetTracking-api-AlarmLow-cpu-target",
            "TargetTracking-batch-AlarmHigh-queue-target",
            "TargetTracking-batch-AlarmLow-queue-target",
        ]
    );
    let high = &managed[0];
    assert_eq!(
        (high.namespace.as_str(), high.metric_name.as_str()),
        ("AWS/EC2", "CPUUtilization")
    );
    assert_eq!(high.dimensions[0].value, "api-asg");
    assert_eq!(
        high.comparison_operator,
        ComparisonOperator::GreaterThanThreshold
    );
    assert_eq!((high.evaluation_periods, high.m()), (HIGH_DATAPOINTS, 3));
    assert_eq!(high.threshold, 50.0);
    assert_eq!(
        high.actions.alarm,
        [thermostat_alarms::Action::ScalingPolicy {
            group: "api".into(),
            policy: "cpu-target".into()
        }]
    );
    let low = &managed[1];
    assert_eq!(
        low.comparison_operator,
        ComparisonOperator::LessThanThreshold
    );
    assert_eq!((low.evaluation_periods, low.m()), (LOW_DATAPOINTS, 15));
    assert_eq!(low.threshold, 45.0);
    assert_eq!(managed[2].namespace, "App/Batch");
}

#[test]
fn every_error_is_reported_with_its_position() {
    let text = r#"scaling_groups:
  - name: web
    min_size: 5
    max_size: 3
    desired_capacity: 9
    backend: simulated
    webhook_url: http://x
    default_instance_warmup_seconds: 7200
    policies:
      - name: up
        adjustment_type: ChangeInCapacity
      - name: step
        policy_type: StepScaling
        adjustment_type: ChangeInCapacity
        cooldown_seconds: 60
        step_adjustments:
          - {metric_interval_lower_bound: 0, metric_interval_upper_bound: 10, scaling_adjustment: 1}
          - {metric_interval_lower_bound: 20, scaling_adjustment: 2}
      - name: pct
        adjustment_type: ExactCapacity
        scaling_adjustment: -1
        min_adjustment_magnitude: 2
      - name: tt
        policy_type: TargetTrackingScaling
        target_tracking: {predefined_metric: ASGAverageCPUUtilization, target_value: 0}
      - name: up
        policy_type: Bogus
    scheduled_actions:
      - {name: s1, recurrence: "0 8 * * FUNDAY", time_zone: Mars/Base}
      - {name: s2}
  - name: web
    min_size: 1
    max_size: 1
  - name: api
    backend: aws_autoscaling
alarms:
  - name: high
    namespace: App
    metric_name: M
    statistic: Average
    period_seconds: 60
    evaluation_periods: 1
    threshold: 1
    comparison_operator: GreaterThanThreshold
    alarm_actions: ["policy:web/nope", "policy:wbe/up", "policy:api/x", "arn:aws:autoscaling:eu-west-1:123456789012:scalingPolicy:1a:autoScalingGroupName/web:policyName/up"]
"#;
    let got = errors(text);
    let want = [
        "scaling.yaml:4:15: scaling_groups.web.max_size: must be at least min_size (5) (got 3)",
        "scaling.yaml:5:23: scaling_groups.web.desired_capacity: must be at most max_size (3) (got 9)",
        "scaling.yaml:7:18: scaling_groups.web.webhook_url: applies only to backend webhook",
        "scaling.yaml:8:38: scaling_groups.web.default_instance_warmup_seconds: must be between -1 and 3600 (got 7200)",
        "scaling.yaml:10:13: scaling_groups.web.policies.up.scaling_adjustment: is required",
        "scaling.yaml:15:27: scaling_groups.web.policies.step.cooldown_seconds: applies only to SimpleScaling policies (this one is StepScaling)",
        "scaling.yaml:18:13: scaling_groups.web.policies.step.step_adjustments: step intervals must not leave a gap: one ends at 10 and the next starts at 20",
        "scaling.yaml:21:29: scaling_groups.web.policies.pct.scaling_adjustment: must be at least 0 with adjustment_type ExactCapacity (got -1)",
        "scaling.yaml:22:35: scaling_groups.web.policies.pct.min_adjustment_magnitude: applies only with adjustment_type PercentChangeInCapacity",
        "scaling.yaml:25:86: scaling_groups.web.policies.tt.target_tracking.target_value: must be greater than 0 (got 0)",
        "scaling.yaml:27:22: scaling_groups.web.policies.up.policy_type: must be one of SimpleScaling, StepScaling, TargetTrackingScaling (got \"Bogus\")",
        "scaling.yaml:29:9: scaling_groups.web.scheduled_actions.s1: must set at least one of min_size, max_size and desired_capacity",
        "scaling.yaml:29:32: scaling_groups.web.scheduled_actions.s1.recurrence: must be a valid cron expression (got \"0 8 * * FUNDAY\"",
        "scaling.yaml:29:61: scaling_groups.web.scheduled_actions.s1.time_zone: must be an IANA time zone name such as UTC or Europe/Berlin (got \"Mars/Base\")",
        "scaling.yaml:30:9: scaling_groups.web.scheduled_actions.s2.start_time: is required when there is no recurrence (a one-time action runs at its start_time)",
        "scaling.yaml:30:9: scaling_groups.web.scheduled_actions.s2: must set at least one of min_size, max_size and desired_capacity",
        "scaling.yaml:31:11: scaling_groups.web.name: duplicate scaling group name \"web\" (first defined at scaling.yaml:2:11); names must be unique across all files",
        "scaling.yaml:45:40: alarms.high.alarm_actions[1]: refers to unknown scaling group \"wbe\" (did you mean \"web\"?)",
        "scaling.yaml:45:57: alarms.high.alarm_actions[2]: refers to unknown policy \"x\" of scaling group \"api\"",
    ];
    let lines: Vec<&str> = got.lines().collect();
    for w in want {
        assert!(
            lines.iter().any(|l| l.starts_with(w)),
            "missing {w:?} in:\n{got}"
        );
    }
    assert_eq!(lines.len(), want.len(), "{got}");
}

#[test]
fn actions_must_name_existing_non_tracking_policies() {
    let head = "scaling_groups:\n  - {name: web, min_size: 1, max_size: 4, policies: [{name: up, adjustment_type: ChangeInCapacity, scaling_adjustment: 1}, {name: tt, policy_type: TargetTrackingScaling, target_tracking: {predefined_metric: ASGAverageCPUUtilization, target_value: 50}}]}\nalarms:\n  - {name: a, namespace: App, metric_name: M, statistic: Sum, period_seconds: 60, evaluation_periods: 1, threshold: 1, comparison_operator: GreaterThanThreshold, alarm_actions: [";
    let ok = format!("{head}\"policy:web/up\"]}}\n");
    assert_eq!(errors(&ok), "");
    let arn = format!(
        "{head}\"arn:aws:autoscaling:eu-west-1:123456789012:scalingPolicy:1a:autoScalingGroupName/web:policyName/up\"]}}\n"
    );
    assert_eq!(errors(&arn), "");
    let tt = format!("{head}\"policy:web/tt\"]}}\n");
    assert!(
        errors(&tt)
            .contains("alarms.a.alarm_actions[0]: refers to the target-tracking policy web/tt"),
        "{}",
        errors(&tt)
    );
    // A managed alarm's name must be free.
    let clash = format!(
        "{head}\"policy:web/up\"]}}\n  - {{name: TargetTracking-web-AlarmHigh-tt, namespace: App, metric_name: M, statistic: Sum, period_seconds: 60, evaluation_periods: 1, threshold: 1, comparison_operator: GreaterThanThreshold}}\n"
    );
    assert!(
        errors(&clash).contains(
            "scaling_groups.web.policies.tt: creates the alarm \"TargetTracking-web-AlarmHigh-tt\""
        ),
        "{}",
        errors(&clash)
    );
}

#[test]
fn scheduled_desired_must_fit_the_limits_in_force() {
    // Reference §5.10: a desired value outside min/max needs min/max in the same action.
    let base = "scaling_groups:\n  - name: web\n    min_size: 1\n    max_size: 4\n    scheduled_actions:\n";
    let bad =
        format!("{base}      - {{name: a, recurrence: \"0 8 * * *\", desired_capacity: 6}}\n");
    assert!(
        errors(&bad).contains(
            "desired_capacity: must be within the min_size (1) and max_size (4) in force"
        ),
        "{}",
        errors(&bad)
    );
    let good = format!(
        "{base}      - {{name: a, recurrence: \"0 8 * * *\", max_size: 8, desired_capacity: 6}}\n"
    );
    assert_eq!(errors(&good), "");
    let once = format!(
        "{base}      - {{name: a, start_time: \"2026-05-01T08:00:00+02:00\", end_time: \"2026-04-01T00:00:00Z\", desired_capacity: 2}}\n"
    );
    assert!(
        errors(&once).contains("end_time: must be after start_time"),
        "{}",
        errors(&once)
    );
}

#[test]
fn files_without_scaling_groups_are_fine() {
    let err = load(&[("a.yaml", WEB_ALARMS)]).unwrap_err();
    assert!(
        err.starts_with("a.yaml:22:")
            && err.ends_with(
                "alarms.web-high-cpu.alarm_actions[0]: refers to unknown scaling group \"web\""
            ),
        "{err}"
    );
    assert_eq!(load(&[("e.yaml", "")]), Ok(ScalingSet::default()));
}

#[test]
fn a_webhook_groups_ca_file_is_resolved_and_required() {
    let text = "scaling_groups:
  - name: batch
    backend: webhook
    min_size: 0
    max_size: 4
    webhook_url: https://scaler.internal/batch
    webhook_ca_file: certs/fleet-ca.pem
  - name: abs
    backend: webhook
    min_size: 0
    max_size: 4
    webhook_url: https://scaler.internal/abs
    webhook_ca_file: /etc/thermostat/ca.pem
  - name: plain
    backend: webhook
    min_size: 0
    max_size: 4
    webhook_url: https://scaler.internal/plain
";
    let files = [("conf/scaling.yaml", text)];
    let set = load(&files).unwrap_or_else(|e| panic!("{e}"));
    let ca = |g: &str| match &set.group(g).unwrap().backend {
        Backend::Webhook { ca_file, .. } => ca_file.clone(),
        other => panic!("{other:?}"),
    };
    // A relative path is resolved against the folder of the file that names it.
    assert_eq!(ca("batch").as_deref(), Some("conf/certs/fleet-ca.pem"));
    assert_eq!(ca("abs").as_deref(), Some("/etc/thermostat/ca.pem"));
    assert_eq!(ca("plain"), None);
    // Each bundle is a file the machine must have, at the position of its value.
    let needs: Vec<String> = requirements(&files).iter().map(|r| r.to_string()).collect();
    assert_eq!(
        needs,
        [
            "conf/scaling.yaml:7:22: scaling_groups.batch.webhook_ca_file: needs the file conf/certs/fleet-ca.pem",
            "conf/scaling.yaml:13:22: scaling_groups.abs.webhook_ca_file: needs the file /etc/thermostat/ca.pem",
        ]
    );
    assert!(matches!(
        &requirements(&files)[0].need,
        Need::File(p) if p == "conf/certs/fleet-ca.pem"
    ));
}

#[test]
fn a_ca_file_needs_an_https_webhook() {
    let text = "scaling_groups:
  - name: batch
    backend: webhook
    min_size: 0
    max_size: 4
    webhook_url: http://scaler.internal/batch
    webhook_ca_file: ca.pem
  - name: sim
    min_size: 0
    max_size: 4
    webhook_ca_file: ca.pem
  - name: asg
    backend: aws_autoscaling
    webhook_ca_file: ca.pem
  - name: empty
    backend: webhook
    min_size: 0
    max_size: 4
    webhook_url: https://scaler.internal/empty
    webhook_ca_file: \"\"
";
    assert_eq!(
        errors(text),
        [
            "scaling.yaml:7:22: scaling_groups.batch.webhook_ca_file: is only used with an https:// webhook_url (the webhook_url is http://)",
            "scaling.yaml:11:22: scaling_groups.sim.webhook_ca_file: applies only to backend webhook",
            "scaling.yaml:14:22: scaling_groups.asg.webhook_ca_file: applies only to backend webhook",
            "scaling.yaml:20:22: scaling_groups.empty.webhook_ca_file: must be a file path (got \"\")",
        ]
        .join("\n")
    );
    // A null value is no setting.
    let null = "scaling_groups:
  - {name: b, backend: webhook, min_size: 0, max_size: 1, webhook_url: https://h/b, webhook_ca_file: ~}
";
    assert_eq!(errors(null), "");
    assert!(requirements(&[("s.yaml", null)]).is_empty());
}
