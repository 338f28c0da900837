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

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::event::Event;
use mio::{Events, Interest, Poll, Token};
use muxd::buffer::InputBuf;

use crate::cli::StopAt;
use crate::net::Stream;
use muxd::resp::{Framer, MalformedReply, parse_int};

use crate::report::{new_histogram, printable};
use crate::timer::Timer;
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
/// Error and wrong-reply samples kept per thread.
pub const SAMPLES: usize = 5;
/// Failures of one kind looked at for distinct samples, per thread.
const SAMPLE_TRIES: u64 = 1000;

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

/// What one thread measured.
pub struct Outcome {
    pub hist: Histogram<u64>,
    pub replies: u64,
    pub errors: u64,
    pub wrong: u64,
    pub error_samples: Vec<String>,
    pub wrong_samples: Vec<String>,
    /// When the last reply arrived, since the start.
    pub last_reply: Duration,
}

/// The counts and the histogram a thread fills.
struct Tally {
    hist: Histogram<u64>,
    replies: u64,
    errors: u64,
    wrong: u64,
    error_samples: Vec<String>,
    wrong_samples: Vec<String>,
    /// Latencies are recorded in runs of equal values (a read's replies often share one).
    run_value: u64,
    run_count: u64,
    last_reply_ns: u64,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            hist: new_histogram(),
            replies: 0,
            errors: 0,
            wrong: 0,
            error_samples: Vec::new(),
            wrong_samples: Vec::new(),
            run_value: 0,
            run_count: 0,
            last_reply_ns: 0,
        }
    }

    #[inline]
    fn record(&mut self, latency_ns: u64) {
        let us = (latency_ns + 500) / 1000;
        if us == self.run_value {
            self.run_count += 1;
        } else {
            self.flush_run();
            self.run_value = us;
            self.run_count = 1;
        }
    }

    fn flush_run(&mut self) {
        if self.run_count > 0 {
            self.hist
                .saturating_record_n(self.run_value, self.run_count);
            self.run_count = 0;
        }
    }

    fn error(&mut self, sample: impl FnOnce() -> String) {
        self.errors += 1;
        keep_sample(&mut self.error_samples, self.errors, sample);
    }

    fn wrong(&mut self, sample: impl FnOnce() -> String) {
        self.wrong += 1;
        keep_sample(&mut self.wrong_samples, self.wrong, sample);
    }
}

/// Keeps up to [`SAMPLES`] distinct samples, looking only at the first
/// [`SAMPLE_TRIES`] occurrences (so a flood of failures costs no formatting).
fn keep_sample(samples: &mut Vec<String>, occurrence: u64, sample: impl FnOnce() -> String) {
    if samples.len() < SAMPLES && occurrence <= SAMPLE_TRIES {
        let sample = sample();
        if !samples.contains(&sample) {
            samples.push(sample);
        }
    }
}

/// Timestamps of the requests in flight on a connection, oldest first.
struct Ring {
    slots: Box<[u64]>,
    head: usize,
    len: usize,
}

