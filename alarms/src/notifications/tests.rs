//! `notifications:` parsing, validation, mute rules and notification building.

use jiff::civil::DateTime;

use super::*;
use crate::action::Action;
use crate::error::ConfigErrors;
use crate::message::{AlarmDefinition, AlarmEvent};
use crate::model::{AlarmSet, StateValue};
use crate::state::{ActionInvocation, Transition};
use crate::timefmt;
use crate::timefmt::parse_rfc3339;

const ALARMS: &str = r#"
alarms:
  - name: web-high-cpu
    namespace: AWS/EC2
    metric_name: CPUUtilization
    statistic: Average
    period_seconds: 60
    evaluation_periods: 1
    threshold: 70
    comparison_operator: GreaterThanThreshold
    alarm_actions: ["arn:aws:sns:eu-west-1:123456789012:ops", "mailto:oncall@example.com", "https://hooks.example/plain", "policy:web/scale-out"]
  - name: db-cpu
    namespace: AWS/RDS
    metric_name: CPUUtilization
    statistic: Average
    period_seconds: 60
    evaluation_periods: 1
    threshold: 90
    comparison_operator: GreaterThanThreshold
"#;

const SETTINGS: &str = r#"
notifications:
  account_id: "210987654321"
  region: eu-west-1
  dashboard_url: http://thermostat.internal:8080/
  smtp: {host: 127.0.0.1, port: 2525, from: thermostat@example.com, starttls: none, username: ops, password_env: SMTP_PASSWORD}
  webhooks:
    - {name: oncall-slack, url: "https://hooks.example/T000", format: slack, secret_env: SLACK_HOOK_SECRET}
    - {name: pager, url: "https://events.pagerduty.com/v2/enqueue", format: pagerduty, routing_key_env: PD_KEY}
  mute_rules:
    - {name: nightly-deploy, alarms: ["web-*"], schedule: "0 2 * * *", duration_seconds: 1800, time_zone: UTC}
    - {name: berlin-lunch, alarms: ["db-cpu"], schedule: "0 12 * * MON-FRI", duration_seconds: 3600, time_zone: Europe/Berlin}
    - {name: migration, alarms: ["db-?pu"], starts_at: "2024-06-01T00:00:00Z", ends_at: "2024-06-01T04:00:00Z"}
  retry: {initial_backoff_seconds: 0.5, max_backoff_seconds: 20}
  queue_capacity: 64
"#;

fn alarm_set(extra: &str) -> AlarmSet {
    crate::validate(&[("alarms.yaml", format!("{ALARMS}{extra}"))])
        .unwrap_or_else(|e| panic!("{e}"))
}

fn ts(s: &str) -> Timestamp {
    parse_rfc3339(s).unwrap()
}

fn check(files: &[(&str, &str)]) -> Result<NotificationSettings, ConfigErrors> {
    let set = alarm_set("");
    validate_notifications(files, &set)
}

fn errors(files: &[(&str, &str)]) -> String {
    check(files).expect_err("should be invalid").to_string()
}

#[test]
fn the_issue_example_validates() {
    let s = check(&[("alarms.yaml", ALARMS), ("notify.yaml", SETTINGS)]).unwrap();
    assert_eq!(s.account_id.as_deref(), Some("210987654321"));
    assert_eq!(
        s.dashboard_url.as_deref(),
        Some("http://thermostat.internal:8080")
    );
    let smtp = s.smtp.as_ref().unwrap();
    assert_eq!(smtp.port, 2525);
    assert_eq!(smtp.starttls, StartTls::None);
    assert_eq!(
        smtp.password,
        Some(SecretSource::Env("SMTP_PASSWORD".into()))
    );
    assert_eq!(s.webhooks[0].format, WebhookFormat::Slack);
    assert_eq!(
        s.webhooks[1].routing_key,
        Some(SecretSource::Env("PD_KEY".into()))
    );
    assert_eq!(s.mute_rules.len(), 3);
    assert_eq!(s.retry.initial_backoff, Duration::from_millis(500));
    assert_eq!(s.retry.max_backoff, Duration::from_secs(20));
    assert_eq!(s.retry.give_up_after, Some(Duration::from_secs(86_400)));
    assert_eq!(s.queue_capacity, 64);
    let m = s.message_settings(Some("us-west-2"));
    assert_eq!(m.region, "eu-west-1");
    assert_eq!(m.account_id, "210987654321");
}

