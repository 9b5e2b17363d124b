//! Generated code for Thermostat's public gRPC API (`proto/thermostat/v1`).
//!
//! # What this crate owns
//! The `.proto` contract and the prost/tonic code generated from it; nothing else.
//!
//! # Invariants
//! Field numbers and names in the `.proto` files never change meaning.
//!
//! # Layout
//! `v1`: messages plus `metrics_service_client`; `server`: `metrics_service_server`, whose
//! `PutMetricDataRequest` is raw bytes ([`codec`]); [`FILE_DESCRIPTOR_SET`] for reflection;
//! [`otlp`]: the OTLP metrics collector service over `opentelemetry-proto`'s messages.

#![allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    missing_debug_implementations
)]

/// Version 1 of the API (`package thermostat.v1`).
pub mod v1 {
    tonic::include_proto!("thermostat.v1");
}

/// The server side of version 1: the same service, taking `PutMetricDataRequest` raw.
pub mod server {
    include!(concat!(env!("OUT_DIR"), "/server/thermostat.v1.rs"));
}

/// The OTLP metrics collector service (`opentelemetry.proto.collector.metrics.v1`,
/// `MetricsService/Export`): `metrics_service_server` and `metrics_service_client`, whose
/// messages are `opentelemetry-proto`'s (`opentelemetry_proto::tonic::collector::metrics::v1`).
pub mod otlp {
    include!(concat!(
        env!("OUT_DIR"),
        "/otlp/opentelemetry.proto.collector.metrics.v1.rs"
    ));
}

pub mod codec;

/// Encoded `FileDescriptorSet` of every Thermostat proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/thermostat_descriptor.bin"));
