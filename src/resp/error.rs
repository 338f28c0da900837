//! [`RespError`]: why a request is malformed, with the exact text Redis sends for it.
//!
//! Its own module so that the decoder and the inline splitter both depend on it, and not
//! on each other.

use std::fmt;

/// A malformed request. `Display` gives the exact text sent back after `-ERR `.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RespError {
    /// `*n` with `n` not a number or above the limit.
    InvalidMultibulkLength,
    /// `$n` with `n` not a number, negative, or above the limit.
    InvalidBulkLength,
    /// A multibulk element does not start with `$`; holds the byte found instead.
    ExpectedDollar(u8),
    /// A `*n` line longer than the inline limit.
    TooBigMultibulkCount,
    /// A `$n` line longer than the inline limit.
    TooBigBulkCount,
    /// An inline command longer than the inline limit.
    TooBigInline,
    /// An inline command with an unterminated quote or a closing quote glued to a word.
    UnbalancedQuotes,
    /// An inline command containing a raw NUL byte.
    NulInInline,
    /// A `\r` that is not followed by `\n` at the end of a `*n` or `$n` line.
    ExpectedLineFeed,
    /// Bulk data not followed by `\r\n`.
    BulkNotTerminated,
    /// `*n` above [`UNAUTHENTICATED_MAX_ARGS`](super::session::UNAUTHENTICATED_MAX_ARGS)
    /// from a client that has yet to authenticate.
    UnauthenticatedMultibulkLength,
    /// `$n` above [`UNAUTHENTICATED_MAX_BULK`](super::session::UNAUTHENTICATED_MAX_BULK)
    /// from a client that has yet to authenticate.
    UnauthenticatedBulkLength,
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Protocol error: ")?;
        match self {
            RespError::InvalidMultibulkLength => f.write_str("invalid multibulk length"),
            RespError::InvalidBulkLength => f.write_str("invalid bulk length"),
            RespError::ExpectedDollar(b) => {
                f.write_str("expected '$', got '")?;
                write_byte(f, *b)?;
                f.write_str("'")
            }
            RespError::TooBigMultibulkCount => f.write_str("too big mbulk count string"),
            RespError::TooBigBulkCount => f.write_str("too big bulk count string"),
            RespError::TooBigInline => f.write_str("too big inline request"),
            RespError::UnbalancedQuotes => f.write_str("unbalanced quotes in request"),
            RespError::NulInInline => f.write_str("NUL byte in inline request"),
            RespError::ExpectedLineFeed => f.write_str("expected '\\n' after '\\r'"),
            RespError::BulkNotTerminated => f.write_str("expected '\\r\\n' after bulk data"),
            RespError::UnauthenticatedMultibulkLength => {
                f.write_str("unauthenticated multibulk length")
            }
            RespError::UnauthenticatedBulkLength => f.write_str("unauthenticated bulk length"),
        }
    }
}

impl std::error::Error for RespError {}

/// A byte as Redis prints it with `%c`, except that non-printable bytes are escaped so the
/// error line stays one valid line.
fn write_byte(f: &mut fmt::Formatter<'_>, b: u8) -> fmt::Result {
    if b.is_ascii_graphic() || b == b' ' {
        write!(f, "{}", b as char)
    } else {
        write!(f, "\\x{b:02x}")
    }
}
