//! The client handle: one accepted connection, as the loop keeps it in the client table.
//!
//! A handle is created when a master socket accepts, lives in the
//! client table (`client_table`) under the slab key that is also its
//! poll token, and is dropped when the connection closes. It holds the data socket, the
//! bytes not yet parsed or not yet written, the service's per-client state, and the
//! [`ClientInfo`] a service (and `CLIENT LIST`) can read. A TLS client's stream does its
//! handshake as it is read and written (its deadline is the loop's); the handle counts
//! the records rustls still has to write as output (`has_output`),
//! so it is not done, nor drained, before they are out, and it ends the session with a
//! `close_notify` before lingering.
//!
//! The handle owns its state machine; the loop routes readiness to it and carries out
//! what a transition asks for (write, linger, close, read again next turn):
//!
//! ```text
//!   AwaitingHeader (PROXY protocol on: a trusted proxy's header, or a check that an
//!    │              untrusted peer sends none; see `proxy_header.rs`)
//!    │ a valid header (trusted), or bytes that begin no header (untrusted)
//!    ▼
//!   Open ──pause (owed output above the high watermark)──► Open, paused
//!    ▲                                                         │
//!    └────resume (owed output down to the low watermark)───────┘
//!    │ QUIT, kill, protocol error, limit, shutdown; end of stream with output owed
//!    ▼
//!   Closing(reason): no more requests are handled; what is owed is written
//!    │ all written
//!    ▼
//!   Lingering(reason): our write side shut down; input dropped until the peer
//!    │                 closes, nothing is in flight, or the linger deadline passes
//!    ▼
//!   closed: removed from the table
//! ```

pub(crate) mod buffers;
mod close_reason;
pub(crate) mod frames;
mod info;
mod proxy_header;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::io::AsRawFd;
use std::time::{Duration, Instant};

use mio::{Interest, Registry, Token};

use crate::codec::Codec;
use crate::config::OutputLimit;
use crate::deadlines::later;
use crate::stream::Stream;
use buffers::{Buffers, Input, Output, Scratch};
use frames::{Arena, FrameRef, LimitHit};

pub use close_reason::CloseReason;
pub use info::{ClientId, ClientInfo};
pub(crate) use proxy_header::{HeaderStep, ProxyRefusal};

/// Where a client is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Accepted with the PROXY protocol on: no request is read before the connection's
    /// first bytes are a valid header (`trusted`: from a proxy allowed to send one) or
    /// begin no header at all (not `trusted`: a header from it is refused). A trusted
    /// proxy's deadline is one of the loop's (see `event_loop/timers.rs`).
    AwaitingHeader { trusted: bool },
    /// Reading requests, writing responses.
    Open,
    /// No more requests are read; the connection closes once the output owed is written.
    Closing(CloseReason),
    /// Output written and our write side shut down; input is read and dropped until the
    /// peer closes, nothing is left in flight, or the linger deadline passes, so that
    /// closing never resets a connection whose last responses the peer has not read yet.
    /// (The deadline is one of the loop's: see `event_loop/timers.rs`.)
    Lingering(CloseReason),
}

/// What a readable event means for a client, given where it is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnReadable {
    /// Read, decode and handle its requests.
    Serve,
    /// Leave the bytes in the socket: it is paused (its responses pile up unread) or
    /// closing (no more requests are handled).
    Wait,
    /// It lingers: read and drop what it sends, close at its end of stream.
    Discard(CloseReason),
    /// It awaits its PROXY header: look at what arrived
    /// ([`read_proxy_header`](Client::read_proxy_header)).
    ProxyHeader,
}

/// What the peer closing its write side means for a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnEof {
    /// Nothing is owed: close now, for this reason.
    Close(CloseReason),
    /// Responses are owed: write them first (half-close), then close.
    Drain,
}

/// What a client does once everything it was owed is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDrained {
    /// It is closing: linger or close, for this reason.
    Finish(CloseReason),
    /// It was paused and reads again: serve it next turn (the bytes it sent meanwhile
    /// wait in the socket, and no new event will announce them).
    Resumed,
    /// Nothing changes.
    Nothing,
}

