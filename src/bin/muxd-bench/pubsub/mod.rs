//! `--pubsub`: publishers, subscribers and channels, against muxd or Redis.
//!
//! Subscriber `i` listens to channel `i % channels`; the publishers turn through the
//! channels, each message carrying who published it, its number and when it was due
//! ([`wire`]). The subscribers ([`subscriber`]) run on `--threads` threads and the
//! publishers ([`publisher`]) on one more; all start at one instant. The report gives the
//! messages published and delivered per second, the delivery latency (from the due time
//! inside each payload to its arrival, so with `--rate` a stalled server shows in the
//! tail), and what went wrong: messages lost, duplicated or reordered at any subscriber,
//! `PUBLISH` replies that did not count the channel's subscribers.

mod publisher;
mod subscriber;
pub mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};

use crate::handshake::Greeting;
use crate::net::{Target, connect_many, ensure_fd_limit, thread_batch};
use crate::report::{Latency, PROGRESS_EVERY, Progress, json_string, new_histogram};
use crate::threads::{first_failure, share};

/// When the publishers stop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StopWhen {
    /// After this many messages in all.
    Messages(u64),
    /// After this long.
    Duration(Duration),
}

/// A pub/sub run, from the flags.
#[derive(Debug, Clone, PartialEq)]
pub struct PubSubPlan {
    pub publishers: usize,
    pub subscribers: usize,
    pub channels: usize,
    /// Bytes of each message's payload (at least [`wire::HEADER`]).
    pub payload: usize,
    /// `PUBLISH` requests in flight per publisher.
    pub pipeline: usize,
    /// Messages per second in all, if paced.
    pub rate: Option<f64>,
    pub stop: StopWhen,
    /// Threads for the subscribers (the publishers have one of their own).
    pub threads: usize,
    pub timeout: Duration,
}

impl PubSubPlan {
    /// How many subscribers channel `c` has.
    pub fn subscribers_of(&self, c: usize) -> usize {
        self.subscribers / self.channels + usize::from(c < self.subscribers % self.channels)
    }
}

/// What the threads of a run share.
pub struct Shared {
    /// Messages published so far, for the progress line.
    published: AtomicU64,
    /// Messages delivered so far, for the progress line.
    delivered: AtomicU64,
    /// Set once the publishers are done and `published_on` is final.
    publishing_done: AtomicBool,
    /// Messages each publisher published on each channel (`p * channels + c`).
    totals: Vec<AtomicU64>,
    channels: usize,
}

impl Shared {
    /// What publisher `p` published on channel `c` (final once `publishing_done`).
    fn published_on(&self, p: usize, c: usize) -> u64 {
        self.totals
            .get(p * self.channels + c)
            .map_or(0, |n| n.load(Ordering::Acquire))
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct PubSubReport {
    pub target: String,
    pub plan: PubSubPlan,
    pub published: u64,
    pub publish_seconds: f64,
    pub delivered: u64,
    pub deliver_seconds: f64,
    pub latency: Latency,
    pub lost: u64,
    pub duplicated: u64,
    pub wrong: u64,
    pub errors: u64,
}

impl PubSubReport {
    fn per_second(n: u64, seconds: f64) -> f64 {
        if seconds > 0.0 {
            n as f64 / seconds
        } else {
            0.0
        }
    }

    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.wrong == 0 && self.errors == 0
    }

    pub fn to_text(&self) -> String {
        let p = &self.plan;
        let pace = match p.rate {
            Some(r) => format!("{r} messages/s"),
            None => format!("-P {}", p.pipeline),
        };
        format!(
            "====== pubsub: {} publishers -> {} subscribers on {} channels, {} B payloads, {pace} ({})\n\
             \x20 published  {:>12} in {:.3} s: {:.0} messages/s\n\
             \x20 delivered  {:>12} in {:.3} s: {:.0} messages/s\n\
             \x20 delivery latency: p50 {} us, p99 {} us, p99.9 {} us, max {} us\n\
             \x20 lost {}, duplicated or reordered {}, wrong receiver counts {}, errors {}\n",
            p.publishers,
            p.subscribers,
            p.channels,
            p.payload,
            self.target,
            self.published,
            self.publish_seconds,
            Self::per_second(self.published, self.publish_seconds),
            self.delivered,
            self.deliver_seconds,
            Self::per_second(self.delivered, self.deliver_seconds),
            self.latency.p50,
            self.latency.p99,
            self.latency.p999,
            self.latency.max,
            self.lost,
            self.duplicated,
            self.wrong,
            self.errors,
        )
    }

    pub fn to_json(&self) -> String {
        let p = &self.plan;
        format!(
            "{{\"test\":\"pubsub\",\"target\":{},\"publishers\":{},\"subscribers\":{},\"channels\":{},\"payload\":{},\"pipeline\":{},\"rate\":{},\"threads\":{},\"published\":{},\"delivered\":{},\"publish_seconds\":{:.6},\"deliver_seconds\":{:.6},\"published_per_s\":{:.1},\"delivered_per_s\":{:.1},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{},\"lost\":{},\"duplicated\":{},\"wrong\":{},\"errors\":{}}}",
            json_string(&self.target),
            p.publishers,
            p.subscribers,
            p.channels,
            p.payload,
            p.pipeline,
            p.rate.map_or("null".to_owned(), |r| format!("{r}")),
            p.threads,
            self.published,
            self.delivered,
            self.publish_seconds,
            self.deliver_seconds,
            Self::per_second(self.published, self.publish_seconds),
            Self::per_second(self.delivered, self.deliver_seconds),
            self.latency.p50,
            self.latency.p99,
            self.latency.p999,
            self.latency.max,
            self.lost,
            self.duplicated,
            self.wrong,
            self.errors,
        )
    }
}

/// The channels a run's threads are started with: each says once it is ready (or why it
/// cannot be), waits for the go (the start instant; `None`: give up), and holds a sender
/// of the last until it ends.
type Starting<'a> = (
    &'a mpsc::Sender<anyhow::Result<()>>,
    &'a mpsc::Sender<()>,
    &'a mut Vec<mpsc::Sender<Option<Instant>>>,
);

