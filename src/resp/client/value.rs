//! [`Value`]: a reply as an owned value, for a client that wants what the server said
//! rather than only where it ends; [`Value::parse`] and [`Framer::parse`] build one.
//!
//! The [`Framer`] finds the end of the reply first and checks it, so building the value
//! never waits for bytes, never recurses deeper than the framer allows, and reserves no
//! more than the bytes that arrived.

use super::frame::{
    Framer, MalformedReply, aggregate_len, blob_data, blob_len, parse_big_number, parse_boolean,
    parse_double,
};
use crate::resp::decode::parse_int;

/// One reply, RESP2 or RESP3, owned.
///
/// Each variant is one kind on the wire, so a test can tell `$-1` from `*-1` from `_`.
/// Strings are kept as the bytes that arrived: RESP does not promise UTF-8. A double
/// holds `NaN` for `,nan`, which equals nothing, so two values holding it are never equal.
///
/// # Examples
/// ```
/// use muxd::resp::Value;
///
/// let (value, used) = Value::parse(b"*2\r\n+OK\r\n:7\r\n")?.expect("a whole reply");
/// assert_eq!(value, Value::Array(vec![Value::Simple(b"OK".to_vec()), Value::Integer(7)]));
/// assert_eq!(used, 13);
/// assert_eq!(Value::parse(b"$5\r\nhel")?, None);
/// # Ok::<(), muxd::resp::MalformedReply>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `+OK`: a simple string.
    Simple(Vec<u8>),
    /// `-ERR message`: an error, its code first.
    Error(Vec<u8>),
    /// `:42`.
    Integer(i64),
    /// `$5\r\nhello`: a bulk string.
    Bulk(Vec<u8>),
    /// `$-1`: RESP2's null bulk string, as the server's [`Reply::Null`](crate::resp::Reply::Null).
    Null,
    /// `*-1`: RESP2's null array.
    NullArray,
    /// `*n` and its elements.
    Array(Vec<Value>),
    /// `_`: RESP3's null, which RESP3 sends where RESP2 sends `$-1` or `*-1`.
    Resp3Null,
    /// `#t` or `#f`.
    Boolean(bool),
    /// `,1.5`, `,inf`, `,-inf`, `,nan`.
    Double(f64),
    /// `(3492890328409238509324850943850943825024385`: an integer of any size, as its digits
    /// (with the sign if there is one).
    BigNumber(String),
    /// `!21\r\nSYNTAX invalid syntax`: an error that may hold any bytes.
    BlobError(Vec<u8>),
    /// `=15\r\ntxt:hello world`: a string with its three-byte format (`txt`, `mkd`).
    Verbatim {
        /// The format, without the `:`.
        format: [u8; 3],
        /// The text after `format:`.
        text: Vec<u8>,
    },
    /// `%n` and its `n` keys and values, in the order they came.
    Map(Vec<(Value, Value)>),
    /// `~n` and its elements.
    Set(Vec<Value>),
    /// `>n` and its elements: data the server sends on its own (pub/sub messages).
    Push(Vec<Value>),
    /// `|n` and its `n` keys and values, then the reply (or element) they describe.
    Attributed {
        /// The attribute's keys and values.
        attributes: Vec<(Value, Value)>,
        /// The reply or element the attribute precedes.
        value: Box<Value>,
    },
}

impl Value {
    /// Parses the reply at the start of `buf`.
    ///
    /// Returns the value and the length of its reply, or `Ok(None)` while the reply is
    /// incomplete. To parse a reply arriving in pieces without searching the first pieces
    /// again, keep a [`Framer`] and call [`Framer::parse`] instead.
    ///
    /// # Errors
    /// Why the bytes are not RESP (see [`Framer::advance`]).
    pub fn parse(buf: &[u8]) -> Result<Option<(Value, usize)>, MalformedReply> {
        Framer::new().parse(buf)
    }
}

