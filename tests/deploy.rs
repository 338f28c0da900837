//! The shipped deployment files, run with the real tools: `contrib/systemd/` under
//! `systemd-analyze verify` and `systemd-socket-activate`, `contrib/haproxy/haproxy.cfg`
//! in a real HAProxy in front of two muxd. Addresses and paths are replaced by the test's;
//! everything else is the files as shipped, so they stay true.

mod util;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::thread;

use util::haproxy::Haproxy;
use util::notify::NotifySocket;
use util::{Client, Muxd, Reply, TIMEOUT, eventually, free_port, parse_client_list, require_tool};

const SERVICE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/systemd/muxd.service");
const SOCKET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/systemd/muxd.socket");
/// The addresses the units name, replaced by the test's.
const UNIT_TCP: &str = "127.0.0.1:7379";
const UNIT_UNIX: &str = "/run/muxd/muxd.sock";
const UNIT_BINARY: &str = "/usr/local/bin/muxd";

/// The values of `key=` lines in a unit file.
fn unit_values(path: &str, key: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read the unit")
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
        .collect()
}

/// `text` with the units' addresses replaced.
fn substitute(text: &str, tcp: SocketAddr, unix: &Path) -> String {
    text.replace(UNIT_TCP, &tcp.to_string())
        .replace(UNIT_UNIX, &unix.display().to_string())
}

#[test]
fn units_pass_systemd_analyze_verify() {
    if !require_tool("systemd-analyze") {
        return;
    }
    // verify checks that ExecStart's binary exists: point it at the one built.
    let dir = tempfile::tempdir().unwrap();
    let service = std::fs::read_to_string(SERVICE)
        .unwrap()
        .replace(UNIT_BINARY, util::muxd_bin());
    std::fs::write(dir.path().join("muxd.service"), service).unwrap();
    std::fs::copy(SOCKET, dir.path().join("muxd.socket")).unwrap();
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("muxd.service"))
        .arg(dir.path().join("muxd.socket"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.trim().is_empty(), "systemd-analyze warns:\n{stderr}");
}

#[test]
fn service_runs_on_the_sockets_of_its_socket_unit() {
    if !require_tool("systemd-socket-activate") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let unix = work.path().join("muxd.sock");
    let tcp: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();

    // The socket unit's ListenStream= lines become systemd-socket-activate's -l.
    let mut wrapper = vec!["systemd-socket-activate".to_owned()];
    for listen in unit_values(SOCKET, "ListenStream") {
        wrapper.push("-l".into());
        wrapper.push(substitute(&listen, tcp, &unix));
    }
    assert_eq!(wrapper.len(), 5, "the socket unit listens on TCP and Unix");
    let watchdog_sec: u64 = unit_values(SERVICE, "WatchdogSec")[0].parse().unwrap();
    // The service's ExecStart, its binary left out (start_via puts the built one).
    let exec = unit_values(SERVICE, "ExecStart").remove(0);
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some(UNIT_BINARY));
    let args: Vec<String> = words.map(|w| substitute(w, tcp, &unix)).collect();

    // systemd-socket-activate gives its child a fresh environment: what muxd is to get
    // from systemd goes through -E.
    let notify = NotifySocket::at_path(work.path());
    wrapper.push(format!("--setenv=NOTIFY_SOCKET={}", notify.env));
    wrapper.push(format!(
        "--setenv=WATCHDOG_USEC={}",
        watchdog_sec * 1_000_000
    ));
    let path = unix.clone();
    let first = thread::spawn(move || {
        // The file exists from bind, connections succeed from listen on: an attempt
        // that succeeds (and is dropped) is the one that makes it exec muxd.
        eventually("systemd-socket-activate listens on the Unix socket", || {
            std::os::unix::net::UnixStream::connect(&path).is_ok()
        });
        Client::unix(&path).cmd(&["PING"])
    });
    let dir = tempfile::tempdir().unwrap();
    let mut muxd = Muxd::start_via(dir, &wrapper, args, |_| {});
    assert_eq!(first.join().unwrap(), Reply::simple("PONG"));

    // The flags name the inherited sockets: muxd serves those, binds nothing of its own.
    assert_eq!(
        muxd.ready,
        [format!("tcp://{tcp}"), format!("unix://{}", unix.display())]
    );
    muxd.wait_for_log(&format!("listening on tcp://{tcp} inherited fd=3"));
    muxd.wait_for_log("inherited fd=4");
    let ready = notify.next();
    assert!(ready.starts_with("READY=1\nSTATUS=serving "), "{ready:?}");
    assert_eq!(muxd.tcp().cmd(&["PING"]), Reply::simple("PONG"));

    muxd.signal(libc::SIGTERM);
    assert!(notify.next_not_watchdog().starts_with("STOPPING=1\n"));
    assert!(muxd.wait_exit(TIMEOUT).success());
    assert!(
        unix.exists(),
        "the socket unit's file is not muxd's to remove"
    );
}

/// Two muxd behind HAProxy, as `contrib/haproxy/haproxy.cfg` ships.
struct Cluster {
    muxd: [Muxd; 2],
    haproxy: Haproxy,
    front: SocketAddr,
}

/// The health check HAProxy runs.
#[derive(Clone, Copy, PartialEq)]
enum Check {
    /// `option redis-check`, as shipped.
    Redis,
    /// The `tcp-check` recipe the file gives in a comment (PING, INFO replication
    /// expecting role:master, QUIT), in its place.
    TcpCheckRecipe,
}

