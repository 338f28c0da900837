//! Shared helpers for the integration tests: start the real `muxd` binary, wait for its
//! `READY` line (never a sleep), talk RESP to it over real sockets.
//!
//! Every blocking read has a timeout, every server binds port 0 and a per-test temp path,
//! and every process a test starts is killed when its guard drops. When a test fails,
//! the guard prints the command line and the daemon's captured stderr.

#![allow(dead_code)]

pub mod bench;
pub mod haproxy;
pub mod notify;
pub mod redis_server;
pub mod tls;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use muxd::resp::{Framer, Value, encode_request};

pub mod lines;

/// How long any single wait in a test may take before it counts as a failure.
pub const TIMEOUT: Duration = Duration::from_secs(20);

pub fn muxd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_muxd")
}

/// A running `muxd` process, killed on drop.
pub struct Muxd {
    child: Option<Child>,
    pub args: Vec<String>,
    /// The addresses from the READY line, as printed (`tcp://…`, `unix://…`).
    pub ready: Vec<String>,
    stderr: Arc<Mutex<String>>,
    /// The temp dir holding this server's socket files (removed on drop).
    pub dir: tempfile::TempDir,
}

impl Muxd {
    /// Starts muxd on `127.0.0.1:0` and `<tempdir>/muxd.sock`, plus `extra` flags.
    #[track_caller]
    pub fn start(extra: &[&str]) -> Muxd {
        Muxd::start_adjusted(extra, |_| {})
    }