#[test]
fn defaults_without_a_section() {
    let s = check(&[("alarms.yaml", "alarms: []\n")]).unwrap();
    assert_eq!(s, NotificationSettings::default());
    assert_eq!(
        s.message_settings(Some("ap-southeast-2")).region,
        "ap-southeast-2"
    );
    assert_eq!(s.message_settings(Some("garbage")).region, "us-east-1");
    assert_eq!(s.message_settings(None).account_id, "123456789012");
}

#[test]
fn every_error_is_reported_with_its_position() {
    let text = r#"notifications:
  account_id: "12345"
  region: Mars
  smtp: {host: "a b", port: 70000, from: nobody, starttls: always, username: ops, colour: red}
  webhooks:
    - {name: "bad name", url: "ftp://x", format: teams}
    - {name: pd, url: "https://e.example", format: pagerduty}
    - {name: s, url: "https://e.example", routing_key_env: K}
  mute_rules:
    - {name: m1, alarms: [], schedule: "0 2 * *", time_zone: Mars/Base}
    - {name: m2, alarms: ["x"], starts_at: "2024-06-02T00:00:00Z", ends_at: "2024-06-01T00:00:00Z"}
    - {name: m3, alarms: ["web-*"], schedule: "61 * * * *", duration_seconds: 0}
  retry: {initial_backoff_seconds: 10, max_backoff_seconds: 5}
  colours: 3
"#;
    let out = errors(&[("alarms.yaml", ALARMS), ("n.yaml", text)]);
    insta::assert_snapshot!(out);
}

#[test]
fn settings_merge_across_files_and_duplicates_are_reported() {
    let a = "notifications:\n  webhooks: [{name: a, url: \"http://127.0.0.1:1/x\"}]\n  retry: {initial_backoff_seconds: 2}\n";
    let b = "notifications:\n  webhooks: [{name: b, url: \"http://127.0.0.1:1/y\"}, {name: a, url: \"http://127.0.0.1:1/z\"}]\n  retry: {initial_backoff_seconds: 3}\n";
    let out = errors(&[("a.yaml", a), ("b.yaml", b)]);
    assert_eq!(
        out,
        "b.yaml:2:54: notifications.webhooks.a: webhook names must be unique; \"a\" is already defined at a.yaml:2:14\n\
         b.yaml:3:3: notifications.retry: is already set at a.yaml:3:3; give each setting in one file only"
    );
    let ok = check(&[
        ("a.yaml", a),
        (
            "c.yaml",
            "notifications:\n  webhooks: [{name: c, url: \"http://h/\"}]\n",
        ),
    ])
    .unwrap();
    assert_eq!(ok.webhooks.len(), 2);
    assert_eq!(ok.retry.initial_backoff, Duration::from_secs(2));
}

#[test]
fn actions_are_cross_checked() {
    // `webhook:<name>` must name a defined webhook; `mailto:` needs smtp.
    let alarms = r#"alarms:
  - name: w
    namespace: N
    metric_name: M
    statistic: Sum
    period_seconds: 60
    evaluation_periods: 1
    threshold: 1
    comparison_operator: GreaterThanThreshold
    ok_actions: ["webhook:nope", "mailto:a@b.c", "webhook:hook"]
"#;
    let settings = "notifications:\n  webhooks: [{name: hook, url: \"http://127.0.0.1:9/x\"}]\n";
    let set = alarm_set("");
    let out = validate_notifications(&[("a.yaml", alarms), ("n.yaml", settings)], &set)
        .unwrap_err()
        .to_string();
    assert_eq!(
        out,
        "a.yaml:10:18: alarms.w.ok_actions[0]: names the webhook \"nope\", which notifications.webhooks does not define (defined: hook)\n\
         a.yaml:10:34: alarms.w.ok_actions[1]: e-mail actions need an SMTP server: add notifications.smtp"
    );
}

