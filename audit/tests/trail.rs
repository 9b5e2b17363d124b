//! The audit trail through its public API, on real files in a temporary data directory.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use std::fs;
use std::io::Write as _;
use std::path::Path;

use jiff::Timestamp;
use serde_json::json;
use thermostat_audit::{AUDIT_DIR, AuditLog, MAX_LINE_BYTES, ScanBudget};
use thermostat_auth::{AuditError, AuditEvent, AuditQuery, AuditTrail, Outcome, Role};

fn at(rfc3339: &str) -> Timestamp {
    rfc3339.parse().unwrap()
}

fn event(time: &str, principal: &str, action: &str, n: usize) -> AuditEvent {
    AuditEvent {
        time: at(time),
        request_id: format!("req-{n}"),
        principal: principal.into(),
        role: Some(Role::Operator),
        source_ip: Some("10.0.0.7".into()),
        user_agent: Some("curl/8.5".into()),
        action: action.into(),
        target: Some(format!("alarm-{n}")),
        parameters: json!({ "n": n, "state_value": "ALARM" }),
        outcome: Outcome::Success,
        error: None,
    }
}

fn query() -> AuditQuery {
    AuditQuery::default()
}

/// Every event of `query`, page after page (`limit` each), and the number of pages.
fn walk(log: &AuditLog, query: &AuditQuery) -> (Vec<AuditEvent>, usize) {
    let mut q = query.clone();
    let (mut all, mut pages) = (Vec::new(), 0);
    loop {
        let page = log.query(&q).unwrap();
        pages += 1;
        let limit = match q.limit {
            0 => thermostat_audit::DEFAULT_PAGE,
            n => n.min(thermostat_auth::audit::MAX_PAGE),
        };
        assert!(page.events.len() <= limit, "{}", page.events.len());
        all.extend(page.events);
        match page.next_token {
            Some(token) => q.next_token = Some(token),
            None => return (all, pages),
        }
        assert!(pages < 100_000, "the walk does not end");
    }
}

fn day_file(data: &Path, day: &str) -> std::path::PathBuf {
    data.join(AUDIT_DIR).join(format!("audit-{day}.jsonl"))
}

