//! Sending: refilling a connection's window as far as the window, the `-n` budget and
//! the pace allow, and writing what it owes, a tail of the thread's batch of requests.

use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;

use mio::{Interest, Token};

use super::pacing::{Pacer, due};
use super::{CLAIM_CHUNK, Worker};
use crate::cli::StopAt;
use crate::report::printable;

impl Worker<'_> {
    /// Sends as many new requests as the window, the budget and the pace allow.
    pub(super) fn refill(&mut self, i: usize, now: u64) {
        if self.exhausted {
            return;
        }
        let pipeline = self.shared.pipeline;
        let Some(conn) = self.conns.get(i) else {
            return;
        };
        if conn.stream.is_none() || (self.shared.lockstep && conn.replies.in_flight > 0) {
            return;
        }
        let room = pipeline - conn.replies.in_flight;
        let (sent, offset) = (conn.sent, conn.offset);
        let interval = self.pacer.as_ref().map(Pacer::interval);
        let want = match interval {
            None => room,
            Some(interval) => {
                let next_due = due(offset, interval, sent);
                if next_due > now {
                    if room > 0 {
                        self.schedule(i, next_due);
                    }
                    return;
                }
                let due_by_now = ((now - offset) as f64 / interval) as u64 + 1;
                (due_by_now.saturating_sub(sent) as usize).min(room)
            }
        };
        if want == 0 {
            return;
        }
        let granted = self.claim(want);
        if granted == 0 {
            return;
        }
        let request_len = self.shared.request_len;
        let Some(conn) = self.conns.get_mut(i) else {
            return;
        };
        for j in 0..granted as u64 {
            let at = match interval {
                Some(interval) => due(offset, interval, sent + j),
                None => now,
            };
            conn.replies.times.push(at);
        }
        if conn.replies.in_flight == 0 {
            conn.last_progress = now;
        }
        conn.replies.in_flight += granted;
        conn.sent += granted as u64;
        conn.unsent += granted * request_len;
        self.in_flight += granted;
        let waiting_for_writable = conn.writable;
        let (sent, full) = (conn.sent, conn.replies.in_flight == pipeline);
        if !waiting_for_writable {
            self.flush(i);
        }
        if let Some(interval) = interval
            && !full
            && !self.exhausted
        {
            self.schedule(i, due(offset, interval, sent));
        }
    }

    /// Takes up to `want` requests from the budget; with `-n`, running out ends sending.
    fn claim(&mut self, want: usize) -> usize {
        let want64 = want as u64;
        if !matches!(self.shared.stop, StopAt::Requests(_)) {
            return want;
        }
        if self.pool < want64 {
            let ask = want64.max(CLAIM_CHUNK) - self.pool;
            let got = self
                .shared
                .remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                    (r > 0).then(|| r.saturating_sub(ask))
                })
                .map_or(0, |before| before.min(ask));
            self.pool += got;
        }
        let granted = self.pool.min(want64);
        self.pool -= granted;
        if granted < want64 {
            self.exhausted = true;
        }
        granted as usize
    }

    /// Writes what the connection owes, in as few `write`s as the socket allows, and keeps
    /// `WRITABLE` interest while some of it (or a TLS record) waits.
    pub(super) fn flush(&mut self, i: usize) {
        let shared = self.shared;
        let batch = &shared.batch;
        let Some(conn) = self.conns.get_mut(i) else {
            return;
        };
        let Some(stream) = conn.stream.as_mut() else {
            return;
        };
        let mut failure = None;
        while conn.unsent > 0 {
            let from = batch.len().saturating_sub(conn.unsent);
            match stream.write(batch.get(from..).unwrap_or_default()) {
                Ok(0) => {
                    failure = Some("the connection accepts no more bytes".to_owned());
                    break;
                }
                Ok(n) => conn.unsent = conn.unsent.saturating_sub(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // The server may have said why before closing (for instance
                    // "-ERR max number of clients reached").
                    let mut said = [0u8; 256];
                    failure = Some(match stream.read(&mut said) {
                        Ok(n) if n > 0 => format!(
                            "{e} (the server sent \"{}\")",
                            printable(said.get(..n).unwrap_or_default(), 200)
                        ),
                        _ => e.to_string(),
                    });
                    break;
                }
            }
        }
        // What a TLS stream has of its own (handshake, a record the socket did not take).
        if failure.is_none()
            && let Err(e) = stream.send_pending()
        {
            failure = Some(e.to_string());
        }
        if let Some(reason) = failure {
            self.close(i, &reason);
            return;
        }
        let want_writable = conn.unsent > 0 || stream.wants_write();
        if want_writable != conn.writable {
            let interest = if want_writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if let Err(e) = self.poll.registry().reregister(stream, Token(i), interest) {
                self.close(i, &format!("reregistering failed: {e}"));
                return;
            }
            conn.writable = want_writable;
        }
    }
}