#[test]
fn exact_mute_patterns_must_name_an_alarm() {
    let text = "notifications:\n  mute_rules:\n    - {name: m, alarms: [web-hihg-cpu, \"db-*\"], schedule: \"@daily\", duration_seconds: 60}\n";
    let out = errors(&[("alarms.yaml", ALARMS), ("n.yaml", text)]);
    assert!(
        out.contains("\nn.yaml:3:7: notifications.mute_rules.m.alarms[0]: names no alarm (got \"web-hihg-cpu\")"),
        "{out}"
    );
}

#[test]
fn cron_schedules() {
    let c: CronSchedule = "*/15 9-17 * JAN,jul MON-FRI".parse().unwrap();
    let dt = |s: &str| s.parse::<DateTime>().unwrap();
    assert!(c.matches(dt("2024-01-08T09:45:00"))); // Monday
    assert!(!c.matches(dt("2024-01-08T09:46:00")));
    assert!(!c.matches(dt("2024-01-07T09:45:00"))); // Sunday
    assert!(!c.matches(dt("2024-02-05T09:45:00"))); // February
    assert!(c.matches(dt("2024-07-01T17:00:00")));
    // Vixie: both day fields restricted → either matches.
    let c: CronSchedule = "0 0 13 * 5".parse().unwrap();
    assert!(c.matches(dt("2024-09-13T00:00:00"))); // Friday the 13th
    assert!(c.matches(dt("2024-09-06T00:00:00"))); // a Friday
    assert!(c.matches(dt("2024-10-13T00:00:00"))); // the 13th, a Sunday
    assert!(!c.matches(dt("2024-10-14T00:00:00")));
    // Sunday as 7; steps from a value.
    let c: CronSchedule = "5/20 0 * * 7".parse().unwrap();
    assert!(c.matches(dt("2024-10-13T00:45:00")));
    assert!(!c.matches(dt("2024-10-13T00:00:00")));
    assert_eq!(
        "@hourly".parse::<CronSchedule>().unwrap().to_string(),
        "@hourly"
    );
    for bad in [
        "",
        "* * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * * 13 *",
        "5-1 * * * *",
        "*/0 * * * *",
        "* * * * FUNDAY",
        "0 0 * * * *",
    ] {
        assert!(bad.parse::<CronSchedule>().is_err(), "{bad:?}");
    }
}

#[test]
fn mute_windows() {
    let s = check(&[("alarms.yaml", ALARMS), ("notify.yaml", SETTINGS)]).unwrap();
    let name = |t: &str, alarm: &str| muted_by(&s, alarm, ts(t)).map(|r| r.name.clone());
    // 02:00 UTC for 30 minutes, every day, for web-*.
    assert_eq!(name("2024-03-10T01:59:59Z", "web-high-cpu"), None);
    assert_eq!(
        name("2024-03-10T02:00:00Z", "web-high-cpu").as_deref(),
        Some("nightly-deploy")
    );
    assert_eq!(
        name("2024-03-10T02:29:59.999Z", "web-high-cpu").as_deref(),
        Some("nightly-deploy")
    );
    assert_eq!(name("2024-03-10T02:30:00Z", "web-high-cpu"), None);
    // Instances match by their alarm name.
    assert_eq!(
        name("2024-03-10T02:10:00Z", "web-high-cpu[Host=a]").as_deref(),
        Some("nightly-deploy")
    );
    assert_eq!(name("2024-03-10T02:10:00Z", "db-cpu"), None);
    // 12:00 Europe/Berlin on weekdays: 11:00 UTC in winter, 10:00 UTC in summer.
    assert_eq!(
        name("2024-01-15T11:30:00Z", "db-cpu").as_deref(),
        Some("berlin-lunch")
    );
    assert_eq!(name("2024-01-15T10:30:00Z", "db-cpu"), None);
    assert_eq!(
        name("2024-07-15T10:30:00Z", "db-cpu").as_deref(),
        Some("berlin-lunch")
    );
    assert_eq!(name("2024-07-14T10:30:00Z", "db-cpu"), None); // Sunday
    // A one-time window.
    assert_eq!(
        name("2024-06-01T03:59:00Z", "db-cpu").as_deref(),
        Some("migration")
    );
    assert_eq!(name("2024-06-01T04:00:00Z", "db-cpu"), None);
}

