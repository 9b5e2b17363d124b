//! Generated code for Thermostat's public gRPC API (`proto/thermostat/v1`).
//!
//! # What this crate owns
//! The `.proto` contract and the prost/tonic code generated from it; nothing else.
//!
//! # Invariants
//! Field numbers and names in the `.proto` files never change meaning.
//!
//! # Layout
//! `v1`: messages plus `metrics_service_{client,server}`; [`FILE_DESCRIPTOR_SET`] for reflection.

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

/// Encoded `FileDescriptorSet` of every Thermostat proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/thermostat_descriptor.bin"));
