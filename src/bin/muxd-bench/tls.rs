//! `--tls`: the client side of TLS, as redis-benchmark's `--tls --cacert --cert --key
//! --sni` make it: the server's certificate verified against the CA file, and a client
//! certificate shown when the server asks for one. PEM files are read by the library's
//! [`muxd::tls`] helpers; the crypto provider is the library's (`ring`).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use muxd::rustls::pki_types::ServerName;
use muxd::rustls::{ClientConfig, ClientConnection};

/// How every connection of a run speaks TLS.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    /// The name the server's certificate must carry (and SNI, for a DNS name).
    server_name: ServerName<'static>,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl PartialEq for TlsClient {
    fn eq(&self, other: &TlsClient) -> bool {
        Arc::ptr_eq(&self.config, &other.config) && self.server_name == other.server_name
    }
}

impl TlsClient {
    /// Trusts the CAs of `cacert`, shows `cert` (with its `key`) if given, and expects
    /// the server's certificate to name `name` (a host name or an IP address).
    pub fn from_files(
        cacert: &Path,
        cert: Option<&Path>,
        key: Option<&Path>,
        name: &str,
    ) -> anyhow::Result<TlsClient> {
        let roots = muxd::tls::root_store(cacert)?;
        let builder = ClientConfig::builder_with_provider(muxd::tls::provider())
            .with_protocol_versions(muxd::rustls::ALL_VERSIONS)
            .context("TLS protocol versions")?
            .with_root_certificates(roots);
        let config = match (cert, key) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(muxd::tls::certificates(cert)?, muxd::tls::private_key(key)?)
                .context("--cert and --key")?,
            (None, None) => builder.with_no_client_auth(),
            _ => bail!("--cert and --key go together"),
        };
        let server_name = ServerName::try_from(name.to_owned())
            .with_context(|| format!("{name:?} is not a host name or an IP address"))?;
        Ok(TlsClient {
            config: Arc::new(config),
            server_name,
        })
    }

    /// A new client connection, in its handshake.
    pub fn connection(&self) -> anyhow::Result<ClientConnection> {
        ClientConnection::new(Arc::clone(&self.config), self.server_name.clone())
            .context("starting TLS")
    }
}
