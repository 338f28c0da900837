//! The client side of RESP: what a program talking to a RESP server needs of muxd's
//! codec. `muxd-bench`, the integration tests and the fuzz target use it.
//!
//! - [`encode_request`]: a command's arguments as the multibulk array servers decode;
//! - [`Framer`]: the incremental reply framer: where each reply ends, in place, without
//!   building values, bounded and resumable across reads; RESP2 and RESP3;
//! - [`Value`]: a reply as an owned value, built by [`Value::parse`] or, resuming across
//!   reads, [`Framer::parse`].
//!
//! The names say which side they belong to: the server decodes requests into
//! [`Args`](crate::resp::Args) and encodes [`Reply`](crate::resp::Reply) values; a
//! client encodes requests with [`encode_request`] and frames what comes back with a
//! [`Framer`], or parses it into [`Value`]s.

mod encode;
mod frame;
mod value;

pub use encode::encode_request;
pub use frame::{Framer, MAX_BULK, MAX_DEPTH, MAX_LINE, MalformedReply};
pub use value::Value;
