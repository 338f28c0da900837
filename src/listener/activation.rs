//! Socket activation: listening sockets a supervisor opened and handed over, by systemd's
//! protocol (`LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`, descriptors from 3 on, as
//! `sd_listen_fds(3)` reads them).
//!
//! Each must be a listening stream socket, TCP (IPv4 or IPv6) or Unix with a path; muxd
//! makes it non-blocking and close-on-exec itself (`systemd-socket-activate`, and units
//! without `NonBlocking=yes`, hand sockets over blocking). A listen address naming an
//! inherited socket's address uses that socket; with no listen address at all, every
//! inherited socket is served. A Unix socket's file belongs to whoever created it: muxd
//! never removes it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use log::{debug, warn};
use socket2::{Socket, Type};

use super::ListenAddr;
use crate::error::Error;

/// The first descriptor passed (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;
/// More sockets than this in `LISTEN_FDS` is a mistake, not a configuration.
const MAX_FDS: RawFd = 4096;
/// The environment variables of the protocol.
const VARS: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];

/// A listening socket this process inherited from its supervisor.
///
/// Cheap to clone (the descriptor is shared); a server binding a listen address equal to
/// [`addr`](InheritedSocket::addr) uses the socket instead of creating one.
#[derive(Debug, Clone)]
pub struct InheritedSocket {
    fd: Arc<OwnedFd>,
    addr: ListenAddr,
    name: Option<Box<str>>,
}

impl InheritedSocket {
    /// The address the socket is bound to.
    pub fn addr(&self) -> &ListenAddr {
        &self.addr
    }

    /// Its name in `LISTEN_FDNAMES` (systemd: `FileDescriptorName=`, by default the socket
    /// unit's name), if one was given.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The descriptor.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The descriptor, owned: moved out if this is its last handle, else duplicated.
    pub(crate) fn into_fd(self) -> std::io::Result<OwnedFd> {
        Arc::try_unwrap(self.fd).or_else(|shared| shared.try_clone())
    }
}

/// Takes the sockets passed to this process, if `LISTEN_PID` names it, and removes the
/// protocol's variables from the environment so that child processes do not take them
/// for theirs (as `sd_listen_fds(1)` does). Without them, returns no socket.
///
/// # Safety
/// Call once, before any other thread exists (it changes the environment), and only if
/// nothing else in the process owns descriptors 3 to `3 + LISTEN_FDS - 1`: they become
/// owned by the sockets returned.
///
/// # Errors
/// [`ErrorKind::Activation`](crate::ErrorKind::Activation): `LISTEN_FDS` is not a count, a
/// descriptor is not open, or is not a listening TCP or Unix stream socket.
pub unsafe fn take_from_env() -> Result<Vec<InheritedSocket>, Error> {
    let [pid, fds, names] = VARS.map(std::env::var);
    for var in VARS {
        // SAFETY: the caller guarantees no other thread reads or writes the environment.
        unsafe { std::env::remove_var(var) };
    }
    let Ok(pid) = pid else {
        return Ok(Vec::new());
    };
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        debug!("LISTEN_PID names another process, ignoring LISTEN_FDS pid={pid}");
        return Ok(Vec::new());
    }
    let count = fds.as_deref().unwrap_or("0").trim();
    let count: RawFd = count
        .parse()
        .ok()
        .filter(|n| (0..=MAX_FDS).contains(n))
        .ok_or_else(|| Error::activation(format!("LISTEN_FDS={count:?} is not a count")))?;
    let names = names.unwrap_or_default();
    let mut names = names.split(':');
    let mut sockets = Vec::new();
    for fd in FIRST_FD..FIRST_FD + count {
        let name = names.next().filter(|n| !n.is_empty()).map(Box::from);
        // SAFETY: `fcntl(F_GETFD)` only reads the descriptor's flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(Error::activation(format!(
                "inherited descriptor {fd} is not open"
            )));
        }
        // SAFETY: the descriptor is open (checked above) and the caller guarantees that
        // nothing else in the process owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        sockets.push(inspect(owned, name)?);
    }
    Ok(sockets)
}

