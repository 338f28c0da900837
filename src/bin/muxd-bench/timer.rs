//! A `timerfd` on a worker's poll: wake-ups to the microsecond for `--rate`.
//!
//! `mio::Poll` rounds its timeout up to whole milliseconds (epoll's unit), which would make
//! paced requests leave up to a millisecond late, and with latency measured from the
//! intended send time that lateness would be charged to the server. A `timerfd` armed for
//! the next due request fires on time instead.

use std::io;
use std::os::unix::io::RawFd;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

/// A one-shot monotonic timer whose expiry makes its descriptor readable.
pub struct Timer {
    fd: RawFd,
}

impl Timer {
    /// A disarmed timer registered on `registry` under `token`.
    pub fn new(registry: &Registry, token: Token) -> io::Result<Timer> {
        // SAFETY: plain syscall with constant flags.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let timer = Timer { fd };
        registry.register(&mut SourceFd(&timer.fd), token, Interest::READABLE)?;
        Ok(timer)
    }

    /// Arms the timer to fire once after `delay` (at least a microsecond from now).
    pub fn arm(&mut self, delay: Duration) -> io::Result<()> {
        let delay = delay.max(Duration::from_micros(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: delay.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: delay.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: `fd` is our timerfd; `spec` is a valid itimerspec; no old value wanted.
        let rc = unsafe { libc::timerfd_settime(self.fd, 0, &spec, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Acknowledges an expiry (after a readable event), so the next one is reported.
    pub fn acknowledge(&mut self) {
        let mut expirations = [0u8; 8];
        // SAFETY: reads at most 8 bytes into an 8-byte buffer; EAGAIN is fine.
        unsafe {
            libc::read(self.fd, expirations.as_mut_ptr().cast(), expirations.len());
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // SAFETY: `fd` is ours and closed exactly once.
        unsafe {
            libc::close(self.fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use std::time::Instant;

    #[test]
    fn fires_once_after_the_delay_with_sub_millisecond_precision() {
        let mut poll = Poll::new().unwrap();
        let mut timer = Timer::new(poll.registry(), Token(7)).unwrap();
        let mut events = Events::with_capacity(4);
        let start = Instant::now();
        timer.arm(Duration::from_micros(300)).unwrap();
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        let waited = start.elapsed();
        assert_eq!(events.iter().next().map(|e| e.token()), Some(Token(7)));
        assert!(waited >= Duration::from_micros(300), "{waited:?}");
        timer.acknowledge();
        poll.poll(&mut events, Some(Duration::from_millis(20)))
            .unwrap();
        assert!(events.is_empty());
    }
}
