//! The bytes of a pub/sub run: the `PUBLISH` requests, the header inside each payload
//! (who published it, its number, when it was due), and the messages subscribers get.
//!
//! A payload starts with a 24-byte header, little-endian: the publisher's index (4 bytes),
//! the channel's (4), the message's number among that publisher's messages on that channel
//! (8), and when it was due, in nanoseconds since the run's start (8); `x`s fill it to the
//! size asked for. A message is parsed straight from the read buffer (no framer, no copy):
//! a subscriber must keep up with a server delivering millions a second.

use muxd::resp::parse_int;

/// Bytes of the header at the start of every payload: the smallest payload.
pub const HEADER: usize = 24;

/// The name of channel `c`.
pub fn channel_name(c: usize) -> String {
    format!("bench:{c}")
}

/// What a payload's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub publisher: u32,
    pub channel: u32,
    pub seq: u64,
    /// When it was due, ns since the run's start.
    pub due: u64,
}

impl Header {
    fn write(&self, out: &mut [u8]) {
        let fields = [
            &self.publisher.to_le_bytes()[..],
            &self.channel.to_le_bytes(),
            &self.seq.to_le_bytes(),
            &self.due.to_le_bytes(),
        ];
        let mut at = 0;
        for field in fields {
            if let Some(dst) = out.get_mut(at..at + field.len()) {
                dst.copy_from_slice(field);
            }
            at += field.len();
        }
    }

    /// The header at the start of `payload`, if it is long enough.
    pub fn read(payload: &[u8]) -> Option<Header> {
        let (publisher, rest) = payload.split_first_chunk::<4>()?;
        let (channel, rest) = rest.split_first_chunk::<4>()?;
        let (seq, rest) = rest.split_first_chunk::<8>()?;
        let (due, _) = rest.split_first_chunk::<8>()?;
        Some(Header {
            publisher: u32::from_le_bytes(*publisher),
            channel: u32::from_le_bytes(*channel),
            seq: u64::from_le_bytes(*seq),
            due: u64::from_le_bytes(*due),
        })
    }
}

/// A `PUBLISH` request on one channel with a payload of a given size, encoded once: each
/// message is a copy with its header written in.
pub struct Request {
    bytes: Vec<u8>,
    /// Where the payload starts in `bytes`.
    payload_at: usize,
}

impl Request {
    pub fn new(channel: &str, payload: usize) -> Request {
        let mut bytes = Vec::new();
        let body = vec![b'x'; payload];
        muxd::resp::encode_request([&b"PUBLISH"[..], channel.as_bytes(), &body], &mut bytes);
        // The payload is the last argument: its bytes end two before the end.
        let payload_at = bytes.len() - 2 - payload;
        Request { bytes, payload_at }
    }

    /// Appends the request carrying `header` to `out`.
    pub fn write(&self, header: &Header, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&self.bytes);
        if let Some(payload) = out.get_mut(start + self.payload_at..) {
            header.write(payload);
        }
    }
}

/// A message a subscriber received.
#[derive(Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub channel: &'a [u8],
    pub payload: &'a [u8],
}

/// Parses the `message` push (RESP3 `>3`) or array (RESP2 `*3`) at the start of `buf`:
/// `Ok(None)` if it has not all arrived, `Err` with what was found instead.
pub fn parse_message(buf: &[u8]) -> Result<Option<(Message<'_>, usize)>, String> {
    let Some((&kind, rest)) = buf.split_first() else {
        return Ok(None);
    };
    if kind != b'*' && kind != b'>' {
        return Err(format!("not a message: starts with {:?}", kind as char));
    }
    let Some((count, mut at)) = line(rest, 1)? else {
        return Ok(None);
    };
    if count != b"3" {
        return Err(format!(
            "a message of {} elements",
            String::from_utf8_lossy(count)
        ));
    }
    let mut fields: [&[u8]; 3] = [&[]; 3];
    for field in &mut fields {
        match bulk(buf, at)? {
            Some((bytes, next)) => {
                *field = bytes;
                at = next;
            }
            None => return Ok(None),
        }
    }
    let [kind, channel, payload] = fields;
    if kind != b"message" {
        return Err(format!(
            "not a message: {:?}",
            String::from_utf8_lossy(kind)
        ));
    }
    Ok(Some((Message { channel, payload }, at)))
}

