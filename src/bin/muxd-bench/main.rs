//! `muxd-bench`: the load generator for muxd (and any RESP server).
//!
//! For each test: learn the expected reply if it is a `--command`, connect every thread's
//! share of the connections, start all threads at one instant, print progress once a
//! second while they run, then merge their histograms and counts into one report. Idle
//! mode lives in [`idle`]. Modules: [`cli`] (command line), [`workload`] (requests and
//! expected replies), [`net`] (connecting), [`threads`] (connections per thread, ready
//! reports), [`worker`] (the per-thread poll loop), [`report`] (histograms, summary,
//! JSON), [`timer`] (pacing for `--rate`). Requests are encoded and replies framed by the
//! library's client side, [`muxd::resp::client`].

// Bytes from the network are never indexed or unwrapped: a bad server cannot panic us.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

mod cli;
mod handshake;
mod idle;
mod net;
mod pubsub;
mod report;
mod threads;
mod timer;
mod tls;
mod worker;
mod workload;

use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use clap::Parser;
use muxd::ListenAddr;
use muxd::resp::Framer;

use crate::cli::{Cli, Mode, Plan, StopAt};
use crate::net::{connect_many, ensure_fd_limit, explain, thread_batch};
use crate::report::{Latency, PROGRESS_EVERY, Progress, Report, new_histogram, printable};
use crate::threads::{first_failure, share};
use crate::worker::{Outcome, SAMPLES, Shared, Worker};
use crate::workload::{Expect, Workload};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let plan = match cli.plan() {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("muxd-bench: {e:#}");
            return ExitCode::from(2);
        }
    };
    match run(&plan) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("muxd-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs what the plan says; `Ok(false)` when errors or wrong replies occurred.
fn run(plan: &Plan) -> anyhow::Result<bool> {
    match &plan.mode {
        Mode::Idle { count, hold } => idle::run(plan, *count, *hold),
        Mode::PubSub(pubsub) => {
            let (report, samples) = pubsub::run(&plan.target, pubsub, &plan.greeting, plan.quiet)?;
            print_report(plan.json, &report.to_json(), &report.to_text())?;
            if !report.is_clean() {
                eprintln!("muxd-bench: pubsub: something went wrong, for example:");
                for s in samples {
                    eprintln!("  {s}");
                }
            }
            Ok(report.is_clean())
        }
        Mode::Load {
            workloads,
            stop,
            rate,
            lockstep,
        } => {
            ensure_fd_limit(plan.clients)?;
            let mut clean = true;
            for workload in workloads {
                let (report, samples) = run_test(plan, workload, *stop, *rate, *lockstep)?;
                print_report(plan.json, &report.to_json(), &report.to_text())?;
                if !report.is_clean() {
                    clean = false;
                    eprintln!(
                        "muxd-bench: {}: {} errors, {} wrong replies, for example:",
                        report.test, report.errors, report.wrong
                    );
                    for s in samples {
                        eprintln!("  {s}");
                    }
                }
            }
            Ok(clean)
        }
    }
}

/// Prints a report on stdout: its JSON line with `--json`, else its text.
fn print_report(json: bool, as_json: &str, as_text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{as_json}")?;
    } else {
        write!(out, "{as_text}")?;
    }
    out.flush()
}

