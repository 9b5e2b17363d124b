//! Webhooks: signature, retries with backoff, restart of the outbox, permanent failures,
//! mute rules, back-pressure; secrets from files, and none of them stored or printed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thermostat_alarms::message::MessageSettings;
use thermostat_alarms::notifications::{
    MuteRule, NotificationSettings, RetrySettings, SecretSource, WebhookFormat, WebhookSettings,
};
use thermostat_alarms::{Action, HistoryItem};
use thermostat_metrics::{SystemClock, Timestamp};
use thermostat_notify::{Dispatcher, Notifiers, Status, WebhookNotifier};
use tokio::sync::{mpsc, oneshot};

const SECRET: &str = "s3cret";

#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) body: Bytes,
    signature: Option<String>,
    pub(crate) key: Option<String>,
    pub(crate) answered: u16,
}

#[derive(Clone)]
pub(crate) struct Receiver {
    /// HTTP statuses to answer, in order; 200 once they run out.
    script: Arc<Mutex<Vec<u16>>>,
    pub(crate) got: Arc<Mutex<Vec<Received>>>,
    tx: mpsc::Sender<u16>,
}

async fn hook(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let status = {
        let mut s = r.script.lock().unwrap();
        if s.is_empty() { 200 } else { s.remove(0) }
    };
    let h = |n: &str| headers.get(n).map(|v| v.to_str().unwrap().to_owned());
    r.got.lock().unwrap().push(Received {
        body,
        signature: h("x-thermostat-signature"),
        key: h("x-thermostat-idempotency-key"),
        answered: status,
    });
    let _ = r.tx.send(status).await;
    StatusCode::from_u16(status).unwrap()
}

/// A receiver on 127.0.0.1:0 answering `script` then 200; returns its URL.
pub(crate) async fn receiver(script: Vec<u16>) -> (String, Receiver, mpsc::Receiver<u16>) {
    let (tx, rx) = mpsc::channel(100);
    let r = Receiver {
        script: Arc::new(Mutex::new(script)),
        got: Arc::new(Mutex::new(Vec::new())),
        tx,
    };
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), r, rx)
}

pub(crate) fn settings(url: &str) -> NotificationSettings {
    NotificationSettings {
        webhooks: vec![WebhookSettings {
            name: "hook".into(),
            url: url.into(),
            format: WebhookFormat::Cloudwatch,
            secret: Some(SecretSource::Env("HOOK_SECRET".into())),
            routing_key: None,
            ca_file: None,
            timeout: Duration::from_secs(5),
        }],
        // Short backoffs keep the test fast; nothing asserts durations.
        retry: RetrySettings {
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
            give_up_after: None,
        },
        ..NotificationSettings::default()
    }
}

pub(crate) fn env(k: &str) -> Option<String> {
    (k == "HOOK_SECRET").then(|| SECRET.to_owned())
}

pub(crate) fn named() -> Action {
    // `webhook:<name>`; action::parse does not accept this form yet, so it is built here.
    Action::Webhook {
        url: "webhook:hook".into(),
    }
}

fn dispatcher(
    dir: &std::path::Path,
    s: &NotificationSettings,
) -> (Arc<Dispatcher>, mpsc::UnboundedReceiver<HistoryItem>) {
    let (htx, hrx) = mpsc::unbounded_channel();
    let notifiers = Notifiers {
        webhook: Some(WebhookNotifier::new(s, env).unwrap()),
        ..Notifiers::default()
    };
    let d = Dispatcher::open(
        dir,
        s.clone(),
        MessageSettings::default(),
        notifiers,
        Arc::new(SystemClock),
        &env,
    )
    .unwrap()
    .with_history_sink(Arc::new(move |h| {
        let _ = htx.send(h);
    }));
    (Arc::new(d), hrx)
}

pub(crate) fn spawn_run(d: &Arc<Dispatcher>) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let d = d.clone();
    let task = tokio::spawn(async move {
        d.run(async {
            let _ = stop_rx.await;
        })
        .await;
    });
    (stop_tx, task)
}

fn verify(r: &Received) {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&r.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(
        r.signature.as_deref(),
        Some(expected.as_str()),
        "bad signature"
    );
}

