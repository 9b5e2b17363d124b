//! Remote-write requests built by hand from the specification's protobufs: the 2.0 path
//! (which neither installed sender speaks: Prometheus 2.42, vmagent 1.79) and bad input.

use std::collections::BTreeMap;

use prost::Message as _;

use super::wire::{self, V1_CONTENT_TYPE, V2_CONTENT_TYPE, snappy, v1, v2};
use super::{Reader, Window, in_bucket, listed, stats};
use crate::util::{TestServer, now_ms};

/// A remote write 2.0 request: symbols, metadata types, a native histogram (two cumulative
/// samples: the second's increase is what is stored), an exemplar.
fn v2_request(t0: i64) -> v2::Request {
    let symbols: Vec<String> = [
        "",
        "__name__",
        "rpc_duration_seconds",
        "job",
        "payments",
        "route",
        "/pay",
        "queue_depth",
        "payments_processed",
        "trace_id",
        "abc123",
        "Seconds spent.",
    ]
    .map(String::from)
    .to_vec();
    let meta = |kind| {
        Some(v2::Metadata {
            r#type: kind,
            help_ref: 0,
            unit_ref: 0,
        })
    };
    let sample = |timestamp, value| v2::Sample { value, timestamp };
    v2::Request {
        symbols,
        timeseries: vec![
            // Schema 0: bucket 1 is (1, 2], bucket 3 is (4, 8]. Counts 2, 1 then 12, 11: the
            // increase is 10 in each.
            v2::TimeSeries {
                labels_refs: vec![1, 2, 3, 4, 5, 6],
                histograms: vec![
                    v2::schema0(t0, &[0, 2, 0, 1], 2.0 * 1.5 + 6.0),
                    v2::schema0(t0 + 15_000, &[0, 12, 0, 11], 12.0 * 1.5 + 11.0 * 6.0),
                ],
                metadata: Some(v2::Metadata {
                    r#type: v2::HISTOGRAM,
                    help_ref: 11,
                    unit_ref: 0,
                }),
                ..Default::default()
            },
            v2::TimeSeries {
                labels_refs: vec![1, 7, 3, 4, 5, 6],
                samples: vec![
                    sample(t0, 3.0),
                    sample(t0 + 15_000, 7.0),
                    sample(t0 + 30_000, 5.0),
                ],
                metadata: meta(v2::GAUGE),
                ..Default::default()
            },
            // A counter by its metadata type alone (no counter suffix).
            v2::TimeSeries {
                labels_refs: vec![1, 8, 3, 4, 5, 6],
                samples: vec![
                    sample(t0, 100.0),
                    sample(t0 + 15_000, 104.0),
                    sample(t0 + 30_000, 110.0),
                ],
                exemplars: vec![v2::Exemplar {
                    labels_refs: vec![9, 10],
                    value: 1.0,
                    timestamp: t0 + 30_000,
                }],
                metadata: meta(v2::COUNTER),
                ..Default::default()
            },
        ],
    }
}

