//! The incremental reply framer: where each reply ends, found in place.
//!
//! A client that only checks replies (as `muxd-bench` does) need not build reply values:
//! it needs to know where the reply at the start of its buffer ends, and whether the
//! bytes are valid RESP at all. [`Framer`] does exactly that for every kind of RESP2 and
//! RESP3:
//!
//! | marker | kind | | marker | kind |
//! | --- | --- | --- | --- | --- |
//! | `+` | simple string | | `_` | null (RESP3) |
//! | `-` | error | | `#` | boolean: `#t`, `#f` |
//! | `:` | integer | | `,` | double, `inf`, `-inf`, `nan` included |
//! | `$` | bulk string, `$-1` the null bulk | | `(` | big number |
//! | `*` | array, `*-1` the null array | | `=` | verbatim string: `=15\r\ntxt:hello world` |
//! | `!` | blob error | | `%` | map: `%n` then `n` keys and values |
//! | `~` | set | | `>` | push |
//! | `\|` | attribute | | | |
//!
//! An attribute (`|n` then `n` keys and values) is no reply of its own: it belongs to the
//! reply or element that follows it, and the framer counts it as part of that one.
//! Aggregates nest to any depth up to [`MAX_DEPTH`] (an attribute counts as one level).
//!
//! It is incremental: when a reply is split across reads, [`Framer::advance`] returns
//! `Ok(None)` and keeps its place (the elements already passed, how far a line was
//! searched), so the next call with more bytes resumes instead of starting over. It never
//! panics on any input and never reserves memory from a length the peer announced; the
//! only memory it holds is one counter per open aggregate.

use std::fmt;

use crate::resp::decode::parse_int;

/// Deepest nesting of aggregates (and attributes) accepted.
pub const MAX_DEPTH: usize = 128;
/// Longest bulk string, blob error or verbatim string accepted (Redis's
/// `proto-max-bulk-len` default).
pub const MAX_BULK: i64 = 512 * 1024 * 1024;
/// Longest line (a simple string, error, number, or a length header) accepted before its
/// `\r\n`.
pub const MAX_LINE: usize = 1024 * 1024;

/// Why the bytes cannot be a RESP reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MalformedReply {
    /// A reply or element starts with a byte that is no RESP type marker.
    UnknownType(u8),
    /// A `\r` not followed by `\n`, or a `\n` without `\r`, in a line.
    BadLineEnd,
    /// A line longer than [`MAX_LINE`].
    LineTooLong,
    /// An integer reply, length or count that is not a decimal 64-bit integer.
    BadInteger,
    /// A length or count out of range: negative (except `$-1` and `*-1`, the RESP2
    /// nulls), or a bulk above [`MAX_BULK`]. Holds the type marker.
    BadLength(u8),
    /// Bulk data (of `$`, `!` or `=`) not followed by `\r\n`.
    BulkNotTerminated,
    /// Aggregates nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A null (`_`) with something before its `\r\n`.
    BadNull,
    /// A boolean other than `#t` or `#f`.
    BadBoolean,
    /// A double that is not a decimal floating point number, `inf`, `-inf` or `nan`.
    BadDouble,
    /// A big number that is not an optional sign followed by decimal digits.
    BadBigNumber,
    /// A verbatim string without its three-byte format and `:` (as in `txt:`).
    BadVerbatim,
}

impl fmt::Display for MalformedReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MalformedReply::UnknownType(b) => write!(f, "unknown reply type byte 0x{b:02x}"),
            MalformedReply::BadLineEnd => f.write_str("line not ended by \\r\\n"),
            MalformedReply::LineTooLong => f.write_str("line too long"),
            MalformedReply::BadInteger => f.write_str("invalid integer"),
            MalformedReply::BadLength(marker) => write!(f, "invalid {} length", kind(*marker)),
            MalformedReply::BulkNotTerminated => f.write_str("bulk data not ended by \\r\\n"),
            MalformedReply::TooDeep => f.write_str("aggregates nested too deeply"),
            MalformedReply::BadNull => f.write_str("invalid null"),
            MalformedReply::BadBoolean => f.write_str("invalid boolean"),
            MalformedReply::BadDouble => f.write_str("invalid double"),
            MalformedReply::BadBigNumber => f.write_str("invalid big number"),
            MalformedReply::BadVerbatim => f.write_str("verbatim string without its format"),
        }
    }
}

