//! Runs a client script from `tests/clients/` against a server: finds its interpreter and
//! packages, runs it with a deadline, and fails the test with everything it printed when
//! it exits non-zero.
//!
//! The Python and Node.js packages come from `tests/clients/install.sh`, which `.ci/run`
//! runs: `MUXD_TEST_PYTHON` names a Python that has `redis` and `hiredis` (the venv's),
//! `MUXD_TEST_NODE_PATH` a `node_modules` with `redis` and `ioredis`. Unset, the
//! install script's default directory is looked in. Missing, the row is skipped with a
//! note, or fails in CI.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::Kind;
use crate::util::{require, require_tool};

/// How long one script may run (over both transports it takes a few seconds).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// What runs a script.
#[derive(Clone, Copy)]
pub enum Runner {
    Python,
    Node,
    Bash,
}

/// A client script and the arguments choosing its variant (`--mode resp2`, ...).
pub struct Script {
    pub runner: Runner,
    pub file: &'static str,
    pub args: &'static [&'static str],
}

impl Script {
    /// Whether the script can run here: when its interpreter, its packages or the client
    /// tool is missing, the row is skipped with a note (a failure in CI).
    #[track_caller]
    pub fn available(&self) -> bool {
        self.command().is_some()
    }

    /// The command that runs the script, or `None` when something it needs is missing.
    #[track_caller]
    fn command(&self) -> Option<Command> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/clients")
            .join(self.file);
        let mut command = match self.runner {
            Runner::Python => {
                let python = located("MUXD_TEST_PYTHON", "venv/bin/python");
                if !require(
                    python.is_some(),
                    "no Python with redis-py (set MUXD_TEST_PYTHON or run tests/clients/install.sh)",
                ) {
                    return None;
                }
                Command::new(python?)
            }
            Runner::Node => {
                let modules = located("MUXD_TEST_NODE_PATH", "node/node_modules");
                if !require_tool("node")
                    || !require(
                        modules.is_some(),
                        "no node_modules with redis and ioredis (set MUXD_TEST_NODE_PATH or run tests/clients/install.sh)",
                    )
                {
                    return None;
                }
                let mut node = Command::new("node");
                node.env("NODE_PATH", modules?);
                node
            }
            Runner::Bash => {
                if !require_tool("redis-cli") {
                    return None;
                }
                Command::new("bash")
            }
        };
        command.arg(path).args(self.args);
        Some(command)
    }

    /// Runs the script against `target` (`tcp://HOST:PORT` or `unix://PATH`), failing the
    /// test with its output unless it exits 0.
    /// With `cacert`, the target is `tls://HOST:PORT` and the script trusts that CA.
    #[track_caller]
    pub fn run(&self, target: &str, password: Option<&str>, kind: Kind, cacert: Option<&Path>) {
        let mut command = self.command().expect("checked by Script::available");
        command.args(["--target", target, "--server", kind.name()]);
        if let Some(cacert) = cacert {
            command.arg("--cacert").arg(cacert);
        }
        if let Some(password) = password {
            command.args(["--password", password]);
        }
        let shown = format!("{command:?}");
        let output = run_with_deadline(command);
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        if !output.status.success() {
            panic!(
                "{shown} failed ({})\nstdout:\n{}\nstderr:\n{}",
                output.status,
                text(&output.stdout),
                text(&output.stderr)
            );
        }
        print!("{}", text(&output.stdout));
    }
}

/// `$var` if set, else `<install dir>/<default>` if it exists.
fn located(var: &str, default: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Some(PathBuf::from(path));
    }
    // tests/clients/install.sh's default directory.
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))?;
    let path = cache.join("muxd-test-clients").join(default);
    path.exists().then_some(path)
}

/// Runs `command` to completion with its output captured; after [`SCRIPT_TIMEOUT`] its
/// whole process group (the script and any client it started) is killed.
#[track_caller]
fn run_with_deadline(mut command: Command) -> Output {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(child.wait_with_output()));
    let output = match rx.recv_timeout(SCRIPT_TIMEOUT) {
        Ok(output) => output,
        Err(_) => {
            // SAFETY: kill(2) on the process group of a child this test started.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let output = rx.recv().expect("waiter").expect("wait");
            panic!(
                "{command:?} still running after {SCRIPT_TIMEOUT:?}, killed\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    };
    output.unwrap_or_else(|e| panic!("waiting for {command:?}: {e}"))
}
