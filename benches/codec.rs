//! RESP codec micro-benchmarks: decoding requests and encoding replies (RESP2 and RESP3),
//! public API only (`RespCodec` as a `Codec`, `Reply`).
//!
//! `cargo bench --bench codec` (add `-- --quick` for a short run).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use muxd::resp::{Protocol, Reply, RespCodec, RespDecodeState, RespSession, encode_request};
use muxd::{Codec, Decoded};

const PING_INLINE: &[u8] = b"PING\r\n";
const PING_MBULK: &[u8] = b"*1\r\n$4\r\nPING\r\n";
const PIPELINE: usize = 16;
const BIG: usize = 16 * 1024;

/// `SET key <len bytes>` as a multibulk request.
fn set_request(len: usize) -> Vec<u8> {
    let mut req = Vec::new();
    encode_request([&b"SET"[..], b"key", &vec![b'x'; len]], &mut req);
    req
}

/// Decodes every request in `input`, fed whole; returns how many there were.
fn decode_all(codec: &mut RespCodec, state: &mut RespDecodeState, input: &[u8]) -> usize {
    let mut pos = 0;
    let mut requests = 0;
    while pos < input.len() {
        match codec.decode(RespSession::default(), state, &input[pos..]) {
            Ok(Decoded::Request(args, used)) => {
                black_box(args.command());
                requests += 1;
                pos += used;
            }
            Ok(Decoded::Ignored(used)) => pos += used,
            Ok(Decoded::Incomplete) => panic!("incomplete request in a complete buffer"),
            Err(e) => panic!("decode error: {e}"),
        }
    }
    requests
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    let mut codec = RespCodec::default();
    let mut state = RespDecodeState::default();

    group.throughput(Throughput::Elements(1));
    for (name, input) in [("ping_inline", PING_INLINE), ("ping_mbulk", PING_MBULK)] {
        assert_eq!(decode_all(&mut codec, &mut state, input), 1);
        group.bench_function(name, |b| {
            b.iter(|| decode_all(&mut codec, &mut state, black_box(input)))
        });
    }

    group.throughput(Throughput::Elements(PIPELINE as u64));
    for (name, one) in [
        ("ping_inline_x16", PING_INLINE),
        ("ping_mbulk_x16", PING_MBULK),
    ] {
        let input = one.repeat(PIPELINE);
        assert_eq!(decode_all(&mut codec, &mut state, &input), PIPELINE);
        group.bench_function(name, |b| {
            b.iter(|| decode_all(&mut codec, &mut state, black_box(&input)))
        });
    }

    // A 16 KiB argument, whole and as it arrives over four 4 KiB reads (three
    // `Incomplete` answers, then the request: what resuming costs).
    let input = set_request(BIG);
    group.throughput(Throughput::Bytes(input.len() as u64));
    assert_eq!(decode_all(&mut codec, &mut state, &input), 1);
    group.bench_function("set_16k", |b| {
        b.iter(|| decode_all(&mut codec, &mut state, black_box(&input)))
    });
    let chunk = 4 * 1024;
    group.bench_function("set_16k_in_4k_reads", |b| {
        b.iter(|| {
            let mut end = chunk;
            loop {
                let seen = &input[..end.min(input.len())];
                match codec.decode(RespSession::default(), &mut state, black_box(seen)) {
                    Ok(Decoded::Request(args, used)) => {
                        assert_eq!(used, input.len());
                        break black_box(args.len());
                    }
                    Ok(Decoded::Incomplete) => end += chunk,
                    other => panic!("unexpected {other:?}"),
                }
            }
        })
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    let mut out = Vec::with_capacity(2 * BIG);
    let small = [b'v'; 16];
    let big = vec![b'v'; BIG];

    let resp3 = RespSession {
        protocol: Protocol::Resp3,
        ..RespSession::default()
    };
    let pairs = [(Reply::Bulk(b"proto"), Reply::Integer(3))];
    let cases: [(&str, Reply<'_>, RespSession, Throughput); 7] = [
        (
            "simple",
            Reply::PONG,
            RespSession::default(),
            Throughput::Elements(1),
        ),
        ("simple_resp3", Reply::PONG, resp3, Throughput::Elements(1)),
        (
            "integer",
            Reply::Integer(1_234_567),
            RespSession::default(),
            Throughput::Elements(1),
        ),
        (
            "bulk_16",
            Reply::Bulk(&small),
            RespSession::default(),
            Throughput::Elements(1),
        ),
        (
            "bulk_16k",
            Reply::Bulk(&big),
            RespSession::default(),
            Throughput::Bytes(BIG as u64),
        ),
        (
            "map_resp2",
            Reply::Map(&pairs),
            RespSession::default(),
            Throughput::Elements(1),
        ),
        (
            "map_resp3",
            Reply::Map(&pairs),
            resp3,
            Throughput::Elements(1),
        ),
    ];
    for (name, reply, session, throughput) in cases {
        group.throughput(throughput);
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                RespCodec::encode(session, black_box(&reply), &mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
