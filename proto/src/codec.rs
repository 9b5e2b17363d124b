//! The codec of the generated server: prost for every message except
//! `PutMetricDataRequest`, which the server takes as its raw bytes ([`RawPutMetricDataRequest`])
//! so that the ingest path can read it without copying its strings.

use std::marker::PhantomData;

use bytes::{Buf as _, Bytes};
use prost::Message;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// A `PutMetricDataRequest` as it arrived: its protobuf encoding, not yet decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawPutMetricDataRequest(pub Bytes);

impl RawPutMetricDataRequest {
    /// Encodes a decoded request (for callers that build requests in memory).
    pub fn from_message(request: &crate::v1::PutMetricDataRequest) -> Self {
        RawPutMetricDataRequest(Bytes::from(request.encode_to_vec()))
    }

    /// Decodes it with prost (the reference decoder; the ingest path reads the bytes itself).
    ///
    /// # Errors
    /// Bytes that are not a valid `PutMetricDataRequest`.
    pub fn decode(&self) -> Result<crate::v1::PutMetricDataRequest, prost::DecodeError> {
        crate::v1::PutMetricDataRequest::decode(self.0.as_ref())
    }
}

/// How a server request message is read off the wire.
pub trait FromWire: Sized {
    /// Reads one whole message from `buf`.
    ///
    /// # Errors
    /// Bytes that are not a valid message.
    fn from_wire(buf: &mut DecodeBuf<'_>) -> Result<Self, Status>;
}

fn prost_decode<M: Message + Default>(buf: &mut DecodeBuf<'_>) -> Result<M, Status> {
    M::decode(buf)
        .map_err(|e| Status::invalid_argument(format!("the request is not valid protobuf: {e}")))
}

impl FromWire for RawPutMetricDataRequest {
    fn from_wire(buf: &mut DecodeBuf<'_>) -> Result<Self, Status> {
        let len = buf.remaining();
        Ok(RawPutMetricDataRequest(buf.copy_to_bytes(len)))
    }
}

impl FromWire for crate::v1::GetMetricStatisticsRequest {
    fn from_wire(buf: &mut DecodeBuf<'_>) -> Result<Self, Status> {
        prost_decode(buf)
    }
}

impl FromWire for crate::v1::GetMetricDataRequest {
    fn from_wire(buf: &mut DecodeBuf<'_>) -> Result<Self, Status> {
        prost_decode(buf)
    }
}

impl FromWire for crate::v1::ListMetricsRequest {
    fn from_wire(buf: &mut DecodeBuf<'_>) -> Result<Self, Status> {
        prost_decode(buf)
    }
}

/// The server codec: responses are prost messages, requests anything [`FromWire`].
#[derive(Debug, Clone)]
pub struct ServerCodec<E, D>(PhantomData<(E, D)>);

impl<E, D> Default for ServerCodec<E, D> {
    fn default() -> Self {
        ServerCodec(PhantomData)
    }
}

impl<E, D> Codec for ServerCodec<E, D>
where
    E: Message + Send + 'static,
    D: FromWire + Send + 'static,
{
    type Encode = E;
    type Decode = D;
    type Encoder = ProstEncoder<E>;
    type Decoder = WireDecoder<D>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        WireDecoder(PhantomData)
    }
}

/// Encodes responses with prost.
#[derive(Debug)]
pub struct ProstEncoder<E>(PhantomData<E>);

impl<E: Message> Encoder for ProstEncoder<E> {
    type Item = E;
    type Error = Status;

    fn encode(&mut self, item: E, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(buf)
            .map_err(|e| Status::internal(format!("cannot encode the response: {e}")))
    }
}

/// Decodes requests with [`FromWire`].
#[derive(Debug)]
pub struct WireDecoder<D>(PhantomData<D>);

impl<D: FromWire> Decoder for WireDecoder<D> {
    type Item = D;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<D>, Status> {
        D::from_wire(buf).map(Some)
    }
}
