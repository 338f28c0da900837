//! What a server is told before it starts ([`Config`]) and what it knows once bound
//! ([`ServerInfo`]): read by the loop, by services through their context, and by the
//! daemon's flags.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fd_limit;
use crate::listener::proxy::ProxyFrom;
use crate::listener::{InheritedSocket, ListenAddr, ListenerInfo};

/// How a server listens and what it tolerates.
///
/// Build one with `Config::default()` and set the fields you need.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Master sockets to create, in order. At least one is required, here or in
    /// `inherited`.
    pub listen: Vec<ListenAddr>,
    /// Listening sockets inherited from a supervisor
    /// ([`take_from_env`](crate::listener::activation::take_from_env)). A `listen` address
    /// equal to one's address uses it instead of binding; with `listen` empty, every one is
    /// served. Taken by the server when it binds.
    pub inherited: Vec<InheritedSocket>,
    /// Permission bits for Unix socket files. Default `0o600`: only the owner may connect.
    pub unix_mode: u32,
    /// Length of each master socket's queue of connections not yet accepted.
    pub backlog: i32,
    /// Most clients connected at once; `None` derives it from the open-file limit, leaving
    /// room for the server's own descriptors. Connections past it are answered with an
    /// error and closed.
    pub max_clients: Option<usize>,
    /// Close clients idle for longer than this; `None` never does.
    pub idle_timeout: Option<Duration>,
    /// Most bytes of unparsed input a client may have buffered (a request still arriving).
    pub max_input_buffer: usize,
    /// Stop reading a client's requests while more than this many bytes of its responses
    /// wait to be written (it is not reading them).
    pub output_high_watermark: usize,
    /// Resume reading a paused client once its unwritten responses are below this.
    pub output_low_watermark: usize,
    /// How long a stopping server keeps writing owed responses before closing anyway.
    pub shutdown_timeout: Duration,
    /// Stop gracefully on `SIGINT` and `SIGTERM` (a second signal stops at once).
    pub stop_on_signals: bool,
    /// Peers trusted to begin their connections with a PROXY protocol header (v1 or v2),
    /// which must then come within `proxy_timeout`. When any is set, a header from any
    /// other peer is a protocol error.
    pub proxy_from: Vec<ProxyFrom>,
    /// How long a trusted proxy has to send its complete header.
    pub proxy_timeout: Duration,
    /// The TLS server configuration of the `tls://` listeners (certificate chain and key,
    /// protocol versions, client authentication): required when there is one. A running
    /// server takes a new one with
    /// [`ServerContext::set_tls_config`](crate::ServerContext::set_tls_config): new
    /// connections get it, those already open keep theirs.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// How long a TLS connection has, from its accept, to complete its handshake (its
    /// PROXY header included, when one is expected).
    pub tls_handshake_timeout: Duration,
    /// Most messages other threads may have waiting for the loop
    /// ([`ServerHandle`](crate::ServerHandle)); past it their sends wait or fail. At
    /// least 1.
    pub queue_capacity: usize,
}

/// File descriptors kept for the server's own use when deriving `max_clients` (poller,
/// waker, signal pipe, listeners, logs, and the odd file), as Redis does.
pub const RESERVED_FDS: usize = 32;

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: Vec::new(),
            inherited: Vec::new(),
            unix_mode: 0o600,
            backlog: 1024,
            max_clients: None,
            idle_timeout: None,
            max_input_buffer: 1024 * 1024 * 1024,
            output_high_watermark: 64 * 1024 * 1024,
            output_low_watermark: 16 * 1024 * 1024,
            shutdown_timeout: Duration::from_secs(10),
            stop_on_signals: false,
            proxy_from: Vec::new(),
            proxy_timeout: Duration::from_secs(5),
            tls: None,
            tls_handshake_timeout: Duration::from_secs(10),
            queue_capacity: 1024,
        }
    }
}

impl Config {
    /// The client limit in force: `max_clients`, or the open-file limit less
    /// [`RESERVED_FDS`].
    pub fn effective_max_clients(&self) -> usize {
        self.max_clients
            .unwrap_or_else(|| fd_limit::current().saturating_sub(RESERVED_FDS).max(1))
    }
}

/// Facts about a running server that services may read.
#[derive(Debug)]
pub struct ServerInfo {
    pub(crate) started: Instant,
    pub(crate) listeners: Vec<Arc<ListenerInfo>>,
    pub(crate) config: Config,
    pub(crate) max_clients: usize,
}

impl ServerInfo {
    /// When the server was bound.
    pub fn started(&self) -> Instant {
        self.started
    }
    /// The master sockets, with the addresses actually bound.
    pub fn listeners(&self) -> &[Arc<ListenerInfo>] {
        &self.listeners
    }
    /// The configuration the server runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// The client limit in force.
    pub fn max_clients(&self) -> usize {
        self.max_clients
    }
}
