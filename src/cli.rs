//! The daemon's command line: flags, their defaults, and how they become a [`Config`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};

use muxd::listener::InheritedSocket;
use muxd::listener::proxy::ProxyFrom;
use muxd::resp::RespLimits;
use muxd::tls::{ClientAuth, TlsFiles};
use muxd::{ClientMemoryLimit, Config, ListenAddr, OutputLimit};

use crate::supervise::Supervised;

/// TCP address served when neither `--tcp` nor `--unix` is given.
pub const DEFAULT_TCP: &str = "127.0.0.1:7379";
/// Unix socket served when neither `--tcp` nor `--unix` is given.
pub const DEFAULT_UNIX: &str = "/tmp/muxd.sock";

/// muxd: a RESP (Redis protocol) server multiplexing many clients on one thread with poll.
///
/// With no --tcp, --tls or --unix it listens on tcp://127.0.0.1:7379 and unix:///tmp/muxd.sock,
/// or, started by systemd socket activation (LISTEN_FDS), on the sockets passed; a --tcp
/// or --unix naming a passed socket's address uses that socket.
/// Once every listener is bound it prints one line on stdout,
/// `READY tcp://127.0.0.1:7379 unix:///tmp/muxd.sock` (the addresses actually bound, in
/// flag order); logs go to stderr. SIGINT or SIGTERM stops it gracefully (a second one at
/// once). Sizes accept k, kb, m, mb, g, gb suffixes (powers of 1024).
#[derive(Debug, Parser)]
#[command(name = "muxd", version, about, long_about)]
pub struct Cli {
    /// Listen on a TCP address (IPv4 or IPv6, e.g. 127.0.0.1:7379, [::1]:0). Repeatable.
    #[arg(long = "tcp", value_name = "ADDR")]
    pub tcp: Vec<String>,

    /// Listen on a TCP address whose clients speak TLS (Redis's tls-port), e.g.
    /// 127.0.0.1:7380; needs --tls-cert-file and --tls-key-file. Repeatable.
    #[arg(long = "tls", value_name = "ADDR")]
    pub tls: Vec<String>,

    /// Listen on a Unix socket path. Repeatable. A stale socket file (nobody accepting) is
    /// replaced; a live one, or a path that is not a socket, is refused.
    #[arg(long = "unix", value_name = "PATH")]
    pub unix: Vec<PathBuf>,

    /// Permission bits of the Unix socket files, in octal (connecting needs write access).
    #[arg(long, value_name = "MODE", default_value = "600", value_parser = parse_mode)]
    pub unix_mode: u32,

    /// Most clients connected at once [default: open-file limit minus 32]. More are answered
    /// "-ERR max number of clients reached" and closed.
    #[arg(long, value_name = "N")]
    pub max_clients: Option<usize>,

    /// Close clients idle for more than SECS seconds; 0 never does.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub timeout: u64,

    /// Largest bulk string in a request (Redis: proto-max-bulk-len).
    #[arg(long, value_name = "BYTES", default_value = "512mb", value_parser = parse_size)]
    pub max_bulk_len: usize,

    /// Most arguments in one request.
    #[arg(long, value_name = "N", default_value_t = 1024 * 1024)]
    pub max_multibulk_len: usize,

    /// Longest inline command line, and longest `*n`/`$n` header line.
    #[arg(long, value_name = "BYTES", default_value = "64kb", value_parser = parse_size)]
    pub max_inline_len: usize,

    /// Most unparsed input one client may have buffered (Redis: client-query-buffer-limit).
    #[arg(long, value_name = "BYTES", default_value = "1gb", value_parser = parse_size)]
    pub max_request_bytes: usize,

    /// Stop reading a client's requests while more than this many bytes of its responses
    /// wait unread.
    #[arg(long, value_name = "BYTES", default_value = "64mb", value_parser = parse_size)]
    pub output_high_watermark: usize,

    /// Resume reading a paused client once its unread responses fall below this.
    #[arg(long, value_name = "BYTES", default_value = "16mb", value_parser = parse_size)]
    pub output_low_watermark: usize,

    /// Close a subscriber as soon as this many bytes of messages and replies wait for it
    /// unread (Redis: client-output-buffer-limit pubsub, hard); 0: no limit.
    #[arg(long, value_name = "BYTES", default_value = "32mb", value_parser = parse_size)]
    pub pubsub_hard_limit: usize,

    /// Close a subscriber that keeps more than this many bytes unread for longer than
    /// --pubsub-soft-seconds (Redis: client-output-buffer-limit pubsub, soft); 0: no limit.
    #[arg(long, value_name = "BYTES", default_value = "8mb", value_parser = parse_size)]
    pub pubsub_soft_limit: usize,

