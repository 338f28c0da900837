//! A line codec of our own, shared by the line examples (`line_echo`, `chat`, `ticker`):
//! a request is a line of text ended by `\n` (a `\r` before it is dropped, so `telnet`
//! works), a response is one line. This is the whole codec: writing one for your own
//! protocol is this much work.

use std::fmt;

use muxd::{Codec, Decoded};

/// Longest line taken, in bytes: a longer one is an error, and its client is closed.
pub const MAX_LINE: usize = 4096;

/// One request per line, one line per response.
pub struct Lines;

/// What is wrong with a client's input: it sent a line longer than [`MAX_LINE`].
#[derive(Debug)]
pub struct LineTooLong;

impl fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("line too long")
    }
}

impl std::error::Error for LineTooLong {}

impl Codec for Lines {
    /// A line, borrowed from the client's input buffer (no copy).
    type Request<'a> = &'a [u8];
    /// A line to send, without its `\n`.
    type Response<'a> = [u8];
    /// A line needs no progress kept between reads: it is looked for again whole.
    type DecodeState = ();
    /// The protocol has one form only.
    type Session = ();
    type Error = LineTooLong;

    fn decode<'a>(
        &'a mut self,
        _: (),
        _: &mut (),
        input: &'a [u8],
    ) -> Result<Decoded<&'a [u8]>, LineTooLong> {
        match input.iter().position(|&b| b == b'\n') {
            Some(end) if end > MAX_LINE => Err(LineTooLong),
            Some(end) => {
                let line = input.get(..end).unwrap_or_default();
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                Ok(Decoded::Request(line, end + 1))
            }
            // Refused before the newline arrives: a client cannot make us buffer more.
            None if input.len() > MAX_LINE => Err(LineTooLong),
            None => Ok(Decoded::Incomplete),
        }
    }

    fn encode(_: (), response: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(response);
        out.push(b'\n');
    }

    fn encode_error(_: (), message: &dyn fmt::Display, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("ERROR {message}\n").as_bytes());
    }
}
