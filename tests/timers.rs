//! The service's timers and lifecycle hooks, against the real loop: periodic timers fire
//! as often as their period says and no more, without the loop busy-looping; a client's
//! timers go with it; timers can be cancelled and moved; a panicking timer hurts nobody
//! else; `on_start` sees the bound listeners and `on_shutdown` can still talk to clients.

mod util;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use muxd::{ClientId, ClientInfo, CloseReason, Context, ServerContext, Service, TimerId};
use util::TIMEOUT;
use util::lines::{LineClient, Lines, Running};

type Ctx<'a, S> = Context<'a, Lines, S>;
type ServerCtx<'a, S> = ServerContext<'a, Lines, S>;

/// The CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) },
        0
    );
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A 10 ms periodic timer over a window of 500 ms measured by the loop itself.
#[derive(Default)]
struct Ticking {
    fired: u64,
    /// The loop's wake-ups and CPU time at the start of the window.
    start: Option<(u64, Duration, Instant)>,
    /// Wake-ups, CPU time and loop time over the window.
    window: Option<(u64, Duration, Duration)>,
}

const PERIOD: Duration = Duration::from_millis(10);
const WINDOW: Duration = Duration::from_millis(500);

impl Service<Lines> for Ticking {
    type ClientState = ();

    fn on_request(&mut self, _: &[u8], _: &mut Ctx<'_, Self>) {}

    fn on_start(&mut self, ctx: &mut ServerCtx<'_, Self>) {
        self.start = Some((ctx.stats().eventloop_cycles, thread_cpu_time(), ctx.now()));
        ctx.every(PERIOD, |ticking, _| ticking.fired += 1);
        ctx.after(WINDOW, |ticking, ctx| {
            let (cycles, cpu, at) = ticking.start.unwrap();
            ticking.window = Some((
                ctx.stats().eventloop_cycles - cycles,
                thread_cpu_time() - cpu,
                ctx.now() - at,
            ));
            ctx.stop_server();
        });
    }
}

#[test]
fn a_periodic_timer_fires_once_per_period_and_the_loop_sleeps_in_between() {
    let running = Running::start(Ticking::default(), |_| {});
    let ticking = running.thread.join().unwrap();
    let (wakeups, cpu, elapsed) = ticking.window.unwrap();
    eprintln!(
        "fired={} wakeups={wakeups} cpu={cpu:?} elapsed={elapsed:?}",
        ticking.fired
    );
    // Never early: at most one firing per period of the window (the one at the window's
    // end included, as the timers are due together).
    let most = (elapsed.as_millis() / PERIOD.as_millis()) as u64;
    assert!(ticking.fired <= most, "fired {} > {most}", ticking.fired);
    // It does fire (a loaded machine may delay some ticks; missed ticks are skipped).
    assert!(ticking.fired >= 10, "fired only {}", ticking.fired);
    // No busy loop: the loop woke up about once per firing, nothing in between.
    assert!(
        wakeups <= ticking.fired + 3,
        "woke {wakeups} times for {} firings",
        ticking.fired
    );
    assert!(
        cpu < WINDOW / 2,
        "the loop used {cpu:?} of CPU in {WINDOW:?}"
    );
}

/// `TICK` arms a 5 ms timer for the client and a one-hour one that owns a guard;
/// `ONCE <ms>` arms a one-shot that replies.
struct ClientTimers {
    /// Firings of client timers, by client id.
    fired: Vec<ClientId>,
    /// Told when a guard is dropped (its timer is gone).
    dropped: mpsc::Sender<ClientId>,
    /// Told when a client has gone, with its firings so far.
    gone: mpsc::Sender<(ClientId, usize)>,
    /// Told at each tick of the server's own timer.
    ticks: mpsc::Sender<()>,
}

/// What the test sees of `ClientTimers`: the other ends of its channels.
struct Observed {
    dropped: mpsc::Receiver<ClientId>,
    gone: mpsc::Receiver<(ClientId, usize)>,
    ticks: mpsc::Receiver<()>,
}

impl ClientTimers {
    fn start() -> (Running<ClientTimers>, Observed) {
        let (dropped, dropped_rx) = mpsc::channel();
        let (gone, gone_rx) = mpsc::channel();
        let (ticks, ticks_rx) = mpsc::channel();
        let service = ClientTimers {
            fired: Vec::new(),
            dropped,
            gone,
            ticks,
        };
        let observed = Observed {
            dropped: dropped_rx,
            gone: gone_rx,
            ticks: ticks_rx,
        };
        (Running::start(service, |_| {}), observed)
    }
}

struct Guard(ClientId, mpsc::Sender<ClientId>);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.1.send(self.0);
    }
}

impl Service<Lines> for ClientTimers {
    type ClientState = ();

    fn on_start(&mut self, ctx: &mut ServerCtx<'_, Self>) {
        ctx.every(Duration::from_millis(5), |s, _| {
            let _ = s.ticks.send(());
        });
    }

