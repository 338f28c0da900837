//! The RESP wire protocol against the real daemon: Redis's own protocol cases
//! (`tests/unit/protocol.tcl`), pipelining, split requests, and malformed input that
//! closes only the offender.

mod util;

use std::time::Duration;

use util::{Muxd, Reply};

/// What a raw input must produce.
enum Outcome {
    /// This error reply, then the connection closes.
    Closes(&'static str),
    /// Nothing: a `PING` sent after it gets `+PONG`.
    Ignored,
}

#[test]
fn redis_protocol_cases_replay() {
    let muxd = Muxd::start(&[]);
    let cases: &[(&str, &[u8], Outcome)] = &[
        ("empty query", b"\r\n", Outcome::Ignored),
        ("empty lf line", b"\n", Outcome::Ignored),
        ("negative multibulk length", b"*-10\r\n", Outcome::Ignored),
        ("zero multibulk length", b"*0\r\n", Outcome::Ignored),
        ("null multibulk", b"*-1\r\n", Outcome::Ignored),
        (
            "out of range multibulk length",
            b"*3000000000\r\n",
            Outcome::Closes("ERR Protocol error: invalid multibulk length"),
        ),
        (
            "wrong multibulk payload header",
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
            Outcome::Closes("ERR Protocol error: expected '$', got 'f'"),
        ),
        (
            "negative multibulk payload length",
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n",
            Outcome::Closes("ERR Protocol error: invalid bulk length"),
        ),
        (
            "out of range multibulk payload length",
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n",
            Outcome::Closes("ERR Protocol error: invalid bulk length"),
        ),
        (
            "non-number multibulk payload length",
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n",
            Outcome::Closes("ERR Protocol error: invalid bulk length"),
        ),
        (
            "multibulk request not followed by bulk arguments",
            b"*1\r\nfoo\r\n",
            Outcome::Closes("ERR Protocol error: expected '$', got 'f'"),
        ),
        (
            "unbalanced number of quotes",
            b"set \"\"\"test-key\"\"\" test-value\r\nping\r\n",
            Outcome::Closes("ERR Protocol error: unbalanced quotes in request"),
        ),
        (
            "bulk not followed by crlf (strict where redis is lax)",
            b"*1\r\n$4\r\nPINGxx\r\n",
            Outcome::Closes("ERR Protocol error: expected '\\r\\n' after bulk data"),
        ),
    ];
    for (name, input, outcome) in cases {
        let mut c = muxd.tcp();
        c.send(input);
        match outcome {
            Outcome::Closes(error) => {
                assert_eq!(c.read_reply(), Reply::Error((*error).into()), "case {name}");
                c.expect_closed();
            }
            Outcome::Ignored => {
                assert_eq!(c.cmd(&["PING"]), Reply::simple("PONG"), "case {name}");
            }
        }
    }
    // Every offender was closed and counted; the server is fine.
    let mut c = muxd.tcp();
    assert_eq!(c.cmd(&["PING"]), Reply::simple("PONG"));
    assert_eq!(util::info_field(&mut c, "protocol_errors"), "8");
}

#[test]
fn wrong_arity_keeps_connection_open() {
    let muxd = Muxd::start(&[]);
    let mut c = muxd.tcp();
    c.send(b"ping x y z\r\n");
    match c.read_reply() {
        Reply::Error(e) => {
            assert!(e.contains("wrong") && e.contains("arguments") && e.contains("ping"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.cmd(&["PING"]), Reply::simple("PONG"));
}

#[test]
fn inline_commands_with_quotes() {
    let muxd = Muxd::start(&[]);
    let mut c = muxd.tcp();
    c.send(b"ECHO \"hello world\"\r\n");
    assert_eq!(c.read_reply(), Reply::bulk("hello world"));
    c.send(b"echo 'it\\'s'\n");
    assert_eq!(c.read_reply(), Reply::bulk("it's"));
    c.send(b"ECHO \"\\x41\\n\"\r\n");
    assert_eq!(c.read_reply(), Reply::bulk("A\n"));
    c.send(b"   PING   \r\n");
    assert_eq!(c.read_reply(), Reply::simple("PONG"));
}

#[test]
fn a_thousand_pipelined_requests_in_one_write_answer_in_order() {
    let muxd = Muxd::start(&[]);
    for mut c in [muxd.tcp(), muxd.unix()] {
        let mut batch = Vec::new();
        for i in 0..1000 {
            if i % 2 == 0 {
                batch.extend_from_slice(&util::encode(&[b"ECHO", i.to_string().as_bytes()]));
            } else {
                batch.extend_from_slice(format!("ECHO {i}\r\n").as_bytes());
            }
        }
        c.send(&batch);
        for i in 0..1000 {
            assert_eq!(c.read_reply(), Reply::bulk(&i.to_string()), "reply {i}");
        }
    }
}

#[test]
fn request_fed_one_byte_at_a_time() {
    let muxd = Muxd::start(&[]);
    let mut c = muxd.tcp();
    let mut request = util::encode(&[b"ADD", b"40", b"2"]);
    request.extend_from_slice(b"ECHO \"split inline\"\r\n");
    for byte in &request {
        c.send(std::slice::from_ref(byte));
    }
    assert_eq!(c.read_reply(), Reply::Int(42));
    assert_eq!(c.read_reply(), Reply::bulk("split inline"));
}

#[test]
fn large_bulk_split_across_many_reads() {
    let muxd = Muxd::start(&[]);
    let mut c = muxd.unix();
    let payload = vec![b'x'; 3 * 1024 * 1024 + 17];
    let request = util::encode(&[b"ECHO", &payload]);
    for chunk in request.chunks(100_000) {
        c.send(chunk);
    }
    assert_eq!(c.read_reply(), Reply::Bulk(payload));
}

#[test]
fn malformed_input_closes_only_the_offender() {
    let muxd = Muxd::start(&[]);
    let mut good = muxd.tcp();
    let mut good_unix = muxd.unix();
    assert_eq!(good.cmd(&["ADD", "10"]), Reply::Int(10));
    assert_eq!(good_unix.cmd(&["ADD", "20"]), Reply::Int(20));
    let mut bad = muxd.tcp();
    // A valid request, then garbage in the same write: the first is answered.
    bad.send(b"PING\r\n*1\r\n%garbage\r\n");
    assert_eq!(bad.read_reply(), Reply::simple("PONG"));
    assert_eq!(
        bad.read_reply(),
        Reply::Error("ERR Protocol error: expected '$', got '%'".into())
    );
    bad.expect_closed();
    muxd.wait_for_log("WARN  muxd::event_loop] protocol error client=");
    assert_eq!(good.cmd(&["ADD", "1"]), Reply::Int(11));
    assert_eq!(good_unix.cmd(&["SUM"]), Reply::Int(20));
}

/// Redis's "protocol desync regression test": a request start followed by an endless
/// line must end in a protocol error, not in an ever-growing buffer.
#[test]
fn protocol_desync_regression() {
    let muxd = Muxd::start(&[]);
    for start in [&b"\x00"[..], b"*\x00", b"$\x00"] {
        let mut c = muxd.tcp();
        c.send(start);
        let payload = vec![b'A'; 1024];
        let mut sent = 0;
        // Keep writing until the server gives up on us (at most a few MiB).
        while c.write_raw(&payload).is_ok() && sent < 8 * 1024 * 1024 {
            sent += payload.len();
            if sent > 128 * 1024 {
                break;
            }
        }
        c.set_read_timeout(Duration::from_secs(10));
        match c.try_read_reply() {
            Ok(Reply::Error(e)) => assert!(e.contains("Protocol error"), "{e}"),
            other => panic!("start {start:?}: expected a protocol error, got {other:?}"),
        }
    }
    let mut c = muxd.tcp();
    assert_eq!(c.cmd(&["PING"]), Reply::simple("PONG"));
}

#[test]
fn request_split_between_clients_does_not_mix() {
    let muxd = Muxd::start(&[]);
    let mut a = muxd.tcp();
    let mut b = muxd.tcp();
    a.send(b"*2\r\n$4\r\nECHO\r\n$5\r\nhel");
    b.send(b"*2\r\n$4\r\nECHO\r\n$3\r\nfo");
    a.send(b"lo\r\n");
    b.send(b"o\r\n");
    assert_eq!(b.read_reply(), Reply::bulk("foo"));
    assert_eq!(a.read_reply(), Reply::bulk("hello"));
}
