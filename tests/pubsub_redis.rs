//! Pub/sub against the reference: the same scripted steps sent to `muxd` and to a real
//! `redis-server` give byte-identical reply streams at every client, and a table of glob
//! patterns (and a few hundred generated ones) match the same channels on both.
//!
//! After each step every client sends `PING <marker>` (allowed in the subscribed mode)
//! and what it received before the marker's reply is that step's stream: published
//! messages reach a subscriber before the replies to what it sends after the publish.
//! Where Redis's order comes from its hash tables (unsubscribing from all of several
//! channels, `PUBSUB CHANNELS`, one client matching several patterns) a step compares the
//! replies as a multiset.

mod util;

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::net::TcpStream;

use muxd::resp::{Framer, Value, encode_request};
use util::redis_server::RedisServer;
use util::{Muxd, TIMEOUT, require_tool};

/// One raw connection that splits what it receives into whole replies.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    framer: Framer,
    open: bool,
}

impl Conn {
    fn connect(addr: std::net::SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Conn {
            stream,
            buf: Vec::new(),
            framer: Framer::new(),
            open: true,
        }
    }

    fn send(&mut self, words: &[&[u8]]) {
        let mut out = Vec::new();
        encode_request(words, &mut out);
        self.stream.write_all(&out).expect("write");
    }

    /// The next whole reply, raw; `None` at end of stream.
    fn frame(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(len) = self.framer.advance(&self.buf).expect("a well-formed reply") {
                return Some(self.buf.drain(..len).collect());
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("reading: {e}"),
            }
        }
    }

    /// Everything up to the reply to `PING marker`.
    fn until_marker(&mut self, marker: &[u8]) -> Vec<Vec<u8>> {
        self.send(&[b"PING", marker]);
        let mut frames = Vec::new();
        loop {
            let frame = self.frame().expect("the marker's reply");
            if frame.ends_with(&[marker, b"\r\n"].concat()) {
                return frames;
            }
            frames.push(frame);
        }
    }
}

/// How a step's replies are compared.
#[derive(Clone, Copy, PartialEq)]
enum Order {
    Exact,
    /// As a multiset: Redis's order comes from a hash table.
    Any,
    /// One array whose elements come in a hash table's order (`PUBSUB CHANNELS`).
    Set,
}

/// Client index, command, comparison.
type Step = (usize, &'static [&'static str], Order);

/// Runs `steps` with `clients` connections to `addr`: per step, per client, the replies.
fn run(
    addr: std::net::SocketAddr,
    clients: usize,
    hello: &[&str],
    steps: &[Step],
) -> Vec<Vec<Vec<Vec<u8>>>> {
    let mut conns: Vec<Conn> = (0..clients).map(|_| Conn::connect(addr)).collect();
    if !hello.is_empty() {
        let words: Vec<&[u8]> = hello.iter().map(|w| w.as_bytes()).collect();
        for c in &mut conns {
            c.send(&words);
            c.frame().expect("HELLO's reply");
        }
    }
    let mut out = Vec::new();
    for (n, &(who, words, order)) in steps.iter().enumerate() {
        let words: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        conns[who].send(&words);
        if words[0].eq_ignore_ascii_case(b"QUIT") {
            assert_eq!(conns[who].frame().as_deref(), Some(&b"+OK\r\n"[..]));
            assert_eq!(conns[who].frame(), None, "closed after QUIT");
            conns[who].open = false;
        }
        let mut per_client = Vec::new();
        for (i, conn) in conns.iter_mut().enumerate() {
            if !conn.open {
                per_client.push(Vec::new());
                continue;
            }
            let marker = format!("barrier-{n}-{i}");
            let mut frames = conn.until_marker(marker.as_bytes());
            match order {
                Order::Exact => {}
                Order::Any => frames.sort(),
                Order::Set => frames = frames.iter().map(|f| sorted_elements(f)).collect(),
            }
            per_client.push(frames);
        }
        out.push(per_client);
    }
    out
}

