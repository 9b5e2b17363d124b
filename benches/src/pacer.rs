//! A timer for `loadgen --rate` that wakes tasks within tens of microseconds of their time.
//!
//! Tokio's timer has a resolution of one millisecond: a task that sleeps until an instant
//! wakes up to about a millisecond after it. An open loop measures each acknowledgement from
//! the request's due time, so that lateness of the *client's* timer would be counted as the
//! server's latency (half a millisecond on average, a millisecond at the tail, against a
//! server whose median answer takes about one). The pacer is one thread that keeps the
//! waiting tasks' due times in a heap and sleeps on a channel with the earliest as timeout
//! (a futex wait: the kernel's high-resolution timers, with its default 50 µs slack), then
//! wakes each task whose time has come through a oneshot channel. One thread, one wake-up
//! per due time: it costs the client little CPU, which matters when client and server share
//! two cores.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Instant;

use tokio::sync::oneshot;

/// A waiting task: when, and how to wake it.
struct Waiter {
    due: Instant,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        self.due == other.due
    }
}

impl Eq for Waiter {}

impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiter {
    /// Reversed, so that the heap's top is the earliest.
    fn cmp(&self, other: &Self) -> Ordering {
        other.due.cmp(&self.due)
    }
}

/// The pacer: a handle to its thread, which ends when the handle is dropped.
#[derive(Debug)]
pub struct Pacer {
    tx: mpsc::Sender<Waiter>,
}

impl Pacer {
    /// Starts the pacer's thread.
    ///
    /// # Errors
    /// The thread cannot be started.
    pub fn start() -> std::io::Result<Pacer> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("loadgen-pacer".into())
            .spawn(move || run(&rx))?;
        Ok(Pacer { tx })
    }

    /// Waits until `due` (at once when it has passed).
    pub async fn sleep_until(&self, due: Instant) {
        if due <= Instant::now() {
            return;
        }
        let (wake, woken) = oneshot::channel();
        if self.tx.send(Waiter { due, wake }).is_err() {
            // The thread is gone (it never ends while the handle lives): Tokio's timer.
            tokio::time::sleep_until(due.into()).await;
            return;
        }
        let _ = woken.await;
    }
}

/// The pacer's thread: wakes each waiter at its due time, earliest first.
fn run(rx: &mpsc::Receiver<Waiter>) {
    let mut waiting: BinaryHeap<Waiter> = BinaryHeap::new();
    loop {
        let now = Instant::now();
        while waiting.peek().is_some_and(|w| w.due <= now) {
            if let Some(w) = waiting.pop() {
                // A waiter that stopped waiting has dropped its end: nothing to wake.
                let _ = w.wake.send(());
            }
        }
        let next = match waiting.peek() {
            Some(w) => rx.recv_timeout(w.due.saturating_duration_since(now)),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok(w) => waiting.push(w),
            Err(RecvTimeoutError::Timeout) => {}
            // The handle is gone, so nobody waits on what is left.
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn wakes_each_task_no_earlier_than_its_time() {
        let pacer = std::sync::Arc::new(Pacer::start().unwrap());
        let start = Instant::now();
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
        // Registered out of order: the pacer wakes them by due time.
        for ms in [30u64, 10, 20, 0] {
            let pacer = std::sync::Arc::clone(&pacer);
            let done = done_tx.clone();
            let due = start + Duration::from_millis(ms);
            tokio::spawn(async move {
                pacer.sleep_until(due).await;
                let _ = done.send((ms, Instant::now() >= due));
            });
        }
        drop(done_tx);
        let mut woken = Vec::new();
        while let Some(w) = done_rx.recv().await {
            woken.push(w);
        }
        woken.sort_unstable();
        assert_eq!(
            woken,
            vec![(0, true), (10, true), (20, true), (30, true)],
            "every task woken, none before its time"
        );
    }

    #[tokio::test]
    async fn a_time_already_past_returns_at_once() {
        let pacer = Pacer::start().unwrap();
        let past = Instant::now();
        tokio::time::timeout(Duration::from_secs(5), pacer.sleep_until(past))
            .await
            .expect("no wait for a time already past");
    }
}
