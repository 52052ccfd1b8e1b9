//! TLS options of the listeners (`iris serve`, `iris witness serve`): certificate and key, client
//! CAs and CRLs for certificate sign-in, the self-signed certificate of a demo, and the rule that
//! plain HTTP is only for loopback (or said out loud with `--insecure-http`).

use anyhow::{Context, bail};
use iris_web::tls::{TlsFiles, plain_http_allowed};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// TLS of a listener.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct TlsArgs {
    /// The server's certificate chain, PEM (leaf first). With --tls-key: HTTPS only.
    #[arg(long, env = "IRIS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key, PEM.
    #[arg(long, env = "IRIS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Make (on first start) and use a self-signed certificate for localhost, this host's name and
    /// the listen address, kept in the data directory's `tls/` (the demo does this by itself when
    /// it listens beyond loopback).
    #[arg(long, conflicts_with = "tls_cert")]
    pub tls_self_signed: bool,
    /// Serve plain HTTP on an address other than loopback (only behind a TLS proxy on this host:
    /// tokens and answers would otherwise cross the network in clear).
    #[arg(long, env = "IRIS_INSECURE_HTTP")]
    pub insecure_http: bool,
}

/// Client-certificate sign-in (mutual TLS, eID-like).
#[derive(clap::Args, Debug, Default, Clone)]
pub struct ClientCertArgs {
    /// A CA whose client certificates may sign in, PEM (repeatable, or comma-separated in
    /// IRIS_CLIENT_CA). Each certificate's subject is looked up in the directory's `users.csv`.
    #[arg(long = "client-ca", env = "IRIS_CLIENT_CA", value_delimiter = ',')]
    pub client_ca: Vec<PathBuf>,
    /// A certificate revocation list of those CAs, PEM or DER (repeatable; read at start). With
    /// CRLs, a certificate whose CA has no list is refused (its status is unknown).
    #[arg(long = "client-crl", env = "IRIS_CLIENT_CRL", value_delimiter = ',')]
    pub client_crl: Vec<PathBuf>,
}

impl TlsArgs {
    /// The TLS files of a listener on `listen`, or `None` for plain HTTP — refused beyond loopback
    /// unless `--insecure-http`. `self_signed_dir` is where a self-signed certificate is kept when
    /// one is asked for (or `demo` listens beyond loopback).
    pub fn resolve(
        &self,
        listen: SocketAddr,
        self_signed_dir: &Path,
        demo: bool,
        clients: &ClientCertArgs,
    ) -> anyhow::Result<Option<TlsFiles>> {
        let files = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                ..TlsFiles::default()
            }),
            _ if self.tls_self_signed || (demo && !plain_http_allowed(&listen)) => {
                Some(self_signed(self_signed_dir, listen)?)
            }
            _ => None,
        };
        let Some(mut files) = files else {
            if !clients.client_ca.is_empty() {
                bail!(
                    "--client-ca needs TLS: give --tls-cert and --tls-key (or --tls-self-signed)"
                );
            }
            if !plain_http_allowed(&listen) && !self.insecure_http {
                bail!(
                    "refusing to serve plain HTTP on {listen}: tokens and answers would cross the network in clear. \
                     Give --tls-cert and --tls-key (IRIS_TLS_CERT, IRIS_TLS_KEY), listen on loopback (127.0.0.1), \
                     or add --insecure-http if a TLS proxy on this host terminates TLS"
                );
            }
            return Ok(None);
        };
        files.client_ca = clients.client_ca.clone();
        files.client_crl = clients.client_crl.clone();
        Ok(Some(files))
    }
}

/// The scheme of a listener's URL.
pub fn scheme(tls: &Option<TlsFiles>) -> &'static str {
    if tls.is_some() { "https" } else { "http" }
}

/// The self-signed certificate in `dir` (`self-signed.pem`, `self-signed.key`), made on first use
/// for `localhost`, `127.0.0.1`, `::1`, this host's name and the listen address; printed with its
/// fingerprint and how to trust it each start.
fn self_signed(dir: &Path, listen: SocketAddr) -> anyhow::Result<TlsFiles> {
    let cert = dir.join("self-signed.pem");
    let key = dir.join("self-signed.key");
    if !cert.exists() || !key.exists() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
            let host = host.trim();
            if !host.is_empty() {
                names.push(host.to_owned());
            }
        }
        if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
            names.push(listen.ip().to_string());
        }
        let made = rcgen::generate_simple_self_signed(names)
            .context("making a self-signed certificate")?;
        crate::cmd::serve::write_private(&key, &made.signing_key.serialize_pem())?;
        std::fs::write(&cert, made.cert.pem())
            .with_context(|| format!("writing {}", cert.display()))?;
        eprintln!("tls: made a self-signed certificate {}", cert.display());
    }
    let fingerprint = iris_web::tls::fingerprint(&cert)?;
    eprintln!(
        "tls: self-signed certificate {} (SHA-256 {fingerprint}).\n     \
         Browsers warn until it is trusted: compare the fingerprint and accept it, or import the file as an authority;\n     \
         curl --cacert {} https://127.0.0.1:PORT/v1/health",
        cert.display(),
        cert.display()
    );
    Ok(TlsFiles {
        cert,
        key,
        ..TlsFiles::default()
    })
}
