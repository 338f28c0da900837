//! Slow subscribers (Redis's `client-output-buffer-limit pubsub`): one that stops reading
//! is closed at the hard limit at once, or after staying above the soft limit for longer
//! than allowed; logged with its id and counted; the publisher and the other
//! subscribers are not held up and lose nothing.

mod util;

use std::thread;
use std::time::{Duration, Instant};

use util::{Client, Muxd, Reply, encode, eventually, info_field};

/// A subscriber on a Unix socket (small kernel buffers) that reads nothing more: what
/// muxd sends it piles up on muxd's side.
fn stalled_subscriber(muxd: &Muxd, channel: &[u8]) -> (Client, i64) {
    let mut sub = muxd.unix();
    let id = sub.id();
    sub.send(&encode(&[b"SUBSCRIBE", channel]));
    sub.read_reply();
    (sub, id)
}

/// Publishes `count` messages of `size` bytes on `channel`, `window` at a time (each
/// batch written whole, its replies read before the next: a publisher as fast as the
/// server, not faster), and returns what each `PUBLISH` replied.
fn publish_burst(
    muxd: &Muxd,
    channel: &'static [u8],
    count: usize,
    size: usize,
    window: usize,
) -> Vec<i64> {
    let mut publisher = muxd.tcp();
    let payload = vec![b'x'; size];
    let mut replies = Vec::with_capacity(count);
    while replies.len() < count {
        let n = window.min(count - replies.len());
        let mut batch = Vec::new();
        for _ in 0..n {
            batch.extend(encode(&[b"PUBLISH", channel, &payload]));
        }
        publisher.send(&batch);
        for _ in 0..n {
            match publisher.read_reply() {
                Reply::Int(receivers) => replies.push(receivers),
                other => panic!("{other:?}"),
            }
        }
    }
    replies
}

/// Reads `count` messages of `size` bytes on `channel`, from a thread.
fn drain(mut sub: Client, channel: &'static str, count: usize) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for i in 0..count {
            match sub.read_reply() {
                Reply::Array(items) if items.len() == 3 && items[1] == Reply::bulk(channel) => {}
                other => panic!("message {i}: {other:?}"),
            }
        }
    })
}

#[test]
fn a_subscriber_past_the_hard_limit_is_closed_at_once() {
    let muxd = Muxd::start(&["--pubsub-hard-limit", "8mb", "--pubsub-soft-limit", "0"]);
    let (mut stalled, id) = stalled_subscriber(&muxd, b"c");
    let mut reader = muxd.tcp();
    reader.send(&encode(&[b"SUBSCRIBE", b"c"]));
    reader.read_reply();
    let reader = drain(reader, "c", 4000);
    // 40 MB, 500 KB at a time: far more than the limit and the socket buffers together,
    // while a subscriber that reads stays far below the limit.
    let receivers = publish_burst(&muxd, b"c", 4000, 10_000, 50);
    reader.join().unwrap();
    assert_eq!(receivers.first(), Some(&2));
    assert_eq!(
        receivers.last(),
        Some(&1),
        "the stalled subscriber was closed"
    );
    muxd.wait_for_log(&format!(
        "client output buffer limit reached, closing client={id} limit=hard"
    ));
    assert_eq!(
        muxd.info_field("client_output_buffer_limit_disconnections"),
        "1"
    );
    // What it finds is part of the stream, then the end of it (not a wait).
    stalled.expect_closed_after_replies();
}

#[test]
fn a_subscriber_above_the_soft_limit_too_long_is_closed() {
    let muxd = Muxd::start(&[
        "--pubsub-hard-limit",
        "0",
        "--pubsub-soft-limit",
        "256kb",
        "--pubsub-soft-seconds",
        "1",
    ]);
    let (_stalled, id) = stalled_subscriber(&muxd, b"c");
    // Above the soft limit (and the socket's buffers): its clock starts.
    let receivers = publish_burst(&muxd, b"c", 200, 10_000, 200);
    assert!(receivers.iter().all(|&n| n == 1));
    let above_since = Instant::now();
    assert_eq!(
        muxd.info_field("client_output_buffer_limit_disconnections"),
        "0"
    );
    // Redis looks again each time something is queued for it.
    let mut publisher = muxd.tcp();
    eventually("the soft limit closed the subscriber", || {
        publisher.cmd(&["PUBLISH", "c", "tick"]) == Reply::Int(0)
    });
    assert!(
        above_since.elapsed() >= Duration::from_secs(1),
        "closed before its second above the soft limit was over"
    );
    muxd.wait_for_log(&format!(
        "client output buffer limit reached, closing client={id} limit=soft"
    ));
    assert_eq!(
        muxd.info_field("client_output_buffer_limit_disconnections"),
        "1"
    );
    assert_eq!(info_field(&mut publisher, "pubsub_channels"), "0");
}

#[test]
fn config_get_shows_the_limits_in_redis_s_form() {
    let muxd = Muxd::start(&["--pubsub-hard-limit", "16mb", "--pubsub-soft-seconds", "30"]);
    let mut c = muxd.tcp();
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "client-output-buffer-limit"]),
        Reply::Array(vec![
            Reply::bulk("client-output-buffer-limit"),
            Reply::bulk("normal 0 0 0 slave 268435456 67108864 60 pubsub 16777216 8388608 30"),
        ])
    );
    let muxd = Muxd::start(&[]);
    let mut c = muxd.tcp();
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "client-output-buffer-limit"]),
        Reply::Array(vec![
            Reply::bulk("client-output-buffer-limit"),
            Reply::bulk("normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"),
        ]),
        "Redis's default"
    );
}
