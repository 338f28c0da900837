//! The command line: redis-benchmark's flags where it has them, checked and turned into a
//! [`Plan`] the rest of the tool runs from.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{ArgAction, Parser};
use muxd::ListenAddr;

use crate::handshake::Greeting;
use crate::net::Target;
use crate::pubsub::{PubSubPlan, StopWhen, wire};
use crate::tls::TlsClient;
use crate::workload::{Test, Workload, parse_tests};

/// muxd-bench: a load generator for muxd and any RESP (Redis protocol) server.
///
/// Opens CLIENTS connections (TCP, or a Unix socket with -s) spread over THREADS threads,
/// each thread one poll loop, and keeps PIPELINE requests in flight on every connection:
/// whenever replies arrive, as many new requests are written at once, in one write
/// (--lockstep instead waits for all PIPELINE replies before sending the next batch, as
/// redis-benchmark does).
///
/// Every reply is checked:
///   ping_inline, ping_mbulk  +PONG
///   echo                     its payload (-d bytes of 'x') as a bulk string
///   add                      muxd only: "ADD 1" answers the connection's running
///                            total, so :1, :2, :3, ... on each connection
///   --command "CMD ARGS"     any command, split on spaces and sent as a multibulk array;
///                            one request is first sent on a connection of its own to
///                            learn the reply, and every reply of the run must then equal
///                            it byte for byte (so a command whose reply changes, such as
///                            INCR, reports wrong replies)
///
/// Latency is measured per request from when it was written or, with --rate, from when
/// it was due, so a stalled server shows in the tail instead of slowing the load down
/// (coordinated omission). Histograms are HDR, in microseconds.
///
/// Output: a summary per test on stdout, or with --json one JSON object per test, one
/// per line, with the keys test, target, clients, pipeline, threads, requests, errors,
/// wrong, seconds, rps, p50_us, p90_us, p99_us, p999_us, max_us. "requests" counts the
/// replies received and checked, "errors" error replies and failed connections,
/// "wrong" replies that differ from the expected one (a malformed reply is wrong and
/// closes its connection). Examples of errors and wrong replies go to stderr.
///
/// Before the load, every connection sends HELLO 3 with -3 (so the load runs over RESP3,
/// and --command learns and checks RESP3 replies), AUTH with -a (and --user), or
/// HELLO 3 AUTH user password with both, and checks the reply (a map, +OK). With --tls,
/// each connection completes its handshake and answers a PING before the load.
///
/// Idle mode: --idle N opens N connections, checks a PING on each, prints
/// "IDLE N connected" on stdout, and holds them open without traffic until --duration
/// elapses or, without --duration, until SIGINT or SIGTERM.
///
/// Exit status: 0 if all went well; 1 if there were errors or wrong replies (or, idle,
/// if the server closed a connection); 2 for bad usage or when connecting fails.
#[derive(Debug, Parser)]
#[command(
    name = "muxd-bench",
    version,
    about,
    long_about,
    verbatim_doc_comment,
    disable_help_flag = true
)]
pub struct Cli {
    /// Server host name or address.
    #[arg(short = 'h', long = "host", default_value = "127.0.0.1")]
    pub host: String,

    /// Server TCP port.
    #[arg(short = 'p', long = "port", default_value_t = 7379)]
    pub port: u16,

    /// Server Unix socket path (instead of host and port).
    #[arg(short = 's', long = "socket", value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Connections kept open and busy during each test.
    #[arg(short = 'c', long = "clients", default_value_t = 50)]
    pub clients: usize,

    /// Requests in flight on each connection.
    #[arg(short = 'P', long = "pipeline", default_value_t = 1)]
    pub pipeline: usize,

    /// Requests per test, over all connections.
    #[arg(short = 'n', long = "requests", default_value_t = 100_000)]
    pub requests: u64,

    /// Run each test for SECS seconds instead of -n requests; with --idle, how long to
    /// hold the connections.
    #[arg(long, value_name = "SECS", conflicts_with = "requests")]
    pub duration: Option<f64>,

    /// Tests to run, comma-separated: ping_inline, ping_mbulk, echo, add (add is muxd's
    /// ADD command; other servers answer it with errors) [default: all four].
    #[arg(short = 't', long = "tests", value_name = "LIST")]
    pub tests: Option<String>,

