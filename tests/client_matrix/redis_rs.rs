//! The redis-rs row, run in-process through the crate's sync API: the same checks as the
//! scripts in `tests/clients/` (PING, ECHO of a binary payload, ADD/SUM through
//! `redis::cmd`, CLIENT SETNAME then CLIENT LIST, a pipeline and a transaction of 1,000,
//! a password through `RedisConnectionInfo::set_password` and a wrong one refused as an
//! authentication error).

use redis::{
    Client, Connection, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo,
    ProtocolVersion, RedisConnectionInfo, RedisResult, Value,
};

use super::{Kind, PIPELINE, payload};
use crate::util::TIMEOUT;

/// The redis-rs version in Cargo.lock, for the failure messages.
fn version() -> &'static str {
    let lock = include_str!("../../Cargo.lock");
    lock.split("[[package]]")
        .find(|p| p.contains("name = \"redis\"\n"))
        .and_then(|p| p.split("version = \"").nth(1))
        .and_then(|v| v.split('"').next())
        .unwrap_or("?")
}

/// Runs the row on `target` (`tcp://HOST:PORT` or `unix://PATH`) in RESP `resp` (2 or 3),
/// panicking with the step and what differed on a mismatch.
pub fn row(resp: u8, target: &str, password: Option<&str>, kind: Kind) {
    let label = format!(
        "redis-rs {} RESP{resp} {target}{}",
        version(),
        if password.is_some() {
            " with password"
        } else {
            ""
        }
    );
    if let Err(e) = checks(resp, target, password, kind) {
        panic!("FAIL {label}: {e}");
    }
    println!("ok {label}");
}

fn checks(resp: u8, target: &str, password: Option<&str>, kind: Kind) -> Result<(), String> {
    let protocol = match resp {
        2 => ProtocolVersion::RESP2,
        3 => ProtocolVersion::RESP3,
        other => panic!("RESP{other}?"),
    };
    let mut con = connect(protocol, target, password).map_err(|e| format!("connect: {e}"))?;
    let step = |what: &'static str| move |e: redis::RedisError| format!("{what}: {e}");

    let pong: String = redis::cmd("PING").query(&mut con).map_err(step("PING"))?;
    expect("PING", &pong, &"PONG".to_owned())?;

    let echoed: Vec<u8> = redis::cmd("ECHO")
        .arg(payload())
        .query(&mut con)
        .map_err(step("ECHO"))?;
    expect("ECHO binary payload", &echoed, &payload())?;

    let adder = Adder::new(kind);
    for (command, want) in [
        (adder.add(&[1, 2, 3]), 6),
        (adder.add(&[-10]), -4),
        (adder.sum(), -4),
        (adder.sum(), 0),
    ] {
        let got: i64 = command.query(&mut con).map_err(step("ADD/SUM"))?;
        expect("ADD/SUM", &got, &want)?;
    }

    let name = format!("matrix-redis-rs-resp{resp}-{}", std::process::id());
    let ok: String = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(&name)
        .query(&mut con)
        .map_err(step("CLIENT SETNAME"))?;
    expect("CLIENT SETNAME", &ok, &"OK".to_owned())?;
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut con)
        .map_err(step("CLIENT LIST"))?;
    let rows: Vec<_> = crate::util::parse_client_list(&list)
        .into_iter()
        .filter(|r| r.get("name") == Some(&name))
        .collect();
    expect(&format!("CLIENT LIST rows named {name}"), &rows.len(), &1)?;
    expect(
        "CLIENT LIST resp=",
        &rows[0].get("resp").cloned(),
        &Some(resp.to_string()),
    )?;

    for atomic in [false, true] {
        let what = if atomic { "transaction" } else { "pipeline" };
        let mut pipe = redis::pipe();
        if atomic {
            pipe.atomic();
        }
        let mut want = Vec::new();
        for i in 0..PIPELINE {
            if i % 2 == 1 {
                pipe.add_command(adder.add(&[1]));
                want.push(Value::Int((i as i64 + 1) / 2));
            } else {
                pipe.cmd("ECHO").arg(format!("m{i}"));
                want.push(Value::BulkString(format!("m{i}").into_bytes()));
            }
        }
        let got: Vec<Value> = pipe
            .query(&mut con)
            .map_err(|e| format!("{what} of {PIPELINE}: {e}"))?;
        expect(&format!("{what} reply count"), &got.len(), &PIPELINE)?;
        for (i, (got, want)) in got.iter().zip(&want).enumerate() {
            expect(&format!("{what} reply {i}"), got, want)?;
        }
        let total: i64 = adder.sum().query(&mut con).map_err(step("SUM"))?;
        expect(
            &format!("SUM after the {what}"),
            &total,
            &(PIPELINE as i64 / 2),
        )?;
    }

    if let Some(password) = password {
        wrong_password(protocol, target, password)?;
    }
    Ok(())
}

