//! TLS configurations from PEM files, as the daemon and `muxd-bench` make them: the
//! server's ([`TlsFiles::server_config`]: certificate chain, key, and a CA to verify
//! clients' certificates with) and the pieces a client's is made of.
//!
//! The crypto provider is rustls's `ring`: it builds with a Rust toolchain and a C
//! compiler alone (aws-lc-rs, rustls's default, also wants cmake). TLS 1.3 and 1.2.
//! Reading the files is the caller's part of reloading: make a new configuration and hand
//! it to the running server ([`ServerContext::set_tls_config`]); a file that does not load
//! is an error and the configuration in force stays.
//!
//! [`ServerContext::set_tls_config`]: crate::ServerContext::set_tls_config

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::error::Error;

/// Whether clients must show a certificate signed by the CA (Redis's `tls-auth-clients`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// Required (Redis's default, once a CA is given).
    #[default]
    Yes,
    /// Neither asked for nor accepted.
    No,
    /// Verified when shown, not required.
    Optional,
}

impl FromStr for ClientAuth {
    type Err = String;

    fn from_str(text: &str) -> Result<ClientAuth, String> {
        match text.to_ascii_lowercase().as_str() {
            "yes" => Ok(ClientAuth::Yes),
            "no" => Ok(ClientAuth::No),
            "optional" => Ok(ClientAuth::Optional),
            _ => Err(format!("{text:?}: expected yes, no or optional")),
        }
    }
}

impl fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientAuth::Yes => "yes",
            ClientAuth::No => "no",
            ClientAuth::Optional => "optional",
        })
    }
}

/// Where a TLS server's certificate, key and client CA are, and how clients are
/// authenticated: Redis's `tls-cert-file`, `tls-key-file`, `tls-ca-cert-file`,
/// `tls-auth-clients`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate chain, PEM, leaf first.
    pub cert_file: PathBuf,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// CA certificates, PEM, that clients' certificates must chain to. Without it,
    /// clients are not asked for certificates.
    pub ca_cert_file: Option<PathBuf>,
    /// With a CA: whether a client certificate is required, optional, or not asked for.
    pub auth_clients: ClientAuth,
}

impl TlsFiles {
    /// Reads the files and makes the server configuration: TLS 1.3 and 1.2, the `ring`
    /// provider, client certificates verified against the CA as `auth_clients` says.
    ///
    /// # Errors
    /// [`ErrorKind::Tls`](crate::ErrorKind::Tls), naming the file, if one cannot be read
    /// or holds no usable certificate or key, or the key does not match the certificate.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, Error> {
        let chain = certificates(&self.cert_file)?;
        let key = private_key(&self.key_file)?;
        let provider = provider();
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .map_err(|e| Error::tls("protocol versions", e))?;
        let builder = match (&self.ca_cert_file, self.auth_clients) {
            (None, _) | (Some(_), ClientAuth::No) => builder.with_no_client_auth(),
            (Some(ca), auth) => {
                let roots = Arc::new(root_store(ca)?);
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
                let verifier = if auth == ClientAuth::Optional {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier.build().map_err(|e| Error::tls(ca.display(), e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|e| Error::tls(self.key_file.display(), e))?;
        Ok(Arc::new(config))
    }
}

/// The crypto provider every configuration here uses: rustls's `ring`.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file, in order.
///
/// # Errors
/// [`ErrorKind::Tls`](crate::ErrorKind::Tls) if it cannot be read or holds none.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Error::tls(path.display(), e))?;
    if certs.is_empty() {
        return Err(Error::tls(path.display(), "no certificate in the file"));
    }
    Ok(certs)
}

/// The first private key of a PEM file.
///
/// # Errors
/// [`ErrorKind::Tls`](crate::ErrorKind::Tls) if it cannot be read or holds none.
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| Error::tls(path.display(), e))
}

/// The certificates of a PEM file as trust anchors.
///
/// # Errors
/// [`ErrorKind::Tls`](crate::ErrorKind::Tls) if it cannot be read, holds none, or one
/// is not a usable CA certificate.
pub fn root_store(path: &Path) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots.add(cert).map_err(|e| Error::tls(path.display(), e))?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_auth_reads_redis_words() {
        assert_eq!("yes".parse(), Ok(ClientAuth::Yes));
        assert_eq!("NO".parse(), Ok(ClientAuth::No));
        assert_eq!("optional".parse(), Ok(ClientAuth::Optional));
        assert!("maybe".parse::<ClientAuth>().is_err());
        assert_eq!(ClientAuth::Optional.to_string(), "optional");
    }

    #[test]
    fn missing_and_empty_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let files = TlsFiles {
            cert_file: dir.path().join("none.pem"),
            key_file: empty.clone(),
            ca_cert_file: None,
            auth_clients: ClientAuth::Yes,
        };
        let e = files.server_config().unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Tls);
        assert!(e.to_string().contains("none.pem"), "{e}");
        let e = certificates(&empty).unwrap_err();
        assert!(e.to_string().contains("no certificate"), "{e}");
    }
}