/// The line starting at `from` in `buf` (shifted by `base` for the caller): its bytes
/// and where the next starts.
fn line(buf: &[u8], base: usize) -> Result<Option<(&[u8], usize)>, String> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(end) if end > 0 && buf.get(end - 1) == Some(&b'\r') => Ok(Some((
            buf.get(..end - 1).unwrap_or_default(),
            base + end + 1,
        ))),
        Some(_) => Err("a line not ended by \\r\\n".to_owned()),
        None if buf.len() > 32 => Err("a header line too long".to_owned()),
        None => Ok(None),
    }
}

/// The bulk string at `at` in `buf`, and where what follows it starts.
fn bulk(buf: &[u8], at: usize) -> Result<Option<(&[u8], usize)>, String> {
    let Some(rest) = buf.get(at..) else {
        return Ok(None);
    };
    match rest.first() {
        None => return Ok(None),
        Some(b'$') => {}
        Some(&other) => return Err(format!("expected a bulk string, got {:?}", other as char)),
    }
    let Some((len, start)) = line(rest.get(1..).unwrap_or_default(), at + 1)? else {
        return Ok(None);
    };
    let len = parse_int(len)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| "a bad bulk length".to_owned())?;
    let end = start + len;
    match buf.get(end..end + 2) {
        Some(b"\r\n") => Ok(buf.get(start..end).map(|bytes| (bytes, end + 2))),
        Some(_) => Err("a bulk string not ended by \\r\\n".to_owned()),
        None => Ok(None),
    }
}

/// Parses the integer reply (`:n`) at the start of `buf`.
pub fn parse_integer(buf: &[u8]) -> Result<Option<(i64, usize)>, String> {
    match buf.first() {
        None => Ok(None),
        Some(b':') => match line(buf.get(1..).unwrap_or_default(), 1)? {
            Some((digits, used)) => parse_int(digits)
                .map(|n| Some((n, used)))
                .ok_or_else(|| "a bad integer".to_owned()),
            None => Ok(None),
        },
        Some(_) => {
            let shown = buf.get(..buf.len().min(80)).unwrap_or_default();
            Err(format!(
                "expected an integer, got {:?}",
                String::from_utf8_lossy(shown)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_carries_its_header_and_a_message_gives_it_back() {
        let request = Request::new("bench:3", 64);
        let header = Header {
            publisher: 7,
            channel: 3,
            seq: 1 << 40,
            due: 123_456_789,
        };
        let mut out = Vec::new();
        request.write(&header, &mut out);
        let payload = &out[out.len() - 66..out.len() - 2];
        assert_eq!(Header::read(payload), Some(header));
        assert!(out.starts_with(b"*3\r\n$7\r\nPUBLISH\r\n$7\r\nbench:3\r\n$64\r\n"));

        for kind in [b'*', b'>'] {
            let mut message = vec![kind];
            message.extend_from_slice(b"3\r\n$7\r\nmessage\r\n$7\r\nbench:3\r\n$64\r\n");
            message.extend_from_slice(payload);
            message.extend_from_slice(b"\r\n");
            let (parsed, used) = parse_message(&message).unwrap().unwrap();
            assert_eq!(used, message.len());
            assert_eq!(parsed.channel, b"bench:3");
            assert_eq!(Header::read(parsed.payload), Some(header));
            for cut in 0..message.len() {
                assert_eq!(parse_message(&message[..cut]), Ok(None), "cut at {cut}");
            }
        }
        assert!(parse_message(b"+OK\r\n").is_err());
        assert!(parse_message(b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n").is_err());
        assert_eq!(parse_integer(b":100\r\n"), Ok(Some((100, 6))));
        assert_eq!(parse_integer(b":10"), Ok(None));
        assert!(parse_integer(b"-ERR x\r\n").is_err());
    }
}
