//! Hostile CloudWatch API bodies (issue 21) against the real server: JSON nested far deeper
//! than the decoder's bound, a gzip bomb, a body over 1 MiB, a CBOR header declaring 4 GiB and
//! a Query form with a huge `member.N`. Each is answered in the protocol's error shape with a
//! 4xx naming the rule, and the server keeps serving. `verify_signatures: false` (loopback) so
//! that the bodies reach the decoder.

use std::io::Write as _;

use crate::util::TestServer;

const JSON: &str = "application/x-amz-json-1.0";

async fn json(server: &TestServer, op: &str, body: Vec<u8>, gzip: bool) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(server.http("/"))
        .header("content-type", JSON)
        .header(
            "x-amz-target",
            format!("GraniteServiceVersion20100801.{op}"),
        );
    if gzip {
        req = req.header("content-encoding", "gzip");
    }
    let resp = req.body(body).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn hostile_cloudwatch_bodies_get_clear_errors_and_the_server_keeps_serving() {
    let server = TestServer::start_with(|s| s.aws_api.verify_signatures = false).await;
    // JSON nested 10,000 deep.
    let deep = format!(
        "{{\"Namespace\":{}1{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let (status, body) = json(&server, "ListMetrics", deep.into_bytes(), false).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_lowercase().contains("depth"), "{body}");
    // A gzip bomb: 64 MiB of spaces in a few KiB.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&vec![b' '; 64 << 20]).unwrap();
    let bomb = e.finish().unwrap();
    assert!(bomb.len() < 1 << 20);
    let (status, body) = json(&server, "ListMetrics", bomb, true).await;
    assert!((400..500).contains(&status), "{status}: {body}");
    // Over the 1 MiB body bound.
    let (status, _) = json(&server, "ListMetrics", vec![b' '; 2 << 20], false).await;
    assert_eq!(status, 413);
    // CBOR: a map header declaring 2^32 entries.
    let resp = reqwest::Client::new()
        .post(server.http("/service/GraniteServiceVersion20100801/operation/ListMetrics"))
        .header("content-type", "application/cbor")
        .header("smithy-protocol", "rpc-v2-cbor")
        .body(vec![0xbb, 0, 0, 0, 1, 0, 0, 0, 0])
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert_eq!(resp.headers()["smithy-protocol"], "rpc-v2-cbor");
    // Query: a list index far beyond the bound.
    let resp = reqwest::Client::new()
        .post(server.http("/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Action=PutMetricData&Version=2010-08-01&Namespace=N&MetricData.member.99999999.MetricName=x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.contains("<ErrorResponse"), "{text}");
    // Still serving.
    let (status, body) = json(&server, "ListMetrics", b"{}".to_vec(), false).await;
    assert_eq!(status, 200, "{body}");
}
