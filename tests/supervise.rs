//! `--supervised`: systemd's notifications, received on a `NOTIFY_SOCKET` datagram socket
//! the test holds, as systemd would.

mod util;

use std::time::{Duration, Instant};

use util::notify::NotifySocket;
use util::{Client, Muxd, TIMEOUT};

fn start(notify: &NotifySocket, env: &[(&str, String)], extra: &[&str]) -> Muxd {
    Muxd::start_adjusted(extra, |command| {
        command.env("NOTIFY_SOCKET", &notify.env);
        command
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID");
        command.envs(env.iter().map(|(k, v)| (k, v)));
    })
}

#[test]
fn ready_after_listeners_bound_then_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::at_path(dir.path());
    let mut muxd = start(&notify, &[], &[]);
    let ready = notify.next();
    let status = format!("STATUS=serving {}", muxd.ready.join(" "));
    assert_eq!(ready, format!("READY=1\n{status}\n"));
    // Every listener named is bound and served.
    assert_eq!(muxd.tcp().cmd(&["PING"]), util::Reply::simple("PONG"));
    assert_eq!(muxd.unix().cmd(&["PING"]), util::Reply::simple("PONG"));

    muxd.signal(libc::SIGTERM);
    let stopping = notify.next_not_watchdog();
    assert!(stopping.starts_with("STOPPING=1\n"), "{stopping:?}");
    assert!(muxd.wait_exit(TIMEOUT).success());
}

#[test]
fn abstract_notify_socket() {
    let notify = NotifySocket::abstract_name();
    let _muxd = start(&notify, &[], &[]);
    assert!(notify.next().starts_with("READY=1\n"));
}

#[test]
fn watchdog_pings_at_half_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::at_path(dir.path());
    // WATCHDOG_USEC = 300 ms: a ping is due every 150 ms.
    let _muxd = start(&notify, &[("WATCHDOG_USEC", "300000".into())], &[]);
    assert!(notify.next().starts_with("READY=1\n"));
    let mut at = Vec::new();
    while at.len() < 7 {
        if notify.next() == "WATCHDOG=1" {
            at.push(Instant::now());
        }
    }
    // Six intervals. The pings keep to a 150 ms grid (one late ping is followed by one
    // on time, not by a burst), so over six the mean is 150 ms give or take scheduling:
    // not faster than asked, and not so slow that systemd, waiting 300 ms, gives up.
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    let mean = (at[6] - at[0]) / 6;
    assert!(
        mean >= Duration::from_millis(110) && mean <= Duration::from_millis(280),
        "pings every {mean:?} on average: {gaps:?}"
    );
}

#[test]
fn watchdog_for_another_pid_is_not_ours() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::at_path(dir.path());
    let mut muxd = start(
        &notify,
        &[
            ("WATCHDOG_USEC", "20000".into()),
            ("WATCHDOG_PID", "1".into()),
        ],
        &[],
    );
    assert!(notify.next().starts_with("READY=1\n"));
    // A watchdog at 20 ms would have pinged several times by the time a request is
    // answered and the server stopped; the next message must be STOPPING.
    let mut client = Client::tcp(muxd.tcp_addr());
    for _ in 0..20 {
        assert_eq!(client.cmd(&["PING"]), util::Reply::simple("PONG"));
        // Not a wait for the server: time for a wrongly armed watchdog to fire.
        std::thread::sleep(Duration::from_millis(5));
    }
    muxd.signal(libc::SIGTERM);
    assert!(notify.next().starts_with("STOPPING=1\n"));
    muxd.wait_exit(TIMEOUT);
}

#[test]
fn supervised_no_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::at_path(dir.path());
    let mut muxd = start(
        &notify,
        &[("WATCHDOG_USEC", "20000".into())],
        &["--supervised", "no"],
    );
    muxd.signal(libc::SIGTERM);
    assert!(muxd.wait_exit(TIMEOUT).success());
    notify
        .socket
        .set_nonblocking(true)
        .expect("non-blocking notify socket");
    let mut buf = [0u8; 64];
    assert!(
        notify.socket.recv(&mut buf).is_err(),
        "nothing may have been sent"
    );
}
