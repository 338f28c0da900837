//! The wire format, kept apart from what the server does with a request.
//!
//! A [`Codec`] turns the bytes a client sent into requests and a service's responses into
//! bytes. The loop owns one codec for all clients and keeps a small
//! [`Codec::DecodeState`] in each client handle, so that a request split across reads is
//! resumed where the last read stopped instead of being parsed again from its start.
//!
//! Decoding borrows: a request may point into the client's input buffer (and into scratch
//! space of the codec), so steady-state serving allocates nothing per request.
//!
//! A connection may also agree with the server on how it speaks for the rest of its life
//! (RESP's version, 2 or 3, switched by `HELLO`; whether it has authenticated, which
//! lifts RESP's limits on what unauthenticated clients may send): that is the codec's
//! [`Session`](Codec::Session), kept in each handle and handed to every `decode` and
//! `encode`, so a service replies with the same value whatever form its client speaks.

use std::fmt;

/// Converts between bytes on a connection and requests/responses.
///
/// # Contract
/// - [`decode`](Codec::decode) is called with the client's unparsed input, always starting
///   at the first byte of a request. It returns a request and the bytes it used, bytes to
///   drop, or [`Decoded::Incomplete`]; it is then called again with the rest.
/// - It must never panic and never reserve memory in proportion to a length announced by
///   the peer before those bytes have arrived.
/// - An `Err` is final for that client: the loop sends [`encode_error`](Codec::encode_error)
///   with the error's text, flushes what is owed, and closes the connection.
///
/// # Examples
/// A line codec: each `\n`-terminated line is a request, each response one line.
/// ```
/// use muxd::{Codec, Decoded};
///
/// struct Lines;
///
/// #[derive(Debug)]
/// struct LineTooLong;
/// impl std::fmt::Display for LineTooLong {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("line too long")
///     }
/// }
/// impl std::error::Error for LineTooLong {}
///
/// impl Codec for Lines {
///     type Request<'a> = &'a [u8];
///     type Response<'a> = [u8];
///     type DecodeState = ();
///     type Session = ();
///     type Error = LineTooLong;
///
///     fn decode<'a>(&'a mut self, _: (), _: &mut (), input: &'a [u8])
///         -> Result<Decoded<&'a [u8]>, LineTooLong>
///     {
///         match input.iter().position(|&b| b == b'\n') {
///             Some(end) => Ok(Decoded::Request(&input[..end], end + 1)),
///             None if input.len() > 4096 => Err(LineTooLong),
///             None => Ok(Decoded::Incomplete),
///         }
///     }
///
///     fn encode(_: (), response: &[u8], out: &mut Vec<u8>) {
///         out.extend_from_slice(response);
///         out.push(b'\n');
///     }
///
///     fn encode_error(_: (), message: &dyn std::fmt::Display, out: &mut Vec<u8>) {
///         out.extend_from_slice(format!("error: {message}\n").as_bytes());
///     }
/// }
///
/// let mut codec = Lines;
/// match codec.decode((), &mut (), b"hello\nwor").unwrap() {
///     Decoded::Request(line, used) => assert_eq!((line, used), (&b"hello"[..], 6)),
///     _ => unreachable!(),
/// }
/// ```
pub trait Codec {
    /// A decoded request; may borrow the input and the codec.
    type Request<'a>
    where
        Self: 'a;
    /// What a service hands to the codec to send back.
    type Response<'a>: ?Sized;
    /// Per-client progress through a partially received request.
    type DecodeState: Default;
    /// What a connection has agreed with the server about the wire format, kept in its
    /// handle and changed by the service ([`Context::set_session`](crate::Context::set_session)):
    /// RESP's version and authentication. `()` for a codec with one form.
    type Session: Copy + Default + Eq + fmt::Debug;
    /// A malformed request. Its `Display` text is sent to the client before it is closed.
    type Error: std::error::Error;

    /// Decodes the request at the start of `input`.
    ///
    /// # Errors
    /// Returns `Err` when the bytes cannot be the start of a valid request; the loop then
    /// answers with [`encode_error`](Codec::encode_error) and closes that client.
    fn decode<'a>(
        &'a mut self,
        session: Self::Session,
        state: &mut Self::DecodeState,
        input: &'a [u8],
    ) -> Result<Decoded<Self::Request<'a>>, Self::Error>;

    /// Appends the wire form of `response`, as `session` speaks it, to `out`.
    fn encode(session: Self::Session, response: &Self::Response<'_>, out: &mut Vec<u8>);

    /// Appends an error response carrying `message` to `out` (used for protocol errors,
    /// limits and failures inside a service).
    fn encode_error(session: Self::Session, message: &dyn fmt::Display, out: &mut Vec<u8>);

    /// What of `session` decides how a response is encoded. A published message is
    /// encoded once per distinct value among its receivers and those bytes are shared,
    /// so a session that also holds what does not change encoding (RESP's
    /// authentication) can be reduced to what does, to share more. The default, the
    /// session itself, is always right.
    #[inline]
    fn encoding(session: Self::Session) -> Self::Session {
        session
    }
}

/// The outcome of one [`Codec::decode`] call.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<R> {
    /// A complete request, and how many input bytes it used.
    Request(R, usize),
    /// Bytes that carry no request (RESP's empty line or `*0`): drop them and go on.
    Ignored(usize),
    /// The input ends inside a request: wait for more bytes.
    Incomplete,
}

/// A codec for the crate's own tests: every byte is a request, responses are bytes.
#[cfg(test)]
pub(crate) struct TestCodec;

#[cfg(test)]
impl Codec for TestCodec {
    type Request<'a> = u8;
    type Response<'a> = [u8];
    type DecodeState = ();
    type Session = ();
    type Error = std::io::Error;

    fn decode<'a>(
        &'a mut self,
        _: (),
        _: &mut (),
        input: &'a [u8],
    ) -> Result<Decoded<u8>, Self::Error> {
        Ok(input
            .first()
            .map_or(Decoded::Incomplete, |&b| Decoded::Request(b, 1)))
    }

    fn encode(_: (), response: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(response);
    }

    fn encode_error(_: (), message: &dyn fmt::Display, out: &mut Vec<u8>) {
        out.extend_from_slice(message.to_string().as_bytes());
    }
}
