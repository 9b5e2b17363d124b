//! The demo's own webhook receiver: answers every notification POSTed to
//! `http://127.0.0.1:<port>/notifications` with 200, so that deliveries succeed offline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A running receiver.
#[derive(Debug)]
pub struct Receiver {
    /// The URL to POST to.
    pub url: String,
    received: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Binds 127.0.0.1 on a free port and serves until `stop` is cancelled.
    ///
    /// # Errors
    /// No port can be bound.
    pub async fn start(stop: CancellationToken) -> anyhow::Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot listen for the demo's webhook receiver")?;
        let url = format!("http://{}/notifications", listener.local_addr()?);
        let received = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&received);
        let app = axum::Router::new().route(
            "/notifications",
            axum::routing::post(move |_body: String| {
                let counter = Arc::clone(&counter);
                async move {
                    counter.fetch_add(1, Ordering::Relaxed);
                    "ok"
                }
            }),
        );
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
            {
                tracing::warn!(error = %e, "The demo's webhook receiver failed.");
            }
        });
        Ok(Receiver {
            url,
            received,
            task,
        })
    }

    /// Notifications received so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Waits until the receiver has stopped (after its `stop` token was cancelled).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}
