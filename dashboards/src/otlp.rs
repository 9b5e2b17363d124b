//! OTLP/HTTP: `POST /v1/metrics` (issue 19), the OpenTelemetry protocol's HTTP transport for
//! metrics, over the [`OtlpApi`] port that the ingest side implements (the binary connects
//! them).
//!
//! As the OTLP specification says: the body is `application/x-protobuf` or
//! `application/json` (the OTLP JSON encoding), gzip-compressed or not
//! (`Content-Encoding: gzip`); the answer is in the request's encoding: an
//! `ExportMetricsServiceResponse` (with `partial_success` when points were rejected), or on
//! failure a `google.rpc.Status`, with 400 (not retryable), 403, 413, or 429/503 with
//! `Retry-After` (retryable). Other content types get 415.
//!
//! The body is bounded before and after decompression
//! ([`thermostat_otlp::limits::MAX_BODY_BYTES`]), so a gzip bomb is refused unexpanded.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message as _;
use thermostat_auth::Principal;
use thermostat_otlp::limits::MAX_BODY_BYTES;
use thermostat_otlp::proto::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};

use crate::ApiState;
use crate::access::Caller;

/// The answer of the ingest side.
pub type OtlpFuture =
    Pin<Box<dyn Future<Output = Result<ExportMetricsServiceResponse, OtlpError>> + Send>>;

/// What the ingest side offers OTLP/HTTP: the same export as OTLP/gRPC.
pub trait OtlpApi: Send + Sync + std::fmt::Debug {
    /// Stores `request`'s points for `principal` (durable before it answers).
    fn export(&self, principal: Arc<Principal>, request: ExportMetricsServiceRequest)
    -> OtlpFuture;
}

/// Why an export failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtlpError {
    /// The request breaks a rule (400, not retryable).
    Invalid(String),
    /// The principal may not push (to one of) its namespaces (403).
    Denied(String),
    /// The request is too large (413).
    TooLarge(String),
    /// The server has no capacity now (503 with `Retry-After`, retryable).
    Overloaded(String),
    /// The server is stopping or cannot store now (503 with `Retry-After`, retryable).
    Unavailable(String),
    /// Anything else (500; details are logged, not shown).
    Internal(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn failure(encoding: Encoding, status: StatusCode, code: i32, message: &str) -> Response {
    let mut resp = match encoding {
        Encoding::Protobuf => (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            RpcStatus {
                code,
                message: message.to_owned(),
            }
            .encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "code": code, "message": message }).to_string(),
        )
            .into_response(),
    };
    *resp.status_mut() = status;
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

/// gRPC codes, as `google.rpc.Status.code` carries them.
const INVALID_ARGUMENT: i32 = 3;
const PERMISSION_DENIED: i32 = 7;
const RESOURCE_EXHAUSTED: i32 = 8;
const INTERNAL: i32 = 13;
const UNAVAILABLE: i32 = 14;

