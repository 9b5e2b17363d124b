//! Hostile Prometheus input (issue 20) against the real server: remote-write bodies that
//! declare huge sizes, exceed the body limit or carry too many series or too long labels, and
//! PromQL queries nested beyond any parser's stack or with regexes built to explode. Each is a
//! 4xx naming the limit; the server's resident memory stays bounded while it refuses them.

use prost::Message as _;
use thermostat_prometheus::proto::{Label, Sample, TimeSeries, WriteRequest};

use super::procfs::rss_bytes;
use crate::process::ServerProcess;
use crate::util::now_ms;

/// POSTs `body` as a remote write 1.0 request; the status and the body of the answer.
async fn post(url: &str, body: Vec<u8>) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn snappy(bytes: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(bytes).unwrap()
}

fn one_series(labels: Vec<Label>) -> TimeSeries {
    TimeSeries {
        labels,
        samples: vec![Sample {
            value: 1.0,
            timestamp: now_ms() - 60_000,
        }],
        ..Default::default()
    }
}

fn label(name: &str, value: &str) -> Label {
    Label {
        name: name.into(),
        value: value.into(),
    }
}

#[tokio::test]
async fn hostile_remote_writes_are_refused_by_their_limits_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    let url = format!("http://{}/api/v1/write", server.http);
    let pid = server.child.id();
    let before = rss_bytes(pid);

    // A snappy header declaring 4 GiB (varint 0x80 0x80 0x80 0x80 0x10) and a few bytes: a
    // decompression bomb is refused before anything is inflated, 50 times over.
    let mut bomb = vec![0x80, 0x80, 0x80, 0x80, 0x10];
    bomb.extend_from_slice(&[0u8; 64]);
    for _ in 0..50 {
        let (status, body) = post(&url, bomb.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("snappy"), "{body}");
    }
    // More than the compressed body limit (16 MiB): refused before it is all read (a client
    // still sending may see the connection closed instead of the 413).
    let sent = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .body(vec![0u8; 17 << 20])
        .send()
        .await;
    if let Ok(resp) = sent {
        assert_eq!(resp.status().as_u16(), 413);
    }
    // 100,001 series: over the per-request count, checked on the wire before decoding.
    let many = WriteRequest {
        timeseries: (0..100_001)
            .map(|i| one_series(vec![label("__name__", &format!("m{i}"))]))
            .collect(),
        ..Default::default()
    };
    let (status, body) = post(&url, snappy(&many.encode_to_vec())).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("100000"), "the limit is named: {body}");
    // A label value of 1 MiB: over the 16 KiB bound.
    let long = WriteRequest {
        timeseries: vec![one_series(vec![
            label("__name__", "x"),
            label("path", &"a".repeat(1 << 20)),
        ])],
        ..Default::default()
    };
    let (status, body) = post(&url, snappy(&long.encode_to_vec())).await;
    assert_eq!(status, 400, "{body}");
    // 200 labels on one series: over the 128 a series may carry.
    let wide = WriteRequest {
        timeseries: vec![one_series(
            std::iter::once(label("__name__", "x"))
                .chain((0..200).map(|i| label(&format!("l{i}"), "v")))
                .collect(),
        )],
        ..Default::default()
    };
    let (status, body) = post(&url, snappy(&wide.encode_to_vec())).await;
    assert_eq!(status, 400, "{body}");

    let grown = rss_bytes(pid).saturating_sub(before);
    assert!(
        grown < 256 << 20,
        "resident memory grew by {} MiB refusing hostile bodies",
        grown >> 20
    );
    // Still serving.
    let (status, body) = post(
        &url,
        snappy(
            &WriteRequest {
                timeseries: vec![one_series(vec![label("__name__", "ok"), label("job", "h")])],
                ..Default::default()
            }
            .encode_to_vec(),
        ),
    )
    .await;
    assert_eq!(status, 204, "{body}");
}

#[tokio::test]
async fn hostile_promql_is_bad_data_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    let query = |q: String| {
        let url = format!("http://{}/api/v1/query", server.http);
        async move {
            let resp = reqwest::Client::new()
                .post(url)
                .form(&[("query", q)])
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let v: serde_json::Value = resp.json().await.unwrap();
            (status, v)
        }
    };
    for (q, word) in [
        // Nested far beyond any recursive parser's stack, within the text bound.
        (
            format!("{}1{}", "(".repeat(30_000), ")".repeat(30_000)),
            "nest",
        ),
        // A flat chain of 10,000 operators: each counts one level.
        (vec!["up"; 10_000].join("+"), "nest"),
        (
            format!(
                "sum(sum({}up{}))",
                "sum(".repeat(12_000),
                ")".repeat(12_000)
            ),
            "nest",
        ),
        // A short regex that compiles to a huge program: over the compiled-size bound.
        (
            "up{path=~\"((a{100}){100}){100}\"}".to_owned(),
            "regular expression",
        ),
        // A regex text over its bound (4 KiB).
        (
            format!("up{{path=~\"{}\"}}", "(a+)+".repeat(1_000)),
            "regular expression",
        ),
        // Over the query text bound (64 KiB).
        (format!("up{{path=\"{}\"}}", "a".repeat(1 << 20)), "65536"),
    ] {
        let head: String = q.chars().take(40).collect();
        let (status, v) = query(q).await;
        assert_eq!(status, 400, "{head}…: {v}");
        assert_eq!(v["errorType"], "bad_data", "{v}");
        let error = v["error"].as_str().unwrap().to_lowercase();
        assert!(error.contains(word), "{word:?} in {error}");
    }
    let (status, v) = query("1+1".into()).await;
    assert_eq!((status, &v["data"]["result"][1]), (200, &"2".into()), "{v}");
}
