//! How to reach the server (its [`Target`]: address, and TLS with `--tls`): the
//! [`Stream`] type over TCP, Unix and TLS sockets, and [`connect_many`], which opens
//! connections in batches so that thousands of them never overflow the server's accept
//! backlog.

use std::fmt;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use mio::net::{TcpStream, UnixStream};
use mio::{Events, Interest, Poll, Token};
use muxd::ListenAddr;

use crate::handshake::Greeting;
use crate::report::printable;
use crate::tls::TlsClient;

/// A connected, non-blocking socket to the server: the library's own stream type.
pub use muxd::Stream;

/// Where the load goes: an address, and with `--tls` how to speak TLS there (the address
/// is then `tls://`).
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub addr: ListenAddr,
    pub tls: Option<TlsClient>,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.addr.fmt(f)
    }
}

/// Starts connecting (non-blocking); TCP sockets get `TCP_NODELAY`, TLS ones begin their
/// handshake with the first write or read.
fn connect_stream(target: &Target) -> io::Result<Stream> {
    let tcp = |addr| -> io::Result<TcpStream> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(stream)
    };
    match (&target.addr, &target.tls) {
        (ListenAddr::Tls(addr), Some(tls)) => {
            let conn = tls.connection().map_err(io::Error::other)?;
            Ok(Stream::Tls(Box::new(muxd::TlsStream::new(
                tcp(*addr)?,
                conn,
            ))))
        }
        (ListenAddr::Tcp(addr) | ListenAddr::Tls(addr), _) => tcp(*addr).map(Stream::Tcp),
        (ListenAddr::Unix(path), _) => UnixStream::connect(path).map(Stream::Unix),
    }
}

