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
use std::io::{self, Read, Write};
use std::mem;
use std::net::Shutdown;
use std::os::unix::io::AsRawFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use log::{debug, error, info, trace, warn};
use mio::event::Event;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::buffer::InputBuf;
use crate::client::{Client, ClientId, ClientInfo, CloseReason, Phase};
use crate::client_table::ClientTable;
use crate::codec::{Codec, Decoded};
use crate::config::{Config, ServerInfo};
use crate::error::Error;
use crate::listener::{BindOptions, Listener};
use crate::service::{Context, Effects, Service};
use crate::stats::Stats;
use crate::stream::{Peer, Stream};

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

/// A lingering client, looked at again at `check_at`, closed at `deadline` at the latest.
#[derive(Debug, Clone, Copy)]
struct Linger {
    check_at: Instant,
    deadline: Instant,
    key: usize,
    /// The client's id, so that a slot taken by a newer client is left alone.
    id: ClientId,
}

/// What became of one decode attempt, once its borrows have ended.
enum Step<E> {
    /// A request was handed to the service.
    Handled {
        used: usize,
        /// Output length before the service replied (to drop a panicking reply).
        mark: usize,
        panicked: bool,
    },
    Ignored(usize),
    Incomplete,
    Invalid(E),
}

/// Where handling a client's buffered requests left off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// Every complete request was handled: read more.
    More,
    /// No more requests from this client for now (it is closing, or paused).
    Stop,
    /// This turn's request budget is spent: the rest waits for the next turn.
    Yield,
}

/// How a client's read loop ended.
enum ReadEnd {
    /// `WouldBlock`, or a short read: nothing more to read now.
    Drained,
    /// The read budget ran out: more may be waiting.
    Budget,
    /// The peer shut down its write side.
    Eof,
    /// Requests stopped being handled (closing, paused).
    Stopped,
    /// Reading failed.
    Failed(io::Error),
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

    // ----- accepting -------------------------------------------------------------------

