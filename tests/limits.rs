//! Limits: the client limit, output backpressure with its watermarks, Redis's pipelining
//! stresser, and the idle timeout. Each against the real binary.

mod util;

use std::io::Write;
use std::thread;
use std::time::Duration;

use util::{Client, Muxd, Reply, eventually, info_field, parse_client_list};

#[test]
fn connections_past_max_clients_get_an_error_and_are_closed() {
    let muxd = Muxd::start(&["--max-clients", "3"]);
    muxd.wait_for_log("max_clients=3");
    let mut held: Vec<Client> = (0..3).map(|_| muxd.tcp()).collect();
    for c in &mut held {
        assert_eq!(c.cmd(&["ADD", "7"]), Reply::Int(7));
    }
    for mut extra in [muxd.tcp(), muxd.unix()] {
        assert_eq!(
            extra.read_reply(),
            Reply::Error("ERR max number of clients reached".into())
        );
        extra.expect_closed();
    }
    // The clients already in the table noticed nothing.
    for c in &mut held {
        assert_eq!(c.cmd(&["SUM"]), Reply::Int(7));
    }
    assert_eq!(info_field(&mut held[0], "rejected_connections"), "2");
    assert_eq!(info_field(&mut held[0], "maxclients"), "3");
    assert_eq!(
        held[0].cmd(&["CONFIG", "GET", "maxclients"]),
        Reply::Array(vec![Reply::bulk("maxclients"), Reply::bulk("3")])
    );
    // Once one leaves, a newcomer gets in.
    drop(held.pop());
    eventually("a slot frees up", || {
        let mut c = muxd.tcp();
        matches!(c.try_read_ping(), Some(true))
    });
}

#[test]
fn a_client_that_never_reads_is_paused_and_resumes_by_itself() {
    let muxd = Muxd::start(&[
        "--output-high-watermark",
        "256kb",
        "--output-low-watermark",
        "64kb",
    ]);
    const REQUESTS: usize = 20_000;
    let payload = vec![b'p'; 1000];
    let request = util::encode(&[b"ECHO", &payload]);
    let mut stuck = muxd.tcp();
    stuck.cmd(&["CLIENT", "SETNAME", "stuck"]);
    let mut writer = stuck.tcp_stream().expect("tcp").try_clone().expect("clone");
    let sender = thread::spawn(move || {
        for _ in 0..REQUESTS {
            writer.write_all(&request).expect("write");
        }
    });
    // The server stops reading once a quarter MiB of responses waits unread...
    let mut admin = muxd.unix();
    eventually("the client is paused", || {
        info_field(&mut admin, "output_paused_clients") != "0"
    });
    let list = admin.cmd(&["CLIENT", "LIST"]).text();
    let row = parse_client_list(&list)
        .into_iter()
        .find(|r| r["name"] == "stuck")
        .expect("stuck client listed");
    let obuf: usize = row["obuf"].parse().unwrap();
    assert!(
        obuf <= 256 * 1024 + 2 * 1024,
        "output held for the client stays near the high watermark: {obuf}"
    );
    // ...and every response arrives, in order, once it reads.
    for i in 0..REQUESTS {
        match stuck.read_reply() {
            Reply::Bulk(b) if b.len() == payload.len() => {}
            other => panic!("reply {i}: {other:?}"),
        }
    }
    sender.join().unwrap();
    assert_eq!(stuck.cmd(&["PING"]), Reply::simple("PONG"));
}

/// Redis's "pipelining stresser": 100,000 requests all written before any response is
/// read must complete with the default watermarks.
#[test]
fn pipelining_stresser_completes() {
    let muxd = Muxd::start(&[]);
    for mut c in [muxd.tcp(), muxd.unix()] {
        let mut batch = Vec::new();
        for i in 0..100_000 {
            batch.extend_from_slice(&util::encode(&[b"ECHO", format!("value:{i}").as_bytes()]));
        }
        c.send(&batch);
        for i in 0..100_000 {
            assert_eq!(c.read_reply(), Reply::bulk(&format!("value:{i}")));
        }
    }
}

#[test]
fn idle_clients_are_closed_after_the_timeout_and_active_ones_are_not() {
    let muxd = Muxd::start(&["--timeout", "1"]);
    let mut idle = muxd.tcp();
    let mut idle_unix = muxd.unix();
    assert_eq!(idle.cmd(&["PING"]), Reply::simple("PONG"));
    assert_eq!(idle_unix.cmd(&["PING"]), Reply::simple("PONG"));
    let mut active = muxd.tcp();
    // Active for 2.5 s, well past the timeout: a request every 200 ms.
    for _ in 0..12 {
        assert_eq!(active.cmd(&["PING"]), Reply::simple("PONG"));
        thread::sleep(Duration::from_millis(200));
    }
    idle.expect_closed();
    idle_unix.expect_closed();
    assert_eq!(active.cmd(&["PING"]), Reply::simple("PONG"));
    assert_eq!(info_field(&mut active, "closed_idle_timeout"), "2");
    assert_eq!(
        active.cmd(&["CONFIG", "GET", "timeout"]),
        Reply::Array(vec![Reply::bulk("timeout"), Reply::bulk("1")])
    );
}
