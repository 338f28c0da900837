//! The PROXY protocol: which peers are trusted to send a header ([`ProxyFrom`]), and the
//! header itself ([`header`]).
//!
//! A connection from a trusted peer must begin with a complete, valid header within the
//! configured timeout, or it is closed; the header's source and destination then stand
//! for the client's addresses. A connection from any other peer is served as usual, and a
//! header from it is a protocol error: never believed. What the loop does with a
//! connection until then is the client handle's first state (see [`crate::client`]).

pub mod header;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::error::Error;
use crate::stream::Peer;

pub use header::{Header, HeaderError, ProxiedAddrs};

/// Peers trusted to send a PROXY header: an IP network, or every Unix-socket peer.
///
/// Parsed from `192.0.2.0/24`, `2001:db8::/32`, a bare address (`127.0.0.1`, a network of
/// one), or the word `unix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyFrom {
    /// Peers whose address has the first `prefix` bits of `addr`.
    Net {
        /// The network's address.
        addr: IpAddr,
        /// The length of its prefix, in bits.
        prefix: u8,
    },
    /// Every peer connecting over a Unix socket.
    Unix,
}

impl ProxyFrom {
    /// Whether `peer` is trusted. An IPv4 peer written as an IPv4-mapped IPv6 address
    /// (on a dual-stack socket) is matched as the IPv4 address it is.
    pub fn trusts(&self, peer: &Peer) -> bool {
        match (self, peer) {
            (ProxyFrom::Unix, Peer::Unix(_)) => true,
            (ProxyFrom::Net { addr, prefix }, Peer::Tcp(peer)) => {
                in_network(peer.ip().to_canonical(), *addr, *prefix)
            }
            _ => false,
        }
    }

    /// Whether any of `list` trusts `peer`.
    pub fn any_trusts(list: &[ProxyFrom], peer: &Peer) -> bool {
        list.iter().any(|p| p.trusts(peer))
    }
}

fn in_network(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    let mask = |bits: u32, width: u32| -> u128 {
        if bits == 0 {
            0
        } else {
            (!0u128 << (width - bits)) & (!0u128 >> (128 - width))
        }
    };
    match (ip, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = mask(u32::from(prefix), 32);
            u128::from(u32::from(a)) & m == u128::from(u32::from(n)) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let m = mask(u32::from(prefix), 128);
            u128::from(a) & m == u128::from(n) & m
        }
        _ => false,
    }
}

impl FromStr for ProxyFrom {
    type Err = Error;

    fn from_str(text: &str) -> Result<ProxyFrom, Error> {
        if text.eq_ignore_ascii_case("unix") {
            return Ok(ProxyFrom::Unix);
        }
        let bad = |reason| Error::config(format!("proxy source {text:?}: {reason}"));
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| bad("expected an address, a network (addr/len) or unix"))?;
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= width)
                .ok_or_else(|| bad("the prefix length is out of range"))?,
        };
        Ok(ProxyFrom::Net { addr, prefix })
    }
}

impl fmt::Display for ProxyFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyFrom::Net { addr, prefix } => write!(f, "{addr}/{prefix}"),
            ProxyFrom::Unix => f.write_str("unix"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(addr: &str) -> Peer {
        Peer::Tcp(addr.parse().unwrap())
    }

    #[test]
    fn networks_and_unix() {
        let lan: ProxyFrom = "10.1.0.0/16".parse().unwrap();
        assert!(lan.trusts(&tcp("10.1.200.3:5000")));
        assert!(!lan.trusts(&tcp("10.2.0.1:5000")));
        assert!(!lan.trusts(&Peer::Unix(None)));
        assert!(
            lan.trusts(&tcp("[::ffff:10.1.0.9]:1")),
            "an IPv4-mapped peer is its IPv4 address"
        );
        let one: ProxyFrom = "127.0.0.1".parse().unwrap();
        assert_eq!(one.to_string(), "127.0.0.1/32");
        assert!(one.trusts(&tcp("127.0.0.1:1")));
        assert!(!one.trusts(&tcp("127.0.0.2:1")));
        let all: ProxyFrom = "0.0.0.0/0".parse().unwrap();
        assert!(all.trusts(&tcp("203.0.113.9:1")));
        assert!(!all.trusts(&tcp("[::1]:1")));
        let v6: ProxyFrom = "2001:db8::/32".parse().unwrap();
        assert!(v6.trusts(&tcp("[2001:db8:ffff::1]:1")));
        assert!(!v6.trusts(&tcp("[2001:db9::1]:1")));
        let unix: ProxyFrom = "unix".parse().unwrap();
        assert!(unix.trusts(&Peer::Unix(None)));
        assert!(!unix.trusts(&tcp("127.0.0.1:1")));
        for bad in ["10.0.0.0/33", "::/129", "host", "10.0.0.0/", "/8", ""] {
            assert!(bad.parse::<ProxyFrom>().is_err(), "{bad}");
        }
    }
}
