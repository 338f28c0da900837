//! TLS listeners against the real daemon: rustls clients (TLS 1.3 and 1.2), client
//! certificates (required, optional, untrusted, expired, absent), plain text and garbage
//! on a TLS port, a silent or half-finished handshake, SIGHUP reloading the certificate
//! while clients stay connected, SIGTERM draining TLS clients, the client limit, the
//! PROXY header before the handshake, and `redis-cli --tls`, `redis-benchmark --tls`,
//! `muxd-bench --tls` driving it. Certificates are made at test time (rcgen).

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use muxd::rustls::ClientConfig;
use util::tls::Pki;
use util::{Client, Muxd, Reply, TIMEOUT, require_tool};

/// A daemon with a plain and a TLS listener, with the `pki`'s server certificate.
fn start(pki: &Pki, verify_clients: bool, extra: &[&str]) -> Muxd {
    let mut flags = vec!["--tls".to_owned(), "127.0.0.1:0".to_owned()];
    flags.extend(pki.server_flags(verify_clients));
    flags.extend(extra.iter().map(|s| s.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Muxd::start(&flags)
}

/// The TLS listener's address from the READY line.
fn tls_addr(muxd: &Muxd) -> SocketAddr {
    muxd.ready
        .iter()
        .find_map(|a| a.strip_prefix("tls://"))
        .unwrap_or_else(|| muxd.fail("no tls listener"))
        .parse()
        .unwrap()
}

fn tls_client(muxd: &Muxd, config: Arc<ClientConfig>) -> Client {
    Client::tls(tls_addr(muxd), config, "localhost")
}

/// Whether a TLS client gets through its handshake and a PING.
fn pings(muxd: &Muxd, config: Arc<ClientConfig>) -> bool {
    let mut c = tls_client(muxd, config);
    c.set_read_timeout(TIMEOUT);
    c.tls_handshake().is_ok()
        && c.write_raw(b"PING\r\n").is_ok()
        && matches!(c.try_read_reply(), Ok(r) if r == Reply::simple("PONG"))
}

#[test]
fn tls_clients_pipeline_over_tls_1_3_and_1_2_and_are_listed_as_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "a");
    let muxd = start(&pki, false, &[]);
    assert!(
        muxd.ready.iter().any(|a| a.starts_with("tls://127.0.0.1:")),
        "{:?}",
        muxd.ready
    );
    muxd.wait_for_log("listening on tls://127.0.0.1:");
    let roots = muxd::tls::root_store(&pki.ca).unwrap();
    for version in [&muxd::rustls::version::TLS13, &muxd::rustls::version::TLS12] {
        let config = ClientConfig::builder_with_provider(muxd::tls::provider())
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        let mut c = tls_client(&muxd, Arc::new(config));
        let mut batch = Vec::new();
        for i in 0..200 {
            batch.extend_from_slice(&util::encode(&[b"ECHO", format!("m{i}").as_bytes()]));
        }
        c.send(&batch);
        for i in 0..200 {
            assert_eq!(c.read_reply(), Reply::bulk(&format!("m{i}")), "{version:?}");
        }
        let list = c.cmd(&["CLIENT", "LIST"]).text();
        let me = c.cmd(&["CLIENT", "INFO"]).text();
        assert!(me.contains(" kind=tls "), "{me}");
        assert!(me.contains(&format!(" laddr={} ", tls_addr(&muxd))), "{me}");
        assert!(list.contains(" kind=tls "), "{list}");
        // QUIT: +OK, then a close_notify (a TLS client reads an unclean end as an error).
        assert_eq!(c.cmd(&["QUIT"]), Reply::simple("OK"));
        c.expect_closed();
    }
    let mut plain = muxd.tcp();
    assert_eq!(plain.cmd(&["PING"]), Reply::simple("PONG"));
    let tls_port = util::info_field(&mut plain, "tcp_port");
    assert_eq!(tls_port, muxd.tcp_addr().port().to_string());
}

#[test]
fn client_certificates_are_required_verified_or_optional() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "main");
    let other = Pki::new(dir.path(), "other");
    let (expired_cert, expired_key) = pki.sign("expired-client", &[], true);
    let valid = pki.client_config(Some((&pki.client_cert, &pki.client_key)));
    let none = pki.client_config(None);
    let untrusted = pki.client_config(Some((&other.client_cert, &other.client_key)));
    let expired = pki.client_config(Some((&expired_cert, &expired_key)));

    let required = start(&pki, true, &[]);
    assert!(pings(&required, valid.clone()), "a valid certificate");
    assert!(!pings(&required, none.clone()), "no certificate");
    assert!(!pings(&required, untrusted.clone()), "an untrusted one");
    assert!(!pings(&required, expired.clone()), "an expired one");
    required.wait_for_log("tls error, closing client=");
    assert_eq!(required.info_field("closed_tls_error"), "3");

    let optional = start(&pki, true, &["--tls-auth-clients", "optional"]);
    assert!(pings(&optional, valid.clone()));
    assert!(pings(&optional, none.clone()), "none needed");
    assert!(
        !pings(&optional, untrusted.clone()),
        "but one shown is verified"
    );

    let no = start(&pki, true, &["--tls-auth-clients", "no"]);
    assert!(pings(&no, none));
    assert!(pings(&no, valid));
}

