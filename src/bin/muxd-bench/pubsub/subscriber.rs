//! The subscribers: one poll loop per thread over its share of the subscribing
//! connections. Each subscriber listens to one channel and checks every message: its
//! channel, its size, and that each publisher's messages come in order, each once
//! (numbered per publisher and channel, so a gap is a loss and a step back a duplicate or
//! a reordering). The delivery latency is taken from the due time inside the payload.
//! Once the publishers are done, a subscriber is done when it has every message published
//! on its channel; one that waits longer than `--timeout` counts what it misses as lost.

use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};
use muxd::Stream;
use muxd::buffer::InputBuf;
use muxd::resp::{Framer, encode_request};

use super::wire::{HEADER, Header, channel_name, parse_message};
use super::{PubSubPlan, Shared};
use crate::report::new_histogram;

/// What one thread's subscribers saw.
pub struct Outcome {
    pub delivered: u64,
    pub lost: u64,
    /// Messages that came again, or out of order.
    pub duplicated: u64,
    pub errors: u64,
    pub samples: Vec<String>,
    /// Delivery latency, µs.
    pub hist: Histogram<u64>,
    /// When the last message arrived, from the start.
    pub last_delivery: Duration,
}

pub struct Conn {
    stream: Stream,
    input: InputBuf,
    channel: usize,
    name: Vec<u8>,
    /// The next message number expected from each publisher.
    expected: Vec<u64>,
    done: bool,
}

/// Subscribes each of `streams` (subscriber `first + i` listens to channel
/// `(first + i) % channels`) and waits for every confirmation.
pub fn subscribe(
    plan: &PubSubPlan,
    streams: Vec<Stream>,
    first: usize,
) -> anyhow::Result<Vec<Conn>> {
    let mut poll = Poll::new()?;
    let mut conns = Vec::with_capacity(streams.len());
    for (i, mut stream) in streams.into_iter().enumerate() {
        let channel = (first + i) % plan.channels;
        let name = channel_name(channel).into_bytes();
        let mut request = Vec::new();
        encode_request([&b"SUBSCRIBE"[..], &name], &mut request);
        // A few dozen bytes into a fresh connection's empty socket buffer: it goes whole.
        stream.write_all(&request)?;
        poll.registry()
            .register(&mut stream, Token(i), Interest::READABLE)?;
        conns.push(Conn {
            stream,
            input: InputBuf::with_capacity(64 * 1024),
            channel,
            name,
            expected: vec![0; plan.publishers],
            done: false,
        });
    }
    let mut waiting = conns.len();
    let mut confirmed = vec![false; conns.len()];
    let mut events = Events::with_capacity(1024);
    let deadline = Instant::now() + plan.timeout;
    while waiting > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            anyhow::bail!(
                "{waiting} subscriptions not confirmed within {:?}",
                plan.timeout
            );
        }
        poll.poll(&mut events, Some(left))?;
        for event in events.iter() {
            let i = event.token().0;
            let (Some(conn), Some(done)) = (conns.get_mut(i), confirmed.get_mut(i)) else {
                continue;
            };
            if *done {
                continue;
            }
            read_some(conn, |_| Ok(()))?;
            if let Some(len) = Framer::new().advance(conn.input.data())? {
                conn.input.consume(len);
                *done = true;
                waiting -= 1;
            }
        }
    }
    for conn in &mut conns {
        poll.registry().deregister(&mut conn.stream)?;
    }
    Ok(conns)
}