    /// How long a subscriber may stay above --pubsub-soft-limit.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub pubsub_soft_seconds: u64,

    /// Most memory all clients' input and output buffers may hold together, in bytes or
    /// as a share of physical memory (`25%`); past it, the clients holding the most are
    /// closed until the total is below (Redis: maxmemory-clients). `0`: no limit.
    #[arg(long, value_name = "BYTES|N%", default_value = "25%", value_parser = parse_client_memory)]
    // Spelled out so that clap takes the parser's `None` (no limit) as a value, not as
    // "flag absent".
    pub maxmemory_clients: std::option::Option<ClientMemoryLimit>,

    /// On SIGTERM, keep writing owed responses for at most SECS seconds, then close.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub shutdown_timeout: f64,

    /// Length of each master socket's queue of connections not yet accepted.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub backlog: i32,

    /// Require clients to authenticate with this password (AUTH PASS, AUTH default PASS,
    /// HELLO 3 AUTH default PASS), over TCP and Unix sockets alike. Visible in `ps`: prefer
    /// --requirepass-file.
    #[arg(long, value_name = "PASS", conflicts_with = "requirepass_file")]
    pub requirepass: Option<String>,

    /// Read the password clients must give from PATH (one trailing newline is stripped),
    /// which keeps it out of `ps` and shell history. Make the file readable by muxd's user
    /// only.
    #[arg(long, value_name = "PATH")]
    pub requirepass_file: Option<PathBuf>,

    /// Trust peers from this network (192.0.2.0/24, 2001:db8::/32, an address, or `unix`
    /// for Unix-socket peers) to begin their connections with a PROXY protocol header (v1
    /// or v2); theirs must, within --proxy-timeout, and a header from anyone else is a
    /// protocol error. Repeatable.
    #[arg(long, value_name = "CIDR", value_parser = parse_proxy_from)]
    pub proxy_from: Vec<ProxyFrom>,

    /// How long a trusted proxy has to send its complete PROXY header, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub proxy_timeout: f64,

    /// The TLS listeners' certificate chain (PEM, leaf first). Reloaded on SIGHUP.
    #[arg(long, value_name = "PATH")]
    pub tls_cert_file: Option<PathBuf>,

    /// The private key of --tls-cert-file (PEM). Reloaded on SIGHUP.
    #[arg(long, value_name = "PATH")]
    pub tls_key_file: Option<PathBuf>,

    /// CA certificates (PEM) that clients' certificates must chain to; with it, clients
    /// must show one (see --tls-auth-clients). Reloaded on SIGHUP.
    #[arg(long, value_name = "PATH")]
    pub tls_ca_cert_file: Option<PathBuf>,

    /// With --tls-ca-cert-file: `yes` requires a client certificate, `optional` verifies
    /// one when shown, `no` asks for none [default: yes].
    #[arg(long, value_name = "yes|no|optional")]
    pub tls_auth_clients: Option<ClientAuth>,

    /// How long a TLS client has to complete its handshake, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub tls_handshake_timeout: f64,

    /// Notify a supervisor: systemd's READY=1 once listening, STOPPING=1 on shutdown,
    /// WATCHDOG=1 when its watchdog is on. `auto` notifies when NOTIFY_SOCKET is set.
    #[arg(long, value_name = "MODE", value_enum, default_value = "auto")]
    pub supervised: Supervised,

    /// More logging: -v debug (connects, disconnects), -vv trace (every event).
    #[arg(short, long, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Less logging: -q warnings and errors only, -qq errors only, -qqq nothing.
    #[arg(short, long, action = ArgAction::Count)]
    pub quiet: u8,
}

impl Cli {
    /// Parses the process arguments, keeping the order in which listeners were given.
    pub fn parse_ordered() -> (Cli, Vec<ListenOrder>) {
        let matches = Cli::command().get_matches();
        let cli = match Cli::from_arg_matches(&matches) {
            Ok(cli) => cli,
            Err(e) => e.exit(),
        };
        let mut order = Vec::new();
        if let Some(indices) = matches.indices_of("tcp") {
            order.extend(indices.zip(0..).map(|(at, i)| (at, ListenOrder::Tcp(i))));
        }
        if let Some(indices) = matches.indices_of("tls") {
            order.extend(indices.zip(0..).map(|(at, i)| (at, ListenOrder::Tls(i))));
        }
        if let Some(indices) = matches.indices_of("unix") {
            order.extend(indices.zip(0..).map(|(at, i)| (at, ListenOrder::Unix(i))));
        }
        order.sort_by_key(|(at, _)| *at);
        (cli, order.into_iter().map(|(_, o)| o).collect())
    }

