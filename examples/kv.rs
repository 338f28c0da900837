//! A key-value store speaking RESP, the Redis protocol: `GET`, `SET`, `DEL`, `INCR` (and
//! `PING`), with Redis's replies and error texts, so `redis-cli` and
//! `redis-benchmark -t set,get,incr` drive it unchanged. The codec is the library's
//! `RespCodec`; the store is one `HashMap` the loop thread owns (no lock: one thread).
//!
//! ```text
//! cargo run --release --example kv -- 127.0.0.1:7003
//! redis-cli -p 7003 SET greeting hello          # OK
//! redis-cli -p 7003 INCR visits                 # (integer) 1
//! redis-benchmark -p 7003 -t set,get,incr -q
//! ```

use std::collections::HashMap;

use muxd::resp::{Args, Reply, RespCodec, parse_int};
use muxd::{Config, Context, ListenAddr, Server, Service};

/// The store: keys and values are bytes.
#[derive(Default)]
pub struct Kv {
    data: HashMap<Vec<u8>, Vec<u8>>,
}

type Ctx<'a> = Context<'a, RespCodec, Kv>;

const NOT_AN_INTEGER: Reply<'_> = Reply::Error("ERR value is not an integer or out of range");

impl Kv {
    fn get(&mut self, key: &[u8], ctx: &mut Ctx<'_>) {
        match self.data.get(key) {
            Some(value) => ctx.reply(&Reply::Bulk(value)),
            None => ctx.reply(&Reply::Null),
        }
    }

    fn set(&mut self, key: &[u8], value: &[u8], ctx: &mut Ctx<'_>) {
        // Reuse the value's buffer when the key exists: steady SETs allocate nothing.
        match self.data.get_mut(key) {
            Some(old) => {
                old.clear();
                old.extend_from_slice(value);
            }
            None => {
                self.data.insert(key.to_vec(), value.to_vec());
            }
        }
        ctx.reply(&Reply::OK);
    }

    fn del<'a>(&mut self, keys: impl Iterator<Item = &'a [u8]>, ctx: &mut Ctx<'_>) {
        let removed = keys.filter(|key| self.data.remove(*key).is_some()).count();
        ctx.reply(&Reply::Integer(removed as i64));
    }

    fn incr(&mut self, key: &[u8], ctx: &mut Ctx<'_>) {
        // A missing key counts as 0; a value must be an integer as Redis reads them.
        let current = match self.data.get(key) {
            Some(value) => match parse_int(value) {
                Some(n) => n,
                None => return ctx.reply(&NOT_AN_INTEGER),
            },
            None => 0,
        };
        let Some(next) = current.checked_add(1) else {
            return ctx.reply(&Reply::Error("ERR increment or decrement would overflow"));
        };
        self.data
            .insert(key.to_vec(), next.to_string().into_bytes());
        ctx.reply(&Reply::Integer(next));
    }
}

impl Service<RespCodec> for Kv {
    type ClientState = ();

    fn on_request(&mut self, request: Args<'_>, ctx: &mut Ctx<'_>) {
        let name = request.command().to_ascii_lowercase();
        let arg = |i| request.get(i).unwrap_or_default();
        match (name.as_slice(), request.len()) {
            (b"get", 2) => self.get(arg(1), ctx),
            (b"set", 3) => self.set(arg(1), arg(2), ctx),
            (b"del", n) if n >= 2 => self.del(request.iter().skip(1), ctx),
            (b"incr", 2) => self.incr(arg(1), ctx),
            (b"ping", 1) => ctx.reply(&Reply::PONG),
            // redis-benchmark asks for two settings when it starts: none are set here.
            (b"config", 3) if arg(1).eq_ignore_ascii_case(b"get") => {
                ctx.reply(&Reply::Array(&[Reply::Bulk(arg(2)), Reply::Bulk(b"")]))
            }
            (b"get" | b"set" | b"del" | b"incr" | b"ping" | b"config", _) => {
                let name = String::from_utf8_lossy(&name);
                let error = format!("ERR wrong number of arguments for '{name}' command");
                ctx.reply(&Reply::Error(&error));
            }
            _ => {
                let name = String::from_utf8_lossy(request.command());
                let mut error = format!("ERR unknown command '{name}', with args beginning with: ");
                for arg in request.iter().skip(1) {
                    error.push_str(&format!("'{}' ", String::from_utf8_lossy(arg)));
                }
                ctx.reply(&Reply::Error(&error));
            }
        }
    }
}

/// The server, bound to what `config` says (`main` below, and the tests, use this).
pub fn server(config: Config) -> Result<Server<RespCodec, Kv>, muxd::Error> {
    Server::bind(config, RespCodec::default(), Kv::default())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:7003".into());
    let mut config = Config::default();
    config.listen.push(ListenAddr::tcp(&addr)?);
    config.stop_on_signals = true;
    let server = server(config)?;
    println!("key-value store on {}", server.local_addrs()[0]);
    server.run()?;
    Ok(())
}
