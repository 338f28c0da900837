//! Running `muxd-bench` from a test: its output collected, its time bounded, the process
//! killed by a guard however the test ends.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Longest any one process may take before the test fails.
pub const LIMIT: Duration = Duration::from_secs(60);

/// Kills a child process on drop unless it was already reaped.
pub struct Guard {
    pub child: Option<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What one muxd-bench run printed and how it ended.
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

pub fn bench(target: &[String], args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_muxd-bench"))
        .args(target)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting muxd-bench");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut guard = Guard { child: Some(child) };
    let (tx, rx) = mpsc::channel();
    let err_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    // stdout reaches its end when the process exits (or closes it).
    let stdout = rx
        .recv_timeout(LIMIT)
        .unwrap_or_else(|_| panic!("muxd-bench {args:?} did not finish"));
    let status = guard
        .child
        .take()
        .expect("child")
        .wait()
        .expect("waiting for muxd-bench");
    let stderr = err_reader.join().expect("stderr reader");
    Run {
        status,
        stdout,
        stderr,
    }
}
