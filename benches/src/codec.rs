//! A gRPC codec whose requests are protobuf bytes encoded ahead of time.
//!
//! `loadgen` encodes every request before its clock starts; this codec copies those bytes into
//! tonic's frame buffer unchanged and decodes responses with prost as the generated client
//! does. On the wire the calls are identical to the generated `MetricsServiceClient`'s (ours,
//! and OTLP's for [`OTLP_EXPORT`]).

use std::marker::PhantomData;

use bytes::{BufMut as _, Bytes};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic_prost::ProstDecoder;

/// Path of `thermostat.v1.MetricsService/PutMetricData`.
pub const PUT_METRIC_DATA: &str = "/thermostat.v1.MetricsService/PutMetricData";
/// Path of `thermostat.v1.MetricsService/StreamMetricData`.
pub const STREAM_METRIC_DATA: &str = "/thermostat.v1.MetricsService/StreamMetricData";

/// Path of OTLP's `opentelemetry.proto.collector.metrics.v1.MetricsService/Export`.
pub const OTLP_EXPORT: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

/// The path of a unary push.
pub fn put_metric_data_path() -> PathAndQuery {
    PathAndQuery::from_static(PUT_METRIC_DATA)
}

/// The path of a streaming push.
pub fn stream_metric_data_path() -> PathAndQuery {
    PathAndQuery::from_static(STREAM_METRIC_DATA)
}

/// The path of an OTLP export (unary; OTLP has no streaming call).
pub fn otlp_export_path() -> PathAndQuery {
    PathAndQuery::from_static(OTLP_EXPORT)
}

/// Sends [`Bytes`] as they are; receives `R` through prost.
#[derive(Debug)]
pub struct PreEncoded<R> {
    _response: PhantomData<fn() -> R>,
}

impl<R> Default for PreEncoded<R> {
    fn default() -> Self {
        PreEncoded {
            _response: PhantomData,
        }
    }
}

/// The encoder half of [`PreEncoded`].
#[derive(Debug, Default)]
pub struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

/// The decoder half of [`PreEncoded`].
#[derive(Debug, Default)]
pub struct ResponseDecoder<R>(ProstDecoder<R>);

impl<R: prost::Message + Default> Decoder for ResponseDecoder<R> {
    type Item = R;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<R>, Status> {
        self.0.decode(src)
    }
}

impl<R: prost::Message + Default + Send + 'static> Codec for PreEncoded<R> {
    type Encode = Bytes;
    type Decode = R;
    type Encoder = BytesEncoder;
    type Decoder = ResponseDecoder<R>;

    fn encoder(&mut self) -> BytesEncoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> ResponseDecoder<R> {
        ResponseDecoder(ProstDecoder::default())
    }
}
