//! A real `redis-server`, the reference muxd follows, for tests that run the same thing
//! against both: started on a free loopback port and a Unix socket in a temp dir, nothing
//! persisted (`--save '' --appendonly no`), waited for by its "Ready to accept
//! connections" log line (never a sleep), killed on drop, its log printed if the test
//! fails. Callers check `require_tool("redis-server")` first.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use super::{Client, TIMEOUT, collect_lines, require_tool, stop_child};

/// What Redis logs once every listener is open (7.0: "Ready to accept connections";
/// 7.2 adds the listener's kind after it).
const READY: &str = "Ready to accept connections";

/// A running `redis-server`, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    /// Holds the Unix socket and Redis's working directory (removed on drop).
    dir: tempfile::TempDir,
    args: Vec<String>,
    /// Everything Redis logged (stdout and stderr).
    log: Arc<Mutex<String>>,
}

impl RedisServer {
    /// Starts one like [`start`](RedisServer::start) when `redis-server` is installed; else
    /// `None`, after a note, or a failure in CI (see `require_tool`).
    #[track_caller]
    pub fn start_if_installed(extra: &[&str]) -> Option<RedisServer> {
        require_tool("redis-server").then(|| RedisServer::start(extra))
    }

    /// A client connected to its Unix socket.
    pub fn connect(&self) -> Client {
        Client::unix(&self.unix_path())
    }

    /// Starts redis-server with the reference settings plus `extra` (such as
    /// `["--requirepass", "pw"]`). Redis cannot bind port 0 (that disables TCP), so a free
    /// port is picked first; if another process takes it meanwhile, a new one is tried.
    #[track_caller]
    pub fn start(extra: &[&str]) -> RedisServer {
        let mut last_log = String::new();
        for _ in 0..3 {
            match RedisServer::try_start(extra) {
                Ok(server) => return server,
                Err(log) if log.contains("Address already in use") => last_log = log,
                Err(log) => panic!("redis-server did not start:\n{log}"),
            }
        }
        panic!("redis-server found no free port in 3 tries:\n{last_log}");
    }

    /// Starts one redis-server, returning its log if it exits or stays silent instead of
    /// becoming ready.
    fn try_start(extra: &[&str]) -> Result<RedisServer, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--unixsocket",
            &dir.path().join("redis.sock").display().to_string(),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir.path().display().to_string(),
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]
        .map(str::to_owned)
        .to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut child = Command::new("redis-server")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn redis-server");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        collect_lines(child.stdout.take().expect("stdout"), &log, Some(tx.clone()));
        collect_lines(child.stderr.take().expect("stderr"), &log, Some(tx));
        let server = RedisServer {
            child: Some(child),
            port,
            dir,
            args,
            log,
        };
        let start = Instant::now();
        loop {
            let Some(left) = TIMEOUT.checked_sub(start.elapsed()) else {
                return Err(format!("no {READY:?} within the timeout\n{}", server.log()));
            };
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(READY) => return Ok(server),
                Ok(_) => {}
                // Both pipes closed, every line logged: Redis exited.
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(server.log()),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("no {READY:?} within the timeout\n{}", server.log()));
                }
            }
        }
    }

    /// The value given to a flag (`--tls-port`), if it was given.
    pub fn arg_after(&self, flag: &str) -> Option<&str> {
        let at = self.args.iter().position(|a| a == flag)?;
        self.args.get(at + 1).map(String::as_str)
    }

    pub fn tcp_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn unix_path(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// Everything Redis logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        stop_child(self.child.take(), "redis-server", &self.args, &self.log);
    }
}
