//! One load thread: a single `mio::Poll` loop over its share of the connections.
//!
//! Every connection keeps up to `-P` requests in flight. The first `-P` are written at the
//! start; after that, each time a read delivers replies, as many new requests are written
//! at once, in one `write`, so the window never drains while the server is busy (a sliding
//! window, refilled per read: the server is never left idle waiting for a whole batch to
//! come back, and writes stay batched as redis-benchmark's do). `--lockstep` refills only
//! an empty window, which is what redis-benchmark does. With `--rate`, a request
//! is sent only once it is due (connection `k` of `c` sends at `k/R + j*c/R` seconds),
//! still within the window; a connection that falls behind catches up as soon as replies
//! free its window.
//!
//! The request bytes are built once: `-P` copies of the request back to back, and a
//! connection writes a tail of that buffer, so sending allocates and copies nothing.
//! Replies are read into a buffer shared by the thread and checked where they lie; only a
//! reply split across reads is copied into the connection's own buffer.
//!
//! Latency: each in-flight request has a timestamp in a ring, oldest first (replies come
//! back in order). Without `--rate` it is the time the request was handed to `write`;
//! with `--rate` it is the time it was due, so a request held back by a slow server is
//! charged for its wait (coordinated omission corrected, as wrk2 does). The clock is read
//! once per connection event; every reply of that read gets that time.
//!
//! Here: the loop (poll, read, close); [`send`] refills windows and writes, [`check`]
//! judges replies, [`tally`] counts them, [`pacing`] spaces requests for `--rate`.

mod check;
mod pacing;
mod send;
mod tally;

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::{Events, Interest, Poll, Token};
use muxd::buffer::InputBuf;
use muxd::resp::Framer;

use self::check::{Fault, ReplyState, check_replies};
use self::pacing::Pacer;
pub use self::tally::{Outcome, SAMPLES};
use self::tally::{Ring, Tally};
use crate::cli::StopAt;
use crate::net::Stream;
use crate::report::printable;
use crate::workload::Expect;

/// Token of the pacing timer (connections use their index).
const TIMER: Token = Token(usize::MAX);
/// Size of the thread's shared read buffer.
const SCRATCH: usize = 128 * 1024;
/// Free space guaranteed before reading into a connection's own buffer.
const MIN_OWN_READ: usize = 16 * 1024;
/// A connection's own buffer, once empty, gives back memory above this.
const KEEP_OWN: usize = 4 * MIN_OWN_READ;
/// Requests a thread takes from the shared `-n` budget at a time.
const CLAIM_CHUNK: u64 = 256;
/// How often stalled connections are looked for and the end of `--duration` noticed.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// What every thread of one test shares.
pub struct Shared {
    /// `pipeline` copies of the request, back to back.
    pub batch: Vec<u8>,
    pub request_len: usize,
    pub expect: Expect,
    pub pipeline: usize,
    /// Connections in all threads (for pacing).
    pub clients: usize,
    pub stop: StopAt,
    /// Total requests per second, if paced.
    pub rate: Option<f64>,
    /// Refill a window only once it is empty (redis-benchmark's way).
    pub lockstep: bool,
    pub timeout: Duration,
    /// Requests of the `-n` budget not yet taken by a thread.
    pub remaining: AtomicU64,
    /// Replies checked so far, per thread (for the progress line).
    pub progress: Vec<PaddedCounter>,
}

impl Shared {
    /// Builds the shared state of a test; `threads` progress counters.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        request: &[u8],
        expect: Expect,
        pipeline: usize,
        clients: usize,
        stop: StopAt,
        rate: Option<f64>,
        lockstep: bool,
        timeout: Duration,
        threads: usize,
    ) -> Shared {
        let remaining = match stop {
            StopAt::Requests(n) => n,
            StopAt::Duration(_) => 0,
        };
        Shared {
            batch: request.repeat(pipeline),
            request_len: request.len(),
            expect,
            pipeline,
            clients,
            stop,
            rate,
            lockstep,
            timeout,
            remaining: AtomicU64::new(remaining),
            progress: (0..threads)
                .map(|_| PaddedCounter(AtomicU64::new(0)))
                .collect(),
        }
    }

    /// Replies checked so far by all threads.
    pub fn progress(&self) -> u64 {
        self.progress
            .iter()
            .map(|c| c.0.load(Ordering::Relaxed))
            .sum()
    }
}

/// A counter alone on its cache line, so threads do not slow each other down.
#[repr(align(128))]
pub struct PaddedCounter(pub AtomicU64);

