//! Responses: the [`Reply`] a service returns and its wire encoding, RESP2 or RESP3 as the
//! client speaks.
//!
//! A service replies with the richest kind that says what it means (a map for field/value
//! pairs, the null for "nothing", a verbatim string for text meant for people) and the
//! encoding follows the client's [`Protocol`]: a RESP2 client gets the form Redis sends it
//! for the same kind (a flat array for a map, `$-1` for the null, and so on), so a service
//! never branches on the version.

use std::fmt;
use std::io::Write;

use super::session::Protocol;

/// One response value.
///
/// Borrowed, so building a reply allocates nothing. Aggregates are either a slice
/// ([`Reply::Array`], [`Reply::Map`], ...) or streamed: a header ([`Reply::ArrayHeader`],
/// [`Reply::MapHeader`], ...) followed by that many elements (for a map, that many keys and
/// values) sent one by one.
///
/// Each RESP3 kind has Redis's RESP2 form, used when the client speaks RESP2:
///
/// | kind | RESP3 | RESP2 |
/// |---|---|---|
/// | [`Null`](Reply::Null) | `_` | `$-1` |
/// | [`NullArray`](Reply::NullArray) | `_` | `*-1` |
/// | [`Map`](Reply::Map) of n pairs | `%n` | `*2n`, keys and values in turn |
/// | [`Set`](Reply::Set) | `~n` | `*n` |
/// | [`Push`](Reply::Push) | `>n` | `*n` |
/// | [`Boolean`](Reply::Boolean) | `#t` / `#f` | `:1` / `:0` |
/// | [`Double`](Reply::Double) | `,1.5` | `$3\r\n1.5` |
/// | [`BigNumber`](Reply::BigNumber) | `(123` | `$3\r\n123` |
/// | [`Verbatim`](Reply::Verbatim) | `=9\r\ntxt:hello` | `$5\r\nhello` |
///
/// # Examples
/// ```
/// use muxd::resp::{Protocol, Reply};
///
/// let reply = Reply::Map(&[(Reply::Bulk(b"proto"), Reply::Integer(3))]);
/// let mut resp3 = Vec::new();
/// reply.encode(Protocol::Resp3, &mut resp3);
/// assert_eq!(resp3, b"%1\r\n$5\r\nproto\r\n:3\r\n");
/// let mut resp2 = Vec::new();
/// reply.encode(Protocol::Resp2, &mut resp2);
/// assert_eq!(resp2, b"*2\r\n$5\r\nproto\r\n:3\r\n");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
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
    /// The null: `_` in RESP3, the null bulk string `$-1` in RESP2.
    Null,
    /// The null where Redis sends a null array to a RESP2 client: `_` in RESP3, `*-1` in
    /// RESP2.
    NullArray,
    /// `*n` followed by each element.
    Array(&'a [Reply<'a>]),
    /// `*n` alone: the caller sends the `n` elements next.
    ArrayHeader(usize),
    /// Keys and values: `%n` in RESP3, a flat array of `2n` elements in RESP2.
    Map(&'a [(Reply<'a>, Reply<'a>)]),
    /// The header of a map of `n` pairs: the caller sends `n` keys and values next, in turn.
    MapHeader(usize),
    /// An unordered collection: `~n` in RESP3, an array in RESP2.
    Set(&'a [Reply<'a>]),
    /// The header of a set of `n` elements.
    SetHeader(usize),
    /// Data sent without a request (pub/sub messages): `>n` in RESP3, an array in RESP2.
    Push(&'a [Reply<'a>]),
    /// The header of a push of `n` elements.
    PushHeader(usize),
    /// `#t` or `#f` in RESP3; `:1` or `:0` in RESP2.
    Boolean(bool),
    /// `,1.5` in RESP3; in RESP2 a bulk string of the same text. Written as the shortest
    /// decimal that reads back as the same double (`inf`, `-inf`, `nan` as Redis writes
    /// them).
    Double(f64),
    /// `(12345678901234567890` in RESP3; a bulk string of the digits in RESP2. The text
    /// must be an optional `-` and decimal digits.
    BigNumber(&'a str),
    /// Text with its three-byte format (`txt`, `mkd`): `=<len>\r\ntxt:<text>` in RESP3, a
    /// bulk string of the text alone in RESP2. [`Reply::text`] makes a `txt` one.
    Verbatim {
        /// The format: `*b"txt"` for plain text, `*b"mkd"` for markdown.
        format: [u8; 3],
        /// The text, without the format.
        text: &'a [u8],
    },
}

impl Reply<'static> {
    /// `+OK`
    pub const OK: Reply<'static> = Reply::Simple("OK");
    /// `+PONG`
    pub const PONG: Reply<'static> = Reply::Simple("PONG");
}

