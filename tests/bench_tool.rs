//! End to end: `muxd-bench` against a real `muxd`, over TCP and a Unix socket.
//!
//! Every process started here is killed by a guard when the test ends, however it ends.
//! Nothing sleeps to wait: muxd is ready once its READY line arrives, and the tool's
//! output is collected when it exits.

mod util;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use util::bench::{Guard, LIMIT, bench};

/// A running muxd and where it listens.
struct Muxd {
    _guard: Guard,
    tcp_port: String,
    unix: PathBuf,
    _dir: tempfile::TempDir,
}

fn start_muxd() -> Muxd {
    start_muxd_with(&[])
}

/// Starts muxd with `extra` flags.
fn start_muxd_with(extra: &[&str]) -> Muxd {
    let dir = tempfile::tempdir().expect("temporary directory");
    let unix = dir.path().join("m.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_muxd"))
        .arg("--tcp")
        .arg("127.0.0.1:0")
        .arg("--unix")
        .arg(&unix)
        .arg("-qq")
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting muxd");
    let stdout = child.stdout.take().expect("muxd stdout");
    let guard = Guard { child: Some(child) };
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(LIMIT).expect("muxd printed no READY line");
    let mut words = line.split_whitespace();
    assert_eq!(words.next(), Some("READY"), "{line:?}");
    let tcp = words.next().expect("tcp address");
    let tcp_port = tcp.rsplit(':').next().expect("tcp port").to_owned();
    assert_eq!(
        words.next().map(str::to_owned),
        Some(format!("unix://{}", unix.display())),
        "{line:?}"
    );
    Muxd {
        _guard: guard,
        tcp_port,
        unix,
        _dir: dir,
    }
}

impl Muxd {
    fn tcp(&self) -> Vec<String> {
        vec!["-p".into(), self.tcp_port.clone()]
    }

    fn unix(&self) -> Vec<String> {
        vec!["-s".into(), self.unix.display().to_string()]
    }
}

