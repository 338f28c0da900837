//! Serving: a client's bytes are read, decoded, and handed to the service, whose
//! responses are written in request order.
//!
//! A client's turn borrows buffers for its whole length (its own if it holds a partial
//! request or unwritten responses, else the loop's shared ones: see
//! [`buffers`](crate::client::buffers)). First the requests already buffered are handled
//! (a client resumed, or whose last turn ended at a budget), then the socket is read
//! until `WouldBlock`, a short read, or [`READS_PER_EVENT`] reads, each read followed by
//! every complete request in it. A turn ends early once [`REQUESTS_PER_TURN`] requests
//! were handled, when the client's unwritten output passes the high watermark (it is
//! paused), or when it begins to close. Then its output is written and the effects the
//! service asked for are carried out.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::time::Instant;

use log::{debug, error, trace, warn};
use mio::event::Event;

use super::{EventLoop, LOG_TARGET};
use crate::client::buffers::{self, Input, Output};
use crate::client::frames::{Arena, FrameRef};
use crate::client::{ClientId, CloseReason, OnReadable};
use crate::client_table::ClientTable;
use crate::codec::{Codec, Decoded};
use crate::service::{Context, Service};
use crate::stream::TlsStream;

/// Reads one client may do per turn before others get theirs (fairness).
pub(crate) const READS_PER_EVENT: usize = 16;
/// Requests one client may have handled per turn before others get theirs (fairness: a
/// megabyte of small, costly requests must not hold everyone else up).
pub(crate) const REQUESTS_PER_TURN: usize = 1024;

/// One client's turn: the buffers lent to it and the requests it has had handled.
struct Turn<C: Codec> {
    key: usize,
    /// The client's protocol session, as its handle has it (a request may change it).
    session: C::Session,
    input: Input<C::DecodeState>,
    output: Output,
    /// Requests handled so far this turn (the budget counts across reads).
    handled: usize,
    now: Instant,
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

/// How a client's turn ended.
enum TurnEnd {
    /// `WouldBlock`, or a short read: nothing more to read now.
    Drained,
    /// A read or request budget ran out: more may be waiting.
    Budget,
    /// The peer shut down its write side.
    Eof,
    /// Requests stopped being handled (closing, paused).
    Stopped,
    /// Reading failed.
    Failed(io::Error),
}

impl<C: Codec, S: Service<C>> EventLoop<C, S> {
    /// Routes a client's readiness: write what it is owed, then read what it sent.
    pub(super) fn on_client_event(&mut self, key: usize, event: &Event, now: Instant) {
        let Some(client) = self.core.clients.get(key) else {
            // A token whose client closed earlier in this batch: a spurious event.
            return;
        };
        trace!(
            target: LOG_TARGET,
            "event client={} readable={} writable={}",
            client.info.id,
            event.is_readable(),
            event.is_writable()
        );
        if client.has_output()
            && (event.is_writable() || event.is_write_closed() || event.is_error())
        {
            self.flush(key, now);
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            // After a FIN (or an error) a short read does not mean the socket is drained:
            // the end of stream still has to be read.
            let short_read_drains = !(event.is_read_closed() || event.is_error());
            // Asked after the flush: writing may have ended a close (now lingering) or
            // the client itself.
            match self.core.clients.get(key).map(|c| c.on_readable()) {
                Some(OnReadable::Serve) => self.serve(key, short_read_drains, now),
                // Paused: the bytes wait in the socket until its output drains.
                // Closing: no more requests are handled.
                Some(OnReadable::Wait) | None => {}
                Some(OnReadable::Discard(reason)) => self.discard_input(key, reason),
                Some(OnReadable::ProxyHeader) => {
                    self.on_proxy_header(key, !short_read_drains, now);
                }
            }
        }
    }

    /// A client's turn: handle what it sent, write the answers.
    ///
    /// `short_read_drains`: whether a short read may be taken as "nothing more to read"
    /// (true only when an event just reported plain readability).
    pub(super) fn serve(&mut self, key: usize, short_read_drains: bool, now: Instant) {
        let Some(client) = self.core.clients.get_mut(key) else {
            return;
        };
        client.begin_turn(now);
        let mut turn = Turn {
            key,
            session: client.session,
            input: client.lend_input(&mut self.scratch),
            output: client.lend_output(&mut self.scratch),
            handled: 0,
            now,
        };
        let end = self.read_and_handle(&mut turn, short_read_drains);
        self.end_turn(turn, end);
    }