#[test]
fn windows_spanning_midnight_and_months_are_found() {
    let rule = MuteRule {
        name: "r".into(),
        alarms: vec!["*".into()],
        schedule: Some("30 23 31 12 *".parse().unwrap()),
        duration: Duration::from_secs(2 * 86_400),
        time_zone: "UTC".into(),
        starts_at: None,
        ends_at: None,
    };
    assert!(rule.is_active(ts("2025-01-02T10:00:00Z")));
    assert!(!rule.is_active(ts("2025-01-02T23:30:00Z")));
    assert!(!rule.is_active(ts("2024-12-31T23:29:00Z")));
    assert!(rule.is_active(ts("2024-12-31T23:30:00Z")));
}

/// The windows of tricky schedules: the same fire times as the hand-written parser that
/// `croner` replaced gave (computed with it and kept here), so the move changed nothing.
#[test]
fn tricky_schedules_open_the_same_windows_as_before() {
    // The five latest fire times at or before `now`, newest first.
    let fires = |expr: &str, zone: &str, now: &str| -> Vec<String> {
        let c: CronSchedule = expr.parse().unwrap();
        let tz = time_zone(zone).unwrap();
        let mut at = ts(now);
        let mut out = Vec::new();
        for _ in 0..5 {
            let Some(t) = c.last_fire(&tz, at, at.sub_millis(400 * 86_400_000)) else {
                break;
            };
            out.push(timefmt::rfc3339(t));
            at = t.sub_millis(1);
        }
        out
    };
    let cases: &[(&str, &str, &str)] = &[
        // Ranges, steps, lists, month and weekday names.
        ("*/15 9-17 * JAN,jul MON-FRI", "UTC", "2024-07-02T09:20:00Z"),
        ("10-50/20 8,20 * * *", "UTC", "2024-03-10T20:31:00Z"),
        ("5/20 0 * * 7", "UTC", "2024-10-14T12:00:00Z"),
        ("0 0 1 JAN-MAR *", "UTC", "2024-06-01T00:00:00Z"),
        // Both day fields restricted: either matches (crontab).
        ("0 0 13 * FRI", "UTC", "2024-10-20T00:00:00Z"),
        // A day field starting with `*` is not restricted: both must match (crontab).
        ("0 6 */2 * MON", "UTC", "2024-10-20T00:00:00Z"),
        ("0 6 1-7 * */3", "UTC", "2024-10-20T00:00:00Z"),
        // Sunday as 0 and 7, ranges of names.
        ("30 1 * * 0", "UTC", "2024-10-20T00:00:00Z"),
        ("0 12 * * mon-wed,fri", "UTC", "2024-10-20T00:00:00Z"),
        // Macros.
        ("@hourly", "UTC", "2024-10-20T03:10:00Z"),
        ("@daily", "UTC", "2024-10-20T03:10:00Z"),
        ("@weekly", "UTC", "2024-10-20T03:10:00Z"),
        ("@monthly", "UTC", "2024-10-20T03:10:00Z"),
        ("@yearly", "UTC", "2024-10-20T03:10:00Z"),
        // A time zone across both daylight-saving changes (not in a gap or a fold).
        ("0 12 * * MON-FRI", "Europe/Berlin", "2024-04-02T12:00:00Z"),
        ("0 12 * * MON-FRI", "Europe/Berlin", "2024-10-29T12:00:00Z"),
        ("0 0 * * *", "America/New_York", "2024-11-05T12:00:00Z"),
        // A leap day.
        ("0 0 29 2 *", "UTC", "2025-01-01T00:00:00Z"),
    ];
    let got: Vec<String> = cases
        .iter()
        .map(|(e, z, now)| format!("{e} [{z}] {now}: {}", fires(e, z, now).join(" ")))
        .collect();
    insta::assert_snapshot!(got.join("\n"));
}

