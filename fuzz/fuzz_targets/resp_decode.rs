//! Fuzz target for the RESP request decoder: whatever the bytes and however they are split
//! across reads, decoding never panics, never claims more bytes than it was given, and
//! gives the same requests (and the same error) as decoding the bytes whole. The requests
//! decoded, encoded again as a client sends them (`encode_request`), decode the same.
//!
//! Input layout: the first byte is a split stride (0 = whole; its high bit set: the client
//! has yet to authenticate, so Redis's unauthenticated limits apply), the rest is the
//! stream.

#![no_main]

use libfuzzer_sys::fuzz_target;
use muxd::resp::{RespCodec, RespDecodeState, RespError, RespLimits, RespSession, encode_request};
use muxd::{Codec, Decoded};

type Outcome = (Vec<Vec<Vec<u8>>>, Option<RespError>);

/// Small limits, so that arbitrary input reaches them.
const SMALL: RespLimits = RespLimits {
    max_bulk_len: 1024,
    max_multibulk_len: 32,
    max_inline_len: 128,
};

fn feed(limits: RespLimits, session: RespSession, input: &[u8], stride: usize) -> Outcome {
    let mut codec = RespCodec::new(limits);
    let mut state = RespDecodeState::default();
    let mut buffer = Vec::new();
    let mut requests = Vec::new();
    let step = if stride == 0 { input.len().max(1) } else { stride };
    for chunk in input.chunks(step) {
        buffer.extend_from_slice(chunk);
        loop {
            match codec.decode(session, &mut state, &buffer) {
                Ok(Decoded::Request(args, used)) => {
                    assert!(used > 0 && used <= buffer.len());
                    assert!(!args.is_empty());
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

fuzz_target!(|data: &[u8]| {
    let Some((&stride, stream)) = data.split_first() else {
        return;
    };
    let session = RespSession {
        auth_required: stride & 0x80 != 0,
        ..RespSession::default()
    };
    let whole = feed(SMALL, session, stream, 0);
    let split = feed(SMALL, session, stream, usize::from(stride % 17));
    assert_eq!(whole, split);
    let mut wire = Vec::new();
    for request in &whole.0 {
        encode_request(request, &mut wire);
    }
    assert_eq!(
        feed(RespLimits::default(), RespSession::default(), &wire, 0),
        (whole.0, None)
    );
});