/// Checks that `fd` is a listening stream socket and makes it ready for the loop.
fn inspect(fd: OwnedFd, name: Option<Box<str>>) -> Result<InheritedSocket, Error> {
    let raw = fd.as_raw_fd();
    let socket = Socket::from(fd);
    let fail = |what: &str| Error::activation(format!("inherited descriptor {raw} {what}"));
    let io_fail = |e: std::io::Error| fail(&format!("cannot be used: {e}"));
    if socket.r#type().map_err(io_fail)? != Type::STREAM {
        return Err(fail("is not a stream socket"));
    }
    if !socket.is_listener().map_err(io_fail)? {
        return Err(fail("is not listening"));
    }
    let local = socket.local_addr().map_err(io_fail)?;
    let addr = if let Some(inet) = local.as_socket() {
        ListenAddr::Tcp(inet)
    } else if let Some(path) = local.as_pathname() {
        ListenAddr::Unix(path.to_owned())
    } else {
        return Err(fail(
            "is neither a TCP socket nor a Unix socket with a path (abstract and unnamed Unix sockets are not served)",
        ));
    };
    socket.set_nonblocking(true).map_err(io_fail)?;
    socket.set_cloexec(true).map_err(io_fail)?;
    Ok(InheritedSocket {
        fd: Arc::new(OwnedFd::from(socket)),
        addr,
        name,
    })
}

/// Where one master socket comes from.
#[derive(Debug)]
pub(crate) enum Origin {
    /// Created and bound here.
    Bind(ListenAddr),
    /// Inherited, already bound and listening.
    Inherited(InheritedSocket),
}

/// The master sockets to serve: each listen address, on the inherited socket bound there
/// when there is one; with no listen address, every inherited socket, in the order passed.
/// Inherited sockets no listen address names are closed, with a warning.
pub(crate) fn plan(listen: &[ListenAddr], mut inherited: Vec<InheritedSocket>) -> Vec<Origin> {
    if listen.is_empty() {
        return inherited.into_iter().map(Origin::Inherited).collect();
    }
    let planned = listen
        .iter()
        .map(
            |addr| match inherited.iter().position(|s| serves(&s.addr, addr)) {
                Some(at) => {
                    let mut socket = inherited.remove(at);
                    // A `tls://` address speaks TLS on the inherited TCP socket.
                    socket.addr = addr.clone();
                    Origin::Inherited(socket)
                }
                None => Origin::Bind(addr.clone()),
            },
        )
        .collect();
    for unused in inherited {
        warn!(
            "inherited socket named by no listener, closing it addr={} fd={} name={}",
            unused.addr,
            unused.fd(),
            unused.name().unwrap_or("")
        );
    }
    planned
}

/// Whether an inherited socket bound at `inherited` serves the listener `wanted`: the
/// same address, or its TCP address for a `tls://` listener.
fn serves(inherited: &ListenAddr, wanted: &ListenAddr) -> bool {
    inherited == wanted
        || matches!((inherited, wanted), (ListenAddr::Tcp(a), ListenAddr::Tls(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inherited(addr: &str) -> InheritedSocket {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        InheritedSocket {
            fd: Arc::new(OwnedFd::from(listener)),
            addr: addr.parse().unwrap(),
            name: None,
        }
    }

    #[test]
    fn listen_addresses_take_inherited_sockets_bound_there() {
        let a: ListenAddr = "tcp://127.0.0.1:7001".parse().unwrap();
        let b: ListenAddr = "unix:///run/muxd/muxd.sock".parse().unwrap();
        let c: ListenAddr = "tcp://127.0.0.1:7002".parse().unwrap();
        let planned = plan(
            &[c.clone(), b.clone()],
            vec![
                inherited("unix:///run/muxd/muxd.sock"),
                inherited("127.0.0.1:7001"),
            ],
        );
        assert!(
            matches!(&planned[..], [Origin::Bind(x), Origin::Inherited(y)] if *x == c && y.addr == b)
        );

        let planned = plan(
            &[],
            vec![
                inherited("127.0.0.1:7001"),
                inherited("unix:///run/muxd/muxd.sock"),
            ],
        );
        let addrs: Vec<&ListenAddr> = planned
            .iter()
            .map(|o| match o {
                Origin::Inherited(s) => &s.addr,
                Origin::Bind(a) => a,
            })
            .collect();
        assert_eq!(
            addrs,
            [&a, &b],
            "every inherited socket, in the order passed"
        );
    }

    #[test]
    fn inspect_refuses_what_is_not_a_listening_stream_socket() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let e = inspect(OwnedFd::from(udp), None).unwrap_err();
        assert!(e.to_string().contains("not a stream socket"), "{e}");

        let socket = Socket::new(socket2::Domain::IPV4, Type::STREAM, None).unwrap();
        let e = inspect(OwnedFd::from(socket), None).unwrap_err();
        assert!(e.to_string().contains("not listening"), "{e}");

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let bound = listener.local_addr().unwrap();
        let s = inspect(OwnedFd::from(listener), Some("web".into())).unwrap();
        assert_eq!(s.addr, ListenAddr::Tcp(bound));
        assert_eq!(s.name(), Some("web"));
    }
}
