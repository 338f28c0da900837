//! The publishers: one poll loop over every publishing connection. Each keeps up to
//! `-P` `PUBLISH` requests in flight (refilled as replies arrive), or with `--rate` sends
//! each when it is due; turns through the channels; numbers its messages per channel; and
//! checks each reply against the number of subscribers the channel has.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use muxd::Stream;
use muxd::buffer::InputBuf;

use super::wire::{Header, Request, channel_name, parse_integer};
use super::{PubSubPlan, Shared, StopWhen};
use crate::timer::Timer;

/// Token of the pacing timer (the connections' are their indexes).
const TIMER: Token = Token(usize::MAX);

/// What the publishers did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Messages published, by publisher then channel (`p * channels + c`).
    pub published: Vec<u64>,
    /// Replies whose receiver count was not the channel's number of subscribers.
    pub wrong: u64,
    pub errors: u64,
    pub samples: Vec<String>,
    /// When the last reply arrived, from the start.
    pub last_reply: Duration,
}

struct Conn {
    stream: Stream,
    /// Its index among all publishers.
    index: usize,
    out: Vec<u8>,
    written: usize,
    input: InputBuf,
    /// The channel of each request in flight, oldest first.
    in_flight: VecDeque<usize>,
    /// Messages it may still send (`None`: until the duration is over).
    quota: Option<u64>,
    /// Messages sent so far, and the next one's channel.
    sent: u64,
    /// The next message's number, per channel.
    seq: Vec<u64>,
    /// With `--rate`: when its next message is due, ns since the start.
    next_due: u64,
    failed: bool,
}

/// Runs the publishers from `start` until their messages are all published and answered.
pub fn run(plan: &PubSubPlan, shared: &Shared, streams: Vec<Stream>, start: Instant) -> Outcome {
    let mut outcome = Outcome {
        published: vec![0; plan.publishers * plan.channels],
        ..Outcome::default()
    };
    if let Err(e) = drive(plan, shared, streams, start, &mut outcome) {
        outcome.errors += 1;
        outcome.samples.push(format!("publishers: {e}"));
    }
    outcome
}

fn drive(
    plan: &PubSubPlan,
    shared: &Shared,
    streams: Vec<Stream>,
    start: Instant,
    outcome: &mut Outcome,
) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let requests: Vec<Request> = (0..plan.channels)
        .map(|c| Request::new(&channel_name(c), plan.payload))
        .collect();
    let interval = plan.rate.map(|r| plan.publishers as f64 * 1e9 / r);
    let mut conns = Vec::with_capacity(streams.len());
    for (i, mut stream) in streams.into_iter().enumerate() {
        poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let quota = match plan.stop {
            StopWhen::Messages(n) => {
                let (lo, hi) = crate::threads::share(n as usize, plan.publishers, i);
                Some((hi - lo) as u64)
            }
            StopWhen::Duration(_) => None,
        };
        conns.push(Conn {
            stream,
            index: i,
            out: Vec::new(),
            written: 0,
            input: InputBuf::with_capacity(16 * 1024),
            in_flight: VecDeque::with_capacity(plan.pipeline),
            quota,
            sent: 0,
            seq: vec![0; plan.channels],
            // The publishers' first messages spread over the first interval.
            next_due: interval.map_or(0, |iv| (iv * i as f64 / plan.publishers as f64) as u64),
            failed: false,
        });
    }
    let mut timer = match interval {
        Some(_) => Some(Timer::new(poll.registry(), TIMER)?),
        None => None,
    };
    let mut events = Events::with_capacity(1024);
    let mut last_progress = Instant::now();
    loop {
        let elapsed = start.elapsed();
        let now_ns = elapsed.as_nanos() as u64;
        let over = match plan.stop {
            StopWhen::Duration(d) => elapsed >= d,
            StopWhen::Messages(_) => false,
        };
        let mut next_due: Option<u64> = None;
        let mut busy = false;
        for conn in conns.iter_mut().filter(|c| !c.failed) {
            if over {
                conn.quota = Some(0);
            }
            refill(conn, plan, &requests, interval, now_ns);
            if let Err(e) = flush(conn) {
                conn.failed = true;
                outcome.errors += 1;
                outcome
                    .samples
                    .push(format!("publisher {}: {e}", conn.index));
                continue;
            }
            let more = conn.quota != Some(0);
            // Its next message waits for the timer only if its window has room (else for
            // a reply).
            if more && interval.is_some() && conn.in_flight.len() < plan.pipeline {
                next_due = Some(next_due.map_or(conn.next_due, |d| d.min(conn.next_due)));
            }
            busy |= more || !conn.in_flight.is_empty();
        }
        if !busy {
            break;
        }
        let mut wait = plan.timeout;
        if let (Some(timer), Some(due)) = (timer.as_mut(), next_due) {
            timer.arm(Duration::from_nanos(due.saturating_sub(now_ns)))?;
        }
        if let StopWhen::Duration(d) = plan.stop
            && !over
        {
            wait = wait.min(d.saturating_sub(elapsed));
        }
        poll.poll(&mut events, Some(wait))?;
        let mut heard = false;
        for event in events.iter() {
            if event.token() == TIMER {
                if let Some(timer) = timer.as_mut() {
                    timer.acknowledge();
                }
                continue;
            }
            let Some(conn) = conns.get_mut(event.token().0) else {
                continue;
            };
            if event.is_readable() && !conn.failed {
                match read_replies(conn, plan, outcome) {
                    Ok(n) if n > 0 => {
                        heard = true;
                        outcome.last_reply = start.elapsed();
                    }
                    Ok(_) => {}
                    Err(e) => {
                        conn.failed = true;
                        outcome.errors += 1;
                        outcome
                            .samples
                            .push(format!("publisher {}: {e}", conn.index));
                    }
                }
            }
        }
        if heard {
            last_progress = Instant::now();
            let sent = conns.iter().map(|c| c.sent).sum();
            shared
                .published
                .store(sent, std::sync::atomic::Ordering::Relaxed);
        } else if events.is_empty() && next_due.is_none() && last_progress.elapsed() >= plan.timeout
        {
            outcome.errors += 1;
            outcome
                .samples
                .push(format!("publishers: no reply for {:?}", plan.timeout));
            break;
        }
    }
    for conn in &conns {
        for (c, &n) in conn.seq.iter().enumerate() {
            if let Some(slot) = outcome.published.get_mut(conn.index * plan.channels + c) {
                *slot = n;
            }
        }
    }
    Ok(())
}

