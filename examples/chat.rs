//! A chat room: the classic exercise in multiplexing. Every line a client sends goes to
//! everyone else, prefixed by its nickname; a few commands:
//!
//! - `/nick NAME`: take a nickname (one no one else has; letters, digits, `_` and `-`);
//! - `/who`: the nicknames in the room, one line, sorted;
//! - `/quit`: leave.
//!
//! Arrivals, departures and renames are announced to the others as `* ...` lines.
//!
//! ```text
//! cargo run --example chat -- 127.0.0.1:7002
//! nc 127.0.0.1 7002          # in two terminals or more
//! ```

mod lines;

use lines::Lines;
use muxd::{ClientId, ClientInfo, CloseReason, Config, Context, ListenAddr, Server};
use muxd::{ServerContext, Service};

/// The room: nicknames live in each client's state, so the room itself keeps nothing.
pub struct Chat;

type Ctx<'a> = Context<'a, Lines, Chat>;

impl Chat {
    /// Sends `line` to every client but `except`.
    fn broadcast(ctx: &mut ServerContext<'_, Lines, Chat>, except: ClientId, line: &str) {
        let everyone: Vec<ClientId> = ctx.clients().iter().map(|c| c.info.id()).collect();
        for id in everyone.into_iter().filter(|&id| id != except) {
            // A client too slow to read gets nothing more until it catches up.
            ctx.send_to(id, line.as_bytes());
        }
    }

    fn nick(ctx: &mut Ctx<'_>, wanted: &str) {
        let valid = !wanted.is_empty()
            && wanted.len() <= 32
            && wanted
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b));
        let taken = ctx.clients().iter().any(|c| *c.state == wanted);
        if !valid || taken {
            let why = if valid {
                "is taken"
            } else {
                "is not a valid nickname"
            };
            return ctx.reply(format!("* {wanted} {why}").as_bytes());
        }
        let old = std::mem::replace(ctx.state(), wanted.to_owned());
        ctx.reply(format!("* you are now {wanted}").as_bytes());
        let id = ctx.id();
        Chat::broadcast(ctx, id, &format!("* {old} is now {wanted}"));
    }
}

impl Service<Lines> for Chat {
    /// The client's nickname.
    type ClientState = String;

    fn on_connect(&mut self, ctx: &mut Ctx<'_>) {
        let id = ctx.id();
        *ctx.state() = format!("guest{id}");
        let hello = format!("* welcome, guest{id}: /nick NAME, /who, /quit");
        ctx.reply(hello.as_bytes());
        Chat::broadcast(ctx, id, &format!("* guest{id} joined"));
    }

    fn on_request(&mut self, line: &[u8], ctx: &mut Ctx<'_>) {
        let line = String::from_utf8_lossy(line);
        match line.split_once(' ').unwrap_or((&line, "")) {
            ("/nick", name) => Chat::nick(ctx, name.trim()),
            ("/who", _) => {
                let mut nicks: Vec<&str> = ctx.clients().iter().map(|c| c.state.as_str()).collect();
                nicks.sort_unstable();
                let who = format!("* in the room: {}", nicks.join(" "));
                ctx.reply(who.as_bytes());
            }
            ("/quit", _) => {
                ctx.reply(b"* bye");
                ctx.close_after_reply();
            }
            (command, _) if command.starts_with('/') => {
                ctx.reply(format!("* unknown command {command}").as_bytes());
            }
            _ => {
                let said = format!("<{}> {line}", ctx.state());
                let id = ctx.id();
                Chat::broadcast(ctx, id, &said);
            }
        }
    }

    fn on_disconnect(
        &mut self,
        info: &ClientInfo,
        nick: String,
        _: CloseReason,
        ctx: &mut ServerContext<'_, Lines, Self>,
    ) {
        Chat::broadcast(ctx, info.id(), &format!("* {nick} left"));
    }
}

/// The server, bound to what `config` says (`main` below, and the tests, use this).
pub fn server(config: Config) -> Result<Server<Lines, Chat>, muxd::Error> {
    Server::bind(config, Lines, Chat)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:7002".into());
    let mut config = Config::default();
    config.listen.push(ListenAddr::tcp(&addr)?);
    config.stop_on_signals = true;
    let server = server(config)?;
    println!("chat room on {}", server.local_addrs()[0]);
    server.run()?;
    Ok(())
}
