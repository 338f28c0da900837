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
    /// How much unsent output a client subscribed to topics may hold (Redis's
    /// `client-output-buffer-limit pubsub`): past it, it is closed and its messages
    /// dropped, so that a subscriber that does not read cannot hold up or exhaust the
    /// server. Pausing reads, the answer to a client that does not read its responses,
    /// does nothing against messages pushed to it.
    pub pubsub_output_limit: OutputLimit,
    /// Most memory all clients' input and output buffers may hold together (Redis 7's
    /// `maxmemory-clients`); past it, the clients holding the most are closed until the
    /// total is below, so a client within its share is never closed for it. `None`: no
    /// limit. Default: a quarter of the machine's physical memory.
    pub max_client_memory: Option<ClientMemoryLimit>,
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

/// A limit on a client's unsent output, as Redis's `client-output-buffer-limit` states
/// one: a client is closed as soon as it owes `hard` bytes, or once it has owed more than
/// `soft` bytes for longer than `soft_time`. A limit of 0 is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimit {
    /// Close at once at this many bytes.
    pub hard: usize,
    /// Close after `soft_time` above this many bytes.
    pub soft: usize,
    /// How long a client may stay above `soft`.
    pub soft_time: Duration,
}

impl Default for OutputLimit {
    /// Redis's default for the `pubsub` class: `32mb 8mb 60`.
    fn default() -> OutputLimit {
        OutputLimit {
            hard: 32 * 1024 * 1024,
            soft: 8 * 1024 * 1024,
            soft_time: Duration::from_secs(60),
        }
    }
}

/// A limit on the memory of all clients' buffers together (Redis's `maxmemory-clients`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMemoryLimit {
    /// This many bytes.
    Bytes(usize),
    /// This percentage (1 to 100) of the machine's physical memory.
    PercentOfRam(u8),
}

impl ClientMemoryLimit {
    /// The limit in bytes (for a share of memory, of the memory the system reports;
    /// without a figure, no limit).
    pub fn bytes(self) -> usize {
        match self {
            ClientMemoryLimit::Bytes(n) => n,
            ClientMemoryLimit::PercentOfRam(p) => {
                physical_memory().map_or(usize::MAX, |ram| ram / 100 * usize::from(p.min(100)))
            }
        }
    }
}

impl std::fmt::Display for ClientMemoryLimit {
    /// As Redis shows it: `1073741824`, or `25%`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientMemoryLimit::Bytes(n) => write!(f, "{n}"),
            ClientMemoryLimit::PercentOfRam(p) => write!(f, "{p}%"),
        }
    }
}

/// The machine's physical memory in bytes, as the system reports it.
pub fn physical_memory() -> Option<usize> {
    // SAFETY: sysconf has no preconditions.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    usize::try_from(pages)
        .ok()?
        .checked_mul(usize::try_from(page).ok()?)
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
            pubsub_output_limit: OutputLimit::default(),
            max_client_memory: Some(ClientMemoryLimit::PercentOfRam(25)),
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
    /// `config.max_client_memory` in bytes (`usize::MAX`: no limit).
    pub(crate) max_client_memory: usize,
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
    /// The limit on all clients' buffer memory in force, in bytes (`usize::MAX`: none).
    pub fn max_client_memory(&self) -> usize {
        self.max_client_memory
    }
}
