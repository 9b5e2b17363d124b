//! Connections and transport (issue 15, findings 2–4): stalled large messages on many HTTP/2
//! streams, idle `StreamMetricData` streams, idle and half-open connections, and descriptor
//! exhaustion. Each test asserts the outcome and the resource bound (RSS and CPU time from
//! `/proc`, statuses, counts).

use std::future::{Future as _, poll_fn};
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use thermostat_proto::v1::PutMetricDataRequest;
use thermostat_proto::v1::metrics_service_client::MetricsServiceClient;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tonic::codegen::http;

use crate::process::ServerProcess;
use crate::util::{TestServer, now_ms, request, value_datum};

const PUT: &str = "/thermostat.v1.MetricsService/PutMetricData";
const STREAM: &str = "/thermostat.v1.MetricsService/StreamMetricData";

use super::procfs::{cpu_seconds, open_fds, rss_bytes};

// === raw HTTP/2 ===

/// A raw HTTP/2 connection and the server's SETTINGS_MAX_CONCURRENT_STREAMS.
async fn h2_connect(addr: &str) -> (h2::client::SendRequest<Bytes>, usize) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, mut conn) = h2::client::handshake(tcp).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut tx = Some(tx);
        let _ = poll_fn(|cx| {
            let r = Pin::new(&mut conn).poll(cx);
            // Until the server's SETTINGS arrive, the limit reads as unlimited.
            if conn.max_concurrent_send_streams() != usize::MAX
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(conn.max_concurrent_send_streams());
            }
            r
        })
        .await;
    });
    let mut client = client.ready().await.unwrap();
    // A ping-free way to get the SETTINGS: the first request makes the server answer them.
    let (response, _) = client
        .send_request(grpc_request("/no.Such/Method"), true)
        .unwrap();
    let _ = response.await;
    let max = tokio::time::timeout(Duration::from_secs(30), rx)
        .await
        .unwrap()
        .unwrap();
    (client, max)
}

