//! The PROXY protocol header (HAProxy's `proxy-protocol.txt`, versions 1 and 2): what a
//! proxy sends first on a connection to say whom it is relaying.
//!
//! Version 1 is a text line (`PROXY TCP4 192.0.2.1 192.0.2.2 50412 6379\r\n`, at most
//! [`V1_MAX`] bytes), version 2 a binary block after a 12-byte signature; the first bytes
//! tell them apart. [`parse`] looks at the bytes received so far and says: not complete
//! yet, a valid header of so many bytes, or invalid. It reads nothing past the header,
//! allocates nothing, and refuses any header longer than [`MAX_HEADER`] bytes, so what a
//! connection may hold the loop to is bounded. Nothing is guessed: anything the
//! specification does not allow is an error.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Longest version 1 header, `\r\n` included (the specification's bound).
pub const V1_MAX: usize = 107;
/// Longest header accepted, of either version (a version 2 header with its TLVs).
pub const MAX_HEADER: usize = 2048;

/// Version 1's signature, its space included.
const V1_SIGNATURE: &[u8] = b"PROXY ";
/// Version 2's signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Version 2's fixed part: signature, version and command, family, length.
const V2_FIXED: usize = 16;
/// TLV type of a CRC32c checksum of the whole header.
const PP2_TYPE_CRC32C: u8 = 0x03;

/// The addresses a proxy relays a connection for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxiedAddrs {
    /// The client's address, as the proxy saw it.
    pub source: SocketAddr,
    /// The address the client connected to (the proxy's frontend).
    pub destination: SocketAddr,
}

/// What a valid header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// The proxy relays a client from `source` to `destination`.
    Proxied(ProxiedAddrs),
    /// The proxy speaks for itself (version 2 `LOCAL`, such as its health checks): the
    /// connection's own addresses stand.
    Local,
    /// The proxy cannot say (version 1 `UNKNOWN`, version 2 `UNSPEC` or a Unix-socket
    /// family): the connection's own addresses stand.
    Unknown,
}

/// The bytes so far, as a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// Valid so far; more bytes are needed.
    Incomplete,
    /// A whole header, of `len` bytes.
    Complete {
        /// What it says.
        header: Header,
        /// Its length: the connection's own bytes start after it.
        len: usize,
    },
}

/// Why bytes are not a valid PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// The bytes start with neither version's signature.
    Signature,
    /// Longer than [`V1_MAX`] (version 1) or [`MAX_HEADER`] (version 2).
    TooLong,
    /// A version 1 line that does not follow the grammar.
    V1Syntax,
    /// Version 2 with a version other than 2 or a command other than `LOCAL`/`PROXY`.
    V2Version,
    /// Version 2 with an unknown address family or a datagram transport.
    V2Family,
    /// Version 2 whose address block is shorter than its family needs.
    V2Length,
    /// Version 2 whose TLVs do not fill the header exactly, or whose CRC32c is wrong.
    V2Tlv,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeaderError::Signature => "not a PROXY protocol header",
            HeaderError::TooLong => "PROXY header too long",
            HeaderError::V1Syntax => "invalid PROXY v1 header",
            HeaderError::V2Version => "unsupported PROXY v2 version or command",
            HeaderError::V2Family => "unsupported PROXY v2 address family or transport",
            HeaderError::V2Length => "PROXY v2 address block too short",
            HeaderError::V2Tlv => "invalid PROXY v2 TLVs",
        })
    }
}

impl std::error::Error for HeaderError {}

/// Whether bytes begin with a PROXY signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// They do not, and no more bytes can change that.
    Absent,
    /// They are a proper prefix of a signature: more bytes will tell.
    Partial,
    /// They begin with one.
    Present,
}

/// Whether `bytes` begin with a version 1 or 2 signature (for peers that may not send a
/// header: one from them is refused, never believed).
pub fn signature(bytes: &[u8]) -> Signature {
    let mut answer = Signature::Absent;
    for sig in [V1_SIGNATURE, V2_SIGNATURE.as_slice()] {
        if bytes.starts_with(sig) {
            return Signature::Present;
        }
        if sig.starts_with(bytes) {
            answer = Signature::Partial;
        }
    }
    answer
}

/// Parses the header at the start of `bytes` (the bytes received so far).
///
/// # Errors
/// The bytes cannot begin a valid header, whatever follows.
pub fn parse(bytes: &[u8]) -> Result<Parsed, HeaderError> {
    match signature(bytes) {
        Signature::Absent => Err(HeaderError::Signature),
        Signature::Partial => Ok(Parsed::Incomplete),
        Signature::Present if bytes.starts_with(V1_SIGNATURE) => parse_v1(bytes),
        Signature::Present => parse_v2(bytes),
    }
}