/// The commented `tcp-check` recipe of the shipped configuration, uncommented.
fn tcp_check_recipe() -> String {
    let config = std::fs::read_to_string(util::haproxy::CONFIG).unwrap();
    let recipe: String = config
        .lines()
        .filter_map(|l| l.strip_prefix("    #   "))
        .map(|l| format!("    {l}\n"))
        .collect();
    assert!(recipe.contains("role:master"), "{recipe}");
    recipe
}

impl Cluster {
    fn start(check: Check) -> Cluster {
        let muxd = [(); 2].map(|()| Muxd::start(&["--proxy-from", "127.0.0.1"]));
        let front: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut replace = vec![
            ("127.0.0.1:6379", front.to_string()),
            ("127.0.0.1:7379", muxd[0].tcp_addr().to_string()),
            ("127.0.0.1:7380", muxd[1].tcp_addr().to_string()),
        ];
        if check == Check::TcpCheckRecipe {
            replace.push(("    option redis-check\n", tcp_check_recipe()));
        }
        let haproxy = Haproxy::start(&replace);
        let cluster = Cluster {
            muxd,
            haproxy,
            front,
        };
        // HAProxy's health checks (redis-check, behind send-proxy and send-proxy-v2) pass.
        cluster.haproxy.wait_status("muxd1", "UP");
        cluster.haproxy.wait_status("muxd2", "UP");
        cluster
    }

    /// The clients a muxd has that came through HAProxy (health checks included).
    fn proxied_clients(&self, i: usize) -> Vec<HashMap<String, String>> {
        let text = self.muxd[i].unix().cmd(&["CLIENT", "LIST"]).text();
        parse_client_list(&text)
            .into_iter()
            .filter(|c| c.contains_key("proxy"))
            .collect()
    }
}

#[test]
fn haproxy_in_front_of_two_muxd() {
    if !require_tool("haproxy") {
        return;
    }
    let cluster = Cluster::start(Check::Redis);

    // Clients through HAProxy see their own address, not HAProxy's, on either backend.
    let mut clients: Vec<Client> = (0..4).map(|_| Client::tcp(cluster.front)).collect();
    for client in &mut clients {
        let own = client.tcp_stream().unwrap().local_addr().unwrap();
        let info = parse_client_list(&client.cmd(&["CLIENT", "INFO"]).text()).remove(0);
        assert_eq!(info["addr"], own.to_string(), "{info:?}");
        assert_eq!(info["laddr"], cluster.front.to_string(), "{info:?}");
        assert_ne!(info["proxy"], own.to_string());
    }
    for i in 0..2 {
        let via_proxy = cluster.proxied_clients(i);
        assert!(
            via_proxy
                .iter()
                .any(|c| c["laddr"] == cluster.front.to_string()),
            "muxd{} served none of the clients (send-proxy{}): {via_proxy:?}",
            i + 1,
            if i == 0 { "" } else { "-v2" }
        );
    }

    if require_tool("redis-cli") {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &cluster.front.port().to_string()])
            .args(["CLIENT", "INFO"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        let info = parse_client_list(&text).remove(0);
        assert_eq!(info["laddr"], cluster.front.to_string(), "{text}");
        assert_ne!(
            info["addr"], info["proxy"],
            "redis-cli sees its own address: {text}"
        );
    }

    // Health checks never tripped a refusal.
    for muxd in &cluster.muxd {
        assert!(
            !muxd.stderr().contains("proxy header refused"),
            "{}",
            muxd.stderr()
        );
    }
}

#[test]
fn stopping_one_muxd_loses_only_its_own_connections() {
    if !require_tool("haproxy") {
        return;
    }
    let mut cluster = Cluster::start(Check::Redis);
    let mut clients: Vec<Client> = (0..6).map(|_| Client::tcp(cluster.front)).collect();
    // A round trip each: HAProxy has connected every one to its muxd.
    for client in &mut clients {
        assert_eq!(client.cmd(&["PING"]), Reply::simple("PONG"));
    }
    // Which clients the first muxd holds: those its CLIENT LIST shows.
    let on_first: Vec<String> = cluster
        .proxied_clients(0)
        .into_iter()
        .filter(|c| c["laddr"] == cluster.front.to_string())
        .map(|c| c["addr"].clone())
        .collect();
    assert!(!on_first.is_empty(), "leastconn put some clients on muxd1");

    cluster.muxd[0].signal(libc::SIGTERM);
    assert!(cluster.muxd[0].wait_exit(TIMEOUT).success());

    for client in &mut clients {
        let own = client
            .tcp_stream()
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        if on_first.contains(&own) {
            // Its connection ends with the muxd that held it: an end of stream, and
            // nothing else.
            assert_eq!(
                client.try_read_ping(),
                None,
                "{own} was on the stopped muxd"
            );
        } else {
            assert_eq!(client.cmd(&["PING"]), Reply::simple("PONG"));
        }
    }
    // New connections all reach the other muxd, from the first one on.
    for _ in 0..20 {
        let mut client = Client::tcp(cluster.front);
        assert_eq!(
            client.cmd(&["ECHO", "still here"]),
            Reply::bulk("still here")
        );
    }
    cluster.haproxy.wait_status("muxd1", "DOWN");
    assert!(cluster.haproxy.status("muxd2").unwrap().starts_with("UP"));
}

#[test]
fn the_tcp_check_recipe_marks_both_up() {
    if !require_tool("haproxy") {
        return;
    }
    let cluster = Cluster::start(Check::TcpCheckRecipe);
    let mut client = Client::tcp(cluster.front);
    assert_eq!(client.cmd(&["PING"]), Reply::simple("PONG"));
    for muxd in &cluster.muxd {
        assert!(
            !muxd.stderr().contains("proxy header refused"),
            "{}",
            muxd.stderr()
        );
    }
}
