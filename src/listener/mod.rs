//! Master sockets: the listening TCP and Unix-domain sockets where connection requests
//! arrive.
//!
//! In the loop a master socket only ever becomes readable, and readable means "accept":
//! `Listener::accept` turns one pending connection into a data [`Stream`] plus what is
//! known of its [`Peer`]. This module also owns the life of a Unix socket *file*: a stale
//! file left by a crashed server is replaced, a path a live server answers on is refused, a
//! path that is not a socket is never touched, and the file is removed when the listener
//! is dropped (only if it is still the file this listener created).
//!
//! - `addr.rs`: [`ListenAddr`], where a master socket listens;
//! - [`activation`]: sockets inherited from systemd (socket activation), adopted as they
//!   are, their files never removed;
//! - [`proxy`]: the PROXY protocol, which peers may send a header and the header itself.

pub mod activation;
mod addr;
pub mod proxy;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::io::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use log::{debug, warn};
use mio::event::Source;
use mio::{Interest, Registry, Token};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::error::Error;
use crate::stream::{Peer, PeerCred, Stream};

pub use activation::InheritedSocket;
pub use addr::ListenAddr;

/// TCP, TLS or Unix: the kinds of master socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenerKind {
    /// A TCP socket (IPv4 or IPv6).
    Tcp,
    /// A TCP socket whose connections speak TLS.
    Tls,
    /// A Unix-domain stream socket.
    Unix,
}

impl fmt::Display for ListenerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ListenerKind::Tcp => "tcp",
            ListenerKind::Tls => "tls",
            ListenerKind::Unix => "unix",
        })
    }
}

/// What a client handle remembers of the master socket that accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerInfo {
    /// The address actually bound: for `127.0.0.1:0` this holds the port the OS chose.
    pub addr: ListenAddr,
}

impl ListenerInfo {
    /// TCP, TLS or Unix.
    pub fn kind(&self) -> ListenerKind {
        self.addr.kind()
    }
}

/// How master sockets are created.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BindOptions {
    /// Permission bits of a Unix socket file (connecting needs write permission).
    pub unix_mode: u32,
    /// Length of the kernel's queue of connections not yet accepted.
    pub backlog: i32,
}

enum MasterSocket {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener),
}

/// A bound, listening master socket.
pub(crate) struct Listener {
    socket: MasterSocket,
    /// Shared with every client handle this listener accepts (for `laddr=` and `kind=`).
    info: Arc<ListenerInfo>,
    /// For a Unix listener: the socket file and its inode, removed on drop if unchanged.
    socket_file: Option<SocketFile>,
}

/// A socket file this process created, identified by device and inode so that a file
/// somebody else put at the same path later is never removed by mistake.
struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Listener {
    /// Creates, binds and starts listening on `addr`.
    pub(crate) fn bind(addr: &ListenAddr, options: BindOptions) -> Result<Listener, Error> {
        match addr {
            ListenAddr::Tcp(sockaddr) => bind_tcp(*sockaddr, options, ListenAddr::Tcp),
            ListenAddr::Tls(sockaddr) => bind_tcp(*sockaddr, options, ListenAddr::Tls),
            ListenAddr::Unix(path) => bind_unix(path, options),
        }
    }

    /// Serves on a socket inherited already bound and listening (socket activation). Its
    /// socket file, for a Unix socket, is not this process's to remove.
    pub(crate) fn adopt(inherited: InheritedSocket) -> Result<Listener, Error> {
        let addr = inherited.addr().clone();
        let fd = inherited.into_fd().map_err(|e| Error::bind(&addr, e))?;
        let socket = match addr {
            ListenAddr::Tcp(_) | ListenAddr::Tls(_) => MasterSocket::Tcp(
                mio::net::TcpListener::from_std(std::net::TcpListener::from(fd)),
            ),
            ListenAddr::Unix(_) => MasterSocket::Unix(mio::net::UnixListener::from_std(
                std::os::unix::net::UnixListener::from(fd),
            )),
        };
        Ok(Listener {
            socket,
            info: Arc::new(ListenerInfo { addr }),
            socket_file: None,
        })
    }

    pub(crate) fn info(&self) -> &Arc<ListenerInfo> {
        &self.info
    }

    /// Accepts one pending connection.
    ///
    /// `WouldBlock` means the queue is empty. TCP streams get `TCP_NODELAY`; Unix streams
    /// get the peer's credentials (`SO_PEERCRED`).
    pub(crate) fn accept(&self) -> io::Result<(Stream, Peer)> {
        match &self.socket {
            MasterSocket::Tcp(listener) => {
                let (stream, addr) = listener.accept()?;
                if let Err(e) = stream.set_nodelay(true) {
                    debug!("set TCP_NODELAY failed peer={addr} error={e}");
                }
                Ok((Stream::Tcp(stream), Peer::Tcp(addr)))
            }
            MasterSocket::Unix(listener) => {
                let (stream, _) = listener.accept()?;
                let cred = peer_cred(stream.as_raw_fd());
                Ok((Stream::Unix(stream), Peer::Unix(cred)))
            }
        }
    }
}

