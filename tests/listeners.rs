//! Master sockets: TCP (IPv4, IPv6) and Unix side by side, the READY line, socket file
//! modes, stale files replaced, live sockets and non-socket paths refused.

mod util;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use util::{Client, Muxd, Reply, run_failing};

#[test]
fn serves_tcp_and_unix_at_once_and_ready_line_keeps_flag_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.sock");
    let b = dir.path().join("b.sock");
    let args: Vec<String> = [
        "--unix",
        a.to_str().unwrap(),
        "--tcp",
        "127.0.0.1:0",
        "--unix",
        b.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let muxd = Muxd::start_args(dir, args);
    assert_eq!(muxd.ready.len(), 3, "{:?}", muxd.ready);
    assert_eq!(muxd.ready[0], format!("unix://{}", a.display()));
    assert!(muxd.ready[1].starts_with("tcp://127.0.0.1:"));
    assert_ne!(muxd.ready[1], "tcp://127.0.0.1:0", "port 0 is resolved");
    assert_eq!(muxd.ready[2], format!("unix://{}", b.display()));
    for path in [&a, &b] {
        let mut c = Client::unix(path);
        assert_eq!(c.cmd(&["PING"]), Reply::simple("PONG"));
    }
    assert_eq!(muxd.tcp().cmd(&["PING"]), Reply::simple("PONG"));
    muxd.wait_for_log(&format!("listening on unix://{}", a.display()));
    muxd.wait_for_log("listening on tcp://127.0.0.1:");
}

#[test]
fn ipv6_loopback() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipping: no IPv6 loopback here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let muxd = Muxd::start_args(
        dir,
        vec![
            "--tcp".into(),
            "[::1]:0".into(),
            "--tcp".into(),
            "127.0.0.1:0".into(),
        ],
    );
    assert!(
        muxd.ready[0].starts_with("tcp://[::1]:"),
        "{:?}",
        muxd.ready
    );
    let addr: std::net::SocketAddr = muxd.ready[0]
        .strip_prefix("tcp://")
        .unwrap()
        .parse()
        .unwrap();
    let mut c = Client::tcp(addr);
    assert_eq!(c.cmd(&["PING"]), Reply::simple("PONG"));
    let info = c.cmd(&["CLIENT", "INFO"]).text();
    assert!(info.contains("addr=[::1]:"), "{info}");
}

#[test]
fn unix_socket_mode_defaults_to_owner_only_and_is_settable() {
    let muxd = Muxd::start(&[]);
    let meta = std::fs::metadata(muxd.unix_path()).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    drop(muxd);

    let muxd = Muxd::start(&["--unix-mode", "660"]);
    let meta = std::fs::metadata(muxd.unix_path()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
}

#[test]
fn stale_socket_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stale.sock");
    // A socket file nobody accepts on: what a crashed server leaves behind.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let muxd = Muxd::start_args(dir, vec!["--unix".into(), path.display().to_string()]);
    muxd.wait_for_log("removing stale socket file");
    let mut c = muxd.unix();
    assert_eq!(c.cmd(&["PING"]), Reply::simple("PONG"));
}

#[test]
fn live_socket_is_refused_and_the_live_server_keeps_serving() {
    let live = Muxd::start(&[]);
    let path = live.unix_path();
    let (status, stdout, stderr) = run_failing(&["--unix", path.to_str().unwrap()]);
    assert!(!status.success());
    assert!(!stdout.contains("READY"), "{stdout}");
    assert!(
        stderr.contains("another server is accepting connections on it"),
        "{stderr}"
    );
    assert!(path.exists(), "the live server's socket file stays");
    assert_eq!(live.unix().cmd(&["PING"]), Reply::simple("PONG"));
}

#[test]
fn non_socket_path_is_refused_and_left_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("precious.txt");
    std::fs::write(&path, b"do not delete").unwrap();
    let (status, _, stderr) = run_failing(&["--unix", path.to_str().unwrap()]);
    assert!(!status.success());
    assert!(stderr.contains("not a socket"), "{stderr}");
    assert_eq!(std::fs::read(&path).unwrap(), b"do not delete");
}

#[test]
fn tcp_address_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (status, _, stderr) = run_failing(&["--tcp", &addr]);
    assert!(!status.success());
    assert!(
        stderr.contains(&format!("failed to bind tcp://{addr}")),
        "{stderr}"
    );
}

#[test]
fn help_documents_every_flag_and_version_prints() {
    let (status, stdout, _) = run_failing(&["--help"]);
    assert!(status.success());
    for flag in [
        "--tcp",
        "--unix",
        "--unix-mode",
        "--max-clients",
        "--timeout",
        "--shutdown-timeout",
        "--verbose",
        "--quiet",
        "127.0.0.1:7379",
        "/tmp/muxd.sock",
    ] {
        assert!(stdout.contains(flag), "--help lacks {flag}:\n{stdout}");
    }
    let (status, stdout, _) = run_failing(&["--version"]);
    assert!(status.success());
    assert!(stdout.starts_with("muxd "), "{stdout}");
}
