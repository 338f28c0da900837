//! The loop: one thread, one `mio::Poll`, every master socket and client handle on it.
//!
//! This file holds the loop itself: waiting for readiness, routing each event to its
//! room, and the work deferred to the end of each turn. The rooms, one phase each:
//!
//! - [`accept`]: a master socket's connection requests become client handles;
//! - [`serve`]: a client's bytes are read, decoded, and handed to the service;
//! - [`output`]: what a client is owed is written, its `WRITABLE` interest kept in step;
//! - [`close`]: end of stream, lingering, closing and shutdown;
//! - [`memory`]: all clients' buffer memory held under `maxmemory-clients`;
//! - [`proxy`]: with the PROXY protocol on, a connection's header before it is served;
//! - [`timers`]: the loop's deadlines (idle timeout, lingering, accept retries, the stop's
//!   deadline, the PROXY header's, a TLS handshake's, the lifecycle's heartbeat), whose
//!   nearest one is the poll timeout.
//!
//! A turn: wait (at most until the nearest deadline), then for each event: a master
//! socket's token accepts; a client's token writes what it is owed if writable and
//! serves it if readable; the waker or a signal begins a graceful stop. Then the deferred
//! work: what services asked for (close another client, stop), clients whose turn ended
//! at a budget with input left, accepts left over, the deadlines that have come, then
//! every client sent something by another (a published message, `send_to`), written
//! once with all it got this turn, and the clients' memory checked. The client handle decides what an event means for it
//! ([`Client`](crate::client::Client)'s transitions); the loop carries it out. Nothing a
//! client does can end the loop.

use std::io;
use std::mem;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{info, warn};
use mio::{Events, Interest, Poll, Registry, Waker};

use crate::client::CloseReason;
use crate::client::buffers::Scratch;
use crate::codec::Codec;
use crate::config::{ClientMemoryLimit, Config, ServerInfo};
use crate::error::Error;
use crate::lifecycle::Lifecycle;
use crate::service::core::Core;
use crate::service::handle::Inbox;
use crate::service::{ServerHandle, Service};
use crate::tokens::{self, Owner};

mod accept;
mod callbacks;
mod close;
mod memory;
mod output;
mod proxy;
mod serve;
mod timers;

use accept::ListenerSlot;
use timers::LoopDeadlines;

/// Every room of the loop logs under this one target, so `RUST_LOG=muxd::event_loop=debug`
/// and log readers see one name for the loop whichever file a line comes from.
const LOG_TARGET: &str = "muxd::event_loop";

/// What binding creates: the poller, the master sockets, the signal pipe, and what the
/// loop serves with. It can be sent to the thread that will run it; what only the loop
/// thread touches (the client table, the service's timers) is created when it runs.
pub(crate) struct Bound<C: Codec, S: Service<C>> {
    poll: Poll,
    listeners: Vec<ListenerSlot>,
    info: ServerInfo,
    codec: C,
    service: S,
    signals: Option<signal_hook_mio::v1_0::Signals>,
    waker: Arc<Waker>,
    /// What the process around the server is told of its life (the daemon: systemd).
    lifecycle: Option<Box<dyn Lifecycle>>,
}

impl<C: Codec, S: Service<C>> Bound<C, S> {
    /// Creates the poller, binds every master socket in `config.listen` and, if asked,
    /// installs the signal handlers; returns them and the waker that wakes the loop.
    pub(crate) fn new(
        mut config: Config,
        codec: C,
        service: S,
    ) -> Result<(Bound<C, S>, Arc<Waker>), Error> {
        let poll = Poll::new().map_err(|e| Error::poll("creating the poller", e))?;
        let waker = Arc::new(
            Waker::new(poll.registry(), tokens::WAKER)
                .map_err(|e| Error::poll("creating the waker", e))?,
        );
        let inherited = mem::take(&mut config.inherited);
        let listeners = accept::bind_listeners(&poll, &config, inherited)?;
        let signals = if config.stop_on_signals {
            let mut signals = signal_hook_mio::v1_0::Signals::new([libc::SIGINT, libc::SIGTERM])
                .map_err(|e| Error::poll("installing signal handlers", e))?;
            poll.registry()
                .register(&mut signals, tokens::SIGNALS, Interest::READABLE)
                .map_err(|e| Error::poll("registering the signal pipe", e))?;
            Some(signals)
        } else {
            None
        };
        let max_clients = config.effective_max_clients();
        let max_client_memory = config
            .max_client_memory
            .map_or(usize::MAX, ClientMemoryLimit::bytes);
        let info = ServerInfo {
            started: Instant::now(),
            listeners: listeners.iter().filter_map(ListenerSlot::info).collect(),
            config,
            max_clients,
            max_client_memory,
        };
        let bound = Bound {
            poll,
            listeners,
            info,
            codec,
            service,
            signals,
            waker: Arc::clone(&waker),
            lifecycle: None,
        };
        Ok((bound, waker))
    }

