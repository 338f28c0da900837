//! The incremental RESP2 request decoder.
//!
//! A request's first byte picks the form: `*` starts a multibulk array of bulk strings,
//! anything else an inline command line. A request split across reads is resumed from
//! [`RespDecodeState`] (how many arguments are complete, where the next begins, how far a
//! line was already searched), so feeding a request one byte at a time costs time linear
//! in its size. No length announced by the peer reserves memory: buffers grow only with
//! bytes that actually arrived, and an announcement above the limits is refused on sight.
//! Until its client has authenticated (when the session says one must), a request is held
//! to Redis's far smaller limits on what it may announce.

use super::error::RespError;
use super::inline::split_inline;
use super::session::{UNAUTHENTICATED_MAX_ARGS, UNAUTHENTICATED_MAX_BULK};
use super::{RespLimits, Span};

/// A client's progress through a request that has not fully arrived yet.
///
/// All offsets count from the first byte of that request, which is where the loop's next
/// `decode` call starts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RespDecodeState {
    /// Elements announced by the `*n` header being received; 0 when outside a multibulk.
    args_total: usize,
    /// Elements of it received in full.
    args_done: usize,
    /// Where the next element's `$` header starts.
    offset: usize,
    /// How far the current line was searched for its end without finding it.
    scanned: usize,
}

/// What [`decode`] found at the start of the input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A multibulk request of that many bytes; its spans index the input.
    Multibulk(usize),
    /// An inline request of that many bytes; its spans index the inline scratch buffer.
    Inline(usize),
    /// That many bytes carried no request.
    Ignored(usize),
    /// More bytes are needed.
    Incomplete,
}

/// Decodes the request at the start of `input`, filling `spans` (and `inline` for an
/// inline command). `auth_required`: the client has yet to authenticate.
pub(crate) fn decode(
    limits: &RespLimits,
    auth_required: bool,
    state: &mut RespDecodeState,
    input: &[u8],
    spans: &mut Vec<Span>,
    inline: &mut Vec<u8>,
) -> Result<Outcome, RespError> {
    match input.first() {
        None => Ok(Outcome::Incomplete),
        Some(b'*') => decode_multibulk(limits, auth_required, state, input, spans),
        Some(_) => decode_inline(limits, state, input, spans, inline),
    }
}

fn decode_multibulk(
    limits: &RespLimits,
    auth_required: bool,
    state: &mut RespDecodeState,
    input: &[u8],
    spans: &mut Vec<Span>,
) -> Result<Outcome, RespError> {
    if state.args_total == 0 {
        let Some((digits, next)) = find_line(
            input,
            1,
            &mut state.scanned,
            limits.max_inline_len,
            RespError::TooBigMultibulkCount,
        )?
        else {
            return Ok(Outcome::Incomplete);
        };
        let count = parse_int(digits).ok_or(RespError::InvalidMultibulkLength)?;
        if count > i64::from(i32::MAX) || count > limits.max_multibulk_len as i64 {
            return Err(RespError::InvalidMultibulkLength);
        }
        if count > UNAUTHENTICATED_MAX_ARGS && auth_required {
            return Err(RespError::UnauthenticatedMultibulkLength);
        }
        if count <= 0 {
            // `*0` and `*-1` carry no command: Redis drops them silently.
            *state = RespDecodeState::default();
            return Ok(Outcome::Ignored(next));
        }
        state.args_total = count as usize;
        state.args_done = 0;
        state.offset = next;
    }

    // Positions of elements completed by an earlier call were not kept; collect them only
    // when starting from the first element.
    let resumed = state.args_done > 0;
    spans.clear();
    while state.args_done < state.args_total {
        let start = state.offset;
        let Some(&marker) = input.get(start) else {
            return Ok(Outcome::Incomplete);
        };
        if marker != b'$' {
            return Err(RespError::ExpectedDollar(marker));
        }
        let Some((digits, data_start)) = find_line(
            input,
            start + 1,
            &mut state.scanned,
            limits.max_inline_len,
            RespError::TooBigBulkCount,
        )?
        else {
            return Ok(Outcome::Incomplete);
        };
        let len = parse_int(digits).ok_or(RespError::InvalidBulkLength)?;
        if len < 0 || len as u64 > limits.max_bulk_len as u64 {
            return Err(RespError::InvalidBulkLength);
        }
        if len > UNAUTHENTICATED_MAX_BULK && auth_required {
            return Err(RespError::UnauthenticatedBulkLength);
        }
        let data_end = data_start + len as usize;
        let Some(terminator) = input.get(data_end..data_end + 2) else {
            // The header is parsed again when more bytes arrive: it is a few bytes long,
            // and resuming there keeps the state small.
            return Ok(Outcome::Incomplete);
        };
        if terminator != b"\r\n" {
            return Err(RespError::BulkNotTerminated);
        }
        if !resumed {
            spans.push(Span {
                start: data_start,
                end: data_end,
            });
        }
        state.args_done += 1;
        state.offset = data_end + 2;
    }

    let used = state.offset;
    *state = RespDecodeState::default();
    if resumed {
        // The whole request is here now: one more pass from its start collects every
        // argument's position (linear, and only for requests that spanned reads).
        return decode_multibulk(limits, auth_required, state, input, spans);
    }
    Ok(Outcome::Multibulk(used))
}

