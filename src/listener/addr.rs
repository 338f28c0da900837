//! Where a master socket listens: [`ListenAddr`], a TCP address (plain or TLS) or a Unix
//! socket path, written with a scheme (`tcp://`, `tls://`, `unix://`) as the daemon prints
//! it.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;

use super::ListenerKind;
use crate::error::Error;

/// Where a master socket listens: a TCP address, a TCP address whose connections speak
/// TLS, or a Unix socket path.
///
/// Written with a scheme, as the daemon prints it on its `READY` line:
/// `tcp://127.0.0.1:7379`, `tcp://[::1]:7379`, `tls://127.0.0.1:7380`,
/// `unix:///tmp/muxd.sock`. When parsing, a bare `host:port` means TCP and a bare path
/// starting with `/` or `.` means Unix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    /// A TCP socket address (IPv4 or IPv6). Port 0 asks the OS for a free port.
    Tcp(SocketAddr),
    /// A TCP socket address whose connections begin with a TLS handshake (the server's
    /// [`Config::tls`](crate::Config::tls)).
    Tls(SocketAddr),
    /// A filesystem path for a Unix-domain stream socket.
    Unix(PathBuf),
}

impl ListenAddr {
    /// Parses a TCP address, resolving a host name (`localhost:7379`) to one address: its
    /// first IPv4 address when it has one (clients resolving `localhost` mostly try
    /// 127.0.0.1), else its first address.
    ///
    /// # Errors
    /// Returns an [`ErrorKind::InvalidAddress`](crate::ErrorKind::InvalidAddress) error if
    /// the text is not `host:port` or the host does not resolve.
    pub fn tcp(text: &str) -> Result<ListenAddr, Error> {
        parse_tcp(text).map(ListenAddr::Tcp)
    }

    /// Resolves `host` (a name, or an address with IPv6 written without brackets) and
    /// `port` to one TCP address, chosen as [`tcp`](ListenAddr::tcp) chooses: where a
    /// client connects to reach a server listening on that host.
    ///
    /// # Errors
    /// The resolver's error, or `NotFound` when the name has no address.
    ///
    /// # Examples
    /// ```
    /// use muxd::ListenAddr;
    ///
    /// let addr = ListenAddr::resolve("::1", 7379)?;
    /// assert_eq!(addr.to_string(), "tcp://[::1]:7379");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn resolve(host: &str, port: u16) -> io::Result<ListenAddr> {
        prefer_ipv4((host, port).to_socket_addrs()?)
            .map(ListenAddr::Tcp)
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "host name resolves to no address")
            })
    }

    /// A Unix socket path.
    pub fn unix(path: impl Into<PathBuf>) -> ListenAddr {
        ListenAddr::Unix(path.into())
    }

    /// The kind of socket this address names.
    pub fn kind(&self) -> ListenerKind {
        match self {
            ListenAddr::Tcp(_) => ListenerKind::Tcp,
            ListenAddr::Tls(_) => ListenerKind::Tls,
            ListenAddr::Unix(_) => ListenerKind::Unix,
        }
    }

    /// The TCP address of a `tcp://` or `tls://` listener.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            ListenAddr::Tcp(addr) | ListenAddr::Tls(addr) => Some(*addr),
            ListenAddr::Unix(_) => None,
        }
    }
}

/// `host:port`, resolved as [`ListenAddr::tcp`] says.
fn parse_tcp(text: &str) -> Result<SocketAddr, Error> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let addrs = text
        .to_socket_addrs()
        .map_err(|_| Error::invalid_address(text, "expected host:port"))?;
    prefer_ipv4(addrs)
        .ok_or_else(|| Error::invalid_address(text, "host name resolves to no address"))
}

/// The first IPv4 address, else the first address.
fn prefer_ipv4(addrs: impl Iterator<Item = SocketAddr>) -> Option<SocketAddr> {
    let mut first = None;
    for addr in addrs {
        if addr.is_ipv4() {
            return Some(addr);
        }
        first.get_or_insert(addr);
    }
    first
}

impl FromStr for ListenAddr {
    type Err = Error;

    fn from_str(text: &str) -> Result<ListenAddr, Error> {
        if let Some(rest) = text.strip_prefix("tcp://") {
            ListenAddr::tcp(rest)
        } else if let Some(rest) = text.strip_prefix("tls://") {
            parse_tcp(rest).map(ListenAddr::Tls)
        } else if let Some(rest) = text.strip_prefix("unix://") {
            if rest.is_empty() {
                return Err(Error::invalid_address(text, "empty socket path"));
            }
            Ok(ListenAddr::unix(rest))
        } else if text.starts_with('/') || text.starts_with('.') {
            Ok(ListenAddr::unix(text))
        } else if text.contains("://") {
            Err(Error::invalid_address(
                text,
                "unknown scheme (use tcp://, tls:// or unix://)",
            ))
        } else {
            ListenAddr::tcp(text)
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(addr) => write!(f, "tcp://{addr}"),
            ListenAddr::Tls(addr) => write!(f, "tls://{addr}"),
            ListenAddr::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_with_and_without_scheme() {
        let tcp: ListenAddr = "tcp://127.0.0.1:7000".parse().unwrap();
        assert_eq!(tcp, ListenAddr::Tcp("127.0.0.1:7000".parse().unwrap()));
        assert_eq!(tcp.to_string(), "tcp://127.0.0.1:7000");
        let v6: ListenAddr = "[::1]:0".parse().unwrap();
        assert_eq!(v6.to_string(), "tcp://[::1]:0");
        let unix: ListenAddr = "unix:///tmp/x.sock".parse().unwrap();
        assert_eq!(unix, ListenAddr::unix("/tmp/x.sock"));
        assert_eq!(unix.to_string(), "unix:///tmp/x.sock");
        assert_eq!(
            "./rel.sock".parse::<ListenAddr>().unwrap(),
            ListenAddr::unix("./rel.sock")
        );
        let tls: ListenAddr = "tls://127.0.0.1:7380".parse().unwrap();
        assert_eq!(tls, ListenAddr::Tls("127.0.0.1:7380".parse().unwrap()));
        assert_eq!(tls.to_string(), "tls://127.0.0.1:7380");
        assert_eq!(tls.kind(), ListenerKind::Tls);
        assert!("http://x".parse::<ListenAddr>().is_err());
        assert!("unix://".parse::<ListenAddr>().is_err());
        assert!("nonsense".parse::<ListenAddr>().is_err());
    }
}
