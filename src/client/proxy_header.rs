//! A handle's first state when the PROXY protocol is on: awaiting the header.
//!
//! The header is *peeked* (`MSG_PEEK`), never read ahead: until it is complete, its bytes
//! stay in the socket, so the handle keeps no buffer for them, and once it is, exactly
//! its bytes are taken off and the connection's own bytes wait in the socket for the
//! first request. A peek that finds the header incomplete waits for the next readable
//! event (new bytes bring one); a trusted proxy's deadline is the loop's to keep.
//!
//! A peer that may not send a header is looked at the same way, for at most a signature's
//! length: bytes that begin no header open the connection as it is; a header is refused.

use std::fmt;
use std::io;

use super::{Client, Phase};
use crate::codec::Codec;
use crate::listener::proxy::header::{self, Header, HeaderError, MAX_HEADER, Parsed, Signature};

/// What looking at a connection awaiting its header found.
#[derive(Debug)]
pub(crate) enum HeaderStep {
    /// Not complete yet: wait for more bytes.
    Wait,
    /// The connection is open (the header, if any, taken off and applied): serve it now,
    /// its own bytes may already wait in the socket.
    Open(Option<Header>),
    /// The peer closed before sending anything.
    Eof,
    /// Refused: close it as a protocol error.
    Refused(ProxyRefusal),
    /// Reading failed.
    Failed(io::Error),
}

/// Why a connection's PROXY header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProxyRefusal {
    /// A trusted proxy sent an invalid header.
    Invalid(HeaderError),
    /// A trusted proxy closed before its header was complete.
    Truncated,
    /// A trusted proxy sent no complete header in time.
    Timeout,
    /// A peer not trusted to send one sent a header.
    Untrusted,
}

impl fmt::Display for ProxyRefusal {
    /// The error text the client is sent (after `Protocol error: `).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyRefusal::Invalid(e) => write!(f, "Protocol error: {e}"),
            ProxyRefusal::Truncated => f.write_str("Protocol error: PROXY header truncated"),
            ProxyRefusal::Timeout => f.write_str("Protocol error: no PROXY header in time"),
            ProxyRefusal::Untrusted => {
                f.write_str("Protocol error: PROXY header from an untrusted peer")
            }
        }
    }
}