fn decode_inline(
    limits: &RespLimits,
    state: &mut RespDecodeState,
    input: &[u8],
    spans: &mut Vec<Span>,
    inline: &mut Vec<u8>,
) -> Result<Outcome, RespError> {
    let from = state.scanned.min(input.len());
    let rest = input.get(from..).unwrap_or_default();
    let Some(found) = rest.iter().position(|&b| b == b'\n') else {
        if input.len() > limits.max_inline_len {
            return Err(RespError::TooBigInline);
        }
        state.scanned = input.len();
        return Ok(Outcome::Incomplete);
    };
    let newline = from + found;
    state.scanned = 0;
    if newline > limits.max_inline_len {
        return Err(RespError::TooBigInline);
    }
    let mut line = input.get(..newline).unwrap_or_default();
    if let Some(stripped) = line.strip_suffix(b"\r") {
        line = stripped;
    }
    split_inline(line, inline, spans)?;
    if spans.is_empty() {
        Ok(Outcome::Ignored(newline + 1))
    } else {
        Ok(Outcome::Inline(newline + 1))
    }
}

/// Finds the `\r\n` that ends the line starting at `start`.
///
/// Returns the line's bytes (without `\r\n`) and the offset just past it, or `None` when
/// the line end has not arrived; `scanned` remembers how far the search got, so the next
/// call does not search the same bytes again.
fn find_line<'a>(
    input: &'a [u8],
    start: usize,
    scanned: &mut usize,
    max_len: usize,
    too_big: RespError,
) -> Result<Option<(&'a [u8], usize)>, RespError> {
    let from = (*scanned).max(start);
    let rest = input.get(from..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'\r') {
        Some(found) => {
            let cr = from + found;
            if cr - start > max_len {
                // Too long whether or not its end has arrived: the same error however
                // the bytes were split across reads.
                return Err(too_big);
            }
            match input.get(cr + 1) {
                None => {
                    *scanned = cr;
                    Ok(None)
                }
                Some(b'\n') => {
                    *scanned = 0;
                    Ok(Some((input.get(start..cr).unwrap_or_default(), cr + 2)))
                }
                Some(_) => Err(RespError::ExpectedLineFeed),
            }
        }
        None => {
            if input.len().saturating_sub(start) > max_len {
                return Err(too_big);
            }
            *scanned = input.len();
            Ok(None)
        }
    }
}

