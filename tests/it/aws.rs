//! Real AWS APIs (moto on loopback, through the real SDK): an alarm of the running server
//! scales a real Auto Scaling group and publishes CloudWatch's message to an SNS topic, read
//! back through an SQS subscription.

use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_autoscaling::config::Credentials;
use serde_json::Value;
use thermostat_testkit::{Moto, require_peers};

use crate::process::ServerProcess;

async fn moto_sdk(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "static"))
        .endpoint_url(endpoint)
        .load()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_scales_a_real_auto_scaling_group_and_publishes_to_sns() {
    let Some(python) = require_peers(
        "an_alarm_scales_a_real_auto_scaling_group_and_publishes_to_sns",
        &["moto"],
    ) else {
        return;
    };
    let moto = Moto::start(&python);
    let sdk = moto_sdk(&moto.endpoint).await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    asg.create_launch_configuration()
        .launch_configuration_name("api-lc")
        .image_id("ami-12c6146b")
        .instance_type("t3.micro")
        .send()
        .await
        .unwrap();
    asg.create_auto_scaling_group()
        .auto_scaling_group_name("api-asg")
        .launch_configuration_name("api-lc")
        .min_size(1)
        .max_size(8)
        .desired_capacity(2)
        .availability_zones("us-east-1a")
        .send()
        .await
        .unwrap();
    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let topic_arn = sns
        .create_topic()
        .name("oncall")
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_owned();
    let queue_url = sqs
        .create_queue()
        .queue_name("oncall-q")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .send()
        .await
        .unwrap();

    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg.path().join("api.yaml"),
        format!(
            r#"alarms:
  - name: api-hot
    namespace: Test/Aws
    metric_name: Cpu
    dimensions: {{AutoScalingGroupName: api-asg}}
    statistic: Average
    period_seconds: 60
    evaluation_periods: 1
    threshold: 70
    comparison_operator: GreaterThanThreshold
    alarm_actions: ["policy:api/out", "{topic_arn}"]
scaling_groups:
  - name: api
    backend: aws_autoscaling
    auto_scaling_group_name: api-asg
    policies:
      - name: out
        policy_type: SimpleScaling
        adjustment_type: ChangeInCapacity
        scaling_adjustment: 3
        cooldown_seconds: 300
"#
        ),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let config = cfg.path().to_str().unwrap().to_owned();
    let env = [
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    let server = ServerProcess::start_with_env(data.path(), &["--config", &config], &env);
    let http = reqwest::Client::new();
    // Sizes left out of the YAML are read from the real group.
    let group: Value = http
        .get(format!("http://{}/api/v1/groups/api", server.http))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            group["min_size"].as_u64(),
            group["max_size"].as_u64(),
            group["desired_capacity"].as_u64()
        ),
        (Some(1), Some(8), Some(2)),
        "{group}"
    );

    crate::util::set_alarm_state(&server.http, "api-hot", "ALARM", "testing the real thing").await;

    // The real group scales 2 -> 5, as moto reports through the SDK.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names("api-asg")
            .send()
            .await
            .unwrap();
        if out.auto_scaling_groups()[0].desired_capacity() == Some(5) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the Auto Scaling group was not scaled: {out:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The activity is recorded once the call has returned.
    let acts = loop {
        let acts: Value = http
            .get(format!(
                "http://{}/api/v1/groups/api/activities",
                server.http
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !acts["activities"][0].is_null() {
            break acts;
        }
        assert!(Instant::now() < deadline, "no scaling activity recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(acts["activities"][0]["status"], "Successful", "{acts}");
    assert!(
        acts["activities"][0]["cause"]
            .as_str()
            .unwrap()
            .ends_with("changing the desired capacity from 2 to 5."),
        "{acts}"
    );

    // CloudWatch's message arrives through SNS -> SQS.
    let mut body = None;
    for _ in 0..15 {
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
    }
    let envelope: Value = serde_json::from_str(&body.expect("an SNS message in SQS")).unwrap();
    assert_eq!(
        envelope["Subject"],
        "ALARM: \"api-hot\" in US East (N. Virginia)"
    );
    let message: Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    assert_eq!(message["AlarmName"], "api-hot");
    assert_eq!(message["NewStateValue"], "ALARM");
    assert_eq!(message["NewStateReason"], "testing the real thing");
    assert_eq!(
        message["AlarmArn"],
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:api-hot"
    );
    assert_eq!(message["Trigger"]["Dimensions"][0]["value"], "api-asg");
}