/// An array reply with its elements sorted, re-encoded.
fn sorted_elements(frame: &[u8]) -> Vec<u8> {
    let Ok(Some((Value::Array(mut items), _))) = Value::parse(frame) else {
        return frame.to_vec();
    };
    let mut encoded: Vec<Vec<u8>> = items
        .drain(..)
        .map(|v| match v {
            Value::Bulk(b) => b,
            other => format!("{other:?}").into_bytes(),
        })
        .collect();
    encoded.sort();
    let mut out = format!("*{}\r\n", encoded.len()).into_bytes();
    for e in encoded {
        out.extend_from_slice(format!("${}\r\n", e.len()).as_bytes());
        out.extend_from_slice(&e);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Runs `steps` on both servers and requires the same streams.
#[track_caller]
fn same_on_both(clients: usize, hello: &[&str], steps: &[Step]) {
    if !require_tool("redis-server") {
        return;
    }
    let redis = RedisServer::start(&[]);
    let muxd = Muxd::start(&[]);
    let expected = run(redis.tcp_addr(), clients, hello, steps);
    let got = run(muxd.tcp_addr(), clients, hello, steps);
    for (n, (e, g)) in expected.iter().zip(&got).enumerate() {
        for (i, (e, g)) in e.iter().zip(g).enumerate() {
            let show = |frames: &Vec<Vec<u8>>| {
                frames
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                show(g),
                show(e),
                "step {n} {:?}, client {i}: muxd (left) differs from Redis (right)",
                steps[n].1
            );
        }
    }
}

const A: usize = 0;
const B: usize = 1;
const P: usize = 2;
use Order::{Any, Exact, Set};

/// Subscribing, publishing, patterns, counts and confirmations, unsubscribing.
const CHANNELS_AND_PATTERNS: &[Step] = &[
    (A, &["SUBSCRIBE", "news", "weather", "news"], Exact),
    (B, &["PSUBSCRIBE", "n*", "w?ather", "[nw]*"], Exact),
    (P, &["PUBLISH", "news", "hello"], Any),
    (P, &["PUBLISH", "weather", "sunny"], Any),
    (P, &["PUBLISH", "nobody", "listens"], Any),
    (P, &["PUBLISH", "", "empty channel"], Exact),
    (P, &["PUBSUB", "NUMSUB", "news", "nope", "weather"], Exact),
    (P, &["PUBSUB", "NUMSUB"], Exact),
    (P, &["PUBSUB", "NUMPAT"], Exact),
    (P, &["PUBSUB", "CHANNELS"], Set),
    (P, &["PUBSUB", "CHANNELS", "n*"], Exact),
    (P, &["PUBSUB", "channels", "*", "extra"], Exact),
    (P, &["PUBSUB", "NUMPAT", "extra"], Exact),
    (P, &["PUBSUB", "NOPE"], Exact),
    (P, &["PUBSUB", "HELP"], Exact),
    (A, &["UNSUBSCRIBE", "news", "not-subscribed"], Exact),
    (A, &["UNSUBSCRIBE"], Exact),
    (A, &["UNSUBSCRIBE"], Exact),
    (A, &["PUNSUBSCRIBE"], Exact),
    (B, &["PUNSUBSCRIBE", "n*"], Exact),
    (P, &["PUBLISH", "news", "after"], Any),
    // With several left, Redis drops them in its hash table's order (and the counts
    // follow it): leave one.
    (B, &["PUNSUBSCRIBE", "w?ather"], Exact),
    (B, &["PUNSUBSCRIBE"], Exact),
    (B, &["PUNSUBSCRIBE"], Exact),
    (P, &["PUBSUB", "NUMPAT"], Exact),
    (P, &["PUBLISH", "news", "nobody"], Exact),
    // Subscribed by channel and by pattern: two messages, counted twice.
    (A, &["SUBSCRIBE", "both"], Exact),
    (A, &["PSUBSCRIBE", "bo*"], Exact),
    (P, &["PUBLISH", "both", "twice"], Exact),
    (A, &["QUIT"], Exact),
    (P, &["PUBLISH", "both", "gone"], Exact),
    (P, &["PUBSUB", "NUMSUB", "both"], Exact),
];

/// Shard channels: their own namespace, no patterns.
const SHARD_CHANNELS: &[Step] = &[
    (A, &["SSUBSCRIBE", "orders", "orders", "stock"], Exact),
    (B, &["SUBSCRIBE", "orders"], Exact),
    (B, &["PSUBSCRIBE", "*"], Exact),
    (P, &["SPUBLISH", "orders", "o1"], Exact),
    (P, &["PUBLISH", "orders", "o2"], Any),
    (P, &["PUBSUB", "SHARDNUMSUB", "orders", "stock", "x"], Exact),
    (P, &["PUBSUB", "SHARDCHANNELS", "o*"], Exact),
    (P, &["PUBSUB", "SHARDCHANNELS"], Set),
    (P, &["PUBSUB", "NUMSUB", "orders"], Exact),
    (A, &["SUNSUBSCRIBE", "orders"], Exact),
    (A, &["SUNSUBSCRIBE"], Exact),
    (A, &["SUNSUBSCRIBE"], Exact),
    (A, &["SUBSCRIBE", "x"], Exact),
    (A, &["SSUBSCRIBE", "y"], Exact),
    (A, &["UNSUBSCRIBE"], Exact),
    (A, &["CLIENT", "GETNAME"], Exact),
    (A, &["SUNSUBSCRIBE"], Exact),
    (A, &["ECHO", "out of subscribed mode"], Exact),
];

/// RESP2's subscribed mode: what may run, and Redis's error for the rest.
const SUBSCRIBED_MODE: &[Step] = &[
    (A, &["ECHO", "before"], Exact),
    (A, &["SUBSCRIBE", "c"], Exact),
    (A, &["ECHO", "refused"], Exact),
    (A, &["CLIENT", "LIST"], Exact),
    (A, &["CLIENT", "NOPE"], Exact),
    (A, &["CLIENT", "SETNAME"], Exact),
    (A, &["CONFIG", "GET", "maxclients"], Exact),
    (A, &["PUBSUB", "NUMPAT"], Exact),
    (A, &["PUBLISH", "c", "m"], Exact),
    (A, &["NOSUCHCOMMAND"], Exact),
    (A, &["ECHO"], Exact),
    (A, &["PING"], Exact),
    (A, &["PING", "hello"], Exact),
    (A, &["PING", "a", "b"], Exact),
    (A, &["PSUBSCRIBE", "p*"], Exact),
    (A, &["UNSUBSCRIBE"], Exact),
    (A, &["ECHO", "still refused: a pattern is left"], Exact),
    (A, &["PUNSUBSCRIBE"], Exact),
    (A, &["PING"], Exact),
    (A, &["ECHO", "after"], Exact),
    (A, &["SUBSCRIBE"], Exact),
    (A, &["PSUBSCRIBE"], Exact),
    (A, &["PUBLISH", "c"], Exact),
];

/// RESP3: every command may run while subscribed; `PING` is itself; confirmations and
/// messages are pushes. (A client publishing to a channel it listens to is left out:
/// Redis 7.0 sends it the message before the reply, 7.2 after it, as muxd does, so that
/// a push never lands inside a reply; `tests/pubsub.rs` checks muxd's order.)
const RESP3_SUBSCRIBED: &[Step] = &[
    (A, &["SUBSCRIBE", "c"], Exact),
    (A, &["ECHO", "allowed"], Exact),
    (A, &["PING"], Exact),
    (A, &["PING", "hello"], Exact),
    (A, &["CLIENT", "NOPE"], Exact),
    (A, &["PSUBSCRIBE", "c*"], Exact),
    (P, &["PUBLISH", "c", "both ways"], Any),
    (A, &["PUBSUB", "NUMSUB", "c"], Exact),
    (A, &["UNSUBSCRIBE"], Exact),
    (A, &["PUNSUBSCRIBE"], Exact),
    (A, &["UNSUBSCRIBE"], Exact),
    (B, &["SSUBSCRIBE", "s"], Exact),
    (P, &["SPUBLISH", "s", "shard"], Exact),
    (B, &["SUNSUBSCRIBE"], Exact),
];

#[test]
fn channels_and_patterns_as_redis() {
    same_on_both(3, &[], CHANNELS_AND_PATTERNS);
}

#[test]
fn channels_and_patterns_as_redis_resp3() {
    same_on_both(3, &["HELLO", "3"], CHANNELS_AND_PATTERNS);
}

#[test]
fn shard_channels_as_redis() {
    same_on_both(3, &[], SHARD_CHANNELS);
}

#[test]
fn shard_channels_as_redis_resp3() {
    same_on_both(3, &["HELLO", "3"], SHARD_CHANNELS);
}

#[test]
fn subscribed_mode_as_redis() {
    same_on_both(3, &[], SUBSCRIBED_MODE);
}

#[test]
fn resp3_has_no_subscribed_mode_as_redis() {
    same_on_both(3, &["HELLO", "3"], RESP3_SUBSCRIBED);
}

/// `RESET` unsubscribes from everything, silently, and goes back to RESP2.
const RESET: &[Step] = &[
    (A, &["SUBSCRIBE", "a", "b"], Exact),
    (A, &["PSUBSCRIBE", "p*"], Exact),
    (A, &["SSUBSCRIBE", "s"], Exact),
    (A, &["RESET"], Exact),
    (P, &["PUBSUB", "NUMSUB", "a", "b"], Exact),
    (P, &["PUBSUB", "NUMPAT"], Exact),
    (P, &["PUBSUB", "SHARDNUMSUB", "s"], Exact),
    (P, &["PUBLISH", "a", "nobody"], Exact),
    (A, &["ECHO", "not subscribed any more"], Exact),
    (A, &["UNSUBSCRIBE"], Exact),
];

#[test]
fn reset_unsubscribes_as_redis() {
    same_on_both(3, &[], RESET);
    same_on_both(3, &["HELLO", "3"], RESET);
}

/// Patterns and channels whose matching Redis's `stringmatchlen` decides in its corners.
const GLOB_PATTERNS: &[&str] = &[
    "*",
    "**",
    "?",
    "??",
    "h?llo",
    "h*llo",
    "h[ae]llo",
    "h[^e]llo",
    "h[a-b]llo",
    "h[b-a]llo",
    "[]",
    "[]a]",
    "[^]",
    "[",
    "[^",
    "[a",
    "[a-]x",
    "\\*",
    "\\",
    "a\\",
    "[\\]]",
    "[\\",
    "HELLO",
    "*a*a*a*a*a*a*a*a*b",
    "a*",
    "*a",
    "a*b*",
    "[a-z]*",
    "[z-a]*",
    "[!a]",
    "*[0-9]",
    "news.*",
    "news.[!a]*",
    "[\u{7f}-\u{7f}]",
];

const GLOB_CHANNELS: &[&str] = &[
    "",
    "a",
    "b",
    "h",
    "hello",
    "hallo",
    "hbllo",
    "hxllo",
    "heeeello",
    "HELLO",
    "]",
    "^",
    "x",
    "*",
    "\\",
    "a\\",
    "ab",
    "aab",
    "ba",
    "news.art",
    "news.a",
    "a1",
    "!",
    "-",
    "aaaaaaaaaaab",
    "aaaaaaaaa",
    "\u{7f}",
];

/// The channels `patterns` match on a server, through `PUBSUB CHANNELS pattern` over a
/// client subscribed to every one of `channels`.
fn matched(
    addr: std::net::SocketAddr,
    channels: &[Vec<u8>],
    patterns: &[Vec<u8>],
) -> Vec<BTreeSet<Vec<u8>>> {
    let mut subscriber = Conn::connect(addr);
    let mut words: Vec<&[u8]> = vec![b"SUBSCRIBE"];
    words.extend(channels.iter().map(Vec::as_slice));
    subscriber.send(&words);
    for _ in channels {
        subscriber.frame().expect("a confirmation");
    }
    let mut asker = Conn::connect(addr);
    patterns
        .iter()
        .map(|pattern| {
            asker.send(&[b"PUBSUB", b"CHANNELS", pattern]);
            let frame = asker.frame().expect("PUBSUB CHANNELS's reply");
            match Value::parse(&frame) {
                Ok(Some((Value::Array(items), _))) => items
                    .into_iter()
                    .map(|v| match v {
                        Value::Bulk(b) => b,
                        other => panic!("not a channel name: {other:?}"),
                    })
                    .collect(),
                other => panic!("not an array: {other:?}"),
            }
        })
        .collect()
}

/// A small deterministic generator (xorshift), so the generated cases are the same on
/// every run.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, alphabet: &[u8], max: usize) -> Vec<u8> {
        let len = (self.next() % (max as u64 + 1)) as usize;
        (0..len)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize])
            .collect()
    }
}

