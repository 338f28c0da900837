//! The real-client matrix (issue 8): the clients users pick, each with its defaults first,
//! against a real `redis-server` (which proves the harness: those rows pass today) and
//! against muxd.
//!
//! A row is one client in one configuration: redis-py (default protocol, `protocol=2`,
//! asyncio; with and without the hiredis parser), node-redis, ioredis, redis-cli (plain
//! and `-3`), each a script in `tests/clients/`, and redis-rs (RESP2 and RESP3), run here.
//! Every row connects over TCP and then over the Unix socket, and checks PING, ECHO of a
//! binary payload, ADD/SUM through the client's generic command call, CLIENT SETNAME then
//! CLIENT LIST, a pipeline of 1,000, and (redis-py, node-redis, ioredis) the library's
//! pub/sub API; the password rows start the server with
//! `--requirepass`, connect through the client's own password option, and require a wrong
//! password to fail as that client's authentication error.
//!
//! The TLS rows (redis-py with `ssl=True` through a `rediss://` URL, node-redis with
//! `socket.tls`) connect to the server's TLS port instead, trusting a CA made at test time.
//!
//! Tests are named `against_{redis,muxd}::{no_password,password}::<row>`, so
//! `cargo test --test client_matrix against_redis` checks the harness alone.

#[path = "../util/mod.rs"]
mod util;

mod redis_rs;
mod scripts;

use scripts::{Runner, Script};
use util::Muxd;
use util::redis_server::RedisServer;
use util::tls::Pki;

/// The password of the password rows: an `@` and a space, which a client must pass as it is.
const PASSWORD: &str = "p@ss w0rd";
/// What ECHO must return unchanged: every byte value, with CR LF and RESP-looking bytes
/// around them (as the scripts build it).
fn payload() -> Vec<u8> {
    let mut payload = b"a\r\nb".to_vec();
    payload.extend(0..=u8::MAX);
    payload.extend(b"\r\n*1\r\n$-1\r\n\0");
    payload
}
/// Commands in each pipeline and transaction.
const PIPELINE: usize = 1000;
/// SUM's stand-in on Redis: the running total, then reset to 0, as an integer reply.
const GET_AND_RESET: &str =
    "local v = redis.call('GET', KEYS[1]) or 0 redis.call('DEL', KEYS[1]) return tonumber(v)";

/// The server a row runs against.
#[derive(Clone, Copy)]
enum Kind {
    /// A real redis-server: ADD/SUM are swapped for stand-ins with the same replies.
    Redis,
    Muxd,
}

impl Kind {
    /// As the scripts' `--server` takes it.
    fn name(self) -> &'static str {
        match self {
            Kind::Redis => "redis",
            Kind::Muxd => "muxd",
        }
    }
}

/// A running server, killed on drop (its log shown if the test failed).
enum Server {
    Redis(RedisServer),
    Muxd(Muxd),
}

impl Server {
    /// Starts `kind`, requiring `password` when given, with a TLS port serving `pki`'s
    /// certificate when given; `None` when redis-server is not installed (a skip, or a
    /// failure in CI).
    #[track_caller]
    fn start(kind: Kind, password: Option<&str>, pki: Option<&Pki>) -> Option<Server> {
        let mut flags: Vec<String> =
            password.map_or(vec![], |p| vec!["--requirepass".to_owned(), p.to_owned()]);
        if let Some(pki) = pki {
            flags.extend(pki.server_flags(false));
            match kind {
                Kind::Redis => {
                    // Redis wants a CA even when it asks clients for no certificate.
                    let port = util::free_port().to_string();
                    flags.extend(["--tls-port".to_owned(), port]);
                    flags.extend([
                        "--tls-ca-cert-file".to_owned(),
                        pki.ca.display().to_string(),
                    ]);
                    flags.extend(["--tls-auth-clients", "no"].map(str::to_owned));
                }
                Kind::Muxd => flags.extend(["--tls", "127.0.0.1:0"].map(str::to_owned)),
            }
        }
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        Some(match kind {
            Kind::Redis => {
                if !util::require_tool("redis-server") {
                    return None;
                }
                Server::Redis(RedisServer::start(&flags))
            }
            Kind::Muxd => Server::Muxd(Muxd::start(&flags)),
        })
    }

