//! The alarm operations: golden requests in JSON and AWS Query, the shapes' own checks, and
//! `DescribeAlarms` / `DescribeAlarmHistory` results in each protocol.

use thermostat_cloudwatch::output::{
    AlarmHistoryItem, DescribeAlarmHistoryOutput, DescribeAlarmsOutput, MetricAlarm,
};
use thermostat_cloudwatch::request::{DescribeAlarms, Dimension, PutMetricAlarm, SetAlarmState};
use thermostat_cloudwatch::{Error, Output, Protocol, Request, encode_output};
use thermostat_metrics::{Timestamp, Unit};

use crate::protocols::{json, query_post};

fn error_of(result: Result<Request, thermostat_cloudwatch::Rejection>) -> Error {
    match result {
        Ok(request) => panic!("accepted: {request:?}"),
        Err(rejection) => rejection.error,
    }
}

const PUT: &str = r#"{"AlarmName":"cpu","MetricName":"Cpu","Namespace":"App","Statistic":"Average",
"Dimensions":[{"Name":"Host","Value":"a"}],"Period":60,"EvaluationPeriods":3,"DatapointsToAlarm":2,
"Threshold":80.5,"ComparisonOperator":"GreaterThanThreshold","TreatMissingData":"breaching",
"ActionsEnabled":false,"AlarmActions":["arn:aws:sns:us-east-1:000000000000:ops"],"Unit":"Percent",
"AlarmDescription":"CPU"}"#;

fn expected_put() -> PutMetricAlarm {
    PutMetricAlarm {
        alarm_name: "cpu".into(),
        alarm_description: Some("CPU".into()),
        actions_enabled: Some(false),
        alarm_actions: vec!["arn:aws:sns:us-east-1:000000000000:ops".into()],
        metric_name: Some("Cpu".into()),
        namespace: Some("App".into()),
        statistic: Some("Average".into()),
        dimensions: vec![Dimension {
            name: "Host".into(),
            value: "a".into(),
        }],
        period_seconds: Some(60),
        unit: Some(Unit::Percent),
        evaluation_periods: 3,
        datapoints_to_alarm: Some(2),
        threshold: Some(80.5),
        comparison_operator: "GreaterThanThreshold".into(),
        treat_missing_data: Some("breaching".into()),
        ..PutMetricAlarm::default()
    }
}

#[test]
fn put_metric_alarm_in_json_and_query() {
    assert_eq!(
        json("PutMetricAlarm", PUT).unwrap(),
        Request::PutMetricAlarm(expected_put())
    );
    let query = "Action=PutMetricAlarm&Version=2010-08-01&AlarmName=cpu&MetricName=Cpu\
        &Namespace=App&Statistic=Average&Dimensions.member.1.Name=Host\
        &Dimensions.member.1.Value=a&Period=60&EvaluationPeriods=3&DatapointsToAlarm=2\
        &Threshold=80.5&ComparisonOperator=GreaterThanThreshold&TreatMissingData=breaching\
        &ActionsEnabled=false&AlarmActions.member.1=arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3Aops\
        &Unit=Percent&AlarmDescription=CPU";
    assert_eq!(
        query_post(query).unwrap(),
        Request::PutMetricAlarm(expected_put())
    );
}

