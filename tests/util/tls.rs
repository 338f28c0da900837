//! Certificates made at test time (rcgen, ring) and the client side of TLS for the tests:
//! a CA, a server certificate for `localhost` and `127.0.0.1` signed by it, client
//! certificates (valid or expired), all written as PEM files in a temp dir, and a rustls
//! client configuration trusting the CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use muxd::rustls::ClientConfig;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};

/// A test CA and the PEM files of what it signed.
pub struct Pki {
    issuer: Issuer<'static, KeyPair>,
    dir: PathBuf,
    /// The CA certificate.
    pub ca: PathBuf,
    /// The server's certificate (`localhost`, `127.0.0.1`) and key.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// A valid client certificate and key.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    /// A new CA named `name`, its files (prefixed `name`) in `dir`.
    pub fn new(dir: &Path, name: &str) -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        let ca = dir.join(format!("{name}-ca.crt"));
        std::fs::write(&ca, cert.pem()).unwrap();
        let issuer = Issuer::new(params, key);
        let mut pki = Pki {
            issuer,
            dir: dir.to_owned(),
            ca,
            server_cert: PathBuf::new(),
            server_key: PathBuf::new(),
            client_cert: PathBuf::new(),
            client_key: PathBuf::new(),
        };
        (pki.server_cert, pki.server_key) = pki.sign(
            &format!("{name}-server"),
            &["localhost", "127.0.0.1"],
            false,
        );
        (pki.client_cert, pki.client_key) = pki.sign(&format!("{name}-client"), &[], false);
        pki
    }

    /// Signs a certificate for `names` (expired if `expired`); returns its PEM files.
    pub fn sign(&self, file: &str, names: &[&str], expired: bool) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, file);
        if expired {
            params.not_before = date_time_ymd(2000, 1, 1);
            params.not_after = date_time_ymd(2001, 1, 1);
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (cert_path, key_path) = (
            self.dir.join(format!("{file}.crt")),
            self.dir.join(format!("{file}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }

    /// The daemon's TLS flags for this CA's server certificate (and the CA, to verify
    /// clients with, when `verify_clients`).
    pub fn server_flags(&self, verify_clients: bool) -> Vec<String> {
        let mut flags = vec![
            "--tls-cert-file".to_owned(),
            self.server_cert.display().to_string(),
            "--tls-key-file".to_owned(),
            self.server_key.display().to_string(),
        ];
        if verify_clients {
            flags.push("--tls-ca-cert-file".to_owned());
            flags.push(self.ca.display().to_string());
        }
        flags
    }

    /// A client configuration trusting this CA, showing `client` (certificate and key
    /// files) if given.
    pub fn client_config(&self, client: Option<(&Path, &Path)>) -> Arc<ClientConfig> {
        let roots = muxd::tls::root_store(&self.ca).unwrap();
        let builder = ClientConfig::builder_with_provider(muxd::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        Arc::new(match client {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    muxd::tls::certificates(cert).unwrap(),
                    muxd::tls::private_key(key).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        })
    }
}
