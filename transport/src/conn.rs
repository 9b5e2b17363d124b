//! Accepted connections (plain TCP or TLS): an IO wrapper that closes a connection idle for too
//! long, and the per-connection count of requests in progress that keeps a busy connection open.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_rustls::server::TlsStream;

/// The state of one connection that its requests share.
#[derive(Debug)]
pub struct ConnState {
    base: Instant,
    active: AtomicUsize,
    /// When the last request ended, in ms after `base`.
    idle_since_ms: AtomicU64,
}

impl ConnState {
    fn new() -> Arc<Self> {
        Arc::new(ConnState {
            base: Instant::now(),
            active: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
        })
    }

    /// Marks a request in progress until the returned guard is dropped.
    pub fn begin_request(self: &Arc<Self>) -> ActiveRequest {
        self.active.fetch_add(1, Ordering::AcqRel);
        ActiveRequest {
            state: Arc::clone(self),
        }
    }

    /// Requests in progress.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    fn idle_since(&self) -> Instant {
        self.base + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire))
    }
}

/// A request in progress on a connection; the connection is not idle while one exists.
#[derive(Debug)]
pub struct ActiveRequest {
    state: Arc<ConnState>,
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        let ms = u64::try_from(self.state.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.state.idle_since_ms.fetch_max(ms, Ordering::AcqRel);
        self.state.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What tonic (and [`crate::serve_http`]) puts in each request's extensions for a [`ConnIo`]
/// connection.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// The peer.
    pub remote_addr: Option<SocketAddr>,
    /// The local address.
    pub local_addr: Option<SocketAddr>,
    /// The connection's shared state.
    pub state: Arc<ConnState>,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The subject Common Name of the client's certificate, verified against
    /// `tls.client_ca_file`; `None` if the client presented none (or it has no CN).
    pub client_subject: Option<String>,
}

/// Counts complete HTTP/2 frames (and the connection preface) in the bytes read, so that a
/// client trickling bytes without ever completing a frame is still idle.
#[derive(Debug)]
enum Frames {
    Preface { seen: usize },
    Header { buf: [u8; 9], seen: usize },
    Payload { remaining: usize },
}

const PREFACE_LEN: usize = 24;

impl Frames {
    /// Walks `data`; true if a frame (or the preface) was completed in it.
    fn feed(&mut self, mut data: &[u8]) -> bool {
        let mut completed = false;
        while !data.is_empty() {
            let n = match self {
                Frames::Preface { seen } => {
                    let n = (PREFACE_LEN - *seen).min(data.len());
                    *seen += n;
                    if *seen == PREFACE_LEN {
                        completed = true;
                        *self = Frames::Header {
                            buf: [0; 9],
                            seen: 0,
                        };
                    }
                    n
                }
                Frames::Header { buf, seen } => {
                    let n = (buf.len() - *seen).min(data.len());
                    buf[*seen..*seen + n].copy_from_slice(&data[..n]);
                    *seen += n;
                    if *seen == buf.len() {
                        let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
                        if len == 0 {
                            completed = true;
                            *seen = 0;
                        } else {
                            *self = Frames::Payload { remaining: len };
                        }
                    }
                    n
                }
                Frames::Payload { remaining } => {
                    let n = (*remaining).min(data.len());
                    *remaining -= n;
                    if *remaining == 0 {
                        completed = true;
                        *self = Frames::Header {
                            buf: [0; 9],
                            seen: 0,
                        };
                    }
                    n
                }
            };
            data = &data[n..];
        }
        completed
    }
}

#[derive(Debug)]
struct IdleWatch {
    timeout: Duration,
    last_frame: Instant,
    frames: Frames,
    sleep: Pin<Box<Sleep>>,
}

/// The stream under a [`ConnIo`].
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// An accepted connection. On HTTP/2, it fails its reads (so that the server closes it) once
/// the client has completed no frame for the idle timeout while no request was in progress;
/// on TLS, the frames are counted in the decrypted bytes.
#[derive(Debug)]
pub struct ConnIo {
    inner: Stream,
    info: ConnInfo,
    idle: Option<IdleWatch>,
}

impl ConnIo {
    /// Wraps an accepted stream; `idle_timeout` `None` watches nothing.
    pub fn new(inner: TcpStream, idle_timeout: Option<Duration>) -> Self {
        let info = ConnInfo {
            remote_addr: inner.peer_addr().ok(),
            local_addr: inner.local_addr().ok(),
            state: ConnState::new(),
            tls: false,
            client_subject: None,
        };
        Self::wrap(Stream::Plain(inner), info, idle_timeout)
    }