fn grpc_request(path: &str) -> http::Request<()> {
    http::Request::post(format!("http://thermostat{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

/// A gRPC message frame: the 5-byte header declaring `len`, then `len` zero bytes.
fn grpc_frame(len: usize) -> Bytes {
    let mut frame = vec![0u8; 5 + len];
    frame[1..5].copy_from_slice(&u32::try_from(len).unwrap().to_be_bytes());
    Bytes::from(frame)
}

/// Opens a call on `path` and sends `data` without ending the request; the stream is kept
/// open by the returned handle.
async fn send_partial(
    client: &mut h2::client::SendRequest<Bytes>,
    path: &str,
    data: Bytes,
) -> (h2::client::ResponseFuture, h2::SendStream<Bytes>) {
    let mut ready = client.clone().ready().await.unwrap();
    let (response, mut send) = ready.send_request(grpc_request(path), false).unwrap();
    send.send_data(data, false).unwrap();
    (response, send)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The gRPC status of a raw call (from a trailers-only response or the trailers).
async fn grpc_status(response: h2::client::ResponseFuture) -> (i32, String) {
    let response = response.await.unwrap();
    let from = |h: &http::HeaderMap| {
        h.get("grpc-status").map(|s| {
            let code = s.to_str().unwrap().parse().unwrap();
            let message = h
                .get("grpc-message")
                .map(|m| percent_decode(m.to_str().unwrap()))
                .unwrap_or_default();
            (code, message)
        })
    };
    if let Some(status) = from(response.headers()) {
        return status;
    }
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let trailers = body.trailers().await.unwrap().expect("trailers");
    from(&trailers).expect("grpc-status in the trailers")
}

// === Finding 2: stalled large messages ===

/// 3 connections × 30 streams, each sending all but the last KiB of a 15 MB request (once:
/// 1.35 GB held, 15 MB per stream), against a server with a 32 MiB budget: the server's RSS
/// grows by at most the budget plus a slack of 3 × 1 MiB (HTTP/2 connection windows) and
/// 21 MiB (allocator and per-stream state); streams beyond the budget get RESOURCE_EXHAUSTED,
/// the stalled ones DEADLINE_EXCEEDED after the body timeout, and the server then takes a
/// 15 MB request whole again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_large_messages_stay_within_the_buffered_bytes_limit() {
    const BUDGET: u64 = 32 << 20;
    const SLACK: u64 = 24 << 20;
    const MESSAGE: usize = 15_000_000;
    let data = tempfile::tempdir().unwrap();
    // Two malloc arenas: what is measured is the server's accounting, so the allocator's share
    // of the growth is kept small (one CI run with glibc's default arenas grew by 58 MiB,
    // over the bound, where runs here grow by 36-44 MiB, also with the CPUs loaded; the cause
    // of that run's growth was not found).
    let server = ServerProcess::start_with_env(
        data.path(),
        &[
            "--max-buffered-request-bytes",
            &BUDGET.to_string(),
            "--request-body-timeout-seconds",
            "4",
            "--max-concurrent-streams-per-connection",
            "40",
        ],
        &[("MALLOC_ARENA_MAX", "2")],
    );
    let pid = server.child.id();
    let t = now_ms();
    server
        .client()
        .await
        .put_metric_data(request("Stall", vec![value_datum("warm", &[], t, 1.0)]))
        .await
        .unwrap();
    let frame = grpc_frame(MESSAGE);
    let stalled = frame.slice(..frame.len() - 1024);

    let mut connections = Vec::new();
    for _ in 0..3 {
        let (client, max_streams) = h2_connect(&server.grpc).await;
        assert_eq!(max_streams, 40, "SETTINGS_MAX_CONCURRENT_STREAMS");
        connections.push(client);
    }
    let baseline = rss_bytes(pid);

    // A stream whose first message stalls: the timeout applies per message.
    let (stream_response, stream_send) =
        send_partial(&mut connections[0], STREAM, stalled.slice(..100_000)).await;
    let mut calls = JoinSet::new();
    calls.spawn(async move { (true, grpc_status(stream_response).await) });
    let mut open = vec![stream_send];
    for client in &mut connections {
        for _ in 0..30 {
            let (response, send) = send_partial(client, PUT, stalled.clone()).await;
            open.push(send);
            calls.spawn(async move { (false, grpc_status(response).await) });
        }
    }

    let mut peak = baseline;
    let mut statuses = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !calls.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "every stalled call is answered"
        );
        peak = peak.max(rss_bytes(pid));
        if let Ok(Some(done)) =
            tokio::time::timeout(Duration::from_millis(20), calls.join_next()).await
        {
            statuses.push(done.unwrap());
        }
    }
    peak = peak.max(rss_bytes(pid));
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "RSS: baseline {} MiB, peak {} MiB, growth {} MiB (budget {} MiB)",
        baseline >> 20,
        peak >> 20,
        growth >> 20,
        BUDGET >> 20
    );
    assert!(
        growth <= BUDGET + SLACK,
        "RSS grew by {growth} bytes, beyond the budget {BUDGET} + {SLACK}"
    );

    let (streams, unary): (Vec<_>, Vec<_>) = statuses.into_iter().partition(|(s, _)| *s);
    let (code, message) = &streams[0].1;
    assert_eq!(*code, 4, "the stalled stream message: {message}");
    assert!(
        message
            .contains("message was not received whole within 4 s (--request-body-timeout-seconds)"),
        "{message}"
    );
    let exhausted = unary.iter().filter(|(_, (c, _))| *c == 8).count();
    let timed_out = unary.iter().filter(|(_, (c, _))| *c == 4).count();
    assert_eq!(exhausted + timed_out, 90, "statuses: {unary:?}");
    assert!(exhausted >= 80, "most streams do not fit: {exhausted}");
    assert!(
        timed_out >= 1,
        "the streams that fit were stalled and timed out"
    );
    for (_, (code, message)) in &unary {
        let flag = if *code == 8 {
            "--max-buffered-request-bytes"
        } else {
            "--request-body-timeout-seconds"
        };
        assert!(message.contains(flag), "{message}");
    }
    drop(open);

    // The budget is free again: a 15 MB request arrives whole (and is refused for what it is,
    // zeros are no valid request) and a normal push is stored.
    let (mut client, _) = h2_connect(&server.grpc).await;
    let mut ready = client.clone().ready().await.unwrap();
    let (response, mut send) = ready.send_request(grpc_request(PUT), false).unwrap();
    send.send_data(frame.clone(), true).unwrap();
    let (code, message) = grpc_status(response).await;
    assert_eq!(
        code, 3,
        "a whole 15 MB request is read and validated: {message}"
    );
    let _ = &mut client;
    let accepted = server
        .client()
        .await
        .put_metric_data(request("Stall", vec![value_datum("after", &[], t, 1.0)]))
        .await
        .unwrap()
        .into_inner()
        .accepted_samples;
    assert_eq!(accepted, 1);
}