impl Framer {
    /// Like [`advance`](Framer::advance), and once the reply is complete, returns it as a
    /// [`Value`] along with its length.
    ///
    /// # Errors
    /// Why the bytes are not RESP, as [`advance`](Framer::advance) finds.
    ///
    /// # Examples
    /// ```
    /// use muxd::resp::{Framer, Value};
    ///
    /// let mut framer = Framer::new();
    /// let mut received = b"%1\r\n+ttl\r\n".to_vec();
    /// assert_eq!(framer.parse(&received)?, None);
    /// received.extend_from_slice(b":60\r\n");
    /// let (value, used) = framer.parse(&received)?.expect("a whole reply");
    /// assert_eq!(value, Value::Map(vec![(Value::Simple(b"ttl".to_vec()), Value::Integer(60))]));
    /// assert_eq!(used, received.len());
    /// # Ok::<(), muxd::resp::MalformedReply>(())
    /// ```
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<(Value, usize)>, MalformedReply> {
        let Some(len) = self.advance(buf)? else {
            return Ok(None);
        };
        let frame = buf.get(..len).unwrap_or_default();
        let (value, _) = read(frame, 0)?;
        Ok(Some((value, len)))
    }
}

/// The value of the reply at `buf[pos..]`, which the framer found complete and valid, and
/// where it ends.
fn read(buf: &[u8], pos: usize) -> Result<(Value, usize), MalformedReply> {
    let marker = buf.get(pos).copied().unwrap_or_default();
    let (line, next) = line_at(buf, pos + 1)?;
    let value = match marker {
        b'+' => Value::Simple(line.to_vec()),
        b'-' => Value::Error(line.to_vec()),
        b':' => Value::Integer(parse_int(line).ok_or(MalformedReply::BadInteger)?),
        b'_' if line.is_empty() => Value::Resp3Null,
        b'_' => return Err(MalformedReply::BadNull),
        b'#' => Value::Boolean(parse_boolean(line)?),
        b',' => Value::Double(parse_double(line)?),
        b'(' => Value::BigNumber(parse_big_number(line)?.to_owned()),
        b'$' | b'!' | b'=' => {
            let Some(len) = blob_len(marker, line)? else {
                return Ok((Value::Null, next));
            };
            let data =
                blob_data(buf, next, len, marker)?.ok_or(MalformedReply::BulkNotTerminated)?;
            let end = next + data.len() + 2;
            let value = match (marker, data.split_first_chunk::<3>()) {
                (b'$', _) => Value::Bulk(data.to_vec()),
                (b'!', _) => Value::BlobError(data.to_vec()),
                (_, Some((format, text))) => Value::Verbatim {
                    format: *format,
                    text: text.get(1..).unwrap_or_default().to_vec(),
                },
                (_, None) => return Err(MalformedReply::BadVerbatim),
            };
            return Ok((value, end));
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let Some(elements) = aggregate_len(marker, line)? else {
                return Ok((Value::NullArray, next));
            };
            return match marker {
                b'*' => read_items(buf, next, elements).map(|(v, end)| (Value::Array(v), end)),
                b'~' => read_items(buf, next, elements).map(|(v, end)| (Value::Set(v), end)),
                b'>' => read_items(buf, next, elements).map(|(v, end)| (Value::Push(v), end)),
                b'%' => read_pairs(buf, next, elements).map(|(v, end)| (Value::Map(v), end)),
                _ => {
                    let (attributes, after) = read_pairs(buf, next, elements)?;
                    let (value, end) = read(buf, after)?;
                    let value = Box::new(value);
                    Ok((Value::Attributed { attributes, value }, end))
                }
            };
        }
        other => return Err(MalformedReply::UnknownType(other)),
    };
    Ok((value, next))
}

/// `count` values one after another from `pos`.
fn read_items(
    buf: &[u8],
    mut pos: usize,
    count: u64,
) -> Result<(Vec<Value>, usize), MalformedReply> {
    let mut items = Vec::with_capacity(room(buf, pos, count));
    for _ in 0..count {
        let (item, next) = read(buf, pos)?;
        items.push(item);
        pos = next;
    }
    Ok((items, pos))
}

/// `elements / 2` keys and values from `pos`.
fn read_pairs(
    buf: &[u8],
    mut pos: usize,
    elements: u64,
) -> Result<(Vec<(Value, Value)>, usize), MalformedReply> {
    let mut pairs = Vec::with_capacity(room(buf, pos, elements / 2));
    for _ in 0..elements / 2 {
        let (key, next) = read(buf, pos)?;
        let (value, next) = read(buf, next)?;
        pairs.push((key, value));
        pos = next;
    }
    Ok((pairs, pos))
}

