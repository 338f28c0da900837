//! Every daemon command, over a real socket to the real `muxd` binary.

mod util;

use util::{Muxd, Reply, parse_client_list};

#[test]
fn ping_and_echo() {
    let muxd = Muxd::start(&[]);
    let mut c = muxd.tcp();
    assert_eq!(c.cmd(&["PING"]), Reply::simple("PONG"));
    assert_eq!(c.cmd(&["ping", "hello"]), Reply::bulk("hello"));
    assert_eq!(
        c.cmd(&["PING", "a", "b"]),
        Reply::Error("ERR wrong number of arguments for 'ping' command".into())
    );
    let binary: &[u8] = b"a\r\nb\0c";
    assert_eq!(
        c.cmd_bytes(&[b"ECHO", binary]),
        Reply::Bulk(binary.to_vec())
    );
    assert_eq!(c.cmd(&["echo", ""]), Reply::bulk(""));
    assert_eq!(
        c.cmd(&["ECHO"]),
        Reply::Error("ERR wrong number of arguments for 'echo' command".into())
    );
    // The connection is still usable after errors.
    assert_eq!(c.cmd(&["PiNg"]), Reply::simple("PONG"));
}

#[test]
fn unknown_command_gets_redis_text_and_connection_stays_open() {
    let muxd = Muxd::start(&[]);
    let mut c = muxd.tcp();
    assert_eq!(
        c.cmd(&["FOO", "bar", "baz"]),
        Reply::Error("ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' ".into())
    );
    assert_eq!(
        c.cmd(&["nope"]),
        Reply::Error("ERR unknown command 'nope', with args beginning with: ".into())
    );
    assert_eq!(c.cmd(&["PING"]), Reply::simple("PONG"));
}

#[test]
fn add_and_sum_keep_one_total_per_client() {
    let muxd = Muxd::start(&[]);
    let mut a = muxd.tcp();
    let mut b = muxd.unix();
    assert_eq!(a.cmd(&["ADD", "1", "2", "3"]), Reply::Int(6));
    assert_eq!(b.cmd(&["ADD", "100"]), Reply::Int(100));
    assert_eq!(a.cmd(&["add", "-10"]), Reply::Int(-4));
    assert_eq!(a.cmd(&["SUM"]), Reply::Int(-4));
    assert_eq!(a.cmd(&["SUM"]), Reply::Int(0), "SUM resets the total");
    assert_eq!(b.cmd(&["SUM"]), Reply::Int(100));
    assert_eq!(
        a.cmd(&["ADD"]),
        Reply::Error("ERR wrong number of arguments for 'add' command".into())
    );
    assert_eq!(
        a.cmd(&["SUM", "x"]),
        Reply::Error("ERR wrong number of arguments for 'sum' command".into())
    );
}

#[test]
fn add_rejects_non_integers_and_overflow_without_changing_the_total() {
    let muxd = Muxd::start(&[]);
    let mut c = muxd.tcp();
    assert_eq!(c.cmd(&["ADD", "5"]), Reply::Int(5));
    for bad in ["x", "1.5", "", " 1", "+1", "01", "99999999999999999999"] {
        assert_eq!(
            c.cmd(&["ADD", "1", bad]),
            Reply::Error("ERR value is not an integer or out of range".into()),
            "argument {bad:?}"
        );
    }
    assert_eq!(c.cmd(&["ADD", "0"]), Reply::Int(5));
    assert_eq!(
        c.cmd(&["ADD", "9223372036854775807"]),
        Reply::Error("ERR increment or decrement would overflow".into())
    );
    assert_eq!(c.cmd(&["ADD", "-5"]), Reply::Int(0));
    assert_eq!(
        c.cmd(&["ADD", "-9223372036854775808"]),
        Reply::Int(i64::MIN)
    );
    assert_eq!(
        c.cmd(&["ADD", "-1"]),
        Reply::Error("ERR increment or decrement would overflow".into())
    );
    assert_eq!(c.cmd(&["SUM"]), Reply::Int(i64::MIN));
}

#[test]
fn quit_replies_ok_closes_and_skips_pipelined_commands() {
    let muxd = Muxd::start(&[]);
    let mut victim = muxd.tcp();
    let victim_id = victim.id();
    let mut c = muxd.tcp();
    // The kill after QUIT must not run.
    c.send(format!("QUIT\r\nCLIENT KILL ID {victim_id}\r\n").as_bytes());
    assert_eq!(c.read_reply(), Reply::simple("OK"));
    c.expect_closed();
    assert_eq!(victim.cmd(&["PING"]), Reply::simple("PONG"));
}