    /// `tcp://HOST:PORT` and `unix://PATH`.
    fn targets(&self) -> [String; 2] {
        let (addr, path) = match self {
            Server::Redis(r) => (r.tcp_addr(), r.unix_path()),
            Server::Muxd(m) => (m.tcp_addr(), m.unix_path()),
        };
        [
            format!("tcp://{addr}"),
            format!("unix://{}", path.display()),
        ]
    }

    /// `tls://HOST:PORT`, the TLS port.
    fn tls_target(&self) -> String {
        match self {
            Server::Redis(r) => {
                let port = r.arg_after("--tls-port").expect("a TLS port");
                format!("tls://127.0.0.1:{port}")
            }
            Server::Muxd(m) => m
                .ready
                .iter()
                .find(|a| a.starts_with("tls://"))
                .expect("a TLS listener")
                .clone(),
        }
    }
}

/// One client in one configuration.
enum Row {
    Script(Script),
    /// A script over TLS, to the TLS port only.
    Tls(Script),
    /// redis-rs, in RESP2 or RESP3.
    RedisRs(u8),
}

/// Runs `row` against a fresh server of `kind`, over TCP and then the Unix socket.
#[track_caller]
fn run(row: Row, kind: Kind, password: Option<&str>) {
    if let Row::Script(script) | Row::Tls(script) = &row
        && !script.available()
    {
        return;
    }
    if let Row::Tls(script) = &row {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path(), "matrix");
        let Some(server) = Server::start(kind, password, Some(&pki)) else {
            return;
        };
        script.run(&server.tls_target(), password, kind, Some(&pki.ca));
        return;
    }
    let Some(server) = Server::start(kind, password, None) else {
        return;
    };
    for target in server.targets() {
        match &row {
            Row::Script(script) | Row::Tls(script) => script.run(&target, password, kind, None),
            Row::RedisRs(protocol) => redis_rs::row(*protocol, &target, password, kind),
        }
    }
}

const fn script(runner: Runner, file: &'static str, args: &'static [&'static str]) -> Row {
    Row::Script(Script { runner, file, args })
}

/// One test per row, server and password setting.
macro_rules! matrix {
    ($($name:ident: $row:expr;)*) => {
        matrix!(@server against_redis, Kind::Redis, doc = "Against a real redis-server.", $($name: $row;)*);
        matrix!(@server against_muxd, Kind::Muxd, doc = "Against muxd.", $($name: $row;)*);
    };
    (@server $server:ident, $kind:expr, $attr:meta, $($name:ident: $row:expr;)*) => {
        mod $server {
            use super::*;
            mod no_password {
                use super::*;
                $(#[test] #[$attr] fn $name() { run($row, $kind, None) })*
            }
            mod password {
                use super::*;
                $(#[test] #[$attr] fn $name() { run($row, $kind, Some(PASSWORD)) })*
            }
        }
    };
}

use Runner::{Bash, Node, Python};

matrix! {
    redis_py_default_hiredis: script(Python, "redis_py_check.py", &["--mode", "default", "--parser", "hiredis"]);
    redis_py_default_python_parser: script(Python, "redis_py_check.py", &["--mode", "default", "--parser", "python"]);
    redis_py_resp2_hiredis: script(Python, "redis_py_check.py", &["--mode", "resp2", "--parser", "hiredis"]);
    redis_py_resp2_python_parser: script(Python, "redis_py_check.py", &["--mode", "resp2", "--parser", "python"]);
    redis_py_asyncio_hiredis: script(Python, "redis_py_check.py", &["--mode", "asyncio", "--parser", "hiredis"]);
    redis_py_asyncio_python_parser: script(Python, "redis_py_check.py", &["--mode", "asyncio", "--parser", "python"]);
    node_redis: script(Node, "node_redis_check.cjs", &[]);
    ioredis: script(Node, "ioredis_check.cjs", &[]);
    redis_cli: script(Bash, "redis_cli_check.sh", &["--mode", "resp2"]);
    redis_cli_resp3: script(Bash, "redis_cli_check.sh", &["--mode", "resp3"]);
    redis_py_tls: Row::Tls(Script { runner: Python, file: "redis_py_check.py", args: &["--mode", "default", "--parser", "hiredis"] });
    redis_py_tls_asyncio: Row::Tls(Script { runner: Python, file: "redis_py_check.py", args: &["--mode", "asyncio", "--parser", "python"] });
    node_redis_tls: Row::Tls(Script { runner: Node, file: "node_redis_check.cjs", args: &[] });
    redis_rs_resp2: Row::RedisRs(2);
    redis_rs_resp3: Row::RedisRs(3);
}
