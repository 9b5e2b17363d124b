//! Accept loops that back off when the process (or the system) is out of descriptors or
//! buffers, instead of spinning on a listener that stays readable.

use std::convert::Infallible;
use std::io;
use std::time::Duration;

use futures_util::Stream;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::conn::ConnIo;

/// How long an accept loop sleeps after an error that is not the connection's own.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one warning about failing accepts per this interval.
const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Accepts connections on a listener.
#[derive(Debug)]
pub struct Acceptor {
    listener: TcpListener,
    server: &'static str,
    idle_timeout: Option<Duration>,
    last_warned: Option<Instant>,
    failures_since_warning: u64,
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
            listener,
            server,
            idle_timeout,
            last_warned: None,
            failures_since_warning: 0,
        }
    }

    /// The next connection, with `TCP_NODELAY` set (small responses must not wait for Nagle's
    /// algorithm: 40 ms with delayed ACKs).
    ///
    /// Errors that belong to one connection (aborted or reset before it was accepted) are
    /// skipped. Any other error (EMFILE, ENFILE, ENOBUFS, ENOMEM...) leaves the pending
    /// connection in the backlog, so the listener stays readable and an immediate retry would
    /// spin: the loop sleeps [`ACCEPT_BACKOFF`] first, and warns at most every 10 s.
    pub async fn accept(&mut self) -> ConnIo {
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => return self.wrap(stream),
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

    fn wrap(&mut self, stream: TcpStream) -> ConnIo {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(server = self.server, error = %e, "Cannot set TCP_NODELAY.");
        }
        ConnIo::new(stream, self.idle_timeout)
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

    /// The accepted connections as a stream (for tonic's `serve_with_incoming`).
    pub fn into_stream(self) -> impl Stream<Item = Result<ConnIo, Infallible>> + Send {
        futures_util::stream::unfold(self, |mut acceptor| async move {
            let io = acceptor.accept().await;
            Some((Ok(io), acceptor))
        })
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
