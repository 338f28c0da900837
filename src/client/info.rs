//! What a client handle tells the rest of the server about itself: its never-reused
//! [`ClientId`] and the [`ClientInfo`] services and `CLIENT LIST` read.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::listener::ListenerInfo;
use crate::listener::proxy::ProxiedAddrs;
use crate::stream::Peer;

/// A client's identity, unique for the life of the server: never given to two clients,
/// even when the second takes the table slot the first one left. A service may keep it
/// after the client is gone; using it then finds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub(crate) u64);

impl ClientId {
    /// The id as a number (the first client is 1).
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The id with that number. It names a client only if the table has one with it.
    pub fn from_u64(id: u64) -> ClientId {
        ClientId(id)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What the server knows and counts about one client: read-only to services.
#[derive(Debug)]
pub struct ClientInfo {
    pub(crate) id: ClientId,
    /// The master socket that accepted this client (shared with its other clients).
    pub(crate) listener: Arc<ListenerInfo>,
    pub(crate) peer: Peer,
    pub(crate) connected_at: Instant,
    /// Last time a request arrived or a response was written; drives `--timeout`.
    pub(crate) last_active: Instant,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) requests: u64,
    /// What few clients have (a name, a proxy), boxed so that the others pay 8 bytes.
    extra: Option<Box<Extra>>,
}

/// The parts of a [`ClientInfo`] most clients never have.
#[derive(Debug, Default)]
struct Extra {
    /// Set by the service (`CLIENT SETNAME`).
    name: Option<Box<str>>,
    /// The addresses a PROXY header relayed the connection for, if one did.
    proxied: Option<ProxiedAddrs>,
}

impl ClientInfo {
    /// A client accepted `now` by `listener`, nothing counted yet.
    pub(crate) fn new(
        id: ClientId,
        listener: Arc<ListenerInfo>,
        peer: Peer,
        now: Instant,
    ) -> ClientInfo {
        ClientInfo {
            id,
            listener,
            peer,
            connected_at: now,
            last_active: now,
            bytes_in: 0,
            bytes_out: 0,
            requests: 0,
            extra: None,
        }
    }

    /// Names it (`None`: no name).
    pub(crate) fn set_name(&mut self, name: Option<&str>) {
        if name.is_some() || self.extra.is_some() {
            self.extra_mut().name = name.map(Box::from);
        }
    }

    /// Records the addresses a PROXY header gave.
    pub(crate) fn set_proxied(&mut self, proxied: ProxiedAddrs) {
        self.extra_mut().proxied = Some(proxied);
    }

    fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// This client's id.
    pub fn id(&self) -> ClientId {
        self.id
    }
    /// The master socket that accepted it.
    pub fn listener(&self) -> &ListenerInfo {
        &self.listener
    }
    /// The other end of the connection: for a client behind a proxy, the proxy.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }
    /// For a client behind a proxy that sent a PROXY header: the client's own address
    /// and the address it connected to, as the proxy saw them.
    pub fn proxied(&self) -> Option<&ProxiedAddrs> {
        self.extra.as_ref()?.proxied.as_ref()
    }
    /// When it was accepted.
    pub fn connected_at(&self) -> Instant {
        self.connected_at
    }
    /// When it last sent a request or was last written to.
    pub fn last_active(&self) -> Instant {
        self.last_active
    }
    /// Time since it was accepted.
    pub fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.connected_at)
    }
    /// Time since it was last active.
    pub fn idle(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_active)
    }
    /// Bytes received from it.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }
    /// Bytes sent to it.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out
    }
    /// Requests it sent that were handed to the service.
    pub fn requests(&self) -> u64 {
        self.requests
    }
    /// The name the service gave it, if any.
    pub fn name(&self) -> Option<&str> {
        self.extra.as_ref()?.name.as_deref()
    }
}
