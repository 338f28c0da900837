//! The loop as a library: a service and codec of the test's own (a line protocol that
//! upper-cases, with topics to subscribe and publish to), run in a thread and stopped
//! from another through a `ServerHandle`.

mod util;

use std::io::Write;
use std::sync::{Arc, Mutex};

use muxd::pubsub::{Kind, Via};
use muxd::{ClientId, ClientInfo, CloseReason, Codec, Context, ListenAddr, ServerContext, Service};
use util::eventually as wait_until;
use util::lines::{self, LineClient, Lines};

/// Upper-cases lines; `ID`, `SEND <id> <text>`, `STOP` and `PANIC` do what they say;
/// `SUB`/`PSUB`/`UNSUB <topic>`, `PUB <topic> <text>` and `NUMSUB <topic>` are pub/sub,
/// messages arriving as `MSG <topic> <text>` or `PMSG <pattern> <topic> <text>`.
#[derive(Default)]
struct Upper {
    disconnected: Arc<Mutex<Vec<(ClientId, CloseReason)>>>,
    served: u64,
}

impl Service<Lines> for Upper {
    type ClientState = u32;

    fn on_request(&mut self, line: &[u8], ctx: &mut Context<'_, Lines, Self>) {
        self.served += 1;
        *ctx.state() += 1;
        let text = String::from_utf8_lossy(line);
        let mut words = text.splitn(3, ' ');
        match words.next().unwrap_or_default() {
            "ID" => {
                let id = ctx.id().to_string();
                ctx.reply(id.as_bytes());
            }
            "SEND" => {
                let to: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
                let message = words.next().unwrap_or_default().to_owned();
                let sent = ctx.send_to(ClientId::from_u64(to), message.as_bytes());
                ctx.reply(if sent { b"SENT" } else { b"GONE" });
            }
            "COUNT" => {
                let n = ctx.state().to_string();
                ctx.reply(n.as_bytes());
            }
            "STOP" => {
                ctx.reply(b"STOPPING");
                ctx.stop_server();
            }
            "PANIC" => panic!("the service was told to panic"),
            "SUB" | "PSUB" | "UNSUB" => {
                let kind = if line.starts_with(b"PSUB") {
                    Kind::Pattern
                } else {
                    Kind::Channel
                };
                let topic = words.next().unwrap_or_default().as_bytes();
                let changed = if line.starts_with(b"UNSUB") {
                    ctx.unsubscribe(kind, topic)
                } else {
                    ctx.subscribe(kind, topic)
                };
                let subs = ctx.subscriptions();
                let reply = format!("{changed} {}", subs.channels_and_patterns());
                ctx.reply(reply.as_bytes());
            }
            "PUB" => {
                let topic = words.next().unwrap_or_default();
                let text = words.next().unwrap_or_default();
                let receivers = ctx.publish(topic.as_bytes(), |via, (), out| {
                    let line = match via {
                        Via::Pattern(p) => {
                            format!("PMSG {} {topic} {text}", String::from_utf8_lossy(p))
                        }
                        Via::Channel | Via::ShardChannel => format!("MSG {topic} {text}"),
                    };
                    Lines::encode((), line.as_bytes(), out);
                });
                ctx.reply(receivers.to_string().as_bytes());
            }
            "NUMSUB" => {
                let topic = words.next().unwrap_or_default().as_bytes();
                let n = ctx.topics().subscribers(Kind::Channel, topic);
                ctx.reply(n.to_string().as_bytes());
            }
            _ => ctx.reply(text.to_uppercase().as_bytes()),
        }
    }

    fn on_connect(&mut self, ctx: &mut Context<'_, Lines, Self>) {
        ctx.reply(b"HELLO");
    }

    fn on_disconnect(
        &mut self,
        info: &ClientInfo,
        _: u32,
        reason: CloseReason,
        _: &mut ServerContext<'_, Lines, Self>,
    ) {
        self.disconnected.lock().unwrap().push((info.id(), reason));
    }
}

/// A client of `Upper`, greeted.
fn greeted(mut c: LineClient) -> LineClient {
    assert_eq!(c.line(), "HELLO");
    c
}

/// Closed clients, as the service saw them go.
type Disconnects = Arc<Mutex<Vec<(ClientId, CloseReason)>>>;

/// A server running `Upper` in a thread, on TCP and a Unix socket.
struct Running {
    tcp: std::net::SocketAddr,
    unix: std::path::PathBuf,
    handle: muxd::ServerHandle<Lines, Upper>,
    thread: std::thread::JoinHandle<Upper>,
    disconnected: Disconnects,
}