/// What one of the loop's deadlines for a client means for it when it comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDeadline {
    /// Close it now, for this reason.
    Close(CloseReason),
    /// Not yet: look again at this time.
    CheckAt(Instant),
    /// Not yet: look again at the deadline's next tick.
    Keep,
    /// The deadline no longer concerns it.
    Done,
}

/// One client handle.
pub(crate) struct Client<C: Codec, S> {
    pub(crate) info: ClientInfo,
    pub(crate) stream: Stream,
    /// Bytes kept between turns; `None` while it holds none (most idle clients).
    buffers: Option<Box<Buffers<C::DecodeState>>>,
    /// The service's per-client state.
    pub(crate) state: S,
    /// Its protocol session: how its requests are decoded and its responses encoded.
    pub(crate) session: C::Session,
    phase: Phase,
    /// Whether `WRITABLE` is part of the registered interest (only while output waits).
    writable_interest: bool,
    /// The peer shut down its write side: no more requests will come.
    read_eof: bool,
    /// Reading stopped before `WouldBlock` (fairness budget, or just resumed): the next
    /// loop turn reads again without waiting for an event.
    read_pending: bool,
    /// Reading is paused until the client reads enough of its responses (backpressure).
    paused: bool,
    /// It was sent something while another client was served and is in the loop's list
    /// of clients to write at the end of this turn (each is written once per turn).
    pub(crate) flush_queued: bool,
}

impl<C: Codec, S: Default> Client<C, S> {
    /// A new open handle with default service state and no buffers yet.
    pub(crate) fn new(info: ClientInfo, stream: Stream) -> Client<C, S> {
        Client {
            info,
            stream,
            buffers: None,
            state: S::default(),
            session: C::Session::default(),
            phase: Phase::Open,
            writable_interest: false,
            read_eof: false,
            read_pending: false,
            paused: false,
            flush_queued: false,
        }
    }
}

impl<C: Codec, S> Client<C, S> {
    /// What the service gets back once the client is gone: its final info and state (the
    /// socket is closed here).
    pub(crate) fn into_parts(self) -> (ClientInfo, S) {
        (self.info, self.state)
    }

    /// Unparsed input bytes held.
    pub(crate) fn input_len(&self) -> usize {
        self.buffers.as_ref().map_or(0, |b| b.input_len())
    }

    /// Response bytes waiting to be written, shared messages included (plaintext, for a
    /// TLS client): what the watermarks and `obuf=` count.
    #[inline]
    pub(crate) fn owed(&self) -> usize {
        self.buffers.as_ref().map_or(0, |b| b.owed())
    }

    /// Bytes of memory it holds or keeps alive: its own buffers and the shared messages it
    /// is owed (what it is ranked by when clients are evicted; `CLIENT LIST`'s `tot-mem`).
    pub(crate) fn total_memory(&self) -> usize {
        self.buffers.as_ref().map_or(0, |b| b.memory() + b.pinned())
    }

    /// Counts its buffer memory again; returns what it held when last counted and what
    /// it holds now (the table keeps the sum over all clients).
    #[inline]
    pub(crate) fn recount_memory(&mut self) -> (usize, usize) {
        match self.buffers.as_deref_mut() {
            Some(b) => {
                let now = b.memory();
                (std::mem::replace(&mut b.accounted, now), now)
            }
            None => (0, 0),
        }
    }

    /// Buffer memory as last counted in the table's sum.
    pub(crate) fn accounted_memory(&self) -> usize {
        self.buffers.as_ref().map_or(0, |b| b.accounted)
    }

    /// Whether anything waits to be written: responses, or a TLS client's records of its
    /// own (handshake, alerts, `close_notify`) when it owes no response. Until nothing
    /// does, it wants `WRITABLE` and is not done.
    #[inline]
    pub(crate) fn has_output(&self) -> bool {
        self.owed() > 0 || self.stream.wants_write()
    }

