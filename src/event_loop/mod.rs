//! The loop: one thread, one `mio::Poll`, every master socket and client handle on it.
//!
//! Each turn waits for readiness, then:
//! - a master socket's token: accept until `WouldBlock` (at most [`ACCEPTS_PER_EVENT`],
//!   the rest next turn), create a handle per connection, register it;
//! - a client's token: write what it is owed if writable; if readable, read (until
//!   `WouldBlock`, a short read, or [`READS_PER_EVENT`] reads), decode every complete
//!   request, hand each to the service, and write the responses in order;
//! - the waker or a signal: begin a graceful stop.
//!
//! `WRITABLE` interest is registered only while a client has output waiting. A client's
//! bytes are read into one shared buffer and answered from one shared output buffer; a
//! handle gets buffers of its own only when a request is split across reads or the
//! socket does not take all its responses at once. Deferred work runs at the end of each
//! turn: clients that still have input, accepts that hit their budget, idle and linger
//! deadlines. Nothing a client does can end the loop.

use std::collections::VecDeque;
use std::io;
use std::mem;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use log::{info, warn};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::buffer::InputBuf;
use crate::client::{CloseReason, Phase};
use crate::client_table::ClientTable;
use crate::codec::Codec;
use crate::config::{Config, ServerInfo};
use crate::error::Error;
use crate::listener::{BindOptions, Listener};
use crate::service::{Effects, Service};
use crate::stats::Stats;

mod accept;
mod close;
mod output;
mod serve;

use close::Linger;

/// Every room of the loop logs under this one target, so `RUST_LOG=muxd::event_loop=debug`
/// and log readers see one name for the loop whichever file a line comes from.
const LOG_TARGET: &str = "muxd::event_loop";

const WAKER: Token = Token(usize::MAX);
const SIGNALS: Token = Token(usize::MAX - 1);
/// Listener `i` has token `FIRST_LISTENER - i`: reserved tokens sit at the top of the
/// range, so slab keys are tokens as they are.
const FIRST_LISTENER: usize = usize::MAX - 2;

/// Size of the shared read buffer, and of one read.
const READ_CHUNK: usize = 64 * 1024;
/// Free space guaranteed before reading into a client's own input buffer.
const MIN_CLIENT_READ: usize = 16 * 1024;
/// Reads one client may do per turn before others get theirs (fairness).
pub(crate) const READS_PER_EVENT: usize = 16;
/// Requests one client may have handled per turn before others get theirs (fairness: a
/// megabyte of small, costly requests must not hold everyone else up).
pub(crate) const REQUESTS_PER_TURN: usize = 1024;
/// Connections one listener may accept per turn (as Redis's `MAX_ACCEPTS_PER_CALL`).
pub(crate) const ACCEPTS_PER_EVENT: usize = 256;
/// A client's buffers larger than this are given back once empty.
const KEEP_BUFFER: usize = 64 * 1024;
/// Longest wait for a closing client's peer to close after our side shut down.
const LINGER: Duration = Duration::from_secs(1);
/// How often a lingering client is checked for data still in flight.
const LINGER_CHECK: Duration = Duration::from_millis(10);
/// Pause before retrying `accept` after it failed for lack of file descriptors.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// Least time between two "client limit reached" warnings.
const WARN_INTERVAL: Duration = Duration::from_secs(1);

/// A master socket and its accept state.
struct ListenerSlot {
    /// `None` once closed at shutdown.
    listener: Option<Listener>,
    /// The accept budget ran out with connections possibly still queued.
    pending: bool,
    /// `accept` failed for lack of descriptors; retry at this time (or when one frees).
    retry_at: Option<Instant>,
}

pub(crate) struct EventLoop<C: Codec, S: Service<C>> {
    poll: Poll,
    listeners: Vec<ListenerSlot>,
    clients: ClientTable<C::DecodeState, S::ClientState>,
    codec: C,
    service: S,
    info: ServerInfo,
    stats: Stats,
    /// What the service asked for while handling the current request.
    effects: Effects,
    /// Where clients without a partial request are read into.
    read_buf: InputBuf,
    /// Where responses go when the client has nothing waiting to be written.
    write_buf: Vec<u8>,
    /// Clients whose reading stopped at the budget, to read again next turn.
    ready: Vec<usize>,
    /// Clients lingering after our side shut down, by when to look at them again.
    lingering: VecDeque<Linger>,
    stop: Arc<AtomicBool>,
    signals: Option<signal_hook_mio::v1_0::Signals>,
    /// Set once a stop began: past it, remaining clients are closed.
    shutdown_deadline: Option<Instant>,
    last_limit_warning: Option<Instant>,
    /// Kept so the waker's registration lives as long as the loop.
    _waker: Arc<Waker>,
}

impl<C: Codec, S: Service<C>> EventLoop<C, S> {
    pub(crate) fn new(
        config: Config,
        codec: C,
        service: S,
        stop: Arc<AtomicBool>,
    ) -> Result<(EventLoop<C, S>, Arc<Waker>), Error> {
        let poll = Poll::new().map_err(|e| Error::poll("creating the poller", e))?;
        let waker = Arc::new(
            Waker::new(poll.registry(), WAKER).map_err(|e| Error::poll("creating the waker", e))?,
        );
        let options = BindOptions {
            unix_mode: config.unix_mode,
            backlog: config.backlog,
        };
        let mut listeners = Vec::with_capacity(config.listen.len());
        for (i, addr) in config.listen.iter().enumerate() {
            let mut listener = Listener::bind(addr, options)?;
            poll.registry()
                .register(&mut listener, Token(FIRST_LISTENER - i), Interest::READABLE)
                .map_err(|e| Error::bind(addr, e))?;
            info!("listening on {}", listener.info().addr);
            listeners.push(ListenerSlot {
                listener: Some(listener),
                pending: false,
                retry_at: None,
            });
        }
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
            listeners: listeners
                .iter()
                .filter_map(|l| l.listener.as_ref().map(|l| Arc::clone(l.info())))
                .collect(),
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
            read_buf: InputBuf::with_capacity(READ_CHUNK),
            write_buf: Vec::with_capacity(READ_CHUNK),
            ready: Vec::new(),
            lingering: VecDeque::new(),
            stop,
            signals,
            shutdown_deadline: None,
            last_limit_warning: None,
            _waker: Arc::clone(&waker),
        };
        Ok((event_loop, waker))
    }

    pub(crate) fn info(&self) -> &ServerInfo {
        &self.info
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
        if let Some(linger) = self.lingering.front() {
            consider(linger.check_at);
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

    // ----- deferred work ------------------------------------------------------------------

    /// Carries out what the service asked for while handling requests.
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
                let due = self
                    .clients
                    .get(key)
                    .is_some_and(|c| c.read_pending && c.phase == Phase::Open && !c.paused);
                if due {
                    self.serve(key, false, now);
                }
            }
            ready.clear();
            if self.ready.is_empty() {
                self.ready = ready;
            }
        }
        for index in 0..self.listeners.len() {
            let due = self.listeners.get(index).is_some_and(|slot| {
                slot.listener.is_some() && (slot.pending || slot.retry_at.is_some_and(|t| t <= now))
            });
            if due {
                self.accept(index, now);
            }
        }
        self.sweep_lingering(now);
        if let Some(timeout) = self.info.config.idle_timeout {
            self.close_idle(timeout, now);
        }
    }
}

/// `at + after`, or a time far enough away when a configured duration is absurdly large
/// (an `Instant` cannot hold it).
fn later(at: Instant, after: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    at.checked_add(after.min(FAR)).unwrap_or(at)
}