#[test]
fn plain_text_and_garbage_on_a_tls_port_close_only_that_connection() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "a");
    let muxd = start(&pki, false, &[]);
    let mut bystander = tls_client(&muxd, pki.client_config(None));
    assert_eq!(bystander.cmd(&["PING"]), Reply::simple("PONG"));
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let garbage: Vec<u8> = (0..4096)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    for bytes in [&b"PING\r\n"[..], b"*1\r\n$4\r\nPING\r\n", &garbage] {
        let mut s = TcpStream::connect(tls_addr(&muxd)).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s.write_all(bytes).unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        // At most a TLS alert record (content type 21), then the end of the stream.
        assert!(
            answer.is_empty() || answer[0] == 21,
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    muxd.wait_for_log("tls error, closing client=");
    assert_eq!(bystander.cmd(&["ECHO", "still"]), Reply::bulk("still"));
    assert_eq!(muxd.tcp().cmd(&["PING"]), Reply::simple("PONG"));
    assert_eq!(muxd.info_field("closed_tls_error"), "3");
}

#[test]
fn a_silent_or_half_finished_handshake_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "a");
    let muxd = start(&pki, false, &["--tls-handshake-timeout", "0.3"]);
    let mut silent = TcpStream::connect(tls_addr(&muxd)).unwrap();
    silent.set_read_timeout(Some(TIMEOUT)).unwrap();
    // The first bytes of a ClientHello record header, and nothing more.
    let mut half = TcpStream::connect(tls_addr(&muxd)).unwrap();
    half.set_read_timeout(Some(TIMEOUT)).unwrap();
    half.write_all(&[22, 3, 1, 0, 200, 1, 0]).unwrap();
    for s in [&mut silent, &mut half] {
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    }
    muxd.wait_for_log("tls handshake timed out, closing client=");
    assert_eq!(muxd.info_field("closed_tls_handshake_timeout"), "2");
    // A client that completes its handshake in time is not touched by its deadline.
    let mut c = tls_client(&muxd, pki.client_config(None));
    assert_eq!(c.cmd(&["PING"]), Reply::simple("PONG"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.cmd(&["PING"]), Reply::simple("PONG"));
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_clients_connected() {
    let dir = tempfile::tempdir().unwrap();
    let first = Pki::new(dir.path(), "first");
    let second = Pki::new(dir.path(), "second");
    // The daemon reads its files from fixed paths, replaced under it.
    let (cert, key) = (dir.path().join("live.crt"), dir.path().join("live.key"));
    std::fs::copy(&first.server_cert, &cert).unwrap();
    std::fs::copy(&first.server_key, &key).unwrap();
    let cert_s = cert.display().to_string();
    let key_s = key.display().to_string();
    let muxd = Muxd::start(&[
        "--tls",
        "127.0.0.1:0",
        "--tls-cert-file",
        &cert_s,
        "--tls-key-file",
        &key_s,
    ]);
    let mut old = tls_client(&muxd, first.client_config(None));
    assert_eq!(old.cmd(&["ADD", "1"]), Reply::Int(1));

    std::fs::copy(&second.server_cert, &cert).unwrap();
    std::fs::copy(&second.server_key, &key).unwrap();
    muxd.signal(libc::SIGHUP);
    muxd.wait_for_log("TLS configuration reloaded");
    assert_eq!(old.cmd(&["ADD", "1"]), Reply::Int(2), "still connected");
    assert!(
        pings(&muxd, second.client_config(None)),
        "the new certificate"
    );
    assert!(!pings(&muxd, first.client_config(None)), "not the old one");

    // A broken file keeps the configuration in force.
    std::fs::write(&cert, "not a certificate").unwrap();
    muxd.signal(libc::SIGHUP);
    muxd.wait_for_log("TLS reload failed, keeping the configuration in force");
    assert!(pings(&muxd, second.client_config(None)));
    assert_eq!(old.cmd(&["ADD", "1"]), Reply::Int(3));
}

#[test]
fn sigterm_drains_tls_clients_owed_replies() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "a");
    let mut muxd = start(&pki, false, &[]);
    let mut c = tls_client(&muxd, pki.client_config(None));
    let id = c.id().to_string();
    // Far more than the sockets and rustls buffer: most of it waits in muxd.
    let payload = "x".repeat(64 * 1024);
    let request = util::encode(&[b"ECHO", payload.as_bytes()]);
    let mut batch = Vec::new();
    for _ in 0..64 {
        batch.extend_from_slice(&request);
    }
    c.send(&batch);
    // Every request handled (its replies owed) before the stop.
    let mut observer = muxd.tcp();
    while !observer
        .cmd(&["CLIENT", "LIST", "ID", &id])
        .text()
        .contains(" cmds=65 ")
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    muxd.signal(libc::SIGTERM);
    for _ in 0..64 {
        assert_eq!(c.read_reply(), Reply::bulk(&payload));
    }
    c.expect_closed();
    assert!(muxd.wait_exit(TIMEOUT).success());
}