/// Whether the connection is established (`false` while still connecting).
fn is_connected(stream: &Stream) -> io::Result<bool> {
    let peer = match stream {
        Stream::Tcp(s) => s.peer_addr().map(drop),
        Stream::Unix(s) => s.peer_addr().map(drop),
        Stream::Tls(s) => s.socket().peer_addr().map(drop),
    };
    match peer {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

/// Connections being opened at once, over all threads: well under the usual accept
/// backlogs (muxd 1024, Redis 511).
const CONNECT_BATCH: usize = 256;
/// Descriptors needed beyond one per connection.
const FD_SLACK: usize = 64;

/// Connections each of `threads` threads opens at once (see [`connect_many`]).
pub fn thread_batch(threads: usize) -> usize {
    (CONNECT_BATCH / threads.max(1)).max(1)
}

/// Pause before retrying a Unix connect refused for a full backlog.
const UNIX_RETRY: Duration = Duration::from_millis(2);

/// One connection being opened.
struct Opening {
    stream: Stream,
    /// Connected, and its greeting answered as it must be.
    ready: bool,
    connected: bool,
    /// Bytes of the greeting written.
    written: usize,
    /// Replies read and not yet checked.
    reply: Vec<u8>,
    /// Requests of the greeting answered so far.
    answered: usize,
}

/// Opens `count` connections to `target`, at most `batch` at a time: a batch is started,
/// and the next one only once every connection of it is established and has answered its
/// `greeting` (`HELLO 3`, `AUTH`, and in idle mode a `PING`, which proves the server
/// really accepted it). So no more than `batch` connections ever wait in the server's
/// accept queue.
///
/// A Unix connect refused because the backlog is full (`EAGAIN`; `ECONNREFUSED` once the
/// server has accepted others) is retried after a short sleep. Any other failure, or a
/// batch making no progress for `timeout`, is an error naming the target.
pub fn connect_many(
    target: &Target,
    count: usize,
    batch: usize,
    greeting: &Greeting,
    timeout: Duration,
) -> anyhow::Result<Vec<Stream>> {
    let mut poll = Poll::new().context("creating a poller")?;
    let mut events = Events::with_capacity(1024);
    let mut streams = Vec::with_capacity(count);
    let batch = batch.max(1);
    while streams.len() < count {
        let size = batch.min(count - streams.len());
        let mut opening = Vec::with_capacity(size);
        let mut deadline = Instant::now() + timeout;
        for i in 0..size {
            let mut stream = start_connect(target, !streams.is_empty() || i > 0, deadline)?;
            poll.registry()
                .register(
                    &mut stream,
                    Token(i),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .context("registering a connection")?;
            opening.push(Opening {
                stream,
                ready: false,
                connected: false,
                written: 0,
                reply: Vec::new(),
                answered: 0,
            });
        }
        let mut left = size;
        while left > 0 {
            let now = Instant::now();
            if now >= deadline {
                bail!(
                    "cannot connect to {target}: {left} of {size} connections still not {} after {:.1} s",
                    if greeting.is_empty() {
                        "established"
                    } else {
                        "answering their greeting"
                    },
                    timeout.as_secs_f64()
                );
            }
            if let Err(e) = poll.poll(&mut events, Some(deadline - now)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e).context("poll");
            }
            for event in events.iter() {
                let Some(o) = opening.get_mut(event.token().0) else {
                    continue;
                };
                if o.ready {
                    continue;
                }
                o.step(greeting)
                    .with_context(|| format!("cannot connect to {target}"))?;
                if o.ready {
                    left -= 1;
                    deadline = Instant::now() + timeout;
                }
            }
        }
        for mut o in opening {
            poll.registry()
                .deregister(&mut o.stream)
                .context("deregistering a connection")?;
            streams.push(o.stream);
        }
    }
    Ok(streams)
}

/// Starts one connect, retrying a Unix socket whose backlog is full until `deadline`.
/// `accepted_before`: the server has already accepted a connection of this run, so a
/// refused Unix connect means a full backlog rather than no server.
fn start_connect(
    target: &Target,
    accepted_before: bool,
    deadline: Instant,
) -> anyhow::Result<Stream> {
    loop {
        match connect_stream(target) {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                let full = matches!(target.addr, ListenAddr::Unix(_))
                    && (e.kind() == io::ErrorKind::WouldBlock
                        || (accepted_before && e.kind() == io::ErrorKind::ConnectionRefused));
                if full && Instant::now() < deadline {
                    std::thread::sleep(UNIX_RETRY);
                    continue;
                }
                return Err(explain(target, e));
            }
        }
    }
}

/// The connect error with the target and a hint for the usual causes.
pub fn explain(target: &dyn fmt::Display, e: io::Error) -> anyhow::Error {
    let hint = match e.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => " (is the server running?)",
        _ if e.raw_os_error() == Some(libc::EMFILE) => " (raise the open-file limit: ulimit -n)",
        _ if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => {
            " (out of local ports for that many TCP connections?)"
        }
        _ => "",
    };
    anyhow!("cannot connect to {target}: {e}{hint}")
}

impl Opening {
    /// Moves this connection forward after an event.
    fn step(&mut self, greeting: &Greeting) -> anyhow::Result<()> {
        if !self.connected {
            if let Some(e) = self.stream.take_error()? {
                let hint = if e.kind() == io::ErrorKind::ConnectionRefused {
                    " (is the server running?)"
                } else {
                    ""
                };
                bail!("{e}{hint}");
            }
            if !is_connected(&self.stream)? {
                return Ok(());
            }
            self.connected = true;
            if greeting.is_empty() {
                self.ready = true;
                return Ok(());
            }
        }
        // TLS handshake records the socket did not take at once.
        self.stream
            .send_pending()
            .context("sending the TLS handshake")?;
        while let Some(rest) = greeting.bytes.get(self.written..).filter(|r| !r.is_empty()) {
            match self.stream.write(rest) {
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // The server may have said why before closing (Redis and muxd send
                    // "-ERR max number of clients reached").
                    let mut said = [0u8; 256];
                    let said = match self.stream.read(&mut said) {
                        Ok(n) if n > 0 => said.get(..n).unwrap_or_default(),
                        _ => &[],
                    };
                    if said.is_empty() {
                        bail!("sending the greeting: {e}");
                    }
                    bail!(
                        "sending the greeting: {e} (the server sent \"{}\")",
                        printable(said, 200)
                    );
                }
            }
        }
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => bail!(
                    "the server closed the connection instead of answering{}",
                    if self.reply.is_empty() {
                        String::new()
                    } else {
                        format!(" (it sent \"{}\")", printable(&self.reply, 200))
                    }
                ),
                Ok(n) => {
                    self.reply
                        .extend_from_slice(buf.get(..n).unwrap_or_default());
                    let used = greeting
                        .check(&self.reply, &mut self.answered)
                        .map_err(|e| anyhow!(e))?;
                    self.reply.drain(..used);
                    if greeting.done(self.answered) {
                        if !self.reply.is_empty() {
                            bail!(
                                "the server sent more than the replies to its greeting: \"{}\"",
                                printable(&self.reply, 200)
                            );
                        }
                        self.ready = true;
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => bail!("waiting for the replies to the greeting: {e}"),
            }
        }
    }
}

