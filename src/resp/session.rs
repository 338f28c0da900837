//! [`RespSession`]: what a RESP connection agreed with the server for the rest of its
//! life: the [`Protocol`] version its replies are encoded in, and whether Redis's limits
//! on unauthenticated requests apply to it.
//!
//! The loop keeps one in each client handle and hands it to every decode and encode; a
//! service changes it with [`Context::set_session`](crate::Context::set_session) (`HELLO 3`
//! switches to RESP3, `AUTH` lifts the limits). The default restricts nothing and speaks
//! RESP2, so a service that knows nothing of versions or passwords never notices it.

/// The version of RESP a connection's replies are encoded in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// RESP2, what every connection speaks until it asks for more (`HELLO 3`).
    #[default]
    Resp2,
    /// RESP3: maps, sets, nulls, booleans, doubles, big numbers, verbatim strings, pushes.
    Resp3,
}

impl Protocol {
    /// The version number, as `HELLO` and `CLIENT LIST` (`resp=`) show it.
    pub fn number(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }

    /// The protocol numbered `n` (2 or 3), if there is one.
    pub fn from_number(n: i64) -> Option<Protocol> {
        match n {
            2 => Some(Protocol::Resp2),
            3 => Some(Protocol::Resp3),
            _ => None,
        }
    }
}

/// A RESP connection's session: the codec's [`Session`](crate::Codec::Session).
///
/// # Examples
/// ```
/// use muxd::resp::{Protocol, RespSession};
///
/// let session = RespSession::default();
/// assert_eq!(session.protocol, Protocol::Resp2);
/// assert!(!session.auth_required, "a plain embedder is never restricted");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RespSession {
    /// How replies are encoded: a [`Reply::Map`](crate::resp::Reply::Map) is a map in
    /// RESP3 and a flat array in RESP2, and so on.
    pub protocol: Protocol,
    /// The client has yet to authenticate: as Redis does, the decoder then refuses a
    /// request announcing more than [`UNAUTHENTICATED_MAX_ARGS`] arguments or a bulk
    /// string longer than [`UNAUTHENTICATED_MAX_BULK`] bytes, and closes the connection,
    /// so that a client without the password cannot make the server buffer much.
    pub auth_required: bool,
}

/// Most arguments a request may announce before its client has authenticated (Redis's
/// figure, in `processMultibulkBuffer`).
pub const UNAUTHENTICATED_MAX_ARGS: i64 = 10;
/// Longest bulk string a request may announce before its client has authenticated
/// (Redis's figure).
pub const UNAUTHENTICATED_MAX_BULK: i64 = 16384;