    /// Payload size of the echo test, in bytes [default: 3]; with --pubsub, of each
    /// message (at least 24) [default: 64].
    #[arg(short = 'd', long = "data-size", value_name = "BYTES")]
    pub data_size: Option<usize>,

    /// Pub/sub mode: --publishers connections publish on --channels channels, each of
    /// --subscribers connections listens to one (subscriber i to channel i % channels).
    /// -P is each publisher's window of PUBLISH requests in flight (or --rate the total
    /// messages/s), -n the messages in all (or --duration), -d the payload size,
    /// --threads the subscribers' threads. Every message is checked at every subscriber
    /// (nothing lost, duplicated or reordered per publisher) and every PUBLISH reply
    /// (it reached the channel's subscribers); latency is from when a message was due
    /// (the time inside its payload) to its delivery.
    #[arg(long, conflicts_with_all = ["tests", "command", "idle", "lockstep"])]
    pub pubsub: bool,

    /// With --pubsub: publishing connections.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "pubsub")]
    pub publishers: usize,

    /// With --pubsub: subscribing connections.
    #[arg(long, value_name = "N", default_value_t = 50, requires = "pubsub")]
    pub subscribers: usize,

    /// With --pubsub: channels the subscribers are spread over.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "pubsub")]
    pub channels: usize,

    /// Run this command instead of the tests (split on spaces). Its expected reply is
    /// learned from the first reply; every later reply must equal it byte for byte.
    #[arg(long, value_name = "\"CMD ARGS\"", conflicts_with = "tests")]
    pub command: Option<String>,

    /// Threads, each running one poll loop over its share of the connections.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: usize,

    /// Send at a constant total rate of R requests/s (split evenly over the connections);
    /// latency is measured from each request's intended send time.
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,

    /// Send the next PIPELINE requests only once all replies to the previous ones are
    /// back, as redis-benchmark does (default: refill the window as replies arrive).
    #[arg(long, conflicts_with = "rate")]
    pub lockstep: bool,

    /// Print one JSON object per test (one per line) instead of the summary.
    #[arg(long)]
    pub json: bool,

    /// No progress line on stderr while running.
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Idle mode: open N connections, check each with a PING, print "IDLE N connected",
    /// hold them open doing nothing (see --duration).
    #[arg(long, value_name = "N", conflicts_with_all = ["tests", "command", "rate", "requests", "lockstep"])]
    pub idle: Option<usize>,

    /// A connection waiting for replies that receives nothing for SECS seconds (or still
    /// connecting after SECS) counts as an error and is closed.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub timeout: f64,

    /// Speak RESP3: send HELLO 3 on each connection before the load (redis-benchmark's -3).
    #[arg(short = '3')]
    pub resp3: bool,

    /// Authenticate each connection with this password before the load (AUTH, or
    /// HELLO 3 AUTH with -3), as redis-benchmark's -a.
    #[arg(short = 'a', value_name = "PASSWORD")]
    pub password: Option<String>,

    /// The user to authenticate as with -a (default: Redis's "default").
    #[arg(long, value_name = "USER", requires = "password")]
    pub user: Option<String>,

    /// Speak TLS (redis-benchmark's --tls): the server's certificate is verified against
    /// --cacert and must name the host (-h, or --sni).
    #[arg(long, requires = "cacert")]
    pub tls: bool,

    /// CA certificates (PEM) to verify the server's certificate with.
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub cacert: Option<PathBuf>,

    /// Client certificate (PEM) to show a server that asks for one; with --key.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "key"])]
    pub cert: Option<PathBuf>,

    /// The private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "cert"])]
    pub key: Option<PathBuf>,

    /// The name the server's certificate must carry, sent as SNI [default: the host].
    #[arg(long, value_name = "HOST", requires = "tls")]
    pub sni: Option<String>,

    /// Print help (--help; -h is the host, as in redis-benchmark).
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
}

/// When each test of a load run stops sending.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StopAt {
    /// After this many requests in all.
    Requests(u64),
    /// After this long.
    Duration(Duration),
}