#[test]
fn glob_patterns_match_as_redis() {
    if !require_tool("redis-server") {
        return;
    }
    let mut channels: Vec<Vec<u8>> = GLOB_CHANNELS
        .iter()
        .map(|c| c.as_bytes().to_vec())
        .collect();
    let mut patterns: Vec<Vec<u8>> = GLOB_PATTERNS
        .iter()
        .map(|p| p.as_bytes().to_vec())
        .collect();
    // Bytes above 0x7f too: Redis compares a class's range ends as signed chars.
    patterns.extend([
        b"[a-\xff]".to_vec(),
        b"[\x80-\xff]".to_vec(),
        b"[\xf0-a]".to_vec(),
    ]);
    channels.extend([b"\xff".to_vec(), b"\x80".to_vec(), b"\xf5".to_vec()]);
    let mut random = Gen(0x9e37_79b9_7f4a_7c15);
    for _ in 0..300 {
        patterns.push(random.bytes(b"ab*?[]^-\\", 8));
    }
    for _ in 0..100 {
        channels.push(random.bytes(b"ab]^-\\*", 6));
    }
    channels.sort();
    channels.dedup();
    let redis = RedisServer::start(&[]);
    let muxd = Muxd::start(&[]);
    let expected = matched(redis.tcp_addr(), &channels, &patterns);
    let got = matched(muxd.tcp_addr(), &channels, &patterns);
    for ((pattern, e), g) in patterns.iter().zip(&expected).zip(&got) {
        assert_eq!(
            g,
            e,
            "pattern {:?}: muxd (left) and Redis (right) match different channels",
            String::from_utf8_lossy(pattern)
        );
    }
}