/// While the budget is held whole by a stalled message, a new gRPC call is refused with
/// RESOURCE_EXHAUSTED and an HTTP request with a body with 503, both naming the limit; a GET
/// (no body) is still served; once the stalled message times out, pushes succeed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_budget_refuses_new_requests_until_it_is_freed() {
    const BUDGET: usize = 64 << 10;
    let server = TestServer::start_with(|s| {
        s.max_buffered_request_bytes = BUDGET;
        s.request_body_timeout_seconds = 3;
    })
    .await;
    let grpc = server.running.grpc_addr.to_string();
    let (mut raw, _) = h2_connect(&grpc).await;
    // Exactly the budget: the header and the first BUDGET - 5 bytes of a 100 kB message.
    let (response, _send) = send_partial(&mut raw, PUT, grpc_frame(100_000).slice(..BUDGET)).await;
    let stalled = tokio::spawn(grpc_status(response));

    let mut client = server.client().await;
    let push = |name: &str| request("Budget", vec![value_datum(name, &[], now_ms(), 1.0)]);
    let mut refused = None;
    for _ in 0..100 {
        match client.put_metric_data(push("during")).await {
            Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                refused = Some(s);
                break;
            }
            // The stalled bytes may not all have been read yet.
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    let refused = refused.expect("a push is refused while the budget is exhausted");
    assert!(
        refused.message().contains("--max-buffered-request-bytes"),
        "{}",
        refused.message()
    );

    let mut http = TcpStream::connect(server.running.http_addr).await.unwrap();
    http.write_all(
        b"POST /api/v1/reload HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
    )
    .await
    .unwrap();
    let (status, body) = read_http_response(&mut http).await;
    assert_eq!(status, 503, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "resource_exhausted");
    assert_eq!(body["error"]["field"], "max_buffered_request_bytes");
    let health = reqwest::get(server.http("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200, "a request without a body is served");

    let (code, message) = stalled.await.unwrap();
    assert_eq!(code, 4, "{message}");
    assert!(
        message.contains("body was not received whole within 3 s"),
        "{message}"
    );
    let accepted = client
        .put_metric_data(push("after"))
        .await
        .unwrap()
        .into_inner()
        .accepted_samples;
    assert_eq!(accepted, 1);
}

/// Reads an HTTP/1.1 response to its end (the server closes the connection): status and body.
async fn read_http_response(stream: &mut TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut raw))
        .await
        .expect("the server answers and closes")
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

/// An HTTP request whose body stalls is answered 408 with the JSON error naming the setting.
#[tokio::test]
async fn a_stalled_http_body_is_answered_408() {
    let server = TestServer::start_with(|s| s.request_body_timeout_seconds = 1).await;
    let mut http = TcpStream::connect(server.running.http_addr).await.unwrap();
    http.write_all(
        b"PUT /api/v1/alarms/Any/state HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"state_value\":",
    )
    .await
    .unwrap();
    let (status, body) = read_http_response(&mut http).await;
    assert_eq!(status, 408, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "deadline_exceeded");
    assert_eq!(body["error"]["field"], "request_body_timeout_seconds");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("within 1 s (--request-body-timeout-seconds)"),
        "{body}"
    );
}

// === Finding 3: idle streams ===

/// `max_streams` streams that never send hold every slot (a third is refused), until the idle
/// timeout closes them with DEADLINE_EXCEEDED naming the flag; then a new stream works.
#[tokio::test]
async fn idle_streams_are_closed_and_free_their_slots() {
    let server = TestServer::start_with(|s| {
        s.max_streams = 2;
        s.stream_idle_timeout_seconds = 3;
    })
    .await;
    let mut client = server.client().await;
    let mut idle = Vec::new();
    for _ in 0..2 {
        let stream = client
            .stream_metric_data(tokio_stream::pending::<PutMetricDataRequest>())
            .await
            .unwrap()
            .into_inner();
        idle.push(stream);
    }
    let third = client
        .stream_metric_data(tokio_stream::pending::<PutMetricDataRequest>())
        .await
        .unwrap_err();
    assert_eq!(third.code(), tonic::Code::ResourceExhausted, "{third:?}");

    for mut stream in idle {
        let status = tokio::time::timeout(Duration::from_secs(60), stream.message())
            .await
            .expect("the idle stream is closed")
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
        assert!(
            status
                .message()
                .contains("no message for 3 s (--stream-idle-timeout-seconds)"),
            "{}",
            status.message()
        );
    }

    // The slots are free (the server drops a closed stream just after its status is sent).
    let t = now_ms();
    for attempt in 0.. {
        let one = tokio_stream::iter(vec![request(
            "IdleStreams",
            vec![value_datum("m", &[], t, 1.0)],
        )]);
        match client.stream_metric_data(one).await {
            Ok(r) => {
                let answer = r.into_inner().message().await.unwrap().unwrap();
                assert_eq!(answer.accepted_samples, 1);
                break;
            }
            Err(s) if s.code() == tonic::Code::ResourceExhausted && attempt < 100 => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(s) => panic!("a new stream after the idle ones closed: {s:?}"),
        }
    }
}

// === Finding 4: idle connections ===

/// Reads until the server closes the connection (EOF or reset); false if it stays open for
/// 60 s.
async fn closed_by_server(mut stream: TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    let wait = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .is_ok()
}