    pub(crate) fn info(&self) -> &ServerInfo {
        &self.info
    }

    pub(crate) fn set_lifecycle(&mut self, lifecycle: Box<dyn Lifecycle>) {
        self.lifecycle = Some(lifecycle);
    }

    /// Runs the loop on this thread until stopped, taking what other threads send
    /// through `handle` from `inbox`; returns the service.
    pub(crate) fn run(self, handle: ServerHandle<C, S>, inbox: Inbox<C, S>) -> Result<S, Error> {
        inbox.bind_to_current_thread();
        let registry = self
            .poll
            .registry()
            .try_clone()
            .map_err(|e| Error::poll("cloning the registry", e))?;
        EventLoop::new(self, handle, inbox, registry).run()
    }
}

/// The running loop.
struct EventLoop<C: Codec, S: Service<C>> {
    poll: Poll,
    listeners: Vec<ListenerSlot>,
    /// The client table, the service's timers, the effects it asks for, the server's
    /// info and counters: what the service's contexts reach.
    core: Core<C, S>,
    codec: C,
    service: S,
    /// The shared buffers lent to the client being served.
    scratch: Scratch,
    /// Clients whose turn ended with input possibly left, to serve again next turn.
    ready: Vec<usize>,
    /// The loop's own deadlines: idle timeouts, lingering clients, accept retries, the
    /// stop's deadline.
    deadlines: LoopDeadlines,
    /// What other threads send through a `ServerHandle`.
    inbox: Inbox<C, S>,
    /// The waker woke the loop, or the last turn left messages in the inbox.
    inbox_due: bool,
    signals: Option<signal_hook_mio::v1_0::Signals>,
    /// Set once a stop began: past it, remaining clients are closed.
    shutdown_deadline: Option<Instant>,
    last_limit_warning: Option<Instant>,
    /// What the process around the server is told of its life (the daemon: systemd).
    lifecycle: Option<Box<dyn Lifecycle>>,
    /// Kept so the waker's registration lives as long as the loop.
    _waker: Arc<Waker>,
}

impl<C: Codec, S: Service<C>> EventLoop<C, S> {
    fn new(
        bound: Bound<C, S>,
        handle: ServerHandle<C, S>,
        inbox: Inbox<C, S>,
        registry: Registry,
    ) -> EventLoop<C, S> {
        EventLoop {
            poll: bound.poll,
            listeners: bound.listeners,
            core: Core::new(bound.info, handle, registry),
            codec: bound.codec,
            service: bound.service,
            scratch: Scratch::new(),
            ready: Vec::new(),
            deadlines: LoopDeadlines::default(),
            inbox,
            inbox_due: false,
            signals: bound.signals,
            shutdown_deadline: None,
            last_limit_warning: None,
            lifecycle: bound.lifecycle,
            _waker: bound.waker,
        }
    }

