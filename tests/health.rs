//! Health checks: what load balancers ask a Redis backend (`PING`, `INFO replication`
//! expecting `role:master`, `QUIT`) gets Redis 7's answers, compared with a real
//! `redis-server`.

mod util;

use util::redis_server::RedisServer;
use util::{Client, Muxd, Reply, require_tool};

/// `INFO`'s text as (section headers, `field:value` lines).
fn lines(text: &str) -> Vec<&str> {
    text.split("\r\n").filter(|l| !l.is_empty()).collect()
}

#[test]
fn info_replication_is_redis_for_a_master_without_replicas() {
    if !require_tool("redis-server") {
        return;
    }
    let redis = RedisServer::start(&[]);
    let muxd = Muxd::start(&[]);
    let theirs = Client::tcp(redis.tcp_addr())
        .cmd(&["INFO", "replication"])
        .text();
    let ours = muxd.tcp().cmd(&["INFO", "replication"]).text();
    let (theirs, ours) = (lines(&theirs), lines(&ours));
    assert_eq!(ours.len(), theirs.len(), "ours {ours:?}\ntheirs {theirs:?}");
    for (o, t) in ours.iter().zip(&theirs) {
        match (o.split_once(':'), t.split_once(':')) {
            (Some(("master_replid", a)), Some(("master_replid", b))) => {
                for id in [a, b] {
                    assert_eq!(id.len(), 40);
                    assert!(id.bytes().all(|c| c.is_ascii_hexdigit()), "{id}");
                }
            }
            _ => assert_eq!(o, t),
        }
    }
    assert!(ours.contains(&"role:master"));
    assert!(ours.contains(&"connected_slaves:0"));
}

#[test]
fn plain_info_says_role_master_with_sections_in_redis_order() {
    if !require_tool("redis-server") {
        return;
    }
    let redis = RedisServer::start(&[]);
    let muxd = Muxd::start(&[]);
    let mut c = muxd.tcp();
    let ours = c.cmd(&["INFO"]).text();
    assert!(lines(&ours).contains(&"role:master"), "{ours}");
    let theirs = Client::tcp(redis.tcp_addr()).cmd(&["INFO"]).text();
    let headers = |text: &str| -> Vec<String> {
        lines(text)
            .into_iter()
            .filter(|l| l.starts_with("# "))
            .map(str::to_owned)
            .collect()
    };
    let (ours, theirs) = (headers(&ours), headers(&theirs));
    let in_redis_order: Vec<&String> = theirs.iter().filter(|h| ours.contains(h)).collect();
    assert_eq!(ours.iter().collect::<Vec<_>>(), in_redis_order);
    // The same id every time: it is the server's.
    let id = |c: &mut Client| util::info_field(c, "master_replid");
    assert_eq!(id(&mut c), id(&mut muxd.unix()));
}

#[test]
fn the_tcp_check_recipe_passes() {
    // HAProxy's usual Redis check, as the bytes it sends: PING, INFO replication expecting
    // role:master, QUIT.
    let muxd = Muxd::start(&[]);
    let mut c = muxd.tcp();
    c.send(b"PING\r\ninfo replication\r\nQUIT\r\n");
    assert_eq!(c.read_reply(), Reply::simple("PONG"));
    assert!(c.read_reply().text().contains("\r\nrole:master\r\n"));
    assert_eq!(c.read_reply(), Reply::simple("OK"));
    c.expect_closed();
}
