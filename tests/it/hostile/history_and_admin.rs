//! Hostile input: alarm history, SetAlarmState, backups, dashboard sizes, cross-site requests
//! and the HTTP error format (issue 15, findings 5, 6, 13 and the HTTP errors of 12).
//!
//! Every test drives the real server in-process over HTTP; time is a manual clock and the
//! engine is ticked by hand, so history ages and pruning happen at known times. Bounds are
//! asserted as sizes in bytes, counts of items and files, never as durations.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use thermostat::app::{self, Running, Settings};
use thermostat_metrics::{ManualClock, Timestamp};

const CONFIG: &str = r#"alarms:
  - name: hot
    namespace: Test/Hostile
    metric_name: Cpu
    dimensions: {Host: a}
    statistic: Average
    period_seconds: 60
    evaluation_periods: 1
    threshold: 70
    comparison_operator: GreaterThanThreshold
"#;

/// 2026-11-26T10:00:00Z, on a whole minute.
const T0: i64 = 1_795_687_200_000;
const DAY_MS: i64 = 86_400_000;

struct Server {
    running: Running,
    clock: Arc<ManualClock>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    data_dir: PathBuf,
}

impl Server {
    async fn start(tweak: impl FnOnce(&mut Settings)) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("warn")
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("alarms.yaml"), CONFIG).unwrap();
        let clock = Arc::new(ManualClock::new(Timestamp(T0)));
        let mut settings = Settings {
            grpc_addr: "127.0.0.1:0".parse().unwrap(),
            http_addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().join("data"),
            config: vec![dir.path().join("alarms.yaml")],
            alarm_tick_loop: false,
            ..Settings::default()
        };
        tweak(&mut settings);
        let data_dir = settings.data_dir.clone();
        let running = app::start_with_clock(settings, clock.clone())
            .await
            .expect("server starts");
        Server {
            running,
            clock,
            http: reqwest::Client::new(),
            _dir: dir,
            data_dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.http_addr)
    }

    /// Ticks the engine at `t` (and sets the clock there), as the tick loop would.
    async fn tick(&self, t: i64) {
        self.clock.set(Timestamp(t));
        let engine = Arc::clone(&self.running.engine);
        tokio::task::spawn_blocking(move || engine.tick(Timestamp(t)))
            .await
            .unwrap()
            .unwrap();
    }

    async fn set_state(&self, body: &Value) -> (StatusCode, Value) {
        let r = self
            .http
            .put(self.url("/api/v1/alarms/hot/state"))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `(status, body bytes)` of a GET.
    async fn get_raw(&self, path: &str) -> (StatusCode, Vec<u8>) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        (r.status(), r.bytes().await.unwrap().to_vec())
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.get_raw(path).await;
        assert_eq!(
            status,
            200,
            "GET {path}: {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).unwrap()
    }

    /// Every history item of `hot` through pagination, `page` at a time, checking that no
    /// page is larger than asked.
    async fn all_history(&self, page: usize) -> Vec<Value> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..10_000 {
            let mut path = format!("/api/v1/alarms/hot/history?max_records={page}");
            if let Some(t) = &token {
                path.push_str(&format!("&next_token={t}"));
            }
            let doc = self.get(&path).await;
            let items = doc["history"].as_array().unwrap();
            assert!(
                items.len() <= page,
                "{} items on a page of {page}",
                items.len()
            );
            out.extend(items.iter().cloned());
            match doc["next_token"].as_str() {
                Some(t) => token = Some(t.to_owned()),
                None => return out,
            }
        }
        panic!("pagination did not end");
    }
}

fn reason_of(item: &Value) -> &str {
    item["data"]["newState"]["stateReason"]
        .as_str()
        .unwrap_or("")
}

fn ms(v: &Value) -> i64 {
    v.as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond()
}

fn assert_error(body: &Value, code: &str, field: Option<&str>) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    if let Some(f) = field {
        assert_eq!(body["error"]["field"], f, "{body}");
    }
}

