//! The loop's own deadlines: idle timeout, lingering closes, accept retries, the shutdown
//! deadline, a trusted proxy's PROXY header, a TLS handshake, the lifecycle's heartbeat,
//! all in one
//! [`Deadlines`] heap whose nearest deadline is the poll timeout.
//!
//! A deadline that concerns one client belongs to it ([`arm_client`](EventLoop::arm_client))
//! and goes with it when it closes. When it comes, the client's handle says what it means
//! ([`OnDeadline`]): close it, look again later, or keep ticking.
//!
//! The idle timeout costs nothing per request: a client's idle deadline is not moved
//! each time it is active (its handle only notes the time, as it always has). When the
//! deadline comes, the handle compares it with its last activity: idle long enough, it
//! closes; otherwise the deadline is armed again for when it would be. So an active
//! client's deadline is looked at about once per timeout, whatever its request rate.
//!
//! To add a per-client deadline of the loop (say, a handshake that must complete in
//! time): a [`LoopTimer`] variant; [`arm_client`](EventLoop::arm_client) where it starts
//! (keep the `TimerId` it returns where the condition is met, e.g. in the handle, and
//! `self.deadlines.cancel(id)` there; or let it come and have the handle answer
//! [`OnDeadline::Done`]); and a match arm in [`fire_client`](EventLoop::fire_client)
//! that asks the handle what it means. The client's deadlines go with it.

use std::time::{Duration, Instant};

use log::{debug, warn};

use super::{EventLoop, LOG_TARGET};
use crate::client::OnDeadline;
use crate::codec::Codec;
use crate::deadlines::{Deadlines, Due, TimerId, later};
use crate::service::Service;

/// How often a lingering client is checked for data still in flight.
const LINGER_CHECK: Duration = Duration::from_millis(10);

/// What a deadline of the loop is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LoopTimer {
    /// A client's idle timeout: close it if it has been idle that long.
    Idle,
    /// A lingering client is checked (every [`LINGER_CHECK`]) until nothing is in
    /// flight, and closed at `until` at the latest.
    Linger { until: Instant },
    /// Accepting on listener `index` paused for lack of descriptors: try again.
    AcceptRetry(usize),
    /// The stop's deadline: wakes the poll, and the loop ends this turn.
    Shutdown,
    /// A trusted proxy's connection must have sent its PROXY header by now (see
    /// `proxy.rs`); met or not, it is not cancelled: the handle says whether it still
    /// matters.
    ProxyHeader,
    /// The lifecycle's heartbeat (a supervisor's watchdog), periodic.
    Heartbeat,
    /// A TLS connection must have completed its handshake by now; met or not, it is not
    /// cancelled: the handle says whether it still matters.
    TlsHandshake,
}

impl<C: Codec, S: Service<C>> EventLoop<C, S> {
    /// Arms a deadline of the loop at `at` that belongs to nobody.
    pub(super) fn arm(&mut self, timer: LoopTimer, at: Instant) -> TimerId {
        self.deadlines.insert(at, Duration::ZERO, None, timer)
    }

    /// Arms a deadline of the loop for the client at `key`, at `at` and then every
    /// `period` if it is not zero; it goes when the client does.
    pub(super) fn arm_client(
        &mut self,
        key: usize,
        timer: LoopTimer,
        at: Instant,
        period: Duration,
    ) -> TimerId {
        self.deadlines.insert(at, period, Some(key), timer)
    }

    /// Arms a new client's idle deadline, if there is an idle timeout.
    pub(super) fn arm_idle(&mut self, key: usize, now: Instant) {
        if let Some(timeout) = self.core.info.config.idle_timeout {
            self.arm_client(key, LoopTimer::Idle, later(now, timeout), Duration::ZERO);
        }
    }

    /// Arms a new TLS connection's handshake deadline.
    pub(super) fn arm_handshake(&mut self, key: usize, now: Instant) {
        let at = later(now, self.core.info.config.tls_handshake_timeout);
        self.arm_client(key, LoopTimer::TlsHandshake, at, Duration::ZERO);
    }