#[tokio::test]
async fn remote_write_2_with_a_native_histogram() {
    let server = TestServer::start().await;
    let reader = Reader::open(&server);
    let w = Window::around_now();
    let t0 = now_ms() - 60_000;
    let body = snappy(&v2_request(t0).encode_to_vec());
    let (status, headers, text) =
        wire::post(&server.http("/api/v1/write"), V2_CONTENT_TYPE, body).await;
    assert!(
        status == 204 || status == 200,
        "remote write 2.0: {status} {text}"
    );
    let written = |h: &str| -> u64 {
        let name = format!("X-Prometheus-Remote-Write-{h}-Written");
        headers
            .get(&name)
            .unwrap_or_else(|| panic!("no {name} header: {headers:?}"))
            .to_str()
            .unwrap()
            .parse()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    assert_eq!(written("Samples"), 6, "{headers:?}");
    assert_eq!(written("Histograms"), 2, "{headers:?}");
    assert!(written("Exemplars") <= 1, "{headers:?}");

    let route = [("route", "/pay")];
    let h = stats(
        &reader,
        w,
        "payments",
        "rpc_duration_seconds",
        &route,
        &["SampleCount", "Sum", "p50", "p90"],
    )
    .await
    .unwrap();
    assert_eq!(h["SampleCount"], 20.0, "the histogram's increase: {h:?}");
    assert!((h["Sum"] - (10.0 * 1.5 + 10.0 * 6.0)).abs() < 1e-9, "{h:?}");
    let p50 = h.get("p50").copied().unwrap_or(f64::NAN);
    let p90 = h.get("p90").copied().unwrap_or(f64::NAN);
    assert!(in_bucket(p50, 1.0, 2.0), "p50 {p50} not in (1, 2]: {h:?}");
    assert!(in_bucket(p90, 4.0, 8.0), "p90 {p90} not in (4, 8]: {h:?}");

    let g = stats(
        &reader,
        w,
        "payments",
        "queue_depth",
        &route,
        &["SampleCount", "Minimum", "Maximum", "Sum"],
    )
    .await
    .unwrap();
    assert_eq!(
        (g["SampleCount"], g["Minimum"], g["Maximum"], g["Sum"]),
        (3.0, 3.0, 7.0, 15.0),
        "the gauge's samples: {g:?}"
    );
    let c = stats(
        &reader,
        w,
        "payments",
        "payments_processed",
        &route,
        &["Sum"],
    )
    .await
    .unwrap();
    assert_eq!(
        c["Sum"], 10.0,
        "a counter by metadata: increases 4 + 6: {c:?}"
    );

    // An unknown content type: 415, naming what is supported.
    let (status, _, text) = wire::post(
        &server.http("/api/v1/write"),
        "application/x-protobuf;proto=io.prometheus.write.v3.Request",
        snappy(&v2_request(t0).encode_to_vec()),
    )
    .await;
    assert_eq!(status, 415, "{text}");
    assert!(
        text.contains("application/x-protobuf") && text.contains("io.prometheus.write.v2.Request"),
        "415 names the supported types: {text}"
    );
    let r = reqwest::Client::new()
        .post(server.http("/api/v1/write"))
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
}

/// A valid series sent along with every bad one: nothing of a refused request is stored.
fn innocent(t: i64) -> v1::TimeSeries {
    v1::series(
        &[("__name__", "innocent_gauge"), ("job", "badinput")],
        &[(t, 1.0)],
    )
}

fn encode_v1(series: Vec<v1::TimeSeries>) -> Vec<u8> {
    v1::WriteRequest { timeseries: series }.encode_to_vec()
}

#[tokio::test]
async fn bad_remote_write_requests_are_refused_whole() {
    let server = TestServer::start().await;
    let reader = Reader::open(&server);
    let url = server.http("/api/v1/write");
    let t = now_ms() - 10_000;

    let mut wide = vec![("__name__", "wide_gauge"), ("job", "badinput")];
    let names: Vec<String> = (0..31).map(|i| format!("label_{i:02}")).collect();
    wide.extend(names.iter().map(|n| (n.as_str(), "x")));

    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "a body that is not snappy",
            encode_v1(vec![
                innocent(t),
                v1::series(
                    &[("__name__", "plain_gauge"), ("job", "badinput")],
                    &[(t, 1.0)],
                ),
            ]),
            vec!["snappy"],
        ),
        (
            "a truncated protobuf",
            {
                let whole = encode_v1(vec![
                    innocent(t),
                    v1::series(
                        &[("__name__", "truncated_gauge"), ("job", "badinput")],
                        &[(t, 1.0), (t + 1000, 2.0)],
                    ),
                ]);
                snappy(&whole[..whole.len() - 5])
            },
            vec!["protobuf"],
        ),
        (
            "31 labels besides __name__ and job",
            snappy(&encode_v1(vec![
                innocent(t),
                v1::series(&wide, &[(t, 1.0)]),
            ])),
            vec!["wide_gauge", "at most 30"],
        ),
        (
            "an invalid label name",
            snappy(&encode_v1(vec![
                innocent(t),
                v1::series(
                    &[
                        ("__name__", "oddly_labelled"),
                        ("job", "badinput"),
                        ("1st-label", "x"),
                    ],
                    &[(t, 1.0)],
                ),
            ])),
            vec!["oddly_labelled", "1st-label"],
        ),
        (
            "a NaN that is not the staleness marker",
            snappy(&encode_v1(vec![
                innocent(t),
                v1::series(
                    &[("__name__", "nan_gauge"), ("job", "badinput")],
                    &[(t, f64::NAN)],
                ),
            ])),
            vec!["nan_gauge", "NaN"],
        ),
    ];
    for (what, body, words) in cases {
        let (status, _, text) = wire::post(&url, V1_CONTENT_TYPE, body).await;
        eprintln!("{what}: {status} {text}");
        assert!(
            (400..500).contains(&status) && status != 404 && status != 415,
            "{what}: want a 4xx refusal, got {status} {text}"
        );
        assert!(
            !text.trim().is_empty(),
            "{what}: {status} without a message"
        );
        for word in words {
            assert!(
                text.to_lowercase().contains(&word.to_lowercase()),
                "{what}: the message should name {word:?}: {status} {text}"
            );
        }
    }
    // Nothing of any of them is stored: not even the valid series sent with each.
    let stored = listed(&reader, "badinput").await;
    assert!(
        stored.is_empty(),
        "stored from refused requests: {stored:?}"
    );
    let stored = listed(&reader, "Prometheus").await;
    assert!(
        stored.is_empty(),
        "stored from refused requests: {stored:?}"
    );

    // The same valid series alone is stored (the check above can see it).
    let (status, _, text) =
        wire::post(&url, V1_CONTENT_TYPE, snappy(&encode_v1(vec![innocent(t)]))).await;
    assert!(status == 204 || status == 200, "{status} {text}");
    let stored = listed(&reader, "badinput").await;
    assert_eq!(
        stored,
        vec![("innocent_gauge".to_owned(), BTreeMap::new())],
        "the valid series alone"
    );
}
