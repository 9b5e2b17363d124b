//! TLS for both servers: the settings, the certificate (reloadable without dropping
//! connections) and the optional verification of client certificates.
//!
//! [`Tls`] holds two rustls server configurations built from the same files, one per port (ALPN
//! `h2` for gRPC, `http/1.1` for HTTP), in an [`ArcSwap`]: [`Tls::reload`] builds new ones from
//! the files and swaps them in whole, so new handshakes use the new certificate and client CAs
//! while open connections keep the session they negotiated. TLS 1.2 and 1.3 only.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, ServerConfig, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, SupportedProtocolVersion};

use crate::error::Error;

/// The protocol versions both servers speak: TLS 1.3 and 1.2, nothing older.
pub(crate) const PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The `tls` settings: PEM files read at start and on every [`Tls::reload`].
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The certificate chain, end-entity certificate first.
    pub cert_file: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// The CAs that client certificates must verify against; without it, client certificates
    /// are not asked for.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

/// The application protocol a port offers in its handshakes (ALPN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alpn {
    /// `h2`: the gRPC port.
    H2,
    /// `http/1.1`: the HTTP port.
    Http1,
}

impl Alpn {
    fn protocol(self) -> &'static [u8] {
        match self {
            Alpn::H2 => b"h2",
            Alpn::Http1 => b"http/1.1",
        }
    }
}

/// The server configurations in force, one per port.
#[derive(Debug)]
struct Configs {
    h2: Arc<ServerConfig>,
    http1: Arc<ServerConfig>,
}

/// The TLS configuration of both servers, reloadable (see the module docs).
pub struct Tls {
    settings: TlsSettings,
    provider: Arc<CryptoProvider>,
    configs: ArcSwap<Configs>,
}

impl fmt::Debug for Tls {
    // The configurations hold the private key: only the settings are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads the files named in `settings` and builds the servers' configurations.
    ///
    /// The files are read with blocking IO (they are small).
    ///
    /// # Errors
    /// [`Error::Tls`], naming the settings key, the file and the problem (unreadable, no
    /// certificate or key in it, a key that does not match the certificate, a CA that is not
    /// valid).
    pub fn load(settings: &TlsSettings) -> Result<Arc<Tls>, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let configs = build(settings, &provider)?;
        Ok(Arc::new(Tls {
            settings: settings.clone(),
            provider,
            configs: ArcSwap::from_pointee(configs),
        }))
    }

    /// Reads the same files again and, if they are all usable, swaps in the new certificate
    /// (and client CAs) for new handshakes; open connections are not touched.
    ///
    /// # Errors
    /// As [`Tls::load`]; the configuration in force is then kept.
    pub fn reload(&self) -> Result<(), Error> {
        let configs = build(&self.settings, &self.provider)?;
        self.configs.store(Arc::new(configs));
        Ok(())
    }

    /// Whether clients may present a certificate (`tls.client_ca_file` is set).
    pub fn client_auth(&self) -> bool {
        self.settings.client_ca_file.is_some()
    }

    /// An acceptor for one handshake with the configuration in force, offering `alpn`.
    pub fn acceptor(&self, alpn: Alpn) -> tokio_rustls::TlsAcceptor {
        let configs = self.configs.load();
        let config = match alpn {
            Alpn::H2 => &configs.h2,
            Alpn::Http1 => &configs.http1,
        };
        tokio_rustls::TlsAcceptor::from(Arc::clone(config))
    }
}

/// The subject Common Name of the client's verified certificate, if it presented one (and the
/// certificate has a CN).
pub(crate) fn client_subject(conn: &rustls::ServerConnection) -> Option<String> {
    let der = conn.peer_certificates()?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

/// Always the one certificate.
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

fn build(settings: &TlsSettings, provider: &Arc<CryptoProvider>) -> Result<Configs, Error> {
    let certified = Arc::new(certified_key(settings, provider)?);
    let builder = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(|e| cert_error(settings, format!("cannot configure TLS: {e}")))?;
    let builder = match &settings.client_ca_file {
        Some(file) => {
            let roots = client_roots(file)?;
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| Error::Tls {
                        key: "tls.client_ca_file",
                        file: file.clone(),
                        message: format!("cannot verify client certificates with it: {e}"),
                    })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let base = builder.with_cert_resolver(Arc::new(Fixed(certified)));
    let with_alpn = |alpn: Alpn| {
        let mut config = base.clone();
        config.alpn_protocols = vec![alpn.protocol().to_vec()];
        Arc::new(config)
    };
    Ok(Configs {
        h2: with_alpn(Alpn::H2),
        http1: with_alpn(Alpn::Http1),
    })
}

fn cert_error(settings: &TlsSettings, message: String) -> Error {
    Error::Tls {
        key: "tls.cert_file",
        file: settings.cert_file.clone(),
        message,
    }
}

fn certified_key(settings: &TlsSettings, provider: &CryptoProvider) -> Result<CertifiedKey, Error> {
    let chain =
        certificates(&settings.cert_file).map_err(|message| cert_error(settings, message))?;
    let key_error = |message: String| Error::Tls {
        key: "tls.key_file",
        file: settings.key_file.clone(),
        message,
    };
    let key = PrivateKeyDer::from_pem_file(&settings.key_file).map_err(|e| {
        key_error(match e {
            pem::Error::NoItemsFound => {
                "no private key in the file (PEM: PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"
                    .to_owned()
            }
            e => pem_problem(e),
        })
    })?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| key_error(format!("the private key cannot be used: {e}")))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // Unknown: the key cannot tell its public key; the handshake will show.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(key_error(format!(
                "the key does not match the certificate in tls.cert_file {}",
                settings.cert_file.display()
            )))
        }
        Err(e) => Err(cert_error(
            settings,
            format!("the first certificate cannot be parsed: {e}"),
        )),
    }
}

/// The certificates in a PEM file, or what is wrong with it.
fn certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(file)
        .map_err(pem_problem)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_problem)?;
    if certs.is_empty() {
        return Err("no certificate in the file (PEM: CERTIFICATE)".to_owned());
    }
    Ok(certs)
}

fn client_roots(file: &Path) -> Result<RootCertStore, Error> {
    let error = |message: String| Error::Tls {
        key: "tls.client_ca_file",
        file: file.to_owned(),
        message,
    };
    let mut roots = RootCertStore::empty();
    for (i, cert) in certificates(file).map_err(error)?.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|e| error(format!("certificate {} is not a valid CA: {e}", i + 1)))?;
    }
    Ok(roots)
}

/// What is wrong with a PEM file; never quotes its contents.
fn pem_problem(e: pem::Error) -> String {
    match e {
        pem::Error::Io(e) => format!("cannot read it: {e}"),
        pem::Error::NoItemsFound => "nothing usable in the file".to_owned(),
        pem::Error::MissingSectionEnd { .. } => {
            "not valid PEM: a section has no END line".to_owned()
        }
        pem::Error::IllegalSectionStart { .. } => {
            "not valid PEM: a BEGIN line is malformed".to_owned()
        }
        pem::Error::Base64Decode(_) => "not valid PEM: bad base64".to_owned(),
        pem::Error::SectionTooLarge => "not valid PEM: a section is too large".to_owned(),
        _ => "not valid PEM".to_owned(),
    }
}

#[cfg(test)]
mod tests;
