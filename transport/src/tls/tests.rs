//! TLS on both paths, with certificates made by rcgen: handshakes, plaintext refused, client
//! certificates, reload, protocol versions, ALPN, the handshake bounds.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::Full;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

use super::*;
use crate::{Acceptor, Budget, ConnInfo, HttpBody, Options, serve_http};

// === certificates ===

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    der: CertificateDer<'static>,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        issuer: Issuer::new(params, key),
        pem: cert.pem(),
        der: cert.der().clone(),
    }
}

/// A certificate and its key, in PEM.
struct Leaf {
    cert: String,
    key: String,
}

impl Leaf {
    fn identity(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (
            vec![CertificateDer::from_pem_slice(self.cert.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(self.key.as_bytes()).unwrap(),
        )
    }
}

fn server_cert(ca: &Ca) -> Leaf {
    let params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    leaf(ca, params)
}

fn client_cert(ca: &Ca, cn: &str) -> Leaf {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    leaf(ca, params)
}

fn leaf(ca: &Ca, params: CertificateParams) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    Leaf {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

/// The settings files in a temporary directory.
struct Files {
    dir: tempfile::TempDir,
    settings: TlsSettings,
}

impl Files {
    fn new(server: &Leaf, client_ca: Option<&Ca>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let settings = TlsSettings {
            cert_file: dir.path().join("cert.pem"),
            key_file: dir.path().join("key.pem"),
            client_ca_file: client_ca.map(|_| dir.path().join("clients.pem")),
        };
        let files = Files { dir, settings };
        files.write(server);
        if let Some(ca) = client_ca {
            std::fs::write(files.dir.path().join("clients.pem"), &ca.pem).unwrap();
        }
        files
    }

    fn write(&self, server: &Leaf) {
        std::fs::write(&self.settings.cert_file, &server.cert).unwrap();
        std::fs::write(&self.settings.key_file, &server.key).unwrap();
    }
}

// === clients ===

fn client_config(
    root: &Ca,
    identity: Option<&Leaf>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(root.der.clone()).unwrap();
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
    let mut config = match identity {
        Some(leaf) => {
            let (chain, key) = leaf.identity();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A TLS 1.2-or-1.3 client offering `http/1.1`.
fn https_client(root: &Ca, identity: Option<&Leaf>) -> Arc<ClientConfig> {
    client_config(root, identity, PROTOCOL_VERSIONS, &[b"http/1.1"])
}

async fn connect(addr: SocketAddr, config: Arc<ClientConfig>) -> io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// One `GET /` on a kept-alive connection: the response body, or an error if the connection
/// ends before a whole response.
async fn get(io: &mut (impl AsyncRead + AsyncWrite + Unpin)) -> io::Result<String> {
    io.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await?;
    io.flush().await?;
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 1024];
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 1024];
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8(body).unwrap())
}

/// Connects and makes one request.
async fn request(addr: SocketAddr, config: Arc<ClientConfig>) -> io::Result<String> {
    let mut stream = connect(addr, config).await?;
    get(&mut stream).await
}

// === servers ===

/// `serve_http` with TLS, answering what it saw of the connection: `tls=… subject=…`.
async fn serve(tls: &Arc<Tls>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let options = Options {
        max_concurrent_streams_per_connection: 100,
        request_body_timeout: Duration::from_secs(10),
        idle_connection_timeout: Duration::from_secs(60),
        budget: Budget::new(1 << 20),
        tls: Some(Arc::clone(tls)),
    };
    let service = tower::service_fn(|req: http::Request<HttpBody>| async move {
        let info = req.extensions().get::<ConnInfo>().unwrap();
        let body = format!(
            "tls={} subject={}",
            info.tls,
            info.client_subject.as_deref().unwrap_or("-")
        );
        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(body))))
    });
    tokio::spawn(serve_http(
        listener,
        service,
        options,
        std::future::pending(),
    ));
    addr
}

// === tests ===

#[tokio::test]
async fn an_https_request_is_served_with_the_connection_info() {
    let ca = ca("CA");
    let files = Files::new(&server_cert(&ca), None);
    let tls = Tls::load(&files.settings).unwrap();
    assert!(!tls.client_auth());
    let addr = serve(&tls).await;
    let mut stream = connect(addr, https_client(&ca, None)).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(get(&mut stream).await.unwrap(), "tls=true subject=-");
    // The connection is kept alive.
    assert_eq!(get(&mut stream).await.unwrap(), "tls=true subject=-");
}

