//! The embedding API: configure, bind, run and stop a server.
//!
//! [`Server::bind`] creates the master sockets (so a caller can print the addresses
//! actually bound before serving), [`Server::run`] runs the loop on the calling thread until
//! it is stopped, and a [`ServerHandle`] stops it from any other thread by waking the
//! poller.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mio::Waker;

use crate::codec::Codec;
use crate::config::Config;
use crate::error::Error;
use crate::event_loop::EventLoop;
use crate::lifecycle::Lifecycle;
use crate::listener::ListenAddr;
use crate::service::Service;

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
    /// Fails if `config.listen` and `config.inherited` are empty, a socket cannot be bound (address in use, a live
    /// server on a Unix path, a non-socket file at the path), or the poller cannot be set up.
    pub fn bind(config: Config, codec: C, service: S) -> Result<Server<C, S>, Error> {
        if config.listen.is_empty() && config.inherited.is_empty() {
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

    /// Hooks the loop calls as it runs: when shutdown begins, and a periodic heartbeat
    /// from the loop thread (see [`Lifecycle`]). Replaces any set before.
    pub fn set_lifecycle(&mut self, lifecycle: impl Lifecycle + 'static) {
        self.event_loop.set_lifecycle(Box::new(lifecycle));
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
