//! A shared outbox ([`SharedOutbox`]): two dispatchers on two replicas of one outbox, as two
//! cluster nodes. The one that does not deliver sends nothing; when the one that did stops
//! after a failed attempt, the other delivers the notification it never wrote, once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use thermostat_alarms::message::MessageSettings;
use thermostat_alarms::notifications::{Notification, NotificationSettings};
use thermostat_metrics::{SystemClock, Timestamp};
use thermostat_notify::outbox::{Attempt, Next, Outbox, OutboxRecord};
use thermostat_notify::{Dispatcher, Notifiers, Status, WebhookNotifier};

use crate::webhook::{env, named, receiver, settings, spawn_run};

/// Both replicas take every write, in one order (the cluster's journal does that).
#[derive(Debug)]
struct Replicas(Mutex<(Outbox, Outbox)>);

impl thermostat_notify::SharedOutbox for Replicas {
    fn insert(
        &self,
        batch: Vec<Notification>,
        now: Timestamp,
    ) -> thermostat_notify::Result<Vec<OutboxRecord>> {
        let both = self.0.lock().unwrap();
        let written = both.0.insert(batch.clone(), now)?;
        assert_eq!(both.1.insert(batch, now)?, written, "replicas agree");
        Ok(written)
    }

    fn record_attempt(
        &self,
        id: u64,
        attempt: Attempt,
        next: Next,
    ) -> thermostat_notify::Result<OutboxRecord> {
        let both = self.0.lock().unwrap();
        let written = both.0.record_attempt(id, attempt.clone(), next)?;
        assert_eq!(both.1.record_attempt(id, attempt, next)?, written);
        Ok(written)
    }
}

fn node(
    outbox: Outbox,
    s: &NotificationSettings,
    shared: &Arc<Replicas>,
    leads: &Arc<AtomicBool>,
) -> Arc<Dispatcher> {
    let notifiers = Notifiers {
        webhook: Some(WebhookNotifier::new(s, env).unwrap()),
        ..Notifiers::default()
    };
    let leads = Arc::clone(leads);
    Arc::new(
        Dispatcher::on(
            outbox,
            s.clone(),
            MessageSettings::default(),
            notifiers,
            Arc::new(SystemClock),
        )
        .with_shared(
            Arc::clone(shared) as _,
            Arc::new(move || leads.load(Ordering::Acquire)),
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_that_delivers_next_sends_what_another_wrote_once() {
    let (url, recv, mut hits) = receiver(vec![503]).await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (outbox_a, outbox_b) = (
        Outbox::open(dir_a.path()).unwrap(),
        Outbox::open(dir_b.path()).unwrap(),
    );
    let shared = Arc::new(Replicas(Mutex::new((outbox_a.clone(), outbox_b.clone()))));
    let s = settings(&url);
    let (a_leads, b_leads) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicBool::new(false)),
    );
    let a = node(outbox_a, &s, &shared, &a_leads);
    let b = node(outbox_b, &s, &shared, &b_leads);
    let (stop_a, task_a) = spawn_run(&a);
    let (stop_b, task_b) = spawn_run(&b);

    // a writes and sends; the receiver fails it; b, which does not deliver, sends nothing but
    // holds the notification and its attempt.
    a.enqueue(crate::notification(
        &s,
        &MessageSettings::default(),
        named(),
    ))
    .unwrap();
    assert_eq!(hits.recv().await, Some(503));
    for _ in 0..500 {
        if b.recent(1)
            .unwrap()
            .first()
            .is_some_and(|v| v.attempts.len() == 1)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let held = &b.recent(1).unwrap()[0];
    assert_eq!(held.status, Status::Pending);
    assert_eq!(held.attempts.len(), 1);

    // a stops (its node died); b delivers from now on, and sends it once.
    stop_a.send(()).unwrap();
    task_a.await.unwrap();
    a_leads.store(false, Ordering::Release);
    b_leads.store(true, Ordering::Release);
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(30), hits.recv())
            .await
            .unwrap(),
        Some(200)
    );
    for _ in 0..500 {
        if b.recent(1).unwrap()[0].status == Status::Delivered {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop_b.send(()).unwrap();
    task_b.await.unwrap();
    for d in [&a, &b] {
        let v = &d.recent(10).unwrap()[0];
        assert_eq!(v.status, Status::Delivered, "{v:?}");
        assert_eq!(v.attempts.len(), 2);
        assert!(d.outbox().pending().unwrap().is_empty());
    }
    let got = recv.got.lock().unwrap().clone();
    assert_eq!(
        got.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [503, 200]
    );
    assert_eq!(got[0].key, got[1].key, "the same notification, retried");
    assert_eq!(got[0].body, got[1].body);
}
