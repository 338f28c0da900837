//! Socket activation, with the real `systemd-socket-activate` (Debian package `systemd`):
//! it opens a TCP and a Unix socket, waits for a first connection, then execs muxd with
//! them as `LISTEN_FDS`.

mod util;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread;

use util::{Client, Muxd, Reply, TIMEOUT, eventually, free_port, require_tool};

/// Starts muxd under `systemd-socket-activate` listening on `tcp` and `unix`, muxd given
/// `args`. The first connection (over the Unix socket, once its file exists) is what
/// makes it exec muxd; that client's PING is answered once muxd runs.
fn start_activated(tcp: SocketAddr, unix: &Path, args: &[&str]) -> Muxd {
    let dir = tempfile::tempdir().unwrap();
    let wrapper: Vec<String> = [
        "systemd-socket-activate",
        "-l",
        &tcp.to_string(),
        "-l",
        &unix.display().to_string(),
        "--fdname=web:local",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let path = unix.to_owned();
    let first = thread::spawn(move || {
        // The file exists from bind, connections succeed from listen on: an attempt
        // that succeeds (and is dropped) is the one that makes it exec muxd.
        eventually("systemd-socket-activate listens on the Unix socket", || {
            std::os::unix::net::UnixStream::connect(&path).is_ok()
        });
        let mut client = Client::unix(&path);
        client.cmd(&["PING"])
    });
    let args = args.iter().map(|s| s.to_string()).collect();
    let muxd = Muxd::start_via(dir, &wrapper, args, |_| {});
    assert_eq!(first.join().unwrap(), Reply::simple("PONG"));
    muxd
}

#[test]
fn serves_exactly_the_inherited_sockets_and_leaves_their_file() {
    if !require_tool("systemd-socket-activate") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let unix: PathBuf = work.path().join("activated.sock");
    let tcp: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut muxd = start_activated(tcp, &unix, &["--supervised", "no"]);

    assert_eq!(
        muxd.ready,
        [format!("tcp://{tcp}"), format!("unix://{}", unix.display())],
        "READY lists the inherited sockets, in the order passed"
    );
    muxd.wait_for_log(&format!("listening on tcp://{tcp} inherited fd=3 name=web"));
    muxd.wait_for_log(&format!(
        "listening on unix://{} inherited fd=4 name=local",
        unix.display()
    ));
    assert_eq!(muxd.tcp().cmd(&["PING"]), Reply::simple("PONG"));
    let mut local = Client::unix(&unix);
    assert_eq!(local.cmd(&["ADD", "2", "3"]), Reply::Int(5));
    drop(local);
    muxd.signal(libc::SIGTERM);
    assert!(muxd.wait_exit(TIMEOUT).success());
    assert!(
        std::fs::symlink_metadata(&unix).is_ok(),
        "muxd must not remove a socket file it did not create"
    );
}

#[test]
fn a_listener_flag_naming_an_inherited_socket_uses_it() {
    if !require_tool("systemd-socket-activate") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let unix = work.path().join("activated.sock");
    let own = work.path().join("own.sock");
    let tcp: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let unix_flag = unix.display().to_string();
    let own_flag = own.display().to_string();
    // The inherited Unix socket by name, a socket of its own, and not the inherited TCP
    // socket: that one is closed, with a warning.
    let mut muxd = start_activated(
        tcp,
        &unix,
        &[
            "--unix",
            &own_flag,
            "--unix",
            &unix_flag,
            "--supervised",
            "no",
        ],
    );
    assert_eq!(
        muxd.ready,
        [format!("unix://{own_flag}"), format!("unix://{unix_flag}")]
    );
    muxd.wait_for_log("inherited socket named by no listener, closing it");
    assert_eq!(Client::unix(&own).cmd(&["PING"]), Reply::simple("PONG"));
    assert_eq!(Client::unix(&unix).cmd(&["PING"]), Reply::simple("PONG"));
    eventually("the unnamed inherited TCP socket is closed", || {
        std::net::TcpStream::connect_timeout(&tcp, TIMEOUT).is_err()
    });

    muxd.signal(libc::SIGTERM);
    assert!(muxd.wait_exit(TIMEOUT).success());
    assert!(unix.exists(), "the inherited socket's file stays");
    assert!(!own.exists(), "muxd's own socket file is removed");
}

#[test]
fn a_passed_descriptor_that_is_not_a_listening_socket_is_refused() {
    // A count that is not one: refused with a clear message.
    let stderr = refused_start("LISTEN_FDS=many", "");
    assert!(
        stderr.contains("socket activation: LISTEN_FDS=\"many\" is not a count"),
        "{stderr}"
    );
    // Descriptor 3 open on a regular file: refused, by number.
    let stderr = refused_start("LISTEN_FDS=1", "3</dev/null");
    assert!(stderr.contains("inherited descriptor 3"), "{stderr}");
}

/// Runs muxd from a shell that passes it `LISTEN_PID` (its own pid, kept by `exec`),
/// `env` and the descriptors `redirect` opens; muxd must refuse to start. Its stderr.
#[track_caller]
fn refused_start(env: &str, redirect: &str) -> String {
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "LISTEN_PID=$$ {env} exec {} --supervised no {redirect}",
            util::muxd_bin()
        ))
        .output()
        .unwrap();
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn an_inherited_ipv6_socket_is_served() {
    if !require_tool("systemd-socket-activate") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let unix = work.path().join("activated.sock");
    let tcp: SocketAddr = format!("[::1]:{}", free_port()).parse().unwrap();
    let muxd = start_activated(tcp, &unix, &["--supervised", "no"]);
    assert_eq!(muxd.ready[0], format!("tcp://{tcp}"));
    let mut client = Client::tcp(tcp);
    let info = util::parse_client_list(&client.cmd(&["CLIENT", "INFO"]).text()).remove(0);
    assert_eq!(info["laddr"], tcp.to_string());
}
