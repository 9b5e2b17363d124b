//! Prometheus remote write: `POST /api/v1/write` (issue 20), over the [`RemoteWriteApi`] port
//! that the ingest side implements (the binary connects them).
//!
//! As the remote-write specifications say: the body is a snappy block-compressed protobuf,
//! `prometheus.WriteRequest` (1.0: `Content-Type: application/x-protobuf`, or
//! `…;proto=prometheus.WriteRequest`) or `io.prometheus.write.v2.Request` (2.0:
//! `…;proto=io.prometheus.write.v2.Request`), chosen by [`thermostat_prometheus::negotiate`];
//! anything else is 415 naming the supported types. Success is `204 No Content` once the
//! data is durable, with the `X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written`
//! headers 2.0 requires (sent for 1.0 too). Failures are the API's JSON errors (senders log
//! the body): 400 for invalid data (the specification says not to retry it), 403, 413, 429
//! (overloaded) or 503 (unavailable) with `Retry-After`.
//!
//! The body is bounded before decompression by the route's body limit and the snappy header's
//! declared size is checked before inflating ([`thermostat_prometheus::limits`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use thermostat_auth::Principal;
use thermostat_prometheus::{Request, Written};

use crate::ApiState;
use crate::access::Caller;

/// The answer of the ingest side.
pub type WriteFuture = Pin<Box<dyn Future<Output = Result<Written, WriteError>> + Send>>;

/// What the ingest side offers remote write.
pub trait RemoteWriteApi: Send + Sync + std::fmt::Debug {
    /// Stores `request` for `principal` (durable before it answers).
    fn write(&self, principal: Arc<Principal>, request: Request) -> WriteFuture;
}

/// Why a write failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The request breaks a rule (400, not retryable).
    Invalid(String),
    /// The principal may not push (to one of) its namespaces (403).
    Denied(String),
    /// The server has no capacity now (429 with `Retry-After`, retryable).
    Overloaded(String),
    /// The server is stopping or cannot store now (503 with `Retry-After`, retryable).
    Unavailable(String),
    /// Anything else (500; details are logged, not shown).
    Internal(String),
}

/// The response headers remote write 2.0 defines.
pub const SAMPLES_WRITTEN: &str = "x-prometheus-remote-write-samples-written";
/// See [`SAMPLES_WRITTEN`].
pub const HISTOGRAMS_WRITTEN: &str = "x-prometheus-remote-write-histograms-written";
/// See [`SAMPLES_WRITTEN`].
pub const EXEMPLARS_WRITTEN: &str = "x-prometheus-remote-write-exemplars-written";

/// An error answer in the API's JSON form (`error::ApiError`), whose `message` senders log.
fn failure(status: StatusCode, message: &str) -> Response {
    let mut resp = crate::error::ApiError::Status {
        status,
        message: message.to_owned(),
        field: None,
    }
    .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

fn written(w: &Written) -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    for (name, n) in [
        (SAMPLES_WRITTEN, w.samples),
        (HISTOGRAMS_WRITTEN, w.histograms),
        (EXEMPLARS_WRITTEN, w.exemplars),
    ] {
        h.insert(name, HeaderValue::from(n));
    }
    resp
}

fn text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers
        .get(name)
        .map(|v| v.to_str().unwrap_or("(not text)"))
}

