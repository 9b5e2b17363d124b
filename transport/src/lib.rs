//! Thermostat's connection handling, shared by the gRPC and the HTTP server.
//!
//! # What this crate owns
//! - Accept loops that back off on EMFILE/ENFILE/ENOBUFS/ENOMEM instead of spinning
//!   ([`Acceptor`]), and raising the soft file-descriptor limit at start ([`raise_fd_limit`]).
//! - TLS on both ports when the `tls` settings are set ([`TlsSettings`], [`Tls`]): rustls with
//!   the ring provider, TLS 1.2 and 1.3, ALPN `h2` on the gRPC port and `http/1.1` on the HTTP
//!   port; the certificate reloaded on demand ([`Tls::reload`], on SIGHUP) for new handshakes
//!   only; client certificates verified against `tls.client_ca_file` when one is presented, its
//!   subject CN exposed per connection ([`ConnInfo::client_subject`]). Handshakes run in their
//!   own tasks, bounded in number ([`MAX_TLS_HANDSHAKES`]) and time
//!   ([`TLS_HANDSHAKE_TIMEOUT`]); a failed one closes its connection and the server goes on.
//! - Closing connections idle for `--idle-connection-timeout-seconds` ([`ConnIo`] for HTTP/2,
//!   hyper's header-read timeout for HTTP/1), never one with a request in progress.
//! - The budget of bytes held for requests not yet received whole
//!   (`--max-buffered-request-bytes`, [`Budget`]) and the request-body timeout
//!   (`--request-body-timeout-seconds`), applied to request bodies ([`LimitedBody`]) by the gRPC
//!   layer ([`GrpcLimitsLayer`]) and the HTTP serve loop ([`serve_http`]).
//!
//! # Invariants
//! - The bytes charged to the budget never exceed its limit: a charge that does not fit fails
//!   its request. Memory held for incomplete requests is therefore at most the limit plus, per
//!   connection, what HTTP/2 flow control lets a client send before it is read (the connection
//!   window, 1 MiB) or one HTTP/1 read buffer.
//! - Every accepted connection is closed after the idle timeout unless a request on it is in
//!   progress (until its response ends).
//! - With TLS, the servers are handed only connections whose handshake completed: a plaintext
//!   client never reaches HTTP. A reload that fails changes nothing.
//!
//! # Layout
//! `accept.rs` (accept loop, TLS handshakes), `conn.rs` (idle-aware connection IO, plain or
//! TLS), `tls.rs` (TLS settings, reloadable server configurations, client subject; tests in
//! `tls/tests.rs`), `budget.rs`, `body.rs` (limited request body), `grpc.rs` (tower layer),
//! `http.rs` (HTTP serve loop), `error.rs`.

#![warn(missing_docs)]

mod accept;
mod body;
mod budget;
mod conn;
pub mod error;
mod grpc;
mod http;
mod tls;

use std::sync::Arc;
use std::time::Duration;

pub use accept::{ACCEPT_BACKOFF, Acceptor, MAX_TLS_HANDSHAKES, TLS_HANDSHAKE_TIMEOUT};
pub use body::{Framing, LimitedBody, Scope};
pub use budget::Budget;
pub use conn::{ActiveRequest, ConnInfo, ConnIo, ConnState};
pub use error::Error;
pub use grpc::{GrpcLimits, GrpcLimitsLayer};
pub use http::{HttpBody, serve_http};
pub use tls::{Alpn, Tls, TlsSettings};

/// The transport limits, shared by both servers (the budget is one for the process).
#[derive(Clone, Debug)]
pub struct Options {
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS on the gRPC port.
    pub max_concurrent_streams_per_connection: u32,
    /// Time a request body (or one message of a stream) may take to arrive whole.
    pub request_body_timeout: Duration,
    /// Time a connection may send nothing while no request on it is in progress.
    pub idle_connection_timeout: Duration,
    /// Bytes held for requests not yet received whole.
    pub budget: Budget,
    /// TLS for both ports (`None`: plaintext).
    pub tls: Option<Arc<Tls>>,
}

/// Raises the soft limit of open file descriptors to the hard limit (a server holds one per
/// connection). Returns the soft limit in force afterwards (`None`: unlimited).
///
/// # Errors
/// The limit cannot be read or raised.
#[cfg(unix)]
pub fn raise_fd_limit() -> std::io::Result<Option<u64>> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    match (limit.current, limit.maximum) {
        (Some(current), Some(maximum)) if current < maximum => {
            setrlimit(
                Resource::Nofile,
                rustix::process::Rlimit {
                    current: Some(maximum),
                    maximum: Some(maximum),
                },
            )?;
            Ok(Some(maximum))
        }
        (current, _) => Ok(current),
    }
}

/// Raises the soft limit of open file descriptors (nothing to do on this platform).
///
/// # Errors
/// None here.
#[cfg(not(unix))]
pub fn raise_fd_limit() -> std::io::Result<Option<u64>> {
    Ok(None)
}
