//! Accepting: a master socket's connection requests become client handles.
//!
//! A readable master socket is accepted from until `WouldBlock`, at most
//! [`ACCEPTS_PER_EVENT`] connections per turn (the rest next turn, so a connection storm
//! cannot starve connected clients). Each connection is checked against the client limit
//! before anything is allocated for it, takes a slot in the table and is registered under
//! that slot's key, gets its idle deadline, then the service greets it (`on_connect`).
//! A `tls://` listener's connection becomes a [`TlsStream`] with the TLS configuration in
//! force at its accept, and gets a handshake deadline.
//! When `accept` fails for lack of descriptors the listener pauses and retries after
//! [`ACCEPT_RETRY`] (a deadline of the loop), or as soon as a client closes: never in a
//! busy loop.

use std::io::{self, Write};
use std::net::Shutdown;
use std::os::unix::io::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::{Interest, Poll};

use super::timers::LoopTimer;
use super::{EventLoop, LOG_TARGET};
use crate::client::{Client, ClientInfo};
use crate::codec::Codec;
use crate::config::Config;
use crate::error::Error;
use crate::listener::activation::{self, Origin};
use crate::listener::proxy::ProxyFrom;
use crate::listener::{BindOptions, InheritedSocket, Listener, ListenerInfo, ListenerKind};
use crate::service::Service;
use crate::stream::{Peer, Stream, TlsStream};
use crate::tokens;

/// Connections one listener may accept per turn (as Redis's `MAX_ACCEPTS_PER_CALL`).
pub(crate) const ACCEPTS_PER_EVENT: usize = 256;
/// Pause before retrying `accept` after it failed for lack of file descriptors.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// Least time between two "client limit reached" warnings.
const WARN_INTERVAL: Duration = Duration::from_secs(1);

/// A master socket and its accept state.
pub(super) struct ListenerSlot {
    /// `None` once closed at shutdown.
    listener: Option<Listener>,
    /// The accept budget ran out with connections possibly still queued.
    pub(super) pending: bool,
    /// `accept` failed for lack of descriptors: retry when a retry deadline comes or a
    /// descriptor frees.
    paused: bool,
    /// A retry deadline is armed (one at a time).
    retry_armed: bool,
}

impl ListenerSlot {
    /// The listener's address and kind, while it is open.
    pub(super) fn info(&self) -> Option<Arc<ListenerInfo>> {
        self.listener.as_ref().map(|l| Arc::clone(l.info()))
    }

    /// Closes the master socket (at shutdown); a Unix socket's file is removed.
    pub(super) fn close(&mut self, poll: &Poll) {
        if let Some(mut listener) = self.listener.take() {
            let _ = poll.registry().deregister(&mut listener);
            info!(target: LOG_TARGET, "closed listener {}", listener.info().addr);
        }
        self.pending = false;
        self.paused = false;
    }

    /// A descriptor was freed: if accepting had paused for lack of them, try again now.
    pub(super) fn descriptor_freed(&mut self) {
        if self.paused {
            self.pending = true;
        }
    }
}

/// Binds every master socket in `config.listen`, or takes the inherited socket bound
/// there (see [`activation::plan`]), and registers listener `i` under its token.
pub(super) fn bind_listeners(
    poll: &Poll,
    config: &Config,
    inherited: Vec<InheritedSocket>,
) -> Result<Vec<ListenerSlot>, Error> {
    let options = BindOptions {
        unix_mode: config.unix_mode,
        backlog: config.backlog,
    };
    let planned = activation::plan(&config.listen, inherited);
    let mut listeners = Vec::with_capacity(planned.len());
    for (i, origin) in planned.into_iter().enumerate() {
        let (mut listener, how) = match origin {
            Origin::Bind(addr) => (Listener::bind(&addr, options)?, String::new()),
            Origin::Inherited(socket) => {
                let how = format!(
                    " inherited fd={} name={}",
                    socket.fd(),
                    socket.name().unwrap_or("")
                );
                (Listener::adopt(socket)?, how)
            }
        };
        if let Err(e) =
            poll.registry()
                .register(&mut listener, tokens::listener(i), Interest::READABLE)
        {
            return Err(Error::bind(&listener.info().addr, e));
        }
        info!(target: LOG_TARGET, "listening on {}{how}", listener.info().addr);
        listeners.push(ListenerSlot {
            listener: Some(listener),
            pending: false,
            paused: false,
            retry_armed: false,
        });
    }
    Ok(listeners)
}

