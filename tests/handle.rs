//! Other threads reaching the loop through a `ServerHandle`, against the real loop: many
//! threads' messages all arrive, each thread's in order; a flood gets errors, not memory;
//! a waiting send on the loop thread fails instead of hanging; a stopped server refuses.

mod util;

use std::collections::HashMap;
use std::sync::mpsc;
use std::thread;

use muxd::{ClientId, Context, SendError, Service};
use util::TIMEOUT;
use util::lines::{LineClient, Lines, Running};

/// Answers `ID` with the client's id; nothing else.
#[derive(Default)]
struct Ids;

impl Service<Lines> for Ids {
    type ClientState = ();

    fn on_request(&mut self, _: &[u8], ctx: &mut Context<'_, Lines, Self>) {
        let id = ctx.id().to_string();
        ctx.reply(id.as_bytes());
    }
}

fn connect(running: &Running<Ids>) -> (LineClient, ClientId) {
    let mut c = LineClient::tcp(running.tcp);
    let id = c.ask("ID").parse().unwrap();
    (c, ClientId::from_u64(id))
}

#[test]
fn four_threads_times_ten_thousand_messages_all_arrive_in_order_per_thread() {
    const THREADS: usize = 4;
    const MESSAGES: usize = 10_000;
    let running = Running::start(Ids, |_| {});
    let clients: Vec<(LineClient, ClientId)> = (0..2).map(|_| connect(&running)).collect();
    let ids: Vec<ClientId> = clients.iter().map(|(_, id)| *id).collect();
    let senders: Vec<_> = (0..THREADS)
        .map(|t| {
            let handle = running.handle.clone();
            let ids = ids.clone();
            thread::spawn(move || {
                for seq in 0..MESSAGES {
                    let to = ids[(t + seq) % ids.len()];
                    let line = format!("{t} {seq}");
                    // Half the threads send responses, half run code that sends them:
                    // both go through the one queue, in order.
                    let sent = if t % 2 == 0 {
                        handle.send_to(to, move |r| r.send(line.as_bytes()))
                    } else {
                        handle.run(move |_, ctx| {
                            assert!(ctx.send_to(to, line.as_bytes()));
                        })
                    };
                    sent.unwrap();
                }
            })
        })
        .collect();
    let readers: Vec<_> = clients
        .into_iter()
        .map(|(mut c, _)| {
            thread::spawn(move || {
                let mut next: HashMap<usize, usize> = HashMap::new();
                for _ in 0..THREADS * MESSAGES / 2 {
                    let line = c.line();
                    let (t, seq) = line.split_once(' ').unwrap();
                    let (t, seq): (usize, usize) = (t.parse().unwrap(), seq.parse().unwrap());
                    let expected = next.entry(t).or_insert(seq);
                    assert_eq!(seq, *expected, "thread {t}'s messages out of order");
                    // Each thread alternates between the two clients.
                    *expected = seq + 2;
                }
                next.len()
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    for r in readers {
        assert_eq!(
            r.join().unwrap(),
            THREADS,
            "every thread reached every client"
        );
    }
    running.stop();
}

#[test]
fn a_flood_from_another_thread_gets_errors_not_memory() {
    const CAPACITY: usize = 64;
    let running = Running::start(Ids, |config| config.queue_capacity = CAPACITY);
    let (mut client, id) = connect(&running);
    // Hold the loop inside code sent to it: nothing leaves the queue meanwhile.
    let (held_tx, held) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    running
        .handle
        .run(move |_, _| {
            held_tx.send(()).unwrap();
            release_rx.recv_timeout(TIMEOUT).unwrap();
        })
        .unwrap();
    held.recv_timeout(TIMEOUT).unwrap();
    let mut queued = 0;
    let mut full = 0;
    for n in 0..100_000 {
        match running
            .handle
            .try_send_to(id, move |r| r.send(n.to_string().as_bytes()))
        {
            Ok(()) => queued += 1,
            Err(SendError::Full) => full += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(queued, CAPACITY, "the queue holds its capacity, no more");
    assert_eq!(full, 100_000 - CAPACITY);
    release.send(()).unwrap();
    for n in 0..CAPACITY {
        assert_eq!(client.line(), n.to_string());
    }
    // The loop is free again: the queue takes messages.
    running
        .handle
        .try_send_to(id, |r| r.send(b"after"))
        .unwrap();
    assert_eq!(client.line(), "after");
    running.stop();
}

#[test]
fn a_waiting_send_on_the_loop_thread_fails_instead_of_hanging() {
    let running = Running::start(Ids, |config| config.queue_capacity = 4);
    let (done_tx, done) = mpsc::channel();
    running
        .handle
        .run(move |_, ctx| {
            let handle = ctx.handle();
            while handle.try_run(|_, _| {}).is_ok() {}
            done_tx.send(handle.run(|_, _| {})).unwrap();
        })
        .unwrap();
    assert_eq!(done.recv_timeout(TIMEOUT).unwrap(), Err(SendError::Full));
    let handle = running.handle.clone();
    running.stop();
    assert_eq!(handle.try_run(|_, _| {}), Err(SendError::Stopped));
    assert_eq!(
        handle.send_to(ClientId::from_u64(1), |_| {}),
        Err(SendError::Stopped)
    );
}
