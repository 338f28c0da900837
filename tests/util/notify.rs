//! A systemd notification socket held by a test, as systemd holds one for a
//! `Type=notify` service: give its `env` to muxd as `NOTIFY_SOCKET` and read what it says.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Instant;

use super::TIMEOUT;

/// A notification socket, as systemd holds one for a `Type=notify` service.
pub struct NotifySocket {
    pub socket: UnixDatagram,
    /// The value of `NOTIFY_SOCKET` that reaches it.
    pub env: String,
}

impl NotifySocket {
    pub fn at_path(dir: &std::path::Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        NotifySocket::ready(socket, path.display().to_string())
    }

    pub fn abstract_name() -> NotifySocket {
        let name = format!(
            "muxd-notify-test-{}-{:?}",
            std::process::id(),
            Instant::now()
        );
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).expect("bind abstract notify socket");
        NotifySocket::ready(socket, format!("@{name}"))
    }

    fn ready(socket: UnixDatagram, env: String) -> NotifySocket {
        socket.set_read_timeout(Some(TIMEOUT)).unwrap();
        NotifySocket { socket, env }
    }

    /// The next message, failing the test after the timeout.
    #[track_caller]
    pub fn next(&self) -> String {
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).expect("a notification in time");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// The next message other than a watchdog ping.
    #[track_caller]
    pub fn next_not_watchdog(&self) -> String {
        loop {
            let message = self.next();
            if message != "WATCHDOG=1" {
                return message;
            }
        }
    }
}
