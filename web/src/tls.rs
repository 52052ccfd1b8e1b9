//! TLS on Iris's listeners: rustls with the `ring` provider (the one reqwest and object_store
//! already build), a server certificate and key from PEM files, and optionally client-certificate
//! sign-in (mutual TLS, as an eID card presents one): trusted CAs, revocation lists, and a
//! connection without a certificate still allowed (machines sign in with bearer tokens on the same
//! port).
//!
//! A certificate the verifier refuses (expired, revoked, from an unknown CA) ends the handshake; no
//! HTTP request follows, so the guard never sees it. The verifier therefore reports each refusal
//! ([`Rejected`]) to the server, which writes it to the audit chain as a failed sign-in.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the certificates and keys are.
#[derive(Clone, Debug, Default)]
pub struct TlsFiles {
    /// The server's certificate chain (PEM, leaf first).
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CAs whose client certificates may sign in (PEM; empty: no client-certificate sign-in).
    pub client_ca: Vec<PathBuf>,
    /// Certificate revocation lists of those CAs (PEM or DER).
    pub client_crl: Vec<PathBuf>,
}

/// A TLS configuration that cannot be used; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn file_error(path: &Path, message: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// A client certificate as Iris names it: subject and issuer DNs in the order they are written in
/// the certificate (`C=BE, CN=…, serialNumber=…`), and the subject's `serialNumber` attribute (the
/// national number on a Belgian eID).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertificate {
    pub subject: String,
    pub issuer: String,
    pub serial_number: Option<String>,
}

impl ClientCertificate {
    /// Reads subject and issuer of a DER certificate.
    pub fn parse(der: &[u8]) -> Result<ClientCertificate, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("not a certificate: {e}"))?;
        let serial_number = cert
            .subject()
            .iter_by_oid(&x509_parser::oid_registry::OID_X509_SERIALNUMBER)
            .next()
            .and_then(|a| a.as_str().ok())
            .map(str::to_owned);
        Ok(ClientCertificate {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial_number,
        })
    }

    /// `subject=…; issuer=…`, as audit events write it.
    pub fn describe(&self) -> String {
        format!("subject={}; issuer={}", self.subject, self.issuer)
    }
}

/// A client certificate the handshake refused, and why.
#[derive(Clone, Debug)]
pub struct Rejected {
    /// The certificate, when it could be read at all.
    pub certificate: Option<ClientCertificate>,
    pub reason: String,
}

/// Most refusals waiting to be audited; past it a refusal is only counted and logged (a flood of
/// bad handshakes must not queue without bound).
const REJECTED_QUEUE: usize = 1024;

/// The rustls configuration of a listener, and (with client CAs) the refusals to audit.
pub struct Tls {
    pub config: Arc<ServerConfig>,
    /// Refused client certificates, for the audit chain.
    pub rejected: Option<tokio::sync::mpsc::Receiver<Rejected>>,
}

/// The provider every TLS object of Iris uses (one crypto library in the build).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the files and builds the listener's configuration (HTTP/1.1 only, like the server).
pub fn load(files: &TlsFiles) -> Result<Tls, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| file_error(&files.cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(&files.cert, e))?;
    if chain.is_empty() {
        return Err(file_error(&files.cert, "no PEM certificate in it"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| file_error(&files.key, e))?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let (builder, rejected) = if files.client_ca.is_empty() {
        if !files.client_crl.is_empty() {
            return Err(TlsError::Config(
                "--client-crl needs --client-ca (the CAs whose certificates it revokes)".into(),
            ));
        }
        (builder.with_no_client_auth(), None)
    } else {
        let (verifier, rx) = client_verifier(files)?;
        (builder.with_client_cert_verifier(verifier), Some(rx))
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| file_error(&files.key, format!("does not fit the certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        config: Arc::new(config),
        rejected,
    })
}

/// The client verifier: chains to one of the CAs, within validity, not revoked by a CRL (each
/// certificate of the chain is checked against the lists given; a CA without a list is not
/// checked), and a client without a certificate still admitted (a bearer token may follow).
fn client_verifier(
    files: &TlsFiles,
) -> Result<
    (
        Arc<dyn ClientCertVerifier>,
        tokio::sync::mpsc::Receiver<Rejected>,
    ),
    TlsError,
> {
    let mut roots = RootCertStore::empty();
    for path in &files.client_ca {
        let mut n = 0;
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| file_error(path, e))? {
            let cert = cert.map_err(|e| file_error(path, e))?;
            roots.add(cert).map_err(|e| file_error(path, e))?;
            n += 1;
        }
        if n == 0 {
            return Err(file_error(path, "no PEM certificate in it"));
        }
    }
    let mut crls = Vec::new();
    for path in &files.client_crl {
        let bytes = std::fs::read(path).map_err(|e| file_error(path, e))?;
        if !bytes.windows(10).any(|w| w == b"-----BEGIN") {
            // Not PEM: a DER file as a CA publishes it (webpki parses it when the verifier is built).
            crls.push(CertificateRevocationListDer::from(bytes));
            continue;
        }
        let pem: Vec<_> = CertificateRevocationListDer::pem_slice_iter(&bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| file_error(path, e))?;
        if pem.is_empty() {
            return Err(file_error(path, "no X509 CRL section in it"));
        }
        crls.extend(pem);
    }
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .with_crls(crls)
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Config(format!("client CAs or CRLs: {e}")))?;
    let (tx, rx) = tokio::sync::mpsc::channel(REJECTED_QUEUE);
    Ok((Arc::new(Reporting { inner, tx }), rx))
}

/// The WebPKI verifier, reporting each certificate it refuses.
#[derive(Debug)]
struct Reporting {
    inner: Arc<dyn ClientCertVerifier>,
    tx: tokio::sync::mpsc::Sender<Rejected>,
}

impl ClientCertVerifier for Reporting {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_client_cert(end_entity, intermediates, now);
        if let Err(e) = &verdict {
            let rejected = Rejected {
                certificate: ClientCertificate::parse(end_entity).ok(),
                reason: e.to_string(),
            };
            if self.tx.try_send(rejected).is_err() {
                tracing::warn!("refused client certificate not audited (queue full): {e}");
            }
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Whether `addr` may serve plain HTTP without `--insecure-http`: only loopback (nothing leaves
/// the machine).
pub fn plain_http_allowed(addr: &std::net::SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// The SHA-256 fingerprint (`AB:CD:…`) of the first certificate of a PEM file, as browsers show it.
pub fn fingerprint(cert_pem: &Path) -> Result<String, TlsError> {
    use sha2::Digest as _;
    let cert = CertificateDer::from_pem_file(cert_pem).map_err(|e| file_error(cert_pem, e))?;
    let digest = sha2::Sha256::digest(cert.as_ref());
    Ok(digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// The `Strict-Transport-Security` value sent on every TLS answer: one year, subdomains included.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// How a connection came: put into each of its requests' extensions by the accept loop.
#[derive(Clone, Debug, Default)]
pub struct ConnectionInfo {
    /// Over TLS.
    pub tls: bool,
    /// The client certificate the handshake verified (chain, dates, revocation lists).
    pub certificate: Option<ClientCertificate>,
}
