//! Accepting: a master socket's connection requests become client handles.

use std::io::{self, Write};
use std::mem;
use std::net::Shutdown;
use std::os::unix::io::AsRawFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use log::{debug, error, warn};
use mio::{Interest, Token};

use super::*;
use crate::client::{Client, ClientInfo, CloseReason};
use crate::codec::Codec;
use crate::service::{Context, Service};
use crate::stream::{Peer, Stream};

impl<C: Codec, S: Service<C>> EventLoop<C, S> {
    pub(super) fn accept(&mut self, index: usize, now: Instant) {
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
                            target: LOG_TARGET,
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
                            target: LOG_TARGET,
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
    pub(super) fn admit(&mut self, index: usize, mut stream: Stream, peer: Peer, now: Instant) {
        if self.clients.len() >= self.info.max_clients {
            self.stats.rejected_connections += 1;
            if self
                .last_limit_warning
                .is_none_or(|t| now.duration_since(t) >= WARN_INTERVAL)
            {
                warn!(
                    target: LOG_TARGET,
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
                    target: LOG_TARGET,
                    "client connected client={id} kind={} peer={peer} laddr={} fd={fd}",
                    listener.info().kind(),
                    listener.info().addr
                );
                self.on_connect(key, now);
            }
            Err(e) => {
                warn!(target: LOG_TARGET, "registering a new client failed peer={peer} error={e}")
            }
        }
    }

    pub(super) fn on_connect(&mut self, key: usize, now: Instant) {
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
                target: LOG_TARGET,
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
}