    fn on_request(&mut self, line: &[u8], ctx: &mut Ctx<'_, Self>) {
        let me = ctx.id();
        match line {
            b"TICK" => {
                ctx.every_for(me, Duration::from_millis(5), |s, ctx| {
                    let me = ctx.id();
                    s.fired.push(me);
                    ctx.reply(b"tick");
                })
                .unwrap();
                let guard = Guard(me, self.dropped.clone());
                ctx.after_for(me, Duration::from_secs(3600), move |_, _| drop(guard))
                    .unwrap();
                ctx.reply(b"armed");
            }
            b"PANIC" => {
                ctx.after_for(me, Duration::ZERO, |_, ctx| {
                    ctx.reply(b"about to panic");
                    panic!("a client timer panicked")
                })
                .unwrap();
            }
            _ => ctx.reply(b"?"),
        }
    }

    fn on_disconnect(
        &mut self,
        info: &ClientInfo,
        _: (),
        _: CloseReason,
        _: &mut ServerCtx<'_, Self>,
    ) {
        let fired = self.fired.iter().filter(|id| **id == info.id()).count();
        let _ = self.gone.send((info.id(), fired));
    }
}

#[test]
fn a_client_timer_goes_with_its_client() {
    let (
        running,
        Observed {
            dropped,
            gone,
            ticks,
        },
    ) = ClientTimers::start();
    let mut stays = LineClient::tcp(running.tcp);
    assert_eq!(stays.ask("TICK"), "armed");
    let mut leaves = LineClient::tcp(running.tcp);
    assert_eq!(leaves.ask("TICK"), "armed");
    for _ in 0..3 {
        assert_eq!(leaves.line(), "tick");
    }
    drop(leaves);
    let (left, fired_before) = gone.recv_timeout(TIMEOUT).unwrap();
    // Its timers were dropped with it: the one-hour one's guard says so at once.
    assert_eq!(dropped.recv_timeout(TIMEOUT).unwrap(), left);
    // And its periodic one never fires again: let the server run a while longer, while
    // the other client's timer goes on.
    while ticks.try_recv().is_ok() {}
    for _ in 0..10 {
        ticks.recv_timeout(TIMEOUT).unwrap();
    }
    assert_eq!(stays.line(), "tick");
    let service = running.stop();
    let fired_after = service.fired.iter().filter(|id| **id == left).count();
    assert_eq!(fired_after, fired_before);
    assert!(service.fired.iter().any(|id| *id != left));
}

#[test]
fn a_panicking_client_timer_closes_only_its_client() {
    let (running, Observed { gone, ticks, .. }) = ClientTimers::start();
    let mut good = LineClient::tcp(running.tcp);
    assert_eq!(good.ask("TICK"), "armed");
    let mut bad = LineClient::tcp(running.tcp);
    bad.send("PANIC");
    // What the timer sent before panicking is dropped; the client is closed.
    assert!(bad.closed());
    let (_, _) = gone.recv_timeout(TIMEOUT).unwrap();
    assert_eq!(good.line(), "tick");
    ticks.recv_timeout(TIMEOUT).unwrap();
    running.stop();
}

/// One-shot timers, cancelled and moved; a server timer that panics. What each call
/// returned is noted (an assertion inside the loop would only be logged as a panic).
#[derive(Default)]
struct OneShots {
    fired: Vec<&'static str>,
    returned: Vec<(&'static str, bool)>,
    ids: Vec<TimerId>,
}

impl Service<Lines> for OneShots {
    type ClientState = ();

    fn on_start(&mut self, ctx: &mut ServerCtx<'_, Self>) {
        let ms = Duration::from_millis;
        let cancelled = ctx.after(ms(20), |s, _| s.fired.push("cancelled"));
        let moved = ctx.after(Duration::from_secs(3600), |s, _| s.fired.push("moved"));
        ctx.after(ms(20), |_, _| panic!("a server timer panicked"));
        ctx.after(ms(40), |s, _| s.fired.push("kept"));
        let every = ctx.every(Duration::from_secs(3600), |s, _| s.fired.push("every"));
        self.returned.push(("cancel", ctx.cancel(cancelled)));
        self.returned.push(("cancel again", ctx.cancel(cancelled)));
        self.returned
            .push(("reschedule", ctx.reschedule(moved, ms(30))));
        self.ids = vec![moved, every];
        ctx.after(ms(60), |s, ctx| {
            let (moved, every) = (s.ids[0], s.ids[1]);
            s.returned.push(("cancel fired", ctx.cancel(moved)));
            s.returned.push((
                "reschedule fired",
                ctx.reschedule(moved, Duration::from_millis(1)),
            ));
            s.returned.push(("cancel periodic", ctx.cancel(every)));
            ctx.stop_server();
        });
    }