    /// Like [`start`](Muxd::start), letting the caller adjust the command (environment).
    #[track_caller]
    pub fn start_adjusted(extra: &[&str], adjust: impl FnOnce(&mut Command)) -> Muxd {
        let dir = tempfile::tempdir().expect("temp dir");
        let sock = dir.path().join("muxd.sock");
        let mut args: Vec<String> = vec![
            "--tcp".into(),
            "127.0.0.1:0".into(),
            "--unix".into(),
            sock.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Muxd::start_command(dir, args, adjust)
    }

    /// Starts muxd with exactly `args`, waiting for its READY line.
    #[track_caller]
    pub fn start_args(dir: tempfile::TempDir, args: Vec<String>) -> Muxd {
        Muxd::start_command(dir, args, |_| {})
    }

    /// Like [`start_args`](Muxd::start_args), letting the caller adjust the command
    /// (environment, resource limits).
    #[track_caller]
    pub fn start_command(
        dir: tempfile::TempDir,
        args: Vec<String>,
        adjust: impl FnOnce(&mut Command),
    ) -> Muxd {
        Muxd::start_via(dir, &[], args, adjust)
    }

    /// Like [`start_command`](Muxd::start_command), run by `wrapper` (a program and its
    /// arguments, such as `systemd-socket-activate -l ADDR`) that execs muxd in its place.
    #[track_caller]
    pub fn start_via(
        dir: tempfile::TempDir,
        wrapper: &[String],
        args: Vec<String>,
        adjust: impl FnOnce(&mut Command),
    ) -> Muxd {
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(muxd_bin());
                command
            }
            None => Command::new(muxd_bin()),
        };
        command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        adjust(&mut command);
        let mut child = command.spawn().expect("spawn muxd");
        let stderr = Arc::new(Mutex::new(String::new()));
        collect_lines(child.stderr.take().expect("stderr pipe"), &stderr, None);
        let out_pipe = child.stdout.take().expect("stdout pipe");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(out_pipe);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line.clone());
            // Keep draining so the daemon never blocks on a full pipe.
            while reader.read_line(&mut line).unwrap_or(0) > 0 {}
        });
        let mut muxd = Muxd {
            child: Some(child),
            args,
            ready: Vec::new(),
            stderr,
            dir,
        };
        match rx.recv_timeout(TIMEOUT) {
            Ok(line) if line.starts_with("READY ") => {
                muxd.ready = line
                    .trim_end()
                    .split(' ')
                    .skip(1)
                    .map(str::to_owned)
                    .collect();
            }
            Ok(line) => muxd.fail(&format!("expected a READY line, got {line:?}")),
            Err(_) => muxd.fail("no READY line within the timeout"),
        }
        muxd
    }

    /// The first TCP address from the READY line.
    #[track_caller]
    pub fn tcp_addr(&self) -> SocketAddr {
        self.ready
            .iter()
            .find_map(|a| a.strip_prefix("tcp://"))
            .unwrap_or_else(|| self.fail("no tcp listener"))
            .parse()
            .expect("tcp address")
    }

    /// The first Unix socket path from the READY line.
    #[track_caller]
    pub fn unix_path(&self) -> PathBuf {
        PathBuf::from(
            self.ready
                .iter()
                .find_map(|a| a.strip_prefix("unix://"))
                .unwrap_or_else(|| self.fail("no unix listener")),
        )
    }

    #[track_caller]
    pub fn tcp(&self) -> Client {
        Client::tcp(self.tcp_addr())
    }

    #[track_caller]
    pub fn unix(&self) -> Client {
        Client::unix(&self.unix_path())
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.pid(), signal);
        }
    }

    /// Waits for the daemon to exit, failing the test after `timeout`.
    #[track_caller]
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            let child = self.child.as_mut().expect("child");
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if start.elapsed() > timeout {
                self.fail("daemon did not exit within the timeout");
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything the daemon wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until the daemon's stderr contains `needle`.
    #[track_caller]
    pub fn wait_for_log(&self, needle: &str) {
        let start = Instant::now();
        while !self.stderr().contains(needle) {
            if start.elapsed() > TIMEOUT {
                self.fail(&format!("log never contained {needle:?}"));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[track_caller]
    pub fn fail(&self, message: &str) -> ! {
        panic!(
            "{message}\ncommand: {} {}\nstderr:\n{}",
            muxd_bin(),
            self.args.join(" "),
            self.stderr()
        );
    }

    /// `INFO` field value.
    #[track_caller]
    pub fn info_field(&self, field: &str) -> String {
        let mut c = self.tcp();
        info_field(&mut c, field)
    }
}

impl Drop for Muxd {
    fn drop(&mut self) {
        stop_child(self.child.take(), "muxd", &self.args, &self.stderr);
    }
}

/// Kills and reaps a server a test started; if the test is failing, prints its command
/// line and what it logged.
pub fn stop_child(child: Option<Child>, name: &str, args: &[String], log: &Mutex<String>) {
    if let Some(mut child) = child {
        let _ = child.kill();
        let _ = child.wait();
    }
    if thread::panicking() {
        eprintln!(
            "--- {name} {} log ---\n{}",
            args.join(" "),
            log.lock().unwrap()
        );
    }
}

/// Appends every line from `pipe` to `sink` on a thread of its own, also sending each to
/// `lines` when given, until end of file (so a child never blocks on a full pipe).
pub fn collect_lines(
    pipe: impl Read + Send + 'static,
    sink: &Arc<Mutex<String>>,
    lines: Option<mpsc::Sender<String>>,
) {
    let sink = Arc::clone(sink);
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            sink.lock().unwrap().push_str(&line);
            if let Some(tx) = &lines {
                let _ = tx.send(line.clone());
            }
            line.clear();
        }
    });
}

/// A TCP port nobody listens on right now, for tools that cannot bind port 0 themselves
/// (`systemd-socket-activate`, HAProxy's config file).
///
/// Taken below the kernel's ephemeral range (`ip_local_port_range`), where nothing that
/// binds port 0 (every other test's server, every outgoing connection) is ever given a
/// port, so none can take it between this call and the tool's bind; and never the same
/// twice in one test process. Free on loopback for IPv4 and IPv6 both.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u32, ephemeral_low.max(10_001));
    let span = high - low;
    // Test processes run one after another, but spread them anyway.
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (low + (start + n) % span) as u16;
        let v4 = std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
        // In use over IPv6 rules it out; no IPv6 on the machine does not.
        let v6 = std::net::TcpListener::bind(("::1", port))
            .map_or_else(|e| e.kind() != io::ErrorKind::AddrInUse, |_| true);
        if v4 && v6 {
            return port;
        }
    }
    panic!("no free port below the ephemeral range");
}