    /// Starts it awaiting a PROXY header, from a `trusted` proxy or not (a new handle).
    pub(crate) fn awaiting_proxy_header(mut self, trusted: bool) -> Client<C, S> {
        if self.phase == Phase::Open {
            self.phase = Phase::AwaitingHeader { trusted };
        }
        self
    }

    /// Its PROXY header's deadline came: refuse it if the header is still awaited.
    pub(crate) fn on_header_deadline(&self) -> Option<ProxyRefusal> {
        matches!(self.phase, Phase::AwaitingHeader { .. }).then_some(ProxyRefusal::Timeout)
    }

    /// Whether it still takes requests (not closing, not lingering).
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// The reason it is closing or lingering for, if it is.
    pub(crate) fn closing_reason(&self) -> Option<CloseReason> {
        match self.phase {
            Phase::AwaitingHeader { .. } | Phase::Open => None,
            Phase::Closing(reason) | Phase::Lingering(reason) => Some(reason),
        }
    }

    /// What a readable event means for it now.
    #[inline]
    pub(crate) fn on_readable(&self) -> OnReadable {
        match self.phase {
            Phase::Open if !self.paused => OnReadable::Serve,
            Phase::Open | Phase::Closing(_) => OnReadable::Wait,
            Phase::Lingering(reason) => OnReadable::Discard(reason),
            Phase::AwaitingHeader { .. } => OnReadable::ProxyHeader,
        }
    }

    /// Whether reading stopped early in an earlier turn and it is to be served now.
    pub(crate) fn is_read_pending(&self) -> bool {
        self.read_pending && self.phase == Phase::Open && !self.paused
    }

    /// Reading stopped with bytes possibly left in the socket (fairness): the loop serves
    /// it again next turn without waiting for an event.
    pub(crate) fn set_read_pending(&mut self) {
        self.read_pending = true;
    }

    /// Starts a turn of serving it: any pending read is being done, and it is active now.
    #[inline]
    pub(crate) fn begin_turn(&mut self, now: Instant) {
        self.read_pending = false;
        self.info.last_active = now;
    }

    /// Stops taking requests; the output owed is still written. Only an open client (or
    /// one awaiting its PROXY header) changes: one already closing keeps its first reason.
    pub(crate) fn begin_close(&mut self, reason: CloseReason) {
        if self.closing_reason().is_none() {
            self.phase = Phase::Closing(reason);
        }
    }

    /// Stops reading it while its responses pile up unread. Returns whether it was
    /// reading until now.
    pub(crate) fn pause(&mut self) -> bool {
        !std::mem::replace(&mut self.paused, true)
    }

    /// Reads it again if it is paused and its owed output has fallen to `low_watermark`.
    /// Returns whether it resumed: the loop then serves it next turn.
    #[inline]
    pub(crate) fn resume_below(&mut self, low_watermark: usize) -> bool {
        if self.paused && self.phase == Phase::Open && self.owed() <= low_watermark {
            self.paused = false;
            self.read_pending = true;
            return true;
        }
        false
    }

    /// The peer closed its write side: no request will complete any more.
    pub(crate) fn on_eof(&mut self) -> OnEof {
        self.read_eof = true;
        let reason = self.closing_reason().unwrap_or(CloseReason::PeerClosed);
        if !self.has_output() {
            return OnEof::Close(reason);
        }
        // Half-close: write every response owed, then close.
        self.phase = Phase::Closing(reason);
        self.paused = false;
        OnEof::Drain
    }

    /// Drops a request the peer closed in the middle of; returns how many bytes it held.
    pub(crate) fn drop_partial_request(&mut self) -> usize {
        self.buffers.as_deref_mut().map_or(0, Buffers::drop_input)
    }

    /// Everything owed is written: what now.
    #[inline]
    pub(crate) fn on_drained(&mut self) -> OnDrained {
        if let Phase::Closing(reason) = self.phase {
            OnDrained::Finish(reason)
        } else if self.resume_below(0) {
            OnDrained::Resumed
        } else {
            OnDrained::Nothing
        }
    }

