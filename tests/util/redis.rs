//! A real `redis-server` for the differential tests: started on a Unix socket in a temp
//! dir (no port to race for), `--save '' --appendonly no`, optionally `--requirepass`;
//! ready once it logs so (never a sleep); killed on drop.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use super::{Client, TIMEOUT, require_tool};

/// A running `redis-server`, killed on drop.
pub struct Redis {
    child: Child,
    pub socket: PathBuf,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// Starts one with `extra` flags, or returns `None` (after a note) when `redis-server`
    /// is not installed and this is not CI; in CI a missing server fails the test.
    #[track_caller]
    pub fn start(extra: &[&str]) -> Option<Redis> {
        if !require_tool("redis-server") {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("redis.sock");
        let mut child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--daemonize", "no", "--logfile", "", "--dir"])
            .arg(dir.path())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn redis-server");
        let log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        for pipe in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let log = Arc::clone(&log);
            let ready_tx = ready_tx.clone();
            thread::spawn(move || {
                let mut reader = BufReader::new(pipe);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    // "Ready to accept connections" (TCP), "The server is now ready to
                    // accept connections at <path>" (a Unix socket, as here).
                    if line
                        .to_ascii_lowercase()
                        .contains("ready to accept connections")
                    {
                        let _ = ready_tx.send(());
                    }
                    log.lock().unwrap().push_str(&line);
                    line.clear();
                }
            });
        }
        let redis = Redis {
            child,
            socket,
            log,
            _dir: dir,
        };
        if ready_rx.recv_timeout(TIMEOUT).is_err() {
            let log = redis.log.lock().unwrap().clone();
            panic!("redis-server {extra:?} never became ready; its log:\n{log}");
        }
        Some(redis)
    }

    /// A new connection to it.
    #[track_caller]
    pub fn connect(&self) -> Client {
        Client::unix(&self.socket)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            let log = self.log.lock().map(|l| l.clone()).unwrap_or_default();
            eprintln!("--- redis-server log ---\n{log}");
        }
    }
}
