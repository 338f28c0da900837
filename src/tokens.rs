//! The poll token space: whom a readiness event is for.
//!
//! Every registration with the loop's poller has a token, and the ranges below never
//! overlap, so a token alone says whom an event is for:
//!
//! ```text
//!   0 .................. 2^(B-1) - 1          clients: the slab key is the token
//!   2^(B-1) ............ 2^(B-1) + 2^(B-2) - 1 the service's own sources: 2^(B-1) + key
//!   (unused)
//!   MAX-2-(n-1) ........ MAX-2                 master socket i: MAX-2-i (n of them)
//!   MAX-1                                      the signal pipe
//!   MAX                                        the waker
//! ```
//!
//! (B is the width of `usize`, MAX its largest value.) Client keys and source keys are
//! refused past their range, so neither can ever reach the next one; the reserved tokens
//! sit at the top, as mio's docs recommend, so a client's slab key needs no offset, and
//! telling a client's token apart is one comparison.

use mio::Token;

/// Whom a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    Client(usize),
    Source(usize),
    Listener(usize),
    Signals,
    Waker,
    /// A token in no range (never registered).
    Nobody,
}

pub(crate) const WAKER: Token = Token(usize::MAX);
pub(crate) const SIGNALS: Token = Token(usize::MAX - 1);
/// Listener `i` has token `FIRST_LISTENER - i`.
const FIRST_LISTENER: usize = usize::MAX - 2;
/// First token of the service's sources.
const FIRST_SOURCE: usize = 1 << (usize::BITS - 1);
/// How many client keys fit below the sources.
pub(crate) const MAX_CLIENT_KEYS: usize = FIRST_SOURCE;
/// How many source keys fit below the reserved tokens.
pub(crate) const MAX_SOURCE_KEYS: usize = 1 << (usize::BITS - 2);

/// The token of client `key` (below [`MAX_CLIENT_KEYS`]).
#[inline]
pub(crate) fn client(key: usize) -> Token {
    Token(key)
}

/// The token of source `key` (below [`MAX_SOURCE_KEYS`]).
pub(crate) fn source(key: usize) -> Token {
    Token(FIRST_SOURCE + key)
}

/// The token of listener `index`.
pub(crate) fn listener(index: usize) -> Token {
    Token(FIRST_LISTENER - index)
}

/// Whom `token` is for, given the number of listeners.
#[inline]
pub(crate) fn owner(token: Token, listeners: usize) -> Owner {
    let t = token.0;
    if t < FIRST_SOURCE {
        return Owner::Client(t);
    }
    if token == WAKER {
        return Owner::Waker;
    }
    if token == SIGNALS {
        return Owner::Signals;
    }
    match (t - FIRST_SOURCE, FIRST_LISTENER - t) {
        (key, _) if key < MAX_SOURCE_KEYS => Owner::Source(key),
        (_, index) if index < listeners => Owner::Listener(index),
        _ => Owner::Nobody,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_range_maps_back_to_its_owner_and_no_other() {
        let listeners = 3;
        for key in [0, 1, 1000, MAX_CLIENT_KEYS - 1] {
            assert_eq!(owner(client(key), listeners), Owner::Client(key));
        }
        for key in [0, 7, MAX_SOURCE_KEYS - 1] {
            assert_eq!(owner(source(key), listeners), Owner::Source(key));
        }
        for index in 0..listeners {
            assert_eq!(owner(listener(index), listeners), Owner::Listener(index));
        }
        assert_eq!(owner(listener(listeners), listeners), Owner::Nobody);
        assert_eq!(owner(WAKER, listeners), Owner::Waker);
        assert_eq!(owner(SIGNALS, listeners), Owner::Signals);
        assert_eq!(owner(source(MAX_SOURCE_KEYS), listeners), Owner::Nobody);
        // The ranges are in order and apart.
        assert!(client(MAX_CLIENT_KEYS - 1).0 < source(0).0);
        assert!(source(MAX_SOURCE_KEYS - 1).0 < listener(1 << 20).0);
    }
}