/// One connection.
struct Conn {
    /// `None` once closed.
    stream: Option<Stream>,
    /// The start of a reply split across reads (empty otherwise).
    input: InputBuf,
    replies: ReplyState,
    /// Bytes at the end of the batch buffer still to write.
    unsent: usize,
    /// `WRITABLE` is registered (only while a write is incomplete).
    writable: bool,
    /// Last time bytes arrived (or sending resumed on an idle connection), ns.
    last_progress: u64,
    /// Requests sent so far.
    sent: u64,
    /// Pacing: when its first request is due, ns since the start.
    offset: u64,
    /// Pacing: in the heap of connections waiting for a due time.
    queued: bool,
}

/// How a read ended.
enum ReadEnd {
    Drained,
    Closed(String),
    Fault(Fault),
}

/// One thread's loop and everything it owns.
pub struct Worker<'a> {
    shared: &'a Shared,
    thread: usize,
    poll: Poll,
    conns: Vec<Conn>,
    scratch: Vec<u8>,
    tally: Tally,
    start: Instant,
    /// Requests taken from the shared budget and not sent yet.
    pool: u64,
    /// No more requests will be sent.
    exhausted: bool,
    in_flight: usize,
    open: usize,
    pacer: Option<Pacer>,
}

impl<'a> Worker<'a> {
    /// Registers `streams`, connections `first..first + streams.len()` of the test (the
    /// numbers set their place in the pacing schedule).
    pub fn new(
        shared: &'a Shared,
        thread: usize,
        first: usize,
        streams: Vec<Stream>,
    ) -> io::Result<Worker<'a>> {
        let poll = Poll::new()?;
        let pacer = match shared.rate {
            Some(rate) => Some(Pacer::new(
                rate,
                shared.clients,
                streams.len(),
                poll.registry(),
                TIMER,
            )?),
            None => None,
        };
        let mut conns = Vec::with_capacity(streams.len());
        for (i, mut stream) in streams.into_iter().enumerate() {
            poll.registry()
                .register(&mut stream, Token(i), Interest::READABLE)?;
            let offset = shared
                .rate
                .map_or(0, |rate| pacing::offset(rate, first + i));
            conns.push(Conn {
                stream: Some(stream),
                input: InputBuf::default(),
                replies: ReplyState {
                    framer: Framer::new(),
                    times: Ring::new(shared.pipeline),
                    in_flight: 0,
                    counter: 1,
                },
                unsent: 0,
                writable: false,
                last_progress: 0,
                sent: 0,
                offset,
                queued: false,
            });
        }
        let open = conns.len();
        Ok(Worker {
            shared,
            thread,
            poll,
            conns,
            scratch: vec![0; SCRATCH],
            tally: Tally::new(),
            start: Instant::now(),
            pool: 0,
            exhausted: false,
            in_flight: 0,
            open,
            pacer,
        })
    }

    /// Runs the test from `start` (the same instant for every thread) to its end.
    pub fn run(mut self, start: Instant) -> Outcome {
        self.start = start;
        let mut events = Events::with_capacity(1024);
        let mut now = self.now_ns();
        for i in 0..self.conns.len() {
            self.refill(i, now);
        }
        let mut next_check = now + CHECK_EVERY.as_nanos() as u64;
        loop {
            self.end_of_time(now);
            if self.pacer.is_some() {
                self.run_due(now);
            }
            if let Some(counter) = self.shared.progress.get(self.thread) {
                counter.0.store(self.tally.replies, Ordering::Relaxed);
            }
            if self.open == 0 || (self.exhausted && self.in_flight == 0) {
                break;
            }
            if now >= next_check {
                self.check_stalls(now);
                next_check = now + CHECK_EVERY.as_nanos() as u64;
            }
            let mut timeout = next_check.saturating_sub(now);
            if let StopAt::Duration(d) = self.shared.stop
                && !self.exhausted
            {
                timeout = timeout.min((d.as_nanos() as u64).saturating_sub(now));
            }
            if let Err(e) = self
                .poll
                .poll(&mut events, Some(Duration::from_nanos(timeout)))
                && e.kind() != io::ErrorKind::Interrupted
            {
                self.tally.error(|| format!("poll failed: {e}"));
                break;
            }
            for event in events.iter() {
                if event.token() == TIMER {
                    if let Some(pacer) = self.pacer.as_mut() {
                        pacer.on_timer();
                    }
                } else {
                    self.on_event(event.token().0, event);
                }
            }
            now = self.now_ns();
        }
        self.tally.into_outcome()
    }

    #[inline]
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// With `--duration`: past it, nothing more is sent.
    fn end_of_time(&mut self, now: u64) {
        if let StopAt::Duration(d) = self.shared.stop
            && now >= d.as_nanos() as u64
        {
            self.exhausted = true;
        }
    }

    fn on_event(&mut self, i: usize, event: &Event) {
        let now = self.now_ns();
        if event.is_writable() {
            self.flush(i);
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            match self.read(i, now, event.is_read_closed() || event.is_error()) {
                ReadEnd::Drained => {}
                ReadEnd::Closed(reason) => {
                    self.close(i, &reason);
                    return;
                }
                ReadEnd::Fault(fault) => {
                    let (what, bytes) = match fault {
                        Fault::Malformed(m, bytes) => (format!("malformed reply ({m})"), bytes),
                        Fault::Unsolicited(bytes) => ("reply to no request".to_owned(), bytes),
                    };
                    self.tally.wrong(|| {
                        format!("{what}: \"{}\"; connection closed", printable(&bytes, 120))
                    });
                    self.drop_conn(i);
                    return;
                }
            }
        }
        self.end_of_time(now);
        self.refill(i, now);
        // A TLS record reading produced (a key update) that the socket did not take.
        let tls_waiting = self
            .conns
            .get(i)
            .and_then(|c| c.stream.as_ref())
            .is_some_and(|s| s.wants_write());
        if tls_waiting {
            self.flush(i);
        }
    }

    /// Reads what the connection has and checks every complete reply. `closing`: the
    /// event also reported the end of the stream (or an error), which has to be read too:
    /// with edge-triggered events, no later event would report it.
    fn read(&mut self, i: usize, now: u64, closing: bool) -> ReadEnd {
        let Worker {
            shared,
            conns,
            scratch,
            tally,
            in_flight,
            ..
        } = self;
        let Some(conn) = conns.get_mut(i) else {
            return ReadEnd::Drained;
        };
        loop {
            let Some(stream) = conn.stream.as_mut() else {
                return ReadEnd::Drained;
            };
            let own = !conn.input.is_empty();
            let (result, room) = if own {
                let spare = conn.input.spare(MIN_OWN_READ);
                let room = spare.len();
                (stream.read(spare), room)
            } else {
                (stream.read(scratch), scratch.len())
            };
            let n = match result {
                Ok(0) => return ReadEnd::Closed("closed by the server".to_owned()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadEnd::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return ReadEnd::Closed(e.to_string()),
            };
            conn.last_progress = now;
            let before = conn.replies.in_flight;
            let checked = if own {
                conn.input.filled(n);
                let checked = check_replies(
                    conn.input.data(),
                    &mut conn.replies,
                    &shared.expect,
                    now,
                    tally,
                );
                if let Ok(used) = checked {
                    conn.input.consume(used);
                    conn.input.shrink_if_idle(KEEP_OWN);
                }
                checked
            } else {
                let data = scratch.get(..n).unwrap_or_default();
                let checked = check_replies(data, &mut conn.replies, &shared.expect, now, tally);
                if let Ok(used) = checked {
                    conn.input
                        .extend_from_slice(data.get(used..).unwrap_or_default());
                }
                checked
            };
            let answered = before - conn.replies.in_flight;
            *in_flight -= answered;
            if answered > 0 {
                tally.last_reply_ns = now;
            }
            if let Err(fault) = checked {
                return ReadEnd::Fault(fault);
            }
            if n < room && !closing {
                // A short read emptied the socket; the next bytes raise a new event.
                return ReadEnd::Drained;
            }
        }
    }

    /// The connection failed: count one error (unless it had nothing more to do).
    fn close(&mut self, i: usize, reason: &str) {
        let Some(conn) = self.conns.get(i) else {
            return;
        };
        let unanswered = conn.replies.in_flight;
        if unanswered > 0 || !self.exhausted {
            self.tally.error(|| {
                format!("connection failed: {reason} ({unanswered} requests unanswered)")
            });
        }
        self.drop_conn(i);
    }

    /// Closes the connection; its requests in flight are given up.
    fn drop_conn(&mut self, i: usize) {
        let Some(conn) = self.conns.get_mut(i) else {
            return;
        };
        if let Some(mut stream) = conn.stream.take() {
            let _ = self.poll.registry().deregister(&mut stream);
            let _ = stream.shutdown(std::net::Shutdown::Both);
            self.open -= 1;
        }
        self.in_flight -= conn.replies.in_flight;
        conn.replies.in_flight = 0;
        conn.unsent = 0;
    }

    /// Closes connections that waited for replies longer than `--timeout`.
    fn check_stalls(&mut self, now: u64) {
        let limit = self.shared.timeout.as_nanos() as u64;
        for i in 0..self.conns.len() {
            let stalled = self.conns.get(i).is_some_and(|c| {
                c.stream.is_some()
                    && c.replies.in_flight > 0
                    && now.saturating_sub(c.last_progress) > limit
            });
            if stalled {
                let secs = self.shared.timeout.as_secs_f64();
                self.close(i, &format!("no reply for {secs:.1} s"));
            }
        }
    }
}