#[test]
fn globs() {
    for (p, t, m) in [
        ("web-*", "web-high-cpu", true),
        ("web-*", "db", false),
        ("*", "", true),
        ("a?c", "abc", true),
        ("a?c", "ac", false),
        ("*cpu*", "web-high-cpu-2", true),
        ("a*b*c", "aXbYbZc", true),
        ("a*b*c", "aXbYbZ", false),
    ] {
        assert_eq!(glob_match(p, t), m, "{p} {t}");
    }
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let r = RetrySettings::default();
    let secs: Vec<u64> = (1..=7).map(|n| r.backoff(n).as_secs()).collect();
    assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30]);
    assert_eq!(r.backoff(1000), Duration::from_secs(30));
}

#[test]
fn notifications_are_built_per_action() {
    let set = alarm_set("");
    let s = check(&[("alarms.yaml", ALARMS), ("notify.yaml", SETTINGS)]).unwrap();
    let m = s.message_settings(None);
    let t = Transition {
        timestamp: ts("2024-03-10T02:10:00Z"),
        old_state: StateValue::Ok,
        new_state: StateValue::Alarm,
        reason: "r".into(),
        reason_data: None,
    };
    let event = AlarmEvent {
        name: "web-high-cpu",
        definition: AlarmDefinition::Metric(&set.alarms[0]),
        transition: &t,
        dimensions: None,
        configuration_updated: None,
    };
    let build = |a: &str, now: &str| {
        let inv = ActionInvocation {
            action: crate::action::parse(a).unwrap(),
            state: StateValue::Alarm,
            repeat: false,
        };
        build_notification(&s, &m, &event, &inv, ts(now))
    };
    let n = build(
        "arn:aws:sns:eu-west-1:123456789012:ops",
        "2024-03-10T03:00:00Z",
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        n.key,
        "web-high-cpu|1710036600000|ALARM|arn:aws:sns:eu-west-1:123456789012:ops"
    );
    assert_eq!(n.muted_by, None);
    match &n.delivery {
        Delivery::Sns {
            subject,
            message,
            region,
            ..
        } => {
            assert_eq!(subject, "ALARM: \"web-high-cpu\" in EU (Ireland)");
            assert_eq!(region, "eu-west-1");
            assert!(message.starts_with("{\"AlarmName\":\"web-high-cpu\""));
            assert!(message.contains("\"AWSAccountId\":\"210987654321\""));
        }
        other => panic!("{other:?}"),
    }
    // Inside the nightly-deploy window: built, but muted.
    let n = build("mailto:oncall@example.com", "2024-03-10T02:10:00Z")
        .unwrap()
        .unwrap();
    assert_eq!(n.muted_by.as_deref(), Some("nightly-deploy"));
    assert!(matches!(&n.delivery, Delivery::Email { to, .. } if to == "oncall@example.com"));
    let n = build("https://hooks.example/plain", "2024-03-10T03:00:00Z")
        .unwrap()
        .unwrap();
    assert!(matches!(
        &n.delivery,
        Delivery::Webhook {
            webhook: None,
            format: WebhookFormat::Cloudwatch,
            ..
        }
    ));
    assert_eq!(
        build("policy:web/scale-out", "2024-03-10T03:00:00Z"),
        Ok(None)
    );
    // Named webhooks (the action form is checked on its text).
    let named = |name: &str| {
        let inv = ActionInvocation {
            action: Action::Webhook {
                url: format!("webhook:{name}"),
            },
            state: StateValue::Alarm,
            repeat: true,
        };
        build_notification(&s, &m, &event, &inv, ts("2024-03-10T03:00:00Z"))
    };
    let n = named("pager").unwrap().unwrap();
    assert!(n.key.ends_with("|repeat@1710039600000"), "{}", n.key);
    match &n.delivery {
        Delivery::Webhook {
            webhook,
            format,
            body,
            ..
        } => {
            assert_eq!(webhook.as_deref(), Some("pager"));
            assert_eq!(*format, WebhookFormat::Pagerduty);
            // The routing key is a secret: not in the stored notification; the notifier
            // fills it in when it sends, and nothing else changes.
            assert!(body.starts_with("{\"routing_key\":\"\",\"event_action\":\"trigger\""));
            let sent = with_routing_key(body, "K\"EY").unwrap();
            assert!(sent.starts_with("{\"routing_key\":\"K\\\"EY\",\"event_action\":\"trigger\""));
            assert_eq!(
                sent.strip_prefix("{\"routing_key\":\"K\\\"EY\","),
                body.strip_prefix(PAGERDUTY_BODY_PREFIX)
            );
            let v: serde_json::Value = serde_json::from_str(&sent).unwrap();
            assert_eq!(v["routing_key"], "K\"EY");
            assert_eq!(with_routing_key("{\"event_action\":\"x\"}", "K"), None);
        }
        other => panic!("{other:?}"),
    }
    // A resolve (OK) body begins the same way.
    let ok = Transition {
        new_state: StateValue::Ok,
        ..t.clone()
    };
    let inv = ActionInvocation {
        action: Action::Webhook {
            url: "webhook:pager".into(),
        },
        state: StateValue::Ok,
        repeat: false,
    };
    let resolve = AlarmEvent {
        transition: &ok,
        ..event
    };
    let n = build_notification(&s, &m, &resolve, &inv, ts("2024-03-10T03:00:00Z"))
        .unwrap()
        .unwrap();
    let Delivery::Webhook { body, .. } = &n.delivery else {
        panic!("{n:?}")
    };
    assert!(body.starts_with(PAGERDUTY_BODY_PREFIX), "{body}");
    assert!(body.contains("\"event_action\":\"resolve\""), "{body}");
    assert!(
        named("nope")
            .unwrap_err()
            .contains("no webhook named \"nope\"")
    );
}

