//! The PROXY header phase: connections accepted with the PROXY protocol on, until their
//! header is taken (or they are known to send none) and they are served.
//!
//! The handle looks at its bytes and decides ([`Client::read_proxy_header`]); this room
//! carries the decision out: greet and serve a connection now open, refuse one as a
//! protocol error (an error reply, then the usual close), and close a trusted proxy's
//! connection whose header did not come within `proxy_timeout` (a deadline of the loop's,
//! `LoopTimer::ProxyHeader`, that goes with the client).
//!
//! [`Client::read_proxy_header`]: crate::client::Client::read_proxy_header

use std::time::{Duration, Instant};

use log::{debug, warn};

use super::timers::LoopTimer;
use super::{EventLoop, LOG_TARGET};
use crate::client::{CloseReason, HeaderStep, OnReadable, ProxyRefusal};
use crate::codec::Codec;
use crate::deadlines::later;
use crate::listener::proxy::Header;
use crate::service::Service;

impl<C: Codec, S: Service<C>> EventLoop<C, S> {
    /// Starts the deadline of a trusted proxy's connection just accepted.
    pub(super) fn await_header(&mut self, key: usize, now: Instant) {
        let at = later(now, self.core.info.config.proxy_timeout);
        self.arm_client(key, LoopTimer::ProxyHeader, at, Duration::ZERO);
    }

    /// A connection awaiting its PROXY header is readable (or closed: `peer_closed`).
    pub(super) fn on_proxy_header(&mut self, key: usize, peer_closed: bool, now: Instant) {
        let Some(client) = self.core.clients.get_mut(key) else {
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
                    .core
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
    pub(super) fn refuse(&mut self, key: usize, refusal: ProxyRefusal, now: Instant) {
        let Some(client) = self.core.clients.get_mut(key) else {
            return;
        };
        let reason = if refusal == ProxyRefusal::Timeout {
            CloseReason::ProxyTimeout
        } else {
            self.core.stats.protocol_errors += 1;
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
}
