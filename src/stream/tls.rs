//! A TLS connection over a non-blocking TCP socket: [`TlsStream`], rustls driven by the
//! loop's readiness events, with the face of a plain socket.
//!
//! Reading takes what the socket has (until `WouldBlock`), feeds rustls, writes what the
//! handshake owes the peer, and returns plaintext; a short read still means that nothing
//! is left, neither in the socket nor inside rustls, as with a plain socket, so the loop's
//! edge-triggered reading stays correct. Writing hands plaintext to rustls only once the
//! records of the previous write have left: rustls never buffers more than one write's
//! records (bounded by its buffer limit), a full buffer is `WouldBlock` (backpressure, the
//! plaintext waits in the caller's buffers), never an error. Records rustls has of its own
//! (handshake messages, alerts, session tickets, `close_notify`) are written by
//! [`send_pending`](TlsStream::send_pending); [`wants_write`](TlsStream::wants_write)
//! says whether some are still waiting, so that the caller asks for `WRITABLE` until none
//! are. A TLS error queues its alert and sends it as far as the socket takes it before
//! the error is returned.

use std::fmt;
use std::io::{self, Read, Write};

use mio::net::TcpStream;

/// A rustls connection, client or server side, over a non-blocking TCP socket.
pub struct TlsStream {
    socket: TcpStream,
    conn: rustls::Connection,
    /// `close_notify` was queued: nothing more is written after it.
    closing: bool,
}

/// A TLS failure (a handshake refused, a bad record): the connection cannot go on. Carried
/// inside the `io::Error` reading returns, so the caller can tell it from a socket error
/// ([`TlsStream::tls_error`]).
#[derive(Debug)]
pub struct TlsError(pub rustls::Error);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TlsError {}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("socket", &self.socket)
            .field("handshaking", &self.conn.is_handshaking())
            .field("closing", &self.closing)
            .finish()
    }
}

impl TlsStream {
    /// A TLS connection over `socket` (connected or connecting), in its handshake.
    pub fn new(socket: TcpStream, conn: impl Into<rustls::Connection>) -> TlsStream {
        TlsStream {
            socket,
            conn: conn.into(),
            closing: false,
        }
    }

    /// The TCP socket underneath.
    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }

    /// The TCP socket underneath, to register with a poller.
    pub(crate) fn socket_mut(&mut self) -> &mut TcpStream {
        &mut self.socket
    }

    /// The rustls connection (protocol version, cipher suite, peer certificates, ...).
    pub fn connection(&self) -> &rustls::Connection {
        &self.conn
    }

    /// Whether the handshake is still going on.
    #[inline]
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether rustls has records waiting to be written.
    #[inline]
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// The TLS failure inside an error [`Read::read`] returned, if it is one.
    pub fn tls_error(e: &io::Error) -> Option<&rustls::Error> {
        e.get_ref()?.downcast_ref::<TlsError>().map(|t| &t.0)
    }

    /// Writes the records rustls has waiting until none are left or the socket would
    /// block (then `Ok`, with [`wants_write`](TlsStream::wants_write) still true).
    ///
    /// # Errors
    /// A failed write (reset, broken pipe).
    pub fn send_pending(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.socket) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Queues `close_notify` (once) after everything written so far, and sends what the
    /// socket takes now.
    pub fn close_notify(&mut self) {
        if !std::mem::replace(&mut self.closing, true) {
            self.conn.send_close_notify();
        }
        let _ = self.send_pending();
    }

    /// Hands plaintext to rustls with `give` once earlier records have left, then sends
    /// the new ones as far as the socket takes them. `WouldBlock` while earlier records
    /// wait, or when rustls takes none of `any` bytes (its buffer is full).
    fn write_plaintext(
        &mut self,
        any: bool,
        give: impl FnOnce(&mut rustls::Writer<'_>) -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.send_pending()?;
        if self.conn.wants_write() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = give(&mut self.conn.writer())?;
        if n == 0 && any {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.send_pending()?;
        Ok(n)
    }

    /// Reads from the socket into rustls once; `Ok(false)` at the socket's end of stream.
    fn read_socket(&mut self) -> io::Result<bool> {
        loop {
            match self.conn.read_tls(&mut self.socket) {
                Ok(0) => return Ok(false),
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if let Err(e) = self.conn.process_new_packets() {
            // rustls queued the alert that tells the peer why: send it if we can.
            let _ = self.send_pending();
            return Err(io::Error::new(io::ErrorKind::InvalidData, TlsError(e)));
        }
        // Handshake messages, session tickets, key updates: the peer waits for them.
        self.send_pending()?;
        Ok(true)
    }
}

impl Read for TlsStream {
    /// Plaintext, as much as fits, read until the socket would block; `Ok(0)` at the end
    /// of the stream (a `close_notify`, or the peer closing the socket without one). Fewer
    /// bytes than asked means nothing is left to read for now.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        loop {
            let Some(rest) = buf.get_mut(filled..).filter(|r| !r.is_empty()) else {
                return Ok(filled);
            };
            match self.conn.reader().read(rest) {
                // A close_notify: the clean end of the stream.
                Ok(0) => return Ok(filled),
                Ok(n) => {
                    filled += n;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed the socket without a close_notify: most clients do.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(filled),
                Err(e) => return Err(e),
            }
            match self.read_socket() {
                Ok(true) => {}
                Ok(false) => return Ok(filled),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && filled > 0 => {
                    return Ok(filled);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for TlsStream {
    /// Hands plaintext to rustls once the records of earlier writes have left, and sends
    /// its records as far as the socket takes them. `WouldBlock` while earlier records
    /// still wait or rustls's buffer is full.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_plaintext(!buf.is_empty(), |w| w.write(buf))
    }

    /// As [`write`](TlsStream::write), gathering the slices into rustls's records (the
    /// loop's shared frames go in this way, where a plain socket takes one `writev`).
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let any = bufs.iter().any(|b| !b.is_empty());
        self.write_plaintext(any, |w| w.write_vectored(bufs))
    }

    /// Sends the records waiting, as far as the socket takes them.
    fn flush(&mut self) -> io::Result<()> {
        self.send_pending()
    }
}