    /// The `log` level the flags ask for.
    pub fn log_level(&self) -> log::LevelFilter {
        match (self.verbose, self.quiet) {
            (0, 0) => log::LevelFilter::Info,
            (1, _) => log::LevelFilter::Debug,
            (v, _) if v >= 2 => log::LevelFilter::Trace,
            (_, 1) => log::LevelFilter::Warn,
            (_, 2) => log::LevelFilter::Error,
            _ => log::LevelFilter::Off,
        }
    }

    /// The protocol limits.
    pub fn limits(&self) -> RespLimits {
        RespLimits {
            max_bulk_len: self.max_bulk_len,
            max_multibulk_len: self.max_multibulk_len,
            max_inline_len: self.max_inline_len,
        }
    }

    /// The password clients must give, from `--requirepass` or `--requirepass-file`.
    pub fn password(&self) -> anyhow::Result<Option<Vec<u8>>> {
        let password = match (&self.requirepass, &self.requirepass_file) {
            (Some(text), _) => text.as_bytes().to_vec(),
            (None, Some(path)) => read_password_file(path)
                .with_context(|| format!("--requirepass-file {}", path.display()))?,
            (None, None) => return Ok(None),
        };
        if password.is_empty() {
            bail!("the password is empty (give a non-empty --requirepass or file)");
        }
        Ok(Some(password))
    }

    /// The server configuration, listeners in `order`, with the sockets a supervisor
    /// passed (socket activation).
    pub fn config(
        &self,
        order: &[ListenOrder],
        inherited: Vec<InheritedSocket>,
    ) -> anyhow::Result<Config> {
        let mut config = Config::default();
        for item in order {
            let addr = match *item {
                ListenOrder::Tcp(i) => {
                    let text = self.tcp.get(i).map(String::as_str).unwrap_or_default();
                    ListenAddr::tcp(text).with_context(|| format!("--tcp {text}"))?
                }
                ListenOrder::Tls(i) => {
                    let text = self.tls.get(i).map(String::as_str).unwrap_or_default();
                    format!("tls://{text}")
                        .parse::<ListenAddr>()
                        .with_context(|| format!("--tls {text}"))?
                }
                ListenOrder::Unix(i) => {
                    ListenAddr::Unix(self.unix.get(i).cloned().unwrap_or_default())
                }
            };
            config.listen.push(addr);
        }
        if config.listen.is_empty() && inherited.is_empty() {
            config.listen.push(ListenAddr::tcp(DEFAULT_TCP)?);
            config.listen.push(ListenAddr::unix(DEFAULT_UNIX));
        }
        let Ok(shutdown_timeout) = Duration::try_from_secs_f64(self.shutdown_timeout) else {
            bail!("--shutdown-timeout must be a non-negative number of seconds");
        };
        let Ok(proxy_timeout) = Duration::try_from_secs_f64(self.proxy_timeout) else {
            bail!("--proxy-timeout must be a non-negative number of seconds");
        };
        let Ok(tls_handshake_timeout) = Duration::try_from_secs_f64(self.tls_handshake_timeout)
        else {
            bail!("--tls-handshake-timeout must be a non-negative number of seconds");
        };
        if self.output_low_watermark > self.output_high_watermark {
            bail!("--output-low-watermark must not be above --output-high-watermark");
        }
        config.inherited = inherited;
        config.unix_mode = self.unix_mode;
        config.backlog = self.backlog;
        config.max_clients = self.max_clients;
        config.idle_timeout = (self.timeout > 0).then(|| Duration::from_secs(self.timeout));
        config.max_input_buffer = self.max_request_bytes;
        config.output_high_watermark = self.output_high_watermark;
        config.output_low_watermark = self.output_low_watermark;
        config.shutdown_timeout = shutdown_timeout;
        config.pubsub_output_limit = OutputLimit {
            hard: self.pubsub_hard_limit,
            soft: self.pubsub_soft_limit,
            soft_time: Duration::from_secs(self.pubsub_soft_seconds),
        };
        config.max_client_memory = self.maxmemory_clients;
        config.stop_on_signals = true;
        config.proxy_from = self.proxy_from.clone();
        config.proxy_timeout = proxy_timeout;
        config.tls_handshake_timeout = tls_handshake_timeout;
        if let Some(files) = self.tls_files()? {
            config.tls = Some(
                files
                    .server_config()
                    .context("the TLS configuration cannot be loaded")?,
            );
        }
        Ok(config)
    }

