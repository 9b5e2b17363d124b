//! Hostile push requests and series (issue 15, findings 1, 7 and the ingest items of 12),
//! against the real server in-process over gRPC and HTTP: group bombs at every nesting place,
//! long values in errors, absurd sample counts, the weighed series limit, concurrent pushes
//! against `--max-series`, and paged listings.
//!
//! Hostile bytes are encoded by hand (prost would not write them) and sent with a codec that
//! passes them through unchanged.

use std::collections::HashSet;

use bytes::{Buf as _, BufMut as _};
use thermostat_proto::v1::{ListMetricsRequest, MetricDatum, StatisticSet};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Code, Request, Status};

use crate::util::{TestServer, dims, now_ms, request, value_datum};

// === Raw protobuf over gRPC ===

const PUT: &str = "/thermostat.v1.MetricsService/PutMetricData";
const STREAM: &str = "/thermostat.v1.MetricsService/StreamMetricData";

/// Sends bytes as they are; reads a `PutMetricDataResponse`'s `accepted_samples`.
#[derive(Clone, Copy, Debug, Default)]
struct Raw;

#[derive(Debug)]
struct RawEncoder;

#[derive(Debug)]
struct AcceptedDecoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for AcceptedDecoder {
    type Item = u64;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<u64>, Status> {
        let b = src.copy_to_bytes(src.remaining());
        // `accepted_samples = 1` (varint), or nothing for 0.
        match b.split_first() {
            None => Ok(Some(0)),
            Some((8, rest)) => Ok(Some(read_varint(rest))),
            _ => Err(Status::internal(format!("unexpected response {b:?}"))),
        }
    }
}

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = u64;
    type Encoder = RawEncoder;
    type Decoder = AcceptedDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> AcceptedDecoder {
        AcceptedDecoder
    }
}

fn read_varint(b: &[u8]) -> u64 {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            break;
        }
    }
    v
}

