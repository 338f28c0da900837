//! The incremental reply framer: where each reply ends, found in place.
//!
//! A client that only checks replies (as `muxd-bench` does) need not build reply values:
//! it needs to know where the reply at the start of its buffer ends, and whether the
//! bytes are valid RESP at all. [`Framer`] does exactly that for every RESP2 kind: simple
//! string (`+`), error (`-`), integer (`:`), bulk string (`$`, with `$-1` the null bulk),
//! array (`*`, with `*-1` the null array), nested to any depth up to [`MAX_DEPTH`].
//!
//! It is incremental: when a reply is split across reads, [`Framer::advance`] returns
//! `Ok(None)` and keeps its place (the elements already passed, how far a line was
//! searched), so the next call with more bytes resumes instead of starting over. It never
//! panics on any input and never reserves memory from a length the peer announced; the
//! only memory it holds is one counter per open array level.

use crate::resp::parse_int;

/// Deepest array nesting accepted.
pub const MAX_DEPTH: usize = 128;
/// Longest bulk string accepted (Redis's `proto-max-bulk-len` default).
pub const MAX_BULK: i64 = 512 * 1024 * 1024;
/// Longest `+`, `-` or `:` line (and `$`/`*` header) accepted before its `\r\n`.
pub const MAX_LINE: usize = 1024 * 1024;

/// Why the bytes cannot be a RESP2 reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MalformedReply {
    /// A reply or element starts with a byte that is no RESP2 type marker.
    UnknownType(u8),
    /// A `\r` not followed by `\n`, or a `\n` without `\r`, in a line.
    BadLineEnd,
    /// A line longer than [`MAX_LINE`].
    LineTooLong,
    /// An integer reply (or length) that is not a decimal 64-bit integer.
    BadInteger,
    /// A bulk length below -1 or above [`MAX_BULK`].
    BadBulkLength,
    /// An array length below -1.
    BadArrayLength,
    /// Bulk data not followed by `\r\n`.
    BulkNotTerminated,
    /// Arrays nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl std::fmt::Display for MalformedReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MalformedReply::UnknownType(b) => write!(f, "unknown reply type byte 0x{b:02x}"),
            MalformedReply::BadLineEnd => f.write_str("line not ended by \\r\\n"),
            MalformedReply::LineTooLong => f.write_str("line too long"),
            MalformedReply::BadInteger => f.write_str("invalid integer"),
            MalformedReply::BadBulkLength => f.write_str("invalid bulk length"),
            MalformedReply::BadArrayLength => f.write_str("invalid array length"),
            MalformedReply::BulkNotTerminated => f.write_str("bulk data not ended by \\r\\n"),
            MalformedReply::TooDeep => f.write_str("arrays nested too deeply"),
        }
    }
}

impl std::error::Error for MalformedReply {}

/// Progress through the reply at the start of a buffer; reusable reply after reply.
///
/// Feed it the buffer starting at the reply's first byte, again and again as the buffer
/// grows, until it returns the reply's length; then drop those bytes and go on with the
/// next reply. After an error the framer is reset, but the stream is lost: close it.
#[derive(Debug, Default, Clone)]
pub struct Framer {
    /// Elements still expected by each open array, innermost last.
    open: Vec<u64>,
    /// Where the next element (or the reply itself) starts.
    pos: usize,
    /// How far the line starting at `pos` was already searched for its end.
    scanned: usize,
}

impl Framer {
    /// A framer at the start of a reply.
    pub fn new() -> Framer {
        Framer::default()
    }

    /// Whether the framer is between replies (no partial reply seen).
    pub fn is_fresh(&self) -> bool {
        self.pos == 0 && self.open.is_empty()
    }

    /// Forgets any partial reply.
    pub fn reset(&mut self) {
        self.open.clear();
        self.pos = 0;
        self.scanned = 0;
    }

    /// Looks for the end of the reply that starts at `buf[0]`.
    ///
    /// Returns `Ok(Some(len))` once `buf[..len]` is one complete reply (the framer is then
    /// ready for the next one), `Ok(None)` when more bytes are needed (call again with the
    /// same buffer extended), or the reason the bytes are not RESP2.
    pub fn advance(&mut self, buf: &[u8]) -> Result<Option<usize>, MalformedReply> {
        let result = self.advance_inner(buf);
        if !matches!(result, Ok(None)) {
            self.reset();
        }
        result
    }

