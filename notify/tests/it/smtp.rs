//! SMTP: an e-mail received by a real aiosmtpd sink; recipients, subject and body; a
//! password read from a file and sent with AUTH PLAIN.

use std::time::Duration;

use thermostat_alarms::action;
use thermostat_alarms::message::MessageSettings;
use thermostat_alarms::notifications::{
    NotificationSettings, SecretSource, SmtpSettings, StartTls,
};
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
        password: None,
        ca_file: None,
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

/// A one-message SMTP server on 127.0.0.1:0 that offers `AUTH PLAIN` and accepts any
/// credentials; the task returns every command it received.
async fn auth_server() -> (u16, tokio::task::JoinHandle<Vec<String>>) {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let mut got = Vec::new();
        write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
        while let Some(line) = lines.next_line().await.unwrap() {
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            got.push(line);
            let reply: &[u8] = match verb.as_str() {
                "EHLO" => b"250-sink\r\n250 AUTH PLAIN\r\n",
                "AUTH" => b"235 2.7.0 Authentication successful\r\n",
                "DATA" => {
                    write.write_all(b"354 go ahead\r\n").await.unwrap();
                    while let Some(l) = lines.next_line().await.unwrap() {
                        if l == "." {
                            break;
                        }
                    }
                    write.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                    return got;
                }
                _ => b"250 ok\r\n",
            };
            write.write_all(reply).await.unwrap();
        }
        got
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_can_come_from_a_file() {
    let (port, server) = auth_server().await;
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("smtp-password");
    // One trailing newline is not part of the password; inner spaces are.
    std::fs::write(&password_file, "hunter2 from a file\n").unwrap();
    let smtp = SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        from: "thermostat@example.com".into(),
        starttls: StartTls::None,
        username: Some("ops".into()),
        password: Some(SecretSource::File(password_file.display().to_string())),
        ca_file: None,
        timeout: Duration::from_secs(10),
    };
    let settings = NotificationSettings {
        smtp: Some(smtp.clone()),
        ..NotificationSettings::default()
    };
    let n = crate::notification(
        &settings,
        &MessageSettings::default(),
        action::parse("mailto:oncall@example.com").unwrap(),
    );
    let notifier = SmtpNotifier::new(&smtp, |_| None).unwrap();
    assert!(!format!("{notifier:?}").contains("hunter2"), "{notifier:?}");
    let receipt = notifier.deliver(&n).await.unwrap();
    assert!(receipt.detail.starts_with("250"), "{receipt:?}");
    let got = server.await.unwrap();
    // AUTH PLAIN carries base64("\0ops\0hunter2 from a file").
    assert!(
        got.iter()
            .any(|l| l == "AUTH PLAIN AG9wcwBodW50ZXIyIGZyb20gYSBmaWxl"),
        "{got:?}"
    );

    // A password file that is missing is an error naming the setting and the file.
    let gone = SmtpSettings {
        password: Some(SecretSource::File("/nonexistent/smtp-password".into())),
        ..smtp.clone()
    };
    let e = SmtpNotifier::new(&gone, |_| None).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "notifications.smtp.password_file: the file /nonexistent/smtp-password cannot be read ("
        ),
        "{e}"
    );
    // And the same from a variable.
    let from_env = SmtpSettings {
        password: Some(SecretSource::Env("SMTP_PASSWORD".into())),
        ..smtp
    };
    let e = SmtpNotifier::new(&from_env, |_| None)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "notifications.smtp.password_env: the environment variable SMTP_PASSWORD is not set"
    );
    assert!(SmtpNotifier::new(&from_env, |k| (k == "SMTP_PASSWORD").then(|| "x".into())).is_ok());
}
