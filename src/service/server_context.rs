//! [`ServerContext`]: the service's view of the whole server, wherever its code runs on
//! the loop thread (a request, a timer, a hook); a client's [`Context`] is one too.

use std::io;
use std::time::{Duration, Instant};

use mio::Interest;
use mio::event::{Event, Source};

use super::core::{Core, Task};
use super::{Context, Responder, ServerHandle, Service, SourceId};
use crate::client::{ClientId, CloseReason};
use crate::client_table::Clients;
use crate::codec::Codec;
use crate::config::ServerInfo;
use crate::deadlines::{TimerId, later};
use crate::stats::Stats;

/// The shortest period of a periodic timer; shorter ones are raised to it (a timer due
/// at every turn would keep the loop from ever sleeping).
pub const MIN_PERIOD: Duration = Duration::from_millis(1);

/// The service's view of the server from code that runs on the loop thread: the client
/// table, sending to and closing clients, timers, stopping.
///
/// Server-wide code gets one (a server-wide timer, [`Service::on_start`],
/// [`Service::on_shutdown`], [`Service::on_disconnect`]); a client's [`Context`]
/// dereferences to one, so everything here works from `on_request` too.
///
/// What it asks for (closing a client, writing to one, stopping) is carried out by the
/// loop as soon as the service's code returns.
pub struct ServerContext<'a, C: Codec, S: Service<C>> {
    pub(super) core: &'a mut Core<C, S>,
    /// The client whose code this is, if any: what is sent to it goes to `out`, after
    /// the responses already encoded there.
    pub(super) current: Option<Current<'a, C>>,
}

/// The client a context is for.
pub(super) struct Current<'a, C: Codec> {
    /// Its slab key; it is in the table for the whole call.
    pub(super) key: usize,
    /// Where its responses are encoded (the buffer lent to it for its turn).
    pub(super) out: &'a mut Vec<u8>,
    /// Its protocol session (a copy of its handle's).
    pub(super) session: C::Session,
}

impl<'a, C: Codec, S: Service<C>> ServerContext<'a, C, S> {
    /// The context for server-wide code.
    pub(crate) fn new(core: &'a mut Core<C, S>) -> ServerContext<'a, C, S> {
        ServerContext {
            core,
            current: None,
        }
    }

    /// The connected clients.
    pub fn clients(&self) -> Clients<'_, C, S::ClientState> {
        let pubsub = &self.core.pubsub;
        Clients::new(&self.core.clients, &pubsub.registry, pubsub.arena.memory())
    }

    /// The service's state for the client with `id`, if it is connected.
    pub fn state_of(&mut self, id: ClientId) -> Option<&mut S::ClientState> {
        let key = self.core.clients.key_of(id)?;
        self.core.clients.get_mut(key).map(|c| &mut c.state)
    }

    /// Sends `response` to the client with `id`, after whatever it was already owed.
    /// Returns `false`, and queues nothing, if no such client is connected, it is
    /// closing, or it has more than the output high watermark unread (it is not reading:
    /// its memory must not grow without bound).
    pub fn send_to(&mut self, id: ClientId, response: &C::Response<'_>) -> bool {
        match self.output_for(id) {
            Some(mut out) => {
                out.send(response);
                true
            }
            None => false,
        }
    }