impl Ring {
    fn new(capacity: usize) -> Ring {
        Ring {
            slots: vec![0; capacity.max(1)].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    #[inline]
    fn push(&mut self, value: u64) {
        let mut at = self.head + self.len;
        if at >= self.slots.len() {
            at -= self.slots.len();
        }
        if let Some(slot) = self.slots.get_mut(at) {
            *slot = value;
            self.len += 1;
        }
    }

    #[inline]
    fn pop(&mut self) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        let value = self.slots.get(self.head).copied();
        self.head += 1;
        if self.head == self.slots.len() {
            self.head = 0;
        }
        self.len -= 1;
        value
    }
}

/// What reply checking needs of a connection (apart from its input).
struct ReplyState {
    framer: Framer,
    times: Ring,
    in_flight: usize,
    /// `add`: the integer the next reply must be.
    counter: i64,
}

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

/// Why checking replies stopped the connection.
enum Fault {
    Malformed(MalformedReply, Vec<u8>),
    Unsolicited(Vec<u8>),
}

/// How a read ended.
enum ReadEnd {
    Drained,
    Closed(String),
    Fault(Fault),
}

/// Pacing for `--rate`.
struct Pacer {
    /// Between two requests of one connection, ns.
    interval: f64,
    heap: BinaryHeap<Reverse<(u64, usize)>>,
    timer: Timer,
    /// The due time the timer is armed for.
    armed_for: Option<u64>,
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
            Some(rate) => Some(Pacer {
                interval: shared.clients as f64 * 1e9 / rate,
                heap: BinaryHeap::with_capacity(streams.len()),
                timer: Timer::new(poll.registry(), TIMER)?,
                armed_for: None,
            }),
            None => None,
        };
        let mut conns = Vec::with_capacity(streams.len());
        for (i, mut stream) in streams.into_iter().enumerate() {
            poll.registry()
                .register(&mut stream, Token(i), Interest::READABLE)?;
            let offset = match shared.rate {
                Some(rate) => ((first + i) as f64 * 1e9 / rate) as u64,
                None => 0,
            };
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
                    if let Some(p) = self.pacer.as_mut() {
                        p.timer.acknowledge();
                        p.armed_for = None;
                    }
                } else {
                    self.on_event(event.token().0, event);
                }
            }
            now = self.now_ns();
        }
        self.tally.flush_run();
        let tally = self.tally;
        Outcome {
            hist: tally.hist,
            replies: tally.replies,
            errors: tally.errors,
            wrong: tally.wrong,
            error_samples: tally.error_samples,
            wrong_samples: tally.wrong_samples,
            last_reply: Duration::from_nanos(tally.last_reply_ns),
        }
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

    /// Sends as many new requests as the window, the budget and the pace allow.
    fn refill(&mut self, i: usize, now: u64) {
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
        let interval = self.pacer.as_ref().map(|p| p.interval);
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

    /// Writes what the connection owes, in as few `write`s as the socket allows.
    fn flush(&mut self, i: usize) {
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
        if let Some(reason) = failure {
            self.close(i, &reason);
            return;
        }
        let want_writable = conn.unsent > 0;
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

    /// Pacing: puts a connection in the heap for its next due time.
    fn schedule(&mut self, i: usize, at: u64) {
        let (Some(pacer), Some(conn)) = (self.pacer.as_mut(), self.conns.get_mut(i)) else {
            return;
        };
        if !conn.queued {
            conn.queued = true;
            pacer.heap.push(Reverse((at, i)));
        }
    }

    /// Pacing: sends every request due by `now`, then arms the timer for the next one.
    fn run_due(&mut self, now: u64) {
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

/// When request `k` of a paced connection is due, ns since the start.
#[inline]
fn due(offset: u64, interval: f64, k: u64) -> u64 {
    offset + (k as f64 * interval) as u64
}

/// Checks every complete reply at the start of `data`; returns the bytes they used.
/// A reply split at the end is left for the next read (the framer keeps its place).
#[inline]
fn check_replies(
    data: &[u8],
    state: &mut ReplyState,
    expect: &Expect,
    now: u64,
    tally: &mut Tally,
) -> Result<usize, Fault> {
    let mut pos = 0;
    while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
        // Fast path: the expected bytes themselves. RESP is self-delimiting, so a buffer
        // that starts with a complete expected reply holds exactly that reply first. (An
        // expected error reply, learned by --command, still counts as an error.)
        let exact = match expect {
            Expect::Exact(e)
                if state.framer.is_fresh()
                    && rest.starts_with(e)
                    && rest.first() != Some(&b'-') =>
            {
                Some(e.len())
            }
            _ => None,
        };
        let len = match exact {
            Some(len) => len,
            None => match state.framer.advance(rest) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(m) => return Err(Fault::Malformed(m, rest.to_vec())),
            },
        };
        let frame = rest.get(..len).unwrap_or_default();
        let Some(sent) = state.times.pop() else {
            return Err(Fault::Unsolicited(rest.to_vec()));
        };
        state.in_flight -= 1;
        tally.replies += 1;
        tally.record(now.saturating_sub(sent));
        pos += len;
        if exact.is_some() {
            continue;
        }
        if frame.first() == Some(&b'-') {
            tally.error(|| format!("error reply: \"{}\"", printable(frame, 200)));
            continue;
        }
        match expect {
            Expect::Exact(e) => {
                if frame != e.as_slice() {
                    tally.wrong(|| {
                        format!(
                            "wrong reply: expected \"{}\", got \"{}\"",
                            printable(e, 120),
                            printable(frame, 120)
                        )
                    });
                }
            }
            Expect::Counter => match integer_reply(frame) {
                Some(n) if n == state.counter => state.counter = n.wrapping_add(1),
                got => {
                    let expected = state.counter;
                    tally.wrong(|| {
                        format!(
                            "wrong reply: expected \":{expected}\", got \"{}\"",
                            printable(frame, 120)
                        )
                    });
                    // Judge the next reply against this one, so one bad reply is one.
                    if let Some(n) = got {
                        state.counter = n.wrapping_add(1);
                    }
                }
            },
        }
    }
    Ok(pos)
}

/// The integer of a complete `:n\r\n` reply, if that is what `frame` is.
fn integer_reply(frame: &[u8]) -> Option<i64> {
    let body = frame.strip_prefix(b":")?.strip_suffix(b"\r\n")?;
    parse_int(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(in_flight: usize) -> ReplyState {
        let mut times = Ring::new(in_flight.max(1));
        for _ in 0..in_flight {
            times.push(0);
        }
        ReplyState {
            framer: Framer::new(),
            times,
            in_flight,
            counter: 1,
        }
    }

    #[test]
    fn ring_is_fifo_and_wraps() {
        let mut r = Ring::new(3);
        for round in 0..5u64 {
            r.push(round * 10);
            r.push(round * 10 + 1);
            assert_eq!(r.pop(), Some(round * 10));
            assert_eq!(r.pop(), Some(round * 10 + 1));
        }
        assert_eq!(r.pop(), None);
    }

    #[test]
    fn exact_replies_split_anywhere_are_all_checked() {
        let expect = Expect::Exact(b"$3\r\nxxx\r\n".to_vec());
        let stream = b"$3\r\nxxx\r\n$3\r\nxxx\r\n$3\r\nxxx\r\n";
        for cut in 0..stream.len() {
            let mut st = state(3);
            let mut tally = Tally::new();
            let mut input = InputBuf::default();
            input.extend_from_slice(&stream[..cut]);
            let used = check_replies(input.data(), &mut st, &expect, 1000, &mut tally)
                .unwrap_or_else(|_| panic!("fault at cut {cut}"));
            input.consume(used);
            input.extend_from_slice(&stream[cut..]);
            let used = check_replies(input.data(), &mut st, &expect, 1000, &mut tally)
                .unwrap_or_else(|_| panic!("fault at cut {cut}"));
            input.consume(used);
            assert!(input.is_empty(), "cut {cut}");
            assert_eq!((tally.replies, tally.errors, tally.wrong), (3, 0, 0));
            assert_eq!(st.in_flight, 0);
        }
    }

    #[test]
    fn errors_wrong_and_counter_are_told_apart() {
        let mut tally = Tally::new();
        let mut st = state(5);
        let data = b":1\r\n:2\r\n-ERR no\r\n:4\r\n:5\r\n";
        let used = check_replies(data, &mut st, &Expect::Counter, 0, &mut tally).ok();
        assert_eq!(used, Some(data.len()));
        assert_eq!((tally.replies, tally.errors, tally.wrong), (5, 1, 1));
        assert_eq!(st.counter, 6, "resynchronised after the wrong reply");
        assert!(tally.wrong_samples[0].contains("expected \":3\", got \":4\\r\\n\""));
        assert!(tally.error_samples[0].contains("-ERR no"));

        let mut tally = Tally::new();
        let mut st = state(2);
        let expect = Expect::Exact(b"+PONG\r\n".to_vec());
        let used = check_replies(b"+PONG\r\n+PANG\r\n", &mut st, &expect, 0, &mut tally).ok();
        assert_eq!(used, Some(14));
        assert_eq!((tally.replies, tally.errors, tally.wrong), (2, 0, 1));

        // A learned error reply is still an error, every time.
        let mut tally = Tally::new();
        let mut st = state(2);
        let expect = Expect::Exact(b"-ERR unknown\r\n".to_vec());
        let used = check_replies(
            b"-ERR unknown\r\n-ERR unknown\r\n",
            &mut st,
            &expect,
            0,
            &mut tally,
        );
        assert_eq!(used.ok(), Some(28));
        assert_eq!((tally.replies, tally.errors, tally.wrong), (2, 2, 0));
    }

    #[test]
    fn malformed_and_unsolicited_replies_are_faults() {
        let mut tally = Tally::new();
        let expect = Expect::Exact(b"+PONG\r\n".to_vec());
        let mut st = state(2);
        assert!(matches!(
            check_replies(b"+PONG\r\nPONG\r\n", &mut st, &expect, 0, &mut tally),
            Err(Fault::Malformed(MalformedReply::UnknownType(b'P'), _))
        ));
        assert_eq!(tally.replies, 1);
        let mut st = state(1);
        assert!(matches!(
            check_replies(b"+PONG\r\n+PONG\r\n", &mut st, &expect, 0, &mut tally),
            Err(Fault::Unsolicited(_))
        ));
    }

    #[test]
    fn latency_is_measured_from_each_timestamp() {
        let mut tally = Tally::new();
        let mut st = state(0);
        st.times = Ring::new(3);
        for t in [1_000_000, 2_000_000, 2_000_000] {
            st.times.push(t);
            st.in_flight += 1;
        }
        let expect = Expect::Exact(b"+PONG\r\n".to_vec());
        let data = b"+PONG\r\n".repeat(3);
        check_replies(&data, &mut st, &expect, 5_000_000, &mut tally).ok();
        tally.flush_run();
        assert_eq!(tally.hist.len(), 3);
        assert_eq!(tally.hist.max(), tally.hist.highest_equivalent(4000));
        assert_eq!(tally.hist.min(), tally.hist.lowest_equivalent(3000));
    }

    #[test]
    fn pacing_spreads_due_times() {
        // 4 connections at 1000 requests/s in all: each sends every 4 ms.
        let interval = 4.0 * 1e9 / 1000.0;
        assert_eq!(due(0, interval, 0), 0);
        assert_eq!(due(0, interval, 1), 4_000_000);
        assert_eq!(due(1_000_000, interval, 2), 9_000_000);
    }

    #[test]
    fn integers_parse_strictly() {
        assert_eq!(parse_int(b"0"), Some(0));
        assert_eq!(parse_int(b"-1"), Some(-1));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [&b""[..], b"-", b"+1", b" 1", b"1a", b"9223372036854775808"] {
            assert_eq!(parse_int(bad), None, "{}", printable(bad, 32));
        }
        assert_eq!(integer_reply(b":17\r\n"), Some(17));
        assert_eq!(integer_reply(b"+17\r\n"), None);
        assert_eq!(integer_reply(b":17"), None);
    }
}
