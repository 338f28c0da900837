//! Real Redis tools against the real daemon: `redis-cli` and `redis-benchmark`, over TCP
//! and a Unix socket. Skipped with a note when the tools are missing, except in CI
//! (`CI` set), where `.ci/run` installs them and a missing tool is a failure.

mod util;

use std::process::{Command, Output};

use util::{Muxd, parse_client_list, require_tool};

fn run(program: &str, args: &[&str]) -> Output {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn redis_cli_over_tcp_and_unix() {
    if !require_tool("redis-cli") {
        return;
    }
    let muxd = Muxd::start(&[]);
    let port = muxd.tcp_addr().port().to_string();
    let sock = muxd.unix_path();
    let sock = sock.to_str().unwrap();
    for target in [["-h", "127.0.0.1", "-p", &port], ["-s", sock, "-s", sock]] {
        let out = run("redis-cli", &[&target[..], &["PING"]].concat());
        assert_eq!(stdout(&out).trim(), "PONG");
        let out = run(
            "redis-cli",
            &[&target[..], &["ECHO", "hello world"]].concat(),
        );
        assert_eq!(stdout(&out).trim(), "hello world");
        let out = run("redis-cli", &[&target[..], &["ADD", "2", "3"]].concat());
        assert_eq!(stdout(&out).trim(), "5");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn redis_cli_client_list_shows_every_connected_client() {
    if !require_tool("redis-cli") {
        return;
    }
    let muxd = Muxd::start(&[]);
    let mut held: Vec<_> = (0..5).map(|_| muxd.tcp()).collect();
    held.extend((0..3).map(|_| muxd.unix()));
    for c in &mut held {
        c.cmd(&["PING"]);
    }
    let sock = muxd.unix_path();
    let out = run(
        "redis-cli",
        &["-s", sock.to_str().unwrap(), "CLIENT", "LIST"],
    );
    let rows = parse_client_list(&stdout(&out));
    assert_eq!(rows.len(), 9, "{}", stdout(&out));
    assert_eq!(rows.iter().filter(|r| r["kind"] == "unix").count(), 4);
    assert_eq!(rows.iter().filter(|r| r["kind"] == "tcp").count(), 5);
    // redis-cli's own row is the one running CLIENT LIST.
    assert!(rows.iter().any(|r| r["kind"] == "unix" && r["cmds"] == "1"));
}

#[test]
fn redis_benchmark_runs_clean_over_tcp_and_unix() {
    if !require_tool("redis-benchmark") {
        return;
    }
    let muxd = Muxd::start(&[]);
    let port = muxd.tcp_addr().port().to_string();
    let sock = muxd.unix_path();
    let sock = sock.to_str().unwrap();
    for target in [vec!["-h", "127.0.0.1", "-p", &port], vec!["-s", sock]] {
        let mut args = target.clone();
        args.extend(["-t", "ping_inline,ping_mbulk", "-n", "20000", "-q"]);
        let out = run("redis-benchmark", &args);
        let text = stdout(&out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("WARN") && !stderr.contains("ERR"),
            "{stderr}"
        );
        for test in ["PING_INLINE", "PING_MBULK"] {
            // Progress updates share the line, separated by carriage returns.
            let line = text
                .split(['\n', '\r'])
                .rev()
                .find(|l| l.contains(test) && l.contains("requests per second"))
                .unwrap_or_else(|| panic!("no {test} result in {text:?}"));
            let rps: f64 = line
                .split(':')
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unparsable {line:?}"));
            assert!(rps > 0.0, "{line}");
        }
    }
    let mut c = muxd.tcp();
    let processed: u64 = util::info_field(&mut c, "total_commands_processed")
        .parse()
        .unwrap();
    assert!(processed >= 80_000, "processed {processed}");
    assert_eq!(util::info_field(&mut c, "protocol_errors"), "0");
}