/// The keys of one JSON line, in order, with their raw values. The objects are flat and
/// no value of these tests contains a comma, a colon followed by a quote, or a brace.
fn json_fields(line: &str) -> Vec<(String, String)> {
    let body = line
        .strip_prefix('{')
        .and_then(|l| l.strip_suffix('}'))
        .unwrap_or_else(|| panic!("not a JSON object: {line}"));
    body.split(',')
        .map(|pair| {
            let (key, value) = pair
                .split_once(':')
                .unwrap_or_else(|| panic!("bad pair {pair:?} in {line}"));
            let key = key
                .strip_prefix('"')
                .and_then(|k| k.strip_suffix('"'))
                .unwrap_or_else(|| panic!("bad key {key:?} in {line}"));
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

const KEYS: [&str; 15] = [
    "test", "target", "clients", "pipeline", "threads", "requests", "errors", "wrong", "seconds",
    "rps", "p50_us", "p90_us", "p99_us", "p999_us", "max_us",
];

fn field<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in {fields:?}"))
}

fn number(fields: &[(String, String)], key: &str) -> f64 {
    field(fields, key)
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {fields:?}"))
}

/// Checks one JSON report line of a clean run of `n` requests.
fn check_clean(line: &str, test: &str, target: &str, n: u64) {
    let fields = json_fields(line);
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, KEYS, "{line}");
    assert_eq!(field(&fields, "test"), format!("\"{test}\""), "{line}");
    assert_eq!(field(&fields, "target"), format!("\"{target}\""), "{line}");
    assert_eq!(number(&fields, "requests"), n as f64, "{line}");
    assert_eq!(number(&fields, "errors"), 0.0, "{line}");
    assert_eq!(number(&fields, "wrong"), 0.0, "{line}");
    assert!(number(&fields, "seconds") > 0.0, "{line}");
    assert!(number(&fields, "rps") > 0.0, "{line}");
    let p50 = number(&fields, "p50_us");
    let max = number(&fields, "max_us");
    assert!(
        p50 <= number(&fields, "p99_us") && number(&fields, "p999_us") <= max,
        "{line}"
    );
}

#[test]
fn every_test_over_tcp_and_unix() {
    let muxd = start_muxd();
    let targets = [
        (muxd.tcp(), format!("tcp://127.0.0.1:{}", muxd.tcp_port)),
        (muxd.unix(), format!("unix://{}", muxd.unix.display())),
    ];
    let tests = ["ping_inline", "ping_mbulk", "echo", "add"];
    let variants: [&[&str]; 3] = [
        &["-c", "10", "-P", "4"],
        &["-c", "7", "-P", "1", "--threads", "2", "-d", "1000"],
        &["-c", "5", "-P", "16", "--lockstep", "-d", "40000"],
    ];
    for (target, url) in &targets {
        for variant in variants {
            let mut args = vec![
                "-n",
                "2000",
                "--json",
                "-q",
                "-t",
                "ping_inline,ping_mbulk,echo,add",
            ];
            args.extend_from_slice(variant);
            let run = bench(target, &args);
            assert!(run.status.success(), "{args:?}: {}", run.stderr);
            let lines: Vec<&str> = run.stdout.lines().collect();
            assert_eq!(lines.len(), tests.len(), "{}", run.stdout);
            for (line, test) in lines.iter().zip(tests) {
                check_clean(line, test, url, 2000);
            }
        }
    }
}

#[test]
fn text_summary_and_command() {
    let muxd = start_muxd();
    let run = bench(
        &muxd.tcp(),
        &["-n", "500", "-c", "5", "-q", "--command", "ECHO hello"],
    );
    assert!(run.status.success(), "{}", run.stderr);
    assert!(
        run.stdout.contains("====== ECHO hello ======"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("500 requests in "), "{}", run.stdout);
    assert!(
        run.stdout.contains("0 errors, 0 wrong replies"),
        "{}",
        run.stdout
    );
}

#[test]
fn wrong_and_error_replies_fail_the_run() {
    let muxd = start_muxd();
    // ADD's reply changes every time: the learned first reply (:1) is right only for the
    // first request of each of the two connections.
    let run = bench(
        &muxd.unix(),
        &["-n", "100", "-c", "2", "--json", "-q", "--command", "ADD 1"],
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let fields = json_fields(run.stdout.trim());
    assert_eq!(number(&fields, "requests"), 100.0);
    assert_eq!(number(&fields, "wrong"), 98.0, "{}", run.stdout);
    assert!(
        run.stderr.contains("wrong reply: expected \":1\\r\\n\""),
        "{}",
        run.stderr
    );

    let run = bench(
        &muxd.tcp(),
        &[
            "-n",
            "100",
            "-c",
            "2",
            "--json",
            "-q",
            "--command",
            "NOSUCH x",
        ],
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let fields = json_fields(run.stdout.trim());
    assert_eq!(number(&fields, "errors"), 100.0);
    assert!(run.stderr.contains("unknown command"), "{}", run.stderr);
}

#[test]
fn duration_and_rate() {
    let muxd = start_muxd();
    let run = bench(
        &muxd.tcp(),
        &[
            "--duration",
            "1",
            "--rate",
            "2000",
            "-c",
            "4",
            "-P",
            "2",
            "--json",
            "-q",
            "-t",
            "ping_mbulk",
        ],
    );
    assert!(run.status.success(), "{}", run.stderr);
    let fields = json_fields(run.stdout.trim());
    let requests = number(&fields, "requests");
    assert!((1500.0..=2600.0).contains(&requests), "{}", run.stdout);
    assert_eq!(number(&fields, "errors"), 0.0);
    let seconds = number(&fields, "seconds");
    assert!((0.9..3.0).contains(&seconds), "{}", run.stdout);
}

#[test]
fn idle_connections_over_tcp_and_unix() {
    let muxd = start_muxd();
    for target in [muxd.tcp(), muxd.unix()] {
        let run = bench(
            &target,
            &["--idle", "50", "--duration", "1", "--threads", "2"],
        );
        assert!(run.status.success(), "{}", run.stderr);
        assert_eq!(run.stdout, "IDLE 50 connected\n");
    }
}

#[test]
fn resp3_load_with_checked_resp3_replies() {
    let muxd = start_muxd();
    for target in [muxd.tcp(), muxd.unix()] {
        let run = bench(
            &target,
            &[
                "-3",
                "-n",
                "2000",
                "-c",
                "4",
                "-P",
                "8",
                "-t",
                "ping_mbulk,echo,add",
                "--json",
                "-q",
            ],
        );
        assert!(run.status.success(), "{}", run.stderr);
        let lines: Vec<&str> = run.stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{}", run.stdout);
        assert!(
            lines.iter().all(|l| l.contains("\"errors\":0,\"wrong\":0")),
            "{}",
            run.stdout
        );
    }
    // A reply that differs between the protocols is learned and checked in RESP3: the
    // null name is `_`, and CONFIG GET a map.
    for (command, learned) in [
        ("CLIENT GETNAME", "\"_\\r\\n\""),
        ("CONFIG GET timeout", "\"%1\\r\\n$7\\r\\ntimeout"),
    ] {
        let run = bench(
            &muxd.tcp(),
            &["-3", "-n", "300", "-c", "3", "--command", command],
        );
        assert!(run.status.success(), "{}", run.stderr);
        assert!(
            run.stderr.contains(&format!("expecting {learned}")),
            "{command}: {}",
            run.stderr
        );
    }
    // Idle connections speak RESP3 too: CLIENT LIST says resp=3 for each.
    let mut child = Command::new(env!("CARGO_BIN_EXE_muxd-bench"))
        .args(muxd.unix())
        .args(["-3", "--idle", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting muxd-bench");
    let stdout = child.stdout.take().expect("stdout");
    let _guard = Guard { child: Some(child) };
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("IDLE line");
    assert_eq!(line, "IDLE 3 connected\n");
    let mut c = util::Client::unix(&muxd.unix);
    let list = util::parse_client_list(&c.cmd(&["CLIENT", "LIST"]).text());
    assert_eq!(
        list.iter().filter(|f| f["resp"] == "3").count(),
        3,
        "{list:?}"
    );
}

#[test]
fn password_option_authenticates_every_connection() {
    let muxd = start_muxd_with(&["--requirepass", "s3cret"]);
    for args in [
        &["-a", "s3cret"][..],
        &["-a", "s3cret", "--user", "default"],
        &["-3", "-a", "s3cret"],
    ] {
        let run = bench(
            &muxd.tcp(),
            &[
                args,
                &["-n", "1000", "-c", "5", "-t", "ping_mbulk,echo", "-q"],
            ]
            .concat(),
        );
        assert!(run.status.success(), "{args:?}: {}", run.stderr);
        assert!(
            run.stdout.contains("0 errors, 0 wrong replies"),
            "{}",
            run.stdout
        );
        let run = bench(
            &muxd.unix(),
            &[
                args,
                &["-n", "100", "-c", "2", "--command", "ECHO hi", "-q"],
            ]
            .concat(),
        );
        assert!(run.status.success(), "{args:?}: {}", run.stderr);
    }
    let run = bench(
        &muxd.unix(),
        &["-a", "s3cret", "--idle", "2", "--duration", "0.5"],
    );
    assert!(run.status.success(), "{}", run.stderr);
    // A wrong password or none at all: a clear failure before any load.
    for (args, said) in [
        (
            &["-a", "wrong"][..],
            "AUTH answered with \"-WRONGPASS invalid username-password pair",
        ),
        (&["-3", "-a", "wrong"], "HELLO 3 answered with \"-WRONGPASS"),
        (
            &["-3"],
            "HELLO 3 answered with \"-NOAUTH HELLO must be called",
        ),
    ] {
        let run = bench(
            &muxd.tcp(),
            &[args, &["-n", "10", "-c", "2", "-t", "ping_mbulk"]].concat(),
        );
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(said), "{args:?}: {}", run.stderr);
    }
    let run = bench(
        &muxd.tcp(),
        &["-n", "10", "-c", "2", "-t", "ping_mbulk", "-q"],
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("NOAUTH Authentication required."),
        "{}",
        run.stderr
    );
}

#[test]
fn nobody_listening_is_a_clear_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port().to_string();
    drop(listener);
    let target = vec!["-p".to_owned(), port.clone()];
    for args in [&["-n", "10"][..], &["--idle", "5"], &["--command", "PING"]] {
        let run = bench(&target, args);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("cannot connect to tcp://127.0.0.1:{port}")),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("Connection refused"), "{}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
    }
}

/// A fake RESP server on a free port: answers each connection with `serve`.
fn fake_server(serve: fn(std::net::TcpStream)) -> Vec<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port().to_string();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || serve(stream));
        }
    });
    vec!["-p".to_owned(), port]
}

