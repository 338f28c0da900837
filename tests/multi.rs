//! `MULTI`/`EXEC`/`DISCARD` against the real daemon: queueing, the replies `EXEC` returns
//! (in the form the client speaks as each command runs), aborts after a queueing error,
//! Redis's error texts, and the bound on the queue's memory.

mod util;

use util::{Muxd, Reply};

fn err(text: &str) -> Reply {
    Reply::Error(text.to_owned())
}

fn queued() -> Reply {
    Reply::simple("QUEUED")
}

#[test]
fn exec_runs_the_queue_and_replies_one_array() {
    let muxd = Muxd::start(&[]);
    let mut c = muxd.tcp();
    assert_eq!(c.cmd(&["MULTI"]), Reply::simple("OK"));
    assert_eq!(c.cmd(&["PING"]), queued());
    assert_eq!(c.cmd(&["ECHO", "a"]), queued());
    assert_eq!(c.cmd(&["ADD", "5"]), queued());
    assert_eq!(c.cmd(&["MULTI"]), err("ERR MULTI calls can not be nested"));
    assert_eq!(
        c.cmd(&["ADD", "x"]),
        queued(),
        "fails when run, not when queued"
    );
    assert_eq!(
        c.cmd(&["EXEC"]),
        Reply::Array(vec![
            Reply::simple("PONG"),
            Reply::bulk("a"),
            Reply::Int(5),
            err("ERR value is not an integer or out of range"),
        ])
    );
    assert_eq!(c.cmd(&["EXEC"]), err("ERR EXEC without MULTI"));
    assert_eq!(c.cmd(&["DISCARD"]), err("ERR DISCARD without MULTI"));
    assert_eq!(c.cmd(&["MULTI"]), Reply::simple("OK"));
    assert_eq!(c.cmd(&["EXEC"]), Reply::Array(vec![]));
    // Queued commands wait for EXEC, and DISCARD drops them.
    assert_eq!(c.cmd(&["MULTI"]), Reply::simple("OK"));
    assert_eq!(c.cmd(&["ADD", "100"]), queued());
    assert_eq!(c.cmd(&["DISCARD"]), Reply::simple("OK"));
    assert_eq!(c.cmd(&["SUM"]), Reply::Int(5));
}

#[test]
fn a_queueing_error_aborts_the_transaction() {
    let muxd = Muxd::start(&[]);
    let mut c = muxd.unix();
    c.cmd(&["MULTI"]);
    assert_eq!(
        c.cmd(&["NOSUCH", "k"]),
        err("ERR unknown command 'NOSUCH', with args beginning with: 'k' ")
    );
    assert_eq!(c.cmd(&["ADD", "1"]), queued());
    assert_eq!(
        c.cmd(&["ECHO"]),
        err("ERR wrong number of arguments for 'echo' command")
    );
    assert_eq!(
        c.cmd(&["EXEC"]),
        err("EXECABORT Transaction discarded because of previous errors.")
    );
    assert_eq!(c.cmd(&["SUM"]), Reply::Int(0), "nothing ran");
    // A malformed EXEC ends the transaction at once.
    c.cmd(&["MULTI"]);
    assert_eq!(
        c.cmd(&["EXEC", "now"]),
        err(
            "EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command"
        )
    );
    assert_eq!(c.cmd(&["EXEC"]), err("ERR EXEC without MULTI"));
}

#[test]
fn quit_and_reset_are_not_queued() {
    let muxd = Muxd::start(&[]);
    let mut c = muxd.tcp();
    c.cmd(&["MULTI"]);
    c.cmd(&["ADD", "1"]);
    assert_eq!(c.cmd(&["RESET"]), Reply::simple("RESET"));
    assert_eq!(c.cmd(&["EXEC"]), err("ERR EXEC without MULTI"));
    c.cmd(&["MULTI"]);
    assert_eq!(c.cmd(&["QUIT"]), Reply::simple("OK"));
    c.expect_closed();
}

