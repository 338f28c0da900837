//! The PROXY protocol against the real binary: trusted proxies' headers (v1 and v2) give
//! clients their addresses; hostile or missing headers close only their own connection;
//! a header from an untrusted peer is refused, never believed.

mod util;

use std::collections::HashMap;
use std::time::Duration;

use util::{Client, Muxd, Reply, TIMEOUT, parse_client_list};

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// A version 2 header: command (0x20 LOCAL, 0x21 PROXY), family, block (addresses, TLVs).
fn v2(cmd: u8, family: u8, block: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[cmd, family]);
    h.extend_from_slice(&(block.len() as u16).to_be_bytes());
    h.extend_from_slice(block);
    h
}

/// A TCP over IPv4 address block: 192.0.2.1:50220 to 198.51.100.2:6379.
const V4_BLOCK: [u8; 12] = [192, 0, 2, 1, 198, 51, 100, 2, 0xC4, 0x2C, 0x18, 0xEB];

fn client_info(client: &mut Client) -> HashMap<String, String> {
    let text = client.cmd(&["CLIENT", "INFO"]).text();
    parse_client_list(&text).remove(0)
}

/// Expects the connection to get `-ERR Protocol error: …` mentioning `what`, then close.
#[track_caller]
fn expect_refused(client: &mut Client, what: &str) {
    match client.try_read_reply() {
        Ok(Reply::Error(e)) => {
            assert!(e.starts_with("ERR Protocol error: "), "{e}");
            assert!(e.contains(what), "{e:?} should mention {what:?}");
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
    client.expect_closed();
}

/// A client connected before and served after: nobody else notices.
#[track_caller]
fn bystander_still_served(bystander: &mut Client) {
    assert_eq!(bystander.cmd(&["PING"]), Reply::simple("PONG"));
}

#[test]
fn v1_header_gives_the_clients_addresses() {
    let muxd = Muxd::start(&["--proxy-from", "127.0.0.1"]);
    let mut proxied = muxd.tcp();
    let own = proxied.tcp_stream().unwrap().local_addr().unwrap();
    proxied.send(b"PROXY TCP4 192.0.2.1 198.51.100.2 50220 6379\r\n");
    let info = client_info(&mut proxied);
    assert_eq!(info["addr"], "192.0.2.1:50220");
    assert_eq!(info["laddr"], "198.51.100.2:6379");
    assert_eq!(
        info["proxy"],
        own.to_string(),
        "the proxy's own address beside"
    );

    // Seen by others in CLIENT LIST, matched by CLIENT KILL ADDR and LADDR.
    let mut admin = muxd.tcp();
    admin.send(b"PROXY TCP6 2001:db8::7 ::1 4000 7379\r\n");
    let list = parse_client_list(&admin.cmd(&["CLIENT", "LIST"]).text());
    assert!(
        list.iter().any(|c| c["addr"] == "192.0.2.1:50220"),
        "{list:?}"
    );
    assert!(
        list.iter()
            .any(|c| c["addr"] == "[2001:db8::7]:4000" && c["laddr"] == "[::1]:7379")
    );
    assert_eq!(
        admin.cmd(&[
            "CLIENT",
            "KILL",
            "LADDR",
            "198.51.100.2:6379",
            "ADDR",
            "192.0.2.1:50220"
        ]),
        Reply::Int(1)
    );
    proxied.expect_closed();
}

#[test]
fn v2_headers_local_and_unknown() {
    let muxd = Muxd::start_adjusted(&["--proxy-from", "127.0.0.0/8"], |c| {
        c.env("RUST_LOG", "debug");
    });
    let mut c = muxd.tcp();
    let mut h = v2(0x21, 0x11, &V4_BLOCK);
    // A NOOP TLV after the addresses, and the first request in the same segment.
    h.extend_from_slice(&[0x04, 0, 1, 0]);
    let n = h.len() as u16 - 16;
    h[14..16].copy_from_slice(&n.to_be_bytes());
    h.extend_from_slice(b"PING\r\n");
    c.send(&h);
    assert_eq!(c.read_reply(), Reply::simple("PONG"));
    assert_eq!(client_info(&mut c)["addr"], "192.0.2.1:50220");
    muxd.wait_for_log("proxy header accepted client=");

    // LOCAL (HAProxy's health checks) and UNKNOWN keep the connection's own addresses.
    for header in [
        v2(0x20, 0x00, &[]),
        v2(0x21, 0x00, &[]),
        b"PROXY UNKNOWN\r\n".to_vec(),
    ] {
        let mut c = muxd.tcp();
        let own = c.tcp_stream().unwrap().local_addr().unwrap();
        c.send(&header);
        let info = client_info(&mut c);
        assert_eq!(info["addr"], own.to_string());
        assert!(!info.contains_key("proxy"), "{info:?}");
    }
}

#[test]
fn header_in_pieces_over_a_unix_socket() {
    let muxd = Muxd::start(&["--proxy-from", "unix"]);
    let mut c = muxd.unix();
    let h = v2(0x21, 0x11, &V4_BLOCK);
    for piece in h.chunks(5) {
        c.send(piece);
        // Give each piece its own segment (not a wait for the server).
        std::thread::sleep(Duration::from_millis(2));
    }
    let info = client_info(&mut c);
    assert_eq!(info["addr"], "192.0.2.1:50220");
    assert!(info["proxy"].ends_with("muxd.sock:0"), "{info:?}");
    // A TCP peer is not trusted here: served as usual.
    assert_eq!(muxd.tcp().cmd(&["PING"]), Reply::simple("PONG"));
}

#[test]
fn hostile_headers_close_only_their_connection() {
    let muxd = Muxd::start(&["--proxy-from", "127.0.0.1", "--proxy-timeout", "0.3"]);
    let mut bystander = muxd.tcp();
    bystander.send(b"PROXY UNKNOWN\r\n");
    let huge_v2 = {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[0x21, 0x11, 0xFF, 0xFF]);
        h
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "wrong signature",
            b"PING\r\n".to_vec(),
            "not a PROXY protocol header",
        ),
        (
            "v1 too long",
            [&b"PROXY UNKNOWN "[..], &[b'x'; 300]].concat(),
            "too long",
        ),
        (
            "v1 bad address",
            b"PROXY TCP4 1.2.3 4.5.6.7 1 2\r\n".to_vec(),
            "v1",
        ),
        (
            "v1 lf only",
            b"PROXY TCP4 1.2.3.4 4.5.6.7 1 2\n".to_vec(),
            "v1",
        ),
        ("v2 length past the bound", huge_v2, "too long"),
        ("v2 version 1", v2(0x11, 0x11, &V4_BLOCK), "version"),
        ("v2 udp", v2(0x21, 0x12, &V4_BLOCK), "family"),
        ("v2 block too short", v2(0x21, 0x21, &V4_BLOCK), "too short"),
        (
            "v2 tlv past the end",
            v2(0x21, 0x11, &[&V4_BLOCK[..], &[4, 0, 200, 0]].concat()),
            "TLV",
        ),
        (
            "v2 bad crc",
            v2(
                0x21,
                0x11,
                &[&V4_BLOCK[..], &[3, 0, 4, 1, 2, 3, 4]].concat(),
            ),
            "TLV",
        ),
        ("binary garbage", vec![0xFF; 64], "not a PROXY"),
    ];
    for (name, bytes, what) in cases {
        let mut c = muxd.tcp();
        c.send(&bytes);
        eprintln!("case: {name}");
        expect_refused(&mut c, what);
        bystander_still_served(&mut bystander);
    }

    // Truncated: the proxy closes inside its header.
    let mut c = muxd.tcp();
    c.send(b"PROXY TCP4 192.0.2.1 19");
    c.shutdown_write();
    expect_refused(&mut c, "truncated");

    // A trusted peer that never sends its header is closed at the timeout, and logged.
    let mut silent = muxd.tcp();
    silent.set_read_timeout(TIMEOUT);
    expect_refused(&mut silent, "no PROXY header in time");
    muxd.wait_for_log("proxy header refused, closing client=");
    // Half a header, then silence: the same.
    let mut slow = muxd.tcp();
    slow.send(b"\r\n\r\n\0\r\nQU");
    expect_refused(&mut slow, "in time");

    bystander_still_served(&mut bystander);
    drop(slow);
    // Counted once closed: a refused connection with unread bytes lingers a moment.
    util::eventually("both late headers counted", || {
        util::info_field(&mut bystander, "closed_proxy_timeout") == "2"
    });
    assert_eq!(util::info_field(&mut bystander, "protocol_errors"), "12");
}