/// Runs one test on every thread; returns its report and samples of what went wrong.
fn run_test(
    plan: &Plan,
    workload: &Workload,
    stop: StopAt,
    rate: Option<f64>,
    lockstep: bool,
) -> anyhow::Result<(Report, Vec<String>)> {
    let expect = match &workload.expect {
        Some(expect) => expect.clone(),
        None => {
            let learned = learn(plan, &workload.request)
                .with_context(|| format!("learning the reply to {:?}", workload.name))?;
            if !plan.quiet {
                eprintln!(
                    "muxd-bench: {}: expecting \"{}\" (the first reply){}",
                    workload.name,
                    printable(&learned, 120),
                    if learned.first() == Some(&b'-') {
                        "; it is an error reply, so every reply will count as an error"
                    } else {
                        ""
                    }
                );
            }
            Expect::Exact(learned)
        }
    };
    let threads = plan.threads;
    let shared = Arc::new(Shared::new(
        &workload.request,
        expect,
        plan.pipeline,
        plan.clients,
        stop,
        rate,
        lockstep,
        plan.timeout,
        threads,
    ));
    let batch = thread_batch(threads);
    let (ready_tx, ready_rx) = mpsc::channel::<anyhow::Result<()>>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let mut gos = Vec::with_capacity(threads);
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let (lo, hi) = share(plan.clients, threads, t);
        let (go_tx, go_rx) = mpsc::channel::<Option<Instant>>();
        gos.push(go_tx);
        let shared = Arc::clone(&shared);
        let target = plan.target.clone();
        let greeting = plan.greeting.clone();
        let timeout = plan.timeout;
        let ready_tx = ready_tx.clone();
        let done_tx = done_tx.clone();
        let handle = thread::Builder::new()
            .name(format!("bench-{t}"))
            .spawn(move || -> Option<Outcome> {
                // Dropped when the thread ends, however it ends: the main thread waits on
                // every such sender being gone.
                let _done = done_tx;
                let ready =
                    connect_many(&target, hi - lo, batch, &greeting, timeout).and_then(|streams| {
                        Worker::new(&shared, t, lo, streams).context("setting up the poll loop")
                    });
                let worker = match ready {
                    Ok(worker) => {
                        let _ = ready_tx.send(Ok(()));
                        worker
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return None;
                    }
                };
                drop(ready_tx);
                let start = go_rx.recv().ok().flatten()?;
                Some(worker.run(start))
            })
            .context("starting a thread")?;
        handles.push(handle);
    }
    drop(ready_tx);
    drop(done_tx);

    if let Some(e) = first_failure(&ready_rx, threads, "a load thread") {
        for go in &gos {
            let _ = go.send(None);
        }
        for h in handles {
            let _ = h.join();
        }
        return Err(e);
    }

    let start = Instant::now();
    for go in &gos {
        let _ = go.send(Some(start));
    }
    let mut progress = Progress::new(&workload.name, start, plan.quiet);
    let mut next_tick = start + PROGRESS_EVERY;
    loop {
        let wait = next_tick.saturating_duration_since(Instant::now());
        match done_rx.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                progress.report(shared.progress(), now);
                next_tick += PROGRESS_EVERY;
                if next_tick < now {
                    next_tick = now + PROGRESS_EVERY;
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Ok(()) => {}
        }
    }
    let ended = start.elapsed();
    progress.finish();

    let mut hist = new_histogram();
    let (mut requests, mut errors, mut wrong) = (0, 0, 0);
    let mut error_samples = Vec::new();
    let mut wrong_samples = Vec::new();
    let mut last_reply = Duration::ZERO;
    for h in handles {
        let outcome = h
            .join()
            .map_err(|_| anyhow!("a load thread panicked"))?
            .ok_or_else(|| anyhow!("a load thread did not run"))?;
        hist.add(&outcome.hist)
            .map_err(|e| anyhow!("merging histograms: {e:?}"))?;
        requests += outcome.replies;
        errors += outcome.errors;
        wrong += outcome.wrong;
        error_samples.extend(outcome.error_samples);
        wrong_samples.extend(outcome.wrong_samples);
        last_reply = last_reply.max(outcome.last_reply);
    }
    let seconds = if requests > 0 { last_reply } else { ended };
    let report = Report {
        test: workload.name.clone(),
        target: plan.target.to_string(),
        clients: plan.clients,
        pipeline: plan.pipeline,
        threads,
        requests,
        errors,
        wrong,
        seconds: seconds.as_secs_f64(),
        latency: Latency::of(&hist),
    };
    let samples = distinct(error_samples)
        .into_iter()
        .chain(distinct(wrong_samples))
        .collect();
    Ok((report, samples))
}

/// The first [`SAMPLES`] distinct samples, in order.
fn distinct(samples: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in samples {
        if out.len() < SAMPLES && !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// Sends `request` once on a connection of its own, after the plan's greeting (so the
/// reply is learned in the protocol the load will speak), and returns the complete reply.
fn learn(plan: &Plan, request: &[u8]) -> anyhow::Result<Vec<u8>> {
    let (target, timeout) = (&plan.target, plan.timeout);
    let mut stream: Box<dyn ReadWrite> = match &target.addr {
        ListenAddr::Tcp(addr) | ListenAddr::Tls(addr) => {
            let s = std::net::TcpStream::connect_timeout(addr, timeout)
                .map_err(|e| explain(target, e))?;
            s.set_read_timeout(Some(timeout))?;
            s.set_write_timeout(Some(timeout))?;
            match &target.tls {
                Some(tls) => Box::new(muxd::rustls::StreamOwned::new(tls.connection()?, s)),
                None => Box::new(s),
            }
        }
        ListenAddr::Unix(path) => {
            let s =
                std::os::unix::net::UnixStream::connect(path).map_err(|e| explain(target, e))?;
            s.set_read_timeout(Some(timeout))?;
            s.set_write_timeout(Some(timeout))?;
            Box::new(s)
        }
    };
    let mut buf = [0u8; 16 * 1024];
    let mut reply = Vec::new();
    if !plan.greeting.is_empty() {
        stream
            .write_all(&plan.greeting.bytes)
            .context("sending the greeting")?;
        let mut answered = 0;
        while !plan.greeting.done(answered) {
            let n = stream
                .read(&mut buf)
                .context("waiting for the greeting's replies")?;
            if n == 0 {
                bail!("the server closed the connection instead of answering the greeting");
            }
            reply.extend_from_slice(buf.get(..n).unwrap_or_default());
            let used = plan
                .greeting
                .check(&reply, &mut answered)
                .map_err(|e| anyhow!(e))?;
            reply.drain(..used);
        }
    }
    stream.write_all(request).context("sending the request")?;
    let mut framer = Framer::new();
    loop {
        if !reply.is_empty() {
            match framer.advance(&reply) {
                Ok(Some(len)) => {
                    if len != reply.len() {
                        bail!(
                            "the server sent more than one reply: \"{}\"",
                            printable(&reply, 200)
                        );
                    }
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(m) => bail!("malformed reply ({m}): \"{}\"", printable(&reply, 200)),
            }
        }
        let n = stream.read(&mut buf).context("waiting for the reply")?;
        if n == 0 {
            bail!("the server closed the connection without replying");
        }
        reply.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
}

/// A blocking stream of either kind.
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}
