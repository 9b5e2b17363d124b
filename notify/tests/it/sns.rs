//! SNS: publish through aws-sdk-sns to moto; read the message back through an SQS
//! subscription and check CloudWatch's message field by field (reference §4.1).

use std::time::Duration;

use thermostat_alarms::action;
use thermostat_alarms::message::MessageSettings;
use thermostat_alarms::notifications::NotificationSettings;
use thermostat_notify::{Notifier as _, SnsNotifier};
use thermostat_testkit::{Moto, require_peers};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_cloudwatch_message_readable_through_sqs() {
    let Some(py) = require_peers(
        "publishes_cloudwatch_message_readable_through_sqs",
        &["moto"],
    ) else {
        return;
    };
    let moto = Moto::start(&py);
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(aws_sdk_sns::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await;
    let sns = aws_sdk_sns::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let topic = sns.create_topic().name("alarms").send().await.unwrap();
    let topic_arn = topic.topic_arn().unwrap().to_owned();
    let queue_url = sqs
        .create_queue()
        .queue_name("alarms-q")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let queue_arn = attrs
        .attributes()
        .unwrap()
        .get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .unwrap()
        .clone();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .send()
        .await
        .unwrap();

    let settings = NotificationSettings::default();
    let messages = MessageSettings::default();
    let n = crate::notification(&settings, &messages, action::parse(&topic_arn).unwrap());
    let receipt = SnsNotifier::new(&config).deliver(&n).await.unwrap();
    assert!(receipt.detail.starts_with("MessageId "), "{receipt:?}");

    let mut body = None;
    for _ in 0..10 {
        let out = sqs
            .receive_message()
            .queue_url(&queue_url)
            .wait_time_seconds(2)
            .send()
            .await
            .unwrap();
        if let Some(m) = out.messages().first() {
            body = m.body().map(str::to_owned);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let envelope: serde_json::Value = serde_json::from_str(&body.expect("no SQS message")).unwrap();
    assert_eq!(envelope["Type"], "Notification");
    assert_eq!(envelope["TopicArn"], topic_arn.as_str());
    assert_eq!(
        envelope["Subject"],
        "ALARM: \"web-high-cpu\" in US East (N. Virginia)"
    );
    let text = envelope["Message"].as_str().unwrap();
    // Byte-identical to what was rendered, so the key order survives.
    let thermostat_alarms::notifications::Delivery::Sns { message, .. } = &n.delivery else {
        panic!()
    };
    assert_eq!(text, message);
    let m: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(m["AlarmName"], "web-high-cpu");
    assert_eq!(m["AlarmDescription"], "CPU above 70% on the web group");
    assert_eq!(m["AWSAccountId"], "123456789012");
    assert_eq!(m["NewStateValue"], "ALARM");
    assert_eq!(m["OldStateValue"], "OK");
    assert!(
        m["NewStateReason"]
            .as_str()
            .unwrap()
            .starts_with("Threshold Crossed: 2 out of the last 3")
    );
    assert_eq!(m["StateChangeTime"], "2024-03-16T12:16:45.770+0000");
    assert_eq!(m["Region"], "US East (N. Virginia)");
    assert_eq!(
        m["AlarmArn"],
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-high-cpu"
    );
    assert_eq!(m["AlarmActions"][0], "mailto:oncall@example.com");
    assert_eq!(m["OKActions"], serde_json::json!([]));
    assert_eq!(m["InsufficientDataActions"], serde_json::json!([]));
    let t = &m["Trigger"];
    assert_eq!(t["MetricName"], "CPUUtilization");
    assert_eq!(t["Namespace"], "AWS/EC2");
    assert_eq!(t["StatisticType"], "Statistic");
    assert_eq!(t["Statistic"], "AVERAGE");
    assert_eq!(t["Unit"], serde_json::Value::Null);
    assert_eq!(t["Dimensions"][0]["name"], "AutoScalingGroupName");
    assert_eq!(t["Dimensions"][0]["value"], "web");
    assert_eq!(t["Period"], 60);
    assert_eq!(t["EvaluationPeriods"], 3);
    assert_eq!(t["DatapointsToAlarm"], 2);
    assert_eq!(t["ComparisonOperator"], "GreaterThanThreshold");
    assert_eq!(t["Threshold"], 70.0);
    assert!(text.contains("\"Threshold\":70.0,"));
    assert_eq!(t["TreatMissingData"], "notBreaching");
    assert_eq!(t["EvaluateLowSampleCountPercentile"], "");
}
