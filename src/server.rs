//! The embedding API: configure, bind, run and stop a server.
//!
//! [`Server::bind`] creates the master sockets (so a caller can print the addresses
//! actually bound before serving), [`Server::run`] runs the loop on the calling thread until
//! it is stopped, and a [`ServerHandle`] reaches it from any other thread (send to a
//! client, run code on the loop thread, stop) through a bounded queue and the poller's
//! waker.

use crate::codec::Codec;
use crate::config::Config;
use crate::error::Error;
use crate::event_loop::Bound;
use crate::lifecycle::Lifecycle;
use crate::listener::ListenAddr;
use crate::service::Service;
use crate::service::handle::{self, Inbox};

pub use crate::service::ServerHandle;

/// A bound server, ready to [`run`](Server::run).
///
/// # Examples
/// ```
/// use muxd::resp::RespCodec;
/// use muxd::commands::CommandService;
/// use muxd::{Config, Server};
///
/// let mut config = Config::default();
/// config.listen.push("tcp://127.0.0.1:0".parse()?);
/// let server = Server::bind(config, RespCodec::default(), CommandService::default())?;
/// println!("serving on {}", server.local_addrs()[0]);
/// let handle = server.handle();
/// let serving = std::thread::spawn(move || server.run());
/// // ... then, from this thread or any other:
/// handle.stop().expect("waking the loop");
/// serving.join().expect("the loop's thread")?;
/// # Ok::<(), muxd::Error>(())
/// ```
pub struct Server<C: Codec, S: Service<C>> {
    bound: Bound<C, S>,
    handle: ServerHandle<C, S>,
    /// The loop's side of the handle's queue.
    inbox: Inbox<C, S>,
}

impl<C: Codec, S: Service<C>> Server<C, S> {
    /// Creates the poller and binds every master socket in `config.listen`.
    ///
    /// # Errors
    /// Fails if `config.listen` and `config.inherited` are empty, a `tls://` listener has
    /// no `config.tls`, a socket cannot be bound (address in use, a live
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
        let tls_listener = config
            .listen
            .iter()
            .chain(config.inherited.iter().map(|s| s.addr()))
            .any(|a| a.kind() == crate::ListenerKind::Tls);
        if tls_listener && config.tls.is_none() {
            return Err(Error::config(
                "a tls:// listener needs a TLS configuration (Config::tls)",
            ));
        }
        if config.queue_capacity == 0 {
            return Err(Error::config("the queue capacity is zero"));
        }
        let capacity = config.queue_capacity;
        let (bound, waker) = Bound::new(config, codec, service)?;
        let (handle, inbox) = handle::channel(waker, capacity);
        Ok(Server {
            bound,
            handle,
            inbox,
        })
    }

    /// The addresses actually bound, in the order given (port 0 resolved).
    pub fn local_addrs(&self) -> Vec<ListenAddr> {
        self.bound
            .info()
            .listeners
            .iter()
            .map(|l| l.addr.clone())
            .collect()
    }

    /// The client limit in force.
    pub fn max_clients(&self) -> usize {
        self.bound.info().max_clients
    }

    /// Hooks the loop calls as it runs: when shutdown begins, and a periodic heartbeat
    /// from the loop thread (see [`Lifecycle`]). Replaces any set before.
    pub fn set_lifecycle(&mut self, lifecycle: impl Lifecycle + 'static) {
        self.bound.set_lifecycle(Box::new(lifecycle));
    }

    /// A handle for other threads: send to clients, run code on the loop thread, stop.
    pub fn handle(&self) -> ServerHandle<C, S> {
        self.handle.clone()
    }

    /// Serves until stopped (by a [`ServerHandle`], a service, or a signal when
    /// `stop_on_signals` is set), then closes every client and master socket, removes
    /// the Unix socket files and returns the service.
    ///
    /// # Errors
    /// Fails only if the poller itself fails; no client's behaviour can make it fail.
    pub fn run(self) -> Result<S, Error> {
        self.bound.run(self.handle, self.inbox)
    }
}
