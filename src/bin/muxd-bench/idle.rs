//! Idle mode (`--idle N`): open N connections, prove each is accepted with a PING, say so
//! with one `IDLE N connected` line on stdout, then hold them open without traffic, for
//! measuring what idle clients cost the server.
//!
//! Connections are opened in batches (see [`connect_many`]) by every thread for its share.
//! They are held until `--duration` elapses or, without it, until SIGINT or SIGTERM; a
//! script starts the tool, waits for the line, measures, and stops it with `kill`. The
//! holding threads watch their connections: any that the server closes (or writes to) is
//! reported on stderr, and the exit status is then 1.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use mio::{Events, Interest, Poll, Token};

use crate::cli::Plan;
use crate::net::{Stream, connect_many, ensure_fd_limit, thread_batch};
use crate::report::printable;
use crate::threads::{first_failure, share};

/// How often holding threads and the main thread look at the stop flag.
const CHECK_EVERY: Duration = Duration::from_millis(50);
/// Samples of lost connections printed.
const SAMPLES: usize = 5;

/// What one holding thread saw.
#[derive(Default)]
struct Held {
    lost: usize,
    samples: Vec<String>,
}

/// Runs idle mode; `Ok(true)` when every connection stayed open to the end.
pub fn run(plan: &Plan, count: usize, hold: Option<Duration>) -> anyhow::Result<bool> {
    ensure_fd_limit(count)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    let threads = plan.threads;
    let batch = thread_batch(threads);
    let (ready_tx, ready_rx) = mpsc::channel::<anyhow::Result<()>>();
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let (lo, hi) = share(count, threads, t);
        let target = plan.target.clone();
        let greeting = plan.greeting.clone();
        let timeout = plan.timeout;
        let ready_tx = ready_tx.clone();
        let stop = Arc::clone(&stop);
        let handle = thread::Builder::new()
            .name(format!("idle-{t}"))
            .spawn(move || -> Held {
                match connect_many(&target, hi - lo, batch, &greeting, timeout) {
                    Ok(streams) => {
                        let _ = ready_tx.send(Ok(()));
                        drop(ready_tx);
                        hold_open(streams, lo, &stop)
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        Held::default()
                    }
                }
            })
            .context("starting a thread")?;
        handles.push(handle);
    }
    drop(ready_tx);
    if let Some(e) = first_failure(&ready_rx, threads, "a connecting thread") {
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            let _ = h.join();
        }
        return Err(e);
    }

    let mut stdout = io::stdout().lock();
    writeln!(stdout, "IDLE {count} connected").context("writing the IDLE line")?;
    stdout.flush().context("writing the IDLE line")?;
    drop(stdout);

    let deadline = hold.map(|d| Instant::now() + d);
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let wait = match deadline {
            Some(d) if now >= d => break,
            Some(d) => (d - now).min(CHECK_EVERY),
            None => CHECK_EVERY,
        };
        thread::sleep(wait);
    }
    stop.store(true, Ordering::Relaxed);

    let mut lost = 0;
    let mut samples = Vec::new();
    for h in handles {
        let held = h.join().map_err(|_| anyhow!("a holding thread panicked"))?;
        lost += held.lost;
        samples.extend(held.samples);
    }
    if lost > 0 {
        eprintln!("muxd-bench: {lost} of {count} idle connections were lost:");
        for s in samples.iter().take(SAMPLES) {
            eprintln!("  {s}");
        }
    }
    Ok(lost == 0)
}

/// Holds `streams` (connections `first..`) until `stop`; counts those the server ends.
fn hold_open(mut streams: Vec<Stream>, first: usize, stop: &AtomicBool) -> Held {
    let mut held = Held::default();
    let lose = |held: &mut Held, i: usize, what: String| {
        held.lost += 1;
        if held.samples.len() < SAMPLES {
            held.samples
                .push(format!("connection {}: {what}", first + i));
        }
    };
    let mut poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => {
            let n = streams.len();
            held.lost = n;
            held.samples.push(format!("creating a poller failed: {e}"));
            return held;
        }
    };
    let mut open: Vec<bool> = vec![true; streams.len()];
    for (i, stream) in streams.iter_mut().enumerate() {
        if let Err(e) = poll
            .registry()
            .register(stream, Token(i), Interest::READABLE)
        {
            lose(&mut held, i, format!("registering failed: {e}"));
            if let Some(o) = open.get_mut(i) {
                *o = false;
            }
        }
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = poll.poll(&mut events, Some(CHECK_EVERY))
            && e.kind() != io::ErrorKind::Interrupted
        {
            lose(&mut held, 0, format!("poll failed: {e}"));
            break;
        }
        for event in events.iter() {
            let i = event.token().0;
            let (Some(stream), Some(true)) = (streams.get_mut(i), open.get(i).copied()) else {
                continue;
            };
            let what = match stream.read(&mut buf) {
                Ok(0) => "closed by the server".to_owned(),
                Ok(n) => format!(
                    "the server sent \"{}\" to an idle connection",
                    printable(buf.get(..n).unwrap_or_default(), 120)
                ),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => e.to_string(),
            };
            let _ = poll.registry().deregister(stream);
            let _ = stream.shutdown(std::net::Shutdown::Both);
            if let Some(o) = open.get_mut(i) {
                *o = false;
            }
            lose(&mut held, i, what);
        }
    }
    held
}