#[test]
fn a_whole_pipelined_transaction_and_resp3_replies() {
    let muxd = Muxd::start(&["--max-clients", "100"]);
    let mut c = muxd.tcp();
    let mut batch = Vec::new();
    for words in [
        &["MULTI"][..],
        &["CLIENT", "GETNAME"],
        &["HELLO", "3"],
        &["CLIENT", "GETNAME"],
        &["CONFIG", "GET", "maxclients"],
        &["EXEC"],
        &["PING"],
    ] {
        let parts: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        batch.extend_from_slice(&util::encode(&parts));
    }
    c.send(&batch);
    assert_eq!(c.read_raw(), b"+OK\r\n");
    for _ in 0..4 {
        assert_eq!(c.read_raw(), b"+QUEUED\r\n");
    }
    let exec = c.read_raw();
    let text = String::from_utf8_lossy(&exec);
    // The array header and the first reply in RESP2; after the queued HELLO 3, RESP3.
    assert!(text.starts_with("*4\r\n$-1\r\n%7\r\n"), "{text:?}");
    assert!(
        text.ends_with("_\r\n%1\r\n$10\r\nmaxclients\r\n$3\r\n100\r\n"),
        "{text:?}"
    );
    assert_eq!(c.read_raw(), b"+PONG\r\n");
}

#[test]
fn auth_may_be_queued_but_multi_needs_authentication() {
    let muxd = Muxd::start(&["--requirepass", "pw"]);
    let mut c = muxd.tcp();
    assert_eq!(c.cmd(&["MULTI"]), err("NOAUTH Authentication required."));
    assert_eq!(c.cmd(&["AUTH", "pw"]), Reply::simple("OK"));
    c.cmd(&["MULTI"]);
    assert_eq!(c.cmd(&["AUTH", "nope"]), queued());
    assert_eq!(c.cmd(&["PING"]), queued());
    assert_eq!(
        c.cmd(&["EXEC"]),
        Reply::Array(vec![
            err("WRONGPASS invalid username-password pair or user is disabled."),
            Reply::simple("PONG"),
        ])
    );
}

#[test]
fn the_queue_is_bounded_by_the_input_buffer_limit() {
    let muxd = Muxd::start(&["--max-request-bytes", "64kb"]);
    let mut c = muxd.tcp();
    c.cmd(&["MULTI"]);
    let payload = "x".repeat(10_000);
    let mut replies = Vec::new();
    for _ in 0..10 {
        replies.push(c.cmd(&["ECHO", &payload]));
    }
    let refused = replies
        .iter()
        .position(|r| *r != queued())
        .expect("refused");
    assert!(refused >= 3, "{replies:?}");
    assert_eq!(
        replies[refused],
        err("ERR MULTI queue over client-query-buffer-limit; transaction discarded")
    );
    assert!(replies[refused + 1..].iter().all(|r| *r == queued()));
    assert_eq!(
        c.cmd(&["EXEC"]),
        err("EXECABORT Transaction discarded because of previous errors.")
    );
    muxd.wait_for_log("transaction queue over the limit, discarded client=");
    assert_eq!(
        c.cmd(&["PING"]),
        Reply::simple("PONG"),
        "the client goes on"
    );
}

/// The service counts the open transactions (so that most requests skip a lookup): a
/// client that leaves or is killed inside `MULTI` must not end anyone else's.
#[test]
fn clients_leaving_inside_multi_leave_other_transactions_open() {
    let muxd = Muxd::start(&[]);
    let mut a = muxd.tcp();
    let mut b = muxd.unix();
    let mut c = muxd.tcp();
    let a_id = a.id().to_string();
    assert_eq!(a.cmd(&["MULTI"]), Reply::simple("OK"));
    assert_eq!(b.cmd(&["MULTI"]), Reply::simple("OK"));
    assert_eq!(c.cmd(&["MULTI"]), Reply::simple("OK"));
    let mut admin = muxd.tcp();
    assert_eq!(admin.cmd(&["CLIENT", "KILL", "ID", &a_id]), Reply::Int(1));
    a.expect_closed();
    drop(c);
    util::eventually("a and c are gone", || {
        let text = admin.cmd(&["CLIENT", "LIST"]).text();
        util::parse_client_list(&text).len() == 2
    });
    assert_eq!(b.cmd(&["PING"]), queued(), "b is still in MULTI");
    assert_eq!(b.cmd(&["EXEC"]), Reply::Array(vec![Reply::simple("PONG")]));
    let mut d = muxd.tcp();
    d.cmd(&["MULTI"]);
    assert_eq!(d.cmd(&["PING"]), queued());
    assert_eq!(d.cmd(&["DISCARD"]), Reply::simple("OK"));
    assert_eq!(d.cmd(&["PING"]), Reply::simple("PONG"));
}
