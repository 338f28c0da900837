//! A line echo server: every line a client sends comes back to it, over TCP and a Unix
//! socket at once. The smallest embedding of the loop: a codec of our own
//! (`lines/mod.rs`: a request is a line) and a service of one method.
//!
//! ```text
//! cargo run --example line_echo -- 127.0.0.1:7001
//! printf 'hello\nworld\n' | nc -q1 127.0.0.1 7001      # hello, world
//! ```
//!
//! A line longer than 4 KiB gets `ERROR line too long` and the connection closes; other
//! clients notice nothing.

mod lines;

use lines::Lines;
use muxd::{Config, Context, ListenAddr, Server, Service};

/// Sends each line back.
pub struct Echo;

impl Service<Lines> for Echo {
    /// Nothing kept per client.
    type ClientState = ();

    fn on_request(&mut self, line: &[u8], ctx: &mut Context<'_, Lines, Self>) {
        ctx.reply(line);
    }
}

/// The server, bound to what `config` says (`main` below, and the tests, use this).
pub fn server(config: Config) -> Result<Server<Lines, Echo>, muxd::Error> {
    Server::bind(config, Lines, Echo)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:7001".into());
    let mut config = Config::default();
    config.listen.push(ListenAddr::tcp(&addr)?);
    config.listen.push(ListenAddr::unix("/tmp/line_echo.sock"));
    config.stop_on_signals = true; // Ctrl-C stops it gracefully.
    let server = server(config)?;
    for addr in server.local_addrs() {
        println!("echoing lines on {addr}");
    }
    server.run()?;
    Ok(())
}