    fn advance_inner(&mut self, buf: &[u8]) -> Result<Option<usize>, MalformedReply> {
        loop {
            let Some(&marker) = buf.get(self.pos) else {
                return Ok(None);
            };
            match marker {
                b'+' | b'-' | b':' => {
                    let Some((line, next)) = self.line(buf)? else {
                        return Ok(None);
                    };
                    if marker == b':' {
                        parse_int(line).ok_or(MalformedReply::BadInteger)?;
                    }
                    self.pos = next;
                }
                b'$' => {
                    let Some((line, data_start)) = self.line(buf)? else {
                        return Ok(None);
                    };
                    let len = parse_int(line).ok_or(MalformedReply::BadInteger)?;
                    if len == -1 {
                        self.pos = data_start;
                    } else if (0..=MAX_BULK).contains(&len) {
                        // The header is parsed again if the data is not all here: it is a
                        // few bytes, and not keeping it keeps the state small.
                        let data_end = data_start + len as usize;
                        let Some(terminator) = buf.get(data_end..data_end + 2) else {
                            return Ok(None);
                        };
                        if terminator != b"\r\n" {
                            return Err(MalformedReply::BulkNotTerminated);
                        }
                        self.pos = data_end + 2;
                    } else {
                        return Err(MalformedReply::BadBulkLength);
                    }
                }
                b'*' => {
                    let Some((line, next)) = self.line(buf)? else {
                        return Ok(None);
                    };
                    let count = parse_int(line).ok_or(MalformedReply::BadInteger)?;
                    self.pos = next;
                    if count < -1 {
                        return Err(MalformedReply::BadArrayLength);
                    }
                    if count > 0 {
                        if self.open.len() >= MAX_DEPTH {
                            return Err(MalformedReply::TooDeep);
                        }
                        self.open.push(count as u64);
                        continue;
                    }
                    // `*0` and `*-1` are complete elements on their own.
                }
                other => return Err(MalformedReply::UnknownType(other)),
            }
            // One element is complete: close every array it completes.
            loop {
                match self.open.last_mut() {
                    None => return Ok(Some(self.pos)),
                    Some(left) => {
                        *left -= 1;
                        if *left > 0 {
                            break;
                        }
                        self.open.pop();
                    }
                }
            }
        }
    }