    /// Where a response to the client with `id` is encoded: after its other responses,
    /// in its session (the lent buffer for the client whose code this is; its own queue,
    /// written once this code returns, for any other). `None` if no such client is open
    /// and reading (see [`send_to`](ServerContext::send_to)).
    pub(crate) fn output_for(&mut self, id: ClientId) -> Option<Responder<'_, C>> {
        let key = self.core.clients.key_of(id)?;
        if let Some(current) = self.current.as_mut()
            && current.key == key
        {
            return Some(Responder::new(current.session, current.out));
        }
        let high_watermark = self.core.info.config.output_high_watermark;
        let client = self
            .core
            .clients
            .get_mut(key)
            .filter(|c| c.is_open() && c.owed() <= high_watermark)?;
        if !client.flush_queued {
            client.flush_queued = true;
            self.core.effects.flush.push(key);
        }
        Some(Responder::new(client.session, client.queued_output()))
    }

    /// Closes the client with `id`; returns `false` if no such client is connected (or
    /// this call already asked for it). The client whose code this is closes once its
    /// replies are written; any other client, even one already closing (after `QUIT`,
    /// with output it does not read), is closed as soon as this code returns, its unsent
    /// output dropped.
    pub fn kill(&mut self, id: ClientId) -> bool {
        let Some(key) = self.core.clients.key_of(id) else {
            return false;
        };
        let effects = &mut self.core.effects;
        if self.current.as_ref().is_some_and(|c| c.key == key) {
            if effects.close_current.is_some() {
                return false;
            }
            effects.close_current = Some(CloseReason::Killed);
            return true;
        }
        if effects.kill.iter().any(|&(k, _)| k == key) {
            return false;
        }
        if let Some(client) = self.core.clients.get_mut(key) {
            client.begin_close(CloseReason::Killed);
            effects.kill.push((key, CloseReason::Killed));
        }
        true
    }

    /// Asks the server to stop: stop accepting, write what is owed, close every client.
    pub fn stop_server(&mut self) {
        self.core.effects.stop = true;
    }

    /// Runs `f` once, `delay` from now, with the service and a server context.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use muxd::{ServerContext, Service};
    /// # use muxd::{Context, resp::{Args, RespCodec}};
    ///
    /// #[derive(Default)]
    /// struct Flusher {
    ///     pending: Vec<String>,
    /// }
    ///
    /// impl Service<RespCodec> for Flusher {
    ///     type ClientState = ();
    /// #   fn on_request(&mut self, _: Args<'_>, _: &mut Context<'_, RespCodec, Self>) {}
    ///     fn on_start(&mut self, ctx: &mut ServerContext<'_, RespCodec, Self>) {
    ///         ctx.after(Duration::from_secs(5), |flusher, _ctx| flusher.pending.clear());
    ///     }
    /// }
    /// ```
    pub fn after(
        &mut self,
        delay: Duration,
        f: impl FnOnce(&mut S, &mut ServerContext<'_, C, S>) + 'static,
    ) -> TimerId {
        let at = later(self.core.now, delay);
        self.core
            .timers
            .insert(at, Duration::ZERO, None, Task::Once(Box::new(f)))
    }

    /// Runs `f` every `period` (at least [`MIN_PERIOD`]), first `period` from now, until
    /// [`cancel`](ServerContext::cancel)led. Ticks stay on the grid `now + k × period`;
    /// ticks missed while the loop was busy are skipped, not run in a burst.
    pub fn every(
        &mut self,
        period: Duration,
        f: impl FnMut(&mut S, &mut ServerContext<'_, C, S>) + 'static,
    ) -> TimerId {
        let period = period.max(MIN_PERIOD);
        let at = later(self.core.now, period);
        self.core
            .timers
            .insert(at, period, None, Task::Every(Box::new(f)))
    }

    /// Runs `f` once, `delay` from now, with the service and the context of the client
    /// with `id`, unless the client is closing by then; the timer goes with the client.
    /// Returns `None`, arming nothing, if no such client is open.
    pub fn after_for(
        &mut self,
        id: ClientId,
        delay: Duration,
        f: impl FnOnce(&mut S, &mut Context<'_, C, S>) + 'static,
    ) -> Option<TimerId> {
        let key = self.open_client(id)?;
        let at = later(self.core.now, delay);
        Some(
            self.core
                .timers
                .insert(at, Duration::ZERO, Some(key), Task::ClientOnce(Box::new(f))),
        )
    }

    /// Runs `f` every `period` (at least [`MIN_PERIOD`]) with the service and the context
    /// of the client with `id`, while it is open; the timer goes with the client. A tick
    /// is skipped while the client has more than the output high watermark unread (it is
    /// not reading: what `f` would send must not pile up). Returns `None`, arming
    /// nothing, if no such client is open.
    pub fn every_for(
        &mut self,
        id: ClientId,
        period: Duration,
        f: impl FnMut(&mut S, &mut Context<'_, C, S>) + 'static,
    ) -> Option<TimerId> {
        let key = self.open_client(id)?;
        let period = period.max(MIN_PERIOD);
        let at = later(self.core.now, period);
        Some(
            self.core
                .timers
                .insert(at, period, Some(key), Task::ClientEvery(Box::new(f))),
        )
    }

    /// Cancels a timer: it does not run again (if it is running now, it finishes).
    /// Returns `false` if it had already fired for good, was cancelled, or went with its
    /// client.
    pub fn cancel(&mut self, timer: TimerId) -> bool {
        let armed = self.core.timers.contains(timer);
        drop(self.core.timers.cancel(timer));
        armed
    }

    /// Moves a timer's next run to `delay` from now (a periodic timer keeps its period
    /// from there, also when it moves itself from its own run). O(log n), allocates
    /// nothing. Returns `false` if it is gone, or is a one-shot timer running now (its
    /// code runs once: arm a new one instead).
    pub fn reschedule(&mut self, timer: TimerId, delay: Duration) -> bool {
        let at = later(self.core.now, delay);
        self.core.timers.reschedule(timer, at)
    }

    /// Facts about the server: start time, listeners, configuration.
    pub fn server(&self) -> &ServerInfo {
        &self.core.info
    }

    /// Replaces the TLS configuration of the `tls://` listeners (a renewed certificate, a
    /// new CA): connections accepted from now on get it; those already open go on with
    /// theirs. The daemon calls it on `SIGHUP`, from its own thread through a
    /// [`ServerHandle`].
    pub fn set_tls_config(&mut self, config: std::sync::Arc<rustls::ServerConfig>) {
        self.core.info.config.tls = Some(config);
    }

    /// The server's counters.
    pub fn stats(&self) -> &Stats {
        &self.core.stats
    }

    /// The time the loop woke up for this batch of events (cheaper than `Instant::now`).
    pub fn now(&self) -> Instant {
        self.core.now
    }

    /// Registers a source of the service's own (a UDP socket, a pipe, a timerfd, a
    /// listener for another protocol: anything `mio` polls) with the loop's poller:
    /// `on_ready` runs on the loop thread with the service, the event and a context each
    /// time it is ready. The service keeps the source (to read from it) and deregisters
    /// it before dropping it.
    ///
    /// Readiness is edge-triggered, as everywhere in mio: read until `WouldBlock`.
    ///
    /// # Errors
    /// As mio's `Registry::register`.
    ///
    /// # Examples
    /// A UDP socket whose datagrams the service counts:
    /// ```
    /// use std::io::ErrorKind;
    /// use muxd::mio::{Interest, net::UdpSocket};
    /// use muxd::{ServerContext, Service};
    /// # use muxd::{Context, resp::{Args, RespCodec}};
    ///
    /// struct Counter {
    ///     udp: UdpSocket,
    ///     datagrams: u64,
    /// }
    ///
    /// impl Service<RespCodec> for Counter {
    ///     type ClientState = ();
    /// #   fn on_request(&mut self, _: Args<'_>, _: &mut Context<'_, RespCodec, Self>) {}
    ///     fn on_start(&mut self, ctx: &mut ServerContext<'_, RespCodec, Self>) {
    ///         let registered = ctx.register(&mut self.udp, Interest::READABLE, |counter, _, _| {
    ///             let mut buf = [0; 1500];
    ///             loop {
    ///                 match counter.udp.recv_from(&mut buf) {
    ///                     Ok(_) => counter.datagrams += 1,
    ///                     Err(e) if e.kind() == ErrorKind::WouldBlock => break,
    ///                     Err(_) => break,
    ///                 }
    ///             }
    ///         });
    ///         registered.expect("registering the UDP socket");
    ///     }
    /// }
    /// ```
    pub fn register(
        &mut self,
        source: &mut (impl Source + ?Sized),
        interest: Interest,
        on_ready: impl FnMut(&mut S, &Event, &mut ServerContext<'_, C, S>) + 'static,
    ) -> io::Result<SourceId> {
        let core = &mut *self.core;
        core.sources
            .register(&core.registry, source, interest, Box::new(on_ready))
    }

    /// Changes what a registered source is polled for.
    ///
    /// # Errors
    /// `NotFound` if `id` is not registered; else as mio's `Registry::reregister`.
    pub fn reregister(
        &mut self,
        source: &mut (impl Source + ?Sized),
        id: SourceId,
        interest: Interest,
    ) -> io::Result<()> {
        self.core
            .sources
            .reregister(&self.core.registry, source, id, interest)
    }

    /// Deregisters a source: its code does not run again (if it is running now, it
    /// finishes).
    ///
    /// # Errors
    /// `NotFound` if `id` is not registered; else as mio's `Registry::deregister`.
    pub fn deregister(
        &mut self,
        source: &mut (impl Source + ?Sized),
        id: SourceId,
    ) -> io::Result<()> {
        let core = &mut *self.core;
        core.sources.deregister(&core.registry, source, id)
    }

    /// A handle for other threads (to send to clients or run code here later).
    pub fn handle(&self) -> ServerHandle<C, S> {
        self.core.handle.clone()
    }

    /// The slab key of the client with `id`, if it is open.
    fn open_client(&self, id: ClientId) -> Option<usize> {
        let key = self.core.clients.key_of(id)?;
        self.core
            .clients
            .get(key)
            .is_some_and(|c| c.is_open())
            .then_some(key)
    }
}