/// Queues the requests `conn` may send now: up to its window, within its quota, and with
/// `--rate` those that are due.
fn refill(
    conn: &mut Conn,
    plan: &PubSubPlan,
    requests: &[Request],
    interval: Option<f64>,
    now: u64,
) {
    while conn.in_flight.len() < plan.pipeline && conn.quota.is_none_or(|q| q > 0) {
        let due = match interval {
            Some(_) if conn.next_due > now => break,
            Some(iv) => {
                let due = conn.next_due;
                conn.next_due += iv as u64;
                due
            }
            None => now,
        };
        let channel = (conn.sent % plan.channels as u64) as usize;
        let (Some(seq), Some(request)) = (conn.seq.get_mut(channel), requests.get(channel)) else {
            break;
        };
        let header = Header {
            publisher: conn.index as u32,
            channel: channel as u32,
            seq: *seq,
            due,
        };
        *seq += 1;
        request.write(&header, &mut conn.out);
        conn.in_flight.push_back(channel);
        conn.sent += 1;
        if let Some(q) = conn.quota.as_mut() {
            *q -= 1;
        }
    }
}

/// Writes what `conn` has queued, as far as the socket takes it.
fn flush(conn: &mut Conn) -> io::Result<()> {
    while conn.written < conn.out.len() {
        match conn
            .stream
            .write(conn.out.get(conn.written..).unwrap_or_default())
        {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => conn.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    conn.out.clear();
    conn.written = 0;
    Ok(())
}

/// Reads and checks what the server answered; returns how many replies.
fn read_replies(conn: &mut Conn, plan: &PubSubPlan, outcome: &mut Outcome) -> io::Result<usize> {
    let mut replies = 0;
    loop {
        match conn.stream.read(conn.input.spare(16 * 1024)) {
            Ok(0) => return Err(io::Error::other("the server closed the connection")),
            Ok(n) => conn.input.filled(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        loop {
            match parse_integer(conn.input.data()) {
                Ok(Some((receivers, used))) => {
                    conn.input.consume(used);
                    let channel = conn.in_flight.pop_front().unwrap_or(0);
                    let expected = plan.subscribers_of(channel) as i64;
                    if receivers != expected {
                        outcome.wrong += 1;
                        if outcome.samples.len() < 5 {
                            outcome.samples.push(format!(
                                "PUBLISH on {} reached {receivers} subscribers, not {expected}",
                                channel_name(channel)
                            ));
                        }
                    }
                    replies += 1;
                }
                Ok(None) => break,
                Err(e) => return Err(io::Error::other(e)),
            }
        }
    }
    Ok(replies)
}