/// What the tool was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Run each workload in turn.
    Load {
        workloads: Vec<Workload>,
        stop: StopAt,
        /// Requests per second in all, if paced.
        rate: Option<f64>,
        /// Refill a connection's window only once it is empty.
        lockstep: bool,
    },
    /// Hold `count` connections open, for `hold` or until a signal.
    Idle {
        count: usize,
        hold: Option<Duration>,
    },
    /// Publish and subscribe.
    PubSub(PubSubPlan),
}

/// What the tool will do: the flags, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub target: Target,
    pub clients: usize,
    pub pipeline: usize,
    /// Threads really used: never more than there are connections.
    pub threads: usize,
    pub mode: Mode,
    pub json: bool,
    pub quiet: bool,
    pub timeout: Duration,
    /// What each connection sends before the load (or, idle, before holding still).
    pub greeting: Greeting,
}

/// Largest pipeline accepted.
pub const MAX_PIPELINE: usize = 1 << 20;
/// Largest `-d` (Redis's largest bulk string).
const MAX_DATA_SIZE: usize = 512 * 1024 * 1024;
/// Largest buffer of pipelined requests one connection may need.
const MAX_BATCH_BYTES: usize = 1 << 30;

impl Cli {
    /// Checks the flags and builds the plan (resolving the host name).
    pub fn plan(&self) -> anyhow::Result<Plan> {
        let addr = match &self.socket {
            Some(_) if self.tls => bail!("--tls is over TCP: give -h and -p, not -s"),
            Some(path) => ListenAddr::Unix(path.clone()),
            None => ListenAddr::resolve(&self.host, self.port)
                .with_context(|| format!("cannot resolve host {:?}", self.host))?,
        };
        let target = match (&self.cacert, addr.tcp_addr()) {
            (Some(cacert), Some(tcp)) if self.tls => Target {
                addr: ListenAddr::Tls(tcp),
                tls: Some(TlsClient::from_files(
                    cacert,
                    self.cert.as_deref(),
                    self.key.as_deref(),
                    self.sni.as_deref().unwrap_or(&self.host),
                )?),
            },
            _ => Target { addr, tls: None },
        };
        let timeout = seconds("--timeout", self.timeout)?;
        let duration = self
            .duration
            .map(|d| seconds("--duration", d))
            .transpose()?;
        let connections = self.idle.unwrap_or(self.clients);
        if connections == 0 {
            bail!(if self.idle.is_some() {
                "--idle needs at least 1 connection"
            } else {
                "-c needs at least 1 client"
            });
        }
        if self.threads == 0 {
            bail!("--threads needs at least 1 thread");
        }
        let threads = self.threads.min(connections);
        let mode = match self.idle {
            Some(count) => Mode::Idle {
                count,
                hold: duration,
            },
            None if self.pubsub => Mode::PubSub(self.pubsub_plan(duration, timeout)?),
            None => {
                let data_size = self.data_size.unwrap_or(3);
                if self.pipeline == 0 || self.pipeline > MAX_PIPELINE {
                    bail!("-P must be between 1 and {MAX_PIPELINE}");
                }
                if data_size > MAX_DATA_SIZE {
                    bail!("-d must be at most {MAX_DATA_SIZE} bytes (512 MiB)");
                }
                if data_size.saturating_mul(self.pipeline) > MAX_BATCH_BYTES {
                    bail!(
                        "-P {} requests of {} bytes do not fit in 1 GiB",
                        self.pipeline,
                        data_size
                    );
                }
                let workloads = match &self.command {
                    Some(line) => vec![Workload::command(line)?],
                    None => {
                        let tests = match &self.tests {
                            Some(list) => parse_tests(list)?,
                            None => Test::ALL.to_vec(),
                        };
                        tests
                            .into_iter()
                            .map(|t| Workload::builtin(t, data_size))
                            .collect()
                    }
                };
                for w in &workloads {
                    let batch = w.request.len().checked_mul(self.pipeline);
                    if batch.is_none_or(|b| b > MAX_BATCH_BYTES) {
                        bail!(
                            "{}: -P {} requests of {} bytes do not fit in 1 GiB",
                            w.name,
                            self.pipeline,
                            w.request.len()
                        );
                    }
                }
                let stop = match duration {
                    Some(d) => StopAt::Duration(d),
                    None if self.requests == 0 => bail!("-n needs at least 1 request"),
                    None => StopAt::Requests(self.requests),
                };
                let rate = match self.rate {
                    Some(r) if !(r.is_finite() && r > 0.0) => {
                        bail!("--rate must be a positive number of requests per second")
                    }
                    other => other,
                };
                Mode::Load {
                    workloads,
                    stop,
                    rate,
                    lockstep: self.lockstep,
                }
            }
        };
        // A PING proves an idle connection accepted, and a TLS one's handshake done.
        let greeting = Greeting::new(
            self.resp3,
            self.user.as_deref(),
            self.password.as_deref(),
            matches!(mode, Mode::Idle { .. }) || self.tls,
        );
        Ok(Plan {
            target,
            clients: connections,
            pipeline: self.pipeline.max(1),
            threads,
            greeting,
            mode,
            json: self.json,
            quiet: self.quiet,
            timeout,
        })
    }
}

