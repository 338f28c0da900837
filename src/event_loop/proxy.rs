//! The PROXY header phase: connections accepted with the PROXY protocol on, until their
//! header is taken (or they are known to send none) and they are served.
//!
//! The handle looks at its bytes and decides ([`Client::read_proxy_header`]); this room
//! carries the decision out: greet and serve a connection now open, refuse one as a
//! protocol error (an error reply, then the usual close), and close a trusted proxy's
//! connection whose header did not come within `proxy_timeout`. Those deadlines are one
//! queue in arrival order: every connection gets the same timeout, so the queue is in
//! deadline order too.
//!
//! [`Client::read_proxy_header`]: crate::client::Client::read_proxy_header

use std::time::Instant;

use log::{debug, warn};

use super::{EventLoop, LOG_TARGET, later};
use crate::client::{ClientId, CloseReason, HeaderStep, OnReadable, ProxyRefusal};
use crate::codec::Codec;
use crate::listener::proxy::Header;
use crate::service::Service;

/// When a trusted proxy's connection must have sent its header.
#[derive(Debug, Clone, Copy)]
pub(super) struct HeaderDeadline {
    pub(super) at: Instant,
    key: usize,
    /// So that a slot taken by a newer client is left alone.
    id: ClientId,
}

impl<C: Codec, S: Service<C>> EventLoop<C, S> {
    /// Starts the deadline of a trusted proxy's connection just accepted.
    pub(super) fn await_header(&mut self, key: usize, id: ClientId, now: Instant) {
        self.header_deadlines.push_back(HeaderDeadline {
            at: later(now, self.info.config.proxy_timeout),
            key,
            id,
        });
    }

    /// A connection awaiting its PROXY header is readable (or closed: `peer_closed`).
    pub(super) fn on_proxy_header(&mut self, key: usize, peer_closed: bool, now: Instant) {
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        let id = client.info.id;
        match client.read_proxy_header(peer_closed) {
            HeaderStep::Wait => {}
            HeaderStep::Open(header) => {
                match (header, client.info.proxied()) {
                    (Some(_), Some(addrs)) => debug!(
                        target: LOG_TARGET,
                        "proxy header accepted client={id} addr={} laddr={} proxy={}",
                        addrs.source, addrs.destination, client.info.peer
                    ),
                    (Some(Header::Local), _) => debug!(
                        target: LOG_TARGET,
                        "proxy header LOCAL, keeping the connection's addresses client={id}"
                    ),
                    (Some(_), None) => debug!(
                        target: LOG_TARGET,
                        "proxy header UNKNOWN, keeping the connection's addresses client={id}"
                    ),
                    (None, _) => {}
                }
                self.greet(key, now);
                if self
                    .clients
                    .get(key)
                    .is_some_and(|c| c.on_readable() == OnReadable::Serve)
                {
                    self.serve(key, false, now);
                }
            }
            HeaderStep::Eof => self.close_now(key, CloseReason::PeerClosed),
            HeaderStep::Refused(refusal) => self.refuse(key, refusal, now),
            HeaderStep::Failed(e) => {
                debug!(target: LOG_TARGET, "reading the proxy header failed client={id} error={e}");
                self.close_now(key, CloseReason::Reset);
            }
        }
    }

    /// Closes, after an error reply, a connection whose header was refused or late.
    fn refuse(&mut self, key: usize, refusal: ProxyRefusal, now: Instant) {
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        let reason = if refusal == ProxyRefusal::Timeout {
            CloseReason::ProxyTimeout
        } else {
            self.stats.protocol_errors += 1;
            CloseReason::ProtocolError
        };
        warn!(
            target: LOG_TARGET,
            "proxy header refused, closing client={} peer={} error={refusal}",
            client.info.id, client.info.peer
        );
        client.begin_close(reason);
        let session = client.session;
        let mut output = client.lend_output(&mut self.scratch);
        C::encode_error(session, &refusal, &mut output.buf);
        self.write_output(key, output, now);
    }

    /// Closes trusted proxies' connections whose header is late.
    pub(super) fn close_late_headers(&mut self, now: Instant) {
        while let Some(&deadline) = self.header_deadlines.front() {
            if deadline.at > now {
                break;
            }
            self.header_deadlines.pop_front();
            let late = self
                .clients
                .get(deadline.key)
                .is_some_and(|c| c.info.id == deadline.id && c.is_awaiting_header());
            if late {
                self.refuse(deadline.key, ProxyRefusal::Timeout, now);
            }
        }
    }
}
