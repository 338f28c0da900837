//! Pub/sub in the daemon, beyond what the comparison with Redis covers: introspection
//! (`CLIENT LIST`, `INFO`), what a departing subscriber leaves (nothing), many
//! subscribers and many messages with nothing lost, a subscriber that resets mid-stream.

mod util;

use std::io::Read;
use std::time::Duration;

use util::{Client, Muxd, Reply, encode, eventually, info_field, parse_client_list};

fn bulk(s: &str) -> Reply {
    Reply::bulk(s)
}

/// A confirmation or message as Redis sends it to a RESP2 client.
fn push(kind: &str, name: &str, n: i64) -> Reply {
    Reply::Array(vec![bulk(kind), bulk(name), Reply::Int(n)])
}

fn message(channel: &str, text: &str) -> Reply {
    Reply::Array(vec![bulk("message"), bulk(channel), bulk(text)])
}

#[test]
fn client_list_and_info_show_subscriptions() {
    let muxd = Muxd::start(&[]);
    let mut sub = muxd.unix();
    let id = sub.id();
    sub.send(&encode(&[b"SUBSCRIBE", b"a", b"b"]));
    assert_eq!(sub.read_reply(), push("subscribe", "a", 1));
    assert_eq!(sub.read_reply(), push("subscribe", "b", 2));
    sub.send(&encode(&[b"PSUBSCRIBE", b"p*"]));
    assert_eq!(sub.read_reply(), push("psubscribe", "p*", 3));
    sub.send(&encode(&[b"SSUBSCRIBE", b"s"]));
    assert_eq!(sub.read_reply(), push("ssubscribe", "s", 1));

    let mut other = muxd.tcp();
    let list = parse_client_list(&other.cmd(&["CLIENT", "LIST"]).text());
    let line = list
        .iter()
        .find(|l| l["id"] == id.to_string())
        .expect("the subscriber's line");
    assert_eq!(
        (
            &*line["flags"],
            &*line["sub"],
            &*line["psub"],
            &*line["ssub"]
        ),
        ("PU", "2", "1", "1")
    );
    let own = list.iter().find(|l| l["id"] != id.to_string()).unwrap();
    assert_eq!((&*own["flags"], &*own["sub"]), ("N", "0"));
    assert_eq!(info_field(&mut other, "pubsub_channels"), "2");
    assert_eq!(info_field(&mut other, "pubsub_patterns"), "1");
    assert_eq!(info_field(&mut other, "pubsubshard_channels"), "1");

    // Unsubscribing from all: one confirmation each, counts going down to 0.
    sub.send(&encode(&[b"UNSUBSCRIBE"]));
    let mut names = Vec::new();
    for left in [2, 1] {
        match sub.read_reply() {
            Reply::Array(items) => {
                assert_eq!(items[0], bulk("unsubscribe"));
                assert_eq!(items[2], Reply::Int(left));
                names.push(items[1].text());
            }
            other => panic!("not a confirmation: {other:?}"),
        }
    }
    names.sort();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(info_field(&mut other, "pubsub_channels"), "0");
}

#[test]
fn a_subscriber_that_goes_leaves_nothing_behind() {
    let muxd = Muxd::start(&[]);
    let mut publisher = muxd.tcp();
    for kind in ["close", "reset"] {
        let mut sub = muxd.tcp();
        sub.send(&encode(&[b"SUBSCRIBE", b"news"]));
        sub.read_reply();
        sub.send(&encode(&[b"PSUBSCRIBE", b"n*"]));
        sub.read_reply();
        sub.send(&encode(&[b"SSUBSCRIBE", b"news"]));
        sub.read_reply();
        assert_eq!(publisher.cmd(&["PUBLISH", "news", "x"]), Reply::Int(2));
        if kind == "reset" {
            // SO_LINGER 0: the close resets the connection.
            reset_on_close(&sub);
        }
        drop(sub);
        eventually("the subscriber's close was handled", || {
            info_field(&mut publisher, "connected_clients") == "1"
        });
        assert_eq!(publisher.cmd(&["PUBLISH", "news", "x"]), Reply::Int(0));
        assert_eq!(publisher.cmd(&["SPUBLISH", "news", "x"]), Reply::Int(0));
        for field in ["pubsub_channels", "pubsub_patterns", "pubsubshard_channels"] {
            assert_eq!(info_field(&mut publisher, field), "0", "{field}");
        }
    }
}

