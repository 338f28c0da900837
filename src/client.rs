//! The client handle: one accepted connection, as the loop keeps it in the client table.
//!
//! A handle is created when a master socket accepts, lives in the
//! [`ClientTable`](crate::client_table::ClientTable) under the slab key that is also its
//! poll token, and is dropped when the connection closes. It holds the data socket, the
//! bytes not yet parsed or not yet written, the service's per-client state, and the
//! [`ClientInfo`] a service (and `CLIENT LIST`) can read.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::buffer::InputBuf;
use crate::listener::ListenerInfo;
use crate::stream::{Peer, Stream};

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
    /// Set by the service (`CLIENT SETNAME`); boxed so an unnamed client pays 16 bytes.
    pub(crate) name: Option<Box<str>>,
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
            name: None,
        }
    }

    /// This client's id.
    pub fn id(&self) -> ClientId {
        self.id
    }
    /// The master socket that accepted it.
    pub fn listener(&self) -> &ListenerInfo {
        &self.listener
    }
    /// The other end of the connection.
    pub fn peer(&self) -> &Peer {
        &self.peer
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
        self.name.as_deref()
    }
}

/// Why a client handle was closed; logged with the client and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed its side and every response owed was written.
    PeerClosed,
    /// The peer sent a malformed request.
    ProtocolError,
    /// Reading or writing failed (connection reset, broken pipe).
    Reset,
    /// Idle longer than the configured timeout.
    IdleTimeout,
    /// Closed on request of another client or of the service (`CLIENT KILL`).
    Killed,
    /// The service asked to close it after its reply (`QUIT`).
    Quit,
    /// The server is shutting down.
    Shutdown,
    /// The service panicked while handling one of its requests.
    ServicePanic,
    /// A per-client limit was exceeded (input or output buffer).
    Limit,
}

impl CloseReason {
    /// The reason as a short `snake_case` word, as logged.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::PeerClosed => "peer_closed",
            CloseReason::ProtocolError => "protocol_error",
            CloseReason::Reset => "reset",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::Killed => "killed",
            CloseReason::Quit => "quit",
            CloseReason::Shutdown => "shutdown",
            CloseReason::ServicePanic => "service_panic",
            CloseReason::Limit => "limit",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a client is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Reading requests, writing responses.
    Open,
    /// No more requests are read; the connection closes once the output owed is written.
    Closing(CloseReason),
    /// Output written and our write side shut down; input is read and dropped until the
    /// peer closes, nothing is left in flight, or the linger deadline passes, so that
    /// closing never resets a connection whose last responses the peer has not read yet.
    /// (The deadline is kept in the loop's lingering queue.)
    Lingering(CloseReason),
}

/// The bytes a client handle keeps between two wake-ups: allocated the first time a
/// request is split across reads or a response cannot be written at once.
#[derive(Debug, Default)]
pub(crate) struct Buffers<D> {
    /// Received bytes not yet decoded, starting at the first byte of a request.
    pub(crate) input: InputBuf,
    /// The codec's progress through `input`'s first request.
    pub(crate) decode: D,
    /// Encoded responses not yet written.
    pub(crate) output: Vec<u8>,
    /// How much of `output` is already written.
    pub(crate) written: usize,
}

impl<D> Buffers<D> {
    pub(crate) fn pending_output(&self) -> usize {
        self.output.len() - self.written
    }
}

/// One client handle.
pub(crate) struct Client<D, S> {
    pub(crate) info: ClientInfo,
    pub(crate) stream: Stream,
    pub(crate) buffers: Option<Box<Buffers<D>>>,
    /// The service's per-client state.
    pub(crate) state: S,
    pub(crate) phase: Phase,
    /// Whether `WRITABLE` is part of the registered interest (only while output waits).
    pub(crate) writable_interest: bool,
    /// The peer shut down its write side: no more requests will come.
    pub(crate) read_eof: bool,
    /// Reading stopped before `WouldBlock` (fairness budget): the next loop turn reads
    /// again without waiting for an event.
    pub(crate) read_pending: bool,
    /// Reading is paused until the client reads enough of its responses (backpressure).
    pub(crate) paused: bool,
    /// Neighbours in the table's least-recently-active list (slab keys, which never
    /// exceed the number of open descriptors), for idle sweeps.
    pub(crate) idle_prev: u32,
    pub(crate) idle_next: u32,
}

/// "No neighbour" in the idle list.
pub(crate) const NIL: u32 = u32::MAX;

impl<D, S: Default> Client<D, S> {
    /// A new open handle with default service state and no buffers yet.
    pub(crate) fn new(info: ClientInfo, stream: Stream) -> Client<D, S> {
        Client {
            info,
            stream,
            buffers: None,
            state: S::default(),
            phase: Phase::Open,
            writable_interest: false,
            read_eof: false,
            read_pending: false,
            paused: false,
            idle_prev: NIL,
            idle_next: NIL,
        }
    }
}

impl<D, S> Client<D, S> {
    /// Unparsed input bytes held.
    pub(crate) fn input_len(&self) -> usize {
        self.buffers.as_ref().map_or(0, |b| b.input.len())
    }

    /// Response bytes waiting to be written.
    pub(crate) fn output_len(&self) -> usize {
        self.buffers.as_ref().map_or(0, |b| b.pending_output())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connected client costs this much in the table, idle or not: keep it small
    /// (the target is under 256 bytes of RSS per idle connection, all included).
    #[test]
    fn handle_stays_small() {
        let size = std::mem::size_of::<
            Client<crate::resp::RespDecodeState, crate::commands::ClientState>,
        >();
        eprintln!("client handle: {size} bytes");
        assert!(size <= 176, "client handle grew to {size} bytes");
    }
}