/// A wrong password must be refused on connect: redis-rs reports a refused `AUTH` (RESP2)
/// as `ErrorKind::AuthenticationFailed` and a refused `HELLO 3 AUTH` as the server's
/// `WRONGPASS` error.
fn wrong_password(protocol: ProtocolVersion, target: &str, password: &str) -> Result<(), String> {
    let e = match connect(protocol, target, Some(&format!("{password}-wrong"))) {
        Ok(_) => return Err("wrong password: connected".into()),
        Err(e) => e,
    };
    let refused = if protocol == ProtocolVersion::RESP2 {
        e.kind() == ErrorKind::AuthenticationFailed
    } else {
        e.code() == Some("WRONGPASS")
    };
    if refused {
        Ok(())
    } else {
        Err(format!(
            "wrong password: expected an authentication error, got {:?}: {e}",
            e.kind()
        ))
    }
}

/// Connects with redis-rs's defaults but for the protocol and password given, through its
/// own options.
fn connect(
    protocol: ProtocolVersion,
    target: &str,
    password: Option<&str>,
) -> RedisResult<Connection> {
    let addr = match target.strip_prefix("unix://") {
        Some(path) => ConnectionAddr::Unix(path.into()),
        None => {
            let (host, port) = target
                .trim_start_matches("tcp://")
                .rsplit_once(':')
                .expect("tcp://HOST:PORT");
            ConnectionAddr::Tcp(host.to_owned(), port.parse().expect("port"))
        }
    };
    let mut settings = RedisConnectionInfo::default().set_protocol(protocol);
    if let Some(password) = password {
        settings = settings.set_password(password);
    }
    let info: ConnectionInfo = addr.into_connection_info()?.set_redis_settings(settings);
    let con = Client::open(info)?.get_connection_with_timeout(TIMEOUT)?;
    con.set_read_timeout(Some(TIMEOUT))?;
    Ok(con)
}

fn expect<T: PartialEq + std::fmt::Debug>(what: &str, got: &T, want: &T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: expected {want:?}, got {got:?}"))
    }
}

/// ADD/SUM on muxd; on Redis, which has neither, INCRBY on a key and a Lua get-and-delete
/// give the same integer replies (as in the scripts).
struct Adder {
    kind: Kind,
    key: String,
}

impl Adder {
    fn new(kind: Kind) -> Adder {
        Adder {
            kind,
            key: format!("matrix:adder:{}", std::process::id()),
        }
    }

    fn add(&self, numbers: &[i64]) -> redis::Cmd {
        match self.kind {
            Kind::Muxd => {
                let mut cmd = redis::cmd("ADD");
                cmd.arg(numbers);
                cmd
            }
            Kind::Redis => {
                let mut cmd = redis::cmd("INCRBY");
                cmd.arg(&self.key).arg(numbers.iter().sum::<i64>());
                cmd
            }
        }
    }

    fn sum(&self) -> redis::Cmd {
        match self.kind {
            Kind::Muxd => redis::cmd("SUM"),
            Kind::Redis => {
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(super::GET_AND_RESET).arg(1).arg(&self.key);
                cmd
            }
        }
    }
}