/// Makes closing `client` reset its connection (SO_LINGER 0).
fn reset_on_close(client: &Client) {
    socket2::SockRef::from(client.tcp_stream().unwrap())
        .set_linger(Some(Duration::ZERO))
        .unwrap();
}

/// Reads `count` messages on `channel` numbered from 0, in order.
#[track_caller]
fn read_numbered(sub: &mut Client, channel: &str, count: usize) {
    for i in 0..count {
        assert_eq!(
            sub.read_reply(),
            message(channel, &i.to_string()),
            "message {i}"
        );
    }
}

/// Messages larger than a shared batch (64 KiB) and many small ones after them, to a
/// subscriber and to one by pattern, arrive whole.
#[test]
fn large_and_small_messages_arrive_whole() {
    let muxd = Muxd::start(&[]);
    let mut sub = muxd.unix();
    sub.send(&encode(&[b"SUBSCRIBE", b"c"]));
    sub.read_reply();
    let mut psub = muxd.tcp();
    psub.send(&encode(&[b"PSUBSCRIBE", b"*"]));
    psub.read_reply();
    let mut publisher = muxd.tcp();
    let sizes = [200_000, 1, 70_000, 65_536, 10];
    let mut batch = Vec::new();
    for (i, &size) in sizes.iter().chain(&[100; 2000]).enumerate() {
        let payload = vec![b'a' + (i % 26) as u8; size];
        batch.extend(encode(&[b"PUBLISH", b"c", &payload]));
    }
    publisher.send(&batch);
    for (i, &size) in sizes.iter().chain(&[100; 2000]).enumerate() {
        let payload = vec![b'a' + (i % 26) as u8; size];
        assert_eq!(publisher.read_reply(), Reply::Int(2));
        assert_eq!(
            sub.read_reply(),
            Reply::Array(vec![
                bulk("message"),
                bulk("c"),
                Reply::Bulk(payload.clone())
            ]),
            "message {i}"
        );
        assert_eq!(
            psub.read_reply(),
            Reply::Array(vec![
                bulk("pmessage"),
                bulk("*"),
                bulk("c"),
                Reply::Bulk(payload)
            ]),
            "pmessage {i}"
        );
    }
}

#[test]
fn many_subscribers_get_every_message_in_order() {
    const SUBSCRIBERS: usize = 200;
    const MESSAGES: usize = 2_000;
    let muxd = Muxd::start(&[]);
    let mut subs: Vec<Client> = (0..SUBSCRIBERS)
        .map(|i| if i % 2 == 0 { muxd.tcp() } else { muxd.unix() })
        .collect();
    for sub in &mut subs {
        sub.send(&encode(&[b"SUBSCRIBE", b"c"]));
        assert_eq!(sub.read_reply(), push("subscribe", "c", 1));
    }
    // Pipelined: the publisher writes everything, then reads its replies.
    let mut publisher = muxd.tcp();
    let mut batch = Vec::new();
    for i in 0..MESSAGES {
        batch.extend(encode(&[b"PUBLISH", b"c", i.to_string().as_bytes()]));
    }
    let writer = {
        let mut stream = publisher.tcp_stream().unwrap().try_clone().unwrap();
        std::thread::spawn(move || std::io::Write::write_all(&mut stream, &batch).unwrap())
    };
    // Subscribers are read while the publisher still writes (they are not slow).
    let readers: Vec<_> = subs
        .into_iter()
        .map(|mut sub| std::thread::spawn(move || read_numbered(&mut sub, "c", MESSAGES)))
        .collect();
    for _ in 0..MESSAGES {
        assert_eq!(publisher.read_reply(), Reply::Int(SUBSCRIBERS as i64));
    }
    writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
}