/// Raises the open-file limit to fit `connections` and a few more descriptors, as far as
/// the hard limit allows; an error says how to raise it when that is not enough.
pub fn ensure_fd_limit(connections: usize) -> anyhow::Result<()> {
    let needed = connections + FD_SLACK;
    let limit = muxd::fd_limit::raise(needed).context("reading the open-file limit")?;
    if limit.soft < u64::try_from(needed).unwrap_or(u64::MAX) {
        bail!(
            "{needed} file descriptors are needed but the limit is {} (hard limit {}); raise it with ulimit -n",
            limit.soft,
            limit.hard
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn plain(addr: ListenAddr) -> Target {
        Target { addr, tls: None }
    }

    #[test]
    fn targets_print_as_urls() {
        assert_eq!(
            ListenAddr::resolve("127.0.0.1", 7379).unwrap().to_string(),
            "tcp://127.0.0.1:7379"
        );
        assert_eq!(
            ListenAddr::resolve("::1", 6379).unwrap().to_string(),
            "tcp://[::1]:6379"
        );
        assert_eq!(
            ListenAddr::resolve("localhost", 6379).unwrap().to_string(),
            "tcp://127.0.0.1:6379"
        );
        assert_eq!(
            ListenAddr::Unix(PathBuf::from("/tmp/m.sock")).to_string(),
            "unix:///tmp/m.sock"
        );
    }

    #[test]
    fn nobody_listening_is_a_clear_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let none = Greeting::default();
        let e = connect_many(
            &plain(ListenAddr::Tcp(addr)),
            3,
            2,
            &none,
            Duration::from_secs(5),
        )
        .map(drop)
        .map_err(|e| format!("{e:#}"))
        .unwrap_err();
        assert!(e.contains("cannot connect to tcp://127.0.0.1:"), "{e}");
        assert!(e.contains("refused"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.sock");
        let ping = Greeting::new(false, None, None, true);
        let e = connect_many(
            &plain(ListenAddr::Unix(path)),
            1,
            1,
            &ping,
            Duration::from_secs(5),
        )
        .map(drop)
        .map_err(|e| format!("{e:#}"))
        .unwrap_err();
        assert!(e.contains("cannot connect to unix://"), "{e}");
    }

    #[test]
    fn connects_in_batches_and_checks_pong() {
        use std::io::{Read as _, Write as _};
        const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";
        const PONG: &[u8] = b"+PONG\r\n";
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let mut held = Vec::new();
            for _ in 0..5 {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = [0u8; PING.len()];
                s.read_exact(&mut buf).unwrap();
                assert_eq!(buf, PING);
                s.write_all(PONG).unwrap();
                held.push(s);
            }
            held
        });
        let ping = Greeting::new(false, None, None, true);
        let streams = connect_many(
            &plain(ListenAddr::Tcp(addr)),
            5,
            2,
            &ping,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(streams.len(), 5);
        assert_eq!(server.join().unwrap().len(), 5);
    }
}
