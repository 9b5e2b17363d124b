//! Compiles `thermostat/v1/*.proto` with protox (a pure-Rust protobuf compiler, so no
//! `protoc` is needed on the machine) and generates prost messages and tonic services; and the
//! OTLP metrics collector service over `opentelemetry-proto`'s messages.

use std::path::PathBuf;

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["thermostat/v1/metrics.proto"];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["."])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("thermostat_descriptor.bin"),
        fds.encode_to_vec(),
    )?;
    // Messages and the client, with prost's codec.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .compile_fds(fds.clone())?;
    // The server alone, into its own folder: every message is the one generated above except
    // `PutMetricDataRequest`, which the server takes raw (see `src/codec.rs`).
    let server_dir = out_dir.join("server");
    std::fs::create_dir_all(&server_dir)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .out_dir(&server_dir)
        .codec_path("crate::codec::ServerCodec")
        .extern_path(".thermostat.v1", "crate::v1")
        .extern_path(
            ".thermostat.v1.PutMetricDataRequest",
            "crate::codec::RawPutMetricDataRequest",
        )
        .compile_fds(fds)?;
    // The OTLP metrics collector service (`Export`), server and client, over the messages of
    // the `opentelemetry-proto` crate (which is not asked for its own tonic code: that would
    // pull tonic into the pure OTLP core through feature unification).
    let otlp = "opentelemetry/proto/collector/metrics/v1/metrics_service.proto";
    println!("cargo:rerun-if-changed={otlp}");
    let otlp_fds = protox::compile([otlp], ["."])?;
    let otlp_dir = out_dir.join("otlp");
    std::fs::create_dir_all(&otlp_dir)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .out_dir(&otlp_dir)
        .extern_path(
            ".opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest",
            "::opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest",
        )
        .extern_path(
            ".opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceResponse",
            "::opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse",
        )
        .compile_fds(otlp_fds)?;
    Ok(())
}