#[test]
fn an_event_round_trips_with_every_field() {
    let data = tempfile::tempdir().unwrap();
    let log = AuditLog::open(data.path()).unwrap();
    let full = AuditEvent {
        time: at("2024-03-09T12:34:56.789Z"),
        request_id: "r-1".into(),
        principal: "ci-deployer".into(),
        role: Some(Role::Admin),
        source_ip: Some("192.0.2.1".into()),
        user_agent: Some("thermostat-cli/0.1".into()),
        action: "reload".into(),
        target: Some("alarms/cpu.yaml".into()),
        parameters: json!({ "files": [{ "path": "alarms/cpu.yaml", "sha256": "ab12" }] }),
        outcome: Outcome::Failure,
        error: Some("alarms/cpu.yaml:3:5: alarms.HighCpu.threshold: must be a number".into()),
    };
    let bare = AuditEvent {
        time: at("2024-03-09T12:35:00Z"),
        request_id: "r-2".into(),
        principal: "unknown".into(),
        role: None,
        source_ip: None,
        user_agent: None,
        action: "sign_in".into(),
        target: None,
        parameters: json!(null),
        outcome: Outcome::Denied,
        error: None,
    };
    log.append(&full).unwrap();
    log.append(&bare).unwrap();
    let page = log.query(&query()).unwrap();
    assert_eq!(page.events, vec![full, bare]);
    assert_eq!(page.next_token, None);

    // Kept across a restart.
    drop(log);
    let log = AuditLog::open(data.path()).unwrap();
    assert_eq!(log.query(&query()).unwrap().events.len(), 2);
    let text = fs::read_to_string(day_file(data.path(), "2024-03-09")).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(text.contains(r#""outcome":"failure""#), "{text}");
}

#[test]
fn filters_select_by_time_principal_and_action() {
    let data = tempfile::tempdir().unwrap();
    let log = AuditLog::open(data.path()).unwrap();
    let events = [
        event("2024-03-08T23:00:00Z", "alice", "reload", 0),
        event("2024-03-09T01:00:00Z", "bob", "set_alarm_state", 1),
        event("2024-03-09T02:00:00Z", "alice", "set_alarm_state", 2),
        event("2024-03-10T00:00:00Z", "alice", "reload", 3),
        event("2024-03-11T00:00:00Z", "bob", "reload", 4),
    ];
    for e in &events {
        log.append(e).unwrap();
    }
    let select = |q: AuditQuery| -> Vec<String> {
        walk(&log, &q).0.into_iter().map(|e| e.request_id).collect()
    };
    assert_eq!(select(query()).len(), 5);
    assert_eq!(
        select(AuditQuery {
            since: Some(at("2024-03-09T01:00:00Z")),
            until: Some(at("2024-03-10T00:00:00Z")),
            ..query()
        }),
        ["req-1", "req-2"]
    );
    assert_eq!(
        select(AuditQuery {
            since: Some(at("2024-03-10T00:00:00Z")),
            ..query()
        }),
        ["req-3", "req-4"]
    );
    assert_eq!(
        select(AuditQuery {
            until: Some(at("2024-03-09T01:00:00Z")),
            ..query()
        }),
        ["req-0"]
    );
    assert_eq!(
        select(AuditQuery {
            principal: Some("alice".into()),
            ..query()
        }),
        ["req-0", "req-2", "req-3"]
    );
    assert_eq!(
        select(AuditQuery {
            principal: Some("alice".into()),
            action: Some("reload".into()),
            ..query()
        }),
        ["req-0", "req-3"]
    );
    assert!(
        select(AuditQuery {
            since: Some(at("2024-03-10T00:00:00Z")),
            until: Some(at("2024-03-09T00:00:00Z")),
            ..query()
        })
        .is_empty()
    );
}

#[test]
fn pages_walk_every_event_once_in_order_across_days() {
    let data = tempfile::tempdir().unwrap();
    let log = AuditLog::open(data.path()).unwrap();
    let mut appended = Vec::new();
    for n in 0..25 {
        let time = if n < 12 {
            format!("2024-03-09T23:59:{n:02}Z")
        } else {
            format!("2024-03-10T00:00:{n:02}Z")
        };
        let e = event(&time, "alice", "reload", n);
        log.append(&e).unwrap();
        appended.push(e);
    }
    assert!(day_file(data.path(), "2024-03-09").exists());
    assert!(day_file(data.path(), "2024-03-10").exists());
    for limit in [1, 5, 7, 12, 25, 1000] {
        let (all, pages) = walk(&log, &AuditQuery { limit, ..query() });
        assert_eq!(all, appended, "limit {limit}");
        assert!(
            pages >= 25usize.div_ceil(limit),
            "limit {limit}: {pages} pages"
        );
    }
    // 0 means the default page; more than the maximum is clamped.
    let page = log.query(&query()).unwrap();
    assert_eq!(page.events.len(), 25);
    let page = log
        .query(&AuditQuery {
            limit: usize::MAX,
            ..query()
        })
        .unwrap();
    assert_eq!(page.events.len(), 25);
}

#[test]
fn a_bad_next_token_is_refused_naming_the_field() {
    let data = tempfile::tempdir().unwrap();
    let log = AuditLog::open(data.path()).unwrap();
    for n in 0..3 {
        log.append(&event("2024-03-09T10:00:00Z", "alice", "reload", n))
            .unwrap();
    }
    let good = log
        .query(&AuditQuery {
            limit: 1,
            ..query()
        })
        .unwrap()
        .next_token
        .unwrap();
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    for bad in [
        "nope".to_owned(),
        format!("{good}00"),
        hex("2024-03-09:5"),      // inside a line
        hex("2024-03-09:999999"), // past the end
        hex("yesterday:0"),
    ] {
        let err = log
            .query(&AuditQuery {
                next_token: Some(bad.clone()),
                ..query()
            })
            .unwrap_err();
        match err {
            AuditError::Invalid { field, .. } => assert_eq!(field, "next_token", "{bad}"),
            other => panic!("{bad}: {other}"),
        }
    }
}

#[test]
fn newlines_and_quotes_in_strings_stay_on_one_line() {
    let data = tempfile::tempdir().unwrap();
    let log = AuditLog::open(data.path()).unwrap();
    let mut e = event(
        "2024-03-09T10:00:00Z",
        "eve\n{\"forged\": true}\n",
        "reload",
        0,
    );
    e.error = Some("line one\nline two\r\n\"quoted\" \\ \u{2028} \u{0}".into());
    e.target = Some("\n".into());
    e.parameters = json!({ "a\nb": "c\"\nd" });
    log.append(&e).unwrap();
    let text = fs::read_to_string(day_file(data.path(), "2024-03-09")).unwrap();
    assert_eq!(text.matches('\n').count(), 1, "{text}");
    assert!(text.ends_with('\n'));
    assert_eq!(log.query(&query()).unwrap().events, vec![e]);
}

#[test]
fn a_long_event_is_shortened_to_one_line_not_refused() {
    let data = tempfile::tempdir().unwrap();
    let log = AuditLog::open(data.path()).unwrap();
    let mut e = event("2024-03-09T10:00:00Z", "alice", "reload", 0);
    e.parameters = json!({ "body": "x".repeat(200_000) });
    e.error = Some("é".repeat(100_000));
    log.append(&e).unwrap();
    let mut huge = event("2024-03-09T10:00:01Z", "alice", "reload", 1);
    huge.user_agent = Some("\u{1}".repeat(MAX_LINE_BYTES));
    huge.target = Some("t".repeat(MAX_LINE_BYTES));
    log.append(&huge).unwrap();
    log.append(&event("2024-03-09T10:00:02Z", "alice", "reload", 2))
        .unwrap();

    let text = fs::read_to_string(day_file(data.path(), "2024-03-09")).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text.lines().all(|l| l.len() < MAX_LINE_BYTES));
    let events = log.query(&query()).unwrap().events;
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].parameters, json!({ "truncated": true }));
    let error = events[0].error.as_deref().unwrap();
    assert!(
        !error.is_empty() && error.len() < 100_000,
        "{}",
        error.len()
    );
    assert_eq!(events[0].principal, "alice");
    assert_eq!(events[1].parameters, json!({ "truncated": true }));
    assert_eq!(events[1].request_id, "req-1");
    assert_eq!(events[2].parameters, e_params(2));
}

