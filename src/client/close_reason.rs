//! Why a client handle was closed: one list of reasons, logged with the client
//! (`reason=`), counted in [`Stats`](crate::Stats) and reported by `INFO` (`closed_<reason>`).

use std::fmt;

/// Why a client handle was closed; logged with the client and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed its side and every response owed was written.
    PeerClosed,
    /// The peer sent a malformed request.
    ProtocolError,
    /// Reading or writing failed (connection reset, broken pipe).
    Reset,
    /// Idle longer than the configured timeout.
    IdleTimeout,
    /// Closed on request of another client or of the service (`CLIENT KILL`).
    Killed,
    /// The service asked to close it after its reply (`QUIT`).
    Quit,
    /// The server is shutting down.
    Shutdown,
    /// The service panicked while handling one of its requests.
    ServicePanic,
    /// A per-client limit was exceeded (input or output buffer).
    Limit,
    /// A trusted proxy sent no complete PROXY header within the timeout.
    ProxyTimeout,
    /// TLS failed: a handshake refused (bad certificate, no common protocol, plain text
    /// or garbage on a TLS port) or a bad record; the alert saying why was sent.
    TlsError,
    /// A TLS handshake did not complete within the timeout.
    TlsHandshakeTimeout,
    /// All clients' buffers held more than the server-wide limit and this client held the
    /// most (`maxmemory-clients`).
    Evicted,
}

impl CloseReason {
    /// Every reason, in the order `INFO` lists them: counters and reports iterate this.
    pub const ALL: [CloseReason; 13] = [
        CloseReason::PeerClosed,
        CloseReason::ProtocolError,
        CloseReason::Reset,
        CloseReason::IdleTimeout,
        CloseReason::Killed,
        CloseReason::Quit,
        CloseReason::Shutdown,
        CloseReason::ServicePanic,
        CloseReason::Limit,
        CloseReason::ProxyTimeout,
        CloseReason::TlsError,
        CloseReason::TlsHandshakeTimeout,
        CloseReason::Evicted,
    ];

    /// This reason's place in [`CloseReason::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The reason as a short `snake_case` word, as logged.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::PeerClosed => "peer_closed",
            CloseReason::ProtocolError => "protocol_error",
            CloseReason::Reset => "reset",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::Killed => "killed",
            CloseReason::Quit => "quit",
            CloseReason::Shutdown => "shutdown",
            CloseReason::ServicePanic => "service_panic",
            CloseReason::Limit => "limit",
            CloseReason::ProxyTimeout => "proxy_timeout",
            CloseReason::TlsError => "tls_error",
            CloseReason::TlsHandshakeTimeout => "tls_handshake_timeout",
            CloseReason::Evicted => "evicted",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_each_reason_once_at_its_index() {
        for (i, reason) in CloseReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i, "{reason}");
        }
    }
}