/// With a 1 s idle timeout: silent connections to both ports, half an HTTP/1 head, half an
/// HTTP/2 preface, and an HTTP/2 connection that finished its handshake and went quiet are
/// all closed by the server; a connection carrying an open `StreamMetricData` stream is not;
/// and the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_but_busy_ones_are_not() {
    let server = TestServer::start_with(|s| s.idle_connection_timeout_seconds = 1).await;
    let (grpc, http) = (server.running.grpc_addr, server.running.http_addr);

    // An open stream on its own connection: one request answered now, one after the others
    // have been closed.
    let mut busy = MetricsServiceClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let t = now_ms();
    tx.send(request("Idle", vec![value_datum("m", &[], t, 1.0)]))
        .await
        .unwrap();
    let mut answers = busy
        .stream_metric_data(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answers.message().await.unwrap().unwrap().accepted_samples,
        1
    );

    let mut idle = JoinSet::new();
    let mut opened = 0;
    for (addr, greeting) in [
        (grpc, &b""[..]),
        (http, b""),
        (http, b"GET /healthz HTTP/1.1\r\nhost: t\r\n"),
        (grpc, b"PRI * HTTP/2.0\r\n"),
    ] {
        let n = if greeting.is_empty() { 40 } else { 10 };
        for _ in 0..n {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(greeting).await.unwrap();
            opened += 1;
            idle.spawn(closed_by_server(s));
        }
    }
    // A complete HTTP/2 handshake, then silence: the client's connection ends.
    let tcp = TcpStream::connect(grpc).await.unwrap();
    let (_quiet, conn) = h2::client::handshake(tcp).await.unwrap();
    let handshaken = tokio::spawn(tokio::time::timeout(Duration::from_secs(60), conn));

    let mut closed = 0;
    while let Some(done) = idle.join_next().await {
        closed += usize::from(done.unwrap());
    }
    assert_eq!(closed, opened, "every idle connection is closed");
    assert!(
        handshaken.await.unwrap().is_ok(),
        "a quiet HTTP/2 connection is closed"
    );

    // The busy connection was idle as long as the others (and longer), but its stream is
    // open: it still carries requests.
    tokio::time::sleep(Duration::from_secs(2)).await;
    tx.send(request("Idle", vec![value_datum("m", &[], t + 1, 2.0)]))
        .await
        .unwrap();
    assert_eq!(
        answers.message().await.unwrap().unwrap().accepted_samples,
        1
    );

    let accepted = server
        .client()
        .await
        .put_metric_data(request("Idle", vec![value_datum("m", &[], t + 2, 3.0)]))
        .await
        .unwrap()
        .into_inner()
        .accepted_samples;
    assert_eq!(accepted, 1);
    let ready = reqwest::get(server.http("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
}

/// The real binary under `ulimit -n 96`: connections beyond its descriptors leave both accept
/// loops failing with EMFILE; over 3 s of that the process uses under 10% of one core (it
/// spun at a full core before), and once the clients go it serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptor_exhaustion_backs_off_instead_of_spinning() {
    const NOFILE: usize = 96;
    // The client side holds as many connections; make room for them in this process.
    let _ = thermostat_transport::raise_fd_limit();
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_wrapped(
        data.path(),
        &["--idle-connection-timeout-seconds", "300"],
        &[],
        &["prlimit", &format!("--nofile={NOFILE}:{NOFILE}"), "--"],
    );
    let pid = server.child.id();
    let limit = proc_limits_nofile(pid);
    assert_eq!(
        limit, NOFILE as u64,
        "the hard limit caps the raised soft one"
    );

    let mut clients = Vec::new();
    let spare = NOFILE - open_fds(pid);
    for i in 0..spare + 40 {
        let addr = if i % 2 == 0 {
            &server.grpc
        } else {
            &server.http
        };
        clients.push(TcpStream::connect(addr).await.unwrap());
    }
    server.wait_log("out of file descriptors");
    assert!(open_fds(pid) >= NOFILE - 1, "the server is at its limit");

    let before = cpu_seconds(pid);
    let start = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let used = cpu_seconds(pid) - before;
    let elapsed = start.elapsed().as_secs_f64();
    eprintln!("CPU at the descriptor limit: {used:.3} s over {elapsed:.1} s");
    assert!(
        used < 0.1 * elapsed,
        "the process used {used:.2} s of CPU in {elapsed:.1} s at the descriptor limit"
    );

    drop(clients);
    let t = now_ms();
    let mut served = false;
    for _ in 0..200 {
        if let Ok(mut c) = MetricsServiceClient::connect(format!("http://{}", server.grpc)).await
            && let Ok(r) = c
                .put_metric_data(request("Fds", vec![value_datum("m", &[], t, 1.0)]))
                .await
        {
            assert_eq!(r.into_inner().accepted_samples, 1);
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        served,
        "the server serves again once the connections are gone"
    );
}

/// The soft "Max open files" limit of `pid`.
fn proc_limits_nofile(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}
