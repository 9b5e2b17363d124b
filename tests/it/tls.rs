//! TLS end to end through the real server on loopback: gRPC and HTTP over TLS with a generated
//! certificate, plaintext refused, client certificates standing for token entries (mTLS),
//! certificates reloaded without dropping connections, and TLS files that do not work stopping
//! the start.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use thermostat::app::{Running, Settings};
use thermostat::settings::ServeArgs;
use thermostat_auth::{digest_hex, new_token};
use thermostat_proto::v1::PutMetricDataRequest;
use thermostat_proto::v1::metrics_service_client::MetricsServiceClient;
use tokio::net::TcpStream;
use tonic::Code;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::util::*;

/// How long any one connection attempt or call may take before the test fails.
const LIMIT: Duration = Duration::from_secs(20);

const ALARMS: &str = "alarms:
  - name: cpu-high
    namespace: Test/Tls
    metric_name: CPU
    statistic: Average
    period_seconds: 60
    evaluation_periods: 1
    threshold: 50
    comparison_operator: GreaterThanThreshold
";

// === certificates ===

/// A certificate authority made for one test.
pub(crate) struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub(crate) pem: String,
    der: CertificateDer<'static>,
}

pub(crate) fn ca(name: &str) -> Ca {
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
pub(crate) struct Leaf {
    pub(crate) cert: String,
    pub(crate) key: String,
}

impl Leaf {
    fn identity(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (
            vec![CertificateDer::from_pem_slice(self.cert.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(self.key.as_bytes()).unwrap(),
        )
    }
}

/// A server certificate for `localhost` and 127.0.0.1.
pub(crate) fn server_cert(ca: &Ca) -> Leaf {
    let params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    leaf(ca, params)
}

/// A client certificate whose subject Common Name is `cn`.
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

// === the server ===

/// The TLS files and the settings file of one server, in a temporary directory.
struct Files {
    dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    settings: PathBuf,
    config: PathBuf,
}

impl Files {
    /// Writes `server`'s certificate and key, the client CA if any, the alarm configuration
    /// and a settings file with `tls` and `auth_yaml` (the `auth:` section).
    fn new(server: &Leaf, client_ca: Option<&Ca>, auth_yaml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let files = Files {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            settings: dir.path().join("settings.yaml"),
            config: dir.path().join("alarms.yaml"),
            dir,
        };
        files.write(server);
        let mut tls = format!(
            "tls:\n  cert_file: {}\n  key_file: {}\n",
            files.cert.display(),
            files.key.display()
        );
        if let Some(ca) = client_ca {
            let path = files.dir.path().join("clients.pem");
            std::fs::write(&path, &ca.pem).unwrap();
            tls.push_str(&format!("  client_ca_file: {}\n", path.display()));
        }
        std::fs::write(&files.settings, format!("{tls}{auth_yaml}")).unwrap();
        std::fs::write(&files.config, ALARMS).unwrap();
        files
    }

    /// Overwrites the certificate and key files with `server`'s.
    fn write(&self, server: &Leaf) {
        std::fs::write(&self.cert, &server.cert).unwrap();
        std::fs::write(&self.key, &server.key).unwrap();
    }

    /// Settings as `thermostat serve --settings FILE` resolves them, on loopback port 0.
    fn resolve(&self) -> Settings {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("info")
            .try_init();
        let mut s = ServeArgs {
            settings: Some(self.settings.clone()),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        s.grpc_addr = "127.0.0.1:0".parse().unwrap();
        s.http_addr = "127.0.0.1:0".parse().unwrap();
        s.data_dir = self.dir.path().join("data");
        s.config = vec![self.config.clone()];
        s
    }

    async fn start(&self) -> Running {
        thermostat::app::start(self.resolve())
            .await
            .unwrap_or_else(|e| panic!("the server starts: {e}"))
    }
}

async fn stop(running: Running) {
    running.shutdown();
    running.wait().await.unwrap();
}

// === clients ===

/// A rustls client configuration trusting only `roots`, offering `alpn`, presenting
/// `identity` if any.
fn client_config(roots: &[&Ca], identity: Option<&Leaf>, alpn: &[u8]) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    for ca in roots {
        store.add(ca.der.clone()).unwrap();
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(store);
    let mut config = match identity {
        Some(leaf) => {
            let (chain, key) = leaf.identity();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(config)
}

/// A gRPC channel to `https://localhost:<port>` whose connections go to `addr` over TLS,
/// trusting only `roots`, presenting `identity` if any. The connection is made (and the
/// handshake done) before it returns.
async fn tls_channel(
    addr: SocketAddr,
    roots: &[&Ca],
    identity: Option<&Leaf>,
) -> Result<Channel, tonic::transport::Error> {
    let config = client_config(roots, identity, b"h2");
    let connector = tower::service_fn(move |_: Uri| {
        let config = Arc::clone(&config);
        async move {
            let tcp = TcpStream::connect(addr).await?;
            let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok::<_, io::Error>(TokioIo::new(tls))
        }
    });
    let endpoint = Endpoint::from_shared(format!("https://localhost:{}", addr.port())).unwrap();
    tokio::time::timeout(LIMIT, endpoint.connect_with_connector(connector))
        .await
        .expect("the TLS connection is made or fails in time")
}

/// A gRPC client over TLS that must connect.
async fn tls_client(
    addr: SocketAddr,
    roots: &[&Ca],
    identity: Option<&Leaf>,
) -> MetricsServiceClient<Channel> {
    MetricsServiceClient::new(
        tls_channel(addr, roots, identity)
            .await
            .expect("the TLS connection is made"),
    )
}

/// An HTTPS client trusting only `roots`, resolving `localhost` to `http_addr`.
fn https(roots: &[&Ca], http_addr: SocketAddr) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .resolve("localhost", http_addr)
        .timeout(LIMIT);
    for ca in roots {
        builder = builder
            .add_root_certificate(reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

fn url(http_addr: SocketAddr, path: &str) -> String {
    format!("https://localhost:{}{path}", http_addr.port())
}

fn authed<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    if let Some(t) = token {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    r
}

/// One datum of `CPU{Host=a}` with `value`, at `ts`.
fn push(namespace: &str, ts: i64, value: f64) -> PutMetricDataRequest {
    request(
        namespace,
        vec![value_datum("CPU", &[("Host", "a")], ts, value)],
    )
}

/// `PutMetricData` within [`LIMIT`]: OK or the status code.
async fn put(
    client: &mut MetricsServiceClient<Channel>,
    message: PutMetricDataRequest,
    token: Option<&str>,
) -> Result<(), tonic::Status> {
    tokio::time::timeout(LIMIT, client.put_metric_data(authed(message, token)))
        .await
        .expect("the push answers in time")
        .map(|_| ())
}

/// `(SampleCount, Sum)` of `CPU{Host=a}` in `namespace` over the minute from `t0`.
async fn sample_count_and_sum(
    client: &mut MetricsServiceClient<Channel>,
    namespace: &str,
    t0: i64,
    token: &str,
) -> (f64, f64) {
    let req = stats_request(
        namespace,
        "CPU",
        &[("Host", "a")],
        t0,
        t0 + 60_000,
        60,
        &["SampleCount", "Sum"],
    );
    let resp = client
        .get_metric_statistics(authed(req, Some(token)))
        .await
        .unwrap()
        .into_inner();
    resp.datapoints.iter().fold((0.0, 0.0), |(n, s), d| {
        (n + d.statistics["SampleCount"], s + d.statistics["Sum"])
    })
}

// === tests ===

#[tokio::test]
async fn grpc_and_http_over_tls_with_a_generated_certificate() {
    let root = ca("Thermostat test CA");
    let agent = new_token();
    let viewer = new_token();
    let auth = format!(
        "auth:\n  tokens:\n    - {{name: ci-agent, role: agent, token_sha256: {}}}\n    - {{name: dash, role: viewer, token_sha256: {}}}\n",
        digest_hex(&agent),
        digest_hex(&viewer),
    );
    let files = Files::new(&server_cert(&root), None, &auth);
    let running = files.start().await;
    let t0 = aligned_past(60_000);

    // gRPC over TLS: the agent pushes, the viewer reads it back.
    let mut client = tls_client(running.grpc_addr, &[&root], None).await;
    put(&mut client, push("Test/Tls", t0 + 1000, 42.0), Some(&agent))
        .await
        .unwrap();
    assert_eq!(
        sample_count_and_sum(&mut client, "Test/Tls", t0, &viewer).await,
        (1.0, 42.0)
    );
    // Tokens are still needed over TLS.
    let refused = put(&mut client, push("Test/Tls", t0 + 2000, 1.0), None).await;
    assert_eq!(refused.unwrap_err().code(), Code::Unauthenticated);
    // OTLP/gRPC's Export is served on the same TLS port.
    let mut otlp = thermostat_proto::otlp::metrics_service_client::MetricsServiceClient::new(
        tls_channel(running.grpc_addr, &[&root], None)
            .await
            .unwrap(),
    );
    let export = crate::otlp::export_request(
        "tls-otel",
        vec![crate::otlp::cumulative(
            "tls_jobs",
            vec![crate::otlp::point(t0 + 3000, t0, 4.0)],
        )],
    );
    let mut request = tonic::Request::new(export);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {agent}").parse().unwrap());
    let answer = otlp.export(request).await.unwrap().into_inner();
    assert!(answer.partial_success.is_none(), "{answer:?}");

    // HTTP over TLS.
    let http = https(&[&root], running.http_addr);
    let alarms = http
        .get(url(running.http_addr, "/api/v1/alarms"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(alarms.status(), 200);
    let body = alarms.text().await.unwrap();
    assert!(body.contains("cpu-high"), "GET /api/v1/alarms: {body}");
    let healthz = http
        .get(url(running.http_addr, "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(healthz.status(), 200);
    let anonymous = http
        .get(url(running.http_addr, "/api/v1/alarms"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // A client that does not trust the CA cannot connect to either port.
    let stranger = ca("Another CA");
    assert!(
        tls_channel(running.grpc_addr, &[&stranger], None)
            .await
            .is_err(),
        "a gRPC client that does not trust the server's CA connects"
    );
    assert!(
        https(&[&stranger], running.http_addr)
            .get(url(running.http_addr, "/healthz"))
            .send()
            .await
            .is_err(),
        "an HTTPS client that does not trust the server's CA connects"
    );

    // Plaintext is refused on both ports.
    let plaintext = tokio::time::timeout(LIMIT, async {
        let mut plain = MetricsServiceClient::connect(format!("http://{}", running.grpc_addr))
            .await
            .map_err(|e| e.to_string())?;
        plain
            .put_metric_data(authed(push("Test/Tls", t0 + 3000, 1.0), Some(&agent)))
            .await
            .map(|_| ())
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
    })
    .await
    .expect("a plaintext gRPC client fails in time");
    assert!(plaintext.is_err(), "a plaintext gRPC push succeeded");
    let plain_http = reqwest::Client::builder()
        .timeout(LIMIT)
        .build()
        .unwrap()
        .get(format!("http://{}/healthz", running.http_addr))
        .send()
        .await;
    assert!(
        plain_http.is_err(),
        "a plaintext HTTP request was answered: {:?}",
        plain_http.map(|r| r.status())
    );

    // The TLS clients still work, on their connections and on new ones.
    put(&mut client, push("Test/Tls", t0 + 4000, 8.0), Some(&agent))
        .await
        .unwrap();
    let mut fresh = tls_client(running.grpc_addr, &[&root], None).await;
    assert_eq!(
        sample_count_and_sum(&mut fresh, "Test/Tls", t0, &viewer).await,
        (2.0, 50.0)
    );
    let healthz = https(&[&root], running.http_addr)
        .get(url(running.http_addr, "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(healthz.status(), 200);

    drop((client, fresh));
    stop(running).await;
}

#[tokio::test]
async fn an_agent_authenticates_with_its_client_certificate() {
    let server_ca = ca("Thermostat server CA");
    let client_ca = ca("Thermostat client CA");
    let viewer = new_token();
    let auth = format!(
        "auth:\n  tokens:\n    - {{name: edge, role: agent, client_subject: edge-agent-1, namespaces: [\"Edge/*\"]}}\n    - {{name: dash, role: viewer, token_sha256: {}}}\n",
        digest_hex(&viewer),
    );
    let files = Files::new(&server_cert(&server_ca), Some(&client_ca), &auth);
    let running = files.start().await;
    let t0 = aligned_past(60_000);
    let edge = client_cert(&client_ca, "edge-agent-1");

    // The certificate stands for the `edge` entry: it pushes to its namespaces without a token.
    let mut client = tls_client(running.grpc_addr, &[&server_ca], Some(&edge)).await;
    put(&mut client, push("Edge/x", t0 + 1000, 5.0), None)
        .await
        .unwrap();
    let denied = put(&mut client, push("Other/x", t0 + 1000, 5.0), None).await;
    assert_eq!(denied.unwrap_err().code(), Code::PermissionDenied);
    // An agent may not read: the certificate carries the entry's role.
    let read = client
        .get_metric_statistics(authed(
            stats_request(
                "Edge/x",
                "CPU",
                &[("Host", "a")],
                t0,
                t0 + 60_000,
                60,
                &["Sum"],
            ),
            None,
        ))
        .await;
    assert_eq!(read.unwrap_err().code(), Code::PermissionDenied);

    // A bearer token wins over the certificate of its connection.
    let mut reader = tls_client(running.grpc_addr, &[&server_ca], Some(&edge)).await;
    assert_eq!(
        sample_count_and_sum(&mut reader, "Edge/x", t0, &viewer).await,
        (1.0, 5.0)
    );

    // No certificate and no token: unauthenticated.
    let mut anonymous = tls_client(running.grpc_addr, &[&server_ca], None).await;
    let refused = put(&mut anonymous, push("Edge/x", t0 + 2000, 1.0), None).await;
    assert_eq!(refused.unwrap_err().code(), Code::Unauthenticated);

    // A certificate with the same Common Name from another CA: the handshake is refused (with
    // TLS 1.3 the client learns it at its first read, so the connection or the push fails).
    let impostor_ca = ca("Impostor CA");
    let impostor = client_cert(&impostor_ca, "edge-agent-1");
    let outcome = match tls_channel(running.grpc_addr, &[&server_ca], Some(&impostor)).await {
        Err(e) => Err(format!("connect: {e}")),
        Ok(channel) => put(
            &mut MetricsServiceClient::new(channel),
            push("Edge/x", t0 + 3000, 1.0),
            None,
        )
        .await
        .map_err(|s| format!("{:?}: {}", s.code(), s.message())),
    };
    let error = outcome.expect_err("a client certificate from another CA was accepted");
    assert!(
        !error.contains("Unauthenticated") && !error.contains("PermissionDenied"),
        "the handshake with a certificate from another CA went through: {error}"
    );

    // The certificate's agent still pushes after that.
    put(&mut client, push("Edge/x", t0 + 4000, 1.0), None)
        .await
        .unwrap();

    drop((client, reader, anonymous));
    stop(running).await;
}

#[tokio::test]
async fn certificates_are_reloaded_without_dropping_connections() {
    let ca1 = ca("Thermostat CA 1");
    let ca2 = ca("Thermostat CA 2");
    let agent = new_token();
    let operator = new_token();
    let auth = format!(
        "auth:\n  tokens:\n    - {{name: ci-agent, role: agent, token_sha256: {}}}\n    - {{name: oncall, role: operator, token_sha256: {}}}\n",
        digest_hex(&agent),
        digest_hex(&operator),
    );
    let files = Files::new(&server_cert(&ca1), None, &auth);
    let running = files.start().await;
    let t0 = aligned_past(60_000);

    // A connection made with certificate A.
    let mut before = tls_client(running.grpc_addr, &[&ca1], None).await;
    put(&mut before, push("Test/Tls", t0 + 1000, 1.0), Some(&agent))
        .await
        .unwrap();

    // Certificate B (another CA) in the same files, then a reload.
    files.write(&server_cert(&ca2));
    // Nothing changes until the reload: a client trusting only CA 2 is still refused.
    assert!(
        tls_channel(running.grpc_addr, &[&ca2], None).await.is_err(),
        "certificate B was served before the reload"
    );
    let reload = https(&[&ca1, &ca2], running.http_addr)
        .post(url(running.http_addr, "/api/v1/reload"))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    let status = reload.status();
    assert_eq!(status, 200, "reload: {}", reload.text().await.unwrap());

    // New connections get certificate B, on both ports.
    let mut after = tls_client(running.grpc_addr, &[&ca2], None).await;
    put(&mut after, push("Test/Tls", t0 + 2000, 1.0), Some(&agent))
        .await
        .unwrap();
    assert!(
        tls_channel(running.grpc_addr, &[&ca1], None).await.is_err(),
        "a new gRPC connection trusting only CA 1 still connects after the reload"
    );
    let healthz = https(&[&ca2], running.http_addr)
        .get(url(running.http_addr, "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(healthz.status(), 200);
    assert!(
        https(&[&ca1], running.http_addr)
            .get(url(running.http_addr, "/healthz"))
            .send()
            .await
            .is_err(),
        "a new HTTPS connection trusting only CA 1 still connects after the reload"
    );

    // The connection made before the reload is still open (a reconnection would fail: this
    // channel trusts only CA 1).
    put(&mut before, push("Test/Tls", t0 + 3000, 1.0), Some(&agent))
        .await
        .unwrap();

    drop((before, after));
    stop(running).await;
}

#[tokio::test]
async fn tls_files_that_do_not_work_stop_the_start() {
    let root = ca("Thermostat test CA");
    let token = new_token();
    let auth = format!(
        "auth:\n  tokens:\n    - {{name: root, role: admin, token_sha256: {}}}\n",
        digest_hex(&token)
    );
    let files = Files::new(&server_cert(&root), None, &auth);
    // A key that is not the certificate's.
    let other = server_cert(&root);
    std::fs::write(&files.key, &other.key).unwrap();
    let Err(error) = thermostat::app::start(files.resolve()).await else {
        panic!("the server started with a key that does not match its certificate");
    };
    let text = format!("{error:#}");
    assert!(text.contains("tls.key_file"), "{text}");
    assert!(text.contains(&files.key.display().to_string()), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    let secret_line = other.key.lines().nth(1).unwrap();
    assert!(!text.contains(secret_line), "{text}");

    // A certificate file without a certificate in it names tls.cert_file.
    files.write(&other);
    std::fs::write(&files.cert, "not a certificate\n").unwrap();
    let Err(error) = thermostat::app::start(files.resolve()).await else {
        panic!("the server started without a certificate");
    };
    let text = format!("{error:#}");
    assert!(text.contains("tls.cert_file"), "{text}");
    assert!(text.contains(&files.cert.display().to_string()), "{text}");
    assert!(!text.contains(secret_line), "{text}");
}
