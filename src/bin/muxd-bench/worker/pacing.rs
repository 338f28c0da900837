//! Pacing for `--rate`: connection `k` of `c` sends its requests at `k/R + j*c/R`
//! seconds, so the `R` requests of each second are spread evenly over it. Connections
//! waiting for their next due time sit in a heap, earliest first; one timer wakes the
//! loop for the earliest.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::time::Duration;

use mio::{Registry, Token};

use super::Worker;
use crate::timer::Timer;

/// Pacing for `--rate`.
pub(super) struct Pacer {
    /// Between two requests of one connection, ns.
    interval: f64,
    heap: BinaryHeap<Reverse<(u64, usize)>>,
    timer: Timer,
    /// The due time the timer is armed for.
    armed_for: Option<u64>,
}

impl Pacer {
    /// Pacing for `rate` requests per second in all over `clients` connections, of which
    /// this thread has `conns`; its timer registered under `token`.
    pub(super) fn new(
        rate: f64,
        clients: usize,
        conns: usize,
        registry: &Registry,
        token: Token,
    ) -> io::Result<Pacer> {
        Ok(Pacer {
            interval: clients as f64 * 1e9 / rate,
            heap: BinaryHeap::with_capacity(conns),
            timer: Timer::new(registry, token)?,
            armed_for: None,
        })
    }

    /// Between two requests of one connection, ns.
    pub(super) fn interval(&self) -> f64 {
        self.interval
    }

    /// The timer fired.
    pub(super) fn on_timer(&mut self) {
        self.timer.acknowledge();
        self.armed_for = None;
    }
}

/// When connection number `n` of the test sends its first request, ns since the start:
/// the connections' first requests are spread evenly over the first interval.
pub(super) fn offset(rate: f64, n: usize) -> u64 {
    (n as f64 * 1e9 / rate) as u64
}

/// When request `k` of a paced connection is due, ns since the start.
#[inline]
pub(super) fn due(offset: u64, interval: f64, k: u64) -> u64 {
    offset + (k as f64 * interval) as u64
}

impl Worker<'_> {
    /// Pacing: puts a connection in the heap for its next due time.
    pub(super) fn schedule(&mut self, i: usize, at: u64) {
        let (Some(pacer), Some(conn)) = (self.pacer.as_mut(), self.conns.get_mut(i)) else {
            return;
        };
        if !conn.queued {
            conn.queued = true;
            pacer.heap.push(Reverse((at, i)));
        }
    }

    /// Pacing: sends every request due by `now`, then arms the timer for the next one.
    pub(super) fn run_due(&mut self, now: u64) {
        loop {
            let Some(pacer) = self.pacer.as_mut() else {
                return;
            };
            match pacer.heap.peek() {
                Some(&Reverse((at, i))) if at <= now => {
                    pacer.heap.pop();
                    if let Some(conn) = self.conns.get_mut(i) {
                        conn.queued = false;
                    }
                    self.refill(i, now);
                }
                _ => break,
            }
        }
        let Some(pacer) = self.pacer.as_mut() else {
            return;
        };
        let next = pacer.heap.peek().map(|&Reverse((at, _))| at);
        if let Some(at) = next
            && pacer.armed_for != Some(at)
        {
            let delay =
                Duration::from_nanos(at.saturating_sub(self.start.elapsed().as_nanos() as u64));
            match pacer.timer.arm(delay) {
                Ok(()) => pacer.armed_for = Some(at),
                Err(e) => {
                    let message = format!("arming the pacing timer failed: {e}");
                    self.tally.error(|| message);
                    self.exhausted = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_spreads_due_times() {
        // 4 connections at 1000 requests/s in all: each sends every 4 ms.
        let interval = 4.0 * 1e9 / 1000.0;
        assert_eq!(due(0, interval, 0), 0);
        assert_eq!(due(0, interval, 1), 4_000_000);
        assert_eq!(due(1_000_000, interval, 2), 9_000_000);
    }
}
