//! Steady-state serving allocates nothing per request: 100,000 pipelined PINGs through an
//! in-process server, with a global allocator that counts the server thread's allocations;
//! with and without an idle timeout (whose deadline follows every request), over RESP2 and
//! over RESP3. And messages published to 100 subscribers allocate nothing either: each is
//! encoded once into a batch shared by all of them, reused once written.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use muxd::commands::CommandService;
use muxd::resp::RespCodec;
use muxd::{Config, ListenAddr, Server, ServerHandle};

/// Counts allocations made by threads that opted in, each into its own counter (the
/// tests run in parallel).
struct Counting;

thread_local! {
    static COUNTER: Cell<Option<&'static AtomicU64>> = const { Cell::new(None) };
}

fn note_allocation() {
    if let Some(counter) = COUNTER.with(Cell::get) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Sends `batches` writes of `per_batch` PINGs (multibulk and inline alternately) and
/// reads every `+PONG`.
fn pings(stream: &mut TcpStream, batches: usize, per_batch: usize) {
    let mut batch = Vec::new();
    for i in 0..per_batch {
        if i % 2 == 0 {
            batch.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        } else {
            batch.extend_from_slice(b"PING\r\n");
        }
    }
    let expected = b"+PONG\r\n".repeat(per_batch);
    let mut reply = vec![0u8; expected.len()];
    for _ in 0..batches {
        stream.write_all(&batch).unwrap();
        stream.read_exact(&mut reply).unwrap();
        assert_eq!(reply, expected);
    }
}

/// An in-process server on a TCP port of its own, run by a thread whose allocations go
/// to `counter`.
fn start_server(
    idle_timeout: Option<Duration>,
    counter: &'static AtomicU64,
) -> (
    SocketAddr,
    ServerHandle<RespCodec, CommandService>,
    std::thread::JoinHandle<CommandService>,
) {
    let mut config = Config::default();
    config.listen.push(ListenAddr::tcp("127.0.0.1:0").unwrap());
    config.idle_timeout = idle_timeout;
    let server = Server::bind(config, RespCodec::default(), CommandService::default()).unwrap();
    let addr = match &server.local_addrs()[0] {
        ListenAddr::Tcp(addr) => *addr,
        other => panic!("{other}"),
    };
    let handle = server.handle();
    let thread = std::thread::spawn(move || {
        COUNTER.with(|c| c.set(Some(counter)));
        server.run().unwrap()
    });
    (addr, handle, thread)
}

#[test]
fn pipelined_pings_allocate_nothing_after_warm_up() {
    static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
    pipelined_pings_allocate_nothing(None, false, &ALLOCATIONS);
}

#[test]
fn pipelined_pings_allocate_nothing_with_an_idle_timeout() {
    static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
    pipelined_pings_allocate_nothing(Some(Duration::from_secs(300)), false, &ALLOCATIONS);
}

#[test]
fn pipelined_pings_over_resp3_allocate_nothing_after_warm_up() {
    static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
    pipelined_pings_allocate_nothing(None, true, &ALLOCATIONS);
}

fn pipelined_pings_allocate_nothing(
    idle_timeout: Option<Duration>,
    resp3: bool,
    counter: &'static AtomicU64,
) {
    let (addr, handle, thread) = start_server(idle_timeout, counter);
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    if resp3 {
        stream.write_all(b"HELLO 3\r\n").unwrap();
        let mut reply = [0u8; 4];
        stream.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"%7\r\n");
        // The rest of the map: drain it (its length varies with the id and version).
        let mut rest = [0u8; 4096];
        let mut seen = Vec::new();
        while !seen.ends_with(b"modules\r\n*0\r\n") {
            let n = stream.read(&mut rest).unwrap();
            assert!(n > 0);
            seen.extend_from_slice(&rest[..n]);
        }
    }
    // Warm-up: buffers reach their working size.
    pings(&mut stream, 20, 1000);
    let before = counter.load(Ordering::Relaxed);
    pings(&mut stream, 100, 1000);
    let after = counter.load(Ordering::Relaxed);
    assert_eq!(
        after - before,
        0,
        "the server thread allocated during 100,000 pipelined PINGs"
    );

    handle.stop().unwrap();
    thread.join().unwrap();
    // The counter does count: accepting and closing a client allocates.
    assert!(counter.load(Ordering::Relaxed) > after);
}

#[test]
fn published_messages_allocate_nothing_after_warm_up() {
    static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
    const SUBSCRIBERS: usize = 100;
    const PER_BATCH: usize = 200;
    let (addr, handle, thread) = start_server(None, &ALLOCATIONS);
    let connect = || {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    };
    let confirmation = b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n";
    // Subscribers read everything they get until the server closes them.
    let readers: Vec<_> = (0..SUBSCRIBERS)
        .map(|_| {
            let mut s = connect();
            s.write_all(b"SUBSCRIBE c\r\n").unwrap();
            let mut reply = vec![0u8; confirmation.len()];
            s.read_exact(&mut reply).unwrap();
            assert_eq!(reply, confirmation);
            std::thread::spawn(move || {
                let mut sink = vec![0u8; 64 * 1024];
                while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
            })
        })
        .collect();
    let mut publisher = connect();
    let batch = b"PUBLISH c hello\r\n".repeat(PER_BATCH);
    let expected = b":100\r\n".repeat(PER_BATCH);
    let mut replies = vec![0u8; expected.len()];
    let mut publish = |batches: usize| {
        for _ in 0..batches {
            publisher.write_all(&batch).unwrap();
            publisher.read_exact(&mut replies).unwrap();
            assert_eq!(replies, expected);
        }
    };
    publish(20);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    publish(50);
    let allocated = ALLOCATIONS.load(Ordering::Relaxed) - before;
    let messages = (50 * PER_BATCH) as u64;
    eprintln!("{allocated} allocations for {messages} messages to {SUBSCRIBERS} subscribers");
    // The messages go into batches reused once written: nothing per message at all (a
    // few allocations may come from a batch growing to a new size).
    assert!(
        allocated <= messages / 100,
        "{allocated} allocations for {messages} messages to {SUBSCRIBERS} subscribers"
    );
    handle.stop().unwrap();
    thread.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
}
