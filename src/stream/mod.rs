//! A client's data socket: one type over TCP, Unix-domain and TLS streams.
//!
//! The loop reads requests from and writes responses to a [`Stream`] without caring which
//! kind of master socket accepted it; [`Peer`] is what is known of the other end.
//!
//! - `tls.rs`: [`TlsStream`], rustls over a TCP socket with the same read/write face, and
//!   the records of its own it still has to write ([`Stream::wants_write`]).

mod tls;

pub use tls::{TlsError, TlsStream};

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::unix::io::{AsRawFd, RawFd};

use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};

/// The other end of a client handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A TCP peer's address.
    Tcp(SocketAddr),
    /// A Unix-domain peer, with its credentials when the kernel reported them.
    Unix(Option<PeerCred>),
}

/// A Unix-domain peer's process credentials at the time it connected (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
    /// Process id.
    pub pid: i32,
}

impl fmt::Display for Peer {
    /// `127.0.0.1:50412` for TCP; `unix` for a Unix peer (its socket has no name).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(addr) => write!(f, "{addr}"),
            Peer::Unix(_) => f.write_str("unix"),
        }
    }
}

/// A connected, non-blocking stream socket, TCP, Unix-domain or TLS over TCP: `Read`,
/// `Write` and a mio event `Source`, whichever it is. The loop's client handles hold one;
/// `muxd-bench`'s connections too.
///
/// Reading and writing move plaintext. A TLS stream also has records of its own to write
/// (handshake, alerts, `close_notify`) even when its user owes nothing: while
/// [`wants_write`](Stream::wants_write) says so, [`send_pending`](Stream::send_pending)
/// has to be called again once the socket is writable.
#[derive(Debug)]
pub enum Stream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix-domain stream connection.
    Unix(UnixStream),
    /// A TLS connection over TCP (boxed: rustls's state is several KiB).
    Tls(Box<TlsStream>),
}

impl Stream {
    /// Shuts down reading, writing or both.
    ///
    /// # Errors
    /// As `shutdown(2)`: typically `NotConnected` once the peer is gone.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
            Stream::Tls(s) => s.socket().shutdown(how),
        }
    }

    /// Whether a TLS stream has records waiting to be written (never for a plain one).
    #[inline]
    pub fn wants_write(&self) -> bool {
        match self {
            Stream::Tls(s) => s.wants_write(),
            Stream::Tcp(_) | Stream::Unix(_) => false,
        }
    }

    /// Writes the records a TLS stream has waiting, as far as the socket takes them
    /// (nothing to do for a plain one).
    ///
    /// # Errors
    /// A failed write (reset, broken pipe).
    #[inline]
    pub fn send_pending(&mut self) -> io::Result<()> {
        match self {
            Stream::Tls(s) => s.send_pending(),
            Stream::Tcp(_) | Stream::Unix(_) => Ok(()),
        }
    }

    /// Ends a TLS stream's writing with a `close_notify`, sent as far as the socket takes
    /// it (nothing for a plain stream).
    pub fn close_notify(&mut self) {
        if let Stream::Tls(s) = self {
            s.close_notify();
        }
    }

    /// Whether a TLS stream's handshake is still going on (never for a plain one).
    pub fn is_handshaking(&self) -> bool {
        matches!(self, Stream::Tls(s) if s.is_handshaking())
    }

    /// Reads from the socket itself, past TLS (the PROXY header that precedes a TLS
    /// handshake).
    ///
    /// # Errors
    /// As `read(2)`, `WouldBlock` included.
    pub fn read_socket(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(s) => s.socket_mut().read(buf),
        }
    }

    /// Copies bytes received into `buf` without taking them off the socket (`MSG_PEEK`):
    /// the next read returns them again.
    ///
    /// # Errors
    /// As `recv(2)`, `WouldBlock` included.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: the descriptor is this stream's own, open socket; `buf` is valid for
        // writes of `buf.len()` bytes.
        let n = unsafe {
            libc::recv(
                self.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_PEEK,
            )
        };
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }

    /// Takes the socket's pending error (`SO_ERROR`), as after a non-blocking connect.
    ///
    /// # Errors
    /// If the option cannot be read.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Stream::Tcp(s) => s.take_error(),
            Stream::Unix(s) => s.take_error(),
            Stream::Tls(s) => s.socket().take_error(),
        }
    }
}

impl Read for Stream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    /// One `writev`: the loop gathers a client's own bytes and shared frames into one call.
    #[inline]
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
            Stream::Tls(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_pending()
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Tls(s) => s.socket().as_raw_fd(),
        }
    }
}

impl Source for Stream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(registry, token, interest),
            Stream::Unix(s) => s.register(registry, token, interest),
            Stream::Tls(s) => s.socket_mut().register(registry, token, interest),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(registry, token, interest),
            Stream::Unix(s) => s.reregister(registry, token, interest),
            Stream::Tls(s) => s.socket_mut().reregister(registry, token, interest),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(registry),
            Stream::Unix(s) => s.deregister(registry),
            Stream::Tls(s) => s.socket_mut().deregister(registry),
        }
    }
}