#[test]
fn untrusted_peers_are_served_and_their_headers_refused() {
    let muxd = Muxd::start(&["--proxy-from", "10.0.0.0/8"]);
    // Plain clients, TCP and Unix, whole requests and inline ones, notice nothing.
    assert_eq!(muxd.tcp().cmd(&["PING"]), Reply::simple("PONG"));
    assert_eq!(muxd.unix().cmd(&["ECHO", "x"]), Reply::bulk("x"));
    let mut inline = muxd.tcp();
    inline.send(b"\r\nPING\r\n");
    assert_eq!(inline.read_reply(), Reply::simple("PONG"));
    // A request cut short, then closed: served as usual (nothing to answer).
    let mut cut = muxd.tcp();
    cut.send(b"\r\n");
    cut.shutdown_write();
    cut.expect_closed();

    for header in [
        b"PROXY TCP4 192.0.2.1 198.51.100.2 50220 6379\r\nPING\r\n".to_vec(),
        v2(0x21, 0x11, &V4_BLOCK),
        v2(0x20, 0x00, &[]),
    ] {
        let mut c = muxd.tcp();
        c.send(&header);
        expect_refused(&mut c, "untrusted");
    }
    let mut c = muxd.unix();
    c.send(b"PROXY UNKNOWN\r\n");
    expect_refused(&mut c, "untrusted");
    muxd.wait_for_log("error=Protocol error: PROXY header from an untrusted peer");
}

#[test]
fn without_proxy_from_a_header_is_just_an_unknown_command() {
    // The PROXY protocol is off: bytes are RESP and nothing else, as in Redis.
    let muxd = Muxd::start(&[]);
    let mut c = muxd.tcp();
    c.send(b"PROXY TCP4 192.0.2.1 198.51.100.2 50220 6379\r\n");
    match c.read_reply() {
        Reply::Error(e) => assert!(e.starts_with("ERR unknown command 'PROXY'"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.cmd(&["PING"]), Reply::simple("PONG"));
}
