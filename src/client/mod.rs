//! The client handle: one accepted connection, as the loop keeps it in the client table.
//!
//! A handle is created when a master socket accepts, lives in the
//! [`ClientTable`](crate::client_table::ClientTable) under the slab key that is also its
//! poll token, and is dropped when the connection closes. It holds the data socket, the
//! bytes not yet parsed or not yet written, the service's per-client state, and the
//! [`ClientInfo`] a service (and `CLIENT LIST`) can read.

mod close_reason;
mod info;

use crate::buffer::InputBuf;
use crate::stream::Stream;

pub use close_reason::CloseReason;
pub use info::{ClientId, ClientInfo};

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
