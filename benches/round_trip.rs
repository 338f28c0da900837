//! Request/response round trips through an in-process muxd (`CommandService` over
//! `RespCodec`), loopback TCP and a Unix socket side by side: one PING per round trip, and
//! 16 pipelined PINGs per round trip. A blocking std client on the benchmark thread, the
//! server's loop on its own thread.
//!
//! `cargo bench --bench round_trip` (add `-- --quick` for a short run).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::thread;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use muxd::commands::CommandService;
use muxd::resp::RespCodec;
use muxd::{Config, ListenAddr, Server};

const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";
const PONG: &[u8] = b"+PONG\r\n";
const PIPELINE: usize = 16;

/// Sends `request` whole, reads exactly `reply.len()` bytes and checks them.
fn round_trip(stream: &mut (impl Read + Write), request: &[u8], reply: &[u8], buf: &mut [u8]) {
    stream.write_all(request).expect("write");
    let buf = &mut buf[..reply.len()];
    stream.read_exact(buf).expect("read");
    assert_eq!(buf, reply, "unexpected reply");
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::default();
    config
        .listen
        .push(ListenAddr::tcp("127.0.0.1:0").expect("tcp address"));
    config
        .listen
        .push(ListenAddr::unix(dir.path().join("muxd.sock")));
    let server = Server::bind(config, RespCodec::default(), CommandService::default())
        .expect("bind the server");
    let (tcp_addr, unix_path): (_, PathBuf) = match &server.local_addrs()[..] {
        [ListenAddr::Tcp(tcp), ListenAddr::Unix(unix)] => (*tcp, unix.clone()),
        other => panic!("unexpected listeners {other:?}"),
    };
    let handle = server.handle();
    let serving = thread::spawn(move || server.run());

    let tcp = TcpStream::connect(tcp_addr).expect("connect over tcp");
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    let unix = UnixStream::connect(&unix_path).expect("connect over unix");

    let pings = PING.repeat(PIPELINE);
    let pongs = PONG.repeat(PIPELINE);
    let mut buf = vec![0; pongs.len()];
    let mut group = c.benchmark_group("round_trip");
    for (name, request, reply, count) in [
        ("ping", PING, PONG, 1),
        ("ping_x16", &pings[..], &pongs[..], PIPELINE),
    ] {
        group.throughput(Throughput::Elements(count as u64));
        let mut stream = &tcp;
        group.bench_function(BenchmarkId::new(name, "tcp"), |b| {
            b.iter(|| round_trip(&mut stream, request, reply, &mut buf))
        });
        let mut stream = &unix;
        group.bench_function(BenchmarkId::new(name, "unix"), |b| {
            b.iter(|| round_trip(&mut stream, request, reply, &mut buf))
        });
    }
    group.finish();

    drop((tcp, unix));
    handle.stop().expect("stop the server");
    serving
        .join()
        .expect("server thread panicked")
        .expect("server failed");
}

criterion_group!(benches, bench);
criterion_main!(benches);