/// A JSON object whose compact text is exactly `chars` characters.
fn json_of_chars(chars: usize) -> Value {
    // {"k":"…"} is 8 characters around the string.
    json!({ "k": "x".repeat(chars - 8) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_alarm_state_bounds_the_reason_and_reason_data_as_cloudwatch() {
    let s = Server::start(|_| {}).await;
    let put = |reason: String, data: Option<Value>| {
        let mut body = json!({"state_value": "ALARM", "state_reason": reason});
        if let Some(d) = data {
            body["state_reason_data"] = d;
        }
        body
    };
    // Characters, not bytes: 1,023 two-byte characters are accepted, 1,024 are not.
    let (status, body) = s.set_state(&put("é".repeat(1023), None)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s.set_state(&put("é".repeat(1024), None)).await;
    assert_eq!(status, 400);
    assert_error(&body, "invalid_argument", Some("state_reason"));
    assert!(
        body["error"]["message"].as_str().unwrap().contains("1023"),
        "{body}"
    );

    // Reason data as CloudWatch sends it (a string holding JSON) and as a JSON value:
    // exactly 4,000 characters are accepted, 4,001 are not.
    let exact = json_of_chars(4000);
    assert_eq!(exact.to_string().chars().count(), 4000);
    for data in [json!(exact.to_string()), exact.clone()] {
        let (status, body) = s.set_state(&put("ok".into(), Some(data))).await;
        assert_eq!(status, 200, "{body}");
    }
    let stored = s.get("/api/v1/alarms/hot").await;
    assert_eq!(stored["reason_data"], exact, "stored as the JSON it holds");
    let over = json_of_chars(4001);
    for data in [json!(over.to_string()), over.clone()] {
        let (status, body) = s.set_state(&put("ok".into(), Some(data))).await;
        assert_eq!(status, 400, "{body}");
        assert_error(&body, "invalid_argument", Some("state_reason_data"));
        let m = body["error"]["message"].as_str().unwrap();
        assert!(m.contains("4000") && m.contains("4001"), "{m}");
    }
    // Not JSON: refused as CloudWatch refuses it (InvalidFormat).
    let (status, body) = s
        .set_state(&put("ok".into(), Some(json!("{not json"))))
        .await;
    assert_eq!(status, 400);
    assert_error(&body, "invalid_argument", Some("state_reason_data"));
    assert!(body["error"]["message"].as_str().unwrap().contains("JSON"));

    // A huge value is refused without being echoed: the error stays small.
    let big = "y".repeat(1_000_000);
    for body in [
        put(big.clone(), None),
        put("ok".into(), Some(json!(big.clone()))),
    ] {
        let r = s
            .http
            .put(s.url("/api/v1/alarms/hot/state"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let bytes = r.bytes().await.unwrap();
        assert!(bytes.len() < 1024, "{} bytes of error", bytes.len());
    }
    // Nothing refused was recorded: the last state is the accepted one.
    let alarm = s.get("/api/v1/alarms/hot").await;
    assert_eq!(alarm["reason"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_paginated_capped_per_alarm_and_pruned_by_age() {
    let s = Server::start(|st| {
        st.history_max_items_per_alarm = 50;
        st.history_retention_days = 1;
    })
    .await;
    // 120 state changes, one a second.
    const CHANGES: usize = 120;
    for i in 0..CHANGES {
        s.clock.set(Timestamp(T0 + 1_000 + i as i64 * 1_000));
        let state = if i % 2 == 0 { "ALARM" } else { "OK" };
        let (status, body) = s
            .set_state(&json!({"state_value": state, "state_reason": format!("change {i}")}))
            .await;
        assert_eq!(status, 200, "{body}");
    }

    // Pages of 7: every item exactly once, newest first; more than the cap, since nothing
    // has pruned yet.
    let items = s.all_history(7).await;
    let reasons: Vec<&str> = items
        .iter()
        .map(reason_of)
        .filter(|r| r.starts_with("change "))
        .collect();
    let want: Vec<String> = (0..CHANGES).rev().map(|i| format!("change {i}")).collect();
    assert_eq!(reasons, want, "every change once, newest first");
    let times: Vec<i64> = items.iter().map(|i| ms(&i["timestamp"])).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    assert_eq!(
        items.len(),
        CHANGES + 1,
        "the changes and the alarm's creation"
    );

    // A token stays valid while history is appended: the next page is what it was.
    let first = s.get("/api/v1/alarms/hot/history?max_records=10").await;
    let token = first["next_token"].as_str().unwrap().to_owned();
    s.clock.set(Timestamp(T0 + 200_000));
    s.set_state(&json!({"state_value": "ALARM", "state_reason": "late"}))
        .await;
    let second = s
        .get(&format!(
            "/api/v1/alarms/hot/history?max_records=10&next_token={token}"
        ))
        .await;
    let second: Vec<&str> = second["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(reason_of)
        .collect();
    let want: Vec<String> = (100..110).rev().map(|i| format!("change {i}")).collect();
    assert_eq!(second, want);

    // Filters: by item type, and by time (start inclusive, end exclusive).
    let created = s
        .get("/api/v1/alarms/hot/history?item_type=ConfigurationUpdate")
        .await;
    assert_eq!(created["history"].as_array().unwrap().len(), 1);
    let start = Timestamp(T0 + 11_000).to_rfc3339();
    let end = Timestamp(T0 + 21_000).to_rfc3339();
    let window = s
        .get(&format!(
            "/api/v1/alarms/hot/history?start={start}&end={end}&item_type=StateUpdate"
        ))
        .await;
    let in_window: Vec<&str> = window["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(reason_of)
        .collect();
    let want: Vec<String> = (10..20).rev().map(|i| format!("change {i}")).collect();
    assert_eq!(in_window, want);
    assert!(window["next_token"].is_null());

    // Bad parameters are 400s naming the parameter.
    for (query, field) in [
        ("max_records=0", "max_records"),
        ("max_records=101", "max_records"),
        ("max_records=abc", "max_records"),
        ("next_token=forged", "next_token"),
        ("item_type=Bogus", "item_type"),
        ("start=yesterday", "start"),
    ] {
        let (status, body) = s
            .get_raw(&format!("/api/v1/alarms/hot/history?{query}"))
            .await;
        assert_eq!(status, 400, "{query}");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_error(&body, "invalid_argument", Some(field));
    }

    // The first tick on a whole minute prunes to the cap: 50 items, the newest.
    s.tick(T0 + 5 * 60_000).await;
    let items = s.all_history(100).await;
    assert_eq!(items.len(), 50, "capped per alarm");
    let kept: BTreeSet<&str> = items.iter().map(reason_of).collect();
    assert!(kept.contains("late") && kept.contains("change 119"));
    assert!(!kept.contains("change 60"), "the oldest went first");

    // A day later everything older than the retention is gone, and what is younger stays.
    let later = T0 + DAY_MS + 10 * 60_000;
    s.clock.set(Timestamp(later - 60_000));
    s.set_state(&json!({"state_value": "ALARM", "state_reason": "young"}))
        .await;
    s.tick(later).await;
    let items = s.all_history(100).await;
    let cutoff = later - DAY_MS;
    assert!(
        items.iter().all(|i| ms(&i["timestamp"]) >= cutoff),
        "items older than a day remain: {items:?}"
    );
    assert!(items.iter().any(|i| reason_of(i) == "young"), "{items:?}");
    assert!(items.len() <= 3, "{items:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_history_answers_stay_bounded_after_thousands_of_large_changes() {
    let s = Server::start(|_| {}).await;
    // 2,000 changes with the largest reason data CloudWatch allows: ~20 MB of history.
    const CHANGES: usize = 2_000;
    let data = json_of_chars(4000);
    let reason = "r".repeat(200);
    for i in 0..CHANGES {
        s.clock.set(Timestamp(T0 + 1_000 + i as i64 * 1_000));
        let state = if i % 2 == 0 { "ALARM" } else { "OK" };
        let (status, body) = s
            .set_state(
                &json!({"state_value": state, "state_reason": reason, "state_reason_data": data}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let stored: usize = s
        .all_history(100)
        .await
        .iter()
        .map(|i| i.to_string().len())
        .sum();
    assert!(stored > 15_000_000, "the history holds {stored} bytes");

    // The alarm page: 50 items without reason data, a flag that more exist, and a timeline
    // from at most 1,000 changes. A poll of it is well under the history's size.
    let range = 3_600;
    let (status, body) = s
        .get_raw(&format!(
            "/api/v1/dashboard/alarms/hot?range_seconds={range}"
        ))
        .await;
    assert_eq!(status, 200);
    assert!(
        body.len() < 200_000,
        "the alarm page's data is {} bytes",
        body.len()
    );
    let page: Value = serde_json::from_slice(&body).unwrap();
    let history = page["history"].as_array().unwrap();
    assert_eq!(history.len(), 50);
    assert_eq!(page["history_more"], true);
    assert!(
        history[0]["data"]["newState"]
            .get("stateReasonData")
            .is_none()
    );
    let segments = page["timeline"].as_array().unwrap().len();
    assert!(
        (900..=1_001).contains(&segments),
        "{segments} timeline segments"
    );
    assert_eq!(page["timeline_complete"], false);
    // The most it can show: 100 items.
    let (_, body) = s
        .get_raw("/api/v1/dashboard/alarms/hot?history_limit=100")
        .await;
    assert!(body.len() < 250_000, "{} bytes", body.len());
    let (status, _) = s
        .get_raw("/api/v1/dashboard/alarms/hot?history_limit=101")
        .await;
    assert_eq!(status, 400);

    // The history API: one page of the default 100 items, with everything in them.
    let (_, body) = s.get_raw("/api/v1/alarms/hot/history").await;
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["history"].as_array().unwrap().len(), 100);
    assert!(doc["next_token"].is_string());
    assert!(
        body.len() < 100 * 10_000,
        "a page of 100 is {} bytes",
        body.len()
    );

    // The overview: states and reasons, not the reason data.
    let (_, body) = s.get_raw("/api/v1/dashboard/overview").await;
    assert!(body.len() < 10_000, "the overview is {} bytes", body.len());
    let o: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(o["alarm_counts"]["total"], 1);
    assert!(o["alarms"][0].get("reason_data").is_none());
}

fn backups_in(data_dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(data_dir.join("backups"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_are_unique_kept_to_the_retention_and_run_one_at_a_time() {
    let s = Server::start(|st| st.backup_retention = 3).await;
    // Five in a row, in the same millisecond of the clock: five names, three kept.
    let mut made = Vec::new();
    for _ in 0..5 {
        let r = s
            .http
            .post(s.url("/api/v1/admin/backup"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let m: Value = r.json().await.unwrap();
        made.push(m["path"].as_str().unwrap().to_owned());
    }
    let unique: BTreeSet<&String> = made.iter().collect();
    assert_eq!(unique.len(), 5, "{made:?}");
    let kept = backups_in(&s.data_dir);
    let newest: BTreeSet<String> = made[2..]
        .iter()
        .map(|p| {
            Path::new(p)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(kept, newest, "the newest three, nothing else");

    // Many at once: each is made (with its own name) or refused with 409 naming the one
    // that runs; none fails.
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let (http, url) = (s.http.clone(), s.url("/api/v1/admin/backup"));
            tokio::spawn(async move {
                let r = http.post(url).send().await.unwrap();
                (r.status(), r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut paths = BTreeSet::new();
    let mut conflicts = 0;
    for r in requests {
        let (status, body) = r.await.unwrap();
        match status.as_u16() {
            200 => assert!(
                paths.insert(body["path"].as_str().unwrap().to_owned()),
                "{body}"
            ),
            409 => {
                conflicts += 1;
                assert_error(&body, "conflict", Some("backup"));
                let m = body["error"]["message"].as_str().unwrap();
                assert!(m.contains("/backups/backup-") && m.contains(".tar"), "{m}");
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert!(!paths.is_empty());
    assert_eq!(paths.len() + conflicts, 8);
    let kept = backups_in(&s.data_dir);
    assert_eq!(kept.len(), 3, "{kept:?}");
    assert!(
        kept.iter().all(|n| n.ends_with(".tar")),
        "no partial files: {kept:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_requests_to_state_changing_endpoints_are_refused() {
    let s = Server::start(|_| {}).await;
    let own = format!("http://{}", s.running.http_addr);
    let state = json!({"state_value": "ALARM", "state_reason": "from a page"});
    type Req = fn(&Server, &Value) -> reqwest::RequestBuilder;
    let endpoints: [(&str, Req); 3] = [
        ("reload", |s, _| s.http.post(s.url("/api/v1/reload"))),
        ("backup", |s, _| s.http.post(s.url("/api/v1/admin/backup"))),
        ("state", |s, b| {
            s.http.put(s.url("/api/v1/alarms/hot/state")).json(b)
        }),
    ];
    let hostile: [(&str, &str); 7] = [
        ("origin", "http://evil.example"),
        ("origin", "null"),
        ("referer", "http://evil.example/attack.html"),
        ("sec-fetch-site", "cross-site"),
        ("content-type", "application/x-www-form-urlencoded"),
        ("content-type", "multipart/form-data; boundary=x"),
        ("content-type", "text/plain"),
    ];
    for (what, req) in endpoints {
        for (header, value) in hostile {
            let r = req(&s, &state).header(header, value).send().await.unwrap();
            assert_eq!(r.status(), 403, "{what} with {header}: {value}");
            let body: Value = r.json().await.unwrap();
            assert_error(&body, "forbidden", None);
        }
    }
    // Nothing was done: no backup, no state change.
    assert!(backups_in(&s.data_dir).is_empty());
    assert_ne!(s.get("/api/v1/alarms/hot").await["reason"], "from a page");

    // The server's own pages (same Origin) and clients without one (curl, the CLI) pass.
    for (what, req) in endpoints {
        let r = req(&s, &state).header("origin", &own).send().await.unwrap();
        assert_eq!(r.status(), 200, "{what} from the server's own origin");
        let r = req(&s, &state)
            .header("referer", format!("{own}/alarms/hot"))
            .header("sec-fetch-site", "same-origin")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{what} from the server's own page");
        let r = req(&s, &state).send().await.unwrap();
        assert_eq!(r.status(), 200, "{what} without an Origin");
    }
    assert_eq!(s.get("/api/v1/alarms/hot").await["reason"], "from a page");

    // Reading is not affected.
    for path in ["/api/v1/alarms", "/api/v1/dashboard/overview", "/"] {
        let r = s
            .http
            .get(s.url(path))
            .header("origin", "http://evil.example")
            .header("sec-fetch-site", "cross-site")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_answer_is_the_json_error_format() {
    let s = Server::start(|_| {}).await;
    let check = |r: reqwest::Response, status: u16, code: &'static str| async move {
        assert_eq!(r.status(), status, "{code}");
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(ct.as_deref(), Some("application/json"), "{code}");
        let headers = r.headers().clone();
        let body: Value = r.json().await.unwrap();
        assert_error(&body, code, None);
        (headers, body)
    };
    // 404: an unknown API path (the dashboard's pages still answer).
    let r = s.http.get(s.url("/api/v1/nope")).send().await.unwrap();
    check(r, 404, "not_found").await;
    let (status, page) = s.get_raw("/alarms/hot").await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("<html"));
    // 405, keeping `Allow`.
    let r = s.http.delete(s.url("/api/v1/alarms")).send().await.unwrap();
    let (headers, _) = check(r, 405, "method_not_allowed").await;
    assert!(headers.get("allow").is_some());
    let r = s.http.get(s.url("/api/v1/reload")).send().await.unwrap();
    check(r, 405, "method_not_allowed").await;
    // 413: a body over the 2 MiB limit.
    let huge = format!(
        r#"{{"state_value":"OK","state_reason":"{}"}}"#,
        "z".repeat(3 << 20)
    );
    // The server answers as soon as the limit is passed and closes the connection without
    // reading the rest; the client may still be writing then, and its write can fail with a
    // broken pipe (or a reset that discards the answer) before it reads the 413. Such a
    // transport failure is retried; an answer other than the 413 fails at once.
    let mut attempts = 0;
    let r = loop {
        attempts += 1;
        let sent = s
            .http
            .put(s.url("/api/v1/alarms/hot/state"))
            .header("content-type", "application/json")
            .body(huge.clone())
            .send()
            .await;
        match sent {
            Ok(r) => break r,
            Err(e) if attempts < 10 && (e.is_request() || e.is_body()) => continue,
            Err(e) => panic!("no answer to an oversized body after {attempts} attempts: {e}"),
        }
    };
    let (_, body) = check(r, 413, "payload_too_large").await;
    assert_eq!(body["error"]["field"], "body");
    // 415: not JSON.
    let r = s
        .http
        .put(s.url("/api/v1/alarms/hot/state"))
        .body("{}")
        .send()
        .await
        .unwrap();
    check(r, 415, "unsupported_media_type").await;
    // 400: a body that is not the request's shape, and a query string that does not parse.
    let r = s
        .http
        .put(s.url("/api/v1/alarms/hot/state"))
        .header("content-type", "application/json")
        .body(r#"{"state_value": 1}"#)
        .send()
        .await
        .unwrap();
    check(r, 400, "invalid_argument").await;
    let r = s
        .http
        .get(s.url("/api/v1/dashboard/overview?notifications=many"))
        .send()
        .await
        .unwrap();
    let (_, body) = check(r, 400, "invalid_argument").await;
    assert_eq!(body["error"]["field"], "query");
    // 414: a request target over 8 KiB.
    let r = s
        .http
        .get(s.url(&format!("/api/v1/alarms?pad={}", "a".repeat(9 * 1024))))
        .send()
        .await
        .unwrap();
    let (_, body) = check(r, 414, "uri_too_long").await;
    assert!(body.to_string().len() < 1024, "the target is not echoed");
    // 431: headers over 16 KiB, one large or many small.
    let r = s
        .http
        .get(s.url("/api/v1/alarms"))
        .header("x-pad", "b".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    check(r, 431, "request_header_fields_too_large").await;
    let mut many = s.http.get(s.url("/api/v1/alarms"));
    for i in 0..90 {
        many = many.header(format!("x-pad-{i}"), "c".repeat(200));
    }
    let r = many.send().await.unwrap();
    check(r, 431, "request_header_fields_too_large").await;
    // Below the limits everything still works.
    let r = s
        .http
        .get(s.url(&format!("/api/v1/alarms?pad={}", "a".repeat(7 * 1024))))
        .header("x-pad", "b".repeat(8 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The probes keep their plain text.
    let r = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "ok\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alarm_list_is_paginated_by_name() {
    let names: Vec<String> = (0..7).map(|i| format!("alarm-{i:02}")).collect();
    let config: String = std::iter::once("alarms:\n".to_owned())
        .chain(names.iter().map(|n| {
            format!(
                "  - name: {n}\n    namespace: Test/List\n    metric_name: M\n    statistic: Sum\n    period_seconds: 60\n    evaluation_periods: 1\n    threshold: 1\n    comparison_operator: GreaterThanThreshold\n"
            )
        }))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("list.yaml");
    std::fs::write(&file, config).unwrap();
    let s = Server::start(|st| st.config = vec![file]).await;
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut path = "/api/v1/alarms?max_records=3".to_owned();
        if let Some(t) = &token {
            path.push_str(&format!("&next_token={t}"));
        }
        let doc = s.get(&path).await;
        let page = doc["alarms"].as_array().unwrap();
        assert!(page.len() <= 3);
        seen.extend(page.iter().map(|a| a["name"].as_str().unwrap().to_owned()));
        match doc["next_token"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, names, "every alarm once, by name");
    let all = s.get("/api/v1/alarms").await;
    assert_eq!(all["alarms"].as_array().unwrap().len(), 7, "100 by default");
    for query in ["max_records=0", "max_records=101", "next_token=nope"] {
        let (status, _) = s.get_raw(&format!("/api/v1/alarms?{query}")).await;
        assert_eq!(status, 400, "{query}");
    }
}
