//! Closing: end of stream, lingering, closing and shutdown.
//!
//! A client closes in steps its handle keeps track of (see [`crate::client`]): once it
//! may send no more requests it is `Closing` and its owed output is still written; once
//! that is written our side shuts down writing and it *lingers*, its input read and
//! dropped, until the peer closes, nothing is in flight, or [`LINGER`] passes, so that
//! closing never resets a connection whose last responses the peer has not read yet.
//! Then [`close_now`](EventLoop::close_now) removes it from the table with its deadlines,
//! closes the socket, counts the reason and tells the service. Shutdown starts the same
//! steps for every client at once.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use log::{debug, error, info};

use super::serve::READS_PER_EVENT;
use super::timers::LoopTimer;
use super::{EventLoop, LOG_TARGET};
use crate::client::{CloseReason, OnEof};
use crate::codec::Codec;
use crate::deadlines::later;
use crate::service::{ServerContext, Service};

/// Longest wait for a closing client's peer to close after our side shut down.
const LINGER: Duration = Duration::from_secs(1);

impl<C: Codec, S: Service<C>> EventLoop<C, S> {
    /// The peer shut down its write side: close now, or once the output owed is written.
    pub(super) fn on_eof(&mut self, key: usize) {
        let Some(client) = self.core.clients.get_mut(key) else {
            return;
        };
        let dropped = client.drop_partial_request();
        if dropped > 0 {
            debug!(
                target: LOG_TARGET,
                "peer closed inside a request, dropping bytes={dropped} client={}",
                client.info.id
            );
        }
        match client.on_eof() {
            OnEof::Close(reason) => self.close_now(key, reason),
            OnEof::Drain => {}
        }
    }

    /// Our side is done: shut down writing and wait (briefly) for the peer to close, so
    /// that closing with unread input never resets the connection before the peer has
    /// read our last responses. Idle connections close at once.
    pub(super) fn linger_or_close(&mut self, key: usize, reason: CloseReason, now: Instant) {
        let Some(client) = self.core.clients.get_mut(key) else {
            return;
        };
        if !client.begin_linger(reason) {
            self.close_now(key, reason);
            return;
        }
        // Nothing can be written to it any more: it no longer counts as a subscriber.
        let pubsub = &mut self.core.pubsub;
        pubsub.registry.remove_client(key, &mut pubsub.arena);
        let mut until = now + LINGER;
        if let Some(stop) = self.shutdown_deadline {
            until = until.min(stop);
        }
        self.arm_linger(key, until, now);
        self.discard_input(key, reason);
    }

    /// Reads and drops what a lingering client sends; closes it at its end of stream.
    pub(super) fn discard_input(&mut self, key: usize, reason: CloseReason) {
        for _ in 0..READS_PER_EVENT {
            let Some(client) = self.core.clients.get_mut(key) else {
                return;
            };
            match client.read_and_drop(&mut self.scratch) {
                Ok(0) => break,
                Ok(n) => self.core.stats.total_net_input_bytes += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        // End of stream, an error, or a peer that keeps sending: close.
        self.close_now(key, reason);
    }

    /// Removes a client from the table with its deadlines and timers, closes its socket,
    /// and tells the service.
    pub(super) fn close_now(&mut self, key: usize, reason: CloseReason) {
        let Some(mut client) = self.core.clients.remove(key) else {
            return;
        };
        // Before the slot can be taken again: nothing of it stays subscribed, and the
        // messages it was owed no longer hold their batches.
        let pubsub = &mut self.core.pubsub;
        pubsub.registry.remove_client(key, &mut pubsub.arena);
        client.release_frames(&mut pubsub.arena);
        self.deadlines.remove_owner(key);
        self.core.timers.remove_owner(key);
        // A TLS session still working ends with a close_notify, as far as the socket takes
        // it (closed on a deadline, killed, or at the end of lingering, where it was sent).
        if !matches!(reason, CloseReason::Reset | CloseReason::TlsError) {
            client.stream.close_notify();
        }
        let _ = self.poll.registry().deregister(&mut client.stream);
        self.core.stats.count_close(reason);
        debug!(
            target: LOG_TARGET,
            "client closed client={} reason={reason} cmds={} in={} out={}",
            client.info.id, client.info.requests, client.info.bytes_in, client.info.bytes_out
        );
        let (info, state) = client.into_parts();
        let mut ctx = ServerContext::new(&mut self.core);
        let service = &mut self.service;
        if panic::catch_unwind(AssertUnwindSafe(|| {
            service.on_disconnect(&info, state, reason, &mut ctx);
        }))
        .is_err()
        {
            error!(target: LOG_TARGET, "service panicked in on_disconnect client={}", info.id);
        }
        // What it asked for is carried out by the caller's next `apply_effects` (at the
        // latest at the end of this turn).
        // A descriptor was freed: a listener out of descriptors may accept again.
        for slot in &mut self.listeners {
            slot.descriptor_freed();
        }
    }

    /// Tells the service (`on_shutdown`), stops accepting, closes the master sockets, and
    /// starts closing every client once the responses it is owed are written.
    pub(super) fn begin_shutdown(&mut self, now: Instant) {
        let deadline = later(now, self.core.info.config.shutdown_timeout);
        self.shutdown_deadline = Some(deadline);
        self.arm(LoopTimer::Shutdown, deadline);
        self.with_server("on_shutdown", now, |service, ctx| service.on_shutdown(ctx));
        info!(
            target: LOG_TARGET,
            "shutting down clients={} timeout_ms={}",
            self.core.clients.len(),
            self.core.info.config.shutdown_timeout.as_millis()
        );
        for slot in &mut self.listeners {
            slot.close(&self.poll);
        }
        if let Some(lifecycle) = self.lifecycle.as_mut() {
            lifecycle.stopping();
        }
        for key in self.core.clients.keys() {
            if self
                .core
                .clients
                .get_mut(key)
                .is_some_and(|client| client.begin_shutdown())
            {
                self.linger_or_close(key, CloseReason::Shutdown, now);
            }
        }
    }
}