#[tokio::test]
async fn a_plaintext_request_is_refused_and_the_server_goes_on() {
    let ca = ca("CA");
    let files = Files::new(&server_cert(&ca), None);
    let addr = serve(&Tls::load(&files.settings).unwrap()).await;
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    // Closed (perhaps after a TLS alert, perhaps with a reset): never an HTTP response.
    let _ = plain.read_to_end(&mut answer).await;
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
    assert_eq!(
        request(addr, https_client(&ca, None)).await.unwrap(),
        "tls=true subject=-"
    );
}

#[tokio::test]
async fn a_client_certificate_names_the_connection_when_it_verifies() {
    let server_ca = ca("server CA");
    let client_ca = ca("client CA");
    let files = Files::new(&server_cert(&server_ca), Some(&client_ca));
    let tls = Tls::load(&files.settings).unwrap();
    assert!(tls.client_auth());
    let addr = serve(&tls).await;

    let agent = client_cert(&client_ca, "agent-1");
    assert_eq!(
        request(addr, https_client(&server_ca, Some(&agent)))
            .await
            .unwrap(),
        "tls=true subject=agent-1"
    );
    // No certificate: accepted, unnamed (a bearer token authenticates it).
    assert_eq!(
        request(addr, https_client(&server_ca, None)).await.unwrap(),
        "tls=true subject=-"
    );
    // A certificate from another CA: the handshake fails (in TLS 1.3, the client learns it at
    // its first read).
    let stranger = client_cert(&ca("another CA"), "agent-1");
    for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12]] {
        let config = client_config(&server_ca, Some(&stranger), versions, &[b"http/1.1"]);
        let refused = request(addr, config).await;
        assert!(refused.is_err(), "{refused:?}");
    }
    assert_eq!(
        request(addr, https_client(&server_ca, Some(&agent)))
            .await
            .unwrap(),
        "tls=true subject=agent-1"
    );
}

#[tokio::test]
async fn a_reload_serves_the_new_certificate_to_new_connections_only() {
    let (ca1, ca2) = (ca("CA 1"), ca("CA 2"));
    let files = Files::new(&server_cert(&ca1), None);
    let tls = Tls::load(&files.settings).unwrap();
    let addr = serve(&tls).await;
    let mut old = connect(addr, https_client(&ca1, None)).await.unwrap();
    assert_eq!(get(&mut old).await.unwrap(), "tls=true subject=-");

    files.write(&server_cert(&ca2));
    tls.reload().unwrap();
    assert_eq!(
        request(addr, https_client(&ca2, None)).await.unwrap(),
        "tls=true subject=-"
    );
    let err = connect(addr, https_client(&ca1, None)).await.unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    assert_eq!(get(&mut old).await.unwrap(), "tls=true subject=-");

    // A failed reload keeps the certificate in force.
    std::fs::write(&files.settings.key_file, "not a key").unwrap();
    let err = tls.reload().unwrap_err().to_string();
    let expected = format!("tls.key_file {}: ", files.settings.key_file.display());
    assert!(err.starts_with(&expected), "{err}");
    assert!(err.contains("no private key"), "{err}");
    assert_eq!(
        request(addr, https_client(&ca2, None)).await.unwrap(),
        "tls=true subject=-"
    );
    assert_eq!(get(&mut old).await.unwrap(), "tls=true subject=-");
}

#[tokio::test]
async fn tls_1_2_and_1_3_clients_are_both_served() {
    let ca = ca("CA");
    let files = Files::new(&server_cert(&ca), None);
    let addr = serve(&Tls::load(&files.settings).unwrap()).await;
    for (version, expected) in [
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let config = client_config(&ca, None, &[version], &[b"http/1.1"]);
        let mut stream = connect(addr, config).await.unwrap();
        assert_eq!(stream.get_ref().1.protocol_version(), Some(expected));
        assert_eq!(get(&mut stream).await.unwrap(), "tls=true subject=-");
    }
    // Nothing older is configured (rustls has nothing older to offer).
    let versions: Vec<_> = PROTOCOL_VERSIONS.iter().map(|v| v.version).collect();
    assert_eq!(
        versions,
        [
            rustls::ProtocolVersion::TLSv1_3,
            rustls::ProtocolVersion::TLSv1_2
        ]
    );
}