impl<'a> Reply<'a> {
    /// Plain text for people (`INFO`, `CLIENT LIST`): a verbatim string of format `txt`.
    pub const fn text(text: &'a [u8]) -> Reply<'a> {
        Reply::Verbatim {
            format: *b"txt",
            text,
        }
    }

    /// Appends the wire form of this reply, as `protocol` has it, to `out`.
    pub fn encode(&self, protocol: Protocol, out: &mut Vec<u8>) {
        let resp3 = protocol == Protocol::Resp3;
        match *self {
            Reply::Simple(text) => encode_line(b'+', text.as_bytes(), out),
            Reply::Error(text) => encode_line(b'-', text.as_bytes(), out),
            Reply::Integer(n) => {
                out.push(b':');
                out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Reply::Bulk(data) => encode_bulk(data, out),
            Reply::Null if resp3 => out.extend_from_slice(b"_\r\n"),
            Reply::Null => out.extend_from_slice(b"$-1\r\n"),
            Reply::NullArray if resp3 => out.extend_from_slice(b"_\r\n"),
            Reply::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Reply::Array(items) => encode_all(b'*', items, protocol, out),
            Reply::ArrayHeader(len) => encode_len(b'*', len, out),
            Reply::Map(pairs) => {
                Reply::MapHeader(pairs.len()).encode(protocol, out);
                for (key, value) in pairs {
                    key.encode(protocol, out);
                    value.encode(protocol, out);
                }
            }
            Reply::MapHeader(pairs) if resp3 => encode_len(b'%', pairs, out),
            Reply::MapHeader(pairs) => encode_len(b'*', pairs.saturating_mul(2), out),
            Reply::Set(items) => encode_all(if resp3 { b'~' } else { b'*' }, items, protocol, out),
            Reply::SetHeader(len) => encode_len(if resp3 { b'~' } else { b'*' }, len, out),
            Reply::Push(items) => encode_all(if resp3 { b'>' } else { b'*' }, items, protocol, out),
            Reply::PushHeader(len) => encode_len(if resp3 { b'>' } else { b'*' }, len, out),
            Reply::Boolean(b) if resp3 => {
                out.extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" })
            }
            Reply::Boolean(b) => out.extend_from_slice(if b { b":1\r\n" } else { b":0\r\n" }),
            Reply::Double(d) => {
                let text = format_double(d);
                if resp3 {
                    encode_line(b',', text.as_bytes(), out);
                } else {
                    encode_bulk(text.as_bytes(), out);
                }
            }
            Reply::BigNumber(digits) if resp3 => encode_line(b'(', digits.as_bytes(), out),
            Reply::BigNumber(digits) => encode_bulk(digits.as_bytes(), out),
            Reply::Verbatim { format, text } if resp3 => {
                encode_len(b'=', text.len() + 4, out);
                out.extend_from_slice(&format);
                out.push(b':');
                out.extend_from_slice(text);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Verbatim { text, .. } => encode_bulk(text, out),
        }
    }
}

/// A double as Redis 7.2 writes it: `inf`, `-inf`, `nan`, else the shortest decimal that
/// reads back as the same value (Redis 7.0 wrote 17 significant digits).
fn format_double(d: f64) -> String {
    if d.is_nan() {
        "nan".to_owned()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else {
        d.to_string()
    }
}

fn encode_bulk(data: &[u8], out: &mut Vec<u8>) {
    encode_len(b'$', data.len(), out);
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

fn encode_all(marker: u8, items: &[Reply<'_>], protocol: Protocol, out: &mut Vec<u8>) {
    encode_len(marker, items.len(), out);
    for item in items {
        item.encode(protocol, out);
    }
}

fn encode_len(marker: u8, len: usize, out: &mut Vec<u8>) {
    out.push(marker);
    out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A one-line reply (`+`, `-`, `,`, `(`): any `\r` or `\n` inside would end the line early
/// and desynchronise the client, so they are sent as spaces.
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

/// `-ERR <message>\r\n`, the error every loop-level failure is reported with (the same in
/// RESP2 and RESP3).
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
    use crate::resp::Value;

    fn wire(reply: Reply<'_>, protocol: Protocol) -> Vec<u8> {
        let mut out = Vec::new();
        reply.encode(protocol, &mut out);
        out
    }

    /// Every kind in both versions: `(reply, RESP2 bytes, RESP3 bytes)`.
    #[test]
    fn encodes_every_kind_in_both_versions() {
        let pair = [(Reply::Bulk(b"k"), Reply::Integer(1))];
        let cases: &[(Reply<'_>, &[u8], &[u8])] = &[
            (Reply::OK, b"+OK\r\n", b"+OK\r\n"),
            (Reply::Error("ERR bad"), b"-ERR bad\r\n", b"-ERR bad\r\n"),
            (
                Reply::Error("ERR two\r\nlines"),
                b"-ERR two  lines\r\n",
                b"-ERR two  lines\r\n",
            ),
            (Reply::Integer(-42), b":-42\r\n", b":-42\r\n"),
            (
                Reply::Integer(i64::MIN),
                b":-9223372036854775808\r\n",
                b":-9223372036854775808\r\n",
            ),
            (
                Reply::Bulk(b"a\r\nb"),
                b"$4\r\na\r\nb\r\n",
                b"$4\r\na\r\nb\r\n",
            ),
            (Reply::Bulk(b""), b"$0\r\n\r\n", b"$0\r\n\r\n"),
            (Reply::Null, b"$-1\r\n", b"_\r\n"),
            (Reply::NullArray, b"*-1\r\n", b"_\r\n"),
            (
                Reply::Array(&[Reply::Bulk(b"save"), Reply::Null]),
                b"*2\r\n$4\r\nsave\r\n$-1\r\n",
                b"*2\r\n$4\r\nsave\r\n_\r\n",
            ),
            (Reply::ArrayHeader(3), b"*3\r\n", b"*3\r\n"),
            (
                Reply::Map(&pair),
                b"*2\r\n$1\r\nk\r\n:1\r\n",
                b"%1\r\n$1\r\nk\r\n:1\r\n",
            ),
            (Reply::Map(&[]), b"*0\r\n", b"%0\r\n"),
            (Reply::MapHeader(2), b"*4\r\n", b"%2\r\n"),
            (
                Reply::Set(&[Reply::Simple("fast")]),
                b"*1\r\n+fast\r\n",
                b"~1\r\n+fast\r\n",
            ),
            (Reply::SetHeader(0), b"*0\r\n", b"~0\r\n"),
            (
                Reply::Push(&[Reply::Bulk(b"message")]),
                b"*1\r\n$7\r\nmessage\r\n",
                b">1\r\n$7\r\nmessage\r\n",
            ),
            (Reply::PushHeader(3), b"*3\r\n", b">3\r\n"),
            (Reply::Boolean(true), b":1\r\n", b"#t\r\n"),
            (Reply::Boolean(false), b":0\r\n", b"#f\r\n"),
            (Reply::Double(1.5), b"$3\r\n1.5\r\n", b",1.5\r\n"),
            (Reply::Double(3.0), b"$1\r\n3\r\n", b",3\r\n"),
            (Reply::Double(-0.1), b"$4\r\n-0.1\r\n", b",-0.1\r\n"),
            (Reply::Double(f64::INFINITY), b"$3\r\ninf\r\n", b",inf\r\n"),
            (
                Reply::Double(f64::NEG_INFINITY),
                b"$4\r\n-inf\r\n",
                b",-inf\r\n",
            ),
            (Reply::Double(f64::NAN), b"$3\r\nnan\r\n", b",nan\r\n"),
            (
                Reply::BigNumber("-12345678901234567890"),
                b"$21\r\n-12345678901234567890\r\n",
                b"(-12345678901234567890\r\n",
            ),
            (
                Reply::text(b"a b\r\n"),
                b"$5\r\na b\r\n\r\n",
                b"=9\r\ntxt:a b\r\n\r\n",
            ),
            (
                Reply::Verbatim {
                    format: *b"mkd",
                    text: b"# t",
                },
                b"$3\r\n# t\r\n",
                b"=7\r\nmkd:# t\r\n",
            ),
        ];
        for (reply, resp2, resp3) in cases {
            for (protocol, expected) in [(Protocol::Resp2, resp2), (Protocol::Resp3, resp3)] {
                assert_eq!(
                    wire(*reply, protocol),
                    *expected,
                    "{reply:?} in {protocol:?} -> {:?}",
                    String::from_utf8_lossy(expected)
                );
            }
        }
    }

    /// What the server encodes, the client side parses back to the same kind.
    #[test]
    fn the_client_side_reads_back_every_resp3_kind() {
        let pairs = [(Reply::Simple("a"), Reply::Boolean(true))];
        let reply = Reply::Array(&[
            Reply::Map(&pairs),
            Reply::Set(&[Reply::Null]),
            Reply::Push(&[Reply::Double(2.5)]),
            Reply::BigNumber("7"),
            Reply::text(b"hi"),
        ]);
        let (value, used) = Value::parse(&wire(reply, Protocol::Resp3))
            .unwrap()
            .unwrap();
        assert_eq!(used, wire(reply, Protocol::Resp3).len());
        assert_eq!(
            value,
            Value::Array(vec![
                Value::Map(vec![(Value::Simple(b"a".to_vec()), Value::Boolean(true))]),
                Value::Set(vec![Value::Resp3Null]),
                Value::Push(vec![Value::Double(2.5)]),
                Value::BigNumber("7".to_owned()),
                Value::Verbatim {
                    format: *b"txt",
                    text: b"hi".to_vec()
                },
            ])
        );
    }

    #[test]
    fn error_message_gets_err_prefix_and_one_line() {
        let mut out = Vec::new();
        encode_error_message(&"Protocol error: bad\nthing", &mut out);
        assert_eq!(out, b"-ERR Protocol error: bad thing\r\n");
    }
}