impl Source for Listener {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match &mut self.socket {
            MasterSocket::Tcp(l) => l.register(registry, token, interest),
            MasterSocket::Unix(l) => l.register(registry, token, interest),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match &mut self.socket {
            MasterSocket::Tcp(l) => l.reregister(registry, token, interest),
            MasterSocket::Unix(l) => l.reregister(registry, token, interest),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match &mut self.socket {
            MasterSocket::Tcp(l) => l.deregister(registry),
            MasterSocket::Unix(l) => l.deregister(registry),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let Some(file) = &self.socket_file else {
            return;
        };
        match std::fs::symlink_metadata(&file.path) {
            Ok(meta) if meta.dev() == file.dev && meta.ino() == file.ino => {
                if let Err(e) = std::fs::remove_file(&file.path) {
                    warn!(
                        "could not remove socket file path={} error={e}",
                        file.path.display()
                    );
                }
            }
            Ok(_) => warn!(
                "socket file was replaced by another, left in place path={}",
                file.path.display()
            ),
            Err(_) => {}
        }
    }
}

/// Binds a TCP master socket; `scheme` makes its address (`tcp://` or `tls://`).
fn bind_tcp(
    addr: SocketAddr,
    options: BindOptions,
    scheme: fn(SocketAddr) -> ListenAddr,
) -> Result<Listener, Error> {
    let shown = scheme(addr);
    let fail = |e: io::Error| Error::bind(&shown, e);
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(fail)?;
    socket.set_reuse_address(true).map_err(fail)?;
    if addr.is_ipv6() {
        // Let `[::]:p` and `0.0.0.0:p` be bound side by side, as two listeners.
        socket.set_only_v6(true).map_err(fail)?;
    }
    socket.bind(&SockAddr::from(addr)).map_err(fail)?;
    socket.listen(options.backlog).map_err(fail)?;
    socket.set_nonblocking(true).map_err(fail)?;
    let std_listener: std::net::TcpListener = socket.into();
    let bound = std_listener.local_addr().map_err(fail)?;
    Ok(Listener {
        socket: MasterSocket::Tcp(mio::net::TcpListener::from_std(std_listener)),
        info: Arc::new(ListenerInfo {
            addr: scheme(bound),
        }),
        socket_file: None,
    })
}

fn bind_unix(path: &Path, options: BindOptions) -> Result<Listener, Error> {
    let shown = ListenAddr::Unix(path.to_owned());
    let fail = |e: io::Error| Error::bind(&shown, e);
    clear_stale_socket(path)?;

    let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(fail)?;
    socket
        .bind(&SockAddr::unix(path).map_err(fail)?)
        .map_err(fail)?;
    let meta = std::fs::symlink_metadata(path).map_err(fail)?;
    let file = SocketFile {
        path: path.to_owned(),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    // Set the mode between bind and listen: no connection can be made before listen, so
    // there is no window in which the umask's mode applies.
    let set_up = std::fs::set_permissions(path, std::fs::Permissions::from_mode(options.unix_mode))
        .and_then(|()| socket.listen(options.backlog))
        .and_then(|()| socket.set_nonblocking(true));
    if let Err(e) = set_up {
        let _ = std::fs::remove_file(path);
        return Err(fail(e));
    }
    let std_listener = std::os::unix::net::UnixListener::from(std::os::fd::OwnedFd::from(socket));
    Ok(Listener {
        socket: MasterSocket::Unix(mio::net::UnixListener::from_std(std_listener)),
        info: Arc::new(ListenerInfo { addr: shown }),
        socket_file: Some(file),
    })
}

/// Makes `path` free for a new socket, or explains why it cannot be.
///
/// A socket file nobody accepts on is the leftover of a crashed server and is removed; a
/// socket a live process accepts on is refused; anything else at the path is refused and
/// left exactly as it is.
fn clear_stale_socket(path: &Path) -> Result<(), Error> {
    let shown = ListenAddr::Unix(path.to_owned());
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::bind(&shown, e)),
    };
    if !meta.file_type().is_socket() {
        return Err(Error::not_a_socket(path.to_owned()));
    }
    // A non-blocking connect: a live server whose queue is full must not hang start-up.
    let probe = Socket::new(Domain::UNIX, Type::STREAM, None)
        .and_then(|s| s.set_nonblocking(true).map(|()| s))
        .map_err(|e| Error::bind(&shown, e))?;
    let addr = SockAddr::unix(path).map_err(|e| Error::bind(&shown, e))?;
    match probe.connect(&addr) {
        Ok(()) => Err(Error::socket_in_use(path.to_owned())),
        // Queue full: somebody is listening, just busy.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            Err(Error::socket_in_use(path.to_owned()))
        }
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            warn!("removing stale socket file path={}", path.display());
            std::fs::remove_file(path).map_err(|e| Error::bind(&shown, e))
        }
        Err(e) => Err(Error::bind(&shown, e)),
    }
}