fn parse_v1(bytes: &[u8]) -> Result<Parsed, HeaderError> {
    let window = bytes.get(..V1_MAX.min(bytes.len())).unwrap_or_default();
    let Some(end) = window.iter().position(|&b| b == b'\n') else {
        return if bytes.len() >= V1_MAX {
            Err(HeaderError::TooLong)
        } else if window.contains(&b'\r') && !window.ends_with(b"\r") {
            Err(HeaderError::V1Syntax)
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    let line = window
        .get(V1_SIGNATURE.len()..end)
        .and_then(|l| l.strip_suffix(b"\r"))
        .filter(|l| !l.contains(&b'\r'))
        .ok_or(HeaderError::V1Syntax)?;
    let header = if line == b"UNKNOWN" || line.starts_with(b"UNKNOWN ") {
        // Whatever follows UNKNOWN is to be ignored.
        Header::Unknown
    } else {
        parse_v1_fields(std::str::from_utf8(line).map_err(|_| HeaderError::V1Syntax)?)?
    };
    Ok(Parsed::Complete {
        header,
        len: end + 1,
    })
}

/// `TCP4 src dst sport dport` or `TCP6 …`.
fn parse_v1_fields(line: &str) -> Result<Header, HeaderError> {
    let mut fields = line.split(' ');
    let mut next = || fields.next().ok_or(HeaderError::V1Syntax);
    let family = next()?;
    let (src, dst, sport, dport) = (next()?, next()?, next()?, next()?);
    if fields.next().is_some() {
        return Err(HeaderError::V1Syntax);
    }
    let ip = |text: &str| -> Result<IpAddr, HeaderError> {
        match family {
            "TCP4" => text.parse::<Ipv4Addr>().map(IpAddr::V4),
            "TCP6" => text.parse::<Ipv6Addr>().map(IpAddr::V6),
            _ => return Err(HeaderError::V1Syntax),
        }
        .map_err(|_| HeaderError::V1Syntax)
    };
    let port = |text: &str| -> Result<u16, HeaderError> {
        let canonical = !text.is_empty()
            && text.len() <= 5
            && text.bytes().all(|b| b.is_ascii_digit())
            && (text == "0" || !text.starts_with('0'));
        canonical
            .then(|| text.parse().ok())
            .flatten()
            .ok_or(HeaderError::V1Syntax)
    };
    Ok(Header::Proxied(ProxiedAddrs {
        source: SocketAddr::new(ip(src)?, port(sport)?),
        destination: SocketAddr::new(ip(dst)?, port(dport)?),
    }))
}

fn parse_v2(bytes: &[u8]) -> Result<Parsed, HeaderError> {
    let Some(&[ver_cmd, family, hi, lo]) = bytes.get(V2_SIGNATURE.len()..V2_FIXED) else {
        return Ok(Parsed::Incomplete);
    };
    let local = match ver_cmd {
        0x20 => true,
        0x21 => false,
        _ => return Err(HeaderError::V2Version),
    };
    let len = V2_FIXED + usize::from(u16::from_be_bytes([hi, lo]));
    if len > MAX_HEADER {
        return Err(HeaderError::TooLong);
    }
    let Some(whole) = bytes.get(..len) else {
        return Ok(Parsed::Incomplete);
    };
    let block = whole.get(V2_FIXED..).unwrap_or_default();
    if local {
        // The receiver must ignore a LOCAL header's address block, TLVs included.
        return Ok(Parsed::Complete {
            header: Header::Local,
            len,
        });
    }
    // (address block length, what it says), by family.
    let (used, header) = match family {
        0x00 => (0, Header::Unknown),
        0x11 => (12, inet::<4>(block)?),
        0x21 => (36, inet::<16>(block)?),
        0x31 if block.len() >= 216 => (216, Header::Unknown),
        0x31 => return Err(HeaderError::V2Length),
        _ => return Err(HeaderError::V2Family),
    };
    check_tlvs(whole, V2_FIXED + used)?;
    Ok(Parsed::Complete { header, len })
}

/// A TCP over IPv4 (`N` = 4) or IPv6 (`N` = 16) address block: source and destination
/// addresses, then source and destination ports.
fn inet<const N: usize>(block: &[u8]) -> Result<Header, HeaderError>
where
    [u8; N]: Into<IpAddr>,
{
    let bytes = |at: usize, n: usize| block.get(at..at + n).ok_or(HeaderError::V2Length);
    let ip = |at: usize| -> Result<IpAddr, HeaderError> {
        let octets: [u8; N] = bytes(at, N)?
            .try_into()
            .map_err(|_| HeaderError::V2Length)?;
        Ok(octets.into())
    };
    let port = |at: usize| -> Result<u16, HeaderError> {
        let pair: [u8; 2] = bytes(at, 2)?
            .try_into()
            .map_err(|_| HeaderError::V2Length)?;
        Ok(u16::from_be_bytes(pair))
    };
    Ok(Header::Proxied(ProxiedAddrs {
        source: SocketAddr::new(ip(0)?, port(2 * N)?),
        destination: SocketAddr::new(ip(N)?, port(2 * N + 2)?),
    }))
}

/// The TLVs from `at` on must fill the header exactly; a CRC32c TLV must match.
fn check_tlvs(whole: &[u8], mut at: usize) -> Result<(), HeaderError> {
    while at < whole.len() {
        let Some(&[kind, hi, lo]) = whole.get(at..at + 3) else {
            return Err(HeaderError::V2Tlv);
        };
        let end = at + 3 + usize::from(u16::from_be_bytes([hi, lo]));
        let value = whole.get(at + 3..end).ok_or(HeaderError::V2Tlv)?;
        if kind == PP2_TYPE_CRC32C && (value.len() != 4 || !crc_matches(whole, at + 3, value)) {
            return Err(HeaderError::V2Tlv);
        }
        at = end;
    }
    Ok(())
}

/// Whether `expected` is the CRC32c of `whole` with its 4 bytes at `at` taken as zero.
fn crc_matches(whole: &[u8], at: usize, expected: &[u8]) -> bool {
    let zeroed = whole
        .iter()
        .enumerate()
        .map(|(i, &b)| if (at..at + 4).contains(&i) { 0 } else { b });
    expected == crc32c(zeroed).to_be_bytes()
}

/// CRC32c (Castagnoli), bit by bit: headers are short and rarely carry one.
fn crc32c(bytes: impl Iterator<Item = u8>) -> u32 {
    !bytes.fold(!0u32, |crc, b| {
        (0..8).fold(crc ^ u32::from(b), |c, _| {
            if c & 1 == 1 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(bytes: &[u8]) -> (Header, usize) {
        match parse(bytes) {
            Ok(Parsed::Complete { header, len }) => (header, len),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bytes)),
        }
    }

    fn addrs(src: &str, dst: &str) -> Header {
        Header::Proxied(ProxiedAddrs {
            source: src.parse().unwrap(),
            destination: dst.parse().unwrap(),
        })
    }

    /// A version 2 header: command, family, address block and TLVs.
    fn v2(cmd: u8, family: u8, rest: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(cmd);
        h.push(family);
        h.extend_from_slice(&(rest.len() as u16).to_be_bytes());
        h.extend_from_slice(rest);
        h
    }

    const V4_BLOCK: [u8; 12] = [192, 0, 2, 1, 198, 51, 100, 2, 0xC4, 0x2C, 0x18, 0xEB];

    #[test]
    fn v1_headers() {
        let line = b"PROXY TCP4 192.0.2.1 198.51.100.2 50220 6379\r\nPING\r\n";
        assert_eq!(
            complete(line),
            (addrs("192.0.2.1:50220", "198.51.100.2:6379"), 46)
        );
        let line = b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n";
        assert_eq!(complete(line).0, addrs("[2001:db8::1]:1", "[::1]:65535"));
        assert_eq!(complete(b"PROXY UNKNOWN\r\n"), (Header::Unknown, 15));
        assert_eq!(complete(b"PROXY UNKNOWN ff 1 2 3\r\n").0, Header::Unknown);
        assert_eq!(complete(b"PROXY UNKNOWN \xff\0\r\n").0, Header::Unknown);
        // The longest valid line, 107 bytes.
        let longest = b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
        assert_eq!(longest.len(), V1_MAX);
        assert_eq!(complete(longest).1, V1_MAX);
    }

    #[test]
    fn v1_refusals() {
        for bad in [
            &b"PROXY TCP4 192.0.2.1 198.51.100.2 50220 6379\n"[..],
            b"PROXY TCP4 192.0.2.1 198.51.100.2 50220 6379 x\r\n",
            b"PROXY TCP4 192.0.2.1  198.51.100.2 50220 6379\r\n",
            b"PROXY TCP4 2001:db8::1 198.51.100.2 50220 6379\r\n",
            b"PROXY TCP6 192.0.2.1 198.51.100.2 50220 6379\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 65536 6379\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 050 6379\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 -1 6379\r\n",
            b"PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
            b"PROXY TCP4 192.0.2.1\r\n",
            b"PROXY \r\n",
            b"PROXY TCP4 1.2.3.4\rX",
            b"PROXY UNKNOWN \0\r\0\r\n",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let long = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 200]].concat();
        assert_eq!(parse(&long), Err(HeaderError::TooLong));
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(HeaderError::Signature));
    }

    #[test]
    fn v2_headers() {
        let h = v2(0x21, 0x11, &V4_BLOCK);
        assert_eq!(
            complete(&h),
            (addrs("192.0.2.1:50220", "198.51.100.2:6379"), 28)
        );
        let mut block6 = [0u8; 36];
        block6[15] = 1; // ::1
        block6[16..18].copy_from_slice(&[0x20, 0x01]);
        block6[32..36].copy_from_slice(&[0, 7, 0x18, 0xEB]);
        assert_eq!(
            complete(&v2(0x21, 0x21, &block6)).0,
            addrs("[::1]:7", "[2001::]:6379")
        );
        assert_eq!(complete(&v2(0x20, 0x00, &[])), (Header::Local, 16));
        // LOCAL ignores whatever follows, even an unknown family.
        assert_eq!(complete(&v2(0x20, 0x77, &[1, 2, 3])).0, Header::Local);
        assert_eq!(complete(&v2(0x21, 0x00, &[])).0, Header::Unknown);
        assert_eq!(complete(&v2(0x21, 0x31, &[0; 216])).0, Header::Unknown);
        // TLVs: a NOOP and an authority.
        let tlvs = [
            &V4_BLOCK[..],
            &[0x04, 0, 2, 0, 0, 0x02, 0, 3, b'a', b'.', b'b'],
        ]
        .concat();
        assert_eq!(complete(&v2(0x21, 0x11, &tlvs)).1, 16 + tlvs.len());
    }

    #[test]
    fn v2_crc32c() {
        // The algorithm's check value.
        assert_eq!(crc32c(b"123456789".iter().copied()), 0xE306_9283);
        let block = [&V4_BLOCK[..], &[PP2_TYPE_CRC32C, 0, 4, 0, 0, 0, 0]].concat();
        let mut h = v2(0x21, 0x11, &block);
        assert_eq!(parse(&h), Err(HeaderError::V2Tlv), "a zero CRC is wrong");
        let crc = crc32c(h.iter().copied());
        let at = h.len() - 4;
        h[at..].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(parse(&h), Ok(Parsed::Complete { .. })));
        h[20] ^= 1;
        assert_eq!(
            parse(&h),
            Err(HeaderError::V2Tlv),
            "a changed byte is caught"
        );
    }

    #[test]
    fn v2_refusals() {
        assert_eq!(
            parse(&v2(0x11, 0x11, &V4_BLOCK)),
            Err(HeaderError::V2Version)
        );
        assert_eq!(
            parse(&v2(0x22, 0x11, &V4_BLOCK)),
            Err(HeaderError::V2Version)
        );
        assert_eq!(
            parse(&v2(0x21, 0x12, &V4_BLOCK)),
            Err(HeaderError::V2Family)
        );
        assert_eq!(
            parse(&v2(0x21, 0x41, &V4_BLOCK)),
            Err(HeaderError::V2Family)
        );
        assert_eq!(
            parse(&v2(0x21, 0x11, &V4_BLOCK[..11])),
            Err(HeaderError::V2Length)
        );
        assert_eq!(
            parse(&v2(0x21, 0x21, &V4_BLOCK)),
            Err(HeaderError::V2Length)
        );
        // A TLV running past the end, a TLV cut in its type and length.
        let over = [&V4_BLOCK[..], &[0x04, 0, 9, 0]].concat();
        assert_eq!(parse(&v2(0x21, 0x11, &over)), Err(HeaderError::V2Tlv));
        let cut = [&V4_BLOCK[..], &[0x04, 0]].concat();
        assert_eq!(parse(&v2(0x21, 0x11, &cut)), Err(HeaderError::V2Tlv));
        // A length past the bound is refused from the fixed part alone.
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xFF, 0xFF]);
        assert_eq!(parse(&huge), Err(HeaderError::TooLong));
    }

    #[test]
    fn every_prefix_of_a_valid_header_is_incomplete() {
        let v1 = b"PROXY TCP4 192.0.2.1 198.51.100.2 50220 6379\r\n".to_vec();
        let v2 = v2(0x21, 0x11, &V4_BLOCK);
        for h in [v1, v2] {
            for end in 0..h.len() {
                assert_eq!(parse(&h[..end]), Ok(Parsed::Incomplete), "{end}");
            }
        }
    }

    #[test]
    fn signatures() {
        assert_eq!(signature(b"PROXY TCP4"), Signature::Present);
        assert_eq!(signature(b"\r\n\r\n\0\r\nQUIT\n\x21"), Signature::Present);
        assert_eq!(signature(b"PRO"), Signature::Partial);
        assert_eq!(signature(b"\r\n"), Signature::Partial);
        assert_eq!(signature(b"PING\r\n"), Signature::Absent);
        assert_eq!(signature(b"*1\r\n$4\r\nPING\r\n"), Signature::Absent);
        assert_eq!(signature(b"\r\nPING"), Signature::Absent);
    }
}