impl<C: Codec, S: Service<C>> EventLoop<C, S> {
    /// Accepts what listener `index` has queued, up to this turn's budget.
    pub(super) fn accept(&mut self, index: usize, now: Instant) {
        for _ in 0..ACCEPTS_PER_EVENT {
            let Some(slot) = self.listeners.get_mut(index) else {
                return;
            };
            let Some(listener) = slot.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    if std::mem::take(&mut slot.paused) {
                        info!(
                            target: LOG_TARGET,
                            "accepting again after descriptor exhaustion listener={}",
                            listener.info().addr
                        );
                    }
                    let listener_info = Arc::clone(listener.info());
                    self.core.stats.total_connections_received += 1;
                    self.admit(listener_info, stream, peer, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    slot.pending = false;
                    return;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                    ) => {}
                Err(e) => {
                    // EMFILE/ENFILE/ENOBUFS/ENOMEM: the connection stays queued. Retry
                    // after a pause or as soon as a client closes, never in a busy loop.
                    let exhausted = matches!(
                        e.raw_os_error(),
                        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                    );
                    if !slot.paused {
                        warn!(
                            target: LOG_TARGET,
                            "accept failed, pausing accepts listener={} error={e}",
                            listener.info().addr
                        );
                    }
                    if exhausted {
                        self.core.stats.accept_fd_exhausted += 1;
                    }
                    slot.paused = true;
                    slot.pending = false;
                    if !std::mem::replace(&mut slot.retry_armed, true) {
                        self.arm(LoopTimer::AcceptRetry(index), now + ACCEPT_RETRY);
                    }
                    return;
                }
            }
        }
        if let Some(slot) = self.listeners.get_mut(index) {
            slot.pending = true;
        }
    }

    /// Accepts where the last turn's budget ran out, or where a freed descriptor may let
    /// a paused listener accept again.
    pub(super) fn accept_deferred(&mut self, now: Instant) {
        for index in 0..self.listeners.len() {
            if self.listeners.get(index).is_some_and(|slot| slot.pending) {
                self.accept(index, now);
            }
        }
    }

    /// A paused listener's retry deadline came: try accepting again.
    pub(super) fn retry_accept(&mut self, index: usize, now: Instant) {
        let Some(slot) = self.listeners.get_mut(index) else {
            return;
        };
        slot.retry_armed = false;
        if slot.paused {
            self.accept(index, now);
        }
    }

    /// Puts an accepted connection in the table, or refuses it past the client limit.
    fn admit(&mut self, listener: Arc<ListenerInfo>, mut stream: Stream, peer: Peer, now: Instant) {
        if self.core.clients.len() >= self.core.info.max_clients {
            self.core.stats.rejected_connections += 1;
            if self
                .last_limit_warning
                .is_none_or(|t| now.duration_since(t) >= WARN_INTERVAL)
            {
                warn!(
                    target: LOG_TARGET,
                    "client limit reached, rejecting connections max_clients={} rejected_total={}",
                    self.core.info.max_clients, self.core.stats.rejected_connections
                );
                self.last_limit_warning = Some(now);
            }
            // A TLS client would take the plain error for a bad record: it is only closed.
            if listener.kind() != ListenerKind::Tls {
                let mut message = Vec::new();
                C::encode_error(
                    C::Session::default(),
                    &"max number of clients reached",
                    &mut message,
                );
                let _ = stream.write(&message);
            }
            let _ = stream.shutdown(Shutdown::Write);
            return;
        }
        let tls = listener.kind() == ListenerKind::Tls;
        if tls {
            stream = match self.start_tls(stream, &peer) {
                Some(stream) => stream,
                None => return,
            };
        }
        let fd = stream.as_raw_fd();
        let registry = self.poll.registry();
        let shown = Arc::clone(&listener);
        // With the PROXY protocol on, every connection is looked at before it is served:
        // a trusted proxy's must bring a header, anyone else's must not.
        let proxy = &self.core.info.config.proxy_from;
        let header = (!proxy.is_empty()).then(|| ProxyFrom::any_trusts(proxy, &peer));
        let inserted = self.core.clients.insert_with(|key, id| {
            if key >= tokens::MAX_CLIENT_KEYS {
                return Err(io::Error::other("no client key left"));
            }
            registry.register(&mut stream, tokens::client(key), Interest::READABLE)?;
            let info = ClientInfo::new(id, listener, peer, now);
            let client = Client::new(info, stream);
            Ok::<_, io::Error>(match header {
                Some(trusted) => client.awaiting_proxy_header(trusted),
                None => client,
            })
        });
        match inserted {
            Ok((key, id)) => {
                debug!(
                    target: LOG_TARGET,
                    "client connected client={id} kind={} peer={peer} laddr={} fd={fd}{}",
                    shown.kind(),
                    shown.addr,
                    match header {
                        Some(true) => " proxy_header=expected",
                        Some(false) => " proxy_header=untrusted",
                        None => "",
                    }
                );
                self.arm_idle(key, now);
                if tls {
                    self.arm_handshake(key, now);
                }
                match header {
                    None => self.greet(key, now),
                    Some(true) => self.await_header(key, now),
                    // Greeted once its first bytes are known to begin no header.
                    Some(false) => {}
                }
            }
            Err(e) => {
                warn!(target: LOG_TARGET, "registering a new client failed peer={peer} error={e}")
            }
        }
    }

    /// Starts the server side of TLS on an accepted TCP connection, with the TLS
    /// configuration in force now; `None` (the connection dropped) if it cannot be.
    fn start_tls(&mut self, stream: Stream, peer: &Peer) -> Option<Stream> {
        let Stream::Tcp(socket) = stream else {
            return Some(stream);
        };
        let config = self.core.info.config.tls.as_ref()?;
        match rustls::ServerConnection::new(Arc::clone(config)) {
            Ok(conn) => Some(Stream::Tls(Box::new(TlsStream::new(socket, conn)))),
            Err(e) => {
                warn!(target: LOG_TARGET, "tls setup failed, closing peer={peer} error={e}");
                None
            }
        }
    }
}