impl std::error::Error for MalformedReply {}

/// The kind a length-carrying marker announces, as errors name it.
fn kind(marker: u8) -> &'static str {
    match marker {
        b'$' => "bulk",
        b'!' => "blob error",
        b'=' => "verbatim string",
        b'*' => "array",
        b'%' => "map",
        b'~' => "set",
        b'>' => "push",
        b'|' => "attribute",
        _ => "unknown",
    }
}

/// One aggregate (or attribute) whose elements are still arriving.
#[derive(Debug, Clone, Copy)]
struct Open {
    /// Elements still expected (keys and values count one each).
    left: u64,
    /// An attribute: once its elements are in, the element it belongs to is still owed.
    attribute: bool,
}

/// Progress through the reply at the start of a buffer; reusable reply after reply.
///
/// Feed it the buffer starting at the reply's first byte, again and again as the buffer
/// grows, until it returns the reply's length; then drop those bytes and go on with the
/// next reply. After an error the framer is reset, but the stream is lost: close it.
/// [`parse`](Framer::parse) does the same and also returns the reply as a
/// [`Value`](crate::resp::Value).
///
/// # Examples
/// ```
/// use muxd::resp::Framer;
///
/// let mut framer = Framer::new();
/// assert_eq!(framer.advance(b"*2\r\n+PONG\r\n:4"), Ok(None));
/// assert_eq!(framer.advance(b"*2\r\n+PONG\r\n:42\r\n+next"), Ok(Some(16)));
/// assert!(framer.advance(b"PONG\r\n").is_err());
/// ```
#[derive(Debug, Default, Clone)]
pub struct Framer {
    /// Aggregates open around the next element, innermost last.
    open: Vec<Open>,
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
    #[inline]
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
    /// same buffer extended).
    ///
    /// # Errors
    /// Why the bytes are not RESP, as soon as bytes that can never become a valid reply
    /// are seen. The framer is then reset.
    #[inline]
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
            if !is_marker(marker) {
                return Err(MalformedReply::UnknownType(marker));
            }
            let Some((line, next)) = self.line(buf)? else {
                return Ok(None);
            };
            match marker {
                b'$' | b'!' | b'=' => match blob_len(marker, line)? {
                    None => self.pos = next,
                    Some(len) => {
                        // The header is parsed again if the data is not all here: it is a
                        // few bytes, and not keeping it keeps the state small.
                        let Some(data) = blob_data(buf, next, len, marker)? else {
                            return Ok(None);
                        };
                        self.pos = next + data.len() + 2;
                    }
                },
                b'*' | b'%' | b'~' | b'>' | b'|' => {
                    self.pos = next;
                    let attribute = marker == b'|';
                    match aggregate_len(marker, line)? {
                        Some(elements) if elements > 0 || attribute => {
                            if self.open.len() >= MAX_DEPTH {
                                return Err(MalformedReply::TooDeep);
                            }
                            // `|0` has no elements of its own: only the element it
                            // belongs to is owed.
                            self.open.push(Open {
                                left: elements.max(1),
                                attribute: attribute && elements > 0,
                            });
                            continue;
                        }
                        // `*-1`, and `*0` `%0` `~0` `>0`, are complete elements on their own.
                        _ => {}
                    }
                }
                _ => {
                    check_line(marker, line)?;
                    self.pos = next;
                }
            }
            // One element is complete: close every aggregate it completes.
            loop {
                let Some(open) = self.open.last_mut() else {
                    return Ok(Some(self.pos));
                };
                open.left -= 1;
                if open.left > 0 {
                    break;
                }
                if open.attribute {
                    // The attribute is in; the element it belongs to completes this level.
                    *open = Open {
                        left: 1,
                        attribute: false,
                    };
                    break;
                }
                self.open.pop();
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
                if end - start > MAX_LINE {
                    // Too long whether or not its end has arrived: the same error however
                    // the bytes were split across reads.
                    return Err(MalformedReply::LineTooLong);
                }
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

/// Whether `b` starts a RESP2 or RESP3 reply.
fn is_marker(b: u8) -> bool {
    matches!(
        b,
        b'+' | b'-'
            | b':'
            | b'$'
            | b'*'
            | b'_'
            | b'#'
            | b','
            | b'('
            | b'!'
            | b'='
            | b'%'
            | b'~'
            | b'>'
            | b'|'
    )
}

/// Checks the line of a reply that is one line: `+`, `-`, `:`, `_`, `#`, `,` or `(`.
fn check_line(marker: u8, line: &[u8]) -> Result<(), MalformedReply> {
    match marker {
        b'+' | b'-' => Ok(()),
        b':' => parse_int(line).map(drop).ok_or(MalformedReply::BadInteger),
        b'_' if line.is_empty() => Ok(()),
        b'_' => Err(MalformedReply::BadNull),
        b'#' => parse_boolean(line).map(drop),
        b',' => parse_double(line).map(drop),
        b'(' => parse_big_number(line).map(drop),
        other => Err(MalformedReply::UnknownType(other)),
    }
}

/// `t` or `f`, the line of a boolean.
pub(super) fn parse_boolean(line: &[u8]) -> Result<bool, MalformedReply> {
    match line {
        b"t" => Ok(true),
        b"f" => Ok(false),
        _ => Err(MalformedReply::BadBoolean),
    }
}

/// The line of a double: what Rust parses as an `f64` (which takes in `inf`, `-inf` and
/// `nan`, in any case).
pub(super) fn parse_double(line: &[u8]) -> Result<f64, MalformedReply> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(MalformedReply::BadDouble)
}

/// The line of a big number: an optional sign, then at least one decimal digit.
pub(super) fn parse_big_number(line: &[u8]) -> Result<&str, MalformedReply> {
    let digits = match line {
        [b'-' | b'+', rest @ ..] => rest,
        _ => line,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(MalformedReply::BadBigNumber);
    }
    std::str::from_utf8(line).map_err(|_| MalformedReply::BadBigNumber)
}

/// The length a `$`, `!` or `=` header announces; `None` for `$-1`, the null bulk.
pub(super) fn blob_len(marker: u8, line: &[u8]) -> Result<Option<usize>, MalformedReply> {
    match parse_int(line).ok_or(MalformedReply::BadInteger)? {
        -1 if marker == b'$' => Ok(None),
        0..4 if marker == b'=' => Err(MalformedReply::BadVerbatim),
        len if (0..=MAX_BULK).contains(&len) => Ok(Some(len as usize)),
        _ => Err(MalformedReply::BadLength(marker)),
    }
}

/// The `len` bytes of data at `start`, once they and their `\r\n` have arrived; for a
/// verbatim string (`=`), checks its format prefix.
pub(super) fn blob_data(
    buf: &[u8],
    start: usize,
    len: usize,
    marker: u8,
) -> Result<Option<&[u8]>, MalformedReply> {
    let end = start + len;
    let Some(terminator) = buf.get(end..end + 2) else {
        return Ok(None);
    };
    if terminator != b"\r\n" {
        return Err(MalformedReply::BulkNotTerminated);
    }
    let data = buf.get(start..end).unwrap_or_default();
    if marker == b'=' && data.get(3) != Some(&b':') {
        return Err(MalformedReply::BadVerbatim);
    }
    Ok(Some(data))
}

/// The elements an aggregate header announces (a map's and an attribute's keys and values
/// count one each); `None` for `*-1`, the null array.
pub(super) fn aggregate_len(marker: u8, line: &[u8]) -> Result<Option<u64>, MalformedReply> {
    match parse_int(line).ok_or(MalformedReply::BadInteger)? {
        -1 if marker == b'*' => Ok(None),
        count if count < 0 => Err(MalformedReply::BadLength(marker)),
        // At most 2 * i64::MAX: no overflow.
        count if matches!(marker, b'%' | b'|') => Ok(Some(count as u64 * 2)),
        count => Ok(Some(count as u64)),
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
        ("null", b"_\r\n"),
        ("true", b"#t\r\n"),
        ("false", b"#f\r\n"),
        ("double", b",1.23\r\n"),
        ("double with exponent", b",-1.5e-3\r\n"),
        ("integral double", b",10\r\n"),
        ("inf", b",inf\r\n"),
        ("-inf", b",-inf\r\n"),
        ("nan", b",nan\r\n"),
        ("big number", b"(3492890328409238509324850943850943825024385\r\n"),
        ("negative big number", b"(-1\r\n"),
        ("verbatim", b"=15\r\ntxt:hello world\r\n"),
        ("verbatim with empty text", b"=4\r\nmkd:\r\n"),
        ("blob error", b"!21\r\nSYNTAX invalid syntax\r\n"),
        ("empty blob error", b"!0\r\n\r\n"),
        ("map", b"%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n"),
        ("empty map", b"%0\r\n"),
        ("set", b"~3\r\n+a\r\n:1\r\n_\r\n"),
        ("empty set", b"~0\r\n"),
        ("push", b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n"),
        (
            "attribute before a reply",
            b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n",
        ),
        (
            "attribute before an element",
            b"*3\r\n:1\r\n:2\r\n|1\r\n+ttl\r\n:3600\r\n:3\r\n",
        ),
        ("empty attribute", b"|0\r\n+OK\r\n"),
        (
            "attributes one after another",
            b"|1\r\n+a\r\n:1\r\n|1\r\n+b\r\n:2\r\n:3\r\n",
        ),
        ("attribute on a null array", b"|1\r\n+a\r\n_\r\n*-1\r\n"),
        (
            "resp3 nested",
            b"%2\r\n~1\r\n#t\r\n>1\r\n=5\r\ntxt:x\r\n(12\r\n%0\r\n",
        ),
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
            (b"$-2\r\n", MalformedReply::BadLength(b'$')),
            (b"$999999999999\r\n", MalformedReply::BadLength(b'$')),
            (b"$3\r\nabcde\r\n", MalformedReply::BulkNotTerminated),
            (b"$3\r\nabc\n\r", MalformedReply::BulkNotTerminated),
            (b"*-2\r\n", MalformedReply::BadLength(b'*')),
            (b"*1\r\nPONG\r\n", MalformedReply::UnknownType(b'P')),
            (b"*2\r\n:1\r\n:x\r\n", MalformedReply::BadInteger),
            (b"_x\r\n", MalformedReply::BadNull),
            (b"#\r\n", MalformedReply::BadBoolean),
            (b"#x\r\n", MalformedReply::BadBoolean),
            (b"#tt\r\n", MalformedReply::BadBoolean),
            (b",\r\n", MalformedReply::BadDouble),
            (b",1.2.3\r\n", MalformedReply::BadDouble),
            (b", 1\r\n", MalformedReply::BadDouble),
            (b",0x10\r\n", MalformedReply::BadDouble),
            (b"(\r\n", MalformedReply::BadBigNumber),
            (b"(-\r\n", MalformedReply::BadBigNumber),
            (b"(12a\r\n", MalformedReply::BadBigNumber),
            (b"(1.5\r\n", MalformedReply::BadBigNumber),
            (b"=3\r\ntxt\r\n", MalformedReply::BadVerbatim),
            (b"=5\r\ntxt-x\r\n", MalformedReply::BadVerbatim),
            (b"=-1\r\n", MalformedReply::BadLength(b'=')),
            (b"!-1\r\n", MalformedReply::BadLength(b'!')),
            (b"!3\r\nabcde\r\n", MalformedReply::BulkNotTerminated),
            (b"%-1\r\n", MalformedReply::BadLength(b'%')),
            (b"~-1\r\n", MalformedReply::BadLength(b'~')),
            (b">-1\r\n", MalformedReply::BadLength(b'>')),
            (b"|-1\r\n", MalformedReply::BadLength(b'|')),
            (b"%x\r\n", MalformedReply::BadInteger),
            (b"%1\r\n:1\r\nX", MalformedReply::UnknownType(b'X')),
            (b"|1\r\n+a\r\n:1\r\n?", MalformedReply::UnknownType(b'?')),
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
    fn an_overlong_line_fails_the_same_however_split() {
        let mut line = b"+".to_vec();
        line.resize(MAX_LINE + 2, b'a');
        line.extend_from_slice(b"\r\n");
        assert_eq!(
            Framer::new().advance(&line),
            Err(MalformedReply::LineTooLong)
        );
        let mut framer = Framer::new();
        assert_eq!(framer.advance(&line[..MAX_LINE]), Ok(None));
        assert_eq!(framer.advance(&line), Err(MalformedReply::LineTooLong));
        // Exactly at the limit is fine.
        let mut line = b"+".to_vec();
        line.resize(MAX_LINE + 1, b'a');
        line.extend_from_slice(b"\r\n");
        assert_eq!(Framer::new().advance(&line), Ok(Some(line.len())));
    }

    #[test]
    fn attributes_and_maps_count_toward_the_depth() {
        let deep = "|0\r\n".repeat(MAX_DEPTH + 1) + "+x\r\n";
        assert_eq!(frame_all(deep.as_bytes()), Err(MalformedReply::TooDeep));
        let ok = "|0\r\n".repeat(MAX_DEPTH) + "+x\r\n";
        assert_eq!(frame_all(ok.as_bytes()), Ok(vec![ok.len()]));
        let deep = format!("{}:1\r\n", "%1\r\n".repeat(MAX_DEPTH + 1));
        assert_eq!(frame_all(deep.as_bytes()), Err(MalformedReply::TooDeep));
    }

    #[test]
    fn an_attribute_alone_is_not_a_reply() {
        let mut framer = Framer::new();
        assert_eq!(framer.advance(b"|1\r\n+a\r\n:1\r\n"), Ok(None));
        assert!(!framer.is_fresh());
        assert_eq!(framer.advance(b"|1\r\n+a\r\n:1\r\n:2\r\n"), Ok(Some(16)));
        assert!(framer.is_fresh());
    }

    #[test]
    fn errors_name_the_kind() {
        for (marker, text) in [
            (b'*', "invalid array length"),
            (b'$', "invalid bulk length"),
            (b'%', "invalid map length"),
            (b'|', "invalid attribute length"),
        ] {
            assert_eq!(MalformedReply::BadLength(marker).to_string(), text);
        }
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

/// Properties over arbitrary input: whatever the bytes and however they are split across
/// reads, the framer never panics and frames them as it frames them whole.
#[cfg(test)]
#[allow(clippy::indexing_slicing)]
pub(super) mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Where `input.len()` bytes are cut into the pieces received: `cuts` brought into
    /// range, in order, ending with the whole length.
    pub(in crate::resp::client) fn cut_points(len: usize, cuts: &[usize]) -> Vec<usize> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
        points.push(len);
        points.sort_unstable();
        points
    }

    /// Runs `step` (a framer's `advance`, or anything finding reply lengths with one) over
    /// `input` received in pieces cut at `cuts`: the length of each reply, then the error
    /// if there is one.
    pub(in crate::resp::client) fn feed_with(
        input: &[u8],
        cuts: &[usize],
        mut step: impl FnMut(&mut Framer, &[u8]) -> Result<Option<usize>, MalformedReply>,
    ) -> (Vec<usize>, Option<MalformedReply>) {
        let mut framer = Framer::new();
        let mut lens = Vec::new();
        let mut pos = 0;
        for received in cut_points(input.len(), cuts) {
            while pos < received {
                match step(&mut framer, &input[pos..received]) {
                    Ok(Some(len)) => {
                        assert!(len > 0 && pos + len <= received);
                        lens.push(len);
                        pos += len;
                    }
                    Ok(None) => break,
                    Err(e) => return (lens, Some(e)),
                }
            }
        }
        (lens, None)
    }

    fn feed(input: &[u8], cuts: &[usize]) -> (Vec<usize>, Option<MalformedReply>) {
        feed_with(input, cuts, Framer::advance)
    }

    /// Bytes built from RESP-shaped pieces, so that deep paths are reached.
    pub(in crate::resp::client) fn protocolish() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            proptest::sample::select(b"+-:$*_#,(!=%~>|".to_vec()).prop_map(|b| vec![b]),
            Just(b"\r\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"-".to_vec()),
            Just(b"t".to_vec()),
            Just(b"f".to_vec()),
            Just(b"inf".to_vec()),
            Just(b"nan".to_vec()),
            Just(b"1.5".to_vec()),
            Just(b"txt:".to_vec()),
            (0u32..12).prop_map(|n| n.to_string().into_bytes()),
            proptest::collection::vec(any::<u8>(), 0..4),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #[test]
        fn any_split_frames_like_whole_input(
            input in prop_oneof![protocolish(), proptest::collection::vec(any::<u8>(), 0..200)],
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
        ) {
            prop_assert_eq!(feed(&input, &[]), feed(&input, &cuts));
        }

        #[test]
        fn byte_at_a_time_frames_like_whole_input(input in protocolish()) {
            let cuts: Vec<usize> = (0..input.len()).collect();
            prop_assert_eq!(feed(&input, &[]), feed(&input, &cuts));
        }
    }
}
