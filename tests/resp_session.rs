//! The RESP codec's session, as an embedder sees it: a service of the test's own, knowing
//! nothing of the daemon's commands, replies a map and switches a client to RESP3; the
//! encoding follows the client's version without the service branching on it, and the
//! default session never holds anyone to the unauthenticated limits.

mod util;

use muxd::resp::{Args, Protocol, Reply, RespCodec, RespSession, Value, encode_request};
use muxd::{Config, Context, ListenAddr, Server, Service};
use util::Client;

/// `V3` switches this client to RESP3, `LOCK` makes it unauthenticated; anything else is
/// answered with a map of its argument count and its first argument's length.
struct Mapper;

impl Service<RespCodec> for Mapper {
    type ClientState = ();

    fn on_request(&mut self, request: Args<'_>, ctx: &mut Context<'_, RespCodec, Self>) {
        match request.command() {
            b"V3" => {
                ctx.set_session(RespSession {
                    protocol: Protocol::Resp3,
                    ..ctx.session()
                });
                ctx.reply(&Reply::OK);
            }
            b"LOCK" => {
                ctx.set_session(RespSession {
                    auth_required: true,
                    ..ctx.session()
                });
                ctx.reply(&Reply::OK);
            }
            _ => {
                let last = request.get(request.len() - 1).unwrap_or_default().len() as i64;
                ctx.reply(&Reply::Map(&[
                    (Reply::Bulk(b"args"), Reply::Integer(request.len() as i64)),
                    (Reply::Bulk(b"last"), Reply::Integer(last)),
                ]));
                ctx.reply(&Reply::Null);
            }
        }
    }
}

struct Running {
    addr: std::net::SocketAddr,
    handle: muxd::ServerHandle<RespCodec, Mapper>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.handle.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn start() -> Running {
    let mut config = Config::default();
    config.listen.push(ListenAddr::tcp("127.0.0.1:0").unwrap());
    let server = Server::bind(config, RespCodec::default(), Mapper).unwrap();
    let addr = match &server.local_addrs()[0] {
        ListenAddr::Tcp(addr) => *addr,
        other => panic!("{other}"),
    };
    let handle = server.handle();
    let thread = std::thread::spawn(move || {
        server.run().unwrap();
    });
    Running {
        addr,
        handle,
        thread: Some(thread),
    }
}

fn request(words: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_request(words, &mut out);
    out
}

#[test]
fn replies_follow_the_clients_protocol_version() {
    let server = start();
    let mut c = Client::tcp(server.addr);
    c.send(&request(&[b"ASK", b"abc"]));
    assert_eq!(
        c.try_read_value().unwrap(),
        Value::Array(vec![
            Value::Bulk(b"args".to_vec()),
            Value::Integer(2),
            Value::Bulk(b"last".to_vec()),
            Value::Integer(3),
        ])
    );
    assert_eq!(c.try_read_value().unwrap(), Value::Null);

    c.send(&request(&[b"V3"]));
    assert_eq!(c.try_read_value().unwrap(), Value::Simple(b"OK".to_vec()));
    c.send(&request(&[b"ASK"]));
    assert_eq!(
        c.try_read_value().unwrap(),
        Value::Map(vec![
            (Value::Bulk(b"args".to_vec()), Value::Integer(1)),
            (Value::Bulk(b"last".to_vec()), Value::Integer(3)),
        ])
    );
    assert_eq!(c.try_read_value().unwrap(), Value::Resp3Null);

    // Another client still speaks RESP2.
    let mut other = Client::tcp(server.addr);
    other.send(&request(&[b"ASK"]));
    assert!(matches!(other.try_read_value().unwrap(), Value::Array(_)));
}

#[test]
fn the_default_session_never_applies_the_unauthenticated_limits() {
    let server = start();
    let mut c = Client::tcp(server.addr);
    let many: Vec<&[u8]> = std::iter::repeat_n(&b"x"[..], 50).collect();
    c.send(&request(&many));
    assert!(matches!(c.try_read_value().unwrap(), Value::Array(_)));
    assert_eq!(c.try_read_value().unwrap(), Value::Null);
    let big = vec![b'y'; 100_000];
    c.send(&request(&[b"ASK", &big]));
    assert!(matches!(c.try_read_value().unwrap(), Value::Array(_)));
    assert_eq!(c.try_read_value().unwrap(), Value::Null);

    // A service that asks for them gets them, with Redis's error, and the client closes.
    c.send(&request(&[b"LOCK"]));
    assert_eq!(c.try_read_value().unwrap(), Value::Simple(b"OK".to_vec()));
    c.send(&request(&many));
    assert_eq!(
        c.try_read_value().unwrap(),
        Value::Error(b"ERR Protocol error: unauthenticated multibulk length".to_vec())
    );
    c.expect_closed();
}