    /// The server is stopping: no more requests, write what is owed. Returns whether it
    /// owes nothing, so that it can linger or close at once.
    pub(crate) fn begin_shutdown(&mut self) -> bool {
        if self.closing_reason().is_some() {
            // Closing clients finish as they were; lingering ones end by the shutdown
            // deadline at the latest.
            return false;
        }
        self.phase = Phase::Closing(CloseReason::Shutdown);
        self.paused = false;
        !self.has_output()
    }

    /// Our side is done: ends TLS with a `close_notify`, shuts down writing, so the peer
    /// sees the end of our responses, and lingers until it closes. Returns `false`,
    /// changing nothing more, when closing at once is safe: the peer already closed, or
    /// nothing is in flight either way.
    pub(crate) fn begin_linger(&mut self, reason: CloseReason) -> bool {
        self.stream.close_notify();
        if self.read_eof || nothing_in_flight(&self.stream) {
            return false;
        }
        let _ = self.stream.shutdown(Shutdown::Write);
        self.phase = Phase::Lingering(reason);
        true
    }

    /// Its TLS handshake deadline came: close it if the handshake is still going on.
    pub(crate) fn on_handshake_deadline(&self) -> OnDeadline {
        let open = matches!(self.phase, Phase::Open | Phase::AwaitingHeader { .. });
        if open && self.stream.is_handshaking() {
            OnDeadline::Close(CloseReason::TlsHandshakeTimeout)
        } else {
            OnDeadline::Done
        }
    }

    /// Its idle deadline came: close it if it has been idle for `timeout` (no request
    /// read, no response written), else look again when it would have been.
    pub(crate) fn on_idle_deadline(&self, now: Instant, timeout: Duration) -> OnDeadline {
        let due = later(self.info.last_active, timeout);
        if now >= due {
            OnDeadline::Close(CloseReason::IdleTimeout)
        } else {
            OnDeadline::CheckAt(due)
        }
    }

    /// A lingering client is looked at: close it once nothing is in flight (our last
    /// bytes acknowledged, nothing unread) or its linger deadline has passed.
    pub(crate) fn on_linger_check(&self, past_deadline: bool) -> OnDeadline {
        match self.phase {
            Phase::Lingering(reason) if past_deadline || nothing_in_flight(&self.stream) => {
                OnDeadline::Close(reason)
            }
            Phase::Lingering(_) => OnDeadline::Keep,
            Phase::AwaitingHeader { .. } | Phase::Open | Phase::Closing(_) => OnDeadline::Done,
        }
    }

    /// Brings the registered interest in line with what it needs: `READABLE` always,
    /// `WRITABLE` only while output waits (so a drained socket does not wake the loop).
    ///
    /// # Errors
    /// If `reregister` fails; the client cannot be served then.
    #[inline]
    pub(crate) fn sync_interest(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let want_writable = self.has_output();
        if self.writable_interest != want_writable {
            let interest = if want_writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry.reregister(&mut self.stream, token, interest)?;
            self.writable_interest = want_writable;
        }
        Ok(())
    }

    /// Reads once into `input`; counts the bytes.
    ///
    /// # Errors
    /// As `read(2)`, `WouldBlock` included.
    #[inline]
    pub(crate) fn read_into(&mut self, input: &mut Input<C::DecodeState>) -> io::Result<usize> {
        let n = self.stream.read(input.spare())?;
        input.buf.filled(n);
        self.info.bytes_in += n as u64;
        Ok(n)
    }

    /// Reads once and drops the bytes (a lingering client's input); counts them.
    ///
    /// # Errors
    /// As `read(2)`, `WouldBlock` included.
    pub(crate) fn read_and_drop(&mut self, scratch: &mut Scratch) -> io::Result<usize> {
        let n = self.stream.read(scratch.read.spare(buffers::READ_CHUNK))?;
        self.info.bytes_in += n as u64;
        Ok(n)
    }

