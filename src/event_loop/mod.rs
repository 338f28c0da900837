//! The loop: one thread, one `mio::Poll`, every master socket and client handle on it.
//!
//! This file holds the loop itself: waiting for readiness, routing each event to its
//! room, and the work deferred to the end of each turn. The rooms, one phase each:
//!
//! - [`accept`]: a master socket's connection requests become client handles;
//! - [`serve`]: a client's bytes are read, decoded, and handed to the service;
//! - [`output`]: what a client is owed is written, its `WRITABLE` interest kept in step;
//! - [`close`]: end of stream, lingering, closing, idle timeout and shutdown;
//! - [`proxy`]: with the PROXY protocol on, a connection's header before it is served.
//!
//! A turn: wait (at most until the nearest deadline), then for each event: a master
//! socket's token accepts; a client's token writes what it is owed if writable and
//! serves it if readable; the waker or a signal begins a graceful stop. Then the deferred
//! work: what services asked for (close another client, write to another client, stop),
//! clients whose turn ended at a budget with input left, accepts left over, lingering
//! clients and idle deadlines. The client handle decides what an event means for it
//! ([`Client`](crate::client::Client)'s transitions); the loop carries it out. Nothing a
//! client does can end the loop.

use std::collections::VecDeque;
use std::io;
use std::mem;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use log::{info, warn};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::client::CloseReason;
use crate::client::buffers::Scratch;
use crate::client_table::ClientTable;
use crate::codec::Codec;
use crate::config::{Config, ServerInfo};
use crate::error::Error;
use crate::lifecycle::Lifecycle;
use crate::service::{Effects, Service};
use crate::stats::Stats;

mod accept;
mod close;
mod output;
mod proxy;
mod serve;

use accept::ListenerSlot;
use close::Linger;
use proxy::HeaderDeadline;

/// Every room of the loop logs under this one target, so `RUST_LOG=muxd::event_loop=debug`
/// and log readers see one name for the loop whichever file a line comes from.
const LOG_TARGET: &str = "muxd::event_loop";

const WAKER: Token = Token(usize::MAX);
const SIGNALS: Token = Token(usize::MAX - 1);
/// Listener `i` has token `FIRST_LISTENER - i`: reserved tokens sit at the top of the
/// range, so slab keys are tokens as they are.
const FIRST_LISTENER: usize = usize::MAX - 2;

pub(crate) struct EventLoop<C: Codec, S: Service<C>> {
    poll: Poll,
    listeners: Vec<ListenerSlot>,
    clients: ClientTable<C, S::ClientState>,
    codec: C,
    service: S,
    info: ServerInfo,
    stats: Stats,
    /// What the service asked for while handling the current request.
    effects: Effects,
    /// The shared buffers lent to the client being served.
    scratch: Scratch,
    /// Clients whose turn ended with input possibly left, to serve again next turn.
    ready: Vec<usize>,
    /// Clients lingering after our side shut down, by when to look at them again.
    lingering: VecDeque<Linger>,
    /// Trusted proxies' connections awaiting their PROXY header, by deadline.
    header_deadlines: VecDeque<HeaderDeadline>,
    stop: Arc<AtomicBool>,
    signals: Option<signal_hook_mio::v1_0::Signals>,
    /// Set once a stop began: past it, remaining clients are closed.
    shutdown_deadline: Option<Instant>,
    last_limit_warning: Option<Instant>,
    /// What the process around the server is told of its life (the daemon: systemd).
    lifecycle: Option<Box<dyn Lifecycle>>,
    /// The lifecycle's heartbeat: its interval and when it is next due.
    heartbeat: Option<(Duration, Instant)>,
    /// Kept so the waker's registration lives as long as the loop.
    _waker: Arc<Waker>,
}

impl<C: Codec, S: Service<C>> EventLoop<C, S> {
    /// Creates the poller, binds every master socket in `config.listen` and, if asked,
    /// installs the signal handlers; returns the loop and the waker that stops it.
    pub(crate) fn new(
        mut config: Config,
        codec: C,
        service: S,
        stop: Arc<AtomicBool>,
    ) -> Result<(EventLoop<C, S>, Arc<Waker>), Error> {
        let poll = Poll::new().map_err(|e| Error::poll("creating the poller", e))?;
        let waker = Arc::new(
            Waker::new(poll.registry(), WAKER).map_err(|e| Error::poll("creating the waker", e))?,
        );
        let inherited = mem::take(&mut config.inherited);
        let listeners = accept::bind_listeners(&poll, &config, inherited)?;
        let signals = if config.stop_on_signals {
            let mut signals = signal_hook_mio::v1_0::Signals::new([libc::SIGINT, libc::SIGTERM])
                .map_err(|e| Error::poll("installing signal handlers", e))?;
            poll.registry()
                .register(&mut signals, SIGNALS, Interest::READABLE)
                .map_err(|e| Error::poll("registering the signal pipe", e))?;
            Some(signals)
        } else {
            None
        };
        let max_clients = config.effective_max_clients();
        let info = ServerInfo {
            started: Instant::now(),
            listeners: listeners.iter().filter_map(ListenerSlot::info).collect(),
            config,
            max_clients,
        };
        let event_loop = EventLoop {
            poll,
            listeners,
            clients: ClientTable::new(),
            codec,
            service,
            info,
            stats: Stats::default(),
            effects: Effects::default(),
            scratch: Scratch::new(),
            ready: Vec::new(),
            lingering: VecDeque::new(),
            header_deadlines: VecDeque::new(),
            stop,
            signals,
            shutdown_deadline: None,
            last_limit_warning: None,
            lifecycle: None,
            heartbeat: None,
            _waker: Arc::clone(&waker),
        };
        Ok((event_loop, waker))
    }

