//! The HTTP server's serve loop: HTTP/1.1 connections under the transport limits.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use http_body::Body;
use http_body_util::{Either, Full};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::Options;
use crate::accept::Acceptor;
use crate::body::{Failed, Framing, LimitedBody, Scope};
use crate::conn::ConnInfo;
use crate::error::{BoxError, Error};
use crate::tls::Alpn;

/// The request body the HTTP service is handed.
pub type HttpBody = LimitedBody<hyper::body::Incoming>;

/// Serves `service` over HTTP/1.1 on `listener` until `shutdown` completes, then stops
/// accepting, closes idle connections and waits for requests in progress.
///
/// - A connection that sends no complete request head for `--idle-connection-timeout-seconds`
///   (from its start, or from the end of its last response) is closed.
/// - A request body not received whole within `--request-body-timeout-seconds` is answered 408;
///   a request body that would take the buffered bytes beyond `--max-buffered-request-bytes`,
///   or a request with a body that arrives while they are exhausted, 503. Both as the API's
///   JSON error, with `connection: close`.
/// - Accept errors back off ([`Acceptor`]).
/// - With `options.tls`, only TLS is served (ALPN `http/1.1`); see [`Acceptor::with_tls`].
/// - Every request carries its connection's [`ConnInfo`] in its extensions.
pub async fn serve_http<S, B>(
    listener: TcpListener,
    service: S,
    options: Options,
    shutdown: impl Future<Output = ()>,
) where
    S: tower::Service<http::Request<HttpBody>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut acceptor =
        Acceptor::new(listener, "HTTP", None).with_tls(options.tls.clone(), Alpn::Http1);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.idle_connection_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            io = acceptor.accept() => {
                let svc = HttpLimits {
                    inner: service.clone(),
                    options: options.clone(),
                    info: io.info().clone(),
                };
                let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(svc));
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "An HTTP connection ended with an error.");
                    }
                });
            }
        }
    }
    drop(acceptor);
    graceful.shutdown().await;
}

#[derive(Clone, Debug)]
struct HttpLimits<S> {
    inner: S,
    options: Options,
    info: ConnInfo,
}

type Answer<B> = http::Response<Either<B, Full<Bytes>>>;

impl<S, B> tower::Service<http::Request<hyper::body::Incoming>> for HttpLimits<S>
where
    S: tower::Service<http::Request<HttpBody>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
{
    type Response = Answer<B>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Answer<B>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<hyper::body::Incoming>) -> Self::Future {
        req.extensions_mut().insert(self.info.clone());
        let options = self.options.clone();
        if !req.body().is_end_stream() && options.budget.is_exhausted() {
            return Box::pin(std::future::ready(Ok(refusal(&options, Failed::Buffered))));
        }
        let slot = Arc::new(OnceLock::new());
        let req = req.map(|body| {
            LimitedBody::new(
                body,
                options.budget.clone(),
                Framing::Raw,
                Scope::WholeBody,
                options.request_body_timeout,
            )
            .report_to(Arc::clone(&slot))
        });
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        Box::pin(async move {
            let Ok(response) = inner.call(req).await;
            // The handler saw the body fail and answered as it could (a 400, say): the
            // client is told which limit it hit instead.
            Ok(match slot.get() {
                Some(&failed) => refusal(&options, failed),
                None => response.map(Either::Left),
            })
        })
    }
}

/// The API's JSON error for a request failed by a transport limit.
fn refusal<B>(options: &Options, failed: Failed) -> Answer<B> {
    let (status, code, error) = match failed {
        Failed::Timeout => (
            StatusCode::REQUEST_TIMEOUT,
            "deadline_exceeded",
            Error::BodyTimeout {
                what: "body",
                seconds: options.request_body_timeout.as_secs(),
            },
        ),
        Failed::Buffered => (
            StatusCode::SERVICE_UNAVAILABLE,
            "resource_exhausted",
            Error::Buffered {
                limit: options.budget.limit(),
            },
        ),
    };
    let body = serde_json::json!({"error": {
        "code": code,
        "message": error.to_string(),
        "field": error.field(),
    }});
    let mut response = http::Response::new(Either::Right(Full::new(Bytes::from(body.to_string()))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // The rest of the body was not read: the connection cannot carry another request.
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    if failed == Failed::Buffered {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}
