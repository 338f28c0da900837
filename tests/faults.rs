//! Faults: descriptor exhaustion, half-close, abrupt resets, slow and stuck clients, and a
//! graceful stop under load. Each against the real binary.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use util::{Client, Muxd, Reply, eventually, info_field};

#[test]
fn descriptor_exhaustion_does_not_spin_and_accepting_resumes() {
    let muxd = Muxd::start(&[]);
    let pid = muxd.pid();
    let mut existing: Vec<Client> = (0..3).map(|_| muxd.tcp()).collect();
    for c in &mut existing {
        assert_eq!(c.cmd(&["PING"]), Reply::simple("PONG"));
    }
    // Room for exactly two more descriptors.
    let in_use = util::open_fds(pid) as u64;
    util::set_fd_limit(pid, in_use + 2);

    // Ten more connect: the kernel completes them, but only two can be accepted.
    let mut waiting: Vec<Client> = (0..10).map(|_| muxd.tcp()).collect();
    for c in &mut waiting {
        c.send(b"PING\r\n");
    }
    for c in waiting.iter_mut().take(2) {
        assert_eq!(c.read_reply(), Reply::simple("PONG"));
    }
    eventually("accept failed for lack of descriptors", || {
        info_field(&mut existing[0], "accept_fd_exhausted") != "0"
    });
    muxd.wait_for_log("accept failed, pausing accepts");

    // The loop does not spin while the queued connections cannot be accepted.
    let before = util::cpu_seconds(pid);
    thread::sleep(Duration::from_secs(1));
    let used = util::cpu_seconds(pid) - before;
    assert!(
        used < 0.3,
        "the daemon used {used:.2}s of CPU in 1s while out of descriptors"
    );

    // Existing clients are served all along.
    for c in &mut existing {
        assert_eq!(c.cmd(&["ADD", "1"]), Reply::Int(1));
    }
    // Descriptors free up: the queued connections get accepted by themselves.
    existing.truncate(1);
    for c in waiting.iter_mut().skip(2).take(2) {
        assert_eq!(c.read_reply(), Reply::simple("PONG"));
    }
    util::set_fd_limit(pid, 20_000);
    for c in waiting.iter_mut().skip(4) {
        assert_eq!(c.read_reply(), Reply::simple("PONG"));
    }
    muxd.wait_for_log("accepting again after descriptor exhaustion");
    assert_eq!(existing[0].cmd(&["SUM"]), Reply::Int(1));
}

#[test]
fn half_closed_client_gets_every_response_before_the_close() {
    let muxd = Muxd::start(&[]);
    for mut c in [muxd.tcp(), muxd.unix()] {
        let mut batch = Vec::new();
        for i in 0..10_000 {
            batch.extend_from_slice(format!("ECHO {i}\r\n").as_bytes());
        }
        c.send(&batch);
        c.shutdown_write();
        for i in 0..10_000 {
            assert_eq!(c.read_reply(), Reply::bulk(&i.to_string()), "reply {i}");
        }
        c.expect_closed();
    }
}

#[test]
fn reset_in_the_middle_of_a_pipeline_is_cleaned_up() {
    let muxd = Muxd::start(&[]);
    let mut other = muxd.unix();
    assert_eq!(other.cmd(&["ADD", "5"]), Reply::Int(5));
    assert_eq!(info_field(&mut other, "connected_clients"), "1");
    for round in 0..5 {
        let stream = TcpStream::connect(muxd.tcp_addr()).unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut batch = Vec::new();
        for i in 0..20_000 {
            batch.extend_from_slice(format!("ECHO {round}-{i}\r\n").as_bytes());
        }
        // Write part of the pipeline, read a little, then reset (SO_LINGER 0).
        writer.write_all(&batch[..batch.len() / 2]).unwrap();
        let mut some = [0u8; 100];
        let mut reader = &stream;
        reader.set_read_timeout(Some(util::TIMEOUT)).unwrap();
        let _ = reader.read(&mut some).unwrap();
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(writer);
        drop(stream);
    }
    eventually("every reset client left the table", || {
        info_field(&mut other, "connected_clients") == "1"
    });
    assert_eq!(other.cmd(&["SUM"]), Reply::Int(5));
    assert_eq!(info_field(&mut other, "closed_reset"), "5");
}

