//! Serving: read a client's bytes, decode requests, hand each to the service.

use std::io::{self, Read};
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::time::Instant;

use log::{debug, error, trace, warn};
use mio::event::Event;

use super::*;
use crate::buffer::InputBuf;
use crate::client::{CloseReason, Phase};
use crate::codec::{Codec, Decoded};
use crate::service::{Context, Service};

/// What became of one decode attempt, once its borrows have ended.
pub(super) enum Step<E> {
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
pub(super) enum Progress {
    /// Every complete request was handled: read more.
    More,
    /// No more requests from this client for now (it is closing, or paused).
    Stop,
    /// This turn's request budget is spent: the rest waits for the next turn.
    Yield,
}

/// How a client's read loop ended.
pub(super) enum ReadEnd {
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

impl<C: Codec, S: Service<C>> EventLoop<C, S> {
    pub(super) fn on_client_event(&mut self, key: usize, event: &Event, now: Instant) {
        let Some(client) = self.clients.get(key) else {
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
    pub(super) fn on_readable(&mut self, key: usize, short_read_drains: bool, now: Instant) {
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
    pub(super) fn serve(&mut self, key: usize, short_read_drains: bool, now: Instant) {
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
                debug!(target: LOG_TARGET, "read failed client={} error={e}", self.client_id(key));
                self.close_now(key, CloseReason::Reset);
            }
        }
    }

    /// Decodes and handles the complete requests in `input`, up to this turn's budget
    /// (`handled` counts them across calls).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn process(
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
                            target: LOG_TARGET,
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
                            target: LOG_TARGET,
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
                    warn!(target: LOG_TARGET, "protocol error client={} error={e}", self.client_id(key));
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
    pub(super) fn pause(&mut self, key: usize) {
        if let Some(client) = self.clients.get_mut(key)
            && !client.paused
        {
            client.paused = true;
            self.stats.output_paused_clients += 1;
            debug!(
                target: LOG_TARGET,
                "output above high watermark, pausing reads client={}",
                client.info.id
            );
        }
    }

    /// Gives the input buffer back: leftover bytes of a request stay with the client.
    pub(super) fn store_input(
        &mut self,
        key: usize,
        mut input: InputBuf,
        decode: C::DecodeState,
        own: bool,
    ) {
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
}