    /// Runs until stopped; returns the service.
    fn run(mut self) -> Result<S, Error> {
        info!(
            "serving max_clients={} maxmemory_clients={} maxmemory_clients_bytes={} timeout={}",
            self.core.info.max_clients,
            self.core
                .info
                .config
                .max_client_memory
                .map_or_else(|| "0".to_owned(), |limit| limit.to_string()),
            self.core
                .info
                .config
                .max_client_memory
                .map_or(0, ClientMemoryLimit::bytes),
            self.core
                .info
                .config
                .idle_timeout
                .map_or(0, |t| t.as_secs_f64().ceil() as u64)
        );
        let mut events = Events::with_capacity(1024);
        self.arm_heartbeat(Instant::now());
        self.start(Instant::now());
        loop {
            let timeout = self.poll_timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                return Err(Error::poll("poll", e));
            }
            let now = Instant::now();
            self.core.now = now;
            self.core.stats.eventloop_cycles += 1;
            for event in events.iter() {
                match tokens::owner(event.token(), self.listeners.len()) {
                    Owner::Client(key) => self.on_client_event(key, event, now),
                    Owner::Listener(index) => self.accept(index, now),
                    Owner::Source(key) => self.on_source_event(key, event, now),
                    Owner::Waker => self.inbox_due = true,
                    Owner::Signals => self.on_signals(now),
                    Owner::Nobody => {}
                }
            }
            if self.inbox.stop_requested() && self.shutdown_deadline.is_none() {
                info!("stop requested");
                self.begin_shutdown(now);
            }
            self.run_deferred(now);
            if let Some(deadline) = self.shutdown_deadline {
                if self.core.clients.is_empty() {
                    break;
                }
                if now >= deadline {
                    warn!(
                        "shutdown timeout reached, closing remaining clients={}",
                        self.core.clients.len()
                    );
                    break;
                }
            }
        }
        for key in self.core.clients.keys() {
            self.close_now(key, CloseReason::Shutdown);
        }
        info!(
            "stopped commands_processed={} connections_received={}",
            self.core.stats.total_commands_processed, self.core.stats.total_connections_received
        );
        Ok(self.service)
    }

    /// How long the next poll may wait: not at all while work is deferred, else until the
    /// nearest deadline, the loop's or the service's (mio rounds up to its resolution, so
    /// the wake-up is never early).
    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.ready.is_empty()
            || self.inbox_due
            || !self.core.effects.flush.is_empty()
            || self.listeners.iter().any(|l| l.pending)
        {
            return Some(Duration::ZERO);
        }
        let next = match (self.next_deadline(), self.core.timers.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        next.map(|t| t.saturating_duration_since(now))
    }

    fn on_signals(&mut self, now: Instant) {
        let mut received = Vec::new();
        if let Some(signals) = self.signals.as_mut() {
            received.extend(signals.pending());
        }
        for signal in received {
            let name = if signal == libc::SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            };
            if self.shutdown_deadline.is_some() {
                warn!("received {name} again, stopping now");
                self.shutdown_deadline = Some(now);
            } else {
                info!("received {name}, shutting down");
                self.begin_shutdown(now);
            }
        }
    }

    /// Carries out what the service asked for while its code ran: close other clients
    /// (killed, or past their output limit), stop. Closing a client runs the service's
    /// `on_disconnect`, which may ask for more: that is carried out too. What other
    /// clients were sent is written at the end of the loop's turn
    /// ([`flush_queued`](Self::flush_queued)).
    fn apply_effects(&mut self, now: Instant) {
        let mut i = 0;
        while let Some(&(key, reason)) = self.core.effects.kill.get(i) {
            i += 1;
            self.close_now(key, reason);
        }
        self.core.effects.kill.clear();
        if self.core.effects.stop {
            self.core.effects.stop = false;
            if self.shutdown_deadline.is_none() {
                info!("stop requested by the service");
                self.begin_shutdown(now);
            }
        }
    }

    /// End-of-turn work: clients with more to read, accepts left over, deadlines.
    fn run_deferred(&mut self, now: Instant) {
        if !self.ready.is_empty() {
            let mut ready = mem::take(&mut self.ready);
            for &key in &ready {
                if self
                    .core
                    .clients
                    .get(key)
                    .is_some_and(|c| c.is_read_pending())
                {
                    self.serve(key, false, now);
                }
            }
            ready.clear();
            if self.ready.is_empty() {
                self.ready = ready;
            }
        }
        self.accept_deferred(now);
        if self.inbox_due {
            self.take_messages(now);
        }
        self.fire_deadlines(now);
        self.fire_service_timers(now);
        // What `on_disconnect` asked for when the loop closed clients on its own.
        self.apply_effects(now);
        self.flush_queued(now);
        self.enforce_client_memory();
    }
}
