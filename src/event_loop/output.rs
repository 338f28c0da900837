//! Output: what a client is owed is written, and what follows from that is carried out.
//!
//! Responses are written as soon as a turn ends, as far as the socket takes them; the
//! rest stays with the client, which then asks for `WRITABLE` interest until it is all
//! written (the handle keeps its interest in step: see `Client::sync_interest`). Written
//! down to the low watermark, a paused client reads again; written out, a closing client
//! lingers or closes.

use std::mem;
use std::time::Instant;

use log::{debug, warn};

use super::{EventLoop, LOG_TARGET};
use crate::client::buffers::{self, Output};
use crate::client::{CloseReason, OnDrained};
use crate::codec::Codec;
use crate::service::Service;
use crate::tokens;

impl<C: Codec, S: Service<C>> EventLoop<C, S> {
    /// Writes `output` as far as the socket takes it and keeps the rest with the client;
    /// keeps its `WRITABLE` interest in step; resumes a paused client or completes a close
    /// as the output owed allows.
    pub(super) fn write_output(&mut self, key: usize, mut output: Output, now: Instant) {
        let Some(client) = self.core.clients.get_mut(key) else {
            buffers::discard_output(output, &mut self.scratch);
            return;
        };
        let written = client.write_from(&mut output, &mut self.core.pubsub.arena, now);
        client.return_output(output, &mut self.scratch);
        let id = client.info.id;
        let sent = match written {
            Ok(sent) => sent,
            Err(e) => {
                debug!(target: LOG_TARGET, "write failed client={id} error={e}");
                self.close_now(key, CloseReason::Reset);
                return;
            }
        };
        self.core.clients.account(key);
        self.core.stats.total_net_output_bytes += sent as u64;
        let Some(client) = self.core.clients.get_mut(key) else {
            return;
        };
        if let Err(e) = client.sync_interest(self.poll.registry(), tokens::client(key)) {
            warn!(target: LOG_TARGET, "reregistering failed, closing client={id} error={e}");
            self.close_now(key, CloseReason::Reset);
            return;
        }
        let resumed = if !client.has_output() {
            match client.on_drained() {
                OnDrained::Finish(reason) => {
                    self.linger_or_close(key, reason, now);
                    return;
                }
                OnDrained::Resumed => true,
                OnDrained::Nothing => false,
            }
        } else {
            client.resume_below(self.core.info.config.output_low_watermark)
        };
        if resumed {
            debug!(target: LOG_TARGET, "output drained, resuming reads client={id}");
            self.ready.push(key);
        }
    }

    /// Gives a client its output back without writing it (it will be, later this turn).
    #[cold]
    #[inline(never)]
    pub(super) fn keep_output(&mut self, key: usize, output: Output) {
        match self.core.clients.get_mut(key) {
            Some(client) => client.return_output(output, &mut self.scratch),
            None => buffers::discard_output(output, &mut self.scratch),
        }
    }

    /// Writes, once each, the clients that were sent something while others were served
    /// (published messages, `send_to`): at the end of the loop's turn, so that a
    /// subscriber sent many messages in one turn gets them in one `writev`.
    pub(super) fn flush_queued(&mut self, now: Instant) {
        if self.core.effects.flush.is_empty() {
            return;
        }
        let mut flush = mem::take(&mut self.core.effects.flush);
        for &key in &flush {
            if let Some(client) = self.core.clients.get_mut(key) {
                client.flush_queued = false;
                self.flush(key, now);
            }
        }
        flush.clear();
        if self.core.effects.flush.is_empty() {
            self.core.effects.flush = flush;
        }
    }

    /// Writes what a client is owed (on a writable event, or after another client sent it
    /// something).
    pub(super) fn flush(&mut self, key: usize, now: Instant) {
        let Some(client) = self.core.clients.get_mut(key) else {
            return;
        };
        if !client.has_output() {
            return;
        }
        let output = client.lend_output(&mut self.scratch);
        self.write_output(key, output, now);
    }
}
