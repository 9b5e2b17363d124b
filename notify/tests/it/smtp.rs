//! SMTP: an e-mail received by a real aiosmtpd sink; recipients, subject and body.

use std::time::Duration;

use thermostat_alarms::action;
use thermostat_alarms::message::MessageSettings;
use thermostat_alarms::notifications::{NotificationSettings, SmtpSettings, StartTls};
use thermostat_notify::{Notifier as _, SmtpNotifier};
use thermostat_testkit::{SmtpSink, require_peers};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_reaches_the_sink() {
    let Some(py) = require_peers("email_reaches_the_sink", &["aiosmtpd"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(&py, &dir.path().join("maildir"));
    let smtp = SmtpSettings {
        host: "127.0.0.1".into(),
        port: sink.port,
        from: "thermostat@example.com".into(),
        starttls: StartTls::None,
        username: None,
        password_env: None,
        timeout: Duration::from_secs(10),
    };
    let settings = NotificationSettings {
        smtp: Some(smtp.clone()),
        ..NotificationSettings::default()
    };
    let messages = MessageSettings::try_new(
        "123456789012",
        "eu-west-1",
        Some("http://thermostat.test:8080"),
    )
    .unwrap();
    let n = crate::notification(
        &settings,
        &messages,
        action::parse("mailto:oncall@example.com").unwrap(),
        &|_| None,
    );
    let notifier = SmtpNotifier::new(&smtp, |_| None).unwrap();
    let receipt = notifier.deliver(&n).await.unwrap();
    assert!(receipt.detail.starts_with("250"), "{receipt:?}");

    let mut messages = Vec::new();
    for _ in 0..100 {
        messages = sink.messages();
        if !messages.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    let header = |name: &str| {
        m.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} header in\n{m}"))
            .to_owned()
    };
    assert_eq!(header("X-RcptTo"), "oncall@example.com");
    assert_eq!(header("X-MailFrom"), "thermostat@example.com");
    assert_eq!(header("To"), "oncall@example.com");
    assert_eq!(header("From"), "thermostat@example.com");
    assert_eq!(header("Subject"), "ALARM: \"web-high-cpu\" in EU (Ireland)");
    assert!(header("Message-ID").ends_with("@thermostat>"));
    assert_eq!(header("Content-Type"), "text/plain; charset=utf-8");
    let (_, raw_body) = m.split_once("\n\n").unwrap();
    let body = match header("Content-Transfer-Encoding").as_str() {
        "quoted-printable" => quoted_printable(raw_body),
        _ => raw_body.to_owned(),
    };
    for line in [
        "You are receiving this email because your Thermostat alarm \"web-high-cpu\" in the EU (Ireland) region has entered the ALARM state",
        "http://thermostat.test:8080/alarms/web-high-cpu",
        "- State Change:               OK -> ALARM",
        "- Reason for State Change:    Threshold Crossed: 2 out of the last 3 datapoints",
        "- The alarm is in the ALARM state when the metric is GreaterThanThreshold 70.0 for 2 out of the last 3 periods of 60 seconds.",
        "- Dimensions:                          [AutoScalingGroupName = web]",
    ] {
        assert!(body.contains(line), "missing {line:?} in\n{body}");
    }
}

/// Decodes a quoted-printable body (soft line breaks and `=XX`).
fn quoted_printable(s: &str) -> String {
    let joined = s.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}
