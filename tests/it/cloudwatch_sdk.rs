//! CloudWatch's API through aws-sdk-rust's `aws-sdk-cloudwatch` (issue 21), which speaks
//! Smithy RPC v2 CBOR and signs with SigV4: it pushes (a large `PutMetricData` that the SDK
//! gzips, and a small one it does not), reads statistics and metric data, lists recently
//! active metrics, creates, describes, sets and tags an alarm, and gets the modelled
//! exceptions for a bad parameter, an unknown alarm and a wrong secret. Nothing to install:
//! the SDK is a dev-dependency.

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricDataQuery, MetricDatum, MetricStat,
    RecentlyActive, StandardUnit, StateValue, Statistic, Tag,
};
use thermostat_auth::Role;
use thermostat_auth::sigv4::{AccessKeyEntry, AccessKeySecret};

use crate::util::{TestServer, aligned_past};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn client(server: &TestServer, secret: &str) -> Client {
    let config = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDRUSTSDK", secret, None, None, "test"))
        .endpoint_url(server.http(""))
        .build();
    Client::from_conf(config)
}

fn host(value: &str) -> Dimension {
    Dimension::builder().name("Host").value(value).build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_sdk_rust_pushes_reads_and_manages_an_alarm_over_cbor() {
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let server = TestServer::start_with(|s| {
        s.aws_api.access_keys = vec![AccessKeyEntry {
            access_key_id: "AKIDRUSTSDK".to_owned(),
            secret: AccessKeySecret::File(secret_file.clone()),
            role: Role::Admin,
        }];
    })
    .await;
    let cw = client(&server, SECRET);
    let minute = aligned_past(60_000) - 120_000;
    let at = DateTime::from_millis(minute + 5_000);

    // A large request: 400 datums of 150 values each, far above the SDK's 10 KB threshold,
    // so it goes out gzipped.
    let datums: Vec<MetricDatum> = (0..400)
        .map(|i| {
            MetricDatum::builder()
                .metric_name("Latency")
                .dimensions(host(&format!("h{}", i % 4)))
                .timestamp(at)
                .unit(StandardUnit::Milliseconds)
                .set_values(Some((0..150).map(|v| f64::from(v) + 1.0).collect()))
                .build()
        })
        .collect();
    cw.put_metric_data()
        .namespace("Sdk/Rust")
        .set_metric_data(Some(datums[..250].to_vec()))
        .send()
        .await
        .expect("a gzipped CBOR PutMetricData");
    cw.put_metric_data()
        .namespace("Sdk/Rust")
        .set_metric_data(Some(datums[250..].to_vec()))
        .send()
        .await
        .unwrap();
    // A small one, not compressed.
    cw.put_metric_data()
        .namespace("Sdk/Rust")
        .metric_data(
            MetricDatum::builder()
                .metric_name("Queue")
                .dimensions(host("h0"))
                .timestamp(at)
                .value(7.0)
                .build(),
        )
        .send()
        .await
        .unwrap();

    // Statistics: 100 datums × 150 values for h0, 1..=150 each.
    let stats = cw
        .get_metric_statistics()
        .namespace("Sdk/Rust")
        .metric_name("Latency")
        .dimensions(host("h0"))
        .start_time(DateTime::from_millis(minute))
        .end_time(DateTime::from_millis(minute + 60_000))
        .period(60)
        .statistics(Statistic::SampleCount)
        .statistics(Statistic::Average)
        .statistics(Statistic::Maximum)
        .send()
        .await
        .unwrap();
    let points = stats.datapoints();
    assert_eq!(points.len(), 1, "{points:?}");
    let p = &points[0];
    assert_eq!(p.sample_count(), Some(15_000.0));
    assert_eq!(p.average(), Some(75.5));
    assert_eq!(p.maximum(), Some(150.0));
    assert_eq!(p.unit(), Some(&StandardUnit::Milliseconds));
    assert_eq!(p.timestamp().map(|t| t.to_millis().unwrap()), Some(minute));

    // GetMetricData: one MetricStat query per host, the newest first.
    let data = cw
        .get_metric_data()
        .metric_data_queries(
            MetricDataQuery::builder()
                .id("h1sum")
                .metric_stat(
                    MetricStat::builder()
                        .metric(
                            Metric::builder()
                                .namespace("Sdk/Rust")
                                .metric_name("Latency")
                                .dimensions(host("h1"))
                                .build(),
                        )
                        .period(60)
                        .stat("Sum")
                        .build(),
                )
                .build(),
        )
        .start_time(DateTime::from_millis(minute))
        .end_time(DateTime::from_millis(minute + 60_000))
        .send()
        .await
        .unwrap();
    let results = data.metric_data_results();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].id(), Some("h1sum"));
    assert_eq!(results[0].values(), [100.0 * (150.0 * 151.0 / 2.0)]);

    // ListMetrics of recently active metrics finds both metric names.
    let listed = cw
        .list_metrics()
        .namespace("Sdk/Rust")
        .recently_active(RecentlyActive::Pt3H)
        .send()
        .await
        .unwrap();
    let mut names: Vec<&str> = listed
        .metrics()
        .iter()
        .filter_map(|m| m.metric_name())
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names, ["Latency", "Queue"]);

    // An alarm: created with tags, described with this server's ARN, set by hand.
    cw.put_metric_alarm()
        .alarm_name("rust-latency")
        .namespace("Sdk/Rust")
        .metric_name("Latency")
        .dimensions(host("h0"))
        .statistic(Statistic::Average)
        .period(60)
        .evaluation_periods(1)
        .threshold(100.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .tags(Tag::builder().key("team").value("rust").build())
        .send()
        .await
        .unwrap();
    let described = cw
        .describe_alarms()
        .alarm_names("rust-latency")
        .send()
        .await
        .unwrap();
    let alarm = &described.metric_alarms()[0];
    assert_eq!(
        alarm.alarm_arn(),
        Some("arn:aws:cloudwatch:us-east-1:000000000000:alarm:rust-latency")
    );
    assert_eq!(alarm.threshold(), Some(100.0));
    assert_eq!(alarm.state_value(), Some(&StateValue::InsufficientData));
    cw.set_alarm_state()
        .alarm_name("rust-latency")
        .state_value(StateValue::Alarm)
        .state_reason("set from aws-sdk-rust")
        .send()
        .await
        .unwrap();
    let described = cw
        .describe_alarms()
        .alarm_names("rust-latency")
        .send()
        .await
        .unwrap();
    let alarm = &described.metric_alarms()[0];
    assert_eq!(alarm.state_value(), Some(&StateValue::Alarm));
    assert_eq!(alarm.state_reason(), Some("set from aws-sdk-rust"));
    let tags = cw
        .list_tags_for_resource()
        .resource_arn(alarm.alarm_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags.tags()
            .iter()
            .map(|t| (t.key(), t.value()))
            .collect::<Vec<_>>(),
        [(Some("team"), Some("rust"))]
    );

    // The modelled exceptions.
    let bad = cw
        .put_metric_alarm()
        .alarm_name("bad-period")
        .namespace("Sdk/Rust")
        .metric_name("Latency")
        .statistic(Statistic::Average)
        .period(7)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap_err();
    // PutMetricAlarm models only LimitExceededFault: the code tells.
    assert_eq!(
        aws_sdk_cloudwatch::error::ProvideErrorMetadata::code(&bad),
        Some("InvalidParameterValue"),
        "{bad:?}"
    );
    let missing = cw
        .delete_alarms()
        .alarm_names("no-such-alarm")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(missing.is_resource_not_found(), "{missing:?}");
    let forged = client(&server, "not-the-secret")
        .list_metrics()
        .send()
        .await
        .unwrap_err();
    let raw = forged.raw_response().expect("an HTTP answer");
    assert_eq!(raw.status().as_u16(), 403);
    assert_eq!(
        aws_sdk_cloudwatch::error::ProvideErrorMetadata::code(&forged),
        Some("SignatureDoesNotMatch")
    );
}