/// Runs `muxd` with `args` and expects it to exit without printing READY.
pub fn run_failing(args: &[&str]) -> (ExitStatus, String, String) {
    let mut child = Command::new(muxd_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn muxd");
    let start = Instant::now();
    loop {
        if let Some(_status) = child.try_wait().expect("try_wait") {
            let output = child.wait_with_output().expect("output");
            return (
                output.status,
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            );
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "muxd {args:?} did not exit; stdout {:?} stderr {:?}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// A RESP2 reply as a test sees it: the library's [`Value`] with text as `String`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Reply>),
    NilArray,
}

impl Reply {
    pub fn bulk(s: &str) -> Reply {
        Reply::Bulk(s.as_bytes().to_vec())
    }
    pub fn simple(s: &str) -> Reply {
        Reply::Simple(s.to_owned())
    }
    /// The text of a bulk or simple string.
    #[track_caller]
    pub fn text(&self) -> String {
        match self {
            Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            Reply::Simple(s) => s.clone(),
            other => panic!("expected a string reply, got {other:?}"),
        }
    }
}

impl TryFrom<Value> for Reply {
    type Error = io::Error;

    /// The RESP2 kinds; text must be UTF-8, and RESP3 kinds are refused (muxd speaks
    /// RESP2: read those with [`Client::try_read_value`]).
    fn try_from(value: Value) -> io::Result<Reply> {
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).map_err(|_| bad("non-utf8 text"));
        Ok(match value {
            Value::Simple(s) => Reply::Simple(text(s)?),
            Value::Error(s) => Reply::Error(text(s)?),
            Value::Integer(n) => Reply::Int(n),
            Value::Bulk(b) => Reply::Bulk(b),
            Value::Null => Reply::Nil,
            Value::NullArray => Reply::NilArray,
            Value::Array(items) => Reply::Array(
                items
                    .into_iter()
                    .map(Reply::try_from)
                    .collect::<io::Result<_>>()?,
            ),
            other => return Err(bad(&format!("a RESP3 reply: {other:?}"))),
        })
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<muxd::rustls::StreamOwned<muxd::rustls::ClientConnection, TcpStream>>),
}

/// A blocking RESP client with a read timeout.
pub struct Client {
    stream: Stream,
    /// Bytes received and not yet parsed into a reply.
    buf: Vec<u8>,
    /// Progress through the reply at the start of `buf`.
    framer: Framer,
}

impl Client {
    #[track_caller]
    pub fn tcp(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect tcp");
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        Client {
            stream: Stream::Tcp(stream),
            buf: Vec::new(),
            framer: Framer::new(),
        }
    }

    /// A TLS client (the handshake is done with the first read or write): `name` is the
    /// name the server's certificate must carry.
    #[track_caller]
    pub fn tls(addr: SocketAddr, config: Arc<muxd::rustls::ClientConfig>, name: &str) -> Client {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect tcp");
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let name = muxd::rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
        let conn = muxd::rustls::ClientConnection::new(config, name).expect("tls client");
        Client {
            stream: Stream::Tls(Box::new(muxd::rustls::StreamOwned::new(conn, stream))),
            buf: Vec::new(),
            framer: Framer::new(),
        }
    }

    /// Completes the TLS handshake (a TLS client only).
    pub fn tls_handshake(&mut self) -> io::Result<()> {
        match &mut self.stream {
            Stream::Tls(s) => {
                while s.conn.is_handshaking() {
                    s.conn.complete_io(&mut s.sock)?;
                }
                Ok(())
            }
            Stream::Tcp(_) | Stream::Unix(_) => Ok(()),
        }
    }

    #[track_caller]
    pub fn unix(path: &Path) -> Client {
        let stream = UnixStream::connect(path).expect("connect unix");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        Client {
            stream: Stream::Unix(stream),
            buf: Vec::new(),
            framer: Framer::new(),
        }
    }

    pub fn set_read_timeout(&self, timeout: Duration) {
        match &self.stream {
            Stream::Tcp(s) => s.set_read_timeout(Some(timeout)).unwrap(),
            Stream::Unix(s) => s.set_read_timeout(Some(timeout)).unwrap(),
            Stream::Tls(s) => s.sock.set_read_timeout(Some(timeout)).unwrap(),
        }
    }

    pub fn tcp_stream(&self) -> Option<&TcpStream> {
        match &self.stream {
            Stream::Tcp(s) => Some(s),
            Stream::Tls(s) => Some(&s.sock),
            Stream::Unix(_) => None,
        }
    }

    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.stream {
            Stream::Tcp(s) => s.write_all(bytes),
            Stream::Unix(s) => s.write_all(bytes),
            Stream::Tls(s) => s.write_all(bytes),
        }
    }

    #[track_caller]
    pub fn send(&mut self, bytes: &[u8]) {
        self.write_raw(bytes).expect("write to muxd");
    }

    pub fn shutdown_write(&self) {
        let _ = match &self.stream {
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
            Stream::Tls(s) => s.sock.shutdown(Shutdown::Write),
        };
    }

    fn read_more(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 64 * 1024];
        let n = match &mut self.stream {
            Stream::Tcp(s) => s.read(&mut chunk)?,
            Stream::Unix(s) => s.read(&mut chunk)?,
            Stream::Tls(s) => s.read(&mut chunk)?,
        };
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads one reply, of any RESP2 or RESP3 kind; `Err(UnexpectedEof)` if the server
    /// closed first.
    pub fn try_read_value(&mut self) -> io::Result<Value> {
        loop {
            match self.framer.parse(&self.buf) {
                Ok(Some((value, used))) => {
                    self.buf.drain(..used);
                    return Ok(value);
                }
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
            if self.read_more()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Reads one reply; `Err(UnexpectedEof)` if the server closed first.
    pub fn try_read_reply(&mut self) -> io::Result<Reply> {
        self.try_read_value().and_then(Reply::try_from)
    }

    #[track_caller]
    pub fn read_reply(&mut self) -> Reply {
        match self.try_read_reply() {
            Ok(reply) => reply,
            Err(e) => panic!("reading a reply failed: {e}"),
        }
    }

    /// Sends a command as a multibulk request and reads its reply.
    #[track_caller]
    pub fn cmd(&mut self, words: &[&str]) -> Reply {
        let parts: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        self.cmd_bytes(&parts)
    }

    /// Sends a command and reads its reply as a [`Value`] of any kind (RESP3 included).
    #[track_caller]
    pub fn value(&mut self, words: &[&str]) -> Value {
        let parts: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        self.send(&encode(&parts));
        match self.try_read_value() {
            Ok(value) => value,
            Err(e) => panic!("reading the reply to {words:?} failed: {e}"),
        }
    }

    /// Sends a command and reads the raw bytes of its one reply.
    #[track_caller]
    pub fn raw(&mut self, words: &[&str]) -> Vec<u8> {
        let parts: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        self.send(&encode(&parts));
        self.read_raw()
    }

    /// Reads the raw bytes of one reply, or `None` once the server has closed the
    /// connection (end of stream or reset) with no partial reply left.
    #[track_caller]
    pub fn read_raw_or_end(&mut self) -> Option<Vec<u8>> {
        loop {
            match self.framer.advance(&self.buf) {
                Ok(Some(len)) => return Some(self.buf.drain(..len).collect()),
                Ok(None) => {}
                Err(e) => panic!(
                    "malformed reply {:?}: {e}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
            match self.read_more() {
                Ok(0) if self.buf.is_empty() => return None,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset && self.buf.is_empty() => {
                    return None;
                }
                Ok(0) => panic!(
                    "the connection closed inside a reply: {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(_) => {}
                Err(e) => panic!("reading a reply failed: {e}"),
            }
        }
    }

    /// Reads the raw bytes of one reply, of any kind.
    #[track_caller]
    pub fn read_raw(&mut self) -> Vec<u8> {
        loop {
            match self.framer.advance(&self.buf) {
                Ok(Some(len)) => return self.buf.drain(..len).collect(),
                Ok(None) => {}
                Err(e) => panic!(
                    "malformed reply {:?}: {e}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
            match self.read_more() {
                Ok(0) => panic!("the server closed the connection before replying"),
                Ok(_) => {}
                Err(e) => panic!("reading a reply failed: {e}"),
            }
        }
    }

    #[track_caller]
    pub fn cmd_bytes(&mut self, words: &[&[u8]]) -> Reply {
        self.send(&encode(words));
        self.read_reply()
    }

    /// Bytes received but not yet parsed into a reply (a truncated reply at EOF).
    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Asserts the server closes the connection (after any replies already read).
    #[track_caller]
    pub fn expect_closed(&mut self) {
        self.buf.clear();
        self.framer.reset();
        match self.read_more() {
            Ok(0) => {}
            Ok(_) => panic!(
                "expected the connection to be closed, got {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("expected the connection to be closed, got error {e}"),
        }
    }

    /// Reads whatever values are still on the way (part of a stream), then asserts the
    /// connection ends (EOF or reset), not a wait.
    #[track_caller]
    pub fn expect_closed_after_replies(&mut self) {
        let end = loop {
            match self.try_read_value() {
                Ok(_) => {}
                Err(e) => break e.kind(),
            }
        };
        assert!(
            matches!(
                end,
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
            ),
            "{end:?}"
        );
    }

    /// Sends PING; `Some(true)` on PONG, `Some(false)` on an error reply, `None` if the
    /// connection was closed.
    pub fn try_read_ping(&mut self) -> Option<bool> {
        self.write_raw(b"PING\r\n").ok()?;
        match self.try_read_reply().ok()? {
            Reply::Simple(s) if s == "PONG" => Some(true),
            _ => Some(false),
        }
    }

    /// This client's id, from `CLIENT ID`.
    #[track_caller]
    pub fn id(&mut self) -> i64 {
        match self.cmd(&["CLIENT", "ID"]) {
            Reply::Int(id) => id,
            other => panic!("CLIENT ID replied {other:?}"),
        }
    }
}

/// Encodes a multibulk request.
pub fn encode(words: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_request(words, &mut out);
    out
}

/// Parses one reply from the front of `buf`: `Ok(None)` if incomplete.
pub fn parse_reply(buf: &[u8]) -> io::Result<Option<(Reply, usize)>> {
    match Value::parse(buf) {
        Ok(Some((value, used))) => Ok(Some((Reply::try_from(value)?, used))),
        Ok(None) => Ok(None),
        Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
    }
}

/// CPU time (user + system) the process has used, in seconds, from `/proc/PID/stat`.
pub fn cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// Resident set size of a process in bytes, from `/proc/PID/status`.
pub fn rss_bytes(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// Number of file descriptors a process has open.
pub fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read fd dir")
        .count()
}

/// Sets a running process's soft open-file limit (the hard limit stays, so it can be
/// raised again without privileges).
pub fn set_fd_limit(pid: i32, limit: u64) {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit on a child we own, reading its limits into `old`.
    let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, std::ptr::null(), &mut old) };
    assert_eq!(rc, 0, "prlimit: {}", io::Error::last_os_error());
    let new = libc::rlimit {
        rlim_cur: limit.min(old.rlim_max),
        rlim_max: old.rlim_max,
    };
    // SAFETY: as above, writing a valid rlimit.
    let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, &new, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", io::Error::last_os_error());
}

/// Reads one field of `INFO` through `client`.
#[track_caller]
pub fn info_field(client: &mut Client, field: &str) -> String {
    let text = client.cmd(&["INFO"]).text();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("INFO has no field {field}:\n{text}"))
        .trim()
        .to_owned()
}

/// Parses `CLIENT LIST` output into one map per line.
pub fn parse_client_list(text: &str) -> Vec<std::collections::HashMap<String, String>> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            line.split(' ')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// Polls `check` until it is true, failing after the timeout (for server-side effects
/// that complete asynchronously, such as a disconnect being noticed).
#[track_caller]
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        if start.elapsed() > TIMEOUT {
            panic!("timed out waiting for: {what}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Whether an external tool is on PATH. In CI a missing tool is a failure, elsewhere the
/// test is skipped with a note.
#[track_caller]
pub fn require_tool(name: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    require(found, &format!("{name} is not installed"))
}

/// `found`, or, when something a test needs is missing: a failure in CI (`CI` set, where
/// `.ci/run` must install it), elsewhere a skip with a note saying `missing`.
#[track_caller]
pub fn require(found: bool, missing: &str) -> bool {
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("{missing}; .ci/run must install it");
        }
        eprintln!("skipping: {missing}");
    }
    found
}
