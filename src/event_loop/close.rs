//! Closing: end of stream, lingering, closing, idle timeout and shutdown.

use std::io::{self, Read};
use std::net::Shutdown;
use std::os::unix::io::AsRawFd;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use log::{debug, error};

use super::*;
use crate::client::{Client, ClientId, CloseReason, Phase};
use crate::codec::Codec;
use crate::service::Service;
use crate::stream::Stream;

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
    pub(super) fn on_eof(&mut self, key: usize) {
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        client.read_eof = true;
        if let Some(b) = client.buffers.as_deref_mut()
            && !b.input.is_empty()
        {
            debug!(
                target: LOG_TARGET,
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

    pub(super) fn set_closing(&mut self, key: usize, reason: CloseReason) {
        if let Some(client) = self.clients.get_mut(key)
            && client.phase == Phase::Open
        {
            client.phase = Phase::Closing(reason);
        }
    }

    /// Our side is done: shut down writing and wait (briefly) for the peer to close, so
    /// that closing with unread input never resets the connection before the peer has
    /// read our last responses. Idle connections close at once.
    pub(super) fn linger_or_close(&mut self, key: usize, reason: CloseReason, now: Instant) {
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
    pub(super) fn discard_input(&mut self, key: usize, reason: CloseReason) {
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
            error!(target: LOG_TARGET, "service panicked in on_disconnect client={}", info.id);
        }
        // A descriptor was freed: a listener out of descriptors may accept again.
        for slot in &mut self.listeners {
            if slot.retry_at.is_some() {
                slot.pending = true;
            }
        }
    }

    pub(super) fn client_id(&self, key: usize) -> ClientId {
        self.clients
            .get(key)
            .map_or(ClientId(0), |client| client.info.id)
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
            if let Some(mut listener) = slot.listener.take() {
                let _ = self.poll.registry().deregister(&mut listener);
                info!(target: LOG_TARGET, "closed listener {}", listener.info().addr);
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

/// Whether the socket has neither unread input nor unacknowledged output, so closing it
/// now cannot reset the connection or lose data on its way to the peer.
pub(super) fn nothing_in_flight(stream: &Stream) -> bool {
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
