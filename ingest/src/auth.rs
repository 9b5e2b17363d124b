//! Authentication of every gRPC request (the metrics service and reflection): the
//! `authorization: Bearer <token>` metadata, else the connection's verified client
//! certificate. The principal travels in the request's extensions to the service, which
//! checks each RPC's permission and namespaces ([`crate::MetricsApi`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use thermostat_auth::{Access, Credentials};
use thermostat_transport::ConnInfo;
use tonic::codegen::http;

type Request = http::Request<tonic::body::Body>;
type Response = http::Response<tonic::body::Body>;

/// Authenticates every request with [`Access`]; a request without a principal is answered
/// UNAUTHENTICATED before any service sees it.
#[derive(Clone, Debug)]
pub(crate) struct AuthLayer {
    pub(crate) access: Arc<Access>,
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Authenticated<S> {
        Authenticated {
            inner,
            access: Arc::clone(&self.access),
        }
    }
}

/// The service of [`AuthLayer`].
#[derive(Clone, Debug)]
pub(crate) struct Authenticated<S> {
    inner: S,
    access: Arc<Access>,
}

impl<S> tower::Service<Request> for Authenticated<S>
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
        let subject = req
            .extensions()
            .get::<ConnInfo>()
            .and_then(|c| c.client_subject.clone());
        let authorization = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or(""));
        let credentials = Credentials {
            authorization,
            client_subject: subject.as_deref(),
        };
        match self.access.authenticate(credentials) {
            Ok(principal) => {
                req.extensions_mut().insert(principal);
                let ready = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, ready);
                Box::pin(async move { inner.call(req).await })
            }
            Err(why) => {
                let status = tonic::Status::unauthenticated(why.to_string());
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}