    pub(crate) fn info(&self) -> &ServerInfo {
        &self.info
    }

    pub(crate) fn set_lifecycle(&mut self, lifecycle: Box<dyn Lifecycle>) {
        self.lifecycle = Some(lifecycle);
    }

    /// Runs until stopped; returns the service.
    pub(crate) fn run(mut self) -> Result<S, Error> {
        info!(
            "serving max_clients={} timeout={}",
            self.info.max_clients,
            self.info
                .config
                .idle_timeout
                .map_or(0, |t| t.as_secs_f64().ceil() as u64)
        );
        self.heartbeat = self
            .lifecycle
            .as_ref()
            .and_then(|l| l.heartbeat_interval())
            .filter(|interval| !interval.is_zero())
            .map(|interval| (interval, later(Instant::now(), interval)));
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                return Err(Error::poll("poll", e));
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    SIGNALS => self.on_signals(now),
                    token => match self.listener_index(token) {
                        Some(index) => self.accept(index, now),
                        None => self.on_client_event(token.0, event, now),
                    },
                }
            }
            if self.stop.load(Ordering::Relaxed) && self.shutdown_deadline.is_none() {
                info!("stop requested");
                self.begin_shutdown(now);
            }
            self.run_deferred(now);
            if let Some(deadline) = self.shutdown_deadline {
                if self.clients.is_empty() {
                    break;
                }
                if now >= deadline {
                    warn!(
                        "shutdown timeout reached, closing remaining clients={}",
                        self.clients.len()
                    );
                    break;
                }
            }
        }
        for key in self.clients.keys() {
            self.close_now(key, CloseReason::Shutdown);
        }
        info!(
            "stopped commands_processed={} connections_received={}",
            self.stats.total_commands_processed, self.stats.total_connections_received
        );
        Ok(self.service)
    }

    fn listener_index(&self, token: Token) -> Option<usize> {
        let index = FIRST_LISTENER.checked_sub(token.0)?;
        (index < self.listeners.len()).then_some(index)
    }

    /// How long the next poll may wait: not at all while work is deferred, else until the
    /// nearest deadline.
    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.ready.is_empty() || self.listeners.iter().any(|l| l.pending) {
            return Some(Duration::ZERO);
        }
        let mut next: Option<Instant> = self.shutdown_deadline;
        let mut consider = |t: Instant| {
            next = Some(next.map_or(t, |n| n.min(t)));
        };
        if let Some((_, due)) = self.heartbeat {
            consider(due);
        }
        if let Some(linger) = self.lingering.front() {
            consider(linger.check_at);
        }
        if let Some(deadline) = self.header_deadlines.front() {
            consider(deadline.at);
        }
        for slot in &self.listeners {
            if let Some(t) = slot.retry_at {
                consider(t);
            }
        }
        if let (Some(timeout), Some((_, client))) = (
            self.info.config.idle_timeout,
            self.clients.least_recently_active(),
        ) {
            consider(later(client.info.last_active, timeout));
        }
        // Round up so the wake-up is not a hair early and spins once more.
        next.map(|t| t.saturating_duration_since(now) + Duration::from_millis(1))
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

    /// Carries out what the service asked for while handling requests: close other
    /// clients, write what other clients were sent, stop.
    fn apply_effects(&mut self, now: Instant) {
        if !self.effects.kill.is_empty() {
            let mut kill = mem::take(&mut self.effects.kill);
            for &key in &kill {
                self.close_now(key, CloseReason::Killed);
            }
            kill.clear();
            self.effects.kill = kill;
        }
        if !self.effects.flush.is_empty() {
            let mut flush = mem::take(&mut self.effects.flush);
            for &key in &flush {
                self.flush(key, now);
            }
            flush.clear();
            self.effects.flush = flush;
        }
        if self.effects.stop {
            self.effects.stop = false;
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
                if self.clients.get(key).is_some_and(|c| c.is_read_pending()) {
                    self.serve(key, false, now);
                }
            }
            ready.clear();
            if self.ready.is_empty() {
                self.ready = ready;
            }
        }
        self.accept_deferred(now);
        self.sweep_lingering(now);
        self.close_late_headers(now);
        self.beat(now);
        if let Some(timeout) = self.info.config.idle_timeout {
            self.close_idle(timeout, now);
        }
    }
}

impl<C: Codec, S: Service<C>> EventLoop<C, S> {
    /// Calls the lifecycle's heartbeat when it is due. A loop that stalled past several
    /// beats beats once, not once per beat missed.
    fn beat(&mut self, now: Instant) {
        let (Some((interval, due)), Some(lifecycle)) = (self.heartbeat, self.lifecycle.as_mut())
        else {
            return;
        };
        if now >= due {
            lifecycle.heartbeat();
            self.heartbeat = Some((interval, later(now, interval)));
        }
    }
}

/// `at + after`, or a time far enough away when a configured duration is absurdly large
/// (an `Instant` cannot hold it).
fn later(at: Instant, after: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    at.checked_add(after.min(FAR)).unwrap_or(at)
}