async fn raw_grpc(server: &TestServer) -> tonic::client::Grpc<tonic::transport::Channel> {
    let channel =
        tonic::transport::Channel::from_shared(format!("http://{}", server.running.grpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
    tonic::client::Grpc::new(channel)
}

async fn put_raw(
    grpc: &mut tonic::client::Grpc<tonic::transport::Channel>,
    bytes: Vec<u8>,
) -> Result<u64, Status> {
    grpc.ready().await.unwrap();
    grpc.unary(Request::new(bytes), PathAndQuery::from_static(PUT), Raw)
        .await
        .map(tonic::Response::into_inner)
}

// === Hand-made protobuf ===

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(field: u32, wire: u8, out: &mut Vec<u8>) {
    varint((u64::from(field) << 3) | u64::from(wire), out);
}

fn len_delimited(field: u32, body: &[u8], out: &mut Vec<u8>) {
    key(field, LEN, out);
    varint(body.len() as u64, out);
    out.extend_from_slice(body);
}

fn double(field: u32, v: f64, out: &mut Vec<u8>) {
    key(field, FIXED64, out);
    out.extend_from_slice(&v.to_le_bytes());
}

/// Where a hostile fragment goes.
#[derive(Clone, Copy, Debug)]
enum Place {
    Top,
    Datum,
    Dimension,
    StatisticSet,
}

const PLACES: [Place; 4] = [
    Place::Top,
    Place::Datum,
    Place::Dimension,
    Place::StatisticSet,
];

/// A valid request (`Test/Hostile` / `Latency` {Host=a}, a statistic set of 2 samples, now)
/// with `fragment` inside the message at `at`, between valid fields.
fn request_with(at: Place, fragment: &[u8]) -> Vec<u8> {
    let with = |mine: bool, before: Vec<u8>, after: Vec<u8>| {
        let mut m = before;
        if mine {
            m.extend_from_slice(fragment);
        }
        m.extend_from_slice(&after);
        m
    };
    let (mut name, mut value) = (Vec::new(), Vec::new());
    len_delimited(1, b"Host", &mut name);
    len_delimited(2, b"a", &mut value);
    let dimension = with(matches!(at, Place::Dimension), name, value);
    let (mut count, mut rest) = (Vec::new(), Vec::new());
    double(1, 2.0, &mut count);
    double(2, 3.0, &mut rest);
    double(3, 1.0, &mut rest);
    double(4, 2.0, &mut rest);
    let set = with(matches!(at, Place::StatisticSet), count, rest);
    let (mut head, mut tail) = (Vec::new(), Vec::new());
    len_delimited(1, b"Latency", &mut head);
    len_delimited(2, &dimension, &mut head);
    key(3, VARINT, &mut tail);
    varint(now_ms() as u64, &mut tail);
    len_delimited(5, &set, &mut tail);
    let datum = with(matches!(at, Place::Datum), head, tail);
    let (mut ns, mut data) = (Vec::new(), Vec::new());
    len_delimited(1, b"Test/Hostile", &mut ns);
    len_delimited(2, &datum, &mut data);
    with(matches!(at, Place::Top), ns, data)
}

/// `size` bytes of START_GROUP tags of one unknown field (the probe's bomb).
fn group_bomb(size: usize) -> Vec<u8> {
    let mut tag = Vec::new();
    key(15, START_GROUP, &mut tag);
    tag.repeat(size / tag.len())
}

use super::procfs::thread_cpu_seconds;

// === Tests ===

/// Finding 1: nested START_GROUP tags from 27 KB (which overflowed the stack and aborted the
/// process) to 1 MB, at the top level, in a datum, a dimension and a statistic set, and as
/// the second message of a stream: INVALID_ARGUMENT naming the nesting limit, and the server
/// keeps serving. The work is bounded: linear in the bytes, measured as CPU time.
#[tokio::test]
async fn regression_15_group_bombs_are_invalid_argument_and_the_server_keeps_serving() {
    let server = TestServer::start().await;
    let mut grpc = raw_grpc(&server).await;
    // A valid request of every shape is accepted first: the places are really read.
    for at in PLACES {
        assert_eq!(put_raw(&mut grpc, request_with(at, &[])).await.unwrap(), 2);
    }
    let cpu_before = thread_cpu_seconds();
    let mut bomb_bytes = 0usize;
    for size in [27_000usize, 100_000, 1_000_000] {
        for at in PLACES {
            let body = request_with(at, &group_bomb(size));
            bomb_bytes += body.len();
            let e = put_raw(&mut grpc, body).await.unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{at:?} {size}: {e:?}");
            assert!(
                e.message().contains("nested more than 100 levels"),
                "{at:?} {size}: {}",
                e.message()
            );
            assert!(e.message().len() < 512, "{}", e.message().len());
        }
    }
    let cpu = thread_cpu_seconds() - cpu_before;
    // About 4.5 MB of bombs. A reader that recursed would have crashed; one that rescanned
    // would cost minutes. This one stops at the 101st level, and the whole exchange (both
    // ends of the connection, debug build) measured 0.05 s.
    assert!(
        cpu < 2.0,
        "{cpu} s of CPU for {bomb_bytes} bytes of group bombs"
    );

    // As a later message of a stream: the first is stored, the bomb refused by its index.
    for at in PLACES {
        grpc.ready().await.unwrap();
        let messages = vec![
            request_with(at, &[]),
            request_with(at, &group_bomb(1_000_000)),
        ];
        let mut answers = grpc
            .streaming(
                Request::new(tokio_stream::iter(messages)),
                PathAndQuery::from_static(STREAM),
                Raw,
            )
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answers.message().await.unwrap(), Some(2), "{at:?}");
        let e = answers.message().await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{at:?}: {e:?}");
        assert!(
            e.message().starts_with("request 1 of the stream")
                && e.message().contains("nested more than 100 levels"),
            "{at:?}: {}",
            e.message()
        );
    }

    // Still serving: a normal push through the generated client.
    let accepted = server
        .client()
        .await
        .put_metric_data(request(
            "Test/Hostile",
            vec![value_datum("Latency", &[("Host", "a")], now_ms(), 1.0)],
        ))
        .await
        .unwrap()
        .into_inner()
        .accepted_samples;
    assert_eq!(accepted, 1);
}

/// Finding 12: a 100 KB value in any string field is INVALID_ARGUMENT (not the
/// RESOURCE_EXHAUSTED of a status too large for its header) with a short message naming the
/// field; where the value is quoted, only a bounded prefix is.
#[tokio::test]
async fn regression_15_long_values_in_errors_are_bounded() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let long = "x".repeat(100_000);
    let datum = || value_datum("Latency", &[("Host", "a")], now_ms(), 1.0);
    let cases: Vec<(&str, MetricDatum, &str, &str)> = vec![
        (
            "unit",
            MetricDatum {
                unit: long.clone(),
                ..datum()
            },
            "metric_data[0].unit",
            "…(100000 bytes)",
        ),
        (
            "dimension value",
            MetricDatum {
                dimensions: dims(&[("Host", &long)]),
                ..datum()
            },
            "metric_data[0].dimensions[0].value",
            "1024",
        ),
        (
            "metric name",
            MetricDatum {
                metric_name: long.clone(),
                ..datum()
            },
            "metric_data[0].metric_name",
            "255",
        ),
        (
            "duplicate dimension name",
            MetricDatum {
                dimensions: dims(&[(&long, "a"), (&long, "b")]),
                ..datum()
            },
            "metric_data[0].dimensions[1].name",
            "…(100000 bytes)",
        ),
    ];
    for (what, d, field, quoted) in cases {
        let e = client
            .put_metric_data(request("Test/Hostile", vec![d]))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
        assert!(e.message().contains(field), "{what}: {}", e.message());
        assert!(e.message().contains(quoted), "{what}: {}", e.message());
        assert!(
            e.message().len() < 512,
            "{what}: {} bytes",
            e.message().len()
        );
    }
    let e = client
        .put_metric_data(request(&long, vec![datum()]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("namespace:"), "{}", e.message());
    assert!(e.message().len() < 512);
}

/// Finding 12: a datum counts at most 2^53 samples (a statistic set's sample_count, or the
/// sum of counts); beyond, INVALID_ARGUMENT naming the field. At the bound, a full request's
/// accepted_samples is exact, never saturated.
#[tokio::test]
async fn regression_15_sample_counts_are_bounded_and_never_saturate() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let set = |n: f64| MetricDatum {
        metric_name: "Requests".into(),
        timestamp_ms: now_ms(),
        statistic_values: Some(StatisticSet {
            sample_count: n,
            sum: 1.0,
            minimum: 0.0,
            maximum: 1.0,
        }),
        ..Default::default()
    };
    let e = client
        .put_metric_data(request("Test/Hostile", vec![set(2f64.powi(360))]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message()
            .starts_with("metric_data[0].statistic_values.sample_count: ")
            && e.message().contains("2^53"),
        "{}",
        e.message()
    );
    let counts = MetricDatum {
        metric_name: "Requests".into(),
        timestamp_ms: now_ms(),
        values: vec![1.0, 2.0],
        counts: vec![1.5 * 2f64.powi(52), 1.5 * 2f64.powi(52)],
        ..Default::default()
    };
    let e = client
        .put_metric_data(request("Test/Hostile", vec![counts]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().starts_with("metric_data[0].counts: "),
        "{}",
        e.message()
    );
    // 1,000 datums of 2^53 samples each: exactly 1000 × 2^53 accepted.
    let r = client
        .put_metric_data(request("Test/Hostile", vec![set(2f64.powi(53)); 1000]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.accepted_samples, 1000 * (1u64 << 53));
}

/// A datum of 30 dimensions with 1,024-character values: a series key of about 38 KB.
fn heavy_datum(i: usize) -> MetricDatum {
    let value = format!("{i:0>1024}");
    let pairs: Vec<(String, String)> = (0..30).map(|d| (format!("D{d}"), value.clone())).collect();
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    value_datum("Heavy", &pairs, now_ms(), 1.0)
}

/// Finding 7: series are weighed, not only counted. With `--max-series-bytes` of 2 MiB,
/// series of about 38 KB each are refused with RESOURCE_EXHAUSTED naming the flag once the
/// weight is reached, far below `--max-series`; existing series keep accepting data.
#[tokio::test]
async fn regression_15_series_are_weighed_against_max_series_bytes() {
    const LIMIT: u64 = 2 << 20;
    let server = TestServer::start_with(|s| s.max_series_bytes = LIMIT).await;
    let mut client = server.client().await;
    let mut created = 0;
    let refusal = loop {
        match client
            .put_metric_data(request("Test/Heavy", vec![heavy_datum(created)]))
            .await
        {
            Ok(_) => created += 1,
            Err(e) => break e,
        }
        assert!(created < 1000, "never refused");
    };
    assert_eq!(refusal.code(), Code::ResourceExhausted, "{refusal:?}");
    assert!(
        refusal.message().contains("--max-series-bytes"),
        "{}",
        refusal.message()
    );
    // Each weighs over 30 × 1,024 bytes: at most LIMIT / 30 KiB fit, and some did.
    assert!(created >= 10, "{created}");
    assert!(created as u64 <= LIMIT / (30 * 1024), "{created}");
    // Existing series keep working.
    for i in [0, created - 1] {
        let r = client
            .put_metric_data(request("Test/Heavy", vec![heavy_datum(i)]))
            .await
            .unwrap();
        assert_eq!(r.into_inner().accepted_samples, 1);
    }
    let listed = client
        .list_metrics(ListMetricsRequest {
            namespace: "Test/Heavy".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let total: usize = {
        let mut n = listed.metrics.len();
        let mut token = listed.next_token;
        while !token.is_empty() {
            let page = client
                .list_metrics(ListMetricsRequest {
                    namespace: "Test/Heavy".into(),
                    next_token: token,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            n += page.metrics.len();
            token = page.next_token;
        }
        n
    };
    assert_eq!(total, created);
}

/// Every series of `namespace` through ListMetrics pages of `max_records`, asserting each
/// page's size.
async fn list_all(server: &TestServer, namespace: &str, max_records: i32) -> Vec<String> {
    let mut client = server.client().await;
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_metrics(ListMetricsRequest {
                namespace: namespace.into(),
                metric_name: String::new(),
                next_token: token,
                max_records,
                active_within_seconds: 0,
            })
            .await
            .unwrap()
            .into_inner();
        let max = if max_records == 0 { 500 } else { max_records };
        assert!(page.metrics.len() <= max as usize);
        out.extend(page.metrics.iter().map(|m| {
            format!(
                "{}/{}{:?}",
                m.namespace,
                m.metric_name,
                m.dimensions
                    .iter()
                    .map(|d| (&d.name, &d.value))
                    .collect::<Vec<_>>()
            )
        }));
        token = page.next_token;
        if token.is_empty() {
            return out;
        }
        assert!(!page.metrics.is_empty(), "a page with a token holds series");
    }
}

/// Finding 7: pushes admitted at the same time cannot overshoot `--max-series` (nor
/// `--max-series-per-namespace`): each reserves its new series at admission, under one lock,
/// until it is applied. 16 clients push batches of 10 new series concurrently until refused;
/// the store ends at most at the limit (the stated bound: no overshoot), and near it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_15_concurrent_pushes_do_not_overshoot_max_series() {
    const MAX: usize = 1000;
    const PER_NAMESPACE: usize = 300;
    const CLIENTS: usize = 16;
    const BATCH: usize = 10;
    let server = TestServer::start_with(|s| {
        s.max_series = MAX;
        s.max_series_per_namespace = Some(PER_NAMESPACE + 200);
    })
    .await;
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mut client = server.client().await;
        tasks.push(tokio::spawn(async move {
            let (mut accepted, mut refusals, mut n) = (0usize, 0, 0usize);
            // Three refusals in a row end a client: by then the limit is reached.
            while refusals < 3 {
                let ns = format!("Test/Race{}", c % 4);
                let data = (0..BATCH)
                    .map(|i| {
                        let host = format!("c{c}-{}", n + i);
                        value_datum("Cpu", &[("Host", &host)], now_ms(), 1.0)
                    })
                    .collect();
                n += BATCH;
                match client.put_metric_data(request(&ns, data)).await {
                    Ok(_) => {
                        accepted += BATCH;
                        refusals = 0;
                    }
                    Err(e) => {
                        assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
                        assert!(e.message().contains("--max-series"), "{}", e.message());
                        refusals += 1;
                    }
                }
            }
            accepted
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += t.await.unwrap();
    }
    let listed = list_all(&server, "", 0).await;
    assert_eq!(listed.len(), accepted, "every accepted series is stored");
    assert!(listed.len() <= MAX, "overshoot: {} series", listed.len());
    assert!(
        listed.len() > MAX - CLIENTS * BATCH,
        "{} series",
        listed.len()
    );
    for ns in 0..4 {
        let n = list_all(&server, &format!("Test/Race{ns}"), 0).await.len();
        assert!(n <= PER_NAMESPACE + 200, "namespace {ns}: {n}");
    }
}

/// Finding 7: ListMetrics and `GET /api/v1/metrics` answer a page at a time (500 at most,
/// and about 1 MiB), with a next_token while more remain; paging lists each series exactly
/// once. Out-of-range max_records and foreign tokens are refused naming the field.
#[tokio::test]
async fn regression_15_listings_are_paged() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let total = 2345;
    for chunk in (0..total).collect::<Vec<_>>().chunks(1000) {
        let data = chunk
            .iter()
            .map(|i| {
                value_datum(
                    &format!("M{}", i % 7),
                    &[("Host", &format!("h{i}"))],
                    now_ms(),
                    1.0,
                )
            })
            .collect();
        client
            .put_metric_data(request("Test/Pages", data))
            .await
            .unwrap();
    }
    // gRPC, default and small pages.
    for max_records in [0, 500, 7] {
        let all = list_all(&server, "Test/Pages", max_records).await;
        assert_eq!(all.len(), total, "max_records {max_records}");
        assert_eq!(all.iter().collect::<HashSet<_>>().len(), total, "each once");
    }
    for (bad, field) in [(501, "max_records"), (-1, "max_records")] {
        let e = client
            .list_metrics(ListMetricsRequest {
                max_records: bad,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().starts_with(field), "{}", e.message());
    }
    let e = client
        .list_metrics(ListMetricsRequest {
            next_token: "x".repeat(100_000),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("next_token"), "{}", e.message());
    assert!(e.message().len() < 512);

    // HTTP, the same series.
    let http = reqwest::Client::new();
    let mut seen = HashSet::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = server.http("/api/v1/metrics?namespace=Test/Pages");
        if let Some(t) = &token {
            url.push_str(&format!("&next_token={t}"));
        }
        let body: serde_json::Value = http.get(url).send().await.unwrap().json().await.unwrap();
        let metrics = body["metrics"].as_array().unwrap();
        assert!(metrics.len() <= 500);
        for m in metrics {
            assert!(seen.insert(m.to_string()), "listed twice: {m}");
        }
        pages += 1;
        match body["next_token"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), total);
    assert_eq!(pages, 5);
    for q in [
        "max_records=0",
        "max_records=501",
        "max_records=x",
        "next_token=zz",
    ] {
        let r = http
            .get(server.http(&format!("/api/v1/metrics?{q}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{q}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            body["error"]["field"],
            q.split('=').next().unwrap(),
            "{q}: {body}"
        );
    }
}

/// Finding 7: series with the largest keys (30 dimensions of 1,024 characters, about 38 KB
/// each) page by size too: no page exceeds about 1 MiB, so a client with gRPC's default
/// 4 MiB message limit reads them all (the probe's OUT_OF_RANGE), and so does HTTP.
#[tokio::test]
async fn regression_15_pages_of_large_series_stay_small() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let total = 150;
    for i in 0..total {
        client
            .put_metric_data(request("Test/Heavy", vec![heavy_datum(i)]))
            .await
            .unwrap();
    }
    let mut token = String::new();
    let (mut listed, mut pages) = (0, 0);
    loop {
        let page = client
            .list_metrics(ListMetricsRequest {
                namespace: "Test/Heavy".into(),
                next_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let bytes: usize = page
            .metrics
            .iter()
            .flat_map(|m| &m.dimensions)
            .map(|d| d.name.len() + d.value.len())
            .sum();
        assert!(bytes <= 1 << 20, "{bytes}");
        listed += page.metrics.len();
        pages += 1;
        token = page.next_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(listed, total);
    assert!(pages >= 5, "{pages} pages for about 5.7 MB of series");
    let body: serde_json::Value = reqwest::get(server.http("/api/v1/metrics?namespace=Test/Heavy"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body["metrics"].as_array().unwrap().len() < total);
    assert!(body["next_token"].is_string());
}