/// Reads one `PING` request (`*1\r\n$4\r\nPING\r\n`); false at end of stream.
fn read_ping(stream: &mut std::net::TcpStream) -> bool {
    let mut request = [0u8; 14];
    stream.read_exact(&mut request).is_ok()
}

#[test]
fn a_malformed_reply_is_wrong_and_ends_its_connection() {
    use std::io::Write as _;
    let target = fake_server(|mut s| {
        if read_ping(&mut s) {
            let _ = s.write_all(b"+PONG\r\n");
        }
        if read_ping(&mut s) {
            let _ = s.write_all(b"PONG\r\n");
        }
        // Hold the connection until the client closes it.
        let _ = s.read(&mut [0u8; 64]);
    });
    let run = bench(
        &target,
        &["-n", "10", "-c", "1", "--json", "-q", "-t", "ping_mbulk"],
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let fields = json_fields(run.stdout.trim());
    assert_eq!(number(&fields, "requests"), 1.0, "{}", run.stdout);
    assert_eq!(number(&fields, "wrong"), 1.0, "{}", run.stdout);
    assert_eq!(number(&fields, "errors"), 0.0, "{}", run.stdout);
    assert!(run.stderr.contains("malformed reply"), "{}", run.stderr);
    assert!(run.stderr.contains("PONG\\r\\n"), "{}", run.stderr);
}

#[test]
fn a_server_closing_mid_run_is_an_error() {
    use std::io::Write as _;
    let target = fake_server(|mut s| {
        for _ in 0..3 {
            if !read_ping(&mut s) {
                return;
            }
            let _ = s.write_all(b"+PONG\r\n");
        }
        // Take the 4th request before closing: closing with it unread would reset the
        // connection instead of ending it, and a reset is another error than this one.
        read_ping(&mut s);
    });
    let run = bench(
        &target,
        &["-n", "100", "-c", "2", "--json", "-q", "-t", "ping_mbulk"],
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let fields = json_fields(run.stdout.trim());
    assert_eq!(number(&fields, "requests"), 6.0, "{}", run.stdout);
    assert_eq!(number(&fields, "errors"), 2.0, "{}", run.stdout);
    assert!(
        run.stderr.contains("closed by the server"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_stalled_server_times_out() {
    let target = fake_server(|mut s| {
        // Read requests, never answer, until the client gives up.
        while read_ping(&mut s) {}
    });
    let run = bench(
        &target,
        &[
            "-n",
            "100",
            "-c",
            "2",
            "--timeout",
            "0.3",
            "--json",
            "-q",
            "-t",
            "ping_mbulk",
        ],
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let fields = json_fields(run.stdout.trim());
    assert_eq!(number(&fields, "requests"), 0.0, "{}", run.stdout);
    assert_eq!(number(&fields, "errors"), 2.0, "{}", run.stdout);
    assert!(run.stderr.contains("no reply for 0.3 s"), "{}", run.stderr);
}

#[test]
fn a_server_closing_right_after_its_last_reply_is_seen_at_once() {
    use std::io::Write as _;
    // The last reply and the end of stream arrive together: the end must not be missed
    // (it would otherwise only show as a stall, after --timeout).
    let target = fake_server(|mut s| {
        if read_ping(&mut s) {
            let _ = s.write_all(b"+PONG\r\n");
        }
        if read_ping(&mut s) {
            let _ = s.write_all(b"+PONG\r\n");
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        let _ = s.read(&mut [0u8; 64]);
    });
    let started = std::time::Instant::now();
    let run = bench(
        &target,
        &[
            "-n",
            "10",
            "-c",
            "1",
            "--timeout",
            "20",
            "--json",
            "-q",
            "-t",
            "ping_mbulk",
        ],
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let fields = json_fields(run.stdout.trim());
    assert_eq!(number(&fields, "requests"), 2.0, "{}", run.stdout);
    assert_eq!(number(&fields, "errors"), 1.0, "{}", run.stdout);
    assert!(
        run.stderr.contains("closed by the server"),
        "{}",
        run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{}",
        run.stderr
    );
}