#[test]
fn tls_clients_count_against_max_clients() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "a");
    let muxd = start(&pki, false, &["--max-clients", "1"]);
    let mut first = tls_client(&muxd, pki.client_config(None));
    assert_eq!(first.cmd(&["PING"]), Reply::simple("PONG"));
    assert!(!pings(&muxd, pki.client_config(None)), "over the limit");
    assert_eq!(first.cmd(&["PING"]), Reply::simple("PONG"));
    drop(first);
    assert!(pings(&muxd, pki.client_config(None)));
}

#[test]
fn a_proxy_header_precedes_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "a");
    let muxd = start(&pki, false, &["--proxy-from", "127.0.0.1"]);
    let socket = TcpStream::connect(tls_addr(&muxd)).unwrap();
    socket.set_read_timeout(Some(TIMEOUT)).unwrap();
    (&socket)
        .write_all(b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 6379\r\n")
        .unwrap();
    let name = muxd::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = muxd::rustls::ClientConnection::new(pki.client_config(None), name).unwrap();
    let mut tls = muxd::rustls::StreamOwned::new(conn, socket);
    tls.write_all(b"CLIENT INFO\r\n").unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tls.read(&mut buf).unwrap();
    let info = String::from_utf8_lossy(&buf[..n]);
    assert!(info.contains("addr=192.0.2.7:40000 "), "{info}");
    assert!(info.contains(" kind=tls "), "{info}");
}

/// The flags `redis-cli` and `redis-benchmark` take for TLS with this CA.
fn tool_tls_flags(pki: &Pki, client: bool) -> Vec<String> {
    let mut flags = vec![
        "--tls".to_owned(),
        "--cacert".to_owned(),
        pki.ca.display().to_string(),
    ];
    if client {
        for (flag, path) in [("--cert", &pki.client_cert), ("--key", &pki.client_key)] {
            flags.push(flag.to_owned());
            flags.push(path.display().to_string());
        }
    }
    flags
}

fn run(program: &Path, args: &[String]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{} {}: {}\n{}",
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn redis_cli_and_redis_benchmark_speak_tls_to_muxd() {
    if !require_tool("redis-cli") || !require_tool("redis-benchmark") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "a");
    for verify_clients in [false, true] {
        let muxd = start(&pki, verify_clients, &[]);
        let port = tls_addr(&muxd).port().to_string();
        let mut args = tool_tls_flags(&pki, verify_clients);
        args.extend(["-h", "127.0.0.1", "-p", &port].map(String::from));
        let cli = |extra: &[&str]| {
            let mut a = args.clone();
            a.extend(extra.iter().map(|s| s.to_string()));
            run(Path::new("redis-cli"), &a)
        };
        assert_eq!(cli(&["PING"]).trim(), "PONG");
        assert_eq!(cli(&["ADD", "1", "2", "3"]).trim(), "6");
        assert!(cli(&["CLIENT", "INFO"]).contains("kind=tls"));
        let mut bench = args.clone();
        bench.extend(
            ["-n", "20000", "-c", "10", "-P", "16", "-t", "ping", "--csv"].map(String::from),
        );
        let out = run(Path::new("redis-benchmark"), &bench);
        assert!(out.contains("PING_MBULK"), "{out}");
        let muxd_bench = Path::new(env!("CARGO_BIN_EXE_muxd-bench"));
        let mut load = args.clone();
        load.extend(
            [
                "-n",
                "20000",
                "-c",
                "10",
                "-P",
                "16",
                "-t",
                "ping_mbulk,echo",
                "-q",
                "--json",
            ]
            .map(String::from),
        );
        let out = run(muxd_bench, &load);
        assert!(
            out.contains("\"errors\":0") && out.contains("\"wrong\":0"),
            "{out}"
        );
    }
}

#[test]
fn tls_clients_are_paused_past_the_watermark_and_idle_out() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "a");
    let muxd = start(
        &pki,
        false,
        &[
            "--output-high-watermark",
            "256kb",
            "--output-low-watermark",
            "64kb",
            "--timeout",
            "1",
        ],
    );
    let idle = tls_client(&muxd, pki.client_config(None));
    // 256 requests of 32 KiB in flight on each connection: replies pile up far past the
    // high watermark, the readers are paused and resumed, every reply checked.
    let port = tls_addr(&muxd).port().to_string();
    let mut args = tool_tls_flags(&pki, false);
    args.extend(
        [
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-c",
            "2",
            "-P",
            "256",
            "-n",
            "4096",
            "-t",
            "echo",
            "-d",
            "32768",
            "-q",
            "--json",
        ]
        .map(String::from),
    );
    let out = run(Path::new(env!("CARGO_BIN_EXE_muxd-bench")), &args);
    assert!(out.contains("\"errors\":0,\"wrong\":0"), "{out}");
    assert_ne!(muxd.info_field("output_paused_clients"), "0");
    // And a TLS client idle past --timeout is closed (after its close_notify).
    let mut idle = idle;
    idle.expect_closed();
    assert_ne!(muxd.info_field("closed_idle_timeout"), "0");
}