    /// Where the TLS certificate, key and CA are, if any TLS flag is given; the daemon
    /// loads them at start and again on SIGHUP.
    pub fn tls_files(&self) -> anyhow::Result<Option<TlsFiles>> {
        let (cert, key) = match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            (None, None) if self.tls.is_empty() => {
                if self.tls_ca_cert_file.is_some() || self.tls_auth_clients.is_some() {
                    bail!("--tls-ca-cert-file and --tls-auth-clients need --tls listeners");
                }
                return Ok(None);
            }
            _ => bail!("TLS needs both --tls-cert-file and --tls-key-file"),
        };
        if self.tls_ca_cert_file.is_none()
            && matches!(
                self.tls_auth_clients,
                Some(ClientAuth::Yes | ClientAuth::Optional)
            )
        {
            bail!("--tls-auth-clients yes or optional needs --tls-ca-cert-file");
        }
        Ok(Some(TlsFiles {
            cert_file: cert,
            key_file: key,
            ca_cert_file: self.tls_ca_cert_file.clone(),
            auth_clients: self.tls_auth_clients.unwrap_or_default(),
        }))
    }
}

/// Which listener flag came at a given position of the command line.
#[derive(Debug, Clone, Copy)]
pub enum ListenOrder {
    /// The n-th `--tcp`.
    Tcp(usize),
    /// The n-th `--tls`.
    Tls(usize),
    /// The n-th `--unix`.
    Unix(usize),
}

/// The file's bytes, less one trailing `\n` (or `\r\n`), as an editor or `echo` leaves.
fn read_password_file(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt;
    let mut bytes = std::fs::read(path)?;
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        log::warn!(
            "password file is readable by other users path={} mode={:o}",
            path.display(),
            meta.permissions().mode() & 0o777
        );
    }
    Ok(bytes)
}

/// `1gb`, `536870912`, `25%`; `0` (or `0%`) for no limit.
fn parse_client_memory(text: &str) -> Result<Option<ClientMemoryLimit>, String> {
    let limit = match text.trim().strip_suffix('%') {
        Some(percent) => match percent.trim().parse::<u8>() {
            Ok(0) => return Ok(None),
            Ok(p) if p <= 100 => ClientMemoryLimit::PercentOfRam(p),
            _ => return Err(format!("{text:?} is not a percentage from 0% to 100%")),
        },
        None => match parse_size(text)? {
            0 => return Ok(None),
            n => ClientMemoryLimit::Bytes(n),
        },
    };
    Ok(Some(limit))
}

fn parse_proxy_from(text: &str) -> Result<ProxyFrom, String> {
    text.parse().map_err(|e: muxd::Error| e.to_string())
}

fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{text:?} is not an octal mode like 600 or 660"))
}

/// `65536`, `64k`, `64kb`, `512mb`, `1gb` (powers of 1024, as Redis reads them).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(digits_end);
    let multiplier: usize = match unit {
        "" | "b" => 1,
        "k" | "kb" => 1024,
        "m" | "mb" => 1024 * 1024,
        "g" | "gb" => 1024 * 1024 * 1024,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit (use k, kb, m, mb, g or gb)"
            ));
        }
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("{text:?} is not a size like 65536, 64kb or 512mb"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_modes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64kb"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("512mb"), Ok(512 << 20));
        assert_eq!(parse_size("1gb"), Ok(1 << 30));
        assert!(parse_size("12tb").is_err());
        assert!(parse_size("mb").is_err());
        assert_eq!(parse_mode("600"), Ok(0o600));
        assert_eq!(parse_mode("0o660"), Ok(0o660));
        assert!(parse_mode("800").is_err());
        assert!(parse_mode("7777").is_err());
    }

    #[test]
    fn password_file_loses_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        for (content, expected) in [
            (&b"s3cret\n"[..], &b"s3cret"[..]),
            (b"s3cret\r\n", b"s3cret"),
            (b"s3cret", b"s3cret"),
            (b"two words \n\n", b"two words \n"),
        ] {
            let path = dir.path().join("pw");
            std::fs::write(&path, content).unwrap();
            assert_eq!(read_password_file(&path).unwrap(), expected);
        }
        let path = dir.path().join("pw");
        std::fs::write(&path, "\n").unwrap();
        let cli = Cli::try_parse_from(["muxd", "--requirepass-file", path.to_str().unwrap()]);
        let e = cli.unwrap().password().unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        let cli = Cli::try_parse_from(["muxd", "--requirepass-file", "/nonexistent/pw"]);
        let e = format!("{:#}", cli.unwrap().password().unwrap_err());
        assert!(e.contains("--requirepass-file /nonexistent/pw"), "{e}");
        assert!(
            Cli::try_parse_from(["muxd", "--requirepass", "a", "--requirepass-file", "b"]).is_err()
        );
    }

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }
}
