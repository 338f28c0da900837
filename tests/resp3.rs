//! RESP3 and the connection handshake against the real daemon: `HELLO`, each command's
//! RESP3 shape, `CLIENT SETINFO`, `RESET`. (Byte-for-byte agreement with a real Redis is
//! in `tests/differential.rs`.)

mod util;

use muxd::resp::Value;
use util::{Muxd, Reply, parse_client_list};

fn bulk(s: &str) -> Value {
    Value::Bulk(s.as_bytes().to_vec())
}

fn error(s: &str) -> Value {
    Value::Error(s.as_bytes().to_vec())
}

/// The fields of a `HELLO` reply, whichever way it came (map or flat array).
fn hello_fields(value: Value) -> Vec<(String, Value)> {
    let pairs = match value {
        Value::Map(pairs) => pairs,
        Value::Array(items) => {
            let mut pairs = Vec::new();
            let mut items = items.into_iter();
            while let (Some(k), Some(v)) = (items.next(), items.next()) {
                pairs.push((k, v));
            }
            pairs
        }
        other => panic!("HELLO replied {other:?}"),
    };
    pairs
        .into_iter()
        .map(|(k, v)| match k {
            Value::Bulk(k) => (String::from_utf8(k).unwrap(), v),
            other => panic!("key {other:?}"),
        })
        .collect()
}

#[test]
fn hello_switches_the_protocol_and_reports_the_server() {
    let muxd = Muxd::start(&[]);
    let mut c = muxd.tcp();
    let id = c.id();

    // No argument: reports, in the protocol spoken now (RESP2: a flat array).
    let reply = c.value(&["HELLO"]);
    assert!(matches!(reply, Value::Array(_)), "{reply:?}");
    let fields = hello_fields(reply);
    let expected = vec![
        ("server".to_owned(), bulk("muxd")),
        ("version".to_owned(), bulk(env!("CARGO_PKG_VERSION"))),
        ("proto".to_owned(), Value::Integer(2)),
        ("id".to_owned(), Value::Integer(id)),
        ("mode".to_owned(), bulk("standalone")),
        ("role".to_owned(), bulk("master")),
        ("modules".to_owned(), Value::Array(vec![])),
    ];
    assert_eq!(fields, expected);

    let reply = c.value(&["hello", "3"]);
    assert!(
        matches!(reply, Value::Map(_)),
        "RESP3 from HELLO's own reply on"
    );
    assert_eq!(hello_fields(reply)[2].1, Value::Integer(3));
    assert_eq!(c.value(&["CLIENT", "GETNAME"]), Value::Resp3Null);
    // No argument again: still RESP3.
    assert!(matches!(c.value(&["HELLO"]), Value::Map(_)));
    // Back to 2.
    assert!(matches!(c.value(&["HELLO", "2"]), Value::Array(_)));
    assert_eq!(c.value(&["CLIENT", "GETNAME"]), Value::Null);
}

#[test]
fn hello_errors_are_redis_texts_and_change_nothing() {
    let muxd = Muxd::start(&[]);
    let mut c = muxd.tcp();
    for (args, expected) in [
        (&["HELLO", "4"][..], "NOPROTO unsupported protocol version"),
        (&["HELLO", "1"], "NOPROTO unsupported protocol version"),
        (
            &["HELLO", "x"],
            "ERR Protocol version is not an integer or out of range",
        ),
        (
            &["HELLO", "3.0"],
            "ERR Protocol version is not an integer or out of range",
        ),
        (
            &["HELLO", "3", "FOO"],
            "ERR Syntax error in HELLO option 'FOO'",
        ),
        (
            &["HELLO", "3", "AUTH", "default"],
            "ERR Syntax error in HELLO option 'AUTH'",
        ),
        (
            &["HELLO", "3", "SETNAME"],
            "ERR Syntax error in HELLO option 'SETNAME'",
        ),
        (
            &["HELLO", "3", "SETNAME", "a b"],
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ),
        (
            &["HELLO", "3", "AUTH", "someone", "pw"],
            "WRONGPASS invalid username-password pair or user is disabled.",
        ),
    ] {
        assert_eq!(c.value(args), error(expected), "{args:?}");
    }
    // None of them switched to RESP3.
    assert_eq!(c.value(&["CLIENT", "GETNAME"]), Value::Null);
}

#[test]
fn hello_setname_and_auth_without_a_password() {
    let muxd = Muxd::start(&[]);
    let mut c = muxd.tcp();
    // With no password configured, the default user takes any password, as in Redis.
    let reply = c.value(&[
        "HELLO", "3", "AUTH", "default", "anything", "SETNAME", "app",
    ]);
    assert!(matches!(reply, Value::Map(_)), "{reply:?}");
    assert_eq!(c.value(&["CLIENT", "GETNAME"]), bulk("app"));
    // Options take effect in order, as in Redis 7.0: the name is set before `b` fails.
    assert_eq!(
        c.value(&["HELLO", "2", "SETNAME", "other", "b"]),
        error("ERR Syntax error in HELLO option 'b'")
    );
    assert_eq!(c.value(&["CLIENT", "GETNAME"]), bulk("other"));
}