    /// The line whose type marker is at `pos`: its content (after the marker, before
    /// `\r\n`) and the offset just past its `\r\n`; `None` while its end has not arrived.
    fn line<'a>(&mut self, buf: &'a [u8]) -> Result<Option<(&'a [u8], usize)>, MalformedReply> {
        let start = self.pos + 1;
        let from = self.scanned.max(start);
        let rest = buf.get(from..).unwrap_or_default();
        match rest.iter().position(|&b| b == b'\r' || b == b'\n') {
            Some(found) => {
                let end = from + found;
                match (buf.get(end), buf.get(end + 1)) {
                    (Some(b'\r'), Some(b'\n')) => {
                        self.scanned = 0;
                        Ok(Some((buf.get(start..end).unwrap_or_default(), end + 2)))
                    }
                    (Some(b'\r'), None) => {
                        self.scanned = end;
                        Ok(None)
                    }
                    _ => Err(MalformedReply::BadLineEnd),
                }
            }
            None => {
                if buf.len().saturating_sub(start) > MAX_LINE {
                    return Err(MalformedReply::LineTooLong);
                }
                self.scanned = buf.len();
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames every reply in `input`, fed whole: the length of each.
    fn frame_all(input: &[u8]) -> Result<Vec<usize>, MalformedReply> {
        let mut framer = Framer::new();
        let mut pos = 0;
        let mut out = Vec::new();
        while pos < input.len() {
            match framer.advance(&input[pos..])? {
                Some(len) => {
                    out.push(len);
                    pos += len;
                }
                None => break,
            }
        }
        Ok(out)
    }

    const VALID: &[(&str, &[u8])] = &[
        ("simple", b"+PONG\r\n"),
        ("empty simple", b"+\r\n"),
        ("error", b"-ERR unknown command 'ADD'\r\n"),
        ("integer", b":42\r\n"),
        ("negative integer", b":-9223372036854775808\r\n"),
        ("bulk", b"$5\r\nhello\r\n"),
        ("bulk with crlf inside", b"$4\r\na\r\nb\r\n"),
        ("empty bulk", b"$0\r\n\r\n"),
        ("null bulk", b"$-1\r\n"),
        ("null array", b"*-1\r\n"),
        ("empty array", b"*0\r\n"),
        ("array", b"*2\r\n$4\r\nsave\r\n:1\r\n"),
        (
            "nested",
            b"*3\r\n*2\r\n+a\r\n*0\r\n$-1\r\n*1\r\n*1\r\n-ERR x\r\n",
        ),
        ("array ending in nested", b"*2\r\n:1\r\n*2\r\n:2\r\n:3\r\n"),
    ];

    #[test]
    fn frames_every_kind_whole() {
        for (name, reply) in VALID {
            assert_eq!(frame_all(reply), Ok(vec![reply.len()]), "{name}");
        }
    }

    #[test]
    fn frames_every_kind_split_at_every_byte() {
        for (name, reply) in VALID {
            for cut in 0..reply.len() {
                let mut framer = Framer::new();
                assert_eq!(framer.advance(&reply[..cut]), Ok(None), "{name} cut {cut}");
                assert_eq!(
                    framer.advance(reply),
                    Ok(Some(reply.len())),
                    "{name} cut {cut}"
                );
                assert!(framer.is_fresh());
            }
        }
    }

    #[test]
    fn frames_every_kind_fed_one_byte_at_a_time() {
        for (name, reply) in VALID {
            let mut framer = Framer::new();
            for end in 1..reply.len() {
                assert_eq!(framer.advance(&reply[..end]), Ok(None), "{name} at {end}");
            }
            assert_eq!(framer.advance(reply), Ok(Some(reply.len())), "{name}");
        }
    }

    #[test]
    fn pipelined_replies_frame_one_by_one() {
        let mut input = Vec::new();
        let mut lens = Vec::new();
        for (_, reply) in VALID {
            input.extend_from_slice(reply);
            lens.push(reply.len());
        }
        assert_eq!(frame_all(&input), Ok(lens));
    }

    #[test]
    fn malformed_replies_are_refused() {
        let cases: &[(&[u8], MalformedReply)] = &[
            (b"PONG\r\n", MalformedReply::UnknownType(b'P')),
            (b"\r\n", MalformedReply::UnknownType(b'\r')),
            (b"\x00", MalformedReply::UnknownType(0)),
            (b"+PO\rNG\r\n", MalformedReply::BadLineEnd),
            (b"+PO\nNG\r\n", MalformedReply::BadLineEnd),
            (b":abc\r\n", MalformedReply::BadInteger),
            (b":\r\n", MalformedReply::BadInteger),
            (b":+1\r\n", MalformedReply::BadInteger),
            (b":99999999999999999999\r\n", MalformedReply::BadInteger),
            (b"$x\r\n", MalformedReply::BadInteger),
            (b"$-2\r\n", MalformedReply::BadBulkLength),
            (b"$999999999999\r\n", MalformedReply::BadBulkLength),
            (b"$3\r\nabcde\r\n", MalformedReply::BulkNotTerminated),
            (b"$3\r\nabc\n\r", MalformedReply::BulkNotTerminated),
            (b"*-2\r\n", MalformedReply::BadArrayLength),
            (b"*1\r\nPONG\r\n", MalformedReply::UnknownType(b'P')),
            (b"*2\r\n:1\r\n:x\r\n", MalformedReply::BadInteger),
        ];
        for (input, expected) in cases {
            assert_eq!(
                frame_all(input),
                Err(*expected),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn malformed_replies_are_refused_however_split() {
        // Bytes that can never become valid are refused as soon as they are seen.
        let input = b"*2\r\n$3\r\nabcXY:1\r\n";
        let mut framer = Framer::new();
        let mut outcome = Ok(None);
        for end in 1..=input.len() {
            outcome = framer.advance(&input[..end]);
            if outcome.is_err() {
                break;
            }
        }
        assert_eq!(outcome, Err(MalformedReply::BulkNotTerminated));
    }

    #[test]
    fn nesting_and_lines_are_bounded() {
        let deep = "*1\r\n".repeat(MAX_DEPTH + 1);
        assert_eq!(frame_all(deep.as_bytes()), Err(MalformedReply::TooDeep));
        let ok = format!("{}:1\r\n", "*1\r\n".repeat(MAX_DEPTH));
        assert_eq!(frame_all(ok.as_bytes()), Ok(vec![ok.len()]));
        let long = vec![b'a'; MAX_LINE + 2];
        let mut line = b"+".to_vec();
        line.extend_from_slice(&long);
        assert_eq!(
            Framer::new().advance(&line),
            Err(MalformedReply::LineTooLong)
        );
    }

    #[test]
    fn a_big_announced_bulk_waits_without_reserving() {
        let mut framer = Framer::new();
        assert_eq!(framer.advance(b"$536870912\r\nab"), Ok(None));
        assert!(framer.open.capacity() <= MAX_DEPTH);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic generator over the bytes that matter to the grammar.
        let alphabet = b"+-:$*\r\n01-9ax";
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut input = Vec::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize;
            let mut s = seed;
            for _ in 0..len {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                input.push(alphabet[((s >> 33) % alphabet.len() as u64) as usize]);
            }
            let mut framer = Framer::new();
            for end in 0..=input.len() {
                if framer.advance(&input[..end]).is_err() {
                    break;
                }
            }
        }
    }
}
