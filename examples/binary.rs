//! A length-prefixed binary protocol, the other common shape of a wire format: every
//! frame is a 4-byte big-endian length, then that many bytes.
//!
//! - A request's bytes are an operation code and its operand: `0x01` ECHO (the operand
//!   comes back), `0x02` SUM (the operand is big-endian `u32`s; their sum comes back as
//!   one big-endian `u64`).
//! - A response's bytes are a status and a body: `0` OK, `1` the request was refused
//!   (the body says why; the connection stays open), `2` the input is not this protocol
//!   (the body says why; the connection then closes).
//! - A frame announcing more than 1 MiB is refused as soon as its length is read, before
//!   anything is buffered for it.
//!
//! ```text
//! cargo run --example binary -- 127.0.0.1:7005
//! printf '\0\0\0\x03\x01hi' | nc -q1 127.0.0.1 7005 | xxd   # 00000003 00 6869
//! ```

use std::fmt;

use muxd::{Codec, Config, Context, Decoded, ListenAddr, Server, Service};

/// The largest frame taken, in bytes.
pub const MAX_FRAME: usize = 1024 * 1024;
/// Response statuses.
pub const OK: u8 = 0;
pub const REFUSED: u8 = 1;
pub const PROTOCOL_ERROR: u8 = 2;

/// The codec: frames in, frames out.
pub struct Frames;

/// A response: a status and a body.
pub struct Reply<'a> {
    pub status: u8,
    pub body: &'a [u8],
}

/// A frame announced longer than [`MAX_FRAME`].
#[derive(Debug)]
pub struct FrameTooLong(usize);

impl fmt::Display for FrameTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "frame of {} bytes is over {MAX_FRAME}", self.0)
    }
}

impl std::error::Error for FrameTooLong {}

impl Codec for Frames {
    /// A frame's bytes, borrowed from the input buffer.
    type Request<'a> = &'a [u8];
    type Response<'a> = Reply<'a>;
    type DecodeState = ();
    type Session = ();
    type Error = FrameTooLong;

    fn decode<'a>(
        &'a mut self,
        _: (),
        _: &mut (),
        input: &'a [u8],
    ) -> Result<Decoded<&'a [u8]>, FrameTooLong> {
        let Some((header, rest)) = input.split_first_chunk::<4>() else {
            return Ok(Decoded::Incomplete);
        };
        let len = u32::from_be_bytes(*header) as usize;
        if len > MAX_FRAME {
            return Err(FrameTooLong(len));
        }
        match rest.get(..len) {
            Some(frame) => Ok(Decoded::Request(frame, 4 + len)),
            None => Ok(Decoded::Incomplete),
        }
    }

    fn encode(_: (), reply: &Reply<'_>, out: &mut Vec<u8>) {
        let len = 1 + reply.body.len() as u32;
        out.extend_from_slice(&len.to_be_bytes());
        out.push(reply.status);
        out.extend_from_slice(reply.body);
    }

    fn encode_error(_: (), message: &dyn fmt::Display, out: &mut Vec<u8>) {
        let body = message.to_string();
        let reply = Reply {
            status: PROTOCOL_ERROR,
            body: body.as_bytes(),
        };
        Frames::encode((), &reply, out);
    }
}

/// ECHO and SUM.
pub struct Ops;

impl Service<Frames> for Ops {
    type ClientState = ();

    fn on_request(&mut self, frame: &[u8], ctx: &mut Context<'_, Frames, Self>) {
        let refuse = |ctx: &mut Context<'_, Frames, Self>, why: &str| {
            ctx.reply(&Reply {
                status: REFUSED,
                body: why.as_bytes(),
            });
        };
        match frame.split_first() {
            Some((0x01, operand)) => ctx.reply(&Reply {
                status: OK,
                body: operand,
            }),
            Some((0x02, operand)) => {
                let (words, rest) = operand.as_chunks::<4>();
                if !rest.is_empty() {
                    return refuse(ctx, "SUM takes whole u32s");
                }
                let sum: u64 = words
                    .iter()
                    .map(|w| u64::from(u32::from_be_bytes(*w)))
                    .sum();
                ctx.reply(&Reply {
                    status: OK,
                    body: &sum.to_be_bytes(),
                });
            }
            Some((op, _)) => refuse(ctx, &format!("unknown operation {op:#04x}")),
            None => refuse(ctx, "empty frame"),
        }
    }
}

/// The server, bound to what `config` says (`main` below, and the tests, use this).
pub fn server(config: Config) -> Result<Server<Frames, Ops>, muxd::Error> {
    Server::bind(config, Frames, Ops)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:7005".into());
    let mut config = Config::default();
    config.listen.push(ListenAddr::tcp(&addr)?);
    config.stop_on_signals = true;
    let server = server(config)?;
    println!("binary protocol on {}", server.local_addrs()[0]);
    server.run()?;
    Ok(())
}