#[test]
fn every_command_replies_its_resp3_shape() {
    let muxd = Muxd::start(&["--max-clients", "100"]);
    let mut c = muxd.tcp();
    c.value(&["HELLO", "3"]);
    assert_eq!(c.raw(&["PING"]), b"+PONG\r\n");
    assert_eq!(c.raw(&["PING", "hi"]), b"$2\r\nhi\r\n");
    assert_eq!(c.raw(&["ECHO", "x\r\ny"]), b"$4\r\nx\r\ny\r\n");
    assert_eq!(c.raw(&["ADD", "2", "3"]), b":5\r\n");
    assert_eq!(
        c.raw(&["NOPE"]),
        b"-ERR unknown command 'NOPE', with args beginning with: \r\n"
    );
    assert_eq!(c.raw(&["CLIENT", "GETNAME"]), b"_\r\n");
    assert_eq!(
        c.raw(&["CONFIG", "GET", "maxclients"]),
        b"%1\r\n$10\r\nmaxclients\r\n$3\r\n100\r\n"
    );
    assert_eq!(c.raw(&["CONFIG", "GET", "nothing"]), b"%0\r\n");
    assert_eq!(c.raw(&["COMMAND", "INFO", "nosuch"]), b"*1\r\n_\r\n");
    assert_eq!(c.raw(&["COMMAND", "DOCS"]), b"%0\r\n");
    assert_eq!(
        c.raw(&["COMMAND", "INFO", "ping"]),
        b"*1\r\n*6\r\n$4\r\nping\r\n:-1\r\n~1\r\n+fast\r\n:0\r\n:0\r\n:0\r\n"
    );
    for words in [
        &["INFO"][..],
        &["INFO", "clients"],
        &["CLIENT", "INFO"],
        &["CLIENT", "LIST"],
    ] {
        match c.value(words) {
            Value::Verbatim { format, text } => {
                assert_eq!(&format, b"txt", "{words:?}");
                assert!(!text.is_empty(), "{words:?}");
            }
            other => panic!("{words:?} replied {other:?}"),
        }
    }
    // RESP2 forms of the same, byte for byte as before RESP3 existed (or as Redis).
    let mut old = muxd.tcp();
    assert_eq!(
        old.raw(&["CONFIG", "GET", "maxclients"]),
        b"*2\r\n$10\r\nmaxclients\r\n$3\r\n100\r\n"
    );
    assert_eq!(old.raw(&["COMMAND", "INFO", "nosuch"]), b"*1\r\n$-1\r\n");
    assert_eq!(old.raw(&["COMMAND", "DOCS"]), b"*0\r\n");
    assert!(old.raw(&["CLIENT", "INFO"]).starts_with(b"$"));
}