/// Room to reserve for `count` elements: never more than the bytes left could hold (an
/// element is at least 3 bytes), whatever the header announced.
fn room(buf: &[u8], pos: usize, count: u64) -> usize {
    let fits = buf.len().saturating_sub(pos) / 3;
    usize::try_from(count).map_or(fits, |count| count.min(fits))
}

/// The line starting at `start` and the offset just past its `\r\n`.
fn line_at(buf: &[u8], start: usize) -> Result<(&[u8], usize), MalformedReply> {
    let rest = buf.get(start..).unwrap_or_default();
    let end = rest
        .iter()
        .position(|&b| b == b'\r')
        .ok_or(MalformedReply::BadLineEnd)?;
    if rest.get(end + 1) != Some(&b'\n') {
        return Err(MalformedReply::BadLineEnd);
    }
    Ok((rest.get(..end).unwrap_or_default(), start + end + 2))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> Vec<u8> {
        text.as_bytes().to_vec()
    }

    fn pair(key: &str, value: Value) -> (Value, Value) {
        (Value::Simple(bytes(key)), value)
    }

    /// Every kind, alone and nested, with the value it parses into.
    fn every_kind() -> Vec<(&'static [u8], Value)> {
        vec![
            (b"+PONG\r\n", Value::Simple(bytes("PONG"))),
            (b"+\r\n", Value::Simple(Vec::new())),
            (b"-ERR no\r\n", Value::Error(bytes("ERR no"))),
            (b":-42\r\n", Value::Integer(-42)),
            (b":9223372036854775807\r\n", Value::Integer(i64::MAX)),
            (b"$4\r\na\r\nb\r\n", Value::Bulk(bytes("a\r\nb"))),
            (b"$0\r\n\r\n", Value::Bulk(Vec::new())),
            (b"$-1\r\n", Value::Null),
            (b"*-1\r\n", Value::NullArray),
            (b"*0\r\n", Value::Array(Vec::new())),
            (
                b"*3\r\n:1\r\n*1\r\n$1\r\nx\r\n$-1\r\n",
                Value::Array(vec![
                    Value::Integer(1),
                    Value::Array(vec![Value::Bulk(bytes("x"))]),
                    Value::Null,
                ]),
            ),
            (b"_\r\n", Value::Resp3Null),
            (b"#t\r\n", Value::Boolean(true)),
            (b"#f\r\n", Value::Boolean(false)),
            (b",1.23\r\n", Value::Double(1.23)),
            (b",-1.5e-3\r\n", Value::Double(-0.0015)),
            (b",10\r\n", Value::Double(10.0)),
            (b",inf\r\n", Value::Double(f64::INFINITY)),
            (b",-inf\r\n", Value::Double(f64::NEG_INFINITY)),
            (
                b"(3492890328409238509324850943850943825024385\r\n",
                Value::BigNumber("3492890328409238509324850943850943825024385".to_owned()),
            ),
            (b"(-7\r\n", Value::BigNumber("-7".to_owned())),
            (
                b"=15\r\ntxt:hello world\r\n",
                Value::Verbatim {
                    format: *b"txt",
                    text: bytes("hello world"),
                },
            ),
            (
                b"=4\r\nmkd:\r\n",
                Value::Verbatim {
                    format: *b"mkd",
                    text: Vec::new(),
                },
            ),
            (
                b"!21\r\nSYNTAX invalid syntax\r\n",
                Value::BlobError(bytes("SYNTAX invalid syntax")),
            ),
            (
                b"%2\r\n+first\r\n:1\r\n+second\r\n_\r\n",
                Value::Map(vec![
                    pair("first", Value::Integer(1)),
                    pair("second", Value::Resp3Null),
                ]),
            ),
            (b"%0\r\n", Value::Map(Vec::new())),
            (
                b"~2\r\n+a\r\n#f\r\n",
                Value::Set(vec![Value::Simple(bytes("a")), Value::Boolean(false)]),
            ),
            (
                b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n",
                Value::Push(vec![
                    Value::Bulk(bytes("message")),
                    Value::Bulk(bytes("ch")),
                    Value::Bulk(bytes("hello")),
                ]),
            ),
            (
                b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.5\r\n*1\r\n:2039123\r\n",
                Value::Attributed {
                    attributes: vec![pair(
                        "key-popularity",
                        Value::Map(vec![(Value::Bulk(bytes("a")), Value::Double(0.5))]),
                    )],
                    value: Box::new(Value::Array(vec![Value::Integer(2039123)])),
                },
            ),
            (
                b"*2\r\n|1\r\n+ttl\r\n:3600\r\n+v\r\n|0\r\n:3\r\n",
                Value::Array(vec![
                    Value::Attributed {
                        attributes: vec![pair("ttl", Value::Integer(3600))],
                        value: Box::new(Value::Simple(bytes("v"))),
                    },
                    Value::Attributed {
                        attributes: Vec::new(),
                        value: Box::new(Value::Integer(3)),
                    },
                ]),
            ),
        ]
    }

    #[test]
    fn parses_every_kind_whole() {
        for (wire, expected) in every_kind() {
            let got = Value::parse(wire);
            assert_eq!(
                got,
                Ok(Some((expected, wire.len()))),
                "{}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn parses_every_kind_split_at_every_byte() {
        for (wire, expected) in every_kind() {
            for cut in 0..wire.len() {
                let mut framer = Framer::new();
                assert_eq!(framer.parse(&wire[..cut]), Ok(None), "cut {cut}");
                assert_eq!(
                    framer.parse(wire),
                    Ok(Some((expected.clone(), wire.len()))),
                    "{} cut {cut}",
                    String::from_utf8_lossy(wire)
                );
            }
        }
    }

    #[test]
    fn parses_every_kind_fed_one_byte_at_a_time() {
        for (wire, expected) in every_kind() {
            let mut framer = Framer::new();
            for end in 0..wire.len() {
                assert_eq!(framer.parse(&wire[..end]), Ok(None));
            }
            assert_eq!(framer.parse(wire), Ok(Some((expected, wire.len()))));
        }
    }

    #[test]
    fn parses_pipelined_replies_one_by_one() {
        let kinds = every_kind();
        let input: Vec<u8> = kinds.iter().flat_map(|(wire, _)| wire.to_vec()).collect();
        let mut framer = Framer::new();
        let mut pos = 0;
        for (_, expected) in kinds {
            let (value, used) = framer.parse(&input[pos..]).unwrap().unwrap();
            assert_eq!(value, expected);
            pos += used;
        }
        assert_eq!(pos, input.len());
    }

    #[test]
    fn nan_parses() {
        let (value, _) = Value::parse(b",nan\r\n").unwrap().unwrap();
        assert!(matches!(value, Value::Double(d) if d.is_nan()));
    }

    #[test]
    fn malformed_replies_are_refused_as_the_framer_refuses_them() {
        for input in [
            &b"PONG\r\n"[..],
            b"+a\rb\r\n",
            b":1x\r\n",
            b"$-2\r\n",
            b"$1\r\nab\r\n",
            b"*-2\r\n",
            b"_ \r\n",
            b"#y\r\n",
            b",one\r\n",
            b"(1e3\r\n",
            b"=5\r\ntxtxx\r\n",
            b"%1\r\n+k\r\nX\r\n",
            b"|1\r\n+k\r\n:1\r\n?",
        ] {
            let expected = Framer::new().advance(input).unwrap_err();
            assert_eq!(
                Value::parse(input),
                Err(expected),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn a_huge_announced_count_reserves_nothing_big() {
        assert_eq!(Value::parse(b"*9223372036854775807\r\n:1\r\n"), Ok(None));
        assert_eq!(room(b"*1000000\r\n", 11, 1_000_000), 0);
        assert_eq!(room(&[b'x'; 30], 0, u64::MAX), 10);
    }
}

/// Properties: parsing agrees with framing on any bytes split anywhere, and every value
/// survives the wire.
#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod properties {
    use proptest::prelude::*;

    use super::super::frame::properties::{cut_points, feed_with, protocolish};
    use super::*;

    /// The wire form of `value` (what a RESP3 server would send).
    fn wire(value: &Value, out: &mut Vec<u8>) {
        fn line(marker: u8, text: &[u8], out: &mut Vec<u8>) {
            out.push(marker);
            out.extend_from_slice(text);
            out.extend_from_slice(b"\r\n");
        }
        fn blob(marker: u8, data: &[u8], out: &mut Vec<u8>) {
            line(marker, data.len().to_string().as_bytes(), out);
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        fn items(marker: u8, items: &[Value], out: &mut Vec<u8>) {
            line(marker, items.len().to_string().as_bytes(), out);
            items.iter().for_each(|item| wire(item, out));
        }
        fn pairs(marker: u8, pairs: &[(Value, Value)], out: &mut Vec<u8>) {
            line(marker, pairs.len().to_string().as_bytes(), out);
            for (key, value) in pairs {
                wire(key, out);
                wire(value, out);
            }
        }
        match value {
            Value::Simple(text) => line(b'+', text, out),
            Value::Error(text) => line(b'-', text, out),
            Value::Integer(n) => line(b':', n.to_string().as_bytes(), out),
            Value::Bulk(data) => blob(b'$', data, out),
            Value::Null => line(b'$', b"-1", out),
            Value::NullArray => line(b'*', b"-1", out),
            Value::Array(values) => items(b'*', values, out),
            Value::Resp3Null => line(b'_', b"", out),
            Value::Boolean(b) => line(b'#', if *b { b"t" } else { b"f" }, out),
            Value::Double(d) => line(b',', format!("{d:?}").as_bytes(), out),
            Value::BigNumber(digits) => line(b'(', digits.as_bytes(), out),
            Value::BlobError(data) => blob(b'!', data, out),
            Value::Verbatim { format, text } => {
                blob(b'=', &[&format[..], b":", text].concat(), out)
            }
            Value::Map(map) => pairs(b'%', map, out),
            Value::Set(values) => items(b'~', values, out),
            Value::Push(values) => items(b'>', values, out),
            Value::Attributed { attributes, value } => {
                pairs(b'|', attributes, out);
                wire(value, out);
            }
        }
    }

    fn line_text() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            any::<u8>().prop_filter("no line end", |b| !matches!(b, b'\r' | b'\n')),
            0..12,
        )
    }

    fn any_value() -> impl Strategy<Value = Value> {
        let data = proptest::collection::vec(any::<u8>(), 0..16);
        let leaf = prop_oneof![
            line_text().prop_map(Value::Simple),
            line_text().prop_map(Value::Error),
            any::<i64>().prop_map(Value::Integer),
            data.clone().prop_map(Value::Bulk),
            Just(Value::Null),
            Just(Value::NullArray),
            Just(Value::Resp3Null),
            any::<bool>().prop_map(Value::Boolean),
            any::<f64>()
                .prop_filter("nan equals nothing", |d| !d.is_nan())
                .prop_map(Value::Double),
            "-?[0-9]{1,40}".prop_map(Value::BigNumber),
            data.clone().prop_map(Value::BlobError),
            (any::<[u8; 3]>(), data).prop_map(|(format, text)| Value::Verbatim { format, text }),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            let pairs = proptest::collection::vec((inner.clone(), inner.clone()), 0..3);
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Set),
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Push),
                pairs.clone().prop_map(Value::Map),
                (pairs, inner).prop_map(|(attributes, value)| Value::Attributed {
                    attributes,
                    value: Box::new(value),
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn values_survive_the_wire(
            values in proptest::collection::vec(any_value(), 1..4),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
        ) {
            let mut input = Vec::new();
            for value in &values {
                wire(value, &mut input);
            }
            let mut framer = Framer::new();
            let mut got = Vec::new();
            let mut pos = 0;
            for received in cut_points(input.len(), &cuts) {
                while let Some((value, used)) = framer.parse(&input[pos..received]).unwrap() {
                    got.push(value);
                    pos += used;
                }
            }
            prop_assert_eq!(got, values);
        }

        #[test]
        fn parsing_agrees_with_framing(
            input in prop_oneof![protocolish(), proptest::collection::vec(any::<u8>(), 0..200)],
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
        ) {
            let parsed = feed_with(&input, &cuts, |framer, buf| {
                framer.parse(buf).map(|found| found.map(|(_, len)| len))
            });
            prop_assert_eq!(parsed, feed_with(&input, &[], Framer::advance));
        }
    }
}