/// Starts a thread that `connect`s, says whether it is ready, waits for the go and then
/// `work`s from the start instant given.
fn spawn<T, R: Send + 'static>(
    name: String,
    (ready, done, gos): Starting<'_>,
    connect: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    work: impl FnOnce(T, Instant) -> R + Send + 'static,
) -> anyhow::Result<thread::JoinHandle<Option<R>>> {
    let (go_tx, go_rx) = mpsc::channel::<Option<Instant>>();
    gos.push(go_tx);
    let (ready, done) = (ready.clone(), done.clone());
    thread::Builder::new()
        .name(name)
        .spawn(move || {
            let _done = done;
            let state = match connect() {
                Ok(state) => {
                    let _ = ready.send(Ok(()));
                    state
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return None;
                }
            };
            drop(ready);
            let start = go_rx.recv().ok().flatten()?;
            Some(work(state, start))
        })
        .context("starting a thread")
}

/// Runs `plan` against `target`; returns the report and examples of what went wrong.
pub fn run(
    target: &Target,
    plan: &PubSubPlan,
    greeting: &Greeting,
    quiet: bool,
) -> anyhow::Result<(PubSubReport, Vec<String>)> {
    ensure_fd_limit(plan.publishers + plan.subscribers)?;
    let shared = Arc::new(Shared {
        published: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        publishing_done: AtomicBool::new(false),
        totals: (0..plan.publishers * plan.channels)
            .map(|_| AtomicU64::new(0))
            .collect(),
        channels: plan.channels,
    });
    let batch = thread_batch(plan.threads + 1);
    let (ready_tx, ready_rx) = mpsc::channel::<anyhow::Result<()>>();
    // Each thread holds a sender until it ends: the channel disconnects when all have.
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let mut gos = Vec::new();
    let mut subscribers = Vec::new();
    for t in 0..plan.threads {
        let (lo, hi) = share(plan.subscribers, plan.threads, t);
        let (plan, shared, target, greeting) = (
            plan.clone(),
            Arc::clone(&shared),
            target.clone(),
            greeting.clone(),
        );
        subscribers.push(spawn(
            format!("subscribers-{t}"),
            (&ready_tx, &done_tx, &mut gos),
            move || {
                connect_many(&target, hi - lo, batch, &greeting, plan.timeout)
                    .and_then(|streams| subscriber::subscribe(&plan, streams, lo))
                    .map(|conns| (plan, shared, conns))
            },
            |(plan, shared, conns), start| subscriber::run(&plan, &shared, conns, start),
        )?);
    }
    let publishers = {
        let (plan, shared, target, greeting) = (
            plan.clone(),
            Arc::clone(&shared),
            target.clone(),
            greeting.clone(),
        );
        spawn(
            "publishers".to_owned(),
            (&ready_tx, &done_tx, &mut gos),
            move || {
                connect_many(&target, plan.publishers, batch, &greeting, plan.timeout)
                    .map(|streams| (plan, shared, streams))
            },
            |(plan, shared, streams), start| {
                let outcome = publisher::run(&plan, &shared, streams, start);
                for (slot, &n) in shared.totals.iter().zip(&outcome.published) {
                    slot.store(n, Ordering::Release);
                }
                shared.publishing_done.store(true, Ordering::Release);
                outcome
            },
        )?
    };
    drop((ready_tx, done_tx));
    if let Some(e) = first_failure(&ready_rx, plan.threads + 1, "a pub/sub thread") {
        for go in &gos {
            let _ = go.send(None);
        }
        return Err(e);
    }
    let start = Instant::now();
    for go in &gos {
        let _ = go.send(Some(start));
    }
    let mut progress = Progress::new("pubsub delivered", start, quiet);
    loop {
        match done_rx.recv_timeout(PROGRESS_EVERY) {
            Err(RecvTimeoutError::Timeout) => {
                progress.report(shared.delivered.load(Ordering::Relaxed), Instant::now());
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Ok(()) => {}
        }
    }
    progress.finish();
    let published = publishers
        .join()
        .map_err(|_| anyhow!("the publishers' thread panicked"))?
        .ok_or_else(|| anyhow!("the publishers did not run"))?;
    let mut hist = new_histogram();
    let mut report = PubSubReport {
        target: target.to_string(),
        plan: plan.clone(),
        published: published.published.iter().sum(),
        publish_seconds: published.last_reply.as_secs_f64(),
        delivered: 0,
        deliver_seconds: 0.0,
        latency: Latency::default(),
        lost: 0,
        duplicated: 0,
        wrong: published.wrong,
        errors: published.errors,
    };
    let mut samples = published.samples;
    for s in subscribers {
        let outcome = s
            .join()
            .map_err(|_| anyhow!("a subscribers' thread panicked"))?
            .ok_or_else(|| anyhow!("a subscribers' thread did not run"))?;
        hist.add(&outcome.hist)
            .map_err(|e| anyhow!("merging histograms: {e:?}"))?;
        report.delivered += outcome.delivered;
        report.lost += outcome.lost;
        report.duplicated += outcome.duplicated;
        report.errors += outcome.errors;
        report.deliver_seconds = report
            .deliver_seconds
            .max(outcome.last_delivery.as_secs_f64());
        samples.extend(outcome.samples);
    }
    report.latency = Latency::of(&hist);
    samples.truncate(10);
    Ok((report, samples))
}