#[test]
fn client_setinfo_follows_redis_7_2_and_shows_in_client_list() {
    let muxd = Muxd::start(&[]);
    let mut c = muxd.tcp();
    assert_eq!(
        c.cmd(&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"]),
        Reply::simple("OK")
    );
    assert_eq!(
        c.cmd(&["client", "setinfo", "lib-ver", "8.1.0"]),
        Reply::simple("OK")
    );
    assert_eq!(
        c.cmd(&["CLIENT", "SETINFO", "lib-name", "go-redis(,go1.22.0)"]),
        Reply::simple("OK")
    );
    for (args, expected) in [
        (
            &["CLIENT", "SETINFO", "LIB-NAME", "a b"][..],
            "ERR LIB-NAME cannot contain spaces, newlines or special characters.",
        ),
        (
            &["CLIENT", "SETINFO", "lib-ver", "1\n2"],
            "ERR lib-ver cannot contain spaces, newlines or special characters.",
        ),
        (
            &["CLIENT", "SETINFO", "LIB-COLOR", "red"],
            "ERR Unrecognized option 'LIB-COLOR'",
        ),
        (
            &["CLIENT", "SETINFO", "LIB-NAME"],
            "ERR wrong number of arguments for 'client|setinfo' command",
        ),
    ] {
        assert_eq!(c.cmd(args), Reply::Error(expected.to_owned()), "{args:?}");
    }
    let line = c.cmd(&["CLIENT", "INFO"]).text();
    assert!(
        line.trim_end()
            .ends_with(" resp=2 lib-name=go-redis(,go1.22.0) lib-ver=8.1.0"),
        "{line}"
    );
    c.value(&["HELLO", "3"]);
    let mut other = muxd.unix();
    let list = parse_client_list(&other.cmd(&["CLIENT", "LIST"]).text());
    let me = list
        .iter()
        .find(|f| f["lib-ver"] == "8.1.0")
        .expect("listed");
    assert_eq!(me["resp"], "3");
    let them = list
        .iter()
        .find(|f| f["lib-ver"].is_empty())
        .expect("listed");
    assert_eq!(
        (them["resp"].as_str(), them["lib-name"].as_str()),
        ("2", "")
    );
    // An empty value clears the field.
    c.value(&["CLIENT", "SETINFO", "LIB-VER", ""]);
    let list = parse_client_list(&other.cmd(&["CLIENT", "LIST"]).text());
    assert!(list.iter().all(|f| f["lib-ver"].is_empty()));
}

#[test]
fn reset_returns_the_connection_to_its_first_state() {
    let muxd = Muxd::start(&[]);
    let mut c = muxd.tcp();
    let id = c.id();
    c.value(&["HELLO", "3", "SETNAME", "named"]);
    c.value(&["CLIENT", "SETINFO", "LIB-NAME", "lib"]);
    c.value(&["ADD", "5"]);
    assert_eq!(c.raw(&["RESET"]), b"+RESET\r\n");
    assert_eq!(c.raw(&["CLIENT", "GETNAME"]), b"$-1\r\n", "RESP2, no name");
    assert_eq!(c.cmd(&["SUM"]), Reply::Int(0));
    assert_eq!(c.id(), id, "the same connection");
    let line = c.cmd(&["CLIENT", "INFO"]).text();
    assert!(line.contains(" lib-name=lib "), "kept, as in Redis: {line}");
    assert_eq!(
        c.cmd(&["RESET", "x"]),
        Reply::Error("ERR wrong number of arguments for 'reset' command".into())
    );
}

/// What current client libraries send when they connect (their defaults, then with a
/// password and a name): every step succeeds, except `CLIENT MAINT_NOTIFICATIONS` (node-redis
/// 6, go-redis 9, jedis over RESP3), which gets the error Redis itself gives and which
/// those clients go on after.
#[test]
fn what_client_libraries_send_on_connect_works() {
    const MAINT: &[&str] = &[
        "CLIENT",
        "MAINT_NOTIFICATIONS",
        "ON",
        "moving-endpoint-type",
        "internal-ip",
    ];
    let sequences: &[(&str, &[&[&str]])] = &[
        (
            "redis-py",
            &[
                &["HELLO", "3"],
                &["CLIENT", "SETINFO", "LIB-NAME", "redis-py"],
                &["CLIENT", "SETINFO", "LIB-VER", "8.1.0"],
            ],
        ),
        (
            "node-redis",
            &[
                &["HELLO", "3"],
                &["CLIENT", "SETINFO", "LIB-NAME", "node-redis"],
                &["CLIENT", "SETINFO", "LIB-VER", "6.3.0"],
                MAINT,
            ],
        ),
        (
            "go-redis",
            &[
                &["HELLO", "3"],
                &["CLIENT", "SETINFO", "LIB-NAME", "go-redis(,go1.24.1)"],
                &["CLIENT", "SETINFO", "LIB-VER", "9.14.0"],
                MAINT,
            ],
        ),
        (
            "lettuce",
            &[
                &["HELLO", "3"],
                &["CLIENT", "SETINFO", "lib-name", "Lettuce"],
                &["CLIENT", "SETINFO", "lib-ver", "6.7.1.RELEASE"],
            ],
        ),
        (
            "ioredis",
            &[
                &["INFO"],
                &["CLIENT", "SETINFO", "LIB-NAME", "ioredis"],
                &["CLIENT", "SETINFO", "LIB-VER", "5.8.0"],
            ],
        ),
        (
            "redis-rs",
            &[
                &["CLIENT", "SETINFO", "LIB-NAME", "redis-rs"],
                &["CLIENT", "SETINFO", "LIB-VER", "0.32.0"],
                &["PING"],
            ],
        ),
        (
            "configured with a password, a name and database 0",
            &[
                &["HELLO", "3", "AUTH", "default", "pw", "SETNAME", "app"],
                &["AUTH", "default", "pw"],
                &["AUTH", "pw"],
                &["CLIENT", "SETNAME", "app"],
                &["SELECT", "0"],
                &["PING"],
            ],
        ),
    ];
    let open = Muxd::start(&[]);
    let locked = Muxd::start(&["--requirepass", "pw"]);
    for (client, steps) in sequences {
        let with_password = client.starts_with("configured");
        let muxd = if with_password { &locked } else { &open };
        let mut c = muxd.tcp();
        for step in *steps {
            let reply = c.value(step);
            match reply {
                Value::Error(e) if *step == MAINT => assert_eq!(
                    e,
                    b"ERR unknown subcommand 'MAINT_NOTIFICATIONS'. Try CLIENT HELP."
                ),
                Value::Error(e) => {
                    panic!("{client}: {step:?} failed: {}", String::from_utf8_lossy(&e))
                }
                _ => {}
            }
        }
        assert_eq!(c.raw(&["PING"]), b"+PONG\r\n", "{client}");
    }
}
