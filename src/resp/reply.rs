//! RESP2 responses: the [`Reply`] a service returns and its wire encoding.

use std::fmt;
use std::io::Write;

/// One RESP2 response value.
///
/// Borrowed, so building a reply allocates nothing. Arrays are either a slice of replies
/// ([`Reply::Array`]) or streamed: an [`Reply::ArrayHeader`] followed by that many replies
/// sent one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `+OK`: a short status line. `\r` and `\n` in it are sent as spaces.
    Simple(&'a str),
    /// `-ERR message`: the text must start with the error code (`ERR`, `WRONGTYPE`, ...).
    /// `\r` and `\n` in it are sent as spaces.
    Error(&'a str),
    /// `:42`.
    Integer(i64),
    /// `$5\r\nhello`: a binary-safe string.
    Bulk(&'a [u8]),
    /// `$-1`: the null bulk string.
    Null,
    /// `*-1`: the null array.
    NullArray,
    /// `*n` followed by each element.
    Array(&'a [Reply<'a>]),
    /// `*n` alone: the caller sends the `n` elements next.
    ArrayHeader(usize),
}

impl Reply<'static> {
    /// `+OK`
    pub const OK: Reply<'static> = Reply::Simple("OK");
    /// `+PONG`
    pub const PONG: Reply<'static> = Reply::Simple("PONG");
}

impl Reply<'_> {
    /// Appends the wire form of this reply to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Reply::Simple(text) => encode_line(b'+', text.as_bytes(), out),
            Reply::Error(text) => encode_line(b'-', text.as_bytes(), out),
            Reply::Integer(n) => {
                out.push(b':');
                out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Reply::Bulk(data) => {
                encode_len(b'$', data.len(), out);
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Null => out.extend_from_slice(b"$-1\r\n"),
            Reply::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Reply::Array(items) => {
                encode_len(b'*', items.len(), out);
                for item in items {
                    item.encode(out);
                }
            }
            Reply::ArrayHeader(len) => encode_len(b'*', len, out),
        }
    }
}

fn encode_len(marker: u8, len: usize, out: &mut Vec<u8>) {
    out.push(marker);
    out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A `+` or `-` line: any `\r` or `\n` inside would end the line early and desynchronise
/// the client, so they are sent as spaces.
fn encode_line(marker: u8, text: &[u8], out: &mut Vec<u8>) {
    out.push(marker);
    let start = out.len();
    out.extend_from_slice(text);
    sanitize_line(out, start);
    out.extend_from_slice(b"\r\n");
}

fn sanitize_line(out: &mut [u8], from: usize) {
    if let Some(tail) = out.get_mut(from..) {
        for b in tail.iter_mut().filter(|b| matches!(**b, b'\r' | b'\n')) {
            *b = b' ';
        }
    }
}

/// `-ERR <message>\r\n`, the error every loop-level failure is reported with.
pub(crate) fn encode_error_message(message: &dyn fmt::Display, out: &mut Vec<u8>) {
    out.extend_from_slice(b"-ERR ");
    let start = out.len();
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{message}");
    sanitize_line(out, start);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(reply: Reply<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        reply.encode(&mut out);
        out
    }

    #[test]
    fn encodes_every_kind() {
        let cases: &[(Reply<'_>, &[u8])] = &[
            (Reply::OK, b"+OK\r\n"),
            (Reply::Error("ERR bad"), b"-ERR bad\r\n"),
            (Reply::Error("ERR two\r\nlines"), b"-ERR two  lines\r\n"),
            (Reply::Integer(-42), b":-42\r\n"),
            (Reply::Integer(i64::MIN), b":-9223372036854775808\r\n"),
            (Reply::Bulk(b"a\r\nb"), b"$4\r\na\r\nb\r\n"),
            (Reply::Bulk(b""), b"$0\r\n\r\n"),
            (Reply::Null, b"$-1\r\n"),
            (Reply::NullArray, b"*-1\r\n"),
            (
                Reply::Array(&[Reply::Bulk(b"save"), Reply::Bulk(b"")]),
                b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n",
            ),
            (Reply::ArrayHeader(3), b"*3\r\n"),
        ];
        for (reply, expected) in cases {
            assert_eq!(
                wire(*reply),
                *expected,
                "{reply:?} -> {:?}",
                String::from_utf8_lossy(expected)
            );
        }
    }

    #[test]
    fn error_message_gets_err_prefix_and_one_line() {
        let mut out = Vec::new();
        encode_error_message(&"Protocol error: bad\nthing", &mut out);
        assert_eq!(out, b"-ERR Protocol error: bad thing\r\n");
    }
}
