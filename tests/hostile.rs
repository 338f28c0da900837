//! Hostile input against the real daemon: each input with its expected outcome. Nothing
//! here may panic the daemon, disturb another client, or reserve memory for lengths that
//! were only announced.

mod util;

use util::{Client, Muxd, Reply, eventually, info_field, parse_client_list};

/// What a hostile input must produce.
enum Outcome {
    /// This error reply, then the connection closes.
    Closes(&'static str),
    /// Silently dropped: a `PING` sent after it gets `+PONG`.
    Ignored,
    /// This error reply, and the connection stays open.
    Refused(&'static str),
}

fn long_line(len: usize, first: u8) -> Vec<u8> {
    let mut line = vec![b'7'; len];
    line[0] = first;
    line
}

#[test]
fn table_of_hostile_inputs() {
    let muxd = Muxd::start(&[]);
    let mut bystander = muxd.unix();
    assert_eq!(bystander.cmd(&["ADD", "41"]), Reply::Int(41));

    let garbage: Vec<u8> = (0x80u8..=0xff).chain(b"\n".iter().copied()).collect();
    let cases: Vec<(&str, Vec<u8>, Outcome)> = vec![
        (
            "huge multibulk length",
            b"*99999999999\r\n".to_vec(),
            Outcome::Closes("ERR Protocol error: invalid multibulk length"),
        ),
        (
            "multibulk length above the limit",
            b"*1048577\r\n".to_vec(),
            Outcome::Closes("ERR Protocol error: invalid multibulk length"),
        ),
        (
            "* with a non-number",
            b"*abc\r\n".to_vec(),
            Outcome::Closes("ERR Protocol error: invalid multibulk length"),
        ),
        (
            "* with nothing",
            b"*\r\n".to_vec(),
            Outcome::Closes("ERR Protocol error: invalid multibulk length"),
        ),
        ("*-10 is ignored", b"*-10\r\n".to_vec(), Outcome::Ignored),
        ("empty line is ignored", b"\r\n".to_vec(), Outcome::Ignored),
        (
            "bulk shorter than announced",
            b"*2\r\n$4\r\nECHO\r\n$2\r\nabc\r\n".to_vec(),
            Outcome::Closes("ERR Protocol error: expected '\\r\\n' after bulk data"),
        ),
        (
            "bulk with no crlf after it",
            b"*1\r\n$4\r\nPINGPING".to_vec(),
            Outcome::Closes("ERR Protocol error: expected '\\r\\n' after bulk data"),
        ),
        (
            "header with cr but no lf",
            b"*1\r$4\r\nPING\r\n".to_vec(),
            Outcome::Closes("ERR Protocol error: expected '\\n' after '\\r'"),
        ),
        (
            "empty bulk length",
            b"*1\r\n$\r\n".to_vec(),
            Outcome::Closes("ERR Protocol error: invalid bulk length"),
        ),
        (
            "negative zero bulk length",
            b"*1\r\n$-0\r\n".to_vec(),
            Outcome::Closes("ERR Protocol error: invalid bulk length"),
        ),
        (
            "1 GiB announced bulk",
            b"*1\r\n$1073741824\r\n".to_vec(),
            Outcome::Closes("ERR Protocol error: invalid bulk length"),
        ),
        (
            "NUL byte in an inline command",
            b"PI\0NG\r\n".to_vec(),
            Outcome::Closes("ERR Protocol error: NUL byte in inline request"),
        ),
        (
            "unbalanced quotes in an inline command",
            b"ECHO \"abc\r\n".to_vec(),
            Outcome::Closes("ERR Protocol error: unbalanced quotes in request"),
        ),
        (
            "256 KiB line with no line end",
            long_line(256 * 1024, b'x'),
            Outcome::Closes("ERR Protocol error: too big inline request"),
        ),
        (
            "256 KiB multibulk count with no line end",
            long_line(256 * 1024, b'*'),
            Outcome::Closes("ERR Protocol error: too big mbulk count string"),
        ),
        (
            "binary garbage line",
            garbage,
            Outcome::Refused("ERR unknown command"),
        ),
        (
            "binary garbage after *",
            b"*\xff\xfe\r\n".to_vec(),
            Outcome::Closes("ERR Protocol error: invalid multibulk length"),
        ),
        (
            "a bulk header at top level is an inline word",
            b"$4\r\n".to_vec(),
            Outcome::Refused("ERR unknown command '$4'"),
        ),
    ];
    let mut expected_errors = 0;
    for (name, input, outcome) in &cases {
        let mut c = muxd.tcp();
        // The server may close before taking all of a long input; the reply still comes.
        let _ = c.write_raw(input);
        match outcome {
            Outcome::Closes(error) => {
                expected_errors += 1;
                assert_eq!(c.read_reply(), Reply::Error((*error).into()), "case {name}");
                c.expect_closed();
            }
            Outcome::Ignored => {
                assert_eq!(c.cmd(&["PING"]), Reply::simple("PONG"), "case {name}");
            }
            Outcome::Refused(prefix) => {
                match c.read_reply() {
                    Reply::Error(e) => assert!(e.starts_with(prefix), "case {name}: {e}"),
                    other => panic!("case {name}: {other:?}"),
                }
                assert_eq!(c.cmd(&["PING"]), Reply::simple("PONG"), "case {name}");
            }
        }
    }
    // Nobody else noticed.
    assert_eq!(bystander.cmd(&["SUM"]), Reply::Int(41));
    assert_eq!(
        info_field(&mut bystander, "protocol_errors"),
        expected_errors.to_string()
    );
}

#[test]
fn a_command_with_twenty_thousand_arguments_works() {
    let muxd = Muxd::start(&[]);
    let mut words: Vec<&[u8]> = vec![b"ADD"];
    words.extend(std::iter::repeat_n(&b"1"[..], 20_000));
    for mut c in [muxd.tcp(), muxd.unix()] {
        assert_eq!(c.cmd_bytes(&words), Reply::Int(20_000));
        // Also split in small pieces across many reads.
        let request = util::encode(&words);
        for piece in request.chunks(777) {
            c.send(piece);
        }
        assert_eq!(c.read_reply(), Reply::Int(40_000));
    }
}

#[test]
fn announced_lengths_reserve_no_memory() {
    let muxd = Muxd::start(&[]);
    let pid = muxd.pid();
    let before = util::rss_bytes(pid);
    // 200 clients each announce a bulk of 512 MiB (the largest allowed) and send 10 bytes.
    let mut clients: Vec<Client> = (0..200).map(|_| muxd.tcp()).collect();
    for c in &mut clients {
        c.send(b"*2\r\n$4\r\nECHO\r\n$536870912\r\n0123456789");
    }
    let mut admin = muxd.unix();
    eventually("every client's partial request is buffered", || {
        let list = admin.cmd(&["CLIENT", "LIST"]).text();
        parse_client_list(&list)
            .iter()
            .filter(|r| r["kind"] == "tcp" && r["qbuf"] != "0")
            .count()
            == 200
    });
    let grown = util::rss_bytes(pid).saturating_sub(before);
    // Each client holds its few bytes in a small buffer: far from 200 x 512 MiB.
    assert!(
        grown < 64 * 1024 * 1024,
        "RSS grew by {grown} bytes for 200 announced 512 MiB bulks"
    );
    drop(clients);
    eventually("the clients are gone", || {
        info_field(&mut admin, "connected_clients") == "1"
    });
}

#[test]
fn input_buffer_limit_closes_the_client() {
    let muxd = Muxd::start(&["--max-request-bytes", "1mb"]);
    let mut c = muxd.tcp();
    // A valid request that is bigger than the input buffer allows.
    let mut request = b"*2\r\n$4\r\nECHO\r\n$2000000\r\n".to_vec();
    request.extend(std::iter::repeat_n(b'x', 1_100_000));
    let _ = c.write_raw(&request);
    assert_eq!(
        c.read_reply(),
        Reply::Error("ERR Protocol error: input buffer limit exceeded".into())
    );
    c.expect_closed();
    let mut other = muxd.tcp();
    assert_eq!(info_field(&mut other, "limit_disconnections"), "1");
    assert_eq!(info_field(&mut other, "closed_limit"), "1");
}
