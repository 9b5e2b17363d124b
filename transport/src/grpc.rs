//! The tower layer that puts every gRPC request under the transport limits.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use tonic::transport::server::TcpConnectInfo;

use crate::Options;
use crate::body::{Framing, LimitedBody, Scope};
use crate::conn::{ActiveRequest, ConnInfo};
use crate::error::Error;

/// Puts gRPC requests under `--max-buffered-request-bytes` and
/// `--request-body-timeout-seconds`, and marks them in progress on their connection (see
/// [`crate::ConnIo`]) until their response ends.
///
/// A request that arrives while the budget is exhausted is answered RESOURCE_EXHAUSTED at once.
/// The methods named in `streaming_paths` get the timeout per message; every other request must
/// arrive whole within it from its start.
#[derive(Clone, Debug)]
pub struct GrpcLimitsLayer {
    options: Options,
    streaming_paths: Arc<[&'static str]>,
}

impl GrpcLimitsLayer {
    /// The layer; `streaming_paths` are request paths such as `/pkg.Service/Method`.
    pub fn new(options: Options, streaming_paths: &[&'static str]) -> Self {
        GrpcLimitsLayer {
            options,
            streaming_paths: streaming_paths.into(),
        }
    }
}

impl<S> tower::Layer<S> for GrpcLimitsLayer {
    type Service = GrpcLimits<S>;

    fn layer(&self, inner: S) -> GrpcLimits<S> {
        GrpcLimits {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`GrpcLimitsLayer`].
#[derive(Clone, Debug)]
pub struct GrpcLimits<S> {
    inner: S,
    layer: GrpcLimitsLayer,
}

type Request = http::Request<tonic::body::Body>;
type Response = http::Response<tonic::body::Body>;

impl<S> tower::Service<Request> for GrpcLimits<S>
where
    S: tower::Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let info = req.extensions().get::<ConnInfo>().cloned();
        let active = info.as_ref().map(|i| i.state.begin_request());
        if let Some(i) = info {
            // What tonic's `Request::remote_addr` reads.
            req.extensions_mut().insert(TcpConnectInfo {
                local_addr: i.local_addr,
                remote_addr: i.remote_addr,
            });
        }
        let options = &self.layer.options;
        if options.budget.is_exhausted() {
            let status = tonic::Status::from(Error::Buffered {
                limit: options.budget.limit(),
            });
            return Box::pin(std::future::ready(Ok(status.into_http())));
        }
        let scope = if self.layer.streaming_paths.contains(&req.uri().path()) {
            Scope::PerMessage
        } else {
            Scope::WholeBody
        };
        let (budget, timeout) = (options.budget.clone(), options.request_body_timeout);
        let req = req.map(|body| {
            tonic::body::Body::new(
                LimitedBody::new(body, budget, Framing::Grpc, scope, timeout)
                    .map_err(tonic::Status::from),
            )
        });
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        Box::pin(async move {
            let response = inner.call(req).await?;
            Ok(match active {
                Some(active) => response.map(|inner| {
                    tonic::body::Body::new(InProgress {
                        inner,
                        _active: active,
                    })
                }),
                None => response,
            })
        })
    }
}

/// A response body that keeps its request in progress until it ends or is dropped.
struct InProgress {
    inner: tonic::body::Body,
    _active: ActiveRequest,
}

impl Body for InProgress {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
