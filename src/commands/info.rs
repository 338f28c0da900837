//! `INFO [section ...]`: sections `server`, `clients`, `memory`, `stats` and
//! `replication`, with Redis's field names where Redis has the same figure, so existing
//! Redis tooling reads them. `replication` is what Redis 7 prints for a master without
//! replicas (`role:master`, `connected_slaves:0`, ...), in Redis's section order: the
//! health checks of load balancers (HAProxy's `tcp-check` recipe, which expects
//! `role:master`) pass.
//! No section, `default`, `all` or `everything` gives every section; an unknown section
//! gives nothing, as in Redis. In RESP3 the text is a verbatim string, as Redis sends it.

use std::collections::hash_map::RandomState;
use std::fmt::Write;
use std::hash::BuildHasher;
use std::sync::OnceLock;

use super::{CommandService, Ctx};
use crate::client::CloseReason;
use crate::listener::ListenAddr;
use crate::pubsub::Kind;
use crate::resp::{Args, Reply};

const SECTIONS: &[&str] = &["server", "clients", "memory", "stats", "replication"];

pub(crate) fn info(service: &mut CommandService, args: Args<'_>, ctx: &mut Ctx<'_>) {
    let everything = args.len() == 1
        || args.iter().skip(1).any(|a| {
            [&b"default"[..], b"all", b"everything"]
                .iter()
                .any(|w| a.eq_ignore_ascii_case(w))
        });
    let mut text = String::new();
    for section in SECTIONS {
        let wanted = everything
            || args
                .iter()
                .skip(1)
                .any(|a| a.eq_ignore_ascii_case(section.as_bytes()));
        if wanted {
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            write_section(section, service, ctx, &mut text);
        }
    }
    ctx.reply(&Reply::text(text.as_bytes()));
}

fn write_section(section: &str, service: &CommandService, ctx: &Ctx<'_>, out: &mut String) {
    let server = ctx.server();
    let stats = ctx.stats();
    // Writing to a String cannot fail.
    let _ = match section {
        "server" => {
            let uptime = ctx
                .now()
                .saturating_duration_since(server.started())
                .as_secs();
            let tcp_port = server
                .listeners()
                .iter()
                .find_map(|l| match l.addr {
                    ListenAddr::Tcp(addr) => Some(addr.port()),
                    ListenAddr::Tls(_) | ListenAddr::Unix(_) => None,
                })
                .unwrap_or(0);
            let executable = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let _ = write!(
                out,
                "# Server\r\nmuxd_version:{}\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:{}\r\nmultiplexing_api:epoll\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nexecutable:{}\r\n",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH,
                usize::BITS,
                std::process::id(),
                tcp_port,
                uptime,
                uptime / 86_400,
                executable,
            );
            for (i, listener) in server.listeners().iter().enumerate() {
                let _ = write!(
                    out,
                    "listener{i}:kind={},addr={}\r\n",
                    listener.kind(),
                    listener.addr
                );
            }
            Ok(())
        }
        "clients" => {
            let clients = ctx.clients();
            let closing = clients.iter().filter(|c| c.closing).count();
            write!(
                out,
                "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nclosing_clients:{}\r\n",
                clients.len(),
                server.max_clients(),
                closing
            )
        }
        "replication" => write!(
            out,
            "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\nrepl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n",
            replication_id()
        ),
        "memory" => write!(
            out,
            "# Memory\r\nused_memory_rss:{}\r\nmem_clients_normal:{}\r\n",
            resident_memory().unwrap_or(0),
            ctx.clients().memory(),
        ),
        _ => {
            let _ = write!(
                out,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\nprotocol_errors:{}\r\naccept_fd_exhausted:{}\r\noutput_paused_clients:{}\r\nlimit_disconnections:{}\r\nturns_yielded:{}\r\n",
                stats.total_connections_received,
                stats.total_commands_processed,
                stats.total_net_input_bytes,
                stats.total_net_output_bytes,
                stats.rejected_connections,
                stats.protocol_errors,
                stats.accept_fd_exhausted,
                stats.output_paused_clients,
                stats.limit_disconnections,
                stats.turns_yielded,
            );
            let topics = ctx.topics();
            let _ = write!(
                out,
                "pubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:{}\r\nclient_output_buffer_limit_disconnections:{}\r\nevicted_clients:{}\r\n",
                topics.len(Kind::Channel),
                topics.len(Kind::Pattern),
                topics.len(Kind::ShardChannel),
                stats.client_output_buffer_limit_disconnections,
                stats.evicted_clients,
            );
            for reason in CloseReason::ALL {
                let _ = write!(out, "closed_{}:{}\r\n", reason, stats.closed(reason));
            }
            write!(out, "acl_access_denied_auth:{}\r\n", service.auth_failures)
        }
    };
}

/// This server's replication id: 40 random hex digits, drawn once per process, as Redis
/// draws its own at start (tools only compare it across restarts).
fn replication_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let state = RandomState::new();
        (0u64..3)
            .map(|i| format!("{:016x}", state.hash_one(i)))
            .collect::<String>()
            .chars()
            .take(40)
            .collect()
    })
}

/// This process's resident set size in bytes, from `/proc/self/statm`.
fn resident_memory() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}
