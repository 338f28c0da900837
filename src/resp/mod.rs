//! RESP, the Redis wire protocol, as a [`Codec`]: what lets `redis-cli`,
//! `redis-benchmark` and every Redis client library talk to the loop.
//!
//! Requests are arrays of bulk strings (`*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n`) or inline
//! commands (`ECHO hi\r\n`, double and single quotes as `redis-cli` writes them).
//! Responses are [`Reply`] values, encoded in RESP2 or RESP3 as each connection's
//! [`RespSession`] says (RESP2 until a service switches it, as `HELLO 3` does). Error texts
//! follow Redis's own (`tests/unit/protocol.tcl`) so that Redis's protocol cases replay
//! unchanged; where Redis is lax (it skips the two bytes after a bulk string unchecked)
//! this decoder is strict.
//!
//! The [`client`] side is the other end: what a program talking to a RESP server needs,
//! RESP3 replies included.
//!
//! - [`decode`]: the incremental request decoder;
//! - [`error`]: [`RespError`], why a request is malformed;
//! - [`inline`]: splitting an inline command into words;
//! - [`reply`]: [`Reply`] and its encoding, RESP2 or RESP3;
//! - [`session`]: [`RespSession`], a connection's protocol version and whether it must
//!   still authenticate;
//! - [`queue`]: [`RequestQueue`], requests copied out of the input buffer to be handled
//!   later;
//! - [`client`]: the client side: [`encode_request`], the reply [`Framer`], [`Value`].

pub mod client;
pub mod decode;
pub mod error;
pub mod inline;
pub mod queue;
pub mod reply;
pub mod session;

use std::fmt;

use crate::codec::{Codec, Decoded};
pub use client::{Framer, MalformedReply, Value, encode_request};
pub use decode::{RespDecodeState, parse_int};
pub use error::RespError;
pub use queue::RequestQueue;
pub use reply::Reply;
pub use session::{Protocol, RespSession};

/// Size limits the decoder enforces as soon as a header announces a size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RespLimits {
    /// Largest bulk string (`$n`) accepted, in bytes (Redis: `proto-max-bulk-len`).
    pub max_bulk_len: usize,
    /// Most elements a multibulk request (`*n`) may announce.
    pub max_multibulk_len: usize,
    /// Longest inline command line, and longest `*n`/`$n` header line, in bytes.
    pub max_inline_len: usize,
}

impl Default for RespLimits {
    /// Redis's defaults: 512 MiB bulks, 64 KiB inline lines; at most 1,048,576 arguments.
    fn default() -> RespLimits {
        RespLimits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: 1024 * 1024,
            max_inline_len: 64 * 1024,
        }
    }
}

/// The RESP codec: decodes requests into [`Args`], encodes [`Reply`] values in the
/// protocol version of each connection's [`RespSession`].
///
/// One codec serves every client of a loop; its scratch space (argument positions and
/// unquoted inline words) is reused from request to request, so decoding allocates only
/// while that space grows to the largest request seen.
#[derive(Debug, Default)]
pub struct RespCodec {
    limits: RespLimits,
    /// Where each argument of the request being returned lies in its buffer.
    spans: Vec<Span>,
    /// The words of an inline command, unquoted and unescaped.
    inline: Vec<u8>,
}

impl RespCodec {
    /// A codec enforcing `limits`.
    pub fn new(limits: RespLimits) -> RespCodec {
        RespCodec {
            limits,
            spans: Vec::new(),
            inline: Vec::new(),
        }
    }

    /// The limits this codec enforces.
    pub fn limits(&self) -> &RespLimits {
        &self.limits
    }
}

impl Codec for RespCodec {
    type Request<'a> = Args<'a>;
    type Response<'a> = Reply<'a>;
    type DecodeState = RespDecodeState;
    type Session = RespSession;
    type Error = RespError;

    fn decode<'a>(
        &'a mut self,
        session: RespSession,
        state: &mut RespDecodeState,
        input: &'a [u8],
    ) -> Result<Decoded<Args<'a>>, RespError> {
        decode::decode(
            &self.limits,
            session.auth_required,
            state,
            input,
            &mut self.spans,
            &mut self.inline,
        )
        .map(|outcome| match outcome {
            decode::Outcome::Multibulk(used) => Decoded::Request(
                Args {
                    buf: input,
                    spans: &self.spans,
                },
                used,
            ),
            decode::Outcome::Inline(used) => Decoded::Request(
                Args {
                    buf: &self.inline,
                    spans: &self.spans,
                },
                used,
            ),
            decode::Outcome::Ignored(used) => Decoded::Ignored(used),
            decode::Outcome::Incomplete => Decoded::Incomplete,
        })
    }

    #[inline]
    fn encode(session: RespSession, response: &Reply<'_>, out: &mut Vec<u8>) {
        response.encode(session.protocol, out);
    }

    /// Only the protocol version changes how a reply is encoded: a published message is
    /// encoded once for RESP2 receivers and once for RESP3 ones, authenticated or not.
    #[inline]
    fn encoding(session: RespSession) -> RespSession {
        RespSession {
            protocol: session.protocol,
            ..RespSession::default()
        }
    }

    fn encode_error(_: RespSession, message: &dyn fmt::Display, out: &mut Vec<u8>) {
        reply::encode_error_message(message, out);
    }
}

/// Where one argument lies: `buf[start..end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// A decoded request: its arguments, as byte strings, command name first.
///
/// Borrows the client's input (or the codec's inline scratch space): nothing is copied.
/// A request always has at least one argument.
#[derive(Clone, Copy)]
pub struct Args<'a> {
    buf: &'a [u8],
    spans: &'a [Span],
}

impl<'a> Args<'a> {
    /// Number of arguments, the command name included.
    #[inline]
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no arguments (never the case for a decoded request).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The argument at `index`, if there is one.
    #[inline]
    pub fn get(&self, index: usize) -> Option<&'a [u8]> {
        let span = self.spans.get(index)?;
        self.buf.get(span.start..span.end)
    }

    /// The command name: the first argument (empty only for an empty request).
    #[inline]
    pub fn command(&self) -> &'a [u8] {
        self.get(0).unwrap_or_default()
    }

    /// All arguments in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        let buf = self.buf;
        self.spans
            .iter()
            .map(move |s| buf.get(s.start..s.end).unwrap_or_default())
    }
}

impl fmt::Debug for Args<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|a| String::from_utf8_lossy(a)))
            .finish()
    }
}
