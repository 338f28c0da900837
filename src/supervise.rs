//! The daemon under a supervisor: systemd's notification protocol (`sd_notify`), spoken
//! without libsystemd: one datagram per message to the Unix socket named by
//! `NOTIFY_SOCKET` (a path, or an abstract name written with a leading `@`).
//!
//! `READY=1` (with a `STATUS=` line naming the listeners) once every master socket is
//! bound, `STOPPING=1` when shutdown begins, and `WATCHDOG=1` every half `WATCHDOG_USEC`
//! from the loop thread when systemd's watchdog is on for this process (`WATCHDOG_PID`
//! unset or ours), so that a stuck loop is restarted. The library reports these moments
//! through [`Lifecycle`]; this module turns them into messages.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use clap::ValueEnum;
use log::{debug, warn};

use muxd::Lifecycle;

/// `--supervised`: whether to notify a supervisor (Redis's flag and words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Supervised {
    /// Notify systemd when `NOTIFY_SOCKET` is set.
    Auto,
    /// Notify systemd; warn when `NOTIFY_SOCKET` is not set.
    Systemd,
    /// Never notify.
    No,
}

/// A connection to systemd's notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// The watchdog's interval (`WATCHDOG_USEC`), when it is on for this process.
    watchdog: Option<Duration>,
}

impl Notifier {
    /// The notifier `mode` and the environment ask for, if any.
    ///
    /// # Errors
    /// `NOTIFY_SOCKET` is set but names no usable socket address.
    pub fn from_env(mode: Supervised) -> io::Result<Option<Notifier>> {
        if mode == Supervised::No {
            return Ok(None);
        }
        let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
            if mode == Supervised::Systemd {
                warn!("systemd supervision requested, but NOTIFY_SOCKET is not set");
            }
            return Ok(None);
        };
        let addr = match target.as_encoded_bytes().strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name)?,
            None => SocketAddr::from_pathname(&target)?,
        };
        let socket = UnixDatagram::unbound()?;
        Ok(Some(Notifier {
            socket,
            addr,
            watchdog: watchdog_from_env(),
        }))
    }

    /// Sends one message (`KEY=value` lines).
    pub fn notify(&self, message: &str) {
        if let Err(e) = self.socket.send_to_addr(message.as_bytes(), &self.addr) {
            warn!("notifying systemd failed error={e}");
        } else {
            debug!("notified systemd message={:?}", message.replace('\n', " "));
        }
    }

    /// `READY=1`, with the listeners in the status line.
    pub fn ready(&self, addrs: &[String]) {
        self.notify(&format!("READY=1\nSTATUS=serving {}\n", addrs.join(" ")));
    }
}

/// The watchdog interval systemd asks for, when it asks this process.
fn watchdog_from_env() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

impl Lifecycle for Notifier {
    fn stopping(&mut self) {
        self.notify("STOPPING=1\nSTATUS=shutting down\n");
    }

    /// Half the watchdog interval, as `sd_watchdog_enabled(3)` advises.
    fn heartbeat_interval(&self) -> Option<Duration> {
        self.watchdog.map(|interval| interval / 2)
    }

    fn heartbeat(&mut self) {
        self.notify("WATCHDOG=1");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let mut notifier = Notifier {
            socket: UnixDatagram::unbound().unwrap(),
            addr: SocketAddr::from_pathname(&path).unwrap(),
            watchdog: Some(Duration::from_secs(4)),
        };
        notifier.ready(&["tcp://127.0.0.1:1".into()]);
        notifier.stopping();
        assert_eq!(notifier.heartbeat_interval(), Some(Duration::from_secs(2)));
        let mut buf = [0u8; 256];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            b"READY=1\nSTATUS=serving tcp://127.0.0.1:1\n".as_slice()
        );
        let n = receiver.recv(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"STOPPING=1\n"));
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        let name = format!("muxd-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let receiver = UnixDatagram::bind_addr(&addr).unwrap();
        let mut notifier = Notifier {
            socket: UnixDatagram::unbound().unwrap(),
            addr,
            watchdog: None,
        };
        notifier.heartbeat();
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1".as_slice());
    }
}