#[test]
fn client_id_info_setname_getname() {
    let muxd = Muxd::start(&[]);
    let mut a = muxd.tcp();
    let mut b = muxd.tcp();
    let (id_a, id_b) = (a.id(), b.id());
    assert!(id_b > id_a && id_a > 0);
    assert_eq!(a.cmd(&["CLIENT", "GETNAME"]), Reply::Nil);
    assert_eq!(
        a.cmd(&["CLIENT", "SETNAME", "worker-1"]),
        Reply::simple("OK")
    );
    assert_eq!(a.cmd(&["client", "getname"]), Reply::bulk("worker-1"));
    assert_eq!(
        a.cmd(&["CLIENT", "SETNAME", "has space"]),
        Reply::Error(
            "ERR Client names cannot contain spaces, newlines or special characters.".into()
        )
    );
    assert_eq!(
        a.cmd(&["CLIENT", "SETNAME"]),
        Reply::Error("ERR wrong number of arguments for 'client|setname' command".into())
    );
    let info = a.cmd(&["CLIENT", "INFO"]).text();
    let fields = &parse_client_list(&info)[0];
    assert_eq!(fields["id"], id_a.to_string());
    assert_eq!(fields["name"], "worker-1");
    assert_eq!(fields["kind"], "tcp");
    assert_eq!(fields["laddr"], muxd.tcp_addr().to_string());
    assert_eq!(a.cmd(&["CLIENT", "SETNAME", ""]), Reply::simple("OK"));
    assert_eq!(a.cmd(&["CLIENT", "GETNAME"]), Reply::Nil);
    match a.cmd(&["CLIENT", "FOO"]) {
        Reply::Error(e) => assert_eq!(e, "ERR unknown subcommand 'FOO'. Try CLIENT HELP."),
        other => panic!("{other:?}"),
    }
    match a.cmd(&["CLIENT", "HELP"]) {
        Reply::Array(lines) => assert!(lines.len() > 5),
        other => panic!("{other:?}"),
    }
}

#[test]
fn client_list_shows_every_handle_with_its_fields() {
    let muxd = Muxd::start(&[]);
    let mut tcp = muxd.tcp();
    let mut unix = muxd.unix();
    tcp.cmd(&["CLIENT", "SETNAME", "t"]);
    unix.cmd(&["ADD", "1"]);
    let list = tcp.cmd(&["CLIENT", "LIST"]).text();
    let rows = parse_client_list(&list);
    assert_eq!(rows.len(), 2, "{list}");
    for key in [
        "id", "addr", "laddr", "kind", "name", "age", "idle", "cmds", "in", "out", "qbuf", "obuf",
    ] {
        assert!(rows.iter().all(|r| r.contains_key(key)), "{key} in {list}");
    }
    let t = rows.iter().find(|r| r["kind"] == "tcp").unwrap();
    assert_eq!(t["name"], "t");
    assert!(t["addr"].starts_with("127.0.0.1:"));
    let u = rows.iter().find(|r| r["kind"] == "unix").unwrap();
    let uid = unsafe { libc::getuid() }.to_string();
    assert_eq!(u["uid"], uid);
    assert_eq!(u["pid"], std::process::id().to_string());
    assert_eq!(u["cmds"], "1");
    assert!(u["in"].parse::<u64>().unwrap() > 0);
    assert!(!t.contains_key("uid"));
    // CLIENT LIST ID filters.
    let id = unix.id();
    let only = tcp.cmd(&["CLIENT", "LIST", "ID", &id.to_string()]).text();
    assert_eq!(parse_client_list(&only).len(), 1);
}

#[test]
fn client_kill_by_id_and_address() {
    let muxd = Muxd::start(&[]);
    let mut admin = muxd.tcp();
    let mut v1 = muxd.tcp();
    let mut v2 = muxd.tcp();
    let id1 = v1.id();
    assert_eq!(
        admin.cmd(&["CLIENT", "KILL", "ID", &id1.to_string()]),
        Reply::Int(1)
    );
    v1.expect_closed();
    assert_eq!(
        admin.cmd(&["CLIENT", "KILL", "ID", &id1.to_string()]),
        Reply::Int(0),
        "already gone"
    );
    // Old form by address.
    let info = v2.cmd(&["CLIENT", "INFO"]).text();
    let addr = parse_client_list(&info)[0]["addr"].clone();
    assert_eq!(admin.cmd(&["CLIENT", "KILL", &addr]), Reply::simple("OK"));
    v2.expect_closed();
    assert_eq!(
        admin.cmd(&["CLIENT", "KILL", &addr]),
        Reply::Error("ERR No such client".into())
    );
    // SKIPME: a client does not kill itself unless asked.
    let me = admin.id().to_string();
    assert_eq!(admin.cmd(&["CLIENT", "KILL", "ID", &me]), Reply::Int(0));
    assert_eq!(
        admin.cmd(&["CLIENT", "KILL", "ID", "0"]),
        Reply::Error("ERR client-id should be greater than 0".into())
    );
    assert_eq!(
        admin.cmd(&["CLIENT", "KILL", "BOGUS", "x"]),
        Reply::Error("ERR syntax error".into())
    );
    assert_eq!(
        admin.cmd(&["CLIENT", "KILL", "ID", &me, "SKIPME", "no"]),
        Reply::Int(1)
    );
    admin.expect_closed();
}