/// The connecting process's credentials, as the kernel recorded them at `connect`.
fn peer_cred(fd: RawFd) -> Option<PeerCred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `fd` is an open socket owned by the caller for the duration of the call;
    // `cred` and `len` are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc == 0 && len as usize == std::mem::size_of::<libc::ucred>() {
        Some(PeerCred {
            uid: cred.uid,
            gid: cred.gid,
            pid: cred.pid,
        })
    } else {
        debug!(
            "SO_PEERCRED failed fd={fd} error={}",
            io::Error::last_os_error()
        );
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: BindOptions = BindOptions {
        unix_mode: 0o600,
        backlog: 16,
    };

    #[test]
    fn tcp_port_zero_reports_the_real_port() {
        let l = Listener::bind(&"127.0.0.1:0".parse().unwrap(), OPTIONS).unwrap();
        match &l.info().addr {
            ListenAddr::Tcp(a) => assert_ne!(a.port(), 0),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn unix_socket_file_gets_mode_and_is_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sock");
        let l = Listener::bind(&ListenAddr::unix(&path), OPTIONS).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        drop(l);
        assert!(!path.exists());
    }

    #[test]
    fn stale_socket_is_replaced_live_refused_file_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        // A stale file: bound by a std listener that is then leaked as a file only.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let live = Listener::bind(&ListenAddr::unix(&path), OPTIONS).unwrap();

        let err = Listener::bind(&ListenAddr::unix(&path), OPTIONS)
            .err()
            .unwrap();
        assert_eq!(err.kind(), crate::ErrorKind::SocketInUse);
        drop(live);

        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"keep me").unwrap();
        let err = Listener::bind(&ListenAddr::unix(&plain), OPTIONS)
            .err()
            .unwrap();
        assert_eq!(err.kind(), crate::ErrorKind::NotASocket);
        assert_eq!(std::fs::read(&plain).unwrap(), b"keep me");
    }

    #[test]
    fn busy_live_socket_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.sock");
        // A server that never accepts, its queue of one full.
        let busy = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
        busy.bind(&SockAddr::unix(&path).unwrap()).unwrap();
        busy.listen(1).unwrap();
        let mut queued = Vec::new();
        for _ in 0..4 {
            let s = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
            s.set_nonblocking(true).unwrap();
            let _ = s.connect(&SockAddr::unix(&path).unwrap());
            queued.push(s);
        }
        let err = Listener::bind(&ListenAddr::unix(&path), OPTIONS)
            .err()
            .unwrap();
        assert_eq!(err.kind(), crate::ErrorKind::SocketInUse);
        assert!(path.exists());
    }

    #[test]
    fn replaced_socket_file_is_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sock");
        let l = Listener::bind(&ListenAddr::unix(&path), OPTIONS).unwrap();
        std::fs::remove_file(&path).unwrap();
        let other = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(l);
        assert!(path.exists(), "another process's socket file must stay");
        drop(other);
    }
}
