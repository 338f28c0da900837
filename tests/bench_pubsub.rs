//! `muxd-bench --pubsub` end to end: against muxd (and Redis, when installed), over TCP
//! and Unix, RESP2 and RESP3; every message counted; what goes wrong is caught (a
//! `PUBLISH` reaching another subscriber than the run's, a subscriber closed mid-run).

mod util;

use util::bench::{Run, bench};
use util::redis_server::RedisServer;
use util::{Muxd, Reply, eventually, parse_client_list, require_tool};

/// The value of `key` in the one JSON object `run` printed.
fn value(run: &Run, key: &str) -> String {
    let line = run.stdout.lines().next().expect("a JSON line");
    let start = line
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        + key.len()
        + 3;
    line[start..]
        .split([',', '}'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn number(run: &Run, key: &str) -> f64 {
    value(run, key)
        .parse()
        .unwrap_or_else(|_| panic!("{key}: {}", run.stdout))
}

/// Messages a run of `n` messages over `channels` delivers to `subscribers`.
fn deliveries(n: u64, subscribers: u64, channels: u64) -> u64 {
    (0..channels)
        .map(|c| {
            let on_channel = n / channels + u64::from(c < n % channels);
            let subs = subscribers / channels + u64::from(c < subscribers % channels);
            on_channel * subs
        })
        .sum()
}

/// A clean run: every message published and delivered, nothing wrong.
#[track_caller]
fn check_clean(run: &Run, n: u64, subscribers: u64, channels: u64) {
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(number(run, "published"), n as f64, "{}", run.stdout);
    assert_eq!(
        number(run, "delivered"),
        deliveries(n, subscribers, channels) as f64,
        "{}",
        run.stdout
    );
    for key in ["lost", "duplicated", "wrong", "errors"] {
        assert_eq!(number(run, key), 0.0, "{key}: {}", run.stdout);
    }
    assert!(number(run, "delivered_per_s") > 0.0);
    assert!(number(run, "p50_us") <= number(run, "max_us"));
}

const ARGS: &[&str] = &[
    "--pubsub",
    "--publishers",
    "2",
    "--subscribers",
    "10",
    "--channels",
    "3",
    "-P",
    "8",
    "-n",
    "3000",
    "--json",
    "-q",
];

fn targets(tcp: std::net::SocketAddr, unix: &std::path::Path) -> [Vec<String>; 2] {
    [
        vec!["-p".into(), tcp.port().to_string()],
        vec!["-s".into(), unix.display().to_string()],
    ]
}

#[test]
fn every_message_counted_against_muxd() {
    let muxd = Muxd::start(&[]);
    for target in targets(muxd.tcp_addr(), &muxd.unix_path()) {
        for extra in [&[][..], &["-3"], &["-d", "4096", "--threads", "2"]] {
            let args: Vec<&str> = ARGS.iter().chain(extra).copied().collect();
            let run = bench(&target, &args);
            check_clean(&run, 3000, 10, 3);
        }
    }
    // Paced, for a while.
    let run = bench(
        &targets(muxd.tcp_addr(), &muxd.unix_path())[1],
        &[
            "--pubsub",
            "--subscribers",
            "5",
            "--rate",
            "2000",
            "--duration",
            "0.5",
            "--json",
            "-q",
        ],
    );
    assert!(run.status.success(), "{}", run.stderr);
    let published = number(&run, "published");
    assert!((900.0..=1100.0).contains(&published), "{}", run.stdout);
    assert_eq!(number(&run, "delivered"), published * 5.0);
}

#[test]
fn every_message_counted_against_redis() {
    if !require_tool("redis-server") {
        return;
    }
    let redis = RedisServer::start(&[]);
    for target in targets(redis.tcp_addr(), &redis.unix_path()) {
        for extra in [&[][..], &["-3"]] {
            let args: Vec<&str> = ARGS.iter().chain(extra).copied().collect();
            let run = bench(&target, &args);
            check_clean(&run, 3000, 10, 3);
        }
    }
}

#[test]
fn a_publish_reaching_someone_else_is_wrong() {
    let muxd = Muxd::start(&[]);
    let mut intruder = muxd.tcp();
    intruder.send(&util::encode(&[b"SUBSCRIBE", b"bench:0"]));
    intruder.read_reply();
    let run = bench(
        &targets(muxd.tcp_addr(), &muxd.unix_path())[0],
        &[
            "--pubsub",
            "--subscribers",
            "2",
            "-n",
            "100",
            "--json",
            "-q",
        ],
    );
    assert!(!run.status.success(), "{}", run.stdout);
    assert_eq!(number(&run, "wrong"), 100.0, "{}", run.stdout);
    assert!(
        run.stderr.contains("reached 3 subscribers, not 2"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_subscriber_closed_mid_run_is_an_error() {
    let muxd = Muxd::start(&[]);
    let target = targets(muxd.tcp_addr(), &muxd.unix_path())[0].clone();
    let runner = std::thread::spawn(move || {
        bench(
            &target,
            &[
                "--pubsub",
                "--subscribers",
                "3",
                "--rate",
                "1000",
                "--duration",
                "3",
                "--timeout",
                "1",
                "--json",
                "-q",
            ],
        )
    });
    // Once the run is on, close one of its subscribers.
    let mut admin = muxd.tcp();
    let mut victim = String::new();
    eventually("the run's subscribers are connected", || {
        let list = parse_client_list(&admin.cmd(&["CLIENT", "LIST"]).text());
        match list.iter().find(|l| l["flags"].contains('P')) {
            Some(line) => {
                victim = line["id"].clone();
                true
            }
            None => false,
        }
    });
    assert_eq!(admin.cmd(&["CLIENT", "KILL", "ID", &victim]), Reply::Int(1));
    let run = runner.join().unwrap();
    assert!(!run.status.success(), "{}", run.stdout);
    assert!(number(&run, "errors") >= 1.0, "{}", run.stdout);
    assert!(
        run.stderr.contains("closed the connection"),
        "{}",
        run.stderr
    );
}

/// 1,000 subscribers, 10,000 messages: ten million deliveries, none lost, duplicated or
/// out of order.
#[test]
fn a_thousand_subscribers_ten_thousand_messages_nothing_lost() {
    let muxd = Muxd::start(&[]);
    let run = bench(
        &targets(muxd.tcp_addr(), &muxd.unix_path())[1],
        &[
            "--pubsub",
            "--subscribers",
            "1000",
            "-n",
            "10000",
            "-P",
            "64",
            "--json",
            "-q",
        ],
    );
    check_clean(&run, 10_000, 1000, 1);
}