    /// Arms the lifecycle's heartbeat, if it asks for one.
    pub(super) fn arm_heartbeat(&mut self, now: Instant) {
        let interval = self.lifecycle.as_ref().and_then(|l| l.heartbeat_interval());
        if let Some(interval) = interval.filter(|i| !i.is_zero()) {
            let at = later(now, interval);
            self.deadlines
                .insert(at, interval, None, LoopTimer::Heartbeat);
        }
    }

    /// Checks a lingering client every [`LINGER_CHECK`] until `until`.
    pub(super) fn arm_linger(&mut self, key: usize, until: Instant, now: Instant) {
        self.arm_client(
            key,
            LoopTimer::Linger { until },
            now + LINGER_CHECK,
            LINGER_CHECK,
        );
    }

    /// Every deadline of the loop that has come: carries each out.
    pub(super) fn fire_deadlines(&mut self, now: Instant) {
        let limit = self.deadlines.seq_limit();
        while let Some(due) = self.deadlines.pop_due(now, limit) {
            match (due.owner, due.task) {
                (Some(key), _) => self.fire_client(key, due, now),
                (None, LoopTimer::AcceptRetry(index)) => {
                    self.deadlines.finish(due.id, None, now);
                    self.retry_accept(index, now);
                }
                (None, LoopTimer::Heartbeat) => {
                    if let Some(lifecycle) = self.lifecycle.as_mut() {
                        lifecycle.heartbeat();
                    }
                    // Periodic: next on its grid, once however many beats a stall missed.
                    self.deadlines
                        .finish(due.id, Some(LoopTimer::Heartbeat), now);
                }
                (None, _) => self.deadlines.finish(due.id, None, now),
            }
        }
    }

    /// A client's deadline came: its handle says what it means.
    fn fire_client(&mut self, key: usize, due: Due<LoopTimer>, now: Instant) {
        let Due { id, task, .. } = due;
        let Some(client) = self.core.clients.get(key) else {
            self.deadlines.finish(id, None, now);
            return;
        };
        if task == LoopTimer::ProxyHeader {
            self.deadlines.finish(id, None, now);
            if let Some(refusal) = client.on_header_deadline() {
                self.refuse(key, refusal, now);
            }
            return;
        }
        let verdict = match task {
            LoopTimer::Idle => match self.core.info.config.idle_timeout {
                Some(timeout) => client.on_idle_deadline(now, timeout),
                None => OnDeadline::Done,
            },
            LoopTimer::Linger { until } => client.on_linger_check(now >= until),
            LoopTimer::TlsHandshake => client.on_handshake_deadline(),
            LoopTimer::AcceptRetry(_)
            | LoopTimer::Shutdown
            | LoopTimer::ProxyHeader
            | LoopTimer::Heartbeat => OnDeadline::Done,
        };
        match verdict {
            OnDeadline::Close(reason) => {
                if task == LoopTimer::Idle {
                    debug!(target: LOG_TARGET, "idle timeout client={}", client.info.id);
                }
                if task == LoopTimer::TlsHandshake {
                    warn!(
                        target: LOG_TARGET,
                        "tls handshake timed out, closing client={} peer={}",
                        client.info.id, client.info.peer
                    );
                }
                self.deadlines.finish(id, None, now);
                self.close_now(key, reason);
            }
            OnDeadline::CheckAt(at) => self.deadlines.finish_at(id, task, at),
            OnDeadline::Keep => self.deadlines.finish(id, Some(task), now),
            OnDeadline::Done => self.deadlines.finish(id, None, now),
        }
    }

    /// The nearest deadline of the loop.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.next_deadline()
    }
}

/// The loop's deadlines, as the loop keeps them.
pub(super) type LoopDeadlines = Deadlines<LoopTimer>;
