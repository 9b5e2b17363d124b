//! gRPC server reflection, both versions, each answered for a real client: Python's
//! grpcio-reflection (which speaks only `grpc.reflection.v1alpha`) and tonic-reflection's
//! `grpc.reflection.v1` client. Each lists the services and fetches the file that defines
//! `thermostat.v1.MetricsService`.

use std::process::Command;

use serde_json::Value;
use tokio_stream::StreamExt as _;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::util::TestServer;

const SERVICE: &str = "thermostat.v1.MetricsService";
const METHODS: [&str; 5] = [
    "PutMetricData",
    "StreamMetricData",
    "GetMetricStatistics",
    "ListMetrics",
    "GetMetricData",
];
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/peers/reflection_v1alpha.py"
);

/// The length-delimited fields (wire type 2) of a protobuf message, as `(number, bytes)`;
/// other wire types are skipped. Enough to read names out of a `FileDescriptorProto`.
fn length_delimited(mut b: &[u8]) -> Vec<(u64, &[u8])> {
    fn varint(b: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (byte, rest) = b.split_first().expect("a truncated varint");
            *b = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        v
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b);
        match key & 7 {
            0 => {
                varint(&mut b);
            }
            1 => b = &b[8..],
            5 => b = &b[4..],
            2 => {
                let len = usize::try_from(varint(&mut b)).unwrap();
                out.push((key >> 3, &b[..len]));
                b = &b[len..];
            }
            t => panic!("wire type {t} in a descriptor"),
        }
    }
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

/// `(file name, package, services with their methods)` of an encoded `FileDescriptorProto`.
fn describe(file: &[u8]) -> (String, String, Vec<(String, Vec<String>)>) {
    let (mut name, mut package, mut services) = (String::new(), String::new(), Vec::new());
    for (field, bytes) in length_delimited(file) {
        match field {
            1 => name = text(bytes),
            2 => package = text(bytes),
            6 => {
                let mut service = (String::new(), Vec::new());
                for (f, b) in length_delimited(bytes) {
                    match f {
                        1 => service.0 = text(b),
                        2 => service.1.extend(
                            length_delimited(b)
                                .into_iter()
                                .filter(|(f, _)| *f == 1)
                                .map(|(_, n)| text(n)),
                        ),
                        _ => {}
                    }
                }
                services.push(service);
            }
            _ => {}
        }
    }
    (name, package, services)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1alpha_answers_pythons_grpcio_reflection_client() {
    let Some(python) = thermostat_testkit::require_peers(
        "v1alpha_answers_pythons_grpcio_reflection_client",
        &["grpc", "grpc_reflection"],
    ) else {
        return;
    };
    let server = TestServer::start().await;
    let addr = server.running.grpc_addr.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args([SCRIPT, &addr, SERVICE])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let services: Vec<&str> = doc["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for s in [
        SERVICE,
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(services.contains(&s), "{s} not in {services:?}");
    }
    assert_eq!(doc["file"], "thermostat/v1/metrics.proto", "{doc}");
    assert_eq!(doc["package"], "thermostat.v1", "{doc}");
    // The pool resolved the service (and every file it imports) through v1alpha.
    assert_eq!(doc["methods"], serde_json::json!(METHODS), "{doc}");
}

#[tokio::test]
async fn v1_answers_tonics_reflection_client() {
    let server = TestServer::start().await;
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", server.running.grpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let requests = [
        MessageRequest::ListServices(String::new()),
        MessageRequest::FileContainingSymbol(SERVICE.to_owned()),
    ]
    .map(|m| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(m),
    });
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();

    let msg = stream.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = msg.message_response else {
        panic!("{msg:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for s in [
        SERVICE,
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(names.iter().any(|n| n == s), "{s} not in {names:?}");
    }

    let msg = stream.next().await.unwrap().unwrap();
    let Some(MessageResponse::FileDescriptorResponse(files)) = msg.message_response else {
        panic!("{msg:?}")
    };
    let described: Vec<_> = files
        .file_descriptor_proto
        .iter()
        .map(|f| describe(f))
        .collect();
    let (name, package, services) = described
        .iter()
        .find(|(_, _, services)| services.iter().any(|(s, _)| s == "MetricsService"))
        .unwrap_or_else(|| panic!("no file defines MetricsService: {described:?}"));
    assert_eq!(name, "thermostat/v1/metrics.proto");
    assert_eq!(package, "thermostat.v1");
    let (_, methods) = services
        .iter()
        .find(|(s, _)| s == "MetricsService")
        .unwrap();
    assert_eq!(methods, &METHODS.map(str::to_owned).to_vec());
}