    /// Handles what is buffered (first: the leftover of an earlier turn), then reads
    /// more and handles that, until the socket is drained, the read budget is spent, or
    /// the client may not send more now.
    fn read_and_handle(&mut self, turn: &mut Turn<C>, short: bool) -> TurnEnd {
        let mut reads = 0;
        let mut last_read = None;
        loop {
            match self.handle_requests(turn) {
                Progress::More => {}
                Progress::Stop => return TurnEnd::Stopped,
                Progress::Yield => return TurnEnd::Budget,
            }
            if let Some(end) = last_read {
                return end;
            }
            let Some(client) = self.core.clients.get_mut(turn.key) else {
                return TurnEnd::Stopped;
            };
            match client.read_into(&mut turn.input) {
                Ok(0) => return TurnEnd::Eof,
                Ok(n) => {
                    self.core.stats.total_net_input_bytes += n as u64;
                    reads += 1;
                    if short && turn.input.was_short_read(n) {
                        // A short read empties the socket; edge-triggered polling reports
                        // the next bytes (or end of stream) that arrive. This saves the
                        // extra `read` that would only return `WouldBlock`.
                        last_read = Some(TurnEnd::Drained);
                    } else if reads >= READS_PER_EVENT {
                        last_read = Some(TurnEnd::Budget);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return TurnEnd::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return TurnEnd::Failed(e),
            }
        }
    }

    /// Gives the buffers back, writes the responses, carries out the service's effects,
    /// and acts on how the turn ended.
    #[inline(always)]
    fn end_turn(&mut self, turn: Turn<C>, end: TurnEnd) {
        let Turn {
            key,
            input,
            output,
            now,
            ..
        } = turn;
        let write_later = match self.core.clients.get_mut(key) {
            Some(client) => {
                client.return_input(input, &mut self.scratch);
                client.flush_queued
            }
            None => {
                buffers::discard_input(input, &mut self.scratch);
                false
            }
        };
        if write_later {
            // Sent something by another client this turn: it is written once, with all
            // of it, at the end of the loop's turn.
            self.keep_output(key, output);
        } else {
            self.write_output(key, output, now);
        }
        self.apply_effects(now);
        match end {
            TurnEnd::Drained | TurnEnd::Stopped => {}
            TurnEnd::Budget => {
                if let Some(client) = self.core.clients.get_mut(key) {
                    client.set_read_pending();
                    self.ready.push(key);
                }
            }
            TurnEnd::Eof => self.on_eof(key),
            TurnEnd::Failed(e) => {
                let reason = match (self.core.clients.get(key), TlsStream::tls_error(&e)) {
                    (Some(client), Some(tls)) => {
                        warn!(
                            target: LOG_TARGET,
                            "tls error, closing client={} peer={} error={tls}",
                            client.info.id, client.info.peer
                        );
                        CloseReason::TlsError
                    }
                    (Some(client), None) => {
                        debug!(target: LOG_TARGET, "read failed client={} error={e}", client.info.id);
                        CloseReason::Reset
                    }
                    (None, _) => CloseReason::Reset,
                };
                self.close_now(key, reason);
            }
        }
        // What it read (a large request arriving) or was sent counts at once.
        self.enforce_client_memory();
    }

    /// Decodes and handles the complete requests in the turn's input, up to the turn's
    /// request budget.
    fn handle_requests(&mut self, turn: &mut Turn<C>) -> Progress {
        let key = turn.key;
        loop {
            if turn.input.buf.is_empty() {
                return Progress::More;
            }
            if turn.output.owed() > self.core.info.config.output_high_watermark {
                self.pause(key);
                return Progress::Stop;
            }
            if turn.handled >= REQUESTS_PER_TURN {
                self.core.stats.turns_yielded += 1;
                return Progress::Yield;
            }
            // The request borrows the codec and the input; handle it inside this match
            // and carry out the outcome after, once both borrows have ended.
            let step =
                match self
                    .codec
                    .decode(turn.session, &mut turn.input.decode, turn.input.buf.data())
                {
                    Ok(Decoded::Request(request, used)) => {
                        self.core.stats.total_commands_processed += 1;
                        if let Some(client) = self.core.clients.get_mut(key) {
                            client.info.requests += 1;
                        }
                        let mark = turn.output.buf.len();
                        let mut ctx =
                            Context::new(&mut self.core, key, &mut turn.output.buf, turn.session);
                        let service = &mut self.service;
                        let panicked = panic::catch_unwind(AssertUnwindSafe(|| {
                            service.on_request(request, &mut ctx);
                        }))
                        .is_err();
                        turn.session = ctx.session();
                        if !self.core.effects.to_self.is_empty() {
                            let core = &mut self.core;
                            let to_self = &mut core.effects.to_self;
                            let arena = &mut core.pubsub.arena;
                            own_messages(
                                &mut core.clients,
                                key,
                                &turn.output,
                                to_self,
                                arena,
                                panicked,
                            );
                        }
                        Step::Handled {
                            used,
                            mark,
                            panicked,
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
                    turn.handled += 1;
                    turn.input.buf.consume(used);
                    if panicked {
                        turn.output.buf.truncate(mark);
                        self.core.effects.close_current = None;
                        let message = "internal error while handling the request";
                        if let Some(id) = self.close_for(turn, CloseReason::ServicePanic, &message)
                        {
                            error!(
                                target: LOG_TARGET,
                                "service panicked handling a request, closing client={id}"
                            );
                        }
                        return Progress::Stop;
                    }
                    if let Some(reason) = self.core.effects.close_current.take() {
                        if let Some(client) = self.core.clients.get_mut(key) {
                            client.begin_close(reason);
                        }
                        return Progress::Stop;
                    }
                }
                Step::Ignored(used) => turn.input.buf.consume(used),
                Step::Incomplete => {
                    if turn.input.buf.len() <= self.core.info.config.max_input_buffer {
                        return Progress::More;
                    }
                    self.core.stats.limit_disconnections += 1;
                    let message = "Protocol error: input buffer limit exceeded";
                    if let Some(id) = self.close_for(turn, CloseReason::Limit, &message) {
                        warn!(
                            target: LOG_TARGET,
                            "input buffer limit exceeded, closing client={id} limit={}",
                            self.core.info.config.max_input_buffer
                        );
                    }
                    return Progress::Stop;
                }
                Step::Invalid(e) => {
                    self.core.stats.protocol_errors += 1;
                    if let Some(id) = self.close_for(turn, CloseReason::ProtocolError, &e) {
                        warn!(target: LOG_TARGET, "protocol error client={id} error={e}");
                    }
                    return Progress::Stop;
                }
            }
        }
    }

    /// Ends a client's requests for `reason`: its unparsed input is dropped, `message` is
    /// its last response, and it closes once that is written. Returns its id, to log.
    fn close_for(
        &mut self,
        turn: &mut Turn<C>,
        reason: CloseReason,
        message: &dyn std::fmt::Display,
    ) -> Option<ClientId> {
        turn.input.buf.clear();
        turn.input.decode = C::DecodeState::default();
        C::encode_error(turn.session, message, &mut turn.output.buf);
        let client = self.core.clients.get_mut(turn.key)?;
        client.begin_close(reason);
        Some(client.info.id)
    }

    /// Stops reading a client whose responses pile up unread.
    fn pause(&mut self, key: usize) {
        if let Some(client) = self.core.clients.get_mut(key)
            && client.pause()
        {
            self.core.stats.output_paused_clients += 1;
            debug!(
                target: LOG_TARGET,
                "output above high watermark, pausing reads client={}",
                client.info.id
            );
        }
    }
}

/// Queues the messages a client published to itself while being served, after its
/// replies so far (dropped if the service panicked: the client is closing).
pub(super) fn own_messages<C: Codec, S>(
    clients: &mut ClientTable<C, S>,
    key: usize,
    output: &Output,
    to_self: &mut Vec<FrameRef>,
    arena: &mut Arena,
    panicked: bool,
) {
    match clients.get_mut(key) {
        Some(client) if !panicked => client.push_own_frames(output, to_self, arena),
        _ => to_self.clear(),
    }
}