#[test]
fn the_examples_validate_with_their_alarms() {
    // The runnable examples: one webhook, no secret.
    let files = [
        (
            "examples/web-alarms.yaml",
            include_str!("../../../examples/web-alarms.yaml"),
        ),
        (
            "examples/notifications.yaml",
            include_str!("../../../examples/notifications.yaml"),
        ),
    ];
    let set = crate::validate(&files).unwrap_or_else(|e| panic!("{e}"));
    let s = validate_notifications(&files, &set).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.webhooks.len(), 1);
    assert_eq!(s.smtp, None);
    assert_eq!(s.mute_rules.len(), 3);
    assert_eq!(
        muted_by(&s, "web-high-cpu", ts("2030-01-06T01:00:00Z")).map(|r| r.name.as_str()),
        Some("db-migration")
    );
    assert_eq!(requirements(&files), [], "examples/ needs no secret");
    assert_eq!(crate::validate::requirements(&files), [], "nor AWS");

    // The production examples: every kind of target, each secret named by a variable.
    let files = [
        (
            "production-examples/api-alarms.yaml",
            include_str!("../../../production-examples/api-alarms.yaml"),
        ),
        (
            "production-examples/notifications.yaml",
            include_str!("../../../production-examples/notifications.yaml"),
        ),
        (
            "production-examples/scaling-fleet.yaml",
            include_str!("../../../production-examples/scaling-fleet.yaml"),
        ),
    ];
    let set = crate::validate(&files).unwrap_or_else(|e| panic!("{e}"));
    let s = validate_notifications(&files, &set).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.webhooks.len(), 3);
    assert_eq!(s.mute_rules.len(), 3);
    assert_eq!(s.smtp.as_ref().map(|s| s.port), Some(587));
    let needs: Vec<String> = requirements(&files).iter().map(|r| r.to_string()).collect();
    assert_eq!(
        needs,
        [
            "production-examples/notifications.yaml:12:124: notifications.smtp.password_env: needs the environment variable SMTP_PASSWORD",
            "production-examples/notifications.yaml:17:111: notifications.webhooks.oncall-slack.secret_env: needs the environment variable SLACK_HOOK_SECRET",
            "production-examples/notifications.yaml:19:109: notifications.webhooks.pagerduty.routing_key_env: needs the environment variable PAGERDUTY_ROUTING_KEY",
            "production-examples/notifications.yaml:21:74: notifications.webhooks.audit.secret_env: needs the environment variable AUDIT_HOOK_SECRET",
        ]
    );
    let aws: Vec<String> = crate::validate::requirements(&files)
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(
        aws,
        [
            "production-examples/api-alarms.yaml:15:21: alarms.api-high-cpu.alarm_actions[0]: needs AWS credentials",
            "production-examples/api-alarms.yaml:16:18: alarms.api-high-cpu.ok_actions[0]: needs AWS credentials",
        ]
    );
    // Without the SMTP server, the composite's mailto: action is reported.
    let e = validate_notifications(&files[..1], &set)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "composite_alarms.api-degraded.alarm_actions[0]: e-mail actions need an SMTP server"
        ),
        "{e}"
    );
}