/// Reads what is there, a chunk at a time, calling `each` after every chunk (before the
/// next is read); `Ok(false)` when nothing was there.
fn read_some(
    conn: &mut Conn,
    mut each: impl FnMut(&mut Conn) -> io::Result<()>,
) -> io::Result<bool> {
    let mut any = false;
    loop {
        match conn.stream.read(conn.input.spare(64 * 1024)) {
            Ok(0) => return Err(io::Error::other("the server closed the connection")),
            Ok(n) => {
                conn.input.filled(n);
                any = true;
                each(conn)?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(any),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Runs this thread's subscribers from `start` until they are done.
pub fn run(plan: &PubSubPlan, shared: &Shared, mut conns: Vec<Conn>, start: Instant) -> Outcome {
    let mut outcome = Outcome {
        delivered: 0,
        lost: 0,
        duplicated: 0,
        errors: 0,
        samples: Vec::new(),
        hist: new_histogram(),
        last_delivery: Duration::ZERO,
    };
    if let Err(e) = drive(plan, shared, &mut conns, start, &mut outcome) {
        outcome.errors += 1;
        outcome.samples.push(format!("subscribers: {e}"));
    }
    outcome
}

fn drive(
    plan: &PubSubPlan,
    shared: &Shared,
    conns: &mut [Conn],
    start: Instant,
    outcome: &mut Outcome,
) -> io::Result<()> {
    let mut poll = Poll::new()?;
    for (i, conn) in conns.iter_mut().enumerate() {
        poll.registry()
            .register(&mut conn.stream, Token(i), Interest::READABLE)?;
    }
    let mut events = Events::with_capacity(1024);
    let mut last_progress = Instant::now();
    let mut left = conns.len();
    // The events of the setup may have come before the registration: look once at all.
    let mut all = true;
    while left > 0 {
        let mut heard = false;
        let ready: Vec<usize> = if all {
            (0..conns.len()).collect()
        } else {
            events.iter().map(|e| e.token().0).collect()
        };
        all = false;
        for i in ready {
            let Some(conn) = conns.get_mut(i) else {
                continue;
            };
            if conn.done {
                continue;
            }
            match read_some(conn, |conn| {
                let now = start.elapsed().as_nanos() as u64;
                check_messages(conn, plan, now, outcome).map_err(io::Error::other)
            }) {
                Ok(got) => heard |= got,
                Err(e) => {
                    conn.done = true;
                    left -= 1;
                    outcome.errors += 1;
                    outcome.samples.push(format!("subscriber: {e}"));
                }
            }
        }
        if heard {
            last_progress = Instant::now();
            outcome.last_delivery = start.elapsed();
            shared.delivered.store(outcome.delivered, Ordering::Relaxed);
        }
        if shared.publishing_done.load(Ordering::Acquire) {
            for conn in conns.iter_mut().filter(|c| !c.done) {
                if (0..plan.publishers)
                    .all(|p| conn.expected.get(p) == Some(&shared.published_on(p, conn.channel)))
                {
                    conn.done = true;
                    left -= 1;
                }
            }
            if left > 0 && last_progress.elapsed() >= plan.timeout {
                // What never came is lost.
                for conn in conns.iter_mut().filter(|c| !c.done) {
                    for p in 0..plan.publishers {
                        let got = conn.expected.get(p).copied().unwrap_or(0);
                        outcome.lost += shared.published_on(p, conn.channel).saturating_sub(got);
                    }
                }
                outcome.errors += 1;
                outcome.samples.push(format!(
                    "{left} subscribers received nothing for {:?}",
                    plan.timeout
                ));
                break;
            }
        }
        if left > 0 {
            poll.poll(&mut events, Some(Duration::from_millis(10)))?;
        }
    }
    shared.delivered.store(outcome.delivered, Ordering::Relaxed);
    Ok(())
}

/// Checks every whole message `conn` has received; `Err` if the stream is not messages.
fn check_messages(
    conn: &mut Conn,
    plan: &PubSubPlan,
    now: u64,
    outcome: &mut Outcome,
) -> Result<(), String> {
    loop {
        let Some((message, used)) = parse_message(conn.input.data())? else {
            return Ok(());
        };
        if message.channel != conn.name.as_slice() {
            return Err(format!(
                "a message on {:?}, not {:?}",
                String::from_utf8_lossy(message.channel),
                String::from_utf8_lossy(&conn.name)
            ));
        }
        let header = Header::read(message.payload)
            .filter(|_| message.payload.len() == plan.payload.max(HEADER))
            .ok_or_else(|| format!("a payload of {} bytes", message.payload.len()))?;
        let expected = conn
            .expected
            .get_mut(header.publisher as usize)
            .filter(|_| header.channel as usize == conn.channel)
            .ok_or_else(|| {
                format!(
                    "a message from publisher {} on channel {}",
                    header.publisher, header.channel
                )
            })?;
        if header.seq == *expected {
            *expected += 1;
        } else if header.seq > *expected {
            outcome.lost += header.seq - *expected;
            *expected = header.seq + 1;
            if outcome.samples.len() < 5 {
                outcome.samples.push(format!(
                    "publisher {}: messages lost before {}",
                    header.publisher, header.seq
                ));
            }
        } else {
            outcome.duplicated += 1;
            if outcome.samples.len() < 5 {
                outcome.samples.push(format!(
                    "publisher {}: message {} again or out of order (expecting {})",
                    header.publisher, header.seq, expected
                ));
            }
        }
        outcome.delivered += 1;
        let latency_us = now.saturating_sub(header.due) / 1000;
        let _ = outcome.hist.record(latency_us.max(1));
        conn.input.consume(used);
    }
}
