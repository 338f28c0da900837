//! The embedding API: configure, bind, run and stop a server.
//!
//! [`Server::bind`] creates the master sockets (so a caller can print the addresses
//! actually bound before serving), [`Server::run`] runs the loop on the calling thread until
//! it is stopped, and a [`ServerHandle`] stops it from any other thread by waking the
//! poller.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::Waker;

use crate::codec::Codec;
use crate::error::Error;
use crate::event_loop::EventLoop;
use crate::listener::{ListenAddr, ListenerInfo};
use crate::service::Service;

/// How a server listens and what it tolerates.
///
/// Build one with `Config::default()` and set the fields you need.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Master sockets to create, in order. At least one is required.
    pub listen: Vec<ListenAddr>,
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
}

/// File descriptors kept for the server's own use when deriving `max_clients` (poller,
/// waker, signal pipe, listeners, logs, and the odd file), as Redis does.
pub const RESERVED_FDS: usize = 32;

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: Vec::new(),
            unix_mode: 0o600,
            backlog: 1024,
            max_clients: None,
            idle_timeout: None,
            max_input_buffer: 1024 * 1024 * 1024,
            output_high_watermark: 64 * 1024 * 1024,
            output_low_watermark: 16 * 1024 * 1024,
            shutdown_timeout: Duration::from_secs(10),
            stop_on_signals: false,
        }
    }
}

impl Config {
    /// The client limit in force: `max_clients`, or the open-file limit less
    /// [`RESERVED_FDS`].
    pub fn effective_max_clients(&self) -> usize {
        self.max_clients
            .unwrap_or_else(|| open_file_limit().saturating_sub(RESERVED_FDS).max(1))
    }
}

/// The soft limit on open files (`RLIMIT_NOFILE`).
pub fn open_file_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for getrlimit to write.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if rc == 0 {
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
    } else {
        1024
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

/// A bound server, ready to [`run`](Server::run).
///
/// # Examples
/// ```no_run
/// use muxd::resp::RespCodec;
/// use muxd::commands::CommandService;
/// use muxd::{Config, Server};
///
/// let mut config = Config::default();
/// config.listen.push("tcp://127.0.0.1:0".parse()?);
/// let server = Server::bind(config, RespCodec::default(), CommandService::default())?;
/// println!("serving on {}", server.local_addrs()[0]);
/// let handle = server.handle();
/// std::thread::spawn(move || {
///     std::thread::sleep(std::time::Duration::from_secs(1));
///     handle.stop();
/// });
/// server.run()?;
/// # Ok::<(), muxd::Error>(())
/// ```
pub struct Server<C: Codec, S: Service<C>> {
    event_loop: EventLoop<C, S>,
    handle: ServerHandle,
}

impl<C: Codec, S: Service<C>> Server<C, S> {
    /// Creates the poller and binds every master socket in `config.listen`.
    ///
    /// # Errors
    /// Fails if `config.listen` is empty, a socket cannot be bound (address in use, a live
    /// server on a Unix path, a non-socket file at the path), or the poller cannot be set up.
    pub fn bind(config: Config, codec: C, service: S) -> Result<Server<C, S>, Error> {
        if config.listen.is_empty() {
            return Err(Error::config("no listen address given"));
        }
        if config.output_low_watermark > config.output_high_watermark {
            return Err(Error::config(
                "output low watermark is above the high watermark",
            ));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (event_loop, waker) = EventLoop::new(config, codec, service, Arc::clone(&stop))?;
        Ok(Server {
            event_loop,
            handle: ServerHandle {
                inner: Arc::new(HandleInner { waker, stop }),
            },
        })
    }

    /// The addresses actually bound, in the order given (port 0 resolved).
    pub fn local_addrs(&self) -> Vec<ListenAddr> {
        self.event_loop
            .info()
            .listeners
            .iter()
            .map(|l| l.addr.clone())
            .collect()
    }

    /// The client limit in force.
    pub fn max_clients(&self) -> usize {
        self.event_loop.info().max_clients
    }

    /// A handle that stops this server from another thread.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Serves until stopped (by a [`ServerHandle`], a service, or a signal when
    /// `stop_on_signals` is set), then closes every client and master socket, removes
    /// the Unix socket files and returns the service.
    ///
    /// # Errors
    /// Fails only if the poller itself fails; no client's behaviour can make it fail.
    pub fn run(self) -> Result<S, Error> {
        self.event_loop.run()
    }
}

/// Stops a running [`Server`] from any thread. Cheap to clone.
#[derive(Clone)]
pub struct ServerHandle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
}

impl ServerHandle {
    /// Asks the server to stop gracefully, as on `SIGTERM`. Returns at once.
    ///
    /// # Errors
    /// Fails only if the poller could not be woken.
    pub fn stop(&self) -> io::Result<()> {
        self.inner.stop.store(true, Ordering::SeqCst);
        self.inner.waker.wake()
    }
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle").finish_non_exhaustive()
    }
}