    /// Writes what `output` still owes until the socket would block; counts the bytes and
    /// returns how many were written.
    ///
    /// # Errors
    /// A failed write (reset, broken pipe); what was written before it is counted.
    #[inline]
    pub(crate) fn write_from(
        &mut self,
        output: &mut Output,
        arena: &mut Arena,
        now: Instant,
    ) -> io::Result<usize> {
        let before = output.written;
        let (result, sent) = match self.buffers.as_deref_mut() {
            Some(b) if !b.frames.is_empty() => {
                match frames::write_gathered(
                    &mut self.stream,
                    &output.buf,
                    &mut output.written,
                    &mut b.frames,
                    arena,
                ) {
                    Ok(sent) => (Ok(()), sent),
                    Err(e) => (Err(e), 0),
                }
            }
            _ => {
                let result = write_nonblocking(&mut self.stream, output);
                (result, output.written - before)
            }
        };
        if sent > 0 {
            self.info.bytes_out += sent as u64;
            self.info.last_active = now;
        }
        result.map(|()| sent)
    }

    /// Lends it the input buffer to decode from, for one turn.
    #[inline]
    pub(crate) fn lend_input(&mut self, scratch: &mut Scratch) -> Input<C::DecodeState> {
        buffers::lend_input(self.buffers.as_deref_mut(), scratch)
    }

    /// Takes the input buffer back after a turn.
    #[inline]
    pub(crate) fn return_input(&mut self, input: Input<C::DecodeState>, scratch: &mut Scratch) {
        buffers::return_input(&mut self.buffers, input, scratch);
    }

    /// Lends it the output buffer to encode responses into, for one turn.
    #[inline]
    pub(crate) fn lend_output(&mut self, scratch: &mut Scratch) -> Output {
        buffers::lend_output(self.buffers.as_deref_mut(), scratch)
    }

    /// Takes the output buffer back, what is still owed kept for later.
    #[inline]
    pub(crate) fn return_output(&mut self, output: Output, scratch: &mut Scratch) {
        buffers::return_output(&mut self.buffers, output, scratch);
    }

    /// Queues a shared frame after everything it is owed (it is not being served: its
    /// own output is in its buffers). Returns the output limit it went past, if it did:
    /// it must then be closed.
    pub(crate) fn push_frame(
        &mut self,
        frame: FrameRef,
        arena: &mut Arena,
        limit: &OutputLimit,
        now: Instant,
    ) -> Option<LimitHit> {
        let b = self.buffers.get_or_insert_with(Default::default);
        let at = b.frame_place();
        b.frames.push(at, frame, arena);
        let owed = b.owed();
        b.frames.check_limit(owed, limit, now)
    }

    /// Queues frames sent to it while it was being served, after the responses in
    /// `output` (lent to it for the turn): after its reply, never inside it.
    pub(crate) fn push_own_frames(
        &mut self,
        output: &Output,
        frames: &mut Vec<FrameRef>,
        arena: &mut Arena,
    ) {
        let b = self.buffers.get_or_insert_with(Default::default);
        for frame in frames.drain(..) {
            b.frames.push(output.buf.len(), frame, arena);
        }
    }

    /// Drops the shared bytes it is owed (it is being closed: they will not be written).
    pub(crate) fn release_frames(&mut self, arena: &mut Arena) {
        if let Some(b) = self.buffers.as_deref_mut() {
            b.frames.release_all(arena);
        }
    }

    /// Where a response to it goes while another client is being served: after
    /// everything it is already owed.
    pub(crate) fn queued_output(&mut self) -> &mut Vec<u8> {
        self.buffers
            .get_or_insert_with(Default::default)
            .output_mut()
    }
}