fn start(dir: &tempfile::TempDir) -> Running {
    let service = Upper::default();
    let disconnected = Arc::clone(&service.disconnected);
    let unix = dir.path().join("lines.sock");
    let config_unix = unix.clone();
    let running = lines::Running::start(service, |config| {
        config.listen.push(ListenAddr::unix(config_unix));
    });
    Running {
        tcp: running.tcp,
        unix,
        handle: running.handle,
        thread: running.thread,
        disconnected,
    }
}

#[test]
fn own_codec_and_service_in_a_thread_stopped_through_the_handle() {
    let dir = tempfile::tempdir().unwrap();
    let Running {
        tcp,
        unix,
        handle,
        thread,
        ..
    } = start(&dir);
    let mut a = greeted(LineClient::tcp(tcp));
    let mut b = greeted(LineClient::unix(&unix));
    assert_eq!(a.ask("hello"), "HELLO");
    assert_eq!(b.ask("multiplexed world"), "MULTIPLEXED WORLD");
    assert_eq!(a.ask("COUNT"), "2");
    assert_eq!(b.ask("COUNT"), "2");
    // Pipelined lines come back in order.
    a.writer.write_all(b"one\ntwo\nthree\n").unwrap();
    assert_eq!(
        [a.line(), a.line(), a.line()],
        ["ONE".to_owned(), "TWO".to_owned(), "THREE".to_owned()]
    );

    let stopper = std::thread::spawn(move || handle.stop().unwrap());
    stopper.join().unwrap();
    let service = thread.join().unwrap();
    assert_eq!(service.served, 7);
    assert!(a.closed());
    assert!(b.closed());
    assert!(!unix.exists(), "socket file removed on stop");
}

#[test]
fn a_stale_client_id_never_reaches_the_client_in_its_old_slot() {
    let dir = tempfile::tempdir().unwrap();
    let Running {
        tcp,
        handle,
        thread,
        disconnected,
        ..
    } = start(&dir);
    let mut sender = greeted(LineClient::tcp(tcp));
    let mut first = greeted(LineClient::tcp(tcp));
    let first_id: u64 = first.ask("ID").parse().unwrap();
    drop(first);
    wait_until("the first client's close was handled", || {
        disconnected
            .lock()
            .unwrap()
            .iter()
            .any(|(id, reason)| id.as_u64() == first_id && *reason == CloseReason::PeerClosed)
    });
    // The next client takes the freed table slot; it must get a new id.
    let mut second = greeted(LineClient::tcp(tcp));
    let second_id: u64 = second.ask("ID").parse().unwrap();
    assert_ne!(first_id, second_id);
    assert_eq!(
        sender.ask(&format!("SEND {first_id} for-the-first")),
        "GONE"
    );
    assert_eq!(
        sender.ask(&format!("SEND {second_id} for-the-second")),
        "SENT"
    );
    // The first line the second client receives is the one meant for it.
    assert_eq!(second.line(), "for-the-second");
    handle.stop().unwrap();
    thread.join().unwrap();
}

#[test]
fn a_service_can_stop_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let Running {
        tcp,
        unix,
        thread,
        disconnected,
        ..
    } = start(&dir);
    let mut other = greeted(LineClient::unix(&unix));
    let mut c = greeted(LineClient::tcp(tcp));
    assert_eq!(c.ask("STOP"), "STOPPING");
    thread.join().unwrap();
    assert!(c.closed());
    assert!(other.closed());
    assert!(
        disconnected
            .lock()
            .unwrap()
            .iter()
            .all(|(_, reason)| *reason == CloseReason::Shutdown)
    );
}

#[test]
fn a_panicking_service_closes_only_that_client() {
    let dir = tempfile::tempdir().unwrap();
    let Running {
        tcp,
        unix,
        handle,
        thread,
        disconnected,
    } = start(&dir);
    let mut good = greeted(LineClient::unix(&unix));
    assert_eq!(good.ask("before"), "BEFORE");
    let mut bad = greeted(LineClient::tcp(tcp));
    let bad_id: u64 = bad.ask("ID").parse().unwrap();
    // The reply owed before the panic is still delivered, then an error, then the close.
    bad.writer.write_all(b"first\nPANIC\nnever\n").unwrap();
    assert_eq!(bad.line(), "FIRST");
    assert_eq!(
        bad.line(),
        "ERROR internal error while handling the request"
    );
    assert!(bad.closed());
    wait_until("the panicking client was closed", || {
        disconnected
            .lock()
            .unwrap()
            .iter()
            .any(|(id, reason)| id.as_u64() == bad_id && *reason == CloseReason::ServicePanic)
    });
    assert_eq!(good.ask("after"), "AFTER");
    let mut again = greeted(LineClient::tcp(tcp));
    assert_eq!(again.ask("still serving"), "STILL SERVING");
    handle.stop().unwrap();
    let service = thread.join().unwrap();
    // "never" was not handled: first, PANIC, ID, before, after, still serving.
    assert_eq!(service.served, 6);
}

