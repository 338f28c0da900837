//! A ticker: subscribers get the time pushed to them, from two places at once:
//!
//! - a **timer** on the loop thread: `tick <n> <unix seconds>` every second;
//! - a **producer thread** of the service's own: `news <n>` every 250 ms, sent through a
//!   `ServerHandle` (the loop runs the broadcast on its own thread, in order).
//!
//! The service keeps its own list of subscribers by client id and pushes with
//! `send_to`. Commands: `SUBSCRIBE`, `UNSUBSCRIBE`, `STATS` (`ticks=<n> news=<n>
//! subscribers=<n>`); a subscriber that disconnects is dropped from the list.
//!
//! ```text
//! cargo run --example ticker -- 127.0.0.1:7004
//! (echo SUBSCRIBE; sleep 3) | nc 127.0.0.1 7004
//! ```

mod lines;

use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lines::Lines;
use muxd::{ClientId, ClientInfo, CloseReason, Config, Context, ListenAddr, Server};
use muxd::{ServerContext, Service};

/// The subscribers, and how often each kind of message goes out.
pub struct Ticker {
    subscribers: Vec<ClientId>,
    tick_every: Duration,
    news_every: Duration,
    ticks: u64,
    news: u64,
}

type ServerCtx<'a> = ServerContext<'a, Lines, Ticker>;

impl Ticker {
    /// A ticker that ticks every `tick_every` and has news every `news_every`.
    pub fn new(tick_every: Duration, news_every: Duration) -> Ticker {
        Ticker {
            subscribers: Vec::new(),
            tick_every,
            news_every,
            ticks: 0,
            news: 0,
        }
    }

    /// Sends `line` to every subscriber (one too slow to read misses it).
    fn publish(&mut self, ctx: &mut ServerCtx<'_>, line: &str) {
        for &id in &self.subscribers {
            ctx.send_to(id, line.as_bytes());
        }
    }
}

impl Service<Lines> for Ticker {
    type ClientState = ();

    fn on_start(&mut self, ctx: &mut ServerCtx<'_>) {
        // The timer: runs on the loop thread with the service and a context.
        ctx.every(self.tick_every, |ticker, ctx| {
            ticker.ticks += 1;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let line = format!("tick {} {}", ticker.ticks, now.as_secs());
            ticker.publish(ctx, &line);
        });
        // The producer thread: it cannot touch the service, so it sends code to the
        // loop through a handle; it ends when the server has stopped.
        let handle = ctx.handle();
        let every = self.news_every;
        thread::spawn(move || {
            loop {
                thread::sleep(every);
                let sent = handle.run(|ticker, ctx| {
                    ticker.news += 1;
                    let line = format!("news {}", ticker.news);
                    ticker.publish(ctx, &line);
                });
                if sent.is_err() {
                    break;
                }
            }
        });
    }

    fn on_request(&mut self, line: &[u8], ctx: &mut Context<'_, Lines, Self>) {
        let id = ctx.id();
        match line {
            b"SUBSCRIBE" => {
                if !self.subscribers.contains(&id) {
                    self.subscribers.push(id);
                }
                ctx.reply(b"subscribed");
            }
            b"UNSUBSCRIBE" => {
                self.subscribers.retain(|&s| s != id);
                ctx.reply(b"unsubscribed");
            }
            b"STATS" => {
                let (ticks, news, n) = (self.ticks, self.news, self.subscribers.len());
                ctx.reply(format!("ticks={ticks} news={news} subscribers={n}").as_bytes());
            }
            _ => ctx.reply(b"commands: SUBSCRIBE, UNSUBSCRIBE, STATS"),
        }
    }

    fn on_disconnect(&mut self, info: &ClientInfo, _: (), _: CloseReason, _: &mut ServerCtx<'_>) {
        self.subscribers.retain(|&s| s != info.id());
    }
}

/// The server, bound to what `config` says (`main` below, and the tests, use this).
pub fn server(config: Config, ticker: Ticker) -> Result<Server<Lines, Ticker>, muxd::Error> {
    Server::bind(config, Lines, ticker)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:7004".into());
    let mut config = Config::default();
    config.listen.push(ListenAddr::tcp(&addr)?);
    config.stop_on_signals = true;
    let ticker = Ticker::new(Duration::from_secs(1), Duration::from_millis(250));
    let server = server(config, ticker)?;
    println!("ticker on {}", server.local_addrs()[0]);
    server.run()?;
    Ok(())
}