/// Writes `output`'s unwritten bytes until all are written or the socket would block,
/// then what a TLS stream has of its own.
fn write_nonblocking(stream: &mut Stream, output: &mut Output) -> io::Result<()> {
    while output.owed() > 0 {
        match stream.write(output.unwritten()) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => output.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    stream.send_pending()
}

/// Whether the socket has neither unread input nor unacknowledged output, so closing it
/// now cannot reset the connection or lose data on its way to the peer.
fn nothing_in_flight(stream: &Stream) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listener::{ListenAddr, ListenerInfo};
    use crate::stream::Peer;
    use std::sync::Arc;

    /// Every connected client costs this much in the table, idle or not: keep it small
    /// (the target is under 256 bytes of RSS per idle connection, all included).
    #[test]
    fn handle_stays_small() {
        let size =
            std::mem::size_of::<Client<crate::resp::RespCodec, crate::commands::ClientState>>();
        eprintln!("client handle: {size} bytes");
        assert!(size <= 176, "client handle grew to {size} bytes");
    }

    fn client() -> (
        Client<crate::codec::TestCodec, ()>,
        std::os::unix::net::UnixStream,
    ) {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let listener = Arc::new(ListenerInfo {
            addr: ListenAddr::unix("/t.sock"),
        });
        let info = ClientInfo::new(ClientId(1), listener, Peer::Unix(None), Instant::now());
        let stream = Stream::Unix(mio::net::UnixStream::from_std(a));
        (Client::new(info, stream), b)
    }

    fn owe(client: &mut Client<crate::codec::TestCodec, ()>, bytes: &[u8]) {
        client.queued_output().extend_from_slice(bytes);
    }

    #[test]
    fn pause_and_resume_follow_the_watermarks() {
        let (mut c, _peer) = client();
        assert_eq!(c.on_readable(), OnReadable::Serve);
        assert!(c.pause());
        assert!(!c.pause(), "pausing twice is one pause");
        assert_eq!(c.on_readable(), OnReadable::Wait);
        owe(&mut c, b"0123456789");
        assert!(!c.resume_below(5), "still above the low watermark");
        assert!(c.resume_below(10));
        assert!(c.is_read_pending(), "a resumed client is served next turn");
        assert_eq!(c.on_readable(), OnReadable::Serve);
    }

    #[test]
    fn closing_keeps_its_first_reason_and_takes_no_requests() {
        let (mut c, _peer) = client();
        c.begin_close(CloseReason::Quit);
        c.begin_close(CloseReason::Killed);
        assert_eq!(c.closing_reason(), Some(CloseReason::Quit));
        assert_eq!(c.on_readable(), OnReadable::Wait);
        assert!(!c.begin_shutdown(), "a closing client finishes as it was");
        assert_eq!(c.on_drained(), OnDrained::Finish(CloseReason::Quit));
    }

    #[test]
    fn end_of_stream_closes_now_or_after_the_owed_output() {
        let (mut c, _peer) = client();
        assert_eq!(c.on_eof(), OnEof::Close(CloseReason::PeerClosed));

        let (mut c, _peer) = client();
        owe(&mut c, b"+OK\r\n");
        c.pause();
        assert_eq!(c.on_eof(), OnEof::Drain);
        assert_eq!(c.closing_reason(), Some(CloseReason::PeerClosed));
        assert!(
            !c.begin_linger(CloseReason::PeerClosed),
            "the peer already closed"
        );
    }

    #[test]
    fn idle_deadline_closes_only_a_client_idle_that_long() {
        let (mut c, _peer) = client();
        let t0 = c.info.last_active;
        let timeout = Duration::from_secs(5);
        assert_eq!(
            c.on_idle_deadline(t0 + timeout, timeout),
            OnDeadline::Close(CloseReason::IdleTimeout)
        );
        c.begin_turn(t0 + Duration::from_secs(3));
        assert_eq!(
            c.on_idle_deadline(t0 + timeout, timeout),
            OnDeadline::CheckAt(t0 + Duration::from_secs(8)),
            "active since: looked at again when it would be idle that long"
        );
    }

    #[test]
    fn lingers_only_while_something_is_in_flight() {
        let (mut c, peer) = client();
        assert!(
            !c.begin_linger(CloseReason::Quit),
            "nothing in flight: close at once"
        );
        (&peer).write_all(b"unread").unwrap();
        assert!(c.begin_linger(CloseReason::Quit));
        assert_eq!(c.on_readable(), OnReadable::Discard(CloseReason::Quit));
        assert_eq!(
            c.on_linger_check(false),
            OnDeadline::Keep,
            "our peer's bytes are still unread"
        );
        assert_eq!(
            c.on_linger_check(true),
            OnDeadline::Close(CloseReason::Quit)
        );
    }
}
