//! The daemon's life: many clients at once, CLIENT LIST over them, and a graceful stop on
//! SIGTERM/SIGINT that removes the socket files and exits 0.

mod util;

use std::time::Duration;

use util::{Muxd, Reply, eventually, parse_client_list};

#[test]
fn two_hundred_concurrent_clients_each_keep_their_own_total() {
    let muxd = Muxd::start(&[]);
    let tcp = muxd.tcp_addr();
    let unix = muxd.unix_path();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let unix = unix.clone();
            std::thread::spawn(move || {
                let mut clients: Vec<_> = (0..25)
                    .map(|i| {
                        if i % 2 == 0 {
                            util::Client::tcp(tcp)
                        } else {
                            util::Client::unix(&unix)
                        }
                    })
                    .collect();
                // Interleave: every client adds its own number, ten rounds.
                for round in 1..=10i64 {
                    for (i, c) in clients.iter_mut().enumerate() {
                        let n = (t * 100 + i) as i64;
                        assert_eq!(c.cmd(&["ADD", &n.to_string()]), Reply::Int(n * round));
                    }
                }
                for (i, c) in clients.iter_mut().enumerate() {
                    let n = (t * 100 + i) as i64;
                    assert_eq!(c.cmd(&["SUM"]), Reply::Int(n * 10));
                }
                clients
            })
        })
        .collect();
    let clients: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(clients.len(), 200);
    let mut admin = muxd.tcp();
    let list = admin.cmd(&["CLIENT", "LIST"]).text();
    assert_eq!(parse_client_list(&list).len(), 201);
    assert_eq!(util::info_field(&mut admin, "connected_clients"), "201");
    drop(clients);
    eventually("all clients gone from the table", || {
        util::info_field(&mut admin, "connected_clients") == "1"
    });
}

#[test]
fn sigterm_closes_clients_removes_socket_file_and_exits_zero() {
    let mut muxd = Muxd::start(&[]);
    let path = muxd.unix_path();
    let mut c = muxd.tcp();
    assert_eq!(c.cmd(&["PING"]), Reply::simple("PONG"));
    let mut u = muxd.unix();
    assert_eq!(u.cmd(&["PING"]), Reply::simple("PONG"));
    muxd.signal(libc::SIGTERM);
    let status = muxd.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{}", muxd.stderr());
    assert!(!path.exists(), "socket file removed");
    c.expect_closed();
    u.expect_closed();
    muxd.wait_for_log("received SIGTERM");
    muxd.wait_for_log("stopped");
}

#[test]
fn sigint_stops_gracefully_too() {
    let mut muxd = Muxd::start(&[]);
    let path = muxd.unix_path();
    muxd.signal(libc::SIGINT);
    assert_eq!(muxd.wait_exit(Duration::from_secs(15)).code(), Some(0));
    assert!(!path.exists());
}

#[test]
fn responses_owed_at_sigterm_are_delivered() {
    let mut muxd = Muxd::start(&[]);
    let mut c = muxd.unix();
    // A big response the client has not read yet when the signal arrives.
    let payload = vec![b'z'; 8 * 1024 * 1024];
    c.send(&util::encode(&[b"ECHO", &payload]));
    // Make sure the request was handled before signalling: another client's round trip
    // after this one's request was fully sent proves nothing, so wait for the counter.
    let mut admin = muxd.tcp();
    eventually("the ECHO was processed", || {
        util::info_field(&mut admin, "total_commands_processed")
            .parse::<u64>()
            .unwrap()
            >= 1
    });
    drop(admin);
    muxd.signal(libc::SIGTERM);
    assert_eq!(c.read_reply(), Reply::Bulk(payload));
    c.expect_closed();
    assert_eq!(muxd.wait_exit(Duration::from_secs(15)).code(), Some(0));
}

/// A client that never reads what it is owed cannot hold the stop up past
/// `--shutdown-timeout`: the daemon closes it and still exits 0.
#[test]
fn shutdown_timeout_bounds_the_drain() {
    let mut muxd = Muxd::start(&["--shutdown-timeout", "0.5"]);
    let path = muxd.unix_path();
    let stuck = muxd.tcp();
    let payload = vec![b'q'; 4 * 1024 * 1024];
    let mut batch = Vec::new();
    for _ in 0..8 {
        batch.extend_from_slice(&util::encode(&[b"ECHO", &payload]));
    }
    // Written from a thread: the server stops reading once the output piles up.
    let mut writer = stuck.tcp_stream().unwrap().try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let _ = std::io::Write::write_all(&mut writer, &batch);
    });
    // Every request was read and handled: far more is owed than socket buffers hold, and
    // the client sends nothing more.
    let mut admin = muxd.unix();
    eventually("all eight requests were handled", || {
        util::info_field(&mut admin, "total_commands_processed")
            .parse::<u64>()
            .unwrap()
            >= 8
    });
    sender.join().unwrap();
    let list = admin.cmd(&["CLIENT", "LIST"]).text();
    let owed: u64 = parse_client_list(&list)
        .iter()
        .find(|r| r["kind"] == "tcp")
        .map(|r| r["obuf"].parse().unwrap())
        .unwrap();
    assert!(owed > 1024 * 1024, "only {owed} bytes owed");
    drop(admin);
    muxd.signal(libc::SIGTERM);
    let status = muxd.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
    assert!(!path.exists());
    muxd.wait_for_log("shutdown timeout reached");
    drop(stuck);
}