/// One client sends a request one byte per 100 ms, one never reads its responses, while
/// 100 others run a pipelined load: everyone's responses are correct. (Throughput under
/// this mix is measured by `scripts/bench.sh`, not here.)
#[test]
fn slow_and_stuck_clients_do_not_disturb_the_others() {
    let muxd = Muxd::start(&[
        "--output-high-watermark",
        "1mb",
        "--output-low-watermark",
        "256kb",
    ]);
    let stop = Arc::new(AtomicBool::new(false));

    // The slow client: a request trickling in, one byte per 100 ms.
    let slow_path = muxd.unix_path();
    let slow_stop = Arc::clone(&stop);
    let slow = thread::spawn(move || {
        let mut c = Client::unix(&slow_path);
        let mut rounds = 0;
        // Whole requests only: the stop flag is looked at between them.
        while rounds == 0 || !slow_stop.load(Ordering::Relaxed) {
            for b in b"ECHO slow\r\n" {
                c.send(std::slice::from_ref(b));
                thread::sleep(Duration::from_millis(100));
            }
            assert_eq!(c.read_reply(), Reply::bulk("slow"));
            rounds += 1;
        }
        rounds
    });

    // The stuck client: writes requests, never reads.
    let mut stuck = TcpStream::connect(muxd.tcp_addr()).unwrap();
    stuck
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let stuck_stop = Arc::clone(&stop);
    let stuck_writer = thread::spawn(move || {
        let request = util::encode(&[b"ECHO", &[b's'; 4096]]);
        while !stuck_stop.load(Ordering::Relaxed) {
            // A timed-out write just means the server pushes back, as it should.
            let _ = stuck.write_all(&request);
        }
        stuck
    });

    // A hundred well-behaved clients, each pipelining 16 requests at a time.
    let done = Arc::new(AtomicU64::new(0));
    let addr = muxd.tcp_addr();
    let unix = muxd.unix_path();
    let workers: Vec<_> = (0..100)
        .map(|w| {
            let done = Arc::clone(&done);
            let unix = unix.clone();
            thread::spawn(move || {
                let mut c = if w % 2 == 0 {
                    Client::tcp(addr)
                } else {
                    Client::unix(&unix)
                };
                for round in 0..50 {
                    let mut batch = Vec::new();
                    for i in 0..16 {
                        batch.extend_from_slice(format!("ECHO w{w}-{round}-{i}\r\n").as_bytes());
                    }
                    c.send(&batch);
                    for i in 0..16 {
                        assert_eq!(c.read_reply(), Reply::bulk(&format!("w{w}-{round}-{i}")));
                    }
                    done.fetch_add(16, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(done.load(Ordering::Relaxed), 100 * 50 * 16);
    stop.store(true, Ordering::Relaxed);
    assert!(slow.join().unwrap() >= 1);
    drop(stuck_writer.join().unwrap());
    let mut admin = muxd.tcp();
    assert_eq!(info_field(&mut admin, "protocol_errors"), "0");
    assert_ne!(info_field(&mut admin, "output_paused_clients"), "0");
}

/// SIGTERM while 100 clients pipeline: every request the server handled is answered in
/// full, no client sees a truncated reply, socket files go, exit status 0.
#[test]
fn graceful_stop_under_load_loses_nothing() {
    let mut muxd = Muxd::start(&["--shutdown-timeout", "10"]);
    let path = muxd.unix_path();
    let addr = muxd.tcp_addr();
    let started = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..100)
        .map(|w| {
            let path = path.clone();
            let started = Arc::clone(&started);
            thread::spawn(move || {
                let mut c = if w % 2 == 0 {
                    Client::tcp(addr)
                } else {
                    Client::unix(&path)
                };
                let mut received = 0u64;
                let mut sent = 0u64;
                started.fetch_add(1, Ordering::Relaxed);
                loop {
                    let mut batch = Vec::new();
                    for i in 0..16 {
                        batch.extend_from_slice(&util::encode(&[
                            b"ECHO",
                            format!("{w}:{}", sent + i).as_bytes(),
                        ]));
                    }
                    if c.write_raw(&batch).is_err() {
                        break;
                    }
                    sent += 16;
                    let mut closed = false;
                    while received < sent {
                        match c.try_read_reply() {
                            Ok(reply) => {
                                assert_eq!(reply, Reply::bulk(&format!("{w}:{received}")));
                                received += 1;
                            }
                            Err(_) => {
                                closed = true;
                                break;
                            }
                        }
                    }
                    if closed {
                        break;
                    }
                }
                // Whatever arrived before the close was whole: nothing half-read.
                assert_eq!(c.pending_bytes(), 0, "client {w} saw a truncated reply");
                received
            })
        })
        .collect();
    eventually("all clients are running", || {
        started.load(Ordering::Relaxed) == 100
    });
    let mut admin = muxd.tcp();
    let mut admin_requests = 0u64;
    eventually("the load is flowing", || {
        admin_requests += 1;
        info_field(&mut admin, "total_commands_processed")
            .parse::<u64>()
            .unwrap()
            > 20_000
    });
    drop(admin);
    muxd.signal(libc::SIGTERM);
    let received: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    let status = muxd.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{}", muxd.stderr());
    assert!(!path.exists());
    muxd.wait_for_log("stopped commands_processed=");
    let log = muxd.stderr();
    let processed: u64 = log
        .split("stopped commands_processed=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("processed count in the log");
    // Every request the server handled was answered in full: the clients' ECHOs and the
    // admin's INFOs, nothing lost.
    assert_eq!(processed, received + admin_requests);
    assert!(received > 20_000);
}

/// A client's turn ends after 1,024 requests so that others are served in between; the
/// rest of its pipeline is handled in the following turns, in order.
#[test]
fn a_long_pipeline_yields_its_turn_and_stays_in_order() {
    let muxd = Muxd::start(&[]);
    let mut flooder = muxd.tcp();
    let mut batch = Vec::new();
    for i in 0..10_000 {
        batch.extend_from_slice(format!("ECHO {i}\r\n").as_bytes());
    }
    flooder.send(&batch);
    let mut other = muxd.unix();
    assert_eq!(other.cmd(&["PING"]), Reply::simple("PONG"));
    for i in 0..10_000 {
        assert_eq!(flooder.read_reply(), Reply::bulk(&i.to_string()));
    }
    let yields: u64 = info_field(&mut other, "turns_yielded").parse().unwrap();
    assert!(
        yields >= 9,
        "10,000 requests in at most 1,024 a turn: {yields} yields"
    );
}