fn e_params(n: usize) -> serde_json::Value {
    json!({ "n": n, "state_value": "ALARM" })
}

#[test]
fn a_torn_last_line_is_skipped_and_later_appends_are_readable() {
    let data = tempfile::tempdir().unwrap();
    let first = event("2024-03-09T10:00:00Z", "alice", "reload", 0);
    let before = AuditLog::open(data.path()).unwrap();
    before.append(&first).unwrap();
    // What `kill -9` in the middle of an append leaves: part of a line, no newline.
    let path = day_file(data.path(), "2024-03-09");
    let whole =
        serde_json::to_string(&event("2024-03-09T10:00:01Z", "alice", "reload", 1)).unwrap();
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&whole.as_bytes()[..whole.len() / 2])
        .unwrap();
    // Not read while unfinished.
    assert_eq!(before.query(&query()).unwrap().events, vec![first.clone()]);
    drop(before);

    // The restart ends it: a line of its own, skipped.
    let log = AuditLog::open(data.path()).unwrap();
    assert!(fs::read_to_string(&path).unwrap().ends_with('\n'));
    assert_eq!(log.query(&query()).unwrap().events, vec![first.clone()]);

    let second = event("2024-03-09T10:00:02Z", "bob", "set_alarm_state", 2);
    log.append(&second).unwrap();
    let (all, _) = walk(
        &log,
        &AuditQuery {
            limit: 1,
            ..query()
        },
    );
    assert_eq!(all, vec![first.clone(), second.clone()]);
    assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 3);

    // An unfinished line at the end (one being appended) is not read, and not passed over.
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"{\"time\":")
        .unwrap();
    let page = log.query(&query()).unwrap();
    assert_eq!(page.events, vec![first, second]);
    assert_eq!(page.next_token, None);
}