#[test]
fn secrets_come_from_a_variable_or_a_file_and_ca_bundles_from_files() {
    let text = r#"notifications:
  smtp: {host: mail.example, from: a@example.com, starttls: required, username: ops, password_file: secrets/smtp, ca_file: /etc/thermostat/mail-ca.pem}
  webhooks:
    - {name: audit, url: "https://audit.internal/hook", secret_file: /run/secrets/audit, ca_file: private-ca.pem}
    - {name: pager, url: "https://events.pagerduty.com/v2/enqueue", format: pagerduty, routing_key_file: pd-key}
    - {name: slack, url: "https://hooks.example/T000", secret_env: SLACK}
"#;
    let files = [("alarms.yaml", ALARMS), ("conf/n.yaml", text)];
    let s = check(&files).unwrap_or_else(|e| panic!("{e}"));
    let smtp = s.smtp.as_ref().unwrap();
    // A relative path is resolved against the folder of the file that names it.
    assert_eq!(
        smtp.password,
        Some(SecretSource::File("conf/secrets/smtp".into()))
    );
    assert_eq!(smtp.ca_file.as_deref(), Some("/etc/thermostat/mail-ca.pem"));
    let hook = |n: &str| s.webhook(n).unwrap();
    assert_eq!(
        hook("audit").secret,
        Some(SecretSource::File("/run/secrets/audit".into()))
    );
    assert_eq!(
        hook("audit").ca_file.as_deref(),
        Some("conf/private-ca.pem")
    );
    assert_eq!(
        hook("pager").routing_key,
        Some(SecretSource::File("conf/pd-key".into()))
    );
    assert_eq!(
        hook("slack").secret,
        Some(SecretSource::Env("SLACK".into()))
    );
    assert_eq!(hook("slack").ca_file, None);

    // What the machine must provide, at the values' positions: files too.
    let needs: Vec<String> = requirements(&files).iter().map(|r| r.to_string()).collect();
    assert_eq!(
        needs,
        [
            "conf/n.yaml:2:101: notifications.smtp.password_file: needs the file conf/secrets/smtp",
            "conf/n.yaml:2:124: notifications.smtp.ca_file: needs the file /etc/thermostat/mail-ca.pem",
            "conf/n.yaml:4:70: notifications.webhooks.audit.secret_file: needs the file /run/secrets/audit",
            "conf/n.yaml:4:99: notifications.webhooks.audit.ca_file: needs the file conf/private-ca.pem",
            "conf/n.yaml:5:106: notifications.webhooks.pager.routing_key_file: needs the file conf/pd-key",
            "conf/n.yaml:6:68: notifications.webhooks.slack.secret_env: needs the environment variable SLACK",
        ]
    );
}

