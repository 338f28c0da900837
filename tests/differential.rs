//! Differential tests: the same request bytes to a real `redis-server` (7.0.15 from
//! Debian) and to muxd, and the same reply bytes back, wherever both define the behaviour.
//!
//! One table of cases ([`cases`]); each is a list of requests sent in one write, on a
//! fresh connection to each server, with or without a password configured. The replies are
//! compared byte for byte, except the values `HELLO` reports that must differ (`server`,
//! `version`, `id`), which are masked in both before the replies are compared as values (so
//! their kinds, order and every other byte still count). A case whose last request ends the
//! connection (a protocol error, `QUIT`) is read to the end, and both must close.
//!
//! To add a case, add a row. Skipped with a note when `redis-server` is missing, except in
//! CI, where it is a failure (`.ci/run` installs it).

mod util;

use muxd::resp::{Value, encode_request};
use util::redis_server::RedisServer;
use util::{Client, Muxd};

/// The password of the servers that require one.
const PASSWORD: &str = "pw-for-both";

/// One request: a command's words, or raw bytes (malformed ones included).
enum Request {
    Command(Vec<String>),
    Raw(Vec<u8>),
}

impl Request {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Request::Command(words) => {
                let mut out = Vec::new();
                encode_request(words, &mut out);
                out
            }
            Request::Raw(bytes) => bytes.clone(),
        }
    }
}

/// A row of the table.
struct Case {
    name: &'static str,
    /// Both servers require [`PASSWORD`].
    password: bool,
    /// Sent in one write; each gets one reply.
    requests: Vec<Request>,
    /// The last request ends the connection: read to the end, and both must close.
    closes: bool,
}

/// A command's words, split on spaces.
fn cmd(line: &str) -> Request {
    Request::Command(line.split(' ').map(str::to_owned).collect())
}

/// A command with one argument that has spaces or other bytes in it.
fn cmd_with(words: &[&str]) -> Request {
    Request::Command(words.iter().map(|w| (*w).to_owned()).collect())
}

fn raw(bytes: &[u8]) -> Request {
    Request::Raw(bytes.to_vec())
}

fn case(name: &'static str, requests: Vec<Request>) -> Case {
    Case {
        name,
        password: false,
        requests,
        closes: false,
    }
}

impl Case {
    fn with_password(mut self) -> Case {
        self.password = true;
        self
    }
    fn closing(mut self) -> Case {
        self.closes = true;
        self
    }
}

