//! Passwords against the real daemon: `--requirepass` and `--requirepass-file`, `AUTH`,
//! `HELLO ... AUTH`, what an unauthenticated client may send (and how much), failures
//! counted and logged without the password, `RESET`, and the start-up warning.

mod util;

use muxd::resp::Value;
use util::{Muxd, Reply, info_field};

const PASSWORD: &str = "c0rrect h0rse";

fn err(text: &str) -> Reply {
    Reply::Error(text.to_owned())
}

const NOAUTH: &str = "NOAUTH Authentication required.";
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

#[test]
fn unauthenticated_clients_may_only_authenticate_in_redis_order() {
    let muxd = Muxd::start(&["--requirepass", PASSWORD]);
    for mut c in [muxd.tcp(), muxd.unix()] {
        assert_eq!(c.cmd(&["PING"]), err(NOAUTH));
        assert_eq!(c.cmd(&["CLIENT", "LIST"]), err(NOAUTH));
        // Unknown commands and wrong arity are checked first, as Redis does.
        assert_eq!(
            c.cmd(&["NOPE"]),
            err("ERR unknown command 'NOPE', with args beginning with: ")
        );
        assert_eq!(
            c.cmd(&["ECHO"]),
            err("ERR wrong number of arguments for 'echo' command")
        );
        // HELLO checks its version first, then wants authentication.
        assert_eq!(
            c.cmd(&["HELLO", "4"]),
            err("NOPROTO unsupported protocol version")
        );
        assert_eq!(
            c.cmd(&["HELLO", "3"]),
            err(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
            )
        );
        assert_eq!(c.cmd(&["AUTH", "wrong"]), err(WRONGPASS));
        assert_eq!(c.cmd(&["AUTH", "someone", PASSWORD]), err(WRONGPASS));
        assert_eq!(c.cmd(&["AUTH", "a", "b", "c"]), err("ERR syntax error"));
        assert_eq!(c.cmd(&["RESET"]), Reply::simple("RESET"));
        assert_eq!(c.cmd(&["PING"]), err(NOAUTH), "still unauthenticated");
        assert_eq!(c.cmd(&["AUTH", PASSWORD]), Reply::simple("OK"));
        assert_eq!(c.cmd(&["PING"]), Reply::simple("PONG"));
        assert_eq!(c.cmd(&["AUTH", "default", PASSWORD]), Reply::simple("OK"));
        // RESET deauthenticates.
        assert_eq!(c.cmd(&["RESET"]), Reply::simple("RESET"));
        assert_eq!(c.cmd(&["PING"]), err(NOAUTH));
        // QUIT needs no password.
        assert_eq!(c.cmd(&["QUIT"]), Reply::simple("OK"));
        c.expect_closed();
    }
}

#[test]
fn hello_authenticates_and_switches_at_once() {
    let muxd = Muxd::start(&["--requirepass", PASSWORD]);
    let mut c = muxd.tcp();
    assert_eq!(
        c.value(&["HELLO", "3", "AUTH", "default", "nope"]),
        Value::Error(WRONGPASS.as_bytes().to_vec())
    );
    let reply = c.value(&["HELLO", "3", "AUTH", "default", PASSWORD, "SETNAME", "app"]);
    assert!(matches!(reply, Value::Map(_)), "{reply:?}");
    assert_eq!(
        c.value(&["CLIENT", "GETNAME"]),
        Value::Bulk(b"app".to_vec())
    );
    assert_eq!(c.raw(&["PING"]), b"+PONG\r\n");
    // The password is shown to an authenticated client, as Redis does.
    assert_eq!(
        c.value(&["CONFIG", "GET", "requirepass"]),
        Value::Map(vec![(
            Value::Bulk(b"requirepass".to_vec()),
            Value::Bulk(PASSWORD.as_bytes().to_vec())
        )])
    );
}

