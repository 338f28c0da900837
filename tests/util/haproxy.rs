//! A real HAProxy, started from the shipped `contrib/haproxy/haproxy.cfg` with its
//! addresses and paths replaced by the test's, in the foreground (`-db`), killed on drop,
//! its log printed if the test fails. Its admin socket answers `show stat`. Callers check
//! `require_tool("haproxy")` first.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::{TIMEOUT, collect_lines, eventually, stop_child};

/// The shipped configuration.
pub const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/haproxy/haproxy.cfg");
/// Its admin socket's path, replaced by one in the test's temp dir.
const STATS_SOCKET: &str = "/run/haproxy/muxd-admin.sock";

/// A running HAProxy, killed on drop.
pub struct Haproxy {
    child: Option<Child>,
    args: Vec<String>,
    log: Arc<Mutex<String>>,
    stats: PathBuf,
    /// Holds the configuration written and the admin socket.
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// Starts HAProxy from the shipped configuration, each `(from, to)` replaced (every
    /// `from` must occur: the file and the test must agree).
    #[track_caller]
    pub fn start(replacements: &[(&str, String)]) -> Haproxy {
        let dir = tempfile::tempdir().expect("temp dir");
        let stats = dir.path().join("admin.sock");
        let mut config = std::fs::read_to_string(CONFIG).expect("read the shipped haproxy.cfg");
        let stats_text = stats.display().to_string();
        for (from, to) in replacements.iter().chain([&(STATS_SOCKET, stats_text)]) {
            assert!(config.contains(from), "{CONFIG} no longer has {from:?}");
            config = config.replace(from, to);
        }
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, &config).expect("write haproxy.cfg");
        let args = vec![
            "-db".to_owned(),
            "-f".to_owned(),
            path.display().to_string(),
        ];
        let mut child = Command::new("haproxy")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn haproxy");
        let log = Arc::new(Mutex::new(format!(
            "--- configuration ---\n{config}\n--- log ---\n"
        )));
        collect_lines(child.stdout.take().expect("stdout"), &log, None);
        collect_lines(child.stderr.take().expect("stderr"), &log, None);
        let mut haproxy = Haproxy {
            child: Some(child),
            args,
            log,
            stats,
            _dir: dir,
        };
        let started = Instant::now();
        while UnixStream::connect(&haproxy.stats).is_err() {
            let exited = haproxy
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!("haproxy exited with {status}:\n{}", haproxy.log());
            }
            assert!(
                started.elapsed() < TIMEOUT,
                "haproxy opened no admin socket"
            );
            thread::sleep(Duration::from_millis(5));
        }
        haproxy
    }

    /// What HAProxy logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The answer to an admin socket command.
    #[track_caller]
    pub fn admin(&self, command: &str) -> String {
        let mut socket = UnixStream::connect(&self.stats).expect("connect the admin socket");
        socket.set_read_timeout(Some(TIMEOUT)).unwrap();
        socket.write_all(format!("{command}\n").as_bytes()).unwrap();
        let mut answer = String::new();
        socket
            .read_to_string(&mut answer)
            .expect("read the admin answer");
        answer
    }

    /// The `status` column of `show stat` for `server` (`UP`, `DOWN`, `MAINT`, ...).
    #[track_caller]
    pub fn status(&self, server: &str) -> Option<String> {
        let stat = self.admin("show stat");
        let mut lines = stat.lines();
        let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
        let column = |name: &str| header.iter().position(|h| *h == name);
        let (sv, status) = (column("svname")?, column("status")?);
        lines.find_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            (fields.get(sv) == Some(&server)).then(|| fields.get(status).map(|s| s.to_string()))?
        })
    }

    /// Waits until `server`'s status starts with `want`.
    #[track_caller]
    pub fn wait_status(&self, server: &str, want: &str) {
        eventually(&format!("haproxy reports {server} {want}"), || {
            self.status(server).is_some_and(|s| s.starts_with(want))
        });
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        stop_child(self.child.take(), "haproxy", &self.args, &self.log);
    }
}