    fn accept(&mut self, index: usize, now: Instant) {
        for _ in 0..ACCEPTS_PER_EVENT {
            let Some(slot) = self.listeners.get_mut(index) else {
                return;
            };
            let Some(listener) = slot.listener.as_ref() else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    if slot.retry_at.take().is_some() {
                        info!(
                            "accepting again after descriptor exhaustion listener={}",
                            listener.info().addr
                        );
                    }
                    self.stats.total_connections_received += 1;
                    self.admit(index, stream, peer, now);
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
                    if slot.retry_at.is_none() {
                        warn!(
                            "accept failed, pausing accepts listener={} error={e}",
                            listener.info().addr
                        );
                    }
                    if exhausted {
                        self.stats.accept_fd_exhausted += 1;
                    }
                    slot.retry_at = Some(now + ACCEPT_RETRY);
                    slot.pending = false;
                    return;
                }
            }
        }
        if let Some(slot) = self.listeners.get_mut(index) {
            slot.pending = true;
        }
    }

    /// Puts an accepted connection in the table, or refuses it past the client limit.
    fn admit(&mut self, index: usize, mut stream: Stream, peer: Peer, now: Instant) {
        if self.clients.len() >= self.info.max_clients {
            self.stats.rejected_connections += 1;
            if self
                .last_limit_warning
                .is_none_or(|t| now.duration_since(t) >= WARN_INTERVAL)
            {
                warn!(
                    "client limit reached, rejecting connections max_clients={} rejected_total={}",
                    self.info.max_clients, self.stats.rejected_connections
                );
                self.last_limit_warning = Some(now);
            }
            let mut message = Vec::new();
            C::encode_error(&"max number of clients reached", &mut message);
            let _ = stream.write(&message);
            let _ = stream.shutdown(Shutdown::Write);
            return;
        }
        let Some(listener) = self
            .listeners
            .get(index)
            .and_then(|slot| slot.listener.as_ref())
        else {
            return;
        };
        let listener_info = Arc::clone(listener.info());
        let fd = stream.as_raw_fd();
        let registry = self.poll.registry();
        let inserted = self.clients.insert_with(|key, id| {
            registry.register(&mut stream, Token(key), Interest::READABLE)?;
            let info = ClientInfo::new(id, listener_info, peer, now);
            Ok::<_, io::Error>(Client::new(info, stream))
        });
        match inserted {
            Ok((key, id)) => {
                debug!(
                    "client connected client={id} kind={} peer={peer} laddr={} fd={fd}",
                    listener.info().kind(),
                    listener.info().addr
                );
                self.on_connect(key, now);
            }
            Err(e) => warn!("registering a new client failed peer={peer} error={e}"),
        }
    }

    fn on_connect(&mut self, key: usize, now: Instant) {
        let mut out = mem::take(&mut self.write_buf);
        let mut ctx = Context {
            table: &mut self.clients,
            key,
            out: &mut out,
            effects: &mut self.effects,
            server: &self.info,
            stats: &self.stats,
            now,
        };
        let service = &mut self.service;
        if panic::catch_unwind(AssertUnwindSafe(|| service.on_connect(&mut ctx))).is_err() {
            error!(
                "service panicked in on_connect client={}",
                self.client_id(key)
            );
            out.clear();
            self.effects.close_current = Some(CloseReason::ServicePanic);
        }
        if let Some(reason) = self.effects.close_current.take() {
            self.set_closing(key, reason);
        }
        self.finish_output(key, out, false, 0, now);
        self.apply_effects(now);
    }

    // ----- serving a client --------------------------------------------------------------

    fn on_client_event(&mut self, key: usize, event: &Event, now: Instant) {
        let Some(client) = self.clients.get(key) else {
            // A token whose client closed earlier in this batch: a spurious event.
            return;
        };
        trace!(
            "event client={} readable={} writable={}",
            client.info.id,
            event.is_readable(),
            event.is_writable()
        );
        if (event.is_writable() || event.is_write_closed() || event.is_error())
            && client.output_len() > 0
        {
            self.flush(key, now);
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            // After a FIN (or an error) a short read does not mean the socket is drained:
            // the end of stream still has to be read.
            let eof_pending = event.is_read_closed() || event.is_error();
            self.on_readable(key, !eof_pending, now);
        }
    }

    /// `short_read_drains`: whether a short read may be taken as "nothing more to read"
    /// (true only when an event just reported plain readability).
    fn on_readable(&mut self, key: usize, short_read_drains: bool, now: Instant) {
        let Some(client) = self.clients.get(key) else {
            return;
        };
        match client.phase {
            Phase::Open if client.paused => {
                // Backpressure: leave the bytes in the socket until output drains.
            }
            Phase::Open => self.serve(key, short_read_drains, now),
            Phase::Closing(_) => {}
            Phase::Lingering(reason) => self.discard_input(key, reason),
        }
    }

    /// Reads a client's requests, has the service answer them, writes the answers.
    fn serve(&mut self, key: usize, short_read_drains: bool, now: Instant) {
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        client.read_pending = false;
        client.info.last_active = now;
        if self.info.config.idle_timeout.is_some() {
            // Only the idle sweep reads the least-recently-active order; it must follow
            // every update of `last_active`.
            self.clients.touch(key);
        }

        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        // The input: the client's own buffer when it holds the start of a request, else the
        // shared one. The output likewise, by whether responses are already waiting.
        let (mut input, mut decode, own_input) = match client.buffers.as_deref_mut() {
            Some(b) if !b.input.is_empty() => {
                (mem::take(&mut b.input), mem::take(&mut b.decode), true)
            }
            _ => (
                mem::take(&mut self.read_buf),
                C::DecodeState::default(),
                false,
            ),
        };
        let (mut out, written, own_output) = match client.buffers.as_deref_mut() {
            Some(b) if b.pending_output() > 0 => {
                (mem::take(&mut b.output), mem::take(&mut b.written), true)
            }
            _ => (mem::take(&mut self.write_buf), 0, false),
        };

        // Handle what is buffered (first: leftover of an earlier turn, from a resumed or
        // yielded client), then read more, until the socket is drained, the read budget is
        // spent, or the client may not send more now.
        let mut end = ReadEnd::Drained;
        let mut handled = 0;
        let mut reads = 0;
        let mut last_read = false;
        let mut progress;
        loop {
            progress = self.process(
                key,
                &mut input,
                &mut decode,
                &mut out,
                written,
                &mut handled,
                now,
            );
            if progress != Progress::More || last_read {
                break;
            }
            let Some(client) = self.clients.get_mut(key) else {
                break;
            };
            let spare = input.spare(if own_input {
                MIN_CLIENT_READ
            } else {
                READ_CHUNK
            });
            let room = spare.len();
            match client.stream.read(spare) {
                Ok(0) => {
                    end = ReadEnd::Eof;
                    break;
                }
                Ok(n) => {
                    input.filled(n);
                    client.info.bytes_in += n as u64;
                    self.stats.total_net_input_bytes += n as u64;
                    reads += 1;
                    if n < room && short_read_drains {
                        // A short read empties the socket; edge-triggered polling reports
                        // the next bytes (or end of stream) that arrive. This saves the
                        // extra `read` that would only return `WouldBlock`.
                        last_read = true;
                    } else if reads >= READS_PER_EVENT {
                        end = ReadEnd::Budget;
                        last_read = true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    end = ReadEnd::Failed(e);
                    break;
                }
            }
        }
        match progress {
            Progress::More => {}
            Progress::Stop => end = ReadEnd::Stopped,
            Progress::Yield => end = ReadEnd::Budget,
        }

        self.store_input(key, input, decode, own_input);
        self.finish_output(key, out, own_output, written, now);
        self.apply_effects(now);

        match end {
            ReadEnd::Drained | ReadEnd::Stopped => {}
            ReadEnd::Budget => {
                if let Some(client) = self.clients.get_mut(key) {
                    client.read_pending = true;
                    self.ready.push(key);
                }
            }
            ReadEnd::Eof => self.on_eof(key),
            ReadEnd::Failed(e) => {
                debug!("read failed client={} error={e}", self.client_id(key));
                self.close_now(key, CloseReason::Reset);
            }
        }
    }

    /// Decodes and handles the complete requests in `input`, up to this turn's budget
    /// (`handled` counts them across calls).
    #[allow(clippy::too_many_arguments)]
    fn process(
        &mut self,
        key: usize,
        input: &mut InputBuf,
        decode: &mut C::DecodeState,
        out: &mut Vec<u8>,
        written: usize,
        handled: &mut usize,
        now: Instant,
    ) -> Progress {
        loop {
            if input.is_empty() {
                return Progress::More;
            }
            if out.len() - written > self.info.config.output_high_watermark {
                self.pause(key);
                return Progress::Stop;
            }
            if *handled >= REQUESTS_PER_TURN {
                self.stats.turns_yielded += 1;
                return Progress::Yield;
            }
            // The request borrows the codec and the input; handle it inside this match
            // and carry out the outcome after, once both borrows have ended.
            let step = match self.codec.decode(decode, input.data()) {
                Ok(Decoded::Request(request, used)) => {
                    self.stats.total_commands_processed += 1;
                    if let Some(client) = self.clients.get_mut(key) {
                        client.info.requests += 1;
                    }
                    let mark = out.len();
                    let mut ctx = Context {
                        table: &mut self.clients,
                        key,
                        out: &mut *out,
                        effects: &mut self.effects,
                        server: &self.info,
                        stats: &self.stats,
                        now,
                    };
                    let service = &mut self.service;
                    let handled = panic::catch_unwind(AssertUnwindSafe(|| {
                        service.on_request(request, &mut ctx);
                    }));
                    Step::Handled {
                        used,
                        mark,
                        panicked: handled.is_err(),
                    }
                }
                Ok(Decoded::Ignored(used)) => Step::Ignored(used),
                Ok(Decoded::Incomplete) => Step::Incomplete,
                Err(e) => Step::Invalid(e),
            };
            match step {
                Step::Handled {
                    used,
                    mark,
                    panicked,
                } => {
                    *handled += 1;
                    input.consume(used);
                    if panicked {
                        error!(
                            "service panicked handling a request, closing client={}",
                            self.client_id(key)
                        );
                        out.truncate(mark);
                        C::encode_error(&"internal error while handling the request", out);
                        self.effects.close_current = None;
                        self.set_closing(key, CloseReason::ServicePanic);
                        return Progress::Stop;
                    }
                    if let Some(reason) = self.effects.close_current.take() {
                        self.set_closing(key, reason);
                        return Progress::Stop;
                    }
                }
                Step::Ignored(used) => input.consume(used),
                Step::Incomplete => {
                    if input.len() > self.info.config.max_input_buffer {
                        warn!(
                            "input buffer limit exceeded, closing client={} limit={}",
                            self.client_id(key),
                            self.info.config.max_input_buffer
                        );
                        C::encode_error(&"Protocol error: input buffer limit exceeded", out);
                        self.stats.limit_disconnections += 1;
                        input.clear();
                        *decode = C::DecodeState::default();
                        self.set_closing(key, CloseReason::Limit);
                        return Progress::Stop;
                    }
                    return Progress::More;
                }
                Step::Invalid(e) => {
                    warn!("protocol error client={} error={e}", self.client_id(key));
                    C::encode_error(&e, out);
                    self.stats.protocol_errors += 1;
                    input.clear();
                    *decode = C::DecodeState::default();
                    self.set_closing(key, CloseReason::ProtocolError);
                    return Progress::Stop;
                }
            }
        }
    }

    /// Stops reading a client whose responses pile up unread.
    fn pause(&mut self, key: usize) {
        if let Some(client) = self.clients.get_mut(key)
            && !client.paused
        {
            client.paused = true;
            self.stats.output_paused_clients += 1;
            debug!(
                "output above high watermark, pausing reads client={}",
                client.info.id
            );
        }
    }

    /// Gives the input buffer back: leftover bytes of a request stay with the client.
    fn store_input(&mut self, key: usize, mut input: InputBuf, decode: C::DecodeState, own: bool) {
        let client = self.clients.get_mut(key);
        if own {
            if let Some(buffers) = client.and_then(|c| c.buffers.as_deref_mut()) {
                input.shrink_if_idle(KEEP_BUFFER);
                buffers.input = input;
                buffers.decode = decode;
            }
            return;
        }
        if !input.is_empty() {
            if let Some(client) = client {
                let buffers = client.buffers.get_or_insert_with(Default::default);
                buffers.input.extend_from_slice(input.data());
                buffers.decode = decode;
            }
            input.clear();
        }
        self.read_buf = input;
    }

    /// Writes `out[written..]` now as far as the socket takes it and keeps the rest with
    /// the client; updates its `WRITABLE` interest; completes a close once all is written.
    fn finish_output(
        &mut self,
        key: usize,
        mut out: Vec<u8>,
        own: bool,
        written: usize,
        now: Instant,
    ) {
        let Some(client) = self.clients.get_mut(key) else {
            if !own {
                recycle_output(&mut self.write_buf, out);
            }
            return;
        };
        let mut pos = written.min(out.len());
        let result = if pos < out.len() {
            write_nonblocking(&mut client.stream, &out, &mut pos)
        } else {
            Ok(())
        };
        let sent = (pos - written.min(pos)) as u64;
        if sent > 0 {
            client.info.bytes_out += sent;
            client.info.last_active = now;
            self.stats.total_net_output_bytes += sent;
        }
        let remaining = out.len() - pos;
        if remaining == 0 {
            if own {
                out.clear();
                if out.capacity() > KEEP_BUFFER {
                    out = Vec::new();
                }
                if let Some(buffers) = client.buffers.as_deref_mut() {
                    buffers.output = out;
                    buffers.written = 0;
                }
            } else {
                recycle_output(&mut self.write_buf, out);
            }
        } else if own {
            if let Some(buffers) = client.buffers.as_deref_mut() {
                buffers.output = out;
                buffers.written = pos;
            }
        } else {
            let buffers = client.buffers.get_or_insert_with(Default::default);
            buffers
                .output
                .extend_from_slice(out.get(pos..).unwrap_or_default());
            buffers.written = 0;
            recycle_output(&mut self.write_buf, out);
        }
        if sent > 0 && self.info.config.idle_timeout.is_some() {
            // Written to is active too: keep the idle order in step with `last_active`.
            self.clients.touch(key);
        }
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };

        if let Err(e) = result {
            debug!("write failed client={} error={e}", client.info.id);
            self.close_now(key, CloseReason::Reset);
            return;
        }
        let want_writable = remaining > 0;
        if client.writable_interest != want_writable {
            let interest = if want_writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if let Err(e) =
                self.poll
                    .registry()
                    .reregister(&mut client.stream, Token(key), interest)
            {
                warn!(
                    "reregistering failed, closing client={} error={e}",
                    client.info.id
                );
                self.close_now(key, CloseReason::Reset);
                return;
            }
            client.writable_interest = want_writable;
        }
        if remaining == 0 {
            self.output_drained(key, now);
        } else if remaining <= self.info.config.output_low_watermark {
            self.resume_if_paused(key);
        }
    }

    /// Writes what a client is owed (on a writable event, or after another client sent it
    /// something).
    fn flush(&mut self, key: usize, now: Instant) {
        let Some(buffers) = self
            .clients
            .get_mut(key)
            .and_then(|c| c.buffers.as_deref_mut())
        else {
            return;
        };
        if buffers.pending_output() == 0 {
            return;
        }
        let out = mem::take(&mut buffers.output);
        let written = mem::take(&mut buffers.written);
        self.finish_output(key, out, true, written, now);
    }

    /// All owed output is written: finish a close, or let a paused client read again.
    fn output_drained(&mut self, key: usize, now: Instant) {
        let Some(client) = self.clients.get(key) else {
            return;
        };
        match client.phase {
            Phase::Closing(reason) => self.linger_or_close(key, reason, now),
            Phase::Open => self.resume_if_paused(key),
            Phase::Lingering(..) => {}
        }
    }

    fn resume_if_paused(&mut self, key: usize) {
        if let Some(client) = self.clients.get_mut(key)
            && client.paused
            && client.phase == Phase::Open
        {
            client.paused = false;
            client.read_pending = true;
            self.ready.push(key);
            debug!("output drained, resuming reads client={}", client.info.id);
        }
    }

    fn on_eof(&mut self, key: usize) {
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        client.read_eof = true;
        if let Some(b) = client.buffers.as_deref_mut()
            && !b.input.is_empty()
        {
            debug!(
                "peer closed inside a request, dropping bytes={} client={}",
                b.input.len(),
                client.info.id
            );
            b.input.clear();
        }
        let reason = match client.phase {
            Phase::Closing(reason) | Phase::Lingering(reason) => reason,
            Phase::Open => CloseReason::PeerClosed,
        };
        if client.output_len() == 0 {
            self.close_now(key, reason);
        } else {
            // Half-close: write every response owed, then close.
            client.phase = Phase::Closing(reason);
            client.paused = false;
        }
    }

    fn set_closing(&mut self, key: usize, reason: CloseReason) {
        if let Some(client) = self.clients.get_mut(key)
            && client.phase == Phase::Open
        {
            client.phase = Phase::Closing(reason);
        }
    }

    /// Our side is done: shut down writing and wait (briefly) for the peer to close, so
    /// that closing with unread input never resets the connection before the peer has
    /// read our last responses. Idle connections close at once.
    fn linger_or_close(&mut self, key: usize, reason: CloseReason, now: Instant) {
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        if client.read_eof || nothing_in_flight(&client.stream) {
            self.close_now(key, reason);
            return;
        }
        let _ = client.stream.shutdown(Shutdown::Write);
        let mut deadline = now + LINGER;
        if let Some(stop) = self.shutdown_deadline {
            deadline = deadline.min(stop);
        }
        client.phase = Phase::Lingering(reason);
        self.lingering.push_back(Linger {
            check_at: now + LINGER_CHECK,
            deadline,
            key,
            id: client.info.id,
        });
        self.discard_input(key, reason);
    }

    /// Reads and drops what a lingering client sends; closes it at its end of stream.
    fn discard_input(&mut self, key: usize, reason: CloseReason) {
        for _ in 0..READS_PER_EVENT {
            let Some(client) = self.clients.get_mut(key) else {
                return;
            };
            let spare = self.read_buf.spare(READ_CHUNK);
            match client.stream.read(spare) {
                Ok(0) => break,
                Ok(n) => {
                    client.info.bytes_in += n as u64;
                    self.stats.total_net_input_bytes += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        // End of stream, an error, or a peer that keeps sending: close.
        self.close_now(key, reason);
    }

    /// Removes a client from the table and closes its socket.
    fn close_now(&mut self, key: usize, reason: CloseReason) {
        let Some(mut client) = self.clients.remove(key) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut client.stream);
        self.stats.count_close(reason);
        debug!(
            "client closed client={} reason={reason} cmds={} in={} out={}",
            client.info.id, client.info.requests, client.info.bytes_in, client.info.bytes_out
        );
        let Client {
            info,
            stream,
            state,
            ..
        } = client;
        drop(stream);
        let service = &mut self.service;
        if panic::catch_unwind(AssertUnwindSafe(|| {
            service.on_disconnect(&info, state, reason);
        }))
        .is_err()
        {
            error!("service panicked in on_disconnect client={}", info.id);
        }
        // A descriptor was freed: a listener out of descriptors may accept again.
        for slot in &mut self.listeners {
            if slot.retry_at.is_some() {
                slot.pending = true;
            }
        }
    }

    fn client_id(&self, key: usize) -> ClientId {
        self.clients
            .get(key)
            .map_or(ClientId(0), |client| client.info.id)
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
        // Lingering clients close once nothing is in flight (our last bytes acknowledged,
        // nothing unread), when the peer closes (seen in `discard_input`), or at their
        // deadline.
        while let Some(&linger) = self.lingering.front() {
            if linger.check_at > now {
                break;
            }
            self.lingering.pop_front();
            let Some(client) = self.clients.get(linger.key) else {
                continue;
            };
            if client.info.id != linger.id {
                continue;
            }
            if let Phase::Lingering(reason) = client.phase {
                if now >= linger.deadline || nothing_in_flight(&client.stream) {
                    self.close_now(linger.key, reason);
                } else {
                    self.lingering.push_back(Linger {
                        check_at: now + LINGER_CHECK,
                        ..linger
                    });
                }
            }
        }
        if let Some(timeout) = self.info.config.idle_timeout {
            self.close_idle(timeout, now);
        }
    }

    /// Closes clients idle longer than `timeout`, oldest first; stops at the first that
    /// is not, so the cost is proportional to the clients closed.
    fn close_idle(&mut self, timeout: Duration, now: Instant) {
        while let Some((key, client)) = self.clients.least_recently_active() {
            if now.saturating_duration_since(client.info.last_active) < timeout {
                break;
            }
            debug!("idle timeout client={}", client.info.id);
            self.close_now(key, CloseReason::IdleTimeout);
        }
    }

    /// Stops accepting, closes the master sockets, and starts closing every client once
    /// the responses it is owed are written.
    fn begin_shutdown(&mut self, now: Instant) {
        let deadline = later(now, self.info.config.shutdown_timeout);
        self.shutdown_deadline = Some(deadline);
        info!(
            "shutting down clients={} timeout_ms={}",
            self.clients.len(),
            self.info.config.shutdown_timeout.as_millis()
        );
        for slot in &mut self.listeners {
            if let Some(mut listener) = slot.listener.take() {
                let _ = self.poll.registry().deregister(&mut listener);
                info!("closed listener {}", listener.info().addr);
            }
            slot.pending = false;
            slot.retry_at = None;
        }
        for key in self.clients.keys() {
            let Some(client) = self.clients.get_mut(key) else {
                continue;
            };
            match client.phase {
                Phase::Open => {
                    client.phase = Phase::Closing(CloseReason::Shutdown);
                    client.paused = false;
                    if client.output_len() == 0 {
                        self.linger_or_close(key, CloseReason::Shutdown, now);
                    }
                }
                // Lingering clients are closed at the shutdown deadline at the latest.
                Phase::Closing(_) | Phase::Lingering(_) => {}
            }
        }
    }
}

/// `at + after`, or a time far enough away when a configured duration is absurdly large
/// (an `Instant` cannot hold it).
fn later(at: Instant, after: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    at.checked_add(after.min(FAR)).unwrap_or(at)
}

/// Returns the shared output buffer to its place, emptied (and shrunk after a huge reply).
fn recycle_output(shared: &mut Vec<u8>, mut out: Vec<u8>) {
    out.clear();
    if out.capacity() > 4 * READ_CHUNK {
        out = Vec::with_capacity(READ_CHUNK);
    }
    *shared = out;
}

/// Writes `data[*pos..]` until all is written or the socket would block.
fn write_nonblocking(stream: &mut Stream, data: &[u8], pos: &mut usize) -> io::Result<()> {
    while let Some(rest) = data.get(*pos..).filter(|r| !r.is_empty()) {
        match stream.write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether the socket has neither unread input nor unacknowledged output, so closing it
/// now cannot reset the connection or lose data on its way to the peer.
fn nothing_in_flight(stream: &Stream) -> bool {
    let fd = stream.as_raw_fd();
    let mut unread: libc::c_int = 0;
    let mut unsent: libc::c_int = 0;
    // SAFETY: `fd` is an open socket; both ioctls write one c_int.
    let ok = unsafe {
        libc::ioctl(fd, libc::FIONREAD, &mut unread) == 0
            && libc::ioctl(fd, libc::TIOCOUTQ, &mut unsent) == 0
    };
    ok && unread == 0 && unsent == 0
}
