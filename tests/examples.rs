//! Every example in `examples/` does what its doc says: each is compiled in here as a
//! module and its own `server` function is run in a thread, on port 0.

// Each line example is a program of its own with its own copy of `examples/lines/`;
// compiled together here, that module is loaded once per example.
#![allow(clippy::duplicate_mod)]

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use muxd::{Config, ListenAddr, Server, Service};
use util::lines::LineClient;
use util::{Client, Reply, TIMEOUT, require_tool};

#[path = "../examples/binary.rs"]
#[allow(dead_code)]
mod binary;
#[path = "../examples/chat.rs"]
#[allow(dead_code)]
mod chat;
#[path = "../examples/kv.rs"]
#[allow(dead_code)]
mod kv;
#[path = "../examples/line_echo.rs"]
#[allow(dead_code)]
mod line_echo;
#[path = "../examples/ticker.rs"]
#[allow(dead_code)]
mod ticker;

/// A config listening on `127.0.0.1:0`.
fn config() -> Config {
    let mut config = Config::default();
    config.listen.push(ListenAddr::tcp("127.0.0.1:0").unwrap());
    config
}

/// Runs `server` in a thread; returns its TCP address and a way to stop it.
fn run<C, S>(server: Server<C, S>) -> (SocketAddr, impl FnOnce() -> S)
where
    C: muxd::Codec + Send + 'static,
    S: Service<C> + Send + 'static,
{
    let addr = match &server.local_addrs()[0] {
        ListenAddr::Tcp(a) => *a,
        other => panic!("{other}"),
    };
    let handle = server.handle();
    let thread = std::thread::spawn(move || server.run().unwrap());
    (addr, move || {
        handle.stop().unwrap();
        thread.join().unwrap()
    })
}

#[test]
fn line_echo_echoes_lines_and_refuses_one_too_long() {
    let (addr, stop) = run(line_echo::server(config()).unwrap());
    let mut a = LineClient::tcp(addr);
    let mut b = LineClient::tcp(addr);
    a.writer.write_all(b"hello\r\nworld\n").unwrap();
    assert_eq!([a.line(), a.line()], ["hello", "world"]);
    let long = "x".repeat(5000);
    assert_eq!(b.ask(&long), "ERROR line too long");
    assert!(b.closed());
    assert_eq!(a.ask("still here"), "still here");
    stop();
}

#[test]
fn chat_broadcasts_with_nicknames_who_and_departures() {
    let (addr, stop) = run(chat::server(config()).unwrap());
    let mut alice = LineClient::tcp(addr);
    assert!(alice.line().starts_with("* welcome, guest"));
    let mut bob = LineClient::tcp(addr);
    assert!(bob.line().starts_with("* welcome, guest"));
    assert!(alice.line().ends_with(" joined"));
    assert_eq!(alice.ask("/nick alice"), "* you are now alice");
    assert!(bob.line().ends_with(" is now alice"));
    assert_eq!(bob.ask("/nick alice"), "* alice is taken");
    assert_eq!(bob.ask("/nick b@d"), "* b@d is not a valid nickname");
    assert_eq!(bob.ask("/nick bob"), "* you are now bob");
    assert!(alice.line().ends_with(" is now bob"));
    assert_eq!(bob.ask("/who"), "* in the room: alice bob");
    // A line goes to everyone else, not back to its sender.
    alice.send("hi bob");
    assert_eq!(bob.line(), "<alice> hi bob");
    assert_eq!(alice.ask("/dance"), "* unknown command /dance");
    assert_eq!(bob.ask("/quit"), "* bye");
    assert!(bob.closed());
    assert_eq!(alice.line(), "* bob left");
    assert_eq!(alice.ask("/who"), "* in the room: alice");
    stop();
}

#[test]
fn kv_gets_sets_deletes_and_increments_as_redis_does() {
    let (addr, stop) = run(kv::server(config()).unwrap());
    let mut c = Client::tcp(addr);
    assert_eq!(c.cmd(&["GET", "k"]), Reply::Nil);
    assert_eq!(c.cmd(&["SET", "k", "v"]), Reply::simple("OK"));
    assert_eq!(c.cmd(&["GET", "k"]), Reply::bulk("v"));
    assert_eq!(c.cmd(&["SET", "k", "longer value"]), Reply::simple("OK"));
    assert_eq!(c.cmd(&["get", "k"]), Reply::bulk("longer value"));
    assert_eq!(c.cmd(&["INCR", "n"]), Reply::Int(1));
    assert_eq!(c.cmd(&["INCR", "n"]), Reply::Int(2));
    assert_eq!(
        c.cmd(&["INCR", "k"]),
        Reply::Error("ERR value is not an integer or out of range".into())
    );
    c.cmd(&["SET", "max", &i64::MAX.to_string()]);
    assert_eq!(
        c.cmd(&["INCR", "max"]),
        Reply::Error("ERR increment or decrement would overflow".into())
    );
    assert_eq!(c.cmd(&["DEL", "k", "n", "missing"]), Reply::Int(2));
    assert_eq!(c.cmd(&["GET", "n"]), Reply::Nil);
    assert_eq!(
        c.cmd(&["GET"]),
        Reply::Error("ERR wrong number of arguments for 'get' command".into())
    );
    assert_eq!(
        c.cmd(&["NOPE", "a"]),
        Reply::Error("ERR unknown command 'NOPE', with args beginning with: 'a' ".into())
    );
    assert_eq!(c.cmd(&["PING"]), Reply::simple("PONG"));
    let source = include_str!("../examples/kv.rs");
    assert!(
        source.lines().count() < 150,
        "kv.rs is to stay under 150 lines"
    );
    stop();
}

