//! The library's error type: what can stop the server from starting or from running.
//!
//! Nothing a client sends produces an [`Error`]: bad input is answered on that client's
//! connection and, at worst, closes it. An `Error` means the server itself cannot go on
//! (a listener cannot be bound, the poller failed) and is returned from
//! [`Server::bind`](crate::Server) or [`Server::run`](crate::Server::run).

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why the server could not start or could not keep running.
///
/// An opaque struct over a private kind: match on [`Error::kind`] when the cause matters,
/// print it (`Display`) for a message that names what failed and where.
#[derive(Debug)]
pub struct Error {
    kind: Kind,
}

/// The broad category of an [`Error`], for callers that react differently to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A listen address could not be parsed.
    InvalidAddress,
    /// A master socket could not be created, bound or put into listening state.
    Bind,
    /// A Unix socket path is already served by a live process.
    SocketInUse,
    /// A Unix socket path exists and is not a socket; it was left untouched.
    NotASocket,
    /// The poller, the waker or the signal pipe failed.
    Poll,
    /// The configuration is inconsistent (for example no listener at all).
    Config,
    /// Sockets handed over by a supervisor (socket activation) cannot be used.
    Activation,
    /// A TLS certificate, key or CA file cannot be used.
    Tls,
}

#[derive(Debug)]
enum Kind {
    InvalidAddress {
        input: String,
        reason: &'static str,
    },
    Bind {
        addr: String,
        source: io::Error,
    },
    SocketInUse {
        path: PathBuf,
    },
    NotASocket {
        path: PathBuf,
    },
    Poll {
        what: &'static str,
        source: io::Error,
    },
    Config {
        reason: String,
    },
    Activation {
        reason: String,
    },
    Tls {
        what: String,
        reason: String,
    },
}

impl Error {
    /// The category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self.kind {
            Kind::InvalidAddress { .. } => ErrorKind::InvalidAddress,
            Kind::Bind { .. } => ErrorKind::Bind,
            Kind::SocketInUse { .. } => ErrorKind::SocketInUse,
            Kind::NotASocket { .. } => ErrorKind::NotASocket,
            Kind::Poll { .. } => ErrorKind::Poll,
            Kind::Config { .. } => ErrorKind::Config,
            Kind::Activation { .. } => ErrorKind::Activation,
            Kind::Tls { .. } => ErrorKind::Tls,
        }
    }

    pub(crate) fn invalid_address(input: &str, reason: &'static str) -> Error {
        Error {
            kind: Kind::InvalidAddress {
                input: input.to_owned(),
                reason,
            },
        }
    }

    pub(crate) fn bind(addr: impl fmt::Display, source: io::Error) -> Error {
        Error {
            kind: Kind::Bind {
                addr: addr.to_string(),
                source,
            },
        }
    }

    pub(crate) fn socket_in_use(path: PathBuf) -> Error {
        Error {
            kind: Kind::SocketInUse { path },
        }
    }

    pub(crate) fn not_a_socket(path: PathBuf) -> Error {
        Error {
            kind: Kind::NotASocket { path },
        }
    }

    pub(crate) fn poll(what: &'static str, source: io::Error) -> Error {
        Error {
            kind: Kind::Poll { what, source },
        }
    }

    pub(crate) fn activation(reason: String) -> Error {
        Error {
            kind: Kind::Activation { reason },
        }
    }

    pub(crate) fn tls(what: impl fmt::Display, reason: impl fmt::Display) -> Error {
        Error {
            kind: Kind::Tls {
                what: what.to_string(),
                reason: reason.to_string(),
            },
        }
    }

    pub(crate) fn config(reason: impl Into<String>) -> Error {
        Error {
            kind: Kind::Config {
                reason: reason.into(),
            },
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::InvalidAddress { input, reason } => {
                write!(f, "invalid listen address {input:?}: {reason}")
            }
            Kind::Bind { addr, source } => write!(f, "failed to bind {addr}: {source}"),
            Kind::SocketInUse { path } => write!(
                f,
                "failed to bind unix://{}: another server is accepting connections on it",
                path.display()
            ),
            Kind::NotASocket { path } => write!(
                f,
                "failed to bind unix://{}: the path exists and is not a socket (left untouched)",
                path.display()
            ),
            Kind::Poll { what, source } => write!(f, "{what} failed: {source}"),
            Kind::Config { reason } => write!(f, "invalid configuration: {reason}"),
            Kind::Activation { reason } => write!(f, "socket activation: {reason}"),
            Kind::Tls { what, reason } => write!(f, "tls: {what}: {reason}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::Bind { source, .. } | Kind::Poll { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_what_failed_and_where() {
        let e = Error::bind(
            "tcp://127.0.0.1:7000",
            io::Error::from(io::ErrorKind::AddrInUse),
        );
        assert_eq!(e.kind(), ErrorKind::Bind);
        let text = e.to_string();
        assert!(
            text.starts_with("failed to bind tcp://127.0.0.1:7000: "),
            "{text}"
        );
        assert!(std::error::Error::source(&e).is_some());

        let e = Error::not_a_socket(PathBuf::from("/tmp/file"));
        assert!(e.to_string().contains("not a socket"), "{e}");
        assert_eq!(e.kind(), ErrorKind::NotASocket);
    }
}