#[tokio::test]
async fn the_grpc_acceptor_yields_only_completed_h2_handshakes() {
    let ca = ca("CA");
    let files = Files::new(&server_cert(&ca), None);
    let tls = Tls::load(&files.settings).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut incoming = std::pin::pin!(
        Acceptor::new(listener, "gRPC", Some(Duration::from_secs(60)))
            .with_tls(Some(tls), Alpn::H2)
            .into_stream()
    );

    // A plaintext HTTP/2 client is dropped without ever being yielded.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    let client = tokio::spawn(async move {
        let config = client_config(&ca, None, PROTOCOL_VERSIONS, &[b"h2"]);
        let stream = connect(addr, config).await.unwrap();
        let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        (stream.get_ref().0.local_addr().unwrap(), alpn, stream)
    });
    let Ok(io) = incoming.next().await.unwrap();
    let (client_addr, alpn, _stream) = client.await.unwrap();
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(io.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(io.info().remote_addr, Some(client_addr));
    assert!(io.info().tls);
    assert_eq!(io.info().client_subject, None);
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer).await;
    assert!(!answer.starts_with(b"\0\0"), "no HTTP/2 frame: {answer:?}");
}

#[tokio::test(start_paused = true)]
async fn handshakes_are_bounded_in_number_and_time() {
    let ca = ca("CA");
    let files = Files::new(&server_cert(&ca), None);
    let tls = Tls::load(&files.settings).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let timeout = Duration::from_secs(10);
    let mut acceptor =
        Acceptor::new(listener, "HTTP", None).with_handshakes(Some(tls), Alpn::Http1, 1, timeout);
    let (tx, mut accepted) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let io = acceptor.accept().await;
            if tx.send(io).await.is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    // A silent client takes the only handshake slot until its handshake times out.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let config = client_config(&ca, None, PROTOCOL_VERSIONS, &[b"http/1.1"]);
    let stream = connect(addr, config).await.unwrap();
    assert!(start.elapsed() >= timeout, "{:?}", start.elapsed());
    let mut buf = [0u8; 16];
    assert!(matches!(silent.read(&mut buf).await, Ok(0) | Err(_)));
    let io = accepted.recv().await.unwrap();
    assert_eq!(
        io.info().remote_addr,
        Some(stream.get_ref().0.local_addr().unwrap())
    );
}

#[test]
fn unusable_files_are_named_with_the_problem() {
    let ca1 = ca("CA");
    let files = Files::new(&server_cert(&ca1), Some(&ca1));
    let settings = &files.settings;
    let message = |settings: &TlsSettings| Tls::load(settings).unwrap_err().to_string();
    let starts = |key: &str, file: &Path| format!("{key} {}: ", file.display());

    let missing = TlsSettings {
        cert_file: files.dir.path().join("missing.pem"),
        ..settings.clone()
    };
    let err = message(&missing);
    assert!(
        err.starts_with(&starts("tls.cert_file", &missing.cert_file)),
        "{err}"
    );
    assert!(err.contains("cannot read it"), "{err}");

    let key_as_cert = TlsSettings {
        cert_file: settings.key_file.clone(),
        ..settings.clone()
    };
    let err = message(&key_as_cert);
    assert!(
        err.starts_with(&starts("tls.cert_file", &settings.key_file)),
        "{err}"
    );
    assert!(err.contains("no certificate in the file"), "{err}");

    let other = files.dir.path().join("other-key.pem");
    std::fs::write(&other, server_cert(&ca1).key).unwrap();
    let mismatch = TlsSettings {
        key_file: other.clone(),
        ..settings.clone()
    };
    let err = message(&mismatch);
    assert!(err.starts_with(&starts("tls.key_file", &other)), "{err}");
    assert!(
        err.contains("the key does not match the certificate"),
        "{err}"
    );
    // Never the key itself.
    assert!(!err.contains("PRIVATE KEY-----"), "{err}");

    let truncated = files.dir.path().join("truncated.pem");
    std::fs::write(&truncated, "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
    let bad_ca = TlsSettings {
        client_ca_file: Some(truncated.clone()),
        ..settings.clone()
    };
    let err = message(&bad_ca);
    assert!(
        err.starts_with(&starts("tls.client_ca_file", &truncated)),
        "{err}"
    );
    assert!(err.contains("not valid PEM"), "{err}");

    let tls = Tls::load(settings).unwrap();
    assert!(!format!("{tls:?}").contains("PRIVATE"));
    assert_eq!(
        tls.reload().map_err(|e| e.field()).err(),
        None,
        "the same files reload"
    );
}

#[test]
fn the_settings_reject_unknown_keys() {
    let ok: TlsSettings =
        serde_json::from_str(r#"{"cert_file": "/c.pem", "key_file": "/k.pem"}"#).unwrap();
    assert_eq!(ok.client_ca_file, None);
    let err = serde_json::from_str::<TlsSettings>(
        r#"{"cert_file": "/c.pem", "key_file": "/k.pem", "ca_file": "/ca.pem"}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown field `ca_file`"), "{err}");
}