#[test]
fn kv_is_driven_by_redis_benchmark_without_an_error() {
    if !require_tool("redis-benchmark") {
        return;
    }
    let (addr, stop) = run(kv::server(config()).unwrap());
    let port = addr.port().to_string();
    let output = std::process::Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port, "-t", "set,get,incr"])
        .args(["-n", "20000", "-c", "20", "-P", "4", "-r", "1000", "--csv"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for test in ["SET", "GET", "INCR"] {
        assert!(
            stdout.contains(&format!("\"{test}\"")),
            "{test} missing:\n{stdout}"
        );
    }
    assert!(
        !stderr.to_lowercase().contains("error") && !stderr.contains("WARNING"),
        "{stderr}"
    );
    let kv = stop();
    drop(kv);
}

#[test]
fn ticker_pushes_ticks_from_its_timer_and_news_from_its_thread() {
    let ticker = ticker::Ticker::new(Duration::from_millis(20), Duration::from_millis(15));
    let (addr, stop) = run(ticker::server(config(), ticker).unwrap());
    let mut quiet = LineClient::tcp(addr);
    let mut sub = LineClient::tcp(addr);
    assert_eq!(sub.ask("SUBSCRIBE"), "subscribed");
    let (mut ticks, mut news) = (0, 0);
    while ticks < 3 || news < 3 {
        let line = sub.line();
        match line.split(' ').collect::<Vec<_>>()[..] {
            ["tick", n, secs] => {
                ticks += 1;
                assert!(n.parse::<u64>().unwrap() >= 1);
                assert!(secs.parse::<u64>().unwrap() > 1_600_000_000);
            }
            ["news", n] => {
                news += 1;
                assert!(n.parse::<u64>().unwrap() >= 1);
            }
            _ => panic!("unexpected {line:?}"),
        }
    }
    // Someone not subscribed gets nothing but its answers.
    assert!(quiet.ask("STATS").starts_with("ticks="));
    // Unsubscribed: once the answer is in, nothing more is pushed, while the timer
    // and the thread go on (the answers to STATS show them counting).
    sub.send("UNSUBSCRIBE");
    while sub.line() != "unsubscribed" {}
    let counts = |c: &mut LineClient| -> (u64, u64) {
        let line = c.ask("STATS");
        let fields: Vec<u64> = line
            .split(' ')
            .map(|kv| kv.split_once('=').unwrap().1.parse().unwrap())
            .collect();
        (fields[0], fields[1])
    };
    let start = counts(&mut sub);
    loop {
        let now = counts(&mut sub);
        if now.0 >= start.0 + 3 && now.1 >= start.1 + 3 {
            break;
        }
    }
    assert!(quiet.ask("STATS").ends_with("subscribers=0"));
    stop();
}

/// Sends one frame and reads one back: (status, body).
fn frame(stream: &mut TcpStream, payload: &[u8]) -> (u8, Vec<u8>) {
    let mut request = (payload.len() as u32).to_be_bytes().to_vec();
    request.extend_from_slice(payload);
    stream.write_all(&request).unwrap();
    read_frame(stream)
}

fn read_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
    stream.read_exact(&mut body).unwrap();
    (body[0], body[1..].to_vec())
}

#[test]
fn binary_frames_echo_sum_refuse_and_close_on_an_oversized_frame() {
    let (addr, stop) = run(binary::server(config()).unwrap());
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    assert_eq!(frame(&mut s, b"\x01hi"), (binary::OK, b"hi".to_vec()));
    let mut sum = vec![0x02];
    for n in [1u32, 2, u32::MAX] {
        sum.extend_from_slice(&n.to_be_bytes());
    }
    let expected = (3 + u64::from(u32::MAX)).to_be_bytes().to_vec();
    assert_eq!(frame(&mut s, &sum), (binary::OK, expected));
    assert_eq!(
        frame(&mut s, b"\x02abc"),
        (binary::REFUSED, b"SUM takes whole u32s".to_vec())
    );
    assert_eq!(
        frame(&mut s, b"\x07"),
        (binary::REFUSED, b"unknown operation 0x07".to_vec())
    );
    assert_eq!(
        frame(&mut s, b""),
        (binary::REFUSED, b"empty frame".to_vec())
    );
    // Pipelined and split anywhere: answered in order.
    let mut two = Vec::new();
    for payload in [&b"\x01one"[..], b"\x01two"] {
        two.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        two.extend_from_slice(payload);
    }
    s.write_all(&two[..5]).unwrap();
    s.write_all(&two[5..]).unwrap();
    assert_eq!(read_frame(&mut s), (binary::OK, b"one".to_vec()));
    assert_eq!(read_frame(&mut s), (binary::OK, b"two".to_vec()));
    // A length over the limit is refused at once, before its bytes are sent.
    s.write_all(&(2u32 * 1024 * 1024).to_be_bytes()).unwrap();
    let (status, body) = read_frame(&mut s);
    assert_eq!(status, binary::PROTOCOL_ERROR);
    assert_eq!(body, b"frame of 2097152 bytes is over 1048576");
    let mut rest = Vec::new();
    assert_eq!(s.read_to_end(&mut rest).unwrap(), 0, "then closed");
    stop();
}