#[test]
fn put_metric_alarm_shapes_are_checked() {
    let e = error_of(json(
        "PutMetricAlarm",
        r#"{"AlarmName":"a","Statistic":"Sum","ExtendedStatistic":"p99","EvaluationPeriods":1,"ComparisonOperator":"GreaterThanThreshold"}"#,
    ));
    assert_eq!(e.code(), "InvalidParameterCombination", "{e}");
    let e = error_of(json(
        "PutMetricAlarm",
        r#"{"AlarmName":"a","ComparisonOperator":"GreaterThanThreshold"}"#,
    ));
    assert_eq!(e, Error::MissingParameter("EvaluationPeriods".into()));
    // A math alarm names its metrics in Metrics only.
    let e = error_of(json(
        "PutMetricAlarm",
        r#"{"AlarmName":"a","EvaluationPeriods":1,"ComparisonOperator":"GreaterThanThreshold","MetricName":"Cpu","Metrics":[{"Id":"e1","Expression":"1"}]}"#,
    ));
    assert_eq!(e.code(), "InvalidParameterCombination", "{e}");
    let e = error_of(json(
        "PutMetricAlarm",
        r#"{"AlarmName":"a","EvaluationPeriods":1,"ComparisonOperator":"GreaterThanThreshold","Metrics":[{"Id":"e1"}]}"#,
    ));
    assert!(e.to_string().contains("Metrics.member.1.MetricStat"), "{e}");
    let math = json(
        "PutMetricAlarm",
        r#"{"AlarmName":"a","EvaluationPeriods":1,"ComparisonOperator":"GreaterThanUpperThreshold","ThresholdMetricId":"ad1","Metrics":[{"Id":"m1","MetricStat":{"Metric":{"Namespace":"N","MetricName":"M"},"Period":60,"Stat":"Sum"}},{"Id":"ad1","Expression":"ANOMALY_DETECTION_BAND(m1)"}]}"#,
    )
    .unwrap();
    let Request::PutMetricAlarm(math) = math else {
        panic!("{math:?}")
    };
    assert_eq!(math.metrics.len(), 2);
    assert_eq!(math.threshold_metric_id.as_deref(), Some("ad1"));
    let six: Vec<String> = (0..6).map(|i| format!("\"arn:{i}\"")).collect();
    let e = error_of(json(
        "PutMetricAlarm",
        &format!(
            r#"{{"AlarmName":"a","EvaluationPeriods":1,"ComparisonOperator":"GreaterThanThreshold","OKActions":[{}]}}"#,
            six.join(",")
        ),
    ));
    assert!(e.to_string().contains("OKActions"), "{e}");
}

