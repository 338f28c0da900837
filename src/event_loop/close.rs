//! Closing: end of stream, lingering, closing, idle timeout and shutdown.
//!
//! A client closes in steps its handle keeps track of (see [`crate::client`]): once it
//! may send no more requests it is `Closing` and its owed output is still written; once
//! that is written our side shuts down writing and it *lingers*, its input read and
//! dropped, until the peer closes, nothing is in flight, or [`LINGER`] passes, so that
//! closing never resets a connection whose last responses the peer has not read yet.
//! Then [`close_now`](EventLoop::close_now) removes it from the table, closes the
//! socket, counts the reason and tells the service. The idle sweep and shutdown start
//! the same steps for many clients at once.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use log::{debug, error, info};

use super::serve::READS_PER_EVENT;
use super::{EventLoop, LOG_TARGET, later};
use crate::client::{ClientId, CloseReason, OnEof};
use crate::codec::Codec;
use crate::service::Service;

/// Longest wait for a closing client's peer to close after our side shut down.
const LINGER: Duration = Duration::from_secs(1);
/// How often a lingering client is checked for data still in flight.
const LINGER_CHECK: Duration = Duration::from_millis(10);

/// A lingering client, looked at again at `check_at`, closed at `deadline` at the latest.
#[derive(Debug, Clone, Copy)]
pub(super) struct Linger {
    pub(super) check_at: Instant,
    deadline: Instant,
    key: usize,
    /// The client's id, so that a slot taken by a newer client is left alone.
    id: ClientId,
}

impl<C: Codec, S: Service<C>> EventLoop<C, S> {
    /// The peer shut down its write side: close now, or once the output owed is written.
    pub(super) fn on_eof(&mut self, key: usize) {
        let Some(client) = self.clients.get_mut(key) else {
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
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        if !client.begin_linger(reason) {
            self.close_now(key, reason);
            return;
        }
        let mut deadline = now + LINGER;
        if let Some(stop) = self.shutdown_deadline {
            deadline = deadline.min(stop);
        }
        self.lingering.push_back(Linger {
            check_at: now + LINGER_CHECK,
            deadline,
            key,
            id: client.info.id,
        });
        self.discard_input(key, reason);
    }

    /// Reads and drops what a lingering client sends; closes it at its end of stream.
    pub(super) fn discard_input(&mut self, key: usize, reason: CloseReason) {
        for _ in 0..READS_PER_EVENT {
            let Some(client) = self.clients.get_mut(key) else {
                return;
            };
            match client.read_and_drop(&mut self.scratch) {
                Ok(0) => break,
                Ok(n) => self.stats.total_net_input_bytes += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        // End of stream, an error, or a peer that keeps sending: close.
        self.close_now(key, reason);
    }

    /// Removes a client from the table, closes its socket, and tells the service.
    pub(super) fn close_now(&mut self, key: usize, reason: CloseReason) {
        let Some(mut client) = self.clients.remove(key) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut client.stream);
        self.stats.count_close(reason);
        debug!(
            target: LOG_TARGET,
            "client closed client={} reason={reason} cmds={} in={} out={}",
            client.info.id, client.info.requests, client.info.bytes_in, client.info.bytes_out
        );
        let (info, state) = client.into_parts();
        let service = &mut self.service;
        if panic::catch_unwind(AssertUnwindSafe(|| {
            service.on_disconnect(&info, state, reason);
        }))
        .is_err()
        {
            error!(target: LOG_TARGET, "service panicked in on_disconnect client={}", info.id);
        }
        // A descriptor was freed: a listener out of descriptors may accept again.
        for slot in &mut self.listeners {
            slot.descriptor_freed();
        }
    }

    /// Lingering clients close once nothing is in flight (our last bytes acknowledged,
    /// nothing unread), when the peer closes (seen in `discard_input`), or at their
    /// deadline.
    pub(super) fn sweep_lingering(&mut self, now: Instant) {
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
            if let Some(reason) = client.lingering_reason() {
                if now >= linger.deadline || client.linger_done() {
                    self.close_now(linger.key, reason);
                } else {
                    self.lingering.push_back(Linger {
                        check_at: now + LINGER_CHECK,
                        ..linger
                    });
                }
            }
        }
    }

    /// Closes clients idle longer than `timeout`, oldest first; stops at the first that
    /// is not, so the cost is proportional to the clients closed.
    pub(super) fn close_idle(&mut self, timeout: Duration, now: Instant) {
        while let Some((key, client)) = self.clients.least_recently_active() {
            if now.saturating_duration_since(client.info.last_active) < timeout {
                break;
            }
            debug!(target: LOG_TARGET, "idle timeout client={}", client.info.id);
            self.close_now(key, CloseReason::IdleTimeout);
        }
    }

    /// Stops accepting, closes the master sockets, and starts closing every client once
    /// the responses it is owed are written.
    pub(super) fn begin_shutdown(&mut self, now: Instant) {
        let deadline = later(now, self.info.config.shutdown_timeout);
        self.shutdown_deadline = Some(deadline);
        info!(
            target: LOG_TARGET,
            "shutting down clients={} timeout_ms={}",
            self.clients.len(),
            self.info.config.shutdown_timeout.as_millis()
        );
        for slot in &mut self.listeners {
            slot.close(&self.poll);
        }
        if let Some(lifecycle) = self.lifecycle.as_mut() {
            lifecycle.stopping();
        }
        for key in self.clients.keys() {
            if self
                .clients
                .get_mut(key)
                .is_some_and(|client| client.begin_shutdown())
            {
                self.linger_or_close(key, CloseReason::Shutdown, now);
            }
        }
    }
}