/// The table.
fn cases() -> Vec<Case> {
    let auth = format!("AUTH {PASSWORD}");
    let hello_auth = format!("HELLO 3 AUTH default {PASSWORD}");
    vec![
        // PING, ECHO and errors, in both protocols.
        case(
            "ping and echo, resp2",
            vec![
                cmd("PING"),
                cmd("PING hello"),
                cmd_with(&["ECHO", "a\r\nb\0c"]),
                raw(b"PING\r\n"),
                cmd("SELECT 0"),
            ],
        ),
        case(
            "ping and echo, resp3",
            vec![
                cmd("HELLO 3"),
                cmd("PING"),
                cmd("PING hello"),
                cmd_with(&["ECHO", "a\r\nb\0c"]),
                cmd("ECHO"),
            ],
        ),
        case(
            "errors, resp2 and resp3",
            vec![
                cmd("FOO"),
                cmd("FOO a b"),
                cmd("ECHO"),
                cmd("PING a b"),
                cmd("HELLO 3"),
                cmd("FOO a b"),
                cmd("CLIENT NOSUCH"),
                cmd_with(&["CLIENT", "SETNAME", "a b"]),
            ],
        ),
        case(
            "nulls, resp2 and resp3",
            vec![
                cmd("CLIENT GETNAME"),
                cmd("COMMAND INFO nosuch"),
                cmd("COMMAND DOCS nosuch"),
                cmd("HELLO 3"),
                cmd("CLIENT GETNAME"),
                cmd("COMMAND INFO nosuch"),
                cmd("COMMAND DOCS nosuch"),
            ],
        ),
        case(
            "config get maxclients and requirepass",
            vec![
                cmd("CONFIG GET maxclients"),
                cmd("CONFIG GET requirepass"),
                cmd("CONFIG GET nosuch"),
                cmd("HELLO 3"),
                cmd("CONFIG GET maxclients"),
                cmd("CONFIG GET nosuch"),
            ],
        ),
        // HELLO.
        case(
            "hello reports and switches",
            vec![
                cmd("HELLO"),
                cmd("HELLO 2"),
                cmd("HELLO 3"),
                cmd("HELLO"),
                cmd("hello 2"),
            ],
        ),
        case(
            "hello errors",
            vec![
                cmd("HELLO 4"),
                cmd("HELLO 1"),
                cmd("HELLO -1"),
                cmd("HELLO x"),
                cmd("HELLO 3.0"),
                cmd("HELLO 03"),
                cmd("HELLO 3 FOO"),
                cmd("HELLO 3 AUTH default"),
                cmd("HELLO 3 SETNAME"),
                cmd_with(&["HELLO", "3", "SETNAME", "a b"]),
                cmd("CLIENT GETNAME"),
            ],
        ),
        case(
            "hello options take effect in order",
            vec![
                cmd("HELLO 2 SETNAME first second"),
                cmd("CLIENT GETNAME"),
                cmd("HELLO 3 SETNAME named"),
                cmd("CLIENT GETNAME"),
            ],
        ),
        case(
            "what client libraries send on connect",
            vec![
                cmd("HELLO 3 SETNAME app"),
                cmd("CLIENT MAINT_NOTIFICATIONS ON moving-endpoint-type internal-ip"),
                cmd("SELECT 0"),
                cmd("CLIENT GETNAME"),
                cmd("PING"),
            ],
        ),
        // AUTH and NOAUTH.
        case(
            "auth without a password",
            vec![
                cmd("AUTH x"),
                cmd("AUTH default anything"),
                cmd("AUTH someone anything"),
                cmd("AUTH a b c"),
                cmd("AUTH"),
                cmd("HELLO 3 AUTH default whatever"),
                cmd("HELLO 3 AUTH someone whatever"),
            ],
        ),
        case(
            "noauth in redis's order",
            vec![
                cmd("PING"),
                cmd("PING a b c"),
                cmd("FOO"),
                cmd("ECHO"),
                cmd("CLIENT LIST"),
                cmd("MULTI"),
                cmd("HELLO"),
                cmd("HELLO 3"),
                cmd("HELLO 4"),
                cmd("HELLO x"),
                cmd("AUTH wrong"),
                cmd("AUTH default wrong"),
                cmd("AUTH someone wrong"),
                cmd("AUTH a b c"),
                cmd("HELLO 3 AUTH default wrong"),
                cmd(&hello_auth),
                cmd("PING"),
                cmd("CONFIG GET requirepass"),
            ],
        )
        .with_password(),
        case(
            "auth with a password",
            vec![
                cmd(&auth),
                cmd("PING"),
                cmd(&format!("AUTH default {PASSWORD}")),
                cmd(&format!("AUTH someone {PASSWORD}")),
                cmd("PING"),
            ],
        )
        .with_password(),
        // Protocol errors, and the limits on unauthenticated requests.
        case("invalid multibulk length", vec![raw(b"*abc\r\n")]).closing(),
        case(
            "multibulk length out of range",
            vec![raw(b"*3000000000\r\n")],
        )
        .closing(),
        case("expected dollar", vec![raw(b"*1\r\nfoo\r\n")]).closing(),
        case(
            "invalid bulk length",
            vec![raw(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n")],
        )
        .closing(),
        case(
            "unbalanced quotes",
            vec![raw(b"set \"\"\"test-key\"\"\" test-value\r\n")],
        )
        .closing(),
        case(
            "empty requests are ignored",
            vec![raw(b"*-1\r\n*0\r\n\r\nPING\r\n")],
        ),
        case(
            "unauthenticated multibulk length",
            vec![cmd("PING"), raw(b"*11\r\n")],
        )
        .with_password()
        .closing(),
        case(
            "unauthenticated bulk length",
            vec![raw(b"*2\r\n$4\r\nECHO\r\n$16385\r\n")],
        )
        .with_password()
        .closing(),
        case(
            "at the unauthenticated limits",
            vec![
                cmd_with(&["ECHO", &"x".repeat(16384)]),
                cmd("PING 1 2 3 4 5 6 7 8 9"),
            ],
        )
        .with_password(),
        case(
            "a long inline line before authentication",
            vec![Request::Raw(
                [&b"PING "[..], &[b'x'; 30000], b"\r\n"].concat(),
            )],
        )
        .with_password(),
        case(
            "invalid before unauthenticated",
            vec![raw(b"*3000000000\r\n")],
        )
        .with_password()
        .closing(),
        case(
            "no limits once authenticated",
            vec![cmd(&auth), cmd_with(&["ECHO", &"y".repeat(20000)])],
        )
        .with_password(),
        // MULTI, EXEC, DISCARD.
        case(
            "multi exec",
            vec![
                cmd("MULTI"),
                cmd("PING"),
                cmd("ECHO a"),
                cmd("MULTI"),
                cmd("EXEC"),
                cmd("EXEC"),
                cmd("DISCARD"),
                cmd("MULTI"),
                cmd("EXEC"),
            ],
        ),
        case(
            "watch and unwatch, outside and inside multi",
            vec![
                cmd("WATCH a b"),
                cmd("UNWATCH"),
                cmd("WATCH"),
                cmd("UNWATCH x"),
                cmd("MULTI"),
                cmd("WATCH x"),
                cmd("UNWATCH"),
                cmd("PING"),
                cmd("EXEC"),
            ],
        ),
        case(
            "multi aborted by queueing errors",
            vec![
                cmd("MULTI"),
                cmd("FOO"),
                cmd("PING"),
                cmd("ECHO"),
                cmd("EXEC"),
                cmd("EXEC"),
                cmd("MULTI"),
                cmd("MULTI x"),
                cmd("EXEC"),
            ],
        ),
        case(
            "malformed exec and discard inside multi",
            vec![
                cmd("MULTI"),
                cmd("EXEC x"),
                cmd("DISCARD x"),
                cmd("EXEC"),
                cmd("MULTI"),
                cmd("DISCARD"),
                cmd("PING"),
            ],
        ),
        case(
            "multi switching protocol",
            vec![
                cmd("MULTI"),
                cmd("CLIENT GETNAME"),
                cmd("HELLO 3"),
                cmd("CLIENT GETNAME"),
                cmd("CONFIG GET maxclients"),
                cmd("EXEC"),
                cmd("MULTI"),
                cmd("HELLO 2"),
                cmd("CLIENT GETNAME"),
                cmd("EXEC"),
            ],
        ),
        case(
            "multi with auth",
            vec![
                cmd(&auth),
                cmd("MULTI"),
                cmd("AUTH nope"),
                cmd("PING"),
                cmd("EXEC"),
            ],
        )
        .with_password(),
        case(
            "reset and quit inside multi",
            vec![
                cmd("MULTI"),
                cmd("PING"),
                cmd("RESET"),
                cmd("EXEC"),
                cmd("MULTI"),
                cmd("QUIT"),
            ],
        )
        .closing(),
        // RESET.
        case(
            "reset",
            vec![
                cmd("HELLO 3 SETNAME named"),
                cmd("RESET"),
                cmd("CLIENT GETNAME"),
                cmd("HELLO"),
                cmd("PING"),
            ],
        ),
        case(
            "reset deauthenticates",
            vec![
                cmd(&hello_auth),
                cmd("PING"),
                cmd("RESET"),
                cmd("PING"),
                cmd("RESET"),
                cmd(&auth),
                cmd("PING"),
            ],
        )
        .with_password(),
    ]
}

/// What one server answered to one case.
#[derive(Debug)]
struct Answer {
    replies: Vec<Vec<u8>>,
    closed: bool,
}

fn ask(mut client: Client, case: &Case) -> Answer {
    let bytes: Vec<u8> = case.requests.iter().flat_map(Request::bytes).collect();
    client.send(&bytes);
    let mut replies = Vec::new();
    if case.closes {
        while let Some(reply) = client.read_raw_or_end() {
            replies.push(reply);
        }
        return Answer {
            replies,
            closed: true,
        };
    }
    for _ in &case.requests {
        match client.read_raw_or_end() {
            Some(reply) => replies.push(reply),
            None => {
                return Answer {
                    replies,
                    closed: true,
                };
            }
        }
    }
    Answer {
        replies,
        closed: false,
    }
}

/// Keys whose values differ between the servers by design.
const MASKED: &[&[u8]] = &[b"server", b"version", b"id"];

/// Masks the values of [`MASKED`] keys in maps and in flat key/value arrays (RESP2's
/// maps), anywhere in `value`; returns whether it masked anything.
fn mask(value: &mut Value) -> bool {
    let masked = || Value::Simple(b"<masked>".to_vec());
    let mut changed = false;
    match value {
        Value::Map(pairs) => {
            for (key, v) in pairs {
                if matches!(key, Value::Bulk(k) if MASKED.contains(&k.as_slice())) {
                    *v = masked();
                    changed = true;
                } else {
                    changed |= mask(v);
                }
            }
        }
        Value::Array(items) => {
            let flat_hello = items.len() == 14
                && matches!(items.first(), Some(Value::Bulk(k)) if k == b"server");
            for item in items.iter_mut() {
                changed |= mask(item);
            }
            if flat_hello {
                for pair in items.chunks_mut(2) {
                    if let [Value::Bulk(k), v] = pair
                        && MASKED.contains(&k.as_slice())
                    {
                        *v = masked();
                        changed = true;
                    }
                }
            }
        }
        _ => {}
    }
    changed
}

fn parsed(reply: &[u8]) -> Value {
    match Value::parse(reply) {
        Ok(Some((value, used))) if used == reply.len() => value,
        other => panic!(
            "not one reply: {:?} ({other:?})",
            String::from_utf8_lossy(reply)
        ),
    }
}

/// The same reply, byte for byte, or, where masking applies, the same value once masked.
fn same_reply(redis: &[u8], muxd: &[u8]) -> bool {
    if redis == muxd {
        return true;
    }
    let (mut r, mut m) = (parsed(redis), parsed(muxd));
    let masked = mask(&mut r) | mask(&mut m);
    masked && r == m
}

#[test]
fn muxd_answers_as_redis_does() {
    let Some(redis) = RedisServer::start_if_installed(&["--maxclients", "100"]) else {
        return;
    };
    let Some(redis_pw) =
        RedisServer::start_if_installed(&["--maxclients", "100", "--requirepass", PASSWORD])
    else {
        return;
    };
    let muxd = Muxd::start(&["--max-clients", "100"]);
    let muxd_pw = Muxd::start(&["--max-clients", "100", "--requirepass", PASSWORD]);
    let mut failures = Vec::new();
    for case in cases() {
        let (r, m) = if case.password {
            (redis_pw.connect(), muxd_pw.unix())
        } else {
            (redis.connect(), muxd.unix())
        };
        let expected = ask(r, &case);
        let got = ask(m, &case);
        assert!(
            expected.closed == case.closes,
            "case {:?}: the table is wrong about Redis closing: {expected:?}",
            case.name
        );
        let agree = expected.closed == got.closed
            && expected.replies.len() == got.replies.len()
            && expected
                .replies
                .iter()
                .zip(&got.replies)
                .all(|(r, m)| same_reply(r, m));
        if !agree {
            let show = |a: &Answer| {
                a.replies
                    .iter()
                    .map(|r| format!("    {:?}", String::from_utf8_lossy(r)))
                    .collect::<Vec<_>>()
                    .join("\n")
                    + if a.closed { "\n    <closed>" } else { "" }
            };
            failures.push(format!(
                "case {:?}:\n  redis:\n{}\n  muxd:\n{}",
                case.name,
                show(&expected),
                show(&got)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn masking_hides_only_the_values_that_must_differ() {
    let redis = b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:3\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n";
    let muxd = b"%7\r\n$6\r\nserver\r\n$4\r\nmuxd\r\n$7\r\nversion\r\n$5\r\n0.1.0\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:12\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n";
    assert!(same_reply(redis, muxd));
    let wrong_proto = String::from_utf8_lossy(muxd).replace(":3\r\n$2", ":2\r\n$2");
    assert!(!same_reply(redis, wrong_proto.as_bytes()));
    assert!(!same_reply(b"$-1\r\n", b"*-1\r\n"));
    assert!(!same_reply(b"$-1\r\n", b"_\r\n"));
    assert!(same_reply(b"+OK\r\n", b"+OK\r\n"));
}
