//! SNS delivery: `Publish` with CloudWatch's subject and JSON message, through aws-sdk-sns.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_sns::error::{ProvideErrorMetadata as _, SdkError};
use thermostat_alarms::notifications::{Delivery, Notification};

use crate::error::{Error, Result};
use crate::{Notifier, Receipt};

/// SNS error codes after which a retry cannot succeed.
const PERMANENT_CODES: &[&str] = &[
    "NotFound",
    "InvalidParameter",
    "InvalidParameterValue",
    "AuthorizationError",
    "InvalidSecurity",
    "KMSDisabled",
    "KMSNotFound",
    "ValidationException",
];

/// Publishes to SNS topics. Each topic is published to in its own region (from its ARN);
/// credentials, endpoint and retry settings come from the `SdkConfig` the binary builds.
#[derive(Debug)]
pub struct SnsNotifier {
    config: aws_config::SdkConfig,
    clients: Mutex<HashMap<String, aws_sdk_sns::Client>>,
}

impl SnsNotifier {
    /// A notifier over the binary's AWS configuration (with `endpoint_url` pointing at moto
    /// in tests and demos).
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        SnsNotifier {
            config: config.clone(),
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, region: &str) -> aws_sdk_sns::Client {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        clients
            .entry(region.to_owned())
            .or_insert_with(|| {
                let conf = aws_sdk_sns::config::Builder::from(&self.config)
                    .region(aws_sdk_sns::config::Region::new(region.to_owned()))
                    .build();
                aws_sdk_sns::Client::from_conf(conf)
            })
            .clone()
    }
}

impl Notifier for SnsNotifier {
    async fn deliver(&self, n: &Notification) -> Result<Receipt> {
        let Delivery::Sns {
            topic_arn,
            region,
            subject,
            message,
        } = &n.delivery
        else {
            return Err(Error::NotConfigured {
                kind: n.delivery.kind(),
            });
        };
        let out = self
            .client(region)
            .publish()
            .topic_arn(topic_arn)
            .subject(subject)
            .message(message)
            .send()
            .await
            .map_err(|e| {
                let (message, permanent) = match &e {
                    SdkError::ServiceError(s) => {
                        let err = s.err();
                        let code = err.code().unwrap_or("Unknown");
                        (
                            format!("{code}: {}", err.message().unwrap_or("")),
                            PERMANENT_CODES.contains(&code),
                        )
                    }
                    other => (format!("{other}: {other:?}"), false),
                };
                Error::Sns {
                    topic: topic_arn.clone(),
                    message,
                    permanent,
                }
            })?;
        Ok(Receipt {
            detail: format!("MessageId {}", out.message_id().unwrap_or("")),
        })
    }
}