#[test]
fn an_embedded_service_subscribes_its_clients_and_publishes_to_them() {
    let dir = tempfile::tempdir().unwrap();
    let Running {
        tcp,
        unix,
        handle,
        thread,
        disconnected,
    } = start(&dir);
    let mut a = greeted(LineClient::tcp(tcp));
    let mut b = greeted(LineClient::unix(&unix));
    let mut p = greeted(LineClient::tcp(tcp));
    let mut publisher = greeted(LineClient::unix(&unix));
    assert_eq!(a.ask("SUB news"), "true 1");
    assert_eq!(a.ask("SUB news"), "false 1");
    assert_eq!(b.ask("SUB news"), "true 1");
    assert_eq!(p.ask("PSUB n*"), "true 1");
    assert_eq!(publisher.ask("NUMSUB news"), "2");

    // A subscriber by channel and a subscriber by pattern each get the message.
    assert_eq!(publisher.ask("PUB news hello"), "3");
    assert_eq!(a.line(), "MSG news hello");
    assert_eq!(b.line(), "MSG news hello");
    assert_eq!(p.line(), "PMSG n* news hello");
    assert_eq!(publisher.ask("PUB other hello"), "0");

    // Publishing to itself: the reply first, then the message.
    assert_eq!(a.ask("PUB news mine"), "3");
    assert_eq!(a.line(), "MSG news mine");
    assert_eq!(b.line(), "MSG news mine");
    assert_eq!(p.line(), "PMSG n* news mine");

    // A burst arrives whole and in order, interleaved with the subscriber's own replies.
    let burst: String = (0..500).map(|i| format!("PUB news m{i}\n")).collect();
    publisher.writer.write_all(burst.as_bytes()).unwrap();
    b.writer.write_all(b"hi\n").unwrap();
    let mut seen = Vec::new();
    let mut replied = false;
    while seen.len() < 500 || !replied {
        match b.line() {
            line if line == "HI" => replied = true,
            line => seen.push(line),
        }
    }
    let expected: Vec<String> = (0..500).map(|i| format!("MSG news m{i}")).collect();
    assert_eq!(seen, expected);
    for i in 0..500 {
        assert_eq!(publisher.line(), "3");
        assert_eq!(a.line(), format!("MSG news m{i}"));
        assert_eq!(p.line(), format!("PMSG n* news m{i}"));
    }

    // Unsubscribing, and going away, leave nothing behind.
    assert_eq!(a.ask("UNSUB news"), "true 0");
    assert_eq!(a.ask("UNSUB news"), "false 0");
    let b_id: u64 = b.ask("ID").parse().unwrap();
    drop(b);
    wait_until("the subscriber's close was handled", || {
        disconnected
            .lock()
            .unwrap()
            .iter()
            .any(|(id, _)| id.as_u64() == b_id)
    });
    assert_eq!(publisher.ask("NUMSUB news"), "0");
    assert_eq!(publisher.ask("PUB news bye"), "1");
    assert_eq!(p.line(), "PMSG n* news bye");
    drop(p);
    wait_until("the pattern subscriber's close was handled", || {
        disconnected.lock().unwrap().len() >= 2
    });
    assert_eq!(publisher.ask("PUB news bye"), "0");
    handle.stop().unwrap();
    thread.join().unwrap();
}

/// Other threads publish through the handle: every message reaches the subscriber, in
/// the order each thread published them.
#[test]
fn other_threads_publish_through_the_handle() {
    const THREADS: usize = 4;
    const EACH: usize = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let Running {
        tcp,
        handle,
        thread,
        ..
    } = start(&dir);
    let mut sub = greeted(LineClient::tcp(tcp));
    assert_eq!(sub.ask("SUB news"), "true 1");
    let publishers: Vec<_> = (0..THREADS)
        .map(|t| {
            let handle = handle.clone();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    let line = format!("MSG news {t}:{i}");
                    handle
                        .publish(b"news".to_vec(), move |_, (), out| {
                            Lines::encode((), line.as_bytes(), out)
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    let mut next = [0usize; THREADS];
    for _ in 0..THREADS * EACH {
        let line = sub.line();
        let (t, i) = line
            .strip_prefix("MSG news ")
            .and_then(|rest| rest.split_once(':'))
            .unwrap_or_else(|| panic!("{line}"));
        let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[t], "thread {t} out of order");
        next[t] += 1;
    }
    for p in publishers {
        p.join().unwrap();
    }
    assert_eq!(next, [EACH; THREADS]);
    handle.stop().unwrap();
    thread.join().unwrap();
}
