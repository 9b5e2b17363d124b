//! Message rendering against reference §4 and the test vectors of §7.14.

use super::*;
use crate::model::AlarmSet;
use crate::state::{CompositeReasonData, TriggeringAlarm, TriggeringState};
use crate::timefmt::parse_rfc3339;

fn set(yaml: &str) -> AlarmSet {
    crate::validate(&[("t.yaml", yaml)]).unwrap_or_else(|e| panic!("{e}"))
}

fn ts(s: &str) -> Timestamp {
    parse_rfc3339(s).unwrap()
}

/// The alarm of the full observed example in §4.1.
const LAMBDA_ERRORS: &str = r#"
alarms:
  - name: X
    description: "…"
    namespace: AWS/Lambda
    metric_name: Errors
    dimensions: {FunctionName: fn}
    statistic: Sum
    period_seconds: 300
    evaluation_periods: 1
    threshold: 1
    comparison_operator: GreaterThanOrEqualToThreshold
    treat_missing_data: notBreaching
    alarm_actions: ["arn:aws:sns:eu-west-1:123456789012:t"]
    ok_actions: ["arn:aws:sns:eu-west-1:123456789012:t"]
"#;

const WEB: &str = r#"
alarms:
  - name: web-p99
    namespace: App/Web
    metric_name: Latency
    dimensions: {Service: web, Host: "*"}
    statistic: p99
    period_seconds: 60
    evaluation_periods: 5
    datapoints_to_alarm: 3
    threshold: 0.5
    comparison_operator: GreaterThanThreshold
    evaluate_low_sample_count_percentile: ignore
    unit: Seconds
    alarm_actions: ["mailto:oncall@example.com", "https://hooks.example/x"]
  - name: db-cpu
    namespace: AWS/RDS
    metric_name: CPUUtilization
    statistic: Average
    period_seconds: 60
    evaluation_periods: 1
    threshold: 90
    comparison_operator: GreaterThanThreshold
composite_alarms:
  - name: web-degraded
    description: Web is slow and the database is busy
    alarm_rule: ALARM("web-p99") AND ALARM("db-cpu")
    alarm_actions: ["arn:aws:sns:us-east-1:123456789012:ops"]
"#;

fn eu_west_1() -> MessageSettings {
    MessageSettings::try_new("123456789012", "eu-west-1", None).unwrap()
}

#[test]
fn full_observed_example_of_4_1_is_reproduced_byte_for_byte() {
    // §4.1 "Full observed example".
    let s = set(LAMBDA_ERRORS);
    let t = Transition {
        timestamp: ts("2024-03-19T17:19:14.422Z"),
        old_state: StateValue::Alarm,
        new_state: StateValue::Ok,
        reason: "Threshold Crossed: 1 datapoint [0.0 (19/03/24 17:14:00)] was not greater than or equal to the threshold (1.0).".into(),
        reason_data: None,
    };
    let event = AlarmEvent {
        name: "X",
        definition: AlarmDefinition::Metric(&s.alarms[0]),
        transition: &t,
        dimensions: None,
        configuration_updated: Some(ts("2023-08-17T08:47:29.454Z")),
    };
    let expected = concat!(
        r#"{"AlarmName":"X","AlarmDescription":"…","AWSAccountId":"123456789012","#,
        r#""AlarmConfigurationUpdatedTimestamp":"2023-08-17T08:47:29.454+0000","NewStateValue":"OK","#,
        r#""NewStateReason":"Threshold Crossed: 1 datapoint [0.0 (19/03/24 17:14:00)] was not greater than or equal to the threshold (1.0).","#,
        r#""StateChangeTime":"2024-03-19T17:19:14.422+0000","Region":"EU (Ireland)","#,
        r#""AlarmArn":"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:X","OldStateValue":"ALARM","#,
        r#""OKActions":["arn:aws:sns:eu-west-1:123456789012:t"],"AlarmActions":["arn:aws:sns:eu-west-1:123456789012:t"],"#,
        r#""InsufficientDataActions":[],"#,
        r#""Trigger":{"MetricName":"Errors","Namespace":"AWS/Lambda","StatisticType":"Statistic","Statistic":"SUM","#,
        r#""Unit":null,"Dimensions":[{"value":"fn","name":"FunctionName"}],"Period":300,"EvaluationPeriods":1,"#,
        r#""ComparisonOperator":"GreaterThanOrEqualToThreshold","Threshold":1.0,"TreatMissingData":"notBreaching","#,
        r#""EvaluateLowSampleCountPercentile":""}}"#
    );
    assert_eq!(render_message(&eu_west_1(), &event), expected);
}