#[test]
fn requests_before_authentication_are_held_to_redis_limits() {
    let muxd = Muxd::start(&["--requirepass", PASSWORD]);
    let mut c = muxd.tcp();
    c.send(b"*11\r\n");
    assert_eq!(
        c.read_reply(),
        err("ERR Protocol error: unauthenticated multibulk length")
    );
    c.expect_closed();
    let mut c = muxd.unix();
    c.send(b"*2\r\n$4\r\nECHO\r\n$16385\r\n");
    assert_eq!(
        c.read_reply(),
        err("ERR Protocol error: unauthenticated bulk length")
    );
    c.expect_closed();
    // At the limits, and past them once authenticated, requests are served.
    let mut c = muxd.tcp();
    let big = "x".repeat(16384);
    assert_eq!(c.cmd(&["ECHO", &big]), err(NOAUTH));
    assert_eq!(c.cmd(&["AUTH", PASSWORD]), Reply::simple("OK"));
    let bigger = "y".repeat(100_000);
    assert_eq!(c.cmd(&["ECHO", &bigger]), Reply::bulk(&bigger));
    let many: Vec<&str> = std::iter::once("ADD")
        .chain(std::iter::repeat_n("1", 20))
        .collect();
    assert_eq!(c.cmd(&many), Reply::Int(20));
}

#[test]
fn failures_are_counted_and_logged_without_the_password() {
    let muxd = Muxd::start(&["--requirepass", PASSWORD]);
    let mut c = muxd.tcp();
    let id = {
        c.cmd(&["AUTH", PASSWORD]);
        c.id()
    };
    c.cmd(&["RESET"]);
    assert_eq!(c.cmd(&["AUTH", "hunter2"]), err(WRONGPASS));
    assert_eq!(
        c.value(&["HELLO", "3", "AUTH", "default", "hunter3"]),
        Value::Error(WRONGPASS.as_bytes().to_vec())
    );
    let mut admin = muxd.unix();
    admin.cmd(&["AUTH", "default", PASSWORD]);
    assert_eq!(info_field(&mut admin, "acl_access_denied_auth"), "2");
    muxd.wait_for_log(&format!(
        "authentication failed client={id} addr=127.0.0.1:"
    ));
    muxd.wait_for_log("command=hello");
    let log = muxd.stderr();
    assert!(!log.contains("hunter"), "a password in the log:\n{log}");
    assert!(!log.contains(PASSWORD), "the password in the log:\n{log}");
}

#[test]
fn password_file_keeps_it_out_of_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let muxd = Muxd::start(&["--requirepass-file", file.to_str().unwrap()]);
    let mut c = muxd.tcp();
    assert_eq!(c.cmd(&["PING"]), err(NOAUTH));
    assert_eq!(
        c.cmd(&["AUTH", &format!("{PASSWORD}\n")]),
        err(WRONGPASS),
        "the newline is not part of it"
    );
    assert_eq!(c.cmd(&["AUTH", PASSWORD]), Reply::simple("OK"));
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", muxd.pid())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(PASSWORD));

    let (status, _, stderr) = util::run_failing(&["--requirepass-file", "/nonexistent/pw"]);
    assert!(!status.success());
    assert!(
        stderr.contains("--requirepass-file /nonexistent/pw"),
        "{stderr}"
    );
}

#[test]
fn without_a_password_auth_is_as_in_redis() {
    let muxd = Muxd::start(&[]);
    let mut c = muxd.tcp();
    assert_eq!(
        c.cmd(&["AUTH", "x"]),
        err(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
        )
    );
    assert_eq!(c.cmd(&["AUTH", "default", "anything"]), Reply::simple("OK"));
    assert_eq!(c.cmd(&["AUTH", "other", "anything"]), err(WRONGPASS));
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "requirepass"]),
        Reply::Array(vec![Reply::bulk("requirepass"), Reply::bulk("")])
    );
    assert_eq!(c.cmd(&["RESET"]), Reply::simple("RESET"));
    assert_eq!(
        c.cmd(&["PING"]),
        Reply::simple("PONG"),
        "nothing to deauthenticate"
    );
}

#[test]
fn an_exposed_address_without_a_password_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let muxd = Muxd::start_args(dir, vec!["--tcp".into(), "0.0.0.0:0".into()]);
    muxd.wait_for_log("listening on a non-loopback address without a password");
    let quiet = Muxd::start(&[]);
    let mut c = quiet.tcp();
    c.cmd(&["PING"]);
    assert!(!quiet.stderr().contains("without a password"));
}