/// Parses a decimal integer the way Redis's `string2ll` does: optional `-`, no `+`, no
/// leading zeros, no spaces, no overflow. Used for lengths on the wire and for integer
/// arguments; RESP integer replies follow the same rules.
pub fn parse_int(digits: &[u8]) -> Option<i64> {
    let (negative, body) = match digits {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, digits),
    };
    match body {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    if body.len() > 19 {
        return None;
    }
    let mut value: u64 = 0;
    for &b in body {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    if negative {
        if value > i64::MAX as u64 + 1 {
            None
        } else {
            Some((value as i64).wrapping_neg())
        }
    } else {
        i64::try_from(value).ok()
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::codec::{Codec, Decoded};
    use crate::resp::{RespCodec, RespSession, encode_request};

    /// Decodes everything in `input`, fed whole: requests as word lists, or the error.
    fn decode_all(codec: &mut RespCodec, input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, RespError> {
        let mut state = RespDecodeState::default();
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            match codec.decode(RespSession::default(), &mut state, &input[pos..])? {
                Decoded::Request(args, used) => {
                    out.push(args.iter().map(<[u8]>::to_vec).collect());
                    pos += used;
                }
                Decoded::Ignored(used) => pos += used,
                Decoded::Incomplete => return Ok(out),
            }
        }
    }

    fn words(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn table_of_requests_and_their_outcomes() {
        type Expected = Result<Vec<Vec<Vec<u8>>>, &'static str>;
        let cases: Vec<(&str, &[u8], Expected)> = vec![
            ("inline ping", b"PING\r\n", Ok(vec![words(&["PING"])])),
            ("inline lf only", b"PING\n", Ok(vec![words(&["PING"])])),
            (
                "multibulk echo",
                b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n",
                Ok(vec![words(&["ECHO", "hi"])]),
            ),
            ("empty bulk", b"*1\r\n$0\r\n\r\n", Ok(vec![words(&[""])])),
            (
                "empty line ignored",
                b"\r\nPING\r\n",
                Ok(vec![words(&["PING"])]),
            ),
            ("*0 ignored", b"*0\r\nPING\r\n", Ok(vec![words(&["PING"])])),
            (
                "*-1 ignored",
                b"*-1\r\nPING\r\n",
                Ok(vec![words(&["PING"])]),
            ),
            (
                "*-10 ignored",
                b"*-10\r\nPING\r\n",
                Ok(vec![words(&["PING"])]),
            ),
            ("incomplete header", b"*2\r\n$4\r\nEC", Ok(vec![])),
            (
                "out of range multibulk length",
                b"*3000000000\r\n",
                Err("Protocol error: invalid multibulk length"),
            ),
            (
                "non-number multibulk length",
                b"*abc\r\n",
                Err("Protocol error: invalid multibulk length"),
            ),
            (
                "wrong payload header",
                b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
                Err("Protocol error: expected '$', got 'f'"),
            ),
            (
                "negative bulk length",
                b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n",
                Err("Protocol error: invalid bulk length"),
            ),
            (
                "out of range bulk length",
                b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n",
                Err("Protocol error: invalid bulk length"),
            ),
            (
                "non-number bulk length",
                b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n",
                Err("Protocol error: invalid bulk length"),
            ),
            (
                "multibulk without bulk arguments",
                b"*1\r\nfoo\r\n",
                Err("Protocol error: expected '$', got 'f'"),
            ),
            (
                "bulk not followed by crlf",
                b"*1\r\n$4\r\nPINGxx",
                Err("Protocol error: expected '\\r\\n' after bulk data"),
            ),
            (
                "cr without lf",
                b"*1\rX$4\r\nPING\r\n",
                Err("Protocol error: expected '\\n' after '\\r'"),
            ),
            (
                "unbalanced quotes",
                b"set \"\"\"test-key\"\"\" test-value\r\n",
                Err("Protocol error: unbalanced quotes in request"),
            ),
            (
                "nul in inline",
                b"PI\0NG\r\n",
                Err("Protocol error: NUL byte in inline request"),
            ),
            (
                "expected dollar shows non-printable escaped",
                b"*1\r\n\x01\r\n",
                Err("Protocol error: expected '$', got '\\x01'"),
            ),
            (
                "leading plus in length",
                b"*+1\r\n",
                Err("Protocol error: invalid multibulk length"),
            ),
            (
                "leading zero in bulk length",
                b"*1\r\n$04\r\nPING\r\n",
                Err("Protocol error: invalid bulk length"),
            ),
            (
                "pipelined mixed forms",
                b"PING\r\n*1\r\n$4\r\nPING\r\nECHO \"a b\"\r\n",
                Ok(vec![
                    words(&["PING"]),
                    words(&["PING"]),
                    words(&["ECHO", "a b"]),
                ]),
            ),
        ];
        for (name, input, expected) in cases {
            let mut codec = RespCodec::default();
            let got = decode_all(&mut codec, input).map_err(|e| e.to_string());
            let expected = expected.map_err(str::to_owned);
            assert_eq!(got, expected, "case {name:?}");
        }
    }

    #[test]
    fn request_fed_one_byte_at_a_time_decodes_the_same() {
        let input =
            b"*3\r\n$3\r\nSET\r\n$5\r\nmykey\r\n$7\r\nmyvalue\r\nPING\r\n*1\r\n$4\r\nPING\r\n";
        let mut codec = RespCodec::default();
        let whole = decode_all(&mut codec, input).unwrap();
        assert_eq!(whole.len(), 3);

        let mut state = RespDecodeState::default();
        let mut buffer = Vec::new();
        let mut got = Vec::new();
        for &b in input.iter() {
            buffer.push(b);
            loop {
                match codec
                    .decode(RespSession::default(), &mut state, &buffer)
                    .unwrap()
                {
                    Decoded::Request(args, used) => {
                        got.push(args.iter().map(<[u8]>::to_vec).collect::<Vec<_>>());
                        buffer.drain(..used);
                    }
                    Decoded::Ignored(used) => {
                        buffer.drain(..used);
                    }
                    Decoded::Incomplete => break,
                }
            }
        }
        assert_eq!(got, whole);
        assert!(buffer.is_empty());
    }

    #[test]
    fn limits_refuse_announcements_before_data_arrives() {
        let limits = RespLimits {
            max_bulk_len: 100,
            max_multibulk_len: 10,
            max_inline_len: 32,
        };
        let mut codec = RespCodec::new(limits);
        let e = decode_all(&mut codec, b"*11\r\n").unwrap_err();
        assert_eq!(e, RespError::InvalidMultibulkLength);
        let e = decode_all(&mut codec, b"*1\r\n$101\r\n").unwrap_err();
        assert_eq!(e, RespError::InvalidBulkLength);
        let e = decode_all(&mut codec, &[b'a'; 40]).unwrap_err();
        assert_eq!(e, RespError::TooBigInline);
        let e = decode_all(&mut codec, b"*1\r\n$1111111111111111111111111111111111").unwrap_err();
        assert_eq!(e, RespError::TooBigBulkCount);
        let e = decode_all(&mut codec, b"*1111111111111111111111111111111111").unwrap_err();
        assert_eq!(e, RespError::TooBigMultibulkCount);
        let mut long_line = vec![b'a'; 40];
        long_line.extend_from_slice(b"\r\n");
        let e = decode_all(&mut codec, &long_line).unwrap_err();
        assert_eq!(e, RespError::TooBigInline);
        // Exactly at the limits is fine.
        let mut ok = b"*1\r\n$100\r\n".to_vec();
        ok.extend_from_slice(&[b'x'; 100]);
        ok.extend_from_slice(b"\r\n");
        assert_eq!(decode_all(&mut codec, &ok).unwrap().len(), 1);
    }

    /// Before authentication, Redis's limits: at most 10 arguments, bulks of at most 16384
    /// bytes; a malformed or over-the-limits header still gets its own error first.
    #[test]
    fn unauthenticated_limits_apply_only_while_auth_is_required() {
        let restricted = RespSession {
            auth_required: true,
            ..RespSession::default()
        };
        let cases: &[(&[u8], Option<RespError>)] = &[
            (b"*11\r\n", Some(RespError::UnauthenticatedMultibulkLength)),
            (b"*10\r\n", None),
            (
                b"*1\r\n$16385\r\n",
                Some(RespError::UnauthenticatedBulkLength),
            ),
            (b"*1\r\n$16384\r\n", None),
            (b"*3000000000\r\n", Some(RespError::InvalidMultibulkLength)),
            (b"*1\r\n$-5\r\n", Some(RespError::InvalidBulkLength)),
            (b"*x\r\n", Some(RespError::InvalidMultibulkLength)),
        ];
        for (input, expected) in cases {
            for cut in 1..=input.len() {
                let mut codec = RespCodec::default();
                let mut state = RespDecodeState::default();
                let first = codec.decode(restricted, &mut state, &input[..cut]);
                let outcome = match first {
                    Ok(Decoded::Incomplete) => codec.decode(restricted, &mut state, input),
                    other => other,
                };
                assert_eq!(outcome.err(), *expected, "{input:?} cut at {cut}");
            }
            // Without the restriction only the real limits apply.
            let mut codec = RespCodec::default();
            let outcome = codec.decode(
                RespSession::default(),
                &mut RespDecodeState::default(),
                input,
            );
            assert!(
                !matches!(
                    outcome,
                    Err(RespError::UnauthenticatedBulkLength
                        | RespError::UnauthenticatedMultibulkLength)
                ),
                "{input:?}"
            );
        }
    }

    /// Found by the fuzzer: a header line longer than the limit gave "invalid multibulk
    /// length" when it arrived whole but "too big mbulk count string" when split.
    #[test]
    fn overlong_header_line_fails_the_same_however_split() {
        let limits = RespLimits {
            max_inline_len: 8,
            ..RespLimits::default()
        };
        let input = b"*1111111111111\r\n";
        for cut in 1..input.len() {
            let mut codec = RespCodec::new(limits);
            let mut state = RespDecodeState::default();
            let first = codec.decode(RespSession::default(), &mut state, &input[..cut]);
            let outcome = match first {
                Ok(Decoded::Incomplete) => codec
                    .decode(RespSession::default(), &mut state, input)
                    .map(|_| ()),
                other => other.map(|_| ()),
            };
            assert_eq!(
                outcome,
                Err(RespError::TooBigMultibulkCount),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn many_arguments_decode() {
        let mut input = Vec::new();
        encode_request((0..20000).map(|i| i.to_string()), &mut input);
        let mut codec = RespCodec::default();
        let got = decode_all(&mut codec, &input).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].len(), 20000);
        assert_eq!(got[0][19999], b"19999");
    }

    #[test]
    fn parse_int_follows_string2ll() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-1"), Some(-1));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"99999999999999999999",
            b"1a",
        ] {
            assert_eq!(parse_int(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}

/// Properties over arbitrary input: feeding bytes in any split gives the same requests (and
/// the same error) as feeding them whole, valid requests round-trip, nothing panics.
/// `PROPTEST_CASES=100000 cargo test --lib resp::decode::properties` runs them long.
#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::codec::{Codec, Decoded};
    use crate::resp::{RespCodec, RespSession, encode_request};

    type Requests = Vec<Vec<Vec<u8>>>;

    /// Feeds `input` cut at `cuts`, as the loop does: append, decode until incomplete.
    fn feed(input: &[u8], cuts: &[usize]) -> (Requests, Option<RespError>) {
        // Small limits, so that arbitrary input reaches them.
        feed_with(
            RespLimits {
                max_bulk_len: 4096,
                max_multibulk_len: 64,
                max_inline_len: 256,
            },
            input,
            cuts,
        )
    }

    fn feed_with(
        limits: RespLimits,
        input: &[u8],
        cuts: &[usize],
    ) -> (Requests, Option<RespError>) {
        let mut codec = RespCodec::new(limits);
        let mut state = RespDecodeState::default();
        let mut buffer: Vec<u8> = Vec::new();
        let mut requests = Vec::new();
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        points.push(input.len());
        points.sort_unstable();
        let mut from = 0;
        for to in points {
            buffer.extend_from_slice(&input[from..to]);
            from = to;
            loop {
                match codec.decode(RespSession::default(), &mut state, &buffer) {
                    Ok(Decoded::Request(args, used)) => {
                        assert!(used > 0 && used <= buffer.len());
                        requests.push(args.iter().map(<[u8]>::to_vec).collect());
                        buffer.drain(..used);
                    }
                    Ok(Decoded::Ignored(used)) => {
                        assert!(used > 0 && used <= buffer.len());
                        buffer.drain(..used);
                    }
                    Ok(Decoded::Incomplete) => break,
                    Err(e) => return (requests, Some(e)),
                }
            }
        }
        (requests, None)
    }

    /// An inline command line that `split_inline` reads back as `words` (double quotes
    /// with escapes for anything that is not a plain printable word).
    fn inline(words: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, w) in words.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.push(b'"');
            for &b in w {
                match b {
                    b'"' => out.extend_from_slice(b"\\\""),
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    0x21..=0x7e | b' ' => out.push(b),
                    other => out.extend_from_slice(format!("\\x{other:02x}").as_bytes()),
                }
            }
            out.push(b'"');
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// Bytes built from protocol-shaped pieces, so that deep paths are reached.
    fn protocolish() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"*".to_vec()),
            Just(b"$".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\"".to_vec()),
            Just(b"'".to_vec()),
            Just(b"\\".to_vec()),
            Just(b"-".to_vec()),
            Just(b" ".to_vec()),
            Just(b"PING".to_vec()),
            Just(b"\0".to_vec()),
            (0u32..70).prop_map(|n| n.to_string().into_bytes()),
            proptest::collection::vec(any::<u8>(), 0..8),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
    }

    fn words() -> impl Strategy<Value = Vec<Vec<u8>>> {
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..8)
    }

    proptest! {
        #[test]
        fn any_split_decodes_like_whole_input(
            input in prop_oneof![protocolish(), proptest::collection::vec(any::<u8>(), 0..300)],
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
        ) {
            let whole = feed(&input, &[]);
            let split = feed(&input, &cuts);
            prop_assert_eq!(whole, split);
        }

        #[test]
        fn byte_at_a_time_decodes_like_whole_input(input in protocolish()) {
            let cuts: Vec<usize> = (0..input.len()).collect();
            prop_assert_eq!(feed(&input, &[]), feed(&input, &cuts));
        }

        #[test]
        fn valid_requests_round_trip(
            requests in proptest::collection::vec(words(), 1..6),
            as_inline in proptest::collection::vec(any::<bool>(), 6),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let mut input = Vec::new();
            for (i, words) in requests.iter().enumerate() {
                if as_inline[i] {
                    input.extend_from_slice(&inline(words));
                } else {
                    encode_request(words, &mut input);
                }
            }
            let (decoded, error) = feed_with(RespLimits::default(), &input, &cuts);
            prop_assert_eq!(error, None);
            prop_assert_eq!(decoded, requests);
        }
    }
}