#[test]
fn a_secret_from_both_a_variable_and_a_file_is_an_error_naming_both() {
    let text = r#"notifications:
  smtp: {host: h, from: a@b.c, username: u, password_env: P, password_file: /p}
  webhooks:
    - {name: a, url: "https://a.example", secret_file: /s, secret_env: S}
    - {name: pd, url: "https://e.example", format: pagerduty, routing_key_env: K, routing_key_file: /k}
    - {name: plain, url: "http://b.example", ca_file: /ca.pem, routing_key_file: /k}
  smtp_again: x
"#;
    let out = errors(&[("alarms.yaml", ALARMS), ("n.yaml", text)]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "n.yaml:2:77: notifications.smtp.password_file: password_env and password_file are both given; give one of them (the secret comes from an environment variable or from a file)",
            "n.yaml:4:72: notifications.webhooks.a.secret_env: secret_env and secret_file are both given; give one of them (the secret comes from an environment variable or from a file)",
            "n.yaml:5:101: notifications.webhooks.pd.routing_key_file: routing_key_env and routing_key_file are both given; give one of them (the secret comes from an environment variable or from a file)",
            "n.yaml:6:55: notifications.webhooks.plain.ca_file: is only used with an https:// URL (the url is http://)",
            "n.yaml:6:64: notifications.webhooks.plain.routing_key_file: is only used with format: pagerduty (the format is cloudwatch)",
            "n.yaml:7:3: notifications.smtp_again: unknown field \"smtp_again\"; expected one of: account_id, region, dashboard_url, smtp, webhooks, mute_rules, retry, queue_capacity",
        ],
        "{out}"
    );
    let tls_off =
        "notifications:\n  smtp: {host: h, from: a@b.c, starttls: none, ca_file: /ca.pem}\n";
    assert_eq!(
        errors(&[("alarms.yaml", ALARMS), ("n.yaml", tls_off)]),
        "n.yaml:2:57: notifications.smtp.ca_file: is only used with starttls: opportunistic or required (the connection is not encrypted with starttls: none)"
    );
}

#[test]
fn secret_files_lose_one_line_ending_and_are_bounded() {
    assert_eq!(secret_from_file(b"s3cret\n").unwrap().expose(), "s3cret");
    assert_eq!(secret_from_file(b"s3cret\r\n").unwrap().expose(), "s3cret");
    assert_eq!(secret_from_file(b"s3cret").unwrap().expose(), "s3cret");
    // Only one line ending goes; other whitespace is part of the secret.
    assert_eq!(
        secret_from_file(b"s3cret\n\n").unwrap().expose(),
        "s3cret\n"
    );
    assert_eq!(
        secret_from_file(b" s3cret \n").unwrap().expose(),
        " s3cret "
    );
    assert_eq!(secret_from_file(b"\n").unwrap_err(), "is empty");
    assert_eq!(secret_from_file(b"").unwrap_err(), "is empty");
    assert_eq!(
        secret_from_file(b"\xff\xfe").unwrap_err(),
        "is not UTF-8 text"
    );
    let big = vec![b'a'; MAX_SECRET_FILE_BYTES + 1];
    assert_eq!(
        secret_from_file(&big).unwrap_err(),
        "is larger than 65536 bytes (the limit)"
    );
    assert!(secret_from_file(&big[1..]).is_ok());
}

#[test]
fn secrets_never_print() {
    let s = Secret::new("hunter2");
    assert_eq!(format!("{s:?}"), "[redacted]");
    assert_eq!(s.to_string(), "[redacted]");
    assert_eq!(s.expose(), "hunter2");
    // The settings name where secrets are, never what they are.
    let src = SecretSource::File("/run/secrets/smtp".into());
    assert_eq!(src.to_string(), "the file /run/secrets/smtp");
    assert_eq!(src.key("password"), "password_file");
    assert_eq!(
        SecretSource::Env("P".into()).to_string(),
        "the environment variable P"
    );
    assert_eq!(resolve_path("conf/a.yaml", "k"), "conf/k");
    assert_eq!(resolve_path("a.yaml", "k"), "k");
    assert_eq!(resolve_path("conf/a.yaml", "/abs/k"), "/abs/k");
}