    fn on_request(&mut self, _: &[u8], _: &mut Ctx<'_, Self>) {}
}

#[test]
fn one_shot_timers_run_once_and_can_be_cancelled_or_moved() {
    let running = Running::start(OneShots::default(), |_| {});
    let service = running.thread.join().unwrap();
    assert_eq!(service.fired, ["moved", "kept"]);
    assert_eq!(
        service.returned,
        [
            ("cancel", true),
            ("cancel again", false),
            ("reschedule", true),
            ("cancel fired", false),
            ("reschedule fired", false),
            ("cancel periodic", true),
        ]
    );
}

/// Greets from `on_start`'s view of the listeners; says goodbye from `on_shutdown`.
#[derive(Default)]
struct Hooks {
    listening: Vec<String>,
    shutdown_saw: usize,
}

impl Service<Lines> for Hooks {
    type ClientState = ();

    fn on_start(&mut self, ctx: &mut ServerCtx<'_, Self>) {
        self.listening = ctx
            .server()
            .listeners()
            .iter()
            .map(|l| l.addr.to_string())
            .collect();
    }

    fn on_request(&mut self, _: &[u8], ctx: &mut Ctx<'_, Self>) {
        ctx.reply(b"ok");
    }

    fn on_shutdown(&mut self, ctx: &mut ServerCtx<'_, Self>) {
        let ids: Vec<ClientId> = ctx.clients().iter().map(|c| c.info.id()).collect();
        for id in ids {
            // Clients are still open: sending works.
            if ctx.send_to(id, b"bye") {
                self.shutdown_saw += 1;
            }
        }
    }
}

#[test]
fn on_start_sees_the_listeners_and_on_shutdown_can_still_talk_to_clients() {
    let running = Running::start(Hooks::default(), |_| {});
    let tcp = running.tcp;
    let mut a = LineClient::tcp(tcp);
    let mut b = LineClient::tcp(tcp);
    assert_eq!(a.ask("hi"), "ok");
    assert_eq!(b.ask("hi"), "ok");
    let service = running.stop();
    assert_eq!(service.listening, [format!("tcp://{tcp}")]);
    assert_eq!(service.shutdown_saw, 2);
    for c in [&mut a, &mut b] {
        assert_eq!(c.line(), "bye");
        assert!(c.closed());
    }
}

/// `FLOOD` arms a 1 ms timer that sends the client 64 KiB a tick; the client never reads.
#[derive(Default)]
struct Flood {
    /// The most output owed to a client, seen at each tick of a server timer.
    most_owed: usize,
    server_ticks: u64,
}

const CHUNK: usize = 64 * 1024;
const HIGH_WATERMARK: usize = 256 * 1024;

impl Service<Lines> for Flood {
    type ClientState = ();

    fn on_start(&mut self, ctx: &mut ServerCtx<'_, Self>) {
        ctx.every(Duration::from_millis(1), |flood, ctx| {
            flood.server_ticks += 1;
            let owed = ctx.clients().iter().map(|c| c.output_buffered).max();
            flood.most_owed = flood.most_owed.max(owed.unwrap_or(0));
        });
    }

    fn on_request(&mut self, _: &[u8], ctx: &mut Ctx<'_, Self>) {
        let me = ctx.id();
        ctx.every_for(me, Duration::from_millis(1), |_, ctx| {
            ctx.reply(&[b'x'; CHUNK]);
        });
    }
}

#[test]
fn a_periodic_client_timer_skips_its_ticks_while_the_client_does_not_read() {
    let running = Running::start(Flood::default(), |config| {
        config.output_high_watermark = HIGH_WATERMARK;
        config.output_low_watermark = HIGH_WATERMARK / 4;
    });
    // Never read: the socket buffers fill, then what is owed piles up in the server.
    let mut reader = LineClient::tcp(running.tcp);
    reader.send("FLOOD");
    let (seen_tx, seen) = mpsc::channel();
    let poll = |handle: &muxd::ServerHandle<Lines, Flood>| {
        let seen_tx = seen_tx.clone();
        handle
            .run(move |flood, _| {
                seen_tx.send((flood.most_owed, flood.server_ticks)).unwrap();
            })
            .unwrap();
        seen.recv_timeout(TIMEOUT).unwrap()
    };
    // Past the watermark once...
    loop {
        let (owed, _) = poll(&running.handle);
        if owed > HIGH_WATERMARK {
            break;
        }
    }
    // ...and for 100 more milliseconds of ticks (100 chunks, 6.4 MiB, were it not
    // bounded), no further than one tick's worth past it.
    let (_, start) = poll(&running.handle);
    loop {
        let (owed, ticks) = poll(&running.handle);
        assert!(owed <= HIGH_WATERMARK + CHUNK + 2, "owed {owed}");
        if ticks >= start + 100 {
            break;
        }
    }
    drop(reader);
    running.stop();
}