#[test]
fn info_sections_use_redis_field_names() {
    let muxd = Muxd::start(&[]);
    let mut c = muxd.tcp();
    let _other = muxd.unix();
    let all = c.cmd(&["INFO"]).text();
    for field in [
        "process_id:",
        "uptime_in_seconds:",
        "connected_clients:2",
        "maxclients:",
        "total_connections_received:",
        "rejected_connections:0",
        "total_commands_processed:",
        "total_net_input_bytes:",
        "total_net_output_bytes:",
    ] {
        assert!(all.contains(field), "{field} missing in\n{all}");
    }
    assert!(all.contains(&format!("process_id:{}", muxd.pid())));
    let clients = c.cmd(&["INFO", "clients"]).text();
    assert!(clients.starts_with("# Clients\r\n"), "{clients}");
    assert!(!clients.contains("# Stats"));
    let stats = c.cmd(&["info", "STATS"]).text();
    assert!(stats.starts_with("# Stats\r\n"));
    assert_eq!(c.cmd(&["INFO", "nosuchsection"]), Reply::bulk(""));
}

#[test]
fn config_get_answers_what_redis_tools_ask() {
    let muxd = Muxd::start(&["--max-clients", "123", "--timeout", "7"]);
    let mut c = muxd.tcp();
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "save"]),
        Reply::Array(vec![Reply::bulk("save"), Reply::bulk("")])
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "appendonly"]),
        Reply::Array(vec![Reply::bulk("appendonly"), Reply::bulk("no")])
    );
    assert_eq!(
        c.cmd(&["config", "get", "maxclients"]),
        Reply::Array(vec![Reply::bulk("maxclients"), Reply::bulk("123")])
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "time*"]),
        Reply::Array(vec![Reply::bulk("timeout"), Reply::bulk("7")])
    );
    match c.cmd(&["CONFIG", "GET", "*"]) {
        Reply::Array(items) => assert!(items.len() >= 20 && items.len() % 2 == 0),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "nothing-matches"]),
        Reply::Array(vec![])
    );
    assert!(matches!(
        c.cmd(&["CONFIG", "SET", "timeout", "1"]),
        Reply::Error(_)
    ));
    assert_eq!(
        c.cmd(&["CONFIG", "GET"]),
        Reply::Error("ERR wrong number of arguments for 'config|get' command".into())
    );
}

#[test]
fn command_and_select() {
    let muxd = Muxd::start(&[]);
    let mut c = muxd.tcp();
    let count = match c.cmd(&["COMMAND", "COUNT"]) {
        Reply::Int(n) => n,
        other => panic!("{other:?}"),
    };
    match c.cmd(&["COMMAND"]) {
        Reply::Array(items) => assert_eq!(items.len() as i64, count),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.cmd(&["COMMAND", "DOCS"]), Reply::Array(vec![]));
    assert_eq!(c.cmd(&["SELECT", "0"]), Reply::simple("OK"));
    assert_eq!(
        c.cmd(&["SELECT", "1"]),
        Reply::Error("ERR DB index is out of range".into())
    );
}

/// A client that is already closing (it sent QUIT after a big reply it never reads) can
/// still be killed, as in Redis; otherwise it would hold its output forever.
#[test]
fn client_kill_removes_a_client_stuck_closing() {
    let muxd = Muxd::start(&[]);
    let mut stuck = muxd.tcp();
    let id = stuck.id();
    let big = vec![b'b'; 8 * 1024 * 1024];
    let mut request = util::encode(&[b"ECHO", &big]);
    request.extend_from_slice(b"QUIT\r\n");
    stuck.send(&request);
    let mut admin = muxd.unix();
    util::eventually("the stuck client is closing", || {
        let list = admin.cmd(&["CLIENT", "LIST", "ID", &id.to_string()]).text();
        parse_client_list(&list)
            .first()
            .is_some_and(|row| row["flags"].contains('c'))
    });
    assert_eq!(
        admin.cmd(&["CLIENT", "KILL", "ID", &id.to_string()]),
        Reply::Int(1)
    );
    util::eventually("the stuck client is gone", || {
        util::info_field(&mut admin, "connected_clients") == "1"
    });
    assert_eq!(util::info_field(&mut admin, "closed_killed"), "1");
}
