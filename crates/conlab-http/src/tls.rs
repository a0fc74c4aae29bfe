//! TLS for conlab's HTTP client (`load https://...`, and `fetch` to come): rustls on the
//! ring provider, the Mozilla roots of `webpki-roots` plus any CA file given, and a
//! connection type that is a plain or a TLS stream behind one `AsyncRead + AsyncWrite`, so
//! the request writer and the response parser do not care which.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// TLS that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A CA file that could not be read, or holds no certificate.
    #[error("--cacert {path}: {why}")]
    CaFile {
        /// The file.
        path: String,
        /// What was wrong.
        why: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// How a client checks the servers it talks to.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Trust these CA certificates (a PEM file) as well as the usual roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Accept any certificate (curl's `-k`; wrk never checks).
    pub insecure: bool,
}

/// A client's TLS settings, built once and shared by every connection.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<rustls::ClientConfig>,
    connector: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient").finish_non_exhaustive()
    }
}

impl TlsClient {
    /// A client that offers `alpn` (e.g. `http/1.1`) and checks certificates as `options`
    /// say.
    pub fn new(options: &TlsOptions, alpn: &[&[u8]]) -> Result<TlsClient, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = &options.ca_file {
            let ca_error = |why: String| TlsError::CaFile {
                path: path.display().to_string(),
                why,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| ca_error(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ca_error(e.to_string()))?;
            if certs.is_empty() {
                return Err(ca_error("no PEM certificate in it".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
            }
        }
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        if options.insecure {
            config
                .dangerous()
                .set_certificate_verifier(Arc::new(AnyCertificate(provider)));
        }
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let config = Arc::new(config);
        Ok(TlsClient {
            connector: tokio_rustls::TlsConnector::from(Arc::clone(&config)),
            config,
        })
    }

    /// The rustls configuration, for a blocking connection (fetch's threads model).
    pub fn config(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.config)
    }

    /// The name a certificate is checked against: `host` without IPv6 brackets.
    pub fn server_name(host: &str) -> std::io::Result<ServerName<'static>> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_string()).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{host}: {e}"))
        })
    }

    /// The TLS handshake over `tcp` for `host` (its name, or an IP address).
    pub async fn connect(&self, tcp: TcpStream, host: &str) -> std::io::Result<Conn> {
        let name = Self::server_name(host)?;
        let tls = self.connector.connect(name, tcp).await?;
        Ok(Conn::Tls(Box::new(tls)))
    }
}

/// The verifier of `--insecure`: every certificate is accepted, but the handshake's
/// signatures are still checked, so the connection is still encrypted to whoever answered.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A connection: plain TCP, or TLS over it.
#[derive(Debug)]
pub enum Conn {
    /// `http://`.
    Plain(TcpStream),
    /// `https://` (boxed: a TLS session is a few kilobytes).
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Conn {
    /// The TCP stream under it.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref().0,
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A failed handshake in words a user can act on: rustls's own, and for the refusals that
/// curl (OpenSSL) would not make, what to do.
pub fn explain(e: &std::io::Error) -> String {
    let said = e.to_string();
    let hint = if said.contains("CaUsedAsEndEntity") {
        " (the server's certificate is a CA's, basicConstraints CA:TRUE, as `openssl req \
         -x509` makes by default; rustls accepts only end-entity certificates: make one with \
         -addext basicConstraints=critical,CA:FALSE, or use --insecure)"
    } else if said.contains("UnknownIssuer") {
        " (not signed by a CA this client trusts: --cacert FILE adds one, --insecure accepts \
         any)"
    } else {
        ""
    };
    format!("tls: {said}{hint}")
}