fn success(encoding: Encoding, response: &ExportMetricsServiceResponse) -> Response {
    match encoding {
        Encoding::Protobuf => (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            response.encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => {
            // The OTLP JSON encoding: camelCase, 64-bit integers as strings.
            let body = match &response.partial_success {
                Some(p) => serde_json::json!({ "partialSuccess": {
                    "rejectedDataPoints": p.rejected_data_points.to_string(),
                    "errorMessage": p.error_message,
                }}),
                None => serde_json::json!({}),
            };
            (
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
    }
}

/// `POST /v1/metrics`.
pub(crate) async fn export(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let encoding = match content_type.as_deref() {
        Some("application/x-protobuf") => Encoding::Protobuf,
        Some("application/json") => Encoding::Json,
        other => {
            let mut resp = failure(
                Encoding::Json,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                INVALID_ARGUMENT,
                &format!(
                    "content-type: must be application/x-protobuf or application/json (got {})",
                    other.unwrap_or("none")
                ),
            );
            resp.headers_mut().insert(
                header::ACCEPT,
                HeaderValue::from_static("application/x-protobuf, application/json"),
            );
            return resp;
        }
    };
    let Some(api) = state.otlp.clone() else {
        return failure(
            encoding,
            StatusCode::NOT_FOUND,
            UNAVAILABLE,
            "OTLP is not enabled on this server",
        );
    };
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    {
        None | Some("" | "identity") => false,
        Some(e) if e.eq_ignore_ascii_case("gzip") => true,
        Some(other) => {
            return failure(
                encoding,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                INVALID_ARGUMENT,
                &format!(
                    "content-encoding: must be gzip or none (got {})",
                    thermostat_metrics::validate::quote(other)
                ),
            );
        }
    };
    let decoded = tokio::task::spawn_blocking(move || {
        let plain = if gzip {
            thermostat_otlp::gunzip_bounded(&body, MAX_BODY_BYTES)?
        } else {
            body.to_vec()
        };
        match encoding {
            Encoding::Protobuf => thermostat_otlp::decode_protobuf(&plain),
            Encoding::Json => thermostat_otlp::decode_json(&plain),
        }
    })
    .await;
    let request = match decoded {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let (status, code) = match e.kind {
                thermostat_otlp::DecodeErrorKind::TooLarge => {
                    (StatusCode::PAYLOAD_TOO_LARGE, RESOURCE_EXHAUSTED)
                }
                _ => (StatusCode::BAD_REQUEST, INVALID_ARGUMENT),
            };
            return failure(encoding, status, code, &e.to_string());
        }
        Err(e) => {
            tracing::error!(error = %e, "Decoding an OTLP request panicked.");
            return failure(
                encoding,
                StatusCode::INTERNAL_SERVER_ERROR,
                INTERNAL,
                "internal error",
            );
        }
    };
    match api.export(Arc::clone(&caller.principal), request).await {
        Ok(response) => success(encoding, &response),
        Err(OtlpError::Invalid(m)) => {
            failure(encoding, StatusCode::BAD_REQUEST, INVALID_ARGUMENT, &m)
        }
        Err(OtlpError::Denied(m)) => {
            failure(encoding, StatusCode::FORBIDDEN, PERMISSION_DENIED, &m)
        }
        Err(OtlpError::TooLarge(m)) => failure(
            encoding,
            StatusCode::PAYLOAD_TOO_LARGE,
            RESOURCE_EXHAUSTED,
            &m,
        ),
        Err(OtlpError::Overloaded(m)) => failure(
            encoding,
            StatusCode::SERVICE_UNAVAILABLE,
            RESOURCE_EXHAUSTED,
            &m,
        ),
        Err(OtlpError::Unavailable(m)) => {
            failure(encoding, StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE, &m)
        }
        Err(OtlpError::Internal(detail)) => {
            tracing::error!(%detail, "An OTLP export failed with an internal error.");
            failure(
                encoding,
                StatusCode::INTERNAL_SERVER_ERROR,
                INTERNAL,
                "internal error",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicBool;

    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt as _;
    use thermostat_metrics::{ManualClock, Store, Telemetry, Timestamp};
    use thermostat_otlp::proto::collector::metrics::v1::ExportMetricsPartialSuccess;
    use thermostat_otlp::proto::metrics::v1::{
        Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
    };
    use tower::ServiceExt as _;

    use super::*;

    /// Records what it was given; answers `answer`.
    #[derive(Debug)]
    struct Fake {
        seen: Mutex<Vec<(String, ExportMetricsServiceRequest)>>,
        answer: Result<ExportMetricsServiceResponse, OtlpError>,
    }

    impl OtlpApi for Fake {
        fn export(
            &self,
            principal: Arc<Principal>,
            request: ExportMetricsServiceRequest,
        ) -> OtlpFuture {
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
            otlp: Some(fake as Arc<dyn OtlpApi>),
            remote_write: None,
            cloudwatch: None,
            cluster: None,
        }
    }

    fn fake(answer: Result<ExportMetricsServiceResponse, OtlpError>) -> Arc<Fake> {
        Arc::new(Fake {
            seen: Mutex::default(),
            answer,
        })
    }

    fn request() -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "queue_depth".into(),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: vec![NumberDataPoint {
                                time_unix_nano: 1_700_000_000_000_000_000,
                                value: Some(number_data_point::Value::AsDouble(7.5)),
                                ..Default::default()
                            }],
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    async fn post(
        state: ApiState,
        content_type: &str,
        encoding: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = Request::post("/v1/metrics").header(header::CONTENT_TYPE, content_type);
        if let Some(e) = encoding {
            req = req.header(header::CONTENT_ENCODING, e);
        }
        let resp = crate::router(state)
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes().to_vec();
        (parts.status, parts.headers, bytes)
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[tokio::test]
    async fn protobuf_and_gzip_reach_the_port_and_answer_in_protobuf() {
        let partial = ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess {
                rejected_data_points: 2,
                error_message: "m: point 1: rule".into(),
            }),
        };
        let f = fake(Ok(partial.clone()));
        for encoding in [None, Some("gzip")] {
            let body = request().encode_to_vec();
            let body = if encoding.is_some() {
                gzip(&body)
            } else {
                body
            };
            let (status, headers, bytes) = post(
                state(Arc::clone(&f)),
                "application/x-protobuf",
                encoding,
                body,
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(headers[header::CONTENT_TYPE], "application/x-protobuf");
            assert_eq!(
                ExportMetricsServiceResponse::decode(&bytes[..]).unwrap(),
                partial
            );
        }
        let seen = f.seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0, "anonymous");
        assert_eq!(seen[1].1, request());
    }

    #[tokio::test]
    async fn json_in_json_out_with_64_bit_integers_as_strings() {
        let f = fake(Ok(ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess {
                rejected_data_points: 3,
                error_message: "bad".into(),
            }),
        }));
        let body = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"queue_depth","gauge":{"dataPoints":[{"timeUnixNano":"1700000000000000000","asDouble":7.5}]}}]}]}]}"#;
        let (status, headers, bytes) = post(
            state(Arc::clone(&f)),
            "application/json; charset=utf-8",
            None,
            body.to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["partialSuccess"]["rejectedDataPoints"], "3");
        assert_eq!(f.seen.lock().unwrap()[0].1, request());
    }

    #[tokio::test]
    async fn failures_are_statuses_in_the_request_encoding_with_retry_hints() {
        let cases = [
            (
                OtlpError::Invalid("x".into()),
                StatusCode::BAD_REQUEST,
                INVALID_ARGUMENT,
                false,
            ),
            (
                OtlpError::Denied("x".into()),
                StatusCode::FORBIDDEN,
                PERMISSION_DENIED,
                false,
            ),
            (
                OtlpError::Overloaded("x".into()),
                StatusCode::SERVICE_UNAVAILABLE,
                RESOURCE_EXHAUSTED,
                true,
            ),
            (
                OtlpError::Unavailable("x".into()),
                StatusCode::SERVICE_UNAVAILABLE,
                UNAVAILABLE,
                true,
            ),
        ];
        for (error, want, code, retry) in cases {
            let (status, headers, bytes) = post(
                state(fake(Err(error))),
                "application/x-protobuf",
                None,
                request().encode_to_vec(),
            )
            .await;
            assert_eq!(status, want);
            assert_eq!(RpcStatus::decode(&bytes[..]).unwrap().code, code);
            assert_eq!(headers.contains_key(header::RETRY_AFTER), retry);
        }
    }

    #[tokio::test]
    async fn bad_bodies_are_refused_without_reaching_the_port() {
        let f = fake(Ok(ExportMetricsServiceResponse::default()));
        // Not protobuf.
        let (status, _, bytes) = post(
            state(Arc::clone(&f)),
            "application/x-protobuf",
            None,
            vec![0xff; 64],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            RpcStatus::decode(&bytes[..]).unwrap().code,
            INVALID_ARGUMENT
        );
        // Another content type.
        let (status, headers, _) =
            post(state(Arc::clone(&f)), "text/plain", None, b"x".to_vec()).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(headers.contains_key(header::ACCEPT));
        // A gzip bomb: 64 MiB of zeros in a few KiB, refused unexpanded.
        let bomb = gzip(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 1 << 20);
        let (status, _, bytes) = post(
            state(Arc::clone(&f)),
            "application/json",
            Some("gzip"),
            bomb,
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["code"], RESOURCE_EXHAUSTED);
        // An unknown content encoding.
        let (status, _, _) = post(
            state(Arc::clone(&f)),
            "application/json",
            Some("br"),
            b"{}".to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(f.seen.lock().unwrap().is_empty());
    }
}
