//! Client memory, server-wide (`--maxmemory-clients`): past the limit, the clients whose
//! buffers hold the most are closed, logged and counted; clients within their share are
//! untouched. Input (a huge request arriving) and output (messages a subscriber does not
//! read) both count.

mod util;

use util::{Client, Muxd, Reply, encode, eventually, parse_client_list};

/// A field of `client`'s line in `CLIENT LIST`, asked through `asker`.
fn client_field(asker: &mut Client, id: i64, field: &str) -> Option<u64> {
    let list = parse_client_list(&asker.cmd(&["CLIENT", "LIST"]).text());
    list.iter()
        .find(|l| l["id"] == id.to_string())
        .map(|l| l[field].parse().unwrap())
}

/// Starts an `ECHO` of `total` bytes and sends `sent` of them.
fn start_big_echo(client: &mut Client, total: usize, sent: usize) {
    client.send(format!("*2\r\n$4\r\nECHO\r\n${total}\r\n").as_bytes());
    client.send(&vec![b'x'; sent]);
}

#[test]
fn the_client_holding_the_most_is_evicted_and_the_others_are_not() {
    let muxd = Muxd::start(&["--maxmemory-clients", "24mb"]);
    let mut asker = muxd.tcp();
    let mut big = muxd.tcp();
    let big_id = big.id();
    let mut small = muxd.unix();
    let small_id = small.id();
    start_big_echo(&mut small, 1_000_000, 900_000);
    start_big_echo(&mut big, 30_000_000, 10_000_000);
    eventually("both partial requests are buffered", || {
        client_field(&mut asker, big_id, "qbuf") >= Some(10_000_000)
            && client_field(&mut asker, small_id, "qbuf") >= Some(900_000)
    });
    assert_eq!(muxd.info_field("evicted_clients"), "0");
    // 15 MB more: past the limit. The largest goes; the small one is within its share.
    // (The write may fail: it is closed before it has read all of it.)
    let _ = big.write_raw(&vec![b'x'; 15_000_000]);
    muxd.wait_for_log(&format!(
        "client memory above maxmemory-clients, evicting client={big_id}"
    ));
    assert_eq!(muxd.info_field("evicted_clients"), "1");
    assert_eq!(muxd.info_field("closed_evicted"), "1");
    big.expect_closed_after_replies();
    // The small client finishes its request and is answered.
    small.send(&vec![b'x'; 100_000]);
    small.send(b"\r\n");
    assert_eq!(small.read_reply(), Reply::Bulk(vec![b'x'; 1_000_000]));
    assert_eq!(asker.cmd(&["PING"]), Reply::simple("PONG"));
}

#[test]
fn a_subscriber_s_unread_messages_count() {
    // The pub/sub limit off: only the server-wide limit stands.
    let muxd = Muxd::start(&["--maxmemory-clients", "8mb", "--pubsub-hard-limit", "0"]);
    let mut stalled = muxd.unix();
    let stalled_id = stalled.id();
    stalled.send(&encode(&[b"SUBSCRIBE", b"c"]));
    stalled.read_reply();
    let mut publisher = muxd.tcp();
    let payload = vec![b'x'; 100_000];
    let mut receivers = Vec::new();
    // Up to 40 MB: the stalled subscriber is evicted on the way.
    for _ in 0..40 {
        let mut batch = Vec::new();
        for _ in 0..10 {
            batch.extend(encode(&[b"PUBLISH", b"c", &payload]));
        }
        publisher.send(&batch);
        for _ in 0..10 {
            receivers.push(publisher.read_reply());
        }
    }
    assert_eq!(receivers.first(), Some(&Reply::Int(1)));
    assert_eq!(receivers.last(), Some(&Reply::Int(0)));
    muxd.wait_for_log(&format!(
        "client memory above maxmemory-clients, evicting client={stalled_id}"
    ));
    assert_eq!(muxd.info_field("evicted_clients"), "1");
}

#[test]
fn config_get_answers_in_redis_s_form() {
    let muxd = Muxd::start(&[]);
    let mut c = muxd.tcp();
    let get = |c: &mut Client| c.cmd(&["CONFIG", "GET", "maxmemory-clients"]);
    assert_eq!(
        get(&mut c),
        Reply::Array(vec![Reply::bulk("maxmemory-clients"), Reply::bulk("25%")])
    );
    for (flag, shown) in [("16mb", "16777216"), ("0", "0"), ("10%", "10%")] {
        let muxd = Muxd::start(&["--maxmemory-clients", flag]);
        let mut c = muxd.tcp();
        assert_eq!(
            get(&mut c),
            Reply::Array(vec![Reply::bulk("maxmemory-clients"), Reply::bulk(shown)]),
            "{flag}"
        );
    }
}