    /// Wraps a stream whose TLS handshake has completed; `client_subject` is the CN of the
    /// client's verified certificate.
    pub(crate) fn tls(
        inner: TlsStream<TcpStream>,
        client_subject: Option<String>,
        idle_timeout: Option<Duration>,
    ) -> Self {
        let tcp = inner.get_ref().0;
        let info = ConnInfo {
            remote_addr: tcp.peer_addr().ok(),
            local_addr: tcp.local_addr().ok(),
            state: ConnState::new(),
            tls: true,
            client_subject,
        };
        Self::wrap(Stream::Tls(Box::new(inner)), info, idle_timeout)
    }

    fn wrap(inner: Stream, info: ConnInfo, idle_timeout: Option<Duration>) -> Self {
        let idle = idle_timeout.map(|timeout| IdleWatch {
            timeout,
            last_frame: Instant::now(),
            frames: Frames::Preface { seen: 0 },
            sleep: Box::pin(tokio::time::sleep(timeout)),
        });
        ConnIo { inner, info, idle }
    }

    /// The protocol the client chose by ALPN in the TLS handshake.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        match &self.inner {
            Stream::Plain(_) => None,
            Stream::Tls(tls) => tls.get_ref().1.alpn_protocol(),
        }
    }

    /// The connection's state.
    pub fn info(&self) -> &ConnInfo {
        &self.info
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl IdleWatch {
    /// Ready with an error once the connection has been idle for the timeout.
    fn poll_idle(&mut self, state: &ConnState, cx: &mut Context<'_>) -> Poll<io::Error> {
        while self.sleep.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            if state.active() > 0 {
                self.sleep.as_mut().reset(now + self.timeout);
                continue;
            }
            let last = self.last_frame.max(state.idle_since());
            let deadline = last + self.timeout;
            if now >= deadline {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the client sent nothing for {} s with no request in progress (--idle-connection-timeout-seconds)",
                        self.timeout.as_secs()
                    ),
                ));
            }
            self.sleep.as_mut().reset(deadline);
        }
        Poll::Pending
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if let Some(idle) = &mut this.idle
                    && idle.frames.feed(&buf.filled()[before..])
                {
                    idle.last_frame = Instant::now();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match &mut this.idle {
                Some(idle) => match idle.poll_idle(&this.info.state, cx) {
                    Poll::Ready(e) => {
                        tracing::debug!(peer = ?this.info.remote_addr, error = %e, "Closing an idle connection.");
                        Poll::Ready(Err(e))
                    }
                    Poll::Pending => Poll::Pending,
                },
                None => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for ConnIo {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn frames_are_counted_only_when_complete() {
        let mut f = Frames::Preface { seen: 0 };
        assert!(!f.feed(b"PRI * HTTP/2.0\r\n"));
        assert!(f.feed(b"\r\nSM\r\n\r\n"));
        // A SETTINGS frame with an empty payload, then a PING (8 bytes) byte by byte.
        assert!(f.feed(&[0, 0, 0, 4, 0, 0, 0, 0, 0]));
        let ping = [[0, 0, 8, 6, 0, 0, 0, 0, 0].as_slice(), &[9; 8]].concat();
        for b in &ping[..ping.len() - 1] {
            assert!(!f.feed(std::slice::from_ref(b)));
        }
        assert!(f.feed(&ping[ping.len() - 1..]));
    }

    async fn pair(idle: Duration) -> (ConnIo, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (ConnIo::new(server, Some(idle)), client)
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_fails_its_read_after_the_timeout() {
        let (mut server, mut client) = pair(Duration::from_secs(30)).await;
        let start = Instant::now();
        // Half a preface resets nothing.
        client.write_all(b"PRI * HTTP/2.0").await.unwrap();
        let mut buf = [0u8; 64];
        let n = server.read(&mut buf).await.unwrap();
        assert_eq!(n, 14);
        let err = server.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(
            err.to_string()
                .contains("--idle-connection-timeout-seconds")
        );
        assert_eq!(start.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_progress_keeps_the_connection_open() {
        let (mut server, _client) = pair(Duration::from_secs(30)).await;
        let guard = server.info().state.begin_request();
        let mut buf = [0u8; 64];
        let waited = tokio::time::timeout(Duration::from_secs(300), server.read(&mut buf)).await;
        assert!(waited.is_err(), "still open while a request is in progress");
        let ended = Instant::now();
        drop(guard);
        let err = server.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(
            ended.elapsed() >= Duration::from_secs(29),
            "idle counts from the end of the last request"
        );
    }
}
