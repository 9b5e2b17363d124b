//! Accept loops that back off when the process (or the system) is out of descriptors or
//! buffers, instead of spinning on a listener that stays readable; with TLS, bounded
//! handshakes in their own tasks, so that only completed handshakes come out.

use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::conn::ConnIo;
use crate::tls::{Alpn, Tls, client_subject};

/// How long an accept loop sleeps after an error that is not the connection's own.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one warning about failing accepts per this interval.
const WARN_INTERVAL: Duration = Duration::from_secs(10);
/// The time a client has, from the accept, to complete its TLS handshake; then the connection
/// is closed.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS handshakes in progress at once per listener (including completed ones the server has
/// not taken yet); beyond it, new connections wait in the listen backlog.
pub const MAX_TLS_HANDSHAKES: usize = 1024;
/// Completed handshakes queued for the server.
const HANDSHAKES_DONE_QUEUE: usize = 64;

/// Accepts connections on a listener.
#[derive(Debug)]
pub struct Acceptor {
    listener: Listener,
    idle_timeout: Option<Duration>,
    tls: Option<Handshakes>,
}

/// The listener and its warning state.
#[derive(Debug)]
struct Listener {
    listener: TcpListener,
    server: &'static str,
    last_warned: Option<Instant>,
    failures_since_warning: u64,
}

/// TLS handshakes in progress: each in a task of `tasks` (aborted when the acceptor is
/// dropped) holding a permit of `permits` until its connection is queued in `done`.
#[derive(Debug)]
struct Handshakes {
    tls: Arc<Tls>,
    alpn: Alpn,
    timeout: Duration,
    permits: Arc<Semaphore>,
    tasks: JoinSet<()>,
    done_tx: mpsc::Sender<ConnIo>,
    done: mpsc::Receiver<ConnIo>,
}

impl Acceptor {
    /// Accepts on `listener`; `server` names it in logs ("gRPC", "HTTP"). With an
    /// `idle_timeout`, accepted connections are watched for HTTP/2 idleness ([`ConnIo`]).
    pub fn new(
        listener: TcpListener,
        server: &'static str,
        idle_timeout: Option<Duration>,
    ) -> Self {
        Acceptor {
            listener: Listener {
                listener,
                server,
                last_warned: None,
                failures_since_warning: 0,
            },
            idle_timeout,
            tls: None,
        }
    }

    /// Serves TLS only, offering `alpn`, when `tls` is `Some` (with `None`, plain TCP).
    ///
    /// Each handshake runs in its own task, at most [`MAX_TLS_HANDSHAKES`] at once, and must
    /// complete within [`TLS_HANDSHAKE_TIMEOUT`]; a failed one (a plaintext client, a client
    /// certificate that does not verify, the timeout) closes its connection and is logged at
    /// debug. Handshakes in progress are abandoned when the acceptor is dropped.
    #[must_use]
    pub fn with_tls(self, tls: Option<Arc<Tls>>, alpn: Alpn) -> Self {
        self.with_handshakes(tls, alpn, MAX_TLS_HANDSHAKES, TLS_HANDSHAKE_TIMEOUT)
    }

    /// [`Acceptor::with_tls`] with other limits.
    pub(crate) fn with_handshakes(
        mut self,
        tls: Option<Arc<Tls>>,
        alpn: Alpn,
        max: usize,
        timeout: Duration,
    ) -> Self {
        self.tls = tls.map(|tls| {
            let (done_tx, done) = mpsc::channel(HANDSHAKES_DONE_QUEUE);
            Handshakes {
                tls,
                alpn,
                timeout,
                permits: Arc::new(Semaphore::new(max)),
                tasks: JoinSet::new(),
                done_tx,
                done,
            }
        });
        self
    }