/// Waits (bounded) until `cond` holds on the outbox's newest record.
async fn until_record(d: &Dispatcher, cond: impl Fn(&thermostat_notify::NotificationView) -> bool) {
    for _ in 0..1000 {
        if d.recent(1).unwrap().first().is_some_and(&cond) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached: {:#?}", d.recent(1).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_survive_a_restart_and_resend_byte_identical() {
    let (url, recv, mut hits) = receiver(vec![500, 503]).await;
    let dir = tempfile::tempdir().unwrap();
    let s = settings(&url);
    let n = crate::notification(&s, &MessageSettings::default(), named());

    // First life: the notification is written, sent at once, and fails.
    {
        let (d, _history) = dispatcher(dir.path(), &s);
        let (stop, task) = spawn_run(&d);
        d.enqueue(n.clone()).unwrap();
        assert_eq!(hits.recv().await, Some(500));
        until_record(&d, |v| v.attempts.len() == 1).await;
        stop.send(()).unwrap();
        task.await.unwrap();
        let v = &d.recent(10).unwrap()[0];
        assert_eq!(v.status, Status::Pending);
        assert!(v.attempts[0].error.as_deref().unwrap().contains("HTTP 500"));
    }

    // Second life on the same directory: the pending notification is picked up, fails once
    // more, then is delivered, and never sent again.
    let (d, mut history) = dispatcher(dir.path(), &s);
    let (stop, task) = spawn_run(&d);
    assert_eq!(hits.recv().await, Some(503));
    assert_eq!(hits.recv().await, Some(200));
    let item = history.recv().await.unwrap();
    assert_eq!(item.summary, "Successfully executed action webhook:hook");
    assert_eq!(item.alarm_name, "web-high-cpu");
    stop.send(()).unwrap();
    task.await.unwrap();
    assert_eq!(d.drain(Duration::from_secs(1)).await, 0);

    let got = recv.got.lock().unwrap().clone();
    assert_eq!(
        got.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [500, 503, 200]
    );
    let thermostat_alarms::notifications::Delivery::Webhook { body, .. } = &n.delivery else {
        panic!()
    };
    for r in &got {
        assert_eq!(r.body.as_ref(), body.as_bytes(), "re-sent bytes differ");
        verify(r);
        assert_eq!(got[0].key, r.key);
    }
    let v = &d.recent(10).unwrap()[0];
    assert_eq!(v.status, Status::Delivered);
    assert_eq!(v.attempts.len(), 3);
    assert!(d.outbox().pending().unwrap().is_empty());
    // The body is CloudWatch's message.
    let msg: serde_json::Value = serde_json::from_slice(&got[2].body).unwrap();
    assert_eq!(msg["AlarmName"], "web-high-cpu");
    assert_eq!(msg["NewStateValue"], "ALARM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_fail_at_once_and_are_reported() {
    let (url, recv, mut hits) = receiver(vec![404]).await;
    let dir = tempfile::tempdir().unwrap();
    let s = settings(&url);
    let (d, mut history) = dispatcher(dir.path(), &s);
    let (stop, task) = spawn_run(&d);
    d.enqueue(crate::notification(
        &s,
        &MessageSettings::default(),
        named(),
    ))
    .unwrap();
    assert_eq!(hits.recv().await, Some(404));
    let item = history.recv().await.unwrap();
    assert_eq!(item.summary, "Failed to execute action webhook:hook");
    stop.send(()).unwrap();
    task.await.unwrap();
    let v = &d.recent(1).unwrap()[0];
    assert_eq!(v.status, Status::Failed);
    assert_eq!(v.attempts.len(), 1);
    assert_eq!(recv.got.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn muted_notifications_are_recorded_not_sent() {
    let (url, recv, _hits) = receiver(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&url);
    s.mute_rules.push(MuteRule {
        name: "always".into(),
        alarms: vec!["web-*".into()],
        schedule: None,
        duration: Duration::ZERO,
        time_zone: "UTC".into(),
        starts_at: Some(Timestamp::from_millis(0)),
        ends_at: None,
    });
    let n = crate::notification(&s, &MessageSettings::default(), named());
    assert_eq!(n.muted_by.as_deref(), Some("always"));
    let (d, _history) = dispatcher(dir.path(), &s);
    let (stop, task) = spawn_run(&d);
    d.enqueue(n).unwrap();
    until_record(&d, |v| v.status == Status::Muted).await;
    stop.send(()).unwrap();
    task.await.unwrap();
    assert_eq!(d.drain(Duration::from_millis(100)).await, 0);
    assert!(recv.got.lock().unwrap().is_empty());
    assert_eq!(d.recent(1).unwrap()[0].muted_by.as_deref(), Some("always"));
}

#[tokio::test]
async fn a_full_queue_refuses_instead_of_dropping() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings("http://127.0.0.1:9/hook");
    s.queue_capacity = 2;
    let (d, _history) = dispatcher(dir.path(), &s);
    let n = crate::notification(&s, &MessageSettings::default(), named());
    d.enqueue(n.clone()).unwrap();
    d.enqueue(n.clone()).unwrap();
    assert!(matches!(
        d.enqueue(n.clone()),
        Err(thermostat_notify::Error::QueueFull { capacity: 2 })
    ));
    // Draining writes what was queued to the outbox; later enqueues are refused.
    let pending = d.drain(Duration::ZERO).await;
    assert_eq!(pending, 2);
    assert!(matches!(
        d.enqueue(n),
        Err(thermostat_notify::Error::ShuttingDown)
    ));
}

/// Settings of a webhook `name` at `url` with `format` and secrets from files.
fn hook_with_files(
    name: &str,
    url: &str,
    format: WebhookFormat,
    secret: Option<&std::path::Path>,
    routing_key: Option<&std::path::Path>,
) -> WebhookSettings {
    let file = |p: &std::path::Path| SecretSource::File(p.display().to_string());
    WebhookSettings {
        name: name.into(),
        url: url.into(),
        format,
        secret: secret.map(file),
        routing_key: routing_key.map(file),
        ca_file: None,
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_from_files_sign_and_route_and_are_never_stored_or_printed() {
    let (url, recv, mut hits) = receiver(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("hook-secret");
    let key_file = secrets.path().join("pd-key");
    // One trailing line ending is not part of the secret.
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    std::fs::write(&key_file, "PDKEY0123456789\r\n").unwrap();
    let mut s = settings(&url);
    s.webhooks = vec![
        hook_with_files(
            "hook",
            &url,
            WebhookFormat::Cloudwatch,
            Some(&secret_file),
            None,
        ),
        hook_with_files(
            "pager",
            &url,
            WebhookFormat::Pagerduty,
            Some(&secret_file),
            Some(&key_file),
        ),
    ];
    let no_env = |_: &str| None;
    let notifiers = Notifiers::from_settings(&s, None, &no_env).unwrap();
    let printed = format!("{notifiers:?}");
    assert!(printed.contains("[redacted]"), "{printed}");
    assert!(
        !printed.contains(SECRET) && !printed.contains("PDKEY"),
        "{printed}"
    );
    let d = Arc::new(
        Dispatcher::open(
            dir.path(),
            s.clone(),
            MessageSettings::default(),
            notifiers,
            Arc::new(SystemClock),
            &no_env,
        )
        .unwrap(),
    );
    let (stop, task) = spawn_run(&d);
    let pager = Action::Webhook {
        url: "webhook:pager".into(),
    };
    d.enqueue(crate::notification(
        &s,
        &MessageSettings::default(),
        named(),
    ))
    .unwrap();
    d.enqueue(crate::notification(&s, &MessageSettings::default(), pager))
        .unwrap();
    assert_eq!(hits.recv().await, Some(200));
    assert_eq!(hits.recv().await, Some(200));
    until_record(&d, |v| v.status == Status::Delivered).await;
    stop.send(()).unwrap();
    task.await.unwrap();
    assert_eq!(d.drain(Duration::from_secs(1)).await, 0);

    let got = recv.got.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    for r in &got {
        // The receiver checks the signature with the key the file holds.
        verify(r);
    }
    let pd: Vec<serde_json::Value> = got
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .filter(|v: &serde_json::Value| v.get("routing_key").is_some())
        .collect();
    assert_eq!(pd.len(), 1, "{got:?}");
    assert_eq!(pd[0]["routing_key"], "PDKEY0123456789");
    assert_eq!(pd[0]["event_action"], "trigger");

    // Neither the outbox (which backups copy) nor the API's view holds a secret.
    let stored = serde_json::to_string(&d.outbox().recent(10).unwrap()).unwrap();
    assert!(stored.contains("\"routing_key\\\":\\\"\\\""), "{stored}");
    let api = serde_json::to_string(&d.recent(10).unwrap()).unwrap();
    for text in [&stored, &api, &format!("{d:?}")] {
        assert!(!text.contains("PDKEY"), "{text}");
        assert!(!text.contains(SECRET), "{text}");
    }
}

#[test]
fn unusable_secret_files_are_errors_naming_the_setting_and_the_file() {
    let secrets = tempfile::tempdir().unwrap();
    let missing = secrets.path().join("missing");
    let empty = secrets.path().join("empty");
    let big = secrets.path().join("big");
    std::fs::write(&empty, "\n").unwrap();
    std::fs::write(&big, vec![b'k'; 64 * 1024 + 1]).unwrap();
    let error = |file: &std::path::Path| {
        let mut s = settings("http://127.0.0.1:9/hook");
        s.webhooks = vec![hook_with_files(
            "hook",
            "http://127.0.0.1:9/hook",
            WebhookFormat::Cloudwatch,
            Some(file),
            None,
        )];
        WebhookNotifier::new(&s, |_| None).unwrap_err().to_string()
    };
    let e = error(&missing);
    assert!(
        e.starts_with(&format!(
            "notifications.webhooks.hook.secret_file: the file {} cannot be read (",
            missing.display()
        )),
        "{e}"
    );
    assert_eq!(
        error(&empty),
        format!(
            "notifications.webhooks.hook.secret_file: the file {} is empty",
            empty.display()
        )
    );
    let e = error(&big);
    assert_eq!(
        e,
        format!(
            "notifications.webhooks.hook.secret_file: the file {} is larger than 65536 bytes (the limit)",
            big.display()
        )
    );
    assert!(!e.contains("kkkk"), "never the contents: {e}");
    // A variable that is not set, as before.
    let e = WebhookNotifier::new(&settings("http://127.0.0.1:9/hook"), |_| None)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "notifications.webhooks.hook.secret_env: the environment variable HOOK_SECRET is not set"
    );
}
