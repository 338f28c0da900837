//! The service's code that runs outside requests: a client's arrival (`on_connect`), the
//! start and shutdown hooks, its timers, its own sources' readiness, and what other
//! threads send through a `ServerHandle`. Each call gets its context, has its panic contained, and is followed
//! by the effects it asked for.
//!
//! Code for one client ([`with_client`](EventLoop::with_client)) writes into that
//! client's output as a request would, and a panic there closes that client only; code
//! for the whole server ([`with_server`](EventLoop::with_server)) has no client of its
//! own, and a panic there is logged and the loop goes on.

use std::panic::{self, AssertUnwindSafe};
use std::time::Instant;

use log::{debug, error};
use mio::event::Event;

use super::serve::own_messages;
use super::{EventLoop, LOG_TARGET};
use crate::client::CloseReason;
use crate::codec::Codec;
use crate::service::core::Task;
use crate::service::handle::Message;
use crate::service::{Context, ServerContext, Service};

impl<C: Codec, S: Service<C>> EventLoop<C, S> {
    /// The server starts: the service's `on_start`.
    pub(super) fn start(&mut self, now: Instant) {
        self.core.now = now;
        self.with_server("on_start", now, |service, ctx| service.on_start(ctx));
    }

    /// Calls the service's `on_connect` for a client just accepted (a greeting may be
    /// sent).
    pub(super) fn greet(&mut self, key: usize, now: Instant) {
        self.with_client(key, "on_connect", now, |service, ctx| {
            service.on_connect(ctx)
        });
    }

    /// Runs the service's server-wide code `f` with a server context, then carries out
    /// what it asked for. Returns whether it panicked (logged as `what`).
    pub(super) fn with_server(
        &mut self,
        what: &str,
        now: Instant,
        f: impl FnOnce(&mut S, &mut ServerContext<'_, C, S>),
    ) -> bool {
        let mut ctx = ServerContext::new(&mut self.core);
        let service = &mut self.service;
        let panicked = panic::catch_unwind(AssertUnwindSafe(|| f(service, &mut ctx))).is_err();
        if panicked {
            error!(target: LOG_TARGET, "service panicked in {what}");
        }
        self.apply_effects(now);
        panicked
    }

    /// Runs the service's code `f` for the client at `key` with its context, writes what
    /// it sent, then carries out what it asked for. A panic drops what the call sent and
    /// closes the client. Returns whether it panicked (logged as `what`).
    pub(super) fn with_client(
        &mut self,
        key: usize,
        what: &str,
        now: Instant,
        f: impl FnOnce(&mut S, &mut Context<'_, C, S>),
    ) -> bool {
        let Some(client) = self.core.clients.get_mut(key) else {
            return false;
        };
        let session = client.session;
        let mut output = client.lend_output(&mut self.scratch);
        let mark = output.buf.len();
        let mut ctx = Context::new(&mut self.core, key, &mut output.buf, session);
        let service = &mut self.service;
        let panicked = panic::catch_unwind(AssertUnwindSafe(|| f(service, &mut ctx))).is_err();
        if !self.core.effects.to_self.is_empty() {
            let core = &mut self.core;
            let to_self = &mut core.effects.to_self;
            let arena = &mut core.pubsub.arena;
            own_messages(&mut core.clients, key, &output, to_self, arena, panicked);
        }
        if panicked {
            output.buf.truncate(mark);
            self.core.effects.close_current = Some(CloseReason::ServicePanic);
            if let Some(client) = self.core.clients.get(key) {
                error!(target: LOG_TARGET, "service panicked in {what} client={}", client.info.id);
            }
        }
        if let Some(reason) = self.core.effects.close_current.take()
            && let Some(client) = self.core.clients.get_mut(key)
        {
            client.begin_close(reason);
        }
        self.write_output(key, output, now);
        self.apply_effects(now);
        panicked
    }

    /// Runs every service timer that has come. A client timer runs only while its client
    /// is open, and a periodic one skips its ticks while the client is not reading (more
    /// than the output high watermark unread: what it would send must not pile up); a
    /// timer that panicked does not run again.
    pub(super) fn fire_service_timers(&mut self, now: Instant) {
        let limit = self.core.timers.seq_limit();
        while let Some(due) = self.core.timers.pop_due(now, limit) {
            let again = match (due.owner, due.task) {
                (_, Task::Once(f)) => {
                    self.with_server("a timer", now, f);
                    None
                }
                (_, Task::Every(mut f)) => {
                    let panicked = self.with_server("a timer", now, |service, ctx| f(service, ctx));
                    (!panicked).then_some(Task::Every(f))
                }
                (Some(key), Task::ClientOnce(f)) => {
                    if self.is_open(key) {
                        self.with_client(key, "a timer", now, f);
                    }
                    None
                }
                (Some(key), Task::ClientEvery(mut f)) => {
                    let panicked = self.is_reading(key)
                        && self.with_client(key, "a timer", now, |service, ctx| f(service, ctx));
                    (!panicked).then_some(Task::ClientEvery(f))
                }
                (None, Task::ClientOnce(_) | Task::ClientEvery(_)) => None,
            };
            self.core.timers.finish(due.id, again, now);
        }
    }

    /// Runs what other threads sent, in the order they queued it, at most one queue's
    /// worth per turn (the rest next turn, without waiting for an event).
    pub(super) fn take_messages(&mut self, now: Instant) {
        let core = &mut self.core;
        let service = &mut self.service;
        self.inbox_due = self.inbox.drain(|message| {
            let mut ctx = ServerContext::new(core);
            let ran = panic::catch_unwind(AssertUnwindSafe(|| match message {
                Message::Run(f) => f(service, &mut ctx),
                Message::SendTo(id, respond) => match ctx.output_for(id) {
                    Some(mut out) => respond(&mut out),
                    None => debug!(target: LOG_TARGET, "message for a client gone or not reading client={id}"),
                },
            }));
            if ran.is_err() {
                error!(target: LOG_TARGET, "service panicked in code sent by another thread");
            }
        });
        self.apply_effects(now);
    }

    /// One of the service's own sources is ready: its code runs.
    pub(super) fn on_source_event(&mut self, key: usize, event: &Event, now: Instant) {
        let Some((id, mut on_ready)) = self.core.sources.take(key) else {
            // Deregistered earlier in this batch: a spurious event.
            return;
        };
        self.with_server("a source's code", now, |service, ctx| {
            on_ready(service, event, ctx)
        });
        self.core.sources.put_back(id, on_ready);
    }

    fn is_open(&self, key: usize) -> bool {
        self.core.clients.get(key).is_some_and(|c| c.is_open())
    }

    /// Open, and reading what it is sent (not above the output high watermark).
    fn is_reading(&self, key: usize) -> bool {
        let high_watermark = self.core.info.config.output_high_watermark;
        self.core
            .clients
            .get(key)
            .is_some_and(|c| c.is_open() && c.owed() <= high_watermark)
    }
}