    /// The next connection, with `TCP_NODELAY` set (small responses must not wait for Nagle's
    /// algorithm: 40 ms with delayed ACKs); with TLS, the next one whose handshake completed.
    ///
    /// Errors that belong to one connection (aborted or reset before it was accepted) are
    /// skipped. Any other error (EMFILE, ENFILE, ENOBUFS, ENOMEM...) leaves the pending
    /// connection in the backlog, so the listener stays readable and an immediate retry would
    /// spin: the loop sleeps [`ACCEPT_BACKOFF`] first, and warns at most every 10 s.
    ///
    /// Cancel-safe: no connection is lost when the future is dropped before it completes.
    pub async fn accept(&mut self) -> ConnIo {
        let idle_timeout = self.idle_timeout;
        let listener = &mut self.listener;
        let Some(Handshakes {
            tls,
            alpn,
            timeout,
            permits,
            tasks,
            done_tx,
            done,
        }) = &mut self.tls
        else {
            return ConnIo::new(listener.accept().await, idle_timeout);
        };
        loop {
            tokio::select! {
                biased;
                Some(io) = done.recv() => return io,
                // Reaps finished handshake tasks (their connections went to `done`).
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                (permit, stream) = async {
                    let permit = Arc::clone(permits).acquire_owned().await;
                    (permit, listener.accept().await)
                } => {
                    // The semaphore is never closed.
                    let Ok(permit) = permit else { continue };
                    tasks.spawn(handshake(
                        stream,
                        tls.acceptor(*alpn),
                        *timeout,
                        idle_timeout,
                        listener.server,
                        (permit, done_tx.clone()),
                    ));
                }
            }
        }
    }

    /// The accepted connections as a stream (for tonic's `serve_with_incoming`).
    pub fn into_stream(self) -> impl Stream<Item = Result<ConnIo, Infallible>> + Send {
        futures_util::stream::unfold(self, |mut acceptor| async move {
            let io = acceptor.accept().await;
            Some((Ok(io), acceptor))
        })
    }
}

/// One TLS handshake, bounded by `timeout`; the connection, if it completes, goes to `done`
/// (the permit is held until then).
async fn handshake(
    stream: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    timeout: Duration,
    idle_timeout: Option<Duration>,
    server: &'static str,
    (permit, done): (OwnedSemaphorePermit, mpsc::Sender<ConnIo>),
) {
    let peer = stream.peer_addr().ok();
    let io = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => {
            let subject = client_subject(stream.get_ref().1);
            ConnIo::tls(stream, subject, idle_timeout)
        }
        Ok(Err(e)) => {
            tracing::debug!(server, ?peer, error = %e, "A TLS handshake failed.");
            return;
        }
        Err(_) => {
            tracing::debug!(
                server,
                ?peer,
                timeout_s = timeout.as_secs(),
                "A TLS handshake did not complete in time."
            );
            return;
        }
    };
    // The receiver is gone only with the acceptor, which aborts this task.
    let _ = done.send(io).await;
    drop(permit);
}

impl Listener {
    /// The next TCP connection (see [`Acceptor::accept`]).
    async fn accept(&mut self) -> TcpStream {
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(server = self.server, error = %e, "Cannot set TCP_NODELAY.");
                    }
                    return stream;
                }
                Err(e) if is_connection_error(&e) => {
                    tracing::debug!(server = self.server, error = %e, "A connection failed before it was accepted.");
                }
                Err(e) => {
                    self.warn(&e);
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }

    fn warn(&mut self, e: &io::Error) {
        self.failures_since_warning += 1;
        let now = Instant::now();
        if self
            .last_warned
            .is_none_or(|t| now.duration_since(t) >= WARN_INTERVAL)
        {
            let hint = if is_descriptor_exhaustion(e) {
                "the process is out of file descriptors (raise `ulimit -n`, or lower --idle-connection-timeout-seconds)"
            } else {
                "the system refused a new connection"
            };
            tracing::warn!(
                server = self.server,
                error = %e,
                failures = self.failures_since_warning,
                backoff_ms = ACCEPT_BACKOFF.as_millis() as u64,
                "Cannot accept connections: {hint}; retrying after a pause."
            );
            self.last_warned = Some(now);
            self.failures_since_warning = 0;
        }
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

fn is_descriptor_exhaustion(e: &io::Error) -> bool {
    // EMFILE and ENFILE on Linux and the BSDs.
    matches!(e.raw_os_error(), Some(23 | 24))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_exhaustion_is_backed_off_not_skipped() {
        for errno in [23, 24, 105, 12] {
            let e = io::Error::from_raw_os_error(errno);
            assert!(!is_connection_error(&e), "errno {errno} must back off");
        }
        assert!(is_descriptor_exhaustion(&io::Error::from_raw_os_error(24)));
        assert!(is_connection_error(&io::Error::from(
            io::ErrorKind::ConnectionAborted
        )));
    }
}