#[test]
fn test_vectors_of_7_14() {
    let s = set(LAMBDA_ERRORS);
    let settings = eu_west_1();
    // subject, ALARM, eu-west-1
    assert_eq!(
        render_subject(&settings, "X", StateValue::Alarm),
        r#"ALARM: "X" in EU (Ireland)"#
    );
    let t = Transition {
        timestamp: ts("2026-03-03T01:35:00Z"),
        old_state: StateValue::Ok,
        new_state: StateValue::Alarm,
        reason: "r".into(),
        reason_data: None,
    };
    let event = AlarmEvent {
        name: "X",
        definition: AlarmDefinition::Metric(&s.alarms[0]),
        transition: &t,
        dimensions: None,
        configuration_updated: None,
    };
    let text = render_message(&settings, &event);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    // SNS Trigger.Statistic for Sum
    assert_eq!(v["Trigger"]["Statistic"], "SUM");
    // Trigger.Dimensions for FunctionName=fn (key order checked on the text: `Value`
    // sorts its keys).
    assert!(
        text.contains(r#""Dimensions":[{"value":"fn","name":"FunctionName"}]"#),
        "{text}"
    );
    // Older payloads leave the configuration timestamp out.
    assert!(v.get("AlarmConfigurationUpdatedTimestamp").is_none());
}

#[test]
fn message_fields_one_by_one() {
    // §4.1 table, field by field, for a percentile alarm instance with M set.
    let s = set(WEB);
    let settings = MessageSettings::default();
    let t = Transition {
        timestamp: ts("2024-03-16T12:16:45.770Z"),
        old_state: StateValue::InsufficientData,
        new_state: StateValue::Alarm,
        reason: "Threshold Crossed: ...".into(),
        reason_data: None,
    };
    let dims = [
        Dimension::new("Host", "h1"),
        Dimension::new("Service", "web"),
    ];
    let dims_key = thermostat_metrics::SeriesKey::new("T", "m", dims.to_vec());
    let event = AlarmEvent {
        name: "web-p99[Host=h1]",
        definition: AlarmDefinition::Metric(&s.alarms[0]),
        transition: &t,
        dimensions: Some(dims_key.dimensions()),
        configuration_updated: None,
    };
    let m = cloudwatch_message(&settings, &event);
    assert_eq!(m.alarm_name, "web-p99[Host=h1]");
    assert_eq!(m.alarm_description, None);
    assert_eq!(m.aws_account_id, "123456789012");
    assert_eq!(m.new_state_value, StateValue::Alarm);
    assert_eq!(m.old_state_value, StateValue::InsufficientData);
    assert_eq!(m.state_change_time, "2024-03-16T12:16:45.770+0000");
    assert_eq!(m.region, "US East (N. Virginia)");
    assert_eq!(
        m.alarm_arn,
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-p99[Host=h1]"
    );
    assert_eq!(
        m.alarm_actions,
        ["mailto:oncall@example.com", "https://hooks.example/x"]
    );
    let tr = m.trigger.as_ref().unwrap();
    assert_eq!(tr.statistic_type, "ExtendedStatistic");
    assert_eq!(tr.statistic, None);
    assert_eq!(tr.extended_statistic.as_deref(), Some("p99"));
    assert_eq!(tr.unit.as_deref(), Some("Seconds"));
    assert_eq!(tr.dimensions[0].value, "h1");
    assert_eq!(tr.period, 60);
    assert_eq!(tr.evaluation_periods, 5);
    assert_eq!(tr.datapoints_to_alarm, Some(3));
    assert_eq!(tr.comparison_operator, "GreaterThanThreshold");
    assert_eq!(tr.threshold, 0.5);
    assert_eq!(tr.treat_missing_data, "missing");
    assert_eq!(tr.evaluate_low_sample_count_percentile, "ignore");
    let text = render_message(&settings, &event);
    assert!(
        text.contains(r#""ExtendedStatistic":"p99","Unit":"Seconds""#),
        "{text}"
    );
    assert!(
        text.contains(r#""EvaluationPeriods":5,"DatapointsToAlarm":3,"#),
        "{text}"
    );
    assert!(text.len() <= MAX_MESSAGE_BYTES);
    let back: CloudWatchMessage = serde_json::from_str(&text).unwrap();
    assert_eq!(back, m);
    insta::assert_snapshot!("metric_percentile_instance", text);
}

fn composite_transition() -> Transition {
    Transition {
        timestamp: ts("2022-07-22T15:57:45Z"),
        old_state: StateValue::Ok,
        new_state: StateValue::Alarm,
        reason: "arn:aws:cloudwatch:us-east-1:123456789012:alarm:db-cpu transitioned to ALARM at Friday 22 July, 2022 15:57:45 UTC".into(),
        reason_data: Some(ReasonData::Composite(CompositeReasonData {
            triggering_alarms: vec![TriggeringAlarm {
                arn: "db-cpu".into(),
                state: TriggeringState {
                    value: StateValue::Alarm,
                    timestamp: "2022-07-22T15:57:45.000+0000".into(),
                },
            }],
        })),
    }
}

#[test]
fn composite_message_has_rule_and_children_instead_of_trigger() {
    // §4.1: composite alarms have no Trigger; AlarmRule and TriggeringChildren instead.
    let s = set(WEB);
    let t = composite_transition();
    let event = AlarmEvent {
        name: "web-degraded",
        definition: AlarmDefinition::Composite(&s.composites[0]),
        transition: &t,
        dimensions: None,
        configuration_updated: Some(ts("2022-07-01T00:00:00Z")),
    };
    let text = render_message(&MessageSettings::default(), &event);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v.get("Trigger").is_none());
    assert_eq!(v["AlarmRule"], r#"ALARM("web-p99") AND ALARM("db-cpu")"#);
    assert_eq!(
        v["TriggeringChildren"][0]["Arn"],
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:db-cpu"
    );
    assert_eq!(v["TriggeringChildren"][0]["State"]["Value"], "ALARM");
    insta::assert_snapshot!("composite", text);
}

#[test]
fn subjects_stay_under_100_characters() {
    // §4.2/§4.3: < 100 characters; the state prefix and region are kept.
    let settings = MessageSettings::try_new("123456789012", "ap-southeast-2", None).unwrap();
    assert_eq!(
        render_subject(
            &settings,
            "test-lambda-parity",
            StateValue::InsufficientData
        ),
        r#"INSUFFICIENT_DATA: "test-lambda-parity" in Asia Pacific (Sydney)"#
    );
    let long = "n".repeat(255);
    let s = render_subject(&settings, &long, StateValue::InsufficientData);
    assert!(s.chars().count() < 100, "{s}");
    assert!(s.starts_with("INSUFFICIENT_DATA: \"nnn"));
    assert!(s.ends_with("...\" in Asia Pacific (Sydney)"), "{s}");
    let china = MessageSettings::try_new("123456789012", "cn-north-1", None).unwrap();
    assert_eq!(
        render_subject(&china, "db_mem", StateValue::Ok),
        r#"OK: "db_mem" in China (Beijing)"#
    );
}

#[test]
fn settings_are_checked() {
    assert!(MessageSettings::try_new("12345678901", "us-east-1", None).is_err());
    assert!(MessageSettings::try_new("12345678901a", "us-east-1", None).is_err());
    assert!(MessageSettings::try_new("123456789012", "US-East-1", None).is_err());
    assert!(MessageSettings::try_new("123456789012", "us-east", None).is_err());
    assert!(MessageSettings::try_new("123456789012", "us-east-1", Some("ftp://x")).is_err());
    let s = MessageSettings::try_new("000000000000", "xx-new-9", Some("http://t:8080/")).unwrap();
    assert_eq!(s.region_display_name(), "xx-new-9");
    assert_eq!(
        s.alarm_link("a b/c").as_deref(),
        Some("http://t:8080/alarms/a%20b%2Fc")
    );
}

#[test]
fn email_names_alarm_states_reason_and_link() {
    let s = set(LAMBDA_ERRORS);
    let settings = MessageSettings::try_new(
        "123456789012",
        "eu-west-1",
        Some("https://thermostat.example"),
    )
    .unwrap();
    let t = Transition {
        timestamp: ts("2019-08-05T17:04:03Z"),
        old_state: StateValue::InsufficientData,
        new_state: StateValue::Alarm,
        reason: "Threshold Crossed: 1 datapoint [6.0 (05/08/19 16:59:00)] was greater than or equal to the threshold (1.0).".into(),
        reason_data: None,
    };
    let event = AlarmEvent {
        name: "X",
        definition: AlarmDefinition::Metric(&s.alarms[0]),
        transition: &t,
        dimensions: None,
        configuration_updated: None,
    };
    let e = render_email(&settings, &event);
    assert_eq!(e.subject, r#"ALARM: "X" in EU (Ireland)"#);
    assert!(e.body.contains("\"Monday 05 August, 2019 17:04:03 UTC\""));
    assert!(
        e.body
            .contains("- State Change:               INSUFFICIENT_DATA -> ALARM\n")
    );
    assert!(e.body.contains("https://thermostat.example/alarms/X\n"));
    assert!(e.body.contains(
        "- The alarm is in the ALARM state when the metric is GreaterThanOrEqualToThreshold 1.0 for 300 seconds.\n"
    ));
    assert!(
        e.body
            .contains("- Dimensions:                          [FunctionName = fn]\n")
    );
    assert!(
        e.body
            .contains("- Unit:                                not specified\n")
    );
    insta::assert_snapshot!("email_metric", e.body);
}

#[test]
fn slack_and_pagerduty_payloads() {
    let s = set(WEB);
    let settings =
        MessageSettings::try_new("123456789012", "us-east-1", Some("http://t:8080")).unwrap();
    let t = composite_transition();
    let event = AlarmEvent {
        name: "web-degraded",
        definition: AlarmDefinition::Composite(&s.composites[0]),
        transition: &t,
        dimensions: None,
        configuration_updated: None,
    };
    let slack = render_slack(&settings, &event);
    let v: serde_json::Value = serde_json::from_str(&slack).unwrap();
    assert_eq!(
        v["text"],
        "ALARM: \"web-degraded\" in US East (N. Virginia)"
    );
    assert_eq!(v["attachments"][0]["color"], "danger");
    insta::assert_snapshot!("slack_composite", slack);

    let pd = render_pagerduty(&settings, &event, "R0UT1NG");
    let v: serde_json::Value = serde_json::from_str(&pd).unwrap();
    assert_eq!(v["event_action"], "trigger");
    assert_eq!(v["routing_key"], "R0UT1NG");
    assert_eq!(
        v["dedup_key"],
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-degraded"
    );
    assert_eq!(v["payload"]["severity"], "critical");
    assert_eq!(v["payload"]["custom_details"]["AlarmName"], "web-degraded");
    insta::assert_snapshot!("pagerduty_trigger", pd);

    let ok = Transition {
        old_state: StateValue::Alarm,
        new_state: StateValue::Ok,
        ..composite_transition()
    };
    let event = AlarmEvent {
        transition: &ok,
        ..event
    };
    assert_eq!(
        render_pagerduty(&settings, &event, "R0UT1NG"),
        r#"{"routing_key":"R0UT1NG","event_action":"resolve","dedup_key":"arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-degraded"}"#
    );
}

#[test]
fn slack_escapes_control_characters() {
    assert_eq!(slack_escape("a<b>&c"), "a&lt;b&gt;&amp;c");
}

#[test]
fn extended_statistics_travel_as_extended_statistic() {
    // Like percentiles, the other extended statistics are CloudWatch `ExtendedStatistic`s in
    // the trigger, named as written.
    for stat in ["TM(10%:90%)", "IQM", "PR(:300)", "tc90"] {
        let s = set(&LAMBDA_ERRORS.replace("statistic: Sum", &format!("statistic: {stat}")));
        let t = Transition {
            timestamp: ts("2024-03-16T12:16:45.770Z"),
            old_state: StateValue::Ok,
            new_state: StateValue::Alarm,
            reason: "Threshold Crossed: ...".into(),
            reason_data: None,
        };
        let event = AlarmEvent {
            name: "X",
            definition: AlarmDefinition::Metric(&s.alarms[0]),
            transition: &t,
            dimensions: None,
            configuration_updated: None,
        };
        let m = cloudwatch_message(&MessageSettings::default(), &event);
        let tr = m.trigger.as_ref().unwrap();
        assert_eq!(tr.statistic_type, "ExtendedStatistic", "{stat}");
        assert_eq!(tr.statistic, None, "{stat}");
        assert_eq!(tr.extended_statistic.as_deref(), Some(stat));
        assert_eq!(tr.evaluate_low_sample_count_percentile, "", "{stat}");
        let text = render_message(&MessageSettings::default(), &event);
        let json = serde_json::to_string(stat).unwrap();
        assert!(
            text.contains(&format!(r#""ExtendedStatistic":{json}"#)),
            "{text}"
        );
    }
}