/// The settings file's `aws_api` is read again on reload: a revoked key is refused at once
/// and a new one works, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_rotates_the_cloudwatch_access_keys() {
    let dir = tempfile::tempdir().unwrap();
    let settings_file = dir.path().join("settings.yaml");
    let secret_file = dir.path().join("aws-secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let write_keys = |id: &str| {
        std::fs::write(
            &settings_file,
            format!(
                "aws_api:\n  access_keys:\n    - {{access_key_id: {id}, secret_file: {}, role: admin}}\n",
                secret_file.display()
            ),
        )
        .unwrap();
    };
    write_keys("AKIDRUSTSDK");
    let config = dir.path().join("alarms.yaml");
    std::fs::write(&config, "alarms: []\n").unwrap();
    let running = crate::util::start_in(&dir.path().join("data"), |s| {
        s.settings_file = Some(settings_file.clone());
        s.aws_api = thermostat::settings::SettingsFile::load(&settings_file)
            .unwrap()
            .aws_api
            .unwrap();
        s.config = vec![config.clone()];
        s.allow_empty_config = true;
    })
    .await;
    let endpoint = format!("http://{}", running.http_addr);
    let sdk = |id: &str| {
        Client::from_conf(
            aws_sdk_cloudwatch::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new(id, SECRET, None, None, "test"))
                .endpoint_url(&endpoint)
                .build(),
        )
    };
    sdk("AKIDRUSTSDK").list_metrics().send().await.unwrap();
    let refused = sdk("AKIDROTATED").list_metrics().send().await.unwrap_err();
    assert_eq!(
        aws_sdk_cloudwatch::error::ProvideErrorMetadata::code(&refused),
        Some("InvalidClientTokenId")
    );

    write_keys("AKIDROTATED");
    running.reloader.reload_from_disk().unwrap();
    sdk("AKIDROTATED").list_metrics().send().await.unwrap();
    let revoked = sdk("AKIDRUSTSDK").list_metrics().send().await.unwrap_err();
    assert_eq!(
        aws_sdk_cloudwatch::error::ProvideErrorMetadata::code(&revoked),
        Some("InvalidClientTokenId"),
        "the old key is refused at once"
    );
    running.shutdown();
    running.wait().await.unwrap();
}