impl<C: Codec, S> Client<C, S> {
    /// Looks at what arrived on a connection awaiting its PROXY header and moves on when
    /// it can: to `Open` with the header applied, or to refusal. `peer_closed`: the peer
    /// shut down its write side, so what is there is all there will be.
    pub(crate) fn read_proxy_header(&mut self, peer_closed: bool) -> HeaderStep {
        let Phase::AwaitingHeader { trusted } = self.phase else {
            return HeaderStep::Open(None);
        };
        let mut buf = [0u8; MAX_HEADER];
        let n = match self.stream.peek(&mut buf) {
            Ok(0) => return HeaderStep::Eof,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                return HeaderStep::Wait;
            }
            Err(e) => return HeaderStep::Failed(e),
        };
        let seen = buf.get(..n).unwrap_or_default();
        if !trusted {
            return match header::signature(seen) {
                Signature::Present => HeaderStep::Refused(ProxyRefusal::Untrusted),
                // The peer's own bytes, whole or cut short: served as they are.
                Signature::Absent => self.open(None),
                Signature::Partial if peer_closed => self.open(None),
                Signature::Partial => HeaderStep::Wait,
            };
        }
        match header::parse(seen) {
            Ok(Parsed::Incomplete) if peer_closed => HeaderStep::Refused(ProxyRefusal::Truncated),
            Ok(Parsed::Incomplete) => HeaderStep::Wait,
            Ok(Parsed::Complete { header, len }) => match self.take(&mut buf, len) {
                Ok(()) => self.open(Some(header)),
                Err(e) => HeaderStep::Failed(e),
            },
            Err(e) => HeaderStep::Refused(ProxyRefusal::Invalid(e)),
        }
    }

    /// Takes the `len` header bytes just peeked off the socket.
    fn take(&mut self, buf: &mut [u8], len: usize) -> io::Result<()> {
        let mut left = buf.get_mut(..len).unwrap_or_default();
        while !left.is_empty() {
            // Past TLS: the header precedes the handshake.
            match self.stream.read_socket(left) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => left = left.get_mut(n..).unwrap_or_default(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The bytes were peeked: they cannot be missing now.
                Err(e) => return Err(e),
            }
        }
        self.info.bytes_in += len as u64;
        Ok(())
    }

    fn open(&mut self, header: Option<Header>) -> HeaderStep {
        if let Some(Header::Proxied(addrs)) = header {
            self.info.set_proxied(addrs);
        }
        self.phase = Phase::Open;
        HeaderStep::Open(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientId;
    use crate::client::ClientInfo;
    use crate::listener::{ListenAddr, ListenerInfo};
    use crate::stream::{Peer, Stream};
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;
    use std::time::Instant;

    fn awaiting(trusted: bool) -> (Client<crate::codec::TestCodec, ()>, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let listener = Arc::new(ListenerInfo {
            addr: ListenAddr::unix("/t.sock"),
        });
        let info = ClientInfo::new(ClientId(1), listener, Peer::Unix(None), Instant::now());
        let stream = Stream::Unix(mio::net::UnixStream::from_std(a));
        (Client::new(info, stream).awaiting_proxy_header(trusted), b)
    }

    #[test]
    fn a_trusted_header_is_taken_off_and_applied_in_pieces() {
        let (mut c, mut peer) = awaiting(true);
        assert!(matches!(c.read_proxy_header(false), HeaderStep::Wait));
        peer.write_all(b"PROXY TCP4 192.0.2.1 198.51.").unwrap();
        assert!(matches!(c.read_proxy_header(false), HeaderStep::Wait));
        assert!(
            c.on_header_deadline().is_some(),
            "still awaiting its header"
        );
        peer.write_all(b"100.2 50220 6379\r\nPING\r\n").unwrap();
        assert!(matches!(
            c.read_proxy_header(false),
            HeaderStep::Open(Some(_))
        ));
        assert!(c.is_open());
        let proxied = c.info.proxied().unwrap();
        assert_eq!(proxied.source, "192.0.2.1:50220".parse().unwrap());
        let mut rest = [0u8; 16];
        let n = c.stream.read(&mut rest).unwrap();
        assert_eq!(&rest[..n], b"PING\r\n", "the connection's own bytes stay");
    }

    #[test]
    fn refusals() {
        let (mut c, mut peer) = awaiting(true);
        peer.write_all(b"PING\r\n").unwrap();
        assert!(matches!(
            c.read_proxy_header(false),
            HeaderStep::Refused(ProxyRefusal::Invalid(HeaderError::Signature))
        ));

        let (mut c, mut peer) = awaiting(true);
        peer.write_all(b"PROXY TCP4 1.2").unwrap();
        assert!(matches!(
            c.read_proxy_header(true),
            HeaderStep::Refused(ProxyRefusal::Truncated)
        ));

        let (mut c, mut peer) = awaiting(false);
        peer.write_all(b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\n")
            .unwrap();
        assert!(matches!(
            c.read_proxy_header(false),
            HeaderStep::Refused(ProxyRefusal::Untrusted)
        ));
        assert!(c.info.proxied().is_none(), "never believed");
    }

    #[test]
    fn an_untrusted_peer_without_a_header_opens_as_it_is() {
        let (mut c, mut peer) = awaiting(false);
        peer.write_all(b"\r\n").unwrap();
        assert!(matches!(c.read_proxy_header(false), HeaderStep::Wait));
        peer.write_all(b"PING\r\n").unwrap();
        assert!(matches!(c.read_proxy_header(false), HeaderStep::Open(None)));
        let mut rest = [0u8; 16];
        let n = c.stream.read(&mut rest).unwrap();
        assert_eq!(&rest[..n], b"\r\nPING\r\n", "nothing was taken");
    }
}