#[test]
fn describe_delete_set_and_history_requests() {
    assert_eq!(
        json(
            "DescribeAlarms",
            r#"{"AlarmNamePrefix":"c","StateValue":"ALARM","MaxRecords":10,"AlarmTypes":["MetricAlarm"]}"#
        )
        .unwrap(),
        Request::DescribeAlarms(DescribeAlarms {
            alarm_name_prefix: Some("c".into()),
            state_value: Some("ALARM".into()),
            max_records: Some(10),
            alarm_types: vec!["MetricAlarm".into()],
            ..DescribeAlarms::default()
        })
    );
    let e = error_of(json(
        "DescribeAlarms",
        r#"{"AlarmNames":["a"],"AlarmNamePrefix":"a"}"#,
    ));
    assert_eq!(e.code(), "InvalidParameterCombination");
    let e = error_of(json("DescribeAlarms", r#"{"StateValue":"BAD"}"#));
    assert_eq!(e.code(), "InvalidParameterValue");
    assert_eq!(
        query_post(
            "Action=DeleteAlarms&Version=2010-08-01&AlarmNames.member.1=a&AlarmNames.member.2=b"
        )
        .unwrap(),
        Request::DeleteAlarms(vec!["a".into(), "b".into()])
    );
    assert_eq!(
        error_of(json("DeleteAlarms", "{}")),
        Error::MissingParameter("AlarmNames".into())
    );
    assert_eq!(
        json(
            "SetAlarmState",
            r#"{"AlarmName":"a","StateValue":"OK","StateReason":"r","StateReasonData":"{}"}"#
        )
        .unwrap(),
        Request::SetAlarmState(SetAlarmState {
            alarm_name: "a".into(),
            state_value: "OK".into(),
            state_reason: "r".into(),
            state_reason_data: Some("{}".into()),
        })
    );
    assert_eq!(
        json("EnableAlarmActions", r#"{"AlarmNames":["a"]}"#).unwrap(),
        Request::EnableAlarmActions(vec!["a".into()])
    );
    let Request::DescribeAlarmHistory(h) = json(
        "DescribeAlarmHistory",
        r#"{"AlarmName":"a","HistoryItemType":"StateUpdate","StartDate":1,"ScanBy":"TimestampAscending"}"#,
    )
    .unwrap() else {
        panic!("not a DescribeAlarmHistory");
    };
    assert_eq!(h.alarm_name.as_deref(), Some("a"));
    assert_eq!(h.start_date, Some(Timestamp::from_secs(1)));
}

fn described() -> Output {
    Output::DescribeAlarms(DescribeAlarmsOutput {
        metric_alarms: vec![MetricAlarm {
            alarm_name: "cpu".into(),
            alarm_arn: "arn:aws:cloudwatch:us-east-1:000000000000:alarm:cpu".into(),
            actions_enabled: true,
            state_value: "ALARM".into(),
            state_reason: "r <&>".into(),
            state_updated: Some(Timestamp::from_secs(60)),
            metric_name: "Cpu".into(),
            namespace: "App".into(),
            statistic: "p99".into(),
            extended: true,
            period_seconds: 60,
            evaluation_periods: 1,
            threshold: 1.5,
            comparison_operator: "GreaterThanThreshold".into(),
            treat_missing_data: "missing".into(),
            ..MetricAlarm::default()
        }],
        ..DescribeAlarmsOutput::default()
    })
}

#[test]
fn describe_alarms_results_in_json_and_xml() {
    let r = encode_output(Protocol::AwsJson, &described(), "id");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let a = &v["MetricAlarms"][0];
    assert_eq!(a["ExtendedStatistic"], "p99");
    assert!(a.get("Statistic").is_none());
    assert_eq!(a["StateUpdatedTimestamp"], 60);
    assert_eq!(a["Period"], 60);
    assert_eq!(v["CompositeAlarms"], serde_json::json!([]));
    let xml =
        String::from_utf8(encode_output(Protocol::AwsQuery, &described(), "id").body).unwrap();
    assert!(xml.starts_with("<DescribeAlarmsResponse"), "{xml}");
    assert!(
        xml.contains("<MetricAlarms><member><AlarmName>cpu</AlarmName>"),
        "{xml}"
    );
    assert!(
        xml.contains("<StateReason>r &lt;&amp;&gt;</StateReason>"),
        "{xml}"
    );

    let history = Output::DescribeAlarmHistory(DescribeAlarmHistoryOutput {
        items: vec![AlarmHistoryItem {
            alarm_name: "cpu".into(),
            alarm_type: "MetricAlarm".into(),
            timestamp: Timestamp::from_secs(1),
            history_item_type: "StateUpdate".into(),
            history_summary: "Alarm updated from OK to ALARM".into(),
            history_data: "{}".into(),
        }],
        next_token: None,
    });
    let r = encode_output(Protocol::AwsJson, &history, "id");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        v["AlarmHistoryItems"][0]["HistorySummary"],
        "Alarm updated from OK to ALARM"
    );
    let none = encode_output(Protocol::AwsQuery, &Output::DeleteAlarms, "id");
    assert!(
        !String::from_utf8(none.body)
            .unwrap()
            .contains("DeleteAlarmsResult"),
        "no output members"
    );
}

#[test]
fn put_composite_alarm_requests() {
    let Request::PutCompositeAlarm(c) = json(
        "PutCompositeAlarm",
        r#"{"AlarmName":"any","AlarmRule":"ALARM(\"a\") OR ALARM(b)","ActionsSuppressor":"m","ActionsSuppressorWaitPeriod":60}"#,
    )
    .unwrap() else {
        panic!("not a PutCompositeAlarm");
    };
    assert_eq!(c.alarm_rule, "ALARM(\"a\") OR ALARM(b)");
    assert_eq!(c.actions_suppressor.as_deref(), Some("m"));
    assert_eq!(c.actions_suppressor_wait_period, Some(60));
    let e = error_of(json(
        "PutCompositeAlarm",
        r#"{"AlarmName":"any","AlarmRule":"ALARM(a)","ActionsSuppressorWaitPeriod":60}"#,
    ));
    assert_eq!(e.code(), "InvalidParameterCombination");
    assert_eq!(
        error_of(json("PutCompositeAlarm", r#"{"AlarmName":"any"}"#)),
        Error::MissingParameter("AlarmRule".into())
    );
}