impl Cli {
    /// The pub/sub run the flags ask for.
    fn pubsub_plan(
        &self,
        duration: Option<Duration>,
        timeout: Duration,
    ) -> anyhow::Result<PubSubPlan> {
        if self.publishers == 0 || self.subscribers == 0 || self.channels == 0 {
            bail!("--pubsub needs at least one publisher, subscriber and channel");
        }
        if self.pipeline == 0 || self.pipeline > MAX_PIPELINE {
            bail!("-P must be between 1 and {MAX_PIPELINE}");
        }
        let payload = self.data_size.unwrap_or(64);
        if !(wire::HEADER..=MAX_DATA_SIZE).contains(&payload) {
            bail!(
                "-d must be between {} and {MAX_DATA_SIZE} bytes with --pubsub",
                wire::HEADER
            );
        }
        let stop = match duration {
            Some(d) => StopWhen::Duration(d),
            None if self.requests == 0 => bail!("-n needs at least 1 message"),
            None => StopWhen::Messages(self.requests),
        };
        if let Some(r) = self.rate
            && !(r.is_finite() && r > 0.0)
        {
            bail!("--rate must be a positive number of messages per second");
        }
        Ok(PubSubPlan {
            publishers: self.publishers,
            subscribers: self.subscribers,
            channels: self.channels,
            payload,
            pipeline: self.pipeline,
            rate: self.rate,
            stop,
            threads: self.threads.max(1).min(self.subscribers),
            timeout,
        })
    }
}

fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    if !(value.is_finite() && value > 0.0) {
        bail!("{flag} must be a positive number of seconds");
    }
    Duration::try_from_secs_f64(value).with_context(|| format!("{flag} {value} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Expect;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("muxd-bench").chain(args.iter().copied()))
    }

    fn plan(args: &[&str]) -> anyhow::Result<Plan> {
        parse(args)?.plan()
    }

    #[test]
    fn definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_match_redis_benchmark_habits() {
        let c = plan(&[]).unwrap();
        assert_eq!(c.target.to_string(), "tcp://127.0.0.1:7379");
        assert_eq!((c.clients, c.pipeline, c.threads), (50, 1, 1));
        assert!(!c.json && !c.quiet);
        assert_eq!(c.timeout, Duration::from_secs(10));
        let Mode::Load {
            workloads,
            stop,
            rate,
            lockstep,
        } = c.mode
        else {
            panic!("not a load run");
        };
        assert!(!lockstep);
        let names: Vec<&str> = workloads.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["ping_inline", "ping_mbulk", "echo", "add"]);
        assert_eq!(stop, StopAt::Requests(100_000));
        assert_eq!(rate, None);
        assert_eq!(workloads[2].request, b"*2\r\n$4\r\nECHO\r\n$3\r\nxxx\r\n");
    }

    #[test]
    fn short_flags() {
        let c = plan(&[
            "-h",
            "127.0.0.2",
            "-p",
            "6379",
            "-c",
            "8",
            "-P",
            "16",
            "-n",
            "1000",
            "-t",
            "echo",
            "-d",
            "10",
            "--threads",
            "2",
            "-q",
            "--json",
            "--lockstep",
        ])
        .unwrap();
        assert_eq!(c.target.to_string(), "tcp://127.0.0.2:6379");
        assert_eq!((c.clients, c.pipeline, c.threads), (8, 16, 2));
        assert!(c.json && c.quiet);
        let Mode::Load {
            workloads,
            stop,
            lockstep,
            ..
        } = c.mode
        else {
            panic!("not a load run");
        };
        assert!(lockstep);
        assert_eq!(workloads.len(), 1);
        assert_eq!(
            workloads[0].expect,
            Some(Expect::Exact(b"$10\r\nxxxxxxxxxx\r\n".to_vec()))
        );
        assert_eq!(stop, StopAt::Requests(1000));
    }

    #[test]
    fn socket_duration_rate_command() {
        let c = plan(&[
            "-s",
            "/tmp/x.sock",
            "--duration",
            "2.5",
            "--rate",
            "1000",
            "--command",
            "ECHO hello",
        ])
        .unwrap();
        assert_eq!(c.target.to_string(), "unix:///tmp/x.sock");
        let Mode::Load {
            workloads,
            stop,
            rate,
            ..
        } = c.mode
        else {
            panic!("not a load run");
        };
        assert_eq!(stop, StopAt::Duration(Duration::from_millis(2500)));
        assert_eq!(rate, Some(1000.0));
        assert_eq!(workloads[0].name, "ECHO hello");
        assert_eq!(workloads[0].expect, None);
    }

    #[test]
    fn idle_mode() {
        let c = plan(&["--idle", "10000", "--threads", "2", "--duration", "1"]).unwrap();
        assert_eq!(c.clients, 10000);
        assert_eq!(c.threads, 2);
        assert_eq!(
            c.mode,
            Mode::Idle {
                count: 10000,
                hold: Some(Duration::from_secs(1))
            }
        );
        let c = plan(&["--idle", "3", "--threads", "8"]).unwrap();
        assert_eq!(c.threads, 3);
        assert_eq!(
            c.mode,
            Mode::Idle {
                count: 3,
                hold: None
            }
        );
    }

    #[test]
    fn resp3_and_password() {
        let c = plan(&["-3", "-a", "pw", "--user", "bob"]).unwrap();
        assert_eq!(
            c.greeting,
            Greeting::new(true, Some("bob"), Some("pw"), false)
        );
        let c = plan(&["-a", "pw", "--idle", "3"]).unwrap();
        assert_eq!(c.greeting, Greeting::new(false, None, Some("pw"), true));
        assert!(plan(&[]).unwrap().greeting.is_empty());
        assert!(parse(&["--user", "bob"]).is_err(), "--user needs -a");
    }

    #[test]
    fn threads_never_exceed_clients() {
        assert_eq!(plan(&["-c", "2", "--threads", "4"]).unwrap().threads, 2);
    }

    #[test]
    fn help_is_long_only() {
        let e = parse(&["--help"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
        let help = e.to_string();
        assert!(help.contains("byte for byte"), "{help}");
        assert!(help.contains("-h, --host"), "{help}");
        assert!(parse(&["-h"]).is_err(), "-h needs a host");
    }

    #[test]
    fn refusals() {
        for args in [
            &["-c", "0"][..],
            &["-P", "0"],
            &["-n", "0"],
            &["--threads", "0"],
            &["--duration", "0"],
            &["--duration", "-1"],
            &["--rate", "0"],
            &["--rate", "nan"],
            &["--timeout", "0"],
            &["-t", "get"],
            &["--command", " "],
            &["--idle", "0"],
            &["-d", "536870913", "-t", "echo"],
            &["-d", "536870912", "-t", "echo", "-P", "3"],
        ] {
            assert!(plan(args).is_err(), "{args:?} accepted");
        }
        for args in [
            &["-n", "5", "--duration", "1"][..],
            &["-t", "echo", "--command", "PING"],
            &["--idle", "5", "-t", "echo"],
            &["--idle", "5", "-n", "5"],
            &["--rate", "5", "--lockstep"],
            &["-p", "70000"],
        ] {
            assert!(parse(args).is_err(), "{args:?} accepted");
        }
    }
}