#[test]
fn a_subscriber_resetting_mid_stream_disturbs_nobody() {
    let muxd = Muxd::start(&[]);
    let mut steady = muxd.tcp();
    steady.send(&encode(&[b"SUBSCRIBE", b"c"]));
    steady.read_reply();
    let mut leaving = muxd.tcp();
    leaving.send(&encode(&[b"SUBSCRIBE", b"c"]));
    leaving.read_reply();
    let mut publisher = muxd.unix();
    let mut batch = Vec::new();
    for i in 0..5_000 {
        batch.extend(encode(&[b"PUBLISH", b"c", i.to_string().as_bytes()]));
    }
    publisher.send(&batch);
    // Read a little of the stream, then reset the connection with the rest unread.
    let mut some = [0u8; 100];
    leaving.tcp_stream().unwrap().read_exact(&mut some).unwrap();
    reset_on_close(&leaving);
    drop(leaving);
    read_numbered(&mut steady, "c", 5_000);
    let mut receivers = Vec::new();
    for _ in 0..5_000 {
        match publisher.read_reply() {
            Reply::Int(n) => receivers.push(n),
            other => panic!("{other:?}"),
        }
    }
    assert!(receivers.iter().all(|&n| n == 1 || n == 2), "{receivers:?}");
    eventually("the reset subscriber is gone", || {
        publisher.cmd(&["PUBSUB", "NUMSUB", "c"]) == Reply::Array(vec![bulk("c"), Reply::Int(1)])
    });
    assert_eq!(publisher.cmd(&["PUBLISH", "c", "last"]), Reply::Int(1));
    assert_eq!(steady.read_reply(), message("c", "last"));
}

/// Under RESP3 a client may publish to a channel it listens to: the message comes after
/// the reply, never inside one, even inside `EXEC`'s array (Redis 7.2's order).
#[test]
fn a_push_never_lands_inside_a_reply() {
    use muxd::resp::Value;
    let muxd = Muxd::start(&[]);
    let mut c = muxd.tcp();
    c.send(&encode(&[b"HELLO", b"3"]));
    assert!(matches!(c.try_read_value().unwrap(), Value::Map(_)));
    let msg = |text: &str| {
        Value::Push(vec![
            Value::Bulk(b"message".to_vec()),
            Value::Bulk(b"c".to_vec()),
            Value::Bulk(text.as_bytes().to_vec()),
        ])
    };
    c.send(&encode(&[b"SUBSCRIBE", b"c"]));
    c.try_read_value().unwrap();
    c.send(&encode(&[b"PUBLISH", b"c", b"mine"]));
    assert_eq!(c.try_read_value().unwrap(), Value::Integer(1));
    assert_eq!(c.try_read_value().unwrap(), msg("mine"));

    let mut batch = encode(&[b"MULTI"]);
    batch.extend(encode(&[b"PUBLISH", b"c", b"one"]));
    batch.extend(encode(&[b"PUBLISH", b"c", b"two"]));
    batch.extend(encode(&[b"PING"]));
    batch.extend(encode(&[b"EXEC"]));
    c.send(&batch);
    for _ in 0..4 {
        c.try_read_value().unwrap(); // +OK, +QUEUED x3
    }
    assert_eq!(
        c.try_read_value().unwrap(),
        Value::Array(vec![
            Value::Integer(1),
            Value::Integer(1),
            Value::Simple(b"PONG".to_vec())
        ])
    );
    assert_eq!(c.try_read_value().unwrap(), msg("one"));
    assert_eq!(c.try_read_value().unwrap(), msg("two"));
}