#[test]
fn an_unreadable_long_line_is_skipped() {
    let data = tempfile::tempdir().unwrap();
    let log = AuditLog::open(data.path()).unwrap();
    log.append(&event("2024-03-09T10:00:00Z", "alice", "reload", 0))
        .unwrap();
    let path = day_file(data.path(), "2024-03-09");
    let mut junk = vec![b'x'; 3 * MAX_LINE_BYTES];
    junk.push(b'\n');
    fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&junk)
        .unwrap();
    log.append(&event("2024-03-09T10:00:01Z", "alice", "reload", 1))
        .unwrap();
    let ids: Vec<String> = walk(
        &log,
        &AuditQuery {
            limit: 1,
            ..query()
        },
    )
    .0
    .into_iter()
    .map(|e| e.request_id)
    .collect();
    assert_eq!(ids, ["req-0", "req-1"]);
}

#[test]
fn a_tiny_scan_budget_still_walks_everything() {
    let data = tempfile::tempdir().unwrap();
    let log = AuditLog::open(data.path())
        .unwrap()
        .with_scan_budget(ScanBudget {
            bytes: u64::MAX,
            lines: 3,
        });
    let mut alice = Vec::new();
    for n in 0..40 {
        let day = 1 + n / 10;
        let who = if n % 4 == 0 { "alice" } else { "bob" };
        let e = event(&format!("2024-03-{day:02}T10:00:{n:02}Z"), who, "reload", n);
        log.append(&e).unwrap();
        if who == "alice" {
            alice.push(e);
        }
    }
    let q = AuditQuery {
        principal: Some("alice".into()),
        limit: 2,
        ..query()
    };
    let first = log.query(&q).unwrap();
    assert!(
        first.events.len() < 2,
        "3 lines hold one of alice's at most"
    );
    assert!(first.next_token.is_some());
    let (all, pages) = walk(&log, &q);
    assert_eq!(all, alice);
    assert!(pages >= 40 / 3, "{pages}");

    let bytes = AuditLog::open(data.path())
        .unwrap()
        .with_scan_budget(ScanBudget {
            bytes: 1,
            lines: usize::MAX,
        });
    let (all, pages) = walk(
        &bytes,
        &AuditQuery {
            limit: 1000,
            ..query()
        },
    );
    assert_eq!(all.len(), 40);
    assert!(pages >= 40, "{pages}");
}

#[test]
fn appends_from_many_threads_are_whole_lines() {
    let data = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(AuditLog::open(data.path()).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = std::sync::Arc::clone(&log);
            std::thread::spawn(move || {
                for n in 0..25 {
                    let mut e = event("2024-03-09T10:00:00Z", "alice", "reload", t * 100 + n);
                    e.parameters = json!({ "pad": "p".repeat(5000) });
                    log.append(&e).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (all, _) = walk(&log, &query());
    assert_eq!(all.len(), 100);
}

#[cfg(unix)]
#[test]
fn files_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let data = tempfile::tempdir().unwrap();
    let log = AuditLog::open(data.path()).unwrap();
    log.append(&event("2024-03-09T10:00:00Z", "alice", "reload", 0))
        .unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data.path().join(AUDIT_DIR)), 0o700);
    assert_eq!(mode(&day_file(data.path(), "2024-03-09")), 0o600);

    let copy = tempfile::tempdir().unwrap();
    assert_eq!(log.backup_to(copy.path()).unwrap(), 1);
    assert_eq!(mode(&copy.path().join("audit-2024-03-09.jsonl")), 0o600);
}

#[test]
fn a_backup_copy_is_every_file_as_it_was() {
    let data = tempfile::tempdir().unwrap();
    let log = AuditLog::open(data.path()).unwrap();
    for (n, day) in ["2024-03-09", "2024-03-10", "2024-03-10"]
        .iter()
        .enumerate()
    {
        log.append(&event(&format!("{day}T10:00:00Z"), "alice", "backup", n))
            .unwrap();
    }
    fs::write(data.path().join(AUDIT_DIR).join("notes.txt"), "not ours").unwrap();
    let copy = tempfile::tempdir().unwrap();
    assert_eq!(log.backup_to(copy.path()).unwrap(), 2);
    for day in ["2024-03-09", "2024-03-10"] {
        let name = format!("audit-{day}.jsonl");
        assert_eq!(
            fs::read(copy.path().join(&name)).unwrap(),
            fs::read(day_file(data.path(), day)).unwrap()
        );
    }
    assert!(!copy.path().join("notes.txt").exists());
}