/// `POST /api/v1/write`.
pub(crate) async fn write(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let version = match thermostat_prometheus::negotiate(
        text(&headers, header::CONTENT_TYPE),
        text(&headers, header::CONTENT_ENCODING),
    ) {
        Ok(v) => v,
        Err(unsupported) => {
            return failure(StatusCode::UNSUPPORTED_MEDIA_TYPE, &unsupported.to_string());
        }
    };
    let Some(api) = state.remote_write.clone() else {
        return failure(
            StatusCode::NOT_FOUND,
            "Prometheus remote write is not enabled on this server",
        );
    };
    let decoded =
        tokio::task::spawn_blocking(move || thermostat_prometheus::decode(version, &body)).await;
    let request = match decoded {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return failure(
                StatusCode::BAD_REQUEST,
                &format!("{e}; nothing of this request was stored"),
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "Decoding a remote-write request panicked.");
            return failure(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    };
    match api.write(Arc::clone(&caller.principal), request).await {
        Ok(w) => written(&w),
        Err(WriteError::Invalid(m)) => failure(StatusCode::BAD_REQUEST, &m),
        Err(WriteError::Denied(m)) => failure(StatusCode::FORBIDDEN, &m),
        Err(WriteError::Overloaded(m)) => failure(StatusCode::TOO_MANY_REQUESTS, &m),
        Err(WriteError::Unavailable(m)) => failure(StatusCode::SERVICE_UNAVAILABLE, &m),
        Err(WriteError::Internal(detail)) => {
            tracing::error!(%detail, "A remote write failed with an internal error.");
            failure(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicBool;

    use axum::body::Body;
    use axum::http::Request as HttpRequest;
    use http_body_util::BodyExt as _;
    use prost::Message as _;
    use thermostat_metrics::{ManualClock, Store, Telemetry, Timestamp};
    use thermostat_prometheus::proto::{Label, Sample, TimeSeries, WriteRequest};
    use tower::ServiceExt as _;

    use super::*;

    /// Records what it was given; answers `answer`.
    #[derive(Debug)]
    struct Fake {
        seen: Mutex<Vec<(String, Request)>>,
        answer: Result<Written, WriteError>,
    }

    impl RemoteWriteApi for Fake {
        fn write(&self, principal: Arc<Principal>, request: Request) -> WriteFuture {
            self.seen
                .lock()
                .unwrap()
                .push((principal.name.clone(), request));
            let answer = self.answer.clone();
            Box::pin(async move { answer })
        }
    }

    fn state(fake: Arc<Fake>) -> ApiState {
        ApiState {
            store: Arc::new(Store::new(1)),
            telemetry: Arc::new(Telemetry::new()),
            clock: Arc::new(ManualClock::new(Timestamp::from_secs(0))),
            ready: Arc::new(AtomicBool::new(true)),
            alarms: None,
            groups: None,
            notifications: None,
            admin: None,
            queries: Default::default(),
            access: Arc::new(thermostat_auth::Access::open()),
            audit: None,
            otlp: None,
            remote_write: Some(fake as Arc<dyn RemoteWriteApi>),
            cloudwatch: None,
            cluster: None,
        }
    }

    fn fake(answer: Result<Written, WriteError>) -> Arc<Fake> {
        Arc::new(Fake {
            seen: Mutex::default(),
            answer,
        })
    }

    fn request() -> WriteRequest {
        WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![
                    Label {
                        name: "__name__".into(),
                        value: "up".into(),
                    },
                    Label {
                        name: "job".into(),
                        value: "node".into(),
                    },
                ],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: 1_700_000_000_000,
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn snappy(bytes: &[u8]) -> Vec<u8> {
        snap::raw::Encoder::new().compress_vec(bytes).unwrap()
    }

    async fn post(
        state: ApiState,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, HeaderMap, String) {
        // The body as text: the JSON error's message, or the whole body.
        let req = HttpRequest::post("/api/v1/write")
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_ENCODING, "snappy")
            .body(Body::from(body))
            .unwrap();
        let resp = crate::router(state).oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes().to_vec();
        let text = match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(v) => v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            Err(_) => String::from_utf8(bytes).unwrap(),
        };
        (parts.status, parts.headers, text)
    }

    #[tokio::test]
    async fn a_write_reaches_the_port_and_answers_204_with_the_written_counts() {
        let f = fake(Ok(Written {
            samples: 7,
            histograms: 2,
            exemplars: 0,
        }));
        let (status, headers, _) = post(
            state(Arc::clone(&f)),
            "application/x-protobuf",
            snappy(&request().encode_to_vec()),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(headers[SAMPLES_WRITTEN], "7");
        assert_eq!(headers[HISTOGRAMS_WRITTEN], "2");
        assert_eq!(headers[EXEMPLARS_WRITTEN], "0");
        let seen = f.seen.lock().unwrap();
        assert_eq!(seen[0].0, "anonymous");
        assert!(matches!(&seen[0].1, Request::V1(r) if *r == request()));
    }

    #[tokio::test]
    async fn failures_are_text_with_the_status_and_retry_hints_prometheus_expects() {
        let cases = [
            (
                WriteError::Invalid("x".into()),
                StatusCode::BAD_REQUEST,
                false,
            ),
            (WriteError::Denied("x".into()), StatusCode::FORBIDDEN, false),
            (
                WriteError::Overloaded("x".into()),
                StatusCode::TOO_MANY_REQUESTS,
                true,
            ),
            (
                WriteError::Unavailable("x".into()),
                StatusCode::SERVICE_UNAVAILABLE,
                true,
            ),
        ];
        for (error, want, retry) in cases {
            let (status, headers, body) = post(
                state(fake(Err(error))),
                "application/x-protobuf",
                snappy(&request().encode_to_vec()),
            )
            .await;
            assert_eq!(status, want);
            assert_eq!(body, "x");
            assert_eq!(headers.contains_key(header::RETRY_AFTER), retry);
        }
    }

    #[tokio::test]
    async fn bad_bodies_and_types_are_refused_without_reaching_the_port() {
        let f = fake(Ok(Written::default()));
        let (status, _, body) = post(
            state(Arc::clone(&f)),
            "application/x-protobuf",
            vec![0xff; 64],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body.contains("nothing of this request was stored"),
            "{body}"
        );
        let (status, _, body) = post(
            state(Arc::clone(&f)),
            "application/json",
            snappy(&request().encode_to_vec()),
        )
        .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(body.contains("io.prometheus.write.v2.Request"), "{body}");
        assert!(f.seen.lock().unwrap().is_empty());
    }
}
